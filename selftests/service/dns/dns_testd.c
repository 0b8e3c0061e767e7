// SPDX-License-Identifier: MIT
/*
 * dns_testd: the DNS building blocks wired together without consensus, for
 * selftests/e2e/e2e_dns.sh.  Not a replica: one resolver, one front end, and
 * each answer served as soon as this process observed it.
 *
 *   dns_testd serve  --listen ADDR --port N [resolver options]
 *       answer DNS over UDP and TCP: front end -> resolver -> canonical
 *       answer -> reply (SERVFAIL with an EDE for bogus or failed lookups).
 *       One line per answer on stdout: "answer NAME TYPE SECURITY DIGEST".
 *   dns_testd digest [resolver options] NAME TYPE
 *       resolve once and print "SECURITY RCODE DIGEST EDE" (the canonical
 *       answer on stderr); DIGEST is "-" when there is no answer.
 *   dns_testd chain [resolver options] [--verify-time S] [--forge] NAME TYPE
 *       resolve, collect the DNSSEC chain for the answer (rule (a)) and
 *       verify it at --verify-time (default: --time); print "chain ok" or
 *       "chain rejected: WHY".  --forge changes the first A/AAAA/TXT record
 *       of the answer before verifying (still claimed secure).
 *
 * Resolver options:
 *   --stub ZONE=ADDR[@PORT]   stub zone (authoritative upstream), repeatable
 *   --forward ZONE=ADDR[@PORT] forward zone (recursive upstream), repeatable
 *   --ta-file FILE            trust anchors (DS/DNSKEY records)
 *   --time SECONDS            validation reference time (default: now)
 *   --max-ttl SECONDS         served TTL ceiling (default 300)
 *   --tcp-idle MS             TCP idle timeout (default 10000)
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "common/crypto.h"
#include "service/dns/dns_chain.h"
#include "service/dns/dns_frontend.h"
#include "service/dns/dns_msg.h"
#include "service/dns/dns_resolver.h"

#define MAX_UPSTREAMS 32

static struct hm_dns_upstream upstreams[MAX_UPSTREAMS];
static size_t n_upstreams;
static uint32_t max_ttl = 300;
static const char *ta_file;
static int64_t verify_time;
static bool forge;
static struct hm_dns_frontend *fe;
static int exit_status;

static void usage(void)
{
	fprintf(stderr, "usage: dns_testd serve --listen ADDR --port N [resolver options]\n"
			"       dns_testd digest [resolver options] NAME TYPE\n"
			"       dns_testd chain [resolver options] [--verify-time S] [--forge] NAME TYPE\n");
	exit(2);
}

static void add_upstream(const char *spec, bool forward)
{
	char *copy = strdup(spec), *eq = copy ? strchr(copy, '=') : NULL;

	if (!eq || n_upstreams == MAX_UPSTREAMS) {
		fprintf(stderr, "dns_testd: bad upstream '%s' (ZONE=ADDR[@PORT])\n", spec);
		exit(2);
	}
	*eq = '\0';
	upstreams[n_upstreams++] = (struct hm_dns_upstream){ copy, eq + 1, forward };
}

static void hex(const uint8_t *d, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", d[i]);
}

/* The canon and digest (hex) of a result, or NULL. */
static uint8_t *result_canon(const struct hm_dns_query *q, const struct hm_dns_result *res,
			     size_t *len, char digest_hex[2 * HM_DIGEST_LEN + 1])
{
	uint8_t d[HM_DIGEST_LEN], *canon;

	if (res->sec != HM_DNS_SEC_SECURE && res->sec != HM_DNS_SEC_INSECURE)
		return NULL;
	canon = hm_dns_canon_from_reply(q, res->packet, res->packet_len,
					res->sec == HM_DNS_SEC_SECURE, len);
	if (canon) {
		hm_dns_canon_digest(canon, *len, d);
		hex(d, sizeof(d), digest_hex);
	}
	return canon;
}

/* ---- serve ------------------------------------------------------------------------ */

struct pending {
	struct hm_dns_request *req;
	struct hm_dns_query q;
};

static void on_resolved(void *arg, const struct hm_dns_result *res)
{
	struct pending *p = arg;
	char dhex[2 * HM_DIGEST_LEN + 1] = "-";
	static uint8_t out[65535];
	uint8_t *canon;
	size_t clen, n;

	canon = result_canon(&p->q, res, &clen, dhex);
	if (canon) {
		uint32_t ttl = res->ttl < max_ttl ? res->ttl : max_ttl;

		n = hm_dns_reply_build(&p->q, canon, clen, ttl, p->q.max_size, out, sizeof(out));
	} else {
		n = hm_dns_error_reply(&p->q, HM_DNS_SERVFAIL, res->ede >= 0 ? res->ede : HM_EDE_OTHER,
				       res->why, out, sizeof(out));
	}
	printf("answer %s %u %s %s%s%s\n", p->q.name, p->q.qtype, hm_dns_security_name(res->sec),
	       dhex, res->why ? " why=" : "", res->why ? res->why : "");
	if (n)
		hm_dns_frontend_respond(fe, p->req, out, n);
	else
		hm_dns_frontend_drop(fe, p->req);
	free(canon);
	free(p);
}

static void on_query(void *arg, struct hm_dns_request *req, const struct hm_dns_query *q)
{
	struct hm_dns_resolver *r = arg;
	struct pending *p = malloc(sizeof(*p));
	uint8_t out[512];
	size_t n;

	if (p) {
		p->req = req;
		p->q = *q;
		if (hm_dns_resolve(r, q->name, q->qtype, q->qclass, on_resolved, p) == 0)
			return;
		free(p);
	}
	n = hm_dns_error_reply(q, HM_DNS_SERVFAIL, HM_EDE_OTHER, "resolver refused the query", out,
			       sizeof(out));
	if (n)
		hm_dns_frontend_respond(fe, req, out, n);
	else
		hm_dns_frontend_drop(fe, req);
}

static int serve(struct hm_dns_resolver *r, const char *addr, uint16_t port, int idle_ms)
{
	struct hm_dns_frontend_config fc = { .addr = addr, .port = port, .tcp_idle_ms = idle_ms };
	struct epoll_event ev = { .events = EPOLLIN }, evs[8];
	struct hm_dns_frontend_stats st;
	char err[256];
	sigset_t mask;
	int ep, sfd;
	bool running = true;

	fe = hm_dns_frontend_new(&fc, on_query, r, err, sizeof(err));
	if (!fe) {
		fprintf(stderr, "dns_testd: %s\n", err);
		return 1;
	}
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	ep = epoll_create1(EPOLL_CLOEXEC);
	ev.data.fd = hm_dns_frontend_fd(fe);
	epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
	ev.data.fd = hm_dns_resolver_fd(r);
	epoll_ctl(ep, EPOLL_CTL_ADD, ev.data.fd, &ev);
	ev.data.fd = sfd;
	epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev);
	printf("listening %s port %u\n", addr, hm_dns_frontend_port(fe));
	fflush(stdout);
	setvbuf(stdout, NULL, _IOLBF, 0);
	while (running) {
		int n = epoll_wait(ep, evs, 8, -1);

		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.fd == sfd)
				running = false;
			else if (evs[i].data.fd == hm_dns_frontend_fd(fe))
				hm_dns_frontend_process(fe);
			else
				hm_dns_resolver_process(r);
		}
	}
	hm_dns_frontend_stats(fe, &st);
	printf("stats udp=%" PRIu64 " tcp=%" PRIu64 " formerr=%" PRIu64 " notimp=%" PRIu64
	       " refused=%" PRIu64 " dropped=%" PRIu64 " replies=%" PRIu64 " truncated=%" PRIu64
	       " tcp_accepted=%" PRIu64 " tcp_idle_closed=%" PRIu64 "\n",
	       st.udp_queries, st.tcp_queries, st.formerr, st.notimp, st.refused, st.dropped,
	       st.replies, st.truncated, st.tcp_accepted, st.tcp_idle_closed);
	/* Pending lookups get their (failed) results and release their
	 * requests before the front end goes. */
	hm_dns_resolver_free(r);
	hm_dns_frontend_free(fe);
	close(ep);
	close(sfd);
	return 0;
}

/* ---- digest ------------------------------------------------------------------------ */

static struct hm_dns_query digest_query;

static void on_digest(void *arg, const struct hm_dns_result *res)
{
	char dhex[2 * HM_DIGEST_LEN + 1] = "-";
	size_t clen;
	uint8_t *canon = result_canon(&digest_query, res, &clen, dhex);
	ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, res->rcode);

	(void)arg;
	printf("%s %s %s %d\n", hm_dns_security_name(res->sec), rc ? rc->name : "?", dhex, res->ede);
	if (res->why)
		fprintf(stderr, "why: %s\n", res->why);
	if (canon) {
		char *text = hm_dns_canon_to_text(canon, clen);

		fprintf(stderr, "%s", text ? text : "(canon unreadable)\n");
		free(text);
	} else if (res->sec == HM_DNS_SEC_SECURE || res->sec == HM_DNS_SEC_INSECURE) {
		exit_status = 1;
		fprintf(stderr, "dns_testd: no canonical form for the answer\n");
	}
	free(canon);
}

/* The question of digest and chain mode into digest_query. */
static int set_question(const char *name, const char *type)
{
	ldns_rdf *dname = ldns_dname_new_frm_str(name);
	ldns_rr_type t = ldns_get_rr_type_by_name(type);

	if (!dname || !t || ldns_rdf_size(dname) > sizeof(digest_query.qname)) {
		fprintf(stderr, "dns_testd: bad name or type\n");
		ldns_rdf_deep_free(dname);
		return -1;
	}
	memcpy(digest_query.qname, ldns_rdf_data(dname), ldns_rdf_size(dname));
	digest_query.qname_len = (uint8_t)ldns_rdf_size(dname);
	digest_query.qtype = t;
	digest_query.qclass = LDNS_RR_CLASS_IN;
	ldns_rdf_deep_free(dname);
	return 0;
}

static int digest(struct hm_dns_resolver *r, const char *name, const char *type)
{
	if (set_question(name, type) < 0)
		return 2;
	if (hm_dns_resolve(r, name, digest_query.qtype, LDNS_RR_CLASS_IN, on_digest, NULL) < 0)
		return 1;
	if (hm_dns_resolver_wait(r, 20000)) {
		fprintf(stderr, "dns_testd: no result within 20 s\n");
		exit_status = 1;
	}
	hm_dns_resolver_free(r);
	return exit_status;
}

/* ---- chain ------------------------------------------------------------------------ */

static struct hm_dns_resolver *chain_resolver;
static struct hm_dns_anchors *anchors;
static uint8_t *chain_canon;
static size_t chain_canon_len;

/* The upstream reply with its first A, AAAA or TXT record changed. */
static uint8_t *forged_reply(const uint8_t *p, size_t n, size_t *len)
{
	ldns_pkt *pkt = NULL;
	uint8_t *out = NULL;

	if (ldns_wire2pkt(&pkt, p, n) != LDNS_STATUS_OK)
		return NULL;
	for (size_t i = 0; i < ldns_rr_list_rr_count(ldns_pkt_answer(pkt)); i++) {
		ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(pkt), i);
		ldns_rr_type t = ldns_rr_get_type(rr);
		ldns_rdf *rd = ldns_rr_rdf(rr, 0);

		if ((t == LDNS_RR_TYPE_A || t == LDNS_RR_TYPE_AAAA || t == LDNS_RR_TYPE_TXT) && rd &&
		    ldns_rdf_size(rd) > 1) {
			ldns_rdf_data(rd)[ldns_rdf_size(rd) - 1] ^= 0x01;
			break;
		}
	}
	if (ldns_pkt2wire(&out, pkt, len) != LDNS_STATUS_OK)
		out = NULL;
	ldns_pkt_free(pkt);
	return out;
}

static void on_chain(void *arg, uint8_t *chain, size_t len, const char *err)
{
	char why[256];

	(void)arg;
	if (!chain) {
		printf("chain not collected: %s\n", err);
		exit_status = 1;
		return;
	}
	if (hm_dns_chain_verify(anchors, chain_canon, chain_canon_len, chain, len, verify_time, why,
				sizeof(why)) == 0)
		printf("chain ok (%zu bytes)\n", len);
	else
		printf("chain rejected: %s\n", why);
	free(chain);
}

static void on_chain_answer(void *arg, const struct hm_dns_result *res)
{
	uint8_t *forged = NULL;
	const uint8_t *p = res->packet;
	size_t n = res->packet_len;

	(void)arg;
	if (res->sec != HM_DNS_SEC_SECURE) {
		printf("answer not secure: %s\n", hm_dns_security_name(res->sec));
		exit_status = 1;
		return;
	}
	if (forge && (forged = forged_reply(p, n, &n)))
		p = forged;
	chain_canon = hm_dns_canon_from_reply(&digest_query, p, n, true, &chain_canon_len);
	free(forged);
	if (!chain_canon || hm_dns_chain_collect(chain_resolver, anchors, chain_canon,
						 chain_canon_len, on_chain, NULL) < 0) {
		printf("chain collection not started\n");
		exit_status = 1;
	}
}

static int chain(struct hm_dns_resolver *r, const char *name, const char *type)
{
	char err[256];

	anchors = hm_dns_anchors_new(NULL, 0, ta_file, err, sizeof(err));
	if (!anchors) {
		fprintf(stderr, "dns_testd: anchors: %s\n", err);
		return 1;
	}
	chain_resolver = r;
	if (set_question(name, type) < 0 ||
	    hm_dns_resolve(r, name, digest_query.qtype, LDNS_RR_CLASS_IN, on_chain_answer, NULL) < 0)
		return 2;
	if (hm_dns_resolver_wait(r, 20000)) {
		fprintf(stderr, "dns_testd: no result within 20 s\n");
		exit_status = 1;
	}
	hm_dns_resolver_free(r);
	hm_dns_anchors_free(anchors);
	free(chain_canon);
	return exit_status;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },  { "port", required_argument, NULL, 'p' },
		{ "stub", required_argument, NULL, 's' },    { "forward", required_argument, NULL, 'f' },
		{ "ta-file", required_argument, NULL, 'a' }, { "time", required_argument, NULL, 't' },
		{ "max-ttl", required_argument, NULL, 'm' }, { "tcp-idle", required_argument, NULL, 'i' },
		{ "verify-time", required_argument, NULL, 'v' }, { "forge", no_argument, NULL, 'F' },
		{ NULL, 0, NULL, 0 },
	};
	struct hm_dns_resolver_config cfg = { 0 };
	const char *listen = "127.0.0.1", *mode;
	int64_t ref_time = time(NULL);
	int port = 53, idle = 10000, c;
	struct hm_dns_resolver *r;
	char err[256];

	if (argc < 2)
		usage();
	mode = argv[1];
	optind = 2;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'l': listen = optarg; break;
		case 'p': port = atoi(optarg); break;
		case 's': add_upstream(optarg, false); break;
		case 'f': add_upstream(optarg, true); break;
		case 'a': cfg.trust_anchor_file = ta_file = optarg; break;
		case 't': ref_time = strtoll(optarg, NULL, 10); break;
		case 'm': max_ttl = (uint32_t)strtoul(optarg, NULL, 10); break;
		case 'i': idle = atoi(optarg); break;
		case 'v': verify_time = strtoll(optarg, NULL, 10); break;
		case 'F': forge = true; break;
		default: usage();
		}
	}
	if (hm_crypto_init() < 0)
		return 1;
	cfg.upstreams = upstreams;
	cfg.n_upstreams = n_upstreams;
	r = hm_dns_resolver_new(&cfg, ref_time, err, sizeof(err));
	if (!r) {
		fprintf(stderr, "dns_testd: resolver: %s\n", err);
		return 1;
	}
	if (strcmp(mode, "serve") == 0 && optind == argc)
		return serve(r, listen, (uint16_t)port, idle);
	if (strcmp(mode, "digest") == 0 && optind + 2 == argc)
		return digest(r, argv[optind], argv[optind + 1]);
	if (!verify_time)
		verify_time = ref_time;
	if (strcmp(mode, "chain") == 0 && optind + 2 == argc && ta_file)
		return chain(r, argv[optind], argv[optind + 1]);
	hm_dns_resolver_free(r);
	usage();
	return 2;
}
