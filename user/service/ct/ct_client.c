// SPDX-License-Identifier: MIT
/* An RFC 6962 log client (see ct_client.h). */
#include "service/ct/ct_client.h"
#include "common/log.h"

#include <curl/curl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BODY (16u << 20) /* a log answer larger than this is refused */

struct hm_ct_client {
	CURL *curl;
	char *base;
	long timeout_ms;
};

struct body {
	char *data;
	size_t len;
	bool too_big;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

struct hm_ct_client *hm_ct_client_new(const char *base_url, long timeout_ms)
{
	struct hm_ct_client *c;
	size_t n = strlen(base_url);

	pthread_once(&curl_once, curl_init_once);
	c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	while (n && base_url[n - 1] == '/')
		n--;
	c->base = strndup(base_url, n);
	c->curl = curl_easy_init();
	c->timeout_ms = timeout_ms;
	if (!c->base || !c->curl) {
		hm_ct_client_free(c);
		return NULL;
	}
	return c;
}

void hm_ct_client_free(struct hm_ct_client *c)
{
	if (!c)
		return;
	if (c->curl)
		curl_easy_cleanup(c->curl);
	free(c->base);
	free(c);
}

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *userdata)
{
	struct body *b = userdata;
	size_t n = size * nmemb;
	char *grown;

	if (b->len + n > MAX_BODY) {
		b->too_big = true;
		return 0; /* makes curl stop with a write error */
	}
	grown = realloc(b->data, b->len + n + 1);
	if (!grown)
		return 0;
	memcpy(grown + b->len, ptr, n);
	b->data = grown;
	b->len += n;
	b->data[b->len] = 0;
	return n;
}

/* One request; the parsed JSON answer, or NULL with err set.  post_body NULL
 * means GET. */
static json_t *request(struct hm_ct_client *c, const char *path_query, const char *post_body,
		       char *err, size_t errlen)
{
	struct body b = { 0 };
	struct curl_slist *hdrs = NULL;
	char url[1024];
	long status = 0;
	CURLcode rc;
	json_t *root = NULL;
	json_error_t jerr;

	snprintf(url, sizeof(url), "%s/ct/v1/%s", c->base, path_query);
	curl_easy_reset(c->curl);
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT_MS, c->timeout_ms);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	if (post_body) {
		hdrs = curl_slist_append(NULL, "Content-Type: application/json");
		curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, post_body);
	}
	rc = curl_easy_perform(c->curl);
	curl_slist_free_all(hdrs);
	if (rc != CURLE_OK) {
		hm_set_err(err, errlen, "%s: %s", url, b.too_big ? "answer too large" : curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (status != 200) {
		hm_set_err(err, errlen, "%s: HTTP %ld: %.120s", url, status, b.data ? b.data : "");
		goto out;
	}
	root = json_loadb(b.data ? b.data : "", b.len, 0, &jerr);
	if (!root || !json_is_object(root)) {
		hm_set_err(err, errlen, "%s: answer is not a JSON object", url);
		json_decref(root);
		root = NULL;
	}
out:
	free(b.data);
	return root;
}

/* Base64 (standard alphabet, padded) into a fixed buffer; -1 if it is not
 * base64 or does not fit. */
static int b64_fixed(json_t *s, uint8_t *out, size_t cap, size_t *len)
{
	const char *txt = json_string_value(s);

	if (!txt)
		return -1;
	return sodium_base642bin(out, cap, txt, strlen(txt), NULL, len, NULL,
				 sodium_base64_VARIANT_ORIGINAL);
}

static int b64_blob(json_t *s, struct hm_ct_blob *out)
{
	const char *txt = json_string_value(s);
	size_t cap;

	out->data = NULL;
	out->len = 0;
	if (!txt)
		return -1;
	cap = strlen(txt) / 4 * 3 + 3;
	out->data = malloc(cap);
	if (!out->data || b64_fixed(s, out->data, cap, &out->len)) {
		free(out->data);
		out->data = NULL;
		return -1;
	}
	return 0;
}

static int get_u64(json_t *obj, const char *key, uint64_t *out)
{
	json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return -1;
	*out = (uint64_t)json_integer_value(v);
	return 0;
}

/* A JSON array of base64 hashes into path. */
static int hash_array(json_t *arr, hm_merkle_hash *path, size_t cap, size_t *len)
{
	size_t i, n;
	json_t *h;

	if (!json_is_array(arr) || json_array_size(arr) > cap)
		return -1;
	json_array_foreach(arr, i, h) {
		if (b64_fixed(h, path[i], HM_MERKLE_HASH_LEN, &n) || n != HM_MERKLE_HASH_LEN)
			return -1;
	}
	*len = json_array_size(arr);
	return 0;
}

int hm_ct_get_sth(struct hm_ct_client *c, struct hm_ct_sth *out, char *err, size_t errlen)
{
	json_t *r = request(c, "get-sth", NULL, err, errlen);
	size_t n;
	int rc = -1;

	if (!r)
		return -1;
	memset(out, 0, sizeof(*out));
	if (get_u64(r, "tree_size", &out->tree_size) || get_u64(r, "timestamp", &out->timestamp) ||
	    b64_fixed(json_object_get(r, "sha256_root_hash"), out->root, sizeof(out->root), &n) ||
	    n != sizeof(out->root) ||
	    b64_fixed(json_object_get(r, "tree_head_signature"), out->sig, sizeof(out->sig), &out->sig_len))
		hm_set_err(err, errlen, "get-sth: missing or malformed field");
	else
		rc = 0;
	json_decref(r);
	return rc;
}

int hm_ct_get_sth_consistency(struct hm_ct_client *c, uint64_t first, uint64_t second,
			      hm_merkle_hash *path, size_t cap, size_t *len, char *err, size_t errlen)
{
	char q[128];
	json_t *r;
	int rc = 0;

	snprintf(q, sizeof(q), "get-sth-consistency?first=%" PRIu64 "&second=%" PRIu64, first, second);
	r = request(c, q, NULL, err, errlen);
	if (!r)
		return -1;
	if (hash_array(json_object_get(r, "consistency"), path, cap, len)) {
		hm_set_err(err, errlen, "get-sth-consistency: malformed or too long proof");
		rc = -1;
	}
	json_decref(r);
	return rc;
}

int hm_ct_get_proof_by_hash(struct hm_ct_client *c, const hm_merkle_hash leaf_hash, uint64_t tree_size,
			    uint64_t *leaf_index, hm_merkle_hash *path, size_t cap, size_t *len,
			    char *err, size_t errlen)
{
	char b64[sodium_base64_ENCODED_LEN(HM_MERKLE_HASH_LEN, sodium_base64_VARIANT_ORIGINAL)];
	char q[256], *esc;
	json_t *r;
	int rc = 0;

	sodium_bin2base64(b64, sizeof(b64), leaf_hash, HM_MERKLE_HASH_LEN, sodium_base64_VARIANT_ORIGINAL);
	esc = curl_easy_escape(c->curl, b64, 0); /* '+', '/' and '=' in a query */
	if (!esc) {
		hm_set_err(err, errlen, "get-proof-by-hash: out of memory");
		return -1;
	}
	snprintf(q, sizeof(q), "get-proof-by-hash?hash=%s&tree_size=%" PRIu64, esc, tree_size);
	curl_free(esc);
	r = request(c, q, NULL, err, errlen);
	if (!r)
		return -1;
	if (get_u64(r, "leaf_index", leaf_index) ||
	    hash_array(json_object_get(r, "audit_path"), path, cap, len)) {
		hm_set_err(err, errlen, "get-proof-by-hash: malformed answer or too long proof");
		rc = -1;
	}
	json_decref(r);
	return rc;
}

void hm_ct_blobs_free(struct hm_ct_blob *b, size_t n)
{
	for (size_t i = 0; b && i < n; i++)
		free(b[i].data);
	free(b);
}

void hm_ct_entries_free(struct hm_ct_entry *e, size_t n)
{
	for (size_t i = 0; e && i < n; i++) {
		free(e[i].leaf_input.data);
		free(e[i].extra_data.data);
	}
	free(e);
}

int hm_ct_get_entries(struct hm_ct_client *c, uint64_t start, uint64_t end,
		      struct hm_ct_entry **entries, size_t *n, char *err, size_t errlen)
{
	char q[128];
	json_t *r, *arr, *e;
	size_t i, count;
	struct hm_ct_entry *out;

	snprintf(q, sizeof(q), "get-entries?start=%" PRIu64 "&end=%" PRIu64, start, end);
	r = request(c, q, NULL, err, errlen);
	if (!r)
		return -1;
	arr = json_object_get(r, "entries");
	count = json_array_size(arr);
	if (!json_is_array(arr) || count == 0 || count > end - start + 1) {
		hm_set_err(err, errlen, "get-entries: no entries array, or more entries than asked for");
		json_decref(r);
		return -1;
	}
	out = calloc(count, sizeof(*out));
	if (!out) {
		json_decref(r);
		hm_set_err(err, errlen, "get-entries: out of memory");
		return -1;
	}
	json_array_foreach(arr, i, e) {
		if (b64_blob(json_object_get(e, "leaf_input"), &out[i].leaf_input) ||
		    b64_blob(json_object_get(e, "extra_data"), &out[i].extra_data)) {
			hm_ct_entries_free(out, count);
			json_decref(r);
			hm_set_err(err, errlen, "get-entries: entry %zu malformed", i);
			return -1;
		}
	}
	json_decref(r);
	*entries = out;
	*n = count;
	return 0;
}

int hm_ct_get_roots(struct hm_ct_client *c, struct hm_ct_blob **roots, size_t *n, char *err, size_t errlen)
{
	json_t *r = request(c, "get-roots", NULL, err, errlen), *arr, *e;
	struct hm_ct_blob *out;
	size_t i, count;

	if (!r)
		return -1;
	arr = json_object_get(r, "certificates");
	count = json_array_size(arr);
	out = calloc(count ? count : 1, sizeof(*out));
	if (!json_is_array(arr) || !out) {
		free(out);
		json_decref(r);
		hm_set_err(err, errlen, "get-roots: no certificates array");
		return -1;
	}
	json_array_foreach(arr, i, e) {
		if (b64_blob(e, &out[i])) {
			hm_ct_blobs_free(out, count);
			json_decref(r);
			hm_set_err(err, errlen, "get-roots: certificate %zu is not base64", i);
			return -1;
		}
	}
	json_decref(r);
	*roots = out;
	*n = count;
	return 0;
}

void hm_ct_sct_free(struct hm_ct_sct *sct)
{
	free(sct->extensions.data);
	free(sct->signature.data);
	memset(sct, 0, sizeof(*sct));
}

int hm_ct_add_chain(struct hm_ct_client *c, const struct hm_ct_blob *chain, size_t n, bool precert,
		    struct hm_ct_sct *out, char *err, size_t errlen)
{
	json_t *req = json_object(), *arr = json_array(), *r;
	char *body = NULL;
	uint64_t version = 0;
	size_t idlen;
	int rc = -1;

	memset(out, 0, sizeof(*out));
	if (!req || !arr || json_object_set_new(req, "chain", arr)) {
		json_decref(req);
		hm_set_err(err, errlen, "add-chain: out of memory");
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		size_t cap = sodium_base64_ENCODED_LEN(chain[i].len, sodium_base64_VARIANT_ORIGINAL);
		char *b64 = malloc(cap);

		if (!b64 || json_array_append_new(arr, json_string(sodium_bin2base64(
					      b64, cap, chain[i].data, chain[i].len,
					      sodium_base64_VARIANT_ORIGINAL)))) {
			free(b64);
			json_decref(req);
			hm_set_err(err, errlen, "add-chain: out of memory");
			return -1;
		}
		free(b64);
	}
	body = json_dumps(req, JSON_COMPACT);
	json_decref(req);
	if (!body) {
		hm_set_err(err, errlen, "add-chain: out of memory");
		return -1;
	}
	r = request(c, precert ? "add-pre-chain" : "add-chain", body, err, errlen);
	free(body);
	if (!r)
		return -1;
	if (get_u64(r, "sct_version", &version) || version > 255 ||
	    b64_fixed(json_object_get(r, "id"), out->log_id, sizeof(out->log_id), &idlen) ||
	    idlen != HM_CT_LOG_ID_LEN || get_u64(r, "timestamp", &out->timestamp) ||
	    b64_blob(json_object_get(r, "extensions"), &out->extensions) ||
	    b64_blob(json_object_get(r, "signature"), &out->signature)) {
		hm_ct_sct_free(out);
		hm_set_err(err, errlen, "add-chain: malformed SCT in the answer");
	} else {
		out->version = (uint8_t)version;
		rc = 0;
	}
	json_decref(r);
	return rc;
}

int hm_ct_fetch_evidence(struct hm_ct_client *c, const uint8_t log_id[HM_CT_LOG_ID_LEN],
			 const hm_merkle_hash leaf_hash, uint64_t from, struct hm_ct_evidence *ev,
			 char *err, size_t errlen)
{
	memset(ev, 0, sizeof(*ev));
	memcpy(ev->log_id, log_id, HM_CT_LOG_ID_LEN);
	if (hm_ct_get_sth(c, &ev->sth, err, errlen))
		return -1;
	if (ev->sth.tree_size == 0) {
		hm_set_err(err, errlen, "the log is empty");
		return -1;
	}
	if (hm_ct_get_proof_by_hash(c, leaf_hash, ev->sth.tree_size, &ev->leaf_index, ev->inclusion,
				    HM_CT_MAX_PROOF, &ev->inclusion_len, err, errlen))
		return -1;
	ev->consistency_from = from;
	if (from != 0 && from != ev->sth.tree_size) {
		uint64_t lo = from < ev->sth.tree_size ? from : ev->sth.tree_size;
		uint64_t hi = from < ev->sth.tree_size ? ev->sth.tree_size : from;

		if (hm_ct_get_sth_consistency(c, lo, hi, ev->consistency, HM_CT_MAX_PROOF,
					      &ev->consistency_len, err, errlen))
			return -1;
	}
	return 0;
}
