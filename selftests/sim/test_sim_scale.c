// SPDX-License-Identifier: MIT
/*
 * The largest cluster the u32 voter bitmaps allow at the specification's f:
 * n = 31, f = 10, on the simulated network (the replica code the daemon
 * runs, real signatures and MACs, a virtual clock).  It commits with f
 * backups down, and after its primary is killed (with f - 1 backups down
 * too, f faults in all) it changes view and commits again; the view change
 * carries prepared certificates with 2f = 20 PREPARE signatures, voter ids
 * up to 30, in the u32-voter VIEW-CHANGE entries.
 */
#include "hm_test.h"
#include "sim_checks.h"
#include "testing/sim.h"
#include "core/pbft.h"
#include "replica/node.h"

#define SECOND 1000000ull
#define N31 31
#define F10 10

static void n31_opts(struct hm_sim_opts *o)
{
	hm_sim_default_opts(o);
	o->n = N31;
	o->f = F10;
	o->clients = 3;
	o->ops_per_client = 12;
}

/* f = 10 backups (the top ids, 21..30) down from the start: the other 21
 * are exactly a 2f+1 quorum and commit everything. */
HM_TEST(n31_f10_backups_down)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	n31_opts(&o);
	s = hm_sim_new(&o);
	for (uint32_t i = N31 - F10; i < N31; i++)
		hm_sim_crash(s, i);
	sim_run_and_check(s, 120, "n=31 with f=10 backups down");
	ASSERT_EQ(hm_sim_completed(s), o.clients * o.ops_per_client, "completed ops");
	hm_sim_free(s);
}

/* One more crash than f: no quorum, nothing completes, nothing unsafe. */
HM_TEST(n31_f_plus_one_down_stalls_safely)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	char why[256];

	n31_opts(&o);
	o.view_change_timeout_ms = 0;
	s = hm_sim_new(&o);
	for (uint32_t i = N31 - F10 - 1; i < N31; i++)
		hm_sim_crash(s, i);
	ASSERT_FALSE(hm_sim_run(s, 5 * SECOND), "no progress with f+1 down");
	ASSERT_EQ(hm_sim_completed(s), 0, "completed ops");
	ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	hm_sim_free(s);
}

/* The primary (0) is killed mid-run and 9 backups (22..30) are down from
 * the start: 10 faults.  The 21 left change view and finish every op. */
HM_TEST(n31_primary_killed_view_change)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	n31_opts(&o);
	s = hm_sim_new(&o);
	for (uint32_t i = N31 - F10 + 1; i < N31; i++)
		hm_sim_crash(s, i);
	hm_sim_crash_after(s, 0, 13);
	if (sim_run_and_check(s, 180, "n=31: primary killed, 9 backups down"))
		ASSERT_EQ(hm_sim_completed(s), o.clients * o.ops_per_client, "completed ops");
	for (uint32_t i = 1; i < N31 - F10 + 1; i++) {
		const struct pbft *core = hm_sim_node(s, i)->core;

		ASSERT_GE(pbft_view(core), 1, "a new view installed");
		ASSERT_GE(pbft_stats(core)->view_changes_installed, 1, "installed counted");
	}
	printf("     n=31: fault to first commit in the new view: %.1f ms (virtual)\n",
	       hm_sim_recovery_us(s) / 1000.0);
	ASSERT_GE(hm_sim_recovery_us(s), 1, "recovered in a new view");
	hm_sim_free(s);
}

