// SPDX-License-Identifier: MIT
/*
 * The PBFT normal case (Castro and Liskov, OSDI'99 / TOCS'02): requests,
 * batching into PRE-PREPAREs, PREPARE and COMMIT quorums, execution in
 * sequence order, replies with a per-client cache, checkpoints that move
 * the watermark window, retransmission, and the driver's interface.  View
 * changes are in pbft_view.c, state transfer and recovery in pbft_state.c
 * (pbft_internal.h lists what each part offers the others).  See pbft.h
 * for how a driver uses the core.
 */
#include "core/pbft_internal.h"

/* ---- helpers ---------------------------------------------------------- */

uint32_t pbft_primary(const struct pbft *c, uint64_t view)
{
	return (uint32_t)(view % c->p.n);
}

bool pbft_is_primary(const struct pbft *c)
{
	return pbft_primary(c, c->view) == c->p.id;
}

bool pbft_in_window(const struct pbft *c, uint64_t seq)
{
	return seq > c->low && seq <= c->low + c->p.window;
}

struct log_entry *pbft_entry_at(struct pbft *c, uint64_t seq)
{
	return &c->log[seq % c->log_size];
}

/* The entry for seq in the current window, claiming its slot if it holds
 * an older sequence number. */
struct log_entry *pbft_entry_claim(struct pbft *c, uint64_t seq)
{
	struct log_entry *e = pbft_entry_at(c, seq);

	if (e->seq != seq) {
		free(e->batch);
		memset(e, 0, sizeof(*e));
		e->seq = seq;
	}
	return e;
}

/* The slot's batch becomes a copy of batch (len bytes, digest its digest). */
void pbft_entry_set_batch(struct log_entry *e, const uint8_t *batch, uint32_t len,
			  const uint8_t digest[HM_DIGEST_LEN])
{
	/* What we sent for the slot named the old digest: once the slot holds
	 * another (the group committed it while we had voted for what an
	 * equivocating primary sent us), a re-send in e->view would be a
	 * second, different vote of ours (resend_slot). */
	if (memcmp(e->digest, digest, HM_DIGEST_LEN) != 0)
		e->own_pp = e->own_commit = false;
	free(e->batch);
	e->batch = malloc(len ? len : 1);
	if (!e->batch)
		abort();
	memcpy(e->batch, batch, len);
	e->batch_len = len;
	memcpy(e->digest, digest, HM_DIGEST_LEN);
}

struct client_rec *pbft_client_get(struct pbft *c, uint32_t id)
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

void pbft_emit(struct pbft *c, enum pbft_dest dest, uint32_t to, uint8_t *buf, size_t len)
{
	GROW(c->msgs, c->n_msgs, c->cap_msgs);
	c->msgs[c->n_msgs++] = (struct pbft_out){ .dest = dest, .to = to, .buf = buf, .len = len };
}

/* Build, sign and queue a message; returns its header (owned by the Ready). */
struct hm_hdr *pbft_send_flagged(struct pbft *c, enum pbft_dest dest, uint32_t to,
				   uint8_t type, uint16_t flags, uint64_t view, uint64_t seq,
				   const uint8_t *digest, const void *payload, uint32_t plen)
{
	size_t cap = (size_t)HM_HDR_LEN + plen, len;
	uint8_t *buf = malloc(cap);

	if (!buf)
		abort();
	len = hm_msg_build_flags(buf, cap, type, flags, c->p.id, view, seq, digest, payload, plen,
				 c->p.keys);
	pbft_emit(c, dest, to, buf, len);
	if (!c->next_retransmit)
		c->next_retransmit = c->now + (uint64_t)c->p.retransmit_ms * 1000;
	return (struct hm_hdr *)buf;
}

struct hm_hdr *pbft_send_unsigned(struct pbft *c, enum pbft_dest dest, uint32_t to, uint8_t type,
				  uint64_t view, uint64_t seq, const void *payload, uint32_t plen)
{
	size_t cap = (size_t)HM_HDR_LEN + plen, len;
	uint8_t *buf = malloc(cap);

	if (!buf)
		abort();
	len = hm_msg_build(buf, cap, type, c->p.id, view, seq, NULL, payload, plen, NULL);
	pbft_emit(c, dest, to, buf, len);
	return (struct hm_hdr *)buf;
}

struct hm_hdr *pbft_send_msg(struct pbft *c, enum pbft_dest dest, uint32_t to, uint8_t type,
			       uint64_t view, uint64_t seq, const uint8_t *digest,
			       const void *payload, uint32_t plen)
{
	return pbft_send_flagged(c, dest, to, type, 0, view, seq, digest, payload, plen);
}

void pbft_emit_vote_policy(struct pbft *c, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
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
	v->fast = phase == HM_PHASE_PREPARE && pbft_fast_path_active(c);
	if (own_sig) {
		v->own_vote = true;
		memcpy(v->sig, own_sig, HM_SIG_LEN);
	}
}

int pbft_refuse(enum hm_drop_reason *why, enum hm_drop_reason reason)
{
	*why = reason;
	return -1;
}

/* The view-change part (below the normal case). */

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
	    !p->service || (p->view_change_timeout_ms && !pbft_vc_fits(p)))
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
		free(r->proof);
		free(r->pending);
		free(r->vouch);
		free(r);
	}
	pbft_auth_free(c);
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		for (unsigned k = 0; k < PBFT_VC_RING; k++)
			pbft_vc_rec_clear(&c->vcs[i][k]);
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		pbft_vc_rec_clear(&c->vc_alt[i]);
	pbft_memo_clear(c);
	pbft_early_clear(c);
	free(c->nv_pending);
	free(c->nv_sent);
	free(c->pend);
	for (int i = 0; i < HM_MAX_LIVE_CHECKPOINTS; i++)
		free(c->cps[i].snap);
	free(c->stable.snap);
	pbft_st_release(c);
	if (c->srv_ok)
		hm_st_server_free(&c->srv);
	free(c->exec_batches);
	for (size_t i = c->q_head; i < c->q_len; i++)
		free(c->queue[i].buf);
	free(c->queue);
	free(c->msgs);
	free(c->votes);
	free(c->exec);
	free(c->dur);
	free(c);
}

/* ---- proposing (primary) ---------------------------------------------- */

size_t pbft_queued(const struct pbft *c)
{
	return c->q_len - c->q_head;
}

void pbft_queue_push(struct pbft *c, const struct hm_msg *m)
{
	struct pending_req *r;

	if (c->q_head > 0 && c->q_len == c->q_cap) {
		memmove(c->queue, c->queue + c->q_head, pbft_queued(c) * sizeof(*c->queue));
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
	while (count < c->p.batch_size && count < pbft_queued(c) &&
	       len + 4 + c->queue[c->q_head + count].len <= room)
		len += 4 + c->queue[c->q_head + count++].len;
	payload = malloc(len);
	if (!payload)
		abort();
	hm_put_be32(payload, count);
	len = 4;
	for (uint32_t i = 0; i < count; i++) {
		struct pending_req *r = &c->queue[c->q_head++];

		pbft_client_get(c, hm_get_be32(r->buf + HM_OFF_SENDER))->in_queue = false;
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

/* The silent rule, only after a restart whose vote log was lost or corrupt:
 * the replica may have voted on any seq up to silent_until before it
 * crashed and does not know how; voting again there could contradict a vote
 * it forgot, so it only listens.  With an intact vote log silent_until is 0:
 * it restored what it sent and never contradicts it. */
bool pbft_silent(const struct pbft *c, uint64_t seq)
{
	return seq <= c->silent_until;
}

/*
 * The primary that proposes.  A replica restarted as the primary of the
 * view it recovered does not lead that view; it waits, with a backup's
 * view-change timer, for a later view.  Under the silent rule (a restart
 * without an intact vote log) that is for safety: it may have proposed there
 * before the crash, and its files do not say what.  With an intact vote log
 * it is for liveness only (mute_lead): the group has usually replaced its
 * primary while it was down, and a primary runs no request timer, so as the
 * old primary it would wait in a view nobody else is in (found by
 * restart_from_disk_mid_run).  Proposing less is always safe, and one
 * replica is the primary of one view only, so the rule is not circular as
 * the silent rule is.
 */
bool pbft_acting_primary(const struct pbft *c)
{
	return pbft_is_primary(c) &&
	       !((c->restarted || c->mute_lead) && c->view <= c->mute_view);
}

/* A slot a primary must not propose into: one it already holds committed
 * (learnt by catch-up, possibly from a view it has not installed), or one a
 * newer view's PRE-PREPARE holds.  Proposing there would swap the batch of
 * a committed slot for another: two values at one seq. */
static bool slot_taken(struct pbft *c, uint64_t seq)
{
	const struct log_entry *e = pbft_entry_at(c, seq);

	return e->seq == seq && (e->committed || (e->has_pp && e->view > c->view));
}

static void propose_batch(struct pbft *c)
{
	uint64_t seq = c->next_seq + 1;
	struct log_entry *e;

	if (seq <= c->last_executed)
		seq = c->last_executed + 1;
	while (in_proposal_window(c, seq) && slot_taken(c, seq))
		seq++;
	c->next_seq = seq;
	if (!in_proposal_window(c, seq)) {
		c->next_seq = seq - 1;
		return;
	}
	e = pbft_entry_claim(c, seq);

	free(e->batch); /* an old view's batch at this seq, left out of O */
	e->batch = batch_take(c, &e->batch_len);
	pbft_send_own_pre_prepare(c, e);
	c->stats.batches_proposed++;
}

/* As primary, propose e's batch at e->seq in the current view: our
 * PRE-PREPARE is also our vote, durable in the vote log before it leaves,
 * and the vote counter learns the digest the slot's votes must match. */
void pbft_send_own_pre_prepare(struct pbft *c, struct log_entry *e)
{
	struct hm_hdr *h;

	e->view = c->view;
	e->has_pp = true;
	h = pbft_send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_PRE_PREPARE, c->view, e->seq, NULL,
			  e->batch, e->batch_len);
	memcpy(e->digest, h->digest, HM_DIGEST_LEN);
	memcpy(e->pp_sig, h->sig, HM_SIG_LEN);
	e->own_pp = true;
	e->own_commit = false;
	pbft_note_vote(e);
	e->pp_at = c->now;
	pbft_dur_pre_prepare(c, (const uint8_t *)h, HM_HDR_LEN + e->batch_len);
	pbft_emit_vote_policy(c, HM_PHASE_PREPARE, c->view, e->seq, e->digest, NULL);
	pbft_emit_vote_policy(c, HM_PHASE_COMMIT, c->view, e->seq, e->digest, NULL);
}

static bool can_propose(const struct pbft *c)
{
	uint64_t next = c->next_seq > c->last_executed ? c->next_seq : c->last_executed;

	/* An old view's primary that f+1 replicas left proposes no more. */
	return pbft_acting_primary(c) && !c->in_vc && pbft_queued(c) > 0 && !pbft_silent(c, next + 1) &&
	       !pbft_views_behind(c) &&
	       next - c->last_executed < c->p.pipeline_depth && in_proposal_window(c, next + 1);
}

/* A batch goes out at once when nothing is in flight or it is full, else
 * when its oldest request waited batch_timeout_ms.  An idle pipeline gains
 * nothing from waiting; under load requests pile up into fuller batches
 * while the batch in flight is agreed on, and full batches (or, with slow
 * links, timed-out ones) still pipeline.  Every batch costs each replica
 * signatures, a certificate check and a disk flush whatever its size: the
 * rule it replaces (at once while under half of the pipeline was busy)
 * made 4.4 requests per batch at 32 clients and a third less throughput
 * (README, Benchmarks). */
static bool batch_due(const struct pbft *c)
{
	uint64_t in_flight = c->next_seq - c->last_executed;

	return pbft_queued(c) >= c->p.batch_size || in_flight == 0 ||
	       c->now >= c->queue[c->q_head].queued_at + (uint64_t)c->p.batch_timeout_ms * 1000;
}

/* Propose while there are requests, room in the pipeline and in the window. */
void pbft_maybe_propose(struct pbft *c)
{
	while (can_propose(c) && batch_due(c))
		propose_batch(c);
}

/* ---- requests --------------------------------------------------------- */

/* Queue a REPLY: unsigned (the header's sig field zero), MAC'd per link by
 * the driver; a result's authenticity for third parties is its batch proof
 * inside the payload (reply_proof.h). */
static void send_reply(struct pbft *c, uint32_t client, uint64_t ts, const void *payload,
		       size_t plen)
{
	size_t cap = (size_t)HM_HDR_LEN + plen;
	uint8_t *buf = malloc(cap);

	if (!buf)
		abort();
	hm_msg_build(buf, cap, HM_MSG_REPLY, c->p.id, c->view, ts, NULL, payload, (uint32_t)plen,
		     NULL);
	pbft_emit(c, PBFT_TO_CLIENT, client, buf, cap);
	if (!c->next_retransmit)
		c->next_retransmit = c->now + (uint64_t)c->p.retransmit_ms * 1000;
}

/* The reply body a cached reply holds (after its unsent header). */
static const uint8_t *reply_body(const struct client_rec *r, size_t *len)
{
	*len = r->reply_len - HM_HDR_LEN;
	return r->reply + HM_HDR_LEN;
}

/* The proof kept for the cached reply, if it still proves that reply (a
 * reply restored from a checkpoint may have replaced the one it was for). */
static const uint8_t *cached_proof(const struct client_rec *r, size_t *len)
{
	hm_merkle_hash leaf;
	const uint8_t *body;
	size_t blen;

	if (!r->proof)
		return NULL;
	body = reply_body(r, &blen);
	hm_reply_leaf(r->last_ts, body, blen, leaf);
	if (memcmp(leaf, r->proof_leaf, HM_DIGEST_LEN) != 0)
		return NULL;
	*len = r->proof_len;
	return r->proof;
}

/* A retransmitted request whose reply we hold: the same body and the same
 * batch proof (its signature made once, at execution), no new signing. */
static void resend_reply(struct pbft *c, struct client_rec *r)
{
	static const uint8_t none[HM_RP_NONE_LEN];
	const uint8_t *body, *proof;
	size_t blen, prlen = HM_RP_NONE_LEN;
	uint8_t *payload;

	body = reply_body(r, &blen);
	proof = cached_proof(r, &prlen);
	if (!proof) {
		proof = none;
		prlen = HM_RP_NONE_LEN;
	}
	payload = malloc(prlen + blen);
	if (!payload)
		abort();
	memcpy(payload, proof, prlen);
	memcpy(payload + prlen, body, blen);
	send_reply(c, r->id, r->last_ts, payload, prlen + blen);
	free(payload);
	c->stats.replies_resent++;
}

/* The digest of the request our cached reply answers (NULL: none held). */
static const uint8_t *reply_req_digest(const struct client_rec *r)
{
	return r->reply && r->reply_len >= HM_HDR_LEN + HM_REPLY_PREFIX_LEN
		       ? r->reply + HM_HDR_LEN + 12
		       : NULL;
}

/* A refusal of a request at a timestamp already used: it names the request
 * (its digest), executes nothing, and is the same at every correct replica
 * that executed past the timestamp, so that the client gets f+1 matching
 * ones instead of waiting out its timeout.  MAC-only, never signed: it
 * certifies nothing, and a signature per refusal would let any client make
 * every replica sign on demand (docs/protocol.md). */
static void refuse_request(struct pbft *c, const struct hm_msg *m, uint8_t status)
{
	uint8_t payload[HM_RP_NONE_LEN + HM_REPLY_PREFIX_LEN];
	size_t plen = hm_reply_payload(payload, sizeof(payload), m->sender, 0, m->digest, status,
				       NULL, 0);

	send_reply(c, m->sender, m->seq, payload, plen);
	c->stats.refusals_sent++;
}

/* The service's own say on whether this replica votes for an op (the
 * optional check() of service.h: DNS and CT refuse an agreed time too far
 * from the local clock, say). */
bool pbft_service_accepts(struct pbft *c, const struct hm_msg *req)
{
	const struct hm_service *svc = c->p.service;
	struct hm_exec_ctx ctx = { .seq = 0, .client = req->sender, .timestamp = req->seq };

	if (!svc->ops->check || svc->ops->check(svc->state, &ctx, req->payload, req->payload_len))
		return true;
	c->stats.service_refused++;
	return false;
}

int pbft_on_request(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	const uint8_t *pk = c->p.client_key(c->p.client_key_ctx, m->sender);
	struct client_rec *r;

	if (!pk)
		return pbft_refuse(why, HM_DROP_UNKNOWN_SENDER);
	r = pbft_client_get(c, m->sender);
	if (m->seq < r->last_ts) {
		/* We no longer know what executed at this timestamp: say so,
		 * bound to this request, rather than leave the client to time
		 * out.  The link MAC already proved who asks. */
		refuse_request(c, m, HM_REPLY_STALE);
		c->stats.stale_requests++;
		return pbft_refuse(why, HM_DROP_STALE);
	}
	if (m->seq == r->last_ts) {
		const uint8_t *d = reply_req_digest(r);

		/* A retransmission of the request we executed last: the client
		 * lost our reply.  Only that very request gets it: a different
		 * request at the same timestamp (another process under the same
		 * client identity, say) would otherwise take someone else's
		 * result; it is refused instead. */
		if (d && memcmp(d, m->digest, HM_DIGEST_LEN) == 0) {
			resend_reply(c, r);
			pbft_vouch_executed(c, r, m);
		} else {
			if (d)
				c->stats.conflicting_requests++;
			refuse_request(c, m, d ? HM_REPLY_CONFLICT : HM_REPLY_STALE);
		}
		return 0;
	}
	if (!c->p.signed_requests)
		return pbft_auth_direct(c, r, m, why);
	if (pbft_vouch_direct(c, r, m, why) < 0)
		return -1;
	/* Every replica remembers the request as pending: a backup's
	 * view-change timer runs on it, and a backup that becomes primary
	 * proposes it. */
	pbft_track_pending(c, r, m);
	if (!pbft_acting_primary(c) || c->in_vc) {
		pbft_observe_seq(c, c->last_executed + 1);
		return 0;
	}
	if (m->seq <= r->queued_ts)
		return pbft_refuse(why, HM_DROP_DUPLICATE);
	if (!hm_verify_header(m->hdr, pk)) {
		c->stats.bad_client_signatures++;
		return pbft_refuse(why, HM_DROP_BAD_SIGNATURE);
	}
	return pbft_propose_request(c, r, m, why);
}

/* It must fit alone in a PRE-PREPARE (count and length words around it),
 * or no backup could accept the batch and the slot would block every later
 * one; with room for the NEW-VIEW BATCH wrapping, so that a new primary can
 * fetch it after a view change. */
bool pbft_request_fits(const struct pbft *c, const struct hm_msg *m)
{
	return HM_HDR_LEN + HM_NV_BATCH_OVERHEAD + 8 + m->len <= c->p.max_message_size;
}

int pbft_propose_request(struct pbft *c, struct client_rec *r, const struct hm_msg *m,
			 enum hm_drop_reason *why)
{
	if (m->seq <= r->queued_ts)
		return pbft_refuse(why, HM_DROP_DUPLICATE);
	/* One waiting request per client (PBFT's clients have one outstanding
	 * request): a client sending faster cannot fill our memory or starve
	 * the others; its newer request is taken once the queued one is
	 * proposed (the client retransmits). */
	if (r->in_queue)
		return pbft_refuse(why, HM_DROP_RATE_LIMITED);
	if (!pbft_request_fits(c, m))
		return pbft_refuse(why, HM_DROP_OVERSIZE);
	if (!pbft_service_accepts(c, m))
		return pbft_refuse(why, HM_DROP_MALFORMED);
	r->queued_ts = m->seq;
	r->in_queue = true;
	c->stats.requests_received++;
	pbft_queue_push(c, m);
	pbft_maybe_propose(c);
	return 0;
}

/* ---- pre-prepare (backups) -------------------------------------------- */

/* Every request in a batch must come from a known client, hash to its
 * digest and be authentic (its client's valid signature, or with
 * signed_requests off, authentic to us: pbft_auth.c): otherwise a faulty
 * primary could make the group execute operations no client asked for.
 * 1: valid, but some request is not authentic to us yet (only when
 * need_auth).  A new view's re-proposals need no authentication: a
 * correct replica accepted each of them before (docs/protocol.md).  The
 * service's admission check is not part of this (batch_admitted()): it is
 * local policy, for fresh proposals only. */
int pbft_check_batch(struct pbft *c, const uint8_t *batch, uint32_t len, bool need_auth,
		       enum hm_drop_reason *why)
{
	bool waiting = false;
	struct hm_batch_iter it;
	struct hm_msg req;

	if (hm_batch_validate(batch, len, c->p.max_message_size) < 0)
		return pbft_refuse(why, HM_DROP_MALFORMED);
	hm_batch_iter_init(&it, batch, len);
	while (hm_batch_next(&it, &req)) {
		const uint8_t *pk = c->p.client_key(c->p.client_key_ctx, req.sender);

		if (!pk)
			return pbft_refuse(why, HM_DROP_MALFORMED);
		if (!hm_msg_payload_ok(&req, why))
			return -1;
		if (!c->p.signed_requests) {
			waiting |= need_auth && !pbft_request_authentic(c, &req);
		} else if (!hm_verify_header(req.hdr, pk)) {
			c->stats.bad_client_signatures++;
			return pbft_refuse(why, HM_DROP_BAD_SIGNATURE);
		}
	}
	return waiting;
}

/* The service's check() for every request of a fresh proposal (one that
 * pbft_check_batch() already accepted).  Never for what the protocol
 * mandates: a new view's re-proposals of O, or committed catch-up
 * (on_claim()); see docs/protocol.md "Admission checks". */
static int batch_admitted(struct pbft *c, const uint8_t *batch, uint32_t len,
			  enum hm_drop_reason *why)
{
	struct hm_batch_iter it;
	struct hm_msg req;

	hm_batch_iter_init(&it, batch, len);
	while (hm_batch_next(&it, &req))
		if (!pbft_service_accepts(c, &req))
			return pbft_refuse(why, HM_DROP_MALFORMED);
	return 0;
}

int pbft_on_pre_prepare(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct log_entry *e;
	struct hm_hdr *h;
	bool reproposal;
	int rc;

	if (m->sender != pbft_primary(c, m->view) || m->sender == c->p.id)
		return pbft_refuse(why, HM_DROP_MALFORMED);
	if (c->in_vc && m->view == c->vc_target)
		return pbft_stash_early(c, m, why);
	if (m->view != c->view || c->in_vc)
		return pbft_refuse(why, HM_DROP_BAD_VIEW);
	if (!pbft_in_window(c, m->seq))
		return pbft_refuse(why, HM_DROP_OUT_OF_WINDOW);
	e = pbft_entry_at(c, m->seq);
	/* In the view a NEW-VIEW started, seqs up to max-s carry what its O
	 * assigned them, and nothing at or below min-s is proposed again. */
	reproposal = m->view == c->nv_view && m->seq <= c->nv_max_s;
	if (reproposal) {
		if (m->seq <= c->nv_min_s || e->seq != m->seq || e->nv_view != m->view)
			return pbft_refuse(why, HM_DROP_OUT_OF_WINDOW);
		if (memcmp(e->nv_digest, m->digest, HM_DIGEST_LEN) != 0) {
			c->stats.equivocations++;
			return pbft_refuse(why, HM_DROP_EQUIVOCATION);
		}
	}
	/* A slot we hold committed with another batch (taken from f+1 claims,
	 * perhaps of a view we never installed): this is a stale view's
	 * PRE-PREPARE (or a faulty primary's).  Taking it would swap the
	 * committed batch, which we then serve to peers as committed; and it
	 * is no evidence against the primary, since the digest we hold may
	 * not be the one it sent us. */
	if (e->seq == m->seq && e->committed && memcmp(e->digest, m->digest, HM_DIGEST_LEN) != 0)
		return pbft_refuse(why, HM_DROP_STALE);
	if (e->seq == m->seq && e->has_pp && e->view == m->view) {
		if (memcmp(e->digest, m->digest, HM_DIGEST_LEN) == 0)
			return pbft_refuse(why, HM_DROP_DUPLICATE);
		c->stats.equivocations++;
		return pbft_refuse(why, HM_DROP_EQUIVOCATION);
	}
	rc = pbft_check_batch(c, m->payload, m->payload_len, !reproposal, why);
	if (rc < 0 || (!reproposal && batch_admitted(c, m->payload, m->payload_len, why) < 0))
		return -1;
	if (rc > 0) { /* tried again as vouches come in (pbft_auth.c) */
		pbft_hold_pre_prepare(c, m);
		return 0;
	}

	e = pbft_entry_claim(c, m->seq);
	pbft_entry_set_batch(e, m->payload, m->payload_len, m->digest);
	e->view = m->view;
	e->has_pp = true;
	memcpy(e->pp_sig, m->hdr->sig, HM_SIG_LEN);
	e->own_pp = e->own_commit = false;
	e->pp_at = c->now;

	if (pbft_silent(c, m->seq)) { /* count the others' votes, cast none */
		pbft_emit_vote_policy(c, HM_PHASE_PREPARE, c->view, m->seq, e->digest, NULL);
		pbft_emit_vote_policy(c, HM_PHASE_COMMIT, c->view, m->seq, e->digest, NULL);
		return 0;
	}
	/* The vote log keeps the PRE-PREPARE we vote for (our PREPARE follows
	 * from it): durable before our PREPARE leaves. */
	pbft_dur_pre_prepare(c, (const uint8_t *)m->hdr, m->len);
	e->own_pp = true;
	pbft_note_vote(e);
	h = pbft_send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_PREPARE, c->view, m->seq, e->digest, NULL, 0);
	pbft_emit_vote_policy(c, HM_PHASE_PREPARE, c->view, m->seq, e->digest, h->sig);
	pbft_emit_vote_policy(c, HM_PHASE_COMMIT, c->view, m->seq, e->digest, NULL);
	return 0;
}

/* ---- execution and checkpoints ---------------------------------------- */

/* The replies of the batch being executed, sent together once the batch's
 * one signature is made (execute_entry). */
struct batch_replies {
	size_t n, cap;
	struct batch_reply {
		uint32_t client;
		uint64_t ts;
		uint8_t *body;
		size_t body_len;
	} *r;
	hm_merkle_hash *leaves;
};

static void batch_replies_add(struct batch_replies *b, uint32_t client, uint64_t ts,
			      const uint8_t *body, size_t len)
{
	struct batch_reply *br;

	if (b->n == b->cap) {
		b->cap = b->cap ? 2 * b->cap : 16;
		b->r = realloc(b->r, b->cap * sizeof(*b->r));
		b->leaves = realloc(b->leaves, b->cap * sizeof(*b->leaves));
		if (!b->r || !b->leaves)
			abort();
	}
	br = &b->r[b->n];
	br->client = client;
	br->ts = ts;
	br->body = malloc(len);
	if (!br->body)
		abort();
	memcpy(br->body, body, len);
	br->body_len = len;
	hm_reply_leaf(ts, body, len, b->leaves[b->n]);
	b->n++;
}

static void batch_replies_free(struct batch_replies *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->r[i].body);
	free(b->r);
	free(b->leaves);
}

static void execute_request(struct pbft *c, uint64_t seq, const struct hm_msg *req,
			    struct pbft_executed *rec, struct batch_replies *out)
{
	struct client_rec *r = pbft_client_get(c, req->sender);
	uint8_t result[HM_MAX_RESULT], body[HM_REPLY_PREFIX_LEN + HM_MAX_RESULT];
	struct hm_exec_ctx ctx = { .seq = seq, .client = req->sender, .timestamp = req->seq };
	size_t rlen, blen;

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
	/* The reply names the request (its digest): the client takes only
	 * the result of the request it sent.  The cache keeps the body; the
	 * proof follows once the batch is signed. */
	blen = hm_reply_body(body, sizeof(body), req->sender, seq, req->digest, HM_REPLY_RESULT,
			     result, rlen);
	free(r->reply);
	free(r->proof);
	r->proof = NULL;
	r->reply_len = HM_HDR_LEN + blen;
	r->reply = malloc(r->reply_len);
	if (!r->reply)
		abort();
	hm_msg_build(r->reply, r->reply_len, HM_MSG_REPLY, c->p.id, c->view, req->seq, NULL, body,
		     (uint32_t)blen, NULL);
	batch_replies_add(out, req->sender, req->seq, body, blen);
	rec->requests++;
	c->stats.ops_executed++;
}

/* One Ed25519 signature for all of a batch's replies: over the Merkle root
 * of their leaves (reply_proof.h).  Each reply goes out with its path, and
 * the client whose latest reply it still is keeps the proof for re-sends. */
static void send_batch_replies(struct pbft *c, uint64_t seq, struct batch_replies *b)
{
	struct hm_reply_batch rb;

	if (b->n == 0)
		return;
	if (hm_reply_batch_sign(&rb, b->leaves, b->n, c->p.id, seq, c->p.keys) < 0)
		abort(); /* out of memory, or a batch beyond HM_RP_MAX_LEAVES */
	c->stats.reply_batches_signed++;
	for (size_t i = 0; i < b->n; i++) {
		struct batch_reply *br = &b->r[i];
		struct client_rec *r = pbft_client_get(c, br->client);
		uint8_t proof[HM_RP_MAX_LEN], *payload;
		struct hm_reply_proof p;
		size_t prlen, plen;

		hm_reply_batch_proof(&rb, (uint16_t)i, &p);
		prlen = hm_reply_proof_encode(&p, proof, sizeof(proof));
		payload = malloc(prlen + br->body_len);
		if (!payload)
			abort();
		plen = hm_reply_payload_proven(payload, prlen + br->body_len, &p, br->body,
					       br->body_len);
		send_reply(c, br->client, br->ts, payload, plen);
		free(payload);
		if (r->last_ts == br->ts) {
			free(r->proof);
			r->proof = malloc(prlen);
			if (!r->proof)
				abort();
			memcpy(r->proof, proof, prlen);
			r->proof_len = prlen;
			memcpy(r->proof_leaf, b->leaves[i], HM_DIGEST_LEN);
		}
	}
	hm_reply_batch_free(&rb);
}

static void execute_entry(struct pbft *c, struct log_entry *e)
{
	struct hm_batch_iter it;
	struct hm_msg req;
	struct pbft_executed rec = { .seq = e->seq, .view = e->view };
	struct batch_replies replies = { 0 };

	memcpy(rec.digest, e->digest, HM_DIGEST_LEN);
	hm_batch_iter_init(&it, e->batch, e->batch_len);
	while (hm_batch_next(&it, &req))
		execute_request(c, e->seq, &req, &rec, &replies);
	send_batch_replies(c, e->seq, &replies);
	batch_replies_free(&replies);
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

struct checkpoint_rec *pbft_checkpoint_get(struct pbft *c, uint64_t seq, bool create)
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
void pbft_make_stable(struct pbft *c, struct checkpoint_rec *cp)
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
	c->dur_rotate = true; /* a new vote log from here */
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
	for (uint32_t i = 0; i < c->p.n; i++) {
		if (!(cp->voted >> i & 1) || memcmp(cp->digests[i], cp->own, HM_DIGEST_LEN) != 0)
			continue;
		/* A stable checkpoint's 2f+1 signatures are its proof (in our
		 * VIEW-CHANGE's C, for state transfer): count only votes whose
		 * signature verifies, as for prepared certificates.  A MAC-valid
		 * vote with a bad signature proves its sender faulty. */
		if (i != c->p.id && c->p.replica_keys &&
		    !pbft_stored_sig_ok(c, HM_MSG_CHECKPOINT, i, 0, cp->views[i], cp->seq, cp->digests[i],
				   cp->sigs[i])) {
			pbft_proven_faulty(c, i);
			cp->voted &= (hm_voters_t)~(1u << i);
			continue;
		}
		agree++;
	}
	if (agree >= 2 * c->p.f + 1) {
		pbft_make_stable(c, cp);
		pbft_maybe_propose(c);
	} else if (__builtin_popcount(cp->voted) - agree >= 2 * c->p.f + 1) {
		c->stats.checkpoint_mismatches++;
		/* We diverged: the others' votes are claims on the state this
		 * seq should have, which we fetch and install over ours. */
		for (uint32_t i = 0; i < c->p.n; i++)
			if ((cp->voted >> i & 1) && i != c->p.id &&
			    memcmp(cp->digests[i], cp->own, HM_DIGEST_LEN) != 0)
				pbft_claim_record(c, i, cp->views[i], cp->seq, cp->digests[i],
					     cp->sigs[i]);
		if (cp->seq > c->diverged)
			c->diverged = cp->seq;
		pbft_maybe_transfer(c);
	}
}

void pbft_record_checkpoint_vote(struct checkpoint_rec *cp, uint32_t voter, uint64_t view,
				   const uint8_t *digest, const uint8_t *sig)
{
	cp->voted |= (hm_voters_t)(1u << voter);
	cp->views[voter] = view;
	memcpy(cp->digests[voter], digest, HM_DIGEST_LEN);
	memcpy(cp->sigs[voter], sig, HM_SIG_LEN);
}

static void take_checkpoint(struct pbft *c, uint64_t seq)
{
	struct checkpoint_rec *cp = pbft_checkpoint_get(c, seq, true);
	uint8_t digest[HM_DIGEST_LEN];
	struct hm_hdr *h;
	size_t len;
	uint8_t *snap = pbft_snapshot(c, &len);

	/* The digest certifies the replica state chunk by chunk (a fetching
	 * replica checks each chunk on arrival): hm_st_state_digest over the
	 * client table and the service snapshot. */
	if (!snap || hm_st_state_digest(snap, len, digest) < 0)
		abort(); /* out of memory, or a state above 1 GiB */
	h = pbft_send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_CHECKPOINT, c->view, seq, digest, NULL, 0);
	if (!cp) {
		free(snap);
		return;
	}
	free(cp->snap);
	cp->snap = snap;
	cp->snap_len = len;
	cp->own_known = true;
	memcpy(cp->own, digest, HM_DIGEST_LEN);
	pbft_record_checkpoint_vote(cp, c->p.id, c->view, digest, h->sig);
	check_stable(c, cp);
}

void pbft_execute_committed(struct pbft *c)
{
	for (;;) {
		uint64_t seq = c->last_executed + 1;
		struct log_entry *e = pbft_entry_at(c, seq);

		if (e->seq != seq || !e->committed)
			break;
		execute_entry(c, e);
		c->last_executed = seq;
		if (seq % c->p.checkpoint_interval == 0)
			take_checkpoint(c, seq);
	}
	pbft_maybe_propose(c);
}

static int on_checkpoint(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct checkpoint_rec *cp;
	hm_voters_t bit = (hm_voters_t)(1u << m->sender);

	if (m->seq == 0 || m->seq % c->p.checkpoint_interval != 0)
		return pbft_refuse(why, HM_DROP_MALFORMED);
	if (m->seq > c->last_executed && m->sender != c->p.id) {
		pbft_claim_record(c, m->sender, m->view, m->seq, m->digest, m->hdr->sig);
		pbft_maybe_transfer(c);
		/* Beyond our window: only a claim, for state transfer. */
		if (m->seq > c->low + c->p.window)
			return 0;
	}
	/* The last of n checkpoints usually arrives after 2f+1 made it
	 * stable: that is expected, not a drop.  Its signature goes into the
	 * stable record, so that a view change can pick 2f+1 good ones. */
	if (m->seq == c->low) {
		if (c->stable.seq == m->seq && !(c->stable.voted & bit))
			pbft_record_checkpoint_vote(&c->stable, m->sender, m->view, m->digest,
					       m->hdr->sig);
		return 0;
	}
	if (m->seq < c->low)
		return pbft_refuse(why, HM_DROP_STALE);
	if (m->seq > c->low + c->p.window)
		return pbft_refuse(why, HM_DROP_OUT_OF_WINDOW);
	cp = pbft_checkpoint_get(c, m->seq, true);
	if (!cp)
		return pbft_refuse(why, HM_DROP_OUT_OF_WINDOW);
	if (cp->voted & bit) {
		if (memcmp(cp->digests[m->sender], m->digest, HM_DIGEST_LEN) == 0)
			return pbft_refuse(why, HM_DROP_DUPLICATE);
		c->stats.equivocations++;
		return pbft_refuse(why, HM_DROP_EQUIVOCATION);
	}
	pbft_record_checkpoint_vote(cp, m->sender, m->view, m->digest, m->hdr->sig);
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
	hm_voters_t voters;
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
static bool take_cert(struct pbft *c, struct log_entry *e, hm_voters_t voters)
{
	uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN];
	struct cert_fields old;
	hm_voters_t good;

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
	    !pbft_stored_sig_ok(c, HM_MSG_PRE_PREPARE, pbft_primary(c, e->view), e->batch_len, e->view,
			   e->seq, e->digest, e->pp_sig)) {
		pbft_proven_faulty(c, pbft_primary(c, e->view));
		cert_restore(e, &old);
		return false;
	}
	if (!pbft_cert_prepares(c, e, &good, sigs)) {
		cert_restore(e, &old);
		return false;
	}
	e->cert_voters = good;
	memcpy(e->cert_sigs, sigs, sizeof(sigs));
	return true;
}

static void on_prepared(struct pbft *c, struct log_entry *e, hm_voters_t voters)
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
	/* The certificate is durable before the COMMIT it enables (the same
	 * Ready): a view change after a restart still carries it. */
	if (e->has_cert && e->cert_view == e->view)
		pbft_dur_cert(c, e);
	if (pbft_silent(c, e->seq))
		return;
	h = pbft_send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_COMMIT, e->view, e->seq, e->digest, NULL, 0);
	pbft_emit_vote_policy(c, HM_PHASE_COMMIT, e->view, e->seq, e->digest, h->sig);
	e->own_commit = true;
	pbft_dur_commit(c, e);
}


/* ---- the fast path (docs/protocol.md, "The fast path") ---------------- */

void pbft_note_vote(struct log_entry *e)
{
	e->has_vote = true;
	e->vote_view = e->view;
	memcpy(e->vote_digest, e->digest, HM_DIGEST_LEN);
}

void pbft_set_fast_path_allowed(struct pbft *c, bool allowed)
{
	c->fast_allowed = allowed;
}

bool pbft_fast_path_active(const struct pbft *c)
{
	return c->p.fast_path && c->fast_allowed;
}

/* An HM_EV_FAST for e's slot: every backup's PREPARE matched, and with the
 * PRE-PREPARE that is all n replicas.  The voter bitmap is checked again
 * here (the event comes from outside the core): n - 1 voters, the primary
 * not among them, ours included unless we are the primary (a silent
 * replica's slot can never complete: it does not vote).  The fast path
 * must be on: a counter configured by someone else changes nothing. */
static bool fast_path_complete(const struct pbft *c, const struct log_entry *e,
			       const struct hm_vote_event *ev)
{
	uint32_t prim = pbft_primary(c, e->view);
	uint64_t every = ((uint64_t)1 << c->p.n) - 1; /* n may be 32 */
	hm_voters_t all = (hm_voters_t)every & ~((hm_voters_t)1 << prim);

	return ev->kind == HM_EV_FAST && ev->phase == HM_PHASE_PREPARE && c->p.fast_path &&
	       ev->voters == all && (prim == c->p.id || e->own_pp);
}

/* The n-of-n came within performance.fast_path_timeout_ms of the
 * PRE-PREPARE. */
static bool fast_in_time(const struct pbft *c, const struct log_entry *e)
{
	return !c->p.fast_path_timeout_ms ||
	       c->now - e->pp_at <= (uint64_t)c->p.fast_path_timeout_ms * 1000;
}

/* The fast path's n-of-n holds for e's current view (not an older one's). */
static bool fast_ready(const struct log_entry *e)
{
	return e->fast && e->fast_view == e->view;
}

/* e committed here (prepared, and a COMMIT quorum or the fast path): count
 * it by path, then execute what is now in order. */
static void commit_entry(struct pbft *c, struct log_entry *e)
{
	uint64_t took = c->now > e->pp_at ? c->now - e->pp_at : 0;

	e->committed = true;
	if (fast_ready(e) && !e->commit_quorum) {
		c->stats.fast_commits++;
		c->stats.fast_commit_us += took;
	} else {
		e->fast = false;
		c->stats.normal_commits++;
		c->stats.normal_commit_us += took;
	}
	pbft_execute_committed(c);
}

/* Slots whose PREPARE quorum had a vote with a bad signature: try again
 * with the votes the counter holds now. */
static void recheck_certs(struct pbft *c)
{
	for (uint64_t seq = c->last_executed + 1; pbft_in_window(c, seq); seq++) {
		struct log_entry *e = pbft_entry_at(c, seq);

		if (e->seq != seq || !e->cert_wait || e->prepared || !e->has_pp || c->in_vc)
			continue;
		on_prepared(c, e, 0);
		if (e->prepared && (e->commit_quorum || fast_ready(e)) && !e->committed)
			commit_entry(c, e);
	}
}

void pbft_on_vote_event(struct pbft *c, const struct hm_vote_event *ev)
{
	struct log_entry *e = pbft_entry_at(c, ev->seq);

	if (ev->kind == HM_EV_EQUIVOCATION) {
		c->stats.equivocations++;
		return;
	}
	/* In a view change the old view's normal case is over. */
	if ((ev->kind != HM_EV_QUORUM && ev->kind != HM_EV_FAST) || c->in_vc ||
	    e->seq != ev->seq || !e->has_pp || e->view != ev->view ||
	    memcmp(e->digest, ev->digest, HM_DIGEST_LEN) != 0)
		return;
	/* The fast event implies the PREPARE quorum (the counter raises it
	 * instead when both come due at once). */
	if (ev->phase == HM_PHASE_PREPARE && !e->prepared)
		on_prepared(c, e, ev->voters);
	else if (ev->phase == HM_PHASE_COMMIT)
		e->commit_quorum = true;
	if (fast_path_complete(c, e, ev) && fast_in_time(c, e)) {
		e->fast = true;
		e->fast_view = e->view;
	}
	/* committed-local: prepared and 2f+1 matching COMMITs (ours included),
	 * or, the fast path, prepared and all n replicas' votes */
	if (e->prepared && (e->commit_quorum || fast_ready(e)) && !e->committed)
		commit_entry(c, e);
}

/* ---- retransmission -------------------------------------------------- */

/* Our messages for one slot, exactly as we sent them: the PRE-PREPARE if we
 * are its primary, else our PREPARE; our COMMIT.  Only what own_pp and
 * own_commit say we sent in e->view: a slot we hold for another reason
 * (committed on claims, recovered from the committed log) gets nothing,
 * since a vote made up now could differ from the one we sent in that view
 * (docs/protocol.md, "Retransmission and STATUS re-send only the sender's
 * own messages"). */
static void resend_slot(struct pbft *c, const struct log_entry *e, enum pbft_dest dest,
			uint32_t to, uint16_t flags)
{
	if (pbft_silent(c, e->seq))
		return;
	if (e->own_pp && pbft_primary(c, e->view) == c->p.id)
		pbft_send_flagged(c, dest, to, HM_MSG_PRE_PREPARE, flags, e->view, e->seq, NULL,
			     e->batch, e->batch_len);
	else if (e->own_pp)
		pbft_send_flagged(c, dest, to, HM_MSG_PREPARE, flags, e->view, e->seq, e->digest, NULL,
			     0);
	if (e->own_commit)
		pbft_send_flagged(c, dest, to, HM_MSG_COMMIT, flags, e->view, e->seq, e->digest, NULL,
			     0);
}

static void resend_checkpoint(struct pbft *c, const struct checkpoint_rec *cp,
			      enum pbft_dest dest, uint32_t to, uint16_t flags)
{
	pbft_send_flagged(c, dest, to, HM_MSG_CHECKPOINT, flags, c->view, cp->seq, cp->own, NULL, 0);
}

/* Messages get lost (a full socket buffer, a PRE-PREPARE that reached a
 * backup before its window moved).  Every retransmit interval each replica
 * sends again, flagged, its messages for slots it has not committed and its
 * checkpoints that are not stable yet; peers that are past those slots
 * answer (pbft_on_retransmission), so a lagging replica catches up. */
void pbft_retransmit(struct pbft *c)
{
	bool pending = false;

	pending |= pbft_vc_retransmit(c);
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
	pbft_maybe_transfer(c);
	if ((c->highest_seen > c->last_executed || c->far_seen) &&
	    c->last_executed == c->executed_at_last_retransmit) {
		c->far_seen = false;
		pbft_send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_STATUS, 0, c->view, c->last_executed,
			     (const uint8_t[HM_DIGEST_LEN]){ 0 }, NULL, 0);
		if (c->p.view_change_timeout_ms)
			pbft_fetch_committed(c);
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
		 * the answers and fetches its state.  The seq is kept: once
		 * an install moves our window, it is judged again
		 * (pbft_observe_far). */
		c->far_seen = true;
		if (seq > c->far_highest)
			c->far_highest = seq;
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

/* After an install moved our window: the seqs peers named while they were
 * too far for it count now, up to the new limit of pbft_observe_seq (a
 * value beyond it counts as that limit: a correct namer got at least that
 * far, and a faulty one could name the limit itself).  Without this a
 * replica that installed the group's checkpoint while the group had gone
 * on a few slots and then gone quiet forgot those slots: nothing pending,
 * only a one-shot STATUS, no FETCH (docs/protocol.md, "Asking after an
 * install"). */
void pbft_observe_far(struct pbft *c)
{
	uint64_t limit = c->low + 2 * (uint64_t)c->p.window;
	uint64_t seq = c->far_highest < limit ? c->far_highest : limit;

	c->far_highest = 0;
	if (seq > c->last_executed)
		pbft_observe_seq(c, seq);
}

/* Send a lagging peer our messages for a committed slot, at most once per
 * peer and slot per retransmit interval: a faulty peer repeating a flagged
 * message must not make us sign and send again for every copy. */
static void help_slot(struct pbft *c, struct log_entry *e, uint32_t peer)
{
	hm_voters_t bit = (hm_voters_t)(1u << peer);

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
	/* A STATUS carries the view its sender installed: in a quiet group the
	 * only news of a view we missed (view catch-up needs f+1 of them). */
	if (m->view > c->view)
		pbft_observe_view(c, m->sender, m->view);
	if (c->status_served_at[m->sender] &&
	    c->now < c->status_served_at[m->sender] + (uint64_t)c->p.retransmit_ms * 1000)
		return pbft_refuse(why, HM_DROP_RATE_LIMITED);
	c->status_served_at[m->sender] = c->now;

	/* Behind our stable checkpoint: our CHECKPOINT, and the checkpoint's
	 * proof.  The slots we still keep (below) may not be enough: a backup
	 * cannot re-send the primary's PRE-PREPARE, so with the primary gone
	 * the peer executes them only on f+1 committed claims, and a peer of
	 * ours restored from this checkpoint holds none of them.  With the
	 * proof it can fetch the state once it is stuck (pbft_maybe_transfer)
	 * instead of waiting for ever. */
	if (m->seq < c->low && c->stable.own_known) {
		help_checkpoint(c, &c->stable, m->sender);
		pbft_send_checkpoint_proof(c, m->sender);
	}
	/* Written so that a huge claimed seq cannot wrap `from + 1`. */
	for (uint64_t seq = from; seq < c->last_executed;) {
		struct log_entry *e = pbft_entry_at(c, ++seq);

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
	const struct log_entry *e = pbft_entry_at(c, m->seq);
	const struct checkpoint_rec *cp;

	if (m->sender >= c->p.n || m->sender == c->p.id || m->type == HM_MSG_VIEW_CHANGE ||
	    m->type == HM_MSG_NEW_VIEW)
		return;
	if (m->type == HM_MSG_CHECKPOINT) {
		cp = m->seq == c->stable.seq ? &c->stable : pbft_checkpoint_get(c, m->seq, false);
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

/* Another replica than us. */
static bool from_peer(const struct pbft *c, const struct hm_msg *m)
{
	return m->sender < c->p.n && m->sender != c->p.id;
}

static int not_a_peer(enum hm_drop_reason *why)
{
	return pbft_refuse(why, HM_DROP_UNKNOWN_SENDER);
}

int pbft_receive(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	switch (m->type) {
	case HM_MSG_REQUEST:
		return pbft_on_request(c, m, why);
	case HM_MSG_PRE_PREPARE:
		return pbft_on_pre_prepare(c, m, why);
	case HM_MSG_CHECKPOINT:
		return m->sender < c->p.n ? on_checkpoint(c, m, why) : not_a_peer(why);
	case HM_MSG_STATUS:
		return from_peer(c, m) ? on_status(c, m, why) : not_a_peer(why);
	case HM_MSG_VIEW_CHANGE:
		return from_peer(c, m) ? pbft_on_view_change(c, m, why) : not_a_peer(why);
	case HM_MSG_NEW_VIEW:
		return from_peer(c, m) ? pbft_on_new_view(c, m, why) : not_a_peer(why);
	case HM_MSG_STATE_REQUEST:
		return from_peer(c, m) ? pbft_on_state_request(c, m, why) : not_a_peer(why);
	case HM_MSG_STATE_CHUNK:
		return from_peer(c, m) ? pbft_on_state_chunk(c, m, why) : not_a_peer(why);
	case HM_MSG_VOUCH:
		return from_peer(c, m) ? pbft_on_vouch(c, m, why) : not_a_peer(why);
	default:
		return pbft_refuse(why, HM_DROP_MALFORMED);
	}
}

/* Executed nothing for PBFT_IDLE_STATUS_ROUNDS retransmit intervals (and
 * no such STATUS for as long): a STATUS.  A replica the group left behind
 * while it was cut off (or paused, or lost the last messages), the group
 * then quiet, would otherwise never hear that it is behind (nobody sends
 * anything, and our own STATUS goes out only once a peer named a higher
 * seq), also while it waits alone in a view change.  Peers at our point
 * answer nothing; peers ahead answer as to any STATUS (on_status: their
 * stable CHECKPOINT, committed slots, checkpoints). */
static uint64_t idle_status_due(const struct pbft *c)
{
	uint64_t base = c->progress_at > c->idle_status_at ? c->progress_at : c->idle_status_at;

	return base + (uint64_t)PBFT_IDLE_STATUS_ROUNDS * c->p.retransmit_ms * 1000;
}

static void idle_status(struct pbft *c)
{
	bool armed = c->next_retransmit != 0;

	if (c->now < idle_status_due(c))
		return;
	pbft_send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_STATUS, 0, c->view, c->last_executed,
			  (const uint8_t[HM_DIGEST_LEN]){ 0 }, NULL, 0);
	if (!armed)
		c->next_retransmit = 0; /* a STATUS needs no retransmission */
	c->idle_status_at = c->now;
}

void pbft_tick(struct pbft *c, uint64_t now_us)
{
	if (now_us > c->now)
		c->now = now_us;
	if (c->next_retransmit && c->now >= c->next_retransmit)
		pbft_retransmit(c);
	idle_status(c);
	pbft_vc_timers(c);
	if (c->st_running)
		pbft_st_tick(c);
	recheck_certs(c);
	pbft_maybe_propose(c);
	pbft_flush_vouches(c);
}

/* The batch timer and the retransmission timer.  When the pipeline or the
 * window is full, an execution or a checkpoint (not a timer) makes room. */
uint64_t pbft_next_deadline(const struct pbft *c)
{
	uint64_t t = pbft_vc_deadline(c);

	if (can_propose(c))
		t = earliest(t, c->queue[c->q_head].queued_at + (uint64_t)c->p.batch_timeout_ms * 1000);
	if (c->st_running && hm_st_next_deadline(&c->st) != UINT64_MAX)
		t = earliest(t, hm_st_next_deadline(&c->st) * 1000 + 1000);
	t = earliest(t, idle_status_due(c));
	return earliest(t, c->next_retransmit);
}

bool pbft_has_ready(const struct pbft *c)
{
	return c->n_msgs || c->n_votes || c->n_exec || c->window_changed || c->stable_changed ||
	       c->installed || c->n_dur || c->dur_rotate;
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
		pbft_stable_proof(c, &rd->stable);
	pbft_dur_ready(c, rd);
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
	pbft_dur_advance(c);
}

uint64_t pbft_view(const struct pbft *c) { return c->view; }
uint64_t pbft_last_executed(const struct pbft *c) { return c->last_executed; }
uint64_t pbft_low_watermark(const struct pbft *c) { return c->low; }
const struct pbft_stats *pbft_stats(const struct pbft *c) { return &c->stats; }

void pbft_state_digest(const struct pbft *c, uint8_t out[HM_DIGEST_LEN])
{
	c->p.service->ops->digest(c->p.service->state, out);
}

bool pbft_prepared_digest(const struct pbft *c, uint64_t seq, uint8_t out[HM_DIGEST_LEN])
{
	const struct log_entry *e = &c->log[seq % c->log_size];

	if (e->seq != seq || !e->has_cert)
		return false;
	memcpy(out, e->cert_digest, HM_DIGEST_LEN);
	return true;
}

bool pbft_committed_digest(const struct pbft *c, uint64_t seq, uint8_t out[HM_DIGEST_LEN])
{
	const struct log_entry *e = &c->log[seq % c->log_size];

	if (e->seq != seq || !e->committed)
		return false;
	memcpy(out, e->digest, HM_DIGEST_LEN);
	return true;
}
