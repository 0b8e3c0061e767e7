// SPDX-License-Identifier: MIT
/*
 * The link layer (common/link_crypt.h): sealed and compressed payloads round
 * trip to the core's exact message; a tampered ciphertext, tag, nonce or
 * header (the AD) is refused; nonces do not repeat; a plaintext payload is
 * refused when encryption is required; decompression bombs are refused
 * before they inflate past max_message_size.
 */
#include <sodium.h>
#include <zstd.h>

#include "common/crypto.h"
#include "common/link_crypt.h"
#include "common/wire.h"
#include "hm_test.h"

#define MAX_LEN 65000

static struct hm_keypair kp_a, kp_b;
static struct hm_link_aead_keys ka, kb; /* a = replica 0, b = replica 1 */
static uint8_t wire[HM_MAX_DATAGRAM + HM_SEAL_OVERHEAD], plain[HM_MAX_DATAGRAM];

static const struct hm_link_policy ENC = { .encrypt = true };
static const struct hm_link_policy ZIP = { .compress = true };
static const struct hm_link_policy BOTH = { .encrypt = true, .compress = true };
static const struct hm_link_policy NONE = { 0 };

static bool setup(void)
{
	uint8_t seed[32];

	if (!ASSERT_OK(hm_crypto_init(), "init"))
		return false;
	memset(seed, 0xa0, sizeof(seed));
	hm_keypair_from_seed(&kp_a, seed);
	memset(seed, 0xa1, sizeof(seed));
	hm_keypair_from_seed(&kp_b, seed);
	return ASSERT_OK(hm_link_aead_derive(0, &kp_a, 1, kp_b.pk, &ka), "derive a") &&
	       ASSERT_OK(hm_link_aead_derive(1, &kp_b, 0, kp_a.pk, &kb), "derive b");
}

/* A PRE-PREPARE-like message from replica 0: a compressible payload of
 * plen bytes with a recognisable string in it. */
static size_t build(uint8_t *buf, size_t plen, uint16_t flags)
{
	static uint8_t payload[HM_MAX_DATAGRAM];

	for (size_t i = 0; i < plen; i++)
		payload[i] = (uint8_t)("secret.example.hmtest "[i % 22]);
	return hm_msg_build_flags(buf, HM_MAX_DATAGRAM, HM_MSG_PRE_PREPARE, flags, 0, 3, 7, NULL,
				  payload, (uint32_t)plen, &kp_a);
}

static bool contains(const uint8_t *hay, size_t n, const char *needle)
{
	return memmem(hay, n, needle, strlen(needle)) != NULL;
}

HM_TEST(aead_keys_agree_per_direction_and_differ_from_mac_keys)
{
	struct hm_link_keys mac;

	if (!setup())
		return;
	ASSERT_MEMEQ(ka.tx, kb.rx, HM_AEAD_KEY_LEN, "a->b");
	ASSERT_MEMEQ(ka.rx, kb.tx, HM_AEAD_KEY_LEN, "b->a");
	ASSERT_TRUE(memcmp(ka.tx, ka.rx, HM_AEAD_KEY_LEN) != 0, "directions differ");
	ASSERT_OK(hm_link_keys_derive(0, &kp_a, 1, kp_b.pk, &mac), "mac keys");
	ASSERT_TRUE(memmem(ka.tx, HM_AEAD_KEY_LEN, mac.tx, 8) == NULL, "no MAC key bytes in AEAD key");
	ASSERT_TRUE(memmem(ka.rx, HM_AEAD_KEY_LEN, mac.rx, 8) == NULL, "no MAC key bytes in AEAD key");
}

/* Seal with policy pol, open with the same policy: the core's message
 * comes back byte for byte, and the wire carries the expected flags. */
static void round_trip(const struct hm_link_policy *pol, size_t plen, uint16_t want_flags)
{
	uint8_t msg[HM_MAX_DATAGRAM];
	size_t len = build(msg, plen, HM_FLAG_RETRANSMIT), wlen, olen;
	enum hm_drop_reason why = HM_DROP_REASON_MAX;
	struct hm_msg m;

	if (!ASSERT_TRUE(len > 0, "build"))
		return;
	wlen = hm_link_seal(msg, len, pol, ka.tx, wire, sizeof(wire));
	if (!ASSERT_TRUE(wlen > 0, "seal"))
		return;
	ASSERT_EQ(hm_get_be16(wire + 6), want_flags | HM_FLAG_RETRANSMIT, "wire flags");
	ASSERT_EQ(hm_get_be32(wire + 12), wlen - HM_HDR_LEN, "wire payload_len");
	ASSERT_OK(hm_msg_decode(wire, wlen, MAX_LEN, &m, &why), "the wire message decodes");
	if (want_flags & HM_FLAG_ENCRYPTED)
		ASSERT_FALSE(contains(wire, wlen, "secret.example"), "no plaintext on the wire");
	olen = hm_link_open(wire, wlen, pol, kb.rx, MAX_LEN, plain, sizeof(plain), &why);
	if (!ASSERT_EQ(olen, len, "open restores the length"))
		return;
	ASSERT_EQ(why, HM_DROP_REASON_MAX, "no drop reason set on success");
	ASSERT_MEMEQ(plain, msg, len, "the core's message, byte for byte");
	if (!ASSERT_OK(hm_msg_decode(plain, olen, MAX_LEN, &m, &why), "decode"))
		return;
	ASSERT_TRUE(hm_msg_payload_ok(&m, &why), "digest");
	ASSERT_TRUE(hm_verify_header(m.hdr, kp_a.pk), "signature (over the plain payload_len)");
}

HM_TEST(round_trips)
{
	if (!setup())
		return;
	round_trip(&ENC, 1, HM_FLAG_ENCRYPTED);
	round_trip(&ENC, 5000, HM_FLAG_ENCRYPTED);
	round_trip(&ZIP, 5000, HM_FLAG_COMPRESSED);
	round_trip(&BOTH, 5000, HM_FLAG_ENCRYPTED | HM_FLAG_COMPRESSED);
	round_trip(&BOTH, MAX_LEN - HM_HDR_LEN - HM_SEAL_OVERHEAD, HM_FLAG_ENCRYPTED | HM_FLAG_COMPRESSED);
	round_trip(&ENC, MAX_LEN - HM_HDR_LEN - HM_SEAL_OVERHEAD, HM_FLAG_ENCRYPTED);
	/* below the threshold: sealed, not compressed */
	round_trip(&BOTH, HM_COMPRESS_MIN - 1, HM_FLAG_ENCRYPTED);
	round_trip(&ZIP, HM_COMPRESS_MIN - 1, 0);
	round_trip(&NONE, 5000, 0);
}

HM_TEST(compression_shrinks_and_incompressible_stays_plain)
{
	uint8_t msg[HM_MAX_DATAGRAM];
	size_t len = build(msg, 20000, 0), wlen;

	if (!setup())
		return;
	wlen = hm_link_seal(msg, len, &BOTH, ka.tx, wire, sizeof(wire));
	ASSERT_TRUE(wlen < len / 10, "a repetitive batch shrinks tenfold");
	randombytes_buf(msg + HM_HDR_LEN, 20000);
	wlen = hm_link_seal(msg, len, &ZIP, ka.tx, wire, sizeof(wire));
	ASSERT_EQ(wlen, len, "random bytes: sent as they are");
	ASSERT_EQ(hm_get_be16(wire + 6), 0, "no COMPRESSED flag");
}

HM_TEST(empty_payload_is_left_alone)
{
	uint8_t msg[HM_HDR_LEN], digest[HM_DIGEST_LEN] = { 1 };
	enum hm_drop_reason why = HM_DROP_REASON_MAX;
	size_t len = hm_msg_build(msg, sizeof(msg), HM_MSG_PREPARE, 0, 3, 7, digest, NULL, 0, &kp_a);

	if (!setup())
		return;
	ASSERT_EQ(hm_link_seal(msg, len, &BOTH, ka.tx, wire, sizeof(wire)), HM_HDR_LEN, "as is");
	ASSERT_MEMEQ(wire, msg, HM_HDR_LEN, "unchanged: XDP counts votes from the header");
	ASSERT_EQ(hm_link_open(wire, len, &BOTH, kb.rx, MAX_LEN, plain, sizeof(plain), &why),
		  HM_HDR_LEN, "a vote needs no seal even when required");
}

/* Flip one bit at off of a sealed message: open refuses it as bad_seal. */
static void tampered(size_t off, const char *what)
{
	uint8_t msg[HM_MAX_DATAGRAM];
	size_t len = build(msg, 3000, 0), wlen;
	enum hm_drop_reason why = HM_DROP_REASON_MAX;

	wlen = hm_link_seal(msg, len, &BOTH, ka.tx, wire, sizeof(wire));
	if (off >= wlen)
		off = wlen - 1;
	wire[off] ^= 0x10;
	ASSERT_EQ(hm_link_open(wire, wlen, &BOTH, kb.rx, MAX_LEN, plain, sizeof(plain), &why), 0,
		  what);
	ASSERT_EQ(why, HM_DROP_BAD_SEAL, what);
}

HM_TEST(tampering_is_refused)
{
	if (!setup())
		return;
	tampered(HM_OFF_SEQ + 7, "header seq (AD)");
	tampered(HM_OFF_DIGEST, "header digest (AD)");
	tampered(HM_OFF_SIG + 3, "header signature (AD)");
	tampered(HM_HDR_LEN + 2, "nonce");
	tampered(HM_HDR_LEN + HM_SEAL_NONCE_LEN + 1, "ciphertext");
	tampered(SIZE_MAX, "tag (last byte)");
}

HM_TEST(wrong_key_and_short_seal_refused)
{
	uint8_t msg[HM_MAX_DATAGRAM];
	size_t len = build(msg, 400, 0), wlen;
	enum hm_drop_reason why = HM_DROP_REASON_MAX;

	if (!setup())
		return;
	wlen = hm_link_seal(msg, len, &ENC, ka.tx, wire, sizeof(wire));
	ASSERT_EQ(hm_link_open(wire, wlen, &ENC, kb.tx, MAX_LEN, plain, sizeof(plain), &why), 0,
		  "the other direction's key");
	ASSERT_EQ(why, HM_DROP_BAD_SEAL, "bad_seal");
	/* a sealed payload shorter than nonce + tag */
	hm_put_be32(wire + 12, HM_SEAL_OVERHEAD - 1);
	why = HM_DROP_REASON_MAX;
	ASSERT_EQ(hm_link_open(wire, HM_HDR_LEN + HM_SEAL_OVERHEAD - 1, &ENC, kb.rx, MAX_LEN, plain,
			       sizeof(plain), &why), 0, "short");
	ASSERT_EQ(why, HM_DROP_BAD_SEAL, "short: bad_seal");
}

HM_TEST(nonces_never_repeat)
{
	enum { N = 4096 };
	static uint8_t nonces[N][HM_SEAL_NONCE_LEN];
	uint8_t msg[HM_MAX_DATAGRAM];
	size_t len = build(msg, 64, 0);
	int repeats = 0;

	if (!setup())
		return;
	/* the same message (a retransmission) sealed again and again */
	for (int i = 0; i < N; i++) {
		hm_link_seal(msg, len, &ENC, ka.tx, wire, sizeof(wire));
		memcpy(nonces[i], wire + HM_HDR_LEN, HM_SEAL_NONCE_LEN);
	}
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			repeats += memcmp(nonces[i], nonces[j], HM_SEAL_NONCE_LEN) == 0;
	ASSERT_EQ(repeats, 0, "4096 seals of one message, 4096 nonces");
}

HM_TEST(plaintext_refused_when_required)
{
	uint8_t msg[HM_MAX_DATAGRAM];
	size_t len = build(msg, 400, 0), wlen;
	enum hm_drop_reason why = HM_DROP_REASON_MAX;

	if (!setup())
		return;
	ASSERT_EQ(hm_link_open(msg, len, &ENC, kb.rx, MAX_LEN, plain, sizeof(plain), &why), 0,
		  "plain payload");
	ASSERT_EQ(why, HM_DROP_NOT_ENCRYPTED, "not_encrypted");
	/* compressed but not sealed is still plaintext to an eavesdropper */
	wlen = hm_link_seal(msg, build(msg, 4000, 0), &ZIP, ka.tx, wire, sizeof(wire));
	why = HM_DROP_REASON_MAX;
	ASSERT_EQ(hm_link_open(wire, wlen, &ENC, kb.rx, MAX_LEN, plain, sizeof(plain), &why), 0,
		  "compressed only");
	ASSERT_EQ(why, HM_DROP_NOT_ENCRYPTED, "compressed only: not_encrypted");
	/* not required: a sealed one is still opened (a rolling change) */
	len = build(msg, 400, 0);
	wlen = hm_link_seal(msg, len, &ENC, ka.tx, wire, sizeof(wire));
	ASSERT_TRUE(wlen && hm_link_open(wire, wlen, &NONE, kb.rx, MAX_LEN, plain, sizeof(plain),
					  &why) == len, "sealed, opened without the requirement");
}

/* A COMPRESSED payload: stated length, then frame; optionally sealed. */
static size_t bomb(uint32_t stated, const uint8_t *frame, size_t flen, bool seal)
{
	uint8_t msg[HM_MAX_DATAGRAM];
	size_t len = build(msg, 4 + flen, 0);

	hm_put_be32(msg + HM_HDR_LEN, stated);
	memcpy(msg + HM_HDR_LEN + 4, frame, flen);
	msg[7] |= HM_FLAG_COMPRESSED;
	if (!seal) {
		memcpy(wire, msg, len);
		return len;
	}
	/* seal by hand: encrypt the prepared (already compressed) payload */
	{
		unsigned long long clen;

		memcpy(wire, msg, HM_HDR_LEN);
		wire[7] |= HM_FLAG_ENCRYPTED;
		hm_put_be32(wire + 12, (uint32_t)(4 + flen + HM_SEAL_OVERHEAD));
		randombytes_buf(wire + HM_HDR_LEN, HM_SEAL_NONCE_LEN);
		crypto_aead_xchacha20poly1305_ietf_encrypt(wire + HM_HDR_LEN + HM_SEAL_NONCE_LEN, &clen,
							   msg + HM_HDR_LEN, 4 + flen, wire,
							   HM_MACED_LEN, NULL, wire + HM_HDR_LEN,
							   ka.tx);
		return HM_HDR_LEN + HM_SEAL_NONCE_LEN + clen;
	}
}

static void expect_refused(size_t wlen, const struct hm_link_policy *pol, enum hm_drop_reason want,
			   const char *what)
{
	enum hm_drop_reason why = HM_DROP_REASON_MAX;

	ASSERT_EQ(hm_link_open(wire, wlen, pol, kb.rx, MAX_LEN, plain, sizeof(plain), &why), 0, what);
	ASSERT_EQ(why, want, what);
}

HM_TEST(decompression_bombs_refused)
{
	static uint8_t zeros[1 << 20], frame[1 << 16];
	size_t flen;

	if (!setup())
		return;
	/* 1 MiB of zeros compresses to a few hundred bytes */
	flen = ZSTD_compress(frame, sizeof(frame), zeros, sizeof(zeros), 19);
	if (!ASSERT_FALSE(ZSTD_isError(flen), "compress"))
		return;
	expect_refused(bomb(1u << 20, frame, flen, false), &ZIP, HM_DROP_INFLATED_OVERSIZE,
		       "states 1 MiB: refused before inflating");
	expect_refused(bomb(1000, frame, flen, false), &ZIP, HM_DROP_INFLATED_OVERSIZE,
		       "states 1000, inflates to 1 MiB: stopped at 1000");
	expect_refused(bomb(1000, frame, flen, true), &BOTH, HM_DROP_INFLATED_OVERSIZE,
		       "the same, sealed under the right key");
	expect_refused(bomb(MAX_LEN, frame, flen, false), &ZIP, HM_DROP_INFLATED_OVERSIZE,
		       "states max_message_size: the header does not fit beside it");
	flen = ZSTD_compress(frame, sizeof(frame), zeros, 500, 1);
	expect_refused(bomb(600, frame, flen, false), &ZIP, HM_DROP_BAD_COMPRESSION,
		       "inflates to less than stated");
	expect_refused(bomb(0, frame, flen, false), &ZIP, HM_DROP_BAD_COMPRESSION, "states 0");
	memset(frame, 0x5a, 64);
	expect_refused(bomb(500, frame, 64, true), &BOTH, HM_DROP_BAD_COMPRESSION, "not a frame");
	expect_refused(bomb(500, frame, 0, false), &ZIP, HM_DROP_BAD_COMPRESSION, "no frame at all");
}
