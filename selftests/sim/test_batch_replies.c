// SPDX-License-Identifier: MIT
/*
 * Replies signed once per batch, on the simulator's real replicas (n = 4):
 * every reply a replica sends carries a batch proof that verifies under its
 * key; the client takes the result without any signature; the replies make
 * a certificate that hm_cert_verify accepts offline; a retransmitted request
 * gets the cached reply again with the very same proof and no new signature
 * (reply_batches_signed unchanged, replies_resent up); a request at an old
 * timestamp gets a refusal with no proof and an all-zero header signature;
 * and with several clients in flight a batch of k requests costs each
 * replica one signature, not k.
 */
#include <sodium.h>

#include "client/certificate.h"
#include "client/client.h"
#include "common/reply_proof.h"
#include "common/wire.h"
#include "hm_test.h"
#include "service/kv/kv.h"
#include "testing/sim.h"

#define MS 1000ull
#define SECOND 1000000ull
#define CLIENTS 6

/* Our clients and every reply the replicas sent them. */
struct harness {
	struct hm_sim *s;
	uint32_t n;
	struct hm_client c[CLIENTS];
	struct {
		uint32_t from, to;
		size_t len;
		uint8_t buf[2048];
	} replies[1024];
	unsigned n_replies, handed;
};

static void h_send(void *ctx, uint32_t to, const void *buf, size_t len)
{
	struct harness *h = ctx;
	const struct hm_hdr *hdr = buf;
	uint32_t from = hm_get_be32((const uint8_t *)&hdr->sender) - 100 + h->n;

	hm_sim_inject(h->s, to, from, buf, len);
}

/* Capture what replicas send to our clients (endpoints n..n+CLIENTS-1). */
static bool h_capture(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
		      const uint8_t *buf, size_t len)
{
	struct harness *h = ctx;

	(void)s;
	if (from >= h->n || to < h->n)
		return true;
	if (h->n_replies < 1024 && len <= sizeof(h->replies[0].buf)) {
		h->replies[h->n_replies].from = from;
		h->replies[h->n_replies].to = to - h->n;
		h->replies[h->n_replies].len = len;
		memcpy(h->replies[h->n_replies].buf, buf, len);
		h->n_replies++;
	}
	return false;
}

/* Run until every busy client is done (5 s of virtual time at most). */
static bool h_run(struct harness *h)
{
	uint64_t limit = hm_sim_now(h->s), stop = limit + 5 * SECOND;
	bool busy = true;

	while (busy && limit < stop) {
		hm_sim_settle(h->s, limit += 2 * MS);
		for (; h->handed < h->n_replies; h->handed++)
			hm_client_receive(&h->c[h->replies[h->handed].to], h->replies[h->handed].buf,
					  h->replies[h->handed].len);
		busy = false;
		for (int k = 0; k < CLIENTS; k++) {
			hm_client_tick(&h->c[k], limit);
			busy |= h->c[k].busy;
		}
	}
	return !busy;
}

static struct harness *h_new(void)
{
	struct harness *h = calloc(1, sizeof(*h));
	struct hm_sim_opts o;

	hm_sim_default_opts(&o);
	o.clients = CLIENTS;
	o.ops_per_client = 0; /* our clients are the workload */
	h->s = hm_sim_new(&o);
	h->n = hm_sim_config(h->s)->n_members;
	hm_sim_set_filter(h->s, h_capture, h);
	for (uint32_t k = 0; k < CLIENTS; k++)
		if (hm_client_init(&h->c[k], hm_sim_config(h->s), 100 + k,
				   hm_sim_client_keys(h->s, k), 0, h_send, h) < 0)
			abort();
	return h;
}

static void h_free(struct harness *h)
{
	for (int k = 0; k < CLIENTS; k++)
		hm_client_free(&h->c[k]);
	hm_sim_free(h->s);
	free(h);
}

static const struct pbft_stats *stats(struct harness *h, uint32_t r)
{
	return pbft_stats(hm_sim_node(h->s, r)->core);
}

/* The proof bytes of a captured reply (what precedes the body). */
static bool proof_of(const uint8_t *buf, size_t len, struct hm_reply *rep, struct hm_msg *m)
{
	enum hm_drop_reason why;

	return hm_msg_decode(buf, len, HM_MAX_DATAGRAM, m, &why) == 0 &&
	       hm_reply_parse(m, rep) == 0;
}

HM_TEST(proofs_certificate_and_cache)
{
	struct harness *h = h_new();
	const struct hm_config *cfg = hm_sim_config(h->s);
	uint8_t op[64], first[HM_MAX_REPLICAS][HM_RP_MAX_LEN], *res, *o;
	size_t len, first_len[HM_MAX_REPLICAS] = { 0 }, ol, rl;
	uint64_t signed_before[HM_MAX_REPLICAS], resent_before[HM_MAX_REPLICAS];
	struct hm_cert cert;
	char err[256];
	json_t *j;
	unsigned start;

	len = hm_kv_encode_put(op, sizeof(op), "k", "v", 1);
	if (!ASSERT_OK(hm_client_submit(&h->c[0], op, len, hm_sim_now(h->s)), "submit") ||
	    !ASSERT_TRUE(h_run(h), "the put completes"))
		goto out;
	ASSERT_EQ(h->c[0].status, HM_REPLY_RESULT, "executed");
	ASSERT_EQ(h->c[0].bad_replies, 0, "no reply refused");
	if (!ASSERT_OK(hm_cert_init(&cert, 100, h->c[0].ts, op, len), "cert"))
		goto out;
	for (unsigned i = 0; i < h->n_replies; i++) {
		struct hm_reply rep;
		struct hm_msg m;
		hm_merkle_hash leaf;
		uint32_t r = h->replies[i].from;

		if (!ASSERT_TRUE(proof_of(h->replies[i].buf, h->replies[i].len, &rep, &m), "parses"))
			continue;
		ASSERT_TRUE(sodium_is_zero(m.hdr->sig, HM_SIG_LEN), "the header is not signed");
		ASSERT_GE(rep.proof.size, 1, "a result carries its batch proof");
		hm_reply_leaf(m.seq, rep.body, rep.body_len, leaf);
		ASSERT_TRUE(hm_reply_proof_check(&rep.proof, r, rep.exec_seq, leaf,
						 cfg->members[r].public_key),
			    "the proof verifies under the sender's key");
		first_len[r] = (size_t)(rep.body - m.payload);
		memcpy(first[r], m.payload, first_len[r]);
		hm_cert_add(&cert, cfg, h->replies[i].buf, h->replies[i].len);
	}
	ASSERT_GE(hm_cert_signers(&cert, cfg), 3, "2f+1 replicas certify the result");
	j = hm_cert_to_json(&cert, cfg);
	if (ASSERT_TRUE(j != NULL, "json")) {
		err[0] = 0;
		if (ASSERT_OK(hm_cert_verify(j, cfg, &o, &ol, &res, &rl, err, sizeof(err)), err)) {
			ASSERT_EQ(rl, 1, "the put's result");
			free(o);
			free(res);
		}
		json_decref(j);
	}
	hm_cert_free(&cert);

	/* The same request again (the client lost its replies): the cached
	 * reply with the stored proof, byte for byte, and no new signature. */
	for (uint32_t r = 0; r < h->n; r++) {
		signed_before[r] = stats(h, r)->reply_batches_signed;
		resent_before[r] = stats(h, r)->replies_resent;
		ASSERT_GE(signed_before[r], 1, "the batch was signed");
	}
	start = h->n_replies;
	for (uint32_t r = 0; r < h->n; r++) {
		hm_mac_stamp((struct hm_hdr *)h->c[0].req, h->c[0].links[r].tx);
		hm_sim_inject(h->s, r, h->n, h->c[0].req, h->c[0].req_len);
	}
	hm_sim_settle(h->s, hm_sim_now(h->s) + 50 * MS);
	ASSERT_GE(h->n_replies - start, h->n, "every replica re-sent");
	for (unsigned i = start; i < h->n_replies; i++) {
		struct hm_reply rep;
		struct hm_msg m;
		uint32_t r = h->replies[i].from;

		if (!ASSERT_TRUE(proof_of(h->replies[i].buf, h->replies[i].len, &rep, &m), "parses"))
			continue;
		ASSERT_EQ((size_t)(rep.body - m.payload), first_len[r], "the same proof length");
		ASSERT_MEMEQ(m.payload, first[r], first_len[r], "the very same proof");
	}
	for (uint32_t r = 0; r < h->n; r++) {
		ASSERT_EQ(stats(h, r)->reply_batches_signed, signed_before[r], "no new signature");
		ASSERT_EQ(stats(h, r)->replies_resent, resent_before[r] + 1, "one re-send");
	}

	/* A request below the last executed timestamp: a STALE refusal,
	 * MAC-only (no proof, zero header signature), nothing signed. */
	{
		uint8_t req[512];
		size_t rlen = hm_msg_build(req, sizeof(req), HM_MSG_REQUEST, 100, 0, h->c[0].ts - 1,
					   NULL, op, (uint32_t)len, hm_sim_client_keys(h->s, 0));

		start = h->n_replies;
		for (uint32_t r = 0; r < h->n; r++) {
			hm_mac_stamp((struct hm_hdr *)req, h->c[0].links[r].tx);
			hm_sim_inject(h->s, r, h->n, req, rlen);
		}
		hm_sim_settle(h->s, hm_sim_now(h->s) + 50 * MS);
		ASSERT_GE(h->n_replies - start, h->n, "every replica refused");
		for (unsigned i = start; i < h->n_replies; i++) {
			struct hm_reply rep;
			struct hm_msg m;

			if (!ASSERT_TRUE(proof_of(h->replies[i].buf, h->replies[i].len, &rep, &m),
					 "parses"))
				continue;
			ASSERT_EQ(rep.status, HM_REPLY_STALE, "STALE");
			ASSERT_EQ(rep.proof.size, 0, "no proof");
			ASSERT_TRUE(sodium_is_zero(m.hdr->sig, HM_SIG_LEN), "no signature");
		}
		for (uint32_t r = 0; r < h->n; r++)
			ASSERT_EQ(stats(h, r)->reply_batches_signed, signed_before[r],
				  "a refusal is not signed");
	}
out:
	h_free(h);
}

/* Several clients at once: the replies of a batch share one signature, so
 * each replica signs no more often than it executes batches, and fewer
 * times than it replies. */
HM_TEST(one_signature_per_batch)
{
	struct harness *h = h_new();
	uint8_t op[64];
	size_t len;
	char key[16];

	for (int round = 0; round < 20; round++) {
		for (int k = 0; k < CLIENTS; k++) {
			snprintf(key, sizeof(key), "k%d", k);
			len = hm_kv_encode_put(op, sizeof(op), key, "v", 1);
			hm_client_submit(&h->c[k], op, len, hm_sim_now(h->s));
		}
		if (!ASSERT_TRUE(h_run(h), "a round completes"))
			goto out;
	}
	for (uint32_t r = 0; r < h->n; r++) {
		const struct pbft_stats *st = stats(h, r);

		ASSERT_EQ(st->ops_executed, 20 * CLIENTS, "every op executed");
		ASSERT_LE(st->reply_batches_signed, st->batches_executed, "at most one per batch");
		ASSERT_TRUE(st->reply_batches_signed < st->ops_executed,
			    "fewer signatures than replies: batches of several");
	}
out:
	h_free(h);
}

__attribute__((constructor(200))) static void init_crypto(void)
{
	if (hm_crypto_init() < 0)
		abort();
}
