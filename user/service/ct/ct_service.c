// SPDX-License-Identifier: MIT
/* Certificate Transparency verdicts as a replicated service, and the verifier
 * the ct: configuration section describes (see ct_service.h). */
#include "service/ct/ct_service.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/buffer.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/crypto.h"
#include "common/wire.h"

struct ct_service {
	struct hm_ct *ct;
	uint32_t max_skew_s;
	hm_ct_clock_fn clock;
	void *clock_ctx;
};

/* ---- chains ------------------------------------------------------------- */

static bool looks_pem(const uint8_t *p, size_t len)
{
	static const char tag[] = "-----BEGIN ";

	/* text may precede the first certificate (openssl's "subject=" lines) */
	return memmem(p, len, tag, sizeof(tag) - 1) != NULL;
}

/* Concatenated DER certificates to PEM; every byte must belong to one. */
static char *der_chain_pem(const uint8_t *p, size_t len, size_t *pem_len)
{
	BIO *out = BIO_new(BIO_s_mem());
	const unsigned char *cur = p, *end = p + len;
	char *pem = NULL, *data;
	int n = 0;
	long got;

	if (!out)
		return NULL;
	while (cur < end && n < HM_CT_MAX_CHAIN) {
		X509 *x = d2i_X509(NULL, &cur, end - cur);

		if (!x)
			goto out;
		if (!PEM_write_bio_X509(out, x)) {
			X509_free(x);
			goto out;
		}
		X509_free(x);
		n++;
	}
	if (cur != end || n == 0)
		goto out;
	got = BIO_get_mem_data(out, &data);
	pem = malloc((size_t)got + 1);
	if (pem) {
		memcpy(pem, data, (size_t)got);
		pem[got] = 0;
		*pem_len = (size_t)got;
	}
out:
	BIO_free(out);
	ERR_clear_error();
	return pem;
}

char *hm_ct_chain_pem(const void *chain, size_t len, size_t *pem_len)
{
	char *pem;

	if (len == 0)
		return NULL;
	/* DER is a SEQUENCE (0x30) and must parse to the last byte; anything
	 * else is PEM or nothing (hm_ct_check judges the PEM). */
	if (((const uint8_t *)chain)[0] == 0x30 && (pem = der_chain_pem(chain, len, pem_len)))
		return pem;
	if (!looks_pem(chain, len))
		return NULL;
	pem = malloc(len + 1);
	if (!pem)
		return NULL;
	memcpy(pem, chain, len);
	pem[len] = 0;
	*pem_len = len;
	return pem;
}

/* ---- operations --------------------------------------------------------- */

size_t hm_ct_op_check(uint8_t *out, size_t cap, uint64_t time, const void *chain, size_t chain_len,
		      const struct hm_ct_evidence *ev, size_t n_ev)
{
	size_t off = HM_CT_CHECK_HDR;

	if (n_ev > HM_CT_MAX_LOGS || chain_len > UINT32_MAX || cap < off + chain_len + 1)
		return 0;
	out[0] = HM_CT_OP_CHECK;
	hm_put_be64(out + 1, time);
	hm_put_be32(out + 9, (uint32_t)chain_len);
	memcpy(out + off, chain, chain_len);
	off += chain_len;
	out[off++] = (uint8_t)n_ev;
	for (size_t i = 0; i < n_ev; i++) {
		size_t n = hm_ct_evidence_encode(&ev[i], out + off, cap - off);

		if (!n)
			return 0;
		off += n;
	}
	return off;
}

size_t hm_ct_op_latest(uint8_t *out, size_t cap, const uint8_t log_id[HM_CT_LOG_ID_LEN])
{
	if (cap < 1 + HM_CT_LOG_ID_LEN)
		return 0;
	out[0] = HM_CT_OP_LATEST;
	memcpy(out + 1, log_id, HM_CT_LOG_ID_LEN);
	return 1 + HM_CT_LOG_ID_LEN;
}

int hm_ct_latest_decode(const uint8_t *buf, size_t len, enum hm_ct_latest_status *status,
			uint64_t *tree_size)
{
	if (len != HM_CT_LATEST_RESULT_LEN || memcmp(buf, "HMCL", 4) != 0 ||
	    buf[4] > HM_CT_LATEST_BAD_OP)
		return -1;
	*status = buf[4];
	*tree_size = hm_get_be64(buf + 5);
	return 0;
}

/* ---- execute ------------------------------------------------------------ */

/* The result of an op that could not be judged: still a verdict, so every
 * CT_CHECK result decodes the same way. */
static size_t malformed(uint64_t time, const char *why, uint8_t *out, size_t cap)
{
	struct hm_ct_verdict v;

	memset(&v, 0, sizeof(v));
	v.result = HM_CT_MALFORMED;
	v.time = time;
	snprintf(v.reason, sizeof(v.reason), "operation: %s", why);
	return hm_ct_verdict_encode(&v, out, cap);
}

/* Decode the evidence list at p (len bytes, the rest of the op); returns
 * the count, or -1 with *why set. */
static long decode_evidence(const uint8_t *p, size_t len, struct hm_ct_evidence **evp,
			    const char **why)
{
	size_t n, off = 1;
	struct hm_ct_evidence *ev;

	*evp = NULL;
	if (len < 1) {
		*why = "truncated before the evidence count";
		return -1;
	}
	n = p[0];
	if (n > HM_CT_MAX_LOGS) {
		*why = "too many evidence entries";
		return -1;
	}
	ev = calloc(n ? n : 1, sizeof(*ev));
	if (!ev) {
		*why = "out of memory";
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		long used = hm_ct_evidence_decode(p + off, len - off, &ev[i]);

		if (used < 0) {
			free(ev);
			*why = "bad evidence encoding";
			return -1;
		}
		off += (size_t)used;
	}
	if (off != len) {
		free(ev);
		*why = "trailing bytes after the evidence";
		return -1;
	}
	*evp = ev;
	return (long)n;
}

static size_t exec_check(struct ct_service *s, const uint8_t *op, size_t len, uint8_t *out,
			 size_t cap)
{
	struct hm_ct_evidence *ev;
	struct hm_ct_verdict v;
	const char *why;
	uint64_t time;
	size_t chain_len, pem_len;
	char *pem;
	long n_ev;

	if (len < HM_CT_CHECK_HDR)
		return malformed(0, "truncated header", out, cap);
	time = hm_get_be64(op + 1);
	chain_len = hm_get_be32(op + 9);
	if (chain_len == 0 || chain_len > len - HM_CT_CHECK_HDR)
		return malformed(time, "bad chain length", out, cap);
	n_ev = decode_evidence(op + HM_CT_CHECK_HDR + chain_len, len - HM_CT_CHECK_HDR - chain_len,
			       &ev, &why);
	if (n_ev < 0)
		return malformed(time, why, out, cap);
	pem = hm_ct_chain_pem(op + HM_CT_CHECK_HDR, chain_len, &pem_len);
	if (!pem) {
		free(ev);
		return malformed(time, "the chain is neither PEM nor DER certificates", out, cap);
	}
	hm_ct_check(s->ct, pem, pem_len, time, ev, (size_t)n_ev, &v);
	free(pem);
	free(ev);
	return hm_ct_verdict_encode(&v, out, cap);
}

static size_t exec_latest(struct ct_service *s, const uint8_t *op, size_t len, uint8_t *out,
			  size_t cap)
{
	enum hm_ct_latest_status st = HM_CT_LATEST_BAD_OP;
	struct hm_ct_sth sth = { 0 };

	if (cap < HM_CT_LATEST_RESULT_LEN)
		return 0;
	if (len == 1 + HM_CT_LOG_ID_LEN) {
		int rc = hm_ct_latest_sth(s->ct, op + 1, &sth);

		st = rc < 0 ? HM_CT_LATEST_UNKNOWN : rc == 0 ? HM_CT_LATEST_HAVE : HM_CT_LATEST_NONE;
		if (st != HM_CT_LATEST_HAVE)
			sth.tree_size = 0;
	}
	memcpy(out, "HMCL", 4);
	out[4] = (uint8_t)st;
	hm_put_be64(out + 5, sth.tree_size);
	return HM_CT_LATEST_RESULT_LEN;
}

static size_t ct_execute(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op,
			 size_t len, uint8_t *out, size_t cap)
{
	struct ct_service *s = state;
	char why[48];

	(void)ctx;
	if (len >= 1 && op[0] == HM_CT_OP_CHECK)
		return exec_check(s, op, len, out, cap);
	if (len >= 1 && op[0] == HM_CT_OP_LATEST)
		return exec_latest(s, op, len, out, cap);
	snprintf(why, sizeof(why), "unknown opcode 0x%02x", len ? op[0] : 0);
	return malformed(0, why, out, cap);
}

/* ---- vote check: the agreed time must be close to ours ------------------ */

static bool ct_check(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op, size_t len)
{
	struct ct_service *s = state;
	uint64_t t, now;

	(void)ctx;
	/* Anything else (and a CT_CHECK too short to carry T) executes to a
	 * well-defined result at every replica; only T is a local judgement. */
	if (len < 9 || op[0] != HM_CT_OP_CHECK)
		return true;
	t = hm_get_be64(op + 1);
	now = s->clock(s->clock_ctx);
	return (t > now ? t - now : now - t) <= s->max_skew_s;
}

/* ---- state -------------------------------------------------------------- */

static void ct_digest(void *state, uint8_t out[HM_DIGEST_LEN])
{
	struct ct_service *s = state;
	uint8_t *buf = NULL;
	size_t len = 0;

	/* The snapshot is canonical (logs in id order), so equal states hash
	 * equally however they were reached. */
	if (hm_ct_state_snapshot(s->ct, &buf, &len) < 0) {
		memset(out, 0, HM_DIGEST_LEN);
		return;
	}
	hm_digest(buf, len, out);
	free(buf);
}

static int ct_snapshot(void *state, uint8_t **buf, size_t *len)
{
	struct ct_service *s = state;

	return hm_ct_state_snapshot(s->ct, buf, len);
}

static int ct_restore(void *state, const uint8_t *buf, size_t len)
{
	struct ct_service *s = state;

	return hm_ct_state_restore(s->ct, buf, len);
}

static void ct_destroy(void *state)
{
	struct ct_service *s = state;

	if (!s)
		return;
	hm_ct_free(s->ct);
	free(s);
}

static const struct hm_service_ops ct_ops = {
	.name = "ct",
	.execute = ct_execute,
	.digest = ct_digest,
	.snapshot = ct_snapshot,
	.restore = ct_restore,
	.destroy = ct_destroy,
	.check = ct_check,
};

int hm_ct_service_new(struct hm_service *svc, struct hm_ct *ct, uint32_t max_skew_s,
		      hm_ct_clock_fn clock, void *clock_ctx)
{
	struct ct_service *s = calloc(1, sizeof(*s));

	if (!s || !ct || !clock) {
		free(s);
		hm_ct_free(ct);
		return -1;
	}
	s->ct = ct;
	s->max_skew_s = max_skew_s;
	s->clock = clock;
	s->clock_ctx = clock_ctx;
	svc->ops = &ct_ops;
	svc->state = s;
	return 0;
}

/* The verifier for cc.  On a bad file, err is "KEY: why", prefixed with
 * "FILE:LINE: " when file is given (with "FILE: " when the line is unknown). */
static struct hm_ct *load_config(const struct hm_ct_config *cc, const char *file, char *err,
				 size_t errlen)
{
	struct hm_ct *ct = hm_ct_new();
	char why[256], key[32];
	uint32_t line;

	if (!ct) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (cc->trust_store[0] && hm_ct_add_trust_file(ct, cc->trust_store, why, sizeof(why)) < 0) {
		snprintf(key, sizeof(key), "ct.trust_store");
		line = cc->trust_store_line;
		goto fail;
	}
	for (uint32_t i = 0; i < cc->n_logs; i++) {
		/* also refuses a key another log has already */
		if (hm_ct_add_log_file(ct, cc->logs[i].name, cc->logs[i].key_path, NULL, why,
				       sizeof(why)) < 0) {
			snprintf(key, sizeof(key), "ct.logs[%u].key", i);
			line = cc->logs[i].key_line;
			goto fail;
		}
	}
	return ct;
fail:
	if (!file)
		snprintf(err, errlen, "%s: %s", key, why);
	else if (line)
		snprintf(err, errlen, "%s:%u: %s: %s", file, line, key, why);
	else
		snprintf(err, errlen, "%s: %s: %s", file, key, why);
	hm_ct_free(ct);
	return NULL;
}

struct hm_ct *hm_ct_from_config(const struct hm_ct_config *cc, char *err, size_t errlen)
{
	return load_config(cc, NULL, err, errlen);
}

int hm_ct_config_check(const struct hm_config *cfg, char *err, size_t errlen)
{
	struct hm_ct *ct;

	if (!cfg->ct.enabled)
		return 0;
	ct = load_config(&cfg->ct, cfg->path, err, errlen);
	if (!ct)
		return -1;
	hm_ct_free(ct);
	return 0;
}
