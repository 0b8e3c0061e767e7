// SPDX-License-Identifier: MIT
/*
 * The replica state a checkpoint certifies, state transfer of a certified
 * checkpoint in Merkle-verified chunks, and recovery from a replica's own
 * files after a restart (docs/persistence.md).
 */
#include "core/pbft_internal.h"

/* ---- replica state, state transfer and recovery -------------------------- */

/*
 * The replica state a checkpoint certifies (docs/persistence.md, "The
 * replica state"): what exactly-once execution needs besides the service,
 * i.e. per client the timestamp of its last executed request and that
 * request's reply payload (deterministic: client, seq, the request's
 * digest, status, result), then the service snapshot.  All integers
 * big-endian, clients by increasing id.
 *
 *   "HMRS", u32 version 2, u32 nclients,
 *   nclients x { u32 id, u64 last_ts, u32 reply_len, reply payload },
 *   u64 service_len, service snapshot
 *
 * The reply payload names the request it answers, so that a replica
 * restored from this state re-sends a reply only to that request (and
 * refuses another at the same timestamp) exactly as the replicas that
 * executed it do.  Version 1 (before replies named their request: payload
 * u32 client, u64 seq, result) is still read, so that a replica upgraded
 * from it recovers its files: its replies are dropped (last_ts kept), and
 * a retransmission at that timestamp gets a STALE refusal.
 */
#define RS_MAGIC 0x484d5253u /* "HMRS" */
#define RS_VERSION 2
#define RS_VERSION_V1 1
#define RS_V1_REPLY_PREFIX 12

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

	uint32_t version, prefix;

	if (len < 20 || hm_get_be32(b) != RS_MAGIC)
		return -1;
	version = hm_get_be32(b + 4);
	if (version != RS_VERSION && version != RS_VERSION_V1)
		return -1;
	prefix = version == RS_VERSION ? HM_REPLY_PREFIX_LEN : RS_V1_REPLY_PREFIX;
	n = hm_get_be32(b + 8);
	for (uint32_t i = 0; i < n; i++) {
		uint32_t rl;

		if (len - off < 16)
			return -1;
		rl = hm_get_be32(b + off + 12);
		/* none, or a whole reply payload (its prefix is read) */
		if ((rl && rl < prefix) || rl > prefix + HM_MAX_RESULT || len - off - 16 < rl)
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
 * re-signed by us, in the current view; a version-1 state's are dropped). */
static int rs_restore(struct pbft *c, const uint8_t *b, size_t len)
{
	const struct hm_service *svc = c->p.service;
	struct client_rec *r, *tmp;
	const uint8_t *ss, *p = b + 12;
	size_t sl;
	bool v1;

	if (rs_check(b, len, &ss, &sl) < 0 || svc->ops->restore(svc->state, ss, sl) < 0)
		return -1;
	v1 = hm_get_be32(b + 4) == RS_VERSION_V1;
	HASH_ITER(hh, c->clients, r, tmp) {
		r->last_ts = 0;
		free(r->reply);
		r->reply = NULL;
		r->reply_len = 0;
	}
	for (uint32_t i = 0, n = hm_get_be32(b + 8); i < n; i++) {
		uint32_t rl = hm_get_be32(p + 12);

		r = pbft_client_get(c, hm_get_be32(p));
		r->last_ts = hm_get_be64(p + 4);
		if (r->queued_ts < r->last_ts)
			r->queued_ts = r->last_ts;
		if (r->pending_ts && r->pending_ts <= r->last_ts) {
			free(r->pending);
			r->pending = NULL;
			r->pending_ts = 0;
		}
		if (rl && !v1) {
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
			pbft_record_checkpoint_vote(st, votes[i].replica, votes[i].view, digest,
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
	c->dur_rotate = true; /* the vote log starts again at the new low mark */
	c->installed = seq;
	c->need_state = false;
	if (c->diverged <= seq)
		c->diverged = 0;
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		for (int k = 0; k < PBFT_CLAIMS; k++)
			if (c->claims[i][k].seq <= seq)
				c->claims[i][k].seq = 0;
	pbft_observe_far(c);
	pbft_execute_committed(c);
	if (announce) {
		/* The group is likely past the checkpoint it certified and may
		 * have gone quiet: ask now rather than wait for new traffic to
		 * name a higher seq (issue 17 item 6). */
		pbft_send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_STATUS, 0, c->view,
				  c->last_executed, (const uint8_t[HM_DIGEST_LEN]){ 0 }, NULL, 0);
		if (c->p.view_change_timeout_ms)
			pbft_fetch_committed(c);
		c->far_seen = true; /* one more STATUS next round if nothing executes */
		if (!c->next_retransmit)
			c->next_retransmit = c->now + (uint64_t)c->p.retransmit_ms * 1000;
	}
	return 0;
}

/* The stable checkpoint as persistence stores it: the votes on our digest
 * whose signatures verify (normal-case CHECKPOINTs are only MAC-checked, so
 * a faulty peer's bad signature is left out here, as put_checkpoint_proof
 * does for VIEW-CHANGEs; recovery checks the proof again). */
void pbft_stable_proof(struct pbft *c, struct hm_checkpoint *out)
{
	struct checkpoint_rec *st = &c->stable;

	memset(out, 0, sizeof(*out));
	out->seq = st->seq;
	out->view = c->view;
	memcpy(out->digest, st->own, HM_DIGEST_LEN);
	for (uint32_t i = 0; i < c->p.n; i++)
		if ((st->voted >> i & 1) && memcmp(st->digests[i], st->own, HM_DIGEST_LEN) == 0 &&
		    (!c->p.replica_keys ||
		     pbft_stored_sig_ok(c, HM_MSG_CHECKPOINT, i, 0, st->views[i], st->seq, st->own,
				   st->sigs[i]))) {
			struct hm_cp_vote *v = &out->votes[out->nvotes++];

			v->replica = i;
			v->view = st->views[i];
			memcpy(v->sig, st->sigs[i], HM_SIG_LEN);
		}
	out->snap = st->snap;
	out->snap_len = st->snap_len;
}

void pbft_claim_record(struct pbft *c, uint32_t sender, uint64_t view, uint64_t seq,
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
			    hm_voters_t *voters, const struct cp_claim **which)
{
	bool found = false;

	for (uint32_t i = 0; i < c->p.n; i++)
		for (int k = 0; k < PBFT_CLAIMS; k++) {
			const struct cp_claim *a = &c->claims[i][k];
			hm_voters_t v = 0;

			if (!a->seq || (a->seq <= c->last_executed && a->seq != c->diverged) ||
			    (found && a->seq <= *seq))
				continue;
			for (uint32_t j = 0; j < c->p.n; j++)
				for (int l = 0; l < PBFT_CLAIMS; l++) {
					const struct cp_claim *b = &c->claims[j][l];

					if (b->seq == a->seq &&
					    memcmp(b->digest, a->digest, HM_DIGEST_LEN) == 0) {
						v |= (hm_voters_t)(1u << j);
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

void pbft_st_release(struct pbft *c)
{
	if (c->st_running)
		hm_st_free(&c->st);
	c->st_running = false;
}


/*
 * Fetch a certified state when the log cannot bring us there: it is beyond
 * our window (peers have collected the slots), or we made no progress for
 * four retransmit rounds, or recovery found our files incomplete.  The 2f+1
 * CHECKPOINT signatures are verified first (they become the stable
 * checkpoint's proof, persisted and carried in our VIEW-CHANGEs).
 */
void pbft_maybe_transfer(struct pbft *c)
{
	const struct cp_claim *which[HM_MAX_REPLICAS] = { 0 };
	struct hm_cp_vote votes[HM_MAX_REPLICAS];
	uint8_t digest[HM_DIGEST_LEN];
	hm_voters_t voters = 0;
	uint64_t seq = 0;
	uint32_t nvotes = 0;
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
	/* Collected apart: a transfer already running keeps the proof it
	 * started with until this one replaces it (a bad signature here must
	 * not leave it installing a checkpoint without its proof). */
	for (uint32_t i = 0; i < c->p.n; i++) {
		const struct cp_claim *a = which[i];

		if (!(voters >> i & 1))
			continue;
		if (!pbft_stored_sig_ok(c, HM_MSG_CHECKPOINT, i, 0, a->view, seq, digest, a->sig)) {
			pbft_proven_faulty(c, i);
			memset(c->claims[i], 0, sizeof(c->claims[i]));
			return; /* the others' claims still stand; next round */
		}
		votes[nvotes] = (struct hm_cp_vote){ .replica = i, .view = a->view };
		memcpy(votes[nvotes++].sig, a->sig, HM_SIG_LEN);
	}
	t = (struct hm_st_target){ .seq = seq, .total_len = HM_ST_LEN_UNKNOWN };
	memcpy(t.digest, digest, HM_DIGEST_LEN);
	prm = (struct hm_st_params){
		.peers = voters & ~(1u << c->p.id),
		.timeout_ms = 4 * c->p.retransmit_ms,
	};
	pbft_st_release(c);
	if (hm_st_start(&c->st, &t, &prm) < 0)
		return;
	memcpy(c->st_votes, votes, nvotes * sizeof(votes[0]));
	c->st_nvotes = nvotes;
	c->st_running = true;
	c->stats.state_transfers_started++;
	pbft_st_tick(c);
}

/* Hand out STATE_REQUESTs; install the state once it is complete. */
void pbft_st_tick(struct pbft *c)
{
	struct hm_st_send out[16];
	size_t k;

	do {
		k = hm_st_tick(&c->st, c->now / 1000, out, 16);
		for (size_t i = 0; i < k; i++) {
			uint8_t buf[HM_ST_REQUEST_LEN];
			size_t len = hm_st_request_encode(buf, sizeof(buf), &out[i].req);

			pbft_send_msg(c, PBFT_TO_REPLICA, out[i].peer, HM_MSG_STATE_REQUEST, c->view,
				 out[i].req.seq, NULL, buf, (uint32_t)len);
		}
	} while (k == 16);
	if (c->st.state == HM_ST_DONE) {
		uint64_t len;
		uint64_t seq = c->st.target.seq;
		uint8_t digest[HM_DIGEST_LEN];
		uint8_t *snap = hm_st_take(&c->st, &len);

		memcpy(digest, c->st.target.digest, HM_DIGEST_LEN);
		pbft_st_release(c);
		if (snap && !(seq > c->last_executed || (c->diverged && seq == c->diverged))) {
			/* We executed past it meanwhile (from the log): not needed. */
			free(snap);
			snap = NULL;
		}
		if (snap &&
		    install_state(c, seq, digest, c->st_votes, c->st_nvotes, snap, len, true) == 0)
			c->stats.state_transfers_done++;
		else
			c->stats.state_transfers_failed++;
	} else if (c->st.state == HM_ST_FAILED) {
		pbft_st_release(c);
		c->stats.state_transfers_failed++;
	}
}

/* Serve a chunk of our stable checkpoint's state; at most 64 chunks per
 * peer per retransmit interval (each answer is up to 17 KB). */
int pbft_on_state_request(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	uint8_t *buf;
	struct hm_st_request req;
	size_t len;

	if (hm_st_request_from_msg(m, &req) < 0)
		return pbft_refuse(why, HM_DROP_MALFORMED);
	if (c->now >= c->served_at[m->sender] + (uint64_t)c->p.retransmit_ms * 1000) {
		c->served_at[m->sender] = c->now;
		c->served[m->sender] = 0;
	}
	if (c->served[m->sender] >= 64)
		return pbft_refuse(why, HM_DROP_RATE_LIMITED);
	if (!c->stable.snap || req.seq != c->stable.seq)
		return pbft_refuse(why, HM_DROP_STALE);
	if (!c->srv_ok || c->srv.seq != c->stable.seq) {
		if (c->srv_ok)
			hm_st_server_free(&c->srv);
		c->srv_ok = hm_st_server_init(&c->srv, c->stable.seq, c->stable.snap,
					      c->stable.snap_len) == 0;
		if (!c->srv_ok)
			return pbft_refuse(why, HM_DROP_STALE);
	}
	buf = malloc(HM_ST_CHUNK_MAX_PAYLOAD);
	if (!buf)
		abort();
	len = hm_st_serve(&c->srv, &req, buf, HM_ST_CHUNK_MAX_PAYLOAD);
	if (len)
		pbft_send_msg(c, PBFT_TO_REPLICA, m->sender, HM_MSG_STATE_CHUNK, c->view, req.seq, NULL,
			 buf, (uint32_t)len);
	free(buf);
	if (!len)
		return pbft_refuse(why, HM_DROP_STALE);
	c->served[m->sender]++;
	c->stats.state_chunks_served++;
	return 0;
}

int pbft_on_state_chunk(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	enum hm_st_verdict v;

	if (!c->st_running)
		return pbft_refuse(why, HM_DROP_STALE);
	v = hm_st_on_payload(&c->st, m->sender, m->payload, m->payload_len);
	if (v == HM_ST_BAD_CHUNK) {
		/* Its link MAC says it came from m->sender, and no correct
		 * replica serves data that does not hash to the certified
		 * digest: the fetcher never asks it again. */
		c->stats.state_bad_chunks++;
		c->stats.state_blamed |= (hm_voters_t)(1u << m->sender);
	}
	pbft_st_tick(c);
	if (v == HM_ST_BAD_CHUNK)
		return pbft_refuse(why, HM_DROP_MALFORMED);
	if (v == HM_ST_STALE || v == HM_ST_FROM_FAULTY || v == HM_ST_NOT_RUNNING)
		return pbft_refuse(why, HM_DROP_STALE);
	if (v == HM_ST_DUPLICATE)
		return pbft_refuse(why, HM_DROP_DUPLICATE);
	return 0;
}

bool pbft_transferring(const struct pbft *c) { return c->st_running; }
uint64_t pbft_silent_until(const struct pbft *c) { return c->silent_until; }
bool pbft_restart_silent(const struct pbft *c) { return c->restarted; }

uint64_t pbft_recover(struct pbft *c, const struct hm_checkpoint *cp,
		      const struct hm_log_record *records, size_t n, bool complete,
		      bool restarted, uint64_t seq_hint, const struct hm_vote_record *votes,
		      size_t nvotes, bool votes_intact, bool *incomplete)
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
		if (r->seq != c->last_executed + 1 || !pbft_in_window(c, r->seq) ||
		    memcmp(d, r->digest, HM_DIGEST_LEN) != 0 ||
		    hm_batch_validate(r->batch, r->batch_len, c->p.max_message_size) < 0) {
			*incomplete = true;
			break;
		}
		if (r->view > c->view)
			c->view = r->view;
		e = pbft_entry_claim(c, r->seq);
		pbft_entry_set_batch(e, r->batch, r->batch_len, r->digest);
		e->view = r->view;
		e->has_pp = e->prepared = e->commit_quorum = e->committed = true;
		pbft_execute_committed(c);
	}
	c->vc_target = c->view;
	c->need_state = *incomplete;
	/* What we sent before: the view state, our PRE-PREPAREs, PREPAREs,
	 * certificates, COMMITs and VIEW-CHANGE (a damaged log's valid prefix
	 * too: every record in it is true).  A silent rule recorded by an
	 * earlier restart comes back with it. */
	pbft_votes_restore(c, votes, nvotes);
	/* Without an intact vote log, the silent rule: before the crash we
	 * voted at most up to our window then, whose low end was at most the
	 * newest checkpoint we persisted (one is persisted before any message
	 * of the Ready that made it stable). */
	if (restarted && !votes_intact) {
		uint64_t until = ((cp && cp->seq > seq_hint) ? cp->seq : seq_hint) + c->p.window;

		if (until > c->silent_until)
			c->silent_until = until;
		c->restarted = true;
		if (c->view > c->mute_view)
			c->mute_view = c->view;
	}
	/* Restarted as its view's primary: it does not lead that view
	 * (pbft_acting_primary says why). */
	if (restarted && pbft_is_primary(c) && !c->restarted) {
		c->mute_lead = true;
		c->mute_view = c->view;
	}
	if (restarted) {
		/* Ask how far the group got: a quiet group would not tell us,
		 * and the answers (CHECKPOINTs, committed slots) start the
		 * catch-up; one more STATUS follows if nothing executes. */
		pbft_send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_STATUS, 0, c->view, c->last_executed,
			     (const uint8_t[HM_DIGEST_LEN]){ 0 }, NULL, 0);
		c->far_seen = true;
	}
	if (c->next_seq < c->last_executed)
		c->next_seq = c->last_executed;
	pbft_votes_resend(c);
	c->window_changed = true;
	c->dur_rotate = true; /* a fresh vote log holding what was restored */
	return c->last_executed;
}

