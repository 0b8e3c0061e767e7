// SPDX-License-Identifier: MIT
/* Test-only Byzantine behaviour on the send path (see byzantine.h). */
#include "testing/byzantine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

#define REPLAY_RING 64

struct delayed {
	uint64_t at;
	uint32_t to;
	size_t len;
	uint8_t *buf;
};

struct hm_byz {
	struct hm_byz_opts o;
	uint32_t id, n;
	uint64_t window;
	const struct hm_keypair *keys;
	struct hm_keypair forger;       /* a key that is not ours */
	uint64_t rng;
	uint64_t start;                 /* first time seen (crash clock) */
	bool crashed;
	struct hm_byz_stats st;

	struct { uint8_t *buf; size_t len; } ring[REPLAY_RING];
	uint32_t ring_next, ring_used;

	struct delayed *q;              /* delayed votes, in time order */
	size_t q_len, q_cap;
};

static const char *const mode_names[HM_BYZ_MODE_MAX] = {
	[HM_BYZ_CRASH] = "crash",
	[HM_BYZ_SILENT] = "silent-primary",
	[HM_BYZ_EQUIVOCATE] = "equivocate",
	[HM_BYZ_FORGE_SIG] = "forge-sig",
	[HM_BYZ_CORRUPT_SIG] = "corrupt-sig",
	[HM_BYZ_REPLAY] = "replay",
	[HM_BYZ_FUTURE_VOTES] = "future-votes",
	[HM_BYZ_DELAY_VOTES] = "delay-votes",
	[HM_BYZ_BAD_CHECKPOINT] = "bad-checkpoint",
	[HM_BYZ_BAD_CHUNK] = "bad-chunk",
};

const char *hm_byz_mode_name(enum hm_byz_mode m)
{
	return (unsigned)m < HM_BYZ_MODE_MAX ? mode_names[m] : "?";
}

/* ---- options ---------------------------------------------------------- */

static int parse_one(const char *item, size_t len, struct hm_byz_opts *o, char *err,
		     size_t errlen)
{
	const char *colon = memchr(item, ':', len);
	size_t name_len = colon ? (size_t)(colon - item) : len;

	for (int m = 0; m < HM_BYZ_MODE_MAX; m++) {
		char num[16], *end;
		unsigned long v;

		if (strlen(mode_names[m]) != name_len || memcmp(item, mode_names[m], name_len))
			continue;
		o->modes |= 1u << m;
		if (!colon)
			return 0;
		if (len - name_len - 1 == 0 || len - name_len - 1 >= sizeof(num))
			break;
		memcpy(num, colon + 1, len - name_len - 1);
		num[len - name_len - 1] = 0;
		v = strtoul(num, &end, 10);
		if (*end || v == 0 || v > 3600000)
			break;
		o->arg[m] = (uint32_t)v;
		return 0;
	}
	snprintf(err, errlen, "bad Byzantine mode '%.*s' (modes: crash[:MS], silent-primary, "
		 "equivocate, forge-sig, corrupt-sig, replay[:EVERY], future-votes, "
		 "delay-votes[:MS], bad-checkpoint, bad-chunk)", (int)len, item);
	return -1;
}

int hm_byz_parse(const char *spec, struct hm_byz_opts *o, char *err, size_t errlen)
{
	memset(o, 0, sizeof(*o));
	o->seed = 1;
	if (!spec || !*spec) {
		snprintf(err, errlen, "empty Byzantine mode list");
		return -1;
	}
	while (*spec) {
		const char *comma = strchr(spec, ',');
		size_t len = comma ? (size_t)(comma - spec) : strlen(spec);

		if (parse_one(spec, len, o, err, errlen) < 0)
			return -1;
		spec += len + (comma ? 1 : 0);
	}
	return 0;
}

char *hm_byz_describe(const struct hm_byz_opts *o, char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = 0;
	for (int m = 0; m < HM_BYZ_MODE_MAX && off < len; m++) {
		if (!(o->modes >> m & 1))
			continue;
		off += (size_t)snprintf(buf + off, len - off, "%s%s", off ? "," : "", mode_names[m]);
		if (o->arg[m] && off < len)
			off += (size_t)snprintf(buf + off, len - off, ":%u", o->arg[m]);
	}
	return buf;
}

/* ---- state ------------------------------------------------------------ */

static uint64_t rnd(struct hm_byz *b)
{
	b->rng ^= b->rng >> 12;
	b->rng ^= b->rng << 25;
	b->rng ^= b->rng >> 27;
	return b->rng * 2685821657736338717ull;
}

static uint32_t arg_or(const struct hm_byz *b, enum hm_byz_mode m, uint32_t dflt)
{
	return b->o.arg[m] ? b->o.arg[m] : dflt;
}

static bool on(const struct hm_byz *b, enum hm_byz_mode m)
{
	return b->o.modes >> m & 1;
}

struct hm_byz *hm_byz_new(const struct hm_byz_opts *o, uint32_t id, uint32_t n, uint64_t window,
			  const struct hm_keypair *keys)
{
	struct hm_byz *b = calloc(1, sizeof(*b));
	uint8_t seed[32];

	if (!b)
		return NULL;
	b->o = *o;
	b->id = id;
	b->n = n;
	b->window = window;
	b->keys = keys;
	b->rng = (o->seed + id + 1) * 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 4; i++) {
		uint64_t r = rnd(b);

		memcpy(seed + 8 * i, &r, 8);
	}
	if (hm_keypair_from_seed(&b->forger, seed) < 0) {
		free(b);
		return NULL;
	}
	return b;
}

void hm_byz_free(struct hm_byz *b)
{
	if (!b)
		return;
	for (uint32_t i = 0; i < REPLAY_RING; i++)
		free(b->ring[i].buf);
	for (size_t i = 0; i < b->q_len; i++)
		free(b->q[i].buf);
	free(b->q);
	free(b);
}

const struct hm_byz_stats *hm_byz_stats(const struct hm_byz *b)
{
	return &b->st;
}

/* ---- mutations -------------------------------------------------------- */

/* A datagram being rewritten: the decoded original and a scratch buffer
 * big enough for it (or a replacement no larger than HM_HDR_LEN + 4). */
struct out {
	struct hm_msg m;
	uint8_t *buf;
	size_t len;
	bool changed;
};

/* Rebuild the datagram with a new view/seq/digest/payload, signed with kp:
 * everything a liar controls.  digest NULL: H(payload). */
static void rebuild(struct out *x, uint64_t seq, const uint8_t *digest, const uint8_t *payload,
		    uint32_t plen, const struct hm_keypair *kp)
{
	uint8_t *nb = malloc(HM_HDR_LEN + plen);

	if (!nb)
		abort();
	x->len = hm_msg_build_flags(nb, HM_HDR_LEN + plen, x->m.type, x->m.flags, x->m.sender,
				    x->m.view, seq, digest, payload, plen, kp);
	free(x->buf);
	x->buf = nb;
	/* the decoded fields point into the new buffer now */
	x->m.hdr = (const struct hm_hdr *)nb;
	x->m.seq = seq;
	x->m.digest = nb + HM_OFF_DIGEST;
	x->m.payload = nb + HM_HDR_LEN;
	x->m.payload_len = plen;
	x->changed = true;
}

static bool is_vote(uint8_t type)
{
	return type == HM_MSG_PREPARE || type == HM_MSG_COMMIT;
}

/* Equivocation: the replicas above the middle of the others get the null
 * batch in place of the real one, properly signed: two PRE-PREPAREs for one
 * (view, seq) with different digests, both ours. */
static bool equivocate(struct hm_byz *b, struct out *x, uint32_t to)
{
	static const uint8_t null_batch[4];
	uint32_t rank = to > b->id ? to - 1 : to; /* position among the others */

	if (x->m.type != HM_MSG_PRE_PREPARE || rank < (b->n - 1) / 2)
		return false;
	rebuild(x, x->m.seq, NULL, null_batch, sizeof(null_batch), b->keys);
	return true;
}

static bool future_vote(struct hm_byz *b, struct out *x)
{
	uint8_t d[HM_DIGEST_LEN];

	if (!is_vote(x->m.type))
		return false;
	memcpy(d, x->m.digest, sizeof(d));
	rebuild(x, x->m.seq + b->window + 1 + rnd(b) % 8, d, NULL, 0, b->keys);
	return true;
}

static bool bad_checkpoint(struct hm_byz *b, struct out *x)
{
	uint8_t d[HM_DIGEST_LEN];

	if (x->m.type != HM_MSG_CHECKPOINT)
		return false;
	memcpy(d, x->m.digest, sizeof(d));
	d[0] ^= 0x5a;
	rebuild(x, x->m.seq, d, NULL, 0, b->keys);
	return true;
}

/* The chunk's data is at the end of the payload: flip its last byte and
 * re-hash and re-sign, so only the chunk's own proof can catch it. */
static bool bad_chunk(struct hm_byz *b, struct out *x)
{
	uint8_t *p;
	uint32_t plen = x->m.payload_len;

	if (x->m.type != HM_MSG_STATE_CHUNK || plen == 0)
		return false;
	p = malloc(plen);
	if (!p)
		abort();
	memcpy(p, x->m.payload, plen);
	p[plen - 1] ^= 0x01;
	rebuild(x, x->m.seq, NULL, p, plen, b->keys);
	free(p);
	return true;
}

static bool sig_type(const struct hm_byz *b, uint8_t type)
{
	return !b->o.sig_types || (b->o.sig_types >> type & 1);
}

static bool forge_sig(struct hm_byz *b, struct out *x)
{
	uint8_t d[HM_DIGEST_LEN];

	if (!sig_type(b, x->m.type))
		return false;
	memcpy(d, x->m.digest, sizeof(d));
	rebuild(x, x->m.seq, d, x->m.payload_len ? x->m.payload : NULL, x->m.payload_len,
		&b->forger);
	return true;
}

/* R's first byte flipped: S stays canonical, so it passes the encoding
 * pre-filter and fails only the verification. */
static bool corrupt_sig(struct hm_byz *b, struct out *x)
{
	if (!sig_type(b, x->m.type))
		return false;
	x->buf[HM_OFF_SIG] ^= 0x01;
	x->changed = true;
	return true;
}

/* ---- delays and replays ------------------------------------------------ */

static void enqueue(struct hm_byz *b, uint64_t at, uint32_t to, const uint8_t *buf, size_t len)
{
	size_t i;

	if (b->q_len == b->q_cap) {
		b->q_cap = b->q_cap ? 2 * b->q_cap : 64;
		b->q = realloc(b->q, b->q_cap * sizeof(*b->q));
		if (!b->q)
			abort();
	}
	/* at is now + a constant, so appending keeps the queue in order;
	 * insert from the back for the general case */
	for (i = b->q_len; i > 0 && b->q[i - 1].at > at; i--)
		b->q[i] = b->q[i - 1];
	b->q[i] = (struct delayed){ .at = at, .to = to, .len = len, .buf = malloc(len) };
	if (!b->q[i].buf)
		abort();
	memcpy(b->q[i].buf, buf, len);
	b->q_len++;
}

static void remember(struct hm_byz *b, const uint8_t *buf, size_t len)
{
	uint8_t *copy = malloc(len);

	if (!copy)
		abort();
	memcpy(copy, buf, len);
	free(b->ring[b->ring_next].buf);
	b->ring[b->ring_next].buf = copy;
	b->ring[b->ring_next].len = len;
	b->ring_next = (b->ring_next + 1) % REPLAY_RING;
	if (b->ring_used < REPLAY_RING)
		b->ring_used++;
}

/* Every k-th datagram, one we sent before (to anyone) goes out again. */
static void maybe_replay(struct hm_byz *b, uint32_t to, hm_byz_emit emit, void *ctx)
{
	uint32_t k = arg_or(b, HM_BYZ_REPLAY, HM_BYZ_DEFAULT_REPLAY_EVERY);
	uint32_t pick;

	if (!b->ring_used || b->st.seen % k)
		return;
	pick = (uint32_t)(rnd(b) % b->ring_used);
	b->st.applied[HM_BYZ_REPLAY]++;
	emit(ctx, b->ring[pick].buf, b->ring[pick].len, to);
}

/* ---- the send path ----------------------------------------------------- */

bool hm_byz_crashed(struct hm_byz *b, uint64_t now_us)
{
	if (!now_us) /* a host whose clock has not started yet */
		return b->crashed;
	if (!b->start)
		b->start = now_us;
	if (on(b, HM_BYZ_CRASH) && !b->crashed &&
	    now_us >= b->start + 1000ull * arg_or(b, HM_BYZ_CRASH, HM_BYZ_DEFAULT_CRASH_MS)) {
		b->crashed = true;
		b->st.applied[HM_BYZ_CRASH]++;
	}
	return b->crashed;
}

/* Apply the content modes in a fixed order; each one that fires counts. */
static void mutate(struct hm_byz *b, struct out *x, uint32_t to)
{
	if (on(b, HM_BYZ_EQUIVOCATE) && equivocate(b, x, to))
		b->st.applied[HM_BYZ_EQUIVOCATE]++;
	if (on(b, HM_BYZ_FUTURE_VOTES) && future_vote(b, x))
		b->st.applied[HM_BYZ_FUTURE_VOTES]++;
	if (on(b, HM_BYZ_BAD_CHECKPOINT) && bad_checkpoint(b, x))
		b->st.applied[HM_BYZ_BAD_CHECKPOINT]++;
	if (on(b, HM_BYZ_BAD_CHUNK) && bad_chunk(b, x))
		b->st.applied[HM_BYZ_BAD_CHUNK]++;
	if (on(b, HM_BYZ_FORGE_SIG) && forge_sig(b, x))
		b->st.applied[HM_BYZ_FORGE_SIG]++;
	if (on(b, HM_BYZ_CORRUPT_SIG) && corrupt_sig(b, x))
		b->st.applied[HM_BYZ_CORRUPT_SIG]++;
}

void hm_byz_outgoing(struct hm_byz *b, const uint8_t *buf, size_t len, uint32_t to, bool primary,
		     uint64_t now_us, hm_byz_emit emit, void *ctx)
{
	enum hm_drop_reason why;
	struct out x = { .len = len };

	b->st.seen++;
	if (hm_byz_crashed(b, now_us)) {
		b->st.dropped++;
		return;
	}
	if (on(b, HM_BYZ_SILENT) && primary) {
		b->st.applied[HM_BYZ_SILENT]++;
		b->st.dropped++;
		return;
	}
	/* What we cannot decode we pass on untouched (the core built it). */
	if (hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &x.m, &why) < 0) {
		emit(ctx, buf, len, to);
		return;
	}
	x.buf = malloc(len);
	if (!x.buf)
		abort();
	memcpy(x.buf, buf, len);
	x.m.hdr = (const struct hm_hdr *)x.buf;
	x.m.digest = x.buf + HM_OFF_DIGEST;
	x.m.payload = x.buf + HM_HDR_LEN;
	mutate(b, &x, to);
	if (on(b, HM_BYZ_REPLAY))
		maybe_replay(b, to, emit, ctx);
	if (on(b, HM_BYZ_DELAY_VOTES) && is_vote(x.m.type)) {
		b->st.applied[HM_BYZ_DELAY_VOTES]++;
		enqueue(b, now_us + 1000ull * arg_or(b, HM_BYZ_DELAY_VOTES, HM_BYZ_DEFAULT_DELAY_MS),
			to, x.buf, x.len);
	} else {
		emit(ctx, x.buf, x.len, to);
	}
	/* remember the original: a replay is of what we really sent before */
	if (on(b, HM_BYZ_REPLAY))
		remember(b, buf, len);
	free(x.buf);
}

void hm_byz_tick(struct hm_byz *b, uint64_t now_us, hm_byz_emit emit, void *ctx)
{
	size_t done = 0;

	if (hm_byz_crashed(b, now_us))
		return;
	while (done < b->q_len && b->q[done].at <= now_us) {
		emit(ctx, b->q[done].buf, b->q[done].len, b->q[done].to);
		free(b->q[done].buf);
		done++;
	}
	if (done) {
		memmove(b->q, b->q + done, (b->q_len - done) * sizeof(*b->q));
		b->q_len -= done;
	}
}

uint64_t hm_byz_next_deadline(const struct hm_byz *b)
{
	uint64_t t = b->q_len ? b->q[0].at : 0;

	if (on(b, HM_BYZ_CRASH) && !b->crashed && b->start) {
		uint64_t c = b->start + 1000ull * arg_or(b, HM_BYZ_CRASH, HM_BYZ_DEFAULT_CRASH_MS);

		if (!t || c < t)
			t = c;
	}
	return t;
}

/* ---- the node's send-path hook ----------------------------------------- */

static void hook_outgoing(void *ctx, const uint8_t *buf, size_t len, uint32_t to, bool primary,
			  uint64_t now_us, hm_send_emit emit, void *emit_ctx)
{
	hm_byz_outgoing(ctx, buf, len, to, primary, now_us, emit, emit_ctx);
}

static void hook_tick(void *ctx, uint64_t now_us, hm_send_emit emit, void *emit_ctx)
{
	hm_byz_tick(ctx, now_us, emit, emit_ctx);
}

static uint64_t hook_next_deadline(void *ctx)
{
	return hm_byz_next_deadline(ctx);
}

struct hm_send_hook hm_byz_send_hook(struct hm_byz *b)
{
	return (struct hm_send_hook){ .outgoing = hook_outgoing, .tick = hook_tick,
				      .next_deadline = hook_next_deadline, .ctx = b };
}
