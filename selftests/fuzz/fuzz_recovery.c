// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for what a restarting replica reads back from its files
 * once the files' own checks passed (core/persist.c: magic, lengths and
 * checksums, tested by flipping and cutting every byte in test_persist):
 * the vote log's records, which the core decodes itself
 * (pbft_votes_restore: D_VIEW, D_PP, D_CERT, D_CERT32, D_COMMIT, D_VOTE,
 * D_VC, D_SILENT), and the committed log's batches, both handed to
 * pbft_recover() of a fresh core, which then runs its timers for a while.
 * On disk these records are checksummed, so they hold what this code wrote
 * unless a bug or a collision says otherwise; whatever else they hold must
 * be refused without a crash.  Built and run by scripts/fuzz.sh (target
 * `recovery`).
 *
 * Input: a flags byte (bits 0-1 the replica's id, n = 4; bit 2 restarted;
 * bit 3 the vote log intact; bit 4 the committed log complete), then
 * records: a kind byte ('V' a vote-log record, 'B' a committed batch, at
 * the next seq, with its own digest as the file's check would have it), a
 * big-endian u16 length and that many bytes.
 *
 * Invariants: the replica executes only batches of the committed log
 * (vote records never execute anything), and it leaves recovery in a view
 * no lower than any it had before (0 here).
 *
 * Built with -DHM_FUZZ_SEEDGEN, a small program writing the seed corpus: the
 * records four cores write while a client's request is proposed, prepared,
 * committed and executed, and a second one times out (a view change), and
 * what one of them writes when it restarts from its records.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/wire.h"
#include "core/pbft.h"
#include "core/persist.h"
#include "service/kv/kv.h"

#define HM_FUZZ_NAME "fuzz_recovery"
#define HM_FUZZ_SEED_PREFIX "seed-recovery-"
#include "hm_fuzz.h"

#define N 4
#define CLIENT 100
#define MAX_RECORDS 256

static struct hm_keypair replica_kp[N], client_kp;
static uint8_t replica_pk[N][HM_PUBKEY_LEN];

static const uint8_t *client_key(void *ctx, uint32_t client)
{
	(void)ctx;
	return client == CLIENT ? client_kp.pk : NULL;
}

/* No vote counter here: no certificate can be rebuilt from one. */
static int no_vote_sigs(void *ctx, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
			hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN])
{
	(void)ctx, (void)phase, (void)view, (void)seq, (void)voters, (void)sigs;
	return -1;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	uint8_t seed[32];

	(void)argc, (void)argv;
	if (hm_crypto_init() < 0)
		abort();
	for (uint32_t i = 0; i < N; i++) {
		memset(seed, 0x10 + (int)i, sizeof(seed));
		hm_keypair_from_seed(&replica_kp[i], seed);
		memcpy(replica_pk[i], replica_kp[i].pk, HM_PUBKEY_LEN);
	}
	memset(seed, 0x77, sizeof(seed));
	hm_keypair_from_seed(&client_kp, seed);
	return 0;
}

typedef int (*vote_sigs_fn)(void *ctx, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
			    hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN]);

/* A core of the 4-replica group as the daemon configures it, over its own
 * KV service (*svc). */
static struct pbft *core_new(uint32_t id, struct hm_service *svc, vote_sigs_fn vote_sigs)
{
	struct pbft_params p = {
		.n = N, .f = 1, .id = id,
		.batch_size = 8, .batch_timeout_ms = 10, .pipeline_depth = 4,
		.checkpoint_interval = 10, .window = 40, .max_message_size = HM_MAX_DATAGRAM,
		.retransmit_ms = 100, .view_change_timeout_ms = 500,
		.signed_requests = true,
		.keys = &replica_kp[id], .replica_keys = (const uint8_t(*)[HM_PUBKEY_LEN])replica_pk,
		.client_key = client_key, .vote_sigs = vote_sigs, .service = svc,
	};
	struct pbft *c;

	if (hm_kv_service_new(svc) < 0)
		abort();
	c = pbft_new(&p);
	if (!c)
		abort();
	return c;
}

static void core_free(struct pbft *c, struct hm_service *svc)
{
	pbft_free(c);
	svc->ops->destroy(svc->state);
}

/* Take the core's Readies until it has none (bounded: a bug that keeps
 * making them must not hang the fuzzer, it shows as a missed invariant). */
static void drain(struct pbft *c)
{
	for (int k = 0; k < 64 && pbft_has_ready(c); k++) {
		struct pbft_ready rd;

		pbft_ready(c, &rd);
		pbft_advance(c);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hm_vote_record votes[MAX_RECORDS];
	static struct hm_log_record batches[MAX_RECORDS];
	size_t nvotes = 0, nbatches = 0, off = 1;
	struct hm_service svc;
	struct pbft *c;
	bool incomplete = false;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	while (off + 3 <= size && nvotes < MAX_RECORDS && nbatches < MAX_RECORDS) {
		uint8_t kind = data[off];
		size_t len = (size_t)data[off + 1] << 8 | data[off + 2];

		off += 3;
		if (len > size - off)
			len = size - off;
		if (kind == 'B') {
			struct hm_log_record *b = &batches[nbatches];

			b->seq = nbatches + 1;
			b->view = 0;
			b->batch = (uint8_t *)data + off;
			b->batch_len = (uint32_t)len;
			hm_digest(b->batch, b->batch_len, b->digest);
			nbatches++;
		} else if (len > 0) {
			votes[nvotes].buf = (uint8_t *)data + off;
			votes[nvotes].len = (uint32_t)len;
			nvotes++;
		}
		off += len;
	}
	c = core_new(flags & 3, &svc, no_vote_sigs);
	pbft_recover(c, NULL, batches, nbatches, flags & 16, flags & 4, 0, votes, nvotes, flags & 8,
		     &incomplete);
	CHECK(pbft_last_executed(c) <= nbatches);
	drain(c);
	/* Its timers: retransmissions, a view change, catch-up. */
	for (uint64_t t = 1; t <= 8; t++) {
		pbft_tick(c, t * 1000000);
		drain(c);
	}
	CHECK(pbft_last_executed(c) <= nbatches);
	core_free(c, &svc);
	return 0;
}

#ifdef HM_FUZZ_SEEDGEN
/* ---- the seed corpus ---------------------------------------------------- */

struct recorder {
	uint8_t buf[1 << 16];
	size_t len;
	int records;
};

/* What a vote counter would hold: each voter's latest vote by phase (one
 * slot is enough here: seq 1 of view 0). */
struct seen_vote {
	bool have;
	uint64_t view, seq;
	uint8_t digest[HM_DIGEST_LEN], sig[HM_SIG_LEN];
};
static struct seen_vote seen[HM_PHASE_MAX][N];

static int seen_vote_sigs(void *ctx, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
			  hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN])
{
	(void)ctx;
	for (uint32_t i = 0; i < N; i++) {
		const struct seen_vote *v = &seen[phase][i];

		if (!(voters >> i & 1))
			continue;
		if (!v->have || v->view != view || v->seq != seq)
			return -1;
		memcpy(sigs[i], v->sig, HM_SIG_LEN);
	}
	return 0;
}

static void put_record(struct recorder *r, uint8_t kind, const uint8_t *p, size_t len)
{
	if (len > 0xffff || r->len + 3 + len > sizeof(r->buf))
		return;
	r->buf[r->len++] = kind;
	r->buf[r->len++] = (uint8_t)(len >> 8);
	r->buf[r->len++] = (uint8_t)len;
	memcpy(r->buf + r->len, p, len);
	r->len += len;
	r->records++;
}

static void note_vote(const struct hm_msg *m)
{
	enum hm_vote_phase ph = m->type == HM_MSG_PREPARE ? HM_PHASE_PREPARE : HM_PHASE_COMMIT;
	struct seen_vote *v;

	if ((m->type != HM_MSG_PREPARE && m->type != HM_MSG_COMMIT) || m->sender >= N)
		return;
	v = &seen[ph][m->sender];
	v->have = true;
	v->view = m->view;
	v->seq = m->seq;
	memcpy(v->digest, m->digest, HM_DIGEST_LEN);
	memcpy(v->sig, m->hdr->sig, HM_SIG_LEN);
}

/* Run the core's Readies: their vote records go to rec (executed batches
 * as committed-log records), their messages to every other core (decoded
 * as the node would, MACs aside). */
static void pump(struct pbft *cores[N], uint32_t from, struct recorder rec[N])
{
	while (pbft_has_ready(cores[from])) {
		struct pbft_ready rd;

		pbft_ready(cores[from], &rd);
		for (size_t i = 0; i < rd.n_executed; i++)
			put_record(&rec[from], 'B', rd.executed[i].batch, rd.executed[i].batch_len);
		for (size_t i = 0; i < rd.n_durable; i++)
			put_record(&rec[from], 'V', rd.durable[i].buf, rd.durable[i].len);
		for (size_t i = 0; i < rd.n_msgs; i++) {
			const struct pbft_out *o = &rd.msgs[i];
			enum hm_drop_reason why;
			struct hm_msg m;

			if (o->dest == PBFT_TO_CLIENT ||
			    hm_msg_decode(o->buf, o->len, HM_MAX_DATAGRAM, &m, &why) < 0)
				continue;
			note_vote(&m);
			for (uint32_t j = 0; j < N; j++)
				if (j != from && (o->dest == PBFT_TO_REPLICAS || o->to == j))
					pbft_receive(cores[j], &m, &why);
		}
		pbft_advance(cores[from]);
	}
}

/* The quorum events a counter would raise now for seq 1 of view 0: the
 * voters whose vote matches each core's (the PRE-PREPARE's digest). */
static void raise_quorums(struct pbft *cores[N], struct recorder rec[N], enum hm_vote_phase ph)
{
	uint8_t d[HM_DIGEST_LEN];

	for (uint32_t i = 0; i < N; i++) {
		struct hm_vote_event ev = { .kind = HM_EV_QUORUM, .phase = ph, .seq = 1 };

		if (!pbft_prepared_digest(cores[i], 1, d) && ph == HM_PHASE_COMMIT)
			continue;
		if (ph == HM_PHASE_PREPARE && !seen[ph][1].have)
			continue;
		memcpy(ev.digest, ph == HM_PHASE_PREPARE ? seen[ph][1].digest : d, HM_DIGEST_LEN);
		for (uint32_t j = 0; j < N; j++)
			if (seen[ph][j].have &&
			    memcmp(seen[ph][j].digest, ev.digest, HM_DIGEST_LEN) == 0)
				ev.voters |= (hm_voters_t)1 << j;
		pbft_on_vote_event(cores[i], &ev);
		pump(cores, i, rec);
	}
}

static void write_records(const char *name, uint8_t flags, const struct recorder *r)
{
	static uint8_t seed[1 + sizeof(r->buf)];

	seed[0] = flags;
	memcpy(seed + 1, r->buf, r->len);
	write_seed(name, seed, 1 + r->len);
	printf("%s: %d records\n", name, r->records);
}

int main(int argc, char **argv)
{
	static struct recorder rec[N], after;
	static uint8_t req[HM_MAX_DATAGRAM];
	struct hm_service svcs[N], svc;
	struct pbft *cores[N], *again;
	struct hm_vote_record votes[MAX_RECORDS];
	size_t req_len, op_len, nvotes = 0;
	uint8_t op[64];
	bool incomplete;
	int rc = seed_begin(argc, argv);

	if (rc)
		return rc;
	for (uint32_t i = 0; i < N; i++)
		cores[i] = core_new(i, &svcs[i], seen_vote_sigs);
	/* A client's PUT to every replica: the primary proposes it, the
	 * backups PREPARE, the counter's quorums make every core COMMIT and
	 * execute it (vote records of each kind, the committed batch). */
	op_len = hm_kv_encode_put(op, sizeof(op), "key", "value", 5);
	req_len = hm_msg_build(req, sizeof(req), HM_MSG_REQUEST, CLIENT, 0, 1, NULL, op,
			       (uint32_t)op_len, &client_kp);
	for (uint32_t i = 0; i < N; i++) {
		enum hm_drop_reason why;
		struct hm_msg m;

		pbft_tick(cores[i], 100000);
		if (hm_msg_decode(req, req_len, HM_MAX_DATAGRAM, &m, &why) == 0)
			pbft_receive(cores[i], &m, &why);
	}
	for (uint64_t t = 2; t <= 3; t++)
		for (uint32_t i = 0; i < N; i++) {
			pbft_tick(cores[i], t * 100000);
			pump(cores, i, rec);
		}
	raise_quorums(cores, rec, HM_PHASE_PREPARE);
	raise_quorums(cores, rec, HM_PHASE_COMMIT);
	/* A second request that no quorum ever completes: it times out at
	 * the backups, which change view (VIEW-CHANGE and view records). */
	req_len = hm_msg_build(req, sizeof(req), HM_MSG_REQUEST, CLIENT, 0, 2, NULL, op,
			       (uint32_t)op_len, &client_kp);
	for (uint32_t i = 0; i < N; i++) {
		enum hm_drop_reason why;
		struct hm_msg m;

		if (hm_msg_decode(req, req_len, HM_MAX_DATAGRAM, &m, &why) == 0)
			pbft_receive(cores[i], &m, &why);
		pump(cores, i, rec);
	}
	for (uint64_t t = 1; t <= 4; t++)
		for (uint32_t i = 0; i < N; i++) {
			pbft_tick(cores[i], t * 1000000);
			pump(cores, i, rec);
		}
	for (uint32_t i = 0; i < N; i++) {
		char name[32];

		snprintf(name, sizeof(name), "replica-%u", i);
		write_records(name, (uint8_t)(i | 4 | 8 | 16), &rec[i]);
	}
	/* Replica 1 restarted from its records: what its first Readies write
	 * (the restart rule's record, the whole state again). */
	for (size_t off = 0; off + 3 <= rec[1].len && nvotes < MAX_RECORDS;) {
		size_t len = (size_t)rec[1].buf[off + 1] << 8 | rec[1].buf[off + 2];

		if (rec[1].buf[off] == 'V')
			votes[nvotes++] = (struct hm_vote_record){ rec[1].buf + off + 3,
								   (uint32_t)len };
		off += 3 + len;
	}
	again = core_new(1, &svc, seen_vote_sigs);
	pbft_recover(again, NULL, NULL, 0, true, true, 0, votes, nvotes, true, &incomplete);
	while (pbft_has_ready(again)) {
		struct pbft_ready rd;

		pbft_ready(again, &rd);
		for (size_t i = 0; i < rd.n_durable; i++)
			put_record(&after, 'V', rd.durable[i].buf, rd.durable[i].len);
		pbft_advance(again);
	}
	write_records("replica-1-restarted", 1 | 4 | 8 | 16, &after);
	core_free(again, &svc);
	for (uint32_t i = 0; i < N; i++)
		core_free(cores[i], &svcs[i]);
	return seed_end();
}
#endif /* HM_FUZZ_SEEDGEN */
