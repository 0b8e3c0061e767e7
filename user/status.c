// SPDX-License-Identifier: MIT
/* Replica status as JSON (see status.h). */
#include "status.h"

#include <sodium.h>

#include "wire.h"

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
	return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}",
			 "requests_received", (json_int_t)s->requests_received,
			 "batches_proposed", (json_int_t)s->batches_proposed,
			 "batches_executed", (json_int_t)s->batches_executed,
			 "ops_executed", (json_int_t)s->ops_executed,
			 "replies_resent", (json_int_t)s->replies_resent,
			 "stale_requests", (json_int_t)s->stale_requests,
			 "bad_client_signatures", (json_int_t)s->bad_client_signatures,
			 "checkpoints_stable", (json_int_t)s->checkpoints_stable,
			 "checkpoint_mismatches", (json_int_t)s->checkpoint_mismatches,
			 "equivocations", (json_int_t)s->equivocations,
			 "retransmissions", (json_int_t)s->retransmissions,
			 "help_sent", (json_int_t)s->help_sent);
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
	return json_pack("{s:i, s:s, s:I, s:i, s:I, s:I, s:I, s:s, s:o, s:o, s:o, s:I}",
			 "id", (int)nd->id, "dataplane", dataplane,
			 "view", (json_int_t)pbft_view(nd->core),
			 "primary", (int)pbft_primary(nd->core, pbft_view(nd->core)),
			 "low_watermark", (json_int_t)pbft_low_watermark(nd->core),
			 "high_watermark", (json_int_t)nd->high,
			 "last_executed", (json_int_t)pbft_last_executed(nd->core),
			 "state_digest", hex, "core", core_json(pbft_stats(nd->core)),
			 "drops", totals, "peers", peers,
			 "replies_unroutable", (json_int_t)nd->replies_unroutable);
}
