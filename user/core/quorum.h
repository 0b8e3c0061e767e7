/* SPDX-License-Identifier: MIT */
/*
 * The vote counter of the socket dataplane: PREPARE and COMMIT votes in the
 * slot layout of headers/hm_maps.h, the same one the XDP program keeps in a
 * BPF map, by the slot rules of headers/hm_vote_slot.h, the same ones the XDP
 * program runs.  It reports a quorum once per slot and catches equivocation.
 * hm_quorum_counter_new() wraps it as a struct hm_vote_counter
 * (core/vote_counter.h), the node's default counter.
 */
#ifndef HM_QUORUM_H
#define HM_QUORUM_H

#include <stdint.h>

#include "hm_maps.h"
#include "core/vote_counter.h"

struct hm_quorum {
	uint32_t n, f, window;
	struct hm_vote_slot *slots; /* window * HM_PHASE_MAX */
};

int hm_quorum_init(struct hm_quorum *q, uint32_t n, uint32_t f, uint32_t window);
void hm_quorum_free(struct hm_quorum *q);

/* Matching votes a slot needs: 2f PREPAREs (from backups; with the
 * PRE-PREPARE that makes 2f+1), 2f+1 COMMITs. */
uint32_t hm_quorum_threshold(const struct hm_quorum *q, enum hm_vote_phase phase);

/*
 * Record voter's vote.  Returns 1 and fills *ev when it completes a quorum
 * or is an equivocation, 0 when recorded without an event, and -1 with *why
 * when refused (a duplicate vote, a vote for a stale view or sequence, a
 * PREPARE from the view's primary).
 */
int hm_quorum_vote(struct hm_quorum *q, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		   uint32_t voter, const uint8_t digest[HM_DIGEST_LEN], const uint8_t sig[HM_SIG_LEN],
		   struct hm_vote_event *ev, enum hm_drop_reason *why);

/* Set the digest a slot's votes must match (the accepted PRE-PREPARE's).
 * Returns 1 and fills *ev when the votes already there make a quorum. */
int hm_quorum_expect(struct hm_quorum *q, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		     const uint8_t digest[HM_DIGEST_LEN], struct hm_vote_event *ev);
/* The same, and with `fast` a PREPARE slot also raises HM_EV_FAST (once)
 * when every backup's vote matches: the fast path's n-of-n. */
int hm_quorum_expect_fast(struct hm_quorum *q, enum hm_vote_phase phase, uint64_t view,
			  uint64_t seq, const uint8_t digest[HM_DIGEST_LEN], bool fast,
			  struct hm_vote_event *ev);

/* The slot for (phase, view, seq), or NULL if it holds something else. */
const struct hm_vote_slot *hm_quorum_find(const struct hm_quorum *q, enum hm_vote_phase phase,
					  uint64_t view, uint64_t seq);

/* Forget every slot at or below seq (after a stable checkpoint). */
void hm_quorum_collect(struct hm_quorum *q, uint64_t seq);

/* The socket counter behind the vote-counter interface: a quorum of its own
 * (freed by ops->destroy), counting our own votes as replica self's.
 * 0, or -1 on bad parameters or allocation failure. */
int hm_quorum_counter_new(struct hm_vote_counter *vc, uint32_t n, uint32_t f, uint32_t self,
			  uint32_t window);

#endif /* HM_QUORUM_H */
