/* SPDX-License-Identifier: MIT */
/*
 * Keys, signatures, digests and per-link MACs (libsodium + hm_siphash.h).
 *
 * Long-term identity: an Ed25519 key pair per replica and per client.
 * Link keys: for every ordered pair (a -> b) a 16-byte SipHash-2-4 key derived
 * with libsodium's key exchange (crypto_kx) from the two identities' Ed25519
 * keys converted to X25519.  The lower id plays crypto_kx's "client" role, so
 * both ends derive the same two keys without talking to each other.
 */
#ifndef HM_CRYPTO_H
#define HM_CRYPTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"

#define HM_SECKEY_LEN 64   /* libsodium Ed25519 secret key (seed || pk) */
#define HM_LINK_KEY_LEN 16 /* SipHash-2-4 key */

struct hm_keypair {
	uint8_t pk[HM_PUBKEY_LEN];
	uint8_t sk[HM_SECKEY_LEN];
};

/* The two directional MAC keys shared with one peer. */
struct hm_link_keys {
	uint8_t tx[HM_LINK_KEY_LEN]; /* MAC on messages we send to the peer */
	uint8_t rx[HM_LINK_KEY_LEN]; /* MAC on messages the peer sends us */
};

/* Must be called once before any other function (sodium_init). */
int hm_crypto_init(void);

/* Key pairs and key files (hex text, see config.h). */
int hm_keypair_generate(struct hm_keypair *kp);
/* Deterministic key pair from a 32-byte seed (the simulator's replays). */
int hm_keypair_from_seed(struct hm_keypair *kp, const uint8_t seed[32]);
int hm_keypair_write(const struct hm_keypair *kp, const char *base_path, char *err, size_t errlen);
int hm_keypair_read(const char *key_path, struct hm_keypair *kp, char *err, size_t errlen);

/* Derive both link keys between us (my_id, mine) and a peer (peer_id, peer_pk).
 * Returns -1 when the peer's key is not a valid Ed25519 point. */
int hm_link_keys_derive(uint32_t my_id, const struct hm_keypair *mine, uint32_t peer_id,
			const uint8_t peer_pk[HM_PUBKEY_LEN], struct hm_link_keys *out);

/* The two directional AEAD keys (XChaCha20-Poly1305) shared with one peer,
 * for sealed payloads (common/link_crypt.h): from the same crypto_kx session
 * as the MAC keys, through crypto_kdf under their own context, so never
 * equal to or derivable from a MAC key. */
#define HM_AEAD_KEY_LEN 32
struct hm_link_aead_keys {
	uint8_t tx[HM_AEAD_KEY_LEN]; /* seals what we send to the peer */
	uint8_t rx[HM_AEAD_KEY_LEN]; /* opens what the peer sends us */
};
int hm_link_aead_derive(uint32_t my_id, const struct hm_keypair *mine, uint32_t peer_id,
			const uint8_t peer_pk[HM_PUBKEY_LEN], struct hm_link_aead_keys *out);

/* BLAKE2b-256. */
void hm_digest(const void *data, size_t len, uint8_t out[HM_DIGEST_LEN]);

/* Ed25519 over the signed part of a message header: bytes [0, 64) with the
 * flags field taken as zero. */
void hm_sign_header(struct hm_hdr *hdr, const struct hm_keypair *kp);
bool hm_verify_header(const struct hm_hdr *hdr, const uint8_t pk[HM_PUBKEY_LEN]);

/* Plain Ed25519 (used by certificates and the test vectors). */
void hm_sign(const void *msg, size_t len, const uint8_t sk[HM_SECKEY_LEN], uint8_t sig[HM_SIG_LEN]);
bool hm_verify(const void *msg, size_t len, const uint8_t sig[HM_SIG_LEN], const uint8_t pk[HM_PUBKEY_LEN]);

/* True when the signature's S half is below the group order L: the same
 * check the XDP program makes before a packet reaches userspace. */
bool hm_sig_is_canonical(const uint8_t sig[HM_SIG_LEN]);

/* Per-link MAC over bytes [0, 128) of a message, stored in hdr->mac. */
void hm_mac_stamp(struct hm_hdr *hdr, const uint8_t key[HM_LINK_KEY_LEN]);
bool hm_mac_verify(const struct hm_hdr *hdr, const uint8_t key[HM_LINK_KEY_LEN]);

#endif /* HM_CRYPTO_H */
