// SPDX-License-Identifier: MIT
/* One signature per executed batch of replies (see reply_proof.h). */
#include "common/reply_proof.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/wire.h"

_Static_assert(HM_DIGEST_LEN == HM_MERKLE_HASH_LEN, "reply leaves are BLAKE2b-256");

#define TAG_LEAF 0x00

static void blake2b_tagged(uint8_t tag, const void *data, size_t len, hm_merkle_hash out)
{
	crypto_generichash_state st;

	crypto_generichash_init(&st, NULL, 0, HM_MERKLE_HASH_LEN);
	crypto_generichash_update(&st, &tag, 1);
	crypto_generichash_update(&st, data, len);
	crypto_generichash_final(&st, out, HM_MERKLE_HASH_LEN);
}

static void blake2b_empty(hm_merkle_hash out)
{
	crypto_generichash(out, HM_MERKLE_HASH_LEN, NULL, 0, NULL, 0);
}

const struct hm_merkle_hasher hm_merkle_blake2b = {
	.tagged = blake2b_tagged,
	.empty = blake2b_empty,
};

void hm_reply_leaf(uint64_t ts, const uint8_t *body, size_t body_len, hm_merkle_hash out)
{
	crypto_generichash_state st;
	uint8_t head[1 + 8];

	head[0] = TAG_LEAF;
	hm_put_be64(head + 1, ts);
	crypto_generichash_init(&st, NULL, 0, HM_MERKLE_HASH_LEN);
	crypto_generichash_update(&st, head, sizeof(head));
	crypto_generichash_update(&st, body, body_len);
	crypto_generichash_final(&st, out, HM_MERKLE_HASH_LEN);
}

void hm_reply_statement(uint8_t out[HM_RP_STATEMENT_LEN], uint32_t replica, uint64_t seq,
			uint16_t size, const hm_merkle_hash root)
{
	hm_put_be32(out, HM_RP_MAGIC);
	hm_put_be32(out + 4, replica);
	hm_put_be64(out + 8, seq);
	hm_put_be32(out + 16, size);
	memcpy(out + 20, root, HM_MERKLE_HASH_LEN);
}

size_t hm_reply_proof_encode(const struct hm_reply_proof *p, uint8_t *buf, size_t cap)
{
	size_t len;
	uint8_t *q;

	if (!p || p->size == 0) {
		if (cap < HM_RP_NONE_LEN)
			return 0;
		buf[0] = buf[1] = 0;
		return HM_RP_NONE_LEN;
	}
	len = HM_RP_FIXED_LEN + (size_t)p->path_len * HM_MERKLE_HASH_LEN;
	if (cap < len || p->path_len > HM_RP_MAX_PATH)
		return 0;
	buf[0] = p->size >> 8;
	buf[1] = (uint8_t)p->size;
	buf[2] = p->index >> 8;
	buf[3] = (uint8_t)p->index;
	buf[4] = p->path_len;
	q = buf + 5;
	memcpy(q, p->path, (size_t)p->path_len * HM_MERKLE_HASH_LEN);
	q += (size_t)p->path_len * HM_MERKLE_HASH_LEN;
	memcpy(q, p->root, HM_MERKLE_HASH_LEN);
	memcpy(q + HM_MERKLE_HASH_LEN, p->sig, HM_SIG_LEN);
	return len;
}

int hm_reply_proof_parse(const uint8_t *buf, size_t len, struct hm_reply_proof *out)
{
	size_t need;
	const uint8_t *q;

	memset(out, 0, sizeof(*out));
	if (len < HM_RP_NONE_LEN)
		return -1;
	out->size = hm_get_be16(buf);
	if (out->size == 0)
		return HM_RP_NONE_LEN;
	if (len < HM_RP_FIXED_LEN)
		return -1;
	out->index = hm_get_be16(buf + 2);
	out->path_len = buf[4];
	/* One encoding per proof: the path is exactly as long as the tree
	 * shape says, so that equal proofs are equal bytes. */
	if (out->index >= out->size || out->path_len > HM_RP_MAX_PATH ||
	    out->path_len != hm_merkle_path_len(out->size, out->index))
		return -1;
	need = HM_RP_FIXED_LEN + (size_t)out->path_len * HM_MERKLE_HASH_LEN;
	if (len < need)
		return -1;
	q = buf + 5;
	memcpy(out->path, q, (size_t)out->path_len * HM_MERKLE_HASH_LEN);
	q += (size_t)out->path_len * HM_MERKLE_HASH_LEN;
	memcpy(out->root, q, HM_MERKLE_HASH_LEN);
	memcpy(out->sig, q + HM_MERKLE_HASH_LEN, HM_SIG_LEN);
	return (int)need;
}

bool hm_reply_proof_check(const struct hm_reply_proof *p, uint32_t replica, uint64_t seq,
			  const hm_merkle_hash leaf, const uint8_t pk[HM_PUBKEY_LEN])
{
	uint8_t st[HM_RP_STATEMENT_LEN];

	if (p->size == 0 || p->index >= p->size ||
	    !hm_merkle_verify_inclusion_with(&hm_merkle_blake2b, p->index, p->size, leaf, p->path,
					     p->path_len, p->root))
		return false;
	/* Only canonical signatures (S < L): one valid encoding per statement. */
	if (!hm_sig_is_canonical(p->sig))
		return false;
	hm_reply_statement(st, replica, seq, p->size, p->root);
	return hm_verify(st, sizeof(st), p->sig, pk);
}

int hm_reply_batch_sign(struct hm_reply_batch *b, const hm_merkle_hash *leaves, size_t n,
			uint32_t replica, uint64_t seq, const struct hm_keypair *kp)
{
	uint8_t st[HM_RP_STATEMENT_LEN];
	hm_merkle_hash *copy;

	memset(b, 0, sizeof(*b));
	if (n == 0 || n > HM_RP_MAX_LEAVES)
		return -1;
	copy = malloc(n * sizeof(*copy));
	if (!copy)
		return -1;
	memcpy(copy, leaves, n * sizeof(*copy));
	if (hm_merkle_tree_build(&b->tree, &hm_merkle_blake2b, copy, n) < 0)
		return -1;
	b->size = (uint16_t)n;
	hm_reply_statement(st, replica, seq, b->size, hm_merkle_tree_root(&b->tree));
	hm_sign(st, sizeof(st), kp->sk, b->sig);
	return 0;
}

void hm_reply_batch_proof(const struct hm_reply_batch *b, uint16_t index,
			  struct hm_reply_proof *out)
{
	int len;

	memset(out, 0, sizeof(*out));
	if (index >= b->size)
		return;
	len = hm_merkle_tree_path(&b->tree, index, out->path);
	if (len < 0 || len > HM_RP_MAX_PATH)
		return;
	out->size = b->size;
	out->index = index;
	out->path_len = (uint8_t)len;
	memcpy(out->root, hm_merkle_tree_root(&b->tree), HM_MERKLE_HASH_LEN);
	memcpy(out->sig, b->sig, HM_SIG_LEN);
}

void hm_reply_batch_free(struct hm_reply_batch *b)
{
	hm_merkle_tree_free(&b->tree);
	memset(b, 0, sizeof(*b));
}
