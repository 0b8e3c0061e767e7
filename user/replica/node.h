/* SPDX-License-Identifier: MIT */
/*
 * A replica as the socket dataplane and the simulator run it: the receive
 * pre-filter (framing, membership, address binding, link MAC, view and
 * window, signature encoding, payload digest), the vote counter, the PBFT
 * core and the service, glued by the Ready loop.  The transport only moves
 * datagrams; everything protocol-shaped happens here or in the core.
 *
 * The pre-filter makes the same checks, in the same order and with the same
 * drop reasons, as the XDP program, so either can stand in front of the
 * core.
 */
#ifndef HM_NODE_H
#define HM_NODE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "testing/byzantine.h"
#include "common/config.h"
#include "common/crypto.h"
#include "core/evidence.h"
#include "core/pbft.h"
#include "core/quorum.h"

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
	/* what the vote counter (ours or the kernel's) said of it */
	uint64_t in_quorum;             /* quorums its vote was counted in */
	uint64_t equivocations;         /* equivocation events naming it */
	struct hm_vote_event last_equivocation; /* evidence of the latest */
	/* the latest equivocation we caught, as a transferable proof (both
	 * signed votes, user/core/evidence.h), checked before it is kept; in xdp
	 * mode the first signature comes from the kernel's slot, the second
	 * from the event (sig2) */
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

/* xdp mode: the vote counter and the pre-filter run in the kernel.  The
 * node hands them the core's vote policy and window instead of counting
 * votes itself, and gets quorum events back through hm_node_vote_event(). */
struct hm_kernel_votes {
	int (*policy)(void *ctx, const struct pbft_vote_policy *v);
	int (*collect)(void *ctx, uint64_t seq);
	int (*window)(void *ctx, uint64_t view, uint64_t low, uint64_t high);
	/* the stored signatures of `voters` in a slot (pbft_params.vote_sigs) */
	int (*sigs)(void *ctx, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		    uint16_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN]);
	void *ctx;
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
	struct hm_quorum quorum;
	struct hm_transport transport;

	uint8_t replica_keys[HM_MAX_REPLICAS][HM_PUBKEY_LEN];
	struct hm_link_keys links[HM_MAX_REPLICAS];
	double tokens[HM_MAX_REPLICAS];
	uint64_t tokens_at[HM_MAX_REPLICAS];
	struct hm_client_link *clients; /* sorted by id */
	uint32_t n_clients;
	uint16_t blocked;               /* replicas whose messages are dropped */

	/* xdp mode (see hm_node_use_kernel) */
	bool kernel_votes;
	struct hm_kernel_votes kernel;
	uint16_t egress_stamped;        /* peers whose MAC the TC program stamps */
	size_t egress_max_len;          /* ... in datagrams up to this long */
	struct sockaddr_in fanout;      /* TC fan-out marker; port 0 = none */

	/* the window the core last published */
	uint64_t view, low, high;
	uint64_t now;

	struct hm_peer_stats replica_stats[HM_MAX_REPLICAS];
	struct hm_peer_stats client_stats;  /* all clients together */
	struct hm_peer_stats unknown_stats; /* senders we could not identify */
	uint64_t replies_unroutable;
	uint64_t quorums;                   /* quorum events, both phases */
	struct hm_latency_slot started[HM_LATENCY_SLOTS];
	uint64_t latency_sum_us, latency_count; /* consensus start to execution */

	/* Test-only misbehaviour on the send path (byzantine.h); NULL in
	 * every real deployment. */
	struct hm_byz *byz;

	/* Called for every executed batch (tests, logs). */
	void (*on_executed)(void *ctx, const struct pbft_executed *e);
	void *on_executed_ctx;
	/* Called when a state is installed at seq (state transfer, recovery):
	 * executions continue after seq, the batches up to it were not run. */
	void (*on_installed)(void *ctx, uint64_t seq);

	/* Persistence (hm_node_open_state; docs/persistence.md). */
	struct hm_persist *persist;
	bool persist_degraded;          /* appends refused: no replies leave */
	uint64_t persist_errors;
	uint64_t replies_held;          /* replies not sent while degraded */
	/* view-change counters already logged (log_views in node.c) */
	uint64_t vc_logged[5];
	enum hm_recovery_status recovery_status;
	uint64_t recovered_seq;         /* last seq executed after recovery */
	uint64_t incarnation;           /* starts on these files, this one included */
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
uint64_t hm_node_next_deadline(const struct hm_node *nd);

/* xdp mode: votes are counted in the kernel from now on. */
void hm_node_use_kernel(struct hm_node *nd, const struct hm_kernel_votes *k);
/* xdp mode: the TC egress program stamps the MAC of messages to the peers
 * in `stamped`, and fans a datagram sent to `fanout` (port != 0) out to
 * every peer, for datagrams of at most max_len bytes (larger ones leave as
 * IP fragments, which TC cannot rewrite).  A broadcast goes through the
 * fan-out only when every peer is in `stamped`; otherwise one copy a peer,
 * stamped here where TC won't. */
void hm_node_set_egress(struct hm_node *nd, uint16_t stamped, const struct sockaddr_in *fanout,
			size_t max_len);
/* A quorum or equivocation event from the kernel's vote counter. */
void hm_node_vote_event(struct hm_node *nd, const struct hm_vote_event *ev);
/* How far the peers got, as the kernel saw it (hm_progress). */
void hm_node_observe_progress(struct hm_node *nd, uint64_t seq);
/* A replica's normal-case messages name a view above ours, as the kernel saw
 * it (node_stats max_view_seen): view catch-up (pbft_observe_view). */
void hm_node_observe_view(struct hm_node *nd, uint32_t sender, uint64_t view);

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
/* Tests only: route every message to a replica through b (owned by the
 * caller; NULL turns it off).  Disables the TC fan-out, which would send
 * one copy to all. */
void hm_node_set_byzantine(struct hm_node *nd, struct hm_byz *b);
/* True once a crash-mode replica's time has come: its host stops it. */
bool hm_node_byz_crashed(struct hm_node *nd);

/* Sum of a drop reason over every sender. */
uint64_t hm_node_drops(const struct hm_node *nd, enum hm_drop_reason reason);

#endif /* HM_NODE_H */
