// SPDX-License-Identifier: MIT
/*
 * The link layer (common/link_crypt.h) under the simulator: the same node
 * code the daemon runs, with network.encryption_required and
 * message_compression on.  Consensus and state transfer work through
 * sealed, compressed payloads; no client value crosses a replica link in
 * the clear; a replica that sends plaintext is refused (not_encrypted) and
 * the group goes on without it.
 */
#include "hm_test.h"
#include "sim_checks.h"
#include "testing/sim.h"
#include "common/wire.h"

#define SECOND 1000000ull

struct watch {
	uint32_t n;
	uint64_t replica_payloads, sealed, compressed, chunks_compressed;
	uint64_t plain_values_between_replicas, plain_values_from_clients;
};

/* Client PUT values look like "c<client>-<op>": search for "c", a client
 * digit, "-" and two digits (ops 10 and up), 5 bytes that random
 * ciphertext matches about once in 3e9 positions. */
static bool has_value(const uint8_t *buf, size_t len)
{
	for (size_t i = 0; i + 5 <= len; i++)
		if (buf[i] == 'c' && buf[i + 1] >= '0' && buf[i + 1] <= '3' && buf[i + 2] == '-' &&
		    buf[i + 3] >= '1' && buf[i + 3] <= '9' && buf[i + 4] >= '0' && buf[i + 4] <= '9')
			return true;
	return false;
}

static bool watch_filter(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			 const uint8_t *buf, size_t len)
{
	struct watch *w = ctx;
	uint16_t flags = len >= HM_HDR_LEN ? hm_get_be16(buf + 6) : 0;

	(void)s;
	if (from >= w->n) {
		w->plain_values_from_clients += has_value(buf, len);
		return true;
	}
	if (to >= w->n || len <= HM_HDR_LEN)
		return true;
	w->replica_payloads++;
	w->sealed += !!(flags & HM_FLAG_ENCRYPTED);
	w->compressed += !!(flags & HM_FLAG_COMPRESSED);
	w->chunks_compressed += buf[5] == HM_MSG_STATE_CHUNK && (flags & HM_FLAG_COMPRESSED);
	w->plain_values_between_replicas += has_value(buf + HM_HDR_LEN, len - HM_HDR_LEN);
	return true;
}

static uint64_t drops(struct hm_sim *s, uint32_t r, enum hm_drop_reason why)
{
	return hm_node_drops(hm_sim_node(s, r), why);
}

HM_TEST(normal_case_sealed_and_compressed)
{
	struct hm_sim_opts o;
	struct watch w = { 0 };
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	o.encryption_required = o.message_compression = true;
	o.batch_size = 32; /* batches big enough to compress */
	s = hm_sim_new(&o);
	w.n = o.n;
	hm_sim_set_filter(s, watch_filter, &w);
	sim_run_and_check(s, 30, "all operations complete");
	ASSERT_EQ(hm_sim_completed(s), o.clients * o.ops_per_client, "completed ops");
	ASSERT_GE(w.replica_payloads, 50, "replica messages with payloads were sent");
	ASSERT_EQ(w.sealed, w.replica_payloads, "every replica payload sealed");
	ASSERT_GE(w.compressed, 1, "some payloads compressed");
	ASSERT_GE(w.plain_values_from_clients, 1, "client requests carry the values (the check works)");
	ASSERT_EQ(w.plain_values_between_replicas, 0, "no value in the clear between replicas");
	ASSERT_GE(hm_sim_node(s, 0)->link_sealed, 1, "node counter: sealed");
	for (uint32_t r = 0; r < o.n; r++) {
		ASSERT_EQ(drops(s, r, HM_DROP_BAD_SEAL), 0, "no bad_seal");
		ASSERT_EQ(drops(s, r, HM_DROP_NOT_ENCRYPTED), 0, "no not_encrypted");
	}
	hm_sim_free(s);
}

HM_TEST(state_transfer_through_sealed_compressed_chunks)
{
	struct hm_sim_opts o;
	struct watch w = { 0 };
	struct hm_sim *s;
	uint64_t stop, limit;

	hm_sim_default_opts(&o);
	o.encryption_required = o.message_compression = true;
	o.batch_size = 1;
	o.pipeline_depth = 2;
	o.ops_per_client = 60;
	s = hm_sim_new(&o);
	w.n = o.n;
	hm_sim_set_filter(s, watch_filter, &w);
	hm_sim_crash(s, 3);
	stop = hm_sim_now(s) + 60 * SECOND;
	limit = hm_sim_now(s);
	while (hm_sim_completed(s) < 120 && limit < stop)
		if (hm_sim_run(s, limit += 10000))
			break;
	hm_sim_revive(s, 3);
	sim_run_and_check(s, 60, "the lagging replica catches up");
	ASSERT_GE(pbft_stats(hm_sim_node(s, 3)->core)->state_transfers_done, 1,
		  "state transfer completed");
	ASSERT_EQ(pbft_last_executed(hm_sim_node(s, 3)->core),
		  pbft_last_executed(hm_sim_node(s, 0)->core), "caught up");
	ASSERT_GE(w.chunks_compressed, 1, "state chunks went compressed");
	ASSERT_EQ(w.sealed, w.replica_payloads, "every replica payload sealed");
	hm_sim_free(s);
}

HM_TEST(plaintext_primary_refused_and_replaced)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	o.encryption_required = true;
	s = hm_sim_new(&o);
	/* replica 0, the first primary, sends its payloads in the clear */
	hm_sim_node(s, 0)->link.encrypt = false;
	hm_sim_mark_faulty(s, 0);
	sim_run_and_check(s, 60, "the others complete every op in a later view");
	ASSERT_EQ(hm_sim_completed(s), o.clients * o.ops_per_client, "completed ops");
	for (uint32_t r = 1; r < o.n; r++) {
		ASSERT_GE(hm_sim_node(s, r)->replica_stats[0].drops[HM_DROP_NOT_ENCRYPTED], 1,
			  "replica 0's plaintext refused as not_encrypted");
		ASSERT_GE(pbft_view(hm_sim_node(s, r)->core), 1, "a view change replaced it");
	}
	hm_sim_free(s);
}
