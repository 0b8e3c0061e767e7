/* SPDX-License-Identifier: MIT */
/*
 * Prometheus text exposition (format 0.0.4) of a replica's metrics, served
 * over HTTP by libmicrohttpd in the daemon's own epoll loop (no thread: the
 * metrics are rendered from the replica's state between two events, so
 * nothing needs a lock).
 *
 * Two layers: a small writer for families and samples (HELP, TYPE, label
 * escaping), and the rendering of a replica snapshot (the seed's
 * ByzantineMetrics and the dataplane's drop counters) filled in by the
 * daemon.  Both are pure; only hm_metrics_server does I/O.
 */
#ifndef HM_METRICS_H
#define HM_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"
#include "core/pbft.h"
#include "detect/peer_state.h"
#include "replica/node.h"
#include "service/dns/dns_daemon.h"

/* ---- the writer ---- */

struct hm_mtext {
	char *buf;
	size_t len, cap;
	bool failed;        /* out of memory: the text is incomplete */
};

void hm_mtext_free(struct hm_mtext *t);
/* # HELP and # TYPE lines of a family (type: counter, gauge, ...). */
void hm_mtext_family(struct hm_mtext *t, const char *name, const char *type, const char *help);
/* One sample: name{labels} value.  labels is NULL or pairs of strings
 * ending with NULL: "peer", "2", "reason", "bad_mac", NULL.  Values are
 * escaped as the format requires (\\, \", \n). */
void hm_mtext_sample(struct hm_mtext *t, const char *name, double value, ...)
	__attribute__((sentinel));

/* ---- a replica's snapshot ---- */

#define HM_METRIC_PEERS (HM_MAX_REPLICAS + 2) /* replicas, "clients", "unknown" */

struct hm_replica_metrics {
	uint32_t id, n, f;
	const char *dataplane;
	uint64_t view, view_changes;
	/* the core's counters (pbft_stats) */
	uint64_t vc_started, vc_installed, catchups_started, catchups_done, catchup_timeouts;
	uint64_t vc_by_reason[PBFT_VC_REASONS];
	uint64_t rounds;                    /* batches executed */
	uint64_t ops;                       /* operations executed */
	/* consensus latency, start to execution: a histogram (not cumulative
	 * here; the renderer sums), its sum and count */
	uint64_t latency_buckets[HM_LATENCY_BUCKETS];
	double latency_sum_seconds;
	uint64_t latency_count;
	uint64_t quorums;
	bool fast_path_enabled;
	uint64_t fast_path_rounds;          /* batches committed on the fast path */
	uint64_t normal_path_rounds;        /* ... on 2f+1 COMMITs */
	double fast_path_seconds;           /* sums of PRE-PREPARE-to-commit times */
	double normal_path_seconds;
	bool fast_path_allowed;             /* every peer above the trust threshold */
	uint32_t batch_size;                /* configured */
	double batch_efficiency;            /* ops per batch / batch_size */
	uint64_t messages_in;               /* datagrams accepted, all senders */
	uint64_t low_watermark, high_watermark, last_executed;
	/* persistence (docs/persistence.md "Disk errors") */
	uint64_t persist_errors;            /* persistence calls that failed */
	bool persist_degraded;              /* replies held (damaged files or a disk failure) */
	bool persist_failing;               /* a disk failure: nothing of ours leaves */
	bool restart_silent;                /* restarted without an intact vote log */
	uint64_t vote_records_malformed;    /* refused by recovery (pbft_stats) */
	/* requests refused with a CONFLICT or STALE reply (MAC-only; pbft_stats) */
	uint64_t request_refusals, conflicting_requests;
	/* requests without signatures (pbft_auth.c; pbft_stats) */
	uint64_t vouches_sent, requests_vouched, requests_by_vouches, batches_held, bad_vouches;
	/* executed batches whose replies got their one signature (pbft_stats) */
	uint64_t reply_batches_signed;
	/* per replica */
	double reputation[HM_MAX_REPLICAS], historical[HM_MAX_REPLICAS];
	double latency_ms[HM_MAX_REPLICAS], participation[HM_MAX_REPLICAS];
	uint32_t indicators[HM_MAX_REPLICAS];
	hm_voters_t suspected;                 /* the two-indicator rule (never blocks) */
	uint8_t peer_state[HM_MAX_REPLICAS]; /* enum hm_peer_state */
	hm_voters_t blocked;
	hm_voters_t connected;                 /* heard from lately, link up */
	/* the trust graph (user/detect/trust_graph.h): [a][b] for a != b < n */
	double trust[HM_MAX_REPLICAS][HM_MAX_REPLICAS];
	uint64_t blocks, refusals;          /* policy decisions */
	/* equivocation proofs per peer: of its equivocations, sent by us and
	 * received (checked) from others; and those it sent us we refused */
	uint64_t proofs_sent[HM_MAX_REPLICAS], proofs_received[HM_MAX_REPLICAS];
	uint64_t proofs_refused[HM_MAX_REPLICAS];
	uint64_t accepted[HM_METRIC_PEERS];
	uint64_t drops[HM_METRIC_PEERS][HM_DROP_REASON_MAX];
	/* the DNS resolver, when byzantine_config.dns is set */
	bool has_dns;
	struct hm_dns_counters dns;
};

/* Every family of a replica's snapshot into t. */
void hm_metrics_render(struct hm_mtext *t, const struct hm_replica_metrics *m);

/* ---- the HTTP endpoint ---- */

struct hm_metrics_server;
typedef void (*hm_metrics_render_fn)(void *ctx, struct hm_mtext *t);

/* Listen on addr:port (IPv4 or IPv6 literal; port 0 picks one).  GET
 * /metrics renders through fn.  NULL with a message in err on failure. */
struct hm_metrics_server *hm_metrics_start(const char *addr, uint16_t port,
					   hm_metrics_render_fn fn, void *ctx, char *err,
					   size_t errlen);
/* An fd to epoll for readability; call hm_metrics_run when it is ready
 * (and now and then, for connection timeouts). */
int hm_metrics_fd(const struct hm_metrics_server *s);
void hm_metrics_run(struct hm_metrics_server *s);
uint16_t hm_metrics_port(const struct hm_metrics_server *s);
uint64_t hm_metrics_requests(const struct hm_metrics_server *s);
void hm_metrics_stop(struct hm_metrics_server *s);

#endif /* HM_METRICS_H */
