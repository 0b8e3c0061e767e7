// SPDX-License-Identifier: MIT
/*
 * The fast path (docs/protocol.md, "The fast path"): a replica that counted
 * all n replicas' matching votes for a slot (the PRE-PREPARE and n - 1
 * PREPAREs) commits it once prepared, without the COMMIT round; the view
 * change keeps such a value through the vote reports in VIEW-CHANGEs and
 * rule F in the new view's O.
 *
 * The cases are those that break a naive fast path (one without rule F):
 *   - a fast commit at one replica only, no prepared certificate anywhere
 *     else, then a view change whose VIEW-CHANGEs come from the others with
 *     f Byzantine replicas among them hiding their votes (they lost their
 *     logs): certificates alone would give the slot the null batch;
 *   - the replica that fast-committed crashes (and later restarts from its
 *     files), and a correct reporter restarts from its files before the
 *     view change (its vote must survive in the vote log);
 *   - a mixed cluster (the fast path on the fast committer only, as while a
 *     rolling restart switches it on): the others report and apply rule F
 *     all the same;
 *   - at n = 4 and n = 7.
 * Twins of the primary and the randomized search with the fast path on are
 * in test_twins (twins_enumeration_fast) and test_byzantine
 * (randomized_faults_fast).
 */
#define _XOPEN_SOURCE 700
#include <ftw.h>
#include <stdio.h>
#include <unistd.h>

#include "hm_test.h"
#include "common/wire.h"
#include "testing/sim.h"

#define SECOND 1000000ull
#define MS 1000ull

static struct pbft *core_of(struct hm_sim *s, uint32_t r)
{
	return hm_sim_node(s, r)->core;
}

/* Run in steps of 1 ms of virtual time while cond(s, arg) is false, for at
 * most limit_us; true once it holds.  (The clock only moves with events,
 * so the limit is stepped, not the clock.) */
static bool run_until(struct hm_sim *s, bool (*cond)(struct hm_sim *, uint32_t), uint32_t arg,
		      uint64_t limit_us)
{
	uint64_t limit = hm_sim_now(s), stop = limit + limit_us;

	while (!cond(s, arg) && limit < stop)
		hm_sim_run(s, limit += MS);
	return cond(s, arg);
}

static bool executed_seq1(struct hm_sim *s, uint32_t r)
{
	uint8_t d[HM_DIGEST_LEN];

	return hm_sim_executed_digest(s, r, 1, d);
}

static bool executed_seq2(struct hm_sim *s, uint32_t r)
{
	uint8_t d[HM_DIGEST_LEN];

	return hm_sim_executed_digest(s, r, 2, d);
}

/* ---- a fast commit nobody else can prove --------------------------------- */

/* In view 0, seq 1's PREPAREs reach only replica `fast_at`, and COMMITs
 * nobody: fast_at alone sees all n votes for seq 1 (and prepares it); the
 * others voted but hold no certificate for it.  Seq 2's PREPAREs flow, so
 * everybody holds its certificate: a new view's O reaches past seq 1, and
 * from certificates alone seq 1 would get the null batch.  Later views are
 * left alone. */
struct lone_fast {
	uint32_t n, fast_at;
	uint64_t dropped;
};

static bool lone_fast_filter(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			     const uint8_t *buf, size_t len)
{
	struct lone_fast *lf = ctx;

	(void)s;
	if (from >= lf->n || to >= lf->n || len < HM_HDR_LEN ||
	    hm_get_be64(buf + HM_OFF_VIEW) != 0)
		return true;
	if (buf[5] == HM_MSG_COMMIT ||
	    (buf[5] == HM_MSG_PREPARE && to != lf->fast_at && hm_get_be64(buf + HM_OFF_SEQ) == 1)) {
		lf->dropped++;
		return false;
	}
	return true;
}

static int unlink_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag;
	return ftw->level > 0 ? remove(path) : 0;
}

/* A Byzantine replica that hides its votes: it forgets everything (its
 * files emptied) and starts again, so its VIEW-CHANGE reports nothing. */
static bool forget_everything(struct hm_sim *s, uint32_t r)
{
	hm_sim_mark_faulty(s, r);
	if (nftw(hm_sim_data_dir(s, r), unlink_one, 8, FTW_DEPTH | FTW_PHYS) < 0)
		return false;
	return hm_sim_restart(s, r) == 0;
}

/*
 * n replicas, f = (n-1)/3.  Replica 1 fast-commits seq 1 in view 0; nobody
 * else prepares it.  Then replica 1 crashes, and the f Byzantine replicas
 * (the view-0 primary among them) forget their votes.  The remaining
 * correct replicas (2f of them, at least f+1 in any 2f+1 VIEW-CHANGEs)
 * report their view-0 votes; rule F must give seq 1 the fast-committed
 * batch.  With restart_reporter, correct replica n-1 restarts from its
 * files before the view change: its vote comes back from the vote log.
 */
static void lone_fast_commit(uint32_t n, bool restart_reporter, bool mixed)
{
	const uint32_t fast_at = 1;
	struct lone_fast lf = { .n = n, .fast_at = fast_at };
	uint8_t d[HM_DIGEST_LEN], other[HM_DIGEST_LEN];
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint32_t f = (n - 1) / 3, byz[2] = { 0, 2 };
	char why[256];
	bool done;

	hm_sim_default_opts(&o);
	o.n = n;
	o.f = f;
	o.clients = 2;          /* two requests: seq 1 and seq 2 */
	o.ops_per_client = 3;
	o.batch_size = 1;
	o.persist = true;
	o.fast_path = true;
	if (mixed) /* only the fast committer runs the fast path */
		o.fast_path_only = (hm_voters_t)1 << fast_at;
	s = hm_sim_new(&o);
	hm_sim_set_filter(s, lone_fast_filter, &lf);
	if (!ASSERT_TRUE(run_until(s, executed_seq2, fast_at, 400 * MS),
			 "replica 1 executes seqs 1 and 2 without any COMMIT"))
		goto out;
	ASSERT_TRUE(hm_sim_executed_digest(s, fast_at, 1, d), "its digest");
	ASSERT_EQ(pbft_stats(core_of(s, fast_at))->fast_commits, 2, "on the fast path");
	ASSERT_EQ(pbft_stats(core_of(s, fast_at))->normal_commits, 0, "not the normal one");
	for (uint32_t i = 0; i < n; i++) {
		if (i == fast_at)
			continue;
		/* the case a naive fast path breaks: no certificate of d exists
		 * outside replica 1, so O from certificates alone is null */
		ASSERT_FALSE(pbft_prepared_digest(core_of(s, i), 1, other),
			     "no prepared certificate for seq 1 outside the fast committer");
		ASSERT_TRUE(pbft_prepared_digest(core_of(s, i), 2, other),
			    "a prepared certificate for seq 2 everywhere");
		ASSERT_FALSE(executed_seq1(s, i), "nobody else executed seq 1");
	}
	ASSERT_GE(lf.dropped, 2, "the filter took the other replicas' certificates away");

	hm_sim_crash(s, fast_at);
	for (uint32_t k = 0; k < f; k++)
		if (!ASSERT_TRUE(forget_everything(s, byz[k]), "a Byzantine replica forgets"))
			goto out;
	if (restart_reporter && !ASSERT_EQ(hm_sim_restart(s, n - 1), 0, "a reporter restarts"))
		goto out;

	done = hm_sim_run(s, hm_sim_now(s) + 30 * SECOND);
	ASSERT_TRUE(done, "every op completes after the view change");
	for (uint32_t i = 0; i < n; i++) {
		if (i == fast_at || hm_sim_faulty(s, i))
			continue;
		ASSERT_GE(pbft_view(core_of(s, i)), 1, "a new view");
		ASSERT_TRUE(hm_sim_executed_digest(s, i, 1, other) &&
				    memcmp(other, d, HM_DIGEST_LEN) == 0,
			    "seq 1 keeps the fast-committed batch in the new view");
	}
	ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	ASSERT_TRUE(hm_sim_linearizable(s, why, sizeof(why)), why);

	/* the fast committer comes back from its files and agrees */
	if (!ASSERT_EQ(hm_sim_restart(s, fast_at), 0, "replica 1 restarts from its files"))
		goto out;
	hm_sim_settle(s, hm_sim_now(s) + 5 * SECOND);
	ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	ASSERT_TRUE(hm_sim_states_agree(s, why, sizeof(why)), why);
	printf("     n=%u: fast commit at r1 only, %u votes hidden%s%s: seq 1 kept, view %llu\n",
	       n, f, restart_reporter ? ", a reporter restarted" : "",
	       mixed ? ", the fast path on r1 only" : "",
	       (unsigned long long)pbft_view(core_of(s, n - 1)));
out:
	hm_sim_free(s);
}

HM_TEST(lone_fast_commit_survives_view_change_n4) { lone_fast_commit(4, false, false); }
HM_TEST(lone_fast_commit_survives_view_change_n7) { lone_fast_commit(7, false, false); }
HM_TEST(lone_fast_commit_reporter_restarts_n4) { lone_fast_commit(4, true, false); }
HM_TEST(lone_fast_commit_reporter_restarts_n7) { lone_fast_commit(7, true, false); }
/* A mixed cluster, as while a rolling restart switches the fast path on:
 * the replicas without it still report their votes and apply rule F, or
 * the fast committer's batch would be lost (it was, before they did). */
HM_TEST(lone_fast_commit_mixed_cluster_n4) { lone_fast_commit(4, false, true); }
HM_TEST(lone_fast_commit_mixed_cluster_n7) { lone_fast_commit(7, true, true); }

/* ---- the common case ----------------------------------------------------- */

/* A healthy cluster with the fast path: with even delays every PREPARE is
 * in before any COMMIT, so nearly every batch commits fast at every
 * replica; with jitter the n-th PREPARE races the COMMIT quorum and loses
 * now and then (the normal path commits those), so at least half; off,
 * none.  Agreement either way. */
static double healthy(uint32_t n, bool fast, bool jitter)
{
	double primary_part;
	struct hm_sim_opts o;
	struct hm_sim *s;
	char why[256];

	hm_sim_default_opts(&o);
	o.n = n;
	o.f = (n - 1) / 3;
	o.fast_path = fast;
	if (!jitter)
		o.min_delay_us = o.max_delay_us = 200;
	s = hm_sim_new(&o);
	ASSERT_TRUE(hm_sim_run(s, 30 * SECOND), "every op completes");
	hm_sim_settle(s, hm_sim_now(s) + SECOND);
	ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	ASSERT_TRUE(hm_sim_states_agree(s, why, sizeof(why)), why);
	for (uint32_t i = 0; i < n; i++) {
		const struct pbft_stats *st = pbft_stats(core_of(s, i));
		uint64_t all = st->fast_commits + st->normal_commits;

		ASSERT_GE(all, 1, "batches committed");
		if (fast && !jitter)
			ASSERT_GE(st->fast_commits * 10, all * 9, "at least 90% on the fast path");
		else if (fast)
			ASSERT_GE(st->fast_commits * 2, all, "at least half on the fast path");
		else
			ASSERT_EQ(st->fast_commits, 0, "no fast commit with the fast path off");
	}
	/* the fault detector's participation of the primary, as replica 1
	 * counts it (struct hm_node's quorum events) */
	primary_part = (double)hm_sim_node(s, 1)->replica_stats[0].in_quorum /
		       (double)hm_sim_node(s, 1)->quorums;
	hm_sim_free(s);
	return primary_part;
}

HM_TEST(healthy_cluster_commits_fast)
{
	double with, without;

	with = healthy(4, true, false);
	healthy(7, true, false);
	healthy(4, true, true);
	healthy(7, true, true);
	healthy(4, false, true);
	without = healthy(4, false, false);
	/* The primary's PRE-PREPARE is its vote in every PREPARE quorum and
	 * fast event.  Left out of them (as before node.c credited it), it
	 * took part in no event replica 1 counted here (its COMMIT loses the
	 * ties), looked absent to the fault detector, and the reputation gate
	 * withdrew the fast path from a healthy cluster (e2e_fast_path.sh). */
	ASSERT_GE(without * 100, 50, "the primary takes part in the PREPARE quorums");
	ASSERT_GE(with * 100, without * 100, "the fast path does not make the primary look absent");
}

/* Withdrawn (as the reputation gate does): new slots go the normal way, and
 * nothing stalls. */
HM_TEST(withdrawn_fast_path_commits_normally)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	char why[256];

	hm_sim_default_opts(&o);
	o.fast_path = true;
	s = hm_sim_new(&o);
	for (uint32_t i = 0; i < o.n; i++)
		pbft_set_fast_path_allowed(core_of(s, i), false);
	ASSERT_TRUE(hm_sim_run(s, 30 * SECOND), "every op completes");
	ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	for (uint32_t i = 0; i < o.n; i++)
		ASSERT_EQ(pbft_stats(core_of(s, i))->fast_commits, 0, "nothing committed fast");
	hm_sim_free(s);
}

/* One backup down: n-of-n is impossible, the normal path carries on. */
HM_TEST(backup_down_falls_back_to_normal)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	char why[256];

	hm_sim_default_opts(&o);
	o.fast_path = true;
	s = hm_sim_new(&o);
	hm_sim_crash(s, 3);
	ASSERT_TRUE(hm_sim_run(s, 30 * SECOND), "every op completes");
	ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	for (uint32_t i = 0; i < 3; i++) {
		ASSERT_EQ(pbft_stats(core_of(s, i))->fast_commits, 0, "no n-of-n with one down");
		ASSERT_GE(pbft_stats(core_of(s, i))->normal_commits, 1, "the normal path commits");
	}
	hm_sim_free(s);
}


