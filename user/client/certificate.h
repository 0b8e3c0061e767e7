/* SPDX-License-Identifier: MIT */
/*
 * Consensus certificates: one result of one op, signed by 2f+1 replicas
 * through their batch roots (docs/protocol.md, "One signature per batch of
 * replies").  A replica signs once per executed batch the statement
 * (replica, exec_seq, batch size, Merkle root over the batch's reply
 * leaves); the certificate carries the result, the leaf's Merkle path to
 * that root and 2f+1 replicas' signatures over the same statement.  The
 * path binds (timestamp, client, exec_seq, op digest, RESULT, result) to
 * the root, so 2f+1 valid signatures prove that at least f+1 correct
 * replicas executed that very op to that result at exec_seq.  One module for every service: the DNS
 * answers (hmctl dns query --cert) and the CT verdicts (hmctl cert check
 * --cert) are collected, written and checked here; the service-specific
 * check of the result (recomputing the canon digest, decoding the verdict)
 * is the caller's.  Collection runs inside the client transport
 * (transport.h) when a call asks for a certificate; it is the only place a
 * client verifies reply signatures.
 *
 * Two JSON forms (hex strings for bytes), told apart by "format":
 *   HM_CERT_V1 (DNS answers, any op), "version": 2:
 *   { "version": 2, "client": ID, "timestamp": TS, "exec_seq": S,
 *     "op": HEX, "op_digest": HEX, "result": HEX,
 *     "batch": { "size": N, "index": I, "path": [ HEX, ... ], "root": HEX },
 *     "signatures": [ { "replica": I, "signature": HEX (64 bytes) }, ... ] }
 *   HM_CERT_CT (CT verdicts, docs/ct.md):
 *   { "format": "hypermesh-ct-certificate/2", "cluster": { "n": N, "f": F },
 *     "op_digest": HEX, "client": ID, "request": TS, "exec_seq": S,
 *     "verdict": HEX (the result), "summary": { for readers, checked by the caller },
 *     "batch": { as above },
 *     "replies": [ { "replica": I, "signature": HEX (64 bytes) }, ... ] }
 * The forms before (version 1, hypermesh-ct-certificate/1: signed reply
 * headers) are refused with a message saying so.
 */
#ifndef HM_CERTIFICATE_H
#define HM_CERTIFICATE_H
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/reply_proof.h"

#define HM_CERT_VERSION 2

struct hm_cert_reply {
	bool have;
	struct hm_reply_proof proof;   /* checked: path and signature */
	uint8_t digest[HM_DIGEST_LEN]; /* of the reply body */
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
/* Offer a reply datagram (any datagram: others are ignored).  Its batch
 * proof (path and signature) is checked against the sender's key in cfg.
 * True once 2f+1 distinct replicas sent validly proven replies with the same
 * body over the same batch statement (exec_seq, size, root). */
bool hm_cert_add(struct hm_cert *c, const struct hm_config *cfg, const uint8_t *buf, size_t len);
enum hm_cert_format {
	HM_CERT_V1,
	HM_CERT_CT,
};

#define HM_CERT_CT_FORMAT "hypermesh-ct-certificate/2"
#define HM_CERT_CT_FORMAT_V1 "hypermesh-ct-certificate/1" /* refused: see above */

/* How many replicas signed the winning result (0 before the quorum). */
uint32_t hm_cert_signers(const struct hm_cert *c, const struct hm_config *cfg);
/* The certificate as JSON (only after hm_cert_add returned true): V1. */
json_t *hm_cert_to_json(const struct hm_cert *c, const struct hm_config *cfg);
/* In either form; summary (HM_CERT_CT only, may be NULL) is stolen. */
json_t *hm_cert_to_json_as(const struct hm_cert *c, const struct hm_config *cfg,
			   enum hm_cert_format fmt, json_t *summary);
/* The form a certificate is written in, by its "format" field. */
enum hm_cert_format hm_cert_format_of(const json_t *cert);
/* Check a certificate offline against the cluster's keys: the batch path
 * leads from the leaf of (timestamp, client, exec_seq, op digest, RESULT,
 * result) to the root, and 2f+1 distinct replicas validly signed (replica,
 * exec_seq, size, root).  On success returns 0 and the
 * op and result (malloc'd) for the caller's own checks; -1 and a reason. */
int hm_cert_verify(const json_t *cert, const struct hm_config *cfg, uint8_t **op, size_t *op_len,
		   uint8_t **result, size_t *result_len, char *err, size_t errlen);
/* The same in form fmt (a certificate in another form is refused).  An
 * HM_CERT_CT certificate carries only the op's digest: *op is NULL. */
int hm_cert_verify_as(const json_t *cert, const struct hm_config *cfg, enum hm_cert_format fmt,
		      uint8_t **op, size_t *op_len, uint8_t **result, size_t *result_len,
		      char *err, size_t errlen);
#endif /* HM_CERTIFICATE_H */
