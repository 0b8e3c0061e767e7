// SPDX-License-Identifier: MIT
/* Decided answers into the XDP responder's map (see dns_xdp_answers.h). */
#include "service/dns/dns_xdp_answers.h"

#include <errno.h>
#include <string.h>

#include <bpf/bpf.h>

#include "service/dns/dns_msg.h"
#include "common/log.h"

#define DNS_HDR 12

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* The TTL fields of the n records in body: offsets into v; -1 if the body
 * does not walk cleanly or has too many records. */
static int find_ttls(struct hm_dns_xdp_answer *v, unsigned n)
{
	size_t pos = 0;

	if (n > HM_DNS_XDP_TTLS_MAX)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		pos = hm_dns_skip_name(v->body, v->body_len, pos);
		if (!pos || pos + 10 > v->body_len)
			return -1;
		v->ttl_off[i] = (uint16_t)(pos + 4);
		v->n_ttl_odd += (pos + 4) & 1;
		pos += 10u + rd16(v->body + pos + 8);
	}
	v->n_ttl = (uint16_t)n;
	return pos == v->body_len ? 0 : -1;
}

/* 16-bit one's complement sum, from an even offset. */
static uint16_t ones_sum(const uint8_t *p, size_t len)
{
	uint64_t s = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		s += rd16(p + i);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

static void key_make(const struct hm_dns_entry *e, bool do_bit, struct hm_dns_xdp_key *key)
{
	memset(key, 0, sizeof(*key));
	memcpy(key->qname, e->q.qname, e->q.qname_len);
	key->qtype = e->q.qtype;
	key->qclass = e->q.qclass;
	key->do_bit = do_bit;
}

int hm_dns_xdp_answer_make(const struct hm_dns_entry *e, bool do_bit, struct hm_dns_xdp_key *key,
			   struct hm_dns_xdp_answer *val)
{
	static uint8_t wire[65535];
	struct hm_dns_query q = { 0 };
	size_t n, qend;

	memset(key, 0, sizeof(*key));
	memset(val, 0, sizeof(*val));
	if (e->rule == HM_DNS_RULE_FAIL || !e->canon || e->q.qname_len == 0)
		return -1;
	/* The reply to a plain query for the lower-case name: no EDNS (the
	 * program adds OPT), TTL 0 (it writes the TTLs), no size limit (it
	 * decides TC per client). */
	memcpy(q.qname, e->q.qname, e->q.qname_len);
	q.qname_len = e->q.qname_len;
	q.qtype = e->q.qtype;
	q.qclass = e->q.qclass;
	q.do_bit = do_bit;
	q.max_size = 65535;
	q.udp_size = HM_DNS_UDP_MIN;
	n = hm_dns_reply_build(&q, e->canon, e->canon_len, 0, sizeof(wire), wire, sizeof(wire));
	qend = DNS_HDR + e->q.qname_len + 4;
	if (n < qend || rd16(wire + 4) != 1 || rd16(wire + 10) != 0 || (wire[2] & 0x02))
		return -1;
	key_make(e, do_bit, key);
	val->expiry = e->expiry;
	val->ttl = e->ttl;
	val->rcode = wire[3] & 0x0f;
	/* The canon's flags byte: after version, qname, type, class, rcode. */
	if (e->canon_len > (size_t)e->q.qname_len + 6 &&
	    (e->canon[e->q.qname_len + 6] & HM_DNS_CANON_SECURE))
		val->flags = HM_DNS_XDP_SECURE;
	val->ancount = rd16(wire + 6);
	val->nscount = rd16(wire + 8);
	if (n - qend > HM_DNS_XDP_BODY_MAX - qend) {
		/* No UDP client can take it: every answer is TC. */
		val->flags |= HM_DNS_XDP_TOO_BIG;
		val->body_len = 0;
		return 0;
	}
	val->body_len = (uint16_t)(n - qend);
	memcpy(val->body, wire + qend, val->body_len);
	if (find_ttls(val, (unsigned)val->ancount + val->nscount) < 0)
		return -1;
	val->body_csum = ones_sum(val->body, val->body_len);
	return 0;
}

void hm_dns_xdp_install(int fd, const struct hm_dns_entry *e, struct hm_dns_xdp_sync_stats *st)
{
	static struct hm_dns_xdp_answer val;
	struct hm_dns_xdp_key key;

	for (int do_bit = 0; do_bit <= 1; do_bit++) {
		if (hm_dns_xdp_answer_make(e, do_bit, &key, &val) < 0) {
			st->not_servable++;
			continue;
		}
		if (bpf_map_update_elem(fd, &key, &val, BPF_ANY) < 0) {
			st->errors++;
			hm_debug("dns xdp: answer map update: %s", strerror(errno));
			continue;
		}
		st->installed++;
	}
}

void hm_dns_xdp_ensure(int fd, const struct hm_dns_entry *e, struct hm_dns_xdp_sync_stats *st)
{
	static struct hm_dns_xdp_answer val;
	struct hm_dns_xdp_key key;
	bool have = true;

	if (e->rule == HM_DNS_RULE_FAIL || !e->canon)
		return;
	for (int do_bit = 0; do_bit <= 1 && have; do_bit++) {
		key_make(e, do_bit, &key);
		have = bpf_map_lookup_elem(fd, &key, &val) == 0 && val.expiry == e->expiry;
	}
	if (!have)
		hm_dns_xdp_install(fd, e, st);
}

/* Is the map entry at key still what the cache holds at now? */
static bool still_current(int fd, const struct hm_dns_xdp_key *key, struct hm_dns_service *svc,
			  int64_t now)
{
	static struct hm_dns_xdp_answer val;
	const struct hm_dns_entry *e;
	struct hm_dns_q q;
	size_t len = 0;

	while (len < sizeof(key->qname) && key->qname[len])
		len += 1u + key->qname[len];
	if (len >= sizeof(key->qname) ||
	    hm_dns_q_from_name(&q, key->qname, len + 1, key->qtype, key->qclass) < 0)
		return false;
	e = hm_dns_service_lookup(svc, &q);
	if (!e || e->rule == HM_DNS_RULE_FAIL || now >= e->expiry)
		return false;
	if (bpf_map_lookup_elem(fd, key, &val) < 0)
		return false;
	return val.expiry == e->expiry && val.ttl == e->ttl;
}

uint32_t hm_dns_xdp_sweep(int fd, struct hm_dns_service *svc, int64_t now,
			  struct hm_dns_xdp_sync_stats *st)
{
	struct hm_dns_xdp_key key, next, *prev = NULL;
	uint32_t left = 0;

	/* Deleting the key just visited would restart the walk: collect the
	 * stale key, move on, then delete it. */
	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		if (prev && !still_current(fd, prev, svc, now)) {
			if (bpf_map_delete_elem(fd, prev) == 0)
				st->removed++;
		} else if (prev) {
			left++;
		}
		key = next;
		prev = &key;
	}
	if (prev) {
		if (!still_current(fd, prev, svc, now)) {
			if (bpf_map_delete_elem(fd, prev) == 0)
				st->removed++;
		} else {
			left++;
		}
	}
	return left;
}
