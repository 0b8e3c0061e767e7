// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for everything that parses bytes from the network or from
 * a peer: hm_msg_decode, hm_msg_payload_ok, hm_batch_validate and the batch
 * iterator, hm_reply_parse with the batch proof it carries
 * (hm_reply_proof_parse), the VIEW-CHANGE and NEW-VIEW payload parsers
 * (hm_vc_parse with its entry iterator, hm_nv_parse), the KV service's
 * execute and restore, the state-transfer payloads (STATE_REQUEST,
 * STATE_CHUNK) and the checkpoint file parser.
 * Built and run by scripts/fuzz.sh (`make fuzz`); not a test binary (the
 * Makefile builds only selftests/test_*.c).
 *
 * Each input is tried as a datagram, as a raw batch, as a KV op and as a KV
 * snapshot, so one corpus serves every parser.  Invariants the parsers
 * promise are checked and abort() when broken, so the fuzzer reports them
 * like crashes.
 *
 * Built with -DHM_FUZZ_SEEDGEN instead, this file is a small program that
 * writes the seed corpus (valid messages, batches, replies, ops, snapshots)
 * into the directory named on its command line.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "service/kv/kv.h"
#include "core/persist.h"
#include "core/service.h"
#include "core/state_transfer.h"
#include "common/wire.h"

#define HM_FUZZ_NAME "fuzz_wire"
#define HM_FUZZ_SEED_PREFIX "seed-"
#include "hm_fuzz.h"

/* ---- the KV service ------------------------------------------------------ */

static void kv_exec(struct hm_service *svc, const uint8_t *op, size_t len)
{
	static uint8_t out[HM_MAX_RESULT];
	struct hm_exec_ctx ctx = { .seq = 1, .client = 1, .timestamp = 1 };
	size_t n = svc->ops->execute(svc->state, &ctx, op, len, out, sizeof(out));

	CHECK(n >= 1 && n <= sizeof(out));
	CHECK(out[0] == HM_KV_OK || out[0] == HM_KV_NOT_FOUND || out[0] == HM_KV_BAD_OP);
	CHECK(n == 1 || out[0] == HM_KV_OK);
}

/* Restore data as a snapshot: whatever is accepted must be canonical (it
 * snapshots back to the same bytes); whatever is refused leaves the state
 * as it was. */
static void kv_restore(struct hm_service *svc, const uint8_t *data, size_t len)
{
	uint8_t before[HM_DIGEST_LEN], after[HM_DIGEST_LEN];
	uint8_t *snap;
	size_t slen;

	svc->ops->digest(svc->state, before);
	if (svc->ops->restore(svc->state, data, len) == 0) {
		CHECK(svc->ops->snapshot(svc->state, &snap, &slen) == 0);
		CHECK(slen == len && memcmp(snap, data, len) == 0);
		free(snap);
	} else {
		svc->ops->digest(svc->state, after);
		CHECK(memcmp(before, after, HM_DIGEST_LEN) == 0);
	}
}

/* ---- batches --------------------------------------------------------------- */

static void batch(struct hm_service *svc, const uint8_t *p, size_t len, size_t max_request)
{
	enum hm_drop_reason why;
	struct hm_batch_iter it;
	struct hm_msg req;
	int count = hm_batch_validate(p, len, max_request);
	int k = 0;

	hm_batch_iter_init(&it, p, len);
	while (hm_batch_next(&it, &req)) {
		CHECK(req.payload >= p && req.payload + req.payload_len <= p + len);
		CHECK(req.len == (size_t)HM_HDR_LEN + req.payload_len);
		(void)hm_msg_payload_ok(&req, &why);
		if (count >= 0) {
			CHECK(req.type == HM_MSG_REQUEST && req.len <= max_request);
			/* A validated batch's requests reach the service. */
			kv_exec(svc, req.payload, req.payload_len);
		}
		k++;
		CHECK(k <= (int)(len / (4 + HM_HDR_LEN)));
	}
	if (count >= 0)
		CHECK(k == count);
}

/* ---- state transfer and checkpoint files ------------------------------------ */

/* What the decoders accept is exactly what the encoders could produce:
 * a request re-encodes to the same bytes, a chunk's pieces lie inside the
 * payload and add up to it, a checkpoint re-serialises to the same image. */
static void state_payloads(const uint8_t *p, size_t len)
{
	struct hm_st_request r;
	struct hm_st_chunk c;
	struct hm_checkpoint cp;

	if (hm_st_request_decode(p, len, &r) == 0) {
		uint8_t again[HM_ST_REQUEST_LEN];

		CHECK(len == HM_ST_REQUEST_LEN && r.index < HM_ST_MAX_CHUNKS);
		CHECK(hm_st_request_encode(again, sizeof(again), &r) == len);
		CHECK(memcmp(again, p, len) == 0);
	}
	if (hm_st_chunk_decode(p, len, &c) == 0) {
		CHECK(c.total_len <= HM_ST_MAX_STATE);
		CHECK(c.index < hm_st_chunk_count(c.total_len));
		CHECK(c.proof_count <= HM_ST_MAX_PROOF);
		CHECK(c.proof == p + HM_ST_CHUNK_FIXED);
		CHECK(c.data + c.data_len == p + len);
		CHECK(c.data_len == hm_st_chunk_len(c.total_len, c.index));
		(void)hm_st_chunk_verify(&c);
	}
	if (hm_checkpoint_parse(p, len, &cp) == HM_PF_NONE) {
		uint8_t *img;
		size_t ilen;

		CHECK(cp.nvotes <= HM_MAX_REPLICAS);
		CHECK(cp.snap + cp.snap_len == p + len);
		CHECK(hm_checkpoint_serialize(&cp, &img, &ilen) == 0);
		CHECK(ilen == len && memcmp(img, p, len) == 0);
		free(img);
	}
}

/* ---- view-change payloads ------------------------------------------------- */

/* Whatever hm_vc_parse accepts, every pointer it hands out and every entry
 * the iterator yields lies inside the input, and the entries are exactly
 * `count` and end exactly at the end. */
static void view_change(const uint8_t *p, size_t len)
{
	struct hm_vc_payload v;
	struct hm_vc_iter it;
	struct hm_vc_entry e;
	unsigned k = 0;

	if (hm_vc_parse(p, len, &v) < 0)
		return;
	CHECK(v.kind == HM_VC_HEAD || v.kind == HM_VC_PART);
	CHECK(v.entries >= p && v.entries + v.entries_len == p + len);
	if (v.kind == HM_VC_HEAD) {
		CHECK(v.nparts >= 1 && v.nparts <= HM_VC_MAX_PARTS);
		CHECK(v.cp + (size_t)v.ncp * HM_VC_CP_LEN <= v.entries);
		for (unsigned i = 0; i < v.ncp; i++) {
			uint32_t id;
			uint64_t view;
			const uint8_t *sig;

			hm_vc_cp_get(&v, i, &id, &view, &sig);
			CHECK(id < HM_MAX_REPLICAS && sig + HM_SIG_LEN <= v.entries);
		}
	} else {
		CHECK(v.index >= 1 && v.index < HM_VC_MAX_PARTS);
	}
	hm_vc_iter_init(&it, &v);
	while (hm_vc_next(&it, &e)) {
		CHECK(e.digest >= p && e.sigs + (size_t)__builtin_popcount(e.voters) * HM_SIG_LEN <=
					       p + len);
		k++;
	}
	CHECK(k == v.count && it.left == 0);
}

static void new_view(const uint8_t *p, size_t len)
{
	struct hm_nv_payload nv;

	if (hm_nv_parse(p, len, &nv) < 0)
		return;
	switch (nv.kind) {
	case HM_NV_NEW:
		CHECK(nv.nrefs >= 1 && nv.nrefs <= HM_MAX_REPLICAS && nv.max_s >= nv.min_s);
		for (unsigned i = 1; i < nv.nrefs; i++)
			CHECK(nv.ref_ids[i] > nv.ref_ids[i - 1]);
		CHECK(nv.o_digest + HM_DIGEST_LEN == p + len);
		break;
	case HM_NV_FETCH:
		CHECK(len == 1 + HM_DIGEST_LEN ||
		      (len == 2 + HM_DIGEST_LEN && nv.fetch_replica >= 0 &&
		       nv.fetch_replica < HM_MAX_REPLICAS));
		break;
	case HM_NV_PROOF:
		CHECK(nv.ncp <= HM_MAX_REPLICAS &&
		      nv.cp + (size_t)nv.ncp * HM_VC_CP_LEN == p + len);
		for (unsigned i = 0; i < nv.ncp; i++)
			CHECK(nv.cp[i * HM_VC_CP_LEN] < HM_MAX_REPLICAS);
		break;
	case HM_NV_VC:
		CHECK(nv.vc == p + 1 && nv.vc_len == len - 1 && nv.vc_len >= HM_HDR_LEN);
		break;
	case HM_NV_BATCH:
		CHECK(nv.batch + nv.batch_len == p + len);
		break;
	default:
		CHECK(false);
	}
}

/* ---- the entry point ------------------------------------------------------- */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	if (hm_crypto_init() < 0)
		abort();
	/* The one input libFuzzer never passes: no buffer at all. */
	{
		struct hm_batch_iter it;
		struct hm_msg m;
		enum hm_drop_reason why;

		CHECK(hm_msg_decode(NULL, 0, HM_MAX_DATAGRAM, &m, &why) < 0);
		CHECK(hm_batch_validate(NULL, 0, HM_MAX_DATAGRAM) < 0);
		hm_batch_iter_init(&it, NULL, 0);
		CHECK(!hm_batch_next(&it, &m));
	}
	return 0;
}

/* A batch proof: what parses re-encodes to the same bytes (one form), has
 * a path of the length its shape needs, and proves nothing for a leaf of
 * zeros under a key of zeros (no crash, no read past the path). */
static void reply_proof(const uint8_t *p, size_t len)
{
	static const uint8_t zero_pk[HM_PUBKEY_LEN];
	static const hm_merkle_hash zero_leaf;
	uint8_t enc[HM_RP_MAX_LEN];
	struct hm_reply_proof rp;
	int n = hm_reply_proof_parse(p, len, &rp);

	if (n < 0)
		return;
	CHECK((size_t)n <= len);
	CHECK(rp.size == 0 ? n == HM_RP_NONE_LEN
			   : rp.index < rp.size && rp.path_len <= HM_RP_MAX_PATH &&
				     rp.path_len == hm_merkle_path_len(rp.size, rp.index));
	CHECK(hm_reply_proof_encode(&rp, enc, sizeof(enc)) == (size_t)n);
	CHECK(memcmp(enc, p, (size_t)n) == 0);
	(void)hm_reply_proof_check(&rp, 0, 0, zero_leaf, zero_pk);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hm_service svc;
	enum hm_drop_reason why = HM_DROP_REASON_MAX;
	struct hm_msg m;
	/* The size limit: the default, or (from the last byte) a smaller one. */
	size_t max_len = size && (data[size - 1] & 1) ? HM_HDR_LEN + data[size - 1] * 16u
						      : HM_MAX_DATAGRAM;

	if (hm_kv_service_new(&svc) < 0)
		abort();

	/* As a datagram. */
	if (hm_msg_decode(data, size, max_len, &m, &why) == 0) {
		struct hm_reply rep;

		CHECK(m.len == size && size == (size_t)HM_HDR_LEN + m.payload_len);
		CHECK(size <= max_len);
		CHECK(m.payload == data + HM_HDR_LEN && m.hdr == (const void *)data);
		CHECK(m.type >= HM_MSG_REQUEST && m.type <= HM_MSG_TYPE_MAX);
		CHECK((m.flags & ~HM_FLAGS_KNOWN) == 0);
		why = HM_DROP_REASON_MAX;
		if (!hm_msg_payload_ok(&m, &why))
			CHECK(why == HM_DROP_BAD_DIGEST || why == HM_DROP_MALFORMED);
		batch(&svc, m.payload, m.payload_len, max_len);
		state_payloads(m.payload, m.payload_len);
		if (hm_reply_parse(&m, &rep) == 0) {
			CHECK(m.type == HM_MSG_REPLY);
			CHECK(rep.result + rep.result_len == m.payload + m.payload_len);
			CHECK(rep.req_digest + HM_DIGEST_LEN + 1 == rep.result);
			CHECK(rep.body + rep.body_len == m.payload + m.payload_len);
			CHECK(rep.body >= m.payload && rep.req_digest == rep.body + 12);
			CHECK(rep.status <= HM_REPLY_STATUS_MAX);
			CHECK(rep.status == HM_REPLY_RESULT ||
			      (rep.exec_seq == 0 && rep.result_len == 0 && rep.proof.size == 0));
			reply_proof(m.payload, (size_t)(rep.body - m.payload));
		}
		if (m.type == HM_MSG_REQUEST)
			kv_exec(&svc, m.payload, m.payload_len);
		view_change(m.payload, m.payload_len);
		new_view(m.payload, m.payload_len);
	} else {
		CHECK(why < HM_DROP_REASON_MAX);
		CHECK(hm_drop_reason_name(why) != NULL);
	}

	/* As a raw batch, a KV op, a KV snapshot (into an empty store and into
	 * one with contents). */
	batch(&svc, data, size, HM_MAX_DATAGRAM);
	reply_proof(data, size);
	state_payloads(data, size);
	view_change(data, size);
	new_view(data, size);
	kv_exec(&svc, data, size);
	kv_restore(&svc, data, size);
	{
		static const uint8_t put[] = { HM_KV_PUT, 0, 1, 'k', 'v' };

		kv_exec(&svc, put, sizeof(put));
		kv_restore(&svc, data, size);
	}
	svc.ops->destroy(svc.state);
	return 0;
}

/* ---- the seed corpus ------------------------------------------------------- */

#ifdef HM_FUZZ_SEEDGEN
int main(int argc, char **argv)
{
	static uint8_t buf[HM_MAX_DATAGRAM], payload[8192], op[512];
	struct hm_keypair kp;
	uint8_t seed[32], vote[HM_DIGEST_LEN];
	struct hm_service svc;
	size_t len, plen, n;
	char name[64];

	int rc = seed_begin(argc, argv);

	if (rc)
		return rc;
	memset(seed, 7, sizeof(seed));
	if (hm_crypto_init() < 0 || hm_keypair_from_seed(&kp, seed) < 0)
		return 1;
	memset(vote, 0x33, sizeof(vote));

	/* One message of each type. */
	for (unsigned type = HM_MSG_REQUEST; type <= HM_MSG_TYPE_MAX; type++) {
		bool digest_only = type == HM_MSG_PREPARE || type == HM_MSG_COMMIT ||
				   type == HM_MSG_CHECKPOINT || type == HM_MSG_STATUS;

		plen = hm_kv_encode_put(op, sizeof(op), "key", "value", 5);
		len = hm_msg_build_flags(buf, sizeof(buf), (uint8_t)type,
					 type & 1 ? HM_FLAG_RETRANSMIT : 0, 2, 1, 10 + type,
					 digest_only ? vote : NULL, op,
					 digest_only ? 0 : (uint32_t)plen, &kp);
		snprintf(name, sizeof(name), "msg-%s", hm_msg_type_name(type));
		write_seed(name, buf, len);
	}
	/* PRE-PREPAREs with batches of 0, 1 and 3 KV requests. */
	for (uint32_t k = 0; k <= 3; k += 1 + (k == 1)) {
		plen = 4;
		hm_put_be32(payload, k);
		for (uint32_t i = 0; i < k; i++) {
			const char *keys[] = { "alpha", "beta", "gamma" };

			n = i == 1 ? hm_kv_encode_get(op, sizeof(op), keys[i])
				   : hm_kv_encode_put(op, sizeof(op), keys[i], "v", 1);
			n = hm_msg_build(payload + plen + 4, sizeof(payload) - plen - 4,
					 HM_MSG_REQUEST, 100 + i, 0, 1000 + i, NULL, op,
					 (uint32_t)n, &kp);
			hm_put_be32(payload + plen, (uint32_t)n);
			plen += 4 + n;
		}
		len = hm_msg_build(buf, sizeof(buf), HM_MSG_PRE_PREPARE, 0, 0, 5, NULL, payload,
				   (uint32_t)plen, &kp);
		snprintf(name, sizeof(name), "preprepare-%u", k);
		write_seed(name, buf, len);
		/* the same requests vouched for (unsigned, MAC only) */
		len = hm_msg_build(buf, sizeof(buf), HM_MSG_VOUCH, 2, 0, 0, NULL, payload,
				   (uint32_t)plen, NULL);
		snprintf(name, sizeof(name), "vouch-%u", k);
		write_seed(name, buf, len);
		snprintf(name, sizeof(name), "batch-%u", k);
		write_seed(name, payload, plen);
	}
	/* A VIEW-CHANGE head with a checkpoint proof and one certificate, a
	 * part, and a NEW-VIEW. */
	{
		uint8_t sig[2 * HM_SIG_LEN], ids[3] = { 0, 1, 3 }, refs[3][HM_DIGEST_LEN];
		struct hm_vc_entry e = { .seq = 11, .view = 0, .digest = vote, .pp_len = 4,
					 .pp_sig = sig, .voters = 0x6, .sigs = sig };

		memset(sig, 0x11, sizeof(sig));
		memset(refs, 0x22, sizeof(refs));
		plen = 0;
		payload[plen++] = HM_VC_HEAD;
		payload[plen++] = 2;
		memset(payload + plen, 0x44, 2 * HM_DIGEST_LEN); /* part 1, cp digest */
		plen += 2 * HM_DIGEST_LEN;
		payload[plen++] = 3;
		for (uint32_t i = 0; i < 3; i++)
			plen += hm_vc_cp_put(payload + plen, HM_VC_CP_LEN, i, 0, sig);
		payload[plen++] = 0;
		payload[plen++] = 1;
		plen += hm_vc_entry_put(payload + plen, sizeof(payload) - plen, &e);
		len = hm_msg_build(buf, sizeof(buf), HM_MSG_VIEW_CHANGE, 2, 1, 10, NULL, payload,
				   (uint32_t)plen, &kp);
		write_seed("viewchange-head", buf, len);
		write_seed("vc-head", payload, plen);
		payload[0] = HM_VC_PART;
		payload[1] = 1;
		payload[2] = 0;
		payload[3] = 1;
		plen = 4 + hm_vc_entry_put(payload + 4, sizeof(payload) - 4, &e);
		write_seed("vc-part", payload, plen);
		plen = hm_nv_new_put(payload, sizeof(payload), 3, ids,
				     (const uint8_t(*)[HM_DIGEST_LEN])refs, 10, 12, vote);
		len = hm_msg_build(buf, sizeof(buf), HM_MSG_NEW_VIEW, 1, 1, 10, NULL, payload,
				   (uint32_t)plen, &kp);
		write_seed("newview", buf, len);
		write_seed("nv-new", payload, plen);
	}
	/* A reply with a GET result. */
	{
		uint8_t result[] = { HM_KV_OK, 'v', 'a', 'l' };

		uint8_t rd[HM_DIGEST_LEN];

		hm_digest("get val", 7, rd);
		plen = hm_reply_payload(payload, sizeof(payload), 100, 42, rd, HM_REPLY_RESULT,
					result, sizeof(result));
		len = hm_msg_build(buf, sizeof(buf), HM_MSG_REPLY, 1, 0, 1000, NULL, payload,
				   (uint32_t)plen, NULL);
		write_seed("reply", buf, len);
		/* the same with a batch proof: leaf 1 of 5 */
		{
			uint8_t body[64];
			hm_merkle_hash leaves[5];
			struct hm_reply_batch rb;
			struct hm_reply_proof p;
			size_t blen = hm_reply_body(body, sizeof(body), 100, 42, rd, HM_REPLY_RESULT,
						    result, sizeof(result));

			for (int i = 0; i < 5; i++)
				hm_reply_leaf(1000 + (uint64_t)i, body, blen, leaves[i]);
			if (hm_reply_batch_sign(&rb, leaves, 5, 1, 42, &kp) < 0)
				return 1;
			hm_reply_batch_proof(&rb, 1, &p);
			hm_reply_batch_free(&rb);
			plen = hm_reply_payload_proven(payload, sizeof(payload), &p, body, blen);
			len = hm_msg_build(buf, sizeof(buf), HM_MSG_REPLY, 1, 0, 1001, NULL, payload,
					   (uint32_t)plen, NULL);
			write_seed("reply-proven", buf, len);
			write_seed("reply-proof", payload, plen - blen);
		}
		/* and a refusal naming the same request */
		plen = hm_reply_payload(payload, sizeof(payload), 100, 0, rd, HM_REPLY_CONFLICT,
					NULL, 0);
		len = hm_msg_build(buf, sizeof(buf), HM_MSG_REPLY, 1, 0, 1000, NULL, payload,
				   (uint32_t)plen, NULL);
		write_seed("reply-refusal", buf, len);
	}
	/* KV ops. */
	n = hm_kv_encode_put(op, sizeof(op), "key", "value", 5);
	write_seed("op-put", op, n);
	n = hm_kv_encode_get(op, sizeof(op), "key");
	write_seed("op-get", op, n);
	n = hm_kv_encode_null(op, sizeof(op));
	write_seed("op-null", op, n);
	/* KV snapshots: empty and with three entries. */
	if (hm_kv_service_new(&svc) < 0)
		return 1;
	{
		struct hm_exec_ctx ctx = { 0 };
		uint8_t out[16], *snap;
		size_t slen;

		if (svc.ops->snapshot(svc.state, &snap, &slen) < 0)
			return 1;
		write_seed("snapshot-empty", snap, slen);
		free(snap);
		n = hm_kv_encode_put(op, sizeof(op), "b", "2", 1);
		svc.ops->execute(svc.state, &ctx, op, n, out, sizeof(out));
		n = hm_kv_encode_put(op, sizeof(op), "a", "1", 1);
		svc.ops->execute(svc.state, &ctx, op, n, out, sizeof(out));
		n = hm_kv_encode_put(op, sizeof(op), "ab", "", 0);
		svc.ops->execute(svc.state, &ctx, op, n, out, sizeof(out));
		if (svc.ops->snapshot(svc.state, &snap, &slen) < 0)
			return 1;
		write_seed("snapshot-3", snap, slen);
		free(snap);
		svc.ops->destroy(svc.state);
	}
	/* State transfer: a request and a chunk of a 3-chunk state; a
	 * checkpoint file image. */
	{
		static uint8_t snap[2 * HM_ST_CHUNK_SIZE + 100], chunk[HM_ST_CHUNK_MAX_PAYLOAD];
		struct hm_st_server srv;
		struct hm_st_request r = { .seq = 100, .index = 1 };
		struct hm_checkpoint cp = { .seq = 100, .view = 1, .nvotes = 3 };
		uint8_t *img;
		size_t ilen;

		memset(snap, 0x42, sizeof(snap));
		if (hm_st_server_init(&srv, 100, snap, sizeof(snap)) < 0)
			return 1;
		memcpy(r.digest, srv.digest, HM_DIGEST_LEN);
		n = hm_st_request_encode(payload, sizeof(payload), &r);
		write_seed("state-request", payload, n);
		len = hm_msg_build(buf, sizeof(buf), HM_MSG_STATE_REQUEST, 1, 0, 100, NULL, payload,
				   (uint32_t)n, &kp);
		write_seed("msg-state-request", buf, len);
		n = hm_st_serve(&srv, &r, chunk, sizeof(chunk));
		write_seed("state-chunk", chunk, n);
		r.index = 2;
		n = hm_st_serve(&srv, &r, chunk, sizeof(chunk));
		write_seed("state-chunk-last", chunk, n);
		memcpy(cp.digest, srv.digest, HM_DIGEST_LEN);
		hm_st_server_free(&srv);
		for (uint32_t i = 0; i < 3; i++) {
			cp.votes[i].replica = i;
			cp.votes[i].view = 1;
		}
		cp.snap = snap;
		cp.snap_len = 64;
		if (hm_checkpoint_serialize(&cp, &img, &ilen) < 0)
			return 1;
		write_seed("checkpoint-file", img, ilen);
		free(img);
	}
	return seed_end();
}
#endif /* HM_FUZZ_SEEDGEN */
