/* SPDX-License-Identifier: MIT */
/*
 * Zones signed at test time with ldns, for the DNSSEC tests (test_dns_chain,
 * test_dns_service): a KSK and a ZSK valid from T0 - 1 day to T0 + 30 days,
 * RRsets with their signatures, the chain format hm_dns_chain_verify reads,
 * and a canon built from a reply carrying given answer records.
 */
#ifndef HM_DNS_SIGN_H
#define HM_DNS_SIGN_H

#include <ldns/ldns.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "service/dns/dns_chain.h"
#include "service/dns/dns_msg.h"

#define T0 1780000000LL
#define DAY 86400LL

struct test_zone {
	ldns_key *ksk, *zsk;
	ldns_rr *ksk_rr, *zsk_rr;
};

/* A record from its text form (TTL 3600 unless it says otherwise). */
static inline ldns_rr *test_rr(const char *text)
{
	ldns_rr *r = NULL;

	if (ldns_rr_new_frm_str(&r, text, 3600, NULL, NULL) != LDNS_STATUS_OK) {
		fprintf(stderr, "bad RR %s\n", text);
		abort();
	}
	return r;
}

/* An ECDSA P-256 key for zone, its DNSKEY record in *pub. */
static inline ldns_key *test_zone_key(const char *zone, bool ksk, ldns_rr **pub)
{
	ldns_key *k = ldns_key_new_frm_algorithm(LDNS_SIGN_ECDSAP256SHA256, 256);

	if (!k)
		abort();
	ldns_key_set_pubkey_owner(k, ldns_dname_new_frm_str(zone));
	ldns_key_set_flags(k, ksk ? 257 : 256);
	ldns_key_set_inception(k, (uint32_t)(T0 - DAY));
	ldns_key_set_expiration(k, (uint32_t)(T0 + 30 * DAY));
	*pub = ldns_key2rr(k);
	ldns_key_set_keytag(k, ldns_calc_keytag(*pub));
	return k;
}

static inline void test_zone_init(struct test_zone *z, const char *name)
{
	z->ksk = test_zone_key(name, true, &z->ksk_rr);
	z->zsk = test_zone_key(name, false, &z->zsk_rr);
}

static inline void test_zone_free(struct test_zone *z)
{
	ldns_key_deep_free(z->ksk);
	ldns_key_deep_free(z->zsk);
	ldns_rr_free(z->ksk_rr);
	ldns_rr_free(z->zsk_rr);
}

/* Append clones of set and its signatures by k to out. */
static inline void test_add_signed(ldns_rr_list *out, ldns_rr_list *set, ldns_key *k)
{
	ldns_key_list *keys = ldns_key_list_new();
	ldns_rr_list *sigs;

	ldns_key_list_push_key(keys, k);
	sigs = ldns_sign_public(set, keys);
	if (!sigs)
		abort();
	for (size_t i = 0; i < ldns_rr_list_rr_count(set); i++)
		ldns_rr_list_push_rr(out, ldns_rr_clone(ldns_rr_list_rr(set, i)));
	for (size_t i = 0; i < ldns_rr_list_rr_count(sigs); i++)
		ldns_rr_list_push_rr(out, ldns_rr_list_rr(sigs, i));
	ldns_rr_list_free(sigs);
	/* k is not the list's to free (and ldns's pop frees the array when
	 * it empties it, which list_free then frees again). */
	ldns_key_list_set_key_count(keys, 0);
	ldns_key_list_free(keys);
}

/* The chain format: version, count, RRs in wire form. */
static inline uint8_t *test_encode_chain(const ldns_rr_list *l, size_t *len)
{
	ldns_buffer *b = ldns_buffer_new(4096);
	uint8_t *out;

	ldns_buffer_write_u8(b, HM_DNS_CHAIN_VERSION);
	ldns_buffer_write_u16(b, (uint16_t)ldns_rr_list_rr_count(l));
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
		ldns_rr2buffer_wire(b, ldns_rr_list_rr(l, i), LDNS_SECTION_ANSWER);
	*len = ldns_buffer_position(b);
	out = malloc(*len);
	memcpy(out, ldns_buffer_begin(b), *len);
	ldns_buffer_free(b);
	return out;
}

/* A canon for (name, type) from a reply with rcode whose answer section
 * holds the records rrs (text, NULL-terminated; may be NULL) and then clones
 * of an (may be NULL).  NULL when hm_dns_canon_from_reply refuses it. */
static inline uint8_t *test_canon(const char *name, ldns_rr_type type, int rcode,
				  const char *const *rrs, const ldns_rr_list *an, bool secure,
				  size_t *len)
{
	ldns_pkt *pkt = NULL;
	uint8_t *wire = NULL, *canon;
	size_t n;
	struct hm_dns_query q = { .qtype = type, .qclass = LDNS_RR_CLASS_IN };
	ldns_rdf *d = ldns_dname_new_frm_str(name);

	memcpy(q.qname, ldns_rdf_data(d), ldns_rdf_size(d));
	q.qname_len = (uint8_t)ldns_rdf_size(d);
	ldns_rdf_deep_free(d);
	ldns_pkt_query_new_frm_str(&pkt, name, type, LDNS_RR_CLASS_IN, 0);
	ldns_pkt_set_qr(pkt, true);
	ldns_pkt_set_rcode(pkt, (uint8_t)rcode);
	for (; rrs && *rrs; rrs++)
		ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, test_rr(*rrs));
	for (size_t i = 0; an && i < ldns_rr_list_rr_count(an); i++)
		ldns_pkt_push_rr(pkt, LDNS_SECTION_ANSWER, ldns_rr_clone(ldns_rr_list_rr(an, i)));
	if (ldns_pkt2wire(&wire, pkt, &n) != LDNS_STATUS_OK)
		abort();
	canon = hm_dns_canon_from_reply(&q, wire, n, secure, len);
	free(wire);
	ldns_pkt_free(pkt);
	return canon;
}

#endif
