/* SPDX-License-Identifier: MIT */
/*
 * Layouts of the state HyperMesh keeps per replica for counting votes and
 * judging senders.  The XDP program keeps them in BPF maps; in socket mode
 * the userspace receive path (user/core/quorum.c) keeps the same structures, so
 * the two dataplanes count quorums by one definition (the slot rules both
 * run are in hm_vote_slot.h).
 */
#ifndef HM_MAPS_H
#define HM_MAPS_H

#include "hm_wire.h"

/* Which message a vote slot counts. */
enum hm_vote_phase { HM_PHASE_PREPARE = 0, HM_PHASE_COMMIT = 1, HM_PHASE_MAX = 2 };

/*
 * One vote slot: the PREPAREs or COMMITs for one (view, seq).  Slots are
 * indexed by (seq mod watermark_window, phase), which is unique inside the
 * window (h, h + L]; a vote for a newer (view, seq) takes the slot over.
 *
 * Each voter's digest is kept, not only a count, so that votes that arrive
 * before the PRE-PREPARE are not lost and a second vote with another digest
 * is caught as equivocation.  Each vote's signature is kept so that the
 * controller can build a certificate later without asking again; it is
 * verified only when a certificate needs it.
 */
struct hm_vote_slot {
	__u64 view;
	__u64 seq;
	hm_voters_t voted;   /* bitmap: replicas that voted */
	hm_voters_t matched; /* bitmap: voters whose digest equals expected */
	__u8 phase;         /* enum hm_vote_phase */
	__u8 expected_set;  /* expected holds the accepted PRE-PREPARE's digest */
	__u8 quorum_sent;   /* the quorum event has been raised */
	/* Fast path (PREPARE slots): 1 = raise HM_EV_FAST once every backup's
	 * vote matches (n-1 of them, the primary's PRE-PREPARE is its vote);
	 * 2 = raised.  Set with the expected digest. */
	__u8 fast;
	__u8 pad[4];        /* the head stays a multiple of 8 bytes */
	__u8 expected[HM_DIGEST_LEN];
	__u8 digests[HM_MAX_REPLICAS][HM_DIGEST_LEN];
	__u8 sigs[HM_MAX_REPLICAS][HM_SIG_LEN];
};

/* A slot is reset (taken over, collected) by zeroing its head: everything
 * before digests[].  digests[i] and sigs[i] are read only for voters whose
 * bit is in `voted`, so what an earlier owner left there is never used, and
 * a takeover costs 64 bytes of stores instead of 3 KiB. */
#define HM_VOTE_SLOT_HEAD __builtin_offsetof(struct hm_vote_slot, digests)

/* What the vote counter tells the controller (ring buffer events in xdp
 * mode, return values in socket mode). */
enum hm_vote_event_kind {
	HM_EV_QUORUM = 1,        /* a slot reached its threshold */
	HM_EV_EQUIVOCATION = 2,  /* a voter sent two digests for one slot */
	/* fast path: every backup's PREPARE matched (n-of-n with the
	 * PRE-PREPARE); implies the PREPARE quorum, raised instead of it when
	 * both come due at once */
	HM_EV_FAST = 3,
};

struct hm_vote_event {
	__u32 kind;              /* enum hm_vote_event_kind */
	__u32 phase;             /* enum hm_vote_phase */
	__u64 view;
	__u64 seq;
	__u32 voter;             /* equivocation: the culprit */
	hm_voters_t voters;      /* quorum: bitmap of the matching voters */
	__u8 digest[HM_DIGEST_LEN];   /* quorum digest, or the first digest */
	__u8 digest2[HM_DIGEST_LEN];  /* equivocation: the second digest */
	/* equivocation: the second vote's signature (the first is in the
	 * slot), so the controller can build a transferable proof */
	__u8 sig2[HM_SIG_LEN];
};

/* ======================================================================
 * XDP pre-filter (kern/hm_xdp.bpf.c): configuration, identities, blocklist
 * and per-sender counters.  The controller writes the first four maps; the
 * program writes the rate-limit buckets and node_stats.  Every map is a BTF
 * map, so `bpftool map dump` shows these structs with their field names.
 * ====================================================================== */

/* Address families as in <sys/socket.h> (vmlinux.h has no macros). */
#define HM_AF_INET 2
#define HM_AF_INET6 10

#define HM_XDP_MAX_CLIENTS 4096  /* hm_clients and hm_client_rate entries */
#define HM_XDP_MAX_BLOCKED 1024  /* hm_blocklist entries */

/* node_stats indexes: 0..HM_MAX_REPLICAS-1 are replica ids (a claimed
 * sender < n), then all clients together, then everyone unidentified. */
#define HM_XDP_STATS_CLIENTS HM_MAX_REPLICAS
#define HM_XDP_STATS_UNKNOWN (HM_MAX_REPLICAS + 1)
#define HM_XDP_NSTATS (HM_MAX_REPLICAS + 2)

/* hm_config[0].  port = 0 means "not configured": every packet passes. */
struct hm_xdp_config {
	__u16 port;             /* HyperMesh UDP port, host order */
	__u16 pad0;
	__u32 n;                /* replicas */
	__u32 f;                /* faulty replicas tolerated */
	__u32 self_id;          /* this replica's id */
	__u64 view;             /* current view */
	__u64 low;              /* normal-case seq accepted in (low, high] */
	__u64 high;
	__u32 max_message_size; /* largest datagram (UDP payload) accepted */
	__u32 rate_limit_pps;   /* per-sender token bucket; 0 = off */
	__u32 flags;            /* no bits defined yet; write 0 */
	__u32 window;           /* vote slots: watermark_window (was pad1: same
				 * layout).  0, or above HM_XDP_VOTE_WINDOW_MAX,
				 * turns vote counting off (votes pass up) */
};

/* hm_members[replica id]. */
struct hm_xdp_member {
	__u32 valid;            /* 0: the slot is not a member */
	__u32 family;           /* HM_AF_INET or HM_AF_INET6 */
	__u8 addr[16];          /* IPv6 address, or IPv4 in addr[0..4), rest 0;
				 * network order */
	__be16 port;            /* source UDP port, network order */
	__u16 pad;
	__u8 rx_key[16];        /* link key sender -> self (SipHash-2-4) */
};

/* hm_clients[client id]: clients have no address binding. */
struct hm_xdp_client {
	__u8 rx_key[16];        /* link key client -> self */
};

/* Token bucket (hm_rate[replica id], hm_client_rate[client id]; per-CPU):
 * rate_limit_pps tokens a second, a burst of one second, the same policy as
 * take_token() in user/replica/node.c.  Tokens are kept in units of 1e-9 token. */
struct hm_xdp_bucket {
	__u64 nanotokens;
	__u64 at_ns;            /* bpf_ktime_get_ns() of the last refill */
};

/* The drop counters by name, one field per enum hm_drop_reason in its
 * order (hm_drop_reason_name() spells them the same): with the maps' BTF,
 * `bpftool map dump` prints each count under its reason's name. */
struct hm_drop_counters {
	__u64 blocked, truncated, bad_magic, bad_type, bad_length, oversize;
	__u64 unknown_sender, bad_address, bad_mac, bad_view, out_of_window;
	__u64 noncanonical_sig, rate_limited, bad_digest, bad_signature, malformed;
	__u64 stale, duplicate, equivocation;
	__u64 bad_seal, not_encrypted, bad_compression, inflated_oversize; /* userspace only */
};
_Static_assert(sizeof(struct hm_drop_counters) == HM_DROP_REASON_MAX * sizeof(__u64),
	       "struct hm_drop_counters has one field per enum hm_drop_reason");

/* The counters of d as an array indexed by enum hm_drop_reason. */
#define hm_drops(d) ((__u64 *)&(d))

/* node_stats[i].  The program adds with atomic adds; reputation_score is
 * the controller's (the program never writes it). */
struct hm_node_stats {
	__u64 total_messages;          /* HyperMesh datagrams claimed by it */
	__u64 invalid_signatures;      /* noncanonical_sig drops */
	__u64 timing_violations;       /* rate_limited drops */
	__u64 contradictory_responses; /* equivocating votes caught by the XDP vote counter */
	__u64 last_activity_timestamp; /* bpf_ktime_get_ns() of the last accepted */
	__u32 reputation_score;        /* HM_REPUTATION_ONE = 1.0; written by the
					* controller (hm_vote_policy
					* HM_POLICY_SET_REPUTATION), read only here */
	__u32 consecutive_faults;      /* drops since the last accepted message */
	struct hm_drop_counters drops; /* by name; hm_drops() indexes them by reason */
	/* Replica senders: the highest view of a MAC-valid PRE-PREPARE, PREPARE
	 * or COMMIT dropped as bad_view above hm_config.view (0: none).  The
	 * controller polls it for view catch-up (pbft_observe_view). */
	__u64 max_view_seen;
};

/* ======================================================================
 * XDP vote counting (kern/hm_xdp.bpf.c): hm_votes, hm_events.
 *
 * hm_votes[(seq % window) * HM_PHASE_MAX + phase] holds a struct
 * hm_xdp_vote_slot: the shared struct hm_vote_slot, unchanged, behind a
 * bpf_spin_lock.  The program takes the lock around everything it does to a
 * slot (takeover, duplicate and equivocation checks, recording, matched,
 * quorum_sent), so two CPUs counting votes for one slot serialize.  The
 * controller reads and writes a slot with BPF_F_LOCK (bpf_map_lookup_elem_flags,
 * bpf_map_update_elem), which copies the value but the lock under the same
 * lock: neither side ever sees a half-written slot.  A controller's
 * lookup-modify-update is two locked steps, not one: a vote the program counts
 * between them is overwritten by the update.
 *
 * Events (struct hm_vote_event) go to the hm_events ring buffer.
 * ====================================================================== */

#ifndef __VMLINUX_H__
#include <linux/bpf.h> /* struct bpf_spin_lock */
#endif

#define HM_XDP_VOTE_WINDOW_MAX 1024 /* largest hm_xdp_config.window counted */
#define HM_XDP_VOTE_SLOTS (HM_XDP_VOTE_WINDOW_MAX * HM_PHASE_MAX) /* hm_votes entries */
#define HM_XDP_EVENTS_BYTES (256 * 1024) /* hm_events ring buffer size */

struct hm_xdp_vote_slot {
	struct bpf_spin_lock lock; /* the program's; BPF_F_LOCK from userspace */
	__u32 pad;
	struct hm_vote_slot s;
};

/* hm_vote_policy (an XDP program beside hm_xdp, never attached: the
 * controller runs it with BPF_PROG_TEST_RUN, and this struct is its packet,
 * data_in and data_out): set a slot's expected digest, record this replica's
 * own vote, or clear every slot at or below seq.  Each takes the slot's lock
 * like the XDP program. */
enum hm_policy_op {
	HM_POLICY_EXPECT = 1,    /* hm_quorum_expect(phase, view, seq, digest) */
	HM_POLICY_OWN_VOTE = 2,  /* hm_quorum_vote(phase, view, seq, self, digest, sig) */
	HM_POLICY_COLLECT = 3,   /* hm_quorum_collect(seq) */
	/* node_stats[index].reputation_score = value: a store of that one
	 * field, so the program's atomic counters beside it lose nothing (a
	 * whole-entry update from userspace would) */
	HM_POLICY_SET_REPUTATION = 4,
	/* both HM_POLICY_EXPECT and HM_POLICY_OWN_VOTE (same digest) in one
	 * run: what the controller does for each of its own votes */
	HM_POLICY_EXPECT_OWN_VOTE = 5,
};

#define HM_REPUTATION_ONE 1000000u /* reputation_score of 1.0 */

struct hm_vote_policy_args {
	__u32 op;                /* enum hm_policy_op */
	__u32 phase;             /* enum hm_vote_phase */
	__u64 view;
	__u64 seq;
	__u8 digest[HM_DIGEST_LEN];
	__u8 sig[HM_SIG_LEN];
	__u32 result;            /* out: HM_DROP_REASON_MAX, or why the own vote was refused */
	__u32 events;            /* out: 1 when an event went to hm_events */
	__u32 index;             /* HM_POLICY_SET_REPUTATION: node_stats index */
	__u32 value;             /* HM_POLICY_SET_REPUTATION: the score */
	__u32 fast;              /* HM_POLICY_EXPECT*: the slot raises HM_EV_FAST */
	__u32 pad2;
};

#endif /* HM_MAPS_H */
