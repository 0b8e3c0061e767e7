// SPDX-License-Identifier: MIT
/*
 * Recursive resolution and DNSSEC validation with libunbound, one context
 * per validation reference time (see dns_resolver.h).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>
#include <unbound.h>

#include "service/dns/dns_msg.h"
#include "service/dns/dns_resolver.h"
#include "common/clock.h"
#include "common/log.h"

struct query;

/* One libunbound context and the queries it has in flight. */
struct slot {
	struct hm_dns_resolver *r;
	struct ub_ctx *ctx;
	int64_t time;
	struct query *queries; /* doubly linked, so a result unlinks in O(1) */
	const char *retire_why; /* retired during processing: freed after it */
	struct slot *next_retired;
};

struct query {
	struct slot *slot;
	hm_dns_resolve_cb cb;
	void *arg;
	int async_id;
	struct query *prev, *next;
};

struct hm_dns_resolver {
	char *conf_text;      /* unbound config, written out for each new context */
	char **anchors;
	size_t n_anchors;
	char **local;
	size_t n_local;
	char *anchor_file;
	int epfd;
	struct slot *cur, *old;
	struct slot *retired; /* retired while ub_process was on the stack */
	struct slot *fresh;   /* one-lookup contexts (hm_dns_resolve_fresh) */
	unsigned n_fresh;
	bool processing;
	unsigned pending;
};

const char *hm_dns_security_name(enum hm_dns_security s)
{
	switch (s) {
	case HM_DNS_SEC_SECURE: return "secure";
	case HM_DNS_SEC_INSECURE: return "insecure";
	case HM_DNS_SEC_BOGUS: return "bogus";
	case HM_DNS_SEC_FAILED: return "failed";
	}
	return "?";
}

/* Config values go into unbound's config file in quotes: refuse anything
 * that could end the quote or the line. */
static bool conf_safe(const char *s)
{
	if (!s || !*s)
		return false;
	for (; *s; s++)
		if (*s == '"' || *s == '\n' || *s == '\r' || *s == '\\' || (unsigned char)*s < 0x20)
			return false;
	return true;
}

/* The unbound configuration shared by every context, minus the time. */
static char *conf_build(const struct hm_dns_resolver_config *cfg, char *err, size_t errlen)
{
	char *text = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&text, &size);

	if (!f)
		return NULL;
	fprintf(f, "server:\n"
		   "\tverbosity: 0\n"
		   "\tuse-syslog: no\n"
		   "\tlogfile: \"\"\n"
		   "\tmodule-config: \"validator iterator\"\n"
		   /* Upstreams may be on this machine (tests, a local NSD). */
		   "\tdo-not-query-localhost: no\n"
		   "\tedns-buffer-size: 1232\n"
		   /* Never answer from stale data or prefetch on our own
		    * schedule: what a replica observes should be fresh. */
		   "\tserve-expired: no\n"
		   "\tprefetch: no\n"
		   "\tharden-glue: yes\n"
		   "\tharden-dnssec-stripped: yes\n"
		   "\tval-clean-additional: yes\n");
	fprintf(f, "\ttcp-upstream: %s\n", cfg->tcp_upstream ? "yes" : "no");
	if (cfg->cache_max_ttl)
		fprintf(f, "\tcache-max-ttl: %" PRIu32 "\n", cfg->cache_max_ttl);
	if (cfg->root_hints) {
		if (!conf_safe(cfg->root_hints)) {
			hm_set_err(err, errlen, "root hints: bad file name");
			fclose(f);
			free(text);
			return NULL;
		}
		fprintf(f, "\troot-hints: \"%s\"\n", cfg->root_hints);
	}
	for (size_t i = 0; i < cfg->n_upstreams; i++) {
		const struct hm_dns_upstream *u = &cfg->upstreams[i];

		if (!conf_safe(u->zone) || !conf_safe(u->addr)) {
			hm_set_err(err, errlen, "upstream %zu: bad zone or address", i);
			fclose(f);
			free(text);
			return NULL;
		}
		/* One clause per entry: unbound merges clauses of one zone. */
		fprintf(f, "%s:\n\tname: \"%s\"\n\t%s: \"%s\"\n", u->forward ? "forward-zone" : "stub-zone",
			u->zone, u->forward ? "forward-addr" : "stub-addr", u->addr);
	}
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	return text;
}

/* A malloc'd copy of n strings (NULL-terminated array). */
static char **strv_dup(const char *const *v, size_t n, size_t *count)
{
	char **out = calloc(n + 1, sizeof(char *));

	*count = 0;
	for (size_t i = 0; out && i < n; i++) {
		out[i] = strdup(v[i]);
		if (!out[i])
			return out; /* *count tells the caller how many to free */
		(*count)++;
	}
	return out;
}

/* unbound parses trust anchors only when the context starts, so check
 * them here, where the error can still name the bad one. */
static int anchor_check(const char *text)
{
	ldns_rr *rr = NULL;
	ldns_rr_type t;

	if (ldns_rr_new_frm_str(&rr, text, 3600, NULL, NULL) != LDNS_STATUS_OK)
		return -1;
	t = ldns_rr_get_type(rr);
	ldns_rr_free(rr);
	return t == LDNS_RR_TYPE_DS || t == LDNS_RR_TYPE_DNSKEY ? 0 : -1;
}

static void strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* A fresh context for reference time t, registered in the epoll set. */
static struct slot *slot_new(struct hm_dns_resolver *r, int64_t t, char *err, size_t errlen)
{
	struct slot *s = calloc(1, sizeof(*s));
	char path[] = "/tmp/hm-unbound-XXXXXX";
	char when[32];
	struct epoll_event ev = { .events = EPOLLIN };
	int fd, rc;

	if (!s)
		return NULL;
	s->r = r;
	s->time = t;
	s->ctx = ub_ctx_create();
	if (!s->ctx) {
		hm_set_err(err, errlen, "ub_ctx_create failed");
		free(s);
		return NULL;
	}
	/* A thread, not a forked process: results come back through ub_fd.
	 * Settings first: local data (below) finalizes the context. */
	if ((rc = ub_ctx_async(s->ctx, 1))) {
		hm_set_err(err, errlen, "ub_ctx_async: %s", ub_strerror(rc));
		ub_ctx_delete(s->ctx);
		free(s);
		return NULL;
	}
	fd = mkstemp(path);
	if (fd < 0 || write(fd, r->conf_text, strlen(r->conf_text)) != (ssize_t)strlen(r->conf_text)) {
		hm_set_err(err, errlen, "unbound config %s: %s", path, strerror(errno));
		goto fail_file;
	}
	close(fd);
	fd = -1;
	rc = ub_ctx_config(s->ctx, path);
	unlink(path);
	if (rc) {
		hm_set_err(err, errlen, "unbound config: %s", ub_strerror(rc));
		goto fail;
	}
	/* The agreed validation time (seconds; unbound reads it with atoi, so
	 * it must be positive and fit an int until 2038: it does). */
	snprintf(when, sizeof(when), "%" PRId64, t);
	if (t <= 0 || t > INT32_MAX || (rc = ub_ctx_set_option(s->ctx, "val-override-date:", when))) {
		hm_set_err(err, errlen, "val-override-date %s refused", when);
		goto fail;
	}
	for (size_t i = 0; i < r->n_anchors; i++)
		if ((rc = ub_ctx_add_ta(s->ctx, r->anchors[i]))) {
			hm_set_err(err, errlen, "trust anchor %zu: %s", i, ub_strerror(rc));
			goto fail;
		}
	if (r->anchor_file && (rc = ub_ctx_add_ta_file(s->ctx, r->anchor_file))) {
		hm_set_err(err, errlen, "trust anchor file %s: %s", r->anchor_file, ub_strerror(rc));
		goto fail;
	}
	for (size_t i = 0; i < r->n_local; i++)
		if ((rc = ub_ctx_data_add(s->ctx, r->local[i]))) {
			hm_set_err(err, errlen, "local data %zu: %s", i, ub_strerror(rc));
			goto fail;
		}
	ev.data.ptr = s;
	if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, ub_fd(s->ctx), &ev) < 0) {
		hm_set_err(err, errlen, "epoll_ctl: %s", strerror(errno));
		goto fail;
	}
	return s;
fail_file:
	if (fd >= 0)
		close(fd);
	unlink(path);
fail:
	ub_ctx_delete(s->ctx);
	free(s);
	return NULL;
}

static void query_unlink(struct query *q)
{
	if (q->prev)
		q->prev->next = q->next;
	else
		q->slot->queries = q->next;
	if (q->next)
		q->next->prev = q->prev;
	q->slot->r->pending--;
}

/* Delete a context; queries it still has get a FAILED result. */
static void slot_free(struct slot *s, const char *why)
{
	struct hm_dns_result res = { .sec = HM_DNS_SEC_FAILED, .rcode = HM_DNS_SERVFAIL,
				     .why = why, .ede = HM_EDE_NOT_READY, .ref_time = s->time };

	if (!s)
		return;
	epoll_ctl(s->r->epfd, EPOLL_CTL_DEL, ub_fd(s->ctx), NULL);
	ub_ctx_delete(s->ctx);
	while (s->queries) {
		struct query *q = s->queries;

		query_unlink(q);
		q->cb(q->arg, &res);
		free(q);
	}
	free(s);
}

struct hm_dns_resolver *hm_dns_resolver_new(const struct hm_dns_resolver_config *cfg,
					    int64_t ref_time, char *err, size_t errlen)
{
	struct hm_dns_resolver *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->epfd = -1;
	for (size_t i = 0; i < cfg->n_trust_anchors; i++)
		if (anchor_check(cfg->trust_anchors[i]) < 0) {
			hm_set_err(err, errlen, "trust anchor %zu: not a DS or DNSKEY record", i);
			goto fail;
		}
	r->conf_text = conf_build(cfg, err, errlen);
	if (!r->conf_text)
		goto fail;
	r->anchors = strv_dup(cfg->trust_anchors, cfg->n_trust_anchors, &r->n_anchors);
	r->local = strv_dup(cfg->local_data, cfg->n_local_data, &r->n_local);
	if (!r->anchors || r->n_anchors != cfg->n_trust_anchors || !r->local ||
	    r->n_local != cfg->n_local_data)
		goto fail;
	if (cfg->trust_anchor_file && !(r->anchor_file = strdup(cfg->trust_anchor_file)))
		goto fail;
	r->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (r->epfd < 0) {
		hm_set_err(err, errlen, "epoll_create1: %s", strerror(errno));
		goto fail;
	}
	r->cur = slot_new(r, ref_time, err, errlen);
	if (r->cur)
		return r;
fail:
	hm_dns_resolver_free(r);
	return NULL;
}

void hm_dns_resolver_free(struct hm_dns_resolver *r)
{
	if (!r)
		return;
	while (r->fresh) {
		struct slot *s = r->fresh;

		r->fresh = s->next_retired;
		slot_free(s, "resolver shut down");
	}
	if (r->old)
		slot_free(r->old, "resolver shut down");
	if (r->cur)
		slot_free(r->cur, "resolver shut down");
	if (r->epfd >= 0)
		close(r->epfd);
	strv_free(r->anchors, r->n_anchors);
	strv_free(r->local, r->n_local);
	free(r->anchor_file);
	free(r->conf_text);
	free(r);
}

/* Delete a context now, or, when a result callback (inside ub_process on
 * some context) moved the time, once processing is over. */
static void retire(struct hm_dns_resolver *r, struct slot *s, const char *why)
{
	if (!r->processing) {
		slot_free(s, why);
		return;
	}
	s->retire_why = why;
	s->next_retired = r->retired;
	r->retired = s;
}

int hm_dns_resolver_set_time(struct hm_dns_resolver *r, int64_t ref_time)
{
	struct slot *s;

	if (ref_time == r->cur->time)
		return 0;
	s = slot_new(r, ref_time, NULL, 0);
	if (!s)
		return -1;
	/* Two steps within one query's lifetime: the oldest gives up. */
	if (r->old)
		retire(r, r->old, "validation time moved on twice during the query");
	r->old = r->cur;
	r->cur = s;
	if (!r->old->queries) {
		retire(r, r->old, NULL);
		r->old = NULL;
	}
	return 0;
}

int64_t hm_dns_resolver_time(const struct hm_dns_resolver *r)
{
	return r->cur->time;
}

/* An EDE code from unbound's reason text (libunbound has no EDE field in
 * this version; the texts are stable validator messages). */
static int ede_from_why(const char *why)
{
	if (!why)
		return HM_EDE_DNSSEC_BOGUS;
	if (strstr(why, "expired"))
		return HM_EDE_SIG_EXPIRED;
	if (strstr(why, "before inception") || strstr(why, "not yet valid"))
		return HM_EDE_SIG_NOT_YET_VALID;
	if (strstr(why, "no signatures") || strstr(why, "missing RRSIG"))
		return HM_EDE_RRSIGS_MISSING;
	if (strstr(why, "DNSKEY") && (strstr(why, "no ") || strstr(why, "missing")))
		return HM_EDE_DNSKEY_MISSING;
	if (strstr(why, "NSEC") && (strstr(why, "no ") || strstr(why, "missing")))
		return HM_EDE_NSEC_MISSING;
	return HM_EDE_DNSSEC_BOGUS;
}

static void on_result(void *data, int err, struct ub_result *ub)
{
	struct query *q = data;
	struct hm_dns_result res = { .ede = -1, .ref_time = q->slot->time };

	if (err || !ub) {
		res.sec = HM_DNS_SEC_FAILED;
		res.rcode = HM_DNS_SERVFAIL;
		res.why = ub_strerror(err);
		res.ede = HM_EDE_OTHER;
	} else {
		res.rcode = ub->rcode;
		res.nxdomain = ub->nxdomain;
		res.havedata = ub->havedata;
		res.packet = ub->answer_packet;
		res.packet_len = ub->answer_len > 0 ? (size_t)ub->answer_len : 0;
		res.ttl = hm_dns_reply_min_ttl(res.packet, res.packet_len);
		if (ub->bogus) {
			/* unbound reports the upstream's rcode; what a client
			 * gets for bogus data is SERVFAIL. */
			res.rcode = HM_DNS_SERVFAIL;
			res.sec = HM_DNS_SEC_BOGUS;
			res.why = ub->why_bogus ? ub->why_bogus : "bogus";
			res.ede = ede_from_why(ub->why_bogus);
		} else if (ub->rcode == HM_DNS_SERVFAIL || !res.packet_len) {
			/* Not bogus, yet no answer: nobody upstream replied. */
			res.sec = HM_DNS_SEC_FAILED;
			res.why = "no reachable authority";
			res.ede = HM_EDE_NO_REACHABLE_AUTHORITY;
		} else {
			res.sec = ub->secure ? HM_DNS_SEC_SECURE : HM_DNS_SEC_INSECURE;
		}
	}
	query_unlink(q);
	q->cb(q->arg, &res);
	free(q);
	if (ub)
		ub_resolve_free(ub);
}

/* A query on slot s (linked into its list); 0, or -1 when refused. */
static int query_start(struct hm_dns_resolver *r, struct slot *s, const char *name,
		       uint16_t qtype, uint16_t qclass, hm_dns_resolve_cb cb, void *arg)
{
	struct query *q = calloc(1, sizeof(*q));

	if (!q)
		return -1;
	q->slot = s;
	q->cb = cb;
	q->arg = arg;
	if (ub_resolve_async(s->ctx, name, qtype, qclass, q, on_result, &q->async_id) != 0) {
		free(q);
		return -1;
	}
	q->next = s->queries;
	if (q->next)
		q->next->prev = q;
	s->queries = q;
	r->pending++;
	return 0;
}

int hm_dns_resolve(struct hm_dns_resolver *r, const char *name, uint16_t qtype, uint16_t qclass,
		   hm_dns_resolve_cb cb, void *arg)
{
	if (!r || !name || !cb)
		return -1;
	return query_start(r, r->cur, name, qtype, qclass, cb, arg);
}

int hm_dns_resolve_fresh(struct hm_dns_resolver *r, const char *name, uint16_t qtype,
			 uint16_t qclass, hm_dns_resolve_cb cb, void *arg)
{
	struct slot *s;

	if (!r || !name || !cb || r->n_fresh >= HM_DNS_MAX_FRESH)
		return -1;
	s = slot_new(r, r->cur->time, NULL, 0);
	if (!s)
		return -1;
	if (query_start(r, s, name, qtype, qclass, cb, arg) < 0) {
		slot_free(s, NULL);
		return -1;
	}
	/* Fresh slots are chained through next_retired: they are never
	 * retired, and are freed once their one query is delivered. */
	s->next_retired = r->fresh;
	r->fresh = s;
	r->n_fresh++;
	return 0;
}

/* The one-lookup contexts whose query was delivered go. */
static void free_done_fresh(struct hm_dns_resolver *r)
{
	for (struct slot **p = &r->fresh; *p;) {
		struct slot *s = *p;

		if (s->queries) {
			p = &s->next_retired;
			continue;
		}
		*p = s->next_retired;
		r->n_fresh--;
		slot_free(s, NULL);
	}
}

int hm_dns_resolver_fd(const struct hm_dns_resolver *r)
{
	return r->epfd;
}

static bool is_retired(const struct hm_dns_resolver *r, const struct slot *s)
{
	for (const struct slot *x = r->retired; x; x = x->next_retired)
		if (x == s)
			return true;
	return false;
}

int hm_dns_resolver_process(struct hm_dns_resolver *r)
{
	unsigned before = r->pending;
	/* Callbacks may move the time (set_time) and so replace cur and old:
	 * work on the slots as they were, and free retired ones afterwards. */
	struct slot *slots[2] = { r->cur, r->old };
	int rc = 0;

	r->processing = true;
	for (int i = 0; i < 2 && rc == 0; i++)
		/* ub_process does not block: it reads what results are ready. */
		if (slots[i] && !is_retired(r, slots[i]) && ub_process(slots[i]->ctx) != 0)
			rc = -1;
	/* Callbacks may add one-lookup contexts at the head of the list:
	 * those are processed next time. */
	for (struct slot *s = r->fresh; s && rc == 0; s = s->next_retired)
		if (ub_process(s->ctx) != 0)
			rc = -1;
	r->processing = false;
	while (r->retired) {
		struct slot *s = r->retired;

		r->retired = s->next_retired;
		slot_free(s, s->retire_why);
	}
	if (r->old && !r->old->queries) {
		slot_free(r->old, NULL);
		r->old = NULL;
	}
	free_done_fresh(r);
	return rc < 0 ? -1 : (int)(before - r->pending);
}

unsigned hm_dns_resolver_pending(const struct hm_dns_resolver *r)
{
	return r->pending;
}

static int64_t now_ms(void)
{
	return (int64_t)(hm_mono_us() / 1000);
}

unsigned hm_dns_resolver_wait(struct hm_dns_resolver *r, int timeout_ms)
{
	int64_t end = now_ms() + timeout_ms;

	while (r->pending) {
		struct epoll_event ev;
		int64_t left = end - now_ms();

		if (left <= 0)
			break;
		if (epoll_wait(r->epfd, &ev, 1, (int)left) < 0 && errno != EINTR)
			break;
		if (hm_dns_resolver_process(r) < 0)
			break;
	}
	return r->pending;
}
