// SPDX-License-Identifier: MIT
/*
 * Address prefixes (user/common/netprefix.c): parsing (IPv4, IPv6, host
 * addresses, errors named), matching (lengths on and off byte boundaries,
 * IPv4-mapped IPv6 clients, other families), and random text never
 * crashing the parser.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "common/netprefix.h"
#include "hm_test.h"

static struct sockaddr_storage v4(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in *s = (struct sockaddr_in *)&ss;

	s->sin_family = AF_INET;
	inet_pton(AF_INET, a, &s->sin_addr);
	return ss;
}

static struct sockaddr_storage v6(const char *a)
{
	struct sockaddr_storage ss = { 0 };
	struct sockaddr_in6 *s = (struct sockaddr_in6 *)&ss;

	s->sin6_family = AF_INET6;
	inet_pton(AF_INET6, a, &s->sin6_addr);
	return ss;
}

static bool in(const char *prefix, struct sockaddr_storage ss)
{
	struct hm_prefix p;

	if (hm_prefix_parse(prefix, &p, NULL, 0) < 0)
		return false;
	return hm_prefix_match(&p, (struct sockaddr *)&ss);
}

HM_TEST(parse_good_and_bad)
{
	struct hm_prefix p;
	char err[160], text[HM_PREFIX_TEXT_MAX];

	ASSERT_OK(hm_prefix_parse("198.18.0.0/15", &p, err, sizeof(err)), "IPv4 prefix");
	ASSERT_EQ(p.family, AF_INET, "family");
	ASSERT_EQ(p.len, 15, "length");
	hm_prefix_format(&p, text, sizeof(text));
	ASSERT_STRCONTAINS(text, "198.18.0.0/15", "formatted back");
	ASSERT_OK(hm_prefix_parse("10.1.2.3", &p, err, sizeof(err)), "a host");
	ASSERT_EQ(p.len, 32, "host: /32");
	ASSERT_OK(hm_prefix_parse("::1", &p, err, sizeof(err)), "IPv6 host");
	ASSERT_EQ(p.len, 128, "host: /128");
	ASSERT_OK(hm_prefix_parse("2001:db8::/32", &p, err, sizeof(err)), "IPv6 prefix");
	ASSERT_OK(hm_prefix_parse("0.0.0.0/0", &p, err, sizeof(err)), "everything (explicit)");
	ASSERT_ERR(hm_prefix_parse("198.18.0.1/15", &p, err, sizeof(err)), "host bits set");
	ASSERT_STRCONTAINS(err, "bits set", "says why");
	ASSERT_ERR(hm_prefix_parse("198.18.0.0/33", &p, err, sizeof(err)), "length too long");
	ASSERT_ERR(hm_prefix_parse("::/129", &p, err, sizeof(err)), "IPv6 length too long");
	ASSERT_ERR(hm_prefix_parse("198.18.0.0/", &p, err, sizeof(err)), "no length");
	ASSERT_ERR(hm_prefix_parse("198.18.0.0/-1", &p, err, sizeof(err)), "negative");
	ASSERT_ERR(hm_prefix_parse("198.18.0.0/1x", &p, err, sizeof(err)), "junk after length");
	ASSERT_ERR(hm_prefix_parse("localhost", &p, err, sizeof(err)), "a name");
	ASSERT_STRCONTAINS(err, "IPv4 or IPv6", "says what it expected");
	ASSERT_ERR(hm_prefix_parse("", &p, err, sizeof(err)), "empty");
	ASSERT_ERR(hm_prefix_parse("1111111111111111111111111111111111111111111111111111111111111111111",
				   &p, err, sizeof(err)), "too long");
	ASSERT_ERR(hm_prefix_parse(NULL, &p, err, sizeof(err)), "NULL");
}

HM_TEST(matching)
{
	ASSERT_TRUE(in("198.18.0.0/15", v4("198.19.255.255")), "inside /15");
	ASSERT_FALSE(in("198.18.0.0/15", v4("198.20.0.0")), "just outside");
	ASSERT_TRUE(in("127.0.0.0/8", v4("127.9.9.9")), "loopback");
	ASSERT_FALSE(in("127.0.0.0/8", v6("::1")), "IPv4 prefix, IPv6 client");
	ASSERT_TRUE(in("::1", v6("::1")), "IPv6 host");
	ASSERT_FALSE(in("::1", v6("::2")), "another host");
	ASSERT_TRUE(in("2001:db8::/33", v6("2001:db8:7fff::1")), "/33 inside");
	ASSERT_FALSE(in("2001:db8::/33", v6("2001:db8:8000::1")), "/33 outside");
	ASSERT_TRUE(in("198.18.0.0/15", v6("::ffff:198.18.3.4")), "IPv4-mapped client");
	ASSERT_FALSE(in("::/0", v6("::ffff:198.18.3.4")), "a mapped client is IPv4");
	ASSERT_TRUE(in("0.0.0.0/0", v4("203.0.113.9")), "/0 matches all of IPv4");
	{
		struct sockaddr_storage un = { .ss_family = AF_UNIX };
		struct hm_prefix p;

		hm_prefix_parse("0.0.0.0/0", &p, NULL, 0);
		ASSERT_FALSE(hm_prefix_match(&p, (struct sockaddr *)&un), "not an IP address");
	}
}

HM_TEST(random_text_never_crashes)
{
	static const char alphabet[] = "0123456789abcdef:./x-";
	uint64_t st = 0x5eed;
	struct hm_prefix p;
	char text[80], err[160];
	unsigned ok = 0;

	for (int i = 0; i < 50000; i++) {
		size_t n = hm_test_rand(&st) % (sizeof(text) - 1);

		for (size_t k = 0; k < n; k++)
			text[k] = alphabet[hm_test_rand(&st) % (sizeof(alphabet) - 1)];
		text[n] = 0;
		if (hm_prefix_parse(text, &p, err, sizeof(err)) == 0) {
			ok++;
			if (!ASSERT_TRUE(p.len <= (p.family == AF_INET ? 32 : 128), "length in range"))
				break;
		}
	}
	printf("  %u of 50000 random strings were prefixes\n", ok);
}

