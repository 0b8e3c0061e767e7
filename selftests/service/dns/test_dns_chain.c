// SPDX-License-Identifier: MIT
/*
 * Rule (a) chain verification, offline: a two-level hierarchy signed here
 * with ldns (anchor zone hmtest. -> DS -> child.hmtest.), and the verdict of
 * hm_dns_chain_verify for the good chain, the wrong time (both sides), a
 * missing DS, the wrong anchor, forged data, unrelated records, a CNAME
 * chain, a wildcard expansion, a DS signed by the child itself, answers that
 * are not secure or not positive, malformed chains and random mutations.
 */
#include "common/crypto.h"
#include "common/sig_memo.h"
#include "service/dns/dns_chain.h"
#include "service/dns/dns_msg.h"
#include "hm_test.h"
#include "service/dns/hm_dns_sign.h"

static ldns_rr_list *set_of(ldns_rr *a, ldns_rr *b)
{
	ldns_rr_list *l = ldns_rr_list_new();

	ldns_rr_list_push_rr(l, a);
	if (b)
		ldns_rr_list_push_rr(l, b);
	return l;
}

/* The fixture: zones, anchors, the good chain and some answers. */
static struct test_zone top, child;
static struct hm_dns_anchors *anchors;
static ldns_rr_list *chain_good, *chain_no_ds, *chain_self_ds;
static ldns_rr_list *ans_www, *ans_alias, *ans_wild, *ans_other;

static void fixture(void)
{
	ldns_rr *ds = NULL, *top_ds;
	char *ds_text;
	ldns_rr_list *l;

	test_zone_init(&top, "hmtest.");
	test_zone_init(&child, "child.hmtest.");
	top_ds = ldns_key_rr2ds(top.ksk_rr, LDNS_SHA256);
	ds_text = ldns_rr2str(top_ds);
	anchors = hm_dns_anchors_new((const char *const *)&ds_text, 1, NULL, NULL, 0);
	free(ds_text);
	ldns_rr_free(top_ds);
	if (!anchors)
		abort();

	chain_good = ldns_rr_list_new();
	chain_no_ds = ldns_rr_list_new();
	chain_self_ds = ldns_rr_list_new();
	for (int c = 0; c < 3; c++) {
		ldns_rr_list *out = c == 0 ? chain_good : c == 1 ? chain_no_ds : chain_self_ds;

		l = set_of(ldns_rr_clone(top.ksk_rr), ldns_rr_clone(top.zsk_rr));
		test_add_signed(out, l, top.ksk);
		ldns_rr_list_deep_free(l);
		l = set_of(ldns_rr_clone(child.ksk_rr), ldns_rr_clone(child.zsk_rr));
		test_add_signed(out, l, child.ksk);
		ldns_rr_list_deep_free(l);
		if (c == 1)
			continue;
		ds = ldns_key_rr2ds(child.ksk_rr, LDNS_SHA256);
		l = set_of(ds, NULL);
		/* The DS belongs to the parent; c == 2 has the child sign it. */
		test_add_signed(out, l, c == 0 ? top.zsk : child.zsk);
		ldns_rr_list_deep_free(l);
	}

	ans_www = ldns_rr_list_new();
	l = set_of(test_rr("www.child.hmtest. 300 IN A 198.18.1.1"), test_rr("www.child.hmtest. 300 IN A 198.18.1.2"));
	test_add_signed(ans_www, l, child.zsk);
	ldns_rr_list_deep_free(l);

	ans_alias = ldns_rr_list_new();
	l = set_of(test_rr("alias.child.hmtest. 300 IN CNAME www.child.hmtest."), NULL);
	test_add_signed(ans_alias, l, child.zsk);
	ldns_rr_list_deep_free(l);
	for (size_t i = 0; i < ldns_rr_list_rr_count(ans_www); i++)
		ldns_rr_list_push_rr(ans_alias, ldns_rr_clone(ldns_rr_list_rr(ans_www, i)));

	/* A wildcard's RRset and signature, presented under x.child.hmtest. */
	ans_wild = ldns_rr_list_new();
	l = set_of(test_rr("*.child.hmtest. 300 IN A 198.18.1.9"), NULL);
	test_add_signed(ans_wild, l, child.zsk);
	ldns_rr_list_deep_free(l);
	for (size_t i = 0; i < ldns_rr_list_rr_count(ans_wild); i++) {
		ldns_rr *r = ldns_rr_list_rr(ans_wild, i);

		ldns_rdf_deep_free(ldns_rr_owner(r));
		ldns_rr_set_owner(r, ldns_dname_new_frm_str("x.child.hmtest."));
	}

	/* A correctly signed RRset that is not part of the question's answer. */
	ans_other = ldns_rr_list_new();
	for (size_t i = 0; i < ldns_rr_list_rr_count(ans_www); i++)
		ldns_rr_list_push_rr(ans_other, ldns_rr_clone(ldns_rr_list_rr(ans_www, i)));
	l = set_of(test_rr("other.hmtest. 300 IN A 198.18.1.3"), NULL);
	test_add_signed(ans_other, l, top.zsk);
	ldns_rr_list_deep_free(l);
}

/* Verify answer an to (name, type) with chain at time t. */
static int verify(const char *name, ldns_rr_type type, const ldns_rr_list *an,
		  const ldns_rr_list *chain, int64_t t, char *why, size_t wl)
{
	size_t cl, chl;
	uint8_t *canon = test_canon(name, type, 0, NULL, an, true, &cl);
	uint8_t *ch = test_encode_chain(chain, &chl);
	int rc = canon ? hm_dns_chain_verify(anchors, canon, cl, ch, chl, t, why, wl) : -2;

	free(canon);
	free(ch);
	return rc;
}

HM_TEST(good_chain_through_ds)
{
	char why[256];

	ASSERT_OK(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0, why, sizeof(why)),
		  why);
	ASSERT_OK(verify("WWW.Child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0 + 29 * DAY, why,
			 sizeof(why)), "case of the question, late in the window");
	ASSERT_OK(verify("alias.child.hmtest.", LDNS_RR_TYPE_A, ans_alias, chain_good, T0, why,
			 sizeof(why)), "CNAME chain");
}

HM_TEST(dnskey_as_anchor)
{
	struct hm_dns_anchors *saved = anchors;
	char *text = ldns_rr2str(top.ksk_rr), why[256];

	anchors = hm_dns_anchors_new((const char *const *)&text, 1, NULL, why, sizeof(why));
	if (ASSERT_TRUE(anchors != NULL, "DNSKEY anchor"))
		ASSERT_OK(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0, why,
				 sizeof(why)), why);
	hm_dns_anchors_free(anchors);
	anchors = saved;
	free(text);
}

HM_TEST(time_outside_the_window)
{
	char why[256];

	ASSERT_ERR(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0 + 31 * DAY, why,
			  sizeof(why)), "after expiration");
	ASSERT_ERR(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0 - 2 * DAY, why,
			  sizeof(why)), "before inception");
}

HM_TEST(broken_chains)
{
	char why[256];

	ASSERT_ERR(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_no_ds, T0, why, sizeof(why)),
		   "no DS for the child");
	ASSERT_STRCONTAINS(why, "does not validate", "reason");
	ASSERT_ERR(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_self_ds, T0, why,
			  sizeof(why)), "DS signed by the child itself");
	{
		/* Another anchor: the same chain proves nothing. */
		struct test_zone other;
		ldns_rr *ds;
		char *text;
		struct hm_dns_anchors *saved = anchors;

		test_zone_init(&other, "hmtest.");
		ds = ldns_key_rr2ds(other.ksk_rr, LDNS_SHA256);
		text = ldns_rr2str(ds);
		anchors = hm_dns_anchors_new((const char *const *)&text, 1, NULL, NULL, 0);
		ASSERT_ERR(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0, why,
				  sizeof(why)), "wrong anchor");
		hm_dns_anchors_free(anchors);
		anchors = saved;
		free(text);
		ldns_rr_free(ds);
		test_zone_free(&other);
	}
}

HM_TEST(bad_answers)
{
	char why[256];
	ldns_rr_list *forged = ldns_rr_list_clone(ans_www);
	ldns_rdf *a = ldns_rr_rdf(ldns_rr_list_rr(forged, 0), 0);
	size_t cl, chl;
	uint8_t *canon, *ch = test_encode_chain(chain_good, &chl);

	ldns_rdf_data(a)[3] ^= 0x40;
	ASSERT_ERR(verify("www.child.hmtest.", LDNS_RR_TYPE_A, forged, chain_good, T0, why, sizeof(why)),
		   "forged address");
	ldns_rr_list_deep_free(forged);
	ASSERT_ERR(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_other, chain_good, T0, why, sizeof(why)),
		   "unrelated signed RRset");
	ASSERT_STRCONTAINS(why, "outside", "reason");
	ASSERT_ERR(verify("x.child.hmtest.", LDNS_RR_TYPE_A, ans_wild, chain_good, T0, why, sizeof(why)),
		   "wildcard expansion");
	ASSERT_ERR(verify("mail.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0, why, sizeof(why)),
		   "answer for another name");

	canon = test_canon("www.child.hmtest.", LDNS_RR_TYPE_A, 0, NULL, ans_www, false, &cl);
	ASSERT_ERR(hm_dns_chain_verify(anchors, canon, cl, ch, chl, T0, why, sizeof(why)), "not secure");
	free(canon);
	canon = test_canon("www.child.hmtest.", LDNS_RR_TYPE_A, 3, NULL, NULL, true, &cl);
	ASSERT_ERR(hm_dns_chain_verify(anchors, canon, cl, ch, chl, T0, why, sizeof(why)), "NXDOMAIN");
	ASSERT_STRCONTAINS(why, "positive", "reason");
	free(canon);
	free(ch);
}

HM_TEST(malformed_and_mutated_chains)
{
	char why[256];
	size_t cl, chl;
	uint8_t *canon = test_canon("www.child.hmtest.", LDNS_RR_TYPE_A, 0, NULL, ans_www, true, &cl);
	uint8_t *ch = test_encode_chain(chain_good, &chl), *m = malloc(chl + 1);
	uint64_t seed = 0xc4a1, st = seed;
	int accepted = 0;

	ASSERT_OK(hm_dns_chain_verify(anchors, canon, cl, ch, chl, T0, why, sizeof(why)), "baseline");
	ASSERT_ERR(hm_dns_chain_verify(anchors, canon, cl, ch, chl - 1, T0, why, sizeof(why)), "cut");
	ASSERT_STRCONTAINS(why, "malformed", "reason");
	memcpy(m, ch, chl);
	m[chl] = 0;
	ASSERT_ERR(hm_dns_chain_verify(anchors, canon, cl, m, chl + 1, T0, why, sizeof(why)), "trailing");
	ASSERT_ERR(hm_dns_chain_verify(anchors, canon, cl, NULL, 0, T0, why, sizeof(why)), "none");
	ASSERT_ERR(hm_dns_chain_verify(anchors, canon, cl - 1, ch, chl, T0, why, sizeof(why)), "bad canon");
	for (int i = 0; i < 3000; i++) {
		size_t len = chl;

		memcpy(m, ch, chl);
		m[hm_test_rand(&st) % chl] ^= (uint8_t)(1u << (hm_test_rand(&st) % 8));
		if (i % 5 == 0)
			len = hm_test_rand(&st) % chl;
		accepted += hm_dns_chain_verify(anchors, canon, cl, m, len, T0, why, sizeof(why)) == 0;
	}
	/* Bits in TTLs or unused records may flip harmlessly; most flips land
	 * in keys, signatures and names and must break the chain. */
	ASSERT_LE(accepted, 1500, "most mutations rejected");
	printf("  mutations: %d of 3000 still verify (seed %" PRIx64 ")\n", accepted, seed);
	free(canon);
	free(ch);
	free(m);
}

/* The RRset of ans_www without its RRSIG, and the RRSIG. */
static ldns_rr_list *www_set(ldns_rr **sig)
{
	ldns_rr_list *set = ldns_rr_list_new();

	for (size_t i = 0; i < ldns_rr_list_rr_count(ans_www); i++) {
		ldns_rr *r = ldns_rr_list_rr(ans_www, i);

		if (ldns_rr_get_type(r) == LDNS_RR_TYPE_RRSIG)
			*sig = r;
		else
			ldns_rr_list_push_rr(set, r);
	}
	return set;
}

/* hm_dns_rrsig_verifies against ldns's own time-checked verification, at
 * both edges of the window and with a memoized success behind it. */
HM_TEST(rrsig_verdict_is_ldns_verdict)
{
	static const int64_t at[] = { T0 - DAY - 1, T0 - DAY, T0, T0 + 30 * DAY, T0 + 30 * DAY + 1,
				      T0 + 31 * DAY, T0 - 2 * DAY };
	ldns_rr *sig = NULL;
	ldns_rr_list *set = www_set(&sig), *keys = set_of(child.zsk_rr, NULL), *wrong;

	for (int round = 0; round < 2; round++)
		for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
			bool want = ldns_verify_rrsig_keylist_time(set, sig, keys, (time_t)at[i], NULL) ==
				    LDNS_STATUS_OK;

			ASSERT_EQ(hm_dns_rrsig_verifies(set, sig, keys, at[i]), want,
				  round ? "same verdict, memoized" : "same verdict");
		}
	wrong = set_of(top.zsk_rr, NULL);
	ASSERT_FALSE(hm_dns_rrsig_verifies(set, sig, wrong, T0), "another key");
	ldns_rr_list_free(wrong);
	ldns_rr_list_free(keys);
	ldns_rr_list_free(set);
}

/* What a memo keyed on less than every input, or remembering the window,
 * would get wrong: after a success is remembered, the same RRSIG over other
 * data, or at a time outside its window, is still refused; a repeat is a
 * hit, and TTLs (not signed) do not matter. */
HM_TEST(memo_never_changes_a_verdict)
{
	char why[256];
	uint64_t l0, h0, l1, h1;
	ldns_rr *sig = NULL;
	ldns_rr_list *set = www_set(&sig), *keys = set_of(child.zsk_rr, NULL);
	ldns_rr_list *forged = ldns_rr_list_clone(set), *ttl = ldns_rr_list_clone(set);

	ASSERT_OK(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0, why, sizeof(why)),
		  why);
	hm_sig_memo_stats(&l0, &h0);
	ASSERT_OK(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0 + 1, why,
			 sizeof(why)), why);
	hm_sig_memo_stats(&l1, &h1);
	ASSERT_GE(h1 - h0, 2, "the repeat's DNSKEY and answer RRSIGs are memo hits");
	ASSERT_ERR(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0 + 31 * DAY, why,
			  sizeof(why)), "after expiration, with the success remembered");
	ASSERT_ERR(verify("www.child.hmtest.", LDNS_RR_TYPE_A, ans_www, chain_good, T0 - 2 * DAY, why,
			  sizeof(why)), "before inception, with the success remembered");

	ASSERT_TRUE(hm_dns_rrsig_verifies(set, sig, keys, T0), "the RRset");
	ldns_rdf_data(ldns_rr_rdf(ldns_rr_list_rr(forged, 0), 0))[3] ^= 0x40;
	ASSERT_FALSE(hm_dns_rrsig_verifies(forged, sig, keys, T0), "the same RRSIG over a forged RRset");
	ASSERT_FALSE(hm_dns_rrsig_verifies(forged, sig, keys, T0), "and again");
	ldns_rr_set_ttl(ldns_rr_list_rr(ttl, 0), 7);
	hm_sig_memo_stats(&l0, &h0);
	ASSERT_TRUE(hm_dns_rrsig_verifies(ttl, sig, keys, T0), "another TTL verifies (not signed)");
	hm_sig_memo_stats(&l1, &h1);
	ASSERT_EQ(h1 - h0, 1, "and is a memo hit");
	ldns_rr_list_deep_free(forged);
	ldns_rr_list_deep_free(ttl);
	ldns_rr_list_free(keys);
	ldns_rr_list_free(set);
}

HM_TEST(anchor_inputs)
{
	static const char *bad[] = { "hmtest. IN A 198.18.0.1" };
	char err[256] = "", path[] = "/tmp/hm-anchors-XXXXXX";
	struct hm_dns_anchors *a;
	int fd;
	FILE *f;

	ASSERT_TRUE(hm_dns_anchors_new(bad, 1, NULL, err, sizeof(err)) == NULL, "an A record");
	ASSERT_STRCONTAINS(err, "trust anchor 0", "error names it");
	ASSERT_TRUE(hm_dns_anchors_new(NULL, 0, NULL, err, sizeof(err)) == NULL, "none at all");
	ASSERT_TRUE(hm_dns_anchors_new(NULL, 0, "/nonexistent/anchors", err, sizeof(err)) == NULL,
		    "missing file");
	fd = mkstemp(path);
	f = fdopen(fd, "w");
	fprintf(f, "; comment\n$TTL 60\n");
	ldns_rr_print(f, child.ksk_rr);
	fprintf(f, "\n");
	fclose(f);
	a = hm_dns_anchors_new(NULL, 0, path, err, sizeof(err));
	ASSERT_TRUE(a != NULL, "DNSKEY anchor from a file");
	hm_dns_anchors_free(a);
	f = fopen(path, "a");
	fprintf(f, "www.hmtest. IN A 198.18.0.1\n");
	fclose(f);
	ASSERT_TRUE(hm_dns_anchors_new(NULL, 0, path, err, sizeof(err)) == NULL, "file with an A record");
	ASSERT_STRCONTAINS(err, ":", "error names file and line");
	unlink(path);
}

__attribute__((constructor(200))) static void init(void)
{
	if (hm_crypto_init() < 0)
		abort();
	fixture();
}

__attribute__((destructor)) static void fini(void)
{
	hm_dns_anchors_free(anchors);
	ldns_rr_list_deep_free(chain_good);
	ldns_rr_list_deep_free(chain_no_ds);
	ldns_rr_list_deep_free(chain_self_ds);
	ldns_rr_list_deep_free(ans_www);
	ldns_rr_list_deep_free(ans_alias);
	ldns_rr_list_deep_free(ans_wild);
	ldns_rr_list_deep_free(ans_other);
	test_zone_free(&top);
	test_zone_free(&child);
}
