/* SPDX-License-Identifier: MIT */
/*
 * Consensus certificates: 2f+1 replies from distinct replicas, each with its
 * Ed25519-signed header, over the same result of one op.  Since a reply's
 * header signs the digest of its payload (client id, executed sequence,
 * result), 2f+1 valid headers prove that at least f+1 correct replicas
 * executed the op to that result.  Generic: the DNS answers (hmctl dns
 * query --cert) and the CT verdicts use it; the service-specific check of the
 * result (e.g. recomputing the canon digest) is the caller's.
 *
 * JSON form (hex strings for bytes):
 *   { "version": 1, "client": ID, "timestamp": TS, "exec_seq": S,
 *     "op": HEX, "op_digest": HEX, "result": HEX,
 *     "signatures": [ { "replica": I, "header": HEX (the first 128 header
 *                       bytes: fields, digest, signature) }, ... ] }
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
/* The certificate as JSON (only after hm_cert_add returned true). */
json_t *hm_cert_to_json(const struct hm_cert *c, const struct hm_config *cfg);
/* Check a certificate offline against the cluster's keys: 2f+1 distinct
 * replicas, each header a REPLY for (client, timestamp) over the digest of
 * (client, exec_seq, result), validly signed.  On success returns 0 and the
 * op and result (malloc'd) for the caller's own checks; -1 and a reason. */
int hm_cert_verify(const json_t *cert, const struct hm_config *cfg, uint8_t **op, size_t *op_len,
		   uint8_t **result, size_t *result_len, char *err, size_t errlen);
#endif /* HM_CERTIFICATE_H */
