/* SPDX-License-Identifier: MIT */
/*
 * The PBFT replica core: a deterministic state machine with no sockets,
 * clocks, threads or BPF inside (the shape of etcd's raft library).
 *
 * A driver feeds it authenticated messages (link MAC and framing already
 * checked by the dataplane), quorum events from the vote counter (userspace
 * or XDP) and the current time; after each call the driver takes the Ready
 * and carries it out: send the messages, apply the vote policy to the vote
 * counter, apply the window policy to the pre-filter, record what committed.
 * The socket daemon, the XDP daemon and the in-process simulator all drive
 * this one core.
 */
#ifndef HM_PBFT_H
#define HM_PBFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "hm_maps.h"
#include "core/checkpoint.h"
#include "core/service.h"
#include "common/wire.h"

struct pbft_params {
	uint32_t n, f, id;
	uint32_t batch_size;          /* requests per PRE-PREPARE; 1 = no batching */
	uint32_t batch_timeout_ms;    /* flush a partial batch after this long */
	uint32_t pipeline_depth;      /* batches proposed but not yet executed */
	uint32_t checkpoint_interval;
	uint32_t window;              /* L: accept seq in (h, h + L] */
	uint32_t max_message_size;
	uint32_t retransmit_ms;       /* re-send our messages for open slots */
	/* A backup whose oldest pending request waits this long starts a view
	 * change; doubled for each further view while none is installed.  0
	 * turns view changes off.  With it on, pbft_new() requires vote_sigs
	 * and replica_keys, and a max_message_size under which a window of
	 * prepared certificates fits HM_VC_MAX_PARTS datagrams. */
	uint32_t view_change_timeout_ms;
	/* The fast path (docs/protocol.md, "The fast path"): commit a slot
	 * once all n replicas' matching votes (the PRE-PREPARE and n-1
	 * PREPAREs) are in and its certificate is checked, without waiting
	 * for the COMMIT round.  Attempted only while the driver allows it
	 * (pbft_set_fast_path_allowed). */
	bool fast_path;
	/* An n-of-n counted later than this after the PRE-PREPARE does not
	 * commit the slot fast (the COMMIT round runs beside the fast path
	 * and has normally committed it by then); 0: no bound. */
	uint32_t fast_path_timeout_ms;
	/* Requests carry their client's Ed25519 signature and every replica
	 * verifies it.  false: a request is authentic to a replica that got
	 * it under its client's link MAC, or holds f+1 replicas' vouches for
	 * it; a primary proposes it with 2f+1 (docs/protocol.md, "Requests:
	 * MACs and vouches"). */
	bool signed_requests;
	const struct hm_keypair *keys;
	/* n public keys, by id: for verifying stored signatures when a
	 * certificate needs them (view changes); the normal case uses MACs. */
	const uint8_t (*replica_keys)[HM_PUBKEY_LEN];
	/* The public key of a client, NULL if it is not one. */
	const uint8_t *(*client_key)(void *ctx, uint32_t client);
	void *client_key_ctx;
	/* Read-only access to the vote counter: fill sigs[i] for every bit i
	 * of voters from the (phase, view, seq) slot; 0, or -1 when the slot
	 * no longer holds them all.  Called on a PREPARE quorum (the slot is
	 * fresh then) to keep the prepared certificate, and when a kept
	 * signature turns out bad, to find another voter's.  May be NULL (then
	 * no prepared certificate can be built). */
	int (*vote_sigs)(void *ctx, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
			 hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN]);
	void *vote_sigs_ctx;
	struct hm_service *service;
};

enum pbft_dest {
	PBFT_TO_REPLICA,   /* one replica: to */
	PBFT_TO_REPLICAS,  /* every other replica */
	PBFT_TO_CLIENT,    /* the client with id to */
};

struct pbft_out {
	enum pbft_dest dest;
	uint32_t to;
	uint8_t *buf;      /* a complete message, MAC field zero */
	size_t len;
};

/* Vote-counter policy: set the digest a slot must match and, for our own
 * vote, record it (its signature too) as the vote of this replica. */
struct pbft_vote_policy {
	enum hm_vote_phase phase;
	uint64_t view, seq;
	uint8_t digest[HM_DIGEST_LEN];
	bool own_vote;
	uint8_t sig[HM_SIG_LEN];
	bool fast;    /* PREPARE: also report when every backup matched (HM_EV_FAST) */
};

/* One executed batch: for the committed log (persistence), tests. */
struct pbft_executed {
	uint64_t seq, view;
	uint8_t digest[HM_DIGEST_LEN];
	uint32_t requests;        /* operations executed (duplicates skipped) */
	const uint8_t *batch;     /* the PRE-PREPARE payload; valid until pbft_advance() */
	uint32_t batch_len;
};

/*
 * Vote log (docs/persistence.md, "Vote log"; docs/protocol.md, "Recovery"):
 * what this replica sent and must never contradict after a restart, as
 * records the core encodes and pbft_recover() reads back; the driver
 * stores them as opaque bytes.  Every record of a Ready must be durable
 * before any message of that Ready leaves.
 */
struct pbft_durable {
	uint64_t seq;             /* for the file's reader; 0: none */
	uint8_t *buf;
	uint32_t len;
};

struct pbft_ready {
	struct pbft_out *msgs;
	size_t n_msgs;
	struct pbft_vote_policy *votes;
	size_t n_votes;
	struct pbft_executed *executed;
	size_t n_executed;
	bool window_changed;      /* view or low watermark moved */
	uint64_t view, low, high; /* accept normal-case seq in (low, high] */
	/* A new stable checkpoint (the latest one if several): its proof
	 * (2f+1 signed CHECKPOINTs on the digest) and its replica-state
	 * snapshot, for hm_persist_checkpoint().  snap is valid until
	 * pbft_advance(). */
	bool stable_changed;
	struct hm_checkpoint stable;
	/* A state fetched by state transfer (or loaded by pbft_recover) was
	 * installed at this seq (0: none): executions jump to it. */
	uint64_t installed;
	/* Vote-log records to make durable before any message leaves.  With
	 * durable_rotate they are the whole live state: they replace the vote
	 * log (a new file at durable_first, the low watermark), after the
	 * stable checkpoint of this Ready is durable; else they are appended. */
	struct pbft_durable *durable;
	size_t n_durable;
	bool durable_rotate;
	uint64_t durable_first;
};

/* Counters the core keeps; the driver exports them. */
/* Why a replica started a view change (pbft_stats.view_changes_by_reason;
 * the node layer logs it, the metrics export it). */
enum pbft_vc_reason {
	PBFT_VC_REQUEST_TIMEOUT = 0, /* a signed request waited too long: lost or faulty primary */
	PBFT_VC_NEW_VIEW_TIMEOUT,    /* no NEW-VIEW in time: on to the next view */
	PBFT_VC_JOINED,              /* f+1 replicas sent VIEW-CHANGEs for higher views */
	PBFT_VC_CATCHUP_TIMEOUT,     /* view catch-up got no NEW-VIEW in time */
	PBFT_VC_REASONS,
};

const char *pbft_vc_reason_name(enum pbft_vc_reason r);

struct pbft_stats {
	uint64_t requests_received;
	uint64_t batches_proposed;
	uint64_t batches_executed;
	uint64_t ops_executed;
	uint64_t replies_resent;
	uint64_t refusals_sent;        /* refusals (MAC-only): timestamp already used */
	uint64_t reply_batches_signed; /* executed batches whose replies got one signature */
	uint64_t conflicting_requests; /* a different request at the last executed
					* timestamp (refused with CONFLICT) */
	uint64_t stale_requests;
	uint64_t bad_client_signatures;
	/* requests without signatures (pbft_auth.c) */
	uint64_t vouches_sent;         /* VOUCH messages */
	uint64_t requests_vouched;     /* requests we vouched for (entries) */
	uint64_t requests_by_vouches;  /* authentic through f+1 vouches, not our own link */
	uint64_t batches_held;         /* PRE-PREPAREs waiting for their requests' vouches */
	uint64_t bad_vouches;          /* VOUCHes refused (malformed, unknown client) */
	uint64_t checkpoints_stable;
	uint64_t checkpoint_mismatches;
	uint64_t equivocations;
	uint64_t retransmissions;     /* messages we sent again */
	uint64_t help_sent;           /* messages sent to a lagging peer */
	uint64_t service_refused;     /* requests the service's check() refused */
	/* view changes */
	uint64_t view_changes_started; /* VIEW-CHANGEs we sent (one per view) */
	uint64_t view_changes_installed; /* new views we entered */
	uint64_t view_changes_by_reason[PBFT_VC_REASONS]; /* ... started, by trigger */
	uint64_t view_changes_refused; /* invalid VIEW-CHANGEs (bad certificate) */
	uint64_t new_views_refused;    /* NEW-VIEWs refused (not primary, bad O) */
	uint64_t bad_vote_signatures;  /* stored vote/checkpoint sigs that failed */
	uint64_t certs_incomplete;     /* prepared slots left out of a VIEW-CHANGE:
					* fewer than 2f good PREPARE signatures */
	uint64_t batches_fetched;      /* batches obtained with NEW-VIEW FETCH */
	/* view catch-up (f+1 replicas seen in views above ours) */
	uint64_t view_catchups_started;  /* NEW-VIEWs asked for */
	uint64_t view_catchups_done;     /* ... installed */
	uint64_t view_catchup_timeouts;  /* no NEW-VIEW in time: view change to it */
	/* state transfer */
	uint64_t state_transfers_started;
	uint64_t state_transfers_done;
	uint64_t state_transfers_failed;
	uint64_t state_chunks_served;
	uint64_t state_bad_chunks;     /* chunks that did not verify (sender blamed) */
	hm_voters_t state_blamed;         /* replicas that served a bad chunk */
	/* Vote-log records recovery refused as malformed (cut short, a range
	 * or a VIEW-CHANGE we could not have written): only a bug or a
	 * checksum collision gets one past the files' checks. */
	uint64_t vote_records_malformed;
	uint64_t certs_waiting;        /* PREPARE quorums held back: a vote's
					* signature failed, waiting for others */
	/* fast path (docs/protocol.md, "The fast path") */
	uint64_t fast_commits;         /* slots committed on n-of-n PREPAREs */
	uint64_t normal_commits;       /* slots committed on 2f+1 COMMITs */
	uint64_t fast_commit_us;       /* sum of PRE-PREPARE-to-commit times, fast */
	uint64_t normal_commit_us;     /* ... and normal */
	/* Replicas proven faulty: a MAC-valid message carried a signature that
	 * does not verify (only its sender can have produced it), or a signed
	 * VIEW-CHANGE carried a bad certificate.  Bit i = replica i. */
	hm_voters_t proven_faulty;
};

struct pbft;

/* A full VIEW-CHANGE (a window of certificates and vote reports) and a
 * NEW-VIEW fit p->max_message_size: pbft_new() refuses parameters that do
 * not (with view changes on), and hypermeshd --check-config asks it. */
/* Send the vouches the last steps collected (signed_requests off): the
 * driver calls this after a burst of pbft_receive() calls, so that one
 * VOUCH carries a burst's requests; pbft_tick() does it too. */
void pbft_flush_vouches(struct pbft *c);

bool pbft_vc_fits(const struct pbft_params *p);
struct pbft *pbft_new(const struct pbft_params *p);
void pbft_free(struct pbft *c);

/* The primary of a view: the one place that chooses it. */
uint32_t pbft_primary(const struct pbft *c, uint64_t view);

/* Advance the core's clock (microseconds, monotonic). */
void pbft_tick(struct pbft *c, uint64_t now_us);
/* When the core next needs a tick, 0 if it has no timer pending. */
uint64_t pbft_next_deadline(const struct pbft *c);

/*
 * A message for the core: REQUEST, PRE-PREPARE, CHECKPOINT, STATUS,
 * VIEW-CHANGE, NEW-VIEW (votes go through the vote counter).  Returns 0 if accepted, -1 with *why if refused.
 */
int pbft_receive(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);

/* A message flagged HM_FLAG_RETRANSMIT from replica m->sender, accepted or
 * absorbed as a duplicate: the sender is missing something for that slot,
 * so if we are past it we answer with our own messages for it. */
void pbft_on_retransmission(struct pbft *c, const struct hm_msg *m);

/* A replica message for seq passed the pre-filter's identity checks (it may
 * still have been dropped, e.g. as out of the window): if seq is beyond what
 * we executed, we are behind and ask our peers with STATUS. */
void pbft_observe_seq(struct pbft *c, uint64_t seq);

/* A MAC-valid normal-case message from replica `sender` named `view`, above
 * the view the pre-filter takes (it dropped it as bad_view).  The core keeps
 * the highest view per sender; once f+1 replicas are above its view it
 * asks for the NEW-VIEW of the (f+1)-th highest (view catch-up) and an old
 * view's primary stops proposing. */
void pbft_observe_view(struct pbft *c, uint32_t sender, uint64_t view);

/* A vote-counter event (a quorum, or equivocation by a voter). */
void pbft_on_vote_event(struct pbft *c, const struct hm_vote_event *ev);

/* What to carry out now; valid until pbft_advance(). */
bool pbft_has_ready(const struct pbft *c);
void pbft_ready(struct pbft *c, struct pbft_ready *rd);
void pbft_advance(struct pbft *c);

/* Introspection for status, tests and the simulator. */
uint64_t pbft_view(const struct pbft *c);
uint64_t pbft_last_executed(const struct pbft *c);
uint64_t pbft_low_watermark(const struct pbft *c);
void pbft_state_digest(const struct pbft *c, uint8_t out[HM_DIGEST_LEN]);
const struct pbft_stats *pbft_stats(const struct pbft *c);
/* True while a view change is under way (normal-case messages refused). */
bool pbft_in_view_change(const struct pbft *c);
/* The view a view change targets (the current view when none is under way). */
uint64_t pbft_view_target(const struct pbft *c);
/* View catch-up: the view whose NEW-VIEW we asked for (0: none). */
uint64_t pbft_catchup_view(const struct pbft *c);
/* The head digest of the VIEW-CHANGE for `view` we hold from `sender`, once
 * it is complete and valid. */
bool pbft_vc_digest(const struct pbft *c, uint32_t sender, uint64_t view,
		    uint8_t out[HM_DIGEST_LEN]);
/* The NEW-VIEW payload for `view` that this replica would send as its
 * primary, from the valid VIEW-CHANGEs it holds (the primary's own
 * computation; tests use it to forge variants).  0 if it has too few. */
size_t pbft_new_view_payload(struct pbft *c, uint64_t view, uint8_t *buf, size_t cap);
/*
 * The replica state a checkpoint certifies: the client table (per client:
 * id, timestamp of its last executed request, the reply payload) and the
 * service snapshot, serialised; CHECKPOINT digests are
 * hm_st_state_digest() over it.  Returns a malloc'd buffer or NULL.
 */
uint8_t *pbft_snapshot(struct pbft *c, size_t *len);

/*
 * Recovery at start (before any message): install a persisted stable
 * checkpoint (cp may be NULL: none), re-execute the committed log records[]
 * that follow it, then restore from the vote log votes[] what this replica
 * sent before (its view state, PRE-PREPAREs, PREPAREs, prepared
 * certificates, COMMITs, VIEW-CHANGE): it re-sends those and never sends
 * anything that contradicts them.
 *
 * `restarted`: this replica ran before.  If then `votes_intact` is false
 * (the vote log is missing or corrupt), it cannot know what it sent, and
 * keeps the silent rule: no PRE-PREPARE, PREPARE or COMMIT for any seq up to
 * max(cp seq, seq_hint) + the window, the highest it can have voted on
 * before the crash (seq_hint: the highest seq its files name, damaged ones
 * included), and it never leads the view it recovered (docs/protocol.md,
 * "Recovery").  The rule is itself recorded in the vote log, so it holds
 * across further restarts until passed.  Each step is checked (the
 * checkpoint's snapshot against its digest and proof, each record's batch
 * against its digest); the replay stops at the first that fails.  Returns
 * the number of the last seq now executed; *incomplete is set when
 * something was refused or `complete` is false (the files were corrupt):
 * the replica then fetches the state of the group's next stable checkpoint
 * by state transfer.
 */
uint64_t pbft_recover(struct pbft *c, const struct hm_checkpoint *cp,
		      const struct hm_log_record *records, size_t n, bool complete,
		      bool restarted, uint64_t seq_hint, const struct hm_vote_record *votes,
		      size_t nvotes, bool votes_intact, bool *incomplete);
/*
 * What persistence needs to start its files afresh after a disk failure
 * (node.c; docs/persistence.md "Disk errors").  pbft_durable_base(): the
 * stable checkpoint as pbft_ready.stable gives it (false when there is none
 * with a state yet; out->snap is the core's, valid until the next call into
 * the core), and through *recs / *n the executed batches after it, in
 * order, as committed-log records (malloc'd array; each batch points into
 * the core's log, same validity; free only the array).  The records stop
 * at the first executed seq whose batch the core no longer holds.
 */
bool pbft_durable_base(struct pbft *c, struct hm_checkpoint *out, struct hm_log_record **recs,
		       size_t *n);
/* The next Ready carries the whole live vote-log state (durable_rotate),
 * as at a stable checkpoint: the driver replaces its vote log with it. */
void pbft_rotate_durable(struct pbft *c);

/* The silent rule's bound: no votes of ours for seq <= this (0: none; only
 * after a restart whose vote log was lost or corrupt). */
uint64_t pbft_silent_until(const struct pbft *c);
/* True when the silent rule applies (a restart without an intact vote log). */
bool pbft_restart_silent(const struct pbft *c);
/* True while a state transfer is running. */
bool pbft_transferring(const struct pbft *c);

/* The fast path is attempted (new slots' PREPARE policies ask for the
 * n-of-n event) only while allowed and pbft_params.fast_path is set; the
 * driver decides from reputation.  Never changes a quorum. */
void pbft_set_fast_path_allowed(struct pbft *c, bool allowed);
bool pbft_fast_path_active(const struct pbft *c);

/* The digest of the prepared certificate held at seq (that of the latest
 * view it prepared in), false if none. */
bool pbft_prepared_digest(const struct pbft *c, uint64_t seq, uint8_t out[HM_DIGEST_LEN]);

/* The digest committed at seq, false if not (or no longer) known. */
bool pbft_committed_digest(const struct pbft *c, uint64_t seq, uint8_t out[HM_DIGEST_LEN]);

#endif /* HM_PBFT_H */
