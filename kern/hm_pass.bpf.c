// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * hm_pass: XDP_PASS, nothing else.  For the switch side of the test
 * clusters' veth pairs (selftests/e2e/e2e_dns_xdp.sh, scripts/bench_dns.sh):
 * a veth hands the frames an XDP program sends back with XDP_TX (the DNS
 * responder, kern/hm_dns.bpf.c) to its peer only when the peer runs an XDP
 * program too; a physical NIC needs nothing of the kind.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

SEC("xdp")
int hm_pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
