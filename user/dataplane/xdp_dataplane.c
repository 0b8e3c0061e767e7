// SPDX-License-Identifier: MIT
/* The XDP dataplane's controller side (see xdp_dataplane.h). */
#include "dataplane/xdp_dataplane.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <ifaddrs.h>
#include <linux/if_link.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <unistd.h>
#include <xdp/libxdp.h>

#include "hm_tc.skel.h"
#include "hm_xdp.skel.h"
#include "common/log.h"
#include "dataplane/netlink.h"
#include "dataplane/xdp_policy.h"

/* The maps we pin, by name, with where their fd lives. */
struct pinned_map {
	const char *name;
	size_t fd_off; /* offsetof(struct hm_xdp_dp, X_fd) */
};

#define MAP(name, field) { name, offsetof(struct hm_xdp_dp, field) }
static const struct pinned_map xdp_maps[] = {
	MAP("hm_config", config_fd),       MAP("hm_members", members_fd),
	MAP("hm_clients", clients_fd),     MAP("hm_blocklist", blocklist_fd),
	MAP("node_stats", stats_fd),       MAP("hm_votes", votes_fd),
	MAP("hm_events", events_fd),       MAP("hm_progress", progress_fd),
};
static const struct pinned_map tc_maps[] = {
	MAP("hm_tc_config", tc_config_fd), MAP("hm_peers", tc_peers_fd),
	MAP("hm_tc_stats", tc_stats_fd),
};
#undef MAP
#define N_ELEMS(a) (sizeof(a) / sizeof((a)[0]))

static int *fd_field(struct hm_xdp_dp *dp, const struct pinned_map *m)
{
	return (int *)((char *)dp + m->fd_off);
}

const char *hm_xdp_attach_name(enum hm_xdp_attach how)
{
	switch (how) {
	case HM_XDP_DISPATCHER: return "libxdp dispatcher";
	case HM_XDP_SINGLE: return "single program (kernel refused the libxdp dispatcher)";
	case HM_XDP_ADOPTED: return "adopted (attached by hand)";
	default: return "not attached";
	}
}

/* What the kernel refused during the last load: the program (or map) and
 * the verifier's (or libbpf's) reason, from libbpf's messages.  The daemon
 * loads one object at a time, from one thread. */
static struct {
	const struct bpf_object *obj; /* only its programs and maps count */
	char what[96];   /* "program hm_vote_policy", "map hm_votes" */
	char why[256];   /* the verifier log's last line, or libbpf's error */
} refused;

static void refused_reset(const struct bpf_object *obj)
{
	refused.obj = obj;
	refused.what[0] = refused.why[0] = 0;
}

/* The verifier's reason: the log's last line that is not a statistic. */
static void verifier_reason(const char *log, char *out, size_t outlen)
{
	const char *line = log, *end;

	while (*line) {
		size_t len;

		end = strchr(line, '\n');
		len = end ? (size_t)(end - line) : strlen(line);
		if (len && strncmp(line, "processed ", 10) != 0 &&
		    strncmp(line, "verification time", 17) != 0 &&
		    strncmp(line, "stack depth", 11) != 0 &&
		    strncmp(line, "-- END PROG LOAD LOG --", 23) != 0)
			snprintf(out, outlen, "%.*s", (int)len, line);
		if (!end)
			break;
		line = end + 1;
	}
}

static void note_refusal(const char *msg)
{
	const char *name, *close_q, *log;
	char prog[64];

	if (strncmp(msg, "prog '", 6) == 0 || strncmp(msg, "map '", 5) == 0) {
		bool is_prog = msg[0] == 'p';

		name = msg + (is_prog ? 6 : 5);
		close_q = strchr(name, '\'');
		if (!close_q)
			return;
		snprintf(prog, sizeof(prog), "%.*s", (int)(close_q - name), name);
		/* not libxdp's dispatcher, whose refusal only means no dispatcher */
		if (!refused.obj ||
		    (is_prog ? !bpf_object__find_program_by_name(refused.obj, prog)
			     : !bpf_object__find_map_by_name(refused.obj, prog)))
			return;
		if (is_prog && (log = strstr(close_q, "-- BEGIN PROG LOAD LOG --\n"))) {
			snprintf(refused.what, sizeof(refused.what), "program %s", prog);
			verifier_reason(log + 26, refused.why, sizeof(refused.why));
		} else if (is_prog && strstr(close_q, "BPF program load failed") &&
			   strcmp(refused.what + 8, prog) != 0) {
			/* no log (yet): libbpf's errno text until one comes */
			snprintf(refused.what, sizeof(refused.what), "program %s", prog);
			snprintf(refused.why, sizeof(refused.why), "%s",
				 strstr(close_q, "failed: ") ? strstr(close_q, "failed: ") + 8 : "");
		} else if (!is_prog && strstr(close_q, "failed to create")) {
			snprintf(refused.what, sizeof(refused.what), "map %s", prog);
			snprintf(refused.why, sizeof(refused.why), "%s", strstr(close_q, "failed"));
		}
		for (char *c = refused.why; *c; c++)
			if (*c == '\n')
				*c = *(c + 1) ? ' ' : 0;
	}
}

/* libbpf's and libxdp's messages go to our log at debug level: the errors
 * that matter come back as return codes and are reported with context (a
 * program or map the kernel refused is kept for that, see refused). */
static int quiet_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char *msg = NULL;
	size_t len;

	(void)level;
	if (vasprintf(&msg, fmt, ap) < 0)
		return 0;
	note_refusal(msg);
	len = strlen(msg);
	if (len && msg[len - 1] == '\n')
		msg[len - 1] = 0;
	hm_debug("libbpf: %.2000s", msg);
	free(msg);
	return 0;
}

/* "the kernel (6.1.0-57-amd64) refused program hm_vote_policy: <why>; ...",
 * or "" when the last load saw no refusal. */
static const char *refusal(char *buf, size_t len)
{
	struct utsname u;

	if (!refused.what[0])
		return "";
	if (uname(&u) < 0)
		snprintf(u.release, sizeof(u.release), "?");
	snprintf(buf, len, ": kernel %s refused BPF %s of hm_xdp: %s; the XDP dataplane does "
		 "not load on this kernel, use dataplane: socket", u.release, refused.what,
		 refused.why[0] ? refused.why : "(no reason given)");
	return buf;
}

static int quiet_xdp_print(enum libxdp_print_level level, const char *fmt, va_list ap)
{
	return quiet_print((enum libbpf_print_level)level, fmt, ap);
}

/* ---- finding a program attached by hand ------------------------------- */

static bool prog_named(int prog_fd, const char *name)
{
	struct bpf_prog_info info = { 0 };
	__u32 len = sizeof(info);

	return bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0 && strcmp(info.name, name) == 0;
}

/* The fd of an XDP program called hm_xdp on ifindex (alone or in a libxdp
 * dispatcher), or -1. */
static int attached_hm_xdp(int ifindex)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	struct xdp_program *p = NULL;
	int fd = -1;

	if (libxdp_get_error(mp))
		return -1;
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		if (p && prog_named(xdp_program__fd(p), "hm_xdp"))
			fd = dup(xdp_program__fd(p));
	} else {
		while ((p = xdp_multiprog__next_prog(p, mp)))
			if (prog_named(xdp_program__fd(p), "hm_xdp")) {
				fd = dup(xdp_program__fd(p));
				break;
			}
	}
	xdp_multiprog__close(mp);
	return fd;
}

/* Kernel map names are cut at 15 characters; internal maps (.bss, .data)
 * carry a prefix made from the object's name, which differs between our
 * skeleton and a loader such as iproute2: compare them by their suffix. */
static bool map_name_matches(const char *kernel, const char *ours)
{
	const char *dot = strrchr(ours, '.');

	if (dot) {
		size_t k = strlen(kernel), o = strlen(dot);

		return k >= o && strcmp(kernel + k - o, dot) == 0;
	}
	return strncmp(kernel, ours, BPF_OBJ_NAME_LEN - 1) == 0;
}

/* The fd of the map called `name` that program prog_fd uses, or -1. */
static int prog_map_fd(int prog_fd, const char *name)
{
	__u32 ids[64], len;
	struct bpf_prog_info info = { .nr_map_ids = 64, .map_ids = (__u64)(unsigned long)ids };

	len = sizeof(info);
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) < 0)
		return -1;
	for (__u32 i = 0; i < info.nr_map_ids && i < 64; i++) {
		struct bpf_map_info mi = { 0 };
		int fd = bpf_map_get_fd_by_id(ids[i]);

		len = sizeof(mi);
		if (fd >= 0 && bpf_obj_get_info_by_fd(fd, &mi, &len) == 0 &&
		    map_name_matches(mi.name, name))
			return fd;
		if (fd >= 0)
			close(fd);
	}
	return -1;
}

/* ---- XDP: load or adopt ------------------------------------------------ */

/* Use the maps of the program attached by hand; load only hm_vote_policy
 * of our own object, on those maps. */
static int adopt_xdp(struct hm_xdp_dp *dp, int prog_fd, char *err, size_t errlen)
{
	struct bpf_map *m;
	int r;

	dp->skel = hm_xdp_bpf__open();
	if (!dp->skel)
		return hm_set_err(err, errlen, "cannot open the hm_xdp object: %s", strerror(errno));
	bpf_object__for_each_map(m, dp->skel->obj) {
		int fd = prog_map_fd(prog_fd, bpf_map__name(m));

		if (fd < 0)
			return hm_set_err(err, errlen, "the hm_xdp attached to %s has no map %s: "
				    "not this version's program?", dp->ifname, bpf_map__name(m));
		r = bpf_map__reuse_fd(m, fd);
		close(fd);
		if (r < 0)
			return hm_set_err(err, errlen, "map %s of the attached hm_xdp is not compatible "
				    "with this build: %s", bpf_map__name(m), strerror(-r));
	}
	bpf_program__set_autoload(dp->skel->progs.hm_xdp, false);
	refused_reset(dp->skel->obj);
	r = hm_xdp_bpf__load(dp->skel);
	if (r < 0) {
		char why[1024];

		return hm_set_err(err, errlen, "cannot load hm_vote_policy: %s%s", strerror(-r),
			    refusal(why, sizeof(why)));
	}
	dp->how = HM_XDP_ADOPTED;
	dp->xdp_mode = "by hand";
	return 0;
}

static int load_xdp(struct hm_xdp_dp *dp, uint32_t window, char *err, size_t errlen)
{
	DECLARE_LIBXDP_OPTS(xdp_program_opts, xo, .prog_name = "hm_xdp");
	struct xdp_multiprog *mp;
	char why[256], kernel_why[1024];
	int r;

	dp->skel = hm_xdp_bpf__open();
	if (!dp->skel)
		return hm_set_err(err, errlen, "cannot open the hm_xdp object: %s", strerror(errno));
	/* As many vote slots as the window needs (the object's default is the
	 * largest window, HM_XDP_VOTE_WINDOW_MAX). */
	bpf_map__set_max_entries(dp->skel->maps.hm_votes, window * HM_PHASE_MAX);
	/* by name: hm_vote_policy is in SEC("xdp") too */
	xo.obj = dp->skel->obj;
	dp->xprog = xdp_program__create(&xo);
	if (libxdp_get_error(dp->xprog)) {
		dp->xprog = NULL;
		return hm_set_err(err, errlen, "libxdp cannot use the hm_xdp object");
	}
	dp->xdp_mode = "native";
	refused_reset(dp->skel->obj);
	r = xdp_program__attach(dp->xprog, dp->ifindex, XDP_MODE_NATIVE, 0);
	if (r == -EOPNOTSUPP) {
		/* A NIC driver without XDP support: generic (skb) mode works
		 * everywhere, slower. */
		hm_warn("%s: no native XDP support, attaching in skb (generic) mode", dp->ifname);
		dp->xdp_mode = "skb";
		r = xdp_program__attach(dp->xprog, dp->ifindex, XDP_MODE_SKB, 0);
	}
	if (r < 0) {
		libxdp_strerror(r, why, sizeof(why));
		xdp_program__close(dp->xprog);
		dp->xprog = NULL;
		/* A program the verifier refused is the reason, whatever
		 * error code libxdp's attach came back with. */
		if (refused.what[0])
			return hm_set_err(err, errlen, "cannot load hm_xdp for %s%s", dp->ifname,
				    refusal(kernel_why, sizeof(kernel_why)));
		return hm_set_err(err, errlen, "cannot attach XDP to %s: %s%s", dp->ifname, why,
			    r == -EEXIST || r == -EBUSY
				    ? " (another XDP program is attached and the kernel refuses "
				      "libxdp's dispatcher)"
				    : "");
	}
	mp = xdp_multiprog__get_from_ifindex(dp->ifindex);
	dp->how = !libxdp_get_error(mp) && !xdp_multiprog__is_legacy(mp) ? HM_XDP_DISPATCHER
									    : HM_XDP_SINGLE;
	if (!libxdp_get_error(mp))
		xdp_multiprog__close(mp);
	return 0;
}

/* ---- TC: attach or adopt ----------------------------------------------- */

#define TC_HANDLE 1
#define TC_PRIORITY 1

static int attach_tc(struct hm_xdp_dp *dp, char *err, size_t errlen)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = dp->ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = TC_HANDLE, .priority = TC_PRIORITY);
	int r = bpf_tc_hook_create(&hook);

	if (r < 0 && r != -EEXIST)
		return hm_set_err(err, errlen, "cannot add a clsact qdisc to %s: %s", dp->ifname,
			    strerror(-r));
	dp->tc_hook_created = r == 0;
	if (bpf_tc_query(&hook, &q) == 0) {
		int fd = bpf_prog_get_fd_by_id(q.prog_id);

		if (fd < 0 || !prog_named(fd, "hm_tc_egress")) {
			if (fd >= 0)
				close(fd);
			return hm_set_err(err, errlen, "%s egress has another filter at handle %d "
				    "priority %d", dp->ifname, TC_HANDLE, TC_PRIORITY);
		}
		for (size_t i = 0; i < N_ELEMS(tc_maps); i++) {
			*fd_field(dp, &tc_maps[i]) = prog_map_fd(fd, tc_maps[i].name);
			if (*fd_field(dp, &tc_maps[i]) < 0) {
				close(fd);
				return hm_set_err(err, errlen, "the hm_tc on %s has no map %s", dp->ifname,
					    tc_maps[i].name);
			}
		}
		close(fd);
		dp->tc_adopted = true;
		return 0;
	}
	dp->tc = hm_tc_bpf__open_and_load();
	if (!dp->tc)
		return hm_set_err(err, errlen, "cannot load hm_tc: %s", strerror(errno));
	q.prog_fd = bpf_program__fd(dp->tc->progs.hm_tc_egress);
	q.prog_id = 0;
	q.flags = 0;
	r = bpf_tc_attach(&hook, &q);
	if (r < 0)
		return hm_set_err(err, errlen, "cannot attach hm_tc to %s egress: %s", dp->ifname,
			    strerror(-r));
	dp->tc_config_fd = bpf_map__fd(dp->tc->maps.hm_tc_config);
	dp->tc_peers_fd = bpf_map__fd(dp->tc->maps.hm_peers);
	dp->tc_stats_fd = bpf_map__fd(dp->tc->maps.hm_tc_stats);
	/* ours: dup so that close() can treat every fd alike */
	for (size_t i = 0; i < N_ELEMS(tc_maps); i++)
		*fd_field(dp, &tc_maps[i]) = dup(*fd_field(dp, &tc_maps[i]));
	return 0;
}

static void detach_tc(struct hm_xdp_dp *dp)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = dp->ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = TC_HANDLE, .priority = TC_PRIORITY);

	if (dp->tc && !dp->tc_adopted)
		bpf_tc_detach(&hook, &q);
	if (dp->tc_hook_created) {
		/* both attach points: that removes the clsact qdisc itself */
		hook.attach_point = BPF_TC_INGRESS | BPF_TC_EGRESS;
		bpf_tc_hook_destroy(&hook);
	}
	hm_tc_bpf__destroy(dp->tc);
	dp->tc = NULL;
}

/* ---- pins -------------------------------------------------------------- */

static int pin_maps(struct hm_xdp_dp *dp, char *err, size_t errlen)
{
	const struct pinned_map *sets[] = { xdp_maps, tc_maps };
	const size_t counts[] = { N_ELEMS(xdp_maps), N_ELEMS(tc_maps) };
	char path[192];

	if (mkdir(HM_PIN_ROOT, 0700) < 0 && errno != EEXIST)
		return hm_set_err(err, errlen, "cannot create %s: %s (is a bpffs mounted at "
			    "/sys/fs/bpf?)", HM_PIN_ROOT, strerror(errno));
	snprintf(dp->pin_dir, sizeof(dp->pin_dir), HM_PIN_ROOT "/%s", dp->ifname);
	if (mkdir(dp->pin_dir, 0700) < 0 && errno != EEXIST)
		return hm_set_err(err, errlen, "cannot create %s: %s", dp->pin_dir, strerror(errno));
	for (size_t s = 0; s < 2; s++)
		for (size_t i = 0; i < counts[s]; i++) {
			snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, sets[s][i].name);
			unlink(path); /* a pin left by a daemon that was killed */
			if (bpf_obj_pin(*fd_field(dp, &sets[s][i]), path) < 0)
				return hm_set_err(err, errlen, "cannot pin %s: %s", path, strerror(errno));
		}
	return 0;
}

static void unpin_maps(struct hm_xdp_dp *dp)
{
	const struct pinned_map *sets[] = { xdp_maps, tc_maps };
	const size_t counts[] = { N_ELEMS(xdp_maps), N_ELEMS(tc_maps) };
	char path[192];

	if (!dp->pin_dir[0])
		return;
	for (size_t s = 0; s < 2; s++)
		for (size_t i = 0; i < counts[s]; i++) {
			snprintf(path, sizeof(path), "%s/%s", dp->pin_dir, sets[s][i].name);
			unlink(path);
		}
	rmdir(dp->pin_dir);
	rmdir(HM_PIN_ROOT); /* fails while other interfaces still pin there */
}

/* ---- policy maps ------------------------------------------------------- */

static int fill_members(struct hm_xdp_dp *dp, const struct hm_config *cfg, uint32_t self,
			const struct hm_xdp_keys *keys)
{
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++) {
		struct hm_xdp_member m = { 0 };
		const struct hm_member *mb = &cfg->members[i];

		if (i < cfg->n_members && i != self) {
			m.valid = 1;
			if (mb->addr.ss_family == AF_INET) {
				const struct sockaddr_in *a = (const void *)&mb->addr;

				m.family = HM_AF_INET;
				memcpy(m.addr, &a->sin_addr, 4);
				m.port = a->sin_port;
			} else {
				const struct sockaddr_in6 *a = (const void *)&mb->addr;

				m.family = HM_AF_INET6;
				memcpy(m.addr, &a->sin6_addr, 16);
				m.port = a->sin6_port;
			}
			memcpy(m.rx_key, keys->rx[i], 16);
		}
		if (bpf_map_update_elem(dp->members_fd, &i, &m, BPF_ANY) < 0)
			return -1;
	}
	return 0;
}

static int fill_clients(struct hm_xdp_dp *dp, const struct hm_xdp_keys *keys)
{
	if (keys->n_clients > HM_XDP_MAX_CLIENTS)
		return -1;
	for (uint32_t i = 0; i < keys->n_clients; i++) {
		struct hm_xdp_client c;

		memcpy(c.rx_key, keys->client_rx[i], 16);
		if (bpf_map_update_elem(dp->clients_fd, &keys->client_ids[i], &c, BPF_ANY) < 0)
			return -1;
	}
	return 0;
}

uint32_t hm_xdp_dp_fanout_addr(const struct hm_xdp_dp *dp)
{
	struct ifaddrs *ifs, *i;
	uint32_t addr = 0;

	if (getifaddrs(&ifs) < 0)
		return 0;
	for (i = ifs; i; i = i->ifa_next)
		if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET &&
		    strcmp(i->ifa_name, dp->ifname) == 0 && (i->ifa_flags & IFF_BROADCAST) &&
		    i->ifa_broadaddr) {
			addr = ((struct sockaddr_in *)i->ifa_broadaddr)->sin_addr.s_addr;
			break;
		}
	freeifaddrs(ifs);
	return addr;
}

size_t hm_xdp_dp_egress(const struct hm_xdp_dp *dp, uint16_t port, struct sockaddr_in *fanout)
{
	struct ifreq ifr = { 0 };
	size_t max_len = 0;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	memset(fanout, 0, sizeof(*fanout));
	fanout->sin_addr.s_addr = hm_xdp_dp_fanout_addr(dp);
	if (fanout->sin_addr.s_addr) {
		fanout->sin_family = AF_INET;
		fanout->sin_port = htons(port);
	}
	/* TC rewrites only unfragmented datagrams: up to MTU - IPv4 - UDP.
	 * (A socket of its own: this runs before the replica's is open.) */
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", dp->ifname);
	if (fd >= 0 && ioctl(fd, SIOCGIFMTU, &ifr) == 0 && ifr.ifr_mtu > 28)
		max_len = (size_t)ifr.ifr_mtu - 28;
	else
		hm_warn("xdp: cannot read the MTU of %s: %s; no fan-out", dp->ifname,
			strerror(errno));
	if (fd >= 0)
		close(fd);
	return max_len;
}

static int fill_policy(struct hm_xdp_dp *dp, const struct hm_config *cfg, uint32_t self,
		       const struct hm_xdp_keys *keys, char *err, size_t errlen)
{
	struct hm_tc_config tcc = { 0 };
	uint32_t zero = 0;

	dp->cfg = (struct hm_xdp_config){
		.port = cfg->members[self].port,
		.n = cfg->n_members,
		.f = cfg->max_faulty_nodes,
		.self_id = self,
		.view = 0,
		.low = 0,
		.high = cfg->watermark_window,
		.max_message_size = cfg->max_message_size,
		.rate_limit_pps = cfg->rate_limit_pps,
		.window = cfg->watermark_window,
	};
	if (fill_members(dp, cfg, self, keys) < 0 || fill_clients(dp, keys) < 0)
		return hm_set_err(err, errlen, "cannot fill hm_members/hm_clients: %s", strerror(errno));
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++) {
		struct hm_tc_peer none = { 0 };

		bpf_map_update_elem(dp->tc_peers_fd, &i, &none, BPF_ANY);
	}
	tcc.port = cfg->members[self].port;
	tcc.fanout_addr = hm_xdp_dp_fanout_addr(dp);
	if (bpf_map_update_elem(dp->tc_config_fd, &zero, &tcc, BPF_ANY) < 0 ||
	    bpf_map_update_elem(dp->config_fd, &zero, &dp->cfg, BPF_ANY) < 0)
		return hm_set_err(err, errlen, "cannot write hm_config: %s", strerror(errno));
	/* Slots a previous run left (an adopted program keeps its maps). */
	return hm_xdp_dp_collect(dp, UINT64_MAX) < 0
		       ? hm_set_err(err, errlen, "hm_vote_policy does not run: %s", strerror(errno))
		       : 0;
}

/* ---- open / close ------------------------------------------------------ */

static int event_cb(void *ctx, void *data, size_t size)
{
	struct hm_xdp_dp *dp = ctx;
	struct hm_vote_event ev;

	if (size < sizeof(ev))
		return 0;
	memcpy(&ev, data, sizeof(ev));
	if (dp->on_event)
		dp->on_event(dp->on_event_ctx, &ev);
	return 0;
}

static void take_skel_fds(struct hm_xdp_dp *dp)
{
	struct hm_xdp_bpf *s = dp->skel;

	dp->config_fd = dup(bpf_map__fd(s->maps.hm_config));
	dp->members_fd = dup(bpf_map__fd(s->maps.hm_members));
	dp->clients_fd = dup(bpf_map__fd(s->maps.hm_clients));
	dp->blocklist_fd = dup(bpf_map__fd(s->maps.hm_blocklist));
	dp->stats_fd = dup(bpf_map__fd(s->maps.node_stats));
	dp->votes_fd = dup(bpf_map__fd(s->maps.hm_votes));
	dp->events_fd = dup(bpf_map__fd(s->maps.hm_events));
	dp->progress_fd = dup(bpf_map__fd(s->maps.hm_progress));
	dp->policy_fd = bpf_program__fd(s->progs.hm_vote_policy);
}

static void reset_fds(struct hm_xdp_dp *dp)
{
	for (size_t i = 0; i < N_ELEMS(xdp_maps); i++)
		*fd_field(dp, &xdp_maps[i]) = -1;
	for (size_t i = 0; i < N_ELEMS(tc_maps); i++)
		*fd_field(dp, &tc_maps[i]) = -1;
	dp->policy_fd = -1;
}

int hm_xdp_dp_open(struct hm_xdp_dp *dp, const struct hm_config *cfg, uint32_t self,
		   const struct hm_xdp_keys *keys, char *err, size_t errlen)
{
	int hand;

	memset(dp, 0, sizeof(*dp));
	reset_fds(dp);
	libbpf_set_print(quiet_print);
	libxdp_set_print(quiet_xdp_print);
	if (!cfg->interface[0])
		return hm_set_err(err, errlen, "dataplane xdp needs byzantine_config.network.interface");
	if (cfg->watermark_window == 0 || cfg->watermark_window > HM_XDP_VOTE_WINDOW_MAX)
		return hm_set_err(err, errlen, "dataplane xdp counts votes for a watermark_window of at "
			    "most %u (got %u)", HM_XDP_VOTE_WINDOW_MAX, cfg->watermark_window);
	snprintf(dp->ifname, sizeof(dp->ifname), "%s", cfg->interface);
	dp->ifindex = (int)if_nametoindex(dp->ifname);
	if (!dp->ifindex)
		return hm_set_err(err, errlen, "no interface %s: %s", dp->ifname, strerror(errno));

	hand = attached_hm_xdp(dp->ifindex);
	if ((hand >= 0 ? adopt_xdp(dp, hand, err, errlen)
			  : load_xdp(dp, cfg->watermark_window, err, errlen)) < 0)
		goto fail;
	take_skel_fds(dp);
	if (attach_tc(dp, err, errlen) < 0 || pin_maps(dp, err, errlen) < 0 ||
	    fill_policy(dp, cfg, self, keys, err, errlen) < 0)
		goto fail;
	dp->config = cfg;
	memcpy(dp->tx_keys, keys->tx, sizeof(dp->tx_keys));
	dp->nl = hm_nl_open(err, errlen);
	if (!dp->nl)
		goto fail;
	dp->events = ring_buffer__new(dp->events_fd, event_cb, dp, NULL);
	if (!dp->events) {
		hm_set_err(err, errlen, "cannot open the hm_events ring buffer: %s", strerror(errno));
		goto fail;
	}
	if (hand >= 0)
		close(hand);
	return 0;
fail:
	if (hand >= 0)
		close(hand);
	hm_xdp_dp_close(dp);
	return -1;
}

/* Detach our XDP program, and only ours.  A single program goes with
 * bpf_xdp_detach naming it, which needs CAP_NET_ADMIN alone: libxdp's
 * detach looks the attached program up by id (BPF_PROG_GET_FD_BY_ID),
 * which needs CAP_SYS_ADMIN, and without it left the program attached
 * (the systemd unit bounds the daemon's capabilities).  The dispatcher
 * goes through libxdp, which owns it. */
static void detach_xdp(struct hm_xdp_dp *dp)
{
	bool skb = strcmp(dp->xdp_mode, "skb") == 0;
	int r;

	if (dp->how == HM_XDP_SINGLE) {
		LIBBPF_OPTS(bpf_xdp_attach_opts, opts, .old_prog_fd = xdp_program__fd(dp->xprog));

		r = bpf_xdp_detach(dp->ifindex, skb ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE, &opts);
	} else {
		r = xdp_program__detach(dp->xprog, dp->ifindex, skb ? XDP_MODE_SKB : XDP_MODE_NATIVE,
					0);
	}
	if (r < 0)
		hm_warn("cannot detach hm_xdp from %s: %s (`ip link set dev %s xdp off` removes it)",
			dp->ifname, strerror(-r), dp->ifname);
}

void hm_xdp_dp_close(struct hm_xdp_dp *dp)
{
	ring_buffer__free(dp->events);
	dp->events = NULL;
	hm_nl_close(dp->nl);
	dp->nl = NULL;
	unpin_maps(dp);
	detach_tc(dp);
	if (dp->xprog) {
		if (dp->how != HM_XDP_NOT_ATTACHED)
			detach_xdp(dp);
		xdp_program__close(dp->xprog);
		dp->xprog = NULL;
	}
	for (size_t i = 0; i < N_ELEMS(xdp_maps); i++)
		if (*fd_field(dp, &xdp_maps[i]) >= 0)
			close(*fd_field(dp, &xdp_maps[i]));
	for (size_t i = 0; i < N_ELEMS(tc_maps); i++)
		if (*fd_field(dp, &tc_maps[i]) >= 0)
			close(*fd_field(dp, &tc_maps[i]));
	hm_xdp_bpf__destroy(dp->skel);
	dp->skel = NULL;
	reset_fds(dp);
	dp->how = HM_XDP_NOT_ATTACHED;
}

/* ---- after a crash ------------------------------------------------------ */

/* One of ours: the replica's program, or the DNS responder attached alone
 * (socket dataplane with dns.xdp). */
static bool prog_is_ours(int fd)
{
	return prog_named(fd, "hm_xdp") || prog_named(fd, "hm_dns_xdp");
}

/* hm_xdp (or hm_dns_xdp) wherever it runs on ifindex (alone or in libxdp's
 * dispatcher), detached; true if it was there. */
static bool cleanup_xdp(int ifindex)
{
	struct xdp_multiprog *mp = xdp_multiprog__get_from_ifindex(ifindex);
	struct xdp_program *p = NULL;
	bool found = false;

	if (libxdp_get_error(mp))
		return false;
	if (xdp_multiprog__is_legacy(mp)) {
		p = xdp_multiprog__main_prog(mp);
		found = p && prog_is_ours(xdp_program__fd(p)) && xdp_multiprog__detach(mp) == 0;
	} else {
		while ((p = xdp_multiprog__next_prog(p, mp)))
			if (prog_is_ours(xdp_program__fd(p))) {
				found = xdp_program__detach(p, ifindex, xdp_multiprog__attach_mode(mp),
							    0) == 0;
				break;
			}
	}
	xdp_multiprog__close(mp);
	return found;
}

/* hm_tc_egress at our handle and priority, detached (the clsact qdisc
 * stays: other filters may hang on it); true if it was there. */
static bool cleanup_tc(int ifindex)
{
	LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_EGRESS);
	LIBBPF_OPTS(bpf_tc_opts, q, .handle = TC_HANDLE, .priority = TC_PRIORITY);
	bool ours;
	int fd;

	if (bpf_tc_query(&hook, &q) < 0)
		return false;
	fd = bpf_prog_get_fd_by_id(q.prog_id);
	ours = fd >= 0 && prog_named(fd, "hm_tc_egress");
	if (fd >= 0)
		close(fd);
	q.prog_id = 0;
	q.prog_fd = 0;
	q.flags = 0;
	return ours && bpf_tc_detach(&hook, &q) == 0;
}

/* Every pin under HM_PIN_ROOT/ifname, and the directories; how many. */
static int cleanup_pins(const char *ifname)
{
	char dir[128], path[400];
	struct dirent *e;
	DIR *d;
	int n = 0;

	snprintf(dir, sizeof(dir), HM_PIN_ROOT "/%s", ifname);
	d = opendir(dir);
	if (!d)
		return 0;
	while ((e = readdir(d)))
		if (e->d_name[0] != '.') {
			snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
			n += unlink(path) == 0;
		}
	closedir(d);
	rmdir(dir);
	rmdir(HM_PIN_ROOT);
	return n;
}

int hm_xdp_dp_cleanup(const char *ifname, char *report, size_t cap)
{
	int ifindex = (int)if_nametoindex(ifname);
	bool xdp, tc;
	int pins;

	if (!ifindex)
		return hm_set_err(report, cap, "no interface %s", ifname);
	xdp = cleanup_xdp(ifindex);
	tc = cleanup_tc(ifindex);
	pins = cleanup_pins(ifname);
	if (!xdp && !tc && !pins)
		snprintf(report, cap, "%s: nothing left behind", ifname);
	else
		snprintf(report, cap, "%s: removed %s%s%d pins", ifname,
			 xdp ? "our XDP program, " : "",
			 tc ? "the TC filter hm_tc_egress, " : "", pins);
	return 0;
}

/* ---- the protocol's side ----------------------------------------------- */

int hm_xdp_dp_set_window(struct hm_xdp_dp *dp, uint64_t view, uint64_t low, uint64_t high)
{
	uint32_t zero = 0;

	/* The program reads these fields one by one: for a moment it may see
	 * the new view with the old watermarks.  That only drops or passes a
	 * message at the window's edge, which the core judges again. */
	dp->cfg.view = view;
	dp->cfg.low = low;
	dp->cfg.high = high;
	return bpf_map_update_elem(dp->config_fd, &zero, &dp->cfg, BPF_ANY);
}

/* One BPF_PROG_TEST_RUN: the record is the program's packet. */
static int run_policy(struct hm_xdp_dp *dp, struct hm_vote_policy_args *a)
{
	__u32 retval = 0;

	errno = 0;
	if (hm_vote_policy_run(dp->policy_fd, a, &retval) < 0 || retval != 0) {
		if (dp->policy_errors++ % 1000 == 0)
			hm_warn("hm_vote_policy failed: %s (retval %d)",
				errno ? strerror(errno) : "refused", (int)retval);
		return -1;
	}
	return 0;
}

int hm_xdp_dp_vote_policy(struct hm_xdp_dp *dp, const struct pbft_vote_policy *v)
{
	/* one run (one syscall) for an expectation and our own vote */
	struct hm_vote_policy_args a = {
		.op = v->own_vote ? HM_POLICY_EXPECT_OWN_VOTE : HM_POLICY_EXPECT,
		.phase = v->phase, .view = v->view, .seq = v->seq, .fast = v->fast,
	};

	memcpy(a.digest, v->digest, HM_DIGEST_LEN);
	if (v->own_vote)
		memcpy(a.sig, v->sig, HM_SIG_LEN);
	return run_policy(dp, &a);
}

int hm_xdp_dp_collect(struct hm_xdp_dp *dp, uint64_t seq)
{
	struct hm_vote_policy_args a = { .op = HM_POLICY_COLLECT, .seq = seq };

	return run_policy(dp, &a);
}

int hm_xdp_dp_vote_sigs(struct hm_xdp_dp *dp, enum hm_vote_phase phase, uint64_t view,
			uint64_t seq, hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN])
{
	struct hm_xdp_vote_slot vs;
	uint32_t key = (uint32_t)(seq % dp->cfg.window) * HM_PHASE_MAX + phase;

	if (bpf_map_lookup_elem_flags(dp->votes_fd, &key, &vs, BPF_F_LOCK) < 0 ||
	    vs.s.view != view || vs.s.seq != seq || (vs.s.voted & voters) != voters)
		return -1;
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		if (voters >> i & 1)
			memcpy(sigs[i], vs.s.sigs[i], HM_SIG_LEN);
	return 0;
}

int hm_xdp_dp_dns_tail_fd(const struct hm_xdp_dp *dp)
{
	return dp->skel ? bpf_map__fd(dp->skel->maps.hm_dns_tail) : -1;
}

int hm_xdp_dp_events_fd(const struct hm_xdp_dp *dp)
{
	return ring_buffer__epoll_fd(dp->events);
}

int hm_xdp_dp_poll_events(struct hm_xdp_dp *dp)
{
	return ring_buffer__consume(dp->events);
}

uint64_t hm_xdp_dp_progress(struct hm_xdp_dp *dp, uint32_t n)
{
	uint32_t keys[HM_MAX_REPLICAS], count = n < HM_MAX_REPLICAS ? n : HM_MAX_REPLICAS, out;
	uint64_t seqs[HM_MAX_REPLICAS], best = 0;
	int r;

	/* one syscall for every replica's entry (it runs every 20 ms) */
	r = bpf_map_lookup_batch(dp->progress_fd, NULL, &out, keys, seqs, &count, NULL);
	if (r < 0 && errno != ENOENT) /* ENOENT: the batch reached the map's end */
		return 0;
	for (uint32_t i = 0; i < count; i++)
		if (keys[i] < n && seqs[i] > best)
			best = seqs[i];
	return best;
}

int hm_xdp_dp_max_views(struct hm_xdp_dp *dp, uint32_t n, uint64_t views[HM_MAX_REPLICAS])
{
	uint32_t keys[HM_MAX_REPLICAS], count = n < HM_MAX_REPLICAS ? n : HM_MAX_REPLICAS, out;
	struct hm_node_stats st[HM_MAX_REPLICAS];

	/* one syscall for the replicas' entries, as hm_xdp_dp_progress (every 20 ms);
	 * the array's first entries are the replicas' */
	if (bpf_map_lookup_batch(dp->stats_fd, NULL, &out, keys, st, &count, NULL) < 0 &&
	    errno != ENOENT)
		return -1;
	for (uint32_t i = 0; i < n && i < HM_MAX_REPLICAS; i++)
		views[i] = 0;
	for (uint32_t i = 0; i < count; i++)
		if (keys[i] < n)
			views[keys[i]] = st[i].max_view_seen;
	return 0;
}

/* ---- fan-out peers ----------------------------------------------------- */

static bool resolve_peer(struct hm_xdp_dp *dp, uint32_t id, struct hm_xdp_route *route)
{
	const struct hm_member *m = &dp->config->members[id];
	const struct sockaddr_in *a = (const void *)&m->addr;
	struct hm_nl_route r;
	char why[256];
	int rc;

	if (m->addr.ss_family != AF_INET)
		return false; /* the TC program is IPv4 only */
	rc = hm_nl_resolve(dp->nl, a->sin_addr.s_addr, &r, why, sizeof(why));
	if (rc < 0)
		hm_debug("peer %u (%s): no route for the fan-out: %s", id, m->address, why);
	if (rc != 0)
		return false; /* pending: an event follows */
	if ((int)r.ifindex != dp->ifindex)
		return false; /* reached through another device: not ours to fan out */
	route->ifindex = r.ifindex;
	memcpy(route->src_mac, r.src_mac, 6);
	memcpy(route->dst_mac, r.dst_mac, 6);
	return true;
}

hm_voters_t hm_xdp_dp_refresh_peers(struct hm_xdp_dp *dp)
{
	for (uint32_t id = 0; id < dp->cfg.n && id < HM_MAX_REPLICAS; id++) {
		const struct sockaddr_in *a = (const void *)&dp->config->members[id].addr;
		struct hm_xdp_route route;
		bool ok = id != dp->cfg.self_id && resolve_peer(dp, id, &route);

		dp->peer_ifindex[id] = ok ? route.ifindex : 0;
		if (hm_xdp_dp_set_peer(dp, id, a, dp->tx_keys[id], ok ? &route : NULL) < 0)
			hm_warn("cannot write hm_peers[%u]: %s", id, strerror(errno));
	}
	return dp->tc_peers;
}

int hm_xdp_dp_netlink_fd(const struct hm_xdp_dp *dp)
{
	return hm_nl_fd(dp->nl);
}

static void on_netlink(void *ctx, const struct hm_nl_event *ev)
{
	struct hm_xdp_dp *dp = ctx;

	if (ev->type != HM_NL_LINK_DOWN)
		return;
	for (uint32_t id = 0; id < dp->cfg.n && id < HM_MAX_REPLICAS; id++)
		if (id != dp->cfg.self_id && dp->peer_ifindex[id] == ev->ifindex) {
			dp->partitions[id]++;
			hm_warn("partition: link %s down, replica %u unreachable", ev->ifname, id);
		}
}

bool hm_xdp_dp_netlink_events(struct hm_xdp_dp *dp)
{
	hm_voters_t before = dp->tc_peers;

	if (hm_nl_process(dp->nl, on_netlink, dp) <= 0)
		return false;
	/* any change may move a peer: resolving them all is cheap */
	return hm_xdp_dp_refresh_peers(dp) != before;
}

int hm_xdp_dp_set_peer(struct hm_xdp_dp *dp, uint32_t id, const struct sockaddr_in *addr,
		       const uint8_t tx_key[16], const struct hm_xdp_route *route)
{
	struct hm_tc_peer p = { 0 };

	if (id >= HM_MAX_REPLICAS)
		return -1;
	if (route) {
		p.valid = 1;
		p.ifindex = route->ifindex;
		memcpy(p.dst_mac, route->dst_mac, 6);
		memcpy(p.src_mac, route->src_mac, 6);
		p.addr = addr->sin_addr.s_addr;
		p.port = addr->sin_port;
		memcpy(p.tx_key, tx_key, 16);
	}
	if (bpf_map_update_elem(dp->tc_peers_fd, &id, &p, BPF_ANY) < 0)
		return -1;
	if (route)
		dp->tc_peers |= (hm_voters_t)(1u << id);
	else
		dp->tc_peers &= (hm_voters_t)~(1u << id);
	return 0;
}

int hm_xdp_dp_set_reputation(struct hm_xdp_dp *dp, uint32_t i, double reputation)
{
	struct hm_vote_policy_args a = { .op = HM_POLICY_SET_REPUTATION, .index = i };

	if (reputation < 0)
		reputation = 0;
	if (reputation > 1)
		reputation = 1;
	a.value = (uint32_t)(reputation * HM_REPUTATION_ONE + 0.5);
	return run_policy(dp, &a);
}

int hm_xdp_dp_node_stats(struct hm_xdp_dp *dp, uint32_t i, struct hm_node_stats *out)
{
	return bpf_map_lookup_elem(dp->stats_fd, &i, out);
}

int hm_xdp_dp_tc_stats(struct hm_xdp_dp *dp, struct hm_tc_stats *out)
{
	uint32_t zero = 0;

	return bpf_map_lookup_elem(dp->tc_stats_fd, &zero, out);
}

/* hm_blocklist holds the expiry in bpf_ktime_get_ns() time, which is
 * CLOCK_MONOTONIC: the kernel lets the entry lapse on its own even if the
 * controller is late to delete it. */
int hm_xdp_dp_block(struct hm_xdp_dp *dp, uint32_t id, uint64_t until_mono_ns)
{
	return bpf_map_update_elem(dp->blocklist_fd, &id, &until_mono_ns, BPF_ANY);
}

int hm_xdp_dp_unblock(struct hm_xdp_dp *dp, uint32_t id)
{
	int r = bpf_map_delete_elem(dp->blocklist_fd, &id);

	return r < 0 && errno == ENOENT ? 0 : r;
}
