/* SPDX-License-Identifier: MIT */
/*
 * An in-process simulated network: n replicas (struct hm_node, the same code
 * the daemon runs) and closed-loop clients (struct hm_client), real keys,
 * signatures and MACs, a virtual clock, and a seeded schedule of delays,
 * reordering, duplication, loss and crashes.  Runs are deterministic for a
 * seed, so a failing seed replays exactly.
 *
 * The simulator checks safety as it goes: no two correct replicas (not
 * marked faulty) ever execute different batches at one sequence number.
 */
#ifndef HM_SIM_H
#define HM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "testing/byzantine.h"
#include "client/client.h"
#include "common/config.h"
#include "replica/node.h"

struct hm_sim;

struct hm_sim_opts {
	uint32_t n;                 /* replicas, n >= 3f + 1 */
	uint32_t f;
	uint32_t clients;
	uint32_t ops_per_client;
	uint64_t seed;
	uint32_t batch_size;        /* 1 turns batching off */
	uint32_t batch_timeout_ms;
	uint32_t pipeline_depth;
	uint32_t checkpoint_interval;
	uint32_t window;
	uint32_t min_delay_us, max_delay_us; /* per message, uniform */
	uint32_t duplicate_pct;     /* chance a message is delivered twice */
	uint32_t loss_pct;          /* chance a message is lost */
	uint32_t client_timeout_ms;
	uint32_t view_change_timeout_ms; /* 0: view changes off */
	/* Each replica keeps its checkpoints and committed log in its own
	 * directory under a temporary one (removed by hm_sim_free), so it can
	 * be restarted from disk (hm_sim_restart). */
	bool persist;
	/* The replicated service: HM_SIM_KV (default) or HM_SIM_KV_SKEW, the
	 * key-value store with a time-skew admission check (testing/kv_skew.h):
	 * a request's agreed time is its client timestamp, which the clients
	 * set to the virtual time; replica i refuses one more than skew_us from
	 * its clock, the virtual time plus an offset drawn per replica from the
	 * seed within +-max_clock_offset_us.  A client whose op is still
	 * pending skew_us / 2 after it sent it abandons it and sends the same
	 * kind of op again under a fresh timestamp (as the DNS daemon
	 * re-observes); the abandoned op may or may not execute, and the read
	 * checks treat a PUT of it as one still in flight. */
	uint32_t service;
	uint64_t skew_us;
	uint32_t max_clock_offset_us;
	/* When a client gives an op up (0: skew_us / 2).  A new request no
	 * longer restarts the backups' view-change timers (pend_live()), but
	 * a test whose point is a view change may still want the op it
	 * started with to live through it. */
	uint64_t skew_resend_us;
	/* network.encryption_required / message_compression: the link layer
	 * (common/link_crypt.h) on every replica link. */
	bool encryption_required, message_compression;
	/* performance.fast_path_enabled: commit on all n PREPAREs
	 * (docs/protocol.md, "The fast path"); attempted from the start. */
	bool fast_path;
	/* With fast_path, a mixed cluster (as during a rolling restart that
	 * switches it on): only the replicas in this bitmap run it (0: all). */
	hm_voters_t fast_path_only;
	/* security.signed_requests: clients sign, replicas verify (off: link
	 * MACs and vouches, docs/protocol.md "Requests: MACs and vouches"). */
	bool signed_requests;
};

enum hm_sim_service { HM_SIM_KV = 0, HM_SIM_KV_SKEW = 1 };

/* A test's hook on every datagram put on the wire (replica or client index
 * as in hm_sim_inject): return false to lose it. */
typedef bool (*hm_sim_filter)(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			      const uint8_t *buf, size_t len);

struct hm_sim_op {              /* one completed client operation */
	uint32_t client;
	uint64_t invoked_us, completed_us;
	uint8_t op[64];
	size_t op_len;
	uint8_t result[64];
	size_t result_len;
	uint64_t exec_seq;          /* the batch it executed in (the reply's) */
};

/* Fill opts with a small, fast default cluster (n = 4). */
void hm_sim_default_opts(struct hm_sim_opts *o);
struct hm_sim *hm_sim_new(const struct hm_sim_opts *o);
void hm_sim_free(struct hm_sim *s);

/* Crash (stop delivering to and from) or revive a replica now. */
void hm_sim_crash(struct hm_sim *s, uint32_t replica);
/* Restart a replica: fresh process state (core, vote counter, service),
 * recovered from its persisted files (opts.persist); it rejoins now.
 * Returns 0, or -1 without opts.persist or when its directory could not be
 * used. */
int hm_sim_restart(struct hm_sim *s, uint32_t replica);
/* The directory of a replica's persisted files (opts.persist), else NULL. */
const char *hm_sim_data_dir(const struct hm_sim *s, uint32_t replica);
/* Batches a replica executed itself (not skipped by a state transfer). */
uint64_t hm_sim_executed_count(const struct hm_sim *s, uint32_t replica);
/* Run until every client finished its ops or the virtual clock passes
 * limit_us; true when every client finished. */
bool hm_sim_run(struct hm_sim *s, uint64_t limit_us);
/* Deliver what is still in flight (no new client ops). */
void hm_sim_settle(struct hm_sim *s, uint64_t limit_us);
/* Schedule a crash of a replica once `after_ops` operations completed. */
void hm_sim_crash_after(struct hm_sim *s, uint32_t replica, uint64_t after_ops);

/* Faulty replicas.  The filter sees every datagram (one filter per sim).
 * An equivocator's PRE-PREPAREs to the upper half of the other replicas
 * carry the null batch instead (re-signed and re-MACed: a real second
 * message).  A replica marked faulty is left out of the agreement check. */
void hm_sim_set_filter(struct hm_sim *s, hm_sim_filter f, void *ctx);
void hm_sim_set_equivocator(struct hm_sim *s, uint32_t replica);
/* A replica whose PREPAREs carry a corrupted signature under a valid MAC
 * (the vote counts; a certificate built from it will not verify). */
void hm_sim_set_bad_vote_signer(struct hm_sim *s, uint32_t replica);
void hm_sim_mark_faulty(struct hm_sim *s, uint32_t replica);
/* A failing disk under a replica (opts.persist): its persistence fails as
 * the hook says (core/persist.h, struct hm_persist_inject: the n-th write,
 * fsync or rename, or all while a flag is set; NULL: a good disk again),
 * from now on and after restarts.  The replica is correct: it must stop
 * acknowledging while it cannot persist, and recover when the disk does.
 * Returns -1 without opts.persist. */
int hm_sim_set_disk_fault(struct hm_sim *s, uint32_t replica,
			  const struct hm_persist_inject *inj);
/* A replica whose STATE_CHUNKs carry a flipped data byte, re-signed and
 * re-MACed (a well-formed message only it can have sent). */
void hm_sim_set_bad_chunk_server(struct hm_sim *s, uint32_t replica);
/* Client `client`'s datagrams to the replicas in `replicas` arrive with a
 * bad link MAC (a faulty client, or keys it got wrong). */
void hm_sim_set_bad_client_macs(struct hm_sim *s, uint32_t client, hm_voters_t replicas);
/* A Byzantine replica through byzantine.c, as the daemon's --byzantine
 * (the sim owns the state; crash mode stops the replica when due).  Marks
 * it faulty.  0, or -1 on allocation failure. */
int hm_sim_set_byzantine(struct hm_sim *s, uint32_t replica, const struct hm_byz_opts *o);
struct hm_byz *hm_sim_byzantine(struct hm_sim *s, uint32_t replica);
/* Twins: a second instance of `replica` with the same key and id.  Replicas
 * in the bitmap `peers` talk to the twin, the others to the original, and
 * both send to everyone; odd-numbered clients reach the twin, even ones the
 * original (as primary the two propose different batches for one slot).  One twin per sim; marks the
 * replica faulty.  hm_sim_set_twin_peers moves the split. */
int hm_sim_add_twin(struct hm_sim *s, uint32_t replica, hm_voters_t peers);
void hm_sim_set_twin_peers(struct hm_sim *s, hm_voters_t peers);
/* A replica's clock offset for HM_SIM_KV_SKEW (default: drawn within
 * +-max_clock_offset_us). */
void hm_sim_set_clock_offset(struct hm_sim *s, uint32_t replica, int64_t offset_us);
/* Twins, finer: a replica in to_twin reaches the twin, one in to_orig the
 * original, one in both reaches both (the same datagram delivered twice),
 * one in neither reaches neither. */
void hm_sim_set_twin_routes(struct hm_sim *s, hm_voters_t to_twin, hm_voters_t to_orig);
/* Take the twin out for good (it stops; the original is the only instance
 * again and gets every message and client). */
void hm_sim_remove_twin(struct hm_sim *s);
/* The endpoint index the twin sends from (a filter's `from`), or UINT32_MAX. */
uint32_t hm_sim_twin_endpoint(const struct hm_sim *s);
/* Bring a crashed replica back with the state it had (messages sent to it
 * meanwhile are lost). */
void hm_sim_revive(struct hm_sim *s, uint32_t replica);
bool hm_sim_crashed(const struct hm_sim *s, uint32_t replica);
bool hm_sim_faulty(const struct hm_sim *s, uint32_t replica);
/* Virtual time from the last crash (or hm_sim_mark_fault) to the first
 * batch executed in a view above the one then current; 0 if none yet. */
void hm_sim_mark_fault(struct hm_sim *s);
uint64_t hm_sim_recovery_us(const struct hm_sim *s);
/* The digest replica executed at seq; false if it did not (yet). */
bool hm_sim_executed_digest(const struct hm_sim *s, uint32_t replica, uint64_t seq,
			    uint8_t out[HM_DIGEST_LEN]);

/* Inject a raw datagram at a replica as if from replica `from` (or from
 * client index `from - n` when from >= n). */
void hm_sim_inject(struct hm_sim *s, uint32_t to, uint32_t from, const void *buf, size_t len);

/* Results and checks. */
uint64_t hm_sim_now(const struct hm_sim *s);
uint64_t hm_sim_completed(const struct hm_sim *s);
bool hm_sim_safety_ok(const struct hm_sim *s, char *why, size_t len);
/* True when every live replica executed the same sequence and has the same
 * state digest. */
bool hm_sim_states_agree(const struct hm_sim *s, char *why, size_t len);
/* Every GET returned the value of the latest PUT to its key that completed
 * before the GET was invoked, or of a PUT concurrent with it. */
bool hm_sim_reads_ok(const struct hm_sim *s, char *why, size_t len);

/* Linearizability of the KV history against the order the replicas agreed
 * on: an op that completed before another was invoked executed in an
 * earlier batch, and every GET returns the value of the last PUT to its key
 * in that order (a PUT in the GET's own batch may come either side; a PUT
 * still in flight at the end may have been seen).  Stronger than
 * hm_sim_reads_ok, which only uses real time. */
bool hm_sim_linearizable(const struct hm_sim *s, char *why, size_t len);
/* The completed operations, in completion order. */
const struct hm_sim_op *hm_sim_history(const struct hm_sim *s, size_t *n);

/* Ops abandoned by their client (HM_SIM_KV_SKEW): executed or not. */
uint64_t hm_sim_abandoned(const struct hm_sim *s);
/* Requests the replicas' admission checks refused (HM_SIM_KV_SKEW). */
uint64_t hm_sim_refused(const struct hm_sim *s);

/* Print the run's parameters and every replica's and client's state. */
void hm_sim_dump(const struct hm_sim *s, FILE *out);

struct hm_node *hm_sim_node(struct hm_sim *s, uint32_t replica);
/* A replica's service (a test may change it behind the core's back). */
struct hm_service *hm_sim_service(struct hm_sim *s, uint32_t replica);
struct hm_client *hm_sim_client(struct hm_sim *s, uint32_t client);
const struct hm_keypair *hm_sim_client_keys(const struct hm_sim *s, uint32_t client);
const struct hm_keypair *hm_sim_replica_keys(const struct hm_sim *s, uint32_t replica);
const struct hm_config *hm_sim_config(const struct hm_sim *s);

#endif /* HM_SIM_H */
