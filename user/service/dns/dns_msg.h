/* SPDX-License-Identifier: MIT */
/*
 * DNS messages (ldns): parsing client queries, building replies (EDNS0,
 * truncation, Extended DNS Errors) and the canonical form of an answer that
 * replicas compare and sign.
 *
 * The canonical answer ("canon") is a self-contained byte string:
 *
 *   u8  version (HM_DNS_CANON_VERSION)
 *   qname in wire form, lower case; u16 qtype; u16 qclass
 *   u8  rcode (NOERROR, NXDOMAIN, ...); u8 flags (HM_DNS_CANON_SECURE)
 *   u16 answer count; u16 authority count
 *   the RRs of the answer section, then those of the authority section,
 *   each in RFC 4034 section 6.2 canonical wire form (owner and the names in
 *   the RDATA of the listed types in lower case, no compression) with the
 *   TTL set to 0; inside a section sorted by owner (canonical name order,
 *   RFC 4034 6.1), type, class, then RDATA as left-justified octets (6.3),
 *   duplicates removed (RFC 2181 5: an RRset has none).
 *
 * What goes in: every record of the answer section; of the authority
 * section only the proof a validator downstream needs: SOA, NSEC and NSEC3
 * and the RRSIGs over them (a denial's proof, or for a wildcard answer the
 * proof that the name did not exist, RFC 4035 5.3.4), because the NS
 * records an authoritative server adds to a positive answer vary with
 * caches and are not served.  The additional section and OPT are never in it.  Two replicas
 * that observed the same RRsets produce the same bytes, whatever the order,
 * case, TTLs and name compression of their upstreams' replies.  A reply for
 * a client is built from the canon alone, so a replica can serve an answer
 * it did not observe itself.
 *
 * All functions are safe on arbitrary input: bad bytes give an error.
 */
#ifndef HM_DNS_MSG_H
#define HM_DNS_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "hm_wire.h"

struct ldns_struct_pkt;

/* ldns_wire2pkt for bytes from the network: 0, or -1 (then *pkt is NULL)
 * for what does not parse and for messages with a TSIG record, which we
 * do not speak and which make libldns leak. */
int hm_dns_wire2pkt(struct ldns_struct_pkt **pkt, const uint8_t *wire, size_t len);

/* Past the name at wire[pos]: its labels or a compression pointer end it.
 * The offset after it, or 0 when it runs off the end. */
size_t hm_dns_skip_name(const uint8_t *wire, size_t len, size_t pos);

#define HM_DNS_CANON_VERSION 1
#define HM_DNS_CANON_SECURE 0x01 /* validated: the reply gets AD */
#define HM_DNS_CANON_MAX 65535   /* a canon never exceeds a DNS message */

#define HM_DNS_NAME_MAX 1025 /* presentation form incl. NUL (\DDD escapes) */
#define HM_DNS_UDP_MIN 512   /* RFC 1035 */
#define HM_DNS_UDP_MAX 1232  /* our ceiling (DNS flag day 2020) */

/* DNS RCODEs we emit (RFC 1035, 6891). */
enum {
	HM_DNS_NOERROR = 0,
	HM_DNS_FORMERR = 1,
	HM_DNS_SERVFAIL = 2,
	HM_DNS_NXDOMAIN = 3,
	HM_DNS_NOTIMP = 4,
	HM_DNS_REFUSED = 5,
	HM_DNS_BADVERS = 16, /* extended: needs EDNS */
};

/* Extended DNS Error INFO-CODEs (RFC 8914 section 4) used here. */
enum hm_dns_ede {
	HM_EDE_OTHER = 0,
	HM_EDE_STALE_ANSWER = 3,
	HM_EDE_DNSSEC_BOGUS = 6,
	HM_EDE_SIG_EXPIRED = 7,
	HM_EDE_SIG_NOT_YET_VALID = 8,
	HM_EDE_DNSKEY_MISSING = 9,
	HM_EDE_RRSIGS_MISSING = 10,
	HM_EDE_NSEC_MISSING = 12,
	HM_EDE_NOT_READY = 14,
	HM_EDE_PROHIBITED = 18,        /* refused by the access list */
	HM_EDE_NOT_AUTHORITATIVE = 20, /* RD=0 and not in the cache (RFC 8914 4.21) */
	HM_EDE_NO_REACHABLE_AUTHORITY = 22,
	HM_EDE_NETWORK_ERROR = 23,
};

/* A client's query, as the front end hands it on. */
struct hm_dns_query {
	uint16_t id;
	uint8_t opcode;       /* echoed in replies (NOTIMP answers other opcodes) */
	uint16_t qtype, qclass;
	bool rd, cd, ad;      /* header bits the reply echoes or honours */
	bool edns;            /* an OPT record was present */
	bool do_bit;          /* DNSSEC OK */
	uint16_t udp_size;    /* the client's EDNS UDP size (512 without EDNS) */
	uint16_t max_size;    /* largest reply for this transport (set by the front end) */
	char name[HM_DNS_NAME_MAX]; /* presentation form, absolute ("example.org.") */
	uint8_t qname[256];   /* wire form, as received (case kept) */
	uint8_t qname_len;
};

enum hm_dns_parse_rc {
	HM_DNS_PARSE_OK = 0,
	HM_DNS_PARSE_DROP,    /* too short for a header, or a response: no reply */
	HM_DNS_PARSE_FORMERR, /* reply FORMERR (hm_dns_error_reply): also two OPTs, an OPT
			       * not owned by the root, a forward compression pointer,
			       * a question for a meta-TYPE (OPT, TSIG, TKEY, 128..248) */
	HM_DNS_PARSE_NOTIMP,  /* an opcode other than QUERY */
	HM_DNS_PARSE_BADVERS, /* EDNS version > 0 */
	HM_DNS_PARSE_REFUSED, /* well formed, but a qtype we do not serve (AXFR, ...) */
};

/* Parse a query from the wire.  On anything but HM_DNS_PARSE_OK and _DROP
 * the fields needed for an error reply (id, rd, and as far as parsed the
 * question and EDNS) are filled in. */
enum hm_dns_parse_rc hm_dns_query_parse(const uint8_t *wire, size_t len, struct hm_dns_query *q);
const char *hm_dns_parse_rc_name(enum hm_dns_parse_rc rc);

/* The UDP reply size limit for a query: 512 without EDNS, otherwise the
 * client's size clamped to [512, HM_DNS_UDP_MAX]. */
uint16_t hm_dns_udp_limit(const struct hm_dns_query *q);

/* An error reply (FORMERR, SERVFAIL, REFUSED, ...) to q, with an EDE option
 * when ede >= 0 and the client used EDNS (text may be NULL).  Returns the
 * length written to out, 0 if it does not fit. */
size_t hm_dns_error_reply(const struct hm_dns_query *q, int rcode, int ede, const char *text,
			  uint8_t *out, size_t cap);

/* The canonical answer from an upstream reply in wire form (what libunbound
 * returns): the question is taken from q (name and type), rcode and records
 * from the reply.  Returns a malloc'd canon and its length in *len, or NULL
 * (malformed reply, or no memory). */
uint8_t *hm_dns_canon_from_reply(const struct hm_dns_query *q, const uint8_t *reply,
				 size_t reply_len, bool secure, size_t *len);

/* Check that buf is a well-formed canon: parses, sorted, no duplicates,
 * TTLs 0, and re-encodes to the same bytes.  0 if so, -1 otherwise. */
int hm_dns_canon_check(const uint8_t *buf, size_t len);

/* Fields of a (checked) canon. */
struct hm_dns_canon_info {
	uint16_t qtype, qclass;
	uint8_t rcode, flags;
	uint16_t ancount, nscount;
	char name[HM_DNS_NAME_MAX];
};
int hm_dns_canon_info(const uint8_t *buf, size_t len, struct hm_dns_canon_info *info);

/* BLAKE2b-256 over the canon: what replicas vote on and certificates sign. */
void hm_dns_canon_digest(const uint8_t *buf, size_t len, uint8_t out[HM_DIGEST_LEN]);

/* True if the canon answers the question q asks (same name, ignoring case,
 * same type and class). */
bool hm_dns_canon_matches(const uint8_t *buf, size_t len, const struct hm_dns_query *q);

/* The reply to q from an agreed canon: every TTL set to ttl (the caller's
 * min(observed TTL, configured maximum)), AD when the canon is secure and
 * the client asked with DO or AD, DNSSEC records only for DO clients (or
 * when asked for by type), OPT echoed for EDNS clients.  When the reply is
 * longer than max_size it is replaced by a header-and-question reply with
 * TC set (RFC 1035 4.2.1, RFC 7766 section 5).  Returns the length written
 * to out, 0 on a malformed canon or when even that does not fit. */
size_t hm_dns_reply_build(const struct hm_dns_query *q, const uint8_t *canon, size_t canon_len,
			  uint32_t ttl, size_t max_size, uint8_t *out, size_t cap);

/* hm_dns_reply_build with an EDE option (code ede, text may be NULL) for
 * EDNS clients, e.g. EDE 3 (Stale Answer, RFC 8767) on a served-expired
 * answer; ede < 0: none. */
size_t hm_dns_reply_build_ede(const struct hm_dns_query *q, const uint8_t *canon,
			      size_t canon_len, uint32_t ttl, size_t max_size, int ede,
			      const char *text, uint8_t *out, size_t cap);

/* The smallest TTL among the records of an upstream reply that its canon
 * keeps: the answer section and the authority section's proof (the SOA
 * capped by its MINIMUM, RFC 2308 5, NSEC/NSEC3 and their RRSIGs);
 * UINT32_MAX when there are none; 0 on a malformed reply. */
uint32_t hm_dns_reply_min_ttl(const uint8_t *reply, size_t reply_len);

/* The answer and authority records of a canon as ldns lists (for DNSSEC
 * checks; ldns_rr_list_deep_free them).  0, or -1 if buf is not a canon. */
struct ldns_struct_rr_list;
int hm_dns_canon_sections(const uint8_t *buf, size_t len, struct ldns_struct_rr_list **answer,
			  struct ldns_struct_rr_list **authority);

/* The canon as text, one record a line (for logs, tests and hmctl). */
char *hm_dns_canon_to_text(const uint8_t *buf, size_t len);

#endif /* HM_DNS_MSG_H */
