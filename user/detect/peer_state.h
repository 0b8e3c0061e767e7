/* SPDX-License-Identifier: MIT */
/*
 * A peer's state as an operator reads it (hmctl status, hypermesh_peer_state,
 * the "peer down" / "peer up" log lines): up, slow, down or Byzantine.
 *
 * Down and Byzantine are different facts and must never be confused: a
 * crashed, paused or cut-off replica is *down* (nothing heard from it for
 * down_after_us); only a proof (an equivocation, a
 * signature that failed after its link MAC verified, a bad certificate,
 * an evidence message that checked) makes a peer *Byzantine*, and that
 * verdict stays.  Statistics (latency, participation, reputation) can only
 * make a peer *slow*.  Transitions have hysteresis so nothing flaps: down
 * needs down_after_us of silence and clears at the first message (back to
 * up: a restarted peer's statistics still carry its silence); slow needs
 * SLOW_SIGN_STEPS judge steps in a row with a sign of it, and holds until
 * SLOW_CALM_STEPS steps in a row showed none.
 *
 * Pure: the caller passes the time and what it knows of the peer.
 */
#ifndef HM_PEER_STATE_H
#define HM_PEER_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum hm_peer_state { HM_PEER_UP = 0, HM_PEER_SLOW, HM_PEER_DOWN, HM_PEER_BYZANTINE,
		     HM_PEER_STATES };

#define HM_PEER_SLOW_SIGN_STEPS 3   /* steps in a row with a slow sign to become slow */
#define HM_PEER_SLOW_CALM_STEPS 3   /* ... without one to stop being slow */

/* What the detector knows of a peer at one judge step. */
struct hm_peer_facts {
	uint64_t last_seen_us;   /* last datagram accepted from it, 0 = never */
	bool slow_sign;          /* a timing or participation indicator this step */
	const char *proof;       /* NULL, or what proves it Byzantine */
};

struct hm_peer_health {
	enum hm_peer_state state;
	uint64_t since_us;       /* when it entered the state */
	unsigned calm_steps;     /* steps in a row without a slow sign, while slow */
	unsigned sign_steps;     /* steps in a row with one, while not slow */
	char reason[128];
};

const char *hm_peer_state_name(enum hm_peer_state s);
void hm_peer_health_init(struct hm_peer_health *h, uint64_t now_us);
/* One step: returns true when the state changed (log it). started_us is
 * when we started, so a peer never heard from is down only after
 * down_after_us of our own life. */
bool hm_peer_health_step(struct hm_peer_health *h, const struct hm_peer_facts *f,
			 uint64_t now_us, uint64_t started_us, uint64_t down_after_us);

#endif /* HM_PEER_STATE_H */
