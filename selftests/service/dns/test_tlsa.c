// SPDX-License-Identifier: MIT
/*
 * DANE TLSA matching (user/service/dns/tlsa.c).  The certificates are made here with
 * OpenSSL (a CA, a leaf it signs, and an unrelated self-signed certificate);
 * the records are computed independently of tlsa.c (i2d + EVP_Digest), for
 * every usage x selector x matching type, and checked to match at the right
 * chain position only.  Also: a record for another certificate, a TA record
 * that names the leaf, malformed RDATA and unusable parameters.
 */
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <string.h>

#include "hm_test.h"
#include "service/dns/tlsa.h"

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, bool ca)
{
	X509 *c = X509_new();
	X509_NAME *name = X509_NAME_new();

	X509_set_version(c, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(c), (long)(strlen(cn) + (ca ? 100 : 7)));
	X509_gmtime_adj(X509_getm_notBefore(c), 0);
	X509_gmtime_adj(X509_getm_notAfter(c), 3600);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
	X509_set_subject_name(c, name);
	X509_set_issuer_name(c, issuer ? X509_get_subject_name(issuer) : name);
	X509_set_pubkey(c, key);
	X509_sign(c, issuer_key ? issuer_key : key, EVP_sha256());
	X509_NAME_free(name);
	return c;
}

static struct {
	EVP_PKEY *ca_key, *leaf_key, *other_key;
	X509 *ca, *leaf, *other;
} fx;

static bool fixture(void)
{
	if (fx.leaf)
		return true;
	fx.ca_key = EVP_EC_gen("P-256");
	fx.leaf_key = EVP_EC_gen("P-256");
	fx.other_key = EVP_EC_gen("P-256");
	if (!fx.ca_key || !fx.leaf_key || !fx.other_key)
		return false;
	fx.ca = make_cert("tlsa test ca", fx.ca_key, NULL, NULL, true);
	fx.leaf = make_cert("www.signed.hmtest", fx.leaf_key, fx.ca, fx.ca_key, false);
	fx.other = make_cert("other.hmtest", fx.other_key, NULL, NULL, false);
	return fx.ca && fx.leaf && fx.other;
}

/* Build RDATA for cert with the given parameters, independently of tlsa.c. */
static size_t make_rdata(uint8_t *out, size_t cap, X509 *cert, int usage, int sel, int mt)
{
	unsigned char *der = NULL;
	int len = sel == 0 ? i2d_X509(cert, &der) : i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	size_t n = 0;

	if (len <= 0)
		return 0;
	out[0] = (uint8_t)usage;
	out[1] = (uint8_t)sel;
	out[2] = (uint8_t)mt;
	if (mt == 0 && (size_t)len + 3 <= cap) {
		memcpy(out + 3, der, (size_t)len);
		n = 3 + (size_t)len;
	} else if (mt != 0) {
		unsigned int mdlen = 0;

		EVP_Digest(der, (size_t)len, out + 3, &mdlen, mt == 1 ? EVP_sha256() : EVP_sha512(), NULL);
		n = 3 + mdlen;
	}
	OPENSSL_free(der);
	return n;
}

static int match1(const uint8_t *rd, size_t len, X509 *const *chain, size_t nchain,
		  struct hm_tlsa_result *res)
{
	const uint8_t *rds[1] = { rd };
	size_t lens[1] = { len };

	return hm_tlsa_match(rds, lens, 1, chain, nchain, res);
}

HM_TEST(every_usage_selector_matching_type)
{
	X509 *chain[2];
	uint8_t rd[4096];
	struct hm_tlsa_result res;

	if (!ASSERT_TRUE(fixture(), "certificates"))
		return;
	chain[0] = fx.leaf;
	chain[1] = fx.ca;
	for (int usage = 0; usage <= 3; usage++)
		for (int sel = 0; sel <= 1; sel++)
			for (int mt = 0; mt <= 2; mt++) {
				bool ee = usage == 1 || usage == 3;
				X509 *target = ee ? fx.leaf : fx.ca;
				size_t n = make_rdata(rd, sizeof(rd), target, usage, sel, mt);

				if (!ASSERT_GE(n, 4, "rdata"))
					return;
				ASSERT_EQ(match1(rd, n, chain, 2, &res), 1, "match");
				ASSERT_EQ(res.record, 0, "record");
				ASSERT_EQ(res.depth, ee ? 0 : 1, "depth");
				ASSERT_EQ(res.usage, usage, "usage");
				/* The same record at the wrong chain position must not
				 * match: an EE record names the leaf only, a TA record
				 * a certificate above it. */
				n = make_rdata(rd, sizeof(rd), ee ? fx.ca : fx.leaf, usage, sel, mt);
				ASSERT_EQ(match1(rd, n, chain, 2, &res), 0, "wrong position");
				ASSERT_EQ(res.record, -1, "no record");
			}
}

HM_TEST(record_for_another_certificate_does_not_match)
{
	X509 *chain[2];
	uint8_t rd[4096];
	struct hm_tlsa_result res;

	if (!ASSERT_TRUE(fixture(), "certificates"))
		return;
	chain[0] = fx.leaf;
	chain[1] = fx.ca;
	for (int sel = 0; sel <= 1; sel++)
		for (int mt = 0; mt <= 2; mt++) {
			size_t n = make_rdata(rd, sizeof(rd), fx.other, 3, sel, mt);

			ASSERT_EQ(match1(rd, n, chain, 2, &res), 0, "other cert");
			/* One flipped bit of the right digest: no match. */
			n = make_rdata(rd, sizeof(rd), fx.leaf, 3, sel, mt);
			rd[n - 1] ^= 1;
			ASSERT_EQ(match1(rd, n, chain, 2, &res), 0, "flipped bit");
		}
	/* A TA record with only the leaf in the chain has nothing to match. */
	size_t n = make_rdata(rd, sizeof(rd), fx.ca, 2, 1, 1);
	ASSERT_EQ(match1(rd, n, chain, 1, &res), 0, "no TA in chain");
}

HM_TEST(first_matching_record_of_a_set_is_reported)
{
	X509 *chain[2] = { NULL, NULL };
	uint8_t a[128], b[128], c[128];
	struct hm_tlsa_result res;

	if (!ASSERT_TRUE(fixture(), "certificates"))
		return;
	chain[0] = fx.leaf;
	chain[1] = fx.ca;
	size_t la = make_rdata(a, sizeof(a), fx.other, 3, 1, 1);
	size_t lb = make_rdata(b, sizeof(b), fx.ca, 2, 0, 2);
	size_t lc = make_rdata(c, sizeof(c), fx.leaf, 3, 1, 1);
	const uint8_t *rds[3] = { a, b, c };
	size_t lens[3] = { la, lb, lc };

	ASSERT_EQ(hm_tlsa_match(rds, lens, 3, chain, 2, &res), 1, "set");
	ASSERT_EQ(res.record, 1, "record");
	ASSERT_EQ(res.usage, 2, "usage");
	ASSERT_EQ(res.depth, 1, "depth");
}

HM_TEST(malformed_and_unusable_records_are_counted_not_matched)
{
	X509 *chain[2];
	struct hm_tlsa_rr rr;
	struct hm_tlsa_result res;
	uint8_t good[128], shortdig[20], longdig[80], unknown[40];

	if (!ASSERT_TRUE(fixture(), "certificates"))
		return;
	chain[0] = fx.leaf;
	chain[1] = fx.ca;
	ASSERT_EQ(hm_tlsa_parse(NULL, 0, &rr), -1, "null");
	ASSERT_EQ(hm_tlsa_parse((const uint8_t *)"\3\1\1", 3, &rr), -1, "no data");
	size_t lg = make_rdata(good, sizeof(good), fx.leaf, 3, 1, 1);
	memcpy(shortdig, good, sizeof(shortdig)); /* SHA2-256 cut to 17 bytes */
	ASSERT_EQ(hm_tlsa_parse(shortdig, sizeof(shortdig), &rr), -1, "short sha256");
	memset(longdig, 0xab, sizeof(longdig));
	longdig[0] = 3, longdig[1] = 0, longdig[2] = 2; /* SHA2-512 with 77 bytes */
	ASSERT_EQ(hm_tlsa_parse(longdig, sizeof(longdig), &rr), -1, "long sha512");
	memcpy(unknown, good, sizeof(unknown) < lg ? sizeof(unknown) : lg);
	unknown[0] = 4; /* no such usage */
	ASSERT_OK(hm_tlsa_parse(unknown, 35, &rr), "parses");
	ASSERT_FALSE(hm_tlsa_usable(&rr), "usage 4 unusable");
	unknown[0] = 3, unknown[1] = 2;
	ASSERT_OK(hm_tlsa_parse(unknown, 35, &rr), "parses");
	ASSERT_FALSE(hm_tlsa_usable(&rr), "selector 2 unusable");
	unknown[1] = 1, unknown[2] = 255; /* private matching type */
	ASSERT_OK(hm_tlsa_parse(unknown, 35, &rr), "parses");
	ASSERT_FALSE(hm_tlsa_usable(&rr), "mtype 255 unusable");

	/* A set of broken records plus the right one: the right one matches,
	 * the others are counted by reason. */
	const uint8_t *rds[4] = { shortdig, longdig, unknown, good };
	size_t lens[4] = { sizeof(shortdig), sizeof(longdig), 35, lg };

	ASSERT_EQ(hm_tlsa_match(rds, lens, 4, chain, 2, &res), 1, "good one matches");
	ASSERT_EQ(res.record, 3, "record");
	ASSERT_EQ(res.malformed, 2, "malformed");
	ASSERT_EQ(res.unusable, 1, "unusable");
	/* Without it: no match, and no crash on an empty chain or set. */
	ASSERT_EQ(hm_tlsa_match(rds, lens, 3, chain, 2, &res), 0, "only broken");
	ASSERT_EQ(hm_tlsa_match(rds, lens, 4, chain, 0, &res), 0, "empty chain");
	ASSERT_EQ(hm_tlsa_match(NULL, NULL, 0, chain, 2, &res), 0, "empty set");
	ASSERT_STRCONTAINS(hm_tlsa_usage_name(3), "DANE-EE", "name");
	ASSERT_STRCONTAINS(hm_tlsa_usage_name(9), "unknown", "name");
}
