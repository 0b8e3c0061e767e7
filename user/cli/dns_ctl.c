// SPDX-License-Identifier: MIT
/* hmctl dns query / hmctl verify (see dns_ctl.h); the cluster is reached
 * through the client transport (user/client/transport.h). */
#include "cli/dns_ctl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <ldns/ldns.h>

#include "client/certificate.h"
#include "client/transport.h"
#include "common/clock.h"
#include "common/crypto.h"
#include "service/dns/dns_msg.h"
#include "service/dns/dns_service.h"

#define QUERY_TIMEOUT_S 10

static int parse_q(const char *name, const char *type, struct hm_dns_q *q)
{
	char abs[HM_DNS_NAME_MAX + 1];
	ldns_rdf *d;
	ldns_rr_type t = ldns_get_rr_type_by_name(type);
	int rc = -1;

	/* "www.example.org" means the absolute name, as dig reads it. */
	if (snprintf(abs, sizeof(abs), "%s%s", name,
		     *name && name[strlen(name) - 1] == '.' ? "" : ".") >= (int)sizeof(abs))
		return -1;
	d = ldns_dname_new_frm_str(abs);
	if (d && t && ldns_dname_absolute(d))
		rc = hm_dns_q_from_name(q, ldns_rdf_data(d), ldns_rdf_size(d), (uint16_t)t,
					LDNS_RR_CLASS_IN);
	ldns_rdf_deep_free(d);
	return rc;
}

/* Submit op; wait for the f+1 result and, with cert, for 2f+1 signed
 * replies over it.  0 when done. */
static int call(const struct hm_config *cfg, const uint8_t *op, size_t len, struct hm_transport *t,
		struct hm_cert *cert)
{
	char err[1024];

	if (hm_transport_open_node(t, cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "hmctl: %s\n", err);
		return -1;
	}
	switch (hm_transport_call(t, op, len, hm_mono_us() + QUERY_TIMEOUT_S * 1000000ull, cert)) {
	case HM_TRANSPORT_OK:
		return 0;
	case HM_TRANSPORT_REFUSED:
		fprintf(stderr, "hmctl: %s\n", hm_transport_refusal(t, err, sizeof(err)));
		return -1;
	case HM_TRANSPORT_NO_RESULT:
	case HM_TRANSPORT_NO_CERT:
		fprintf(stderr, "hmctl: no %s within %d s\n",
			t->done ? "2f+1 matching replies with batch proofs" : "result from f+1 replicas",
			QUERY_TIMEOUT_S);
		return -1;
	default:
		fprintf(stderr, "hmctl: cannot send the request\n");
		return -1;
	}
}

static void print_hex(FILE *f, const uint8_t *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%02x", b[i]);
}

static const char *rule_name(uint8_t r)
{
	return r == HM_DNS_RULE_DNSSEC ? "dnssec" : r == HM_DNS_RULE_OBSERVED ? "observed" : "fail";
}

static void print_entry(FILE *f, const struct hm_dns_entry *e)
{
	ldns_rdf *d = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, e->q.qname_len, e->q.qname);
	char *name = d ? ldns_rdf2str(d) : NULL;
	ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, e->rcode);

	fprintf(f, "%s type %u: %s (rule %s", name ? name : "?", e->q.qtype, rc ? rc->name : "?",
		rule_name(e->rule));
	if (e->rule == HM_DNS_RULE_FAIL)
		fprintf(f, ", EDE %u", e->ede);
	fprintf(f, "), decided at %lld, expires %lld, ttl %u\ndigest ", (long long)e->t,
		(long long)e->expiry, e->ttl);
	print_hex(f, e->digest, HM_DIGEST_LEN);
	fputc('\n', f);
	if (e->canon) {
		char *text = hm_dns_canon_to_text(e->canon, e->canon_len);

		fputs(text ? text : "", f);
		free(text);
	}
	free(name);
	ldns_rdf_deep_free(d);
}

int hm_dns_ctl_certify(const struct hm_config *cfg, const char *name, const char *type,
		       struct hm_transport *t, struct hm_dns_entry *e)
{
	struct hm_dns_q q;
	uint8_t op[300];
	size_t len;

	if (parse_q(name, type, &q) < 0) {
		fprintf(stderr, "hmctl: %s %s: not a domain name and a record type\n", name, type);
		return 2;
	}
	len = hm_dns_certify_encode(&q, op, sizeof(op));
	if (call(cfg, op, len, t, NULL) < 0)
		return 1;
	if (t->core.result_len < 1 || t->core.result[0] == HM_DNS_R_NOT_DECIDED)
		return 3;
	if (t->core.result[0] != HM_DNS_R_DECIDED ||
	    hm_dns_entry_decode(t->core.result + 1, t->core.result_len - 1, e) < 0 ||
	    hm_dns_certify_encode(&e->q, op, sizeof(op)) != len) {
		fprintf(stderr, "hmctl: a malformed result\n");
		return 1;
	}
	return 0;
}

void hm_dns_ctl_print_entry(FILE *f, const struct hm_dns_entry *e)
{
	print_entry(f, e);
}

int hm_dns_ctl_query(const struct hm_config *cfg, int argc, char **argv)
{
	bool want_cert = argc == 5 && strcmp(argv[4], "--cert") == 0;
	struct hm_transport t = { 0 };
	struct hm_cert cert = { 0 };
	struct hm_dns_entry e;
	struct hm_dns_q q;
	uint8_t op[300];
	size_t len;
	int rc = 1;

	if ((argc != 4 && !want_cert) || strcmp(argv[1], "query") != 0) {
		fprintf(stderr, "usage: hmctl dns query NAME TYPE [--cert]\n");
		return 2;
	}
	if (parse_q(argv[2], argv[3], &q) < 0) {
		fprintf(stderr, "hmctl: %s %s: not a domain name and a record type\n", argv[2], argv[3]);
		return 2;
	}
	len = hm_dns_certify_encode(&q, op, sizeof(op));
	if (call(cfg, op, len, &t, want_cert ? &cert : NULL) < 0)
		goto out;
	if (t.core.result_len < 1 || t.core.result[0] == HM_DNS_R_NOT_DECIDED) {
		printf("not decided\n");
		rc = 3;
		goto out;
	}
	if (t.core.result[0] != HM_DNS_R_DECIDED ||
	    hm_dns_entry_decode(t.core.result + 1, t.core.result_len - 1, &e) < 0) {
		fprintf(stderr, "hmctl: a malformed result\n");
		goto out;
	}
	if (want_cert) {
		json_t *j = hm_cert_to_json(&cert, cfg);

		if (!j)
			goto out;
		json_dumpf(j, stdout, JSON_INDENT(2));
		putchar('\n');
		json_decref(j);
		print_entry(stderr, &e);
	} else {
		print_entry(stdout, &e);
	}
	rc = 0;
out:
	if (want_cert)
		hm_cert_free(&cert);
	hm_transport_close(&t);
	return rc;
}

/* The DNS part of a certificate: a CERTIFY op, a DECIDED result for its
 * question, the canon matching its digest, and (unless at < 0) that the
 * answer had not expired at time at: a certificate proves what the cluster
 * decided, and an expired one must not pass for a current answer. */
static int verify_dns(const uint8_t *op, size_t op_len, const uint8_t *res, size_t res_len,
		      int64_t at)
{
	struct hm_dns_entry e;
	uint8_t want[300];

	if (res_len < 1 || res[0] != HM_DNS_R_DECIDED ||
	    hm_dns_entry_decode(res + 1, res_len - 1, &e) < 0) {
		fprintf(stderr, "certificate REFUSED: the result is not a decided DNS entry whose "
				"canon matches its digest\n");
		return 1;
	}
	if (hm_dns_certify_encode(&e.q, want, sizeof(want)) != op_len || memcmp(want, op, op_len)) {
		fprintf(stderr, "certificate REFUSED: the entry answers another question than the op\n");
		return 1;
	}
	if (at >= 0 && at >= e.expiry) {
		fprintf(stderr, "certificate REFUSED: the answer expired at %lld (checked at %lld; "
				"--allow-expired checks the signatures and the answer only)\n",
			(long long)e.expiry, (long long)at);
		return 1;
	}
	printf("certificate OK: ");
	print_entry(stdout, &e);
	return 0;
}

/* verify's options after CERTFILE: --now UNIX_SECONDS (judge expiry at
 * that time, e.g. when an answer was served), --allow-expired.  Returns
 * the time to judge at (-1: do not), or -2 on a bad option. */
static int64_t verify_time(int argc, char **argv)
{
	int64_t at = (int64_t)(hm_wall_us() / 1000000);

	for (int i = 2; i < argc; i++) {
		char *end;

		if (strcmp(argv[i], "--allow-expired") == 0) {
			at = -1;
		} else if (strcmp(argv[i], "--now") == 0 && i + 1 < argc) {
			long long v = strtoll(argv[++i], &end, 10);

			if (*end || v < 0 || end == argv[i])
				return -2;
			at = v;
		} else {
			return -2;
		}
	}
	return at;
}

int hm_ctl_verify(const struct hm_config *cfg, int argc, char **argv)
{
	json_error_t jerr;
	json_t *j;
	uint8_t *op, *res;
	size_t op_len, res_len;
	char err[256];
	int rc;

	int64_t at = verify_time(argc, argv);

	if (argc < 2 || at == -2) {
		fprintf(stderr, "usage: hmctl verify CERTFILE [--now UNIX_SECONDS | --allow-expired]\n");
		return 2;
	}
	j = json_load_file(argv[1], 0, &jerr);
	if (!j) {
		fprintf(stderr, "certificate REFUSED: %s: %s\n", argv[1], jerr.text);
		return 1;
	}
	if (hm_cert_verify(j, cfg, &op, &op_len, &res, &res_len, err, sizeof(err)) < 0) {
		fprintf(stderr, "certificate REFUSED: %s\n", err);
		json_decref(j);
		return 1;
	}
	if (op_len && op[0] == HM_DNS_OP_CERTIFY) {
		rc = verify_dns(op, op_len, res, res_len, at);
	} else {
		printf("certificate OK: 2f+1 signatures over a result of op 0x%02x\n",
		       op_len ? op[0] : 0);
		rc = 0;
	}
	free(op);
	free(res);
	json_decref(j);
	return rc;
}
