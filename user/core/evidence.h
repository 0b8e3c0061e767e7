/* SPDX-License-Identifier: MIT */
/*
 * Equivocation proofs: two messages signed by one replica for the same
 * (type, view, seq) with different digests.  Anyone holding the replica's
 * public key can check one, so a replica that caught an equivocation can
 * hand the proof to the others and they block the same sender without
 * having seen either message themselves.
 *
 * A proof carries the two signed headers (bytes [0, 64) and the signature,
 * 128 bytes each); the MAC is left out, it only ever meant something to the
 * link it crossed.
 *
 *   offset  size  field
 *        0     4  magic "HMEV" (0x484d4556), big-endian
 *        4     1  version HM_EVIDENCE_VERSION
 *        5     3  zero
 *        8   128  first message's header bytes [0, 128): signed part + sig
 *      136   128  second message's, likewise
 *
 * This module is the format and the check; user/replica/node.c builds proofs,
 * sends them as HM_MSG_EVIDENCE and checks the ones it receives
 * (docs/fault-detection.md, "Proof distribution").
 */
#ifndef HM_EVIDENCE_H
#define HM_EVIDENCE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"

#define HM_EVIDENCE_MAGIC 0x484d4556u /* "HMEV" */
#define HM_EVIDENCE_VERSION 1
#define HM_EVIDENCE_RECORD 128
#define HM_EVIDENCE_LEN (8 + 2 * HM_EVIDENCE_RECORD)

enum hm_evidence_error {
	HM_EVIDENCE_OK = 0,
	HM_EVIDENCE_TRUNCATED,      /* not HM_EVIDENCE_LEN bytes */
	HM_EVIDENCE_BAD_MAGIC,      /* magic, version or the zero bytes */
	HM_EVIDENCE_BAD_HEADER,     /* a record is not a HyperMesh header */
	HM_EVIDENCE_NOT_CONFLICTING,/* another type, sender, view or seq, or the same digest */
	HM_EVIDENCE_UNKNOWN_SENDER, /* sender not a replica */
	HM_EVIDENCE_BAD_SIGNATURE,  /* a signature does not verify (or is not canonical) */
};

const char *hm_evidence_error_name(enum hm_evidence_error e);

/* Fill a 128-byte record from the fields of a signed message with an empty
 * or digest-bound payload (votes: payload_len 0). */
void hm_evidence_record(uint8_t out[HM_EVIDENCE_RECORD], uint8_t type, uint32_t sender,
			uint32_t payload_len, uint64_t view, uint64_t seq,
			const uint8_t digest[HM_DIGEST_LEN], const uint8_t sig[HM_SIG_LEN]);

/* A proof from two headers (each at least HM_EVIDENCE_RECORD bytes, e.g. a
 * struct hm_hdr).  Returns HM_EVIDENCE_LEN, 0 when cap is too small. */
size_t hm_evidence_build(uint8_t *out, size_t cap, const void *first, const void *second);

/*
 * Check a proof against the replicas' public keys (pks[0..n)).  On
 * HM_EVIDENCE_OK *culprit is the equivocating replica, and *type, *view and
 * *seq (may be NULL) say where.
 */
enum hm_evidence_error hm_evidence_check(const uint8_t *buf, size_t len, uint32_t n,
					 const uint8_t (*pks)[HM_PUBKEY_LEN], uint32_t *culprit,
					 uint8_t *type, uint64_t *view, uint64_t *seq);

#endif /* HM_EVIDENCE_H */
