// SPDX-License-Identifier: MIT
/*
 * State transfer in verified chunks (state_transfer.h, docs/persistence.md).
 *
 * The Merkle tree is RFC 6962's, built by the one tree module
 * (user/common/merkle.c) with BLAKE2b-256 as its hash: for N leaves the left
 * subtree holds the largest power of two below N.  The server keeps every
 * level (struct hm_merkle_tree) and answers a request with the chunk's audit
 * path, leaf level first; the fetcher checks it with RFC 9162's algorithm
 * and then the state digest over the root.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "core/state_transfer.h"
#include "common/wire.h"

#define TAG_STATE 0x02

_Static_assert(HM_DIGEST_LEN == HM_MERKLE_HASH_LEN, "tree hashes are state digests");

/* ---- the digest ---------------------------------------------------------- */

/* BLAKE2b-256(tag || data): the state tree's hash. */
static void blake2b_tagged(uint8_t tag, const void *data, size_t len, hm_merkle_hash out)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, HM_DIGEST_LEN);
	crypto_generichash_update(&st, &tag, 1);
	crypto_generichash_update(&st, data, len);
	crypto_generichash_final(&st, out, HM_DIGEST_LEN);
}

/* Never used: a state has at least one chunk. */
static void blake2b_empty(hm_merkle_hash out)
{
	crypto_generichash(out, HM_DIGEST_LEN, NULL, 0, NULL, 0);
}

static const struct hm_merkle_hasher st_hasher = {
	.tagged = blake2b_tagged,
	.empty = blake2b_empty,
};

uint32_t hm_st_chunk_count(uint64_t len)
{
	if (len > HM_ST_MAX_STATE)
		return 0;
	return len == 0 ? 1 : (uint32_t)((len + HM_ST_CHUNK_SIZE - 1) / HM_ST_CHUNK_SIZE);
}

uint32_t hm_st_chunk_len(uint64_t len, uint32_t index)
{
	uint64_t start = (uint64_t)index * HM_ST_CHUNK_SIZE;

	if (start >= len)
		return 0;
	return len - start < HM_ST_CHUNK_SIZE ? (uint32_t)(len - start) : HM_ST_CHUNK_SIZE;
}

uint32_t hm_st_proof_len(uint32_t count, uint32_t index)
{
	return (uint32_t)hm_merkle_path_len(count, index);
}

static void state_hash(uint64_t len, const uint8_t root[HM_DIGEST_LEN], uint8_t out[HM_DIGEST_LEN])
{
	uint8_t in[1 + 8 + 4 + HM_DIGEST_LEN];

	in[0] = TAG_STATE;
	hm_put_be64(in + 1, len);
	hm_put_be32(in + 9, HM_ST_CHUNK_SIZE);
	memcpy(in + 13, root, HM_DIGEST_LEN);
	crypto_generichash(out, HM_DIGEST_LEN, in, sizeof(in), NULL, 0);
}

/* The leaf hashes of a state's n chunks, malloc'd (NULL when out of memory). */
static hm_merkle_hash *chunk_leaves(const uint8_t *snap, uint64_t len, uint32_t n)
{
	hm_merkle_hash *h = malloc((size_t)n * sizeof(*h));

	if (!h)
		return NULL;
	for (uint32_t i = 0; i < n; i++)
		hm_merkle_leaf_hash_with(&st_hasher, snap + (uint64_t)i * HM_ST_CHUNK_SIZE,
					 hm_st_chunk_len(len, i), h[i]);
	return h;
}

int hm_st_state_digest(const uint8_t *snap, uint64_t len, uint8_t out[HM_DIGEST_LEN])
{
	uint32_t n = hm_st_chunk_count(len);
	hm_merkle_hash *h, root;

	if (n == 0)
		return -1;
	h = chunk_leaves(snap, len, n);
	if (!h)
		return -1;
	hm_merkle_root_with(&st_hasher, h, n, root);
	state_hash(len, root, out);
	free(h);
	return 0;
}

/* ---- payloads ------------------------------------------------------------ */

size_t hm_st_request_encode(uint8_t *buf, size_t cap, const struct hm_st_request *r)
{
	if (cap < HM_ST_REQUEST_LEN)
		return 0;
	hm_put_be64(buf, r->seq);
	memcpy(buf + 8, r->digest, HM_DIGEST_LEN);
	hm_put_be32(buf + 40, r->index);
	return HM_ST_REQUEST_LEN;
}

int hm_st_request_decode(const uint8_t *p, size_t len, struct hm_st_request *r)
{
	if (!p || len != HM_ST_REQUEST_LEN)
		return -1;
	r->seq = hm_get_be64(p);
	memcpy(r->digest, p + 8, HM_DIGEST_LEN);
	r->index = hm_get_be32(p + 40);
	return r->index < HM_ST_MAX_CHUNKS ? 0 : -1;
}

int hm_st_chunk_decode(const uint8_t *p, size_t len, struct hm_st_chunk *c)
{
	uint32_t count;

	if (!p || len < HM_ST_CHUNK_FIXED)
		return -1;
	c->seq = hm_get_be64(p);
	memcpy(c->digest, p + 8, HM_DIGEST_LEN);
	c->total_len = hm_get_be64(p + 40);
	c->index = hm_get_be32(p + 48);
	c->proof_count = hm_get_be32(p + 52);
	count = hm_st_chunk_count(c->total_len);
	if (count == 0 || c->index >= count ||
	    c->proof_count != hm_st_proof_len(count, c->index))
		return -1;
	c->data_len = hm_st_chunk_len(c->total_len, c->index);
	if (len != HM_ST_CHUNK_FIXED + (size_t)c->proof_count * HM_DIGEST_LEN + c->data_len)
		return -1;
	c->proof = p + HM_ST_CHUNK_FIXED;
	c->data = c->proof + (size_t)c->proof_count * HM_DIGEST_LEN;
	return 0;
}

bool hm_st_chunk_verify(const struct hm_st_chunk *c)
{
	uint32_t count = hm_st_chunk_count(c->total_len);
	hm_merkle_hash leaf, root;
	uint8_t d[HM_DIGEST_LEN];

	if (count == 0 || c->index >= count || c->proof_count != hm_st_proof_len(count, c->index) ||
	    c->data_len != hm_st_chunk_len(c->total_len, c->index))
		return false;
	hm_merkle_leaf_hash_with(&st_hasher, c->data, c->data_len, leaf);
	if (!hm_merkle_root_from_path(&st_hasher, c->index, count, leaf,
				      (const hm_merkle_hash *)c->proof, c->proof_count, root))
		return false;
	state_hash(c->total_len, root, d);
	return sodium_memcmp(d, c->digest, HM_DIGEST_LEN) == 0;
}

int hm_st_request_from_msg(const struct hm_msg *m, struct hm_st_request *r)
{
	if (m->type != HM_MSG_STATE_REQUEST || hm_st_request_decode(m->payload, m->payload_len, r) < 0)
		return -1;
	return r->seq == m->seq ? 0 : -1;
}

int hm_st_chunk_from_msg(const struct hm_msg *m, struct hm_st_chunk *c)
{
	if (m->type != HM_MSG_STATE_CHUNK || hm_st_chunk_decode(m->payload, m->payload_len, c) < 0)
		return -1;
	return c->seq == m->seq ? 0 : -1;
}

/* ---- the serving side ---------------------------------------------------- */

int hm_st_server_init(struct hm_st_server *s, uint64_t seq, const uint8_t *snap, uint64_t len)
{
	uint32_t n = hm_st_chunk_count(len);
	hm_merkle_hash *leaves;

	memset(s, 0, sizeof(*s));
	if (n == 0) {
		errno = EFBIG;
		return -1;
	}
	leaves = chunk_leaves(snap, len, n);
	if (!leaves || hm_merkle_tree_build(&s->tree, &st_hasher, leaves, n) < 0) {
		hm_st_server_free(s);
		return -1;
	}
	s->seq = seq;
	s->snap = snap;
	s->len = len;
	s->count = n;
	state_hash(len, hm_merkle_tree_root(&s->tree), s->digest);
	return 0;
}

void hm_st_server_free(struct hm_st_server *s)
{
	hm_merkle_tree_free(&s->tree);
	memset(s, 0, sizeof(*s));
}

size_t hm_st_serve(const struct hm_st_server *s, const struct hm_st_request *r, uint8_t *buf,
		   size_t cap)
{
	uint32_t plen, dlen;
	size_t total;
	uint8_t *q;

	if (r->seq != s->seq || memcmp(r->digest, s->digest, HM_DIGEST_LEN) != 0 ||
	    r->index >= s->count)
		return 0;
	plen = hm_st_proof_len(s->count, r->index);
	dlen = hm_st_chunk_len(s->len, r->index);
	total = HM_ST_CHUNK_FIXED + (size_t)plen * HM_DIGEST_LEN + dlen;
	if (cap < total)
		return 0;
	hm_put_be64(buf, s->seq);
	memcpy(buf + 8, s->digest, HM_DIGEST_LEN);
	hm_put_be64(buf + 40, s->len);
	hm_put_be32(buf + 48, r->index);
	hm_put_be32(buf + 52, plen);
	q = buf + HM_ST_CHUNK_FIXED;
	if (hm_merkle_tree_path(&s->tree, r->index, (hm_merkle_hash *)q) != (int)plen)
		return 0; /* cannot happen: the tree has count leaves */
	q += (size_t)plen * HM_DIGEST_LEN;
	if (dlen)
		memcpy(q, s->snap + (uint64_t)r->index * HM_ST_CHUNK_SIZE, dlen);
	return total;
}

/* ---- the fetching side --------------------------------------------------- */

enum slot_state { SLOT_MISSING, SLOT_INFLIGHT, SLOT_DONE };

struct hm_st_slot {
	uint8_t state;
	uint8_t peer;          /* asked of, while in flight */
	uint16_t attempts;     /* timeouts so far */
	uint32_t tried;        /* peers that timed out on it since the last reset */
	uint64_t deadline;
};

static void fail(struct hm_st *st, enum hm_st_failure why)
{
	st->state = HM_ST_FAILED;
	st->failure = why;
}

/* Slots and the buffer for a state of len bytes; nothing in flight. */
static int alloc_state(struct hm_st *st, uint64_t len)
{
	uint32_t count = hm_st_chunk_count(len);

	if (count == 0) {
		fail(st, HM_ST_FAIL_BAD_TARGET);
		return -1;
	}
	free(st->slots);
	st->slots = calloc(count, sizeof(*st->slots));
	st->buf = malloc(len ? len : 1);
	if (!st->slots || !st->buf) {
		fail(st, HM_ST_FAIL_NOMEM);
		return -1;
	}
	st->target.total_len = len;
	st->count = count;
	st->inflight = 0;
	st->next_missing = 0;
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		st->load[i].inflight = 0;
	return 0;
}

int hm_st_start(struct hm_st *st, const struct hm_st_target *t, const struct hm_st_params *p)
{
	memset(st, 0, sizeof(*st));
	st->target = *t;
	st->params = *p;
	if (!st->params.timeout_ms)
		st->params.timeout_ms = 500;
	if (!st->params.max_inflight)
		st->params.max_inflight = 8;
	if (!st->params.max_attempts)
		st->params.max_attempts = 8 * (uint32_t)__builtin_popcount(p->peers | 1);
	st->params.peers &= HM_ALL_VOTERS(HM_MAX_REPLICAS);
	if (t->total_len == HM_ST_LEN_UNKNOWN) {
		/* Ask for chunk 0 alone until a chunk tells the length. */
		st->count = 1;
		st->slots = calloc(1, sizeof(*st->slots));
		if (!st->slots) {
			fail(st, HM_ST_FAIL_NOMEM);
			return -1;
		}
	} else if (alloc_state(st, t->total_len) < 0) {
		return -1;
	}
	if (!st->params.peers) {
		fail(st, HM_ST_FAIL_NO_PEERS);
		return -1;
	}
	st->state = HM_ST_RUNNING;
	return 0;
}

void hm_st_free(struct hm_st *st)
{
	free(st->buf);
	free(st->slots);
	st->buf = NULL;
	st->slots = NULL;
}


/* A slot goes back to be asked again. */
static void unassign(struct hm_st *st, uint32_t index)
{
	struct hm_st_slot *s = &st->slots[index];

	if (s->state != SLOT_INFLIGHT)
		return;
	st->load[s->peer].inflight--;
	st->inflight--;
	s->state = SLOT_MISSING;
	if (index < st->next_missing)
		st->next_missing = index;
}

/* The peer to ask for a slot: not blamed, preferably one that has not timed
 * out on this slot, then the least loaded (an unresponsive peer counts as
 * loaded), ties broken round-robin.  -1 when no peer is left. */
static int pick_peer(struct hm_st *st, struct hm_st_slot *s)
{
	uint32_t good = st->params.peers & ~st->faulty;
	uint32_t pool = good & ~s->tried;
	uint32_t best_score = UINT32_MAX;
	int best = -1;

	if (!good)
		return -1;
	if (!pool) {
		/* Every peer timed out on this chunk: ask them all again. */
		s->tried = 0;
		pool = good;
	}
	for (uint32_t k = 0; k < HM_MAX_REPLICAS; k++) {
		uint32_t id = (st->rr + k) % HM_MAX_REPLICAS;
		struct hm_st_peer_load *l = &st->load[id];
		uint32_t score;

		if (!(pool & (1u << id)))
			continue;
		score = l->inflight + 4 * (l->consecutive_timeouts < 8 ? l->consecutive_timeouts : 8);
		if (score < best_score) {
			best_score = score;
			best = (int)id;
		}
	}
	st->rr = (uint32_t)best + 1;
	return best;
}

static void expire(struct hm_st *st, uint64_t now)
{
	for (uint32_t i = 0; i < st->count && st->state == HM_ST_RUNNING; i++) {
		struct hm_st_slot *s = &st->slots[i];

		if (s->state != SLOT_INFLIGHT || s->deadline > now)
			continue;
		st->stats[s->peer].timeouts++;
		st->load[s->peer].consecutive_timeouts++;
		s->tried |= 1u << s->peer;
		s->attempts++;
		unassign(st, i);
		if (s->attempts >= st->params.max_attempts)
			fail(st, HM_ST_FAIL_ATTEMPTS);
	}
}

size_t hm_st_tick(struct hm_st *st, uint64_t now_ms, struct hm_st_send *out, size_t cap)
{
	size_t n = 0;

	if (st->state != HM_ST_RUNNING)
		return 0;
	expire(st, now_ms);
	while (st->state == HM_ST_RUNNING && n < cap && st->inflight < st->params.max_inflight) {
		struct hm_st_slot *s;
		uint32_t i = st->next_missing;
		int peer;

		while (i < st->count && st->slots[i].state != SLOT_MISSING)
			i++;
		st->next_missing = i;
		if (i == st->count)
			break;
		s = &st->slots[i];
		peer = pick_peer(st, s);
		if (peer < 0) {
			fail(st, HM_ST_FAIL_NO_PEERS);
			break;
		}
		s->state = SLOT_INFLIGHT;
		s->peer = (uint8_t)peer;
		s->deadline = now_ms + st->params.timeout_ms;
		st->load[peer].inflight++;
		st->inflight++;
		st->stats[peer].requested++;
		out[n].peer = (uint32_t)peer;
		out[n].req.seq = st->target.seq;
		memcpy(out[n].req.digest, st->target.digest, HM_DIGEST_LEN);
		out[n].req.index = i;
		n++;
	}
	return n;
}

uint64_t hm_st_next_deadline(const struct hm_st *st)
{
	uint64_t d = UINT64_MAX;

	if (st->state != HM_ST_RUNNING)
		return d;
	for (uint32_t i = 0; i < st->count; i++)
		if (st->slots[i].state == SLOT_INFLIGHT && st->slots[i].deadline < d)
			d = st->slots[i].deadline;
	return d;
}

/* A peer proved faulty: never asked again, its requests go elsewhere. */
static void blame(struct hm_st *st, uint32_t from)
{
	st->faulty |= 1u << from;
	st->stats[from].bad++;
	for (uint32_t i = 0; i < st->count; i++)
		if (st->slots[i].state == SLOT_INFLIGHT && st->slots[i].peer == from)
			unassign(st, i);
	if (!(st->params.peers & ~st->faulty))
		fail(st, HM_ST_FAIL_NO_PEERS);
}

/* Whether anything from replica from is considered now: HM_ST_ACCEPTED if
 * so, else the verdict. */
static enum hm_st_verdict admit(const struct hm_st *st, uint32_t from)
{
	if (st->state != HM_ST_RUNNING)
		return HM_ST_NOT_RUNNING;
	if (from >= HM_MAX_REPLICAS)
		return HM_ST_STALE;
	if (st->faulty & (1u << from))
		return HM_ST_FROM_FAULTY;
	return HM_ST_ACCEPTED;
}

enum hm_st_verdict hm_st_on_chunk(struct hm_st *st, uint32_t from, const struct hm_st_chunk *c)
{
	enum hm_st_verdict v = admit(st, from);
	struct hm_st_slot *s;
	uint8_t d[HM_DIGEST_LEN];

	if (v != HM_ST_ACCEPTED)
		return v;
	if (c->seq != st->target.seq || memcmp(c->digest, st->target.digest, HM_DIGEST_LEN) != 0)
		return HM_ST_STALE;
	/* It claims the certified checkpoint: anything wrong now is the
	 * sender's doing, since its link MAC authenticated it. */
	if ((st->target.total_len != HM_ST_LEN_UNKNOWN && c->total_len != st->target.total_len) ||
	    !hm_st_chunk_verify(c)) {
		blame(st, from);
		return HM_ST_BAD_CHUNK;
	}
	/* The digest commits to the length, so a verified chunk's total_len
	 * is the state's; the requests for chunk 0 are settled by this. */
	if (st->target.total_len == HM_ST_LEN_UNKNOWN && alloc_state(st, c->total_len) < 0)
		return HM_ST_NOT_RUNNING;
	s = &st->slots[c->index];
	if (s->state == SLOT_DONE)
		return HM_ST_DUPLICATE;
	unassign(st, c->index);
	s->state = SLOT_DONE;
	if (c->data_len)
		memcpy(st->buf + (uint64_t)c->index * HM_ST_CHUNK_SIZE, c->data, c->data_len);
	st->done++;
	st->stats[from].accepted++;
	st->load[from].consecutive_timeouts = 0;
	if (st->done == st->count) {
		/* Every chunk verified, so this holds; checked anyway, since a
		 * wrong state must never be handed out. */
		if (hm_st_state_digest(st->buf, st->target.total_len, d) < 0 ||
		    memcmp(d, st->target.digest, HM_DIGEST_LEN) != 0)
			fail(st, HM_ST_FAIL_DIGEST);
		else
			st->state = HM_ST_DONE;
	}
	return HM_ST_ACCEPTED;
}

enum hm_st_verdict hm_st_on_payload(struct hm_st *st, uint32_t from, const uint8_t *p, size_t len)
{
	enum hm_st_verdict v = admit(st, from);
	struct hm_st_chunk c;

	if (v != HM_ST_ACCEPTED)
		return v;
	if (hm_st_chunk_decode(p, len, &c) < 0) {
		/* No correct replica sends a malformed chunk. */
		blame(st, from);
		return HM_ST_BAD_CHUNK;
	}
	return hm_st_on_chunk(st, from, &c);
}

uint8_t *hm_st_take(struct hm_st *st, uint64_t *len)
{
	uint8_t *b;

	if (st->state != HM_ST_DONE)
		return NULL;
	b = st->buf;
	st->buf = NULL;
	*len = st->target.total_len;
	return b;
}

const char *hm_st_verdict_name(enum hm_st_verdict v)
{
	switch (v) {
	case HM_ST_ACCEPTED: return "accepted";
	case HM_ST_DUPLICATE: return "duplicate";
	case HM_ST_STALE: return "stale";
	case HM_ST_BAD_CHUNK: return "bad_chunk";
	case HM_ST_FROM_FAULTY: return "from_faulty";
	case HM_ST_NOT_RUNNING: return "not_running";
	}
	return "unknown";
}

const char *hm_st_failure_name(enum hm_st_failure f)
{
	switch (f) {
	case HM_ST_FAIL_NONE: return "none";
	case HM_ST_FAIL_NO_PEERS: return "no_peers";
	case HM_ST_FAIL_ATTEMPTS: return "attempts";
	case HM_ST_FAIL_BAD_TARGET: return "bad_target";
	case HM_ST_FAIL_NOMEM: return "nomem";
	case HM_ST_FAIL_DIGEST: return "digest";
	}
	return "unknown";
}
