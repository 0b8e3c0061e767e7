/* SPDX-License-Identifier: MIT */
/*
 * A memo of signature results: Ed25519 (crypto.c), and through
 * hm_sig_memo_verified() with a tag of their own, DNSSEC RRSIGs (the DNS
 * service's rule (a), dns_chain.c, whose tags begin with another domain
 * byte).
 *
 * Ed25519 signing (RFC 8032, libsodium) is deterministic and verification is
 * a pure function of (key, signature, message), so a result computed once
 * can be reused with no change in behaviour.  The repeats are common: a
 * replica signs the same header again on every re-send (retransmission,
 * STATUS answers, a VIEW-CHANGE sent again), and verifies the same stored
 * signatures again whenever it validates a certificate (VIEW-CHANGE,
 * NEW-VIEW, checkpoint proofs).  In the simulator, where every replica
 * shares one process, it also spares each replica verifying what another
 * already verified.  Measured on the simulator's randomized runs: 60-72% of
 * verifications and 9-63% of signatures were repeats.
 *
 * Entries are tagged with BLAKE2b-256 of the full input, so a hit needs a
 * 256-bit collision; only successful verifications are remembered, so a
 * forged signature is checked (and fails) every time.  Fixed size, direct
 * mapped, one lock: bounded memory, safe from any thread.
 */
#ifndef HM_SIG_MEMO_H
#define HM_SIG_MEMO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"

#define HM_SIG_MEMO_SECKEY_LEN 64 /* libsodium Ed25519 secret key (seed || pk) */

/* The memo key of one Ed25519 operation: signing under a secret key (the
 * whole key, not its public half: a test that pairs one key's public half
 * with another's secret must get the other's signature), or verifying a
 * signature under a public key; then the message. */
struct hm_sig_memo_key {
	uint8_t tag[HM_DIGEST_LEN];
};

void hm_sig_memo_key_sign(struct hm_sig_memo_key *k, const uint8_t sk[HM_SIG_MEMO_SECKEY_LEN],
			  const void *msg, size_t len);
void hm_sig_memo_key_verify(struct hm_sig_memo_key *k, const uint8_t pk[HM_PUBKEY_LEN],
			    const uint8_t sig[HM_SIG_LEN], const void *msg, size_t len);

/* Signatures made before: true and the signature when this key was signed. */
bool hm_sig_memo_signed(const struct hm_sig_memo_key *k, uint8_t sig[HM_SIG_LEN]);
void hm_sig_memo_remember_signature(const struct hm_sig_memo_key *k,
				    const uint8_t sig[HM_SIG_LEN]);

/* Verifications that succeeded before. */
bool hm_sig_memo_verified(const struct hm_sig_memo_key *k);
void hm_sig_memo_remember_verified(const struct hm_sig_memo_key *k);

/* Hits and lookups since the process started (for the benchmarks). */
void hm_sig_memo_stats(uint64_t *lookups, uint64_t *hits);

#endif /* HM_SIG_MEMO_H */
