// SPDX-License-Identifier: MIT
/*
 * hypermeshd: one HyperMesh replica.  One epoll loop over the UDP socket, a
 * timerfd for the core's deadline, a signalfd for SIGTERM/SIGINT/SIGQUIT
 * (stop, detaching what it attached) and SIGHUP (re-checks the file, never
 * stops), a unix control socket (one-line requests: status, block list,
 * block lift ID, metrics; no request means status), the fault detector's
 * judge timer and the Prometheus endpoint (libmicrohttpd, in this loop).
 * Under systemd (Type=notify) it reports READY=1 once it serves and
 * STOPPING=1 when it stops (daemon/service_manager.c).
 *
 *   hypermeshd -c CONFIG [--id N] [--key FILE] [--data-dir DIR] [--log-level L]
 *              [--control-socket PATH]
 *   hypermeshd --check-config CONFIG [--id N] [--key FILE]
 *   hypermeshd --cleanup CONFIG      (what a crashed replica left attached)
 *   hypermeshd --version
 *
 * Dataplane: socket mode counts votes in the node; `dataplane: xdp` opens
 * the XDP controller (dataplane/xdp_dataplane.c), installs its vote counter
 * in the node (dataplane/xdp_votes.c) and serves its ring buffer, progress
 * poll and netlink events here.
 *
 * Built twice from this file: build/hypermeshd, the shipped daemon, links
 * no test code and refuses --byzantine; build/hypermeshd-test (-DHM_TESTING,
 * with libhm_testing.a) adds --byzantine, the test-only misbehaviour of
 * user/testing/byzantine.c installed as the node's send-path hook.
 */
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/config.h"
#include "common/crypto.h"
#include "service/dns/dns_chain.h"
#include "service/dns/dns_daemon.h"
#include "service/dns/dns_service.h"
#include "service/ct/ct_service.h"
#include "detect/detector.h"
#include "service/kv/kv.h"
#include "common/log.h"
#include "detect/metrics.h"
#include "replica/node.h"
#include "core/service_mux.h"
#include "replica/status.h"
#include "common/wire.h"
#include "dataplane/xdp_dataplane.h"
#include "dataplane/xdp_votes.h"
#include "daemon/admin.h"
#include "daemon/send_queue.h"
#include "daemon/service_manager.h"
#include "hm_version.h"
#include "hm_dns_xdp.h"
#ifdef HM_TESTING
#include "testing/byzantine.h"
#endif

#define RECV_BATCH 64
#define SOCKET_BUFFER (8 << 20)

struct daemon {
	struct hm_config cfg;
	struct hm_keypair keys;
	struct hm_service service;
	struct hm_node node;
	int udp, timer, signals, control, epoll;
	bool xdp;                  /* dataplane: xdp */
	struct hm_xdp_dp dp;
	int events, poll_timer;    /* xdp: ring buffer epoll fd, progress poll */
	int netlink;               /* xdp: route/neighbour/link events */
	uint64_t polls;
	char control_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	uint64_t send_errors;
	struct hm_send_queue *sendq; /* what one event sends, in one sendmmsg */
	uint64_t sighups;          /* SIGHUPs handled (each one logged) */
#ifdef HM_TESTING
	struct hm_byz *byz;        /* --byzantine: tests only */
#endif
	struct hm_detector det;    /* fault detection and block policy */
	int judge_timer;
	struct hm_metrics_server *metrics;
	int metrics_fd;
	struct hm_dns_anchors *dns_anchors; /* rule (a), shared by service and daemon */
	struct hm_dns_daemon *dns;         /* NULL without byzantine_config.dns */
};

static void usage(FILE *out)
{
	fprintf(out, "usage: hypermeshd -c CONFIG [--id N] [--key FILE] [--data-dir DIR] "
		     "[--log-level error|warn|info|debug]\n"
		     "                  [--log-format kv|json] [--control-socket PATH]\n"
		     "       hypermeshd --check-config CONFIG [--id N] [--key FILE]\n"
		     "       hypermeshd --cleanup CONFIG\n"
		     "       hypermeshd --version\n"
		     "  The id, key, data dir, log level and log format default to the config's\n"
		     "  node section.\n"
		     "  The control socket defaults to $RUNTIME_DIRECTORY/control.sock under systemd,\n"
		     "  else DATA_DIR/control.sock.  --check-config validates and exits: 0 valid,\n"
		     "  1 not.  --cleanup removes the XDP/TC programs and pins a replica that died\n"
		     "  without its shutdown left (the unit's ExecStopPost).\n"
		     "  Exit status: 0 stopped by a signal, 1 failed, 2 usage or a bad\n"
		     "  configuration (hypermeshd(8)).\n"
#ifdef HM_TESTING
		     "  Tests only: --byzantine MODE[:ARG][,MODE...] --i-know-this-is-a-test (or\n"
		     "  HM_BYZANTINE_TESTS=1) makes this replica misbehave (docs/faults.md).\n"
#endif
		     );
}

/* --byzantine, in the test build (no-ops in the shipped one): further down. */
static void add_byzantine_status(struct daemon *d, json_t *status);
static void byzantine_crash_due(struct daemon *d);

/* ---- transport -------------------------------------------------------- */

static void udp_sendto(void *ctx, const void *buf, size_t len, const struct sockaddr *to,
		       socklen_t tolen)
{
	struct daemon *d = ctx;

	hm_send_queue_add(d->sendq, buf, len, to, tolen);
}

/* The end of an event: what it sent leaves, in one system call. */
static void flush_sends(struct daemon *d)
{
	uint64_t before = d->send_errors;
	int err;

	hm_send_queue_flush(d->sendq);
	d->send_errors = hm_send_queue_errors(d->sendq, &err);
	if (d->send_errors > before && (before == 0 || before / 1000 != d->send_errors / 1000))
		hm_warn("sendmmsg: %s (%llu send errors so far)", strerror(err),
			(unsigned long long)d->send_errors);
}

static int open_udp(struct daemon *d)
{
	const struct hm_member *me = &d->cfg.members[d->node.id];
	int size = SOCKET_BUFFER;

	d->udp = socket(me->addr.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->udp < 0 || !(d->sendq = hm_send_queue_new(d->udp)))
		return -1;
	/* Bursts of votes arrive together; a small buffer would drop them. */
	setsockopt(d->udp, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size));
	setsockopt(d->udp, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof(size));
	if (bind(d->udp, (const struct sockaddr *)&me->addr, me->addr_len) < 0) {
		hm_err("cannot bind %s port %u: %s", me->address, me->port, strerror(errno));
		return -1;
	}
	return 0;
}

static void receive_all(struct daemon *d)
{
	static uint8_t bufs[RECV_BATCH][HM_MAX_DATAGRAM + 1];
	struct sockaddr_storage from[RECV_BATCH];
	struct mmsghdr msgs[RECV_BATCH];
	struct iovec iov[RECV_BATCH];

	for (;;) {
		int n;

		for (int i = 0; i < RECV_BATCH; i++) {
			iov[i] = (struct iovec){ .iov_base = bufs[i], .iov_len = sizeof(bufs[i]) };
			msgs[i].msg_hdr = (struct msghdr){ .msg_name = &from[i],
							   .msg_namelen = sizeof(from[i]),
							   .msg_iov = &iov[i], .msg_iovlen = 1 };
		}
		n = recvmmsg(d->udp, msgs, RECV_BATCH, MSG_DONTWAIT, NULL);
		if (n <= 0)
			return;
		hm_node_tick(&d->node, hm_mono_us());
		hm_node_burst_begin(&d->node);
		for (int i = 0; i < n; i++)
			hm_node_receive(&d->node, bufs[i], msgs[i].msg_len,
					(struct sockaddr *)&from[i], msgs[i].msg_hdr.msg_namelen);
		hm_node_burst_end(&d->node);
		if (n < RECV_BATCH)
			return;
	}
}

/* ---- timer ------------------------------------------------------------ */

static void arm_timer(struct daemon *d)
{
	uint64_t deadline = hm_node_next_deadline(&d->node);
	struct itimerspec its = { 0 };

	if (deadline) {
		/* A deadline already past still needs a wake-up: 1 µs from now. */
		uint64_t now = hm_mono_us();

		if (deadline <= now)
			deadline = now + 1;
		its.it_value.tv_sec = (time_t)(deadline / 1000000);
		its.it_value.tv_nsec = (long)(deadline % 1000000) * 1000;
	}
	timerfd_settime(d->timer, TFD_TIMER_ABSTIME, &its, NULL);
}

/* ---- control socket --------------------------------------------------- */

/* The control socket at d->control_path (service_manager.c chose it; ""
 * for none), and the data dir it may live in. */
static int open_control(struct daemon *d, const char *data_dir)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };

	if (data_dir[0] && mkdir(data_dir, 0700) < 0 && errno != EEXIST) {
		hm_err("cannot create data_dir %s: %s", data_dir, strerror(errno));
		return -1;
	}
	if (!d->control_path[0]) {
		d->control = -1;
		return 0;
	}
	unlink(d->control_path);
	memcpy(addr.sun_path, d->control_path, sizeof(addr.sun_path));
	d->control = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (d->control < 0 || bind(d->control, (struct sockaddr *)&addr, sizeof(addr)) < 0 ||
	    listen(d->control, 8) < 0) {
		hm_err("control socket %s: %s", d->control_path, strerror(errno));
		d->control_path[0] = 0; /* not ours: leave it on exit */
		return -1;
	}
	hm_info("control socket: %s", d->control_path);
	return 0;
}

static json_t *partitions_json(struct daemon *d)
{
	json_t *o = json_object();

	for (uint32_t i = 0; i < d->node.n; i++)
		if (d->dp.partitions[i]) {
			char key[16];

			snprintf(key, sizeof(key), "%u", i);
			json_object_set_new(o, key, json_integer((json_int_t)d->dp.partitions[i]));
		}
	return o;
}

/* xdp mode: how the programs are attached, and the kernel's counters,
 * added into the totals (what XDP dropped never reached the node). */
static void add_xdp_status(struct daemon *d, json_t *status)
{
	json_t *x = json_object(), *stats = json_object();
	json_t *drops = json_object_get(status, "drops");
	struct hm_tc_stats tc = { 0 };

	for (uint32_t i = 0; i < HM_XDP_NSTATS; i++) {
		struct hm_node_stats st;
		char key[16];

		if (hm_xdp_dp_node_stats(&d->dp, i, &st) < 0)
			continue;
		for (int r = 0; r < HM_DROP_REASON_MAX; r++) {
			json_t *t = json_object_get(drops, hm_drop_reason_name(r));

			json_integer_set(t, json_integer_value(t) + (json_int_t)hm_drops(st.drops)[r]);
		}
		if (!st.total_messages)
			continue;
		if (i < HM_MAX_REPLICAS)
			snprintf(key, sizeof(key), "%u", i);
		else
			snprintf(key, sizeof(key), "%s",
				 i == HM_XDP_STATS_CLIENTS ? "clients" : "unknown");
		json_object_set_new(stats, key, json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:o}",
			"total_messages", (json_int_t)st.total_messages,
			"invalid_signatures", (json_int_t)st.invalid_signatures,
			"timing_violations", (json_int_t)st.timing_violations,
			"contradictory_responses", (json_int_t)st.contradictory_responses,
			"consecutive_faults", (json_int_t)st.consecutive_faults,
			"max_view_seen", (json_int_t)st.max_view_seen,
			"drops", hm_drops_json((const uint64_t *)&st.drops)));
	}
	hm_xdp_dp_tc_stats(&d->dp, &tc);
	json_object_set_new(x, "interface", json_string(d->dp.ifname));
	json_object_set_new(x, "attach", json_string(hm_xdp_attach_name(d->dp.how)));
	json_object_set_new(x, "mode", json_string(d->dp.xdp_mode));
	json_object_set_new(x, "tc", json_string(d->dp.tc_adopted ? "adopted" : "attached"));
	json_object_set_new(x, "pin_dir", json_string(d->dp.pin_dir));
	json_object_set_new(x, "fanout_peers", json_integer(d->dp.tc_peers));
	json_object_set_new(x, "peers_progress",
			    json_integer((json_int_t)hm_xdp_dp_progress(&d->dp, d->node.n)));
	json_object_set_new(x, "partitions", partitions_json(d));
	json_object_set_new(x, "policy_errors", json_integer((json_int_t)d->dp.policy_errors));
	json_object_set_new(x, "node_stats", stats);
	json_object_set_new(x, "tc_stats", json_pack("{s:I, s:I, s:I, s:I, s:I, s:I}",
		"fanouts", (json_int_t)tc.fanouts, "copies", (json_int_t)tc.copies,
		"errors", (json_int_t)tc.errors, "stamped", (json_int_t)tc.stamped,
		"unknown_dst", (json_int_t)tc.unknown_dst, "not_handled", (json_int_t)tc.not_handled));
	json_object_set_new(status, "xdp", x);
}

/* ---- persistence and recovery (docs/persistence.md) --------------------- */

/* Checkpoints and the committed log live in <data_dir>/state; recover from
 * them before the first message.  Without a data_dir the replica keeps
 * nothing (it recovers by state transfer alone). */
static int open_state(struct daemon *d, const char *data_dir)
{
	char dir[PATH_MAX], err[512];
	struct timespec a, b;
	double ms;

	if (!data_dir[0]) {
		hm_warn("no data_dir: nothing persisted (no vote log); a restarted replica "
			"recovers by state transfer but forgets its votes without knowing it "
			"restarted, so it counts among the f faulty");
		return 0;
	}
	if (snprintf(dir, sizeof(dir), "%s/state", data_dir) >= (int)sizeof(dir)) {
		hm_err("data_dir %s is too long", data_dir);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &a);
	hm_node_tick(&d->node, hm_mono_us());
	if (hm_node_open_state(&d->node, dir, NULL, err, sizeof(err)) < 0) {
		hm_err("state in %s: %s", dir, err);
		return -1;
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
	/* scripts/bench_recovery.sh reads this line */
	hm_info("recovered: %s, checkpoint %llu, %llu log records replayed, last executed %llu, "
		"in %.1f ms", hm_recovery_status_name(d->node.recovery_status),
		(unsigned long long)pbft_low_watermark(d->node.core),
		(unsigned long long)(d->node.recovered_seq - pbft_low_watermark(d->node.core)),
		(unsigned long long)d->node.recovered_seq, ms);
	if (pbft_stats(d->node.core)->vote_records_malformed)
		hm_warn("vote log in %s: %llu records malformed past their checksums, ignored "
			"(a bug or a collision: please report it)", dir,
			(unsigned long long)pbft_stats(d->node.core)->vote_records_malformed);
	if (d->node.recovery_status == HM_REC_CORRUPT)
		hm_warn("state files in %s are damaged: fetching the state from the peers; "
			"no replies until the next stable checkpoint repairs them", dir);
	if (d->node.restart_silent)
		hm_warn("vote log %s (%s): restarted without knowing what it voted, so the "
			"silent rule applies: no PRE-PREPARE, PREPARE or COMMIT up to seq %llu and "
			"not leading view %llu; until then this replica counts among the f faulty",
			hm_votes_status_name(d->node.votes_status),
			d->node.votes_status == HM_VOTES_CORRUPT
				? hm_persist_fault_name(d->node.votes_problem_fault)
				: "no vote file",
			(unsigned long long)pbft_silent_until(d->node.core),
			(unsigned long long)pbft_view(d->node.core));
	return 0;
}

/* Persistence and state transfer, for hmctl status and the tests. */
static void add_recovery_status(const struct daemon *d, json_t *status)
{
	const struct hm_node *nd = &d->node;
	const struct pbft_stats *st = pbft_stats(nd->core);

	json_object_set_new(status, "recovery", json_pack(
		"{s:s, s:s, s:b, s:I, s:I, s:I, s:I, s:b, s:I, s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i, "
		"s:I}",
		"status", nd->persist ? hm_recovery_status_name(nd->recovery_status) : "off",
		"vote_log", nd->persist ? hm_votes_status_name(nd->votes_status) : "off",
		"restart_silent", nd->restart_silent,
		"silent_until", (json_int_t)pbft_silent_until(nd->core),
		"votes_held", (json_int_t)nd->votes_held,
		"vote_syncs", (json_int_t)(nd->persist ? hm_persist_vote_syncs(nd->persist) : 0),
		"readies", (json_int_t)nd->readies,
		"persist_degraded", nd->persist_degraded,
		"recovered_seq", (json_int_t)nd->recovered_seq,
		"transferring", pbft_transferring(nd->core),
		"persist_errors", (json_int_t)nd->persist_errors,
		"replies_held", (json_int_t)nd->replies_held,
		"state_transfers_started", (json_int_t)st->state_transfers_started,
		"state_transfers_done", (json_int_t)st->state_transfers_done,
		"state_transfers_failed", (json_int_t)st->state_transfers_failed,
		"state_chunks_served", (json_int_t)st->state_chunks_served,
		"state_bad_chunks", (json_int_t)st->state_bad_chunks,
		"state_blamed", (int)st->state_blamed,
		"vote_records_malformed", (json_int_t)st->vote_records_malformed));
	/* Disk failures (docs/persistence.md "Disk errors"). */
	{
		json_t *rec = json_object_get(status, "recovery");
		char err[256] = "";

		if (nd->persist_errno)
			snprintf(err, sizeof(err), "%s/%s: %s", nd->persist_dir ? nd->persist_dir : "",
				 nd->persist_file, strerror(nd->persist_errno));
		json_object_set_new(rec, "persist_failed", json_boolean(nd->persist_failed));
		json_object_set_new(rec, "persist_error", json_string(err));
		json_object_set_new(rec, "persist_retries", json_integer((json_int_t)nd->persist_retries));
		json_object_set_new(rec, "persist_recoveries",
				    json_integer((json_int_t)nd->persist_recoveries));
	}
}

static json_t *status_json(struct daemon *d)
{
	json_t *status = hm_status_json(&d->node, d->xdp ? "xdp" : "socket");

	if (d->xdp)
		add_xdp_status(d, status);
	add_recovery_status(d, status);
	json_object_set_new(status, "send_errors", json_integer((json_int_t)d->send_errors));
	json_object_set_new(status, "version", json_string(HM_RELEASE));
	/* Which request mode this replica runs (a rolling switch of
	 * security.signed_requests shows here replica by replica). */
	json_object_set_new(status, "signed_requests", json_boolean(d->cfg.signed_requests));
	json_object_set_new(status, "sighups", json_integer((json_int_t)d->sighups));
	add_byzantine_status(d, status);
	json_object_set_new(status, "last_stable_checkpoint",
			    json_integer((json_int_t)pbft_low_watermark(d->node.core)));
	json_object_set_new(status, "detection", hm_detector_json(&d->det, hm_mono_us()));
	if (d->dns)
		json_object_set_new(status, "dns", hm_dns_daemon_status(d->dns));
	return status;
}

/* The DNS access list and rate limits (docs/dns.md, "Access control"). */
static void render_dns_access(struct hm_dns_daemon *dns, struct hm_mtext *t)
{
	struct hm_dns_access_counters a;

	hm_dns_daemon_access(dns, &a);
	hm_mtext_family(t, "hypermesh_dns_refused_total", "counter",
			"DNS queries answered REFUSED by policy: reason acl (client outside "
			"dns.allow), rate_limit (over its prefix's rate, TCP), norec (RD=0 and "
			"not in the certified cache)");
	hm_mtext_sample(t, "hypermesh_dns_refused_total", (double)a.refused_acl, "reason", "acl", NULL);
	hm_mtext_sample(t, "hypermesh_dns_refused_total", (double)a.rate_refused, "reason",
			"rate_limit", NULL);
	hm_mtext_sample(t, "hypermesh_dns_refused_total", (double)a.norec_refused, "reason", "norec",
			NULL);
	hm_mtext_family(t, "hypermesh_dns_rate_limited_dropped_total", "counter",
			"DNS queries over UDP dropped for exceeding their client prefix's rate limit");
	hm_mtext_sample(t, "hypermesh_dns_rate_limited_dropped_total", (double)a.rate_dropped, NULL);
	hm_mtext_family(t, "hypermesh_dns_stale_served_total", "counter",
			"Expired certified DNS answers served within dns.serve_expired_s (EDE 3) "
			"while a fresh agreement ran");
	hm_mtext_sample(t, "hypermesh_dns_stale_served_total", (double)a.stale_served, NULL);
	hm_mtext_family(t, "hypermesh_dns_prefetch_total", "counter",
			"DNS prefetches (dns.prefetch: a hit in the last tenth of an answer's TTL) "
			"by result: opened, refreshed (a fresh agreed answer replaced the entry), "
			"failed (the entry kept until it expires)");
	hm_mtext_sample(t, "hypermesh_dns_prefetch_total", (double)a.prefetch_opened, "result",
			"opened", NULL);
	hm_mtext_sample(t, "hypermesh_dns_prefetch_total", (double)a.prefetch_refreshed, "result",
			"refreshed", NULL);
	hm_mtext_sample(t, "hypermesh_dns_prefetch_total", (double)a.prefetch_failed, "result",
			"failed", NULL);
	hm_mtext_family(t, "hypermesh_dns_tls_connections_total", "counter",
			"DNS over TLS connections accepted (dns.tls_port)");
	hm_mtext_sample(t, "hypermesh_dns_tls_connections_total", (double)a.tls_accepted, NULL);
	hm_mtext_family(t, "hypermesh_dns_tls_queries_total", "counter",
			"DNS queries received over TLS");
	hm_mtext_sample(t, "hypermesh_dns_tls_queries_total", (double)a.tls_queries, NULL);
	hm_mtext_family(t, "hypermesh_dns_tls_handshake_failures_total", "counter",
			"DNS over TLS connections closed before their handshake finished");
	hm_mtext_sample(t, "hypermesh_dns_tls_handshake_failures_total",
			(double)a.tls_handshake_failed, NULL);
}

/* The XDP DNS responder's counters (hm_dns_stats, summed over CPUs). */
static void render_dns_xdp(struct daemon *d, struct hm_mtext *t)
{
	static const struct { const char *name, *help; size_t off; } families[] = {
		{ "hypermesh_dns_xdp_hits_total", "DNS queries answered from XDP.",
		  offsetof(struct hm_dns_xdp_stats, hit) },
		{ "hypermesh_dns_xdp_misses_total", "DNS queries XDP parsed but had no answer for (passed up).",
		  offsetof(struct hm_dns_xdp_stats, miss) },
		{ "hypermesh_dns_xdp_expired_total", "DNS queries whose XDP answer had expired (passed up).",
		  offsetof(struct hm_dns_xdp_stats, expired) },
		{ "hypermesh_dns_xdp_passed_total", "DNS datagrams XDP does not answer (malformed, options, other opcodes).",
		  offsetof(struct hm_dns_xdp_stats, pass) },
		{ "hypermesh_dns_xdp_truncated_total", "XDP answers sent with TC (too long for the client's buffer).",
		  offsetof(struct hm_dns_xdp_stats, tc) },
		{ "hypermesh_dns_xdp_rrl_dropped_total", "XDP answers dropped by response rate limiting.",
		  offsetof(struct hm_dns_xdp_stats, rrl_dropped) },
		{ "hypermesh_dns_xdp_rrl_slipped_total", "XDP answers sent truncated by response rate limiting.",
		  offsetof(struct hm_dns_xdp_stats, rrl_slipped) },
		{ "hypermesh_dns_xdp_grow_failed_total", "XDP answers the frame could not grow to (passed up).",
		  offsetof(struct hm_dns_xdp_stats, grow_failed) },
		{ "hypermesh_dns_xdp_not_allowed_total", "DNS queries from clients outside dns.allow, passed up to be refused.",
		  offsetof(struct hm_dns_xdp_stats, not_allowed) },
	};
	struct hm_dns_xdp_stats st;

	if (!hm_dns_daemon_xdp_stats(d->dns, &st))
		return;
	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		hm_mtext_family(t, families[i].name, "counter", families[i].help);
		hm_mtext_sample(t, families[i].name,
				(double)*(const uint64_t *)((const char *)&st + families[i].off), NULL);
	}
}

static void render_metrics(void *ctx, struct hm_mtext *t)
{
	struct daemon *d = ctx;
	struct hm_replica_metrics *m = malloc(sizeof(*m));

	if (!m) {
		t->failed = true;
		return;
	}
	hm_detector_metrics(&d->det, m);
	if (d->dns) {
		m->has_dns = true;
		hm_dns_daemon_counters(d->dns, &m->dns);
	}
	hm_metrics_render(t, m);
	free(m);
	if (d->dns) {
		render_dns_access(d->dns, t);
		render_dns_xdp(d, t);
	}
}

/* The request line: what the client wrote before its newline or EOF, or
 * nothing if it wrote nothing for a moment (an old client that only
 * reads: it gets the status).  The whole wait is bounded, so a client that
 * trickles bytes cannot stall the replica. */
#define CONTROL_WAIT_MS 100
static void read_request(int fd, char *line, size_t cap)
{
	uint64_t until = hm_mono_us() + CONTROL_WAIT_MS * 1000;
	size_t len = 0;

	while (len < cap - 1) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		uint64_t now = hm_mono_us();
		ssize_t n;

		if (now >= until || poll(&p, 1, (int)((until - now + 999) / 1000)) <= 0)
			break;
		n = read(fd, line + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(line, '\n', len))
			break;
	}
	line[len] = 0;
	line[strcspn(line, "\r\n")] = 0;
}

static json_t *control_lift(struct daemon *d, const char *arg)
{
	char *end, err[128];
	unsigned long id = strtoul(arg, &end, 10);

	if (!*arg || *end)
		return json_pack("{s:s}", "error", "usage: block lift REPLICA_ID");
	if (hm_detector_lift(&d->det, (uint32_t)id, hm_mono_us(), err, sizeof(err)) < 0)
		return json_pack("{s:s}", "error", err);
	return json_pack("{s:i, s:o}", "lifted", (int)id, "blocks",
			 hm_detector_blocks_json(&d->det, hm_mono_us()));
}

/* ---- test-only misbehaviour -------------------------------------------- */

/* With HM_ALLOW_INJECT=1 in its environment (the tests), the replica can be
 * made to misbehave on request, signed with its own key and MACed on each
 * link, from its own address: what a Byzantine replica really sends.
 *   equivocation [to ID]  two COMMITs for one (view, seq), different
 *                         digests, to every peer or to replica ID only
 *   bad-signature         a COMMIT whose signature is not canonical
 *   forged-proof to ID    an EVIDENCE message whose proof names another
 *                         replica but is signed with our key (never checks)
 * The seq is the top of the window, where no honest vote is yet. */
static void inject_send(struct daemon *d, uint8_t *buf, size_t len, uint32_t to)
{
	for (uint32_t i = 0; i < d->node.n; i++) {
		const struct hm_member *m = &d->cfg.members[i];

		if (i == d->node.id || (to != UINT32_MAX && i != to))
			continue;
		hm_mac_stamp((struct hm_hdr *)buf, d->node.links[i].tx);
		udp_sendto(d, buf, len, (const struct sockaddr *)&m->addr, m->addr_len);
	}
}

/* A proof that replica `framed` sent two COMMITs, signed by us instead. */
static void inject_forged_proof(struct daemon *d, uint64_t view, uint64_t seq, uint32_t to)
{
	uint32_t framed = (d->node.id + 1) % d->node.n == to ? (to + 1) % d->node.n
							    : (d->node.id + 1) % d->node.n;
	uint8_t votes[2][HM_HDR_LEN], proof[HM_EVIDENCE_LEN], buf[HM_HDR_LEN + HM_EVIDENCE_LEN];
	uint8_t digest[HM_DIGEST_LEN];
	size_t len;

	for (int k = 0; k < 2; k++) {
		randombytes_buf(digest, sizeof(digest));
		hm_msg_build(votes[k], sizeof(votes[k]), HM_MSG_COMMIT, framed, view, seq, digest,
			     NULL, 0, &d->keys);
	}
	hm_evidence_build(proof, sizeof(proof), votes[0], votes[1]);
	len = hm_msg_build(buf, sizeof(buf), HM_MSG_EVIDENCE, d->node.id, view, 0, NULL, proof,
			   sizeof(proof), &d->keys);
	inject_send(d, buf, len, to);
	hm_warn("inject: sent a forged proof against replica %u to replica %u", framed, to);
}

static json_t *control_inject(struct daemon *d, const char *what)
{
	const char *allow = getenv("HM_ALLOW_INJECT");
	size_t wl = strcspn(what, " ");
	const char *rest = what + wl;
	bool equivocate = wl == 12 && strncmp(what, "equivocation", wl) == 0;
	bool forged = wl == 12 && strncmp(what, "forged-proof", wl) == 0;
	bool bad_sig = wl == 13 && strncmp(what, "bad-signature", wl) == 0;
	uint64_t view = pbft_view(d->node.core), seq = d->node.high;
	uint8_t buf[HM_HDR_LEN], digest[HM_DIGEST_LEN];
	uint32_t to = UINT32_MAX; /* every peer */
	char *end;

	if (!allow || strcmp(allow, "1") != 0)
		return json_pack("{s:s}", "error", "injection is off (HM_ALLOW_INJECT=1 turns it on)");
	if (*rest && strncmp(rest, " to ", 4) == 0) {
		unsigned long id = strtoul(rest + 4, &end, 10);

		if (end == rest + 4 || *end || id >= d->node.n || id == d->node.id)
			return json_pack("{s:s}", "error", "to: a peer's replica id");
		to = (uint32_t)id;
	} else if (*rest) {
		equivocate = forged = bad_sig = false;
	}
	if (!(equivocate || forged || bad_sig) || (forged && to == UINT32_MAX) ||
	    (bad_sig && to != UINT32_MAX))
		return json_pack("{s:s}", "error", "usage: inject equivocation [to ID]|bad-signature|"
				 "forged-proof to ID");
	if (seq <= d->node.low)
		seq = d->node.low + 1;
	if (forged) {
		inject_forged_proof(d, view, seq, to);
		return json_pack("{s:s, s:i}", "injected", "forged-proof", "to", (int)to);
	}
	for (int k = 0; k < (equivocate ? 2 : 1); k++) {
		randombytes_buf(digest, sizeof(digest));
		hm_msg_build(buf, sizeof(buf), HM_MSG_COMMIT, d->node.id, view, seq, digest, NULL, 0,
			     &d->keys);
		if (!equivocate)
			buf[HM_OFF_SIG + 63] |= 0xf0; /* S >= the group order */
		inject_send(d, buf, sizeof(buf), to);
	}
	hm_warn("inject: sent %s (COMMIT view %llu seq %llu) to %s",
		equivocate ? "equivocation" : "bad-signature",
		(unsigned long long)view, (unsigned long long)seq,
		to == UINT32_MAX ? "every peer" : "one peer");
	return json_pack("{s:s, s:I, s:I}", "injected",
			 equivocate ? "equivocation" : "bad-signature", "view", (json_int_t)view,
			 "seq", (json_int_t)seq);
}

/* The answer to one request line, as text (JSON, or metrics). */
static char *control_answer(struct daemon *d, const char *req)
{
	json_t *j;
	char *text;

	if (strcmp(req, "metrics") == 0) {
		struct hm_mtext t = { 0 };

		render_metrics(d, &t);
		return t.failed ? (hm_mtext_free(&t), NULL) : t.buf;
	}
	if (!*req || strcmp(req, "status") == 0)
		j = status_json(d);
	else if (strcmp(req, "block list") == 0)
		j = hm_detector_blocks_json(&d->det, hm_mono_us());
	else if (strncmp(req, "block lift ", 11) == 0)
		j = control_lift(d, req + 11);
	else if (strncmp(req, "inject ", 7) == 0)
		j = control_inject(d, req + 7);
	else
		j = json_pack("{s:s}", "error",
			      "unknown request: status, block list, block lift ID, metrics");
	text = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	return text;
}

/* Answer one connection; a slow client is cut off rather than allowed to
 * stall the replica. */
static void serve_control(struct daemon *d)
{
	int fd = accept4(d->control, NULL, NULL, SOCK_CLOEXEC);
	char req[256], *text;

	if (fd < 0)
		return;
	read_request(fd, req, sizeof(req));
	text = control_answer(d, req);
	if (text) {
		size_t len = strlen(text), off = 0;
		struct timeval tv = { .tv_sec = 1 };

		setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		while (off < len) {
			ssize_t w = write(fd, text + off, len - off);

			if (w <= 0)
				break;
			off += (size_t)w;
		}
		if (len && text[len - 1] != '\n' && write(fd, "\n", 1) < 0)
			hm_debug("control: client went away");
	}
	free(text);
	close(fd);
}

/* ---- fault detection and metrics --------------------------------------- */

static int open_detection(struct daemon *d)
{
	uint64_t ns = (uint64_t)d->cfg.judge_interval_ms * 1000000;
	struct itimerspec every = {
		.it_interval = { .tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000) },
		.it_value = { .tv_sec = (time_t)(ns / 1000000000), .tv_nsec = (long)(ns % 1000000000) },
	};
	char err[256];

	hm_detector_init(&d->det, &d->cfg, &d->node, d->xdp ? &d->dp : NULL, hm_mono_us());
	d->judge_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->judge_timer < 0 || timerfd_settime(d->judge_timer, 0, &every, NULL) < 0)
		return -1;
	d->metrics_fd = -1;
	if (!d->cfg.metrics_port)
		return 0;
	d->metrics = hm_metrics_start(d->cfg.metrics_address, d->cfg.metrics_port, render_metrics,
				      d, err, sizeof(err));
	if (!d->metrics) {
		hm_err("%s", err);
		return -1;
	}
	d->metrics_fd = hm_metrics_fd(d->metrics);
	hm_info("metrics: http://%s:%u/metrics", d->cfg.metrics_address,
		hm_metrics_port(d->metrics));
	return 0;
}

static void judge(struct daemon *d)
{
	uint64_t expirations;

	if (read(d->judge_timer, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		hm_warn("timerfd: %s", strerror(errno));
	hm_node_tick(&d->node, hm_mono_us());
	hm_detector_step(&d->det, hm_mono_us());
	if (d->metrics)
		hm_metrics_run(d->metrics); /* connection timeouts */
}

/* ---- xdp dataplane ----------------------------------------------------- */

#define PROGRESS_POLL_MS 20

/* Events raised by our own policy writes are in the ring buffer as soon as
 * the write returns; take them (and what they cause) until none is left. */
static void drain_events(struct daemon *d)
{
	if (d->xdp)
		while (hm_xdp_dp_poll_events(&d->dp) > 0)
			;
}

/* Tell the node which peers the TC program serves and where the fan-out
 * marker is (the interface's broadcast address, on our port). */
static void update_egress(struct daemon *d, hm_voters_t peers)
{
	struct sockaddr_in fanout;
	size_t max_len = hm_xdp_dp_egress(&d->dp, d->cfg.members[d->node.id].port, &fanout);

	hm_node_set_egress(&d->node, peers, fanout.sin_port ? &fanout : NULL, max_len);
}

static int open_xdp(struct daemon *d)
{
	struct itimerspec every = { .it_interval.tv_nsec = PROGRESS_POLL_MS * 1000000L,
				    .it_value.tv_nsec = PROGRESS_POLL_MS * 1000000L };
	struct hm_node *nd = &d->node;
	struct hm_vote_counter kernel;
	struct hm_xdp_keys keys = { .n_clients = nd->n_clients };
	uint32_t *ids = calloc(nd->n_clients + 1, sizeof(*ids));
	uint8_t(*rx)[16] = calloc(nd->n_clients + 1, sizeof(*rx));
	char err[512];
	int r;

	if (!ids || !rx) {
		free(ids);
		free(rx);
		return -1;
	}
	for (uint32_t i = 0; i < nd->n; i++) {
		memcpy(keys.rx[i], nd->links[i].rx, 16);
		memcpy(keys.tx[i], nd->links[i].tx, 16);
	}
	for (uint32_t i = 0; i < nd->n_clients; i++) {
		ids[i] = nd->clients[i].id;
		memcpy(rx[i], nd->clients[i].keys.rx, 16);
	}
	keys.client_ids = ids;
	keys.client_rx = (const uint8_t(*)[16])rx;
	r = hm_xdp_dp_open(&d->dp, &d->cfg, nd->id, &keys, err, sizeof(err));
	free(ids);
	free(rx);
	if (r < 0) {
		hm_err("dataplane xdp: %s", err);
		return -1;
	}
	d->xdp = true;
	/* the kernel counts the votes from now on */
	hm_xdp_vote_counter(&d->dp, &kernel);
	hm_node_set_vote_counter(nd, &kernel);
	d->events = hm_xdp_dp_events_fd(&d->dp);
	d->netlink = hm_xdp_dp_netlink_fd(&d->dp);
	update_egress(d, hm_xdp_dp_refresh_peers(&d->dp));
	d->poll_timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (d->poll_timer < 0 || timerfd_settime(d->poll_timer, 0, &every, NULL) < 0)
		return -1;
	hm_info("xdp: %s on %s (%s mode), tc egress %s, maps pinned in %s",
		hm_xdp_attach_name(d->dp.how), d->dp.ifname, d->dp.xdp_mode,
		d->dp.tc_adopted ? "adopted" : "attached", d->dp.pin_dir);
	return 0;
}

/* Resolving the peers again now and then re-verifies their neighbour
 * entries, which the fan-out (bypassing the neighbour subsystem) does not. */
#define PEER_REFRESH_POLLS (5000 / PROGRESS_POLL_MS)

static bool all_peers_resolved(const struct daemon *d)
{
	hm_voters_t peers = HM_ALL_VOTERS(d->node.n) & ~((hm_voters_t)1 << d->node.id);

	return (d->dp.tc_peers & peers) == peers;
}

/* The periodic look at what only the kernel saw: how far the peers got. */
static void poll_progress(struct daemon *d)
{
	uint64_t expirations;

	if (read(d->poll_timer, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		hm_warn("timerfd: %s", strerror(errno));
	hm_node_tick(&d->node, hm_mono_us());
	hm_node_poll_votes(&d->node);
	/* a peer not resolved yet (its neighbour entry failed while it was
	 * starting, say) is retried every 200 ms, not every 5 s */
	if (++d->polls % (all_peers_resolved(d) ? PEER_REFRESH_POLLS : 10) == 0)
		update_egress(d, hm_xdp_dp_refresh_peers(&d->dp));
}

/* ---- setup and the loop ----------------------------------------------- */

static int watch(struct daemon *d, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(d->epoll, EPOLL_CTL_ADD, fd, &ev);
}

/* The signals the loop reads from its signalfd: SIGTERM, SIGINT, SIGQUIT
 * (stop) and SIGHUP (reload()), whose default actions would kill the
 * daemon and leave its XDP programs attached.  Blocked from the start of
 * main, so one that arrives while the replica starts waits for the loop. */
static void block_signals(sigset_t *mask)
{
	sigemptyset(mask);
	sigaddset(mask, SIGTERM);
	sigaddset(mask, SIGINT);
	sigaddset(mask, SIGQUIT);
	sigaddset(mask, SIGHUP);
	sigprocmask(SIG_BLOCK, mask, NULL);
}

static int open_loop(struct daemon *d, const char *data_dir)
{
	sigset_t mask;

	block_signals(&mask);
	signal(SIGPIPE, SIG_IGN);
	d->signals = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	d->timer = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	d->epoll = epoll_create1(EPOLL_CLOEXEC);
	if (d->signals < 0 || d->timer < 0 || d->epoll < 0 || open_udp(d) < 0 ||
	    open_control(d, data_dir) < 0 || open_detection(d) < 0)
		return -1;
	if (watch(d, d->udp) < 0 || watch(d, d->timer) < 0 || watch(d, d->signals) < 0 ||
	    (d->control >= 0 && watch(d, d->control) < 0) || watch(d, d->judge_timer) < 0 ||
	    (d->metrics_fd >= 0 && watch(d, d->metrics_fd) < 0))
		return -1;
	if (d->xdp && (watch(d, d->events) < 0 || watch(d, d->poll_timer) < 0 ||
		       watch(d, d->netlink) < 0 ||
		       setsockopt(d->udp, SOL_SOCKET, SO_BROADCAST, &(int){ 1 }, sizeof(int)) < 0))
		return -1;
	return 0;
}

/* SIGHUP: what can be reloaded at run time.  Nothing yet: logs go to
 * stderr (the journal under systemd), so there is no file to reopen, and
 * the configuration (members, keys, DNS) is read at start only.  The file
 * on disk is checked so the operator learns now, not at the next restart,
 * whether it is valid. */
static void reload(struct daemon *d)
{
	struct hm_config *fresh = calloc(1, sizeof(*fresh));
	char err[1024];

	d->sighups++;
	if (!fresh) {
		hm_warn("SIGHUP: out of memory; ignored");
		return;
	}
	if (hm_config_load(d->cfg.path, fresh, err, sizeof(err)) < 0) {
		hm_warn("SIGHUP: %s (the file on disk does not load; still running with the "
			"configuration read at start)", err);
	} else {
		hm_info("SIGHUP: nothing is reloaded at run time (logs go to stderr; the "
			"configuration is read at start): %s is valid and applies at the next "
			"restart", d->cfg.path);
		hm_config_free(fresh);
	}
	free(fresh);
}

/* The signal read from the signalfd: true when it asks the daemon to stop. */
static bool stop_signal(struct daemon *d)
{
	struct signalfd_siginfo si;

	if (read(d->signals, &si, sizeof(si)) != (ssize_t)sizeof(si))
		return false;
	if (si.ssi_signo == SIGHUP) {
		reload(d);
		return false;
	}
	hm_info("%s from pid %u: stopping", strsignal((int)si.ssi_signo), si.ssi_pid);
	return true;
}

static void run(struct daemon *d)
{
	for (;;) {
		struct epoll_event evs[8];
		int n;

		arm_timer(d);
		n = epoll_wait(d->epoll, evs, 8, -1);
		if (n < 0 && errno != EINTR) {
			hm_err("epoll_wait: %s", strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			uint64_t expirations;

			if (fd == d->udp) {
				receive_all(d);
			} else if (fd == d->timer) {
				if (read(d->timer, &expirations, sizeof(expirations)) < 0 &&
				    errno != EAGAIN)
					hm_warn("timerfd: %s", strerror(errno));
				hm_node_tick(&d->node, hm_mono_us());
			} else if (fd == d->control) {
				serve_control(d);
			} else if (fd == d->judge_timer) {
				judge(d);
			} else if (d->metrics && fd == d->metrics_fd) {
				hm_metrics_run(d->metrics);
			} else if (fd == d->signals) {
				if (stop_signal(d))
					return;
			} else if (d->xdp && fd == d->events) {
				hm_node_tick(&d->node, hm_mono_us());
			} else if (d->xdp && fd == d->poll_timer) {
				poll_progress(d);
			} else if (d->xdp && fd == d->netlink) {
				if (hm_xdp_dp_netlink_events(&d->dp))
					update_egress(d, d->dp.tc_peers);
			} else if (d->dns) {
				hm_dns_daemon_handle(d->dns, fd);
			}
			drain_events(d);
			flush_sends(d);
		}
		byzantine_crash_due(d);
	}
}

/* The DNS part of the service (opcodes 0x20..0x2f), when configured. */
static int dns_route(struct daemon *d, struct hm_service_route *r)
{
	const struct hm_dns_config *c = &d->cfg.dns;
	struct hm_dns_service_config sc = {
		.n = d->cfg.n_members, .f = d->cfg.max_faulty_nodes, .max_ttl = c->max_ttl_s,
		.lookup_timeout_s = c->lookup_timeout_s, .skew_s = c->skew_s,
		.wall_clock = hm_dns_wall_clock, .prefetch = c->prefetch,
	};
	char err[256];

	if (c->n_trust_anchors || c->trust_anchor_file[0]) {
		d->dns_anchors = hm_dns_anchors_new((const char *const *)c->trust_anchors,
						    c->n_trust_anchors,
						    c->trust_anchor_file[0] ? c->trust_anchor_file : NULL,
						    err, sizeof(err));
		if (!d->dns_anchors) {
			hm_err("dns: trust anchors: %s", err);
			return -1;
		}
	}
	sc.anchors = d->dns_anchors;
	r->first = HM_DNS_OP_FIRST;
	r->last = HM_DNS_OP_LAST;
	return hm_dns_service_new(&r->svc, &sc);
}

static uint64_t ct_wall_clock(void *ctx)
{
	(void)ctx;
	return (uint64_t)time(NULL);
}

/* The CT verdict part (opcodes 0x30..0x3f), when the config has a ct: section. */
static int open_ct_part(const struct hm_config *cfg, struct hm_service_route *r)
{
	char err[512];
	struct hm_ct *ct;

	/* The check first: its errors name the file's line and key. */
	if (hm_ct_config_check(cfg, err, sizeof(err)) < 0) {
		hm_err("%s", err);
		return -1;
	}
	ct = hm_ct_from_config(&cfg->ct, err, sizeof(err));
	if (!ct) {
		hm_err("%s: %s", cfg->path, err);
		return -1;
	}
	r->first = HM_CT_OP_FIRST;
	r->last = HM_CT_OP_LAST;
	hm_info("ct: trust store %s, %u logs, clock skew at most %u s", cfg->ct.trust_store,
		cfg->ct.n_logs, cfg->ct.max_clock_skew_s);
	return hm_ct_service_new(&r->svc, ct, cfg->ct.max_clock_skew_s, ct_wall_clock, NULL);
}

/* The replicated service: every part behind one multiplexer, by opcode. */
static int open_service(struct daemon *d)
{
	struct hm_service_route routes[3] = { { .first = HM_KV_PUT, .last = 15 } };
	size_t n = 1;

	if (hm_kv_service_new(&routes[0].svc) < 0)
		return -1;
	if (d->cfg.dns.enabled) {
		if (dns_route(d, &routes[n]) < 0) {
			routes[0].svc.ops->destroy(routes[0].svc.state);
			return -1;
		}
		n++;
	}
	if (d->cfg.ct.enabled) {
		if (open_ct_part(&d->cfg, &routes[n]) < 0) {
			for (size_t i = 0; i < n; i++)
				routes[i].svc.ops->destroy(routes[i].svc.state);
			return -1;
		}
		n++;
	}
	if (hm_service_mux_new(&d->service, routes, n) < 0) {
		for (size_t i = 0; i < n; i++)
			routes[i].svc.ops->destroy(routes[i].svc.state);
		return -1;
	}
	return 0;
}

/* The DNS front end, resolver and observation client, in the loop. */
static int open_dns(struct daemon *d)
{
	char err[512];
	int fds[4], n;

	if (!d->cfg.dns.enabled)
		return 0;
	d->dns = hm_dns_daemon_new(&d->cfg, d->node.id, &d->keys,
				   hm_service_mux_part(&d->service, HM_DNS_OP_OBSERVE),
				   d->dns_anchors, err, sizeof(err));
	if (!d->dns) {
		hm_err("dns: %s", err);
		return -1;
	}
	if (d->cfg.dns.xdp &&
	    hm_dns_daemon_attach_xdp(d->dns, d->xdp ? hm_xdp_dp_dns_tail_fd(&d->dp) : -1, err,
				     sizeof(err)) < 0) {
		hm_err("dns xdp: %s", err);
		return -1;
	}
	n = hm_dns_daemon_fds(d->dns, fds);
	for (int i = 0; i < n; i++)
		if (watch(d, fds[i]) < 0)
			return -1;
	return 0;
}

struct options {
	const char *config, *key, *data_dir, *log_level, *log_format, *control_socket;
	bool check_config, cleanup;
	const char *byzantine;
	bool byzantine_ack;
	long id;
};

static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "id", required_argument, NULL, 'i' },
		{ "key", required_argument, NULL, 'k' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "log-format", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ "check-config", required_argument, NULL, 'C' },
		{ "cleanup", required_argument, NULL, 'X' },
		{ "control-socket", required_argument, NULL, 'S' },
		{ "byzantine", required_argument, NULL, 'B' },
		{ "i-know-this-is-a-test", no_argument, NULL, 'A' },
		{ 0 },
	};
	int c;

	*o = (struct options){ .id = -1 };
	while ((c = getopt_long(argc, argv, "c:i:k:d:l:h", longopts, NULL)) != -1) {
		char *end;

		switch (c) {
		case 'c': o->config = optarg; break;
		case 'k': o->key = optarg; break;
		case 'd': o->data_dir = optarg; break;
		case 'l': o->log_level = optarg; break;
		case 'F':
			if (hm_log_parse_format(optarg) < 0) {
				fprintf(stderr, "hypermeshd: --log-format %s: not kv or json\n", optarg);
				return -1;
			}
			o->log_format = optarg;
			break;
		case 'S': o->control_socket = optarg; break;
		case 'C':
			o->config = optarg;
			o->check_config = true;
			break;
		case 'X':
			o->config = optarg;
			o->cleanup = true;
			break;
		case 'V':
			printf("hypermeshd %s\n", HM_RELEASE);
			exit(0);
		case 'i':
			o->id = strtol(optarg, &end, 10);
			if (*end || o->id < 0 || o->id >= HM_MAX_REPLICAS) {
				fprintf(stderr, "hypermeshd: --id %s: not a replica id\n", optarg);
				return -1;
			}
			break;
		case 'B':
#ifndef HM_TESTING
			fprintf(stderr, "hypermeshd: --byzantine is test-only and not in this build; "
				"the test build, build/hypermeshd-test, has it\n");
			return -1;
#endif
			o->byzantine = optarg;
			break;
		case 'A': o->byzantine_ack = true; break;
		case 'h': usage(stdout); exit(0);
		default: usage(stderr); return -1;
		}
	}
	if (!o->config || optind != argc) {
		usage(stderr);
		return -1;
	}
	return 0;
}

/* ---- --byzantine: the test build only ---------------------------------- */

#ifdef HM_TESTING
/* --byzantine: what the misbehaviour did, so a test can tell it acted. */
static void add_byzantine_status(struct daemon *d, json_t *status)
{
	const struct hm_byz_stats *st;
	json_t *b, *applied;

	if (!d->byz)
		return;
	st = hm_byz_stats(d->byz);
	b = json_object();
	applied = json_object();

	for (int m = 0; m < HM_BYZ_MODE_MAX; m++)
		json_object_set_new(applied, hm_byz_mode_name(m),
				    json_integer((json_int_t)st->applied[m]));
	json_object_set_new(b, "seen", json_integer((json_int_t)st->seen));
	json_object_set_new(b, "dropped", json_integer((json_int_t)st->dropped));
	json_object_set_new(b, "applied", applied);
	json_object_set_new(status, "byzantine", b);
}

/* --byzantine: only with an explicit acknowledgement, and never quietly.
 * 0 (also when no mode was asked for), or -1. */
static int setup_byzantine(struct daemon *d, const struct options *o)
{
	const char *env = getenv("HM_BYZANTINE_TESTS");
	struct hm_byz_opts bo;
	struct hm_send_hook hook;
	char err[512], desc[256];

	if (!o->byzantine)
		return 0;
	if (!o->byzantine_ack && !(env && strcmp(env, "1") == 0)) {
		hm_err("--byzantine makes this replica attack its peers; it is for tests only. "
		       "Refused without --i-know-this-is-a-test (or HM_BYZANTINE_TESTS=1)");
		return -1;
	}
	if (hm_byz_parse(o->byzantine, &bo, err, sizeof(err)) < 0) {
		hm_err("--byzantine: %s", err);
		return -1;
	}
	bo.seed = (uint64_t)o->id + 1;
	d->byz = hm_byz_new(&bo, (uint32_t)o->id, d->cfg.n_members, d->cfg.watermark_window,
			    &d->keys);
	if (!d->byz)
		return -1;
	hook = hm_byz_send_hook(d->byz);
	hm_node_set_send_hook(&d->node, &hook);
	hm_byz_crashed(d->byz, hm_mono_us()); /* starts the crash clock */
	for (int i = 0; i < 3; i++)
		hm_warn("BYZANTINE TEST MODE: replica %ld misbehaves on purpose: %s", o->id,
			hm_byz_describe(&bo, desc, sizeof(desc)));
	return 0;
}

/* --byzantine crash: the time came; go down as a crash would, with no
 * cleanup (the control socket stays behind, as after kill -9). */
static void byzantine_crash_due(struct daemon *d)
{
	if (d->byz && hm_byz_crashed(d->byz, d->node.now)) {
		hm_warn("BYZANTINE TEST MODE: crashing now, as asked (--byzantine crash)");
		_exit(3);
	}
}

#else /* the shipped daemon: parse_options refuses --byzantine */
static void add_byzantine_status(struct daemon *d, json_t *status)
{
	(void)d, (void)status;
}

static int setup_byzantine(struct daemon *d, const struct options *o)
{
	(void)d, (void)o;
	return 0;
}

static void byzantine_crash_due(struct daemon *d)
{
	(void)d;
}
#endif

/* Settle id, key and data dir from the options and the config's node
 * section, and check the key is this replica's. */
static int load_identity(struct daemon *d, struct options *o, const char **data_dir)
{
	const char *key = o->key ? o->key : d->cfg.private_key_path;
	char err[512];

	if (o->id < 0)
		o->id = d->cfg.has_node_id ? (long)d->cfg.node_id : -1;
	if (o->id < 0 || (uint32_t)o->id >= d->cfg.n_members) {
		fprintf(stderr, "hypermeshd: %s: no replica id: give --id or node.id (0..%u)\n",
			d->cfg.path, d->cfg.n_members - 1);
		return -1;
	}
	if (!key[0]) {
		fprintf(stderr, "hypermeshd: no private key: give --key or node.private_key\n");
		return -1;
	}
	if (hm_keypair_read(key, &d->keys, err, sizeof(err)) < 0) {
		fprintf(stderr, "hypermeshd: %s\n", err);
		return -1;
	}
	if (memcmp(d->keys.pk, d->cfg.members[o->id].public_key, HM_PUBKEY_LEN) != 0) {
		fprintf(stderr, "hypermeshd: %s is not the key of replica %ld in %s\n", key, o->id,
			d->cfg.path);
		return -1;
	}
	*data_dir = o->data_dir ? o->data_dir : d->cfg.data_dir;
	return 0;
}

int main(int argc, char **argv)
{
	static struct daemon d;
	struct hm_transport transport = { .sendto = udp_sendto, .ctx = &d };
	const char *data_dir;
	struct options o;
	sigset_t early;
	char err[1024];
	int rc = 1;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (parse_options(argc, argv, &o) < 0)
		return 2;
	if (o.check_config)
		return hm_daemon_check_config(o.config, o.id, o.key);
	if (o.cleanup)
		return hm_daemon_cleanup(o.config);
	block_signals(&early);
	if (hm_crypto_init() < 0 || hm_config_load(o.config, &d.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "hypermeshd: %s\n", err);
		return 2;
	}
	if (load_identity(&d, &o, &data_dir) < 0)
		goto out;
	hm_log_setup("hypermeshd", o.id, o.log_level ? o.log_level : d.cfg.log_level);
	hm_log_set_format((enum hm_log_format)hm_log_parse_format(o.log_format ? o.log_format
									      : d.cfg.log_format));
	hm_info("hypermeshd %s starting: replica %ld, configuration %s", HM_RELEASE, o.id,
		d.cfg.path);
	hm_sm_status("starting: replica %ld", o.id);
	if (hm_control_socket_path(o.control_socket, data_dir, d.control_path,
				   sizeof(d.control_path)) < 0) {
		hm_err("the control socket path is too long for a unix socket (at most %zu bytes)",
		       sizeof(d.control_path) - 1);
		goto out;
	}
	if (open_service(&d) < 0 ||
	    hm_node_init(&d.node, &d.cfg, (uint32_t)o.id, &d.keys, &d.service, &transport) < 0) {
		hm_err("cannot initialise the replica: a public key in %s is not a valid Ed25519 key, "
		       "or network.max_message_size (%u) is too small for view-change certificates "
		       "at f = %u", d.cfg.path, d.cfg.max_message_size, d.cfg.max_faulty_nodes);
		goto out;
	}
	if (setup_byzantine(&d, &o) < 0)
		goto out;
	if (d.cfg.dataplane == HM_DATAPLANE_XDP && open_xdp(&d) < 0)
		goto out;
	if (open_loop(&d, data_dir) < 0 || open_state(&d, data_dir) < 0 || open_dns(&d) < 0)
		goto out;
	hm_info("ready: replica %ld of %u (f=%u), %s port %u, dataplane %s, batch %u, "
		"pipeline %u", o.id, d.cfg.n_members, d.cfg.max_faulty_nodes,
		d.cfg.members[o.id].address, d.cfg.members[o.id].port, d.xdp ? "xdp" : "socket",
		d.cfg.batching_enabled ? d.cfg.batch_size : 1, d.cfg.pipeline_depth);
	hm_sm_ready("serving: replica %ld of %u (f=%u) on %s port %u, dataplane %s%s", o.id,
		    d.cfg.n_members, d.cfg.max_faulty_nodes, d.cfg.members[o.id].address,
		    d.cfg.members[o.id].port, d.xdp ? "xdp" : "socket",
		    d.dns ? ", DNS on" : "");
	run(&d);
	flush_sends(&d); /* what the last event sent */
	hm_sm_stopping();
	hm_info("shutting down: executed %llu batches, %llu ops",
		(unsigned long long)pbft_last_executed(d.node.core),
		(unsigned long long)pbft_stats(d.node.core)->ops_executed);
	rc = 0;
out:
	if (d.control_path[0])
		unlink(d.control_path);
	hm_metrics_stop(d.metrics);
	if (d.xdp)
		hm_xdp_dp_close(&d.dp);
	hm_dns_daemon_free(d.dns);
	if (d.node.core)
		hm_node_free(&d.node);
	hm_send_queue_free(d.sendq);
	if (d.service.ops)
		d.service.ops->destroy(d.service.state);
	hm_dns_anchors_free(d.dns_anchors);
	hm_config_free(&d.cfg);
#ifdef HM_TESTING
	hm_byz_free(d.byz);
#endif
	return rc;
}
