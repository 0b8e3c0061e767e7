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
#include "common/reply_proof.h"
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

/* Two replies certify together when they carry the same body and their
 * replicas signed the same batch (seq, size, root). */
static bool same_statement(const struct hm_cert_reply *a, const struct hm_cert_reply *b)
{
	return a->have && b->have && a->exec_seq == b->exec_seq &&
	       a->proof.size == b->proof.size &&
	       !memcmp(a->digest, b->digest, HM_DIGEST_LEN) &&
	       !memcmp(a->proof.root, b->proof.root, HM_MERKLE_HASH_LEN);
}

bool hm_cert_add(struct hm_cert *c, const struct hm_config *cfg, const uint8_t *buf, size_t len)
{
	enum hm_drop_reason why;
	struct hm_cert_reply *r;
	struct hm_reply rep;
	struct hm_msg m;
	hm_merkle_hash leaf;
	uint32_t same = 0;

	if (c->winner >= 0)
		return true;
	/* Only results of this very request (client, timestamp, op digest)
	 * that carry a batch proof: a refusal certifies nothing, and a reply
	 * re-sent from a restored state has no proof to offer. */
	if (hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why) < 0 || m.type != HM_MSG_REPLY ||
	    m.sender >= cfg->n_members || m.seq != c->timestamp || !hm_msg_payload_ok(&m, &why) ||
	    hm_reply_parse(&m, &rep) < 0 || rep.client != c->client ||
	    rep.status != HM_REPLY_RESULT || rep.proof.size == 0 ||
	    memcmp(rep.req_digest, c->op_digest, HM_DIGEST_LEN) != 0)
		return false;
	r = &c->replies[m.sender];
	if (r->have)
		return false;
	/* The one place a reply's signature is checked: the path binds this
	 * body to the root, the signature binds the root to (replica, seq). */
	hm_reply_leaf(c->timestamp, rep.body, rep.body_len, leaf);
	if (!hm_reply_proof_check(&rep.proof, m.sender, rep.exec_seq, leaf,
				  cfg->members[m.sender].public_key))
		return false;
	r->result = malloc(rep.result_len ? rep.result_len : 1);
	if (!r->result)
		return false;
	memcpy(r->result, rep.result, rep.result_len);
	r->result_len = rep.result_len;
	r->exec_seq = rep.exec_seq;
	r->proof = rep.proof;
	hm_digest(rep.body, rep.body_len, r->digest);
	r->have = true;
	for (uint32_t i = 0; i < cfg->n_members; i++)
		same += same_statement(&c->replies[i], r);
	if (same >= quorum(cfg))
		c->winner = (int)m.sender;
	return c->winner >= 0;
}

/* What tells the two forms apart: their field names. */
static const struct format {
	const char *request, *result, *entries;
	bool full_op;      /* the op itself, not only its digest */
} formats[] = {
	[HM_CERT_V1] = { "timestamp", "result", "signatures", true },
	[HM_CERT_CT] = { "request", "verdict", "replies", false },
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
		count += same_statement(&c->replies[i], &c->replies[c->winner]);
	return count;
}

/* The batch the result was signed in: its size, the leaf's index and path,
 * the root. */
static json_t *batch_json(const struct hm_reply_proof *p)
{
	json_t *path = json_array();

	for (uint8_t i = 0; i < p->path_len; i++)
		json_array_append_new(path, hex_json(p->path[i], HM_MERKLE_HASH_LEN));
	return json_pack("{s:I, s:I, s:o, s:o}", "size", (json_int_t)p->size, "index",
			 (json_int_t)p->index, "path", path, "root",
			 hex_json(p->root, HM_MERKLE_HASH_LEN));
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

		if (!same_statement(r, w))
			continue;
		json_array_append_new(entries, json_pack("{s:i, s:o}", "replica", (int)i, "signature",
							 hex_json(r->proof.sig, HM_SIG_LEN)));
	}
	j = json_object();
	if (fmt == HM_CERT_CT) {
		json_object_set_new(j, "format", json_string(HM_CERT_CT_FORMAT));
		json_object_set_new(j, "cluster", json_pack("{s:I, s:I}", "n",
							  (json_int_t)cfg->n_members, "f",
							  (json_int_t)cfg->max_faulty_nodes));
	} else {
		json_object_set_new(j, "version", json_integer(HM_CERT_VERSION));
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
	json_object_set_new(j, "batch", batch_json(&w->proof));
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

/* The "batch" object: size, index, path (exactly as long as the tree shape
 * needs), root. */
static int batch_from_json(const json_t *b, struct hm_reply_proof *p, char *err, size_t errlen)
{
	json_t *path = json_object_get(b, "path"), *h;
	uint64_t size, index;
	size_t k;

	memset(p, 0, sizeof(*p));
	if (!json_is_object(b) || get_u64(b, "size", &size) < 0 || get_u64(b, "index", &index) < 0 ||
	    !json_is_array(path) || get_hex(b, "root", p->root, HM_MERKLE_HASH_LEN) < 0)
		return hm_set_err(err, errlen, "needs batch: {size, index, path (hex hashes), root "
				  "(%d bytes hex)}", HM_MERKLE_HASH_LEN);
	if (size == 0 || size > HM_RP_MAX_LEAVES || index >= size)
		return hm_set_err(err, errlen, "batch: index %" PRIu64 " is not a leaf of a batch "
				  "of %" PRIu64, index, size);
	p->size = (uint16_t)size;
	p->index = (uint16_t)index;
	p->path_len = (uint8_t)hm_merkle_path_len(size, index);
	if (json_array_size(path) != p->path_len)
		return hm_set_err(err, errlen, "batch: the path of leaf %" PRIu64 " of %" PRIu64
				  " has %u hashes, not %zu", index, size, p->path_len,
				  json_array_size(path));
	json_array_foreach(path, k, h) {
		const char *s = json_string_value(h);
		size_t got;

		if (!s || strlen(s) != 2 * HM_MERKLE_HASH_LEN ||
		    sodium_hex2bin(p->path[k], HM_MERKLE_HASH_LEN, s, strlen(s), NULL, &got, NULL) ||
		    got != HM_MERKLE_HASH_LEN)
			return hm_set_err(err, errlen, "batch: path[%zu] is not %d bytes hex", k,
					  HM_MERKLE_HASH_LEN);
	}
	return 0;
}

/* Entry k: replica's signature over the batch statement (exec_seq, size,
 * root), which the path ties to the result. */
static int check_entry(const struct format *f, const json_t *e, size_t k,
		       const struct hm_config *cfg, uint64_t seq, struct hm_reply_proof *p,
		       const hm_merkle_hash leaf, uint32_t *replica, char *err, size_t errlen)
{
	uint64_t id;

	if (get_u64(e, "replica", &id) < 0 || get_hex(e, "signature", p->sig, HM_SIG_LEN) < 0) {
		if (json_object_get(e, "header"))
			return hm_set_err(err, errlen, "%s[%zu]: a signed reply header: a certificate "
					  "from before replies were signed per batch; ask again "
					  "for a new one", f->entries, k);
		return hm_set_err(err, errlen, "%s[%zu]: needs replica and signature (%d bytes hex)",
				  f->entries, k, HM_SIG_LEN);
	}
	if (id >= cfg->n_members)
		return hm_set_err(err, errlen, "%s[%zu]: replica %" PRIu64 " is not a member (0..%u)",
				  f->entries, k, id, cfg->n_members - 1);
	if (!hm_reply_proof_check(p, (uint32_t)id, seq, leaf, cfg->members[id].public_key))
		return hm_set_err(err, errlen, "%s[%zu]: the signature does not verify under replica "
				  "%" PRIu64 "'s key over batch %" PRIu64 "'s root", f->entries, k,
				  id, seq);
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
	uint8_t *body = NULL, op_digest[HM_DIGEST_LEN];
	uint32_t seen = 0, need = quorum(cfg);
	struct hm_reply_proof proof;
	hm_merkle_hash leaf;
	size_t blen, k;

	*op = *result = NULL;
	*op_len = 0;
	if (fmt == HM_CERT_CT ? format && strcmp(format, HM_CERT_CT_FORMAT_V1) == 0
			      : !format && json_integer_value(json_object_get(cert, "version")) == 1) {
		hm_set_err(err, errlen, "a certificate of signed reply headers, from before replies "
			   "were signed once per batch: no longer checked; ask again for a new one");
		goto bad;
	}
	if (fmt == HM_CERT_CT ? !format || strcmp(format, HM_CERT_CT_FORMAT) != 0
			      : format || json_integer_value(json_object_get(cert, "version")) !=
						  HM_CERT_VERSION) {
		if (fmt == HM_CERT_CT)
			hm_set_err(err, errlen, "not a CT verdict certificate (format is not \"%s\")",
				   HM_CERT_CT_FORMAT);
		else
			hm_set_err(err, errlen, "not a certificate (version %d with op, result, batch "
				   "and signatures)", HM_CERT_VERSION);
		goto bad;
	}
	if (get_u64(cert, "client", &client) < 0 || client > UINT32_MAX ||
	    get_u64(cert, f->request, &ts) < 0 || get_u64(cert, "exec_seq", &seq) < 0 ||
	    !json_is_array(entries) || (f->full_op && hex_field(cert, "op", op, op_len) < 0) ||
	    hex_field(cert, f->result, result, result_len) < 0) {
		hm_set_err(err, errlen, "needs client, %s, exec_seq,%s %s (hex), batch and %s",
			   f->request, f->full_op ? " op," : "", f->result, f->entries);
		goto bad;
	}
	if (batch_from_json(json_object_get(cert, "batch"), &proof, err, errlen) < 0)
		goto bad;
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
	body = malloc(HM_REPLY_PREFIX_LEN + *result_len);
	if (!body) {
		hm_set_err(err, errlen, "out of memory");
		goto bad;
	}
	/* The leaf every replica's root covers: (timestamp, client, exec_seq,
	 * op digest, RESULT, result). */
	blen = hm_reply_body(body, HM_REPLY_PREFIX_LEN + *result_len, (uint32_t)client, seq,
			     op_digest, HM_REPLY_RESULT, *result, *result_len);
	hm_reply_leaf(ts, body, blen, leaf);
	if (!hm_merkle_verify_inclusion_with(&hm_merkle_blake2b, proof.index, proof.size, leaf,
					     proof.path, proof.path_len, proof.root)) {
		hm_set_err(err, errlen, "batch: the path does not lead from this result to the root");
		goto bad;
	}
	json_array_foreach(entries, k, e) {
		uint32_t id = 0;

		if (check_entry(f, e, k, cfg, seq, &proof, leaf, &id, err, errlen) < 0)
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
	free(body);
	return 0;
bad:
	free(body);
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
