/* SPDX-License-Identifier: MIT */
/*
 * The trust graph: per pair of replicas, a score in [0, 1] of how often they
 * were seen to agree (votes for one slot in one quorum, one stable
 * checkpoint's digest) against how often one of them contradicted itself
 * (an equivocation: its two votes for one slot cannot both match the
 * others).  Pure data and arithmetic, no I/O, no clock: the detector feeds
 * it each judge step (user/detect/detector.c) with counter deltas and the
 * elapsed time.
 *
 * It is for diagnosis (hmctl status, hypermesh_trust_score) only, never for
 * a quorum (the fast path's eligibility reads reputation instead:
 * docs/fault-detection.md, "Trust graph"): a
 * score is one replica's view of statistics, and statistics cannot tell a
 * slow correct replica from a faulty one (docs/fault-detection.md).
 */
#ifndef HM_TRUST_GRAPH_H
#define HM_TRUST_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "hm_wire.h"

/* The same rules and decay as reputation (user/detect/reputation.h):
 * a second in which the pair agreed and neither contradicted itself adds
 * HM_REP_CONSENSUS_OK, each contradiction subtracts HM_REP_CONTRADICTION,
 * and the score decays towards HM_REP_NEUTRAL with HM_REP_DECAY_HALF_LIFE_S.
 * A pair starts at neutral: nothing observed is neither trust nor distrust. */
#define HM_TRUST_AGREE_PER_S 0.01
#define HM_TRUST_CONTRADICTION -0.15
#define HM_TRUST_NEUTRAL 0.5
#define HM_TRUST_HALF_LIFE_S 300.0

struct hm_trust_pair {
	double score;                 /* [0, 1] */
	uint64_t agreements;          /* lifetime: votes or checkpoints that matched */
	uint64_t disagreements;       /* lifetime: contradictions charged to the pair */
};

struct hm_trust_graph {
	uint32_t n;
	/* symmetric: pair[a][b] and pair[b][a] are kept equal; the diagonal
	 * is unused (a replica agrees with itself) */
	struct hm_trust_pair pair[HM_MAX_REPLICAS][HM_MAX_REPLICAS];
};

void hm_trust_init(struct hm_trust_graph *g, uint32_t n);

/* Pull every score towards neutral for dt_s seconds. */
void hm_trust_decay(struct hm_trust_graph *g, double dt_s);

/* One step's observations of pair (a, b): agreements and disagreements
 * counted since the last step, span_s the step's length in seconds (at
 * most 1 counts: a long gap is one second, as for reputation).  Any
 * disagreement makes the step count against the pair, not for it. */
void hm_trust_observe(struct hm_trust_graph *g, uint32_t a, uint32_t b, uint64_t agreements,
		      uint64_t disagreements, double span_s);

/* The score of pair (a, b); 1 for a == b, 0 for an id outside the graph. */
double hm_trust_score(const struct hm_trust_graph *g, uint32_t a, uint32_t b);

/* True when every pair of distinct replicas among the n has a score at or
 * above threshold ("has every pair agreed lately?"): one distrusted pair
 * is enough to say no. */
bool hm_trust_all_above(const struct hm_trust_graph *g, double threshold);

/* The lowest score of any pair that includes replica r (1 if n < 2). */
double hm_trust_min_of(const struct hm_trust_graph *g, uint32_t r);

#endif /* HM_TRUST_GRAPH_H */
