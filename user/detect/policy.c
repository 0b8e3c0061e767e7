// SPDX-License-Identifier: MIT
/* Block decisions with evidence (see policy.h). */
#include "detect/policy.h"

#include <stdio.h>
#include <string.h>

void hm_policy_init(struct hm_policy *p, uint32_t n, uint32_t f, uint32_t self,
		    uint64_t base_cooldown_us, uint64_t max_cooldown_us)
{
	memset(p, 0, sizeof(*p));
	p->n = n < HM_MAX_REPLICAS ? n : HM_MAX_REPLICAS;
	p->f = f;
	p->self = self;
	p->base_cooldown_us = base_cooldown_us ? base_cooldown_us : 1;
	p->max_cooldown_us = max_cooldown_us > p->base_cooldown_us ? max_cooldown_us
								   : p->base_cooldown_us;
	p->next_id = 1;
}

uint64_t hm_policy_cooldown(const struct hm_policy *p, uint32_t strikes)
{
	uint64_t c = p->base_cooldown_us;

	for (uint32_t k = 1; k < strikes && c < p->max_cooldown_us; k++)
		c = c > p->max_cooldown_us / 2 ? p->max_cooldown_us : 2 * c;
	return c < p->max_cooldown_us ? c : p->max_cooldown_us;
}

hm_voters_t hm_policy_blocked(const struct hm_policy *p)
{
	hm_voters_t m = 0;

	for (uint32_t i = 0; i < p->n; i++)
		if (p->peer[i].blocked)
			m |= (hm_voters_t)(1u << i);
	return m;
}

static struct hm_decision *record(struct hm_policy *p, enum hm_decision_kind kind,
				  enum hm_offence offence, uint32_t replica, uint64_t now_us,
				  const char *evidence)
{
	struct hm_decision *d = &p->log[(p->next_id - 1) % HM_POLICY_LOG];

	*d = (struct hm_decision){ .id = p->next_id++, .kind = kind, .offence = offence,
				   .replica = replica, .strikes = p->peer[replica].strikes,
				   .at_us = now_us, .until_us = p->peer[replica].until_us };
	snprintf(d->evidence, sizeof(d->evidence), "%s", evidence ? evidence : "");
	return d;
}

const struct hm_decision *hm_policy_offence(struct hm_policy *p, uint32_t replica,
					    enum hm_offence offence, const char *evidence,
					    uint64_t now_us)
{
	struct hm_block_state *b;
	uint32_t unblocked;

	if (replica >= p->n || replica == p->self)
		return NULL;
	b = &p->peer[replica];
	b->strikes++;
	if (b->blocked) {
		/* Already cut off (its packets still in flight were counted
		 * before the block reached the dataplane, or a proof from
		 * another replica): restart the block, longer. */
		b->until_us = now_us + hm_policy_cooldown(p, b->strikes);
		return record(p, HM_DECIDE_EXTENDED, offence, replica, now_us, evidence);
	}
	/* We ourselves are never blocked, so count us in. */
	unblocked = p->n - (uint32_t)__builtin_popcount(hm_policy_blocked(p));
	if (unblocked - 1 < 2 * p->f + 1) {
		p->refusals++;
		return record(p, HM_DECIDE_REFUSED, offence, replica, now_us, evidence);
	}
	b->blocked = true;
	b->since_us = now_us;
	b->until_us = now_us + hm_policy_cooldown(p, b->strikes);
	b->decision = p->next_id;
	p->blocks++;
	return record(p, HM_DECIDE_BLOCK, offence, replica, now_us, evidence);
}

int hm_policy_expire(struct hm_policy *p, uint64_t now_us)
{
	int expired = 0;

	for (uint32_t i = 0; i < p->n; i++) {
		struct hm_block_state *b = &p->peer[i];

		if (b->blocked && now_us >= b->until_us) {
			b->blocked = false;
			record(p, HM_DECIDE_EXPIRED, 0, i, now_us, "cooldown over");
			expired++;
		}
	}
	return expired;
}

int hm_policy_lift(struct hm_policy *p, uint32_t replica, const char *who, uint64_t now_us)
{
	char text[HM_EVIDENCE_TEXT];

	if (replica >= p->n || !p->peer[replica].blocked)
		return -1;
	p->peer[replica].blocked = false;
	p->peer[replica].until_us = now_us;
	snprintf(text, sizeof(text), "lifted by %s", who ? who : "operator");
	record(p, HM_DECIDE_LIFTED, 0, replica, now_us, text);
	return 0;
}

uint64_t hm_policy_decisions(const struct hm_policy *p)
{
	uint64_t made = p->next_id - 1;

	return made < HM_POLICY_LOG ? made : HM_POLICY_LOG;
}

const struct hm_decision *hm_policy_decision(const struct hm_policy *p, uint64_t i)
{
	uint64_t made = p->next_id - 1, first = made - hm_policy_decisions(p);

	if (i >= hm_policy_decisions(p))
		return NULL;
	return &p->log[(first + i) % HM_POLICY_LOG];
}

const char *hm_decision_name(enum hm_decision_kind k)
{
	switch (k) {
	case HM_DECIDE_BLOCK: return "block";
	case HM_DECIDE_REFUSED: return "refused";
	case HM_DECIDE_EXPIRED: return "expired";
	case HM_DECIDE_LIFTED: return "lifted";
	case HM_DECIDE_EXTENDED: return "extended";
	}
	return "?";
}

const char *hm_offence_name(enum hm_offence o)
{
	switch (o) {
	case HM_OFFENCE_EQUIVOCATION: return "equivocation";
	case HM_OFFENCE_BAD_SIGNATURE: return "bad_signature";
	case HM_OFFENCE_PROOF: return "equivocation_proof";
	}
	return "";
}
