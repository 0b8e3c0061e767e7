// SPDX-License-Identifier: MIT
/* Encode and decode HyperMesh messages. */
#include "common/wire.h"

#include <endian.h>
#include <string.h>

#include "common/crypto.h"

static const char *const type_names[] = {
	[0] = "invalid",
	[HM_MSG_REQUEST] = "request",
	[HM_MSG_PRE_PREPARE] = "pre-prepare",
	[HM_MSG_PREPARE] = "prepare",
	[HM_MSG_COMMIT] = "commit",
	[HM_MSG_REPLY] = "reply",
	[HM_MSG_CHECKPOINT] = "checkpoint",
	[HM_MSG_VIEW_CHANGE] = "view-change",
	[HM_MSG_NEW_VIEW] = "new-view",
	[HM_MSG_STATE_REQUEST] = "state-request",
	[HM_MSG_STATE_CHUNK] = "state-chunk",
	[HM_MSG_STATUS] = "status",
	[HM_MSG_EVIDENCE] = "evidence",
	[HM_MSG_VOUCH] = "vouch",
};

static const char *const drop_names[HM_DROP_REASON_MAX] = {
	[HM_DROP_BLOCKED] = "blocked",
	[HM_DROP_TRUNCATED] = "truncated",
	[HM_DROP_BAD_MAGIC] = "bad_magic",
	[HM_DROP_BAD_TYPE] = "bad_type",
	[HM_DROP_BAD_LENGTH] = "bad_length",
	[HM_DROP_OVERSIZE] = "oversize",
	[HM_DROP_UNKNOWN_SENDER] = "unknown_sender",
	[HM_DROP_BAD_ADDRESS] = "bad_address",
	[HM_DROP_BAD_MAC] = "bad_mac",
	[HM_DROP_BAD_VIEW] = "bad_view",
	[HM_DROP_OUT_OF_WINDOW] = "out_of_window",
	[HM_DROP_NONCANONICAL_SIG] = "noncanonical_sig",
	[HM_DROP_RATE_LIMITED] = "rate_limited",
	[HM_DROP_BAD_DIGEST] = "bad_digest",
	[HM_DROP_BAD_SIGNATURE] = "bad_signature",
	[HM_DROP_MALFORMED] = "malformed",
	[HM_DROP_STALE] = "stale",
	[HM_DROP_DUPLICATE] = "duplicate",
	[HM_DROP_EQUIVOCATION] = "equivocation",
	[HM_DROP_BAD_SEAL] = "bad_seal",
	[HM_DROP_NOT_ENCRYPTED] = "not_encrypted",
	[HM_DROP_BAD_COMPRESSION] = "bad_compression",
	[HM_DROP_INFLATED_OVERSIZE] = "inflated_oversize",
};

const char *hm_msg_type_name(unsigned type)
{
	return type <= HM_MSG_TYPE_MAX ? type_names[type] : "invalid";
}

const char *hm_drop_reason_name(unsigned reason)
{
	return reason < HM_DROP_REASON_MAX ? drop_names[reason] : "unknown";
}

static int refuse(enum hm_drop_reason *why, enum hm_drop_reason reason)
{
	*why = reason;
	return -1;
}

int hm_msg_decode(const void *buf, size_t len, size_t max_len, struct hm_msg *m,
		  enum hm_drop_reason *why)
{
	const struct hm_hdr *h = buf;

	if (len < HM_HDR_LEN)
		return refuse(why, HM_DROP_TRUNCATED);
	if (hm_get_be32((const uint8_t *)&h->magic) != HM_MAGIC ||
	    h->version != HM_TYPE_VERSION(h->type))
		return refuse(why, HM_DROP_BAD_MAGIC);
	if (h->type < HM_MSG_REQUEST || h->type > HM_MSG_TYPE_MAX ||
	    (hm_get_be16((const uint8_t *)&h->flags) & ~HM_FLAGS_KNOWN))
		return refuse(why, HM_DROP_BAD_TYPE);
	if (len > max_len)
		return refuse(why, HM_DROP_OVERSIZE);
	/* payload_len must account for exactly the bytes after the header: a
	 * length field that lies in either direction is refused. */
	if (hm_get_be32((const uint8_t *)&h->payload_len) != len - HM_HDR_LEN)
		return refuse(why, HM_DROP_BAD_LENGTH);

	m->hdr = h;
	m->len = len;
	m->type = h->type;
	m->flags = hm_get_be16((const uint8_t *)&h->flags);
	m->sender = hm_get_be32((const uint8_t *)&h->sender);
	m->view = hm_get_be64((const uint8_t *)&h->view);
	m->seq = hm_get_be64((const uint8_t *)&h->seq);
	m->digest = h->digest;
	m->payload = (const uint8_t *)buf + HM_HDR_LEN;
	m->payload_len = (uint32_t)(len - HM_HDR_LEN);
	return 0;
}

/* Types whose header digest is the subject itself, with no payload. */
static bool digest_only(uint8_t type)
{
	return type == HM_MSG_PREPARE || type == HM_MSG_COMMIT || type == HM_MSG_CHECKPOINT ||
	       type == HM_MSG_STATUS;
}

bool hm_msg_payload_ok(const struct hm_msg *m, enum hm_drop_reason *why)
{
	uint8_t d[HM_DIGEST_LEN];

	if (digest_only(m->type)) {
		if (m->payload_len == 0)
			return true;
		*why = HM_DROP_MALFORMED;
		return false;
	}
	hm_digest(m->payload, m->payload_len, d);
	if (memcmp(d, m->digest, HM_DIGEST_LEN) == 0)
		return true;
	*why = HM_DROP_BAD_DIGEST;
	return false;
}

size_t hm_msg_build(uint8_t *buf, size_t cap, uint8_t type, uint32_t sender, uint64_t view,
		    uint64_t seq, const uint8_t *digest, const void *payload, uint32_t payload_len,
		    const struct hm_keypair *kp)
{
	return hm_msg_build_flags(buf, cap, type, 0, sender, view, seq, digest, payload,
				  payload_len, kp);
}

size_t hm_msg_build_flags(uint8_t *buf, size_t cap, uint8_t type, uint16_t flags, uint32_t sender,
			  uint64_t view, uint64_t seq, const uint8_t *digest, const void *payload,
			  uint32_t payload_len, const struct hm_keypair *kp)
{
	struct hm_hdr *h = (struct hm_hdr *)buf;
	size_t len = (size_t)HM_HDR_LEN + payload_len;

	if (cap < len)
		return 0;
	memset(h, 0, HM_HDR_LEN);
	hm_put_be32((uint8_t *)&h->magic, HM_MAGIC);
	h->version = HM_TYPE_VERSION(type);
	h->type = type;
	h->flags = htobe16(flags);
	hm_put_be32((uint8_t *)&h->sender, sender);
	hm_put_be32((uint8_t *)&h->payload_len, payload_len);
	hm_put_be64((uint8_t *)&h->view, view);
	hm_put_be64((uint8_t *)&h->seq, seq);
	if (payload_len)
		memmove(buf + HM_HDR_LEN, payload, payload_len);
	if (digest)
		memcpy(h->digest, digest, HM_DIGEST_LEN);
	else
		hm_digest(buf + HM_HDR_LEN, payload_len, h->digest);
	if (kp) /* NULL: unsigned (a REPLY, signed per batch instead) */
		hm_sign_header(h, kp);
	return len;
}

static bool mac_is_zero(const struct hm_hdr *h)
{
	static const uint8_t zero[HM_MAC_LEN];

	return memcmp(h->mac, zero, HM_MAC_LEN) == 0;
}

int hm_batch_validate(const uint8_t *payload, size_t len, size_t max_request)
{
	struct hm_batch_iter it;
	struct hm_msg req;
	enum hm_drop_reason why;
	uint32_t count;

	if (len < 4)
		return -1;
	count = hm_get_be32(payload);
	it.p = payload + 4;
	it.left = len - 4;
	/* Each entry takes at least 4 + HM_HDR_LEN bytes: a count that cannot
	 * fit is a lie, refused before any loop runs on it. */
	if (count > it.left / (4 + HM_HDR_LEN))
		return -1;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t rlen;

		if (it.left < 4)
			return -1;
		rlen = hm_get_be32(it.p);
		if (rlen > it.left - 4)
			return -1;
		/* A request inside a batch carries no MAC (it was for the link
		 * from the client): a zero field keeps the batch digest a
		 * function of the requests alone. */
		if (hm_msg_decode(it.p + 4, rlen, max_request, &req, &why) < 0 ||
		    req.type != HM_MSG_REQUEST || !mac_is_zero(req.hdr))
			return -1;
		it.p += 4 + rlen;
		it.left -= 4 + rlen;
	}
	return it.left == 0 ? (int)count : -1;
}

void hm_batch_iter_init(struct hm_batch_iter *it, const uint8_t *payload, size_t len)
{
	it->remaining = len >= 4 ? hm_get_be32(payload) : 0;
	it->p = len >= 4 ? payload + 4 : payload; /* no offset past the end (or on NULL) */
	it->left = len >= 4 ? len - 4 : 0;
}

bool hm_batch_next(struct hm_batch_iter *it, struct hm_msg *req)
{
	enum hm_drop_reason why;
	uint32_t rlen;

	if (it->remaining == 0 || it->left < 4)
		return false;
	rlen = hm_get_be32(it->p);
	if (rlen > it->left - 4 ||
	    hm_msg_decode(it->p + 4, rlen, HM_MAX_DATAGRAM, req, &why) < 0)
		return false;
	it->p += 4 + rlen;
	it->left -= 4 + rlen;
	it->remaining--;
	return true;
}

size_t hm_reply_body(uint8_t *buf, size_t cap, uint32_t client, uint64_t exec_seq,
		     const uint8_t *req_digest, uint8_t status, const void *result,
		     size_t result_len)
{
	if (cap < HM_REPLY_PREFIX_LEN + result_len)
		return 0;
	hm_put_be32(buf, client);
	hm_put_be64(buf + 4, exec_seq);
	memcpy(buf + 12, req_digest, HM_DIGEST_LEN);
	buf[12 + HM_DIGEST_LEN] = status;
	if (result_len)
		memcpy(buf + HM_REPLY_PREFIX_LEN, result, result_len);
	return HM_REPLY_PREFIX_LEN + result_len;
}

size_t hm_reply_payload(uint8_t *buf, size_t cap, uint32_t client, uint64_t exec_seq,
			const uint8_t *req_digest, uint8_t status, const void *result,
			size_t result_len)
{
	size_t n;

	if (cap < HM_RP_NONE_LEN)
		return 0;
	n = hm_reply_body(buf + HM_RP_NONE_LEN, cap - HM_RP_NONE_LEN, client, exec_seq, req_digest,
			  status, result, result_len);
	if (!n)
		return 0;
	hm_reply_proof_encode(NULL, buf, HM_RP_NONE_LEN);
	return HM_RP_NONE_LEN + n;
}

size_t hm_reply_payload_proven(uint8_t *buf, size_t cap, const struct hm_reply_proof *proof,
			       const uint8_t *body, size_t body_len)
{
	size_t n = hm_reply_proof_encode(proof, buf, cap);

	if (!n || cap - n < body_len)
		return 0;
	memcpy(buf + n, body, body_len);
	return n + body_len;
}

int hm_reply_parse(const struct hm_msg *m, struct hm_reply *out)
{
	const uint8_t *b;
	int plen;

	if (m->type != HM_MSG_REPLY)
		return -1;
	plen = hm_reply_proof_parse(m->payload, m->payload_len, &out->proof);
	if (plen < 0 || m->payload_len - (uint32_t)plen < HM_REPLY_PREFIX_LEN)
		return -1;
	b = m->payload + plen;
	out->body = b;
	out->body_len = m->payload_len - (uint32_t)plen;
	out->client = hm_get_be32(b);
	out->exec_seq = hm_get_be64(b + 4);
	out->req_digest = b + 12;
	out->status = b[12 + HM_DIGEST_LEN];
	out->result = b + HM_REPLY_PREFIX_LEN;
	out->result_len = out->body_len - HM_REPLY_PREFIX_LEN;
	if (out->status > HM_REPLY_STATUS_MAX)
		return -1;
	/* A refusal executed nothing: one form only, so that f+1 correct
	 * replicas send it byte for byte alike (and it is MAC-only: no
	 * proof, docs/protocol.md). */
	if (out->status != HM_REPLY_RESULT &&
	    (out->exec_seq != 0 || out->result_len != 0 || out->proof.size != 0))
		return -1;
	return 0;
}

/* ---- view changes ----------------------------------------------------- */

size_t hm_vc_entry_len(hm_voters_t voters)
{
	return HM_VC_ENTRY_FIXED + (size_t)__builtin_popcount(voters) * HM_SIG_LEN;
}

/* Walk `count` entries: every one in bounds, nothing left over. */
static int vc_entries_check(const uint8_t *p, size_t len, uint16_t count)
{
	for (uint16_t i = 0; i < count; i++) {
		size_t el;

		if (len < HM_VC_ENTRY_FIXED)
			return -1;
		el = hm_vc_entry_len(hm_get_be32(p + 116));
		if (len < el)
			return -1;
		p += el;
		len -= el;
	}
	return len == 0 ? 0 : -1;
}

int hm_vc_parse(const uint8_t *p, size_t len, struct hm_vc_payload *out)
{
	size_t off;

	memset(out, 0, sizeof(*out));
	if (len < 4)
		return -1;
	out->kind = p[0];
	if (out->kind == HM_VC_PART) {
		out->index = p[1];
		out->count = hm_get_be16(p + 2);
		if (out->index == 0 || out->index >= HM_VC_MAX_PARTS)
			return -1;
		out->entries = p + 4;
		out->entries_len = len - 4;
		return vc_entries_check(out->entries, out->entries_len, out->count);
	}
	if (out->kind != HM_VC_HEAD)
		return -1;
	out->nparts = p[1];
	if (out->nparts == 0 || out->nparts > HM_VC_MAX_PARTS)
		return -1;
	off = 2;
	out->part_digests = p + off;
	off += (size_t)(out->nparts - 1) * HM_DIGEST_LEN;
	if (len < off + HM_DIGEST_LEN + 1)
		return -1;
	out->cp_digest = p + off;
	off += HM_DIGEST_LEN;
	out->ncp = p[off++];
	if (out->ncp > HM_MAX_REPLICAS || len < off + (size_t)out->ncp * HM_VC_CP_LEN + 2)
		return -1;
	out->cp = p + off;
	for (unsigned i = 0; i < out->ncp; i++)
		if (out->cp[i * HM_VC_CP_LEN] >= HM_MAX_REPLICAS)
			return -1;
	off += (size_t)out->ncp * HM_VC_CP_LEN;
	out->count = hm_get_be16(p + off);
	off += 2;
	out->entries = p + off;
	out->entries_len = len - off;
	return vc_entries_check(out->entries, out->entries_len, out->count);
}

void hm_vc_iter_init(struct hm_vc_iter *it, const struct hm_vc_payload *v)
{
	it->p = v->entries;
	it->left = v->entries_len;
	it->remaining = v->count;
}

bool hm_vc_next(struct hm_vc_iter *it, struct hm_vc_entry *e)
{
	size_t el;

	if (it->remaining == 0 || it->left < HM_VC_ENTRY_FIXED)
		return false;
	e->seq = hm_get_be64(it->p);
	e->view = hm_get_be64(it->p + 8);
	e->digest = it->p + 16;
	e->pp_len = hm_get_be32(it->p + 48);
	e->pp_sig = it->p + 52;
	e->voters = hm_get_be32(it->p + 116);
	e->sigs = it->p + HM_VC_ENTRY_FIXED;
	el = hm_vc_entry_len(e->voters);
	if (el > it->left)
		return false;
	it->p += el;
	it->left -= el;
	it->remaining--;
	return true;
}

void hm_vc_cp_get(const struct hm_vc_payload *v, unsigned i, uint32_t *replica, uint64_t *view,
		  const uint8_t **sig)
{
	const uint8_t *r = v->cp + (size_t)i * HM_VC_CP_LEN;

	*replica = r[0];
	*view = hm_get_be64(r + 1);
	*sig = r + 9;
}

size_t hm_vc_entry_put(uint8_t *buf, size_t cap, const struct hm_vc_entry *e)
{
	size_t len = hm_vc_entry_len(e->voters);

	if (cap < len)
		return 0;
	hm_put_be64(buf, e->seq);
	hm_put_be64(buf + 8, e->view);
	memcpy(buf + 16, e->digest, HM_DIGEST_LEN);
	hm_put_be32(buf + 48, e->pp_len);
	memcpy(buf + 52, e->pp_sig, HM_SIG_LEN);
	hm_put_be32(buf + 116, e->voters);
	if (len > HM_VC_ENTRY_FIXED) /* a vote report has no signatures (sigs NULL) */
		memcpy(buf + HM_VC_ENTRY_FIXED, e->sigs, len - HM_VC_ENTRY_FIXED);
	return len;
}

size_t hm_vc_cp_put(uint8_t *buf, size_t cap, uint32_t replica, uint64_t view, const uint8_t *sig)
{
	if (cap < HM_VC_CP_LEN || replica >= HM_MAX_REPLICAS)
		return 0;
	buf[0] = (uint8_t)replica;
	hm_put_be64(buf + 1, view);
	memcpy(buf + 9, sig, HM_SIG_LEN);
	return HM_VC_CP_LEN;
}

int hm_nv_parse(const uint8_t *p, size_t len, struct hm_nv_payload *out)
{
	size_t off = 2;

	memset(out, 0, sizeof(*out));
	if (len < 1)
		return -1;
	out->kind = p[0];
	switch (out->kind) {
	case HM_NV_NEW:
		if (len < 2)
			return -1;
		out->nrefs = p[1];
		if (out->nrefs == 0 || out->nrefs > HM_MAX_REPLICAS ||
		    len != off + (size_t)out->nrefs * (1 + HM_DIGEST_LEN) + 16 + HM_DIGEST_LEN)
			return -1;
		for (unsigned i = 0; i < out->nrefs; i++) {
			out->ref_ids[i] = p[off];
			out->ref_digests[i] = p + off + 1;
			/* strictly increasing: canonical, no replica twice */
			if (out->ref_ids[i] >= HM_MAX_REPLICAS ||
			    (i > 0 && out->ref_ids[i] <= out->ref_ids[i - 1]))
				return -1;
			off += 1 + HM_DIGEST_LEN;
		}
		out->min_s = hm_get_be64(p + off);
		out->max_s = hm_get_be64(p + off + 8);
		out->o_digest = p + off + 16;
		return out->max_s >= out->min_s ? 0 : -1;
	case HM_NV_FETCH:
		out->fetch_replica = -1;
		if (len == 2 + HM_DIGEST_LEN && p[1 + HM_DIGEST_LEN] < HM_MAX_REPLICAS)
			out->fetch_replica = p[1 + HM_DIGEST_LEN];
		else if (len != 1 + HM_DIGEST_LEN)
			return -1;
		out->digest = p + 1;
		return 0;
	case HM_NV_BATCH:
		if (len < 2 + HM_DIGEST_LEN || p[1] > 1)
			return -1;
		out->committed = p[1];
		out->digest = p + 2;
		out->batch = p + 2 + HM_DIGEST_LEN;
		out->batch_len = (uint32_t)(len - 2 - HM_DIGEST_LEN);
		return 0;
	case HM_NV_PROOF:
		if (len < 2 + HM_DIGEST_LEN)
			return -1;
		out->digest = p + 1;
		out->ncp = p[1 + HM_DIGEST_LEN];
		out->cp = p + 2 + HM_DIGEST_LEN;
		if (out->ncp > HM_MAX_REPLICAS ||
		    len != 2 + HM_DIGEST_LEN + (size_t)out->ncp * HM_VC_CP_LEN)
			return -1;
		for (unsigned i = 0; i < out->ncp; i++)
			if (out->cp[i * HM_VC_CP_LEN] >= HM_MAX_REPLICAS)
				return -1;
		return 0;
	case HM_NV_VC:
		if (len < 1 + HM_HDR_LEN)
			return -1;
		out->vc = p + 1;
		out->vc_len = (uint32_t)(len - 1);
		return 0;
	default:
		return -1;
	}
}

size_t hm_nv_new_put(uint8_t *buf, size_t cap, uint8_t nrefs, const uint8_t *ids,
		     const uint8_t (*digests)[HM_DIGEST_LEN], uint64_t min_s, uint64_t max_s,
		     const uint8_t *o_digest)
{
	size_t len = 2 + (size_t)nrefs * (1 + HM_DIGEST_LEN) + 16 + HM_DIGEST_LEN, off = 2;

	if (cap < len)
		return 0;
	buf[0] = HM_NV_NEW;
	buf[1] = nrefs;
	for (unsigned i = 0; i < nrefs; i++) {
		buf[off] = ids[i];
		memcpy(buf + off + 1, digests[i], HM_DIGEST_LEN);
		off += 1 + HM_DIGEST_LEN;
	}
	hm_put_be64(buf + off, min_s);
	hm_put_be64(buf + off + 8, max_s);
	memcpy(buf + off + 16, o_digest, HM_DIGEST_LEN);
	return len;
}
