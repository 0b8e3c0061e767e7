// SPDX-License-Identifier: MIT
/* Consensus certificates: collection, both JSON forms, the offline check
 * (see certificate.h). */
#include "client/certificate.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/wire.h"

int hm_cert_init(struct hm_cert *c, uint32_t client, uint64_t timestamp, const void *op,
		 size_t op_len)
{
	memset(c, 0, sizeof(*c));
	c->client = client;
	c->timestamp = timestamp;
	c->winner = -1;
	c->op = malloc(op_len ? op_len : 1);
	if (!c->op)
		return -1;
	memcpy(c->op, op, op_len);
	c->op_len = op_len;
	hm_digest(c->op, op_len, c->op_digest);
	return 0;
}

void hm_cert_free(struct hm_cert *c)
{
	for (int i = 0; i < HM_MAX_REPLICAS; i++)
		free(c->replies[i].result);
	free(c->op);
	memset(c, 0, sizeof(*c));
}

static uint32_t quorum(const struct hm_config *cfg)
{
	return 2 * cfg->max_faulty_nodes + 1;
}

bool hm_cert_add(struct hm_cert *c, const struct hm_config *cfg, const uint8_t *buf, size_t len)
{
	enum hm_drop_reason why;
	struct hm_cert_reply *r;
	struct hm_reply rep;
	struct hm_msg m;
	uint32_t same = 0;

	if (c->winner >= 0)
		return true;
	/* Only results of this very request (client, timestamp, op digest):
	 * a refusal certifies nothing. */
	if (hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why) < 0 || m.type != HM_MSG_REPLY ||
	    m.sender >= cfg->n_members || m.seq != c->timestamp || !hm_msg_payload_ok(&m, &why) ||
	    hm_reply_parse(&m, &rep) < 0 || rep.client != c->client ||
	    rep.status != HM_REPLY_RESULT ||
	    memcmp(rep.req_digest, c->op_digest, HM_DIGEST_LEN) != 0)
		return false;
	r = &c->replies[m.sender];
	if (r->have || !hm_verify_header(m.hdr, cfg->members[m.sender].public_key))
		return false;
	r->result = malloc(rep.result_len ? rep.result_len : 1);
	if (!r->result)
		return false;
	memcpy(r->result, rep.result, rep.result_len);
	r->result_len = rep.result_len;
	r->exec_seq = rep.exec_seq;
	memcpy(r->hdr, m.hdr, HM_CERT_HDR_LEN);
	memcpy(r->digest, m.digest, HM_DIGEST_LEN);
	r->have = true;
	for (uint32_t i = 0; i < cfg->n_members; i++)
		same += c->replies[i].have && !memcmp(c->replies[i].digest, r->digest, HM_DIGEST_LEN);
	if (same >= quorum(cfg))
		c->winner = (int)m.sender;
	return c->winner >= 0;
}

/* What tells the two forms apart: their field names and how an entry
 * carries its header. */
static const struct format {
	const char *request, *result, *entries;
	bool full_op;      /* the op itself, not only its digest */
	bool split_sig;    /* "header" (signed bytes) and "signature" apart */
} formats[] = {
	[HM_CERT_V1] = { "timestamp", "result", "signatures", true, false },
	[HM_CERT_CT] = { "request", "verdict", "replies", false, true },
};

static json_t *hex_json(const uint8_t *b, size_t n)
{
	char *s = malloc(2 * n + 1);
	json_t *j;

	if (!s)
		return json_null();
	sodium_bin2hex(s, 2 * n + 1, b, n);
	j = json_string(s);
	free(s);
	return j;
}

uint32_t hm_cert_signers(const struct hm_cert *c, const struct hm_config *cfg)
{
	uint32_t count = 0;

	for (uint32_t i = 0; c->winner >= 0 && i < cfg->n_members; i++)
		count += c->replies[i].have &&
			 !memcmp(c->replies[i].digest, c->replies[c->winner].digest, HM_DIGEST_LEN);
	return count;
}

json_t *hm_cert_to_json_as(const struct hm_cert *c, const struct hm_config *cfg,
			   enum hm_cert_format fmt, json_t *summary)
{
	const struct format *f = &formats[fmt];
	const struct hm_cert_reply *w;
	json_t *j, *entries = json_array();

	if (c->winner < 0) {
		json_decref(summary);
		json_decref(entries);
		return NULL;
	}
	w = &c->replies[c->winner];
	for (uint32_t i = 0; i < cfg->n_members; i++) {
		const struct hm_cert_reply *r = &c->replies[i];

		if (!r->have || memcmp(r->digest, w->digest, HM_DIGEST_LEN))
			continue;
		if (f->split_sig)
			json_array_append_new(entries, json_pack("{s:i, s:o, s:o}", "replica", (int)i,
								 "header", hex_json(r->hdr, HM_SIGNED_LEN),
								 "signature",
								 hex_json(r->hdr + HM_OFF_SIG, HM_SIG_LEN)));
		else
			json_array_append_new(entries, json_pack("{s:i, s:o}", "replica", (int)i,
								 "header",
								 hex_json(r->hdr, HM_CERT_HDR_LEN)));
	}
	j = json_object();
	if (fmt == HM_CERT_CT) {
		json_object_set_new(j, "format", json_string(HM_CERT_CT_FORMAT));
		json_object_set_new(j, "cluster", json_pack("{s:I, s:I}", "n",
							  (json_int_t)cfg->n_members, "f",
							  (json_int_t)cfg->max_faulty_nodes));
	} else {
		json_object_set_new(j, "version", json_integer(1));
	}
	json_object_set_new(j, "client", json_integer((json_int_t)c->client));
	json_object_set_new(j, f->request, json_integer((json_int_t)c->timestamp));
	json_object_set_new(j, "exec_seq", json_integer((json_int_t)w->exec_seq));
	if (f->full_op)
		json_object_set_new(j, "op", hex_json(c->op, c->op_len));
	json_object_set_new(j, "op_digest", hex_json(c->op_digest, HM_DIGEST_LEN));
	json_object_set_new(j, f->result, hex_json(w->result, w->result_len));
	if (summary)
		json_object_set_new(j, "summary", summary);
	json_object_set_new(j, f->entries, entries);
	return j;
}

json_t *hm_cert_to_json(const struct hm_cert *c, const struct hm_config *cfg)
{
	return hm_cert_to_json_as(c, cfg, HM_CERT_V1, NULL);
}

enum hm_cert_format hm_cert_format_of(const json_t *cert)
{
	return json_object_get(cert, "format") ? HM_CERT_CT : HM_CERT_V1;
}

/* A hex string field of exactly len bytes. */
static int get_hex(const json_t *o, const char *key, uint8_t *out, size_t len)
{
	const char *s = json_string_value(json_object_get(o, key));
	size_t got;

	if (!s || strlen(s) != 2 * len ||
	    sodium_hex2bin(out, len, s, strlen(s), NULL, &got, NULL) != 0 || got != len)
		return -1;
	return 0;
}

/* A hex string field into a malloc'd buffer. */
static int hex_field(const json_t *o, const char *key, uint8_t **out, size_t *len)
{
	const char *s = json_string_value(json_object_get(o, key));
	size_t n;

	if (!s || (n = strlen(s)) % 2)
		return -1;
	*out = malloc(n / 2 + 1);
	if (!*out || get_hex(o, key, *out, n / 2) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*len = n / 2;
	return 0;
}

static int get_u64(const json_t *o, const char *key, uint64_t *out)
{
	json_t *j = json_object_get(o, key);

	if (!json_is_integer(j) || json_integer_value(j) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(j);
	return 0;
}

/* Entry k: a REPLY header signed by that replica, for request ts, over the
 * payload of digest d and length plen.  The client id is bound through the
 * payload digest. */
static int check_entry(const struct format *f, const json_t *e, size_t k,
		       const struct hm_config *cfg, uint64_t ts, const uint8_t d[HM_DIGEST_LEN],
		       size_t plen, uint32_t *replica, char *err, size_t errlen)
{
	struct hm_hdr hdr;
	uint8_t *h = (uint8_t *)&hdr;
	uint64_t id;

	memset(&hdr, 0, sizeof(hdr));
	if (get_u64(e, "replica", &id) < 0 ||
	    (f->split_sig ? get_hex(e, "header", h, HM_SIGNED_LEN) < 0 ||
				    get_hex(e, "signature", h + HM_OFF_SIG, HM_SIG_LEN) < 0
			  : get_hex(e, "header", h, HM_CERT_HDR_LEN) < 0)) {
		if (f->split_sig)
			return hm_set_err(err, errlen, "%s[%zu]: needs replica, header (%d bytes hex) "
					  "and signature (%d bytes hex)", f->entries, k, HM_SIGNED_LEN,
					  HM_SIG_LEN);
		return hm_set_err(err, errlen, "%s[%zu]: needs replica and header (%d bytes hex)",
				  f->entries, k, HM_CERT_HDR_LEN);
	}
	if (id >= cfg->n_members)
		return hm_set_err(err, errlen, "%s[%zu]: replica %" PRIu64 " is not a member (0..%u)",
				  f->entries, k, id, cfg->n_members - 1);
	if (hm_get_be32(h) == HM_MAGIC && h[4] == HM_VERSION && h[5] == HM_MSG_REPLY)
		return hm_set_err(err, errlen, "%s[%zu]: a reply of wire version %d, before replies "
				  "named their request; such a certificate does not bind the op: "
				  "ask again for a new one", f->entries, k, HM_VERSION);
	if (hm_get_be32(h) != HM_MAGIC || h[4] != HM_REPLY_VERSION || h[5] != HM_MSG_REPLY ||
	    hm_get_be32(h + HM_OFF_SENDER) != id || hm_get_be32(h + 12) != plen ||
	    hm_get_be64(h + HM_OFF_SEQ) != ts)
		return hm_set_err(err, errlen, "%s[%zu]: not replica %" PRIu64 "'s reply to request "
				  "%" PRIu64 " of this size", f->entries, k, id, ts);
	if (memcmp(h + HM_OFF_DIGEST, d, HM_DIGEST_LEN) != 0)
		return hm_set_err(err, errlen, "%s[%zu]: replica %" PRIu64 " replied with another "
				  "result", f->entries, k, id);
	if (!hm_verify_header(&hdr, cfg->members[id].public_key))
		return hm_set_err(err, errlen, "%s[%zu]: the signature does not verify under replica "
				  "%" PRIu64 "'s key", f->entries, k, id);
	*replica = (uint32_t)id;
	return 0;
}

int hm_cert_verify_as(const json_t *cert, const struct hm_config *cfg, enum hm_cert_format fmt,
		      uint8_t **op, size_t *op_len, uint8_t **result, size_t *result_len,
		      char *err, size_t errlen)
{
	const struct format *f = &formats[fmt];
	const char *format = json_string_value(json_object_get(cert, "format"));
	json_t *entries = json_object_get(cert, f->entries), *e;
	uint64_t client, ts, seq;
	uint8_t *payload = NULL, d[HM_DIGEST_LEN], op_digest[HM_DIGEST_LEN];
	uint32_t seen = 0, need = quorum(cfg);
	size_t plen, k;

	*op = *result = NULL;
	*op_len = 0;
	if (fmt == HM_CERT_CT ? !format || strcmp(format, HM_CERT_CT_FORMAT) != 0
			      : format || json_integer_value(json_object_get(cert, "version")) != 1) {
		if (fmt == HM_CERT_CT)
			hm_set_err(err, errlen, "not a CT verdict certificate (format is not \"%s\")",
				   HM_CERT_CT_FORMAT);
		else
			hm_set_err(err, errlen, "not a certificate (version 1 with op, result and "
				   "signatures)");
		goto bad;
	}
	if (get_u64(cert, "client", &client) < 0 || client > UINT32_MAX ||
	    get_u64(cert, f->request, &ts) < 0 || get_u64(cert, "exec_seq", &seq) < 0 ||
	    !json_is_array(entries) || (f->full_op && hex_field(cert, "op", op, op_len) < 0) ||
	    hex_field(cert, f->result, result, result_len) < 0) {
		hm_set_err(err, errlen, "needs client, %s, exec_seq,%s %s (hex) and %s", f->request,
			   f->full_op ? " op," : "", f->result, f->entries);
		goto bad;
	}
	/* The request every reply names: the op's digest (computed from the
	 * op when the certificate carries it; it must then agree with an
	 * op_digest field, if any). */
	if (f->full_op) {
		uint8_t given[HM_DIGEST_LEN];

		hm_digest(*op, *op_len, op_digest);
		if (json_object_get(cert, "op_digest") &&
		    (get_hex(cert, "op_digest", given, HM_DIGEST_LEN) < 0 ||
		     memcmp(given, op_digest, HM_DIGEST_LEN) != 0)) {
			hm_set_err(err, errlen, "op_digest is not the digest of op");
			goto bad;
		}
	} else if (get_hex(cert, "op_digest", op_digest, HM_DIGEST_LEN) < 0) {
		hm_set_err(err, errlen, "needs op_digest (%d bytes hex)", HM_DIGEST_LEN);
		goto bad;
	}
	payload = malloc(HM_REPLY_PREFIX_LEN + *result_len);
	if (!payload) {
		hm_set_err(err, errlen, "out of memory");
		goto bad;
	}
	/* What every replica signed: H(client, exec_seq, op digest, RESULT,
	 * result) in its header. */
	plen = hm_reply_payload(payload, HM_REPLY_PREFIX_LEN + *result_len, (uint32_t)client, seq,
				op_digest, HM_REPLY_RESULT, *result, *result_len);
	hm_digest(payload, plen, d);
	json_array_foreach(entries, k, e) {
		uint32_t id = 0;

		if (check_entry(f, e, k, cfg, ts, d, plen, &id, err, errlen) < 0)
			goto bad;
		if (seen & (1u << id)) {
			hm_set_err(err, errlen, "%s[%zu]: replica %u appears twice", f->entries, k, id);
			goto bad;
		}
		seen |= 1u << id;
	}
	if ((uint32_t)__builtin_popcount(seen) < need) {
		hm_set_err(err, errlen, "%d distinct replicas signed, 2f+1 = %u are needed",
			   __builtin_popcount(seen), need);
		goto bad;
	}
	free(payload);
	return 0;
bad:
	free(payload);
	free(*op);
	free(*result);
	*op = *result = NULL;
	return -1;
}

int hm_cert_verify(const json_t *cert, const struct hm_config *cfg, uint8_t **op, size_t *op_len,
		   uint8_t **result, size_t *result_len, char *err, size_t errlen)
{
	return hm_cert_verify_as(cert, cfg, HM_CERT_V1, op, op_len, result, result_len, err,
				 errlen);
}
