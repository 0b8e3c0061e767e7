/* SPDX-License-Identifier: MIT */
/*
 * Test-only Byzantine behaviour on a replica's send path (docs/faults.md).
 *
 * The replica runs its correct core; this module sits between the core's
 * output and the link, and lies on its behalf with the replica's own key: it
 * drops, rewrites and re-signs, delays and replays what the core sends to its
 * peers.  It is installed as the node's send-path hook (hm_byz_send_hook,
 * replica/send_hook.h), so the node does not know it exists.  The test
 * build of the daemon (build/hypermeshd-test: --byzantine, refused without
 * an explicit acknowledgement; the shipped build/hypermeshd has no such
 * option) and the simulator use the same module, so what the simulator
 * proves about a mode is what the fault suite runs on real namespaces.
 *
 * Every mutation happens before the link MAC is stamped, so a receiver sees
 * a message its peer really sent: the MAC verifies, only the content lies.
 */
#ifndef HM_BYZANTINE_H
#define HM_BYZANTINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/crypto.h"
#include "replica/send_hook.h"

enum hm_byz_mode {
	HM_BYZ_CRASH = 0,       /* stop (the daemon exits) after arg ms */
	HM_BYZ_SILENT,          /* send nothing to replicas while primary */
	HM_BYZ_EQUIVOCATE,      /* PRE-PREPAREs to the upper half carry another batch */
	HM_BYZ_FORGE_SIG,       /* re-signed with a key that is not ours */
	HM_BYZ_CORRUPT_SIG,     /* a bit of the signature flipped (still canonical) */
	HM_BYZ_REPLAY,          /* every arg-th send also repeats an old datagram */
	HM_BYZ_FUTURE_VOTES,    /* our votes name sequence numbers above the window */
	HM_BYZ_DELAY_VOTES,     /* our votes held back for arg ms */
	HM_BYZ_BAD_CHECKPOINT,  /* CHECKPOINTs certify a wrong state digest */
	HM_BYZ_BAD_CHUNK,       /* STATE_CHUNK data corrupted, re-hashed and re-signed */
	HM_BYZ_MODE_MAX,
};

struct hm_byz_opts {
	uint32_t modes;                 /* 1 << enum hm_byz_mode */
	uint32_t arg[HM_BYZ_MODE_MAX];  /* per-mode argument (0: the default) */
	/* Message types the signature modes touch, 1 << type; 0 = every type. */
	uint32_t sig_types;
	uint64_t seed;                  /* the forger's key and replay choices */
};

/* Defaults used when a mode's argument is 0. */
#define HM_BYZ_DEFAULT_CRASH_MS 1000
#define HM_BYZ_DEFAULT_REPLAY_EVERY 4
#define HM_BYZ_DEFAULT_DELAY_MS 100

struct hm_byz_stats {
	uint64_t seen;                      /* datagrams to replicas offered */
	uint64_t applied[HM_BYZ_MODE_MAX];  /* datagrams each mode changed */
	uint64_t dropped;                   /* withheld for good */
};

struct hm_byz;

/* Parse "MODE[:ARG][,MODE[:ARG]]..." (names as hm_byz_mode_name gives
 * them).  0, or -1 with a message in err. */
int hm_byz_parse(const char *spec, struct hm_byz_opts *o, char *err, size_t errlen);
const char *hm_byz_mode_name(enum hm_byz_mode m);
/* "equivocate,delay-votes:100" for logs; returns buf. */
char *hm_byz_describe(const struct hm_byz_opts *o, char *buf, size_t len);

/* id and n of the replica, its keys, and the watermark window (the future
 * votes are placed just above it).  NULL on allocation failure. */
struct hm_byz *hm_byz_new(const struct hm_byz_opts *o, uint32_t id, uint32_t n, uint64_t window,
			  const struct hm_keypair *keys);
void hm_byz_free(struct hm_byz *b);

/* Send one datagram (MAC not yet stamped; the callee stamps and sends it). */
typedef hm_send_emit hm_byz_emit;

/* The core wants buf sent to replica `to`; `primary` says whether this
 * replica is the primary of its current view.  emit is called zero or more
 * times now; delayed copies go out from hm_byz_tick. */
void hm_byz_outgoing(struct hm_byz *b, const uint8_t *buf, size_t len, uint32_t to, bool primary,
		     uint64_t now_us, hm_byz_emit emit, void *ctx);
/* Release delayed datagrams that are due. */
void hm_byz_tick(struct hm_byz *b, uint64_t now_us, hm_byz_emit emit, void *ctx);
/* The next delayed release or crash time; 0 when none. */
uint64_t hm_byz_next_deadline(const struct hm_byz *b);
/* crash mode: true from the crash time on (the host stops the replica).
 * The crash clock starts at the first call with a nonzero time. */
bool hm_byz_crashed(struct hm_byz *b, uint64_t now_us);
const struct hm_byz_stats *hm_byz_stats(const struct hm_byz *b);

/* b as a node's send-path hook: install it with hm_node_set_send_hook
 * (b stays the caller's). */
struct hm_send_hook hm_byz_send_hook(struct hm_byz *b);

#endif /* HM_BYZANTINE_H */
