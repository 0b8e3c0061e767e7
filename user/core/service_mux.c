// SPDX-License-Identifier: MIT
/* One replicated service made of several (see service_mux.h). */
#include "core/service_mux.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

struct mux {
	struct hm_service_route routes[HM_MUX_MAX_ROUTES];
	size_t n;
};

static const struct hm_service_route *route_of(const struct mux *m, uint8_t opcode)
{
	for (size_t i = 0; i < m->n; i++)
		if (opcode >= m->routes[i].first && opcode <= m->routes[i].last)
			return &m->routes[i];
	return NULL;
}

static size_t mux_execute(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op,
			  size_t len, uint8_t *out, size_t cap)
{
	const struct hm_service_route *r = len ? route_of(state, op[0]) : NULL;

	if (!r) {
		if (!cap)
			return 0;
		out[0] = HM_MUX_NO_SERVICE;
		return 1;
	}
	return r->svc.ops->execute(r->svc.state, ctx, op, len, out, cap);
}

static bool mux_check(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op, size_t len)
{
	const struct hm_service_route *r = len ? route_of(state, op[0]) : NULL;

	/* an op no part owns executes to HM_MUX_NO_SERVICE everywhere alike */
	if (!r || !r->svc.ops->check)
		return true;
	return r->svc.ops->check(r->svc.state, ctx, op, len);
}

/* BLAKE2b over a label and every part's range and digest, in route order. */
static void mux_digest(void *state, uint8_t out[HM_DIGEST_LEN])
{
	struct mux *m = state;
	crypto_generichash_state h;

	crypto_generichash_init(&h, NULL, 0, HM_DIGEST_LEN);
	crypto_generichash_update(&h, (const uint8_t *)"hypermesh-mux-v1", 16);
	for (size_t i = 0; i < m->n; i++) {
		uint8_t range[2] = { m->routes[i].first, m->routes[i].last }, d[HM_DIGEST_LEN];

		m->routes[i].svc.ops->digest(m->routes[i].svc.state, d);
		crypto_generichash_update(&h, range, 2);
		crypto_generichash_update(&h, d, sizeof(d));
	}
	crypto_generichash_final(&h, out, HM_DIGEST_LEN);
}

/* u8 parts, then per part: u8 first, u32 length, its snapshot. */
static int mux_snapshot(void *state, uint8_t **buf, size_t *len)
{
	struct mux *m = state;
	uint8_t *parts[HM_MUX_MAX_ROUTES] = { 0 }, *p;
	size_t lens[HM_MUX_MAX_ROUTES], total = 1;
	int rc = -1;

	for (size_t i = 0; i < m->n; i++) {
		if (m->routes[i].svc.ops->snapshot(m->routes[i].svc.state, &parts[i], &lens[i]) < 0 ||
		    lens[i] > UINT32_MAX)
			goto out;
		total += 5 + lens[i];
	}
	*buf = p = malloc(total);
	if (!p)
		goto out;
	*p++ = (uint8_t)m->n;
	for (size_t i = 0; i < m->n; i++) {
		*p++ = m->routes[i].first;
		hm_put_be32(p, (uint32_t)lens[i]);
		memcpy(p + 4, parts[i], lens[i]);
		p += 4 + lens[i];
	}
	*len = total;
	rc = 0;
out:
	for (size_t i = 0; i < m->n; i++)
		free(parts[i]);
	return rc;
}

static int mux_restore(void *state, const uint8_t *buf, size_t len)
{
	struct mux *m = state;
	size_t off = 1;

	if (len < 1 || buf[0] != m->n)
		return -1;
	for (size_t i = 0; i < m->n; i++) {
		uint32_t plen;

		if (len - off < 5 || buf[off] != m->routes[i].first)
			return -1;
		plen = hm_get_be32(buf + off + 1);
		if (len - off - 5 < plen ||
		    m->routes[i].svc.ops->restore(m->routes[i].svc.state, buf + off + 5, plen) < 0)
			return -1;
		off += 5 + plen;
	}
	return off == len ? 0 : -1;
}

static void mux_destroy(void *state)
{
	struct mux *m = state;

	for (size_t i = 0; i < m->n; i++)
		m->routes[i].svc.ops->destroy(m->routes[i].svc.state);
	free(m);
}

static const struct hm_service_ops mux_ops = {
	.name = "mux",
	.execute = mux_execute,
	.digest = mux_digest,
	.snapshot = mux_snapshot,
	.restore = mux_restore,
	.destroy = mux_destroy,
	.check = mux_check,
};

int hm_service_mux_new(struct hm_service *out, const struct hm_service_route *routes, size_t n)
{
	struct mux *m;

	if (n == 0 || n > HM_MUX_MAX_ROUTES)
		return -1;
	for (size_t i = 0; i < n; i++)
		for (size_t j = 0; j < n; j++)
			if (i != j && routes[i].first <= routes[j].last &&
			    routes[j].first <= routes[i].last)
				return -1;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -1;
	memcpy(m->routes, routes, n * sizeof(*routes));
	m->n = n;
	out->ops = &mux_ops;
	out->state = m;
	return 0;
}

void *hm_service_mux_part(const struct hm_service *mux, uint8_t opcode)
{
	const struct hm_service_route *r = route_of(mux->state, opcode);

	return r ? r->svc.state : NULL;
}
