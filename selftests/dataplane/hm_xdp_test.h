/* SPDX-License-Identifier: MIT */
/* Shared by the selftests of kern/hm_xdp.bpf.c: loading the skeleton and
 * the model of how one classified datagram moves node_stats. */
#ifndef HM_XDP_TEST_H
#define HM_XDP_TEST_H

#include <errno.h>
#include <string.h>

#include "hm_maps.h"
#include "hm_test.h"
#include "hm_xdp.skel.h"

/* Open and load hm_xdp; a load refused for lack of privileges fails the
 * test (it is not skipped). */
static inline struct hm_xdp_bpf *hm_xdp_open_load(void)
{
	struct hm_xdp_bpf *skel = hm_xdp_bpf__open();
	int err;

	if (!skel) {
		HM_FAIL("hm_xdp_bpf__open: %s", strerror(errno));
		return NULL;
	}
	err = hm_xdp_bpf__load(skel);
	if (err) {
		HM_FAIL("hm_xdp_bpf__load: %s%s", strerror(-err),
			(err == -EPERM || err == -EACCES)
				? " (loading BPF needs root: CAP_BPF and CAP_NET_ADMIN)"
				: "");
		hm_xdp_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

/* The counters one datagram moves, `why` being its drop reason or
 * HM_DROP_REASON_MAX when accepted; the timestamp is checked by callers. */
static inline void model_count(struct hm_node_stats *st, int why)
{
	st->total_messages++;
	if (why == HM_DROP_REASON_MAX) {
		st->consecutive_faults = 0;
		return;
	}
	hm_drops(st->drops)[why]++;
	st->consecutive_faults++;
	if (why == HM_DROP_NONCANONICAL_SIG)
		st->invalid_signatures++;
	if (why == HM_DROP_RATE_LIMITED)
		st->timing_violations++;
	if (why == HM_DROP_EQUIVOCATION)
		st->contradictory_responses++;
}

/* max_view_seen: a replica's normal-case message dropped as bad_view with
 * a view above the configured one raises it to that view. */
static inline void model_view(struct hm_node_stats *st, uint32_t idx, int why, uint64_t view,
			      uint64_t cfg_view)
{
	if (why == HM_DROP_BAD_VIEW && idx < HM_MAX_REPLICAS && view > cfg_view &&
	    view > st->max_view_seen)
		st->max_view_seen = view;
}

#endif /* HM_XDP_TEST_H */
