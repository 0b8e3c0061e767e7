/* SPDX-License-Identifier: MIT */
/*
 * The DNS listener: UDP and TCP (RFC 7766: 2-byte length framing, several
 * queries per connection, answered in any order, idle timeout) on one
 * address and port, and optionally DNS over TLS (RFC 7858, the same
 * framing inside TLS) on a second port.  It is a single epoll fd for the caller's loop:
 *
 *   fe = hm_dns_frontend_new(&cfg, on_query, arg, err, sizeof(err));
 *   epoll_ctl(ep, EPOLL_CTL_ADD, hm_dns_frontend_fd(fe), EPOLLIN);
 *   ... on EPOLLIN: hm_dns_frontend_process(fe);
 *       -> on_query(arg, req, &query)        for every well-formed query
 *   ... later: hm_dns_frontend_respond(fe, req, wire, len)  (or _drop)
 *
 * Malformed queries never reach the callback: the front end answers them
 * itself (FORMERR, NOTIMP, BADVERS, REFUSED) and counts them; so are
 * queries from clients outside the access list (REFUSED) and over their
 * rate limit (dropped over UDP, REFUSED over TCP).  query.max_size
 * says how long the answer may be on the query's transport (the client's
 * EDNS UDP size clamped, or 65535 on TCP): pass it to hm_dns_reply_build().
 */
#ifndef HM_DNS_FRONTEND_H
#define HM_DNS_FRONTEND_H

#include <stddef.h>
#include <stdint.h>

#include "common/netprefix.h"
#include "service/dns/dns_msg.h"
#include "service/dns/dns_ratelimit.h"

struct hm_dns_frontend;
struct hm_dns_request;

struct hm_dns_frontend_config {
	const char *addr;       /* IPv4 or IPv6 literal; NULL: 0.0.0.0 */
	uint16_t port;          /* 0: any (see hm_dns_frontend_port) */
	int tcp_idle_ms;        /* close idle TCP connections after this; 0: 10 s */
	unsigned max_tcp_conns; /* 0: 256 */
	/* Access control (docs/configuration.md, dns.allow): when
	 * restrict_clients, a query from outside allow[0..n_allow) gets
	 * REFUSED with EDE 18 (Prohibited); without it every client is served
	 * (the unit tests; the daemon always restricts). */
	bool restrict_clients;
	const struct hm_prefix *allow;
	size_t n_allow;
	/* Per-client-prefix rate limit (dns_ratelimit.h); rate.qps 0: none.
	 * Over the limit a UDP query is dropped (answering would still
	 * reflect traffic at a spoofed source), a TCP query gets REFUSED. */
	struct hm_dns_ratelimit_config rate;
	/* DNS over TLS (RFC 7858) on this port of addr, 0: none; the PEM
	 * certificate chain and key it presents. */
	uint16_t tls_port;
	const char *tls_cert_file, *tls_key_file;
};

struct hm_dns_frontend_stats {
	uint64_t udp_queries, tcp_queries;  /* handed to the callback */
	uint64_t formerr, notimp, badvers, refused; /* answered by the front end */
	uint64_t dropped;                   /* no reply possible (short, responses) */
	uint64_t replies, truncated;        /* sent; of them with TC set */
	uint64_t tcp_accepted, tcp_refused, tcp_idle_closed, tcp_errors;
	uint64_t refused_acl;               /* REFUSED: client outside dns.allow */
	uint64_t rate_dropped, rate_refused;/* over the rate limit: UDP dropped, TCP REFUSED */
	uint64_t rate_table_full;           /* passed unlimited: no bucket free */
	uint64_t tls_accepted, tls_queries; /* DNS over TLS connections, queries */
	uint64_t tls_handshake_failed;      /* closed before the handshake finished */
};

typedef void (*hm_dns_query_cb)(void *arg, struct hm_dns_request *req,
				const struct hm_dns_query *q);

struct hm_dns_frontend *hm_dns_frontend_new(const struct hm_dns_frontend_config *cfg,
					    hm_dns_query_cb cb, void *arg, char *err,
					    size_t errlen);
/* Closes every socket; requests not yet answered must not be used after. */
void hm_dns_frontend_free(struct hm_dns_frontend *fe);

int hm_dns_frontend_fd(const struct hm_dns_frontend *fe);
uint16_t hm_dns_frontend_port(const struct hm_dns_frontend *fe);
/* The DNS-over-TLS port, or 0 without TLS. */
uint16_t hm_dns_frontend_tls_port(const struct hm_dns_frontend *fe);

/* Handle whatever is ready (never blocks).  Returns 0, or -1 on a fatal
 * error of the listening sockets. */
int hm_dns_frontend_process(struct hm_dns_frontend *fe);

/* Send the reply to a request and release it (also when its TCP connection
 * is gone meanwhile: then nothing is sent).  Returns 0 when sent or queued. */
int hm_dns_frontend_respond(struct hm_dns_frontend *fe, struct hm_dns_request *req,
			    const uint8_t *wire, size_t len);
/* Release a request without answering. */
void hm_dns_frontend_drop(struct hm_dns_frontend *fe, struct hm_dns_request *req);

/* The parsed query of a pending request. */
const struct hm_dns_query *hm_dns_request_query(const struct hm_dns_request *req);

void hm_dns_frontend_stats(const struct hm_dns_frontend *fe, struct hm_dns_frontend_stats *out);

#endif /* HM_DNS_FRONTEND_H */
