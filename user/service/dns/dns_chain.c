// SPDX-License-Identifier: MIT
/*
 * DNSSEC chains for rule (a) of the DNS agreement (see dns_chain.h): a
 * deterministic verifier over (canon, chain, anchors, time) with ldns, and
 * the collector that fetches the chain through the replica's resolver.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ldns/ldns.h>
#include <sodium.h>

#include "service/dns/dns_chain.h"
#include "service/dns/dns_msg.h"
#include "common/log.h"
#include "common/sig_memo.h"

#define DNSKEY_ZONE_FLAG 0x0100
#define DNSKEY_REVOKE_FLAG 0x0080 /* RFC 5011: never validate with it */
#define COLLECT_MAX_LOOKUPS 64

struct hm_dns_anchors {
	ldns_rr_list *rrs; /* DS and DNSKEY records */
};

/* ---- anchors ------------------------------------------------------------------ */

static int anchor_push(struct hm_dns_anchors *a, ldns_rr *rr)
{
	ldns_rr_type t = ldns_rr_get_type(rr);

	if ((t != LDNS_RR_TYPE_DS && t != LDNS_RR_TYPE_DNSKEY) || !ldns_rr_list_push_rr(a->rrs, rr)) {
		ldns_rr_free(rr);
		return -1;
	}
	return 0;
}

static int anchors_read_file(struct hm_dns_anchors *a, const char *file, char *err, size_t errlen)
{
	FILE *f = fopen(file, "r");
	ldns_rdf *origin = NULL, *prev = NULL;
	uint32_t ttl = 3600;
	int line = 1, rc = 0;

	if (!f) {
		hm_set_err(err, errlen, "%s: cannot open", file);
		return -1;
	}
	while (rc == 0 && !feof(f)) {
		ldns_rr *rr = NULL;
		ldns_status s = ldns_rr_new_frm_fp_l(&rr, f, &ttl, &origin, &prev, &line);

		if (s == LDNS_STATUS_SYNTAX_EMPTY || s == LDNS_STATUS_SYNTAX_TTL ||
		    s == LDNS_STATUS_SYNTAX_ORIGIN || (s != LDNS_STATUS_OK && feof(f)))
			continue;
		if (s != LDNS_STATUS_OK || anchor_push(a, rr) < 0) {
			hm_set_err(err, errlen, "%s:%d: not a DS or DNSKEY record", file, line);
			rc = -1;
		}
	}
	ldns_rdf_deep_free(origin);
	ldns_rdf_deep_free(prev);
	fclose(f);
	return rc;
}

struct hm_dns_anchors *hm_dns_anchors_new(const char *const *texts, size_t n, const char *file,
					  char *err, size_t errlen)
{
	struct hm_dns_anchors *a = calloc(1, sizeof(*a));

	if (!a || !(a->rrs = ldns_rr_list_new()))
		goto fail;
	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = NULL;

		if (ldns_rr_new_frm_str(&rr, texts[i], 3600, NULL, NULL) != LDNS_STATUS_OK ||
		    anchor_push(a, rr) < 0) {
			hm_set_err(err, errlen, "trust anchor %zu: not a DS or DNSKEY record", i);
			goto fail;
		}
	}
	if (file && anchors_read_file(a, file, err, errlen) < 0)
		goto fail;
	if (ldns_rr_list_rr_count(a->rrs) == 0) {
		hm_set_err(err, errlen, "no trust anchors");
		goto fail;
	}
	return a;
fail:
	hm_dns_anchors_free(a);
	return NULL;
}

void hm_dns_anchors_free(struct hm_dns_anchors *a)
{
	if (!a)
		return;
	ldns_rr_list_deep_free(a->rrs);
	free(a);
}

static bool is_anchor_zone(const struct hm_dns_anchors *a, const ldns_rdf *zone)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(a->rrs); i++)
		if (ldns_dname_compare(ldns_rr_owner(ldns_rr_list_rr(a->rrs, i)), zone) == 0)
			return true;
	return false;
}

/* ---- chain encoding -------------------------------------------------------------- */

static uint8_t *chain_encode(const ldns_rr_list *rrs, size_t *len)
{
	ldns_buffer *b = ldns_buffer_new(4096);
	size_t n = ldns_rr_list_rr_count(rrs);
	uint8_t *out = NULL;

	if (!b || n > 0xffff)
		goto done;
	ldns_buffer_write_u8(b, HM_DNS_CHAIN_VERSION);
	ldns_buffer_write_u16(b, (uint16_t)n);
	for (size_t i = 0; i < n; i++) {
		ldns_rr *c = ldns_rr_clone(ldns_rr_list_rr(rrs, i));

		if (!c)
			goto done;
		ldns_rr2canonical(c);
		ldns_rr_set_ttl(c, 0);
		if (ldns_rr2buffer_wire_canonical(b, c, LDNS_SECTION_ANSWER) != LDNS_STATUS_OK) {
			ldns_rr_free(c);
			goto done;
		}
		ldns_rr_free(c);
	}
	if (ldns_buffer_status(b) != LDNS_STATUS_OK)
		goto done;
	*len = ldns_buffer_position(b);
	out = malloc(*len);
	if (out)
		memcpy(out, ldns_buffer_begin(b), *len);
done:
	ldns_buffer_free(b);
	return out;
}

static ldns_rr_list *chain_decode(const uint8_t *buf, size_t len)
{
	ldns_rr_list *l;
	size_t pos = 3;
	unsigned n;

	if (!buf || len < 3 || buf[0] != HM_DNS_CHAIN_VERSION)
		return NULL;
	n = (unsigned)(buf[1] << 8 | buf[2]);
	l = ldns_rr_list_new();
	for (unsigned i = 0; l && i < n; i++) {
		ldns_rr *rr = NULL;

		if (ldns_wire2rr(&rr, buf, len, &pos, LDNS_SECTION_ANSWER) != LDNS_STATUS_OK ||
		    !ldns_rr_list_push_rr(l, rr)) {
			ldns_rr_free(rr);
			ldns_rr_list_deep_free(l);
			return NULL;
		}
	}
	if (l && pos != len) {
		ldns_rr_list_deep_free(l);
		return NULL;
	}
	return l;
}

/* ---- verification ------------------------------------------------------------------ */

static bool same_name(const ldns_rdf *a, const ldns_rdf *b)
{
	return ldns_dname_compare(a, b) == 0;
}

static bool at_or_below(const ldns_rdf *name, const ldns_rdf *zone)
{
	return same_name(name, zone) || ldns_dname_is_subdomain(name, zone);
}

/* The records of l with this owner and type (not RRSIGs), as a list of
 * borrowed pointers (ldns_rr_list_free, not deep). */
static ldns_rr_list *rrset_of(const ldns_rr_list *l, const ldns_rdf *owner, ldns_rr_type t)
{
	ldns_rr_list *out = ldns_rr_list_new();

	for (size_t i = 0; out && i < ldns_rr_list_rr_count(l); i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);

		if (ldns_rr_get_type(rr) == t && same_name(ldns_rr_owner(rr), owner))
			ldns_rr_list_push_rr(out, rr);
	}
	return out;
}

static ldns_rr_list *sigs_of(const ldns_rr_list *l, const ldns_rdf *owner, ldns_rr_type covered)
{
	ldns_rr_list *out = ldns_rr_list_new();

	for (size_t i = 0; out && i < ldns_rr_list_rr_count(l); i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);
		ldns_rdf *tc = ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG ? ldns_rr_rrsig_typecovered(rr)
									  : NULL;

		if (tc && ldns_rdf2rr_type(tc) == covered && same_name(ldns_rr_owner(rr), owner))
			ldns_rr_list_push_rr(out, rr);
	}
	return out;
}

static bool is_zone_key(const ldns_rr *k)
{
	uint16_t flags;

	if (ldns_rr_get_type(k) != LDNS_RR_TYPE_DNSKEY || ldns_rr_rd_count(k) != 4)
		return false;
	flags = ldns_rdf2native_int16(ldns_rr_rdf(k, 0));
	return (flags & DNSKEY_ZONE_FLAG) && !(flags & DNSKEY_REVOKE_FLAG);
}

/* ---- verified RRSIGs, remembered --------------------------------------------------- */

/* Every replica verifies rule (a)'s chain for every secure observation, and
 * the chains of one zone share their DNSKEY RRset and its RRSIG: under a
 * load of misses half of the ECDSA verifications repeat one already made
 * (docs/dns.md, "Where a miss's CPU goes").  The cryptographic verdict is a
 * pure function of (RRset, RRSIG, keys), so a success is remembered in the
 * project's memo of verifications (common/sig_memo.h: successes only,
 * direct mapped, one lock) under BLAKE2b-256 of those inputs (their wire
 * forms, TTLs zeroed: the RRset is verified with the RRSIG's original TTL
 * and the others' TTLs are not signed); the validity window depends on
 * the time and is checked on every call.  Forged data is checked (and
 * fails) every time; a lost entry costs one more verification, never a
 * different verdict. */
#define RRSIG_MEMO_DOMAIN 'R' /* sig_memo.c's own tags start 'S' or 'V' */

/* Hash rr's wire form, length first, with its TTL zeroed. */
static bool memo_hash_rr(crypto_generichash_state *st, ldns_buffer *b, const ldns_rr *rr)
{
	size_t ttl_at = ldns_rdf_size(ldns_rr_owner(rr)) + 4;
	uint32_t len;

	ldns_buffer_clear(b);
	if (ldns_rr2buffer_wire(b, rr, LDNS_SECTION_ANY) != LDNS_STATUS_OK ||
	    ldns_buffer_position(b) < ttl_at + 4)
		return false;
	memset(ldns_buffer_at(b, ttl_at), 0, 4);
	len = (uint32_t)ldns_buffer_position(b);
	crypto_generichash_update(st, (const uint8_t *)&len, sizeof(len));
	crypto_generichash_update(st, ldns_buffer_begin(b), len);
	return true;
}

/* The memo's key of (rrset, sig, keys): the domain byte, then each list as
 * its count and its records.  False when a record has no wire form (then
 * nothing is memoized). */
static bool memo_key(const ldns_rr_list *rrset, const ldns_rr *sig, const ldns_rr_list *keys,
		     struct hm_sig_memo_key *k)
{
	const ldns_rr_list *lists[2] = { rrset, keys };
	const uint8_t domain = RRSIG_MEMO_DOMAIN;
	crypto_generichash_state st;
	ldns_buffer *b = ldns_buffer_new(512);
	bool ok = b != NULL;

	crypto_generichash_init(&st, NULL, 0, sizeof(k->tag));
	crypto_generichash_update(&st, &domain, 1);
	ok = ok && memo_hash_rr(&st, b, sig);
	for (int l = 0; ok && l < 2; l++) {
		uint32_t n = (uint32_t)ldns_rr_list_rr_count(lists[l]);

		crypto_generichash_update(&st, (const uint8_t *)&n, sizeof(n));
		for (uint32_t i = 0; ok && i < n; i++)
			ok = memo_hash_rr(&st, b, ldns_rr_list_rr(lists[l], i));
	}
	crypto_generichash_final(&st, k->tag, sizeof(k->tag));
	ldns_buffer_free(b);
	return ok;
}

/* RFC 4034 section 3.1.5: inception <= t <= expiration in serial number
 * arithmetic (RFC 1982), the check ldns_verify_rrsig_keylist_time makes. */
static bool rrsig_in_window(const ldns_rr *sig, int64_t t)
{
	const ldns_rdf *inc = ldns_rr_rrsig_inception(sig), *exp = ldns_rr_rrsig_expiration(sig);
	int32_t inception, expiration, now = (int32_t)(uint32_t)t;

	if (!inc || !exp)
		return false;
	inception = (int32_t)ldns_rdf2native_int32(inc);
	expiration = (int32_t)ldns_rdf2native_int32(exp);
	return (int32_t)((uint32_t)expiration - (uint32_t)inception) >= 0 &&
	       (int32_t)((uint32_t)now - (uint32_t)inception) >= 0 &&
	       (int32_t)((uint32_t)expiration - (uint32_t)now) >= 0;
}

/* ldns_verify_rrsig_keylist_time(rrset, sig, keys, t) == OK, with the
 * cryptography remembered (above). */
bool hm_dns_rrsig_verifies(const ldns_rr_list *rrset, const ldns_rr *sig, const ldns_rr_list *keys,
			   int64_t t)
{
	struct hm_sig_memo_key k;
	bool keyed, ok;

	if (!rrsig_in_window(sig, t))
		return false;
	keyed = memo_key(rrset, sig, keys, &k);
	if (keyed && hm_sig_memo_verified(&k))
		return true;
	ok = ldns_verify_rrsig_keylist_notime(rrset, sig, keys, NULL) == LDNS_STATUS_OK;
	if (ok && keyed)
		hm_sig_memo_remember_verified(&k);
	return ok;
}

/* Does some RRSIG in sigs, by a zone at or above the RRset's owner, with
 * no wildcard expansion, verify rrset at time t with one of keys (zone
 * keys owned by the signer)? */
static bool rrset_verifies(const ldns_rr_list *rrset, const ldns_rr_list *sigs,
			   const ldns_rr_list *keys, int64_t t)
{
	const ldns_rdf *owner;

	if (ldns_rr_list_rr_count(rrset) == 0)
		return false;
	owner = ldns_rr_owner(ldns_rr_list_rr(rrset, 0));
	for (size_t i = 0; i < ldns_rr_list_rr_count(sigs); i++) {
		const ldns_rr *sig = ldns_rr_list_rr(sigs, i);
		const ldns_rdf *signer = ldns_rr_rrsig_signame(sig);
		const ldns_rdf *labels = ldns_rr_rrsig_labels(sig);
		ldns_rr_list *usable;
		bool ok;

		if (!signer || !labels || !at_or_below(owner, signer) ||
		    ldns_rdf2native_int8(labels) != ldns_dname_label_count(owner))
			continue;
		usable = ldns_rr_list_new();
		for (size_t k = 0; usable && k < ldns_rr_list_rr_count(keys); k++) {
			ldns_rr *key = ldns_rr_list_rr(keys, k);

			if (is_zone_key(key) && same_name(ldns_rr_owner(key), signer))
				ldns_rr_list_push_rr(usable, key);
		}
		ok = usable && ldns_rr_list_rr_count(usable) &&
		     hm_dns_rrsig_verifies(rrset, sig, usable, t);
		ldns_rr_list_free(usable);
		if (ok)
			return true;
	}
	return false;
}

/* Keys and DS records proven so far (borrowed from the chain or anchors). */
struct trust {
	ldns_rr_list *keys, *ds, *zones_done, *ds_done;
};

/* The DNSKEY RRset of zone z, if an anchor or a trusted DS names one of its
 * keys and that key signs the set: trust every zone key in it. */
static bool trust_dnskeys(struct trust *tr, const struct hm_dns_anchors *a, const ldns_rr_list *chain,
			  ldns_rr *first, int64_t t)
{
	const ldns_rdf *z = ldns_rr_owner(first);
	ldns_rr_list *set = rrset_of(chain, z, LDNS_RR_TYPE_DNSKEY);
	ldns_rr_list *sigs = sigs_of(chain, z, LDNS_RR_TYPE_DNSKEY);
	ldns_rr_list *entry = ldns_rr_list_new();
	bool ok = false;

	for (size_t i = 0; set && entry && i < ldns_rr_list_rr_count(set); i++) {
		ldns_rr *k = ldns_rr_list_rr(set, i);
		bool named = false;

		for (size_t j = 0; !named && j < ldns_rr_list_rr_count(a->rrs); j++) {
			ldns_rr *d = ldns_rr_list_rr(a->rrs, j);

			named = same_name(ldns_rr_owner(d), z) && ldns_rr_compare_ds(k, d);
		}
		for (size_t j = 0; !named && j < ldns_rr_list_rr_count(tr->ds); j++) {
			ldns_rr *d = ldns_rr_list_rr(tr->ds, j);

			named = same_name(ldns_rr_owner(d), z) && ldns_rr_compare_ds(k, d);
		}
		if (named)
			ldns_rr_list_push_rr(entry, k);
	}
	if (entry && ldns_rr_list_rr_count(entry) && rrset_verifies(set, sigs, entry, t)) {
		for (size_t i = 0; i < ldns_rr_list_rr_count(set); i++)
			if (is_zone_key(ldns_rr_list_rr(set, i)))
				ldns_rr_list_push_rr(tr->keys, ldns_rr_list_rr(set, i));
		ok = true;
	}
	ldns_rr_list_free(set);
	ldns_rr_list_free(sigs);
	ldns_rr_list_free(entry);
	return ok;
}

/* The DS RRset at zone cut z, signed by a trusted key of a zone above z. */
static bool trust_ds(struct trust *tr, const ldns_rr_list *chain, ldns_rr *first, int64_t t)
{
	const ldns_rdf *z = ldns_rr_owner(first);
	ldns_rr_list *set = rrset_of(chain, z, LDNS_RR_TYPE_DS);
	ldns_rr_list *sigs = sigs_of(chain, z, LDNS_RR_TYPE_DS);
	ldns_rr_list *parent_keys = ldns_rr_list_new();
	bool ok = false;

	for (size_t i = 0; parent_keys && i < ldns_rr_list_rr_count(tr->keys); i++) {
		ldns_rr *k = ldns_rr_list_rr(tr->keys, i);

		if (ldns_dname_is_subdomain(z, ldns_rr_owner(k)))
			ldns_rr_list_push_rr(parent_keys, k);
	}
	if (set && sigs && parent_keys && rrset_verifies(set, sigs, parent_keys, t)) {
		for (size_t i = 0; i < ldns_rr_list_rr_count(set); i++)
			ldns_rr_list_push_rr(tr->ds, ldns_rr_list_rr(set, i));
		ok = true;
	}
	ldns_rr_list_free(set);
	ldns_rr_list_free(sigs);
	ldns_rr_list_free(parent_keys);
	return ok;
}

static bool name_in(const ldns_rr_list *done, const ldns_rdf *name)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(done); i++)
		if (same_name(ldns_rr_owner(ldns_rr_list_rr(done, i)), name))
			return true;
	return false;
}

/* Grow the trusted keys from the anchors through the chain until nothing
 * more can be proven (each round proves at least one more RRset, so this
 * ends after at most as many rounds as the chain has RRsets). */
static void build_trust(struct trust *tr, const struct hm_dns_anchors *a, const ldns_rr_list *chain,
			int64_t t)
{
	bool changed = true;

	while (changed) {
		changed = false;
		for (size_t i = 0; i < ldns_rr_list_rr_count(chain); i++) {
			ldns_rr *rr = ldns_rr_list_rr(chain, i);
			ldns_rr_type type = ldns_rr_get_type(rr);

			if (type == LDNS_RR_TYPE_DNSKEY && !name_in(tr->zones_done, ldns_rr_owner(rr)) &&
			    trust_dnskeys(tr, a, chain, rr, t)) {
				ldns_rr_list_push_rr(tr->zones_done, rr);
				changed = true;
			} else if (type == LDNS_RR_TYPE_DS && !name_in(tr->ds_done, ldns_rr_owner(rr)) &&
				   trust_ds(tr, chain, rr, t)) {
				ldns_rr_list_push_rr(tr->ds_done, rr);
				changed = true;
			}
		}
	}
}

/* The answer must be the question's CNAME chain and nothing else; every
 * RRset in it must verify with the trusted keys. */
static int check_answer(const ldns_rr_list *an, const struct hm_dns_canon_info *info,
			const ldns_rr_list *keys, int64_t t, char *why, size_t whylen)
{
	ldns_rr_type qtype = (ldns_rr_type)info->qtype;
	ldns_rdf *cur = ldns_dname_new_frm_str(info->name);
	size_t used = 0, data = 0;
	int rc = -1;

	hm_set_err(why, whylen, "CNAME chain too long");
	for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++)
		data += ldns_rr_get_type(ldns_rr_list_rr(an, i)) != LDNS_RR_TYPE_RRSIG;
	for (int hop = 0; cur && hop <= HM_DNS_CHAIN_MAX_DEPTH; hop++) {
		ldns_rr_type type = qtype;
		ldns_rr_list *set = rrset_of(an, cur, type), *sigs = NULL;
		bool follow, ok;

		if (set && ldns_rr_list_rr_count(set) == 0 && qtype != LDNS_RR_TYPE_CNAME) {
			ldns_rr_list_free(set);
			type = LDNS_RR_TYPE_CNAME;
			set = rrset_of(an, cur, type);
		}
		follow = type == LDNS_RR_TYPE_CNAME && qtype != LDNS_RR_TYPE_CNAME;
		if (!set || ldns_rr_list_rr_count(set) == 0 || (follow && ldns_rr_list_rr_count(set) != 1)) {
			hm_set_err(why, whylen, "answer is not the question's CNAME chain");
			ldns_rr_list_free(set);
			break;
		}
		sigs = sigs_of(an, cur, type);
		ok = sigs && rrset_verifies(set, sigs, keys, t);
		if (!ok) {
			char *o = ldns_rdf2str(cur);

			hm_set_err(why, whylen, "%s: RRset does not validate at the given time", o ? o : "?");
			free(o);
		}
		used += ldns_rr_list_rr_count(set);
		if (ok && follow) {
			ldns_rdf_deep_free(cur);
			cur = ldns_rdf_clone(ldns_rr_rdf(ldns_rr_list_rr(set, 0), 0));
			if (cur)
				ldns_dname2canonical(cur);
		}
		ldns_rr_list_free(set);
		ldns_rr_list_free(sigs);
		if (!ok)
			break;
		if (!follow) {
			rc = used == data ? 0 : -1;
			if (rc)
				hm_set_err(why, whylen, "answer holds records outside the question's chain");
			break;
		}
	}
	ldns_rdf_deep_free(cur);
	return rc;
}

int hm_dns_chain_verify(const struct hm_dns_anchors *a, const uint8_t *canon, size_t canon_len,
			const uint8_t *chain, size_t chain_len, int64_t t, char *why, size_t whylen)
{
	struct hm_dns_canon_info info;
	ldns_rr_list *an = NULL, *ns = NULL, *rrs = NULL;
	struct trust tr = { ldns_rr_list_new(), ldns_rr_list_new(), ldns_rr_list_new(),
			    ldns_rr_list_new() };
	int rc = -1;

	hm_set_err(why, whylen, "out of memory");
	if (!tr.keys || !tr.ds || !tr.zones_done || !tr.ds_done)
		goto done;
	if (hm_dns_canon_info(canon, canon_len, &info) < 0 ||
	    hm_dns_canon_sections(canon, canon_len, &an, &ns) < 0) {
		hm_set_err(why, whylen, "not a canonical answer");
		goto done;
	}
	if (!(info.flags & HM_DNS_CANON_SECURE) || info.rcode != HM_DNS_NOERROR ||
	    info.ancount == 0 || info.qtype == LDNS_RR_TYPE_ANY) {
		hm_set_err(why, whylen, "only secure positive answers qualify");
		goto done;
	}
	rrs = chain_decode(chain, chain_len);
	if (!rrs) {
		hm_set_err(why, whylen, "malformed chain");
		goto done;
	}
	build_trust(&tr, a, rrs, t);
	rc = check_answer(an, &info, tr.keys, t, why, whylen);
	if (rc == 0)
		hm_set_err(why, whylen, "ok");
done:
	ldns_rr_list_free(tr.keys);
	ldns_rr_list_free(tr.ds);
	ldns_rr_list_free(tr.zones_done);
	ldns_rr_list_free(tr.ds_done);
	ldns_rr_list_deep_free(rrs);
	ldns_rr_list_deep_free(an);
	ldns_rr_list_deep_free(ns);
	return rc;
}

/* ---- collection ------------------------------------------------------------------------ */

struct collect {
	struct hm_dns_resolver *r;
	const struct hm_dns_anchors *a;
	hm_dns_chain_cb cb;
	void *arg;
	ldns_rr_list *out;     /* collected records (owned) */
	ldns_rdf *queue[HM_DNS_CHAIN_MAX_DEPTH * 2];
	size_t queued, next;   /* queue[next..queued) still to fetch */
	ldns_rdf *zone;        /* the zone being fetched */
	bool want_ds;          /* fetching zone's DS (else its DNSKEY) */
	int lookups;
};

static void collect_end(struct collect *c, const char *err)
{
	uint8_t *chain = NULL;
	size_t len = 0;

	if (!err) {
		chain = chain_encode(c->out, &len);
		if (!chain)
			err = "cannot encode the chain";
	}
	c->cb(c->arg, chain, len, err);
	for (size_t i = 0; i < c->queued; i++)
		ldns_rdf_deep_free(c->queue[i]);
	ldns_rr_list_deep_free(c->out);
	free(c);
}

static void enqueue(struct collect *c, const ldns_rdf *zone)
{
	for (size_t i = 0; i < c->queued; i++)
		if (same_name(c->queue[i], zone))
			return;
	if (c->queued < sizeof(c->queue) / sizeof(c->queue[0]))
		c->queue[c->queued++] = ldns_rdf_clone(zone);
}

static void on_lookup(void *arg, const struct hm_dns_result *res);

/* Start the next lookup, or finish. */
static void collect_step(struct collect *c)
{
	char *name;
	int rc;

	if (!c->want_ds) {
		if (c->next == c->queued) {
			collect_end(c, NULL);
			return;
		}
		c->zone = c->queue[c->next++];
	}
	if (++c->lookups > COLLECT_MAX_LOOKUPS) {
		collect_end(c, "chain too long");
		return;
	}
	name = ldns_rdf2str(c->zone);
	rc = name ? hm_dns_resolve(c->r, name, c->want_ds ? LDNS_RR_TYPE_DS : LDNS_RR_TYPE_DNSKEY,
				   LDNS_RR_CLASS_IN, on_lookup, c)
		  : -1;
	free(name);
	if (rc < 0)
		collect_end(c, "lookup refused");
}

/* Keep the RRset we asked for and its RRSIGs; note the signers of DS sets. */
static int take(struct collect *c, const uint8_t *packet, size_t len, ldns_rr_type want)
{
	ldns_pkt *pkt = NULL;
	size_t kept = 0;

	if (hm_dns_wire2pkt(&pkt, packet, len) < 0)
		return -1;
	for (size_t i = 0; i < ldns_rr_list_rr_count(ldns_pkt_answer(pkt)); i++) {
		ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(pkt), i);
		ldns_rdf *tc = ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG ? ldns_rr_rrsig_typecovered(rr)
									  : NULL;
		bool is_set = ldns_rr_get_type(rr) == want;
		bool is_sig = tc && ldns_rdf2rr_type(tc) == want;

		if (!same_name(ldns_rr_owner(rr), c->zone) || (!is_set && !is_sig))
			continue;
		if (is_sig && want == LDNS_RR_TYPE_DS && ldns_rr_rrsig_signame(rr) &&
		    ldns_dname_is_subdomain(c->zone, ldns_rr_rrsig_signame(rr)))
			enqueue(c, ldns_rr_rrsig_signame(rr));
		ldns_rr_list_push_rr(c->out, ldns_rr_clone(rr));
		kept += is_set;
	}
	ldns_pkt_free(pkt);
	return kept ? 0 : -1;
}

static void on_lookup(void *arg, const struct hm_dns_result *res)
{
	struct collect *c = arg;
	ldns_rr_type want = c->want_ds ? LDNS_RR_TYPE_DS : LDNS_RR_TYPE_DNSKEY;

	if (res->sec != HM_DNS_SEC_SECURE || take(c, res->packet, res->packet_len, want) < 0) {
		collect_end(c, c->want_ds ? "DS lookup not secure" : "DNSKEY lookup not secure");
		return;
	}
	/* After a zone's keys, its DS unless an anchor covers the zone. */
	c->want_ds = !c->want_ds && !is_anchor_zone(c->a, c->zone);
	collect_step(c);
}

int hm_dns_chain_collect(struct hm_dns_resolver *r, const struct hm_dns_anchors *a,
			 const uint8_t *canon, size_t canon_len, hm_dns_chain_cb cb, void *arg)
{
	ldns_rr_list *an = NULL, *ns = NULL;
	struct collect *c;

	if (hm_dns_canon_sections(canon, canon_len, &an, &ns) < 0)
		return -1;
	c = calloc(1, sizeof(*c));
	if (!c || !(c->out = ldns_rr_list_new())) {
		free(c);
		ldns_rr_list_deep_free(an);
		ldns_rr_list_deep_free(ns);
		return -1;
	}
	c->r = r;
	c->a = a;
	c->cb = cb;
	c->arg = arg;
	for (size_t i = 0; i < ldns_rr_list_rr_count(an); i++) {
		ldns_rr *rr = ldns_rr_list_rr(an, i);

		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG && ldns_rr_rrsig_signame(rr))
			enqueue(c, ldns_rr_rrsig_signame(rr));
	}
	ldns_rr_list_deep_free(an);
	ldns_rr_list_deep_free(ns);
	if (c->queued == 0) {
		ldns_rr_list_deep_free(c->out);
		free(c);
		return -1;
	}
	collect_step(c);
	return 0;
}
