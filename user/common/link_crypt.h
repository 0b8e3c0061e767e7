/* SPDX-License-Identifier: MIT */
/*
 * The link layer between the core and the socket: a replica-to-replica
 * message's payload sealed with the link's AEAD key and/or compressed with
 * zstd, the fixed header left readable (docs/wire-format.md, "Sealed
 * payloads"; safety in docs/protocol.md, "Encrypted and compressed links").
 *
 * Sending: the core's message (plain header, plain payload) goes through
 * hm_link_seal, then the MAC is stamped over the result's header.
 * Receiving: after the MAC verified, hm_link_open turns the wire message
 * back into the core's message: the flags ENCRYPTED and COMPRESSED cleared
 * and payload_len restored (the signature covers the plain payload_len).
 *
 * Wire payload, outermost first:
 *   ENCRYPTED:  24-byte random nonce, ciphertext, 16-byte Poly1305 tag;
 *               AD = the wire header's bytes [0, 128).
 *   COMPRESSED: u32 big-endian plain payload length, then one zstd frame.
 * Compression is applied first, then encryption.
 *
 * Pure functions (no sockets, no clocks), so the simulator and the fuzzer
 * run them as the daemon does.
 */
#ifndef HM_LINK_CRYPT_H
#define HM_LINK_CRYPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"
#include "common/crypto.h"

#define HM_SEAL_NONCE_LEN 24 /* XChaCha20: random nonces never collide in practice */
#define HM_SEAL_TAG_LEN 16
#define HM_SEAL_OVERHEAD (HM_SEAL_NONCE_LEN + HM_SEAL_TAG_LEN) /* 40 bytes */
#define HM_COMPRESS_PREFIX_LEN 4
/* Payloads shorter than this are not worth a zstd frame. */
#define HM_COMPRESS_MIN 256
#define HM_ZSTD_LEVEL 1

struct hm_link_policy {
	bool encrypt;  /* seal payloads we send; refuse plaintext payloads */
	bool compress; /* compress payloads of HM_COMPRESS_MIN bytes or more */
};

/* The message the core built (msg, len: header and payload, flags free of
 * ENCRYPTED and COMPRESSED) as it goes on the wire, into out (cap bytes).
 * A message with no payload, or with neither option, is copied unchanged;
 * a payload that does not shrink is not compressed.  Returns the wire
 * length (up to len + HM_SEAL_OVERHEAD), 0 when out is too small.  The MAC
 * is stamped afterwards, over the returned header. */
size_t hm_link_seal(const uint8_t *msg, size_t len, const struct hm_link_policy *pol,
		    const uint8_t key[HM_AEAD_KEY_LEN], uint8_t *out, size_t cap);

/* The wire message (wire, len: decoded, its MAC verified) as the core must
 * see it, into out (cap bytes, at least max_len).  max_len bounds the plain
 * message (header + decompressed payload): a larger one is refused before
 * any byte is decompressed.  When pol->encrypt, a payload without
 * ENCRYPTED is refused.  Returns the plain length, or 0 with *why set:
 * bad_seal, not_encrypted, bad_compression or inflated_oversize. */
size_t hm_link_open(const uint8_t *wire, size_t len, const struct hm_link_policy *pol,
		    const uint8_t key[HM_AEAD_KEY_LEN], size_t max_len, uint8_t *out, size_t cap,
		    enum hm_drop_reason *why);

#endif /* HM_LINK_CRYPT_H */
