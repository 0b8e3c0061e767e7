/* SPDX-License-Identifier: MIT */
/*
 * The answers kern/hm_dns.bpf.c serves, made from the certified cache
 * (docs/dns.md, "Answers from XDP").  A decided entry becomes two map
 * entries, for clients without and with the DO bit: the wire bytes
 * hm_dns_reply_build() makes for it after the question (the program writes
 * header, question echo, OPT and TTLs per query), the offsets of the TTL
 * fields, and the sum the UDP checksum needs.  Only decided answers (rule
 * DNSSEC or OBSERVED: agreed by 2f+1) go in; SERVFAIL decisions stay in
 * userspace, as do answers with more than HM_DNS_XDP_TTLS_MAX records.
 *
 *   hm_dns_xdp_answer_make(entry, do_bit, &key, &val)   pure, for tests too
 *   hm_dns_xdp_install(fd, entry)      both DO variants; on decision and on
 *                                      a userspace hit (after a restart)
 *   hm_dns_xdp_sweep(fd, svc, now)     remove what left the cache or expired
 */
#ifndef HM_DNS_XDP_ANSWERS_H
#define HM_DNS_XDP_ANSWERS_H

#include <stdbool.h>
#include <stdint.h>

#include "hm_dns_xdp.h"
#include "service/dns/dns_service.h"

/* Key and value for entry e and clients with (do_bit) or without DNSSEC
 * records.  0, or -1 when e is not one XDP serves (SERVFAIL, no canon,
 * too many records, a canon that does not build). */
int hm_dns_xdp_answer_make(const struct hm_dns_entry *e, bool do_bit, struct hm_dns_xdp_key *key,
			   struct hm_dns_xdp_answer *val);

struct hm_dns_xdp_sync_stats {
	uint64_t installed;      /* entries written (each DO variant counts) */
	uint64_t not_servable;   /* decided answers XDP does not serve */
	uint64_t removed;        /* entries the sweep deleted */
	uint64_t errors;         /* map updates that failed */
};

/* Install e (both DO variants) into the answers map fd. */
void hm_dns_xdp_install(int fd, const struct hm_dns_entry *e, struct hm_dns_xdp_sync_stats *st);
/* The same, but only the variants the map does not hold yet with e's
 * expiry (cheap enough for every userspace cache hit). */
void hm_dns_xdp_ensure(int fd, const struct hm_dns_entry *e, struct hm_dns_xdp_sync_stats *st);
/* Delete every map entry whose cache entry is gone, changed or expired at
 * now (wall-clock seconds).  Returns the entries left in the map. */
uint32_t hm_dns_xdp_sweep(int fd, struct hm_dns_service *svc, int64_t now,
			  struct hm_dns_xdp_sync_stats *st);

#endif /* HM_DNS_XDP_ANSWERS_H */
