// SPDX-License-Identifier: MIT
/*
 * The XDP responder's answer map kept in step with the certified cache
 * (user/service/dns/dns_xdp_answers.c), on a real BPF hash map and a real
 * DNS service fed OBSERVE ops: a decision installs both DO variants, a
 * userspace hit re-installs only what is missing or stale, the sweep
 * removes expired entries and entries the cache evicted, SERVFAIL
 * decisions never go in.  (What the program does with the entries:
 * selftests/dataplane/test_dns_xdp.c.)  Needs root (a BPF map).
 */
#include <errno.h>

#include <bpf/bpf.h>
#include <ldns/ldns.h>

#include "service/dns/dns_msg.h"
#include "service/dns/dns_service.h"
#include "service/dns/dns_xdp_answers.h"
#include "hm_test.h"
#include "service/dns/hm_dns_sign.h"

static const char *const honest_rrs[] = { "www.example.test. 300 IN A 198.18.1.1", NULL };

struct fixture {
	struct hm_service svc;
	struct hm_dns_service *s;
	int map_fd;
	struct hm_dns_xdp_sync_stats st;
};

static int64_t fake_now = T0;
static int64_t fake_clock(void)
{
	return fake_now;
}

/* As the DNS daemon's decided hook does. */
static void on_decided(void *arg, const struct hm_dns_entry *e)
{
	struct fixture *fx = arg;

	if (e->rule != HM_DNS_RULE_FAIL)
		hm_dns_xdp_install(fx->map_fd, e, &fx->st);
}

static bool setup(struct fixture *fx)
{
	LIBBPF_OPTS(bpf_map_create_opts, o, .map_flags = BPF_F_NO_PREALLOC);
	struct hm_dns_service_config cfg = {
		.n = 4, .f = 1, .max_ttl = 300, .lookup_timeout_s = 30, .skew_s = 60,
		.wall_clock = fake_clock, .hooks = { NULL, on_decided, fx },
	};

	memset(fx, 0, sizeof(*fx));
	fx->map_fd = bpf_map_create(BPF_MAP_TYPE_HASH, "hm_dns_answers", sizeof(struct hm_dns_xdp_key),
				    sizeof(struct hm_dns_xdp_answer), 64, &o);
	if (!ASSERT_TRUE(fx->map_fd >= 0, "bpf_map_create (needs root)"))
		return false;
	if (hm_dns_service_new(&fx->svc, &cfg) < 0)
		abort();
	fx->s = fx->svc.state;
	return true;
}

static void teardown(struct fixture *fx)
{
	fx->svc.ops->destroy(fx->svc.state);
	close(fx->map_fd);
}

static struct hm_dns_q qof(const char *name, uint16_t type)
{
	struct hm_dns_q q;
	ldns_rdf *d = ldns_dname_new_frm_str(name);

	if (hm_dns_q_from_name(&q, ldns_rdf_data(d), ldns_rdf_size(d), type, 1) < 0)
		abort();
	ldns_rdf_deep_free(d);
	return q;
}

static int observe(struct fixture *fx, uint32_t replica, const struct hm_dns_q *q, int64_t t,
		   uint8_t status, const char *const *rrs, uint32_t ttl)
{
	static uint8_t op[70000], out[HM_MAX_RESULT];
	struct hm_exec_ctx ctx = { .seq = 1, .client = HM_REPLICA_CLIENT_BASE + replica, .timestamp = 1 };
	size_t clen = 0, n;
	uint8_t *canon = rrs ? test_canon("www.example.test.", LDNS_RR_TYPE_A, 0, rrs, NULL, false, &clen)
			     : NULL;

	n = hm_dns_observe_encode(q, t, status, status ? 22 : 0, ttl, canon, clen, NULL, 0, op,
				  sizeof(op));
	free(canon);
	if (!n)
		abort();
	n = fx->svc.ops->execute(fx->svc.state, &ctx, op, n, out, sizeof(out));
	return n ? out[0] : -1;
}

static uint32_t map_entries(int fd)
{
	struct hm_dns_xdp_key k, next, *prev = NULL;
	uint32_t n = 0;

	while (bpf_map_get_next_key(fd, prev, &next) == 0) {
		n++;
		k = next;
		prev = &k;
	}
	return n;
}

HM_TEST(decision_installs_sweep_removes)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_q other = qof("x.example.test.", LDNS_RR_TYPE_A);
	const struct hm_dns_entry *e;

	if (!setup(&fx))
		return;
	observe(&fx, 0, &q, T0, HM_DNS_OBS_ANSWER, honest_rrs, 100);
	ASSERT_EQ(map_entries(fx.map_fd), 0, "nothing before the decision");
	ASSERT_EQ(observe(&fx, 1, &q, T0, HM_DNS_OBS_ANSWER, honest_rrs, 100), HM_DNS_R_DECIDED, "f+1");
	ASSERT_EQ(fx.st.installed, 2, "both DO variants installed");
	ASSERT_EQ(map_entries(fx.map_fd), 2, "in the map");
	ASSERT_EQ(hm_dns_xdp_sweep(fx.map_fd, fx.s, T0 + 50, &fx.st), 2, "current entries stay");
	ASSERT_EQ(fx.st.removed, 0, "nothing removed");
	/* A userspace hit with the map in step writes nothing. */
	e = hm_dns_service_lookup(fx.s, &q);
	if (ASSERT_TRUE(e != NULL, "cached")) {
		hm_dns_xdp_ensure(fx.map_fd, e, &fx.st);
		ASSERT_EQ(fx.st.installed, 2, "ensure: already there");
	}
	/* Expired on the wall clock: swept, though the cache holds it until
	 * a later op's T evicts it. */
	ASSERT_EQ(hm_dns_xdp_sweep(fx.map_fd, fx.s, T0 + 100, &fx.st), 0, "expired entries swept");
	ASSERT_EQ(fx.st.removed, 2, "both removed");
	/* A hit re-installs what is missing (a restart, say). */
	e = hm_dns_service_lookup(fx.s, &q);
	if (ASSERT_TRUE(e != NULL, "still cached")) {
		hm_dns_xdp_ensure(fx.map_fd, e, &fx.st);
		ASSERT_EQ(map_entries(fx.map_fd), 2, "ensure re-installed both");
	}
	/* A later op evicts the entry from the cache: the sweep follows, even
	 * at a time the entry would still be valid. */
	observe(&fx, 2, &other, T0 + 200, HM_DNS_OBS_FAILED, NULL, 0);
	ASSERT_TRUE(hm_dns_service_lookup(fx.s, &q) == NULL, "evicted from the cache");
	ASSERT_EQ(hm_dns_xdp_sweep(fx.map_fd, fx.s, T0 + 10, &fx.st), 0, "evicted entries swept");
	ASSERT_EQ(fx.st.removed, 4, "removed");
	teardown(&fx);
}

HM_TEST(servfail_decisions_stay_in_userspace)
{
	struct fixture fx;
	struct hm_dns_q q = qof("www.example.test.", LDNS_RR_TYPE_A);
	struct hm_dns_xdp_answer *val = malloc(sizeof(*val));
	struct hm_dns_xdp_key key;
	const struct hm_dns_entry *e;

	if (!setup(&fx)) {
		free(val);
		return;
	}
	observe(&fx, 0, &q, T0, HM_DNS_OBS_FAILED, NULL, 0);
	ASSERT_EQ(observe(&fx, 1, &q, T0, HM_DNS_OBS_FAILED, NULL, 0), HM_DNS_R_DECIDED, "f+1 failed");
	e = hm_dns_service_lookup(fx.s, &q);
	if (ASSERT_TRUE(e != NULL && e->rule == HM_DNS_RULE_FAIL, "a SERVFAIL decision")) {
		ASSERT_EQ(hm_dns_xdp_answer_make(e, false, &key, val), -1, "not servable from XDP");
		hm_dns_xdp_ensure(fx.map_fd, e, &fx.st);
	}
	ASSERT_EQ(map_entries(fx.map_fd), 0, "nothing installed");
	free(val);
	teardown(&fx);
}
