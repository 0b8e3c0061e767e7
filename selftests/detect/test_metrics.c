// SPDX-License-Identifier: MIT
/* Prometheus exposition (user/detect/metrics.c): the writer's escaping, a
 * replica's families parsed by the real Prometheus parser (python3
 * prometheus_client's text_string_to_metric_families), and the HTTP
 * endpoint served from a single-threaded loop as the daemon runs it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hm_test.h"
#include "detect/metrics.h"
#include "detect/reputation.h"
#include "hm_version.h"

/* Pipe text to the Prometheus parser; it prints "name|labels|value" per
 * sample (labels sorted k=v,...), or fails. */
static const char PARSER[] =
	"import sys\n"
	"from prometheus_client.parser import text_string_to_metric_families\n"
	"for fam in text_string_to_metric_families(sys.stdin.read()):\n"
	"    for s in fam.samples:\n"
	"        lab = ','.join('%s=%s' % kv for kv in sorted(s.labels.items()))\n"
	"        print('%s|%s|%s|%s' % (fam.type, s.name, lab, repr(float(s.value))))\n";

static int parse_with_prometheus(const char *text, char *out, size_t cap)
{
	char tmp[] = "/tmp/hm-metrics-XXXXXX", cmd[256];
	int fd = mkstemp(tmp);
	FILE *p;
	size_t len = 0;
	int rc;

	if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text))
		return -1;
	close(fd);
	snprintf(cmd, sizeof(cmd), "/usr/bin/python3 -c \"$HM_PARSER\" < %s", tmp);
	setenv("HM_PARSER", PARSER, 1);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	while (len < cap - 1 && fgets(out + len, (int)(cap - len), p))
		len += strlen(out + len);
	rc = pclose(p);
	unlink(tmp);
	return rc == 0 ? 0 : -1;
}

HM_TEST(writer_escapes)
{
	struct hm_mtext t = { 0 };

	hm_mtext_family(&t, "x_total", "counter", "a \\ and a\nnewline");
	hm_mtext_sample(&t, "x_total", 3, "a", "q\"uote", "b", "back\\slash\nnl", NULL);
	hm_mtext_sample(&t, "x_total", 0.25, NULL);
	hm_mtext_sample(&t, "x_total", 1.0 / 0.0, NULL);
	ASSERT_FALSE(t.failed, "no allocation failure");
	ASSERT_STRCONTAINS(t.buf, "# HELP x_total a \\\\ and a\\nnewline\n", "HELP escaped");
	ASSERT_STRCONTAINS(t.buf, "# TYPE x_total counter\n", "TYPE");
	ASSERT_STRCONTAINS(t.buf, "x_total{a=\"q\\\"uote\",b=\"back\\\\slash\\nnl\"} 3\n",
			   "label values escaped");
	ASSERT_STRCONTAINS(t.buf, "x_total 0.25\n", "fraction");
	ASSERT_STRCONTAINS(t.buf, "x_total +Inf\n", "infinity");
	hm_mtext_free(&t);
}

static void snapshot(struct hm_replica_metrics *m)
{
	memset(m, 0, sizeof(*m));
	m->id = 1;
	m->n = 4;
	m->f = 1;
	m->dataplane = "xdp";
	m->view = 2;
	m->view_changes = 2;
	m->rounds = 120;
	m->ops = 960;
	m->latency_buckets[3] = 4;  /* 2.5 .. 5 ms */
	m->latency_buckets[4] = 1;
	m->latency_count = 5;
	m->latency_sum_seconds = 0.02;
	m->vc_by_reason[PBFT_VC_REQUEST_TIMEOUT] = 2;
	m->batch_size = 10;
	m->batch_efficiency = 0.8;
	m->persist_errors = 3;
	m->persist_degraded = true;
	m->persist_failing = true;
	for (int i = 0; i < 4; i++) {
		m->reputation[i] = 1;
		m->historical[i] = 1;
		m->participation[i] = 0.6;
	}
	m->reputation[3] = 0.05;
	m->indicators[3] = HM_IND_CONTRADICTION | HM_IND_LOW_REPUTATION;
	m->suspected = 1 << 2;
	m->peer_state[3] = HM_PEER_BYZANTINE;
	m->peer_state[2] = HM_PEER_DOWN;
	m->has_dns = true;
	m->dns.n_replicas = 4;
	m->dns.answers[HM_DNS_ANS_DNSSEC][0] = 7;
	m->dns.answers[HM_DNS_ANS_FAIL][2] = 2;
	m->dns.cache_hits = 11;
	m->dns.upstream_buckets[0] = 1;
	m->dns.upstream_buckets[HM_DNS_UPSTREAM_BUCKETS] = 1; /* +Inf */
	m->dns.upstream_count = 2;
	m->dns.upstream_sum_s = 9.5;
	m->dns.differ[3] = 4;
	m->blocked = 1 << 3;
	m->connected = 0x5;
	m->blocks = 1;
	m->accepted[0] = 500;
	m->drops[3][HM_DROP_BLOCKED] = 77;
	m->drops[HM_MAX_REPLICAS + 1][HM_DROP_UNKNOWN_SENDER] = 5;
}

/* The value of one sample in the parser's output, or -1. */
static double value_of(const char *parsed, const char *line_prefix)
{
	const char *p = strstr(parsed, line_prefix);

	return p ? strtod(p + strlen(line_prefix), NULL) : -1;
}

/* A parsed "gauge|name|labels|value" line with an le label. */
static bool gauge_with_le(const char *parsed)
{
	for (const char *l = parsed; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
		const char *end = strchr(l, '\n'), *le = strstr(l, "|le=");
		const char *le2 = strstr(l, ",le=");

		if (strncmp(l, "gauge|", 6) == 0 && ((le && (!end || le < end)) ||
						     (le2 && (!end || le2 < end))))
			return true;
	}
	return false;
}

HM_TEST(replica_families_parse)
{
	static char parsed[1 << 18];
	struct hm_replica_metrics m;
	struct hm_mtext t = { 0 };

	snapshot(&m);
	hm_metrics_render(&t, &m);
	if (!ASSERT_FALSE(t.failed, "rendered"))
		return;
	if (!ASSERT_OK(parse_with_prometheus(t.buf, parsed, sizeof(parsed)), "Prometheus parser"))
		return;
	ASSERT_EQ(value_of(parsed, "counter|hypermesh_consensus_rounds_total||"), 120, "rounds");
	ASSERT_EQ(value_of(parsed, "counter|hypermesh_persist_errors_total||"), 3, "persist errors");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_persist_degraded||"), 1, "persist degraded");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_persist_failing||"), 1, "persist failing");
	ASSERT_TRUE(strstr(parsed, "per_second") == NULL, "no rates as gauges");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_byzantine_nodes||"), 1, "proven");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_down_nodes||"), 1, "down");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_suspected_nodes||"), 1, "suspected");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_peer_state|peer=2,state=down|"), 1, "2 down");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_peer_state|peer=2,state=byzantine|"), 0,
		  "a down peer is not Byzantine");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_peer_state|peer=3,state=byzantine|"), 1,
		  "3 proven");
	ASSERT_EQ(value_of(parsed, "histogram|hypermesh_consensus_latency_seconds_bucket|le=0.005|"),
		  4, "latency bucket (cumulative)");
	ASSERT_EQ(value_of(parsed, "histogram|hypermesh_consensus_latency_seconds_bucket|le=+Inf|"),
		  5, "latency +Inf");
	ASSERT_EQ(value_of(parsed, "histogram|hypermesh_consensus_latency_seconds_count||"), 5,
		  "latency count");
	ASSERT_EQ(value_of(parsed, "counter|hypermesh_view_changes_started_total|reason=request_timeout|"),
		  2, "view changes by reason");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_build_info|version=" HM_RELEASE "|"), 1,
		  "build info");
	ASSERT_EQ(value_of(parsed, "counter|hypermesh_dns_answers_total|rcode=NOERROR,rule=dnssec|"),
		  7, "DNS answers by rcode and rule");
	ASSERT_EQ(value_of(parsed, "counter|hypermesh_dns_answers_total|rcode=SERVFAIL,rule=fail|"),
		  2, "SERVFAILs");
	ASSERT_EQ(value_of(parsed, "counter|hypermesh_dns_cache_hits_total||"), 11, "cache hits");
	ASSERT_EQ(value_of(parsed, "histogram|hypermesh_dns_upstream_latency_seconds_bucket|le=+Inf|"),
		  2, "upstream latency");
	ASSERT_EQ(value_of(parsed, "counter|hypermesh_dns_poisoned_observations_total|replica=3|"), 4,
		  "poisoning per replica");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_blocked_nodes||"), 1, "blocked");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_peer_blocked|peer=3|"), 1, "peer 3 blocked");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_peer_blocked|peer=2|"), 0, "peer 2 not");
	ASSERT_TRUE(value_of(parsed, "gauge|hypermesh_reputation|peer=3|") == 0.05, "reputation");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_reputation_peers|at_most=0.1|"), 1, "distribution");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_reputation_peers|at_most=1.0|"), 3, "all peers");
	ASSERT_FALSE(gauge_with_le(parsed), "no le label on a gauge");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_peer_indicator|indicator=contradiction,peer=3|"),
		  1, "indicator");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_connectivity|from=1,to=2|"), 1, "matrix row");
	ASSERT_EQ(value_of(parsed, "gauge|hypermesh_connectivity|from=1,to=3|"), 0, "not connected");
	ASSERT_EQ(value_of(parsed, "counter|hypermesh_drops_total|peer=3,reason=blocked|"), 77,
		  "drops by reason");
	ASSERT_EQ(value_of(parsed, "counter|hypermesh_drops_total|peer=unknown,reason=unknown_sender|"),
		  5, "unknown senders");
	ASSERT_EQ(value_of(parsed, "counter|hypermesh_messages_accepted_total|peer=0|"), 500,
		  "throughput counter");
	ASSERT_TRUE(strstr(parsed, "peer=1|") == NULL || strstr(parsed, "hypermesh_reputation|peer=1|") == NULL,
		    "no reputation for ourselves");
	ASSERT_TRUE(value_of(parsed, "gauge|hypermesh_replica_info|dataplane=xdp,f=1,id=1,n=4|") == 1,
		    "info");
	hm_mtext_free(&t);
}

/* promtool (Debian's prometheus package) lints the exposition: counters
 * end in _total, histograms are well formed, no le on a gauge, HELP. */
HM_TEST(promtool_accepts_the_exposition)
{
	char tmp[] = "/tmp/hm-promtool-XXXXXX", cmd[256], out[4096] = "";
	struct hm_replica_metrics m;
	struct hm_mtext t = { 0 };
	size_t len = 0;
	FILE *p;
	int fd;

	snapshot(&m);
	hm_metrics_render(&t, &m);
	fd = mkstemp(tmp);
	if (!ASSERT_TRUE(fd >= 0 && write(fd, t.buf, t.len) == (ssize_t)t.len, "temp file"))
		return;
	close(fd);
	snprintf(cmd, sizeof(cmd), "promtool check metrics < %s 2>&1", tmp);
	p = popen(cmd, "r");
	while (p && len < sizeof(out) - 1 && fgets(out + len, (int)(sizeof(out) - len), p))
		len += strlen(out + len);
	ASSERT_TRUE(p && pclose(p) == 0, out);
	ASSERT_TRUE(len == 0, out); /* any lint problem is printed */
	unlink(tmp);
	hm_mtext_free(&t);
}

static int renders;

static void render_cb(void *ctx, struct hm_mtext *t)
{
	renders++;
	hm_metrics_render(t, ctx);
}

/* One HTTP exchange, driving the server from this thread as the daemon's
 * loop does. */
static int http_get(struct hm_metrics_server *s, const char *request, char *out, size_t cap)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(hm_metrics_port(s)) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	size_t len = 0, sent = 0;

	inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)
		return -1;
	for (int round = 0; round < 2000; round++) {
		struct pollfd p[2] = { { .fd = hm_metrics_fd(s), .events = POLLIN },
				       { .fd = fd, .events = POLLIN } };
		ssize_t n;

		poll(p, 2, 5);
		hm_metrics_run(s);
		if (sent < strlen(request)) {
			n = send(fd, request + sent, strlen(request) - sent, MSG_NOSIGNAL);
			if (n > 0)
				sent += (size_t)n;
		}
		n = recv(fd, out + len, cap - 1 - len, 0);
		if (n == 0)
			break;
		if (n > 0)
			len += (size_t)n;
	}
	close(fd);
	out[len] = 0;
	return (int)len;
}

HM_TEST(http_endpoint)
{
	static char resp[1 << 18];
	struct hm_replica_metrics m;
	char err[256];
	struct hm_metrics_server *s;

	snapshot(&m);
	s = hm_metrics_start("127.0.0.1", 0, render_cb, &m, err, sizeof(err));
	if (!ASSERT_TRUE(s != NULL, err))
		return;
	ASSERT_TRUE(hm_metrics_port(s) > 0, "an ephemeral port");
	ASSERT_TRUE(hm_metrics_fd(s) >= 0, "an fd to epoll");
	ASSERT_TRUE(http_get(s, "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp)) > 0, "answer");
	ASSERT_STRCONTAINS(resp, "200 OK", "200");
	ASSERT_STRCONTAINS(resp, "text/plain; version=0.0.4", "content type");
	ASSERT_STRCONTAINS(resp, "hypermesh_consensus_rounds_total 120\n", "body");
	/* the counters move between scrapes */
	m.rounds = 121;
	http_get(s, "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp));
	ASSERT_STRCONTAINS(resp, "hypermesh_consensus_rounds_total 121\n", "fresh values");
	http_get(s, "GET /other HTTP/1.0\r\n\r\n", resp, sizeof(resp));
	ASSERT_STRCONTAINS(resp, "404", "other paths: 404");
	http_get(s, "POST /metrics HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi", resp, sizeof(resp));
	ASSERT_STRCONTAINS(resp, "405", "POST: 405");
	http_get(s, "\x01\x02garbage\r\n\r\n", resp, sizeof(resp));
	ASSERT_EQ(renders, 2, "only the two good scrapes rendered");
	ASSERT_EQ(hm_metrics_requests(s), 2, "counted");
	ASSERT_TRUE(http_get(s, "GET /metrics HTTP/1.0\r\n\r\n", resp, sizeof(resp)) > 0,
		    "still serving after garbage");
	hm_metrics_stop(s);
	ASSERT_TRUE(hm_metrics_start("not-an-address", 0, render_cb, &m, err, sizeof(err)) == NULL,
		    "bad address refused");
	ASSERT_STRCONTAINS(err, "not-an-address", "named in the error");
}
