// SPDX-License-Identifier: MIT
/* Peer states: a crashed peer is down, never Byzantine, and does not flap;
 * only a proof makes Byzantine; slow has hysteresis. */
#include "hm_test.h"

#include "detect/peer_state.h"

#define S 1000000ull           /* one second in microseconds */
#define DOWN_AFTER (8 * S)

/* Step a peer last heard at `seen` once per second from `from` to `to`;
 * returns the number of state changes. */
static int run(struct hm_peer_health *h, uint64_t seen, uint64_t from, uint64_t to, bool slow)
{
	struct hm_peer_facts f = { .last_seen_us = seen, .slow_sign = slow };
	int changes = 0;

	for (uint64_t t = from; t <= to; t += S)
		changes += hm_peer_health_step(h, &f, t, 0, DOWN_AFTER);
	return changes;
}

HM_TEST(crashed_peer_goes_down_once_and_stays)
{
	struct hm_peer_health h;

	hm_peer_health_init(&h, 0);
	ASSERT_EQ(run(&h, 10 * S, 10 * S, 10 * S, false), 0, "heard from: up");
	ASSERT_EQ(h.state, HM_PEER_UP, "up");
	/* it crashes at 10 s: slow signs (late, in no quorum) come with it */
	ASSERT_EQ(run(&h, 10 * S, 11 * S, 12 * S, true), 0, "two slow signs: not yet slow");
	ASSERT_EQ(run(&h, 10 * S, 13 * S, 18 * S, true), 1, "slow after three");
	ASSERT_EQ(h.state, HM_PEER_SLOW, "slow before the bound");
	ASSERT_EQ(run(&h, 10 * S, 19 * S, 19 * S, true), 1, "then down");
	ASSERT_EQ(h.state, HM_PEER_DOWN, "down after down_after of silence");
	ASSERT_STRCONTAINS(h.reason, "silent for", "says why");
	ASSERT_EQ(run(&h, 10 * S, 20 * S, 200 * S, true), 0, "no flapping while it stays dead");
	ASSERT_EQ(h.state, HM_PEER_DOWN, "still down, not Byzantine");
}

HM_TEST(restarted_peer_comes_back_up)
{
	struct hm_peer_health h;

	hm_peer_health_init(&h, 0);
	run(&h, 1 * S, 1 * S, 20 * S, false);
	ASSERT_EQ(h.state, HM_PEER_DOWN, "down");
	/* its statistics still carry the silence: a slow sign, yet up */
	ASSERT_EQ(run(&h, 21 * S, 21 * S, 21 * S, true), 1, "one change");
	ASSERT_EQ(h.state, HM_PEER_UP, "up at its first message");
	ASSERT_STRCONTAINS(h.reason, "heard from again", "says why");
}

HM_TEST(never_heard_from_is_down_after_the_bound)
{
	struct hm_peer_health h;
	struct hm_peer_facts f = { 0 };

	hm_peer_health_init(&h, 0);
	ASSERT_FALSE(hm_peer_health_step(&h, &f, 5 * S, 0, DOWN_AFTER), "too early to tell");
	ASSERT_TRUE(hm_peer_health_step(&h, &f, 9 * S, 0, DOWN_AFTER), "down");
	ASSERT_STRCONTAINS(h.reason, "never heard from", "says why");
}

HM_TEST(only_a_proof_makes_byzantine_and_it_stays)
{
	struct hm_peer_health h;
	struct hm_peer_facts f = { .last_seen_us = 1 * S, .proof = "equivocation" };

	hm_peer_health_init(&h, 0);
	ASSERT_TRUE(hm_peer_health_step(&h, &f, 1 * S, 0, DOWN_AFTER), "changed");
	ASSERT_EQ(h.state, HM_PEER_BYZANTINE, "proven");
	ASSERT_STRCONTAINS(h.reason, "equivocation", "names the proof");
	f.proof = NULL;
	ASSERT_FALSE(hm_peer_health_step(&h, &f, 100 * S, 0, DOWN_AFTER), "a proof does not expire");
	ASSERT_EQ(h.state, HM_PEER_BYZANTINE, "still Byzantine when it goes silent");
}

HM_TEST(slow_holds_for_calm_steps)
{
	struct hm_peer_health h;

	hm_peer_health_init(&h, 0);
	run(&h, 1 * S, 1 * S, 1 * S, true);
	ASSERT_EQ(h.state, HM_PEER_UP, "one slow step: still up");
	run(&h, 3 * S, 2 * S, 3 * S, true);
	ASSERT_EQ(h.state, HM_PEER_SLOW, "slow after three in a row");
	/* one calm step in between slow ones does not flap */
	ASSERT_EQ(run(&h, 4 * S, 4 * S, 4 * S, false), 0, "one calm step: still slow");
	ASSERT_EQ(run(&h, 5 * S, 5 * S, 5 * S, true), 0, "slow again: no change");
	ASSERT_EQ(run(&h, 7 * S, 6 * S, 7 * S, false), 0, "two calm steps: still slow");
	ASSERT_EQ(run(&h, 8 * S, 8 * S, 8 * S, false), 1, "the third: up");
	ASSERT_EQ(h.state, HM_PEER_UP, "up after enough calm steps");
}
