// SPDX-License-Identifier: MIT
/*
 * The socket dataplane's vote counter (see quorum.h): an array of slots,
 * (seq % window) * HM_PHASE_MAX + phase, and the slot rules of
 * headers/hm_vote_slot.h, which the XDP program runs on its hm_votes map;
 * and its vote-counter interface (core/vote_counter.h).
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
	return hm_quorum_expect_fast(q, phase, view, seq, digest, false, ev);
}

int hm_quorum_expect_fast(struct hm_quorum *q, enum hm_vote_phase phase, uint64_t view,
			  uint64_t seq, const uint8_t digest[HM_DIGEST_LEN], bool fast,
			  struct hm_vote_event *ev)
{
	struct hm_vote_slot *s = slot_at(q, phase, seq);
	struct hm_vote_event e = { 0 };
	bool emit = false;

	if (!hm_vote_slot_claim(s, phase, view, seq))
		return 0;
	hm_vote_slot_expect(s, q->n, hm_quorum_threshold(q, phase), digest, fast, &e, &emit);
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

/* ---- the vote-counter interface (core/vote_counter.h) ------------------ */

struct quorum_counter {
	struct hm_quorum q;
	uint32_t self;
};

static int qc_vote(void *state, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		   uint32_t voter, const uint8_t digest[HM_DIGEST_LEN], const uint8_t sig[HM_SIG_LEN],
		   struct hm_vote_event *ev, enum hm_drop_reason *why)
{
	struct quorum_counter *c = state;

	return hm_quorum_vote(&c->q, phase, view, seq, voter, digest, sig, ev, why);
}

static size_t qc_policy(void *state, const struct pbft_vote_policy *v, struct hm_vote_event evs[2])
{
	struct quorum_counter *c = state;
	enum hm_drop_reason why;
	size_t n = 0;

	if (hm_quorum_expect_fast(&c->q, v->phase, v->view, v->seq, v->digest, v->fast, &evs[n]) > 0)
		n++;
	if (v->own_vote && hm_quorum_vote(&c->q, v->phase, v->view, v->seq, c->self, v->digest,
					  v->sig, &evs[n], &why) > 0)
		n++;
	return n;
}

static void qc_collect(void *state, uint64_t seq)
{
	struct quorum_counter *c = state;

	hm_quorum_collect(&c->q, seq);
}

static int qc_sigs(void *state, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		   hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN])
{
	struct quorum_counter *c = state;
	const struct hm_vote_slot *s = hm_quorum_find(&c->q, phase, view, seq);

	if (!s || (s->voted & voters) != voters)
		return -1;
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		if (voters >> i & 1)
			memcpy(sigs[i], s->sigs[i], HM_SIG_LEN);
	return 0;
}

static void qc_destroy(void *state)
{
	struct quorum_counter *c = state;

	hm_quorum_free(&c->q);
	free(c);
}

static const struct hm_vote_counter_ops quorum_counter_ops = {
	.vote = qc_vote,
	.policy = qc_policy,
	.collect = qc_collect,
	.sigs = qc_sigs,
	.destroy = qc_destroy,
};

int hm_quorum_counter_new(struct hm_vote_counter *vc, uint32_t n, uint32_t f, uint32_t self,
			  uint32_t window)
{
	struct quorum_counter *c = calloc(1, sizeof(*c));

	if (!c || self >= n || hm_quorum_init(&c->q, n, f, window) < 0) {
		free(c);
		return -1;
	}
	c->self = self;
	vc->ops = &quorum_counter_ops;
	vc->state = c;
	return 0;
}
