/* SPDX-License-Identifier: MIT */
/*
 * The vote-slot rules, written once for both vote counters:
 *
 *   - the XDP program (kern/hm_xdp.bpf.c, clang -target bpf, vmlinux.h
 *     included first), on a struct hm_vote_slot inside a locked hm_votes
 *     entry, under its bpf_spin_lock;
 *   - the socket dataplane's counter (user/core/quorum.c, gcc), on its own
 *     array of slots.
 *
 * The caller finds the slot for (phase, seq) and holds whatever lock it
 * needs; these functions decide everything else: who may vote, taking a
 * slot over for a newer (view, seq), duplicates, equivocation, recording a
 * vote, the expected digest, matched voters and the one quorum event.  So
 * the two dataplanes count quorums by one definition (headers/hm_maps.h has
 * the layout) and the selftests compare them differentially.
 *
 * Everything is always_inline, loops have constant bounds and no helper is
 * called, so the code is verifier-friendly and may run under a
 * bpf_spin_lock.  Digests and signatures are copied and compared in 8-byte
 * words: in BPF the callers pass 8-byte-aligned buffers (map values, the
 * stack); in userspace the words are read with memcpy, any alignment.
 * Events are filled field by field into a caller-zeroed struct.
 */
#ifndef HM_VOTE_SLOT_H
#define HM_VOTE_SLOT_H

#ifndef __VMLINUX_H__
#include <stdbool.h>
#include <string.h>
#endif

#include "hm_maps.h"

#define HM_VS_INLINE static inline __attribute__((always_inline))

_Static_assert(HM_VOTE_SLOT_HEAD % 8 == 0, "slot head is cleared in 8-byte words");
_Static_assert(HM_MAX_REPLICAS <= 32, "voter bitmaps are 32 bits");
_Static_assert((HM_MAX_REPLICAS & (HM_MAX_REPLICAS - 1)) == 0, "voter ids are masked");

HM_VS_INLINE __u64 hm_vs_load64(const __u8 *p)
{
#if defined(__bpf__)
	return *(const __u64 *)p;
#else
	__u64 v;

	memcpy(&v, p, 8);
	return v;
#endif
}

HM_VS_INLINE void hm_vs_store64(__u8 *p, __u64 v)
{
#if defined(__bpf__)
	*(__u64 *)p = v;
#else
	memcpy(p, &v, 8);
#endif
}

/* 32 bytes equal (a digest) */
HM_VS_INLINE bool hm_vs_digest_eq(const __u8 *a, const __u8 *b)
{
	return ((hm_vs_load64(a) ^ hm_vs_load64(b)) | (hm_vs_load64(a + 8) ^ hm_vs_load64(b + 8)) |
		(hm_vs_load64(a + 16) ^ hm_vs_load64(b + 16)) |
		(hm_vs_load64(a + 24) ^ hm_vs_load64(b + 24))) == 0;
}

/* copy 32 bytes (a digest, half a signature) */
HM_VS_INLINE void hm_vs_copy32(__u8 *dst, const __u8 *src)
{
	hm_vs_store64(dst, hm_vs_load64(src));
	hm_vs_store64(dst + 8, hm_vs_load64(src + 8));
	hm_vs_store64(dst + 16, hm_vs_load64(src + 16));
	hm_vs_store64(dst + 24, hm_vs_load64(src + 24));
}

/* Bits set in a voter bitmap (no popcount instruction in BPF on 6.1). */
HM_VS_INLINE __u32 hm_vs_popcount32(__u32 x)
{
	x = x - ((x >> 1) & 0x55555555u);
	x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
	x = (x + (x >> 4)) & 0x0f0f0f0fu;
	x = x + (x >> 8);
	return (x + (x >> 16)) & 0x3f;
}

/* Matching votes a slot needs: 2f PREPAREs (from backups; with the
 * PRE-PREPARE that makes 2f+1), 2f+1 COMMITs. */
HM_VS_INLINE __u32 hm_vote_threshold(__u32 f, __u32 phase)
{
	return phase == HM_PHASE_PREPARE ? 2 * f : 2 * f + 1;
}

/* May voter vote at all?  A member (< n); and not a PREPARE from the view's
 * primary, whose PRE-PREPARE stands for its PREPARE (a PREPARE from it would
 * let a faulty primary count twice).  No: HM_DROP_MALFORMED. */
HM_VS_INLINE bool hm_vote_voter_ok(__u32 n, __u32 phase, __u64 view, __u32 voter)
{
	return voter < n && voter < HM_MAX_REPLICAS &&
	       !(phase == HM_PHASE_PREPARE && voter == view % n);
}

/* The head zero (see HM_VOTE_SLOT_HEAD), then the new owner. */
HM_VS_INLINE void hm_vote_slot_reset(struct hm_vote_slot *s, __u32 phase, __u64 view, __u64 seq)
{
#if defined(__bpf__)
	/* volatile: clang would make the loop a memset call, which BPF lacks */
	volatile __u64 *w = (volatile __u64 *)(void *)s;

	for (int i = 0; i < (int)(HM_VOTE_SLOT_HEAD / 8); i++)
		w[i] = 0;
	/* the u64 stores do not alias the u32 bitmaps for clang's type-based
	 * alias analysis: make it reload them */
	asm volatile("" ::: "memory");
#else
	/* memset, not u64 stores: gcc -O2 may keep the u32 bitmaps cached
	 * across stores of another type (strict aliasing) */
	memset(s, 0, HM_VOTE_SLOT_HEAD);
#endif
	s->phase = (__u8)phase;
	s->view = view;
	s->seq = seq;
}

/* The slot is ours for (view, seq), taking over an older owner; false when
 * it holds something newer (a stale vote: HM_DROP_STALE). */
HM_VS_INLINE bool hm_vote_slot_claim(struct hm_vote_slot *s, __u32 phase, __u64 view, __u64 seq)
{
	if (s->seq == seq && s->view == view && (s->voted || s->expected_set))
		return true;
	if (s->seq > seq || (s->seq == seq && s->view > view))
		return false;
	hm_vote_slot_reset(s, phase, view, seq);
	return true;
}

/* Forget the slot if it is at or below seq (after a stable checkpoint). */
HM_VS_INLINE void hm_vote_slot_collect(struct hm_vote_slot *s, __u64 seq)
{
	if (s->seq <= seq)
		hm_vote_slot_reset(s, 0, 0, 0);
}

/* The voters (below n) whose digest is the expected one, recomputed from
 * the slot, so a slot written by anyone is counted consistently. */
HM_VS_INLINE hm_voters_t hm_vote_slot_matched(const struct hm_vote_slot *s, __u32 n)
{
	hm_voters_t m = 0;

	for (__u32 i = 0; i < HM_MAX_REPLICAS; i++) {
		if (i >= n)
			break;
		if ((s->voted >> i & 1) && hm_vs_digest_eq(s->digests[i], s->expected))
			m |= (hm_voters_t)1 << i;
	}
	return m;
}

/* Raise the slot's quorum once: fills *ev and sets *emit.  A slot that
 * wants the fast path (s->fast == 1) raises HM_EV_FAST once all n - 1
 * backups matched, instead of the quorum if that is still due (one event
 * per call; the fast event implies the quorum). */
HM_VS_INLINE void hm_vote_slot_quorum(struct hm_vote_slot *s, __u32 n, __u32 threshold,
				      struct hm_vote_event *ev, bool *emit)
{
	__u32 got = hm_vs_popcount32(s->matched);
	bool fast = s->fast == 1 && n > 1 && got >= n - 1;

	if (!s->expected_set || (s->quorum_sent && !fast) || got < threshold)
		return;
	s->quorum_sent = 1;
	if (fast)
		s->fast = 2;
	ev->kind = fast ? HM_EV_FAST : HM_EV_QUORUM;
	ev->phase = s->phase;
	ev->view = s->view;
	ev->seq = s->seq;
	ev->voters = s->matched;
	hm_vs_copy32(ev->digest, s->expected);
	*emit = true;
}

/*
 * Record voter's vote in a slot it claimed (hm_vote_voter_ok passed,
 * hm_vote_slot_claim returned true).  Returns
 *   HM_DROP_DUPLICATE     the voter already voted this digest;
 *   HM_DROP_EQUIVOCATION  it already voted another: *ev is the
 *                         HM_EV_EQUIVOCATION event (both digests, the second
 *                         signature) and *emit is set;
 *   HM_ACCEPT             recorded; *ev / *emit as hm_vote_slot_quorum.
 */
HM_VS_INLINE __u32 hm_vote_slot_record(struct hm_vote_slot *s, __u32 n, __u32 threshold,
				       __u32 voter, const __u8 *digest, const __u8 *sig,
				       struct hm_vote_event *ev, bool *emit)
{
	hm_voters_t bit;

	voter &= HM_MAX_REPLICAS - 1; /* < n <= HM_MAX_REPLICAS already; for the verifier */
	bit = (hm_voters_t)1 << voter;
	if (s->voted & bit) {
		if (hm_vs_digest_eq(s->digests[voter], digest))
			return HM_DROP_DUPLICATE;
		ev->kind = HM_EV_EQUIVOCATION;
		ev->phase = s->phase;
		ev->view = s->view;
		ev->seq = s->seq;
		ev->voter = voter;
		hm_vs_copy32(ev->digest, s->digests[voter]);
		hm_vs_copy32(ev->digest2, digest);
		hm_vs_copy32(ev->sig2, sig);
		hm_vs_copy32(ev->sig2 + 32, sig + 32);
		*emit = true;
		return HM_DROP_EQUIVOCATION;
	}
	s->voted |= bit;
	hm_vs_copy32(s->digests[voter], digest);
	hm_vs_copy32(s->sigs[voter], sig);
	hm_vs_copy32(s->sigs[voter] + 32, sig + 32);
	if (s->expected_set) {
		s->matched = hm_vote_slot_matched(s, n);
		hm_vote_slot_quorum(s, n, threshold, ev, emit);
	}
	return HM_ACCEPT;
}

/* Set the digest a claimed slot's votes must match (the accepted
 * PRE-PREPARE's), once; raises the quorum if the votes there make one. */
HM_VS_INLINE void hm_vote_slot_expect(struct hm_vote_slot *s, __u32 n, __u32 threshold,
				      const __u8 *digest, bool fast, struct hm_vote_event *ev,
				      bool *emit)
{
	if (s->expected_set)
		return;
	s->expected_set = 1;
	s->fast = fast && s->phase == HM_PHASE_PREPARE ? 1 : 0;
	hm_vs_copy32(s->expected, digest);
	s->matched = hm_vote_slot_matched(s, n);
	hm_vote_slot_quorum(s, n, threshold, ev, emit);
}

#endif /* HM_VOTE_SLOT_H */
