/* SPDX-License-Identifier: MIT */
/*
 * One replica's recursive resolver (libunbound): its own upstreams (stub and
 * forward zones), the cluster's trust anchors, DNSSEC validation at a
 * reference time the caller gives (the cluster's agreed time, not this
 * machine's clock), asynchronous so it fits an epoll loop.
 *
 *   r = hm_dns_resolver_new(&cfg, agreed_time, err, sizeof(err));
 *   epoll_ctl(ep, EPOLL_CTL_ADD, hm_dns_resolver_fd(r), EPOLLIN);
 *   hm_dns_resolve(r, "www.example.org.", 1, 1, done, arg);
 *   ... on EPOLLIN: hm_dns_resolver_process(r);  -> done(arg, &result)
 *
 * How the reference time works: unbound takes the validation time from its
 * val-override-date option, which is fixed once a context has started, so
 * the resolver keeps one libunbound context per reference time.
 * hm_dns_resolver_set_time() starts a new context (new queries go to it);
 * the previous one finishes the queries it has and is then deleted.  The
 * caller should move the time in coarse steps (say every few minutes of
 * agreed time): RRSIG validity windows are days long, and each step costs a
 * cold cache.  hm_dns_resolver_fd() is one epoll fd that covers every
 * context, so the caller registers it once.
 */
#ifndef HM_DNS_RESOLVER_H
#define HM_DNS_RESOLVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct hm_dns_resolver;

/* One upstream: queries for names at or below zone go to addr
 * ("198.18.0.2" or "198.18.0.2@5353").  A stub zone's addr is an
 * authoritative server (queries without RD); a forward zone's addr is a
 * recursive resolver (queries with RD).  Several entries for one zone give
 * several addresses. */
struct hm_dns_upstream {
	const char *zone;
	const char *addr;
	bool forward;
};

struct hm_dns_resolver_config {
	const struct hm_dns_upstream *upstreams;
	size_t n_upstreams;
	/* Trust anchors as DS or DNSKEY records in presentation form. */
	const char *const *trust_anchors;
	size_t n_trust_anchors;
	/* A file of DS/DNSKEY records (zone file format), or NULL. */
	const char *trust_anchor_file;
	/* Ask upstreams over TCP only (never UDP). */
	bool tcp_upstream;
	/* Records served from local data (unbound local-data, presentation
	 * form): answered without any upstream, insecure.  For tests and for
	 * names the cluster itself defines. */
	const char *const *local_data;
	size_t n_local_data;
	/* Largest TTL unbound caches (0: unbound's default of a day). */
	uint32_t cache_max_ttl;
	/* Root hints file (unbound root-hints) for names no upstream covers,
	 * or NULL for libunbound's compiled-in hints. */
	const char *root_hints;
};

enum hm_dns_security {
	HM_DNS_SEC_SECURE,   /* validated under a trust anchor */
	HM_DNS_SEC_INSECURE, /* no trust anchor covers it, or a proven unsigned delegation */
	HM_DNS_SEC_BOGUS,    /* should validate but does not: see why, ede */
	HM_DNS_SEC_FAILED,   /* no answer at all (upstreams unreachable, internal error) */
};

struct hm_dns_result {
	enum hm_dns_security sec;
	int rcode;              /* of the answer (NOERROR, NXDOMAIN, ...); SERVFAIL if bogus or failed */
	bool nxdomain, havedata;
	const char *why;        /* why bogus or failed, NULL otherwise */
	int ede;                /* RFC 8914 code for a SERVFAIL reply (bogus or failed), else -1 */
	/* The upstream reply as unbound validated it: answer section with the
	 * RRSIGs, and for negative answers the SOA and NSEC/NSEC3 proof with
	 * theirs.  Feed it to hm_dns_canon_from_reply(). */
	const uint8_t *packet;
	size_t packet_len;
	uint32_t ttl;           /* smallest TTL in the answer (hm_dns_reply_min_ttl) */
	int64_t ref_time;       /* the validation reference time used */
};

/* Called once per query from hm_dns_resolver_process() (or with
 * HM_DNS_SEC_FAILED from hm_dns_resolver_free() and _set_time() for queries
 * still pending).  The result and its packet live only during the call.
 * A callback may start lookups and move the time; it must not free the
 * resolver. */
typedef void (*hm_dns_resolve_cb)(void *arg, const struct hm_dns_result *res);

/* ref_time: the validation reference time, seconds since the epoch. */
struct hm_dns_resolver *hm_dns_resolver_new(const struct hm_dns_resolver_config *cfg,
					    int64_t ref_time, char *err, size_t errlen);
void hm_dns_resolver_free(struct hm_dns_resolver *r);

/* Change the reference time (see above).  0 on success. */
int hm_dns_resolver_set_time(struct hm_dns_resolver *r, int64_t ref_time);
int64_t hm_dns_resolver_time(const struct hm_dns_resolver *r);

/* Start a lookup; cb gets the result later.  0, or -1 on bad arguments or
 * when unbound refuses the query (then cb is never called). */
int hm_dns_resolve(struct hm_dns_resolver *r, const char *name, uint16_t qtype, uint16_t qclass,
		   hm_dns_resolve_cb cb, void *arg);

/* The same, on a context of its own that starts with an empty cache and
 * is deleted when the result is delivered: the answer comes from the
 * authorities, with their full TTLs, never from what earlier lookups
 * cached (the prefetch of an answer about to expire; docs/dns.md,
 * "Prefetch").  At most HM_DNS_MAX_FRESH at once: -1 beyond. */
#define HM_DNS_MAX_FRESH 8
int hm_dns_resolve_fresh(struct hm_dns_resolver *r, const char *name, uint16_t qtype,
			 uint16_t qclass, hm_dns_resolve_cb cb, void *arg);

/* The fd to poll for input, and what to call when it is readable (also
 * safe to call when it is not).  Returns the number of results delivered,
 * or -1 on an internal error. */
int hm_dns_resolver_fd(const struct hm_dns_resolver *r);
int hm_dns_resolver_process(struct hm_dns_resolver *r);

/* Queries started and not yet delivered. */
unsigned hm_dns_resolver_pending(const struct hm_dns_resolver *r);

/* Wait until every pending query is delivered or timeout_ms passes (for
 * tools and tests; a replica uses the fd).  Returns the number pending. */
unsigned hm_dns_resolver_wait(struct hm_dns_resolver *r, int timeout_ms);

const char *hm_dns_security_name(enum hm_dns_security s);

#endif /* HM_DNS_RESOLVER_H */
