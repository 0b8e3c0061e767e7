// SPDX-License-Identifier: MIT
/* Block policy (user/detect/policy.c): proof blocks, doubling cooldown, the 2f+1
 * floor, expiry, operator lift, the decision log. */
#include "hm_test.h"
#include "detect/policy.h"

#define SEC 1000000ull

HM_TEST(cooldown_doubles_and_caps)
{
	struct hm_policy p;

	hm_policy_init(&p, 4, 1, 0, 10 * SEC, 60 * SEC);
	ASSERT_EQ(hm_policy_cooldown(&p, 1), 10 * SEC, "first offence: base");
	ASSERT_EQ(hm_policy_cooldown(&p, 2), 20 * SEC, "second: doubled");
	ASSERT_EQ(hm_policy_cooldown(&p, 3), 40 * SEC, "third: doubled again");
	ASSERT_EQ(hm_policy_cooldown(&p, 4), 60 * SEC, "capped");
	ASSERT_EQ(hm_policy_cooldown(&p, 4000000000u), 60 * SEC, "no overflow, no long loop");
}

HM_TEST(block_expire_repeat)
{
	struct hm_policy p;
	const struct hm_decision *d;

	hm_policy_init(&p, 4, 1, 0, 10 * SEC, 3600 * SEC);
	d = hm_policy_offence(&p, 2, HM_OFFENCE_EQUIVOCATION, "COMMIT v0 s5: aa.. vs bb..", 100 * SEC);
	if (!ASSERT_TRUE(d != NULL, "decided"))
		return;
	ASSERT_EQ(d->kind, HM_DECIDE_BLOCK, "blocked");
	ASSERT_EQ(d->until_us, 110 * SEC, "for the base cooldown");
	ASSERT_STRCONTAINS(d->evidence, "COMMIT v0 s5", "evidence kept");
	ASSERT_EQ(hm_policy_blocked(&p), 1 << 2, "mask");
	ASSERT_EQ(hm_policy_expire(&p, 109 * SEC), 0, "not yet");
	ASSERT_EQ(hm_policy_expire(&p, 110 * SEC), 1, "cooldown over");
	ASSERT_EQ(hm_policy_blocked(&p), 0, "let back in");
	d = hm_policy_offence(&p, 2, HM_OFFENCE_BAD_SIGNATURE, "PREPARE sig", 200 * SEC);
	ASSERT_EQ(d->kind, HM_DECIDE_BLOCK, "blocked again");
	ASSERT_EQ(d->strikes, 2, "second strike");
	ASSERT_EQ(d->until_us, 220 * SEC, "twice as long");
	/* an offence counted while blocked (packets in flight) restarts it longer */
	d = hm_policy_offence(&p, 2, HM_OFFENCE_EQUIVOCATION, "late packet", 201 * SEC);
	ASSERT_EQ(d->kind, HM_DECIDE_EXTENDED, "extended");
	ASSERT_EQ(d->until_us, 241 * SEC, "third strike: 40 s from now");
	ASSERT_EQ(p.blocks, 2, "two blocks");
}

HM_TEST(never_self_or_out_of_range)
{
	struct hm_policy p;

	hm_policy_init(&p, 4, 1, 3, SEC, 10 * SEC);
	ASSERT_TRUE(hm_policy_offence(&p, 3, HM_OFFENCE_EQUIVOCATION, "", 0) == NULL, "not ourselves");
	ASSERT_TRUE(hm_policy_offence(&p, 4, HM_OFFENCE_EQUIVOCATION, "", 0) == NULL, "not id >= n");
	ASSERT_TRUE(hm_policy_offence(&p, 99, HM_OFFENCE_EQUIVOCATION, "", 0) == NULL, "nor 99");
	ASSERT_EQ(hm_policy_decisions(&p), 0, "nothing logged");
}

HM_TEST(floor_of_2f_plus_1)
{
	struct hm_policy p;
	const struct hm_decision *d;

	/* n = 4, f = 1: one block at most */
	hm_policy_init(&p, 4, 1, 0, 10 * SEC, 60 * SEC);
	ASSERT_EQ(hm_policy_offence(&p, 1, HM_OFFENCE_EQUIVOCATION, "a", 0)->kind, HM_DECIDE_BLOCK, "first");
	d = hm_policy_offence(&p, 2, HM_OFFENCE_EQUIVOCATION, "b", 0);
	ASSERT_EQ(d->kind, HM_DECIDE_REFUSED, "second would leave 2 < 3 unblocked");
	ASSERT_EQ(hm_policy_blocked(&p), 1 << 1, "only the first is blocked");
	ASSERT_EQ(p.refusals, 1, "refusal counted");
	/* n = 7, f = 2: two blocks at most, whatever the order */
	hm_policy_init(&p, 7, 2, 6, 10 * SEC, 60 * SEC);
	for (uint32_t i = 0; i < 6; i++)
		hm_policy_offence(&p, i, HM_OFFENCE_BAD_SIGNATURE, "x", i * SEC);
	ASSERT_EQ(__builtin_popcount(hm_policy_blocked(&p)), 2, "f blocked");
	ASSERT_EQ(hm_policy_blocked(&p), 0x3, "the first two");
	/* when one expires, room for a new one */
	hm_policy_expire(&p, 10 * SEC);
	ASSERT_EQ(hm_policy_blocked(&p), 0x2, "replica 0 expired at 10 s");
	ASSERT_EQ(hm_policy_offence(&p, 5, HM_OFFENCE_BAD_SIGNATURE, "y", 10 * SEC)->kind,
		  HM_DECIDE_BLOCK, "room again");
}

HM_TEST(lift_and_log)
{
	struct hm_policy p;
	const struct hm_decision *d;

	hm_policy_init(&p, 4, 1, 0, 10 * SEC, 60 * SEC);
	ASSERT_EQ(hm_policy_lift(&p, 2, "op", 0), -1, "nothing to lift");
	hm_policy_offence(&p, 2, HM_OFFENCE_PROOF, "proof from replica 1", 5 * SEC);
	ASSERT_EQ(hm_policy_lift(&p, 2, "hmctl", 6 * SEC), 0, "lifted");
	ASSERT_EQ(hm_policy_blocked(&p), 0, "unblocked");
	ASSERT_EQ(hm_policy_expire(&p, 100 * SEC), 0, "a lifted block does not expire again");
	ASSERT_EQ(hm_policy_decisions(&p), 2, "block and lift logged");
	d = hm_policy_decision(&p, 1);
	ASSERT_EQ(d->kind, HM_DECIDE_LIFTED, "in order");
	ASSERT_STRCONTAINS(d->evidence, "hmctl", "who lifted it");
	ASSERT_TRUE(hm_policy_decision(&p, 2) == NULL, "past the end");
	/* the log is a ring: ids keep counting, the oldest go */
	for (int i = 0; i < 2 * HM_POLICY_LOG; i++) {
		hm_policy_offence(&p, 1, HM_OFFENCE_EQUIVOCATION, "again", 10 * SEC);
		hm_policy_lift(&p, 1, "op", 10 * SEC);
	}
	ASSERT_EQ(hm_policy_decisions(&p), HM_POLICY_LOG, "ring full");
	ASSERT_EQ(hm_policy_decision(&p, HM_POLICY_LOG - 1)->id, 2 + 4 * HM_POLICY_LOG, "newest last");
	ASSERT_EQ(hm_policy_decision(&p, 0)->id, 2 + 4 * HM_POLICY_LOG - HM_POLICY_LOG + 1, "oldest first");
}
