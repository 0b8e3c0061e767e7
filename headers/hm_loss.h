/* SPDX-License-Identifier: MIT */
/*
 * Map layouts of the loss and duplication injector (kern/hm_loss.bpf.c),
 * shared by the program, user/dataplane/loss.c (build/loss_ctl) and the tests.  Both
 * maps are BTF maps, so `bpftool map dump name hm_loss_rules` (and
 * hm_loss_stats) print these structs with field names.
 *
 * A UDP datagram (IPv4 or IPv6) that passes the program is compared with the
 * enabled rules in index order; the first that matches decides:
 *
 *   r = uniform in [0, 1000000)
 *   r <  drop_ppm                  dropped (TC_ACT_SHOT)
 *   r <  drop_ppm + dup_ppm        duplicated: a clone is sent to the same
 *                                  device in the same direction, then the
 *                                  original goes on
 *   otherwise                      passes
 *
 * so drop_ppm = 1000000 drops every matching packet and 0 none, exactly.
 * drop_ppm is capped at 1000000 and dup_ppm at 1000000 - drop_ppm.
 */
#ifndef HM_LOSS_H
#define HM_LOSS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define HM_LOSS_MAX_RULES 16
#define HM_LOSS_PPM 1000000u

/* skb->mark bit that tags the program's own clones, so that a clone passing
 * the program again (egress: at once; ingress: when it is received) is not
 * counted or duplicated again.  The program clears it from the clone and
 * restores the original's mark, so nothing downstream sees it. */
#define HM_LOSS_CLONE_MARK 0x20000000u

/* hm_loss_rules[i].  All-zero is an unused slot. */
struct hm_loss_rule {
	__u32 enabled;          /* 0: skipped */
	__u32 drop_ppm;         /* per million matching packets dropped */
	__u32 dup_ppm;          /* per million matching packets duplicated */
	__u8 family;            /* 4: IPv4 only, 6: IPv6 only, 0: both */
	__u8 match_addr;        /* 1: the destination must equal addr */
	__be16 dport;           /* UDP destination port, network order; 0: any */
	__u8 addr[16];          /* destination, network order; IPv4 in the first
				 * 4 bytes.  With match_addr, family must be 4
				 * or 6 (a rule with family 0 then never matches) */
};

/* hm_loss_stats[i]: what rule i did, updated with atomic adds. */
struct hm_loss_counters {
	__u64 seen;             /* matching packets */
	__u64 dropped;
	__u64 duplicated;       /* clones sent */
	__u64 dup_failed;       /* bpf_clone_redirect failed: passed once only */
};

#endif /* HM_LOSS_H */
