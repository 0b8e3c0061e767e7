// SPDX-License-Identifier: MIT
/* Running hm_vote_policy (kern/hm_xdp.bpf.c): one BPF_PROG_TEST_RUN per
 * call, the policy record as the packet (data_in), read back with its
 * outputs (result, events) from data_out.  Shared by the controller
 * (xdp_dataplane.c) and the BPF selftests. */
#ifndef HM_XDP_POLICY_H
#define HM_XDP_POLICY_H

#include <errno.h>
#include <bpf/bpf.h>
#include "hm_maps.h"

/* Runs the program on *a and writes its outputs back into *a.  Returns 0
 * and the program's return value in *retval (0: done, -1: refused), or -1
 * with errno set when the run itself failed. */
static inline int hm_vote_policy_run(int prog_fd, struct hm_vote_policy_args *a, __u32 *retval)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = a, .data_size_in = sizeof(*a), .data_out = a,
		    .data_size_out = sizeof(*a));

	if (bpf_prog_test_run_opts(prog_fd, &o) < 0)
		return -1;
	if (o.data_size_out != sizeof(*a)) {
		errno = EPROTO;
		return -1;
	}
	*retval = o.retval;
	return 0;
}

#endif /* HM_XDP_POLICY_H */
