// SPDX-License-Identifier: MIT
/* The XDP DNS responder's controller (see dns_xdp.h). */
#include "dataplane/dns_xdp.h"

#include <errno.h>
#include <sys/socket.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_link.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "common/log.h"
#include "dataplane/xdp_dataplane.h"
#include "hm_dns.skel.h"

static int64_t wall_offset_ns(void)
{
	struct timespec r, m;

	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)r.tv_sec - m.tv_sec) * 1000000000ll + (r.tv_nsec - m.tv_nsec);
}

static int write_config(struct hm_dns_xdp *x)
{
	uint32_t zero = 0;

	x->cfg.wall_offset_ns = wall_offset_ns();
	return bpf_map_update_elem(bpf_map__fd(x->skel->maps.hm_dns_config), &zero, &x->cfg, BPF_ANY);
}

void hm_dns_xdp_refresh_clock(struct hm_dns_xdp *x)
{
	if (x->skel && write_config(x) < 0)
		hm_debug("dns xdp: config update: %s", strerror(errno));
}

/* Alone on the interface: native mode, else generic. */
static int attach_alone(struct hm_dns_xdp *x, const char *ifname, char *err, size_t errlen)
{
	int fd = bpf_program__fd(x->skel->progs.hm_dns_xdp);

	x->attach_flags = XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_DRV_MODE;
	x->how = "native";
	if (bpf_xdp_attach(x->ifindex, fd, x->attach_flags, NULL) == 0)
		return 0;
	x->attach_flags = XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_SKB_MODE;
	x->how = "skb";
	if (bpf_xdp_attach(x->ifindex, fd, x->attach_flags, NULL) == 0)
		return 0;
	x->attach_flags = 0;
	return hm_set_err(err, errlen, "cannot attach hm_dns to %s: %s", ifname, strerror(errno));
}

/* Pins for bpftool; a missing bpffs is worth a warning, not a failure. */
static void pin_maps(struct hm_dns_xdp *x, const char *ifname)
{
	struct { const char *name; struct bpf_map *map; } pins[] = {
		{ "hm_dns_answers", x->skel->maps.hm_dns_answers },
		{ "hm_dns_stats", x->skel->maps.hm_dns_stats },
	};
	char path[192];

	snprintf(x->pin_dir, sizeof(x->pin_dir), HM_PIN_ROOT "/%s", ifname);
	mkdir(HM_PIN_ROOT, 0700);
	mkdir(x->pin_dir, 0700);
	for (size_t i = 0; i < sizeof(pins) / sizeof(pins[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", x->pin_dir, pins[i].name);
		unlink(path); /* left by a daemon that was killed */
		if (bpf_obj_pin(bpf_map__fd(pins[i].map), path) < 0) {
			hm_warn("dns xdp: cannot pin %s: %s (is bpffs mounted on /sys/fs/bpf?)", path,
				strerror(errno));
			return;
		}
	}
	x->pinned = true;
}

static void unpin_maps(struct hm_dns_xdp *x)
{
	char path[192];

	if (!x->pinned)
		return;
	snprintf(path, sizeof(path), "%s/hm_dns_answers", x->pin_dir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/hm_dns_stats", x->pin_dir);
	unlink(path);
	rmdir(x->pin_dir); /* fails while hm_xdp still pins there */
	rmdir(HM_PIN_ROOT);
	x->pinned = false;
}

/* The trie key of a prefix: IPv4 as ::ffff:a.b.c.d/(len + 96), the form
 * the program looks an IPv4 client up in (hm_dns_xdp.h). */
static struct hm_dns_xdp_allow_key allow_key(const struct hm_prefix *p)
{
	struct hm_dns_xdp_allow_key k = { 0 };

	if (p->family == AF_INET) {
		k.addr[10] = k.addr[11] = 0xff;
		memcpy(k.addr + 12, p->addr, 4);
		k.prefixlen = 96u + p->len;
	} else {
		memcpy(k.addr, p->addr, 16);
		k.prefixlen = p->len;
	}
	return k;
}

int hm_dns_xdp_set_allow(int allow_fd, const struct hm_prefix *list, uint32_t n)
{
	struct hm_dns_xdp_allow_key k, next;
	uint8_t one = 1;

	/* Empty it first: a prefix dropped from the list must stop matching. */
	while (bpf_map_get_next_key(allow_fd, NULL, &next) == 0)
		if (bpf_map_delete_elem(allow_fd, &next) < 0)
			return -1;
	for (uint32_t i = 0; i < n; i++) {
		k = allow_key(&list[i]);
		if (bpf_map_update_elem(allow_fd, &k, &one, BPF_ANY) < 0)
			return -1;
	}
	return 0;
}

int hm_dns_xdp_open(struct hm_dns_xdp *x, const struct hm_dns_xdp_opts *o, char *err,
		    size_t errlen)
{
	uint32_t zero = 0;
	int r, fd;

	memset(x, 0, sizeof(*x));
	x->tail_fd = -1;
	x->ifindex = (int)if_nametoindex(o->ifname);
	if (!x->ifindex)
		return hm_set_err(err, errlen, "no interface '%s'", o->ifname);
	x->skel = hm_dns_bpf__open_and_load();
	if (!x->skel)
		return hm_set_err(err, errlen, "cannot load hm_dns: %s", strerror(errno));
	x->cfg = (struct hm_dns_xdp_config){ .port = o->port, .rrl_rate = o->rrl_rate,
					     .rrl_burst = o->rrl_burst, .rrl_slip = o->rrl_slip,
					     .rrl_prefix4 = o->rrl_prefix4,
					     .rrl_prefix6 = o->rrl_prefix6 };
	if (write_config(x) < 0) {
		r = hm_set_err(err, errlen, "hm_dns config: %s", strerror(errno));
		goto fail;
	}
	if (hm_dns_xdp_set_allow(bpf_map__fd(x->skel->maps.hm_dns_allow), o->allow, o->n_allow) < 0) {
		r = hm_set_err(err, errlen, "hm_dns allow list: %s", strerror(errno));
		goto fail;
	}
	fd = bpf_program__fd(x->skel->progs.hm_dns_xdp);
	if (o->tail_fd >= 0) {
		if (bpf_map_update_elem(o->tail_fd, &zero, &fd, BPF_ANY) < 0) {
			r = hm_set_err(err, errlen, "cannot install hm_dns in hm_xdp's tail call: %s",
				       strerror(errno));
			goto fail;
		}
		x->tail_fd = o->tail_fd;
		x->how = "tail call from hm_xdp";
	} else if ((r = attach_alone(x, o->ifname, err, errlen)) < 0) {
		goto fail;
	}
	pin_maps(x, o->ifname);
	return 0;
fail:
	hm_dns_bpf__destroy(x->skel);
	x->skel = NULL;
	return r;
}

void hm_dns_xdp_close(struct hm_dns_xdp *x)
{
	uint32_t zero = 0;

	if (!x->skel)
		return;
	if (x->tail_fd >= 0)
		bpf_map_delete_elem(x->tail_fd, &zero);
	else if (x->attach_flags)
		bpf_xdp_detach(x->ifindex, x->attach_flags & ~XDP_FLAGS_UPDATE_IF_NOEXIST, NULL);
	unpin_maps(x);
	hm_dns_bpf__destroy(x->skel);
	x->skel = NULL;
}

int hm_dns_xdp_answers_fd(const struct hm_dns_xdp *x)
{
	return x->skel ? bpf_map__fd(x->skel->maps.hm_dns_answers) : -1;
}

int hm_dns_xdp_sum_stats(int stats_fd, struct hm_dns_xdp_stats *sum)
{
	/* Every field is a __u64 counter: summed as an array, so a counter
	 * added to the struct is summed without another line here. */
	enum { N = sizeof(*sum) / sizeof(__u64) };
	_Static_assert(sizeof(struct hm_dns_xdp_stats) % sizeof(__u64) == 0, "u64 counters only");
	int ncpu = libbpf_num_possible_cpus();
	uint32_t zero = 0;
	__u64 *out = (__u64 *)sum;

	memset(sum, 0, sizeof(*sum));
	if (ncpu <= 0)
		return -1;
	{
		struct hm_dns_xdp_stats per[ncpu];

		if (bpf_map_lookup_elem(stats_fd, &zero, per) < 0)
			return -1;
		for (int i = 0; i < ncpu; i++)
			for (int k = 0; k < N; k++)
				out[k] += ((const __u64 *)&per[i])[k];
	}
	return 0;
}

int hm_dns_xdp_read_stats(const struct hm_dns_xdp *x, struct hm_dns_xdp_stats *sum)
{
	if (!x->skel) {
		memset(sum, 0, sizeof(*sum));
		return -1;
	}
	return hm_dns_xdp_sum_stats(bpf_map__fd(x->skel->maps.hm_dns_stats), sum);
}
