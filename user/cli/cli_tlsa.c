// SPDX-License-Identifier: MIT
/* hmctl cert check --tlsa (see cli_tlsa.h): the front ends are asked over
 * plain DNS; the decided entry comes through hm_dns_ctl_certify and the
 * client transport. */
#include "cli/cli_tlsa.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <openssl/pem.h>

#include "client/transport.h"
#include "cli/dns_ctl.h"
#include "service/dns/dns_msg.h"
#include "service/dns/dns_service.h"
#include "service/dns/tlsa.h"

#define CHAIN_MAX 16
#define TLSA_MAX 64
#define FRONT_END_TIMEOUT_MS 10000
#define DECIDED_RETRIES 20 /* CERTIFY polls, 100 ms apart */

/* Replica i's DNS front end: listen_address, or its member address, at
 * dns.listen_port.  0, or -1 when it has none. */
static int front_end_addr(const struct hm_config *cfg, uint32_t i, struct sockaddr_storage *ss,
			  socklen_t *len)
{
	const char *a = cfg->dns.listen_address;

	if (!cfg->dns.enabled || !cfg->dns.listen)
		return -1;
	*ss = cfg->members[i].addr;
	*len = cfg->members[i].addr_len;
	if (a[0]) {
		struct sockaddr_in *v4 = (struct sockaddr_in *)ss;
		struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)ss;

		memset(ss, 0, sizeof(*ss));
		if (inet_pton(AF_INET, a, &v4->sin_addr) == 1)
			v4->sin_family = AF_INET, *len = sizeof(*v4);
		else if (inet_pton(AF_INET6, a, &v6->sin6_addr) == 1)
			v6->sin6_family = AF_INET6, *len = sizeof(*v6);
		else
			return -1;
	}
	if (ss->ss_family == AF_INET)
		((struct sockaddr_in *)ss)->sin_port = htons(cfg->dns.listen_port);
	else
		((struct sockaddr_in6 *)ss)->sin6_port = htons(cfg->dns.listen_port);
	return 0;
}

/* Ask every replica's DNS front end for (name, TLSA) with DO set, and wait
 * for the first reply: the front end answers once the cluster decided, so
 * afterwards CERTIFY finds the entry.  A CERTIFY alone does not open a
 * lookup (docs/dns.md).  Which replica answers, or what, does not matter:
 * only the certified entry is used. */
static void ask_front_ends(const struct hm_config *cfg, const char *name)
{
	char abs[HM_DNS_NAME_MAX + 1];
	ldns_pkt *q = NULL;
	uint8_t *wire = NULL;
	size_t wire_len = 0;
	int fd = -1, sent = 0;

	snprintf(abs, sizeof(abs), "%s%s", name, *name && name[strlen(name) - 1] == '.' ? "" : ".");
	if (ldns_pkt_query_new_frm_str(&q, abs, LDNS_RR_TYPE_TLSA, LDNS_RR_CLASS_IN, LDNS_RD) !=
		    LDNS_STATUS_OK ||
	    (ldns_pkt_set_id(q, (uint16_t)random()), ldns_pkt_set_edns_do(q, true),
	     ldns_pkt_set_edns_udp_size(q, 1232), ldns_pkt2wire(&wire, q, &wire_len)) !=
		    LDNS_STATUS_OK)
		goto out;
	fd = socket(cfg->members[0].addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	for (uint32_t i = 0; fd >= 0 && i < cfg->n_members; i++) {
		struct sockaddr_storage ss;
		socklen_t len;

		if (front_end_addr(cfg, i, &ss, &len) == 0 &&
		    sendto(fd, wire, wire_len, 0, (struct sockaddr *)&ss, len) > 0)
			sent++;
	}
	if (fd >= 0 && !sent)
		fprintf(stderr, "hmctl: no DNS front end to ask (dns: section, listen_port); "
				"using what the cluster decided already\n");
	if (fd >= 0 && sent) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, FRONT_END_TIMEOUT_MS) <= 0)
			fprintf(stderr, "hmctl: no DNS front end answered %s TLSA\n", name);
	}
out:
	if (fd >= 0)
		close(fd);
	free(wire);
	ldns_pkt_free(q);
}

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
	struct hm_transport t = { 0 };
	struct hm_dns_entry e;
	X509 *chain[CHAIN_MAX];
	size_t nchain = load_chain(pem, pem_len, chain, CHAIN_MAX);
	int rc;

	if (!nchain) {
		fprintf(stderr, "hmctl: no certificate in the chain\n");
		return 1;
	}
	ask_front_ends(cfg, name);
	/* The front end's reply can overtake the execution on the replicas
	 * that answer CERTIFY: poll a little. */
	for (int i = 0; i < DECIDED_RETRIES; i++) {
		rc = hm_dns_ctl_certify(cfg, name, "TLSA", &t, &e);
		if (rc != 3)
			break;
		hm_transport_close(&t);
		nanosleep(&(struct timespec){ .tv_nsec = 100 * 1000 * 1000 }, NULL);
	}
	if (rc == 3)
		fprintf(stderr, "hmctl: %s TLSA: not decided by the cluster\n", name);
	if (rc == 0) {
		printf("tlsa: ");
		hm_dns_ctl_print_entry(stdout, &e);
		rc = require_secure(&e, name) < 0 ? 1 : match_and_print(&e, chain, nchain, pkix_ok);
	} else {
		rc = 1;
	}
	hm_transport_close(&t);
	for (size_t i = 0; i < nchain; i++)
		X509_free(chain[i]);
	return rc;
}
