// SPDX-License-Identifier: MIT
/* The daemon's fault detector (user/detector.c) on socket-mode replicas in
 * the simulator: real keys, MACs and vote counting; a replica equivocates,
 * signs badly or crashes, and the detector on replica 0 decides. */
#include <sodium.h>

#include "detector.h"
#include "hm_test.h"
#include "sim.h"
#include "wire.h"

#define SEC 1000000ull

static struct hm_sim *new_sim(uint32_t ops)
{
	struct hm_sim_opts o;

	hm_sim_default_opts(&o);
	o.ops_per_client = ops;
	return hm_sim_new(&o);
}

/* A COMMIT from `from` to replica 0 for the top of 0's window, signed with
 * from's key and MACed on the link: what a Byzantine replica can send. */
static void commit_from(struct hm_sim *s, uint32_t from, uint8_t fill, bool bad_sig)
{
	struct hm_node *nd = hm_sim_node(s, 0);
	uint8_t buf[HM_HDR_LEN], digest[HM_DIGEST_LEN];

	memset(digest, fill, sizeof(digest));
	hm_msg_build(buf, sizeof(buf), HM_MSG_COMMIT, from, nd->view, nd->high, digest, NULL, 0,
		     hm_sim_replica_keys(s, from));
	if (bad_sig)
		buf[HM_OFF_SIG + 63] |= 0xf0;
	hm_mac_stamp((struct hm_hdr *)buf, nd->links[from].rx);
	hm_sim_inject(s, 0, from, buf, sizeof(buf));
}

HM_TEST(equivocation_blocks_then_expires)
{
	struct hm_sim *s = new_sim(20);
	struct hm_node *nd = hm_sim_node(s, 0);
	const struct hm_decision *dec;
	static struct hm_detector d;
	uint64_t before, t;

	ASSERT_TRUE(hm_sim_run(s, 60 * SEC), "the cluster runs");
	hm_detector_init(&d, hm_sim_config(s), nd, NULL, hm_sim_now(s));
	t = hm_sim_now(s) + SEC;
	hm_detector_step(&d, t);
	ASSERT_EQ(hm_policy_blocked(&d.policy), 0, "honest cluster: nobody blocked");
	ASSERT_TRUE(nd->quorums > 0, "quorum events counted");
	ASSERT_TRUE(nd->replica_stats[1].in_quorum > 0, "participation counted");

	commit_from(s, 3, 0xaa, false);
	commit_from(s, 3, 0xbb, false);
	ASSERT_EQ(nd->replica_stats[3].equivocations, 1, "the vote counter caught it");
	hm_detector_step(&d, t += SEC);
	ASSERT_EQ(hm_policy_blocked(&d.policy), 1 << 3, "replica 3 blocked");
	ASSERT_EQ(nd->blocked, 1 << 3, "in the node's pre-filter");
	dec = hm_policy_decision(&d.policy, 0);
	if (ASSERT_TRUE(dec != NULL, "a decision")) {
		ASSERT_EQ(dec->offence, HM_OFFENCE_EQUIVOCATION, "equivocation");
		ASSERT_STRCONTAINS(dec->evidence, "COMMIT view", "evidence names the slot");
		ASSERT_STRCONTAINS(dec->evidence, "aaaaaaaa", "first digest");
		ASSERT_STRCONTAINS(dec->evidence, "bbbbbbbb", "second digest");
	}
	if (ASSERT_TRUE(nd->replica_stats[3].has_proof, "both signed votes kept")) {
		uint32_t culprit = 99;

		ASSERT_EQ(hm_evidence_check(nd->replica_stats[3].proof, HM_EVIDENCE_LEN, nd->n,
					    (const uint8_t(*)[HM_PUBKEY_LEN])nd->replica_keys,
					    &culprit, NULL, NULL, NULL), HM_EVIDENCE_OK,
			  "a proof any replica can check");
		ASSERT_EQ(culprit, 3, "naming replica 3");
		ASSERT_STRCONTAINS(dec->evidence, "transferable proof kept", "said in the evidence");
	}
	ASSERT_TRUE(d.rep.peer[3].indicators & HM_IND_CONTRADICTION, "indicator");
	ASSERT_TRUE(d.rep.peer[3].reputation < 0.9, "reputation charged");

	before = nd->replica_stats[3].drops[HM_DROP_BLOCKED];
	commit_from(s, 3, 0xcc, false);
	ASSERT_EQ(nd->replica_stats[3].drops[HM_DROP_BLOCKED], before + 1, "its packets dropped");
	hm_detector_step(&d, t += SEC);
	ASSERT_EQ(d.policy.blocks, 1, "no new decision from dropped packets");

	/* the 2f+1 floor: replica 2 equivocates too, but is not blocked */
	commit_from(s, 2, 0x11, false);
	commit_from(s, 2, 0x22, false);
	hm_detector_step(&d, t += SEC);
	ASSERT_EQ(hm_policy_blocked(&d.policy), 1 << 3, "only replica 3");
	ASSERT_EQ(d.policy.refusals, 1, "replica 2 refused");

	/* cooldown (60 s by default) over: let back in */
	hm_detector_step(&d, t += 61 * SEC);
	ASSERT_EQ(nd->blocked, 0, "replica 3 let back in");
	before = nd->replica_stats[3].drops[HM_DROP_BLOCKED];
	commit_from(s, 3, 0xdd, false);
	ASSERT_EQ(nd->replica_stats[3].drops[HM_DROP_BLOCKED], before, "its packets pass again");
	hm_sim_free(s);
}

HM_TEST(bad_signature_and_lift)
{
	struct hm_sim *s = new_sim(10);
	struct hm_node *nd = hm_sim_node(s, 0);
	static struct hm_detector d;
	char err[128];
	uint64_t t;

	ASSERT_TRUE(hm_sim_run(s, 60 * SEC), "the cluster runs");
	hm_detector_init(&d, hm_sim_config(s), nd, NULL, hm_sim_now(s));
	t = hm_sim_now(s);
	commit_from(s, 1, 0x55, true);
	ASSERT_EQ(nd->replica_stats[1].drops[HM_DROP_NONCANONICAL_SIG], 1, "refused by the pre-filter");
	hm_detector_step(&d, t += SEC);
	ASSERT_EQ(nd->blocked, 1 << 1, "blocked for a bad signature under a good MAC");
	ASSERT_EQ(hm_policy_decision(&d.policy, 0)->offence, HM_OFFENCE_BAD_SIGNATURE, "offence");
	ASSERT_EQ(hm_detector_lift(&d, 1, t, err, sizeof(err)), 0, "lift");
	ASSERT_EQ(nd->blocked, 0, "lifted in the pre-filter at once");
	ASSERT_EQ(hm_detector_lift(&d, 1, t, err, sizeof(err)), -1, "not blocked any more");
	ASSERT_STRCONTAINS(err, "not blocked", "says why");
	ASSERT_EQ(hm_detector_lift(&d, 9, t, err, sizeof(err)), -1, "no replica 9");
	hm_sim_free(s);
}

HM_TEST(crashed_replica_loses_reputation_unblocked)
{
	struct hm_sim *s = new_sim(1000000); /* busy for the whole run */
	struct hm_node *nd = hm_sim_node(s, 0);
	static struct hm_detector d;
	struct hm_replica_metrics m;
	uint64_t t;

	hm_detector_init(&d, hm_sim_config(s), nd, NULL, hm_sim_now(s));
	/* judge every 250 ms of virtual time; replica 2 stops after 0.5 s */
	for (t = 250000; t <= 3 * SEC; t += 250000) {
		if (t == SEC / 2)
			hm_sim_crash(s, 2);
		hm_sim_run(s, t);
		hm_detector_step(&d, t);
	}
	ASSERT_TRUE(hm_sim_completed(s) > 100, "the others kept serving");
	ASSERT_TRUE(d.rep.peer[2].reputation < d.rep.peer[1].reputation - 0.1,
		    "the silent replica lost reputation");
	ASSERT_TRUE(d.rep.peer[2].indicators & HM_IND_TIMING, "timing indicator");
	ASSERT_EQ(hm_policy_blocked(&d.policy), 0, "and is not blocked");
	ASSERT_EQ(hm_policy_decisions(&d.policy), 0, "no decision at all");
	hm_detector_metrics(&d, &m);
	ASSERT_EQ(m.connected >> 2 & 1, 0, "not connected in the matrix");
	ASSERT_EQ(m.connected >> 1 & 1, 1, "replica 1 connected");
	ASSERT_TRUE(m.rounds > 0 && m.rounds_per_second >= 0, "rounds");
	ASSERT_TRUE(m.latency_count > 0 && m.latency_avg_seconds > 0, "consensus latency measured");
	hm_sim_free(s);
}
