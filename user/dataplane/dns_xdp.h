/* SPDX-License-Identifier: MIT */
/*
 * The controller of kern/hm_dns.bpf.c, the XDP DNS responder: load it,
 * configure it, and put it on the interface, pinning its answer and
 * statistics maps (with BTF, so `bpftool map dump pinned` names the fields)
 * in HM_PIN_ROOT/IFNAME/.
 *
 * How it shares the interface with the replica's hm_xdp: the kernel here
 * refuses freplace, so libxdp's dispatcher falls back to one program per
 * interface.  hm_xdp therefore tail-calls hm_dns (its hm_dns_tail program
 * array, slot 0) for every frame that is not a HyperMesh datagram; with
 * the slot empty the tail call falls through and the frame passes as
 * before.  One XDP program per interface, the replica's pre-filter
 * untouched, and hm_dns costs nothing on the replica's own traffic.  In
 * the socket dataplane there is no hm_xdp and hm_dns is attached alone
 * (native, else generic mode).
 */
#ifndef HM_DNS_XDP_CTL_H
#define HM_DNS_XDP_CTL_H

#include <net/if.h>
#include <stdbool.h>
#include <stdint.h>

#include "hm_dns_xdp.h"
#include "common/netprefix.h"

struct hm_dns_bpf;

struct hm_dns_xdp_opts {
	const char *ifname;    /* the interface (pins; attach when tail_fd < 0) */
	int tail_fd;           /* hm_xdp's hm_dns_tail, or -1: attach alone */
	uint16_t port;         /* DNS UDP port */
	uint32_t rrl_rate, rrl_burst, rrl_slip;
	uint8_t rrl_prefix4, rrl_prefix6;
	const struct hm_prefix *allow; /* dns.allow: the clients answered here */
	uint32_t n_allow;
};

struct hm_dns_xdp {
	struct hm_dns_bpf *skel;
	int ifindex;
	int tail_fd;           /* -1 when attached alone */
	uint32_t attach_flags; /* XDP_FLAGS_* when attached alone */
	const char *how;       /* "tail call from hm_xdp", "native", "skb" */
	char pin_dir[128];
	bool pinned;
	struct hm_dns_xdp_config cfg;
};

int hm_dns_xdp_open(struct hm_dns_xdp *x, const struct hm_dns_xdp_opts *o, char *err,
		    size_t errlen);
void hm_dns_xdp_close(struct hm_dns_xdp *x);
int hm_dns_xdp_answers_fd(const struct hm_dns_xdp *x);
/* Replace hm_dns_allow by these prefixes.  0 or -1 (errno). */
int hm_dns_xdp_set_allow(int allow_fd, const struct hm_prefix *list, uint32_t n);
/* Keep the program's wall clock (for TTLs) in step with CLOCK_REALTIME. */
void hm_dns_xdp_refresh_clock(struct hm_dns_xdp *x);
/* The per-CPU counters of the hm_dns_stats map stats_fd, summed.  0 or -1. */
int hm_dns_xdp_sum_stats(int stats_fd, struct hm_dns_xdp_stats *sum);
/* The per-CPU counters, summed.  0 or -1. */
int hm_dns_xdp_read_stats(const struct hm_dns_xdp *x, struct hm_dns_xdp_stats *sum);

#endif /* HM_DNS_XDP_CTL_H */
