/* SPDX-License-Identifier: MIT */
/*
 * Fault detection: per-peer NodeStatistics, the reputation rules and a
 * robust anomaly detector, as pure functions over samples of each peer's
 * cumulative counters.  No I/O and no clock: the caller passes the time, so
 * the same samples always give the same verdicts (and tests can replay
 * them).
 *
 * The verdicts here only ever lower *trust*.  Blocking is decided by
 * user/detect/policy.c on proof of misbehaviour alone (see docs/fault-detection.md):
 * a slow honest replica looks exactly like a "suspicious" one to every
 * statistic here, so none of them may cut it off.
 */
#ifndef HM_REPUTATION_H
#define HM_REPUTATION_H

#include <stdbool.h>
#include <stdint.h>

#include "hm_wire.h"

/* The seed's reputation rules. */
#define HM_REP_CONSENSUS_OK 0.01       /* a second it took part in consensus */
#define HM_REP_INVALID_SIGNATURE -0.10 /* each invalid signature */
#define HM_REP_TIMING_VIOLATION -0.05  /* each timing violation (or second late) */
#define HM_REP_CONTRADICTION -0.15     /* each contradictory response (equivocation) */
#define HM_REP_PARTITION -0.02         /* each partition event */
#define HM_REP_INITIAL 1.0
#define HM_REP_NEUTRAL 0.5             /* time decay pulls towards this */
#define HM_REP_DECAY_HALF_LIFE_S 300.0 /* ... with this half-life */
#define HM_REP_HISTORY_TAU_S 3600.0    /* the long-term average's time constant */
#define HM_REP_LOW 0.3                 /* below this, low reputation is an indicator */

/* The anomaly detector: robust z-score, 0.6745 (x - median) / MAD, against
 * the group (every replica, ourselves included).  A peer is anomalous when
 * |z| exceeds the threshold *and* it is off the median by more than an
 * absolute floor, so a tight group (MAD near 0) does not flag noise. */
#define HM_ANOMALY_Z 3.5
#define HM_ANOMALY_SILENCE_FLOOR_MS 250.0   /* latency: that much more silence */
#define HM_ANOMALY_PARTICIPATION_FLOOR 0.25 /* participation: that much less */

/* Indicators: each one a reason to suspect a peer.  The seed's rule: a
 * peer is judged Byzantine when at least two hold at once. */
enum hm_indicator {
	HM_IND_INVALID_SIGNATURE = 1 << 0, /* invalid signatures this interval */
	HM_IND_CONTRADICTION = 1 << 1,     /* equivocation this interval */
	HM_IND_TIMING = 1 << 2,            /* timing violations or latency anomaly */
	HM_IND_PARTICIPATION = 1 << 3,     /* in far fewer quorums than the group */
	HM_IND_PARTITION = 1 << 4,         /* its link went down this interval */
	HM_IND_LOW_REPUTATION = 1 << 5,    /* reputation below HM_REP_LOW */
	HM_IND_COUNT = 6,
};

const char *hm_indicator_name(unsigned bit_index);

/* One peer's cumulative counters at one moment (they only grow; a counter
 * that went down, e.g. after a restart, is taken as starting over). */
struct hm_peer_sample {
	uint64_t messages;            /* datagrams accepted from it */
	uint64_t faults;              /* datagrams from it dropped for any reason */
	uint64_t invalid_signatures;  /* MAC verified, signature did not */
	uint64_t timing_violations;   /* e.g. over its rate */
	uint64_t contradictions;      /* equivocations */
	uint64_t partitions;          /* link-down events towards it */
	uint64_t in_quorum;           /* quorums that counted its vote */
	uint64_t last_seen_us;        /* last accepted datagram, 0 = never */
};

/* The seed's NodeStatistics plus the reputation state. */
struct hm_node_statistics {
	double latency_ms;            /* message latency: EWMA of its silence
				       * (time since last seen) at each judge step */
	double response_accuracy;     /* accepted / (accepted + faulted) */
	double uptime;                /* intervals heard from / intervals judged */
	double signature_success;     /* 1 - invalid signatures / accepted, lifetime */
	double participation;         /* EWMA of in_quorum / quorums per interval */
	uint64_t last_seen_us;
	double reputation;            /* [0, 1] */
	double historical;            /* long-term average of reputation */
	uint32_t indicators;          /* enum hm_indicator bits of the last step */
	bool byzantine;               /* >= 2 indicators at the last step */
	/* bookkeeping */
	uint64_t intervals, intervals_seen;
	uint64_t timing_events;       /* timing violations charged (incl. anomalies) */
	double silence_ms;            /* this step's raw silence */
	double participation_now;     /* this step's raw participation, -1 = no quorums */
	struct hm_peer_sample prev;
	bool primed;                  /* prev holds a sample */
};

struct hm_reputation {
	uint32_t n, self;
	/* byzantine_config.fault_detection (hm_reputation_init sets the
	 * defaults): the low-reputation indicator holds below low_threshold;
	 * anomalies false skips the robust z-score detector (silence and
	 * participation), so only rate-limit drops make the timing indicator */
	double low_threshold;
	bool anomalies;
	uint64_t last_judged_us;      /* 0 = never */
	uint64_t quorums_prev;
	struct hm_node_statistics peer[HM_MAX_REPLICAS];
};

void hm_reputation_init(struct hm_reputation *r, uint32_t n, uint32_t self);

/*
 * One judge step at now_us: samples[i] for every replica i < n (samples[self]
 * is ignored but still takes part in the group statistics as a perfect
 * peer), quorums = quorums formed so far (cumulative).  Updates every peer's
 * statistics, indicators and reputation.  Returns the bitmap of peers judged
 * Byzantine at this step.
 */
hm_voters_t hm_reputation_judge(struct hm_reputation *r, const struct hm_peer_sample *samples,
			     uint64_t quorums, uint64_t now_us);

/* Median and robust z-scores (exported for the tests and the metrics). */
double hm_median(double *v, int n);              /* sorts v */
double hm_robust_z(double x, double median, double mad);
/* Indexes i with v[i] anomalous in the given direction (+1: high is bad,
 * -1: low is bad), as a bitmap; skip[] entries (value < 0) are ignored. */
hm_voters_t hm_anomalies(const double *v, int n, int direction, double floor);

/* The seed's per-event rule applied to a reputation (clamped to [0, 1]):
 * ok_seconds of taking part in consensus, timing violations (a second of
 * lateness counts as one). */
double hm_reputation_apply(double rep, double ok_seconds, uint64_t invalid_sigs, double timing,
			   uint64_t contradictions, uint64_t partitions);

#endif /* HM_REPUTATION_H */
