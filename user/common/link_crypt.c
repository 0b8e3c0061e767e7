// SPDX-License-Identifier: MIT
/* Sealed and compressed payloads on replica links (link_crypt.h). */
#include "common/link_crypt.h"

#include <sodium.h>
#include <string.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "common/wire.h"

#define LINK_BITS (HM_FLAG_ENCRYPTED | HM_FLAG_COMPRESSED)
/* Every frame we make fits a 2^17 window (payloads < 64 KiB); a frame that
 * asks for more is refused rather than given the memory. */
#define ZSTD_WINDOW_LOG_MAX 17

_Static_assert(crypto_aead_xchacha20poly1305_ietf_NPUBBYTES == HM_SEAL_NONCE_LEN, "nonce");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_ABYTES == HM_SEAL_TAG_LEN, "tag");
_Static_assert(crypto_aead_xchacha20poly1305_ietf_KEYBYTES == HM_AEAD_KEY_LEN, "key");

/* One compression and one decompression context per thread, made on first
 * use and kept: a context costs more to make than a small frame does to
 * (de)compress. */
static __thread ZSTD_CCtx *cctx;
static __thread ZSTD_DCtx *dctx;
/* A sealed, compressed payload is opened here before it is decompressed. */
static __thread uint8_t scratch[HM_MAX_DATAGRAM];

static void set_header(uint8_t *hdr, uint16_t flags, size_t payload_len)
{
	hdr[6] = (uint8_t)(flags >> 8);
	hdr[7] = (uint8_t)flags;
	hm_put_be32(hdr + 12, (uint32_t)payload_len);
}

/* The payload as u32 length + zstd frame into dst, only when that is
 * shorter than the payload itself; else 0. */
static size_t compress_payload(const uint8_t *p, size_t plen, uint8_t *dst, size_t cap)
{
	size_t r;

	if (plen < HM_COMPRESS_MIN || cap <= HM_COMPRESS_PREFIX_LEN)
		return 0;
	if (!cctx && !(cctx = ZSTD_createCCtx()))
		return 0;
	if (cap > plen - 1)
		cap = plen - 1; /* must shrink, prefix included */
	r = ZSTD_compressCCtx(cctx, dst + HM_COMPRESS_PREFIX_LEN, cap - HM_COMPRESS_PREFIX_LEN, p,
			      plen, HM_ZSTD_LEVEL);
	if (ZSTD_isError(r))
		return 0; /* incompressible: sent as it is */
	hm_put_be32(dst, (uint32_t)plen);
	return HM_COMPRESS_PREFIX_LEN + r;
}

size_t hm_link_seal(const uint8_t *msg, size_t len, const struct hm_link_policy *pol,
		    const uint8_t key[HM_AEAD_KEY_LEN], uint8_t *out, size_t cap)
{
	size_t plen = len - HM_HDR_LEN, room, ilen = 0;
	uint16_t flags;
	uint8_t *inner;
	unsigned long long clen;

	if (len < HM_HDR_LEN || cap < len)
		return 0;
	if (plen == 0 || (!pol->encrypt && !pol->compress)) {
		memcpy(out, msg, len);
		return len;
	}
	if (pol->encrypt && cap < len + HM_SEAL_OVERHEAD)
		return 0;
	memcpy(out, msg, HM_HDR_LEN);
	flags = hm_get_be16(out + 6) & (uint16_t)~LINK_BITS;
	inner = out + HM_HDR_LEN + (pol->encrypt ? HM_SEAL_NONCE_LEN : 0);
	room = cap - (size_t)(inner - out) - (pol->encrypt ? HM_SEAL_TAG_LEN : 0);
	if (pol->compress)
		ilen = compress_payload(msg + HM_HDR_LEN, plen, inner, room);
	if (ilen)
		flags |= HM_FLAG_COMPRESSED;
	else
		memcpy(inner, msg + HM_HDR_LEN, (ilen = plen));
	if (!pol->encrypt) {
		set_header(out, flags, ilen);
		return HM_HDR_LEN + ilen;
	}
	/* The header is final before it becomes the associated data. */
	set_header(out, flags | HM_FLAG_ENCRYPTED, ilen + HM_SEAL_OVERHEAD);
	randombytes_buf(out + HM_HDR_LEN, HM_SEAL_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(inner, &clen, inner, ilen, out, HM_MACED_LEN,
						   NULL, out + HM_HDR_LEN, key);
	return HM_HDR_LEN + HM_SEAL_NONCE_LEN + (size_t)clen;
}

/* The sealed payload's plaintext into dst (room bytes), or 0 (bad_seal). */
static size_t open_sealed(const uint8_t *wire, size_t plen, const uint8_t key[HM_AEAD_KEY_LEN],
			  uint8_t *dst, size_t room, bool *ok)
{
	unsigned long long mlen;

	*ok = false;
	if (plen < HM_SEAL_OVERHEAD || plen - HM_SEAL_OVERHEAD > room)
		return 0;
	if (crypto_aead_xchacha20poly1305_ietf_decrypt(dst, &mlen, NULL,
						       wire + HM_HDR_LEN + HM_SEAL_NONCE_LEN,
						       plen - HM_SEAL_NONCE_LEN, wire, HM_MACED_LEN,
						       wire + HM_HDR_LEN, key) != 0)
		return 0;
	*ok = true;
	return (size_t)mlen;
}

/* u32 length + zstd frame (src, slen) into dst, at most bound bytes; the
 * stated length is checked against the bound before anything inflates. */
static size_t decompress_payload(const uint8_t *src, size_t slen, uint8_t *dst, size_t bound,
				 enum hm_drop_reason *why)
{
	size_t stated, r;

	if (slen <= HM_COMPRESS_PREFIX_LEN || (stated = hm_get_be32(src)) == 0)
		goto bad;
	if (stated > bound) {
		*why = HM_DROP_INFLATED_OVERSIZE;
		return 0;
	}
	if (!dctx) {
		if (!(dctx = ZSTD_createDCtx()))
			goto bad;
		ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, ZSTD_WINDOW_LOG_MAX);
	}
	/* dst holds exactly the stated length: a frame that inflates past it
	 * stops there (dstSize_tooSmall), whatever it claims. */
	r = ZSTD_decompressDCtx(dctx, dst, stated, src + HM_COMPRESS_PREFIX_LEN,
				slen - HM_COMPRESS_PREFIX_LEN);
	if (ZSTD_isError(r) && ZSTD_getErrorCode(r) == ZSTD_error_dstSize_tooSmall) {
		*why = HM_DROP_INFLATED_OVERSIZE;
		return 0;
	}
	if (!ZSTD_isError(r) && r == stated)
		return r;
bad:
	*why = HM_DROP_BAD_COMPRESSION;
	return 0;
}

size_t hm_link_open(const uint8_t *wire, size_t len, const struct hm_link_policy *pol,
		    const uint8_t key[HM_AEAD_KEY_LEN], size_t max_len, uint8_t *out, size_t cap,
		    enum hm_drop_reason *why)
{
	size_t plen = len - HM_HDR_LEN, ilen;
	uint16_t flags;
	const uint8_t *inner;
	bool ok;

	if (len < HM_HDR_LEN || max_len < HM_HDR_LEN || cap < max_len || len > max_len) {
		*why = HM_DROP_BAD_LENGTH;
		return 0;
	}
	flags = hm_get_be16(wire + 6);
	memcpy(out, wire, HM_HDR_LEN);
	/* No payload, nothing to open (the bits mean nothing there, as in
	 * XDP, which counts such votes without looking at them). */
	if (plen == 0) {
		set_header(out, flags & (uint16_t)~LINK_BITS, 0);
		return len;
	}
	if (pol->encrypt && !(flags & HM_FLAG_ENCRYPTED)) {
		*why = HM_DROP_NOT_ENCRYPTED;
		return 0;
	}
	inner = wire + HM_HDR_LEN;
	ilen = plen;
	if (flags & HM_FLAG_ENCRYPTED) {
		/* straight into place, or into scratch when it must inflate */
		uint8_t *dst = flags & HM_FLAG_COMPRESSED ? scratch : out + HM_HDR_LEN;

		ilen = open_sealed(wire, plen, key, dst,
				   flags & HM_FLAG_COMPRESSED ? sizeof(scratch) : max_len - HM_HDR_LEN,
				   &ok);
		if (!ok) {
			*why = HM_DROP_BAD_SEAL;
			return 0;
		}
		inner = dst;
	}
	if (flags & HM_FLAG_COMPRESSED) {
		ilen = decompress_payload(inner, ilen, out + HM_HDR_LEN, max_len - HM_HDR_LEN, why);
		if (!ilen)
			return 0;
	} else if (inner != out + HM_HDR_LEN) {
		memcpy(out + HM_HDR_LEN, inner, ilen);
	}
	set_header(out, flags & (uint16_t)~LINK_BITS, ilen);
	return HM_HDR_LEN + ilen;
}
