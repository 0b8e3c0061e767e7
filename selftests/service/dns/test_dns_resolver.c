// SPDX-License-Identifier: MIT
/*
 * The resolver's mechanics without a network: answers from unbound local
 * data through the epoll fd, the canonical answer of a result, the
 * reference time carried in results, moving the time with queries in
 * flight (old context drains, or gives up on a second move), shutdown with
 * queries pending, and config values that could inject unbound config
 * refused.  DNSSEC validation against real servers is in e2e_dns.sh.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "common/crypto.h"
#include "service/dns/dns_msg.h"
#include "service/dns/dns_resolver.h"
#include "hm_test.h"

#define T0 1764547200 /* 2025-12-01 00:00:00 UTC */

struct seen {
	int calls;
	enum hm_dns_security sec;
	int rcode;
	int64_t ref_time;
	char why[256];
	uint8_t digest[HM_DIGEST_LEN];
	bool have_digest;
	uint32_t ttl;
};

static void record(void *arg, const struct hm_dns_result *res)
{
	struct seen *s = arg;
	struct hm_dns_query q = { .qtype = LDNS_RR_TYPE_A, .qclass = LDNS_RR_CLASS_IN };
	ldns_rdf *name = ldns_dname_new_frm_str("www.local.test.");
	uint8_t *canon;
	size_t len;

	s->calls++;
	s->sec = res->sec;
	s->rcode = res->rcode;
	s->ref_time = res->ref_time;
	s->ttl = res->ttl;
	snprintf(s->why, sizeof(s->why), "%s", res->why ? res->why : "");
	if (name) {
		memcpy(q.qname, ldns_rdf_data(name), ldns_rdf_size(name));
		q.qname_len = (uint8_t)ldns_rdf_size(name);
		ldns_rdf_deep_free(name);
	}
	canon = hm_dns_canon_from_reply(&q, res->packet, res->packet_len, false, &len);
	if (canon) {
		hm_dns_canon_digest(canon, len, s->digest);
		s->have_digest = true;
		free(canon);
	}
}

static const char *local[] = {
	"www.local.test. 120 IN A 198.18.7.1",
	"www.local.test. 120 IN A 198.18.7.2",
};
/* (Zones under .hmtest: unbound answers names under test. itself, RFC 6761.)
 * A UDP socket on loopback that never answers: lookups sent there stay in
 * flight (unbound waits and retries) without leaving the machine. */
static char sink_addr[64];

static void open_sink(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
	    getsockname(fd, (struct sockaddr *)&a, &len) < 0)
		abort();
	snprintf(sink_addr, sizeof(sink_addr), "127.0.0.1@%u", ntohs(a.sin_port));
}

static struct hm_dns_resolver *make(int64_t t)
{
	struct hm_dns_upstream dead[] = { { "dead.hmtest.", sink_addr, false } };
	struct hm_dns_resolver_config cfg = {
		.upstreams = dead, .n_upstreams = 1, .local_data = local, .n_local_data = 2,
	};
	char err[256] = "";
	struct hm_dns_resolver *r = hm_dns_resolver_new(&cfg, t, err, sizeof(err));

	if (!r)
		fprintf(stderr, "  resolver: %s\n", err);
	return r;
}

/* Process results until *calls is non-zero or ms pass. */
static void wait_for(struct hm_dns_resolver *r, const int *calls, int ms)
{
	for (int i = 0; i < ms / 10 && !*calls; i++)
		hm_dns_resolver_wait(r, 10);
}

HM_TEST(local_answer_through_the_fd)
{
	struct hm_dns_resolver *r = make(T0);
	struct seen a = { 0 }, b = { 0 };
	struct epoll_event ev = { .events = EPOLLIN };
	int ep = epoll_create1(0);

	if (!ASSERT_TRUE(r != NULL, "resolver"))
		return;
	ASSERT_OK(epoll_ctl(ep, EPOLL_CTL_ADD, hm_dns_resolver_fd(r), &ev), "fd is pollable");
	ASSERT_OK(hm_dns_resolve(r, "www.local.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, record, &a),
		  "resolve");
	ASSERT_OK(hm_dns_resolve(r, "WWW.Local.Test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, record, &b),
		  "resolve, other case");
	ASSERT_EQ(hm_dns_resolver_pending(r), 2, "two pending");
	for (int i = 0; i < 100 && hm_dns_resolver_pending(r); i++)
		if (epoll_wait(ep, &ev, 1, 50) > 0)
			hm_dns_resolver_process(r);
	ASSERT_EQ(hm_dns_resolver_pending(r), 0, "both delivered via the fd");
	ASSERT_EQ(a.calls, 1, "callback once");
	ASSERT_EQ(a.sec, HM_DNS_SEC_INSECURE, "local data is insecure");
	ASSERT_EQ(a.rcode, 0, "NOERROR");
	ASSERT_EQ(a.ref_time, T0, "reference time in the result");
	ASSERT_EQ(a.ttl, 120, "TTL");
	ASSERT_TRUE(a.have_digest && b.have_digest, "canons");
	ASSERT_MEMEQ(a.digest, b.digest, HM_DIGEST_LEN, "same digest whatever the query's case");
	ASSERT_EQ(hm_dns_resolver_process(r), 0, "process with nothing ready");
	hm_dns_resolver_free(r);
	close(ep);
}

HM_TEST(time_moves_with_queries_in_flight)
{
	struct hm_dns_resolver *r = make(T0);
	struct seen slow1 = { 0 }, slow2 = { 0 }, fast = { 0 }, late = { 0 };

	if (!ASSERT_TRUE(r != NULL, "resolver"))
		return;
	ASSERT_OK(hm_dns_resolve(r, "x.dead.hmtest.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, record, &slow1),
		  "slow lookup at T0");
	ASSERT_OK(hm_dns_resolver_set_time(r, T0 + 600), "move to T0+600");
	ASSERT_EQ(hm_dns_resolver_time(r), T0 + 600, "new time");
	ASSERT_OK(hm_dns_resolver_set_time(r, T0 + 600), "same time again: no-op");
	ASSERT_OK(hm_dns_resolve(r, "www.local.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, record, &fast),
		  "lookup at T0+600");
	wait_for(r, &fast.calls, 5000);
	ASSERT_EQ(fast.calls, 1, "fast delivered");
	ASSERT_EQ(fast.ref_time, T0 + 600, "with the new time");
	ASSERT_EQ(slow1.calls, 0, "T0's lookup still in flight in the old context");
	ASSERT_EQ(hm_dns_resolver_pending(r), 1, "one pending");
	ASSERT_OK(hm_dns_resolve(r, "y.dead.hmtest.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, record, &slow2),
		  "slow lookup at T0+600");
	/* A second move while T0's lookup is still out: T0's context gives up. */
	ASSERT_OK(hm_dns_resolver_set_time(r, T0 + 1200), "move to T0+1200");
	ASSERT_EQ(slow1.calls, 1, "T0's lookup ended");
	ASSERT_EQ(slow1.sec, HM_DNS_SEC_FAILED, "as failed");
	ASSERT_STRCONTAINS(slow1.why, "moved on", "saying why");
	ASSERT_EQ(slow1.ref_time, T0, "with its own time");
	ASSERT_EQ(slow2.calls, 0, "T0+600's lookup still in flight");
	ASSERT_OK(hm_dns_resolve(r, "www.local.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, record, &late),
		  "lookup at the newest time");
	wait_for(r, &late.calls, 5000);
	ASSERT_EQ(late.calls, 1, "answered by the newest context");
	ASSERT_EQ(late.ref_time, T0 + 1200, "newest time");
	/* Shutdown with a lookup in flight: it gets a FAILED result. */
	ASSERT_EQ(slow2.calls, 0, "still in flight at shutdown");
	hm_dns_resolver_free(r);
	ASSERT_EQ(slow2.calls, 1, "pending lookup ended at shutdown");
	ASSERT_EQ(slow2.sec, HM_DNS_SEC_FAILED, "as failed");
}

/* A callback that moves the time (its own context then has nothing left,
 * so it is retired while ub_process runs on it) and starts a lookup. */
static struct hm_dns_resolver *moving_r;
static struct seen moved_after;

static void move_time(void *arg, const struct hm_dns_result *res)
{
	record(arg, res);
	hm_dns_resolver_set_time(moving_r, res->ref_time + 600);
	hm_dns_resolve(moving_r, "www.local.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, record,
		       &moved_after);
}

HM_TEST(time_moved_from_a_callback)
{
	struct seen first = { 0 };

	moving_r = make(T0);
	if (!ASSERT_TRUE(moving_r != NULL, "resolver"))
		return;
	memset(&moved_after, 0, sizeof(moved_after));
	ASSERT_OK(hm_dns_resolve(moving_r, "www.local.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
				 move_time, &first), "resolve");
	wait_for(moving_r, &moved_after.calls, 5000);
	ASSERT_EQ(first.calls, 1, "first answered");
	ASSERT_EQ(first.ref_time, T0, "at T0");
	ASSERT_EQ(moved_after.calls, 1, "the lookup started in the callback answered");
	ASSERT_EQ(moved_after.ref_time, T0 + 600, "at the new time");
	ASSERT_EQ(hm_dns_resolver_pending(moving_r), 0, "nothing pending");
	hm_dns_resolver_free(moving_r);
}

/* hm_dns_resolve_fresh: a context of its own per lookup, deleted once the
 * result is delivered; at most HM_DNS_MAX_FRESH at once; lookups still in
 * flight get FAILED when the resolver goes. */
HM_TEST(fresh_lookups_bounded_and_freed)
{
	struct hm_dns_resolver *r = make(T0);
	struct seen a = { 0 }, dead[HM_DNS_MAX_FRESH] = { 0 }, extra = { 0 };

	if (!ASSERT_TRUE(r != NULL, "resolver"))
		return;
	ASSERT_OK(hm_dns_resolve_fresh(r, "www.local.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
				       record, &a), "fresh lookup");
	wait_for(r, &a.calls, 5000);
	ASSERT_EQ(a.calls, 1, "delivered through the resolver's fd");
	ASSERT_EQ(a.sec, HM_DNS_SEC_INSECURE, "local data");
	ASSERT_EQ(a.ttl, 120, "the full TTL");
	ASSERT_EQ(a.ref_time, T0, "at the resolver's reference time");
	/* Its context is gone: HM_DNS_MAX_FRESH more fit, one more does not. */
	for (int i = 0; i < HM_DNS_MAX_FRESH; i++)
		ASSERT_OK(hm_dns_resolve_fresh(r, "x.dead.hmtest.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
					       record, &dead[i]), "fresh lookup in flight");
	ASSERT_ERR(hm_dns_resolve_fresh(r, "y.dead.hmtest.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
					record, &extra), "beyond the bound: refused");
	ASSERT_EQ(hm_dns_resolver_pending(r), HM_DNS_MAX_FRESH, "pending");
	ASSERT_OK(hm_dns_resolve(r, "www.local.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, record,
				 &extra), "ordinary lookups unaffected");
	wait_for(r, &extra.calls, 5000);
	ASSERT_EQ(extra.calls, 1, "answered");
	hm_dns_resolver_free(r);
	for (int i = 0; i < HM_DNS_MAX_FRESH; i++)
		ASSERT_TRUE(dead[i].calls == 1 && dead[i].sec == HM_DNS_SEC_FAILED,
			    "in flight at shutdown: FAILED once");
}

HM_TEST(bad_config_refused)
{
	static const struct hm_dns_upstream inject[] = {
		{ "evil.test.\"\nserver:\n\tdo-ip4: no\n#", "127.0.0.1", false },
	};
	static const char *bad_ta[] = { "this is not a record" };
	struct hm_dns_resolver_config cfg = { .upstreams = inject, .n_upstreams = 1 };
	char err[256] = "";

	ASSERT_TRUE(hm_dns_resolver_new(&cfg, T0, err, sizeof(err)) == NULL, "quote in a zone");
	ASSERT_STRCONTAINS(err, "upstream 0", "error names the upstream");
	cfg = (struct hm_dns_resolver_config){ .trust_anchors = bad_ta, .n_trust_anchors = 1 };
	ASSERT_TRUE(hm_dns_resolver_new(&cfg, T0, err, sizeof(err)) == NULL, "bad trust anchor");
	ASSERT_STRCONTAINS(err, "trust anchor", "error says so");
	cfg = (struct hm_dns_resolver_config){ .root_hints = "/tmp/x\"\nserver:" };
	ASSERT_TRUE(hm_dns_resolver_new(&cfg, T0, err, sizeof(err)) == NULL, "quote in root hints");
	ASSERT_STRCONTAINS(err, "root hints", "error says so");
	cfg = (struct hm_dns_resolver_config){ 0 };
	ASSERT_TRUE(hm_dns_resolver_new(&cfg, -5, err, sizeof(err)) == NULL, "negative time");
	ASSERT_TRUE(hm_dns_resolver_new(&cfg, (int64_t)1 << 40, err, sizeof(err)) == NULL,
		    "time beyond unbound's range");
}

__attribute__((constructor(200))) static void init(void)
{
	if (hm_crypto_init() < 0)
		abort();
	open_sink();
}
