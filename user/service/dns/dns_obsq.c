// SPDX-License-Identifier: MIT
/* The replica's queue of its own OBSERVE ops (see dns_obsq.h). */
#include "service/dns/dns_obsq.h"

#include <stdlib.h>
#include <string.h>

static void list_init(struct hm_dns_obs_list *l)
{
	l->head = NULL;
	l->tail = &l->head;
	l->n = l->bytes = 0;
}

static void list_push(struct hm_dns_obs_list *l, struct hm_dns_obs_op *o)
{
	o->next = NULL;
	*l->tail = o;
	l->tail = &o->next;
	l->n++;
	l->bytes += o->len;
}

static struct hm_dns_obs_op *list_pop(struct hm_dns_obs_list *l)
{
	struct hm_dns_obs_op *o = l->head;

	l->head = o->next;
	if (!l->head)
		l->tail = &l->head;
	l->n--;
	l->bytes -= o->len;
	o->next = NULL;
	return o;
}

void hm_dns_obsq_init(struct hm_dns_obsq *q, size_t max_ops, uint64_t late_delay_us,
		      size_t late_ride_bytes)
{
	memset(q, 0, sizeof(*q));
	list_init(&q->fresh);
	list_init(&q->late);
	q->max_ops = max_ops;
	q->late_delay_us = late_delay_us;
	q->late_ride_bytes = late_ride_bytes;
}

void hm_dns_obs_op_free(struct hm_dns_obs_op *o)
{
	if (!o)
		return;
	free(o->buf);
	free(o);
}

void hm_dns_obsq_free(struct hm_dns_obsq *q)
{
	while (q->fresh.head)
		hm_dns_obs_op_free(list_pop(&q->fresh));
	while (q->late.head)
		hm_dns_obs_op_free(list_pop(&q->late));
}

static bool q_eq(const struct hm_dns_q *a, const struct hm_dns_q *b)
{
	return a->qname_len == b->qname_len && a->qtype == b->qtype && a->qclass == b->qclass &&
	       memcmp(a->qname, b->qname, a->qname_len) == 0;
}

bool hm_dns_obs_late(const struct hm_dns_entry *e, int64_t t, int64_t now)
{
	return e && t <= e->t && e->expiry > e->t && e->expiry > now;
}

bool hm_dns_obsq_push(struct hm_dns_obsq *q, uint8_t *buf, size_t len, const struct hm_dns_q *Q,
		      int64_t t, bool late, uint64_t now_us)
{
	struct hm_dns_obs_op *o = hm_dns_obsq_len(q) < q->max_ops ? calloc(1, sizeof(*o)) : NULL;

	if (!o) {
		free(buf);
		return false;
	}
	o->buf = buf;
	o->len = len;
	o->q = *Q;
	o->t = t;
	o->late = late;
	o->queued_us = now_us;
	list_push(late ? &q->late : &q->fresh, o);
	return true;
}

/* The late list is in queueing order; a moved op keeps its queueing time,
 * so insert it where that time belongs (its delay counts from when it was
 * queued, and the oldest stays at the head). */
static void late_insert(struct hm_dns_obsq *q, struct hm_dns_obs_op *o)
{
	struct hm_dns_obs_op **p = &q->late.head;

	while (*p && (*p)->queued_us <= o->queued_us)
		p = &(*p)->next;
	o->next = *p;
	*p = o;
	if (!o->next)
		q->late.tail = &o->next;
	q->late.n++;
	q->late.bytes += o->len;
}

size_t hm_dns_obsq_decided(struct hm_dns_obsq *q, const struct hm_dns_entry *e, int64_t now)
{
	struct hm_dns_obs_op **p = &q->fresh.head, *last = NULL;
	size_t moved = 0;

	while (*p) {
		struct hm_dns_obs_op *o = *p;

		if (!q_eq(&o->q, &e->q) || !hm_dns_obs_late(e, o->t, now)) {
			last = o;
			p = &o->next;
			continue;
		}
		*p = o->next;
		q->fresh.n--;
		q->fresh.bytes -= o->len;
		o->late = true;
		late_insert(q, o);
		moved++;
	}
	q->fresh.tail = last ? &last->next : &q->fresh.head;
	q->moved_late += moved;
	return moved;
}

bool hm_dns_obsq_due(const struct hm_dns_obsq *q, uint64_t now_us)
{
	return q->fresh.n || q->late.n >= HM_DNS_OBSERVE_MANY_MAX ||
	       (q->late.n && now_us >= q->late.head->queued_us + q->late_delay_us);
}

uint64_t hm_dns_obsq_next_due(const struct hm_dns_obsq *q)
{
	if (q->fresh.n || q->late.n >= HM_DNS_OBSERVE_MANY_MAX)
		return 0;
	return q->late.n ? q->late.head->queued_us + q->late_delay_us : UINT64_MAX;
}

size_t hm_dns_obsq_take(struct hm_dns_obsq *q, size_t room, struct hm_dns_obs_op **out,
			size_t max)
{
	size_t n = 0, total = 0, late_bytes = 0;
	bool fresh_taken;

	if (max > HM_DNS_OBSERVE_MANY_MAX)
		max = HM_DNS_OBSERVE_MANY_MAX;
	if (!max || !hm_dns_obsq_len(q))
		return 0;
	while (n < max && q->fresh.head &&
	       hm_dns_observe_many_len(total + q->fresh.head->len, n + 1) <= room) {
		total += q->fresh.head->len;
		out[n++] = list_pop(&q->fresh);
	}
	fresh_taken = n > 0;
	/* A fresh op that fits no request still goes first, alone. */
	if (!n && q->fresh.head)
		return out[0] = list_pop(&q->fresh), 1;
	while (n < max && q->late.head &&
	       hm_dns_observe_many_len(total + q->late.head->len, n + 1) <= room &&
	       (!fresh_taken || late_bytes + q->late.head->len <= q->late_ride_bytes)) {
		total += q->late.head->len;
		late_bytes += q->late.head->len;
		out[n++] = list_pop(&q->late);
	}
	if (!n && q->late.head)
		out[n++] = list_pop(&q->late);
	return n;
}
