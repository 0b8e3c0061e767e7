// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * hm_probe: the BPF build pipeline's proof (clang -target bpf, vmlinux.h,
 * bpftool gen skeleton, load on the running kernel).  It is not the dataplane:
 * it looks at HyperMesh datagrams, counts them and checks their link MAC, and
 * always returns XDP_PASS.
 *
 * A packet is a HyperMesh datagram when it is Ethernet + IPv4 (any IHL, first
 * or only fragment) or IPv6 (no extension headers) + UDP to hm_port.  For each
 * such datagram exactly one of these counters in probe_counts goes up:
 *
 *   [type]              magic, version and type are good (1..HM_MSG_TYPE_MAX)
 *   [0]                 malformed: shorter than the fixed header, wrong magic
 *                       or version, or type out of range
 *
 * and, for a well-formed one when probe_link_key holds a non-zero key, a MAC
 * that does not verify also counts at [HM_MSG_TYPE_MAX + 1].  Everything else
 * (ARP, other ports, frames too short for their IP/UDP headers) is not
 * counted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "hm_wire.h"
#include "hm_siphash.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff
#define IPPROTO_UDP_NR 17

#define HM_PROBE_MAC_FAIL (HM_MSG_TYPE_MAX + 1)
#define HM_PROBE_NCOUNTERS (HM_MSG_TYPE_MAX + 2)

/* UDP port of HyperMesh traffic, host order; set before load. */
const volatile __u16 hm_port = HM_DEFAULT_PORT;

struct hm_probe_key {
	__u8 key[HM_SIPHASH_KEY_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HM_PROBE_NCOUNTERS);
	__type(key, __u32);
	__type(value, __u64);
} probe_counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hm_probe_key);
} probe_link_key SEC(".maps");

static __always_inline void count(__u32 idx)
{
	__u64 *v = bpf_map_lookup_elem(&probe_counts, &idx);

	if (v)
		*v += 1; /* per-CPU slot: no atomics needed */
}

static __always_inline bool key_is_set(const struct hm_probe_key *k)
{
	__u64 a = hm_siphash_load_le64(k->key), b = hm_siphash_load_le64(k->key + 8);

	return (a | b) != 0;
}

/* Offset of the UDP header of a datagram to hm_port, or -1. */
static __always_inline int udp_offset(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;
	__u8 proto;

	if ((void *)(eth + 1) > data_end)
		return -1;

	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);
		__u32 ihl;

		if ((void *)(ip + 1) > data_end)
			return -1;
		ihl = ip->ihl * 4;
		if (ip->version != 4 || ihl < sizeof(*ip))
			return -1;
		if (ip->frag_off & bpf_htons(IP_OFFMASK))
			return -1; /* a later fragment: no UDP header here */
		proto = ip->protocol;
		udp = (void *)ip + ihl;
	} else if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		proto = ip6->nexthdr;
		udp = (void *)(ip6 + 1);
	} else {
		return -1;
	}
	if (proto != IPPROTO_UDP_NR)
		return -1;
	if ((void *)(udp + 1) > data_end)
		return -1;
	if (udp->dest != bpf_htons(hm_port))
		return -1;
	return (void *)udp - data;
}

SEC("xdp")
int hm_probe(struct xdp_md *ctx)
{
	/* The whole fixed header: [0, 128) is MACed, [128, 136) is the MAC. */
	__u8 hdr[HM_HDR_LEN];
	const struct hm_hdr *h = (const void *)hdr;
	const struct hm_probe_key *key;
	__u32 zero = 0, type;
	int off;

	off = udp_offset(ctx);
	if (off < 0)
		return XDP_PASS;

	/* bpf_xdp_load_bytes fails when the frame is shorter than the header,
	 * which is exactly the truncated case. */
	if (bpf_xdp_load_bytes(ctx, off + sizeof(struct udphdr), hdr, HM_HDR_LEN) < 0) {
		count(0);
		return XDP_PASS;
	}
	type = h->type;
	if (h->magic != bpf_htonl(HM_MAGIC) || h->version != HM_TYPE_VERSION(type) || type == 0 ||
	    type > HM_MSG_TYPE_MAX) {
		count(0);
		return XDP_PASS;
	}
	count(type);

	key = bpf_map_lookup_elem(&probe_link_key, &zero);
	if (key && key_is_set(key) &&
	    hm_siphash24_128(key->key, hdr) != hm_siphash_load_le64(hdr + HM_OFF_MAC))
		count(HM_PROBE_MAC_FAIL);
	return XDP_PASS;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
