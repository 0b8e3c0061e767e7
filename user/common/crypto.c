// SPDX-License-Identifier: MIT
/*
 * Keys, signatures, digests and per-link MACs: libsodium for Ed25519, X25519
 * key exchange and BLAKE2b; hm_siphash.h for the SipHash-2-4 link MAC that the
 * XDP program computes too.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "common/crypto.h"
#include "common/sig_memo.h"
#include "hm_siphash.h"
#include "common/log.h"

_Static_assert(HM_SECKEY_LEN == crypto_sign_SECRETKEYBYTES, "secret key size");
_Static_assert(HM_PUBKEY_LEN == crypto_sign_PUBLICKEYBYTES, "public key size");
_Static_assert(HM_SIG_LEN == crypto_sign_BYTES, "signature size");
_Static_assert(HM_LINK_KEY_LEN == HM_SIPHASH_KEY_LEN, "link key size");
_Static_assert(HM_LINK_KEY_LEN <= crypto_kx_SESSIONKEYBYTES, "link key from kx key");
_Static_assert(sizeof(struct hm_hdr) == HM_HDR_LEN, "header size");
_Static_assert(HM_OFF_MAC == HM_MACED_LEN, "the mac is not covered by itself");

/* Longest key file we accept: 128 hex digits, a line ending and some slack. */
#define KEYFILE_MAX 512

int hm_crypto_init(void)
{
	return sodium_init() < 0 ? -1 : 0;
}

int hm_keypair_generate(struct hm_keypair *kp)
{
	return crypto_sign_keypair(kp->pk, kp->sk) == 0 ? 0 : -1;
}

/* ---- key files ---------------------------------------------------------- */

/* Write `len` bytes as lower-case hex and a newline to `path`, atomically:
 * a temporary file in the same directory, fsync, chmod, rename. */
static int write_hex_file(const char *path, const uint8_t *bin, size_t len, mode_t mode,
			  char *err, size_t errlen)
{
	char tmp[PATH_MAX];
	char hex[2 * HM_SECKEY_LEN + 2];
	size_t hexlen;
	int fd, n;

	if (2 * len + 2 > sizeof(hex)) {
		hm_set_err(err, errlen, "%s: key too long", path);
		return -1;
	}
	n = snprintf(tmp, sizeof(tmp), "%s.tmp.XXXXXX", path);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		hm_set_err(err, errlen, "%s: path too long", path);
		return -1;
	}
	sodium_bin2hex(hex, sizeof(hex), bin, len);
	hexlen = 2 * len;
	hex[hexlen++] = '\n';

	fd = mkstemp(tmp); /* created with mode 0600 */
	if (fd < 0) {
		hm_set_err(err, errlen, "%s: cannot create temporary file: %s", path, strerror(errno));
		sodium_memzero(hex, sizeof(hex));
		return -1;
	}
	if (fchmod(fd, mode) < 0) {
		hm_set_err(err, errlen, "%s: chmod: %s", tmp, strerror(errno));
		goto fail;
	}
	for (size_t off = 0; off < hexlen;) {
		ssize_t w = write(fd, hex + off, hexlen - off);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			hm_set_err(err, errlen, "%s: write: %s", tmp, w < 0 ? strerror(errno) : "short write");
			goto fail;
		}
		off += (size_t)w;
	}
	if (fsync(fd) < 0) {
		hm_set_err(err, errlen, "%s: fsync: %s", tmp, strerror(errno));
		goto fail;
	}
	if (close(fd) < 0) {
		fd = -1;
		hm_set_err(err, errlen, "%s: close: %s", tmp, strerror(errno));
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		hm_set_err(err, errlen, "%s: rename: %s", path, strerror(errno));
		goto fail;
	}
	sodium_memzero(hex, sizeof(hex));
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	sodium_memzero(hex, sizeof(hex));
	return -1;
}

/* Read a file of exactly 2*len hex digits, optionally followed by a line ending
 * (trailing white space is tolerated, nothing else). */
static int read_hex_file(const char *path, uint8_t *out, size_t len, char *err, size_t errlen)
{
	char buf[KEYFILE_MAX + 1];
	size_t total = 0, binlen = 0;
	const char *end = NULL;
	int fd, ret = -1;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		hm_set_err(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t r = read(fd, buf + total, sizeof(buf) - 1 - total);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			hm_set_err(err, errlen, "%s: read: %s", path, strerror(errno));
			goto out;
		}
		if (r == 0)
			break;
		total += (size_t)r;
		if (total == sizeof(buf) - 1) {
			hm_set_err(err, errlen, "%s: file too long for a key file", path);
			goto out;
		}
	}
	buf[total] = '\0';

	if (sodium_hex2bin(out, len, buf, total, NULL, &binlen, &end) != 0 || binlen != len) {
		hm_set_err(err, errlen, "%s: expected %zu hex digits", path, 2 * len);
		goto out;
	}
	for (const char *p = end; p < buf + total; p++) {
		if (*p != '\n' && *p != '\r' && *p != ' ' && *p != '\t') {
			hm_set_err(err, errlen, "%s: expected %zu hex digits, found more", path, 2 * len);
			goto out;
		}
	}
	ret = 0;
out:
	if (ret)
		sodium_memzero(out, len);
	sodium_memzero(buf, sizeof(buf));
	close(fd);
	return ret;
}

int hm_keypair_from_seed(struct hm_keypair *kp, const uint8_t seed[32])
{
	return crypto_sign_seed_keypair(kp->pk, kp->sk, seed) == 0 ? 0 : -1;
}

int hm_keypair_write(const struct hm_keypair *kp, const char *base_path, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int n;

	n = snprintf(path, sizeof(path), "%s.key", base_path);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		hm_set_err(err, errlen, "%s: path too long", base_path);
		return -1;
	}
	if (write_hex_file(path, kp->sk, HM_SECKEY_LEN, 0600, err, errlen) < 0)
		return -1;

	n = snprintf(path, sizeof(path), "%s.pub", base_path);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		hm_set_err(err, errlen, "%s: path too long", base_path);
		return -1;
	}
	return write_hex_file(path, kp->pk, HM_PUBKEY_LEN, 0644, err, errlen);
}

int hm_keypair_read(const char *key_path, struct hm_keypair *kp, char *err, size_t errlen)
{
	uint8_t sk[HM_SECKEY_LEN], pk[HM_PUBKEY_LEN], sk2[HM_SECKEY_LEN];
	int ret = -1;

	if (read_hex_file(key_path, sk, sizeof(sk), err, errlen) < 0)
		return -1;

	/* libsodium's secret key is seed || pk: recompute pk from the seed. */
	if (crypto_sign_seed_keypair(pk, sk2, sk) != 0) {
		hm_set_err(err, errlen, "%s: cannot derive a key pair from the seed", key_path);
		goto out;
	}
	if (sodium_memcmp(pk, sk + crypto_sign_SEEDBYTES, HM_PUBKEY_LEN) != 0) {
		hm_set_err(err, errlen, "%s: public key half does not match the seed", key_path);
		goto out;
	}
	memcpy(kp->pk, pk, HM_PUBKEY_LEN);
	memcpy(kp->sk, sk, HM_SECKEY_LEN);
	ret = 0;
out:
	sodium_memzero(sk, sizeof(sk));
	sodium_memzero(sk2, sizeof(sk2));
	return ret;
}

/* ---- link keys ---------------------------------------------------------- */

/*
 * The crypto_kx session keys between us and a peer: rx for what the peer
 * sends us, tx for what we send.  The lower id is the client.  K(low ->
 * high) = client tx = server rx, K(high -> low) = client rx = server tx; so
 * from either end, our own role's tx key covers what we send and its rx key
 * what we receive.
 */
static int kx_session(uint32_t my_id, const struct hm_keypair *mine, uint32_t peer_id,
		      const uint8_t peer_pk[HM_PUBKEY_LEN], uint8_t rx[crypto_kx_SESSIONKEYBYTES],
		      uint8_t tx[crypto_kx_SESSIONKEYBYTES])
{
	uint8_t my_xpk[crypto_kx_PUBLICKEYBYTES], my_xsk[crypto_kx_SECRETKEYBYTES];
	uint8_t peer_xpk[crypto_kx_PUBLICKEYBYTES];
	int r = -1;

	if (my_id == peer_id)
		return -1;
	if (crypto_sign_ed25519_pk_to_curve25519(my_xpk, mine->pk) != 0 ||
	    crypto_sign_ed25519_sk_to_curve25519(my_xsk, mine->sk) != 0 ||
	    crypto_sign_ed25519_pk_to_curve25519(peer_xpk, peer_pk) != 0)
		goto out;
	if (my_id < peer_id)
		r = crypto_kx_client_session_keys(rx, tx, my_xpk, my_xsk, peer_xpk);
	else
		r = crypto_kx_server_session_keys(rx, tx, my_xpk, my_xsk, peer_xpk);
out:
	sodium_memzero(my_xsk, sizeof(my_xsk));
	return r == 0 ? 0 : -1;
}

int hm_link_keys_derive(uint32_t my_id, const struct hm_keypair *mine, uint32_t peer_id,
			const uint8_t peer_pk[HM_PUBKEY_LEN], struct hm_link_keys *out)
{
	uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
	int ret = kx_session(my_id, mine, peer_id, peer_pk, rx, tx);

	if (ret == 0) {
		memcpy(out->tx, tx, HM_LINK_KEY_LEN);
		memcpy(out->rx, rx, HM_LINK_KEY_LEN);
	}
	sodium_memzero(rx, sizeof(rx));
	sodium_memzero(tx, sizeof(tx));
	return ret;
}

/* The AEAD keys come out of crypto_kdf (keyed BLAKE2b) under their own
 * context, never the session key's bytes themselves: the SipHash key is the
 * session key's first 16 bytes, so the two keys are independent PRF outputs
 * of one secret and knowing one says nothing about the other. */
#define HM_KDF_AEAD_CONTEXT "HMlinkAE"
#define HM_KDF_AEAD_ID 1

int hm_link_aead_derive(uint32_t my_id, const struct hm_keypair *mine, uint32_t peer_id,
			const uint8_t peer_pk[HM_PUBKEY_LEN], struct hm_link_aead_keys *out)
{
	uint8_t rx[crypto_kx_SESSIONKEYBYTES], tx[crypto_kx_SESSIONKEYBYTES];
	int ret = kx_session(my_id, mine, peer_id, peer_pk, rx, tx);

	_Static_assert(crypto_kx_SESSIONKEYBYTES == crypto_kdf_KEYBYTES, "kdf master = session key");
	if (ret == 0 &&
	    (crypto_kdf_derive_from_key(out->tx, HM_AEAD_KEY_LEN, HM_KDF_AEAD_ID,
					HM_KDF_AEAD_CONTEXT, tx) != 0 ||
	     crypto_kdf_derive_from_key(out->rx, HM_AEAD_KEY_LEN, HM_KDF_AEAD_ID,
					HM_KDF_AEAD_CONTEXT, rx) != 0))
		ret = -1;
	sodium_memzero(rx, sizeof(rx));
	sodium_memzero(tx, sizeof(tx));
	return ret;
}

/* ---- digests and signatures ---------------------------------------------- */

void hm_digest(const void *data, size_t len, uint8_t out[HM_DIGEST_LEN])
{
	crypto_generichash(out, HM_DIGEST_LEN, data, len, NULL, 0);
}

/* The signed bytes: header bytes [0, 64) with the flags field zero (flags
 * are a per-link hint covered by the MAC; see HM_FLAG_RETRANSMIT). */
static void signed_bytes(const struct hm_hdr *hdr, uint8_t out[HM_SIGNED_LEN])
{
	memcpy(out, hdr, HM_SIGNED_LEN);
	memset(out + offsetof(struct hm_hdr, flags), 0, sizeof(hdr->flags));
}

void hm_sign_header(struct hm_hdr *hdr, const struct hm_keypair *kp)
{
	uint8_t msg[HM_SIGNED_LEN];

	signed_bytes(hdr, msg);
	hm_sign(msg, HM_SIGNED_LEN, kp->sk, hdr->sig);
}

bool hm_verify_header(const struct hm_hdr *hdr, const uint8_t pk[HM_PUBKEY_LEN])
{
	uint8_t msg[HM_SIGNED_LEN];

	signed_bytes(hdr, msg);
	return hm_verify(msg, HM_SIGNED_LEN, hdr->sig, pk);
}

/* Both through the memo of sig_memo.h: the same result, computed once. */
void hm_sign(const void *msg, size_t len, const uint8_t sk[HM_SECKEY_LEN], uint8_t sig[HM_SIG_LEN])
{
	struct hm_sig_memo_key k;

	hm_sig_memo_key_sign(&k, sk, msg, len);
	if (hm_sig_memo_signed(&k, sig))
		return;
	crypto_sign_detached(sig, NULL, msg, len, sk);
	hm_sig_memo_remember_signature(&k, sig);
}

bool hm_verify(const void *msg, size_t len, const uint8_t sig[HM_SIG_LEN],
	       const uint8_t pk[HM_PUBKEY_LEN])
{
	struct hm_sig_memo_key k;

	hm_sig_memo_key_verify(&k, pk, sig, msg, len);
	if (hm_sig_memo_verified(&k))
		return true;
	if (crypto_sign_verify_detached(sig, msg, len, pk) != 0)
		return false;
	hm_sig_memo_remember_verified(&k);
	return true;
}

/* L = 2^252 + 27742317777372353535851937790883648493, little-endian. */
static const uint8_t ed25519_order[32] = {
	0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
};

bool hm_sig_is_canonical(const uint8_t sig[HM_SIG_LEN])
{
	const uint8_t *s = sig + 32;

	/* Signatures are public: an ordinary early-exit compare is fine. */
	for (int i = 31; i >= 0; i--) {
		if (s[i] < ed25519_order[i])
			return true;
		if (s[i] > ed25519_order[i])
			return false;
	}
	return false; /* S == L */
}

/* ---- link MACs ---------------------------------------------------------- */

void hm_mac_stamp(struct hm_hdr *hdr, const uint8_t key[HM_LINK_KEY_LEN])
{
	uint8_t mac[HM_MAC_LEN];

	hm_siphash_store_le64(mac, hm_siphash24_128(key, (const __u8 *)hdr));
	memcpy(hdr->mac, mac, HM_MAC_LEN);
}

bool hm_mac_verify(const struct hm_hdr *hdr, const uint8_t key[HM_LINK_KEY_LEN])
{
	uint8_t mac[HM_MAC_LEN];

	hm_siphash_store_le64(mac, hm_siphash24_128(key, (const __u8 *)hdr));
	return sodium_memcmp(mac, hdr->mac, HM_MAC_LEN) == 0;
}
