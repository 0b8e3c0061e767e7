// SPDX-License-Identifier: MIT
/*
 * Consensus certificates (user/client/certificate.c): collection stops at 2f+1
 * validly signed replies over one payload from distinct replicas (duplicates,
 * other results, other requests, forged signatures and garbage do not count);
 * the JSON certificate verifies offline, and is refused when the result, a
 * header or a signature is changed, a signature is missing or repeated, or
 * the cluster's key for a signer is another.  The CT form (HM_CERT_CT) of
 * the same replies verifies too, and only as that form.  Replies name the
 * request they answer: one naming another op, and a refusal, never count,
 * and a certificate whose op (or op digest) is changed does not verify.
 */
#include <jansson.h>
#include <sodium.h>

#include "client/certificate.h"
#include "common/crypto.h"
#include "hm_test.h"
#include "common/wire.h"

#define CLIENT 100
#define TS 5

static struct hm_config cfg;
static struct hm_keypair kp[4];

static void cluster(void)
{
	hm_config_defaults(&cfg);
	cfg.n_members = 4;
	cfg.max_faulty_nodes = 1;
	for (uint32_t i = 0; i < 4; i++) {
		if (hm_keypair_generate(&kp[i]) < 0)
			abort();
		cfg.members[i].id = i;
		memcpy(cfg.members[i].public_key, kp[i].pk, HM_PUBKEY_LEN);
	}
}

/* A reply datagram from `sender` signed with `key`, answering the request
 * of op `op` with `status` (a refusal has no result and exec_seq 0). */
static size_t reply_to(uint8_t *buf, size_t cap, uint32_t sender, const struct hm_keypair *key,
		       uint64_t ts, const char *op, uint8_t status, const char *result)
{
	uint8_t payload[256], d[HM_DIGEST_LEN];
	bool refusal = status != HM_REPLY_RESULT;
	size_t plen;

	hm_digest(op, strlen(op), d);
	plen = hm_reply_payload(payload, sizeof(payload), CLIENT, refusal ? 0 : 42, d, status,
				result, refusal ? 0 : strlen(result));
	return hm_msg_build(buf, cap, HM_MSG_REPLY, sender, 0, ts, NULL, payload, (uint32_t)plen, key);
}

/* The result `result` of the request of op "op". */
static size_t reply(uint8_t *buf, size_t cap, uint32_t sender, const struct hm_keypair *key,
		    uint64_t ts, const char *result)
{
	return reply_to(buf, cap, sender, key, ts, "op", HM_REPLY_RESULT, result);
}

static int verify(json_t *j)
{
	uint8_t *op, *res;
	size_t ol, rl;
	char err[256];
	int rc = hm_cert_verify(j, &cfg, &op, &ol, &res, &rl, err, sizeof(err));

	if (rc == 0) {
		free(op);
		free(res);
	}
	return rc;
}

HM_TEST(collect_and_verify)
{
	struct hm_cert c;
	uint8_t buf[1024];
	size_t n;
	json_t *j, *t;

	cluster();
	if (!ASSERT_OK(hm_cert_init(&c, CLIENT, TS, "op", 2), "init"))
		return;
	n = reply(buf, sizeof(buf), 0, &kp[0], TS, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "one reply");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "the same again");
	n = reply(buf, sizeof(buf), 1, &kp[1], TS, "other answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "another result");
	n = reply(buf, sizeof(buf), 2, &kp[3], TS, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "signed with another replica's key");
	n = reply(buf, sizeof(buf), 2, &kp[2], TS + 1, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "another request's reply");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, (const uint8_t *)"garbage", 7), "garbage");
	n = reply_to(buf, sizeof(buf), 2, &kp[2], TS, "another op", HM_REPLY_RESULT, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "a reply naming another request");
	n = reply_to(buf, sizeof(buf), 2, &kp[2], TS, "op", HM_REPLY_CONFLICT, "");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "a refusal");
	n = reply(buf, sizeof(buf), 2, &kp[2], TS, "answer");
	ASSERT_FALSE(hm_cert_add(&c, &cfg, buf, n), "two matching");
	n = reply(buf, sizeof(buf), 3, &kp[3], TS, "answer");
	ASSERT_TRUE(hm_cert_add(&c, &cfg, buf, n), "2f+1 matching: complete");
	j = hm_cert_to_json(&c, &cfg);
	if (!ASSERT_TRUE(j != NULL, "json"))
		return;
	ASSERT_EQ(json_array_size(json_object_get(j, "signatures")), 3, "three signatures");
	ASSERT_OK(verify(j), "verifies");

	t = json_deep_copy(j);
	json_object_set_new(t, "result", json_string("616e7377657221")); /* "answer!" */
	ASSERT_ERR(verify(t), "another result");
	json_decref(t);
	t = json_deep_copy(j);
	json_object_set_new(t, "exec_seq", json_integer(43));
	ASSERT_ERR(verify(t), "another sequence");
	json_decref(t);
	{
		uint8_t d[HM_DIGEST_LEN];
		char hex[2 * HM_DIGEST_LEN + 1];
		uint8_t *op, *res;
		size_t ol, rl;
		char err[256];

		/* The replies bind the op: another op (with its own, matching
		 * digest) does not verify, nor an op_digest that is not H(op). */
		t = json_deep_copy(j);
		json_object_set_new(t, "op", json_string("6f71")); /* "oq" */
		hm_digest("oq", 2, d);
		sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
		json_object_set_new(t, "op_digest", json_string(hex));
		ASSERT_ERR(verify(t), "another op");
		json_decref(t);
		t = json_deep_copy(j);
		json_object_set_new(t, "op_digest", json_string(hex));
		ASSERT_ERR(hm_cert_verify(t, &cfg, &op, &ol, &res, &rl, err, sizeof(err)),
			   "an op_digest that is not the op's");
		ASSERT_STRCONTAINS(err, "op_digest is not the digest of op", "reason");
		json_decref(t);
		/* A header of the old reply version is named as such. */
		t = json_deep_copy(j);
		{
			json_t *s = json_array_get(json_object_get(t, "signatures"), 0);
			char *h = strdup(json_string_value(json_object_get(s, "header")));

			h[8] = '0';
			h[9] = '1'; /* byte 4, the version: 1 */
			json_object_set_new(s, "header", json_string(h));
			free(h);
		}
		ASSERT_ERR(hm_cert_verify(t, &cfg, &op, &ol, &res, &rl, err, sizeof(err)),
			   "a version-1 reply header");
		ASSERT_STRCONTAINS(err, "before replies named their request", "reason");
		json_decref(t);
	}
	t = json_deep_copy(j);
	json_array_remove(json_object_get(t, "signatures"), 0);
	ASSERT_ERR(verify(t), "2f signatures");
	json_decref(t);
	t = json_deep_copy(j);
	json_array_set(json_object_get(t, "signatures"), 1,
		       json_array_get(json_object_get(t, "signatures"), 0));
	ASSERT_ERR(verify(t), "a replica twice");
	json_decref(t);
	for (size_t at = 0; at < 2 * HM_CERT_HDR_LEN; at += 2) {
		json_t *s;
		char *hex;

		t = json_deep_copy(j);
		s = json_array_get(json_object_get(t, "signatures"), 1);
		hex = strdup(json_string_value(json_object_get(s, "header")));
		/* Flags (bytes 6..7) are not signed and not checked. */
		if (at / 2 == 6 || at / 2 == 7) {
			free(hex);
			json_decref(t);
			continue;
		}
		hex[at] = hex[at] == '0' ? '1' : '0';
		json_object_set_new(s, "header", json_string(hex));
		free(hex);
		ASSERT_ERR(verify(t), "every header byte counts");
		json_decref(t);
	}
	memcpy(cfg.members[0].public_key, kp[1].pk, HM_PUBKEY_LEN);
	ASSERT_ERR(verify(j), "another key for replica 0 in the config");
	json_decref(j);
	hm_cert_free(&c);
}

/* The same replies written in the CT verdict form: the header split from
 * its signature, no op; it verifies as CT and not as version 1. */
HM_TEST(ct_form)
{
	struct hm_cert c;
	uint8_t buf[1024], *op, *res;
	size_t n, ol, rl;
	char err[256];
	json_t *j, *e;

	cluster();
	if (!ASSERT_OK(hm_cert_init(&c, CLIENT, TS, "op", 2), "init"))
		return;
	for (uint32_t i = 0; i < 3; i++) {
		n = reply(buf, sizeof(buf), i, &kp[i], TS, "verdict");
		hm_cert_add(&c, &cfg, buf, n);
	}
	ASSERT_EQ(hm_cert_signers(&c, &cfg), 3, "three signers");
	j = hm_cert_to_json_as(&c, &cfg, HM_CERT_CT, json_pack("{s:s}", "result", "ok"));
	if (!ASSERT_TRUE(j != NULL, "json"))
		return;
	ASSERT_EQ(hm_cert_format_of(j), HM_CERT_CT, "names its format");
	ASSERT_EQ(json_array_size(json_object_get(j, "replies")), 3, "three replies");
	ASSERT_TRUE(json_object_get(j, "op") == NULL, "the op's digest only");
	ASSERT_OK(hm_cert_verify_as(j, &cfg, HM_CERT_CT, &op, &ol, &res, &rl, err, sizeof(err)), err);
	ASSERT_TRUE(op == NULL && rl == 7 && memcmp(res, "verdict", 7) == 0, "the result");
	free(res);
	ASSERT_ERR(verify(j), "not a version 1 certificate");
	{
		json_t *t = json_deep_copy(j);
		uint8_t d[HM_DIGEST_LEN];
		char hex[2 * HM_DIGEST_LEN + 1];

		hm_digest("oq", 2, d);
		sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
		json_object_set_new(t, "op_digest", json_string(hex));
		ASSERT_ERR(hm_cert_verify_as(t, &cfg, HM_CERT_CT, &op, &ol, &res, &rl, err,
					     sizeof(err)), "another op digest");
		json_object_del(t, "op_digest");
		ASSERT_ERR(hm_cert_verify_as(t, &cfg, HM_CERT_CT, &op, &ol, &res, &rl, err,
					     sizeof(err)), "no op digest");
		json_decref(t);
	}
	e = json_array_get(json_object_get(j, "replies"), 1);
	json_object_set(e, "signature", json_object_get(json_array_get(json_object_get(j, "replies"),
								       0), "signature"));
	ASSERT_ERR(hm_cert_verify_as(j, &cfg, HM_CERT_CT, &op, &ol, &res, &rl, err, sizeof(err)),
		   "another replica's signature");
	ASSERT_STRCONTAINS(err, "does not verify under replica 1", "reason");
	json_decref(j);
	hm_cert_free(&c);
}

__attribute__((constructor(200))) static void init_crypto(void)
{
	if (hm_crypto_init() < 0)
		abort();
}
