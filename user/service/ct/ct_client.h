/* SPDX-License-Identifier: MIT */
/*
 * An RFC 6962 section 4 client (libcurl + jansson): the log's HTTP API,
 * decoded into the structures of ct.h.  This is I/O, so it runs before
 * agreement (the proposing replica fetches the evidence, every replica
 * checks it with hm_ct_check); nothing here decides anything.
 *
 * Every call returns 0 on success or -1 with err filled: transport errors,
 * HTTP statuses other than 200 (with the start of the log's answer), JSON
 * that is not what RFC 6962 says.
 */
#ifndef HM_CT_CLIENT_H
#define HM_CT_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/ct/ct.h"

struct hm_ct_client;

/* A byte string (a DER certificate, a leaf_input, ...). */
struct hm_ct_blob {
	uint8_t *data;
	size_t len;
};

/* One get-entries entry. */
struct hm_ct_entry {
	struct hm_ct_blob leaf_input; /* MerkleTreeLeaf */
	struct hm_ct_blob extra_data;
};

/* An add-chain / add-pre-chain answer. */
struct hm_ct_sct {
	uint8_t version;
	uint8_t log_id[HM_CT_LOG_ID_LEN];
	uint64_t timestamp;
	struct hm_ct_blob extensions;
	struct hm_ct_blob signature; /* DigitallySigned */
};

/* base_url: the log's prefix, e.g. "http://127.0.0.1:8080" (the client
 * appends "/ct/v1/..."); timeout_ms bounds each request. */
struct hm_ct_client *hm_ct_client_new(const char *base_url, long timeout_ms);
void hm_ct_client_free(struct hm_ct_client *c);

int hm_ct_get_sth(struct hm_ct_client *c, struct hm_ct_sth *out, char *err, size_t errlen);
int hm_ct_get_sth_consistency(struct hm_ct_client *c, uint64_t first, uint64_t second,
			      hm_merkle_hash *path, size_t cap, size_t *len, char *err, size_t errlen);
int hm_ct_get_proof_by_hash(struct hm_ct_client *c, const hm_merkle_hash leaf_hash, uint64_t tree_size,
			    uint64_t *leaf_index, hm_merkle_hash *path, size_t cap, size_t *len,
			    char *err, size_t errlen);
/* Entries start..end (inclusive); the log may return fewer.  Free with
 * hm_ct_entries_free. */
int hm_ct_get_entries(struct hm_ct_client *c, uint64_t start, uint64_t end,
		      struct hm_ct_entry **entries, size_t *n, char *err, size_t errlen);
void hm_ct_entries_free(struct hm_ct_entry *entries, size_t n);
/* The accepted roots, DER.  Free with hm_ct_blobs_free. */
int hm_ct_get_roots(struct hm_ct_client *c, struct hm_ct_blob **roots, size_t *n, char *err, size_t errlen);
void hm_ct_blobs_free(struct hm_ct_blob *b, size_t n);
/* add-chain (precert false) or add-pre-chain (true): chain of DER certificates,
 * leaf first.  Free the answer with hm_ct_sct_free. */
int hm_ct_add_chain(struct hm_ct_client *c, const struct hm_ct_blob *chain, size_t n, bool precert,
		    struct hm_ct_sct *out, char *err, size_t errlen);
void hm_ct_sct_free(struct hm_ct_sct *sct);

/* The evidence for hm_ct_check in one go: the log's current STH, the
 * inclusion proof of leaf_hash in it, and the consistency proof from
 * `from` (the tree size of the latest STH the verifier holds; 0 if none). */
int hm_ct_fetch_evidence(struct hm_ct_client *c, const uint8_t log_id[HM_CT_LOG_ID_LEN],
			 const hm_merkle_hash leaf_hash, uint64_t from, struct hm_ct_evidence *ev,
			 char *err, size_t errlen);

#endif /* HM_CT_CLIENT_H */
