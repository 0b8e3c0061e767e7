/* SPDX-License-Identifier: MIT */
/* Encode and decode HyperMesh messages (layout: headers/hm_wire.h). */
#ifndef HM_USER_WIRE_H
#define HM_USER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"

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
 * stamps it per destination.  Returns the datagram length, 0 if cap is too
 * small.
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

/* Reply payloads: u32 client id, u64 executed-at sequence, result bytes. */
size_t hm_reply_payload(uint8_t *buf, size_t cap, uint32_t client, uint64_t exec_seq,
			const void *result, size_t result_len);
int hm_reply_parse(const struct hm_msg *m, uint32_t *client, uint64_t *exec_seq,
		   const uint8_t **result, size_t *result_len);

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
