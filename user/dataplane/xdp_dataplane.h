/* SPDX-License-Identifier: MIT */
/*
 * The XDP dataplane's controller side: loads kern/hm_xdp.bpf.c (XDP) and
 * kern/hm_tc.bpf.c (TC egress) through their skeletons and libxdp, attaches
 * them to one interface, pins their maps under
 * /sys/fs/bpf/hypermesh/<ifname>/, and keeps the policy maps in step with
 * the protocol: membership, address bindings and link keys, view and
 * watermarks, the vote slots' expectations and our own votes, the fan-out
 * peers.  What the kernel learnt (quorum and equivocation events from the
 * ring buffer, the stored vote signatures, how far each peer got) reaches
 * the node through the vote counter of dataplane/xdp_votes.c.
 *
 * A program attached by hand (`ip link set dev IF xdp obj hm_xdp.bpf.o sec
 * xdp`, `tc filter add dev IF egress prio 1 handle 1 bpf da obj hm_tc.bpf.o
 * sec tc`) is adopted: its maps are used and it stays attached on exit.
 */
#ifndef HM_XDP_DATAPLANE_H
#define HM_XDP_DATAPLANE_H

#include <net/if.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/config.h"
#include "hm_maps.h"
#include "hm_tc.h"
#include "core/pbft.h"

#define HM_PIN_ROOT "/sys/fs/bpf/hypermesh"

/* How the XDP program came to run on the interface. */
enum hm_xdp_attach {
	HM_XDP_NOT_ATTACHED = 0,
	HM_XDP_DISPATCHER,   /* libxdp's multi-program dispatcher (freplace) */
	HM_XDP_SINGLE,       /* alone: the kernel refused the dispatcher */
	HM_XDP_ADOPTED,      /* attached by hand before the daemon started */
};

struct hm_xdp_bpf;
struct hm_tc_bpf;
struct hm_nl;
struct xdp_program;
struct ring_buffer;

struct hm_xdp_dp {
	char ifname[IF_NAMESIZE];
	int ifindex;
	enum hm_xdp_attach how;
	const char *xdp_mode;          /* "native" or "skb" */
	bool tc_adopted;
	struct hm_xdp_bpf *skel;
	struct hm_tc_bpf *tc;
	struct xdp_program *xprog;     /* NULL when adopted */
	bool tc_hook_created;
	struct ring_buffer *events;
	char pin_dir[128];
	/* map fds (the skeletons' own, or the adopted program's) */
	int config_fd, members_fd, clients_fd, blocklist_fd, stats_fd, votes_fd, events_fd;
	int progress_fd, policy_fd, tc_config_fd, tc_peers_fd, tc_stats_fd;
	struct hm_xdp_config cfg;      /* what hm_config holds */
	hm_voters_t tc_peers;             /* bitmap: valid hm_peers slots */
	/* fan-out peers: where they are (libnl) and the keys TC stamps with */
	struct hm_nl *nl;
	const struct hm_config *config;
	uint8_t tx_keys[HM_MAX_REPLICAS][16];
	uint32_t peer_ifindex[HM_MAX_REPLICAS]; /* egress device, 0 = unresolved */
	uint64_t partitions[HM_MAX_REPLICAS];   /* link-down events per peer */
	uint64_t policy_errors;
	void (*on_event)(void *ctx, const struct hm_vote_event *ev);
	void *on_event_ctx;
};

/* The per-link keys the maps need, by replica id and by client. */
struct hm_xdp_keys {
	uint8_t rx[HM_MAX_REPLICAS][16];     /* sender -> us */
	uint8_t tx[HM_MAX_REPLICAS][16];     /* us -> peer */
	uint32_t n_clients;
	const uint32_t *client_ids;
	const uint8_t (*client_rx)[16];
};

/*
 * Load, attach and pin on cfg->interface, fill every policy map.  On error
 * returns -1 with a message in err that says what failed and why; nothing
 * stays attached or pinned.
 */
int hm_xdp_dp_open(struct hm_xdp_dp *dp, const struct hm_config *cfg, uint32_t self,
		   const struct hm_xdp_keys *keys, char *err, size_t errlen);
/* Detach what we attached, unpin, free.  Safe on a failed open. */
void hm_xdp_dp_close(struct hm_xdp_dp *dp);

/*
 * After a replica died without its shutdown (a crash, kill -9): detach
 * any hm_xdp and hm_tc_egress from ifname and remove its pins, whoever
 * attached them (hypermeshd --cleanup, the unit's ExecStopPost).  Needs
 * CAP_SYS_ADMIN to look attached programs up by id.  0 with what it did in
 * report, or -1 (no such interface).
 */
int hm_xdp_dp_cleanup(const char *ifname, char *report, size_t cap);

const char *hm_xdp_attach_name(enum hm_xdp_attach how);

/* The window the pre-filter enforces. */
int hm_xdp_dp_set_window(struct hm_xdp_dp *dp, uint64_t view, uint64_t low, uint64_t high);
/* A vote-policy entry from the core's Ready (expectation, own vote): run
 * through hm_vote_policy; events come through the ring buffer. */
int hm_xdp_dp_vote_policy(struct hm_xdp_dp *dp, const struct pbft_vote_policy *v);
/* Clear every vote slot at or below seq. */
int hm_xdp_dp_collect(struct hm_xdp_dp *dp, uint64_t seq);
/* The signatures of voters in the slot (phase, view, seq); -1 if the slot
 * holds something else now. */
int hm_xdp_dp_vote_sigs(struct hm_xdp_dp *dp, enum hm_vote_phase phase, uint64_t view,
			uint64_t seq, hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN]);

/* The ring buffer's fd (epoll it) and the consumer: calls dp->on_event for
 * every event that arrived.  Returns the number of events. */
int hm_xdp_dp_events_fd(const struct hm_xdp_dp *dp);
/* hm_xdp's tail call into the DNS responder (user/dataplane/dns_xdp.h). */
int hm_xdp_dp_dns_tail_fd(const struct hm_xdp_dp *dp);
int hm_xdp_dp_poll_events(struct hm_xdp_dp *dp);

/* The highest seq each replica named (hm_progress). */
uint64_t hm_xdp_dp_progress(struct hm_xdp_dp *dp, uint32_t n);
/* The highest view above ours each replica's normal-case messages named
 * (node_stats max_view_seen, 0: none): for view catch-up. */
int hm_xdp_dp_max_views(struct hm_xdp_dp *dp, uint32_t n, uint64_t views[HM_MAX_REPLICAS]);

/* Resolve every peer's route (libnl) into hm_peers; a peer without one is
 * left to userspace (no fan-out to it, MAC stamped in userspace).  Returns
 * the bitmap of peers the TC program serves. */
hm_voters_t hm_xdp_dp_refresh_peers(struct hm_xdp_dp *dp);
/* The netlink event socket (epoll it) and its handler: routes, neighbours
 * and links changed; a peer's egress link going down is a partition event
 * (counted in partitions[], logged).  Returns true when the peers changed. */
int hm_xdp_dp_netlink_fd(const struct hm_xdp_dp *dp);
bool hm_xdp_dp_netlink_events(struct hm_xdp_dp *dp);

/* Fan-out peer slot: valid with a route, or cleared (route = NULL). */
struct hm_xdp_route {
	uint32_t ifindex;
	uint8_t src_mac[6], dst_mac[6];
};
int hm_xdp_dp_set_peer(struct hm_xdp_dp *dp, uint32_t id, const struct sockaddr_in *addr,
		       const uint8_t tx_key[16], const struct hm_xdp_route *route);
/* The fan-out marker (broadcast address of the interface's subnet), or 0. */
uint32_t hm_xdp_dp_fanout_addr(const struct hm_xdp_dp *dp);
/* The egress offload the node needs (hm_node_set_egress): the fan-out
 * marker on `port` in *fanout (sin_port 0 when the interface has no
 * broadcast address), and the longest datagram TC can rewrite (MTU - 28;
 * 0, logged, when the MTU cannot be read). */
size_t hm_xdp_dp_egress(const struct hm_xdp_dp *dp, uint16_t port, struct sockaddr_in *fanout);

/* Block replica id in XDP until until_mono_ns (CLOCK_MONOTONIC, the clock
 * of bpf_ktime_get_ns; 0 = for ever), or lift it. */
int hm_xdp_dp_block(struct hm_xdp_dp *dp, uint32_t id, uint64_t until_mono_ns);
int hm_xdp_dp_unblock(struct hm_xdp_dp *dp, uint32_t id);

/* node_stats[i].reputation_score (0..1, stored as HM_REPUTATION_ONE
 * fixed point), written without disturbing the program's counters. */
int hm_xdp_dp_set_reputation(struct hm_xdp_dp *dp, uint32_t i, double reputation);

/* Per-sender counters (node_stats index i) and TC counters. */
int hm_xdp_dp_node_stats(struct hm_xdp_dp *dp, uint32_t i, struct hm_node_stats *out);
int hm_xdp_dp_tc_stats(struct hm_xdp_dp *dp, struct hm_tc_stats *out);

#endif /* HM_XDP_DATAPLANE_H */
