/* SPDX-License-Identifier: MIT */
/*
 * A hook on the node's send path to the other replicas
 * (hm_node_set_send_hook in replica/node.h).  With one installed, every
 * datagram the node would send to a replica goes to the hook instead, MAC
 * not yet stamped; the hook sends what it wants through emit, now or
 * later from its tick, and the node stamps and sends that.  Nothing in the
 * shipped programs installs one: the test-only Byzantine behaviour
 * (user/testing/byzantine.c, hm_byz_send_hook) does.
 */
#ifndef HM_SEND_HOOK_H
#define HM_SEND_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Send one datagram to replica `to` (MAC not yet stamped: the node stamps
 * it on that link and sends it). */
typedef void (*hm_send_emit)(void *emit_ctx, const uint8_t *buf, size_t len, uint32_t to);

struct hm_send_hook {
	/* The node wants buf sent to replica `to`; `primary` says whether the
	 * node is the primary of its current view.  Calls emit zero or more
	 * times. */
	void (*outgoing)(void *ctx, const uint8_t *buf, size_t len, uint32_t to, bool primary,
			 uint64_t now_us, hm_send_emit emit, void *emit_ctx);
	/* Called on every node tick: release what is due (NULL: nothing). */
	void (*tick)(void *ctx, uint64_t now_us, hm_send_emit emit, void *emit_ctx);
	/* When the hook next wants a tick; 0 for none (NULL: never). */
	uint64_t (*next_deadline)(void *ctx);
	void *ctx;
};

#endif /* HM_SEND_HOOK_H */
