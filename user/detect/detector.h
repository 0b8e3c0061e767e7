/* SPDX-License-Identifier: MIT */
/*
 * The daemon's fault detector: every judge interval it samples each peer's
 * counters (the node's pre-filter and vote counter, and in xdp mode the
 * kernel's node_stats), runs the reputation rules (user/detect/reputation.c),
 * turns new proofs of misbehaviour into block decisions (user/detect/policy.c) and
 * applies them to the dataplane: the XDP blocklist map, or the node's
 * blocked bits in socket mode.  It also keeps the rates the metrics
 * endpoint and `hmctl status` show.
 */
#ifndef HM_DETECTOR_H
#define HM_DETECTOR_H

#include <jansson.h>

#include "detect/metrics.h"
#include "replica/node.h"
#include "detect/policy.h"
#include "detect/peer_state.h"
#include "detect/reputation.h"
#include "detect/trust_graph.h"
#include "dataplane/xdp_dataplane.h"

struct hm_detector {
	const struct hm_config *cfg;
	struct hm_node *node;
	struct hm_xdp_dp *dp;           /* NULL in socket mode */
	struct hm_reputation rep;
	/* per pair of replicas, from agreement seen in quorums and stable
	 * checkpoints and from equivocations (trust_graph.h) */
	struct hm_trust_graph trust;
	uint64_t agreed_prev[HM_MAX_REPLICAS][HM_MAX_REPLICAS];
	uint64_t contradictions_prev[HM_MAX_REPLICAS];
	uint64_t proofs_noted[HM_MAX_REPLICAS]; /* fault_detection.enabled: false */
	struct hm_policy policy;
	hm_voters_t byzantine;             /* two-indicator rule, last step (suspicion only) */
	/* up / slow / down / proven Byzantine, per peer (peer_state.h) */
	struct hm_peer_health health[HM_MAX_REPLICAS];
	uint64_t down_after_us;         /* silence that makes a peer down */
	hm_voters_t applied;               /* block mask the dataplane holds */
	/* proofs already acted on, per peer */
	uint64_t equivocations_seen[HM_MAX_REPLICAS];
	uint64_t bad_signatures_seen[HM_MAX_REPLICAS];
	uint64_t proofs_seen[HM_MAX_REPLICAS];   /* proofs other replicas sent us */
	uint64_t refusals_seen[HM_MAX_REPLICAS]; /* proofs we refused, per sender */
	/* the slot of the latest equivocation acted on, per culprit: our own
	 * catch and the proofs other replicas send of the same equivocation
	 * are one offence, not three strikes */
	struct hm_acted_slot {
		bool set;
		uint8_t type;
		uint64_t view, seq;
	} acted[HM_MAX_REPLICAS];
	/* rates over the last step */
	uint64_t started_us, last_us, steps;
	uint64_t prev_rounds, prev_accepted, prev_dropped, prev_view, view_changes;
	double rounds_per_second, messages_per_second, loss_rate;
	uint64_t dataplane_errors;
};

void hm_detector_init(struct hm_detector *d, const struct hm_config *cfg, struct hm_node *node,
		      struct hm_xdp_dp *dp, uint64_t now_us);
/* One judge step: sample, judge, decide, apply. */
void hm_detector_step(struct hm_detector *d, uint64_t now_us);
/* Operator lift of replica's block; -1 (with a reason in err) if none. */
int hm_detector_lift(struct hm_detector *d, uint32_t replica, uint64_t now_us, char *err,
		     size_t errlen);

/* The metrics snapshot, the status section and the decision list. */
void hm_detector_metrics(const struct hm_detector *d, struct hm_replica_metrics *m);
json_t *hm_detector_json(const struct hm_detector *d, uint64_t now_us);
json_t *hm_detector_blocks_json(const struct hm_detector *d, uint64_t now_us);

#endif /* HM_DETECTOR_H */
