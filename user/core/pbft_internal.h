// SPDX-License-Identifier: MIT
/*
 * The PBFT core's private header: the replica's struct and its records,
 * and the functions one part of the core calls in another.  Included only
 * by user/core/pbft*.c; the drivers see pbft.h.
 *
 *   pbft.c        the normal case: requests, batching, PRE-PREPARE, PREPARE
 *                 and COMMIT quorums, execution, checkpoints, retransmission,
 *                 and the driver's interface (pbft_receive, pbft_tick, Ready)
 *   pbft_view.c   view changes: VIEW-CHANGE, NEW-VIEW, O, the timers
 *   pbft_fetch.c  what is fetched around view changes (VIEW-CHANGEs, relayed
 *                 ones, batches, committed claims, checkpoint proofs) and
 *                 view catch-up
 *   pbft_state.c  the replica state a checkpoint certifies, state transfer
 *                 and recovery after a restart
 */
#ifndef HM_PBFT_INTERNAL_H
#define HM_PBFT_INTERNAL_H

#include "core/pbft.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "core/state_transfer.h"

struct client_rec {
	uint32_t id;
	uint64_t last_ts;   /* timestamp of the last executed request */
	uint64_t queued_ts; /* primary: newest timestamp queued or proposed */
	bool in_queue;      /* primary: a request waits in the batch queue */
	/* The last reply: a header (unsigned, unsent) and the reply body (what
	 * the certified state keeps, pbft_snapshot()).  A retransmission gets
	 * the body again with the proof below, built into a fresh message. */
	uint8_t *reply;
	size_t reply_len;
	/* Its batch proof, encoded (NULL: none, e.g. after a restore from a
	 * checkpoint), and the leaf it proves: used only while the leaf is
	 * the cached reply's, so a reply restored in place of it goes out
	 * without a proof rather than with another's. */
	uint8_t *proof;
	size_t proof_len;
	uint8_t proof_leaf[HM_DIGEST_LEN];
	/* The newest request seen but not executed (0: none), kept so that a
	 * view-change timeout can verify it and a new primary can propose it. */
	uint64_t pending_ts;
	uint8_t *pending;
	size_t pending_len;
	/* Requests without signatures (pbft_auth.c).  auth: the newest
	 * request we hold authentic (our link's MAC, or f+1 vouches); ready:
	 * the newest with 2f+1 vouches (timed, proposable); vouch[j]:
	 * replica j's newest vouch for this client (NULL until one). */
	uint64_t auth_ts, ready_ts, vouched_at;
	uint8_t auth_digest[HM_DIGEST_LEN];
	struct client_vouch {
		uint64_t ts;
		uint8_t digest[HM_DIGEST_LEN];
	} *vouch;
	UT_hash_handle hh;
};

/* A PRE-PREPARE whose requests are not all authentic to us yet. */
struct held_pp {
	uint8_t *buf;
	size_t len;
	uint64_t view, seq;
};

/* Arrival order of pending requests: the head is the oldest (entries whose
 * request executed or was replaced are skipped lazily). */
struct pending_mark {
	uint32_t client;
	uint64_t ts, since;
};

struct pending_req {
	uint8_t *buf;       /* the request message, MAC zeroed */
	size_t len;
	uint64_t queued_at;
};

struct log_entry {
	uint64_t seq, view;
	bool has_pp, prepared, commit_quorum, committed;
	bool cert_wait;     /* PREPARE quorum seen, certificate not yet checked */
	/* Sent by us in e->view (and in the vote log): the PRE-PREPARE as its
	 * primary or our PREPARE; our COMMIT.  Cleared with has_pp. */
	bool own_pp, own_commit;
	uint8_t digest[HM_DIGEST_LEN];
	uint8_t pp_sig[HM_SIG_LEN]; /* the primary's, for prepared certificates */
	hm_voters_t helped;    /* peers sent this slot since helped_at */
	uint64_t helped_at;
	uint8_t *batch;     /* the PRE-PREPARE's payload */
	uint32_t batch_len;
	/* The prepared certificate of the latest view this seq prepared in:
	 * kept across view changes until a later view prepares it. */
	bool has_cert;
	uint64_t cert_view;
	uint8_t cert_digest[HM_DIGEST_LEN];
	uint32_t cert_pp_len;
	uint8_t cert_pp_sig[HM_SIG_LEN];
	hm_voters_t cert_voters;
	uint8_t cert_sigs[HM_MAX_REPLICAS][HM_SIG_LEN];
	/* Our latest vote at this seq (our PREPARE, or our PRE-PREPARE as
	 * primary) and its view: kept across view changes, reported in our
	 * VIEW-CHANGE for the fast path (docs/protocol.md, "The fast path"). */
	bool has_vote;
	uint64_t vote_view;
	uint8_t vote_digest[HM_DIGEST_LEN];
	uint64_t pp_at;     /* when we accepted or sent the PRE-PREPARE (latency) */
	/* All n votes for (fast_view, digest) were in (HM_EV_FAST): commits
	 * once prepared in that view (pbft_fast_ready). */
	bool fast;
	uint64_t fast_view;
	/* The digest the NEW-VIEW of nv_view assigns this seq (its O). */
	uint64_t nv_view;
	uint8_t nv_digest[HM_DIGEST_LEN];
	bool nv_need;       /* primary: the batch is being fetched */
	/* Catch-up across views: peers' claims that this seq committed. */
	hm_voters_t claimed;
	uint8_t claims[HM_MAX_REPLICAS][HM_DIGEST_LEN];
	hm_voters_t fetch_served;  /* peers sent this slot's batch since fetch_at */
	uint64_t fetch_at;
};

/* Checkpoint votes for one sequence number (at most window/interval + 1 of
 * them are live at once; the configuration keeps that within
 * HM_MAX_LIVE_CHECKPOINTS). */
struct checkpoint_rec {
	uint64_t seq;       /* 0 = free */
	hm_voters_t voted;
	bool own_known;
	uint8_t own[HM_DIGEST_LEN];
	uint8_t digests[HM_MAX_REPLICAS][HM_DIGEST_LEN];
	uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN];
	uint64_t views[HM_MAX_REPLICAS]; /* the view each CHECKPOINT was signed in */
	uint8_t *snap;      /* own_known: the replica state own certifies */
	size_t snap_len;
};

/* A peer's CHECKPOINT above what we executed: 2f+1 matching ones certify a
 * state we may fetch by state transfer.  Each peer's last few are kept. */
#define PBFT_CLAIMS 4
struct cp_claim {
	uint64_t seq, view;   /* seq 0: empty */
	uint8_t digest[HM_DIGEST_LEN];
	uint8_t sig[HM_SIG_LEN];
};

/* One certificate of a valid VIEW-CHANGE, as O's computation needs it. */
struct vc_sum {
	uint64_t seq, view;
	uint8_t digest[HM_DIGEST_LEN];
	bool report;        /* a vote report (no certificate): the fast path */
};

/* One replica's VIEW-CHANGE for `view`: its datagrams as received (MAC and
 * flags zeroed), part 0 the head.  Each replica's are kept per view in a
 * ring of PBFT_VC_RING (the lowest view goes first), ours included: a
 * NEW-VIEW may name one its sender has since superseded, and a peer may
 * still wait in a view we left (docs/protocol.md, "Views kept per sender"). */
#define PBFT_VC_RING 4
/* Nothing executed for this many retransmit intervals: a STATUS (pbft_tick). */
#define PBFT_IDLE_STATUS_ROUNDS 5
struct vc_rec {
	uint64_t view;      /* 0: empty */
	uint8_t nparts;     /* 0 until the HEAD arrived */
	uint64_t have;      /* bit i: part i held */
	uint8_t *part[HM_VC_MAX_PARTS];
	uint32_t part_len[HM_VC_MAX_PARTS];
	bool checked, valid;
	/* once valid */
	uint64_t n;
	uint8_t cp_digest[HM_DIGEST_LEN];
	struct vc_sum *sums;
	size_t n_sums;
};

struct sig_memo {           /* a verified (or refuted) stored signature */
	uint8_t key[HM_DIGEST_LEN];
	bool ok;
	UT_hash_handle hh;
};

#define GROW(arr, n, cap)                                                     \
	do {                                                                  \
		if ((n) == (cap)) {                                           \
			size_t nc_ = (cap) ? 2 * (cap) : 16;                  \
			void *p_ = realloc((arr), nc_ * sizeof(*(arr)));      \
			if (!p_)                                              \
				abort();                                      \
			(arr) = p_;                                           \
			(cap) = nc_;                                          \
		}                                                             \
	} while (0)

struct pbft {
	struct pbft_params p;
	uint64_t now;
	uint64_t view;
	uint64_t low;           /* h: sequence of the last stable checkpoint */
	uint64_t next_seq;      /* primary: last sequence number assigned */
	uint64_t last_executed;
	/* Entries indexed by seq % log_size.  The log holds the window and one
	 * checkpoint interval below it, so a peer that lags by less than an
	 * interval can still be sent the slots it missed. */
	struct log_entry *log;
	uint32_t log_size;      /* window + checkpoint_interval */
	struct checkpoint_rec stable; /* the last stable checkpoint's votes */
	struct client_rec *clients;
	/* pbft_auth.c: our vouches not yet sent (a batch payload under
	 * construction), PRE-PREPAREs held for vouches, and whether a request
	 * became authentic since they were last tried. */
	uint8_t *vouch_out;
	uint32_t vouch_out_len, vouch_out_count;
	struct held_pp *held;
	size_t n_held, cap_held;
	bool auth_changed, retrying;
	struct pending_req *queue;
	size_t q_head, q_len, q_cap;
	struct checkpoint_rec cps[HM_MAX_LIVE_CHECKPOINTS];
	uint64_t next_retransmit; /* 0 = nothing sent that may need it */
	uint64_t idle_status_at;  /* the last STATUS of idle_status() */
	uint64_t highest_seen;    /* highest seq any peer's message named */
	uint64_t executed_at_last_retransmit;
	uint64_t status_served_at[HM_MAX_REPLICAS]; /* throttles STATUS answers */
	uint64_t checkpoint_helped_at[HM_MAX_REPLICAS];
	struct pbft_stats stats;

	bool fast_allowed;        /* pbft_set_fast_path_allowed */

	/* view changes */
	bool in_vc;
	uint64_t vc_target;       /* in_vc: the view we change to */
	uint32_t vc_backoff;      /* timeouts doubled this many times */
	uint64_t vc_timer_at;     /* in_vc: when 2f+1 VIEW-CHANGEs were in */
	bool view_works;          /* a request executed since the view began */
	struct vc_rec vcs[HM_MAX_REPLICAS][PBFT_VC_RING]; /* use pbft_vc_find/pbft_vc_own */
	uint8_t *nv_pending;      /* a NEW-VIEW waiting for VIEW-CHANGEs */
	size_t nv_pending_len;
	uint64_t nv_pending_view;
	uint8_t *nv_sent;         /* primary: the NEW-VIEW payload of c->view */
	size_t nv_sent_len;
	uint64_t nv_view, nv_min_s, nv_max_s; /* the last NEW-VIEW installed */
	uint64_t nv_served_at[HM_MAX_REPLICAS];
	uint64_t vc_fetch_at[HM_MAX_REPLICAS];
	uint64_t vc_served_at[HM_MAX_REPLICAS];
	/* A VIEW-CHANGE that a NEW-VIEW names and that we do not hold as named
	 * (missing, or its sender signed another one for that view and we
	 * hold that): vc_alt[j].view is the view (0: none), vc_alt_want[j]
	 * the head digest.  Filled from j or relayed by any replica that holds
	 * it (HM_NV_VC), then moved into the ring (docs/protocol.md, "NEW-VIEW:
	 * references and H(O)"). */
	struct vc_rec vc_alt[HM_MAX_REPLICAS];
	uint8_t vc_alt_want[HM_MAX_REPLICAS][HM_DIGEST_LEN];
	/* view catch-up: the highest view of each peer's normal-case messages
	 * the pre-filter dropped as bad_view (pbft_observe_view) */
	uint64_t seen_view[HM_MAX_REPLICAS];
	uint64_t cu_view;         /* the view whose NEW-VIEW we asked for (0: none) */
	uint64_t cu_at;           /* when; start_view_change(cu_view) after a timeout */
	uint64_t cu_fetch_at;     /* throttles the FETCH */
	struct pending_mark *pend;
	size_t pend_head, pend_len, pend_cap;
	struct sig_memo *memo;
	/* PRE-PREPAREs of the view we change to that came before its NEW-VIEW
	 * (at most a window of them), processed once it is installed. */
	uint8_t **early;
	size_t n_early;

	/* state transfer and recovery (docs/persistence.md) */
	struct cp_claim claims[HM_MAX_REPLICAS][PBFT_CLAIMS];
	bool st_running;
	struct hm_st st;
	struct hm_cp_vote st_votes[HM_MAX_REPLICAS];
	uint32_t st_nvotes;
	uint64_t st_view;
	bool need_state;          /* recovery was incomplete: fetch state */
	uint64_t silent_until;    /* restarted: no votes of ours up to here */
	uint64_t diverged;        /* 2f+1 others certified another state here */
	bool restarted;
	uint64_t mute_view;       /* restarted: the view recovered, never led */
	/* Restarted as the primary of the view it recovered (vote log intact):
	 * it votes, but does not lead that view (mute_view), see
	 * pbft_acting_primary. */
	bool mute_lead;
	bool far_seen;            /* a peer named a seq beyond 2 windows */
	uint64_t far_highest;     /* the highest such seq, judged again at an install */
	uint64_t progress_at;     /* last execution (or state installed) */
	struct hm_st_server srv;  /* serves c->stable's snapshot */
	bool srv_ok;
	uint64_t served_at[HM_MAX_REPLICAS];
	uint32_t served[HM_MAX_REPLICAS];
	bool stable_changed;
	uint64_t installed;
	uint8_t **exec_batches;   /* copies for the Ready's executed[] */
	/* the vote log (pbft_votes.c) */
	struct pbft_durable *dur;
	size_t n_dur, cap_dur;
	bool dur_rotate;          /* the next Ready replaces the vote log */

	/* the Ready being built */
	struct pbft_out *msgs;
	size_t n_msgs, cap_msgs;
	struct pbft_vote_policy *votes;
	size_t n_votes, cap_votes;
	struct pbft_executed *exec;
	size_t n_exec, cap_exec;
	bool window_changed;
};

/* ---- pbft.c: the normal case ---- */

bool pbft_is_primary(const struct pbft *c);
bool pbft_in_window(const struct pbft *c, uint64_t seq);
struct log_entry *pbft_entry_at(struct pbft *c, uint64_t seq);
struct log_entry *pbft_entry_claim(struct pbft *c, uint64_t seq);
void pbft_entry_set_batch(struct log_entry *e, const uint8_t *batch, uint32_t len,
			  const uint8_t digest[HM_DIGEST_LEN]);
struct client_rec *pbft_client_get(struct pbft *c, uint32_t id);
void pbft_emit(struct pbft *c, enum pbft_dest dest, uint32_t to, uint8_t *buf, size_t len);
struct hm_hdr *pbft_send_flagged(struct pbft *c, enum pbft_dest dest, uint32_t to,
				   uint8_t type, uint16_t flags, uint64_t view, uint64_t seq,
				   const uint8_t *digest, const void *payload, uint32_t plen);
struct hm_hdr *pbft_send_msg(struct pbft *c, enum pbft_dest dest, uint32_t to, uint8_t type,
			       uint64_t view, uint64_t seq, const uint8_t *digest,
			       const void *payload, uint32_t plen);
void pbft_emit_vote_policy(struct pbft *c, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
			const uint8_t *digest, const uint8_t *own_sig);
int pbft_refuse(enum hm_drop_reason *why, enum hm_drop_reason reason);
size_t pbft_queued(const struct pbft *c);
void pbft_queue_push(struct pbft *c, const struct hm_msg *m);
bool pbft_silent(const struct pbft *c, uint64_t seq);
bool pbft_acting_primary(const struct pbft *c);
void pbft_maybe_propose(struct pbft *c);
int pbft_on_request(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);
/* A PRE-PREPARE can carry m alone (with room for the NEW-VIEW wrapping). */
bool pbft_request_fits(const struct pbft *c, const struct hm_msg *m);
/* Primary: queue r's request m for a batch (the service's admission
 * check, one waiting request per client). */
int pbft_propose_request(struct pbft *c, struct client_rec *r, const struct hm_msg *m,
			 enum hm_drop_reason *why);
/* Build and queue a message without a signature (MAC only). */
struct hm_hdr *pbft_send_unsigned(struct pbft *c, enum pbft_dest dest, uint32_t to, uint8_t type,
				  uint64_t view, uint64_t seq, const void *payload, uint32_t plen);

/* ---- pbft_auth.c: requests without signatures ---- */

/* m came from its client under our link's MAC (r: its record): vouch for
 * it (both modes); pbft_auth_direct() also proposes it once ready. */
int pbft_vouch_direct(struct pbft *c, struct client_rec *r, const struct hm_msg *m,
		      enum hm_drop_reason *why);
int pbft_auth_direct(struct pbft *c, struct client_rec *r, const struct hm_msg *m,
		     enum hm_drop_reason *why);
/* m, the request we executed last for r, came again from its client. */
void pbft_vouch_executed(struct pbft *c, struct client_rec *r, const struct hm_msg *m);
int pbft_on_vouch(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);
/* req (inside a PRE-PREPARE) is authentic to us, or executed already. */
bool pbft_request_authentic(const struct pbft *c, const struct hm_msg *req);
void pbft_hold_pre_prepare(struct pbft *c, const struct hm_msg *m);
void pbft_retry_held(struct pbft *c);
void pbft_held_clear(struct pbft *c);
void pbft_auth_free(struct pbft *c);
/* The service's check() (local admission policy), counted when it refuses. */
bool pbft_service_accepts(struct pbft *c, const struct hm_msg *req);
int pbft_check_batch(struct pbft *c, const uint8_t *batch, uint32_t len, bool need_auth,
		       enum hm_drop_reason *why);
int pbft_on_pre_prepare(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);
struct checkpoint_rec *pbft_checkpoint_get(struct pbft *c, uint64_t seq, bool create);
void pbft_make_stable(struct pbft *c, struct checkpoint_rec *cp);
void pbft_record_checkpoint_vote(struct checkpoint_rec *cp, uint32_t voter, uint64_t view,
				   const uint8_t *digest, const uint8_t *sig);
void pbft_execute_committed(struct pbft *c);
void pbft_retransmit(struct pbft *c);
void pbft_observe_far(struct pbft *c); /* after an install: the seqs named too far before */

/* Record our own vote at e (e->view, e->digest) for vote reports. */
void pbft_note_vote(struct log_entry *e);
/* As primary: propose e's batch at e->seq in the current view (pbft.c). */
void pbft_send_own_pre_prepare(struct pbft *c, struct log_entry *e);

/* ---- pbft_view.c: view changes ---- */

void pbft_vc_rec_clear(struct vc_rec *r);
/* The VIEW-CHANGE for `view` held from replica j (NULL: none). */
struct vc_rec *pbft_vc_find(const struct pbft *c, uint32_t j, uint64_t view);
/* Our own VIEW-CHANGE for `view` (NULL: none): the one place that finds it. */
struct vc_rec *pbft_vc_own(const struct pbft *c, uint64_t view);
/* A record for j's VIEW-CHANGE of `view`: the one held, else a free slot,
 * else the slot of j's lowest view if that is below `view` (cleared);
 * NULL when the ring holds only higher views. */
struct vc_rec *pbft_vc_slot(struct pbft *c, uint32_t j, uint64_t view);
/* f+1 other replicas are seen in views above ours (view catch-up). */
bool pbft_views_behind(const struct pbft *c);
void pbft_memo_clear(struct pbft *c);
bool pbft_stored_sig_ok(struct pbft *c, uint8_t type, uint32_t signer, uint32_t plen,
			  uint64_t view, uint64_t seq, const uint8_t *digest, const uint8_t *sig);
void pbft_proven_faulty(struct pbft *c, uint32_t replica);
int pbft_stash_early(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);
void pbft_early_clear(struct pbft *c);
void pbft_track_pending(struct pbft *c, struct client_rec *r, const struct hm_msg *m);
/* The two halves of pbft_track_pending: keep m's body as r's pending
 * request; start the view-change timer on it. */
void pbft_keep_pending(struct client_rec *r, const struct hm_msg *m);
void pbft_time_pending(struct pbft *c, struct client_rec *r);
uint64_t pbft_vc_deadline(const struct pbft *c);
bool pbft_cert_prepares(struct pbft *c, struct log_entry *e, hm_voters_t *voters,
			  uint8_t out[HM_MAX_REPLICAS][HM_SIG_LEN]);
void pbft_send_checkpoint_proof(struct pbft *c, uint32_t peer);
size_t pbft_put_checkpoint_proof(struct pbft *c, uint8_t *buf, uint8_t *ncp);
void pbft_install(struct pbft *c, uint64_t view, uint64_t lo, uint64_t hi,
		    const uint8_t (*o)[HM_DIGEST_LEN], const uint8_t *ids, unsigned nrefs);
void pbft_vc_timers(struct pbft *c);
bool pbft_vc_retransmit(struct pbft *c);
int pbft_on_view_change(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);
void pbft_fetch_committed(struct pbft *c);
int pbft_on_new_view(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);

/* ---- pbft_votes.c: the vote log ---- */

void pbft_dur_view(struct pbft *c, const uint8_t (*o)[HM_DIGEST_LEN]);
void pbft_dur_pre_prepare(struct pbft *c, const uint8_t *dgram, size_t len);
void pbft_dur_cert(struct pbft *c, const struct log_entry *e);
void pbft_dur_commit(struct pbft *c, const struct log_entry *e);
void pbft_dur_vc(struct pbft *c, const struct vc_rec *r);
void pbft_dur_vote(struct pbft *c, const struct log_entry *e);
void pbft_dur_ready(struct pbft *c, struct pbft_ready *rd);
void pbft_dur_advance(struct pbft *c);
void pbft_votes_restore(struct pbft *c, const struct hm_vote_record *votes, size_t n);
void pbft_votes_resend(struct pbft *c);

/* pbft_view.c, for the vote log: our own VIEW-CHANGE datagrams, restored;
 * false when a part is not one of ours for that view (nothing restored). */
bool pbft_vc_restore_own(struct pbft *c, uint64_t view, uint8_t **parts, const uint32_t *lens,
			 unsigned nparts);

/* ---- pbft_state.c: state transfer and recovery ---- */

void pbft_stable_proof(struct pbft *c, struct hm_checkpoint *out);
void pbft_claim_record(struct pbft *c, uint32_t sender, uint64_t view, uint64_t seq,
			 const uint8_t *digest, const uint8_t *sig);
void pbft_st_release(struct pbft *c);
void pbft_maybe_transfer(struct pbft *c);
void pbft_st_tick(struct pbft *c);
int pbft_on_state_request(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);
int pbft_on_state_chunk(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);

/* ---- pbft_view.c, for pbft_fetch.c ---- */

const struct hm_hdr *pbft_dgram_hdr(const uint8_t *d);
void pbft_emit_copy(struct pbft *c, enum pbft_dest dest, uint32_t to, const uint8_t *dgram,
		      size_t len, uint16_t flags);
bool pbft_throttle_ok(const struct pbft *c, uint64_t *at);
void pbft_nv_propose(struct pbft *c, uint64_t s);
int pbft_serve_new_view_fetch(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);
void pbft_vc_progress(struct pbft *c);
int pbft_vc_store(struct pbft *c, struct vc_rec *r, const uint8_t *d, size_t len,
		    const struct hm_vc_payload *v, const uint8_t *dig, bool relayed,
		    enum hm_drop_reason *why);
bool pbft_vc_alt_takes(const struct pbft *c, uint32_t j, uint64_t view,
			 const struct hm_vc_payload *v, const uint8_t *dig);
void pbft_vc_alt_done(struct pbft *c, uint32_t j);

/* ---- pbft_fetch.c: fetching, relaying, committed catch-up, view catch-up ---- */

void pbft_catchup_fetch(struct pbft *c);
int pbft_on_vc_relay(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		       enum hm_drop_reason *why);
int pbft_on_fetch(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		    enum hm_drop_reason *why);
int pbft_on_batch(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		    enum hm_drop_reason *why);
int pbft_on_proof(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		    enum hm_drop_reason *why);

#endif
