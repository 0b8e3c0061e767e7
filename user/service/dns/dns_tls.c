// SPDX-License-Identifier: MIT
/*
 * DNS over TLS sessions (dns_tls.h), on OpenSSL.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "service/dns/dns_tls.h"
#include "common/log.h"

struct hm_dns_tls {
	SSL_CTX *ctx;
};

struct hm_dns_tls_conn {
	SSL *ssl;
};

/* The first queued OpenSSL error as text (and the queue emptied). */
static void last_error(char *out, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e)
		ERR_error_string_n(e, out, len);
	else
		snprintf(out, len, "unknown error");
	ERR_clear_error();
}

struct hm_dns_tls *hm_dns_tls_new(const char *cert_file, const char *key_file, char *err,
				  size_t errlen)
{
	struct hm_dns_tls *t = calloc(1, sizeof(*t));
	char why[256];

	if (!t) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	t->ctx = SSL_CTX_new(TLS_server_method());
	if (!t->ctx || !SSL_CTX_set_min_proto_version(t->ctx, TLS1_2_VERSION)) {
		last_error(why, sizeof(why));
		snprintf(err, errlen, "TLS context: %s", why);
		goto fail;
	}
	/* Partial writes, and a write retried from a buffer that moved (the
	 * connection's output buffer grows with realloc). */
	SSL_CTX_set_mode(t->ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
				  SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	if (SSL_CTX_use_certificate_chain_file(t->ctx, cert_file) != 1) {
		last_error(why, sizeof(why));
		snprintf(err, errlen, "TLS certificate %s: %s", cert_file, why);
		goto fail;
	}
	if (SSL_CTX_use_PrivateKey_file(t->ctx, key_file, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_check_private_key(t->ctx) != 1) {
		last_error(why, sizeof(why));
		snprintf(err, errlen, "TLS key %s: %s", key_file, why);
		goto fail;
	}
	return t;
fail:
	hm_dns_tls_free(t);
	return NULL;
}

void hm_dns_tls_free(struct hm_dns_tls *t)
{
	if (!t)
		return;
	SSL_CTX_free(t->ctx);
	free(t);
}

struct hm_dns_tls_conn *hm_dns_tls_accept(struct hm_dns_tls *t, int fd)
{
	struct hm_dns_tls_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->ssl = SSL_new(t->ctx);
	if (!c->ssl || SSL_set_fd(c->ssl, fd) != 1) {
		hm_dns_tls_conn_free(c);
		return NULL;
	}
	SSL_set_accept_state(c->ssl);
	return c;
}

void hm_dns_tls_conn_free(struct hm_dns_tls_conn *c)
{
	if (!c)
		return;
	SSL_free(c->ssl); /* no close_notify: the socket is closed right after */
	free(c);
}

/* The outcome of one SSL_read/SSL_write that returned r <= 0. */
static ssize_t io_result(struct hm_dns_tls_conn *c, int r, bool *want_write)
{
	int e = SSL_get_error(c->ssl, r);

	*want_write = false;
	switch (e) {
	case SSL_ERROR_WANT_READ:
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_WANT_WRITE:
		*want_write = true;
		errno = EAGAIN;
		return -1;
	case SSL_ERROR_ZERO_RETURN: /* the peer's close_notify */
		return 0;
	default:
		ERR_clear_error();
		errno = EPROTO;
		return -1;
	}
}

ssize_t hm_dns_tls_read(struct hm_dns_tls_conn *c, void *buf, size_t len, bool *want_write)
{
	int r;

	ERR_clear_error();
	r = SSL_read(c->ssl, buf, len > (size_t)INT32_MAX ? INT32_MAX : (int)len);
	if (r > 0) {
		*want_write = false;
		return r;
	}
	return io_result(c, r, want_write);
}

ssize_t hm_dns_tls_write(struct hm_dns_tls_conn *c, const void *buf, size_t len, bool *want_write)
{
	int r;

	ERR_clear_error();
	r = SSL_write(c->ssl, buf, len > (size_t)INT32_MAX ? INT32_MAX : (int)len);
	if (r > 0) {
		*want_write = false;
		return r;
	}
	return io_result(c, r, want_write);
}

bool hm_dns_tls_pending(const struct hm_dns_tls_conn *c)
{
	return SSL_pending(c->ssl) > 0;
}

bool hm_dns_tls_established(const struct hm_dns_tls_conn *c)
{
	return SSL_is_init_finished(c->ssl);
}
