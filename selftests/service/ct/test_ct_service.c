// SPDX-License-Identifier: MIT
/*
 * The CT verdict service (user/service/ct/ct_service.c), the ct: config section and the
 * offline check of verdict certificates (hm_ct_cert_verify in user/cli/cli_ct.c, on the
 * CT form of user/client/certificate.c).
 *
 * Real certificates and evidence: the fixture runs the certificate factory
 * and the test logs of selftests/service/ct/ct_log on loopback (as test_ct does), so the
 * service judges what a log really served.  Determinism is checked the way
 * replicas need it: two (or three) service instances fed the same ops give
 * the same result bytes, the same digest and the same snapshot bytes.
 */
#include <errno.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <sodium.h>

#include "cli/cli_ct.h"
#include "client/certificate.h"
#include "common/config.h"
#include "common/crypto.h"
#include "service/ct/ct.h"
#include "service/ct/ct_client.h"
#include "service/ct/ct_service.h"
#include "hm_test.h"
#include "hm_ct_env.h"
#include "service/kv/kv.h"
#include "core/service_mux.h"
#include "common/wire.h"

/* ---- helpers ------------------------------------------------------------- */

static uint64_t fake_now = 1700000000;

static uint64_t fake_clock(void *ctx)
{
	return *(uint64_t *)ctx;
}

static bool new_service(struct hm_service *svc, struct hm_ct *ct)
{
	return ASSERT_TRUE(ct != NULL, "ct") &&
	       ASSERT_OK(hm_ct_service_new(svc, ct, HM_CT_DEFAULT_SKEW_S, fake_clock, &fake_now),
			 "service");
}

static void log_a_id(uint8_t id[HM_CT_LOG_ID_LEN])
{
	struct hm_ct *ct = new_ct(false);

	memset(id, 0, HM_CT_LOG_ID_LEN);
	if (ct)
		hm_ct_log_id(ct, 0, id);
	hm_ct_free(ct);
}

/* Evidence for chain i from log A, the consistency proof from `from`. */
static bool fetch(int i, uint64_t from, struct hm_ct_evidence *ev)
{
	uint8_t id[HM_CT_LOG_ID_LEN];

	log_a_id(id);
	return fetch_from(env.url_a, id, i, from, ev);
}

struct result {
	uint8_t buf[HM_MAX_RESULT];
	size_t len;
};

static void exec(struct hm_service *s, const uint8_t *op, size_t len, struct result *r)
{
	struct hm_exec_ctx ctx = { .seq = 1, .client = 100, .timestamp = 1 };

	r->len = s->ops->execute(s->state, &ctx, op, len, r->buf, sizeof(r->buf));
}

static enum hm_ct_result verdict_of(const struct result *r, struct hm_ct_verdict *v)
{
	if (hm_ct_verdict_decode(r->buf, r->len, v) < 0)
		return HM_CT_RESULT_COUNT;
	return v->result;
}

/* Destroy a service that may not have been made. */
static void destroy(struct hm_service *s)
{
	if (s->ops)
		s->ops->destroy(s->state);
}

static void digest(struct hm_service *s, uint8_t d[HM_DIGEST_LEN])
{
	s->ops->digest(s->state, d);
}

static size_t check_op(uint8_t *op, size_t cap, int chain, uint64_t t,
		       const struct hm_ct_evidence *ev, size_t n_ev)
{
	return hm_ct_op_check(op, cap, t, env.chain[chain], env.chain_len[chain], ev, n_ev);
}

/* ---- cases --------------------------------------------------------------- */

/* Two replicas, the same ops in the same order: the same results, digests
 * and snapshots, byte for byte; a third restored from a snapshot continues
 * identically. */
HM_TEST(replicas_agree_byte_for_byte)
{
	static uint8_t op[1 << 16];
	struct hm_service a = { 0 }, b = { 0 }, c = { 0 };
	struct hm_ct_evidence ev;
	struct hm_ct_verdict v;
	struct result ra, rb;
	uint8_t da[HM_DIGEST_LEN], db[HM_DIGEST_LEN], d0[HM_DIGEST_LEN], id[HM_CT_LOG_ID_LEN];
	uint8_t *sa = NULL, *sb = NULL;
	size_t la = 0, lb = 0, len;
	enum hm_ct_latest_status st;
	uint64_t size;

	NEED_ENV();
	if (!new_service(&a, new_ct(false)) || !new_service(&b, new_ct(false)) || !new_service(&c, new_ct(false)))
		goto out;
	log_a_id(id);
	digest(&a, d0);

	/* CT_LATEST before any STH: none held */
	len = hm_ct_op_latest(op, sizeof(op), id);
	exec(&a, op, len, &ra);
	ASSERT_OK(hm_ct_latest_decode(ra.buf, ra.len, &st, &size), "latest result decodes");
	ASSERT_EQ(st, HM_CT_LATEST_NONE, "no STH held yet");

	/* the valid chain with log A's evidence, on both */
	if (!fetch(VALID, 0, &ev))
		goto out;
	len = check_op(op, sizeof(op), VALID, agreed_now(), &ev, 1);
	ASSERT_GE(len, HM_CT_CHECK_HDR + env.chain_len[VALID], "op encodes");
	exec(&a, op, len, &ra);
	exec(&b, op, len, &rb);
	ASSERT_EQ(verdict_of(&ra, &v), HM_CT_OK, v.reason);
	ASSERT_EQ(ra.len, rb.len, "same result length");
	ASSERT_MEMEQ(ra.buf, rb.buf, ra.len, "same verdict bytes");
	digest(&a, da);
	digest(&b, db);
	ASSERT_MEMEQ(da, db, HM_DIGEST_LEN, "same state digest");
	ASSERT_TRUE(memcmp(da, d0, HM_DIGEST_LEN) != 0, "the accepted STH changed the digest");
	ASSERT_OK(a.ops->snapshot(a.state, &sa, &la), "snapshot a");
	ASSERT_OK(b.ops->snapshot(b.state, &sb, &lb), "snapshot b");
	ASSERT_TRUE(la == lb && sa && sb && memcmp(sa, sb, la) == 0, "same snapshot bytes");

	/* CT_LATEST now reports the STH the check accepted */
	len = hm_ct_op_latest(op, sizeof(op), id);
	exec(&a, op, len, &ra);
	ASSERT_OK(hm_ct_latest_decode(ra.buf, ra.len, &st, &size), "latest result decodes");
	ASSERT_EQ(st, HM_CT_LATEST_HAVE, "an STH is held");
	ASSERT_EQ(size, ev.sth.tree_size, "its tree size");

	/* a third replica restored from a's snapshot continues like a */
	ASSERT_OK(c.ops->restore(c.state, sa, la), "restore");
	digest(&c, db);
	ASSERT_MEMEQ(da, db, HM_DIGEST_LEN, "restored digest");
	if (!fetch(VALID, size, &ev))
		goto out;
	len = check_op(op, sizeof(op), VALID, agreed_now(), &ev, 1);
	exec(&a, op, len, &ra);
	exec(&c, op, len, &rb);
	ASSERT_EQ(verdict_of(&ra, &v), HM_CT_OK, v.reason);
	ASSERT_TRUE(ra.len == rb.len && memcmp(ra.buf, rb.buf, ra.len) == 0,
		    "restored replica: same verdict bytes");

	/* the other chains, without evidence: same verdicts on both */
	for (int i = UNKNOWN_LOG; i < N_CHAINS; i++) {
		static const enum hm_ct_result want[N_CHAINS] = {
			[UNKNOWN_LOG] = HM_CT_SCT_UNKNOWN_LOG, [BAD_SCT] = HM_CT_SCT_BAD_SIGNATURE,
			[NO_SCT] = HM_CT_SCT_MISSING,
		};

		len = check_op(op, sizeof(op), i, agreed_now(), NULL, 0);
		exec(&a, op, len, &ra);
		exec(&c, op, len, &rb);
		ASSERT_EQ(verdict_of(&ra, &v), want[i], chain_names[i]);
		ASSERT_TRUE(ra.len == rb.len && memcmp(ra.buf, rb.buf, ra.len) == 0, chain_names[i]);
	}

	/* restore refuses what snapshot cannot produce, and changes nothing */
	digest(&a, da);
	sa[la - 1] ^= 1;
	ASSERT_ERR(a.ops->restore(a.state, sa, la), "altered snapshot (STH signature) refused");
	ASSERT_ERR(a.ops->restore(a.state, sa, la - 1), "truncated snapshot refused");
	ASSERT_ERR(a.ops->restore(a.state, (const uint8_t *)"garbage", 7), "garbage refused");
	digest(&a, db);
	ASSERT_MEMEQ(da, db, HM_DIGEST_LEN, "state unchanged by refused restores");
out:
	free(sa);
	free(sb);
	destroy(&a);
	destroy(&b);
	destroy(&c);
}

/* The chain may travel as DER: the same verdict bytes as its PEM. */
HM_TEST(der_chain)
{
	static uint8_t op[1 << 16];
	struct hm_service a = { 0 }, b = { 0 };
	struct hm_ct_evidence ev;
	struct result ra, rb;
	struct hm_ct_verdict v;
	uint8_t der[8192];
	size_t der_len = 0, len;
	BIO *bio;
	X509 *x;

	NEED_ENV();
	bio = BIO_new_mem_buf(env.chain[VALID], (int)env.chain_len[VALID]);
	while (bio && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		unsigned char *p = der + der_len;
		int n = i2d_X509(x, NULL);

		if (n > 0 && der_len + (size_t)n <= sizeof(der))
			der_len += (size_t)i2d_X509(x, &p);
		X509_free(x);
	}
	BIO_free(bio);
	ASSERT_GE(der_len, 200, "the chain as DER");
	if (!new_service(&a, new_ct(false)) || !new_service(&b, new_ct(false)) || !fetch(VALID, 0, &ev))
		goto out;
	uint64_t t = agreed_now();

	len = check_op(op, sizeof(op), VALID, t, &ev, 1);
	exec(&a, op, len, &ra);
	len = hm_ct_op_check(op, sizeof(op), t, der, der_len, &ev, 1);
	exec(&b, op, len, &rb);
	ASSERT_EQ(verdict_of(&rb, &v), HM_CT_OK, v.reason);
	ASSERT_TRUE(ra.len == rb.len && memcmp(ra.buf, rb.buf, ra.len) == 0,
		    "DER and PEM: same verdict bytes");
	/* PEM after text, as `openssl s_client -showcerts` writes it */
	{
		static char text[16384];
		size_t tl = (size_t)snprintf(text, sizeof(text), "subject=CN = valid\n%s",
					     env.chain[VALID]);

		struct hm_service c = { 0 };

		len = hm_ct_op_check(op, sizeof(op), t, text, tl, &ev, 1);
		if (new_service(&c, new_ct(false))) { /* a fresh replica: b holds the STH now */
			exec(&c, op, len, &rb);
			ASSERT_TRUE(ra.len == rb.len && memcmp(ra.buf, rb.buf, ra.len) == 0,
				    "PEM after a line of text: same verdict bytes");
			c.ops->destroy(c.state);
		}
	}
	/* DER with a trailing byte is not a chain */
	der[der_len] = 0;
	len = hm_ct_op_check(op, sizeof(op), t, der, der_len + 1, &ev, 1);
	exec(&b, op, len, &rb);
	ASSERT_EQ(verdict_of(&rb, &v), HM_CT_MALFORMED, "DER with a trailing byte");
out:
	destroy(&a);
	destroy(&b);
}

/* Malformed ops get a decodable MALFORMED verdict that says why; the state
 * does not move. */
HM_TEST(malformed_ops)
{
	static uint8_t op[1 << 16];
	struct hm_service s = { 0 };
	struct hm_ct_evidence ev;
	struct hm_ct_verdict v;
	struct result r;
	uint8_t d0[HM_DIGEST_LEN], d1[HM_DIGEST_LEN], id[HM_CT_LOG_ID_LEN];
	enum hm_ct_latest_status st;
	uint64_t size;
	size_t len, good;

	NEED_ENV();
	if (!new_service(&s, new_ct(false)) || !fetch(VALID, 0, &ev))
		goto out;
	digest(&s, d0);
	good = check_op(op, sizeof(op), VALID, agreed_now(), &ev, 1);

	struct { const char *what, *reason; size_t len; void (*mutate)(uint8_t *, size_t); } cases[] = {
		{ "empty op", "unknown opcode 0x00", 0, NULL },
		{ "truncated header", "truncated header", 5, NULL },
		{ "header only", "bad chain length", HM_CT_CHECK_HDR, NULL },
		{ "no evidence count", "truncated before the evidence count",
		  HM_CT_CHECK_HDR + env.chain_len[VALID], NULL },
		{ "evidence cut short", "bad evidence encoding", good - 1, NULL },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		check_op(op, sizeof(op), VALID, agreed_now(), &ev, 1);
		exec(&s, op, cases[i].len, &r);
		if (ASSERT_EQ(verdict_of(&r, &v), HM_CT_MALFORMED, cases[i].what))
			ASSERT_STRCONTAINS(v.reason, cases[i].reason, cases[i].what);
	}

	/* chain length beyond the op */
	check_op(op, sizeof(op), VALID, agreed_now(), &ev, 1);
	hm_put_be32(op + 9, (uint32_t)good);
	exec(&s, op, good, &r);
	if (ASSERT_EQ(verdict_of(&r, &v), HM_CT_MALFORMED, "chain length too large"))
		ASSERT_STRCONTAINS(v.reason, "bad chain length", "reason");
	/* too many evidence entries */
	len = check_op(op, sizeof(op), VALID, agreed_now(), NULL, 0);
	op[len - 1] = HM_CT_MAX_LOGS + 1;
	exec(&s, op, len, &r);
	if (ASSERT_EQ(verdict_of(&r, &v), HM_CT_MALFORMED, "33 evidence entries"))
		ASSERT_STRCONTAINS(v.reason, "too many evidence entries", "reason");
	/* a byte after the evidence */
	len = check_op(op, sizeof(op), VALID, agreed_now(), &ev, 1);
	op[len] = 0;
	exec(&s, op, len + 1, &r);
	if (ASSERT_EQ(verdict_of(&r, &v), HM_CT_MALFORMED, "trailing byte"))
		ASSERT_STRCONTAINS(v.reason, "trailing bytes", "reason");
	/* a chain that is neither PEM nor DER */
	len = hm_ct_op_check(op, sizeof(op), agreed_now(), "garbage", 7, NULL, 0);
	exec(&s, op, len, &r);
	if (ASSERT_EQ(verdict_of(&r, &v), HM_CT_MALFORMED, "garbage chain"))
		ASSERT_STRCONTAINS(v.reason, "neither PEM nor DER", "reason");
	/* an opcode of the range that means nothing yet */
	op[0] = HM_CT_OP_LAST;
	exec(&s, op, 1, &r);
	if (ASSERT_EQ(verdict_of(&r, &v), HM_CT_MALFORMED, "opcode 0x3f"))
		ASSERT_STRCONTAINS(v.reason, "unknown opcode 0x3f", "reason");
	/* CT_LATEST: wrong length, unknown log */
	log_a_id(id);
	len = hm_ct_op_latest(op, sizeof(op), id);
	exec(&s, op, len - 1, &r);
	ASSERT_OK(hm_ct_latest_decode(r.buf, r.len, &st, &size), "latest decodes");
	ASSERT_EQ(st, HM_CT_LATEST_BAD_OP, "short CT_LATEST");
	op[1] ^= 1;
	exec(&s, op, len, &r);
	ASSERT_OK(hm_ct_latest_decode(r.buf, r.len, &st, &size), "latest decodes");
	ASSERT_EQ(st, HM_CT_LATEST_UNKNOWN, "CT_LATEST of an unknown log");

	digest(&s, d1);
	ASSERT_MEMEQ(d0, d1, HM_DIGEST_LEN, "no malformed op moved the state");
	/* and the well-formed op still works after all that */
	check_op(op, sizeof(op), VALID, agreed_now(), &ev, 1);
	exec(&s, op, good, &r);
	ASSERT_EQ(verdict_of(&r, &v), HM_CT_OK, v.reason);
out:
	destroy(&s);
}

/* check(): T within the configured skew of the replica's clock, both ways;
 * only CT_CHECK is judged; through the mux as well. */
HM_TEST(check_clock_skew)
{
	struct hm_service_route routes[2] = { { .first = HM_KV_PUT, .last = 15 },
					      { .first = HM_CT_OP_FIRST, .last = HM_CT_OP_LAST } };
	struct hm_exec_ctx ctx = { 0 };
	struct hm_service mux = { 0 };
	uint64_t now = 1800000000;
	uint8_t op[64], id[HM_CT_LOG_ID_LEN] = { 0 };
	size_t len;

	ASSERT_OK(hm_kv_service_new(&routes[0].svc), "kv");
	ASSERT_OK(hm_ct_service_new(&routes[1].svc, hm_ct_new(), 300, fake_clock, &now), "ct");
	if (!ASSERT_OK(hm_service_mux_new(&mux, routes, 2), "mux"))
		return;
	struct { int64_t offset; bool ok; } cases[] = {
		{ 0, true }, { 300, true }, { -300, true }, { 301, false }, { -301, false },
		{ 86400, false }, { -(int64_t)now, false },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char what[64];

		len = hm_ct_op_check(op, sizeof(op), now + (uint64_t)cases[i].offset, "x", 1, NULL, 0);
		snprintf(what, sizeof(what), "T = now %+lld s", (long long)cases[i].offset);
		ASSERT_EQ(mux.ops->check(mux.state, &ctx, op, len), cases[i].ok, what);
	}
	/* the clock moves: the same op becomes acceptable, then stale */
	len = hm_ct_op_check(op, sizeof(op), now + 1000, "x", 1, NULL, 0);
	ASSERT_FALSE(mux.ops->check(mux.state, &ctx, op, len), "1000 s ahead");
	now += 900;
	ASSERT_TRUE(mux.ops->check(mux.state, &ctx, op, len), "100 s ahead after the clock moved");
	now += 1000;
	ASSERT_FALSE(mux.ops->check(mux.state, &ctx, op, len), "900 s behind");
	/* ops carrying no time are not the clock's business */
	len = hm_ct_op_latest(op, sizeof(op), id);
	ASSERT_TRUE(mux.ops->check(mux.state, &ctx, op, len), "CT_LATEST");
	ASSERT_TRUE(mux.ops->check(mux.state, &ctx, op, 4), "a short op (execute says malformed)");
	len = hm_kv_encode_get(op, sizeof(op), "k");
	ASSERT_TRUE(mux.ops->check(mux.state, &ctx, op, len), "a KV op");
	mux.ops->destroy(mux.state);
}

/* ---- the ct: configuration section ---------------------------------------- */

#define MEMBER(i) "    - {id: " #i ", address: 10.0.0." #i ", public_key: " \
	"a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0a0}\n"
#define CLUSTER "cluster:\n  members:\n" MEMBER(0) MEMBER(1) MEMBER(2) MEMBER(3)  /* lines 1-6 */

static int load(const char *ct_yaml, struct hm_config *cfg, char *err, size_t errlen)
{
	char path[128];
	FILE *f;
	int rc;

	snprintf(path, sizeof(path), "%s/cluster.yaml", env.dir);
	f = fopen(path, "w");
	if (!f)
		return -100;
	fputs(CLUSTER, f);
	fputs(ct_yaml, f);
	fclose(f);
	rc = hm_config_load(path, cfg, err, errlen);
	/* The loader parses; the CT files are read by the CT service, which
	 * reports a bad one with the same file, line and key. */
	if (rc == 0 && hm_ct_config_check(cfg, err, errlen) < 0)
		rc = -1;
	return rc;
}

static void expect_error(const char *ct_yaml, int line, const char *key, const char *msg)
{
	struct hm_config cfg;
	char err[1024] = "", want[128];

	if (!ASSERT_ERR(load(ct_yaml, &cfg, err, sizeof(err)), msg))
		return;
	snprintf(want, sizeof(want), "/cluster.yaml:%d: %s: ", line, key);
	ASSERT_STRCONTAINS(err, want, "file, line and key");
	ASSERT_STRCONTAINS(err, msg, "message");
	hm_config_free(&cfg);
}

HM_TEST(config_section)
{
	struct hm_config cfg;
	char err[1024] = "";

	NEED_ENV();
	/* paths are relative to the config file, as everywhere */
	if (ASSERT_OK(load("ct:\n  trust_store: root.pem\n  logs:\n"
			   "    - {name: a, key: log_a.pub.pem, url: \"http://127.0.0.1:1\"}\n"
			   "    - {name: b, key: log_b.pub.pem, url: \"https://log.example/ct\"}\n",
			   &cfg, err, sizeof(err)), err)) {
		ASSERT_TRUE(cfg.ct.enabled, "enabled");
		ASSERT_EQ(cfg.ct.n_logs, 2, "two logs");
		ASSERT_EQ(cfg.ct.max_clock_skew_s, HM_CT_DEFAULT_SKEW_S, "default skew");
		ASSERT_STRCONTAINS(cfg.ct.logs[1].key_path, env.dir, "key path made absolute");
		ASSERT_STRCONTAINS(cfg.ct.logs[1].url, "https://log.example/ct", "url");
		struct hm_ct *ct = hm_ct_from_config(&cfg.ct, err, sizeof(err));
		ASSERT_TRUE(ct != NULL, err);
		hm_ct_free(ct);
		hm_config_free(&cfg);
	}
	if (ASSERT_OK(load("ct:\n  trust_store: root.pem\n  max_clock_skew_s: 30\n", &cfg, err,
			   sizeof(err)), err)) {
		ASSERT_EQ(cfg.ct.max_clock_skew_s, 30, "skew set");
		ASSERT_EQ(cfg.ct.n_logs, 0, "no logs");
		hm_config_free(&cfg);
	}
	if (ASSERT_OK(load("", &cfg, err, sizeof(err)), err)) {
		ASSERT_FALSE(cfg.ct.enabled, "no ct: section, no CT service");
		hm_config_free(&cfg);
	}
	expect_error("ct:\n  logs: []\n", 8, "ct.trust_store", "required key is missing");
	expect_error("ct:\n  trust_store: nothere.pem\n", 8, "ct.trust_store", "nothere.pem");
	expect_error("ct:\n  trust_store: log_a.pub.pem\n", 8, "ct.trust_store", "");
	expect_error("ct:\n  trust_store: root.pem\n  max_clock_skew_s: 0\n", 9,
		     "ct.max_clock_skew_s", "out of range");
	expect_error("ct:\n  trust_store: root.pem\n  colour: blue\n", 9, "ct.colour", "unknown key");
	expect_error("ct:\n  trust_store: root.pem\n  logs:\n    - {name: a, key: log_a.pub.pem, "
		     "url: \"ftp://x\"}\n", 10, "ct.logs[0].url", "http:// or https://");
	expect_error("ct:\n  trust_store: root.pem\n  logs:\n    - {name: a, key: root.pem, "
		     "url: \"http://x\"}\n", 10, "ct.logs[0].key", "");
	expect_error("ct:\n  trust_store: root.pem\n  logs:\n    - {name: a, url: \"http://x\"}\n", 10,
		     "ct.logs[0].key", "required key is missing");
	expect_error("ct:\n  trust_store: root.pem\n  logs:\n"
		     "    - {name: a, key: log_a.pub.pem, url: \"http://x\"}\n"
		     "    - {name: b, key: log_a.pub.pem, url: \"http://y\"}\n", 11, "ct.logs[1].key",
		     "the same key as log a");
	expect_error("ct:\n  trust_store: root.pem\n  logs: {a: 1}\n", 9, "ct.logs", "a sequence");
}

/* ---- certificates: hm_ct_cert_verify against made-up replica keys ----------- */

static json_t *hexj(const uint8_t *p, size_t len)
{
	char h[2 * HM_CT_VERDICT_MAX + 1];

	sodium_bin2hex(h, sizeof(h), p, len);
	return json_string(h);
}

/* A certificate as hmctl writes it, signed by replicas `signers`: the
 * verdict is leaf 0 of a batch of two executed at 42, each signer's
 * signature over that batch's root. */
static json_t *make_cert(const struct hm_keypair *keys, const int *signers, int n,
			 const uint8_t *verdict, size_t vlen)
{
	uint8_t body[HM_REPLY_PREFIX_LEN + HM_CT_VERDICT_MAX], op_digest[HM_DIGEST_LEN];
	hm_merkle_hash leaves[2];
	struct hm_reply_batch rb;
	struct hm_reply_proof p;
	size_t blen;
	json_t *replies = json_array(), *path = json_array();

	hm_digest("the CT_CHECK op", 15, op_digest);
	blen = hm_reply_body(body, sizeof(body), 100, 42, op_digest, HM_REPLY_RESULT, verdict, vlen);
	hm_reply_leaf(777, body, blen, leaves[0]);
	hm_reply_leaf(778, body, blen - 1, leaves[1]);
	for (int i = 0; i < n; i++) {
		if (hm_reply_batch_sign(&rb, leaves, 2, (uint32_t)signers[i], 42, &keys[signers[i]]) < 0)
			abort();
		hm_reply_batch_proof(&rb, 0, &p);
		hm_reply_batch_free(&rb);
		json_array_append_new(replies, json_pack("{s:i, s:o}", "replica", signers[i],
							 "signature", hexj(p.sig, HM_SIG_LEN)));
	}
	json_array_append_new(path, hexj(p.path[0], HM_DIGEST_LEN));
	return json_pack("{s:s, s:o, s:i, s:i, s:i, s:o, s:{s:i, s:i, s:o, s:o}, s:o}", "format",
			 HM_CERT_CT_FORMAT, "op_digest", hexj(op_digest, HM_DIGEST_LEN),
			 "client", 100, "request", 777, "exec_seq", 42, "verdict", hexj(verdict, vlen),
			 "batch", "size", 2, "index", 0, "path", path, "root", hexj(p.root, HM_DIGEST_LEN),
			 "replies", replies);
}

HM_TEST(certificate_verify)
{
	static struct hm_config cfg;
	struct hm_keypair keys[5];
	struct hm_ct_verdict v = { .result = HM_CT_OK, .time = 1800000000 };
	uint8_t verdict[HM_CT_VERDICT_MAX];
	size_t vlen;
	char err[256];
	json_t *c;

	hm_config_defaults(&cfg);
	cfg.n_members = 4;
	cfg.max_faulty_nodes = 1;
	for (int i = 0; i < 5; i++)
		hm_keypair_generate(&keys[i]);
	for (int i = 0; i < 4; i++)
		memcpy(cfg.members[i].public_key, keys[i].pk, HM_PUBKEY_LEN);
	strcpy(v.reason, "ok: test");
	vlen = hm_ct_verdict_encode(&v, verdict, sizeof(verdict));

	c = make_cert(keys, (const int[]){ 0, 2, 3 }, 3, verdict, vlen);
	ASSERT_OK(hm_ct_cert_verify(&cfg, c, err, sizeof(err)), err);
	json_decref(c);
	c = make_cert(keys, (const int[]){ 0, 1, 2, 3 }, 4, verdict, vlen);
	ASSERT_OK(hm_ct_cert_verify(&cfg, c, err, sizeof(err)), "all four");
	json_decref(c);

	c = make_cert(keys, (const int[]){ 0, 2 }, 2, verdict, vlen);
	ASSERT_ERR(hm_ct_cert_verify(&cfg, c, err, sizeof(err)), "2f signatures");
	ASSERT_STRCONTAINS(err, "2f+1 = 3", "reason");
	json_decref(c);
	c = make_cert(keys, (const int[]){ 0, 2, 2 }, 3, verdict, vlen);
	ASSERT_ERR(hm_ct_cert_verify(&cfg, c, err, sizeof(err)), "a replica twice");
	ASSERT_STRCONTAINS(err, "appears twice", "reason");
	json_decref(c);
	/* key 4 is nobody's: its entry claims replica 4 (not a member) ... */
	c = make_cert(keys, (const int[]){ 0, 1, 4 }, 3, verdict, vlen);
	ASSERT_ERR(hm_ct_cert_verify(&cfg, c, err, sizeof(err)), "a non-member id");
	ASSERT_STRCONTAINS(err, "not a member", "reason");
	json_decref(c);
	/* ... or a member's id, signed with the outsider's key */
	c = make_cert(keys, (const int[]){ 0, 1, 3 }, 3, verdict, vlen);
	memcpy(cfg.members[3].public_key, keys[4].pk, HM_PUBKEY_LEN);
	ASSERT_ERR(hm_ct_cert_verify(&cfg, c, err, sizeof(err)), "a signature under another key");
	ASSERT_STRCONTAINS(err, "does not verify under replica 3", "reason");
	memcpy(cfg.members[3].public_key, keys[3].pk, HM_PUBKEY_LEN);
	ASSERT_OK(hm_ct_cert_verify(&cfg, c, err, sizeof(err)), "with the right key again");
	json_decref(c);
	/* a different verdict than the one signed */
	c = make_cert(keys, (const int[]){ 0, 1, 3 }, 3, verdict, vlen);
	v.result = HM_CT_SCT_MISSING;
	vlen = hm_ct_verdict_encode(&v, verdict, sizeof(verdict));
	json_object_set_new(c, "verdict", hexj(verdict, vlen));
	ASSERT_ERR(hm_ct_cert_verify(&cfg, c, err, sizeof(err)), "a swapped verdict");
	ASSERT_STRCONTAINS(err, "does not lead from this result", "reason");
	json_object_set_new(c, "verdict", json_string("zz"));
	ASSERT_ERR(hm_ct_cert_verify(&cfg, c, err, sizeof(err)), "a verdict that is not hex");
	json_object_set_new(c, "format", json_string("dns"));
	ASSERT_ERR(hm_ct_cert_verify(&cfg, c, err, sizeof(err)), "another format");
	json_decref(c);
}

/* Random and mutated ops never crash execute() (run it under ASan too) and
 * always give a result of the op's kind. */
HM_TEST(random_ops)
{
	static uint8_t op[1 << 16], valid[1 << 16];
	struct hm_service s = { 0 };
	struct hm_ct_evidence ev;
	struct hm_ct_verdict v;
	enum hm_ct_latest_status st;
	struct result r;
	uint64_t size;
	size_t len, vlen;
	unsigned seed = 12345;

	NEED_ENV();
	if (!new_service(&s, new_ct(false)) || !fetch(VALID, 0, &ev))
		goto out;
	vlen = check_op(valid, sizeof(valid), VALID, agreed_now(), &ev, 1);
	for (int i = 0; i < 3000; i++) {
		bool mutate = i % 3 == 0;

		if (mutate) {
			/* one to four bytes of a valid op changed */
			memcpy(op, valid, vlen);
			len = vlen;
			for (int k = 0, n = 1 + rand_r(&seed) % 4; k < n; k++)
				op[rand_r(&seed) % len] ^= (uint8_t)(1 + rand_r(&seed) % 255);
		} else {
			len = (size_t)rand_r(&seed) % 512;
			for (size_t k = 0; k < len; k++)
				op[k] = (uint8_t)rand_r(&seed);
			if (len)
				op[0] = (uint8_t)(HM_CT_OP_FIRST + rand_r(&seed) % 16);
		}
		exec(&s, op, len, &r);
		if (len && op[0] == HM_CT_OP_LATEST) {
			if (!ASSERT_OK(hm_ct_latest_decode(r.buf, r.len, &st, &size), "a CT_LATEST result"))
				break;
		} else if (!ASSERT_TRUE(verdict_of(&r, &v) < HM_CT_RESULT_COUNT, "a verdict")) {
			break;
		}
	}
out:
	destroy(&s);
}
