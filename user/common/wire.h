/* SPDX-License-Identifier: MIT */
/* Encode and decode HyperMesh messages (layout: headers/hm_wire.h). */
#ifndef HM_USER_WIRE_H
#define HM_USER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"
#include "common/reply_proof.h"

struct hm_keypair;

/* A decoded message: host-order copies of the header fields, pointers into
 * the datagram for the rest.  Valid while the datagram's buffer is. */
struct hm_msg {
	const struct hm_hdr *hdr;
	size_t len;               /* whole datagram */
	uint8_t type;
	uint16_t flags;
	uint32_t sender;
	uint64_t view;
	uint64_t seq;
	const uint8_t *digest;
	const uint8_t *payload;
	uint32_t payload_len;
};

/*
 * Check the framing of a datagram: length, magic, version, type, flags,
 * payload_len and size limit.  Returns 0 and fills *m, or -1 and sets *why.
 * Authentication (MAC, signature) and the payload's digest are checked
 * separately, so a caller can order the checks by cost.
 */
int hm_msg_decode(const void *buf, size_t len, size_t max_len, struct hm_msg *m,
		  enum hm_drop_reason *why);

/* True when the payload agrees with the header: digest = H(payload) for
 * types that carry one, an empty payload for votes.  Sets *why otherwise. */
bool hm_msg_payload_ok(const struct hm_msg *m, enum hm_drop_reason *why);

/*
 * Build a signed message into buf (capacity cap).  digest may be NULL, in
 * which case it is H(payload).  The MAC field is left zero: the dataplane
 * stamps it per destination.  kp NULL leaves the signature field zero (a
 * REPLY: replies are signed once per batch, reply_proof.h).  Returns the
 * datagram length, 0 if cap is too small.
 */
size_t hm_msg_build(uint8_t *buf, size_t cap, uint8_t type, uint32_t sender, uint64_t view,
		    uint64_t seq, const uint8_t *digest, const void *payload, uint32_t payload_len,
		    const struct hm_keypair *kp);
size_t hm_msg_build_flags(uint8_t *buf, size_t cap, uint8_t type, uint16_t flags, uint32_t sender,
			  uint64_t view, uint64_t seq, const uint8_t *digest, const void *payload,
			  uint32_t payload_len, const struct hm_keypair *kp);

/* Batches (PRE-PREPARE payloads): u32 count, then {u32 len, request}. */
struct hm_batch_iter {
	const uint8_t *p;
	size_t left;
	uint32_t remaining;
};

/* Validate a batch's framing and every request's framing; returns the
 * request count, or -1. */
int hm_batch_validate(const uint8_t *payload, size_t len, size_t max_request);
void hm_batch_iter_init(struct hm_batch_iter *it, const uint8_t *payload, size_t len);
/* Next request of a validated batch; false at the end. */
bool hm_batch_next(struct hm_batch_iter *it, struct hm_msg *req);

/* Reply payloads (version 3, hm_wire.h): the batch proof (reply_proof.h;
 * "none" in a refusal and in a reply re-sent from a restored state), then
 * the body: u32 client id, u64 executed-at sequence, the request's digest,
 * u8 status, result bytes.  A refusal (status other than HM_REPLY_RESULT)
 * has exec_seq 0, no result and no proof. */
struct hm_reply {
	uint32_t client;
	uint64_t exec_seq;
	const uint8_t *req_digest;       /* HM_DIGEST_LEN bytes */
	uint8_t status;                  /* enum hm_reply_status */
	const uint8_t *result;
	size_t result_len;
	const uint8_t *body;             /* the body (what the leaf hashes) */
	size_t body_len;
	struct hm_reply_proof proof;     /* proof.size 0: none */
};
/* The body alone (HM_REPLY_PREFIX_LEN + result_len bytes): what a replica
 * keeps in its reply cache and its certified state, and what a leaf hashes. */
size_t hm_reply_body(uint8_t *buf, size_t cap, uint32_t client, uint64_t exec_seq,
		     const uint8_t *req_digest, uint8_t status, const void *result,
		     size_t result_len);
/* A whole payload without a proof: HM_RP_NONE_LEN + the body. */
size_t hm_reply_payload(uint8_t *buf, size_t cap, uint32_t client, uint64_t exec_seq,
			const uint8_t *req_digest, uint8_t status, const void *result,
			size_t result_len);
/* A whole payload: proof (NULL: none) then body.  0 when cap is too small. */
size_t hm_reply_payload_proven(uint8_t *buf, size_t cap, const struct hm_reply_proof *proof,
			       const uint8_t *body, size_t body_len);
/* 0 for a REPLY whose payload is well formed (a proof that parses, a known
 * status; a refusal with exec_seq 0, no result bytes and no proof), -1
 * otherwise.  Nothing is verified: see hm_reply_proof_check(). */
int hm_reply_parse(const struct hm_msg *m, struct hm_reply *out);

/*
 * View changes (docs/protocol.md#view-changes).  VIEW-CHANGE and NEW-VIEW
 * datagrams are ordinary signed messages (digest = H(payload)) whose payload
 * starts with a kind byte.
 *
 * VIEW-CHANGE, header view = the new view, seq = n (last stable checkpoint):
 *   HEAD  u8 kind=1, u8 nparts (1..HM_VC_MAX_PARTS),
 *         (nparts - 1) x 32 digests of the other parts (H(part payload)),
 *         32 checkpoint state digest, u8 ncp, ncp x { u8 replica, u64 view
 *         of its CHECKPOINT, 64 sig }, u16 count, count x entry
 *   PART  u8 kind=2, u8 index (1..nparts - 1), u16 count, count x entry
 *   entry (one prepared certificate): u64 seq, u64 view, 32 digest,
 *         u32 PRE-PREPARE payload_len, 64 PRE-PREPARE sig, u32 voters,
 *         popcount(voters) x 64 PREPARE sigs in voter id order
 * NEW-VIEW, header view = the new view:
 *   NEW    seq = min-s.  u8 kind=1, u8 nrefs (1..HM_MAX_REPLICAS), nrefs x
 *          { u8 replica, 32 digest of its VIEW-CHANGE head }, replica ids
 *          strictly increasing, u64 min-s, u64 max-s, 32 H(O)
 *   FETCH  seq = s.  u8 kind=2, 32 digest wanted (zero: the committed one),
 *          or, with seq = 0, the VIEW-CHANGE head digest wanted, then
 *          optionally u8 replica: whose VIEW-CHANGE (absent: the receiver's
 *          own; two replicas' heads can have one payload, so one digest)
 *   BATCH  seq = s.  u8 kind=3, u8 committed, 32 digest, batch bytes with
 *          H(batch) = digest
 *   VC     seq = 0.  u8 kind=4, then one VIEW_CHANGE datagram of another
 *          replica exactly as it signed it (136-byte header, flags and MAC
 *          zero, then its payload): the answer to a FETCH of a VIEW-CHANGE
 *          by head digest from a replica that holds it but did not send it
 *   PROOF  seq = a stable checkpoint's seq.  u8 kind=5, 32 state digest,
 *          u8 ncp, ncp x { u8 replica, u64 view, 64 CHECKPOINT sig } (as
 *          in a VIEW-CHANGE head): the answer to a STATUS below it
 */
#define HM_VC_HEAD 1
#define HM_VC_PART 2
#define HM_NV_NEW 1
#define HM_NV_FETCH 2
#define HM_NV_BATCH 3
#define HM_NV_VC 4
#define HM_NV_PROOF 5
#define HM_VC_MAX_PARTS 64
#define HM_VC_ENTRY_FIXED 120  /* an entry without its PREPARE signatures */
#define HM_VC_CP_LEN 73        /* one checkpoint signature record */
#define HM_NV_BATCH_OVERHEAD (2 + HM_DIGEST_LEN) /* BATCH payload around a batch */
#define HM_NV_VC_OVERHEAD (1 + HM_HDR_LEN) /* VC payload around a VIEW_CHANGE payload */

struct hm_vc_entry {
	uint64_t seq, view;
	const uint8_t *digest;
	uint32_t pp_len;
	const uint8_t *pp_sig;
	hm_voters_t voters;
	const uint8_t *sigs;   /* popcount(voters) signatures, voter id order */
};

struct hm_vc_payload {
	uint8_t kind;
	uint8_t nparts;        /* HEAD */
	uint8_t index;         /* PART; 0 for the HEAD */
	const uint8_t *part_digests; /* HEAD: (nparts - 1) x 32 */
	const uint8_t *cp_digest;    /* HEAD */
	uint8_t ncp;                 /* HEAD */
	const uint8_t *cp;           /* HEAD: ncp x HM_VC_CP_LEN */
	uint16_t count;              /* entries */
	const uint8_t *entries;
	size_t entries_len;
};

/* Validate a VIEW-CHANGE payload's framing completely (every entry and
 * checkpoint record in bounds, counts that agree with the length, replica
 * ids below HM_MAX_REPLICAS, no trailing bytes).  0 and *out, or -1. */
int hm_vc_parse(const uint8_t *p, size_t len, struct hm_vc_payload *out);
/* Iterate the entries of a parsed payload (they were validated). */
struct hm_vc_iter {
	const uint8_t *p;
	size_t left;
	uint16_t remaining;
};
void hm_vc_iter_init(struct hm_vc_iter *it, const struct hm_vc_payload *v);
bool hm_vc_next(struct hm_vc_iter *it, struct hm_vc_entry *e);
/* One checkpoint record of a HEAD. */
void hm_vc_cp_get(const struct hm_vc_payload *v, unsigned i, uint32_t *replica, uint64_t *view,
		  const uint8_t **sig);

/* Encoders: return bytes written, 0 if cap is too small. */
size_t hm_vc_entry_len(hm_voters_t voters);
size_t hm_vc_entry_put(uint8_t *buf, size_t cap, const struct hm_vc_entry *e);
size_t hm_vc_cp_put(uint8_t *buf, size_t cap, uint32_t replica, uint64_t view, const uint8_t *sig);

struct hm_nv_payload {
	uint8_t kind;
	/* NEW */
	uint8_t nrefs;
	uint8_t ref_ids[HM_MAX_REPLICAS];
	const uint8_t *ref_digests[HM_MAX_REPLICAS];
	uint64_t min_s, max_s;
	const uint8_t *o_digest;
	/* FETCH and BATCH */
	const uint8_t *digest;
	int fetch_replica;     /* FETCH: the replica byte, -1 if absent */
	bool committed;
	const uint8_t *batch;
	uint32_t batch_len;
	/* PROOF: digest is the state digest; ncp records of HM_VC_CP_LEN */
	uint8_t ncp;
	const uint8_t *cp;
	/* VC: the relayed VIEW_CHANGE datagram (at least a header long) */
	const uint8_t *vc;
	uint32_t vc_len;
};

int hm_nv_parse(const uint8_t *p, size_t len, struct hm_nv_payload *out);
size_t hm_nv_new_put(uint8_t *buf, size_t cap, uint8_t nrefs, const uint8_t *ids,
		     const uint8_t (*digests)[HM_DIGEST_LEN], uint64_t min_s, uint64_t max_s,
		     const uint8_t *o_digest);

/* Big-endian helpers. */
static inline void hm_put_be32(uint8_t *p, uint32_t v)
{
	p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v;
}
static inline uint32_t hm_get_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}
static inline uint16_t hm_get_be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}
static inline void hm_put_be64(uint8_t *p, uint64_t v)
{
	hm_put_be32(p, v >> 32);
	hm_put_be32(p + 4, (uint32_t)v);
}
static inline uint64_t hm_get_be64(const uint8_t *p)
{
	return (uint64_t)hm_get_be32(p) << 32 | hm_get_be32(p + 4);
}

const char *hm_msg_type_name(unsigned type);
const char *hm_drop_reason_name(unsigned reason);

#endif /* HM_USER_WIRE_H */
