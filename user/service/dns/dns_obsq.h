/* SPDX-License-Identifier: MIT */
/*
 * The replica's queue of its own encoded OBSERVE ops waiting for its
 * client (docs/dns.md, "Where a miss's time goes"): what goes into the next
 * request and when.  Pure bookkeeping, no I/O and no clock of its own (the
 * caller passes the monotonic time), so that the scheduling is unit-tested.
 *
 * Two kinds of observation:
 *   fresh  Q is not decided here at or after the observation's T: it may
 *          be what decides Q, so it goes out at once (with the fresh ones
 *          queued behind a request in flight, as one OBSERVE_MANY).
 *   late   this replica already executed a decision of Q at a T at or after
 *          the observation's (hm_dns_obs_late()): when it executes, the
 *          service only compares it with the decision for the poisoning
 *          statistic (docs/dns.md, "Executing OBSERVE", step 3).  It waits
 *          up to late_delay_us for a request to ride along with, then goes
 *          out with the other late ones in one request: it feeds the same
 *          statistic, a little later, without an agreement round of its own
 *          per miss competing with the misses clients wait for.
 * Which kind an op is changes only when it is sent, never its bytes.
 *
 *   hm_dns_obsq_init(&q, max_ops, late_delay_us, late_ride_bytes);
 *   hm_dns_obsq_push(&q, buf, len, &Q, T, hm_dns_obs_late(entry, T, wall), mono);
 *   on a decision e:  hm_dns_obsq_decided(&q, e, wall);
 *   client idle and hm_dns_obsq_due(&q, now):
 *       n = hm_dns_obsq_take(&q, room, ops, HM_DNS_OBSERVE_MANY_MAX);
 *       send ops[0] alone (n == 1) or as one OBSERVE_MANY; hm_dns_obsq_op_free each
 */
#ifndef HM_DNS_OBSQ_H
#define HM_DNS_OBSQ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "service/dns/dns_service.h"

struct hm_dns_obs_op {
	uint8_t *buf;               /* the encoded OBSERVE (malloc'd, owned) */
	size_t len;
	struct hm_dns_q q;
	int64_t t;
	bool late;
	uint64_t queued_us;
	struct hm_dns_obs_op *next;
};

struct hm_dns_obs_list {
	struct hm_dns_obs_op *head, **tail;
	size_t n, bytes;
};

struct hm_dns_obsq {
	struct hm_dns_obs_list fresh, late;
	size_t max_ops;             /* fresh + late; beyond it a push is refused */
	uint64_t late_delay_us;     /* the longest a late op waits for a ride */
	size_t late_ride_bytes;     /* late bytes that may ride with fresh ops */
	uint64_t moved_late;        /* fresh ops made late by a decision */
};

void hm_dns_obsq_init(struct hm_dns_obsq *q, size_t max_ops, uint64_t late_delay_us,
		      size_t late_ride_bytes);
void hm_dns_obsq_free(struct hm_dns_obsq *q);
void hm_dns_obs_op_free(struct hm_dns_obs_op *o);

/* An observation of Q at t is late when this replica's certified cache
 * holds a decision e of Q made at e->t >= t that will still be there when
 * the observation executes: the service then takes it as a late one.  A
 * prefetch's observation has t > e->t and is not late.  Nor is one for an
 * entry that expires by the local clock `now` (or has TTL 0): the next op
 * may evict it in agreed time (an op's T evicts every entry whose expiry
 * it reaches), and then this observation opens a new lookup, for which a
 * client may be waiting (a miss at the same second as a TTL-0 answer's
 * decision). */
bool hm_dns_obs_late(const struct hm_dns_entry *e, int64_t t, int64_t now);

/* Queue buf (an encoded OBSERVE of Q at t; owned from now on, freed on
 * refusal).  False when max_ops are queued. */
bool hm_dns_obsq_push(struct hm_dns_obsq *q, uint8_t *buf, size_t len, const struct hm_dns_q *Q,
		      int64_t t, bool late, uint64_t now_us);
/* e was decided: the fresh ops of its Q that hm_dns_obs_late(e, t, now)
 * calls late become late (their order kept).  Returns how many moved. */
size_t hm_dns_obsq_decided(struct hm_dns_obsq *q, const struct hm_dns_entry *e, int64_t now);
/* Should a request go out now (the client being idle)?  Any fresh op; or
 * late ops, once the oldest waited late_delay_us or they fill a request's
 * worth (HM_DNS_OBSERVE_MANY_MAX). */
bool hm_dns_obsq_due(const struct hm_dns_obsq *q, uint64_t now_us);
/* When hm_dns_obsq_due() is false: the monotonic time it turns true
 * without another push (UINT64_MAX: never). */
uint64_t hm_dns_obsq_next_due(const struct hm_dns_obsq *q);
/* Take the ops for one request whose op may be `room` bytes, into out[]
 * (at most max, and HM_DNS_OBSERVE_MANY_MAX): fresh ones first, in order,
 * while their OBSERVE_MANY fits; then late ones, in order, while it fits
 * and, when fresh ones were taken, while the late bytes stay within
 * late_ride_bytes.  At least one op when any is queued, even one too big
 * to share a request (the caller finds it does not fit alone either).
 * Returns how many; the caller frees them. */
size_t hm_dns_obsq_take(struct hm_dns_obsq *q, size_t room, struct hm_dns_obs_op **out,
			size_t max);
static inline size_t hm_dns_obsq_len(const struct hm_dns_obsq *q)
{
	return q->fresh.n + q->late.n;
}

#endif /* HM_DNS_OBSQ_H */
