/* SPDX-License-Identifier: MIT */
/* A replica's state and counters as JSON (the control socket's answer,
 * read by `hmctl status` and the tests). */
#ifndef HM_STATUS_H
#define HM_STATUS_H

#include <jansson.h>

#include "replica/node.h"

/* {reason: count} for the nonzero drop counters. */
json_t *hm_drops_json(const uint64_t drops[HM_DROP_REASON_MAX]);

json_t *hm_status_json(const struct hm_node *nd, const char *dataplane);

#endif /* HM_STATUS_H */
