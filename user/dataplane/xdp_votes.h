/* SPDX-License-Identifier: MIT */
/*
 * The XDP dataplane's vote counter behind the node's vote-counter interface
 * (core/vote_counter.h).  The kernel (kern/hm_xdp.bpf.c) counted every vote
 * before userspace saw it, so a vote the node hands over is taken without
 * more ado; the Ready's vote policy and window become map writes
 * (hm_vote_policy, hm_config), slots are cleared in the map, signatures are
 * read from it, events arrive later from the ring buffer and progress from
 * hm_progress.  Everything it does goes through the controller
 * (dataplane/xdp_dataplane.c), which it does not own.
 */
#ifndef HM_XDP_VOTES_H
#define HM_XDP_VOTES_H

#include "core/vote_counter.h"
#include "dataplane/xdp_dataplane.h"

/* The counter over dp (opened, and kept open for as long as the counter is
 * in use: destroying the counter leaves dp alone). */
void hm_xdp_vote_counter(struct hm_xdp_dp *dp, struct hm_vote_counter *vc);

#endif /* HM_XDP_VOTES_H */
