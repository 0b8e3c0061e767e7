// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * hm_loss: packet loss and duplication injection for the fault suite, since
 * this machine has no sch_netem.  Attach on either side of a link:
 *
 *   tc qdisc add dev eth0 clsact
 *   tc filter add dev eth0 egress  bpf da obj build/hm_loss.bpf.o sec tc
 *   tc filter add dev eth0 ingress bpf da obj build/hm_loss.bpf.o sec tc
 *
 * then write rules into hm_loss_rules (build/loss_ctl, or bpftool map
 * update; layouts and semantics: headers/hm_loss.h).  With no rule enabled
 * every packet passes untouched.
 *
 * Matching: Ethernet (at most one 802.1Q/802.1ad tag in the frame), IPv4
 * (any IHL; first fragments and unfragmented datagrams only: a later
 * fragment has no UDP header) or IPv6 (UDP directly after the fixed header:
 * extension headers are not walked), UDP, then the rule's family,
 * destination address and destination port.  A GSO packet (UDP_SEGMENT) is
 * one decision for all its segments.  Anything else passes untouched.
 *
 * Randomness: bpf_get_prandom_u32() scaled to [0, 1000000) by multiply and
 * shift, so 0 and 1000000 ppm are exact and the bias is below 2.4e-4 of the
 * rate.
 *
 * Duplication: bpf_clone_redirect to the device the packet is on, in the
 * direction it travels.  The program cannot be told which hook it is on, so
 * it infers it: on ingress the kernel has set skb->ingress_ifindex to the
 * receiving device, so ingress_ifindex == ifindex; on egress it is 0 for
 * locally sent packets or the input device of a forwarded one.  Only a
 * packet forwarded out of the device it came in on (hairpin routing) is
 * misjudged; its duplicate is then delivered locally instead of sent.
 * The clone carries HM_LOSS_CLONE_MARK in skb->mark so that its own pass
 * through this program (at once on egress, on reception on ingress) lets it
 * through untouched and uncounted, with the bit cleared.
 *
 * Delay and reordering are not implemented (out of scope: a TC program
 * cannot hold a packet; an EDT qdisc such as fq with skb->tstamp could).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "hm_loss.h"

#define ETH_P_IP_ 0x0800
#define ETH_P_IPV6_ 0x86DD
#define ETH_P_8021Q_ 0x8100
#define ETH_P_8021AD_ 0x88A8
#define IPPROTO_UDP_ 17
#define IP_OFFMASK_ 0x1fff
#define TC_ACT_OK_ 0
#define TC_ACT_SHOT_ 2
#define BPF_F_INGRESS_ 1

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HM_LOSS_MAX_RULES);
	__type(key, __u32);
	__type(value, struct hm_loss_rule);
} hm_loss_rules SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HM_LOSS_MAX_RULES);
	__type(key, __u32);
	__type(value, struct hm_loss_counters);
} hm_loss_stats SEC(".maps");

/* What a rule is matched against. */
struct pkt {
	__u8 family;            /* 4 or 6 */
	__be16 dport;
	__u32 daddr[4];         /* IPv4: daddr[0] */
};

/* Parse Ethernet [+ tag] + IPv4/IPv6 + UDP.  0 if it is a UDP datagram with
 * its header in the packet, -1 otherwise. */
static __always_inline int parse(struct __sk_buff *skb, struct pkt *p)
{
	__u32 off = 12, l4;
	__be16 proto;
	__u8 b[2];

	if (bpf_skb_load_bytes(skb, off, &proto, 2) < 0)
		return -1;
	off += 2;
	if (proto == bpf_htons(ETH_P_8021Q_) || proto == bpf_htons(ETH_P_8021AD_)) {
		if (bpf_skb_load_bytes(skb, off + 2, &proto, 2) < 0)
			return -1;
		off += 4;
	}
	if (proto == bpf_htons(ETH_P_IP_)) {
		struct iphdr ip;

		if (bpf_skb_load_bytes(skb, off, &ip, sizeof(ip)) < 0)
			return -1;
		if (ip.version != 4 || ip.ihl < 5 || ip.protocol != IPPROTO_UDP_ ||
		    (ip.frag_off & bpf_htons(IP_OFFMASK_)))
			return -1;
		p->family = 4;
		p->daddr[0] = ip.daddr;
		l4 = off + ip.ihl * 4;
	} else if (proto == bpf_htons(ETH_P_IPV6_)) {
		struct ipv6hdr ip6;

		if (bpf_skb_load_bytes(skb, off, &ip6, sizeof(ip6)) < 0)
			return -1;
		if (ip6.version != 6 || ip6.nexthdr != IPPROTO_UDP_)
			return -1;
		p->family = 6;
		__builtin_memcpy(p->daddr, &ip6.daddr, 16);
		l4 = off + sizeof(ip6);
	} else {
		return -1;
	}
	/* The whole UDP header must be there, not only the port. */
	if (bpf_skb_load_bytes(skb, l4 + 2, &p->dport, 2) < 0 ||
	    bpf_skb_load_bytes(skb, l4 + 6, b, 2) < 0)
		return -1;
	return 0;
}

static __always_inline bool matches(const struct hm_loss_rule *r, const struct pkt *p)
{
	__u32 a[4];

	if (!r->enabled || (r->family && r->family != p->family))
		return false;
	if (r->dport && r->dport != p->dport)
		return false;
	if (!r->match_addr)
		return true;
	if (r->family != p->family)
		return false; /* an address needs a family */
	__builtin_memcpy(a, r->addr, 16);
	if (p->family == 4)
		return a[0] == p->daddr[0];
	return a[0] == p->daddr[0] && a[1] == p->daddr[1] && a[2] == p->daddr[2] &&
	       a[3] == p->daddr[3];
}

static __always_inline int decide(struct __sk_buff *skb, const struct hm_loss_rule *r,
				  struct hm_loss_counters *c)
{
	__u32 drop = r->drop_ppm, dup = r->dup_ppm, x, mark;
	long err;

	if (drop > HM_LOSS_PPM)
		drop = HM_LOSS_PPM;
	if (dup > HM_LOSS_PPM - drop)
		dup = HM_LOSS_PPM - drop;
	x = (__u32)(((__u64)bpf_get_prandom_u32() * HM_LOSS_PPM) >> 32);
	__sync_fetch_and_add(&c->seen, 1);
	if (x < drop) {
		__sync_fetch_and_add(&c->dropped, 1);
		return TC_ACT_SHOT_;
	}
	if (x < drop + dup) {
		mark = skb->mark;
		skb->mark = mark | HM_LOSS_CLONE_MARK;
		err = bpf_clone_redirect(skb, skb->ifindex,
					 skb->ingress_ifindex == skb->ifindex ? BPF_F_INGRESS_ : 0);
		skb->mark = mark;
		if (err)
			__sync_fetch_and_add(&c->dup_failed, 1);
		else
			__sync_fetch_and_add(&c->duplicated, 1);
	}
	return TC_ACT_OK_;
}

SEC("tc")
int hm_loss(struct __sk_buff *skb)
{
	struct pkt p = {};

	/* Our own clone, back in the program: let it through as it was. */
	if (skb->mark & HM_LOSS_CLONE_MARK) {
		skb->mark &= ~HM_LOSS_CLONE_MARK;
		return TC_ACT_OK_;
	}
	if (parse(skb, &p) < 0)
		return TC_ACT_OK_;
	for (__u32 i = 0; i < HM_LOSS_MAX_RULES; i++) {
		__u32 k = i;
		struct hm_loss_rule *r = bpf_map_lookup_elem(&hm_loss_rules, &k);
		struct hm_loss_counters *c;

		if (!r || !matches(r, &p))
			continue;
		c = bpf_map_lookup_elem(&hm_loss_stats, &k);
		if (!c)
			return TC_ACT_OK_;
		return decide(skb, r, c);
	}
	return TC_ACT_OK_;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
