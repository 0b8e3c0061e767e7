/* SPDX-License-Identifier: MIT */
/*
 * The client side of PBFT as a pure state machine: one outstanding request,
 * sent to every replica (the primary orders it; backups learn the client's
 * address and that a request is pending), retransmitted on timeout, accepted
 * only when f+1 replicas sent matching replies, each authenticated by its
 * per-link MAC (at least one of them is correct, so the result is the
 * group's).  No signature is verified here: replies are signed once per
 * batch, for certificates only (certificate.h).  A reply
 * names the request it answers (its digest): only replies for the
 * outstanding request's (timestamp, digest) count, so f+1 matching replies
 * agree on (timestamp, request digest, status, result).  The outcome is a
 * result, or a refusal when the timestamp was already used (status).  The client transport (transport.h) wraps it in a UDP socket
 * for hmctl and the DNS daemon; the simulator drives it in-process.
 */
#ifndef HM_CLIENT_H
#define HM_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/config.h"
#include "common/crypto.h"
#include "core/service.h"

struct hm_client_reply {
	bool have;
	uint8_t digest[HM_DIGEST_LEN];   /* H(reply body): proofs left out */
};

struct hm_client {
	uint32_t id, n, f;
	const struct hm_keypair *keys;
	bool sign; /* security.signed_requests: Ed25519-sign each request */
	uint8_t replica_keys[HM_MAX_REPLICAS][HM_PUBKEY_LEN];
	struct hm_link_keys links[HM_MAX_REPLICAS];
	uint64_t timeout_us;
	uint32_t max_message_size;
	uint64_t view;                    /* the view the last result came from */

	/* Send one datagram (MAC stamped) to replica `to`. */
	void (*send)(void *ctx, uint32_t to, const void *buf, size_t len);
	void *send_ctx;

	bool busy;
	uint64_t ts;                      /* timestamp of the last request */
	uint8_t req_digest[HM_DIGEST_LEN]; /* ... and its digest */
	uint8_t *req;
	size_t req_len;
	uint64_t deadline;
	uint32_t retransmits;
	struct hm_client_reply replies[HM_MAX_REPLICAS];

	/* The outcome: HM_REPLY_RESULT with the result, or a refusal
	 * (HM_REPLY_CONFLICT, HM_REPLY_STALE: nothing executed, no result). */
	uint8_t status;
	uint8_t result[HM_MAX_RESULT];
	size_t result_len;
	uint64_t result_seq;              /* sequence the request executed at */

	uint64_t bad_replies;             /* failed MAC, digest or layout */
	uint64_t foreign_replies;         /* for our timestamp, but another request */
};

/* first_timestamp: the first request's timestamp is above it; use the wall
 * clock in microseconds so that a restarted client never reuses one. */
int hm_client_init(struct hm_client *c, const struct hm_config *cfg, uint32_t id,
		   const struct hm_keypair *keys, uint64_t first_timestamp,
		   void (*send)(void *ctx, uint32_t to, const void *buf, size_t len), void *ctx);
void hm_client_free(struct hm_client *c);

/* Start a request (the previous one must be done).  Returns -1 when busy
 * or when the op is too large to travel in a PRE-PREPARE. */
int hm_client_submit(struct hm_client *c, const void *op, size_t len, uint64_t now_us);

/* A datagram from the network; returns true when it completes the request:
 * c->status says how (the result is then in c->result, or it was refused). */
bool hm_client_receive(struct hm_client *c, const uint8_t *buf, size_t len);

/* Retransmit to every replica if the deadline passed. */
void hm_client_tick(struct hm_client *c, uint64_t now_us);

#endif /* HM_CLIENT_H */
