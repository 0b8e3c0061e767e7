// SPDX-License-Identifier: MIT
/*
 * PBFT normal case on the in-process simulated network: the same replica
 * code the daemon runs, with real signatures and MACs, a virtual clock and
 * seeded delays, reordering, duplication and crashes.
 *
 *   HM_SIM_SEEDS=N   number of randomized seeds for `random_schedules`
 *   HM_SIM_SEED=N    run only seed N (to replay a failure)
 *   HM_SIM_SHARD=i/k, HM_I17_PENDING: see sim_checks.h
 */
#include <dirent.h>
#include <unistd.h>

#include "hm_test.h"
#include "sim_checks.h"
#include "core/persist.h"
#include "service/kv/kv.h"
#include "testing/sim.h"
#include "common/wire.h"

#define SECOND 1000000ull

static void run_until_ops(struct hm_sim *s, uint64_t ops);

HM_TEST(normal_case_n4)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	s = hm_sim_new(&o);
	sim_run_and_check(s, 30, "all operations complete");
	ASSERT_EQ(hm_sim_completed(s), o.clients * o.ops_per_client, "completed ops");
	/* 200 ops with checkpoints every 10 batches: the window moved. */
	ASSERT_GE(pbft_low_watermark(hm_sim_node(s, 0)->core), 10, "low watermark advanced");
	ASSERT_GE(pbft_stats(hm_sim_node(s, 0)->core)->checkpoints_stable, 1, "stable checkpoints");
	hm_sim_free(s);
}

HM_TEST(backup_crashed_from_start)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	s = hm_sim_new(&o);
	hm_sim_crash(s, 3);
	sim_run_and_check(s, 30, "progress with f replicas down");
	ASSERT_EQ(hm_sim_completed(s), o.clients * o.ops_per_client, "completed ops");
	hm_sim_free(s);
}

HM_TEST(backup_crashed_mid_run)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	s = hm_sim_new(&o);
	hm_sim_crash_after(s, 2, 60);
	sim_run_and_check(s, 30, "progress after a backup crashed");
	ASSERT_EQ(hm_sim_completed(s), o.clients * o.ops_per_client, "completed ops");
	hm_sim_free(s);
}

HM_TEST(n7_two_backups_down)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	o.n = 7;
	o.f = 2;
	s = hm_sim_new(&o);
	hm_sim_crash(s, 5);
	hm_sim_crash_after(s, 6, 40);
	sim_run_and_check(s, 30, "n=7 with f=2 down");
	hm_sim_free(s);
}

HM_TEST(n16_f5)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	o.n = 16;
	o.f = 5;
	o.ops_per_client = 10;
	s = hm_sim_new(&o);
	for (uint32_t i = 11; i < 16; i++)
		hm_sim_crash(s, i);
	sim_run_and_check(s, 30, "n=16 with f=5 down");
	hm_sim_free(s);
}

HM_TEST(too_many_faults_stall_safely)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	char why[256];

	hm_sim_default_opts(&o);
	s = hm_sim_new(&o);
	hm_sim_crash(s, 2);
	hm_sim_crash(s, 3);
	/* f+1 replicas down: no quorum, so nothing may complete. */
	ASSERT_FALSE(hm_sim_run(s, 5 * SECOND), "no progress without a quorum");
	ASSERT_EQ(hm_sim_completed(s), 0, "completed ops");
	ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	hm_sim_free(s);
}

HM_TEST(batching_reduces_batches)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint64_t unbatched, batched;

	hm_sim_default_opts(&o);
	o.batch_size = 1;
	s = hm_sim_new(&o);
	sim_run_and_check(s, 30, "unbatched run");
	unbatched = pbft_stats(hm_sim_node(s, 0)->core)->batches_proposed;
	ASSERT_EQ(unbatched, o.clients * o.ops_per_client, "one batch per op without batching");
	hm_sim_free(s);

	o.batch_size = 16;
	o.batch_timeout_ms = 5;
	o.clients = 8;
	s = hm_sim_new(&o);
	sim_run_and_check(s, 30, "batched run");
	batched = pbft_stats(hm_sim_node(s, 0)->core)->batches_proposed;
	ASSERT_LE(batched * 2, o.clients * o.ops_per_client, "batches carry several ops");
	hm_sim_free(s);
}

HM_TEST(pipeline_depth_bounds_inflight)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	o.pipeline_depth = 1;
	o.batch_size = 1;
	o.clients = 6;
	s = hm_sim_new(&o);
	sim_run_and_check(s, 60, "pipeline depth 1");
	hm_sim_free(s);
}

/* Checkpoint interval 1 and the smallest window with L = 2K: the watermark
 * moves at every batch, so an off-by-one at the window edge stalls or
 * breaks. */
HM_TEST(window_edge)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	o.checkpoint_interval = 1;
	o.window = 2;
	o.pipeline_depth = 2;
	s = hm_sim_new(&o);
	sim_run_and_check(s, 60, "window of 2");
	hm_sim_free(s);
}

HM_TEST(retransmission_gets_cached_reply)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	o.clients = 1;
	o.ops_per_client = 5;
	/* Lose 30% of messages and duplicate half of the rest: lost replies
	 * make the client retransmit, which must be answered from the reply
	 * cache, not executed twice; lost protocol messages are re-sent. */
	o.loss_pct = 30;
	o.duplicate_pct = 50;
	/* This case is about the reply cache under a stable primary: a
	 * lossy network must not look like a faulty primary here. */
	o.view_change_timeout_ms = 10000;
	s = hm_sim_new(&o);
	sim_run_and_check(s, 60, "lossy, duplicating network");
	ASSERT_EQ(pbft_stats(hm_sim_node(s, 0)->core)->ops_executed, 5, "each op executed once");
	uint64_t resent = 0;
	for (uint32_t i = 0; i < o.n; i++)
		resent += pbft_stats(hm_sim_node(s, i)->core)->replies_resent;
	ASSERT_GE(resent, 1, "some reply came from the cache");
	hm_sim_free(s);
}

/* A forged request: a valid MAC from a known client, but the signature of
 * another key.  With signed requests the primary must refuse it and count
 * it.  (Without, the MAC is what authenticates: test_request_auth.) */
HM_TEST(forged_request_signature)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	struct hm_keypair other;
	struct hm_link_keys lk;
	uint8_t op[64], buf[512];
	size_t oplen, len;
	struct hm_node *primary;

	hm_sim_default_opts(&o);
	o.signed_requests = true;
	s = hm_sim_new(&o);
	primary = hm_sim_node(s, 0);
	hm_keypair_generate(&other);
	oplen = hm_kv_encode_put(op, sizeof(op), "forged", "x", 1);
	len = hm_msg_build(buf, sizeof(buf), HM_MSG_REQUEST, 100, 0, 1ull << 40, NULL, op,
			   (uint32_t)oplen, &other);
	hm_link_keys_derive(100, hm_sim_client_keys(s, 0), 0, hm_sim_config(s)->members[0].public_key,
			    &lk);
	hm_mac_stamp((struct hm_hdr *)buf, lk.tx);
	hm_sim_inject(s, 0, o.n + 0, buf, len);
	ASSERT_EQ(hm_node_drops(primary, HM_DROP_BAD_SIGNATURE), 1, "bad signature counted");
	ASSERT_EQ(pbft_stats(primary->core)->requests_received, 0, "not queued");

	/* The same with a bad MAC never reaches signature verification. */
	buf[HM_OFF_MAC] ^= 1;
	hm_sim_inject(s, 0, o.n + 0, buf, len);
	ASSERT_EQ(hm_node_drops(primary, HM_DROP_BAD_MAC), 1, "bad MAC counted");
	ASSERT_EQ(pbft_stats(primary->core)->bad_client_signatures, 1, "no second verification");
	hm_sim_free(s);
}

static unsigned env_seeds(unsigned dflt)
{
	const char *v = getenv("HM_SIM_SEEDS");

	return v ? (unsigned)strtoul(v, NULL, 10) : dflt;
}

static uint64_t rs_mix(uint64_t *r)
{
	*r ^= *r >> 12;
	*r ^= *r << 25;
	*r ^= *r >> 27;
	return *r * 2685821657736338717ull;
}

/* The faults of a random schedule.  Every restart is from the replica's
 * files (opts.persist, a fresh process state), as hypermeshd's. */
enum rs_fault {
	RS_NONE, RS_CRASH, RS_RESTART_ONE, RS_ROLLING, RS_ALL_AT_ONCE, RS_RESTART_THEN_PRIMARY_CRASH,
	RS_FAULTS
};
static const char *const rs_fault_names[] = {
	"no fault", "crash", "restart one from files", "rolling restart",
	"all restart at once", "restart a backup, then the primary crashes",
};

static void rs_restart(struct hm_sim *s, uint32_t r, bool *ok, char *blame, size_t len)
{
	/* the restart forgets the counters: look at them first */
	if (!blame[0])
		sim_nobody_blamed(s, hm_sim_config(s)->n_members, blame, len);
	if (hm_sim_restart(s, r) < 0)
		*ok = false;
}

/* One seed: true when every enforced check held. */
static bool rs_seed(unsigned seed, struct sim_gate *g_restart, struct sim_gate *g_live,
		    struct sim_gate *g_adm, struct sim_gate *g_blame)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint64_t r = seed * 0x2545f4914f6cdd1dull;
	uint64_t r2 = seed * 0x9e3779b97f4a7c15ull + 17;
	enum rs_fault fault;
	uint32_t victim, first;
	uint64_t at, gap, t_heal, bound;
	char why[256], lwhy[256], blame[256] = "";
	bool ok = true, restarted_ok = true, done, live;
	struct sim_gate *g;

	hm_sim_default_opts(&o);
	o.seed = seed;
	o.clients = 1 + r % 4;
	o.ops_per_client = 10 + (r >> 8) % 20;
	o.batch_size = 1 + (r >> 16) % 8;
	o.pipeline_depth = 1 + (r >> 20) % 4;
	o.checkpoint_interval = 2 + (r >> 24) % 4;
	/* L >= 2K as in the paper: with L = K a backup that lags by one
	 * interval needs state transfer, which comes with view changes. */
	o.window = o.checkpoint_interval * (2 + (r >> 28) % 2);
	if (o.pipeline_depth > o.window)
		o.pipeline_depth = o.window;
	o.max_delay_us = 100 + (r >> 32) % 2000;
	o.duplicate_pct = (r >> 40) % 20;
	o.persist = true;
	fault = (enum rs_fault)(rs_mix(&r2) % RS_FAULTS);
	if (rs_mix(&r2) % 3 == 0) {
		o.service = HM_SIM_KV_SKEW;
		o.skew_us = 1000000;
		o.max_clock_offset_us = 100000;
	}
	victim = rs_mix(&r2) % o.n;
	at = (rs_mix(&r2) % 20) + 1;
	gap = 50000 + rs_mix(&r2) % 700000;
	bound = sim_liveness_bound_us(&o);
	s = hm_sim_new(&o);
	sim_run_until_ops(s, at, 30 * SIM_SECOND);
	switch (fault) {
	case RS_NONE:
		break;
	case RS_CRASH: /* for good: one of f */
		hm_sim_crash(s, victim);
		break;
	case RS_RESTART_ONE:
		hm_sim_crash(s, victim);
		sim_run_for(s, gap);
		rs_restart(s, victim, &restarted_ok, blame, sizeof(blame));
		break;
	case RS_ROLLING: /* each replica in turn, as an upgrade does */
		first = victim;
		for (uint32_t k = 0; k < o.n; k++) {
			uint32_t i = (first + k) % o.n;

			hm_sim_crash(s, i);
			sim_run_for(s, gap);
			rs_restart(s, i, &restarted_ok, blame, sizeof(blame));
			sim_run_for(s, 10000 + rs_mix(&r2) % 600000);
		}
		break;
	case RS_ALL_AT_ONCE: /* a power loss */
		for (uint32_t i = 0; i < o.n; i++)
			hm_sim_crash(s, i);
		sim_run_for(s, gap);
		for (uint32_t i = 0; i < o.n; i++)
			rs_restart(s, i, &restarted_ok, blame, sizeof(blame));
		break;
	case RS_RESTART_THEN_PRIMARY_CRASH: {
		uint32_t primary = pbft_view(hm_sim_node(s, 0)->core) % o.n;
		uint32_t backup = victim == primary ? (victim + 1) % o.n : victim;

		hm_sim_crash(s, backup);
		sim_run_for(s, gap);
		rs_restart(s, backup, &restarted_ok, blame, sizeof(blame));
		sim_run_for(s, 10000 + rs_mix(&r2) % 300000);
		hm_sim_crash(s, pbft_view(hm_sim_node(s, backup)->core) % o.n);
		break;
	}
	default:
		break;
	}
	ok &= ASSERT_TRUE(restarted_ok, "restart from files");
	/* the last fault healed (or, for a crash, it stays within f) */
	t_heal = hm_sim_now(s);
	done = hm_sim_run(s, t_heal + bound);
	sim_settle_for_liveness(s, t_heal, bound);
	live = sim_live(s, o.n, done, lwhy, sizeof(lwhy));
	ok &= ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	ok &= ASSERT_TRUE(hm_sim_linearizable(s, why, sizeof(why)), why);
	ok &= ASSERT_TRUE(hm_sim_reads_ok(s, why, sizeof(why)), why);
	g = fault >= RS_RESTART_ONE ? g_restart : o.service == HM_SIM_KV_SKEW ? g_adm : g_live;
	if (!live && ok && g == g_live) {
		/* today's check, always enforced: every op within 60 s and the
		 * replicas agree at the end */
		char w2[256];

		ok &= ASSERT_TRUE(hm_sim_run(s, t_heal + 60 * SIM_SECOND), "random schedule");
		hm_sim_settle(s, hm_sim_now(s) + 2 * SIM_SECOND);
		ok &= ASSERT_TRUE(hm_sim_states_agree(s, w2, sizeof(w2)), w2);
	}
	ok &= sim_gated(g, seed, live, lwhy);
	if (!blame[0])
		sim_nobody_blamed(s, o.n, blame, sizeof(blame));
	ok &= sim_gated(g_blame, seed, !blame[0], blame);
	if (!ok) {
		printf("  failing seed: %u, %s, %s (replay: HM_I17_PENDING='%s' HM_SIM_SEED=%u "
		       "build/tests/test_sim random_schedules)\n", seed, rs_fault_names[fault],
		       o.service == HM_SIM_KV_SKEW ? "kv-skew" : "kv", sim_pending_list(), seed);
		hm_sim_dump(s, stdout);
	} else if (getenv("HM_SIM_SEED")) {
		printf("     seed %u: %s, %s: %s%s%s\n", seed, rs_fault_names[fault],
		       o.service == HM_SIM_KV_SKEW ? "kv-skew" : "kv",
		       live ? "live" : "NOT LIVE: ", live ? "" : lwhy,
		       blame[0] ? "; BLAMED" : "");
		if (!live || blame[0])
			hm_sim_dump(s, stdout);
	}
	hm_sim_free(s);
	return ok;
}

/* Randomized schedules: random delays, reordering, duplication, random
 * batching parameters, and one of: nothing, a crash (the primary in a
 * quarter of the runs), a restart of one replica from its files, a rolling
 * restart of every replica, all replicas restarting at once, a restart
 * followed by a primary crash; a third of the seeds run the kv-skew service
 * (an admission check).  Safety, linearizability and reads must hold for
 * every seed; liveness within sim_liveness_bound_us() after the last fault
 * heals and "no correct replica counted Byzantine" are checked under the
 * gates of sim_checks.h.  HM_SIM_SHARD=i/k splits the seeds. */
HM_TEST(random_schedules)
{
	unsigned seeds = env_seeds(100), only = getenv("HM_SIM_SEED") ? atoi(getenv("HM_SIM_SEED")) : 0;
	struct sim_shard sh = sim_shard();
	struct sim_gate g_restart = { "restart", "liveness after restarts from files" };
	struct sim_gate g_live = { "liveness", "liveness within the bound after the last fault" };
	struct sim_gate g_adm = { "admission", "liveness with an admission check" };
	struct sim_gate g_blame = { "blocking", "no correct replica counted Byzantine" };
	unsigned runs = 0;
	double t0 = sim_clock_s();

	for (unsigned seed = only ? only : 1; seed <= (only ? only : seeds); seed++) {
		if (!only && !sim_in_shard(sh, seed))
			continue;
		runs++;
		if (!rs_seed(seed, &g_restart, &g_live, &g_adm, &g_blame))
			return;
	}
	sim_rate("random_schedules", runs, t0, sh);
	if (only)
		return;
	sim_gate_report(&g_restart, runs, "build/tests/test_sim random_schedules");
	sim_gate_report(&g_live, runs, "build/tests/test_sim random_schedules");
	sim_gate_report(&g_adm, runs, "build/tests/test_sim random_schedules");
	sim_gate_report(&g_blame, runs, "build/tests/test_sim random_schedules");
}

/* A request that fits the datagram limit but not a PRE-PREPARE around it:
 * the primary must refuse it (counted), not propose a batch no backup can
 * accept, which would block every later slot. */
HM_TEST(oversize_request_refused)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	struct hm_link_keys lk;
	static uint8_t op[64800], buf[HM_MAX_DATAGRAM];
	size_t len;

	hm_sim_default_opts(&o);
	s = hm_sim_new(&o);
	len = hm_msg_build(buf, sizeof(buf), HM_MSG_REQUEST, 100, 0, 1ull << 40, NULL, op,
			   sizeof(op), hm_sim_client_keys(s, 0));
	ASSERT_LE(len, hm_sim_config(s)->max_message_size, "the request itself is admissible");
	hm_link_keys_derive(100, hm_sim_client_keys(s, 0), 0,
			    hm_sim_config(s)->members[0].public_key, &lk);
	hm_mac_stamp((struct hm_hdr *)buf, lk.tx);
	hm_sim_inject(s, 0, o.n + 0, buf, len);
	ASSERT_EQ(hm_node_drops(hm_sim_node(s, 0), HM_DROP_OVERSIZE), 1, "refused as oversize");
	sim_run_and_check(s, 30, "the cluster keeps working");
	hm_sim_free(s);
}

/* Send replica `from`'s correctly signed and MACed message to replica `to`,
 * as a faulty replica would. */
static void inject_from_replica(struct hm_sim *s, uint32_t from, uint32_t to, uint8_t type,
				uint16_t flags, uint64_t view, uint64_t seq, const uint8_t *digest)
{
	const struct hm_config *cfg = hm_sim_config(s);
	struct hm_link_keys lk;
	uint8_t buf[HM_HDR_LEN];
	size_t len;

	len = hm_msg_build_flags(buf, sizeof(buf), type, flags, from, view, seq, digest, NULL, 0,
				 hm_sim_replica_keys(s, from));
	hm_link_keys_derive(from, hm_sim_replica_keys(s, from), to, cfg->members[to].public_key,
			    &lk);
	hm_mac_stamp((struct hm_hdr *)buf, lk.tx);
	hm_sim_inject(s, to, from, buf, len);
}

/* A faulty replica claiming STATUS(UINT64_MAX) must cost nothing (the help
 * loop must not wrap around to sequence 0), and repeating a flagged vote
 * for a committed slot must get one answer per interval, not one each. */
HM_TEST(faulty_replica_cannot_amplify)
{
	static const uint8_t zero[HM_DIGEST_LEN];
	struct hm_sim_opts o;
	struct hm_sim *s;
	const struct pbft_stats *st;
	uint8_t digest[HM_DIGEST_LEN];
	uint64_t before;

	hm_sim_default_opts(&o);
	o.checkpoint_interval = 50;
	o.window = 100;
	s = hm_sim_new(&o);
	sim_run_and_check(s, 30, "a run to have committed slots");
	hm_sim_settle(s, hm_sim_now(s) + 1000000);
	st = pbft_stats(hm_sim_node(s, 0)->core);
	before = st->help_sent;
	inject_from_replica(s, 1, 0, HM_MSG_STATUS, 0, 0, UINT64_MAX, zero);
	ASSERT_EQ(st->help_sent, before, "STATUS(UINT64_MAX) answered with nothing");

	uint64_t seq = pbft_last_executed(hm_sim_node(s, 0)->core);
	if (!ASSERT_TRUE(pbft_committed_digest(hm_sim_node(s, 0)->core, seq, digest), "digest"))
		goto out;
	before = st->help_sent;
	for (int i = 0; i < 100; i++)
		inject_from_replica(s, 1, 0, HM_MSG_COMMIT, HM_FLAG_RETRANSMIT, 0, seq, digest);
	ASSERT_EQ(st->help_sent, before + 1, "100 flagged repeats, one answer");
out:
	hm_sim_free(s);
}

/* ---- view changes ------------------------------------------------------ */

/* Run to completion with a faulty or crashed primary: every op completes,
 * safety, agreement and reads hold, every correct replica left view 0, and
 * the recovery time (fault to first batch executed in a new view) is
 * printed. */
static bool vc_run(struct hm_sim *s, const struct hm_sim_opts *o, uint32_t faulty_mask,
		   const char *what)
{
	bool ok = sim_run_and_check(s, 60, what);

	ok &= ASSERT_EQ(hm_sim_completed(s), o->clients * o->ops_per_client, "completed ops");
	for (uint32_t i = 0; i < o->n; i++) {
		const struct pbft *core = hm_sim_node(s, i)->core;

		if (faulty_mask >> i & 1)
			continue;
		ok &= ASSERT_GE(pbft_view(core), 1, "a new view installed");
		ok &= ASSERT_GE(pbft_stats(core)->view_changes_installed, 1, "installed counted");
	}
	printf("  %s: n=%u, fault to first commit in the new view: %.1f ms (virtual)\n", what,
	       o->n, hm_sim_recovery_us(s) / 1000.0);
	ok &= ASSERT_GE(hm_sim_recovery_us(s), 1, "recovered in a new view");
	if (!ok)
		hm_sim_dump(s, stdout);
	return ok;
}

static void primary_crash(uint32_t n, uint32_t f, uint64_t after_ops)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	char what[64];

	hm_sim_default_opts(&o);
	o.n = n;
	o.f = f;
	o.ops_per_client = 30;
	s = hm_sim_new(&o);
	if (after_ops)
		hm_sim_crash_after(s, 0, after_ops);
	else
		hm_sim_crash(s, 0);
	snprintf(what, sizeof(what), "primary crashed %s", after_ops ? "mid-run" : "at start");
	vc_run(s, &o, 1, what);
	hm_sim_free(s);
}

HM_TEST(vc_primary_crashed_from_start_n4) { primary_crash(4, 1, 0); }
HM_TEST(vc_primary_crashed_from_start_n7) { primary_crash(7, 2, 0); }
HM_TEST(vc_primary_crashed_mid_run_n4) { primary_crash(4, 1, 37); }
HM_TEST(vc_primary_crashed_mid_run_n7) { primary_crash(7, 2, 41); }

/* Datagrams from the replica in ctx are lost: it receives, sends nothing. */
static bool silent_filter(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			  const uint8_t *buf, size_t len)
{
	(void)s, (void)to, (void)buf, (void)len;
	return from != *(uint32_t *)ctx;
}

HM_TEST(vc_silent_primary)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint32_t silent = 0;

	hm_sim_default_opts(&o);
	o.ops_per_client = 20;
	s = hm_sim_new(&o);
	hm_sim_set_filter(s, silent_filter, &silent);
	hm_sim_mark_faulty(s, 0);
	hm_sim_mark_fault(s);
	vc_run(s, &o, 1, "silent primary");
	hm_sim_free(s);
}

HM_TEST(vc_equivocating_primary)
{
	for (uint32_t n = 4; n <= 7; n += 3) {
		struct hm_sim_opts o;
		struct hm_sim *s;

		hm_sim_default_opts(&o);
		o.n = n;
		o.f = (n - 1) / 3;
		o.ops_per_client = 20;
		s = hm_sim_new(&o);
		hm_sim_set_equivocator(s, 0);
		hm_sim_mark_fault(s);
		vc_run(s, &o, 1, "equivocating primary");
		ASSERT_GE(pbft_stats(hm_sim_node(s, 1)->core)->view_changes_started, 1, "suspected");
		hm_sim_free(s);
	}
}

struct stall_ctx {
	uint32_t primary, client_index; /* client's sim index: n + client */
};

/* The primary never sees one client's requests (it "stalls" them); every
 * other client is served normally. */
static bool stall_filter(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			 const uint8_t *buf, size_t len)
{
	const struct stall_ctx *st = ctx;

	(void)s, (void)buf, (void)len;
	return !(from == st->client_index && to == st->primary);
}

/* With signed requests (each replica's trust in a request is its own): a
 * client's requests that never reach the primary time out at the backups.
 * Without signatures the backups' vouches carry them to the primary and
 * nothing times out (test_request_auth client_skips_primary). */
HM_TEST(vc_primary_stalls_one_client)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	struct stall_ctx st;

	hm_sim_default_opts(&o);
	o.signed_requests = true;
	o.ops_per_client = 20;
	st = (struct stall_ctx){ .primary = 0, .client_index = o.n + 2 };
	s = hm_sim_new(&o);
	hm_sim_set_filter(s, stall_filter, &st);
	hm_sim_mark_faulty(s, 0);
	hm_sim_mark_fault(s);
	vc_run(s, &o, 1, "primary stalls one client");
	hm_sim_free(s);
}

/* The primary of view 1 crashes as soon as the first VIEW-CHANGE is on
 * the wire: the view change to 1 times out and view 2 is installed. */
static bool crash_next_primary(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			       const uint8_t *buf, size_t len)
{
	bool *done = ctx;

	(void)from, (void)to;
	if (!*done && len > HM_HDR_LEN && buf[5] == HM_MSG_VIEW_CHANGE) {
		*done = true;
		hm_sim_crash(s, 1);
	}
	return true;
}

HM_TEST(vc_two_in_a_row_n7)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	bool done = false;

	hm_sim_default_opts(&o);
	o.n = 7;
	o.f = 2;
	o.ops_per_client = 30;
	s = hm_sim_new(&o);
	hm_sim_set_filter(s, crash_next_primary, &done);
	hm_sim_crash_after(s, 0, 40);
	vc_run(s, &o, 3, "primary and next primary crashed");
	for (uint32_t i = 2; i < o.n; i++)
		ASSERT_GE(pbft_view(hm_sim_node(s, i)->core), 2, "view 2 reached");
	hm_sim_free(s);
}

/* Sign (with `signer`'s key, normally from's own) and MAC a message from
 * replica `from` to replica `to`, and deliver it now. */
static void inject_signed(struct hm_sim *s, uint32_t from, uint32_t to, uint8_t type,
			  uint64_t view, uint64_t seq, const uint8_t *payload, uint32_t plen,
			  const struct hm_keypair *signer)
{
	const struct hm_config *cfg = hm_sim_config(s);
	struct hm_link_keys lk;
	size_t cap = HM_HDR_LEN + plen, len;
	uint8_t *buf = malloc(cap);

	len = hm_msg_build(buf, cap, type, from, view, seq, NULL, payload, plen, signer);
	hm_link_keys_derive(from, hm_sim_replica_keys(s, from), to, cfg->members[to].public_key,
			    &lk);
	hm_mac_stamp((struct hm_hdr *)buf, lk.tx);
	hm_sim_inject(s, to, from, buf, len);
	free(buf);
}

/* The signature replica `signer` would put on a header with these fields. */
static void header_sig(struct hm_sim *s, uint32_t signer, uint8_t type, uint32_t plen,
		       uint64_t view, uint64_t seq, const uint8_t *digest, uint8_t sig[HM_SIG_LEN])
{
	uint8_t buf[HM_HDR_LEN];
	struct hm_hdr *h = (struct hm_hdr *)buf;

	hm_msg_build(buf, sizeof(buf), type, signer, view, seq, digest, NULL, 0,
		     hm_sim_replica_keys(s, signer));
	/* a PRE-PREPARE's payload_len is signed too: re-sign with it */
	hm_put_be32((uint8_t *)&h->payload_len, plen);
	hm_sign_header(h, hm_sim_replica_keys(s, signer));
	memcpy(sig, h->sig, HM_SIG_LEN);
}

/* A one-datagram VIEW-CHANGE head (n = 0, no checkpoint proof) carrying one
 * prepared certificate for (view 0, seq 1, digest) with `voters`' PREPARE
 * signatures; `spoil` selects a defect. */
enum spoil { SPOIL_NONE, SPOIL_PREPARE_SIG, SPOIL_PP_SIG, SPOIL_FEW_PREPARES, SPOIL_NO_PROOF };

static size_t forged_vc(struct hm_sim *s, enum spoil spoil, uint8_t *buf, size_t cap)
{
	uint8_t digest[HM_DIGEST_LEN], pp_sig[HM_SIG_LEN], sigs[2 * HM_SIG_LEN];
	struct hm_vc_entry e = { .seq = 1, .view = 0, .pp_len = 4 };
	size_t len = 0;

	memset(digest, 0x5a, sizeof(digest));
	header_sig(s, 0, HM_MSG_PRE_PREPARE, 4, 0, 1, digest, pp_sig);
	header_sig(s, 2, HM_MSG_PREPARE, 0, 0, 1, digest, sigs);
	header_sig(s, 3, HM_MSG_PREPARE, 0, 0, 1, digest, sigs + HM_SIG_LEN);
	if (spoil == SPOIL_PREPARE_SIG)
		sigs[HM_SIG_LEN + 5] ^= 1;
	if (spoil == SPOIL_PP_SIG)
		pp_sig[3] ^= 1;
	e.digest = digest;
	e.pp_sig = pp_sig;
	e.voters = spoil == SPOIL_FEW_PREPARES ? 1u << 2 : (1u << 2 | 1u << 3);
	e.sigs = sigs;
	buf[len++] = HM_VC_HEAD;
	buf[len++] = 1;                 /* nparts */
	memset(buf + len, 0, HM_DIGEST_LEN); /* checkpoint digest */
	len += HM_DIGEST_LEN;
	buf[len++] = 0;                 /* no checkpoint signatures */
	buf[len++] = 0;
	buf[len++] = 1;                 /* one entry */
	len += hm_vc_entry_put(buf + len, cap - len, &e);
	return len;
}

/* Replica 0 is silent (alive, so that its forgeries can be injected), and
 * replica 1's NEW-VIEW is withheld while ctx says so. */
static bool drop_new_view_from_1(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
				 const uint8_t *buf, size_t len)
{
	(void)s, (void)to;
	return from != 0 &&
	       !(*(bool *)ctx && from == 1 && len > HM_HDR_LEN && buf[5] == HM_MSG_NEW_VIEW &&
		 buf[HM_HDR_LEN] == HM_NV_NEW);
}

/* Forged VIEW-CHANGEs (from the silent primary 0, a faulty replica) and
 * NEW-VIEWs are refused and counted and never installed; the genuine
 * NEW-VIEW, withheld until then, is installed afterwards. */
HM_TEST(vc_forged_messages_refused)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	struct hm_node *r2;
	const struct pbft_stats *st;
	static uint8_t buf[4096], nv[1024];
	bool withhold = true;
	size_t len, nvlen;
	uint8_t d[HM_DIGEST_LEN];
	uint64_t refused;
	struct hm_keypair other;

	hm_sim_default_opts(&o);
	o.ops_per_client = 10;
	s = hm_sim_new(&o);
	r2 = hm_sim_node(s, 2);
	st = pbft_stats(r2->core);
	hm_sim_set_filter(s, drop_new_view_from_1, &withhold);
	hm_sim_mark_faulty(s, 0);
	hm_sim_mark_fault(s);
	/* Past the 500 ms timeout, before the 2f+1 timer of the view change. */
	ASSERT_FALSE(hm_sim_run(s, 800000), "nothing completes without a NEW-VIEW");
	if (!ASSERT_TRUE(pbft_in_view_change(r2->core), "replica 2 changes view") ||
	    !ASSERT_TRUE(pbft_vc_digest(r2->core, 3, 1, d), "it holds replica 3's VIEW-CHANGE"))
		goto out;

	/* VIEW-CHANGEs, each for a new view number so each is judged anew. */
	hm_keypair_generate(&other);
	len = forged_vc(s, SPOIL_NONE, buf, sizeof(buf));
	inject_signed(s, 0, 2, HM_MSG_VIEW_CHANGE, 2, 0, buf, (uint32_t)len, &other);
	ASSERT_EQ(st->view_changes_refused, 1, "bad head signature refused");
	ASSERT_TRUE(st->proven_faulty & 1, "replica 0 proven faulty");
	refused = 1;
	for (enum spoil sp = SPOIL_PREPARE_SIG; sp <= SPOIL_FEW_PREPARES; sp++) {
		len = forged_vc(s, sp, buf, sizeof(buf));
		inject_signed(s, 0, 2, HM_MSG_VIEW_CHANGE, 2 + sp, 0, buf, (uint32_t)len,
			      hm_sim_replica_keys(s, 0));
		ASSERT_EQ(st->view_changes_refused, ++refused, "spoiled certificate refused");
		ASSERT_FALSE(pbft_vc_digest(r2->core, 0, 2 + sp, d), "not held as valid");
	}
	/* n = 10 claimed without a checkpoint proof */
	len = forged_vc(s, SPOIL_NONE, buf, sizeof(buf));
	inject_signed(s, 0, 2, HM_MSG_VIEW_CHANGE, 6, 10, buf, (uint32_t)len,
		      hm_sim_replica_keys(s, 0));
	ASSERT_EQ(st->view_changes_refused, ++refused, "no checkpoint proof refused");
	/* The control: the same certificate, all signatures good, is valid. */
	len = forged_vc(s, SPOIL_NONE, buf, sizeof(buf));
	inject_signed(s, 0, 2, HM_MSG_VIEW_CHANGE, 7, 0, buf, (uint32_t)len,
		      hm_sim_replica_keys(s, 0));
	ASSERT_EQ(st->view_changes_refused, refused, "a sound VIEW-CHANGE is not refused");
	ASSERT_TRUE(pbft_vc_digest(r2->core, 0, 7, d), "and is held as valid");
	ASSERT_EQ(pbft_view(r2->core), 0, "no view installed by VIEW-CHANGEs");

	/* NEW-VIEWs for view 1: the correct payload (from replica 2's own
	 * VIEW-CHANGEs) sent by a non-primary, then with a wrong O, then with a
	 * wrong max-s, all refused; then the correct one from the primary. */
	nvlen = pbft_new_view_payload(r2->core, 1, nv, sizeof(nv));
	if (!ASSERT_GE(nvlen, 1, "a NEW-VIEW can be computed"))
		goto out;
	inject_signed(s, 3, 2, HM_MSG_NEW_VIEW, 1, 0, nv, (uint32_t)nvlen,
		      hm_sim_replica_keys(s, 3));
	ASSERT_EQ(st->new_views_refused, 1, "NEW-VIEW from a non-primary refused");
	nv[nvlen - 1] ^= 1;
	inject_signed(s, 1, 2, HM_MSG_NEW_VIEW, 1, 0, nv, (uint32_t)nvlen,
		      hm_sim_replica_keys(s, 1));
	nv[nvlen - 1] ^= 1;
	ASSERT_EQ(st->new_views_refused, 2, "wrong O refused");
	ASSERT_TRUE(st->proven_faulty >> 1 & 1, "a signed wrong O proves the primary faulty");
	nv[nvlen - HM_DIGEST_LEN - 1] ^= 1; /* low byte of max-s */
	inject_signed(s, 1, 2, HM_MSG_NEW_VIEW, 1, 0, nv, (uint32_t)nvlen,
		      hm_sim_replica_keys(s, 1));
	nv[nvlen - HM_DIGEST_LEN - 1] ^= 1;
	ASSERT_EQ(st->new_views_refused, 3, "wrong max-s refused");
	ASSERT_TRUE(pbft_in_view_change(r2->core), "still changing view");
	ASSERT_EQ(pbft_stats(r2->core)->view_changes_installed, 0, "nothing installed");
	inject_signed(s, 1, 2, HM_MSG_NEW_VIEW, 1, 0, nv, (uint32_t)nvlen,
		      hm_sim_replica_keys(s, 1));
	ASSERT_EQ(pbft_view(r2->core), 1, "the correct NEW-VIEW is installed");
	ASSERT_FALSE(pbft_in_view_change(r2->core), "view change over");

	withhold = false;
	vc_run(s, &o, 1, "forged view-change messages");
out:
	hm_sim_free(s);
}

/* The naive-shortcut trap: seq S is prepared at replicas 1 and 2 only
 * (replica 3 never gets its PRE-PREPARE, and no COMMIT gets through), then
 * the primary crashes.  The new view must carry S with the same digest; a
 * new primary that re-proposed its queue or filled S with the null request
 * would execute something else there. */
struct trap {
	int phase;            /* 0 before S, 1 S in flight, 2 after the crash */
	uint64_t seq;
	uint8_t digest[HM_DIGEST_LEN];
	uint16_t prepared;    /* replicas whose PREPARE for S was sent */
};

static bool trap_filter(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			const uint8_t *buf, size_t len)
{
	struct trap *t = ctx;
	const struct hm_hdr *h = (const struct hm_hdr *)buf;
	uint64_t seq;

	if (len < HM_HDR_LEN || from >= 4)
		return true;
	seq = hm_get_be64((const uint8_t *)&h->seq);
	if (t->phase == 0 && buf[5] == HM_MSG_PRE_PREPARE && from == 0 && seq >= 12 &&
	    len > HM_HDR_LEN + 4) {
		t->phase = 1;
		t->seq = seq;
		memcpy(t->digest, h->digest, HM_DIGEST_LEN);
	}
	if (t->phase == 0)
		return true;
	if (buf[5] == HM_MSG_PRE_PREPARE && from == 0 && seq == t->seq && to == 3)
		return false;
	if (t->phase == 1 && buf[5] == HM_MSG_PREPARE && seq == t->seq) {
		t->prepared |= (uint16_t)(1u << from);
		if ((t->prepared & 6) == 6) {
			t->phase = 2;
			hm_sim_crash(s, 0);
		}
	}
	/* No COMMIT of view 0 gets through from now on. */
	return !(buf[5] == HM_MSG_COMMIT && hm_get_be64((const uint8_t *)&h->view) == 0);
}

HM_TEST(vc_prepared_value_survives)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	struct trap t = { 0 };
	uint8_t d[HM_DIGEST_LEN];

	hm_sim_default_opts(&o);
	o.ops_per_client = 30;
	s = hm_sim_new(&o);
	hm_sim_set_filter(s, trap_filter, &t);
	vc_run(s, &o, 1, "prepared at two replicas, then the primary crashed");
	if (!ASSERT_EQ(t.phase, 2, "the trap was sprung"))
		goto out;
	for (uint32_t i = 1; i < o.n; i++) {
		if (!ASSERT_TRUE(hm_sim_executed_digest(s, i, t.seq, d), "S executed"))
			continue;
		ASSERT_TRUE(memcmp(d, t.digest, HM_DIGEST_LEN) == 0,
			    "S executed with the digest prepared in view 0");
	}
out:
	hm_sim_free(s);
}

/* A backup that took a slot from f+1 committed claims (never having held
 * its PRE-PREPARE) must not let a later PRE-PREPARE of its view for that
 * slot replace the committed batch: a stale primary's retransmission would
 * otherwise swap what the backup holds as committed, and it would serve
 * that batch as committed to peers that fetch it.  Replica 3 never gets
 * the PRE-PREPARE for seq 1, catches up by claims, and is then sent a
 * second, signed view-0 PRE-PREPARE for seq 1 with the null batch. */
static bool drop_first_pre_prepare_to_3(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
					const uint8_t *buf, size_t len)
{
	const struct hm_hdr *h = (const struct hm_hdr *)buf;

	(void)ctx, (void)s, (void)from;
	return !(to == 3 && len >= HM_HDR_LEN && buf[5] == HM_MSG_PRE_PREPARE &&
		 hm_get_be64((const uint8_t *)&h->seq) == 1);
}

HM_TEST(claimed_slot_ignores_late_pre_prepare)
{
	static const uint8_t null_batch[4];
	uint8_t before[HM_DIGEST_LEN], after[HM_DIGEST_LEN];
	const struct pbft_stats *st;
	struct hm_sim_opts o;
	struct hm_node *r3;
	struct hm_sim *s;

	hm_sim_default_opts(&o);
	o.clients = 1;
	o.ops_per_client = 3; /* seq 1 stays above the low watermark */
	s = hm_sim_new(&o);
	r3 = hm_sim_node(s, 3);
	st = pbft_stats(r3->core);
	hm_sim_set_filter(s, drop_first_pre_prepare_to_3, NULL);
	ASSERT_TRUE(hm_sim_run(s, 30 * SECOND), "the clients finish");
	for (uint64_t t = hm_sim_now(s); pbft_last_executed(r3->core) < 1 && t < 60 * SECOND;
	     t += SECOND)
		hm_sim_settle(s, t);
	if (!ASSERT_TRUE(pbft_committed_digest(r3->core, 1, before), "replica 3 holds seq 1 committed") ||
	    !ASSERT_GE(st->batches_fetched, 1, "and took it from claims") ||
	    !ASSERT_EQ(pbft_low_watermark(r3->core), 0, "seq 1 is in its window"))
		goto out;
	inject_signed(s, 0, 3, HM_MSG_PRE_PREPARE, 0, 1, null_batch, sizeof(null_batch),
		      hm_sim_replica_keys(s, 0));
	ASSERT_TRUE(pbft_committed_digest(r3->core, 1, after), "seq 1 still committed");
	ASSERT_TRUE(memcmp(before, after, HM_DIGEST_LEN) == 0, "with the batch the group committed");
	ASSERT_EQ(st->equivocations, 0, "a slot it holds committed is no evidence against the primary");
out:
	hm_sim_free(s);
}

/* n = 16, f = 5, a window of 200 and ~90 prepared slots when the primary
 * crashes: a VIEW-CHANGE is ~70 KB of certificates and must travel in
 * several datagrams under max_message_size. */
static bool count_parts(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			const uint8_t *buf, size_t len)
{
	uint32_t *max_index = ctx;

	(void)s, (void)from, (void)to;
	if (len > HM_HDR_LEN + 1 && buf[5] == HM_MSG_VIEW_CHANGE && buf[HM_HDR_LEN] == HM_VC_PART &&
	    buf[HM_HDR_LEN + 1] > *max_index)
		*max_index = buf[HM_HDR_LEN + 1];
	if (len > hm_sim_config(s)->max_message_size)
		abort();
	return true;
}

HM_TEST(vc_n16_certificates_in_parts)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint32_t max_index = 0;

	hm_sim_default_opts(&o);
	o.n = 16;
	o.f = 5;
	o.clients = 4;
	o.ops_per_client = 30;
	o.batch_size = 1;
	o.window = 200;
	o.checkpoint_interval = 100;
	o.pipeline_depth = 8;
	s = hm_sim_new(&o);
	hm_sim_set_filter(s, count_parts, &max_index);
	hm_sim_crash_after(s, 0, 90);
	vc_run(s, &o, 1, "n=16, window 200");
	ASSERT_GE(max_index, 2, "VIEW-CHANGEs split in several parts");
	hm_sim_free(s);
}

/* Replica 3's PREPAREs carry bad signatures under good MACs: counted as
 * votes in the normal case, they fail when a VIEW-CHANGE certificate is
 * built.  Replica 3 is then proven faulty, the certificate is completed
 * from other PREPAREs still in the vote counter, and the view change
 * succeeds. */
HM_TEST(vc_bad_vote_signature_caught)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint64_t bad = 0, started = 0, waited = 0;
	uint16_t culprits = 0;

	hm_sim_default_opts(&o);
	o.ops_per_client = 30;
	o.checkpoint_interval = 50;
	o.window = 100;
	s = hm_sim_new(&o);
	hm_sim_set_bad_vote_signer(s, 3);
	hm_sim_crash_after(s, 0, 40);
	vc_run(s, &o, 1, "a voter with bad signatures");
	for (uint32_t i = 1; i < o.n; i++) {
		const struct pbft_stats *st = pbft_stats(hm_sim_node(s, i)->core);

		bad += st->bad_vote_signatures;
		culprits |= st->proven_faulty;
		started += st->view_changes_started;
		waited += st->certs_waiting;
		ASSERT_EQ(st->view_changes_refused, 0, "no VIEW-CHANGE refused");
		ASSERT_EQ(st->certs_incomplete, 0, "every certificate completed");
	}
	ASSERT_GE(bad, 1, "bad PREPARE signatures counted");
	ASSERT_EQ(culprits, 1u << 3, "replica 3, and only it, proven faulty");
	ASSERT_GE(started, 3, "the others' certificates held up");
	/* A quorum that counted 3's bad vote was held back until a good one
	 * came (no COMMIT without a checked certificate). */
	ASSERT_GE(waited, 1, "quorums with a bad vote waited for a good one");
	hm_sim_free(s);
}

/* Loss and view changes together: random loss (up to 7%), duplication and
 * delays, the primary or a backup crashing at a random point.  Safety and
 * reads must hold for every seed.  Agreement is not asserted: under loss a
 * replica can fall more than a checkpoint interval behind, which needs state
 * transfer (not part of this core yet); the count of such seeds is printed. */
HM_TEST(vc_lossy_schedules_safe)
{
	unsigned seeds = env_seeds(100) / 2, lagging = 0, unfinished = 0;

	for (unsigned seed = 1; seed <= seeds; seed++) {
		struct hm_sim_opts o;
		struct hm_sim *s;
		uint32_t crashed;
		uint64_t crash_at;
		uint64_t r = seed * 0x9e3779b97f4a7c15ull;
		char why[256];
		bool done;

		hm_sim_default_opts(&o);
		o.seed = seed;
		o.n = (r >> 3) % 2 ? 7 : 4;
		o.f = (o.n - 1) / 3;
		o.clients = 1 + r % 4;
		o.ops_per_client = 10 + (r >> 8) % 20;
		o.batch_size = 1 + (r >> 16) % 8;
		o.pipeline_depth = 1 + (r >> 20) % 4;
		o.checkpoint_interval = 10 + (r >> 24) % 10;
		o.window = o.checkpoint_interval * (2 + (r >> 28) % 2);
		o.max_delay_us = 100 + (r >> 32) % 2000;
		o.duplicate_pct = (r >> 40) % 20;
		o.loss_pct = (r >> 44) % 8;
		/* Every other seed persists, and the crashed replica restarts
		 * from its files a little later and must catch up. */
		o.persist = seed % 2 == 0;
		s = hm_sim_new(&o);
		crashed = (r >> 50) % 2 ? 0 : 1;
		crash_at = 1 + (r >> 54) % 30;
		hm_sim_crash_after(s, crashed, crash_at);
		if (o.persist) {
			run_until_ops(s, crash_at + 5 + (r >> 58) % 20);
			if (!ASSERT_OK(hm_sim_restart(s, crashed), "restart")) {
				hm_sim_free(s);
				return;
			}
		}
		done = hm_sim_run(s, 60 * SECOND);
		hm_sim_settle(s, hm_sim_now(s) + 2 * SECOND);
		if (!ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why) ||
		    !ASSERT_TRUE(hm_sim_reads_ok(s, why, sizeof(why)), why)) {
			printf("  failing seed: %u\n", seed);
			hm_sim_dump(s, stdout);
			hm_sim_free(s);
			return;
		}
		unfinished += !done;
		lagging += done && !hm_sim_states_agree(s, why, sizeof(why));
		hm_sim_free(s);
	}
	printf("     %u lossy seeds (half with a restart from disk): safe; %u with a replica "
	       "left behind, %u unfinished\n", seeds, lagging, unfinished);
	ASSERT_EQ(lagging + unfinished, 0, "every lossy seed finishes with the replicas agreeing");
}

/* ---- state transfer, persistence and recovery ----------------------------- */

/* Run until at least `ops` operations completed (or the clients are done). */
static void run_until_ops(struct hm_sim *s, uint64_t ops)
{
	uint64_t stop = hm_sim_now(s) + 60 * SECOND, limit = hm_sim_now(s);

	/* The clock only moves with events: step the limit, not the clock. */
	while (hm_sim_completed(s) < ops && limit < stop)
		if (hm_sim_run(s, limit += 10000))
			break;
}

static const struct pbft_stats *stats_of(struct hm_sim *s, uint32_t r)
{
	return pbft_stats(hm_sim_node(s, r)->core);
}

/* ---- admission checks (issue 17 item 2) ----------------------------------- */

/* Safety, agreement and every op done (not reads: with admission checks a
 * client re-sends a too-old op with a new time, so it may execute twice). */
static bool admission_run(struct hm_sim *s, const struct hm_sim_opts *o, const char *what)
{
	char why[256];
	bool ok = true;

	ok &= ASSERT_TRUE(hm_sim_run(s, 60 * SECOND), what);
	hm_sim_settle(s, hm_sim_now(s) + 2 * SECOND);
	ok &= ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	ok &= ASSERT_TRUE(hm_sim_states_agree(s, why, sizeof(why)), why);
	ok &= ASSERT_EQ(hm_sim_completed(s), o->clients * o->ops_per_client, "completed ops");
	if (!ok)
		hm_sim_dump(s, stdout);
	return ok;
}

/* The trap of vc_prepared_value_survives with a time-skew admission check
 * of 300 ms and a view-change timeout of 500 ms: by the time the new view
 * re-proposes S, S's agreed time is past the skew bound everywhere.  The
 * new view must carry S anyway (the protocol mandates it; the check is
 * local policy for fresh proposals), or no view ever executes S. */
HM_TEST(admission_check_skips_new_view_reproposals)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	struct trap t = { 0 };
	uint8_t d[HM_DIGEST_LEN];

	hm_sim_default_opts(&o);
	o.ops_per_client = 30;
	o.service = HM_SIM_KV_SKEW;
	o.skew_us = 300000;
	o.skew_resend_us = 4 * 300000;
	s = hm_sim_new(&o);
	hm_sim_set_filter(s, trap_filter, &t);
	admission_run(s, &o, "every op completes after the view change");
	if (!ASSERT_EQ(t.phase, 2, "the trap was sprung"))
		goto out;
	for (uint32_t i = 1; i < o.n; i++) {
		ASSERT_GE(pbft_view(hm_sim_node(s, i)->core), 1, "a new view");
		if (!ASSERT_TRUE(hm_sim_executed_digest(s, i, t.seq, d), "S executed"))
			continue;
		ASSERT_TRUE(memcmp(d, t.digest, HM_DIGEST_LEN) == 0,
			    "S executed with the digest prepared in view 0");
	}
out:
	hm_sim_free(s);
}

/* The primary crashes with requests pending; by the time replica 1 installs
 * view 1 (a view-change timeout of 500 ms later) their agreed times are past
 * the 300 ms skew bound.  The new primary must check the requests it
 * re-queues as it checks fresh ones: it proposes none of them (its backups
 * would refuse them).  The clients then ask again with a new time. */
HM_TEST(admission_check_on_requeued_requests)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint64_t limit;

	hm_sim_default_opts(&o);
	o.ops_per_client = 30;
	o.service = HM_SIM_KV_SKEW;
	o.skew_us = 300000;
	o.skew_resend_us = 4 * 300000;
	s = hm_sim_new(&o);
	run_until_ops(s, 20);
	hm_sim_crash(s, 0);
	limit = hm_sim_now(s);
	while ((pbft_view(hm_sim_node(s, 1)->core) == 0 || pbft_in_view_change(hm_sim_node(s, 1)->core)) &&
	       limit < hm_sim_now(s) + 10 * SECOND)
		hm_sim_run(s, limit += 1000);
	ASSERT_EQ(pbft_view(hm_sim_node(s, 1)->core), 1, "replica 1 installed view 1");
	/* Well before any client asks again (4 x 300 ms after its request). */
	hm_sim_run(s, hm_sim_now(s) + 50000);
	ASSERT_GE(stats_of(s, 1)->service_refused, 1, "replica 1 refused the re-queued requests");
	ASSERT_EQ(stats_of(s, 1)->batches_proposed, 0, "and proposed none of them");
	admission_run(s, &o, "every op completes after the clients ask again");
	hm_sim_free(s);
}

/* Small batches, so that 200 ops are far more batches than one window. */
static void lag_opts(struct hm_sim_opts *o)
{
	hm_sim_default_opts(o);
	o->batch_size = 1;
	o->pipeline_depth = 2;
	o->ops_per_client = 60;
}

/* Replica 3 is cut off from the start while the others execute several
 * windows; once back it cannot get those slots from anyone's log (they
 * were collected), so it fetches the stable checkpoint's state. */
HM_TEST(st_lag_beyond_window)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	lag_opts(&o);
	s = hm_sim_new(&o);
	hm_sim_crash(s, 3);
	run_until_ops(s, 120);
	ASSERT_GE(pbft_low_watermark(hm_sim_node(s, 0)->core), 3 * o.window,
		  "the others moved several windows on");
	hm_sim_revive(s, 3);
	sim_run_and_check(s, 60, "the lagging replica catches up");
	ASSERT_GE(stats_of(s, 3)->state_transfers_done, 1, "state transfer completed");
	ASSERT_EQ(pbft_last_executed(hm_sim_node(s, 3)->core),
		  pbft_last_executed(hm_sim_node(s, 0)->core), "caught up to the others");
	ASSERT_GE(stats_of(s, 0)->state_chunks_served + stats_of(s, 1)->state_chunks_served +
			  stats_of(s, 2)->state_chunks_served, 1, "peers served chunks");
	hm_sim_free(s);
}

/* Loses every STATE_CHUNK to replica 3 while *ctx is set: a slow transfer
 * during which the group goes on. */
static bool hold_chunks_to_3(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			     const uint8_t *buf, size_t len)
{
	(void)s, (void)from;
	return !(*(bool *)ctx && to == 3 && len > 5 && buf[5] == HM_MSG_STATE_CHUNK);
}

/* Issue 17 item 6: a replica restored by state transfer fetches the
 * committed suffix beyond the transferred checkpoint at once.  Replica 3
 * starts a transfer; while its chunks are held the group executes dozens of
 * seqs more, then the clients stop.  Once the chunks flow, with no new
 * client op to name a higher seq, replica 3 reaches the others within 2
 * retransmit intervals of the install. */
HM_TEST(st_fetches_suffix_without_new_traffic)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint64_t limit, retransmit_us, target, installed_at;
	bool hold = false;

	lag_opts(&o);
	o.checkpoint_interval = 50;
	o.window = 100;
	o.ops_per_client = 100;
	s = hm_sim_new(&o);
	retransmit_us = (uint64_t)o.client_timeout_ms / 2 * 1000; /* node.c: timeout_ms / 2 */
	hm_sim_set_filter(s, hold_chunks_to_3, &hold);
	hm_sim_crash(s, 3);
	run_until_ops(s, 240);
	hm_sim_revive(s, 3);
	hold = true;
	limit = hm_sim_now(s);
	while (stats_of(s, 3)->state_transfers_started == 0 && limit < hm_sim_now(s) + 60 * SECOND)
		if (hm_sim_run(s, limit += 1000))
			break;
	target = pbft_low_watermark(hm_sim_node(s, 0)->core) + 30;
	while (pbft_last_executed(hm_sim_node(s, 0)->core) < target && limit < hm_sim_now(s) + 60 * SECOND)
		if (hm_sim_run(s, limit += 1000))
			break;
	/* From here on no client starts an op: what is in flight finishes. */
	hm_sim_settle(s, hm_sim_now(s) + 2 * retransmit_us);
	ASSERT_EQ(stats_of(s, 3)->state_transfers_done, 0, "no transfer while the chunks are held");
	hold = false;
	limit = hm_sim_now(s);
	while (stats_of(s, 3)->state_transfers_done == 0 && limit < hm_sim_now(s) + 10 * SECOND)
		hm_sim_settle(s, limit += 1000);
	if (!ASSERT_GE(stats_of(s, 3)->state_transfers_done, 1, "state transfer completed")) {
		hm_sim_free(s);
		return;
	}
	installed_at = hm_sim_now(s);
	ASSERT_GE(pbft_last_executed(hm_sim_node(s, 0)->core),
		  pbft_last_executed(hm_sim_node(s, 3)->core) + 20,
		  "the group is dozens of seqs past the transferred checkpoint");
	/* The clock only moves with events: step the limit. */
	while (pbft_last_executed(hm_sim_node(s, 3)->core) < pbft_last_executed(hm_sim_node(s, 0)->core) &&
	       limit < installed_at + 2 * retransmit_us)
		hm_sim_settle(s, limit += 1000);
	ASSERT_EQ(pbft_last_executed(hm_sim_node(s, 3)->core),
		  pbft_last_executed(hm_sim_node(s, 0)->core),
		  "caught up within 2 retransmit intervals, no new ops");
	/* Asked at the install: the answers name the committed slots, which
	 * the next retransmit round fetches (without the STATUS at the
	 * install it took two rounds, 1.75 intervals here, and none at all
	 * when no peer message had named a seq past the checkpoint). */
	ASSERT_LE(hm_sim_now(s) - installed_at, retransmit_us, "caught up within 1 interval (us)");
	hm_sim_free(s);
}

/* Loses the first *ctx STATUS datagrams replica 3 sends once it installed
 * a transferred state: in the random runs its peers refused them by their
 * STATUS rate limit (the one at the install came right after the STATUS
 * they had answered, the next round's reached them just under a retransmit
 * interval after it, by delay jitter). */
static bool drop_status_after_install(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
				      const uint8_t *buf, size_t len)
{
	unsigned *left = ctx;

	(void)to;
	if (from != 3 || len <= 5 || buf[5] != HM_MSG_STATUS || !*left ||
	    !pbft_stats(hm_sim_node(s, 3)->core)->state_transfers_done)
		return true;
	(*left)--;
	return false;
}

/* Seeds 13 and 118 of random_schedules: a replica that restarts far behind
 * learns the group's last slot only from messages beyond twice its window
 * (kept as "far", not as a seq to reach), installs the stable checkpoint
 * just below that slot, and the group is quiet.  Its STATUS at the install
 * and the one of the next round are lost; the seq the peers named must
 * still be asked for (it was forgotten: replica 3 stayed one seq behind
 * forever).  Replica 3 must execute the last slot within a retransmit
 * interval of the install, through the ordinary catch-up (f+1 committed
 * claims or its own quorums). */
HM_TEST(st_install_remembers_far_slots)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint64_t limit, retransmit_us, installed_at, last;
	unsigned drop = 0;

	hm_sim_default_opts(&o);
	o.clients = 1;
	o.ops_per_client = 25; /* one op per seq: the group ends at 25 */
	o.batch_size = 1;
	o.pipeline_depth = 1;
	o.checkpoint_interval = 2;
	o.window = 4;
	o.persist = true;
	s = hm_sim_new(&o);
	retransmit_us = (uint64_t)o.client_timeout_ms / 2 * 1000; /* node.c: timeout_ms / 2 */
	hm_sim_set_filter(s, drop_status_after_install, &drop);
	run_until_ops(s, 3);
	hm_sim_crash(s, 3);
	ASSERT_TRUE(hm_sim_run(s, hm_sim_now(s) + 30 * SECOND), "every op completes without 3");
	hm_sim_settle(s, hm_sim_now(s) + 2 * SECOND);
	last = pbft_last_executed(hm_sim_node(s, 0)->core);
	ASSERT_EQ(last, pbft_low_watermark(hm_sim_node(s, 0)->core) + 1,
		  "the group ends one slot above its stable checkpoint");
	ASSERT_GE(last, pbft_last_executed(hm_sim_node(s, 3)->core) + 2 * o.window + 1,
		  "replica 3 is more than two windows behind");
	drop = 2 * (o.n - 1); /* the install's STATUS and the next round's */
	if (!ASSERT_EQ(hm_sim_restart(s, 3), 0, "restart from files")) {
		hm_sim_free(s);
		return;
	}
	limit = hm_sim_now(s);
	while (stats_of(s, 3)->state_transfers_done == 0 && limit < hm_sim_now(s) + 10 * SECOND)
		hm_sim_settle(s, limit += 1000);
	if (!ASSERT_EQ(pbft_low_watermark(hm_sim_node(s, 3)->core), last - 1,
		       "replica 3 installed the checkpoint below the last slot")) {
		hm_sim_free(s);
		return;
	}
	installed_at = hm_sim_now(s);
	while (pbft_last_executed(hm_sim_node(s, 3)->core) < last &&
	       limit < installed_at + retransmit_us)
		hm_sim_settle(s, limit += 1000);
	ASSERT_EQ(pbft_last_executed(hm_sim_node(s, 3)->core), last,
		  "the last slot executed within a retransmit interval of the install");
	/* and for good: a quiet group, long after */
	hm_sim_settle(s, hm_sim_now(s) + 5 * SECOND);
	ASSERT_EQ(pbft_last_executed(hm_sim_node(s, 3)->core), last, "caught up");
	ASSERT_LE(drop, o.n - 1, "the STATUS at the install was lost");
	hm_sim_free(s);
}

/* A vote-log record that passes the file's checksums but is not one the
 * core wrote (cut short; here appended by the test, in reality a bug or a
 * collision) is refused, counted and the rest recovered: the replica
 * restarts with an intact vote log and rejoins. */
HM_TEST(malformed_vote_record_counted)
{
	static const uint8_t cut_view[] = { 1 /* D_VIEW */, 0, 0, 0 };
	struct hm_persist_opts none = { 0 };
	struct hm_recovery rec;
	struct hm_sim_opts o;
	struct hm_persist *p;
	struct hm_sim *s;
	char err[256];

	hm_sim_default_opts(&o);
	o.persist = true;
	o.ops_per_client = 40;
	s = hm_sim_new(&o);
	run_until_ops(s, 40);
	hm_sim_crash(s, 2);
	p = hm_persist_open(hm_sim_data_dir(s, 2), &none, &rec, err, sizeof(err));
	hm_recovery_free(&rec);
	if (!ASSERT_TRUE(p != NULL, err))
		goto out;
	ASSERT_OK(hm_persist_vote_append(p, 0, cut_view, sizeof(cut_view)), "append");
	ASSERT_OK(hm_persist_vote_sync(p), "sync");
	hm_persist_close(p);
	if (!ASSERT_OK(hm_sim_restart(s, 2), "restart from disk"))
		goto out;
	ASSERT_EQ(pbft_stats(hm_sim_node(s, 2)->core)->vote_records_malformed, 1,
		  "the cut record is counted");
	ASSERT_FALSE(hm_sim_node(s, 2)->restart_silent, "the vote log still counts as intact");
	sim_run_and_check(s, 60, "the replica rejoins");
out:
	hm_sim_free(s);
}

/* The same, with replica 0 serving chunks that do not verify (the state is
 * one chunk, and the fetcher asks the lowest id first): it is blamed on its
 * first bad chunk and the state comes from another peer. */
HM_TEST(st_bad_chunk_peer_blamed)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	lag_opts(&o);
	s = hm_sim_new(&o);
	hm_sim_set_bad_chunk_server(s, 0);
	hm_sim_crash(s, 3);
	run_until_ops(s, 120);
	hm_sim_revive(s, 3);
	sim_run_and_check(s, 60, "the lagging replica catches up despite a bad server");
	ASSERT_GE(stats_of(s, 3)->state_transfers_done, 1, "state transfer completed");
	ASSERT_EQ(stats_of(s, 3)->state_blamed, 1u << 0, "replica 0 (only) blamed");
	ASSERT_GE(stats_of(s, 3)->state_bad_chunks, 1, "bad chunk counted");
	hm_sim_free(s);
}

/* Restart replicas from their files in the middle of the run, several
 * times: each comes back at the state it had persisted (re-executing its
 * log gives exactly the batches it executed before: the simulator compares
 * every re-executed seq), then catches up. */
HM_TEST(restart_from_disk_mid_run)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint64_t before;

	hm_sim_default_opts(&o);
	o.persist = true;
	o.ops_per_client = 80;
	s = hm_sim_new(&o);
	for (uint32_t round = 0; round < 4; round++) {
		uint32_t r = 1 + round % 3;

		run_until_ops(s, 50 + 60 * round);
		before = pbft_last_executed(hm_sim_node(s, r)->core);
		hm_sim_crash(s, r);
		run_until_ops(s, 70 + 60 * round);
		if (!ASSERT_OK(hm_sim_restart(s, r), "restart from disk"))
			break;
		/* Everything executed before the crash was durable. */
		ASSERT_GE(hm_sim_node(s, r)->recovered_seq, before, "nothing durable lost");
		ASSERT_EQ(hm_sim_node(s, r)->recovery_status, HM_REC_OK, "files valid");
		ASSERT_EQ(pbft_stats(hm_sim_node(s, r)->core)->vote_records_malformed, 0,
			  "every vote record it wrote is taken back");
	}
	/* The primary too: a view change, then it rejoins from disk. */
	run_until_ops(s, 290);
	hm_sim_crash(s, 0);
	run_until_ops(s, 300);
	ASSERT_OK(hm_sim_restart(s, 0), "restart the old primary");
	sim_run_and_check(s, 60, "restarted replicas rejoin");
	ASSERT_EQ(hm_sim_completed(s), o.clients * o.ops_per_client, "completed ops");
	hm_sim_free(s);
}

static void flip_newest(const char *dir, const char *prefix)
{
	char newest[256] = "", path[512];
	struct dirent *de;
	DIR *d = opendir(dir);
	FILE *f;
	long size;

	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, prefix, strlen(prefix)) && strcmp(de->d_name, newest) > 0)
			snprintf(newest, sizeof(newest), "%s", de->d_name);
	if (d)
		closedir(d);
	snprintf(path, sizeof(path), "%s/%s", dir, newest);
	f = fopen(path, "r+b");
	if (!ASSERT_TRUE(newest[0] && f, "file to corrupt")) {
		if (f)
			fclose(f);
		return;
	}
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	fseek(f, size / 2, SEEK_SET);
	int ch = fgetc(f);
	fseek(f, size / 2, SEEK_SET);
	fputc(ch ^ 0x5a, f);
	fclose(f);
}

/* A replica's newest checkpoint and log segment are damaged while it is
 * down: recovery reports them, the replica holds its replies, fetches the
 * group's state by state transfer, and its next checkpoint repairs the
 * files. */
HM_TEST(corrupt_files_repaired_by_state_transfer)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	struct hm_recovery rec;
	char dir[128];

	hm_sim_default_opts(&o);
	o.persist = true;
	o.ops_per_client = 80;
	s = hm_sim_new(&o);
	run_until_ops(s, 100);
	hm_sim_crash(s, 2);
	snprintf(dir, sizeof(dir), "%s", hm_sim_data_dir(s, 2));
	flip_newest(dir, "checkpoint-");
	flip_newest(dir, "log-");
	run_until_ops(s, 130);
	ASSERT_OK(hm_sim_restart(s, 2), "restart");
	ASSERT_EQ(hm_sim_node(s, 2)->recovery_status, HM_REC_CORRUPT, "corruption detected");
	ASSERT_TRUE(hm_sim_node(s, 2)->persist_degraded, "appends refused until repaired");
	sim_run_and_check(s, 60, "the damaged replica catches up");
	ASSERT_GE(stats_of(s, 2)->state_transfers_done, 1, "state fetched by transfer");
	ASSERT_FALSE(hm_sim_node(s, 2)->persist_degraded, "files repaired");
	hm_persist_recover(dir, &rec);
	ASSERT_EQ(rec.status, HM_REC_OK, "the files are valid again");
	ASSERT_GE(rec.last_seq, pbft_low_watermark(hm_sim_node(s, 2)->core), "and current");
	hm_recovery_free(&rec);
	hm_sim_free(s);
}

/* A restarted replica never contradicts a vote it sent before the crash.
 *
 * This test used to check the old restart rule ("a restarted replica casts
 * no vote up to its recovered bound and never leads the view it
 * recovered"): votes were not persisted then.  Since the vote log (issue 17)
 * a replica whose vote log recovered intact votes at once, so the premise
 * changed; the test now asserts the stronger property the vote log exists
 * for: every PRE-PREPARE, PREPARE and COMMIT the replica sends, before and
 * after the restart, agrees with every one it sent for the same (type,
 * view, seq), and a restarted primary proposes nothing new in the view it
 * recovered (it does not lead it: pbft_acting_primary).  The old rule still
 * applies when the vote log is lost, and the second half checks exactly the
 * old assertions then. */
#define WATCH_MAX 8192
struct vote_watch {
	uint32_t replica;
	bool armed, restarted;
	uint64_t bound, view;
	unsigned votes_below, pp_in_view, pp_new_in_view, contradictions, n;
	struct { uint8_t type; uint64_t view, seq; uint8_t digest[HM_DIGEST_LEN]; } sent[WATCH_MAX];
};

static bool watch_votes(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			const uint8_t *buf, size_t len)
{
	struct vote_watch *w = ctx;
	enum hm_drop_reason why;
	struct hm_msg m;
	bool known = false;

	(void)s;
	(void)to;
	if (from != w->replica || hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why) < 0 ||
	    (m.type != HM_MSG_PRE_PREPARE && m.type != HM_MSG_PREPARE && m.type != HM_MSG_COMMIT))
		return true;
	for (unsigned i = 0; i < w->n; i++)
		if (w->sent[i].type == m.type && w->sent[i].view == m.view &&
		    w->sent[i].seq == m.seq) {
			known = true;
			w->contradictions += memcmp(w->sent[i].digest, m.digest, HM_DIGEST_LEN) != 0;
		}
	if (!known && w->n < WATCH_MAX) {
		w->sent[w->n].type = m.type;
		w->sent[w->n].view = m.view;
		w->sent[w->n].seq = m.seq;
		memcpy(w->sent[w->n++].digest, m.digest, HM_DIGEST_LEN);
	}
	if (!w->armed)
		return true;
	if (m.seq <= w->bound)
		w->votes_below++;
	if (m.type == HM_MSG_PRE_PREPARE && m.view == w->view) {
		w->pp_in_view++;
		w->pp_new_in_view += !known;
	}
	return true;
}

static void remove_votes(const char *dir)
{
	struct dirent *de;
	char path[512];
	DIR *d = opendir(dir);

	while (d && (de = readdir(d)))
		if (!strncmp(de->d_name, "votes-", 6)) {
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
	if (d)
		closedir(d);
}

HM_TEST(restarted_replica_keeps_the_restart_rule)
{
	for (uint32_t run = 0; run < 4; run++) {
		uint32_t who = run % 2;
		bool lost = run >= 2; /* the vote log deleted while it is down */
		struct vote_watch *w = calloc(1, sizeof(*w));
		struct hm_sim_opts o;
		struct hm_sim *s;

		w->replica = who;
		hm_sim_default_opts(&o);
		o.persist = true;
		o.ops_per_client = 60;
		s = hm_sim_new(&o);
		hm_sim_set_filter(s, watch_votes, w);
		run_until_ops(s, 40);
		w->view = pbft_view(hm_sim_node(s, who)->core);
		hm_sim_crash(s, who);
		if (lost)
			remove_votes(hm_sim_data_dir(s, who));
		if (!ASSERT_OK(hm_sim_restart(s, who), "restart at once")) {
			hm_sim_free(s);
			free(w);
			continue;
		}
		ASSERT_EQ(hm_sim_node(s, who)->restart_silent, lost,
			  "the silent rule only without an intact vote log");
		ASSERT_EQ(hm_sim_node(s, who)->votes_status, lost ? HM_VOTES_MISSING : HM_VOTES_OK,
			  "vote log status");
		if (lost) {
			w->bound = pbft_silent_until(hm_sim_node(s, who)->core);
			ASSERT_GE(w->bound, pbft_last_executed(hm_sim_node(s, who)->core) + o.window,
				  "bound covers the window it may have voted in");
		} else {
			ASSERT_EQ(pbft_silent_until(hm_sim_node(s, who)->core), 0,
				  "an intact vote log: no silent bound");
		}
		w->armed = true;
		sim_run_and_check(s, 60, "the group goes on, the restarted replica catches up");
		ASSERT_EQ(w->contradictions, 0, "no vote contradicting one sent before");
		if (lost) {
			ASSERT_EQ(w->votes_below, 0, "no vote of the restarted replica up to its bound");
			ASSERT_EQ(w->pp_in_view, 0, "no PRE-PREPARE in the view it recovered");
		} else {
			ASSERT_EQ(w->pp_new_in_view, 0, "no new PRE-PREPARE in the view it recovered");
		}
		if (who == 0)
			ASSERT_GE(pbft_view(hm_sim_node(s, 1)->core), 1,
				  "the restarted primary's view was changed");
		hm_sim_free(s);
		free(w);
	}
}

/* A replica whose service state silently diverges (a bit flip in memory, a
 * bug) finds out at its next checkpoint, when 2f+1 others certify another
 * digest; it fetches the certified state and agrees again. */
HM_TEST(diverged_replica_repaired_by_state_transfer)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	struct hm_service *svc;
	struct hm_exec_ctx ctx = { .seq = 0, .client = 999, .timestamp = 1 };
	uint8_t op[64], out[64];
	size_t len;

	hm_sim_default_opts(&o);
	o.ops_per_client = 80;
	s = hm_sim_new(&o);
	run_until_ops(s, 60);
	svc = hm_sim_service(s, 2);
	len = hm_kv_encode_put(op, sizeof(op), "rogue", "value", 5);
	svc->ops->execute(svc->state, &ctx, op, len, out, sizeof(out));
	sim_run_and_check(s, 60, "the diverged replica is repaired");
	ASSERT_GE(stats_of(s, 2)->checkpoint_mismatches, 1, "the divergence was seen");
	ASSERT_GE(stats_of(s, 2)->state_transfers_done, 1, "and repaired by state transfer");
	hm_sim_free(s);
}
