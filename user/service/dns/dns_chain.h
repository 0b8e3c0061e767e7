/* SPDX-License-Identifier: MIT */
/*
 * Rule (a) of the DNS agreement (docs/dns.md): a SECURE canonical answer is
 * acceptable on its own when its RRsets carry a DNSSEC chain that validates
 * under the cluster's trust anchors at the agreed time.  The proposer
 * collects the chain with its resolver (hm_dns_chain_collect); every replica
 * checks it with hm_dns_chain_verify, a deterministic function of
 * (canon, chain, anchors, time), so all correct replicas reach one verdict
 * whatever their upstreams.
 *
 * The chain is a byte string: u8 version (1), u16 count, then count RRs in
 * RFC 4034 canonical wire form with TTL 0 (RRSIGs carry the original TTL):
 * the DNSKEY RRsets of every signer on the way from a trust anchor down,
 * the DS RRsets at each zone cut, and their RRSIGs.
 *
 * What rule (a) accepts (anything else falls back to rule (b)):
 *  - a canon with the SECURE flag, rcode NOERROR and a non-empty answer;
 *  - every RRset of the answer signed by a key of a zone at or above its
 *    owner, the RRSIG valid at the given time, no wildcard expansion (that
 *    would need a proof of non-existence the canon does not carry);
 *  - the RRsets form the question's CNAME chain (nothing unrelated);
 *  - every key used traced to a trust anchor: DNSKEY RRsets self-signed by
 *    a key an anchor or a validated DS names, DS RRsets signed by a
 *    validated key of the parent.
 * Negative answers (NXDOMAIN, NODATA) always go through rule (b).
 */
#ifndef HM_DNS_CHAIN_H
#define HM_DNS_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <ldns/ldns.h>

#include "service/dns/dns_resolver.h"

#define HM_DNS_CHAIN_VERSION 1
#define HM_DNS_CHAIN_MAX_DEPTH 16 /* zone cuts from an anchor down to a signer */

struct hm_dns_anchors;

/* Trust anchors from DS/DNSKEY records in presentation form and/or a file
 * of them (the same inputs the resolver gets). */
struct hm_dns_anchors *hm_dns_anchors_new(const char *const *texts, size_t n, const char *file,
					  char *err, size_t errlen);
void hm_dns_anchors_free(struct hm_dns_anchors *a);

/* 0 when rule (a) accepts canon with chain at time t (seconds since the
 * epoch), -1 otherwise with the reason in why. */
int hm_dns_chain_verify(const struct hm_dns_anchors *a, const uint8_t *canon, size_t canon_len,
			const uint8_t *chain, size_t chain_len, int64_t t, char *why, size_t whylen);

/* One RRSIG: ldns_verify_rrsig_keylist_time(rrset, sig, keys, t) == OK,
 * the same verdict, with successful verifications remembered (in
 * common/sig_memo.h's memo; its hm_sig_memo_stats() counts them); the
 * validity window is checked on every call. */
bool hm_dns_rrsig_verifies(const ldns_rr_list *rrset, const ldns_rr *sig, const ldns_rr_list *keys,
			   int64_t t);

/* Collect the chain for a SECURE canon through the resolver (DNSKEY and DS
 * lookups from each signer up to a trust anchor; each must come back
 * secure).  cb gets the chain (malloc'd, the callee frees it) or NULL and
 * an error text.  Returns -1 if nothing could be started (then cb is not
 * called). */
typedef void (*hm_dns_chain_cb)(void *arg, uint8_t *chain, size_t len, const char *err);
int hm_dns_chain_collect(struct hm_dns_resolver *r, const struct hm_dns_anchors *a,
			 const uint8_t *canon, size_t canon_len, hm_dns_chain_cb cb, void *arg);

#endif /* HM_DNS_CHAIN_H */
