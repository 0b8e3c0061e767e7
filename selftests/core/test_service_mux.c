// SPDX-License-Identifier: MIT
/*
 * The service multiplexer: ops reach the part that owns their opcode, the
 * composite digest and snapshot cover every part, restore refuses anything
 * snapshot could not have produced.
 */
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "hm_test.h"
#include "service/kv/kv.h"
#include "core/service_mux.h"
#include "common/wire.h"

/* A second service for the tests: a counter on opcodes 0x40..0x41. */
struct counter { uint64_t n; };

static size_t ctr_execute(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op,
			  size_t len, uint8_t *out, size_t cap)
{
	struct counter *c = state;

	(void)ctx;
	(void)len;
	if (op[0] == 0x40)
		c->n++;
	if (cap < 8)
		return 0;
	hm_put_be64(out, c->n);
	return 8;
}

static void ctr_digest(void *state, uint8_t out[HM_DIGEST_LEN])
{
	hm_digest(state, sizeof(struct counter), out);
}

static int ctr_snapshot(void *state, uint8_t **buf, size_t *len)
{
	*buf = malloc(8);
	if (!*buf)
		return -1;
	hm_put_be64(*buf, ((struct counter *)state)->n);
	*len = 8;
	return 0;
}

static int ctr_restore(void *state, const uint8_t *buf, size_t len)
{
	if (len != 8)
		return -1;
	((struct counter *)state)->n = hm_get_be64(buf);
	return 0;
}

static const struct hm_service_ops ctr_ops = {
	"counter", ctr_execute, ctr_digest, ctr_snapshot, ctr_restore, free,
};

static bool make_mux(struct hm_service *m)
{
	struct hm_service_route r[2];

	memset(r, 0, sizeof(r));
	r[0].first = 1;
	r[0].last = 15;
	if (!ASSERT_OK(hm_kv_service_new(&r[0].svc), "kv"))
		return false;
	r[1].first = 0x40;
	r[1].last = 0x41;
	r[1].svc = (struct hm_service){ &ctr_ops, calloc(1, sizeof(struct counter)) };
	return ASSERT_OK(hm_service_mux_new(m, r, 2), "mux");
}

static size_t run(struct hm_service *s, const uint8_t *op, size_t len, uint8_t *out)
{
	struct hm_exec_ctx ctx = { .seq = 1, .client = 100, .timestamp = 1 };

	return s->ops->execute(s->state, &ctx, op, len, out, HM_MAX_RESULT);
}

HM_TEST(mux_routes_by_opcode)
{
	struct hm_service m;
	uint8_t op[64], out[HM_MAX_RESULT], inc = 0x40, odd = 0x20;
	size_t n;

	if (!ASSERT_OK(hm_crypto_init(), "crypto") || !make_mux(&m))
		return;
	n = hm_kv_encode_put(op, sizeof(op), "k", "v", 1);
	ASSERT_EQ(run(&m, op, n, out), 1, "put result");
	ASSERT_EQ(out[0], HM_KV_OK, "put ok");
	n = hm_kv_encode_get(op, sizeof(op), "k");
	ASSERT_EQ(run(&m, op, n, out), 2, "get result");
	ASSERT_EQ(out[1], 'v', "value");
	ASSERT_EQ(run(&m, &inc, 1, out), 8, "counter");
	ASSERT_EQ(hm_get_be64(out), 1, "counted once");
	ASSERT_EQ(run(&m, &odd, 1, out), 1, "unrouted");
	ASSERT_EQ(out[0], HM_MUX_NO_SERVICE, "no service");
	ASSERT_EQ(run(&m, op, 0, out), 1, "empty op");
	ASSERT_TRUE(hm_service_mux_part(&m, 0x41) != NULL, "part lookup");
	ASSERT_TRUE(hm_service_mux_part(&m, 0x42) == NULL, "no part");
	m.ops->destroy(m.state);
}

HM_TEST(mux_refuses_overlap)
{
	struct hm_service_route r[2];
	struct hm_service m;

	memset(r, 0, sizeof(r));
	r[0].first = 1;
	r[0].last = 15;
	r[1].first = 15;
	r[1].last = 20;
	ASSERT_EQ(hm_service_mux_new(&m, r, 2), -1, "overlapping ranges");
	ASSERT_EQ(hm_service_mux_new(&m, r, 0), -1, "no route");
}

HM_TEST(mux_snapshot_restore)
{
	struct hm_service a, b;
	uint8_t op[64], out[HM_MAX_RESULT], inc = 0x40, da[HM_DIGEST_LEN], db[HM_DIGEST_LEN];
	uint8_t *snap, *bad;
	size_t n, len;

	if (!make_mux(&a) || !make_mux(&b))
		return;
	a.ops->digest(a.state, da);
	b.ops->digest(b.state, db);
	ASSERT_MEMEQ(da, db, HM_DIGEST_LEN, "empty states agree");
	n = hm_kv_encode_put(op, sizeof(op), "key", "value", 5);
	run(&a, op, n, out);
	a.ops->digest(a.state, db);
	ASSERT_TRUE(memcmp(da, db, HM_DIGEST_LEN) != 0, "a kv change moves the digest");
	run(&a, &inc, 1, out);
	a.ops->digest(a.state, da);
	ASSERT_TRUE(memcmp(da, db, HM_DIGEST_LEN) != 0, "a counter change moves the digest");
	if (!ASSERT_OK(a.ops->snapshot(a.state, &snap, &len), "snapshot"))
		return;
	ASSERT_OK(b.ops->restore(b.state, snap, len), "restore");
	b.ops->digest(b.state, db);
	ASSERT_MEMEQ(da, db, HM_DIGEST_LEN, "restored digest");
	bad = malloc(len + 1);
	for (size_t cut = 0; cut < len; cut++) {
		struct hm_service c;

		if (!make_mux(&c))
			break;
		if (c.ops->restore(c.state, snap, cut) == 0)
			HM_FAIL("restore accepted a snapshot cut at %zu of %zu", cut, len);
		c.ops->destroy(c.state);
	}
	memcpy(bad, snap, len);
	bad[len] = 0;
	ASSERT_EQ(b.ops->restore(b.state, bad, len + 1), -1, "trailing byte");
	bad[0] = 3;
	ASSERT_EQ(b.ops->restore(b.state, bad, len), -1, "wrong part count");
	free(bad);
	free(snap);
	a.ops->destroy(a.state);
	b.ops->destroy(b.state);
}
