/* SPDX-License-Identifier: MIT */
/*
 * Merkle hash trees of RFC 9162 section 2.1 (the same trees as RFC 6962
 * section 2.1), written once and parameterised by the hash function:
 * leaf hash H(0x00 || leaf), node hash H(0x01 || left || right), MTH of the
 * empty tree H("").  The domain separation (the 0x00 / 0x01 tags) and the
 * tree shape (the left subtree holds the largest power of two below n) are
 * this module's; a struct hm_merkle_hasher supplies H.  Two trees use it:
 *
 *   - Certificate Transparency (user/service/ct/): SHA-256, hm_merkle_sha256,
 *     through the plain hm_merkle_* functions below;
 *   - state transfer (user/core/state_transfer.c): BLAKE2b-256, through the
 *     *_with functions and struct hm_merkle_tree.
 *
 * Proof generation works on an array of leaf hashes (what a log or a test
 * keeps), or on a struct hm_merkle_tree with every level precomputed (what a
 * server answering many proofs keeps); verification needs only the proof,
 * the sizes and the roots, and follows the algorithms of RFC 9162 sections
 * 2.1.3.2 and 2.1.4.2.
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
/* Levels of a tree of up to 2^64 leaves, leaves included. */
#define HM_MERKLE_MAX_LEVELS 65

typedef uint8_t hm_merkle_hash[HM_MERKLE_HASH_LEN];

/* The hash function H of a tree, as the two things the tree needs of it. */
struct hm_merkle_hasher {
	/* H(tag || data): tag 0x00 for a leaf, 0x01 for a node (data = left || right) */
	void (*tagged)(uint8_t tag, const void *data, size_t len, hm_merkle_hash out);
	/* H(""), the root of the empty tree */
	void (*empty)(hm_merkle_hash out);
};

/* SHA-256 (OpenSSL): the RFC 6962 / RFC 9162 tree of Certificate Transparency. */
extern const struct hm_merkle_hasher hm_merkle_sha256;

/* ---- any hash function ---------------------------------------------------- */

/* H(0x00 || data) */
void hm_merkle_leaf_hash_with(const struct hm_merkle_hasher *h, const void *data, size_t len,
			      hm_merkle_hash out);
/* H(0x01 || left || right) */
void hm_merkle_node_hash_with(const struct hm_merkle_hasher *h, const hm_merkle_hash left,
			      const hm_merkle_hash right, hm_merkle_hash out);
/* One level up, bottom-up: adjacent pairs hashed, an odd last node carried
 * unchanged.  Returns the new level's size, (n + 1) / 2.  to may be from
 * (to[m] is written after from[2m] and from[2m + 1] are read). */
size_t hm_merkle_level_up(const struct hm_merkle_hasher *h, const hm_merkle_hash *from, size_t n,
			  hm_merkle_hash *to);
/* MTH(D[n]) over leaf hashes; n = 0 gives H(""). */
void hm_merkle_root_with(const struct hm_merkle_hasher *h, const hm_merkle_hash *leaves, size_t n,
			 hm_merkle_hash out);
/* Length of PATH(index, D[n]): the hashes an inclusion proof carries. */
size_t hm_merkle_path_len(uint64_t n, uint64_t index);
int hm_merkle_inclusion_proof_with(const struct hm_merkle_hasher *h, const hm_merkle_hash *leaves,
				   size_t n, size_t index, hm_merkle_hash *path, size_t cap);
int hm_merkle_consistency_proof_with(const struct hm_merkle_hasher *h,
				     const hm_merkle_hash *leaves, size_t n, size_t m,
				     hm_merkle_hash *path, size_t cap);
/* RFC 9162 2.1.3.2 up to the comparison: the root that path and leaf_hash
 * at index hash up to in a tree of tree_size leaves.  False when the path
 * has the wrong length for (index, tree_size). */
bool hm_merkle_root_from_path(const struct hm_merkle_hasher *h, uint64_t index, uint64_t tree_size,
			      const hm_merkle_hash leaf_hash, const hm_merkle_hash *path,
			      size_t path_len, hm_merkle_hash root);
bool hm_merkle_verify_inclusion_with(const struct hm_merkle_hasher *h, uint64_t index,
				     uint64_t tree_size, const hm_merkle_hash leaf_hash,
				     const hm_merkle_hash *path, size_t path_len,
				     const hm_merkle_hash root);
bool hm_merkle_verify_consistency_with(const struct hm_merkle_hasher *h, uint64_t first,
				       uint64_t second, const hm_merkle_hash first_root,
				       const hm_merkle_hash second_root, const hm_merkle_hash *path,
				       size_t path_len);

/* A tree with every level kept, for answering many inclusion proofs. */
struct hm_merkle_tree {
	const struct hm_merkle_hasher *h;
	size_t nlevels;                              /* levels[0] the leaves, the last the root */
	hm_merkle_hash *levels[HM_MERKLE_MAX_LEVELS];
	size_t size[HM_MERKLE_MAX_LEVELS];
};

/* Build the levels above leaves (n >= 1 hashes, malloc'd: the tree takes
 * them over and frees them, also on failure).  Returns 0, or -1 when out
 * of memory or n is 0. */
int hm_merkle_tree_build(struct hm_merkle_tree *t, const struct hm_merkle_hasher *h,
			 hm_merkle_hash *leaves, size_t n);
void hm_merkle_tree_free(struct hm_merkle_tree *t);
/* The root (a pointer into the tree). */
const uint8_t *hm_merkle_tree_root(const struct hm_merkle_tree *t);
/* PATH(index, D[n]) into path, leaf level first; returns its length
 * (hm_merkle_path_len(n, index)), or -1 when index is out of range. */
int hm_merkle_tree_path(const struct hm_merkle_tree *t, size_t index, hm_merkle_hash *path);

/* ---- SHA-256 (Certificate Transparency) ----------------------------------- */

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
