// SPDX-License-Identifier: MIT
/*
 * Rules and counters of an attached loss injector (see loss.h).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/pkt_cls.h>
#include <linux/rtnetlink.h>
#include <math.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>

#include "dataplane/loss.h"

/* "30%", "0.5%", "300000ppm" or a bare number of percent -> ppm. */
static int parse_rate(const char *v, uint32_t *ppm)
{
	char *end;
	double x;

	errno = 0;
	x = strtod(v, &end);
	if (errno || end == v || !(x >= 0))
		return -1;
	if (strcmp(end, "ppm") == 0) {
		if (x != floor(x) || x > HM_LOSS_PPM)
			return -1;
		*ppm = (uint32_t)x;
		return 0;
	}
	if (*end && strcmp(end, "%") != 0)
		return -1;
	if (x > 100)
		return -1;
	*ppm = (uint32_t)llround(x * 10000.0);
	return 0;
}

int hm_loss_parse_rule(const char *spec, struct hm_loss_rule *r, char *err, size_t errlen)
{
	char buf[512], *save = NULL;
	bool off = false;

	memset(r, 0, sizeof(*r));
	if (strlen(spec) >= sizeof(buf)) {
		snprintf(err, errlen, "rule too long");
		return -1;
	}
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
		char *v = strchr(kv, '=');

		if (v)
			*v++ = 0;
		if (strcmp(kv, "off") == 0 && !v) {
			off = true;
		} else if (strcmp(kv, "dst") == 0 && v) {
			if (inet_pton(AF_INET, v, r->addr) == 1) {
				r->family = 4;
			} else if (inet_pton(AF_INET6, v, r->addr) == 1) {
				r->family = 6;
			} else {
				snprintf(err, errlen, "dst: '%s' is not an IPv4 or IPv6 address", v);
				return -1;
			}
			r->match_addr = 1;
		} else if (strcmp(kv, "family") == 0 && v) {
			if (strcmp(v, "4") && strcmp(v, "6")) {
				snprintf(err, errlen, "family: 4 or 6, not '%s'", v);
				return -1;
			}
			if (r->match_addr && r->family != (uint8_t)atoi(v)) {
				snprintf(err, errlen, "family %s contradicts dst", v);
				return -1;
			}
			r->family = (uint8_t)atoi(v);
		} else if (strcmp(kv, "port") == 0 && v) {
			char *end;
			long p = strtol(v, &end, 10);

			if (*v == 0 || *end || p < 1 || p > 65535) {
				snprintf(err, errlen, "port: 1..65535, not '%s'", v);
				return -1;
			}
			r->dport = htons((uint16_t)p);
		} else if ((strcmp(kv, "drop") == 0 || strcmp(kv, "dup") == 0) && v) {
			uint32_t *dst = kv[1] == 'r' ? &r->drop_ppm : &r->dup_ppm;

			if (parse_rate(v, dst) < 0) {
				snprintf(err, errlen, "%s: a rate like 30%%, 0.5%% or 5000ppm, not '%s'",
					 kv, v);
				return -1;
			}
		} else {
			snprintf(err, errlen, "unknown rule item '%s' (dst= family= port= drop= dup= off)",
				 kv);
			return -1;
		}
	}
	if ((uint64_t)r->drop_ppm + r->dup_ppm > HM_LOSS_PPM) {
		snprintf(err, errlen, "drop + dup exceed 100%%");
		return -1;
	}
	r->enabled = !off;
	return 0;
}

void hm_loss_format_rule(const struct hm_loss_rule *r, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "", port[16] = "", fam[16] = "";

	if (!r->enabled && !r->drop_ppm && !r->dup_ppm && !r->family && !r->dport &&
	    !r->match_addr) {
		snprintf(buf, len, "-");
		return;
	}
	if (r->match_addr && !inet_ntop(r->family == 6 ? AF_INET6 : AF_INET, r->addr, a, sizeof(a)))
		snprintf(a, sizeof(a), "?");
	if (r->dport)
		snprintf(port, sizeof(port), "port=%u,", ntohs(r->dport));
	if (r->family && !r->match_addr)
		snprintf(fam, sizeof(fam), "family=%u,", r->family);
	snprintf(buf, len, "%s%s%s%s%sdrop=%uppm,dup=%uppm%s", r->match_addr ? "dst=" : "", a,
		 r->match_addr ? "," : "", fam, port, r->drop_ppm, r->dup_ppm,
		 r->enabled ? "" : ",off");
}

void hm_loss_maps_close(struct hm_loss_maps *m)
{
	if (m->rules_fd >= 0)
		close(m->rules_fd);
	if (m->stats_fd >= 0)
		close(m->stats_fd);
	m->rules_fd = m->stats_fd = -1;
}

int hm_loss_maps_from_prog(uint32_t prog_id, struct hm_loss_maps *m, char *err, size_t errlen)
{
	struct bpf_prog_info info = {};
	uint32_t ids[16], len = sizeof(info);
	int pfd = bpf_prog_get_fd_by_id(prog_id);

	m->rules_fd = m->stats_fd = -1;
	if (pfd < 0) {
		snprintf(err, errlen, "program %u: %s", prog_id, strerror(errno));
		return -1;
	}
	info.nr_map_ids = 16;
	info.map_ids = (uint64_t)(uintptr_t)ids;
	if (bpf_obj_get_info_by_fd(pfd, &info, &len) < 0) {
		snprintf(err, errlen, "program %u: %s", prog_id, strerror(errno));
		close(pfd);
		return -1;
	}
	close(pfd);
	for (uint32_t i = 0; i < info.nr_map_ids && i < 16; i++) {
		struct bpf_map_info mi = {};
		uint32_t mlen = sizeof(mi);
		int fd = bpf_map_get_fd_by_id(ids[i]);

		if (fd < 0)
			continue;
		if (bpf_obj_get_info_by_fd(fd, &mi, &mlen) == 0) {
			if (!strcmp(mi.name, "hm_loss_rules") && m->rules_fd < 0 &&
			    mi.value_size == sizeof(struct hm_loss_rule)) {
				m->rules_fd = fd;
				continue;
			}
			if (!strcmp(mi.name, "hm_loss_stats") && m->stats_fd < 0 &&
			    mi.value_size == sizeof(struct hm_loss_counters)) {
				m->stats_fd = fd;
				continue;
			}
		}
		close(fd);
	}
	if (m->rules_fd < 0 || m->stats_fd < 0) {
		snprintf(err, errlen, "program %u is not hm_loss (no hm_loss_rules/hm_loss_stats)",
			 prog_id);
		hm_loss_maps_close(m);
		return -1;
	}
	return 0;
}

/* ---- the program attached with tc, through an RTM_GETTFILTER dump ---------- */

struct find_ctx {
	uint32_t prog_id;
	int found;
};

static int on_filter(struct nl_msg *msg, void *arg)
{
	struct find_ctx *fc = arg;
	struct nlattr *tb[TCA_MAX + 1], *ob[TCA_BPF_MAX + 1];
	struct nlmsghdr *h = nlmsg_hdr(msg);

	if (h->nlmsg_type != RTM_NEWTFILTER ||
	    nlmsg_parse(h, sizeof(struct tcmsg), tb, TCA_MAX, NULL) < 0)
		return NL_OK;
	if (!tb[TCA_KIND] || strcmp(nla_get_string(tb[TCA_KIND]), "bpf") != 0 ||
	    !tb[TCA_OPTIONS] || nla_parse_nested(ob, TCA_BPF_MAX, tb[TCA_OPTIONS], NULL) < 0 ||
	    !ob[TCA_BPF_ID])
		return NL_OK;
	/* The first one whose maps are hm_loss's. */
	if (!fc->found) {
		struct hm_loss_maps m;
		char e[64];
		uint32_t id = nla_get_u32(ob[TCA_BPF_ID]);

		if (hm_loss_maps_from_prog(id, &m, e, sizeof(e)) == 0) {
			hm_loss_maps_close(&m);
			fc->prog_id = id;
			fc->found = 1;
		}
	}
	return NL_OK;
}

int hm_loss_prog_on_dev(const char *ifname, bool ingress, uint32_t *prog_id, char *err,
			size_t errlen)
{
	struct tcmsg tcm = { .tcm_family = AF_UNSPEC };
	struct find_ctx fc = {};
	struct nl_sock *sk;
	int e;

	tcm.tcm_ifindex = (int)if_nametoindex(ifname);
	if (!tcm.tcm_ifindex) {
		snprintf(err, errlen, "no device %s", ifname);
		return -1;
	}
	tcm.tcm_parent = TC_H_MAKE(TC_H_CLSACT, ingress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
	sk = nl_socket_alloc();
	if (!sk) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	if ((e = nl_connect(sk, NETLINK_ROUTE)) < 0 ||
	    (e = nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, on_filter, &fc)) < 0 ||
	    (e = nl_send_simple(sk, RTM_GETTFILTER, NLM_F_DUMP, &tcm, sizeof(tcm))) < 0 ||
	    (e = nl_recvmsgs_default(sk)) < 0) {
		snprintf(err, errlen, "%s %s: listing tc filters: %s", ifname,
			 ingress ? "ingress" : "egress", nl_geterror(e));
		nl_socket_free(sk);
		return -1;
	}
	nl_socket_free(sk);
	if (!fc.found) {
		snprintf(err, errlen, "%s %s: no hm_loss program attached with tc", ifname,
			 ingress ? "ingress" : "egress");
		return -1;
	}
	*prog_id = fc.prog_id;
	return 0;
}

/* ---- rules and counters ------------------------------------------------------ */

static int check_idx(uint32_t idx, char *err, size_t errlen)
{
	if (idx < HM_LOSS_MAX_RULES)
		return 0;
	snprintf(err, errlen, "rule index %u out of range (0..%d)", idx, HM_LOSS_MAX_RULES - 1);
	return -1;
}

int hm_loss_set_rule(const struct hm_loss_maps *m, uint32_t idx, const struct hm_loss_rule *r,
		     char *err, size_t errlen)
{
	if (check_idx(idx, err, errlen) < 0)
		return -1;
	if (bpf_map_update_elem(m->rules_fd, &idx, r, BPF_ANY) < 0) {
		snprintf(err, errlen, "update hm_loss_rules[%u]: %s", idx, strerror(errno));
		return -1;
	}
	return 0;
}

int hm_loss_get(const struct hm_loss_maps *m, uint32_t idx, struct hm_loss_rule *r,
		struct hm_loss_counters *c, char *err, size_t errlen)
{
	if (check_idx(idx, err, errlen) < 0)
		return -1;
	if ((r && bpf_map_lookup_elem(m->rules_fd, &idx, r) < 0) ||
	    (c && bpf_map_lookup_elem(m->stats_fd, &idx, c) < 0)) {
		snprintf(err, errlen, "lookup [%u]: %s", idx, strerror(errno));
		return -1;
	}
	return 0;
}

int hm_loss_reset_counters(const struct hm_loss_maps *m, uint32_t idx, char *err, size_t errlen)
{
	struct hm_loss_counters zero = {};

	if (check_idx(idx, err, errlen) < 0)
		return -1;
	if (bpf_map_update_elem(m->stats_fd, &idx, &zero, BPF_ANY) < 0) {
		snprintf(err, errlen, "reset hm_loss_stats[%u]: %s", idx, strerror(errno));
		return -1;
	}
	return 0;
}
