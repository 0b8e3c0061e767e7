/* SPDX-License-Identifier: MIT */
/*
 * DNS over TLS (RFC 7858) for the front end: the server's TLS context
 * (OpenSSL; TLS 1.2 and later, the certificate and key the configuration
 * names) and the non-blocking reads and writes of one connection.  The
 * framing inside TLS is DNS over TCP's (2-byte lengths, RFC 7766), so the
 * front end treats a TLS connection as a TCP one whose bytes pass through
 * these two calls.
 */
#ifndef HM_DNS_TLS_H
#define HM_DNS_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct hm_dns_tls;
struct hm_dns_tls_conn;

/* The context, from a PEM certificate chain and its PEM private key.
 * NULL with the reason in err. */
struct hm_dns_tls *hm_dns_tls_new(const char *cert_file, const char *key_file, char *err,
				  size_t errlen);
void hm_dns_tls_free(struct hm_dns_tls *t);

/* A server-side session on a connected non-blocking socket; NULL when out
 * of memory.  The handshake happens inside the first reads. */
struct hm_dns_tls_conn *hm_dns_tls_accept(struct hm_dns_tls *t, int fd);
void hm_dns_tls_conn_free(struct hm_dns_tls_conn *c);

/* Like recv()/send(): bytes moved, 0 on the peer's close (read), -1 with
 * errno EAGAIN when the socket must become readable, or writable when
 * *want_write is set (TLS may need to write to read, and the reverse), or
 * -1 with another errno on a failed handshake or a broken session. */
ssize_t hm_dns_tls_read(struct hm_dns_tls_conn *c, void *buf, size_t len, bool *want_write);
ssize_t hm_dns_tls_write(struct hm_dns_tls_conn *c, const void *buf, size_t len, bool *want_write);
/* Decrypted bytes waiting inside the session (epoll will not say so). */
bool hm_dns_tls_pending(const struct hm_dns_tls_conn *c);
/* Did this session finish its handshake? */
bool hm_dns_tls_established(const struct hm_dns_tls_conn *c);

#endif /* HM_DNS_TLS_H */
