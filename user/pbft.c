// SPDX-License-Identifier: MIT
/*
 * The PBFT normal case (Castro and Liskov, OSDI'99 / TOCS'02): requests,
 * batching into PRE-PREPAREs, PREPARE and COMMIT quorums, execution in
 * sequence order, replies with a per-client cache, checkpoints that move
 * the watermark window.  See pbft.h for how a driver uses it.
 */
#include "pbft.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "state_transfer.h"

struct client_rec {
	uint32_t id;
	uint64_t last_ts;   /* timestamp of the last executed request */
	uint64_t queued_ts; /* primary: newest timestamp queued or proposed */
	bool in_queue;      /* primary: a request waits in the batch queue */
	uint8_t *reply;     /* last reply, re-sent on a retransmission */
	size_t reply_len;
	/* The newest request seen but not executed (0: none), kept so that a
	 * view-change timeout can verify it and a new primary can propose it. */
	uint64_t pending_ts;
	uint8_t *pending;
	size_t pending_len;
	UT_hash_handle hh;
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
	uint8_t digest[HM_DIGEST_LEN];
	uint8_t pp_sig[HM_SIG_LEN]; /* the primary's, for prepared certificates */
	uint16_t helped;    /* peers sent this slot since helped_at */
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
	uint16_t cert_voters;
	uint8_t cert_sigs[HM_MAX_REPLICAS][HM_SIG_LEN];
	/* The digest the NEW-VIEW of nv_view assigns this seq (its O). */
	uint64_t nv_view;
	uint8_t nv_digest[HM_DIGEST_LEN];
	bool nv_need;       /* primary: the batch is being fetched */
	/* Catch-up across views: peers' claims that this seq committed. */
	uint16_t claimed;
	uint8_t claims[HM_MAX_REPLICAS][HM_DIGEST_LEN];
	uint16_t fetch_served;  /* peers sent this slot's batch since fetch_at */
	uint64_t fetch_at;
};

/* Checkpoint votes for one sequence number (at most window/interval + 1 of
 * them are live at once; the configuration keeps that within
 * HM_MAX_LIVE_CHECKPOINTS). */
struct checkpoint_rec {
	uint64_t seq;       /* 0 = free */
	uint16_t voted;
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
};

/* One replica's VIEW-CHANGE for `view`: its datagrams as received (MAC and
 * flags zeroed), part 0 the head. */
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
	struct pending_req *queue;
	size_t q_head, q_len, q_cap;
	struct checkpoint_rec cps[HM_MAX_LIVE_CHECKPOINTS];
	uint64_t next_retransmit; /* 0 = nothing sent that may need it */
	uint64_t highest_seen;    /* highest seq any peer's message named */
	uint64_t executed_at_last_retransmit;
	uint64_t status_served_at[HM_MAX_REPLICAS]; /* throttles STATUS answers */
	uint64_t checkpoint_helped_at[HM_MAX_REPLICAS];
	struct pbft_stats stats;

	/* view changes */
	bool in_vc;
	uint64_t vc_target;       /* in_vc: the view we change to */
	uint32_t vc_backoff;      /* timeouts doubled this many times */
	uint64_t vc_timer_at;     /* in_vc: when 2f+1 VIEW-CHANGEs were in */
	bool view_works;          /* a request executed since the view began */
	struct vc_rec vcs[HM_MAX_REPLICAS];
	uint8_t *nv_pending;      /* a NEW-VIEW waiting for VIEW-CHANGEs */
	size_t nv_pending_len;
	uint64_t nv_pending_view;
	uint8_t *nv_sent;         /* primary: the NEW-VIEW payload of c->view */
	size_t nv_sent_len;
	uint64_t nv_view, nv_min_s, nv_max_s; /* the last NEW-VIEW installed */
	uint64_t nv_served_at[HM_MAX_REPLICAS];
	uint64_t vc_fetch_at[HM_MAX_REPLICAS];
	uint64_t vc_served_at[HM_MAX_REPLICAS];
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
	bool far_seen;            /* a peer named a seq beyond 2 windows */
	uint64_t progress_at;     /* last execution (or state installed) */
	struct hm_st_server srv;  /* serves c->stable's snapshot */
	bool srv_ok;
	uint64_t served_at[HM_MAX_REPLICAS];
	uint32_t served[HM_MAX_REPLICAS];
	bool stable_changed;
	uint64_t installed;
	uint8_t **exec_batches;   /* copies for the Ready's executed[] */

	/* the Ready being built */
	struct pbft_out *msgs;
	size_t n_msgs, cap_msgs;
	struct pbft_vote_policy *votes;
	size_t n_votes, cap_votes;
	struct pbft_executed *exec;
	size_t n_exec, cap_exec;
	bool window_changed;
};

/* ---- helpers ---------------------------------------------------------- */

uint32_t pbft_primary(const struct pbft *c, uint64_t view)
{
	return (uint32_t)(view % c->p.n);
}

static bool is_primary(const struct pbft *c)
{
	return pbft_primary(c, c->view) == c->p.id;
}

static bool in_window(const struct pbft *c, uint64_t seq)
{
	return seq > c->low && seq <= c->low + c->p.window;
}

static struct log_entry *entry_at(struct pbft *c, uint64_t seq)
{
	return &c->log[seq % c->log_size];
}

/* The entry for seq in the current window, claiming its slot if it holds
 * an older sequence number. */
static struct log_entry *entry_claim(struct pbft *c, uint64_t seq)
{
	struct log_entry *e = entry_at(c, seq);

	if (e->seq != seq) {
		free(e->batch);
		memset(e, 0, sizeof(*e));
		e->seq = seq;
	}
	return e;
}

static struct client_rec *client_get(struct pbft *c, uint32_t id)
{
	struct client_rec *r;

	HASH_FIND(hh, c->clients, &id, sizeof(id), r);
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			abort();
		r->id = id;
		HASH_ADD(hh, c->clients, id, sizeof(r->id), r);
	}
	return r;
}

static void emit(struct pbft *c, enum pbft_dest dest, uint32_t to, uint8_t *buf, size_t len)
{
	GROW(c->msgs, c->n_msgs, c->cap_msgs);
	c->msgs[c->n_msgs++] = (struct pbft_out){ .dest = dest, .to = to, .buf = buf, .len = len };
}

/* Build, sign and queue a message; returns its header (owned by the Ready). */
static struct hm_hdr *send_flagged(struct pbft *c, enum pbft_dest dest, uint32_t to,
				   uint8_t type, uint16_t flags, uint64_t view, uint64_t seq,
				   const uint8_t *digest, const void *payload, uint32_t plen)
{
	size_t cap = (size_t)HM_HDR_LEN + plen, len;
	uint8_t *buf = malloc(cap);

	if (!buf)
		abort();
	len = hm_msg_build_flags(buf, cap, type, flags, c->p.id, view, seq, digest, payload, plen,
				 c->p.keys);
	emit(c, dest, to, buf, len);
	if (!c->next_retransmit)
		c->next_retransmit = c->now + (uint64_t)c->p.retransmit_ms * 1000;
	return (struct hm_hdr *)buf;
}

static struct hm_hdr *send_msg(struct pbft *c, enum pbft_dest dest, uint32_t to, uint8_t type,
			       uint64_t view, uint64_t seq, const uint8_t *digest,
			       const void *payload, uint32_t plen)
{
	return send_flagged(c, dest, to, type, 0, view, seq, digest, payload, plen);
}

static void vote_policy(struct pbft *c, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
			const uint8_t *digest, const uint8_t *own_sig)
{
	struct pbft_vote_policy *v;

	GROW(c->votes, c->n_votes, c->cap_votes);
	v = &c->votes[c->n_votes++];
	memset(v, 0, sizeof(*v));
	v->phase = phase;
	v->view = view;
	v->seq = seq;
	memcpy(v->digest, digest, HM_DIGEST_LEN);
	if (own_sig) {
		v->own_vote = true;
		memcpy(v->sig, own_sig, HM_SIG_LEN);
	}
}

static int refuse(enum hm_drop_reason *why, enum hm_drop_reason reason)
{
	*why = reason;
	return -1;
}

/* The view-change part (below the normal case). */
static void track_pending(struct pbft *c, struct client_rec *r, const struct hm_msg *m);
static bool vc_retransmit(struct pbft *c);
static void fetch_committed(struct pbft *c);
static int on_view_change(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);
static int on_new_view(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);
static void vc_timers(struct pbft *c);
static uint64_t vc_deadline(const struct pbft *c);
static bool vc_fits(const struct pbft_params *p);
static void vc_rec_clear(struct vc_rec *r);
static void memo_clear(struct pbft *c);
static int stash_early(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why);
static void early_clear(struct pbft *c);
static bool stored_sig_ok(struct pbft *c, uint8_t type, uint32_t signer, uint32_t plen,
			  uint64_t view, uint64_t seq, const uint8_t *digest, const uint8_t *sig);
static void proven_faulty(struct pbft *c, uint32_t replica);
static void claim_record(struct pbft *c, uint32_t sender, uint64_t view, uint64_t seq,
			 const uint8_t *digest, const uint8_t *sig);
static void maybe_transfer(struct pbft *c);
static void st_release(struct pbft *c);

static uint64_t earliest(uint64_t a, uint64_t b)
{
	if (!a)
		return b;
	return b && b < a ? b : a;
}

/* ---- creation --------------------------------------------------------- */

struct pbft *pbft_new(const struct pbft_params *p)
{
	struct pbft *c;

	if (p->n < 3 * p->f + 1 || p->n > HM_MAX_REPLICAS || p->id >= p->n || p->window == 0 ||
	    p->checkpoint_interval == 0 || p->checkpoint_interval > p->window ||
	    p->window / p->checkpoint_interval + 1 > HM_MAX_LIVE_CHECKPOINTS ||
	    p->batch_size == 0 || p->pipeline_depth == 0 || p->retransmit_ms == 0 || !p->keys ||
	    !p->service || (p->view_change_timeout_ms && !vc_fits(p)))
		return NULL;
	/* A replica that cannot build prepared certificates would send
	 * VIEW-CHANGEs that hide what it prepared: unsafe, so view changes
	 * need the vote counter's signatures and the replicas' keys. */
	if (p->view_change_timeout_ms && (!p->vote_sigs || !p->replica_keys))
		return NULL;
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->p = *p;
	c->log_size = p->window + p->checkpoint_interval;
	c->log = calloc(c->log_size, sizeof(*c->log));
	if (!c->log) {
		free(c);
		return NULL;
	}
	return c;
}

void pbft_free(struct pbft *c)
{
	struct client_rec *r, *tmp;

	if (!c)
		return;
	pbft_advance(c);
	for (uint32_t i = 0; i < c->log_size; i++)
		free(c->log[i].batch);
	free(c->log);
	HASH_ITER(hh, c->clients, r, tmp) {
		HASH_DEL(c->clients, r);
		free(r->reply);
		free(r->pending);
		free(r);
	}
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		vc_rec_clear(&c->vcs[i]);
	memo_clear(c);
	early_clear(c);
	free(c->nv_pending);
	free(c->nv_sent);
	free(c->pend);
	for (int i = 0; i < HM_MAX_LIVE_CHECKPOINTS; i++)
		free(c->cps[i].snap);
	free(c->stable.snap);
	st_release(c);
	if (c->srv_ok)
		hm_st_server_free(&c->srv);
	free(c->exec_batches);
	for (size_t i = c->q_head; i < c->q_len; i++)
		free(c->queue[i].buf);
	free(c->queue);
	free(c->msgs);
	free(c->votes);
	free(c->exec);
	free(c);
}

/* ---- proposing (primary) ---------------------------------------------- */

static size_t queued(const struct pbft *c)
{
	return c->q_len - c->q_head;
}

static void queue_push(struct pbft *c, const struct hm_msg *m)
{
	struct pending_req *r;

	if (c->q_head > 0 && c->q_len == c->q_cap) {
		memmove(c->queue, c->queue + c->q_head, queued(c) * sizeof(*c->queue));
		c->q_len -= c->q_head;
		c->q_head = 0;
	}
	GROW(c->queue, c->q_len, c->q_cap);
	r = &c->queue[c->q_len++];
	r->buf = malloc(m->len);
	if (!r->buf)
		abort();
	memcpy(r->buf, m->hdr, m->len);
	memset(((struct hm_hdr *)r->buf)->mac, 0, HM_MAC_LEN);
	r->len = m->len;
	r->queued_at = c->now;
}

/* Take up to batch_size queued requests that fit in one message. */
static uint8_t *batch_take(struct pbft *c, uint32_t *len_out)
{
	size_t room = c->p.max_message_size - HM_HDR_LEN - HM_NV_BATCH_OVERHEAD, len = 4;
	uint32_t count = 0;
	uint8_t *payload;

	/* on_request admits only requests that fit alone, so count >= 1. */
	while (count < c->p.batch_size && count < queued(c) &&
	       len + 4 + c->queue[c->q_head + count].len <= room)
		len += 4 + c->queue[c->q_head + count++].len;
	payload = malloc(len);
	if (!payload)
		abort();
	hm_put_be32(payload, count);
	len = 4;
	for (uint32_t i = 0; i < count; i++) {
		struct pending_req *r = &c->queue[c->q_head++];

		client_get(c, hm_get_be32(r->buf + HM_OFF_SENDER))->in_queue = false;
		hm_put_be32(payload + len, (uint32_t)r->len);
		memcpy(payload + len + 4, r->buf, r->len);
		len += 4 + r->len;
		free(r->buf);
	}
	*len_out = (uint32_t)len;
	return payload;
}

/*
 * The primary proposes only up to h + L - K (K = checkpoint interval) when
 * the window allows: a backup whose checkpoint at h is not yet stable still
 * has h - K as its low watermark and would drop a PRE-PREPARE beyond
 * h - K + L as out of its window.  Keeping one interval of margin avoids that
 * race in the common case; retransmission covers the rest.
 */
static bool in_proposal_window(const struct pbft *c, uint64_t seq)
{
	uint64_t margin = c->p.window > c->p.checkpoint_interval ? c->p.checkpoint_interval : 0;

	return seq > c->low && seq <= c->low + c->p.window - margin;
}

/* A restarted replica may have voted on any seq up to silent_until before
 * it crashed (its votes are not persisted): voting again there could
 * contradict a vote it forgot, so it only listens.  */
static bool silent(const struct pbft *c, uint64_t seq)
{
	return seq <= c->silent_until;
}

/*
 * The primary that proposes.  A restarted replica never leads the view it
 * recovered (it may have proposed there before the crash, and its log does
 * not say what): it waits, with a backup's view-change timer, for a later
 * view.
 */
static bool acting_primary(const struct pbft *c)
{
	return is_primary(c) && !(c->restarted && c->view <= c->mute_view);
}

/* A slot a primary must not propose into: one it already holds committed
 * (learnt by catch-up, possibly from a view it has not installed), or one a
 * newer view's PRE-PREPARE holds.  Proposing there would swap the batch of
 * a committed slot for another: two values at one seq. */
static bool slot_taken(struct pbft *c, uint64_t seq)
{
	const struct log_entry *e = entry_at(c, seq);

	return e->seq == seq && (e->committed || (e->has_pp && e->view > c->view));
}

static void propose_batch(struct pbft *c)
{
	uint64_t seq = c->next_seq + 1;
	struct log_entry *e;
	struct hm_hdr *h;

	if (seq <= c->last_executed)
		seq = c->last_executed + 1;
	while (in_proposal_window(c, seq) && slot_taken(c, seq))
		seq++;
	c->next_seq = seq;
	if (!in_proposal_window(c, seq)) {
		c->next_seq = seq - 1;
		return;
	}
	e = entry_claim(c, seq);

	free(e->batch); /* an old view's batch at this seq, left out of O */
	e->batch = batch_take(c, &e->batch_len);
	e->view = c->view;
	e->has_pp = true;
	h = send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_PRE_PREPARE, c->view, seq, NULL, e->batch,
		     e->batch_len);
	memcpy(e->digest, h->digest, HM_DIGEST_LEN);
	memcpy(e->pp_sig, h->sig, HM_SIG_LEN);
	vote_policy(c, HM_PHASE_PREPARE, c->view, seq, e->digest, NULL);
	vote_policy(c, HM_PHASE_COMMIT, c->view, seq, e->digest, NULL);
	c->stats.batches_proposed++;
}

static bool can_propose(const struct pbft *c)
{
	uint64_t next = c->next_seq > c->last_executed ? c->next_seq : c->last_executed;

	return acting_primary(c) && !c->in_vc && queued(c) > 0 && !silent(c, next + 1) &&
	       next - c->last_executed < c->p.pipeline_depth && in_proposal_window(c, next + 1);
}

/* A batch goes out when it is full, when its oldest request waited
 * batch_timeout_ms, or at once while less than half the pipeline is in
 * flight: a lightly loaded pipeline gains nothing from waiting, and under
 * load requests pile up into fuller batches by themselves while earlier
 * batches are being agreed on. */
static bool batch_due(const struct pbft *c)
{
	uint64_t in_flight = c->next_seq - c->last_executed;

	return queued(c) >= c->p.batch_size || 2 * in_flight < c->p.pipeline_depth ||
	       c->now >= c->queue[c->q_head].queued_at + (uint64_t)c->p.batch_timeout_ms * 1000;
}

/* Propose while there are requests, room in the pipeline and in the window. */
static void maybe_propose(struct pbft *c)
{
	while (can_propose(c) && batch_due(c))
		propose_batch(c);
}

/* ---- requests --------------------------------------------------------- */

static void resend_reply(struct pbft *c, struct client_rec *r)
{
	uint8_t *copy = malloc(r->reply_len);

	if (!copy)
		abort();
	memcpy(copy, r->reply, r->reply_len);
	emit(c, PBFT_TO_CLIENT, r->id, copy, r->reply_len);
	c->stats.replies_resent++;
}

/* The service's own say on whether this replica votes for an op (the
 * optional check() of service.h: DNS and CT refuse an agreed time too far
 * from the local clock, say). */
static bool service_accepts(struct pbft *c, const struct hm_msg *req)
{
	const struct hm_service *svc = c->p.service;
	struct hm_exec_ctx ctx = { .seq = 0, .client = req->sender, .timestamp = req->seq };

	if (!svc->ops->check || svc->ops->check(svc->state, &ctx, req->payload, req->payload_len))
		return true;
	c->stats.service_refused++;
	return false;
}

static int on_request(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	const uint8_t *pk = c->p.client_key(c->p.client_key_ctx, m->sender);
	struct client_rec *r;

	if (!pk)
		return refuse(why, HM_DROP_UNKNOWN_SENDER);
	r = client_get(c, m->sender);
	if (m->seq < r->last_ts) {
		c->stats.stale_requests++;
		return refuse(why, HM_DROP_STALE);
	}
	if (m->seq == r->last_ts) {
		/* A retransmission of the request we executed last: the client
		 * lost our reply.  The link MAC already proved who asks. */
		if (r->reply)
			resend_reply(c, r);
		return 0;
	}
	/* Every replica remembers the request as pending: a backup's
	 * view-change timer runs on it, and a backup that becomes primary
	 * proposes it. */
	track_pending(c, r, m);
	if (!acting_primary(c) || c->in_vc) {
		pbft_observe_seq(c, c->last_executed + 1);
		return 0;
	}
	if (m->seq <= r->queued_ts)
		return refuse(why, HM_DROP_DUPLICATE);
	/* One waiting request per client (PBFT's clients have one outstanding
	 * request): a client sending faster cannot fill our memory or starve
	 * the others; its newer request is taken once the queued one is
	 * proposed (the client retransmits). */
	if (r->in_queue)
		return refuse(why, HM_DROP_RATE_LIMITED);
	/* It must fit alone in a PRE-PREPARE (count and length words around
	 * it), or no backup could accept the batch and the slot would block
	 * every later one; with room for the NEW-VIEW BATCH wrapping, so that
	 * a new primary can fetch it after a view change. */
	if (HM_HDR_LEN + HM_NV_BATCH_OVERHEAD + 8 + m->len > c->p.max_message_size)
		return refuse(why, HM_DROP_OVERSIZE);
	if (!hm_verify_header(m->hdr, pk)) {
		c->stats.bad_client_signatures++;
		return refuse(why, HM_DROP_BAD_SIGNATURE);
	}
	if (!service_accepts(c, m))
		return refuse(why, HM_DROP_MALFORMED);
	r->queued_ts = m->seq;
	r->in_queue = true;
	c->stats.requests_received++;
	queue_push(c, m);
	maybe_propose(c);
	return 0;
}

/* ---- pre-prepare (backups) -------------------------------------------- */

/* Every request in a batch must come from a known client, hash to its
 * digest and carry the client's valid signature: otherwise a faulty primary
 * could make the group execute operations no client asked for. */
static int check_batch(struct pbft *c, const uint8_t *batch, uint32_t len,
		       enum hm_drop_reason *why)
{
	struct hm_batch_iter it;
	struct hm_msg req;

	if (hm_batch_validate(batch, len, c->p.max_message_size) < 0)
		return refuse(why, HM_DROP_MALFORMED);
	hm_batch_iter_init(&it, batch, len);
	while (hm_batch_next(&it, &req)) {
		const uint8_t *pk = c->p.client_key(c->p.client_key_ctx, req.sender);

		if (!pk)
			return refuse(why, HM_DROP_MALFORMED);
		if (!hm_msg_payload_ok(&req, why))
			return -1;
		if (!hm_verify_header(req.hdr, pk)) {
			c->stats.bad_client_signatures++;
			return refuse(why, HM_DROP_BAD_SIGNATURE);
		}
		if (!service_accepts(c, &req))
			return refuse(why, HM_DROP_MALFORMED);
	}
	return 0;
}

static int on_pre_prepare(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct log_entry *e;
	struct hm_hdr *h;

	if (m->sender != pbft_primary(c, m->view) || m->sender == c->p.id)
		return refuse(why, HM_DROP_MALFORMED);
	if (c->in_vc && m->view == c->vc_target)
		return stash_early(c, m, why);
	if (m->view != c->view || c->in_vc)
		return refuse(why, HM_DROP_BAD_VIEW);
	if (!in_window(c, m->seq))
		return refuse(why, HM_DROP_OUT_OF_WINDOW);
	e = entry_at(c, m->seq);
	/* In the view a NEW-VIEW started, seqs up to max-s carry what its O
	 * assigned them, and nothing at or below min-s is proposed again. */
	if (m->view == c->nv_view && m->seq <= c->nv_max_s) {
		if (m->seq <= c->nv_min_s || e->seq != m->seq || e->nv_view != m->view)
			return refuse(why, HM_DROP_OUT_OF_WINDOW);
		if (memcmp(e->nv_digest, m->digest, HM_DIGEST_LEN) != 0) {
			c->stats.equivocations++;
			return refuse(why, HM_DROP_EQUIVOCATION);
		}
	}
	if (e->seq == m->seq && e->has_pp && e->view == m->view) {
		if (memcmp(e->digest, m->digest, HM_DIGEST_LEN) == 0)
			return refuse(why, HM_DROP_DUPLICATE);
		c->stats.equivocations++;
		return refuse(why, HM_DROP_EQUIVOCATION);
	}
	if (check_batch(c, m->payload, m->payload_len, why) < 0)
		return -1;

	e = entry_claim(c, m->seq);
	free(e->batch);
	e->batch = malloc(m->payload_len);
	if (!e->batch)
		abort();
	memcpy(e->batch, m->payload, m->payload_len);
	e->batch_len = m->payload_len;
	e->view = m->view;
	e->has_pp = true;
	memcpy(e->digest, m->digest, HM_DIGEST_LEN);
	memcpy(e->pp_sig, m->hdr->sig, HM_SIG_LEN);

	if (silent(c, m->seq)) { /* count the others' votes, cast none */
		vote_policy(c, HM_PHASE_PREPARE, c->view, m->seq, e->digest, NULL);
		vote_policy(c, HM_PHASE_COMMIT, c->view, m->seq, e->digest, NULL);
		return 0;
	}
	h = send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_PREPARE, c->view, m->seq, e->digest, NULL, 0);
	vote_policy(c, HM_PHASE_PREPARE, c->view, m->seq, e->digest, h->sig);
	vote_policy(c, HM_PHASE_COMMIT, c->view, m->seq, e->digest, NULL);
	return 0;
}

/* ---- execution and checkpoints ---------------------------------------- */

static void execute_request(struct pbft *c, uint64_t seq, const struct hm_msg *req,
			    struct pbft_executed *rec)
{
	struct client_rec *r = client_get(c, req->sender);
	uint8_t result[HM_MAX_RESULT], payload[HM_REPLY_PREFIX_LEN + HM_MAX_RESULT];
	struct hm_exec_ctx ctx = { .seq = seq, .client = req->sender, .timestamp = req->seq };
	struct hm_hdr *h;
	size_t rlen, plen;

	/* Exactly-once: a request already executed (it reached two batches)
	 * is skipped everywhere alike, since every replica sees the same
	 * order. */
	if (req->seq <= r->last_ts)
		return;
	rlen = c->p.service->ops->execute(c->p.service->state, &ctx, req->payload,
					  req->payload_len, result, sizeof(result));
	r->last_ts = req->seq;
	if (r->queued_ts < req->seq)
		r->queued_ts = req->seq;
	if (r->pending_ts && r->pending_ts <= r->last_ts) {
		free(r->pending);
		r->pending = NULL;
		r->pending_ts = 0;
	}
	c->vc_backoff = 0; /* the view works: timeouts back to T */
	c->view_works = true;
	plen = hm_reply_payload(payload, sizeof(payload), req->sender, seq, result, rlen);
	h = send_msg(c, PBFT_TO_CLIENT, req->sender, HM_MSG_REPLY, c->view, req->seq, NULL,
		     payload, (uint32_t)plen);
	free(r->reply);
	r->reply_len = HM_HDR_LEN + plen;
	r->reply = malloc(r->reply_len);
	if (!r->reply)
		abort();
	memcpy(r->reply, h, r->reply_len);
	rec->requests++;
	c->stats.ops_executed++;
}

static void execute_entry(struct pbft *c, struct log_entry *e)
{
	struct hm_batch_iter it;
	struct hm_msg req;
	struct pbft_executed rec = { .seq = e->seq, .view = e->view };

	memcpy(rec.digest, e->digest, HM_DIGEST_LEN);
	hm_batch_iter_init(&it, e->batch, e->batch_len);
	while (hm_batch_next(&it, &req))
		execute_request(c, e->seq, &req, &rec);
	/* A copy for the committed log: the entry may be reused before the
	 * driver takes the Ready (a checkpoint in the same call). */
	GROW(c->exec, c->n_exec, c->cap_exec);
	c->exec_batches = realloc(c->exec_batches, c->cap_exec * sizeof(*c->exec_batches));
	if (!c->exec_batches)
		abort();
	c->exec_batches[c->n_exec] = malloc(e->batch_len ? e->batch_len : 1);
	if (!c->exec_batches[c->n_exec])
		abort();
	memcpy(c->exec_batches[c->n_exec], e->batch, e->batch_len);
	rec.batch = c->exec_batches[c->n_exec];
	rec.batch_len = e->batch_len;
	c->exec[c->n_exec++] = rec;
	c->progress_at = c->now;
	c->stats.batches_executed++;
}

static struct checkpoint_rec *checkpoint_get(struct pbft *c, uint64_t seq, bool create)
{
	struct checkpoint_rec *free_rec = NULL;

	for (int i = 0; i < HM_MAX_LIVE_CHECKPOINTS; i++) {
		if (c->cps[i].seq == seq)
			return &c->cps[i];
		if (!free_rec && c->cps[i].seq == 0)
			free_rec = &c->cps[i];
	}
	if (!create || !free_rec)
		return NULL;
	memset(free_rec, 0, sizeof(*free_rec));
	free_rec->seq = seq;
	return free_rec;
}

/* Garbage-collect below the new stable checkpoint, keeping one interval of
 * executed slots for lagging peers (see struct pbft). */
static void make_stable(struct pbft *c, struct checkpoint_rec *cp)
{
	uint64_t seq = cp->seq;

	free(c->stable.snap);
	c->stable = *cp;
	cp->snap = NULL; /* moved into c->stable */
	c->stable_changed = true;
	for (uint32_t i = 0; i < c->log_size; i++) {
		struct log_entry *e = &c->log[i];

		if (e->seq && e->seq + c->p.checkpoint_interval <= seq) {
			free(e->batch);
			memset(e, 0, sizeof(*e));
		}
	}
	for (int i = 0; i < HM_MAX_LIVE_CHECKPOINTS; i++)
		if (c->cps[i].seq <= seq) {
			free(c->cps[i].snap);
			c->cps[i].snap = NULL;
			c->cps[i].seq = 0;
		}
	c->low = seq;
	c->window_changed = true;
	c->stats.checkpoints_stable++;
}

/* Stable once 2f+1 replicas (us included) signed our own state digest. A
 * quorum on another digest means this replica diverged; it is counted and
 * the checkpoint is not taken (state transfer repairs it). */
static bool stored_sig_ok(struct pbft *c, uint8_t type, uint32_t signer, uint32_t plen,
			  uint64_t view, uint64_t seq, const uint8_t *digest, const uint8_t *sig);
static void proven_faulty(struct pbft *c, uint32_t replica);

static void check_stable(struct pbft *c, struct checkpoint_rec *cp)
{
	uint32_t agree = 0;

	if (!cp->own_known || cp->seq <= c->low)
		return;
	for (uint32_t i = 0; i < c->p.n; i++) {
		if (!(cp->voted >> i & 1) || memcmp(cp->digests[i], cp->own, HM_DIGEST_LEN) != 0)
			continue;
		/* A stable checkpoint's 2f+1 signatures are its proof (in our
		 * VIEW-CHANGE's C, for state transfer): count only votes whose
		 * signature verifies, as for prepared certificates.  A MAC-valid
		 * vote with a bad signature proves its sender faulty. */
		if (i != c->p.id && c->p.replica_keys &&
		    !stored_sig_ok(c, HM_MSG_CHECKPOINT, i, 0, cp->views[i], cp->seq, cp->digests[i],
				   cp->sigs[i])) {
			proven_faulty(c, i);
			cp->voted &= (uint16_t)~(1u << i);
			continue;
		}
		agree++;
	}
	if (agree >= 2 * c->p.f + 1) {
		make_stable(c, cp);
		maybe_propose(c);
	} else if (__builtin_popcount(cp->voted) - agree >= 2 * c->p.f + 1) {
		c->stats.checkpoint_mismatches++;
		/* We diverged: the others' votes are claims on the state this
		 * seq should have, which we fetch and install over ours. */
		for (uint32_t i = 0; i < c->p.n; i++)
			if ((cp->voted >> i & 1) && i != c->p.id &&
			    memcmp(cp->digests[i], cp->own, HM_DIGEST_LEN) != 0)
				claim_record(c, i, cp->views[i], cp->seq, cp->digests[i],
					     cp->sigs[i]);
		if (cp->seq > c->diverged)
			c->diverged = cp->seq;
		maybe_transfer(c);
	}
}

static void record_checkpoint_vote(struct checkpoint_rec *cp, uint32_t voter, uint64_t view,
				   const uint8_t *digest, const uint8_t *sig)
{
	cp->voted |= (uint16_t)(1u << voter);
	cp->views[voter] = view;
	memcpy(cp->digests[voter], digest, HM_DIGEST_LEN);
	memcpy(cp->sigs[voter], sig, HM_SIG_LEN);
}

static void take_checkpoint(struct pbft *c, uint64_t seq)
{
	struct checkpoint_rec *cp = checkpoint_get(c, seq, true);
	uint8_t digest[HM_DIGEST_LEN];
	struct hm_hdr *h;
	size_t len;
	uint8_t *snap = pbft_snapshot(c, &len);

	/* The digest certifies the replica state chunk by chunk (a fetching
	 * replica checks each chunk on arrival): hm_st_state_digest over the
	 * client table and the service snapshot. */
	if (!snap || hm_st_state_digest(snap, len, digest) < 0)
		abort(); /* out of memory, or a state above 1 GiB */
	h = send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_CHECKPOINT, c->view, seq, digest, NULL, 0);
	if (!cp) {
		free(snap);
		return;
	}
	free(cp->snap);
	cp->snap = snap;
	cp->snap_len = len;
	cp->own_known = true;
	memcpy(cp->own, digest, HM_DIGEST_LEN);
	record_checkpoint_vote(cp, c->p.id, c->view, digest, h->sig);
	check_stable(c, cp);
}

static void execute_committed(struct pbft *c)
{
	for (;;) {
		uint64_t seq = c->last_executed + 1;
		struct log_entry *e = entry_at(c, seq);

		if (e->seq != seq || !e->committed)
			break;
		execute_entry(c, e);
		c->last_executed = seq;
		if (seq % c->p.checkpoint_interval == 0)
			take_checkpoint(c, seq);
	}
	maybe_propose(c);
}

static int on_checkpoint(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct checkpoint_rec *cp;
	uint16_t bit = (uint16_t)(1u << m->sender);

	if (m->seq == 0 || m->seq % c->p.checkpoint_interval != 0)
		return refuse(why, HM_DROP_MALFORMED);
	if (m->seq > c->last_executed && m->sender != c->p.id) {
		claim_record(c, m->sender, m->view, m->seq, m->digest, m->hdr->sig);
		maybe_transfer(c);
		/* Beyond our window: only a claim, for state transfer. */
		if (m->seq > c->low + c->p.window)
			return 0;
	}
	/* The last of n checkpoints usually arrives after 2f+1 made it
	 * stable: that is expected, not a drop.  Its signature goes into the
	 * stable record, so that a view change can pick 2f+1 good ones. */
	if (m->seq == c->low) {
		if (c->stable.seq == m->seq && !(c->stable.voted & bit))
			record_checkpoint_vote(&c->stable, m->sender, m->view, m->digest,
					       m->hdr->sig);
		return 0;
	}
	if (m->seq < c->low)
		return refuse(why, HM_DROP_STALE);
	if (m->seq > c->low + c->p.window)
		return refuse(why, HM_DROP_OUT_OF_WINDOW);
	cp = checkpoint_get(c, m->seq, true);
	if (!cp)
		return refuse(why, HM_DROP_OUT_OF_WINDOW);
	if (cp->voted & bit) {
		if (memcmp(cp->digests[m->sender], m->digest, HM_DIGEST_LEN) == 0)
			return refuse(why, HM_DROP_DUPLICATE);
		c->stats.equivocations++;
		return refuse(why, HM_DROP_EQUIVOCATION);
	}
	record_checkpoint_vote(cp, m->sender, m->view, m->digest, m->hdr->sig);
	check_stable(c, cp);
	return 0;
}

/* ---- quorum events ---------------------------------------------------- */

/* The prepared-certificate fields of a log entry, saved whole. */
struct cert_fields {
	bool has_cert;
	uint64_t view;
	uint8_t digest[HM_DIGEST_LEN];
	uint32_t pp_len;
	uint8_t pp_sig[HM_SIG_LEN];
	uint16_t voters;
	uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN];
};

static void cert_save(const struct log_entry *e, struct cert_fields *f)
{
	f->has_cert = e->has_cert;
	f->view = e->cert_view;
	memcpy(f->digest, e->cert_digest, HM_DIGEST_LEN);
	f->pp_len = e->cert_pp_len;
	memcpy(f->pp_sig, e->cert_pp_sig, HM_SIG_LEN);
	f->voters = e->cert_voters;
	memcpy(f->sigs, e->cert_sigs, sizeof(f->sigs));
}

static void cert_restore(struct log_entry *e, const struct cert_fields *f)
{
	e->has_cert = f->has_cert;
	e->cert_view = f->view;
	memcpy(e->cert_digest, f->digest, HM_DIGEST_LEN);
	e->cert_pp_len = f->pp_len;
	memcpy(e->cert_pp_sig, f->pp_sig, HM_SIG_LEN);
	e->cert_voters = f->voters;
	memcpy(e->cert_sigs, f->sigs, sizeof(f->sigs));
}

static bool cert_prepares(struct pbft *c, struct log_entry *e, uint16_t *voters,
			  uint8_t out[HM_MAX_REPLICAS][HM_SIG_LEN]);

/*
 * Take e's prepared certificate for this view and check it before we act
 * on it: the primary's PRE-PREPARE signature and 2f PREPARE signatures that
 * verify (from the quorum's voters, or others still in the vote counter).
 * The votes were counted on their link MACs alone; a faulty voter can send
 * a MAC-valid vote with a bad signature.  Were we to COMMIT on such a
 * quorum, we could hold no certificate for a value that then commits, and
 * a view change could not carry it: so no COMMIT without a checked
 * certificate.  (2f + 1 verifications a batch, amortised over the batch.)
 * On failure the previous certificate (from an older view) stays.
 */
static bool take_cert(struct pbft *c, struct log_entry *e, uint16_t voters)
{
	uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN];
	struct cert_fields old;
	uint16_t good;

	if (!c->p.vote_sigs || !c->p.replica_keys)
		return true; /* no view changes configured: nothing to certify */
	cert_save(e, &old);
	e->has_cert = true;
	e->cert_view = e->view;
	memcpy(e->cert_digest, e->digest, HM_DIGEST_LEN);
	e->cert_pp_len = e->batch_len;
	memcpy(e->cert_pp_sig, e->pp_sig, HM_SIG_LEN);
	e->cert_voters = 0;
	if (voters &&
	    c->p.vote_sigs(c->p.vote_sigs_ctx, HM_PHASE_PREPARE, e->view, e->seq, voters, sigs) == 0) {
		e->cert_voters = voters;
		memcpy(e->cert_sigs, sigs, sizeof(sigs));
	}
	if (pbft_primary(c, e->view) != c->p.id &&
	    !stored_sig_ok(c, HM_MSG_PRE_PREPARE, pbft_primary(c, e->view), e->batch_len, e->view,
			   e->seq, e->digest, e->pp_sig)) {
		proven_faulty(c, pbft_primary(c, e->view));
		cert_restore(e, &old);
		return false;
	}
	if (!cert_prepares(c, e, &good, sigs)) {
		cert_restore(e, &old);
		return false;
	}
	e->cert_voters = good;
	memcpy(e->cert_sigs, sigs, sizeof(sigs));
	return true;
}

static void on_prepared(struct pbft *c, struct log_entry *e, uint16_t voters)
{
	struct hm_hdr *h;

	if (!take_cert(c, e, voters)) {
		/* retried on every tick, as more PREPAREs reach the counter */
		if (!e->cert_wait)
			c->stats.certs_waiting++;
		e->cert_wait = true;
		return;
	}
	e->cert_wait = false;
	e->prepared = true;
	if (silent(c, e->seq))
		return;
	h = send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_COMMIT, e->view, e->seq, e->digest, NULL, 0);
	vote_policy(c, HM_PHASE_COMMIT, e->view, e->seq, e->digest, h->sig);
}

static void execute_committed(struct pbft *c);

/* Slots whose PREPARE quorum had a vote with a bad signature: try again
 * with the votes the counter holds now. */
static void recheck_certs(struct pbft *c)
{
	for (uint64_t seq = c->last_executed + 1; in_window(c, seq); seq++) {
		struct log_entry *e = entry_at(c, seq);

		if (e->seq != seq || !e->cert_wait || e->prepared || !e->has_pp || c->in_vc)
			continue;
		on_prepared(c, e, 0);
		if (e->prepared && e->commit_quorum && !e->committed) {
			e->committed = true;
			execute_committed(c);
		}
	}
}

void pbft_on_vote_event(struct pbft *c, const struct hm_vote_event *ev)
{
	struct log_entry *e = entry_at(c, ev->seq);

	if (ev->kind == HM_EV_EQUIVOCATION) {
		c->stats.equivocations++;
		return;
	}
	/* In a view change the old view's normal case is over. */
	if (ev->kind != HM_EV_QUORUM || c->in_vc || e->seq != ev->seq || !e->has_pp ||
	    e->view != ev->view ||
	    memcmp(e->digest, ev->digest, HM_DIGEST_LEN) != 0)
		return;
	if (ev->phase == HM_PHASE_PREPARE && !e->prepared)
		on_prepared(c, e, ev->voters);
	else if (ev->phase == HM_PHASE_COMMIT)
		e->commit_quorum = true;
	/* committed-local: prepared and 2f+1 matching COMMITs (ours included) */
	if (e->prepared && e->commit_quorum && !e->committed) {
		e->committed = true;
		execute_committed(c);
	}
}

/* ---- retransmission -------------------------------------------------- */

/* Our messages for one slot: the PRE-PREPARE if we are its primary, else our
 * PREPARE; our COMMIT once prepared. */
static void resend_slot(struct pbft *c, const struct log_entry *e, enum pbft_dest dest,
			uint32_t to, uint16_t flags)
{
	if (silent(c, e->seq))
		return;
	if (pbft_primary(c, e->view) == c->p.id)
		send_flagged(c, dest, to, HM_MSG_PRE_PREPARE, flags, e->view, e->seq, NULL,
			     e->batch, e->batch_len);
	else
		send_flagged(c, dest, to, HM_MSG_PREPARE, flags, e->view, e->seq, e->digest, NULL,
			     0);
	if (e->prepared)
		send_flagged(c, dest, to, HM_MSG_COMMIT, flags, e->view, e->seq, e->digest, NULL,
			     0);
}

static void resend_checkpoint(struct pbft *c, const struct checkpoint_rec *cp,
			      enum pbft_dest dest, uint32_t to, uint16_t flags)
{
	send_flagged(c, dest, to, HM_MSG_CHECKPOINT, flags, c->view, cp->seq, cp->own, NULL, 0);
}

/* Messages get lost (a full socket buffer, a PRE-PREPARE that reached a
 * backup before its window moved).  Every retransmit interval each replica
 * sends again, flagged, its messages for slots it has not committed and its
 * checkpoints that are not stable yet; peers that are past those slots
 * answer (pbft_on_retransmission), so a lagging replica catches up. */
static void retransmit(struct pbft *c)
{
	bool pending = false;

	pending |= vc_retransmit(c);
	for (uint32_t i = 0; !c->in_vc && i < c->log_size; i++) {
		const struct log_entry *e = &c->log[i];

		if (e->seq > c->last_executed && e->has_pp && !e->committed) {
			resend_slot(c, e, PBFT_TO_REPLICAS, 0, HM_FLAG_RETRANSMIT);
			c->stats.retransmissions++;
			pending = true;
		}
	}
	for (int i = 0; i < HM_MAX_LIVE_CHECKPOINTS; i++) {
		if (c->cps[i].seq > c->low && c->cps[i].own_known) {
			resend_checkpoint(c, &c->cps[i], PBFT_TO_REPLICAS, 0, HM_FLAG_RETRANSMIT);
			pending = true;
		}
	}
	/* Behind and stuck: our peers named a sequence we have not executed,
	 * and we executed nothing since the last round. */
	maybe_transfer(c);
	if ((c->highest_seen > c->last_executed || c->far_seen) &&
	    c->last_executed == c->executed_at_last_retransmit) {
		c->far_seen = false;
		send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_STATUS, 0, c->view, c->last_executed,
			     (const uint8_t[HM_DIGEST_LEN]){ 0 }, NULL, 0);
		if (c->p.view_change_timeout_ms)
			fetch_committed(c);
		pending = true;
	}
	pending |= c->highest_seen > c->last_executed;
	c->executed_at_last_retransmit = c->last_executed;
	c->next_retransmit = pending ? c->now + (uint64_t)c->p.retransmit_ms * 1000 : 0;
}

void pbft_observe_seq(struct pbft *c, uint64_t seq)
{
	if (seq > c->low + 2 * (uint64_t)c->p.window) {
		/* Too far to take as the group's progress (a faulty peer could
		 * name any seq), but worth one STATUS per retransmit round: a
		 * replica far behind learns the group's stable checkpoint from
		 * the answers and fetches its state. */
		c->far_seen = true;
		if (!c->next_retransmit)
			c->next_retransmit = c->now + (uint64_t)c->p.retransmit_ms * 1000;
		return;
	}
	if (seq <= c->highest_seen)
		return; /* nothing new */
	c->highest_seen = seq;
	if (seq > c->last_executed && !c->next_retransmit)
		c->next_retransmit = c->now + (uint64_t)c->p.retransmit_ms * 1000;
}

/* Send a lagging peer our messages for a committed slot, at most once per
 * peer and slot per retransmit interval: a faulty peer repeating a flagged
 * message must not make us sign and send again for every copy. */
static void help_slot(struct pbft *c, struct log_entry *e, uint32_t peer)
{
	uint16_t bit = (uint16_t)(1u << peer);

	if (c->now >= e->helped_at + (uint64_t)c->p.retransmit_ms * 1000) {
		e->helped = 0;
		e->helped_at = c->now;
	}
	if (e->helped & bit)
		return;
	e->helped |= bit;
	resend_slot(c, e, PBFT_TO_REPLICA, peer, 0);
	c->stats.help_sent++;
}

/* Our checkpoint for a peer, throttled like help_slot (per peer). */
static void help_checkpoint(struct pbft *c, const struct checkpoint_rec *cp, uint32_t peer)
{
	if (c->checkpoint_helped_at[peer] &&
	    c->now < c->checkpoint_helped_at[peer] + (uint64_t)c->p.retransmit_ms * 1000)
		return;
	c->checkpoint_helped_at[peer] = c->now;
	resend_checkpoint(c, cp, PBFT_TO_REPLICA, peer, 0);
	c->stats.help_sent++;
}

/* A peer executed only up to m->seq: send it our messages for the slots
 * after that which we committed, and our checkpoints after it. */
static int on_status(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	uint64_t kept = c->low > c->p.checkpoint_interval ? c->low - c->p.checkpoint_interval : 0;
	uint64_t from = m->seq > kept ? m->seq : kept;

	/* One answer per peer per retransmit interval: a faulty peer sending
	 * STATUS(0) in a loop must not make us re-send the window each time. */
	if (c->status_served_at[m->sender] &&
	    c->now < c->status_served_at[m->sender] + (uint64_t)c->p.retransmit_ms * 1000)
		return refuse(why, HM_DROP_RATE_LIMITED);
	c->status_served_at[m->sender] = c->now;

	/* Behind our stable checkpoint: our CHECKPOINT helps it stabilise it
	 * (a peer further behind needs state transfer). */
	if (m->seq < c->low && c->stable.own_known)
		help_checkpoint(c, &c->stable, m->sender);
	/* Written so that a huge claimed seq cannot wrap `from + 1`. */
	for (uint64_t seq = from; seq < c->last_executed;) {
		struct log_entry *e = entry_at(c, ++seq);

		if (e->seq == seq && e->committed)
			help_slot(c, e, m->sender);
	}
	for (int i = 0; i < HM_MAX_LIVE_CHECKPOINTS; i++)
		if (c->cps[i].seq > m->seq && c->cps[i].own_known)
			resend_checkpoint(c, &c->cps[i], PBFT_TO_REPLICA, m->sender, 0);
	return 0;
}

void pbft_on_retransmission(struct pbft *c, const struct hm_msg *m)
{
	const struct log_entry *e = entry_at(c, m->seq);
	const struct checkpoint_rec *cp;

	if (m->sender >= c->p.n || m->sender == c->p.id || m->type == HM_MSG_VIEW_CHANGE ||
	    m->type == HM_MSG_NEW_VIEW)
		return;
	if (m->type == HM_MSG_CHECKPOINT) {
		cp = m->seq == c->stable.seq ? &c->stable : checkpoint_get(c, m->seq, false);
		if (cp && cp->own_known)
			help_checkpoint(c, cp, m->sender);
		return;
	}
	/* Only for slots we are done with: otherwise our own retransmission
	 * timer already covers them. */
	if (e->seq != m->seq || !e->has_pp || !e->committed || e->view != m->view)
		return;
	help_slot(c, (struct log_entry *)e, m->sender);
}

/* ---- view changes ------------------------------------------------------ */

/*
 * Castro-Liskov view changes (TOCS'02, 4.4) with signed certificates; the
 * design, the datagram-size scheme and the safety argument for each
 * departure are in docs/protocol.md#view-changes.
 */

static const uint8_t null_batch[4]; /* count 0: the null request */

static uint64_t vc_timeout_us(const struct pbft *c)
{
	uint32_t shift = c->vc_backoff < 16 ? c->vc_backoff : 16;

	return ((uint64_t)c->p.view_change_timeout_ms << shift) * 1000;
}

static uint64_t parts_mask(unsigned n)
{
	return n >= 64 ? ~0ull : (1ull << n) - 1;
}

static const struct hm_hdr *dgram_hdr(const uint8_t *d)
{
	return (const struct hm_hdr *)d;
}

static void vc_rec_clear(struct vc_rec *r)
{
	for (unsigned i = 0; i < HM_VC_MAX_PARTS; i++)
		free(r->part[i]);
	free(r->sums);
	memset(r, 0, sizeof(*r));
}

static void memo_clear(struct pbft *c)
{
	struct sig_memo *m, *tmp;

	HASH_ITER(hh, c->memo, m, tmp) {
		HASH_DEL(c->memo, m);
		free(m);
	}
}

/* A copy of a stored datagram for the Ready, with the given flags. */
static void emit_copy(struct pbft *c, enum pbft_dest dest, uint32_t to, const uint8_t *dgram,
		      size_t len, uint16_t flags)
{
	uint8_t *buf = malloc(len);

	if (!buf)
		abort();
	memcpy(buf, dgram, len);
	buf[6] = (uint8_t)(flags >> 8);
	buf[7] = (uint8_t)flags;
	emit(c, dest, to, buf, len);
	if (!c->next_retransmit)
		c->next_retransmit = c->now + (uint64_t)c->p.retransmit_ms * 1000;
}

/* Throttle: true (and the clock restarted) at most once per retransmit
 * interval per slot. */
static bool throttle_ok(const struct pbft *c, uint64_t *at)
{
	if (*at && c->now < *at + (uint64_t)c->p.retransmit_ms * 1000)
		return false;
	*at = c->now ? c->now : 1;
	return true;
}

/* Does a full VIEW-CHANGE fit (HM_VC_MAX_PARTS datagrams for a window of
 * certificates with 2f PREPAREs each, a head with 2f+1 checkpoint
 * signatures), and a NEW-VIEW? */
static bool vc_fits(const struct pbft_params *p)
{
	size_t room = p->max_message_size > HM_HDR_LEN ? p->max_message_size - HM_HDR_LEN : 0;
	size_t el = HM_VC_ENTRY_FIXED + (size_t)2 * p->f * HM_SIG_LEN;
	size_t per = room > 4 ? (room - 4) / el : 0, parts, head;

	if (!per)
		return false;
	parts = (p->window + per - 1) / per;
	head = 2 + parts * HM_DIGEST_LEN + HM_DIGEST_LEN + 1 +
	       (size_t)(2 * p->f + 1) * HM_VC_CP_LEN + 2;
	return parts + 1 <= HM_VC_MAX_PARTS && head <= room &&
	       2 + (size_t)(2 * p->f + 1) * (1 + HM_DIGEST_LEN) + 16 + HM_DIGEST_LEN <= room;
}

/* Verify a stored signature over the header rebuilt from its fields, and
 * remember the answer: one PREPARE signature comes in up to n VIEW-CHANGEs. */
static bool stored_sig_ok(struct pbft *c, uint8_t type, uint32_t signer, uint32_t plen,
			  uint64_t view, uint64_t seq, const uint8_t *digest, const uint8_t *sig)
{
	struct hm_hdr h;
	struct sig_memo *mm;
	uint8_t key[HM_DIGEST_LEN];

	if (signer >= c->p.n || !c->p.replica_keys)
		return false;
	memset(&h, 0, sizeof(h));
	hm_put_be32((uint8_t *)&h.magic, HM_MAGIC);
	h.version = HM_VERSION;
	h.type = type;
	hm_put_be32((uint8_t *)&h.sender, signer);
	hm_put_be32((uint8_t *)&h.payload_len, plen);
	hm_put_be64((uint8_t *)&h.view, view);
	hm_put_be64((uint8_t *)&h.seq, seq);
	memcpy(h.digest, digest, HM_DIGEST_LEN);
	memcpy(h.sig, sig, HM_SIG_LEN);
	hm_digest(&h, HM_MACED_LEN, key);
	HASH_FIND(hh, c->memo, key, HM_DIGEST_LEN, mm);
	if (mm)
		return mm->ok;
	if (HASH_COUNT(c->memo) >= 65536) /* bounded against a faulty flood */
		memo_clear(c);
	mm = calloc(1, sizeof(*mm));
	if (!mm)
		abort();
	memcpy(mm->key, key, HM_DIGEST_LEN);
	mm->ok = hm_sig_is_canonical(sig) && hm_verify_header(&h, c->p.replica_keys[signer]);
	HASH_ADD(hh, c->memo, key, HM_DIGEST_LEN, mm);
	if (!mm->ok)
		c->stats.bad_vote_signatures++;
	return mm->ok;
}

static void proven_faulty(struct pbft *c, uint32_t replica)
{
	if (replica < c->p.n)
		c->stats.proven_faulty |= (uint16_t)(1u << replica);
}

/* ---- PRE-PREPAREs ahead of their NEW-VIEW ---------------------------- */

/* The new primary sends its NEW-VIEW and its first PRE-PREPAREs together;
 * one that overtakes the NEW-VIEW would otherwise be lost for good if the
 * others commit its slot without us (the primary re-sends only slots it has
 * not committed). */
static int stash_early(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	uint8_t *copy;

	for (size_t i = 0; i < c->n_early; i++)
		if (hm_get_be64(c->early[i] + HM_OFF_SEQ) == m->seq)
			return refuse(why, HM_DROP_DUPLICATE);
	if (c->n_early >= c->p.window)
		return refuse(why, HM_DROP_RATE_LIMITED);
	copy = malloc(m->len);
	if (!copy)
		abort();
	memcpy(copy, m->hdr, m->len);
	c->early = realloc(c->early, (c->n_early + 1) * sizeof(*c->early));
	if (!c->early)
		abort();
	c->early[c->n_early++] = copy;
	return 0;
}

static void early_clear(struct pbft *c)
{
	for (size_t i = 0; i < c->n_early; i++)
		free(c->early[i]);
	free(c->early);
	c->early = NULL;
	c->n_early = 0;
}

/* After installing: the stashed PRE-PREPAREs of this view, as if they
 * arrived now. */
static void early_replay(struct pbft *c)
{
	uint8_t **early = c->early;
	size_t n = c->n_early;

	c->early = NULL;
	c->n_early = 0;
	for (size_t i = 0; i < n; i++) {
		const struct hm_hdr *h = (const struct hm_hdr *)early[i];
		size_t len = HM_HDR_LEN + hm_get_be32((const uint8_t *)&h->payload_len);
		enum hm_drop_reason why;
		struct hm_msg m;

		if (hm_msg_decode(early[i], len, HM_MAX_DATAGRAM, &m, &why) == 0 && m.view == c->view)
			on_pre_prepare(c, &m, &why);
		free(early[i]);
	}
	free(early);
}

/* ---- pending requests and the timer ----------------------------------- */

static struct client_rec *client_find(const struct pbft *c, uint32_t id)
{
	struct client_rec *r;

	HASH_FIND(hh, c->clients, &id, sizeof(id), r);
	return r;
}

static void pend_push(struct pbft *c, uint32_t client, uint64_t ts, uint64_t since)
{
	if (c->pend_head > 0 && c->pend_len == c->pend_cap) {
		memmove(c->pend, c->pend + c->pend_head,
			(c->pend_len - c->pend_head) * sizeof(*c->pend));
		c->pend_len -= c->pend_head;
		c->pend_head = 0;
	}
	GROW(c->pend, c->pend_len, c->pend_cap);
	c->pend[c->pend_len++] = (struct pending_mark){ .client = client, .ts = ts, .since = since };
}

static bool pend_live(const struct pbft *c, const struct pending_mark *pm)
{
	const struct client_rec *r = client_find(c, pm->client);

	return r && r->pending_ts == pm->ts && pm->ts > r->last_ts;
}

/* The oldest pending request's mark, dropping dead marks before it. */
static struct pending_mark *pend_oldest(struct pbft *c)
{
	while (c->pend_head < c->pend_len && !pend_live(c, &c->pend[c->pend_head]))
		c->pend_head++;
	return c->pend_head < c->pend_len ? &c->pend[c->pend_head] : NULL;
}

static void track_pending(struct pbft *c, struct client_rec *r, const struct hm_msg *m)
{
	if (!c->p.view_change_timeout_ms || m->seq <= r->pending_ts)
		return;
	free(r->pending);
	r->pending = malloc(m->len);
	if (!r->pending)
		abort();
	memcpy(r->pending, m->hdr, m->len);
	memset(((struct hm_hdr *)r->pending)->mac, 0, HM_MAC_LEN);
	r->pending_len = m->len;
	r->pending_ts = m->seq;
	pend_push(c, r->id, m->seq, c->now);
}

static uint64_t vc_deadline(const struct pbft *c)
{
	if (!c->p.view_change_timeout_ms)
		return 0;
	if (c->in_vc)
		return c->vc_timer_at ? c->vc_timer_at + vc_timeout_us(c) : 0;
	if (acting_primary(c))
		return 0;
	for (size_t i = c->pend_head; i < c->pend_len; i++)
		if (pend_live(c, &c->pend[i]))
			return c->pend[i].since + vc_timeout_us(c);
	return 0;
}

/* The old primary's queue is void in a view change; clients retransmit,
 * and a new primary proposes the requests it holds as pending. */
static void drop_queue(struct pbft *c)
{
	struct client_rec *r, *tmp;

	for (size_t i = c->q_head; i < c->q_len; i++)
		free(c->queue[i].buf);
	c->q_head = c->q_len = 0;
	HASH_ITER(hh, c->clients, r, tmp) {
		r->in_queue = false;
		r->queued_ts = r->last_ts;
	}
}

/* ---- building our VIEW-CHANGE ------------------------------------------ */

/* 2f PREPARE signatures of e's certificate that verify, in voter order:
 * the kept ones first, then (when one failed: its sender is proven faulty,
 * since the MAC covered it) others still in the vote counter. */
static bool cert_prepares(struct pbft *c, struct log_entry *e, uint16_t *voters,
			  uint8_t out[HM_MAX_REPLICAS][HM_SIG_LEN])
{
	uint32_t need = 2 * c->p.f, got = 0, prim = pbft_primary(c, e->cert_view);
	uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN];

	*voters = 0;
	for (int pass = 0; pass < 2; pass++) {
		for (uint32_t i = 0; i < c->p.n && got < need; i++) {
			bool kept = e->cert_voters >> i & 1;
			const uint8_t *sig;

			if (i == prim || (*voters >> i & 1) || kept != (pass == 0))
				continue;
			if (kept)
				sig = e->cert_sigs[i];
			else if (c->p.vote_sigs &&
				 c->p.vote_sigs(c->p.vote_sigs_ctx, HM_PHASE_PREPARE, e->cert_view,
						e->seq, (uint16_t)(1u << i), sigs) == 0)
				sig = sigs[i];
			else
				continue;
			if (stored_sig_ok(c, HM_MSG_PREPARE, i, 0, e->cert_view, e->seq,
					  e->cert_digest, sig)) {
				*voters |= (uint16_t)(1u << i);
				memcpy(out[i], sig, HM_SIG_LEN);
				got++;
			} else if (kept) {
				proven_faulty(c, i);
			}
		}
	}
	return got == need;
}

/* Put e's certificate (if it still proves anything) into vc entry form. */
static bool vc_entry_of(struct pbft *c, struct log_entry *e, struct hm_vc_entry *out,
			uint8_t sigbuf[HM_MAX_REPLICAS * HM_SIG_LEN])
{
	uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN];
	uint32_t prim = pbft_primary(c, e->cert_view), k = 0;

	if (!stored_sig_ok(c, HM_MSG_PRE_PREPARE, prim, e->cert_pp_len, e->cert_view, e->seq,
			   e->cert_digest, e->cert_pp_sig)) {
		proven_faulty(c, prim);
		return false;
	}
	if (!cert_prepares(c, e, &out->voters, sigs)) {
		c->stats.certs_incomplete++;
		return false;
	}
	for (uint32_t i = 0; i < c->p.n; i++)
		if (out->voters >> i & 1)
			memcpy(sigbuf + HM_SIG_LEN * k++, sigs[i], HM_SIG_LEN);
	out->seq = e->seq;
	out->view = e->cert_view;
	out->digest = e->cert_digest;
	out->pp_len = e->cert_pp_len;
	out->pp_sig = e->cert_pp_sig;
	out->sigs = sigbuf;
	return true;
}

static void sum_add(struct vc_rec *r, uint64_t seq, uint64_t view, const uint8_t *digest)
{
	struct vc_sum *p = realloc(r->sums, (r->n_sums + 1) * sizeof(*r->sums));

	if (!p)
		abort();
	r->sums = p;
	p[r->n_sums].seq = seq;
	p[r->n_sums].view = view;
	memcpy(p[r->n_sums++].digest, digest, HM_DIGEST_LEN);
}

/* The checkpoint proof: 2f+1 good signatures on our stable state digest. */
static size_t put_checkpoint_proof(struct pbft *c, uint8_t *buf, uint8_t *ncp)
{
	const struct checkpoint_rec *cp = &c->stable;
	size_t len = 0;

	*ncp = 0;
	if (c->low == 0 || cp->seq != c->low)
		return 0;
	for (uint32_t i = 0; i < c->p.n && *ncp < 2 * c->p.f + 1; i++) {
		if (!(cp->voted >> i & 1) || memcmp(cp->digests[i], cp->own, HM_DIGEST_LEN) != 0)
			continue;
		if (!stored_sig_ok(c, HM_MSG_CHECKPOINT, i, 0, cp->views[i], cp->seq, cp->own,
				   cp->sigs[i])) {
			proven_faulty(c, i);
			continue;
		}
		len += hm_vc_cp_put(buf + len, HM_VC_CP_LEN, i, cp->views[i], cp->sigs[i]);
		(*ncp)++;
	}
	return len;
}

/* Build, store and send our VIEW-CHANGE for c->vc_target: parts 1.. carry
 * the prepared certificates, the head carries the checkpoint proof and the
 * digests of the parts, and its signature covers them all. */
static void send_view_change(struct pbft *c)
{
	struct vc_rec *r = &c->vcs[c->p.id];
	size_t room = c->p.max_message_size - HM_HDR_LEN, pl[HM_VC_MAX_PARTS] = { 0 }, hl;
	uint8_t *pp[HM_VC_MAX_PARTS] = { 0 }, sigbuf[HM_MAX_REPLICAS * HM_SIG_LEN], *head;
	uint16_t cnt[HM_VC_MAX_PARTS] = { 0 };
	unsigned np = 1;

	vc_rec_clear(r);
	r->view = c->vc_target;
	r->n = c->low;
	for (uint64_t seq = c->low + 1; seq <= c->low + c->p.window; seq++) {
		struct log_entry *e = entry_at(c, seq);
		struct hm_vc_entry ent;
		size_t el;

		if (e->seq != seq || !e->has_cert || !vc_entry_of(c, e, &ent, sigbuf))
			continue;
		el = hm_vc_entry_len(ent.voters);
		if (np == 1 || pl[np - 1] + el > room) {
			if (np == HM_VC_MAX_PARTS)
				break; /* vc_fits() rules this out */
			pp[np] = malloc(room);
			if (!pp[np])
				abort();
			pp[np][0] = HM_VC_PART;
			pp[np][1] = (uint8_t)np;
			pl[np++] = 4;
		}
		pl[np - 1] += hm_vc_entry_put(pp[np - 1] + pl[np - 1], room - pl[np - 1], &ent);
		cnt[np - 1]++;
		sum_add(r, ent.seq, ent.view, ent.digest);
	}
	head = malloc(room);
	if (!head)
		abort();
	head[0] = HM_VC_HEAD;
	head[1] = (uint8_t)np;
	hl = 2;
	for (unsigned i = 1; i < np; i++) {
		pp[i][2] = (uint8_t)(cnt[i] >> 8);
		pp[i][3] = (uint8_t)cnt[i];
		hm_digest(pp[i], pl[i], head + hl);
		hl += HM_DIGEST_LEN;
	}
	if (c->low)
		memcpy(head + hl, c->stable.own, HM_DIGEST_LEN);
	else
		memset(head + hl, 0, HM_DIGEST_LEN);
	memcpy(r->cp_digest, head + hl, HM_DIGEST_LEN);
	hl += HM_DIGEST_LEN;
	hl += 1 + put_checkpoint_proof(c, head + hl + 1, &head[hl]);
	head[hl++] = 0;
	head[hl++] = 0;
	pp[0] = head;
	pl[0] = hl;
	for (unsigned i = 0; i < np; i++) {
		size_t cap = HM_HDR_LEN + pl[i];

		r->part[i] = malloc(cap);
		if (!r->part[i])
			abort();
		r->part_len[i] = (uint32_t)hm_msg_build(r->part[i], cap, HM_MSG_VIEW_CHANGE, c->p.id,
							c->vc_target, c->low, NULL, pp[i],
							(uint32_t)pl[i], c->p.keys);
		emit_copy(c, PBFT_TO_REPLICAS, 0, r->part[i], r->part_len[i], 0);
		free(pp[i]);
	}
	r->nparts = (uint8_t)np;
	r->have = parts_mask(np);
	r->checked = r->valid = true;
}

/* ---- checking a VIEW-CHANGE ------------------------------------------- */

static bool vc_entry_ok(struct pbft *c, const struct vc_rec *r, uint64_t n,
			const struct hm_vc_entry *e, uint8_t *used)
{
	uint32_t prim = pbft_primary(c, e->view), k = 0;

	if (e->seq <= n || e->seq > n + c->p.window || e->view >= r->view || used[e->seq - n - 1])
		return false;
	used[e->seq - n - 1] = 1;
	if ((uint32_t)__builtin_popcount(e->voters) != 2 * c->p.f || (e->voters >> prim & 1) ||
	    (e->voters >> c->p.n) != 0)
		return false;
	if (!stored_sig_ok(c, HM_MSG_PRE_PREPARE, prim, e->pp_len, e->view, e->seq, e->digest,
			   e->pp_sig))
		return false;
	for (uint32_t i = 0; i < c->p.n; i++)
		if ((e->voters >> i & 1) &&
		    !stored_sig_ok(c, HM_MSG_PREPARE, i, 0, e->view, e->seq, e->digest,
				   e->sigs + HM_SIG_LEN * k++))
			return false;
	return true;
}

/* A complete VIEW-CHANGE from j: its head signature, checkpoint proof and
 * every certificate.  The head is signed and binds the parts by digest, and
 * its MAC proves j sent it, so any defect is j's. */
static bool vc_validate(struct pbft *c, uint32_t j, struct vc_rec *r)
{
	const struct hm_hdr *h = dgram_hdr(r->part[0]);
	uint64_t n = hm_get_be64((const uint8_t *)&h->seq);
	struct hm_vc_payload v;
	uint16_t seen = 0;
	uint32_t good = 0;
	uint8_t *used;
	bool ok = true;

	if (!c->p.replica_keys || !hm_verify_header(h, c->p.replica_keys[j]))
		goto bad;
	if (hm_vc_parse(r->part[0] + HM_HDR_LEN, r->part_len[0] - HM_HDR_LEN, &v) < 0 ||
	    n % c->p.checkpoint_interval != 0)
		goto bad;
	for (unsigned i = 0; i < v.ncp; i++) {
		uint32_t id;
		uint64_t view;
		const uint8_t *sig;

		hm_vc_cp_get(&v, i, &id, &view, &sig);
		if (id >= c->p.n || (seen >> id & 1))
			continue;
		seen |= (uint16_t)(1u << id);
		good += stored_sig_ok(c, HM_MSG_CHECKPOINT, id, 0, view, n, v.cp_digest, sig);
	}
	if (n > 0 ? good < 2 * c->p.f + 1 : v.ncp != 0)
		goto bad;
	r->n = n;
	memcpy(r->cp_digest, v.cp_digest, HM_DIGEST_LEN);
	used = calloc(c->p.window, 1);
	if (!used)
		abort();
	for (unsigned i = 0; ok && i < r->nparts; i++) {
		struct hm_vc_iter it;
		struct hm_vc_entry e;

		if (hm_vc_parse(r->part[i] + HM_HDR_LEN, r->part_len[i] - HM_HDR_LEN, &v) < 0) {
			ok = false;
			break;
		}
		hm_vc_iter_init(&it, &v);
		while (ok && hm_vc_next(&it, &e)) {
			ok = vc_entry_ok(c, r, n, &e, used);
			if (ok)
				sum_add(r, e.seq, e.view, e.digest);
		}
	}
	free(used);
	if (ok)
		return true;
bad:
	free(r->sums);
	r->sums = NULL;
	r->n_sums = 0;
	proven_faulty(c, j);
	return false;
}

static void vc_check(struct pbft *c, uint32_t j)
{
	struct vc_rec *r = &c->vcs[j];

	if (r->checked || !r->nparts || r->have != parts_mask(r->nparts))
		return;
	r->checked = true;
	r->valid = vc_validate(c, j, r);
	if (!r->valid)
		c->stats.view_changes_refused++;
}

/* ---- O: what the new view proposes ------------------------------------ */

/* From the VIEW-CHANGEs of replicas ids[]: min-s (the latest stable
 * checkpoint), max-s (the highest prepared seq), and for each seq between
 * the digest prepared in the highest view, or the null request.  Returns
 * the digests (max-s - min-s of them, caller frees) and H(O). */
static uint8_t (*nv_compute(const struct pbft *c, const uint8_t *ids, unsigned nrefs,
			    uint64_t *min_s, uint64_t *max_s, uint8_t o_digest[HM_DIGEST_LEN]))[HM_DIGEST_LEN]
{
	uint64_t lo = 0, hi, count, *views;
	uint8_t (*o)[HM_DIGEST_LEN], null_digest[HM_DIGEST_LEN];
	bool *set;

	for (unsigned i = 0; i < nrefs; i++)
		if (c->vcs[ids[i]].n > lo)
			lo = c->vcs[ids[i]].n;
	hi = lo;
	for (unsigned i = 0; i < nrefs; i++)
		for (size_t k = 0; k < c->vcs[ids[i]].n_sums; k++)
			if (c->vcs[ids[i]].sums[k].seq > hi)
				hi = c->vcs[ids[i]].sums[k].seq;
	count = hi - lo;
	o = calloc(count + 1, HM_DIGEST_LEN);
	views = calloc(count + 1, sizeof(*views));
	set = calloc(count + 1, sizeof(*set));
	if (!o || !views || !set)
		abort();
	for (unsigned i = 0; i < nrefs; i++) {
		const struct vc_rec *r = &c->vcs[ids[i]];

		for (size_t k = 0; k < r->n_sums; k++) {
			const struct vc_sum *s = &r->sums[k];
			uint64_t x = s->seq - lo - 1;

			if (s->seq <= lo)
				continue;
			/* Highest view wins; two certificates in one view
			 * cannot disagree without f+1 faults, but a fixed
			 * tie-break keeps every replica's O the same. */
			if (!set[x] || s->view > views[x] ||
			    (s->view == views[x] && memcmp(s->digest, o[x], HM_DIGEST_LEN) < 0)) {
				set[x] = true;
				views[x] = s->view;
				memcpy(o[x], s->digest, HM_DIGEST_LEN);
			}
		}
	}
	hm_digest(null_batch, sizeof(null_batch), null_digest);
	for (uint64_t x = 0; x < count; x++)
		if (!set[x])
			memcpy(o[x], null_digest, HM_DIGEST_LEN);
	hm_digest(o, count * HM_DIGEST_LEN, o_digest);
	free(views);
	free(set);
	*min_s = lo;
	*max_s = hi;
	return o;
}

/* ---- installing a new view --------------------------------------------- */

/* Our checkpoint at min-s becomes stable with the proof from V, if we
 * executed that far and agree with it. */
static void adopt_checkpoint(struct pbft *c, uint64_t min_s, const uint8_t *ids, unsigned nrefs)
{
	struct checkpoint_rec *cp = checkpoint_get(c, min_s, false);
	struct hm_vc_payload v;

	if (c->last_executed < min_s && c->low < min_s) {
		/* Behind the new view's checkpoint: its proof certifies the
		 * state we fetch by state transfer. */
		for (unsigned i = 0; i < nrefs; i++) {
			const struct vc_rec *r = &c->vcs[ids[i]];

			if (r->n != min_s ||
			    hm_vc_parse(r->part[0] + HM_HDR_LEN, r->part_len[0] - HM_HDR_LEN, &v) < 0)
				continue;
			for (unsigned k = 0; k < v.ncp; k++) {
				uint32_t id;
				uint64_t view;
				const uint8_t *sig;

				hm_vc_cp_get(&v, k, &id, &view, &sig);
				if (id < c->p.n && id != c->p.id)
					claim_record(c, id, view, min_s, v.cp_digest, sig);
			}
		}
		c->need_state = true;
		maybe_transfer(c);
		return;
	}
	if (c->low >= min_s || c->last_executed < min_s || !cp || !cp->own_known)
		return;
	for (unsigned i = 0; i < nrefs; i++) {
		const struct vc_rec *r = &c->vcs[ids[i]];

		if (r->n != min_s || memcmp(r->cp_digest, cp->own, HM_DIGEST_LEN) != 0 ||
		    hm_vc_parse(r->part[0] + HM_HDR_LEN, r->part_len[0] - HM_HDR_LEN, &v) < 0)
			continue;
		for (unsigned k = 0; k < v.ncp; k++) {
			uint32_t id;
			uint64_t view;
			const uint8_t *sig;

			hm_vc_cp_get(&v, k, &id, &view, &sig);
			if (id < c->p.n)
				record_checkpoint_vote(cp, id, view, v.cp_digest, sig);
		}
		make_stable(c, cp);
		return;
	}
}

/* New primary: propose seq s of O again in the new view, with the batch
 * whose digest O names (fetched from the others if we lack it). */
static void nv_propose(struct pbft *c, uint64_t s)
{
	struct log_entry *e = entry_at(c, s);
	uint8_t nd[HM_DIGEST_LEN], fetch[1 + HM_DIGEST_LEN];
	struct hm_hdr *h;

	if (e->seq != s || e->nv_view != c->view || e->has_pp || silent(c, s))
		return;
	hm_digest(null_batch, sizeof(null_batch), nd);
	if (memcmp(e->nv_digest, nd, HM_DIGEST_LEN) == 0 &&
	    (!e->batch || memcmp(e->digest, nd, HM_DIGEST_LEN) != 0)) {
		free(e->batch);
		e->batch = calloc(1, sizeof(null_batch));
		if (!e->batch)
			abort();
		e->batch_len = sizeof(null_batch);
		memcpy(e->digest, nd, HM_DIGEST_LEN);
	}
	if (!e->batch || memcmp(e->digest, e->nv_digest, HM_DIGEST_LEN) != 0) {
		e->nv_need = true;
		fetch[0] = HM_NV_FETCH;
		memcpy(fetch + 1, e->nv_digest, HM_DIGEST_LEN);
		send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_NEW_VIEW, c->view, s, NULL, fetch,
			 sizeof(fetch));
		return;
	}
	e->nv_need = false;
	e->view = c->view;
	e->has_pp = true;
	h = send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_PRE_PREPARE, c->view, s, NULL, e->batch,
		     e->batch_len);
	memcpy(e->pp_sig, h->sig, HM_SIG_LEN);
	vote_policy(c, HM_PHASE_PREPARE, c->view, s, e->digest, NULL);
	vote_policy(c, HM_PHASE_COMMIT, c->view, s, e->digest, NULL);
}

/* New primary: the pending requests we hold (signature checked now, as
 * on_request would) go into the queue at once instead of waiting for the
 * clients to retransmit. */
static void queue_pending(struct pbft *c)
{
	struct client_rec *r, *tmp;

	HASH_ITER(hh, c->clients, r, tmp) {
		const uint8_t *pk = c->p.client_key(c->p.client_key_ctx, r->id);
		enum hm_drop_reason why;
		struct hm_msg m;

		if (!r->pending || r->pending_ts <= r->last_ts || r->in_queue || !pk ||
		    hm_msg_decode(r->pending, r->pending_len, HM_MAX_DATAGRAM, &m, &why) < 0 ||
		    HM_HDR_LEN + HM_NV_BATCH_OVERHEAD + 8 + m.len > c->p.max_message_size)
			continue;
		if (!hm_verify_header(m.hdr, pk)) {
			c->stats.bad_client_signatures++;
			continue;
		}
		r->queued_ts = m.seq;
		r->in_queue = true;
		c->stats.requests_received++;
		queue_push(c, &m);
	}
}

static void install(struct pbft *c, uint64_t view, uint64_t lo, uint64_t hi,
		    const uint8_t (*o)[HM_DIGEST_LEN], const uint8_t *ids, unsigned nrefs)
{
	struct client_rec *r, *tmp;

	c->view = view;
	c->in_vc = false;
	c->vc_target = view;
	c->vc_timer_at = 0;
	c->window_changed = true;
	c->view_works = false;
	c->nv_view = view;
	c->nv_min_s = lo;
	c->nv_max_s = hi;
	c->stats.view_changes_installed++;
	free(c->nv_pending);
	c->nv_pending = NULL;
	adopt_checkpoint(c, lo, ids, nrefs);
	drop_queue(c);
	/* The old views' normal case is over above min-s; the certificates
	 * stay (a later view change may need them). */
	for (uint32_t i = 0; i < c->log_size; i++) {
		struct log_entry *e = &c->log[i];

		if (e->seq > lo) {
			/* What we executed stays committed (O gives it the same
			 * digest), so we can still serve it to laggards. */
			e->committed = e->committed && e->seq <= c->last_executed;
			e->has_pp = e->prepared = e->commit_quorum = false;
			e->helped = 0;
			e->nv_need = false;
		}
	}
	for (uint64_t s = lo + 1; s <= hi; s++) {
		struct log_entry *e;

		if (s + c->p.checkpoint_interval <= c->low || s > c->low + c->p.window)
			continue; /* outside what our log can hold */
		e = entry_claim(c, s);
		e->nv_view = view;
		memcpy(e->nv_digest, o[s - lo - 1], HM_DIGEST_LEN);
	}
	/* Pending requests wait afresh in the new view. */
	c->pend_head = c->pend_len = 0;
	HASH_ITER(hh, c->clients, r, tmp)
		if (r->pending_ts > r->last_ts)
			pend_push(c, r->id, r->pending_ts, c->now);
	memo_clear(c);
	if (!is_primary(c)) {
		early_replay(c);
		return;
	}
	early_clear(c);
	c->next_seq = hi > c->low ? hi : c->low;
	if (c->next_seq < c->last_executed)
		c->next_seq = c->last_executed;
	for (uint64_t s = lo + 1; s <= hi; s++)
		nv_propose(c, s);
	queue_pending(c);
	maybe_propose(c);
}

/* ---- NEW-VIEW ---------------------------------------------------------- */

size_t pbft_new_view_payload(struct pbft *c, uint64_t view, uint8_t *buf, size_t cap)
{
	uint8_t ids[HM_MAX_REPLICAS], digests[HM_MAX_REPLICAS][HM_DIGEST_LEN], o_digest[HM_DIGEST_LEN];
	uint8_t (*o)[HM_DIGEST_LEN];
	uint64_t lo, hi;
	unsigned n = 0, quota;
	bool own;

	/* Our own VIEW-CHANGE (when we have one for this view) and others by
	 * id, 2f+1 in all, in increasing id order. */
	own = c->vcs[c->p.id].view == view && c->vcs[c->p.id].valid;
	quota = 2 * c->p.f + 1 - (own ? 1 : 0);
	for (uint32_t j = 0; j < c->p.n; j++) {
		const struct vc_rec *r = &c->vcs[j];

		if (j == c->p.id) {
			if (own)
				ids[n++] = (uint8_t)j;
		} else if (quota > 0 && r->view == view && r->checked && r->valid) {
			ids[n++] = (uint8_t)j;
			quota--;
		}
	}
	if (n < 2 * c->p.f + 1)
		return 0;
	for (unsigned i = 0; i < n; i++)
		memcpy(digests[i], dgram_hdr(c->vcs[ids[i]].part[0])->digest, HM_DIGEST_LEN);
	o = nv_compute(c, ids, n, &lo, &hi, o_digest);
	free(o);
	return hm_nv_new_put(buf, cap, (uint8_t)n, ids, (const uint8_t(*)[HM_DIGEST_LEN])digests,
			     lo, hi, o_digest);
}

static void start_view_change(struct pbft *c, uint64_t view);

/* Ask replica j again for its VIEW-CHANGE (a NEW-VIEW names it and we miss
 * a part); j answers with its own, signed, datagrams. */
static void fetch_vc(struct pbft *c, uint32_t j, uint64_t view, const uint8_t *digest)
{
	uint8_t fetch[1 + HM_DIGEST_LEN];

	if (j == c->p.id || !throttle_ok(c, &c->vc_fetch_at[j]))
		return;
	fetch[0] = HM_NV_FETCH;
	memcpy(fetch + 1, digest, HM_DIGEST_LEN);
	send_msg(c, PBFT_TO_REPLICA, j, HM_MSG_NEW_VIEW, view, 0, NULL, fetch, sizeof(fetch));
}

/* Check a NEW-VIEW for `view` against the VIEW-CHANGEs it names and the O
 * we compute from them.  1: installed; 0: waiting for VIEW-CHANGEs; -1:
 * refused; -2: refused, and the primary's O is provably wrong. */
static int nv_accept(struct pbft *c, uint64_t view, const uint8_t *p, size_t len)
{
	struct hm_nv_payload nv;
	uint8_t (*o)[HM_DIGEST_LEN], o_digest[HM_DIGEST_LEN];
	uint64_t lo, hi;
	bool waiting = false;

	if (hm_nv_parse(p, len, &nv) < 0 || nv.kind != HM_NV_NEW || nv.nrefs < 2 * c->p.f + 1)
		return -1;
	for (unsigned i = 0; i < nv.nrefs; i++) {
		uint32_t id = nv.ref_ids[i];
		struct vc_rec *r;

		if (id >= c->p.n)
			return -1;
		r = &c->vcs[id];
		if (r->view == view && r->nparts &&
		    memcmp(dgram_hdr(r->part[0])->digest, nv.ref_digests[i], HM_DIGEST_LEN) != 0)
			return -1; /* not the VIEW-CHANGE we hold from id */
		if (r->view != view || !r->checked) {
			waiting = true;
			fetch_vc(c, id, view, nv.ref_digests[i]);
		} else if (!r->valid) {
			return -1;
		}
	}
	if (waiting)
		return 0;
	o = nv_compute(c, nv.ref_ids, nv.nrefs, &lo, &hi, o_digest);
	if (lo != nv.min_s || hi != nv.max_s || memcmp(o_digest, nv.o_digest, HM_DIGEST_LEN) != 0) {
		free(o);
		return -2;
	}
	install(c, view, lo, hi, (const uint8_t(*)[HM_DIGEST_LEN])o, nv.ref_ids, nv.nrefs);
	free(o);
	return 1;
}

static void try_pending_nv(struct pbft *c)
{
	int r;

	if (!c->nv_pending)
		return;
	if (c->nv_pending_view <= c->view || (c->in_vc && c->nv_pending_view < c->vc_target)) {
		free(c->nv_pending);
		c->nv_pending = NULL;
		return;
	}
	r = nv_accept(c, c->nv_pending_view, c->nv_pending, c->nv_pending_len);
	if (r < 0) {
		c->stats.new_views_refused++;
		free(c->nv_pending);
		c->nv_pending = NULL;
	}
}

/* New primary: with 2f+1 valid VIEW-CHANGEs (ours among them), send the
 * NEW-VIEW and enter the view. */
static void try_send_new_view(struct pbft *c)
{
	uint8_t buf[2 + HM_MAX_REPLICAS * (1 + HM_DIGEST_LEN) + 16 + HM_DIGEST_LEN];
	size_t len = pbft_new_view_payload(c, c->vc_target, buf, sizeof(buf));
	struct hm_nv_payload nv;

	if (!len || hm_nv_parse(buf, len, &nv) < 0)
		return;
	free(c->nv_sent);
	c->nv_sent = malloc(len);
	if (!c->nv_sent)
		abort();
	memcpy(c->nv_sent, buf, len);
	c->nv_sent_len = len;
	send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_NEW_VIEW, c->vc_target, nv.min_s, NULL, buf,
		 (uint32_t)len);
	/* Our own computation over VIEW-CHANGEs we validated: it installs. */
	nv_accept(c, c->vc_target, buf, len);
}

/* A peer still changing to a view we are past: our NEW-VIEW, if we were
 * its primary, brings it over (at most once per retransmit interval). */
static void serve_new_view(struct pbft *c, uint32_t j)
{
	if (c->in_vc || !c->nv_sent || pbft_primary(c, c->view) != c->p.id ||
	    !throttle_ok(c, &c->nv_served_at[j]))
		return;
	send_msg(c, PBFT_TO_REPLICA, j, HM_MSG_NEW_VIEW, c->view, c->nv_min_s, NULL, c->nv_sent,
		 (uint32_t)c->nv_sent_len);
}

/* After any VIEW-CHANGE news: join a view f+1 others moved to, start the
 * new-view timer at 2f+1, send or check the NEW-VIEW. */
static void vc_progress(struct pbft *c)
{
	uint64_t ref = c->in_vc ? c->vc_target : c->view, join = UINT64_MAX;
	uint32_t above = 0, same = 0;

	for (uint32_t j = 0; j < c->p.n; j++) {
		const struct vc_rec *r = &c->vcs[j];

		if (j == c->p.id || !r->nparts)
			continue;
		if (r->view > ref) {
			above++;
			join = r->view < join ? r->view : join;
		}
	}
	/* f+1 replicas, so at least one correct one, left our view. */
	if (above >= c->p.f + 1) {
		start_view_change(c, join);
		return;
	}
	if (c->in_vc) {
		for (uint32_t j = 0; j < c->p.n; j++)
			same += c->vcs[j].view == c->vc_target && c->vcs[j].nparts;
		if (!c->vc_timer_at && same >= 2 * c->p.f + 1)
			c->vc_timer_at = c->now ? c->now : 1;
		if (pbft_primary(c, c->vc_target) == c->p.id) {
			try_send_new_view(c);
			return;
		}
	}
	try_pending_nv(c);
}

static void start_view_change(struct pbft *c, uint64_t view)
{
	if (view <= (c->in_vc ? c->vc_target : c->view))
		return;
	c->in_vc = true;
	c->vc_target = view;
	c->vc_timer_at = 0;
	c->window_changed = true;
	drop_queue(c);
	early_clear(c);
	c->stats.view_changes_started++;
	send_view_change(c);
	vc_progress(c);
}

static void vc_timers(struct pbft *c)
{
	struct pending_mark *pm;

	if (!c->p.view_change_timeout_ms)
		return;
	pend_oldest(c); /* drop dead marks, on the primary too */
	if (c->in_vc) {
		/* No NEW-VIEW in time: the next view, waiting twice as long. */
		if (c->vc_timer_at && c->now >= c->vc_timer_at + vc_timeout_us(c)) {
			c->vc_backoff++;
			start_view_change(c, c->vc_target + 1);
		}
		return;
	}
	while (!acting_primary(c) && (pm = pend_oldest(c)) &&
	       c->now >= pm->since + vc_timeout_us(c)) {
		struct client_rec *r = client_find(c, pm->client);
		const uint8_t *pk = c->p.client_key(c->p.client_key_ctx, r->id);

		/* Suspect the primary only over a request its client signed:
		 * one verification per timeout, not one per request. */
		if (pk && hm_verify_header(dgram_hdr(r->pending), pk)) {
			/* A new view that never executed a request failed too:
			 * the next one waits twice as long (as in the paper). */
			if (c->view > 0 && !c->view_works)
				c->vc_backoff++;
			start_view_change(c, c->view + 1);
			return;
		}
		c->stats.bad_client_signatures++;
		free(r->pending);
		r->pending = NULL;
		r->pending_ts = 0;
	}
}

static bool vc_retransmit(struct pbft *c)
{
	bool pending = false;
	uint8_t fetch[1 + HM_DIGEST_LEN];

	if (c->in_vc) {
		const struct vc_rec *r = &c->vcs[c->p.id];

		for (unsigned i = 0; i < r->nparts; i++)
			emit_copy(c, PBFT_TO_REPLICAS, 0, r->part[i], r->part_len[i],
				  HM_FLAG_RETRANSMIT);
		pending = true;
	}
	if (c->nv_pending) {
		try_pending_nv(c);
		pending = true;
	}
	for (uint32_t i = 0; !c->in_vc && i < c->log_size; i++) {
		const struct log_entry *e = &c->log[i];

		if (e->nv_need && e->nv_view == c->view) {
			fetch[0] = HM_NV_FETCH;
			memcpy(fetch + 1, e->nv_digest, HM_DIGEST_LEN);
			send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_NEW_VIEW, HM_FLAG_RETRANSMIT,
				     c->view, e->seq, NULL, fetch, sizeof(fetch));
			pending = true;
		}
	}
	return pending;
}

static int on_view_change(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct vc_rec *r = &c->vcs[m->sender];
	struct hm_vc_payload v;
	unsigned idx;

	if (!c->p.view_change_timeout_ms || hm_vc_parse(m->payload, m->payload_len, &v) < 0)
		return refuse(why, HM_DROP_MALFORMED);
	if (m->view <= c->view) {
		serve_new_view(c, m->sender);
		return refuse(why, HM_DROP_STALE);
	}
	if (m->view < r->view)
		return refuse(why, HM_DROP_STALE);
	if (m->view > r->view) {
		vc_rec_clear(r);
		r->view = m->view;
	}
	idx = v.kind == HM_VC_HEAD ? 0 : v.index;
	if (r->have >> idx & 1) {
		if (memcmp(dgram_hdr(r->part[idx])->digest, m->digest, HM_DIGEST_LEN) == 0)
			return refuse(why, HM_DROP_DUPLICATE);
		c->stats.equivocations++;
		return refuse(why, HM_DROP_EQUIVOCATION);
	}
	if (idx > 0 && r->nparts) {
		struct hm_vc_payload hv;

		hm_vc_parse(r->part[0] + HM_HDR_LEN, r->part_len[0] - HM_HDR_LEN, &hv);
		if (idx >= r->nparts ||
		    memcmp(hv.part_digests + (idx - 1) * HM_DIGEST_LEN, m->digest, HM_DIGEST_LEN))
			return refuse(why, HM_DROP_MALFORMED);
	}
	r->part[idx] = malloc(m->len);
	if (!r->part[idx])
		abort();
	memcpy(r->part[idx], m->hdr, m->len);
	memset(((struct hm_hdr *)r->part[idx])->mac, 0, HM_MAC_LEN);
	r->part[idx][6] = r->part[idx][7] = 0; /* flags */
	r->part_len[idx] = (uint32_t)m->len;
	r->have |= 1ull << idx;
	if (idx == 0) {
		/* Parts that came first must be the ones the head names. */
		r->nparts = v.nparts;
		for (unsigned i = 1; i < HM_VC_MAX_PARTS; i++) {
			if (!(r->have >> i & 1))
				continue;
			if (i < v.nparts && memcmp(v.part_digests + (i - 1) * HM_DIGEST_LEN,
						   dgram_hdr(r->part[i])->digest, HM_DIGEST_LEN) == 0)
				continue;
			free(r->part[i]);
			r->part[i] = NULL;
			r->have &= ~(1ull << i);
		}
	}
	vc_check(c, m->sender);
	vc_progress(c);
	return 0;
}

/* FETCH: a batch (seq > 0) we hold with that digest, or (seq 0) our own
 * VIEW-CHANGE with that head digest.  Answered at most once per retransmit
 * interval per peer and slot. */
static int on_fetch(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		    enum hm_drop_reason *why)
{
	static const uint8_t zero[HM_DIGEST_LEN];
	struct log_entry *e = entry_at(c, m->seq);
	uint8_t *payload;
	size_t len;

	if (m->seq == 0) {
		const struct vc_rec *r = &c->vcs[c->p.id];

		if (r->view != m->view || !r->nparts ||
		    memcmp(dgram_hdr(r->part[0])->digest, nv->digest, HM_DIGEST_LEN) != 0)
			return refuse(why, HM_DROP_STALE);
		if (!throttle_ok(c, &c->vc_served_at[m->sender]))
			return refuse(why, HM_DROP_RATE_LIMITED);
		for (unsigned i = 0; i < r->nparts; i++)
			emit_copy(c, PBFT_TO_REPLICA, m->sender, r->part[i], r->part_len[i], 0);
		return 0;
	}
	if (e->seq != m->seq || !e->batch ||
	    (memcmp(nv->digest, zero, HM_DIGEST_LEN) == 0
		     ? !e->committed
		     : memcmp(e->digest, nv->digest, HM_DIGEST_LEN) != 0))
		return refuse(why, HM_DROP_STALE);
	if (c->now >= e->fetch_at + (uint64_t)c->p.retransmit_ms * 1000) {
		e->fetch_served = 0;
		e->fetch_at = c->now;
	}
	if (e->fetch_served >> m->sender & 1)
		return refuse(why, HM_DROP_RATE_LIMITED);
	e->fetch_served |= (uint16_t)(1u << m->sender);
	len = HM_NV_BATCH_OVERHEAD + e->batch_len;
	if (HM_HDR_LEN + len > c->p.max_message_size)
		return refuse(why, HM_DROP_OVERSIZE);
	payload = malloc(len);
	if (!payload)
		abort();
	payload[0] = HM_NV_BATCH;
	payload[1] = e->committed;
	memcpy(payload + 2, e->digest, HM_DIGEST_LEN);
	memcpy(payload + HM_NV_BATCH_OVERHEAD, e->batch, e->batch_len);
	send_msg(c, PBFT_TO_REPLICA, m->sender, HM_MSG_NEW_VIEW, c->view, m->seq, NULL, payload,
		 (uint32_t)len);
	free(payload);
	return 0;
}

/* BATCH marked committed, for a seq we have not executed: once f+1 peers
 * (so at least one correct one) claim the same digest, and the batch in hand
 * hashes to it, the slot is committed for us too.  This is how a replica
 * that lags across a view change gets slots whose old-view messages its
 * pre-filter no longer takes. */
static int on_claim(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		    enum hm_drop_reason *why)
{
	struct log_entry *e = entry_at(c, m->seq);
	uint8_t d[HM_DIGEST_LEN];
	uint32_t agree = 0;

	if (m->seq <= c->last_executed || !in_window(c, m->seq) ||
	    (e->seq == m->seq && e->committed))
		return refuse(why, HM_DROP_STALE);
	hm_digest(nv->batch, nv->batch_len, d);
	if (memcmp(d, nv->digest, HM_DIGEST_LEN) != 0)
		return refuse(why, HM_DROP_BAD_DIGEST);
	e = entry_claim(c, m->seq);
	e->claimed |= (uint16_t)(1u << m->sender);
	memcpy(e->claims[m->sender], d, HM_DIGEST_LEN);
	for (uint32_t i = 0; i < c->p.n; i++)
		agree += (e->claimed >> i & 1) && memcmp(e->claims[i], d, HM_DIGEST_LEN) == 0;
	if (agree < c->p.f + 1)
		return 0;
	/* Client signatures checked once, for the batch about to execute. */
	if (check_batch(c, nv->batch, nv->batch_len, why) < 0)
		return -1;
	free(e->batch);
	e->batch = malloc(nv->batch_len);
	if (!e->batch)
		abort();
	memcpy(e->batch, nv->batch, nv->batch_len);
	e->batch_len = nv->batch_len;
	memcpy(e->digest, d, HM_DIGEST_LEN);
	e->committed = true;
	c->stats.batches_fetched++;
	execute_committed(c);
	return 0;
}

/* Lagging and stuck: ask for the next slots (up to a checkpoint interval
 * of them, so that we gain on a group that keeps going) as committed
 * batches. */
static void fetch_committed(struct pbft *c)
{
	uint8_t fetch[1 + HM_DIGEST_LEN] = { HM_NV_FETCH };

	for (uint64_t s = c->last_executed + 1;
	     s <= c->highest_seen && s <= c->last_executed + c->p.checkpoint_interval; s++)
		if (in_window(c, s))
			send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_NEW_VIEW, HM_FLAG_RETRANSMIT,
				     c->view, s, NULL, fetch, sizeof(fetch));
}

/* BATCH: the batch a new primary was missing for a seq of its O.  Its
 * digest, certified by the VIEW-CHANGEs, authenticates it. */
static int on_batch(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		    enum hm_drop_reason *why)
{
	struct log_entry *e = entry_at(c, m->seq);
	uint8_t d[HM_DIGEST_LEN];

	if (nv->committed && !(e->seq == m->seq && e->nv_need))
		return on_claim(c, m, nv, why);
	if (e->seq != m->seq || !e->nv_need || e->nv_view != c->view || !is_primary(c) ||
	    memcmp(nv->digest, e->nv_digest, HM_DIGEST_LEN) != 0)
		return refuse(why, HM_DROP_STALE);
	hm_digest(nv->batch, nv->batch_len, d);
	if (memcmp(d, e->nv_digest, HM_DIGEST_LEN) != 0)
		return refuse(why, HM_DROP_BAD_DIGEST);
	if (hm_batch_validate(nv->batch, nv->batch_len, c->p.max_message_size) < 0)
		return refuse(why, HM_DROP_MALFORMED);
	free(e->batch);
	e->batch = malloc(nv->batch_len);
	if (!e->batch)
		abort();
	memcpy(e->batch, nv->batch, nv->batch_len);
	e->batch_len = nv->batch_len;
	memcpy(e->digest, d, HM_DIGEST_LEN);
	c->stats.batches_fetched++;
	nv_propose(c, m->seq);
	return 0;
}

static int on_new_view(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct hm_nv_payload nv;
	int r;

	if (!c->p.view_change_timeout_ms || hm_nv_parse(m->payload, m->payload_len, &nv) < 0)
		return refuse(why, HM_DROP_MALFORMED);
	if (nv.kind == HM_NV_FETCH)
		return on_fetch(c, m, &nv, why);
	if (nv.kind == HM_NV_BATCH)
		return on_batch(c, m, &nv, why);
	if (m->sender != pbft_primary(c, m->view)) {
		c->stats.new_views_refused++;
		return refuse(why, HM_DROP_MALFORMED);
	}
	/* Never a view below one we sent a VIEW-CHANGE for: that VIEW-CHANGE
	 * may already stand for us in its view's NEW-VIEW, so we must not
	 * prepare anything in a lower view after it. */
	if (m->view <= c->view || (c->in_vc && m->view < c->vc_target))
		return refuse(why, HM_DROP_STALE);
	r = nv_accept(c, m->view, m->payload, m->payload_len);
	if (r == 0) {
		/* Keep it until the VIEW-CHANGEs it names are in. */
		if (!c->nv_pending || m->view >= c->nv_pending_view) {
			free(c->nv_pending);
			c->nv_pending = malloc(m->payload_len);
			if (!c->nv_pending)
				abort();
			memcpy(c->nv_pending, m->payload, m->payload_len);
			c->nv_pending_len = m->payload_len;
			c->nv_pending_view = m->view;
		}
		return 0;
	}
	if (r > 0)
		return 0;
	c->stats.new_views_refused++;
	/* An O that contradicts the VIEW-CHANGEs it names, under the
	 * primary's signature, is proof against the primary. */
	if (r == -2 && c->p.replica_keys && hm_verify_header(m->hdr, c->p.replica_keys[m->sender]))
		proven_faulty(c, m->sender);
	return refuse(why, HM_DROP_MALFORMED);
}

bool pbft_in_view_change(const struct pbft *c) { return c->in_vc; }

bool pbft_vc_digest(const struct pbft *c, uint32_t sender, uint64_t view,
		    uint8_t out[HM_DIGEST_LEN])
{
	const struct vc_rec *r;

	if (sender >= c->p.n)
		return false;
	r = &c->vcs[sender];
	if (r->view != view || !r->checked || !r->valid)
		return false;
	memcpy(out, dgram_hdr(r->part[0])->digest, HM_DIGEST_LEN);
	return true;
}

/* ---- replica state, state transfer and recovery -------------------------- */

/*
 * The replica state a checkpoint certifies (docs/persistence.md, "The
 * replica state"): what exactly-once execution needs besides the service,
 * i.e. per client the timestamp of its last executed request and that
 * request's reply payload (deterministic: client, seq, result), then the
 * service snapshot.  All integers big-endian, clients by increasing id.
 *
 *   "HMRS", u32 version 1, u32 nclients,
 *   nclients x { u32 id, u64 last_ts, u32 reply_len, reply payload },
 *   u64 service_len, service snapshot
 */
#define RS_MAGIC 0x484d5253u /* "HMRS" */
#define RS_VERSION 1

static int client_id_cmp(const struct client_rec *a, const struct client_rec *b)
{
	return a->id < b->id ? -1 : a->id > b->id;
}

uint8_t *pbft_snapshot(struct pbft *c, size_t *len_out)
{
	const struct hm_service *svc = c->p.service;
	struct client_rec *r, *tmp;
	uint8_t *svc_snap = NULL, *buf, *p;
	size_t svc_len = 0, len = 12 + 8;
	uint32_t n = 0;

	if (svc->ops->snapshot(svc->state, &svc_snap, &svc_len) < 0)
		return NULL;
	HASH_SORT(c->clients, client_id_cmp);
	HASH_ITER(hh, c->clients, r, tmp) {
		if (!r->last_ts)
			continue;
		n++;
		len += 16 + (r->reply ? r->reply_len - HM_HDR_LEN : 0);
	}
	len += svc_len;
	buf = malloc(len);
	if (!buf) {
		free(svc_snap);
		return NULL;
	}
	hm_put_be32(buf, RS_MAGIC);
	hm_put_be32(buf + 4, RS_VERSION);
	hm_put_be32(buf + 8, n);
	p = buf + 12;
	HASH_ITER(hh, c->clients, r, tmp) {
		size_t rl = r->reply ? r->reply_len - HM_HDR_LEN : 0;

		if (!r->last_ts)
			continue;
		hm_put_be32(p, r->id);
		hm_put_be64(p + 4, r->last_ts);
		hm_put_be32(p + 12, (uint32_t)rl);
		if (rl)
			memcpy(p + 16, r->reply + HM_HDR_LEN, rl);
		p += 16 + rl;
	}
	hm_put_be64(p, svc_len);
	if (svc_len)
		memcpy(p + 8, svc_snap, svc_len);
	free(svc_snap);
	*len_out = len;
	return buf;
}

/* Check the layout of a replica state; on success *svc, *svc_len locate the
 * service snapshot. */
static int rs_check(const uint8_t *b, size_t len, const uint8_t **svc, size_t *svc_len)
{
	size_t off = 12;
	uint32_t n;
	uint64_t sl;

	if (len < 20 || hm_get_be32(b) != RS_MAGIC || hm_get_be32(b + 4) != RS_VERSION)
		return -1;
	n = hm_get_be32(b + 8);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rl;

		if (len - off < 16)
			return -1;
		rl = hm_get_be32(b + off + 12);
		if (rl > HM_REPLY_PREFIX_LEN + HM_MAX_RESULT || len - off - 16 < rl)
			return -1;
		off += 16 + rl;
	}
	if (len - off < 8)
		return -1;
	sl = hm_get_be64(b + off);
	if (sl != len - off - 8)
		return -1;
	*svc = b + off + 8;
	*svc_len = (size_t)sl;
	return 0;
}

/* Load a replica state: the service, then the client table (replies are
 * re-signed by us, in the current view). */
static int rs_restore(struct pbft *c, const uint8_t *b, size_t len)
{
	const struct hm_service *svc = c->p.service;
	struct client_rec *r, *tmp;
	const uint8_t *ss, *p = b + 12;
	size_t sl;

	if (rs_check(b, len, &ss, &sl) < 0 || svc->ops->restore(svc->state, ss, sl) < 0)
		return -1;
	HASH_ITER(hh, c->clients, r, tmp) {
		r->last_ts = 0;
		free(r->reply);
		r->reply = NULL;
		r->reply_len = 0;
	}
	for (uint32_t i = 0, n = hm_get_be32(b + 8); i < n; i++) {
		uint32_t rl = hm_get_be32(p + 12);

		r = client_get(c, hm_get_be32(p));
		r->last_ts = hm_get_be64(p + 4);
		if (r->queued_ts < r->last_ts)
			r->queued_ts = r->last_ts;
		if (r->pending_ts && r->pending_ts <= r->last_ts) {
			free(r->pending);
			r->pending = NULL;
			r->pending_ts = 0;
		}
		if (rl) {
			r->reply_len = HM_HDR_LEN + rl;
			r->reply = malloc(r->reply_len);
			if (!r->reply)
				abort();
			hm_msg_build_flags(r->reply, r->reply_len, HM_MSG_REPLY, 0, c->p.id, c->view,
					   r->last_ts, NULL, p + 16, rl, c->p.keys);
		}
		p += 16 + rl;
	}
	return 0;
}

/*
 * Make a certified replica state ours at seq: the service and the client
 * table from snap (owned: kept as the stable checkpoint's), low and last
 * executed move to seq, everything of the log at or below it goes.  Slots
 * above seq stay: ones already committed execute now.
 */
static int install_state(struct pbft *c, uint64_t seq, const uint8_t *digest,
			 const struct hm_cp_vote *votes, uint32_t nvotes, uint8_t *snap,
			 size_t len, bool announce)
{
	struct checkpoint_rec *st = &c->stable;

	if (rs_restore(c, snap, len) < 0) {
		free(snap);
		return -1;
	}
	for (uint32_t i = 0; i < c->log_size; i++) {
		struct log_entry *e = &c->log[i];

		if (e->seq && e->seq <= seq) {
			free(e->batch);
			memset(e, 0, sizeof(*e));
		}
	}
	for (int i = 0; i < HM_MAX_LIVE_CHECKPOINTS; i++)
		if (c->cps[i].seq <= seq) {
			free(c->cps[i].snap);
			c->cps[i].snap = NULL;
			c->cps[i].seq = 0;
		}
	free(st->snap);
	memset(st, 0, sizeof(*st));
	st->seq = seq;
	st->own_known = true;
	memcpy(st->own, digest, HM_DIGEST_LEN);
	for (uint32_t i = 0; i < nvotes; i++)
		if (votes[i].replica < c->p.n)
			record_checkpoint_vote(st, votes[i].replica, votes[i].view, digest,
					       votes[i].sig);
	st->snap = snap;
	st->snap_len = len;
	c->low = seq;
	c->last_executed = seq;
	c->executed_at_last_retransmit = seq;
	if (c->next_seq < seq)
		c->next_seq = seq;
	if (c->highest_seen < seq)
		c->highest_seen = seq;
	c->progress_at = c->now;
	c->window_changed = true;
	c->stable_changed = announce;
	c->installed = seq;
	c->need_state = false;
	if (c->diverged <= seq)
		c->diverged = 0;
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		for (int k = 0; k < PBFT_CLAIMS; k++)
			if (c->claims[i][k].seq <= seq)
				c->claims[i][k].seq = 0;
	execute_committed(c);
	return 0;
}

/* The stable checkpoint as persistence stores it: the votes on our digest
 * whose signatures verify (normal-case CHECKPOINTs are only MAC-checked, so
 * a faulty peer's bad signature is left out here, as put_checkpoint_proof
 * does for VIEW-CHANGEs; recovery checks the proof again). */
static void stable_proof(struct pbft *c, struct hm_checkpoint *out)
{
	struct checkpoint_rec *st = &c->stable;

	memset(out, 0, sizeof(*out));
	out->seq = st->seq;
	out->view = c->view;
	memcpy(out->digest, st->own, HM_DIGEST_LEN);
	for (uint32_t i = 0; i < c->p.n; i++)
		if ((st->voted >> i & 1) && memcmp(st->digests[i], st->own, HM_DIGEST_LEN) == 0 &&
		    (!c->p.replica_keys ||
		     stored_sig_ok(c, HM_MSG_CHECKPOINT, i, 0, st->views[i], st->seq, st->own,
				   st->sigs[i]))) {
			struct hm_cp_vote *v = &out->votes[out->nvotes++];

			v->replica = i;
			v->view = st->views[i];
			memcpy(v->sig, st->sigs[i], HM_SIG_LEN);
		}
	out->snap = st->snap;
	out->snap_len = st->snap_len;
}

static void claim_record(struct pbft *c, uint32_t sender, uint64_t view, uint64_t seq,
			 const uint8_t *digest, const uint8_t *sig)
{
	struct cp_claim *cl = c->claims[sender], *slot = &cl[0];

	for (int k = 0; k < PBFT_CLAIMS; k++) {
		if (cl[k].seq == seq) {
			slot = &cl[k];
			break;
		}
		if (cl[k].seq < slot->seq)
			slot = &cl[k];
	}
	slot->seq = seq;
	slot->view = view;
	memcpy(slot->digest, digest, HM_DIGEST_LEN);
	memcpy(slot->sig, sig, HM_SIG_LEN);
}

/* The highest checkpoint above what we executed that 2f+1 peers claim with
 * one digest: *voters the claimants, *which their claims. */
static bool claim_certified(const struct pbft *c, uint64_t *seq, uint8_t *digest,
			    uint16_t *voters, const struct cp_claim **which)
{
	bool found = false;

	for (uint32_t i = 0; i < c->p.n; i++)
		for (int k = 0; k < PBFT_CLAIMS; k++) {
			const struct cp_claim *a = &c->claims[i][k];
			uint16_t v = 0;

			if (!a->seq || (a->seq <= c->last_executed && a->seq != c->diverged) ||
			    (found && a->seq <= *seq))
				continue;
			for (uint32_t j = 0; j < c->p.n; j++)
				for (int l = 0; l < PBFT_CLAIMS; l++) {
					const struct cp_claim *b = &c->claims[j][l];

					if (b->seq == a->seq &&
					    memcmp(b->digest, a->digest, HM_DIGEST_LEN) == 0) {
						v |= (uint16_t)(1u << j);
						which[j] = b;
					}
				}
			if ((uint32_t)__builtin_popcount(v) >= 2 * c->p.f + 1) {
				found = true;
				*seq = a->seq;
				*voters = v;
				memcpy(digest, a->digest, HM_DIGEST_LEN);
			}
		}
	if (found) /* refill which[] for the winner */
		for (uint32_t j = 0; j < c->p.n; j++)
			for (int l = 0; l < PBFT_CLAIMS; l++)
				if (c->claims[j][l].seq == *seq &&
				    memcmp(c->claims[j][l].digest, digest, HM_DIGEST_LEN) == 0)
					which[j] = &c->claims[j][l];
	return found;
}

static void st_release(struct pbft *c)
{
	if (c->st_running)
		hm_st_free(&c->st);
	c->st_running = false;
}

static void st_tick(struct pbft *c);

/*
 * Fetch a certified state when the log cannot bring us there: it is beyond
 * our window (peers have collected the slots), or we made no progress for
 * four retransmit rounds, or recovery found our files incomplete.  The 2f+1
 * CHECKPOINT signatures are verified first (they become the stable
 * checkpoint's proof, persisted and carried in our VIEW-CHANGEs).
 */
static void maybe_transfer(struct pbft *c)
{
	const struct cp_claim *which[HM_MAX_REPLICAS] = { 0 };
	uint8_t digest[HM_DIGEST_LEN];
	uint16_t voters = 0;
	uint64_t seq = 0;
	struct hm_st_target t;
	struct hm_st_params prm;
	bool far, stuck;

	if (!c->p.replica_keys || !claim_certified(c, &seq, digest, &voters, which))
		return;
	/* A newer certified checkpoint replaces the one being fetched: the
	 * peers serve only their stable checkpoint, which has moved on. */
	if (c->st_running && seq <= c->st.target.seq)
		return;
	far = seq > c->low + c->p.window;
	stuck = c->now >= c->progress_at + 4ull * c->p.retransmit_ms * 1000;
	if (!far && !stuck && !c->need_state && !(c->diverged && seq == c->diverged))
		return;
	c->st_nvotes = 0;
	for (uint32_t i = 0; i < c->p.n; i++) {
		const struct cp_claim *a = which[i];

		if (!(voters >> i & 1))
			continue;
		if (!stored_sig_ok(c, HM_MSG_CHECKPOINT, i, 0, a->view, seq, digest, a->sig)) {
			proven_faulty(c, i);
			memset(c->claims[i], 0, sizeof(c->claims[i]));
			c->st_nvotes = 0;
			return; /* the others' claims still stand; next round */
		}
		c->st_votes[c->st_nvotes++] =
			(struct hm_cp_vote){ .replica = i, .view = a->view };
		memcpy(c->st_votes[c->st_nvotes - 1].sig, a->sig, HM_SIG_LEN);
	}
	t = (struct hm_st_target){ .seq = seq, .total_len = HM_ST_LEN_UNKNOWN };
	memcpy(t.digest, digest, HM_DIGEST_LEN);
	prm = (struct hm_st_params){
		.peers = voters & ~(1u << c->p.id),
		.timeout_ms = 4 * c->p.retransmit_ms,
	};
	st_release(c);
	if (hm_st_start(&c->st, &t, &prm) < 0)
		return;
	c->st_running = true;
	c->stats.state_transfers_started++;
	st_tick(c);
}

/* Hand out STATE_REQUESTs; install the state once it is complete. */
static void st_tick(struct pbft *c)
{
	struct hm_st_send out[16];
	size_t k;

	do {
		k = hm_st_tick(&c->st, c->now / 1000, out, 16);
		for (size_t i = 0; i < k; i++) {
			uint8_t buf[HM_ST_REQUEST_LEN];
			size_t len = hm_st_request_encode(buf, sizeof(buf), &out[i].req);

			send_msg(c, PBFT_TO_REPLICA, out[i].peer, HM_MSG_STATE_REQUEST, c->view,
				 out[i].req.seq, NULL, buf, (uint32_t)len);
		}
	} while (k == 16);
	if (c->st.state == HM_ST_DONE) {
		uint64_t len;
		uint64_t seq = c->st.target.seq;
		uint8_t digest[HM_DIGEST_LEN];
		uint8_t *snap = hm_st_take(&c->st, &len);

		memcpy(digest, c->st.target.digest, HM_DIGEST_LEN);
		st_release(c);
		if (snap && (seq > c->last_executed || (c->diverged && seq == c->diverged)) &&
		    install_state(c, seq, digest, c->st_votes, c->st_nvotes, snap, len, true) == 0)
			c->stats.state_transfers_done++;
		else
			c->stats.state_transfers_failed++;
	} else if (c->st.state == HM_ST_FAILED) {
		st_release(c);
		c->stats.state_transfers_failed++;
	}
}

/* Serve a chunk of our stable checkpoint's state; at most 64 chunks per
 * peer per retransmit interval (each answer is up to 17 KB). */
static int on_state_request(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	uint8_t *buf;
	struct hm_st_request req;
	size_t len;

	if (hm_st_request_from_msg(m, &req) < 0)
		return refuse(why, HM_DROP_MALFORMED);
	if (c->now >= c->served_at[m->sender] + (uint64_t)c->p.retransmit_ms * 1000) {
		c->served_at[m->sender] = c->now;
		c->served[m->sender] = 0;
	}
	if (c->served[m->sender] >= 64)
		return refuse(why, HM_DROP_RATE_LIMITED);
	if (!c->stable.snap || req.seq != c->stable.seq)
		return refuse(why, HM_DROP_STALE);
	if (!c->srv_ok || c->srv.seq != c->stable.seq) {
		if (c->srv_ok)
			hm_st_server_free(&c->srv);
		c->srv_ok = hm_st_server_init(&c->srv, c->stable.seq, c->stable.snap,
					      c->stable.snap_len) == 0;
		if (!c->srv_ok)
			return refuse(why, HM_DROP_STALE);
	}
	buf = malloc(HM_ST_CHUNK_MAX_PAYLOAD);
	if (!buf)
		abort();
	len = hm_st_serve(&c->srv, &req, buf, HM_ST_CHUNK_MAX_PAYLOAD);
	if (len)
		send_msg(c, PBFT_TO_REPLICA, m->sender, HM_MSG_STATE_CHUNK, c->view, req.seq, NULL,
			 buf, (uint32_t)len);
	free(buf);
	if (!len)
		return refuse(why, HM_DROP_STALE);
	c->served[m->sender]++;
	c->stats.state_chunks_served++;
	return 0;
}

static int on_state_chunk(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	enum hm_st_verdict v;

	if (!c->st_running)
		return refuse(why, HM_DROP_STALE);
	v = hm_st_on_payload(&c->st, m->sender, m->payload, m->payload_len);
	if (v == HM_ST_BAD_CHUNK) {
		/* Its link MAC says it came from m->sender, and no correct
		 * replica serves data that does not hash to the certified
		 * digest: the fetcher never asks it again. */
		c->stats.state_bad_chunks++;
		c->stats.state_blamed |= (uint16_t)(1u << m->sender);
	}
	st_tick(c);
	if (v == HM_ST_BAD_CHUNK)
		return refuse(why, HM_DROP_MALFORMED);
	if (v == HM_ST_STALE || v == HM_ST_FROM_FAULTY || v == HM_ST_NOT_RUNNING)
		return refuse(why, HM_DROP_STALE);
	if (v == HM_ST_DUPLICATE)
		return refuse(why, HM_DROP_DUPLICATE);
	return 0;
}

bool pbft_transferring(const struct pbft *c) { return c->st_running; }
uint64_t pbft_silent_until(const struct pbft *c) { return c->silent_until; }

uint64_t pbft_recover(struct pbft *c, const struct hm_checkpoint *cp,
		      const struct hm_log_record *records, size_t n, bool complete,
		      bool restarted, uint64_t seq_hint, bool *incomplete)
{
	uint8_t d[HM_DIGEST_LEN];

	*incomplete = !complete;
	if (cp) {
		uint8_t *snap = malloc(cp->snap_len ? cp->snap_len : 1);

		if (!snap)
			abort();
		memcpy(snap, cp->snap, cp->snap_len);
		if (hm_st_state_digest(cp->snap, cp->snap_len, d) < 0 ||
		    memcmp(d, cp->digest, HM_DIGEST_LEN) != 0 ||
		    (c->p.replica_keys &&
		     !hm_checkpoint_proof_ok(cp, c->p.replica_keys, c->p.n, 2 * c->p.f + 1)) ||
		    install_state(c, cp->seq, cp->digest, cp->votes, cp->nvotes, snap,
				  cp->snap_len, false) < 0) {
			*incomplete = true;
			n = 0; /* the records continue the checkpoint: useless alone */
		}
		if (cp->view > c->view)
			c->view = cp->view;
	}
	/* Re-execute the committed log through the normal path: replies land
	 * in the reply cache (clients retransmit), checkpoints are taken. */
	for (size_t i = 0; i < n; i++) {
		const struct hm_log_record *r = &records[i];
		struct log_entry *e;

		hm_digest(r->batch, r->batch_len, d);
		if (r->seq != c->last_executed + 1 || !in_window(c, r->seq) ||
		    memcmp(d, r->digest, HM_DIGEST_LEN) != 0 ||
		    hm_batch_validate(r->batch, r->batch_len, c->p.max_message_size) < 0) {
			*incomplete = true;
			break;
		}
		if (r->view > c->view)
			c->view = r->view;
		e = entry_claim(c, r->seq);
		free(e->batch);
		e->batch = malloc(r->batch_len ? r->batch_len : 1);
		if (!e->batch)
			abort();
		memcpy(e->batch, r->batch, r->batch_len);
		e->batch_len = r->batch_len;
		e->view = r->view;
		memcpy(e->digest, r->digest, HM_DIGEST_LEN);
		e->has_pp = e->prepared = e->commit_quorum = e->committed = true;
		execute_committed(c);
	}
	c->vc_target = c->view;
	c->need_state = *incomplete;
	/* Before the crash we voted at most up to our window then, whose low
	 * end was at most the newest checkpoint we persisted (one is persisted
	 * before any message of the Ready that made it stable). */
	if (restarted) {
		c->silent_until = ((cp && cp->seq > seq_hint) ? cp->seq : seq_hint) + c->p.window;
		c->restarted = true;
		c->mute_view = c->view;
		/* Ask how far the group got: a quiet group would not tell us,
		 * and the answers (CHECKPOINTs, committed slots) start the
		 * catch-up; one more STATUS follows if nothing executes. */
		send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_STATUS, 0, c->view, c->last_executed,
			     (const uint8_t[HM_DIGEST_LEN]){ 0 }, NULL, 0);
		c->far_seen = true;
	}
	if (c->next_seq < c->last_executed)
		c->next_seq = c->last_executed;
	c->window_changed = true;
	return c->last_executed;
}


/* ---- the driver's interface ------------------------------------------- */

/* Another replica than us. */
static bool from_peer(const struct pbft *c, const struct hm_msg *m)
{
	return m->sender < c->p.n && m->sender != c->p.id;
}

static int not_a_peer(enum hm_drop_reason *why)
{
	return refuse(why, HM_DROP_UNKNOWN_SENDER);
}

int pbft_receive(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	switch (m->type) {
	case HM_MSG_REQUEST:
		return on_request(c, m, why);
	case HM_MSG_PRE_PREPARE:
		return on_pre_prepare(c, m, why);
	case HM_MSG_CHECKPOINT:
		return m->sender < c->p.n ? on_checkpoint(c, m, why) : not_a_peer(why);
	case HM_MSG_STATUS:
		return from_peer(c, m) ? on_status(c, m, why) : not_a_peer(why);
	case HM_MSG_VIEW_CHANGE:
		return from_peer(c, m) ? on_view_change(c, m, why) : not_a_peer(why);
	case HM_MSG_NEW_VIEW:
		return from_peer(c, m) ? on_new_view(c, m, why) : not_a_peer(why);
	case HM_MSG_STATE_REQUEST:
		return from_peer(c, m) ? on_state_request(c, m, why) : not_a_peer(why);
	case HM_MSG_STATE_CHUNK:
		return from_peer(c, m) ? on_state_chunk(c, m, why) : not_a_peer(why);
	default:
		return refuse(why, HM_DROP_MALFORMED);
	}
}

void pbft_tick(struct pbft *c, uint64_t now_us)
{
	if (now_us > c->now)
		c->now = now_us;
	if (c->next_retransmit && c->now >= c->next_retransmit)
		retransmit(c);
	vc_timers(c);
	if (c->st_running)
		st_tick(c);
	recheck_certs(c);
	maybe_propose(c);
}

/* The batch timer and the retransmission timer.  When the pipeline or the
 * window is full, an execution or a checkpoint (not a timer) makes room. */
uint64_t pbft_next_deadline(const struct pbft *c)
{
	uint64_t t = vc_deadline(c);

	if (can_propose(c))
		t = earliest(t, c->queue[c->q_head].queued_at + (uint64_t)c->p.batch_timeout_ms * 1000);
	if (c->st_running && hm_st_next_deadline(&c->st) != UINT64_MAX)
		t = earliest(t, hm_st_next_deadline(&c->st) * 1000 + 1000);
	return earliest(t, c->next_retransmit);
}

bool pbft_has_ready(const struct pbft *c)
{
	return c->n_msgs || c->n_votes || c->n_exec || c->window_changed || c->stable_changed ||
	       c->installed;
}

void pbft_ready(struct pbft *c, struct pbft_ready *rd)
{
	rd->msgs = c->msgs;
	rd->n_msgs = c->n_msgs;
	rd->votes = c->votes;
	rd->n_votes = c->n_votes;
	rd->executed = c->exec;
	rd->n_executed = c->n_exec;
	rd->window_changed = c->window_changed;
	/* In a view change the pre-filter already takes the new view's
	 * messages (votes are kept for later) and drops the old view's. */
	rd->view = c->in_vc ? c->vc_target : c->view;
	rd->low = c->low;
	rd->high = c->low + c->p.window;
	rd->stable_changed = c->stable_changed && c->stable.snap;
	rd->installed = c->installed;
	if (rd->stable_changed)
		stable_proof(c, &rd->stable);
}

void pbft_advance(struct pbft *c)
{
	for (size_t i = 0; i < c->n_msgs; i++)
		free(c->msgs[i].buf);
	c->n_msgs = 0;
	c->n_votes = 0;
	for (size_t i = 0; i < c->n_exec; i++)
		free(c->exec_batches[i]);
	c->n_exec = 0;
	c->window_changed = false;
	c->stable_changed = false;
	c->installed = 0;
}

uint64_t pbft_view(const struct pbft *c) { return c->view; }
uint64_t pbft_last_executed(const struct pbft *c) { return c->last_executed; }
uint64_t pbft_low_watermark(const struct pbft *c) { return c->low; }
const struct pbft_stats *pbft_stats(const struct pbft *c) { return &c->stats; }

void pbft_state_digest(const struct pbft *c, uint8_t out[HM_DIGEST_LEN])
{
	c->p.service->ops->digest(c->p.service->state, out);
}

bool pbft_committed_digest(const struct pbft *c, uint64_t seq, uint8_t out[HM_DIGEST_LEN])
{
	const struct log_entry *e = &c->log[seq % c->log_size];

	if (e->seq != seq || !e->committed)
		return false;
	memcpy(out, e->digest, HM_DIGEST_LEN);
	return true;
}
