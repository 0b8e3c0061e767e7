// SPDX-License-Identifier: MIT
/*
 * Certificate Transparency verdicts (user/service/ct/ct.c) against real test logs.
 *
 * The fixture runs, at test time: the certificate factory (a root, an
 * intermediate, two log keys), two processes of the test log
 * (selftests/service/ct/ct_log/ct_log.py) on loopback, log A trusted and log B not, and
 * the factory again to have certificates issued with SCTs from those logs.
 * The evidence (STH, inclusion and consistency proofs) is fetched from the
 * running log with user/service/ct/ct_client.c; the log is told to misbehave over its
 * own HTTP API.  Every verdict of issue 5 is asserted: valid chain and SCT,
 * unknown log, bad SCT signature, missing SCT, good and bad inclusion proof,
 * inconsistent STHs; and the chain is judged at the agreed time, not ours.
 *
 * The fork case breaks log A for good, so it is registered last.
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/pem.h>
#include <openssl/x509_vfy.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "service/ct/ct.h"
#include "service/ct/ct_client.h"
#include "hm_test.h"
#include "hm_ct_env.h"

/* ---- helpers ---- */

/* Evidence for chain i from the log at url (log index li in ct), starting
 * the consistency proof at ct's latest STH of that log. */
static bool fetch(struct hm_ct *ct, size_t li, const char *url, int i, struct hm_ct_evidence *ev)
{
	uint8_t id[HM_CT_LOG_ID_LEN];
	struct hm_ct_sth latest;
	uint64_t from = 0;

	hm_ct_log_id(ct, li, id);
	if (hm_ct_latest_sth(ct, id, &latest) == 0)
		from = latest.tree_size;
	return fetch_from(url, id, i, from, ev);
}

static bool misbehave(const char *url, const char *mode)
{
	CURL *c = curl_easy_init();
	char u[128], body[64];
	long status = 0;
	FILE *devnull = fopen("/dev/null", "w");

	snprintf(u, sizeof(u), "%s/ct/test/misbehave", url);
	snprintf(body, sizeof(body), "{\"mode\": \"%s\"}", mode);
	curl_easy_setopt(c, CURLOPT_URL, u);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, devnull);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 5000L);
	bool ok = curl_easy_perform(c) == CURLE_OK &&
		  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status) == CURLE_OK && status == 200;
	curl_easy_cleanup(c);
	fclose(devnull);
	return ASSERT_TRUE(ok, "POST /ct/test/misbehave");
}

static enum hm_ct_result check(struct hm_ct *ct, int i, uint64_t t, const struct hm_ct_evidence *ev,
			       size_t n_ev, struct hm_ct_verdict *v)
{
	enum hm_ct_result r = hm_ct_check(ct, env.chain[i], env.chain_len[i], t, ev, n_ev, v);

	printf("  %-12s -> %s: %s\n", chain_names[i], hm_ct_result_name(r), v->reason);
	return r;
}

/* Chain i judged now, with no evidence, by a new checker that knows log A
 * (and log B when with_log_b); log A's id in log_a when it is not NULL.
 * HM_CT_RESULT_COUNT when there is no checker. */
static enum hm_ct_result judge_alone(bool with_log_b, int i, struct hm_ct_verdict *v,
				     uint8_t log_a[HM_CT_LOG_ID_LEN])
{
	struct hm_ct *ct = new_ct(with_log_b);
	enum hm_ct_result r;

	if (!ct)
		return HM_CT_RESULT_COUNT;
	r = check(ct, i, agreed_now(), NULL, 0, v);
	if (log_a)
		hm_ct_log_id(ct, 0, log_a);
	hm_ct_free(ct);
	return r;
}

/* ---- cases ---- */

HM_TEST(valid_chain_and_sct)
{
	struct hm_ct_evidence ev;
	struct hm_ct_verdict v;
	struct hm_ct *ct;
	uint8_t id[HM_CT_LOG_ID_LEN];

	NEED_ENV();
	ct = new_ct(false);
	if (!ct || !fetch(ct, 0, env.url_a, VALID, &ev))
		goto out;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev, 1, &v), HM_CT_OK, "valid chain, SCT, inclusion");
	hm_ct_log_id(ct, 0, id);
	ASSERT_MEMEQ(v.log_id, id, HM_CT_LOG_ID_LEN, "decided by log A");
	ASSERT_EQ(v.tree_size, ev.sth.tree_size, "against the served STH");
	ASSERT_EQ(v.x509_error, 0, "no X.509 error");

	/* Our rebuilt MerkleTreeLeaf is byte for byte the log's: its hash is
	 * the hash of the entry get-entries serves at the proven index. */
	struct hm_ct_client *c = hm_ct_client_new(env.url_a, 5000);
	struct hm_ct_entry *entries = NULL;
	size_t n = 0;
	hm_merkle_hash lh, mine;
	char err[256] = "";

	if (ASSERT_OK(hm_ct_get_entries(c, v.leaf_index, v.leaf_index, &entries, &n, err, sizeof(err)), err) &&
	    ASSERT_EQ(n, 1, "one entry")) {
		hm_merkle_leaf_hash(entries[0].leaf_input.data, entries[0].leaf_input.len, lh);
		ASSERT_OK(hm_ct_leaf_hash(env.chain[VALID], env.chain_len[VALID], id, mine, err, sizeof(err)), err);
		ASSERT_MEMEQ(lh, mine, HM_MERKLE_HASH_LEN, "leaf hash = hash of the log's leaf_input");
	}
	hm_ct_entries_free(entries, n);
	hm_ct_client_free(c);
out:
	hm_ct_free(ct);
}

HM_TEST(unknown_log)
{
	struct hm_ct_evidence ev;
	struct hm_ct_verdict v;
	struct hm_ct *ct;

	NEED_ENV();
	ASSERT_EQ(judge_alone(false, UNKNOWN_LOG, &v, NULL), HM_CT_SCT_UNKNOWN_LOG,
		  "SCT from log B, which we do not know");

	/* The same certificate with log B configured: then it is fine, so the
	 * verdict above came from the configuration, not from the certificate. */
	ct = new_ct(true);
	if (ct && fetch(ct, 1, env.url_b, UNKNOWN_LOG, &ev))
		ASSERT_EQ(check(ct, UNKNOWN_LOG, agreed_now(), &ev, 1, &v), HM_CT_OK, "log B known");
	hm_ct_free(ct);
}

HM_TEST(bad_sct_signature)
{
	struct hm_ct_verdict v;
	uint8_t id[HM_CT_LOG_ID_LEN];

	NEED_ENV();
	ASSERT_EQ(judge_alone(false, BAD_SCT, &v, id), HM_CT_SCT_BAD_SIGNATURE,
		  "one byte of log A's signature changed");
	ASSERT_MEMEQ(v.log_id, id, HM_CT_LOG_ID_LEN, "names log A");
	ASSERT_STRCONTAINS(v.reason, "does not verify", "reason");
}

HM_TEST(missing_sct)
{
	struct hm_ct_verdict v;

	NEED_ENV();
	ASSERT_EQ(judge_alone(true, NO_SCT, &v, NULL), HM_CT_SCT_MISSING, "no SCT list");
}

HM_TEST(no_evidence)
{
	struct hm_ct_verdict v;

	NEED_ENV();
	ASSERT_EQ(judge_alone(false, VALID, &v, NULL), HM_CT_NO_EVIDENCE, "no STH, no proof");
}

/* Validity is judged at the agreed time the caller passes, not the clock. */
HM_TEST(chain_at_the_agreed_time)
{
	struct hm_ct_evidence ev;
	struct hm_ct_verdict v;
	struct hm_ct *ct, *empty;
	uint64_t now = agreed_now();

	NEED_ENV();
	ct = new_ct(false);
	if (!ct || !fetch(ct, 0, env.url_a, VALID, &ev))
		goto out;
	ASSERT_EQ(check(ct, VALID, now + 30 * 86400, &ev, 1, &v), HM_CT_CHAIN_INVALID, "30 days on");
	ASSERT_EQ(v.x509_error, X509_V_ERR_CERT_HAS_EXPIRED, "expired");
	ASSERT_EQ(v.time, now + 30 * 86400, "the verdict records the agreed time");
	ASSERT_EQ(check(ct, VALID, now - 2 * 86400, &ev, 1, &v), HM_CT_CHAIN_INVALID, "2 days back");
	ASSERT_EQ(v.x509_error, X509_V_ERR_CERT_NOT_YET_VALID, "not yet valid");
	/* 30 minutes before the SCT: the leaf is valid (from an hour before
	 * issuance) but the SCT is from the future */
	if (ASSERT_NEQ(env.sct_ms, 0, "SCT timestamp known"))
		ASSERT_EQ(check(ct, VALID, env.sct_ms / 1000 - 1800, &ev, 1, &v), HM_CT_SCT_BAD_SIGNATURE,
			  "SCT dated after the verification time");
	ASSERT_STRCONTAINS(v.reason, "after the verification time", "reason");
	/* no trust anchor */
	empty = hm_ct_new();
	if (empty) {
		hm_ct_check(empty, env.chain[VALID], env.chain_len[VALID], now, &ev, 1, &v);
		ASSERT_EQ(v.result, HM_CT_CHAIN_INVALID, "empty trust store");
		ASSERT_EQ(v.x509_error, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "no issuer");
	}
	hm_ct_free(empty);
	/* garbage and truncated chains are malformed, not a crash */
	ASSERT_EQ(hm_ct_check(ct, "not a pem", 9, now, NULL, 0, &v), HM_CT_MALFORMED, "garbage");
	ASSERT_EQ(hm_ct_check(ct, env.chain[VALID], 100, now, NULL, 0, &v), HM_CT_MALFORMED, "truncated");
out:
	hm_ct_free(ct);
}

HM_TEST(inclusion_proofs)
{
	struct hm_ct_evidence ev, bad;
	struct hm_ct_verdict v;
	struct hm_ct *ct;

	NEED_ENV();
	ct = new_ct(false);
	if (!ct || !fetch(ct, 0, env.url_a, VALID, &ev))
		goto out;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev, 1, &v), HM_CT_OK, "good inclusion proof");
	if (!ASSERT_GE(ev.inclusion_len, 1, "a proof with hashes"))
		goto out;
	/* every byte of the proof changed, one at a time */
	int refused = 0, tried = 0;
	for (size_t h = 0; h < ev.inclusion_len; h++)
		for (int b = 0; b < HM_MERKLE_HASH_LEN; b++) {
			bad = ev;
			bad.consistency_from = ev.sth.tree_size; /* the state now holds this STH */
			bad.consistency_len = 0;
			bad.inclusion[h][b] ^= 0x20;
			tried++;
			refused += hm_ct_check(ct, env.chain[VALID], env.chain_len[VALID], agreed_now(), &bad,
					       1, &v) == HM_CT_INCLUSION_FAILED;
		}
	ASSERT_EQ(refused, tried, "every altered proof refused");
	bad = ev;
	bad.consistency_from = ev.sth.tree_size;
	bad.consistency_len = 0;
	bad.leaf_index ^= 1;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &bad, 1, &v), HM_CT_INCLUSION_FAILED, "wrong index");
	bad.leaf_index = ev.leaf_index;
	bad.inclusion_len--;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &bad, 1, &v), HM_CT_INCLUSION_FAILED, "proof cut short");
	/* the proof of another certificate (the bad_sct one) for this one */
	hm_ct_free(ct);
	ct = new_ct(false);
	if (!ct || !fetch(ct, 0, env.url_a, BAD_SCT, &bad))
		goto out;
	bad.consistency_from = 0;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &bad, 1, &v), HM_CT_INCLUSION_FAILED,
		  "another entry's proof");
	/* the log itself serving a bad proof */
	hm_ct_free(ct);
	ct = new_ct(false);
	if (!ct || !misbehave(env.url_a, "bad-proof"))
		goto out;
	if (fetch(ct, 0, env.url_a, VALID, &bad))
		ASSERT_EQ(check(ct, VALID, agreed_now(), &bad, 1, &v), HM_CT_INCLUSION_FAILED,
			  "log in bad-proof mode");
	misbehave(env.url_a, "none");
out:
	hm_ct_free(ct);
}

HM_TEST(sth_signature)
{
	struct hm_ct_evidence ev;
	struct hm_ct_verdict v;
	struct hm_ct *ct;

	NEED_ENV();
	ct = new_ct(false);
	if (!ct || !misbehave(env.url_a, "wrong-key"))
		goto out;
	if (fetch(ct, 0, env.url_a, VALID, &ev))
		ASSERT_EQ(check(ct, VALID, agreed_now(), &ev, 1, &v), HM_CT_STH_BAD_SIGNATURE,
			  "log signs its STH with another key");
	misbehave(env.url_a, "none");
	if (!fetch(ct, 0, env.url_a, VALID, &ev))
		goto out;
	ev.sth.root[0] ^= 1;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev, 1, &v), HM_CT_STH_BAD_SIGNATURE, "root altered");
	ev.sth.root[0] ^= 1;
	ev.sth.tree_size++;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev, 1, &v), HM_CT_STH_BAD_SIGNATURE, "size altered");
	ev.sth.tree_size--;
	ev.sth.sig[0] = 1; /* not sha256 */
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev, 1, &v), HM_CT_STH_BAD_SIGNATURE, "bad algorithm");
	struct hm_ct_sth none;
	uint8_t id[HM_CT_LOG_ID_LEN];
	hm_ct_log_id(ct, 0, id);
	ASSERT_EQ(hm_ct_latest_sth(ct, id, &none), 1, "no unsigned STH was taken");
out:
	hm_ct_free(ct);
}

/* The log grows; the new STH is accepted with a consistency proof from the
 * one we hold, and refused without a right one. */
HM_TEST(sth_consistency)
{
	struct hm_ct_evidence ev, ev2;
	struct hm_ct_verdict v;
	struct hm_ct_sth latest;
	struct hm_ct *ct;
	struct hm_ct_client *c = hm_ct_client_new(env.url_a, 5000);
	struct hm_ct_blob *roots = NULL, chain[2] = { { 0 } };
	struct hm_ct_sct sct = { 0 };
	size_t n_roots = 0;
	uint8_t id[HM_CT_LOG_ID_LEN];
	char err[256] = "", path[128];

	NEED_ENV();
	ct = new_ct(false);
	if (!ct || !c || !fetch(ct, 0, env.url_a, VALID, &ev))
		goto out;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev, 1, &v), HM_CT_OK, "first STH taken");
	hm_ct_log_id(ct, 0, id);

	/* add-chain [intermediate, root], with the root from get-roots */
	if (!ASSERT_OK(hm_ct_get_roots(c, &roots, &n_roots, err, sizeof(err)), err) ||
	    !ASSERT_EQ(n_roots, 1, "one root"))
		goto out;
	snprintf(path, sizeof(path), "%s/int.pem", env.dir);
	{
		FILE *f = fopen(path, "r");
		X509 *x = f ? PEM_read_X509(f, NULL, NULL, NULL) : NULL;
		unsigned char *der = NULL;
		int len = x ? i2d_X509(x, &der) : -1;

		if (f)
			fclose(f);
		X509_free(x);
		if (!ASSERT_GE(len, 1, "intermediate"))
			goto out;
		chain[0].data = der;
		chain[0].len = (size_t)len;
	}
	chain[1] = roots[0];
	if (!ASSERT_OK(hm_ct_add_chain(c, chain, 2, false, &sct, err, sizeof(err)), err))
		goto out;
	ASSERT_MEMEQ(sct.log_id, id, HM_CT_LOG_ID_LEN, "the SCT names log A");

	if (!fetch(ct, 0, env.url_a, VALID, &ev2))
		goto out;
	ASSERT_GE(ev2.sth.tree_size, ev.sth.tree_size + 1, "the log grew");
	ASSERT_EQ(ev2.consistency_from, ev.sth.tree_size, "proof from our STH");
	/* a wrong proof first: refused, and the state stays */
	ev2.consistency[0][5] ^= 0x40;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev2, 1, &v), HM_CT_STH_INCONSISTENT, "altered consistency proof");
	ASSERT_OK(hm_ct_latest_sth(ct, id, &latest), "latest");
	ASSERT_EQ(latest.tree_size, ev.sth.tree_size, "state unchanged");
	ev2.consistency[0][5] ^= 0x40;
	ev2.consistency_from--;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev2, 1, &v), HM_CT_STALE_EVIDENCE, "proof from another size");
	ev2.consistency_from++;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev2, 1, &v), HM_CT_OK, "consistent growth");
	ASSERT_OK(hm_ct_latest_sth(ct, id, &latest), "latest");
	ASSERT_EQ(latest.tree_size, ev2.sth.tree_size, "state moved forward");
	/* the older STH, offered again with the proof between the two: fine,
	 * and the latest stays the newer one */
	ASSERT_EQ(hm_ct_observe_sth(ct, id, &ev.sth, ev2.sth.tree_size, ev2.consistency,
				    ev2.consistency_len, &v), HM_CT_OK, "older STH, consistent");
	ASSERT_OK(hm_ct_latest_sth(ct, id, &latest), "latest");
	ASSERT_EQ(latest.tree_size, ev2.sth.tree_size, "latest not moved back");
out:
	free(chain[0].data);
	hm_ct_blobs_free(roots, n_roots);
	hm_ct_sct_free(&sct);
	hm_ct_client_free(c);
	hm_ct_free(ct);
}

/* Two replicas with the same inputs and state agree byte for byte. */
HM_TEST(verdict_encoding)
{
	struct hm_ct_evidence ev;
	struct hm_ct_verdict v1, v2, back;
	uint8_t e1[HM_CT_VERDICT_MAX], e2[HM_CT_VERDICT_MAX], e3[HM_CT_VERDICT_MAX];
	struct hm_ct *r1, *r2;
	uint64_t t = agreed_now();
	size_t n1, n2, n3;

	NEED_ENV();
	r1 = new_ct(false);
	r2 = new_ct(false);
	if (!r1 || !r2 || !fetch(r1, 0, env.url_a, VALID, &ev))
		goto out;
	for (int i = 0; i < N_CHAINS; i++) {
		hm_ct_check(r1, env.chain[i], env.chain_len[i], t, &ev, 1, &v1);
		hm_ct_check(r2, env.chain[i], env.chain_len[i], t, &ev, 1, &v2);
		n1 = hm_ct_verdict_encode(&v1, e1, sizeof(e1));
		n2 = hm_ct_verdict_encode(&v2, e2, sizeof(e2));
		if (!ASSERT_GE(n1, HM_CT_VERDICT_FIXED, "encoded") || !ASSERT_EQ(n1, n2, "same length") ||
		    !ASSERT_MEMEQ(e1, e2, n1, "same bytes on two replicas"))
			continue;
		if (!ASSERT_OK(hm_ct_verdict_decode(e1, n1, &back), "decode"))
			continue;
		n3 = hm_ct_verdict_encode(&back, e3, sizeof(e3));
		ASSERT_EQ(n3, n1, "re-encoded length");
		ASSERT_MEMEQ(e3, e1, n1, "decode is the inverse");
		ASSERT_EQ(back.result, v1.result, "result");
		ASSERT_EQ(hm_ct_verdict_decode(e1, n1 - 1, &back), -1, "truncated");
		ASSERT_EQ(hm_ct_verdict_decode(e1, HM_CT_VERDICT_FIXED - 1, &back), -1, "too short");
		e1[0] = 'X';
		ASSERT_EQ(hm_ct_verdict_decode(e1, n1, &back), -1, "bad magic");
		e1[0] = 'H';
		e1[5] = HM_CT_RESULT_COUNT;
		ASSERT_EQ(hm_ct_verdict_decode(e1, n1, &back), -1, "bad result");
	}
	ASSERT_EQ(hm_ct_verdict_encode(&v1, e1, HM_CT_VERDICT_FIXED - 1), 0, "short buffer");
out:
	hm_ct_free(r1);
	hm_ct_free(r2);
}

HM_TEST(evidence_encoding)
{
	struct hm_ct_evidence ev, back;
	struct hm_ct_verdict v1, v2;
	static uint8_t buf[HM_CT_EVIDENCE_MAX], again[HM_CT_EVIDENCE_MAX];
	struct hm_ct *r1, *r2;
	size_t n;
	int refused = 0;

	NEED_ENV();
	r1 = new_ct(false);
	r2 = new_ct(false);
	if (!r1 || !r2 || !fetch(r1, 0, env.url_a, VALID, &ev))
		goto out;
	n = hm_ct_evidence_encode(&ev, buf, sizeof(buf));
	if (!ASSERT_GE(n, 100, "encoded") ||
	    !ASSERT_EQ(hm_ct_evidence_decode(buf, n, &back), (long)n, "decoded, all bytes used"))
		goto out;
	ASSERT_EQ(hm_ct_evidence_encode(&back, again, sizeof(again)), n, "re-encoded length");
	ASSERT_MEMEQ(again, buf, n, "decode is the inverse");
	/* the decoded evidence gives the same verdict as the original */
	ASSERT_EQ(check(r1, VALID, agreed_now(), &ev, 1, &v1), HM_CT_OK, "original");
	ASSERT_EQ(check(r2, VALID, agreed_now(), &back, 1, &v2), HM_CT_OK, "decoded");
	for (size_t cut = 0; cut < n; cut++)
		refused += hm_ct_evidence_decode(buf, cut, &back) == -1;
	ASSERT_EQ(refused, n, "every truncation refused");
	buf[4] = 2;
	ASSERT_EQ(hm_ct_evidence_decode(buf, n, &back), -1, "unknown version");
	ASSERT_EQ(hm_ct_evidence_encode(&ev, buf, n - 1), 0, "short buffer");
	ASSERT_EQ(hm_ct_check(r1, env.chain[VALID], env.chain_len[VALID], UINT64_MAX, &ev, 1, &v1),
		  HM_CT_MALFORMED, "time out of range");
out:
	hm_ct_free(r1);
	hm_ct_free(r2);
}

HM_TEST(state_snapshot)
{
	struct hm_ct_evidence ev;
	struct hm_ct_verdict v;
	struct hm_ct *ct, *copy, *other;
	struct hm_ct_sth a, b;
	uint8_t *s1 = NULL, *s2 = NULL, id[HM_CT_LOG_ID_LEN];
	size_t l1, l2;

	NEED_ENV();
	ct = new_ct(true);
	copy = new_ct(true);
	other = hm_ct_new(); /* knows no log */
	if (!ct || !copy || !other || !fetch(ct, 0, env.url_a, VALID, &ev))
		goto out;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev, 1, &v), HM_CT_OK, "an STH in the state");
	if (!ASSERT_OK(hm_ct_state_snapshot(ct, &s1, &l1), "snapshot") ||
	    !ASSERT_OK(hm_ct_state_restore(copy, s1, l1), "restore"))
		goto out;
	hm_ct_log_id(ct, 0, id);
	ASSERT_OK(hm_ct_latest_sth(ct, id, &a), "a");
	ASSERT_OK(hm_ct_latest_sth(copy, id, &b), "b");
	ASSERT_MEMEQ(&a, &b, sizeof(a), "same latest STH");
	ASSERT_OK(hm_ct_state_snapshot(copy, &s2, &l2), "snapshot of the copy");
	ASSERT_EQ(l1, l2, "same length");
	ASSERT_MEMEQ(s1, s2, l1, "same bytes");
	ASSERT_EQ(hm_ct_state_restore(other, s1, l1), -1, "unknown log refused");
	ASSERT_EQ(hm_ct_state_restore(copy, s1, l1 - 1), -1, "truncated refused");
	s1[l1 - 1] ^= 1; /* in the STH signature */
	ASSERT_EQ(hm_ct_state_restore(copy, s1, l1), -1, "bad signature refused");
	ASSERT_EQ(hm_ct_state_restore(copy, (const uint8_t *)"HMCS", 4), -1, "garbage refused");
out:
	free(s1);
	free(s2);
	hm_ct_free(ct);
	hm_ct_free(copy);
	hm_ct_free(other);
}

HM_TEST(config_errors)
{
	struct hm_ct *ct = hm_ct_new();
	char err[256] = "", path[128];
	uint8_t wrong[HM_CT_LOG_ID_LEN] = { 0 };

	NEED_ENV();
	if (!ct)
		return;
	ASSERT_EQ(hm_ct_add_trust_pem(ct, "nothing", 7, err, sizeof(err)), -1, "no certificate");
	ASSERT_STRCONTAINS(err, "no PEM certificate", "error says why");
	snprintf(path, sizeof(path), "%s/log_a.pub.pem", env.dir);
	ASSERT_EQ(hm_ct_add_log_file(ct, "a", path, wrong, err, sizeof(err)), -1, "wrong log id");
	ASSERT_STRCONTAINS(err, "log id", "error says why");
	ASSERT_OK(hm_ct_add_log_file(ct, "a", path, NULL, err, sizeof(err)), "add");
	ASSERT_EQ(hm_ct_add_log_file(ct, "a2", path, NULL, err, sizeof(err)), -1, "the same key twice");
	snprintf(path, sizeof(path), "%s/root.pem", env.dir); /* a certificate, not a key */
	ASSERT_EQ(hm_ct_add_log_file(ct, "x", path, NULL, err, sizeof(err)), -1, "not a key");
	ASSERT_EQ(hm_ct_add_log_file(ct, "x", "/nonexistent", NULL, err, sizeof(err)), -1, "no file");
	/* the client: a closed port and a 404 are errors with a message */
	struct hm_ct_client *c = hm_ct_client_new("http://127.0.0.1:1", 2000);
	struct hm_ct_sth sth;
	ASSERT_EQ(hm_ct_get_sth(c, &sth, err, sizeof(err)), -1, "closed port");
	hm_ct_client_free(c);
	c = hm_ct_client_new(env.url_a, 5000);
	hm_merkle_hash nothing = { 0 }, path_h[HM_CT_MAX_PROOF];
	uint64_t idx;
	size_t len;
	ASSERT_EQ(hm_ct_get_proof_by_hash(c, nothing, 1, &idx, path_h, HM_CT_MAX_PROOF, &len, err, sizeof(err)),
		  -1, "unknown leaf");
	ASSERT_STRCONTAINS(err, "HTTP 404", "status in the error");
	hm_ct_client_free(c);
	hm_ct_free(ct);
}

/* Last: this forks log A for good. */
HM_TEST(inconsistent_sths)
{
	struct hm_ct_evidence ev, forked;
	struct hm_ct_verdict v;
	struct hm_ct_sth latest;
	struct hm_ct *ct;
	uint8_t id[HM_CT_LOG_ID_LEN];

	NEED_ENV();
	ct = new_ct(false);
	if (!ct || !fetch(ct, 0, env.url_a, VALID, &ev))
		goto out;
	ASSERT_EQ(check(ct, VALID, agreed_now(), &ev, 1, &v), HM_CT_OK, "the first view");
	if (!misbehave(env.url_a, "fork"))
		goto out;
	/* the log now shows a second history: entry 0 replaced, one added */
	struct hm_ct_client *c = hm_ct_client_new(env.url_a, 5000);
	char err[256] = "";
	hm_ct_log_id(ct, 0, id);
	memset(&forked, 0, sizeof(forked));
	memcpy(forked.log_id, id, HM_CT_LOG_ID_LEN);
	bool got = ASSERT_OK(hm_ct_get_sth(c, &forked.sth, err, sizeof(err)), err) &&
		   ASSERT_OK(hm_ct_get_sth_consistency(c, ev.sth.tree_size, forked.sth.tree_size,
						       forked.consistency, HM_CT_MAX_PROOF,
						       &forked.consistency_len, err, sizeof(err)), err);
	hm_ct_client_free(c);
	if (!got)
		goto out;
	forked.consistency_from = ev.sth.tree_size;
	ASSERT_TRUE(hm_ct_sth_signature_ok(ct, id, &forked.sth), "the second view is signed by the log");
	ASSERT_EQ(hm_ct_observe_sth(ct, id, &forked.sth, forked.consistency_from, forked.consistency,
				    forked.consistency_len, &v), HM_CT_STH_INCONSISTENT, "two views caught");
	printf("  observe      -> %s: %s\n", hm_ct_result_name(v.result), v.reason);
	/* and through a certificate check with the log's evidence */
	forked.inclusion_len = ev.inclusion_len;
	memcpy(forked.inclusion, ev.inclusion, sizeof(ev.inclusion));
	ASSERT_EQ(check(ct, VALID, agreed_now(), &forked, 1, &v), HM_CT_STH_INCONSISTENT, "in a check");
	ASSERT_OK(hm_ct_latest_sth(ct, id, &latest), "latest");
	ASSERT_MEMEQ(latest.root, ev.sth.root, HM_MERKLE_HASH_LEN, "the first view is kept");
out:
	hm_ct_free(ct);
}
