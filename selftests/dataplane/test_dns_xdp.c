// SPDX-License-Identifier: MIT
/*
 * kern/hm_dns.bpf.c, the XDP DNS responder, through BPF_PROG_TEST_RUN:
 *
 * - differential: every answer of the corpus (dns_xdp_test.h: every record
 *   type of the test zones and more, CNAME chains, a wildcard, NXDOMAIN with
 *   NSEC and NSEC3 proofs, NODATA, answers over 512 and over 1232 bytes, the
 *   root, a 255-byte name) installed by hm_dns_xdp_install, queried with and
 *   without EDNS, with DO, CD, AD and RD, small and large buffers, in mixed
 *   case, over IPv4 and IPv6; the XDP answer must be the bytes the userspace
 *   front end sends (hm_dns_reply_build), with addresses, ports and
 *   checksums right;
 * - the TTL counts down to the moment of the answer; expired entries, misses
 *   and every kind of query we do not answer pass unchanged and are counted;
 * - RRL: drop and slip per client prefix;
 * - fuzz: random and mutated queries against the userspace parser (the
 *   count from HM_DNS_XDP_FUZZ, default 100000; scripts/fuzz.sh runs a
 *   million and more): whatever XDP answers, userspace parses as the same
 *   question and answers with the same bytes; whatever it passes is
 *   unchanged;
 * - the program's time per answer (kernel-measured, BPF_PROG_TEST_RUN).
 *
 * Needs root (loading BPF); without it the cases fail, they do not skip.
 */
#include <stdlib.h>

#include "dns_xdp_test.h"
#include "hm_test.h"
#include "dataplane/dns_xdp.h"

static struct hm_dns_bpf *skel;
static struct hm_dns_entry entries[CORPUS_N];
static bool corpus_ready;

static bool setup(uint32_t rrl_rate, uint32_t burst, uint32_t slip, int64_t expiry_in,
		  uint32_t ttl)
{
	struct hm_dns_xdp_sync_stats st = { 0 };
	char why[256];

	if (skel)
		hm_dns_bpf__destroy(skel);
	skel = dns_xdp_load(why, sizeof(why));
	if (!skel) {
		HM_FAIL("hm_dns: %s", why);
		return false;
	}
	if (!ASSERT_OK(dns_xdp_configure(skel, rrl_rate, burst, slip), "config"))
		return false;
	for (size_t i = 0; i < CORPUS_N; i++) {
		if (corpus_ready)
			free((void *)entries[i].canon);
		if (corpus_entry(&corpus[i], wall_now() + expiry_in, ttl, &entries[i]) < 0) {
			HM_FAIL("corpus entry %s does not build", corpus[i].what);
			return false;
		}
		hm_dns_xdp_install(bpf_map__fd(skel->maps.hm_dns_answers), &entries[i], &st);
	}
	corpus_ready = true;
	ASSERT_EQ(st.installed, 2 * CORPUS_N, "every corpus answer installed in both DO variants");
	ASSERT_EQ(st.errors, 0, "map errors");
	return st.installed == 2 * CORPUS_N;
}

static int prog_fd(void)
{
	return bpf_program__fd(skel->progs.hm_dns_xdp);
}

/* Query spec for corpus entry i, variant v (all combinations we care for). */
static struct qspec spec_for(size_t i, unsigned v)
{
	static const uint16_t sizes[] = { 0, 512, 1232, 4096, 700, 100 };
	struct qspec s = { .name = corpus[i].name, .type = corpus[i].type };

	s.edns_size = sizes[v % 6];
	s.do_bit = s.edns_size && (v / 6) % 2;
	s.mixed_case = (v / 12) % 2;
	s.v6 = (v / 24) % 2;
	s.rd = (v / 48) % 2;
	s.cd = (v / 96) % 2;
	s.ad = (v / 192) % 2;
	s.padding = (v / 384) % 2 ? (uint16_t)(1 + (i * 37 + v) % 468) : 0;
	s.id = (uint16_t)(0x1234 + i * 977 + v);
	return s;
}
#define VARIANTS 768

/* Frame out is the answer to frame in: addresses and ports swapped. */
static bool swapped(const uint8_t *in, const uint8_t *out, bool v6)
{
	size_t l3 = 14, alen = v6 ? 16 : 4, sa = l3 + (v6 ? 8 : 12), l4 = l3 + (v6 ? 40 : 20);

	return memcmp(out, in + 6, 6) == 0 && memcmp(out + 6, in, 6) == 0 &&
	       memcmp(out + sa, in + sa + alen, alen) == 0 && memcmp(out + sa + alen, in + sa, alen) == 0 &&
	       memcmp(out + l4, in + l4 + 2, 2) == 0 && memcmp(out + l4 + 2, in + l4, 2) == 0;
}

/* One query through XDP and through userspace: same answer? */
static bool compare_one(const struct qspec *s, const struct hm_dns_entry *e, uint32_t ttl,
			bool *tc)
{
	static uint8_t dns[1024], in[FRAME_MAX], out[FRAME_MAX], want[65535];
	size_t dlen = query_wire(s, dns, sizeof(dns)), flen, olen = 0, wlen;
	size_t l4 = 14 + (s->v6 ? 40 : 20);
	char what[200];
	int verdict;

	snprintf(what, sizeof(what), "%s type %u edns %u do %d case %d v6 %d rd %d cd %d ad %d pad %u",
		 s->name, s->type, s->edns_size, s->do_bit, s->mixed_case, s->v6, s->rd, s->cd, s->ad,
		 s->padding);
	if (!ASSERT_TRUE(dlen > 0, what))
		return false;
	flen = frame_build(s->v6, 9, dns, dlen, in);
	wlen = userspace_answer(dns, dlen, e, ttl, want, sizeof(want));
	verdict = run_frame(prog_fd(), in, flen, out, &olen, NULL);
	if (!ASSERT_EQ(verdict, XDP_TX, what) || !ASSERT_TRUE(wlen > 0, what))
		return false;
	if (!ASSERT_TRUE(swapped(in, out, s->v6), what) ||
	    !ASSERT_TRUE(frame_csums_ok(out, olen), what) || !ASSERT_EQ(olen - l4 - 8, wlen, what))
		return false;
	if (memcmp(out + l4 + 8, want, wlen) != 0) {
		HM_FAIL("%s: XDP and userspace answers differ", what);
		for (size_t i = 0; i < wlen; i++)
			if (out[l4 + 8 + i] != want[i]) {
				fprintf(stderr, "  first difference at byte %zu: %02x vs %02x\n", i,
					out[l4 + 8 + i], want[i]);
				break;
			}
		return false;
	}
	*tc = want[2] & 0x02;
	return true;
}

HM_TEST(differential)
{
	struct hm_dns_xdp_stats st;
	unsigned answered = 0, tcs = 0, failed = 0;

	if (!setup(0, 0, 0, 100000, 300))
		return;
	for (size_t i = 0; i < CORPUS_N && failed < 5; i++)
		for (unsigned v = 0; v < VARIANTS && failed < 5; v++) {
			struct qspec s = spec_for(i, v);
			bool tc = false;

			if (!compare_one(&s, &entries[i], 300, &tc)) {
				failed++;
				continue;
			}
			answered++;
			tcs += tc;
		}
	ASSERT_EQ(answered, CORPUS_N * VARIANTS, "every variant answered identically");
	dns_xdp_stats(skel, &st);
	ASSERT_EQ(st.hit, answered, "hit counter");
	ASSERT_EQ(st.tc, tcs, "tc counter");
	ASSERT_TRUE(tcs > 0 && tcs < answered, "some answers truncated, most not");
	ASSERT_EQ(st.miss + st.pass + st.expired + st.grow_failed, 0, "nothing else counted");
	printf("     %u answers compared, %u of them TC\n", answered, tcs);
}

/* The TTL in the first answer record of a DNS answer. */
static uint32_t first_ttl(const uint8_t *dns, size_t len)
{
	size_t pos = 12;

	while (pos < len && dns[pos])
		pos += 1u + dns[pos];
	pos += 5; /* root, type, class */
	if (pos + 2 <= len && (dns[pos] & 0xc0) == 0xc0)
		pos += 2;
	else
		while (pos < len && dns[pos])
			pos += 1u + dns[pos] + (dns[pos] == 0);
	return pos + 8 <= len ? (uint32_t)dns[pos + 4] << 24 | dns[pos + 5] << 16 | dns[pos + 6] << 8 |
					 dns[pos + 7]
			      : 0;
}

HM_TEST(ttl_counts_down)
{
	static uint8_t dns[512], in[FRAME_MAX], out[FRAME_MAX], want[65535];
	struct qspec s = spec_for(0, 2); /* www A, EDNS 1232 */
	size_t dlen, flen, olen = 0, wlen;
	uint32_t ttl;

	/* Decided TTL 300, 100 seconds left: the answer says 100 (or 99 when a
	 * second turns meanwhile), and is then what userspace sends with it. */
	if (!setup(0, 0, 0, 100, 300))
		return;
	dlen = query_wire(&s, dns, sizeof(dns));
	flen = frame_build(false, 9, dns, dlen, in);
	ASSERT_EQ(run_frame(prog_fd(), in, flen, out, &olen, NULL), XDP_TX, "answered");
	ttl = first_ttl(out + 42, olen - 42);
	ASSERT_TRUE(ttl == 100 || ttl == 99, "served TTL is the time left");
	wlen = userspace_answer(dns, dlen, &entries[0], ttl, want, sizeof(want));
	ASSERT_EQ(olen - 42, wlen, "length");
	ASSERT_MEMEQ(out + 42, want, wlen, "same bytes as userspace with that TTL");
	ASSERT_TRUE(frame_csums_ok(out, olen), "checksums");
}

static void expect_pass(const uint8_t *dns, size_t dlen, bool v6, const char *what)
{
	static uint8_t in[FRAME_MAX], out[FRAME_MAX];
	size_t flen = frame_build(v6, 9, dns, dlen, in), olen = 0;

	ASSERT_EQ(run_frame(prog_fd(), in, flen, out, &olen, NULL), XDP_PASS, what);
	ASSERT_TRUE(olen == flen && memcmp(in, out, flen) == 0, what);
}

HM_TEST(expired_and_missing_pass)
{
	static uint8_t dns[512];
	struct hm_dns_xdp_stats st;
	struct qspec s = spec_for(0, 2);
	size_t dlen;

	if (!setup(0, 0, 0, -1, 300))
		return;
	dlen = query_wire(&s, dns, sizeof(dns));
	expect_pass(dns, dlen, false, "expired entry passes");
	s.name = "not-there.signed.hmtest.";
	dlen = query_wire(&s, dns, sizeof(dns));
	expect_pass(dns, dlen, true, "missing entry passes");
	s.name = "www.signed.hmtest.";
	s.type = LDNS_RR_TYPE_MX;
	dlen = query_wire(&s, dns, sizeof(dns));
	expect_pass(dns, dlen, false, "another type passes");
	dns_xdp_stats(skel, &st);
	ASSERT_EQ(st.expired, 1, "expired counted");
	ASSERT_EQ(st.miss, 2, "misses counted");
	ASSERT_EQ(st.hit, 0, "no hit");
}

HM_TEST(unhandled_queries_pass)
{
	static uint8_t dns[512], base[512], in[FRAME_MAX], out[FRAME_MAX];
	struct qspec s = spec_for(0, 2); /* www A, EDNS 1232, an entry exists */
	struct hm_dns_xdp_stats st;
	size_t blen, olen = 0, flen;
	unsigned cases = 0;

	if (!setup(0, 0, 0, 100000, 300))
		return;
	blen = query_wire(&s, base, sizeof(base));
	/* Sanity: the unmodified query is answered. */
	flen = frame_build(false, 9, base, blen, in);
	ASSERT_EQ(run_frame(prog_fd(), in, flen, out, &olen, NULL), XDP_TX, "base query answered");
#define VARIANT(desc, ...)                                    \
	do {                                                   \
		size_t dlen = blen;                            \
		memcpy(dns, base, blen);                       \
		__VA_ARGS__;                                   \
		expect_pass(dns, dlen, cases & 1, desc);       \
		cases++;                                       \
	} while (0)
	VARIANT("a response (QR)", dns[2] |= 0x80);
	VARIANT("opcode NOTIFY", dns[2] |= 4 << 3);
	VARIANT("two questions", dns[5] = 2);
	VARIANT("an answer record", dns[7] = 1);
	VARIANT("an authority record", dns[9] = 1);
	VARIANT("two additional records", dns[11] = 2);
	VARIANT("EDNS version 1", dns[dlen - 5] = 1);
	VARIANT("a cookie option", {
		dns[dlen - 1] = 12;
		memcpy(dns + dlen, "\0\12\0\10abcdefgh", 12);
		dlen += 12;
	});
	VARIANT("padding, then a cookie", {
		dns[dlen - 1] = 16;
		memcpy(dns + dlen, "\0\14\0\0\0\12\0\10abcdefgh", 16);
		dlen += 16;
	});
	VARIANT("OPT length beyond the message", dns[dlen - 1] = 4);
	VARIANT("OPT owner not root", dns[dlen - 11] = 1);
	VARIANT("additional not OPT", dns[dlen - 9] = 1);
	VARIANT("a trailing byte", dns[dlen++] = 0);
	VARIANT("cut in the question", dlen -= 14);
	VARIANT("header only", dlen = 12);
	VARIANT("short header", dlen = 7);
	VARIANT("a compression pointer as name", { dns[12] = 0xc0; dns[13] = 12; });
	VARIANT("label type 0x40", dns[12] = 0x43);
	dns_xdp_stats(skel, &st);
	ASSERT_EQ(st.pass, cases, "every one counted as pass");
	ASSERT_EQ(st.hit, 1, "only the base query answered");
#undef VARIANT
}

/* Frames that are not DNS queries to our port at all, or carry IP options,
 * fragments or a VLAN tag: pass unchanged. */
HM_TEST(unhandled_frames_pass)
{
	static uint8_t dns[512], in[FRAME_MAX], f[FRAME_MAX], out[FRAME_MAX];
	struct qspec s = spec_for(0, 2);
	struct hm_dns_xdp_stats st;
	size_t dlen, flen, olen = 0;

	if (!setup(0, 0, 0, 100000, 300))
		return;
	dlen = query_wire(&s, dns, sizeof(dns));
	flen = frame_build(false, 9, dns, dlen, in);
	memcpy(f, in, flen);
	f[36] = 0x12; /* another destination port */
	ASSERT_EQ(run_frame(prog_fd(), f, flen, out, &olen, NULL), XDP_PASS, "other port");
	memcpy(f, in, flen);
	f[14 + 6] = 0x20; /* more fragments */
	ASSERT_EQ(run_frame(prog_fd(), f, flen, out, &olen, NULL), XDP_PASS, "a fragment");
	memcpy(f, in, flen);
	f[14] = 0x46; /* IHL 6: options */
	ASSERT_EQ(run_frame(prog_fd(), f, flen, out, &olen, NULL), XDP_PASS, "IP options");
	memcpy(f, in, flen);
	f[38] ^= 1; /* UDP length disagrees with IP */
	ASSERT_EQ(run_frame(prog_fd(), f, flen, out, &olen, NULL), XDP_PASS, "UDP length");
	memcpy(f, in, 12);
	f[12] = 0x81; f[13] = 0; f[14] = 0; f[15] = 7; /* 802.1Q */
	memcpy(f + 16, in + 12, flen - 12);
	ASSERT_EQ(run_frame(prog_fd(), f, flen + 4, out, &olen, NULL), XDP_PASS, "VLAN tag");
	dns_xdp_stats(skel, &st);
	ASSERT_EQ(st.hit, 0, "none answered");
	ASSERT_EQ(st.pass, 1, "only the UDP length case was to our port");
}

HM_TEST(rrl_drops_and_slips_per_prefix)
{
	static uint8_t dns[512], in[FRAME_MAX], out[FRAME_MAX];
	struct qspec s = spec_for(0, 2);
	struct hm_dns_xdp_stats st;
	size_t dlen, flen, olen = 0;
	int verdicts[12];
	unsigned tx = 0, drop = 0, tc = 0;

	/* 1 answer a second, burst 3, every 2nd limited answer slips. */
	if (!setup(1, 3, 2, 100000, 300))
		return;
	dlen = query_wire(&s, dns, sizeof(dns));
	for (int i = 0; i < 12; i++) {
		flen = frame_build(false, (uint8_t)(10 + i), dns, dlen, in); /* one /24 */
		verdicts[i] = run_frame(prog_fd(), in, flen, out, &olen, NULL);
		if (verdicts[i] == XDP_TX) {
			tx++;
			tc += (out[42 + 2] & 0x02) != 0;
		}
		drop += verdicts[i] == XDP_DROP;
	}
	/* The burst, maybe one refill under a slow machine, then alternating. */
	ASSERT_TRUE(verdicts[0] == XDP_TX && verdicts[1] == XDP_TX && verdicts[2] == XDP_TX, "burst");
	ASSERT_GE(drop, 4, "over the rate: dropped");
	ASSERT_GE(tc, 4, "over the rate: every 2nd slips as TC");
	ASSERT_EQ(tx + drop, 12, "nothing passed");
	/* Another /24 and an IPv6 client have their own buckets. */
	flen = frame_build(false, 9, dns, dlen, in);
	in[14 + 14] = 8; /* 198.18.8.9 */
	ASSERT_EQ(run_frame(prog_fd(), in, flen, out, &olen, NULL), XDP_TX, "another prefix");
	ASSERT_EQ(out[44] & 0x02, 0, "answered in full");
	flen = frame_build(true, 9, dns, dlen, in);
	ASSERT_EQ(run_frame(prog_fd(), in, flen, out, &olen, NULL), XDP_TX, "an IPv6 client");
	dns_xdp_stats(skel, &st);
	ASSERT_EQ(st.rrl_dropped, drop, "rrl_dropped counted");
	ASSERT_EQ(st.rrl_slipped, tc - 0, "rrl_slipped counted");
}

/* dns.allow reaches XDP: a client outside it is not answered here but
 * passed up (the front end refuses it), inside it is; IPv4 prefixes as
 * IPv4-mapped, IPv6 as they are; an empty list answers nobody. */
HM_TEST(allow_list_in_xdp)
{
	static uint8_t dns[512], in[FRAME_MAX], out[FRAME_MAX];
	struct qspec s = spec_for(0, 2);
	struct hm_prefix allow[2];
	struct hm_dns_xdp_stats st;
	size_t dlen, flen, olen = 0;
	int fd;

	if (!setup(0, 0, 0, 100000, 300))
		return;
	fd = bpf_map__fd(skel->maps.hm_dns_allow);
	ASSERT_OK(hm_prefix_parse("198.18.7.0/24", &allow[0], NULL, 0), "v4 prefix");
	ASSERT_OK(hm_prefix_parse("2001:db8::/120", &allow[1], NULL, 0), "v6 prefix");
	ASSERT_OK(hm_dns_xdp_set_allow(fd, allow, 2), "set");
	dlen = query_wire(&s, dns, sizeof(dns));
	flen = frame_build(false, 9, dns, dlen, in); /* 198.18.7.9 */
	ASSERT_EQ(run_frame(prog_fd(), in, flen, out, &olen, NULL), XDP_TX, "inside the v4 prefix");
	in[14 + 14] = 8; /* 198.18.8.9 */
	ASSERT_EQ(run_frame(prog_fd(), in, flen, out, &olen, NULL), XDP_PASS, "outside: passed up");
	flen = frame_build(true, 9, dns, dlen, in); /* 2001:db8::9 */
	ASSERT_EQ(run_frame(prog_fd(), in, flen, out, &olen, NULL), XDP_TX, "inside the v6 prefix");
	in[14 + 8 + 14] = 1; /* 2001:db8::109 */
	ASSERT_EQ(run_frame(prog_fd(), in, flen, out, &olen, NULL), XDP_PASS, "v6 outside");
	ASSERT_OK(hm_dns_xdp_set_allow(fd, NULL, 0), "an empty list");
	flen = frame_build(false, 9, dns, dlen, in);
	ASSERT_EQ(run_frame(prog_fd(), in, flen, out, &olen, NULL), XDP_PASS, "nobody answered");
	dns_xdp_stats(skel, &st);
	ASSERT_EQ(st.not_allowed, 3, "not_allowed counted");
	ASSERT_EQ(st.hit, 2, "two answered");
}

/* ---- fuzz ---------------------------------------------------------------------- */

static const struct hm_dns_entry *entry_for(const struct hm_dns_query *q)
{
	uint8_t lower[256];

	for (size_t i = 0; i < q->qname_len; i++)
		lower[i] = (q->qname[i] >= 'A' && q->qname[i] <= 'Z') ? q->qname[i] + 32 : q->qname[i];
	for (size_t i = 0; i < CORPUS_N; i++)
		if (entries[i].q.qname_len == q->qname_len && entries[i].q.qtype == q->qtype &&
		    entries[i].q.qclass == q->qclass && memcmp(entries[i].q.qname, lower, q->qname_len) == 0)
			return &entries[i];
	return NULL;
}

static size_t mutate(uint8_t *d, size_t len, size_t cap, uint64_t *rng)
{
	unsigned n = 1 + hm_test_rand(rng) % 4;

	for (unsigned k = 0; k < n; k++) {
		uint64_t r = hm_test_rand(rng);
		size_t at = len ? (r >> 8) % len : 0;

		switch (r % 8) {
		case 0: if (len) d[at] ^= (uint8_t)(1u << ((r >> 40) % 8)); break;
		case 1: if (len) d[at] = (uint8_t)(r >> 32); break;
		case 2: if (len) len = at; break;                              /* cut */
		case 3: if (len < cap) d[len++] = (uint8_t)(r >> 32); break;  /* append */
		case 4: if (len > 12) { memmove(d + at, d + at + 1, len - at - 1); len--; } break;
		case 5: if (len && len < cap) { memmove(d + at + 1, d + at, len - at); d[at] = (uint8_t)(r >> 24); len++; } break;
		case 6: if (len > 3) d[2 + (r >> 40) % 2] = (uint8_t)(r >> 16); break; /* flags */
		case 7: if (len > 11) d[4 + (r >> 40) % 8] = (uint8_t)((r >> 16) % 3); break; /* counts */
		}
	}
	return len;
}

HM_TEST(fuzz_against_userspace_parser)
{
	static uint8_t dns[1024], in[FRAME_MAX], out[FRAME_MAX], want[65535];
	const char *env = getenv("HM_DNS_XDP_FUZZ");
	uint64_t n = env ? strtoull(env, NULL, 10) : 100000, seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
	uint64_t rng = seed, hits = 0, passes = 0, bad = 0;

	if (!setup(0, 0, 0, 100000, 300))
		return;
	for (uint64_t it = 0; it < n && bad < 5; it++) {
		uint64_t r = hm_test_rand(&rng);
		struct qspec s = spec_for(r % CORPUS_N, (unsigned)((r >> 8) % VARIANTS));
		size_t dlen, flen, olen = 0, wlen;
		struct hm_dns_query q;
		int verdict;

		s.id = (uint16_t)(r >> 32);
		if ((r >> 20) % 16 == 0) { /* entirely random */
			dlen = (r >> 24) % 300;
			for (size_t i = 0; i < dlen; i++)
				dns[i] = (uint8_t)hm_test_rand(&rng);
		} else {
			dlen = query_wire(&s, dns, sizeof(dns));
			if ((r >> 20) % 16 > 2)
				dlen = mutate(dns, dlen, sizeof(dns), &rng);
		}
		flen = frame_build(s.v6, (uint8_t)r, dns, dlen, in);
		verdict = run_frame(prog_fd(), in, flen, out, &olen, NULL);
		if (verdict == XDP_PASS) {
			passes++;
			if (olen != flen || memcmp(in, out, flen) != 0) {
				HM_FAIL("seed %#llx iteration %llu: passed frame changed",
					(unsigned long long)seed, (unsigned long long)it);
				bad++;
			}
			continue;
		}
		if (verdict != XDP_TX) {
			HM_FAIL("seed %#llx iteration %llu: verdict %d", (unsigned long long)seed,
				(unsigned long long)it, verdict);
			bad++;
			continue;
		}
		hits++;
		/* XDP answered: userspace must take the same query from the
		 * cache and send the same bytes. */
		if (hm_dns_query_parse(dns, dlen, &q) != HM_DNS_PARSE_OK || !entry_for(&q)) {
			HM_FAIL("seed %#llx iteration %llu: XDP answered a query userspace does not "
				"answer from the cache", (unsigned long long)seed, (unsigned long long)it);
			bad++;
			continue;
		}
		wlen = userspace_answer(dns, dlen, entry_for(&q), 300, want, sizeof(want));
		if (!wlen || olen != flen - dlen + wlen || memcmp(out + (flen - dlen), want, wlen) != 0 ||
		    !frame_csums_ok(out, olen)) {
			HM_FAIL("seed %#llx iteration %llu: answers differ", (unsigned long long)seed,
				(unsigned long long)it);
			bad++;
		}
	}
	printf("     %llu queries: %llu answered by XDP (all as userspace would), %llu passed\n",
	       (unsigned long long)n, (unsigned long long)hits, (unsigned long long)passes);
	ASSERT_EQ(bad, 0, "no disagreement");
	ASSERT_GE(hits, n / 20, "the mutations keep a share of answerable queries");
	ASSERT_GE(passes, n / 5, "and a share of unanswerable ones");
}

/* The program's own time per answer, as the kernel measures it. */
HM_TEST(time_per_answer)
{
	static uint8_t dns[512], in[FRAME_MAX], out[FRAME_MAX];
	struct qspec s = spec_for(0, 2 + 6 + 12); /* www A, EDNS 1232, DO, mixed case */
	size_t dlen, flen, olen = 0;
	uint64_t total = 0;
	const unsigned runs = 20000;

	if (!setup(0, 0, 0, 100000, 300))
		return;
	dlen = query_wire(&s, dns, sizeof(dns));
	flen = frame_build(false, 9, dns, dlen, in);
	for (unsigned i = 0; i < runs; i++) {
		uint32_t d = 0;

		if (run_frame(prog_fd(), in, flen, out, &olen, &d) != XDP_TX) {
			HM_FAIL("run %u not answered", i);
			return;
		}
		total += d;
	}
	printf("     %.0f ns per answer (A with RRSIG, DO, %zu bytes; mean of %u runs)\n",
	       (double)total / runs, olen, runs);
	/* The target is 1 us; the bound here leaves room for a loaded machine. */
	ASSERT_LE(total / runs, 5000, "time per answer");
}
