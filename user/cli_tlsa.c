// SPDX-License-Identifier: MIT
/* hmctl cert check --tlsa (see cli_tlsa.h). */
#include "cli_tlsa.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>
#include <openssl/pem.h>

#include "client.h"
#include "dns_ctl.h"
#include "dns_msg.h"
#include "dns_service.h"
#include "tlsa.h"

#define CHAIN_MAX 16
#define TLSA_MAX 64

/* Up to max certificates of a PEM bundle, leaf first.  Returns the count. */
static size_t load_chain(const char *pem, size_t len, X509 **out, size_t max)
{
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	size_t n = 0;

	while (b && n < max && (out[n] = PEM_read_bio_X509(b, NULL, NULL, NULL)))
		n++;
	BIO_free(b);
	return n;
}

/* The raw RDATA of each TLSA record of the answer section: the fields of the
 * ldns record concatenated (usage, selector, matching type, data). */
static size_t tlsa_rdata(ldns_rr_list *answer, uint8_t **rd, size_t *len, size_t max)
{
	size_t n = 0;

	for (size_t i = 0; i < ldns_rr_list_rr_count(answer) && n < max; i++) {
		ldns_rr *rr = ldns_rr_list_rr(answer, i);
		size_t total = 0, off = 0;

		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_TLSA)
			continue;
		for (size_t k = 0; k < ldns_rr_rd_count(rr); k++)
			total += ldns_rdf_size(ldns_rr_rdf(rr, k));
		if (!(rd[n] = malloc(total ? total : 1)))
			break;
		for (size_t k = 0; k < ldns_rr_rd_count(rr); k++) {
			memcpy(rd[n] + off, ldns_rdf_data(ldns_rr_rdf(rr, k)),
			       ldns_rdf_size(ldns_rr_rdf(rr, k)));
			off += ldns_rdf_size(ldns_rr_rdf(rr, k));
		}
		len[n++] = total;
	}
	return n;
}

/* 0 if e is a DNSSEC-secure positive answer, else -1 with the reason. */
static int require_secure(const struct hm_dns_entry *e, const char *name)
{
	struct hm_dns_canon_info info;

	if (e->rule == HM_DNS_RULE_FAIL || !e->canon) {
		fprintf(stderr, "hmctl: %s TLSA: the cluster decided a failure (EDE %u)\n", name,
			e->ede);
		return -1;
	}
	if (hm_dns_canon_info(e->canon, e->canon_len, &info) < 0) {
		fprintf(stderr, "hmctl: %s TLSA: a malformed canonical answer\n", name);
		return -1;
	}
	/* DANE needs DNSSEC (RFC 6698 4.1): an insecure TLSA answer is as
	 * good as none. */
	if (e->rule != HM_DNS_RULE_DNSSEC || !(info.flags & HM_DNS_CANON_SECURE)) {
		fprintf(stderr, "hmctl: %s TLSA: the agreed answer is not DNSSEC-secure\n", name);
		return -1;
	}
	if (info.rcode != HM_DNS_NOERROR) {
		fprintf(stderr, "hmctl: %s TLSA: the agreed answer has rcode %u, no records\n", name,
			info.rcode);
		return -1;
	}
	return 0;
}

static int match_and_print(const struct hm_dns_entry *e, X509 **chain, size_t nchain,
			   bool pkix_ok)
{
	ldns_rr_list *answer = NULL, *authority = NULL;
	uint8_t *rd[TLSA_MAX] = { 0 };
	size_t len[TLSA_MAX], n;
	struct hm_tlsa_result res;
	int m, rc = 1;

	if (hm_dns_canon_sections(e->canon, e->canon_len, &answer, &authority) < 0) {
		fprintf(stderr, "hmctl: the agreed answer does not parse\n");
		return 1;
	}
	n = tlsa_rdata(answer, rd, len, TLSA_MAX);
	m = hm_tlsa_match((const uint8_t *const *)rd, len, n, chain, nchain, &res);
	/* PKIX usages also need the chain to validate; without an ok CT
	 * verdict such a match does not count (RFC 6698 2.1.1). */
	if (m == 1 && !pkix_ok && (res.usage == HM_TLSA_PKIX_TA || res.usage == HM_TLSA_PKIX_EE))
		m = 0, printf("dane: record %d (%s) matched, but the chain is not PKIX-valid\n",
			      res.record, hm_tlsa_usage_name(res.usage));
	if (m < 0) {
		fprintf(stderr, "hmctl: cannot encode or digest the chain\n");
	} else if (m == 1) {
		printf("dane: match: record %d of %zu (usage %s, certificate %d of the chain)\n",
		       res.record, n, hm_tlsa_usage_name(res.usage), res.depth);
		rc = 0;
	} else {
		printf("dane: no match among %zu TLSA records (%u malformed, %u unusable)\n", n,
		       res.malformed, res.unusable);
		rc = 4;
	}
	for (size_t i = 0; i < n; i++)
		free(rd[i]);
	ldns_rr_list_deep_free(answer);
	ldns_rr_list_deep_free(authority);
	return rc;
}

int hm_cli_tlsa_check(const struct hm_config *cfg, const char *name, const char *pem,
		      size_t pem_len, bool pkix_ok)
{
	struct hm_client cl = { 0 };
	struct hm_dns_entry e;
	X509 *chain[CHAIN_MAX];
	size_t nchain = load_chain(pem, pem_len, chain, CHAIN_MAX);
	int rc;

	if (!nchain) {
		fprintf(stderr, "hmctl: no certificate in the chain\n");
		return 1;
	}
	rc = hm_dns_ctl_certify(cfg, name, "TLSA", &cl, &e);
	if (rc == 3)
		fprintf(stderr, "hmctl: %s TLSA: not decided by the cluster\n", name);
	if (rc == 0) {
		printf("tlsa: ");
		hm_dns_ctl_print_entry(stdout, &e);
		rc = require_secure(&e, name) < 0 ? 1 : match_and_print(&e, chain, nchain, pkix_ok);
	} else {
		rc = 1;
	}
	hm_client_free(&cl);
	for (size_t i = 0; i < nchain; i++)
		X509_free(chain[i]);
	return rc;
}
