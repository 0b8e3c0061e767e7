// SPDX-License-Identifier: MIT
/*
 * The replica's queue of its own OBSERVE ops (user/service/dns/dns_obsq.c):
 * fresh observations go at once, late ones (Q already decided here) wait
 * for a ride or their delay; which is late (a prefetch's observation of a
 * cached Q is not); a decision turning queued fresh ops late; what one
 * request takes (room, the OBSERVE_MANY limit, the ride cap, an op too big
 * to share a request); the bound.
 */
#include "service/dns/dns_obsq.h"
#include "hm_test.h"

#define DELAY 200000u
#define RIDE 1000u

static struct hm_dns_q qn(int i)
{
	struct hm_dns_q q = { .qtype = 1, .qclass = 1 };

	/* \x01<c>\x00: a one-label name, distinct per i */
	q.qname[0] = 1;
	q.qname[1] = (uint8_t)('a' + i);
	q.qname[2] = 0;
	q.qname_len = 3;
	return q;
}

/* An op buffer of len bytes whose first byte tags it. */
static bool push(struct hm_dns_obsq *q, int tag, size_t len, int name, int64_t t, bool late,
		 uint64_t now)
{
	uint8_t *b = calloc(1, len);
	struct hm_dns_q Q = qn(name);

	b[0] = (uint8_t)tag;
	return hm_dns_obsq_push(q, b, len, &Q, t, late, now);
}

static size_t take(struct hm_dns_obsq *q, size_t room, int *tags, size_t max)
{
	struct hm_dns_obs_op *out[HM_DNS_OBSERVE_MANY_MAX];
	size_t n = hm_dns_obsq_take(q, room, out, max);

	for (size_t i = 0; i < n; i++) {
		tags[i] = out[i]->buf[0];
		hm_dns_obs_op_free(out[i]);
	}
	return n;
}

HM_TEST(late_is_decided_at_or_after_t_and_staying)
{
	struct hm_dns_entry e = { .t = 1000, .expiry = 1300, .ttl = 300 };
	struct hm_dns_entry zero = { .t = 1000, .expiry = 1000, .ttl = 0 };

	ASSERT_FALSE(hm_dns_obs_late(NULL, 1000, 1000), "nothing decided: fresh");
	ASSERT_TRUE(hm_dns_obs_late(&e, 1000, 1000), "decided at its T: late");
	ASSERT_TRUE(hm_dns_obs_late(&e, 999, 1000), "decided after its T: late");
	ASSERT_TRUE(hm_dns_obs_late(&e, 1000, 1299), "until the entry expires");
	/* The naive "Q is cached, so it is late" would hold back a prefetch's
	 * observation, which is what decides the refresh... */
	ASSERT_FALSE(hm_dns_obs_late(&e, 1001, 1001), "a later T (prefetch): fresh");
	/* ... and "decided at or after T" alone would hold back the
	 * observation of a client's miss at the same second as a TTL-0
	 * decision, or just as an entry expires: the next op evicts the entry
	 * in agreed time, the observation opens a new lookup, and the client
	 * would wait the late delay for it. */
	ASSERT_FALSE(hm_dns_obs_late(&zero, 1000, 1000), "TTL 0: evicted by the next op");
	ASSERT_FALSE(hm_dns_obs_late(&e, 1000, 1300), "expired by the local clock");
}

HM_TEST(fresh_at_once_late_after_delay)
{
	struct hm_dns_obsq q;
	int tags[8];

	hm_dns_obsq_init(&q, 16, DELAY, RIDE);
	ASSERT_FALSE(hm_dns_obsq_due(&q, 0), "empty");
	ASSERT_EQ(hm_dns_obsq_next_due(&q), UINT64_MAX, "never, empty");
	ASSERT_TRUE(push(&q, 1, 100, 0, 10, true, 1000), "late");
	ASSERT_FALSE(hm_dns_obsq_due(&q, 1000), "a late op waits");
	ASSERT_FALSE(hm_dns_obsq_due(&q, 1000 + DELAY - 1), "until its delay");
	ASSERT_EQ(hm_dns_obsq_next_due(&q), 1000 + DELAY, "due then");
	ASSERT_TRUE(hm_dns_obsq_due(&q, 1000 + DELAY), "then due");
	ASSERT_TRUE(push(&q, 2, 100, 1, 10, false, 2000), "fresh");
	ASSERT_TRUE(hm_dns_obsq_due(&q, 2000), "a fresh op is due at once");
	ASSERT_EQ(hm_dns_obsq_next_due(&q), 0, "now");
	ASSERT_EQ(take(&q, 65000, tags, 8), 2u, "the fresh one, the late one riding");
	ASSERT_EQ(tags[0], 2, "fresh first");
	ASSERT_EQ(tags[1], 1, "late after");
	ASSERT_EQ(hm_dns_obsq_len(&q), 0u, "empty");
	hm_dns_obsq_free(&q);
}

HM_TEST(late_ride_is_capped_but_alone_fills)
{
	struct hm_dns_obsq q;
	int tags[16];
	size_t n;

	hm_dns_obsq_init(&q, 1024, DELAY, RIDE);
	for (int i = 0; i < 5; i++)
		push(&q, 10 + i, 400, i, 10, true, 0);
	push(&q, 1, 100, 9, 10, false, 0);
	/* With a fresh op: late bytes at most RIDE (two of 400). */
	n = take(&q, 65000, tags, 16);
	ASSERT_EQ(n, 3u, "fresh + two late");
	ASSERT_EQ(tags[0], 1, "fresh first");
	ASSERT_EQ(tags[1], 10, "oldest late");
	ASSERT_EQ(tags[2], 11, "next late");
	/* Alone (once due) the late ones fill the request. */
	ASSERT_FALSE(hm_dns_obsq_due(&q, DELAY - 1), "not yet");
	ASSERT_TRUE(hm_dns_obsq_due(&q, DELAY), "due");
	n = take(&q, 65000, tags, 16);
	ASSERT_EQ(n, 3u, "the other three");
	ASSERT_EQ(tags[0], 12, "in order");
	/* A full request's worth of late ops is due at once. */
	for (int i = 0; i < HM_DNS_OBSERVE_MANY_MAX; i++)
		push(&q, 1, 10, i % 20, 10, true, 0);
	ASSERT_TRUE(hm_dns_obsq_due(&q, 0), "a request's worth");
	hm_dns_obsq_free(&q);
}

HM_TEST(take_respects_room_and_limit)
{
	struct hm_dns_obsq q;
	int tags[HM_DNS_OBSERVE_MANY_MAX];
	size_t room;

	hm_dns_obsq_init(&q, 1024, DELAY, RIDE);
	/* room for exactly two 100-byte ops in an OBSERVE_MANY */
	room = hm_dns_observe_many_len(200, 2);
	for (int i = 0; i < 3; i++)
		push(&q, i, 100, i, 10, false, 0);
	ASSERT_EQ(take(&q, room, tags, 8), 2u, "two fit");
	ASSERT_EQ(take(&q, room, tags, 8), 1u, "the third next time");
	ASSERT_EQ(tags[0], 2, "it");
	/* An op too big to share a request goes alone (the caller finds it
	 * does not fit alone either, or sends it as a plain OBSERVE). */
	push(&q, 7, 500, 0, 10, false, 0);
	push(&q, 8, 10, 1, 10, false, 0);
	ASSERT_EQ(take(&q, 400, tags, 8), 1u, "alone");
	ASSERT_EQ(tags[0], 7, "the big one first");
	ASSERT_EQ(take(&q, 400, tags, 8), 1u, "then the small one");
	/* the per-request limit */
	for (int i = 0; i < HM_DNS_OBSERVE_MANY_MAX + 5; i++)
		push(&q, 1, 10, i % 20, 10, false, 0);
	ASSERT_EQ(take(&q, 1u << 20, tags, HM_DNS_OBSERVE_MANY_MAX + 5), HM_DNS_OBSERVE_MANY_MAX,
		  "at most HM_DNS_OBSERVE_MANY_MAX");
	ASSERT_EQ(take(&q, 1u << 20, tags, 3), 3u, "the caller's max");
	hm_dns_obsq_free(&q);
}

HM_TEST(decision_turns_queued_fresh_ops_late)
{
	struct hm_dns_obsq q;
	struct hm_dns_entry a = { .q = qn(0), .t = 10, .expiry = 100, .ttl = 90 };
	struct hm_dns_entry gone = { .q = qn(1), .t = 10, .expiry = 10, .ttl = 0 };
	int tags[8];

	hm_dns_obsq_init(&q, 16, DELAY, 0);
	push(&q, 1, 50, 0, 10, false, 100);  /* a at 10 */
	push(&q, 2, 50, 1, 10, false, 200);  /* b at 10 */
	push(&q, 3, 50, 0, 20, false, 300);  /* a at 20: after the decision's T */
	push(&q, 4, 50, 0, 5, false, 400);   /* a at 5 */
	push(&q, 9, 50, 2, 10, true, 250);   /* c, late already */
	ASSERT_EQ(hm_dns_obsq_decided(&q, &gone, 10), 0u, "b's TTL-0 decision: b stays fresh");
	ASSERT_EQ(hm_dns_obsq_decided(&q, &a, 10), 2u, "a at 10 and at 5");
	ASSERT_EQ(q.fresh.n, 2u, "b and a at 20 stay fresh");
	ASSERT_EQ(q.late.n, 3u, "three late");
	ASSERT_EQ(q.moved_late, 2u, "counted");
	/* The fresh list still appends at its end. */
	push(&q, 5, 50, 3, 10, false, 500);
	/* No late byte rides (cap 0): fresh ones only, in order. */
	ASSERT_EQ(take(&q, 65000, tags, 8), 3u, "three fresh");
	ASSERT_EQ(tags[0], 2, "b");
	ASSERT_EQ(tags[1], 3, "a at 20");
	ASSERT_EQ(tags[2], 5, "the one pushed after");
	/* The late ones keep their queueing times: the oldest (100) is the
	 * head, so they are due DELAY after it. */
	ASSERT_EQ(hm_dns_obsq_next_due(&q), 100 + DELAY, "from the oldest queueing time");
	ASSERT_EQ(take(&q, 65000, tags, 8), 3u, "three late");
	ASSERT_EQ(tags[0], 1, "queued at 100");
	ASSERT_EQ(tags[1], 9, "queued at 250");
	ASSERT_EQ(tags[2], 4, "queued at 400");
	ASSERT_EQ(hm_dns_obsq_decided(&q, &a, 10), 0u, "nothing left to move");
	hm_dns_obsq_free(&q);
}

HM_TEST(bounded)
{
	struct hm_dns_obsq q;

	hm_dns_obsq_init(&q, 3, DELAY, RIDE);
	ASSERT_TRUE(push(&q, 1, 10, 0, 1, false, 0), "1");
	ASSERT_TRUE(push(&q, 2, 10, 1, 1, true, 0), "2");
	ASSERT_TRUE(push(&q, 3, 10, 2, 1, false, 0), "3");
	ASSERT_FALSE(push(&q, 4, 10, 3, 1, false, 0), "refused beyond max_ops (buffer freed)");
	ASSERT_EQ(hm_dns_obsq_len(&q), 3u, "three");
	hm_dns_obsq_free(&q);
	ASSERT_EQ(hm_dns_obsq_len(&q), 0u, "freed");
}
