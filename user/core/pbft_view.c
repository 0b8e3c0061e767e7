// SPDX-License-Identifier: MIT
/*
 * PBFT view changes (Castro-Liskov TOCS'02, 4.4) with signed certificates:
 * the request timer, VIEW-CHANGE and its checks, O, NEW-VIEW, catch-up of
 * what committed across views.  The design, the datagram-size scheme and
 * the safety argument for each departure are in docs/protocol.md.
 */
#include "core/pbft_internal.h"

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

const struct hm_hdr *pbft_dgram_hdr(const uint8_t *d)
{
	return (const struct hm_hdr *)d;
}

void pbft_vc_rec_clear(struct vc_rec *r)
{
	for (unsigned i = 0; i < HM_VC_MAX_PARTS; i++)
		free(r->part[i]);
	free(r->sums);
	memset(r, 0, sizeof(*r));
}

struct vc_rec *pbft_vc_find(const struct pbft *c, uint32_t j, uint64_t view)
{
	if (j >= c->p.n || !view)
		return NULL;
	for (unsigned k = 0; k < PBFT_VC_RING; k++)
		if (c->vcs[j][k].view == view)
			return (struct vc_rec *)&c->vcs[j][k];
	return NULL;
}

struct vc_rec *pbft_vc_own(const struct pbft *c, uint64_t view)
{
	return pbft_vc_find(c, c->p.id, view);
}

struct vc_rec *pbft_vc_slot(struct pbft *c, uint32_t j, uint64_t view)
{
	struct vc_rec *r = pbft_vc_find(c, j, view), *low = NULL;

	if (r)
		return r;
	for (unsigned k = 0; k < PBFT_VC_RING; k++) {
		r = &c->vcs[j][k];
		if (!r->view)
			break;
		if (!low || r->view < low->view)
			low = r;
		r = NULL;
	}
	if (!r) {
		if (low->view > view)
			return NULL;
		r = low;
	}
	pbft_vc_rec_clear(r);
	r->view = view;
	return r;
}

/* j's VIEW-CHANGE for the highest view we hold from it (NULL: none). */
static const struct vc_rec *vc_newest(const struct pbft *c, uint32_t j)
{
	const struct vc_rec *best = NULL;

	for (unsigned k = 0; k < PBFT_VC_RING; k++)
		if (c->vcs[j][k].view && c->vcs[j][k].nparts &&
		    (!best || c->vcs[j][k].view > best->view))
			best = &c->vcs[j][k];
	return best;
}

/* Records for views below the one installed are no use any more; those of
 * the installed view stay (a laggard that catches up checks its NEW-VIEW
 * against them, and we answer its FETCH from them). */
static void vc_prune(struct pbft *c, uint64_t view)
{
	for (uint32_t j = 0; j < c->p.n; j++)
		for (unsigned k = 0; k < PBFT_VC_RING; k++)
			if (c->vcs[j][k].view && c->vcs[j][k].view < view)
				pbft_vc_rec_clear(&c->vcs[j][k]);
}

void pbft_memo_clear(struct pbft *c)
{
	struct sig_memo *m, *tmp;

	HASH_ITER(hh, c->memo, m, tmp) {
		HASH_DEL(c->memo, m);
		free(m);
	}
}

/* A copy of a stored datagram for the Ready, with the given flags. */
void pbft_emit_copy(struct pbft *c, enum pbft_dest dest, uint32_t to, const uint8_t *dgram,
		      size_t len, uint16_t flags)
{
	uint8_t *buf = malloc(len);

	if (!buf)
		abort();
	memcpy(buf, dgram, len);
	buf[6] = (uint8_t)(flags >> 8);
	buf[7] = (uint8_t)flags;
	pbft_emit(c, dest, to, buf, len);
	if (!c->next_retransmit)
		c->next_retransmit = c->now + (uint64_t)c->p.retransmit_ms * 1000;
}

/* Throttle: true (and the clock restarted) at most once per retransmit
 * interval per slot. */
bool pbft_throttle_ok(const struct pbft *c, uint64_t *at)
{
	if (*at && c->now < *at + (uint64_t)c->p.retransmit_ms * 1000)
		return false;
	*at = c->now ? c->now : 1;
	return true;
}

/* Does a full VIEW-CHANGE fit (HM_VC_MAX_PARTS datagrams for a window of
 * certificates with 2f PREPAREs each, a head with 2f+1 checkpoint
 * signatures), and a NEW-VIEW? */
bool pbft_vc_fits(const struct pbft_params *p)
{
	/* A part must also fit relayed inside a NEW_VIEW datagram (HM_NV_VC). */
	size_t room = p->max_message_size > HM_HDR_LEN + HM_NV_VC_OVERHEAD
			      ? p->max_message_size - HM_HDR_LEN - HM_NV_VC_OVERHEAD
			      : 0;
	/* a certificate and a vote report per seq (fast_report) */
	size_t el = 2 * HM_VC_ENTRY_FIXED + (size_t)2 * p->f * HM_SIG_LEN;
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
bool pbft_stored_sig_ok(struct pbft *c, uint8_t type, uint32_t signer, uint32_t plen,
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
		pbft_memo_clear(c);
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

void pbft_proven_faulty(struct pbft *c, uint32_t replica)
{
	if (replica < c->p.n)
		c->stats.proven_faulty |= (hm_voters_t)(1u << replica);
}

/* ---- PRE-PREPAREs ahead of their NEW-VIEW ---------------------------- */

/* The new primary sends its NEW-VIEW and its first PRE-PREPAREs together;
 * one that overtakes the NEW-VIEW would otherwise be lost for good if the
 * others commit its slot without us (the primary re-sends only slots it has
 * not committed). */
int pbft_stash_early(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	uint8_t *copy;

	for (size_t i = 0; i < c->n_early; i++)
		if (hm_get_be64(c->early[i] + HM_OFF_SEQ) == m->seq)
			return pbft_refuse(why, HM_DROP_DUPLICATE);
	if (c->n_early >= c->p.window)
		return pbft_refuse(why, HM_DROP_RATE_LIMITED);
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

void pbft_early_clear(struct pbft *c)
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
			pbft_on_pre_prepare(c, &m, &why);
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

/* A mark lives until a request of its client at or above its timestamp
 * executes.  A newer request from the same client does not end it: the
 * client still waits, and were the timer to restart with each newer
 * request, a client that re-submits under fresh timestamps faster than the
 * (backed-off) view-change timeout would never let a backup suspect a
 * primary that serves none of them (test_byzantine randomized_faults seed
 * 510, kv-skew).  The newer request gets its own mark as well. */
static bool pend_live(const struct pbft *c, const struct pending_mark *pm)
{
	const struct client_rec *r = client_find(c, pm->client);

	return r && pm->ts <= r->pending_ts && pm->ts > r->last_ts;
}

/* The oldest pending request's mark, dropping dead marks before it. */
static struct pending_mark *pend_oldest(struct pbft *c)
{
	while (c->pend_head < c->pend_len && !pend_live(c, &c->pend[c->pend_head]))
		c->pend_head++;
	return c->pend_head < c->pend_len ? &c->pend[c->pend_head] : NULL;
}

void pbft_keep_pending(struct client_rec *r, const struct hm_msg *m)
{
	if (m->seq <= r->pending_ts)
		return;
	free(r->pending);
	r->pending = malloc(m->len);
	if (!r->pending)
		abort();
	memcpy(r->pending, m->hdr, m->len);
	memset(((struct hm_hdr *)r->pending)->mac, 0, HM_MAC_LEN);
	r->pending_len = m->len;
	r->pending_ts = m->seq;
}

void pbft_time_pending(struct pbft *c, struct client_rec *r)
{
	if (c->p.view_change_timeout_ms && r->pending_ts > r->last_ts)
		pend_push(c, r->id, r->pending_ts, c->now);
}

void pbft_track_pending(struct pbft *c, struct client_rec *r, const struct hm_msg *m)
{
	if (!c->p.view_change_timeout_ms || m->seq <= r->pending_ts)
		return;
	pbft_keep_pending(r, m);
	pbft_time_pending(c, r);
}

static uint64_t vc_deadline(const struct pbft *c);

/* How long a pending request may wait before this replica starts a view
 * change: the view-change timeout at a backup; four times that at the
 * acting primary, whose own timer is the last resort.  Without it a
 * primary whose view cannot commit (its backups moved on to a view change
 * it never heard enough of, while the others executed everything they
 * know and so wait for nothing) would wait for ever, and nobody else
 * would ever time out (the soak's seed 6204; docs/protocol.md, "The
 * primary's own timer").  Four times, so that in every ordinary case the
 * backups decide first, as in the paper. */
static uint64_t request_timeout_us(const struct pbft *c)
{
	return (pbft_acting_primary(c) ? 4 : 1) * vc_timeout_us(c);
}

uint64_t pbft_vc_deadline(const struct pbft *c)
{
	uint64_t t = vc_deadline(c), cu;

	if (!c->p.view_change_timeout_ms || !c->cu_view)
		return t;
	cu = c->cu_at + vc_timeout_us(c);
	return t && t < cu ? t : cu;
}

static uint64_t vc_deadline(const struct pbft *c)
{
	if (!c->p.view_change_timeout_ms)
		return 0;
	if (c->in_vc)
		return c->vc_timer_at ? c->vc_timer_at + vc_timeout_us(c) : 0;
	for (size_t i = c->pend_head; i < c->pend_len; i++)
		if (pend_live(c, &c->pend[i]))
			return c->pend[i].since + request_timeout_us(c);
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
bool pbft_cert_prepares(struct pbft *c, struct log_entry *e, hm_voters_t *voters,
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
						e->seq, (hm_voters_t)(1u << i), sigs) == 0)
				sig = sigs[i];
			else
				continue;
			if (pbft_stored_sig_ok(c, HM_MSG_PREPARE, i, 0, e->cert_view, e->seq,
					  e->cert_digest, sig)) {
				*voters |= (hm_voters_t)(1u << i);
				memcpy(out[i], sig, HM_SIG_LEN);
				got++;
			} else if (kept) {
				pbft_proven_faulty(c, i);
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

	if (!pbft_stored_sig_ok(c, HM_MSG_PRE_PREPARE, prim, e->cert_pp_len, e->cert_view, e->seq,
			   e->cert_digest, e->cert_pp_sig)) {
		pbft_proven_faulty(c, prim);
		return false;
	}
	if (!pbft_cert_prepares(c, e, &out->voters, sigs)) {
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

static void sum_add(struct vc_rec *r, uint64_t seq, uint64_t view, const uint8_t *digest,
		    bool report)
{
	struct vc_sum *p = realloc(r->sums, (r->n_sums + 1) * sizeof(*r->sums));

	if (!p)
		abort();
	r->sums = p;
	p[r->n_sums].seq = seq;
	p[r->n_sums].view = view;
	p[r->n_sums].report = report;
	memcpy(p[r->n_sums++].digest, digest, HM_DIGEST_LEN);
}

/* The checkpoint proof: 2f+1 good signatures on our stable state digest. */
size_t pbft_put_checkpoint_proof(struct pbft *c, uint8_t *buf, uint8_t *ncp)
{
	const struct checkpoint_rec *cp = &c->stable;
	size_t len = 0;

	*ncp = 0;
	if (c->low == 0 || cp->seq != c->low)
		return 0;
	for (uint32_t i = 0; i < c->p.n && *ncp < 2 * c->p.f + 1; i++) {
		if (!(cp->voted >> i & 1) || memcmp(cp->digests[i], cp->own, HM_DIGEST_LEN) != 0)
			continue;
		if (!pbft_stored_sig_ok(c, HM_MSG_CHECKPOINT, i, 0, cp->views[i], cp->seq, cp->own,
				   cp->sigs[i])) {
			pbft_proven_faulty(c, i);
			continue;
		}
		len += hm_vc_cp_put(buf + len, HM_VC_CP_LEN, i, cp->views[i], cp->sigs[i]);
		(*ncp)++;
	}
	return len;
}

/*
 * The fast path's vote report for e (docs/protocol.md, "The fast path"):
 * our latest vote at e->seq, as an entry with no PREPARE signatures
 * (voters 0, pp_len 0, pp_sig zero), sent only when our certificate `cert`
 * (NULL: none sent) does not already say it: a certificate of view v
 * counts as its sender's vote in v.  Sent whether or not this replica runs
 * the fast path itself: a fast commit anywhere relies on every correct
 * replica's report (a cluster switching the fast path on by a rolling
 * restart is mixed for a while).
 */
static bool fast_report(const struct log_entry *e, const struct hm_vc_entry *cert,
			struct hm_vc_entry *out, const uint8_t *zero_sig)
{
	if (!e->has_vote || (cert && cert->view >= e->vote_view))
		return false;
	*out = (struct hm_vc_entry){ .seq = e->seq, .view = e->vote_view,
				     .digest = e->vote_digest, .pp_sig = zero_sig };
	return true;
}

/* Build, store and send our VIEW-CHANGE for c->vc_target: parts 1.. carry
 * the prepared certificates, the head carries the checkpoint proof and the
 * digests of the parts, and its signature covers them all. */
static void send_view_change(struct pbft *c)
{
	struct vc_rec *r;
	/* room for a relayed copy too (HM_NV_VC; pbft_vc_fits() checked it) */
	size_t room = c->p.max_message_size - HM_HDR_LEN - HM_NV_VC_OVERHEAD;
	size_t pl[HM_VC_MAX_PARTS] = { 0 }, hl;
	uint8_t *pp[HM_VC_MAX_PARTS] = { 0 }, sigbuf[HM_MAX_REPLICAS * HM_SIG_LEN], *head;
	uint16_t cnt[HM_VC_MAX_PARTS] = { 0 };
	unsigned np = 1;

	/* One head per view, ever: a VIEW-CHANGE we already signed for this
	 * view (kept by the vote log across a restart) is sent again, never
	 * rebuilt; a second, different one would be proof against us. */
	r = pbft_vc_own(c, c->vc_target);
	if (r && r->nparts && r->have == parts_mask(r->nparts)) {
		for (unsigned i = 0; i < r->nparts; i++)
			pbft_emit_copy(c, PBFT_TO_REPLICAS, 0, r->part[i], r->part_len[i], 0);
		return;
	}
	/* Our VIEW-CHANGEs for lower views stay in the ring: a NEW-VIEW of such
	 * a view may name one, and peers still changing to it need it. */
	r = pbft_vc_slot(c, c->p.id, c->vc_target);
	if (!r)
		return; /* the ring holds only higher views: never (the target only grows) */
	pbft_vc_rec_clear(r);
	r->view = c->vc_target;
	r->n = c->low;
	for (uint64_t seq = c->low + 1; seq <= c->low + c->p.window; seq++) {
		struct log_entry *e = pbft_entry_at(c, seq);
		struct hm_vc_entry ent[2];
		uint8_t zero_sig[HM_SIG_LEN] = { 0 };
		unsigned k = 0;
		size_t el = 0;

		if (e->seq != seq)
			continue;
		if (e->has_cert && vc_entry_of(c, e, &ent[k], sigbuf))
			el += hm_vc_entry_len(ent[k++].voters);
		if (fast_report(e, k ? &ent[0] : NULL, &ent[k], zero_sig))
			el += hm_vc_entry_len(ent[k++].voters);
		if (!k)
			continue;
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
		for (unsigned i = 0; i < k; i++) {
			pl[np - 1] += hm_vc_entry_put(pp[np - 1] + pl[np - 1], room - pl[np - 1],
						      &ent[i]);
			cnt[np - 1]++;
			sum_add(r, ent[i].seq, ent[i].view, ent[i].digest, ent[i].voters == 0);
		}
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
	hl += 1 + pbft_put_checkpoint_proof(c, head + hl + 1, &head[hl]);
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
		pbft_emit_copy(c, PBFT_TO_REPLICAS, 0, r->part[i], r->part_len[i], 0);
		free(pp[i]);
	}
	r->nparts = (uint8_t)np;
	r->have = parts_mask(np);
	r->checked = r->valid = true;
	pbft_dur_vc(c, r);
}

/* ---- checking a VIEW-CHANGE ------------------------------------------- */

static bool vc_entry_ok(struct pbft *c, const struct vc_rec *r, uint64_t n,
			const struct hm_vc_entry *e, uint8_t *used)
{
	uint32_t prim = pbft_primary(c, e->view), k = 0;

	uint8_t kind = e->voters ? 1 : 2; /* a certificate, or a vote report */

	if (e->seq <= n || e->seq > n + c->p.window || e->view >= r->view ||
	    (used[e->seq - n - 1] & kind))
		return false;
	used[e->seq - n - 1] |= kind;
	if (kind == 2) /* signed by the VIEW-CHANGE's head; counted only f+1 times over */
		return e->pp_len == 0;
	if ((uint32_t)__builtin_popcount(e->voters) != 2 * c->p.f || (e->voters >> prim & 1) ||
	    (e->voters & ~HM_ALL_VOTERS(c->p.n)) != 0)
		return false;
	if (!pbft_stored_sig_ok(c, HM_MSG_PRE_PREPARE, prim, e->pp_len, e->view, e->seq, e->digest,
			   e->pp_sig))
		return false;
	for (uint32_t i = 0; i < c->p.n; i++)
		if ((e->voters >> i & 1) &&
		    !pbft_stored_sig_ok(c, HM_MSG_PREPARE, i, 0, e->view, e->seq, e->digest,
				   e->sigs + HM_SIG_LEN * k++))
			return false;
	return true;
}

/* A complete VIEW-CHANGE from j: its head signature, checkpoint proof and
 * every certificate.  The head is signed and binds the parts by digest, and
 * its MAC proves j sent it, so any defect is j's. */
static bool vc_validate(struct pbft *c, uint32_t j, struct vc_rec *r)
{
	const struct hm_hdr *h = pbft_dgram_hdr(r->part[0]);
	uint64_t n = hm_get_be64((const uint8_t *)&h->seq);
	struct hm_vc_payload v;
	hm_voters_t seen = 0;
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
		seen |= (hm_voters_t)(1u << id);
		good += pbft_stored_sig_ok(c, HM_MSG_CHECKPOINT, id, 0, view, n, v.cp_digest, sig);
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
				sum_add(r, e.seq, e.view, e.digest, e.voters == 0);
		}
	}
	free(used);
	if (ok)
		return true;
bad:
	free(r->sums);
	r->sums = NULL;
	r->n_sums = 0;
	pbft_proven_faulty(c, j);
	return false;
}

static void vc_check(struct pbft *c, uint32_t j, struct vc_rec *r)
{
	if (r->checked || !r->nparts || r->have != parts_mask(r->nparts))
		return;
	r->checked = true;
	r->valid = vc_validate(c, j, r);
	if (!r->valid)
		c->stats.view_changes_refused++;
}

/* ---- O: what the new view proposes ------------------------------------ */

/*
 * The fast path's choice at seq lo + 1 + x (docs/protocol.md, "The fast
 * path", rule F): each referenced VIEW-CHANGE says its sender's latest vote
 * there (its vote report, or its certificate: a certificate of view v
 * counts as a vote in v; the later of the two).  A digest's standing is
 * the (f+1)-th highest view among its reporters (at least one of them
 * correct); the best standing wins, a tie going to the lower digest.
 * Returns false when no digest has f+1 reporters.
 */
static bool fast_choice(const struct pbft *c, unsigned nrefs, const uint64_t *rv,
			const uint8_t *const *rd, uint64_t *view, uint8_t digest[HM_DIGEST_LEN])
{
	bool found = false;

	for (unsigned a = 0; a < nrefs; a++) {
		uint64_t top[HM_MAX_REPLICAS];
		unsigned k = 0;

		if (!rv[a])
			continue;
		/* the views of every reporter of rd[a], sorted down */
		for (unsigned b = 0; b < nrefs; b++) {
			if (!rv[b] || memcmp(rd[a], rd[b], HM_DIGEST_LEN) != 0)
				continue;
			unsigned i = k++;

			for (; i > 0 && top[i - 1] < rv[b]; i--)
				top[i] = top[i - 1];
			top[i] = rv[b];
		}
		if (k < c->p.f + 1)
			continue;
		if (!found || top[c->p.f] - 1 > *view ||
		    (top[c->p.f] - 1 == *view && memcmp(rd[a], digest, HM_DIGEST_LEN) < 0)) {
			found = true;
			*view = top[c->p.f] - 1;
			memcpy(digest, rd[a], HM_DIGEST_LEN);
		}
	}
	return found;
}

/* Rule F over the whole range: where a digest's standing is above the
 * certificate chosen (or there is none), it replaces it.  A tie in view
 * keeps the certificate: a value fast-committed in view w leaves no other
 * digest a certificate or a standing at w or above. */
static void fast_apply(const struct pbft *c, uint64_t view, const uint8_t *ids, unsigned nrefs,
		       uint64_t lo, uint64_t span, uint8_t (*o)[HM_DIGEST_LEN], uint64_t *views,
		       bool *set)
{
	/* rv[i * span + x]: ref i's latest vote view + 1 at seq lo + 1 + x */
	uint64_t *rv = calloc(nrefs * span + 1, sizeof(*rv));
	const uint8_t **rd = calloc(nrefs * span + 1, sizeof(*rd));

	if (!rv || !rd)
		abort();
	for (unsigned i = 0; i < nrefs; i++) {
		const struct vc_rec *r = pbft_vc_find(c, ids[i], view);

		for (size_t k = 0; k < r->n_sums; k++) {
			const struct vc_sum *sm = &r->sums[k];
			size_t at = i * span + (sm->seq - lo - 1);

			if (sm->seq <= lo || rv[at] > sm->view)
				continue;
			rv[at] = sm->view + 1;
			rd[at] = sm->digest;
		}
	}
	for (uint64_t x = 0; x < span; x++) {
		uint64_t col_v[HM_MAX_REPLICAS], fv = 0;
		const uint8_t *col_d[HM_MAX_REPLICAS];
		uint8_t fd[HM_DIGEST_LEN];

		for (unsigned i = 0; i < nrefs; i++) {
			col_v[i] = rv[i * span + x];
			col_d[i] = rd[i * span + x];
		}
		if (!fast_choice(c, nrefs, col_v, col_d, &fv, fd) || (set[x] && fv <= views[x]))
			continue;
		set[x] = true;
		views[x] = fv;
		memcpy(o[x], fd, HM_DIGEST_LEN);
	}
	free(rv);
	free(rd);
}

/* From the VIEW-CHANGEs of replicas ids[]: min-s (the latest stable
 * checkpoint), max-s (the highest seq given a digest), and for each seq
 * between the digest prepared in the highest view (or rule F's choice when it
 * stands higher: the fast path), or the null request.  Returns
 * the digests (max-s - min-s of them, caller frees) and H(O). */
static uint8_t (*nv_compute(const struct pbft *c, uint64_t view, const uint8_t *ids, unsigned nrefs,
			    uint64_t *min_s, uint64_t *max_s, uint8_t o_digest[HM_DIGEST_LEN]))[HM_DIGEST_LEN]
{
	uint64_t lo = 0, hi, top, span, count, *views;
	uint8_t (*o)[HM_DIGEST_LEN], null_digest[HM_DIGEST_LEN];
	bool *set;

	/* The caller made sure every referenced VIEW-CHANGE is held. */
	for (unsigned i = 0; i < nrefs; i++)
		if (pbft_vc_find(c, ids[i], view)->n > lo)
			lo = pbft_vc_find(c, ids[i], view)->n;
	top = lo;
	for (unsigned i = 0; i < nrefs; i++) {
		const struct vc_rec *r = pbft_vc_find(c, ids[i], view);

		for (size_t k = 0; k < r->n_sums; k++)
			if (r->sums[k].seq > top)
				top = r->sums[k].seq;
	}
	span = top - lo;
	o = calloc(span + 1, HM_DIGEST_LEN);
	views = calloc(span + 1, sizeof(*views));
	set = calloc(span + 1, sizeof(*set));
	if (!o || !views || !set)
		abort();
	for (unsigned i = 0; i < nrefs; i++) {
		const struct vc_rec *r = pbft_vc_find(c, ids[i], view);

		for (size_t k = 0; k < r->n_sums; k++) {
			const struct vc_sum *s = &r->sums[k];
			uint64_t x = s->seq - lo - 1;

			if (s->seq <= lo || s->report)
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
	/* always, fast path configured here or not: O must come out the same
	 * at every replica, and a fast commit elsewhere relies on rule F */
	fast_apply(c, view, ids, nrefs, lo, span, o, views, set);
	hi = lo;
	for (uint64_t x = 0; x < span; x++)
		if (set[x])
			hi = lo + 1 + x;
	count = hi - lo;
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
static void adopt_checkpoint(struct pbft *c, uint64_t view, uint64_t min_s, const uint8_t *ids,
			     unsigned nrefs)
{
	struct checkpoint_rec *cp = pbft_checkpoint_get(c, min_s, false);
	struct hm_vc_payload v;

	if (c->last_executed < min_s && c->low < min_s) {
		/* Behind the new view's checkpoint: its proof certifies the
		 * state we fetch by state transfer. */
		for (unsigned i = 0; i < nrefs; i++) {
			const struct vc_rec *r = pbft_vc_find(c, ids[i], view);

			if (!r || r->n != min_s ||
			    hm_vc_parse(r->part[0] + HM_HDR_LEN, r->part_len[0] - HM_HDR_LEN, &v) < 0)
				continue;
			for (unsigned k = 0; k < v.ncp; k++) {
				uint32_t id;
				uint64_t view;
				const uint8_t *sig;

				hm_vc_cp_get(&v, k, &id, &view, &sig);
				if (id < c->p.n && id != c->p.id)
					pbft_claim_record(c, id, view, min_s, v.cp_digest, sig);
			}
		}
		c->need_state = true;
		pbft_maybe_transfer(c);
		return;
	}
	if (c->low >= min_s || c->last_executed < min_s || !cp || !cp->own_known)
		return;
	for (unsigned i = 0; i < nrefs; i++) {
		const struct vc_rec *r = pbft_vc_find(c, ids[i], view);

		if (!r || r->n != min_s || memcmp(r->cp_digest, cp->own, HM_DIGEST_LEN) != 0 ||
		    hm_vc_parse(r->part[0] + HM_HDR_LEN, r->part_len[0] - HM_HDR_LEN, &v) < 0)
			continue;
		for (unsigned k = 0; k < v.ncp; k++) {
			uint32_t id;
			uint64_t view;
			const uint8_t *sig;

			hm_vc_cp_get(&v, k, &id, &view, &sig);
			if (id < c->p.n)
				pbft_record_checkpoint_vote(cp, id, view, v.cp_digest, sig);
		}
		pbft_make_stable(c, cp);
		return;
	}
}

/* New primary: propose seq s of O again in the new view, with the batch
 * whose digest O names (fetched from the others if we lack it). */
void pbft_nv_propose(struct pbft *c, uint64_t s)
{
	struct log_entry *e = pbft_entry_at(c, s);
	uint8_t nd[HM_DIGEST_LEN], fetch[1 + HM_DIGEST_LEN];

	if (e->seq != s || e->nv_view != c->view || e->has_pp || pbft_silent(c, s))
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
		pbft_send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_NEW_VIEW, c->view, s, NULL, fetch,
			 sizeof(fetch));
		return;
	}
	e->nv_need = false;
	pbft_send_own_pre_prepare(c, e);
}

/* New primary: the pending requests we hold (signature and the service's
 * admission check done now, as on_request would; without signatures, those
 * with 2f+1 vouches) go into the queue at once instead of waiting for the
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
		if (!c->p.signed_requests ? r->ready_ts < r->pending_ts
					  : !hm_verify_header(m.hdr, pk)) {
			c->stats.bad_client_signatures += c->p.signed_requests;
			continue;
		}
		if (!pbft_service_accepts(c, &m))
			continue; /* stays pending: the client asks again, newly timed */
		r->queued_ts = m.seq;
		r->in_queue = true;
		c->stats.requests_received++;
		pbft_queue_push(c, &m);
	}
}

void pbft_install(struct pbft *c, uint64_t view, uint64_t lo, uint64_t hi,
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
	adopt_checkpoint(c, view, lo, ids, nrefs);
	vc_prune(c, view);
	for (uint32_t j = 0; j < c->p.n; j++)
		if (c->vc_alt[j].view && c->vc_alt[j].view <= view)
			pbft_vc_rec_clear(&c->vc_alt[j]);
	if (c->cu_view && view >= c->cu_view) {
		c->stats.view_catchups_done++;
		c->cu_view = 0;
	}
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
			e->own_pp = e->own_commit = false;
			e->helped = 0;
			e->nv_need = false;
		}
	}
	for (uint64_t s = lo + 1; s <= hi; s++) {
		struct log_entry *e;

		if (s + c->p.checkpoint_interval <= c->low || s > c->low + c->p.window)
			continue; /* outside what our log can hold */
		e = pbft_entry_claim(c, s);
		e->nv_view = view;
		memcpy(e->nv_digest, o[s - lo - 1], HM_DIGEST_LEN);
	}
	pbft_dur_view(c, o);
	/* Pending requests wait afresh in the new view (without signatures,
	 * those that were timed: with 2f+1 vouches). */
	c->pend_head = c->pend_len = 0;
	HASH_ITER(hh, c->clients, r, tmp)
		if (r->pending_ts > r->last_ts &&
		    (c->p.signed_requests || r->ready_ts >= r->pending_ts))
			pend_push(c, r->id, r->pending_ts, c->now);
	pbft_memo_clear(c);
	pbft_held_clear(c); /* the old view's PRE-PREPAREs */
	if (!pbft_is_primary(c)) {
		early_replay(c);
		return;
	}
	pbft_early_clear(c);
	c->next_seq = hi > c->low ? hi : c->low;
	if (c->next_seq < c->last_executed)
		c->next_seq = c->last_executed;
	for (uint64_t s = lo + 1; s <= hi; s++)
		pbft_nv_propose(c, s);
	queue_pending(c);
	pbft_maybe_propose(c);
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
	own = pbft_vc_own(c, view) && pbft_vc_own(c, view)->valid;
	quota = 2 * c->p.f + 1 - (own ? 1 : 0);
	for (uint32_t j = 0; j < c->p.n; j++) {
		const struct vc_rec *r = pbft_vc_find(c, j, view);

		if (j == c->p.id) {
			if (own)
				ids[n++] = (uint8_t)j;
		} else if (quota > 0 && r && r->checked && r->valid) {
			ids[n++] = (uint8_t)j;
			quota--;
		}
	}
	if (n < 2 * c->p.f + 1)
		return 0;
	for (unsigned i = 0; i < n; i++)
		memcpy(digests[i], pbft_dgram_hdr(pbft_vc_find(c, ids[i], view)->part[0])->digest,
		       HM_DIGEST_LEN);
	o = nv_compute(c, view, ids, n, &lo, &hi, o_digest);
	free(o);
	return hm_nv_new_put(buf, cap, (uint8_t)n, ids, (const uint8_t(*)[HM_DIGEST_LEN])digests,
			     lo, hi, o_digest);
}

static void start_view_change(struct pbft *c, uint64_t view, enum pbft_vc_reason why);

/* Ask for j's VIEW-CHANGE for `view` with this head digest (a NEW-VIEW
 * names it and we do not hold it complete, or hold another one of j's):
 * from every replica.  j answers with its own signed datagrams; any other
 * that holds it valid (the view's primary does: it named it) relays j's
 * datagrams (HM_NV_VC), since j may be faulty and never answer, or what
 * reaches us as j may not be the instance that sent it. */
static void fetch_vc(struct pbft *c, uint32_t j, uint64_t view, const uint8_t *digest)
{
	uint8_t fetch[2 + HM_DIGEST_LEN];

	if (j == c->p.id || !pbft_throttle_ok(c, &c->vc_fetch_at[j]))
		return;
	fetch[0] = HM_NV_FETCH;
	memcpy(fetch + 1, digest, HM_DIGEST_LEN);
	fetch[1 + HM_DIGEST_LEN] = (uint8_t)j; /* whose: heads of two replicas may be equal */
	pbft_send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_NEW_VIEW, view, 0, NULL, fetch, sizeof(fetch));
}

/* From now on, take j's VIEW-CHANGE for `view` with head digest d (from j
 * or relayed) into vc_alt[j]. */
static void vc_want(struct pbft *c, uint32_t j, uint64_t view, const uint8_t *d)
{
	struct vc_rec *a = &c->vc_alt[j];

	if (a->view == view && memcmp(c->vc_alt_want[j], d, HM_DIGEST_LEN) == 0)
		return;
	pbft_vc_rec_clear(a);
	a->view = view;
	memcpy(c->vc_alt_want[j], d, HM_DIGEST_LEN);
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
		/* Looked up by view: the sender may have moved on since. */
		r = pbft_vc_find(c, id, view);
		if (r && r->nparts && r->checked && r->valid &&
		    memcmp(pbft_dgram_hdr(r->part[0])->digest, nv.ref_digests[i], HM_DIGEST_LEN) == 0)
			continue; /* held as named */
		if (r && r->nparts && r->checked && !r->valid &&
		    memcmp(pbft_dgram_hdr(r->part[0])->digest, nv.ref_digests[i], HM_DIGEST_LEN) == 0)
			return -1; /* named, and we found it invalid */
		/* Missing, incomplete, or another VIEW-CHANGE of id's for this
		 * view (id signed two: it is faulty, and either may stand for
		 * it in O).  Fetch the named one, from id and from the primary
		 * that named it, and wait. */
		if (id == c->p.id)
			return -1; /* not what we sent */
		waiting = true;
		vc_want(c, id, view, nv.ref_digests[i]);
		fetch_vc(c, id, view, nv.ref_digests[i]);
	}
	if (waiting)
		return 0;
	o = nv_compute(c, view, nv.ref_ids, nv.nrefs, &lo, &hi, o_digest);
	if (lo != nv.min_s || hi != nv.max_s || memcmp(o_digest, nv.o_digest, HM_DIGEST_LEN) != 0) {
		free(o);
		return -2;
	}
	pbft_install(c, view, lo, hi, (const uint8_t(*)[HM_DIGEST_LEN])o, nv.ref_ids, nv.nrefs);
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
	pbft_send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_NEW_VIEW, c->vc_target, nv.min_s, NULL, buf,
		 (uint32_t)len);
	/* Our own computation over VIEW-CHANGEs we validated: it installs. */
	nv_accept(c, c->vc_target, buf, len);
}

/* A peer still changing to a view at or below the one we installed: our
 * NEW-VIEW, if we are its primary, brings it over; otherwise our own
 * VIEW-CHANGE for the installed view, if we sent one (kept in the ring).
 * The view's primary may be faulty or may have lost its NEW-VIEW, and the
 * peer, whose VIEW-CHANGE we drop as stale, would otherwise never hold the
 * 2f+1 VIEW-CHANGEs that start its new-view timer (nor f+1 above it to
 * join), nor could that primary build a NEW-VIEW for it.  A retransmission
 * of a signed message we already broadcast: docs/protocol.md, "View
 * catch-up" 7.  At most once per retransmit interval per peer. */
static void serve_new_view(struct pbft *c, uint32_t j)
{
	const struct vc_rec *r;

	if (c->in_vc || j >= c->p.n || j == c->p.id)
		return;
	if (c->nv_sent && pbft_primary(c, c->view) == c->p.id) {
		if (pbft_throttle_ok(c, &c->nv_served_at[j]))
			pbft_send_msg(c, PBFT_TO_REPLICA, j, HM_MSG_NEW_VIEW, c->view, c->nv_min_s,
				      NULL, c->nv_sent, (uint32_t)c->nv_sent_len);
		return;
	}
	r = pbft_vc_own(c, c->view);
	if (!r || !r->nparts || r->have != parts_mask(r->nparts) ||
	    !pbft_throttle_ok(c, &c->nv_served_at[j]))
		return;
	for (unsigned i = 0; i < r->nparts; i++)
		pbft_emit_copy(c, PBFT_TO_REPLICA, j, r->part[i], r->part_len[i],
			       HM_FLAG_RETRANSMIT);
}

/* FETCH (seq 0, zero digest) of view v's NEW-VIEW, from a replica behind in
 * views (view catch-up): answered by v's primary while v is installed. */
int pbft_serve_new_view_fetch(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	if (m->view != c->view || c->in_vc || !c->nv_sent || pbft_primary(c, c->view) != c->p.id)
		return pbft_refuse(why, HM_DROP_STALE);
	if (!pbft_throttle_ok(c, &c->nv_served_at[m->sender]))
		return pbft_refuse(why, HM_DROP_RATE_LIMITED);
	pbft_send_msg(c, PBFT_TO_REPLICA, m->sender, HM_MSG_NEW_VIEW, c->view, c->nv_min_s, NULL,
		      c->nv_sent, (uint32_t)c->nv_sent_len);
	return 0;
}

/* The (f+1)-th highest view among the views other replicas were seen in
 * above ours, 0 if fewer than f+1 are above: at least one of those f+1 is
 * correct, and it is at that view or higher. */
void pbft_vc_progress(struct pbft *c)
{
	uint64_t ref = c->in_vc ? c->vc_target : c->view, join = UINT64_MAX;
	uint32_t above = 0, at_or_above = 0;

	/* Each sender counts once, by its newest VIEW-CHANGE. */
	for (uint32_t j = 0; j < c->p.n; j++) {
		const struct vc_rec *r = vc_newest(c, j);

		if (j == c->p.id || !r)
			continue;
		if (r->view > ref) {
			above++;
			join = r->view < join ? r->view : join;
		}
	}
	/* f+1 replicas, so at least one correct one, left our view. */
	if (above >= c->p.f + 1) {
		start_view_change(c, join, PBFT_VC_JOINED);
		return;
	}
	if (c->in_vc) {
		/* The new-view timer: 2f+1 replicas (ours included) hold valid
		 * VIEW-CHANGEs for the target view or a higher one.  One that
		 * moved on to a higher view has stopped waiting for ours too,
		 * so counting exactly the target could wait for ever. */
		for (uint32_t j = 0; j < c->p.n; j++)
			for (unsigned k = 0; k < PBFT_VC_RING; k++) {
				const struct vc_rec *r = &c->vcs[j][k];

				if (r->view >= c->vc_target && r->checked && r->valid) {
					at_or_above++;
					break;
				}
			}
		if (!c->vc_timer_at && at_or_above >= 2 * c->p.f + 1)
			c->vc_timer_at = c->now ? c->now : 1;
		if (pbft_primary(c, c->vc_target) == c->p.id) {
			try_send_new_view(c);
			return;
		}
	}
	try_pending_nv(c);
}

const char *pbft_vc_reason_name(enum pbft_vc_reason r)
{
	static const char *const names[PBFT_VC_REASONS] = {
		"request_timeout", "new_view_timeout", "f+1_higher_views", "catchup_timeout",
	};

	return r < PBFT_VC_REASONS ? names[r] : "?";
}

static void start_view_change(struct pbft *c, uint64_t view, enum pbft_vc_reason why)
{
	if (view <= (c->in_vc ? c->vc_target : c->view))
		return;
	c->in_vc = true;
	c->vc_target = view;
	c->vc_timer_at = 0;
	c->window_changed = true;
	drop_queue(c);
	pbft_early_clear(c);
	c->stats.view_changes_started++;
	c->stats.view_changes_by_reason[why]++;
	pbft_dur_view(c, NULL); /* vote log: durable before our VIEW-CHANGE leaves */
	send_view_change(c);
	pbft_vc_progress(c);
}

void pbft_vc_timers(struct pbft *c)
{
	struct pending_mark *pm;

	if (!c->p.view_change_timeout_ms)
		return;
	pend_oldest(c); /* drop dead marks, on the primary too */
	/* View catch-up: no NEW-VIEW came for the view f+1 others are in;
	 * change to it (those in it answer a VIEW-CHANGE with their NEW-VIEW). */
	if (c->cu_view && c->now >= c->cu_at + vc_timeout_us(c)) {
		uint64_t v = c->cu_view;

		c->cu_view = 0;
		if (v > (c->in_vc ? c->vc_target : c->view)) {
			c->stats.view_catchup_timeouts++;
			start_view_change(c, v, PBFT_VC_CATCHUP_TIMEOUT);
			return;
		}
	}
	if (c->in_vc) {
		/* No NEW-VIEW in time: the next view, waiting twice as long. */
		if (c->vc_timer_at && c->now >= c->vc_timer_at + vc_timeout_us(c)) {
			c->vc_backoff++;
			start_view_change(c, c->vc_target + 1, PBFT_VC_NEW_VIEW_TIMEOUT);
		}
		return;
	}
	/* The primary too, later (request_timeout_us). */
	while ((pm = pend_oldest(c)) && c->now >= pm->since + request_timeout_us(c)) {
		struct client_rec *r = client_find(c, pm->client);
		const uint8_t *pk = c->p.client_key(c->p.client_key_ctx, r->id);

		/* Suspect the primary only over a request its client signed:
		 * one verification per timeout, not one per request.  Without
		 * signatures a request is timed only once 2f+1 replicas
		 * vouched for it (pbft_auth.c). */
		if (!c->p.signed_requests ||
		    (pk && hm_verify_header(pbft_dgram_hdr(r->pending), pk))) {
			/* A new view that never executed a request failed too:
			 * the next one waits twice as long (as in the paper). */
			if (c->view > 0 && !c->view_works)
				c->vc_backoff++;
			start_view_change(c, c->view + 1, PBFT_VC_REQUEST_TIMEOUT);
			return;
		}
		c->stats.bad_client_signatures++;
		free(r->pending);
		r->pending = NULL;
		r->pending_ts = 0;
	}
}

bool pbft_vc_retransmit(struct pbft *c)
{
	bool pending = false;
	uint8_t fetch[1 + HM_DIGEST_LEN];

	if (c->in_vc) {
		const struct vc_rec *r = pbft_vc_own(c, c->vc_target);

		for (unsigned i = 0; r && i < r->nparts; i++)
			pbft_emit_copy(c, PBFT_TO_REPLICAS, 0, r->part[i], r->part_len[i],
				  HM_FLAG_RETRANSMIT);
		/* A peer whose newest VIEW-CHANGE is for a lower view we also
		 * sent one for still waits in that view: it gets that one too
		 * (it may be the 2f+1-th it needs there). */
		for (uint32_t j = 0; j < c->p.n; j++) {
			const struct vc_rec *pr = vc_newest(c, j);

			if (j == c->p.id || !pr || pr->view >= c->vc_target ||
			    !(r = pbft_vc_own(c, pr->view)))
				continue;
			for (unsigned i = 0; i < r->nparts; i++)
				pbft_emit_copy(c, PBFT_TO_REPLICA, j, r->part[i], r->part_len[i],
					  HM_FLAG_RETRANSMIT);
		}
		pending = true;
	}
	if (c->cu_view) {
		pbft_catchup_fetch(c);
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
			pbft_send_flagged(c, PBFT_TO_REPLICAS, 0, HM_MSG_NEW_VIEW, HM_FLAG_RETRANSMIT,
				     c->view, e->seq, NULL, fetch, sizeof(fetch));
			pending = true;
		}
	}
	return pending;
}

/* Store datagram d (a VIEW_CHANGE part, parsed as v, digest dig) in r.
 * 0, or -1 with a drop reason; `relayed`: it came from another replica than
 * its signer, whose conflicting parts are no evidence against the relayer. */
int pbft_vc_store(struct pbft *c, struct vc_rec *r, const uint8_t *d, size_t len,
		    const struct hm_vc_payload *v, const uint8_t *dig, bool relayed,
		    enum hm_drop_reason *why)
{
	unsigned idx = v->kind == HM_VC_HEAD ? 0 : v->index;

	if (r->have >> idx & 1) {
		if (memcmp(pbft_dgram_hdr(r->part[idx])->digest, dig, HM_DIGEST_LEN) == 0)
			return pbft_refuse(why, HM_DROP_DUPLICATE);
		if (relayed)
			return pbft_refuse(why, HM_DROP_STALE);
		c->stats.equivocations++;
		return pbft_refuse(why, HM_DROP_EQUIVOCATION);
	}
	if (idx > 0 && r->nparts) {
		struct hm_vc_payload hv;

		hm_vc_parse(r->part[0] + HM_HDR_LEN, r->part_len[0] - HM_HDR_LEN, &hv);
		if (idx >= r->nparts ||
		    memcmp(hv.part_digests + (idx - 1) * HM_DIGEST_LEN, dig, HM_DIGEST_LEN))
			return pbft_refuse(why, relayed ? HM_DROP_STALE : HM_DROP_MALFORMED);
	}
	r->part[idx] = malloc(len);
	if (!r->part[idx])
		abort();
	memcpy(r->part[idx], d, len);
	memset(((struct hm_hdr *)r->part[idx])->mac, 0, HM_MAC_LEN);
	r->part[idx][6] = r->part[idx][7] = 0; /* flags */
	r->part_len[idx] = (uint32_t)len;
	r->have |= 1ull << idx;
	if (idx == 0) {
		/* Parts that came first must be the ones the head names. */
		r->nparts = v->nparts;
		for (unsigned i = 1; i < HM_VC_MAX_PARTS; i++) {
			if (!(r->have >> i & 1))
				continue;
			if (i < v->nparts && memcmp(v->part_digests + (i - 1) * HM_DIGEST_LEN,
						    pbft_dgram_hdr(r->part[i])->digest, HM_DIGEST_LEN) == 0)
				continue;
			free(r->part[i]);
			r->part[i] = NULL;
			r->have &= ~(1ull << i);
		}
	}
	return 0;
}

/* Does vc_alt[j] want this datagram of j's (view, parsed as v, digest dig):
 * the wanted head, or a part that head names? */
bool pbft_vc_alt_takes(const struct pbft *c, uint32_t j, uint64_t view,
			 const struct hm_vc_payload *v, const uint8_t *dig)
{
	const struct vc_rec *a = &c->vc_alt[j];
	struct hm_vc_payload hv;

	if (j >= c->p.n || !a->view || a->view != view)
		return false;
	if (v->kind == HM_VC_HEAD)
		return memcmp(dig, c->vc_alt_want[j], HM_DIGEST_LEN) == 0;
	return a->nparts && v->index < a->nparts &&
	       hm_vc_parse(a->part[0] + HM_HDR_LEN, a->part_len[0] - HM_HDR_LEN, &hv) == 0 &&
	       memcmp(hv.part_digests + (v->index - 1) * HM_DIGEST_LEN, dig, HM_DIGEST_LEN) == 0;
}

/* vc_alt[j] complete: validate it and put it in the ring in place of what
 * we held from j for that view.  If that was another head j signed for the
 * same view, j equivocated: proven faulty.  Either VIEW-CHANGE may stand
 * for j in O (docs/protocol.md, safety argument, "NEW-VIEW with
 * references"). */
void pbft_vc_alt_done(struct pbft *c, uint32_t j)
{
	struct vc_rec *a = &c->vc_alt[j], *r;

	if (!a->nparts || a->have != parts_mask(a->nparts))
		return;
	a->checked = true;
	/* The head's signature was checked when it was stored, so a defect
	 * is j's, whoever relayed it. */
	a->valid = vc_validate(c, j, a);
	if (!a->valid) {
		c->stats.view_changes_refused++;
		pbft_vc_rec_clear(a);
		return;
	}
	r = pbft_vc_slot(c, j, a->view);
	if (!r) {
		pbft_vc_rec_clear(a);
		return;
	}
	if ((r->have & 1) &&
	    memcmp(pbft_dgram_hdr(r->part[0])->digest, pbft_dgram_hdr(a->part[0])->digest, HM_DIGEST_LEN) &&
	    c->p.replica_keys && hm_verify_header(pbft_dgram_hdr(r->part[0]), c->p.replica_keys[j])) {
		c->stats.equivocations++;
		pbft_proven_faulty(c, j);
	}
	pbft_vc_rec_clear(r);
	*r = *a;
	memset(a, 0, sizeof(*a));
}

int pbft_on_view_change(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct vc_rec *r;
	struct hm_vc_payload v;

	if (!c->p.view_change_timeout_ms || hm_vc_parse(m->payload, m->payload_len, &v) < 0)
		return pbft_refuse(why, HM_DROP_MALFORMED);
	if (m->view <= c->view) {
		serve_new_view(c, m->sender);
		return pbft_refuse(why, HM_DROP_STALE);
	}
	if (pbft_vc_alt_takes(c, m->sender, m->view, &v, m->digest)) {
		/* The one a NEW-VIEW names (head signature checked now, as
		 * for a relayed one, so that vc_alt_done can blame j). */
		if (v.kind == HM_VC_HEAD &&
		    (!c->p.replica_keys || !hm_verify_header(m->hdr, c->p.replica_keys[m->sender])))
			return pbft_refuse(why, HM_DROP_BAD_SIGNATURE);
		if (pbft_vc_store(c, &c->vc_alt[m->sender], (const uint8_t *)m->hdr, m->len, &v,
			     m->digest, false, why) < 0)
			return -1;
		pbft_vc_alt_done(c, m->sender);
		pbft_vc_progress(c);
		return 0;
	}
	/* Per view: an older VIEW-CHANGE (fetched because a NEW-VIEW names
	 * it) does not replace the sender's newer one. */
	r = pbft_vc_slot(c, m->sender, m->view);
	if (!r)
		return pbft_refuse(why, HM_DROP_STALE);
	if (pbft_vc_store(c, r, (const uint8_t *)m->hdr, m->len, &v, m->digest, false, why) < 0)
		return -1;
	vc_check(c, m->sender, r);
	pbft_vc_progress(c);
	return 0;
}

/* HM_NV_VC from replica m->sender: a VIEW-CHANGE datagram of replica j
 * that we asked for by head digest (vc_alt[j]).  The relayer's MAC covers
 * the whole; j's signature on the head, and the head's part digests, make
 * the content j's. */
int pbft_on_new_view(struct pbft *c, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct hm_nv_payload nv;
	int r;

	if (!c->p.view_change_timeout_ms || hm_nv_parse(m->payload, m->payload_len, &nv) < 0)
		return pbft_refuse(why, HM_DROP_MALFORMED);
	if (nv.kind == HM_NV_FETCH)
		return pbft_on_fetch(c, m, &nv, why);
	if (nv.kind == HM_NV_BATCH)
		return pbft_on_batch(c, m, &nv, why);
	if (nv.kind == HM_NV_VC)
		return pbft_on_vc_relay(c, m, &nv, why);
	if (nv.kind == HM_NV_PROOF)
		return pbft_on_proof(c, m, &nv, why);
	if (m->sender != pbft_primary(c, m->view)) {
		c->stats.new_views_refused++;
		return pbft_refuse(why, HM_DROP_MALFORMED);
	}
	/* Never a view below one we sent a VIEW-CHANGE for: that VIEW-CHANGE
	 * may already stand for us in its view's NEW-VIEW, so we must not
	 * prepare anything in a lower view after it. */
	if (m->view <= c->view || (c->in_vc && m->view < c->vc_target))
		return pbft_refuse(why, HM_DROP_STALE);
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
		pbft_proven_faulty(c, m->sender);
	return pbft_refuse(why, HM_DROP_MALFORMED);
}

bool pbft_in_view_change(const struct pbft *c) { return c->in_vc; }
uint64_t pbft_view_target(const struct pbft *c) { return c->in_vc ? c->vc_target : c->view; }
uint64_t pbft_catchup_view(const struct pbft *c) { return c->cu_view; }

bool pbft_vc_digest(const struct pbft *c, uint32_t sender, uint64_t view,
		    uint8_t out[HM_DIGEST_LEN])
{
	const struct vc_rec *r;

	if (sender >= c->p.n)
		return false;
	r = pbft_vc_find(c, sender, view);
	if (!r || !r->checked || !r->valid)
		return false;
	memcpy(out, pbft_dgram_hdr(r->part[0])->digest, HM_DIGEST_LEN);
	return true;
}

/* After a restart: our own VIEW-CHANGE for `view`, the datagrams the vote
 * log kept (exactly as sent), checked like any other. */
bool pbft_vc_restore_own(struct pbft *c, uint64_t view, uint8_t **parts, const uint32_t *lens,
			 unsigned nparts)
{
	struct vc_rec *r;

	/* Each part is one of our VIEW-CHANGE datagrams for this view, or the
	 * record is not ours to re-send (the files' checks passed, so only a
	 * bug or a collision gets here). */
	for (unsigned i = 0; i < nparts; i++) {
		enum hm_drop_reason why;
		struct hm_msg m;

		if (hm_msg_decode(parts[i], lens[i], HM_MAX_DATAGRAM, &m, &why) < 0 ||
		    m.type != HM_MSG_VIEW_CHANGE || m.sender != c->p.id || m.view != view)
			return false;
	}
	/* a free (or the lowest) slot of our ring, cleared, for this view */
	r = pbft_vc_slot(c, c->p.id, view);
	if (!r)
		return true; /* every slot holds a higher view of ours */
	pbft_vc_rec_clear(r);
	r->view = view;
	for (unsigned i = 0; i < nparts; i++) {
		r->part[i] = malloc(lens[i]);
		if (!r->part[i])
			abort();
		memcpy(r->part[i], parts[i], lens[i]);
		r->part_len[i] = lens[i];
	}
	r->nparts = (uint8_t)nparts;
	r->have = parts_mask(nparts);
	vc_check(c, c->p.id, r);
	return true;
}
