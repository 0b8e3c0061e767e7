/* SPDX-License-Identifier: MIT */
/*
 * One signature per executed batch of replies (docs/protocol.md, "One
 * signature per batch of replies"; issue 11).
 *
 * A replica that executes a batch at sequence number s builds a Merkle tree
 * (merkle.h, RFC 9162 shape, BLAKE2b-256) over the batch's replies, one leaf
 * per reply in execution order:
 *
 *   leaf = BLAKE2b-256(0x00 || u64 request timestamp || reply body)
 *   body = u32 client, u64 exec_seq, 32 request digest, u8 status, result
 *
 * and signs, once, the statement
 *
 *   "HMRB" || u32 replica || u64 s || u32 tree size || 32 root     (52 bytes)
 *
 * Each REPLY then carries its leaf's proof: tree size, index, path, root and
 * the statement's signature.  The client accepts a result on f+1 matching,
 * MAC-authenticated replies without checking any of this; a certificate for
 * one result is the body, its path and 2f+1 signatures over one
 * (s, size, root), checked offline by hm_reply_proof_check().
 *
 * The statement's "HMRB" differs from every message header's "HMSH" magic,
 * and its length (52) from a header's signed 64 bytes, so a statement
 * signature can never be passed off as a message signature or the reverse.
 */
#ifndef HM_REPLY_PROOF_H
#define HM_REPLY_PROOF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "common/merkle.h"

#define HM_RP_MAGIC 0x484d5242u /* "HMRB" */
#define HM_RP_STATEMENT_LEN 52
/* A batch holds at most batch_size (<= 1024) requests: 11 levels.  16
 * bounds what a parser accepts. */
#define HM_RP_MAX_PATH 16
#define HM_RP_MAX_LEAVES 65535
/* Encoded proof: u16 size (0: none, and nothing else follows), u16 index,
 * u8 path length, the path, the root, the signature. */
#define HM_RP_NONE_LEN 2
#define HM_RP_FIXED_LEN (2 + 2 + 1 + HM_MERKLE_HASH_LEN + HM_SIG_LEN)
#define HM_RP_MAX_LEN (HM_RP_FIXED_LEN + HM_RP_MAX_PATH * HM_MERKLE_HASH_LEN)

/* The proof one reply carries. */
struct hm_reply_proof {
	uint16_t size;                        /* replies in the batch; 0: no proof */
	uint16_t index;                       /* this reply's leaf */
	uint8_t path_len;                     /* hm_merkle_path_len(size, index) */
	hm_merkle_hash path[HM_RP_MAX_PATH];
	hm_merkle_hash root;
	uint8_t sig[HM_SIG_LEN];              /* over the statement */
};

/* The tree's hash: BLAKE2b-256 with RFC 9162's 0x00 / 0x01 tags. */
extern const struct hm_merkle_hasher hm_merkle_blake2b;

/* The leaf of a reply to the request at timestamp ts (body as above). */
void hm_reply_leaf(uint64_t ts, const uint8_t *body, size_t body_len, hm_merkle_hash out);
/* The signed statement of replica about the batch at seq. */
void hm_reply_statement(uint8_t out[HM_RP_STATEMENT_LEN], uint32_t replica, uint64_t seq,
			uint16_t size, const hm_merkle_hash root);

/* Encode (p NULL or p->size 0: "no proof", HM_RP_NONE_LEN bytes).  Returns
 * the length, 0 when cap is too small. */
size_t hm_reply_proof_encode(const struct hm_reply_proof *p, uint8_t *buf, size_t cap);
/* Parse a proof at the start of buf; returns the bytes it takes, or -1 when
 * it is truncated, its index is not below its size, or its path length is
 * not the one (size, index) needs. */
int hm_reply_proof_parse(const uint8_t *buf, size_t len, struct hm_reply_proof *out);
/* Does p prove leaf in a batch at seq that replica signed with pk?  The path
 * must hash leaf up to p->root at p->index of a tree of p->size, and the
 * signature must verify over (replica, seq, size, root). */
bool hm_reply_proof_check(const struct hm_reply_proof *p, uint32_t replica, uint64_t seq,
			  const hm_merkle_hash leaf, const uint8_t pk[HM_PUBKEY_LEN]);

/* The replica side: the tree over one batch's leaves and its signature. */
struct hm_reply_batch {
	struct hm_merkle_tree tree;
	uint16_t size;
	uint8_t sig[HM_SIG_LEN];
};

/* Build the tree over n leaves (1 <= n <= HM_RP_MAX_LEAVES, copied) and sign
 * the statement with kp: the one Ed25519 signature of the batch.  -1 when n
 * is out of range or memory runs out. */
int hm_reply_batch_sign(struct hm_reply_batch *b, const hm_merkle_hash *leaves, size_t n,
			uint32_t replica, uint64_t seq, const struct hm_keypair *kp);
/* The proof of leaf index. */
void hm_reply_batch_proof(const struct hm_reply_batch *b, uint16_t index,
			  struct hm_reply_proof *out);
void hm_reply_batch_free(struct hm_reply_batch *b);

#endif /* HM_REPLY_PROOF_H */
