/* SPDX-License-Identifier: MIT */
/*
 * Address prefixes ("198.18.0.0/15", "2001:db8::/32", "::1", "10.1.2.3"):
 * parsing and matching a socket address against them.  Used by the DNS
 * access list (byzantine_config.dns.allow) and its per-client rate limits.
 * An IPv4-mapped IPv6 address (::ffff:a.b.c.d, what a dual-stack socket
 * reports for an IPv4 client) matches the IPv4 prefixes.
 */
#ifndef HM_NETPREFIX_H
#define HM_NETPREFIX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define HM_PREFIX_TEXT_MAX 64 /* longest accepted text, NUL included */

struct hm_prefix {
	uint8_t family;   /* AF_INET or AF_INET6 */
	uint8_t len;      /* prefix length in bits */
	uint8_t addr[16]; /* network address, host bits zero (first 4 bytes for IPv4) */
};

/* Parse "ADDR" or "ADDR/LEN".  Host bits set below the length are an
 * error (a typo such as 198.18.0.1/15 is refused rather than guessed).
 * 0, or -1 with a reason in err. */
int hm_prefix_parse(const char *text, struct hm_prefix *p, char *err, size_t errlen);

/* The client address of sa in family/bytes form (IPv4-mapped IPv6 taken as
 * IPv4).  false for other families. */
bool hm_prefix_addr_of(const struct sockaddr *sa, uint8_t *family, uint8_t addr[16]);

/* Does sa fall inside p? */
bool hm_prefix_match(const struct hm_prefix *p, const struct sockaddr *sa);
/* Inside any of list[0..n)? */
bool hm_prefix_match_any(const struct hm_prefix *list, size_t n, const struct sockaddr *sa);

/* "198.18.0.0/15" (buf of HM_PREFIX_TEXT_MAX). */
void hm_prefix_format(const struct hm_prefix *p, char *buf, size_t len);

#endif /* HM_NETPREFIX_H */
