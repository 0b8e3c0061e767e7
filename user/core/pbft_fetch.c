// SPDX-License-Identifier: MIT
/*
 * What a replica fetches from its peers around view changes, in the
 * NEW_VIEW message's other kinds (docs/wire-format.md): VIEW-CHANGEs a
 * NEW-VIEW names (from their sender, or relayed by a replica holding them),
 * batches, committed slots claimed by f+1 peers, the stable checkpoint's
 * proof; and view catch-up, a replica behind in views asking the current
 * view's primary for its NEW-VIEW.  Split from pbft_view.c, which builds,
 * checks and installs views; the safety arguments are in docs/protocol.md.
 */
#include "core/pbft_internal.h"

static uint64_t catchup_view(const struct pbft *c)
{
	uint64_t v[HM_MAX_REPLICAS];
	uint32_t k = 0;

	for (uint32_t j = 0; j < c->p.n; j++) {
		uint64_t x = c->seen_view[j];
		uint32_t i;

		if (j == c->p.id || x <= c->view)
			continue;
		for (i = k++; i > 0 && v[i - 1] < x; i--) /* descending */
			v[i] = v[i - 1];
		v[i] = x;
	}
	return k >= c->p.f + 1 ? v[c->p.f] : 0;
}

bool pbft_views_behind(const struct pbft *c)
{
	uint32_t above = 0;

	for (uint32_t j = 0; j < c->p.n; j++)
		above += j != c->p.id && c->seen_view[j] > c->view;
	return above >= c->p.f + 1;
}

void pbft_catchup_fetch(struct pbft *c)
{
	uint8_t fetch[1 + HM_DIGEST_LEN] = { HM_NV_FETCH };
	uint32_t prim = pbft_primary(c, c->cu_view);

	if (prim == c->p.id || c->cu_view <= c->view || !pbft_throttle_ok(c, &c->cu_fetch_at))
		return;
	pbft_send_msg(c, PBFT_TO_REPLICA, prim, HM_MSG_NEW_VIEW, c->cu_view, 0, NULL, fetch,
		      sizeof(fetch));
}

void pbft_observe_view(struct pbft *c, uint32_t sender, uint64_t view)
{
	uint64_t v;

	if (!c->p.view_change_timeout_ms || sender >= c->p.n || sender == c->p.id ||
	    view <= c->seen_view[sender])
		return;
	c->seen_view[sender] = view;
	v = catchup_view(c);
	/* Never towards a view below one we sent a VIEW-CHANGE for. */
	if (!v || v <= c->cu_view || (c->in_vc && v < c->vc_target))
		return;
	c->cu_view = v;
	c->cu_at = c->now ? c->now : 1;
	c->cu_fetch_at = 0;
	c->stats.view_catchups_started++;
	pbft_catchup_fetch(c);
	if (!c->next_retransmit)
		c->next_retransmit = c->now + (uint64_t)c->p.retransmit_ms * 1000;
}

/* After any VIEW-CHANGE news: join a view f+1 others moved to, start the
 * new-view timer at 2f+1, send or check the NEW-VIEW. */
int pbft_on_vc_relay(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		       enum hm_drop_reason *why)
{
	struct hm_msg im;
	struct hm_vc_payload v;
	enum hm_drop_reason iwhy;

	if (m->view <= c->view)
		return pbft_refuse(why, HM_DROP_STALE);
	if (hm_msg_decode(nv->vc, nv->vc_len, c->p.max_message_size, &im, &iwhy) < 0 ||
	    im.type != HM_MSG_VIEW_CHANGE || im.sender >= c->p.n || im.view != m->view ||
	    !hm_msg_payload_ok(&im, &iwhy) || hm_vc_parse(im.payload, im.payload_len, &v) < 0)
		return pbft_refuse(why, HM_DROP_MALFORMED);
	if (im.sender == c->p.id || !pbft_vc_alt_takes(c, im.sender, im.view, &v, im.digest))
		return pbft_refuse(why, HM_DROP_STALE);
	/* A correct replica relays only a VIEW-CHANGE it validated. */
	if (v.kind == HM_VC_HEAD &&
	    (!c->p.replica_keys || !hm_verify_header(im.hdr, c->p.replica_keys[im.sender])))
		return pbft_refuse(why, HM_DROP_MALFORMED);
	if (pbft_vc_store(c, &c->vc_alt[im.sender], nv->vc, nv->vc_len, &v, im.digest, true, why) < 0)
		return -1;
	pbft_vc_alt_done(c, im.sender);
	pbft_vc_progress(c);
	return 0;
}

/* FETCH (seq 0) of replica j's VIEW-CHANGE by head digest: if we
 * hold it complete and valid, relay its signed datagrams inside our own
 * (HM_NV_VC).  Its sender may be faulty and never serve the one a NEW-VIEW
 * names; the new primary holds every one it named. */
static int relay_vc(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		    enum hm_drop_reason *why)
{
	uint32_t j = (uint32_t)nv->fetch_replica;
	const struct vc_rec *r = j < c->p.n && j != m->sender ? pbft_vc_find(c, j, m->view) : NULL;
	uint8_t *buf;

	if (!r || !r->nparts || !r->checked || !r->valid ||
	    memcmp(pbft_dgram_hdr(r->part[0])->digest, nv->digest, HM_DIGEST_LEN) != 0)
		return pbft_refuse(why, HM_DROP_STALE);
	if (!pbft_throttle_ok(c, &c->vc_served_at[m->sender]))
		return pbft_refuse(why, HM_DROP_RATE_LIMITED);
	for (unsigned i = 0; i < r->nparts; i++) {
		size_t len = 1 + (size_t)r->part_len[i];

		if (HM_HDR_LEN + len > c->p.max_message_size)
			continue; /* kept from before parts left room (pbft_vc_fits) */
		buf = malloc(len);
		if (!buf)
			abort();
		buf[0] = HM_NV_VC;
		memcpy(buf + 1, r->part[i], r->part_len[i]);
		pbft_send_msg(c, PBFT_TO_REPLICA, m->sender, HM_MSG_NEW_VIEW, m->view, 0, NULL, buf,
			      (uint32_t)len);
		free(buf);
	}
	return 0;
}

/* FETCH: a batch (seq > 0) we hold with that digest, or (seq 0) our own
 * VIEW-CHANGE with that head digest.  Answered at most once per retransmit
 * interval per peer and slot. */
int pbft_on_fetch(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		    enum hm_drop_reason *why)
{
	static const uint8_t zero[HM_DIGEST_LEN];
	struct log_entry *e = pbft_entry_at(c, m->seq);
	uint8_t *payload;
	size_t len;

	if (m->seq == 0 && memcmp(nv->digest, zero, HM_DIGEST_LEN) == 0)
		return pbft_serve_new_view_fetch(c, m, why);
	if (m->seq == 0) {
		/* From the ring: the VIEW-CHANGE a NEW-VIEW names may be one
		 * we have since superseded. */
		const struct vc_rec *r = pbft_vc_own(c, m->view);

		if (nv->fetch_replica >= 0 && (uint32_t)nv->fetch_replica != c->p.id)
			return relay_vc(c, m, nv, why);
		if (r && r->nparts &&
		    memcmp(pbft_dgram_hdr(r->part[0])->digest, nv->digest, HM_DIGEST_LEN) == 0) {
			if (!pbft_throttle_ok(c, &c->vc_served_at[m->sender]))
				return pbft_refuse(why, HM_DROP_RATE_LIMITED);
			for (unsigned i = 0; i < r->nparts; i++)
				pbft_emit_copy(c, PBFT_TO_REPLICA, m->sender, r->part[i],
					  r->part_len[i], 0);
			return 0;
		}
		return pbft_refuse(why, HM_DROP_STALE);
	}
	if (e->seq != m->seq || !e->batch ||
	    (memcmp(nv->digest, zero, HM_DIGEST_LEN) == 0
		     ? !e->committed
		     : memcmp(e->digest, nv->digest, HM_DIGEST_LEN) != 0))
		return pbft_refuse(why, HM_DROP_STALE);
	if (c->now >= e->fetch_at + (uint64_t)c->p.retransmit_ms * 1000) {
		e->fetch_served = 0;
		e->fetch_at = c->now;
	}
	if (e->fetch_served >> m->sender & 1)
		return pbft_refuse(why, HM_DROP_RATE_LIMITED);
	e->fetch_served |= (hm_voters_t)(1u << m->sender);
	len = HM_NV_BATCH_OVERHEAD + e->batch_len;
	if (HM_HDR_LEN + len > c->p.max_message_size)
		return pbft_refuse(why, HM_DROP_OVERSIZE);
	payload = malloc(len);
	if (!payload)
		abort();
	payload[0] = HM_NV_BATCH;
	payload[1] = e->committed;
	memcpy(payload + 2, e->digest, HM_DIGEST_LEN);
	memcpy(payload + HM_NV_BATCH_OVERHEAD, e->batch, e->batch_len);
	pbft_send_msg(c, PBFT_TO_REPLICA, m->sender, HM_MSG_NEW_VIEW, c->view, m->seq, NULL, payload,
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
	struct log_entry *e = pbft_entry_at(c, m->seq);
	uint8_t d[HM_DIGEST_LEN];
	uint32_t agree = 0;

	if (m->seq <= c->last_executed || !pbft_in_window(c, m->seq) ||
	    (e->seq == m->seq && e->committed))
		return pbft_refuse(why, HM_DROP_STALE);
	hm_digest(nv->batch, nv->batch_len, d);
	if (memcmp(d, nv->digest, HM_DIGEST_LEN) != 0)
		return pbft_refuse(why, HM_DROP_BAD_DIGEST);
	e = pbft_entry_claim(c, m->seq);
	e->claimed |= (hm_voters_t)(1u << m->sender);
	memcpy(e->claims[m->sender], d, HM_DIGEST_LEN);
	for (uint32_t i = 0; i < c->p.n; i++)
		agree += (e->claimed >> i & 1) && memcmp(e->claims[i], d, HM_DIGEST_LEN) == 0;
	if (agree < c->p.f + 1)
		return 0;
	/* Client signatures checked once, for the batch about to execute
	 * (without signatures nothing more to check: f+1 replicas claim it
	 * committed, so a correct replica accepted its requests). */
	if (pbft_check_batch(c, nv->batch, nv->batch_len, false, why) < 0)
		return -1;
	pbft_entry_set_batch(e, nv->batch, nv->batch_len, d);
	e->committed = true;
	c->stats.batches_fetched++;
	pbft_execute_committed(c);
	return 0;
}

/* Lagging and stuck: ask for the next slots (up to a checkpoint interval
 * of them, so that we gain on a group that keeps going) as committed
 * batches. */
void pbft_fetch_committed(struct pbft *c)
{
	uint8_t fetch[1 + HM_DIGEST_LEN] = { HM_NV_FETCH };

	for (uint64_t s = c->last_executed + 1;
	     s <= c->highest_seen && s <= c->last_executed + c->p.checkpoint_interval; s++)
		if (pbft_in_window(c, s))
			pbft_send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_NEW_VIEW, HM_FLAG_RETRANSMIT,
				     c->view, s, NULL, fetch, sizeof(fetch));
}

/* BATCH: the batch a new primary was missing for a seq of its O.  Its
 * digest, certified by the VIEW-CHANGEs, authenticates it. */
int pbft_on_batch(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		    enum hm_drop_reason *why)
{
	struct log_entry *e = pbft_entry_at(c, m->seq);
	uint8_t d[HM_DIGEST_LEN];

	if (nv->committed && !(e->seq == m->seq && e->nv_need))
		return on_claim(c, m, nv, why);
	if (e->seq != m->seq || !e->nv_need || e->nv_view != c->view || !pbft_is_primary(c) ||
	    memcmp(nv->digest, e->nv_digest, HM_DIGEST_LEN) != 0)
		return pbft_refuse(why, HM_DROP_STALE);
	hm_digest(nv->batch, nv->batch_len, d);
	if (memcmp(d, e->nv_digest, HM_DIGEST_LEN) != 0)
		return pbft_refuse(why, HM_DROP_BAD_DIGEST);
	if (hm_batch_validate(nv->batch, nv->batch_len, c->p.max_message_size) < 0)
		return pbft_refuse(why, HM_DROP_MALFORMED);
	pbft_entry_set_batch(e, nv->batch, nv->batch_len, d);
	c->stats.batches_fetched++;
	pbft_nv_propose(c, m->seq);
	return 0;
}

/* A peer behind our stable checkpoint (its STATUS): the checkpoint's proof,
 * 2f+1 CHECKPOINT signatures.  Its own CHECKPOINTs tell it only who is
 * still reachable; a signer may be gone (a crashed replica, a twin), and
 * then it could never certify the checkpoint it must fetch. */
void pbft_send_checkpoint_proof(struct pbft *c, uint32_t peer)
{
	uint8_t buf[2 + HM_DIGEST_LEN + HM_MAX_REPLICAS * HM_VC_CP_LEN];
	size_t len;

	if (!c->p.view_change_timeout_ms || !c->stable.own_known)
		return;
	buf[0] = HM_NV_PROOF;
	memcpy(buf + 1, c->stable.own, HM_DIGEST_LEN);
	len = pbft_put_checkpoint_proof(c, buf + 2 + HM_DIGEST_LEN, &buf[1 + HM_DIGEST_LEN]);
	if (buf[1 + HM_DIGEST_LEN] < 2 * c->p.f + 1)
		return;
	pbft_send_msg(c, PBFT_TO_REPLICA, peer, HM_MSG_NEW_VIEW, c->view, c->low, NULL, buf,
		      (uint32_t)(2 + HM_DIGEST_LEN + len));
}

/* PROOF: each signature that verifies counts as its signer's claim (the
 * same as its CHECKPOINT would); one that does not is the relayer's doing
 * and is ignored. */
int pbft_on_proof(struct pbft *c, const struct hm_msg *m, const struct hm_nv_payload *nv,
		    enum hm_drop_reason *why)
{
	unsigned good = 0;

	if (m->seq <= c->last_executed || m->seq <= c->low || m->seq % c->p.checkpoint_interval)
		return pbft_refuse(why, HM_DROP_STALE);
	for (unsigned i = 0; i < nv->ncp; i++) {
		const uint8_t *r = nv->cp + i * HM_VC_CP_LEN;
		uint32_t id = r[0];
		uint64_t view = hm_get_be64(r + 1);

		if (id >= c->p.n || id == c->p.id ||
		    !pbft_stored_sig_ok(c, HM_MSG_CHECKPOINT, id, 0, view, m->seq, nv->digest, r + 9))
			continue;
		pbft_claim_record(c, id, view, m->seq, nv->digest, r + 9);
		good++;
	}
	if (!good)
		return pbft_refuse(why, HM_DROP_STALE);
	pbft_maybe_transfer(c);
	return 0;
}

