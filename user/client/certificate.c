// SPDX-License-Identifier: MIT
/* Consensus certificates (see certificate.h). */
#include "client/certificate.h"

#include <endian.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
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
	const uint8_t *result;
	struct hm_cert_reply *r;
	struct hm_msg m;
	uint64_t exec_seq;
	uint32_t client, same = 0;
	size_t rlen;

	if (c->winner >= 0)
		return true;
	if (hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why) < 0 || m.type != HM_MSG_REPLY ||
	    m.sender >= cfg->n_members || m.seq != c->timestamp || !hm_msg_payload_ok(&m, &why) ||
	    hm_reply_parse(&m, &client, &exec_seq, &result, &rlen) < 0 || client != c->client)
		return false;
	r = &c->replies[m.sender];
	if (r->have || !hm_verify_header(m.hdr, cfg->members[m.sender].public_key))
		return false;
	r->result = malloc(rlen ? rlen : 1);
	if (!r->result)
		return false;
	memcpy(r->result, result, rlen);
	r->result_len = rlen;
	r->exec_seq = exec_seq;
	memcpy(r->hdr, m.hdr, HM_CERT_HDR_LEN);
	memcpy(r->digest, m.digest, HM_DIGEST_LEN);
	r->have = true;
	for (uint32_t i = 0; i < cfg->n_members; i++)
		same += c->replies[i].have && !memcmp(c->replies[i].digest, r->digest, HM_DIGEST_LEN);
	if (same >= quorum(cfg))
		c->winner = (int)m.sender;
	return c->winner >= 0;
}

static json_t *hex_json(const uint8_t *b, size_t n)
{
	char *s = malloc(2 * n + 1);
	json_t *j;

	if (!s)
		return json_null();
	for (size_t i = 0; i < n; i++)
		sprintf(s + 2 * i, "%02x", b[i]);
	s[2 * n] = 0;
	j = json_string(s);
	free(s);
	return j;
}

json_t *hm_cert_to_json(const struct hm_cert *c, const struct hm_config *cfg)
{
	const struct hm_cert_reply *w;
	json_t *sigs = json_array();
	uint8_t d[HM_DIGEST_LEN];

	if (c->winner < 0)
		return NULL;
	w = &c->replies[c->winner];
	for (uint32_t i = 0; i < cfg->n_members; i++) {
		const struct hm_cert_reply *r = &c->replies[i];

		if (r->have && !memcmp(r->digest, w->digest, HM_DIGEST_LEN))
			json_array_append_new(sigs, json_pack("{s:i, s:o}", "replica", (int)i, "header",
							      hex_json(r->hdr, HM_CERT_HDR_LEN)));
	}
	hm_digest(c->op, c->op_len, d);
	return json_pack("{s:i, s:I, s:I, s:I, s:o, s:o, s:o, s:o}", "version", 1, "client",
			 (json_int_t)c->client, "timestamp", (json_int_t)c->timestamp, "exec_seq",
			 (json_int_t)w->exec_seq, "op", hex_json(c->op, c->op_len), "op_digest",
			 hex_json(d, sizeof(d)), "result", hex_json(w->result, w->result_len),
			 "signatures", sigs);
}

/* Hex string field into a malloc'd buffer. */
static int hex_field(const json_t *o, const char *key, uint8_t **out, size_t *len)
{
	const char *s = json_string_value(json_object_get(o, key));
	size_t n;

	if (!s || (n = strlen(s)) % 2)
		return -1;
	*out = malloc(n / 2 + 1);
	if (!*out || hm_parse_hex(s, *out, n / 2) < 0) {
		free(*out);
		*out = NULL;
		return -1;
	}
	*len = n / 2;
	return 0;
}

/* The client id is bound through the payload digest. */
static int verify_sig(const json_t *s, const struct hm_config *cfg, uint64_t ts,
		      const uint8_t d[HM_DIGEST_LEN], size_t payload_len, uint32_t *seen, char *err,
		      size_t errlen)
{
	json_t *rj = json_object_get(s, "replica");
	struct hm_hdr hdr = { 0 };
	uint8_t *h = NULL;
	size_t hl = 0;
	json_int_t id = json_integer_value(rj);

	if (!json_is_integer(rj) || id < 0 || id >= (json_int_t)cfg->n_members ||
	    hex_field(s, "header", &h, &hl) < 0 || hl != HM_CERT_HDR_LEN) {
		free(h);
		snprintf(err, errlen, "a malformed signature entry");
		return -1;
	}
	memcpy(&hdr, h, HM_CERT_HDR_LEN);
	free(h);
	if (*seen & (1u << id)) {
		snprintf(err, errlen, "replica %lld signs twice", (long long)id);
		return -1;
	}
	if (be32toh(hdr.magic) != HM_MAGIC || hdr.type != HM_MSG_REPLY ||
	    be32toh(hdr.sender) != (uint32_t)id || be64toh(hdr.seq) != ts ||
	    be32toh(hdr.payload_len) != payload_len || memcmp(hdr.digest, d, HM_DIGEST_LEN)) {
		snprintf(err, errlen, "replica %lld: the header is not a reply over this result",
			 (long long)id);
		return -1;
	}
	if (!hm_verify_header(&hdr, cfg->members[id].public_key)) {
		snprintf(err, errlen, "replica %lld: bad signature", (long long)id);
		return -1;
	}
	*seen |= 1u << id;
	return 0;
}

int hm_cert_verify(const json_t *cert, const struct hm_config *cfg, uint8_t **op, size_t *op_len,
		   uint8_t **result, size_t *result_len, char *err, size_t errlen)
{
	json_t *sigs = json_object_get(cert, "signatures"), *s;
	json_int_t client = json_integer_value(json_object_get(cert, "client"));
	json_int_t ts = json_integer_value(json_object_get(cert, "timestamp"));
	json_int_t seq = json_integer_value(json_object_get(cert, "exec_seq"));
	uint8_t *payload = NULL, d[HM_DIGEST_LEN];
	uint32_t seen = 0, count = 0;
	size_t plen, i;

	*op = *result = NULL;
	if (json_integer_value(json_object_get(cert, "version")) != 1 || !json_is_array(sigs) ||
	    client < 0 || client > UINT32_MAX || hex_field(cert, "op", op, op_len) < 0 ||
	    hex_field(cert, "result", result, result_len) < 0) {
		snprintf(err, errlen, "not a certificate (version 1 with op, result and signatures)");
		goto bad;
	}
	payload = malloc(HM_REPLY_PREFIX_LEN + *result_len);
	if (!payload)
		goto bad;
	plen = hm_reply_payload(payload, HM_REPLY_PREFIX_LEN + *result_len, (uint32_t)client,
				(uint64_t)seq, *result, *result_len);
	hm_digest(payload, plen, d);
	json_array_foreach(sigs, i, s) {
		if (verify_sig(s, cfg, (uint64_t)ts, d, plen, &seen, err, errlen))
			goto bad;
		count++;
	}
	if (count < quorum(cfg)) {
		snprintf(err, errlen, "%u signatures, %u (2f+1) needed", count, quorum(cfg));
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
