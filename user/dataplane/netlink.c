// SPDX-License-Identifier: MIT
/*
 * Peer resolution from the kernel's routing and neighbour tables, with
 * libnl-route-3 (see netlink.h for the API, docs/netlink-and-loss.md for
 * the design).
 *
 * Two netlink sockets: a blocking one for requests (RTM_GETROUTE,
 * RTM_GETLINK, RTM_GETNEIGH, RTM_NEWNEIGH with NTF_USE), and a non-blocking
 * one subscribed to the link, neighbour and IPv4 route/rule groups, whose
 * messages hm_nl_process turns into events.  Keeping them apart means a
 * request never has to step over unrelated notifications.
 *
 * Events are filtered down to what the controller can act on: a link event
 * only when a device goes from usable to not (or back), a neighbour event
 * only for a next hop hm_nl_resolve looked up and only when what the fan-out
 * would use changes (resolved or not, the MAC, failed).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if_arp.h>
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>
#include <netlink/socket.h>

#include "dataplane/netlink.h"

/* Neighbour states whose link-layer address can be used: the kernel itself
 * transmits to STALE/DELAY/PROBE entries while it re-verifies them. */
#define NUD_USABLE (NUD_REACHABLE | NUD_STALE | NUD_DELAY | NUD_PROBE | NUD_PERMANENT | NUD_NOARP)

/* A device we have seen, and whether it was usable (up and running). */
struct nl_link {
	uint32_t ifindex;
	bool up;
	char name[IF_NAMESIZE];
};

/* A next hop hm_nl_resolve looked up, and what we last told about it. */
struct nl_watch {
	uint32_t ifindex;
	uint32_t addr_be;
	bool valid, failed;
	uint8_t mac[6];
};

struct hm_nl {
	struct nl_sock *req;
	struct nl_sock *ev;
	struct nl_link *links;
	size_t nlinks, links_cap;
	struct nl_watch *watch;
	size_t nwatch, watch_cap;
	/* set while hm_nl_process runs */
	hm_nl_event_fn on_event;
	void *ctx;
	int delivered;
	bool udp_trigger;       /* skip NTF_USE (hm_nl_use_udp_trigger) */
};

const char *hm_nl_event_name(enum hm_nl_event_type t)
{
	switch (t) {
	case HM_NL_NEIGH_CHANGED: return "neigh-changed";
	case HM_NL_LINK_DOWN: return "link-down";
	case HM_NL_LINK_UP: return "link-up";
	case HM_NL_ROUTE_CHANGED: return "route-changed";
	case HM_NL_RESYNC: return "resync";
	}
	return "unknown";
}

static void addr_str(uint32_t be, char *buf, size_t len)
{
	if (!inet_ntop(AF_INET, &be, buf, (socklen_t)len))
		snprintf(buf, len, "?");
}

/* ---- small tables ---------------------------------------------------------- */

static struct nl_link *link_find(struct hm_nl *nl, uint32_t ifindex, bool create)
{
	for (size_t i = 0; i < nl->nlinks; i++)
		if (nl->links[i].ifindex == ifindex)
			return &nl->links[i];
	if (!create)
		return NULL;
	if (nl->nlinks == nl->links_cap) {
		size_t cap = nl->links_cap ? nl->links_cap * 2 : 16;
		struct nl_link *n = realloc(nl->links, cap * sizeof(*n));

		if (!n)
			return NULL;
		nl->links = n;
		nl->links_cap = cap;
	}
	nl->links[nl->nlinks] = (struct nl_link){ .ifindex = ifindex };
	return &nl->links[nl->nlinks++];
}

static void link_forget(struct hm_nl *nl, uint32_t ifindex)
{
	for (size_t i = 0; i < nl->nlinks; i++)
		if (nl->links[i].ifindex == ifindex) {
			nl->links[i] = nl->links[--nl->nlinks];
			return;
		}
}

static struct nl_watch *watch_find(struct hm_nl *nl, uint32_t ifindex, uint32_t addr_be)
{
	for (size_t i = 0; i < nl->nwatch; i++)
		if (nl->watch[i].ifindex == ifindex && nl->watch[i].addr_be == addr_be)
			return &nl->watch[i];
	return NULL;
}

/* Remember what resolve found for a next hop, so that a later change of it
 * is reported.  Best effort: out of memory only loses future events. */
static void watch_set(struct hm_nl *nl, uint32_t ifindex, uint32_t addr_be, bool valid,
		      const uint8_t *mac)
{
	struct nl_watch *w = watch_find(nl, ifindex, addr_be);

	if (!w) {
		if (nl->nwatch == nl->watch_cap) {
			size_t cap = nl->watch_cap ? nl->watch_cap * 2 : 16;
			struct nl_watch *n = realloc(nl->watch, cap * sizeof(*n));

			if (!n)
				return;
			nl->watch = n;
			nl->watch_cap = cap;
		}
		w = &nl->watch[nl->nwatch++];
		*w = (struct nl_watch){ .ifindex = ifindex, .addr_be = addr_be };
	}
	w->valid = valid;
	w->failed = false;
	if (valid)
		memcpy(w->mac, mac, 6);
}

/* ---- requests -------------------------------------------------------------- */

struct req_ctx {
	int err;                /* errno from an NLMSG_ERROR, 0 if none */
	int (*parse)(struct nlmsghdr *, void *);
	void *out;
	bool got;
};

static int req_valid(struct nl_msg *msg, void *arg)
{
	struct req_ctx *rc = arg;

	if (rc->parse && rc->parse(nlmsg_hdr(msg), rc->out) == 0)
		rc->got = true;
	return NL_STOP;
}

static int req_error(struct sockaddr_nl *who, struct nlmsgerr *e, void *arg)
{
	struct req_ctx *rc = arg;

	(void)who;
	rc->err = -e->error;
	return NL_STOP;
}

static int req_ack(struct nl_msg *msg, void *arg)
{
	(void)msg;
	(void)arg;
	return NL_STOP;
}

/* Send msg (consumed) on the request socket and wait for the one answer: a
 * message handed to parse, or an error.  Returns 0 when parse accepted an
 * answer (or, with parse NULL, on an ACK), else a positive errno. */
static int request(struct hm_nl *nl, struct nl_msg *msg, int (*parse)(struct nlmsghdr *, void *),
		   void *out)
{
	struct req_ctx rc = { .parse = parse, .out = out };
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int e;

	if (!cb) {
		nlmsg_free(msg);
		return ENOMEM;
	}
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, req_valid, &rc);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, req_ack, &rc);
	nl_cb_err(cb, NL_CB_CUSTOM, req_error, &rc);
	e = nl_send_auto(nl->req, msg);
	nlmsg_free(msg);
	if (e >= 0)
		e = nl_recvmsgs(nl->req, cb);
	nl_cb_put(cb);
	if (rc.err)
		return rc.err;
	if (e < 0 && !rc.got)
		return EIO;
	if (parse && !rc.got)
		return ENOENT;
	return 0;
}

/* A request made of a fixed header (struct rtmsg, struct ndmsg) and one u32
 * attribute (the address it is about), sent as request() does. */
static int request_addr(struct hm_nl *nl, int type, int flags, const void *hdr, size_t hdr_len,
			int attr, uint32_t addr_be, int (*parse)(struct nlmsghdr *, void *), void *out)
{
	struct nl_msg *msg = nlmsg_alloc_simple(type, flags);

	if (!msg)
		return ENOMEM;
	if (nlmsg_append(msg, (void *)hdr, hdr_len, NLMSG_ALIGNTO) < 0 ||
	    nla_put_u32(msg, attr, addr_be) < 0) {
		nlmsg_free(msg);
		return ENOMEM;
	}
	return request(nl, msg, parse, out);
}

struct route_ans {
	uint8_t type;
	uint32_t oif;
	uint32_t gateway_be;
	uint32_t prefsrc_be;
	bool via_other_family;
};

static uint32_t nladdr_v4(struct nl_addr *a)
{
	uint32_t v = 0;

	if (a && nl_addr_get_family(a) == AF_INET && nl_addr_get_len(a) == 4)
		memcpy(&v, nl_addr_get_binary_addr(a), 4);
	return v;
}

static int parse_route(struct nlmsghdr *h, void *out)
{
	struct route_ans *ra = out;
	struct rtnl_route *r = NULL;
	struct rtnl_nexthop *nh;

	if (h->nlmsg_type != RTM_NEWROUTE || rtnl_route_parse(h, &r) < 0)
		return -1;
	ra->type = rtnl_route_get_type(r);
	ra->prefsrc_be = nladdr_v4(rtnl_route_get_pref_src(r));
	nh = rtnl_route_get_nnexthops(r) > 0 ? rtnl_route_nexthop_n(r, 0) : NULL;
	if (nh) {
		ra->oif = (uint32_t)rtnl_route_nh_get_ifindex(nh);
		ra->gateway_be = nladdr_v4(rtnl_route_nh_get_gateway(nh));
		ra->via_other_family = rtnl_route_nh_get_via(nh) != NULL;
	}
	rtnl_route_put(r);
	return 0;
}

/* The kernel's own output route lookup for addr (RTM_GETROUTE), as `ip route
 * get` does: honours policy rules, multipath and gateways. */
static int route_get(struct hm_nl *nl, uint32_t addr_be, struct route_ans *ra)
{
	struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_dst_len = 32 };

	return request_addr(nl, RTM_GETROUTE, NLM_F_REQUEST, &rtm, sizeof(rtm), RTA_DST, addr_be,
			    parse_route, ra);
}

struct neigh_ans {
	int state;
	bool has_mac;
	uint8_t mac[6];
};

static int parse_neigh(struct nlmsghdr *h, void *out)
{
	struct neigh_ans *na = out;
	struct rtnl_neigh *n = NULL;
	struct nl_addr *ll;

	if (h->nlmsg_type != RTM_NEWNEIGH || rtnl_neigh_parse(h, &n) < 0)
		return -1;
	na->state = rtnl_neigh_get_state(n);
	ll = rtnl_neigh_get_lladdr(n);
	if (ll && nl_addr_get_len(ll) == 6) {
		memcpy(na->mac, nl_addr_get_binary_addr(ll), 6);
		na->has_mac = true;
	}
	rtnl_neigh_put(n);
	return 0;
}

/* One neighbour entry (RTM_GETNEIGH with NDA_DST, as `ip neigh get`).
 * ENOENT when there is none. */
static int neigh_get(struct hm_nl *nl, uint32_t ifindex, uint32_t addr_be, struct neigh_ans *na)
{
	struct ndmsg ndm = { .ndm_family = AF_INET, .ndm_ifindex = (int)ifindex };

	return request_addr(nl, RTM_GETNEIGH, NLM_F_REQUEST, &ndm, sizeof(ndm), NDA_DST, addr_be,
			    parse_neigh, na);
}

/* Ask the kernel to resolve (or re-verify) a neighbour: RTM_NEWNEIGH with
 * NTF_USE does what a transmitted packet would (neigh_event_send), creating
 * the entry if needed, without sending anything ourselves. */
static int neigh_use(struct hm_nl *nl, uint32_t ifindex, uint32_t addr_be)
{
	struct ndmsg ndm = { .ndm_family = AF_INET, .ndm_ifindex = (int)ifindex,
			     .ndm_state = NUD_NONE, .ndm_flags = NTF_USE };

	return request_addr(nl, RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_CREATE | NLM_F_ACK, &ndm,
			    sizeof(ndm), NDA_DST, addr_be, NULL, NULL);
}

/* Fallback trigger: a datagram to the discard port (9) of the next hop out
 * of the egress device makes the kernel resolve it like any transmission. */
static int neigh_poke_udp(uint32_t ifindex, uint32_t addr_be)
{
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9),
				  .sin_addr.s_addr = addr_be };
	char name[IF_NAMESIZE];
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), rc = 0;

	if (fd < 0)
		return errno;
	if (if_indextoname(ifindex, name))
		(void)setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, name, (socklen_t)strlen(name));
	if (sendto(fd, "", 0, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof(to)) < 0 &&
	    errno != EAGAIN)
		rc = errno;
	close(fd);
	return rc;
}

static int neigh_trigger(struct hm_nl *nl, uint32_t ifindex, uint32_t addr_be)
{
	if (!nl->udp_trigger && neigh_use(nl, ifindex, addr_be) == 0)
		return 0;
	return neigh_poke_udp(ifindex, addr_be);
}

void hm_nl_use_udp_trigger(struct hm_nl *nl, bool on)
{
	nl->udp_trigger = on;
}

/* ---- resolve ---------------------------------------------------------------- */

/* Why RTM_GETROUTE failed, in words: the errors of the kernel's output
 * route lookup (ip_route_output_key) for each kind of missing route. */
static const char *route_errno_text(int e)
{
	switch (e) {
	case ENETUNREACH: return "network is unreachable (no matching route)";
	case EHOSTUNREACH: return "unreachable route";
	case EACCES: return "prohibited route";
	case EINVAL: return "blackhole route (or invalid address)";
	default: return strerror(e);
	}
}

static const char *rtn_name(uint8_t type)
{
	switch (type) {
	case RTN_LOCAL: return "a local address";
	case RTN_BROADCAST: return "a broadcast address";
	case RTN_MULTICAST: return "a multicast address";
	case RTN_BLACKHOLE: return "routed to a blackhole";
	case RTN_UNREACHABLE: return "unreachable";
	case RTN_PROHIBIT: return "prohibited";
	default: return "not a unicast route";
	}
}

/* The egress device's MAC, if it is an Ethernet device that is up. */
static int link_mac(struct hm_nl *nl, uint32_t ifindex, uint8_t mac[6], char *err, size_t errlen)
{
	struct rtnl_link *l = NULL;
	struct nl_addr *a;
	unsigned flags;
	int e = rtnl_link_get_kernel(nl->req, (int)ifindex, NULL, &l), rc = -1;

	if (e < 0) {
		snprintf(err, errlen, "egress device %u: %s", ifindex, nl_geterror(e));
		return -1;
	}
	a = rtnl_link_get_addr(l);
	flags = rtnl_link_get_flags(l);
	if (!(flags & IFF_UP) || !(flags & IFF_RUNNING))
		snprintf(err, errlen, "egress device %s is down", rtnl_link_get_name(l));
	else if (rtnl_link_get_arptype(l) != ARPHRD_ETHER || !a || nl_addr_get_len(a) != 6)
		snprintf(err, errlen, "egress device %s has no Ethernet address",
			 rtnl_link_get_name(l));
	else {
		memcpy(mac, nl_addr_get_binary_addr(a), 6);
		rc = 0;
	}
	rtnl_link_put(l);
	return rc;
}

int hm_nl_resolve(struct hm_nl *nl, uint32_t ipv4_be, struct hm_nl_route *out, char *err,
		  size_t errlen)
{
	struct route_ans ra = {};
	struct neigh_ans na = {};
	char a[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN];
	uint32_t nh;
	int e;

	addr_str(ipv4_be, a, sizeof(a));
	e = route_get(nl, ipv4_be, &ra);
	if (e) {
		snprintf(err, errlen, "no route to %s: %s", a, route_errno_text(e));
		return -1;
	}
	if (ra.type != RTN_UNICAST) {
		snprintf(err, errlen, "no route to %s: %s", a, rtn_name(ra.type));
		return -1;
	}
	if (!ra.oif || ra.via_other_family) {
		snprintf(err, errlen, "no route to %s: %s", a,
			 ra.oif ? "gateway is not IPv4" : "no egress device");
		return -1;
	}
	memset(out, 0, sizeof(*out));
	out->ifindex = ra.oif;
	out->gateway_be = ra.gateway_be;
	out->src_ipv4_be = ra.prefsrc_be;
	if (link_mac(nl, ra.oif, out->src_mac, err, errlen) < 0)
		return -1;
	nh = ra.gateway_be ? ra.gateway_be : ipv4_be;
	e = neigh_get(nl, ra.oif, nh, &na);
	if (e && e != ENOENT) {
		addr_str(nh, g, sizeof(g));
		snprintf(err, errlen, "neighbour %s of %s: %s", g, a, strerror(e));
		return -1;
	}
	if (!e && (na.state & NUD_USABLE) && na.has_mac) {
		memcpy(out->dst_mac, na.mac, 6);
		watch_set(nl, ra.oif, nh, true, na.mac);
		/* A STALE entry keeps its MAC until something re-verifies it,
		 * and the fan-out's own traffic never will. */
		if (na.state & NUD_STALE)
			(void)neigh_trigger(nl, ra.oif, nh);
		return 0;
	}
	watch_set(nl, ra.oif, nh, false, NULL);
	e = neigh_trigger(nl, ra.oif, nh);
	if (e) {
		addr_str(nh, g, sizeof(g));
		snprintf(err, errlen, "cannot start resolving %s (next hop of %s): %s", g, a,
			 strerror(e));
		return -1;
	}
	return 1;
}

/* ---- events ----------------------------------------------------------------- */

static void emit(struct hm_nl *nl, const struct hm_nl_event *ev)
{
	nl->delivered++;
	if (nl->on_event)
		nl->on_event(nl->ctx, ev);
}

static void on_link(struct hm_nl *nl, struct nlmsghdr *h)
{
	struct ifinfomsg *ifi;
	struct nlattr *name;
	struct nl_link *l;
	struct hm_nl_event ev = {};
	bool up, was;

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*ifi)))
		return;
	ifi = nlmsg_data(h);
	up = h->nlmsg_type == RTM_NEWLINK && (ifi->ifi_flags & IFF_UP) &&
	     (ifi->ifi_flags & IFF_RUNNING);
	l = link_find(nl, (uint32_t)ifi->ifi_index, true);
	if (!l)
		return;
	was = l->up;
	name = nlmsg_find_attr(h, sizeof(*ifi), IFLA_IFNAME);
	if (name)
		nla_strlcpy(l->name, name, sizeof(l->name));
	ev.ifindex = l->ifindex;
	snprintf(ev.ifname, sizeof(ev.ifname), "%s", l->name);
	l->up = up;
	if (h->nlmsg_type == RTM_DELLINK)
		link_forget(nl, ev.ifindex);
	if (was == up)
		return;
	ev.type = up ? HM_NL_LINK_UP : HM_NL_LINK_DOWN;
	emit(nl, &ev);
}

static void on_neigh(struct hm_nl *nl, struct nlmsghdr *h)
{
	struct rtnl_neigh *n = NULL;
	struct nl_addr *dst, *ll;
	struct nl_watch *w;
	struct hm_nl_event ev = { .type = HM_NL_NEIGH_CHANGED };
	bool valid = false, failed;
	uint8_t mac[6] = {};
	int state;

	if (rtnl_neigh_parse(h, &n) < 0)
		return;
	dst = rtnl_neigh_get_dst(n);
	if (rtnl_neigh_get_family(n) != AF_INET || !dst || nl_addr_get_len(dst) != 4)
		goto out;
	ev.ifindex = (uint32_t)rtnl_neigh_get_ifindex(n);
	memcpy(&ev.addr_be, nl_addr_get_binary_addr(dst), 4);
	w = watch_find(nl, ev.ifindex, ev.addr_be);
	if (!w)
		goto out;
	state = rtnl_neigh_get_state(n);
	ll = rtnl_neigh_get_lladdr(n);
	if (h->nlmsg_type == RTM_NEWNEIGH && (state & NUD_USABLE) && ll &&
	    nl_addr_get_len(ll) == 6) {
		valid = true;
		memcpy(mac, nl_addr_get_binary_addr(ll), 6);
	}
	failed = h->nlmsg_type == RTM_DELNEIGH || (state & NUD_FAILED);
	if (valid == w->valid && failed == w->failed && (!valid || !memcmp(mac, w->mac, 6)))
		goto out;
	w->valid = valid;
	w->failed = failed;
	memcpy(w->mac, mac, 6);
	ev.mac_valid = valid;
	ev.failed = failed;
	memcpy(ev.mac, mac, 6);
	if (!if_indextoname(ev.ifindex, ev.ifname))
		ev.ifname[0] = 0;
	emit(nl, &ev);
out:
	rtnl_neigh_put(n);
}

static void on_route(struct hm_nl *nl, struct nlmsghdr *h)
{
	struct rtmsg *rtm;
	struct hm_nl_event ev = { .type = HM_NL_ROUTE_CHANGED };

	if (h->nlmsg_len < NLMSG_LENGTH(sizeof(*rtm)))
		return;
	rtm = nlmsg_data(h);
	if (rtm->rtm_family != AF_INET || (rtm->rtm_flags & RTM_F_CLONED))
		return;
	emit(nl, &ev);
}

static int ev_valid(struct nl_msg *msg, void *arg)
{
	struct hm_nl *nl = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);

	switch (h->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		on_link(nl, h);
		break;
	case RTM_NEWNEIGH:
	case RTM_DELNEIGH:
		on_neigh(nl, h);
		break;
	case RTM_NEWROUTE:
	case RTM_DELROUTE:
	case RTM_NEWRULE:
	case RTM_DELRULE:
		on_route(nl, h);
		break;
	}
	return NL_OK;
}

/* Dump every link into the table (no events): the baseline against which
 * later link messages are judged. */
static int dump_links(struct hm_nl *nl, char *err, size_t errlen)
{
	struct nl_cache *cache = NULL;
	int e = rtnl_link_alloc_cache(nl->req, AF_UNSPEC, &cache);

	if (e < 0) {
		snprintf(err, errlen, "netlink: link dump: %s", nl_geterror(e));
		return -1;
	}
	nl->nlinks = 0;
	for (struct nl_object *o = nl_cache_get_first(cache); o; o = nl_cache_get_next(o)) {
		struct rtnl_link *rl = (struct rtnl_link *)o;
		struct nl_link *l = link_find(nl, (uint32_t)rtnl_link_get_ifindex(rl), true);
		unsigned flags = rtnl_link_get_flags(rl);

		if (!l)
			break;
		l->up = (flags & IFF_UP) && (flags & IFF_RUNNING);
		snprintf(l->name, sizeof(l->name), "%s", rtnl_link_get_name(rl));
	}
	nl_cache_free(cache);
	return 0;
}

int hm_nl_process(struct hm_nl *nl, hm_nl_event_fn on_event, void *ctx)
{
	/* A clone of the socket's callbacks: keeps its disabled seq check.
	 * nl_socket_get_cb takes a reference, which the clone does not need. */
	struct nl_cb *sock_cb = nl_socket_get_cb(nl->ev), *cb = nl_cb_clone(sock_cb);
	int n, rc = 0;

	nl_cb_put(sock_cb);
	if (!cb)
		return -1;
	nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, ev_valid, nl);
	nl->on_event = on_event;
	nl->ctx = ctx;
	nl->delivered = 0;
	for (;;) {
		n = nl_recvmsgs_report(nl->ev, cb);
		if (n > 0)
			continue;
		if (n == 0 || n == -NLE_AGAIN)
			break;
		if (n == -NLE_NOMEM) {
			/* ENOBUFS: the kernel dropped notifications.  Rebuild
			 * the link baseline and tell the caller to recheck. */
			struct hm_nl_event ev = { .type = HM_NL_RESYNC };
			char err[128];

			(void)dump_links(nl, err, sizeof(err));
			for (size_t i = 0; i < nl->nwatch; i++)
				nl->watch[i].valid = nl->watch[i].failed = false;
			emit(nl, &ev);
			continue;
		}
		rc = -1;
		break;
	}
	nl_cb_put(cb);
	nl->on_event = NULL;
	nl->ctx = NULL;
	return rc < 0 ? -1 : nl->delivered;
}

int hm_nl_fd(const struct hm_nl *nl)
{
	return nl_socket_get_fd(nl->ev);
}

/* ---- open / close ----------------------------------------------------------- */

void hm_nl_close(struct hm_nl *nl)
{
	if (!nl)
		return;
	if (nl->req)
		nl_socket_free(nl->req);
	if (nl->ev)
		nl_socket_free(nl->ev);
	free(nl->links);
	free(nl->watch);
	free(nl);
}

struct hm_nl *hm_nl_open(char *err, size_t errlen)
{
	struct hm_nl *nl = calloc(1, sizeof(*nl));
	int e;

	if (!nl) {
		snprintf(err, errlen, "netlink: out of memory");
		return NULL;
	}
	nl->req = nl_socket_alloc();
	nl->ev = nl_socket_alloc();
	if (!nl->req || !nl->ev) {
		snprintf(err, errlen, "netlink: out of memory");
		goto fail;
	}
	/* Requests: each answer is awaited explicitly, no automatic ACKs. */
	nl_socket_disable_auto_ack(nl->req);
	if ((e = nl_connect(nl->req, NETLINK_ROUTE)) < 0) {
		snprintf(err, errlen, "netlink: connect: %s", nl_geterror(e));
		goto fail;
	}
	/* Events: notifications carry no sequence numbers of ours. */
	nl_socket_disable_seq_check(nl->ev);
	if ((e = nl_connect(nl->ev, NETLINK_ROUTE)) < 0 ||
	    (e = nl_socket_set_nonblocking(nl->ev)) < 0 ||
	    (e = nl_socket_add_memberships(nl->ev, RTNLGRP_LINK, RTNLGRP_NEIGH,
					   RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE, 0)) < 0) {
		snprintf(err, errlen, "netlink: event socket: %s", nl_geterror(e));
		goto fail;
	}
	(void)fcntl(nl_socket_get_fd(nl->ev), F_SETFD, FD_CLOEXEC);
	(void)fcntl(nl_socket_get_fd(nl->req), F_SETFD, FD_CLOEXEC);
	/* A larger receive buffer makes overruns (HM_NL_RESYNC) rarer when
	 * many neighbours change at once. */
	(void)nl_socket_set_buffer_size(nl->ev, 1 << 20, 0);
	/* Subscribed first, then the baseline: a change in between shows up
	 * as an event against the fresh baseline, never lost. */
	if (dump_links(nl, err, errlen) < 0)
		goto fail;
	return nl;
fail:
	hm_nl_close(nl);
	return NULL;
}
