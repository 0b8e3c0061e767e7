/* SPDX-License-Identifier: MIT */
/*
 * The fast path's rule for one vote slot (docs/protocol.md, "The fast
 * path"), as a model both counters are checked against: the socket
 * counter (selftests/core/test_quorum.c) and the XDP program
 * (selftests/dataplane/test_xdp_quorum.c).  Each case also states its event
 * counts by hand, so a model sharing a bug with hm_vote_slot_quorum still
 * fails.
 */
#ifndef HM_TEST_FAST_MODEL_H
#define HM_TEST_FAST_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "hm_maps.h"

/* Every replica but the view's primary: a fast event's voters. */
static inline hm_voters_t backups_of(uint32_t n, uint64_t view)
{
	hm_voters_t all = n >= 32 ? ~(hm_voters_t)0 : (((hm_voters_t)1 << n) - 1);

	return all & ~((hm_voters_t)1 << (view % n));
}

struct fast_model {
	uint32_t n, thr;
	bool expected, quorum_sent;
	int flag; /* 0 none, 1 wanted, 2 raised */
	hm_voters_t matched;
	hm_voters_t raised; /* the voters of the last event raised */
};

static inline uint32_t fm_raise(struct fast_model *m)
{
	uint32_t got = (uint32_t)__builtin_popcount(m->matched);
	bool fast = m->flag == 1 && got >= m->n - 1;

	if (!m->expected || (m->quorum_sent && !fast) || got < m->thr)
		return 0;
	m->quorum_sent = true;
	if (fast)
		m->flag = 2;
	m->raised = m->matched;
	return fast ? HM_EV_FAST : HM_EV_QUORUM;
}

static inline uint32_t fm_expect(struct fast_model *m, enum hm_vote_phase ph, bool fast)
{
	if (m->expected)
		return 0;
	m->expected = true;
	m->flag = fast && ph == HM_PHASE_PREPARE;
	return fm_raise(m);
}

static inline uint32_t fm_vote(struct fast_model *m, uint32_t voter, bool good)
{
	if (good)
		m->matched |= (hm_voters_t)1 << voter;
	return fm_raise(m);
}

#endif /* HM_TEST_FAST_MODEL_H */
