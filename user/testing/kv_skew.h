/* SPDX-License-Identifier: MIT */
/*
 * Tests only: the key-value service plus an admission check in the manner of
 * the DNS and CT services' time-skew check.  The agreed time of a request is
 * its client timestamp (the simulator's clients stamp the virtual time, in
 * microseconds); check() refuses a request whose agreed time is more than
 * skew_us from this replica's local clock.  execute(), digest, snapshot and
 * restore are the key-value store's, so the workload and its checks stay
 * the same.  Named apart from any production admission check on purpose.
 */
#ifndef HM_TESTING_KV_SKEW_H
#define HM_TESTING_KV_SKEW_H

#include <stdint.h>

#include "core/service.h"

/* clock(ctx): this replica's local clock in microseconds. */
int hm_kv_skew_service_new(struct hm_service *svc, uint64_t (*clock)(void *ctx), void *ctx,
			   uint64_t skew_us);
/* Requests this replica refused so far. */
uint64_t hm_kv_skew_refused(const struct hm_service *svc);

#endif /* HM_TESTING_KV_SKEW_H */
