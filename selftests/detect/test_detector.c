// SPDX-License-Identifier: MIT
/* The daemon's fault detector (user/detect/detector.c) on socket-mode replicas in
 * the simulator: real keys, MACs and vote counting; a replica equivocates,
 * signs badly or crashes, and the detector on replica 0 decides. */
#include <sodium.h>

#include "detect/detector.h"
#include "hm_test.h"
#include "testing/sim.h"
#include "common/wire.h"

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
	ASSERT_TRUE(m.rounds > 0, "rounds");
	ASSERT_TRUE(m.latency_count > 0 && m.latency_sum_seconds > 0, "consensus latency measured");
	ASSERT_NEQ(d.health[2].state, HM_PEER_BYZANTINE, "a crash is not a proof");
	/* past the down bound: down, and it stays down (no flapping) */
	for (; t <= SEC / 2 + d.down_after_us + 2 * SEC; t += 250000) {
		hm_sim_run(s, t);
		hm_detector_step(&d, t);
	}
	ASSERT_EQ(d.health[2].state, HM_PEER_DOWN, "down after down_after_ms of silence");
	for (int i = 0; i < 8; i++, t += 250000) {
		hm_sim_run(s, t);
		hm_detector_step(&d, t);
		ASSERT_EQ(d.health[2].state, HM_PEER_DOWN, "stays down");
	}
	hm_detector_metrics(&d, &m);
	ASSERT_EQ(m.peer_state[2], HM_PEER_DOWN, "down in the metrics");
	ASSERT_EQ(m.suspected >> 2 & 1, 0, "a down peer is not reported as suspected");
	ASSERT_EQ(d.health[1].state, HM_PEER_UP, "the live ones are up");
	hm_sim_free(s);
}

/* ---- equivocation proofs between replicas (HM_MSG_EVIDENCE) ------------ */

/* A COMMIT from `from` to replica `to` only, for the top of to's window. */
static void commit_to(struct hm_sim *s, uint32_t to, uint32_t from, uint8_t fill)
{
	struct hm_node *nd = hm_sim_node(s, to);
	uint8_t buf[HM_HDR_LEN], digest[HM_DIGEST_LEN];

	memset(digest, fill, sizeof(digest));
	hm_msg_build(buf, sizeof(buf), HM_MSG_COMMIT, from, nd->view, nd->high, digest, NULL, 0,
		     hm_sim_replica_keys(s, from));
	hm_mac_stamp((struct hm_hdr *)buf, nd->links[from].rx);
	hm_sim_inject(s, to, from, buf, sizeof(buf));
}

/* An EVIDENCE message from replica `from` to replica `to`, carrying
 * `proof` (plen bytes), signed by `signer`'s key and MACed on the link. */
static void evidence_to(struct hm_sim *s, uint32_t to, uint32_t from, uint32_t signer,
			const uint8_t *proof, size_t plen)
{
	struct hm_node *nd = hm_sim_node(s, to);
	uint8_t buf[HM_HDR_LEN + 2 * HM_EVIDENCE_LEN];
	size_t len = hm_msg_build(buf, sizeof(buf), HM_MSG_EVIDENCE, from, nd->view, 0, NULL, proof,
				  (uint32_t)plen, hm_sim_replica_keys(s, signer));

	hm_mac_stamp((struct hm_hdr *)buf, nd->links[from].rx);
	hm_sim_inject(s, to, from, buf, len);
}

/* Two COMMITs "by" replica `culprit` for one slot, signed with signer's key. */
static void make_proof(struct hm_sim *s, uint8_t proof[HM_EVIDENCE_LEN], uint32_t culprit,
		       uint32_t signer, uint8_t fill1, uint8_t fill2)
{
	uint8_t a[HM_HDR_LEN], b[HM_HDR_LEN], d1[HM_DIGEST_LEN], d2[HM_DIGEST_LEN];

	memset(d1, fill1, sizeof(d1));
	memset(d2, fill2, sizeof(d2));
	hm_msg_build(a, sizeof(a), HM_MSG_COMMIT, culprit, 0, 900, d1, NULL, 0,
		     hm_sim_replica_keys(s, signer));
	hm_msg_build(b, sizeof(b), HM_MSG_COMMIT, culprit, 0, 900, d2, NULL, 0,
		     hm_sim_replica_keys(s, signer));
	hm_evidence_build(proof, HM_EVIDENCE_LEN, a, b);
}

static uint64_t proofs_sent_by(struct hm_node *nd)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < nd->n; i++)
		n += nd->replica_stats[i].proofs_sent;
	return n;
}

/* Replica 3 equivocates towards replica 0 only: 0 catches it and sends the
 * proof once; 1 and 2, which saw nothing, check it and block 3 too
 * (HM_OFFENCE_PROOF), and forward nothing. */
HM_TEST(proof_blocks_on_the_replicas_that_saw_nothing)
{
	struct hm_sim *s = new_sim(20);
	static struct hm_detector d0, d1, d2;
	struct hm_node *n0 = hm_sim_node(s, 0), *n1 = hm_sim_node(s, 1), *n2 = hm_sim_node(s, 2);
	const struct hm_decision *dec;
	uint64_t t;

	ASSERT_TRUE(hm_sim_run(s, 60 * SEC), "the cluster runs");
	t = hm_sim_now(s);
	hm_detector_init(&d0, hm_sim_config(s), n0, NULL, t);
	hm_detector_init(&d1, hm_sim_config(s), n1, NULL, t);
	hm_detector_init(&d2, hm_sim_config(s), n2, NULL, t);
	commit_to(s, 0, 3, 0xaa);
	commit_to(s, 0, 3, 0xbb);
	ASSERT_EQ(n0->replica_stats[3].proofs_sent, 1, "replica 0 sent the proof");
	commit_to(s, 0, 3, 0xcc); /* the same slot again: nothing new to send */
	ASSERT_EQ(n0->replica_stats[3].proofs_sent, 1, "once per slot");
	hm_sim_settle(s, hm_sim_now(s) + SEC);
	ASSERT_EQ(n1->replica_stats[3].equivocations, 0, "replica 1 saw no equivocation itself");
	ASSERT_EQ(n1->replica_stats[3].proofs_received, 1, "but checked the proof");
	ASSERT_EQ(n1->replica_stats[3].received_from, 0, "from replica 0");
	ASSERT_EQ(n1->replica_stats[0].accepted > 0, 1, "accepted from replica 0");
	ASSERT_EQ(n2->replica_stats[3].proofs_received, 1, "replica 2 too");
	ASSERT_EQ(hm_sim_node(s, 3)->replica_stats[3].proofs_received, 0,
		  "the culprit records no proof against itself");
	ASSERT_EQ(proofs_sent_by(n1) + proofs_sent_by(n2), 0, "receivers forward nothing");
	hm_detector_step(&d0, t += SEC);
	hm_detector_step(&d1, t);
	hm_detector_step(&d2, t);
	ASSERT_EQ(n0->blocked, 1 << 3, "the finder blocks 3");
	ASSERT_EQ(n1->blocked, 1 << 3, "replica 1 blocks 3 on the proof");
	ASSERT_EQ(n2->blocked, 1 << 3, "replica 2 blocks 3 on the proof");
	ASSERT_EQ(hm_policy_decision(&d0.policy, 0)->offence, HM_OFFENCE_EQUIVOCATION, "finder: own");
	dec = hm_policy_decision(&d1.policy, 0);
	if (ASSERT_TRUE(dec != NULL, "a decision on replica 1")) {
		ASSERT_EQ(dec->offence, HM_OFFENCE_PROOF, "offence: another replica's proof");
		ASSERT_EQ(dec->replica, 3, "against 3");
		ASSERT_STRCONTAINS(dec->evidence, "proof sent by replica 0", "names the finder");
		ASSERT_STRCONTAINS(dec->evidence, "aaaaaaaa", "first digest");
		ASSERT_STRCONTAINS(dec->evidence, "bbbbbbbb", "second digest");
		ASSERT_EQ(dec->until_us - dec->at_us, d1.policy.base_cooldown_us, "same cooldown");
	}
	{
		struct hm_replica_metrics m;
		struct hm_mtext txt = { 0 };

		hm_detector_metrics(&d1, &m);
		ASSERT_EQ(m.proofs_received[3], 1, "metrics: one proof received against 3");
		hm_detector_metrics(&d0, &m);
		ASSERT_EQ(m.proofs_sent[3], 1, "metrics: one proof sent against 3");
		hm_metrics_render(&txt, &m);
		ASSERT_TRUE(!txt.failed && txt.buf, "rendered");
		if (txt.buf)
			ASSERT_STRCONTAINS(txt.buf,
					   "hypermesh_equivocation_proofs_total{peer=\"3\",kind=\"sent\"} 1",
					   "the metric");
		hm_mtext_free(&txt);
	}
	/* 3's packets are now dropped at 1 too */
	commit_to(s, 1, 3, 0xdd);
	ASSERT_EQ(n1->replica_stats[3].drops[HM_DROP_BLOCKED], 1, "dropped as blocked");
	hm_sim_free(s);
}

/* A replica that caught the equivocation itself and got the proof of it
 * from another: one offence, one strike. */
HM_TEST(own_catch_and_proof_are_one_strike)
{
	struct hm_sim *s = new_sim(20);
	static struct hm_detector d1;
	struct hm_node *n0 = hm_sim_node(s, 0), *n1 = hm_sim_node(s, 1);
	uint64_t t;

	ASSERT_TRUE(hm_sim_run(s, 60 * SEC), "the cluster runs");
	t = hm_sim_now(s);
	hm_detector_init(&d1, hm_sim_config(s), n1, NULL, t);
	ASSERT_EQ(n0->high, n1->high, "one window");
	commit_to(s, 0, 3, 0xaa);
	commit_to(s, 0, 3, 0xbb); /* 0 catches it and sends the proof */
	commit_to(s, 1, 3, 0xaa);
	commit_to(s, 1, 3, 0xbb); /* so does 1 */
	hm_sim_settle(s, hm_sim_now(s) + SEC);
	ASSERT_EQ(n1->replica_stats[3].equivocations, 1, "caught by 1");
	ASSERT_EQ(n1->replica_stats[3].proofs_received, 1, "and proven by 0");
	hm_detector_step(&d1, t += SEC);
	ASSERT_EQ(n1->blocked, 1 << 3, "blocked");
	ASSERT_EQ(hm_policy_decisions(&d1.policy), 1, "one decision");
	ASSERT_EQ(d1.policy.peer[3].strikes, 1, "one strike");
	ASSERT_EQ(hm_policy_decision(&d1.policy, 0)->offence, HM_OFFENCE_EQUIVOCATION,
		  "named after what it saw itself");
	hm_sim_free(s);
}

/* Proofs that do not check block nobody: framed with another key, not
 * conflicting, truncated, from a client, or in a badly signed message. */
HM_TEST(bad_proofs_block_nobody)
{
	struct hm_sim *s = new_sim(20);
	static struct hm_detector d1;
	struct hm_node *n1 = hm_sim_node(s, 1);
	struct hm_peer_stats *from2 = &n1->replica_stats[2];
	uint8_t proof[HM_EVIDENCE_LEN];
	uint64_t t, malformed;

	ASSERT_TRUE(hm_sim_run(s, 60 * SEC), "the cluster runs");
	t = hm_sim_now(s);
	hm_detector_init(&d1, hm_sim_config(s), n1, NULL, t);
	malformed = from2->drops[HM_DROP_MALFORMED];

	make_proof(s, proof, 3, 2, 0xaa, 0xbb); /* 2 frames 3 with its own key */
	evidence_to(s, 1, 2, 2, proof, sizeof(proof));
	ASSERT_EQ(from2->proofs_refused, 1, "forged: refused");
	ASSERT_EQ(from2->last_refusal, HM_EVIDENCE_BAD_SIGNATURE, "a signature does not verify");
	make_proof(s, proof, 3, 3, 0xaa, 0xaa); /* 3's real signatures, one digest */
	evidence_to(s, 1, 2, 2, proof, sizeof(proof));
	ASSERT_EQ(from2->proofs_refused, 2, "not conflicting: refused");
	ASSERT_EQ(from2->last_refusal, HM_EVIDENCE_NOT_CONFLICTING, "the same digest twice");
	make_proof(s, proof, 3, 3, 0xaa, 0xbb);
	evidence_to(s, 1, 2, 2, proof, sizeof(proof) - 1);
	ASSERT_EQ(from2->last_refusal, HM_EVIDENCE_TRUNCATED, "truncated: refused");
	ASSERT_EQ(from2->drops[HM_DROP_MALFORMED] - malformed, 3, "each counted as a drop");
	/* a good proof in a message whose own signature is 0's, not 2's */
	evidence_to(s, 1, 2, 0, proof, sizeof(proof));
	ASSERT_EQ(from2->drops[HM_DROP_BAD_SIGNATURE], 1, "badly signed message: dropped");
	ASSERT_EQ(n1->replica_stats[3].proofs_received, 0, "none of them recorded");
	hm_detector_step(&d1, t += SEC);
	ASSERT_EQ(n1->blocked & (1 << 3), 0, "3 not blocked on any of them");
	ASSERT_EQ(hm_policy_decisions(&d1.policy) > 0, 1, "(the bad signature is proof against 2)");
	ASSERT_EQ(hm_policy_decision(&d1.policy, 0)->replica, 2, "against the sender only");
	ASSERT_EQ(hm_policy_decision(&d1.policy, 0)->offence, HM_OFFENCE_BAD_SIGNATURE, "offence");
	ASSERT_EQ(hm_detector_lift(&d1, 2, t, (char[64]){ 0 }, 64), 0, "lift");
	/* the same good proof from a client is refused by the pre-filter */
	{
		const struct hm_keypair *ck = hm_sim_client_keys(s, 0);
		uint8_t buf[HM_HDR_LEN + HM_EVIDENCE_LEN];
		uint64_t before = n1->client_stats.drops[HM_DROP_MALFORMED];
		size_t len = hm_msg_build(buf, sizeof(buf), HM_MSG_EVIDENCE, n1->clients[0].id, 0, 0,
					  NULL, proof, sizeof(proof), ck);

		hm_mac_stamp((struct hm_hdr *)buf, n1->clients[0].keys.rx);
		hm_sim_inject(s, 1, n1->n, buf, len);
		ASSERT_EQ(n1->client_stats.drops[HM_DROP_MALFORMED], before + 1, "client: malformed");
	}
	ASSERT_EQ(n1->replica_stats[3].proofs_received, 0, "still none recorded");
	/* and the good one from a replica is */
	evidence_to(s, 1, 2, 2, proof, sizeof(proof));
	ASSERT_EQ(n1->replica_stats[3].proofs_received, 1, "a good proof is recorded");
	evidence_to(s, 1, 2, 2, proof, sizeof(proof));
	ASSERT_EQ(n1->replica_stats[3].proofs_received, 1, "the same proof again is not");
	ASSERT_EQ(from2->drops[HM_DROP_DUPLICATE] > 0, 1, "absorbed as a duplicate");
	hm_detector_step(&d1, t += SEC);
	ASSERT_EQ(n1->blocked, 1 << 3, "and blocks 3");
	ASSERT_EQ(d1.policy.peer[3].strikes, 1, "one strike");
	hm_sim_free(s);
}

/* ---- the trust graph and the fault_detection settings -------------------- */

/* The honest cluster's quorums raise every pair; replica 3's equivocation
 * lowers every pair it is in below the pairs of the correct replicas,
 * in the status JSON and the metrics too. */
HM_TEST(trust_graph_sees_the_equivocator)
{
	struct hm_sim *s = new_sim(20);
	struct hm_node *nd = hm_sim_node(s, 0);
	static struct hm_detector d;
	struct hm_replica_metrics m;
	struct hm_mtext txt = { 0 };
	json_t *j;
	uint64_t t;

	ASSERT_TRUE(hm_sim_run(s, 60 * SEC), "the cluster runs");
	ASSERT_TRUE(nd->agreed[1][2] > 0 && nd->agreed[0][3] > 0, "agreement counted per pair");
	hm_detector_init(&d, hm_sim_config(s), nd, NULL, hm_sim_now(s));
	t = hm_sim_now(s) + SEC;
	hm_detector_step(&d, t);
	ASSERT_TRUE(hm_trust_score(&d.trust, 1, 2) > HM_TRUST_NEUTRAL, "1-2 agreed: above neutral");
	ASSERT_TRUE(hm_trust_score(&d.trust, 0, 3) > HM_TRUST_NEUTRAL, "0-3 agreed: above neutral");
	ASSERT_TRUE(hm_trust_all_above(&d.trust, HM_TRUST_NEUTRAL), "all pairs above neutral");

	commit_from(s, 3, 0xaa, false);
	commit_from(s, 3, 0xbb, false);
	hm_detector_step(&d, t += SEC);
	for (uint32_t x = 0; x < 3; x++)
		for (uint32_t a = 0; a < 3; a++)
			for (uint32_t b = a + 1; b < 3; b++)
				ASSERT_TRUE(hm_trust_score(&d.trust, 3, x) + 0.1 <
					    hm_trust_score(&d.trust, a, b),
					    "every pair with 3 below every correct pair");
	ASSERT_TRUE(hm_trust_score(&d.trust, 3, 1) == hm_trust_score(&d.trust, 1, 3), "symmetric");
	ASSERT_FALSE(hm_trust_all_above(&d.trust, HM_TRUST_NEUTRAL), "not every pair agreed with 3");
	ASSERT_EQ(d.trust.pair[1][3].disagreements, 1, "one contradiction charged");

	j = hm_detector_json(&d, t);
	ASSERT_TRUE(json_real_value(json_array_get(json_array_get(json_object_get(j, "trust"), 3), 1))
		    == hm_trust_score(&d.trust, 3, 1), "status: trust[3][1]");
	json_decref(j);
	hm_detector_metrics(&d, &m);
	hm_metrics_render(&txt, &m);
	if (ASSERT_TRUE(!txt.failed && txt.buf, "rendered"))
		ASSERT_STRCONTAINS(txt.buf, "hypermesh_trust_score{from=\"3\",to=\"1\"} 0.", "the metric");
	hm_mtext_free(&txt);
	hm_sim_free(s);
}

/* enabled: false counts and scores but decides nothing; statistical
 * analysis off means no suspicion; the reputation threshold is the
 * low-reputation indicator's. */
HM_TEST(fault_detection_settings)
{
	struct hm_sim *s = new_sim(20);
	struct hm_node *nd = hm_sim_node(s, 0);
	static struct hm_detector d;
	static struct hm_config cfg;
	uint64_t t;

	ASSERT_TRUE(hm_sim_run(s, 60 * SEC), "the cluster runs");
	cfg = *hm_sim_config(s);
	cfg.detection_enabled = false;
	cfg.reputation_threshold = 0.95;
	cfg.anomaly_detection = false;
	hm_detector_init(&d, &cfg, nd, NULL, hm_sim_now(s));
	ASSERT_TRUE(d.rep.low_threshold == 0.95 && !d.rep.anomalies, "settings reach the rules");
	t = hm_sim_now(s) + SEC;
	hm_detector_step(&d, t);
	commit_from(s, 3, 0xaa, false);
	commit_from(s, 3, 0xbb, false);
	hm_detector_step(&d, t += SEC);
	ASSERT_EQ(nd->replica_stats[3].equivocations, 1, "still caught and counted");
	ASSERT_EQ(hm_policy_blocked(&d.policy), 0, "enabled: false: nobody blocked");
	ASSERT_EQ(d.policy.blocks + d.policy.refusals, 0, "no decision at all");
	ASSERT_TRUE(d.rep.peer[3].indicators & HM_IND_CONTRADICTION, "indicator still shown");
	ASSERT_TRUE(d.rep.peer[3].indicators & HM_IND_LOW_REPUTATION, "0.85 < threshold 0.95");
	ASSERT_EQ(d.byzantine, 0, "no suspicion with detection off");

	/* on again (a new detector, as after a restart with the new file),
	 * with statistical analysis off: the proof blocks, nobody suspected */
	cfg.detection_enabled = true;
	cfg.statistical_analysis = false;
	hm_detector_init(&d, &cfg, nd, NULL, hm_sim_now(s));
	hm_detector_step(&d, t += SEC);
	ASSERT_EQ(hm_policy_blocked(&d.policy), 1 << 3, "a proof blocks");
	ASSERT_TRUE(d.rep.peer[3].byzantine, "two indicators: the rule would suspect it");
	ASSERT_EQ(d.byzantine, 0, "statistical_analysis: false: no suspicion");
	hm_sim_free(s);
}
