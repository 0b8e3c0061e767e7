// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * hm_dns: the XDP DNS responder.  A query on the DNS port whose decided
 * answer is in hm_dns_answers (kept in step with the certified cache by the
 * controller, user/service/dns/dns_xdp_answers.c) is answered in place with
 * XDP_TX; everything else passes unchanged to the userspace front end
 * (user/service/dns/dns_frontend.c), which answers exactly as without us.
 *
 * What we answer: Ethernet (no VLAN tag), IPv4 without options or
 * fragmentation, or IPv6 with UDP right after the fixed header; UDP to
 * hm_dns_config.port whose length agrees with the IP length; a DNS query
 * (QR 0, opcode QUERY) with one question, no answer or authority records,
 * and at most one additional record which is an EDNS version 0 OPT record
 * for the root with no options but padding (RFC 7830; so cookies and other
 * options go up); the
 * question name without compression, at most 255 bytes; nothing after.
 *
 * The answer is the bytes hm_dns_reply_build() makes for the same query
 * (docs/dns.md): ID and question echoed as sent (0x20 case kept), QR, RD
 * and CD echoed, RA, AD when the answer is secure and the client sent DO or
 * AD, the body from the map with every TTL set to the time left, an OPT
 * record (buffer 1232, DO echoed) for EDNS clients, and TC with header and
 * question only when the answer does not fit the client's buffer (512
 * without EDNS, else its size clamped to [512, 1232]).
 *
 * Rate limiting (RRL): with hm_dns_config.rrl_rate set, answers to one
 * client prefix beyond rate/s (burst rrl_burst) are dropped, except every
 * rrl_slip-th, which goes out truncated so a real client retries over TCP.
 * The counters are in hm_dns_stats (see headers/hm_dns_xdp.h).
 *
 * The replica's hm_xdp program tail-calls this one for every frame that is
 * not a HyperMesh datagram (hm_dns_tail), so both share one interface;
 * alone it can be attached directly.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "hm_dns_xdp.h"

#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define IPPROTO_UDP_NR 17
#define NSEC_PER_SEC 1000000000ull
#define DNS_HDR 12
#define OPT_LEN 11
/* EDNS padding (RFC 7830) we skip: it carries nothing the answer depends on. */
#define OPT_PADDING 12
#define PADDING_MAX 512
#define PADDING_OPTS_MAX 4
/* Question plus an optional OPT record with at most padding in it. */
#define REST_MAX (HM_DNS_XDP_QNAME_MAX + 4 + OPT_LEN + PADDING_MAX)
#define REST_MASK 0x3ff
#define TYPE_OPT 41
#define IP_TTL_OUT 64

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, HM_DNS_XDP_ANSWERS_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hm_dns_xdp_key);
	__type(value, struct hm_dns_xdp_answer);
} hm_dns_answers SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hm_dns_xdp_config);
} hm_dns_config SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hm_dns_xdp_stats);
} hm_dns_stats SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct hm_dns_xdp_prefix);
	__type(value, struct hm_dns_xdp_bucket);
} hm_dns_rrl SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_LPM_TRIE);
	__uint(max_entries, HM_DNS_XDP_ALLOW_MAX);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct hm_dns_xdp_allow_key);
	__type(value, __u8);
} hm_dns_allow SEC(".maps");

/* Per-CPU scratch: the question as received, and the lookup key. */
struct scratch {
	__u8 rest[REST_MASK + 1];
	struct hm_dns_xdp_key key;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct scratch);
} hm_dns_scratch SEC(".maps");

/* What parsing the frame learns. */
struct query {
	bool v6;
	bool edns, do_bit, rd, cd, ad;
	__u16 qlen;        /* question name length */
	__u16 rest_len;    /* question + OPT bytes in the query */
	__u16 limit;       /* the client's UDP buffer */
	__u32 qsum;        /* one's complement sum of the question, from offset 0 */
	__u32 ip_off;      /* after the Ethernet header */
	__u32 l4_off;      /* UDP header */
};

/* OUT_BROKEN: the frame changed and then a write failed (cannot happen for
 * a frame that grew): dropped, counted with grow_failed. */
enum outcome { OUT_PASS, OUT_MISS, OUT_EXPIRED, OUT_HIT, OUT_RRL_DROP, OUT_GROW_FAILED, OUT_BROKEN,
	       OUT_NOT_ALLOWED };

static __always_inline void count(enum outcome o, bool tc, bool slipped)
{
	__u32 zero = 0;
	struct hm_dns_xdp_stats *s = bpf_map_lookup_elem(&hm_dns_stats, &zero);

	if (!s)
		return;
	switch (o) {
	case OUT_PASS: s->pass++; break;
	case OUT_MISS: s->miss++; break;
	case OUT_EXPIRED: s->expired++; break;
	case OUT_HIT: s->hit++; break;
	case OUT_RRL_DROP: s->rrl_dropped++; break;
	case OUT_NOT_ALLOWED: s->not_allowed++; break;
	case OUT_GROW_FAILED:
	case OUT_BROKEN: s->grow_failed++; break;
	}
	if (tc)
		s->tc++;
	if (slipped)
		s->rrl_slipped++;
}

/* ---- checksums ------------------------------------------------------------ */

static __always_inline __u16 fold(__u64 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)sum;
}

static __always_inline __u16 swap16(__u16 v)
{
	return (__u16)((v << 8) | (v >> 8));
}

/* A byte's share of the sum at offset `at` from an even boundary. */
static __always_inline __u32 byte_sum(__u8 b, __u32 at)
{
	return (at & 1) ? b : (__u32)b << 8;
}

/* ---- parsing ---------------------------------------------------------------- */

/* Ethernet and IP: fills q->v6, ip_off, l4_off; the UDP payload length. */
static __always_inline int parse_l3(void *data, void *data_end, struct query *q)
{
	struct ethhdr *eth = data;

	if ((void *)(eth + 1) > data_end)
		return -1;
	q->ip_off = sizeof(*eth);
	if (eth->h_proto == bpf_htons(ETH_P_IP)) {
		struct iphdr *ip = (void *)(eth + 1);

		if ((void *)(ip + 1) > data_end || ip->version != 4 || ip->ihl != 5 ||
		    ip->protocol != IPPROTO_UDP_NR || (ip->frag_off & bpf_htons(0x3fff)))
			return -1;
		q->v6 = false;
		q->l4_off = q->ip_off + sizeof(*ip);
		return (int)bpf_ntohs(ip->tot_len) - (int)sizeof(*ip);
	}
	if (eth->h_proto == bpf_htons(ETH_P_IPV6)) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);

		if ((void *)(ip6 + 1) > data_end || ip6->version != 6 ||
		    ip6->nexthdr != IPPROTO_UDP_NR)
			return -1;
		q->v6 = true;
		q->l4_off = q->ip_off + sizeof(*ip6);
		return bpf_ntohs(ip6->payload_len);
	}
	return -1;
}

/* One byte of the question name per bpf_loop step (a 255-step loop inline
 * multiplies the verifier's states with everything after it). */
struct name_walk {
	struct scratch *s;
	__u32 rest_len;
	__u32 left;   /* bytes left in the current label */
	__u32 sum;
	__u32 len;    /* the name's length once its root label is seen */
};

static long name_step(__u64 k, void *arg)
{
	struct name_walk *w = arg;
	struct scratch *s = w->s;
	__u8 c;

	if (k >= w->rest_len || k >= HM_DNS_XDP_QNAME_MAX)
		return 1;
	c = s->rest[k];
	w->sum += byte_sum(c, (__u32)k);
	if (w->left == 0) {
		if (c == 0) {
			s->key.qname[k] = 0;
			w->len = (__u32)k + 1;
			return 1;
		}
		if (c > 63)
			return 1; /* compression pointer or reserved label type */
		w->left = c;
		s->key.qname[k] = c;
	} else {
		s->key.qname[k] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
		w->left--;
	}
	return 0;
}

/* The question name in s->rest: lower-cased into the key, its sum into
 * *qsum.  Its length, or 0 when it is not one we answer (compressed, cut,
 * longer than 255 bytes). */
static __always_inline __u32 parse_name(struct scratch *s, __u32 rest_len, __u32 *qsum)
{
	struct name_walk w = { .s = s, .rest_len = rest_len };

	bpf_loop(HM_DNS_XDP_QNAME_MAX, name_step, &w, 0);
	*qsum = w.sum;
	return w.len;
}

/* &s->rest[at] when at <= max, else NULL, in a form older verifiers (6.1)
 * follow: they lose a bound the compiler checked on another copy of it. */
static __always_inline const __u8 *rest_at(struct scratch *s, __u64 at, __u64 max)
{
	barrier_var(at);
	if (at > max)
		return NULL;
	return &s->rest[at];
}

/* QTYPE and QCLASS after the name (qlen bytes): into the key and the sum. */
static __always_inline int parse_qtype_qclass(struct scratch *s, struct query *q, __u32 qlen)
{
	const __u8 *t = rest_at(s, qlen, HM_DNS_XDP_QNAME_MAX);

	if (!t || qlen + 4 > q->rest_len)
		return -1;
	for (__u32 i = 0; i < 4; i++)
		q->qsum += byte_sum(t[i], qlen + i);
	s->key.qtype = (__u16)(t[0] << 8 | t[1]);
	s->key.qclass = (__u16)(t[2] << 8 | t[3]);
	return 0;
}

/* The OPT record at pos: root owner, type 41, class = UDP size, ext-rcode,
 * version 0, flags (DO), then only padding options, and nothing after it. */
static __always_inline int parse_opt(struct scratch *s, struct query *q, __u32 pos)
{
	const __u8 *o = rest_at(s, pos, HM_DNS_XDP_QNAME_MAX + 4);
	__u32 rdlen, at = pos + OPT_LEN;
	__u16 size;

	if (!o || pos + OPT_LEN > q->rest_len)
		return -1;
	if (o[0] != 0 || o[1] != 0 || o[2] != TYPE_OPT || o[6] != 0)
		return -1;
	rdlen = (__u32)(o[9] << 8 | o[10]);
	if (at + rdlen != q->rest_len)
		return -1;
	for (int k = 0; k < PADDING_OPTS_MAX && at < q->rest_len; k++) {
		const __u8 *op = rest_at(s, at, REST_MAX - 4);

		if (!op || at + 4 > q->rest_len)
			return -1;
		if ((op[0] << 8 | op[1]) != OPT_PADDING)
			return -1; /* cookies, client subnet, ...: the front end's */
		at += 4 + (__u32)(op[2] << 8 | op[3]);
	}
	if (at != q->rest_len)
		return -1;
	size = (__u16)(o[3] << 8 | o[4]);
	q->edns = true;
	q->do_bit = o[7] & 0x80;
	if (size < 512)
		size = 512;
	q->limit = size > HM_DNS_XDP_UDP_SIZE ? HM_DNS_XDP_UDP_SIZE : size;
	return 0;
}

/* The DNS part: header checks, question, OPT.  0, or -1 to pass. */
static __always_inline int parse_dns(struct xdp_md *ctx, struct scratch *s, struct query *q,
				     __u32 dns_off, __u32 dns_len)
{
	__u8 hdr[DNS_HDR];
	__u32 qlen, pos;
	__u64 n;
	__u16 arcount;

	if (dns_len < DNS_HDR + 5 || dns_len > DNS_HDR + REST_MAX)
		return -1;
	if (bpf_xdp_load_bytes(ctx, dns_off, hdr, DNS_HDR) < 0)
		return -1;
	/* QR 0, opcode QUERY; one question, no answers or authority. */
	if ((hdr[2] & 0xf8) || hdr[4] || hdr[5] != 1 || hdr[6] || hdr[7] || hdr[8] || hdr[9] ||
	    hdr[10])
		return -1;
	arcount = hdr[11];
	if (arcount > 1)
		return -1;
	q->rd = hdr[2] & 0x01;
	q->cd = hdr[3] & 0x10;
	q->ad = hdr[3] & 0x20;
	n = dns_len - DNS_HDR;
	q->rest_len = (__u16)n;
	if (n < 1 || n > REST_MAX)
		return -1;
	/* The same value in [1, REST_MASK + 1] in a form older verifiers
	 * (6.1) follow into the helper's size argument. */
	barrier_var(n);
	n = ((n - 1) & REST_MASK) + 1;
	if (bpf_xdp_load_bytes(ctx, dns_off + DNS_HDR, s->rest, n) < 0)
		return -1;
	qlen = parse_name(s, q->rest_len, &q->qsum);
	if (!qlen)
		return -1;
	q->qlen = (__u16)qlen;
	if (parse_qtype_qclass(s, q, qlen) < 0)
		return -1;
	pos = qlen + 4;
	q->limit = 512;
	if (arcount == 0)
		return pos == q->rest_len ? 0 : -1;
	return parse_opt(s, q, pos);
}

/* ---- rate limiting ---------------------------------------------------------- */

static __always_inline void mask_prefix(__u8 *addr, __u32 len, __u32 bits)
{
	for (__u32 i = 0; i < 16; i++) {
		__u32 start = i * 8;

		if (i >= len)
			addr[i] = 0;
		else if (start + 8 > bits)
			addr[i] &= start >= bits ? 0 : (__u8)(0xff << (8 - (bits - start)));
	}
}

/* Is the client inside dns.allow (hm_dns_allow)?  An IPv4 source is looked
 * up as ::ffff:a.b.c.d, the form the controller stores its prefixes in. */
static __always_inline bool client_allowed(struct xdp_md *ctx, const struct query *q)
{
	struct hm_dns_xdp_allow_key key = { .prefixlen = 128 };

	if (q->v6) {
		if (bpf_xdp_load_bytes(ctx, q->ip_off + 8, key.addr, 16) < 0)
			return false;
	} else {
		key.addr[10] = key.addr[11] = 0xff;
		if (bpf_xdp_load_bytes(ctx, q->ip_off + 12, key.addr + 12, 4) < 0)
			return false;
	}
	return bpf_map_lookup_elem(&hm_dns_allow, &key) != NULL;
}

/* Token bucket for the client's prefix: 1 answer it, 0 drop, 2 slip (TC). */
static __always_inline int rrl_verdict(struct xdp_md *ctx, const struct hm_dns_xdp_config *cfg,
				       const struct query *q)
{
	struct hm_dns_xdp_prefix key = {};
	struct hm_dns_xdp_bucket fresh = {}, *b;
	__u64 now = bpf_ktime_get_ns(), rate = cfg->rrl_rate, burst, elapsed, tokens;

	if (!rate)
		return 1;
	burst = cfg->rrl_burst ? cfg->rrl_burst : rate;
	key.family = q->v6 ? 6 : 4;
	if (q->v6) {
		if (bpf_xdp_load_bytes(ctx, q->ip_off + 8, key.addr, 16) < 0)
			return 1;
		mask_prefix(key.addr, 16, cfg->rrl_prefix6);
	} else {
		if (bpf_xdp_load_bytes(ctx, q->ip_off + 12, key.addr, 4) < 0)
			return 1;
		mask_prefix(key.addr, 4, cfg->rrl_prefix4);
	}
	b = bpf_map_lookup_elem(&hm_dns_rrl, &key);
	if (!b) {
		fresh.at_ns = now;
		fresh.nanotokens = burst * NSEC_PER_SEC;
		bpf_map_update_elem(&hm_dns_rrl, &key, &fresh, BPF_NOEXIST);
		b = bpf_map_lookup_elem(&hm_dns_rrl, &key);
		if (!b)
			return 1;
	}
	/* Racy between CPUs by design: a few answers more or less under a
	 * flood, never a lock on the hot path. */
	elapsed = now - b->at_ns;
	tokens = b->nanotokens;
	if (elapsed > burst * NSEC_PER_SEC / rate + NSEC_PER_SEC)
		tokens = burst * NSEC_PER_SEC;
	else
		tokens += elapsed * rate;
	if (tokens > burst * NSEC_PER_SEC)
		tokens = burst * NSEC_PER_SEC;
	b->at_ns = now;
	if (tokens >= NSEC_PER_SEC) {
		b->nanotokens = tokens - NSEC_PER_SEC;
		return 1;
	}
	b->nanotokens = tokens;
	b->limited++;
	return cfg->rrl_slip && b->limited % cfg->rrl_slip == 0 ? 2 : 0;
}

/* ---- the answer -------------------------------------------------------------- */

/* The served TTL: the time left, at most the decided TTL; -1 when expired. */
static __always_inline __s64 time_left(const struct hm_dns_xdp_config *cfg,
				       const struct hm_dns_xdp_answer *a)
{
	__s64 now = (__s64)((bpf_ktime_get_ns() + cfg->wall_offset_ns) / NSEC_PER_SEC);
	__s64 left = a->expiry - now;

	if (left <= 0)
		return -1;
	return left > a->ttl ? a->ttl : left;
}

/* Swap addresses and ports, set lengths, TTL/hop limit and the IPv4
 * header checksum; the pseudo-header and UDP header sum for the UDP checksum. */
static __always_inline int rewrite_l2_l4(struct xdp_md *ctx, const struct query *q, __u32 udp_len,
					 __u32 *sum)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct udphdr *udp;
	__u8 mac[6];
	__be16 port;
	__u64 s = 0;

	if ((void *)(eth + 1) > data_end)
		return -1;
	__builtin_memcpy(mac, eth->h_source, 6);
	__builtin_memcpy(eth->h_source, eth->h_dest, 6);
	__builtin_memcpy(eth->h_dest, mac, 6);
	if (q->v6) {
		struct ipv6hdr *ip6 = (void *)(eth + 1);
		struct in6_addr a;
		__u16 *w;

		if ((void *)(ip6 + 1) > data_end)
			return -1;
		a = ip6->saddr;
		ip6->saddr = ip6->daddr;
		ip6->daddr = a;
		ip6->payload_len = bpf_htons((__u16)udp_len);
		ip6->hop_limit = IP_TTL_OUT;
		w = (__u16 *)&ip6->saddr;
		for (int i = 0; i < 16; i++)
			s += bpf_ntohs(w[i]);
		udp = (void *)(ip6 + 1);
	} else {
		struct iphdr *ip = (void *)(eth + 1);
		__be32 a;
		__u16 *w;
		__u64 hs = 0;

		if ((void *)(ip + 1) > data_end)
			return -1;
		a = ip->saddr;
		ip->saddr = ip->daddr;
		ip->daddr = a;
		ip->tot_len = bpf_htons((__u16)(udp_len + sizeof(*ip)));
		ip->ttl = IP_TTL_OUT;
		ip->check = 0;
		w = (__u16 *)ip;
		for (int i = 0; i < 10; i++)
			hs += w[i];
		ip->check = (__u16)~fold(hs);
		w = (__u16 *)&ip->saddr;
		for (int i = 0; i < 4; i++)
			s += bpf_ntohs(w[i]);
		udp = (void *)(ip + 1);
	}
	if ((void *)(udp + 1) > data_end)
		return -1;
	port = udp->source;
	udp->source = udp->dest;
	udp->dest = port;
	udp->len = bpf_htons((__u16)udp_len);
	udp->check = 0;
	s += IPPROTO_UDP_NR + udp_len;                         /* pseudo-header */
	s += bpf_ntohs(udp->source) + bpf_ntohs(udp->dest) + udp_len; /* UDP header */
	*sum = fold(s);
	return 0;
}

static __always_inline int write_udp_csum(struct xdp_md *ctx, const struct query *q, __u64 sum)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	struct udphdr *udp = data + (q->v6 ? 14 + 40 : 14 + 20);
	__u16 c;

	if ((void *)(udp + 1) > data_end)
		return -1;
	c = (__u16)~fold(sum);
	udp->check = bpf_htons(c ? c : 0xffff);
	return 0;
}

/* Write the served TTL into one TTL field per bpf_loop step. */
struct ttl_walk {
	struct xdp_md *ctx;
	const struct hm_dns_xdp_answer *a;
	__u32 body_off;
	__be32 ttl;
	bool failed;
};

static long ttl_step(__u64 i, void *arg)
{
	struct ttl_walk *w = arg;
	__u32 off;

	if (i >= HM_DNS_XDP_TTLS_MAX)
		return 1;
	off = w->a->ttl_off[i];
	if (bpf_xdp_store_bytes(w->ctx, w->body_off + off, &w->ttl, 4) < 0) {
		w->failed = true;
		return 1;
	}
	return 0;
}

/* Build the answer in place.  OUT_HIT or why not. */
static __always_inline enum outcome answer(struct xdp_md *ctx, const struct query *q,
					   const struct hm_dns_xdp_answer *a, __s64 ttl, bool tc)
{
	__u32 dns_off = q->l4_off + 8, body_off = dns_off + DNS_HDR + q->qlen + 4;
	__u32 body_len = tc ? 0 : a->body_len, opt_off = body_off + body_len;
	__u32 dns_len = DNS_HDR + q->qlen + 4 + body_len + (q->edns ? OPT_LEN : 0);
	__u32 frame_len = q->l4_off + 8 + dns_len, sum = 0;
	long data = ctx->data, data_end = ctx->data_end;
	int delta;
	__u8 hdr[4] = {}, opt[12] = {};
	__u64 total;
	bool ad;

	if (body_len > HM_DNS_XDP_BODY_MAX)
		return OUT_PASS;
	barrier_var(data);
	barrier_var(data_end);
	delta = (int)frame_len - (int)(data_end - data);
	if (delta && bpf_xdp_adjust_tail(ctx, delta) < 0)
		return OUT_GROW_FAILED;
	if (rewrite_l2_l4(ctx, q, 8 + dns_len, &sum) < 0)
		return OUT_BROKEN;
	total = sum;
	/* DNS header: ID in place; flags; counts. */
	ad = !tc && (a->flags & HM_DNS_XDP_SECURE) && (q->do_bit || q->ad);
	hdr[0] = 0x80 | (tc ? 0x02 : 0) | (q->rd ? 0x01 : 0);
	hdr[1] = 0x80 | (ad ? 0x20 : 0) | (q->cd ? 0x10 : 0) | (a->rcode & 0x0f);
	if (bpf_xdp_store_bytes(ctx, dns_off + 2, hdr, 2) < 0)
		return OUT_BROKEN;
	{
		__u16 counts[4] = { bpf_htons(1), bpf_htons(tc ? 0 : a->ancount),
				    bpf_htons(tc ? 0 : a->nscount), bpf_htons(q->edns ? 1 : 0) };
		__u8 id[2];

		if (bpf_xdp_store_bytes(ctx, dns_off + 4, counts, 8) < 0 ||
		    bpf_xdp_load_bytes(ctx, dns_off, id, 2) < 0)
			return OUT_BROKEN;
		total += ((__u32)id[0] << 8 | id[1]) + ((__u32)hdr[0] << 8 | hdr[1]) + 1 +
			 (tc ? 0 : a->ancount + a->nscount) + (q->edns ? 1 : 0);
	}
	total += q->qsum; /* the question starts at an even offset (UDP 20) */
	if (body_len) {
		__u64 len = a->body_len;
		__u32 t = (__u32)ttl, n = a->n_ttl;
		__u32 odd = a->n_ttl_odd, even = n - odd;
		__u64 bsum = a->body_csum;
		__u32 tb[4] = { t >> 24, (t >> 16) & 0xff, (t >> 8) & 0xff, t & 0xff };
		__be32 tbe = bpf_htonl(t);

		if (len > HM_DNS_XDP_BODY_MAX || len == 0 || n > HM_DNS_XDP_TTLS_MAX || odd > n)
			return OUT_BROKEN;
		/* In [1, BODY_MAX] on the register the helper gets (6.1 loses
		 * the bound of a spilled copy). */
		barrier_var(len);
		len = ((len - 1) & 0x7ff) + 1;
		if (len > HM_DNS_XDP_BODY_MAX)
			return OUT_BROKEN;
		barrier_var(len);
		if (bpf_xdp_store_bytes(ctx, body_off, (void *)a->body, len) < 0)
			return OUT_BROKEN;
		{
			struct ttl_walk tw = { .ctx = ctx, .a = a, .body_off = body_off, .ttl = tbe };

			bpf_loop(n, ttl_step, &tw, 0);
			if (tw.failed)
				return OUT_BROKEN;
		}
		/* The TTLs' share, counted from the body's start. */
		bsum += (__u64)even * ((tb[0] << 8 | tb[1]) + (tb[2] << 8 | tb[3]));
		bsum += (__u64)odd * (tb[0] + (tb[1] << 8 | tb[2]) + (tb[3] << 8));
		/* The body starts at UDP offset 20 + qlen + 4. */
		total += (q->qlen & 1) ? swap16(fold(bsum)) : fold(bsum);
	}
	if (q->edns) {
		__u32 at = opt_off - q->l4_off;

		opt[2] = TYPE_OPT;
		opt[3] = HM_DNS_XDP_UDP_SIZE >> 8;
		opt[4] = HM_DNS_XDP_UDP_SIZE & 0xff;
		opt[5] = (a->rcode >> 4) & 0xff;
		opt[7] = q->do_bit ? 0x80 : 0;
		if (bpf_xdp_store_bytes(ctx, opt_off, opt, OPT_LEN) < 0)
			return OUT_BROKEN;
		for (__u32 i = 0; i < OPT_LEN; i++)
			total += byte_sum(opt[i], at + i);
	}
	if (write_udp_csum(ctx, q, total) < 0)
		return OUT_BROKEN;
	return OUT_HIT;
}

/* The whole decision for one frame. */
static __always_inline int respond(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data, *data_end = (void *)(long)ctx->data_end;
	const struct hm_dns_xdp_config *cfg;
	const struct hm_dns_xdp_answer *a;
	struct query q = {};
	struct scratch *s;
	struct udphdr *udp;
	__u32 zero = 0, udp_len;
	int l4_len, rrl;
	enum outcome o;
	__s64 ttl;
	bool tc;

	cfg = bpf_map_lookup_elem(&hm_dns_config, &zero);
	if (!cfg || !cfg->port)
		return XDP_PASS;
	l4_len = parse_l3(data, data_end, &q);
	if (l4_len < 0)
		return XDP_PASS;
	udp = data + q.l4_off;
	if ((void *)(udp + 1) > data_end || udp->dest != bpf_htons(cfg->port))
		return XDP_PASS;
	/* A datagram to the DNS port: from here on every one is counted. */
	if (!client_allowed(ctx, &q)) {
		count(OUT_NOT_ALLOWED, false, false);
		return XDP_PASS;
	}
	udp_len = bpf_ntohs(udp->len);
	s = bpf_map_lookup_elem(&hm_dns_scratch, &zero);
	if (!s || udp_len != (__u32)l4_len || udp_len < 8 ||
	    (long)q.l4_off + udp_len > (long)(data_end - data)) {
		count(OUT_PASS, false, false);
		return XDP_PASS;
	}
	__builtin_memset(&s->key, 0, sizeof(s->key));
	if (parse_dns(ctx, s, &q, q.l4_off + 8, udp_len - 8) < 0) {
		count(OUT_PASS, false, false);
		return XDP_PASS;
	}
	s->key.do_bit = q.do_bit;
	a = bpf_map_lookup_elem(&hm_dns_answers, &s->key);
	if (!a) {
		count(OUT_MISS, false, false);
		return XDP_PASS;
	}
	ttl = time_left(cfg, a);
	if (ttl < 0) {
		count(OUT_EXPIRED, false, false);
		return XDP_PASS;
	}
	rrl = rrl_verdict(ctx, cfg, &q);
	if (rrl == 0) {
		count(OUT_RRL_DROP, false, false);
		return XDP_DROP;
	}
	tc = rrl == 2 || (a->flags & HM_DNS_XDP_TOO_BIG) ||
	     DNS_HDR + q.qlen + 4 + a->body_len + (q.edns ? OPT_LEN : 0) > q.limit;
	o = answer(ctx, &q, a, ttl, tc);
	count(o, o == OUT_HIT && tc, o == OUT_HIT && rrl == 2);
	if (o == OUT_HIT)
		return XDP_TX;
	/* A failed rewrite after the frame changed cannot go up as it is. */
	return o == OUT_BROKEN ? XDP_DROP : XDP_PASS;
}

SEC("xdp")
int hm_dns_xdp(struct xdp_md *ctx)
{
	return respond(ctx);
}

char LICENSE[] SEC("license") = "Dual MIT/GPL";
