// SPDX-License-Identifier: MIT
/*
 * The socket dataplane's vote counter (see quorum.h): an array of slots,
 * (seq % window) * HM_PHASE_MAX + phase, and the slot rules of
 * headers/hm_vote_slot.h, which the XDP program runs on its hm_votes map.
 */
#include "core/quorum.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "hm_vote_slot.h"

int hm_quorum_init(struct hm_quorum *q, uint32_t n, uint32_t f, uint32_t window)
{
	if (n == 0 || n > HM_MAX_REPLICAS || window == 0)
		return -1;
	q->n = n;
	q->f = f;
	q->window = window;
	q->slots = calloc((size_t)window * HM_PHASE_MAX, sizeof(*q->slots));
	return q->slots ? 0 : -1;
}

void hm_quorum_free(struct hm_quorum *q)
{
	free(q->slots);
	q->slots = NULL;
}

uint32_t hm_quorum_threshold(const struct hm_quorum *q, enum hm_vote_phase phase)
{
	return hm_vote_threshold(q->f, phase);
}

static struct hm_vote_slot *slot_at(const struct hm_quorum *q, enum hm_vote_phase phase,
				    uint64_t seq)
{
	return &q->slots[(seq % q->window) * HM_PHASE_MAX + phase];
}

int hm_quorum_vote(struct hm_quorum *q, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		   uint32_t voter, const uint8_t digest[HM_DIGEST_LEN], const uint8_t sig[HM_SIG_LEN],
		   struct hm_vote_event *ev, enum hm_drop_reason *why)
{
	struct hm_vote_event e = { 0 };
	struct hm_vote_slot *s;
	bool emit = false;
	uint32_t r;

	if (!hm_vote_voter_ok(q->n, phase, view, voter)) {
		*why = HM_DROP_MALFORMED;
		return -1;
	}
	s = slot_at(q, phase, seq);
	if (!hm_vote_slot_claim(s, phase, view, seq)) {
		*why = HM_DROP_STALE;
		return -1;
	}
	r = hm_vote_slot_record(s, q->n, hm_quorum_threshold(q, phase), voter, digest, sig, &e,
				&emit);
	if (r == HM_DROP_DUPLICATE) {
		*why = HM_DROP_DUPLICATE;
		return -1;
	}
	if (!emit) /* recorded */
		return 0;
	*ev = e; /* a quorum, or an equivocation (r == HM_DROP_EQUIVOCATION) */
	return 1;
}

int hm_quorum_expect(struct hm_quorum *q, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		     const uint8_t digest[HM_DIGEST_LEN], struct hm_vote_event *ev)
{
	struct hm_vote_slot *s = slot_at(q, phase, seq);
	struct hm_vote_event e = { 0 };
	bool emit = false;

	if (!hm_vote_slot_claim(s, phase, view, seq))
		return 0;
	hm_vote_slot_expect(s, q->n, hm_quorum_threshold(q, phase), digest, &e, &emit);
	if (!emit)
		return 0;
	*ev = e;
	return 1;
}

const struct hm_vote_slot *hm_quorum_find(const struct hm_quorum *q, enum hm_vote_phase phase,
					  uint64_t view, uint64_t seq)
{
	const struct hm_vote_slot *s = slot_at(q, phase, seq);

	return s->seq == seq && s->view == view ? s : NULL;
}

void hm_quorum_collect(struct hm_quorum *q, uint64_t seq)
{
	for (uint32_t i = 0; i < q->window * HM_PHASE_MAX; i++)
		hm_vote_slot_collect(&q->slots[i], seq);
}
