// SPDX-License-Identifier: MIT
/* The trust graph (see trust_graph.h). */
#include "detect/trust_graph.h"

#include <math.h>
#include <string.h>

void hm_trust_init(struct hm_trust_graph *g, uint32_t n)
{
	memset(g, 0, sizeof(*g));
	g->n = n < HM_MAX_REPLICAS ? n : HM_MAX_REPLICAS;
	for (uint32_t a = 0; a < HM_MAX_REPLICAS; a++)
		for (uint32_t b = 0; b < HM_MAX_REPLICAS; b++)
			g->pair[a][b].score = a == b ? 1 : HM_TRUST_NEUTRAL;
}

static double clamp01(double v)
{
	return v < 0 ? 0 : v > 1 ? 1 : v;
}

void hm_trust_decay(struct hm_trust_graph *g, double dt_s)
{
	double keep = dt_s > 0 ? exp2(-dt_s / HM_TRUST_HALF_LIFE_S) : 1;

	for (uint32_t a = 0; a < g->n; a++)
		for (uint32_t b = 0; b < g->n; b++)
			if (a != b)
				g->pair[a][b].score = HM_TRUST_NEUTRAL +
					(g->pair[a][b].score - HM_TRUST_NEUTRAL) * keep;
}

void hm_trust_observe(struct hm_trust_graph *g, uint32_t a, uint32_t b, uint64_t agreements,
		      uint64_t disagreements, double span_s)
{
	struct hm_trust_pair *p;
	double span = span_s > 0 && span_s < 1 ? span_s : 1;

	if (a >= g->n || b >= g->n || a == b)
		return;
	p = &g->pair[a][b];
	if (disagreements)
		p->score = clamp01(p->score + HM_TRUST_CONTRADICTION * (double)disagreements);
	else if (agreements)
		p->score = clamp01(p->score + HM_TRUST_AGREE_PER_S * span);
	p->agreements += agreements;
	p->disagreements += disagreements;
	g->pair[b][a] = *p;
}

double hm_trust_score(const struct hm_trust_graph *g, uint32_t a, uint32_t b)
{
	if (a >= g->n || b >= g->n)
		return 0;
	return a == b ? 1 : g->pair[a][b].score;
}

bool hm_trust_all_above(const struct hm_trust_graph *g, double threshold)
{
	for (uint32_t a = 0; a < g->n; a++)
		for (uint32_t b = a + 1; b < g->n; b++)
			if (g->pair[a][b].score < threshold)
				return false;
	return true;
}

double hm_trust_min_of(const struct hm_trust_graph *g, uint32_t r)
{
	double min = 1;

	for (uint32_t b = 0; r < g->n && b < g->n; b++)
		if (b != r && g->pair[r][b].score < min)
			min = g->pair[r][b].score;
	return min;
}
