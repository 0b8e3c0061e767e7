// SPDX-License-Identifier: MIT
/* The replica's DNS side: front end, resolver, observation submitter (see
 * dns_daemon.h).  Its OBSERVE ops go through the client transport
 * (user/client/transport.h), driven from the daemon's epoll loop. */
#include "service/dns/dns_daemon.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "client/transport.h"
#include "common/clock.h"
#include "service/dns/dns_chain.h"
#include "service/dns/dns_frontend.h"
#include "service/dns/dns_msg.h"
#include "service/dns/dns_obsq.h"
#include "service/dns/dns_resolver.h"
#include "service/dns/dns_xdp_answers.h"
#include "dataplane/dns_xdp.h"
#include "common/log.h"

#define TICK_MS 100
/* One line per step of a miss at debug level ("dns timeline" and the
 * monotonic clock in microseconds, comparable across the replicas of one
 * machine): how docs/dns.md's "Where a miss's time goes" was measured. */
#define TIMELINE(fmt, ...)                                                              \
	do {                                                                            \
		if (hm_log_enabled(HM_LOG_DEBUG))                                       \
			hm_debug("dns timeline %llu: " fmt,                             \
				 (unsigned long long)hm_mono_us(), ##__VA_ARGS__);      \
	} while (0)
#define XDP_SWEEP_TICKS 10 /* answer map sweep and clock refresh: every second */
#define XDP_ENSURED_SLOTS 4096 /* userspace hits remembered as in step with the map */
#define SUBMIT_GIVE_UP_US (10 * 1000000ull)
/* Bounds on this replica's pending work; beyond them queries get SERVFAIL
 * at once (counted as overload). */
#define MAX_WAITERS 4096
#define MAX_QUEUED_OPS 1024
/* A late observation (Q already decided here) waits this long for a fresh
 * request to ride along with before it gets one of its own, and at most
 * this many of its bytes ride with fresh observations (dns_obsq.h). */
#define LATE_DELAY_US (200 * 1000ull)
#define LATE_RIDE_BYTES 4096
/* Our observations queued or sent and not yet seen executed, remembered so
 * that the lookup opening meanwhile does not make us observe twice. */
#define RECENT_OBS 64
/* Serve-expired (RFC 8767): copies of decided answers, bounded in number
 * and bytes; the TTL a stale answer is served with (RFC 8767 section 4). */
#define MAX_STALE 4096
#define MAX_STALE_BYTES (16u << 20)
#define STALE_TTL 30

/* One local lookup of Q at agreed time T, until its OBSERVE is queued. */
struct job {
	struct hm_dns_daemon *dd;
	struct hm_dns_q q;
	int64_t t;
	struct hm_dns_query query;   /* the question in the form dns_msg wants */
	bool busy;                   /* a resolver or chain callback will come */
	bool cancelled;              /* Q decided meanwhile: drop the result */
	uint8_t status;
	uint16_t ede;
	uint32_t ttl;
	uint8_t *canon;
	size_t canon_len;
	uint64_t started_us;         /* when the resolver was asked */
	struct job *next;
};

/* The validator's reason for a recent local failure of Q (libunbound's
 * why_bogus, e.g. "signature crypto failed from 198.18.53.53"): for the
 * log line and the EDE text of the SERVFAIL.  Local, not agreed: each
 * replica tells what its own validator saw. */
#define REASONS 64
struct reason {
	struct hm_dns_q q;
	char why[160];
};

/* A client query parked until Q is decided. */
struct waiter {
	struct hm_dns_request *req;
	struct hm_dns_query query;
	struct hm_dns_q q;
	uint64_t deadline_us;
	struct waiter *next;
};

/* A decided answer kept past its expiry for serve-expired: the certified
 * cache evicts it at the first op whose agreed T passes the expiry. */
struct stale {
	struct hm_dns_q q;
	int64_t expiry;
	uint8_t *canon;
	size_t canon_len;
};

struct hm_dns_daemon {
	const struct hm_config *cfg;
	uint32_t id;
	struct hm_dns_service *svc;
	const struct hm_dns_anchors *anchors;
	struct hm_dns_frontend *fe;
	struct hm_dns_resolver *res;
	struct hm_transport client;  /* OBSERVE ops to the replicas, as a client */
	int timer_fd;
	uint64_t submitted_at;
	struct job *jobs;
	struct waiter *waiters;
	struct hm_dns_obsq obsq;      /* our OBSERVEs waiting for the client */
	struct hm_dns_upstream ups[HM_DNS_MAX_UPSTREAMS];
	size_t n_ups;
	/* counters */
	uint64_t cache_hits, cache_misses, timeouts, observations_sent, submit_abandoned;
	uint64_t observe_requests; /* requests that carried observations_sent */
	uint64_t observations_dropped; /* did not fit a request (logged) */
	uint64_t chains_collected, chains_failed;
	uint64_t late_sent;          /* late observations among observations_sent */
	uint64_t completed_locally;  /* requests done when this replica executed them */
	struct { struct hm_dns_q q; int64_t t; } recent[RECENT_OBS];
	unsigned next_recent;
	uint64_t n_waiters, overload, norec_refused, stale_served;
	uint64_t prefetch_lookups;   /* prefetch lookups resolved on a fresh context */
	/* Audit lookups (hook_opened): a token bucket of audit_lookups_per_s,
	 * at most one second's worth. */
	double audit_tokens;
	uint64_t audit_refilled_us, audits, audits_skipped;
	uint64_t reported_norec, reported_stale, reported_at_us; /* the last log summary */
	struct stale *stale[MAX_STALE];
	size_t n_stale, stale_bytes;
	uint64_t answers[HM_DNS_ANS_RULES][16];
	uint64_t upstream_buckets[HM_DNS_UPSTREAM_BUCKETS + 1], upstream_count;
	double upstream_sum_s;
	struct reason reasons[REASONS];
	unsigned next_reason;
	uint64_t failures_logged_at, failures_unlogged; /* rate limit of timeout lines */
	/* answers from XDP */
	bool xdp_on;
	struct hm_dns_xdp xdp;
	struct hm_dns_xdp_sync_stats xsync;
	uint32_t xdp_entries;
	unsigned ticks;
	/* (hash of Q, expiry) of entries a userspace hit found in the map, so
	 * that the next hits cost no map lookup (a collision only delays an
	 * install until the slot is reused). */
	struct { uint64_t h; int64_t expiry; } ensured[XDP_ENSURED_SLOTS];
};

const double hm_dns_upstream_bounds_s[HM_DNS_UPSTREAM_BUCKETS] = {
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5,
};

const char *hm_dns_answer_rule_name(enum hm_dns_answer_rule r)
{
	static const char *const names[HM_DNS_ANS_RULES] = {
		"dnssec", "observed", "fail", "timeout", "overload", "frontend", "stale",
	};

	return r < HM_DNS_ANS_RULES ? names[r] : "?";
}

/* Send a reply and count it by rule and RCODE (the header's low 4 bits). */
static void respond(struct hm_dns_daemon *dd, struct hm_dns_request *req, const uint8_t *out,
		    size_t n, enum hm_dns_answer_rule rule)
{
	if (!n) {
		hm_dns_frontend_drop(dd->fe, req);
		return;
	}
	if (n >= 4)
		dd->answers[rule][out[3] & 0xf]++;
	hm_dns_frontend_respond(dd->fe, req, out, n);
}

static void q_text(const struct hm_dns_q *q, char *buf, size_t cap)
{
	ldns_rdf *d = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, q->qname_len, q->qname);
	char *name = d ? ldns_rdf2str(d) : NULL;
	ldns_rr_type t = (ldns_rr_type)q->qtype;
	const ldns_rr_descriptor *desc = ldns_rr_descript(t);

	snprintf(buf, cap, "%s %s", name ? name : "?", desc && desc->_name ? desc->_name : "TYPE?");
	free(name);
	ldns_rdf_deep_free(d);
}

static void remember_reason(struct hm_dns_daemon *dd, const struct hm_dns_q *q, const char *why)
{
	struct reason *r = &dd->reasons[dd->next_reason++ % REASONS];

	r->q = *q;
	snprintf(r->why, sizeof(r->why), "%s", why);
}

static const char *reason_of(const struct hm_dns_daemon *dd, const struct hm_dns_q *q)
{
	for (unsigned i = 0; i < REASONS; i++) {
		const struct reason *r = &dd->reasons[(dd->next_reason - 1 - i) % REASONS];

		if (r->why[0] && r->q.qname_len == q->qname_len && r->q.qtype == q->qtype &&
		    r->q.qclass == q->qclass && memcmp(r->q.qname, q->qname, q->qname_len) == 0)
			return r->why;
	}
	return NULL;
}

static void count_upstream(struct hm_dns_daemon *dd, uint64_t started_us)
{
	double s = (double)(hm_mono_us() - started_us) / 1e6;
	unsigned b = 0;

	while (b < HM_DNS_UPSTREAM_BUCKETS && s > hm_dns_upstream_bounds_s[b])
		b++;
	dd->upstream_buckets[b]++;
	dd->upstream_count++;
	dd->upstream_sum_s += s;
}

int64_t hm_dns_wall_clock(void)
{
	return (int64_t)time(NULL);
}

static bool q_eq(const struct hm_dns_q *a, const struct hm_dns_q *b)
{
	return a->qname_len == b->qname_len && a->qtype == b->qtype && a->qclass == b->qclass &&
	       memcmp(a->qname, b->qname, a->qname_len) == 0;
}

/* ---- submitting ops through the replicated service ----------------------- */

/* The queued OBSERVEs for one request (dns_obsq.h: fresh ones first, late
 * ones riding along or on their own once they waited), as one
 * OBSERVE_MANY or the one alone: concurrent misses share an agreement
 * round instead of waiting one round each behind the client's single
 * outstanding request. */
static void submit_queued(struct hm_dns_daemon *dd)
{
	size_t room = dd->client.core.max_message_size - 2 * HM_HDR_LEN - 8;
	struct hm_dns_obs_op *taken[HM_DNS_OBSERVE_MANY_MAX];
	const uint8_t *bufs[HM_DNS_OBSERVE_MANY_MAX];
	size_t lens[HM_DNS_OBSERVE_MANY_MAX], n, len = 0, total = 0, late = 0;
	uint8_t *many = NULL;

	n = hm_dns_obsq_take(&dd->obsq, room, taken, HM_DNS_OBSERVE_MANY_MAX);
	if (!n)
		return;
	for (size_t i = 0; i < n; i++) {
		bufs[i] = taken[i]->buf;
		lens[i] = taken[i]->len;
		total += lens[i];
		late += taken[i]->late;
	}
	if (n == 1) {
		len = lens[0];
	} else {
		len = hm_dns_observe_many_len(total, n);
		many = malloc(len);
		if (!many || hm_dns_observe_many_encode(bufs, lens, n, many, len) != len)
			len = 0;
		bufs[0] = many;
	}
	if (len && hm_transport_submit(&dd->client, bufs[0], len, NULL) == HM_TRANSPORT_OK) {
		TIMELINE("request %llu sent: %zu observation(s), %zu late, %zu bytes",
			 (unsigned long long)dd->client.core.ts, n, late, len);
		dd->submitted_at = hm_mono_us();
		dd->observations_sent += n;
		dd->late_sent += late;
		dd->observe_requests++;
	} else {
		dd->observations_dropped += n;
		hm_warn("dns: %zu observation(s), %zu bytes, do not fit a request; dropped", n, len);
	}
	free(many);
	for (size_t i = 0; i < n; i++)
		hm_dns_obs_op_free(taken[i]);
}

static void pump(struct hm_dns_daemon *dd)
{
	while (!hm_transport_busy(&dd->client) && hm_dns_obsq_due(&dd->obsq, hm_mono_us()))
		submit_queued(dd);
}

/* Queue our observation of q at t: late when this replica already executed
 * a decision of q at t or later (it then only feeds the poisoning
 * statistic, and waits for a ride; dns_obsq.h). */
static void enqueue(struct hm_dns_daemon *dd, uint8_t *buf, size_t len, const struct hm_dns_q *q,
		    int64_t t)
{
	bool late = hm_dns_obs_late(hm_dns_service_lookup(dd->svc, q), t, hm_dns_wall_clock());

	if (!hm_dns_obsq_push(&dd->obsq, buf, len, q, t, late, hm_mono_us())) {
		dd->overload++;
		return;
	}
	TIMELINE("observation queued (%s), %zu queued, client %s", late ? "late" : "fresh",
		 hm_dns_obsq_len(&dd->obsq), hm_transport_busy(&dd->client) ? "busy" : "idle");
	pump(dd);
}

static void client_input(struct hm_dns_daemon *dd)
{
	/* The result itself does not matter here: a decision reaches this
	 * replica through its own execution (the decided hook). */
	if (hm_transport_pump(&dd->client) && dd->client.core.status != HM_REPLY_RESULT) {
		char why[256];

		hm_warn("dns: %s", hm_transport_refusal(&dd->client, why, sizeof(why)));
	}
	pump(dd);
}

/* ---- jobs: resolve, build the observation, queue it ---------------------- */

static void job_unlink(struct hm_dns_daemon *dd, struct job *j)
{
	for (struct job **p = &dd->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			break;
		}
	free(j->canon);
	free(j);
}

static void job_submit(struct job *j, const uint8_t *chain, size_t chain_len)
{
	struct hm_dns_daemon *dd = j->dd;
	size_t cap = 1 + 1 + 255 + 4 + 8 + 1 + 2 + 4 + 4 + j->canon_len + 4 + chain_len;
	uint8_t *buf = malloc(cap);
	size_t n;

	if (!buf)
		return;
	n = hm_dns_observe_encode(&j->q, j->t, j->status, j->ede, j->ttl, j->canon, j->canon_len,
				  chain, chain_len, buf, cap);
	if (n) {
		dd->recent[dd->next_recent % RECENT_OBS].q = j->q;
		dd->recent[dd->next_recent++ % RECENT_OBS].t = j->t;
		enqueue(dd, buf, n, &j->q, j->t);
	} else
		free(buf);
}

static void on_chain(void *arg, uint8_t *chain, size_t len, const char *err)
{
	struct job *j = arg;
	struct hm_dns_daemon *dd = j->dd;

	j->busy = false;
	TIMELINE("chain %s", chain ? "collected" : "not collected");
	if (chain)
		dd->chains_collected++;
	else {
		dd->chains_failed++;
		hm_debug("dns: no chain: %s", err ? err : "?");
	}
	if (!j->cancelled)
		job_submit(j, chain, chain ? len : 0);
	free(chain);
	job_unlink(dd, j);
}

static void on_resolved(void *arg, const struct hm_dns_result *res)
{
	struct job *j = arg;
	struct hm_dns_daemon *dd = j->dd;
	bool secure = res->sec == HM_DNS_SEC_SECURE;

	j->busy = false;
	TIMELINE("resolved %s (sec %d)", j->query.name, res->sec);
	count_upstream(dd, j->started_us);
	if (res->why)
		remember_reason(dd, &j->q, res->why);
	if (j->cancelled) {
		job_unlink(dd, j);
		return;
	}
	if (res->sec == HM_DNS_SEC_SECURE || res->sec == HM_DNS_SEC_INSECURE)
		j->canon = hm_dns_canon_from_reply(&j->query, res->packet, res->packet_len, secure,
						   &j->canon_len);
	if (j->canon) {
		j->status = HM_DNS_OBS_ANSWER;
		j->ttl = res->ttl;
	} else {
		j->status = res->sec == HM_DNS_SEC_BOGUS ? HM_DNS_OBS_BOGUS : HM_DNS_OBS_FAILED;
		j->ede = (uint16_t)(res->ede >= 0 ? res->ede : HM_EDE_OTHER);
	}
	/* Rule (a) needs the chain: only for a secure positive answer. */
	if (j->canon && secure && dd->cfg->dns.chains && dd->anchors && res->rcode == 0 &&
	    res->havedata) {
		j->busy = true;
		if (hm_dns_chain_collect(dd->res, dd->anchors, j->canon, j->canon_len, on_chain, j) == 0)
			return;
		j->busy = false;
	}
	job_submit(j, NULL, 0);
	job_unlink(dd, j);
}

static int set_epoch(struct hm_dns_daemon *dd, int64_t t)
{
	int64_t epoch = dd->cfg->dns.validation_epoch_s;
	int64_t ref = t - t % epoch;

	if (hm_dns_resolver_time(dd->res) == ref)
		return 0;
	return hm_dns_resolver_set_time(dd->res, ref);
}

/* Resolve j's question.  For a prefetch (Q still cached, T after its
 * decision) on a context with an empty cache: libunbound would otherwise
 * answer from its own cache with the TTL that is left, and the fresh
 * decision would expire when the old one does. */
static int start_lookup(struct hm_dns_daemon *dd, struct job *j)
{
	const struct hm_dns_entry *e = hm_dns_service_lookup(dd->svc, &j->q);

	if (e && e->rule != HM_DNS_RULE_FAIL && j->t > e->t) {
		if (hm_dns_resolve_fresh(dd->res, j->query.name, j->q.qtype, j->q.qclass,
					 on_resolved, j) == 0) {
			dd->prefetch_lookups++;
			return 0;
		}
		hm_debug("dns: no fresh context for a prefetch (at most %d at once); cached lookup",
			 HM_DNS_MAX_FRESH);
	}
	return hm_dns_resolve(dd->res, j->query.name, j->q.qtype, j->q.qclass, on_resolved, j);
}

/* May this replica start one more audit lookup now? */
static bool audit_allowed(struct hm_dns_daemon *dd)
{
	double rate = dd->cfg->dns.audit_lookups_per_s;
	uint64_t now = hm_mono_us();

	dd->audit_tokens += rate * (double)(now - dd->audit_refilled_us) / 1e6;
	if (dd->audit_tokens > rate)
		dd->audit_tokens = rate;
	dd->audit_refilled_us = now;
	if (dd->audit_tokens < 1) {
		dd->audits_skipped++;
		return false;
	}
	dd->audit_tokens -= 1;
	dd->audits++;
	return true;
}

/* Start observing Q at T unless this replica already does or did.  An
 * audit (Q decided at T or later without us) only within the budget. */
static void observe(struct hm_dns_daemon *dd, const struct hm_dns_q *q, int64_t t, bool audit)
{
	char *name;
	ldns_rdf *d;
	struct job *j;

	for (j = dd->jobs; j; j = j->next)
		if (q_eq(&j->q, q) && j->t == t)
			return;
	if (hm_dns_service_observed(dd->svc, q, t, dd->id))
		return;
	for (unsigned i = 0; i < RECENT_OBS; i++)
		if (dd->recent[i].t == t && q_eq(&dd->recent[i].q, q))
			return;
	if (audit && !audit_allowed(dd))
		return;
	j = calloc(1, sizeof(*j));
	d = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, q->qname_len, q->qname);
	name = d ? ldns_rdf2str(d) : NULL;
	ldns_rdf_deep_free(d);
	if (!j || !name || strlen(name) >= sizeof(j->query.name)) {
		free(j);
		free(name);
		return;
	}
	j->dd = dd;
	j->q = *q;
	j->t = t;
	strcpy(j->query.name, name);
	free(name);
	memcpy(j->query.qname, q->qname, q->qname_len);
	j->query.qname_len = q->qname_len;
	j->query.qtype = q->qtype;
	j->query.qclass = q->qclass;
	j->next = dd->jobs;
	dd->jobs = j;
	if (set_epoch(dd, t) < 0)
		hm_warn("dns: cannot move the resolver to time %lld", (long long)t);
	j->busy = true;
	j->started_us = hm_mono_us();
	TIMELINE("lookup of %s at T %lld started", j->query.name, (long long)t);
	if (start_lookup(dd, j) < 0) {
		/* Refused locally: observe a failure so the lookup still closes. */
		j->busy = false;
		j->status = HM_DNS_OBS_FAILED;
		j->ede = HM_EDE_OTHER;
		job_submit(j, NULL, 0);
		job_unlink(dd, j);
	}
}

/* ---- hooks from the deterministic execution ------------------------------ */

/* This replica executed a request of client `client` at timestamp ts.  When
 * it is our own outstanding one, it committed (2f+1 replicas prepared and
 * committed it; every correct replica executes it at the same place), so
 * the client's next request need not wait for the f+1 replies: the result
 * does not matter here (a decision reaches us through our own execution)
 * and the replies that still come are ignored as an old request's. */
static void hook_executed(void *arg, uint32_t client, uint64_t ts)
{
	struct hm_dns_daemon *dd = arg;

	if (client != dd->client.core.id || !hm_transport_busy(&dd->client) ||
	    ts != dd->client.core.ts)
		return;
	TIMELINE("request %llu executed here", (unsigned long long)ts);
	hm_transport_abandon(&dd->client);
	dd->completed_locally++;
	pump(dd);
}

/* A lookup of q at t opened, by the observation that was just executed,
 * which may also have decided q (rule (a) decides on one secure answer).
 * Then this replica's lookup can no longer decide q: it would only be
 * compared with the decision, for the poisoning statistic.  Every miss
 * would otherwise cost n lookups and n - 1 more observations for every
 * replica to execute; such audits are made at audit_lookups_per_s, a
 * sample, which is what a statistic needs (docs/dns.md, "Audit lookups"). */
static void hook_opened(void *arg, const struct hm_dns_q *q, int64_t t)
{
	struct hm_dns_daemon *dd = arg;

	observe(dd, q, t, hm_dns_obs_late(hm_dns_service_lookup(dd->svc, q), t, hm_dns_wall_clock()));
}

/* The agreed prefetch of q failed: the cached answer is served until it
 * expires, as without prefetch.  Each replica logs it (agreed: once per
 * prefetch). */
static void hook_prefetch_failed(void *arg, const struct hm_dns_q *q, uint16_t ede)
{
	struct hm_dns_daemon *dd = arg;
	const char *why = reason_of(dd, q);
	char text[300];

	q_text(q, text, sizeof(text));
	hm_log_kv(HM_LOG_WARN, "prefetch failed", "query", text, "ede", HM_KV_U(ede), "reason",
		  why ? why : "no agreement on a fresh answer", NULL);
}

/* A hit in the last tenth of the answer's TTL: observe Q afresh (or join
 * the prefetch already open), so that a new agreed answer replaces this
 * one before it expires.  Only the service's state decides whether an
 * observation opens a prefetch, so replicas whose clocks differ cannot
 * split; this replica's clock only picks when it asks. */
static void maybe_prefetch(struct hm_dns_daemon *dd, const struct hm_dns_q *q, int64_t now)
{
	int64_t t;

	if (!dd->cfg->dns.prefetch)
		return;
	if (!hm_dns_service_open_t(dd->svc, q, &t)) {
		if (!hm_dns_service_prefetch_due(dd->svc, q, now))
			return;
		for (struct job *j = dd->jobs; j; j = j->next)
			if (q_eq(&j->q, q))
				return; /* one prefetch of Q at a time from here */
		t = now;
	}
	observe(dd, q, t, false);
}

/* A SERVFAIL with no agreed entry behind it (timeout, overload): a line
 * with the reason, at most one a second (a flood must not flood the log);
 * the count of those not logged goes with the next one. */
static void log_unanswered(struct hm_dns_daemon *dd, const struct hm_dns_q *q, const char *why)
{
	uint64_t now = hm_mono_us();
	char text[300];

	if (dd->failures_logged_at && now < dd->failures_logged_at + 1000000) {
		dd->failures_unlogged++;
		return;
	}
	q_text(q, text, sizeof(text));
	hm_log_kv(HM_LOG_INFO, "SERVFAIL", "query", text, "reason", why, "not_logged_since",
		  HM_KV_U(dd->failures_unlogged), NULL);
	dd->failures_logged_at = now;
	dd->failures_unlogged = 0;
}

/* The EDE extra text of an agreed failure: what the replicas agreed, and
 * the reason this replica's validator gave, when it has one. */
static void servfail_text(const struct hm_dns_daemon *dd, const struct hm_dns_entry *e,
			  char *text, size_t cap)
{
	const char *why = reason_of(dd, &e->q);

	snprintf(text, cap, "%s%s%s", e->ede == HM_EDE_OTHER ? "no agreement among the replicas"
							    : "replicas agree the answer fails",
		 why ? ": " : "", why ? why : "");
}

/* The reply to one parked query from a decided entry. */
static void answer(struct hm_dns_daemon *dd, struct hm_dns_request *req,
		   const struct hm_dns_query *query, const struct hm_dns_entry *e, int64_t now)
{
	static uint8_t out[65535];
	char text[256];
	size_t n;

	if (e->rule == HM_DNS_RULE_FAIL) {
		servfail_text(dd, e, text, sizeof(text));
		n = hm_dns_error_reply(query, HM_DNS_SERVFAIL, e->ede, text, out, sizeof(out));
	} else {
		int64_t left = e->expiry - now;

		if (left < 0)
			left = 0;
		if (left > e->ttl)
			left = e->ttl;
		n = hm_dns_reply_build(query, e->canon, e->canon_len, (uint32_t)left, query->max_size,
				       out, sizeof(out));
	}
	respond(dd, req, out, n, e->rule == HM_DNS_RULE_DNSSEC ? HM_DNS_ANS_DNSSEC
				 : e->rule == HM_DNS_RULE_OBSERVED ? HM_DNS_ANS_OBSERVED
								   : HM_DNS_ANS_FAIL);
}

/* One line per agreed failure (not per query answered from it): the
 * question, the EDE code and this replica's validator's reason. */
static void log_servfail(struct hm_dns_daemon *dd, const struct hm_dns_entry *e)
{
	char q[300], text[256];

	if (!hm_log_enabled(HM_LOG_INFO))
		return;
	q_text(&e->q, q, sizeof(q));
	servfail_text(dd, e, text, sizeof(text));
	hm_log_kv(HM_LOG_INFO, "SERVFAIL", "query", q, "ede", HM_KV_U(e->ede), "rule", "fail",
		  "reason", text, NULL);
}

/* ---- serve-expired: copies of decided answers -------------------------- */

static struct stale **stale_find(struct hm_dns_daemon *dd, const struct hm_dns_q *q)
{
	for (size_t i = 0; i < dd->n_stale; i++)
		if (q_eq(&dd->stale[i]->q, q))
			return &dd->stale[i];
	return NULL;
}

static void stale_drop(struct hm_dns_daemon *dd, struct stale **slot)
{
	struct stale *st = *slot;

	dd->stale_bytes -= st->canon_len;
	free(st->canon);
	free(st);
	*slot = dd->stale[--dd->n_stale];
}

/* The copy that expired first goes (it is the least useful). */
static void stale_drop_oldest(struct hm_dns_daemon *dd)
{
	size_t victim = 0;

	for (size_t i = 1; i < dd->n_stale; i++)
		if (dd->stale[i]->expiry < dd->stale[victim]->expiry)
			victim = i;
	stale_drop(dd, &dd->stale[victim]);
}

/* Keep a copy of a decided answer (failures are never served stale). */
static void stale_keep(struct hm_dns_daemon *dd, const struct hm_dns_entry *e)
{
	struct stale **slot, *st;

	if (!dd->cfg->dns.serve_expired_s || e->rule == HM_DNS_RULE_FAIL || !e->canon ||
	    e->canon_len > MAX_STALE_BYTES / 16)
		return;
	if ((slot = stale_find(dd, &e->q)))
		stale_drop(dd, slot);
	while (dd->n_stale && (dd->n_stale >= MAX_STALE ||
			       dd->stale_bytes + e->canon_len > MAX_STALE_BYTES))
		stale_drop_oldest(dd);
	st = calloc(1, sizeof(*st));
	if (!st || !(st->canon = malloc(e->canon_len))) {
		free(st);
		return;
	}
	memcpy(st->canon, e->canon, e->canon_len);
	st->canon_len = e->canon_len;
	st->q = e->q;
	st->expiry = e->expiry;
	dd->stale[dd->n_stale++] = st;
	dd->stale_bytes += e->canon_len;
}

/* Answer with an expired copy of q when it expired at most serve_expired_s
 * ago: the data was agreed, only its TTL ran out.  True if answered. */
static bool serve_stale(struct hm_dns_daemon *dd, struct hm_dns_request *req,
			const struct hm_dns_query *query, const struct hm_dns_q *q, int64_t now)
{
	static uint8_t out[65535];
	struct stale **slot = dd->cfg->dns.serve_expired_s ? stale_find(dd, q) : NULL;
	size_t n;

	if (!slot || now < (*slot)->expiry)
		return false;
	if (now - (*slot)->expiry > (int64_t)dd->cfg->dns.serve_expired_s) {
		stale_drop(dd, slot);
		return false;
	}
	n = hm_dns_reply_build_ede(query, (*slot)->canon, (*slot)->canon_len, STALE_TTL,
				   query->max_size, HM_EDE_STALE_ANSWER,
				   "expired certified answer; a fresh agreement is running", out,
				   sizeof(out));
	if (!n)
		return false;
	respond(dd, req, out, n, HM_DNS_ANS_STALE);
	dd->stale_served++;
	return true;
}

static void hook_decided(void *arg, const struct hm_dns_entry *e)
{
	struct hm_dns_daemon *dd = arg;
	int64_t now = hm_dns_wall_clock();

	TIMELINE("decided (rule %u)", e->rule);
	if (e->rule == HM_DNS_RULE_FAIL)
		log_servfail(dd, e);
	/* Our observations of Q still queued can no longer decide it. */
	hm_dns_obsq_decided(&dd->obsq, e, now);
	stale_keep(dd, e);
	/* Decided (2f+1 agreed): from now on XDP may answer it. */
	if (dd->xdp_on && e->rule != HM_DNS_RULE_FAIL)
		hm_dns_xdp_install(hm_dns_xdp_answers_fd(&dd->xdp), e, &dd->xsync);
	for (struct waiter **p = &dd->waiters; *p;) {
		struct waiter *w = *p;

		if (!q_eq(&w->q, &e->q)) {
			p = &w->next;
			continue;
		}
		answer(dd, w->req, &w->query, e, now);
		TIMELINE("answered %s", w->query.name);
		*p = w->next;
		free(w);
		dd->n_waiters--;
	}
	/* Lookups still running go on: their late observations are what the
	 * poisoning statistic compares with the decision. */
}

/* ---- the front end ------------------------------------------------------- */

static void reply_error(struct hm_dns_daemon *dd, struct hm_dns_request *req,
			const struct hm_dns_query *query, int rcode, int ede, const char *text)
{
	uint8_t out[512];
	size_t n = hm_dns_error_reply(query, rcode, ede, text, out, sizeof(out));

	respond(dd, req, out, n, HM_DNS_ANS_FRONTEND);
}

static uint64_t q_hash(const struct hm_dns_q *q)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	for (size_t i = 0; i < q->qname_len; i++)
		h = (h ^ q->qname[i]) * 0x100000001b3ull;
	h = (h ^ q->qtype) * 0x100000001b3ull;
	return (h ^ q->qclass) * 0x100000001b3ull;
}

/* Make sure the XDP map holds e, at most once per entry (most userspace
 * hits are queries XDP passes up on purpose: cookies, TCP, ...). */
static void xdp_ensure(struct hm_dns_daemon *dd, const struct hm_dns_entry *e)
{
	uint64_t h = q_hash(&e->q);
	size_t slot = h % XDP_ENSURED_SLOTS;

	if (dd->ensured[slot].h == h && dd->ensured[slot].expiry == e->expiry)
		return;
	hm_dns_xdp_ensure(hm_dns_xdp_answers_fd(&dd->xdp), e, &dd->xsync);
	dd->ensured[slot].h = h;
	dd->ensured[slot].expiry = e->expiry;
}

static void on_query(void *arg, struct hm_dns_request *req, const struct hm_dns_query *query)
{
	struct hm_dns_daemon *dd = arg;
	const struct hm_dns_entry *e;
	struct waiter *w;
	struct hm_dns_q q;
	int64_t now = hm_dns_wall_clock(), t;
	uint8_t out[512];
	size_t n;

	if (hm_dns_q_from_name(&q, query->qname, query->qname_len, query->qtype, query->qclass) < 0) {
		n = hm_dns_error_reply(query, HM_DNS_FORMERR, -1, NULL, out, sizeof(out));
		respond(dd, req, out, n, HM_DNS_ANS_FRONTEND);
		return;
	}
	/* A certified entry the local clock has not expired: no round. */
	e = hm_dns_service_lookup(dd->svc, &q);
	if (e && now < e->expiry && (e->rule == HM_DNS_RULE_FAIL || e->canon)) {
		dd->cache_hits++;
		/* A failed fresh agreement (the upstreams are down, say) does not
		 * hide an agreed answer still within the serve-expired bound:
		 * RFC 8767's case. */
		if (e->rule != HM_DNS_RULE_FAIL || !serve_stale(dd, req, query, &q, now))
			answer(dd, req, query, e, now);
		/* A hit here that XDP could serve: the entry predates the
		 * responder (a restart, a state transfer) or was swept. */
		if (dd->xdp_on && e->rule != HM_DNS_RULE_FAIL)
			xdp_ensure(dd, e);
		maybe_prefetch(dd, &q, now);
		return;
	}
	dd->cache_misses++;
	TIMELINE("miss %s", query->name);
	/* RD=0 (RFC 1034 4.3.1): the client asks what we hold, not for a
	 * lookup.  A miss is not resolved: REFUSED with EDE 20, as RFC 8914
	 * 4.21 describes for a query we cannot answer without recursion. */
	if (!query->rd) {
		dd->norec_refused++;
		reply_error(dd, req, query, HM_DNS_REFUSED, HM_EDE_NOT_AUTHORITATIVE,
			    "RD=0 and not in the certified cache");
		return;
	}
	/* Expired, within the serve-expired bound: answered now from the agreed
	 * copy (EDE 3), and a fresh agreement starts (its result updates the
	 * cache; this client has its answer and does not wait). */
	if (serve_stale(dd, req, query, &q, now)) {
		if (!hm_dns_service_open_t(dd->svc, &q, &t))
			t = now;
		observe(dd, &q, t, false);
		return;
	}
	w = dd->n_waiters < MAX_WAITERS ? calloc(1, sizeof(*w)) : NULL;
	if (!w) {
		dd->overload++;
		n = hm_dns_error_reply(query, HM_DNS_SERVFAIL, HM_EDE_OTHER, "overloaded", out,
				       sizeof(out));
		log_unanswered(dd, &q, "overloaded: too many queries waiting for agreement");
		respond(dd, req, out, n, HM_DNS_ANS_OVERLOAD);
		return;
	}
	dd->n_waiters++;
	w->req = req;
	w->query = *query;
	w->q = q;
	w->deadline_us = hm_mono_us() + (uint64_t)dd->cfg->dns.query_timeout_ms * 1000;
	w->next = dd->waiters;
	dd->waiters = w;
	/* Join the open lookup at its T; otherwise our own observation opens
	 * one when it executes. */
	if (!hm_dns_service_open_t(dd->svc, &q, &t))
		t = now;
	observe(dd, &q, t, false);
}

/* ---- the timer: parked queries that waited too long, retransmissions ---- */

/* Per-query events an operator should know of, summarised in the log at
 * most every 10 s (a line per query would flood it). */
static void report(struct hm_dns_daemon *dd, uint64_t now)
{
	if (now - dd->reported_at_us < 10 * 1000000ull ||
	    (dd->norec_refused == dd->reported_norec && dd->stale_served == dd->reported_stale))
		return;
	hm_info("dns: since the last report %llu RD=0 queries not in the cache refused (EDE 20), "
		"%llu expired answers served (EDE 3, serve_expired_s %u)",
		(unsigned long long)(dd->norec_refused - dd->reported_norec),
		(unsigned long long)(dd->stale_served - dd->reported_stale),
		dd->cfg->dns.serve_expired_s);
	dd->reported_norec = dd->norec_refused;
	dd->reported_stale = dd->stale_served;
	dd->reported_at_us = now;
}

static void tick(struct hm_dns_daemon *dd)
{
	uint64_t now = hm_mono_us(), expirations;
	uint8_t out[512];

	if (read(dd->timer_fd, &expirations, sizeof(expirations)) < 0 && errno != EAGAIN)
		hm_debug("dns timer: %s", strerror(errno));
	report(dd, now);
	for (struct waiter **p = &dd->waiters; *p;) {
		struct waiter *w = *p;
		size_t n;

		if (now < w->deadline_us) {
			p = &w->next;
			continue;
		}
		dd->timeouts++;
		n = hm_dns_error_reply(&w->query, HM_DNS_SERVFAIL, HM_EDE_NO_REACHABLE_AUTHORITY,
				       "no agreement in time", out, sizeof(out));
		log_unanswered(dd, &w->q, "no agreement in time (query_timeout_ms)");
		respond(dd, w->req, out, n, HM_DNS_ANS_TIMEOUT);
		*p = w->next;
		free(w);
		dd->n_waiters--;
	}
	/* A request the cluster never answers (refused by check(), say) must
	 * not block the queue behind it. */
	if (hm_transport_busy(&dd->client) && now - dd->submitted_at > SUBMIT_GIVE_UP_US) {
		hm_transport_abandon(&dd->client);
		dd->submit_abandoned++;
	}
	hm_transport_tick(&dd->client);
	pump(dd);
	if (dd->xdp_on && ++dd->ticks % XDP_SWEEP_TICKS == 0) {
		hm_dns_xdp_refresh_clock(&dd->xdp);
		dd->xdp_entries = hm_dns_xdp_sweep(hm_dns_xdp_answers_fd(&dd->xdp), dd->svc,
						   hm_dns_wall_clock(), &dd->xsync);
	}
}

/* ---- answers from XDP ---------------------------------------------------- */

int hm_dns_daemon_attach_xdp(struct hm_dns_daemon *dd, int tail_fd, char *err, size_t errlen)
{
	const struct hm_dns_config *c = &dd->cfg->dns;
	struct hm_dns_xdp_opts o = {
		.ifname = c->xdp_interface[0] ? c->xdp_interface : dd->cfg->interface,
		.tail_fd = tail_fd,
		.port = c->listen_port,
		.rrl_rate = c->rrl_rate,
		.rrl_burst = c->rrl_burst,
		.rrl_slip = c->rrl_slip,
		.rrl_prefix4 = (uint8_t)c->rrl_ipv4_prefix,
		.rrl_prefix6 = (uint8_t)c->rrl_ipv6_prefix,
		.allow = c->allow,
		.n_allow = c->n_allow,
	};

	if (!dd->fe)
		return hm_set_err(err, errlen, "dns.xdp needs the front end (listen_port is off)");
	if (!o.ifname[0])
		return hm_set_err(err, errlen, "dns.xdp needs dns.xdp_interface or network.interface");
	if (hm_dns_xdp_open(&dd->xdp, &o, err, errlen) < 0)
		return -1;
	dd->xdp_on = true;
	hm_info("dns: cache hits answered from XDP on %s (%s), port %u, rrl %u/s per /%u and /%u "
		"(slip %u)", o.ifname, dd->xdp.how, o.port, o.rrl_rate, o.rrl_prefix4, o.rrl_prefix6,
		o.rrl_slip);
	return 0;
}

bool hm_dns_daemon_xdp_stats(struct hm_dns_daemon *dd, struct hm_dns_xdp_stats *out)
{
	return dd->xdp_on && hm_dns_xdp_read_stats(&dd->xdp, out) == 0;
}

static json_t *xdp_status(struct hm_dns_daemon *dd)
{
	struct hm_dns_xdp_stats st;

	hm_dns_xdp_read_stats(&dd->xdp, &st);
	return json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"attached", dd->xdp.how, "hit", (json_int_t)st.hit, "miss", (json_int_t)st.miss,
		"expired", (json_int_t)st.expired, "pass", (json_int_t)st.pass, "tc", (json_int_t)st.tc,
		"rrl_dropped", (json_int_t)st.rrl_dropped, "rrl_slipped", (json_int_t)st.rrl_slipped,
		"grow_failed", (json_int_t)st.grow_failed, "not_allowed", (json_int_t)st.not_allowed,
		"entries", (json_int_t)dd->xdp_entries,
		"installed", (json_int_t)dd->xsync.installed,
		"not_servable", (json_int_t)dd->xsync.not_servable,
		"removed", (json_int_t)dd->xsync.removed, "errors", (json_int_t)dd->xsync.errors);
}

/* ---- setup --------------------------------------------------------------- */

/* This replica's upstreams: those naming it, else those naming nobody. */
static void pick_upstreams(struct hm_dns_daemon *dd)
{
	const struct hm_dns_config *c = &dd->cfg->dns;
	bool own = false;

	for (uint32_t i = 0; i < c->n_upstreams; i++)
		own |= (c->upstreams[i].replicas >> dd->id) & 1;
	for (uint32_t i = 0; i < c->n_upstreams; i++) {
		const struct hm_dns_upstream_cfg *u = &c->upstreams[i];

		if (own ? !((u->replicas >> dd->id) & 1) : u->replicas != 0)
			continue;
		dd->ups[dd->n_ups++] = (struct hm_dns_upstream){ u->zone, u->address, u->forward };
	}
}

static int open_client(struct hm_dns_daemon *dd, const struct hm_keypair *keys, char *err,
		       size_t errlen)
{
	const struct hm_member *me = &dd->cfg->members[dd->id];
	struct sockaddr_storage a = me->addr;
	struct itimerspec every = { .it_interval.tv_nsec = TICK_MS * 1000000L,
				    .it_value.tv_nsec = TICK_MS * 1000000L };

	/* Same address as the replica, an ephemeral port. */
	if (a.ss_family == AF_INET)
		((struct sockaddr_in *)&a)->sin_port = 0;
	else
		((struct sockaddr_in6 *)&a)->sin6_port = 0;
	if (hm_transport_open(&dd->client, dd->cfg, HM_REPLICA_CLIENT_BASE + dd->id, keys,
			      (struct sockaddr *)&a, me->addr_len, err, errlen) < 0)
		return -1;
	dd->client.log_send_errors = true;
	dd->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (dd->timer_fd < 0 || timerfd_settime(dd->timer_fd, 0, &every, NULL) < 0)
		return hm_set_err(err, errlen, "timerfd: %s", strerror(errno));
	return 0;
}

struct hm_dns_daemon *hm_dns_daemon_new(const struct hm_config *cfg, uint32_t id,
					const struct hm_keypair *keys, struct hm_dns_service *svc,
					const struct hm_dns_anchors *anchors, char *err,
					size_t errlen)
{
	struct hm_dns_daemon *dd = calloc(1, sizeof(*dd));
	struct hm_dns_resolver_config rc = { 0 };
	struct hm_dns_frontend_config fc = { 0 };
	struct hm_dns_service_hooks hooks;

	if (!dd)
		return NULL;
	dd->cfg = cfg;
	dd->id = id;
	dd->svc = svc;
	dd->anchors = anchors;
	dd->timer_fd = -1;
	hm_dns_obsq_init(&dd->obsq, MAX_QUEUED_OPS, LATE_DELAY_US, LATE_RIDE_BYTES);
	pick_upstreams(dd);
	rc.upstreams = dd->ups;
	rc.n_upstreams = dd->n_ups;
	rc.trust_anchors = (const char *const *)cfg->dns.trust_anchors;
	rc.n_trust_anchors = cfg->dns.n_trust_anchors;
	rc.trust_anchor_file = cfg->dns.trust_anchor_file[0] ? cfg->dns.trust_anchor_file : NULL;
	rc.tcp_upstream = cfg->dns.tcp_upstream;
	rc.root_hints = cfg->dns.root_hints[0] ? cfg->dns.root_hints : NULL;
	if (!dd->n_ups)
		hm_info("dns: no upstreams: resolving from the root (hints %s, trust anchors %s)",
			rc.root_hints ? rc.root_hints : "compiled into libunbound",
			rc.trust_anchor_file ? rc.trust_anchor_file
			: rc.n_trust_anchors ? "inline" : "none: nothing validates");
	dd->res = hm_dns_resolver_new(&rc, hm_dns_wall_clock(), err, errlen);
	if (!dd->res)
		goto fail;
	if (cfg->dns.listen) {
		fc.addr = cfg->dns.listen_address[0] ? cfg->dns.listen_address
						     : cfg->members[id].address;
		fc.port = cfg->dns.listen_port;
		fc.tcp_idle_ms = (int)cfg->dns.tcp_idle_ms;
		fc.max_tcp_conns = cfg->dns.max_tcp_connections;
		fc.restrict_clients = true;
		fc.allow = cfg->dns.allow;
		fc.n_allow = cfg->dns.n_allow;
		fc.rate = (struct hm_dns_ratelimit_config){
			.qps = cfg->dns.rate_limit_qps, .burst = cfg->dns.rate_limit_burst,
			.v4_len = (uint8_t)cfg->dns.rate_limit_prefix_v4,
			.v6_len = (uint8_t)cfg->dns.rate_limit_prefix_v6,
		};
		fc.tls_port = (uint16_t)cfg->dns.tls_port;
		fc.tls_cert_file = cfg->dns.tls_cert_file;
		fc.tls_key_file = cfg->dns.tls_key_file;
		dd->fe = hm_dns_frontend_new(&fc, on_query, dd, err, errlen);
		if (!dd->fe)
			goto fail;
		if (fc.tls_port)
			hm_info("dns: DNS over TLS on %s port %u", fc.addr,
				hm_dns_frontend_tls_port(dd->fe));
	}
	if (open_client(dd, keys, err, errlen) < 0) {
		char why[256];

		snprintf(why, sizeof(why), "%s", err);
		snprintf(err, errlen, "dns: client: %s", why);
		goto fail;
	}
	hooks = (struct hm_dns_service_hooks){ .opened = hook_opened, .decided = hook_decided,
					       .prefetch_failed = hook_prefetch_failed,
					       .executed = hook_executed, .arg = dd };
	hm_dns_service_set_hooks(svc, &hooks);
	return dd;
fail:
	hm_dns_daemon_free(dd);
	return NULL;
}

void hm_dns_daemon_free(struct hm_dns_daemon *dd)
{
	if (!dd)
		return;
	if (dd->svc)
		hm_dns_service_set_hooks(dd->svc, &(struct hm_dns_service_hooks){ 0 });
	/* Pending lookups deliver FAILED results into their jobs first. */
	for (struct job *j = dd->jobs; j; j = j->next)
		j->cancelled = true;
	if (dd->res)
		hm_dns_resolver_free(dd->res);
	while (dd->jobs)
		job_unlink(dd, dd->jobs);
	while (dd->waiters) {
		struct waiter *w = dd->waiters;

		dd->waiters = w->next;
		free(w);
	}
	while (dd->n_stale)
		stale_drop(dd, &dd->stale[0]);
	hm_dns_obsq_free(&dd->obsq);
	if (dd->xdp_on)
		hm_dns_xdp_close(&dd->xdp);
	if (dd->fe)
		hm_dns_frontend_free(dd->fe);
	hm_transport_close(&dd->client);
	if (dd->timer_fd >= 0)
		close(dd->timer_fd);
	free(dd);
}

int hm_dns_daemon_fds(const struct hm_dns_daemon *dd, int fds[4])
{
	int n = 0;

	if (dd->fe)
		fds[n++] = hm_dns_frontend_fd(dd->fe);
	fds[n++] = hm_dns_resolver_fd(dd->res);
	fds[n++] = hm_transport_fd(&dd->client);
	fds[n++] = dd->timer_fd;
	return n;
}

bool hm_dns_daemon_handle(struct hm_dns_daemon *dd, int fd)
{
	if (dd->fe && fd == hm_dns_frontend_fd(dd->fe))
		hm_dns_frontend_process(dd->fe);
	else if (fd == hm_dns_resolver_fd(dd->res))
		hm_dns_resolver_process(dd->res);
	else if (fd == hm_transport_fd(&dd->client))
		client_input(dd);
	else if (fd == dd->timer_fd)
		tick(dd);
	else
		return false;
	return true;
}

json_t *hm_dns_daemon_status(struct hm_dns_daemon *dd)
{
	struct hm_dns_service_stats st;
	struct hm_dns_frontend_stats fs = { 0 };
	json_t *o = json_object(), *differ = json_object();
	size_t waiting = 0, jobs = 0;

	hm_dns_service_stats(dd->svc, &st);
	if (dd->fe)
		hm_dns_frontend_stats(dd->fe, &fs);
	for (struct waiter *w = dd->waiters; w; w = w->next)
		waiting++;
	for (struct job *j = dd->jobs; j; j = j->next)
		jobs++;
	for (uint32_t i = 0; i < dd->cfg->n_members; i++) {
		char key[16];

		snprintf(key, sizeof(key), "%u", i);
		json_object_set_new(differ, key, json_integer((json_int_t)st.differ[i]));
	}
	json_object_set_new(o, "poisoning", differ);
	json_object_set_new(o, "service", json_pack(
		"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"ignored_full", (json_int_t)st.ignored_full, "evicted_full", (json_int_t)st.evicted_full,
		"observations", (json_int_t)st.observations,
		"decided_dnssec", (json_int_t)st.decided_dnssec,
		"decided_observed", (json_int_t)st.decided_observed,
		"decided_fail", (json_int_t)st.decided_fail,
		"ignored_t", (json_int_t)st.ignored_t, "ignored_dup", (json_int_t)st.ignored_dup,
		"ignored_late", (json_int_t)st.ignored_late, "malformed", (json_int_t)st.malformed,
		"expired", (json_int_t)st.expired, "timed_out", (json_int_t)st.timed_out,
		"chain_rejected", (json_int_t)st.chain_rejected,
		"cache_entries", (json_int_t)hm_dns_service_cache_size(dd->svc)));
	json_object_set_new(o, "frontend", json_pack(
		"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "udp_queries", (json_int_t)fs.udp_queries,
		"tcp_queries", (json_int_t)fs.tcp_queries, "tls_queries", (json_int_t)fs.tls_queries,
		"tls_accepted", (json_int_t)fs.tls_accepted,
		"tls_handshake_failed", (json_int_t)fs.tls_handshake_failed,
		"formerr", (json_int_t)fs.formerr,
		"replies", (json_int_t)fs.replies, "truncated", (json_int_t)fs.truncated,
		"dropped", (json_int_t)fs.dropped));
	json_object_set_new(o, "replica", json_pack(
		"{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
		"overload", (json_int_t)dd->overload, "cache_hits", (json_int_t)dd->cache_hits, "cache_misses", (json_int_t)dd->cache_misses,
		"timeouts", (json_int_t)dd->timeouts, "ops_sent", (json_int_t)dd->observations_sent,
		"observe_requests", (json_int_t)dd->observe_requests,
		"ops_dropped", (json_int_t)dd->observations_dropped,
		"ops_abandoned", (json_int_t)dd->submit_abandoned,
		"ops_queued", (json_int_t)hm_dns_obsq_len(&dd->obsq),
		"late_queued", (json_int_t)dd->obsq.late.n, "late_sent", (json_int_t)dd->late_sent,
		"completed_locally", (json_int_t)dd->completed_locally,
		"chains", (json_int_t)dd->chains_collected,
		"chains_failed", (json_int_t)dd->chains_failed, "waiting", (json_int_t)waiting));
	json_object_set_new(o, "jobs", json_integer((json_int_t)jobs));
	json_object_set_new(o, "access", json_pack(
		"{s:I, s:I, s:I, s:I, s:I}", "refused_acl", (json_int_t)fs.refused_acl,
		"rate_dropped", (json_int_t)fs.rate_dropped, "rate_refused", (json_int_t)fs.rate_refused,
		"rate_table_full", (json_int_t)fs.rate_table_full,
		"norec_refused", (json_int_t)dd->norec_refused));
	json_object_set_new(o, "prefetch", json_pack("{s:b, s:I, s:I, s:I, s:I}", "enabled",
		dd->cfg->dns.prefetch, "opened", (json_int_t)st.prefetch_opened,
		"refreshed", (json_int_t)st.prefetch_refreshed,
		"failed", (json_int_t)st.prefetch_failed,
		"fresh_lookups", (json_int_t)dd->prefetch_lookups));
	json_object_set_new(o, "audit", json_pack("{s:I, s:I, s:I}", "per_s",
		(json_int_t)dd->cfg->dns.audit_lookups_per_s, "lookups", (json_int_t)dd->audits,
		"skipped", (json_int_t)dd->audits_skipped));
	json_object_set_new(o, "stale", json_pack("{s:I, s:I, s:I}", "served",
		(json_int_t)dd->stale_served, "kept", (json_int_t)dd->n_stale, "bytes",
		(json_int_t)dd->stale_bytes));
	if (dd->xdp_on)
		json_object_set_new(o, "xdp", xdp_status(dd));
	return o;
}

void hm_dns_daemon_counters(struct hm_dns_daemon *dd, struct hm_dns_counters *out)
{
	struct hm_dns_service_stats st;
	struct hm_dns_frontend_stats fs = { 0 };

	memset(out, 0, sizeof(*out));
	hm_dns_service_stats(dd->svc, &st);
	if (dd->fe)
		hm_dns_frontend_stats(dd->fe, &fs);
	memcpy(out->answers, dd->answers, sizeof(out->answers));
	out->answers[HM_DNS_ANS_FRONTEND][HM_DNS_FORMERR] += fs.formerr;
	out->answers[HM_DNS_ANS_FRONTEND][4 /* NOTIMP */] += fs.notimp;
	out->answers[HM_DNS_ANS_FRONTEND][5 /* REFUSED */] += fs.refused;
	out->cache_hits = dd->cache_hits;
	out->cache_misses = dd->cache_misses;
	memcpy(out->upstream_buckets, dd->upstream_buckets, sizeof(out->upstream_buckets));
	out->upstream_count = dd->upstream_count;
	out->observations_sent = dd->observations_sent;
	out->observe_requests = dd->observe_requests;
	out->observations_dropped = dd->observations_dropped;
	out->audits = dd->audits;
	out->audits_skipped = dd->audits_skipped;
	out->upstream_sum_s = dd->upstream_sum_s;
	out->n_replicas = dd->cfg->n_members < HM_MAX_REPLICAS ? dd->cfg->n_members
							       : HM_MAX_REPLICAS;
	memcpy(out->differ, st.differ, sizeof(out->differ));
}

void hm_dns_daemon_access(struct hm_dns_daemon *dd, struct hm_dns_access_counters *out)
{
	struct hm_dns_frontend_stats fs = { 0 };
	struct hm_dns_service_stats st;

	if (dd->fe)
		hm_dns_frontend_stats(dd->fe, &fs);
	*out = (struct hm_dns_access_counters){
		.refused_acl = fs.refused_acl, .rate_dropped = fs.rate_dropped,
		.rate_refused = fs.rate_refused, .norec_refused = dd->norec_refused,
		.stale_served = dd->stale_served, .tls_accepted = fs.tls_accepted,
		.tls_queries = fs.tls_queries, .tls_handshake_failed = fs.tls_handshake_failed,
	};
	hm_dns_service_stats(dd->svc, &st);
	out->prefetch_opened = st.prefetch_opened;
	out->prefetch_refreshed = st.prefetch_refreshed;
	out->prefetch_failed = st.prefetch_failed;
}
