// SPDX-License-Identifier: MIT
/* Key-value store with a time-skew admission check (see kv_skew.h). */
#include "testing/kv_skew.h"

#include <stdlib.h>

#include "service/kv/kv.h"

struct kv_skew {
	struct hm_service kv;
	uint64_t (*clock)(void *ctx);
	void *clock_ctx;
	uint64_t skew_us;
	uint64_t refused;
};

static size_t skew_execute(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op,
			   size_t op_len, uint8_t *out, size_t cap)
{
	struct kv_skew *k = state;

	return k->kv.ops->execute(k->kv.state, ctx, op, op_len, out, cap);
}

static void skew_digest(void *state, uint8_t out[HM_DIGEST_LEN])
{
	struct kv_skew *k = state;

	k->kv.ops->digest(k->kv.state, out);
}

static int skew_snapshot(void *state, uint8_t **buf, size_t *len)
{
	struct kv_skew *k = state;

	return k->kv.ops->snapshot(k->kv.state, buf, len);
}

static int skew_restore(void *state, const uint8_t *buf, size_t len)
{
	struct kv_skew *k = state;

	return k->kv.ops->restore(k->kv.state, buf, len);
}

static void skew_destroy(void *state)
{
	struct kv_skew *k = state;

	k->kv.ops->destroy(k->kv.state);
	free(k);
}

static bool skew_check(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op,
		       size_t op_len)
{
	struct kv_skew *k = state;
	uint64_t now = k->clock(k->clock_ctx), t = ctx ? ctx->timestamp : 0;

	(void)op, (void)op_len;
	if ((t > now ? t - now : now - t) <= k->skew_us)
		return true;
	k->refused++;
	return false;
}

static const struct hm_service_ops kv_skew_ops = {
	.name = "kv-skew",
	.execute = skew_execute,
	.digest = skew_digest,
	.snapshot = skew_snapshot,
	.restore = skew_restore,
	.destroy = skew_destroy,
	.check = skew_check,
};

int hm_kv_skew_service_new(struct hm_service *svc, uint64_t (*clock)(void *ctx), void *ctx,
			   uint64_t skew_us)
{
	struct kv_skew *k = calloc(1, sizeof(*k));

	if (!k || hm_kv_service_new(&k->kv) < 0) {
		free(k);
		return -1;
	}
	k->clock = clock;
	k->clock_ctx = ctx;
	k->skew_us = skew_us;
	svc->ops = &kv_skew_ops;
	svc->state = k;
	return 0;
}

uint64_t hm_kv_skew_refused(const struct hm_service *svc)
{
	return svc->ops == &kv_skew_ops ? ((const struct kv_skew *)svc->state)->refused : 0;
}
