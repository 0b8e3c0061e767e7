// SPDX-License-Identifier: MIT
/*
 * hm_loss, the loss and duplication injector (kern/hm_loss.bpf.c): load the
 * skeleton, write rules, run crafted frames (selftests/dataplane/hm_frames.h) through
 * BPF_PROG_TEST_RUN and check verdicts, returned frames and counters:
 *
 *   - drop 0% and 100% are exact, for IPv4 and IPv6, and so is dup 100%:
 *     every clone is really sent (received here on lo, egress and ingress);
 *   - traffic no rule matches (other port, address, family, protocol,
 *     fragments, IPv6 extension headers, ARP) comes back untouched and is
 *     not counted; disabled rules are skipped, the first match decides;
 *   - every truncation of a matching frame (IPv4, IPv6, each also VLAN-tagged
 *     so that the kernel hands even a partial IP header to the program):
 *     shorter than the UDP header -> passes uncounted, complete -> dropped;
 *   - the program's own clone (HM_LOSS_CLONE_MARK) passes once, uncounted,
 *     with the bit cleared;
 *   - statistics: 30% drop, and 20% drop with 10% dup, over 100000 packets
 *     each, within 5 standard deviations (a correct program fails with
 *     probability below 1e-6; the seed of the kernel's PRNG is not ours to
 *     print, so the counts are);
 *   - the rule syntax of user/dataplane/loss.c (loss_ctl).
 *
 * Runs in a private network namespace (unshare) so that the clones go out
 * on a loopback device of its own.  Needs root; without it cases fail.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <unistd.h>

#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "dataplane/loss.h"
#include "hm_loss.h"
#include "hm_loss.skel.h"

#include "hm_frames.h"
#include "hm_test.h"

#define PORT 7000

static struct hm_loss_bpf *skel;
static struct hm_loss_maps maps;

static bool setup(void)
{
	static int state;

	if (state < 0)
		HM_FAIL("setup failed in an earlier case");
	if (state)
		return state > 0;
	state = -1;
	if (!ASSERT_OK(unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET) (needs root)"))
		return false;
	if (!ASSERT_OK(system("ip link set lo up && ip addr add 198.18.0.11/32 dev lo"),
		       "configure lo"))
		return false;
	skel = hm_loss_bpf__open_and_load();
	if (!ASSERT_TRUE(skel != NULL, "hm_loss_bpf__open_and_load"))
		return false;
	maps.rules_fd = bpf_map__fd(skel->maps.hm_loss_rules);
	maps.stats_fd = bpf_map__fd(skel->maps.hm_loss_stats);
	state = 1;
	return true;
}

/* Clear every rule and counter, then set rule idx from spec (NULL: none). */
static bool only_rule(uint32_t idx, const char *spec)
{
	struct hm_loss_rule r;
	char err[256];

	for (uint32_t i = 0; i < HM_LOSS_MAX_RULES; i++) {
		struct hm_loss_rule zero = {};

		if (!ASSERT_OK(hm_loss_set_rule(&maps, i, &zero, err, sizeof(err)), err) ||
		    !ASSERT_OK(hm_loss_reset_counters(&maps, i, err, sizeof(err)), err))
			return false;
	}
	if (!spec)
		return true;
	return ASSERT_OK(hm_loss_parse_rule(spec, &r, err, sizeof(err)), err) &&
	       ASSERT_OK(hm_loss_set_rule(&maps, idx, &r, err, sizeof(err)), err);
}

static bool add_rule(uint32_t idx, const char *spec)
{
	struct hm_loss_rule r;
	char err[256];

	return ASSERT_OK(hm_loss_parse_rule(spec, &r, err, sizeof(err)), err) &&
	       ASSERT_OK(hm_loss_set_rule(&maps, idx, &r, err, sizeof(err)), err);
}

static struct hm_loss_counters counters(uint32_t idx)
{
	struct hm_loss_counters c = {};
	char err[256];

	ASSERT_OK(hm_loss_get(&maps, idx, NULL, &c, err, sizeof(err)), err);
	return c;
}

/* ---- frames and runs ----------------------------------------------------- */

static const struct src src4 = { AF_INET, { 198, 18, 0, 5 }, 40000 };
static const struct src src6 = { AF_INET6, { 0xfd, [15] = 0x05 }, 40000 };
static const uint8_t payload[64] = "loss injection test payload";

static void frame_to(struct frame *f, const struct src *s, uint16_t dport)
{
	mkframe(f, s, 0, dport, payload, sizeof(payload));
}

struct run {
	int ret;
	uint32_t retval;
	uint8_t out[sizeof(((struct frame *)0)->buf)];
	uint32_t out_len;
	struct __sk_buff ctx;
};

/* Run one frame; ingress: as if on ingress (ingress_ifindex = lo's). */
static bool run_ex(const uint8_t *data, size_t len, uint32_t mark, bool ingress, struct run *r)
{
	struct __sk_buff ctx = { .mark = mark, .ingress_ifindex = ingress ? 1 : 0 };
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = data, .data_size_in = (uint32_t)len,
		    .data_out = r->out, .data_size_out = sizeof(r->out), .ctx_in = &ctx,
		    .ctx_size_in = sizeof(ctx), .ctx_out = &r->ctx, .ctx_size_out = sizeof(r->ctx),
		    .repeat = 1);

	r->ret = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.hm_loss), &o);
	r->retval = o.retval;
	r->out_len = o.data_size_out;
	return ASSERT_OK(r->ret, "bpf_prog_test_run_opts");
}

static int verdict(const struct frame *f)
{
	struct run r;

	return run_ex(f->buf, f->len, 0, false, &r) ? (int)r.retval : -1;
}

/* Passes, byte for byte unchanged. */
static void untouched(const struct frame *f, const char *what)
{
	struct run r;

	if (!run_ex(f->buf, f->len, 0, false, &r))
		return;
	ASSERT_EQ(r.retval, TC_ACT_OK, what);
	ASSERT_EQ(r.out_len, f->len, what);
	ASSERT_MEMEQ(r.out, f->buf, f->len, what);
}

/* ---- exact cases ---------------------------------------------------------- */

HM_TEST(drop_all_and_none_exact_ipv4_ipv6)
{
	struct frame f4, f6;
	int shot = 0, ok = 0;

	if (!setup())
		return;
	frame_to(&f4, &src4, PORT);
	frame_to(&f6, &src6, PORT);
	if (!only_rule(0, "port=7000,drop=100%"))
		return;
	for (int i = 0; i < 1000; i++) {
		shot += verdict(&f4) == TC_ACT_SHOT;
		shot += verdict(&f6) == TC_ACT_SHOT;
	}
	ASSERT_EQ(shot, 2000, "100%: every packet dropped");
	ASSERT_EQ(counters(0).seen, 2000, "seen");
	ASSERT_EQ(counters(0).dropped, 2000, "dropped");
	ASSERT_EQ(counters(0).duplicated, 0, "duplicated");

	if (!only_rule(0, "port=7000,drop=0%,dup=0%"))
		return;
	for (int i = 0; i < 1000; i++) {
		ok += verdict(&f4) == TC_ACT_OK;
		ok += verdict(&f6) == TC_ACT_OK;
	}
	ASSERT_EQ(ok, 2000, "0%: every packet passes");
	ASSERT_EQ(counters(0).seen, 2000, "seen");
	ASSERT_EQ(counters(0).dropped, 0, "dropped");
	untouched(&f4, "0%: IPv4 unchanged");
	untouched(&f6, "0%: IPv6 unchanged");
}

/* A UDP socket on 198.18.0.11:PORT (on our private lo). */
static int listen_udp(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(PORT) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);

	memcpy(&sa.sin_addr, self_v4, 4);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static int count_received(int fd, int timeout_ms)
{
	uint8_t buf[256];
	int n = 0;

	for (;;) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t len;

		if (poll(&p, 1, timeout_ms) != 1)
			return n;
		len = recv(fd, buf, sizeof(buf), 0);
		if (len == (ssize_t)sizeof(payload) && !memcmp(buf, payload, sizeof(payload)))
			n++;
	}
}

HM_TEST(dup_all_exact_and_clones_are_sent)
{
	struct frame f;
	struct run r;
	int fd, ok = 0;

	if (!setup())
		return;
	fd = listen_udp();
	if (!ASSERT_GE(fd, 0, "listen on 198.18.0.11:7000"))
		return;
	frame_to(&f, &src4, PORT);
	memset(f.buf, 0, 6); /* lo's MAC: the clones are for this host */
	if (!only_rule(3, "dst=198.18.0.11,port=7000,dup=100%"))
		goto out;
	/* The test run only returns the original; each clone is transmitted
	 * on lo (egress) or received on it (ingress) and reaches the socket. */
	for (int i = 0; i < 10; i++) {
		if (!run_ex(f.buf, f.len, 0, i >= 5, &r))
			goto out;
		ok += r.retval == TC_ACT_OK;
		ASSERT_EQ(r.ctx.mark, 0, "the original's mark is restored");
	}
	ASSERT_EQ(ok, 10, "originals pass");
	ASSERT_EQ(counters(3).seen, 10, "seen");
	ASSERT_EQ(counters(3).duplicated, 10, "duplicated");
	ASSERT_EQ(counters(3).dup_failed, 0, "dup_failed");
	ASSERT_EQ(counters(3).dropped, 0, "dropped");
	ASSERT_EQ(count_received(fd, 500), 10, "ten clones received (5 egress, 5 ingress)");
out:
	close(fd);
}

HM_TEST(own_clone_passes_uncounted_with_mark_cleared)
{
	struct frame f;
	struct run r;

	if (!setup() || !only_rule(0, "drop=100%"))
		return;
	frame_to(&f, &src4, PORT);
	if (!run_ex(f.buf, f.len, HM_LOSS_CLONE_MARK | 0x5, false, &r))
		return;
	ASSERT_EQ(r.retval, TC_ACT_OK, "clone passes");
	ASSERT_EQ(r.ctx.mark, 0x5, "only the clone bit is cleared");
	ASSERT_EQ(counters(0).seen, 0, "not counted");
	if (run_ex(f.buf, f.len, 0x5, false, &r)) {
		ASSERT_EQ(r.retval, TC_ACT_SHOT, "same packet without the bit: dropped");
		ASSERT_EQ(r.ctx.mark, 0x5, "mark kept");
	}
}

HM_TEST(non_matching_traffic_untouched)
{
	struct frame f;

	if (!setup() || !only_rule(0, "dst=198.18.0.11,port=7000,drop=100%"))
		return;
	frame_to(&f, &src4, 7001);
	untouched(&f, "other port");
	frame_to(&f, &src6, PORT);
	untouched(&f, "IPv6, rule is for an IPv4 address");
	frame_to(&f, &src4, PORT);
	f.buf[f.l3 + 19] = 12; /* 198.18.0.12 (checksum not rechecked) */
	untouched(&f, "other address");
	frame_to(&f, &src4, PORT);
	f.buf[f.l3 + 9] = 6; /* TCP */
	untouched(&f, "not UDP");
	frame_to(&f, &src4, PORT);
	f.buf[f.l3 + 6] = 0x00;
	f.buf[f.l3 + 7] = 0x10; /* a later fragment: no UDP header */
	untouched(&f, "later fragment");
	frame_to(&f, &src4, PORT);
	f.buf[12] = 0x08;
	f.buf[13] = 0x06; /* ARP */
	untouched(&f, "ARP ethertype");
	frame_to(&f, &src4, PORT);
	f.buf[f.l3] = 0x55; /* version 5 */
	untouched(&f, "bad IP version");
	ASSERT_EQ(counters(0).seen, 0, "nothing counted");

	/* IPv6: a rule for the IPv6 address and port. */
	if (!only_rule(1, "dst=fd00::11,port=7000,drop=100%"))
		return;
	frame_to(&f, &src6, PORT);
	ASSERT_EQ(verdict(&f), TC_ACT_SHOT, "IPv6 match dropped");
	f.buf[f.l3 + 6] = 0; /* a hop-by-hop header first: not walked */
	untouched(&f, "IPv6 extension header");
	frame_to(&f, &src4, PORT);
	untouched(&f, "IPv4 to the same port");
	ASSERT_EQ(counters(1).seen, 1, "IPv6 rule: one seen");

	/* A first fragment has the UDP header: it matches. */
	if (!only_rule(0, "dst=198.18.0.11,port=7000,drop=100%"))
		return;
	frame_to(&f, &src4, PORT);
	f.buf[f.l3 + 6] = 0x20; /* MF, offset 0 */
	ASSERT_EQ(verdict(&f), TC_ACT_SHOT, "first fragment matches");
	/* A VLAN-tagged frame is parsed past its tag. */
	mkframe(&f, &src4, FL_VLAN | FL_OPTS, PORT, payload, sizeof(payload));
	ASSERT_EQ(verdict(&f), TC_ACT_SHOT, "VLAN tag and IP options");
}

HM_TEST(first_enabled_matching_rule_decides)
{
	struct frame f;

	if (!setup() || !only_rule(0, "port=7000,drop=100%,off"))
		return;
	if (!add_rule(1, "port=7001,drop=100%") || !add_rule(2, "family=4,drop=0%") ||
	    !add_rule(3, "drop=100%"))
		return;
	frame_to(&f, &src4, PORT);
	ASSERT_EQ(verdict(&f), TC_ACT_OK, "rule 0 off, rule 1 other port, rule 2 passes it");
	frame_to(&f, &src4, 7001);
	ASSERT_EQ(verdict(&f), TC_ACT_SHOT, "rule 1 drops port 7001");
	frame_to(&f, &src6, PORT);
	ASSERT_EQ(verdict(&f), TC_ACT_SHOT, "IPv6 falls through to rule 3");
	ASSERT_EQ(counters(0).seen, 0, "disabled rule: nothing");
	ASSERT_EQ(counters(1).seen, 1, "rule 1: one");
	ASSERT_EQ(counters(2).seen, 1, "rule 2: one");
	ASSERT_EQ(counters(3).seen, 1, "rule 3: one");
	/* Rates past 100% written with bpftool are capped, not trusted. */
	{
		struct hm_loss_rule r = { .enabled = 1, .drop_ppm = 5000000, .dup_ppm = 7 };
		char err[256];

		if (only_rule(0, NULL) && ASSERT_OK(hm_loss_set_rule(&maps, 0, &r, err, 256), err)) {
			ASSERT_EQ(verdict(&f), TC_ACT_SHOT, "drop_ppm above 1e6: all dropped");
			ASSERT_EQ(counters(0).duplicated, 0, "no room for dup");
		}
	}
}

HM_TEST(truncated_frames_at_every_length)
{
	static const char *names[] = { "IPv4", "IPv6", "IPv4 in VLAN", "IPv6 in VLAN" };
	struct frame fs[4];

	if (!setup() || !only_rule(0, "drop=100%"))
		return;
	frame_to(&fs[0], &src4, PORT);
	frame_to(&fs[1], &src6, PORT);
	mkframe(&fs[2], &src4, FL_VLAN, PORT, payload, sizeof(payload));
	mkframe(&fs[3], &src6, FL_VLAN, PORT, payload, sizeof(payload));
	for (int v = 0; v < 4; v++) {
		const struct frame *f = &fs[v];
		uint64_t want = 0;
		int ran = 0;

		for (size_t len = 0; len <= f->len; len++) {
			struct run r;
			LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->buf,
				    .data_size_in = (uint32_t)len, .data_out = r.out,
				    .data_size_out = sizeof(r.out), .repeat = 1);
			bool complete = len >= f->l4 + 8;
			int ret = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.hm_loss), &o);

			/* The kernel refuses test frames that end inside the
			 * Ethernet header or, untagged, inside the IP header
			 * (6.18); the tagged frames reach the program at every
			 * length from 15 bytes on. */
			if (ret) {
				if (!ASSERT_TRUE(len < f->l4 && (len <= 14 || v < 2),
						 "test run refused only for a partial L2/L3 header")) {
					fprintf(stderr, "  %s at length %zu: %d\n", names[v], len, ret);
					break;
				}
				continue;
			}
			ran++;
			if (!ASSERT_EQ(o.retval, complete ? TC_ACT_SHOT : TC_ACT_OK, names[v])) {
				fprintf(stderr, "  at length %zu\n", len);
				break;
			}
			want += complete;
		}
		ASSERT_GE(ran, (int)(f->len - f->l4 + 1), "every UDP header truncation ran");
		ASSERT_EQ(counters(0).seen, want, "only complete UDP headers counted");
		only_rule(0, "drop=100%");
	}
}

/* ---- statistics ----------------------------------------------------------- */

/* |x - n p| <= z sqrt(n p (1 - p)). */
static bool within(uint64_t x, uint64_t n, double p, double z, const char *what)
{
	double mean = (double)n * p, sd = sqrt((double)n * p * (1 - p));
	bool ok = fabs((double)x - mean) <= z * sd;

	if (!ok)
		HM_FAIL("%s: %" PRIu64 " of %" PRIu64 ", expected %.0f +- %.0f", what, x, n, mean,
			z * sd);
	else
		printf("  %s: %" PRIu64 " of %" PRIu64 " (expected %.0f +- %.0f)\n", what, x, n,
		       mean, z * sd);
	return ok;
}

#define NSTAT 100000

HM_TEST(statistical_30_percent_drop)
{
	struct frame f;
	uint64_t shot = 0;

	if (!setup() || !only_rule(0, "port=7000,drop=30%"))
		return;
	frame_to(&f, &src4, PORT);
	for (int i = 0; i < NSTAT; i++) {
		int v = verdict(&f);

		if (!ASSERT_TRUE(v == TC_ACT_SHOT || v == TC_ACT_OK, "verdict"))
			return;
		shot += v == TC_ACT_SHOT;
	}
	/* Two-sided P(|Z| > 5) = 5.7e-7. */
	within(shot, NSTAT, 0.30, 5.0, "30% drop");
	ASSERT_EQ(counters(0).seen, NSTAT, "seen");
	ASSERT_EQ(counters(0).dropped, shot, "dropped counter agrees with the verdicts");
}

HM_TEST(statistical_drop_and_dup)
{
	struct frame f;
	uint64_t shot = 0;
	struct hm_loss_counters c;

	if (!setup() || !only_rule(0, "dst=fd00::11,drop=20%,dup=10%"))
		return;
	/* Not for this host's MAC: the clones sent on lo are discarded early. */
	frame_to(&f, &src6, PORT);
	for (int i = 0; i < NSTAT; i++)
		shot += verdict(&f) == TC_ACT_SHOT;
	c = counters(0);
	/* Two tests at z = 5.3: P(either fails) <= 2 * 1.2e-7. */
	within(shot, NSTAT, 0.20, 5.3, "20% drop");
	within(c.duplicated, NSTAT, 0.10, 5.3, "10% dup");
	ASSERT_EQ(c.seen, NSTAT, "seen");
	ASSERT_EQ(c.dropped, shot, "dropped counter agrees");
	ASSERT_EQ(c.dup_failed, 0, "no failed clones");
}

/* ---- the rule syntax ----------------------------------------------------- */

HM_TEST(rule_syntax)
{
	struct hm_loss_rule r;
	char err[256], buf[256];
	static const char *bad[] = {
		"drop=101%", "drop=-1%", "drop=x", "dup=50%,drop=60%", "port=0", "port=65536",
		"port=7x", "dst=198.18.0.300", "family=5", "dst=198.18.0.1,family=6",
		"bogus=1", "drop", "drop=1.5ppm",
	};

	ASSERT_OK(hm_loss_parse_rule("dst=198.18.0.2,port=7000,drop=30%,dup=0.5%", &r, err, 256),
		  err);
	ASSERT_EQ(r.enabled, 1, "enabled");
	ASSERT_EQ(r.family, 4, "family from dst");
	ASSERT_EQ(r.match_addr, 1, "match_addr");
	ASSERT_EQ(ntohs(r.dport), 7000, "port");
	ASSERT_EQ(r.drop_ppm, 300000, "30%");
	ASSERT_EQ(r.dup_ppm, 5000, "0.5%");
	hm_loss_format_rule(&r, buf, sizeof(buf));
	ASSERT_STRCONTAINS(buf, "dst=198.18.0.2,port=7000,drop=300000ppm,dup=5000ppm", "format");
	ASSERT_OK(hm_loss_parse_rule("family=6,drop=250ppm,off", &r, err, 256), err);
	ASSERT_EQ(r.enabled, 0, "off");
	ASSERT_EQ(r.family, 6, "family");
	ASSERT_EQ(r.drop_ppm, 250, "ppm");
	ASSERT_OK(hm_loss_parse_rule("", &r, err, 256), "empty: match all UDP, no effect");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = 0;
		if (!ASSERT_EQ(hm_loss_parse_rule(bad[i], &r, err, 256), -1, bad[i]))
			continue;
		ASSERT_TRUE(err[0] != 0, "error message");
	}
}
