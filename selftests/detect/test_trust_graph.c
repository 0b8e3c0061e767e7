// SPDX-License-Identifier: MIT
/* The trust graph (user/detect/trust_graph.c): start, agreement, contradiction,
 * decay with reputation's half-life, symmetry, bounds, the fast-path query. */
#include <math.h>

#include "detect/trust_graph.h"
#include "detect/reputation.h"
#include "hm_test.h"

static bool near(double a, double b)
{
	return fabs(a - b) < 1e-9;
}

HM_TEST(starts_neutral)
{
	struct hm_trust_graph g;

	hm_trust_init(&g, 4);
	ASSERT_TRUE(near(hm_trust_score(&g, 0, 3), HM_TRUST_NEUTRAL), "nothing seen: neutral");
	ASSERT_TRUE(near(hm_trust_score(&g, 2, 2), 1), "a replica with itself");
	ASSERT_TRUE(near(hm_trust_score(&g, 0, 4), 0), "outside the graph");
	ASSERT_TRUE(hm_trust_all_above(&g, 0.5), "all at 0.5");
	ASSERT_FALSE(hm_trust_all_above(&g, 0.51), "none above 0.5 yet");
}

HM_TEST(agreement_and_contradiction)
{
	struct hm_trust_graph g;

	hm_trust_init(&g, 4);
	/* a second of agreement is worth what a second of consensus is to reputation */
	hm_trust_observe(&g, 0, 1, 500, 0, 1.0);
	ASSERT_TRUE(near(hm_trust_score(&g, 0, 1), 0.5 + HM_REP_CONSENSUS_OK), "+0.01 per second");
	ASSERT_TRUE(near(hm_trust_score(&g, 1, 0), hm_trust_score(&g, 0, 1)), "symmetric");
	hm_trust_observe(&g, 0, 1, 500, 0, 0.25);
	ASSERT_TRUE(near(hm_trust_score(&g, 0, 1), 0.5 + 1.25 * HM_REP_CONSENSUS_OK), "per second");
	hm_trust_observe(&g, 0, 1, 500, 0, 30);
	ASSERT_TRUE(near(hm_trust_score(&g, 0, 1), 0.5 + 2.25 * HM_REP_CONSENSUS_OK),
		    "a long gap counts one second");
	/* a contradiction outweighs the agreement of the same step */
	hm_trust_observe(&g, 2, 3, 500, 1, 1.0);
	ASSERT_TRUE(near(hm_trust_score(&g, 2, 3), 0.5 + HM_REP_CONTRADICTION), "-0.15");
	ASSERT_EQ(g.pair[3][2].agreements, 500, "counted");
	ASSERT_EQ(g.pair[3][2].disagreements, 1, "counted");
	hm_trust_observe(&g, 2, 3, 0, 100, 1.0);
	ASSERT_TRUE(near(hm_trust_score(&g, 2, 3), 0), "clamped at 0");
	for (int k = 0; k < 200; k++)
		hm_trust_observe(&g, 0, 1, 1, 0, 1.0);
	ASSERT_TRUE(near(hm_trust_score(&g, 0, 1), 1), "clamped at 1");
	ASSERT_TRUE(near(hm_trust_min_of(&g, 3), 0), "3's worst pair");
	ASSERT_FALSE(hm_trust_all_above(&g, 0.4), "one bad pair is enough");
	/* nothing observed: no change, and bad ids are ignored */
	hm_trust_observe(&g, 1, 2, 0, 0, 1.0);
	ASSERT_TRUE(near(hm_trust_score(&g, 1, 2), 0.5), "idle pair unchanged");
	hm_trust_observe(&g, 1, 1, 5, 5, 1.0);
	hm_trust_observe(&g, 1, 9, 5, 5, 1.0);
	ASSERT_TRUE(near(hm_trust_score(&g, 1, 1), 1), "self ignored");
}

HM_TEST(decay_is_reputations)
{
	struct hm_trust_graph g;

	ASSERT_TRUE(near(HM_TRUST_HALF_LIFE_S, HM_REP_DECAY_HALF_LIFE_S), "same half-life");
	ASSERT_TRUE(near(HM_TRUST_NEUTRAL, HM_REP_NEUTRAL), "same neutral");
	hm_trust_init(&g, 4);
	hm_trust_observe(&g, 0, 1, 0, 2, 1.0);      /* 0.2 */
	for (int k = 0; k < 50; k++)
		hm_trust_observe(&g, 2, 3, 1, 0, 1.0); /* 1.0 */
	hm_trust_decay(&g, HM_TRUST_HALF_LIFE_S);
	ASSERT_TRUE(near(hm_trust_score(&g, 0, 1), 0.35), "half-way back up to neutral");
	ASSERT_TRUE(near(hm_trust_score(&g, 2, 3), 0.75), "half-way down to neutral");
	ASSERT_TRUE(near(hm_trust_score(&g, 1, 0), 0.35), "symmetric after decay");
	ASSERT_TRUE(near(hm_trust_score(&g, 0, 0), 1), "diagonal untouched");
	hm_trust_decay(&g, 0);
	ASSERT_TRUE(near(hm_trust_score(&g, 2, 3), 0.75), "no time, no decay");
	hm_trust_decay(&g, 100 * HM_TRUST_HALF_LIFE_S);
	ASSERT_TRUE(fabs(hm_trust_score(&g, 2, 3) - 0.5) < 1e-6, "everything forgotten");
}

HM_TEST(all_pairs_above)
{
	struct hm_trust_graph g;

	hm_trust_init(&g, 7);
	for (int k = 0; k < 50; k++)
		for (uint32_t a = 0; a < 7; a++)
			for (uint32_t b = a + 1; b < 7; b++)
				hm_trust_observe(&g, a, b, 1, 0, 1.0);
	ASSERT_TRUE(hm_trust_all_above(&g, 0.9), "a cluster that always agreed");
	hm_trust_observe(&g, 5, 6, 0, 1, 1.0);
	ASSERT_FALSE(hm_trust_all_above(&g, 0.9), "one contradiction: not eligible");
	ASSERT_TRUE(hm_trust_all_above(&g, 0.8), "but above 0.8");
	hm_trust_init(&g, 1);
	ASSERT_TRUE(hm_trust_all_above(&g, 1.0), "one replica: no pairs");
}
