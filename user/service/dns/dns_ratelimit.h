/* SPDX-License-Identifier: MIT */
/*
 * Per-client-prefix rate limits for the DNS front end: one token bucket per
 * client prefix (IPv4 /v4_len, IPv6 /v6_len), refilled at qps tokens a
 * second up to burst; a query takes one token.  The table is bounded (a
 * fixed number of buckets, hashed with a per-process secret key so clients
 * cannot aim at one slot): a prefix whose bucket is full again (idle) gives
 * its slot up; when every slot a prefix may use is busy the query passes
 * and is counted (table_full), because refusing there would let a client
 * with many addresses lock every newcomer out.
 */
#ifndef HM_DNS_RATELIMIT_H
#define HM_DNS_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

struct hm_dns_ratelimit_config {
	uint32_t qps;    /* 0: no limit (hm_dns_ratelimit_new returns NULL) */
	uint32_t burst;  /* 0: qps */
	uint8_t v4_len;  /* 0: 24 */
	uint8_t v6_len;  /* 0: 56 */
};

struct hm_dns_ratelimit_stats {
	uint64_t limited;     /* queries over their prefix's limit */
	uint64_t table_full;  /* passed unlimited: no slot for their prefix */
	uint64_t prefixes;    /* slots in use */
};

struct hm_dns_ratelimit;

/* NULL when cfg->qps is 0 (no limit) or out of memory. */
struct hm_dns_ratelimit *hm_dns_ratelimit_new(const struct hm_dns_ratelimit_config *cfg);
void hm_dns_ratelimit_free(struct hm_dns_ratelimit *rl);

/* Take a token for a query from sa at monotonic time now_us: true when it
 * may be answered.  Always true for rl == NULL and for non-IP addresses. */
bool hm_dns_ratelimit_take(struct hm_dns_ratelimit *rl, const struct sockaddr *sa,
			   uint64_t now_us);

void hm_dns_ratelimit_stats(const struct hm_dns_ratelimit *rl, struct hm_dns_ratelimit_stats *out);

#endif /* HM_DNS_RATELIMIT_H */
