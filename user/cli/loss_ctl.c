// SPDX-License-Identifier: MIT
/*
 * loss_ctl: set and show the rules of a running loss injector
 * (kern/hm_loss.bpf.c) so that the fault suite can turn loss and duplication
 * on and off on a link.  See usage() and docs/netlink-and-loss.md.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dataplane/loss.h"

static void usage(void)
{
	fprintf(stderr,
		"usage: loss_ctl TARGET CMD\n"
		"  TARGET  dev IFNAME ingress|egress   the hm_loss program tc attached there\n"
		"          prog ID                     a loaded hm_loss program by id\n"
		"  CMD     set IDX RULE                e.g. set 0 dst=198.18.0.2,port=7000,drop=30%%\n"
		"          clear IDX|all               remove rule IDX or every rule\n"
		"          show                        rules and counters (one line per used slot)\n"
		"          reset IDX|all               zero the counters\n"
		"  RULE    dst=ADDR family=4|6 port=N drop=P dup=P off  (comma-separated;\n"
		"          P as 30%%, 0.5%% or 5000ppm; first matching enabled rule decides)\n");
}

static int parse_idx(const char *s, uint32_t *idx)
{
	char *end;
	unsigned long v = strtoul(s, &end, 10);

	if (*s == 0 || *end || v >= HM_LOSS_MAX_RULES) {
		fprintf(stderr, "loss_ctl: bad rule index '%s' (0..%d)\n", s, HM_LOSS_MAX_RULES - 1);
		return -1;
	}
	*idx = (uint32_t)v;
	return 0;
}

static int show(const struct hm_loss_maps *m)
{
	char err[256], rule[256];

	for (uint32_t i = 0; i < HM_LOSS_MAX_RULES; i++) {
		struct hm_loss_rule r;
		struct hm_loss_counters c;

		if (hm_loss_get(m, i, &r, &c, err, sizeof(err)) < 0) {
			fprintf(stderr, "loss_ctl: %s\n", err);
			return 1;
		}
		hm_loss_format_rule(&r, rule, sizeof(rule));
		if (!strcmp(rule, "-") && !c.seen)
			continue;
		printf("%u %s seen=%llu dropped=%llu duplicated=%llu dup_failed=%llu\n", i, rule,
		       (unsigned long long)c.seen, (unsigned long long)c.dropped,
		       (unsigned long long)c.duplicated, (unsigned long long)c.dup_failed);
	}
	return 0;
}

/* Apply fn to one index or, with "all", to every one. */
static int each(const char *which, const struct hm_loss_maps *m,
		int (*fn)(const struct hm_loss_maps *, uint32_t, char *, size_t))
{
	uint32_t lo = 0, hi = HM_LOSS_MAX_RULES;
	char err[256];

	if (strcmp(which, "all") != 0) {
		if (parse_idx(which, &lo) < 0)
			return 2;
		hi = lo + 1;
	}
	for (uint32_t i = lo; i < hi; i++)
		if (fn(m, i, err, sizeof(err)) < 0) {
			fprintf(stderr, "loss_ctl: %s\n", err);
			return 1;
		}
	return 0;
}

static int clear_one(const struct hm_loss_maps *m, uint32_t i, char *err, size_t errlen)
{
	struct hm_loss_rule zero = {};

	return hm_loss_set_rule(m, i, &zero, err, errlen);
}

int main(int argc, char **argv)
{
	struct hm_loss_maps m;
	char err[256];
	uint32_t prog_id, idx;
	int a, rc = 2;

	if (argc >= 4 && !strcmp(argv[1], "dev") &&
	    (!strcmp(argv[3], "ingress") || !strcmp(argv[3], "egress"))) {
		if (hm_loss_prog_on_dev(argv[2], !strcmp(argv[3], "ingress"), &prog_id, err,
					sizeof(err)) < 0) {
			fprintf(stderr, "loss_ctl: %s\n", err);
			return 1;
		}
		a = 4;
	} else if (argc >= 3 && !strcmp(argv[1], "prog")) {
		char *end;

		prog_id = (uint32_t)strtoul(argv[2], &end, 10);
		if (!*argv[2] || *end) {
			usage();
			return 2;
		}
		a = 3;
	} else {
		usage();
		return 2;
	}
	if (a >= argc) {
		usage();
		return 2;
	}
	if (hm_loss_maps_from_prog(prog_id, &m, err, sizeof(err)) < 0) {
		fprintf(stderr, "loss_ctl: %s\n", err);
		return 1;
	}
	if (!strcmp(argv[a], "set") && argc == a + 3) {
		struct hm_loss_rule r;

		if (parse_idx(argv[a + 1], &idx) < 0) {
			rc = 2;
		} else if (hm_loss_parse_rule(argv[a + 2], &r, err, sizeof(err)) < 0) {
			fprintf(stderr, "loss_ctl: %s\n", err);
			rc = 2;
		} else if (hm_loss_set_rule(&m, idx, &r, err, sizeof(err)) < 0) {
			fprintf(stderr, "loss_ctl: %s\n", err);
			rc = 1;
		} else {
			rc = 0;
		}
	} else if (!strcmp(argv[a], "clear") && argc == a + 2) {
		rc = each(argv[a + 1], &m, clear_one);
	} else if (!strcmp(argv[a], "reset") && argc == a + 2) {
		rc = each(argv[a + 1], &m, hm_loss_reset_counters);
	} else if (!strcmp(argv[a], "show") && argc == a + 1) {
		rc = show(&m);
	} else {
		usage();
	}
	hm_loss_maps_close(&m);
	return rc;
}
