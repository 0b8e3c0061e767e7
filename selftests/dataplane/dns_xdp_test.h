/* SPDX-License-Identifier: MIT */
/*
 * Shared by the selftests and the benchmark of kern/hm_dns.bpf.c: loading
 * the skeleton, a corpus of decided answers (canons made by the real
 * hm_dns_canon_from_reply from upstream replies written as zone text), query
 * frames over IPv4 and IPv6, running a frame through BPF_PROG_TEST_RUN, and
 * the userspace answer (hm_dns_query_parse + hm_dns_reply_build, what the
 * front end sends) to compare with.
 */
#ifndef HM_DNS_XDP_TEST_H
#define HM_DNS_XDP_TEST_H

#include <arpa/inet.h>
#include <errno.h>
#include <string.h>
#include <time.h>

#include <linux/bpf.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <ldns/ldns.h>

#include "hm_dns_xdp.h"
#include "dataplane/dns_xdp.h"
#include "hm_dns.skel.h"
#include "service/dns/dns_msg.h"
#include "service/dns/dns_service.h"
#include "service/dns/dns_xdp_answers.h"

#define DNS_PORT 5353
#define FRAME_MAX 4096

static inline struct hm_dns_bpf *dns_xdp_load(char *why, size_t len)
{
	struct hm_dns_bpf *skel = hm_dns_bpf__open();
	int err;

	if (!skel) {
		snprintf(why, len, "open: %s", strerror(errno));
		return NULL;
	}
	err = hm_dns_bpf__load(skel);
	if (err) {
		snprintf(why, len, "load: %s%s", strerror(-err),
			 (err == -EPERM || err == -EACCES) ? " (needs root)" : "");
		hm_dns_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

static inline int64_t wall_now(void)
{
	return (int64_t)time(NULL);
}

/* CLOCK_REALTIME - CLOCK_MONOTONIC (bpf_ktime_get_ns), as the controller
 * sets it. */
static inline int64_t wall_offset_ns(void)
{
	struct timespec r, m;

	clock_gettime(CLOCK_REALTIME, &r);
	clock_gettime(CLOCK_MONOTONIC, &m);
	return ((int64_t)r.tv_sec - m.tv_sec) * 1000000000ll + (r.tv_nsec - m.tv_nsec);
}

static inline int dns_xdp_configure(struct hm_dns_bpf *skel, uint32_t rrl_rate, uint32_t burst,
				    uint32_t slip)
{
	struct hm_dns_xdp_config c = { .port = DNS_PORT, .rrl_rate = rrl_rate, .rrl_burst = burst,
				       .rrl_slip = slip, .rrl_prefix4 = 24, .rrl_prefix6 = 56,
				       .wall_offset_ns = wall_offset_ns() };
	uint32_t zero = 0;

	struct hm_dns_xdp_allow_key everyone = { .prefixlen = 0 };
	uint8_t one = 1;

	/* Every client allowed (::/0 covers the IPv4-mapped ones too);
	 * allow_list_in_xdp narrows it. */
	if (bpf_map_update_elem(bpf_map__fd(skel->maps.hm_dns_allow), &everyone, &one, BPF_ANY) < 0)
		return -1;
	return bpf_map_update_elem(bpf_map__fd(skel->maps.hm_dns_config), &zero, &c, BPF_ANY);
}

static inline void dns_xdp_stats(struct hm_dns_bpf *skel, struct hm_dns_xdp_stats *sum)
{
	hm_dns_xdp_sum_stats(bpf_map__fd(skel->maps.hm_dns_stats), sum);
}

/* ---- the corpus of decided answers ---------------------------------------------- */

#define SIG "AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyAhIiMkJSYnKCkqKywtLi8wMTIzNDU2Nzg5Ojs8PT4/QA=="
#define RRSIG(owner, type, labels) owner " 3600 IN RRSIG " type " 13 " labels " 3600 20300101000000 20200101000000 4711 signed.hmtest. " SIG
#define RRSIG3(owner, type, labels) owner " 3600 IN RRSIG " type " 13 " labels " 3600 20300101000000 20200101000000 4712 nsec3.hmtest. " SIG

struct corpus_answer {
	const char *what;
	const char *name;
	uint16_t type;
	int rcode;
	bool secure;
	const char *an[48];
	const char *ns[12];
};

#define BIG_TXT(i) "big.signed.hmtest. 3600 IN TXT \"large rrset record " #i ", padding to make the answer need tcp\""
#define MID_TXT(i) "mid.signed.hmtest. 3600 IN TXT \"medium rrset record " #i ", padding past 512\""

static const struct corpus_answer corpus[] = {
	{ "A with RRSIG", "www.signed.hmtest.", LDNS_RR_TYPE_A, 0, true,
	  { "www.signed.hmtest. 3600 IN A 198.18.53.80", "www.signed.hmtest. 3600 IN A 198.18.53.81",
	    RRSIG("www.signed.hmtest.", "A", "3") } },
	{ "AAAA", "www.signed.hmtest.", LDNS_RR_TYPE_AAAA, 0, true,
	  { "www.signed.hmtest. 3600 IN AAAA 2001:db8::80", RRSIG("www.signed.hmtest.", "AAAA", "3") } },
	{ "MX", "mail.signed.hmtest.", LDNS_RR_TYPE_MX, 0, true,
	  { "mail.signed.hmtest. 3600 IN MX 10 www.signed.hmtest.", RRSIG("mail.signed.hmtest.", "MX", "3") } },
	{ "NS", "signed.hmtest.", LDNS_RR_TYPE_NS, 0, true,
	  { "signed.hmtest. 3600 IN NS ns.signed.hmtest.", RRSIG("signed.hmtest.", "NS", "2") } },
	{ "SOA", "signed.hmtest.", LDNS_RR_TYPE_SOA, 0, true,
	  { "signed.hmtest. 3600 IN SOA ns.signed.hmtest. hostmaster.signed.hmtest. 1 7200 3600 1209600 300",
	    RRSIG("signed.hmtest.", "SOA", "2") } },
	{ "DNSKEY", "signed.hmtest.", LDNS_RR_TYPE_DNSKEY, 0, true,
	  { "signed.hmtest. 3600 IN DNSKEY 257 3 13 " SIG, "signed.hmtest. 3600 IN DNSKEY 256 3 13 " SIG,
	    RRSIG("signed.hmtest.", "DNSKEY", "2") } },
	{ "DS", "child.signed.hmtest.", LDNS_RR_TYPE_DS, 0, true,
	  { "child.signed.hmtest. 3600 IN DS 4711 13 2 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
	    RRSIG("child.signed.hmtest.", "DS", "3") } },
	{ "TXT", "txt.signed.hmtest.", LDNS_RR_TYPE_TXT, 0, true,
	  { "txt.signed.hmtest. 3600 IN TXT \"v=spf1 -all\" \"second string\"", RRSIG("txt.signed.hmtest.", "TXT", "3") } },
	{ "CNAME to A", "alias.signed.hmtest.", LDNS_RR_TYPE_A, 0, true,
	  { "alias.signed.hmtest. 3600 IN CNAME www.signed.hmtest.", RRSIG("alias.signed.hmtest.", "CNAME", "3"),
	    "www.signed.hmtest. 3600 IN A 198.18.53.80", "www.signed.hmtest. 3600 IN A 198.18.53.81",
	    RRSIG("www.signed.hmtest.", "A", "3") } },
	{ "CNAME chain", "a.chain.signed.hmtest.", LDNS_RR_TYPE_AAAA, 0, false,
	  { "a.chain.signed.hmtest. 3600 IN CNAME b.chain.signed.hmtest.",
	    "b.chain.signed.hmtest. 3600 IN CNAME c.chain.signed.hmtest.",
	    "c.chain.signed.hmtest. 3600 IN CNAME www.signed.hmtest.",
	    "www.signed.hmtest. 3600 IN AAAA 2001:db8::80" } },
	{ "wildcard", "anything.wild.signed.hmtest.", LDNS_RR_TYPE_A, 0, false,
	  { "anything.wild.signed.hmtest. 3600 IN A 198.18.53.99",
	    RRSIG("anything.wild.signed.hmtest.", "A", "3") },
	  { "wild.signed.hmtest. 3600 IN NSEC www.signed.hmtest. A RRSIG NSEC" } },
	{ "NXDOMAIN with NSEC", "nope.signed.hmtest.", LDNS_RR_TYPE_A, 3, false, { NULL },
	  { "signed.hmtest. 300 IN SOA ns.signed.hmtest. hostmaster.signed.hmtest. 1 7200 3600 1209600 300",
	    RRSIG("signed.hmtest.", "SOA", "2"),
	    "mail.signed.hmtest. 300 IN NSEC ns.signed.hmtest. MX RRSIG NSEC",
	    RRSIG("mail.signed.hmtest.", "NSEC", "3"),
	    "signed.hmtest. 300 IN NSEC alias.signed.hmtest. SOA NS RRSIG NSEC DNSKEY",
	    RRSIG("signed.hmtest.", "NSEC", "2") } },
	{ "NXDOMAIN with NSEC3", "nope.nsec3.hmtest.", LDNS_RR_TYPE_A, 3, false, { NULL },
	  { "nsec3.hmtest. 300 IN SOA ns.nsec3.hmtest. hostmaster.nsec3.hmtest. 1 7200 3600 1209600 300",
	    RRSIG3("nsec3.hmtest.", "SOA", "2"),
	    "1avvqn74sg75ukfvf25dgcethgq638ek.nsec3.hmtest. 300 IN NSEC3 1 0 0 - 75b9id679qqoo4ssq6pbqu0ssfqfc2bj NS SOA RRSIG DNSKEY NSEC3PARAM",
	    RRSIG3("1avvqn74sg75ukfvf25dgcethgq638ek.nsec3.hmtest.", "NSEC3", "3"),
	    "75b9id679qqoo4ssq6pbqu0ssfqfc2bj.nsec3.hmtest. 300 IN NSEC3 1 0 0 - 1avvqn74sg75ukfvf25dgcethgq638ek A RRSIG",
	    RRSIG3("75b9id679qqoo4ssq6pbqu0ssfqfc2bj.nsec3.hmtest.", "NSEC3", "3") } },
	{ "NODATA with NSEC", "www.signed.hmtest.", LDNS_RR_TYPE_TXT, 0, true, { NULL },
	  { "signed.hmtest. 300 IN SOA ns.signed.hmtest. hostmaster.signed.hmtest. 1 7200 3600 1209600 300",
	    RRSIG("signed.hmtest.", "SOA", "2"),
	    "www.signed.hmtest. 300 IN NSEC alias2.signed.hmtest. A AAAA RRSIG NSEC",
	    RRSIG("www.signed.hmtest.", "NSEC", "3") } },
	{ "NODATA unsigned", "www.unsigned.hmtest.", LDNS_RR_TYPE_MX, 0, false, { NULL },
	  { "unsigned.hmtest. 300 IN SOA ns.unsigned.hmtest. hostmaster.unsigned.hmtest. 1 7200 3600 1209600 300" } },
	{ "unsigned A", "www.unsigned.hmtest.", LDNS_RR_TYPE_A, 0, false,
	  { "www.unsigned.hmtest. 3600 IN A 198.18.54.80" } },
	{ "SRV", "_sip._udp.unsigned.hmtest.", LDNS_RR_TYPE_SRV, 0, false,
	  { "_sip._udp.unsigned.hmtest. 3600 IN SRV 10 60 5060 www.unsigned.hmtest." } },
	{ "PTR", "80.53.18.198.in-addr.arpa.", LDNS_RR_TYPE_PTR, 0, false,
	  { "80.53.18.198.in-addr.arpa. 3600 IN PTR www.signed.hmtest." } },
	{ "TLSA", "_443._tcp.www.signed.hmtest.", LDNS_RR_TYPE_TLSA, 0, true,
	  { "_443._tcp.www.signed.hmtest. 3600 IN TLSA 3 1 1 0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20",
	    RRSIG("_443._tcp.www.signed.hmtest.", "TLSA", "5") } },
	{ "CAA", "signed.hmtest.", LDNS_RR_TYPE_CAA, 0, false,
	  { "signed.hmtest. 3600 IN CAA 0 issue \"letsencrypt.org\"" } },
	{ "root NS", ".", LDNS_RR_TYPE_NS, 0, false,
	  { ". 3600 IN NS a.root-servers.net." } },
	{ "over 512 bytes", "mid.signed.hmtest.", LDNS_RR_TYPE_TXT, 0, true,
	  { MID_TXT(01), MID_TXT(02), MID_TXT(03), MID_TXT(04), MID_TXT(05), MID_TXT(06), MID_TXT(07),
	    MID_TXT(08), MID_TXT(09), MID_TXT(10), RRSIG("mid.signed.hmtest.", "TXT", "3") } },
	{ "over 1232 bytes", "big.signed.hmtest.", LDNS_RR_TYPE_TXT, 0, true,
	  { BIG_TXT(01), BIG_TXT(02), BIG_TXT(03), BIG_TXT(04), BIG_TXT(05), BIG_TXT(06), BIG_TXT(07),
	    BIG_TXT(08), BIG_TXT(09), BIG_TXT(10), BIG_TXT(11), BIG_TXT(12), BIG_TXT(13), BIG_TXT(14),
	    BIG_TXT(15), BIG_TXT(16), BIG_TXT(17), BIG_TXT(18), BIG_TXT(19), BIG_TXT(20), BIG_TXT(21),
	    BIG_TXT(22), BIG_TXT(23), BIG_TXT(24), BIG_TXT(25), BIG_TXT(26), BIG_TXT(27), BIG_TXT(28),
	    BIG_TXT(29), BIG_TXT(30), BIG_TXT(31), BIG_TXT(32), BIG_TXT(33), BIG_TXT(34), BIG_TXT(35),
	    BIG_TXT(36), BIG_TXT(37), BIG_TXT(38), BIG_TXT(39), BIG_TXT(40),
	    RRSIG("big.signed.hmtest.", "TXT", "3") } },
	{ "long name", "a123456789012345678901234567890123456789012345678901234567890.b123456789012345678901234567890123456789012345678901234567890.c123456789012345678901234567890123456789012345678901234567890.d1234567890123456789012345678901234567890123456789012345.", LDNS_RR_TYPE_A, 0, false,
	  { "a123456789012345678901234567890123456789012345678901234567890.b123456789012345678901234567890123456789012345678901234567890.c123456789012345678901234567890123456789012345678901234567890.d1234567890123456789012345678901234567890123456789012345. 3600 IN A 198.18.53.1" } },
};
#define CORPUS_N (sizeof(corpus) / sizeof(corpus[0]))

/* An upstream reply for a corpus answer, in wire form. */
static inline uint8_t *corpus_reply(const struct corpus_answer *c, size_t *len)
{
	ldns_pkt *pkt = NULL;
	uint8_t *wire = NULL;

	if (ldns_pkt_query_new_frm_str(&pkt, c->name, c->type, LDNS_RR_CLASS_IN, 0) != LDNS_STATUS_OK)
		return NULL;
	ldns_pkt_set_qr(pkt, true);
	ldns_pkt_set_rcode(pkt, (uint8_t)c->rcode);
	for (int s = 0; s < 2; s++) {
		const char *const *l = s ? c->ns : c->an;
		size_t max = s ? 12 : 48;

		for (size_t i = 0; i < max && l[i]; i++) {
			ldns_rr *rr = NULL;

			if (ldns_rr_new_frm_str(&rr, l[i], 3600, NULL, NULL) != LDNS_STATUS_OK) {
				fprintf(stderr, "bad corpus RR: %s\n", l[i]);
				ldns_pkt_free(pkt);
				return NULL;
			}
			ldns_pkt_push_rr(pkt, s ? LDNS_SECTION_AUTHORITY : LDNS_SECTION_ANSWER, rr);
		}
	}
	if (ldns_pkt2wire(&wire, pkt, len) != LDNS_STATUS_OK)
		wire = NULL;
	ldns_pkt_free(pkt);
	return wire;
}

/* A decided entry (rule (b)) for corpus answer c; the canon is malloc'd. */
static inline int corpus_entry(const struct corpus_answer *c, int64_t expiry, uint32_t ttl,
			       struct hm_dns_entry *e)
{
	struct hm_dns_query q = { 0 };
	ldns_rdf *d = NULL;
	size_t rlen = 0, clen = 0;
	uint8_t *reply, *canon;

	memset(e, 0, sizeof(*e));
	if (ldns_str2rdf_dname(&d, c->name) != LDNS_STATUS_OK)
		return -1;
	ldns_dname2canonical(d);
	memcpy(q.qname, ldns_rdf_data(d), ldns_rdf_size(d));
	q.qname_len = (uint8_t)ldns_rdf_size(d);
	ldns_rdf_deep_free(d);
	q.qtype = c->type;
	q.qclass = LDNS_RR_CLASS_IN;
	reply = corpus_reply(c, &rlen);
	canon = reply ? hm_dns_canon_from_reply(&q, reply, rlen, c->secure, &clen) : NULL;
	free(reply);
	if (!canon)
		return -1;
	memcpy(e->q.qname, q.qname, q.qname_len);
	e->q.qname_len = q.qname_len;
	e->q.qtype = q.qtype;
	e->q.qclass = q.qclass;
	e->rule = HM_DNS_RULE_OBSERVED;
	e->rcode = (uint8_t)c->rcode;
	e->expiry = expiry;
	e->t = expiry - ttl;
	e->ttl = ttl;
	e->canon = canon;
	e->canon_len = clen;
	return 0;
}

/* ---- frames -------------------------------------------------------------------- */

struct qspec {
	const char *name;
	uint16_t type, id;
	bool v6, rd, cd, ad, mixed_case;
	uint16_t edns_size; /* 0: no OPT */
	bool do_bit;
	uint16_t padding;   /* with EDNS: an RFC 7830 padding option of this many bytes */
};

/* The DNS query bytes for spec (ldns, as a stub would send it). */
static inline size_t query_wire(const struct qspec *s, uint8_t *out, size_t cap)
{
	ldns_pkt *pkt = NULL;
	uint8_t *wire = NULL;
	size_t n = 0;

	if (ldns_pkt_query_new_frm_str(&pkt, s->name, s->type, LDNS_RR_CLASS_IN,
				       s->rd ? LDNS_RD : 0) != LDNS_STATUS_OK)
		return 0;
	ldns_pkt_set_id(pkt, s->id);
	ldns_pkt_set_cd(pkt, s->cd);
	ldns_pkt_set_ad(pkt, s->ad);
	if (s->edns_size) {
		ldns_pkt_set_edns_udp_size(pkt, s->edns_size);
		ldns_pkt_set_edns_do(pkt, s->do_bit);
		pkt->_edns_present = 1;
	}
	if (ldns_pkt2wire(&wire, pkt, &n) == LDNS_STATUS_OK && n <= cap) {
		memcpy(out, wire, n);
		/* 0x20: flip the case of every other letter of the question. */
		for (size_t i = 12, k = 0; s->mixed_case && i < n && out[i]; i += 1u + out[i])
			for (size_t j = i + 1; j <= i + out[i] && j < n; j++)
				if (((out[j] | 0x20) >= 'a' && (out[j] | 0x20) <= 'z') && (k++ & 1) == 0)
					out[j] ^= 0x20;
		/* Padding last: the OPT record is the message's last record. */
		if (s->edns_size && s->padding && n + 4 + s->padding <= cap) {
			uint16_t rdlen = (uint16_t)(out[n - 2] << 8 | out[n - 1]) + 4 + s->padding;

			out[n - 2] = (uint8_t)(rdlen >> 8);
			out[n - 1] = (uint8_t)rdlen;
			out[n] = 0;
			out[n + 1] = 12;
			out[n + 2] = (uint8_t)(s->padding >> 8);
			out[n + 3] = (uint8_t)s->padding;
			memset(out + n + 4, 0, s->padding);
			n += 4 + s->padding;
		}
	} else {
		n = 0;
	}
	free(wire);
	ldns_pkt_free(pkt);
	return n;
}

static const uint8_t client_mac[6] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t server_mac[6] = { 0x02, 0, 0, 0, 0, 0x02 };

static inline uint32_t sum16(const uint8_t *p, size_t len, uint32_t s)
{
	for (size_t i = 0; i + 1 < len; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (len & 1)
		s += (uint32_t)p[len - 1] << 8;
	return s;
}

static inline uint16_t fold16(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/* Ethernet + IPv4/IPv6 + UDP to DNS_PORT around a DNS payload; the client
 * is 198.18.7.<host> or 2001:db8::<host> (RFC 2544 / documentation). */
static inline size_t frame_build(bool v6, uint8_t host, const uint8_t *dns, size_t len, uint8_t *f)
{
	size_t l3 = 14, l4 = l3 + (v6 ? 40 : 20), udp_len = 8 + len;
	uint32_t s;

	memcpy(f, server_mac, 6);
	memcpy(f + 6, client_mac, 6);
	f[12] = v6 ? 0x86 : 0x08;
	f[13] = v6 ? 0xdd : 0x00;
	if (v6) {
		memset(f + l3, 0, 40);
		f[l3] = 0x60;
		f[l3 + 4] = (uint8_t)(udp_len >> 8);
		f[l3 + 5] = (uint8_t)udp_len;
		f[l3 + 6] = 17;
		f[l3 + 7] = 64;
		inet_pton(AF_INET6, "2001:db8::", f + l3 + 8);
		f[l3 + 23] = host;
		inet_pton(AF_INET6, "2001:db8::53", f + l3 + 24);
	} else {
		memset(f + l3, 0, 20);
		f[l3] = 0x45;
		f[l3 + 2] = (uint8_t)((20 + udp_len) >> 8);
		f[l3 + 3] = (uint8_t)(20 + udp_len);
		f[l3 + 8] = 64;
		f[l3 + 9] = 17;
		f[l3 + 12] = 198;
		f[l3 + 13] = 18;
		f[l3 + 14] = 7;
		f[l3 + 15] = host;
		f[l3 + 16] = 198;
		f[l3 + 17] = 18;
		f[l3 + 18] = 0;
		f[l3 + 19] = 53;
		s = fold16(sum16(f + l3, 20, 0));
		f[l3 + 10] = (uint8_t)(~s >> 8);
		f[l3 + 11] = (uint8_t)~s;
	}
	f[l4] = 0xc3;
	f[l4 + 1] = 0x50; /* source port 50000 */
	f[l4 + 2] = DNS_PORT >> 8;
	f[l4 + 3] = DNS_PORT & 0xff;
	f[l4 + 4] = (uint8_t)(udp_len >> 8);
	f[l4 + 5] = (uint8_t)udp_len;
	f[l4 + 6] = f[l4 + 7] = 0;
	memcpy(f + l4 + 8, dns, len);
	return l4 + udp_len;
}

/* Does the UDP checksum of frame f verify (IPv4 also its header sum)? */
static inline bool frame_csums_ok(const uint8_t *f, size_t len)
{
	bool v6 = f[12] == 0x86;
	size_t l3 = 14, l4 = l3 + (v6 ? 40 : 20);
	uint32_t s = 0, udp_len;

	if (len < l4 + 8)
		return false;
	udp_len = (uint32_t)(f[l4 + 4] << 8 | f[l4 + 5]);
	if (l4 + udp_len != len)
		return false;
	if (!v6 && fold16(sum16(f + l3, 20, 0)) != 0xffff)
		return false;
	s = v6 ? sum16(f + l3 + 8, 32, 0) : sum16(f + l3 + 12, 8, 0);
	s += 17 + udp_len;
	s = sum16(f + l4, udp_len, s);
	return fold16(s) == 0xffff && (f[l4 + 6] | f[l4 + 7]);
}

/* Run frame f (len bytes) through the program: the verdict, the frame
 * after it in out and out_len. */
static inline int run_frame(int prog_fd, const uint8_t *f, size_t len, uint8_t *out,
			    size_t *out_len, uint32_t *duration)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f, .data_size_in = (uint32_t)len,
		    .data_out = out, .data_size_out = FRAME_MAX, .repeat = 1);
	int err = bpf_prog_test_run_opts(prog_fd, &o);

	if (err)
		return -1;
	*out_len = o.data_size_out;
	if (duration)
		*duration = o.duration;
	return (int)o.retval;
}

/* What the userspace front end answers to this DNS payload from the entry
 * (served TTL ttl); 0 when it would not answer it from the cache. */
static inline size_t userspace_answer(const uint8_t *dns, size_t len, const struct hm_dns_entry *e,
				      uint32_t ttl, uint8_t *out, size_t cap)
{
	struct hm_dns_query q;

	if (hm_dns_query_parse(dns, len, &q) != HM_DNS_PARSE_OK)
		return 0;
	return hm_dns_reply_build(&q, e->canon, e->canon_len, ttl, q.max_size, out, cap);
}

#endif /* HM_DNS_XDP_TEST_H */
