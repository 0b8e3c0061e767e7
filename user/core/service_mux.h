/* SPDX-License-Identifier: MIT */
/*
 * One replicated service made of several: each sub-service owns a range of
 * first op bytes (opcodes), so their ops share one ordered log without a
 * tag of their own.  The key-value store keeps 1..15; the DNS resolver and
 * the Certificate Transparency verdicts take ranges of their own.
 *
 * The composite is deterministic when each part is: the digest covers every
 * part's digest in route order, the snapshot every part's snapshot.
 */
#ifndef HM_SERVICE_MUX_H
#define HM_SERVICE_MUX_H

#include <stddef.h>
#include <stdint.h>

#include "core/service.h"

#define HM_MUX_MAX_ROUTES 8

/* Result of an op no route claims: one byte. */
#define HM_MUX_NO_SERVICE 0xff

struct hm_service_route {
	uint8_t first, last;      /* opcodes [first, last] go to svc */
	struct hm_service svc;    /* owned by the mux from now on */
};

/* Routes must not overlap; returns -1 (and frees nothing) if they do. */
int hm_service_mux_new(struct hm_service *out, const struct hm_service_route *routes, size_t n);

/* The sub-service that owns `opcode`, NULL if none (for callers that need
 * a part's own interface, e.g. the DNS cache). */
void *hm_service_mux_part(const struct hm_service *mux, uint8_t opcode);

#endif /* HM_SERVICE_MUX_H */
