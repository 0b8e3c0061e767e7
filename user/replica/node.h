/* SPDX-License-Identifier: MIT */
/*
 * A replica as the daemon and the simulator run it: the receive pre-filter
 * (framing, membership, address binding, link MAC, view and window,
 * signature encoding, payload digest), a vote counter, the PBFT core and
 * the service, glued by the Ready loop.  The transport only moves
 * datagrams; everything protocol-shaped happens here or in the core.
 *
 * The vote counter is an interface (core/vote_counter.h): the socket
 * counter (core/quorum.c) by default, or the XDP maps
 * (dataplane/xdp_votes.c) once the daemon installs them with
 * hm_node_set_vote_counter; the node does not know which it holds.  The
 * pre-filter makes the same checks, in the same order and with the same
 * drop reasons, as the XDP program, so either can stand in front of the
 * core.  A send-path hook (replica/send_hook.h) lets tests make a replica
 * misbehave without the node knowing how.
 */
#ifndef HM_NODE_H
#define HM_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "common/config.h"
#include "common/crypto.h"
#include "common/link_crypt.h"
#include "core/evidence.h"
#include "core/pbft.h"
#include "core/persist.h"
#include "core/vote_counter.h"
#include "replica/send_hook.h"


/* Consensus latency histogram bounds, seconds (hm_latency_bounds_s; the
 * metrics export them as hypermesh_consensus_latency_seconds). */
#define HM_LATENCY_BUCKETS 12
extern const double hm_latency_bounds_s[HM_LATENCY_BUCKETS];
/* The bucket of a latency: the first bound at or above it, HM_LATENCY_BUCKETS for +Inf. */
unsigned hm_latency_bucket(double seconds);

struct hm_transport {
	/* Send one datagram whose MAC is already stamped. */
	void (*sendto)(void *ctx, const void *buf, size_t len, const struct sockaddr *to,
		       socklen_t tolen);
	void *ctx;
};

/* What one sender did, as the pre-filter saw it. */
struct hm_peer_stats {
	uint64_t accepted;
	uint64_t drops[HM_DROP_REASON_MAX];
	uint64_t last_seen_us;
	/* what the vote counter said of it */
	uint64_t in_quorum;             /* quorums its vote was counted in */
	uint64_t equivocations;         /* equivocation events naming it */
	struct hm_vote_event last_equivocation; /* evidence of the latest */
	/* the latest equivocation we caught, as a transferable proof (both
	 * signed votes, user/core/evidence.h), checked before it is kept: the
	 * first signature from the counter's slot, the second from the vote
	 * at hand or, for an event that came later, from the event (sig2) */
	bool has_proof;
	uint8_t proof[HM_EVIDENCE_LEN];
	/* proofs we sent to the other replicas (once per slot) naming it */
	uint64_t proofs_sent;
	uint8_t sent_type;
	uint64_t sent_view, sent_seq;
	/* proofs naming it that other replicas sent us and that checked: the
	 * latest, and who sent it (HM_MSG_EVIDENCE; never forwarded) */
	uint64_t proofs_received;
	uint32_t received_from;
	uint8_t received_proof[HM_EVIDENCE_LEN];
	/* proofs it sent us that did not check (forged, not conflicting, an
	 * unknown culprit): counted and logged, nothing blocked for them */
	uint64_t proofs_refused;
	uint8_t last_refusal;           /* enum hm_evidence_error */
};

/* When consensus on a sequence number started (our PREPARE policy), for
 * the consensus latency (start to execution). */
#define HM_LATENCY_SLOTS 256
struct hm_latency_slot {
	uint64_t seq, at_us;
};

struct hm_client_link {
	uint32_t id;
	const uint8_t *public_key;
	struct hm_link_keys keys;
	struct sockaddr_storage addr;   /* where its last request came from */
	socklen_t addr_len;
	double tokens;                  /* rate limit bucket */
	uint64_t tokens_at;
};

struct hm_node {
	const struct hm_config *cfg;
	uint32_t id, n, f;
	const struct hm_keypair *keys;
	struct pbft *core;
	/* hm_node_burst_begin(): vouches wait for hm_node_burst_end(). */
	bool in_burst;
	struct hm_vote_counter votes;   /* owned: destroyed with the node */
	struct hm_transport transport;

	uint8_t replica_keys[HM_MAX_REPLICAS][HM_PUBKEY_LEN];
	struct hm_link_keys links[HM_MAX_REPLICAS];
	/* The link layer (common/link_crypt.h): AEAD keys per peer, the
	 * policy from network.encryption_required / message_compression, and
	 * a buffer each way (HM_MAX_DATAGRAM bytes) for sealed/opened copies. */
	struct hm_link_aead_keys aead[HM_MAX_REPLICAS];
	struct hm_link_policy link;
	uint8_t *link_tx, *link_rx;
	uint64_t link_sealed, link_compressed;  /* datagrams sent so */
	uint64_t link_refused, link_refused_logged_at;
	double tokens[HM_MAX_REPLICAS];
	uint64_t tokens_at[HM_MAX_REPLICAS];
	struct hm_client_link *clients; /* sorted by id */
	uint32_t n_clients;
	hm_voters_t blocked;               /* replicas whose messages are dropped */

	/* egress offload (hm_node_set_egress); all zero when there is none */
	hm_voters_t egress_stamped;        /* peers whose MAC the TC program stamps */
	size_t egress_max_len;          /* ... in datagrams up to this long */
	struct sockaddr_in fanout;      /* TC fan-out marker; port 0 = none */

	/* the window the core last published */
	uint64_t view, low, high;
	uint64_t now;

	struct hm_peer_stats replica_stats[HM_MAX_REPLICAS];
	/* Pairs of replicas seen to agree, [a][b] with a < b: both votes
	 * counted in one quorum (one digest for one slot), both signatures
	 * in one stable checkpoint (one state digest).  The trust graph
	 * reads it (user/detect/trust_graph.h). */
	uint64_t agreed[HM_MAX_REPLICAS][HM_MAX_REPLICAS];
	struct hm_peer_stats client_stats;  /* all clients together */
	struct hm_peer_stats unknown_stats; /* senders we could not identify */
	uint64_t replies_unroutable;
	uint64_t quorums;                   /* quorum events, both phases */
	bool fast_path_allowed;             /* hm_node_fast_path_trust's verdict */
	uint64_t fast_path_switches;        /* ... changed this often */
	struct hm_latency_slot started[HM_LATENCY_SLOTS];
	uint64_t latency_sum_us, latency_count; /* consensus start to execution */
	uint64_t latency_buckets[HM_LATENCY_BUCKETS]; /* a histogram of it, not cumulative */

	/* The send-path hook (send_hook.h); outgoing is NULL in every real
	 * deployment. */
	struct hm_send_hook send_hook;

	/* Called for every executed batch (tests, logs). */
	void (*on_executed)(void *ctx, const struct pbft_executed *e);
	void *on_executed_ctx;
	/* Called when a state is installed at seq (state transfer, recovery):
	 * executions continue after seq, the batches up to it were not run. */
	void (*on_installed)(void *ctx, uint64_t seq);

	/* Persistence (hm_node_open_state; docs/persistence.md). */
	struct hm_persist *persist;
	bool persist_degraded;          /* appends refused: no replies leave */
	uint64_t persist_errors;        /* persistence calls that failed */
	uint64_t replies_held;          /* replies not sent while degraded */
	/* A disk failure (a write, sync, rename of any file; docs/persistence.md
	 * "Disk errors"): until the files are started afresh, nothing of ours
	 * leaves (no reply, no vote, no other message).  Retried with backoff
	 * (1 s doubling to 30 s) on the node's timer. */
	bool persist_failed;
	int persist_errno;              /* the failure that started it */
	char persist_file[96];          /* ... and its file in persist_dir */
	char *persist_dir;
	uint64_t persist_disk_errors;   /* hm_persist_errors() already seen */
	uint64_t persist_retry_at;      /* us: the next attempt */
	uint32_t persist_backoff_ms;
	bool persist_retry_due;         /* the next Ready rotates and retries */
	uint64_t persist_retries;       /* attempts made */
	uint64_t persist_recoveries;    /* failures recovered from */
	/* view-change counters already logged (log_views in node.c) */
	uint64_t vc_logged[5];
	uint64_t vc_reason_logged[PBFT_VC_REASONS];
	uint64_t st_logged[4];              /* state transfer counters last logged */
	uint64_t refused_logged, refused_logged_at; /* service refusals last logged */
	/* Refusals an operator should hear of: a count each and, at most once
	 * a second, a log line (log_refusal()). */
	struct hm_refusal_log {
		uint64_t count, logged_at;
	} batches_refused,   /* PRE-PREPAREs refused */
	  batches_held,      /* PRE-PREPAREs held for their requests' vouches */
	  vouches_refused;   /* VOUCHes refused (malformed, unknown client) */
	enum hm_recovery_status recovery_status;
	uint64_t recovered_seq;         /* last seq executed after recovery */
	uint64_t incarnation;           /* starts on these files, this one included */
	/* The vote log (docs/persistence.md): what recovery found, whether
	 * this replica fell back to the silent rule (a restart without an
	 * intact vote log: pbft_restart_silent), Readies whose messages were
	 * held because their vote records could not be made durable. */
	enum hm_votes_status votes_status;
	enum hm_persist_fault votes_problem_fault; /* votes_status == CORRUPT */
	bool restart_silent;
	uint64_t votes_held;
	uint64_t readies;               /* Readies carried out */
};

int hm_node_init(struct hm_node *nd, const struct hm_config *cfg, uint32_t id,
		 const struct hm_keypair *keys, struct hm_service *service,
		 const struct hm_transport *transport);
void hm_node_free(struct hm_node *nd);

/* A datagram from the network (socket mode: nothing filtered it yet). */
void hm_node_receive(struct hm_node *nd, const uint8_t *buf, size_t len,
		     const struct sockaddr *from, socklen_t fromlen);

/* Advance the clock; call when the deadline passes (and any time). */
void hm_node_tick(struct hm_node *nd, uint64_t now_us);
/* Around a burst of hm_node_receive() calls (one recvmmsg's datagrams):
 * the requests the burst authenticated are vouched for in one VOUCH at
 * the end (docs/protocol.md, "Requests: MACs and vouches"), not one each. */
void hm_node_burst_begin(struct hm_node *nd);
void hm_node_burst_end(struct hm_node *nd);
uint64_t hm_node_next_deadline(const struct hm_node *nd);

/* cfg's view-change messages fit its network.max_message_size (what the
 * core checks at start): hypermeshd --check-config asks before a start
 * would fail. */
bool hm_node_config_fits(const struct hm_config *cfg);
/* Count votes with vc from now on (the node owns it; the counter it held
 * is destroyed): binds its events to the node and tells it the window.
 * The daemon installs the XDP counter this way. */
void hm_node_set_vote_counter(struct hm_node *nd, const struct hm_vote_counter *vc);
/* The fast path is attempted only while every peer's reputation (n scores,
 * ours ignored) is above performance.fast_path_trust_threshold; a change
 * is logged.  Never changes a quorum (docs/protocol.md, "The fast path"). */
void hm_node_fast_path_trust(struct hm_node *nd, const double *reputation);
/* Egress offload (the XDP dataplane's TC program): the TC egress program stamps the MAC of messages to the peers
 * in `stamped`, and fans a datagram sent to `fanout` (port != 0) out to
 * every peer, for datagrams of at most max_len bytes (larger ones leave as
 * IP fragments, which TC cannot rewrite).  A broadcast goes through the
 * fan-out only when every peer is in `stamped`; otherwise one copy a peer,
 * stamped here where TC won't. */
void hm_node_set_egress(struct hm_node *nd, hm_voters_t stamped, const struct sockaddr_in *fanout,
			size_t max_len);
/* Ask the vote counter what the peers did that the node never saw (a
 * counter in the kernel: the XDP maps' hm_progress, and node_stats
 * max_view_seen for view catch-up); call now and then. */
void hm_node_poll_votes(struct hm_node *nd);

/*
 * Keep the stable checkpoints and the committed log in dir (created if
 * needed) and recover from what is there: call once, after hm_node_init and
 * before any message.  The rule it keeps: the records of one Ready's
 * executions are fsync'd (one fdatasync) before any message of that Ready,
 * replies included, leaves.  Returns 0, or -1 with err when the directory
 * cannot be used; corrupt files are not an error (the replica fetches state
 * by state transfer and repairs them at its next stable checkpoint).
 */
int hm_node_open_state(struct hm_node *nd, const char *dir, const struct hm_persist_opts *opts,
		       char *err, size_t errlen);
/* Route every message to a replica through the hook (its ctx owned by the
 * caller; NULL turns it off).  Disables the TC fan-out, which would send
 * one copy to all. */
void hm_node_set_send_hook(struct hm_node *nd, const struct hm_send_hook *h);

/* Sum of a drop reason over every sender. */
uint64_t hm_node_drops(const struct hm_node *nd, enum hm_drop_reason reason);

#endif /* HM_NODE_H */
