// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the link layer's receive side (common/link_crypt.h,
 * hm_link_open): what a MAC-valid peer may send in a sealed or compressed
 * payload.  Built and run by scripts/fuzz.sh (target `link`).
 *
 * The first input byte picks a mode; the rest is the material:
 *   bit 0  encryption required at the receiver
 *   bit 1  the rest is a wire message, opened as it is (the AEAD refuses
 *          nearly all of it: this exercises framing and the refusals);
 *          else the rest is a payload the sender seals under the right key
 *          (with COMPRESSED set when bit 2 is: a hostile zstd stream behind
 *          a valid seal), so the decompressor sees the fuzzer's bytes.
 *   bit 3  the rest is a payload that goes through hm_link_seal with the
 *          policy of bits 0 and 2, and must come back byte for byte.
 * Invariants: a refusal names one of the link layer's drop reasons; an
 * accepted message fits max_len, has no link flag left and a payload_len
 * that matches its length; a round trip is exact.
 *
 * Built with -DHM_FUZZ_SEEDGEN, a small program writing the seed corpus.
 */
#include <sodium.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/link_crypt.h"
#include "common/wire.h"

#define HM_FUZZ_NAME "fuzz_link"
#define HM_FUZZ_SEED_PREFIX "seed-link-"
#include "hm_fuzz.h"

#define MAX_LEN 65000

static struct hm_keypair kp_a, kp_b;
static struct hm_link_aead_keys ka, kb;
static uint8_t msg[HM_MAX_DATAGRAM], wire[HM_MAX_DATAGRAM + HM_SEAL_OVERHEAD];
static uint8_t plain[HM_MAX_DATAGRAM];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[32];

	(void)argc, (void)argv;
	if (hm_crypto_init() < 0)
		abort();
	memset(seed, 0xa0, sizeof(seed));
	hm_keypair_from_seed(&kp_a, seed);
	memset(seed, 0xa1, sizeof(seed));
	hm_keypair_from_seed(&kp_b, seed);
	if (hm_link_aead_derive(0, &kp_a, 1, kp_b.pk, &ka) < 0 ||
	    hm_link_aead_derive(1, &kp_b, 0, kp_a.pk, &kb) < 0)
		abort();
	return 0;
}

static bool link_reason(enum hm_drop_reason why)
{
	return why == HM_DROP_BAD_SEAL || why == HM_DROP_NOT_ENCRYPTED ||
	       why == HM_DROP_BAD_COMPRESSION || why == HM_DROP_INFLATED_OVERSIZE ||
	       why == HM_DROP_BAD_LENGTH;
}

static void check_open(const uint8_t *w, size_t len, const struct hm_link_policy *pol)
{
	enum hm_drop_reason why = HM_DROP_REASON_MAX;
	size_t out = hm_link_open(w, len, pol, kb.rx, MAX_LEN, plain, sizeof(plain), &why);

	if (!out) {
		CHECK(link_reason(why));
		return;
	}
	CHECK(why == HM_DROP_REASON_MAX);
	CHECK(out >= HM_HDR_LEN && out <= MAX_LEN);
	CHECK(!(hm_get_be16(plain + 6) & (HM_FLAG_ENCRYPTED | HM_FLAG_COMPRESSED)));
	CHECK(hm_get_be32(plain + 12) == out - HM_HDR_LEN);
}

/* A header from replica 0 around payload p (plen bytes), flags as given. */
static size_t frame(const uint8_t *p, size_t plen, uint16_t flags)
{
	memset(msg, 0, HM_HDR_LEN);
	hm_put_be32(msg, HM_MAGIC);
	msg[4] = HM_VERSION;
	msg[5] = HM_MSG_PRE_PREPARE;
	msg[6] = (uint8_t)(flags >> 8);
	msg[7] = (uint8_t)flags;
	hm_put_be32(msg + 12, (uint32_t)plen);
	memcpy(msg + HM_HDR_LEN, p, plen);
	return HM_HDR_LEN + plen;
}

/* The sender's side by hand: p sealed as it is (a compressed stream when
 * the COMPRESSED flag is set), so the fuzzer's bytes reach zstd. */
static size_t seal_raw(const uint8_t *p, size_t plen, uint16_t flags)
{
	unsigned long long clen;

	frame(p, 0, flags | HM_FLAG_ENCRYPTED);
	memcpy(wire, msg, HM_HDR_LEN);
	hm_put_be32(wire + 12, (uint32_t)(plen + HM_SEAL_OVERHEAD));
	memset(wire + HM_HDR_LEN, 0x42, HM_SEAL_NONCE_LEN);
	crypto_aead_xchacha20poly1305_ietf_encrypt(wire + HM_HDR_LEN + HM_SEAL_NONCE_LEN, &clen, p,
						   plen, wire, HM_MACED_LEN, NULL,
						   wire + HM_HDR_LEN, ka.tx);
	return HM_HDR_LEN + HM_SEAL_NONCE_LEN + clen;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_link_policy pol;
	size_t len, wlen;
	uint8_t mode;

	if (size < 1 || size - 1 > MAX_LEN - HM_HDR_LEN - HM_SEAL_OVERHEAD)
		return 0;
	mode = data[0];
	data++, size--;
	pol = (struct hm_link_policy){ .encrypt = mode & 1, .compress = mode & 4 };
	if (mode & 8) {
		enum hm_drop_reason why = HM_DROP_REASON_MAX;

		len = frame(data, size, 0);
		wlen = hm_link_seal(msg, len, &pol, ka.tx, wire, sizeof(wire));
		CHECK(wlen > 0 && wlen <= len + HM_SEAL_OVERHEAD);
		CHECK(hm_link_open(wire, wlen, &pol, kb.rx, MAX_LEN, plain, sizeof(plain), &why) == len);
		CHECK(memcmp(plain, msg, len) == 0);
		return 0;
	}
	if (mode & 2) {
		if (size >= HM_HDR_LEN)
			check_open(data, size, &pol);
		return 0;
	}
	wlen = seal_raw(data, size, mode & 4 ? HM_FLAG_COMPRESSED : 0);
	check_open(wire, wlen, &pol);
	return 0;
}

#ifdef HM_FUZZ_SEEDGEN
#include <zstd.h>

int main(int argc, char **argv)
{
	static uint8_t buf[1 + 8192], zeros[1 << 16];
	int rc = seed_begin(argc, argv);
	size_t n;

	if (rc)
		return rc;
	/* round trips: a repetitive payload, both options */
	buf[0] = 8 | 4 | 1;
	for (int i = 1; i < 4000; i++)
		buf[i] = (uint8_t)("batch of requests "[i % 18]);
	write_seed("roundtrip", buf, 4000);
	/* a sealed zstd frame of 64 KiB of zeros stated as 1000 bytes */
	buf[0] = 4 | 1;
	hm_put_be32(buf + 1, 1000);
	n = ZSTD_compress(buf + 5, sizeof(buf) - 5, zeros, sizeof(zeros), 3);
	write_seed("bomb", buf, 5 + n);
	/* an honest sealed zstd frame */
	hm_put_be32(buf + 1, 2000);
	n = ZSTD_compress(buf + 5, sizeof(buf) - 5, zeros, 2000, 3);
	write_seed("frame", buf, 5 + n);
	/* a raw wire message with the link flags */
	buf[0] = 2 | 1;
	n = frame(zeros, 300, HM_FLAG_ENCRYPTED | HM_FLAG_COMPRESSED);
	memcpy(buf + 1, msg, n);
	write_seed("raw", buf, 1 + n);
	return seed_end();
}
#endif
