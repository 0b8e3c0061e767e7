// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for a replica's PBFT core, fed two kinds of input it
 * must survive whatever they hold.  Built and run by scripts/fuzz.sh (target
 * `core`).
 *
 *   - What a restart reads back once the files' own checks passed
 *     (core/persist.c: magic, lengths and checksums, tested by flipping
 *     and cutting every byte in test_persist): the vote log's records, which
 *     the core decodes itself (pbft_votes_restore: D_VIEW, D_PP, D_CERT,
 *     D_CERT32, D_COMMIT, D_VOTE, D_VC, D_SILENT), and the committed log's
 *     batches, handed to pbft_recover() of a fresh core.  On disk they are
 *     checksummed, so they hold what this code wrote unless a bug or a
 *     collision says otherwise; anything else must be refused.
 *   - Then datagrams from its peers and clients, as the node hands them
 *     over once their MACs verified (user/replica/node.c): PREPAREs and
 *     COMMITs to the socket dataplane's vote counter (core/quorum.c), whose
 *     events go to the core, everything else to pbft_receive().  What a
 *     Byzantine peer may send; here the fuzzer speaks for every other
 *     replica at once, more than f, so only crash-freedom is asserted for
 *     this part.  The core's timers run between them.
 *
 * Input: a flags byte (bits 0-1 the replica's id, n = 4; bit 2 restarted;
 * bit 3 the vote log intact; bit 4 the committed log complete), then
 * records: a kind byte ('V' a vote-log record, 'B' a committed batch, at
 * the next seq, with its own digest as the file's check would have it, 'M'
 * a datagram received after recovery), a big-endian u16 length and that
 * many bytes.
 *
 * Invariant: recovery executes only batches of the committed log (vote
 * records never execute anything).
 *
 * Built with -DHM_FUZZ_SEEDGEN, a small program writing the seed corpus:
 * what four replicas (cores and vote counters, as here) write and receive
 * while a client's requests are proposed, prepared, committed and executed
 * (past a checkpoint), and while a later one times out (a view change),
 * and what one of them writes when it restarts from its records.
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
#include "core/quorum.h"
#include "service/kv/kv.h"

#define HM_FUZZ_NAME "fuzz_core"
#define HM_FUZZ_SEED_PREFIX "seed-core-"
#include "hm_fuzz.h"

#define N 4
#define WINDOW 40
#define CLIENT 100
#define MAX_RECORDS 256

static struct hm_keypair replica_kp[N], client_kp;
static uint8_t replica_pk[N][HM_PUBKEY_LEN];

/* One replica as node.c drives it: the core, its service and the socket
 * dataplane's vote counter. */
struct replica {
	uint32_t id;
	struct pbft *core;
	struct hm_service svc;
	struct hm_vote_counter votes;
};

static const uint8_t *client_key(void *ctx, uint32_t client)
{
	(void)ctx;
	return client == CLIENT ? client_kp.pk : NULL;
}

static int counter_sigs(void *ctx, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
			hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN])
{
	struct replica *r = ctx;

	return r->votes.ops->sigs(r->votes.state, phase, view, seq, voters, sigs);
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

/* Replica id of the 4-replica group as the daemon configures it. */
static void replica_new(struct replica *r, uint32_t id)
{
	struct pbft_params p = {
		.n = N, .f = 1, .id = id,
		.batch_size = 8, .batch_timeout_ms = 10, .pipeline_depth = 4,
		.checkpoint_interval = 10, .window = WINDOW, .max_message_size = HM_MAX_DATAGRAM,
		.retransmit_ms = 100, .view_change_timeout_ms = 500,
		.signed_requests = true,
		.keys = &replica_kp[id], .replica_keys = (const uint8_t(*)[HM_PUBKEY_LEN])replica_pk,
		.client_key = client_key, .vote_sigs = counter_sigs, .vote_sigs_ctx = r,
		.service = &r->svc,
	};

	r->id = id;
	if (hm_kv_service_new(&r->svc) < 0 ||
	    hm_quorum_counter_new(&r->votes, N, 1, id, WINDOW) < 0 || !(r->core = pbft_new(&p)))
		abort();
}

static void replica_free(struct replica *r)
{
	pbft_free(r->core);
	r->votes.ops->destroy(r->votes.state);
	r->svc.ops->destroy(r->svc.state);
}

/* What one Ready hands over (the seed generator records it). */
typedef void (*ready_fn)(void *ctx, const struct replica *r, const struct pbft_ready *rd);

/* Take the core's Readies until it has none, as node.c's drain() does: the
 * vote policy to the counter, the window, then the counter's events back
 * to the core.  Bounded: a core that keeps making Readies must not hang the
 * fuzzer. */
static void drain(struct replica *r, ready_fn on_ready, void *ctx)
{
	for (int k = 0; k < 256 && pbft_has_ready(r->core); k++) {
		struct hm_vote_event evs[2 * 64];
		struct pbft_ready rd;
		size_t n_evs = 0;

		pbft_ready(r->core, &rd);
		if (on_ready)
			on_ready(ctx, r, &rd);
		for (size_t i = 0; i < rd.n_votes && n_evs + 2 <= 2 * 64; i++)
			n_evs += r->votes.ops->policy(r->votes.state, &rd.votes[i], &evs[n_evs]);
		if (rd.window_changed) {
			r->votes.ops->collect(r->votes.state, rd.low);
			if (r->votes.ops->window)
				r->votes.ops->window(r->votes.state, rd.view, rd.low, rd.high);
		}
		pbft_advance(r->core);
		for (size_t i = 0; i < n_evs; i++)
			pbft_on_vote_event(r->core, &evs[i]);
	}
}

/* One datagram as node.c hands it over once its MAC verified. */
static void deliver(struct replica *r, const uint8_t *buf, size_t len, ready_fn on_ready,
		    void *ctx)
{
	enum hm_drop_reason why;
	struct hm_vote_event ev;
	struct hm_msg m;

	if (hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why) < 0)
		return;
	if ((m.type == HM_MSG_PREPARE || m.type == HM_MSG_COMMIT) && m.sender < N &&
	    m.sender != r->id) {
		enum hm_vote_phase ph = m.type == HM_MSG_PREPARE ? HM_PHASE_PREPARE : HM_PHASE_COMMIT;

		if (r->votes.ops->vote(r->votes.state, ph, m.view, m.seq, m.sender, m.digest,
				       m.hdr->sig, &ev, &why) > 0)
			pbft_on_vote_event(r->core, &ev);
	} else {
		pbft_receive(r->core, &m, &why);
	}
	drain(r, on_ready, ctx);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hm_vote_record votes[MAX_RECORDS], msgs[MAX_RECORDS];
	static struct hm_log_record batches[MAX_RECORDS];
	size_t nvotes = 0, nbatches = 0, nmsgs = 0, off = 1;
	struct replica r;
	bool incomplete = false;
	uint8_t flags;

	if (size < 1)
		return 0;
	flags = data[0];
	while (off + 3 <= size && nvotes < MAX_RECORDS && nbatches < MAX_RECORDS &&
	       nmsgs < MAX_RECORDS) {
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
		} else if (kind == 'M') {
			msgs[nmsgs++] = (struct hm_vote_record){ (uint8_t *)data + off, (uint32_t)len };
		} else if (len > 0) {
			votes[nvotes++] = (struct hm_vote_record){ (uint8_t *)data + off, (uint32_t)len };
		}
		off += len;
	}
	replica_new(&r, flags & 3);
	pbft_recover(r.core, NULL, batches, nbatches, flags & 16, flags & 4, 0, votes, nvotes,
		     flags & 8, &incomplete);
	CHECK(pbft_last_executed(r.core) <= nbatches);
	drain(&r, NULL, NULL);
	/* What peers send, 20 ms apart, then its timers alone: retransmissions,
	 * a view change, catch-up, state transfer. */
	for (size_t i = 0; i < nmsgs; i++) {
		pbft_tick(r.core, 1000000 + i * 20000);
		deliver(&r, msgs[i].buf, msgs[i].len, NULL, NULL);
	}
	for (uint64_t t = 1; t <= 8; t++) {
		pbft_tick(r.core, (2 + nmsgs / 50 + t) * 1000000);
		drain(&r, NULL, NULL);
	}
	replica_free(&r);
	return 0;
}

#ifdef HM_FUZZ_SEEDGEN
/* ---- the seed corpus ---------------------------------------------------- */

struct recorder {
	uint8_t buf[1 << 17];
	size_t len;
	int records;
};

static struct recorder wrote[N], received[N];
static struct replica group[N];

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

/* A Ready of one of the group: its records to wrote[] (executed batches as
 * committed-log records), its datagrams queued for the others. */
struct wire {
	uint8_t buf[HM_MAX_DATAGRAM];
	size_t len;
	uint32_t to; /* a replica, or N: every other one */
	uint32_t from;
};
static struct wire queue[4096];
static size_t queued;
static hm_voters_t down; /* replicas that neither send nor receive */

static void record_ready(void *ctx, const struct replica *r, const struct pbft_ready *rd)
{
	(void)ctx;
	for (size_t i = 0; i < rd->n_executed; i++)
		put_record(&wrote[r->id], 'B', rd->executed[i].batch, rd->executed[i].batch_len);
	for (size_t i = 0; i < rd->n_durable; i++)
		put_record(&wrote[r->id], 'V', rd->durable[i].buf, rd->durable[i].len);
	for (size_t i = 0; i < rd->n_msgs && queued < 4096; i++) {
		const struct pbft_out *o = &rd->msgs[i];

		if (o->dest == PBFT_TO_CLIENT || o->len > HM_MAX_DATAGRAM)
			continue;
		memcpy(queue[queued].buf, o->buf, o->len);
		queue[queued].len = o->len;
		queue[queued].to = o->dest == PBFT_TO_REPLICAS ? N : o->to;
		queue[queued++].from = r->id;
	}
}

/* Deliver what is queued (and what that sends) until the group is quiet. */
static void settle(void)
{
	for (size_t k = 0; k < queued; k++) {
		struct wire w = queue[k];

		if (down >> w.from & 1)
			continue;
		for (uint32_t j = 0; j < N; j++)
			if (j != w.from && (w.to == N || w.to == j) && !(down >> j & 1)) {
				put_record(&received[j], 'M', w.buf, w.len);
				deliver(&group[j], w.buf, w.len, record_ready, NULL);
			}
	}
	queued = 0;
}

/* A client request (timestamp ts) to every replica. */
static void request(uint64_t ts)
{
	uint8_t op[64], req[512];
	size_t op_len = hm_kv_encode_put(op, sizeof(op), "key", "value", 5), len;

	len = hm_msg_build(req, sizeof(req), HM_MSG_REQUEST, CLIENT, 0, ts, NULL, op,
			   (uint32_t)op_len, &client_kp);
	for (uint32_t i = 0; i < N; i++) {
		put_record(&received[i], 'M', req, len);
		deliver(&group[i], req, len, record_ready, NULL);
	}
	settle();
}

static void tick_all(uint64_t now)
{
	for (uint32_t i = 0; i < N; i++) {
		pbft_tick(group[i].core, now);
		drain(&group[i], record_ready, NULL);
	}
	settle();
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
	static struct recorder after;
	struct hm_vote_record votes[MAX_RECORDS];
	struct replica again;
	size_t nvotes = 0;
	bool incomplete;
	uint64_t ts = 1, now = 100000;
	int rc = seed_begin(argc, argv);

	if (rc)
		return rc;
	for (uint32_t i = 0; i < N; i++)
		replica_new(&group[i], i);
	/* Requests one at a time, each committed and executed: past the
	 * checkpoint at seq 10 (CHECKPOINTs, a stable checkpoint). */
	for (; ts <= 12; ts++, now += 50000) {
		tick_all(now);
		request(ts);
	}
	/* Replica 0 (the primary) goes silent: the next request times out
	 * at the backups, which change view. */
	for (uint32_t i = 1; i < N; i++) {
		uint8_t op[64], req[512];
		size_t op_len = hm_kv_encode_put(op, sizeof(op), "k2", "v", 1), len;

		len = hm_msg_build(req, sizeof(req), HM_MSG_REQUEST, CLIENT, 0, ts, NULL, op,
				   (uint32_t)op_len, &client_kp);
		put_record(&received[i], 'M', req, len);
		deliver(&group[i], req, len, record_ready, NULL);
	}
	down = 1u << 0;
	settle();
	for (uint64_t t = 1; t <= 6; t++) {
		for (uint32_t i = 1; i < N; i++) {
			pbft_tick(group[i].core, now + t * 500000);
			drain(&group[i], record_ready, NULL);
		}
		settle();
	}
	for (uint32_t i = 0; i < N; i++) {
		char name[32];

		snprintf(name, sizeof(name), "replica-%u", i);
		write_records(name, (uint8_t)(i | 4 | 8 | 16), &wrote[i]);
		/* a fresh replica i receiving what replica i received */
		snprintf(name, sizeof(name), "received-by-%u", i);
		write_records(name, (uint8_t)(i | 8 | 16), &received[i]);
	}
	/* Replica 1 restarted from its vote records: what its first Readies
	 * write (the restart rule's record, the whole state again). */
	for (size_t off = 0; off + 3 <= wrote[1].len && nvotes < MAX_RECORDS;) {
		size_t len = (size_t)wrote[1].buf[off + 1] << 8 | wrote[1].buf[off + 2];

		if (wrote[1].buf[off] == 'V')
			votes[nvotes++] = (struct hm_vote_record){ wrote[1].buf + off + 3,
								   (uint32_t)len };
		off += 3 + len;
	}
	replica_new(&again, 1);
	pbft_recover(again.core, NULL, NULL, 0, true, true, 0, votes, nvotes, true, &incomplete);
	while (pbft_has_ready(again.core)) {
		struct pbft_ready rd;

		pbft_ready(again.core, &rd);
		for (size_t i = 0; i < rd.n_durable; i++)
			put_record(&after, 'V', rd.durable[i].buf, rd.durable[i].len);
		pbft_advance(again.core);
	}
	write_records("replica-1-restarted", 1 | 4 | 8 | 16, &after);
	replica_free(&again);
	for (uint32_t i = 0; i < N; i++)
		replica_free(&group[i]);
	return seed_end();
}
#endif /* HM_FUZZ_SEEDGEN */
