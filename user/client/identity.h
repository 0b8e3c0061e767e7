/* SPDX-License-Identifier: MIT */
/*
 * One process per client identity (docs/protocol.md, "Replies name their
 * request").  The replicas keep, per client identity, one timestamp line:
 * two processes under one identity would draw timestamps from one sequence
 * without knowing of each other, and one of them would have its requests
 * refused (CONFLICT, STALE) at random.  So a client process holds an
 * exclusive flock(2) on a per-identity state file for as long as it runs;
 * a second process under the same identity is refused at once, naming the
 * holder's pid.  The file also keeps the last timestamp used, so that the
 * next process starts above it even if the wall clock went back.
 *
 * The file is DIR/client-ID-KEY.state, KEY the first 8 bytes of the
 * identity's public key in hex (two clusters on one host may both have a
 * client 100), DIR node.runtime_dir if set, else $XDG_RUNTIME_DIR/hypermesh,
 * else /run/hypermesh, else /tmp/hypermesh-UID (the first that can be
 * created and written).  Its content is one line: "pid P ts T".
 *
 * Within one process the lock is shared: a second transport under the same
 * identity (hmctl cert check --tlsa opens one for CT and one for DNS) takes
 * the held lock (counted) and the same timestamp line, so the two never
 * reuse each other's timestamps.  Not thread-safe (hmctl is one thread).
 */
#ifndef HM_CLIENT_IDENTITY_H
#define HM_CLIENT_IDENTITY_H

#include <stddef.h>
#include <stdint.h>

#include "common/config.h"

struct hm_identity_held;

struct hm_identity_lock {
	struct hm_identity_held *held; /* NULL: not held */
};

/* Take the lock for client `id` with public key pk.  0 and *last_ts = the
 * last timestamp a process under this identity stored (0: none); -1 with
 * the reason in err (in use by another process, or no usable directory). */
int hm_identity_lock(struct hm_identity_lock *l, const struct hm_config *cfg, uint32_t id,
		     const uint8_t *pk, uint64_t *last_ts, char *err, size_t errlen);
/* The last timestamp stored under this identity by this process (or the
 * one found at lock time); 0 when not held. */
uint64_t hm_identity_last(const struct hm_identity_lock *l);
/* The state file's path ("" when not held). */
const char *hm_identity_path(const struct hm_identity_lock *l);
/* Store ts as the last timestamp used (before the request leaves; a ts not
 * above the stored one changes nothing).  No
 * fsync: the lock is about concurrent processes; after a machine crash the
 * wall clock (microseconds) is above any timestamp used before it. */
int hm_identity_store(struct hm_identity_lock *l, uint64_t ts);
/* Release (also fine when not held). */
void hm_identity_unlock(struct hm_identity_lock *l);

#endif /* HM_CLIENT_IDENTITY_H */
