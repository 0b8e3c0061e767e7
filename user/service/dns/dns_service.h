/* SPDX-License-Identifier: MIT */
/*
 * The DNS agreement as a replicated service (docs/dns.md, "Agreement as
 * wired").  Opcodes 0x20..0x2f of the service multiplexer.
 *
 * Replicas submit ops as clients (client id HM_REPLICA_CLIENT_BASE + i for
 * replica i).  Q = (qname in wire form, lower case; qtype; qclass).
 *
 *   OBSERVE  0x20 | Q | i64 T | u8 status | u16 ede | u32 ttl
 *                 | u32 canon_len | canon | u32 chain_len | chain
 *       replica i's own lookup of Q validated at T.  status: HM_DNS_OBS_ANSWER
 *       (canon present), _BOGUS, _FAILED (no canon, ede says why).
 *   CERTIFY  0x21 | Q
 *       the decided entry for Q, or "not decided"; what `hmctl dns query
 *       --cert` asks so that 2f+1 signed replies certify it.
 *
 * Q encoding: u8 qname_len | qname | u16 qtype | u16 qclass (big endian, as
 * every integer here).
 *
 * Executing OBSERVE is deterministic: the first OBSERVE for a Q not in the
 * cache opens a lookup at its T; later ones at another T are ignored (and
 * counted).  The lookup is decided when
 *   (a) an observation's canon is SECURE and its DNSSEC chain verifies under
 *       the trust anchors at T (hm_dns_chain_verify), or
 *   (b) f+1 distinct replicas observed canons with the same digest, or
 *   (c) 2f+1 observations of which no f+1 agree (SERVFAIL, EDE 0 "no
 *       agreement"), or f+1 of them report bogus/failed (SERVFAIL, their EDE).
 * The decision enters the certified cache (served TTL = min(ttl, max_ttl),
 * expiry = T + TTL; SERVFAIL decisions HM_DNS_NEG_TTL seconds).  Entries and
 * open lookups are evicted by the T of later ops, never by a local clock.
 */
#ifndef HM_DNS_SERVICE_H
#define HM_DNS_SERVICE_H
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "common/config.h"
#include "core/service.h"

#define HM_DNS_OP_FIRST 0x20
#define HM_DNS_OP_LAST 0x2f
#define HM_DNS_OP_OBSERVE 0x20
#define HM_DNS_OP_CERTIFY 0x21
/* Several OBSERVEs of one replica in one op: u8 0x22, u16 count, then per
 * observation u32 length and the OBSERVE op itself.  Concurrent misses
 * share one request and so one agreement round (docs/dns.md "Agreement
 * as wired"); each observation executes exactly as alone, in order. */
#define HM_DNS_OP_OBSERVE_MANY 0x22
#define HM_DNS_OBSERVE_MANY_MAX 256

/* Replica i submits its ops as client HM_REPLICA_CLIENT_BASE + i (config.h). */

/* Seconds a SERVFAIL decision is cached (negative caching). */
#define HM_DNS_NEG_TTL 5

/* Prefetch (docs/dns.md, "Prefetch"): an observation whose T falls in the
 * last tenth of a cached answer's TTL (at least 1 s, answers of at least
 * HM_DNS_PREFETCH_MIN_TTL seconds, once per entry) opens a fresh lookup of
 * the same Q while the entry is still served.  Its decision replaces the
 * entry; a failed one leaves it to expire as it would have. */
#define HM_DNS_PREFETCH_MIN_TTL 10

enum hm_dns_obs_status {
	HM_DNS_OBS_ANSWER = 0,
	HM_DNS_OBS_BOGUS = 1,
	HM_DNS_OBS_FAILED = 2,
};

/* First byte of a result. */
enum hm_dns_result_code {
	HM_DNS_R_PENDING = 0,    /* OBSERVE recorded, not decided yet */
	HM_DNS_R_DECIDED = 1,    /* followed by the entry (see below) */
	HM_DNS_R_NOT_DECIDED = 2,/* CERTIFY: no entry for Q */
	HM_DNS_R_IGNORED = 3,    /* OBSERVE at another T, a duplicate, or Q already decided */
	HM_DNS_R_MALFORMED = 4,  /* refused: bad encoding, canon check failed, not a replica */
	HM_DNS_R_MANY = 5,       /* OBSERVE_MANY: u16 count, then each one's result code */
};

struct hm_dns_q {
	uint8_t qname[255];
	uint8_t qname_len;
	uint16_t qtype, qclass;
};

/* A decided entry.  Encoded after HM_DNS_R_DECIDED as
 *   Q | u8 rule | u8 rcode | u16 ede | i64 T | i64 expiry | u32 ttl
 *   | digest[32] | u32 canon_len | canon
 * (canon_len 0 when it does not fit the result; digest covers it anyway). */
enum hm_dns_rule { HM_DNS_RULE_DNSSEC = 1, HM_DNS_RULE_OBSERVED = 2, HM_DNS_RULE_FAIL = 3 };

struct hm_dns_entry {
	struct hm_dns_q q;
	uint8_t rule;        /* enum hm_dns_rule */
	uint8_t rcode;       /* of the answer; SERVFAIL for RULE_FAIL */
	uint16_t ede;        /* RULE_FAIL: the EDE code */
	int64_t t, expiry;   /* decided at T, gone at T + ttl */
	uint32_t ttl;        /* served TTL */
	uint8_t digest[32];  /* hm_dns_canon_digest(canon); zero for RULE_FAIL */
	const uint8_t *canon;/* NULL for RULE_FAIL */
	size_t canon_len;
};

struct hm_dns_anchors;

/* Side effects of execute(), run by the daemon (execute itself stays pure). */
struct hm_dns_service_hooks {
	/* A lookup for q opened at t (also when an observation at another T
	 * was ignored: the observer should look again at t).  Called once the
	 * observation that opened it executed, so q may be decided already
	 * (rule (a) decides on that one observation). */
	void (*opened)(void *arg, const struct hm_dns_q *q, int64_t t);
	/* q was decided (the entry lives until the next op executes). */
	void (*decided)(void *arg, const struct hm_dns_entry *e);
	void *arg;
	/* A prefetch of q was decided as a failure (ede): the old entry stays
	 * until its expiry. */
	void (*prefetch_failed)(void *arg, const struct hm_dns_q *q, uint16_t ede);
	/* An OBSERVE or OBSERVE_MANY request of client `client` at timestamp
	 * ts was executed (whatever its result), after the hooks above that
	 * it caused.  The daemon learns from it that its own request
	 * committed. */
	void (*executed)(void *arg, uint32_t client, uint64_t ts);
};

struct hm_dns_service_config {
	uint32_t n, f;
	uint32_t max_ttl;           /* served TTL ceiling, seconds */
	uint32_t lookup_timeout_s;  /* open lookups older than this (agreed T) are dropped */
	uint32_t skew_s;            /* check(): |T - wall clock| allowed */
	const struct hm_dns_anchors *anchors; /* rule (a); NULL: rule (a) off.  Not owned. */
	int64_t (*wall_clock)(void);          /* check() only */
	struct hm_dns_service_hooks hooks;
	bool prefetch;              /* open prefetch lookups (see HM_DNS_PREFETCH_MIN_TTL) */
};

struct hm_dns_service_stats {
	uint64_t observations, decided_dnssec, decided_observed, decided_fail;
	uint64_t ignored_t, ignored_dup, ignored_late, malformed, expired, timed_out;
	uint64_t chain_rejected;
	uint64_t ignored_full, evicted_full;  /* state bounds reached */
	uint64_t differ[HM_MAX_REPLICAS];   /* per replica: observations unlike the decision */
	/* prefetch lookups opened, decided with an answer that replaced the
	 * entry, decided as a failure (the entry kept) */
	uint64_t prefetch_opened, prefetch_refreshed, prefetch_failed;
};

int hm_dns_service_new(struct hm_service *out, const struct hm_dns_service_config *cfg);
/* The state behind a service made by hm_dns_service_new (for the daemon:
 * cache look-ups, statistics, hooks). */
struct hm_dns_service;
void hm_dns_service_set_hooks(struct hm_dns_service *s, const struct hm_dns_service_hooks *h);
/* The cache entry for q, NULL if none (valid until the next execute). */
const struct hm_dns_entry *hm_dns_service_lookup(struct hm_dns_service *s, const struct hm_dns_q *q);
/* Has replica i an observation recorded for the open lookup of q at t? */
bool hm_dns_service_observed(struct hm_dns_service *s, const struct hm_dns_q *q, int64_t t,
			     uint32_t replica);
/* Would an observation of q at t open a prefetch (HM_DNS_PREFETCH_MIN_TTL)? */
bool hm_dns_service_prefetch_due(struct hm_dns_service *s, const struct hm_dns_q *q, int64_t t);
/* The T of the open lookup for q, if one is open. */
bool hm_dns_service_open_t(struct hm_dns_service *s, const struct hm_dns_q *q, int64_t *t);
void hm_dns_service_stats(struct hm_dns_service *s, struct hm_dns_service_stats *out);
size_t hm_dns_service_cache_size(struct hm_dns_service *s);

/* Encoders (for the daemon, hmctl and tests).  Return the length written,
 * 0 if cap is too small or an argument is out of range. */
size_t hm_dns_q_encode(const struct hm_dns_q *q, uint8_t *out, size_t cap);
int hm_dns_q_from_name(struct hm_dns_q *q, const uint8_t *qname, size_t qname_len,
		       uint16_t qtype, uint16_t qclass);
size_t hm_dns_observe_encode(const struct hm_dns_q *q, int64_t t, uint8_t status, uint16_t ede,
			     uint32_t ttl, const uint8_t *canon, size_t canon_len,
			     const uint8_t *chain, size_t chain_len, uint8_t *out, size_t cap);
size_t hm_dns_certify_encode(const struct hm_dns_q *q, uint8_t *out, size_t cap);
/* OBSERVE_MANY of n encoded OBSERVE ops (ops[i], lens[i]); 0 if it does not
 * fit cap or n is 0 or above HM_DNS_OBSERVE_MANY_MAX. */
size_t hm_dns_observe_many_encode(const uint8_t *const *ops, const size_t *lens, size_t n,
				  uint8_t *out, size_t cap);
/* The encoded size of OBSERVE_MANY with these ops' total length and count. */
size_t hm_dns_observe_many_len(size_t total_op_len, size_t n);
/* Decode a DECIDED result (after its first byte check).  The entry's canon
 * points into buf.  0, or -1 on a malformed result. */
int hm_dns_entry_decode(const uint8_t *buf, size_t len, struct hm_dns_entry *e);
size_t hm_dns_entry_encode(const struct hm_dns_entry *e, uint8_t *out, size_t cap);
#endif /* HM_DNS_SERVICE_H */
