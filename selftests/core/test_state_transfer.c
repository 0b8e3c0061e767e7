// SPDX-License-Identifier: MIT
/*
 * State transfer: the chunk digest (checked against an independent
 * recursive RFC 6962 tree), the STATE_REQUEST/STATE_CHUNK payloads, the
 * serving side, and the fetching state machine driven over a simulated
 * network with a virtual clock: honest, corrupting, silent and lossy peers.
 */
#include <sodium.h>

#include "common/crypto.h"
#include "hm_test.h"
#include "core/state_transfer.h"
#include "common/wire.h"

#define C HM_ST_CHUNK_SIZE

static uint8_t *make_snapshot(uint64_t len, uint64_t seed)
{
	uint8_t *p = malloc(len ? len : 1);
	uint64_t s = seed | 1;

	for (uint64_t i = 0; i < len; i++)
		p[i] = (uint8_t)hm_test_rand(&s);
	return p;
}

/* ---- the digest, recomputed the RFC 6962 way (recursive split) ------------ */

static void ref_leaf(const uint8_t *d, size_t len, uint8_t out[32])
{
	uint8_t *b = malloc(len + 1);

	b[0] = 0;
	memcpy(b + 1, d, len);
	crypto_generichash(out, 32, b, len + 1, NULL, 0);
	free(b);
}

static void ref_mth(const uint8_t *snap, uint64_t len, uint32_t lo, uint32_t n, uint8_t out[32])
{
	uint8_t in[65], l[32], r[32];
	uint32_t k = 1;

	if (n == 1) {
		ref_leaf(snap + (uint64_t)lo * C, hm_st_chunk_len(len, lo), out);
		return;
	}
	while (k * 2 < n)
		k *= 2;
	ref_mth(snap, len, lo, k, l);
	ref_mth(snap, len, lo + k, n - k, r);
	in[0] = 1;
	memcpy(in + 1, l, 32);
	memcpy(in + 33, r, 32);
	crypto_generichash(out, 32, in, 65, NULL, 0);
}

static void ref_digest(const uint8_t *snap, uint64_t len, uint8_t out[32])
{
	uint8_t root[32], in[45];

	ref_mth(snap, len, 0, hm_st_chunk_count(len), root);
	in[0] = 2;
	hm_put_be64(in + 1, len);
	hm_put_be32(in + 9, C);
	memcpy(in + 13, root, 32);
	crypto_generichash(out, 32, in, 45, NULL, 0);
}

static const uint64_t sizes[] = { 0, 1, C - 1, C, C + 1, 2 * C, 3 * C, 5 * C + 7,
				  7 * C, 8 * C, 9 * C - 1, 13 * C + 100, 64 * C };

HM_TEST(digest_matches_rfc6962_reference)
{
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t len = sizes[k];
		uint8_t *snap = make_snapshot(len, 100 + k);
		uint8_t a[32], b[32];
		struct hm_st_server srv;

		ASSERT_OK(hm_st_state_digest(snap, len, a), "state digest");
		ref_digest(snap, len, b);
		ASSERT_MEMEQ(a, b, 32, "digest equals the recursive RFC 6962 form");
		ASSERT_OK(hm_st_server_init(&srv, 7, snap, len), "server init");
		ASSERT_MEMEQ(srv.digest, a, 32, "server digest");
		/* A different snapshot of the same length has another digest. */
		if (len) {
			snap[len / 2] ^= 1;
			ASSERT_OK(hm_st_state_digest(snap, len, b), "state digest");
			ASSERT_TRUE(memcmp(a, b, 32) != 0, "one flipped bit changes the digest");
		}
		hm_st_server_free(&srv);
		free(snap);
	}
	ASSERT_EQ(hm_st_chunk_count(0), 1, "empty state: one chunk");
	ASSERT_EQ(hm_st_chunk_count(HM_ST_MAX_STATE), HM_ST_MAX_CHUNKS, "largest state");
	ASSERT_EQ(hm_st_chunk_count(HM_ST_MAX_STATE + 1), 0, "above the limit");
	ASSERT_EQ(hm_st_proof_len(HM_ST_MAX_CHUNKS, 12345), HM_ST_MAX_PROOF, "longest path");
	ASSERT_TRUE(HM_HDR_LEN + HM_ST_CHUNK_MAX_PAYLOAD <= 17088, "a chunk fits 17088 bytes");
	ASSERT_TRUE(HM_HDR_LEN + HM_ST_CHUNK_MAX_PAYLOAD <= HM_MAX_DATAGRAM, "a chunk fits a datagram");
}

/* Every chunk the server hands out decodes and verifies, for every size. */
HM_TEST(every_served_chunk_verifies)
{
	static uint8_t buf[HM_ST_CHUNK_MAX_PAYLOAD];

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		uint64_t len = sizes[k];
		uint8_t *snap = make_snapshot(len, 200 + k);
		struct hm_st_server srv;
		struct hm_st_request r = { .seq = 300 };
		int bad = 0;

		ASSERT_OK(hm_st_server_init(&srv, 300, snap, len), "server init");
		memcpy(r.digest, srv.digest, 32);
		for (r.index = 0; r.index < srv.count; r.index++) {
			struct hm_st_chunk c;
			size_t n = hm_st_serve(&srv, &r, buf, sizeof(buf));

			if (n == 0 || hm_st_chunk_decode(buf, n, &c) < 0 || !hm_st_chunk_verify(&c) ||
			    c.data_len != hm_st_chunk_len(len, r.index) ||
			    memcmp(c.data, snap + (uint64_t)r.index * C, c.data_len) != 0)
				bad++;
		}
		ASSERT_EQ(bad, 0, "chunks that did not verify");
		/* Not ours: another seq, another digest, an index past the end. */
		ASSERT_EQ(hm_st_serve(&srv, &r, buf, sizeof(buf)), 0, "index past the end");
		r.index = 0;
		r.seq = 301;
		ASSERT_EQ(hm_st_serve(&srv, &r, buf, sizeof(buf)), 0, "other seq");
		r.seq = 300;
		r.digest[0] ^= 1;
		ASSERT_EQ(hm_st_serve(&srv, &r, buf, sizeof(buf)), 0, "other digest");
		r.digest[0] ^= 1;
		ASSERT_EQ(hm_st_serve(&srv, &r, buf, HM_ST_CHUNK_FIXED - 1), 0, "cap too small");
		hm_st_server_free(&srv);
		free(snap);
	}
}

/* ---- payloads ------------------------------------------------------------ */

HM_TEST(request_roundtrip_and_malformed)
{
	struct hm_st_request r = { .seq = 0x0102030405060708ull, .index = 77 }, d;
	uint8_t buf[64];

	memset(r.digest, 0xab, 32);
	ASSERT_EQ(hm_st_request_encode(buf, sizeof(buf), &r), HM_ST_REQUEST_LEN, "encode");
	ASSERT_EQ(hm_st_request_encode(buf, HM_ST_REQUEST_LEN - 1, &r), 0, "cap too small");
	ASSERT_OK(hm_st_request_decode(buf, HM_ST_REQUEST_LEN, &d), "decode");
	ASSERT_EQ(d.seq, r.seq, "seq");
	ASSERT_EQ(d.index, 77, "index");
	ASSERT_MEMEQ(d.digest, r.digest, 32, "digest");
	for (size_t len = 0; len < sizeof(buf); len++)
		if (len != HM_ST_REQUEST_LEN)
			ASSERT_ERR(hm_st_request_decode(buf, len, &d), "wrong length refused");
	ASSERT_ERR(hm_st_request_decode(NULL, HM_ST_REQUEST_LEN, &d), "no buffer");
	r.index = HM_ST_MAX_CHUNKS;
	hm_st_request_encode(buf, sizeof(buf), &r);
	ASSERT_ERR(hm_st_request_decode(buf, HM_ST_REQUEST_LEN, &d), "index beyond any state");
}

/* A served chunk of a 5-chunk state, for the malformed-input cases. */
static size_t sample_chunk(uint8_t *buf, size_t cap, uint32_t index, struct hm_st_server *srv,
			   uint8_t **snap)
{
	struct hm_st_request r = { .seq = 9, .index = index };

	*snap = make_snapshot(4 * C + 1000, 9);
	hm_st_server_init(srv, 9, *snap, 4 * C + 1000);
	memcpy(r.digest, srv->digest, 32);
	return hm_st_serve(srv, &r, buf, cap);
}

HM_TEST(chunk_malformed_refused)
{
	static uint8_t buf[HM_ST_CHUNK_MAX_PAYLOAD + 8], m[HM_ST_CHUNK_MAX_PAYLOAD + 8];
	struct hm_st_server srv;
	struct hm_st_chunk c;
	uint8_t *snap;
	size_t n = sample_chunk(buf, sizeof(buf), 4, &srv, &snap);
	int accepted = 0;
	uint32_t pc;

	ASSERT_TRUE(n > 0, "served");
	ASSERT_OK(hm_st_chunk_decode(buf, n, &c), "the valid one decodes");
	pc = c.proof_count;
	ASSERT_EQ(pc, 1, "chunk 4 of 5 has a one-hash path");
	ASSERT_EQ(c.data_len, 1000, "last chunk is short");
	/* Every truncation and one extra byte. */
	for (size_t len = 0; len < n; len++)
		accepted += hm_st_chunk_decode(buf, len, &c) == 0;
	ASSERT_EQ(accepted, 0, "truncated chunks decoded");
	ASSERT_ERR(hm_st_chunk_decode(buf, n + 1, &c), "trailing byte");
	ASSERT_ERR(hm_st_chunk_decode(NULL, 0, &c), "no buffer");
	/* Field by field. */
	memcpy(m, buf, n);
	hm_put_be32(m + 52, pc + 1);
	ASSERT_ERR(hm_st_chunk_decode(m, n, &c), "path one too long");
	hm_put_be32(m + 52, pc - 1);
	ASSERT_ERR(hm_st_chunk_decode(m, n, &c), "path one too short");
	memcpy(m, buf, n);
	hm_put_be32(m + 48, 5);
	ASSERT_ERR(hm_st_chunk_decode(m, n, &c), "index past the last chunk");
	hm_put_be32(m + 48, 0xffffffffu);
	ASSERT_ERR(hm_st_chunk_decode(m, n, &c), "index 2^32-1");
	memcpy(m, buf, n);
	hm_put_be64(m + 40, HM_ST_MAX_STATE + 1);
	ASSERT_ERR(hm_st_chunk_decode(m, n, &c), "state above the limit");
	hm_put_be64(m + 40, 4 * C + 999);
	ASSERT_ERR(hm_st_chunk_decode(m, n, &c), "data length disagrees with total_len");

	/* Every single-byte change: refused by decode or verify, or it moved
	 * to another seq (which the fetcher ignores as stale). */
	accepted = 0;
	for (size_t i = 0; i < n; i++) {
		memcpy(m, buf, n);
		m[i] ^= 0x5a;
		if (hm_st_chunk_decode(m, n, &c) == 0 && hm_st_chunk_verify(&c) && c.seq == 9)
			accepted++;
	}
	ASSERT_EQ(accepted, 0, "a changed chunk still verified for the target");
	hm_st_server_free(&srv);
	free(snap);
}

/* A chunk in a real datagram: signed, framed, digest-checked by wire.c. */
HM_TEST(chunk_in_a_datagram)
{
	static uint8_t payload[HM_ST_CHUNK_MAX_PAYLOAD], dgram[HM_MAX_DATAGRAM];
	struct hm_st_server srv;
	struct hm_keypair kp;
	uint8_t seed[32] = { 3 }, *snap;
	struct hm_msg m;
	struct hm_st_chunk c;
	enum hm_drop_reason why;
	size_t n, len;

	ASSERT_OK(hm_keypair_from_seed(&kp, seed), "key");
	n = sample_chunk(payload, sizeof(payload), 1, &srv, &snap);
	len = hm_msg_build(dgram, sizeof(dgram), HM_MSG_STATE_CHUNK, 2, 0, 9, NULL, payload,
			   (uint32_t)n, &kp);
	ASSERT_TRUE(len > 0 && len <= 17088, "built");
	ASSERT_OK(hm_msg_decode(dgram, len, HM_MAX_DATAGRAM, &m, &why), "framing");
	ASSERT_TRUE(hm_msg_payload_ok(&m, &why), "payload digest");
	ASSERT_OK(hm_st_chunk_from_msg(&m, &c), "chunk decodes");
	ASSERT_TRUE(hm_st_chunk_verify(&c), "chunk verifies");
	ASSERT_EQ(c.seq, m.seq, "header seq is the payload seq");
	{
		struct hm_st_request r;

		ASSERT_ERR(hm_st_request_from_msg(&m, &r), "a chunk is not a request");
	}
	/* The header's seq disagreeing with the payload's is refused. */
	len = hm_msg_build(dgram, sizeof(dgram), HM_MSG_STATE_CHUNK, 2, 0, 10, NULL, payload,
			   (uint32_t)n, &kp);
	ASSERT_OK(hm_msg_decode(dgram, len, HM_MAX_DATAGRAM, &m, &why), "framing");
	ASSERT_ERR(hm_st_chunk_from_msg(&m, &c), "header seq 10, payload seq 9");
	/* A request, both ways. */
	{
		struct hm_st_request r = { .seq = 9, .index = 3 }, back;
		uint8_t rp[HM_ST_REQUEST_LEN];

		memcpy(r.digest, srv.digest, 32);
		hm_st_request_encode(rp, sizeof(rp), &r);
		len = hm_msg_build(dgram, sizeof(dgram), HM_MSG_STATE_REQUEST, 1, 0, 9, NULL, rp,
				   sizeof(rp), &kp);
		ASSERT_OK(hm_msg_decode(dgram, len, HM_MAX_DATAGRAM, &m, &why), "framing");
		ASSERT_TRUE(hm_msg_payload_ok(&m, &why), "payload digest");
		ASSERT_OK(hm_st_request_from_msg(&m, &back), "request");
		ASSERT_EQ(back.index, 3, "index");
		ASSERT_ERR(hm_st_chunk_from_msg(&m, &c), "a request is not a chunk");
		len = hm_msg_build(dgram, sizeof(dgram), HM_MSG_STATE_REQUEST, 1, 0, 8, NULL, rp,
				   sizeof(rp), &kp);
		hm_msg_decode(dgram, len, HM_MAX_DATAGRAM, &m, &why);
		ASSERT_ERR(hm_st_request_from_msg(&m, &back), "header seq 8, payload seq 9");
	}
	hm_st_server_free(&srv);
	free(snap);
}

/* ---- the fetcher over a simulated network ---------------------------------- */

enum behaviour { GOOD, SILENT, FLIP_DATA, FLIP_PROOF, WRONG_LEN, MALFORMED, STALE_SEQ };

struct peer {
	enum behaviour b;
	struct hm_st_server srv;
};

struct event {
	uint64_t at;
	uint32_t from;
	size_t len;
	uint8_t *payload;
};

struct net {
	struct event ev[4096];
	size_t nev;
	uint64_t rng;
	unsigned loss_pct;
	unsigned max_delay;
};

static void answer(struct net *net, struct peer *peers, uint64_t now, const struct hm_st_send *s)
{
	struct peer *p = &peers[s->peer];
	uint8_t *buf;
	size_t n;

	if (p->b == SILENT || (net->loss_pct && hm_test_rand(&net->rng) % 100 < net->loss_pct))
		return;
	buf = malloc(HM_ST_CHUNK_MAX_PAYLOAD);
	n = hm_st_serve(&p->srv, &s->req, buf, HM_ST_CHUNK_MAX_PAYLOAD);
	if (n == 0) {
		free(buf);
		return;
	}
	switch (p->b) {
	case FLIP_DATA: buf[n - 1] ^= 0x80; break;
	case FLIP_PROOF:
		if (hm_get_be32(buf + 52))
			buf[HM_ST_CHUNK_FIXED] ^= 1;
		else
			buf[8] ^= 1; /* no path: spoil the digest instead */
		break;
	case WRONG_LEN: {
		/* A whole consistent chunk of another (shorter) state, claimed
		 * under the target's digest. */
		uint64_t tl = hm_get_be64(buf + 40);

		if (tl > C)
			hm_put_be64(buf + 40, tl - 1);
		else
			buf[n - 1] ^= 1;
		break;
	}
	case MALFORMED: n -= 1; break;
	case STALE_SEQ: hm_put_be64(buf, hm_get_be64(buf) - 100); break;
	default: break;
	}
	/* Loss of the answer too, and a random delay (so answers reorder). */
	if (net->loss_pct && hm_test_rand(&net->rng) % 100 < net->loss_pct) {
		free(buf);
		return;
	}
	if (net->nev == sizeof(net->ev) / sizeof(net->ev[0])) {
		free(buf);
		return;
	}
	net->ev[net->nev++] = (struct event){
		.at = now + 1 + hm_test_rand(&net->rng) % (net->max_delay ? net->max_delay : 5),
		.from = s->peer, .len = n, .payload = buf,
	};
}

struct run_result {
	enum hm_st_state state;
	enum hm_st_failure failure;
	uint64_t now;
	unsigned verdicts[HM_ST_NOT_RUNNING + 1];
	uint8_t *snap;
	uint64_t len;
};

/* Start without the length (as from a CHECKPOINT, which has only the
 * digest). */
static bool run_unknown_len;

/* Run a transfer of snap from peers 1..npeers (we are replica 0). */
static struct run_result run(struct hm_st *st, struct peer *peers, uint32_t npeers,
			     const uint8_t *snap, uint64_t len, struct net *net,
			     const struct hm_st_params *params_in)
{
	struct hm_st_params params = { .timeout_ms = 50 };
	struct hm_st_target t = { .seq = 500, .total_len = len };
	struct run_result r = { 0 };
	struct hm_st_send out[16];
	uint64_t now = 1000;

	if (params_in)
		params = *params_in;
	for (uint32_t i = 1; i <= npeers; i++) {
		hm_st_server_init(&peers[i].srv, 500, snap, len);
		params.peers |= 1u << i;
	}
	hm_st_state_digest(snap, len, t.digest);
	if (run_unknown_len)
		t.total_len = HM_ST_LEN_UNKNOWN;
	hm_st_start(st, &t, &params);
	for (int steps = 0; st->state == HM_ST_RUNNING && steps < 1000000; steps++) {
		size_t n;
		uint64_t next;

		while ((n = hm_st_tick(st, now, out, 16)) > 0)
			for (size_t k = 0; k < n; k++)
				answer(net, peers, now, &out[k]);
		if (st->state != HM_ST_RUNNING)
			break;
		/* Next event or deadline, whichever is first. */
		next = hm_st_next_deadline(st);
		for (size_t k = 0; k < net->nev; k++)
			if (net->ev[k].at < next)
				next = net->ev[k].at;
		if (next == UINT64_MAX)
			break;
		now = next > now ? next : now;
		for (size_t k = 0; k < net->nev;) {
			if (net->ev[k].at <= now) {
				struct event e = net->ev[k];

				net->ev[k] = net->ev[--net->nev];
				r.verdicts[hm_st_on_payload(st, e.from, e.payload, e.len)]++;
				free(e.payload);
			} else {
				k++;
			}
		}
	}
	for (size_t k = 0; k < net->nev; k++)
		free(net->ev[k].payload);
	net->nev = 0;
	r.state = st->state;
	r.failure = st->failure;
	r.now = now;
	r.snap = hm_st_take(st, &r.len);
	for (uint32_t i = 1; i <= npeers; i++)
		hm_st_server_free(&peers[i].srv);
	return r;
}

#define MIB (1u << 20)

HM_TEST(full_transfer_from_three_peers)
{
	struct peer peers[4] = { 0 };
	struct net net = { .rng = 1 };
	uint8_t *snap = make_snapshot(MIB, 42);
	struct hm_st st;
	struct run_result r = run(&st, peers, 3, snap, MIB, &net, NULL);

	ASSERT_EQ(r.state, HM_ST_DONE, "transfer done");
	ASSERT_TRUE(r.snap && r.len == MIB, "assembled");
	if (r.snap)
		ASSERT_MEMEQ(r.snap, snap, MIB, "the state");
	ASSERT_EQ(r.verdicts[HM_ST_ACCEPTED], MIB / C, "64 chunks accepted");
	for (int i = 1; i <= 3; i++) {
		ASSERT_TRUE(st.stats[i].accepted >= 10, "requests spread across the peers");
		ASSERT_EQ(st.stats[i].bad + st.stats[i].timeouts, 0, "no fault");
	}
	ASSERT_EQ(st.faulty, 0, "nobody blamed");
	ASSERT_EQ(hm_st_take(&st, &r.len), NULL, "taken once");
	free(r.snap);
	hm_st_free(&st);
	free(snap);
}

/* One peer corrupting chunks in each way: caught on the first bad chunk,
 * blamed, never asked again; the others finish the transfer. */
HM_TEST(corrupting_peer_blamed)
{
	static const enum behaviour modes[] = { FLIP_DATA, FLIP_PROOF, WRONG_LEN, MALFORMED };
	uint8_t *snap = make_snapshot(MIB, 43);

	for (size_t k = 0; k < sizeof(modes) / sizeof(modes[0]); k++) {
		struct peer peers[4] = { 0 };
		struct net net = { .rng = 2 + k };
		struct hm_st st;
		struct run_result r;
		uint32_t asked_before;

		peers[2].b = modes[k];
		r = run(&st, peers, 3, snap, MIB, &net, NULL);
		ASSERT_EQ(r.state, HM_ST_DONE, "transfer done");
		if (r.snap)
			ASSERT_MEMEQ(r.snap, snap, MIB, "the state");
		ASSERT_EQ(st.faulty, 1u << 2, "peer 2 blamed, only it");
		ASSERT_EQ(st.stats[2].bad, 1, "one bad chunk was enough");
		ASSERT_EQ(st.stats[2].accepted, 0, "nothing accepted from peer 2");
		ASSERT_EQ(r.verdicts[HM_ST_BAD_CHUNK], 1, "one bad_chunk verdict");
		/* Its remaining answers were ignored, and it was not asked again. */
		asked_before = st.stats[2].requested;
		ASSERT_TRUE(asked_before <= 8, "peer 2 asked only before the blame");
		free(r.snap);
		hm_st_free(&st);
	}
	free(snap);
}

/* The length learnt from the first verified chunk: with honest peers, and
 * with a liar that answers first with a chunk of another length. */
HM_TEST(length_learnt_from_first_chunk)
{
	uint8_t *snap = make_snapshot(MIB - 5, 49);

	run_unknown_len = true;
	for (int liar = 0; liar <= 1; liar++) {
		struct peer peers[4] = { 0 };
		struct net net = { .rng = 6 };
		struct hm_st st;
		struct run_result r;

		if (liar)
			peers[1].b = WRONG_LEN;
		r = run(&st, peers, 3, snap, MIB - 5, &net, NULL);
		ASSERT_EQ(r.state, HM_ST_DONE, "transfer done");
		ASSERT_TRUE(r.snap && r.len == MIB - 5, "length learnt");
		if (r.snap)
			ASSERT_MEMEQ(r.snap, snap, MIB - 5, "the state");
		ASSERT_EQ(st.faulty, liar ? 0x2u : 0u, "the liar, and only it, blamed");
		ASSERT_TRUE(st.stats[2].accepted + st.stats[3].accepted > 0, "others served");
		free(r.snap);
		hm_st_free(&st);
	}
	run_unknown_len = false;
	free(snap);
}

HM_TEST(silent_peer_times_out)
{
	struct peer peers[4] = { 0 };
	struct net net = { .rng = 3 };
	uint8_t *snap = make_snapshot(MIB, 44);
	struct hm_st st;
	struct run_result r;

	peers[1].b = SILENT;
	r = run(&st, peers, 3, snap, MIB, &net, NULL);
	ASSERT_EQ(r.state, HM_ST_DONE, "transfer done");
	if (r.snap)
		ASSERT_MEMEQ(r.snap, snap, MIB, "the state");
	ASSERT_TRUE(st.stats[1].timeouts > 0, "peer 1 timed out");
	ASSERT_EQ(st.stats[1].accepted, 0, "nothing from peer 1");
	ASSERT_EQ(st.faulty, 0, "a silent peer is not blamed (it may be loss)");
	/* A peer that keeps timing out is asked less: most chunks came from
	 * the other two. */
	ASSERT_TRUE(st.stats[1].requested < st.stats[2].requested + st.stats[3].requested,
		    "unresponsive peer asked less");
	free(r.snap);
	hm_st_free(&st);
	free(snap);
}

HM_TEST(all_peers_bad_fails_cleanly)
{
	uint8_t *snap = make_snapshot(MIB, 45);
	struct peer peers[4] = { 0 };
	struct net net = { .rng = 4 };
	struct hm_st st;
	struct run_result r;

	peers[1].b = FLIP_DATA;
	peers[2].b = FLIP_PROOF;
	peers[3].b = MALFORMED;
	r = run(&st, peers, 3, snap, MIB, &net, NULL);
	ASSERT_EQ(r.state, HM_ST_FAILED, "failed");
	ASSERT_EQ(r.failure, HM_ST_FAIL_NO_PEERS, "because every peer is faulty");
	ASSERT_EQ(st.faulty, 0xe, "all three blamed");
	ASSERT_TRUE(r.snap == NULL, "no state handed out");
	hm_st_free(&st);

	/* All silent: gives up after max_attempts on a chunk. */
	for (int i = 1; i <= 3; i++)
		peers[i].b = SILENT;
	r = run(&st, peers, 3, snap, MIB,
		&net, &(struct hm_st_params){ .timeout_ms = 50, .max_attempts = 6 });
	ASSERT_EQ(r.state, HM_ST_FAILED, "failed");
	ASSERT_EQ(r.failure, HM_ST_FAIL_ATTEMPTS, "after too many timeouts");
	ASSERT_TRUE(r.snap == NULL, "no state handed out");
	hm_st_free(&st);
	free(snap);
}

/* Stale answers (another checkpoint) are ignored, not blamed. */
HM_TEST(stale_chunks_ignored)
{
	uint8_t *snap = make_snapshot(3 * C, 46);
	struct peer peers[4] = { 0 };
	struct net net = { .rng = 5 };
	struct hm_st st;
	struct run_result r;

	peers[3].b = STALE_SEQ;
	r = run(&st, peers, 3, snap, 3 * C, &net, NULL);
	ASSERT_EQ(r.state, HM_ST_DONE, "done from peers 1 and 2");
	ASSERT_EQ(st.faulty, 0, "stale is not faulty");
	ASSERT_TRUE(r.verdicts[HM_ST_STALE] > 0, "stale answers seen");
	free(r.snap);
	hm_st_free(&st);
	free(snap);
}

HM_TEST(random_loss)
{
	uint64_t seed = 0x5eed0001;
	uint8_t *snap = make_snapshot(MIB, 47);

	printf("  random_loss seed %#" PRIx64 "\n", seed);
	for (unsigned loss = 10; loss <= 40; loss += 15) {
		struct peer peers[5] = { 0 };
		struct net net = { .rng = seed + loss, .loss_pct = loss, .max_delay = 40 };
		struct hm_st st;
		struct run_result r = run(&st, peers, 4, snap, MIB, &net,
					  &(struct hm_st_params){ .timeout_ms = 60 });

		ASSERT_EQ(r.state, HM_ST_DONE, "done despite loss");
		if (r.snap)
			ASSERT_MEMEQ(r.snap, snap, MIB, "the state");
		ASSERT_EQ(st.faulty, 0, "loss is nobody's fault");
		free(r.snap);
		hm_st_free(&st);
	}
	free(snap);
}

/* The state machine step by step: duplicates, late answers, faulty
 * senders, an empty state, bad targets. */
HM_TEST(state_machine_details)
{
	static uint8_t buf[HM_ST_CHUNK_MAX_PAYLOAD];
	uint8_t *snap = make_snapshot(2 * C, 48);
	struct hm_st_server srv;
	struct hm_st st;
	struct hm_st_target t = { .seq = 9, .total_len = 2 * C };
	struct hm_st_send out[8];
	size_t n, len;
	uint64_t got;

	hm_st_server_init(&srv, 9, snap, 2 * C);
	memcpy(t.digest, srv.digest, 32);
	ASSERT_OK(hm_st_start(&st, &t, &(struct hm_st_params){ .peers = 0x6, .timeout_ms = 10,
							     .max_inflight = 1 }),
		  "start");
	n = hm_st_tick(&st, 0, out, 8);
	ASSERT_EQ(n, 1, "one request at a time");
	ASSERT_EQ(out[0].req.index, 0, "chunk 0 first");
	ASSERT_EQ(hm_st_next_deadline(&st), 10, "deadline");
	ASSERT_EQ(hm_st_tick(&st, 5, out + 1, 7), 0, "nothing new before the deadline");
	/* Timeout: asked again of the other peer. */
	n = hm_st_tick(&st, 10, out + 1, 7);
	ASSERT_EQ(n, 1, "re-asked");
	ASSERT_TRUE(out[1].peer != out[0].peer && out[1].req.index == 0, "of the other peer");
	/* The late answer from the first peer is still good. */
	len = hm_st_serve(&srv, &out[0].req, buf, sizeof(buf));
	ASSERT_EQ(hm_st_on_payload(&st, out[0].peer, buf, len), HM_ST_ACCEPTED, "late answer");
	ASSERT_EQ(hm_st_on_payload(&st, out[1].peer, buf, len), HM_ST_DUPLICATE, "duplicate");
	ASSERT_EQ(st.inflight, 0, "the re-ask is settled by the late answer");
	/* A sender outside the replica range, and a blamed one. */
	ASSERT_EQ(hm_st_on_payload(&st, 99, buf, len), HM_ST_STALE, "not a replica");
	ASSERT_EQ(hm_st_on_payload(&st, 1, buf, len - 1), HM_ST_BAD_CHUNK, "malformed from 1");
	ASSERT_EQ(hm_st_on_payload(&st, 1, buf, len), HM_ST_FROM_FAULTY, "then ignored");
	ASSERT_EQ(st.state, HM_ST_RUNNING, "still running");
	n = hm_st_tick(&st, 20, out, 8);
	ASSERT_EQ(n, 1, "chunk 1 asked");
	ASSERT_EQ(out[0].req.index, 1, "index 1");
	ASSERT_TRUE(out[0].peer == 2, "of the only good peer");
	len = hm_st_serve(&srv, &out[0].req, buf, sizeof(buf));
	ASSERT_EQ(hm_st_on_payload(&st, 2, buf, len), HM_ST_ACCEPTED, "chunk 1");
	ASSERT_EQ(st.state, HM_ST_DONE, "done");
	ASSERT_EQ(hm_st_on_payload(&st, 2, buf, len), HM_ST_NOT_RUNNING, "after the end");
	ASSERT_EQ(hm_st_tick(&st, 30, out, 8), 0, "no requests after the end");
	free(hm_st_take(&st, &got));
	ASSERT_EQ(got, 2 * C, "length");
	hm_st_free(&st);
	hm_st_server_free(&srv);

	/* An empty state: one empty chunk. */
	hm_st_server_init(&srv, 1, snap, 0);
	t = (struct hm_st_target){ .seq = 1, .total_len = 0 };
	memcpy(t.digest, srv.digest, 32);
	ASSERT_OK(hm_st_start(&st, &t, &(struct hm_st_params){ .peers = 0x2 }), "start empty");
	ASSERT_EQ(hm_st_tick(&st, 0, out, 8), 1, "one request");
	len = hm_st_serve(&srv, &out[0].req, buf, sizeof(buf));
	ASSERT_EQ(len, HM_ST_CHUNK_FIXED, "no path, no data");
	ASSERT_EQ(hm_st_on_payload(&st, 1, buf, len), HM_ST_ACCEPTED, "empty chunk");
	ASSERT_EQ(st.state, HM_ST_DONE, "done");
	hm_st_free(&st);
	hm_st_server_free(&srv);

	/* Targets that cannot start. */
	t.total_len = HM_ST_MAX_STATE + 1;
	ASSERT_ERR(hm_st_start(&st, &t, &(struct hm_st_params){ .peers = 0x2 }), "too large");
	ASSERT_EQ(st.failure, HM_ST_FAIL_BAD_TARGET, "bad target");
	hm_st_free(&st);
	t.total_len = 10;
	ASSERT_ERR(hm_st_start(&st, &t, &(struct hm_st_params){ .peers = 0 }), "no peers");
	ASSERT_EQ(st.failure, HM_ST_FAIL_NO_PEERS, "no peers");
	hm_st_free(&st);
	free(snap);
}

static void __attribute__((constructor)) init_crypto(void)
{
	if (hm_crypto_init() < 0)
		abort();
}
