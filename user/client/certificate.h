/* SPDX-License-Identifier: MIT */
/*
 * Consensus certificates: 2f+1 replies from distinct replicas, each with its
 * Ed25519-signed header, over the same result of one op.  Since a reply's
 * header signs the digest of its payload (client id, executed sequence,
 * the op's digest, status RESULT, result), 2f+1 valid headers prove that at
 * least f+1 correct replicas executed that very op to that result.  One module for every service: the DNS
 * answers (hmctl dns query --cert) and the CT verdicts (hmctl cert check
 * --cert) are collected, written and checked here; the service-specific
 * check of the result (recomputing the canon digest, decoding the verdict)
 * is the caller's.  Collection runs inside the client transport
 * (transport.h) when a call asks for a certificate.
 *
 * Two JSON forms (hex strings for bytes), told apart by "format":
 *   HM_CERT_V1 (DNS answers, any op):
 *   { "version": 1, "client": ID, "timestamp": TS, "exec_seq": S,
 *     "op": HEX, "op_digest": HEX, "result": HEX,
 *     "signatures": [ { "replica": I, "header": HEX (the first 128 header
 *                       bytes: fields, digest, signature) }, ... ] }
 *   HM_CERT_CT (CT verdicts, docs/ct.md):
 *   { "format": "hypermesh-ct-certificate/1", "cluster": { "n": N, "f": F },
 *     "op_digest": HEX, "client": ID, "request": TS, "exec_seq": S,
 *     "verdict": HEX (the result), "summary": { for readers, checked by the caller },
 *     "replies": [ { "replica": I, "header": HEX (64 signed bytes),
 *                    "signature": HEX (64 bytes) }, ... ] }
 */
#ifndef HM_CERTIFICATE_H
#define HM_CERTIFICATE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

#define HM_CERT_HDR_LEN 128 /* header bytes kept: up to and including the signature */

struct hm_cert_reply {
	bool have;
	uint8_t hdr[HM_CERT_HDR_LEN];
	uint8_t digest[HM_DIGEST_LEN]; /* of the payload */
	uint64_t exec_seq;
	uint8_t *result;
	size_t result_len;
};

struct hm_cert {
	uint32_t client;
	uint64_t timestamp;              /* the request's */
	uint8_t *op;
	size_t op_len;
	uint8_t op_digest[HM_DIGEST_LEN]; /* the request digest replies must name */
	struct hm_cert_reply replies[HM_MAX_REPLICAS];
	int winner;                      /* a reply of the 2f+1 matching ones, -1 until then */
};

/* Start collecting for the request (client, timestamp) carrying op. */
int hm_cert_init(struct hm_cert *c, uint32_t client, uint64_t timestamp, const void *op,
		 size_t op_len);
void hm_cert_free(struct hm_cert *c);
/* Offer a reply datagram (any datagram: others are ignored).  Its signature
 * is checked against the sender's key in cfg.  True once 2f+1 distinct
 * replicas sent validly signed replies with the same payload. */
bool hm_cert_add(struct hm_cert *c, const struct hm_config *cfg, const uint8_t *buf, size_t len);
enum hm_cert_format {
	HM_CERT_V1,
	HM_CERT_CT,
};

#define HM_CERT_CT_FORMAT "hypermesh-ct-certificate/1"

/* How many replicas signed the winning result (0 before the quorum). */
uint32_t hm_cert_signers(const struct hm_cert *c, const struct hm_config *cfg);
/* The certificate as JSON (only after hm_cert_add returned true): V1. */
json_t *hm_cert_to_json(const struct hm_cert *c, const struct hm_config *cfg);
/* In either form; summary (HM_CERT_CT only, may be NULL) is stolen. */
json_t *hm_cert_to_json_as(const struct hm_cert *c, const struct hm_config *cfg,
			   enum hm_cert_format fmt, json_t *summary);
/* The form a certificate is written in, by its "format" field. */
enum hm_cert_format hm_cert_format_of(const json_t *cert);
/* Check a certificate offline against the cluster's keys: 2f+1 distinct
 * replicas, each header a REPLY (wire version 2) for (client, timestamp)
 * over the digest of (client, exec_seq, op digest, RESULT, result), validly
 * signed.  On success returns 0 and the
 * op and result (malloc'd) for the caller's own checks; -1 and a reason. */
int hm_cert_verify(const json_t *cert, const struct hm_config *cfg, uint8_t **op, size_t *op_len,
		   uint8_t **result, size_t *result_len, char *err, size_t errlen);
/* The same in form fmt (a certificate in another form is refused).  An
 * HM_CERT_CT certificate carries only the op's digest: *op is NULL. */
int hm_cert_verify_as(const json_t *cert, const struct hm_config *cfg, enum hm_cert_format fmt,
		      uint8_t **op, size_t *op_len, uint8_t **result, size_t *result_len,
		      char *err, size_t errlen);
#endif /* HM_CERTIFICATE_H */
