/* SPDX-License-Identifier: MIT */
/*
 * The replicated-service interface.  The PBFT core executes committed
 * operations through it, in sequence order, on every replica; so execute()
 * must be deterministic: the same operations in the same order give the same
 * results and the same state digest everywhere.  Anything non-deterministic
 * (a clock, a DNS lookup) must be agreed first and arrive inside the op or
 * the execution context.
 */
#ifndef HM_SERVICE_H
#define HM_SERVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"

/* What the core knows about the operation being executed. */
struct hm_exec_ctx {
	uint64_t seq;        /* sequence number of the batch */
	uint32_t client;     /* client id */
	uint64_t timestamp;  /* the client's request timestamp */
};

struct hm_service_ops {
	const char *name;
	/* Execute one op; write the result (at most cap bytes) into out and
	 * return its length.  Malformed ops get an error result, not a crash. */
	size_t (*execute)(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op,
			  size_t op_len, uint8_t *out, size_t cap);
	/* A digest of the whole state, independent of how it was reached. */
	void (*digest)(void *state, uint8_t out[HM_DIGEST_LEN]);
	/* Serialise the state into a malloc'd buffer; restore() is its inverse
	 * and must refuse (return -1) anything snapshot() could not produce. */
	int (*snapshot)(void *state, uint8_t **buf, size_t *len);
	int (*restore)(void *state, const uint8_t *buf, size_t len);
	void (*destroy)(void *state);
	/* Optional (NULL: every op is acceptable).  May this replica vote for
	 * an op?  Asked by the primary before it batches a request and by a
	 * backup before it accepts a PRE-PREPARE holding it.  Unlike execute()
	 * it may consult local facts (the wall clock, a DNSSEC chain check):
	 * it only decides this replica's vote on a fresh proposal.  It is not
	 * asked for what the protocol mandates (a new view's re-proposals,
	 * committed catch-up), so execute() must not rely on it: a batch may
	 * execute here that check() would refuse now.  A refused request
	 * never reaches execute() at a correct primary unless the group had
	 * already prepared it. */
	bool (*check)(void *state, const struct hm_exec_ctx *ctx, const uint8_t *op, size_t op_len);
};

struct hm_service {
	const struct hm_service_ops *ops;
	void *state;
};

/* Largest result an op may return. */
#define HM_MAX_RESULT 8192

#endif /* HM_SERVICE_H */
