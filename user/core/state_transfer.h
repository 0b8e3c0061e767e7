/* SPDX-License-Identifier: MIT */
/*
 * State transfer: fetch a stable checkpoint's state from peers in chunks,
 * each verified on arrival against the digest that 2f+1 CHECKPOINT votes
 * certified (docs/persistence.md defines the digest and the payloads).
 *
 * The state digest of a snapshot S of L bytes:
 *   chunk i    = S[i*C, min(L, (i+1)*C)),  C = HM_ST_CHUNK_SIZE,
 *                N = max(1, ceil(L / C)) chunks (one empty chunk when L = 0)
 *   leaf i     = BLAKE2b-256(0x00 || chunk i)
 *   node       = BLAKE2b-256(0x01 || left || right)
 *   root       = the RFC 6962 (Certificate Transparency) Merkle tree hash
 *                over the N leaves (user/common/merkle.c with BLAKE2b-256)
 *   digest     = BLAKE2b-256(0x02 || u64 L || u32 C || root)
 * so every chunk, with its audit path, is checked against the digest alone.
 *
 * The client (struct hm_st) is a pure state machine like the PBFT core: no
 * sockets, no clock, no global state.  The driver feeds it the time and the
 * chunks that arrive (with the sender id its link MAC authenticated), and
 * sends the requests it hands out.
 */
#ifndef HM_STATE_TRANSFER_H
#define HM_STATE_TRANSFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"
#include "common/merkle.h"

/* 16 KiB chunks: a STATE_CHUNK with its header, fixed fields and the
 * longest audit path is 136 + 56 + 16 * 32 + 16384 = 17088 bytes. */
#define HM_ST_CHUNK_SIZE 16384u
/* Largest state that can be transferred: 1 GiB, 65536 chunks, a path of at
 * most 16 hashes. */
#define HM_ST_MAX_STATE (1ull << 30)
#define HM_ST_MAX_CHUNKS ((uint32_t)(HM_ST_MAX_STATE / HM_ST_CHUNK_SIZE))
#define HM_ST_MAX_PROOF 16

#define HM_ST_REQUEST_LEN 44                       /* STATE_REQUEST payload */
#define HM_ST_CHUNK_FIXED 56                       /* STATE_CHUNK before the path */
#define HM_ST_CHUNK_MAX_PAYLOAD (HM_ST_CHUNK_FIXED + HM_ST_MAX_PROOF * HM_DIGEST_LEN + HM_ST_CHUNK_SIZE)

/* ---- the digest ---------------------------------------------------------- */

/* Number of chunks of a state of len bytes (0 if len is above the limit). */
uint32_t hm_st_chunk_count(uint64_t len);
/* Length of chunk index of a state of len bytes. */
uint32_t hm_st_chunk_len(uint64_t len, uint32_t index);
/* Length of chunk index's audit path in a tree of count leaves. */
uint32_t hm_st_proof_len(uint32_t count, uint32_t index);
/* The state digest of a snapshot; -1 if it is larger than HM_ST_MAX_STATE. */
int hm_st_state_digest(const uint8_t *snap, uint64_t len, uint8_t out[HM_DIGEST_LEN]);

/* ---- payloads ------------------------------------------------------------ */

/* STATE_REQUEST: which chunk of which checkpoint. */
struct hm_st_request {
	uint64_t seq;
	uint8_t digest[HM_DIGEST_LEN];
	uint32_t index;
};

/* STATE_CHUNK, decoded: pointers into the payload. */
struct hm_st_chunk {
	uint64_t seq;
	uint8_t digest[HM_DIGEST_LEN];
	uint64_t total_len;
	uint32_t index;
	uint32_t proof_count;
	const uint8_t *proof;   /* proof_count hashes of 32 bytes, leaf level first */
	const uint8_t *data;
	uint32_t data_len;
};

/* Encode into buf; return the payload length, 0 if cap is too small. */
size_t hm_st_request_encode(uint8_t *buf, size_t cap, const struct hm_st_request *r);
/* Decode a payload; -1 for anything but exactly one well-formed request. */
int hm_st_request_decode(const uint8_t *p, size_t len, struct hm_st_request *r);
/* -1 unless the layout is consistent: index < chunk count of total_len,
 * the path has exactly the length the index needs, the data exactly the
 * chunk's length, total_len within HM_ST_MAX_STATE, nothing after. */
int hm_st_chunk_decode(const uint8_t *p, size_t len, struct hm_st_chunk *c);
/* True when the chunk's data and path hash up to its digest. */
bool hm_st_chunk_verify(const struct hm_st_chunk *c);

/* The same from a decoded datagram (wire.h): -1 unless the type is right
 * and the header's seq is the payload's (the payload digest is checked by
 * hm_msg_payload_ok(), as for every message). */
struct hm_msg;
int hm_st_request_from_msg(const struct hm_msg *m, struct hm_st_request *r);
int hm_st_chunk_from_msg(const struct hm_msg *m, struct hm_st_chunk *c);

/* ---- the serving side ---------------------------------------------------- */

/* A snapshot being served, with every tree level precomputed. */
struct hm_st_server {
	uint64_t seq;
	uint8_t digest[HM_DIGEST_LEN];
	const uint8_t *snap;   /* borrowed: must outlive the server */
	uint64_t len;
	uint32_t count;        /* chunks */
	struct hm_merkle_tree tree;
};

int hm_st_server_init(struct hm_st_server *s, uint64_t seq, const uint8_t *snap, uint64_t len);
void hm_st_server_free(struct hm_st_server *s);
/* Answer a request: the STATE_CHUNK payload into buf.  Returns its length,
 * or 0 when the request is not for this checkpoint (seq or digest), the
 * index is out of range, or cap is too small. */
size_t hm_st_serve(const struct hm_st_server *s, const struct hm_st_request *r, uint8_t *buf,
		   size_t cap);

/* ---- the fetching side --------------------------------------------------- */

/* total_len may be HM_ST_LEN_UNKNOWN: a CHECKPOINT carries only the digest,
 * and the digest commits to the length, so the first chunk that verifies
 * tells the length (until then only chunk 0 is asked for). */
#define HM_ST_LEN_UNKNOWN UINT64_MAX

struct hm_st_target {
	uint64_t seq;
	uint8_t digest[HM_DIGEST_LEN]; /* certified by 2f+1 CHECKPOINTs */
	uint64_t total_len;            /* or HM_ST_LEN_UNKNOWN */
};

struct hm_st_params {
	uint32_t peers;          /* bitmap of replica ids to ask (not ourselves) */
	uint32_t timeout_ms;     /* per request; default 500 */
	uint32_t max_inflight;   /* requests outstanding at once; default 8 */
	uint32_t max_attempts;   /* per chunk before giving up; default 8 * peers */
};

enum hm_st_state { HM_ST_RUNNING, HM_ST_DONE, HM_ST_FAILED };

enum hm_st_failure {
	HM_ST_FAIL_NONE = 0,
	HM_ST_FAIL_NO_PEERS,     /* every peer was found faulty (or none given) */
	HM_ST_FAIL_ATTEMPTS,     /* a chunk timed out max_attempts times */
	HM_ST_FAIL_BAD_TARGET,   /* total_len above HM_ST_MAX_STATE */
	HM_ST_FAIL_NOMEM,
	HM_ST_FAIL_DIGEST,       /* assembled state does not hash to the target (a bug) */
};

/* What on_chunk made of a chunk. */
enum hm_st_verdict {
	HM_ST_ACCEPTED,          /* verified and stored */
	HM_ST_DUPLICATE,         /* valid, but already had it */
	HM_ST_STALE,             /* for another checkpoint (seq or digest), ignored */
	HM_ST_BAD_CHUNK,         /* claims the target but does not verify: sender blamed */
	HM_ST_FROM_FAULTY,       /* sender already blamed: ignored */
	HM_ST_NOT_RUNNING,       /* the transfer is over */
};

/* A request to send: STATE_REQUEST(req) to replica peer. */
struct hm_st_send {
	uint32_t peer;
	struct hm_st_request req;
};

struct hm_st_peer_stats {
	uint32_t requested, accepted, timeouts, bad;
};

/* Per-peer load and how unresponsive it has been lately. */
struct hm_st_peer_load {
	uint32_t inflight;
	uint32_t consecutive_timeouts;
};

struct hm_st_slot;

struct hm_st {
	enum hm_st_state state;
	enum hm_st_failure failure;
	struct hm_st_target target;
	struct hm_st_params params;
	uint32_t count;          /* chunks */
	uint32_t done;           /* chunks verified */
	uint32_t inflight;
	uint32_t faulty;         /* bitmap of blamed peers */
	uint32_t rr;             /* round-robin position */
	uint32_t next_missing;   /* no missing chunk below this index */
	uint8_t *buf;            /* the state being assembled */
	struct hm_st_slot *slots;
	struct hm_st_peer_stats stats[HM_MAX_REPLICAS];
	struct hm_st_peer_load load[HM_MAX_REPLICAS];
};

int hm_st_start(struct hm_st *st, const struct hm_st_target *t, const struct hm_st_params *p);
void hm_st_free(struct hm_st *st);

/*
 * Advance to time now: requests that timed out go back to be asked of
 * another peer, then new requests are handed out (up to max_inflight),
 * spread across the peers.  Returns how many were written to out (at most
 * cap); call again if it returned cap.
 */
size_t hm_st_tick(struct hm_st *st, uint64_t now_ms, struct hm_st_send *out, size_t cap);
/* The earliest time a request times out (UINT64_MAX when none is out). */
uint64_t hm_st_next_deadline(const struct hm_st *st);
/* A decoded chunk from replica from (authenticated by its link MAC). */
enum hm_st_verdict hm_st_on_chunk(struct hm_st *st, uint32_t from, const struct hm_st_chunk *c);
/* A STATE_CHUNK payload from replica from: decoded, and blamed if malformed. */
enum hm_st_verdict hm_st_on_payload(struct hm_st *st, uint32_t from, const uint8_t *p, size_t len);
/* After HM_ST_DONE: hand over the assembled snapshot (the caller frees it). */
uint8_t *hm_st_take(struct hm_st *st, uint64_t *len);

const char *hm_st_verdict_name(enum hm_st_verdict v);
const char *hm_st_failure_name(enum hm_st_failure f);

#endif /* HM_STATE_TRANSFER_H */
