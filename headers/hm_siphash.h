/* SPDX-License-Identifier: MIT */
/*
 * SipHash-2-4 (Aumasson and Bernstein, "SipHash: a fast short-input PRF",
 * 2012), written once for both sides of HyperMesh:
 *
 *   - userspace (gcc, <linux/types.h>): hm_siphash24() for any length, and
 *   - BPF programs (clang -target bpf, vmlinux.h included first):
 *     hm_siphash24_128() over exactly HM_MACED_LEN (128) bytes, straight-line
 *     code at constant offsets so the verifier walks it once, cheaply.
 *
 * Both return the 64-bit result.  On the wire (the header's `mac` field) it is
 * stored as its little-endian byte encoding, the byte order of the reference
 * implementation's output: use hm_siphash_store_le64() / hm_siphash_load_le64().
 *
 * Algorithm (from the paper): the 128-bit key is k0 || k1, two little-endian
 * 64-bit words.  The state is initialised to
 *   v0 = k0 ^ "somepseu", v1 = k1 ^ "dorandom",
 *   v2 = k0 ^ "lygenera", v3 = k1 ^ "tedbytes".
 * The message is cut into little-endian 64-bit words m_i; the last word holds
 * the 0..7 trailing bytes and (len mod 256) in its top byte.  Each word is
 * absorbed as v3 ^= m; two SipRounds; v0 ^= m.  Finalisation: v2 ^= 0xff, four
 * SipRounds, result v0 ^ v1 ^ v2 ^ v3.
 */
#ifndef HM_SIPHASH_H
#define HM_SIPHASH_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#ifndef HM_MACED_LEN
#define HM_MACED_LEN 128
#endif

#define HM_SIPHASH_KEY_LEN 16

/* Ask clang to unroll constant-bound loops (the BPF build relies on it to get
 * straight-line code); gcc does not know the pragma, so it gets nothing. */
#if defined(__clang__)
#define HM_SIPHASH_UNROLL _Pragma("unroll")
#else
#define HM_SIPHASH_UNROLL
#endif

static inline __attribute__((always_inline)) __u64 hm_siphash_rotl(__u64 x, int b)
{
	return (x << b) | (x >> (64 - b));
}

/* Little-endian 64-bit load/store, byte by byte: independent of the host's
 * byte order and of alignment (compilers fold it into one load on LE hosts). */
static inline __attribute__((always_inline)) __u64 hm_siphash_load_le64(const __u8 *p)
{
	return (__u64)p[0] | (__u64)p[1] << 8 | (__u64)p[2] << 16 | (__u64)p[3] << 24 |
	       (__u64)p[4] << 32 | (__u64)p[5] << 40 | (__u64)p[6] << 48 | (__u64)p[7] << 56;
}

static inline __attribute__((always_inline)) void hm_siphash_store_le64(__u8 *p, __u64 v)
{
	p[0] = (__u8)v;
	p[1] = (__u8)(v >> 8);
	p[2] = (__u8)(v >> 16);
	p[3] = (__u8)(v >> 24);
	p[4] = (__u8)(v >> 32);
	p[5] = (__u8)(v >> 40);
	p[6] = (__u8)(v >> 48);
	p[7] = (__u8)(v >> 56);
}

struct hm_siphash_state {
	__u64 v0, v1, v2, v3;
};

static inline __attribute__((always_inline)) void hm_sipround(struct hm_siphash_state *s)
{
	s->v0 += s->v1;
	s->v1 = hm_siphash_rotl(s->v1, 13);
	s->v1 ^= s->v0;
	s->v0 = hm_siphash_rotl(s->v0, 32);

	s->v2 += s->v3;
	s->v3 = hm_siphash_rotl(s->v3, 16);
	s->v3 ^= s->v2;

	s->v0 += s->v3;
	s->v3 = hm_siphash_rotl(s->v3, 21);
	s->v3 ^= s->v0;

	s->v2 += s->v1;
	s->v1 = hm_siphash_rotl(s->v1, 17);
	s->v1 ^= s->v2;
	s->v2 = hm_siphash_rotl(s->v2, 32);
}

static inline __attribute__((always_inline)) void
hm_siphash_init(struct hm_siphash_state *s, const __u8 key[HM_SIPHASH_KEY_LEN])
{
	__u64 k0 = hm_siphash_load_le64(key);
	__u64 k1 = hm_siphash_load_le64(key + 8);

	s->v0 = k0 ^ 0x736f6d6570736575ULL; /* "somepseu" */
	s->v1 = k1 ^ 0x646f72616e646f6dULL; /* "dorandom" */
	s->v2 = k0 ^ 0x6c7967656e657261ULL; /* "lygenera" */
	s->v3 = k1 ^ 0x7465646279746573ULL; /* "tedbytes" */
}

/* Absorb one message word: the "2" of SipHash-2-4. */
static inline __attribute__((always_inline)) void hm_siphash_absorb(struct hm_siphash_state *s,
								    __u64 m)
{
	s->v3 ^= m;
	hm_sipround(s);
	hm_sipround(s);
	s->v0 ^= m;
}

/* Finalise: the "4" of SipHash-2-4. */
static inline __attribute__((always_inline)) __u64 hm_siphash_final(struct hm_siphash_state *s)
{
	s->v2 ^= 0xff;
	hm_sipround(s);
	hm_sipround(s);
	hm_sipround(s);
	hm_sipround(s);
	return s->v0 ^ s->v1 ^ s->v2 ^ s->v3;
}

/*
 * SipHash-2-4 of exactly HM_MACED_LEN = 128 bytes: 16 full words, then the
 * length block, which for len = 128 carries no message bytes and only
 * (128 mod 256) << 56.  The loop has a constant bound and is unrolled by clang,
 * so a BPF program sees straight-line code reading data[] at constant offsets.
 */
static inline __attribute__((always_inline)) __u64
hm_siphash24_128(const __u8 key[HM_SIPHASH_KEY_LEN], const __u8 data[HM_MACED_LEN])
{
	struct hm_siphash_state s;
	int i;

	hm_siphash_init(&s, key);
	HM_SIPHASH_UNROLL
	for (i = 0; i < HM_MACED_LEN / 8; i++)
		hm_siphash_absorb(&s, hm_siphash_load_le64(data + 8 * i));
	hm_siphash_absorb(&s, (__u64)(HM_MACED_LEN & 0xff) << 56);
	return hm_siphash_final(&s);
}

#ifndef __VMLINUX_H__
/* SipHash-2-4 of any length (userspace and tests; not meant for BPF). */
static inline __u64 hm_siphash24(const __u8 key[HM_SIPHASH_KEY_LEN], const void *data, __u32 len)
{
	const __u8 *p = (const __u8 *)data;
	struct hm_siphash_state s;
	__u32 full = len & ~7u, i;
	__u64 last;

	hm_siphash_init(&s, key);
	for (i = 0; i < full; i += 8)
		hm_siphash_absorb(&s, hm_siphash_load_le64(p + i));

	last = (__u64)(len & 0xff) << 56;
	for (i = 0; i < (len & 7); i++)
		last |= (__u64)p[full + i] << (8 * i);
	hm_siphash_absorb(&s, last);
	return hm_siphash_final(&s);
}
#endif

#endif /* HM_SIPHASH_H */
