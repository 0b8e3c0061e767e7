// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the DNS message code (user/service/dns/dns_msg.c) and the rule (a)
 * chain verifier (user/service/dns/dns_chain.c): every input is tried as a client query,
 * as an upstream reply to a fixed question, as a canonical answer, and as a
 * DNSSEC chain for a fixed secure canon.  Built and run by scripts/fuzz.sh (`make fuzz`) like
 * fuzz_wire.c; not a test binary.
 *
 * Invariants (abort() when broken, so the fuzzer reports them):
 *  - a query that parses gives a reply for every canon, within max_size;
 *    one that does not (but is not dropped) gets an error reply;
 *  - a canon built from any reply passes the strict checker, its digest is
 *    stable, and a reply built from it parses back with ldns;
 *  - whatever the checker accepts can be served, and its info is readable;
 *  - no chain is accepted for the fixed canon (nothing is signed by a key
 *    the fixed anchor names: a verdict of "ok" would be a forgery);
 *  - as an op of the DNS agreement service (dns_service.c): whatever
 *    check() admits executes without a malformed result, an OBSERVE_MANY
 *    without a malformed observation inside (a replica that admitted a
 *    batch must never find it malformed at execution).
 *
 * Built with -DHM_FUZZ_SEEDGEN instead, it writes a seed corpus (queries,
 * replies, canons) into the directory named on its command line.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>
#include <netinet/in.h>

#include "common/crypto.h"
#include "service/dns/dns_chain.h"
#include "common/netprefix.h"
#include "service/dns/dns_msg.h"
#include "service/dns/dns_service.h"

#define HM_FUZZ_NAME "fuzz_dns"
#define HM_FUZZ_SEED_PREFIX "seed-dns-"
#include "hm_fuzz.h"

static struct hm_dns_query fixed_q; /* www.example.org. A, EDNS 1232, DO */
static struct hm_dns_anchors *fixed_anchors;
static uint8_t *fixed_canon; /* a secure answer to fixed_q */
static size_t fixed_canon_len;

static bool reply_parses(const uint8_t *p, size_t n)
{
	ldns_pkt *pkt = NULL;
	bool ok = ldns_wire2pkt(&pkt, p, n) == LDNS_STATUS_OK;

	ldns_pkt_free(pkt);
	return ok;
}

static void serve_canon(const struct hm_dns_query *q, const uint8_t *canon, size_t len)
{
	static uint8_t out[65535];
	size_t n;

	n = hm_dns_reply_build(q, canon, len, 60, q->max_size, out, sizeof(out));
	/* A canon that the checker accepts always yields a reply (at worst
	 * the TC skeleton, which always fits 512 bytes). */
	CHECK(n >= 12 && n <= q->max_size);
	CHECK(reply_parses(out, n));
	CHECK(out[0] == (q->id >> 8) && out[1] == (q->id & 0xff));
}

static void as_query(const uint8_t *data, size_t size)
{
	static uint8_t out[4096];
	struct hm_dns_query q;
	enum hm_dns_parse_rc rc = hm_dns_query_parse(data, size, &q);
	size_t n;

	CHECK(rc <= HM_DNS_PARSE_REFUSED);
	if (rc == HM_DNS_PARSE_DROP)
		return;
	CHECK(size >= 12);
	n = hm_dns_error_reply(&q, rc == HM_DNS_PARSE_OK ? HM_DNS_SERVFAIL : HM_DNS_FORMERR,
			       HM_EDE_OTHER, "fuzz", out, sizeof(out));
	CHECK(n >= 12 && reply_parses(out, n));
	if (rc == HM_DNS_PARSE_OK) {
		CHECK(q.qname_len > 0 && strlen(q.name) > 0);
		CHECK(q.max_size >= HM_DNS_UDP_MIN && q.max_size <= HM_DNS_UDP_MAX);
	}
}

static void as_reply(const uint8_t *data, size_t size)
{
	uint8_t d1[HM_DIGEST_LEN], d2[HM_DIGEST_LEN];
	size_t len;
	uint8_t *canon = hm_dns_canon_from_reply(&fixed_q, data, size, size & 1, &len);

	(void)hm_dns_reply_min_ttl(data, size);
	if (!canon)
		return;
	CHECK(hm_dns_canon_check(canon, len) == 0);
	CHECK(hm_dns_canon_matches(canon, len, &fixed_q));
	hm_dns_canon_digest(canon, len, d1);
	hm_dns_canon_digest(canon, len, d2);
	CHECK(memcmp(d1, d2, sizeof(d1)) == 0);
	serve_canon(&fixed_q, canon, len);
	free(canon);
}

static void as_canon(const uint8_t *data, size_t size)
{
	struct hm_dns_canon_info info;
	char *text;

	if (hm_dns_canon_check(data, size) != 0) {
		CHECK(hm_dns_canon_info(data, size, &info) != 0);
		return;
	}
	CHECK(hm_dns_canon_info(data, size, &info) == 0);
	text = hm_dns_canon_to_text(data, size);
	CHECK(text != NULL);
	free(text);
	serve_canon(&fixed_q, data, size);
}

static void as_chain(const uint8_t *data, size_t size)
{
	char why[128];

	CHECK(hm_dns_chain_verify(fixed_anchors, fixed_canon, fixed_canon_len, data, size,
				  1780000000, why, sizeof(why)) != 0);
}

/* The service's clock for check(): the seeds' T (FUZZ_T). */
#define FUZZ_T 1780000000
static struct hm_service fixed_svc;

static int64_t fuzz_clock(void)
{
	return FUZZ_T;
}

static void as_service_op(const uint8_t *data, size_t size)
{
	static uint8_t out[HM_MAX_RESULT];
	struct hm_exec_ctx ctx = { .seq = 1, .client = HM_REPLICA_CLIENT_BASE + 1, .timestamp = 1 };
	bool admitted = fixed_svc.ops->check(fixed_svc.state, &ctx, data, size);
	size_t n = fixed_svc.ops->execute(fixed_svc.state, &ctx, data, size, out, sizeof(out));

	CHECK(n >= 1 && n <= sizeof(out));
	if (!admitted)
		return;
	CHECK(out[0] != HM_DNS_R_MALFORMED);
	if (out[0] == HM_DNS_R_MANY) {
		CHECK(n >= 3 && n == 3u + (size_t)(out[1] << 8 | out[2]));
		for (size_t i = 3; i < n; i++)
			CHECK(out[i] != HM_DNS_R_MALFORMED);
	}
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct hm_dns_service_config scfg = {
		.n = 4, .f = 1, .max_ttl = 300, .lookup_timeout_s = 30, .skew_s = 60,
		.wall_clock = fuzz_clock,
	};

	ldns_pkt *pkt = NULL;
	uint8_t *wire = NULL;
	size_t n = 0;

	(void)argc;
	(void)argv;
	if (hm_crypto_init() < 0 || hm_dns_service_new(&fixed_svc, &scfg) < 0)
		abort();
	if (ldns_pkt_query_new_frm_str(&pkt, "www.example.org.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
				       LDNS_RD) != LDNS_STATUS_OK)
		abort();
	ldns_pkt_set_edns_udp_size(pkt, 1232);
	ldns_pkt_set_edns_do(pkt, true);
	if (ldns_pkt2wire(&wire, pkt, &n) != LDNS_STATUS_OK ||
	    hm_dns_query_parse(wire, n, &fixed_q) != HM_DNS_PARSE_OK)
		abort();
	free(wire);
	ldns_pkt_free(pkt);
	{
		static const char *ds = "example.org. IN DS 12345 13 2 "
					"0000000000000000000000000000000000000000000000000000000000000000";
		ldns_pkt *r = NULL;
		ldns_rr *a = NULL, *sig = NULL;

		fixed_anchors = hm_dns_anchors_new(&ds, 1, NULL, NULL, 0);
		if (!fixed_anchors ||
		    ldns_pkt_query_new_frm_str(&r, "www.example.org.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
					       0) != LDNS_STATUS_OK ||
		    ldns_rr_new_frm_str(&a, "www.example.org. 60 IN A 192.0.2.1", 60, NULL, NULL) ||
		    ldns_rr_new_frm_str(&sig, "www.example.org. 60 IN RRSIG A 13 3 60 20300101000000 "
					      "20200101000000 12345 example.org. AAAA", 60, NULL, NULL))
			abort();
		ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, a);
		ldns_pkt_push_rr(r, LDNS_SECTION_ANSWER, sig);
		if (ldns_pkt2wire(&wire, r, &n) != LDNS_STATUS_OK)
			abort();
		fixed_canon = hm_dns_canon_from_reply(&fixed_q, wire, n, true, &fixed_canon_len);
		if (!fixed_canon)
			abort();
		free(wire);
		ldns_pkt_free(r);
	}
	CHECK(hm_dns_query_parse(NULL, 0, &(struct hm_dns_query){ 0 }) == HM_DNS_PARSE_DROP);
	CHECK(hm_dns_canon_check(NULL, 0) != 0);
	return 0;
}

/* The input as a dns.allow entry: parsed or refused, and a parsed prefix
 * has a length within its family and matches its own network address. */
static void as_prefix(const uint8_t *data, size_t size)
{
	char text[HM_PREFIX_TEXT_MAX + 8];
	struct sockaddr_storage ss = { 0 };
	struct hm_prefix p;
	char err[160];

	if (size >= sizeof(text))
		size = sizeof(text) - 1;
	memcpy(text, data, size);
	text[size] = 0;
	if (hm_prefix_parse(text, &p, err, sizeof(err)) < 0)
		return;
	if (p.family == AF_INET) {
		struct sockaddr_in *a = (struct sockaddr_in *)&ss;

		a->sin_family = AF_INET;
		memcpy(&a->sin_addr, p.addr, 4);
		if (p.len > 32)
			abort();
	} else {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;

		a->sin6_family = AF_INET6;
		memcpy(&a->sin6_addr, p.addr, 16);
		if (p.family != AF_INET6 || p.len > 128)
			abort();
	}
	/* An IPv4-mapped IPv6 prefix is the one exception: its own address
	 * is taken as IPv4 when it arrives. */
	if (!hm_prefix_match(&p, (struct sockaddr *)&ss) && p.family == AF_INET)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	as_prefix(data, size);
	as_query(data, size);
	as_reply(data, size);
	as_canon(data, size);
	as_chain(data, size);
	as_service_op(data, size);
	return 0;
}

/* ---- the seed corpus ------------------------------------------------------- */

#ifdef HM_FUZZ_SEEDGEN
/* An OBSERVE of this canon for www.example.org. A at FUZZ_T, alone and
 * twice in an OBSERVE_MANY. */
static void seed_observe(const char *name, const uint8_t *canon, size_t clen)
{
	static uint8_t op[8192], many[16384];
	struct hm_dns_q q;
	const uint8_t *ops[2] = { op, op };
	size_t lens[2], n;
	char sname[64];

	if (hm_dns_q_from_name(&q, (const uint8_t *)"\3www\7example\3org", 17, 1, 1) < 0)
		exit(1);
	n = hm_dns_observe_encode(&q, FUZZ_T, HM_DNS_OBS_ANSWER, 0, 60, canon, clen, NULL, 0, op,
				  sizeof(op));
	if (!n)
		exit(1);
	snprintf(sname, sizeof(sname), "observe-%s", name);
	write_seed(sname, op, n);
	lens[0] = lens[1] = n;
	n = hm_dns_observe_many_encode(ops, lens, 2, many, sizeof(many));
	snprintf(sname, sizeof(sname), "observe-many-%s", name);
	write_seed(sname, many, n);
}

/* A reply to www.example.org. A with the given records. */
static void seed_reply(const char *name, int rcode, const char **an, const char **ns)
{
	ldns_pkt *pkt = NULL;
	uint8_t *wire = NULL, *canon;
	size_t n = 0, clen;
	char cname[64];

	if (ldns_pkt_query_new_frm_str(&pkt, "www.example.org.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN,
				       0) != LDNS_STATUS_OK)
		exit(1);
	ldns_pkt_set_qr(pkt, true);
	ldns_pkt_set_rcode(pkt, (uint8_t)rcode);
	for (int s = 0; s < 2; s++)
		for (const char **l = s ? ns : an; l && *l; l++) {
			ldns_rr *rr = NULL;

			if (ldns_rr_new_frm_str(&rr, *l, 300, NULL, NULL) != LDNS_STATUS_OK)
				exit(1);
			ldns_pkt_push_rr(pkt, s ? LDNS_SECTION_AUTHORITY : LDNS_SECTION_ANSWER, rr);
		}
	if (ldns_pkt2wire(&wire, pkt, &n) != LDNS_STATUS_OK)
		exit(1);
	write_seed(name, wire, n);
	canon = hm_dns_canon_from_reply(&fixed_q, wire, n, true, &clen);
	if (!canon)
		exit(1);
	snprintf(cname, sizeof(cname), "canon-%s", name);
	write_seed(cname, canon, clen);
	seed_observe(name, canon, clen);
	free(canon);
	free(wire);
	ldns_pkt_free(pkt);
}

int main(int argc, char **argv)
{
	static const char *types[] = { "A", "AAAA", "TXT", "MX", "ANY", "AXFR", "DS", "DNSKEY" };
	static const char *an[] = {
		"www.example.org. IN A 192.0.2.1",
		"WWW.example.org. IN A 192.0.2.2",
		"www.example.org. IN RRSIG A 13 3 300 20300101000000 20200101000000 1 example.org. AAAA",
		NULL,
	};
	static const char *cn[] = {
		"www.example.org. IN CNAME web.Example.org.",
		"web.example.org. IN A 192.0.2.3",
		NULL,
	};
	static const char *nx[] = {
		"example.org. IN SOA ns.example.org. h.example.org. 1 2 3 4 60",
		"example.org. IN NS ns.example.org.",
		"a.example.org. IN NSEC z.example.org. A RRSIG NSEC",
		"x.example.org. IN NSEC3 1 0 1 ab 0p9mhaveqvm6t7vbl5lop2u3t2rp3tom A RRSIG",
		NULL,
	};
	ldns_pkt *pkt;
	uint8_t *wire;
	size_t n;
	char name[64];

	int rc = seed_begin(argc, argv);

	if (rc)
		return rc;
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
		for (int edns = 0; edns < 2; edns++) {
			pkt = NULL;
			wire = NULL;
			if (ldns_pkt_query_new_frm_str(&pkt, "Www.Example.org.",
						       ldns_get_rr_type_by_name(types[i]),
						       LDNS_RR_CLASS_IN, LDNS_RD) != LDNS_STATUS_OK)
				return 1;
			if (edns) {
				ldns_pkt_set_edns_udp_size(pkt, 4096);
				ldns_pkt_set_edns_do(pkt, true);
			}
			if (ldns_pkt2wire(&wire, pkt, &n) != LDNS_STATUS_OK)
				return 1;
			snprintf(name, sizeof(name), "query-%s-%d", types[i], edns);
			write_seed(name, wire, n);
			free(wire);
			ldns_pkt_free(pkt);
		}
	/* A chain-shaped seed: version, count, a DNSKEY and its RRSIG. */
	{
		static const char *rrs[] = {
			"example.org. IN DNSKEY 257 3 13 mdsswUyr3DPW132mOi8V9xESWE8jTo0dxCjjnopKl+GqJxpVXckHAeF+KkxLbxILfDLUT0rAK9iUzy1L53eKGQ==",
			"example.org. IN RRSIG DNSKEY 13 2 3600 20300101000000 20200101000000 12345 example.org. AAAA",
		};
		ldns_buffer *b = ldns_buffer_new(512);

		ldns_buffer_write_u8(b, 1);
		ldns_buffer_write_u16(b, 2);
		for (int i = 0; i < 2; i++) {
			ldns_rr *r = NULL;

			if (ldns_rr_new_frm_str(&r, rrs[i], 0, NULL, NULL) != LDNS_STATUS_OK)
				return 1;
			ldns_rr2buffer_wire(b, r, LDNS_SECTION_ANSWER);
			ldns_rr_free(r);
		}
		write_seed("chain", ldns_buffer_begin(b), ldns_buffer_position(b));
		ldns_buffer_free(b);
	}
	seed_reply("reply-a", 0, an, NULL);
	seed_reply("reply-cname", 0, cn, NULL);
	seed_reply("reply-nxdomain", 3, NULL, nx);
	return seed_end();
}
#endif /* HM_FUZZ_SEEDGEN */
