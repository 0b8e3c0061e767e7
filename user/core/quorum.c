// SPDX-License-Identifier: MIT
/* The socket dataplane's vote counter, and its vote-counter interface (see
 * quorum.h). */
#include "core/quorum.h"

#include <stdlib.h>
#include <string.h>

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
	return phase == HM_PHASE_PREPARE ? 2 * q->f : 2 * q->f + 1;
}

static struct hm_vote_slot *slot_at(const struct hm_quorum *q, enum hm_vote_phase phase,
				    uint64_t seq)
{
	return &q->slots[(seq % q->window) * HM_PHASE_MAX + phase];
}

static void slot_reset(struct hm_vote_slot *s, enum hm_vote_phase phase, uint64_t view,
		       uint64_t seq)
{
	memset(s, 0, HM_VOTE_SLOT_HEAD); /* see HM_VOTE_SLOT_HEAD */
	s->phase = phase;
	s->view = view;
	s->seq = seq;
}

/* The slot for (view, seq): a newer (view, seq) takes an older one's place;
 * a vote older than what the slot holds gets NULL. */
static struct hm_vote_slot *slot_claim(struct hm_quorum *q, enum hm_vote_phase phase,
				       uint64_t view, uint64_t seq)
{
	struct hm_vote_slot *s = slot_at(q, phase, seq);

	if (s->seq == seq && s->view == view && (s->voted || s->expected_set))
		return s;
	if (s->seq > seq || (s->seq == seq && s->view > view))
		return NULL;
	slot_reset(s, phase, view, seq);
	return s;
}

static int quorum_check(const struct hm_quorum *q, struct hm_vote_slot *s,
			struct hm_vote_event *ev)
{
	if (!s->expected_set || s->quorum_sent ||
	    (uint32_t)__builtin_popcount(s->matched) < hm_quorum_threshold(q, s->phase))
		return 0;
	s->quorum_sent = 1;
	memset(ev, 0, sizeof(*ev));
	ev->kind = HM_EV_QUORUM;
	ev->phase = s->phase;
	ev->view = s->view;
	ev->seq = s->seq;
	ev->voters = s->matched;
	memcpy(ev->digest, s->expected, HM_DIGEST_LEN);
	return 1;
}

static int equivocation(const struct hm_vote_slot *s, uint32_t voter, const uint8_t *digest,
			const uint8_t *sig, struct hm_vote_event *ev)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = HM_EV_EQUIVOCATION;
	ev->phase = s->phase;
	ev->view = s->view;
	ev->seq = s->seq;
	ev->voter = voter;
	memcpy(ev->digest, s->digests[voter], HM_DIGEST_LEN);
	memcpy(ev->digest2, digest, HM_DIGEST_LEN);
	if (sig)
		memcpy(ev->sig2, sig, HM_SIG_LEN);
	return 1;
}

int hm_quorum_vote(struct hm_quorum *q, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		   uint32_t voter, const uint8_t digest[HM_DIGEST_LEN], const uint8_t sig[HM_SIG_LEN],
		   struct hm_vote_event *ev, enum hm_drop_reason *why)
{
	struct hm_vote_slot *s;
	uint16_t bit;

	/* The primary's PRE-PREPARE stands for its PREPARE; a PREPARE from it
	 * would let a faulty primary count twice. */
	if (voter >= q->n || (phase == HM_PHASE_PREPARE && voter == view % q->n)) {
		*why = HM_DROP_MALFORMED;
		return -1;
	}
	s = slot_claim(q, phase, view, seq);
	if (!s) {
		*why = HM_DROP_STALE;
		return -1;
	}
	bit = (uint16_t)(1u << voter);
	if (s->voted & bit) {
		if (memcmp(s->digests[voter], digest, HM_DIGEST_LEN) != 0)
			return equivocation(s, voter, digest, sig, ev);
		*why = HM_DROP_DUPLICATE;
		return -1;
	}
	s->voted |= bit;
	memcpy(s->digests[voter], digest, HM_DIGEST_LEN);
	memcpy(s->sigs[voter], sig, HM_SIG_LEN);
	if (s->expected_set && memcmp(s->expected, digest, HM_DIGEST_LEN) == 0)
		s->matched |= bit;
	return quorum_check(q, s, ev);
}

int hm_quorum_expect(struct hm_quorum *q, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		     const uint8_t digest[HM_DIGEST_LEN], struct hm_vote_event *ev)
{
	struct hm_vote_slot *s = slot_claim(q, phase, view, seq);

	if (!s || s->expected_set)
		return 0;
	s->expected_set = 1;
	memcpy(s->expected, digest, HM_DIGEST_LEN);
	s->matched = 0;
	for (uint32_t i = 0; i < q->n; i++)
		if ((s->voted >> i & 1) && memcmp(s->digests[i], digest, HM_DIGEST_LEN) == 0)
			s->matched |= (uint16_t)(1u << i);
	return quorum_check(q, s, ev);
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
		if (q->slots[i].seq <= seq)
			memset(&q->slots[i], 0, HM_VOTE_SLOT_HEAD);
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

	if (hm_quorum_expect(&c->q, v->phase, v->view, v->seq, v->digest, &evs[n]) > 0)
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
		   uint16_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN])
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
