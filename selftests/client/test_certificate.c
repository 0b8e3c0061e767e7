// SPDX-License-Identifier: MIT
/*
 * Consensus certificates (user/client/certificate.c): collection stops at 2f+1
 * validly proven replies (batch path and root signature) over one body and
 * one batch statement from distinct replicas (duplicates, other results,
 * other requests, forged signatures, unproven replies and garbage do not
 * count); the JSON certificate verifies offline, and is refused when the
 * result, the batch (size, index, path, root) or a signature is changed, a
 * signature is missing or repeated, or the cluster's key for a signer is
 * another.  The cases that break a naive check: a path from another batch,
 * a root signed for another sequence number, f+1 good and f forged
 * signatures (n = 7), a leaf swapped between two clients of one batch.  The
 * CT form (HM_CERT_CT) verifies too, and only as that form; the old forms
 * (signed reply headers) are refused with a reason.
 */
#include <jansson.h>
#include <sodium.h>

#include "client/certificate.h"
#include "common/crypto.h"
#include "hm_test.h"
#include "common/wire.h"

#define CLIENT 100
#define TS 5

static struct hm_config cfg;
static struct hm_keypair kp[7];

static void cluster_of(uint32_t n, uint32_t f)
{
	hm_config_defaults(&cfg);
	cfg.n_members = n;
	cfg.max_faulty_nodes = f;
	for (uint32_t i = 0; i < n; i++) {
		if (hm_keypair_generate(&kp[i]) < 0)
			abort();
		cfg.members[i].id = i;
		memcpy(cfg.members[i].public_key, kp[i].pk, HM_PUBKEY_LEN);
	}
}

static void cluster(void)
{
	cluster_of(4, 1);
}

/* How a test reply's batch is made (defaults: the reply is leaf 1 of three,
 * the batch executed and signed at 42). */
struct batch_opts {
	uint64_t signed_seq;     /* the seq the root is signed for (0: exec seq) */
	bool other_batch;        /* the path and root of another batch */
	bool swap_leaf;          /* the other client's proof (leaf 0) */
	bool no_proof;           /* a reply re-sent from a restored state */
};

static size_t body_of(uint8_t *b, size_t cap, uint32_t client, uint64_t seq, const char *op,
		      uint8_t status, const char *result)
{
	uint8_t d[HM_DIGEST_LEN];
	bool refusal = status != HM_REPLY_RESULT;

	hm_digest(op, strlen(op), d);
	return hm_reply_body(b, cap, client, refusal ? 0 : seq, d, status, result,
			     refusal ? 0 : strlen(result));
}

/* A reply datagram from `sender` answering the request of op `op` at ts
 * with `status`; a result carries its batch proof signed with `key`. */
static size_t reply_opts(uint8_t *buf, size_t cap, uint32_t sender, const struct hm_keypair *key,
			 uint64_t ts, const char *op, uint8_t status, const char *result,
			 const struct batch_opts *o)
{
	uint8_t body[256], other[256], payload[1024];
	size_t blen, olen, plen;
	hm_merkle_hash leaves[3];
	struct hm_reply_batch rb;
	struct hm_reply_proof p;
	const uint64_t seq = 42;

	blen = body_of(body, sizeof(body), CLIENT, seq, op, status, result);
	if (status != HM_REPLY_RESULT || o->no_proof) {
		plen = hm_reply_payload_proven(payload, sizeof(payload), NULL, body, blen);
	} else {
		/* Another client's reply in the same batch, and a filler. */
		olen = body_of(other, sizeof(other), CLIENT + 1, seq, "op", HM_REPLY_RESULT,
			       result);
		hm_reply_leaf(7, other, olen, leaves[0]);
		hm_reply_leaf(ts, body, blen, leaves[1]);
		hm_reply_leaf(9, other, olen - 1, leaves[2]);
		if (o->other_batch) /* a batch where leaf 1 is not ours */
			hm_reply_leaf(11, other, olen - 2, leaves[1]);
		if (hm_reply_batch_sign(&rb, leaves, 3, sender, o->signed_seq ? o->signed_seq : seq,
					key) < 0)
			abort();
		/* swap_leaf: the other client's proof, attached to our body */
		hm_reply_batch_proof(&rb, o->swap_leaf ? 0 : 1, &p);
		hm_reply_batch_free(&rb);
		plen = hm_reply_payload_proven(payload, sizeof(payload), &p, body, blen);
	}
	return hm_msg_build(buf, cap, HM_MSG_REPLY, sender, 0, ts, NULL, payload, (uint32_t)plen,
			    NULL);
}

static size_t reply_to(uint8_t *buf, size_t cap, uint32_t sender, const struct hm_keypair *key,
		       uint64_t ts, const char *op, uint8_t status, const char *result)
{
	static const struct batch_opts none;

	return reply_opts(buf, cap, sender, key, ts, op, status, result, &none);
}

/* The result `result` of the request of op "op". */
static size_t reply(uint8_t *buf, size_t cap, uint32_t sender, const struct hm_keypair *key,
		    uint64_t ts, const char *result)
{
	return reply_to(buf, cap, sender, key, ts, "op", HM_REPLY_RESULT, result);
}

static int verify(json_t *j)
{
	uint8_t *op, *res;
	size_t ol, rl;
	char err[256];
	int rc = hm_cert_verify(j, &cfg, &op, &ol, &res, &rl, err, sizeof(err));

	if (rc == 0) {
		free(op);
		free(res);
	}
	return rc;
}

HM_TEST(collect_and_verify)
{
	struct hm_cert c;
	uint8_t buf[1024];
	size_t n;
	json_t *j, *t;

	cluster();
	if (!ASSERT_OK(hm_cert_init(&c, CLIENT, TS, "op", 2), "init"))
		return;
	n = reply(buf, sizeof(buf), 0, &kp[0], TS, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "one reply");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "the same again");
	n = reply(buf, sizeof(buf), 1, &kp[1], TS, "other answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "another result");
	n = reply(buf, sizeof(buf), 2, &kp[3], TS, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "signed with another replica's key");
	n = reply(buf, sizeof(buf), 2, &kp[2], TS + 1, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "another request's reply");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, (const uint8_t *)"garbage", 7), "garbage");
	n = reply_to(buf, sizeof(buf), 2, &kp[2], TS, "another op", HM_REPLY_RESULT, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "a reply naming another request");
	n = reply_to(buf, sizeof(buf), 2, &kp[2], TS, "op", HM_REPLY_CONFLICT, "");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "a refusal");
	n = reply(buf, sizeof(buf), 2, &kp[2], TS, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "two matching");
	n = reply(buf, sizeof(buf), 3, &kp[3], TS, "answer");
	ASSERT_TRUE(hm_cert_add(&c, &cfg, buf, n), "2f+1 matching: complete");
	j = hm_cert_to_json(&c, &cfg);
	if (!ASSERT_TRUE(j != NULL, "json"))
		return;
	ASSERT_EQ(json_array_size(json_object_get(j, "signatures")), 3, "three signatures");
	ASSERT_OK(verify(j), "verifies");

	t = json_deep_copy(j);
	json_object_set_new(t, "result", json_string("616e7377657221")); /* "answer!" */
	ASSERT_ERR(verify(t), "another result");
	json_decref(t);
	t = json_deep_copy(j);
	json_object_set_new(t, "exec_seq", json_integer(43));
	ASSERT_ERR(verify(t), "another sequence");
	json_decref(t);
	{
		uint8_t d[HM_DIGEST_LEN];
		char hex[2 * HM_DIGEST_LEN + 1];
		uint8_t *op, *res;
		size_t ol, rl;
		char err[256];

		/* The replies bind the op: another op (with its own, matching
		 * digest) does not verify, nor an op_digest that is not H(op). */
		t = json_deep_copy(j);
		json_object_set_new(t, "op", json_string("6f71")); /* "oq" */
		hm_digest("oq", 2, d);
		sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
		json_object_set_new(t, "op_digest", json_string(hex));
		ASSERT_ERR(verify(t), "another op");
		json_decref(t);
		t = json_deep_copy(j);
		json_object_set_new(t, "op_digest", json_string(hex));
		ASSERT_ERR(hm_cert_verify(t, &cfg, &op, &ol, &res, &rl, err, sizeof(err)),
			   "an op_digest that is not the op's");
		ASSERT_STRCONTAINS(err, "op_digest is not the digest of op", "reason");
		json_decref(t);
		/* The old form (signed reply headers) is named as such. */
		t = json_deep_copy(j);
		json_object_set_new(t, "version", json_integer(1));
		ASSERT_ERR(hm_cert_verify(t, &cfg, &op, &ol, &res, &rl, err, sizeof(err)),
			   "a version-1 certificate");
		ASSERT_STRCONTAINS(err, "before replies were signed once per batch", "reason");
		json_decref(t);
	}
	t = json_deep_copy(j);
	json_array_remove(json_object_get(t, "signatures"), 0);
	ASSERT_ERR(verify(t), "2f signatures");
	json_decref(t);
	t = json_deep_copy(j);
	json_array_set(json_object_get(t, "signatures"), 1,
		       json_array_get(json_object_get(t, "signatures"), 0));
	ASSERT_ERR(verify(t), "a replica twice");
	json_decref(t);
	/* Every hex digit of the root, the path and a signature counts. */
	{
		json_t *batch = json_object_get(j, "batch");
		const char *fields[] = { "root", "path0", "path1", "sig" };

		ASSERT_EQ(json_integer_value(json_object_get(batch, "size")), 3, "batch of three");
		ASSERT_EQ(json_array_size(json_object_get(batch, "path")), 2, "path of two");
		for (size_t f = 0; f < 4; f++)
			for (size_t at = 0; at < (f == 3 ? 2 * HM_SIG_LEN : 2 * HM_DIGEST_LEN); at++) {
				json_t *b, *o;
				const char *key = f == 3 ? "signature" : f == 0 ? "root" : NULL;
				char *hex;

				t = json_deep_copy(j);
				b = json_object_get(t, "batch");
				o = f == 3 ? json_array_get(json_object_get(t, "signatures"), 1) : b;
				if (key)
					hex = strdup(json_string_value(json_object_get(o, key)));
				else
					hex = strdup(json_string_value(json_array_get(
						json_object_get(b, "path"), f - 1)));
				hex[at] = hex[at] == '0' ? '1' : '0';
				if (key)
					json_object_set_new(o, key, json_string(hex));
				else
					json_array_set_new(json_object_get(b, "path"), f - 1,
							   json_string(hex));
				free(hex);
				ASSERT_ERR(verify(t), fields[f]);
				json_decref(t);
			}
	}
	{
		const char *keys[] = { "size", "index" };
		const int vals[][3] = { { 2, 4, 0 }, { 0, 2, 3 } };

		for (int k = 0; k < 2; k++)
			for (int v = 0; v < 3; v++) {
				t = json_deep_copy(j);
				json_object_set_new(json_object_get(t, "batch"), keys[k],
						    json_integer(vals[k][v]));
				ASSERT_ERR(verify(t), keys[k]);
				json_decref(t);
			}
		t = json_deep_copy(j);
		json_object_set_new(t, "timestamp", json_integer(TS + 1));
		ASSERT_ERR(verify(t), "another timestamp: the leaf binds it");
		json_decref(t);
		t = json_deep_copy(j);
		json_object_set_new(t, "client", json_integer(CLIENT + 1));
		ASSERT_ERR(verify(t), "another client");
		json_decref(t);
	}
	memcpy(cfg.members[0].public_key, kp[1].pk, HM_PUBKEY_LEN);
	ASSERT_ERR(verify(j), "another key for replica 0 in the config");
	json_decref(j);
	hm_cert_free(&c);
}

/* The same replies written in the CT verdict form: the header split from
 * its signature, no op; it verifies as CT and not as version 1. */
HM_TEST(ct_form)
{
	struct hm_cert c;
	uint8_t buf[1024], *op, *res;
	size_t n, ol, rl;
	char err[256];
	json_t *j, *e;

	cluster();
	if (!ASSERT_OK(hm_cert_init(&c, CLIENT, TS, "op", 2), "init"))
		return;
	for (uint32_t i = 0; i < 3; i++) {
		n = reply(buf, sizeof(buf), i, &kp[i], TS, "verdict");
		hm_cert_add(&c, &cfg, buf, n);
	}
	ASSERT_EQ(hm_cert_signers(&c, &cfg), 3, "three signers");
	j = hm_cert_to_json_as(&c, &cfg, HM_CERT_CT, json_pack("{s:s}", "result", "ok"));
	if (!ASSERT_TRUE(j != NULL, "json"))
		return;
	ASSERT_EQ(hm_cert_format_of(j), HM_CERT_CT, "names its format");
	ASSERT_EQ(json_array_size(json_object_get(j, "replies")), 3, "three replies");
	ASSERT_TRUE(json_object_get(j, "op") == NULL, "the op's digest only");
	ASSERT_OK(hm_cert_verify_as(j, &cfg, HM_CERT_CT, &op, &ol, &res, &rl, err, sizeof(err)), err);
	ASSERT_TRUE(op == NULL && rl == 7 && memcmp(res, "verdict", 7) == 0, "the result");
	free(res);
	ASSERT_ERR(verify(j), "not a version 1 certificate");
	{
		json_t *t = json_deep_copy(j);
		uint8_t d[HM_DIGEST_LEN];
		char hex[2 * HM_DIGEST_LEN + 1];

		hm_digest("oq", 2, d);
		sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
		json_object_set_new(t, "op_digest", json_string(hex));
		ASSERT_ERR(hm_cert_verify_as(t, &cfg, HM_CERT_CT, &op, &ol, &res, &rl, err,
					     sizeof(err)), "another op digest");
		json_object_del(t, "op_digest");
		ASSERT_ERR(hm_cert_verify_as(t, &cfg, HM_CERT_CT, &op, &ol, &res, &rl, err,
					     sizeof(err)), "no op digest");
		json_decref(t);
	}
	e = json_array_get(json_object_get(j, "replies"), 1);
	json_object_set(e, "signature", json_object_get(json_array_get(json_object_get(j, "replies"),
								       0), "signature"));
	ASSERT_ERR(hm_cert_verify_as(j, &cfg, HM_CERT_CT, &op, &ol, &res, &rl, err, sizeof(err)),
		   "another replica's signature");
	ASSERT_STRCONTAINS(err, "does not verify under replica 1", "reason");
	json_decref(j);
	hm_cert_free(&c);
}

/* The cases a naive check gets wrong, at collection and offline. */
HM_TEST(naive_breakers)
{
	const struct {
		const char *what;
		struct batch_opts o;
	} cases[] = {
		{ "a path from another batch", { .other_batch = true } },
		{ "a root signed for another seq", { .signed_seq = 43 } },
		{ "a leaf swapped between clients", { .swap_leaf = true } },
		{ "no proof (a reply re-sent after a restore)", { .no_proof = true } },
	};
	uint8_t buf[1024];
	size_t n;

	cluster();
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct hm_cert c;

		if (!ASSERT_OK(hm_cert_init(&c, CLIENT, TS, "op", 2), "init"))
			return;
		for (uint32_t i = 0; i < 2; i++) {
			n = reply(buf, sizeof(buf), i, &kp[i], TS, "answer");
			ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "good");
		}
		n = reply_opts(buf, sizeof(buf), 2, &kp[2], TS, "op", HM_REPLY_RESULT, "answer",
			       &cases[k].o);
		ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), cases[k].what);
		ASSERT_EQ(c.replies[2].have, false, cases[k].what);
		n = reply(buf, sizeof(buf), 3, &kp[3], TS, "answer");
		ASSERT_TRUE(hm_cert_add(&c, &cfg, buf, n), "the third good one completes it");
		hm_cert_free(&c);
	}
}

/* n = 7, f = 2: f+1 = 3 good signatures and f = 2 forged ones (made with
 * other keys, or over another seq) are not 2f+1; a certificate carrying
 * them is refused, at collection and offline. */
HM_TEST(f_forged_of_2f_plus_1)
{
	struct hm_cert c;
	uint8_t buf[1024];
	size_t n;
	json_t *j, *t, *sigs;
	struct batch_opts wrong_seq = { .signed_seq = 41 };

	cluster_of(7, 2);
	if (!ASSERT_OK(hm_cert_init(&c, CLIENT, TS, "op", 2), "init"))
		return;
	for (uint32_t i = 0; i < 3; i++) {
		n = reply(buf, sizeof(buf), i, &kp[i], TS, "answer");
		ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "f+1 good");
	}
	n = reply(buf, sizeof(buf), 3, &kp[6], TS, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "forged: another replica's key");
	n = reply_opts(buf, sizeof(buf), 4, &kp[4], TS, "op", HM_REPLY_RESULT, "answer", &wrong_seq);
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "forged: over another seq");
	ASSERT_EQ(hm_cert_signers(&c, &cfg), 0, "no quorum");
	for (uint32_t i = 3; i < 5; i++) {
		n = reply(buf, sizeof(buf), i, &kp[i], TS, "answer");
		hm_cert_add(&c, &cfg, buf, n);
	}
	ASSERT_EQ(hm_cert_signers(&c, &cfg), 5, "2f+1 good ones");
	j = hm_cert_to_json(&c, &cfg);
	if (!ASSERT_TRUE(j != NULL, "json"))
		return;
	ASSERT_OK(verify(j), "2f+1 good signatures verify");
	/* Replace f of them with signatures by other keys over the same
	 * statement: f+1 good and f forged. */
	t = json_deep_copy(j);
	sigs = json_object_get(t, "signatures");
	for (size_t k = 3; k < 5; k++) {
		struct hm_reply_proof p;
		uint8_t st[HM_RP_STATEMENT_LEN], sig[HM_SIG_LEN];
		char hex[2 * HM_SIG_LEN + 1];
		uint32_t id = (uint32_t)json_integer_value(json_object_get(json_array_get(sigs, k),
									     "replica"));

		memcpy(&p, &c.replies[c.winner].proof, sizeof(p));
		hm_reply_statement(st, id, 42, p.size, p.root);
		hm_sign(st, sizeof(st), kp[(id + 1) % 7].sk, sig);
		sodium_bin2hex(hex, sizeof(hex), sig, sizeof(sig));
		json_object_set_new(json_array_get(sigs, k), "signature", json_string(hex));
	}
	ASSERT_ERR(verify(t), "f+1 good and f forged");
	json_array_remove(sigs, 4);
	json_array_remove(sigs, 3);
	ASSERT_ERR(verify(t), "f+1 good alone");
	json_decref(t);
	json_decref(j);
	hm_cert_free(&c);
}

/* The client takes f+1 matching MAC-authenticated replies without any
 * signature, but a certificate needs proofs: unproven replies (restored
 * state) never reach one, and the old CT form is named. */
HM_TEST(old_ct_form_refused)
{
	struct hm_cert c;
	uint8_t buf[1024], *op, *res;
	size_t n, ol, rl;
	char err[256];
	json_t *j;

	cluster();
	if (!ASSERT_OK(hm_cert_init(&c, CLIENT, TS, "op", 2), "init"))
		return;
	for (uint32_t i = 0; i < 3; i++) {
		n = reply(buf, sizeof(buf), i, &kp[i], TS, "verdict");
		hm_cert_add(&c, &cfg, buf, n);
	}
	j = hm_cert_to_json_as(&c, &cfg, HM_CERT_CT, NULL);
	if (!ASSERT_TRUE(j != NULL, "json"))
		return;
	json_object_set_new(j, "format", json_string(HM_CERT_CT_FORMAT_V1));
	ASSERT_ERR(hm_cert_verify_as(j, &cfg, HM_CERT_CT, &op, &ol, &res, &rl, err, sizeof(err)),
		   "format /1");
	ASSERT_STRCONTAINS(err, "before replies were signed once per batch", "reason");
	json_decref(j);
	hm_cert_free(&c);
}

__attribute__((constructor(200))) static void init_crypto(void)
{
	if (hm_crypto_init() < 0)
		abort();
}
