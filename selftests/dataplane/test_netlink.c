// SPDX-License-Identifier: MIT
/*
 * user/dataplane/netlink.c against the real kernel tables, in namespaces of its own:
 *
 *   A (this process, after unshare)       B (a child process's namespace)
 *   v0 198.18.10.1/24  <---- veth ---->   v1 198.18.10.2/24 (+ .3, .5 .. .9)
 *
 * B's namespace lives exactly as long as its child process, which dies with
 * us (PR_SET_PDEATHSIG), and A is ours alone: nothing is left behind even on
 * a crash, and no names are taken in the root namespace.
 *
 * Cases: a direct peer, first pending (no neighbour entry; resolution is
 * triggered, an event follows) and then resolved; peers behind a gateway
 * (the gateway's MAC), also through a policy-routing rule; a gateway that
 * never answers (pending, then a failed event); the peer's MAC changing
 * (gratuitous ARP: an event with the new MAC, resolve returns it); the link
 * going down, administratively and by losing carrier (LINK_DOWN, LINK_UP);
 * no route, a blackhole, an unreachable route and a local address (clear
 * errors).  Needs root; without it the cases fail, they do not skip.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "dataplane/netlink.h"

#include "hm_test.h"

static pid_t peer_pid;       /* B's process */
static struct hm_nl *nl;
static uint32_t v0_index;
static uint8_t v0_mac[6], v1_mac[6];

static uint32_t ip4(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		abort();
	return a.s_addr;
}

static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[1024];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fprintf(stderr, "  command failed (%d): %s\n", rc, cmd);
	return rc == 0 ? 0 : -1;
}

/* Run an ip(8) command in B. */
#define B(fmt, ...) run("nsenter -t %d -n " fmt, (int)peer_pid, ##__VA_ARGS__)

static int read_mac(const char *cmd, uint8_t mac[6])
{
	unsigned b[6];
	FILE *f = popen(cmd, "r");
	int n;

	if (!f)
		return -1;
	n = fscanf(f, "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]);
	pclose(f);
	if (n != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)b[i];
	return 0;
}

static int refresh_v1_mac(void)
{
	char cmd[256];

	snprintf(cmd, sizeof(cmd), "nsenter -t %d -n ip -br link show dev v1 | awk '{print $3}'",
		 (int)peer_pid);
	return read_mac(cmd, v1_mac);
}

/* B: a child in a fresh network namespace that waits until we die. */
static pid_t spawn_peer(void)
{
	int p[2];
	char c;
	pid_t pid;

	if (pipe(p) < 0)
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (unshare(CLONE_NEWNET) < 0)
			_exit(1);
		if (write(p[1], "x", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(p[1]);
	if (pid < 0 || read(p[0], &c, 1) != 1) {
		close(p[0]);
		return -1;
	}
	close(p[0]);
	return pid;
}

static void kill_peer(void)
{
	if (peer_pid > 0) {
		kill(peer_pid, SIGKILL);
		waitpid(peer_pid, NULL, 0);
	}
}

static bool setup(void)
{
	static int state; /* 0 not yet, 1 ok, -1 failed */
	char err[256] = "";

	if (state < 0)
		HM_FAIL("setup failed in an earlier case");
	if (state)
		return state > 0;
	state = -1;
	if (!ASSERT_OK(unshare(CLONE_NEWNET), "unshare(CLONE_NEWNET) (needs root)"))
		return false;
	peer_pid = spawn_peer();
	if (!ASSERT_GE(peer_pid, 1, "spawn the peer namespace"))
		return false;
	atexit(kill_peer);
	/* Fast failure detection for the gateway that never answers. */
	if (!ASSERT_OK(run("ip link set lo up && "
			   "ip link add v0 type veth peer name v1 netns %d && "
			   "ip addr add 198.18.10.1/24 dev v0 && ip link set v0 up && "
			   "sysctl -qw net.ipv4.neigh.v0.mcast_solicit=2 "
			   "net.ipv4.neigh.v0.ucast_solicit=1 "
			   "net.ipv4.neigh.v0.retrans_time_ms=100",
			   (int)peer_pid),
		       "set up A"))
		return false;
	if (!ASSERT_OK(B("sh -c 'ip link set lo up && ip addr add 198.18.10.2/24 dev v1 && "
			 "for i in 3 5 6 7 8 9; do ip addr add 198.18.10.$i/24 dev v1; done && "
			 "sysctl -qw net.ipv4.conf.v1.arp_notify=1 && ip link set v1 up'"),
		       "set up B"))
		return false;
	v0_index = if_nametoindex("v0");
	if (!ASSERT_GE(v0_index, 1, "v0") ||
	    !ASSERT_OK(read_mac("ip -br link show dev v0 | awk '{print $3}'", v0_mac), "v0 MAC") ||
	    !ASSERT_OK(refresh_v1_mac(), "v1 MAC"))
		return false;
	nl = hm_nl_open(err, sizeof(err));
	if (!ASSERT_TRUE(nl != NULL, err))
		return false;
	/* Wait for carrier on v0 (veth: as soon as both ends are up). */
	for (int i = 0; i < 100 && run("ip link show v0 | grep -q LOWER_UP") != 0; i++)
		usleep(20000);
	state = 1;
	return true;
}

/* ---- events --------------------------------------------------------------- */

#define MAX_EVENTS 256
static struct hm_nl_event events[MAX_EVENTS];
static int nevents;

static void collect(void *ctx, const struct hm_nl_event *ev)
{
	(void)ctx;
	if (nevents < MAX_EVENTS)
		events[nevents++] = *ev;
}

static void drain(void)
{
	ASSERT_GE(hm_nl_process(nl, collect, NULL), 0, "hm_nl_process");
	nevents = 0;
}

typedef bool (*ev_pred)(const struct hm_nl_event *ev, const void *arg);

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Poll and process until an event satisfies pred (copied to *out), at most
 * timeout_ms.  Events already collected count too. */
static bool wait_event(ev_pred pred, const void *arg, int timeout_ms, struct hm_nl_event *out)
{
	long end = now_ms() + timeout_ms;
	int seen = 0;

	for (;;) {
		for (; seen < nevents; seen++)
			if (pred(&events[seen], arg)) {
				if (out)
					*out = events[seen];
				return true;
			}
		long left = end - now_ms();
		struct pollfd p = { .fd = hm_nl_fd(nl), .events = POLLIN };

		if (left <= 0)
			return false;
		if (poll(&p, 1, (int)left) < 0 && errno != EINTR)
			return false;
		if (hm_nl_process(nl, collect, NULL) < 0)
			return false;
	}
}

static bool is_neigh(const struct hm_nl_event *ev, const void *arg)
{
	return ev->type == HM_NL_NEIGH_CHANGED && ev->addr_be == *(const uint32_t *)arg;
}

static bool is_type(const struct hm_nl_event *ev, const void *arg)
{
	return ev->type == *(const enum hm_nl_event_type *)arg;
}

/* Resolve addr, waiting out one pending round. */
static int resolve_wait(uint32_t addr, uint32_t nexthop, struct hm_nl_route *r, char *err,
			size_t errlen)
{
	int rc = hm_nl_resolve(nl, addr, r, err, errlen);

	if (rc != 1)
		return rc;
	if (!wait_event(is_neigh, &nexthop, 3000, NULL))
		return 1;
	return hm_nl_resolve(nl, addr, r, err, errlen);
}

/* ---- cases ---------------------------------------------------------------- */

HM_TEST(direct_peer_pending_then_resolved)
{
	uint32_t peer = ip4("198.18.10.5");
	struct hm_nl_route r;
	struct hm_nl_event ev;
	char err[256] = "";

	if (!setup())
		return;
	drain();
	/* Nothing has talked to .5 yet: no neighbour entry. */
	if (!ASSERT_EQ(hm_nl_resolve(nl, peer, &r, err, sizeof(err)), 1, "first resolve: pending"))
		return;
	if (!ASSERT_TRUE(wait_event(is_neigh, &peer, 3000, &ev), "neighbour event for .5"))
		return;
	ASSERT_TRUE(ev.mac_valid, "event: resolved");
	ASSERT_FALSE(ev.failed, "event: not failed");
	ASSERT_EQ(ev.ifindex, v0_index, "event: on v0");
	ASSERT_MEMEQ(ev.mac, v1_mac, 6, "event: B's MAC");
	if (!ASSERT_EQ(hm_nl_resolve(nl, peer, &r, err, sizeof(err)), 0, err))
		return;
	ASSERT_EQ(r.ifindex, v0_index, "egress device v0");
	ASSERT_MEMEQ(r.src_mac, v0_mac, 6, "src MAC is v0's");
	ASSERT_MEMEQ(r.dst_mac, v1_mac, 6, "dst MAC is the peer's");
	ASSERT_EQ(r.src_ipv4_be, ip4("198.18.10.1"), "source address");
	ASSERT_EQ(r.gateway_be, 0, "on-link: no gateway");
	/* Resolving again changes nothing, so it reports nothing. */
	drain();
	ASSERT_EQ(hm_nl_resolve(nl, peer, &r, err, sizeof(err)), 0, "resolved again");
	ASSERT_FALSE(wait_event(is_neigh, &peer, 200, NULL), "no event without a change");
}

/* The fallback trigger (a datagram to the discard port) works too. */
HM_TEST(udp_trigger_resolves_too)
{
	uint32_t peer = ip4("198.18.10.7");
	struct hm_nl_route r;
	char err[256] = "";

	if (!setup())
		return;
	drain();
	hm_nl_use_udp_trigger(nl, true);
	ASSERT_EQ(hm_nl_resolve(nl, peer, &r, err, sizeof(err)), 1, "pending");
	hm_nl_use_udp_trigger(nl, false);
	if (!ASSERT_TRUE(wait_event(is_neigh, &peer, 3000, NULL), "neighbour event for .7"))
		return;
	if (ASSERT_EQ(hm_nl_resolve(nl, peer, &r, err, sizeof(err)), 0, err))
		ASSERT_MEMEQ(r.dst_mac, v1_mac, 6, "dst MAC is the peer's");
}

HM_TEST(peer_behind_gateway)
{
	enum hm_nl_event_type rc_type = HM_NL_ROUTE_CHANGED;
	uint32_t gw = ip4("198.18.10.2");
	struct hm_nl_route r;
	char err[256] = "";

	if (!setup())
		return;
	drain();
	if (!ASSERT_OK(run("ip route add 198.18.20.0/24 via 198.18.10.2"), "add route"))
		return;
	ASSERT_TRUE(wait_event(is_type, &rc_type, 2000, NULL), "route-changed event");
	if (!ASSERT_EQ(resolve_wait(ip4("198.18.20.5"), gw, &r, err, sizeof(err)), 0, err))
		return;
	ASSERT_EQ(r.ifindex, v0_index, "egress device v0");
	ASSERT_EQ(r.gateway_be, gw, "gateway 198.18.10.2");
	ASSERT_MEMEQ(r.dst_mac, v1_mac, 6, "dst MAC is the gateway's");
	ASSERT_MEMEQ(r.src_mac, v0_mac, 6, "src MAC is v0's");
	ASSERT_EQ(r.src_ipv4_be, ip4("198.18.10.1"), "source address");
}

HM_TEST(policy_routing_rule_is_honoured)
{
	uint32_t gw = ip4("198.18.10.3");
	struct hm_nl_route r;
	char err[256] = "";

	if (!setup())
		return;
	/* Only a rule leads to table 100; the main table has no route. */
	if (!ASSERT_OK(run("ip route add 198.18.40.0/24 via 198.18.10.3 table 100 && "
			   "ip rule add to 198.18.40.0/24 lookup 100 pref 100"),
		       "add rule and table"))
		return;
	if (!ASSERT_EQ(resolve_wait(ip4("198.18.40.7"), gw, &r, err, sizeof(err)), 0, err))
		return;
	ASSERT_EQ(r.gateway_be, gw, "gateway from table 100");
	ASSERT_MEMEQ(r.dst_mac, v1_mac, 6, "dst MAC is that gateway's");
	run("ip rule del pref 100");
	ASSERT_EQ(hm_nl_resolve(nl, ip4("198.18.40.7"), &r, err, sizeof(err)), -1,
		  "without the rule: no route");
}

HM_TEST(gateway_that_never_answers_fails)
{
	uint32_t gw = ip4("198.18.10.4"); /* nobody has it */
	struct hm_nl_route r;
	struct hm_nl_event ev;
	char err[256] = "";

	if (!setup())
		return;
	if (!ASSERT_OK(run("ip route add 198.18.30.0/24 via 198.18.10.4"), "add route"))
		return;
	drain();
	if (!ASSERT_EQ(hm_nl_resolve(nl, ip4("198.18.30.1"), &r, err, sizeof(err)), 1, "pending"))
		return;
	if (!ASSERT_TRUE(wait_event(is_neigh, &gw, 3000, &ev), "event for the gateway"))
		return;
	ASSERT_TRUE(ev.failed, "event: failed");
	ASSERT_FALSE(ev.mac_valid, "event: no MAC");
}

HM_TEST(no_route_and_other_unusable_destinations)
{
	struct hm_nl_route r;
	char err[256] = "";

	if (!setup())
		return;
	ASSERT_EQ(hm_nl_resolve(nl, ip4("198.19.250.1"), &r, err, sizeof(err)), -1, "no route");
	ASSERT_STRCONTAINS(err, "no route to 198.19.250.1", "no route: error");
	ASSERT_STRCONTAINS(err, "unreachable", "no route: error says why");
	if (!ASSERT_OK(run("ip route add blackhole 198.18.50.0/24 && "
			   "ip route add unreachable 198.18.51.0/24 && "
			   "ip route add prohibit 198.18.52.0/24"),
		       "add special routes"))
		return;
	err[0] = 0;
	ASSERT_EQ(hm_nl_resolve(nl, ip4("198.18.50.1"), &r, err, sizeof(err)), -1, "blackhole");
	ASSERT_STRCONTAINS(err, "no route to 198.18.50.1", "blackhole: error");
	ASSERT_STRCONTAINS(err, "blackhole", "blackhole: error says why");
	err[0] = 0;
	ASSERT_EQ(hm_nl_resolve(nl, ip4("198.18.51.1"), &r, err, sizeof(err)), -1, "unreachable");
	ASSERT_STRCONTAINS(err, "no route to 198.18.51.1", "unreachable: error");
	ASSERT_STRCONTAINS(err, "unreachable route", "unreachable: error says why");
	err[0] = 0;
	ASSERT_EQ(hm_nl_resolve(nl, ip4("198.18.52.1"), &r, err, sizeof(err)), -1, "prohibit");
	ASSERT_STRCONTAINS(err, "no route to 198.18.52.1", "prohibit: error");
	ASSERT_STRCONTAINS(err, "prohibited", "prohibit: error says why");
	err[0] = 0;
	ASSERT_EQ(hm_nl_resolve(nl, ip4("198.18.10.1"), &r, err, sizeof(err)), -1, "local");
	ASSERT_STRCONTAINS(err, "local address", "local: error");
	err[0] = 0;
	ASSERT_EQ(hm_nl_resolve(nl, ip4("198.18.10.255"), &r, err, sizeof(err)), -1, "broadcast");
	ASSERT_STRCONTAINS(err, "broadcast", "broadcast: error");
}

HM_TEST(neighbour_mac_change_is_reported)
{
	static const uint8_t new_mac[6] = { 0x02, 0x00, 0x00, 0x00, 0xaa, 0x02 };
	uint32_t peer = ip4("198.18.10.6");
	struct hm_nl_route r;
	struct hm_nl_event ev;
	char err[256] = "";

	if (!setup())
		return;
	if (!ASSERT_EQ(resolve_wait(peer, peer, &r, err, sizeof(err)), 0, err))
		return;
	ASSERT_MEMEQ(r.dst_mac, v1_mac, 6, "old MAC");
	drain();
	/* B changes its MAC; arp_notify makes it announce the change. */
	if (!ASSERT_OK(B("ip link set v1 address 02:00:00:00:aa:02"), "change B's MAC"))
		return;
	if (!ASSERT_TRUE(wait_event(is_neigh, &peer, 3000, &ev), "neighbour event"))
		return;
	ASSERT_TRUE(ev.mac_valid, "event: usable");
	ASSERT_MEMEQ(ev.mac, new_mac, 6, "event: the new MAC");
	if (ASSERT_EQ(hm_nl_resolve(nl, peer, &r, err, sizeof(err)), 0, err))
		ASSERT_MEMEQ(r.dst_mac, new_mac, 6, "resolve: the new MAC");
	refresh_v1_mac();
}

HM_TEST(link_down_and_up_are_reported)
{
	enum hm_nl_event_type down = HM_NL_LINK_DOWN, up = HM_NL_LINK_UP;
	struct hm_nl_route r;
	struct hm_nl_event ev;
	char err[256] = "";

	if (!setup())
		return;
	drain();
	/* Administratively down on our side. */
	if (!ASSERT_OK(run("ip link set v0 down"), "v0 down"))
		return;
	if (ASSERT_TRUE(wait_event(is_type, &down, 2000, &ev), "link-down event")) {
		ASSERT_EQ(ev.ifindex, v0_index, "link-down: v0's index");
		ASSERT_TRUE(strcmp(ev.ifname, "v0") == 0, "link-down: named v0");
	}
	ASSERT_EQ(hm_nl_resolve(nl, ip4("198.18.10.2"), &r, err, sizeof(err)), -1,
		  "resolve while down");
	ASSERT_STRCONTAINS(err, "no route to 198.18.10.2", "while down: error");
	drain();
	if (!ASSERT_OK(run("ip link set v0 up"), "v0 up"))
		return;
	if (ASSERT_TRUE(wait_event(is_type, &up, 3000, &ev), "link-up event"))
		ASSERT_EQ(ev.ifindex, v0_index, "link-up: v0's index");
	/* Carrier lost: the far end goes down. */
	drain();
	if (!ASSERT_OK(B("ip link set v1 down"), "v1 down"))
		return;
	if (ASSERT_TRUE(wait_event(is_type, &down, 2000, &ev), "link-down event (no carrier)"))
		ASSERT_EQ(ev.ifindex, v0_index, "no carrier: v0's index");
	err[0] = 0;
	ASSERT_EQ(hm_nl_resolve(nl, ip4("198.18.10.2"), &r, err, sizeof(err)), -1,
		  "resolve without carrier");
	ASSERT_STRCONTAINS(err, "down", "no carrier: error");
	drain();
	if (!ASSERT_OK(B("ip link set v1 up"), "v1 up"))
		return;
	if (ASSERT_TRUE(wait_event(is_type, &up, 3000, &ev), "link-up event (carrier back)"))
		ASSERT_EQ(ev.ifindex, v0_index, "carrier back: v0's index");
	err[0] = 0;
	ASSERT_EQ(resolve_wait(ip4("198.18.10.2"), ip4("198.18.10.2"), &r, err, sizeof(err)), 0,
		  err);
}

static int count_type(const struct hm_nl_event *evs, int n, enum hm_nl_event_type t)
{
	int c = 0;

	for (int i = 0; i < n; i++)
		c += evs[i].type == t;
	return c;
}

/* An event socket that overflows reports HM_NL_RESYNC and keeps working. */
HM_TEST(overrun_reports_resync)
{
	struct hm_nl *nl2;
	char err[256] = "";
	int small = 1024, n;
	FILE *f;

	if (!setup())
		return;
	nl2 = hm_nl_open(err, sizeof(err));
	if (!ASSERT_TRUE(nl2 != NULL, err))
		return;
	if (!ASSERT_OK(setsockopt(hm_nl_fd(nl2), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)),
		       "shrink the event socket's buffer"))
		goto out;
	/* Far more notifications than fit: 500 neighbour entries added and
	 * removed while nobody reads. */
	f = popen("ip -batch -", "w");
	if (!ASSERT_TRUE(f != NULL, "ip -batch"))
		goto out;
	for (int i = 0; i < 500; i++)
		fprintf(f, "neigh add 198.18.%d.%d lladdr 02:00:00:00:%02x:%02x dev v0 nud permanent\n",
			11 + i / 250, i % 250 + 1, i / 250, i % 250);
	for (int i = 0; i < 500; i += 2)
		fprintf(f, "neigh del 198.18.%d.%d dev v0\n", 11 + i / 250, i % 250 + 1);
	if (!ASSERT_OK(pclose(f), "ip -batch ran"))
		goto out;
	nevents = 0;
	n = hm_nl_process(nl2, collect, NULL);
	ASSERT_GE(n, 1, "events delivered");
	ASSERT_GE(count_type(events, nevents, HM_NL_RESYNC), 1, "a resync event");
	/* Still usable: with room again, a link change comes through.  (With
	 * the tiny buffer, the flush of 250 neighbours on link down would
	 * overflow it again, and RESYNC would stand for the lost events.) */
	small = 1 << 20;
	ASSERT_OK(setsockopt(hm_nl_fd(nl2), SOL_SOCKET, SO_RCVBUF, &small, sizeof(small)),
		  "restore the buffer");
	hm_nl_process(nl2, collect, NULL);
	nevents = 0;
	if (ASSERT_OK(run("ip link set v0 down && ip link set v0 up"), "flap v0")) {
		long end = now_ms() + 2000;

		while (count_type(events, nevents, HM_NL_LINK_UP) == 0 && now_ms() < end) {
			struct pollfd p = { .fd = hm_nl_fd(nl2), .events = POLLIN };

			poll(&p, 1, 100);
			hm_nl_process(nl2, collect, NULL);
		}
		ASSERT_GE(count_type(events, nevents, HM_NL_LINK_DOWN), 1, "link-down after resync");
		ASSERT_GE(count_type(events, nevents, HM_NL_LINK_UP), 1, "link-up after resync");
	}
out:
	hm_nl_close(nl2);
	nevents = 0;
}
