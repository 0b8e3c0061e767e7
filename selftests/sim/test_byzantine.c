// SPDX-License-Identifier: MIT
/*
 * The Byzantine modes (user/testing/byzantine.c): each mutation on its own, then
 * every mode with f faulty replicas on the simulator at n = 4 and n = 7
 * (safety, agreement, linearizability, liveness within a stated bound), a
 * Twins run, and a seeded randomized runner in the spirit of Twins and
 * Jepsen.
 *
 *   HM_SIM_SEEDS=N   seeds for `randomized_faults` (default 24)
 *   HM_SIM_FIRST=N   start at seed N (default 1; HM_SIM_SEEDS stays the last),
 *                    to continue a sweep
 *   HM_SIM_SEED=N    run only seed N (to replay a failure exactly)
 *   HM_SIM_N=4|7     randomized_faults: only this n (default: both)
 *   HM_SIM_SHARD=i/k, HM_I17_PENDING: see sim_checks.h
 */
#include "testing/byzantine.h"
#include "hm_test.h"
#include "sim_checks.h"
#include "service/kv/kv.h"
#include "testing/sim.h"
#include "core/state_transfer.h"
#include "common/wire.h"

#define SECOND 1000000ull
/* Liveness: every operation completes within this much virtual time of its
 * invocation, faults included (f faulty primaries in a row cost f view
 * changes with doubling timeouts: 0.5 + 1 s at f = 2, plus client
 * retransmission). */
#define LIVENESS_BOUND_US (5 * SECOND)

/* ---- each mutation on its own ------------------------------------------ */

struct captured {
	uint8_t buf[8][2048];
	size_t len[8];
	uint32_t to[8];
	int n;
};

static void capture(void *ctx, const uint8_t *buf, size_t len, uint32_t to)
{
	struct captured *c = ctx;

	if (c->n < 8 && len <= sizeof(c->buf[0])) {
		memcpy(c->buf[c->n], buf, len);
		c->len[c->n] = len;
		c->to[c->n++] = to;
	}
}

static void test_keys(struct hm_keypair *kp, uint8_t fill)
{
	uint8_t seed[32];

	memset(seed, fill, sizeof(seed));
	hm_crypto_init();
	hm_keypair_from_seed(kp, seed);
}

static struct hm_byz *byz_for(const char *spec, uint32_t id, const struct hm_keypair *kp)
{
	struct hm_byz_opts o;
	char err[256];

	if (!ASSERT_EQ(hm_byz_parse(spec, &o, err, sizeof(err)), 0, err))
		return NULL;
	return hm_byz_new(&o, id, 4, 20, kp);
}

static size_t build(uint8_t *buf, uint8_t type, uint64_t seq, const void *payload, uint32_t plen,
		    const uint8_t *digest, const struct hm_keypair *kp)
{
	return hm_msg_build(buf, 2048, type, 0, 3, seq, digest, payload, plen, kp);
}

static bool decodes(const uint8_t *buf, size_t len, struct hm_msg *m)
{
	enum hm_drop_reason why = HM_DROP_REASON_MAX;

	return hm_msg_decode(buf, len, HM_MAX_DATAGRAM, m, &why) == 0 && hm_msg_payload_ok(m, &why);
}

HM_TEST(parse_modes)
{
	struct hm_byz_opts o;
	char err[256], desc[256];

	ASSERT_EQ(hm_byz_parse("equivocate,delay-votes:250,crash", &o, err, sizeof(err)), 0, err);
	ASSERT_EQ(o.modes, (1u << HM_BYZ_EQUIVOCATE) | (1u << HM_BYZ_DELAY_VOTES) |
			   (1u << HM_BYZ_CRASH), "three modes");
	ASSERT_EQ(o.arg[HM_BYZ_DELAY_VOTES], 250, "argument");
	ASSERT_TRUE(strcmp(hm_byz_describe(&o, desc, sizeof(desc)),
			   "crash,equivocate,delay-votes:250") == 0, desc);
	ASSERT_EQ(hm_byz_parse("equivocate,nonsense", &o, err, sizeof(err)), -1, "unknown mode");
	ASSERT_TRUE(strstr(err, "nonsense") != NULL, err);
	ASSERT_EQ(hm_byz_parse("delay-votes:", &o, err, sizeof(err)), -1, "empty argument");
	ASSERT_EQ(hm_byz_parse("delay-votes:x", &o, err, sizeof(err)), -1, "bad argument");
	ASSERT_EQ(hm_byz_parse("delay-votes:0", &o, err, sizeof(err)), -1, "zero argument");
	ASSERT_EQ(hm_byz_parse("", &o, err, sizeof(err)), -1, "empty list");
	ASSERT_EQ(hm_byz_parse("crash,", &o, err, sizeof(err)), 0, "trailing comma");
}

/* The primary (id 3 here, n = 4) keeps the batch for the lower half of the
 * others and sends the null batch, validly signed, to the upper half. */
HM_TEST(equivocate_splits_the_others)
{
	struct hm_keypair kp;
	struct captured c = { 0 };
	struct hm_msg m[3];
	uint8_t buf[2048], batch[12] = { 0, 0, 0, 1, 0, 0, 0, 4, 'a', 'b', 'c', 'd' };
	size_t len;
	struct hm_byz *b;

	test_keys(&kp, 7);
	b = byz_for("equivocate", 3, &kp);
	if (!b)
		return;
	len = build(buf, HM_MSG_PRE_PREPARE, 5, batch, sizeof(batch), NULL, &kp);
	for (uint32_t to = 0; to < 3; to++)
		hm_byz_outgoing(b, buf, len, to, true, 1, capture, &c);
	if (!ASSERT_EQ(c.n, 3, "one datagram each"))
		goto out;
	for (int i = 0; i < 3; i++) {
		ASSERT_TRUE(decodes(c.buf[i], c.len[i], &m[i]), "well formed, digest = H(payload)");
		ASSERT_TRUE(hm_verify_header(m[i].hdr, kp.pk), "signed with the replica's key");
		ASSERT_EQ(m[i].seq, 5, "same slot");
	}
	ASSERT_TRUE(memcmp(m[0].digest, buf + HM_OFF_DIGEST, HM_DIGEST_LEN) == 0, "rank 0: real");
	ASSERT_TRUE(memcmp(m[1].digest, buf + HM_OFF_DIGEST, HM_DIGEST_LEN) != 0, "rank 1: other");
	ASSERT_TRUE(memcmp(m[1].digest, m[2].digest, HM_DIGEST_LEN) == 0, "upper half agrees");
	ASSERT_EQ(m[2].payload_len, 4, "the null batch");
	ASSERT_EQ(hm_byz_stats(b)->applied[HM_BYZ_EQUIVOCATE], 2, "counted");
out:
	hm_byz_free(b);
}

/* forge-sig: re-signed with another key (canonical, fails verification);
 * corrupt-sig: R flipped (canonical, fails).  Both keep the content. */
HM_TEST(signature_modes)
{
	static const uint8_t digest[HM_DIGEST_LEN] = { 1, 2, 3 };
	const char *specs[] = { "forge-sig", "corrupt-sig" };
	struct hm_keypair kp;
	uint8_t buf[2048];
	size_t len;

	test_keys(&kp, 9);
	len = build(buf, HM_MSG_COMMIT, 7, NULL, 0, digest, &kp);
	for (int i = 0; i < 2; i++) {
		struct captured c = { 0 };
		struct hm_byz *b = byz_for(specs[i], 3, &kp);
		struct hm_msg m;

		if (!b)
			return;
		hm_byz_outgoing(b, buf, len, 1, false, 1, capture, &c);
		if (ASSERT_EQ(c.n, 1, specs[i]) && ASSERT_TRUE(decodes(c.buf[0], c.len[0], &m), "ok")) {
			ASSERT_TRUE(hm_sig_is_canonical(m.hdr->sig), "canonical encoding");
			ASSERT_FALSE(hm_verify_header(m.hdr, kp.pk), "does not verify");
			ASSERT_TRUE(memcmp(m.digest, digest, HM_DIGEST_LEN) == 0, "same vote");
			ASSERT_EQ(m.seq, 7, "same slot");
		}
		hm_byz_free(b);
	}
}

/* sig_types limits the signature modes to some types (the simulator's bad
 * vote signer spoils only PREPAREs). */
HM_TEST(signature_modes_by_type)
{
	static const uint8_t digest[HM_DIGEST_LEN] = { 4 };
	struct hm_byz_opts o = { .modes = 1u << HM_BYZ_CORRUPT_SIG,
				 .sig_types = 1u << HM_MSG_PREPARE };
	struct captured c = { 0 };
	struct hm_keypair kp;
	struct hm_msg m;
	uint8_t buf[2][2048];
	size_t len[2];
	struct hm_byz *b;

	test_keys(&kp, 3);
	b = hm_byz_new(&o, 3, 4, 20, &kp);
	len[0] = build(buf[0], HM_MSG_PREPARE, 2, NULL, 0, digest, &kp);
	len[1] = build(buf[1], HM_MSG_COMMIT, 2, NULL, 0, digest, &kp);
	hm_byz_outgoing(b, buf[0], len[0], 0, false, 1, capture, &c);
	hm_byz_outgoing(b, buf[1], len[1], 0, false, 1, capture, &c);
	if (ASSERT_EQ(c.n, 2, "both sent")) {
		decodes(c.buf[0], c.len[0], &m);
		ASSERT_FALSE(hm_verify_header(m.hdr, kp.pk), "PREPARE spoiled");
		decodes(c.buf[1], c.len[1], &m);
		ASSERT_TRUE(hm_verify_header(m.hdr, kp.pk), "COMMIT untouched");
	}
	hm_byz_free(b);
}

/* future-votes lands every vote above the window (h + L = 20 here, h = 0)
 * with a good signature; other messages pass. */
HM_TEST(future_votes_above_window)
{
	static const uint8_t digest[HM_DIGEST_LEN] = { 9 };
	struct captured c = { 0 };
	struct hm_keypair kp;
	struct hm_msg m;
	uint8_t buf[2048];
	size_t len;
	struct hm_byz *b;

	test_keys(&kp, 4);
	b = byz_for("future-votes", 3, &kp);
	if (!b)
		return;
	len = build(buf, HM_MSG_PREPARE, 3, NULL, 0, digest, &kp);
	hm_byz_outgoing(b, buf, len, 0, false, 1, capture, &c);
	len = build(buf, HM_MSG_CHECKPOINT, 10, NULL, 0, digest, &kp);
	hm_byz_outgoing(b, buf, len, 0, false, 1, capture, &c);
	if (ASSERT_EQ(c.n, 2, "sent") && ASSERT_TRUE(decodes(c.buf[0], c.len[0], &m), "vote")) {
		ASSERT_GE(m.seq, 3 + 20 + 1, "above the window");
		ASSERT_TRUE(hm_verify_header(m.hdr, kp.pk), "signed");
		ASSERT_TRUE(decodes(c.buf[1], c.len[1], &m) && m.seq == 10, "checkpoint untouched");
	}
	hm_byz_free(b);
}

HM_TEST(bad_checkpoint_and_bad_chunk)
{
	static const uint8_t digest[HM_DIGEST_LEN] = { 5 };
	uint8_t chunk[100], buf[2048];
	struct captured c = { 0 };
	struct hm_keypair kp;
	struct hm_msg m;
	size_t len;
	struct hm_byz *b;

	test_keys(&kp, 5);
	b = byz_for("bad-checkpoint,bad-chunk", 3, &kp);
	if (!b)
		return;
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)i;
	len = build(buf, HM_MSG_CHECKPOINT, 10, NULL, 0, digest, &kp);
	hm_byz_outgoing(b, buf, len, 0, false, 1, capture, &c);
	len = build(buf, HM_MSG_STATE_CHUNK, 10, chunk, sizeof(chunk), NULL, &kp);
	hm_byz_outgoing(b, buf, len, 0, false, 1, capture, &c);
	if (!ASSERT_EQ(c.n, 2, "sent"))
		goto out;
	if (ASSERT_TRUE(decodes(c.buf[0], c.len[0], &m), "checkpoint")) {
		ASSERT_TRUE(memcmp(m.digest, digest, HM_DIGEST_LEN) != 0, "another state digest");
		ASSERT_TRUE(hm_verify_header(m.hdr, kp.pk), "signed: a lie, not a forgery");
	}
	if (ASSERT_TRUE(decodes(c.buf[1], c.len[1], &m), "chunk: digest = H(corrupted payload)")) {
		ASSERT_TRUE(memcmp(m.payload, chunk, sizeof(chunk) - 1) == 0, "head intact");
		ASSERT_NEQ(m.payload[sizeof(chunk) - 1], chunk[sizeof(chunk) - 1], "data corrupted");
		ASSERT_TRUE(hm_verify_header(m.hdr, kp.pk), "signed");
	}
	ASSERT_EQ(hm_byz_stats(b)->applied[HM_BYZ_BAD_CHUNK], 1, "counted");
out:
	hm_byz_free(b);
}

/* delay-votes holds votes (only votes) until their time; replay sends an
 * earlier datagram again every k-th send. */
HM_TEST(delay_and_replay)
{
	static const uint8_t digest[HM_DIGEST_LEN] = { 6 };
	struct captured c = { 0 };
	struct hm_keypair kp;
	uint8_t buf[2048];
	size_t len;
	struct hm_byz *b;

	test_keys(&kp, 6);
	b = byz_for("delay-votes:50", 3, &kp);
	if (!b)
		return;
	len = build(buf, HM_MSG_COMMIT, 1, NULL, 0, digest, &kp);
	hm_byz_outgoing(b, buf, len, 2, false, 1000, capture, &c);
	ASSERT_EQ(c.n, 0, "held");
	ASSERT_EQ(hm_byz_next_deadline(b), 1000 + 50000, "due in 50 ms");
	hm_byz_tick(b, 50999, capture, &c);
	ASSERT_EQ(c.n, 0, "still held");
	hm_byz_tick(b, 51000, capture, &c);
	ASSERT_TRUE(c.n == 1 && c.to[0] == 2 && c.len[0] == len && !memcmp(c.buf[0], buf, len),
		    "released unchanged to its peer");
	ASSERT_EQ(hm_byz_next_deadline(b), 0, "queue empty");
	hm_byz_free(b);

	memset(&c, 0, sizeof(c));
	b = byz_for("replay:2", 3, &kp);
	if (!b)
		return;
	for (uint64_t seq = 1; seq <= 4; seq++) {
		len = build(buf, HM_MSG_COMMIT, seq, NULL, 0, digest, &kp);
		hm_byz_outgoing(b, buf, len, 1, false, 1, capture, &c);
	}
	/* sends 2 and 4 each bring one old datagram along: 6 in all */
	ASSERT_EQ(c.n, 6, "two replays");
	ASSERT_EQ(hm_byz_stats(b)->applied[HM_BYZ_REPLAY], 2, "counted");
	hm_byz_free(b);
}

HM_TEST(silent_and_crash)
{
	static const uint8_t digest[HM_DIGEST_LEN] = { 7 };
	struct captured c = { 0 };
	struct hm_keypair kp;
	uint8_t buf[2048];
	size_t len;
	struct hm_byz *b;

	test_keys(&kp, 8);
	b = byz_for("silent-primary,crash:10", 3, &kp);
	if (!b)
		return;
	len = build(buf, HM_MSG_PREPARE, 1, NULL, 0, digest, &kp);
	hm_byz_outgoing(b, buf, len, 0, true, 1000, capture, &c);
	ASSERT_EQ(c.n, 0, "silent as primary");
	hm_byz_outgoing(b, buf, len, 0, false, 2000, capture, &c);
	ASSERT_EQ(c.n, 1, "speaks as a backup");
	ASSERT_FALSE(hm_byz_crashed(b, 10999), "not yet");
	ASSERT_EQ(hm_byz_next_deadline(b), 11000, "crash time is a deadline");
	ASSERT_TRUE(hm_byz_crashed(b, 11000), "crashed after 10 ms");
	hm_byz_outgoing(b, buf, len, 0, false, 12000, capture, &c);
	ASSERT_EQ(c.n, 1, "a crashed replica sends nothing");
	hm_byz_free(b);
}

/* bad-chunk against the real verifier, the state-transfer client itself
 * (user/core/state_transfer.c; test_sim st_bad_chunk_peer_blamed runs it
 * through replicas in the simulator).  Replica 1 serves through the bad-chunk mode,
 * replica 2 honestly.  Every chunk of replica 1 passes the pre-filter's
 * digest check (re-hashed, re-signed) and is still caught by its Merkle
 * proof: replica 1 is blamed, the state is assembled from replica 2, and it
 * is the right state. */
struct big_capture {
	uint8_t buf[HM_HDR_LEN + HM_ST_CHUNK_MAX_PAYLOAD];
	size_t len;
	int n;
};

static void big_capture(void *ctx, const uint8_t *buf, size_t len, uint32_t to)
{
	struct big_capture *c = ctx;

	(void)to;
	if (len <= sizeof(c->buf)) {
		memcpy(c->buf, buf, len);
		c->len = len;
		c->n++;
	}
}

HM_TEST(bad_chunk_caught_by_state_transfer)
{
	static uint8_t snap[40000], payload[HM_ST_CHUNK_MAX_PAYLOAD];
	static struct big_capture cap;
	struct hm_keypair kp[3];
	struct hm_st_server srv;
	struct hm_st st;
	struct hm_st_target t = { .seq = 100, .total_len = sizeof(snap) };
	struct hm_st_params p = { .peers = 1u << 1 | 1u << 2, .timeout_ms = 100 };
	struct hm_byz *b;
	uint32_t bad = 0, good = 0;
	uint64_t len = 0;
	uint8_t *got;

	for (int i = 0; i < 3; i++)
		test_keys(&kp[i], (uint8_t)(20 + i));
	b = byz_for("bad-chunk", 1, &kp[1]);
	for (size_t i = 0; i < sizeof(snap); i++)
		snap[i] = (uint8_t)(i * 7 + (i >> 8));
	if (!b || !ASSERT_EQ(hm_st_server_init(&srv, 100, snap, sizeof(snap)), 0, "server"))
		return;
	memcpy(t.digest, srv.digest, HM_DIGEST_LEN);
	if (!ASSERT_EQ(hm_st_start(&st, &t, &p), 0, "start"))
		return;
	for (uint64_t now = 1; st.state == HM_ST_RUNNING && now < 10000; now += 10) {
		struct hm_st_send out[16];
		size_t n = hm_st_tick(&st, now, out, 16);

		for (size_t i = 0; i < n; i++) {
			uint32_t from = out[i].peer;
			size_t plen = hm_st_serve(&srv, &out[i].req, payload, sizeof(payload));
			uint8_t *dg = cap.buf;
			enum hm_drop_reason why = HM_DROP_REASON_MAX;
			struct hm_msg m;
			size_t dlen;

			dlen = hm_msg_build(cap.buf, sizeof(cap.buf), HM_MSG_STATE_CHUNK, from, 0, 100,
					    NULL, payload, (uint32_t)plen, &kp[from]);
			if (from == 1) { /* through the Byzantine send path */
				static uint8_t orig[sizeof(cap.buf)];

				memcpy(orig, cap.buf, dlen);
				hm_byz_outgoing(b, orig, dlen, 0, false, now * 1000, big_capture, &cap);
				dlen = cap.len;
			}
			if (!ASSERT_TRUE(hm_msg_decode(dg, dlen, HM_MAX_DATAGRAM, &m, &why) == 0 &&
					 hm_msg_payload_ok(&m, &why), "passes the pre-filter"))
				goto out;
			switch (hm_st_on_payload(&st, from, m.payload, m.payload_len)) {
			case HM_ST_BAD_CHUNK: bad += from == 1; break;
			case HM_ST_ACCEPTED: good += from == 2; break;
			default: break;
			}
		}
	}
	ASSERT_EQ(st.state, HM_ST_DONE, "the state arrived");
	ASSERT_GE(bad, 1, "the corrupted chunk caught");
	ASSERT_EQ(st.faulty, 1u << 1, "replica 1, and only it, blamed");
	ASSERT_EQ(good, hm_st_chunk_count(sizeof(snap)), "every chunk from the honest peer");
	got = hm_st_take(&st, &len);
	ASSERT_TRUE(got && len == sizeof(snap) && memcmp(got, snap, len) == 0, "the right state");
	free(got);
out:
	hm_st_free(&st);
	hm_st_server_free(&srv);
	hm_byz_free(b);
}

/* ---- every mode with f faulty replicas on the simulator ----------------- */

static unsigned env_seeds(unsigned dflt)
{
	const char *v = getenv("HM_SIM_SEEDS");

	return v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

/* The slowest operation of the run (invocation to completion). */
static uint64_t max_latency(const struct hm_sim *s)
{
	size_t n;
	const struct hm_sim_op *h = hm_sim_history(s, &n);
	uint64_t worst = 0;

	for (size_t i = 0; i < n; i++)
		if (h[i].completed_us - h[i].invoked_us > worst)
			worst = h[i].completed_us - h[i].invoked_us;
	return worst;
}

/* Safety, agreement of the correct replicas, linearizability, every op
 * done within the liveness bound. */
static bool invariants(struct hm_sim *s, bool done, bool want_agreement, const char *what)
{
	char why[256];
	bool ok = true;

	ok &= ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	ok &= ASSERT_TRUE(hm_sim_reads_ok(s, why, sizeof(why)), why);
	ok &= ASSERT_TRUE(hm_sim_linearizable(s, why, sizeof(why)), why);
	ok &= ASSERT_TRUE(done, what);
	if (want_agreement)
		ok &= ASSERT_TRUE(hm_sim_states_agree(s, why, sizeof(why)), why);
	ok &= ASSERT_LE(max_latency(s), LIVENESS_BOUND_US, "every op within the bound");
	return ok;
}

/* What a correct replica saw of the faulty ones. */
struct seen {
	uint64_t vc_installed, drops_sig, drops_window, drops_stale, ckpt_mismatch, equivocations;
	uint64_t view, ckpts_stable;
	uint16_t blamed; /* replicas some correct replica proved faulty */
};

static struct seen correct_view(struct hm_sim *s, uint32_t n)
{
	struct seen v = { .view = UINT64_MAX };

	for (uint32_t i = 0; i < n; i++) {
		struct hm_node *nd = hm_sim_node(s, i);
		const struct pbft_stats *st = pbft_stats(nd->core);

		if (hm_sim_faulty(s, i) || hm_sim_crashed(s, i))
			continue;
		v.vc_installed += st->view_changes_installed;
		v.drops_sig += hm_node_drops(nd, HM_DROP_BAD_SIGNATURE) + st->bad_vote_signatures;
		v.drops_window += hm_node_drops(nd, HM_DROP_OUT_OF_WINDOW);
		v.drops_stale += hm_node_drops(nd, HM_DROP_STALE) +
				 hm_node_drops(nd, HM_DROP_DUPLICATE);
		v.ckpt_mismatch += st->checkpoint_mismatches;
		v.ckpts_stable += st->checkpoints_stable;
		v.blamed |= st->proven_faulty;
		v.equivocations += st->equivocations + hm_node_drops(nd, HM_DROP_EQUIVOCATION);
		if (pbft_view(nd->core) < v.view)
			v.view = pbft_view(nd->core);
	}
	return v;
}

struct mode_case {
	const char *spec;
	enum hm_byz_mode mode;  /* the mode whose counter must move */
	bool view_change;       /* the faulty primary must be replaced */
	/* Crash the primary after this many ops (0: never): a fault on top of
	 * the mode, to force a view change that must cope with it. */
	uint64_t crash_primary_after;
};

static const struct mode_case mode_cases[] = {
	{ "crash:20", HM_BYZ_CRASH, true, 0 },
	{ "silent-primary", HM_BYZ_SILENT, true, 0 },
	{ "equivocate", HM_BYZ_EQUIVOCATE, true, 0 },
	/* A backup checks the prepared certificate, the primary's signature
	 * included, before it sends a COMMIT (docs/protocol.md): a primary
	 * that signs badly never gets a slot committed and is replaced. */
	{ "forge-sig", HM_BYZ_FORGE_SIG, true, 0 },
	{ "corrupt-sig", HM_BYZ_CORRUPT_SIG, true, 0 },
	{ "replay:3", HM_BYZ_REPLAY, false, 0 },
	{ "future-votes", HM_BYZ_FUTURE_VOTES, false, 0 },
	{ "delay-votes:300", HM_BYZ_DELAY_VOTES, false, 0 },
	{ "bad-checkpoint", HM_BYZ_BAD_CHECKPOINT, false, 0 },
};

/* The evidence a correct replica must have of each mode. */
static bool mode_detected(const struct mode_case *mc, const struct seen *v)
{
	switch (mc->mode) {
	case HM_BYZ_FORGE_SIG:
	case HM_BYZ_CORRUPT_SIG:
		return ASSERT_GE(v->drops_sig, 1, "bad signatures caught");
	case HM_BYZ_REPLAY:
		return ASSERT_GE(v->drops_stale, 1, "replays absorbed");
	case HM_BYZ_FUTURE_VOTES:
		return ASSERT_GE(v->drops_window, 1, "votes above the window dropped");
	case HM_BYZ_BAD_CHECKPOINT:
		/* f wrong digests cannot stop 2f+1 right ones (a mismatch is
		 * counted only for a quorum on another digest) */
		return ASSERT_GE(v->ckpts_stable, 1, "checkpoints stable despite the liars") &
		       ASSERT_EQ(v->ckpt_mismatch, 0, "no quorum on a wrong digest");
	default:
		return true;
	}
}

/* Replicas 0..f-1 (the primaries of views 0..f-1) run the mode. */
static void run_mode(uint32_t n, const struct mode_case *mc)
{
	uint32_t f = (n - 1) / 3;
	struct hm_sim_opts o;
	struct hm_byz_opts bo;
	struct hm_sim *s;
	struct seen v;
	char err[256], what[96];
	bool done, ok = true;

	hm_sim_default_opts(&o);
	o.n = n;
	o.f = f;
	o.ops_per_client = 25;
	o.seed = n * 100 + mc->mode;
	s = hm_sim_new(&o);
	if (!ASSERT_EQ(hm_byz_parse(mc->spec, &bo, err, sizeof(err)), 0, err))
		return;
	for (uint32_t i = 0; i < f; i++)
		ok &= ASSERT_EQ(hm_sim_set_byzantine(s, i, &bo), 0, "byzantine replica");
	if (mc->crash_primary_after)
		hm_sim_crash_after(s, 0, mc->crash_primary_after);
	else
		hm_sim_mark_fault(s);
	snprintf(what, sizeof(what), "n=%u, %u x %s: every op completed", n, f, mc->spec);
	done = hm_sim_run(s, 60 * SECOND);
	hm_sim_settle(s, hm_sim_now(s) + 2 * SECOND);
	ok &= invariants(s, done, true, what);
	v = correct_view(s, n);
	for (uint32_t i = 0; i < f; i++)
		ok &= ASSERT_GE(hm_byz_stats(hm_sim_byzantine(s, i))->applied[mc->mode], 1,
				"the mode acted");
	if (mc->view_change) {
		ok &= ASSERT_GE(v.view, f, "every faulty primary replaced");
		ok &= ASSERT_GE(hm_sim_recovery_us(s), 1, "a commit in a new view");
	}
	ok &= mode_detected(mc, &v);
	ok &= ASSERT_EQ(v.blamed & ~((1u << f) - 1), 0, "no correct replica proven faulty");
	printf("     n=%u %-16s ops %llu, slowest %.0f ms, view %llu, fault to first commit in "
	       "a new view %.1f ms (virtual)\n", n, mc->spec,
	       (unsigned long long)hm_sim_completed(s), max_latency(s) / 1000.0,
	       (unsigned long long)v.view, hm_sim_recovery_us(s) / 1000.0);
	if (!ok)
		hm_sim_dump(s, stdout);
	hm_sim_free(s);
}

HM_TEST(every_mode_n4)
{
	for (size_t i = 0; i < sizeof(mode_cases) / sizeof(mode_cases[0]); i++)
		run_mode(4, &mode_cases[i]);
}

HM_TEST(every_mode_n7)
{
	for (size_t i = 0; i < sizeof(mode_cases) / sizeof(mode_cases[0]); i++)
		run_mode(7, &mode_cases[i]);
}

/* Two different modes at once on the two faulty replicas of n = 7, the
 * second one a backup: an equivocating primary and a backup that votes
 * late and replays. */
HM_TEST(mixed_modes_n7)
{
	struct hm_sim_opts o;
	struct hm_byz_opts a, b;
	struct hm_sim *s;
	char err[256];
	bool done;

	hm_sim_default_opts(&o);
	o.n = 7;
	o.f = 2;
	o.ops_per_client = 25;
	s = hm_sim_new(&o);
	hm_byz_parse("equivocate,forge-sig", &a, err, sizeof(err));
	hm_byz_parse("delay-votes:200,replay,bad-checkpoint", &b, err, sizeof(err));
	hm_sim_set_byzantine(s, 0, &a);
	hm_sim_set_byzantine(s, 4, &b);
	hm_sim_mark_fault(s);
	done = hm_sim_run(s, 60 * SECOND);
	hm_sim_settle(s, hm_sim_now(s) + 2 * SECOND);
	if (!invariants(s, done, true, "mixed modes: every op completed"))
		hm_sim_dump(s, stdout);
	hm_sim_free(s);
}

/* ---- Twins --------------------------------------------------------------- */

/* Two instances of the primary with one key: replicas 2.. talk to the
 * twin, replica 1 to the original; both send to everyone, and each gets
 * half of the clients, so with signed requests the correct replicas see two
 * validly signed proposals for one slot.  They must stay safe and replace
 * the primary.  Without signatures the original gathers too few vouches to
 * propose anything (replica 1's and its own): safe and live is all there is
 * to check. */
HM_TEST(twins_primary)
{
	for (uint32_t k = 0; k < 4; k++) {
		uint32_t n = k & 1 ? 7 : 4;
		bool sign = k < 2;
		struct hm_sim_opts o;
		struct hm_sim *s;
		bool done;

		hm_sim_default_opts(&o);
		o.n = n;
		o.f = (n - 1) / 3;
		o.ops_per_client = 25;
		o.signed_requests = sign;
		s = hm_sim_new(&o);
		hm_sim_add_twin(s, 0, (uint16_t)(((1u << n) - 1) & ~3u));
		hm_sim_mark_fault(s);
		done = hm_sim_run(s, 60 * SECOND);
		hm_sim_settle(s, hm_sim_now(s) + 2 * SECOND);
		if (!invariants(s, done, true, "twins: every op completed") |
		    (sign && !ASSERT_GE(correct_view(s, n).view, 1, "the twinned primary replaced")) |
		    (sign && !ASSERT_GE(correct_view(s, n).equivocations, 1, "equivocation seen")))
			hm_sim_dump(s, stdout);
		printf("     n=%u twins of the primary (%s requests): ops %llu, slowest %.0f ms, "
		       "view %llu\n", n, sign ? "signed" : "MAC-only",
		       (unsigned long long)hm_sim_completed(s), max_latency(s) / 1000.0,
		       (unsigned long long)correct_view(s, n).view);
		hm_sim_free(s);
	}
}

/* ---- the randomized runner ---------------------------------------------- */

/* The network of a randomized run: a partition (two sides; messages
 * crossing are lost) that comes and goes. */
struct chaos {
	uint32_t n;
	uint16_t side;       /* replicas on side B; 0 = no partition */
};

static bool chaos_filter(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			 const uint8_t *buf, size_t len)
{
	const struct chaos *c = ctx;

	(void)s, (void)buf, (void)len;
	if (!c->side || from >= c->n || to >= c->n)
		return true; /* clients, and the twin, are not partitioned */
	return (c->side >> from & 1) == (c->side >> to & 1);
}

static uint64_t mix(uint64_t *r)
{
	*r ^= *r >> 12;
	*r ^= *r << 25;
	*r ^= *r >> 27;
	return *r * 2685821657736338717ull;
}

static const char *const random_specs[] = {
	"silent-primary", "equivocate", "forge-sig", "corrupt-sig", "replay",
	"future-votes", "delay-votes:150", "bad-checkpoint", "equivocate,replay",
	"crash:400", "corrupt-sig,delay-votes:80", "future-votes,bad-checkpoint",
};

struct plan {
	uint32_t byz_mask, crash_mask;
	bool twin;
	/* restarts from files: of the crash-prone replicas (half of their
	 * comebacks), every replica in turn at round rolling_round, or all at
	 * once at round all_round (-1: none) */
	int rolling_round, all_round;
	bool restarted; /* some replica restarted from its files */
	/* the issue-17 entries draw from their own stream, so a seed's older
	 * entries stay as they were; legacy: none of them (regression seeds) */
	uint64_t r2;
	bool legacy;
	bool fast;      /* the fast path on (randomized_faults_fast) */
};

/* A regression seed found with HM_SIM_N set replays with that n. */
static unsigned replay_n;

/* Set up one seed's run: n, loss, f faulty replicas (Byzantine modes or a
 * twin), and the replicas that crash and restart, within the fault budget:
 * Byzantine + crash-prone <= f, so that liveness is owed. */
static struct hm_sim *random_setup(unsigned seed, uint64_t *r, struct hm_sim_opts *o,
				   struct plan *p, FILE *log)
{
	struct hm_sim *s;
	uint32_t budget;
	bool legacy = p->legacy, fast = p->fast;
	uint64_t *r2 = &p->r2;

	hm_sim_default_opts(o);
	o->seed = seed;
	o->n = mix(r) % 2 ? 7 : 4;
	o->f = (o->n - 1) / 3;
	o->clients = 1 + mix(r) % 4;
	o->ops_per_client = 15 + mix(r) % 20;
	o->batch_size = 1 + mix(r) % 8;
	o->max_delay_us = 100 + mix(r) % 1500;
	o->duplicate_pct = mix(r) % 10;
	o->loss_pct = mix(r) % 3;
	o->checkpoint_interval = 10;
	o->window = 30;
	if (!legacy && (replay_n || getenv("HM_SIM_N"))) {
		unsigned want = replay_n ? replay_n : (unsigned)atoi(getenv("HM_SIM_N"));

		o->n = want == 7 ? 7 : 4;
		o->f = (o->n - 1) / 3;
	}
	memset(p, 0, sizeof(*p));
	p->legacy = legacy;
	p->fast = o->fast_path = fast;
	p->r2 = seed * 0x9e3779b97f4a7c15ull + 23;
	p->rolling_round = p->all_round = -1;
	o->persist = !legacy;
	if (!legacy && mix(r2) % 4 == 0) {
		o->service = HM_SIM_KV_SKEW;
		o->skew_us = 1500000;
		o->max_clock_offset_us = 100000;
		fprintf(log, "kv-skew; ");
	}
	s = hm_sim_new(o);
	if (!legacy) {
		p->rolling_round = mix(r2) % 4 == 0 ? (int)(mix(r2) % 3) : -1;
		p->all_round = mix(r2) % 8 == 0 ? (int)(mix(r2) % 3) : -1;
	}
	if (p->rolling_round >= 0)
		fprintf(log, "rolling restart at round %d; ", p->rolling_round);
	if (p->all_round >= 0)
		fprintf(log, "all restart at round %d; ", p->all_round);
	budget = o->f;
	if (mix(r) % 4 == 0) {
		uint32_t t = mix(r) % o->n;
		uint16_t peers = (uint16_t)(mix(r) & ((1u << o->n) - 1) & ~(1u << t));

		hm_sim_add_twin(s, t, peers);
		p->twin = true;
		budget--;
		fprintf(log, "twin of %u (peers %#x); ", t, peers);
	}
	while (budget) {
		uint32_t i = mix(r) % o->n;

		if ((p->byz_mask | p->crash_mask) >> i & 1 || (p->twin && hm_sim_faulty(s, i)))
			continue;
		if (mix(r) % 3) {
			struct hm_byz_opts bo;
			char err[256];
			const char *spec = random_specs[mix(r) % (sizeof(random_specs) /
								  sizeof(random_specs[0]))];

			hm_byz_parse(spec, &bo, err, sizeof(err));
			hm_sim_set_byzantine(s, i, &bo);
			p->byz_mask |= 1u << i;
			fprintf(log, "%u: %s; ", i, spec);
		} else {
			p->crash_mask |= 1u << i;
			fprintf(log, "%u: crash-restart; ", i);
		}
		budget--;
	}
	return s;
}

/* Restart replica i from its files (its counters go: look at them first). */
static void restart_from_files(struct hm_sim *s, uint32_t n, uint32_t i, struct plan *p,
			       char *blame, size_t len)
{
	if (!blame[0])
		sim_nobody_blamed(s, n, blame, len);
	if (hm_sim_restart(s, i) < 0)
		abort();
	p->restarted = true;
}

/* Rounds of chaos, then a healed network until every client is done.
 * Returns whether every client finished within sim_liveness_bound_us()
 * of the heal; *t_heal is when it healed. */
static bool random_run(struct hm_sim *s, const struct hm_sim_opts *o, struct plan *p,
		       uint64_t *r, struct chaos *ch, FILE *log, uint64_t *t_heal, char *blame,
		       size_t blame_len)
{
	uint32_t rounds = 3 + mix(r) % 5;

	for (uint32_t k = 0; k < rounds; k++) {
		uint64_t until = hm_sim_now(s) + 200000 + mix(r) % 800000;

		/* a partition that leaves side A a quorum or not: safety must
		 * hold either way; it heals before the liveness phase */
		ch->side = mix(r) % 3 ? 0 : (uint16_t)(mix(r) & ((1u << o->n) - 1));
		for (uint32_t i = 0; i < o->n; i++) {
			if (!(p->crash_mask >> i & 1))
				continue;
			if (hm_sim_crashed(s, i) && mix(r) % 2) {
				/* back from its files in half the cases */
				if (!p->legacy && mix(&p->r2) % 2)
					restart_from_files(s, o->n, i, p, blame, blame_len);
				else
					hm_sim_revive(s, i);
			} else if (!hm_sim_crashed(s, i) && mix(r) % 3 == 0) {
				hm_sim_crash(s, i);
			}
		}
		fprintf(log, "round %u: partition %#x until %llu; ", k, ch->side,
			(unsigned long long)until);
		if ((int)k == p->all_round) {
			/* a power loss: every replica down, then back from its files */
			for (uint32_t i = 0; i < o->n; i++)
				hm_sim_crash(s, i);
			sim_run_for(s, 10000 + mix(&p->r2) % 500000);
			for (uint32_t i = 0; i < o->n; i++)
				restart_from_files(s, o->n, i, p, blame, blame_len);
		}
		if ((int)k == p->rolling_round) {
			/* an upgrade: each replica down and back from its files in turn */
			uint32_t first = mix(&p->r2) % o->n;

			for (uint32_t j = 0; j < o->n; j++) {
				uint32_t i = (first + j) % o->n;
				bool was_down = hm_sim_crashed(s, i);

				hm_sim_crash(s, i);
				sim_run_for(s, 10000 + mix(&p->r2) % 300000);
				if (!was_down)
					restart_from_files(s, o->n, i, p, blame, blame_len);
				sim_run_for(s, 10000 + mix(&p->r2) % 300000);
			}
		}
		if (hm_sim_run(s, until))
			break;
	}
	ch->side = 0;
	for (uint32_t i = 0; i < o->n; i++)
		if (hm_sim_crashed(s, i)) {
			if (!p->legacy && mix(&p->r2) % 2)
				restart_from_files(s, o->n, i, p, blame, blame_len);
			else
				hm_sim_revive(s, i);
		}
	hm_sim_mark_fault(s);
	*t_heal = hm_sim_now(s);
	return hm_sim_run(s, *t_heal + sim_liveness_bound_us(o));
}

/* A correct replica that missed a checkpoint the others made stable: it
 * cannot catch up from the log, only through state transfer. */
static bool needs_state_transfer(struct hm_sim *s, uint32_t n)
{
	uint64_t top = 0;

	for (uint32_t i = 0; i < n; i++)
		if (!hm_sim_faulty(s, i) && pbft_low_watermark(hm_sim_node(s, i)->core) > top)
			top = pbft_low_watermark(hm_sim_node(s, i)->core);
	for (uint32_t i = 0; i < n; i++)
		if (!hm_sim_faulty(s, i) && pbft_last_executed(hm_sim_node(s, i)->core) < top)
			return true;
	return false;
}

struct rf_gates {
	struct sim_gate restart, live, adm, blame;
};

/* One seed of the randomized runner: true when every enforced check held.
 * Safety, reads and linearizability always.  Today's liveness check, for
 * seeds with neither restarts from files nor the kv-skew service: every op
 * within 60 s of the heal, except *stalled, a correct replica behind a
 * stable checkpoint while f others were faulty (and *lagging, a replica
 * left behind at the end, counted).  The issue-17 checks (gated): every
 * correct replica live within the bound after the heal, nobody correct
 * blamed. */
/* Batches the live replicas committed on the fast path, and in all, over
 * a search: randomized_faults_fast must exercise the path it is about. */
static uint64_t rf_fast_commits, rf_all_commits;

static void count_commit_paths(struct hm_sim *s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++) {
		const struct pbft_stats *st = pbft_stats(hm_sim_node(s, i)->core);

		rf_fast_commits += st->fast_commits;
		rf_all_commits += st->fast_commits + st->normal_commits;
	}
}

static bool random_seed(unsigned seed, bool verbose, bool *lagging, bool *stalled,
			struct rf_gates *g, bool legacy, bool fast)
{
	uint64_t r = seed * 0x2545f4914f6cdd1dull + 7;
	struct hm_sim_opts o;
	struct chaos ch = { 0 };
	struct plan p;
	struct hm_sim *s;
	char why[256], lwhy[256], blame[256] = "", *desc = NULL;
	size_t desc_len = 0;
	FILE *log = open_memstream(&desc, &desc_len);
	bool done, live, ok = true, old_rules;
	uint64_t t_heal;
	struct sim_gate *lg;

	p.legacy = legacy;
	p.fast = fast;
	s = random_setup(seed, &r, &o, &p, log);
	ch.n = o.n;
	hm_sim_set_filter(s, chaos_filter, &ch);
	done = random_run(s, &o, &p, &r, &ch, log, &t_heal, blame, sizeof(blame));
	sim_settle_for_liveness(s, t_heal, sim_liveness_bound_us(&o));
	live = sim_live(s, o.n, done, lwhy, sizeof(lwhy));
	if (!blame[0])
		sim_nobody_blamed(s, o.n, blame, sizeof(blame));
	old_rules = !p.restarted && o.service == HM_SIM_KV;
	if (!done) /* the rest of today's 60 s */
		done = hm_sim_run(s, t_heal + 60 * SECOND);
	hm_sim_settle(s, hm_sim_now(s) + 2 * SECOND);
	fclose(log);
	count_commit_paths(s, o.n);
	ok &= ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	/* Restarts read back only what the replicas wrote (a twin's core is
	 * not among the nodes; a Byzantine replica's records are its own). */
	for (uint32_t i = 0; i < o.n; i++)
		ok &= ASSERT_EQ(pbft_stats(hm_sim_node(s, i)->core)->vote_records_malformed, 0,
				"no vote-log record of its own refused at a restart");
	ok &= ASSERT_TRUE(hm_sim_reads_ok(s, why, sizeof(why)), why);
	ok &= ASSERT_TRUE(hm_sim_linearizable(s, why, sizeof(why)), why);
	*stalled = *lagging = false;
	if (old_rules) {
		*stalled = !done && needs_state_transfer(s, o.n);
		if (!*stalled)
			ok &= ASSERT_TRUE(done, "every op completed after the network healed");
		*lagging = done && !hm_sim_states_agree(s, why, sizeof(why));
	}
	lg = p.restarted ? &g->restart : o.service == HM_SIM_KV_SKEW ? &g->adm : &g->live;
	ok &= sim_gated(lg, seed, live, lwhy);
	ok &= sim_gated(&g->blame, seed, !blame[0], blame);
	if (*stalled && verbose)
		printf("     seed %u: stalled, a correct replica needs state transfer\n", seed);
	if (!ok) {
		printf("  failing seed: %u (replay: HM_I17_PENDING='%s' HM_SIM_SEED=%u "
		       "build/tests/test_byzantine randomized_faults%s)\n  plan: n=%u %s%s\n", seed,
		       sim_pending_list(), seed, fast ? "_fast" : "", o.n, fast ? "fast path; " : "",
		       desc);
		hm_sim_dump(s, stdout);
	} else if (verbose) {
		printf("     seed %u: n=%u %s\n     %s%s%s%s\n", seed, o.n, desc,
		       live ? "live" : "NOT LIVE: ", live ? "" : lwhy, blame[0] ? "; BLAMED: " : "",
		       blame);
		if (!live || blame[0])
			hm_sim_dump(s, stdout);
	}
	free(desc);
	hm_sim_free(s);
	return ok;
}

/* Random partitions, crashes and restarts (in memory and from files,
 * rolling and all at once), loss, duplication, Byzantine modes and twins,
 * the kv-skew service in a quarter of the seeds, over rounds; then the
 * network heals and every op must complete.  Safety and linearizability
 * must hold for every seed; the failing seed is printed and replays exactly
 * (HM_SIM_SEED).  The issue-17 checks run under the gates of sim_checks.h. */
static void random_search(bool fast)
{
	unsigned seeds = env_seeds(24), only = getenv("HM_SIM_SEED") ? atoi(getenv("HM_SIM_SEED")) : 0;
	unsigned lagging = 0, stalled = 0, runs = 0, old_runs = 0;
	struct sim_shard sh = sim_shard();
	struct rf_gates g = {
		{ "restart", "liveness after restarts from files" },
		{ "liveness", "liveness within the bound after the last fault" },
		{ "admission", "liveness with an admission check" },
		{ "blocking", "no correct replica counted Byzantine" },
	};
	double t0 = sim_clock_s();
	const char *replay = fast ? "build/tests/test_byzantine randomized_faults_fast"
				   : "build/tests/test_byzantine randomized_faults";

	unsigned first = getenv("HM_SIM_FIRST") ? (unsigned)atoi(getenv("HM_SIM_FIRST")) : 1;

	for (unsigned seed = only ? only : first; seed <= (only ? only : seeds); seed++) {
		bool behind, stuck;

		if (!only && !sim_in_shard(sh, seed))
			continue;
		if (!random_seed(seed, only != 0, &behind, &stuck, &g, false, fast))
			return;
		lagging += behind;
		stalled += stuck;
		runs++;
	}
	old_runs = runs - g.restart.count; /* roughly: the seeds today's rule covers */
	sim_rate(fast ? "randomized_faults_fast" : "randomized_faults", runs, t0, sh);
	printf("     %u seeds: safe and linearizable; %u finished with a replica still behind, %u "
	       "stalled on a correct replica behind a stable checkpoint\n", runs, lagging,
	       stalled);
	if (fast)
		printf("     fast path: %llu of %llu batch commits (the live replicas' counts)\n",
		       (unsigned long long)rf_fast_commits, (unsigned long long)rf_all_commits);
	if (only) /* a replayed seed reports its own outcome above */
		return;
	if (fast)
		ASSERT_GE(rf_fast_commits, rf_all_commits / 10 + 1, "the fast path was exercised");
	sim_gate_report(&g.restart, runs, replay);
	sim_gate_report(&g.live, runs, replay);
	sim_gate_report(&g.adm, runs, replay);
	sim_gate_report(&g.blame, runs, replay);
	ASSERT_LE(stalled, old_runs / 10 + 1, "at most a tenth stall for want of state transfer");
}

HM_TEST(randomized_faults) { random_search(false); }

/* The same search with the fast path on (docs/protocol.md, "The fast
 * path"): fast commits at some replicas meet partitions, crashes,
 * restarts, twins and the Byzantine modes, and the view changes after
 * them must keep every fast-committed batch. */
HM_TEST(randomized_faults_fast) { random_search(true); }

/* Seed 128 (n = 7): the view-0 primary is cut off with replica 3 while the
 * others move to view 1; after the heal it catches up through BATCH
 * claims (f+1 agreeing peers mark seq 9 committed) while it still believes
 * it is the primary of view 0, proposes its own batch at seq 9 into the
 * very entry the claims committed, and executes that batch: two correct
 * replicas execute different batches at seq 9.  A core bug (pbft.c
 * propose_batch reuses a committed entry), docs/faults.md. */
HM_TEST(stale_primary_overwrites_claimed_slot)
{
	bool behind, stuck;

	struct rf_gates g = { { "restart", "" }, { "liveness", "" }, { "admission", "" },
			      { "blocking", "" } };

	random_seed(128, true, &behind, &stuck, &g, true, false);
}

/* Found by the 40,000-seed soak (n = 7): a correct backup prepared the
 * batch an equivocating primary sent it, the group committed the other
 * one, and the backup took it on f+1 committed claims.  Answering a peer's
 * retransmission, it then re-sent a PREPARE for the slot's new digest in
 * the old view: a second, different vote, counted as equivocation by
 * another correct replica (the blocking gate).  resend_slot() now sends
 * only what own_pp/own_commit say was sent, and a slot whose digest is
 * replaced forgets them.  Both seeds fail without that fix. */
static void replay_gated_seed(unsigned seed)
{
	bool behind, stuck;
	struct rf_gates g = { { "restart", "liveness after restarts from files" },
			      { "liveness", "liveness within the bound after the last fault" },
			      { "admission", "liveness with an admission check" },
			      { "blocking", "no correct replica counted Byzantine" } };

	ASSERT_TRUE(random_seed(seed, true, &behind, &stuck, &g, false, false), "the seed's checks hold");
}

/* As replay_gated_seed, for a seed found with HM_SIM_N=7. */
static void replay_gated_seed_n7(unsigned seed)
{
	replay_n = 7;
	replay_gated_seed(seed);
	replay_n = 0;
}

HM_TEST(claimed_slot_resend_is_not_a_second_vote) { replay_gated_seed(11120); }
HM_TEST(claimed_slot_resend_after_rolling_restart) { replay_gated_seed(10841); }

/* Found by the soak at n = 7 (seed 3614): a backup held view 0's
 * PRE-PREPARE for seq 2, the group committed another batch there in view
 * 1, and the backup, still in view 0, took that one from f+1 claims.  The
 * old primary's retransmitted PRE-PREPARE then met a slot of the same view
 * with another digest, and the backup counted the correct primary as an
 * equivocator.  A PRE-PREPARE for a slot held committed with another batch
 * is now refused as stale (test_sim claimed_slot_ignores_late_pre_prepare
 * has the same hole's safety side).  Fails without that rule. */
HM_TEST(claimed_slot_not_an_equivocation) { replay_gated_seed_n7(3614); }

/* Found by the soak at n = 7 (seed 1493): a restarted replica was fetching
 * checkpoint 40 by state transfer when claims of a newer checkpoint came
 * in, one of them with a bad signature (replica 1 corrupts them).  The
 * check of those claims emptied the proof of the transfer still running,
 * which then installed checkpoint 40 with no proof, and the replica's next
 * VIEW-CHANGE carried none: every correct replica held it proven faulty.
 * A new transfer's proof now replaces the running one's only when that
 * transfer starts.  Fails without that. */
HM_TEST(transfer_keeps_its_checkpoint_proof) { replay_gated_seed_n7(1493); }

/* Also found by the soak (n = 4, no Byzantine behaviour that matters):
 * the primary crashes after the last operation while a restarted backup
 * is a few slots behind the others' stable checkpoint but inside the log
 * they keep.  The others only re-sent their votes for those slots, which
 * cannot complete without the dead primary's PRE-PREPARE, and one of them,
 * restored from that checkpoint, held none of the slots to claim: the
 * backup waited for ever.  A STATUS from behind our stable checkpoint now
 * always gets the checkpoint's proof, so it fetches the state once stuck.
 * Both seeds fail without that fix. */
HM_TEST(behind_checkpoint_with_primary_gone) { replay_gated_seed(8982); }
HM_TEST(behind_checkpoint_clients_finish) { replay_gated_seed(27283); }

/* Also found by the soak (n = 4): after partitions and restarts the view-1
 * primary r1 and r3 were in view 1, r2 had moved on to a view change for
 * view 2 (so it may no longer take view 1's NEW-VIEW), and r3 had executed
 * every request it knew of.  View 1 could not prepare without r2, r3 had
 * no request to time out on, and the primary never times out: stuck for
 * ever.  The acting primary now times out too, at four times the backups'
 * timeout.  Fails without that rule. */
HM_TEST(stuck_view_primary_times_out) { replay_gated_seed(6204); }

/* Also found by the soak (n = 7, rolling restarts around view changes).
 * 39186: a backup that had sent VIEW-CHANGEs for views 2 and 3 restarted
 * in the change to view 3; the vote log's snapshot wrote its own
 * VIEW-CHANGEs in ring order and recovery kept only the last record (view
 * 2's), so it forgot view 3's, left the view change and later signed a
 * second, different one for view 3: proven faulty at every peer.  Every
 * own VIEW-CHANGE is now restored, and one already signed for a view is
 * re-sent, never rebuilt.  33388: a backup behind when it installed view
 * 2 had no log slot for some seqs of the NEW-VIEW's O; the vote log wrote
 * zeros for them and recovery took the zeros as O's digests, so the
 * primary's correct re-proposals counted as equivocation.  Zeros are now
 * read as unknown.  Both fail without their fix. */
HM_TEST(restart_keeps_every_own_view_change) { replay_gated_seed(39186); }
HM_TEST(restart_unknown_new_view_digest_is_not_zero) { replay_gated_seed(33388); }

/* Also found by the soak (n = 4): the clients finished before the heal,
 * and two correct backups then needed a view change to get the slots that
 * only one correct replica had executed; they caught up 2.2 s after the
 * heal, within the 8.4 s bound.  The check had given them 2 s after the
 * clients finished instead of the bound (sim_settle_for_liveness). */
HM_TEST(laggards_get_the_whole_bound) { replay_gated_seed(34675); }

/* Found by the soak once every replica applied rule F (the fast path's
 * view-change rule, docs/protocol.md): two replicas had voted a batch at
 * seq 81 in view 0 that never prepared, then restarted from a rotated vote
 * log that kept the vote but not its batch; their two reports gave the
 * batch f+1 standing, every new view's O named it, and no replica could
 * serve it: request timeout, next view, for ever.  The batch of a
 * replica's latest vote now stays in its vote log. */
HM_TEST(reported_vote_keeps_its_batch) { replay_gated_seed(2354); }

/* Found by the 10,000-seed soak with requests without signatures (n = 4,
 * replica 1 crashed, partitions): the primary r0 executed slots 23-25; r2
 * and r3, cut off meanwhile, had not, and r3 alone moved to a view change.
 * Only a view change could give r2 the slots (one replica's claim is not
 * f+1), but r2 never timed the clients' retransmitted requests: a request
 * is timed on 2f+1 vouches, and r0, having executed it, answered the
 * retransmissions with its reply and no vouch.  A replica now vouches
 * again for the request it executed last when its client retransmits it
 * (pbft_vouch_executed).  Fails without that. */
HM_TEST(executed_request_still_vouched) { replay_gated_seed(6960); }

/* No Byzantine replica at all: the primary of view 0 is cut off alone
 * for a while and comes back.  Seed 2 (n = 7) shows the same core bug as
 * stale_primary_overwrites_claimed_slot: after the heal two correct
 * replicas execute different batches at one sequence number (seq 35). */
static bool partitioned_primary_run(unsigned seed, char *why, size_t len)
{
	uint64_t r = seed * 0x9e3779b97f4a7c15ull;
	struct hm_sim_opts o;
	struct chaos ch = { 0 };
	struct hm_sim *s;
	bool ok;

	hm_sim_default_opts(&o);
	o.seed = seed;
	o.n = mix(&r) % 2 ? 7 : 4;
	o.f = (o.n - 1) / 3;
	o.clients = 1 + mix(&r) % 4;
	o.ops_per_client = 30;
	o.window = 30;
	o.loss_pct = mix(&r) % 3;
	o.max_delay_us = 100 + mix(&r) % 1500;
	s = hm_sim_new(&o);
	ch.n = o.n;
	hm_sim_set_filter(s, chaos_filter, &ch);
	hm_sim_run(s, 50000 + mix(&r) % 300000);
	ch.side = 1; /* the primary alone on its side */
	hm_sim_run(s, hm_sim_now(s) + 300000 + mix(&r) % 2000000);
	ch.side = 0;
	hm_sim_run(s, hm_sim_now(s) + 30 * SECOND);
	ok = hm_sim_safety_ok(s, why, len);
	if (!ok)
		hm_sim_dump(s, stdout);
	hm_sim_free(s);
	return ok;
}

HM_TEST(partitioned_primary_rejoins_safely)
{
	char why[256];

	ASSERT_TRUE(partitioned_primary_run(2, why, sizeof(why)), why);
}

/* ---- a checkpoint proof built on signatures nobody checked --------------- */

/* CHECKPOINTs from replicas in ctx's mask are lost. */
static bool drop_checkpoints(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			     const uint8_t *buf, size_t len)
{
	(void)to;
	return !(from < 16 && (*(uint16_t *)ctx >> from & 1) && len > 5 &&
		 buf[5] == HM_MSG_CHECKPOINT && hm_sim_now(s) < 2 * SECOND);
}

/* n = 7: replicas 1 and 6 sign their CHECKPOINTs badly, and the CHECKPOINTs
 * of the correct replicas 4 and 5 are lost for the first two seconds.  Were
 * stability counted on MAC-authenticated votes, checkpoints would become
 * stable on 0, 2, 3 (good) and 1, 6 (bad signatures), and the VIEW-CHANGEs of
 * correct replicas would carry proofs that others refuse.  Stability counts
 * only verified signatures (1 and 6 are proven faulty), so checkpoints wait
 * for 4's and 5's retransmissions.  Then the primary crashes: the
 * VIEW-CHANGEs of the correct replicas must be accepted. */
HM_TEST(checkpoint_proof_with_bad_signatures)
{
	struct hm_byz_opts bo = { .modes = 1u << HM_BYZ_CORRUPT_SIG,
				  .sig_types = 1u << HM_MSG_CHECKPOINT };
	uint16_t lost = 1u << 4 | 1u << 5;
	struct hm_sim_opts o;
	struct hm_sim *s;
	struct seen v;
	bool done;

	hm_sim_default_opts(&o);
	o.n = 7;
	o.f = 2;
	o.ops_per_client = 30;
	s = hm_sim_new(&o);
	hm_sim_set_byzantine(s, 1, &bo);
	hm_sim_set_byzantine(s, 6, &bo);
	hm_sim_set_filter(s, drop_checkpoints, &lost);
	hm_sim_crash_after(s, 0, 60);
	done = hm_sim_run(s, 30 * SECOND);
	v = correct_view(s, o.n);
	ASSERT_TRUE(done, "every op completed");
	ASSERT_GE(v.view, 1, "a new view");
	ASSERT_EQ(v.blamed & (1u << 2 | 1u << 3 | 1u << 4 | 1u << 5), 0,
		  "no correct replica proven faulty");
	if (!done)
		hm_sim_dump(s, stdout);
	hm_sim_free(s);
}
