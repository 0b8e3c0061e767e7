/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The maps of kern/hm_dns.bpf.c, the XDP DNS responder, shared with its
 * controller (user/dataplane/dns_xdp.c) and the code that fills the answer
 * map from the certified cache (user/service/dns/dns_xdp_answers.c).
 *
 * hm_dns_answers: (lower-case qname, qtype, qclass, DO bit) -> the decided
 * answer as wire bytes after the question (answer and authority sections,
 * names compressed against the question at offset 12, every TTL 0), the
 * offsets of its TTL fields, and the answer's absolute expiry.  The
 * program writes header, the OPT record and the TTLs per query.
 */
#ifndef HM_DNS_XDP_H
#define HM_DNS_XDP_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define HM_DNS_XDP_QNAME_MAX 255
#define HM_DNS_XDP_BODY_MAX 1232   /* the largest UDP answer we send (HM_DNS_UDP_MAX) */
#define HM_DNS_XDP_TTLS_MAX 64     /* answers with more records stay in userspace */
#define HM_DNS_XDP_UDP_SIZE 1232   /* the EDNS buffer size we announce */
#define HM_DNS_XDP_ANSWERS_MAX 65536

#define HM_DNS_XDP_SECURE 0x01     /* validated: AD for DO or AD clients */
#define HM_DNS_XDP_TOO_BIG 0x02    /* longer than any UDP answer: always TC */

struct hm_dns_xdp_key {
	__u8 qname[256];   /* wire form, ASCII lower case, zero padded */
	__u16 qtype;       /* host order */
	__u16 qclass;
	__u8 do_bit;       /* 0 or 1 */
	__u8 pad[3];
};

struct hm_dns_xdp_answer {
	__s64 expiry;      /* wall-clock seconds: gone at this second */
	__u32 ttl;         /* served TTL ceiling (the decided TTL) */
	__u8 rcode;        /* 0..15 */
	__u8 flags;        /* HM_DNS_XDP_SECURE, HM_DNS_XDP_TOO_BIG */
	__u16 ancount, nscount;
	__u16 body_len;    /* bytes of body[] in use */
	__u16 body_csum;   /* 16-bit one's complement sum of body (TTLs 0), from an even offset */
	__u16 n_ttl;       /* TTL fields in body, at ttl_off[] */
	__u16 n_ttl_odd;   /* of them at odd offsets in body (for the checksum) */
	__u16 pad;
	__u16 ttl_off[HM_DNS_XDP_TTLS_MAX];
	__u8 body[HM_DNS_XDP_BODY_MAX];
};

/* hm_dns_config[0], set by the controller. */
struct hm_dns_xdp_config {
	__u16 port;            /* DNS UDP port, host order; 0: pass everything */
	__u16 pad0;
	__u32 rrl_rate;        /* answers a second per client prefix; 0: no limit */
	__u32 rrl_burst;       /* bucket depth in answers (0: rrl_rate) */
	__u32 rrl_slip;        /* every rrl_slip-th limited answer goes out TC'd; 0: drop all */
	__u8 rrl_prefix4;      /* client prefix length for IPv4 (RRL), e.g. 24 */
	__u8 rrl_prefix6;      /* and for IPv6, e.g. 56 */
	__u16 pad1;
	__s64 wall_offset_ns;  /* CLOCK_REALTIME - bpf_ktime_get_ns(), kept fresh by the controller */
};

/* hm_dns_stats[0], per CPU.  Every DNS-port datagram the program sees is
 * counted once in exactly one of hit, miss, expired, pass, rrl_dropped,
 * grow_failed; tc and rrl_slipped count the hits among them that went out
 * truncated (answer too long; rate limited). */
struct hm_dns_xdp_stats {
	__u64 hit;          /* answered from the map (XDP_TX) */
	__u64 miss;         /* a query we parse, not in the map: passed up */
	__u64 expired;      /* in the map, past its expiry: passed up */
	__u64 pass;         /* not ours to answer (malformed, other opcode, options, cookies, ...) */
	__u64 tc;           /* answered with TC: does not fit the client's buffer */
	__u64 rrl_dropped;  /* over the client prefix's rate: dropped */
	__u64 rrl_slipped;  /* over the rate: answered TC'd instead (slip) */
	__u64 grow_failed;  /* the frame could not grow to the answer: passed up */
	__u64 not_allowed;  /* client outside dns.allow: passed up, REFUSED there */
};

/* dns.allow in XDP (hm_dns_allow, an LPM trie): only a client some prefix
 * covers is answered here; any other query passes to the front end, which
 * refuses it (EDE 18), so the XDP path is no open resolver either.  IPv6
 * addresses as they are; an IPv4 client as ::ffff:a.b.c.d, its prefix
 * length + 96. */
#define HM_DNS_XDP_ALLOW_MAX 256

struct hm_dns_xdp_allow_key {
	__u32 prefixlen;
	__u8 addr[16];
};

/* hm_dns_rrl key: the client's prefix. */
struct hm_dns_xdp_prefix {
	__u32 family;          /* 4 or 6 */
	__u8 addr[16];         /* masked to the prefix length */
};

struct hm_dns_xdp_bucket {
	__u64 at_ns;
	__u64 nanotokens;      /* 1e9 per answer */
	__u64 limited;         /* answers over the rate so far (for slip) */
};

#endif /* HM_DNS_XDP_H */
