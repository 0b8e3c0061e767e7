/* SPDX-License-Identifier: MIT */
/*
 * Certificate Transparency verdicts as a replicated service (an hm_service,
 * routed by the service mux on opcodes 0x30..0x3f).
 *
 * Operations (integers big endian):
 *
 *   CT_CHECK  0x30, time T (u64, s since the epoch), chain length (u32),
 *             chain (PEM, or concatenated DER certificates), evidence count
 *             (u8, at most HM_CT_MAX_LOGS), that many hm_ct_evidence_encode()
 *             encodings.  Nothing may follow.
 *             Result: the canonical verdict (hm_ct_verdict_encode) of
 *             hm_ct_check at T.  A malformed op gets a verdict too
 *             (HM_CT_MALFORMED, the reason says what is wrong), so the
 *             client always receives a decodable result.
 *   CT_LATEST 0x31, log id (32 bytes).  Result: "HMCL", status (u8, see
 *             enum hm_ct_latest_status), tree size (u64) of the STH the
 *             cluster holds for that log (0 if none): the `from` a client
 *             needs to fetch a consistency proof the cluster can check.
 *
 * Determinism: execute() reads no clock and does no I/O; the only state is
 * the latest verified STH per log (hm_ct_state_snapshot), which is also what
 * digest(), snapshot() and restore() cover.  The wall clock is consulted only
 * by check(), which decides this replica's vote on a CT_CHECK whose T is too
 * far from now, never a result.
 */
#ifndef HM_CT_SERVICE_H
#define HM_CT_SERVICE_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "service/ct/ct.h"
#include "core/service.h"

#define HM_CT_OP_FIRST 0x30
#define HM_CT_OP_LAST 0x3f
#define HM_CT_OP_CHECK 0x30
#define HM_CT_OP_LATEST 0x31

#define HM_CT_CHECK_HDR (1 + 8 + 4)   /* opcode, T, chain length */
#define HM_CT_LATEST_RESULT_LEN (4 + 1 + 8)
#define HM_CT_DEFAULT_SKEW_S 300

enum hm_ct_latest_status {
	HM_CT_LATEST_NONE = 0,     /* a known log, no STH held yet */
	HM_CT_LATEST_HAVE = 1,     /* tree size is that of the STH held */
	HM_CT_LATEST_UNKNOWN = 2,  /* not a configured log */
	HM_CT_LATEST_BAD_OP = 3,   /* the op is malformed */
};

/* The replica's wall clock in seconds since the epoch (tests pass a fake). */
typedef uint64_t (*hm_ct_clock_fn)(void *ctx);

/* A service over `ct` (owned by the service from now on, also on failure).
 * max_skew_s: check() refuses a CT_CHECK whose T is further than this from
 * clock(). */
int hm_ct_service_new(struct hm_service *svc, struct hm_ct *ct, uint32_t max_skew_s,
		      hm_ct_clock_fn clock, void *clock_ctx);

/* A verifier holding the configured trust store and logs (ct: section).
 * Returns NULL with err filled on a bad file, naming the key:
 *   "ct.logs[1].key: log b: the same key as log a" */
struct hm_ct *hm_ct_from_config(const struct hm_ct_config *cc, char *err, size_t errlen);

/* Load the ct: section's files as the replicas will (the configuration
 * loader only parses them): 0, or -1 with err naming the file, the line and
 * the key, as the loader's own errors do:
 *   "cluster.yaml:11: ct.logs[1].key: log b: the same key as log a"
 * 0 when cfg has no ct: section. */
int hm_ct_config_check(const struct hm_config *cfg, char *err, size_t errlen);

/* Encode operations; 0 if cap is short or an argument is out of range. */
size_t hm_ct_op_check(uint8_t *out, size_t cap, uint64_t time, const void *chain, size_t chain_len,
		      const struct hm_ct_evidence *ev, size_t n_ev);
size_t hm_ct_op_latest(uint8_t *out, size_t cap, const uint8_t log_id[HM_CT_LOG_ID_LEN]);
/* Decode a CT_LATEST result; -1 if it is not one. */
int hm_ct_latest_decode(const uint8_t *buf, size_t len, enum hm_ct_latest_status *status,
			uint64_t *tree_size);

/* A chain as PEM: PEM input is copied, concatenated DER certificates are
 * converted (at most HM_CT_MAX_CHAIN).  Returns a malloc'd NUL-terminated
 * string, or NULL when the bytes are neither. */
char *hm_ct_chain_pem(const void *chain, size_t len, size_t *pem_len);

#endif /* HM_CT_SERVICE_H */
