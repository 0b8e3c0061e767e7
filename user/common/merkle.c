// SPDX-License-Identifier: MIT
/*
 * Merkle hash trees and their proofs, for any hash function (see merkle.h),
 * and the SHA-256 instance Certificate Transparency uses.
 */
#include "common/merkle.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

#define TAG_LEAF 0x00
#define TAG_NODE 0x01

/* ---- SHA-256 ------------------------------------------------------------- */

static void sha256_tagged(uint8_t tag, const void *data, size_t len, hm_merkle_hash out)
{
	uint8_t buf[1 + 2 * HM_MERKLE_HASH_LEN];
	EVP_MD_CTX *md;

	if (len <= 2 * HM_MERKLE_HASH_LEN) { /* a node, or a short leaf: one call */
		buf[0] = tag;
		if (len)
			memcpy(buf + 1, data, len);
		SHA256(buf, 1 + len, out);
		return;
	}
	/* Allocation failure here leaves no sensible result: abort rather than
	 * hand back a hash that is not one. */
	md = EVP_MD_CTX_new();
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) || !EVP_DigestUpdate(md, &tag, 1) ||
	    !EVP_DigestUpdate(md, data, len) || !EVP_DigestFinal_ex(md, out, NULL))
		abort();
	EVP_MD_CTX_free(md);
}

static void sha256_empty(hm_merkle_hash out)
{
	SHA256(NULL, 0, out);
}

const struct hm_merkle_hasher hm_merkle_sha256 = {
	.tagged = sha256_tagged,
	.empty = sha256_empty,
};

/* ---- hashes and roots ---------------------------------------------------- */

void hm_merkle_leaf_hash_with(const struct hm_merkle_hasher *h, const void *data, size_t len,
			      hm_merkle_hash out)
{
	h->tagged(TAG_LEAF, data, len, out);
}

void hm_merkle_node_hash_with(const struct hm_merkle_hasher *h, const hm_merkle_hash left,
			      const hm_merkle_hash right, hm_merkle_hash out)
{
	uint8_t buf[2 * HM_MERKLE_HASH_LEN];

	memcpy(buf, left, HM_MERKLE_HASH_LEN);
	memcpy(buf + HM_MERKLE_HASH_LEN, right, HM_MERKLE_HASH_LEN);
	h->tagged(TAG_NODE, buf, sizeof(buf), out);
}

size_t hm_merkle_level_up(const struct hm_merkle_hasher *h, const hm_merkle_hash *from, size_t n,
			  hm_merkle_hash *to)
{
	size_t m = 0;

	for (size_t i = 0; i < n; i += 2, m++) {
		if (i + 1 < n)
			hm_merkle_node_hash_with(h, from[i], from[i + 1], to[m]);
		else
			memmove(to[m], from[i], HM_MERKLE_HASH_LEN);
	}
	return m;
}

/* The root by levels: hash adjacent pairs and carry an odd last node up
 * unchanged.  Because RFC 9162 splits at the largest power of two below n,
 * its left subtrees are always complete, and this bottom-up pairing builds
 * exactly the same tree as the recursive definition (which the tests use). */
void hm_merkle_root_with(const struct hm_merkle_hasher *h, const hm_merkle_hash *leaves, size_t n,
			 hm_merkle_hash out)
{
	hm_merkle_hash *level;

	if (n == 0) {
		h->empty(out);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[0], HM_MERKLE_HASH_LEN);
		return;
	}
	level = malloc(((n + 1) / 2) * sizeof(*level));
	if (!level)
		abort();
	n = hm_merkle_level_up(h, leaves, n, level);
	while (n > 1)
		n = hm_merkle_level_up(h, level, n, level);
	memcpy(out, level[0], HM_MERKLE_HASH_LEN);
	free(level);
}

/* ---- proofs from the leaves ---------------------------------------------- */

/* Largest power of two strictly below n (n >= 2). */
static size_t split_point(size_t n)
{
	size_t k = 1;

	while (k << 1 < n)
		k <<= 1;
	return k;
}

static void reverse(hm_merkle_hash *path, size_t len)
{
	hm_merkle_hash tmp;

	for (size_t i = 0; i < len / 2; i++) {
		memcpy(tmp, path[i], HM_MERKLE_HASH_LEN);
		memcpy(path[i], path[len - 1 - i], HM_MERKLE_HASH_LEN);
		memcpy(path[len - 1 - i], tmp, HM_MERKLE_HASH_LEN);
	}
}

/* Bottom-up, a node at position i of a level of s nodes has a sibling
 * (which the path supplies) when i is odd or i + 1 < s; otherwise it is
 * carried up. */
size_t hm_merkle_path_len(uint64_t n, uint64_t index)
{
	size_t len = 0;

	for (uint64_t s = n, i = index; s > 1; s = (s + 1) / 2, i >>= 1)
		if ((i & 1) || i + 1 < s)
			len++;
	return len;
}

/* PATH(m, D[n]) unrolled: walk from the root towards the leaf, collecting
 * the sibling subtree at each split, then reverse into leaf-to-root order. */
int hm_merkle_inclusion_proof_with(const struct hm_merkle_hasher *h, const hm_merkle_hash *leaves,
				   size_t n, size_t index, hm_merkle_hash *path, size_t cap)
{
	size_t lo = 0, hi = n, len = 0;

	if (index >= n)
		return -1;
	while (hi - lo > 1) {
		size_t k = split_point(hi - lo);

		if (len == cap)
			return -1;
		if (index < lo + k) {
			hm_merkle_root_with(h, leaves + lo + k, hi - lo - k, path[len++]);
			hi = lo + k;
		} else {
			hm_merkle_root_with(h, leaves + lo, k, path[len++]);
			lo += k;
		}
	}
	reverse(path, len);
	return (int)len;
}

/* SUBPROOF(m, D[n], b) unrolled the same way. */
int hm_merkle_consistency_proof_with(const struct hm_merkle_hasher *h,
				     const hm_merkle_hash *leaves, size_t n, size_t m,
				     hm_merkle_hash *path, size_t cap)
{
	size_t lo = 0, hi = n, len = 0;
	bool whole = true; /* b: is the old tree's root a node of this subtree's path? */

	if (m == 0 || m > n)
		return -1;
	for (;;) {
		size_t size = hi - lo, k;

		if (m == size) {
			if (!whole) {
				if (len == cap)
					return -1;
				hm_merkle_root_with(h, leaves + lo, size, path[len++]);
			}
			break;
		}
		if (len == cap)
			return -1;
		k = split_point(size);
		if (m <= k) {
			hm_merkle_root_with(h, leaves + lo + k, size - k, path[len++]);
			hi = lo + k;
		} else {
			hm_merkle_root_with(h, leaves + lo, k, path[len++]);
			m -= k;
			lo += k;
			whole = false;
		}
	}
	reverse(path, len);
	return (int)len;
}

/* ---- verification -------------------------------------------------------- */

bool hm_merkle_root_from_path(const struct hm_merkle_hasher *h, uint64_t index, uint64_t tree_size,
			      const hm_merkle_hash leaf_hash, const hm_merkle_hash *path,
			      size_t path_len, hm_merkle_hash root)
{
	uint64_t fn = index, sn;
	hm_merkle_hash r;

	if (index >= tree_size)
		return false;
	sn = tree_size - 1;
	memcpy(r, leaf_hash, HM_MERKLE_HASH_LEN);
	for (size_t i = 0; i < path_len; i++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			hm_merkle_node_hash_with(h, path[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			hm_merkle_node_hash_with(h, r, path[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	if (sn != 0)
		return false;
	memcpy(root, r, HM_MERKLE_HASH_LEN);
	return true;
}

bool hm_merkle_verify_inclusion_with(const struct hm_merkle_hasher *h, uint64_t index,
				     uint64_t tree_size, const hm_merkle_hash leaf_hash,
				     const hm_merkle_hash *path, size_t path_len,
				     const hm_merkle_hash root)
{
	hm_merkle_hash r;

	return hm_merkle_root_from_path(h, index, tree_size, leaf_hash, path, path_len, r) &&
	       memcmp(r, root, HM_MERKLE_HASH_LEN) == 0;
}

bool hm_merkle_verify_consistency_with(const struct hm_merkle_hasher *h, uint64_t first,
				       uint64_t second, const hm_merkle_hash first_root,
				       const hm_merkle_hash second_root, const hm_merkle_hash *path,
				       size_t path_len)
{
	uint64_t fn, sn;
	hm_merkle_hash fr, sr;
	size_t i = 0;

	if (first > second)
		return false;
	if (first == 0) {
		hm_merkle_hash empty;

		h->empty(empty);
		return path_len == 0 && memcmp(first_root, empty, HM_MERKLE_HASH_LEN) == 0;
	}
	if (first == second)
		return path_len == 0 && memcmp(first_root, second_root, HM_MERKLE_HASH_LEN) == 0;
	if (path_len == 0)
		return false;
	/* If first is a power of two, its root is the proof's implicit first
	 * element; otherwise the proof starts with a node inside both trees. */
	if ((first & (first - 1)) == 0) {
		memcpy(fr, first_root, HM_MERKLE_HASH_LEN);
	} else {
		memcpy(fr, path[0], HM_MERKLE_HASH_LEN);
		i = 1;
	}
	memcpy(sr, fr, HM_MERKLE_HASH_LEN);
	fn = first - 1;
	sn = second - 1;
	while (fn & 1) {
		fn >>= 1;
		sn >>= 1;
	}
	for (; i < path_len; i++) {
		if (sn == 0)
			return false;
		if ((fn & 1) || fn == sn) {
			hm_merkle_node_hash_with(h, path[i], fr, fr);
			hm_merkle_node_hash_with(h, path[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			hm_merkle_node_hash_with(h, sr, path[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(fr, first_root, HM_MERKLE_HASH_LEN) == 0 &&
	       memcmp(sr, second_root, HM_MERKLE_HASH_LEN) == 0;
}

/* ---- a tree with its levels ---------------------------------------------- */

int hm_merkle_tree_build(struct hm_merkle_tree *t, const struct hm_merkle_hasher *h,
			 hm_merkle_hash *leaves, size_t n)
{
	memset(t, 0, sizeof(*t));
	t->h = h;
	if (n == 0) {
		free(leaves);
		return -1;
	}
	t->levels[0] = leaves;
	t->size[0] = n;
	t->nlevels = 1;
	while (n > 1) {
		size_t j = t->nlevels;

		t->levels[j] = malloc(((n + 1) / 2) * sizeof(hm_merkle_hash));
		if (!t->levels[j]) {
			hm_merkle_tree_free(t);
			return -1;
		}
		n = hm_merkle_level_up(h, t->levels[j - 1], n, t->levels[j]);
		t->size[j] = n;
		t->nlevels = j + 1;
	}
	return 0;
}

void hm_merkle_tree_free(struct hm_merkle_tree *t)
{
	for (size_t j = 0; j < t->nlevels; j++)
		free(t->levels[j]);
	memset(t, 0, sizeof(*t));
}

const uint8_t *hm_merkle_tree_root(const struct hm_merkle_tree *t)
{
	return t->levels[t->nlevels - 1][0];
}

int hm_merkle_tree_path(const struct hm_merkle_tree *t, size_t index, hm_merkle_hash *path)
{
	size_t len = 0;

	if (t->nlevels == 0 || index >= t->size[0])
		return -1;
	for (size_t j = 0; j + 1 < t->nlevels; j++, index >>= 1) {
		size_t sib = index ^ 1;

		if (sib < t->size[j])
			memcpy(path[len++], t->levels[j][sib], HM_MERKLE_HASH_LEN);
	}
	return (int)len;
}

/* ---- SHA-256 (Certificate Transparency) ----------------------------------- */

void hm_merkle_leaf_hash(const void *data, size_t len, hm_merkle_hash out)
{
	hm_merkle_leaf_hash_with(&hm_merkle_sha256, data, len, out);
}

void hm_merkle_node_hash(const hm_merkle_hash left, const hm_merkle_hash right, hm_merkle_hash out)
{
	hm_merkle_node_hash_with(&hm_merkle_sha256, left, right, out);
}

void hm_merkle_root(const hm_merkle_hash *leaves, size_t n, hm_merkle_hash out)
{
	hm_merkle_root_with(&hm_merkle_sha256, leaves, n, out);
}

int hm_merkle_inclusion_proof(const hm_merkle_hash *leaves, size_t n, size_t index,
			      hm_merkle_hash *path, size_t cap)
{
	return hm_merkle_inclusion_proof_with(&hm_merkle_sha256, leaves, n, index, path, cap);
}

int hm_merkle_consistency_proof(const hm_merkle_hash *leaves, size_t n, size_t m,
				hm_merkle_hash *path, size_t cap)
{
	return hm_merkle_consistency_proof_with(&hm_merkle_sha256, leaves, n, m, path, cap);
}

bool hm_merkle_verify_inclusion(uint64_t index, uint64_t tree_size, const hm_merkle_hash leaf_hash,
				const hm_merkle_hash *path, size_t path_len, const hm_merkle_hash root)
{
	return hm_merkle_verify_inclusion_with(&hm_merkle_sha256, index, tree_size, leaf_hash, path,
					       path_len, root);
}

bool hm_merkle_verify_consistency(uint64_t first, uint64_t second, const hm_merkle_hash first_root,
				  const hm_merkle_hash second_root, const hm_merkle_hash *path,
				  size_t path_len)
{
	return hm_merkle_verify_consistency_with(&hm_merkle_sha256, first, second, first_root,
						 second_root, path, path_len);
}
