// SPDX-License-Identifier: MIT
/*
 * One signature per batch of replies (user/common/reply_proof.c): every
 * leaf of every batch size up to 70 is proven by its path under the one
 * signature; the encoding round-trips and has one form (truncation at every
 * length, a wrong path length, an index past the size are refused); and the
 * cases that break a naive check fail: a path from another batch, a root
 * signed for another seq or by another replica, a leaf swapped between
 * clients, a body changed by one byte, another timestamp, a non-canonical
 * signature, and a message-header signature passed off as a statement's.
 */
#include <sodium.h>

#include "common/crypto.h"
#include "common/reply_proof.h"
#include "common/wire.h"
#include "hm_test.h"

static struct hm_keypair kp, other;

static void setup(void)
{
	static bool done;

	if (done)
		return;
	if (hm_crypto_init() < 0 || hm_keypair_generate(&kp) < 0 || hm_keypair_generate(&other) < 0)
		abort();
	done = true;
}

/* Body of client c's reply in a batch at seq: result "r<c>". */
static size_t body_for(uint8_t *b, size_t cap, uint32_t c, uint64_t seq)
{
	uint8_t d[HM_DIGEST_LEN];
	char result[16];

	memset(d, (int)c, sizeof(d));
	snprintf(result, sizeof(result), "r%u", c);
	return hm_reply_body(b, cap, c, seq, d, HM_REPLY_RESULT, result, strlen(result));
}

static void leaves_for(hm_merkle_hash *leaves, size_t n, uint64_t seq)
{
	uint8_t b[128];

	for (size_t i = 0; i < n; i++)
		hm_reply_leaf(1000 + i, b, body_for(b, sizeof(b), (uint32_t)(100 + i), seq), leaves[i]);
}

HM_TEST(every_leaf_of_every_size)
{
	hm_merkle_hash leaves[70];

	setup();
	for (size_t n = 1; n <= 70; n++) {
		struct hm_reply_batch rb;

		leaves_for(leaves, n, 5);
		if (!ASSERT_OK(hm_reply_batch_sign(&rb, leaves, n, 3, 5, &kp), "sign"))
			return;
		for (size_t i = 0; i < n; i++) {
			struct hm_reply_proof p, q;
			uint8_t enc[HM_RP_MAX_LEN];
			size_t len;
			char what[64];

			snprintf(what, sizeof(what), "leaf %zu of %zu", i, n);
			hm_reply_batch_proof(&rb, (uint16_t)i, &p);
			ASSERT_EQ(p.size, n, what);
			ASSERT_EQ(p.path_len, hm_merkle_path_len(n, i), what);
			ASSERT_TRUE(hm_reply_proof_check(&p, 3, 5, leaves[i], kp.pk), what);
			/* another leaf of the same batch under this path */
			ASSERT_FALSE(n > 1 && hm_reply_proof_check(&p, 3, 5, leaves[(i + 1) % n], kp.pk),
				     what);
			len = hm_reply_proof_encode(&p, enc, sizeof(enc));
			ASSERT_EQ(len, HM_RP_FIXED_LEN + p.path_len * HM_MERKLE_HASH_LEN, what);
			ASSERT_EQ(hm_reply_proof_parse(enc, len, &q), (int)len, what);
			ASSERT_TRUE(memcmp(&p, &q, sizeof(p)) == 0, what);
		}
		hm_reply_batch_free(&rb);
	}
	ASSERT_ERR(hm_reply_batch_sign(&(struct hm_reply_batch){ 0 }, leaves, 0, 3, 5, &kp),
		   "an empty batch is never signed");
}

/* The proof a test starts from: leaf 2 of 6 at seq 9, signed by replica 1. */
static void sample(struct hm_reply_proof *p, hm_merkle_hash leaves[6])
{
	struct hm_reply_batch rb;

	leaves_for(leaves, 6, 9);
	if (hm_reply_batch_sign(&rb, leaves, 6, 1, 9, &kp) < 0)
		abort();
	hm_reply_batch_proof(&rb, 2, p);
	hm_reply_batch_free(&rb);
}

HM_TEST(naive_breakers)
{
	hm_merkle_hash leaves[6], other_leaves[6];
	struct hm_reply_proof p, q;
	struct hm_reply_batch rb;
	uint8_t b[128], st[HM_RP_STATEMENT_LEN];
	size_t blen;

	setup();
	sample(&p, leaves);
	ASSERT_TRUE(hm_reply_proof_check(&p, 1, 9, leaves[2], kp.pk), "the good one");
	ASSERT_FALSE(hm_reply_proof_check(&p, 1, 10, leaves[2], kp.pk), "claimed for another seq");
	ASSERT_FALSE(hm_reply_proof_check(&p, 2, 9, leaves[2], kp.pk), "claimed by another replica");
	ASSERT_FALSE(hm_reply_proof_check(&p, 1, 9, leaves[2], other.pk), "another key");
	/* A path from another batch (seq 10, so other leaves): valid there,
	 * not for this leaf. */
	leaves_for(other_leaves, 6, 10);
	if (!ASSERT_OK(hm_reply_batch_sign(&rb, other_leaves, 6, 1, 10, &kp), "sign"))
		return;
	hm_reply_batch_proof(&rb, 2, &q);
	hm_reply_batch_free(&rb);
	ASSERT_TRUE(hm_reply_proof_check(&q, 1, 10, other_leaves[2], kp.pk), "there");
	ASSERT_FALSE(hm_reply_proof_check(&q, 1, 10, leaves[2], kp.pk), "a path from another batch");
	ASSERT_FALSE(hm_reply_proof_check(&q, 1, 9, leaves[2], kp.pk), "... claimed for ours");
	/* The same batch signed for another seq: a root signed for seq 8. */
	if (!ASSERT_OK(hm_reply_batch_sign(&rb, leaves, 6, 1, 8, &kp), "sign"))
		return;
	hm_reply_batch_proof(&rb, 2, &q);
	hm_reply_batch_free(&rb);
	ASSERT_FALSE(hm_reply_proof_check(&q, 1, 9, leaves[2], kp.pk), "a root signed for seq 8");
	/* A leaf swapped between clients: client 103's proof for client 102's
	 * leaf, at either index. */
	if (!ASSERT_OK(hm_reply_batch_sign(&rb, leaves, 6, 1, 9, &kp), "sign"))
		return;
	hm_reply_batch_proof(&rb, 3, &q);
	hm_reply_batch_free(&rb);
	ASSERT_FALSE(hm_reply_proof_check(&q, 1, 9, leaves[2], kp.pk), "another client's path");
	q.index = 2;
	ASSERT_FALSE(hm_reply_proof_check(&q, 1, 9, leaves[2], kp.pk), "... at our index");
	q.index = 3;
	ASSERT_FALSE(hm_reply_proof_check(&q, 1, 9, leaves[2], kp.pk), "... at its own");
	/* The leaf binds the body byte for byte, and the timestamp. */
	blen = body_for(b, sizeof(b), 102, 9);
	for (size_t i = 0; i < blen; i++) {
		hm_merkle_hash l;

		b[i] ^= 1;
		hm_reply_leaf(1002, b, blen, l);
		ASSERT_FALSE(hm_reply_proof_check(&p, 1, 9, l, kp.pk), "a body byte changed");
		b[i] ^= 1;
	}
	{
		hm_merkle_hash l;

		hm_reply_leaf(1002, b, blen, l);
		ASSERT_TRUE(hm_reply_proof_check(&p, 1, 9, l, kp.pk), "rebuilt");
		hm_reply_leaf(1003, b, blen, l);
		ASSERT_FALSE(hm_reply_proof_check(&p, 1, 9, l, kp.pk), "another timestamp");
	}
	/* A size claimed other than signed, with the path of that shape. */
	q = p;
	q.size = 5;
	ASSERT_FALSE(hm_reply_proof_check(&q, 1, 9, leaves[2], kp.pk), "another size");
	/* Non-canonical S (S + L) is refused, though libsodium might not. */
	{
		static const uint8_t L[32] = { 0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
					       0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
					       0,    0,    0,    0,    0,    0,    0,    0,
					       0,    0,    0,    0,    0,    0,    0,    0x10 };
		unsigned carry = 0;

		q = p;
		for (int i = 0; i < 32; i++) {
			unsigned v = q.sig[32 + i] + L[i] + carry;

			q.sig[32 + i] = (uint8_t)v;
			carry = v >> 8;
		}
		ASSERT_FALSE(hm_reply_proof_check(&q, 1, 9, leaves[2], kp.pk), "S + L");
	}
	/* A message header signature is not a statement signature: sign the
	 * statement's bytes as a header would be signed (64 bytes from "HMSH")
	 * and it does not verify, nor does a statement pass as a header. */
	hm_reply_statement(st, 1, 9, 6, p.root);
	ASSERT_EQ(hm_get_be32(st), HM_RP_MAGIC, "the statement's magic");
	{
		struct hm_hdr h;

		memset(&h, 0, sizeof(h));
		hm_put_be32((uint8_t *)&h.magic, HM_MAGIC);
		memcpy(h.sig, p.sig, HM_SIG_LEN);
		ASSERT_FALSE(hm_verify_header(&h, kp.pk), "a statement signature as a header's");
		hm_sign_header(&h, &kp);
		q = p;
		memcpy(q.sig, h.sig, HM_SIG_LEN);
		ASSERT_FALSE(hm_reply_proof_check(&q, 1, 9, leaves[2], kp.pk),
			     "a header signature as a statement's");
	}
}

HM_TEST(encoding_has_one_form)
{
	hm_merkle_hash leaves[6];
	struct hm_reply_proof p, q;
	uint8_t enc[HM_RP_MAX_LEN + 8];
	size_t len;

	setup();
	sample(&p, leaves);
	len = hm_reply_proof_encode(&p, enc, sizeof(enc));
	ASSERT_EQ(len, HM_RP_FIXED_LEN + 3 * HM_MERKLE_HASH_LEN, "leaf 2 of 6: 3 hashes");
	for (size_t cut = 0; cut < len; cut++)
		ASSERT_EQ(hm_reply_proof_parse(enc, cut, &q), -1, "truncated");
	ASSERT_EQ(hm_reply_proof_parse(enc, len + 8, &q), (int)len, "what follows is not its");
	enc[4] = 2;
	ASSERT_EQ(hm_reply_proof_parse(enc, len, &q), -1, "a path one short");
	enc[4] = 4;
	ASSERT_EQ(hm_reply_proof_parse(enc, sizeof(enc), &q), -1, "a path one long");
	enc[4] = 3;
	enc[3] = 6;
	ASSERT_EQ(hm_reply_proof_parse(enc, len, &q), -1, "index = size");
	enc[2] = 0xff;
	ASSERT_EQ(hm_reply_proof_parse(enc, len, &q), -1, "index past size");
	/* "No proof": two zero bytes, nothing else of it. */
	ASSERT_EQ(hm_reply_proof_encode(NULL, enc, sizeof(enc)), HM_RP_NONE_LEN, "none");
	ASSERT_EQ(hm_reply_proof_parse(enc, HM_RP_NONE_LEN, &q), HM_RP_NONE_LEN, "none parses");
	ASSERT_EQ(q.size, 0, "none");
	ASSERT_FALSE(hm_reply_proof_check(&q, 1, 9, leaves[2], kp.pk), "none proves nothing");
	ASSERT_EQ(hm_reply_proof_encode(&p, enc, len - 1), 0, "cap one short");
}
