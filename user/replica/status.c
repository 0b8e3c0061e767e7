// SPDX-License-Identifier: MIT
/* Replica status as JSON (see status.h). */
#include "replica/status.h"

#include <sodium.h>

#include "common/wire.h"

json_t *hm_drops_json(const uint64_t drops[HM_DROP_REASON_MAX])
{
	json_t *o = json_object();

	for (int r = 0; r < HM_DROP_REASON_MAX; r++)
		if (drops[r])
			json_object_set_new(o, hm_drop_reason_name(r), json_integer((json_int_t)drops[r]));
	return o;
}

static json_t *peer_json(const struct hm_peer_stats *st)
{
	return json_pack("{s:I, s:I, s:o}", "accepted", (json_int_t)st->accepted, "last_seen_us",
			 (json_int_t)st->last_seen_us, "drops", hm_drops_json(st->drops));
}

static json_t *core_json(const struct pbft_stats *s)
{
	const struct { const char *name; uint64_t v; } fields[] = {
		{ "requests_received", s->requests_received },
		{ "batches_proposed", s->batches_proposed },
		{ "batches_executed", s->batches_executed },
		{ "ops_executed", s->ops_executed },
		{ "replies_resent", s->replies_resent },
		{ "refusals_sent", s->refusals_sent },
		{ "reply_batches_signed", s->reply_batches_signed },
		{ "conflicting_requests", s->conflicting_requests },
		{ "stale_requests", s->stale_requests },
		{ "bad_client_signatures", s->bad_client_signatures },
		{ "vouches_sent", s->vouches_sent },
		{ "requests_vouched", s->requests_vouched },
		{ "requests_by_vouches", s->requests_by_vouches },
		{ "batches_held", s->batches_held },
		{ "bad_vouches", s->bad_vouches },
		{ "checkpoints_stable", s->checkpoints_stable },
		{ "checkpoint_mismatches", s->checkpoint_mismatches },
		{ "equivocations", s->equivocations },
		{ "retransmissions", s->retransmissions },
		{ "help_sent", s->help_sent },
		{ "service_refused", s->service_refused },
		{ "view_changes_started", s->view_changes_started },
		{ "view_changes_installed", s->view_changes_installed },
		{ "view_changes_refused", s->view_changes_refused },
		{ "new_views_refused", s->new_views_refused },
		{ "view_catchups_started", s->view_catchups_started },
		{ "view_catchups_done", s->view_catchups_done },
		{ "view_catchup_timeouts", s->view_catchup_timeouts },
		{ "bad_vote_signatures", s->bad_vote_signatures },
		{ "certs_incomplete", s->certs_incomplete },
		{ "batches_fetched", s->batches_fetched },
		{ "certs_waiting", s->certs_waiting },
		{ "proven_faulty", s->proven_faulty },
	};
	json_t *o = json_object();

	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		json_object_set_new(o, fields[i].name, json_integer((json_int_t)fields[i].v));
	return o;
}

/* The link layer (common/link_crypt.h): what is on, what was sent so, and
 * the link refusals (also in drops, by reason). */
static json_t *link_json(const struct hm_node *nd)
{
	return json_pack("{s:b, s:b, s:I, s:I, s:I}", "encryption", nd->link.encrypt,
			 "compression", nd->link.compress, "sealed", (json_int_t)nd->link_sealed,
			 "compressed", (json_int_t)nd->link_compressed, "refused",
			 (json_int_t)nd->link_refused);
}

json_t *hm_status_json(const struct hm_node *nd, const char *dataplane)
{
	uint8_t digest[HM_DIGEST_LEN];
	char hex[2 * HM_DIGEST_LEN + 1];
	json_t *peers = json_object(), *totals = json_object();

	pbft_state_digest(nd->core, digest);
	sodium_bin2hex(hex, sizeof(hex), digest, sizeof(digest));
	for (uint32_t i = 0; i < nd->n; i++) {
		char key[16];

		if (i == nd->id)
			continue;
		snprintf(key, sizeof(key), "%u", i);
		json_object_set_new(peers, key, peer_json(&nd->replica_stats[i]));
	}
	json_object_set_new(peers, "clients", peer_json(&nd->client_stats));
	json_object_set_new(peers, "unknown", peer_json(&nd->unknown_stats));
	for (int r = 0; r < HM_DROP_REASON_MAX; r++)
		json_object_set_new(totals, hm_drop_reason_name(r),
				    json_integer((json_int_t)hm_node_drops(nd, r)));
	return json_pack("{s:i, s:s, s:I, s:i, s:I, s:I, s:I, s:s, s:o, s:o, s:o, s:I, s:o}",
			 "id", (int)nd->id, "dataplane", dataplane,
			 "view", (json_int_t)pbft_view(nd->core),
			 "primary", (int)pbft_primary(nd->core, pbft_view(nd->core)),
			 "low_watermark", (json_int_t)pbft_low_watermark(nd->core),
			 "high_watermark", (json_int_t)nd->high,
			 "last_executed", (json_int_t)pbft_last_executed(nd->core),
			 "state_digest", hex, "core", core_json(pbft_stats(nd->core)),
			 "drops", totals, "peers", peers,
			 "replies_unroutable", (json_int_t)nd->replies_unroutable,
			 "link", link_json(nd));
}
