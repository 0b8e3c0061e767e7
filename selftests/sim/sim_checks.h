/* SPDX-License-Identifier: MIT */
/*
 * What the randomized simulator runners share (test_sim random_schedules,
 * test_byzantine randomized_faults, test_twins): sharding, the seeds-per-
 * second line, the issue-17 checks (liveness after the last fault heals, no
 * correct replica counted Byzantine) and the gates that can set a check
 * aside while its fix is under way (none is set aside by default: the
 * issue-17 fixes are in, and every check is enforced).
 *
 *   HM_SIM_SHARD=i/k    run only the seeds (scenarios) s with s % k == i
 *   HM_I17_PENDING=...  comma-separated gates whose failures are reported
 *                       as SKIP instead of FAIL (unset, "none" or empty:
 *                       every check enforced).  Gates:
 *     restart    liveness of runs that restart replicas from their files
 *                (issue 17 item 0/3: rolling, all-at-once, restart then
 *                primary crash)
 *     liveness   liveness within the stated bound after the last fault
 *                heals, every correct replica at the same point and none
 *                behind in views (items 1, 4, 6)
 *     admission  liveness with the kv-skew service's admission check
 *                (item 2)
 *     blocking   no correct replica counted Byzantine: no equivocation or
 *                bad-signature drops naming it, no proven_faulty bit, not
 *                blocked (item 3)
 *   A gated check still runs: the seeds that fail it are counted and the
 *   first ones printed with their replay command.
 */
#ifndef HM_SIM_CHECKS_H
#define HM_SIM_CHECKS_H

#include <time.h>

#include "hm_test.h"
#include "testing/sim.h"

#define SIM_PENDING_DEFAULT ""
#define SIM_SECOND 1000000ull

struct sim_shard {
	unsigned i, k;
};

static inline struct sim_shard sim_shard(void)
{
	const char *v = getenv("HM_SIM_SHARD");
	struct sim_shard sh = { 0, 1 };

	if (v && sscanf(v, "%u/%u", &sh.i, &sh.k) == 2 && sh.k > 0 && sh.i < sh.k)
		return sh;
	return (struct sim_shard){ 0, 1 };
}

static inline bool sim_in_shard(struct sim_shard sh, unsigned seed)
{
	return seed % sh.k == sh.i;
}

static inline const char *sim_pending_list(void)
{
	const char *v = getenv("HM_I17_PENDING");

	if (!v)
		return SIM_PENDING_DEFAULT;
	return strcmp(v, "none") == 0 ? "" : v;
}

static inline bool sim_pending(const char *gate)
{
	const char *l = sim_pending_list();
	size_t n = strlen(gate);

	for (const char *p = l; (p = strstr(p, gate)); p += n)
		if ((p == l || p[-1] == ',') && (p[n] == 0 || p[n] == ','))
			return true;
	return false;
}

/* The bound within which a correct cluster must serve again once the last
 * fault healed: a view change per possibly-faulty primary in a row with
 * doubling timeouts, twice over, plus two client timeouts
 * (docs/faults.md: 4 x vc_timeout x 2^(f+1) + 2 x client_timeout; 8.4 s
 * virtual at n = 4, 16.4 s at n = 7 with the defaults). */
static inline uint64_t sim_liveness_bound_us(const struct hm_sim_opts *o)
{
	return 4ull * o->view_change_timeout_ms * 1000 * (1ull << (o->f + 1)) +
	       2ull * o->client_timeout_ms * 1000;
}

/* Let the run settle before sim_live(): 2 s after the clients finished,
 * and at least until the bound after the heal.  The bound is what every
 * correct replica gets, not only the clients: when the clients finished
 * early (at or before the heal), a replica left behind still has until
 * t_heal + bound to catch up (seed 34675: it needed a view change to get
 * slots only one correct replica had executed, and caught up 2.2 s after
 * the heal, well within the 8.4 s bound, but after the 2 s settle). */
static inline void sim_settle_for_liveness(struct hm_sim *s, uint64_t t_heal, uint64_t bound_us)
{
	uint64_t until = hm_sim_now(s) + 2000000;

	if (until < t_heal + bound_us)
		until = t_heal + bound_us;
	hm_sim_settle(s, until);
}

/* Run with the clients active for `us` of virtual time (the clock only
 * moves with events: step the limit, not the clock). */
static inline void sim_run_for(struct hm_sim *s, uint64_t us)
{
	uint64_t stop = hm_sim_now(s) + us, limit = hm_sim_now(s);

	while (limit < stop) {
		limit += 10000;
		if (hm_sim_run(s, limit))
			hm_sim_settle(s, limit);
	}
}

/* Run until `ops` operations completed, at most limit_us. */
static inline void sim_run_until_ops(struct hm_sim *s, uint64_t ops, uint64_t limit_us)
{
	uint64_t stop = hm_sim_now(s) + limit_us, limit = hm_sim_now(s);

	while (hm_sim_completed(s) < ops && limit < stop)
		if (hm_sim_run(s, limit += 10000))
			break;
}

/* Liveness once every client finished (done) and the run settled: every
 * correct, running replica executed as far as the furthest and none is
 * behind in views: each is installed in the highest view a correct replica
 * installed, or changing to a view above it.  A replica ahead, waiting in a
 * view change the others never joined (it timed out alone while cut off),
 * is what PBFT allows and costs no fault tolerance: its VIEW-CHANGE counts
 * towards the next view change, and going back to the lower view would make
 * that VIEW-CHANGE unsafe to use (docs/protocol.md, "View changes"). */
static inline bool sim_live(struct hm_sim *s, uint32_t n, bool done, char *why, size_t len)
{
	uint64_t top = 0, view = UINT64_MAX; /* view: the highest installed */

	if (!done) {
		snprintf(why, len, "clients not done within the bound after the last fault "
			 "healed (%llu ops completed)", (unsigned long long)hm_sim_completed(s));
		return false;
	}
	for (uint32_t i = 0; i < n; i++)
		if (!hm_sim_faulty(s, i) && !hm_sim_crashed(s, i) &&
		    pbft_last_executed(hm_sim_node(s, i)->core) > top)
			top = pbft_last_executed(hm_sim_node(s, i)->core);
	for (uint32_t i = 0; i < n; i++) {
		struct pbft *c = hm_sim_node(s, i)->core;

		if (hm_sim_faulty(s, i) || hm_sim_crashed(s, i))
			continue;
		if (pbft_last_executed(c) != top) {
			snprintf(why, len, "correct replica %u executed %llu, the furthest %llu", i,
				 (unsigned long long)pbft_last_executed(c), (unsigned long long)top);
			return false;
		}
		if (view == UINT64_MAX || pbft_view(c) > view)
			view = pbft_view(c);
	}
	for (uint32_t i = 0; i < n; i++) {
		struct pbft *c = hm_sim_node(s, i)->core;
		bool ahead = pbft_in_view_change(c) && pbft_view_target(c) > view;

		if (hm_sim_faulty(s, i) || hm_sim_crashed(s, i))
			continue;
		if (!ahead && (pbft_view(c) != view || pbft_in_view_change(c))) {
			snprintf(why, len, "correct replica %u in view %llu%s, another in %llu", i,
				 (unsigned long long)pbft_view(c),
				 pbft_in_view_change(c) ? " (changing view)" : "",
				 (unsigned long long)view);
			return false;
		}
	}
	return true;
}

/* No correct replica counted Byzantine by another correct one. */
static inline bool sim_nobody_blamed(struct hm_sim *s, uint32_t n, char *why, size_t len)
{
	for (uint32_t i = 0; i < n; i++) {
		struct hm_node *nd = hm_sim_node(s, i);
		const struct pbft_stats *st = pbft_stats(nd->core);

		if (hm_sim_faulty(s, i))
			continue;
		for (uint32_t j = 0; j < n; j++) {
			const struct hm_peer_stats *p = &nd->replica_stats[j];

			if (j == i || hm_sim_faulty(s, j))
				continue;
			if (p->drops[HM_DROP_EQUIVOCATION] || p->equivocations ||
			    p->drops[HM_DROP_BAD_SIGNATURE] || (st->proven_faulty >> j & 1) ||
			    (nd->blocked >> j & 1)) {
				snprintf(why, len, "correct replica %u counts correct replica %u "
					 "Byzantine: equivocation drops %llu, equivocation events "
					 "%llu, bad-signature drops %llu, proven_faulty %d, blocked %d",
					 i, j, (unsigned long long)p->drops[HM_DROP_EQUIVOCATION],
					 (unsigned long long)p->equivocations,
					 (unsigned long long)p->drops[HM_DROP_BAD_SIGNATURE],
					 st->proven_faulty >> j & 1, nd->blocked >> j & 1);
				return false;
			}
		}
	}
	return true;
}

/* Failures of a gated check: counted, the first seeds kept. */
struct sim_gate {
	const char *gate, *what;
	unsigned count;
	unsigned first[6];
	char first_why[300];
};

/* A check's outcome for one seed: true to go on (it held, or it failed
 * under a pending gate and was tallied), false for a real failure. */
static inline bool sim_gated(struct sim_gate *g, unsigned seed, bool ok, const char *why)
{
	if (ok)
		return true;
	if (!sim_pending(g->gate)) {
		HM_FAIL("%s: %s", g->what, why);
		return false;
	}
	if (g->count < sizeof(g->first) / sizeof(g->first[0]))
		g->first[g->count] = seed;
	if (!g->count)
		snprintf(g->first_why, sizeof(g->first_why), "%s", why);
	g->count++;
	return true;
}

static inline void sim_gate_report(const struct sim_gate *g, unsigned runs, const char *replay)
{
	if (!sim_pending(g->gate))
		return;
	if (!g->count) {
		printf("     SKIP gate %s (%s): pending in HM_I17_PENDING, but no seed of %u failed "
		       "it: ready to enforce\n", g->gate, g->what, runs);
		return;
	}
	printf("     SKIP gate %s (%s): %u of %u seeds fail it (pending the issue-17 fix; "
	       "enforce with HM_I17_PENDING=none); first:", g->gate, g->what, g->count, runs);
	for (unsigned i = 0; i < g->count && i < sizeof(g->first) / sizeof(g->first[0]); i++)
		printf(" %u", g->first[i]);
	printf("\n       e.g. seed %u: %s\n       replay: HM_I17_PENDING=none HM_SIM_SEED=%u %s\n",
	       g->first[0], g->first_why, g->first[0], replay);
}

static inline double sim_clock_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static inline void sim_rate(const char *what, unsigned runs, double t0, struct sim_shard sh)
{
	double dt = sim_clock_s() - t0;

	printf("     %s: %u seeds in %.1f s, %.1f seeds/s (shard %u/%u)\n", what, runs, dt,
	       dt > 0 ? runs / dt : 0.0, sh.i, sh.k);
}

/* Run a simulation to completion (within limit_s simulated seconds), let it
 * settle, and check safety, agreement and reads; dump it on failure. */
static inline bool sim_run_and_check(struct hm_sim *s, uint64_t limit_s, const char *what)
{
	char why[256];
	bool ok = true;

	ok &= ASSERT_TRUE(hm_sim_run(s, limit_s * SIM_SECOND), what);
	hm_sim_settle(s, hm_sim_now(s) + 2 * SIM_SECOND);
	ok &= ASSERT_TRUE(hm_sim_safety_ok(s, why, sizeof(why)), why);
	ok &= ASSERT_TRUE(hm_sim_states_agree(s, why, sizeof(why)), why);
	ok &= ASSERT_TRUE(hm_sim_reads_ok(s, why, sizeof(why)), why);
	if (!ok)
		hm_sim_dump(s, stdout);
	return ok;
}

#endif /* HM_SIM_CHECKS_H */
