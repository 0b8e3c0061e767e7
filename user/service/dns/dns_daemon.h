/* SPDX-License-Identifier: MIT */
/*
 * The replica's DNS side (docs/dns.md, "Agreement as wired"): the DNS front
 * end, this replica's resolver, and a client of the replicated service
 * through which the replica submits its OBSERVE ops.  It lives outside the
 * deterministic execution: the service (dns_service.c) calls its hooks when
 * a lookup opens (resolve and observe) and when one is decided (answer the
 * parked clients).
 *
 *   dd = hm_dns_daemon_new(cfg, id, keys, svc, anchors, err, len);
 *   for each fd of hm_dns_daemon_fds(): add to epoll;
 *   on any of them readable: hm_dns_daemon_handle(dd, fd);
 */
#ifndef HM_DNS_DAEMON_H
#define HM_DNS_DAEMON_H
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/crypto.h"
#include "service/dns/dns_service.h"

struct hm_dns_daemon;

/* How an answer was decided (the label `rule` of hypermesh_dns_answers_total). */
enum hm_dns_answer_rule {
	HM_DNS_ANS_DNSSEC = 0,  /* rule (a): the DNSSEC chain validates */
	HM_DNS_ANS_OBSERVED,    /* rule (b): f+1 replicas observed the same answer */
	HM_DNS_ANS_FAIL,        /* agreed failure (SERVFAIL with EDE) */
	HM_DNS_ANS_TIMEOUT,     /* no agreement within query_timeout_ms */
	HM_DNS_ANS_OVERLOAD,    /* too many parked queries */
	HM_DNS_ANS_FRONTEND,    /* refused or malformed: FORMERR, NOTIMP, REFUSED (dns.allow, rate, RD=0) */
	HM_DNS_ANS_STALE,       /* an expired agreed answer (dns.serve_expired_s, EDE 3) */
	HM_DNS_ANS_RULES,
};

/* Upstream (local resolver) latency histogram bounds, seconds. */
#define HM_DNS_UPSTREAM_BUCKETS 10
extern const double hm_dns_upstream_bounds_s[HM_DNS_UPSTREAM_BUCKETS];

/* The counters the metrics endpoint exports (cumulative). */
struct hm_dns_counters {
	uint64_t answers[HM_DNS_ANS_RULES][16]; /* by rule and RCODE */
	uint64_t cache_hits, cache_misses;
	uint64_t upstream_buckets[HM_DNS_UPSTREAM_BUCKETS + 1]; /* last: +Inf; not cumulative */
	uint64_t upstream_count;
	double upstream_sum_s;
	uint64_t observations_sent, observe_requests; /* our OBSERVEs, and the requests carrying them */
	uint64_t observations_dropped; /* OBSERVEs too big for a request: dropped, logged */
	uint64_t audits, audits_skipped; /* audit lookups made, and not made (over the budget) */
	uint64_t differ[HM_MAX_REPLICAS];       /* observations unlike the decision, per replica */
	uint32_t n_replicas;
};

const char *hm_dns_answer_rule_name(enum hm_dns_answer_rule r);
void hm_dns_daemon_counters(struct hm_dns_daemon *dd, struct hm_dns_counters *out);

/* svc: the DNS part of the replicated service (its hooks are set here).
 * anchors: rule (a) anchors or NULL; not owned. */
struct hm_dns_daemon *hm_dns_daemon_new(const struct hm_config *cfg, uint32_t id,
					const struct hm_keypair *keys, struct hm_dns_service *svc,
					const struct hm_dns_anchors *anchors, char *err,
					size_t errlen);
void hm_dns_daemon_free(struct hm_dns_daemon *dd);
/* The fds to watch for input (at most 4); returns how many. */
int hm_dns_daemon_fds(const struct hm_dns_daemon *dd, int fds[4]);
/* fd is one of them and readable: handle it.  Returns false if fd is not ours. */
bool hm_dns_daemon_handle(struct hm_dns_daemon *dd, int fd);
/* "dns" object for the status JSON: front-end counters, pending work, and
 * the service's statistics (decisions, poisoning per replica). */
json_t *hm_dns_daemon_status(struct hm_dns_daemon *dd);
/* What the access list and rate limits refused (for /metrics). */
struct hm_dns_access_counters {
	uint64_t refused_acl;     /* REFUSED: client outside dns.allow */
	uint64_t rate_dropped;    /* UDP query over its prefix's rate limit, dropped */
	uint64_t rate_refused;    /* TCP query over the limit, REFUSED */
	uint64_t norec_refused;   /* RD=0 query not in the cache, REFUSED */
	uint64_t stale_served;    /* expired answers served (serve-expired, EDE 3) */
	uint64_t tls_accepted, tls_queries, tls_handshake_failed; /* DNS over TLS */
	/* prefetch (agreed counts): opened, refreshed the entry, failed */
	uint64_t prefetch_opened, prefetch_refreshed, prefetch_failed;
};
void hm_dns_daemon_access(struct hm_dns_daemon *dd, struct hm_dns_access_counters *out);
/* Answer cache hits from XDP (config dns.xdp; docs/dns.md "Answers from
 * XDP"): load kern/hm_dns.bpf.c on dns.xdp_interface (else
 * network.interface) and keep its answer map in step with the certified
 * cache.  tail_fd: the xdp dataplane's hm_dns_tail program array, or -1 to
 * attach the responder alone.  0, or -1 with err set. */
int hm_dns_daemon_attach_xdp(struct hm_dns_daemon *dd, int tail_fd, char *err, size_t errlen);
struct hm_dns_xdp_stats;
/* The responder's counters; false when it is not attached. */
bool hm_dns_daemon_xdp_stats(struct hm_dns_daemon *dd, struct hm_dns_xdp_stats *out);
/* The wall clock the service's check() uses (seconds). */
int64_t hm_dns_wall_clock(void);
#endif /* HM_DNS_DAEMON_H */
