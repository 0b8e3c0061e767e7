// SPDX-License-Identifier: MIT
/*
 * Key-value service tests (user/service/kv/kv.c): PUT/GET/NULL, malformed ops, the
 * state digest's independence from insertion order, snapshot and restore,
 * and restore's refusal of anything snapshot() could not have produced.
 */
#include "common/crypto.h"
#include "hm_test.h"
#include "service/kv/kv.h"
#include "common/wire.h"

/* ---- helpers ------------------------------------------------------------ */

static bool kv_new(struct hm_service *svc)
{
	if (!ASSERT_OK(hm_crypto_init(), "hm_crypto_init"))
		return false;
	if (!ASSERT_OK(hm_kv_service_new(svc), "hm_kv_service_new"))
		return false;
	return ASSERT_TRUE(svc->ops && svc->ops->execute && svc->ops->digest &&
			   svc->ops->snapshot && svc->ops->restore && svc->ops->destroy,
			   "service ops");
}

static void kv_free(struct hm_service *svc)
{
	svc->ops->destroy(svc->state);
	svc->state = NULL;
}

/* Execute an op from an exact-size heap copy (so overreads are caught);
 * returns the result length, the status in *status (or -1 if empty). */
static size_t exec_op(struct hm_service *svc, const void *op, size_t len, uint8_t *out,
		      size_t cap, int *status)
{
	struct hm_exec_ctx ctx = { .seq = 1, .client = 7, .timestamp = 1 };
	uint8_t *c = malloc(len ? len : 1);
	size_t n;

	if (len)
		memcpy(c, op, len);
	n = svc->ops->execute(svc->state, &ctx, c, len, out, cap);
	free(c);
	*status = n ? out[0] : -1;
	return n;
}

static int put(struct hm_service *svc, const char *key, const void *v, size_t vlen)
{
	uint8_t op[3 + HM_KV_MAX_KEY + HM_KV_MAX_VALUE], out[HM_MAX_RESULT];
	size_t n = hm_kv_encode_put(op, sizeof(op), key, v, vlen);
	int st;

	if (!n)
		return -2;
	exec_op(svc, op, n, out, sizeof(out), &st);
	return st;
}

static int put_str(struct hm_service *svc, const char *key, const char *v)
{
	return put(svc, key, v, strlen(v));
}

/* GET: status, and the value into val (*vlen). */
static int get(struct hm_service *svc, const char *key, uint8_t *val, size_t *vlen)
{
	uint8_t op[3 + HM_KV_MAX_KEY], out[HM_MAX_RESULT];
	size_t n = hm_kv_encode_get(op, sizeof(op), key);
	int st;

	if (!n)
		return -2;
	n = exec_op(svc, op, n, out, sizeof(out), &st);
	if (vlen)
		*vlen = n ? n - 1 : 0;
	if (val && n > 1)
		memcpy(val, out + 1, n - 1);
	return st;
}

static bool get_is(struct hm_service *svc, const char *key, const char *want, const char *what)
{
	uint8_t val[HM_KV_MAX_VALUE];
	size_t vlen;
	int st = get(svc, key, val, &vlen);

	if (!want)
		return ASSERT_EQ(st, HM_KV_NOT_FOUND, what);
	return ASSERT_EQ(st, HM_KV_OK, what) && ASSERT_EQ(vlen, strlen(want), what) &&
	       ASSERT_MEMEQ(val, want, vlen, what);
}

static void digest_of(struct hm_service *svc, uint8_t d[HM_DIGEST_LEN])
{
	svc->ops->digest(svc->state, d);
}

static bool snapshot(struct hm_service *svc, uint8_t **buf, size_t *len)
{
	return ASSERT_OK(svc->ops->snapshot(svc->state, buf, len), "snapshot");
}

static int restore_exact(struct hm_service *svc, const uint8_t *buf, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);
	int r;

	if (len)
		memcpy(c, buf, len);
	r = svc->ops->restore(svc->state, c, len);
	free(c);
	return r;
}

/* ---- operations ------------------------------------------------------------ */

HM_TEST(put_get_null)
{
	struct hm_service svc;
	uint8_t op[16], out[HM_MAX_RESULT], val[HM_KV_MAX_VALUE];
	size_t n, vlen;
	int st;

	if (!kv_new(&svc))
		return;
	get_is(&svc, "a", NULL, "empty store");
	ASSERT_EQ(put_str(&svc, "a", "1"), HM_KV_OK, "put a");
	get_is(&svc, "a", "1", "get a");
	ASSERT_EQ(put_str(&svc, "a", "second"), HM_KV_OK, "overwrite a");
	get_is(&svc, "a", "second", "get a again");
	ASSERT_EQ(put_str(&svc, "b", ""), HM_KV_OK, "empty value");
	if (ASSERT_EQ(get(&svc, "b", val, &vlen), HM_KV_OK, "get b"))
		ASSERT_EQ(vlen, 0, "empty value comes back empty");
	get_is(&svc, "ab", NULL, "prefix of nothing");
	get_is(&svc, "A", NULL, "keys are case-sensitive");

	n = hm_kv_encode_null(op, sizeof(op));
	ASSERT_EQ(n, 1, "null op length");
	n = exec_op(&svc, op, n, out, sizeof(out), &st);
	ASSERT_EQ(n, 1, "null result length");
	ASSERT_EQ(st, HM_KV_OK, "null ok");
	ASSERT_EQ(hm_kv_encode_null(op, 0), 0, "null into nothing");

	/* Binary values and the largest key and value. */
	{
		char key[HM_KV_MAX_KEY + 1];
		uint8_t big[HM_KV_MAX_VALUE];

		memset(key, 'k', HM_KV_MAX_KEY);
		key[HM_KV_MAX_KEY] = 0;
		for (size_t i = 0; i < sizeof(big); i++)
			big[i] = (uint8_t)(i * 7);
		big[10] = 0;
		ASSERT_EQ(put(&svc, key, big, sizeof(big)), HM_KV_OK, "largest put");
		if (ASSERT_EQ(get(&svc, key, val, &vlen), HM_KV_OK, "largest get")) {
			ASSERT_EQ(vlen, sizeof(big), "largest value length");
			ASSERT_MEMEQ(val, big, sizeof(big), "largest value");
		}
		/* A result buffer too small for the value: no result, no overflow. */
		n = hm_kv_encode_get(op, sizeof(op), "a");
		ASSERT_EQ(exec_op(&svc, op, n, out, 3, &st), 0, "get into a 3-byte buffer");
		ASSERT_EQ(exec_op(&svc, op, n, out, 7, &st), 7, "get into an exact buffer");
	}
	/* Key bytes >= 0x80 are fine. */
	ASSERT_EQ(put_str(&svc, "\xff\x80key", "hi"), HM_KV_OK, "high bytes in key");
	get_is(&svc, "\xff\x80key", "hi", "high bytes in key");
	kv_free(&svc);
}

HM_TEST(encoders_refuse)
{
	uint8_t buf[3 + HM_KV_MAX_KEY + HM_KV_MAX_VALUE + 1], v[HM_KV_MAX_VALUE + 1];
	char key[HM_KV_MAX_KEY + 2];

	memset(key, 'x', sizeof(key));
	key[HM_KV_MAX_KEY + 1] = 0;
	memset(v, 1, sizeof(v));
	ASSERT_EQ(hm_kv_encode_put(buf, sizeof(buf), "", "v", 1), 0, "empty key");
	ASSERT_EQ(hm_kv_encode_put(buf, sizeof(buf), key, "v", 1), 0, "key too long");
	ASSERT_EQ(hm_kv_encode_put(buf, sizeof(buf), "k", v, HM_KV_MAX_VALUE + 1), 0,
		  "value too long");
	ASSERT_EQ(hm_kv_encode_put(buf, 5, "k", "vv", 2), 0, "buffer one short");
	ASSERT_EQ(hm_kv_encode_put(buf, 6, "k", "vv", 2), 6, "exact buffer");
	ASSERT_EQ(hm_kv_encode_get(buf, 3, "k"), 0, "get one short");
	ASSERT_EQ(hm_kv_encode_get(buf, sizeof(buf), ""), 0, "get empty key");
}

HM_TEST(bad_ops)
{
	struct hm_service svc;
	uint8_t out[HM_MAX_RESULT];
	uint8_t op[3 + HM_KV_MAX_KEY + 2 + HM_KV_MAX_VALUE + 2];
	size_t n;
	int st;
	char what[64];

	if (!kv_new(&svc))
		return;
	put_str(&svc, "key", "value");

#define EXPECT_BAD(bytes, len, name)                                                   \
	do {                                                                           \
		n = exec_op(&svc, (bytes), (len), out, sizeof(out), &st);              \
		ASSERT_EQ(n, 1, name);                                                 \
		ASSERT_EQ(st, HM_KV_BAD_OP, name);                                     \
	} while (0)

	EXPECT_BAD(NULL, 0, "empty op");
	EXPECT_BAD("\x01", 1, "put with no key length");
	EXPECT_BAD("\x02", 1, "get with no key length");
	EXPECT_BAD("\x01\x00", 2, "half a key length");
	EXPECT_BAD("\x01\x00\x00", 3, "zero key length");
	EXPECT_BAD("\x02\x00\x00", 3, "get, zero key length");
	EXPECT_BAD("\x01\x00\x04key", 6, "key length past the end");
	EXPECT_BAD("\x02\x00\x04key", 6, "get, key length past the end");
	EXPECT_BAD("\x01\xff\xff", 3, "key length 65535, no key");
	EXPECT_BAD("\x01\x00\x03k\0y", 6, "key with a NUL");
	EXPECT_BAD("\x02\x00\x03\0ey", 6, "get, key starting with a NUL");
	EXPECT_BAD("\x02\x00\x03keyX", 7, "get with trailing bytes");
	EXPECT_BAD("\x03\x00", 2, "null with trailing bytes");
	EXPECT_BAD("\x03\x00\x01k", 4, "null with a key");
	EXPECT_BAD("\x00", 1, "opcode 0");
	EXPECT_BAD("\x00\x00\x03key", 6, "opcode 0 with a key");
	for (unsigned opc = 4; opc < 256; opc++) {
		uint8_t o[7] = { (uint8_t)opc, 0, 3, 'k', 'e', 'y', 'v' };

		snprintf(what, sizeof(what), "unknown opcode %u", opc);
		EXPECT_BAD(o, 7, what);
		EXPECT_BAD(o, 1, what);
	}
	/* Key of HM_KV_MAX_KEY + 1 bytes. */
	op[0] = HM_KV_PUT;
	op[1] = (HM_KV_MAX_KEY + 1) >> 8;
	op[2] = (HM_KV_MAX_KEY + 1) & 0xff;
	memset(op + 3, 'k', HM_KV_MAX_KEY + 1);
	EXPECT_BAD(op, 3 + HM_KV_MAX_KEY + 1, "key too long");
	op[0] = HM_KV_GET;
	EXPECT_BAD(op, 3 + HM_KV_MAX_KEY + 1, "get, key too long");
	/* Value of HM_KV_MAX_VALUE + 1 bytes. */
	op[0] = HM_KV_PUT;
	op[1] = 0;
	op[2] = 1;
	op[3] = 'v';
	memset(op + 4, 0x55, HM_KV_MAX_VALUE + 1);
	EXPECT_BAD(op, 4 + HM_KV_MAX_VALUE + 1, "value too long");
	ASSERT_EQ(exec_op(&svc, op, 4 + HM_KV_MAX_VALUE, out, sizeof(out), &st), 1,
		  "value of the maximum size");
	ASSERT_EQ(st, HM_KV_OK, "value of the maximum size");
#undef EXPECT_BAD

	/* Truncations of a valid PUT at every length: never a crash. */
	n = hm_kv_encode_put(op, sizeof(op), "abc", "defgh", 5);
	for (size_t len = 0; len < n; len++) {
		size_t r = exec_op(&svc, op, len, out, sizeof(out), &st);

		snprintf(what, sizeof(what), "put truncated to %zu", len);
		ASSERT_EQ(r, 1, what);
		/* Cutting only the value leaves a valid, shorter PUT. */
		ASSERT_EQ(st, len >= 6 ? HM_KV_OK : HM_KV_BAD_OP, what);
	}
	/* Bad ops left "key" alone. */
	get_is(&svc, "key", "value", "state after bad ops");
	kv_free(&svc);
}

HM_TEST(bad_ops_do_not_change_state)
{
	struct hm_service svc;
	uint8_t out[HM_MAX_RESULT], before[HM_DIGEST_LEN], after[HM_DIGEST_LEN];
	static const struct { const char *b; size_t len; } ops[] = {
		{ "", 0 }, { "\x01\x00\x03k\0y=v", 8 }, { "\x01\x00\x09key", 6 },
		{ "\x02\x00\x03keyX", 7 }, { "\x07\x00\x03keyv", 7 }, { "\x03\x01", 2 },
	};
	int st;

	if (!kv_new(&svc))
		return;
	put_str(&svc, "key", "value");
	put_str(&svc, "other", "x");
	digest_of(&svc, before);
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
		exec_op(&svc, ops[i].b, ops[i].len, out, sizeof(out), &st);
		ASSERT_EQ(st, HM_KV_BAD_OP, "bad op");
	}
	digest_of(&svc, after);
	ASSERT_MEMEQ(before, after, HM_DIGEST_LEN, "digest unchanged by bad ops");
	/* GETs do not change the digest either. */
	get_is(&svc, "key", "value", "get");
	get_is(&svc, "nope", NULL, "get missing");
	digest_of(&svc, after);
	ASSERT_MEMEQ(before, after, HM_DIGEST_LEN, "digest unchanged by gets");
	kv_free(&svc);
}

/* ---- digest and snapshots -------------------------------------------------- */

static const char *const keys[] = { "alpha", "beta", "gamma", "delta", "a", "ab", "abc", "b",
				    "zz", "\x7f", "\xc3\xa9t\xc3\xa9", "k1", "k10", "k2", "key with spaces" };
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static void fill(struct hm_service *svc, const size_t *order)
{
	for (size_t i = 0; i < NKEYS; i++) {
		const char *k = keys[order[i]];
		char v[64];

		snprintf(v, sizeof(v), "value of %s", k);
		put_str(svc, k, v);
	}
}


HM_TEST(digest_independent_of_order)
{
	struct hm_service a, b;
	uint8_t da[HM_DIGEST_LEN], db[HM_DIGEST_LEN], empty[HM_DIGEST_LEN];
	size_t order[NKEYS];
	uint64_t rng = 99;

	if (!kv_new(&a))
		return;
	digest_of(&a, empty);
	for (size_t i = 0; i < NKEYS; i++)
		order[i] = i;
	fill(&a, order);
	digest_of(&a, da);
	ASSERT_TRUE(memcmp(da, empty, HM_DIGEST_LEN) != 0, "state changes the digest");
	for (int round = 0; round < 20; round++) {
		if (!kv_new(&b))
			break;
		for (size_t i = NKEYS - 1; i > 0; i--) {
			size_t j = (size_t)(hm_test_rand(&rng) % (i + 1)), t = order[i];

			order[i] = order[j];
			order[j] = t;
		}
		/* Also overwrite a few keys on the way: only the final state
		 * counts. */
		put_str(&b, keys[order[0]], "stale");
		put_str(&b, keys[order[1]], "stale too");
		fill(&b, order);
		digest_of(&b, db);
		ASSERT_MEMEQ(da, db, HM_DIGEST_LEN, "same state, other order");
		kv_free(&b);
	}
	/* And a different value changes it. */
	put_str(&a, "alpha", "changed");
	digest_of(&a, db);
	ASSERT_TRUE(memcmp(da, db, HM_DIGEST_LEN) != 0, "different value, different digest");
	/* Digest of the empty store is that of its snapshot (count 0). */
	{
		uint8_t zero[4] = { 0 }, d[HM_DIGEST_LEN];

		hm_digest(zero, 4, d);
		ASSERT_MEMEQ(empty, d, HM_DIGEST_LEN, "empty digest = H(u32 0)");
	}
	kv_free(&a);
}

HM_TEST(snapshot_restore_roundtrip)
{
	struct hm_service a, b;
	uint8_t da[HM_DIGEST_LEN], db[HM_DIGEST_LEN], *snap, *snap2;
	size_t order[NKEYS], len, len2;

	if (!kv_new(&a) || !kv_new(&b))
		return;
	for (size_t i = 0; i < NKEYS; i++)
		order[i] = NKEYS - 1 - i;
	fill(&a, order);
	{
		uint8_t bin[300];

		for (size_t i = 0; i < sizeof(bin); i++)
			bin[i] = (uint8_t)i;
		put(&a, "binary", bin, sizeof(bin));
		put(&a, "empty", "", 0);
	}
	digest_of(&a, da);
	if (!snapshot(&a, &snap, &len))
		return;
	ASSERT_EQ(hm_get_be32(snap), NKEYS + 2, "snapshot count");
	put_str(&b, "to be replaced", "x");
	if (ASSERT_OK(restore_exact(&b, snap, len), "restore")) {
		digest_of(&b, db);
		ASSERT_MEMEQ(da, db, HM_DIGEST_LEN, "same digest after restore");
		for (size_t i = 0; i < NKEYS; i++) {
			char v[64];

			snprintf(v, sizeof(v), "value of %s", keys[i]);
			get_is(&b, keys[i], v, keys[i]);
		}
		get_is(&b, "to be replaced", NULL, "old state gone");
		get_is(&b, "empty", "", "empty value restored");
		{
			uint8_t val[HM_KV_MAX_VALUE];
			size_t vlen;

			if (ASSERT_EQ(get(&b, "binary", val, &vlen), HM_KV_OK, "binary") &&
			    ASSERT_EQ(vlen, 300, "binary length"))
				for (size_t i = 0; i < 300; i++)
					if (val[i] != (uint8_t)i) {
						HM_FAIL("binary value byte %zu", i);
						break;
					}
		}
		/* The restored store snapshots to the same bytes. */
		if (snapshot(&b, &snap2, &len2)) {
			ASSERT_EQ(len2, len, "snapshot length");
			ASSERT_MEMEQ(snap2, snap, len < len2 ? len : len2, "snapshot bytes");
			free(snap2);
		}
		/* And keeps working. */
		ASSERT_EQ(put_str(&b, "new", "n"), HM_KV_OK, "put after restore");
		get_is(&b, "new", "n", "get after restore");
	}
	/* Empty snapshot into a full store empties it. */
	{
		struct hm_service e;
		uint8_t *es, de[HM_DIGEST_LEN];
		size_t elen;

		if (kv_new(&e) && snapshot(&e, &es, &elen)) {
			ASSERT_EQ(elen, 4, "empty snapshot is a count");
			ASSERT_OK(restore_exact(&b, es, elen), "restore empty");
			get_is(&b, "alpha", NULL, "emptied");
			digest_of(&b, db);
			digest_of(&e, de);
			ASSERT_MEMEQ(db, de, HM_DIGEST_LEN, "empty digest");
			free(es);
			kv_free(&e);
		}
	}
	free(snap);
	kv_free(&a);
	kv_free(&b);
}

/* Build a snapshot by hand: entries given as key/value strings in order. */
static size_t make_snap(uint8_t *buf, uint32_t count, const char *const *kv, size_t pairs)
{
	size_t off = 4;

	hm_put_be32(buf, count);
	for (size_t i = 0; i < pairs; i++) {
		size_t kl = strlen(kv[2 * i]), vl = strlen(kv[2 * i + 1]);

		buf[off] = (uint8_t)(kl >> 8);
		buf[off + 1] = (uint8_t)kl;
		memcpy(buf + off + 2, kv[2 * i], kl);
		off += 2 + kl;
		hm_put_be32(buf + off, (uint32_t)vl);
		memcpy(buf + off + 4, kv[2 * i + 1], vl);
		off += 4 + vl;
	}
	return off;
}

/* A store with known contents; restore of `bad` must fail and leave it. */
static void expect_refused(const uint8_t *bad, size_t len, const char *what)
{
	struct hm_service svc;
	uint8_t d0[HM_DIGEST_LEN], d1[HM_DIGEST_LEN];

	if (!kv_new(&svc))
		return;
	put_str(&svc, "keep", "me");
	put_str(&svc, "and", "me too");
	digest_of(&svc, d0);
	ASSERT_EQ(restore_exact(&svc, bad, len), -1, what);
	digest_of(&svc, d1);
	ASSERT_MEMEQ(d0, d1, HM_DIGEST_LEN, what);
	get_is(&svc, "keep", "me", what);
	get_is(&svc, "and", "me too", what);
	ASSERT_EQ(put_str(&svc, "still", "works"), HM_KV_OK, what);
	kv_free(&svc);
}

HM_TEST(restore_refuses_bad_snapshots)
{
	static uint8_t buf[70000];
	const char *good[] = { "a", "1", "b", "22", "c", "333" };
	size_t len;
	char what[80];

	/* The good one is accepted (sanity of make_snap). */
	{
		struct hm_service svc;

		len = make_snap(buf, 3, good, 3);
		if (kv_new(&svc)) {
			ASSERT_OK(restore_exact(&svc, buf, len), "hand-made snapshot");
			get_is(&svc, "b", "22", "hand-made snapshot");
			kv_free(&svc);
		}
	}
	/* Truncated at every length. */
	for (size_t l = 0; l < len; l++) {
		snprintf(what, sizeof(what), "truncated to %zu of %zu", l, len);
		expect_refused(buf, l, what);
	}
	/* Trailing bytes. */
	for (size_t extra = 1; extra <= 9; extra += 4) {
		memset(buf + len, 0, extra);
		snprintf(what, sizeof(what), "%zu trailing bytes", extra);
		expect_refused(buf, len + extra, what);
	}
	/* Count lies. */
	const uint32_t counts[] = { 0, 1, 2, 4, 5, 0x7fffffff, 0xffffffffu };
	for (size_t i = 0; i < sizeof(counts) / sizeof(counts[0]); i++) {
		len = make_snap(buf, counts[i], good, 3);
		snprintf(what, sizeof(what), "count %u for 3 entries", counts[i]);
		expect_refused(buf, len, what);
	}
	/* Unsorted and duplicate keys. */
	{
		const char *unsorted[] = { "b", "1", "a", "2" };
		const char *unsorted3[] = { "a", "1", "c", "2", "b", "3" };
		const char *prefix_after[] = { "ab", "1", "a", "2" };
		const char *dup[] = { "a", "1", "a", "2" };
		const char *dup_same[] = { "k", "v", "k", "v" };
		const char *dup_later[] = { "a", "1", "b", "2", "b", "3" };
		const char *high_first[] = { "\xff", "1", "a", "2" };

		len = make_snap(buf, 2, unsorted, 2);
		expect_refused(buf, len, "unsorted keys");
		len = make_snap(buf, 3, unsorted3, 3);
		expect_refused(buf, len, "unsorted third key");
		len = make_snap(buf, 2, prefix_after, 2);
		expect_refused(buf, len, "a prefix after the longer key");
		len = make_snap(buf, 2, dup, 2);
		expect_refused(buf, len, "duplicate keys");
		len = make_snap(buf, 2, dup_same, 2);
		expect_refused(buf, len, "duplicate entries");
		len = make_snap(buf, 3, dup_later, 3);
		expect_refused(buf, len, "duplicate later");
		/* Bytes compare unsigned: 0xff sorts after 'a'. */
		len = make_snap(buf, 2, high_first, 2);
		expect_refused(buf, len, "0xff before 'a'");
		{
			const char *ok[] = { "a", "2", "\xff", "1" };
			struct hm_service svc;

			len = make_snap(buf, 2, ok, 2);
			if (kv_new(&svc)) {
				ASSERT_OK(restore_exact(&svc, buf, len), "'a' before 0xff");
				kv_free(&svc);
			}
		}
	}
	/* Key length 0, key too long, key with a NUL, value too long, lengths
	 * past the end. */
	{
		size_t off;

		hm_put_be32(buf, 1);
		buf[4] = 0; buf[5] = 0;
		hm_put_be32(buf + 6, 0);
		expect_refused(buf, 10, "empty key");

		hm_put_be32(buf, 1);
		buf[4] = (HM_KV_MAX_KEY + 1) >> 8;
		buf[5] = (HM_KV_MAX_KEY + 1) & 0xff;
		memset(buf + 6, 'k', HM_KV_MAX_KEY + 1);
		off = 6 + HM_KV_MAX_KEY + 1;
		hm_put_be32(buf + off, 0);
		expect_refused(buf, off + 4, "key too long");

		hm_put_be32(buf, 1);
		buf[4] = 0; buf[5] = 3;
		memcpy(buf + 6, "a\0b", 3);
		hm_put_be32(buf + 9, 1);
		buf[13] = 'v';
		expect_refused(buf, 14, "key with a NUL");

		hm_put_be32(buf, 1);
		buf[4] = 0; buf[5] = 1; buf[6] = 'k';
		hm_put_be32(buf + 7, HM_KV_MAX_VALUE + 1);
		memset(buf + 11, 'v', HM_KV_MAX_VALUE + 1);
		expect_refused(buf, 11 + HM_KV_MAX_VALUE + 1, "value too long");

		const uint32_t vlens[] = { 2, 100, 0x80000000u, 0xffffffffu, 0xfffffffcu };
		for (size_t i = 0; i < sizeof(vlens) / sizeof(vlens[0]); i++) {
			hm_put_be32(buf + 7, vlens[i]);
			buf[11] = 'v';
			snprintf(what, sizeof(what), "value length %#x for 1 byte", vlens[i]);
			expect_refused(buf, 12, what);
		}
		hm_put_be32(buf, 1);
		buf[4] = 0xff; buf[5] = 0xff; buf[6] = 'k';
		expect_refused(buf, 7, "key length 65535");
		buf[4] = 0; buf[5] = 5;
		expect_refused(buf, 7, "key length past the end");
	}
	/* A good first entry then a bad one: nothing of the first is applied. */
	{
		const char *two[] = { "new", "1", "next", "2" };
		struct hm_service svc;

		len = make_snap(buf, 2, two, 2);
		buf[len - 2] ^= 0x7f; /* the second vlen's low byte: 1 -> 0x7e */
		if (kv_new(&svc)) {
			put_str(&svc, "old", "o");
			ASSERT_EQ(restore_exact(&svc, buf, len), -1, "second entry bad");
			get_is(&svc, "new", NULL, "first entry not applied");
			get_is(&svc, "old", "o", "old entry kept");
			kv_free(&svc);
		}
	}
}

HM_TEST(random_snapshot_mutations)
{
	struct hm_service src, dst;
	uint8_t *snap, work[2048];
	size_t len, order[NKEYS];
	uint64_t seed = 0x5eed5eed5eedull, rng = seed;
	long accepted = 0;
	const long iters = 20000;

	if (!kv_new(&src) || !kv_new(&dst))
		return;
	for (size_t i = 0; i < NKEYS; i++)
		order[i] = i;
	fill(&src, order);
	if (!snapshot(&src, &snap, &len) || !ASSERT_LE(len, sizeof(work) - 64, "snapshot size"))
		return;
	for (long it = 0; it < iters; it++) {
		size_t l = len;
		int rounds = 1 + (int)(hm_test_rand(&rng) % 3);

		memcpy(work, snap, len);
		for (int r = 0; r < rounds; r++) {
			uint64_t x = hm_test_rand(&rng);
			size_t pos = l ? (size_t)(x >> 16) % l : 0;

			switch (x % 6) {
			case 0: if (l) work[pos] ^= (uint8_t)(1u << (x >> 8 & 7)); break;
			case 1: if (l) work[pos] = (uint8_t)(x >> 40); break;
			case 2: l = pos; break;
			case 3: if (l + 4 <= sizeof(work)) {
					memmove(work + pos + 4, work + pos, l - pos);
					hm_put_be32(work + pos, (uint32_t)(x >> 32));
					l += 4;
				}
				break;
			case 4: if (pos + 3 <= l) {
					memmove(work + pos, work + pos + 3, l - pos - 3);
					l -= 3;
				}
				break;
			default: /* a count or length that lies */
				if (l >= 4)
					hm_put_be32(work, (uint32_t)(x >> 32) % (NKEYS + 3));
				break;
			}
		}
		if (restore_exact(&dst, work, l) == 0) {
			uint8_t *again;
			size_t alen;

			accepted++;
			/* Anything accepted is canonical: it snapshots back to the
			 * very same bytes. */
			if (!snapshot(&dst, &again, &alen))
				break;
			if (!ASSERT_EQ(alen, l, "accepted snapshot is canonical") ||
			    !ASSERT_MEMEQ(again, work, l, "accepted snapshot is canonical")) {
				fprintf(stderr, "  iteration %ld of seed %#" PRIx64 "\n", it, seed);
				free(again);
				break;
			}
			free(again);
		}
	}
	printf("     %ld mutated snapshots, %ld accepted\n", iters, accepted);
	free(snap);
	kv_free(&src);
	kv_free(&dst);
}
