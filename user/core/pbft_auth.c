// SPDX-License-Identifier: MIT
/*
 * Requests without signatures: link MACs and vouches (docs/protocol.md,
 * "Requests: MACs and vouches").  Decisive with signed_requests off; with it
 * on, signatures decide, and vouches are still sent and counted so that a
 * cluster can switch modes by restarting one replica at a time.
 *
 * A client sends each request to every replica under that link's MAC.  A
 * replica holds a request *authentic* when it got it so itself, or when
 * f+1 replicas vouched for it: one of them is correct, and a correct
 * replica vouches only for what is authentic to it, so by induction some
 * correct replica got the request from its client.  Holding it authentic,
 * a replica vouches for it to every other (a VOUCH: the requests
 * themselves, batched, MAC only).  Vouching on f+1 vouches is what makes
 * the round total: once f+1 correct replicas vouched, every correct
 * replica reaches f+1 and vouches too.
 *
 * A request is *ready* once 2f+1 replicas vouched for it (at least f+1 of
 * them correct, so every correct replica will hold it authentic): only
 * then does a primary propose it, and only then does a view-change timer
 * run on it.  A client whose MACs verify at too few replicas is thus not
 * served, and costs no view change (Aardvark's reason to sign requests).
 * A backup accepts a PRE-PREPARE once every request in it is authentic to
 * it, and holds it until then.
 */
#include <stdlib.h>
#include <string.h>

#include "core/pbft_internal.h"

static struct client_rec *client_find(const struct pbft *c, uint32_t id)
{
	struct client_rec *r;

	HASH_FIND(hh, c->clients, &id, sizeof(id), r);
	return r;
}

static struct client_vouch *vouches_of(const struct pbft *c, struct client_rec *r)
{
	if (!r->vouch) {
		r->vouch = calloc(c->p.n, sizeof(*r->vouch));
		if (!r->vouch)
			abort();
	}
	return r->vouch;
}

static uint32_t vouch_count(const struct pbft *c, const struct client_rec *r, uint64_t ts,
			    const uint8_t *digest)
{
	uint32_t k = 0;

	for (uint32_t j = 0; r->vouch && j < c->p.n; j++)
		k += r->vouch[j].ts == ts && memcmp(r->vouch[j].digest, digest, HM_DIGEST_LEN) == 0;
	return k;
}

/* ---- our vouches: batched until pbft_flush_vouches() ------------------- */

void pbft_flush_vouches(struct pbft *c)
{
	if (!c->vouch_out_count)
		return;
	hm_put_be32(c->vouch_out, c->vouch_out_count);
	pbft_send_unsigned(c, PBFT_TO_REPLICAS, 0, HM_MSG_VOUCH, c->view, 0, c->vouch_out,
			   c->vouch_out_len);
	c->stats.vouches_sent++;
	c->vouch_out_count = 0;
	c->vouch_out_len = 4;
}

/* req (MAC field zero, as in a batch) into the next VOUCH. */
static void vouch_add(struct pbft *c, struct client_rec *r, const uint8_t *req, size_t len)
{
	size_t room = c->p.max_message_size - HM_HDR_LEN;

	if (!c->vouch_out) {
		c->vouch_out = malloc(c->p.max_message_size);
		if (!c->vouch_out)
			abort();
		c->vouch_out_len = 4;
	}
	if (c->vouch_out_len + 4 + len > room)
		pbft_flush_vouches(c);
	hm_put_be32(c->vouch_out + c->vouch_out_len, (uint32_t)len);
	memcpy(c->vouch_out + c->vouch_out_len + 4, req, len);
	memset(c->vouch_out + c->vouch_out_len + 4 + HM_OFF_MAC, 0, HM_MAC_LEN);
	c->vouch_out_len += 4 + (uint32_t)len;
	c->vouch_out_count++;
	c->stats.requests_vouched++;
	r->vouched_at = c->now;
}

/* ---- authentic, then ready --------------------------------------------- */

/* r's authentic request has 2f+1 vouches: time it, and propose it if we
 * are the primary. */
static void check_ready(struct pbft *c, struct client_rec *r)
{
	struct hm_msg m;
	enum hm_drop_reason why;

	/* With signed requests, signatures decide (pbft.c): the vouches only
	 * serve replicas of a cluster switching modes by rolling restart. */
	if (c->p.signed_requests || r->ready_ts >= r->auth_ts || r->auth_ts <= r->last_ts ||
	    vouch_count(c, r, r->auth_ts, r->auth_digest) < 2 * c->p.f + 1)
		return;
	r->ready_ts = r->auth_ts;
	pbft_time_pending(c, r);
	if (!pbft_acting_primary(c) || c->in_vc || r->pending_ts != r->auth_ts ||
	    hm_msg_decode(r->pending, r->pending_len, HM_MAX_DATAGRAM, &m, &why) < 0)
		return;
	pbft_propose_request(c, r, &m, &why);
}

/* We hold m (r's request) authentic: keep it, vouch for it. */
static void take_authentic(struct pbft *c, struct client_rec *r, const struct hm_msg *m)
{
	struct client_vouch *v = vouches_of(c, r);

	r->auth_ts = m->seq;
	memcpy(r->auth_digest, m->digest, HM_DIGEST_LEN);
	if (!c->p.signed_requests) /* signed: pbft_track_pending() keeps and times it */
		pbft_keep_pending(r, m);
	v[c->p.id].ts = m->seq;
	memcpy(v[c->p.id].digest, m->digest, HM_DIGEST_LEN);
	vouch_add(c, r, (const uint8_t *)m->hdr, m->len);
	c->auth_changed = true;
	check_ready(c, r);
}

static bool is_auth(const struct client_rec *r, const struct hm_msg *m)
{
	return r->auth_ts == m->seq && memcmp(r->auth_digest, m->digest, HM_DIGEST_LEN) == 0;
}

/* Our vouch again, at most once per retransmission interval: a peer that
 * lost it (or a retransmitting client) asks for it this way. */
static void vouch_again(struct pbft *c, struct client_rec *r, const struct hm_msg *m)
{
	if (c->now < r->vouched_at + (uint64_t)c->p.retransmit_ms * 1000)
		return;
	vouch_add(c, r, (const uint8_t *)m->hdr, m->len);
}

int pbft_vouch_direct(struct pbft *c, struct client_rec *r, const struct hm_msg *m,
		      enum hm_drop_reason *why)
{
	/* One that no PRE-PREPARE could carry gets no vouch: with 2f+1 it
	 * would time out at every backup, blaming a correct primary. */
	if (!pbft_request_fits(c, m))
		return pbft_refuse(why, HM_DROP_OVERSIZE);
	if (m->seq > r->auth_ts) {
		take_authentic(c, r, m);
	} else if (is_auth(r, m)) {
		vouch_again(c, r, m); /* the client retransmits: it lacks a reply quorum */
	} else if (m->seq == r->auth_ts) {
		/* Another request under a timestamp already used: the client
		 * equivocates.  Neither gets our vouch twice. */
		c->stats.conflicting_requests++;
		return pbft_refuse(why, HM_DROP_DUPLICATE);
	} else {
		return pbft_refuse(why, HM_DROP_STALE);
	}
	return 0;
}

int pbft_auth_direct(struct pbft *c, struct client_rec *r, const struct hm_msg *m,
		     enum hm_drop_reason *why)
{
	bool retransmitted = m->seq == r->auth_ts;

	if (pbft_vouch_direct(c, r, m, why) < 0)
		return -1;
	if (retransmitted && r->ready_ts == m->seq && pbft_acting_primary(c) && !c->in_vc)
		return pbft_propose_request(c, r, m, why);
	if (!pbft_acting_primary(c) || c->in_vc)
		pbft_observe_seq(c, c->last_executed + 1);
	pbft_retry_held(c);
	return 0;
}

/* The client retransmits the request we executed last: it lacks a reply
 * quorum, so correct replicas may still lack the request's execution, and
 * with it the 2f+1 vouches that time it at them and let them join a view
 * change.  Ours stands (the client just sent it under our link's MAC), at
 * most once per retransmission interval.  Without it, a replica that lost
 * our earlier vouch (a partition) could wait for ever: with f replicas
 * crashed and one correct replica alone in a view change, the others, who
 * executed the request, are the only ones left to vouch for it (the soak's
 * seed 6960; docs/protocol.md, "Requests: MACs and vouches"). */
void pbft_vouch_executed(struct pbft *c, struct client_rec *r, const struct hm_msg *m)
{
	if (pbft_request_fits(c, m))
		vouch_again(c, r, m);
}

/* Replica j vouches for req. */
static void vouch_from(struct pbft *c, uint32_t j, const struct hm_msg *req)
{
	struct client_rec *r = pbft_client_get(c, req->sender);
	struct client_vouch *v;
	uint32_t count;
	bool repeat;

	if (req->seq <= r->last_ts)
		return;
	v = vouches_of(c, r);
	if (req->seq < v[j].ts)
		return;
	repeat = v[j].ts == req->seq && memcmp(v[j].digest, req->digest, HM_DIGEST_LEN) == 0;
	v[j].ts = req->seq;
	memcpy(v[j].digest, req->digest, HM_DIGEST_LEN);
	count = vouch_count(c, r, req->seq, req->digest);
	if (req->seq > r->auth_ts && count >= c->p.f + 1) {
		c->stats.requests_by_vouches++;
		take_authentic(c, r, req);
	} else if (is_auth(r, req)) {
		if (repeat)
			vouch_again(c, r, req); /* j may lack ours */
		check_ready(c, r);
	} else if (count == c->p.f + 1 && !repeat) {
		c->auth_changed = true; /* pbft_request_authentic() now says yes */
	}
}

int pbft_on_vouch(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct hm_batch_iter it;
	struct hm_msg req;

	if (hm_batch_validate(m->payload, m->payload_len, c->p.max_message_size) < 0) {
		c->stats.bad_vouches++;
		return pbft_refuse(why, HM_DROP_MALFORMED);
	}
	/* All or nothing: a VOUCH naming an unknown client or carrying a
	 * request that does not hash to its digest is its sender's fault. */
	hm_batch_iter_init(&it, m->payload, m->payload_len);
	while (hm_batch_next(&it, &req))
		if (!c->p.client_key(c->p.client_key_ctx, req.sender) ||
		    !hm_msg_payload_ok(&req, why)) {
			c->stats.bad_vouches++;
			return pbft_refuse(why, HM_DROP_MALFORMED);
		}
	hm_batch_iter_init(&it, m->payload, m->payload_len);
	while (hm_batch_next(&it, &req))
		vouch_from(c, m->sender, &req);
	pbft_retry_held(c);
	return 0;
}

/* ---- backups: PRE-PREPAREs wait for their requests' authenticity ------- */

bool pbft_request_authentic(const struct pbft *c, const struct hm_msg *req)
{
	const struct client_rec *r = client_find(c, req->sender);

	/* One executed already is skipped at execution, wherever it is.  f+1
	 * vouches also stand for a request other than the one we hold at its
	 * timestamp (a client that sent two, one to each half: whichever the
	 * primary proposes, every correct backup can accept it). */
	return r && (req->seq <= r->last_ts || is_auth(r, req) ||
		     vouch_count(c, r, req->seq, req->digest) >= c->p.f + 1);
}

void pbft_hold_pre_prepare(struct pbft *c, const struct hm_msg *m)
{
	struct held_pp *h = NULL;

	for (size_t i = 0; i < c->n_held && !h; i++)
		if (c->held[i].seq == m->seq)
			h = &c->held[i];
	if (!h) {
		GROW(c->held, c->n_held, c->cap_held);
		h = &c->held[c->n_held++];
		if (!c->retrying)
			c->stats.batches_held++;
	} else {
		free(h->buf);
	}
	h->buf = malloc(m->len);
	if (!h->buf)
		abort();
	memcpy(h->buf, m->hdr, m->len);
	h->len = m->len;
	h->view = m->view;
	h->seq = m->seq;
}

/* Try the held PRE-PREPAREs again once a request became authentic; those
 * still waiting are held again, those of a past view or slot dropped. */
void pbft_retry_held(struct pbft *c)
{
	struct held_pp *held = c->held;
	size_t n = c->n_held;

	if (!c->auth_changed || !n)
		return;
	c->auth_changed = false;
	c->held = NULL;
	c->n_held = c->cap_held = 0;
	c->retrying = true;
	for (size_t i = 0; i < n; i++) {
		enum hm_drop_reason why;
		struct hm_msg m;

		if (held[i].view == c->view && held[i].seq > c->last_executed &&
		    hm_msg_decode(held[i].buf, held[i].len, HM_MAX_DATAGRAM, &m, &why) == 0)
			pbft_on_pre_prepare(c, &m, &why);
		free(held[i].buf);
	}
	c->retrying = false;
	free(held);
}

void pbft_held_clear(struct pbft *c)
{
	for (size_t i = 0; i < c->n_held; i++)
		free(c->held[i].buf);
	c->n_held = 0;
}

void pbft_auth_free(struct pbft *c)
{
	pbft_held_clear(c);
	free(c->held);
	free(c->vouch_out);
}
