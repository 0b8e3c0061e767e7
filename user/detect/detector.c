// SPDX-License-Identifier: MIT
/* The daemon's fault detector (see detector.h). */
#include "detect/detector.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"
#include "common/wire.h"

/* Silence that makes a peer down: a live replica in an idle group still
 * sends a STATUS every PBFT_IDLE_STATUS_ROUNDS (5) retransmit intervals
 * (timeout_ms / 2 each), so three of those missed, and never less than
 * three judge steps. */
static uint64_t peer_down_after_us(const struct hm_config *cfg)
{
	uint64_t idle_status_ms = 5 * (cfg->timeout_ms / 2 ? cfg->timeout_ms / 2 : 1);
	uint64_t ms = 3 * idle_status_ms;

	if (ms < 3 * (uint64_t)cfg->judge_interval_ms)
		ms = 3 * (uint64_t)cfg->judge_interval_ms;
	return ms * 1000;
}

void hm_detector_init(struct hm_detector *d, const struct hm_config *cfg, struct hm_node *node,
		      struct hm_xdp_dp *dp, uint64_t now_us)
{
	memset(d, 0, sizeof(*d));
	d->cfg = cfg;
	d->node = node;
	d->dp = dp;
	hm_reputation_init(&d->rep, node->n, node->id);
	d->rep.low_threshold = cfg->reputation_threshold;
	d->rep.anomalies = cfg->anomaly_detection;
	hm_trust_init(&d->trust, node->n);
	if (!cfg->detection_enabled || !cfg->anomaly_detection || !cfg->statistical_analysis)
		hm_log_kv(HM_LOG_WARN, "fault detection reduced by configuration", "enabled",
			  cfg->detection_enabled ? "true" : "false", "anomaly_detection",
			  cfg->anomaly_detection ? "true" : "false", "statistical_analysis",
			  cfg->statistical_analysis ? "true" : "false", NULL);
	hm_policy_init(&d->policy, node->n, node->f, node->id,
		       (uint64_t)cfg->block_cooldown_s * 1000000,
		       (uint64_t)cfg->block_max_cooldown_s * 1000000);
	d->started_us = d->last_us = now_us;
	d->prev_view = pbft_view(node->core);
	for (uint32_t i = 0; i < HM_MAX_REPLICAS; i++)
		hm_peer_health_init(&d->health[i], now_us);
	d->down_after_us = peer_down_after_us(cfg);
	/* An adopted program's map may hold blocks of an earlier run: they
	 * are in no decision log here, so nobody could list or lift them. */
	for (uint32_t i = 0; dp && i < node->n; i++)
		if (hm_xdp_dp_unblock(dp, i) < 0)
			hm_warn("policy: cannot clear hm_blocklist entry %u", i);
}

/* ---- sampling ------------------------------------------------------------ */

static bool kernel_stats(struct hm_detector *d, uint32_t i, struct hm_node_stats *st)
{
	return d->dp && hm_xdp_dp_node_stats(d->dp, i, st) == 0;
}

static uint64_t drops_sum(const uint64_t *drops)
{
	uint64_t s = 0;

	/* duplicates are absorbed retransmissions, blocked drops are ours */
	for (int r = 0; r < HM_DROP_REASON_MAX; r++)
		if (r != HM_DROP_DUPLICATE && r != HM_DROP_BLOCKED)
			s += drops[r];
	return s;
}

/* Proofs: equivocations (vote counter events in either mode, the core's
 * conflicting PRE-PREPAREs and checkpoints) and signatures that failed
 * after the link MAC verified (non-canonical S, or a failed verification). */
static uint64_t proven_equivocations(const struct hm_detector *d, uint32_t i)
{
	const struct hm_peer_stats *ps = &d->node->replica_stats[i];

	/* the socket counter's equivocations are drops of the node too; the
	 * kernel's (xdp mode) reach the node only as events */
	return ps->drops[HM_DROP_EQUIVOCATION] + (d->dp ? ps->equivocations : 0);
}

static uint64_t proven_bad_signatures(struct hm_detector *d, uint32_t i)
{
	const struct hm_peer_stats *ps = &d->node->replica_stats[i];
	struct hm_node_stats st;
	uint64_t n = ps->drops[HM_DROP_BAD_SIGNATURE] + ps->drops[HM_DROP_NONCANONICAL_SIG];

	if (kernel_stats(d, i, &st))
		n += hm_drops(st.drops)[HM_DROP_NONCANONICAL_SIG];
	return n;
}

static void sample_peer(struct hm_detector *d, uint32_t i, struct hm_peer_sample *s)
{
	const struct hm_peer_stats *ps = &d->node->replica_stats[i];
	struct hm_node_stats st;

	*s = (struct hm_peer_sample){
		.messages = ps->accepted,
		.faults = drops_sum(ps->drops),
		.invalid_signatures = proven_bad_signatures(d, i),
		.timing_violations = ps->drops[HM_DROP_RATE_LIMITED],
		.contradictions = proven_equivocations(d, i),
		.partitions = d->dp ? d->dp->partitions[i] : 0,
		.in_quorum = ps->in_quorum,
		.last_seen_us = ps->last_seen_us,
	};
	if (kernel_stats(d, i, &st)) {
		/* what XDP accepted (votes never reach us) */
		uint64_t kdrops = 0, kseen = st.last_activity_timestamp / 1000;

		for (int r = 0; r < HM_DROP_REASON_MAX; r++)
			kdrops += hm_drops(st.drops)[r];
		s->messages = st.total_messages > kdrops ? st.total_messages - kdrops : 0;
		s->faults += drops_sum((const uint64_t *)&st.drops);
		s->timing_violations += st.timing_violations;
		if (kseen > s->last_seen_us)
			s->last_seen_us = kseen;
	}
}

/* ---- decisions ----------------------------------------------------------- */

static void hex8(char *out, const uint8_t *b)
{
	sodium_bin2hex(out, 17, b, 8);
}

static void equivocation_evidence(const struct hm_detector *d, uint32_t i, uint64_t count,
				  char *out, size_t cap)
{
	const struct hm_vote_event *ev = &d->node->replica_stats[i].last_equivocation;
	char a[17], b[17];

	if (ev->kind != HM_EV_EQUIVOCATION) {
		snprintf(out, cap, "%llu conflicting messages refused by the core (PRE-PREPARE or "
			 "CHECKPOINT contradicting an earlier one)", (unsigned long long)count);
		return;
	}
	hex8(a, ev->digest);
	hex8(b, ev->digest2);
	if (d->node->replica_stats[i].has_proof) {
		uint32_t culprit = HM_MAX_REPLICAS;
		enum hm_evidence_error e = hm_evidence_check(
			d->node->replica_stats[i].proof, HM_EVIDENCE_LEN, d->node->n,
			(const uint8_t(*)[HM_PUBKEY_LEN])d->node->replica_keys, &culprit, NULL, NULL,
			NULL);

		snprintf(out, cap, "%s view %llu seq %llu: signed digests %s.. and %s.. (both "
			 "signatures %s; %llu equivocating messages so far)",
			 ev->phase == HM_PHASE_PREPARE ? "PREPARE" : "COMMIT",
			 (unsigned long long)ev->view, (unsigned long long)ev->seq, a, b,
			 e == HM_EVIDENCE_OK && culprit == i ? "verified: transferable proof kept"
							      : hm_evidence_error_name(e),
			 (unsigned long long)count);
		return;
	}
	snprintf(out, cap, "%s view %llu seq %llu: signed digests %s.. and %s.. (link MAC "
		 "verified on both; %llu equivocating messages so far)",
		 ev->phase == HM_PHASE_PREPARE ? "PREPARE" : "COMMIT", (unsigned long long)ev->view,
		 (unsigned long long)ev->seq, a, b, (unsigned long long)count);
}

/* One line per decision: the peer, the evidence kind (offence), the
 * cooldown and the evidence itself. */
static void log_decision(const struct hm_decision *dec)
{
	if (!dec)
		return;
	if (dec->kind == HM_DECIDE_REFUSED)
		hm_log_kv(HM_LOG_WARN, "policy: proven but NOT blocked: it would leave fewer than "
			  "2f+1 replicas unblocked", "peer", HM_KV_U(dec->replica), "offence",
			  hm_offence_name(dec->offence), "strike", HM_KV_U(dec->strikes), "evidence",
			  dec->evidence, NULL);
	else
		hm_log_kv(HM_LOG_WARN, dec->kind == HM_DECIDE_BLOCK ? "policy: peer blocked"
								      : "policy: block extended",
			  "peer", HM_KV_U(dec->replica), "offence", hm_offence_name(dec->offence),
			  "strike", HM_KV_U(dec->strikes), "cooldown_s",
			  HM_KV_U((dec->until_us - dec->at_us) / 1000000), "evidence", dec->evidence,
			  NULL);
}

/* Whether the equivocation at (type, view, seq) was already acted on; if
 * not, it is now.  A zero type is a contradiction with no slot known (the
 * core's PRE-PREPARE or CHECKPOINT): always new. */
static bool already_acted(struct hm_detector *d, uint32_t i, uint8_t type, uint64_t view,
			  uint64_t seq)
{
	struct hm_acted_slot *a = &d->acted[i];

	if (!type)
		return false;
	if (a->set && a->type == type && a->view == view && a->seq == seq)
		return true;
	*a = (struct hm_acted_slot){ .set = true, .type = type, .view = view, .seq = seq };
	return false;
}

/* The slot of our own latest catch (vote counters only). */
static uint8_t own_slot(const struct hm_detector *d, uint32_t i, uint64_t *view, uint64_t *seq)
{
	const struct hm_vote_event *ev = &d->node->replica_stats[i].last_equivocation;

	if (ev->kind != HM_EV_EQUIVOCATION)
		return 0;
	*view = ev->view;
	*seq = ev->seq;
	return ev->phase == HM_PHASE_PREPARE ? HM_MSG_PREPARE : HM_MSG_COMMIT;
}

/* A proof another replica sent us (the node checked it on receipt). */
static void proof_evidence(const struct hm_detector *d, uint32_t i, uint8_t *type, uint64_t *view,
			   uint64_t *seq, char *out, size_t cap)
{
	const struct hm_peer_stats *ps = &d->node->replica_stats[i];
	const uint8_t *a = ps->received_proof + 8, *b = a + HM_EVIDENCE_RECORD;
	char x[17], y[17];

	*type = a[5];
	*view = hm_get_be64(a + HM_OFF_VIEW);
	*seq = hm_get_be64(a + HM_OFF_SEQ);
	hex8(x, a + HM_OFF_DIGEST);
	hex8(y, b + HM_OFF_DIGEST);
	snprintf(out, cap, "%s view %llu seq %llu: signed digests %s.. and %s.. (proof sent by "
		 "replica %u, both signatures verified here; %llu proofs received)",
		 *type == HM_MSG_PRE_PREPARE ? "PRE-PREPARE" : *type == HM_MSG_PREPARE ? "PREPARE"
											: "COMMIT",
		 (unsigned long long)*view, (unsigned long long)*seq, x, y, ps->received_from,
		 (unsigned long long)ps->proofs_received);
}

/* Proofs other replicas sent us that did not check: logged, per sender. */
static void note_refused_proofs(struct hm_detector *d, uint32_t i)
{
	const struct hm_peer_stats *ps = &d->node->replica_stats[i];

	if (ps->proofs_refused > d->refusals_seen[i])
		hm_warn("evidence: refused %llu proof(s) from replica %u (latest: %s); nobody "
			"blocked for them", (unsigned long long)(ps->proofs_refused -
								 d->refusals_seen[i]),
			i, hm_evidence_error_name((enum hm_evidence_error)ps->last_refusal));
	d->refusals_seen[i] = ps->proofs_refused;
}

/* Our own catch first: when a proof of the same equivocation arrived in
 * the same step, the decision names what we saw ourselves. */
static void judge_equivocations(struct hm_detector *d, uint32_t i, uint64_t now_us)
{
	const struct hm_peer_stats *ps = &d->node->replica_stats[i];
	uint64_t eq = proven_equivocations(d, i), view = 0, seq = 0;
	char ev[HM_EVIDENCE_TEXT];
	uint8_t type;

	if (eq > d->equivocations_seen[i]) {
		type = own_slot(d, i, &view, &seq);
		if (!already_acted(d, i, type, view, seq)) {
			equivocation_evidence(d, i, eq, ev, sizeof(ev));
			log_decision(hm_policy_offence(&d->policy, i, HM_OFFENCE_EQUIVOCATION, ev,
						       now_us));
		}
	}
	d->equivocations_seen[i] = eq;
	if (ps->proofs_received > d->proofs_seen[i]) {
		proof_evidence(d, i, &type, &view, &seq, ev, sizeof(ev));
		if (already_acted(d, i, type, view, seq))
			hm_info("evidence: proof from replica %u against replica %u: already acted "
				"on (%s view %llu seq %llu)", ps->received_from, i,
				hm_msg_type_name(type), (unsigned long long)view,
				(unsigned long long)seq);
		else
			log_decision(hm_policy_offence(&d->policy, i, HM_OFFENCE_PROOF, ev, now_us));
	}
	d->proofs_seen[i] = ps->proofs_received;
}

/* fault_detection.enabled: false: proofs are still counted (status,
 * metrics) and logged, but no block is decided on them. */
static void note_proofs_unjudged(struct hm_detector *d)
{
	for (uint32_t i = 0; i < d->node->n; i++) {
		uint64_t eq = proven_equivocations(d, i), bs = proven_bad_signatures(d, i);
		uint64_t all = eq + bs + d->node->replica_stats[i].proofs_received;

		if (i != d->node->id && all > d->proofs_noted[i])
			hm_log_kv(HM_LOG_WARN, "proof of misbehaviour NOT acted on: "
				  "byzantine_config.fault_detection.enabled is false", "peer",
				  HM_KV_U(i), "equivocations", HM_KV_U(eq), "bad_signatures",
				  HM_KV_U(bs), NULL);
		d->proofs_noted[i] = all;
	}
}

static void judge_proofs(struct hm_detector *d, uint64_t now_us)
{
	if (!d->cfg->detection_enabled) {
		note_proofs_unjudged(d);
		return;
	}
	for (uint32_t i = 0; i < d->node->n; i++) {
		uint64_t eq = proven_equivocations(d, i), bs = proven_bad_signatures(d, i);
		char ev[HM_EVIDENCE_TEXT];

		note_refused_proofs(d, i);
		if (i == d->node->id)
			continue;
		if (eq > d->equivocations_seen[i] ||
		    d->node->replica_stats[i].proofs_received > d->proofs_seen[i]) {
			judge_equivocations(d, i, now_us);
		} else if (bs > d->bad_signatures_seen[i]) {
			snprintf(ev, sizeof(ev), "%llu messages whose link MAC verified but whose "
				 "Ed25519 signature did not", (unsigned long long)bs);
			log_decision(hm_policy_offence(&d->policy, i, HM_OFFENCE_BAD_SIGNATURE, ev,
						       now_us));
		}
		d->equivocations_seen[i] = eq;
		d->bad_signatures_seen[i] = bs;
	}
}

static uint64_t mono_ns_of(uint64_t us)
{
	return us * 1000;
}

/* Bring the dataplane in line with the policy's mask. */
static void apply_blocks(struct hm_detector *d)
{
	hm_voters_t want = hm_policy_blocked(&d->policy);

	for (uint32_t i = 0; i < d->node->n; i++) {
		bool on = want >> i & 1, was = d->applied >> i & 1;
		int r = 0;

		if (d->dp && on)
			/* rewritten every step: an extension moves the expiry */
			r = hm_xdp_dp_block(d->dp, i, mono_ns_of(d->policy.peer[i].until_us));
		else if (d->dp && was)
			r = hm_xdp_dp_unblock(d->dp, i);
		if (r < 0 && d->dataplane_errors++ % 100 == 0)
			hm_err("policy: cannot update hm_blocklist for replica %u", i);
		if (was && !on)
			hm_info("policy: replica %u let back in", i);
	}
	d->node->blocked = want;
	d->applied = want;
}

/* ---- rates --------------------------------------------------------------- */

static void update_rates(struct hm_detector *d, uint64_t now_us)
{
	const struct pbft_stats *ps = pbft_stats(d->node->core);
	double dt = now_us > d->last_us ? (double)(now_us - d->last_us) / 1e6 : 0;
	uint64_t accepted = 0, dropped = 0, view = pbft_view(d->node->core);

	for (uint32_t i = 0; i < HM_XDP_NSTATS; i++) {
		struct hm_node_stats st;

		if (kernel_stats(d, i, &st))
			dropped += drops_sum((const uint64_t *)&st.drops);
	}
	for (uint32_t i = 0; i < d->node->n; i++) {
		struct hm_peer_sample s;

		if (i == d->node->id)
			continue;
		sample_peer(d, i, &s);
		accepted += s.messages;
		dropped += drops_sum(d->node->replica_stats[i].drops);
	}
	accepted += d->node->client_stats.accepted;
	dropped += drops_sum(d->node->client_stats.drops) + drops_sum(d->node->unknown_stats.drops);
	if (dt > 0) {
		uint64_t da = accepted - d->prev_accepted, dd = dropped - d->prev_dropped;

		d->rounds_per_second = (double)(ps->batches_executed - d->prev_rounds) / dt;
		d->messages_per_second = (double)da / dt;
		d->loss_rate = da + dd ? (double)dd / (double)(da + dd) : 0;
	}
	if (view != d->prev_view)
		d->view_changes++;
	d->prev_view = view;
	d->prev_rounds = ps->batches_executed;
	d->prev_accepted = accepted;
	d->prev_dropped = dropped;
}

/* What proves peer i Byzantine, or NULL: the policy acted on a proof of
 * it (equivocation, bad signature, a checked proof from another replica),
 * or the core caught it (a signature or certificate only it can have
 * made wrong). */
static const char *proof_of(const struct hm_detector *d, uint32_t i, char *buf, size_t cap)
{
	for (uint64_t k = hm_policy_decisions(&d->policy); k-- > 0;) {
		const struct hm_decision *dec = hm_policy_decision(&d->policy, k);

		if (dec && dec->replica == i && dec->offence) {
			snprintf(buf, cap, "%s", hm_offence_name(dec->offence));
			return buf;
		}
	}
	if (pbft_stats(d->node->core)->proven_faulty >> i & 1) {
		snprintf(buf, cap, "bad signature or certificate caught by the core");
		return buf;
	}
	return NULL;
}

/* Each peer's state (up, slow, down, Byzantine) and a log line with the
 * reason when it changes. */
static void judge_health(struct hm_detector *d, uint64_t now_us)
{
	for (uint32_t i = 0; i < d->node->n; i++) {
		const struct hm_node_statistics *p = &d->rep.peer[i];
		struct hm_peer_health *h = &d->health[i];
		enum hm_peer_state was = h->state;
		struct hm_peer_sample s;
		char proof[64];
		struct hm_peer_facts f;

		if (i == d->node->id)
			continue;
		sample_peer(d, i, &s);
		f = (struct hm_peer_facts){
			.last_seen_us = s.last_seen_us,
			.slow_sign = p->indicators & (HM_IND_TIMING | HM_IND_PARTICIPATION),
			.proof = proof_of(d, i, proof, sizeof(proof)),
		};
		if (!hm_peer_health_step(h, &f, now_us, d->started_us, d->down_after_us))
			continue;
		hm_log_kv(h->state == HM_PEER_UP || h->state == HM_PEER_SLOW ? HM_LOG_INFO : HM_LOG_WARN,
			  h->state == HM_PEER_DOWN ? "peer down"
			  : h->state == HM_PEER_UP ? "peer up"
			  : h->state == HM_PEER_SLOW ? "peer slow" : "peer proven Byzantine",
			  "peer", HM_KV_U(i), "state", hm_peer_state_name(h->state), "was",
			  hm_peer_state_name(was), "reason", h->reason, NULL);
	}
}

/* b - a for a cumulative counter; one that went back started over. */
static uint64_t grew(uint64_t now, uint64_t before)
{
	return now >= before ? now - before : now;
}

/* The trust graph's step: the pairs' agreements since the last step (the
 * node counts them per quorum and stable checkpoint), against each
 * replica's equivocations (caught here or proven to us), which count
 * against every pair it is in: two votes for one slot cannot both match
 * the others'. */
static void feed_trust(struct hm_detector *d, const struct hm_peer_sample *samples,
		       uint64_t now_us)
{
	const struct hm_node *nd = d->node;
	double dt = now_us > d->last_us ? (double)(now_us - d->last_us) / 1e6 : 0;
	uint64_t contra[HM_MAX_REPLICAS] = { 0 };

	for (uint32_t i = 0; i < nd->n; i++) {
		uint64_t total = i == nd->id ? 0
			: samples[i].contradictions + nd->replica_stats[i].proofs_received;

		contra[i] = grew(total, d->contradictions_prev[i]);
		d->contradictions_prev[i] = total;
	}
	hm_trust_decay(&d->trust, dt);
	for (uint32_t a = 0; a < nd->n; a++)
		for (uint32_t b = a + 1; b < nd->n; b++) {
			uint64_t agreed = grew(nd->agreed[a][b], d->agreed_prev[a][b]);

			hm_trust_observe(&d->trust, a, b, agreed, contra[a] + contra[b], dt);
			d->agreed_prev[a][b] = nd->agreed[a][b];
		}
}

void hm_detector_step(struct hm_detector *d, uint64_t now_us)
{
	struct hm_peer_sample samples[HM_MAX_REPLICAS] = { 0 };
	hm_voters_t byz;
	int expired;

	for (uint32_t i = 0; i < d->node->n; i++)
		if (i != d->node->id)
			sample_peer(d, i, &samples[i]);
	byz = hm_reputation_judge(&d->rep, samples, d->node->quorums, now_us);
	feed_trust(d, samples, now_us);
	/* the two-indicator suspicion is the statistical verdict: off with
	 * statistical_analysis or the whole of fault detection */
	if (!d->cfg->statistical_analysis || !d->cfg->detection_enabled)
		byz = 0;
	judge_health(d, now_us);
	/* A down peer trips every statistic (silent, in no quorum, reputation
	 * falling): that is a crash, not a suspicion; its state says down. */
	for (uint32_t i = 0; i < d->node->n; i++)
		if (d->health[i].state == HM_PEER_DOWN)
			byz &= (hm_voters_t)~(1u << i);
	/* one line per peer per change of verdict, not one per step */
	for (uint32_t i = 0; i < d->node->n; i++) {
		const struct hm_node_statistics *p = &d->rep.peer[i];

		if ((byz ^ d->byzantine) >> i & 1)
			hm_log_kv(HM_LOG_INFO, byz >> i & 1
				  ? "peer suspected by the two-indicator rule (never blocked for this alone)"
				  : "peer no longer suspected", "peer", HM_KV_U(i), "indicators",
				  HM_KV_U(__builtin_popcount(p->indicators)), "reputation",
				  HM_KV_F(p->reputation), NULL);
	}
	d->byzantine = byz;
	{ /* the fast path only while every peer is trusted (issue 13) */
		double rep[HM_MAX_REPLICAS] = { 0 };

		for (uint32_t i = 0; i < d->node->n; i++)
			rep[i] = d->rep.peer[i].reputation;
		hm_node_fast_path_trust(d->node, rep);
	}
	/* xdp mode: the score goes into node_stats beside the kernel's own
	 * counters, so `bpftool map dump` shows it too */
	for (uint32_t i = 0; d->dp && i < d->node->n; i++)
		if (i != d->node->id)
			hm_xdp_dp_set_reputation(d->dp, i, d->rep.peer[i].reputation);
	judge_proofs(d, now_us);
	expired = hm_policy_expire(&d->policy, now_us);
	if (expired)
		hm_info("policy: %d block(s) expired", expired);
	apply_blocks(d);
	update_rates(d, now_us);
	d->last_us = now_us;
	d->steps++;
}

int hm_detector_lift(struct hm_detector *d, uint32_t replica, uint64_t now_us, char *err,
		     size_t errlen)
{
	if (replica >= d->node->n) {
		snprintf(err, errlen, "no replica %u (n = %u)", replica, d->node->n);
		return -1;
	}
	if (hm_policy_lift(&d->policy, replica, "operator (hmctl block lift)", now_us) < 0) {
		snprintf(err, errlen, "replica %u is not blocked", replica);
		return -1;
	}
	hm_warn("policy: block on replica %u lifted by the operator", replica);
	apply_blocks(d);
	return 0;
}

/* ---- views ---------------------------------------------------------------- */

void hm_detector_metrics(const struct hm_detector *d, struct hm_replica_metrics *m)
{
	const struct hm_node *nd = d->node;
	const struct pbft_stats *ps = pbft_stats(nd->core);

	memset(m, 0, sizeof(*m));
	m->id = nd->id;
	m->n = nd->n;
	m->f = nd->f;
	m->dataplane = d->dp ? "xdp" : "socket";
	m->view = pbft_view(nd->core);
	m->view_changes = d->view_changes;
	memcpy(m->vc_by_reason, ps->view_changes_by_reason, sizeof(m->vc_by_reason));
	m->vc_started = ps->view_changes_started;
	m->vc_installed = ps->view_changes_installed;
	m->catchups_started = ps->view_catchups_started;
	m->catchups_done = ps->view_catchups_done;
	m->catchup_timeouts = ps->view_catchup_timeouts;
	m->rounds = ps->batches_executed;
	m->ops = ps->ops_executed;
	m->latency_count = nd->latency_count;
	m->latency_sum_seconds = (double)nd->latency_sum_us / 1e6;
	memcpy(m->latency_buckets, nd->latency_buckets, sizeof(m->latency_buckets));
	m->quorums = nd->quorums;
	m->fast_path_enabled = d->cfg->fast_path_enabled;
	m->fast_path_allowed = nd->fast_path_allowed;
	m->fast_path_rounds = ps->fast_commits;
	m->normal_path_rounds = ps->normal_commits;
	m->fast_path_seconds = (double)ps->fast_commit_us / 1e6;
	m->normal_path_seconds = (double)ps->normal_commit_us / 1e6;
	m->batch_size = d->cfg->batching_enabled ? d->cfg->batch_size : 1;
	m->batch_efficiency = ps->batches_executed && m->batch_size
		? (double)ps->ops_executed / (double)ps->batches_executed / m->batch_size : 0;
	m->messages_in = d->prev_accepted;
	m->low_watermark = pbft_low_watermark(nd->core);
	m->high_watermark = nd->high;
	m->last_executed = pbft_last_executed(nd->core);
	m->persist_errors = nd->persist_errors;
	m->persist_degraded = nd->persist_degraded;
	m->persist_failing = nd->persist_failed;
	m->restart_silent = nd->restart_silent;
	m->vote_records_malformed = ps->vote_records_malformed;
	m->request_refusals = ps->refusals_sent;
	m->conflicting_requests = ps->conflicting_requests;
	m->vouches_sent = ps->vouches_sent;
	m->requests_vouched = ps->requests_vouched;
	m->requests_by_vouches = ps->requests_by_vouches;
	m->batches_held = ps->batches_held;
	m->bad_vouches = ps->bad_vouches;
	m->reply_batches_signed = ps->reply_batches_signed;
	m->suspected = d->byzantine;
	for (uint32_t i = 0; i < nd->n; i++)
		m->peer_state[i] = (uint8_t)d->health[i].state;
	for (uint32_t a = 0; a < nd->n; a++)
		for (uint32_t b = 0; b < nd->n; b++)
			m->trust[a][b] = hm_trust_score(&d->trust, a, b);
	m->blocked = hm_policy_blocked(&d->policy);
	m->blocks = d->policy.blocks;
	m->refusals = d->policy.refusals;
	for (uint32_t i = 0; i < nd->n; i++) {
		const struct hm_node_statistics *p = &d->rep.peer[i];
		struct hm_peer_sample s;

		m->reputation[i] = p->reputation;
		m->historical[i] = p->historical;
		m->latency_ms[i] = p->latency_ms;
		m->participation[i] = p->participation;
		m->indicators[i] = p->indicators;
		/* connected: heard from, not silent beyond the group (an idle
		 * cluster is silent as a whole), link up, not blocked */
		if (p->last_seen_us && d->steps && !(p->indicators & (HM_IND_TIMING | HM_IND_PARTITION)) &&
		    !(m->blocked >> i & 1))
			m->connected |= (hm_voters_t)(1u << i);
		if (i == nd->id)
			continue;
		sample_peer((struct hm_detector *)d, i, &s);
		m->accepted[i] = s.messages;
		m->proofs_sent[i] = nd->replica_stats[i].proofs_sent;
		m->proofs_received[i] = nd->replica_stats[i].proofs_received;
		m->proofs_refused[i] = nd->replica_stats[i].proofs_refused;
		for (int r = 0; r < HM_DROP_REASON_MAX; r++)
			m->drops[i][r] = nd->replica_stats[i].drops[r];
	}
	m->accepted[HM_MAX_REPLICAS] = nd->client_stats.accepted;
	m->accepted[HM_MAX_REPLICAS + 1] = nd->unknown_stats.accepted;
	for (int r = 0; r < HM_DROP_REASON_MAX; r++) {
		m->drops[HM_MAX_REPLICAS][r] = nd->client_stats.drops[r];
		m->drops[HM_MAX_REPLICAS + 1][r] = nd->unknown_stats.drops[r];
	}
	/* in xdp mode the kernel's drops add to userspace's: what XDP
	 * dropped never reached the node */
	for (uint32_t i = 0; d->dp && i < HM_XDP_NSTATS; i++) {
		struct hm_node_stats st;

		if ((i < HM_MAX_REPLICAS && i >= nd->n) || !kernel_stats((struct hm_detector *)d, i, &st))
			continue;
		for (int r = 0; r < HM_DROP_REASON_MAX; r++)
			m->drops[i][r] += hm_drops(st.drops)[r];
	}
}

static json_t *indicators_json(uint32_t bits)
{
	json_t *a = json_array();

	for (unsigned k = 0; k < HM_IND_COUNT; k++)
		if (bits >> k & 1)
			json_array_append_new(a, json_string(hm_indicator_name(k)));
	return a;
}

/* The trust graph as an n x n matrix of scores (rows and columns by
 * replica id; the diagonal is 1). */
static json_t *trust_json(const struct hm_trust_graph *g)
{
	json_t *rows = json_array();

	for (uint32_t a = 0; a < g->n; a++) {
		json_t *row = json_array();

		for (uint32_t b = 0; b < g->n; b++)
			json_array_append_new(row, json_real(hm_trust_score(g, a, b)));
		json_array_append_new(rows, row);
	}
	return rows;
}

json_t *hm_detector_json(const struct hm_detector *d, uint64_t now_us)
{
	json_t *peers = json_object(), *byz = json_array(), *blocked = json_array();
	json_t *suspected = json_array(), *down = json_array();

	for (uint32_t i = 0; i < d->node->n; i++) {
		const struct hm_node_statistics *p = &d->rep.peer[i];
		const struct hm_block_state *b = &d->policy.peer[i];
		const struct hm_peer_health *h = &d->health[i];
		char key[16];

		if (i == d->node->id)
			continue;
		snprintf(key, sizeof(key), "%u", i);
		json_object_set_new(peers, key, json_pack(
			"{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:o, s:b, s:b, s:i, s:f}",
			"reputation", p->reputation, "historical", p->historical,
			"latency_ms", p->latency_ms, "participation", p->participation,
			"uptime", p->uptime, "response_accuracy", p->response_accuracy,
			"signature_success", p->signature_success,
			"indicators", indicators_json(p->indicators), "byzantine", p->byzantine,
			"blocked", b->blocked, "strikes", (int)b->strikes,
			"block_remaining_s", b->blocked && b->until_us > now_us
				? (double)(b->until_us - now_us) / 1e6 : 0.0));
		if (d->node->replica_stats[i].has_proof) {
			char hex[2 * HM_EVIDENCE_LEN + 1];

			sodium_bin2hex(hex, sizeof(hex), d->node->replica_stats[i].proof,
				       HM_EVIDENCE_LEN);
			json_object_set_new(json_object_get(peers, key), "equivocation_proof",
					    json_string(hex));
		}
		/* proofs of its equivocations we sent, and received (checked),
		 * and the proofs it sent us that we refused */
		json_object_update_new(json_object_get(peers, key), json_pack(
			"{s:I, s:I, s:I}", "proofs_sent",
			(json_int_t)d->node->replica_stats[i].proofs_sent, "proofs_received",
			(json_int_t)d->node->replica_stats[i].proofs_received, "proofs_refused",
			(json_int_t)d->node->replica_stats[i].proofs_refused));
		json_object_update_new(json_object_get(peers, key), json_pack(
			"{s:s, s:s, s:f}", "state", hm_peer_state_name(h->state), "state_reason",
			h->reason, "state_for_s",
			now_us > h->since_us ? (double)(now_us - h->since_us) / 1e6 : 0.0));
		if (h->state == HM_PEER_BYZANTINE)
			json_array_append_new(byz, json_integer(i));
		if (h->state == HM_PEER_DOWN)
			json_array_append_new(down, json_integer(i));
		if (d->byzantine >> i & 1)
			json_array_append_new(suspected, json_integer(i));
		if (b->blocked)
			json_array_append_new(blocked, json_integer(i));
	}
	json_t *j = json_pack("{s:i, s:I, s:I, s:o, s:o, s:o, s:o, s:o, s:I, s:I, s:f, s:f, s:f}",
			 "judge_interval_ms", (int)d->cfg->judge_interval_ms,
			 "steps", (json_int_t)d->steps,
			 "down_after_ms", (json_int_t)(d->down_after_us / 1000), "peers", peers,
			 "byzantine", byz, "suspected", suspected, "down", down,
			 "blocked", blocked, "blocks", (json_int_t)d->policy.blocks,
			 "refusals", (json_int_t)d->policy.refusals,
			 "rounds_per_second", d->rounds_per_second,
			 "messages_per_second", d->messages_per_second, "loss_rate", d->loss_rate);

	json_object_set_new(j, "trust", trust_json(&d->trust));
	return j;
}

json_t *hm_detector_blocks_json(const struct hm_detector *d, uint64_t now_us)
{
	json_t *list = json_array(), *active = json_array();

	for (uint64_t i = 0; i < hm_policy_decisions(&d->policy); i++) {
		const struct hm_decision *dec = hm_policy_decision(&d->policy, i);

		json_array_append_new(list, json_pack(
			"{s:I, s:s, s:s, s:i, s:i, s:f, s:f, s:s}", "id", (json_int_t)dec->id,
			"decision", hm_decision_name(dec->kind), "offence", hm_offence_name(dec->offence),
			"replica", (int)dec->replica, "strikes", (int)dec->strikes,
			"age_s", (double)(now_us - dec->at_us) / 1e6,
			"cooldown_s", dec->until_us > dec->at_us
				? (double)(dec->until_us - dec->at_us) / 1e6 : 0.0,
			"evidence", dec->evidence));
	}
	for (uint32_t i = 0; i < d->node->n; i++) {
		const struct hm_block_state *b = &d->policy.peer[i];

		if (b->blocked)
			json_array_append_new(active, json_pack(
				"{s:i, s:i, s:I, s:f}", "replica", (int)i, "strikes", (int)b->strikes,
				"decision", (json_int_t)b->decision, "remaining_s",
				b->until_us > now_us ? (double)(b->until_us - now_us) / 1e6 : 0.0));
	}
	return json_pack("{s:o, s:o}", "blocked", active, "decisions", list);
}
