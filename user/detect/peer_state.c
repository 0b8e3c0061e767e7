// SPDX-License-Identifier: MIT
/* Peer states with hysteresis (see peer_state.h). */
#include "detect/peer_state.h"

#include <stdio.h>
#include <string.h>

const char *hm_peer_state_name(enum hm_peer_state s)
{
	static const char *const names[HM_PEER_STATES] = { "up", "slow", "down", "byzantine" };

	return s < HM_PEER_STATES ? names[s] : "?";
}

void hm_peer_health_init(struct hm_peer_health *h, uint64_t now_us)
{
	memset(h, 0, sizeof(*h));
	h->state = HM_PEER_UP;
	h->since_us = now_us;
	snprintf(h->reason, sizeof(h->reason), "ok");
}

/* Silent for longer than down_after_us: down, with why in reason. */
static bool is_down(const struct hm_peer_facts *f, uint64_t now_us, uint64_t started_us,
		    uint64_t down_after_us, char *reason, size_t cap)
{
	uint64_t since = f->last_seen_us ? f->last_seen_us : started_us;

	if (now_us > since && now_us - since > down_after_us) {
		snprintf(reason, cap, f->last_seen_us ? "unreachable: silent for %.1f s"
						      : "unreachable: never heard from in %.1f s",
			 (double)(now_us - since) / 1e6);
		return true;
	}
	return false;
}

/* Slow after HM_PEER_SLOW_SIGN_STEPS steps in a row with a sign of it,
 * until HM_PEER_SLOW_CALM_STEPS in a row without; a peer just back from
 * down starts counting afresh. */
static bool is_slow(struct hm_peer_health *h, const struct hm_peer_facts *f)
{
	if (h->state == HM_PEER_DOWN) {
		h->sign_steps = h->calm_steps = 0;
		return false;
	}
	if (h->state == HM_PEER_SLOW) {
		h->calm_steps = f->slow_sign ? 0 : h->calm_steps + 1;
		return h->calm_steps < HM_PEER_SLOW_CALM_STEPS;
	}
	h->sign_steps = f->slow_sign ? h->sign_steps + 1 : 0;
	return h->sign_steps >= HM_PEER_SLOW_SIGN_STEPS;
}

bool hm_peer_health_step(struct hm_peer_health *h, const struct hm_peer_facts *f,
			 uint64_t now_us, uint64_t started_us, uint64_t down_after_us)
{
	enum hm_peer_state next;
	char reason[sizeof(h->reason)];

	if (h->state == HM_PEER_BYZANTINE)
		return false; /* a proof does not expire */
	if (f->proof) {
		next = HM_PEER_BYZANTINE;
		snprintf(reason, sizeof(reason), "proven: %s", f->proof);
	} else if (is_down(f, now_us, started_us, down_after_us, reason, sizeof(reason))) {
		next = HM_PEER_DOWN;
	} else if (is_slow(h, f)) {
		next = HM_PEER_SLOW;
		snprintf(reason, sizeof(reason), "late or missing from quorums");
	} else {
		next = HM_PEER_UP;
		snprintf(reason, sizeof(reason), h->state == HM_PEER_DOWN ? "heard from again" : "ok");
	}
	if (next == HM_PEER_DOWN && h->state == HM_PEER_DOWN) {
		memcpy(h->reason, reason, sizeof(reason)); /* the silence grows; same state */
		return false;
	}
	if (next == h->state)
		return false;
	h->state = next;
	h->since_us = now_us;
	h->calm_steps = h->sign_steps = 0;
	memcpy(h->reason, reason, sizeof(reason));
	return true;
}
