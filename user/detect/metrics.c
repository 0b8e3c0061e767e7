// SPDX-License-Identifier: MIT
/* Prometheus text exposition and its HTTP endpoint (see metrics.h). */
#include "detect/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "detect/reputation.h"
#include "common/wire.h"

/* ---- writer ----------------------------------------------------------- */

static void put(struct hm_mtext *t, const char *s, size_t n)
{
	if (t->failed)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 4096;
		char *b;

		while (cap < t->len + n + 1)
			cap *= 2;
		b = realloc(t->buf, cap);
		if (!b) {
			t->failed = true;
			return;
		}
		t->buf = b;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	t->buf[t->len] = 0;
}

static void puts_(struct hm_mtext *t, const char *s)
{
	put(t, s, strlen(s));
}

void hm_mtext_free(struct hm_mtext *t)
{
	free(t->buf);
	memset(t, 0, sizeof(*t));
}

void hm_mtext_family(struct hm_mtext *t, const char *name, const char *type, const char *help)
{
	puts_(t, "# HELP ");
	puts_(t, name);
	puts_(t, " ");
	/* HELP text escapes backslash and newline */
	for (const char *p = help; *p; p++)
		puts_(t, *p == '\\' ? "\\\\" : *p == '\n' ? "\\n" : (char[]){ *p, 0 });
	puts_(t, "\n# TYPE ");
	puts_(t, name);
	puts_(t, " ");
	puts_(t, type);
	puts_(t, "\n");
}

static void label_value(struct hm_mtext *t, const char *v)
{
	for (const char *p = v; *p; p++)
		puts_(t, *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n"
							      : (char[]){ *p, 0 });
}

void hm_mtext_sample(struct hm_mtext *t, const char *name, double value, ...)
{
	char num[64];
	va_list ap;
	const char *k;
	bool first = true;

	puts_(t, name);
	va_start(ap, value);
	while ((k = va_arg(ap, const char *))) {
		const char *v = va_arg(ap, const char *);

		puts_(t, first ? "{" : ",");
		puts_(t, k);
		puts_(t, "=\"");
		label_value(t, v ? v : "");
		puts_(t, "\"");
		first = false;
	}
	va_end(ap);
	if (!first)
		puts_(t, "}");
	if (isnan(value))
		snprintf(num, sizeof(num), " NaN\n");
	else if (isinf(value))
		snprintf(num, sizeof(num), " %s\n", value > 0 ? "+Inf" : "-Inf");
	else if (value == floor(value) && fabs(value) < 1e15)
		snprintf(num, sizeof(num), " %.0f\n", value);
	else
		snprintf(num, sizeof(num), " %.17g\n", value);
	puts_(t, num);
}

/* ---- a replica's families --------------------------------------------- */

static void peer_label(char *out, size_t cap, uint32_t i)
{
	if (i < HM_MAX_REPLICAS)
		snprintf(out, cap, "%u", i);
	else
		snprintf(out, cap, "%s", i == HM_MAX_REPLICAS ? "clients" : "unknown");
}

/* A single-sample gauge or counter. */
static void scalar(struct hm_mtext *t, const char *name, const char *type, const char *help,
		   double v)
{
	hm_mtext_family(t, name, type, help);
	hm_mtext_sample(t, name, v, NULL);
}

/* A histogram family without labels: counts[] per bucket (not
 * cumulative; counts[n] is the +Inf bucket), their sum and count. */
static void histogram(struct hm_mtext *t, const char *name, const char *help,
		      const double *bounds, unsigned n, const uint64_t *counts, double sum,
		      uint64_t count)
{
	char bucket[96], le[32], sname[96], cname[96];
	uint64_t acc = 0;

	snprintf(bucket, sizeof(bucket), "%s_bucket", name);
	snprintf(sname, sizeof(sname), "%s_sum", name);
	snprintf(cname, sizeof(cname), "%s_count", name);
	hm_mtext_family(t, name, "histogram", help);
	for (unsigned b = 0; b < n; b++) {
		acc += counts[b];
		snprintf(le, sizeof(le), "%g", bounds[b]);
		hm_mtext_sample(t, bucket, (double)acc, "le", le, NULL);
	}
	/* +Inf is every observation: the count, even if a bucket lags */
	hm_mtext_sample(t, bucket, (double)(count > acc ? count : acc), "le", "+Inf", NULL);
	hm_mtext_sample(t, sname, sum, NULL);
	hm_mtext_sample(t, cname, (double)(count > acc ? count : acc), NULL);
}

static void render_consensus(struct hm_mtext *t, const struct hm_replica_metrics *m)
{
	scalar(t, "hypermesh_view", "gauge", "Current PBFT view.", (double)m->view);
	scalar(t, "hypermesh_low_watermark", "gauge", "Low watermark (last stable checkpoint).",
	       (double)m->low_watermark);
	scalar(t, "hypermesh_high_watermark", "gauge", "High watermark.", (double)m->high_watermark);
	scalar(t, "hypermesh_last_executed", "gauge", "Highest sequence number executed.",
	       (double)m->last_executed);
	scalar(t, "hypermesh_consensus_rounds_total", "counter",
	       "Consensus rounds (batches) executed.", (double)m->rounds);
	scalar(t, "hypermesh_operations_total", "counter", "Client operations executed.",
	       (double)m->ops);
	histogram(t, "hypermesh_consensus_latency_seconds",
		  "Consensus latency, our PREPARE for a sequence number to its execution.",
		  hm_latency_bounds_s, HM_LATENCY_BUCKETS, m->latency_buckets,
		  m->latency_sum_seconds, m->latency_count);
	scalar(t, "hypermesh_quorums_total", "counter", "Quorums formed (PREPARE and COMMIT).",
	       (double)m->quorums);
	scalar(t, "hypermesh_view_changes_total", "counter", "View changes seen.",
	       (double)m->view_changes);
	hm_mtext_family(t, "hypermesh_view_changes_started_total", "counter",
			"VIEW-CHANGEs this replica sent (one per view), by what started them: "
			"request_timeout (lost or faulty primary), new_view_timeout, "
			"f+1_higher_views, catchup_timeout.");
	for (int r = 0; r < PBFT_VC_REASONS; r++)
		hm_mtext_sample(t, "hypermesh_view_changes_started_total", (double)m->vc_by_reason[r],
				"reason", pbft_vc_reason_name((enum pbft_vc_reason)r), NULL);
	scalar(t, "hypermesh_view_changes_installed_total", "counter",
	       "New views this replica installed (view catch-up included).",
	       (double)m->vc_installed);
	scalar(t, "hypermesh_view_catchups_started_total", "counter",
	       "View catch-ups: f+1 replicas seen in higher views, NEW-VIEW asked for.",
	       (double)m->catchups_started);
	scalar(t, "hypermesh_view_catchups_done_total", "counter",
	       "View catch-ups that installed the NEW-VIEW.", (double)m->catchups_done);
	scalar(t, "hypermesh_view_catchup_timeouts_total", "counter",
	       "View catch-ups that fell back to a view change (no NEW-VIEW in time).",
	       (double)m->catchup_timeouts);
	scalar(t, "hypermesh_fast_path_enabled", "gauge", "1 when the fast path is configured.",
	       m->fast_path_enabled);
	scalar(t, "hypermesh_fast_path_rounds_total", "counter",
	       "Rounds committed on the fast path (the core has no fast path yet).",
	       (double)m->fast_path_rounds);
	scalar(t, "hypermesh_batch_efficiency_ratio", "gauge",
	       "Operations per executed batch divided by the configured batch size (lifetime).",
	       m->batch_efficiency);
}

static void render_persistence(struct hm_mtext *t, const struct hm_replica_metrics *m)
{
	scalar(t, "hypermesh_persist_errors_total", "counter",
	       "Persistence operations (log append or sync, checkpoint, vote log) that failed.",
	       (double)m->persist_errors);
	scalar(t, "hypermesh_persist_degraded", "gauge",
	       "1 while this replica holds its replies: its files are damaged or its disk fails.",
	       m->persist_degraded);
	scalar(t, "hypermesh_persist_failing", "gauge",
	       "1 while a disk failure stops every message of this replica (no replies, no "
	       "votes) until its files are rewritten.", m->persist_failing);
	scalar(t, "hypermesh_restart_silent", "gauge",
	       "1 when this replica restarted without an intact vote log: it casts no vote up "
	       "to its recovered bound (hmctl status: silent_until) and counts among the f "
	       "until then.", m->restart_silent);
	scalar(t, "hypermesh_request_refusals_total", "counter",
	       "Requests answered with a signed refusal (CONFLICT: another request already "
	       "executed at that timestamp; STALE: a timestamp below the last executed one).",
	       (double)m->request_refusals);
	scalar(t, "hypermesh_conflicting_requests_total", "counter",
	       "Requests at a client's last executed timestamp with another digest (two "
	       "processes under one identity, or a faulty client).",
	       (double)m->conflicting_requests);
}

/* hypermesh_peer_state{peer,state}: 1 for the peer's state, 0 for the
 * others (alerts match state="down"); and the count of each. */
static void render_peer_states(struct hm_mtext *t, const struct hm_replica_metrics *m)
{
	char peer[16];
	int count[HM_PEER_STATES] = { 0 };

	hm_mtext_family(t, "hypermesh_peer_state", "gauge",
			"1 for the peer's state: up, slow, down (unreachable: crashed, paused "
			"or cut off) or byzantine (proven by evidence; stays).");
	for (uint32_t i = 0; i < m->n; i++) {
		if (i == m->id)
			continue;
		snprintf(peer, sizeof(peer), "%u", i);
		count[m->peer_state[i] < HM_PEER_STATES ? m->peer_state[i] : 0]++;
		for (int s = 0; s < HM_PEER_STATES; s++)
			hm_mtext_sample(t, "hypermesh_peer_state", m->peer_state[i] == s, "peer", peer,
					"state", hm_peer_state_name((enum hm_peer_state)s), NULL);
	}
	scalar(t, "hypermesh_down_nodes", "gauge", "Peers down (unreachable).",
	       count[HM_PEER_DOWN]);
	scalar(t, "hypermesh_byzantine_nodes", "gauge",
	       "Peers proven Byzantine by evidence (equivocation, bad signature, checked proof).",
	       count[HM_PEER_BYZANTINE]);
}

static void render_detection(struct hm_mtext *t, const struct hm_replica_metrics *m)
{
	char peer[16], self[16];

	snprintf(self, sizeof(self), "%u", m->id);
	render_peer_states(t, m);
	scalar(t, "hypermesh_suspected_nodes", "gauge",
	       "Peers up but suspected by the two-indicator rule (statistics only; never "
	       "blocked for it).", __builtin_popcount(m->suspected));
	scalar(t, "hypermesh_blocked_nodes", "gauge", "Peers blocked on proof of misbehaviour.",
	       __builtin_popcount(m->blocked));
	scalar(t, "hypermesh_block_decisions_total", "counter", "Blocks enforced.",
	       (double)m->blocks);
	scalar(t, "hypermesh_block_refusals_total", "counter",
	       "Proven offences not enforced to keep 2f+1 replicas unblocked.",
	       (double)m->refusals);
	hm_mtext_family(t, "hypermesh_equivocation_proofs_total", "counter",
			"Equivocation proofs: of the peer's equivocations, sent to the other "
			"replicas or received from them and checked; refused: proofs the peer "
			"sent that did not check.");
	for (uint32_t i = 0; i < m->n; i++) {
		if (i == m->id)
			continue;
		snprintf(peer, sizeof(peer), "%u", i);
		hm_mtext_sample(t, "hypermesh_equivocation_proofs_total", (double)m->proofs_sent[i],
				"peer", peer, "kind", "sent", NULL);
		hm_mtext_sample(t, "hypermesh_equivocation_proofs_total",
				(double)m->proofs_received[i], "peer", peer, "kind", "received", NULL);
		hm_mtext_sample(t, "hypermesh_equivocation_proofs_total",
				(double)m->proofs_refused[i], "peer", peer, "kind", "refused", NULL);
	}
	hm_mtext_family(t, "hypermesh_reputation", "gauge", "Peer reputation in [0, 1].");
	for (uint32_t i = 0; i < m->n; i++)
		if (i != m->id) {
			snprintf(peer, sizeof(peer), "%u", i);
			hm_mtext_sample(t, "hypermesh_reputation", m->reputation[i], "peer", peer, NULL);
		}
	hm_mtext_family(t, "hypermesh_reputation_historical", "gauge",
			"Long-term average of the peer's reputation.");
	for (uint32_t i = 0; i < m->n; i++)
		if (i != m->id) {
			snprintf(peer, sizeof(peer), "%u", i);
			hm_mtext_sample(t, "hypermesh_reputation_historical", m->historical[i], "peer",
					peer, NULL);
		}
	/* the distribution: peers per reputation band, cumulative (a gauge,
	 * so its bound is not called le) */
	hm_mtext_family(t, "hypermesh_reputation_peers", "gauge",
			"Peers with reputation at or below at_most (the reputation distribution).");
	for (int b = 1; b <= 10; b++) {
		char bound[8];
		int count = 0;

		snprintf(bound, sizeof(bound), "%.1f", b / 10.0);
		for (uint32_t i = 0; i < m->n; i++)
			count += i != m->id && m->reputation[i] <= b / 10.0 + 1e-9;
		hm_mtext_sample(t, "hypermesh_reputation_peers", count, "at_most", bound, NULL);
	}
	hm_mtext_family(t, "hypermesh_peer_indicator", "gauge",
			"1 when the fault indicator holds for the peer at the last judge step.");
	for (uint32_t i = 0; i < m->n; i++) {
		if (i == m->id)
			continue;
		snprintf(peer, sizeof(peer), "%u", i);
		for (unsigned k = 0; k < HM_IND_COUNT; k++)
			hm_mtext_sample(t, "hypermesh_peer_indicator", m->indicators[i] >> k & 1,
					"peer", peer, "indicator", hm_indicator_name(k), NULL);
	}
	hm_mtext_family(t, "hypermesh_peer_silence_seconds", "gauge",
			"Smoothed silence of the peer (time since last heard) at each judge step.");
	for (uint32_t i = 0; i < m->n; i++)
		if (i != m->id) {
			snprintf(peer, sizeof(peer), "%u", i);
			hm_mtext_sample(t, "hypermesh_peer_silence_seconds", m->latency_ms[i] / 1e3,
					"peer", peer, NULL);
		}
	hm_mtext_family(t, "hypermesh_peer_participation_ratio", "gauge",
			"Share of quorums the peer's vote was counted in (smoothed).");
	for (uint32_t i = 0; i < m->n; i++)
		if (i != m->id && m->participation[i] >= 0) {
			snprintf(peer, sizeof(peer), "%u", i);
			hm_mtext_sample(t, "hypermesh_peer_participation_ratio", m->participation[i],
					"peer", peer, NULL);
		}
	hm_mtext_family(t, "hypermesh_peer_blocked", "gauge", "1 while the peer is blocked.");
	for (uint32_t i = 0; i < m->n; i++)
		if (i != m->id) {
			snprintf(peer, sizeof(peer), "%u", i);
			hm_mtext_sample(t, "hypermesh_peer_blocked", m->blocked >> i & 1, "peer", peer,
					NULL);
		}
	hm_mtext_family(t, "hypermesh_connectivity", "gauge",
			"Connectivity matrix row of this replica: 1 when `to` was heard from lately.");
	for (uint32_t i = 0; i < m->n; i++)
		if (i != m->id) {
			snprintf(peer, sizeof(peer), "%u", i);
			hm_mtext_sample(t, "hypermesh_connectivity", m->connected >> i & 1, "from", self,
					"to", peer, NULL);
		}
}

static void render_traffic(struct hm_mtext *t, const struct hm_replica_metrics *m)
{
	char peer[16];

	hm_mtext_family(t, "hypermesh_messages_accepted_total", "counter",
			"Datagrams accepted, by claimed sender.");
	for (uint32_t i = 0; i < HM_METRIC_PEERS; i++) {
		if ((i < HM_MAX_REPLICAS && (i >= m->n || i == m->id)))
			continue;
		peer_label(peer, sizeof(peer), i);
		hm_mtext_sample(t, "hypermesh_messages_accepted_total", (double)m->accepted[i], "peer",
				peer, NULL);
	}
	hm_mtext_family(t, "hypermesh_drops_total", "counter",
			"Datagrams dropped, by claimed sender and reason (XDP and userspace).");
	for (uint32_t i = 0; i < HM_METRIC_PEERS; i++) {
		if ((i < HM_MAX_REPLICAS && (i >= m->n || i == m->id)))
			continue;
		peer_label(peer, sizeof(peer), i);
		for (int r = 0; r < HM_DROP_REASON_MAX; r++)
			hm_mtext_sample(t, "hypermesh_drops_total", (double)m->drops[i][r], "peer", peer,
					"reason", hm_drop_reason_name((unsigned)r), NULL);
	}
}

static void render_dns_answers(struct hm_mtext *t, const struct hm_dns_counters *c)
{
	hm_mtext_family(t, "hypermesh_dns_answers_total", "counter",
			"DNS replies sent, by RCODE and by how the answer was decided: dnssec "
			"(rule a), observed (rule b: f+1 matching observations), fail (agreed "
			"failure), timeout, overload, frontend (FORMERR, NOTIMP, REFUSED).");
	for (int r = 0; r < HM_DNS_ANS_RULES; r++)
		for (int rc = 0; rc < 16; rc++) {
			static const char *const rcodes[16] = {
				"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED",
				"YXDOMAIN", "YXRRSET", "NXRRSET", "NOTAUTH", "NOTZONE", "RCODE11",
				"RCODE12", "RCODE13", "RCODE14", "RCODE15",
			};

			/* the usual ones always, so rate() has a series to start from */
			if (!c->answers[r][rc] && rc != 0 && rc != 2 && rc != 3)
				continue;
			hm_mtext_sample(t, "hypermesh_dns_answers_total", (double)c->answers[r][rc],
					"rcode", rcodes[rc], "rule",
					hm_dns_answer_rule_name((enum hm_dns_answer_rule)r), NULL);
		}
}

static void render_dns(struct hm_mtext *t, const struct hm_replica_metrics *m)
{
	const struct hm_dns_counters *c = &m->dns;
	char rep[16];

	render_dns_answers(t, c);
	scalar(t, "hypermesh_dns_cache_hits_total", "counter",
	       "DNS queries answered from the certified cache (no agreement round).",
	       (double)c->cache_hits);
	scalar(t, "hypermesh_dns_cache_misses_total", "counter",
	       "DNS queries that waited for an agreement round.", (double)c->cache_misses);
	histogram(t, "hypermesh_dns_upstream_latency_seconds",
		  "Time this replica's validating resolver took to answer (upstream included).",
		  hm_dns_upstream_bounds_s, HM_DNS_UPSTREAM_BUCKETS, c->upstream_buckets,
		  c->upstream_sum_s, c->upstream_count);
	hm_mtext_family(t, "hypermesh_dns_poisoned_observations_total", "counter",
			"Observations by a replica that differed from the agreed answer (a "
			"poisoned or broken upstream behind it), as this replica counted them.");
	for (uint32_t i = 0; i < c->n_replicas; i++) {
		snprintf(rep, sizeof(rep), "%u", i);
		hm_mtext_sample(t, "hypermesh_dns_poisoned_observations_total", (double)c->differ[i],
				"replica", rep, NULL);
	}
}

void hm_metrics_render(struct hm_mtext *t, const struct hm_replica_metrics *m)
{
	char id[16];

	snprintf(id, sizeof(id), "%u", m->id);
	hm_mtext_family(t, "hypermesh_replica_info", "gauge", "This replica: id, n, f, dataplane.");
	{
		char n[16], f[16];

		snprintf(n, sizeof(n), "%u", m->n);
		snprintf(f, sizeof(f), "%u", m->f);
		hm_mtext_sample(t, "hypermesh_replica_info", 1, "id", id, "n", n, "f", f, "dataplane",
				m->dataplane ? m->dataplane : "", NULL);
	}
	scalar(t, "hypermesh_max_faulty_replicas", "gauge",
	       "f: how many replicas may fail or lie (n = 3f+1); more than f down stops the cluster.",
	       m->f);
	hm_mtext_family(t, "hypermesh_build_info", "gauge", "The running build: version.");
	hm_mtext_sample(t, "hypermesh_build_info", 1, "version", HM_PROGRAM_VERSION, NULL);
	render_consensus(t, m);
	render_persistence(t, m);
	render_detection(t, m);
	render_traffic(t, m);
	if (m->has_dns)
		render_dns(t, m);
}

/* ---- HTTP -------------------------------------------------------------- */

struct hm_metrics_server {
	struct MHD_Daemon *mhd;
	hm_metrics_render_fn fn;
	void *ctx;
	uint64_t requests;
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned code, const char *type,
			     char *body, size_t len, bool owned)
{
	struct MHD_Response *r = owned
		? MHD_create_response_from_buffer_with_free_callback(len, body, free)
		: MHD_create_response_from_buffer(len, body, MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ret;

	if (!r) {
		if (owned)
			free(body);
		return MHD_NO;
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	ret = MHD_queue_response(c, code, r);
	MHD_destroy_response(r);
	return ret;
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *upload,
			      size_t *upload_len, void **state)
{
	struct hm_metrics_server *s = cls;
	struct hm_mtext t = { 0 };
	static char not_found[] = "not found: try /metrics\n", bad_method[] = "GET only\n",
		    oom[] = "out of memory\n";

	(void)version;
	(void)upload;
	if (!*state) {  /* first call: headers only */
		*state = s;
		return MHD_YES;
	}
	if (*upload_len) {  /* a body we do not want: take it, answer at the end */
		*upload_len = 0;
		return MHD_YES;
	}
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "text/plain", bad_method,
			     sizeof(bad_method) - 1, false);
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, "text/plain", not_found, sizeof(not_found) - 1,
			     false);
	s->requests++;
	s->fn(s->ctx, &t);
	if (t.failed || !t.buf) {
		hm_mtext_free(&t);
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, "text/plain", oom, sizeof(oom) - 1,
			     false);
	}
	return reply(c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", t.buf, t.len,
		     true);
}

static int parse_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss)
{
	struct sockaddr_in *v4 = (void *)ss;
	struct sockaddr_in6 *v6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons(port);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons(port);
		return 0;
	}
	return -1;
}

struct hm_metrics_server *hm_metrics_start(const char *addr, uint16_t port,
					   hm_metrics_render_fn fn, void *ctx, char *err,
					   size_t errlen)
{
	struct hm_metrics_server *s;
	struct sockaddr_storage ss;
	unsigned flags = MHD_USE_EPOLL | MHD_USE_ERROR_LOG;

	if (parse_addr(addr, port, &ss) < 0) {
		snprintf(err, errlen, "metrics address '%s' is not an IPv4 or IPv6 address", addr);
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	s->fn = fn;
	s->ctx = ctx;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	errno = 0;
	s->mhd = MHD_start_daemon(flags, port, NULL, NULL, handle, s, MHD_OPTION_SOCK_ADDR, &ss,
				  MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)5,
				  MHD_OPTION_CONNECTION_LIMIT, (unsigned)16, MHD_OPTION_END);
	if (!s->mhd) {
		snprintf(err, errlen, "cannot serve metrics on %s port %u: %s", addr, port,
			 errno ? strerror(errno) : "libmicrohttpd refused");
		free(s);
		return NULL;
	}
	return s;
}

int hm_metrics_fd(const struct hm_metrics_server *s)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_EPOLL_FD);

	return i ? i->epoll_fd : -1;
}

void hm_metrics_run(struct hm_metrics_server *s)
{
	MHD_run(s->mhd);
}

uint16_t hm_metrics_port(const struct hm_metrics_server *s)
{
	const union MHD_DaemonInfo *i = MHD_get_daemon_info(s->mhd, MHD_DAEMON_INFO_BIND_PORT);

	return i ? i->port : 0;
}

uint64_t hm_metrics_requests(const struct hm_metrics_server *s)
{
	return s->requests;
}

void hm_metrics_stop(struct hm_metrics_server *s)
{
	if (!s)
		return;
	MHD_stop_daemon(s->mhd);
	free(s);
}
