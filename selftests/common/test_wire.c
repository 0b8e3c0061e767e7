// SPDX-License-Identifier: MIT
/*
 * Wire-format tests: hm_msg_build/hm_msg_decode for every message type,
 * every way a datagram's framing can be wrong, payload/digest agreement,
 * header signatures, batches, reply payloads, the big-endian helpers and the
 * name tables; then a randomized run of mutated datagrams through every
 * parser.
 *
 *   HM_WIRE_SEED=N    seed of `random_datagrams` (printed on failure)
 *   HM_WIRE_ITERS=N   its iteration count (default 200000)
 */
#include <sodium.h>

#include "common/crypto.h"
#include "hm_test.h"
#include "common/wire.h"

/* ---- helpers ------------------------------------------------------------ */

static struct hm_keypair test_kp, other_kp;

static bool setup(void)
{
	uint8_t seed[32];

	if (!ASSERT_OK(hm_crypto_init(), "hm_crypto_init"))
		return false;
	memset(seed, 0x42, sizeof(seed));
	if (!ASSERT_OK(hm_keypair_from_seed(&test_kp, seed), "keypair"))
		return false;
	memset(seed, 0x17, sizeof(seed));
	return ASSERT_OK(hm_keypair_from_seed(&other_kp, seed), "other keypair");
}

static bool digest_only_type(unsigned type)
{
	return type == HM_MSG_PREPARE || type == HM_MSG_COMMIT || type == HM_MSG_CHECKPOINT ||
	       type == HM_MSG_STATUS;
}

/* A heap copy of exactly len bytes, so that AddressSanitizer catches any
 * read past the end of the datagram. */
static uint8_t *dup_exact(const uint8_t *p, size_t len)
{
	uint8_t *c = malloc(len ? len : 1);

	if (c && len)
		memcpy(c, p, len);
	return c;
}

static void fill_pattern(uint8_t *p, size_t len, uint8_t salt)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + salt);
}

/* Build a typical message of the given type: a payload for the types that
 * carry one, a bare vote digest for the others. */
static size_t build_typical(uint8_t *buf, size_t cap, unsigned type, uint32_t payload_len)
{
	static uint8_t payload[4096];
	uint8_t vote[HM_DIGEST_LEN];

	fill_pattern(payload, sizeof(payload), (uint8_t)type);
	fill_pattern(vote, sizeof(vote), 0xa0);
	if (digest_only_type(type))
		return hm_msg_build(buf, cap, (uint8_t)type, 3, 7, 1000 + type, vote, NULL, 0,
				    &test_kp);
	return hm_msg_build(buf, cap, (uint8_t)type, 3, 7, 1000 + type, NULL, payload,
			    payload_len, &test_kp);
}

static int decode_exact(const uint8_t *p, size_t len, size_t max_len, struct hm_msg *m,
			enum hm_drop_reason *why)
{
	uint8_t *c = dup_exact(p, len);
	struct hm_msg tmp;
	int r;

	if (!c)
		return -2;
	r = hm_msg_decode(c, len, max_len, &tmp, why);
	free(c);
	if (m)
		*m = tmp;  /* pointers dangle: callers only look at scalars */
	return r;
}

/* Decoding p[0..len) must fail, for reason `reason`. */
static bool decode_refused(const uint8_t *p, size_t len, size_t max_len, enum hm_drop_reason reason,
			   const char *what)
{
	enum hm_drop_reason why = HM_DROP_REASON_MAX;
	bool refused = ASSERT_EQ(decode_exact(p, len, max_len, NULL, &why), -1, what);

	return ASSERT_EQ(why, reason, what) && refused;
}

/* ---- round trips --------------------------------------------------------- */

HM_TEST(roundtrip_every_type)
{
	uint8_t buf[HM_HDR_LEN + 4096], payload[25 * HM_MSG_TYPE_MAX], vote[HM_DIGEST_LEN],
		d[HM_DIGEST_LEN];
	enum hm_drop_reason why;
	struct hm_msg m;

	if (!setup())
		return;
	fill_pattern(payload, sizeof(payload), 9);
	fill_pattern(vote, sizeof(vote), 0x55);
	for (unsigned type = HM_MSG_REQUEST; type <= HM_MSG_TYPE_MAX; type++) {
		for (int with_flag = 0; with_flag < 2; with_flag++) {
			bool votes = digest_only_type(type);
			uint32_t plen = votes ? 0 : (uint32_t)(type * 25);
			uint16_t flags = with_flag ? HM_FLAG_RETRANSMIT : 0;
			char what[64];
			size_t len;

			snprintf(what, sizeof(what), "type %u (%s) flags %u", type,
				 hm_msg_type_name(type), flags);
			len = hm_msg_build_flags(buf, sizeof(buf), (uint8_t)type, flags, 0xdeadbeef,
						 0x0102030405060708ull, 0xfffffffffffffff0ull,
						 votes ? vote : NULL, payload, plen, &test_kp);
			if (!ASSERT_EQ(len, HM_HDR_LEN + plen, what))
				continue;
			if (!ASSERT_OK(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), what))
				continue;
			ASSERT_TRUE(m.hdr == (const struct hm_hdr *)buf, what);
			ASSERT_EQ(m.len, len, what);
			ASSERT_EQ(m.type, type, what);
			ASSERT_EQ(m.flags, flags, what);
			ASSERT_EQ(m.sender, 0xdeadbeef, what);
			ASSERT_TRUE(m.view == 0x0102030405060708ull, what);
			ASSERT_TRUE(m.seq == 0xfffffffffffffff0ull, what);
			ASSERT_EQ(m.payload_len, plen, what);
			ASSERT_TRUE(m.payload == buf + HM_HDR_LEN, what);
			ASSERT_MEMEQ(m.payload, payload, plen, what);
			if (votes) {
				ASSERT_MEMEQ(m.digest, vote, HM_DIGEST_LEN, what);
			} else {
				hm_digest(payload, plen, d);
				ASSERT_MEMEQ(m.digest, d, HM_DIGEST_LEN, what);
			}
			ASSERT_TRUE(hm_msg_payload_ok(&m, &why), what);
			ASSERT_TRUE(hm_verify_header(m.hdr, test_kp.pk), what);
			ASSERT_FALSE(hm_verify_header(m.hdr, other_kp.pk), what);
			/* The MAC field is left zero for the dataplane to stamp. */
			for (int i = 0; i < HM_MAC_LEN; i++)
				ASSERT_EQ(buf[HM_OFF_MAC + i], 0, what);
			/* Wire layout at the documented offsets. */
			ASSERT_EQ(hm_get_be32(buf), HM_MAGIC, what);
			ASSERT_EQ(buf[4], type == HM_MSG_REPLY ? HM_REPLY_VERSION : HM_VERSION,
				  what);
			ASSERT_EQ(buf[5], type, what);
			ASSERT_EQ(hm_get_be16(buf + 6), flags, what);
			ASSERT_EQ(hm_get_be32(buf + HM_OFF_SENDER), 0xdeadbeef, what);
			ASSERT_EQ(hm_get_be32(buf + 12), plen, what);
			ASSERT_TRUE(hm_get_be64(buf + HM_OFF_VIEW) == 0x0102030405060708ull, what);
			ASSERT_TRUE(hm_get_be64(buf + HM_OFF_SEQ) == 0xfffffffffffffff0ull, what);
		}
	}
}

HM_TEST(header_layout_matches_offsets)
{
	ASSERT_EQ(sizeof(struct hm_hdr), HM_HDR_LEN, "sizeof(struct hm_hdr)");
	ASSERT_EQ(__builtin_offsetof(struct hm_hdr, sender), HM_OFF_SENDER, "sender");
	ASSERT_EQ(__builtin_offsetof(struct hm_hdr, payload_len), 12, "payload_len");
	ASSERT_EQ(__builtin_offsetof(struct hm_hdr, view), HM_OFF_VIEW, "view");
	ASSERT_EQ(__builtin_offsetof(struct hm_hdr, seq), HM_OFF_SEQ, "seq");
	ASSERT_EQ(__builtin_offsetof(struct hm_hdr, digest), HM_OFF_DIGEST, "digest");
	ASSERT_EQ(__builtin_offsetof(struct hm_hdr, sig), HM_OFF_SIG, "sig");
	ASSERT_EQ(__builtin_offsetof(struct hm_hdr, mac), HM_OFF_MAC, "mac");
	ASSERT_EQ(HM_OFF_SIG, HM_SIGNED_LEN, "signed part ends at the signature");
	ASSERT_EQ(HM_OFF_MAC, HM_MACED_LEN, "MACed part ends at the MAC");
}

HM_TEST(build_refuses_small_buffer)
{
	uint8_t buf[HM_HDR_LEN + 64], payload[64];

	if (!setup())
		return;
	fill_pattern(payload, sizeof(payload), 1);
	memset(buf, 0xcc, sizeof(buf));
	ASSERT_EQ(hm_msg_build(buf, HM_HDR_LEN + 63, HM_MSG_REQUEST, 1, 0, 1, NULL, payload, 64,
			       &test_kp), 0, "cap one short");
	ASSERT_EQ(hm_msg_build(buf, HM_HDR_LEN - 1, HM_MSG_PREPARE, 1, 0, 1, payload, NULL, 0,
			       &test_kp), 0, "cap below the header");
	ASSERT_EQ(hm_msg_build(buf, 0, HM_MSG_PREPARE, 1, 0, 1, payload, NULL, 0, &test_kp), 0,
		  "cap 0");
	ASSERT_EQ(buf[0], 0xcc, "nothing written when refused");
	ASSERT_EQ(hm_msg_build(buf, HM_HDR_LEN + 64, HM_MSG_REQUEST, 1, 0, 1, NULL, payload, 64,
			       &test_kp), HM_HDR_LEN + 64, "exact cap");
	ASSERT_EQ(hm_msg_build(buf, HM_HDR_LEN, HM_MSG_REQUEST, 1, 0, 1, NULL, NULL, 0, &test_kp),
		  HM_HDR_LEN, "empty payload, exact cap");
}

/* ---- malformed framing ---------------------------------------------------- */

HM_TEST(truncated_at_every_length)
{
	uint8_t buf[HM_HDR_LEN + 4096];
	enum hm_drop_reason why;
	char what[80];

	if (!setup())
		return;
	for (unsigned type = HM_MSG_REQUEST; type <= HM_MSG_TYPE_MAX; type++) {
		uint32_t plen = digest_only_type(type) ? 0 : (type == HM_MSG_REQUEST ? 700 : 48);
		size_t full = build_typical(buf, sizeof(buf), type, plen);

		if (!ASSERT_EQ(full, HM_HDR_LEN + plen, "build"))
			continue;
		ASSERT_OK(decode_exact(buf, full, HM_MAX_DATAGRAM, NULL, &why), "full length");
		for (size_t len = 0; len < full; len++) {
			snprintf(what, sizeof(what), "type %u truncated to %zu of %zu", type, len,
				 full);
			why = HM_DROP_REASON_MAX;
			if (!ASSERT_EQ(decode_exact(buf, len, HM_MAX_DATAGRAM, NULL, &why), -1, what))
				continue;
			ASSERT_EQ(why, len < HM_HDR_LEN ? HM_DROP_TRUNCATED : HM_DROP_BAD_LENGTH,
				  what);
		}
	}
	/* A NULL buffer of length 0 is refused before anything is read. */
	{
		struct hm_msg m;

		ASSERT_EQ(hm_msg_decode(NULL, 0, HM_MAX_DATAGRAM, &m, &why), -1, "NULL, 0");
		ASSERT_EQ(why, HM_DROP_TRUNCATED, "NULL, 0 reason");
	}
}

HM_TEST(bad_magic_and_version)
{
	uint8_t buf[HM_HDR_LEN + 32], mut[HM_HDR_LEN + 32];
	enum hm_drop_reason why;
	size_t len;
	char what[64];

	if (!setup())
		return;
	len = build_typical(buf, sizeof(buf), HM_MSG_REQUEST, 32);
	for (int i = 0; i < 4; i++) {
		for (int bit = 0; bit < 8; bit++) {
			memcpy(mut, buf, len);
			mut[i] ^= (uint8_t)(1 << bit);
			snprintf(what, sizeof(what), "magic byte %d bit %d", i, bit);
			decode_refused(mut, len, HM_MAX_DATAGRAM, HM_DROP_BAD_MAGIC, what);
		}
	}
	/* The magic is big-endian "HMSH": the little-endian form is wrong. */
	memcpy(mut, buf, len);
	mut[0] = 'H'; mut[1] = 'S'; mut[2] = 'M'; mut[3] = 'H';
	decode_refused(mut, len, HM_MAX_DATAGRAM, HM_DROP_BAD_MAGIC, "byte-swapped magic");
	mut[0] = 'H'; mut[1] = 'M'; mut[2] = 'S'; mut[3] = 'H';
	ASSERT_OK(decode_exact(mut, len, HM_MAX_DATAGRAM, NULL, &why), "\"HMSH\" spelled out");

	const uint8_t versions[] = { 0, HM_VERSION + 1, 0x7f, 0x80, 0xff };
	for (size_t i = 0; i < sizeof(versions); i++) {
		memcpy(mut, buf, len);
		mut[4] = versions[i];
		snprintf(what, sizeof(what), "version %u", versions[i]);
		decode_refused(mut, len, HM_MAX_DATAGRAM, HM_DROP_BAD_MAGIC, what);
	}
	/* Each type at its own version: a REPLY at HM_REPLY_VERSION only (the
	 * layout that names the request), every other type at HM_VERSION. */
	for (unsigned type = HM_MSG_REQUEST; type <= HM_MSG_TYPE_MAX; type++) {
		for (unsigned v = 0; v < 4; v++) {
			bool ok = v == (type == HM_MSG_REPLY ? HM_REPLY_VERSION : HM_VERSION);

			memcpy(mut, buf, len);
			mut[4] = (uint8_t)v;
			mut[5] = (uint8_t)type;
			snprintf(what, sizeof(what), "type %u at version %u", type, v);
			if (ok)
				ASSERT_OK(decode_exact(mut, len, HM_MAX_DATAGRAM, NULL, &why), what);
			else
				decode_refused(mut, len, HM_MAX_DATAGRAM, HM_DROP_BAD_MAGIC, what);
		}
	}
}

HM_TEST(bad_type)
{
	uint8_t buf[HM_HDR_LEN + 32];
	enum hm_drop_reason why;
	size_t len;
	char what[64];

	if (!setup())
		return;
	len = build_typical(buf, sizeof(buf), HM_MSG_REQUEST, 32);
	for (unsigned t = 0; t < 256; t++) {
		buf[5] = (uint8_t)t;
		buf[4] = HM_TYPE_VERSION(t); /* each type at its own version */
		snprintf(what, sizeof(what), "type %u", t);
		if (t >= HM_MSG_REQUEST && t <= HM_MSG_TYPE_MAX) {
			ASSERT_OK(decode_exact(buf, len, HM_MAX_DATAGRAM, NULL, &why), what);
		} else {
			decode_refused(buf, len, HM_MAX_DATAGRAM, HM_DROP_BAD_TYPE, what);
		}
	}
}

HM_TEST(unknown_flag_bits)
{
	uint8_t buf[HM_HDR_LEN];
	enum hm_drop_reason why;
	struct hm_msg m;
	size_t len;
	char what[64];

	if (!setup())
		return;
	/* RETRANSMIT, and the link layer's sealed and compressed bits */
	ASSERT_EQ(HM_FLAGS_KNOWN, HM_FLAG_RETRANSMIT | HM_FLAG_ENCRYPTED | HM_FLAG_COMPRESSED,
		  "the known flags");
	len = build_typical(buf, sizeof(buf), HM_MSG_PREPARE, 0);
	for (int bit = 0; bit < 16; bit++) {
		uint16_t f = (uint16_t)(1u << bit);

		buf[6] = (uint8_t)(f >> 8);
		buf[7] = (uint8_t)f;
		snprintf(what, sizeof(what), "flag bit %d", bit);
		if (f & HM_FLAGS_KNOWN) {
			if (ASSERT_OK(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), what))
				ASSERT_EQ(m.flags, f, what);
		} else {
			ASSERT_EQ(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), -1, what);
			ASSERT_EQ(why, HM_DROP_BAD_TYPE, what);
			/* Together with a known flag: still refused. */
			buf[7] |= HM_FLAG_RETRANSMIT;
			ASSERT_EQ(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), -1, what);
			ASSERT_EQ(why, HM_DROP_BAD_TYPE, what);
		}
	}
	buf[6] = buf[7] = 0xff;
	ASSERT_EQ(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), -1, "all flags");
	ASSERT_EQ(why, HM_DROP_BAD_TYPE, "all flags");
	/* Built with an unknown flag: the builder does not police flags, but
	 * the decoder refuses the result. */
	len = hm_msg_build_flags(buf, sizeof(buf), HM_MSG_STATUS, 0x8000, 1, 0, 1, buf, NULL, 0,
				 &test_kp);
	ASSERT_EQ(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), -1, "built with 0x8000");
	ASSERT_EQ(why, HM_DROP_BAD_TYPE, "built with 0x8000");
}

static void set_payload_len(uint8_t *buf, uint32_t v)
{
	hm_put_be32(buf + 12, v);
}

HM_TEST(payload_len_lies)
{
	uint8_t buf[HM_HDR_LEN + 200], big[HM_HDR_LEN + 400];
	enum hm_drop_reason why;
	size_t len;
	char what[64];

	if (!setup())
		return;
	len = build_typical(buf, sizeof(buf), HM_MSG_REQUEST, 200);
	const uint32_t lies[] = { 0, 1, 199, 201, 202, 400, 65535, 65536, HM_MAX_DATAGRAM,
				  0x7fffffff, 0x80000000u, 0xfffffff0u, 0xffffff78u /* -136 */,
				  0xfffffffeu, 0xffffffffu };
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		set_payload_len(buf, lies[i]);
		snprintf(what, sizeof(what), "payload_len %#x for 200 bytes", lies[i]);
		decode_refused(buf, len, HM_MAX_DATAGRAM, HM_DROP_BAD_LENGTH, what);
		decode_refused(buf, len, SIZE_MAX, HM_DROP_BAD_LENGTH, what);
	}
	set_payload_len(buf, 200);
	ASSERT_OK(decode_exact(buf, len, HM_MAX_DATAGRAM, NULL, &why), "true payload_len");

	/* A header-only datagram claiming a payload. */
	len = build_typical(buf, sizeof(buf), HM_MSG_COMMIT, 0);
	for (size_t i = 0; i < sizeof(lies) / sizeof(lies[0]); i++) {
		if (lies[i] == 0)
			continue;
		set_payload_len(buf, lies[i]);
		snprintf(what, sizeof(what), "payload_len %#x for 0 bytes", lies[i]);
		decode_refused(buf, len, HM_MAX_DATAGRAM, HM_DROP_BAD_LENGTH, what);
	}

	/* Trailing bytes after a true payload: payload_len is smaller than
	 * what the datagram carries. */
	len = build_typical(big, sizeof(big), HM_MSG_REQUEST, 100);
	for (size_t extra = 1; extra <= 300; extra += 37) {
		snprintf(what, sizeof(what), "%zu trailing bytes", extra);
		decode_refused(big, len + extra, HM_MAX_DATAGRAM, HM_DROP_BAD_LENGTH, what);
	}
}

HM_TEST(oversize)
{
	static uint8_t buf[HM_MAX_DATAGRAM + 16];
	enum hm_drop_reason why;
	struct hm_msg m;
	size_t len;

	if (!setup())
		return;
	len = build_typical(buf, sizeof(buf), HM_MSG_REQUEST, 1000);
	ASSERT_OK(hm_msg_decode(buf, len, len, &m, &why), "len == max_len");
	ASSERT_EQ(hm_msg_decode(buf, len, len - 1, &m, &why), -1, "len == max_len + 1");
	ASSERT_EQ(why, HM_DROP_OVERSIZE, "one over");
	ASSERT_EQ(hm_msg_decode(buf, len, HM_HDR_LEN, &m, &why), -1, "max_len = header");
	ASSERT_EQ(why, HM_DROP_OVERSIZE, "max_len = header");
	ASSERT_EQ(hm_msg_decode(buf, len, 0, &m, &why), -1, "max_len = 0");
	ASSERT_EQ(why, HM_DROP_OVERSIZE, "max_len = 0");

	/* The largest datagram HyperMesh accepts, and one byte more. */
	memset(buf + HM_HDR_LEN, 0x5a, HM_MAX_DATAGRAM - HM_HDR_LEN + 1);
	len = hm_msg_build(buf, sizeof(buf), HM_MSG_REQUEST, 1, 0, 1, NULL, buf + HM_HDR_LEN,
			   HM_MAX_DATAGRAM - HM_HDR_LEN, &test_kp);
	ASSERT_EQ(len, HM_MAX_DATAGRAM, "largest datagram built");
	ASSERT_OK(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), "largest datagram");
	ASSERT_TRUE(hm_msg_payload_ok(&m, &why), "largest datagram payload");
	set_payload_len(buf, HM_MAX_DATAGRAM - HM_HDR_LEN + 1);
	ASSERT_EQ(hm_msg_decode(buf, HM_MAX_DATAGRAM + 1, HM_MAX_DATAGRAM, &m, &why), -1,
		  "one byte over the maximum");
	ASSERT_EQ(why, HM_DROP_OVERSIZE, "one byte over the maximum");
}

/* ---- payload vs header ---------------------------------------------------- */

HM_TEST(payload_ok)
{
	uint8_t buf[HM_HDR_LEN + 256], vote[HM_DIGEST_LEN];
	enum hm_drop_reason why;
	struct hm_msg m;
	size_t len;
	char what[64];

	if (!setup())
		return;
	fill_pattern(vote, sizeof(vote), 3);
	for (unsigned type = HM_MSG_REQUEST; type <= HM_MSG_TYPE_MAX; type++) {
		snprintf(what, sizeof(what), "type %u (%s)", type, hm_msg_type_name(type));
		if (digest_only_type(type)) {
			/* Empty payload: fine, whatever the digest. */
			len = hm_msg_build(buf, sizeof(buf), (uint8_t)type, 1, 0, 5, vote, NULL, 0,
					   &test_kp);
			ASSERT_OK(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), what);
			ASSERT_TRUE(hm_msg_payload_ok(&m, &why), what);
			/* Any payload at all on a vote is malformed, even one
			 * whose hash is the digest. */
			for (uint32_t plen = 1; plen <= 64; plen *= 4) {
				uint8_t p[64], d[HM_DIGEST_LEN];

				fill_pattern(p, sizeof(p), 7);
				hm_digest(p, plen, d);
				len = hm_msg_build(buf, sizeof(buf), (uint8_t)type, 1, 0, 5, d, p,
						   plen, &test_kp);
				if (!ASSERT_OK(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), what))
					continue;
				why = HM_DROP_REASON_MAX;
				ASSERT_FALSE(hm_msg_payload_ok(&m, &why), what);
				ASSERT_EQ(why, HM_DROP_MALFORMED, what);
			}
			continue;
		}
		for (uint32_t plen = 0; plen <= 256; plen += 64) {
			len = build_typical(buf, sizeof(buf), type, plen);
			if (!ASSERT_OK(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), what))
				continue;
			ASSERT_TRUE(hm_msg_payload_ok(&m, &why), what);
			/* A digest that is not the payload's. */
			buf[HM_OFF_DIGEST + plen % HM_DIGEST_LEN] ^= 0x01;
			why = HM_DROP_REASON_MAX;
			ASSERT_FALSE(hm_msg_payload_ok(&m, &why), what);
			ASSERT_EQ(why, HM_DROP_BAD_DIGEST, what);
			buf[HM_OFF_DIGEST + plen % HM_DIGEST_LEN] ^= 0x01;
			ASSERT_TRUE(hm_msg_payload_ok(&m, &why), what);
			/* A payload that is not the digest's. */
			if (plen) {
				buf[HM_HDR_LEN + plen - 1] ^= 0x80;
				why = HM_DROP_REASON_MAX;
				ASSERT_FALSE(hm_msg_payload_ok(&m, &why), what);
				ASSERT_EQ(why, HM_DROP_BAD_DIGEST, what);
			}
			/* An explicit digest that is not the payload's. */
			len = hm_msg_build(buf, sizeof(buf), (uint8_t)type, 1, 0, 5, vote, buf + HM_HDR_LEN,
					   plen, &test_kp);
			if (ASSERT_OK(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), what)) {
				ASSERT_FALSE(hm_msg_payload_ok(&m, &why), what);
				ASSERT_EQ(why, HM_DROP_BAD_DIGEST, what);
			}
		}
	}
}

/* ---- signatures ------------------------------------------------------------ */

HM_TEST(signature_covers_signed_bytes)
{
	uint8_t buf[HM_HDR_LEN + 64], mut[HM_HDR_LEN + 64];
	struct hm_hdr *h = (struct hm_hdr *)mut;
	size_t len;
	char what[64];

	if (!setup())
		return;
	for (unsigned type = HM_MSG_REQUEST; type <= HM_MSG_TYPE_MAX; type++) {
		len = build_typical(buf, sizeof(buf), type, 64);
		memcpy(mut, buf, len);
		if (!ASSERT_TRUE(hm_verify_header(h, test_kp.pk), "fresh signature"))
			continue;
		/* Every signed byte, every bit; the flags (bytes 6 and 7) are
		 * not signed: a retransmission keeps the original signature. */
		for (int i = 0; i < HM_SIGNED_LEN; i++) {
			bool in_flags = i == 6 || i == 7;

			for (int bit = 0; bit < 8; bit++) {
				mut[i] ^= (uint8_t)(1 << bit);
				snprintf(what, sizeof(what), "type %u byte %d bit %d", type, i, bit);
				ASSERT_EQ(hm_verify_header(h, test_kp.pk), in_flags, what);
				mut[i] ^= (uint8_t)(1 << bit);
			}
		}
		/* The signature itself. */
		for (int i = HM_OFF_SIG; i < HM_OFF_SIG + HM_SIG_LEN; i++) {
			mut[i] ^= 0x04;
			snprintf(what, sizeof(what), "type %u signature byte %d", type, i);
			ASSERT_FALSE(hm_verify_header(h, test_kp.pk), what);
			mut[i] ^= 0x04;
		}
		/* The MAC field is not signed (it is stamped per link after
		 * signing), nor is the payload (bound through the digest). */
		for (int i = HM_OFF_MAC; i < HM_HDR_LEN; i++)
			mut[i] = (uint8_t)(0xff - i);
		for (size_t i = HM_HDR_LEN; i < len; i++)
			mut[i] ^= 0xff;
		snprintf(what, sizeof(what), "type %u MAC and payload changed", type);
		ASSERT_TRUE(hm_verify_header(h, test_kp.pk), what);
		ASSERT_FALSE(hm_verify_header(h, other_kp.pk), "someone else's key");
		ASSERT_TRUE(hm_sig_is_canonical(h->sig), "signature is canonical");
	}
}

/* ---- batches --------------------------------------------------------------- */

struct batch_builder {
	uint8_t buf[8192];
	size_t len;
};

static void batch_begin(struct batch_builder *b, uint32_t count)
{
	hm_put_be32(b->buf, count);
	b->len = 4;
}

/* Append one request: u32 len, then the message (mac zeroed). */
static size_t batch_add_msg(struct batch_builder *b, unsigned type, uint32_t client, uint64_t ts,
			    uint32_t plen)
{
	uint8_t payload[512];
	size_t n;

	fill_pattern(payload, sizeof(payload), (uint8_t)(client + ts));
	if (digest_only_type(type))
		n = hm_msg_build(b->buf + b->len + 4, sizeof(b->buf) - b->len - 4, (uint8_t)type,
				 client, 0, ts, payload, NULL, 0, &test_kp);
	else
		n = hm_msg_build(b->buf + b->len + 4, sizeof(b->buf) - b->len - 4, (uint8_t)type,
				 client, 0, ts, NULL, payload, plen, &test_kp);
	hm_put_be32(b->buf + b->len, (uint32_t)n);
	b->len += 4 + n;
	return b->len - 4 - n; /* offset of this entry's length field */
}

static int batch_validate_exact(const struct batch_builder *b, size_t len, size_t max_req)
{
	uint8_t *c = dup_exact(b->buf, len);
	int r = hm_batch_validate(c, len, max_req);

	free(c);
	return r;
}

HM_TEST(batch_valid_k_requests)
{
	struct batch_builder b;
	struct hm_batch_iter it;
	struct hm_msg req;
	enum hm_drop_reason why;
	char what[64];

	if (!setup())
		return;
	for (uint32_t k = 0; k <= 5; k++) {
		uint8_t *c;
		uint32_t seen = 0;

		batch_begin(&b, k);
		for (uint32_t i = 0; i < k; i++)
			batch_add_msg(&b, HM_MSG_REQUEST, 100 + i, 1000 + i, i * 40);
		snprintf(what, sizeof(what), "batch of %u", k);
		ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), k, what);
		c = dup_exact(b.buf, b.len);
		hm_batch_iter_init(&it, c, b.len);
		while (hm_batch_next(&it, &req)) {
			ASSERT_EQ(req.type, HM_MSG_REQUEST, what);
			ASSERT_EQ(req.sender, 100 + seen, what);
			ASSERT_TRUE(req.seq == 1000 + seen, what);
			ASSERT_EQ(req.payload_len, seen * 40, what);
			ASSERT_TRUE(hm_msg_payload_ok(&req, &why), what);
			ASSERT_TRUE(hm_verify_header(req.hdr, test_kp.pk), what);
			if (++seen > k + 1)
				break;
		}
		ASSERT_EQ(seen, k, what);
		ASSERT_FALSE(hm_batch_next(&it, &req), "iterator stays at the end");
		free(c);
	}
}

HM_TEST(batch_count_lies)
{
	struct batch_builder b;
	char what[64];

	if (!setup())
		return;
	for (uint32_t k = 0; k <= 5; k++) {
		const uint32_t counts[] = { k + 1, k + 2, k - 1, 0, 0x7fffffff, 0x80000000u,
					    0xffffffffu };

		batch_begin(&b, k);
		for (uint32_t i = 0; i < k; i++)
			batch_add_msg(&b, HM_MSG_REQUEST, i, i, 16);
		for (size_t j = 0; j < sizeof(counts) / sizeof(counts[0]); j++) {
			if (counts[j] == k)
				continue;
			hm_put_be32(b.buf, counts[j]);
			snprintf(what, sizeof(what), "%u requests, count %u", k, counts[j]);
			ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), -1, what);
		}
	}
	/* A count that claims more than the bytes could hold, with no entries. */
	batch_begin(&b, 0xffffffffu);
	ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), -1, "huge count, no bytes");
	/* Shorter than the count field. */
	for (size_t len = 0; len < 4; len++) {
		batch_begin(&b, 0);
		snprintf(what, sizeof(what), "batch of %zu bytes", len);
		ASSERT_EQ(batch_validate_exact(&b, len, HM_MAX_DATAGRAM), -1, what);
	}
}

/* Shorter than the count field, or no buffer at all: refused by validate,
 * empty to the iterator, and no pointer arithmetic past the end (clang's
 * UBSan reports NULL + 4; the fuzz target runs under it). */
HM_TEST(batch_short_or_null)
{
	static const uint8_t bytes[3] = { 0xff, 0xff, 0xff };
	struct hm_batch_iter it;
	struct hm_msg req;

	ASSERT_EQ(hm_batch_validate(NULL, 0, HM_MAX_DATAGRAM), -1, "NULL batch");
	hm_batch_iter_init(&it, NULL, 0);
	ASSERT_FALSE(hm_batch_next(&it, &req), "NULL batch iterates nothing");
	for (size_t len = 0; len < 4; len++) {
		uint8_t *c = dup_exact(bytes, len);

		ASSERT_EQ(hm_batch_validate(c, len, HM_MAX_DATAGRAM), -1, "short batch");
		hm_batch_iter_init(&it, c, len);
		ASSERT_EQ(it.remaining, 0, "short batch: nothing remaining");
		ASSERT_EQ(it.left, 0, "short batch: nothing left");
		ASSERT_FALSE(hm_batch_next(&it, &req), "short batch iterates nothing");
		free(c);
	}
}

HM_TEST(batch_entry_length_lies)
{
	struct batch_builder b;
	size_t off[3];
	char what[64];

	if (!setup())
		return;
	batch_begin(&b, 3);
	for (int i = 0; i < 3; i++)
		off[i] = batch_add_msg(&b, HM_MSG_REQUEST, (uint32_t)i, (uint64_t)i, 30);
	ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), 3, "valid");
	for (int i = 0; i < 3; i++) {
		uint32_t real = hm_get_be32(b.buf + off[i]);
		const uint32_t lies[] = { real + 1, real - 1, real + 4, real - 4, 0, 4,
					  HM_HDR_LEN - 1, HM_HDR_LEN, 0x7fffffff, 0xffffffffu,
					  (uint32_t)(b.len - off[i] - 4),
					  (uint32_t)(b.len - off[i] - 3) };

		for (size_t j = 0; j < sizeof(lies) / sizeof(lies[0]); j++) {
			struct hm_batch_iter it;
			struct hm_msg req;
			uint8_t *c;

			if (lies[j] == real)
				continue;
			hm_put_be32(b.buf + off[i], lies[j]);
			snprintf(what, sizeof(what), "entry %d length %u (real %u)", i, lies[j],
				 real);
			ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), -1, what);
			/* The iterator must not overrun either, validated or not. */
			c = dup_exact(b.buf, b.len);
			hm_batch_iter_init(&it, c, b.len);
			for (int n = 0; n < 8 && hm_batch_next(&it, &req); n++)
				ASSERT_LE(req.len, b.len, what);
			free(c);
		}
		hm_put_be32(b.buf + off[i], real);
	}
	ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), 3, "restored");
	/* The inner message's own payload_len lies. */
	hm_put_be32(b.buf + off[1] + 4 + 12, 31);
	ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), -1, "inner payload_len");
	hm_put_be32(b.buf + off[1] + 4 + 12, 30);
	/* An inner message with a bad magic. */
	b.buf[off[2] + 4] ^= 0x20;
	ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), -1, "inner magic");
	b.buf[off[2] + 4] ^= 0x20;
	/* Truncated anywhere: refused. */
	for (size_t len = 0; len < b.len; len++) {
		snprintf(what, sizeof(what), "batch truncated to %zu of %zu", len, b.len);
		ASSERT_EQ(batch_validate_exact(&b, len, HM_MAX_DATAGRAM), -1, what);
	}
	/* max_request applies to each request. */
	ASSERT_EQ(batch_validate_exact(&b, b.len, HM_HDR_LEN + 30), 3, "max_request exact");
	ASSERT_EQ(batch_validate_exact(&b, b.len, HM_HDR_LEN + 29), -1, "max_request too small");
}

/* The last entry claims 1-4 bytes more than the batch holds, and its own
 * payload_len agrees with that claim: only the bounds check on the entry
 * length stands between the parsers and a read past the end. */
HM_TEST(batch_entry_overruns_end)
{
	struct batch_builder b;
	char what[64];

	if (!setup())
		return;
	for (uint32_t k = 1; k <= 3; k++) {
		for (uint32_t over = 1; over <= 8; over++) {
			struct hm_batch_iter it;
			struct hm_msg req;
			enum hm_drop_reason why;
			size_t off = 0;
			uint8_t *c;
			int n = 0;

			batch_begin(&b, k);
			for (uint32_t i = 0; i < k; i++)
				off = batch_add_msg(&b, HM_MSG_REQUEST, i, i, 24);
			hm_put_be32(b.buf + off, hm_get_be32(b.buf + off) + over);
			hm_put_be32(b.buf + off + 4 + 12, 24 + over);
			snprintf(what, sizeof(what), "%u requests, last overruns by %u", k, over);
			ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), -1, what);
			c = dup_exact(b.buf, b.len);
			hm_batch_iter_init(&it, c, b.len);
			while (n < 8 && hm_batch_next(&it, &req)) {
				(void)hm_msg_payload_ok(&req, &why); /* reads the payload */
				ASSERT_TRUE(req.payload + req.payload_len <= c + b.len, what);
				n++;
			}
			ASSERT_EQ(n, k - 1, what);
			free(c);
		}
	}
}

HM_TEST(batch_entry_not_request)
{
	struct batch_builder b;
	char what[64];

	if (!setup())
		return;
	for (unsigned type = HM_MSG_REQUEST + 1; type <= HM_MSG_TYPE_MAX; type++) {
		for (int pos = 0; pos < 3; pos++) {
			batch_begin(&b, 3);
			for (int i = 0; i < 3; i++)
				batch_add_msg(&b, i == pos ? type : HM_MSG_REQUEST, (uint32_t)i,
					      (uint64_t)i, 20);
			snprintf(what, sizeof(what), "entry %d is a %s", pos, hm_msg_type_name(type));
			ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), -1, what);
		}
	}
	/* A nested PRE-PREPARE carrying a batch is not a request either. */
	{
		struct batch_builder inner;

		batch_begin(&inner, 1);
		batch_add_msg(&inner, HM_MSG_REQUEST, 1, 1, 8);
		batch_begin(&b, 1);
		size_t n = hm_msg_build(b.buf + 8, sizeof(b.buf) - 8, HM_MSG_PRE_PREPARE, 0, 0, 1,
					NULL, inner.buf, (uint32_t)inner.len, &test_kp);
		hm_put_be32(b.buf + 4, (uint32_t)n);
		b.len = 8 + n;
		ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), -1, "nested batch");
	}
}

/* A request inside a batch must carry a zero MAC field: otherwise one
 * primary could give the same requests many batch digests. */
HM_TEST(batch_entry_with_mac)
{
	struct batch_builder b;

	if (!setup())
		return;
	batch_begin(&b, 2);
	batch_add_msg(&b, HM_MSG_REQUEST, 1, 1, 20);
	batch_add_msg(&b, HM_MSG_REQUEST, 2, 2, 20);
	ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), 2, "zero MACs accepted");
	b.buf[8 + HM_OFF_MAC] = 1; /* first entry: 4 count + 4 length, then its header */
	ASSERT_EQ(batch_validate_exact(&b, b.len, HM_MAX_DATAGRAM), -1, "a set MAC refused");
}

HM_TEST(batch_trailing_bytes)
{
	struct batch_builder b;
	char what[64];

	if (!setup())
		return;
	for (uint32_t k = 0; k <= 3; k++) {
		size_t len;

		batch_begin(&b, k);
		for (uint32_t i = 0; i < k; i++)
			batch_add_msg(&b, HM_MSG_REQUEST, i, i, 10);
		len = b.len;
		for (size_t extra = 1; extra <= 300; extra = extra * 3 + 1) {
			memset(b.buf + len, 0, extra);
			snprintf(what, sizeof(what), "%u requests + %zu zero bytes", k, extra);
			ASSERT_EQ(batch_validate_exact(&b, len + extra, HM_MAX_DATAGRAM), -1, what);
		}
		ASSERT_EQ(batch_validate_exact(&b, len, HM_MAX_DATAGRAM), k, "without the tail");
	}
}

/* ---- replies --------------------------------------------------------------- */

HM_TEST(reply_payload)
{
	uint8_t payload[HM_RP_NONE_LEN + HM_REPLY_PREFIX_LEN + 100], buf[HM_HDR_LEN + 200];
	uint8_t result[100];
	const size_t P = HM_RP_NONE_LEN; /* "no proof" before the body */
	uint8_t rd[HM_DIGEST_LEN];
	enum hm_drop_reason why;
	struct hm_reply rep;
	struct hm_msg m;
	size_t n, len;
	char what[64];

	if (!setup())
		return;
	fill_pattern(result, sizeof(result), 77);
	fill_pattern(rd, sizeof(rd), 31);
	for (size_t r = 0; r <= 100; r += 25) {
		snprintf(what, sizeof(what), "reply with %zu result bytes", r);
		n = hm_reply_payload(payload, sizeof(payload), 0x11223344, 0x0102030405060708ull,
				     rd, HM_REPLY_RESULT, result, r);
		if (!ASSERT_EQ(n, P + HM_REPLY_PREFIX_LEN + r, what))
			continue;
		/* The documented layout. */
		ASSERT_EQ(hm_get_be16(payload), 0, what); /* no proof */
		ASSERT_EQ(hm_get_be32(payload + P), 0x11223344, what);
		ASSERT_TRUE(hm_get_be64(payload + P + 4) == 0x0102030405060708ull, what);
		ASSERT_MEMEQ(payload + P + 12, rd, HM_DIGEST_LEN, what);
		ASSERT_EQ(payload[P + 44], HM_REPLY_RESULT, what);
		len = hm_msg_build(buf, sizeof(buf), HM_MSG_REPLY, 2, 0, 99, NULL, payload,
				   (uint32_t)n, NULL);
		ASSERT_EQ(buf[4], HM_REPLY_VERSION, what);
		ASSERT_TRUE(sodium_is_zero(buf + HM_OFF_SIG, HM_SIG_LEN), "unsigned header");
		if (!ASSERT_OK(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), what))
			continue;
		ASSERT_TRUE(hm_msg_payload_ok(&m, &why), what);
		if (!ASSERT_OK(hm_reply_parse(&m, &rep), what))
			continue;
		ASSERT_EQ(rep.client, 0x11223344, what);
		ASSERT_TRUE(rep.exec_seq == 0x0102030405060708ull, what);
		ASSERT_TRUE(rep.req_digest == m.payload + P + 12, what);
		ASSERT_TRUE(rep.body == m.payload + P && rep.body_len == HM_REPLY_PREFIX_LEN + r, what);
		ASSERT_EQ(rep.proof.size, 0, what);
		ASSERT_MEMEQ(rep.req_digest, rd, HM_DIGEST_LEN, what);
		ASSERT_EQ(rep.status, HM_REPLY_RESULT, what);
		ASSERT_EQ(rep.result_len, r, what);
		ASSERT_TRUE(rep.result == m.payload + P + HM_REPLY_PREFIX_LEN, what);
		ASSERT_MEMEQ(rep.result, result, r, what);
	}
	/* Refusals: exec_seq 0, no result; they round-trip.  Any other
	 * exec_seq or a result is malformed, as is an unknown status. */
	for (unsigned st = 0; st < 256; st++) {
		for (int variant = 0; variant < 3; variant++) {
			bool refusal = st == HM_REPLY_CONFLICT || st == HM_REPLY_STALE;
			bool ok = st == HM_REPLY_RESULT || (refusal && variant == 0);

			n = hm_reply_payload(payload, sizeof(payload), 7, variant == 1 ? 5 : 0, rd,
					     (uint8_t)st, result, variant == 2 ? 1 : 0);
			len = hm_msg_build(buf, sizeof(buf), HM_MSG_REPLY, 2, 0, 99, NULL, payload,
					   (uint32_t)n, &test_kp);
			snprintf(what, sizeof(what), "status %u, variant %d", st, variant);
			if (!ASSERT_OK(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), what))
				continue;
			if (!ok) {
				ASSERT_EQ(hm_reply_parse(&m, &rep), -1, what);
				continue;
			}
			if (ASSERT_OK(hm_reply_parse(&m, &rep), what)) {
				ASSERT_EQ(rep.status, st, what);
				ASSERT_MEMEQ(rep.req_digest, rd, HM_DIGEST_LEN, what);
			}
		}
	}
	/* Buffers too small for the reply. */
	ASSERT_EQ(hm_reply_payload(payload, P + HM_REPLY_PREFIX_LEN - 1, 1, 1, rd, 0, NULL, 0), 0,
		  "cap below the prefix");
	ASSERT_EQ(hm_reply_payload(payload, P + HM_REPLY_PREFIX_LEN + 9, 1, 1, rd, 0, result, 10),
		  0, "cap one short");
	ASSERT_EQ(hm_reply_payload(payload, P + HM_REPLY_PREFIX_LEN, 1, 1, rd, 0, NULL, 0),
		  P + HM_REPLY_PREFIX_LEN, "empty result");
	ASSERT_EQ(hm_reply_body(payload, HM_REPLY_PREFIX_LEN, 1, 1, rd, 0, NULL, 0),
		  HM_REPLY_PREFIX_LEN, "a body alone");
	/* Short payloads are refused, at every length below the prefix. */
	hm_reply_payload(payload, sizeof(payload), 1, 1, rd, 0, NULL, 0);
	for (uint32_t plen = 0; plen < P + HM_REPLY_PREFIX_LEN; plen++) {
		uint8_t *c;

		snprintf(what, sizeof(what), "reply payload of %u bytes", plen);
		len = hm_msg_build(buf, sizeof(buf), HM_MSG_REPLY, 2, 0, 99, NULL, payload, plen,
				   &test_kp);
		c = dup_exact(buf, len);
		if (ASSERT_OK(hm_msg_decode(c, len, HM_MAX_DATAGRAM, &m, &why), what))
			ASSERT_EQ(hm_reply_parse(&m, &rep), -1, what);
		free(c);
	}
	/* The right bytes in another type's message are not a reply. */
	for (unsigned type = HM_MSG_REQUEST; type <= HM_MSG_TYPE_MAX; type++) {
		if (type == HM_MSG_REPLY)
			continue;
		len = hm_msg_build(buf, sizeof(buf), (uint8_t)type, 2, 0, 99, NULL, payload,
				   HM_REPLY_PREFIX_LEN + 5, &test_kp);
		snprintf(what, sizeof(what), "reply payload in a %s", hm_msg_type_name(type));
		if (ASSERT_OK(hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why), what))
			ASSERT_EQ(hm_reply_parse(&m, &rep), -1, what);
	}
}

/* ---- helpers and names ----------------------------------------------------- */

HM_TEST(big_endian_helpers)
{
	uint8_t b[8];
	const uint64_t vals[] = { 0, 1, 0xff, 0x100, 0x7fffffff, 0x80000000u, 0xffffffffu,
				  0x100000000ull, 0x0123456789abcdefull, 0x8000000000000000ull,
				  ~0ull };

	hm_put_be32(b, 0x01020304);
	ASSERT_EQ(b[0], 1, "be32 byte 0");
	ASSERT_EQ(b[3], 4, "be32 byte 3");
	hm_put_be64(b, 0x0102030405060708ull);
	for (int i = 0; i < 8; i++)
		ASSERT_EQ(b[i], i + 1, "be64 byte order");
	b[0] = 0xfe; b[1] = 0xdc;
	ASSERT_EQ(hm_get_be16(b), 0xfedc, "be16 with the top bit set");
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
		hm_put_be64(b, vals[i]);
		ASSERT_TRUE(hm_get_be64(b) == vals[i], "be64 round trip");
		hm_put_be32(b, (uint32_t)vals[i]);
		ASSERT_EQ(hm_get_be32(b), (uint32_t)vals[i], "be32 round trip");
		ASSERT_EQ(hm_get_be16(b + 2), (uint16_t)vals[i], "be16 of the low half");
	}
	/* No sign extension from a high byte >= 0x80. */
	memset(b, 0xff, sizeof(b));
	ASSERT_TRUE(hm_get_be32(b) == 0xffffffffu, "be32 all ones");
	ASSERT_TRUE(hm_get_be64(b) == ~0ull, "be64 all ones");
	ASSERT_EQ(hm_get_be16(b), 0xffff, "be16 all ones");
}

HM_TEST(names_cover_every_value)
{
	char what[64];

	for (unsigned i = 0; i <= HM_MSG_TYPE_MAX; i++) {
		const char *a = hm_msg_type_name(i);

		snprintf(what, sizeof(what), "type %u", i);
		if (!ASSERT_TRUE(a != NULL && *a, what))
			continue;
		for (unsigned j = 0; j < i; j++)
			ASSERT_TRUE(strcmp(a, hm_msg_type_name(j)) != 0, what);
	}
	for (unsigned i = HM_MSG_TYPE_MAX + 1; i < 300; i++)
		ASSERT_TRUE(hm_msg_type_name(i) != NULL, "out-of-range type has a name");
	ASSERT_TRUE(hm_msg_type_name(~0u) != NULL, "type ~0");
	for (unsigned i = 0; i < HM_DROP_REASON_MAX; i++) {
		const char *a = hm_drop_reason_name(i);

		snprintf(what, sizeof(what), "drop reason %u", i);
		if (!ASSERT_TRUE(a != NULL && *a, what))
			continue;
		ASSERT_TRUE(strcmp(a, "unknown") != 0, what);
		for (unsigned j = 0; j < i; j++)
			ASSERT_TRUE(strcmp(a, hm_drop_reason_name(j)) != 0, what);
	}
	ASSERT_TRUE(hm_drop_reason_name(HM_DROP_REASON_MAX) != NULL, "REASON_MAX");
	ASSERT_TRUE(hm_drop_reason_name(~0u) != NULL, "reason ~0");
}

/* ---- randomized datagrams -------------------------------------------------- */


#define POOL 24
#define MUT_CAP 4096

static size_t make_pool(uint8_t pool[POOL][MUT_CAP], size_t lens[POOL])
{
	struct batch_builder *b = malloc(sizeof(*b));
	uint8_t rp[HM_REPLY_PREFIX_LEN + 64];
	size_t n = 0;

	if (!b)
		return 0;
	for (unsigned type = HM_MSG_REQUEST; type <= HM_MSG_TYPE_MAX; type++, n++)
		lens[n] = build_typical(pool[n], MUT_CAP, type, type * 13);
	for (uint32_t k = 0; k <= 5; k++) {
		batch_begin(b, k);
		for (uint32_t i = 0; i < k; i++)
			batch_add_msg(b, HM_MSG_REQUEST, i, 100 + i, i * 7);
		lens[n] = hm_msg_build(pool[n], MUT_CAP, HM_MSG_PRE_PREPARE, 0, 1, 10 + k, NULL,
				       b->buf, (uint32_t)b->len, &test_kp);
		n++;
	}
	for (size_t r = 0; r <= 48; r += 16) {
		static const uint8_t rd[HM_DIGEST_LEN] = { 0xd1, 0x9e, 0x57 };
		size_t pl = hm_reply_payload(rp, sizeof(rp), 5, 77, rd, HM_REPLY_RESULT,
					     "result bytes here, more of them to fill forty-eight.",
					     r);
		lens[n] = hm_msg_build(pool[n], MUT_CAP, HM_MSG_REPLY, 1, 0, 9, NULL, rp,
				       (uint32_t)pl, &test_kp);
		n++;
	}
	lens[n] = hm_msg_build_flags(pool[n], MUT_CAP, HM_MSG_COMMIT, HM_FLAG_RETRANSMIT, 2, 3, 4,
				     rp, NULL, 0, &test_kp);
	n++;
	/* Three more REQUESTs that look like KV ops. */
	for (int i = 0; i < 3 && n < POOL; i++) {
		uint8_t op[8] = { 1, 0, 3, 'k', 'e', 'y', 'v', (uint8_t)i };

		lens[n] = hm_msg_build(pool[n], MUT_CAP, HM_MSG_REQUEST, 9, 0, (uint64_t)i, NULL,
				       op, sizeof(op), &test_kp);
		n++;
	}
	free(b);
	return n;
}

/* Apply 1-4 random mutations to buf (length *len, capacity MUT_CAP). */
static void mutate(uint8_t *buf, size_t *len, uint64_t *rng)
{
	int rounds = 1 + (int)(hm_test_rand(rng) % 4);

	for (int r = 0; r < rounds; r++) {
		uint64_t x = hm_test_rand(rng);
		size_t pos = *len ? (size_t)(x >> 16) % *len : 0;

		switch (x % 11) {
		case 0: /* flip a bit */
			if (*len)
				buf[pos] ^= (uint8_t)(1u << (x >> 8 & 7));
			break;
		case 1: /* set a byte */
			if (*len)
				buf[pos] = (uint8_t)(x >> 40);
			break;
		case 2: { /* insert bytes */
			size_t k = 1 + (x >> 8) % 16;

			if (*len + k <= MUT_CAP) {
				memmove(buf + pos + k, buf + pos, *len - pos);
				for (size_t i = 0; i < k; i++)
					buf[pos + i] = (uint8_t)hm_test_rand(rng);
				*len += k;
			}
			break;
		}
		case 3: { /* delete bytes */
			size_t k = 1 + (x >> 8) % 16;

			if (pos + k <= *len) {
				memmove(buf + pos, buf + pos + k, *len - pos - k);
				*len -= k;
			}
			break;
		}
		case 4: /* truncate */
			*len = pos;
			break;
		case 5: /* make payload_len agree, so decoding goes deeper */
			if (*len >= HM_HDR_LEN)
				hm_put_be32(buf + 12, (uint32_t)(*len - HM_HDR_LEN));
			break;
		case 6: /* and the digest too */
			if (*len >= HM_HDR_LEN)
				hm_digest(buf + HM_HDR_LEN, *len - HM_HDR_LEN, buf + HM_OFF_DIGEST);
			break;
		case 7: /* an interesting 32-bit value somewhere (counts, lengths) */
			if (*len >= 4) {
				static const uint32_t v[] = { 0, 1, 4, HM_HDR_LEN, HM_HDR_LEN - 1,
							      0x7fffffff, 0x80000000u, 0xffffffffu,
							      0xfffffffeu, 140, 12 };
				size_t p4 = pos > *len - 4 ? *len - 4 : pos;

				hm_put_be32(buf + p4, v[(x >> 8) % (sizeof(v) / sizeof(v[0]))]);
			}
			break;
		case 8: /* a valid type or flag value */
			if (*len >= 8) {
				buf[5] = (uint8_t)((x >> 8) % (HM_MSG_TYPE_MAX + 2));
				buf[6] = 0;
				buf[7] = (uint8_t)(x >> 20 & 1);
			}
			break;
		case 9: /* duplicate a chunk */
			if (*len && *len * 2 <= MUT_CAP) {
				size_t k = 1 + (x >> 8) % *len;

				memmove(buf + *len, buf + *len - k, k);
				*len += k;
			}
			break;
		default: /* random tail */
			for (size_t i = pos; i < *len; i++)
				buf[i] = (uint8_t)hm_test_rand(rng);
			break;
		}
	}
}

static long seen_batches, seen_replies; /* deep paths reached */

/* Returns false when an invariant broke. */
static bool check_datagram(const uint8_t *dg, size_t len, size_t max_len)
{
	enum hm_drop_reason why = HM_DROP_REASON_MAX;
	struct hm_msg m;
	struct hm_reply rep;
	int r;

	/* Batch parsers straight on the raw bytes too. */
	r = hm_batch_validate(dg, len, max_len);
	{
		struct hm_batch_iter it;
		struct hm_msg req;
		int k = 0;

		hm_batch_iter_init(&it, dg, len);
		while (k < 1000 && hm_batch_next(&it, &req)) {
			(void)hm_msg_payload_ok(&req, &why); /* touches the payload */
			k++;
		}
		if (r >= 0 && k != r) {
			HM_FAIL("raw batch: validate said %d, iterator gave %d", r, k);
			return false;
		}
	}
	if (hm_msg_decode(dg, len, max_len, &m, &why) < 0) {
		if (why >= HM_DROP_REASON_MAX) {
			HM_FAIL("refused without a reason (len %zu)", len);
			return false;
		}
		return true;
	}
	if (m.len != len || len != (size_t)HM_HDR_LEN + m.payload_len || len > max_len ||
	    m.payload != dg + HM_HDR_LEN || m.type < HM_MSG_REQUEST || m.type > HM_MSG_TYPE_MAX ||
	    (m.flags & ~HM_FLAGS_KNOWN) || hm_get_be32(dg + 12) != m.payload_len) {
		HM_FAIL("decoded with broken invariants: len %zu max %zu m.len %zu payload_len %u",
			len, max_len, m.len, m.payload_len);
		return false;
	}
	(void)hm_msg_payload_ok(&m, &why);
	r = hm_batch_validate(m.payload, m.payload_len, max_len);
	if (r >= 0) {
		struct hm_batch_iter it;
		struct hm_msg req;
		int k = 0;

		hm_batch_iter_init(&it, m.payload, m.payload_len);
		while (hm_batch_next(&it, &req)) {
			if (req.type != HM_MSG_REQUEST || req.len > m.payload_len ||
			    req.len != (size_t)HM_HDR_LEN + req.payload_len) {
				HM_FAIL("validated batch yielded a bad request");
				return false;
			}
			(void)hm_msg_payload_ok(&req, &why);
			if (++k > r)
				break;
		}
		if (k != r) {
			HM_FAIL("validate said %d requests, iterator gave %d", r, k);
			return false;
		}
		seen_batches += r > 0;
	}
	if (hm_reply_parse(&m, &rep) == 0) {
		if (m.type != HM_MSG_REPLY || rep.body < m.payload ||
		    rep.body + rep.body_len != m.payload + m.payload_len ||
		    rep.result_len + HM_REPLY_PREFIX_LEN != rep.body_len ||
		    rep.result != rep.body + HM_REPLY_PREFIX_LEN ||
		    rep.req_digest != rep.body + 12 || rep.status > HM_REPLY_STATUS_MAX ||
		    rep.proof.path_len > HM_RP_MAX_PATH ||
		    (rep.proof.size && rep.proof.index >= rep.proof.size) ||
		    (rep.status != HM_REPLY_RESULT &&
		     (rep.exec_seq || rep.result_len || rep.proof.size))) {
			HM_FAIL("reply parse out of bounds");
			return false;
		}
		seen_replies++;
	}
	return true;
}

HM_TEST(random_datagrams)
{
	static uint8_t pool[POOL][MUT_CAP];
	static uint8_t work[MUT_CAP];
	size_t lens[POOL], npool;
	uint64_t seed = 0x9e3779b97f4a7c15ull, rng;
	long iters = 200000;
	const char *env;
	long decoded = 0;

	seen_batches = seen_replies = 0;
	if (!setup())
		return;
	if ((env = getenv("HM_WIRE_SEED")) && *env)
		seed = strtoull(env, NULL, 0);
	if ((env = getenv("HM_WIRE_ITERS")) && *env)
		iters = strtol(env, NULL, 0);
	if (!seed)
		seed = 1;
	rng = seed;
	npool = make_pool(pool, lens);
	if (!ASSERT_GE(npool, 20, "message pool"))
		return;
	for (long i = 0; i < iters; i++) {
		uint64_t x = hm_test_rand(&rng);
		size_t len, max_len;
		uint8_t *dg;
		struct hm_msg m;
		enum hm_drop_reason why;

		if (x % 16 == 0) {
			/* Purely random bytes, usually short. */
			len = (size_t)(x >> 8) % (x & 0x10 ? 300 : MUT_CAP);
			for (size_t j = 0; j < len; j++)
				work[j] = (uint8_t)hm_test_rand(&rng);
			if (len >= 8 && (x & 0x20)) {
				hm_put_be32(work, HM_MAGIC);
				work[4] = HM_VERSION;
			}
		} else {
			size_t k = (size_t)(x >> 8) % npool;

			len = lens[k];
			memcpy(work, pool[k], len);
			mutate(work, &len, &rng);
		}
		switch ((x >> 40) % 4) {
		case 0: max_len = HM_MAX_DATAGRAM; break;
		case 1: max_len = (size_t)(x >> 44) % (MUT_CAP + 1); break;
		case 2: max_len = len; break;
		default: max_len = SIZE_MAX; break;
		}
		dg = dup_exact(work, len);
		if (!dg)
			continue;
		if (hm_msg_decode(dg, len, max_len, &m, &why) == 0)
			decoded++;
		if (!check_datagram(dg, len, max_len)) {
			fprintf(stderr, "  random_datagrams: failed at iteration %ld; replay with "
				"HM_WIRE_SEED=%#" PRIx64 "\n", i, seed);
			free(dg);
			return;
		}
		free(dg);
	}
	printf("     %ld datagrams, %ld decoded, %ld non-empty batches, %ld replies (seed %#"
	       PRIx64 ")\n", iters, decoded, seen_batches, seen_replies, seed);
	/* The mutations must exercise the accepting paths too. */
	ASSERT_GE(decoded, iters / 20, "a fair share of mutated datagrams decode");
	ASSERT_GE(seen_batches, iters / 1000, "some mutated batches validate");
	ASSERT_GE(seen_replies, iters / 1000, "some mutated replies parse");
}

/* ---- VIEW-CHANGE and NEW-VIEW payloads ------------------------------------ */

/* A HEAD with nparts 3, three checkpoint signatures and two certificates
 * (2 and 3 PREPARE signatures). */
static size_t vc_head_sample(uint8_t *p, size_t cap)
{
	uint8_t digest[HM_DIGEST_LEN], sig[3 * HM_SIG_LEN];
	struct hm_vc_entry e1 = { .seq = 21, .view = 2, .pp_len = 300, .voters = 0x0006 };
	struct hm_vc_entry e2 = { .seq = 22, .view = 3, .pp_len = 4, .voters = 0x8201 };
	size_t len = 0;

	memset(digest, 0xd1, sizeof(digest));
	for (size_t i = 0; i < sizeof(sig); i++)
		sig[i] = (uint8_t)i;
	e1.digest = e2.digest = digest;
	e1.pp_sig = e2.pp_sig = sig;
	e1.sigs = e2.sigs = sig;
	p[len++] = HM_VC_HEAD;
	p[len++] = 3;
	memset(p + len, 0xaa, 2 * HM_DIGEST_LEN); /* parts 1 and 2 */
	len += 2 * HM_DIGEST_LEN;
	memset(p + len, 0xcc, HM_DIGEST_LEN);     /* checkpoint digest */
	len += HM_DIGEST_LEN;
	p[len++] = 3;
	for (uint32_t i = 0; i < 3; i++)
		len += hm_vc_cp_put(p + len, cap - len, 4 + i, 7 + i, sig + i);
	p[len++] = 0;
	p[len++] = 2;
	len += hm_vc_entry_put(p + len, cap - len, &e1);
	len += hm_vc_entry_put(p + len, cap - len, &e2);
	return len;
}

HM_TEST(view_change_roundtrip)
{
	uint8_t p[2048];
	size_t len = vc_head_sample(p, sizeof(p));
	uint8_t *x = dup_exact(p, len);
	struct hm_vc_payload v;
	struct hm_vc_iter it;
	struct hm_vc_entry e;
	uint32_t id;
	uint64_t view;
	const uint8_t *sig;

	if (!ASSERT_OK(hm_vc_parse(x, len, &v), "head parses"))
		goto out;
	ASSERT_EQ(v.kind, HM_VC_HEAD, "kind");
	ASSERT_EQ(v.nparts, 3, "nparts");
	ASSERT_EQ(v.part_digests[0], 0xaa, "part digests");
	ASSERT_EQ(v.cp_digest[0], 0xcc, "checkpoint digest");
	ASSERT_EQ(v.ncp, 3, "checkpoint signatures");
	hm_vc_cp_get(&v, 2, &id, &view, &sig);
	ASSERT_EQ(id, 6, "cp replica");
	ASSERT_EQ(view, 9, "cp view");
	ASSERT_EQ(sig[0], 2, "cp sig");
	ASSERT_EQ(v.count, 2, "entries");
	hm_vc_iter_init(&it, &v);
	ASSERT_TRUE(hm_vc_next(&it, &e), "entry 1");
	ASSERT_EQ(e.seq, 21, "seq");
	ASSERT_EQ(e.view, 2, "view");
	ASSERT_EQ(e.pp_len, 300, "pp_len");
	ASSERT_EQ(e.voters, 0x0006, "voters");
	ASSERT_EQ(e.digest[31], 0xd1, "digest");
	ASSERT_TRUE(hm_vc_next(&it, &e), "entry 2");
	ASSERT_EQ(e.voters, 0x8201, "voters");
	ASSERT_EQ(e.sigs[2 * HM_SIG_LEN + 63], (uint8_t)(2 * HM_SIG_LEN + 63), "third sig");
	ASSERT_FALSE(hm_vc_next(&it, &e), "no third entry");

	/* A PART: the same entries after the 4-byte prefix. */
	{
		size_t off = len - (2 * HM_VC_ENTRY_FIXED + 5 * HM_SIG_LEN);
		uint8_t part[2048];

		part[0] = HM_VC_PART;
		part[1] = 2;
		part[2] = 0;
		part[3] = 2;
		memcpy(part + 4, p + off, len - off);
		ASSERT_OK(hm_vc_parse(part, 4 + len - off, &v), "part parses");
		ASSERT_EQ(v.index, 2, "index");
		ASSERT_EQ(v.count, 2, "part entries");
	}
out:
	free(x);
}

/* Every truncation, every trailing byte, every count that lies, and each
 * out-of-range field is refused; parsing reads only inside the buffer
 * (exact-size copies under ASan). */
HM_TEST(view_change_malformed)
{
	uint8_t p[2048], *x;
	size_t len = vc_head_sample(p, sizeof(p));
	struct hm_vc_payload v;
	size_t ncp_off = 2 + 2 * HM_DIGEST_LEN + HM_DIGEST_LEN;
	size_t count_off = ncp_off + 1 + 3 * HM_VC_CP_LEN;

	for (size_t l = 0; l < len; l++) {
		x = dup_exact(p, l);
		if (!ASSERT_ERR(hm_vc_parse(x, l, &v), "truncated head refused")) {
			free(x);
			return;
		}
		free(x);
	}
	p[len] = 0;
	x = dup_exact(p, len + 1);
	ASSERT_ERR(hm_vc_parse(x, len + 1, &v), "trailing byte refused");
	free(x);
#define SPOILED(off, val, what)                                                \
	do {                                                                   \
		uint8_t keep = p[off];                                         \
		p[off] = (val);                                                \
		x = dup_exact(p, len);                                         \
		ASSERT_ERR(hm_vc_parse(x, len, &v), what);                     \
		free(x);                                                       \
		p[off] = keep;                                                 \
	} while (0)
	SPOILED(0, 3, "unknown kind");
	SPOILED(0, 0, "kind 0");
	SPOILED(1, 0, "nparts 0");
	SPOILED(1, HM_VC_MAX_PARTS + 1, "nparts above the limit");
	SPOILED(1, 2, "nparts that moves every later field");
	SPOILED(ncp_off, 4, "checkpoint count too high");
	SPOILED(ncp_off, 2, "checkpoint count too low");
	SPOILED(ncp_off, HM_MAX_REPLICAS + 1, "more checkpoint signatures than replicas");
	SPOILED(ncp_off + 1, HM_MAX_REPLICAS, "checkpoint replica id out of range");
	SPOILED(count_off + 1, 3, "entry count too high");
	SPOILED(count_off + 1, 1, "entry count too low");
	SPOILED(count_off, 1, "entry count far too high");
	/* voters of the first entry: one bit more means 64 bytes more */
	SPOILED(count_off + 2 + 117, 0x07, "voters that disagree with the length");
	SPOILED(count_off + 2 + 117, 0x02, "voters with one signature fewer");
#undef SPOILED
	{
		uint8_t part[4] = { HM_VC_PART, 0, 0, 0 };

		ASSERT_ERR(hm_vc_parse(part, 4, &v), "part index 0");
		part[1] = HM_VC_MAX_PARTS;
		ASSERT_ERR(hm_vc_parse(part, 4, &v), "part index above the limit");
		part[1] = 1;
		ASSERT_OK(hm_vc_parse(part, 4, &v), "an empty part 1");
		part[3] = 1;
		ASSERT_ERR(hm_vc_parse(part, 4, &v), "a part promising an entry it lacks");
	}
}

HM_TEST(new_view_roundtrip_and_malformed)
{
	uint8_t ids[3] = { 0, 2, 5 }, refs[3][HM_DIGEST_LEN], o[HM_DIGEST_LEN], p[1024], *x;
	struct hm_nv_payload nv;
	size_t len;

	memset(refs, 0x31, sizeof(refs));
	refs[2][0] = 0x99;
	memset(o, 0x77, sizeof(o));
	len = hm_nv_new_put(p, sizeof(p), 3, ids, (const uint8_t(*)[HM_DIGEST_LEN])refs, 100,
			    130, o);
	ASSERT_EQ(len, 2 + 3 * 33 + 16 + 32, "NEW length");
	ASSERT_EQ(hm_nv_new_put(p, len - 1, 3, ids, (const uint8_t(*)[HM_DIGEST_LEN])refs, 100,
				130, o), 0, "too small a buffer");
	x = dup_exact(p, len);
	if (ASSERT_OK(hm_nv_parse(x, len, &nv), "NEW parses")) {
		ASSERT_EQ(nv.kind, HM_NV_NEW, "kind");
		ASSERT_EQ(nv.nrefs, 3, "refs");
		ASSERT_EQ(nv.ref_ids[2], 5, "ref id");
		ASSERT_EQ(nv.ref_digests[2][0], 0x99, "ref digest");
		ASSERT_EQ(nv.min_s, 100, "min-s");
		ASSERT_EQ(nv.max_s, 130, "max-s");
		ASSERT_EQ(nv.o_digest[0], 0x77, "H(O)");
	}
	free(x);
	for (size_t l = 0; l <= len + 1; l++) {
		if (l == len)
			continue;
		p[len] = 0;
		x = dup_exact(p, l);
		ASSERT_ERR(hm_nv_parse(x, l, &nv), "NEW of the wrong length refused");
		free(x);
	}
#define NV_SPOILED(off, val, what)                                             \
	do {                                                                   \
		uint8_t keep = p[off];                                         \
		p[off] = (val);                                                \
		ASSERT_ERR(hm_nv_parse(p, len, &nv), what);                    \
		p[off] = keep;                                                 \
	} while (0)
	NV_SPOILED(1, 0, "no refs");
	NV_SPOILED(1, HM_MAX_REPLICAS + 1, "more refs than replicas");
	NV_SPOILED(2 + 33, 0, "a replica named twice");
	NV_SPOILED(2 + 66, 1, "refs not in increasing order");
	NV_SPOILED(2 + 66, HM_MAX_REPLICAS, "ref id out of range");
	NV_SPOILED(2 + 99 + 15, 99, "max-s below min-s");
	NV_SPOILED(0, 9, "unknown kind");
#undef NV_SPOILED
	{
		uint8_t f[2 + HM_DIGEST_LEN + 4] = { HM_NV_FETCH };

		ASSERT_OK(hm_nv_parse(f, 1 + HM_DIGEST_LEN, &nv), "FETCH parses");
		ASSERT_EQ(nv.fetch_replica, -1, "FETCH without a replica byte");
		ASSERT_ERR(hm_nv_parse(f, HM_DIGEST_LEN, &nv), "short FETCH");
		ASSERT_ERR(hm_nv_parse(f, 3 + HM_DIGEST_LEN, &nv), "long FETCH");
		f[1 + HM_DIGEST_LEN] = 3;
		ASSERT_OK(hm_nv_parse(f, 2 + HM_DIGEST_LEN, &nv), "FETCH naming a replica");
		ASSERT_EQ(nv.fetch_replica, 3, "the replica named");
		f[1 + HM_DIGEST_LEN] = HM_MAX_REPLICAS;
		ASSERT_ERR(hm_nv_parse(f, 2 + HM_DIGEST_LEN, &nv), "FETCH replica out of range");
		f[1 + HM_DIGEST_LEN] = 0;
		f[0] = HM_NV_BATCH;
		f[1] = 1;
		ASSERT_OK(hm_nv_parse(f, sizeof(f), &nv), "BATCH parses");
		ASSERT_TRUE(nv.committed, "committed flag");
		ASSERT_EQ(nv.batch_len, 4, "batch length");
		ASSERT_TRUE(nv.batch == f + HM_NV_BATCH_OVERHEAD, "batch after the digest");
		f[1] = 2;
		ASSERT_ERR(hm_nv_parse(f, sizeof(f), &nv), "committed flag other than 0/1");
		ASSERT_ERR(hm_nv_parse(f, 1 + HM_DIGEST_LEN, &nv), "BATCH without its digest");
		ASSERT_ERR(hm_nv_parse(f, 0, &nv), "empty payload");
	}
	{
		uint8_t r[1 + HM_HDR_LEN + 8] = { HM_NV_VC };

		ASSERT_OK(hm_nv_parse(r, sizeof(r), &nv), "VC (a relayed VIEW_CHANGE) parses");
		ASSERT_TRUE(nv.vc == r + 1 && nv.vc_len == HM_HDR_LEN + 8, "the datagram after the kind");
		ASSERT_OK(hm_nv_parse(r, 1 + HM_HDR_LEN, &nv), "VC of a bare header parses");
		ASSERT_ERR(hm_nv_parse(r, HM_HDR_LEN, &nv), "VC shorter than a header");
	}
	{
		uint8_t q[2 + HM_DIGEST_LEN + 3 * HM_VC_CP_LEN] = { HM_NV_PROOF };

		q[1 + HM_DIGEST_LEN] = 3;
		q[2 + HM_DIGEST_LEN + HM_VC_CP_LEN] = 1;
		q[2 + HM_DIGEST_LEN + 2 * HM_VC_CP_LEN] = 2;
		ASSERT_OK(hm_nv_parse(q, sizeof(q), &nv), "PROOF parses");
		ASSERT_EQ(nv.ncp, 3, "three signatures");
		ASSERT_TRUE(nv.cp == q + 2 + HM_DIGEST_LEN && nv.digest == q + 1, "PROOF fields");
		ASSERT_ERR(hm_nv_parse(q, sizeof(q) - 1, &nv), "PROOF cut short");
		q[1 + HM_DIGEST_LEN] = 2;
		ASSERT_ERR(hm_nv_parse(q, sizeof(q), &nv), "PROOF count disagrees with its length");
		q[1 + HM_DIGEST_LEN] = 3;
		q[2 + HM_DIGEST_LEN + 2 * HM_VC_CP_LEN] = HM_MAX_REPLICAS;
		ASSERT_ERR(hm_nv_parse(q, sizeof(q), &nv), "PROOF replica out of range");
	}
}
