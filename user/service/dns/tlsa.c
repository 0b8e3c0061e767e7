// SPDX-License-Identifier: MIT
/* DANE TLSA matching, see tlsa.h. */
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "service/dns/tlsa.h"

int hm_tlsa_parse(const uint8_t *rdata, size_t len, struct hm_tlsa_rr *out)
{
	if (!rdata || len < 4)
		return -1;
	out->usage = rdata[0];
	out->selector = rdata[1];
	out->mtype = rdata[2];
	out->data = rdata + 3;
	out->len = len - 3;
	/* A digest of the wrong length can never match; call it malformed so
	 * the operator sees a broken record rather than a silent mismatch. */
	if (out->mtype == HM_TLSA_MT_SHA256 && out->len != 32)
		return -1;
	if (out->mtype == HM_TLSA_MT_SHA512 && out->len != 64)
		return -1;
	return 0;
}

bool hm_tlsa_usable(const struct hm_tlsa_rr *rr)
{
	return rr->usage <= HM_TLSA_DANE_EE && rr->selector <= HM_TLSA_SEL_SPKI &&
	       rr->mtype <= HM_TLSA_MT_SHA512;
}

const char *hm_tlsa_usage_name(int usage)
{
	static const char *const names[] = { "PKIX-TA", "PKIX-EE", "DANE-TA", "DANE-EE" };

	return usage >= 0 && usage <= 3 ? names[usage] : "unknown";
}

/* The DER the selector names; caller frees with OPENSSL_free. */
static int selected_der(X509 *cert, int selector, unsigned char **der)
{
	*der = NULL;
	if (selector == HM_TLSA_SEL_CERT)
		return i2d_X509(cert, der);
	return i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), der);
}

/* 1 match, 0 no match, -1 error. */
static int rr_matches_cert(const struct hm_tlsa_rr *rr, X509 *cert)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int len = selected_der(cert, rr->selector, &der), ret = -1;

	if (len <= 0)
		return -1;
	if (rr->mtype == HM_TLSA_MT_FULL) {
		ret = (size_t)len == rr->len && memcmp(der, rr->data, rr->len) == 0;
	} else {
		const EVP_MD *alg = rr->mtype == HM_TLSA_MT_SHA256 ? EVP_sha256() : EVP_sha512();

		if (EVP_Digest(der, (size_t)len, md, &mdlen, alg, NULL) == 1)
			ret = mdlen == rr->len && CRYPTO_memcmp(md, rr->data, mdlen) == 0;
	}
	OPENSSL_free(der);
	return ret;
}

int hm_tlsa_match(const uint8_t *const *rdata, const size_t *rdlen, size_t n,
		  X509 *const *chain, size_t nchain, struct hm_tlsa_result *res)
{
	int err = 0;

	memset(res, 0, sizeof(*res));
	res->record = res->depth = res->usage = -1;
	for (size_t i = 0; i < n; i++) {
		struct hm_tlsa_rr rr;

		if (hm_tlsa_parse(rdata[i], rdlen[i], &rr) < 0) {
			res->malformed++;
			continue;
		}
		if (!hm_tlsa_usable(&rr)) {
			res->unusable++;
			continue;
		}
		bool ee = rr.usage == HM_TLSA_PKIX_EE || rr.usage == HM_TLSA_DANE_EE;
		size_t from = ee ? 0 : 1, to = ee ? (nchain > 0) : nchain;

		for (size_t d = from; d < to; d++) {
			int m = rr_matches_cert(&rr, chain[d]);

			if (m < 0) {
				err = 1;
				continue;
			}
			if (m && res->record < 0) {
				res->record = (int)i;
				res->depth = (int)d;
				res->usage = rr.usage;
			}
		}
	}
	if (res->record >= 0)
		return 1;
	return err ? -1 : 0;
}
