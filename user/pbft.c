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

struct client_rec {
	uint32_t id;
	uint64_t last_ts;   /* timestamp of the last executed request */
	uint64_t queued_ts; /* primary: newest timestamp queued or proposed */
	bool in_queue;      /* primary: a request waits in the batch queue */
	uint8_t *reply;     /* last reply, re-sent on a retransmission */
	size_t reply_len;
	UT_hash_handle hh;
};

struct pending_req {
	uint8_t *buf;       /* the request message, MAC zeroed */
	size_t len;
	uint64_t queued_at;
};

struct log_entry {
	uint64_t seq, view;
	bool has_pp, prepared, commit_quorum, committed;
	uint8_t digest[HM_DIGEST_LEN];
	uint8_t pp_sig[HM_SIG_LEN]; /* the primary's, for prepared certificates */
	uint16_t helped;    /* peers sent this slot since helped_at */
	uint64_t helped_at;
	uint8_t *batch;     /* the PRE-PREPARE's payload */
	uint32_t batch_len;
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

/* ---- creation --------------------------------------------------------- */

struct pbft *pbft_new(const struct pbft_params *p)
{
	struct pbft *c;

	if (p->n < 3 * p->f + 1 || p->n > HM_MAX_REPLICAS || p->id >= p->n || p->window == 0 ||
	    p->checkpoint_interval == 0 || p->checkpoint_interval > p->window ||
	    p->window / p->checkpoint_interval + 1 > HM_MAX_LIVE_CHECKPOINTS ||
	    p->batch_size == 0 || p->pipeline_depth == 0 || p->retransmit_ms == 0 || !p->keys ||
	    !p->service)
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
		free(r);
	}
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
	size_t room = c->p.max_message_size - HM_HDR_LEN, len = 4;
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

static void propose_batch(struct pbft *c)
{
	uint64_t seq = ++c->next_seq;
	struct log_entry *e = entry_claim(c, seq);
	struct hm_hdr *h;

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

static bool can_propose(const struct pbft *c)
{
	return is_primary(c) && queued(c) > 0 &&
	       c->next_seq - c->last_executed < c->p.pipeline_depth &&
	       in_proposal_window(c, c->next_seq + 1);
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
	/* A backup keeps no copy: the request reaches it again inside the
	 * primary's PRE-PREPARE.  (A backup's view-change timer will start
	 * here once view changes exist.) */
	if (!is_primary(c)) {
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
	 * every later one. */
	if (HM_HDR_LEN + 8 + m->len > c->p.max_message_size)
		return refuse(why, HM_DROP_OVERSIZE);
	if (!hm_verify_header(m->hdr, pk)) {
		c->stats.bad_client_signatures++;
		return refuse(why, HM_DROP_BAD_SIGNATURE);
	}
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
	}
	return 0;
}

static int on_pre_prepare(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct log_entry *e;
	struct hm_hdr *h;

	if (m->sender != pbft_primary(c, m->view) || m->sender == c->p.id)
		return refuse(why, HM_DROP_MALFORMED);
	if (m->view != c->view)
		return refuse(why, HM_DROP_BAD_VIEW);
	if (!in_window(c, m->seq))
		return refuse(why, HM_DROP_OUT_OF_WINDOW);
	e = entry_at(c, m->seq);
	if (e->seq == m->seq && e->has_pp && e->view == m->view) {
		if (memcmp(e->digest, m->digest, HM_DIGEST_LEN) == 0)
			return refuse(why, HM_DROP_DUPLICATE);
		c->stats.equivocations++;
		return refuse(why, HM_DROP_EQUIVOCATION);
	}
	if (check_batch(c, m->payload, m->payload_len, why) < 0)
		return -1;

	e = entry_claim(c, m->seq);
	e->batch = malloc(m->payload_len);
	if (!e->batch)
		abort();
	memcpy(e->batch, m->payload, m->payload_len);
	e->batch_len = m->payload_len;
	e->view = m->view;
	e->has_pp = true;
	memcpy(e->digest, m->digest, HM_DIGEST_LEN);
	memcpy(e->pp_sig, m->hdr->sig, HM_SIG_LEN);

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
	GROW(c->exec, c->n_exec, c->cap_exec);
	c->exec[c->n_exec++] = rec;
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

	c->stable = *cp;
	for (uint32_t i = 0; i < c->log_size; i++) {
		struct log_entry *e = &c->log[i];

		if (e->seq && e->seq + c->p.checkpoint_interval <= seq) {
			free(e->batch);
			memset(e, 0, sizeof(*e));
		}
	}
	for (int i = 0; i < HM_MAX_LIVE_CHECKPOINTS; i++)
		if (c->cps[i].seq <= seq)
			c->cps[i].seq = 0;
	c->low = seq;
	c->window_changed = true;
	c->stats.checkpoints_stable++;
}

/* Stable once 2f+1 replicas (us included) signed our own state digest. A
 * quorum on another digest means this replica diverged; it is counted and
 * the checkpoint is not taken (state transfer repairs it). */
static void check_stable(struct pbft *c, struct checkpoint_rec *cp)
{
	uint32_t agree = 0;

	if (!cp->own_known || cp->seq <= c->low)
		return;
	for (uint32_t i = 0; i < c->p.n; i++)
		if ((cp->voted >> i & 1) && memcmp(cp->digests[i], cp->own, HM_DIGEST_LEN) == 0)
			agree++;
	if (agree >= 2 * c->p.f + 1) {
		make_stable(c, cp);
		maybe_propose(c);
	} else if (__builtin_popcount(cp->voted) - agree >= 2 * c->p.f + 1) {
		c->stats.checkpoint_mismatches++;
	}
}

static void record_checkpoint_vote(struct checkpoint_rec *cp, uint32_t voter,
				   const uint8_t *digest, const uint8_t *sig)
{
	cp->voted |= (uint16_t)(1u << voter);
	memcpy(cp->digests[voter], digest, HM_DIGEST_LEN);
	memcpy(cp->sigs[voter], sig, HM_SIG_LEN);
}

static void take_checkpoint(struct pbft *c, uint64_t seq)
{
	struct checkpoint_rec *cp = checkpoint_get(c, seq, true);
	uint8_t digest[HM_DIGEST_LEN];
	struct hm_hdr *h;

	c->p.service->ops->digest(c->p.service->state, digest);
	h = send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_CHECKPOINT, c->view, seq, digest, NULL, 0);
	if (!cp)
		return;
	cp->own_known = true;
	memcpy(cp->own, digest, HM_DIGEST_LEN);
	record_checkpoint_vote(cp, c->p.id, digest, h->sig);
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
	/* The last of n checkpoints usually arrives after 2f+1 made it
	 * stable: that is expected, not a drop. */
	if (m->seq == c->low)
		return 0;
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
	record_checkpoint_vote(cp, m->sender, m->digest, m->hdr->sig);
	check_stable(c, cp);
	return 0;
}

/* ---- quorum events ---------------------------------------------------- */

static void on_prepared(struct pbft *c, struct log_entry *e)
{
	struct hm_hdr *h;

	e->prepared = true;
	h = send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_COMMIT, e->view, e->seq, e->digest, NULL, 0);
	vote_policy(c, HM_PHASE_COMMIT, e->view, e->seq, e->digest, h->sig);
}

void pbft_on_vote_event(struct pbft *c, const struct hm_vote_event *ev)
{
	struct log_entry *e = entry_at(c, ev->seq);

	if (ev->kind == HM_EV_EQUIVOCATION) {
		c->stats.equivocations++;
		return;
	}
	if (ev->kind != HM_EV_QUORUM || e->seq != ev->seq || !e->has_pp || e->view != ev->view ||
	    memcmp(e->digest, ev->digest, HM_DIGEST_LEN) != 0)
		return;
	if (ev->phase == HM_PHASE_PREPARE && !e->prepared)
		on_prepared(c, e);
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

	for (uint32_t i = 0; i < c->log_size; i++) {
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
	if (c->highest_seen > c->last_executed &&
	    c->last_executed == c->executed_at_last_retransmit) {
		send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_STATUS, 0, c->view, c->last_executed,
			     (const uint8_t[HM_DIGEST_LEN]){ 0 }, NULL, 0);
		pending = true;
	}
	pending |= c->highest_seen > c->last_executed;
	c->executed_at_last_retransmit = c->last_executed;
	c->next_retransmit = pending ? c->now + (uint64_t)c->p.retransmit_ms * 1000 : 0;
}

void pbft_observe_seq(struct pbft *c, uint64_t seq)
{
	if (seq <= c->highest_seen || seq > c->low + 2 * (uint64_t)c->p.window)
		return; /* nothing new, or too far to be a peer's honest claim */
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

	if (m->sender >= c->p.n || m->sender == c->p.id)
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

/* ---- the driver's interface ------------------------------------------- */

int pbft_receive(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	switch (m->type) {
	case HM_MSG_REQUEST:
		return on_request(c, m, why);
	case HM_MSG_PRE_PREPARE:
		return on_pre_prepare(c, m, why);
	case HM_MSG_CHECKPOINT:
		if (m->sender >= c->p.n)
			return refuse(why, HM_DROP_UNKNOWN_SENDER);
		return on_checkpoint(c, m, why);
	case HM_MSG_STATUS:
		if (m->sender >= c->p.n || m->sender == c->p.id)
			return refuse(why, HM_DROP_UNKNOWN_SENDER);
		return on_status(c, m, why);
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
	maybe_propose(c);
}

/* The batch timer and the retransmission timer.  When the pipeline or the
 * window is full, an execution or a checkpoint (not a timer) makes room. */
uint64_t pbft_next_deadline(const struct pbft *c)
{
	uint64_t batch = 0;

	if (can_propose(c))
		batch = c->queue[c->q_head].queued_at + (uint64_t)c->p.batch_timeout_ms * 1000;
	if (!c->next_retransmit)
		return batch;
	return batch && batch < c->next_retransmit ? batch : c->next_retransmit;
}

bool pbft_has_ready(const struct pbft *c)
{
	return c->n_msgs || c->n_votes || c->n_exec || c->window_changed;
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
	rd->view = c->view;
	rd->low = c->low;
	rd->high = c->low + c->p.window;
}

void pbft_advance(struct pbft *c)
{
	for (size_t i = 0; i < c->n_msgs; i++)
		free(c->msgs[i].buf);
	c->n_msgs = 0;
	c->n_votes = 0;
	c->n_exec = 0;
	c->window_changed = false;
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
