// SPDX-License-Identifier: MIT
/*
 * DNS over UDP, TCP and TLS for clients (see dns_frontend.h).  One internal
 * epoll set holds the UDP socket, the TCP and TLS listeners, a 1-second
 * timer for idle connections, and every connection.  A TLS connection is a
 * TCP one whose bytes pass through dns_tls.c (conn_recv, conn_send_some).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "service/dns/dns_frontend.h"
#include "service/dns/dns_tls.h"
#include "common/clock.h"
#include "common/log.h"

#define TCP_FRAME_MAX (2 + 65535)
#define TCP_PIPELINE_MAX 64 /* outstanding queries per connection */
#define TCP_OUT_MAX (1 << 20) /* unsent bytes per connection before we give up on it */

enum source_kind { SRC_UDP, SRC_TCP_LISTEN, SRC_TLS_LISTEN, SRC_TIMER, SRC_CONN };

struct source {
	enum source_kind kind;
};

struct conn {
	struct source src; /* first: epoll data points here */
	struct hm_dns_frontend *fe;
	int fd;
	bool closed;       /* socket gone; struct lives while requests refer to it */
	bool eof;          /* the client shut its side: answer what it asked, then close */
	bool buried;       /* on the graveyard list */
	unsigned refs;     /* requests not yet answered */
	int64_t last_active_ms;
	uint8_t in[TCP_FRAME_MAX];
	size_t in_len;
	uint8_t *out;
	size_t out_len, out_off, out_cap;
	struct sockaddr_storage peer; /* the client, for access control */
	struct hm_dns_tls_conn *tls;  /* DNS over TLS; NULL for plain TCP */
	bool tls_want_write;          /* TLS must write before it can read on */
	struct conn *prev, *next;
};

struct hm_dns_request {
	struct hm_dns_query q;
	struct conn *conn; /* NULL for UDP */
	struct sockaddr_storage peer;
	socklen_t peer_len;
};

struct hm_dns_frontend {
	int epfd;
	struct source udp_src, tcp_src, tls_src, timer_src;
	int udp_fd, tcp_fd, tls_fd, timer_fd;
	uint16_t port, tls_port;
	struct hm_dns_tls *tls;
	int idle_ms;
	unsigned max_conns, n_conns;
	struct conn *conns;
	struct conn *graveyard; /* closed and unreferenced, freed outside the event loop */
	hm_dns_query_cb cb;
	void *arg;
	bool restrict_clients;
	struct hm_prefix *allow;
	size_t n_allow;
	struct hm_dns_ratelimit *rate;
	int64_t refusals_logged_ms;    /* when refusals were last summarised in the log */
	uint64_t refusals_logged;      /* refused_acl + rate-limited at that time */
	struct sockaddr_storage last_refused;
	struct hm_dns_frontend_stats st;
};

static int64_t now_ms(void)
{
	return (int64_t)(hm_mono_us() / 1000);
}

/* ---- setup ---------------------------------------------------------------------- */

static int parse_addr(const char *addr, uint16_t port, struct sockaddr_storage *ss, socklen_t *len)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)ss;

	memset(ss, 0, sizeof(*ss));
	if (!addr)
		addr = "0.0.0.0";
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons(port);
		*len = sizeof(*a4);
		return 0;
	}
	if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons(port);
		*len = sizeof(*a6);
		return 0;
	}
	return -1;
}

static int watch(struct hm_dns_frontend *fe, int fd, struct source *src, uint32_t events, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = src };

	return epoll_ctl(fe->epfd, op, fd, &ev);
}

static int open_socket(int type, const struct sockaddr_storage *ss, socklen_t len)
{
	int one = 1;
	int fd = socket(ss->ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) < 0 ||
	    (type == SOCK_STREAM && listen(fd, 128) < 0)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* DNS over TLS on cfg->tls_port of the same address (RFC 7858: 853). */
static int open_tls(struct hm_dns_frontend *fe, const struct hm_dns_frontend_config *cfg,
		    char *err, size_t errlen)
{
	struct sockaddr_storage ss;
	socklen_t len;

	fe->tls = hm_dns_tls_new(cfg->tls_cert_file, cfg->tls_key_file, err, errlen);
	if (!fe->tls)
		return -1;
	if (parse_addr(cfg->addr, cfg->tls_port, &ss, &len) < 0 ||
	    (fe->tls_fd = open_socket(SOCK_STREAM, &ss, len)) < 0) {
		hm_set_err(err, errlen, "tls port %u: %s", cfg->tls_port, strerror(errno));
		return -1;
	}
	if (getsockname(fe->tls_fd, (struct sockaddr *)&ss, &len) < 0 ||
	    watch(fe, fe->tls_fd, &fe->tls_src, EPOLLIN, EPOLL_CTL_ADD) < 0) {
		hm_set_err(err, errlen, "tls listener: %s", strerror(errno));
		return -1;
	}
	fe->tls_port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						     : ((struct sockaddr_in6 *)&ss)->sin6_port);
	return 0;
}

struct hm_dns_frontend *hm_dns_frontend_new(const struct hm_dns_frontend_config *cfg,
					    hm_dns_query_cb cb, void *arg, char *err,
					    size_t errlen)
{
	struct hm_dns_frontend *fe = calloc(1, sizeof(*fe));
	struct itimerspec tick = { .it_interval = { 1, 0 }, .it_value = { 1, 0 } };
	struct sockaddr_storage ss;
	socklen_t len;

	if (!fe)
		return NULL;
	fe->udp_fd = fe->tcp_fd = fe->tls_fd = fe->timer_fd = fe->epfd = -1;
	fe->cb = cb;
	fe->arg = arg;
	fe->idle_ms = cfg->tcp_idle_ms > 0 ? cfg->tcp_idle_ms : 10000;
	fe->restrict_clients = cfg->restrict_clients;
	if (cfg->n_allow) {
		fe->allow = calloc(cfg->n_allow, sizeof(*fe->allow));
		if (!fe->allow) {
			hm_set_err(err, errlen, "out of memory");
			goto fail;
		}
		memcpy(fe->allow, cfg->allow, cfg->n_allow * sizeof(*fe->allow));
		fe->n_allow = cfg->n_allow;
	}
	if (cfg->rate.qps && !(fe->rate = hm_dns_ratelimit_new(&cfg->rate))) {
		hm_set_err(err, errlen, "out of memory");
		goto fail;
	}
	fe->max_conns = cfg->max_tcp_conns ? cfg->max_tcp_conns : 256;
	fe->udp_src.kind = SRC_UDP;
	fe->tcp_src.kind = SRC_TCP_LISTEN;
	fe->tls_src.kind = SRC_TLS_LISTEN;
	fe->timer_src.kind = SRC_TIMER;
	if (parse_addr(cfg->addr, cfg->port, &ss, &len) < 0) {
		hm_set_err(err, errlen, "bad listen address '%s'", cfg->addr);
		goto fail;
	}
	fe->udp_fd = open_socket(SOCK_DGRAM, &ss, len);
	if (fe->udp_fd < 0) {
		hm_set_err(err, errlen, "udp %s port %u: %s", cfg->addr ? cfg->addr : "*", cfg->port,
			strerror(errno));
		goto fail;
	}
	/* With port 0, TCP takes the port the kernel gave UDP. */
	if (getsockname(fe->udp_fd, (struct sockaddr *)&ss, &len) < 0)
		goto fail;
	fe->port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
						 : ((struct sockaddr_in6 *)&ss)->sin6_port);
	fe->tcp_fd = open_socket(SOCK_STREAM, &ss, len);
	if (fe->tcp_fd < 0) {
		hm_set_err(err, errlen, "tcp port %u: %s", fe->port, strerror(errno));
		goto fail;
	}
	fe->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	fe->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (fe->timer_fd < 0 || fe->epfd < 0 || timerfd_settime(fe->timer_fd, 0, &tick, NULL) < 0 ||
	    watch(fe, fe->udp_fd, &fe->udp_src, EPOLLIN, EPOLL_CTL_ADD) < 0 ||
	    watch(fe, fe->tcp_fd, &fe->tcp_src, EPOLLIN, EPOLL_CTL_ADD) < 0 ||
	    watch(fe, fe->timer_fd, &fe->timer_src, EPOLLIN, EPOLL_CTL_ADD) < 0) {
		hm_set_err(err, errlen, "epoll/timer: %s", strerror(errno));
		goto fail;
	}
	if (cfg->tls_port && open_tls(fe, cfg, err, errlen) < 0)
		goto fail;
	return fe;
fail:
	hm_dns_frontend_free(fe);
	return NULL;
}

/* ---- connections --------------------------------------------------------------------- */

/* A closed connection nobody refers to any more goes to the graveyard: it
 * may still sit in the event batch being handled, so it is freed only
 * between batches (bury). */
static void conn_release(struct conn *c)
{
	if (c->closed && c->refs == 0 && !c->buried) {
		c->buried = true;
		c->next = c->fe->graveyard;
		c->fe->graveyard = c;
	}
}

static void bury(struct hm_dns_frontend *fe)
{
	while (fe->graveyard) {
		struct conn *c = fe->graveyard;

		fe->graveyard = c->next;
		free(c->out);
		free(c);
	}
}

static void conn_close(struct conn *c)
{
	struct hm_dns_frontend *fe = c->fe;

	if (c->closed)
		return;
	epoll_ctl(fe->epfd, EPOLL_CTL_DEL, c->fd, NULL);
	if (c->tls && !hm_dns_tls_established(c->tls))
		fe->st.tls_handshake_failed++;
	hm_dns_tls_conn_free(c->tls);
	c->tls = NULL;
	close(c->fd);
	c->fd = -1;
	c->closed = true;
	if (c->prev)
		c->prev->next = c->next;
	else
		fe->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	fe->n_conns--;
	conn_release(c);
}

/* The events a connection waits for in its current state. */
static void conn_rearm(struct conn *c)
{
	uint32_t ev = (c->eof ? 0 : EPOLLIN) |
		      (c->out_len > c->out_off || c->tls_want_write ? EPOLLOUT : 0);

	if (c->eof && c->refs == 0 && c->out_len == c->out_off) {
		conn_close(c);
		return;
	}
	if (watch(c->fe, c->fd, &c->src, ev, EPOLL_CTL_MOD) < 0) {
		c->fe->st.tcp_errors++;
		conn_close(c);
	}
}

/* send() or its TLS form: bytes sent, or -1 (errno EAGAIN: later). */
static ssize_t conn_send_some(struct conn *c, const uint8_t *buf, size_t len)
{
	if (c->tls)
		return hm_dns_tls_write(c->tls, buf, len, &c->tls_want_write);
	return send(c->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* recv() or its TLS form. */
static ssize_t conn_recv(struct conn *c, uint8_t *buf, size_t len)
{
	if (c->tls)
		return hm_dns_tls_read(c->tls, buf, len, &c->tls_want_write);
	return recv(c->fd, buf, len, MSG_DONTWAIT);
}

static void conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = conn_send_some(c, c->out + c->out_off, c->out_len - c->out_off);

		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n <= 0) {
			c->fe->st.tcp_errors++;
			conn_close(c);
			return;
		}
		c->out_off += (size_t)n;
		c->last_active_ms = now_ms();
	}
	if (c->out_off == c->out_len)
		c->out_off = c->out_len = 0;
	conn_rearm(c);
}

/* Queue one framed message on a connection. */
static int conn_send(struct conn *c, const uint8_t *msg, size_t len)
{
	size_t need = c->out_len + 2 + len;

	if (need > TCP_OUT_MAX) {
		/* A client that does not read its answers. */
		c->fe->st.tcp_errors++;
		conn_close(c);
		return -1;
	}
	if (need > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		uint8_t *p;

		while (cap < need)
			cap *= 2;
		p = realloc(c->out, cap);
		if (!p) {
			conn_close(c);
			return -1;
		}
		c->out = p;
		c->out_cap = cap;
	}
	c->out[c->out_len] = (uint8_t)(len >> 8);
	c->out[c->out_len + 1] = (uint8_t)len;
	memcpy(c->out + c->out_len + 2, msg, len);
	c->out_len = need;
	conn_flush(c);
	return 0;
}

static void accept_all(struct hm_dns_frontend *fe, bool tls)
{
	for (;;) {
		struct sockaddr_storage peer = { 0 };
		socklen_t plen = sizeof(peer);
		int one = 1, fd = accept4(tls ? fe->tls_fd : fe->tcp_fd, (struct sockaddr *)&peer,
					  &plen, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0)
			return;
		if (fe->n_conns >= fe->max_conns || !(c = calloc(1, sizeof(*c)))) {
			fe->st.tcp_refused++;
			close(fd);
			continue;
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
		c->src.kind = SRC_CONN;
		c->fe = fe;
		c->fd = fd;
		c->peer = peer;
		c->last_active_ms = now_ms();
		if (tls && !(c->tls = hm_dns_tls_accept(fe->tls, fd))) {
			close(fd);
			free(c);
			fe->st.tcp_errors++;
			continue;
		}
		if (watch(fe, fd, &c->src, EPOLLIN, EPOLL_CTL_ADD) < 0) {
			hm_dns_tls_conn_free(c->tls);
			close(fd);
			free(c);
			fe->st.tcp_errors++;
			continue;
		}
		c->next = fe->conns;
		if (c->next)
			c->next->prev = c;
		fe->conns = c;
		fe->n_conns++;
		if (tls)
			fe->st.tls_accepted++;
		else
			fe->st.tcp_accepted++;
	}
}

/* ---- queries ----------------------------------------------------------------------- */

/* Access control and rate limits, before anything else is done for the
 * query: HM_DNS_PARSE_OK to go on, _DROP, or _REFUSED (with *ede). */
static enum hm_dns_parse_rc admit(struct hm_dns_frontend *fe, const struct sockaddr_storage *peer,
				  bool tcp, int *ede)
{
	const struct sockaddr *sa = (const struct sockaddr *)peer;

	if (!hm_dns_ratelimit_take(fe->rate, sa, hm_mono_us())) {
		fe->last_refused = *peer;
		if (!tcp) {
			fe->st.rate_dropped++;
			return HM_DNS_PARSE_DROP;
		}
		fe->st.rate_refused++;
		*ede = HM_EDE_OTHER;
		return HM_DNS_PARSE_REFUSED;
	}
	if (fe->restrict_clients && !hm_prefix_match_any(fe->allow, fe->n_allow, sa)) {
		fe->last_refused = *peer;
		fe->st.refused_acl++;
		*ede = HM_EDE_PROHIBITED;
		return HM_DNS_PARSE_REFUSED;
	}
	return HM_DNS_PARSE_OK;
}

/* A refusal by admit(): the parsed query's header and question echoed
 * (nothing for what does not parse far enough to answer). */
static void refuse(struct hm_dns_frontend *fe, struct hm_dns_request *req, enum hm_dns_parse_rc rc,
		   int ede)
{
	uint8_t out[512];
	size_t n = 0;

	if (rc == HM_DNS_PARSE_REFUSED)
		n = hm_dns_error_reply(&req->q, HM_DNS_REFUSED, ede,
				       ede == HM_EDE_PROHIBITED ? "client not in dns.allow"
								: "client over its rate limit",
				       out, sizeof(out));
	if (n)
		hm_dns_frontend_respond(fe, req, out, n);
	else
		hm_dns_frontend_drop(fe, req);
}

/* Parse one query; answer errors here, hand good ones to the callback. */
static void handle_query(struct hm_dns_frontend *fe, const uint8_t *wire, size_t len,
			 struct conn *c, const struct sockaddr_storage *peer, socklen_t peer_len)
{
	enum hm_dns_parse_rc admitted;
	int ede = -1;
	struct hm_dns_request *req = calloc(1, sizeof(*req));
	static const int rcodes[] = {
		[HM_DNS_PARSE_FORMERR] = HM_DNS_FORMERR, [HM_DNS_PARSE_NOTIMP] = HM_DNS_NOTIMP,
		[HM_DNS_PARSE_BADVERS] = HM_DNS_BADVERS, [HM_DNS_PARSE_REFUSED] = HM_DNS_REFUSED,
	};
	enum hm_dns_parse_rc rc;
	uint8_t out[512];
	size_t n;

	if (!req) {
		fe->st.dropped++;
		return;
	}
	admitted = admit(fe, c ? &c->peer : peer, c != NULL, &ede);
	rc = hm_dns_query_parse(wire, len, &req->q);
	req->conn = c;
	if (c) {
		req->q.max_size = 65535;
		c->refs++;
	} else {
		memcpy(&req->peer, peer, peer_len);
		req->peer_len = peer_len;
	}
	if (admitted != HM_DNS_PARSE_OK) {
		refuse(fe, req, rc == HM_DNS_PARSE_DROP ? rc : admitted, ede);
		return;
	}
	switch (rc) {
	case HM_DNS_PARSE_OK:
		if (c && c->tls)
			fe->st.tls_queries++;
		else if (c)
			fe->st.tcp_queries++;
		else
			fe->st.udp_queries++;
		fe->cb(fe->arg, req, &req->q);
		return;
	case HM_DNS_PARSE_DROP:
		fe->st.dropped++;
		hm_dns_frontend_drop(fe, req);
		return;
	case HM_DNS_PARSE_FORMERR: fe->st.formerr++; break;
	case HM_DNS_PARSE_NOTIMP: fe->st.notimp++; break;
	case HM_DNS_PARSE_BADVERS: fe->st.badvers++; break;
	case HM_DNS_PARSE_REFUSED: fe->st.refused++; break;
	}
	n = hm_dns_error_reply(&req->q, rcodes[rc], -1, NULL, out, sizeof(out));
	if (n)
		hm_dns_frontend_respond(fe, req, out, n);
	else
		hm_dns_frontend_drop(fe, req);
}

static void udp_read(struct hm_dns_frontend *fe)
{
	static uint8_t buf[65536];

	for (int i = 0; i < 256; i++) { /* then let the loop breathe */
		struct sockaddr_storage peer;
		socklen_t plen = sizeof(peer);
		ssize_t n = recvfrom(fe->udp_fd, buf, sizeof(buf), MSG_DONTWAIT,
				     (struct sockaddr *)&peer, &plen);

		if (n < 0)
			return;
		handle_query(fe, buf, (size_t)n, NULL, &peer, plen);
	}
}

/* Read what the client sent and dispatch every complete frame; false
 * when the connection is done reading for now (or closed). */
static bool conn_read_once(struct conn *c)
{
	struct hm_dns_frontend *fe = c->fe;
	ssize_t n = conn_recv(c, c->in + c->in_len, sizeof(c->in) - c->in_len);

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
		if (c->tls_want_write)
			conn_rearm(c);
		return false;
	}
	if (n <= 0) {
		if (n < 0)
			fe->st.tcp_errors++;
		c->eof = true;
		if (n < 0)
			conn_close(c);
		else
			conn_rearm(c);
		return false;
	}
	c->in_len += (size_t)n;
	c->last_active_ms = now_ms();
	/* The callback may answer at once, which can close c on a send error:
	 * hold a reference across the loop. */
	c->refs++;
	while (!c->closed && c->in_len >= 2) {
		size_t flen = (size_t)(c->in[0] << 8 | c->in[1]);

		if (c->in_len < 2 + flen)
			break;
		if (c->refs > TCP_PIPELINE_MAX) {
			fe->st.tcp_errors++;
			conn_close(c);
			break;
		}
		handle_query(fe, c->in + 2, flen, c, NULL, 0);
		memmove(c->in, c->in + 2 + flen, c->in_len - 2 - flen);
		c->in_len -= 2 + flen;
	}
	c->refs--;
	if (c->closed) {
		conn_release(c);
		return false;
	}
	return true;
}

/* A TLS session may hold decrypted bytes epoll knows nothing of: read on
 * while it does. */
static void conn_read(struct conn *c)
{
	while (conn_read_once(c) && c->tls && hm_dns_tls_pending(c->tls))
		;
}

/* Refusals are per query, so the log gets a summary at most every 10 s. */
static void log_refusals(struct hm_dns_frontend *fe, int64_t now)
{
	uint64_t total = fe->st.refused_acl + fe->st.rate_dropped + fe->st.rate_refused;
	struct hm_prefix last = { 0 };
	char who[HM_PREFIX_TEXT_MAX];

	if (total == fe->refusals_logged || now - fe->refusals_logged_ms < 10000)
		return;
	hm_prefix_addr_of((const struct sockaddr *)&fe->last_refused, &last.family, last.addr);
	last.len = last.family == AF_INET ? 32 : 128;
	hm_prefix_format(&last, who, sizeof(who));
	hm_info("dns: %llu queries refused or dropped since the last report (access list %llu, "
		"rate limit %llu in total; last from %s)",
		(unsigned long long)(total - fe->refusals_logged),
		(unsigned long long)fe->st.refused_acl,
		(unsigned long long)(fe->st.rate_dropped + fe->st.rate_refused), who);
	fe->refusals_logged = total;
	fe->refusals_logged_ms = now;
}

static void expire_idle(struct hm_dns_frontend *fe)
{
	int64_t now = now_ms();
	uint64_t ticks;
	struct conn *c, *next;

	if (read(fe->timer_fd, &ticks, sizeof(ticks)) < 0 && errno != EAGAIN)
		fe->st.tcp_errors++;
	log_refusals(fe, now);
	for (c = fe->conns; c; c = next) {
		next = c->next;
		/* Idle means: no bytes either way for a while and nothing of
		 * ours outstanding (a slow upstream is not the client's fault). */
		if (c->refs == 0 && c->out_len == c->out_off && now - c->last_active_ms >= fe->idle_ms) {
			fe->st.tcp_idle_closed++;
			conn_close(c);
		}
	}
}

int hm_dns_frontend_process(struct hm_dns_frontend *fe)
{
	struct epoll_event evs[64];
	int n;

	bury(fe);
	n = epoll_wait(fe->epfd, evs, 64, 0);
	if (n < 0)
		return errno == EINTR ? 0 : -1;
	for (int i = 0; i < n; i++) {
		struct source *s = evs[i].data.ptr;

		switch (s->kind) {
		case SRC_UDP: udp_read(fe); break;
		case SRC_TCP_LISTEN: accept_all(fe, false); break;
		case SRC_TLS_LISTEN: accept_all(fe, true); break;
		case SRC_TIMER: expire_idle(fe); break;
		case SRC_CONN: {
			struct conn *c = (struct conn *)s;

			/* A connection closed earlier in this batch is not in
			 * epoll any more, but may still be in evs: its struct
			 * lives while requests refer to it; skip it. */
			if (c->closed)
				break;
			/* A TLS session that wanted to write to go on reading
			 * reads again once the socket is writable. */
			bool tls_resume = c->tls_want_write && (evs[i].events & EPOLLOUT);

			if (evs[i].events & EPOLLOUT)
				conn_flush(c);
			if (!c->closed &&
			    ((evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) || tls_resume))
				conn_read(c);
			break;
		}
		}
	}
	bury(fe);
	return 0;
}

/* ---- answers ---------------------------------------------------------------------- */

static void request_free(struct hm_dns_request *req)
{
	struct conn *c = req->conn;

	free(req);
	if (!c)
		return;
	c->refs--;
	if (c->closed)
		conn_release(c);
	else if (c->eof)
		conn_rearm(c);
}

int hm_dns_frontend_respond(struct hm_dns_frontend *fe, struct hm_dns_request *req,
			    const uint8_t *wire, size_t len)
{
	struct conn *c = req->conn;
	int rc = -1;

	if (len >= 12 && len <= 65535) {
		if (len > 2 && (wire[2] & 0x02))
			fe->st.truncated++;
		if (!c) {
			rc = sendto(fe->udp_fd, wire, len, MSG_DONTWAIT,
				    (const struct sockaddr *)&req->peer, req->peer_len) == (ssize_t)len
				     ? 0
				     : -1;
		} else if (!c->closed) {
			/* Hold c across the send, which may close it. */
			c->refs++;
			rc = conn_send(c, wire, len);
			c->refs--;
		}
		if (rc == 0)
			fe->st.replies++;
	}
	request_free(req);
	return rc;
}

void hm_dns_frontend_drop(struct hm_dns_frontend *fe, struct hm_dns_request *req)
{
	(void)fe;
	request_free(req);
}

const struct hm_dns_query *hm_dns_request_query(const struct hm_dns_request *req)
{
	return &req->q;
}

int hm_dns_frontend_fd(const struct hm_dns_frontend *fe)
{
	return fe->epfd;
}

uint16_t hm_dns_frontend_port(const struct hm_dns_frontend *fe)
{
	return fe->port;
}

uint16_t hm_dns_frontend_tls_port(const struct hm_dns_frontend *fe)
{
	return fe->tls_port;
}

void hm_dns_frontend_stats(const struct hm_dns_frontend *fe, struct hm_dns_frontend_stats *out)
{
	struct hm_dns_ratelimit_stats rs;

	*out = fe->st;
	hm_dns_ratelimit_stats(fe->rate, &rs);
	out->rate_table_full = rs.table_full;
}

void hm_dns_frontend_free(struct hm_dns_frontend *fe)
{
	if (!fe)
		return;
	while (fe->conns) {
		struct conn *c = fe->conns;

		/* Requests still out keep the struct; the caller must not use
		 * them after this (documented), so drop our claim on it. */
		c->refs = 0;
		conn_close(c);
	}
	bury(fe);
	if (fe->udp_fd >= 0)
		close(fe->udp_fd);
	if (fe->tcp_fd >= 0)
		close(fe->tcp_fd);
	if (fe->tls_fd >= 0)
		close(fe->tls_fd);
	hm_dns_tls_free(fe->tls);
	if (fe->timer_fd >= 0)
		close(fe->timer_fd);
	if (fe->epfd >= 0)
		close(fe->epfd);
	free(fe->allow);
	hm_dns_ratelimit_free(fe->rate);
	free(fe);
}
