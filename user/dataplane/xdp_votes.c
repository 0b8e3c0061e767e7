// SPDX-License-Identifier: MIT
/* The XDP maps as the node's vote counter (see xdp_votes.h). */
#include "dataplane/xdp_votes.h"

static int xv_vote(void *state, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		   uint32_t voter, const uint8_t digest[HM_DIGEST_LEN], const uint8_t sig[HM_SIG_LEN],
		   struct hm_vote_event *ev, enum hm_drop_reason *why)
{
	(void)state, (void)phase, (void)view, (void)seq, (void)voter, (void)digest, (void)sig;
	(void)ev, (void)why;
	return 0; /* XDP counted it and passed it up as a retransmission */
}

static size_t xv_policy(void *state, const struct pbft_vote_policy *v, struct hm_vote_event evs[2])
{
	(void)evs; /* its events come through the ring buffer */
	hm_xdp_dp_vote_policy(state, v);
	return 0;
}

static void xv_collect(void *state, uint64_t seq)
{
	hm_xdp_dp_collect(state, seq);
}

static void xv_window(void *state, uint64_t view, uint64_t low, uint64_t high)
{
	hm_xdp_dp_set_window(state, view, low, high);
}

static int xv_sigs(void *state, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		   hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN])
{
	return hm_xdp_dp_vote_sigs(state, phase, view, seq, voters, sigs);
}

static void xv_bind(void *state, hm_vote_event_fn on_event, void *ctx)
{
	struct hm_xdp_dp *dp = state;

	dp->on_event = on_event;
	dp->on_event_ctx = ctx;
}

static uint64_t xv_progress(void *state)
{
	struct hm_xdp_dp *dp = state;

	return hm_xdp_dp_progress(dp, dp->cfg.n);
}

static int xv_views(void *state, uint64_t views[HM_MAX_REPLICAS])
{
	struct hm_xdp_dp *dp = state;

	return hm_xdp_dp_max_views(dp, dp->cfg.n, views);
}

static const struct hm_vote_counter_ops xdp_vote_ops = {
	.vote = xv_vote,
	.policy = xv_policy,
	.collect = xv_collect,
	.window = xv_window,
	.sigs = xv_sigs,
	.bind = xv_bind,
	.progress = xv_progress,
	.views = xv_views,
};

void hm_xdp_vote_counter(struct hm_xdp_dp *dp, struct hm_vote_counter *vc)
{
	vc->ops = &xdp_vote_ops;
	vc->state = dp;
}
