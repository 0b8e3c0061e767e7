// SPDX-License-Identifier: MIT
/* Per-peer statistics, reputation and anomaly detection (see reputation.h). */
#include "detect/reputation.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LATENCY_EWMA 0.3       /* weight of the newest silence sample */
#define PARTICIPATION_EWMA 0.3
#define MAD_EPSILON 1e-9       /* a MAD of 0 (identical peers) */

static const char *const indicator_names[HM_IND_COUNT] = {
	"invalid_signature", "contradiction", "timing", "participation", "partition",
	"low_reputation",
};

const char *hm_indicator_name(unsigned bit_index)
{
	return bit_index < HM_IND_COUNT ? indicator_names[bit_index] : "?";
}

void hm_reputation_init(struct hm_reputation *r, uint32_t n, uint32_t self)
{
	memset(r, 0, sizeof(*r));
	r->n = n < HM_MAX_REPLICAS ? n : HM_MAX_REPLICAS;
	r->self = self;
	r->low_threshold = HM_REP_LOW;
	r->anomalies = true;
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++) {
		struct hm_node_statistics *p = &r->peer[i];

		p->reputation = HM_REP_INITIAL;
		p->historical = HM_REP_INITIAL;
		p->response_accuracy = 1;
		p->signature_success = 1;
		p->uptime = 1;
		p->participation = -1;
		p->participation_now = -1;
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

double hm_median(double *v, int n)
{
	if (n <= 0)
		return 0;
	qsort(v, (size_t)n, sizeof(*v), cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

double hm_robust_z(double x, double median, double mad)
{
	return 0.6745 * (x - median) / (mad > MAD_EPSILON ? mad : MAD_EPSILON);
}

hm_voters_t hm_anomalies(const double *v, int n, int direction, double floor)
{
	double vals[HM_MAX_REPLICAS], dev[HM_MAX_REPLICAS], med, mad;
	int m = 0;
	hm_voters_t out = 0;

	for (int i = 0; i < n && i < HM_MAX_REPLICAS; i++)
		if (v[i] >= 0)
			vals[m++] = v[i];
	if (m < 3)
		return 0; /* no group to compare against */
	med = hm_median(vals, m);
	for (int i = 0; i < m; i++)
		dev[i] = fabs(vals[i] - med);
	mad = hm_median(dev, m);
	for (int i = 0; i < n && i < HM_MAX_REPLICAS; i++) {
		double off = direction * (v[i] - med);

		if (v[i] >= 0 && off > floor && direction * hm_robust_z(v[i], med, mad) > HM_ANOMALY_Z)
			out |= (hm_voters_t)(1u << i);
	}
	return out;
}

static double clamp01(double x)
{
	return x < 0 ? 0 : x > 1 ? 1 : x;
}

double hm_reputation_apply(double rep, double ok_seconds, uint64_t invalid_sigs, double timing,
			   uint64_t contradictions, uint64_t partitions)
{
	rep += HM_REP_CONSENSUS_OK * ok_seconds;
	rep += HM_REP_INVALID_SIGNATURE * (double)invalid_sigs;
	rep += HM_REP_TIMING_VIOLATION * timing;
	rep += HM_REP_CONTRADICTION * (double)contradictions;
	rep += HM_REP_PARTITION * (double)partitions;
	return clamp01(rep);
}

/* b - a for a cumulative counter; a counter that went back started over. */
static uint64_t grew(uint64_t now, uint64_t before)
{
	return now >= before ? now - before : now;
}

static struct hm_peer_sample sample_delta(const struct hm_peer_sample *s,
					  const struct hm_peer_sample *prev)
{
	return (struct hm_peer_sample){
		.messages = grew(s->messages, prev->messages),
		.faults = grew(s->faults, prev->faults),
		.invalid_signatures = grew(s->invalid_signatures, prev->invalid_signatures),
		.timing_violations = grew(s->timing_violations, prev->timing_violations),
		.contradictions = grew(s->contradictions, prev->contradictions),
		.partitions = grew(s->partitions, prev->partitions),
		.in_quorum = grew(s->in_quorum, prev->in_quorum),
	};
}

/* Lifetime ratios and the uptime, from the cumulative sample. */
static void update_rates(struct hm_node_statistics *p, const struct hm_peer_sample *s,
			 const struct hm_peer_sample *d)
{
	uint64_t seen = s->messages + s->faults;

	p->response_accuracy = seen ? (double)s->messages / (double)seen : 1;
	p->signature_success = s->messages + s->invalid_signatures
		? 1 - (double)s->invalid_signatures / (double)(s->messages + s->invalid_signatures)
		: 1;
	p->intervals++;
	if (d->messages || d->in_quorum)
		p->intervals_seen++;
	p->uptime = (double)p->intervals_seen / (double)p->intervals;
	if (s->last_seen_us > p->last_seen_us)
		p->last_seen_us = s->last_seen_us;
}

/* Reputation: time decay towards neutral, the seed's per-event rules, and
 * the long-term average. */
static void update_reputation(struct hm_node_statistics *p, const struct hm_peer_sample *d,
			      bool late, bool took_part, double dt_s)
{
	double alpha = 1 - exp(-dt_s / HM_REP_HISTORY_TAU_S);
	/* Step-long conditions (taking part, being late) count per second,
	 * so the judge interval does not change how fast reputation moves;
	 * a long gap between steps counts as one second at most.  A late or
	 * missing voter commits a timing violation per second of it; each
	 * rate-limit drop is one of its own. */
	double span = dt_s > 0 && dt_s < 1 ? dt_s : 1;
	double timing = (double)d->timing_violations + (late ? span : 0);
	bool clean = !d->invalid_signatures && !d->contradictions && !timing;

	p->reputation = HM_REP_NEUTRAL + (p->reputation - HM_REP_NEUTRAL) *
					     exp2(-dt_s / HM_REP_DECAY_HALF_LIFE_S);
	p->reputation = hm_reputation_apply(p->reputation, took_part && clean ? span : 0,
					    d->invalid_signatures, timing, d->contradictions,
					    d->partitions);
	p->historical += alpha * (p->reputation - p->historical);
	p->timing_events += timing ? 1 : 0;
}

static uint32_t indicators_of(const struct hm_reputation *r, const struct hm_node_statistics *p,
			      const struct hm_peer_sample *d, bool timing, bool low_participation)
{
	uint32_t ind = 0;

	if (d->invalid_signatures)
		ind |= HM_IND_INVALID_SIGNATURE;
	if (d->contradictions)
		ind |= HM_IND_CONTRADICTION;
	if (timing)
		ind |= HM_IND_TIMING;
	if (low_participation)
		ind |= HM_IND_PARTICIPATION;
	if (d->partitions)
		ind |= HM_IND_PARTITION;
	if (p->reputation < r->low_threshold)
		ind |= HM_IND_LOW_REPUTATION;
	return ind;
}

hm_voters_t hm_reputation_judge(struct hm_reputation *r, const struct hm_peer_sample *samples,
			     uint64_t quorums, uint64_t now_us)
{
	double silence[HM_MAX_REPLICAS], part[HM_MAX_REPLICAS];
	struct hm_peer_sample delta[HM_MAX_REPLICAS];
	uint64_t dq = grew(quorums, r->quorums_prev);
	double dt_s = r->last_judged_us && now_us > r->last_judged_us
		? (double)(now_us - r->last_judged_us) / 1e6 : 0;
	hm_voters_t slow, absent, byz = 0;

	/* Raw values of this step; ourselves left out of the group (our own
	 * vote always counts, we are never silent to ourselves). */
	for (uint32_t i = 0; i < r->n; i++) {
		struct hm_node_statistics *p = &r->peer[i];
		const struct hm_peer_sample *s = &samples[i];

		silence[i] = part[i] = -1;
		if (i == r->self)
			continue;
		delta[i] = sample_delta(s, &p->prev);
		if (s->last_seen_us && now_us >= s->last_seen_us)
			silence[i] = (double)(now_us - s->last_seen_us) / 1e3;
		else if (r->last_judged_us)
			silence[i] = p->silence_ms + dt_s * 1e3; /* never heard from */
		else
			silence[i] = 0;
		if (dq)
			part[i] = fmin(1, (double)delta[i].in_quorum / (double)dq);
	}
	slow = hm_anomalies(silence, (int)r->n, +1, HM_ANOMALY_SILENCE_FLOOR_MS);
	absent = hm_anomalies(part, (int)r->n, -1, HM_ANOMALY_PARTICIPATION_FLOOR);
	if (!r->anomalies)
		slow = absent = 0;
	for (uint32_t i = 0; i < r->n; i++) {
		struct hm_node_statistics *p = &r->peer[i];
		const struct hm_peer_sample *d = &delta[i];
		bool late = (slow | absent) >> i & 1;

		if (i == r->self)
			continue;
		p->silence_ms = silence[i];
		p->participation_now = part[i];
		p->latency_ms = p->primed ? p->latency_ms + LATENCY_EWMA * (silence[i] - p->latency_ms)
					  : silence[i];
		if (part[i] >= 0)
			p->participation = p->participation < 0 ? part[i]
				: p->participation + PARTICIPATION_EWMA * (part[i] - p->participation);
		update_rates(p, &samples[i], d);
		update_reputation(p, d, late, d->in_quorum || (!dq && d->messages), dt_s);
		p->indicators = indicators_of(r, p, d, d->timing_violations || (slow >> i & 1),
					      absent >> i & 1);
		p->byzantine = __builtin_popcount(p->indicators) >= 2;
		if (p->byzantine)
			byz |= (hm_voters_t)(1u << i);
		p->prev = samples[i];
		p->primed = true;
	}
	r->quorums_prev = quorums;
	r->last_judged_us = now_us;
	return byz;
}
