// SPDX-License-Identifier: MIT
/*
 * hmctl cert check / hmctl verify (see cli_ct.h).
 *
 * The client, not the replicas, talks to the CT logs: it asks the cluster
 * which STH it holds for each log (CT_LATEST, so the consistency proof it
 * fetches starts where the cluster's state is), fetches the evidence, and
 * submits CT_CHECK at its own clock's time.  The cluster is reached through
 * the client transport (user/client/transport.h); with --cert it also
 * collects 2f+1 replies with batch proofs, which user/client/certificate.c writes
 * and checks in its CT form (HM_CERT_CT).  What is CT's own stays here: the
 * evidence, the verdict's decoding and summary, the output.  Error lines go
 * out through hm_cli_error() (cli_msg.h), as hmctl.c's do.
 */
#include "common/clock.h"
#include "cli/cli_ct.h"
#include "cli/cli_msg.h"
#include "cli/cli_tlsa.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "client/certificate.h"
#include "client/transport.h"
#include "common/crypto.h"
#include "service/ct/ct.h"
#include "service/ct/ct_client.h"
#include "service/ct/ct_service.h"
#include "common/wire.h"
#include "common/log.h"

#define CHAIN_MAX_BYTES (1u << 20)
#define CALL_TIMEOUT_S 10
#define CERT_TIMEOUT_S 20     /* 2f+1 replies: wait for the slower replicas too */
#define LOG_TIMEOUT_MS 5000
#define STALE_RETRIES 3

struct ct_net {
	struct hm_transport t;
	struct hm_cert cert;      /* --cert: the last call's 2f+1 signed replies */
	bool certified;           /* the last call collected cert */
};

/* ---- the network side --------------------------------------------------- */

static int net_open(struct ct_net *c, const struct hm_config *cfg)
{
	char err[1024];

	memset(c, 0, sizeof(*c));
	if (hm_transport_open_node(&c->t, cfg, err, sizeof(err)) < 0)
		return hm_cli_error("%s", err);
	return 0;
}

static void net_close(struct ct_net *c)
{
	hm_cert_free(&c->cert);
	hm_transport_close(&c->t);
}

/* Submit op and wait for f+1 matching replies, and with cert for
 * 2f+1 of them in c->cert.  The result is in c->t.core.result. */
static int net_call(struct ct_net *c, const uint8_t *op, size_t len, bool cert, int timeout_s)
{
	uint64_t give_up = hm_mono_us() + (uint64_t)timeout_s * 1000000;
	uint32_t need = cert ? 2 * c->t.core.f + 1 : c->t.core.f + 1;

	hm_cert_free(&c->cert);
	c->certified = false;
	switch (hm_transport_call(&c->t, op, len, give_up, cert ? &c->cert : NULL)) {
	case HM_TRANSPORT_OK:
		c->certified = cert;
		return 0;
	case HM_TRANSPORT_TOO_LARGE:
		return hm_cli_error("the request (%zu bytes of op) does not fit "
				    "max_message_size %u", len, c->t.cfg->max_message_size);
	case HM_TRANSPORT_NO_MEMORY:
		return hm_cli_error("out of memory");
	case HM_TRANSPORT_REFUSED: {
		char why[256];

		return hm_cli_error("%s", hm_transport_refusal(&c->t, why, sizeof(why)));
	}
	default:
		return hm_cli_error("no %u matching replies within %d s "
				    "(%u retransmissions)", need, timeout_s, c->t.core.retransmits);
	}
}

/* How many matching replies the last call's result stands on. */
static uint32_t replies_behind(const struct ct_net *c)
{
	return c->certified ? hm_cert_signers(&c->cert, c->t.cfg) : c->t.core.f + 1;
}

/* ---- evidence ----------------------------------------------------------- */

/* The tree size of the STH the cluster holds for this log (0: none). */
static int cluster_latest(struct ct_net *c, const uint8_t log_id[HM_CT_LOG_ID_LEN], uint64_t *size)
{
	uint8_t op[1 + HM_CT_LOG_ID_LEN];
	enum hm_ct_latest_status st;
	size_t len = hm_ct_op_latest(op, sizeof(op), log_id);

	if (net_call(c, op, len, false, CALL_TIMEOUT_S))
		return -1;
	if (hm_ct_latest_decode(c->t.core.result, c->t.core.result_len, &st, size) < 0)
		return hm_cli_error("the cluster's answer to CT_LATEST is not one (no ct: section "
				    "on the replicas?)");
	if (st == HM_CT_LATEST_UNKNOWN)
		return hm_cli_error("the replicas do not know this log: is their ct: section the "
				    "same?");
	return st == HM_CT_LATEST_BAD_OP ? -1 : 0;
}

/* Evidence from every configured log that holds this certificate; logs
 * whose SCT the certificate does not carry, or that do not answer, are
 * skipped (the verdict then says what is missing). */
static size_t gather_evidence(struct ct_net *c, struct hm_ct *ct, const char *pem, size_t pem_len,
			      struct hm_ct_evidence *ev)
{
	const struct hm_ct_config *cc = &c->t.cfg->ct;
	size_t n = 0;

	for (uint32_t i = 0; i < cc->n_logs; i++) {
		uint8_t id[HM_CT_LOG_ID_LEN];
		hm_merkle_hash leaf;
		struct hm_ct_client *log;
		uint64_t from;
		char err[512];

		if (hm_ct_log_id(ct, i, id) < 0 ||
		    hm_ct_leaf_hash(pem, pem_len, id, leaf, err, sizeof(err)) < 0)
			continue; /* no SCT of this log: nothing to ask it */
		if (cluster_latest(c, id, &from) < 0)
			continue;
		log = hm_ct_client_new(cc->logs[i].url, LOG_TIMEOUT_MS);
		if (!log || hm_ct_fetch_evidence(log, id, leaf, from, &ev[n], err, sizeof(err)) < 0)
			fprintf(stderr, "hmctl: log %s (%s): %s\n", cc->logs[i].name, cc->logs[i].url,
				log ? err : "out of memory");
		else
			n++;
		hm_ct_client_free(log);
	}
	return n;
}

/* ---- output ------------------------------------------------------------- */

static void hex(const uint8_t *p, size_t len, char *out)
{
	sodium_bin2hex(out, 2 * len + 1, p, len);
}

static void print_verdict(FILE *out, const struct hm_ct_verdict *v, uint32_t replicas)
{
	char h[2 * 32 + 1];

	fprintf(out, "verdict: %s\n", hm_ct_result_name(v->result));
	fprintf(out, "reason: %s\n", v->reason[0] ? v->reason : "-");
	fprintf(out, "time: %" PRIu64 "\n", v->time);
	hex(v->cert_digest, sizeof(v->cert_digest), h);
	fprintf(out, "certificate_sha256: %s\n", h);
	if (v->tree_size) {
		hex(v->log_id, sizeof(v->log_id), h);
		fprintf(out, "log_id: %s\ntree_size: %" PRIu64 "\nleaf_index: %" PRIu64 "\n", h,
			v->tree_size, v->leaf_index);
	}
	if (v->result == HM_CT_CHAIN_INVALID)
		fprintf(out, "x509_error: %d\n", v->x509_error);
	fprintf(out, "replicas: %u matching replies\n", replicas);
}

static json_t *hex_json(const uint8_t *p, size_t len)
{
	char *h = malloc(2 * len + 1);
	json_t *j;

	if (!h)
		return NULL;
	hex(p, len, h);
	j = json_string(h);
	free(h);
	return j;
}

static json_t *summary_json(const struct hm_ct_verdict *v)
{
	return json_pack("{s:s, s:s, s:I, s:o, s:o, s:I, s:I}", "result",
			 hm_ct_result_name(v->result), "reason", v->reason, "time", (json_int_t)v->time,
			 "certificate_sha256", hex_json(v->cert_digest, 32), "log_id",
			 hex_json(v->log_id, HM_CT_LOG_ID_LEN), "tree_size", (json_int_t)v->tree_size,
			 "leaf_index", (json_int_t)v->leaf_index);
}

static int write_cert(json_t *cert, const char *path)
{
	if (!cert)
		return hm_cli_error("out of memory");
	if (!path) {
		json_dumpf(cert, stdout, JSON_INDENT(2));
		putchar('\n');
		return 0;
	}
	if (json_dump_file(cert, path, JSON_INDENT(2)) < 0)
		return hm_cli_error("%s: cannot write the certificate", path);
	return 0;
}

/* ---- hmctl cert check --------------------------------------------------- */

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = CHAIN_MAX_BYTES + 1;

	if (!f)
		return hm_cli_error("%s: %s", path, strerror(errno));
	*buf = malloc(cap);
	if (!*buf) {
		fclose(f);
		return hm_cli_error("out of memory");
	}
	*len = fread(*buf, 1, cap, f);
	fclose(f);
	if (*len == 0 || *len > CHAIN_MAX_BYTES) {
		free(*buf);
		return hm_cli_error("%s: empty, or larger than %u bytes", path, CHAIN_MAX_BYTES);
	}
	return 0;
}

struct check_args {
	const char *chain, *out, *tlsa;
	bool cert;
};

static int parse_check_args(int argc, char **argv, struct check_args *a)
{
	memset(a, 0, sizeof(*a));
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--cert") == 0)
			a->cert = true;
		else if (strcmp(argv[i], "--out") == 0 && i + 1 < argc)
			a->out = argv[++i];
		else if (strcmp(argv[i], "--tlsa") == 0 && i + 1 < argc)
			a->tlsa = argv[++i];
		else if (argv[i][0] != '-' && !a->chain)
			a->chain = argv[i];
		else
			return -1;
	}
	return a->chain ? 0 : -1;
}

/* One CT_CHECK round: evidence, op, verdict.  Returns 0 with *v filled. */
static int check_round(struct ct_net *c, struct hm_ct *ct, const uint8_t *chain, size_t chain_len,
		       const char *pem, size_t pem_len, bool cert, uint8_t *op, size_t op_cap,
		       size_t *op_len, struct hm_ct_verdict *v)
{
	struct hm_ct_evidence *ev = calloc(HM_CT_CONFIG_MAX_LOGS, sizeof(*ev));
	size_t n_ev;
	int rc;

	if (!ev)
		return hm_cli_error("out of memory");
	n_ev = gather_evidence(c, ct, pem, pem_len, ev);
	*op_len = hm_ct_op_check(op, op_cap, (uint64_t)time(NULL), chain, chain_len, ev, n_ev);
	free(ev);
	if (!*op_len)
		return hm_cli_error("the chain and evidence do not fit in one operation");
	rc = net_call(c, op, *op_len, cert, cert ? CERT_TIMEOUT_S : CALL_TIMEOUT_S);
	if (rc)
		return rc;
	if (hm_ct_verdict_decode(c->t.core.result, c->t.core.result_len, v) < 0)
		return hm_cli_error("the cluster's result is not a CT verdict (%zu bytes; no ct: "
				    "section on the replicas?)", c->t.core.result_len);
	return 0;
}

static int cert_check(const struct hm_config *cfg, const struct check_args *a)
{
	size_t chain_len = 0, pem_len = 0, op_len = 0, op_cap = cfg->max_message_size;
	uint8_t *chain = NULL, *op = malloc(op_cap);
	struct hm_ct *ct = NULL;
	struct hm_ct_verdict v;
	struct ct_net c;
	char err[512], *pem = NULL;
	int rc = 1;

	if (!op || read_file(a->chain, &chain, &chain_len))
		goto out;
	if (!(pem = hm_ct_chain_pem(chain, chain_len, &pem_len))) {
		hm_cli_error("%s: neither PEM nor DER certificates", a->chain);
		goto out;
	}
	if (!(ct = hm_ct_from_config(&cfg->ct, err, sizeof(err)))) {
		hm_cli_error("%s: %s", cfg->path, err);
		goto out;
	}
	if (net_open(&c, cfg))
		goto out_net;
	/* stale-evidence: another check moved the cluster's STH between our
	 * CT_LATEST and our CT_CHECK; fetch again (docs/ct.md). */
	for (int attempt = 0; attempt < STALE_RETRIES; attempt++) {
		rc = check_round(&c, ct, chain, chain_len, pem, pem_len, a->cert, op, op_cap, &op_len,
				 &v);
		if (rc || v.result != HM_CT_STALE_EVIDENCE)
			break;
		fprintf(stderr, "hmctl: stale evidence (the cluster's STH moved meanwhile): fetching "
			"again\n");
	}
	if (rc)
		goto out_net;
	print_verdict(a->cert && !a->out ? stderr : stdout, &v, replies_behind(&c));
	if (a->cert && write_cert(hm_cert_to_json_as(&c.cert, cfg, HM_CERT_CT, summary_json(&v)),
				  a->out)) {
		rc = 1;
		goto out_net;
	}
	rc = v.result == HM_CT_OK ? 0 : 3;
	if (a->tlsa) {
		/* The DANE match against the cluster's agreed TLSA RRset
		 * (docs/ct.md): a miss or an error overrides an ok verdict. */
		int d = hm_cli_tlsa_check(cfg, a->tlsa, pem, pem_len, v.result == HM_CT_OK);

		if (d)
			rc = d;
	}
out_net:
	net_close(&c);
out:
	hm_ct_free(ct);
	free(pem);
	free(chain);
	free(op);
	return rc;
}

int hm_cli_cert(const struct hm_config *cfg, int argc, char **argv)
{
	struct check_args a;

	if (argc < 2 || strcmp(argv[1], "check") != 0 || parse_check_args(argc, argv, &a) < 0) {
		hm_cli_error("usage: cert check CHAIN.pem [--cert] [--out FILE] [--tlsa NAME]");
		return 2;
	}
	if (!cfg->ct.enabled)
		return hm_cli_error("%s: no ct: section (trust store and logs)", cfg->path);
	return cert_check(cfg, &a);
}

/* ---- hmctl verify ------------------------------------------------------- */

int hm_ct_cert_verify(const struct hm_config *cfg, json_t *cert, char *err, size_t errlen)
{
	const char *summary;
	struct hm_ct_verdict v;
	uint8_t *op, *verdict;
	size_t op_len, vlen;
	int rc = -1;

	/* The replies, signatures and 2f+1 quorum (user/client/certificate.c). */
	if (hm_cert_verify_as(cert, cfg, HM_CERT_CT, &op, &op_len, &verdict, &vlen, err, errlen) < 0)
		return -1;
	if (vlen > HM_CT_VERDICT_MAX || hm_ct_verdict_decode(verdict, vlen, &v) < 0) {
		hm_set_err(err, errlen, "verdict: not a canonical CT verdict encoding");
		goto out;
	}
	/* The summary is for readers; it must not say something else. */
	summary = json_string_value(json_object_get(json_object_get(cert, "summary"), "result"));
	if (summary && strcmp(summary, hm_ct_result_name(v.result)) != 0) {
		hm_set_err(err, errlen, "summary.result \"%s\" is not the signed verdict's \"%s\"",
			   summary, hm_ct_result_name(v.result));
		goto out;
	}
	rc = 0;
out:
	free(op);
	free(verdict);
	return rc;
}

int hm_cli_verify(const struct hm_config *cfg, int argc, char **argv)
{
	struct hm_ct_verdict v;
	uint8_t verdict[HM_CT_VERDICT_MAX];
	json_error_t jerr;
	char err[512];
	size_t vlen;
	json_t *cert;
	int rc;

	if (argc != 2) {
		hm_cli_error("usage: verify CERTFILE");
		return 2;
	}
	cert = json_load_file(argv[1], 0, &jerr);
	if (!cert && jerr.line < 1)
		/* could not read it: jansson names the file */
		return hm_cli_error("%s", jerr.text);
	if (!cert)
		return hm_cli_error("%s:%d: not JSON: %s", argv[1], jerr.line, jerr.text);
	rc = hm_ct_cert_verify(cfg, cert, err, sizeof(err));
	if (rc < 0) {
		json_decref(cert);
		return hm_cli_error("%s: refused: %s", argv[1], err);
	}
	sodium_hex2bin(verdict, sizeof(verdict), json_string_value(json_object_get(cert, "verdict")),
		       2 * HM_CT_VERDICT_MAX, NULL, &vlen, NULL);
	hm_ct_verdict_decode(verdict, vlen, &v);
	printf("certificate valid: %zu replicas of n=%u signed verdict %s\n",
	       json_array_size(json_object_get(cert, "replies")), cfg->n_members,
	       hm_ct_result_name(v.result));
	print_verdict(stdout, &v, (uint32_t)json_array_size(json_object_get(cert, "replies")));
	json_decref(cert);
	return 0;
}
