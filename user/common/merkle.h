/* SPDX-License-Identifier: MIT */
/*
 * Merkle hash trees of RFC 9162 section 2.1 (the same trees as RFC 6962
 * section 2.1): SHA-256, leaf hash H(0x00 || leaf), node hash
 * H(0x01 || left || right), MTH of the empty tree H("").
 *
 * Proof generation works on an array of leaf hashes (what a log or a test
 * keeps); verification needs only the proof, the sizes and the roots, and
 * follows the algorithms of RFC 9162 sections 2.1.3.2 and 2.1.4.2.
 */
#ifndef HM_MERKLE_H
#define HM_MERKLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HM_MERKLE_HASH_LEN 32
/* A proof in a tree of up to 2^64 leaves has at most 64 hashes (inclusion)
 * or 2 * 64 (consistency, a loose bound); callers may size arrays with this. */
#define HM_MERKLE_MAX_PATH 128

typedef uint8_t hm_merkle_hash[HM_MERKLE_HASH_LEN];

/* H(0x00 || data) */
void hm_merkle_leaf_hash(const void *data, size_t len, hm_merkle_hash out);
/* H(0x01 || left || right) */
void hm_merkle_node_hash(const hm_merkle_hash left, const hm_merkle_hash right, hm_merkle_hash out);
/* MTH(D[n]) over leaf hashes; n = 0 gives SHA-256 of the empty string. */
void hm_merkle_root(const hm_merkle_hash *leaves, size_t n, hm_merkle_hash out);

/* PATH(index, D[n]) into path (cap entries); returns its length, or -1 when
 * index >= n or cap is too small. */
int hm_merkle_inclusion_proof(const hm_merkle_hash *leaves, size_t n, size_t index,
			      hm_merkle_hash *path, size_t cap);
/* PROOF(m, D[n]) into path; returns its length, or -1 when m is 0 or above n
 * or cap is too small.  m == n gives the empty proof. */
int hm_merkle_consistency_proof(const hm_merkle_hash *leaves, size_t n, size_t m,
				hm_merkle_hash *path, size_t cap);

/* RFC 9162 2.1.3.2: does path prove leaf_hash at index in the tree of size
 * tree_size with this root? */
bool hm_merkle_verify_inclusion(uint64_t index, uint64_t tree_size, const hm_merkle_hash leaf_hash,
				const hm_merkle_hash *path, size_t path_len, const hm_merkle_hash root);
/* RFC 9162 2.1.4.2: does path prove the tree (first, first_root) is a prefix
 * of (second, second_root)?  first == second needs an empty path and equal
 * roots; first == 0 (the empty tree) needs an empty path and the empty root. */
bool hm_merkle_verify_consistency(uint64_t first, uint64_t second, const hm_merkle_hash first_root,
				  const hm_merkle_hash second_root, const hm_merkle_hash *path,
				  size_t path_len);

#endif /* HM_MERKLE_H */
