// SPDX-License-Identifier: MIT
/* Merkle hash trees and their proofs (see merkle.h). */
#include "common/merkle.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

void hm_merkle_leaf_hash(const void *data, size_t len, hm_merkle_hash out)
{
	static const uint8_t prefix = 0x00;
	EVP_MD_CTX *md = EVP_MD_CTX_new();

	/* Allocation failure here leaves no sensible result: abort rather than
	 * hand back a hash that is not one. */
	if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) || !EVP_DigestUpdate(md, &prefix, 1) ||
	    !EVP_DigestUpdate(md, data, len) || !EVP_DigestFinal_ex(md, out, NULL))
		abort();
	EVP_MD_CTX_free(md);
}

void hm_merkle_node_hash(const hm_merkle_hash left, const hm_merkle_hash right, hm_merkle_hash out)
{
	uint8_t buf[1 + 2 * HM_MERKLE_HASH_LEN];

	buf[0] = 0x01;
	memcpy(buf + 1, left, HM_MERKLE_HASH_LEN);
	memcpy(buf + 1 + HM_MERKLE_HASH_LEN, right, HM_MERKLE_HASH_LEN);
	SHA256(buf, sizeof(buf), out);
}

/* The root by levels: hash adjacent pairs and carry an odd last node up
 * unchanged.  Because RFC 9162 splits at the largest power of two below n,
 * its left subtrees are always complete, and this bottom-up pairing builds
 * exactly the same tree as the recursive definition (which the tests use). */
void hm_merkle_root(const hm_merkle_hash *leaves, size_t n, hm_merkle_hash out)
{
	hm_merkle_hash *level;

	if (n == 0) {
		SHA256(NULL, 0, out);
		return;
	}
	if (n == 1) {
		memcpy(out, leaves[0], HM_MERKLE_HASH_LEN);
		return;
	}
	level = malloc(((n + 1) / 2) * sizeof(*level));
	if (!level)
		abort();
	for (size_t i = 0; i < n / 2; i++)
		hm_merkle_node_hash(leaves[2 * i], leaves[2 * i + 1], level[i]);
	if (n % 2)
		memcpy(level[n / 2], leaves[n - 1], HM_MERKLE_HASH_LEN);
	n = (n + 1) / 2;
	while (n > 1) {
		for (size_t i = 0; i < n / 2; i++)
			hm_merkle_node_hash(level[2 * i], level[2 * i + 1], level[i]);
		if (n % 2)
			memcpy(level[n / 2], level[n - 1], HM_MERKLE_HASH_LEN);
		n = (n + 1) / 2;
	}
	memcpy(out, level[0], HM_MERKLE_HASH_LEN);
	free(level);
}

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

/* PATH(m, D[n]) unrolled: walk from the root towards the leaf, collecting
 * the sibling subtree at each split, then reverse into leaf-to-root order. */
int hm_merkle_inclusion_proof(const hm_merkle_hash *leaves, size_t n, size_t index,
			      hm_merkle_hash *path, size_t cap)
{
	size_t lo = 0, hi = n, len = 0;

	if (index >= n)
		return -1;
	while (hi - lo > 1) {
		size_t k = split_point(hi - lo);

		if (len == cap)
			return -1;
		if (index < lo + k) {
			hm_merkle_root(leaves + lo + k, hi - lo - k, path[len++]);
			hi = lo + k;
		} else {
			hm_merkle_root(leaves + lo, k, path[len++]);
			lo += k;
		}
	}
	reverse(path, len);
	return (int)len;
}

/* SUBPROOF(m, D[n], b) unrolled the same way. */
int hm_merkle_consistency_proof(const hm_merkle_hash *leaves, size_t n, size_t m,
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
				hm_merkle_root(leaves + lo, size, path[len++]);
			}
			break;
		}
		if (len == cap)
			return -1;
		k = split_point(size);
		if (m <= k) {
			hm_merkle_root(leaves + lo + k, size - k, path[len++]);
			hi = lo + k;
		} else {
			hm_merkle_root(leaves + lo, k, path[len++]);
			m -= k;
			lo += k;
			whole = false;
		}
	}
	reverse(path, len);
	return (int)len;
}

bool hm_merkle_verify_inclusion(uint64_t index, uint64_t tree_size, const hm_merkle_hash leaf_hash,
				const hm_merkle_hash *path, size_t path_len, const hm_merkle_hash root)
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
			hm_merkle_node_hash(path[i], r, r);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			hm_merkle_node_hash(r, path[i], r);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(r, root, HM_MERKLE_HASH_LEN) == 0;
}

bool hm_merkle_verify_consistency(uint64_t first, uint64_t second, const hm_merkle_hash first_root,
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

		SHA256(NULL, 0, empty);
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
			hm_merkle_node_hash(path[i], fr, fr);
			hm_merkle_node_hash(path[i], sr, sr);
			while (!(fn & 1) && fn != 0) {
				fn >>= 1;
				sn >>= 1;
			}
		} else {
			hm_merkle_node_hash(sr, path[i], sr);
		}
		fn >>= 1;
		sn >>= 1;
	}
	return sn == 0 && memcmp(fr, first_root, HM_MERKLE_HASH_LEN) == 0 &&
	       memcmp(sr, second_root, HM_MERKLE_HASH_LEN) == 0;
}
