// SPDX-License-Identifier: MIT
/*
 * DNS messages with ldns: query parsing, replies, EDE, and the canonical
 * answer form (see dns_msg.h for its layout and what goes into it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>
#include <sodium.h>

#include "service/dns/dns_msg.h"

#define DNS_HDR_LEN 12
#define EDNS_OPT_EDE 15 /* RFC 8914 */
#define EDE_TEXT_MAX 200 /* keep EDE text short: it rides in every error reply */

/* ---- queries ---------------------------------------------------------------- */

const char *hm_dns_parse_rc_name(enum hm_dns_parse_rc rc)
{
	switch (rc) {
	case HM_DNS_PARSE_OK: return "ok";
	case HM_DNS_PARSE_DROP: return "drop";
	case HM_DNS_PARSE_FORMERR: return "formerr";
	case HM_DNS_PARSE_NOTIMP: return "notimp";
	case HM_DNS_PARSE_BADVERS: return "badvers";
	case HM_DNS_PARSE_REFUSED: return "refused";
	}
	return "?";
}

/* Query types a resolver does not forward: zone transfers and the obsolete
 * mailbox meta types (RFC 1035 3.2.3). */
static bool qtype_refused(uint16_t t)
{
	return t == LDNS_RR_TYPE_AXFR || t == LDNS_RR_TYPE_IXFR || t == LDNS_RR_TYPE_MAILB ||
	       t == LDNS_RR_TYPE_MAILA;
}

/* Meta-TYPEs (RFC 6895 3.1): they exist only inside a message (OPT, TKEY,
 * TSIG) or are reserved for that (128..248), so a question for one is a
 * format error (RFC 6891 6.1.1 for OPT, RFC 8945 for TSIG), as Unbound
 * answers it. */
static bool qtype_meta(uint16_t t)
{
	return t == LDNS_RR_TYPE_OPT || t == LDNS_RR_TYPE_TKEY || t == LDNS_RR_TYPE_TSIG ||
	       (t >= 128 && t <= 248);
}

/* The question of a parsed packet into q; -1 if it is not one usable name. */
static int take_question(const ldns_pkt *pkt, struct hm_dns_query *q)
{
	const ldns_rr *qrr;
	const ldns_rdf *owner;
	char *s;

	if (ldns_pkt_qdcount(pkt) != 1 || ldns_rr_list_rr_count(ldns_pkt_question(pkt)) != 1)
		return -1;
	qrr = ldns_rr_list_rr(ldns_pkt_question(pkt), 0);
	owner = ldns_rr_owner(qrr);
	if (!owner || ldns_rdf_get_type(owner) != LDNS_RDF_TYPE_DNAME || ldns_rdf_size(owner) == 0 ||
	    ldns_rdf_size(owner) > sizeof(q->qname))
		return -1;
	s = ldns_rdf2str(owner);
	if (!s)
		return -1;
	if (strlen(s) >= sizeof(q->name)) {
		free(s);
		return -1;
	}
	strcpy(q->name, s);
	free(s);
	memcpy(q->qname, ldns_rdf_data(owner), ldns_rdf_size(owner));
	q->qname_len = (uint8_t)ldns_rdf_size(owner);
	q->qtype = (uint16_t)ldns_rr_get_type(qrr);
	q->qclass = (uint16_t)ldns_rr_get_class(qrr);
	return 0;
}

size_t hm_dns_skip_name(const uint8_t *wire, size_t len, size_t pos)
{
	while (pos < len) {
		uint8_t l = wire[pos];

		if (l == 0)
			return pos + 1;
		if ((l & 0xc0) == 0xc0)
			return pos + 2 <= len ? pos + 2 : 0;
		if (l & 0xc0)
			return 0;
		pos += 1u + l;
	}
	return 0;
}

/* Past the name at wire[pos], requiring every compression pointer to point
 * backwards, to a name that came before it (RFC 1035 4.1.4: "a prior
 * occurrence").  libldns follows forward pointers; we refuse them so a
 * query means one thing.  Returns the offset after the name, 0 when it is
 * malformed or a pointer is not backwards. */
static size_t skip_name_strict(const uint8_t *wire, size_t len, size_t pos)
{
	while (pos < len) {
		uint8_t l = wire[pos];

		if (l == 0)
			return pos + 1;
		if ((l & 0xc0) == 0xc0) {
			size_t target;

			if (pos + 2 > len)
				return 0;
			target = (size_t)((l & 0x3f) << 8 | wire[pos + 1]);
			return target < pos ? pos + 2 : 0;
		}
		if (l & 0xc0)
			return 0;
		pos += 1u + l;
	}
	return 0;
}

/* The wire-level rules ldns does not enforce on a query: compression
 * pointers only backwards, at most one OPT record (RFC 6891 6.1.1), in
 * the additional section, with the root as its owner.  true if they hold
 * (or the message is too broken to tell: ldns refuses it then). */
static bool query_wire_ok(const uint8_t *wire, size_t len)
{
	size_t pos = DNS_HDR_LEN;
	unsigned counts[4], opts = 0;

	for (int i = 0; i < 4; i++)
		counts[i] = (unsigned)(wire[4 + 2 * i] << 8 | wire[5 + 2 * i]);
	for (unsigned i = 0; i < counts[0]; i++) {
		pos = skip_name_strict(wire, len, pos);
		if (!pos || (pos += 4) > len)
			return false;
	}
	for (unsigned i = 0; i < counts[1] + counts[2] + counts[3]; i++) {
		size_t owner = pos;
		bool additional = i >= counts[1] + counts[2];

		pos = skip_name_strict(wire, len, pos);
		if (!pos || pos + 10 > len)
			return false;
		if ((wire[pos] << 8 | wire[pos + 1]) == LDNS_RR_TYPE_OPT &&
		    (!additional || ++opts > 1 || pos != owner + 1 || wire[owner] != 0))
			return false;
		pos += 10u + (size_t)(wire[pos + 8] << 8 | wire[pos + 9]);
		if (pos > len)
			return false;
	}
	return true;
}

/* True when the message holds a TSIG record (type 250).  We speak no TSIG,
 * and libldns (1.8) leaks the records of a message with two of them when
 * it parses it: a client could grow our memory with each query. */
static bool has_tsig(const uint8_t *wire, size_t len)
{
	size_t pos = DNS_HDR_LEN;
	unsigned counts[4];

	if (len < DNS_HDR_LEN)
		return false;
	for (int i = 0; i < 4; i++)
		counts[i] = (unsigned)(wire[4 + 2 * i] << 8 | wire[5 + 2 * i]);
	for (unsigned i = 0; i < counts[0]; i++) {
		pos = hm_dns_skip_name(wire, len, pos);
		if (!pos || (pos += 4) > len)
			return false; /* malformed: ldns refuses it without a leak */
	}
	for (unsigned i = 0; i < counts[1] + counts[2] + counts[3]; i++) {
		pos = hm_dns_skip_name(wire, len, pos);
		if (!pos || pos + 10 > len)
			return false;
		if ((wire[pos] << 8 | wire[pos + 1]) == 250)
			return true;
		pos += 10u + (size_t)(wire[pos + 8] << 8 | wire[pos + 9]);
	}
	return false;
}

int hm_dns_wire2pkt(ldns_pkt **pkt, const uint8_t *wire, size_t len)
{
	*pkt = NULL;
	if (!wire || has_tsig(wire, len))
		return -1;
	if (ldns_wire2pkt(pkt, wire, len) != LDNS_STATUS_OK) {
		*pkt = NULL;
		return -1;
	}
	return 0;
}

enum hm_dns_parse_rc hm_dns_query_parse(const uint8_t *wire, size_t len, struct hm_dns_query *q)
{
	enum hm_dns_parse_rc rc = HM_DNS_PARSE_OK;
	ldns_pkt *pkt = NULL;

	memset(q, 0, sizeof(*q));
	q->udp_size = HM_DNS_UDP_MIN;
	q->max_size = HM_DNS_UDP_MIN;
	/* Without a whole header there is no id to answer to; a response
	 * (QR set) is never answered, or two servers could loop. */
	if (!wire || len < DNS_HDR_LEN || (wire[2] & 0x80))
		return HM_DNS_PARSE_DROP;
	q->id = (uint16_t)(wire[0] << 8 | wire[1]);
	/* != 0: <ldns/ldns.h> makes bool a signed char here, so a bare mask
	 * would store 16 and ldns would shift the CD bit out of the reply. */
	q->rd = (wire[2] & 0x01) != 0;
	q->cd = (wire[3] & 0x10) != 0;
	q->ad = (wire[3] & 0x20) != 0;
	q->opcode = (wire[2] >> 3) & 0x0f;
	if (q->opcode != LDNS_PACKET_QUERY)
		return HM_DNS_PARSE_NOTIMP;
	if (!query_wire_ok(wire, len) || hm_dns_wire2pkt(&pkt, wire, len) < 0)
		return HM_DNS_PARSE_FORMERR;
	/* ldns keeps whether an OPT record was seen only in the struct. */
	q->edns = pkt->_edns_present;
	if (q->edns) {
		q->do_bit = ldns_pkt_edns_do(pkt);
		q->udp_size = ldns_pkt_edns_udp_size(pkt);
		if (q->udp_size < HM_DNS_UDP_MIN)
			q->udp_size = HM_DNS_UDP_MIN;
	}
	q->max_size = hm_dns_udp_limit(q);
	if (take_question(pkt, q) < 0 || ldns_pkt_ancount(pkt) || ldns_pkt_nscount(pkt) ||
	    qtype_meta(q->qtype))
		rc = HM_DNS_PARSE_FORMERR;
	else if (q->edns && ldns_pkt_edns_version(pkt) != 0)
		rc = HM_DNS_PARSE_BADVERS;
	else if (qtype_refused(q->qtype) || q->qclass != LDNS_RR_CLASS_IN)
		rc = HM_DNS_PARSE_REFUSED;
	ldns_pkt_free(pkt);
	return rc;
}

uint16_t hm_dns_udp_limit(const struct hm_dns_query *q)
{
	if (!q->edns || q->udp_size < HM_DNS_UDP_MIN)
		return HM_DNS_UDP_MIN;
	return q->udp_size > HM_DNS_UDP_MAX ? HM_DNS_UDP_MAX : q->udp_size;
}

/* ---- reply skeletons ----------------------------------------------------------- */

/* A reply packet to q with its header and (when q has one) question. */
static ldns_pkt *reply_skeleton(const struct hm_dns_query *q, int rcode)
{
	ldns_pkt *pkt = ldns_pkt_new();
	ldns_rdf *owner = NULL;
	ldns_rr *qrr;
	size_t pos = 0;

	if (!pkt)
		return NULL;
	ldns_pkt_set_id(pkt, q->id);
	ldns_pkt_set_qr(pkt, true);
	ldns_pkt_set_opcode(pkt, (ldns_pkt_opcode)q->opcode);
	ldns_pkt_set_rd(pkt, q->rd);
	ldns_pkt_set_cd(pkt, q->cd);
	ldns_pkt_set_ra(pkt, true);
	ldns_pkt_set_rcode(pkt, (uint8_t)(rcode & 0x0f));
	if (q->qname_len) {
		qrr = ldns_rr_new();
		if (!qrr || ldns_wire2dname(&owner, q->qname, q->qname_len, &pos) != LDNS_STATUS_OK) {
			ldns_rr_free(qrr);
			ldns_pkt_free(pkt);
			return NULL;
		}
		ldns_rr_set_owner(qrr, owner);
		ldns_rr_set_type(qrr, q->qtype);
		ldns_rr_set_class(qrr, q->qclass);
		ldns_rr_set_question(qrr, true);
		ldns_pkt_push_rr(pkt, LDNS_SECTION_QUESTION, qrr);
	}
	if (q->edns) {
		ldns_pkt_set_edns_udp_size(pkt, HM_DNS_UDP_MAX);
		ldns_pkt_set_edns_do(pkt, q->do_bit);
		ldns_pkt_set_edns_extended_rcode(pkt, (uint8_t)(rcode >> 4));
		/* Force the OPT record even with nothing else to say. */
		pkt->_edns_present = 1;
	}
	return pkt;
}

/* Attach an EDE option (info code, optional text) to pkt. */
static int add_ede(ldns_pkt *pkt, int code, const char *text)
{
	uint8_t data[2 + EDE_TEXT_MAX];
	size_t tlen = text ? strnlen(text, EDE_TEXT_MAX) : 0;
	ldns_edns_option_list *list;
	ldns_edns_option *opt;

	data[0] = (uint8_t)(code >> 8);
	data[1] = (uint8_t)code;
	if (tlen)
		memcpy(data + 2, text, tlen);
	list = ldns_edns_option_list_new();
	opt = ldns_edns_new_from_data((ldns_edns_option_code)EDNS_OPT_EDE, 2 + tlen, data);
	if (!list || !opt || !ldns_edns_option_list_push(list, opt)) {
		ldns_edns_deep_free(opt);
		ldns_edns_option_list_deep_free(list);
		return -1;
	}
	ldns_pkt_set_edns_option_list(pkt, list);
	return 0;
}

/* Serialise pkt into out; 0 when it fails or does not fit. */
static size_t pkt_out(ldns_pkt *pkt, uint8_t *out, size_t cap)
{
	uint8_t *wire = NULL;
	size_t n = 0;

	if (ldns_pkt2wire(&wire, pkt, &n) != LDNS_STATUS_OK || n > cap)
		n = 0;
	else
		memcpy(out, wire, n);
	free(wire);
	return n;
}

size_t hm_dns_error_reply(const struct hm_dns_query *q, int rcode, int ede, const char *text,
			  uint8_t *out, size_t cap)
{
	ldns_pkt *pkt = reply_skeleton(q, rcode);
	size_t n = 0;

	if (!pkt)
		return 0;
	if (ede < 0 || !q->edns || add_ede(pkt, ede, text) == 0)
		n = pkt_out(pkt, out, cap);
	ldns_pkt_free(pkt);
	return n;
}

/* ---- the canonical answer ---------------------------------------------------- */

struct canon_rr {
	ldns_rr *rr;     /* canonicalised clone, TTL 0 */
	uint8_t *wire;   /* its canonical wire form */
	size_t len;
	size_t rdata_off;
};

static void canon_rrs_free(struct canon_rr *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		ldns_rr_free(v[i].rr);
		free(v[i].wire);
	}
	free(v);
}

/* RFC 4034 6.1 name order, then type, class, then RDATA octets (6.3). */
static int canon_rr_cmp(const void *pa, const void *pb)
{
	const struct canon_rr *a = pa, *b = pb;
	size_t la = a->len - a->rdata_off, lb = b->len - b->rdata_off;
	int c = ldns_dname_compare(ldns_rr_owner(a->rr), ldns_rr_owner(b->rr));
	uint16_t ta = (uint16_t)ldns_rr_get_type(a->rr), tb = (uint16_t)ldns_rr_get_type(b->rr);
	uint16_t ca = (uint16_t)ldns_rr_get_class(a->rr), cb = (uint16_t)ldns_rr_get_class(b->rr);

	if (c)
		return c < 0 ? -1 : 1;
	if (ta != tb)
		return ta < tb ? -1 : 1;
	if (ca != cb)
		return ca < cb ? -1 : 1;
	c = memcmp(a->wire + a->rdata_off, b->wire + b->rdata_off, la < lb ? la : lb);
	if (c)
		return c;
	return la < lb ? -1 : la > lb;
}

/* One record in canonical form: clone, lower-case, TTL 0, to wire. */
static int canon_rr_make(const ldns_rr *src, struct canon_rr *out)
{
	ldns_buffer *buf = ldns_buffer_new(512);
	int rc = -1;

	memset(out, 0, sizeof(*out));
	out->rr = ldns_rr_clone(src);
	if (!buf || !out->rr || !ldns_rr_owner(out->rr))
		goto done;
	ldns_rr2canonical(out->rr);
	ldns_rr_set_ttl(out->rr, 0);
	if (ldns_rr2buffer_wire_canonical(buf, out->rr, LDNS_SECTION_ANSWER) != LDNS_STATUS_OK)
		goto done;
	out->len = ldns_buffer_position(buf);
	out->rdata_off = ldns_rdf_size(ldns_rr_owner(out->rr)) + 10;
	if (out->len < out->rdata_off)
		goto done;
	out->wire = malloc(out->len);
	if (!out->wire)
		goto done;
	memcpy(out->wire, ldns_buffer_begin(buf), out->len);
	rc = 0;
done:
	ldns_buffer_free(buf);
	return rc;
}

static bool proof_type(ldns_rr_type t)
{
	return t == LDNS_RR_TYPE_SOA || t == LDNS_RR_TYPE_NSEC || t == LDNS_RR_TYPE_NSEC3;
}

/* Which authority records a validator downstream needs: the SOA and the
 * NSEC/NSEC3 records that prove a negative answer, and for a positive
 * answer synthesised from a wildcard the NSEC/NSEC3 proving the name did
 * not exist (RFC 4035 5.3.4), each with the RRSIGs over them.  NS records
 * and their RRSIGs vary with caches and are never served. */
static bool authority_proof(const ldns_rr *rr)
{
	ldns_rr_type t = ldns_rr_get_type(rr);

	if (t == LDNS_RR_TYPE_RRSIG) {
		const ldns_rdf *covered = ldns_rr_rrsig_typecovered(rr);

		return covered && ldns_rdf_size(covered) == 2 &&
		       proof_type(ldns_rdf2rr_type(covered));
	}
	return proof_type(t);
}


/* A section's records in canonical form, sorted, duplicates dropped.  When
 * proof_only, only the records authority_proof() accepts. */
static int canon_section(const ldns_rr_list *list, bool proof_only, struct canon_rr **out,
			 size_t *count)
{
	size_t n = list ? ldns_rr_list_rr_count(list) : 0, k = 0, w;
	struct canon_rr *v = calloc(n ? n : 1, sizeof(*v));

	if (!v)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const ldns_rr *rr = ldns_rr_list_rr(list, i);

		if (proof_only && !authority_proof(rr))
			continue;
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_OPT)
			continue;
		if (canon_rr_make(rr, &v[k]) < 0) {
			canon_rrs_free(v, k + 1);
			return -1;
		}
		k++;
	}
	qsort(v, k, sizeof(*v), canon_rr_cmp);
	for (size_t i = w = 0; i < k; i++) {
		if (w > 0 && canon_rr_cmp(&v[w - 1], &v[i]) == 0) {
			ldns_rr_free(v[i].rr);
			free(v[i].wire);
			continue;
		}
		v[w++] = v[i];
	}
	*out = v;
	*count = w;
	return 0;
}

static size_t put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

/* Serialise the canon from its parts (qname already in wire form). */
static uint8_t *canon_encode(const ldns_rdf *qname, uint16_t qtype, uint16_t qclass, uint8_t rcode,
			     uint8_t flags, const ldns_rr_list *an, const ldns_rr_list *ns,
			     size_t *len)
{
	struct canon_rr *va = NULL, *vn = NULL;
	size_t na = 0, nn = 0, total, pos = 0;
	ldns_rdf *lname = ldns_rdf_clone(qname);
	uint8_t *buf = NULL;

	if (!lname || canon_section(an, false, &va, &na) < 0)
		goto done;
	if (canon_section(ns, true, &vn, &nn) < 0)
		goto done;
	ldns_dname2canonical(lname);
	total = 1 + ldns_rdf_size(lname) + 4 + 2 + 4;
	for (size_t i = 0; i < na; i++)
		total += va[i].len;
	for (size_t i = 0; i < nn; i++)
		total += vn[i].len;
	if (total > HM_DNS_CANON_MAX || na > 0xffff || nn > 0xffff)
		goto done;
	buf = malloc(total);
	if (!buf)
		goto done;
	buf[pos++] = HM_DNS_CANON_VERSION;
	memcpy(buf + pos, ldns_rdf_data(lname), ldns_rdf_size(lname));
	pos += ldns_rdf_size(lname);
	pos += put16(buf + pos, qtype);
	pos += put16(buf + pos, qclass);
	buf[pos++] = rcode;
	buf[pos++] = flags;
	pos += put16(buf + pos, (uint16_t)na);
	pos += put16(buf + pos, (uint16_t)nn);
	for (size_t i = 0; i < na; i++) {
		memcpy(buf + pos, va[i].wire, va[i].len);
		pos += va[i].len;
	}
	for (size_t i = 0; i < nn; i++) {
		memcpy(buf + pos, vn[i].wire, vn[i].len);
		pos += vn[i].len;
	}
	*len = pos;
done:
	if (va)
		canon_rrs_free(va, na);
	if (vn)
		canon_rrs_free(vn, nn);
	ldns_rdf_deep_free(lname);
	return buf;
}

uint8_t *hm_dns_canon_from_reply(const struct hm_dns_query *q, const uint8_t *reply,
				 size_t reply_len, bool secure, size_t *len)
{
	ldns_pkt *pkt = NULL;
	ldns_rdf *qname = NULL;
	uint8_t *out = NULL;
	size_t pos = 0;

	if (!q->qname_len || ldns_wire2dname(&qname, q->qname, q->qname_len, &pos) != LDNS_STATUS_OK)
		return NULL;
	if (hm_dns_wire2pkt(&pkt, reply, reply_len) < 0)
		goto done;
	/* The reply must be for this question (when it carries one). */
	if (ldns_rr_list_rr_count(ldns_pkt_question(pkt)) > 0) {
		const ldns_rr *qrr = ldns_rr_list_rr(ldns_pkt_question(pkt), 0);

		if (ldns_dname_compare(ldns_rr_owner(qrr), qname) != 0 ||
		    (uint16_t)ldns_rr_get_type(qrr) != q->qtype)
			goto done;
	}
	out = canon_encode(qname, q->qtype, q->qclass, (uint8_t)ldns_pkt_get_rcode(pkt),
			   secure ? HM_DNS_CANON_SECURE : 0, ldns_pkt_answer(pkt),
			   ldns_pkt_authority(pkt), len);
done:
	ldns_pkt_free(pkt);
	ldns_rdf_deep_free(qname);
	return out;
}

/* A parsed canon. */
struct canon {
	ldns_rdf *qname;
	uint16_t qtype, qclass;
	uint8_t rcode, flags;
	ldns_rr_list *an, *ns;
};

static void canon_free(struct canon *c)
{
	ldns_rdf_deep_free(c->qname);
	ldns_rr_list_deep_free(c->an);
	ldns_rr_list_deep_free(c->ns);
}

static uint16_t get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

/* Parse without the canonicality check (canon_parse adds it). */
static int canon_parse_raw(const uint8_t *buf, size_t len, struct canon *c)
{
	size_t pos = 1;
	uint16_t na, nn;

	memset(c, 0, sizeof(*c));
	if (!buf || len < 1 || buf[0] != HM_DNS_CANON_VERSION || len > HM_DNS_CANON_MAX)
		return -1;
	if (ldns_wire2dname(&c->qname, buf, len, &pos) != LDNS_STATUS_OK || len - pos < 10)
		return -1;
	c->qtype = get16(buf + pos);
	c->qclass = get16(buf + pos + 2);
	c->rcode = buf[pos + 4];
	c->flags = buf[pos + 5];
	na = get16(buf + pos + 6);
	nn = get16(buf + pos + 8);
	pos += 10;
	c->an = ldns_rr_list_new();
	c->ns = ldns_rr_list_new();
	if (!c->an || !c->ns)
		return -1;
	for (uint32_t i = 0; i < (uint32_t)na + nn; i++) {
		ldns_rr *rr = NULL;

		if (ldns_wire2rr(&rr, buf, len, &pos, LDNS_SECTION_ANSWER) != LDNS_STATUS_OK)
			return -1;
		if (!ldns_rr_list_push_rr(i < na ? c->an : c->ns, rr)) {
			ldns_rr_free(rr);
			return -1;
		}
	}
	return pos == len ? 0 : -1;
}

/* Parse and insist on canonical bytes: re-encoding must give buf back, which
 * rules out compression, upper case, TTLs, disorder, duplicates, unknown
 * flags, trailing bytes and a non-empty authority beside answers. */
static int canon_parse(const uint8_t *buf, size_t len, struct canon *c)
{
	uint8_t *again;
	size_t alen = 0;
	int rc = -1;

	if (canon_parse_raw(buf, len, c) < 0)
		goto fail;
	if (c->flags & ~HM_DNS_CANON_SECURE || c->rcode > 15)
		goto fail;
	again = canon_encode(c->qname, c->qtype, c->qclass, c->rcode, c->flags, c->an, c->ns, &alen);
	if (again && alen == len && memcmp(again, buf, len) == 0)
		rc = 0;
	free(again);
	if (rc == 0)
		return 0;
fail:
	canon_free(c);
	memset(c, 0, sizeof(*c));
	return -1;
}

int hm_dns_canon_check(const uint8_t *buf, size_t len)
{
	struct canon c;

	if (canon_parse(buf, len, &c) < 0)
		return -1;
	canon_free(&c);
	return 0;
}

int hm_dns_canon_info(const uint8_t *buf, size_t len, struct hm_dns_canon_info *info)
{
	struct canon c;
	char *s;
	int rc = -1;

	memset(info, 0, sizeof(*info));
	if (canon_parse(buf, len, &c) < 0)
		return -1;
	s = ldns_rdf2str(c.qname);
	if (s && strlen(s) < sizeof(info->name)) {
		strcpy(info->name, s);
		info->qtype = c.qtype;
		info->qclass = c.qclass;
		info->rcode = c.rcode;
		info->flags = c.flags;
		info->ancount = (uint16_t)ldns_rr_list_rr_count(c.an);
		info->nscount = (uint16_t)ldns_rr_list_rr_count(c.ns);
		rc = 0;
	}
	free(s);
	canon_free(&c);
	return rc;
}

void hm_dns_canon_digest(const uint8_t *buf, size_t len, uint8_t out[HM_DIGEST_LEN])
{
	static const char domain[] = "hypermesh dns canon v1";
	crypto_generichash_state st;

	/* Domain separation: a canon digest is never a valid digest of
	 * anything else the cluster signs. */
	crypto_generichash_init(&st, NULL, 0, HM_DIGEST_LEN);
	crypto_generichash_update(&st, (const uint8_t *)domain, sizeof(domain));
	crypto_generichash_update(&st, buf, len);
	crypto_generichash_final(&st, out, HM_DIGEST_LEN);
}

bool hm_dns_canon_matches(const uint8_t *buf, size_t len, const struct hm_dns_query *q)
{
	struct canon c;
	ldns_rdf *qname = NULL;
	size_t pos = 0;
	bool ok;

	if (canon_parse(buf, len, &c) < 0)
		return false;
	ok = q->qname_len && ldns_wire2dname(&qname, q->qname, q->qname_len, &pos) == LDNS_STATUS_OK &&
	     ldns_dname_compare(qname, c.qname) == 0 && c.qtype == q->qtype && c.qclass == q->qclass;
	ldns_rdf_deep_free(qname);
	canon_free(&c);
	return ok;
}

int hm_dns_canon_sections(const uint8_t *buf, size_t len, ldns_rr_list **answer,
			  ldns_rr_list **authority)
{
	struct canon c;

	if (canon_parse(buf, len, &c) < 0)
		return -1;
	*answer = c.an;
	*authority = c.ns;
	ldns_rdf_deep_free(c.qname);
	return 0;
}

/* ---- replies from a canon ------------------------------------------------------ */

static bool dnssec_type(ldns_rr_type t)
{
	return t == LDNS_RR_TYPE_RRSIG || t == LDNS_RR_TYPE_NSEC || t == LDNS_RR_TYPE_NSEC3;
}

/* Copy list's records into pkt's section with TTL ttl, leaving out DNSSEC
 * records the client did not ask for (RFC 4035 3.2.1). */
static int push_section(ldns_pkt *pkt, ldns_pkt_section sec, const ldns_rr_list *list,
			const struct hm_dns_query *q, uint32_t ttl)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(list); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(list, i);
		ldns_rr *copy;

		if (!q->do_bit && dnssec_type(ldns_rr_get_type(rr)) &&
		    (uint16_t)ldns_rr_get_type(rr) != q->qtype && q->qtype != LDNS_RR_TYPE_ANY)
			continue;
		copy = ldns_rr_clone(rr);
		if (!copy)
			return -1;
		ldns_rr_set_ttl(copy, ttl);
		ldns_pkt_push_rr(pkt, sec, copy);
	}
	return 0;
}

size_t hm_dns_reply_build(const struct hm_dns_query *q, const uint8_t *canon, size_t canon_len,
			  uint32_t ttl, size_t max_size, uint8_t *out, size_t cap)
{
	return hm_dns_reply_build_ede(q, canon, canon_len, ttl, max_size, -1, NULL, out, cap);
}

size_t hm_dns_reply_build_ede(const struct hm_dns_query *q, const uint8_t *canon,
			      size_t canon_len, uint32_t ttl, size_t max_size, int ede,
			      const char *text, uint8_t *out, size_t cap)
{
	struct canon c;
	ldns_pkt *pkt;
	size_t n = 0;

	if (canon_parse(canon, canon_len, &c) < 0)
		return 0;
	pkt = reply_skeleton(q, c.rcode);
	if (!pkt)
		goto done;
	ldns_pkt_set_ad(pkt, (c.flags & HM_DNS_CANON_SECURE) && (q->do_bit || q->ad));
	if (push_section(pkt, LDNS_SECTION_ANSWER, c.an, q, ttl) < 0 ||
	    push_section(pkt, LDNS_SECTION_AUTHORITY, c.ns, q, ttl) < 0)
		goto done;
	if (ede >= 0 && q->edns && add_ede(pkt, ede, text) < 0)
		goto done;
	n = pkt_out(pkt, out, cap < max_size ? cap : max_size);
	if (n == 0) {
		/* Too long for this transport: the question alone, with TC, so
		 * the client retries over TCP (RFC 7766 section 5). */
		ldns_pkt_free(pkt);
		pkt = reply_skeleton(q, c.rcode);
		if (!pkt)
			goto done;
		ldns_pkt_set_tc(pkt, true);
		if (ede >= 0 && q->edns && add_ede(pkt, ede, text) < 0)
			goto done;
		n = pkt_out(pkt, out, cap < max_size ? cap : max_size);
	}
done:
	ldns_pkt_free(pkt);
	canon_free(&c);
	return n;
}

/* The smallest TTL of list's records that the canon keeps (all of them,
 * or only the proof when proof_only), below min. */
static uint32_t list_min_ttl(const ldns_rr_list *l, bool proof_only, uint32_t min)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(l, i);
		uint32_t t = ldns_rr_ttl(rr);

		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_OPT || (proof_only && !authority_proof(rr)))
			continue;
		/* RFC 2308 5: a negative answer lives min(SOA TTL, MINIMUM). */
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && ldns_rr_rd_count(rr) == 7) {
			uint32_t m = ldns_rdf2native_int32(ldns_rr_rdf(rr, 6));

			if (m < t)
				t = m;
		}
		if (t < min)
			min = t;
	}
	return min;
}

uint32_t hm_dns_reply_min_ttl(const uint8_t *reply, size_t reply_len)
{
	ldns_pkt *pkt = NULL;
	uint32_t min;

	if (hm_dns_wire2pkt(&pkt, reply, reply_len) < 0)
		return 0;
	/* The records the canon keeps: the answer section and the
	 * authority section's proof (a denial, or a wildcard's NSEC). */
	min = list_min_ttl(ldns_pkt_answer(pkt), false, UINT32_MAX);
	min = list_min_ttl(ldns_pkt_authority(pkt), true, min);
	ldns_pkt_free(pkt);
	return min;
}

char *hm_dns_canon_to_text(const uint8_t *buf, size_t len)
{
	struct canon c;
	ldns_buffer *b;
	char *s = NULL;

	if (canon_parse(buf, len, &c) < 0)
		return NULL;
	b = ldns_buffer_new(1024);
	if (b) {
		ldns_buffer_printf(b, ";; question ");
		ldns_rdf2buffer_str(b, c.qname);
		ldns_lookup_table *rc = ldns_lookup_by_id(ldns_rcodes, c.rcode);

		ldns_buffer_printf(b, " type %u class %u rcode %s%s\n", c.qtype, c.qclass,
				   rc ? rc->name : "?",
				   c.flags & HM_DNS_CANON_SECURE ? " secure" : "");
		ldns_rr_list2buffer_str(b, c.an);
		if (ldns_rr_list_rr_count(c.ns)) {
			ldns_buffer_printf(b, ";; authority\n");
			ldns_rr_list2buffer_str(b, c.ns);
		}
		s = ldns_buffer_export2str(b);
		ldns_buffer_free(b);
	}
	canon_free(&c);
	return s;
}
