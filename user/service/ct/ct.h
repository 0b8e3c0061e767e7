/* SPDX-License-Identifier: MIT */
/*
 * Certificate Transparency verdicts (RFC 6962) with OpenSSL 3.
 *
 * Given a certificate chain, a trust store and the CT logs we know, a verdict
 * says whether the chain is valid at an agreed time, whether the certificate
 * carries a valid embedded SCT from a known log, and whether that log proved
 * the certificate's inclusion in a signed tree head (STH) that is consistent
 * with the latest STH we have verified from it.
 *
 * Everything that comes from outside (the STH, the inclusion proof, the
 * consistency proof) arrives as evidence in the call: the function does no
 * I/O and reads no clock, so replicas that agree on the inputs and on the
 * state (the latest STH per log) compute the same verdict and the same
 * canonical encoding, byte for byte.  user/service/ct/ct_client.h fetches evidence.
 *
 * State: the latest verified STH per log.  A check whose evidence carries a
 * newer STH moves it forward, but only if the STH is signed by the log and a
 * consistency proof links it to the one we had; a log that shows two views of
 * its history is caught here (HM_CT_STH_INCONSISTENT).
 */
#ifndef HM_CT_H
#define HM_CT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/merkle.h"

#define HM_CT_LOG_ID_LEN 32
#define HM_CT_MAX_SIG 128      /* a DigitallySigned ECDSA P-256 signature is at most 76 bytes */
#define HM_CT_MAX_PROOF 64     /* hashes in one proof (a tree of 2^64 leaves) */
#define HM_CT_MAX_LOGS 32
#define HM_CT_MAX_CHAIN 10     /* certificates in one chain */
#define HM_CT_REASON_LEN 160

enum hm_ct_result {
	HM_CT_OK = 0,            /* valid chain, valid SCT from a known log, inclusion proven */
	HM_CT_MALFORMED,         /* the chain or the evidence could not be parsed */
	HM_CT_CHAIN_INVALID,     /* X509_verify_cert refused the chain (x509_error says why) */
	HM_CT_SCT_MISSING,       /* no embedded SCT */
	HM_CT_SCT_UNKNOWN_LOG,   /* SCTs, but none from a log we know */
	HM_CT_SCT_BAD_SIGNATURE, /* an SCT names a known log but is invalid: its signature does
				  * not verify (or it is dated after the verification time) */
	HM_CT_NO_EVIDENCE,       /* a valid SCT, but no STH and inclusion proof from its log */
	HM_CT_STH_BAD_SIGNATURE, /* the STH is not signed by the log */
	HM_CT_STH_INCONSISTENT,  /* the STH does not extend the latest one we verified: two views */
	HM_CT_STALE_EVIDENCE,    /* the consistency proof starts from an STH that is no longer our latest */
	HM_CT_INCLUSION_FAILED,  /* the inclusion proof does not prove the certificate in the STH */
	HM_CT_RESULT_COUNT
};

/* A signed tree head (RFC 6962 3.5) as served by get-sth. */
struct hm_ct_sth {
	uint64_t tree_size;
	uint64_t timestamp; /* ms since the epoch */
	hm_merkle_hash root;
	uint8_t sig[HM_CT_MAX_SIG]; /* the DigitallySigned struct, as served */
	size_t sig_len;
};

/* What a log said about one certificate: an STH, the inclusion proof of the
 * certificate's MerkleTreeLeaf in it (get-proof-by-hash), and the
 * consistency proof from the latest STH we hold for that log to this one
 * (get-sth-consistency; consistency_from = that STH's tree size, 0 if we
 * hold none). */
struct hm_ct_evidence {
	uint8_t log_id[HM_CT_LOG_ID_LEN];
	struct hm_ct_sth sth;
	uint64_t leaf_index;
	size_t inclusion_len;
	hm_merkle_hash inclusion[HM_CT_MAX_PROOF];
	uint64_t consistency_from;
	size_t consistency_len;
	hm_merkle_hash consistency[HM_CT_MAX_PROOF];
};

struct hm_ct_verdict {
	enum hm_ct_result result;
	int x509_error;                    /* X509_V_ERR_* for HM_CT_CHAIN_INVALID, else 0 */
	uint64_t time;                     /* the agreed verification time (s since the epoch) */
	uint8_t cert_digest[32];           /* SHA-256 of the leaf certificate's DER, zeros if none */
	uint8_t log_id[HM_CT_LOG_ID_LEN];  /* the log that decided, zeros if none */
	uint64_t tree_size;                /* the STH the inclusion was checked against */
	hm_merkle_hash root;
	uint64_t leaf_index;
	/* Built only from this module's own words and numbers (never from
	 * OpenSSL's error strings, which differ between versions), so it is
	 * as deterministic as the rest. */
	char reason[HM_CT_REASON_LEN];
};

/* The canonical encoding: "HMCT", version 1, result, x509_error (int32),
 * time, cert_digest, log_id, tree_size, root, leaf_index (integers big
 * endian), reason length (u16) and reason bytes.  The encoding is at most
 * HM_CT_VERDICT_MAX bytes. */
#define HM_CT_VERDICT_FIXED (4 + 1 + 1 + 4 + 8 + 32 + HM_CT_LOG_ID_LEN + 8 + 32 + 8 + 2)
#define HM_CT_VERDICT_MAX (HM_CT_VERDICT_FIXED + HM_CT_REASON_LEN)

struct hm_ct;

/* A verifier with an empty trust store and no logs; NULL on allocation failure. */
struct hm_ct *hm_ct_new(void);
void hm_ct_free(struct hm_ct *ct);

/* Trust anchors: every certificate in a PEM file or buffer. */
int hm_ct_add_trust_file(struct hm_ct *ct, const char *path, char *err, size_t errlen);
int hm_ct_add_trust_pem(struct hm_ct *ct, const char *pem, size_t len, char *err, size_t errlen);

/* A log: its ECDSA P-256 public key (PEM SubjectPublicKeyInfo).  Its log id is
 * the SHA-256 of the key's DER; when expected_id is given it must match. */
int hm_ct_add_log_pem(struct hm_ct *ct, const char *name, const char *pem, size_t len,
		      const uint8_t *expected_id, char *err, size_t errlen);
int hm_ct_add_log_file(struct hm_ct *ct, const char *name, const char *path,
		       const uint8_t *expected_id, char *err, size_t errlen);
/* The log id of the i-th log added (for tests and the CLI); -1 past the end. */
int hm_ct_log_id(const struct hm_ct *ct, size_t i, uint8_t id[HM_CT_LOG_ID_LEN]);

/* The verdict on a PEM chain (leaf first, then intermediates) at `time`,
 * with the evidence of zero or more logs.  Always fills v; returns v->result. */
enum hm_ct_result hm_ct_check(struct hm_ct *ct, const char *chain_pem, size_t len, uint64_t time,
			      const struct hm_ct_evidence *ev, size_t n_ev, struct hm_ct_verdict *v);

/* Offer an STH on its own (a monitor's periodic get-sth): signature and
 * consistency with our latest are checked and, if both hold, it becomes the
 * latest.  Returns HM_CT_OK, HM_CT_STH_BAD_SIGNATURE, HM_CT_STH_INCONSISTENT,
 * HM_CT_STALE_EVIDENCE or HM_CT_MALFORMED (unknown log) and fills v. */
enum hm_ct_result hm_ct_observe_sth(struct hm_ct *ct, const uint8_t log_id[HM_CT_LOG_ID_LEN],
				    const struct hm_ct_sth *sth, uint64_t consistency_from,
				    const hm_merkle_hash *proof, size_t proof_len,
				    struct hm_ct_verdict *v);

/* The latest verified STH of a log; -1 for an unknown log, 1 when we have none yet. */
int hm_ct_latest_sth(const struct hm_ct *ct, const uint8_t log_id[HM_CT_LOG_ID_LEN],
		     struct hm_ct_sth *out);

/* The MerkleTreeLeaf hash (RFC 6962 3.4, 2.1) under which a log holds the
 * leaf certificate of this chain with the embedded SCT of this log: the
 * precert entry built from the leaf's TBSCertificate without its SCT list and
 * the issuer's key hash.  The input to get-proof-by-hash. */
int hm_ct_leaf_hash(const char *chain_pem, size_t len, const uint8_t log_id[HM_CT_LOG_ID_LEN],
		    hm_merkle_hash out, char *err, size_t errlen);

/* The verdict's canonical encoding; returns its length, 0 if cap is short. */
size_t hm_ct_verdict_encode(const struct hm_ct_verdict *v, uint8_t *out, size_t cap);
/* Its inverse; -1 for anything encode could not have produced. */
int hm_ct_verdict_decode(const uint8_t *buf, size_t len, struct hm_ct_verdict *v);
const char *hm_ct_result_name(enum hm_ct_result r);

/* The evidence's canonical encoding, to carry it inside an operation:
 * "HMCE", version 1, log_id, tree_size, timestamp, root, sig_len (u16), sig,
 * leaf_index, inclusion_len (u8), hashes, consistency_from,
 * consistency_len (u8), hashes; integers big endian.  encode returns the
 * length (0 if cap is short); decode returns the bytes it used, or -1 for
 * anything encode could not have produced. */
#define HM_CT_EVIDENCE_MAX (4 + 1 + HM_CT_LOG_ID_LEN + 8 + 8 + 32 + 2 + HM_CT_MAX_SIG + 8 + 1 + \
			    HM_CT_MAX_PROOF * 32 + 8 + 1 + HM_CT_MAX_PROOF * 32)
size_t hm_ct_evidence_encode(const struct hm_ct_evidence *ev, uint8_t *out, size_t cap);
long hm_ct_evidence_decode(const uint8_t *buf, size_t len, struct hm_ct_evidence *ev);

/* The per-log state (latest STHs) for snapshots: sorted by log id, so equal
 * states encode equally.  restore refuses unknown logs and bad encodings. */
int hm_ct_state_snapshot(const struct hm_ct *ct, uint8_t **buf, size_t *len);
int hm_ct_state_restore(struct hm_ct *ct, const uint8_t *buf, size_t len);

/* Does this STH carry a valid signature of this (known) log? */
bool hm_ct_sth_signature_ok(const struct hm_ct *ct, const uint8_t log_id[HM_CT_LOG_ID_LEN],
			    const struct hm_ct_sth *sth);

#endif /* HM_CT_H */
