/* SPDX-License-Identifier: MIT */
/*
 * Layouts of the state HyperMesh keeps per replica for counting votes and
 * judging senders.  The XDP program keeps them in BPF maps; in socket mode
 * the userspace receive path (user/quorum.c) keeps the same structures, so
 * the two dataplanes count quorums by one definition.
 */
#ifndef HM_MAPS_H
#define HM_MAPS_H

#include "hm_wire.h"

/* Which message a vote slot counts. */
enum hm_vote_phase { HM_PHASE_PREPARE = 0, HM_PHASE_COMMIT = 1, HM_PHASE_MAX = 2 };

/*
 * One vote slot: the PREPAREs or COMMITs for one (view, seq).  Slots are
 * indexed by (seq mod watermark_window, phase), which is unique inside the
 * window (h, h + L]; a vote for a newer (view, seq) takes the slot over.
 *
 * Each voter's digest is kept, not only a count, so that votes that arrive
 * before the PRE-PREPARE are not lost and a second vote with another digest
 * is caught as equivocation.  Each vote's signature is kept so that the
 * controller can build a certificate later without asking again; it is
 * verified only when a certificate needs it.
 */
struct hm_vote_slot {
	__u64 view;
	__u64 seq;
	__u16 voted;        /* bitmap: replicas that voted */
	__u16 matched;      /* bitmap: voters whose digest equals expected */
	__u8 phase;         /* enum hm_vote_phase */
	__u8 expected_set;  /* expected holds the accepted PRE-PREPARE's digest */
	__u8 quorum_sent;   /* the quorum event has been raised */
	__u8 pad;
	__u8 expected[HM_DIGEST_LEN];
	__u8 digests[HM_MAX_REPLICAS][HM_DIGEST_LEN];
	__u8 sigs[HM_MAX_REPLICAS][HM_SIG_LEN];
};

/* What the vote counter tells the controller (ring buffer events in xdp
 * mode, return values in socket mode). */
enum hm_vote_event_kind {
	HM_EV_QUORUM = 1,        /* a slot reached its threshold */
	HM_EV_EQUIVOCATION = 2,  /* a voter sent two digests for one slot */
};

struct hm_vote_event {
	__u32 kind;              /* enum hm_vote_event_kind */
	__u32 phase;             /* enum hm_vote_phase */
	__u64 view;
	__u64 seq;
	__u32 voter;             /* equivocation: the culprit */
	__u16 voters;            /* quorum: bitmap of the matching voters */
	__u16 pad;
	__u8 digest[HM_DIGEST_LEN];   /* quorum digest, or the first digest */
	__u8 digest2[HM_DIGEST_LEN];  /* equivocation: the second digest */
};

#endif /* HM_MAPS_H */
