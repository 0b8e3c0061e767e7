// SPDX-License-Identifier: MIT
/* The DNS agreement as a replicated service (see dns_service.h). */
#include "service/dns/dns_service.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "service/dns/dns_chain.h"
#include "service/dns/dns_msg.h"
#include "common/wire.h"

#define SNAP_MAGIC 0x484d4453u /* "HMDS" */
/* Bounds on the state whatever the clients send: a full table refuses new
 * lookups (counted); a full cache drops the entry that expires first. */
#define MAX_LOOKUPS 16384
#define MAX_CACHE 65536
/* 2: prefetch flags of lookups and entries, prefetch statistics */
#define SNAP_VERSION 2

struct obs {
	bool have;
	uint8_t status;
	uint16_t ede;
	uint32_t ttl;
	uint8_t digest[HM_DIGEST_LEN];
	uint8_t *canon;
	size_t canon_len;
};

struct lookup {
	struct hm_dns_q q;
	int64_t t;
	bool prefetch;           /* opened while Q was still cached */
	struct obs obs[HM_MAX_REPLICAS];
};

struct centry {
	struct hm_dns_entry e;
	uint8_t *canon;          /* owned; e.canon points here */
	uint32_t counted;        /* replicas whose late observation was compared */
	bool prefetched;         /* a prefetch lookup was opened for this entry */
};

struct hm_dns_service {
	struct hm_dns_service_config cfg;
	struct lookup **lookups; /* sorted by Q */
	size_t n_lookups, cap_lookups;
	struct centry **cache;   /* sorted by Q */
	size_t n_cache, cap_cache;
	int64_t now_t;           /* largest T executed: the clock eviction uses */
	struct hm_dns_service_stats st;
};

/* ---- byte buffers -------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t len, off;
	bool bad;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || r->len - r->off < n) {
		r->bad = true;
		return NULL;
	}
	p = r->p + r->off;
	r->off += n;
	return p;
}

static uint8_t rd_u8(struct rd *r)
{
	const uint8_t *p = rd_take(r, 1);

	return p ? p[0] : 0;
}

static uint16_t rd_u16(struct rd *r)
{
	const uint8_t *p = rd_take(r, 2);

	return p ? hm_get_be16(p) : 0;
}

static uint32_t rd_u32(struct rd *r)
{
	const uint8_t *p = rd_take(r, 4);

	return p ? hm_get_be32(p) : 0;
}

static uint64_t rd_u64(struct rd *r)
{
	const uint8_t *p = rd_take(r, 8);

	return p ? hm_get_be64(p) : 0;
}

struct wr {
	uint8_t *p;
	size_t cap, off;
	bool bad;
	bool grow; /* heap buffer: realloc as needed */
};

static uint8_t *wr_room(struct wr *w, size_t n)
{
	if (w->bad)
		return NULL;
	if (w->cap - w->off < n) {
		size_t cap = w->cap ? w->cap : 256;
		uint8_t *p;

		if (!w->grow) {
			w->bad = true;
			return NULL;
		}
		while (cap - w->off < n)
			cap *= 2;
		p = realloc(w->p, cap);
		if (!p) {
			w->bad = true;
			return NULL;
		}
		w->p = p;
		w->cap = cap;
	}
	w->off += n;
	return w->p + w->off - n;
}

static void wr_bytes(struct wr *w, const void *d, size_t n)
{
	uint8_t *p = wr_room(w, n);

	if (p && n)
		memcpy(p, d, n);
}

static void wr_u8(struct wr *w, uint8_t v)
{
	wr_bytes(w, &v, 1);
}

static void wr_u16(struct wr *w, uint16_t v)
{
	uint8_t b[2] = { (uint8_t)(v >> 8), (uint8_t)v };

	wr_bytes(w, b, 2);
}

static void wr_u32(struct wr *w, uint32_t v)
{
	uint8_t *p = wr_room(w, 4);

	if (p)
		hm_put_be32(p, v);
}

static void wr_u64(struct wr *w, uint64_t v)
{
	uint8_t *p = wr_room(w, 8);

	if (p)
		hm_put_be64(p, v);
}

/* ---- Q ------------------------------------------------------------------- */

/* A wire name in canonical form: labels within bounds, ends at the root,
 * no upper case (so one Q has one encoding). */
static bool qname_ok(const uint8_t *n, size_t len)
{
	size_t i = 0;

	while (i < len) {
		uint8_t l = n[i];

		if (l == 0)
			return i + 1 == len;
		if (l > 63 || i + 1 + l >= len)
			return false;
		for (size_t j = i + 1; j <= i + l; j++)
			if (n[j] >= 'A' && n[j] <= 'Z')
				return false;
		i += 1u + l;
	}
	return false;
}

int hm_dns_q_from_name(struct hm_dns_q *q, const uint8_t *qname, size_t qname_len,
		       uint16_t qtype, uint16_t qclass)
{
	if (!qname_len || qname_len > sizeof(q->qname))
		return -1;
	memset(q, 0, sizeof(*q));
	memcpy(q->qname, qname, qname_len);
	/* Lower-case the label bytes only (a length byte may equal 'A'..'Z'). */
	for (size_t i = 0; i < qname_len && q->qname[i];) {
		uint8_t l = q->qname[i];

		for (size_t j = i + 1; j <= i + l && j < qname_len; j++)
			if (q->qname[j] >= 'A' && q->qname[j] <= 'Z')
				q->qname[j] = (uint8_t)(q->qname[j] + 32);
		i += 1u + l;
	}
	q->qname_len = (uint8_t)qname_len;
	q->qtype = qtype;
	q->qclass = qclass;
	return qname_ok(q->qname, qname_len) ? 0 : -1;
}

static void wr_q(struct wr *w, const struct hm_dns_q *q)
{
	wr_u8(w, q->qname_len);
	wr_bytes(w, q->qname, q->qname_len);
	wr_u16(w, q->qtype);
	wr_u16(w, q->qclass);
}

static bool rd_q(struct rd *r, struct hm_dns_q *q)
{
	const uint8_t *n;

	memset(q, 0, sizeof(*q));
	q->qname_len = rd_u8(r);
	n = rd_take(r, q->qname_len);
	q->qtype = rd_u16(r);
	q->qclass = rd_u16(r);
	if (r->bad || !qname_ok(n, q->qname_len))
		return false;
	memcpy(q->qname, n, q->qname_len);
	return true;
}

size_t hm_dns_q_encode(const struct hm_dns_q *q, uint8_t *out, size_t cap)
{
	struct wr w = { .p = out, .cap = cap };

	wr_q(&w, q);
	return w.bad ? 0 : w.off;
}

static int q_cmp(const struct hm_dns_q *a, const struct hm_dns_q *b)
{
	if (a->qname_len != b->qname_len)
		return a->qname_len < b->qname_len ? -1 : 1;
	int c = memcmp(a->qname, b->qname, a->qname_len);

	if (c)
		return c;
	if (a->qtype != b->qtype)
		return a->qtype < b->qtype ? -1 : 1;
	if (a->qclass != b->qclass)
		return a->qclass < b->qclass ? -1 : 1;
	return 0;
}

/* Does the (checked) canon answer q?  The canon starts with its version,
 * the lower-case qname, qtype and qclass. */
static bool canon_for(const uint8_t *canon, size_t len, const struct hm_dns_q *q)
{
	if (len < 1u + q->qname_len + 4)
		return false;
	return memcmp(canon + 1, q->qname, q->qname_len) == 0 &&
	       hm_get_be16(canon + 1 + q->qname_len) == q->qtype &&
	       hm_get_be16(canon + 3 + q->qname_len) == q->qclass;
}

/* rcode and flags of a checked canon. */
static uint8_t canon_rcode(const uint8_t *canon, const struct hm_dns_q *q)
{
	return canon[5 + q->qname_len];
}

static bool canon_secure(const uint8_t *canon, const struct hm_dns_q *q)
{
	return canon[6 + q->qname_len] & HM_DNS_CANON_SECURE;
}

/* ---- sorted tables -------------------------------------------------------- */

/* Binary search by Q in a sorted array of n pointers to records whose
 * struct hm_dns_q sits q_off bytes in: the index of q, or where it would go
 * (*found false). */
static size_t find_q(void *const *arr, size_t n, size_t q_off, const struct hm_dns_q *q,
		     bool *found)
{
	size_t lo = 0, hi = n;

	*found = false;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = q_cmp((const struct hm_dns_q *)((const char *)arr[mid] + q_off), q);

		if (c == 0) {
			*found = true;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static size_t find_lookup(struct hm_dns_service *s, const struct hm_dns_q *q, bool *found)
{
	return find_q((void *const *)s->lookups, s->n_lookups, offsetof(struct lookup, q), q, found);
}

static size_t find_entry(struct hm_dns_service *s, const struct hm_dns_q *q, bool *found)
{
	return find_q((void *const *)s->cache, s->n_cache, offsetof(struct centry, e.q), q, found);
}

static int insert_at(void ***arr, size_t *n, size_t *cap, size_t at, void *item)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 16;
		void **p = realloc(*arr, nc * sizeof(*p));

		if (!p)
			return -1;
		*arr = p;
		*cap = nc;
	}
	memmove(*arr + at + 1, *arr + at, (*n - at) * sizeof(**arr));
	(*arr)[at] = item;
	(*n)++;
	return 0;
}

static void remove_at(void **arr, size_t *n, size_t at)
{
	memmove(arr + at, arr + at + 1, (*n - at - 1) * sizeof(*arr));
	(*n)--;
}

static void lookup_free(struct lookup *l)
{
	if (!l)
		return;
	for (int i = 0; i < HM_MAX_REPLICAS; i++)
		free(l->obs[i].canon);
	free(l);
}

static void centry_free(struct centry *c)
{
	if (c)
		free(c->canon);
	free(c);
}

/* ---- eviction by agreed time -------------------------------------------- */

static void advance(struct hm_dns_service *s, int64_t t)
{
	if (t <= s->now_t)
		return;
	s->now_t = t;
	for (size_t i = 0; i < s->n_cache;) {
		if (s->cache[i]->e.expiry <= t) {
			centry_free(s->cache[i]);
			remove_at((void **)s->cache, &s->n_cache, i);
			s->st.expired++;
		} else {
			i++;
		}
	}
	for (size_t i = 0; i < s->n_lookups;) {
		if (s->lookups[i]->t + (int64_t)s->cfg.lookup_timeout_s < t) {
			lookup_free(s->lookups[i]);
			remove_at((void **)s->lookups, &s->n_lookups, i);
			s->st.timed_out++;
		} else {
			i++;
		}
	}
}

/* ---- deciding ------------------------------------------------------------ */

/* The entry that expires first (ties: the first in Q order) goes. */
static void evict_first_expiring(struct hm_dns_service *s)
{
	size_t victim = 0;

	for (size_t i = 1; i < s->n_cache; i++)
		if (s->cache[i]->e.expiry < s->cache[victim]->e.expiry)
			victim = i;
	centry_free(s->cache[victim]);
	remove_at((void **)s->cache, &s->n_cache, victim);
	s->st.evicted_full++;
}

/* What an observation says, for comparing it with a decision.  A replica
 * whose own resolution failed (upstream timeout or unreachable, SERVFAIL
 * upstream: HM_DNS_OBS_FAILED) saw nothing to contradict the decision: an
 * outage is not poisoning, so it never counts as differing.  A bogus
 * observation against an answer does count: it saw other data. */
static bool obs_agrees(const struct obs *o, const struct hm_dns_entry *e)
{
	if (o->status == HM_DNS_OBS_FAILED)
		return true;
	/* Likewise an answer where the others could not resolve (EDE 22,
	 * 23, ...): only a decision that the data is bogus (EDE 6..12) makes
	 * an answer a contradiction. */
	if (e->rule == HM_DNS_RULE_FAIL)
		return o->status != HM_DNS_OBS_ANSWER || e->ede < HM_EDE_DNSSEC_BOGUS ||
		       e->ede > HM_EDE_NSEC_MISSING;
	return o->status == HM_DNS_OBS_ANSWER && memcmp(o->digest, e->digest, HM_DIGEST_LEN) == 0;
}

static void count_prefetch_failed(struct hm_dns_service *s, const struct lookup *l, uint16_t ede)
{
	s->st.prefetch_failed++;
	if (s->cfg.hooks.prefetch_failed)
		s->cfg.hooks.prefetch_failed(s->cfg.hooks.arg, &l->q, ede);
}

/* A prefetch's answer takes the place of the entry at index at. */
static bool prefetch_replace(struct hm_dns_service *s, size_t at, struct centry *c)
{
	if (c->e.rule == HM_DNS_RULE_FAIL)
		return false;
	centry_free(s->cache[at]);
	s->cache[at] = c;
	return true;
}

/* A prefetch that failed (or, which cannot happen, a second decision for a
 * cached Q): the entry at index at stays and stands as the decision. */
static struct centry *prefetch_keep(struct hm_dns_service *s, size_t li, size_t at,
				    struct centry *c, uint16_t ede)
{
	struct lookup *l = s->lookups[li];

	if (l->prefetch)
		count_prefetch_failed(s, l, c->e.rule == HM_DNS_RULE_FAIL ? ede : 0);
	centry_free(c);
	lookup_free(l);
	remove_at((void **)s->lookups, &s->n_lookups, li);
	return s->cache[at];
}

static struct centry *decide(struct hm_dns_service *s, size_t li, uint8_t rule,
			     const struct obs *winner, uint32_t ttl, uint16_t ede)
{
	bool no_agreement = rule == HM_DNS_RULE_FAIL && ede == HM_EDE_OTHER;
	struct lookup *l = s->lookups[li];
	struct centry *c = calloc(1, sizeof(*c));
	bool found;
	size_t at;

	if (!c)
		return NULL;
	c->e.q = l->q;
	c->e.rule = rule;
	c->e.t = l->t;
	if (winner) {
		c->canon = malloc(winner->canon_len);
		if (!c->canon) {
			free(c);
			return NULL;
		}
		memcpy(c->canon, winner->canon, winner->canon_len);
		c->e.canon = c->canon;
		c->e.canon_len = winner->canon_len;
		memcpy(c->e.digest, winner->digest, HM_DIGEST_LEN);
		c->e.rcode = canon_rcode(winner->canon, &l->q);
		c->e.ttl = ttl < s->cfg.max_ttl ? ttl : s->cfg.max_ttl;
	} else {
		c->e.rcode = HM_DNS_SERVFAIL;
		c->e.ede = ede;
		c->e.ttl = HM_DNS_NEG_TTL;
	}
	c->e.expiry = c->e.t + c->e.ttl;
	at = find_entry(s, &l->q, &found);
	if (found) {
		/* A prefetch decided while the old entry lives: an answer
		 * replaces it, a failure leaves it (returned as the decision). */
		if (!l->prefetch || !prefetch_replace(s, at, c))
			return prefetch_keep(s, li, at, c, ede);
	} else {
		if (s->n_cache >= MAX_CACHE) {
			evict_first_expiring(s);
			at = find_entry(s, &l->q, &found);
		}
		if (insert_at((void ***)&s->cache, &s->n_cache, &s->cap_cache, at, c) < 0) {
			centry_free(c);
			return NULL;
		}
	}
	if (l->prefetch && rule != HM_DNS_RULE_FAIL)
		s->st.prefetch_refreshed++;
	else if (l->prefetch)
		count_prefetch_failed(s, l, ede);
	/* The poisoning statistic: who observed something else.  Without
	 * agreement there is nothing to differ from. */
	for (uint32_t i = 0; i < s->cfg.n; i++)
		if (l->obs[i].have) {
			c->counted |= 1u << i;
			if (!no_agreement && !obs_agrees(&l->obs[i], &c->e))
				s->st.differ[i]++;
		}
	if (rule == HM_DNS_RULE_DNSSEC)
		s->st.decided_dnssec++;
	else if (rule == HM_DNS_RULE_OBSERVED)
		s->st.decided_observed++;
	else
		s->st.decided_fail++;
	lookup_free(l);
	remove_at((void **)s->lookups, &s->n_lookups, li);
	return c;
}

/* The EDE most failing observations share (ties: the smallest code). */
static uint16_t common_ede(const struct lookup *l, uint32_t n)
{
	uint16_t best = HM_EDE_OTHER;
	uint32_t best_count = 0;

	for (uint32_t i = 0; i < n; i++) {
		uint32_t count = 0;

		if (!l->obs[i].have || l->obs[i].status == HM_DNS_OBS_ANSWER)
			continue;
		for (uint32_t j = 0; j < n; j++)
			count += l->obs[j].have && l->obs[j].status != HM_DNS_OBS_ANSWER &&
				 l->obs[j].ede == l->obs[i].ede;
		if (count > best_count || (count == best_count && l->obs[i].ede < best)) {
			best = l->obs[i].ede;
			best_count = count;
		}
	}
	return best;
}

/* Rules (b) and (c) over the observations recorded so far. */
static struct centry *try_decide(struct hm_dns_service *s, size_t li)
{
	struct lookup *l = s->lookups[li];
	uint32_t n = s->cfg.n, f = s->cfg.f, total = 0, failing = 0;

	for (uint32_t i = 0; i < n; i++) {
		const struct obs *o = &l->obs[i];
		uint32_t same = 0, ttl = UINT32_MAX;

		if (!o->have)
			continue;
		total++;
		if (o->status != HM_DNS_OBS_ANSWER) {
			failing++;
			continue;
		}
		for (uint32_t j = 0; j < n; j++)
			if (l->obs[j].have && l->obs[j].status == HM_DNS_OBS_ANSWER &&
			    memcmp(l->obs[j].digest, o->digest, HM_DIGEST_LEN) == 0) {
				same++;
				if (l->obs[j].ttl < ttl)
					ttl = l->obs[j].ttl;
			}
		if (same >= f + 1)
			return decide(s, li, HM_DNS_RULE_OBSERVED, o, ttl, 0);
	}
	if (failing >= f + 1)
		return decide(s, li, HM_DNS_RULE_FAIL, NULL, 0, common_ede(l, n));
	if (total >= 2 * f + 1)
		return decide(s, li, HM_DNS_RULE_FAIL, NULL, 0, HM_EDE_OTHER);
	return NULL;
}

/* ---- encodings ------------------------------------------------------------ */

struct observe {
	struct hm_dns_q q;
	int64_t t;
	uint8_t status;
	uint16_t ede;
	uint32_t ttl;
	const uint8_t *canon, *chain;
	size_t canon_len, chain_len;
};

size_t hm_dns_observe_encode(const struct hm_dns_q *q, int64_t t, uint8_t status, uint16_t ede,
			     uint32_t ttl, const uint8_t *canon, size_t canon_len,
			     const uint8_t *chain, size_t chain_len, uint8_t *out, size_t cap)
{
	struct wr w = { .p = out, .cap = cap };

	wr_u8(&w, HM_DNS_OP_OBSERVE);
	wr_q(&w, q);
	wr_u64(&w, (uint64_t)t);
	wr_u8(&w, status);
	wr_u16(&w, ede);
	wr_u32(&w, ttl);
	wr_u32(&w, (uint32_t)canon_len);
	wr_bytes(&w, canon, canon_len);
	wr_u32(&w, (uint32_t)chain_len);
	wr_bytes(&w, chain, chain_len);
	return w.bad ? 0 : w.off;
}

size_t hm_dns_certify_encode(const struct hm_dns_q *q, uint8_t *out, size_t cap)
{
	struct wr w = { .p = out, .cap = cap };

	wr_u8(&w, HM_DNS_OP_CERTIFY);
	wr_q(&w, q);
	return w.bad ? 0 : w.off;
}

size_t hm_dns_observe_many_len(size_t total_op_len, size_t n)
{
	return 1 + 2 + 4 * n + total_op_len;
}

size_t hm_dns_observe_many_encode(const uint8_t *const *ops, const size_t *lens, size_t n,
				  uint8_t *out, size_t cap)
{
	struct wr w = { .p = out, .cap = cap };

	if (!n || n > HM_DNS_OBSERVE_MANY_MAX)
		return 0;
	wr_u8(&w, HM_DNS_OP_OBSERVE_MANY);
	wr_u16(&w, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		wr_u32(&w, (uint32_t)lens[i]);
		wr_bytes(&w, ops[i], lens[i]);
	}
	return w.bad ? 0 : w.off;
}

/* The i-th OBSERVE inside an OBSERVE_MANY: call with *r positioned after
 * the count; false at a bad length. */
static bool many_next(struct rd *r, const uint8_t **op, size_t *len)
{
	*len = rd_u32(r);
	*op = rd_take(r, *len);
	return !r->bad && *len;
}

/* Parse and check an OBSERVE: the encoding, the status, and that a canon
 * is canonical and answers Q.  No trust in the sender beyond that. */
static bool observe_parse(const uint8_t *op, size_t len, struct observe *o)
{
	struct rd r = { .p = op, .len = len };

	if (rd_u8(&r) != HM_DNS_OP_OBSERVE || !rd_q(&r, &o->q))
		return false;
	o->t = (int64_t)rd_u64(&r);
	o->status = rd_u8(&r);
	o->ede = rd_u16(&r);
	o->ttl = rd_u32(&r);
	o->canon_len = rd_u32(&r);
	o->canon = rd_take(&r, o->canon_len);
	o->chain_len = rd_u32(&r);
	o->chain = rd_take(&r, o->chain_len);
	if (r.bad || r.off != len || o->t <= 0)
		return false;
	if (o->status == HM_DNS_OBS_ANSWER)
		return o->canon_len && hm_dns_canon_check(o->canon, o->canon_len) == 0 &&
		       canon_for(o->canon, o->canon_len, &o->q);
	return (o->status == HM_DNS_OBS_BOGUS || o->status == HM_DNS_OBS_FAILED) &&
	       !o->canon_len && !o->chain_len;
}

static void wr_entry(struct wr *w, const struct hm_dns_entry *e, bool with_canon)
{
	wr_q(w, &e->q);
	wr_u8(w, e->rule);
	wr_u8(w, e->rcode);
	wr_u16(w, e->ede);
	wr_u64(w, (uint64_t)e->t);
	wr_u64(w, (uint64_t)e->expiry);
	wr_u32(w, e->ttl);
	wr_bytes(w, e->digest, HM_DIGEST_LEN);
	wr_u32(w, with_canon ? (uint32_t)e->canon_len : 0);
	if (with_canon)
		wr_bytes(w, e->canon, e->canon_len);
}

static bool rd_entry(struct rd *r, struct hm_dns_entry *e)
{
	const uint8_t *d;

	memset(e, 0, sizeof(*e));
	if (!rd_q(r, &e->q))
		return false;
	e->rule = rd_u8(r);
	e->rcode = rd_u8(r);
	e->ede = rd_u16(r);
	e->t = (int64_t)rd_u64(r);
	e->expiry = (int64_t)rd_u64(r);
	e->ttl = rd_u32(r);
	d = rd_take(r, HM_DIGEST_LEN);
	e->canon_len = rd_u32(r);
	e->canon = rd_take(r, e->canon_len);
	if (r->bad || e->rule < HM_DNS_RULE_DNSSEC || e->rule > HM_DNS_RULE_FAIL)
		return false;
	memcpy(e->digest, d, HM_DIGEST_LEN);
	if (!e->canon_len)
		e->canon = NULL;
	return true;
}

size_t hm_dns_entry_encode(const struct hm_dns_entry *e, uint8_t *out, size_t cap)
{
	struct wr w = { .p = out, .cap = cap };

	wr_entry(&w, e, true);
	return w.bad ? 0 : w.off;
}

int hm_dns_entry_decode(const uint8_t *buf, size_t len, struct hm_dns_entry *e)
{
	struct rd r = { .p = buf, .len = len };

	if (!rd_entry(&r, e) || r.off != len)
		return -1;
	if (e->canon) {
		uint8_t d[HM_DIGEST_LEN];

		if (hm_dns_canon_check(e->canon, e->canon_len) < 0 ||
		    !canon_for(e->canon, e->canon_len, &e->q))
			return -1;
		hm_dns_canon_digest(e->canon, e->canon_len, d);
		if (memcmp(d, e->digest, HM_DIGEST_LEN) != 0)
			return -1;
	}
	return 0;
}

/* DECIDED and the entry; without the canon when it does not fit. */
static size_t decided_result(const struct hm_dns_entry *e, uint8_t *out, size_t cap)
{
	struct wr w = { .p = out, .cap = cap };

	wr_u8(&w, HM_DNS_R_DECIDED);
	wr_entry(&w, e, true);
	if (!w.bad)
		return w.off;
	w = (struct wr){ .p = out, .cap = cap };
	wr_u8(&w, HM_DNS_R_DECIDED);
	wr_entry(&w, e, false);
	return w.bad ? 0 : w.off;
}

static size_t code_result(uint8_t code, uint8_t *out, size_t cap)
{
	if (!cap)
		return 0;
	out[0] = code;
	return 1;
}

/* ---- execute ------------------------------------------------------------- */

static bool record(struct lookup *l, uint32_t i, const struct observe *o)
{
	struct obs *ob = &l->obs[i];

	if (o->canon_len) {
		ob->canon = malloc(o->canon_len);
		if (!ob->canon)
			return false;
		memcpy(ob->canon, o->canon, o->canon_len);
		hm_dns_canon_digest(o->canon, o->canon_len, ob->digest);
	}
	ob->have = true;
	ob->status = o->status;
	ob->ede = o->ede;
	ob->ttl = o->ttl;
	ob->canon_len = o->canon_len;
	return true;
}

/* A late observation of a decided Q: only the statistic. */
static size_t late(struct hm_dns_service *s, struct centry *c, uint32_t i, const struct observe *o,
		   uint8_t *out, size_t cap)
{
	s->st.ignored_late++;
	if (!(c->counted & (1u << i))) {
		struct obs tmp = { .status = o->status };

		if (o->canon_len)
			hm_dns_canon_digest(o->canon, o->canon_len, tmp.digest);
		c->counted |= 1u << i;
		if (!obs_agrees(&tmp, &c->e))
			s->st.differ[i]++;
	}
	return code_result(HM_DNS_R_IGNORED, out, cap);
}

static size_t finish_decided(struct hm_dns_service *s, struct centry *c, uint8_t *out, size_t cap)
{
	if (s->cfg.hooks.decided)
		s->cfg.hooks.decided(s->cfg.hooks.arg, &c->e);
	return decided_result(&c->e, out, cap);
}

/* Does an observation of a cached Q open a prefetch?  Its T in the last
 * tenth of the entry's TTL (the entry still lives: advance() evicted it
 * otherwise), an answer worth refreshing, once per entry.  A function of
 * the op and the state only, so every replica agrees. */
static bool prefetch_opens(const struct hm_dns_service *s, const struct centry *c,
			   const struct observe *o)
{
	const struct hm_dns_entry *e = &c->e;
	int64_t window = e->ttl / 10 ? e->ttl / 10 : 1;

	return s->cfg.prefetch && !c->prefetched && e->rule != HM_DNS_RULE_FAIL &&
	       e->ttl >= HM_DNS_PREFETCH_MIN_TTL && o->t > e->t && o->t >= e->expiry - window;
}

/* Observation o (recorded by replica i in lookup li): decide Q by rule (a)
 * when it is a secure answer with a chain that verifies at T, else by the
 * lookup's observations so far (try_decide). */
static size_t observe_decide(struct hm_dns_service *s, size_t li, uint32_t i,
			     const struct observe *o, uint8_t *out, size_t cap)
{
	struct lookup *l = s->lookups[li];
	struct centry *c;

	if (o->status == HM_DNS_OBS_ANSWER && o->chain_len && s->cfg.anchors &&
	    canon_secure(o->canon, &o->q)) {
		char why[128];

		if (hm_dns_chain_verify(s->cfg.anchors, o->canon, o->canon_len, o->chain,
					o->chain_len, o->t, why, sizeof(why)) == 0) {
			c = decide(s, li, HM_DNS_RULE_DNSSEC, &l->obs[i], o->ttl, 0);
			return c ? finish_decided(s, c, out, cap)
				 : code_result(HM_DNS_R_MALFORMED, out, cap);
		}
		s->st.chain_rejected++;
	}
	c = try_decide(s, li);
	if (c)
		return finish_decided(s, c, out, cap);
	return code_result(HM_DNS_R_PENDING, out, cap);
}

static size_t exec_observe(struct hm_dns_service *s, const struct hm_exec_ctx *ctx,
			   const uint8_t *op, size_t len, uint8_t *out, size_t cap)
{
	struct observe o;
	struct lookup *l;
	uint32_t i = ctx->client - HM_REPLICA_CLIENT_BASE;
	bool found, cached;
	size_t li, ci, n;

	if (ctx->client < HM_REPLICA_CLIENT_BASE || i >= s->cfg.n || !observe_parse(op, len, &o)) {
		s->st.malformed++;
		return code_result(HM_DNS_R_MALFORMED, out, cap);
	}
	s->st.observations++;
	advance(s, o.t);
	ci = find_entry(s, &o.q, &cached);
	li = find_lookup(s, &o.q, &found);
	/* Q decided and cached: a late observation, unless it opens a
	 * prefetch or joins the one open. */
	if (cached && (o.t <= s->cache[ci]->e.t || (!found && !prefetch_opens(s, s->cache[ci], &o))))
		return late(s, s->cache[ci], i, &o, out, cap);
	if (found) {
		l = s->lookups[li];
		if (l->t != o.t) {
			/* Ignored, but the observer is told to look again at the
			 * lookup's T. */
			s->st.ignored_t++;
			if (s->cfg.hooks.opened)
				s->cfg.hooks.opened(s->cfg.hooks.arg, &l->q, l->t);
			return code_result(HM_DNS_R_IGNORED, out, cap);
		}
		if (l->obs[i].have) {
			s->st.ignored_dup++;
			return code_result(HM_DNS_R_IGNORED, out, cap);
		}
	} else {
		if (s->n_lookups >= MAX_LOOKUPS) {
			s->st.ignored_full++;
			return code_result(HM_DNS_R_IGNORED, out, cap);
		}
		l = calloc(1, sizeof(*l));
		if (!l || insert_at((void ***)&s->lookups, &s->n_lookups, &s->cap_lookups, li, l) < 0) {
			free(l);
			return code_result(HM_DNS_R_MALFORMED, out, cap);
		}
		l->q = o.q;
		l->t = o.t;
		if (cached) {
			/* find_lookup's index moved nothing in the cache. */
			l->prefetch = true;
			s->cache[ci]->prefetched = true;
			s->st.prefetch_opened++;
		}
	}
	if (!record(l, i, &o))
		return code_result(HM_DNS_R_MALFORMED, out, cap);
	n = observe_decide(s, li, i, &o, out, cap);
	/* After recording, so the observer itself sees it has observed; and
	 * after deciding, so it sees whether its own lookup can still decide
	 * Q or would only be compared with the decision (docs/dns.md, "Audit
	 * lookups"). */
	if (!found && s->cfg.hooks.opened)
		s->cfg.hooks.opened(s->cfg.hooks.arg, &o.q, o.t);
	return n;
}

/* Each OBSERVE in turn, exactly as if it came alone; the result lists each
 * one's result code (the entries themselves are fetched with CERTIFY). */
static size_t exec_observe_many(struct hm_dns_service *s, const struct hm_exec_ctx *ctx,
				const uint8_t *op, size_t len, uint8_t *out, size_t cap)
{
	struct rd r = { .p = op, .len = len };
	struct wr w = { .p = out, .cap = cap };
	uint16_t n;
	uint8_t *scratch;

	rd_u8(&r);
	n = rd_u16(&r);
	if (r.bad || !n || n > HM_DNS_OBSERVE_MANY_MAX) {
		s->st.malformed++;
		return code_result(HM_DNS_R_MALFORMED, out, cap);
	}
	scratch = malloc(HM_MAX_DATAGRAM);
	if (!scratch)
		return code_result(HM_DNS_R_MALFORMED, out, cap);
	wr_u8(&w, HM_DNS_R_MANY);
	wr_u16(&w, n);
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *one;
		size_t one_len;

		if (!many_next(&r, &one, &one_len)) {
			/* check() refuses this before ordering; a batch that
			 * got here anyway counts each missing one malformed. */
			s->st.malformed++;
			wr_u8(&w, HM_DNS_R_MALFORMED);
			continue;
		}
		wr_u8(&w, exec_observe(s, ctx, one, one_len, scratch, HM_MAX_DATAGRAM)
				  ? scratch[0] : HM_DNS_R_MALFORMED);
	}
	free(scratch);
	return w.bad ? code_result(HM_DNS_R_MALFORMED, out, cap) : w.off;
}

static bool certify_parse(const uint8_t *op, size_t len, struct hm_dns_q *q)
{
	struct rd r = { .p = op, .len = len };

	return rd_u8(&r) == HM_DNS_OP_CERTIFY && rd_q(&r, q) && r.off == len;
}

static size_t exec_certify(struct hm_dns_service *s, const uint8_t *op, size_t len, uint8_t *out,
			   size_t cap)
{
	struct hm_dns_q q;
	bool found;
	size_t ci;

	if (!certify_parse(op, len, &q)) {
		s->st.malformed++;
		return code_result(HM_DNS_R_MALFORMED, out, cap);
	}
	ci = find_entry(s, &q, &found);
	if (!found)
		return code_result(HM_DNS_R_NOT_DECIDED, out, cap);
	return decided_result(&s->cache[ci]->e, out, cap);
}

static size_t svc_execute(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op,
			  size_t len, uint8_t *out, size_t cap)
{
	struct hm_dns_service *s = state;
	size_t n;

	if (len && op[0] == HM_DNS_OP_CERTIFY)
		return exec_certify(s, op, len, out, cap);
	if (len && op[0] == HM_DNS_OP_OBSERVE)
		n = exec_observe(s, ctx, op, len, out, cap);
	else if (len && op[0] == HM_DNS_OP_OBSERVE_MANY)
		n = exec_observe_many(s, ctx, op, len, out, cap);
	else {
		s->st.malformed++;
		return code_result(HM_DNS_R_MALFORMED, out, cap);
	}
	if (s->cfg.hooks.executed)
		s->cfg.hooks.executed(s->cfg.hooks.arg, ctx->client, ctx->timestamp);
	return n;
}

/* One OBSERVE: well formed, and its T within skew_s of our wall clock. */
static bool observe_admitted(const struct hm_dns_service *s, const uint8_t *op, size_t len)
{
	struct observe o;
	int64_t now;

	if (!observe_parse(op, len, &o))
		return false;
	if (!s->cfg.wall_clock)
		return true;
	now = s->cfg.wall_clock();
	return o.t >= now - (int64_t)s->cfg.skew_s && o.t <= now + (int64_t)s->cfg.skew_s;
}

/* All or nothing: every OBSERVE inside, and no byte after the last. */
static bool many_admitted(const struct hm_dns_service *s, const uint8_t *op, size_t len)
{
	struct rd r = { .p = op, .len = len };
	uint16_t n;

	rd_u8(&r);
	n = rd_u16(&r);
	if (r.bad || !n || n > HM_DNS_OBSERVE_MANY_MAX)
		return false;
	for (uint16_t i = 0; i < n; i++) {
		const uint8_t *one;
		size_t one_len;

		if (!many_next(&r, &one, &one_len) || !observe_admitted(s, one, one_len))
			return false;
	}
	return r.off == len;
}

static bool svc_check(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op, size_t len)
{
	struct hm_dns_service *s = state;
	struct hm_dns_q q;

	if (len && op[0] == HM_DNS_OP_CERTIFY) /* anyone may ask */
		return certify_parse(op, len, &q);
	/* Only a replica's own client speaks for that replica. */
	if (ctx && (ctx->client < HM_REPLICA_CLIENT_BASE ||
		    ctx->client - HM_REPLICA_CLIENT_BASE >= s->cfg.n))
		return false;
	if (len && op[0] == HM_DNS_OP_OBSERVE_MANY)
		return many_admitted(s, op, len);
	return observe_admitted(s, op, len);
}

/* ---- snapshot, digest, restore ------------------------------------------- */

static void wr_stats(struct wr *w, const struct hm_dns_service_stats *st)
{
	const uint64_t *v = (const uint64_t *)st;

	for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
		wr_u64(w, v[i]);
}

static void snap_write(struct hm_dns_service *s, struct wr *w)
{
	wr_u32(w, SNAP_MAGIC);
	wr_u8(w, SNAP_VERSION);
	wr_u64(w, (uint64_t)s->now_t);
	wr_stats(w, &s->st);
	wr_u32(w, (uint32_t)s->n_lookups);
	for (size_t k = 0; k < s->n_lookups; k++) {
		const struct lookup *l = s->lookups[k];

		wr_q(w, &l->q);
		wr_u64(w, (uint64_t)l->t);
		wr_u8(w, l->prefetch);
		for (uint32_t i = 0; i < s->cfg.n; i++) {
			const struct obs *o = &l->obs[i];

			wr_u8(w, o->have);
			if (!o->have)
				continue;
			wr_u8(w, o->status);
			wr_u16(w, o->ede);
			wr_u32(w, o->ttl);
			wr_u32(w, (uint32_t)o->canon_len);
			wr_bytes(w, o->canon, o->canon_len);
		}
	}
	wr_u32(w, (uint32_t)s->n_cache);
	for (size_t k = 0; k < s->n_cache; k++) {
		wr_entry(w, &s->cache[k]->e, true);
		wr_u32(w, s->cache[k]->counted);
		wr_u8(w, s->cache[k]->prefetched);
	}
}

static int svc_snapshot(void *state, uint8_t **buf, size_t *len)
{
	struct wr w = { .grow = true };

	snap_write(state, &w);
	if (w.bad) {
		free(w.p);
		return -1;
	}
	*buf = w.p;
	*len = w.off;
	return 0;
}

static void svc_digest(void *state, uint8_t out[HM_DIGEST_LEN])
{
	struct wr w = { .grow = true };

	snap_write(state, &w);
	/* Out of memory: a digest no correct state has, so the replica
	 * disagrees at the next checkpoint instead of lying. */
	if (w.bad)
		memset(out, 0xff, HM_DIGEST_LEN);
	else
		hm_digest(w.p, w.off, out);
	free(w.p);
}

static void clear(struct hm_dns_service *s)
{
	for (size_t k = 0; k < s->n_lookups; k++)
		lookup_free(s->lookups[k]);
	for (size_t k = 0; k < s->n_cache; k++)
		centry_free(s->cache[k]);
	s->n_lookups = s->n_cache = 0;
	s->now_t = 0;
	memset(&s->st, 0, sizeof(s->st));
}

static bool restore_lookup(struct hm_dns_service *s, struct rd *r, const struct lookup *prev)
{
	struct lookup *l = calloc(1, sizeof(*l));
	uint8_t pf;

	if (!l || !rd_q(r, &l->q) || (prev && q_cmp(&prev->q, &l->q) >= 0))
		goto bad;
	l->t = (int64_t)rd_u64(r);
	pf = rd_u8(r);
	if (pf > 1)
		goto bad;
	l->prefetch = pf;
	for (uint32_t i = 0; i < s->cfg.n; i++) {
		struct observe o = { .q = l->q, .t = l->t };
		uint8_t have = rd_u8(r);

		if (have > 1 || r->bad)
			goto bad;
		if (!have)
			continue;
		o.status = rd_u8(r);
		o.ede = rd_u16(r);
		o.ttl = rd_u32(r);
		o.canon_len = rd_u32(r);
		o.canon = rd_take(r, o.canon_len);
		if (r->bad || o.status > HM_DNS_OBS_FAILED ||
		    (o.status == HM_DNS_OBS_ANSWER) != (o.canon_len > 0) ||
		    (o.canon_len && (hm_dns_canon_check(o.canon, o.canon_len) < 0 ||
				     !canon_for(o.canon, o.canon_len, &l->q))) ||
		    !record(l, i, &o))
			goto bad;
	}
	if (r->bad || insert_at((void ***)&s->lookups, &s->n_lookups, &s->cap_lookups,
				s->n_lookups, l) < 0)
		goto bad;
	return true;
bad:
	lookup_free(l);
	return false;
}

static bool restore_entry(struct hm_dns_service *s, struct rd *r, const struct centry *prev)
{
	struct centry *c = calloc(1, sizeof(*c));
	struct hm_dns_entry e;
	uint8_t d[HM_DIGEST_LEN], pf;

	if (!c || !rd_entry(r, &e) || (prev && q_cmp(&prev->e.q, &e.q) >= 0))
		goto bad;
	c->counted = rd_u32(r);
	pf = rd_u8(r);
	c->prefetched = pf;
	if (r->bad || pf > 1 || (e.rule == HM_DNS_RULE_FAIL) != (e.canon_len == 0))
		goto bad;
	if (e.canon_len) {
		if (hm_dns_canon_check(e.canon, e.canon_len) < 0 ||
		    !canon_for(e.canon, e.canon_len, &e.q))
			goto bad;
		hm_dns_canon_digest(e.canon, e.canon_len, d);
		if (memcmp(d, e.digest, HM_DIGEST_LEN) != 0 || !(c->canon = malloc(e.canon_len)))
			goto bad;
		memcpy(c->canon, e.canon, e.canon_len);
		e.canon = c->canon;
	}
	c->e = e;
	if (insert_at((void ***)&s->cache, &s->n_cache, &s->cap_cache, s->n_cache, c) < 0)
		goto bad;
	return true;
bad:
	centry_free(c);
	return false;
}

static int svc_restore(void *state, const uint8_t *buf, size_t len)
{
	struct hm_dns_service *s = state;
	struct rd r = { .p = buf, .len = len };
	uint64_t *v = (uint64_t *)&s->st;
	uint32_t n;

	clear(s);
	if (rd_u32(&r) != SNAP_MAGIC || rd_u8(&r) != SNAP_VERSION)
		goto bad;
	s->now_t = (int64_t)rd_u64(&r);
	for (size_t i = 0; i < sizeof(s->st) / sizeof(uint64_t); i++)
		v[i] = rd_u64(&r);
	n = rd_u32(&r);
	for (uint32_t k = 0; k < n && !r.bad; k++)
		if (!restore_lookup(s, &r, k ? s->lookups[k - 1] : NULL))
			goto bad;
	n = rd_u32(&r);
	for (uint32_t k = 0; k < n && !r.bad; k++)
		if (!restore_entry(s, &r, k ? s->cache[k - 1] : NULL))
			goto bad;
	if (r.bad || r.off != len)
		goto bad;
	return 0;
bad:
	clear(s);
	return -1;
}

static void svc_destroy(void *state)
{
	struct hm_dns_service *s = state;

	clear(s);
	free(s->lookups);
	free(s->cache);
	free(s);
}

static const struct hm_service_ops dns_ops = {
	.name = "dns",
	.execute = svc_execute,
	.digest = svc_digest,
	.snapshot = svc_snapshot,
	.restore = svc_restore,
	.destroy = svc_destroy,
	.check = svc_check,
};

int hm_dns_service_new(struct hm_service *out, const struct hm_dns_service_config *cfg)
{
	struct hm_dns_service *s;

	if (!cfg->n || cfg->n > HM_MAX_REPLICAS || cfg->n < 3 * cfg->f + 1)
		return -1;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -1;
	s->cfg = *cfg;
	if (!s->cfg.lookup_timeout_s)
		s->cfg.lookup_timeout_s = 30;
	out->ops = &dns_ops;
	out->state = s;
	return 0;
}

void hm_dns_service_set_hooks(struct hm_dns_service *s, const struct hm_dns_service_hooks *h)
{
	s->cfg.hooks = *h;
}

const struct hm_dns_entry *hm_dns_service_lookup(struct hm_dns_service *s, const struct hm_dns_q *q)
{
	bool found;
	size_t i = find_entry(s, q, &found);

	return found ? &s->cache[i]->e : NULL;
}

bool hm_dns_service_observed(struct hm_dns_service *s, const struct hm_dns_q *q, int64_t t,
			     uint32_t replica)
{
	bool found;
	size_t i = find_lookup(s, q, &found);

	return found && replica < HM_MAX_REPLICAS && s->lookups[i]->t == t &&
	       s->lookups[i]->obs[replica].have;
}

bool hm_dns_service_prefetch_due(struct hm_dns_service *s, const struct hm_dns_q *q, int64_t t)
{
	struct observe o = { .q = *q, .t = t };
	bool found;
	size_t i = find_entry(s, q, &found);

	return found && t < s->cache[i]->e.expiry && prefetch_opens(s, s->cache[i], &o);
}

bool hm_dns_service_open_t(struct hm_dns_service *s, const struct hm_dns_q *q, int64_t *t)
{
	bool found;
	size_t i = find_lookup(s, q, &found);

	if (found)
		*t = s->lookups[i]->t;
	return found;
}

void hm_dns_service_stats(struct hm_dns_service *s, struct hm_dns_service_stats *out)
{
	*out = s->st;
}

size_t hm_dns_service_cache_size(struct hm_dns_service *s)
{
	return s->n_cache;
}
