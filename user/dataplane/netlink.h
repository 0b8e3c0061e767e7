/* SPDX-License-Identifier: MIT */
/*
 * Peer resolution for the TC fan-out (struct hm_tc_peer): for a peer's IPv4
 * address, the egress device, its MAC and the next hop's MAC, taken from the
 * kernel's own route lookup (RTM_GETROUTE, so policy routing and gateways are
 * honoured) and neighbour table, and kept current by netlink events.
 * Built on libnl-3 / libnl-route-3.  Design notes: docs/netlink-and-loss.md.
 *
 * Typical use by the controller:
 *
 *   nl = hm_nl_open(err, sizeof(err));
 *   for each peer: hm_nl_resolve(nl, addr, &r, err, sizeof(err))
 *        0  -> write r into hm_peers
 *        1  -> pending: neighbour resolution was started; wait for an event
 *       -1  -> no usable route now (err says why); retry on an event
 *   poll(hm_nl_fd(nl)) readable -> hm_nl_process(nl, on_event, ctx)
 *   on_event: HM_NL_LINK_DOWN of a peer's ifindex -> partition; any event ->
 *             re-resolve the peers it concerns (or all of them: it is cheap).
 *
 * The fan-out bypasses the kernel's neighbour subsystem, so nothing else
 * confirms the entries it uses: call hm_nl_resolve for every peer now and
 * then (every few seconds); on a STALE entry that re-verifies it.
 */
#ifndef HM_NETLINK_H
#define HM_NETLINK_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hm_nl;

struct hm_nl_route {
	uint32_t ifindex;       /* egress device */
	uint8_t src_mac[6];     /* the egress device's MAC */
	uint8_t dst_mac[6];     /* the next hop's MAC (the gateway's if any) */
	uint32_t src_ipv4_be;   /* the source address the kernel would use */
	uint32_t gateway_be;    /* the gateway, 0 when the peer is on-link */
};

enum hm_nl_event_type {
	/* A next hop that hm_nl_resolve looked up changed: it was resolved,
	 * its MAC changed, it failed or it was deleted.  addr_be, ifindex;
	 * mac when mac_valid; failed when resolution failed or it is gone. */
	HM_NL_NEIGH_CHANGED = 1,
	HM_NL_LINK_DOWN,        /* ifindex, ifname: down, no carrier or deleted */
	HM_NL_LINK_UP,          /* ifindex, ifname: up and running again */
	HM_NL_ROUTE_CHANGED,    /* an IPv4 route or rule was added or removed */
	/* The kernel dropped events (socket overrun): state may have changed
	 * unseen; re-resolve every peer. */
	HM_NL_RESYNC,
};

struct hm_nl_event {
	enum hm_nl_event_type type;
	uint32_t ifindex;
	char ifname[IF_NAMESIZE];
	uint32_t addr_be;       /* HM_NL_NEIGH_CHANGED: the neighbour */
	bool mac_valid;
	bool failed;
	uint8_t mac[6];
};

typedef void (*hm_nl_event_fn)(void *ctx, const struct hm_nl_event *ev);

/* Open the request socket and the event socket (link, neighbour, IPv4 route
 * and rule groups).  NULL on failure, with err filled. */
struct hm_nl *hm_nl_open(char *err, size_t errlen);
void hm_nl_close(struct hm_nl *nl);

/* 0: resolved into *out; 1: pending (resolution of the next hop was
 * triggered, a HM_NL_NEIGH_CHANGED event will follow); -1: no usable route
 * (no route, not unicast, local, device down or without an Ethernet
 * address: err says which). */
int hm_nl_resolve(struct hm_nl *nl, uint32_t ipv4_be, struct hm_nl_route *out, char *err,
		  size_t errlen);

/* Start neighbour resolution with a datagram to the next hop's discard port
 * (9) instead of RTM_NEWNEIGH/NTF_USE.  resolve falls back to it by itself
 * when the kernel refuses NTF_USE; this forces it (the tests cover both). */
void hm_nl_use_udp_trigger(struct hm_nl *nl, bool on);

/* The event socket's descriptor: poll it for readability. */
int hm_nl_fd(const struct hm_nl *nl);

/* Read every pending event message (non-blocking) and call on_event for each
 * relevant change.  Returns the number of events delivered, or -1 on a
 * socket error (the handle stays usable). */
int hm_nl_process(struct hm_nl *nl, hm_nl_event_fn on_event, void *ctx);

const char *hm_nl_event_name(enum hm_nl_event_type t);

#endif /* HM_NETLINK_H */
