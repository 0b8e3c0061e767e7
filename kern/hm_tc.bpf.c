// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * hm_tc: the TC egress dataplane.  Attach to a replica's egress device:
 *
 *   tc qdisc add dev eth0 clsact
 *   tc filter add dev eth0 egress bpf da obj build/hm_tc.bpf.o sec tc
 *
 * then fill hm_tc_config and hm_peers (layouts: headers/hm_tc.h).
 *
 * Fan-out.  The controller sends a broadcast ONCE: a HyperMesh message (MAC
 * field left zero, as hm_msg_build leaves it) in a UDP datagram to
 * hm_tc_config.fanout_addr, destination port hm_tc_config.port.  The marker
 * is a configured address rather than a flag in the packet so that the
 * controller needs nothing but an ordinary sendto(); headers/hm_tc.h explains
 * why the subnet broadcast address is the recommended marker.  For every
 * valid slot i of hm_peers, in id order, the program rewrites the packet in
 * place and redirects a clone of it:
 *
 *   Ethernet dst/src     <- hm_peers[i].dst_mac / src_mac
 *   IPv4 destination     <- hm_peers[i].addr   (IP checksum: l3_csum_replace;
 *                                               UDP checksum: pseudo-header)
 *   UDP destination port <- hm_peers[i].port   (UDP checksum)
 *   HyperMesh mac        <- SipHash-2-4 over header bytes [0, 128) under
 *                           hm_peers[i].tx_key     (UDP checksum, by diff)
 *   bpf_clone_redirect(skb, hm_peers[i].ifindex, 0)   (egress)
 *
 * and then drops the original (TC_ACT_SHOT).  The sender is told: the
 * transmit returns NET_XMIT_DROP, which a packet socket, or a UDP socket with
 * IP_RECVERR, sees as ENOBUFS (a plain UDP socket hides it).  Should the
 * controller want a clean return, TC_ACT_STOLEN (consumed, NET_XMIT_SUCCESS)
 * is the one-line alternative.  A clone redirected to a device
 * with this program on egress (the usual case: the same device) passes
 * through it once more as a point-to-point message to that peer, and
 * stamping it again writes the same MAC, so the second pass changes nothing.
 *
 * Point-to-point.  A HyperMesh datagram from the replica's own port
 * (hm_tc_config.port: other sockets on the host, such as a client, MAC their
 * own datagrams) whose IPv4 destination is a valid
 * peer's address, and whose destination port is that peer's port or
 * hm_tc_config.port, gets its MAC stamped under that peer's tx key and goes
 * on (TC_ACT_OK).  To the HyperMesh port but to nobody in hm_peers (a reply
 * to a client, say): passed unchanged, counted as unknown_dst.
 *
 * Checksums.  The UDP checksum is updated incrementally with
 * bpf_l4_csum_replace (BPF_F_PSEUDO_HDR for the address, which is part of the
 * pseudo-header; by a bpf_csum_diff for the 8 MAC bytes) rather than set to
 * zero, although zero ("no checksum") is legal for UDP over IPv4: on egress a
 * locally generated datagram is normally CHECKSUM_PARTIAL (the field holds
 * only the pseudo-header sum, the device or the stack completes it later
 * from the field), and a zeroed field would then be completed into a wrong
 * checksum.  bpf_l4_csum_replace does the right thing in both states: for
 * CHECKSUM_PARTIAL it adjusts the pseudo-header part only, otherwise the full
 * sum.  BPF_F_MARK_MANGLED_0 keeps a datagram sent without a checksum (0)
 * without one, and writes a computed 0 as 0xffff.
 *
 * What is a HyperMesh datagram here: Ethernet (no in-line VLAN tag; on egress
 * the tag normally lives in skb metadata), IPv4 with any IHL, UDP, the whole
 * fixed header (136 bytes) in the packet and consistent IP/UDP lengths, magic
 * and version right.  Not stampable and passed unchanged (counted as
 * not_handled): IP fragments and GSO packets (UDP_SEGMENT: several datagrams
 * in one skb).  Sent to the fan-out marker but not stampable: dropped, also
 * not_handled, because a copy cannot be made for each peer.  Everything
 * else, IPv6 included, passes untouched: IPv6 is not implemented.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "hm_wire.h"
#include "hm_tc.h"
#include "hm_siphash.h"

#define ETH_P_IP 0x0800
#define ETH_HLEN_ 14
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff
#define IPPROTO_UDP_NR 17
#define TC_ACT_OK_ 0
#define TC_ACT_SHOT_ 2

/* Offsets in an Ethernet + IPv4 frame. */
#define IP_OFF ETH_HLEN_
#define IP_CSUM_OFF (IP_OFF + 10)
#define IP_DADDR_OFF (IP_OFF + 16)
#define UDP_DPORT 2 /* from the UDP header */
#define UDP_CSUM 6

/* ---- maps ---------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hm_tc_config);
} hm_tc_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HM_MAX_REPLICAS);
	__type(key, __u32);
	__type(value, struct hm_tc_peer);
} hm_peers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hm_tc_stats);
} hm_tc_stats SEC(".maps");

/* ---- parse -------------------------------------------------------------- */

/* What the program tracks of the packet while it rewrites it. */
struct hm_tc_pkt {
	__u32 l4;          /* frame offset of the UDP header */
	__be32 daddr;      /* current IPv4 destination */
	__be16 dport;      /* current UDP destination port */
	__be16 sport;      /* UDP source port */
	__u32 mac[2];      /* current content of the mac field */
};

enum hm_tc_kind {
	HM_TC_OTHER = 0,   /* not UDP over IPv4 in Ethernet */
	HM_TC_UDP,         /* UDP over IPv4: daddr, dport, l4 filled */
};

/* UDP over IPv4: fill l4, daddr, dport, and the IP fields the checks need. */
static __always_inline int parse(struct __sk_buff *skb, struct hm_tc_pkt *p, __u16 *frag,
				 __u16 *ip_len, __u16 *udp_len, __u32 *ihl)
{
	struct ethhdr eth;
	struct iphdr ip;
	struct udphdr udp;

	if (bpf_skb_load_bytes(skb, 0, &eth, sizeof(eth)) < 0 ||
	    eth.h_proto != bpf_htons(ETH_P_IP))
		return HM_TC_OTHER;
	if (bpf_skb_load_bytes(skb, IP_OFF, &ip, sizeof(ip)) < 0)
		return HM_TC_OTHER;
	if (ip.version != 4 || ip.ihl < 5 || ip.protocol != IPPROTO_UDP_NR)
		return HM_TC_OTHER;
	*ihl = ip.ihl * 4;
	p->l4 = IP_OFF + *ihl;
	if (bpf_skb_load_bytes(skb, p->l4, &udp, sizeof(udp)) < 0)
		return HM_TC_OTHER;
	p->daddr = ip.daddr;
	p->dport = udp.dest;
	p->sport = udp.source;
	*frag = bpf_ntohs(ip.frag_off);
	*ip_len = bpf_ntohs(ip.tot_len);
	*udp_len = bpf_ntohs(udp.len);
	return HM_TC_UDP;
}

/* The datagram can be stamped: whole, unfragmented, not GSO, its fixed
 * header in the packet, magic and version right.  Loads the header. */
static __always_inline bool stampable(struct __sk_buff *skb, struct hm_tc_pkt *p, __u16 frag,
				      __u16 ip_len, __u16 udp_len, __u32 ihl, __u8 *hdr)
{
	const struct hm_hdr *h = (const void *)hdr;

	if (frag & (IP_MF | IP_OFFMASK))
		return false;
	if (skb->gso_size || skb->gso_segs > 1)
		return false;
	if (udp_len < sizeof(struct udphdr) + HM_HDR_LEN || (__u32)ip_len != ihl + udp_len ||
	    skb->len < IP_OFF + (__u32)ip_len)
		return false;
	if (bpf_skb_load_bytes(skb, p->l4 + sizeof(struct udphdr), hdr, HM_HDR_LEN) < 0)
		return false;
	if (h->magic != bpf_htonl(HM_MAGIC) || h->version != HM_VERSION)
		return false;
	__builtin_memcpy(p->mac, hdr + HM_OFF_MAC, HM_MAC_LEN);
	return true;
}

/* ---- rewrite ------------------------------------------------------------ */

/* Stamp the MAC over hdr[0, 128) under key, fixing the UDP checksum. */
static __noinline int stamp(struct __sk_buff *skb, struct hm_tc_pkt *p, const __u8 *hdr,
			    const __u8 *key)
{
	__u32 mac[2];
	__s64 diff;

	hm_siphash_store_le64((__u8 *)mac, hm_siphash24_128(key, hdr));
	if (mac[0] == p->mac[0] && mac[1] == p->mac[1])
		return 0;
	diff = bpf_csum_diff(p->mac, HM_MAC_LEN, mac, HM_MAC_LEN, 0);
	if (diff < 0)
		return -1;
	if (bpf_skb_store_bytes(skb, p->l4 + sizeof(struct udphdr) + HM_OFF_MAC, mac, HM_MAC_LEN,
				0) < 0)
		return -1;
	if (bpf_l4_csum_replace(skb, p->l4 + UDP_CSUM, 0, (__u32)diff, BPF_F_MARK_MANGLED_0) < 0)
		return -1;
	p->mac[0] = mac[0];
	p->mac[1] = mac[1];
	return 0;
}

/* Readdress the packet to peer: Ethernet, IPv4 destination, UDP port. */
static __always_inline int readdress(struct __sk_buff *skb, struct hm_tc_pkt *p,
				     const struct hm_tc_peer *peer)
{
	__u8 macs[12];
	__be32 addr = peer->addr;
	__be16 port = peer->port;

	__builtin_memcpy(macs, peer->dst_mac, 6);
	__builtin_memcpy(macs + 6, peer->src_mac, 6);
	if (bpf_skb_store_bytes(skb, 0, macs, sizeof(macs), 0) < 0)
		return -1;
	if (addr != p->daddr) {
		if (bpf_l3_csum_replace(skb, IP_CSUM_OFF, p->daddr, addr, sizeof(addr)) < 0 ||
		    bpf_l4_csum_replace(skb, p->l4 + UDP_CSUM, p->daddr, addr,
					BPF_F_PSEUDO_HDR | BPF_F_MARK_MANGLED_0 | sizeof(addr)) < 0 ||
		    bpf_skb_store_bytes(skb, IP_DADDR_OFF, &addr, sizeof(addr), 0) < 0)
			return -1;
		p->daddr = addr;
	}
	if (port != p->dport) {
		if (bpf_l4_csum_replace(skb, p->l4 + UDP_CSUM, p->dport, port,
					BPF_F_MARK_MANGLED_0 | sizeof(port)) < 0 ||
		    bpf_skb_store_bytes(skb, p->l4 + UDP_DPORT, &port, sizeof(port), 0) < 0)
			return -1;
		p->dport = port;
	}
	return 0;
}

/* ---- stats -------------------------------------------------------------- */

static __always_inline struct hm_tc_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&hm_tc_stats, &zero);
}

#define COUNT(field)                                                     \
	do {                                                             \
		struct hm_tc_stats *st_ = stats();                       \
		if (st_)                                                 \
			__sync_fetch_and_add(&st_->field, 1);            \
	} while (0)

/* ---- the program -------------------------------------------------------- */

/* The peer whose address is addr, or NULL. */
static __always_inline const struct hm_tc_peer *peer_by_addr(__be32 addr)
{
	const struct hm_tc_peer *peer;
	__u32 i;

	for (i = 0; i < HM_MAX_REPLICAS; i++) {
		__u32 k = i;

		peer = bpf_map_lookup_elem(&hm_peers, &k);
		if (peer && peer->valid && peer->addr == addr)
			return peer;
	}
	return NULL;
}

static __always_inline int fan_out(struct __sk_buff *skb, struct hm_tc_pkt *p, const __u8 *hdr)
{
	const struct hm_tc_peer *peer;
	__u32 i;

	COUNT(fanouts);
#pragma clang loop unroll(disable)
	for (i = 0; i < HM_MAX_REPLICAS; i++) {
		__u32 k = i;

		peer = bpf_map_lookup_elem(&hm_peers, &k);
		if (!peer || !peer->valid)
			continue;
		if (readdress(skb, p, peer) < 0 || stamp(skb, p, hdr, peer->tx_key) < 0 ||
		    bpf_clone_redirect(skb, peer->ifindex, 0) < 0) {
			COUNT(errors);
			continue;
		}
		COUNT(copies);
	}
	return TC_ACT_SHOT_;
}

SEC("tc")
int hm_tc_egress(struct __sk_buff *skb)
{
	const struct hm_tc_config *cfg;
	const struct hm_tc_peer *peer = NULL;
	struct hm_tc_pkt p = {};
	__u8 hdr[HM_HDR_LEN];
	__u16 frag = 0, ip_len = 0, udp_len = 0;
	__u32 zero = 0, ihl = 0;
	bool fanout;

	cfg = bpf_map_lookup_elem(&hm_tc_config, &zero);
	if (!cfg || !cfg->port)
		return TC_ACT_OK_;
	if (parse(skb, &p, &frag, &ip_len, &udp_len, &ihl) != HM_TC_UDP)
		return TC_ACT_OK_;

	fanout = cfg->fanout_addr && p.daddr == cfg->fanout_addr &&
		 p.dport == bpf_htons(cfg->port);
	if (!fanout) {
		/* Only the replica's own socket (its port) is ours to stamp: a
		 * client on the same host (the replica's DNS observation
		 * client, hmctl) MACs its requests under its own link keys. */
		if (p.sport != bpf_htons(cfg->port))
			return TC_ACT_OK_;
		peer = peer_by_addr(p.daddr);
		if (!peer || (p.dport != peer->port && p.dport != bpf_htons(cfg->port))) {
			if (p.dport == bpf_htons(cfg->port))
				COUNT(unknown_dst);
			return TC_ACT_OK_;
		}
	}
	if (!stampable(skb, &p, frag, ip_len, udp_len, ihl, hdr)) {
		COUNT(not_handled);
		return fanout ? TC_ACT_SHOT_ : TC_ACT_OK_;
	}
	if (fanout)
		return fan_out(skb, &p, hdr);
	if (!peer || stamp(skb, &p, hdr, peer->tx_key) < 0) {
		COUNT(errors);
		return TC_ACT_OK_;
	}
	COUNT(stamped);
	return TC_ACT_OK_;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
