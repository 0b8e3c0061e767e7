// SPDX-License-Identifier: MIT
/* Certificate Transparency verdicts (see ct.h). */
#include "service/ct/ct.h"
#include "common/log.h"

#include <openssl/bio.h>
#include <openssl/ct.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

struct ct_log {
	char name[64];
	EVP_PKEY *pkey;
	uint8_t *spki; /* DER SubjectPublicKeyInfo */
	size_t spki_len;
	uint8_t id[HM_CT_LOG_ID_LEN];
	bool have_sth;
	struct hm_ct_sth latest;
};

struct hm_ct {
	X509_STORE *store;
	struct ct_log logs[HM_CT_MAX_LOGS];
	size_t n_logs;
	CTLOG_STORE *ctlogs; /* OpenSSL's view of logs[], rebuilt when they change */
	bool ctlogs_stale;
};

static void reason(struct hm_ct_verdict *v, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
	va_end(ap);
}

/* A short, stable name for a log in reasons: the first 4 bytes of its id. */
static void id_tag(const uint8_t id[HM_CT_LOG_ID_LEN], char out[9])
{
	snprintf(out, 9, "%02x%02x%02x%02x", id[0], id[1], id[2], id[3]);
}

struct hm_ct *hm_ct_new(void)
{
	struct hm_ct *ct = calloc(1, sizeof(*ct));

	if (!ct)
		return NULL;
	ct->store = X509_STORE_new();
	if (!ct->store) {
		free(ct);
		return NULL;
	}
	ct->ctlogs_stale = true;
	return ct;
}

void hm_ct_free(struct hm_ct *ct)
{
	if (!ct)
		return;
	X509_STORE_free(ct->store);
	CTLOG_STORE_free(ct->ctlogs);
	for (size_t i = 0; i < ct->n_logs; i++) {
		EVP_PKEY_free(ct->logs[i].pkey);
		free(ct->logs[i].spki);
	}
	free(ct);
}

/* ---- configuration ---- */

int hm_ct_add_trust_pem(struct hm_ct *ct, const char *pem, size_t len, char *err, size_t errlen)
{
	BIO *bio = len <= INT32_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
	X509 *x;
	int n = 0;

	if (!bio) {
		BIO_free(bio);
		hm_set_err(err, errlen, "trust store: out of memory");
		return -1;
	}
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		int ok = X509_STORE_add_cert(ct->store, x);

		X509_free(x);
		if (!ok) {
			BIO_free(bio);
			ERR_clear_error();
			hm_set_err(err, errlen, "trust store: cannot add certificate %d", n + 1);
			return -1;
		}
		n++;
	}
	ERR_clear_error(); /* the expected end-of-input "error" */
	BIO_free(bio);
	if (n == 0) {
		hm_set_err(err, errlen, "trust store: no PEM certificate found");
		return -1;
	}
	return 0;
}

static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f) {
		hm_set_err(err, errlen, "%s: cannot open", path);
		return NULL;
	}
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1 << 24) &&
	    fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) &&
	    fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = 0;
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
		hm_set_err(err, errlen, "%s: cannot read (or larger than 16 MiB)", path);
	}
	fclose(f);
	return buf;
}

int hm_ct_add_trust_file(struct hm_ct *ct, const char *path, char *err, size_t errlen)
{
	size_t len;
	char *pem = read_file(path, &len, err, errlen);
	int rc;

	if (!pem)
		return -1;
	rc = hm_ct_add_trust_pem(ct, pem, len, err, errlen);
	free(pem);
	return rc;
}

int hm_ct_add_log_pem(struct hm_ct *ct, const char *name, const char *pem, size_t len,
		      const uint8_t *expected_id, char *err, size_t errlen)
{
	struct ct_log *log;
	BIO *bio;
	EVP_PKEY *pkey;
	unsigned char *der = NULL;
	int der_len;
	char curve[32] = "";

	if (ct->n_logs == HM_CT_MAX_LOGS) {
		hm_set_err(err, errlen, "log %s: more than %d logs", name, HM_CT_MAX_LOGS);
		return -1;
	}
	bio = len <= INT32_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
	pkey = bio ? PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL) : NULL;
	BIO_free(bio);
	ERR_clear_error();
	if (!pkey) {
		hm_set_err(err, errlen, "log %s: no PEM public key", name);
		return -1;
	}
	if (!EVP_PKEY_is_a(pkey, "EC") ||
	    !EVP_PKEY_get_utf8_string_param(pkey, "group", curve, sizeof(curve), NULL) ||
	    strcmp(curve, "prime256v1") != 0) {
		EVP_PKEY_free(pkey);
		hm_set_err(err, errlen, "log %s: the key must be ECDSA P-256", name);
		return -1;
	}
	der_len = i2d_PUBKEY(pkey, &der);
	if (der_len <= 0) {
		EVP_PKEY_free(pkey);
		hm_set_err(err, errlen, "log %s: cannot encode the key", name);
		return -1;
	}
	log = &ct->logs[ct->n_logs];
	memset(log, 0, sizeof(*log));
	SHA256(der, (size_t)der_len, log->id);
	if (expected_id && memcmp(expected_id, log->id, HM_CT_LOG_ID_LEN) != 0) {
		EVP_PKEY_free(pkey);
		OPENSSL_free(der);
		hm_set_err(err, errlen, "log %s: the log id is not the SHA-256 of its key", name);
		return -1;
	}
	for (size_t i = 0; i < ct->n_logs; i++)
		if (memcmp(ct->logs[i].id, log->id, HM_CT_LOG_ID_LEN) == 0) {
			EVP_PKEY_free(pkey);
			OPENSSL_free(der);
			hm_set_err(err, errlen, "log %s: the same key as log %s", name, ct->logs[i].name);
			return -1;
		}
	log->spki = malloc((size_t)der_len);
	if (!log->spki) {
		EVP_PKEY_free(pkey);
		OPENSSL_free(der);
		hm_set_err(err, errlen, "log %s: out of memory", name);
		return -1;
	}
	memcpy(log->spki, der, (size_t)der_len);
	log->spki_len = (size_t)der_len;
	OPENSSL_free(der);
	log->pkey = pkey;
	snprintf(log->name, sizeof(log->name), "%s", name);
	ct->n_logs++;
	ct->ctlogs_stale = true;
	return 0;
}

int hm_ct_add_log_file(struct hm_ct *ct, const char *name, const char *path,
		       const uint8_t *expected_id, char *err, size_t errlen)
{
	size_t len;
	char *pem = read_file(path, &len, err, errlen);
	int rc;

	if (!pem)
		return -1;
	rc = hm_ct_add_log_pem(ct, name, pem, len, expected_id, err, errlen);
	free(pem);
	return rc;
}

int hm_ct_log_id(const struct hm_ct *ct, size_t i, uint8_t id[HM_CT_LOG_ID_LEN])
{
	if (i >= ct->n_logs)
		return -1;
	memcpy(id, ct->logs[i].id, HM_CT_LOG_ID_LEN);
	return 0;
}

static struct ct_log *find_log(const struct hm_ct *ct, const uint8_t id[HM_CT_LOG_ID_LEN])
{
	for (size_t i = 0; i < ct->n_logs; i++)
		if (memcmp(ct->logs[i].id, id, HM_CT_LOG_ID_LEN) == 0)
			return (struct ct_log *)&ct->logs[i];
	return NULL;
}

/* OpenSSL 3 can fill a CTLOG_STORE only from a log list file, so write one
 * into a memfd and load it through /proc/self/fd: no file on disk. */
static int build_ctlogs(struct hm_ct *ct)
{
	CTLOG_STORE *store;
	char path[64];
	FILE *f;
	int fd, ok;

	if (!ct->ctlogs_stale)
		return 0;
	fd = memfd_create("hm-ct-logs", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	f = fdopen(fd, "w+");
	if (!f) {
		close(fd);
		return -1;
	}
	fprintf(f, "enabled_logs = ");
	for (size_t i = 0; i < ct->n_logs; i++)
		fprintf(f, "%slog%zu", i ? "," : "", i);
	fprintf(f, "\n");
	for (size_t i = 0; i < ct->n_logs; i++) {
		char *b64 = malloc(4 * ((ct->logs[i].spki_len + 2) / 3) + 1);

		if (!b64) {
			fclose(f);
			return -1;
		}
		EVP_EncodeBlock((unsigned char *)b64, ct->logs[i].spki, (int)ct->logs[i].spki_len);
		fprintf(f, "[log%zu]\ndescription = log%zu\nkey = %s\n", i, i, b64);
		free(b64);
	}
	fflush(f);
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fileno(f));
	store = CTLOG_STORE_new();
	ok = store && (ct->n_logs == 0 || CTLOG_STORE_load_file(store, path) == 1);
	fclose(f);
	ERR_clear_error();
	if (!ok) {
		CTLOG_STORE_free(store);
		return -1;
	}
	CTLOG_STORE_free(ct->ctlogs);
	ct->ctlogs = store;
	ct->ctlogs_stale = false;
	return 0;
}

/* ---- chains ---- */

static STACK_OF(X509) *parse_chain(const char *pem, size_t len)
{
	STACK_OF(X509) *chain = sk_X509_new_null();
	BIO *bio = len <= INT32_MAX ? BIO_new_mem_buf(pem, (int)len) : NULL;
	X509 *x;

	if (!chain || !bio)
		goto fail;
	while ((x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		if (sk_X509_num(chain) == HM_CT_MAX_CHAIN || !sk_X509_push(chain, x)) {
			X509_free(x);
			goto fail;
		}
	}
	ERR_clear_error();
	BIO_free(bio);
	if (sk_X509_num(chain) == 0) {
		sk_X509_free(chain);
		return NULL;
	}
	return chain;
fail:
	ERR_clear_error();
	BIO_free(bio);
	sk_X509_pop_free(chain, X509_free);
	return NULL;
}

/* X509_verify_cert at the agreed time; returns the verified chain (leaf to
 * anchor) or NULL with *x509_error and *depth set. */
static STACK_OF(X509) *verify_chain(struct hm_ct *ct, STACK_OF(X509) *chain, uint64_t time,
				    int *x509_error, int *depth)
{
	X509_STORE_CTX *sctx = X509_STORE_CTX_new();
	STACK_OF(X509) *verified = NULL;

	*x509_error = X509_V_ERR_UNSPECIFIED;
	*depth = 0;
	if (!sctx || !X509_STORE_CTX_init(sctx, ct->store, sk_X509_value(chain, 0), chain))
		goto out;
	/* Replicas judge validity at the same instant, never by their clocks. */
	X509_STORE_CTX_set_time(sctx, 0, (time_t)time);
	X509_STORE_CTX_set_purpose(sctx, X509_PURPOSE_SSL_SERVER);
	if (X509_verify_cert(sctx) == 1) {
		verified = X509_STORE_CTX_get1_chain(sctx);
		*x509_error = 0;
	} else {
		*x509_error = X509_STORE_CTX_get_error(sctx);
		*depth = X509_STORE_CTX_get_error_depth(sctx);
	}
out:
	X509_STORE_CTX_free(sctx);
	ERR_clear_error();
	return verified;
}

/* ---- RFC 6962 structures ---- */

static size_t put_u16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = (uint8_t)v; return 2; }
static size_t put_u24(uint8_t *p, uint32_t v) { p[0] = v >> 16; p[1] = v >> 8; p[2] = (uint8_t)v; return 3; }
static size_t put_u64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (56 - 8 * i));
	return 8;
}

static uint64_t get_u64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The MerkleTreeLeaf hash of a precert_entry (RFC 6962 3.4): the log signed
 * the leaf's TBSCertificate without the SCT list, with the issuer's key hash. */
static int precert_leaf_hash(X509 *leaf, X509 *issuer, const SCT *sct, hm_merkle_hash out)
{
	X509 *tbs_cert = X509_dup(leaf);
	unsigned char *tbs = NULL, *spki = NULL;
	const unsigned char *ext = NULL;
	uint8_t ikh[32], *buf = NULL;
	int tbs_len = -1, spki_len, idx, rc = -1;
	size_t ext_len, off = 0;

	if (!tbs_cert)
		return -1;
	while ((idx = X509_get_ext_by_NID(tbs_cert, NID_ct_precert_scts, -1)) >= 0)
		X509_EXTENSION_free(X509_delete_ext(tbs_cert, idx));
	tbs_len = i2d_re_X509_tbs(tbs_cert, &tbs);
	spki_len = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(issuer), &spki);
	ext_len = SCT_get0_extensions(sct, (unsigned char **)&ext);
	if (tbs_len <= 0 || tbs_len >= (1 << 24) || spki_len <= 0 || ext_len >= (1 << 16))
		goto out;
	SHA256(spki, (size_t)spki_len, ikh);
	buf = malloc(2 + 8 + 2 + 32 + 3 + (size_t)tbs_len + 2 + ext_len);
	if (!buf)
		goto out;
	buf[off++] = 0; /* version v1 */
	buf[off++] = 0; /* timestamped_entry */
	off += put_u64(buf + off, SCT_get_timestamp(sct));
	off += put_u16(buf + off, 1); /* precert_entry */
	memcpy(buf + off, ikh, 32);
	off += 32;
	off += put_u24(buf + off, (uint32_t)tbs_len);
	memcpy(buf + off, tbs, (size_t)tbs_len);
	off += (size_t)tbs_len;
	off += put_u16(buf + off, (uint16_t)ext_len);
	if (ext_len)
		memcpy(buf + off, ext, ext_len);
	off += ext_len;
	hm_merkle_leaf_hash(buf, off, out);
	rc = 0;
out:
	free(buf);
	OPENSSL_free(tbs);
	OPENSSL_free(spki);
	X509_free(tbs_cert);
	ERR_clear_error();
	return rc;
}

bool hm_ct_sth_signature_ok(const struct hm_ct *ct, const uint8_t log_id[HM_CT_LOG_ID_LEN],
			    const struct hm_ct_sth *sth)
{
	const struct ct_log *log = find_log(ct, log_id);
	uint8_t msg[2 + 8 + 8 + 32];
	EVP_MD_CTX *md;
	size_t off = 0, sig_len;
	bool ok;

	if (!log || sth->sig_len < 4 || sth->sig_len > HM_CT_MAX_SIG)
		return false;
	/* DigitallySigned: sha256 (4), ecdsa (3), then a u16-length DER signature */
	sig_len = (size_t)sth->sig[2] << 8 | sth->sig[3];
	if (sth->sig[0] != 4 || sth->sig[1] != 3 || sig_len + 4 != sth->sig_len)
		return false;
	msg[off++] = 0; /* v1 */
	msg[off++] = 1; /* tree_hash */
	off += put_u64(msg + off, sth->timestamp);
	off += put_u64(msg + off, sth->tree_size);
	memcpy(msg + off, sth->root, 32);
	off += 32;
	md = EVP_MD_CTX_new();
	ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, log->pkey) == 1 &&
	     EVP_DigestVerify(md, sth->sig + 4, sig_len, msg, off) == 1;
	EVP_MD_CTX_free(md);
	ERR_clear_error();
	return ok;
}

/* ---- tree heads ---- */

static void verdict_init(struct hm_ct_verdict *v, uint64_t time)
{
	memset(v, 0, sizeof(*v));
	v->time = time;
}

/* Check an STH against the log's latest and move the latest forward. */
static enum hm_ct_result advance_sth(struct ct_log *log, const struct hm_ct *ct,
				     const struct hm_ct_sth *sth, uint64_t from,
				     const hm_merkle_hash *proof, size_t proof_len,
				     struct hm_ct_verdict *v)
{
	struct hm_ct_sth *l = &log->latest;
	char tag[9];

	id_tag(log->id, tag);
	memcpy(v->log_id, log->id, HM_CT_LOG_ID_LEN);
	v->tree_size = sth->tree_size;
	memcpy(v->root, sth->root, 32);
	if (sth->sig_len > HM_CT_MAX_SIG || proof_len > HM_CT_MAX_PROOF) {
		reason(v, "log %s: oversized STH signature or proof", tag);
		return v->result = HM_CT_MALFORMED;
	}
	if (!hm_ct_sth_signature_ok(ct, log->id, sth)) {
		reason(v, "log %s: the tree head (size %" PRIu64 ") is not signed by the log", tag,
		       sth->tree_size);
		return v->result = HM_CT_STH_BAD_SIGNATURE;
	}
	if (!log->have_sth) { /* the first tree head we see is taken on trust */
		*l = *sth;
		log->have_sth = true;
		return v->result = HM_CT_OK;
	}
	if (from != l->tree_size) {
		reason(v, "log %s: consistency proof from size %" PRIu64 ", our latest is %" PRIu64, tag,
		       from, l->tree_size);
		return v->result = HM_CT_STALE_EVIDENCE;
	}
	bool ok = sth->tree_size >= l->tree_size
		? hm_merkle_verify_consistency(l->tree_size, sth->tree_size, l->root, sth->root, proof,
					       proof_len)
		: hm_merkle_verify_consistency(sth->tree_size, l->tree_size, sth->root, l->root, proof,
					       proof_len);
	if (!ok) {
		reason(v, "log %s: tree heads of sizes %" PRIu64 " and %" PRIu64
			  " are inconsistent: the log shows two views", tag, l->tree_size, sth->tree_size);
		return v->result = HM_CT_STH_INCONSISTENT;
	}
	if (sth->tree_size > l->tree_size ||
	    (sth->tree_size == l->tree_size && sth->timestamp > l->timestamp))
		*l = *sth;
	return v->result = HM_CT_OK;
}

enum hm_ct_result hm_ct_observe_sth(struct hm_ct *ct, const uint8_t log_id[HM_CT_LOG_ID_LEN],
				    const struct hm_ct_sth *sth, uint64_t consistency_from,
				    const hm_merkle_hash *proof, size_t proof_len,
				    struct hm_ct_verdict *v)
{
	struct ct_log *log = find_log(ct, log_id);

	verdict_init(v, 0);
	if (!log) {
		memcpy(v->log_id, log_id, HM_CT_LOG_ID_LEN);
		reason(v, "tree head from an unknown log");
		return v->result = HM_CT_MALFORMED;
	}
	return advance_sth(log, ct, sth, consistency_from, proof, proof_len, v);
}

int hm_ct_latest_sth(const struct hm_ct *ct, const uint8_t log_id[HM_CT_LOG_ID_LEN],
		     struct hm_ct_sth *out)
{
	const struct ct_log *log = find_log(ct, log_id);

	if (!log)
		return -1;
	if (!log->have_sth)
		return 1;
	*out = log->latest;
	return 0;
}

/* ---- the verdict ---- */

struct sct_tally {
	const SCT *valid[HM_CT_MAX_LOGS]; /* SCTs that verified, in the order of the list */
	int n_valid, n_unknown;
	const SCT *bad;                   /* the first invalid SCT of a known log */
	bool bad_future;
};

static int tally_scts(struct hm_ct *ct, X509 *leaf, X509 *issuer, STACK_OF(SCT) *scts,
		      uint64_t time, struct sct_tally *t)
{
	CT_POLICY_EVAL_CTX *pctx = CT_POLICY_EVAL_CTX_new();

	memset(t, 0, sizeof(*t));
	if (!pctx || build_ctlogs(ct) || !CT_POLICY_EVAL_CTX_set1_cert(pctx, leaf) ||
	    !CT_POLICY_EVAL_CTX_set1_issuer(pctx, issuer)) {
		CT_POLICY_EVAL_CTX_free(pctx);
		return -1;
	}
	CT_POLICY_EVAL_CTX_set_shared_CTLOG_STORE(pctx, ct->ctlogs);
	CT_POLICY_EVAL_CTX_set_time(pctx, time * 1000);
	for (int i = 0; i < sk_SCT_num(scts); i++) {
		SCT *sct = sk_SCT_value(scts, i);

		(void)SCT_validate(sct, pctx); /* the status says what we need */
		switch (SCT_get_validation_status(sct)) {
		case SCT_VALIDATION_STATUS_VALID:
			if (t->n_valid < HM_CT_MAX_LOGS)
				t->valid[t->n_valid++] = sct;
			break;
		case SCT_VALIDATION_STATUS_INVALID:
			if (!t->bad) {
				t->bad = sct;
				t->bad_future = SCT_get_timestamp(sct) > time * 1000;
			}
			break;
		default: /* unknown log, unknown version, unparsable */
			t->n_unknown++;
			break;
		}
	}
	CT_POLICY_EVAL_CTX_free(pctx);
	ERR_clear_error();
	return 0;
}

static const struct hm_ct_evidence *find_evidence(const uint8_t id[HM_CT_LOG_ID_LEN],
						  const struct hm_ct_evidence *ev, size_t n_ev)
{
	for (size_t i = 0; i < n_ev; i++)
		if (memcmp(ev[i].log_id, id, HM_CT_LOG_ID_LEN) == 0)
			return &ev[i];
	return NULL;
}

/* With the SCTs known good: the log's STH, its consistency, the inclusion. */
static enum hm_ct_result check_evidence(struct hm_ct *ct, X509 *leaf, X509 *issuer,
					const struct sct_tally *t, const struct hm_ct_evidence *ev,
					size_t n_ev, struct hm_ct_verdict *v)
{
	const struct hm_ct_evidence *e = NULL;
	const SCT *sct = NULL;
	const unsigned char *id = NULL;
	hm_merkle_hash leaf_hash;
	struct ct_log *log;
	char tag[9];

	for (int i = 0; i < t->n_valid && !e; i++) {
		SCT_get0_log_id(t->valid[i], (unsigned char **)&id);
		e = find_evidence(id, ev, n_ev);
		sct = t->valid[i];
	}
	if (!e) {
		SCT_get0_log_id(t->valid[0], (unsigned char **)&id);
		memcpy(v->log_id, id, HM_CT_LOG_ID_LEN);
		id_tag(id, tag);
		reason(v, "sct: valid SCT from log %s, but no tree head and inclusion proof from it", tag);
		return v->result = HM_CT_NO_EVIDENCE;
	}
	log = find_log(ct, e->log_id);
	id_tag(log->id, tag);
	if (e->inclusion_len > HM_CT_MAX_PROOF || e->consistency_len > HM_CT_MAX_PROOF) {
		memcpy(v->log_id, log->id, HM_CT_LOG_ID_LEN);
		reason(v, "log %s: oversized proof", tag);
		return v->result = HM_CT_MALFORMED;
	}
	if (advance_sth(log, ct, &e->sth, e->consistency_from, e->consistency, e->consistency_len, v))
		return v->result;
	v->leaf_index = e->leaf_index;
	if (precert_leaf_hash(leaf, issuer, sct, leaf_hash)) {
		reason(v, "log %s: cannot rebuild the certificate's log entry", tag);
		return v->result = HM_CT_MALFORMED;
	}
	if (!hm_merkle_verify_inclusion(e->leaf_index, e->sth.tree_size, leaf_hash, e->inclusion,
					e->inclusion_len, e->sth.root)) {
		reason(v, "log %s: the inclusion proof (index %" PRIu64 ", tree size %" PRIu64
			  ") does not prove the certificate", tag, e->leaf_index, e->sth.tree_size);
		return v->result = HM_CT_INCLUSION_FAILED;
	}
	reason(v, "ok: valid chain, SCT from log %s, included at index %" PRIu64 " of %" PRIu64, tag,
	       e->leaf_index, e->sth.tree_size);
	return v->result = HM_CT_OK;
}

static enum hm_ct_result check_scts(struct hm_ct *ct, X509 *leaf, X509 *issuer, uint64_t time,
				    const struct hm_ct_evidence *ev, size_t n_ev,
				    struct hm_ct_verdict *v)
{
	STACK_OF(SCT) *scts;
	struct sct_tally t;
	const unsigned char *id;
	char tag[9];
	int crit = -1;
	enum hm_ct_result r;

	scts = X509_get_ext_d2i(leaf, NID_ct_precert_scts, &crit, NULL);
	ERR_clear_error();
	if (!scts && crit != -1) {
		reason(v, "sct: the SCT list extension cannot be parsed");
		return v->result = HM_CT_MALFORMED;
	}
	if (!scts || sk_SCT_num(scts) == 0) {
		SCT_LIST_free(scts);
		reason(v, "sct: the certificate carries no SCT");
		return v->result = HM_CT_SCT_MISSING;
	}
	if (tally_scts(ct, leaf, issuer, scts, time, &t)) {
		SCT_LIST_free(scts);
		reason(v, "sct: cannot set up SCT validation");
		return v->result = HM_CT_MALFORMED;
	}
	if (t.bad) {
		SCT_get0_log_id(t.bad, (unsigned char **)&id);
		memcpy(v->log_id, id, HM_CT_LOG_ID_LEN);
		id_tag(id, tag);
		reason(v, t.bad_future ? "sct: the SCT of log %s is dated after the verification time"
				       : "sct: the SCT signature of log %s does not verify", tag);
		r = v->result = HM_CT_SCT_BAD_SIGNATURE;
	} else if (t.n_valid == 0) {
		reason(v, "sct: %d SCT(s), none from a known log", t.n_unknown);
		r = v->result = HM_CT_SCT_UNKNOWN_LOG;
	} else {
		r = check_evidence(ct, leaf, issuer, &t, ev, n_ev, v);
	}
	SCT_LIST_free(scts);
	return r;
}

enum hm_ct_result hm_ct_check(struct hm_ct *ct, const char *chain_pem, size_t len, uint64_t time,
			      const struct hm_ct_evidence *ev, size_t n_ev, struct hm_ct_verdict *v)
{
	STACK_OF(X509) *chain, *verified;
	unsigned char *der = NULL;
	int der_len, depth;
	X509 *leaf, *issuer;

	verdict_init(v, time);
	if (time > (uint64_t)INT64_MAX / 1000) { /* must fit time_t and milliseconds */
		reason(v, "time: out of range");
		return v->result = HM_CT_MALFORMED;
	}
	chain = parse_chain(chain_pem, len);
	if (!chain) {
		reason(v, "chain: no PEM certificate, or more than %d", HM_CT_MAX_CHAIN);
		return v->result = HM_CT_MALFORMED;
	}
	leaf = sk_X509_value(chain, 0);
	der_len = i2d_X509(leaf, &der);
	if (der_len > 0)
		SHA256(der, (size_t)der_len, v->cert_digest);
	OPENSSL_free(der);
	verified = verify_chain(ct, chain, time, &v->x509_error, &depth);
	if (!verified) {
		reason(v, "chain: X.509 verification error %d at depth %d", v->x509_error, depth);
		sk_X509_pop_free(chain, X509_free);
		return v->result = HM_CT_CHAIN_INVALID;
	}
	/* the issuer the chain was verified with (a self-issued leaf is its own) */
	issuer = sk_X509_value(verified, sk_X509_num(verified) > 1 ? 1 : 0);
	check_scts(ct, leaf, issuer, time, ev, n_ev, v);
	sk_X509_pop_free(verified, X509_free);
	sk_X509_pop_free(chain, X509_free);
	return v->result;
}

int hm_ct_leaf_hash(const char *chain_pem, size_t len, const uint8_t log_id[HM_CT_LOG_ID_LEN],
		    hm_merkle_hash out, char *err, size_t errlen)
{
	STACK_OF(X509) *chain = parse_chain(chain_pem, len);
	STACK_OF(SCT) *scts = NULL;
	int rc = -1;

	if (!chain || sk_X509_num(chain) < 2) {
		hm_set_err(err, errlen, "chain: need the leaf and its issuer");
		goto out;
	}
	scts = X509_get_ext_d2i(sk_X509_value(chain, 0), NID_ct_precert_scts, NULL, NULL);
	for (int i = 0; scts && i < sk_SCT_num(scts); i++) {
		const unsigned char *id;
		SCT *sct = sk_SCT_value(scts, i);

		if (SCT_get0_log_id(sct, (unsigned char **)&id) == HM_CT_LOG_ID_LEN &&
		    memcmp(id, log_id, HM_CT_LOG_ID_LEN) == 0) {
			rc = precert_leaf_hash(sk_X509_value(chain, 0), sk_X509_value(chain, 1), sct, out);
			if (rc)
				hm_set_err(err, errlen, "cannot rebuild the log entry");
			goto out;
		}
	}
	hm_set_err(err, errlen, "the certificate carries no SCT of that log");
out:
	SCT_LIST_free(scts);
	sk_X509_pop_free(chain, X509_free);
	ERR_clear_error();
	return rc;
}

/* ---- encodings ---- */

static const char *const result_names[HM_CT_RESULT_COUNT] = {
	[HM_CT_OK] = "ok",
	[HM_CT_MALFORMED] = "malformed",
	[HM_CT_CHAIN_INVALID] = "chain-invalid",
	[HM_CT_SCT_MISSING] = "sct-missing",
	[HM_CT_SCT_UNKNOWN_LOG] = "sct-unknown-log",
	[HM_CT_SCT_BAD_SIGNATURE] = "sct-bad-signature",
	[HM_CT_NO_EVIDENCE] = "no-evidence",
	[HM_CT_STH_BAD_SIGNATURE] = "sth-bad-signature",
	[HM_CT_STH_INCONSISTENT] = "sth-inconsistent",
	[HM_CT_STALE_EVIDENCE] = "stale-evidence",
	[HM_CT_INCLUSION_FAILED] = "inclusion-failed",
};

const char *hm_ct_result_name(enum hm_ct_result r)
{
	return (unsigned)r < HM_CT_RESULT_COUNT ? result_names[r] : "unknown";
}

size_t hm_ct_verdict_encode(const struct hm_ct_verdict *v, uint8_t *out, size_t cap)
{
	size_t rlen = strnlen(v->reason, sizeof(v->reason) - 1), off = 0;
	uint32_t xe = (uint32_t)v->x509_error;

	if (cap < HM_CT_VERDICT_FIXED + rlen)
		return 0;
	memcpy(out, "HMCT", 4);
	off = 4;
	out[off++] = 1;
	out[off++] = (uint8_t)v->result;
	for (int i = 0; i < 4; i++)
		out[off++] = (uint8_t)(xe >> (24 - 8 * i));
	off += put_u64(out + off, v->time);
	memcpy(out + off, v->cert_digest, 32);
	off += 32;
	memcpy(out + off, v->log_id, HM_CT_LOG_ID_LEN);
	off += HM_CT_LOG_ID_LEN;
	off += put_u64(out + off, v->tree_size);
	memcpy(out + off, v->root, 32);
	off += 32;
	off += put_u64(out + off, v->leaf_index);
	off += put_u16(out + off, (uint16_t)rlen);
	memcpy(out + off, v->reason, rlen);
	return off + rlen;
}

int hm_ct_verdict_decode(const uint8_t *buf, size_t len, struct hm_ct_verdict *v)
{
	size_t off = 6, rlen;

	if (len < HM_CT_VERDICT_FIXED || memcmp(buf, "HMCT", 4) != 0 || buf[4] != 1 ||
	    buf[5] >= HM_CT_RESULT_COUNT)
		return -1;
	memset(v, 0, sizeof(*v));
	v->result = buf[5];
	v->x509_error = (int32_t)((uint32_t)buf[6] << 24 | (uint32_t)buf[7] << 16 | buf[8] << 8 | buf[9]);
	off = 10;
	v->time = get_u64(buf + off);
	off += 8;
	memcpy(v->cert_digest, buf + off, 32);
	off += 32;
	memcpy(v->log_id, buf + off, HM_CT_LOG_ID_LEN);
	off += HM_CT_LOG_ID_LEN;
	v->tree_size = get_u64(buf + off);
	off += 8;
	memcpy(v->root, buf + off, 32);
	off += 32;
	v->leaf_index = get_u64(buf + off);
	off += 8;
	rlen = (size_t)buf[off] << 8 | buf[off + 1];
	off += 2;
	if (rlen >= sizeof(v->reason) || off + rlen != len || memchr(buf + off, 0, rlen))
		return -1;
	memcpy(v->reason, buf + off, rlen);
	v->reason[rlen] = 0;
	return 0;
}

size_t hm_ct_evidence_encode(const struct hm_ct_evidence *ev, uint8_t *out, size_t cap)
{
	size_t need = 4 + 1 + HM_CT_LOG_ID_LEN + 8 + 8 + 32 + 2 + ev->sth.sig_len + 8 + 1 +
		      ev->inclusion_len * 32 + 8 + 1 + ev->consistency_len * 32;
	size_t off = 0;

	if (ev->sth.sig_len > HM_CT_MAX_SIG || ev->inclusion_len > HM_CT_MAX_PROOF ||
	    ev->consistency_len > HM_CT_MAX_PROOF || cap < need)
		return 0;
	memcpy(out, "HMCE", 4);
	off = 4;
	out[off++] = 1;
	memcpy(out + off, ev->log_id, HM_CT_LOG_ID_LEN);
	off += HM_CT_LOG_ID_LEN;
	off += put_u64(out + off, ev->sth.tree_size);
	off += put_u64(out + off, ev->sth.timestamp);
	memcpy(out + off, ev->sth.root, 32);
	off += 32;
	off += put_u16(out + off, (uint16_t)ev->sth.sig_len);
	memcpy(out + off, ev->sth.sig, ev->sth.sig_len);
	off += ev->sth.sig_len;
	off += put_u64(out + off, ev->leaf_index);
	out[off++] = (uint8_t)ev->inclusion_len;
	memcpy(out + off, ev->inclusion, ev->inclusion_len * 32);
	off += ev->inclusion_len * 32;
	off += put_u64(out + off, ev->consistency_from);
	out[off++] = (uint8_t)ev->consistency_len;
	memcpy(out + off, ev->consistency, ev->consistency_len * 32);
	off += ev->consistency_len * 32;
	return off;
}

long hm_ct_evidence_decode(const uint8_t *buf, size_t len, struct hm_ct_evidence *ev)
{
	size_t off = 5, n;

	if (len < 5 + HM_CT_LOG_ID_LEN + 50 || memcmp(buf, "HMCE", 4) != 0 || buf[4] != 1)
		return -1;
	memset(ev, 0, sizeof(*ev));
	memcpy(ev->log_id, buf + off, HM_CT_LOG_ID_LEN);
	off += HM_CT_LOG_ID_LEN;
	ev->sth.tree_size = get_u64(buf + off);
	ev->sth.timestamp = get_u64(buf + off + 8);
	memcpy(ev->sth.root, buf + off + 16, 32);
	ev->sth.sig_len = (size_t)buf[off + 48] << 8 | buf[off + 49];
	off += 50;
	if (ev->sth.sig_len > HM_CT_MAX_SIG || len - off < ev->sth.sig_len + 9)
		return -1;
	memcpy(ev->sth.sig, buf + off, ev->sth.sig_len);
	off += ev->sth.sig_len;
	ev->leaf_index = get_u64(buf + off);
	n = buf[off + 8];
	off += 9;
	if (n > HM_CT_MAX_PROOF || len - off < n * 32 + 9)
		return -1;
	ev->inclusion_len = n;
	memcpy(ev->inclusion, buf + off, n * 32);
	off += n * 32;
	ev->consistency_from = get_u64(buf + off);
	n = buf[off + 8];
	off += 9;
	if (n > HM_CT_MAX_PROOF || len - off < n * 32)
		return -1;
	ev->consistency_len = n;
	memcpy(ev->consistency, buf + off, n * 32);
	off += n * 32;
	return (long)off;
}

/* State: "HMCS", version 1, count (u16), then per log with an STH, in log id
 * order: id, tree_size, timestamp, root, sig_len (u16), sig. */
#define STATE_ENTRY_FIXED (HM_CT_LOG_ID_LEN + 8 + 8 + 32 + 2)

static int cmp_log_ptr(const void *a, const void *b)
{
	return memcmp((*(const struct ct_log *const *)a)->id, (*(const struct ct_log *const *)b)->id,
		      HM_CT_LOG_ID_LEN);
}

int hm_ct_state_snapshot(const struct hm_ct *ct, uint8_t **buf, size_t *len)
{
	const struct ct_log *sorted[HM_CT_MAX_LOGS];
	size_t n = 0, off = 0;
	uint8_t *p;

	for (size_t i = 0; i < ct->n_logs; i++)
		if (ct->logs[i].have_sth)
			sorted[n++] = &ct->logs[i];
	qsort(sorted, n, sizeof(sorted[0]), cmp_log_ptr);
	p = malloc(7 + n * (STATE_ENTRY_FIXED + HM_CT_MAX_SIG));
	if (!p)
		return -1;
	memcpy(p, "HMCS", 4);
	off = 4;
	p[off++] = 1;
	off += put_u16(p + off, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		const struct hm_ct_sth *s = &sorted[i]->latest;

		memcpy(p + off, sorted[i]->id, HM_CT_LOG_ID_LEN);
		off += HM_CT_LOG_ID_LEN;
		off += put_u64(p + off, s->tree_size);
		off += put_u64(p + off, s->timestamp);
		memcpy(p + off, s->root, 32);
		off += 32;
		off += put_u16(p + off, (uint16_t)s->sig_len);
		memcpy(p + off, s->sig, s->sig_len);
		off += s->sig_len;
	}
	*buf = p;
	*len = off;
	return 0;
}

int hm_ct_state_restore(struct hm_ct *ct, const uint8_t *buf, size_t len)
{
	struct hm_ct_sth sths[HM_CT_MAX_LOGS];
	struct ct_log *logs[HM_CT_MAX_LOGS];
	size_t n, off = 7;

	if (len < 7 || memcmp(buf, "HMCS", 4) != 0 || buf[4] != 1)
		return -1;
	n = (size_t)buf[5] << 8 | buf[6];
	if (n > ct->n_logs)
		return -1;
	for (size_t i = 0; i < n; i++) {
		if (len - off < STATE_ENTRY_FIXED)
			return -1;
		logs[i] = find_log(ct, buf + off);
		/* strictly increasing ids: no log twice, one encoding per state */
		if (!logs[i] || (i && memcmp(buf + off, logs[i - 1]->id, HM_CT_LOG_ID_LEN) <= 0))
			return -1;
		off += HM_CT_LOG_ID_LEN;
		memset(&sths[i], 0, sizeof(sths[i]));
		sths[i].tree_size = get_u64(buf + off);
		sths[i].timestamp = get_u64(buf + off + 8);
		memcpy(sths[i].root, buf + off + 16, 32);
		sths[i].sig_len = (size_t)buf[off + 48] << 8 | buf[off + 49];
		off += 50;
		if (sths[i].sig_len > HM_CT_MAX_SIG || len - off < sths[i].sig_len)
			return -1;
		memcpy(sths[i].sig, buf + off, sths[i].sig_len);
		off += sths[i].sig_len;
		if (!hm_ct_sth_signature_ok(ct, logs[i]->id, &sths[i]))
			return -1;
	}
	if (off != len)
		return -1;
	for (size_t i = 0; i < ct->n_logs; i++)
		ct->logs[i].have_sth = false;
	for (size_t i = 0; i < n; i++) {
		logs[i]->latest = sths[i];
		logs[i]->have_sth = true;
	}
	return 0;
}
