// SPDX-License-Identifier: MIT
/* Reputation rules, NodeStatistics and the anomaly detector (user/detect/reputation.c). */
#include <math.h>

#include "hm_test.h"
#include "detect/reputation.h"

#define SEC 1000000ull
#define NEAR(a, b) (fabs((a) - (b)) < 1e-9)

/* One second of time decay towards neutral. */
static double decay1(double x)
{
	return HM_REP_NEUTRAL + (x - HM_REP_NEUTRAL) * exp2(-1 / HM_REP_DECAY_HALF_LIFE_S);
}

/* A cluster of n where every peer votes in `share` of the quorums and is
 * heard from every step, except what the test changes. */
struct sim {
	struct hm_reputation r;
	struct hm_peer_sample s[HM_MAX_REPLICAS];
	uint64_t quorums, now;
};

static void sim_init(struct sim *m, uint32_t n, uint32_t self)
{
	memset(m, 0, sizeof(*m));
	hm_reputation_init(&m->r, n, self);
	m->now = 1000 * SEC;
}

/* One second of traffic: 100 quorums; each peer in `in_q[i]` of them and
 * last seen `silent_ms[i]` ago. */
static uint16_t sim_step(struct sim *m, const unsigned *in_q, const unsigned *silent_ms)
{
	m->now += SEC;
	m->quorums += 100;
	for (uint32_t i = 0; i < m->r.n; i++) {
		m->s[i].in_quorum += in_q[i];
		m->s[i].messages += in_q[i] ? 2 * in_q[i] : 0;
		m->s[i].last_seen_us = m->now - (uint64_t)silent_ms[i] * 1000;
	}
	return hm_reputation_judge(&m->r, m->s, m->quorums, m->now);
}

HM_TEST(rules_and_clamp)
{
	/* each of the seed's deltas, alone */
	ASSERT_TRUE(NEAR(hm_reputation_apply(0.5, 1, 0, 0, 0, 0), 0.51), "consensus +0.01");
	ASSERT_TRUE(NEAR(hm_reputation_apply(0.5, 0, 1, 0, 0, 0), 0.40), "invalid sig -0.1");
	ASSERT_TRUE(NEAR(hm_reputation_apply(0.5, 0, 0, 1, 0, 0), 0.45), "timing -0.05");
	ASSERT_TRUE(NEAR(hm_reputation_apply(0.5, 0, 0, 0, 1, 0), 0.35), "contradiction -0.15");
	ASSERT_TRUE(NEAR(hm_reputation_apply(0.5, 0, 0, 0, 0, 1), 0.48), "partition -0.02");
	ASSERT_TRUE(NEAR(hm_reputation_apply(0.995, 3, 0, 0, 0, 0), 1.0), "clamped at 1");
	ASSERT_TRUE(NEAR(hm_reputation_apply(0.2, 0, 0, 0, 4, 0), 0.0), "clamped at 0");
}

HM_TEST(median_mad_z)
{
	double v[] = { 5, 1, 3, 100 }, w[] = { 2, 2, 2 };

	ASSERT_TRUE(NEAR(hm_median(v, 4), 4), "even count: mean of the middle two");
	ASSERT_TRUE(NEAR(hm_median(v, 3), 3), "odd count");
	ASSERT_TRUE(NEAR(hm_median(w, 3), 2), "all equal");
	ASSERT_TRUE(NEAR(hm_robust_z(4, 2, 0.6745), 2), "z = 0.6745 (x - med) / MAD");
	ASSERT_TRUE(hm_robust_z(3, 2, 0) > 1e6, "MAD 0 does not divide by zero");
}

HM_TEST(anomalies_need_z_and_floor)
{
	double lat[] = { 10, 12, 2000, 11 }, tight[] = { 10, 10, 10, 40 }, rates[] = { 0.7, 0.65, 0.02, -1 };
	double two_of_four[] = { 10, 3000, 3000, 10 };

	ASSERT_EQ(hm_anomalies(lat, 4, +1, 250), 1 << 2, "a 2 s silence stands out");
	ASSERT_EQ(hm_anomalies(lat, 4, -1, 250), 0, "nobody is anomalously fast");
	ASSERT_EQ(hm_anomalies(tight, 4, +1, 250), 0, "30 ms off a MAD-0 group: under the floor");
	ASSERT_EQ(hm_anomalies(tight, 4, +1, 0), 1 << 3, "without the floor it would flag");
	ASSERT_EQ(hm_anomalies(rates, 4, -1, 0.25), 1 << 2, "low participation; -1 is skipped");
	ASSERT_EQ(hm_anomalies(rates, 2, -1, 0.25), 0, "fewer than 3 values: no group");
	ASSERT_EQ(hm_anomalies(two_of_four, 4, +1, 250), 0, "half the group is no outlier");
}

HM_TEST(honest_group_keeps_reputation)
{
	struct sim m;
	unsigned q[4] = { 100, 70, 65, 68 }, sil[4] = { 0, 5, 8, 3 };

	sim_init(&m, 4, 0);
	for (int t = 0; t < 60; t++)
		ASSERT_EQ(sim_step(&m, q, sil), 0, "nobody judged Byzantine");
	for (uint32_t i = 1; i < 4; i++) {
		ASSERT_TRUE(m.r.peer[i].reputation > 0.99, "honest peers stay near 1");
		ASSERT_EQ(m.r.peer[i].indicators, 0, "no indicator");
		ASSERT_TRUE(NEAR(m.r.peer[i].uptime, 1), "heard from every step");
		ASSERT_TRUE(m.r.peer[i].participation > 0.6, "participation tracked");
	}
	ASSERT_TRUE(NEAR(m.r.peer[0].reputation, HM_REP_INITIAL), "self is not judged");
}

HM_TEST(slow_peer_loses_reputation)
{
	struct sim m;
	unsigned q[4] = { 100, 70, 65, 2 }, sil[4] = { 0, 5, 8, 1500 };
	double before;

	sim_init(&m, 4, 0);
	sim_step(&m, (unsigned[]){ 100, 70, 65, 68 }, (unsigned[]){ 0, 5, 8, 3 });
	before = m.r.peer[3].reputation;
	for (int t = 0; t < 10; t++)
		sim_step(&m, q, sil);
	ASSERT_TRUE(m.r.peer[3].reputation < before - 0.3, "ten slow seconds cost > 0.3");
	ASSERT_TRUE(m.r.peer[3].indicators & HM_IND_TIMING, "latency anomaly");
	ASSERT_TRUE(m.r.peer[3].indicators & HM_IND_PARTICIPATION, "participation anomaly");
	ASSERT_TRUE(m.r.peer[3].latency_ms > 1000, "latency EWMA follows the silence");
	ASSERT_TRUE(m.r.peer[3].historical > m.r.peer[3].reputation,
		    "the long-term average moves slower");
	ASSERT_TRUE(m.r.peer[1].reputation > 0.99, "the others are unaffected");
	ASSERT_TRUE(m.r.peer[3].byzantine, "two indicators: the seed's rule judges it");
}

HM_TEST(equivocation_and_bad_signatures)
{
	struct sim m;
	unsigned q[4] = { 100, 70, 65, 68 }, sil[4] = { 0, 5, 8, 3 };
	uint16_t byz;
	double before;

	sim_init(&m, 4, 1);
	sim_step(&m, q, sil);
	m.s[2].contradictions += 1;
	byz = sim_step(&m, q, sil);
	ASSERT_TRUE(NEAR(m.r.peer[2].reputation, decay1(1) - 0.15), "one contradiction costs 0.15");
	ASSERT_EQ(m.r.peer[2].indicators, HM_IND_CONTRADICTION, "one indicator");
	ASSERT_EQ(byz, 0, "one indicator is not enough");
	before = m.r.peer[2].reputation;
	m.s[2].contradictions += 1;
	m.s[2].invalid_signatures += 2;
	byz = sim_step(&m, q, sil);
	ASSERT_EQ(byz, 1 << 2, "contradiction + invalid signature: Byzantine");
	ASSERT_TRUE(NEAR(m.r.peer[2].reputation, decay1(before) - 0.15 - 0.2), "penalties add up");
	ASSERT_TRUE(m.r.peer[2].signature_success < 1, "signature success rate falls");
	/* the indicators are per step: the next clean step clears them */
	byz = sim_step(&m, q, sil);
	ASSERT_EQ(byz, 0, "clean step");
	ASSERT_EQ(m.r.peer[2].indicators, 0, "no indicator left");
}

HM_TEST(time_decay_and_partition)
{
	struct sim m;
	unsigned q[4] = { 100, 70, 65, 68 }, sil[4] = { 0, 5, 8, 3 };

	sim_init(&m, 4, 0);
	sim_step(&m, q, sil);
	m.s[1].partitions += 1;
	sim_step(&m, q, sil);
	ASSERT_TRUE(NEAR(m.r.peer[1].reputation, decay1(1) + 0.01 - 0.02),
		    "partition -0.02 (it still took part: +0.01)");
	ASSERT_EQ(m.r.peer[1].indicators, HM_IND_PARTITION, "partition indicator");
	/* a peer at 0 with nothing to report drifts back towards neutral */
	m.r.peer[2].reputation = 0;
	m.now += 299 * SEC; /* next step is 300 s later: one half-life */
	sim_step(&m, q, sil);
	ASSERT_TRUE(NEAR(m.r.peer[2].reputation, 0.25 + 0.01), "half-way back to 0.5 (+0.01)");
	sim_step(&m, (unsigned[]){ 100, 70, 0, 68 }, (unsigned[]){ 0, 5, 8, 3 });
	ASSERT_TRUE(m.r.peer[2].uptime < 1, "a step without messages lowers uptime");
	ASSERT_TRUE(m.r.peer[2].indicators & HM_IND_PARTICIPATION, "and shows as absent");
}

HM_TEST(counter_reset_and_accuracy)
{
	struct sim m;
	unsigned q[4] = { 100, 70, 65, 68 }, sil[4] = { 0, 5, 8, 3 };

	sim_init(&m, 4, 0);
	m.s[2].faults = 10;
	m.s[2].messages = 30;
	sim_step(&m, q, sil);
	ASSERT_TRUE(m.r.peer[2].response_accuracy < 1, "faults lower accuracy");
	sim_step(&m, q, sil);
	sim_step(&m, q, sil);
	/* a restarted peer's counters fall back: taken as starting over, not as a huge delta */
	m.s[3] = (struct hm_peer_sample){ 0 };
	ASSERT_EQ(sim_step(&m, q, sil), 0, "no verdict from a counter reset");
	ASSERT_TRUE(m.r.peer[3].reputation > 0.99, "and no penalty");
}

HM_TEST(deterministic)
{
	struct sim a, b;
	unsigned q[4] = { 100, 70, 65, 2 }, sil[4] = { 0, 5, 8, 1500 };

	sim_init(&a, 4, 0);
	sim_init(&b, 4, 0);
	for (int t = 0; t < 20; t++) {
		ASSERT_EQ(sim_step(&a, q, sil), sim_step(&b, q, sil), "same verdicts");
	}
	ASSERT_MEMEQ(&a.r, &b.r, sizeof(a.r), "same state from the same samples");
}
