// SPDX-License-Identifier: MIT
/* Address prefixes (see netprefix.h). */
#include "common/netprefix.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int bad(char *err, size_t errlen, const char *text, const char *why)
{
	if (err && errlen)
		snprintf(err, errlen, "\"%.*s\" is not an address prefix: %s", HM_PREFIX_TEXT_MAX,
			 text, why);
	return -1;
}

/* Are all bits of addr from bit len on zero? */
static bool host_bits_zero(const uint8_t *addr, unsigned bytes, unsigned len)
{
	for (unsigned bit = len; bit < bytes * 8; bit++)
		if (addr[bit / 8] & (0x80u >> (bit % 8)))
			return false;
	return true;
}

int hm_prefix_parse(const char *text, struct hm_prefix *p, char *err, size_t errlen)
{
	char buf[HM_PREFIX_TEXT_MAX];
	char *slash, *end;
	unsigned max;
	long len;

	memset(p, 0, sizeof(*p));
	if (!text || strlen(text) >= sizeof(buf))
		return bad(err, errlen, text ? text : "", "too long");
	strcpy(buf, text);
	slash = strchr(buf, '/');
	if (slash)
		*slash = 0;
	if (inet_pton(AF_INET, buf, p->addr) == 1) {
		p->family = AF_INET;
		max = 32;
	} else if (inet_pton(AF_INET6, buf, p->addr) == 1) {
		p->family = AF_INET6;
		max = 128;
	} else {
		return bad(err, errlen, text, "expected an IPv4 or IPv6 address");
	}
	len = max;
	if (slash) {
		if (!slash[1] || slash[1] == '-' || slash[1] == '+')
			return bad(err, errlen, text, "expected a length after '/'");
		len = strtol(slash + 1, &end, 10);
		if (*end || len < 0 || len > (long)max)
			return bad(err, errlen, text, max == 32 ? "length must be 0..32" : "length must be 0..128");
	}
	p->len = (uint8_t)len;
	if (!host_bits_zero(p->addr, max / 8, p->len))
		return bad(err, errlen, text, "bits set after the prefix length");
	return 0;
}

bool hm_prefix_addr_of(const struct sockaddr *sa, uint8_t *family, uint8_t addr[16])
{
	static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

	memset(addr, 0, 16);
	if (sa->sa_family == AF_INET) {
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
		*family = AF_INET;
		return true;
	}
	if (sa->sa_family == AF_INET6) {
		const uint8_t *a = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;

		if (memcmp(a, mapped, sizeof(mapped)) == 0) {
			memcpy(addr, a + 12, 4);
			*family = AF_INET;
		} else {
			memcpy(addr, a, 16);
			*family = AF_INET6;
		}
		return true;
	}
	return false;
}

bool hm_prefix_match(const struct hm_prefix *p, const struct sockaddr *sa)
{
	uint8_t family, addr[16];
	unsigned full, rest;

	if (!hm_prefix_addr_of(sa, &family, addr) || family != p->family)
		return false;
	full = p->len / 8;
	rest = p->len % 8;
	if (memcmp(addr, p->addr, full) != 0)
		return false;
	return !rest || ((addr[full] ^ p->addr[full]) & (uint8_t)(0xff00u >> rest)) == 0;
}

bool hm_prefix_match_any(const struct hm_prefix *list, size_t n, const struct sockaddr *sa)
{
	for (size_t i = 0; i < n; i++)
		if (hm_prefix_match(&list[i], sa))
			return true;
	return false;
}

void hm_prefix_format(const struct hm_prefix *p, char *buf, size_t len)
{
	char a[INET6_ADDRSTRLEN] = "?";

	inet_ntop(p->family, p->addr, a, sizeof(a));
	snprintf(buf, len, "%s/%u", a, p->len);
}
