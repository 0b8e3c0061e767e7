// SPDX-License-Identifier: MIT
/*
 * hmctl cert check / hmctl verify (see cli_ct.h).
 *
 * The client, not the replicas, talks to the CT logs: it asks the cluster
 * which STH it holds for each log (CT_LATEST, so the consistency proof it
 * fetches starts where the cluster's state is), fetches the evidence, and
 * submits CT_CHECK at its own clock's time.  Replies are collected here
 * rather than in hm_client_receive, because a certificate needs every
 * matching signed reply header, and 2f+1 of them.
 */
#include "common/clock.h"
#include "cli/cli_ct.h"
#include "cli/cli_tlsa.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "client/client.h"
#include "common/crypto.h"
#include "service/ct/ct.h"
#include "service/ct/ct_client.h"
#include "service/ct/ct_service.h"
#include "common/wire.h"
#include "common/log.h"

#define CERT_FORMAT "hypermesh-ct-certificate/1"
#define CHAIN_MAX_BYTES (1u << 20)
#define CALL_TIMEOUT_S 10
#define CERT_TIMEOUT_S 20     /* 2f+1 replies: wait for the slower replicas too */
#define LOG_TIMEOUT_MS 5000
#define STALE_RETRIES 3

struct reply_slot {
	bool have, checked;
	uint8_t hdr[HM_HDR_LEN];
	uint8_t digest[HM_DIGEST_LEN];
	uint64_t exec_seq;
	uint8_t result[HM_MAX_RESULT];
	size_t rlen;
};

struct ct_net {
	const struct hm_config *cfg;
	struct hm_keypair keys;
	struct hm_client core;    /* submit and retransmit; replies are ours */
	int fd;
	struct reply_slot slots[HM_MAX_REPLICAS];
	int winner;               /* the slot whose digest reached the quorum */
};

static int errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int errorf(const char *fmt, ...)
{
	va_list ap;

	fputs("hmctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

/* ---- the network side --------------------------------------------------- */

static void net_send(void *ctx, uint32_t to, const void *buf, size_t len)
{
	struct ct_net *c = ctx;
	const struct hm_member *m = &c->cfg->members[to];

	if (sendto(c->fd, buf, len, 0, (const struct sockaddr *)&m->addr, m->addr_len) < 0 &&
	    errno != EAGAIN)
		fprintf(stderr, "hmctl: sendto replica %u: %s\n", to, strerror(errno));
}

static int net_open(struct ct_net *c, const struct hm_config *cfg)
{
	char err[512];

	memset(c, 0, sizeof(*c));
	c->cfg = cfg;
	c->fd = -1;
	if (!cfg->has_node_id || !cfg->private_key_path[0])
		return errorf("%s: a client needs node.id and node.private_key", cfg->path);
	if (!hm_config_client(cfg, cfg->node_id))
		return errorf("%s: node.id %u is not in cluster.clients", cfg->path, cfg->node_id);
	if (hm_keypair_read(cfg->private_key_path, &c->keys, err, sizeof(err)) < 0)
		return errorf("%s", err);
	c->fd = socket(cfg->members[0].addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		return errorf("socket: %s", strerror(errno));
	if (hm_client_init(&c->core, cfg, cfg->node_id, &c->keys, hm_wall_us(), net_send, c) < 0)
		return errorf("client %u: bad keys in %s", cfg->node_id, cfg->path);
	return 0;
}

static void net_close(struct ct_net *c)
{
	hm_client_free(&c->core);
	if (c->fd >= 0)
		close(c->fd);
}

/* A reply to the outstanding request, authenticated by its link MAC (the
 * signature is checked only when it could complete a quorum). */
static void on_datagram(struct ct_net *c, const uint8_t *buf, size_t len)
{
	enum hm_drop_reason why;
	const uint8_t *result;
	struct reply_slot *s;
	uint32_t client;
	uint64_t exec_seq;
	size_t rlen;
	struct hm_msg m;

	if (hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why) < 0 || m.type != HM_MSG_REPLY ||
	    m.sender >= c->core.n)
		return;
	if (!hm_mac_verify(m.hdr, c->core.links[m.sender].rx) || !hm_msg_payload_ok(&m, &why) ||
	    hm_reply_parse(&m, &client, &exec_seq, &result, &rlen) < 0 || client != c->core.id ||
	    rlen > HM_MAX_RESULT)
		return;
	s = &c->slots[m.sender];
	if (m.seq != c->core.ts || s->have)
		return;
	s->have = true;
	memcpy(s->hdr, m.hdr, HM_HDR_LEN);
	memset(s->hdr + HM_OFF_MAC, 0, HM_MAC_LEN); /* per link, not part of a certificate */
	memcpy(s->digest, m.digest, HM_DIGEST_LEN);
	s->exec_seq = exec_seq;
	memcpy(s->result, result, rlen);
	s->rlen = rlen;
}

/* How many replies with slot `i`'s digest carry a valid signature. */
static uint32_t verified_matches(struct ct_net *c, int i)
{
	uint32_t count = 0;

	for (uint32_t j = 0; j < c->core.n; j++) {
		struct reply_slot *s = &c->slots[j];

		if (!s->have || memcmp(s->digest, c->slots[i].digest, HM_DIGEST_LEN) != 0)
			continue;
		if (!s->checked) {
			if (!hm_verify_header((const struct hm_hdr *)s->hdr, c->core.replica_keys[j])) {
				s->have = false;
				continue;
			}
			s->checked = true;
		}
		count++;
	}
	return count;
}

static bool quorum(struct ct_net *c, uint32_t need)
{
	for (uint32_t i = 0; i < c->core.n; i++) {
		if (c->slots[i].have && verified_matches(c, (int)i) >= need) {
			c->winner = (int)i;
			return true;
		}
	}
	return false;
}

/* Submit op and wait until `need` replicas sent matching signed replies. */
static int net_call(struct ct_net *c, const uint8_t *op, size_t len, uint32_t need, int timeout_s)
{
	uint64_t give_up = hm_mono_us() + (uint64_t)timeout_s * 1000000;
	uint8_t buf[HM_MAX_DATAGRAM];

	memset(c->slots, 0, sizeof(c->slots));
	c->core.busy = false; /* the previous call completed here, not in hm_client_receive */
	if (hm_client_submit(&c->core, op, len, hm_mono_us()) < 0)
		return errorf("the request (%zu bytes of op) does not fit max_message_size %u", len,
			      c->cfg->max_message_size);
	while (hm_mono_us() < give_up) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		ssize_t n;

		poll(&p, 1, 50);
		while ((n = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT)) > 0)
			on_datagram(c, buf, (size_t)n);
		if (quorum(c, need))
			return 0;
		hm_client_tick(&c->core, hm_mono_us());
	}
	return errorf("no %u matching signed replies within %d s (%u retransmissions)", need,
		      timeout_s, c->core.retransmits);
}

static const struct reply_slot *winner(const struct ct_net *c)
{
	return &c->slots[c->winner];
}

/* ---- evidence ----------------------------------------------------------- */

/* The tree size of the STH the cluster holds for this log (0: none). */
static int cluster_latest(struct ct_net *c, const uint8_t log_id[HM_CT_LOG_ID_LEN], uint64_t *size)
{
	uint8_t op[1 + HM_CT_LOG_ID_LEN];
	enum hm_ct_latest_status st;
	size_t len = hm_ct_op_latest(op, sizeof(op), log_id);

	if (net_call(c, op, len, c->core.f + 1, CALL_TIMEOUT_S))
		return -1;
	if (hm_ct_latest_decode(winner(c)->result, winner(c)->rlen, &st, size) < 0)
		return errorf("the cluster's answer to CT_LATEST is not one (no ct: section on the "
			      "replicas?)");
	if (st == HM_CT_LATEST_UNKNOWN)
		return errorf("the replicas do not know this log: is their ct: section the same?");
	return st == HM_CT_LATEST_BAD_OP ? -1 : 0;
}

/* Evidence from every configured log that holds this certificate; logs
 * whose SCT the certificate does not carry, or that do not answer, are
 * skipped (the verdict then says what is missing). */
static size_t gather_evidence(struct ct_net *c, struct hm_ct *ct, const char *pem, size_t pem_len,
			      struct hm_ct_evidence *ev)
{
	const struct hm_ct_config *cc = &c->cfg->ct;
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
	fprintf(out, "replicas: %u matching signed replies\n", replicas);
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

/* Every verified reply whose digest is the winner's, as certificate entries. */
static json_t *cert_json(struct ct_net *c, const uint8_t *op, size_t op_len,
			 const struct hm_ct_verdict *v)
{
	const struct reply_slot *w = winner(c);
	uint8_t op_digest[HM_DIGEST_LEN];
	json_t *replies = json_array();

	for (uint32_t i = 0; i < c->core.n; i++) {
		const struct reply_slot *s = &c->slots[i];

		if (!s->have || !s->checked || memcmp(s->digest, w->digest, HM_DIGEST_LEN) != 0)
			continue;
		json_array_append_new(replies, json_pack("{s:I, s:o, s:o}", "replica", (json_int_t)i,
							 "header", hex_json(s->hdr, HM_SIGNED_LEN),
							 "signature",
							 hex_json(s->hdr + HM_OFF_SIG, HM_SIG_LEN)));
	}
	hm_digest(op, op_len, op_digest);
	return json_pack("{s:s, s:{s:I, s:I}, s:o, s:I, s:I, s:I, s:o, s:o, s:o}", "format",
			 CERT_FORMAT, "cluster", "n", (json_int_t)c->core.n, "f", (json_int_t)c->core.f,
			 "op_digest", hex_json(op_digest, HM_DIGEST_LEN), "client",
			 (json_int_t)c->core.id, "request", (json_int_t)c->core.ts, "exec_seq",
			 (json_int_t)w->exec_seq, "verdict", hex_json(w->result, w->rlen), "summary",
			 summary_json(v), "replies", replies);
}

static int write_cert(json_t *cert, const char *path)
{
	if (!cert)
		return errorf("out of memory");
	if (!path) {
		json_dumpf(cert, stdout, JSON_INDENT(2));
		putchar('\n');
		return 0;
	}
	if (json_dump_file(cert, path, JSON_INDENT(2)) < 0)
		return errorf("%s: cannot write the certificate", path);
	return 0;
}

/* ---- hmctl cert check --------------------------------------------------- */

static int read_file(const char *path, uint8_t **buf, size_t *len)
{
	FILE *f = fopen(path, "rb");
	size_t cap = CHAIN_MAX_BYTES + 1;

	if (!f)
		return errorf("%s: %s", path, strerror(errno));
	*buf = malloc(cap);
	if (!*buf) {
		fclose(f);
		return errorf("out of memory");
	}
	*len = fread(*buf, 1, cap, f);
	fclose(f);
	if (*len == 0 || *len > CHAIN_MAX_BYTES) {
		free(*buf);
		return errorf("%s: empty, or larger than %u bytes", path, CHAIN_MAX_BYTES);
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
	uint32_t need = cert ? 2 * c->core.f + 1 : c->core.f + 1;
	size_t n_ev;
	int rc;

	if (!ev)
		return errorf("out of memory");
	n_ev = gather_evidence(c, ct, pem, pem_len, ev);
	*op_len = hm_ct_op_check(op, op_cap, (uint64_t)time(NULL), chain, chain_len, ev, n_ev);
	free(ev);
	if (!*op_len)
		return errorf("the chain and evidence do not fit in one operation");
	rc = net_call(c, op, *op_len, need, cert ? CERT_TIMEOUT_S : CALL_TIMEOUT_S);
	if (rc)
		return rc;
	if (hm_ct_verdict_decode(winner(c)->result, winner(c)->rlen, v) < 0)
		return errorf("the cluster's result is not a CT verdict (%zu bytes; no ct: section "
			      "on the replicas?)", winner(c)->rlen);
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
		errorf("%s: neither PEM nor DER certificates", a->chain);
		goto out;
	}
	if (!(ct = hm_ct_from_config(&cfg->ct, err, sizeof(err)))) {
		errorf("%s: %s", cfg->path, err);
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
	print_verdict(a->cert && !a->out ? stderr : stdout, &v, verified_matches(&c, c.winner));
	if (a->cert && write_cert(cert_json(&c, op, op_len, &v), a->out)) {
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
		errorf("usage: cert check CHAIN.pem [--cert] [--out FILE] [--tlsa NAME]");
		return 2;
	}
	if (!cfg->ct.enabled)
		return errorf("%s: no ct: section (trust store and logs)", cfg->path);
	return cert_check(cfg, &a);
}

/* ---- hmctl verify ------------------------------------------------------- */

/* A hex string of exactly len bytes. */
static int get_hex(json_t *obj, const char *key, uint8_t *out, size_t len)
{
	const char *s = json_string_value(json_object_get(obj, key));
	size_t got;

	if (!s || strlen(s) != 2 * len ||
	    sodium_hex2bin(out, len, s, strlen(s), NULL, &got, NULL) != 0 || got != len)
		return -1;
	return 0;
}

static int get_u64(json_t *obj, const char *key, uint64_t *out)
{
	json_t *j = json_object_get(obj, key);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(j);
	return 0;
}

/* One entry: a reply header signed by that replica over this payload. */
static int check_entry(const struct hm_config *cfg, json_t *e, size_t k, uint64_t request,
		       const uint8_t digest[HM_DIGEST_LEN], size_t plen, uint32_t *replica,
		       char *err, size_t errlen)
{
	struct hm_hdr hdr;
	uint8_t *h = (uint8_t *)&hdr;
	uint64_t id;

	memset(&hdr, 0, sizeof(hdr));
	if (get_u64(e, "replica", &id) < 0 || get_hex(e, "header", h, HM_SIGNED_LEN) < 0 ||
	    get_hex(e, "signature", h + HM_OFF_SIG, HM_SIG_LEN) < 0)
		return hm_set_err(err, errlen, "replies[%zu]: needs replica, header (%d bytes hex) and "
			      "signature (%d bytes hex)", k, HM_SIGNED_LEN, HM_SIG_LEN);
	if (id >= cfg->n_members)
		return hm_set_err(err, errlen, "replies[%zu]: replica %" PRIu64 " is not a member (0..%u)",
			      k, id, cfg->n_members - 1);
	if (hm_get_be32(h) != HM_MAGIC || h[4] != HM_VERSION || h[5] != HM_MSG_REPLY ||
	    hm_get_be32(h + HM_OFF_SENDER) != id || hm_get_be32(h + 12) != plen ||
	    hm_get_be64(h + HM_OFF_SEQ) != request)
		return hm_set_err(err, errlen, "replies[%zu]: not replica %" PRIu64 "'s reply to request "
			      "%" PRIu64 " of this size", k, id, request);
	if (memcmp(h + HM_OFF_DIGEST, digest, HM_DIGEST_LEN) != 0)
		return hm_set_err(err, errlen, "replies[%zu]: replica %" PRIu64 " replied with another "
			      "result", k, id);
	if (!hm_verify_header(&hdr, cfg->members[id].public_key))
		return hm_set_err(err, errlen, "replies[%zu]: the signature does not verify under replica "
			      "%" PRIu64 "'s key", k, id);
	*replica = (uint32_t)id;
	return 0;
}

int hm_ct_cert_verify(const struct hm_config *cfg, json_t *cert, char *err, size_t errlen)
{
	uint8_t verdict[HM_CT_VERDICT_MAX], payload[HM_REPLY_PREFIX_LEN + HM_CT_VERDICT_MAX];
	uint8_t digest[HM_DIGEST_LEN];
	const char *format = json_string_value(json_object_get(cert, "format"));
	const char *vhex = json_string_value(json_object_get(cert, "verdict")), *summary;
	json_t *replies = json_object_get(cert, "replies"), *e;
	uint64_t client, request, exec_seq;
	uint32_t need = 2 * cfg->max_faulty_nodes + 1, seen = 0;
	struct hm_ct_verdict v;
	size_t vlen, plen, k;

	if (!format || strcmp(format, CERT_FORMAT) != 0)
		return hm_set_err(err, errlen, "not a CT verdict certificate (format is not \"%s\")",
			      CERT_FORMAT);
	if (get_u64(cert, "client", &client) < 0 || client > UINT32_MAX ||
	    get_u64(cert, "request", &request) < 0 || get_u64(cert, "exec_seq", &exec_seq) < 0 ||
	    !vhex || !json_is_array(replies))
		return hm_set_err(err, errlen, "needs client, request, exec_seq, verdict and replies");
	if (sodium_hex2bin(verdict, sizeof(verdict), vhex, strlen(vhex), NULL, &vlen, NULL) != 0 ||
	    2 * vlen != strlen(vhex) || hm_ct_verdict_decode(verdict, vlen, &v) < 0)
		return hm_set_err(err, errlen, "verdict: not a canonical CT verdict encoding");
	/* The summary is for readers; it must not say something else. */
	summary = json_string_value(json_object_get(json_object_get(cert, "summary"), "result"));
	if (summary && strcmp(summary, hm_ct_result_name(v.result)) != 0)
		return hm_set_err(err, errlen, "summary.result \"%s\" is not the signed verdict's \"%s\"",
			      summary, hm_ct_result_name(v.result));
	/* What every replica signed: H(client, exec_seq, verdict) in its header. */
	plen = hm_reply_payload(payload, sizeof(payload), (uint32_t)client, exec_seq, verdict, vlen);
	hm_digest(payload, plen, digest);
	json_array_foreach(replies, k, e) {
		uint32_t id = 0;

		if (check_entry(cfg, e, k, request, digest, plen, &id, err, errlen) < 0)
			return -1;
		if (seen & (1u << id))
			return hm_set_err(err, errlen, "replies[%zu]: replica %u appears twice", k, id);
		seen |= 1u << id;
	}
	if ((uint32_t)__builtin_popcount(seen) < need)
		return hm_set_err(err, errlen, "%d distinct replicas signed, 2f+1 = %u are needed",
			      __builtin_popcount(seen), need);
	return 0;
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
		errorf("usage: verify CERTFILE");
		return 2;
	}
	cert = json_load_file(argv[1], 0, &jerr);
	if (!cert && jerr.line < 1)
		return errorf("%s", jerr.text); /* could not read it: jansson names the file */
	if (!cert)
		return errorf("%s:%d: not JSON: %s", argv[1], jerr.line, jerr.text);
	rc = hm_ct_cert_verify(cfg, cert, err, sizeof(err));
	if (rc < 0) {
		json_decref(cert);
		return errorf("%s: refused: %s", argv[1], err);
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
