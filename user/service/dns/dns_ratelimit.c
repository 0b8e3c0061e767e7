// SPDX-License-Identifier: MIT
/* Per-client-prefix token buckets (see dns_ratelimit.h). */
#include "service/dns/dns_ratelimit.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/netprefix.h"

#define SLOTS 8192 /* buckets; 8192 * 40 bytes */
#define PROBES 8   /* slots a prefix may use (linear probing) */

struct bucket {
	uint8_t key[17];     /* family, masked address; key[0] == 0: free */
	double tokens;
	uint64_t last_us;
};

struct hm_dns_ratelimit {
	struct hm_dns_ratelimit_config cfg;
	uint8_t secret[crypto_shorthash_KEYBYTES];
	struct bucket slots[SLOTS];
	struct hm_dns_ratelimit_stats st;
};

struct hm_dns_ratelimit *hm_dns_ratelimit_new(const struct hm_dns_ratelimit_config *cfg)
{
	struct hm_dns_ratelimit *rl;

	if (!cfg->qps || !(rl = calloc(1, sizeof(*rl))))
		return NULL;
	rl->cfg = *cfg;
	if (!rl->cfg.burst)
		rl->cfg.burst = cfg->qps;
	if (!rl->cfg.v4_len || rl->cfg.v4_len > 32)
		rl->cfg.v4_len = 24;
	if (!rl->cfg.v6_len || rl->cfg.v6_len > 128)
		rl->cfg.v6_len = 56;
	randombytes_buf(rl->secret, sizeof(rl->secret));
	return rl;
}

void hm_dns_ratelimit_free(struct hm_dns_ratelimit *rl)
{
	free(rl);
}

/* The client's prefix as a bucket key. */
static bool key_of(const struct hm_dns_ratelimit *rl, const struct sockaddr *sa, uint8_t key[17])
{
	uint8_t family, addr[16];
	unsigned len;

	if (!hm_prefix_addr_of(sa, &family, addr))
		return false;
	len = family == AF_INET ? rl->cfg.v4_len : rl->cfg.v6_len;
	for (unsigned bit = len; bit < 128; bit++)
		addr[bit / 8] &= (uint8_t)~(0x80u >> (bit % 8));
	key[0] = family;
	memcpy(key + 1, addr, 16);
	return true;
}

static void refill(const struct hm_dns_ratelimit *rl, struct bucket *b, uint64_t now_us)
{
	if (now_us > b->last_us) {
		b->tokens += (double)(now_us - b->last_us) * rl->cfg.qps / 1e6;
		if (b->tokens > rl->cfg.burst)
			b->tokens = rl->cfg.burst;
	}
	b->last_us = now_us;
}

/* The slot for key: its own, else a free or idle one among its probes. */
static struct bucket *slot_for(struct hm_dns_ratelimit *rl, const uint8_t key[17], uint64_t now_us)
{
	uint8_t h[crypto_shorthash_BYTES];
	struct bucket *spare = NULL;
	uint64_t start;

	crypto_shorthash(h, key, 17, rl->secret);
	memcpy(&start, h, sizeof(start));
	for (unsigned i = 0; i < PROBES; i++) {
		struct bucket *b = &rl->slots[(start + i) % SLOTS];

		if (b->key[0] && memcmp(b->key, key, 17) == 0)
			return b;
		if (spare)
			continue;
		if (!b->key[0]) {
			spare = b;
		} else {
			refill(rl, b, now_us);
			if (b->tokens >= rl->cfg.burst)
				spare = b; /* idle: nothing to remember */
		}
	}
	if (spare) {
		if (!spare->key[0])
			rl->st.prefixes++;
		memcpy(spare->key, key, 17);
		spare->tokens = rl->cfg.burst;
		spare->last_us = now_us;
	}
	return spare;
}

bool hm_dns_ratelimit_take(struct hm_dns_ratelimit *rl, const struct sockaddr *sa,
			   uint64_t now_us)
{
	uint8_t key[17];
	struct bucket *b;

	if (!rl || !key_of(rl, sa, key))
		return true;
	b = slot_for(rl, key, now_us);
	if (!b) {
		rl->st.table_full++;
		return true;
	}
	refill(rl, b, now_us);
	if (b->tokens < 1.0) {
		rl->st.limited++;
		return false;
	}
	b->tokens -= 1.0;
	return true;
}

void hm_dns_ratelimit_stats(const struct hm_dns_ratelimit *rl, struct hm_dns_ratelimit_stats *out)
{
	memset(out, 0, sizeof(*out));
	if (rl)
		*out = rl->st;
}
