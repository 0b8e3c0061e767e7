// SPDX-License-Identifier: MIT
/*
 * The vote log: what this replica sent that it must never contradict, as
 * records the core encodes (the driver stores them as opaque bytes, durable
 * before any message of their Ready leaves), and their restoration after a
 * restart (docs/protocol.md, "Recovery"; docs/persistence.md, "Vote log").
 *
 * Records (all integers big-endian, the first byte is the kind):
 *
 *   VIEW    u64 view, u8 in_vc, u64 vc_target, u64 nv_view, u64 nv_min_s,
 *           u64 nv_max_s, u64 o_first, u32 n_o, n_o x [32] O digests (for
 *           seqs o_first+1 ..), u32 nv_len, nv_len bytes (the NEW-VIEW
 *           payload we sent as the view's primary)
 *   PP      the PRE-PREPARE datagram we sent as primary, or the primary's
 *           we sent our PREPARE for (MAC and flags zero)
 *   CERT32  u64 seq, u64 view, [32] digest, u32 pp_len, [64] pp_sig,
 *           u32 voters, 64 bytes per voter (increasing id)
 *   CERT    as CERT32 with u16 voters: written before n could exceed 16,
 *           still read
 *   COMMIT  u64 view, u64 seq, [32] digest
 *   VC      u64 view, u8 nparts, nparts x { u32 len, datagram }
 *   SILENT  u64 silent_until, u64 mute_view (the silent rule holds)
 *   VOTE    u64 seq, u64 view, [32] digest: our latest vote at seq (a PP
 *           record says it too, for its own view); kept across views for
 *           the fast path's vote reports (docs/protocol.md, "The fast path")
 *
 * Later records override earlier ones; a new log (at a stable checkpoint,
 * and at every start) begins with the whole live state, so older files are
 * not needed.
 */
#include "core/pbft_internal.h"

enum {
	D_VIEW = 1,
	D_PP = 2,
	D_CERT = 3,
	D_COMMIT = 4,
	D_VC = 5,
	D_SILENT = 6,
	D_CERT32 = 7,  /* D_CERT with a u32 voter bitmap (n up to 32) */
	D_VOTE = 8,
};

/* ---- emitting ---------------------------------------------------------- */

static uint8_t *dur_new(struct pbft *c, uint64_t seq, uint32_t len)
{
	struct pbft_durable *d;

	GROW(c->dur, c->n_dur, c->cap_dur);
	d = &c->dur[c->n_dur++];
	d->seq = seq;
	d->len = len;
	d->buf = malloc(len);
	if (!d->buf)
		abort();
	return d->buf;
}

void pbft_dur_view(struct pbft *c, const uint8_t (*o)[HM_DIGEST_LEN])
{
	uint64_t o_first = 0, n_o = 0;
	uint32_t nv_len = 0;
	uint8_t *b, *p;

	/* The O of the NEW-VIEW that started this view, for the seqs our log
	 * holds: on_pre_prepare checks the new primary against it. */
	if (c->nv_view == c->view && c->nv_max_s > c->nv_min_s) {
		o_first = c->nv_min_s;
		n_o = c->nv_max_s - c->nv_min_s;
	}
	if (c->nv_sent && pbft_primary(c, c->view) == c->p.id && !c->in_vc)
		nv_len = (uint32_t)c->nv_sent_len;
	b = dur_new(c, 0, 1 + 8 + 1 + 8 * 5 + 4 + (uint32_t)n_o * HM_DIGEST_LEN + 4 + nv_len);
	p = b;
	*p++ = D_VIEW;
	hm_put_be64(p, c->view), p += 8;
	*p++ = c->in_vc;
	hm_put_be64(p, c->in_vc ? c->vc_target : c->view), p += 8;
	hm_put_be64(p, c->nv_view), p += 8;
	hm_put_be64(p, c->nv_min_s), p += 8;
	hm_put_be64(p, c->nv_max_s), p += 8;
	hm_put_be64(p, o_first), p += 8;
	hm_put_be32(p, (uint32_t)n_o), p += 4;
	for (uint64_t i = 0; i < n_o; i++, p += HM_DIGEST_LEN) {
		uint64_t s = o_first + 1 + i;
		const struct log_entry *e = pbft_entry_at(c, s);

		if (o)
			memcpy(p, o[i], HM_DIGEST_LEN);
		else if (e->seq == s && e->nv_view == c->view)
			memcpy(p, e->nv_digest, HM_DIGEST_LEN);
		else
			memset(p, 0, HM_DIGEST_LEN); /* outside our log: unknown */
	}
	hm_put_be32(p, nv_len), p += 4;
	if (nv_len)
		memcpy(p, c->nv_sent, nv_len);
}

/* A PRE-PREPARE datagram as sent (MAC and flags are not part of it). */
void pbft_dur_pre_prepare(struct pbft *c, const uint8_t *dgram, size_t len)
{
	uint8_t *b = dur_new(c, hm_get_be64(dgram + HM_OFF_SEQ), (uint32_t)(1 + len));

	b[0] = D_PP;
	memcpy(b + 1, dgram, len);
	b[1 + 6] = b[1 + 7] = 0;
	memset(b + 1 + HM_OFF_MAC, 0, HM_MAC_LEN);
}

void pbft_dur_cert(struct pbft *c, const struct log_entry *e)
{
	uint32_t nv = (uint32_t)__builtin_popcount(e->cert_voters), k = 0;
	uint8_t *b = dur_new(c, e->seq, 1 + 8 + 8 + HM_DIGEST_LEN + 4 + HM_SIG_LEN + 4 +
					    nv * HM_SIG_LEN);
	uint8_t *p = b;

	*p++ = D_CERT32;
	hm_put_be64(p, e->seq), p += 8;
	hm_put_be64(p, e->cert_view), p += 8;
	memcpy(p, e->cert_digest, HM_DIGEST_LEN), p += HM_DIGEST_LEN;
	hm_put_be32(p, e->cert_pp_len), p += 4;
	memcpy(p, e->cert_pp_sig, HM_SIG_LEN), p += HM_SIG_LEN;
	hm_put_be32(p, e->cert_voters), p += 4;
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		if (e->cert_voters >> i & 1)
			memcpy(p + HM_SIG_LEN * k++, e->cert_sigs[i], HM_SIG_LEN);
}

void pbft_dur_commit(struct pbft *c, const struct log_entry *e)
{
	uint8_t *b = dur_new(c, e->seq, 1 + 16 + HM_DIGEST_LEN);

	b[0] = D_COMMIT;
	hm_put_be64(b + 1, e->view);
	hm_put_be64(b + 9, e->seq);
	memcpy(b + 17, e->digest, HM_DIGEST_LEN);
}

void pbft_dur_vc(struct pbft *c, const struct vc_rec *r)
{
	uint32_t len = 1 + 8 + 1;
	uint8_t *b, *p;

	for (unsigned i = 0; i < r->nparts; i++)
		len += 4 + r->part_len[i];
	b = dur_new(c, 0, len);
	p = b;
	*p++ = D_VC;
	hm_put_be64(p, r->view), p += 8;
	*p++ = r->nparts;
	for (unsigned i = 0; i < r->nparts; i++) {
		hm_put_be32(p, r->part_len[i]);
		memcpy(p + 4, r->part[i], r->part_len[i]);
		p += 4 + r->part_len[i];
	}
}

void pbft_dur_vote(struct pbft *c, const struct log_entry *e)
{
	uint8_t *b = dur_new(c, e->seq, 1 + 16 + HM_DIGEST_LEN);

	b[0] = D_VOTE;
	hm_put_be64(b + 1, e->seq);
	hm_put_be64(b + 9, e->vote_view);
	memcpy(b + 17, e->vote_digest, HM_DIGEST_LEN);
}

static void dur_silent(struct pbft *c)
{
	uint8_t *b = dur_new(c, 0, 17);

	b[0] = D_SILENT;
	hm_put_be64(b + 1, c->silent_until);
	hm_put_be64(b + 9, c->mute_view);
}

/* The PRE-PREPARE datagram of e as its primary sent it: the header rebuilt
 * from the fields we keep (the primary's signature included), then the
 * batch. */
static void dur_entry_pp(struct pbft *c, const struct log_entry *e)
{
	uint8_t *b = dur_new(c, e->seq, 1 + HM_HDR_LEN + e->batch_len);
	struct hm_hdr *h = (struct hm_hdr *)(b + 1);

	b[0] = D_PP;
	memset(h, 0, HM_HDR_LEN);
	hm_put_be32((uint8_t *)&h->magic, HM_MAGIC);
	h->version = HM_VERSION;
	h->type = HM_MSG_PRE_PREPARE;
	hm_put_be32((uint8_t *)&h->sender, pbft_primary(c, e->view));
	hm_put_be32((uint8_t *)&h->payload_len, e->batch_len);
	hm_put_be64((uint8_t *)&h->view, e->view);
	hm_put_be64((uint8_t *)&h->seq, e->seq);
	memcpy(h->digest, e->digest, HM_DIGEST_LEN);
	memcpy(h->sig, e->pp_sig, HM_SIG_LEN);
	memcpy(b + 1 + HM_HDR_LEN, e->batch, e->batch_len);
}

/* e still holds the PRE-PREPARE of our latest vote, from an earlier view
 * than the current one: kept in a new vote log too, batch and all.  Rule F
 * can give the seq that batch in a later view (our report counts for it),
 * and then some replica must be able to serve it: a report whose batch a
 * restart had lost named a batch nobody held, and every new view stalled on
 * it (test_byzantine seed 2354). */
static bool vote_batch(const struct log_entry *e)
{
	return e->has_vote && e->batch && e->view == e->vote_view &&
	       memcmp(e->digest, e->vote_digest, HM_DIGEST_LEN) == 0;
}

/* The whole live state, for a new vote log. */
static void dur_snapshot(struct pbft *c)
{
	pbft_dur_view(c, NULL);
	for (uint64_t s = c->low + 1; s <= c->low + c->p.window; s++) {
		const struct log_entry *e = pbft_entry_at(c, s);

		if (e->seq != s)
			continue;
		if (e->has_vote)
			pbft_dur_vote(c, e);
		if ((e->has_pp && e->own_pp && e->view == c->view && e->batch) || vote_batch(e))
			dur_entry_pp(c, e);
		if (e->has_cert)
			pbft_dur_cert(c, e);
		if (e->has_pp && e->own_commit && e->view == c->view)
			pbft_dur_commit(c, e);
	}
	/* Our own VIEW-CHANGEs still kept (one per view, pbft_vc_own). */
	for (unsigned k = 0; k < PBFT_VC_RING; k++) {
		const struct vc_rec *own = &c->vcs[c->p.id][k];

		if (own->view && own->nparts && own->have == ((1ull << own->nparts) - 1) &&
		    own->view >= c->view)
			pbft_dur_vc(c, own);
	}
	if (c->restarted && (c->silent_until > c->low || c->view <= c->mute_view))
		dur_silent(c);
}

void pbft_dur_ready(struct pbft *c, struct pbft_ready *rd)
{
	if (c->dur_rotate) {
		/* The snapshot holds everything the incremental records said. */
		pbft_dur_advance(c);
		dur_snapshot(c);
	}
	rd->durable = c->dur;
	rd->n_durable = c->n_dur;
	rd->durable_rotate = c->dur_rotate;
	rd->durable_first = c->low;
	c->dur_rotate = false;
}

void pbft_rotate_durable(struct pbft *c)
{
	c->dur_rotate = true;
}

bool pbft_durable_base(struct pbft *c, struct hm_checkpoint *out, struct hm_log_record **recs,
		       size_t *n)
{
	bool have = c->stable.snap != NULL;
	uint64_t from = have ? c->stable.seq : 0;
	struct hm_log_record *r;
	size_t k = 0;

	if (have)
		pbft_stable_proof(c, out);
	else
		memset(out, 0, sizeof(*out));
	r = calloc(c->last_executed > from ? c->last_executed - from : 1, sizeof(*r));
	if (!r)
		abort();
	for (uint64_t s = from + 1; s <= c->last_executed; s++) {
		const struct log_entry *e = pbft_entry_at(c, s);
		uint8_t d[HM_DIGEST_LEN];

		/* the batch executed there, checked as recovery checks it */
		if (e->seq != s || !e->committed || !e->batch)
			break;
		hm_digest(e->batch, e->batch_len, d);
		if (memcmp(d, e->digest, HM_DIGEST_LEN) != 0)
			break;
		r[k] = (struct hm_log_record){ .seq = s, .view = e->view, .batch = e->batch,
					       .batch_len = e->batch_len };
		memcpy(r[k].digest, e->digest, HM_DIGEST_LEN);
		k++;
	}
	*recs = r;
	*n = k;
	return have;
}

void pbft_dur_advance(struct pbft *c)
{
	for (size_t i = 0; i < c->n_dur; i++)
		free(c->dur[i].buf);
	c->n_dur = 0;
}

/* ---- restoring --------------------------------------------------------- */

struct rd_cursor {
	const uint8_t *p;
	size_t left;
	bool bad;
};

static const uint8_t *take(struct rd_cursor *r, size_t n)
{
	const uint8_t *p = r->p;

	if (r->bad || r->left < n) {
		r->bad = true;
		return NULL;
	}
	r->p += n;
	r->left -= n;
	return p;
}

static uint64_t take64(struct rd_cursor *r)
{
	const uint8_t *p = take(r, 8);

	return p ? hm_get_be64(p) : 0;
}

static uint32_t take32(struct rd_cursor *r)
{
	const uint8_t *p = take(r, 4);

	return p ? hm_get_be32(p) : 0;
}

static uint8_t take8(struct rd_cursor *r)
{
	const uint8_t *p = take(r, 1);

	return p ? *p : 0;
}

/* Forget e's normal-case state of an older view (what install() does). */
static void entry_leave_view(struct log_entry *e)
{
	e->has_pp = e->prepared = e->commit_quorum = false;
	e->own_pp = e->own_commit = false;
}

/* pbft_dur_view writes zeros for a seq of O outside the log (no digest is
 * all zeros). */
static bool digest_unknown(const uint8_t *d)
{
	static const uint8_t zero[HM_DIGEST_LEN];

	return memcmp(d, zero, HM_DIGEST_LEN) == 0;
}

static void restore_view(struct pbft *c, struct rd_cursor *r)
{
	uint64_t view = take64(r), target, nv_view, lo, hi, o_first;
	bool in_vc = take8(r);
	uint32_t n_o, nv_len;
	const uint8_t *o, *nv;

	target = take64(r);
	nv_view = take64(r);
	lo = take64(r);
	hi = take64(r);
	o_first = take64(r);
	n_o = take32(r);
	o = take(r, (size_t)n_o * HM_DIGEST_LEN);
	nv_len = take32(r);
	nv = take(r, nv_len);
	/* A NEW-VIEW's range never spans more than the window (and O holds
	 * at most its seqs); one that does is not a record we wrote. */
	if (r->bad || target < view || hi < lo || hi - lo > c->p.window || n_o > c->p.window) {
		c->stats.vote_records_malformed++;
		return;
	}
	if (view < c->view)
		return;
	c->view = view;
	c->in_vc = in_vc;
	c->vc_target = in_vc ? target : view;
	if (nv_view == view) {
		c->nv_view = nv_view;
		c->nv_min_s = lo;
		c->nv_max_s = hi;
		for (uint32_t i = 0; i < n_o; i++) {
			uint64_t s = o_first + 1 + i;
			const uint8_t *d = o + (size_t)i * HM_DIGEST_LEN;
			struct log_entry *e;

			/* Zeros: the seq was outside our log when the record was
			 * written (pbft_dur_view), so its digest is unknown, not
			 * zero.  Taken as a digest, it made every correct
			 * re-proposal of it look like equivocation (seed 33388);
			 * unknown, a re-proposal is refused as outside the log
			 * and the seq is caught up from commits instead. */
			if (s + c->p.checkpoint_interval <= c->low || s > c->low + c->p.window ||
			    digest_unknown(d))
				continue;
			e = pbft_entry_claim(c, s);
			e->nv_view = view;
			memcpy(e->nv_digest, d, HM_DIGEST_LEN);
		}
	}
	free(c->nv_sent);
	c->nv_sent = NULL;
	c->nv_sent_len = 0;
	if (nv_len) {
		c->nv_sent = malloc(nv_len);
		if (!c->nv_sent)
			abort();
		memcpy(c->nv_sent, nv, nv_len);
		c->nv_sent_len = nv_len;
	}
}

/* Our vote (view, digest) at e, if later than the one e holds. */
static void restore_vote_of(struct log_entry *e, uint64_t view, const uint8_t *digest)
{
	if (e->has_vote && e->vote_view >= view)
		return;
	e->has_vote = true;
	e->vote_view = view;
	memcpy(e->vote_digest, digest, HM_DIGEST_LEN);
}

static void restore_vote(struct pbft *c, struct rd_cursor *r)
{
	uint64_t seq = take64(r), view = take64(r);
	const uint8_t *digest = take(r, HM_DIGEST_LEN);

	if (r->bad)
		c->stats.vote_records_malformed++;
	if (r->bad || !pbft_in_window(c, seq))
		return;
	restore_vote_of(pbft_entry_claim(c, seq), view, digest);
}

static void restore_pp(struct pbft *c, const uint8_t *d, size_t len)
{
	enum hm_drop_reason why;
	struct log_entry *e;
	struct hm_msg m;

	if (hm_msg_decode(d, len, HM_MAX_DATAGRAM, &m, &why) < 0 || m.type != HM_MSG_PRE_PREPARE ||
	    m.sender != pbft_primary(c, m.view)) {
		c->stats.vote_records_malformed++;
		return;
	}
	e = pbft_entry_at(c, m.seq);
	if (pbft_in_window(c, m.seq))
		restore_vote_of(pbft_entry_claim(c, m.seq), m.view, m.digest);
	if (m.seq <= c->last_executed || !pbft_in_window(c, m.seq)) {
		/* Executed (replayed from the committed log): only note that
		 * the vote was ours, for the next snapshot. */
		if (e->seq == m.seq && e->has_pp && e->view == m.view &&
		    memcmp(e->digest, m.digest, HM_DIGEST_LEN) == 0)
			e->own_pp = true;
		return;
	}
	e = pbft_entry_claim(c, m.seq);
	if (e->has_pp && e->view > m.view)
		return;
	if (!e->has_pp || e->view != m.view || memcmp(e->digest, m.digest, HM_DIGEST_LEN) != 0) {
		entry_leave_view(e);
		pbft_entry_set_batch(e, m.payload, m.payload_len, m.digest);
		e->view = m.view;
		memcpy(e->pp_sig, m.hdr->sig, HM_SIG_LEN);
	}
	e->has_pp = true;
	e->own_pp = true;
}

/* wide: a D_CERT32 record (u32 voters); else a D_CERT of a log written
 * before n could exceed 16 (u16 voters), still read after an upgrade. */
static void restore_cert(struct pbft *c, struct rd_cursor *r, bool wide)
{
	uint64_t seq = take64(r), view = take64(r);
	const uint8_t *digest = take(r, HM_DIGEST_LEN);
	uint32_t pp_len = take32(r), k = 0;
	const uint8_t *pp_sig = take(r, HM_SIG_LEN), *vb = take(r, wide ? 4 : 2), *sigs;
	hm_voters_t voters = !vb ? 0 : wide ? hm_get_be32(vb) : (hm_voters_t)(vb[0] << 8 | vb[1]);
	struct log_entry *e;

	sigs = take(r, (size_t)__builtin_popcount(voters) * HM_SIG_LEN);
	if (r->bad || (voters & ~HM_ALL_VOTERS(c->p.n))) {
		c->stats.vote_records_malformed++;
		return;
	}
	if (!pbft_in_window(c, seq))
		return;
	e = pbft_entry_claim(c, seq);
	if (e->has_cert && e->cert_view > view)
		return;
	e->has_cert = true;
	e->cert_view = view;
	memcpy(e->cert_digest, digest, HM_DIGEST_LEN);
	e->cert_pp_len = pp_len;
	memcpy(e->cert_pp_sig, pp_sig, HM_SIG_LEN);
	e->cert_voters = voters;
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		if (voters >> i & 1)
			memcpy(e->cert_sigs[i], sigs + HM_SIG_LEN * k++, HM_SIG_LEN);
}

static void restore_commit(struct pbft *c, struct rd_cursor *r)
{
	uint64_t view = take64(r), seq = take64(r);
	const uint8_t *digest = take(r, HM_DIGEST_LEN);
	struct log_entry *e = pbft_entry_at(c, seq);

	if (r->bad)
		c->stats.vote_records_malformed++;
	if (r->bad || e->seq != seq || !e->has_pp || e->view != view ||
	    memcmp(e->digest, digest, HM_DIGEST_LEN) != 0)
		return;
	e->prepared = true; /* a COMMIT follows a checked certificate */
	e->own_commit = true;
}

/* One of our own VIEW-CHANGEs in the vote log: its view and its record. */
struct own_vc {
	uint64_t view;
	const uint8_t *rec;
	size_t len;
};

/* A later record for a view replaces an earlier one; the ring keeps the
 * highest views, as pbft_vc_slot does. */
static void own_vc_note(struct own_vc *vcs, unsigned *n, uint64_t view, const uint8_t *rec,
			size_t len)
{
	unsigned k, low = 0;

	for (k = 0; k < *n && vcs[k].view != view; k++)
		;
	if (k == *n && *n == PBFT_VC_RING) {
		for (k = 1; k < *n; k++)
			if (vcs[k].view < vcs[low].view)
				low = k;
		if (vcs[low].view > view)
			return;
		k = low;
	} else if (k == *n) {
		(*n)++;
	}
	vcs[k] = (struct own_vc){ .view = view, .rec = rec, .len = len };
}

static void own_vc_restore(struct pbft *c, const struct own_vc *v)
{
	struct rd_cursor r = { .p = v->rec, .left = v->len };
	uint8_t *parts[HM_VC_MAX_PARTS];
	uint32_t lens[HM_VC_MAX_PARTS];
	unsigned np = take8(&r), k = 0;

	for (; !r.bad && k < np && k < HM_VC_MAX_PARTS; k++) {
		lens[k] = take32(&r);
		parts[k] = (uint8_t *)take(&r, lens[k]);
	}
	if (r.bad || k != np || np == 0 || !pbft_vc_restore_own(c, v->view, parts, lens, np))
		c->stats.vote_records_malformed++;
}

/* Apply the vote log's records, in order, over the state the checkpoint and
 * the committed log rebuilt. */
void pbft_votes_restore(struct pbft *c, const struct hm_vote_record *votes, size_t n)
{
	struct own_vc vcs[PBFT_VC_RING];
	unsigned n_vcs = 0;

	for (size_t i = 0; i < n; i++) {
		struct rd_cursor r = { .p = votes[i].buf + 1, .left = votes[i].len - 1 };

		if (votes[i].len < 1)
			continue;
		switch (votes[i].buf[0]) {
		case D_VIEW:
			restore_view(c, &r);
			break;
		case D_PP:
			restore_pp(c, r.p, r.left);
			break;
		case D_CERT:
		case D_CERT32:
			restore_cert(c, &r, votes[i].buf[0] == D_CERT32);
			break;
		case D_COMMIT:
			restore_commit(c, &r);
			break;
		case D_VOTE:
			restore_vote(c, &r);
			break;
		case D_VC: {
			uint64_t view = take64(&r);

			if (!r.bad)
				own_vc_note(vcs, &n_vcs, view, r.p, r.left);
			else
				c->stats.vote_records_malformed++;
			break;
		}
		case D_SILENT: {
			uint64_t until = take64(&r), mute = take64(&r);

			if (r.bad) {
				c->stats.vote_records_malformed++;
				break;
			}
			c->restarted = true;
			if (until > c->silent_until)
				c->silent_until = until;
			if (mute > c->mute_view)
				c->mute_view = mute;
			break;
		}
		default: /* a kind this version does not know */
			c->stats.vote_records_malformed++;
			break;
		}
	}
	/* The normal case of views we left is over (as install() has it). */
	for (uint32_t i = 0; i < c->log_size; i++) {
		struct log_entry *e = &c->log[i];

		if (e->seq && e->has_pp && e->view < c->view && !e->committed)
			entry_leave_view(e);
	}
	/* Our own VIEW-CHANGEs, exactly as sent: re-sent, never rebuilt.
	 * Every view's, not only the last record's: the snapshot writes them
	 * in ring order, and one forgotten is one we would sign again,
	 * differently (seed 39186: counted an equivocation). */
	for (unsigned k = 0; k < n_vcs; k++)
		if (vcs[k].view >= c->view && (!c->in_vc || vcs[k].view <= c->vc_target))
			own_vc_restore(c, &vcs[k]);
	/* In a view change whose VIEW-CHANGE never became durable: it never
	 * left either (the VIEW record and it share a Ready), so we never
	 * left our view. */
	if (c->in_vc && !pbft_vc_own(c, c->vc_target)) {
		c->in_vc = false;
		c->vc_target = c->view;
	}
	/* Still in the view change: its new-view timer runs at once.  The
	 * timer we had is lost, and the 2f+1 VIEW-CHANGEs that would start it
	 * again may never come back (peers that installed the view, or moved
	 * past it, no longer send theirs); without a NEW-VIEW in time we go on
	 * to the next view, as we would have before the crash.  Only a timer:
	 * the f+1 join rule still keeps one replica from moving the others. */
	if (c->in_vc)
		c->vc_timer_at = c->now ? c->now : 1;
	/* A primary resumes after the last seq it assigned in its view. */
	if (pbft_primary(c, c->view) == c->p.id)
		for (uint32_t i = 0; i < c->log_size; i++) {
			const struct log_entry *e = &c->log[i];

			if (e->seq && e->has_pp && e->view == c->view && e->seq > c->next_seq)
				c->next_seq = e->seq;
		}
}

/* After a restart: send again what the vote log says we sent for slots
 * still open (our peers may be waiting for it), and set the vote counter's
 * expectations and our own votes.  Ed25519 is deterministic, so the
 * re-signed PREPARE and COMMIT are the very datagrams sent before. */
void pbft_votes_resend(struct pbft *c)
{
	const struct vc_rec *own = pbft_vc_own(c, c->vc_target);

	if (c->in_vc && own) {
		for (unsigned i = 0; i < own->nparts; i++) {
			uint8_t *copy = malloc(own->part_len[i]);

			if (!copy)
				abort();
			memcpy(copy, own->part[i], own->part_len[i]);
			pbft_emit(c, PBFT_TO_REPLICAS, 0, copy, own->part_len[i]);
		}
		if (!c->next_retransmit)
			c->next_retransmit = c->now + (uint64_t)c->p.retransmit_ms * 1000;
		return;
	}
	for (uint64_t s = c->last_executed + 1; pbft_in_window(c, s); s++) {
		struct log_entry *e = pbft_entry_at(c, s);
		struct hm_hdr *h;

		if (e->seq != s || !e->has_pp || e->view != c->view || e->committed ||
		    pbft_silent(c, s))
			continue;
		if (pbft_primary(c, e->view) == c->p.id) {
			if (e->own_pp)
				pbft_send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_PRE_PREPARE, e->view, s,
					      NULL, e->batch, e->batch_len);
			pbft_emit_vote_policy(c, HM_PHASE_PREPARE, e->view, s, e->digest, NULL);
		} else if (e->own_pp) {
			h = pbft_send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_PREPARE, e->view, s,
					  e->digest, NULL, 0);
			pbft_emit_vote_policy(c, HM_PHASE_PREPARE, e->view, s, e->digest, h->sig);
		} else {
			pbft_emit_vote_policy(c, HM_PHASE_PREPARE, e->view, s, e->digest, NULL);
		}
		if (e->own_commit) {
			h = pbft_send_msg(c, PBFT_TO_REPLICAS, 0, HM_MSG_COMMIT, e->view, s,
					  e->digest, NULL, 0);
			pbft_emit_vote_policy(c, HM_PHASE_COMMIT, e->view, s, e->digest, h->sig);
		} else {
			pbft_emit_vote_policy(c, HM_PHASE_COMMIT, e->view, s, e->digest, NULL);
		}
	}
}
