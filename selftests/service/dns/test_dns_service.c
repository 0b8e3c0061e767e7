// SPDX-License-Identifier: MIT
/*
 * The DNS agreement service (user/service/dns/dns_service.c): each decision rule
 * ((a) a DNSSEC chain that verifies at T, (b) f+1 equal observations,
 * (c) no agreement among 2f+1 / f+1 bogus), the poisoning statistic,
 * T fixed by the first observation, eviction by the T of later ops, the
 * served TTL cap, refused malformed ops, check() against a wall clock,
 * CERTIFY results, and determinism (two instances fed the same ops have the
 * same digest and snapshot bytes; restore round trip; bad snapshots refused).
 */
#include <ldns/ldns.h>

#include "common/crypto.h"
#include "service/dns/dns_chain.h"
#include "service/dns/dns_msg.h"
#include "service/dns/dns_service.h"
#include "hm_test.h"
#include "service/dns/hm_dns_sign.h"

/* A canon that must exist (see test_canon). */
static uint8_t *canon_of(const char *name, ldns_rr_type type, int rcode, const char *const *rrs,
			 const ldns_rr_list *extra, bool secure, size_t *len)
{
	uint8_t *canon = test_canon(name, type, rcode, rrs, extra, secure, len);

	if (!canon)
		abort();
	return canon;
}

static struct hm_dns_q qof(const char *name, uint16_t type)
{
	struct hm_dns_q q;
	ldns_rdf *d = ldns_dname_new_frm_str(name);

	if (hm_dns_q_from_name(&q, ldns_rdf_data(d), ldns_rdf_size(d), type, 1) < 0)
		abort();
	ldns_rdf_deep_free(d);
	return q;
}

/* The test's canons: the honest answer, a poisoned one. */
static const char *const honest_rrs[] = { "www.example.test. 300 IN A 198.18.1.1", NULL };
static const char *const poison_rrs[] = { "www.example.test. 300 IN A 198.18.6.6", NULL };
static const char *const other_rrs[] = { "www.example.test. 300 IN A 198.18.7.7", NULL };

struct fixture {
	struct hm_service svc;
	struct hm_dns_service *s;
	int opened, decided;
	int64_t opened_t;
	bool opened_decided; /* at the last opened hook, q was decided */
	/* the executed hook: calls, the last client and timestamp, and the
	 * decisions seen when it came */
	int executed, decided_at_executed;
	uint32_t exec_client;
	uint64_t exec_ts;
	struct hm_dns_entry last;
	uint8_t out[HM_MAX_RESULT];
	size_t out_len;
};

static void on_opened(void *arg, const struct hm_dns_q *q, int64_t t)
{
	struct fixture *fx = arg;

	fx->opened++;
	fx->opened_t = t;
	fx->opened_decided = hm_dns_service_lookup(fx->s, q) != NULL;
}

static void on_decided(void *arg, const struct hm_dns_entry *e)
{
	struct fixture *fx = arg;

	fx->decided++;
	fx->last = *e;
	fx->last.canon = NULL; /* does not outlive the call */
}

static void on_executed(void *arg, uint32_t client, uint64_t ts)
{
	struct fixture *fx = arg;

	fx->executed++;
	fx->exec_client = client;
	fx->exec_ts = ts;
	fx->decided_at_executed = fx->decided;
}

static int64_t fake_now = T0;
static int64_t fake_clock(void)
{
	return fake_now;
}

static void setup(struct fixture *fx, uint32_t n, uint32_t f, const struct hm_dns_anchors *a)
{
	struct hm_dns_service_config cfg = {
		.n = n, .f = f, .max_ttl = 300, .lookup_timeout_s = 30, .skew_s = 60,
		.anchors = a, .wall_clock = fake_clock,
		.hooks = { on_opened, on_decided, fx, NULL, on_executed },
	};

	memset(fx, 0, sizeof(*fx));
	if (hm_dns_service_new(&fx->svc, &cfg) < 0)
		abort();
	fx->s = fx->svc.state;
}

static void teardown(struct fixture *fx)
{
	fx->svc.ops->destroy(fx->svc.state);
}

/* Execute an op as client `client`; returns the result code. */
static uint64_t next_ts = 1;
static int run_op(struct fixture *fx, uint32_t client, const uint8_t *op, size_t len)
{
	struct hm_exec_ctx ctx = { .seq = 1, .client = client, .timestamp = next_ts++ };

	fx->out_len = fx->svc.ops->execute(fx->svc.state, &ctx, op, len, fx->out, sizeof(fx->out));
	return fx->out_len ? fx->out[0] : -1;
}

static int observe(struct fixture *fx, uint32_t replica, const struct hm_dns_q *q, int64_t t,
		   uint8_t status, uint16_t ede, uint32_t ttl, const uint8_t *canon, size_t clen,
		   const uint8_t *chain, size_t chlen)
{
	static uint8_t op[70000];
	size_t n = hm_dns_observe_encode(q, t, status, ede, ttl, canon, clen, chain, chlen, op,
					 sizeof(op));

	if (!n)
		abort();
	return run_op(fx, HM_REPLICA_CLIENT_BASE + replica, op, n);
}

static int answer(struct fixture *fx, uint32_t replica, const struct hm_dns_q *q, int64_t t,
		  const char *const *rrs, uint32_t ttl)
{
	size_t clen;
	uint8_t *canon = canon_of("www.example.test.", LDNS_RR_TYPE_A, 0, rrs, NULL, false, &clen);
	int rc = observe(fx, replica, q, t, HM_DNS_OBS_ANSWER, 0, ttl, canon, clen, NULL, 0);

	free(canon);
	return rc;
}

/* The digest of the honest answer to www.example.test. A. */
static void honest_digest(uint8_t want[HM_DIGEST_LEN])
{
	size_t clen;
	uint8_t *canon = canon_of("www.example.test.", LDNS_RR_TYPE_A, 0, honest_rrs, NULL, false,
				  &clen);

	hm_dns_canon_digest(canon, clen, want);
	free(canon);
}

HM_TEST(rule_b_f_plus_1_equal_observations)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_service_stats st;
	const struct hm_dns_entry *e;
	uint8_t want[HM_DIGEST_LEN];

	honest_digest(want);
	setup(&fx, 4, 1, NULL);
	ASSERT_EQ(answer(&fx, 1, &q, T0, poison_rrs, 100), HM_DNS_R_PENDING, "poisoned first");
	ASSERT_EQ(fx.opened, 1, "opened at the first observation");
	ASSERT_EQ(fx.opened_t, T0, "at its T");
	ASSERT_EQ(answer(&fx, 0, &q, T0, honest_rrs, 200), HM_DNS_R_PENDING, "one honest: not yet");
	ASSERT_EQ(answer(&fx, 0, &q, T0, honest_rrs, 200), HM_DNS_R_IGNORED, "duplicate");
	ASSERT_EQ(answer(&fx, 2, &q, T0, honest_rrs, 100), HM_DNS_R_DECIDED, "f+1 agree");
	ASSERT_EQ(fx.decided, 1, "decided hook");
	e = hm_dns_service_lookup(fx.s, &q);
	if (ASSERT_TRUE(e != NULL, "cached")) {
		ASSERT_MEMEQ(e->digest, want, HM_DIGEST_LEN, "the honest canon");
		ASSERT_EQ(e->rule, HM_DNS_RULE_OBSERVED, "rule (b)");
		ASSERT_EQ(e->ttl, 100, "smallest ttl of the agreeing observations");
		ASSERT_EQ(e->expiry, T0 + 100, "expiry T + TTL");
	}
	ASSERT_EQ(answer(&fx, 3, &q, T0, honest_rrs, 100), HM_DNS_R_IGNORED, "late honest");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.differ[1], 1, "the poisoner counted");
	ASSERT_EQ(st.differ[0] + st.differ[2] + st.differ[3], 0, "honest ones not");
	ASSERT_EQ(st.ignored_dup, 1, "duplicate counted");
	ASSERT_EQ(st.decided_observed, 1, "decision counted");
	teardown(&fx);
}

HM_TEST(rule_b_never_from_f_poisoners)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_service_stats st;
	uint8_t want[HM_DIGEST_LEN];

	/* n = 7, f = 2: two poisoners agree with each other, first. */
	honest_digest(want);
	setup(&fx, 7, 2, NULL);
	ASSERT_EQ(answer(&fx, 5, &q, T0, poison_rrs, 100), HM_DNS_R_PENDING, "poisoner 1");
	ASSERT_EQ(answer(&fx, 6, &q, T0, poison_rrs, 100), HM_DNS_R_PENDING, "f poisoners: no decision");
	ASSERT_EQ(answer(&fx, 0, &q, T0, honest_rrs, 100), HM_DNS_R_PENDING, "honest 1");
	ASSERT_EQ(answer(&fx, 1, &q, T0, honest_rrs, 100), HM_DNS_R_PENDING, "honest 2");
	ASSERT_EQ(answer(&fx, 2, &q, T0, honest_rrs, 100), HM_DNS_R_DECIDED, "honest 3 = f+1");
	ASSERT_MEMEQ(fx.last.digest, want, HM_DIGEST_LEN, "the honest answer");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.differ[5] + st.differ[6], 2, "both poisoners counted");
	teardown(&fx);
}

HM_TEST(rule_c_no_agreement_and_bogus)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_service_stats st;

	setup(&fx, 4, 1, NULL);
	answer(&fx, 0, &q, T0, honest_rrs, 100);
	answer(&fx, 1, &q, T0, poison_rrs, 100);
	ASSERT_EQ(answer(&fx, 2, &q, T0, other_rrs, 100), HM_DNS_R_DECIDED, "2f+1, none agree");
	ASSERT_EQ(fx.last.rule, HM_DNS_RULE_FAIL, "SERVFAIL");
	ASSERT_EQ(fx.last.rcode, HM_DNS_SERVFAIL, "rcode");
	ASSERT_EQ(fx.last.ede, HM_EDE_OTHER, "EDE 0 no agreement");
	ASSERT_EQ(fx.last.ttl, HM_DNS_NEG_TTL, "negative TTL");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.differ[0] + st.differ[1] + st.differ[2], 0, "nobody to blame");
	teardown(&fx);

	setup(&fx, 7, 2, NULL);
	ASSERT_EQ(observe(&fx, 3, &q, T0, HM_DNS_OBS_BOGUS, 7, 0, NULL, 0, NULL, 0),
		  HM_DNS_R_PENDING, "one bogus");
	ASSERT_EQ(observe(&fx, 1, &q, T0, HM_DNS_OBS_BOGUS, 6, 0, NULL, 0, NULL, 0),
		  HM_DNS_R_PENDING, "other EDE");
	ASSERT_EQ(observe(&fx, 0, &q, T0, HM_DNS_OBS_BOGUS, 6, 0, NULL, 0, NULL, 0),
		  HM_DNS_R_DECIDED, "f+1 = 3 bogus");
	ASSERT_EQ(fx.last.rule, HM_DNS_RULE_FAIL, "SERVFAIL");
	ASSERT_EQ(fx.last.ede, 6, "the EDE most reported");
	ASSERT_EQ(answer(&fx, 2, &q, T0, poison_rrs, 100), HM_DNS_R_IGNORED, "late answer");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.differ[2], 1, "an answer where the others saw bogus differs");
	teardown(&fx);
}

HM_TEST(outage_is_not_poisoning)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_service_stats st;

	/* Replica 3's upstream timed out; the others answer alike. */
	setup(&fx, 4, 1, NULL);
	ASSERT_EQ(observe(&fx, 3, &q, T0, HM_DNS_OBS_FAILED, HM_EDE_NO_REACHABLE_AUTHORITY, 0, NULL,
			  0, NULL, 0), HM_DNS_R_PENDING, "a failed lookup first");
	answer(&fx, 0, &q, T0, honest_rrs, 100);
	ASSERT_EQ(answer(&fx, 1, &q, T0, honest_rrs, 100), HM_DNS_R_DECIDED, "f+1 answers");
	ASSERT_EQ(observe(&fx, 2, &q, T0, HM_DNS_OBS_FAILED, HM_EDE_NO_REACHABLE_AUTHORITY, 0, NULL,
			  0, NULL, 0), HM_DNS_R_IGNORED, "a late failed lookup");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.differ[3], 0, "a failure before the decision is not poisoning");
	ASSERT_EQ(st.differ[2], 0, "nor one after it");
	teardown(&fx);

	/* Most upstreams unreachable: SERVFAIL (EDE 22); the one replica that
	 * got an answer is not blamed for it either. */
	setup(&fx, 4, 1, NULL);
	observe(&fx, 0, &q, T0, HM_DNS_OBS_FAILED, HM_EDE_NO_REACHABLE_AUTHORITY, 0, NULL, 0, NULL, 0);
	ASSERT_EQ(observe(&fx, 1, &q, T0, HM_DNS_OBS_FAILED, HM_EDE_NO_REACHABLE_AUTHORITY, 0, NULL,
			  0, NULL, 0), HM_DNS_R_DECIDED, "f+1 failures");
	ASSERT_EQ(fx.last.ede, HM_EDE_NO_REACHABLE_AUTHORITY, "EDE 22");
	ASSERT_EQ(answer(&fx, 2, &q, T0, honest_rrs, 100), HM_DNS_R_IGNORED, "a late answer");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.differ[0] + st.differ[1] + st.differ[2], 0, "an outage blames nobody");
	teardown(&fx);
}

HM_TEST(t_fixed_by_first_observation)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_service_stats st;

	setup(&fx, 4, 1, NULL);
	answer(&fx, 0, &q, T0, honest_rrs, 100);
	fx.opened = 0;
	ASSERT_EQ(answer(&fx, 1, &q, T0 + 5, honest_rrs, 100), HM_DNS_R_IGNORED, "other T");
	ASSERT_EQ(fx.opened, 1, "observer told to look again");
	ASSERT_EQ(fx.opened_t, T0, "at the lookup's T");
	ASSERT_FALSE(hm_dns_service_observed(fx.s, &q, T0, 1), "replica 1 has not observed at T0");
	ASSERT_TRUE(hm_dns_service_observed(fx.s, &q, T0, 0), "replica 0 has");
	ASSERT_EQ(answer(&fx, 1, &q, T0, honest_rrs, 100), HM_DNS_R_DECIDED, "again at T0");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.ignored_t, 1, "counted");
	teardown(&fx);
}

HM_TEST(eviction_by_agreed_time_and_ttl_cap)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_q q2 = qof("www.example.test.", LDNS_RR_TYPE_AAAA);
	struct hm_dns_q q3 = qof("x.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_service_stats st;
	size_t clen;
	uint8_t *c2 = canon_of("www.example.test.", LDNS_RR_TYPE_AAAA, 3, NULL, NULL, false, &clen);

	setup(&fx, 4, 1, NULL);
	answer(&fx, 0, &q, T0, honest_rrs, 3600);
	answer(&fx, 1, &q, T0, honest_rrs, 3600);
	ASSERT_EQ(fx.last.ttl, 300, "served TTL capped at max_ttl");
	ASSERT_EQ(fx.last.expiry, T0 + 300, "expiry");
	/* Another question at T0 + 299: still cached; at T0 + 300: gone. */
	observe(&fx, 0, &q2, T0 + 299, HM_DNS_OBS_ANSWER, 0, 60, c2, clen, NULL, 0);
	ASSERT_TRUE(hm_dns_service_lookup(fx.s, &q) != NULL, "not expired before its time");
	observe(&fx, 1, &q2, T0 + 299, HM_DNS_OBS_ANSWER, 0, 60, c2, clen, NULL, 0);
	ASSERT_EQ(fx.last.rcode, HM_DNS_NXDOMAIN, "negative answer decided by (b)");
	observe(&fx, 2, &q3, T0 + 300, HM_DNS_OBS_FAILED, 22, 0, NULL, 0, NULL, 0);
	ASSERT_TRUE(hm_dns_service_lookup(fx.s, &q) == NULL, "expired by a later op's T");
	ASSERT_TRUE(hm_dns_service_lookup(fx.s, &q2) != NULL, "the other entry stays");
	/* An open lookup that never completes times out (30 s of agreed T). */
	observe(&fx, 2, &q2, T0 + 400, HM_DNS_OBS_FAILED, 22, 0, NULL, 0, NULL, 0);
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.expired, 2, "both entries expired");
	ASSERT_EQ(st.timed_out, 1, "the lookup for q3 timed out");
	/* A fresh agreement after expiry. */
	ASSERT_EQ(answer(&fx, 0, &q, T0 + 400, honest_rrs, 3600), HM_DNS_R_PENDING, "reopened");
	ASSERT_EQ(answer(&fx, 3, &q, T0 + 400, honest_rrs, 3600), HM_DNS_R_DECIDED, "decided again");
	ASSERT_EQ(fx.last.t, T0 + 400, "at the new T");
	teardown(&fx);
	free(c2);
}

HM_TEST(malformed_ops_refused)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_q qx = qof("other.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_service_stats st;
	static uint8_t op[4096];
	size_t clen, n;
	uint8_t *canon = canon_of("www.example.test.", LDNS_RR_TYPE_A, 0, honest_rrs, NULL, false,
				  &clen);

	setup(&fx, 4, 1, NULL);
	n = hm_dns_observe_encode(&q, T0, HM_DNS_OBS_ANSWER, 0, 60, canon, clen, NULL, 0, op,
				  sizeof(op));
	ASSERT_EQ(run_op(&fx, 7, op, n), HM_DNS_R_MALFORMED, "not a replica's client id");
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE + 4, op, n), HM_DNS_R_MALFORMED, "replica >= n");
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE, op, n - 1), HM_DNS_R_MALFORMED, "truncated");
	op[n] = 0;
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE, op, n + 1), HM_DNS_R_MALFORMED, "trailing");
	for (size_t cut = 0; cut < n; cut++)
		ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE, op, cut), HM_DNS_R_MALFORMED, "every prefix");
	/* A canon with a non-zero TTL byte is not canonical. */
	canon[clen - 5] ^= 1;
	n = hm_dns_observe_encode(&q, T0, HM_DNS_OBS_ANSWER, 0, 60, canon, clen, NULL, 0, op,
				  sizeof(op));
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE, op, n), HM_DNS_R_MALFORMED, "canon changed");
	canon[clen - 5] ^= 1;
	n = hm_dns_observe_encode(&qx, T0, HM_DNS_OBS_ANSWER, 0, 60, canon, clen, NULL, 0, op,
				  sizeof(op));
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE, op, n), HM_DNS_R_MALFORMED, "canon for another Q");
	n = hm_dns_observe_encode(&q, T0, HM_DNS_OBS_BOGUS, 6, 0, canon, clen, NULL, 0, op, sizeof(op));
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE, op, n), HM_DNS_R_MALFORMED, "bogus with a canon");
	n = hm_dns_observe_encode(&q, T0, 9, 6, 0, NULL, 0, NULL, 0, op, sizeof(op));
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE, op, n), HM_DNS_R_MALFORMED, "unknown status");
	n = hm_dns_observe_encode(&q, T0, HM_DNS_OBS_ANSWER, 0, 60, canon, clen, NULL, 0, op,
				  sizeof(op));
	op[2] ^= 0x20; /* upper case in the question */
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE, op, n), HM_DNS_R_MALFORMED, "upper-case Q");
	op[0] = 0x2f;
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE, op, n), HM_DNS_R_MALFORMED, "unknown opcode");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.observations, 0, "nothing recorded");
	ASSERT_EQ(fx.svc.ops->check(fx.svc.state, NULL, op, n), false, "check refuses it too");
	ASSERT_EQ(hm_dns_service_cache_size(fx.s), 0, "empty cache");
	teardown(&fx);
	free(canon);
}

HM_TEST(check_skew_and_canon)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	static uint8_t op[4096];
	size_t clen, n;
	uint8_t *canon = canon_of("www.example.test.", LDNS_RR_TYPE_A, 0, honest_rrs, NULL, false,
				  &clen);
	bool ok;

	setup(&fx, 4, 1, NULL);
	fake_now = T0;
	for (int64_t d = -61; d <= 61; d += 61) {
		n = hm_dns_observe_encode(&q, T0 + d, HM_DNS_OBS_ANSWER, 0, 60, canon, clen, NULL, 0,
					  op, sizeof(op));
		ok = fx.svc.ops->check(fx.svc.state, NULL, op, n);
		ASSERT_EQ(ok, d == 0, "T within the skew only");
	}
	n = hm_dns_observe_encode(&q, T0 + 60, HM_DNS_OBS_ANSWER, 0, 60, canon, clen, NULL, 0, op,
				  sizeof(op));
	ASSERT_TRUE(fx.svc.ops->check(fx.svc.state, NULL, op, n), "at the edge of the skew");
	canon[0] = 9; /* canon version */
	n = hm_dns_observe_encode(&q, T0, HM_DNS_OBS_ANSWER, 0, 60, canon, clen, NULL, 0, op,
				  sizeof(op));
	ASSERT_FALSE(fx.svc.ops->check(fx.svc.state, NULL, op, n), "bad canon");
	canon[0] = HM_DNS_CANON_VERSION;
	n = hm_dns_observe_encode(&q, T0, HM_DNS_OBS_ANSWER, 0, 60, canon, clen, NULL, 0, op,
				  sizeof(op));
	{
		struct hm_exec_ctx ours = { .client = HM_REPLICA_CLIENT_BASE + 3 };
		struct hm_exec_ctx other = { .client = 100 };
		struct hm_exec_ctx beyond = { .client = HM_REPLICA_CLIENT_BASE + 4 };

		ASSERT_TRUE(fx.svc.ops->check(fx.svc.state, &ours, op, n), "a replica's client");
		ASSERT_FALSE(fx.svc.ops->check(fx.svc.state, &other, op, n), "an ordinary client");
		ASSERT_FALSE(fx.svc.ops->check(fx.svc.state, &beyond, op, n), "replica id >= n");
		n = hm_dns_certify_encode(&q, op, sizeof(op));
		ASSERT_TRUE(fx.svc.ops->check(fx.svc.state, &other, op, n), "CERTIFY from anyone");
	}
	teardown(&fx);
	free(canon);
}

HM_TEST(certify_result)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_entry e;
	uint8_t op[600];
	size_t n = hm_dns_certify_encode(&q, op, sizeof(op));

	setup(&fx, 4, 1, NULL);
	ASSERT_EQ(run_op(&fx, 123, op, n), HM_DNS_R_NOT_DECIDED, "nothing yet");
	answer(&fx, 0, &q, T0, honest_rrs, 100);
	answer(&fx, 1, &q, T0, honest_rrs, 100);
	ASSERT_EQ(run_op(&fx, 123, op, n), HM_DNS_R_DECIDED, "any client may ask");
	if (ASSERT_OK(hm_dns_entry_decode(fx.out + 1, fx.out_len - 1, &e), "decodes")) {
		ASSERT_EQ(e.t, T0, "T");
		ASSERT_EQ(e.expiry, T0 + 100, "expiry");
		ASSERT_TRUE(e.canon != NULL, "canon included");
		ASSERT_MEMEQ(e.digest, fx.last.digest, HM_DIGEST_LEN, "digest");
	}
	fx.out[fx.out_len - 1] ^= 1; /* the canon no longer matches its digest */
	ASSERT_ERR(hm_dns_entry_decode(fx.out + 1, fx.out_len - 1, &e), "tampered canon refused");
	teardown(&fx);
}

/* ---- rule (a) ----------------------------------------------------------------- */

HM_TEST(rule_a_dnssec_chain_at_t)
{
	struct fixture fx;
	struct test_zone z;
	ldns_rr *ds;
	ldns_rr_list *set = ldns_rr_list_new(), *chain = ldns_rr_list_new(), *ans = ldns_rr_list_new();
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_service_stats st;
	struct hm_dns_anchors *anchors;
	char *ds_text;
	uint8_t *canon, *ch;
	size_t clen, chlen;

	test_zone_init(&z, "example.test.");
	ds = ldns_key_rr2ds(z.ksk_rr, LDNS_SHA256);
	ds_text = ldns_rr2str(ds);
	anchors = hm_dns_anchors_new((const char *const *)&ds_text, 1, NULL, NULL, 0);
	ldns_rr_list_push_rr(set, ldns_rr_clone(z.ksk_rr));
	ldns_rr_list_push_rr(set, ldns_rr_clone(z.zsk_rr));
	test_add_signed(chain, set, z.ksk);
	ldns_rr_list_deep_free(set);
	set = ldns_rr_list_new();
	ldns_rr_list_push_rr(set, test_rr("www.example.test. 300 IN A 198.18.1.1"));
	test_add_signed(ans, set, z.zsk);
	canon = canon_of("www.example.test.", LDNS_RR_TYPE_A, 0, NULL, ans, true, &clen);
	ch = test_encode_chain(chain, &chlen);

	if (!ASSERT_TRUE(anchors != NULL, "anchors"))
		return;
	setup(&fx, 4, 1, anchors);
	/* At a T outside the signatures' window the chain does not count. */
	ASSERT_EQ(observe(&fx, 0, &q, T0 + 31 * DAY, HM_DNS_OBS_ANSWER, 0, 300, canon, clen, ch, chlen),
		  HM_DNS_R_PENDING, "expired signatures: no rule (a)");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.chain_rejected, 1, "rejection counted");
	teardown(&fx);

	setup(&fx, 4, 1, anchors);
	ASSERT_EQ(observe(&fx, 2, &q, T0, HM_DNS_OBS_ANSWER, 0, 300, canon, clen, ch, chlen),
		  HM_DNS_R_DECIDED, "one observation with a valid chain suffices");
	ASSERT_EQ(fx.last.rule, HM_DNS_RULE_DNSSEC, "rule (a)");
	/* The daemon reads the decision in the opened hook: its own lookup
	 * would then be an audit (docs/dns.md, "Audit lookups"). */
	ASSERT_EQ(fx.opened, 1, "the lookup opened");
	ASSERT_TRUE(fx.opened_decided, "and the hook saw it decided");
	teardown(&fx);

	/* Without anchors rule (a) is off. */
	setup(&fx, 4, 1, NULL);
	ASSERT_EQ(observe(&fx, 2, &q, T0, HM_DNS_OBS_ANSWER, 0, 300, canon, clen, ch, chlen),
		  HM_DNS_R_PENDING, "no anchors: needs f+1");
	teardown(&fx);

	hm_dns_anchors_free(anchors);
	free(ds_text);
	free(canon);
	free(ch);
	ldns_rr_free(ds);
	ldns_rr_list_deep_free(set);
	ldns_rr_list_deep_free(chain);
	ldns_rr_list_deep_free(ans);
	test_zone_free(&z);
}

/* ---- determinism ---------------------------------------------------------------- */

static void feed(struct fixture *fx)
{
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_q q2 = qof("mail.example.test.", LDNS_RR_TYPE_A);

	answer(fx, 1, &q, T0, poison_rrs, 100);
	answer(fx, 0, &q, T0, honest_rrs, 100);
	answer(fx, 2, &q, T0, honest_rrs, 100);
	answer(fx, 3, &q, T0 + 1, honest_rrs, 100);
	observe(fx, 1, &q2, T0 + 2, HM_DNS_OBS_FAILED, 22, 0, NULL, 0, NULL, 0);
}

/* Prefetch: an observation in the last tenth of a cached answer's TTL opens
 * a fresh lookup while the entry is still served; its decision replaces
 * the entry with a later expiry.  What breaks a naive version: opening on
 * any observation (a late one for the old decision, one before the
 * window), a second prefetch per entry, a failed prefetch replacing a
 * good answer with SERVFAIL, and prefetching when it is off. */
static int prefetch_failed_hooks;
static void on_prefetch_failed(void *arg, const struct hm_dns_q *q, uint16_t ede)
{
	(void)arg, (void)q, (void)ede;
	prefetch_failed_hooks++;
}

static void setup_prefetch(struct fixture *fx, bool on)
{
	struct hm_dns_service_config cfg = {
		.n = 4, .f = 1, .max_ttl = 300, .lookup_timeout_s = 30, .skew_s = 60,
		.wall_clock = fake_clock, .prefetch = on,
		.hooks = { .opened = on_opened, .decided = on_decided, .arg = fx,
			   .prefetch_failed = on_prefetch_failed },
	};

	memset(fx, 0, sizeof(*fx));
	if (hm_dns_service_new(&fx->svc, &cfg) < 0)
		abort();
	fx->s = fx->svc.state;
}

HM_TEST(prefetch_in_last_tenth_refreshes_expiry)
{
	struct fixture fx, copy;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_service_stats st;
	const struct hm_dns_entry *e;
	uint8_t d1[HM_DIGEST_LEN], d2[HM_DIGEST_LEN], *snap;
	size_t snap_len;

	setup_prefetch(&fx, true);
	answer(&fx, 0, &q, T0, honest_rrs, 100);
	ASSERT_EQ(answer(&fx, 1, &q, T0, honest_rrs, 100), HM_DNS_R_DECIDED, "decided");
	ASSERT_EQ(fx.last.expiry, T0 + 100, "expiry T0 + 100");
	/* Late, and before the window (the last 10 s): no prefetch. */
	ASSERT_EQ(answer(&fx, 2, &q, T0, honest_rrs, 100), HM_DNS_R_IGNORED, "late");
	ASSERT_FALSE(hm_dns_service_prefetch_due(fx.s, &q, T0 + 89), "not due before the window");
	ASSERT_EQ(answer(&fx, 3, &q, T0 + 89, honest_rrs, 100), HM_DNS_R_IGNORED,
		  "before the window: late");
	ASSERT_FALSE(hm_dns_service_open_t(fx.s, &q, &(int64_t){ 0 }), "nothing opened");
	/* In the window: a prefetch opens; the entry still answers. */
	ASSERT_TRUE(hm_dns_service_prefetch_due(fx.s, &q, T0 + 92), "due in the window");
	fx.opened = 0;
	ASSERT_EQ(answer(&fx, 2, &q, T0 + 92, honest_rrs, 100), HM_DNS_R_PENDING, "prefetch opened");
	ASSERT_EQ(fx.opened, 1, "the others are told to observe");
	ASSERT_EQ(fx.opened_t, T0 + 92, "at the prefetch's T");
	e = hm_dns_service_lookup(fx.s, &q);
	ASSERT_TRUE(e && e->expiry == T0 + 100, "the old entry is still served");
	/* A late observation of the old decision does not join the prefetch. */
	ASSERT_EQ(answer(&fx, 3, &q, T0, honest_rrs, 100), HM_DNS_R_IGNORED, "old T: late");
	/* Determinism: a snapshot mid-prefetch restores to the same state. */
	ASSERT_EQ(fx.svc.ops->snapshot(fx.svc.state, &snap, &snap_len), 0, "snapshot");
	setup_prefetch(&copy, true);
	ASSERT_EQ(copy.svc.ops->restore(copy.svc.state, snap, snap_len), 0, "restore");
	fx.svc.ops->digest(fx.svc.state, d1);
	copy.svc.ops->digest(copy.svc.state, d2);
	ASSERT_MEMEQ(d1, d2, HM_DIGEST_LEN, "same digest after restore");
	free(snap);
	teardown(&copy);
	/* The second matching fresh observation decides: full TTL again. */
	ASSERT_EQ(answer(&fx, 0, &q, T0 + 92, honest_rrs, 100), HM_DNS_R_DECIDED, "refreshed");
	e = hm_dns_service_lookup(fx.s, &q);
	ASSERT_TRUE(e != NULL, "cached");
	ASSERT_EQ(e->t, T0 + 92, "new T");
	ASSERT_EQ(e->expiry, T0 + 192, "expiry later than the old T0 + 100");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.prefetch_opened, 1, "one opened");
	ASSERT_EQ(st.prefetch_refreshed, 1, "one refreshed");
	ASSERT_EQ(st.decided_observed, 2, "two decisions");
	/* An op past the old expiry does not evict the refreshed entry. */
	answer(&fx, 1, &q, T0 + 150, honest_rrs, 100);
	ASSERT_TRUE(hm_dns_service_lookup(fx.s, &q) != NULL, "alive past the old expiry");
	teardown(&fx);
}

HM_TEST(prefetch_failure_keeps_the_entry_once_per_entry)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_service_stats st;
	const struct hm_dns_entry *e;

	setup_prefetch(&fx, true);
	prefetch_failed_hooks = 0;
	answer(&fx, 0, &q, T0, honest_rrs, 100);
	answer(&fx, 1, &q, T0, honest_rrs, 100);
	observe(&fx, 2, &q, T0 + 95, HM_DNS_OBS_FAILED, 22, 0, NULL, 0, NULL, 0);
	ASSERT_EQ(observe(&fx, 3, &q, T0 + 95, HM_DNS_OBS_FAILED, 22, 0, NULL, 0, NULL, 0),
		  HM_DNS_R_DECIDED, "the prefetch decided (as a failure)");
	e = hm_dns_service_lookup(fx.s, &q);
	ASSERT_TRUE(e && e->rule == HM_DNS_RULE_OBSERVED && e->expiry == T0 + 100,
		    "the good answer stays until its expiry");
	ASSERT_EQ(prefetch_failed_hooks, 1, "the failure reported once");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.prefetch_failed, 1, "counted");
	ASSERT_EQ(st.decided_fail, 0, "no SERVFAIL entry");
	/* Once per entry: no second prefetch in the same window. */
	ASSERT_FALSE(hm_dns_service_prefetch_due(fx.s, &q, T0 + 97), "not due again");
	ASSERT_EQ(answer(&fx, 0, &q, T0 + 97, honest_rrs, 100), HM_DNS_R_IGNORED, "late");
	hm_dns_service_stats(fx.s, &st);
	ASSERT_EQ(st.prefetch_opened, 1, "still one");
	/* Short TTLs and failures are never prefetched. */
	answer(&fx, 0, &q, T0 + 100, honest_rrs, 5);
	answer(&fx, 1, &q, T0 + 100, honest_rrs, 5);
	ASSERT_FALSE(hm_dns_service_prefetch_due(fx.s, &q, T0 + 104), "TTL 5: no prefetch");
	teardown(&fx);
	/* Off: the window is an ordinary late observation. */
	setup_prefetch(&fx, false);
	answer(&fx, 0, &q, T0, honest_rrs, 100);
	answer(&fx, 1, &q, T0, honest_rrs, 100);
	ASSERT_EQ(answer(&fx, 2, &q, T0 + 95, honest_rrs, 100), HM_DNS_R_IGNORED, "off: late");
	ASSERT_EQ(hm_dns_service_lookup(fx.s, &q)->expiry, T0 + 100, "unchanged");
	teardown(&fx);
}

HM_TEST(determinism_snapshot_restore)
{
	struct fixture a, b, c;
	uint8_t da[HM_DIGEST_LEN], db[HM_DIGEST_LEN], dc[HM_DIGEST_LEN], de[HM_DIGEST_LEN];
	uint8_t *sa, *sb, *sc;
	size_t la, lb, lc;

	setup(&a, 4, 1, NULL);
	setup(&b, 4, 1, NULL);
	setup(&c, 4, 1, NULL);
	c.svc.ops->digest(c.svc.state, de);
	feed(&a);
	feed(&b);
	a.svc.ops->digest(a.svc.state, da);
	b.svc.ops->digest(b.svc.state, db);
	ASSERT_MEMEQ(da, db, HM_DIGEST_LEN, "same ops, same digest");
	ASSERT_TRUE(memcmp(da, de, HM_DIGEST_LEN) != 0, "the digest depends on the state");
	ASSERT_OK(a.svc.ops->snapshot(a.svc.state, &sa, &la), "snapshot a");
	ASSERT_OK(b.svc.ops->snapshot(b.svc.state, &sb, &lb), "snapshot b");
	ASSERT_EQ(la, lb, "same length");
	ASSERT_MEMEQ(sa, sb, la, "same bytes");
	ASSERT_OK(c.svc.ops->restore(c.svc.state, sa, la), "restore");
	c.svc.ops->digest(c.svc.state, dc);
	ASSERT_MEMEQ(dc, da, HM_DIGEST_LEN, "restored digest");
	ASSERT_OK(c.svc.ops->snapshot(c.svc.state, &sc, &lc), "snapshot c");
	ASSERT_EQ(lc, la, "round trip length");
	ASSERT_MEMEQ(sc, sa, la, "round trip bytes");
	/* Continue both after the restore: still equal. */
	{
		struct hm_dns_q q2 = qof("mail.example.test.", LDNS_RR_TYPE_A);

		observe(&a, 3, &q2, T0 + 2, HM_DNS_OBS_BOGUS, 6, 0, NULL, 0, NULL, 0);
		observe(&c, 3, &q2, T0 + 2, HM_DNS_OBS_BOGUS, 6, 0, NULL, 0, NULL, 0);
		ASSERT_EQ(c.decided, 1, "the restored instance decides the open lookup");
	}
	/* Every truncation of a snapshot is refused. */
	for (size_t cut = 0; cut < la; cut++)
		ASSERT_ERR(c.svc.ops->restore(c.svc.state, sa, cut), "truncated snapshot");
	free(sa);
	free(sb);
	free(sc);
	teardown(&a);
	teardown(&b);
	teardown(&c);
}

__attribute__((constructor(200))) static void init_crypto(void)
{
	if (hm_crypto_init() < 0)
		abort();
}



/* ---- OBSERVE_MANY: several observations of one replica in one op -------- */

static const char *const mail_rrs[] = { "mail.example.test. 300 IN A 198.18.1.2", NULL };

/* The encoded OBSERVEs of replica-independent answers: www at T0 (honest
 * or poisoned) and mail at T0. */
struct two_obs {
	uint8_t op[2][4096];
	size_t len[2];
};

static void two_obs_make(struct two_obs *t, const char *const *www_rrs, int64_t t_www)
{
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_q q2 = qof("mail.example.test.", LDNS_RR_TYPE_A);
	size_t l1, l2;
	uint8_t *c1 = canon_of("www.example.test.", LDNS_RR_TYPE_A, 0, www_rrs, NULL, false, &l1);
	uint8_t *c2 = canon_of("mail.example.test.", LDNS_RR_TYPE_A, 0, mail_rrs, NULL, false, &l2);

	t->len[0] = hm_dns_observe_encode(&q, t_www, HM_DNS_OBS_ANSWER, 0, 100, c1, l1, NULL, 0,
					  t->op[0], sizeof(t->op[0]));
	t->len[1] = hm_dns_observe_encode(&q2, T0, HM_DNS_OBS_ANSWER, 0, 100, c2, l2, NULL, 0,
					  t->op[1], sizeof(t->op[1]));
	free(c1);
	free(c2);
	if (!t->len[0] || !t->len[1])
		abort();
}

static size_t two_obs_many(const struct two_obs *t, uint8_t *out, size_t cap)
{
	const uint8_t *ops[2] = { t->op[0], t->op[1] };

	return hm_dns_observe_many_encode(ops, t->len, 2, out, cap);
}

HM_TEST(observe_many_decides_each_as_alone)
{
	struct fixture many, one;
	struct two_obs honest, poisoned;
	static uint8_t op[16384];
	uint8_t dm[HM_DIGEST_LEN], d1[HM_DIGEST_LEN];
	size_t n;

	fake_now = T0;
	two_obs_make(&honest, honest_rrs, T0);
	two_obs_make(&poisoned, poison_rrs, T0);
	setup(&many, 4, 1, NULL);
	setup(&one, 4, 1, NULL);
	/* Replica 1 poisoned, 0 and 2 honest: www decided by 0 and 2 (f+1),
	 * mail by 1 and 0; 1 counted as differing for www. */
	n = two_obs_many(&poisoned, op, sizeof(op));
	ASSERT_EQ(hm_dns_observe_many_len(poisoned.len[0] + poisoned.len[1], 2), n, "length");
	ASSERT_EQ(run_op(&many, HM_REPLICA_CLIENT_BASE + 1, op, n), HM_DNS_R_MANY, "a MANY result");
	ASSERT_EQ(many.out_len, 5u, "code, count and one code each");
	ASSERT_EQ(many.out[3], HM_DNS_R_PENDING, "www pending");
	ASSERT_EQ(many.out[4], HM_DNS_R_PENDING, "mail pending");
	n = two_obs_many(&honest, op, sizeof(op));
	run_op(&many, HM_REPLICA_CLIENT_BASE + 0, op, n);
	ASSERT_EQ(many.out[3], HM_DNS_R_PENDING, "www: one honest, one poisoned");
	ASSERT_EQ(many.out[4], HM_DNS_R_DECIDED, "mail: f+1 equal");
	run_op(&many, HM_REPLICA_CLIENT_BASE + 2, op, n);
	ASSERT_EQ(many.out[3], HM_DNS_R_DECIDED, "www: f+1 honest");
	ASSERT_EQ(many.out[4], HM_DNS_R_IGNORED, "mail: already decided (late)");
	ASSERT_EQ(many.decided, 2, "two decisions");
	/* The same observations one op each: the same state, byte for byte. */
	{
		const struct { uint32_t replica; const struct two_obs *t; } order[] = {
			{ 1, &poisoned }, { 0, &honest }, { 2, &honest },
		};

		for (unsigned i = 0; i < 3; i++)
			for (int k = 0; k < 2; k++)
				run_op(&one, HM_REPLICA_CLIENT_BASE + order[i].replica,
				       order[i].t->op[k], order[i].t->len[k]);
	}
	many.svc.ops->digest(many.svc.state, dm);
	one.svc.ops->digest(one.svc.state, d1);
	ASSERT_MEMEQ(dm, d1, HM_DIGEST_LEN, "MANY executes exactly as its ops one by one");
	teardown(&many);
	teardown(&one);
}

/* The daemon takes its own request as done when its replica executes it
 * (docs/dns.md, "Where a miss's time goes"): the executed hook comes once
 * per OBSERVE or OBSERVE_MANY request, with the request's client and
 * timestamp, after the decision it caused; CERTIFY (anyone's query) and
 * unknown ops do not raise it. */
HM_TEST(executed_hook_once_per_observe_request)
{
	struct fixture fx;
	struct two_obs honest;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	static uint8_t op[16384];
	uint8_t bad = 0x2f;
	size_t n;

	fake_now = T0;
	setup(&fx, 4, 1, NULL);
	two_obs_make(&honest, honest_rrs, T0);
	ASSERT_EQ(answer(&fx, 1, &q, T0, honest_rrs, 300), HM_DNS_R_PENDING, "pending");
	ASSERT_EQ(fx.executed, 1, "one OBSERVE, one call");
	ASSERT_EQ(fx.exec_client, HM_REPLICA_CLIENT_BASE + 1, "its client");
	ASSERT_EQ(fx.exec_ts, next_ts - 1, "its timestamp");
	ASSERT_EQ(answer(&fx, 2, &q, T0, honest_rrs, 300), HM_DNS_R_DECIDED, "decided");
	ASSERT_EQ(fx.executed, 2, "second call");
	ASSERT_EQ(fx.decided_at_executed, 1, "after the decision it caused");
	n = two_obs_many(&honest, op, sizeof(op));
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE + 3, op, n), HM_DNS_R_MANY, "a MANY");
	ASSERT_EQ(fx.executed, 3, "one call for the whole MANY");
	ASSERT_EQ(fx.exec_client, HM_REPLICA_CLIENT_BASE + 3, "the MANY's client");
	n = hm_dns_certify_encode(&q, op, sizeof(op));
	run_op(&fx, 100, op, n);
	run_op(&fx, HM_REPLICA_CLIENT_BASE + 1, &bad, 1);
	ASSERT_EQ(fx.executed, 3, "not for CERTIFY nor an unknown op");
	teardown(&fx);
}

HM_TEST(observe_many_admitted_all_or_nothing)
{
	struct fixture fx;
	struct two_obs ok, late;
	static uint8_t op[16384], nested[16384];
	struct hm_exec_ctx ours = { .client = HM_REPLICA_CLIENT_BASE + 1 };
	struct hm_exec_ctx other = { .client = 100 };
	const uint8_t *inner[1] = { op };
	size_t n, nn, one_len;

	fake_now = T0;
	setup(&fx, 4, 1, NULL);
	two_obs_make(&ok, honest_rrs, T0);
	two_obs_make(&late, honest_rrs, T0 - 61);
	n = two_obs_many(&ok, op, sizeof(op));
	ASSERT_TRUE(fx.svc.ops->check(fx.svc.state, &ours, op, n), "both within the skew");
	ASSERT_FALSE(fx.svc.ops->check(fx.svc.state, &other, op, n), "not a replica's client");
	op[n] = 0;
	ASSERT_FALSE(fx.svc.ops->check(fx.svc.state, &ours, op, n + 1), "a trailing byte");
	ASSERT_FALSE(fx.svc.ops->check(fx.svc.state, &ours, op, n - 1), "cut short");
	n = two_obs_many(&late, op, sizeof(op));
	ASSERT_FALSE(fx.svc.ops->check(fx.svc.state, &ours, op, n), "one outside the skew");
	/* A MANY inside a MANY, and a count of 0 or beyond the limit. */
	n = two_obs_many(&ok, op, sizeof(op));
	nn = hm_dns_observe_many_encode(inner, &n, 1, nested, sizeof(nested));
	ASSERT_TRUE(nn > 0, "encoded");
	ASSERT_FALSE(fx.svc.ops->check(fx.svc.state, &ours, nested, nn), "nested MANY");
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE + 1, nested, nn), HM_DNS_R_MANY, "executes");
	ASSERT_EQ(fx.out[3], HM_DNS_R_MALFORMED, "the nested one is malformed");
	ASSERT_EQ(hm_dns_observe_many_encode(inner, &n, 0, nested, sizeof(nested)), 0u, "count 0");
	one_len = ok.len[0];
	{
		const uint8_t *many_ops[HM_DNS_OBSERVE_MANY_MAX + 1];
		size_t lens[HM_DNS_OBSERVE_MANY_MAX + 1];

		for (int i = 0; i <= HM_DNS_OBSERVE_MANY_MAX; i++)
			many_ops[i] = ok.op[0], lens[i] = one_len;
		ASSERT_EQ(hm_dns_observe_many_encode(many_ops, lens, HM_DNS_OBSERVE_MANY_MAX + 1, op,
						     sizeof(op)), 0u, "above the limit");
	}
	op[0] = HM_DNS_OP_OBSERVE_MANY, op[1] = 0, op[2] = 0;
	ASSERT_FALSE(fx.svc.ops->check(fx.svc.state, &ours, op, 3), "count 0 refused");
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE + 1, op, 3), HM_DNS_R_MALFORMED, "count 0");
	op[2] = 3; /* three announced, none there */
	ASSERT_EQ(run_op(&fx, HM_REPLICA_CLIENT_BASE + 1, op, 3), HM_DNS_R_MANY, "executes");
	ASSERT_EQ(fx.out[3] == HM_DNS_R_MALFORMED && fx.out[5] == HM_DNS_R_MALFORMED, 1,
		  "each missing one malformed");
	teardown(&fx);
}
