// SPDX-License-Identifier: MIT
/*
 * Requests without signatures (docs/protocol.md, "Requests: MACs and
 * vouches"; user/core/pbft_auth.c): a request is authentic to a replica
 * that got it under its client's link MAC, or that holds f+1 replicas'
 * vouches for it; a primary proposes it with 2f+1 vouches, and only then
 * does a view-change timer run on it.
 *
 * The cases are those that break a naive version, each at n = 4 and 7:
 *   - a client whose copies reach only the primary (its MACs are bad at
 *     every backup): a primary proposing what it alone authenticated would
 *     leave every backup unable to accept the batch, and a backup timing a
 *     request it saw would change views; here the client is simply not
 *     served, and the others are, with no view change;
 *   - a client whose MACs are bad at f+1 backups: they hold its requests
 *     authentic through the others' vouches (and vouch in turn), so it is
 *     served, with no view change;
 *   - a client whose copies all miss the primary: the backups' vouches
 *     carry its requests to the primary (no view change);
 *   - a faulty primary proposing a request no client sent, with f faulty
 *     replicas vouching for it: no correct replica accepts the batch, the
 *     view changes, and the forged request never executes.
 */
#include <stdio.h>
#include <string.h>

#include "hm_test.h"
#include "sim_checks.h"
#include "common/wire.h"
#include "service/kv/kv.h"
#include "testing/byzantine.h"
#include "testing/sim.h"

#define SECOND 1000000ull

static void default_opts(struct hm_sim_opts *o, uint32_t n)
{
	hm_sim_default_opts(o);
	o->n = n;
	o->f = (n - 1) / 3;
	o->clients = 3;
	o->ops_per_client = 10;
}

static bool nobody_changed_view(struct hm_sim *s, uint32_t n)
{
	bool ok = true;

	for (uint32_t i = 0; i < n; i++) {
		const struct pbft *c = hm_sim_node(s, i)->core;

		ok &= ASSERT_EQ(pbft_view(c), 0, "still view 0");
		ok &= ASSERT_EQ(pbft_stats(c)->view_changes_started, 0, "no view change started");
	}
	return ok;
}

static uint64_t sum_stat(struct hm_sim *s, uint32_t n, size_t off)
{
	uint64_t t = 0;

	for (uint32_t i = 0; i < n; i++)
		t += *(const uint64_t *)((const uint8_t *)pbft_stats(hm_sim_node(s, i)->core) + off);
	return t;
}

/* Every request MAC-only: nothing signed, nothing verified, all served. */
static void plain_run(uint32_t n)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	default_opts(&o, n);
	s = hm_sim_new(&o);
	sim_run_and_check(s, 30, "MAC-only requests");
	nobody_changed_view(s, n);
	ASSERT_EQ(sum_stat(s, n, offsetof(struct pbft_stats, bad_client_signatures)), 0,
		  "no signature looked at");
	ASSERT_GE(sum_stat(s, n, offsetof(struct pbft_stats, requests_vouched)),
		  (uint64_t)n * o.clients * o.ops_per_client, "each replica vouched for each request");
	hm_sim_free(s);
}

HM_TEST(mac_only_requests_n4) { plain_run(4); }
HM_TEST(mac_only_requests_n7) { plain_run(7); }

/* The client's copies reach only the primary (bad MACs at every backup). */
static void only_primary(uint32_t n)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	hm_voters_t backups = (hm_voters_t)(((uint64_t)1 << n) - 1) & ~(hm_voters_t)1;
	const struct hm_client *bad;

	default_opts(&o, n);
	s = hm_sim_new(&o);
	hm_sim_set_bad_client_macs(s, 2, backups);
	/* The others finish; then as long again as a view change would take. */
	sim_run_until_ops(s, (uint64_t)(o.clients - 1) * o.ops_per_client, 30 * SECOND);
	sim_run_for(s, 4 * (uint64_t)o.view_change_timeout_ms * 1000);
	ASSERT_EQ(hm_sim_completed(s), (uint64_t)(o.clients - 1) * o.ops_per_client,
		  "the other clients served, not this one");
	bad = hm_sim_client(s, 2);
	ASSERT_TRUE(bad->busy && bad->ts == 1, "its first request still waits");
	ASSERT_GE(hm_node_drops(hm_sim_node(s, 1), HM_DROP_BAD_MAC), 1, "a backup saw its bad MAC");
	nobody_changed_view(s, n);
	hm_sim_free(s);
}

HM_TEST(client_reaches_only_primary_n4) { only_primary(4); }
HM_TEST(client_reaches_only_primary_n7) { only_primary(7); }

/* Bad MACs at f+1 backups: the other replicas' vouches authenticate it. */
static void bad_at_f_plus_1(uint32_t n)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	hm_voters_t bad = 0;

	default_opts(&o, n);
	for (uint32_t i = 1; i <= o.f + 1; i++)
		bad |= (hm_voters_t)1 << i;
	s = hm_sim_new(&o);
	hm_sim_set_bad_client_macs(s, 2, bad);
	sim_run_and_check(s, 30, "bad MACs at f+1 backups");
	nobody_changed_view(s, n);
	for (uint32_t i = 1; i <= o.f + 1; i++)
		ASSERT_GE(pbft_stats(hm_sim_node(s, i)->core)->requests_by_vouches,
			  o.ops_per_client, "authentic through vouches");
	hm_sim_free(s);
}

HM_TEST(bad_macs_at_f_plus_1_backups_n4) { bad_at_f_plus_1(4); }
HM_TEST(bad_macs_at_f_plus_1_backups_n7) { bad_at_f_plus_1(7); }

/* Every copy of one client's requests misses the primary. */
static bool skip_primary(void *ctx, struct hm_sim *s, uint32_t from, uint32_t to,
			 const uint8_t *buf, size_t len)
{
	(void)ctx, (void)buf, (void)len;
	return !(from == hm_sim_config(s)->n_members + 2 && to == 0);
}

static void client_skips_primary(uint32_t n)
{
	struct hm_sim_opts o;
	struct hm_sim *s;

	default_opts(&o, n);
	s = hm_sim_new(&o);
	hm_sim_set_filter(s, skip_primary, NULL);
	sim_run_and_check(s, 30, "a client's copies all miss the primary");
	nobody_changed_view(s, n);
	ASSERT_GE(pbft_stats(hm_sim_node(s, 0)->core)->requests_by_vouches, o.ops_per_client,
		  "the primary got them through vouches");
	hm_sim_free(s);
}

HM_TEST(client_skips_primary_n4) { client_skips_primary(4); }
HM_TEST(client_skips_primary_n7) { client_skips_primary(7); }

/* ---- a faulty primary's forged request, with f forged vouches ---------- */

static void stamp_from(struct hm_sim *s, uint32_t from, uint32_t to, uint8_t *buf)
{
	struct hm_link_keys lk;

	if (hm_link_keys_derive(from, hm_sim_replica_keys(s, from), to,
				hm_sim_config(s)->members[to].public_key, &lk) < 0)
		abort();
	hm_mac_stamp((struct hm_hdr *)buf, lk.tx);
}

static void forged_request(uint32_t n)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint8_t op[64], req[256], batch[300], msg[512], forged[HM_DIGEST_LEN], d[HM_DIGEST_LEN];
	size_t oplen, rlen, mlen;
	uint32_t f = (n - 1) / 3;
	struct hm_byz_opts byz;
	char err[128];

	default_opts(&o, n);
	s = hm_sim_new(&o);
	/* The faulty: the primary (silent while primary: it proposes nothing
	 * real) and f - 1 backups, f vouchers in all. */
	ASSERT_OK(hm_byz_parse("silent-primary", &byz, err, sizeof(err)), "byzantine options");
	ASSERT_OK(hm_sim_set_byzantine(s, 0, &byz), "silent primary");
	for (uint32_t j = 0; j < f; j++)
		hm_sim_mark_faulty(s, j);
	oplen = hm_kv_encode_put(op, sizeof(op), "forged", "x", 1);
	rlen = hm_msg_build(req, sizeof(req), HM_MSG_REQUEST, 100, 0, 1ull << 40, NULL, op,
			    (uint32_t)oplen, NULL);
	hm_put_be32(batch, 1);
	hm_put_be32(batch + 4, (uint32_t)rlen);
	memcpy(batch + 8, req, rlen);
	hm_digest(batch, 8 + rlen, forged);
	for (uint32_t i = f; i < n; i++) {
		for (uint32_t j = 0; j < f; j++) { /* the f forged vouches */
			mlen = hm_msg_build(msg, sizeof(msg), HM_MSG_VOUCH, j, 0, 0, NULL, batch,
					    (uint32_t)(8 + rlen), NULL);
			stamp_from(s, j, i, msg);
			hm_sim_inject(s, i, j, msg, mlen);
		}
		mlen = hm_msg_build(msg, sizeof(msg), HM_MSG_PRE_PREPARE, 0, 0, 1, NULL, batch,
				    (uint32_t)(8 + rlen), hm_sim_replica_keys(s, 0));
		stamp_from(s, 0, i, msg);
		hm_sim_inject(s, i, 0, msg, mlen);
		ASSERT_EQ(pbft_stats(hm_sim_node(s, i)->core)->batches_held, 1,
			  "the batch is held, not accepted");
	}
	sim_run_and_check(s, 60, "a forged request with f vouches");
	for (uint32_t i = f; i < n; i++) {
		ASSERT_GE(pbft_view(hm_sim_node(s, i)->core), 1, "the view changed");
		for (uint64_t seq = 1; seq <= pbft_last_executed(hm_sim_node(s, i)->core); seq++)
			if (hm_sim_executed_digest(s, i, seq, d))
				ASSERT_TRUE(memcmp(d, forged, HM_DIGEST_LEN) != 0,
					    "the forged batch never executes");
	}
	hm_sim_free(s);
}

HM_TEST(forged_request_with_f_vouches_n4) { forged_request(4); }
HM_TEST(forged_request_with_f_vouches_n7) { forged_request(7); }

/* A VOUCH that names an unknown client, or whose request does not hash to
 * its digest, is refused whole and counted. */
HM_TEST(bad_vouch_refused)
{
	struct hm_sim_opts o;
	struct hm_sim *s;
	uint8_t op[64], req[256], batch[300], msg[512];
	size_t oplen, rlen, mlen;

	default_opts(&o, 4);
	s = hm_sim_new(&o);
	oplen = hm_kv_encode_put(op, sizeof(op), "k", "v", 1);
	rlen = hm_msg_build(req, sizeof(req), HM_MSG_REQUEST, 999, 0, 1, NULL, op,
			    (uint32_t)oplen, NULL);
	hm_put_be32(batch, 1);
	hm_put_be32(batch + 4, (uint32_t)rlen);
	memcpy(batch + 8, req, rlen);
	mlen = hm_msg_build(msg, sizeof(msg), HM_MSG_VOUCH, 1, 0, 0, NULL, batch,
			    (uint32_t)(8 + rlen), NULL);
	stamp_from(s, 1, 0, msg);
	hm_sim_inject(s, 0, 1, msg, mlen);
	ASSERT_EQ(pbft_stats(hm_sim_node(s, 0)->core)->bad_vouches, 1, "unknown client");
	/* Client 100, but the payload no longer hashes to the digest. */
	rlen = hm_msg_build(req, sizeof(req), HM_MSG_REQUEST, 100, 0, 1, NULL, op,
			    (uint32_t)oplen, NULL);
	req[rlen - 1] ^= 1;
	memcpy(batch + 8, req, rlen);
	mlen = hm_msg_build(msg, sizeof(msg), HM_MSG_VOUCH, 1, 0, 0, NULL, batch,
			    (uint32_t)(8 + rlen), NULL);
	stamp_from(s, 1, 0, msg);
	hm_sim_inject(s, 0, 1, msg, mlen);
	ASSERT_EQ(pbft_stats(hm_sim_node(s, 0)->core)->bad_vouches, 2, "bad digest");
	sim_run_and_check(s, 30, "after two bad vouches");
	hm_sim_free(s);
}


