/* SPDX-License-Identifier: MIT */
/*
 * The vote counter as the node driver (user/replica/node.c) sees it: one
 * interface, two implementations.  It turns PREPARE and COMMIT votes into
 * one event per quorum (and an event per equivocation), in the slot layout
 * of headers/hm_maps.h, under the policy the core's Ready sets: the digest
 * each slot must match, our own vote, the window.
 *
 *   - the socket counter, hm_quorum_counter() (user/core/quorum.c): counts
 *     in process, every vote the node hands it; events come back at once,
 *     from the call that raised them;
 *   - the XDP counter, hm_xdp_vote_counter() (user/dataplane/xdp_votes.c):
 *     the kernel counted the votes before the node saw them; policy goes
 *     into the BPF maps and events come later, from the ring buffer,
 *     through the callback given to bind.
 *
 * The node holds one and never asks which it is.  Only core types appear
 * here, so the node (replica/) and the XDP controller (dataplane/) both
 * depend down on it and not on each other.
 */
#ifndef HM_VOTE_COUNTER_H
#define HM_VOTE_COUNTER_H

#include <stddef.h>
#include <stdint.h>

#include "hm_maps.h"
#include "hm_wire.h"
#include "core/pbft.h"

typedef void (*hm_vote_event_fn)(void *ctx, const struct hm_vote_event *ev);

struct hm_vote_counter_ops {
	/*
	 * A peer's PREPARE or COMMIT that passed the pre-filter.  Returns 1
	 * and fills *ev when it completes a quorum or is an equivocation, 0
	 * when taken without an event (recorded; or, for the XDP counter,
	 * already counted in the kernel, which passes votes up only as
	 * retransmissions), -1 with *why when refused (duplicate, stale,
	 * a PREPARE from the primary).
	 */
	int (*vote)(void *state, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		    uint32_t voter, const uint8_t digest[HM_DIGEST_LEN],
		    const uint8_t sig[HM_SIG_LEN], struct hm_vote_event *ev,
		    enum hm_drop_reason *why);
	/* One vote-policy entry of a Ready: the digest the slot must match and,
	 * if own_vote, our own vote.  Writes the events it raises at once (at
	 * most two) to evs and returns how many. */
	size_t (*policy)(void *state, const struct pbft_vote_policy *v,
			 struct hm_vote_event evs[2]);
	/* Forget every slot at or below seq (the low watermark rose). */
	void (*collect)(void *state, uint64_t seq);
	/* The window the core published (view, normal-case seq in (low, high]);
	 * NULL when the counter has no pre-filter of its own to tell. */
	void (*window)(void *state, uint64_t view, uint64_t low, uint64_t high);
	/* The stored signatures of `voters` in the slot (phase, view, seq)
	 * (pbft_params.vote_sigs, equivocation proofs): 0, or -1 when the slot
	 * holds something else or lacks one of them. */
	int (*sigs)(void *state, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		    hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN]);
	/* Counters whose events arrive later (NULL for the others): where to
	 * deliver them. */
	void (*bind)(void *state, hm_vote_event_fn on_event, void *ctx);
	/* The highest seq the peers named, as the counter saw it, for votes
	 * the node never sees; NULL when the node sees every vote itself. */
	uint64_t (*progress)(void *state);
	/* The highest view above ours each replica's messages named, for
	 * messages a pre-filter in front of the node dropped (0: none): view
	 * catch-up.  0, or -1 when unknown; NULL when the node sees them all. */
	int (*views)(void *state, uint64_t views[HM_MAX_REPLICAS]);
	/* Free what the counter owns (NULL: nothing). */
	void (*destroy)(void *state);
};

struct hm_vote_counter {
	const struct hm_vote_counter_ops *ops;
	void *state;
};

#endif /* HM_VOTE_COUNTER_H */
