// SPDX-License-Identifier: MIT
/* The key-value service (see kv.h). */
#include "service/kv/kv.h"

#include <stdlib.h>
#include <string.h>
#include <uthash.h>

#include "common/crypto.h"
#include "common/wire.h"

struct kv_entry {
	char *key;          /* NUL-terminated copy; keys hold no NUL */
	uint8_t *value;
	size_t vlen;
	UT_hash_handle hh;
};

struct kv_state {
	struct kv_entry *table;
};

static size_t kv_result(uint8_t *out, size_t cap, uint8_t status, const void *v, size_t vlen)
{
	if (cap < 1 + vlen)
		return 0;
	out[0] = status;
	if (vlen)
		memcpy(out + 1, v, vlen);
	return 1 + vlen;
}

static int kv_set(struct kv_state *s, const char *key, size_t klen, const uint8_t *v, size_t vlen)
{
	struct kv_entry *e;
	uint8_t *copy = malloc(vlen ? vlen : 1);

	if (!copy)
		return -1;
	memcpy(copy, v, vlen);
	HASH_FIND(hh, s->table, key, klen, e);
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e || !(e->key = strndup(key, klen))) {
			free(e);
			free(copy);
			return -1;
		}
		HASH_ADD_KEYPTR(hh, s->table, e->key, klen, e);
	}
	free(e->value);
	e->value = copy;
	e->vlen = vlen;
	return 0;
}

/* Parse "u8 op, u16 klen, key, rest"; keys with a NUL byte are refused so a
 * key always round-trips through a C string. */
static bool kv_parse(const uint8_t *op, size_t len, const char **key, size_t *klen,
		     const uint8_t **rest, size_t *rest_len)
{
	if (len < 3)
		return false;
	*klen = (size_t)op[1] << 8 | op[2];
	if (*klen == 0 || *klen > HM_KV_MAX_KEY || *klen > len - 3)
		return false;
	*key = (const char *)op + 3;
	if (memchr(*key, 0, *klen))
		return false;
	*rest = op + 3 + *klen;
	*rest_len = len - 3 - *klen;
	return true;
}

static size_t kv_execute(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op,
			 size_t len, uint8_t *out, size_t cap)
{
	struct kv_state *s = state;
	const char *key;
	const uint8_t *rest;
	size_t klen, rlen;
	struct kv_entry *e;

	(void)ctx;
	if (len == 1 && op[0] == HM_KV_NULL)
		return kv_result(out, cap, HM_KV_OK, NULL, 0);
	if (len < 1 || !kv_parse(op, len, &key, &klen, &rest, &rlen))
		return kv_result(out, cap, HM_KV_BAD_OP, NULL, 0);
	switch (op[0]) {
	case HM_KV_PUT:
		if (rlen > HM_KV_MAX_VALUE || kv_set(s, key, klen, rest, rlen) < 0)
			return kv_result(out, cap, HM_KV_BAD_OP, NULL, 0);
		return kv_result(out, cap, HM_KV_OK, NULL, 0);
	case HM_KV_GET:
		if (rlen != 0)
			return kv_result(out, cap, HM_KV_BAD_OP, NULL, 0);
		HASH_FIND(hh, s->table, key, klen, e);
		if (!e)
			return kv_result(out, cap, HM_KV_NOT_FOUND, NULL, 0);
		return kv_result(out, cap, HM_KV_OK, e->value, e->vlen);
	default:
		return kv_result(out, cap, HM_KV_BAD_OP, NULL, 0);
	}
}

static int key_order(struct kv_entry *a, struct kv_entry *b)
{
	return strcmp(a->key, b->key);
}

/* Canonical form: entries sorted by key, u32 count, then per entry
 * u16 klen, key, u32 vlen, value.  The digest is taken over this form, so it
 * does not depend on insertion order or hash-table layout. */
static int kv_snapshot(void *state, uint8_t **buf, size_t *len)
{
	struct kv_state *s = state;
	struct kv_entry *e;
	size_t total = 4;
	uint8_t *p;

	HASH_SRT(hh, s->table, key_order);
	for (e = s->table; e; e = e->hh.next)
		total += 2 + strlen(e->key) + 4 + e->vlen;
	p = malloc(total);
	if (!p)
		return -1;
	*buf = p;
	*len = total;
	hm_put_be32(p, HASH_COUNT(s->table));
	p += 4;
	for (e = s->table; e; e = e->hh.next) {
		size_t klen = strlen(e->key);

		p[0] = klen >> 8;
		p[1] = klen & 0xff;
		memcpy(p + 2, e->key, klen);
		p += 2 + klen;
		hm_put_be32(p, (uint32_t)e->vlen);
		memcpy(p + 4, e->value, e->vlen);
		p += 4 + e->vlen;
	}
	return 0;
}

static void kv_clear(struct kv_state *s)
{
	struct kv_entry *e, *tmp;

	HASH_ITER(hh, s->table, e, tmp) {
		HASH_DEL(s->table, e);
		free(e->key);
		free(e->value);
		free(e);
	}
}

static int kv_restore(void *state, const uint8_t *buf, size_t len)
{
	struct kv_state *s = state, fresh = { 0 };
	const uint8_t *p = buf, *end = buf + len;
	const char *prev = NULL;
	size_t prev_len = 0;
	uint32_t count;

	if (len < 4)
		return -1;
	count = hm_get_be32(p);
	p += 4;
	for (uint32_t i = 0; i < count; i++) {
		size_t klen, vlen;
		const char *key;

		if (end - p < 2)
			goto bad;
		klen = (size_t)p[0] << 8 | p[1];
		if (klen == 0 || klen > HM_KV_MAX_KEY || (size_t)(end - p) < 2 + klen + 4)
			goto bad;
		key = (const char *)p + 2;
		vlen = hm_get_be32(p + 2 + klen);
		if (vlen > HM_KV_MAX_VALUE || (size_t)(end - p) < 2 + klen + 4 + vlen ||
		    memchr(key, 0, klen))
			goto bad;
		/* Keys strictly ascending: only the canonical form is accepted. */
		if (prev) {
			int c = memcmp(prev, key, klen < prev_len ? klen : prev_len);
			if (c > 0 || (c == 0 && prev_len >= klen))
				goto bad;
		}
		if (kv_set(&fresh, key, klen, p + 2 + klen + 4, vlen) < 0)
			goto bad;
		prev = key;
		prev_len = klen;
		p += 2 + klen + 4 + vlen;
	}
	if (p != end)
		goto bad;
	kv_clear(s);
	s->table = fresh.table;
	return 0;
bad:
	kv_clear(&fresh);
	return -1;
}

static void kv_digest(void *state, uint8_t out[HM_DIGEST_LEN])
{
	uint8_t *buf;
	size_t len;

	if (kv_snapshot(state, &buf, &len) < 0) {
		memset(out, 0, HM_DIGEST_LEN);
		return;
	}
	hm_digest(buf, len, out);
	free(buf);
}

static void kv_destroy(void *state)
{
	kv_clear(state);
	free(state);
}

static const struct hm_service_ops kv_ops = {
	.name = "kv",
	.execute = kv_execute,
	.digest = kv_digest,
	.snapshot = kv_snapshot,
	.restore = kv_restore,
	.destroy = kv_destroy,
};

int hm_kv_service_new(struct hm_service *svc)
{
	svc->state = calloc(1, sizeof(struct kv_state));
	svc->ops = &kv_ops;
	return svc->state ? 0 : -1;
}

static size_t kv_encode(uint8_t *buf, size_t cap, uint8_t opcode, const char *key,
			const void *value, size_t vlen)
{
	size_t klen = strlen(key);

	if (klen == 0 || klen > HM_KV_MAX_KEY || vlen > HM_KV_MAX_VALUE || cap < 3 + klen + vlen)
		return 0;
	buf[0] = opcode;
	buf[1] = klen >> 8;
	buf[2] = klen & 0xff;
	memcpy(buf + 3, key, klen);
	if (vlen)
		memcpy(buf + 3 + klen, value, vlen);
	return 3 + klen + vlen;
}

size_t hm_kv_encode_put(uint8_t *buf, size_t cap, const char *key, const void *value, size_t vlen)
{
	return kv_encode(buf, cap, HM_KV_PUT, key, value, vlen);
}

size_t hm_kv_encode_get(uint8_t *buf, size_t cap, const char *key)
{
	return kv_encode(buf, cap, HM_KV_GET, key, NULL, 0);
}

size_t hm_kv_encode_null(uint8_t *buf, size_t cap)
{
	if (cap < 1)
		return 0;
	buf[0] = HM_KV_NULL;
	return 1;
}
