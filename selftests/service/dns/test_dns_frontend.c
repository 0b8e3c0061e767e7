// SPDX-License-Identifier: MIT
/*
 * The DNS front end on loopback (port chosen by the kernel): UDP queries
 * answered through the callback, error replies without it, TCP frames split
 * across writes and several in one write, answers out of order, a request
 * answered after its connection is gone, a half-closed client still
 * answered, the idle timeout, the connection limit, and garbage.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <ldns/ldns.h>

#include "common/clock.h"
#include "service/dns/dns_frontend.h"
#include "hm_test.h"

#define MAXREQ 64

static struct hm_dns_frontend *fe;
static struct hm_dns_request *held[MAXREQ];
static struct hm_dns_query held_q[MAXREQ];
static int n_held;
static bool answer_now = true;

static size_t answer_for(const struct hm_dns_query *q, uint8_t *out, size_t cap)
{
	/* REFUSED with the question: enough to see which query it answers. */
	return hm_dns_error_reply(q, HM_DNS_REFUSED, -1, NULL, out, cap);
}

static void on_query(void *arg, struct hm_dns_request *req, const struct hm_dns_query *q)
{
	uint8_t out[512];

	(void)arg;
	if (answer_now) {
		hm_dns_frontend_respond(fe, req, out, answer_for(q, out, sizeof(out)));
	} else if (n_held < MAXREQ) {
		held_q[n_held] = *q;
		held[n_held++] = req;
	} else {
		hm_dns_frontend_drop(fe, req);
	}
}

static void pump(int ms)
{
	struct pollfd p = { .fd = hm_dns_frontend_fd(fe), .events = POLLIN };
	struct timespec start, now;

	clock_gettime(CLOCK_MONOTONIC, &start);
	do {
		if (poll(&p, 1, 5) > 0)
			hm_dns_frontend_process(fe);
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while ((now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000 < ms);
}

static size_t query(uint8_t *out, size_t cap, uint16_t id, const char *name)
{
	ldns_pkt *pkt = NULL;
	uint8_t *wire = NULL;
	size_t n = 0;

	ldns_pkt_query_new_frm_str(&pkt, name, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);
	ldns_pkt_set_id(pkt, id);
	if (ldns_pkt2wire(&wire, pkt, &n) != LDNS_STATUS_OK || n > cap)
		abort();
	memcpy(out, wire, n);
	free(wire);
	ldns_pkt_free(pkt);
	return n;
}

static struct sockaddr_in server(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(hm_dns_frontend_port(fe)),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	return a;
}

static int tcp_connect(void)
{
	struct sockaddr_in a = server();
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0)
		abort();
	pump(20);
	return fd;
}

/* Read one framed reply (exactly its bytes, so the next stays in the
 * socket), pumping the front end meanwhile; its id, or -1. */
static int tcp_read_reply(int fd, int ms)
{
	uint8_t buf[2 + 65535];
	size_t have = 0, want = 2;

	for (int i = 0; i < ms / 5; i++) {
		ssize_t n = recv(fd, buf + have, want - have, MSG_DONTWAIT);

		if (n == 0)
			return -1;
		if (n > 0)
			have += (size_t)n;
		if (have == 2 && want == 2)
			want = 2 + (size_t)(buf[0] << 8 | buf[1]);
		if (have == want && want > 2)
			return want >= 4 ? buf[2] << 8 | buf[3] : -1;
		if (n <= 0)
			pump(5);
	}
	return -1;
}

static void frame(uint8_t *out, size_t *len, const uint8_t *msg, size_t n)
{
	out[*len] = (uint8_t)(n >> 8);
	out[*len + 1] = (uint8_t)n;
	memcpy(out + *len + 2, msg, n);
	*len += 2 + n;
}

HM_TEST(udp_queries_and_errors)
{
	struct sockaddr_in a = server();
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	uint8_t q[512], r[512];
	size_t n = query(q, sizeof(q), 4711, "www.example.org.");
	struct hm_dns_frontend_stats st0, st;
	ssize_t got;

	hm_dns_frontend_stats(fe, &st0);
	sendto(fd, q, n, 0, (struct sockaddr *)&a, sizeof(a));
	pump(50);
	got = recv(fd, r, sizeof(r), MSG_DONTWAIT);
	ASSERT_GE(got, 12, "reply");
	ASSERT_EQ(r[0] << 8 | r[1], 4711, "id");
	ASSERT_EQ(r[3] & 0x0f, HM_DNS_REFUSED, "the callback's answer");
	/* Header with a truncated question: FORMERR without the callback. */
	sendto(fd, q, 14, 0, (struct sockaddr *)&a, sizeof(a));
	/* Too short for a header: nothing. */
	sendto(fd, q, 5, 0, (struct sockaddr *)&a, sizeof(a));
	pump(50);
	got = recv(fd, r, sizeof(r), MSG_DONTWAIT);
	ASSERT_GE(got, 12, "FORMERR reply");
	ASSERT_EQ(r[3] & 0x0f, HM_DNS_FORMERR, "FORMERR");
	ASSERT_TRUE(recv(fd, r, sizeof(r), MSG_DONTWAIT) < 0, "nothing for the short datagram");
	hm_dns_frontend_stats(fe, &st);
	ASSERT_EQ(st.udp_queries - st0.udp_queries, 1, "one query to the callback");
	ASSERT_EQ(st.formerr - st0.formerr, 1, "FORMERR counted");
	ASSERT_EQ(st.dropped - st0.dropped, 1, "drop counted");
	close(fd);
}

HM_TEST(tcp_split_and_pipelined)
{
	uint8_t q[512], buf[4096];
	size_t n, len = 0;
	int fd = tcp_connect();

	/* One query, one byte per write. */
	n = query(q, sizeof(q), 100, "a.example.org.");
	frame(buf, &len, q, n);
	for (size_t i = 0; i < len; i++) {
		ASSERT_EQ(send(fd, buf + i, 1, 0), 1, "byte");
		pump(2);
	}
	ASSERT_EQ(tcp_read_reply(fd, 500), 100, "answer to the split query");
	/* Three queries in one write, one of them malformed. */
	len = 0;
	n = query(q, sizeof(q), 201, "b.example.org.");
	frame(buf, &len, q, n);
	frame(buf, &len, q, 14); /* id 201 again, truncated question: FORMERR */
	n = query(q, sizeof(q), 203, "c.example.org.");
	frame(buf, &len, q, n);
	ASSERT_EQ(send(fd, buf, len, 0), (ssize_t)len, "pipelined write");
	ASSERT_EQ(tcp_read_reply(fd, 500), 201, "first");
	ASSERT_EQ(tcp_read_reply(fd, 500), 201, "FORMERR for the second");
	ASSERT_EQ(tcp_read_reply(fd, 500), 203, "third");
	close(fd);
	pump(20);
}

HM_TEST(tcp_out_of_order_and_after_close)
{
	uint8_t q[512], buf[4096], out[512];
	size_t n, len = 0;
	int fd = tcp_connect();

	answer_now = false;
	n_held = 0;
	for (uint16_t id = 1; id <= 3; id++) {
		n = query(q, sizeof(q), id, "x.example.org.");
		frame(buf, &len, q, n);
	}
	send(fd, buf, len, 0);
	pump(50);
	ASSERT_EQ(n_held, 3, "three held");
	/* Answer the last first. */
	for (int i = 2; i >= 0; i--)
		hm_dns_frontend_respond(fe, held[i], out, answer_for(&held_q[i], out, sizeof(out)));
	ASSERT_EQ(tcp_read_reply(fd, 500), 3, "third answered first");
	ASSERT_EQ(tcp_read_reply(fd, 500), 2, "then second");
	ASSERT_EQ(tcp_read_reply(fd, 500), 1, "then first");

	/* A client that half-closes after asking still gets its answer. */
	n_held = 0;
	len = 0;
	n = query(q, sizeof(q), 77, "y.example.org.");
	frame(buf, &len, q, n);
	send(fd, buf, len, 0);
	shutdown(fd, SHUT_WR);
	pump(50);
	ASSERT_EQ(n_held, 1, "held");
	hm_dns_frontend_respond(fe, held[0], out, answer_for(&held_q[0], out, sizeof(out)));
	ASSERT_EQ(tcp_read_reply(fd, 500), 77, "answered after half-close");
	pump(20);
	ASSERT_EQ(recv(fd, buf, sizeof(buf), MSG_DONTWAIT), 0, "then closed by the server");
	close(fd);

	/* The connection is reset before the answer: the request is still
	 * safe to answer (nothing is sent) or drop. */
	fd = tcp_connect();
	n_held = 0;
	len = 0;
	n = query(q, sizeof(q), 88, "z.example.org.");
	frame(buf, &len, q, n);
	frame(buf, &len, q, n);
	send(fd, buf, len, 0);
	pump(50);
	{
		struct linger rst = { .l_onoff = 1, .l_linger = 0 };

		setsockopt(fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
	}
	close(fd);
	pump(50);
	ASSERT_EQ(n_held, 2, "two held");
	ASSERT_ERR(hm_dns_frontend_respond(fe, held[0], out, answer_for(&held_q[0], out, sizeof(out))),
		   "answer to a closed connection");
	hm_dns_frontend_drop(fe, held[1]);
	answer_now = true;
	pump(20);
}

HM_TEST(idle_timeout_and_limits)
{
	struct hm_dns_frontend_stats st0, st;
	uint8_t b;
	int fd = tcp_connect(), fds[8];

	hm_dns_frontend_stats(fe, &st0);
	pump(2500); /* idle timeout is 1 s, checked every second */
	ASSERT_EQ(recv(fd, &b, 1, MSG_DONTWAIT), 0, "idle connection closed");
	hm_dns_frontend_stats(fe, &st);
	ASSERT_GE(st.tcp_idle_closed - st0.tcp_idle_closed, 1, "counted");
	close(fd);
	/* The limit is 4 connections: the fifth is refused. */
	for (int i = 0; i < 5; i++)
		fds[i] = tcp_connect();
	pump(50);
	ASSERT_EQ(recv(fds[4], &b, 1, MSG_DONTWAIT), 0, "fifth connection closed at once");
	ASSERT_TRUE(recv(fds[0], &b, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN, "first still open");
	hm_dns_frontend_stats(fe, &st);
	ASSERT_GE(st.tcp_refused, 1, "refusal counted");
	for (int i = 0; i < 5; i++)
		close(fds[i]);
	pump(50);
}

HM_TEST(garbage_streams)
{
	uint64_t st = 0x9a7ba9e;
	uint8_t junk[300], q[512], buf[1024];
	size_t n, len = 0;
	int fd;

	for (int k = 0; k < 20; k++) {
		fd = tcp_connect();
		for (size_t i = 0; i < sizeof(junk); i++)
			junk[i] = (uint8_t)hm_test_rand(&st);
		send(fd, junk, 1 + hm_test_rand(&st) % sizeof(junk), MSG_NOSIGNAL);
		pump(5);
		close(fd);
	}
	pump(50);
	fd = tcp_connect();
	n = query(q, sizeof(q), 999, "after.example.org.");
	frame(buf, &len, q, n);
	send(fd, buf, len, 0);
	ASSERT_EQ(tcp_read_reply(fd, 500), 999, "still serving after garbage");
	close(fd);
}

/* ---- access control and rate limits: front ends of their own ---- */

static struct hm_dns_frontend *fe2;

static void on_query2(void *arg, struct hm_dns_request *req, const struct hm_dns_query *q)
{
	uint8_t out[512];

	(void)arg;
	/* NXDOMAIN: unlike the front end's own refusals. */
	hm_dns_frontend_respond(fe2, req, out,
				hm_dns_error_reply(q, HM_DNS_NXDOMAIN, -1, NULL, out, sizeof(out)));
}

static void pump2(int ms)
{
	struct pollfd p = { .fd = hm_dns_frontend_fd(fe2), .events = POLLIN };
	uint64_t end = hm_mono_us() + (uint64_t)ms * 1000;

	while (hm_mono_us() < end)
		if (poll(&p, 1, 5) > 0)
			hm_dns_frontend_process(fe2);
}

static void fe2_start(const char *allow, uint32_t qps)
{
	static struct hm_prefix pfx;
	struct hm_dns_frontend_config cfg = { .addr = "127.0.0.1", .restrict_clients = true,
					      .allow = &pfx, .n_allow = 1,
					      .rate = { .qps = qps, .burst = qps } };
	char err[256];

	if (hm_prefix_parse(allow, &pfx, err, sizeof(err)) < 0 ||
	    !(fe2 = hm_dns_frontend_new(&cfg, on_query2, NULL, err, sizeof(err)))) {
		fprintf(stderr, "front end: %s\n", err);
		abort();
	}
}

/* The EDE code of a reply, -1 if none. */
static int ede_of(const uint8_t *r, size_t n)
{
	ldns_pkt *pkt = NULL;
	ldns_edns_option_list *l;
	int code = -1;

	if (ldns_wire2pkt(&pkt, r, n) != LDNS_STATUS_OK)
		return -1;
	l = ldns_pkt_edns_get_option_list(pkt);
	for (size_t i = 0; l && i < ldns_edns_option_list_get_count(l); i++) {
		ldns_edns_option *o = ldns_edns_option_list_get_option(l, i);

		if (ldns_edns_get_code(o) == 15 && ldns_edns_get_size(o) >= 2)
			code = ldns_edns_get_data(o)[0] << 8 | ldns_edns_get_data(o)[1];
	}
	ldns_pkt_free(pkt);
	return code;
}

static size_t edns_query(uint8_t *out, size_t cap, uint16_t id)
{
	ldns_pkt *pkt = NULL;
	uint8_t *wire = NULL;
	size_t n = 0;

	ldns_pkt_query_new_frm_str(&pkt, "www.example.org.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
				   LDNS_RD);
	ldns_pkt_set_id(pkt, id);
	ldns_pkt_set_edns_udp_size(pkt, 1232);
	pkt->_edns_present = 1;
	if (ldns_pkt2wire(&wire, pkt, &n) != LDNS_STATUS_OK || n > cap)
		abort();
	memcpy(out, wire, n);
	free(wire);
	ldns_pkt_free(pkt);
	return n;
}

HM_TEST(access_list_refuses_outsiders)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct hm_dns_frontend_stats st;
	uint8_t q[512], r[512], buf[600];
	size_t n, len = 0;
	ssize_t got = -1;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), tfd;

	fe2_start("198.18.0.0/15", 0); /* loopback is not in it */
	a.sin_port = htons(hm_dns_frontend_port(fe2));
	n = edns_query(q, sizeof(q), 31);
	sendto(fd, q, n, 0, (struct sockaddr *)&a, sizeof(a));
	for (int i = 0; i < 100 && got < 0; i++) {
		pump2(10);
		got = recv(fd, r, sizeof(r), MSG_DONTWAIT);
	}
	ASSERT_GE(got, 12, "a reply over UDP");
	ASSERT_EQ(r[0] << 8 | r[1], 31, "its id");
	ASSERT_EQ(r[3] & 0x0f, HM_DNS_REFUSED, "REFUSED");
	ASSERT_EQ(ede_of(r, (size_t)got), HM_EDE_PROHIBITED, "EDE 18 Prohibited");
	tfd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(tfd, (struct sockaddr *)&a, sizeof(a)) < 0)
		abort();
	n = query(q, sizeof(q), 32, "www.example.org.");
	frame(buf, &len, q, n);
	send(tfd, buf, len, 0);
	got = -1;
	for (int i = 0; i < 100 && got < 0; i++) {
		pump2(10);
		got = recv(tfd, buf, sizeof(buf), MSG_DONTWAIT);
	}
	ASSERT_GE(got, 14, "a reply over TCP");
	ASSERT_EQ(buf[5] & 0x0f, HM_DNS_REFUSED, "REFUSED over TCP too");
	hm_dns_frontend_stats(fe2, &st);
	ASSERT_EQ(st.refused_acl, 2, "both counted");
	ASSERT_EQ(st.udp_queries + st.tcp_queries, 0, "nothing reached the callback");
	close(tfd);
	close(fd);
	hm_dns_frontend_free(fe2);
}

HM_TEST(rate_limit_per_prefix)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	struct hm_dns_frontend_stats st;
	uint8_t q[512], r[512], buf[600];
	size_t n, len = 0;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), tfd, answered = 0, refused = -1;

	fe2_start("127.0.0.0/8", 5); /* 5 qps, burst 5 */
	a.sin_port = htons(hm_dns_frontend_port(fe2));
	n = query(q, sizeof(q), 41, "www.example.org.");
	for (int i = 0; i < 20; i++)
		sendto(fd, q, n, 0, (struct sockaddr *)&a, sizeof(a));
	pump2(200);
	while (recv(fd, r, sizeof(r), MSG_DONTWAIT) >= 12)
		answered++;
	/* 5 from the burst, and the refill during the test's own time: at 5
	 * tokens a second, well under 20 whatever the load. */
	ASSERT_GE(answered, 5, "the burst is answered");
	ASSERT_TRUE(answered < 12, "the rest is not");
	hm_dns_frontend_stats(fe2, &st);
	ASSERT_EQ(st.rate_dropped, (uint64_t)(20 - answered), "UDP over the limit dropped, counted");
	/* Over TCP (no spoofing there) the refusal is an answer. */
	tfd = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(tfd, (struct sockaddr *)&a, sizeof(a)) < 0)
		abort();
	for (int i = 0; i < 10; i++)
		frame(buf, &len, q, n);
	send(tfd, buf, len, 0);
	for (int i = 0; i < 200 && refused < 0; i++) {
		uint8_t one[2 + 512];
		ssize_t got;

		pump2(5);
		got = recv(tfd, one, 2, MSG_DONTWAIT);
		if (got == 2) {
			got = recv(tfd, one + 2, (size_t)(one[0] << 8 | one[1]), MSG_WAITALL);
			if (got >= 12 && (one[5] & 0x0f) == HM_DNS_REFUSED)
				refused = 1;
		}
	}
	ASSERT_EQ(refused, 1, "a TCP query over the limit gets REFUSED");
	hm_dns_frontend_stats(fe2, &st);
	ASSERT_GE(st.rate_refused, 1, "counted");
	close(tfd);
	close(fd);
	hm_dns_frontend_free(fe2);
}

__attribute__((constructor(200))) static void init(void)
{
	struct hm_dns_frontend_config cfg = { .addr = "127.0.0.1", .port = 0, .tcp_idle_ms = 1000,
					      .max_tcp_conns = 4 };
	char err[256];

	fe = hm_dns_frontend_new(&cfg, on_query, NULL, err, sizeof(err));
	if (!fe) {
		fprintf(stderr, "front end: %s\n", err);
		abort();
	}
}

__attribute__((destructor)) static void fini(void)
{
	hm_dns_frontend_free(fe);
}
