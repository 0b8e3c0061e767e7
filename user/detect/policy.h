/* SPDX-License-Identifier: MIT */
/*
 * Block policy: who is cut off, for how long, and why.  Pure bookkeeping
 * (no I/O, no clock): the daemon reports proven misbehaviour and applies the
 * resulting block mask to the dataplane (the XDP blocklist map, or the
 * node's blocked bits in socket mode).
 *
 * Rules (docs/fault-detection.md says why they keep liveness):
 *  - only proof blocks: an equivocation (two conflicting signed votes) or a
 *    message whose link MAC verified but whose Ed25519 signature did not;
 *    reputation never reaches this module;
 *  - a block lasts a cooldown that doubles with each repeat offence
 *    (base, 2 base, 4 base, ... capped);
 *  - never fewer than 2f+1 replicas unblocked (ourselves included): an
 *    offence that would cross the floor is logged and not enforced;
 *  - every decision (block, refusal, expiry, lift) is kept with its
 *    evidence for `hmctl block list`; an operator may lift a block.
 */
#ifndef HM_POLICY_H
#define HM_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "hm_wire.h"

enum hm_offence {
	HM_OFFENCE_EQUIVOCATION = 1,  /* two conflicting signed votes */
	HM_OFFENCE_BAD_SIGNATURE = 2, /* link MAC verified, signature did not */
	HM_OFFENCE_PROOF = 3,         /* another replica's equivocation proof */
};

enum hm_decision_kind {
	HM_DECIDE_BLOCK = 1,    /* blocked until `until_us` */
	HM_DECIDE_REFUSED,      /* proven, not blocked: the 2f+1 floor */
	HM_DECIDE_EXPIRED,      /* the cooldown ran out */
	HM_DECIDE_LIFTED,       /* an operator lifted it */
	HM_DECIDE_EXTENDED,     /* a new offence while blocked: cooldown restarted longer */
};

#define HM_EVIDENCE_TEXT 256
#define HM_POLICY_LOG 128       /* decisions kept (a ring) */

struct hm_decision {
	uint64_t id;            /* 1, 2, ... in order */
	enum hm_decision_kind kind;
	enum hm_offence offence;/* for BLOCK, REFUSED, EXTENDED */
	uint32_t replica;
	uint32_t strikes;       /* offences so far, this one included */
	uint64_t at_us, until_us;
	char evidence[HM_EVIDENCE_TEXT];
};

struct hm_block_state {
	bool blocked;
	uint32_t strikes;
	uint64_t since_us, until_us;
	uint64_t decision;      /* id of the decision that blocked it */
};

struct hm_policy {
	uint32_t n, f, self;
	uint64_t base_cooldown_us, max_cooldown_us;
	struct hm_block_state peer[HM_MAX_REPLICAS];
	struct hm_decision log[HM_POLICY_LOG];
	uint64_t next_id;       /* id of the next decision */
	uint64_t blocks, refusals;
};

void hm_policy_init(struct hm_policy *p, uint32_t n, uint32_t f, uint32_t self,
		    uint64_t base_cooldown_us, uint64_t max_cooldown_us);

/* The cooldown for the k-th offence (k >= 1): base * 2^(k-1), capped. */
uint64_t hm_policy_cooldown(const struct hm_policy *p, uint32_t strikes);

/*
 * Proven misbehaviour by `replica` at now_us, with a line of evidence.
 * Returns the decision taken (BLOCK, EXTENDED or REFUSED), or NULL when the
 * offence names no peer (ourselves, or out of range).
 */
const struct hm_decision *hm_policy_offence(struct hm_policy *p, uint32_t replica,
					    enum hm_offence offence, const char *evidence,
					    uint64_t now_us);

/* Let blocks whose cooldown ran out expire; returns how many did. */
int hm_policy_expire(struct hm_policy *p, uint64_t now_us);

/* An operator lifts replica's block; -1 when it is not blocked. */
int hm_policy_lift(struct hm_policy *p, uint32_t replica, const char *who, uint64_t now_us);

/* Bitmap of blocked replicas. */
hm_voters_t hm_policy_blocked(const struct hm_policy *p);

/* The decisions in order, oldest first: *count of them. */
const struct hm_decision *hm_policy_decision(const struct hm_policy *p, uint64_t i);
uint64_t hm_policy_decisions(const struct hm_policy *p);

const char *hm_decision_name(enum hm_decision_kind k);
const char *hm_offence_name(enum hm_offence o);

#endif /* HM_POLICY_H */
