/* SPDX-License-Identifier: MIT */
/*
 * Map layouts of the TC egress fan-out (kern/hm_tc.bpf.c), shared by the
 * program, the controller and the tests.  Every map is a BTF map, so
 * `bpftool map dump name hm_peers` shows these structs with field names.
 *
 * What the program does (details in kern/hm_tc.bpf.c):
 *
 *   fan-out         the controller sends a HyperMesh message ONCE, as a UDP
 *                   datagram to hm_tc_config.fanout_addr : hm_tc_config.port.
 *                   On egress the program clones it to every valid hm_peers
 *                   slot (Ethernet, IPv4 destination, UDP destination port
 *                   rewritten, MAC stamped under that peer's tx key) with
 *                   bpf_clone_redirect and drops the original.
 *   point-to-point  a HyperMesh message from hm_tc_config.port (the replica's
 *                   own socket; other sockets on the host MAC their own)
 *                   to hm_tc_config.port or to a peer's
 *                   port whose IPv4 destination is a valid peer's address
 *                   gets its MAC stamped for that peer and goes on.
 *   anything else   passes untouched.
 *
 * IPv4 only: hm_tc_peer holds an IPv4 address; IPv6 is not implemented.
 */
#ifndef HM_TC_H
#define HM_TC_H

#include "hm_maps.h"

/*
 * hm_tc_config[0].  port = 0 means "not configured": every packet passes.
 *
 * fanout_addr is the fan-out marker.  The recommended value is the
 * sending interface's IPv4 subnet broadcast address (e.g. 198.18.0.255 for
 * 198.18.0.0/24): the controller sends with SO_BROADCAST, the kernel needs no
 * neighbour entry to emit it, and should the program be missing, the
 * unstamped copy that reaches the segment fails every receiver's MAC check
 * rather than being accepted.  Any other address works too if it has a route
 * and a neighbour entry on the egress device (e.g. `ip neigh replace ADDR
 * lladdr 02:00:00:00:00:01 dev eth0 nud permanent`), because neighbour
 * resolution happens before the egress qdisc.  0 disables the fan-out.
 */
struct hm_tc_config {
	__u16 port;             /* HyperMesh UDP port, host order */
	__u16 pad0;
	__be32 fanout_addr;     /* IPv4 fan-out marker, network order; 0 = off */
	__u32 flags;            /* no bits defined yet; write 0 */
	__u32 pad1;
};

/* hm_peers[replica id]: where and how to send to each peer.  The
 * controller leaves its own slot invalid. */
struct hm_tc_peer {
	__u32 valid;            /* 0: no peer in this slot */
	__u32 ifindex;          /* egress device for this peer's copies */
	__u8 dst_mac[6];        /* the peer's (or the next hop's) MAC */
	__u8 src_mac[6];        /* the egress device's MAC */
	__be32 addr;            /* the peer's IPv4 address, network order */
	__be16 port;            /* the peer's UDP port, network order */
	__u16 pad;
	__u8 tx_key[16];        /* link key self -> peer (SipHash-2-4) */
};

/* hm_tc_stats[0], updated with atomic adds. */
struct hm_tc_stats {
	__u64 fanouts;          /* fan-out datagrams seen (originals dropped) */
	__u64 copies;           /* clones redirected successfully */
	__u64 errors;           /* a rewrite, stamp or clone_redirect failed */
	__u64 stamped;          /* point-to-point messages stamped */
	__u64 unknown_dst;      /* HyperMesh datagram to no peer: passed as is */
	__u64 not_handled;      /* to the HyperMesh port but not stampable
				 * (fragment, GSO, short, bad magic): passed,
				 * or dropped when sent to the fan-out marker */
};

#endif /* HM_TC_H */
