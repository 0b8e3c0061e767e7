// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * hm_xdp: the XDP dataplane, part one: parse and pre-filter.  It makes the
 * checks of the userspace pre-filter (user/replica/node.c, hm_node_receive and
 * authenticate; docs/wire-format.md steps 0-5) with the same drop reasons,
 * drops what fails (XDP_DROP) and passes the rest (XDP_PASS).  Part two
 * counts the PREPAREs and COMMITs that pass into hm_votes, by the slot rules
 * of headers/hm_vote_slot.h that hm_quorum_vote (user/core/quorum.c) runs
 * too, and consumes them (see "votes" below).
 *
 * Which packets are HyperMesh datagrams: Ethernet, optionally one 802.1Q tag,
 * then IPv4 (any IHL; a later fragment is not) or IPv6 (UDP right after the
 * fixed header; extension headers are not parsed), then a complete UDP header
 * whose destination port is hm_config.port.  Anything else, including a frame
 * cut before the end of its UDP header, passes untouched and is not counted.
 *
 * Every HyperMesh datagram is counted in node_stats under its claimed sender
 * and is either accepted or dropped for exactly one reason, checked in this
 * order:
 *
 *   blocked          the sender (readable when 12 datagram bytes are in the
 *                    frame) is in hm_blocklist and the entry has not expired
 *   bad_length       the UDP length is below 8, or disagrees with the IP
 *                    length (for a first fragment: is below it), or the IP
 *                    length claims more bytes than the frame holds.  So a
 *                    frame cut anywhere after its UDP header is bad_length.
 *   truncated        fewer than 136 datagram bytes in this packet (for a
 *                    first fragment: the fixed header is not all in it)
 *   bad_magic, bad_type, oversize, bad_length
 *                    hm_msg_decode (user/common/wire.c) on the datagram, whose
 *                    length is the UDP length - 8
 *   identity         a member (< n, valid, not us): bad_address, bad_mac,
 *                    rate_limited, malformed; a client: bad_mac,
 *                    rate_limited, malformed; otherwise unknown_sender
 *   bad_view, out_of_window   PRE_PREPARE, PREPARE and COMMIT only
 *   noncanonical_sig the signature's S is not below the group order
 *
 * Votes.  With hm_config.window in 1..HM_XDP_VOTE_WINDOW_MAX, a PREPARE or
 * COMMIT that passed all of the above is counted in its slot and then
 * dropped (XDP_DROP: consumed, the controller learns the outcome from the
 * slot and from hm_events), with one more possible outcome:
 *
 *   malformed        a PREPARE from the view's primary (view % n)
 *   stale            older (view, seq) than the slot holds
 *   duplicate        the voter already voted this digest (absorbed)
 *   equivocation     the voter already voted another digest: also
 *                    contradictory_responses, and an HM_EV_EQUIVOCATION event
 *   accepted         recorded; HM_EV_QUORUM when it completes the quorum
 *
 * With window 0 (or too large) votes pass up as before, uncounted.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "hm_wire.h"
#include "hm_maps.h"
#include "hm_siphash.h"
#include "hm_vote_slot.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define ETH_P_8021Q 0x8100
#define IP_MF 0x2000
#define IP_OFFMASK 0x1fff
#define IPPROTO_UDP_NR 17
#define NSEC_PER_SEC 1000000000ULL

/* ---- maps ---------------------------------------------------------------- */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hm_xdp_config);
} hm_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HM_MAX_REPLICAS);
	__type(key, __u32);
	__type(value, struct hm_xdp_member);
} hm_members SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HM_XDP_MAX_CLIENTS);
	__type(key, __u32);
	__type(value, struct hm_xdp_client);
} hm_clients SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HM_XDP_MAX_BLOCKED);
	__type(key, __u32);
	__type(value, __u64); /* expiry, bpf_ktime_get_ns(); 0 = forever */
} hm_blocklist SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, HM_MAX_REPLICAS);
	__type(key, __u32);
	__type(value, struct hm_xdp_bucket);
} hm_rate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_PERCPU_HASH);
	__uint(max_entries, HM_XDP_MAX_CLIENTS);
	__type(key, __u32);
	__type(value, struct hm_xdp_bucket);
} hm_client_rate SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HM_XDP_NSTATS);
	__type(key, __u32);
	__type(value, struct hm_node_stats);
} node_stats SEC(".maps");

/* The vote slots, (seq % window) * HM_PHASE_MAX + phase; see hm_maps.h. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HM_XDP_VOTE_SLOTS);
	__type(key, __u32);
	__type(value, struct hm_xdp_vote_slot);
} hm_votes SEC(".maps");

/* struct hm_vote_event records. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, HM_XDP_EVENTS_BYTES);
} hm_events SEC(".maps");

/* hm_progress[replica id]: the highest seq named by a message from that
 * replica that passed the identity checks (pbft_observe_seq()'s input: a
 * replica whose window is behind learns it from here, since XDP drops the
 * out-of-window messages that would have told it). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, HM_MAX_REPLICAS);
	__type(key, __u32);
	__type(value, __u64);
} hm_progress SEC(".maps");

/* The DNS responder (kern/hm_dns.bpf.c), when the controller installs it
 * in slot 0: every frame that is not a HyperMesh datagram goes there (one
 * XDP program per interface: the kernel refuses libxdp's dispatcher).  An
 * empty slot makes the tail call fall through: the frame passes. */
struct {
	__uint(type, BPF_MAP_TYPE_PROG_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} hm_dns_tail SEC(".maps");

/* Events that did not fit in hm_events (the slot's state still has them:
 * quorum_sent is set, the equivocation is in contradictory_responses). */
__u64 hm_events_lost = 0;

/* ---- parse: Ethernet / VLAN / IP / UDP ------------------------------------ */

/* What parse() learns about a datagram to the HyperMesh port.  Lengths are
 * signed so that a lying IP header cannot wrap them. */
struct hm_pkt {
	__u32 hm_off;      /* frame offset of the HyperMesh header */
	__s32 frame_l4;    /* frame bytes from the UDP header to the end */
	__s32 ip_l4;       /* bytes the IP header says follow it */
	__s32 udp_len;     /* the UDP length field */
	bool first_frag;   /* IPv4 more-fragments set: the datagram continues */
	__u32 family;      /* HM_AF_INET or HM_AF_INET6 */
	__u64 saddr[2];    /* source address, laid out as hm_xdp_member.addr */
	__be16 sport;
};

/* Offset of the L3 header and its ethertype (network order), or -1. */
static __always_inline int parse_eth(void *data, void *data_end, __be16 *proto)
{
	struct ethhdr *eth = data;
	struct vlan_hdr *vlan;

	if ((void *)(eth + 1) > data_end)
		return -1;
	*proto = eth->h_proto;
	if (*proto != bpf_htons(ETH_P_8021Q))
		return sizeof(*eth);
	vlan = (void *)(eth + 1);
	if ((void *)(vlan + 1) > data_end)
		return -1;
	*proto = vlan->h_vlan_encapsulated_proto;
	return sizeof(*eth) + sizeof(*vlan);
}

/* IPv4: offset of the UDP header, or -1 (not UDP, a later fragment, cut). */
static __always_inline int parse_ipv4(void *data, void *data_end, int l3, struct hm_pkt *p)
{
	struct iphdr *ip = data + l3;
	int ihl;

	if ((void *)(ip + 1) > data_end)
		return -1;
	ihl = ip->ihl * 4;
	if (ip->version != 4 || ihl < (int)sizeof(*ip) || ip->protocol != IPPROTO_UDP_NR)
		return -1;
	if (ip->frag_off & bpf_htons(IP_OFFMASK))
		return -1; /* a later fragment: no UDP header here */
	p->first_frag = !!(ip->frag_off & bpf_htons(IP_MF));
	p->ip_l4 = (int)bpf_ntohs(ip->tot_len) - ihl;
	p->family = HM_AF_INET;
	p->saddr[0] = 0;
	p->saddr[1] = 0;
	__builtin_memcpy(p->saddr, &ip->saddr, sizeof(ip->saddr));
	return l3 + ihl;
}

/* IPv6: offset of the UDP header, or -1 (next header is not UDP, cut). */
static __always_inline int parse_ipv6(void *data, void *data_end, int l3, struct hm_pkt *p)
{
	struct ipv6hdr *ip6 = data + l3;

	if ((void *)(ip6 + 1) > data_end)
		return -1;
	if (ip6->version != 6 || ip6->nexthdr != IPPROTO_UDP_NR)
		return -1;
	p->first_frag = false;
	p->ip_l4 = bpf_ntohs(ip6->payload_len);
	p->family = HM_AF_INET6;
	__builtin_memcpy(p->saddr, &ip6->saddr, sizeof(p->saddr));
	return l3 + sizeof(*ip6);
}

/* True when the frame holds a whole UDP header to `port`; fills *p. */
static __always_inline bool parse(struct xdp_md *ctx, __u16 port, struct hm_pkt *p)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct udphdr *udp;
	__be16 proto;
	int l3, l4;

	l3 = parse_eth(data, data_end, &proto);
	if (l3 < 0)
		return false;
	if (proto == bpf_htons(ETH_P_IP))
		l4 = parse_ipv4(data, data_end, l3, p);
	else if (proto == bpf_htons(ETH_P_IPV6))
		l4 = parse_ipv6(data, data_end, l3, p);
	else
		return false;
	if (l4 < 0 || l4 > 18 + 60)
		return false;
	udp = data + l4;
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(port))
		return false;
	p->sport = udp->source;
	p->udp_len = bpf_ntohs(udp->len);
	p->frame_l4 = (int)(data_end - (void *)udp);
	p->hm_off = l4 + sizeof(*udp);
	return true;
}

/* ---- sender and blocklist ----------------------------------------------- */

/* The claimed sender, when 12 datagram bytes are in the frame, inside both
 * the IP packet and the UDP datagram. */
static __always_inline bool read_sender(struct xdp_md *ctx, const struct hm_pkt *p, __u32 *sender)
{
	__s32 seen = p->frame_l4;
	__be32 be;

	if (p->ip_l4 < seen)
		seen = p->ip_l4;
	if (p->udp_len < seen)
		seen = p->udp_len;
	if (seen - (__s32)sizeof(struct udphdr) < HM_OFF_SENDER + 4)
		return false;
	if (bpf_xdp_load_bytes(ctx, p->hm_off + HM_OFF_SENDER, &be, sizeof(be)) < 0)
		return false;
	*sender = bpf_ntohl(be);
	return true;
}

/* node_stats index of a claimed sender, as claimed_sender_stats() does. */
static __always_inline __u32 stats_index(const struct hm_xdp_config *cfg, __u32 sender)
{
	if (sender < cfg->n && sender < HM_MAX_REPLICAS)
		return sender;
	if (bpf_map_lookup_elem(&hm_clients, &sender))
		return HM_XDP_STATS_CLIENTS;
	return HM_XDP_STATS_UNKNOWN;
}

static __always_inline bool is_blocked(__u32 sender)
{
	__u64 *expiry = bpf_map_lookup_elem(&hm_blocklist, &sender);

	return expiry && (*expiry == 0 || bpf_ktime_get_ns() < *expiry);
}

/* ---- framing: as hm_msg_decode ------------------------------------------ */

/* UDP and IP lengths agree with each other and with the frame. */
static __always_inline __u32 check_lengths(const struct hm_pkt *p)
{
	if (p->udp_len < (__s32)sizeof(struct udphdr) || p->ip_l4 > p->frame_l4)
		return HM_DROP_BAD_LENGTH;
	if (p->first_frag ? p->udp_len < p->ip_l4 : p->udp_len != p->ip_l4)
		return HM_DROP_BAD_LENGTH;
	/* Datagram bytes in this packet: the whole fixed header must be. */
	if (p->ip_l4 - (__s32)sizeof(struct udphdr) < HM_HDR_LEN)
		return HM_DROP_TRUNCATED;
	return HM_ACCEPT;
}

static __always_inline __u32 check_frame(const struct hm_xdp_config *cfg, const struct hm_hdr *h,
					 __u32 dlen)
{
	if (h->magic != bpf_htonl(HM_MAGIC) || h->version != HM_TYPE_VERSION(h->type))
		return HM_DROP_BAD_MAGIC;
	if (h->type < HM_MSG_REQUEST || h->type > HM_MSG_TYPE_MAX ||
	    (h->flags & ~bpf_htons(HM_FLAGS_KNOWN)))
		return HM_DROP_BAD_TYPE;
	if (dlen > cfg->max_message_size)
		return HM_DROP_OVERSIZE;
	if (bpf_ntohl(h->payload_len) != dlen - HM_HDR_LEN)
		return HM_DROP_BAD_LENGTH;
	return HM_ACCEPT;
}

/* ---- identity: address, MAC, rate, type --------------------------------- */

static __always_inline bool same_address(const struct hm_xdp_member *m, const struct hm_pkt *p)
{
	__u64 a[2];

	__builtin_memcpy(a, m->addr, sizeof(a));
	return m->family == p->family && a[0] == p->saddr[0] && a[1] == p->saddr[1] &&
	       m->port == p->sport;
}

static __always_inline bool mac_ok(const __u8 *key, const __u8 *hdr)
{
	return hm_siphash24_128(key, hdr) == hm_siphash_load_le64(hdr + HM_OFF_MAC);
}

/* Token bucket: `rate` tokens a second, a burst of one second (take_token()
 * in user/replica/node.c, in integer units of 1e-9 token). */
static __always_inline bool take_token(struct hm_xdp_bucket *b, __u32 rate)
{
	__u64 now = bpf_ktime_get_ns(), cap = (__u64)rate * NSEC_PER_SEC;
	__u64 elapsed = now - b->at_ns;

	if (elapsed >= NSEC_PER_SEC)
		b->nanotokens = cap;
	else if (b->nanotokens + elapsed * rate > cap)
		b->nanotokens = cap;
	else
		b->nanotokens += elapsed * rate;
	b->at_ns = now;
	if (b->nanotokens < NSEC_PER_SEC)
		return false;
	b->nanotokens -= NSEC_PER_SEC;
	return true;
}

static __always_inline bool replica_token(const struct hm_xdp_config *cfg, __u32 id)
{
	struct hm_xdp_bucket *b;

	if (!cfg->rate_limit_pps)
		return true;
	b = bpf_map_lookup_elem(&hm_rate, &id);
	return !b || take_token(b, cfg->rate_limit_pps);
}

static __always_inline bool client_token(const struct hm_xdp_config *cfg, __u32 id)
{
	struct hm_xdp_bucket fresh = {}, *b;

	if (!cfg->rate_limit_pps)
		return true;
	b = bpf_map_lookup_elem(&hm_client_rate, &id);
	if (!b) {
		bpf_map_update_elem(&hm_client_rate, &id, &fresh, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&hm_client_rate, &id);
	}
	return !b || take_token(b, cfg->rate_limit_pps);
}

static __always_inline bool from_replica_only(__u8 type)
{
	return type != HM_MSG_REQUEST && type != HM_MSG_REPLY;
}

/* authenticate() in user/replica/node.c.  One SipHash call site for both kinds of
 * sender keeps the program half the size. */
static __always_inline __u32 check_identity(const struct hm_xdp_config *cfg,
					    const struct hm_pkt *p, const __u8 *hdr, __u32 sender)
{
	const struct hm_hdr *h = (const void *)hdr;
	const struct hm_xdp_member *m = NULL;
	const struct hm_xdp_client *c;
	const __u8 *key;
	bool replica;

	if (sender < cfg->n && sender != cfg->self_id && sender < HM_MAX_REPLICAS)
		m = bpf_map_lookup_elem(&hm_members, &sender);
	replica = m && m->valid;
	if (replica) {
		if (!same_address(m, p))
			return HM_DROP_BAD_ADDRESS;
		key = m->rx_key;
	} else {
		c = bpf_map_lookup_elem(&hm_clients, &sender);
		if (!c)
			return HM_DROP_UNKNOWN_SENDER;
		key = c->rx_key;
	}
	/* The token bucket comes after the MAC: spoofed packets in a sender's
	 * name must not use up its rate. */
	if (!mac_ok(key, hdr))
		return HM_DROP_BAD_MAC;
	if (!(replica ? replica_token(cfg, sender) : client_token(cfg, sender)))
		return HM_DROP_RATE_LIMITED;
	if (replica ? !from_replica_only(h->type) : h->type != HM_MSG_REQUEST)
		return HM_DROP_MALFORMED;
	return HM_ACCEPT;
}

/* ---- window: window_ok() in user/replica/node.c --------------------------------- */

static __always_inline __u32 check_window(const struct hm_xdp_config *cfg, const struct hm_hdr *h)
{
	__u64 seq = bpf_be64_to_cpu(h->seq);

	if (h->type != HM_MSG_PRE_PREPARE && h->type != HM_MSG_PREPARE && h->type != HM_MSG_COMMIT)
		return HM_ACCEPT;
	if (bpf_be64_to_cpu(h->view) != cfg->view)
		return HM_DROP_BAD_VIEW;
	if (seq <= cfg->low || seq > cfg->high)
		return HM_DROP_OUT_OF_WINDOW;
	return HM_ACCEPT;
}

/* ---- signature encoding: hm_sig_is_canonical() in user/common/crypto.c ---------- */

/* S < L, L = 2^252 + 27742317777372353535851937790883648493, compared as four
 * little-endian 64-bit limbs from the most significant one down. */
static __always_inline bool limb_below(__u64 s, __u64 l, int *decided)
{
	if (s != l)
		*decided = 1;
	return s < l;
}

static __always_inline __u32 check_sig_encoding(const __u8 *s)
{
	int decided = 0;
	bool below;

	below = limb_below(hm_siphash_load_le64(s + 24), 0x1000000000000000ULL, &decided);
	if (!decided)
		below = limb_below(hm_siphash_load_le64(s + 16), 0, &decided);
	if (!decided)
		below = limb_below(hm_siphash_load_le64(s + 8), 0x14def9dea2f79cd6ULL, &decided);
	if (!decided)
		below = limb_below(hm_siphash_load_le64(s), 0x5812631a5cf5d3edULL, &decided);
	return below ? HM_ACCEPT : HM_DROP_NONCANONICAL_SIG; /* S == L is not below */
}

/* ---- count -------------------------------------------------------------- */

static __always_inline void count(__u32 idx, __u32 reason)
{
	struct hm_node_stats *st = bpf_map_lookup_elem(&node_stats, &idx);

	if (!st)
		return;
	__sync_fetch_and_add(&st->total_messages, 1);
	if (reason >= HM_DROP_REASON_MAX) {
		st->last_activity_timestamp = bpf_ktime_get_ns();
		st->consecutive_faults = 0;
		return;
	}
	__sync_fetch_and_add(&hm_drops(st->drops)[reason], 1);
	__sync_fetch_and_add(&st->consecutive_faults, 1);
	if (reason == HM_DROP_NONCANONICAL_SIG)
		__sync_fetch_and_add(&st->invalid_signatures, 1);
	else if (reason == HM_DROP_RATE_LIMITED)
		__sync_fetch_and_add(&st->timing_violations, 1);
	else if (reason == HM_DROP_EQUIVOCATION)
		__sync_fetch_and_add(&st->contradictory_responses, 1);
}

/* hm_progress: a racy max is fine, it is a hint that is read again. */
static __always_inline void note_progress(__u32 sender, const struct hm_hdr *h)
{
	__u64 seq = bpf_be64_to_cpu(h->seq), *seen;

	if (h->type == HM_MSG_STATUS || h->type == HM_MSG_REQUEST)
		return;
	seen = bpf_map_lookup_elem(&hm_progress, &sender);
	if (seen && seq > *seen)
		*seen = seq;
}

/* node_stats[idx].max_view_seen: a replica's normal-case message named a
 * view above ours (view catch-up).  A racy max, like hm_progress: a hint
 * the controller reads again. */
static __always_inline void note_view(__u32 idx, const struct hm_xdp_config *cfg,
				      const struct hm_hdr *h)
{
	__u64 view = bpf_be64_to_cpu(h->view);
	struct hm_node_stats *st;

	if (idx >= HM_MAX_REPLICAS || view <= cfg->view)
		return;
	st = bpf_map_lookup_elem(&node_stats, &idx);
	if (st && view > st->max_view_seen)
		st->max_view_seen = view;
}

/* ---- the pre-filter ----------------------------------------------------- */

/* Every check in order; returns a drop reason or HM_ACCEPT, and the
 * node_stats index of the claimed sender in *idx. */
static __always_inline __u32 prefilter(struct xdp_md *ctx, const struct hm_xdp_config *cfg,
				       const struct hm_pkt *p, __u8 *hdr, __u32 *idx)
{
	__u32 sender, reason;

	*idx = HM_XDP_STATS_UNKNOWN;
	if (!read_sender(ctx, p, &sender)) {
		/* Under 12 bytes: bad_length or truncated, never good. */
		reason = check_lengths(p);
		return reason == HM_ACCEPT ? HM_DROP_TRUNCATED : reason;
	}
	*idx = stats_index(cfg, sender);
	if (is_blocked(sender))
		return HM_DROP_BLOCKED;

	reason = check_lengths(p);
	if (reason != HM_ACCEPT)
		return reason;
	if (bpf_xdp_load_bytes(ctx, p->hm_off, hdr, HM_HDR_LEN) < 0)
		return HM_DROP_TRUNCATED; /* cannot happen: check_lengths saw them */
	reason = check_frame(cfg, (const void *)hdr, p->udp_len - sizeof(struct udphdr));
	if (reason != HM_ACCEPT)
		return reason;
	reason = check_identity(cfg, p, hdr, sender);
	if (reason != HM_ACCEPT)
		return reason;
	note_progress(sender, (const void *)hdr);
	reason = check_window(cfg, (const void *)hdr);
	if (reason == HM_DROP_BAD_VIEW)
		note_view(*idx, cfg, (const void *)hdr);
	if (reason != HM_ACCEPT)
		return reason;
	return check_sig_encoding(hdr + HM_OFF_SIG + 32);
}

/* ---- votes: the slot rules of headers/hm_vote_slot.h ---------------------- */

/* The slot a (phase, seq) vote goes to; NULL cannot happen (key < max_entries). */
static __always_inline struct hm_xdp_vote_slot *slot_of(__u32 window, __u32 phase, __u64 seq)
{
	__u32 key = (__u32)(seq % window) * HM_PHASE_MAX + phase;

	return bpf_map_lookup_elem(&hm_votes, &key);
}

/*
 * Record `voter`'s vote in its slot: hm_quorum_vote() in user/core/quorum.c,
 * by the same rules (hm_vote_slot.h).  Returns HM_ACCEPT or the drop reason;
 * sets *emit when *ev (zeroed by the caller) is to be sent.
 *
 * Everything between reading the slot and the last write to it happens under
 * the slot's bpf_spin_lock: the takeover, the duplicate and equivocation
 * checks, recording the vote, matched, and the test-and-set of quorum_sent,
 * so each slot changes as by one hm_quorum_vote at a time and raises at most
 * one quorum.  No helper is called under the lock: the event is filled on
 * the stack and sent after the unlock.
 */
static __always_inline __u32 slot_vote(const struct hm_xdp_config *cfg, __u32 window, __u32 phase,
				       __u64 view, __u64 seq, __u32 voter, const __u8 *digest,
				       const __u8 *sig, struct hm_vote_event *ev, bool *emit)
{
	__u32 n = cfg->n, reason;
	struct hm_xdp_vote_slot *vs;

	if (!hm_vote_voter_ok(n, phase, view, voter))
		return HM_DROP_MALFORMED;
	vs = slot_of(window, phase, seq);
	if (!vs)
		return HM_DROP_MALFORMED;
	bpf_spin_lock(&vs->lock);
	if (hm_vote_slot_claim(&vs->s, phase, view, seq))
		reason = hm_vote_slot_record(&vs->s, n, hm_vote_threshold(cfg->f, phase), voter,
					     digest, sig, ev, emit);
	else
		reason = HM_DROP_STALE;
	bpf_spin_unlock(&vs->lock);
	return reason;
}

/* Count one vote that passed the pre-filter. */
static __always_inline __u32 count_vote(const struct hm_xdp_config *cfg, __u32 window,
					const __u8 *hdr, struct hm_vote_event *ev, bool *emit)
{
	const struct hm_hdr *h = (const void *)hdr;
	__u32 phase = h->type == HM_MSG_PREPARE ? HM_PHASE_PREPARE : HM_PHASE_COMMIT;

	return slot_vote(cfg, window, phase, bpf_be64_to_cpu(h->view), bpf_be64_to_cpu(h->seq),
			 bpf_ntohl(h->sender), h->digest, h->sig, ev, emit);
}

/* hm_quorum_expect(): the digest a slot's votes must match.  Under the
 * lock, so a vote counted at the same moment on another CPU is either seen
 * here or sees the expectation: the quorum is raised exactly once. */
static __always_inline void slot_expect(const struct hm_xdp_config *cfg, __u32 window, __u32 phase,
					__u64 view, __u64 seq, const __u8 *digest, bool fast,
					struct hm_vote_event *ev, bool *emit)
{
	struct hm_xdp_vote_slot *vs = slot_of(window, phase, seq);

	if (!vs)
		return;
	bpf_spin_lock(&vs->lock);
	if (hm_vote_slot_claim(&vs->s, phase, view, seq))
		hm_vote_slot_expect(&vs->s, cfg->n, hm_vote_threshold(cfg->f, phase), digest, fast, ev,
				    emit);
	bpf_spin_unlock(&vs->lock);
}

/* Votes are counted when the window fits hm_votes (0: not configured). */
static __always_inline bool counting_votes(__u32 window, const __u8 *hdr)
{
	__u8 type = ((const struct hm_hdr *)hdr)->type;

	return (type == HM_MSG_PREPARE || type == HM_MSG_COMMIT) && window != 0 &&
	       window <= HM_XDP_VOTE_WINDOW_MAX;
}

SEC("xdp")
int hm_xdp(struct xdp_md *ctx)
{
	const struct hm_xdp_config *cfg;
	struct hm_pkt p = {};
	/* The whole fixed header: [0, 128) is MACed (and holds the signature's
	 * S at [96, 128)), [128, 136) is the MAC.  8-byte words, so that the
	 * digest (32) and the signature (64) can be read as such. */
	__u64 hdr[HM_HDR_LEN / 8];
	struct hm_vote_event ev;
	__u32 zero = 0, idx, reason, window;
	bool emit = false;

	cfg = bpf_map_lookup_elem(&hm_config, &zero);
	if (!cfg || !cfg->port)
		return XDP_PASS;
	if (!parse(ctx, cfg->port, &p)) {
		bpf_tail_call(ctx, &hm_dns_tail, 0);
		return XDP_PASS;
	}
	reason = prefilter(ctx, cfg, &p, (__u8 *)hdr, &idx);
	/* Read once: the controller may rewrite hm_config meanwhile. */
	window = *(volatile const __u32 *)&cfg->window;
	if (reason != HM_ACCEPT || !counting_votes(window, (const __u8 *)hdr)) {
		count(idx, reason);
		return reason == HM_ACCEPT ? XDP_PASS : XDP_DROP;
	}
	__builtin_memset(&ev, 0, sizeof(ev));
	reason = count_vote(cfg, window, (const __u8 *)hdr, &ev, &emit);
	count(idx, reason);
	if (emit && bpf_ringbuf_output(&hm_events, &ev, sizeof(ev), 0) < 0)
		__sync_fetch_and_add(&hm_events_lost, 1);
	/* A retransmitted vote (rare: its sender has not seen the slot
	 * complete) goes up after counting, so the controller can answer it
	 * (pbft_on_retransmission); the controller does not count it again. */
	if (((const struct hm_hdr *)hdr)->flags & bpf_htons(HM_FLAG_RETRANSMIT) &&
	    (reason == HM_ACCEPT || reason == HM_DROP_DUPLICATE))
		return XDP_PASS;
	return XDP_DROP; /* counted: consumed */
}

/* ---- the controller's side of the vote slots ---------------------------- */

static long collect_one(__u32 key, void *ctx)
{
	__u64 below = *(__u64 *)ctx;
	struct hm_xdp_vote_slot *vs = bpf_map_lookup_elem(&hm_votes, &key);

	if (!vs)
		return 1;
	bpf_spin_lock(&vs->lock);
	hm_vote_slot_collect(&vs->s, below);
	bpf_spin_unlock(&vs->lock);
	return 0;
}

/*
 * hm_vote_policy: what the controller does to the vote slots, run with
 * BPF_PROG_TEST_RUN so that it takes each slot's lock exactly as hm_xdp
 * does.  (A lookup-modify-update from userspace is two locked steps, and a
 * vote counted between them would be lost.)  It also stores the controller's
 * reputation score into node_stats, one field, for the same reason.  Events
 * go to hm_events as the XDP program's do.  Returns 0, or -1 when the vote
 * window is not set or the input is not a policy record.
 *
 * An XDP program, not a SEC("syscall") one: syscall programs are always
 * sleepable, and kernels before 6.2 refuse bpf_spin_lock in sleepable
 * programs ("sleepable progs cannot use bpf_spin_lock yet"), which made the
 * whole object fail to load on 6.1.  Its input is the packet: the test run's
 * data_in is one struct hm_vote_policy_args (136 bytes; XDP test runs want
 * at least an Ethernet header's 14), written back in place and returned as
 * data_out (result, events).  It is never attached: the controller runs it
 * with hm_vote_policy_run() (user/dataplane/xdp_policy.h).  Should it be
 * attached to a NIC by mistake, it refuses every frame that did not come
 * from a test run (those arrive on the namespace's loopback, ifindex 1,
 * where a real frame's first bytes, the all-zero destination MAC, are no
 * valid op either), so packets from the network cannot reach the slots.
 */
#define HM_LOOPBACK_IFINDEX 1

SEC("xdp")
int hm_vote_policy(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct hm_vote_policy_args *a = data;
	const struct hm_xdp_config *cfg;
	struct hm_vote_event ev;
	__u8 sig[HM_SIG_LEN] __attribute__((aligned(8)));
	__u8 dg[HM_DIGEST_LEN] __attribute__((aligned(8)));
	__u32 zero = 0, window;
	__u64 below;
	bool emit = false;

	if ((void *)(a + 1) > data_end || ctx->ingress_ifindex != HM_LOOPBACK_IFINDEX)
		return -1;
	if (a->op == HM_POLICY_SET_REPUTATION) {
		__u32 idx = a->index;
		struct hm_node_stats *st = bpf_map_lookup_elem(&node_stats, &idx);

		if (!st)
			return -1;
		st->reputation_score = a->value;
		return 0;
	}
	cfg = bpf_map_lookup_elem(&hm_config, &zero);
	if (!cfg)
		return -1;
	window = cfg->window;
	if (window == 0 || window > HM_XDP_VOTE_WINDOW_MAX || a->phase >= HM_PHASE_MAX)
		return -1;
	__builtin_memset(&ev, 0, sizeof(ev));
	a->result = HM_ACCEPT;
	switch (a->op) {
	case HM_POLICY_EXPECT:
		slot_expect(cfg, window, a->phase, a->view, a->seq, a->digest, a->fast != 0, &ev,
			    &emit);
		break;
	case HM_POLICY_OWN_VOTE:
		/* stack copies: the slot helpers take plain pointers, and
		 * the stack keeps them clear of packet-pointer bounds */
		__builtin_memcpy(dg, a->digest, HM_DIGEST_LEN);
		__builtin_memcpy(sig, a->sig, HM_SIG_LEN);
		asm volatile("" ::: "memory"); /* keep the copies (no reads of a->) */
		a->result = slot_vote(cfg, window, a->phase, a->view, a->seq, cfg->self_id,
				      dg, sig, &ev, &emit);
		break;
	case HM_POLICY_EXPECT_OWN_VOTE:
		/* One quorum event at most: the slot's quorum_sent stops a second
		 * one, and a correct core never votes two digests in a slot. */
		__builtin_memcpy(dg, a->digest, HM_DIGEST_LEN);
		__builtin_memcpy(sig, a->sig, HM_SIG_LEN);
		asm volatile("" ::: "memory");
		slot_expect(cfg, window, a->phase, a->view, a->seq, dg, a->fast != 0, &ev, &emit);
		a->result = slot_vote(cfg, window, a->phase, a->view, a->seq, cfg->self_id,
				      dg, sig, &ev, &emit);
		break;
	case HM_POLICY_COLLECT:
		below = a->seq;
		bpf_loop(HM_XDP_VOTE_SLOTS, collect_one, &below, 0);
		break;
	default:
		return -1;
	}
	a->events = emit;
	if (emit && bpf_ringbuf_output(&hm_events, &ev, sizeof(ev), 0) < 0)
		__sync_fetch_and_add(&hm_events_lost, 1);
	return 0;
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
