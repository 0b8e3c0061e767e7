/* SPDX-License-Identifier: MIT */
/*
 * DANE TLSA matching (RFC 6698, acronyms of RFC 7218): does a certificate
 * chain match one of the records of a TLSA RRset?  A pure function of the
 * RDATA and the chain, so every replica and every client computes the same
 * result; the RRset itself comes from the cluster's agreed DNS answer.
 *
 *   usage     0 PKIX-TA  1 PKIX-EE  2 DANE-TA  3 DANE-EE
 *   selector  0 Cert (full DER)     1 SPKI (DER SubjectPublicKeyInfo)
 *   matching  0 Full (exact)        1 SHA2-256        2 SHA2-512
 *
 * EE usages (1, 3) are matched against the leaf (chain[0]) only, TA usages
 * (0, 2) against the certificates above it (chain[1..]).  Usages 0 and 1
 * also demand PKIX validation of the chain: hm_tlsa_match reports the
 * matching record's usage and the caller requires that separately (hmctl
 * takes it from the agreed CT verdict).  Records with an unknown usage,
 * selector or matching type are unusable and skipped (RFC 6698 4.1).
 */
#ifndef HM_TLSA_H
#define HM_TLSA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/x509.h>

enum { HM_TLSA_PKIX_TA = 0, HM_TLSA_PKIX_EE = 1, HM_TLSA_DANE_TA = 2, HM_TLSA_DANE_EE = 3 };
enum { HM_TLSA_SEL_CERT = 0, HM_TLSA_SEL_SPKI = 1 };
enum { HM_TLSA_MT_FULL = 0, HM_TLSA_MT_SHA256 = 1, HM_TLSA_MT_SHA512 = 2 };

struct hm_tlsa_rr {
	uint8_t usage, selector, mtype;
	const uint8_t *data; /* points into the RDATA given to hm_tlsa_parse */
	size_t len;
};

/* Parse one TLSA RDATA.  -1 if it is malformed: shorter than 4 bytes (three
 * fields and at least one byte of data), or a digest length that does not
 * fit a known matching type (32 for SHA2-256, 64 for SHA2-512). */
int hm_tlsa_parse(const uint8_t *rdata, size_t len, struct hm_tlsa_rr *out);

/* Whether rr is one this implementation can use (known usage, selector and
 * matching type). */
bool hm_tlsa_usable(const struct hm_tlsa_rr *rr);

struct hm_tlsa_result {
	int record; /* index into rrs of the first matching record, -1 none */
	int depth;  /* chain position it matched, -1 none */
	int usage;  /* that record's usage, -1 none */
	unsigned unusable, malformed; /* records skipped, by reason */
};

/* Match chain[0..nchain) (leaf first) against the n records (raw RDATA each).
 * Returns 1 on a match, 0 on none, -1 on an internal error (encoding or
 * digest failure); res is filled in every case. */
int hm_tlsa_match(const uint8_t *const *rdata, const size_t *rdlen, size_t n,
		  X509 *const *chain, size_t nchain, struct hm_tlsa_result *res);

const char *hm_tlsa_usage_name(int usage);

#endif /* HM_TLSA_H */
