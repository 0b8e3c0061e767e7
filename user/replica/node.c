// SPDX-License-Identifier: MIT
/* A replica: pre-filter, vote counter, core, the Ready loop (see node.h). */
#include "replica/node.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "core/persist.h"
#include "core/quorum.h"
#include "common/wire.h"

/* ---- identities ------------------------------------------------------- */

static int client_cmp(const void *a, const void *b)
{
	const struct hm_client_link *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static struct hm_client_link *client_find(const struct hm_node *nd, uint32_t id)
{
	struct hm_client_link key = { .id = id };

	return bsearch(&key, nd->clients, nd->n_clients, sizeof(key), client_cmp);
}

static const uint8_t *client_key(void *ctx, uint32_t id)
{
	struct hm_client_link *c = client_find(ctx, id);

	return c ? c->public_key : NULL;
}

/* The core's read-only view of the vote counter (pbft_params.vote_sigs). */
static int vote_sigs(void *ctx, enum hm_vote_phase phase, uint64_t view, uint64_t seq,
		     hm_voters_t voters, uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN])
{
	struct hm_node *nd = ctx;

	return nd->votes.ops->sigs(nd->votes.state, phase, view, seq, voters, sigs);
}

static int derive_links(struct hm_node *nd)
{
	for (uint32_t i = 0; i < nd->n; i++) {
		memcpy(nd->replica_keys[i], nd->cfg->members[i].public_key, HM_PUBKEY_LEN);
		if (i != nd->id &&
		    (hm_link_keys_derive(nd->id, nd->keys, i, nd->replica_keys[i], &nd->links[i]) < 0 ||
		     hm_link_aead_derive(nd->id, nd->keys, i, nd->replica_keys[i], &nd->aead[i]) < 0))
			return -1;
	}
	nd->n_clients = nd->cfg->n_clients;
	nd->clients = calloc(nd->n_clients ? nd->n_clients : 1, sizeof(*nd->clients));
	if (!nd->clients)
		return -1;
	for (uint32_t i = 0; i < nd->n_clients; i++) {
		struct hm_client_link *c = &nd->clients[i];

		c->id = nd->cfg->clients[i].id;
		c->public_key = nd->cfg->clients[i].public_key;
		if (hm_link_keys_derive(nd->id, nd->keys, c->id, c->public_key, &c->keys) < 0)
			return -1;
	}
	qsort(nd->clients, nd->n_clients, sizeof(*nd->clients), client_cmp);
	return 0;
}

/* The largest message the core may build: a sealed payload grows by
 * HM_SEAL_OVERHEAD on the wire, and the wire must stay within
 * max_message_size (the receive bound, in XDP too). */
static uint32_t core_max_message_size(const struct hm_config *cfg)
{
	return cfg->encryption_required ? cfg->max_message_size - HM_SEAL_OVERHEAD
					: cfg->max_message_size;
}

/* The core's parameters that come from the configuration alone (the
 * rest, keys and callbacks, are the node's). */
static struct pbft_params core_params(const struct hm_config *cfg)
{
	return (struct pbft_params){
		.n = cfg->n_members, .f = cfg->max_faulty_nodes,
		.batch_size = cfg->batching_enabled ? cfg->batch_size : 1,
		.batch_timeout_ms = cfg->batching_enabled ? cfg->batch_timeout_ms : 0,
		.pipeline_depth = cfg->pipeline_depth,
		.checkpoint_interval = cfg->checkpoint_interval,
		.window = cfg->watermark_window,
		.max_message_size = core_max_message_size(cfg),
		.retransmit_ms = cfg->timeout_ms / 2 ? cfg->timeout_ms / 2 : 1,
		.view_change_timeout_ms = cfg->view_change_timeout_ms,
		.fast_path = cfg->fast_path_enabled,
		.fast_path_timeout_ms = cfg->fast_path_timeout_ms,
		.signed_requests = cfg->signed_requests,
	};
}

bool hm_node_config_fits(const struct hm_config *cfg)
{
	struct pbft_params p = core_params(cfg);

	return !p.view_change_timeout_ms || pbft_vc_fits(&p);
}

static int link_init(struct hm_node *nd)
{
	nd->link = (struct hm_link_policy){ .encrypt = nd->cfg->encryption_required,
					    .compress = nd->cfg->message_compression };
	nd->link_tx = malloc(HM_MAX_DATAGRAM + HM_SEAL_OVERHEAD);
	nd->link_rx = malloc(HM_MAX_DATAGRAM);
	if (!nd->link_tx || !nd->link_rx)
		return -1;
	if (nd->link.encrypt || nd->link.compress)
		hm_log_kv(HM_LOG_INFO, "replica links", "encryption",
			  nd->link.encrypt ? "xchacha20-poly1305" : "off", "compression",
			  nd->link.compress ? "zstd" : "off", "fanout_payloads",
			  nd->link.encrypt ? "per link" : "tc", NULL);
	return 0;
}

int hm_node_init(struct hm_node *nd, const struct hm_config *cfg, uint32_t id,
		 const struct hm_keypair *keys, struct hm_service *service,
		 const struct hm_transport *transport)
{
	struct pbft_params p;

	memset(nd, 0, sizeof(*nd));
	nd->cfg = cfg;
	nd->id = id;
	nd->n = cfg->n_members;
	nd->f = cfg->max_faulty_nodes;
	nd->keys = keys;
	nd->transport = *transport;
	if (id >= nd->n || derive_links(nd) < 0 || link_init(nd) < 0)
		goto fail;
	if (hm_quorum_counter_new(&nd->votes, nd->n, nd->f, id, cfg->watermark_window) < 0)
		goto fail;
	p = core_params(cfg);
	p.id = id;
	p.keys = keys;
	p.replica_keys = (const uint8_t(*)[HM_PUBKEY_LEN])nd->replica_keys;
	p.client_key = client_key;
	p.client_key_ctx = nd;
	p.vote_sigs = vote_sigs;
	p.vote_sigs_ctx = nd;
	p.service = service;
	nd->core = pbft_new(&p);
	if (!nd->core)
		goto fail;
	/* attempted from the start; the detector withdraws it when a peer's
	 * reputation falls to the trust threshold (hm_node_fast_path_trust) */
	nd->fast_path_allowed = cfg->fast_path_enabled;
	pbft_set_fast_path_allowed(nd->core, nd->fast_path_allowed);
	nd->high = cfg->watermark_window;
	return 0;
fail:
	hm_node_free(nd);
	return -1;
}

void hm_node_free(struct hm_node *nd)
{
	hm_persist_close(nd->persist);
	nd->persist = NULL;
	free(nd->persist_dir);
	nd->persist_dir = NULL;
	pbft_free(nd->core);
	nd->core = NULL;
	if (nd->votes.ops && nd->votes.ops->destroy)
		nd->votes.ops->destroy(nd->votes.state);
	nd->votes = (struct hm_vote_counter){ 0 };
	free(nd->clients);
	nd->clients = NULL;
	free(nd->link_tx);
	free(nd->link_rx);
	nd->link_tx = nd->link_rx = NULL;
}

/* ---- sending ---------------------------------------------------------- */

static void send_stamped(struct hm_node *nd, uint8_t *buf, size_t len, const uint8_t *key,
			 const struct sockaddr *to, socklen_t tolen)
{
	hm_mac_stamp((struct hm_hdr *)buf, key);
	nd->transport.sendto(nd->transport.ctx, buf, len, to, tolen);
}

/* The core's message as it goes on the link to `to` (common/link_crypt.h):
 * in nd->link_tx, or buf itself when the link layer leaves it alone. */
static uint8_t *link_seal(struct hm_node *nd, uint8_t *buf, size_t *len, uint32_t to)
{
	size_t wire;

	if (*len <= HM_HDR_LEN || (!nd->link.encrypt && !nd->link.compress))
		return buf;
	wire = hm_link_seal(buf, *len, &nd->link, nd->aead[to].tx, nd->link_tx,
			    HM_MAX_DATAGRAM + HM_SEAL_OVERHEAD);
	if (!wire)
		abort(); /* the buffer holds any datagram plus the overhead */
	if (hm_get_be16(nd->link_tx + 6) & HM_FLAG_ENCRYPTED)
		nd->link_sealed++;
	if (hm_get_be16(nd->link_tx + 6) & HM_FLAG_COMPRESSED)
		nd->link_compressed++;
	*len = wire;
	return nd->link_tx;
}

static void send_to_replica(struct hm_node *nd, uint8_t *buf, size_t len, uint32_t to)
{
	const struct hm_member *m = &nd->cfg->members[to];

	buf = link_seal(nd, buf, &len, to);
	if ((nd->egress_stamped >> to & 1) && len <= nd->egress_max_len) /* TC stamps it */
		nd->transport.sendto(nd->transport.ctx, buf, len, (const struct sockaddr *)&m->addr,
				     m->addr_len);
	else
		send_stamped(nd, buf, len, nd->links[to].tx, (const struct sockaddr *)&m->addr,
			     m->addr_len);
}

/* The send hook's emit: it hands us const bytes, the MAC is stamped in
 * place. */
static void hook_emit(void *ctx, const uint8_t *buf, size_t len, uint32_t to)
{
	uint8_t *copy = malloc(len);

	if (!copy)
		abort();
	memcpy(copy, buf, len);
	send_to_replica(ctx, copy, len, to);
	free(copy);
}

static void send_replica_or_hook(struct hm_node *nd, uint8_t *buf, size_t len, uint32_t to)
{
	if (nd->send_hook.outgoing)
		nd->send_hook.outgoing(nd->send_hook.ctx, buf, len, to,
				       pbft_primary(nd->core, pbft_view(nd->core)) == nd->id,
				       nd->now, hook_emit, nd);
	else
		send_to_replica(nd, buf, len, to);
}

/* A payload sealed per link cannot be cloned to every peer: with
 * encryption on, only payload-less messages (the votes) use the fan-out. */
static bool fanout_covers_all(const struct hm_node *nd, size_t len)
{
	hm_voters_t peers = HM_ALL_VOTERS(nd->n) & ~((hm_voters_t)1 << nd->id);

	return !(nd->link.encrypt && len > HM_HDR_LEN) && !nd->send_hook.outgoing && nd->fanout.sin_port && (nd->egress_stamped & peers) == peers &&
	       len <= nd->egress_max_len;
}

static void send_out(struct hm_node *nd, const struct pbft_out *o)
{
	struct hm_client_link *c;

	switch (o->dest) {
	case PBFT_TO_REPLICA:
		send_replica_or_hook(nd, o->buf, o->len, o->to);
		break;
	case PBFT_TO_REPLICAS:
		if (fanout_covers_all(nd, o->len)) {
			/* one send; TC clones it to every peer with its MAC.
			 * Compression alone is the same for every link. */
			size_t len = o->len;
			uint8_t *wire = link_seal(nd, o->buf, &len, nd->id == 0 ? 1 : 0);

			if (len <= nd->egress_max_len) {
				nd->transport.sendto(nd->transport.ctx, wire, len,
						     (const struct sockaddr *)&nd->fanout,
						     sizeof(nd->fanout));
				break;
			}
		}
		for (uint32_t i = 0; i < nd->n; i++)
			if (i != nd->id)
				send_replica_or_hook(nd, o->buf, o->len, i);
		break;
	case PBFT_TO_CLIENT:
		c = client_find(nd, o->to);
		if (!c || !c->addr_len) {
			nd->replies_unroutable++;
			break;
		}
		send_stamped(nd, o->buf, o->len, c->keys.tx, (const struct sockaddr *)&c->addr,
			     c->addr_len);
		break;
	}
}

/* ---- persistence ------------------------------------------------------ */

static void drain(struct hm_node *nd);

#define PERSIST_RETRY_FIRST_MS 1000
#define PERSIST_RETRY_MAX_MS 30000

/*
 * A disk failure (persist counted one more, hm_persist_errors): from now on
 * nothing leaves until persist_retry() has started the files afresh.  Logged
 * once per transition.
 */
static void persist_fail(struct hm_node *nd)
{
	struct hm_persist *p = nd->persist;

	nd->persist_disk_errors = hm_persist_errors(p);
	if (nd->persist_failed)
		return;
	nd->persist_failed = true;
	nd->persist_degraded = true;
	nd->persist_errno = hm_persist_error(p, nd->persist_file, sizeof(nd->persist_file));
	nd->persist_backoff_ms = PERSIST_RETRY_FIRST_MS;
	nd->persist_retry_at = nd->now + (uint64_t)nd->persist_backoff_ms * 1000;
	nd->persist_retry_due = false;
	hm_err("persistence failed: %s/%s: %s; not acknowledging (no replies, no votes) until "
	       "the files can be written again", nd->persist_dir ? nd->persist_dir : "",
	       nd->persist_file, strerror(nd->persist_errno ? nd->persist_errno : EIO));
}

/*
 * While failed: the Ready that persist_retry_due asked for carries the
 * core's whole vote-log state (durable_rotate).  Write the stable
 * checkpoint and the committed log after it as new files
 * (hm_persist_reset), then that state as a new vote log; only then is the
 * replica durable again, and this Ready's messages may leave (what earlier
 * Readies held, the core's retransmissions repeat).  True when recovered.
 */
static bool persist_retry(struct hm_node *nd, const struct pbft_ready *rd)
{
	struct hm_persist *p = nd->persist;
	struct hm_log_record *recs;
	struct hm_checkpoint cp;
	struct hm_vote_record *vrecs;
	size_t n;
	bool have;
	int rc;

	if (!nd->persist_retry_due || !rd->durable_rotate)
		return false;
	nd->persist_retry_due = false;
	nd->persist_retries++;
	have = pbft_durable_base(nd->core, &cp, &recs, &n);
	rc = hm_persist_reset(p, have ? &cp : NULL, recs, n);
	free(recs);
	if (rc == 0) {
		vrecs = calloc(rd->n_durable + 1, sizeof(*vrecs));
		if (!vrecs)
			abort();
		for (size_t i = 0; i < rd->n_durable; i++)
			vrecs[i] = (struct hm_vote_record){ rd->durable[i].buf, rd->durable[i].len };
		rc = hm_persist_vote_rotate(p, rd->durable_first, vrecs, rd->n_durable);
		free(vrecs);
	}
	nd->persist_disk_errors = hm_persist_errors(p);
	if (rc < 0) {
		nd->persist_errors++;
		nd->persist_backoff_ms = nd->persist_backoff_ms * 2 > PERSIST_RETRY_MAX_MS
			? PERSIST_RETRY_MAX_MS : nd->persist_backoff_ms * 2;
		nd->persist_retry_at = nd->now + (uint64_t)nd->persist_backoff_ms * 1000;
		hm_debug("persistence still failing (%s); next attempt in %u ms", strerror(errno),
			 nd->persist_backoff_ms);
		return false;
	}
	nd->persist_failed = false;
	nd->persist_degraded = false;
	nd->persist_recoveries++;
	hm_warn("persistence recovered: checkpoint %llu and %zu log records rewritten, vote log "
		"replaced; acknowledging again", (unsigned long long)(have ? cp.seq : 0), n);
	return true;
}

static int persist_checkpoint(struct hm_node *nd, const struct hm_checkpoint *cp)
{
	if (hm_persist_checkpoint(nd->persist, cp) < 0) {
		nd->persist_errors++;
		return -1;
	}
	/* A checkpoint at or above what the files held replaces a damaged
	 * log (persist.h): appends work again. */
	nd->persist_degraded = false;
	return 0;
}

/*
 * The Ready's vote-log records: appended with one fdatasync, or, when the
 * core hands over its whole live state (a stable checkpoint, a start), a new
 * vote file replacing the old ones; that only after the checkpoint is
 * durable, else the records are appended instead.  False if they are not
 * durable: then no message of the Ready may leave.
 */
static bool persist_votes(struct hm_node *nd, const struct pbft_ready *rd, bool cp_ok)
{
	struct hm_persist *p = nd->persist;

	if (rd->durable_rotate && cp_ok) {
		struct hm_vote_record *recs = calloc(rd->n_durable + 1, sizeof(*recs));
		int rc;

		if (!recs)
			abort();
		for (size_t i = 0; i < rd->n_durable; i++)
			recs[i] = (struct hm_vote_record){ rd->durable[i].buf, rd->durable[i].len };
		rc = hm_persist_vote_rotate(p, rd->durable_first, recs, rd->n_durable);
		free(recs);
		if (rc == 0)
			return true;
	}
	for (size_t i = 0; i < rd->n_durable; i++)
		if (hm_persist_vote_append(p, rd->durable[i].seq, rd->durable[i].buf,
					   rd->durable[i].len) < 0)
			return false;
	return hm_persist_vote_sync(p) == 0;
}

/*
 * Make a Ready durable before anything of it is sent: append each executed
 * batch, one fdatasync, then the stable checkpoint, then the vote-log
 * records (one more fdatasync).  A checkpoint above the log (from state
 * transfer) goes first: it covers the batches up to it and restarts the log
 * after it.  False when the vote records could not be made durable.
 */
static bool persist_ready(struct hm_node *nd, const struct pbft_ready *rd)
{
	struct hm_persist *p = nd->persist;
	bool cp_done = false, cp_ok = true;
	size_t appended = 0;

	if (!p)
		return true;
	if (nd->persist_failed)
		return persist_retry(nd, rd);
	if (rd->stable_changed && rd->stable.seq > hm_persist_last_seq(p)) {
		cp_ok = persist_checkpoint(nd, &rd->stable) == 0;
		cp_done = true;
	}
	for (size_t i = 0; i < rd->n_executed && !nd->persist_degraded; i++) {
		const struct pbft_executed *e = &rd->executed[i];

		if (e->seq <= hm_persist_last_seq(p))
			continue; /* recovery replaying what the log holds */
		if (hm_persist_append(p, e->seq, e->view, e->digest, e->batch, e->batch_len) < 0) {
			nd->persist_errors++;
			nd->persist_degraded = true;
			break;
		}
		appended++;
	}
	if (appended && hm_persist_sync(p) < 0) {
		nd->persist_errors++;
		nd->persist_degraded = true;
	}
	if (rd->stable_changed && !cp_done)
		cp_ok = persist_checkpoint(nd, &rd->stable) == 0;
	if ((rd->n_durable || rd->durable_rotate) && !persist_votes(nd, rd, cp_ok)) {
		nd->persist_errors++;
		if (hm_persist_errors(p) != nd->persist_disk_errors)
			persist_fail(nd);
		return false;
	}
	/* Any disk error in this Ready (the log, its sync, the checkpoint):
	 * nothing of it leaves, nor of any Ready until the files are new. */
	if (hm_persist_errors(p) != nd->persist_disk_errors) {
		persist_fail(nd);
		return false;
	}
	return true;
}

/*
 * dir/incarnation counts the starts of this replica on these files; it is
 * durable before the replica sends anything.  Found at start, it says the
 * replica ran before and may have voted (the restart rule of pbft_recover).
 * Returns the number of earlier starts, or -1.
 */
static long bump_incarnation(const char *dir)
{
	char path[PATH_MAX], tmp[PATH_MAX], buf[32];
	long n = 0;
	FILE *f;
	int fd;

	snprintf(path, sizeof(path), "%s/incarnation", dir);
	snprintf(tmp, sizeof(tmp), "%s/incarnation.tmp", dir);
	f = fopen(path, "r");
	if (f) {
		if (!fgets(buf, sizeof(buf), f) || (n = strtol(buf, NULL, 10)) < 1)
			n = 1; /* damaged: it existed, so we ran before */
		fclose(f);
	}
	f = fopen(tmp, "w");
	if (!f)
		return -1;
	fprintf(f, "%ld\n", n + 1);
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		fclose(f);
		return -1;
	}
	fclose(f);
	if (rename(tmp, path) < 0)
		return -1;
	fd = open(dir, O_RDONLY | O_DIRECTORY);
	if (fd < 0)
		return -1;
	if (fsync(fd) < 0) {
		close(fd);
		return -1;
	}
	close(fd);
	return n;
}

int hm_node_open_state(struct hm_node *nd, const char *dir, const struct hm_persist_opts *opts,
		       char *err, size_t errlen)
{
	struct hm_persist_opts none = { 0 };
	struct hm_recovery rec;
	uint64_t hint;
	bool incomplete;
	long starts;

	nd->persist = hm_persist_open(dir, opts ? opts : &none, &rec, err, errlen);
	if (!nd->persist)
		return -1;
	free(nd->persist_dir);
	nd->persist_dir = strdup(dir);
	nd->persist_disk_errors = hm_persist_errors(nd->persist);
	nd->recovery_status = rec.status;
	if (rec.status == HM_REC_IO_ERROR) {
		snprintf(err, errlen, "cannot read %s", dir);
		hm_recovery_free(&rec);
		hm_persist_close(nd->persist);
		nd->persist = NULL;
		return -1;
	}
	starts = bump_incarnation(dir);
	if (starts < 0) {
		snprintf(err, errlen, "cannot write %s/incarnation: %s", dir, strerror(errno));
		hm_recovery_free(&rec);
		hm_persist_close(nd->persist);
		nd->persist = NULL;
		return -1;
	}
	hint = rec.last_seq;
	for (size_t i = 0; i < rec.nproblems && i < HM_REC_MAX_PROBLEMS; i++)
		if (rec.problems[i].seq > hint)
			hint = rec.problems[i].seq;
	nd->incarnation = (uint64_t)starts + 1;
	nd->votes_status = rec.votes_status;
	nd->votes_problem_fault = rec.votes_problem.fault;
	nd->recovered_seq = pbft_recover(nd->core, rec.have_checkpoint ? &rec.cp : NULL,
					 rec.records, rec.nrecords, rec.status != HM_REC_CORRUPT,
					 starts > 0, hint, rec.votes, rec.nvotes,
					 rec.votes_status == HM_VOTES_OK, &incomplete);
	/* A restart whose vote log is missing or corrupt: the silent rule
	 * (the daemon logs it and hmctl status shows it). */
	nd->restart_silent = pbft_restart_silent(nd->core);
	/* Corrupt files: persist refuses appends until a checkpoint at or
	 * above the valid prefix replaces the log; until then our executions
	 * are not durable, so no reply of ours leaves (the other replicas'
	 * replies serve the clients). */
	nd->persist_degraded = rec.status == HM_REC_CORRUPT;
	hm_recovery_free(&rec);
	drain(nd);
	return 0;
}

/* ---- the Ready loop --------------------------------------------------- */

void hm_node_fast_path_trust(struct hm_node *nd, const double *reputation)
{
	uint32_t lowest = UINT32_MAX;
	bool allowed;

	if (!nd->cfg->fast_path_enabled)
		return;
	for (uint32_t i = 0; i < nd->n; i++)
		if (i != nd->id && reputation[i] <= nd->cfg->fast_path_trust_threshold &&
		    (lowest == UINT32_MAX || reputation[i] < reputation[lowest]))
			lowest = i;
	allowed = lowest == UINT32_MAX;
	if (allowed == nd->fast_path_allowed)
		return;
	nd->fast_path_allowed = allowed;
	nd->fast_path_switches++;
	pbft_set_fast_path_allowed(nd->core, allowed);
	if (allowed)
		hm_log_kv(HM_LOG_INFO, "fast path on: every peer's reputation above the threshold",
			  "threshold", HM_KV_F(nd->cfg->fast_path_trust_threshold), NULL);
	else
		hm_log_kv(HM_LOG_WARN, "fast path off: a peer's reputation is at or below the threshold",
			  "peer", HM_KV_U(lowest), "reputation", HM_KV_F(reputation[lowest]),
			  "threshold", HM_KV_F(nd->cfg->fast_path_trust_threshold), NULL);
}

/* Per-peer counters the fault detector reads: who took part in quorums,
 * who equivocated (with the event as evidence). */
static void note_agreement(struct hm_node *nd, uint32_t signers)
{
	for (uint32_t a = 0; a < nd->n; a++)
		for (uint32_t b = a + 1; (signers >> a & 1) && b < nd->n; b++)
			if (signers >> b & 1)
				nd->agreed[a][b]++;
}

/* The 2f+1 signers of a stable checkpoint signed one state digest. */
static void note_checkpoint_agreement(struct hm_node *nd, const struct hm_checkpoint *cp)
{
	uint32_t signers = 0;

	for (uint32_t k = 0; k < cp->nvotes && k < HM_MAX_REPLICAS; k++)
		if (cp->votes[k].replica < nd->n)
			signers |= 1u << cp->votes[k].replica;
	note_agreement(nd, signers);
}

static void note_event(struct hm_node *nd, const struct hm_vote_event *ev)
{
	if (ev->kind == HM_EV_QUORUM || ev->kind == HM_EV_FAST) {
		hm_voters_t took_part = ev->voters;

		/* A PREPARE quorum (or the fast event, all n) is the primary's
		 * PRE-PREPARE and the backups' PREPAREs: the primary took part
		 * too.  Left out, it would take part in fewer quorums than any
		 * backup (more so with the fast path's extra event), and the
		 * reputation gate would withdraw the fast path from a healthy
		 * cluster. */
		if (ev->phase == HM_PHASE_PREPARE)
			took_part |= (hm_voters_t)1 << pbft_primary(nd->core, ev->view);
		nd->quorums++;
		note_agreement(nd, took_part);
		for (uint32_t i = 0; i < nd->n; i++)
			if (took_part >> i & 1)
				nd->replica_stats[i].in_quorum++;
	} else if (ev->kind == HM_EV_EQUIVOCATION && ev->voter < nd->n) {
		nd->replica_stats[ev->voter].equivocations++;
		nd->replica_stats[ev->voter].last_equivocation = *ev;
	}
}

const double hm_latency_bounds_s[HM_LATENCY_BUCKETS] = {
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5,
};

unsigned hm_latency_bucket(double seconds)
{
	unsigned b = 0;

	while (b < HM_LATENCY_BUCKETS && seconds > hm_latency_bounds_s[b])
		b++;
	return b;
}

/* Consensus latency: from our PREPARE policy for seq to its execution. */
static void note_started(struct hm_node *nd, const struct pbft_vote_policy *v)
{
	struct hm_latency_slot *s = &nd->started[v->seq % HM_LATENCY_SLOTS];

	if (v->phase == HM_PHASE_PREPARE && s->seq != v->seq) {
		s->seq = v->seq;
		s->at_us = nd->now;
	}
}

static void note_executed(struct hm_node *nd, const struct pbft_executed *e)
{
	struct hm_latency_slot *s = &nd->started[e->seq % HM_LATENCY_SLOTS];

	if (s->seq == e->seq && s->at_us && nd->now >= s->at_us) {
		unsigned b = hm_latency_bucket((double)(nd->now - s->at_us) / 1e6);

		nd->latency_sum_us += nd->now - s->at_us;
		nd->latency_count++;
		if (b < HM_LATENCY_BUCKETS)
			nd->latency_buckets[b]++;
		s->at_us = 0;
	}
}

/* The trigger of the view change the core just started: the reason whose
 * counter moved since the last log line. */
static const char *vc_reason(struct hm_node *nd, const struct pbft_stats *s)
{
	const char *why = "unknown";

	for (int r = 0; r < PBFT_VC_REASONS; r++)
		if (s->view_changes_by_reason[r] != nd->vc_reason_logged[r])
			why = pbft_vc_reason_name((enum pbft_vc_reason)r);
	memcpy(nd->vc_reason_logged, s->view_changes_by_reason, sizeof(nd->vc_reason_logged));
	return why;
}

/* One log line for every view change and view catch-up step (the core
 * counts them in pbft_stats; this says when, to which view and why). */
static void log_views(struct hm_node *nd)
{
	const struct pbft_stats *s = pbft_stats(nd->core);
	const uint64_t now[5] = { s->view_changes_started, s->view_changes_installed,
				  s->view_catchups_started, s->view_catchups_done,
				  s->view_catchup_timeouts };
	uint64_t view = pbft_view(nd->core), target = pbft_view_target(nd->core);

	if (memcmp(now, nd->vc_logged, sizeof(now)) == 0)
		return;
	if (now[0] != nd->vc_logged[0])
		hm_log_kv(now[4] != nd->vc_logged[4] ? HM_LOG_WARN : HM_LOG_INFO, "view change",
			  "old_view", HM_KV_U(view), "new_view", HM_KV_U(target), "reason",
			  vc_reason(nd, s), "primary", HM_KV_U(pbft_primary(nd->core, target)), NULL);
	if (now[2] != nd->vc_logged[2])
		hm_log_kv(HM_LOG_INFO, "view catch-up: f+1 replicas are in higher views; asking "
			  "for the NEW-VIEW", "view", HM_KV_U(view), "catchup_view",
			  HM_KV_U(pbft_catchup_view(nd->core)), NULL);
	if (now[1] != nd->vc_logged[1])
		hm_log_kv(HM_LOG_INFO, "view installed", "view", HM_KV_U(view), "primary",
			  HM_KV_U(pbft_primary(nd->core, view)), "how",
			  now[3] != nd->vc_logged[3] ? "view_catchup" : "new_view", NULL);
	memcpy(nd->vc_logged, now, sizeof(now));
}

/* State transfer: one line when it starts, ends or fails, and for every
 * chunk that did not verify (its sender is blamed). */
static void log_state_transfer(struct hm_node *nd)
{
	const struct pbft_stats *s = pbft_stats(nd->core);
	const uint64_t now[4] = { s->state_transfers_started, s->state_transfers_done,
				  s->state_transfers_failed, s->state_bad_chunks };
	const char *exec = HM_KV_U(pbft_last_executed(nd->core));

	if (memcmp(now, nd->st_logged, sizeof(now)) == 0)
		return;
	if (now[0] != nd->st_logged[0])
		hm_log_kv(HM_LOG_INFO, "state transfer started: fetching a certified checkpoint",
			  "last_executed", exec, "low_watermark",
			  HM_KV_U(pbft_low_watermark(nd->core)), NULL);
	if (now[3] != nd->st_logged[3])
		hm_log_kv(HM_LOG_WARN, "state transfer: a chunk did not verify; its sender is blamed",
			  "bad_chunks", HM_KV_U(now[3]), "blamed_mask", HM_KV_U(s->state_blamed),
			  NULL);
	if (now[2] != nd->st_logged[2])
		hm_log_kv(HM_LOG_WARN, "state transfer failed; trying again", "failures",
			  HM_KV_U(now[2]), NULL);
	if (now[1] != nd->st_logged[1])
		hm_log_kv(HM_LOG_INFO, "state transfer done", "checkpoint",
			  HM_KV_U(pbft_low_watermark(nd->core)), "last_executed", exec, NULL);
	memcpy(nd->st_logged, now, sizeof(now));
}

/* Requests the service's admission check refused (DNS and CT: an agreed
 * time too far from our clock): one line per second at most, with the
 * count, so a skewed clock is visible without flooding the log. */
static void log_service_refusals(struct hm_node *nd)
{
	uint64_t refused = pbft_stats(nd->core)->service_refused;

	if (refused == nd->refused_logged || nd->now < nd->refused_logged_at + 1000000)
		return;
	hm_log_kv(HM_LOG_INFO, "batch refused: the service's check refused its request "
		  "(agreed time too far from this replica's clock?)", "requests",
		  HM_KV_U(refused - nd->refused_logged), "total", HM_KV_U(refused), NULL);
	nd->refused_logged = refused;
	nd->refused_logged_at = nd->now;
}

/* Carry out the core's Ready until it has nothing more: our own votes can
 * complete quorums, which make the core act again. */
static void drain(struct hm_node *nd)
{
	while (pbft_has_ready(nd->core)) {
		struct pbft_ready rd;
		struct hm_vote_event *evs;
		size_t n_evs = 0;

		pbft_ready(nd->core, &rd);
		/* each policy entry raises at most two events at once (its
		 * expectation and our own vote) */
		evs = calloc(2 * rd.n_votes + 1, sizeof(*evs));
		if (!evs)
			abort();
		if (rd.installed && nd->on_installed)
			nd->on_installed(nd->on_executed_ctx, rd.installed);
		nd->readies++;
		if (rd.stable_changed)
			note_checkpoint_agreement(nd, &rd.stable);
		/* Nothing of a Ready leaves before its vote records are durable
		 * (lost messages are safe: retransmission repeats them). */
		if (!persist_ready(nd, &rd)) {
			if (rd.n_msgs)
				nd->votes_held++;
			for (size_t i = 0; i < rd.n_msgs; i++)
				nd->replies_held += rd.msgs[i].dest == PBFT_TO_CLIENT;
			rd.n_msgs = 0;
		}
		for (size_t i = 0; i < rd.n_msgs; i++) {
			if (nd->persist_degraded && rd.msgs[i].dest == PBFT_TO_CLIENT) {
				nd->replies_held++;
				continue;
			}
			send_out(nd, &rd.msgs[i]);
		}
		for (size_t i = 0; i < rd.n_votes; i++) {
			note_started(nd, &rd.votes[i]);
			n_evs += nd->votes.ops->policy(nd->votes.state, &rd.votes[i], &evs[n_evs]);
		}
		for (size_t i = 0; i < rd.n_executed; i++)
			note_executed(nd, &rd.executed[i]);
		for (size_t i = 0; nd->on_executed && i < rd.n_executed; i++)
			nd->on_executed(nd->on_executed_ctx, &rd.executed[i]);
		if (rd.window_changed) {
			if (rd.low > nd->low)
				nd->votes.ops->collect(nd->votes.state, rd.low);
			if (nd->votes.ops->window)
				nd->votes.ops->window(nd->votes.state, rd.view, rd.low, rd.high);
			nd->view = rd.view;
			nd->low = rd.low;
			nd->high = rd.high;
		}
		pbft_advance(nd->core);
		log_views(nd);
		log_state_transfer(nd);
		log_service_refusals(nd);
		for (size_t i = 0; i < n_evs; i++) {
			note_event(nd, &evs[i]);
			pbft_on_vote_event(nd->core, &evs[i]);
		}
		free(evs);
	}
}

/* ---- receiving -------------------------------------------------------- */

/* One more refusal of kind `what` (rl: its count and rate limit), logged
 * at most once a second with the running total (a faulty peer must not
 * flood the log); the drop counters have every one. */
static void log_refusal(struct hm_node *nd, struct hm_refusal_log *rl, enum hm_log_level level,
			const char *what, const struct hm_msg *m, const char *reason)
{
	if (rl->count++ && nd->now < rl->logged_at + 1000000)
		return;
	hm_log_kv(level, what, "from", HM_KV_U(m->sender), "view", HM_KV_U(m->view), "seq",
		  HM_KV_U(m->seq), "reason", reason, "total", HM_KV_U(rl->count), NULL);
	rl->logged_at = nd->now;
}

/* What became of a PRE-PREPARE or a VOUCH the core did not simply take. */
static void log_outcome(struct hm_node *nd, const struct hm_msg *m, bool dropped,
			enum hm_drop_reason why, uint64_t held_before)
{
	if (m->type == HM_MSG_PRE_PREPARE && dropped && why != HM_DROP_DUPLICATE)
		log_refusal(nd, &nd->batches_refused, HM_LOG_INFO, "batch refused", m,
			    hm_drop_reason_name(why));
	else if (m->type == HM_MSG_PRE_PREPARE && pbft_stats(nd->core)->batches_held > held_before)
		/* Debug only: a backup whose own copy of a request is still on
		 * its way holds the batch for microseconds, often, under load
		 * (hypermesh_batches_held_total counts them). */
		log_refusal(nd, &nd->batches_held, HM_LOG_DEBUG, "batch held", m,
			    "a request in it not yet authentic here (waiting for vouches)");
	else if (m->type == HM_MSG_VOUCH && dropped)
		log_refusal(nd, &nd->vouches_refused, HM_LOG_WARN, "vouch refused", m,
			    hm_drop_reason_name(why));
}

static bool same_address(const struct sockaddr *a, socklen_t alen,
			 const struct sockaddr_storage *b, socklen_t blen)
{
	if (!a || alen != blen || a->sa_family != b->ss_family)
		return false;
	if (a->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;

		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	if (a->sa_family == AF_INET6) {
		const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;

		return x->sin6_port == y->sin6_port &&
		       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
	}
	return false;
}

/* Token bucket: rate_limit_pps tokens a second, a burst of one second. */
static bool take_token(const struct hm_node *nd, double *tokens, uint64_t *at)
{
	double rate = nd->cfg->rate_limit_pps;

	if (rate <= 0)
		return true;
	*tokens += (double)(nd->now - *at) * rate / 1e6;
	if (*tokens > rate)
		*tokens = rate;
	*at = nd->now;
	if (*tokens < 1)
		return false;
	*tokens -= 1;
	return true;
}

static bool from_replica_only(uint8_t type)
{
	/* every type but the client's request and the replica's reply */
	return type != HM_MSG_REQUEST && type != HM_MSG_REPLY;
}

static bool normal_case(uint8_t type)
{
	return type == HM_MSG_PRE_PREPARE || type == HM_MSG_PREPARE || type == HM_MSG_COMMIT;
}

static bool window_ok(const struct hm_node *nd, const struct hm_msg *m,
		      enum hm_drop_reason *why)
{
	if (!normal_case(m->type))
		return true;
	if (m->view != nd->view)
		*why = HM_DROP_BAD_VIEW;
	else if (m->seq <= nd->low || m->seq > nd->high)
		*why = HM_DROP_OUT_OF_WINDOW;
	else
		return true;
	return false;
}

/* The identity checks: who claims to send, from where, under which key. */
static struct hm_peer_stats *authenticate(struct hm_node *nd, const struct hm_msg *m,
					  const struct sockaddr *from, socklen_t fromlen,
					  enum hm_drop_reason *why)
{
	struct hm_client_link *c;

	if (m->sender < nd->n && m->sender != nd->id) {
		struct hm_peer_stats *st = &nd->replica_stats[m->sender];
		const struct hm_member *mb = &nd->cfg->members[m->sender];

		/* The token bucket comes after the MAC: spoofed packets in a
		 * peer's name must not use up that peer's rate. */
		if (!same_address(from, fromlen, &mb->addr, mb->addr_len))
			*why = HM_DROP_BAD_ADDRESS;
		else if (!hm_mac_verify(m->hdr, nd->links[m->sender].rx))
			*why = HM_DROP_BAD_MAC;
		else if (!take_token(nd, &nd->tokens[m->sender], &nd->tokens_at[m->sender]))
			*why = HM_DROP_RATE_LIMITED;
		else if (!from_replica_only(m->type))
			*why = HM_DROP_MALFORMED;
		return st;
	}
	c = client_find(nd, m->sender);
	if (!c) {
		*why = HM_DROP_UNKNOWN_SENDER;
		return &nd->unknown_stats;
	}
	if (!hm_mac_verify(m->hdr, c->keys.rx))
		*why = HM_DROP_BAD_MAC;
	else if (!take_token(nd, &c->tokens, &c->tokens_at))
		*why = HM_DROP_RATE_LIMITED;
	else if (m->type != HM_MSG_REQUEST)
		*why = HM_DROP_MALFORMED;
	return &nd->client_stats;
}

/* Replies go where the client's last accepted request came from (a stale
 * replay, refused by the core, does not move them). */
static void learn_client_address(struct hm_node *nd, const struct hm_msg *m,
				 const struct sockaddr *from, socklen_t fromlen)
{
	struct hm_client_link *c = client_find(nd, m->sender);

	if (c && from && fromlen <= sizeof(c->addr)) {
		memcpy(&c->addr, from, fromlen);
		c->addr_len = fromlen;
	}
}

static struct hm_peer_stats *claimed_sender_stats(struct hm_node *nd, const uint8_t *buf,
						  size_t len)
{
	uint32_t sender;

	if (len < HM_OFF_SENDER + 4)
		return &nd->unknown_stats;
	sender = hm_get_be32(buf + HM_OFF_SENDER);
	if (sender < nd->n)
		return &nd->replica_stats[sender];
	return client_find(nd, sender) ? &nd->client_stats : &nd->unknown_stats;
}

/* ---- equivocation proofs (HM_MSG_EVIDENCE) ----------------------------- */

/* Send a proof to every other replica: one signed EVIDENCE message, MACed
 * per link.  Only the finder sends it; receivers never forward it. */
static void broadcast_proof(struct hm_node *nd, const uint8_t proof[HM_EVIDENCE_LEN])
{
	uint8_t buf[HM_HDR_LEN + HM_EVIDENCE_LEN];
	size_t len = hm_msg_build(buf, sizeof(buf), HM_MSG_EVIDENCE, nd->id, nd->view, 0, NULL,
				  proof, HM_EVIDENCE_LEN, nd->keys);

	for (uint32_t i = 0; len && i < nd->n; i++)
		if (i != nd->id)
			send_to_replica(nd, buf, len, i);
}

/*
 * A proof we built from what we caught.  It is kept (status, decision
 * evidence) and sent to the other replicas only when it checks: neither
 * vote counter verifies Ed25519 on votes, so a garbage signature under a
 * good MAC would otherwise make us send a proof the others refuse.  Sent
 * once per (type, view, seq) of the culprit: a repeat contradiction for
 * the same slot proves nothing new.
 */
static void adopt_proof(struct hm_node *nd, uint32_t culprit, const uint8_t proof[HM_EVIDENCE_LEN])
{
	struct hm_peer_stats *st = &nd->replica_stats[culprit];
	uint32_t who = HM_MAX_REPLICAS;
	uint64_t view, seq;
	uint8_t type;

	if (hm_evidence_check(proof, HM_EVIDENCE_LEN, nd->n,
			      (const uint8_t(*)[HM_PUBKEY_LEN])nd->replica_keys, &who, &type, &view,
			      &seq) != HM_EVIDENCE_OK || who != culprit)
		return;
	memcpy(st->proof, proof, HM_EVIDENCE_LEN);
	st->has_proof = true;
	if (st->proofs_sent && st->sent_type == type && st->sent_view == view && st->sent_seq == seq)
		return;
	st->sent_type = type;
	st->sent_view = view;
	st->sent_seq = seq;
	st->proofs_sent++;
	broadcast_proof(nd, proof);
}

/* An equivocation event: both signed votes, the first (ev->digest) with
 * its signature from the counter's slot, the second the vote at hand
 * (second_hdr, when the node counted it) or else the event's digest2 and
 * sig2 (an event that came later, from the XDP ring buffer). */
static void keep_proof(struct hm_node *nd, const struct hm_vote_event *ev,
		       const struct hm_hdr *second_hdr)
{
	uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN], first[HM_EVIDENCE_RECORD];
	uint8_t second[HM_EVIDENCE_RECORD], proof[HM_EVIDENCE_LEN];
	uint8_t type = ev->phase == HM_PHASE_PREPARE ? HM_MSG_PREPARE : HM_MSG_COMMIT;

	if (ev->voter >= nd->n || ev->voter == nd->id ||
	    nd->votes.ops->sigs(nd->votes.state, ev->phase, ev->view, ev->seq,
				(hm_voters_t)(1u << ev->voter), sigs) < 0)
		return;
	hm_evidence_record(first, type, ev->voter, 0, ev->view, ev->seq, ev->digest,
			   sigs[ev->voter]);
	if (!second_hdr) {
		hm_evidence_record(second, type, ev->voter, 0, ev->view, ev->seq, ev->digest2,
				   ev->sig2);
		second_hdr = (const struct hm_hdr *)second;
	}
	if (hm_evidence_build(proof, sizeof(proof), first, second_hdr))
		adopt_proof(nd, ev->voter, proof);
}

/*
 * An EVIDENCE message from a replica (MAC already verified).  Its own
 * signature must verify (as for any signed message: a failure under a good
 * MAC is the sender's), then the proof must check; a proof that does not is
 * refused and counted against the sender, and blocks nobody.  A proof that
 * checks is recorded against its culprit; the detector turns it into a
 * block (HM_OFFENCE_PROOF).  It is not forwarded: the finder sent it to
 * every replica.
 */
static int receive_proof(struct hm_node *nd, const struct hm_msg *m, enum hm_drop_reason *why)
{
	struct hm_peer_stats *from = &nd->replica_stats[m->sender], *st;
	uint32_t culprit = HM_MAX_REPLICAS;
	enum hm_evidence_error e;

	if (!hm_verify_header(m->hdr, nd->replica_keys[m->sender])) {
		*why = HM_DROP_BAD_SIGNATURE;
		return -1;
	}
	/* the proof we already hold, sent again: absorbed without spending
	 * two more verifications on it */
	for (uint32_t i = 0; m->payload_len == HM_EVIDENCE_LEN && i < nd->n; i++)
		if (nd->replica_stats[i].proofs_received &&
		    memcmp(nd->replica_stats[i].received_proof, m->payload, HM_EVIDENCE_LEN) == 0) {
			*why = HM_DROP_DUPLICATE;
			return -1;
		}
	e = hm_evidence_check(m->payload, m->payload_len, nd->n,
			      (const uint8_t(*)[HM_PUBKEY_LEN])nd->replica_keys, &culprit, NULL, NULL,
			      NULL);
	if (e != HM_EVIDENCE_OK) {
		from->proofs_refused++;
		from->last_refusal = (uint8_t)e;
		*why = HM_DROP_MALFORMED;
		return -1;
	}
	if (culprit == nd->id) /* only our own key could have signed it */
		return 0;
	st = &nd->replica_stats[culprit];
	st->proofs_received++;
	st->received_from = m->sender;
	memcpy(st->received_proof, m->payload, HM_EVIDENCE_LEN);
	return 0;
}

/* A link-layer refusal (bad_seal, not_encrypted, bad_compression,
 * inflated_oversize) after a valid MAC: the sender itself sent it.  At
 * most one line a second; the drop counters have every one. */
static void log_link_refusal(struct hm_node *nd, const struct hm_msg *m, enum hm_drop_reason why)
{
	nd->link_refused++;
	if (nd->link_refused_logged_at && nd->now < nd->link_refused_logged_at + 1000000)
		return;
	hm_log_kv(HM_LOG_WARN, "link payload refused", "from", HM_KV_U(m->sender), "type",
		  hm_msg_type_name(m->type), "reason", hm_drop_reason_name(why), "refused_total",
		  HM_KV_U(nd->link_refused), NULL);
	nd->link_refused_logged_at = nd->now ? nd->now : 1;
}

/*
 * The link layer's receive side, after the MAC verified: a replica's
 * message is opened (decrypted, decompressed) into nd->link_rx and *m
 * decoded again from there, so that everything after sees the core's
 * message.  A client's message never carries the link bits (malformed).
 */
static bool link_open(struct hm_node *nd, struct hm_msg *m, enum hm_drop_reason *why)
{
	size_t len;

	if (m->sender >= nd->n)
		return !(m->flags & (HM_FLAG_ENCRYPTED | HM_FLAG_COMPRESSED)) ||
		       (*why = HM_DROP_MALFORMED, false);
	if (!m->payload_len && !(m->flags & (HM_FLAG_ENCRYPTED | HM_FLAG_COMPRESSED)))
		return true;
	len = hm_link_open((const uint8_t *)m->hdr, m->len, &nd->link, nd->aead[m->sender].rx,
			   nd->cfg->max_message_size, nd->link_rx, HM_MAX_DATAGRAM, why);
	if (!len || hm_msg_decode(nd->link_rx, len, nd->cfg->max_message_size, m, why) < 0) {
		log_link_refusal(nd, m, *why);
		return false;
	}
	return true;
}

static void count_vote(struct hm_node *nd, const struct hm_msg *m, enum hm_drop_reason *why,
		       bool *dropped)
{
	enum hm_vote_phase phase = m->type == HM_MSG_PREPARE ? HM_PHASE_PREPARE : HM_PHASE_COMMIT;
	struct hm_vote_event ev;
	int r = nd->votes.ops->vote(nd->votes.state, phase, m->view, m->seq, m->sender, m->digest,
				    m->hdr->sig, &ev, why);

	*dropped = r < 0;
	if (r > 0) {
		if (ev.kind == HM_EV_EQUIVOCATION) {
			*why = HM_DROP_EQUIVOCATION;
			*dropped = true;
			keep_proof(nd, &ev, m->hdr);
		}
		note_event(nd, &ev);
		pbft_on_vote_event(nd->core, &ev);
	}
}

void hm_node_receive(struct hm_node *nd, const uint8_t *buf, size_t len,
		     const struct sockaddr *from, socklen_t fromlen)
{
	struct hm_peer_stats *st = claimed_sender_stats(nd, buf, len);
	enum hm_drop_reason why = HM_DROP_REASON_MAX;
	uint64_t held_before;
	struct hm_msg m;
	bool dropped;

	/* The blocklist comes before anything else, as in XDP. */
	if (len >= HM_OFF_SENDER + 4 && hm_get_be32(buf + HM_OFF_SENDER) < nd->n &&
	    (nd->blocked >> hm_get_be32(buf + HM_OFF_SENDER) & 1)) {
		st->drops[HM_DROP_BLOCKED]++;
		return;
	}
	if (hm_msg_decode(buf, len, nd->cfg->max_message_size, &m, &why) < 0) {
		st->drops[why]++;
		return;
	}
	st = authenticate(nd, &m, from, fromlen, &why);
	if (why == HM_DROP_REASON_MAX)
		link_open(nd, &m, &why);
	/* Even a message dropped below (out of our window) tells us how far
	 * the group got, once we know it comes from a peer. */
	if (why == HM_DROP_REASON_MAX && m.sender < nd->n && m.type != HM_MSG_STATUS &&
	    m.type != HM_MSG_EVIDENCE && m.type != HM_MSG_VOUCH)
		pbft_observe_seq(nd->core, m.seq);
	/* Cheapest checks first; an Ed25519 verification (in the core) is
	 * only ever spent on a message whose MAC verified. */
	if (why == HM_DROP_REASON_MAX && window_ok(nd, &m, &why) &&
	    !hm_sig_is_canonical(m.hdr->sig))
		why = HM_DROP_NONCANONICAL_SIG;
	if (why == HM_DROP_REASON_MAX)
		hm_msg_payload_ok(&m, &why);
	if (why != HM_DROP_REASON_MAX) {
		st->drops[why]++;
		/* MAC-valid, from a replica, in a view above ours: view catch-up. */
		if (why == HM_DROP_BAD_VIEW && m.view > nd->view) {
			pbft_observe_view(nd->core, m.sender, m.view);
			drain(nd);
		}
		return;
	}
	st->last_seen_us = nd->now;
	held_before = pbft_stats(nd->core)->batches_held;
	if (m.type == HM_MSG_PREPARE || m.type == HM_MSG_COMMIT)
		count_vote(nd, &m, &why, &dropped);
	else if (m.type == HM_MSG_EVIDENCE)
		dropped = receive_proof(nd, &m, &why) < 0;
	else
		dropped = pbft_receive(nd->core, &m, &why) < 0;
	log_outcome(nd, &m, dropped, why, held_before);
	/* Replies (even a cached one the core just queued) are sent in
	 * drain() below, so learning the address here is in time for them. */
	if (!dropped && m.type == HM_MSG_REQUEST)
		learn_client_address(nd, &m, from, fromlen);
	if (dropped)
		st->drops[why]++;
	else
		st->accepted++;
	if ((m.flags & HM_FLAG_RETRANSMIT) && m.sender < nd->n &&
	    (!dropped || why == HM_DROP_DUPLICATE))
		pbft_on_retransmission(nd->core, &m);
	if (!nd->in_burst)
		pbft_flush_vouches(nd->core);
	drain(nd);
}

void hm_node_burst_begin(struct hm_node *nd)
{
	nd->in_burst = true;
}

void hm_node_burst_end(struct hm_node *nd)
{
	nd->in_burst = false;
	pbft_flush_vouches(nd->core);
	drain(nd);
}

void hm_node_tick(struct hm_node *nd, uint64_t now_us)
{
	if (now_us > nd->now)
		nd->now = now_us;
	pbft_tick(nd->core, nd->now);
	/* A disk failure's next attempt: the Ready it asks for carries the
	 * whole vote-log state, and persist_retry() rewrites the files. */
	if (nd->persist_failed && !nd->persist_retry_due && nd->now >= nd->persist_retry_at) {
		nd->persist_retry_due = true;
		pbft_rotate_durable(nd->core);
	}
	if (nd->send_hook.tick)
		nd->send_hook.tick(nd->send_hook.ctx, nd->now, hook_emit, nd);
	drain(nd);
}

void hm_node_set_send_hook(struct hm_node *nd, const struct hm_send_hook *h)
{
	nd->send_hook = h ? *h : (struct hm_send_hook){ 0 };
}

/* Events from a counter that delivers them later (bind). */
static void counter_event(void *ctx, const struct hm_vote_event *ev)
{
	struct hm_node *nd = ctx;

	if (ev->kind == HM_EV_EQUIVOCATION)
		keep_proof(nd, ev, NULL);
	note_event(nd, ev);
	pbft_on_vote_event(nd->core, ev);
	drain(nd);
}

void hm_node_set_vote_counter(struct hm_node *nd, const struct hm_vote_counter *vc)
{
	if (nd->votes.ops && nd->votes.ops->destroy)
		nd->votes.ops->destroy(nd->votes.state);
	nd->votes = *vc;
	if (nd->votes.ops->bind)
		nd->votes.ops->bind(nd->votes.state, counter_event, nd);
	if (nd->votes.ops->window)
		nd->votes.ops->window(nd->votes.state, nd->view, nd->low, nd->high);
}

void hm_node_set_egress(struct hm_node *nd, hm_voters_t stamped, const struct sockaddr_in *fanout,
			size_t max_len)
{
	nd->egress_stamped = stamped;
	nd->egress_max_len = max_len;
	memset(&nd->fanout, 0, sizeof(nd->fanout));
	if (fanout)
		nd->fanout = *fanout;
}

void hm_node_poll_votes(struct hm_node *nd)
{
	if (nd->votes.ops->progress)
		pbft_observe_seq(nd->core, nd->votes.ops->progress(nd->votes.state));
	if (nd->votes.ops->views) {
		uint64_t views[HM_MAX_REPLICAS] = { 0 };

		if (nd->votes.ops->views(nd->votes.state, views) == 0)
			for (uint32_t i = 0; i < nd->n; i++)
				if (views[i])
					pbft_observe_view(nd->core, i, views[i]);
	}
	drain(nd);
}

uint64_t hm_node_next_deadline(const struct hm_node *nd)
{
	uint64_t t = pbft_next_deadline(nd->core);
	uint64_t b = nd->send_hook.next_deadline ? nd->send_hook.next_deadline(nd->send_hook.ctx) : 0;

	if (nd->persist_failed && !nd->persist_retry_due && (!b || nd->persist_retry_at < b))
		b = nd->persist_retry_at ? nd->persist_retry_at : 1;
	return b && (!t || b < t) ? b : t;
}

uint64_t hm_node_drops(const struct hm_node *nd, enum hm_drop_reason reason)
{
	uint64_t sum = nd->client_stats.drops[reason] + nd->unknown_stats.drops[reason];

	for (uint32_t i = 0; i < nd->n; i++)
		sum += nd->replica_stats[i].drops[reason];
	return sum;
}
