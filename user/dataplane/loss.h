/* SPDX-License-Identifier: MIT */
/*
 * Userspace side of the loss and duplication injector (kern/hm_loss.bpf.c,
 * map layouts in headers/hm_loss.h): find an attached instance, read and
 * write its rules and counters.  Used by build/loss_ctl and the tests; the
 * fault suite can call it directly.
 */
#ifndef HM_LOSS_USER_H
#define HM_LOSS_USER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_loss.h"

struct hm_loss_maps {
	int rules_fd;
	int stats_fd;
};

/*
 * Parse a rule from "key=value,..." (every key optional):
 *   dst=ADDR        destination address, IPv4 or IPv6 (sets the family)
 *   family=4|6      IPv4 or IPv6 only (default: both, or dst's)
 *   port=N          UDP destination port (default: any)
 *   drop=P          P% ("30%", "0.5%") or "Nppm" of matching packets dropped
 *   dup=P           likewise duplicated
 *   off             the rule disabled (kept for reference)
 * The rule is enabled unless "off" is given.  0 or -1 with err filled.
 */
int hm_loss_parse_rule(const char *spec, struct hm_loss_rule *r, char *err, size_t errlen);

/* The rule in the syntax above ("-" for an unused slot). */
void hm_loss_format_rule(const struct hm_loss_rule *r, char *buf, size_t len);

/* The maps of a loaded hm_loss program, by program id. */
int hm_loss_maps_from_prog(uint32_t prog_id, struct hm_loss_maps *m, char *err, size_t errlen);

/* The id of the hm_loss program attached with tc (cls_bpf in clsact) on
 * ifname's ingress or egress hook, in the caller's network namespace. */
int hm_loss_prog_on_dev(const char *ifname, bool ingress, uint32_t *prog_id, char *err,
			size_t errlen);

void hm_loss_maps_close(struct hm_loss_maps *m);

int hm_loss_set_rule(const struct hm_loss_maps *m, uint32_t idx, const struct hm_loss_rule *r,
		     char *err, size_t errlen);
int hm_loss_get(const struct hm_loss_maps *m, uint32_t idx, struct hm_loss_rule *r,
		struct hm_loss_counters *c, char *err, size_t errlen);
int hm_loss_reset_counters(const struct hm_loss_maps *m, uint32_t idx, char *err, size_t errlen);

#endif /* HM_LOSS_USER_H */
