// SPDX-License-Identifier: MIT
/* The in-process simulated network (see sim.h). */
#include "testing/sim.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/wire.h"
#include "service/kv/kv.h"
#include "testing/kv_skew.h"

#define SIM_CLIENT_PORT 40000

struct sim_msg {
	uint64_t at;
	uint64_t order;          /* ties broken by send order: deterministic */
	uint32_t to;             /* replica index, or n + client index */
	uint32_t from;           /* likewise */
	uint8_t *buf;
	size_t len;
};

struct sim_endpoint {            /* what a transport callback knows */
	struct hm_sim *sim;
	uint32_t index;          /* replica index, or n + client index */
};

struct sim_exec_log {            /* digests executed by one replica, by seq */
	uint8_t (*digests)[HM_DIGEST_LEN]; /* all zero: skipped by state transfer */
	uint64_t len, cap;
	uint64_t executed;       /* batches it executed itself */
};

struct sim_client {
	struct hm_client core;
	struct hm_keypair keys;
	uint32_t done;
	uint32_t attempt;        /* HM_SIM_KV_SKEW: resends under a new timestamp */
	uint64_t sent_us;
	bool waiting;
	struct hm_sim_op current;
};

struct hm_sim {
	struct hm_sim_opts o;
	struct hm_config cfg;
	struct hm_config cfg_nofast; /* opts.fast_path_only: the others' copy */
	uint64_t now;
	uint64_t rng;
	uint64_t order;
	struct sim_msg *heap;
	size_t heap_len, heap_cap;

	struct hm_keypair *replica_keys;
	struct hm_service *services;
	struct hm_node *nodes;
	bool *crashed;
	struct sim_exec_log *exec;
	struct sim_endpoint *endpoints;

	struct sim_client *clients;
	struct hm_sim_op *history;
	size_t n_history, cap_history;

	uint32_t crash_replica;
	uint64_t crash_after;    /* 0 = none scheduled */
	hm_sim_filter filter;
	void *filter_ctx;
	bool *faulty, *bad_chunks;
	hm_voters_t *bad_client_macs; /* per client: replicas that see a bad MAC */
	struct hm_byz **byz;     /* per replica, NULL when correct */

	/* Twins: a second instance of replica twin_of with the same key.
	 * Replicas in twin_peers talk to it, the others to the original;
	 * clients reach both. */
	struct hm_node *twin;
	struct hm_service twin_service;
	struct sim_endpoint twin_ep;
	uint32_t twin_of;
	hm_voters_t twin_peers, twin_orig_peers;
	bool twin_down;
	int64_t *clock_offset;   /* HM_SIM_KV_SKEW: per replica, us */
	struct hm_sim_op *abandoned;
	size_t n_abandoned, cap_abandoned;
	uint64_t fault_at, fault_view, recovered_at;
	char dir[64];            /* opts.persist: replica i in dir/r<i> */
	/* hm_sim_set_disk_fault: each replica's injected disk failures */
	struct hm_persist_inject disk_fault[HM_MAX_REPLICAS];
	char safety_error[256];
};

/* ---- randomness: xorshift64*, seeded, reproducible -------------------- */

static uint64_t rnd(struct hm_sim *s)
{
	s->rng ^= s->rng >> 12;
	s->rng ^= s->rng << 25;
	s->rng ^= s->rng >> 27;
	return s->rng * 2685821657736338717ull;
}

static uint32_t rnd_below(struct hm_sim *s, uint32_t bound)
{
	return bound ? (uint32_t)(rnd(s) % bound) : 0;
}

/* ---- the message heap ------------------------------------------------- */

static bool msg_before(const struct sim_msg *a, const struct sim_msg *b)
{
	return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void heap_push(struct hm_sim *s, struct sim_msg m)
{
	size_t i;

	if (s->heap_len == s->heap_cap) {
		s->heap_cap = s->heap_cap ? 2 * s->heap_cap : 256;
		s->heap = realloc(s->heap, s->heap_cap * sizeof(*s->heap));
		if (!s->heap)
			abort();
	}
	i = s->heap_len++;
	s->heap[i] = m;
	while (i > 0 && msg_before(&s->heap[i], &s->heap[(i - 1) / 2])) {
		struct sim_msg t = s->heap[i];

		s->heap[i] = s->heap[(i - 1) / 2];
		s->heap[(i - 1) / 2] = t;
		i = (i - 1) / 2;
	}
}

static struct sim_msg heap_pop(struct hm_sim *s)
{
	struct sim_msg top = s->heap[0];
	size_t i = 0;

	s->heap[0] = s->heap[--s->heap_len];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;

		if (l < s->heap_len && msg_before(&s->heap[l], &s->heap[m]))
			m = l;
		if (r < s->heap_len && msg_before(&s->heap[r], &s->heap[m]))
			m = r;
		if (m == i)
			break;
		struct sim_msg t = s->heap[i];
		s->heap[i] = s->heap[m];
		s->heap[m] = t;
		i = m;
	}
	return top;
}

/* A STATE_CHUNK whose last data byte is flipped, signed and MACed by its
 * sender: well-formed, but it does not verify against the digest. */
static uint8_t *spoil_chunk(struct hm_sim *s, uint32_t from, uint32_t to, const void *buf,
			    size_t *len)
{
	struct hm_link_keys lk;
	enum hm_drop_reason why;
	struct hm_msg m;
	uint8_t *out, *payload;

	if (hm_msg_decode(buf, *len, HM_MAX_DATAGRAM, &m, &why) < 0 ||
	    m.type != HM_MSG_STATE_CHUNK || m.payload_len == 0)
		return NULL;
	payload = malloc(m.payload_len);
	out = malloc(HM_HDR_LEN + m.payload_len);
	if (!payload || !out)
		abort();
	memcpy(payload, m.payload, m.payload_len);
	payload[m.payload_len - 1] ^= 0x40;
	*len = hm_msg_build_flags(out, HM_HDR_LEN + m.payload_len, m.type, m.flags, from, m.view,
				  m.seq, NULL, payload, m.payload_len, &s->replica_keys[from]);
	free(payload);
	if (hm_link_keys_derive(from, &s->replica_keys[from], to,
				s->cfg.members[to].public_key, &lk) < 0)
		abort();
	hm_mac_stamp((struct hm_hdr *)out, lk.tx);
	return out;
}

/* Put a datagram on the wire: maybe lose it, maybe duplicate it. */
static void net_send(struct hm_sim *s, uint32_t from, uint32_t to, const void *buf, size_t len)
{
	int copies = 1;
	uint8_t *alt = NULL;

	if (s->filter && !s->filter(s->filter_ctx, s, from, to, buf, len))
		return;
	if (from < s->o.n && to < s->o.n && s->bad_chunks[from] &&
	    (alt = spoil_chunk(s, from, to, buf, &len)))
		buf = alt;
	if (from >= s->o.n && from - s->o.n < s->o.clients && to < s->o.n && len > HM_OFF_MAC &&
	    (s->bad_client_macs[from - s->o.n] >> to & 1)) {
		alt = malloc(len);
		if (!alt)
			abort();
		memcpy(alt, buf, len);
		alt[HM_OFF_MAC] ^= 1;
		buf = alt;
	}
	if (rnd_below(s, 100) < s->o.loss_pct) {
		free(alt);
		return;
	}
	if (rnd_below(s, 100) < s->o.duplicate_pct)
		copies = 2;
	for (int i = 0; i < copies; i++) {
		struct sim_msg m = {
			.at = s->now + s->o.min_delay_us +
			      rnd_below(s, s->o.max_delay_us - s->o.min_delay_us + 1),
			.order = s->order++, .to = to, .from = from, .len = len,
		};
		m.buf = malloc(len);
		if (!m.buf)
			abort();
		memcpy(m.buf, buf, len);
		heap_push(s, m);
	}
	free(alt);
}

/* ---- addresses -------------------------------------------------------- */

static void replica_addr(uint32_t i, struct sockaddr_in *a)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons(HM_DEFAULT_PORT);
	a->sin_addr.s_addr = htonl(0xc6120001u + i); /* 198.18.0.(i+1) */
}

static void client_addr(uint32_t j, struct sockaddr_in *a)
{
	memset(a, 0, sizeof(*a));
	a->sin_family = AF_INET;
	a->sin_port = htons(SIM_CLIENT_PORT + j);
	a->sin_addr.s_addr = htonl(0xc6120101u); /* 198.18.1.1 */
}

static uint32_t endpoint_of(const struct hm_sim *s, const struct sockaddr *to)
{
	const struct sockaddr_in *a = (const void *)to;
	uint32_t host = ntohl(a->sin_addr.s_addr);

	if (host == 0xc6120101u)
		return s->o.n + (ntohs(a->sin_port) - SIM_CLIENT_PORT);
	return host - 0xc6120001u;
}

/* ---- callbacks from nodes and clients --------------------------------- */

static void node_sendto(void *ctx, const void *buf, size_t len, const struct sockaddr *to,
			socklen_t tolen)
{
	struct sim_endpoint *ep = ctx;

	(void)tolen;
	net_send(ep->sim, ep->index, endpoint_of(ep->sim, to), buf, len);
}

static void client_send(void *ctx, uint32_t to, const void *buf, size_t len)
{
	struct sim_endpoint *ep = ctx;

	net_send(ep->sim, ep->index, to, buf, len);
}

static const uint8_t zero_digest[HM_DIGEST_LEN];

static void exec_grow(struct sim_exec_log *log)
{
	if (log->len == log->cap) {
		log->cap = log->cap ? 2 * log->cap : 64;
		log->digests = realloc(log->digests, log->cap * HM_DIGEST_LEN);
		if (!log->digests)
			abort();
	}
}

/* A state installed at seq: the batches up to it were skipped. */
static void on_installed(void *ctx, uint64_t seq)
{
	struct sim_endpoint *ep = ctx;
	struct sim_exec_log *log;

	if (ep->index >= ep->sim->o.n)
		return; /* a twin */
	log = &ep->sim->exec[ep->index];
	while (log->len < seq) {
		exec_grow(log);
		memcpy(log->digests[log->len++], zero_digest, HM_DIGEST_LEN);
	}
}

static void on_executed(void *ctx, const struct pbft_executed *e)
{
	struct sim_endpoint *ep = ctx;
	struct hm_sim *s = ep->sim;
	struct sim_exec_log *log;

	if (ep->index >= s->o.n)
		return; /* a twin: faulty, left out of the checks */
	log = &s->exec[ep->index];
	log->executed++;
	/* A restarted replica re-executes its log: the same batches. */
	if (e->seq <= log->len) {
		if (memcmp(log->digests[e->seq - 1], zero_digest, HM_DIGEST_LEN) != 0 &&
		    memcmp(log->digests[e->seq - 1], e->digest, HM_DIGEST_LEN) != 0)
			snprintf(s->safety_error, sizeof(s->safety_error),
				 "replica %u re-executed another batch at seq %llu", ep->index,
				 (unsigned long long)e->seq);
		memcpy(log->digests[e->seq - 1], e->digest, HM_DIGEST_LEN);
		return;
	}
	if (e->seq != log->len + 1) {
		snprintf(s->safety_error, sizeof(s->safety_error),
			 "replica %u executed seq %llu after %llu", ep->index,
			 (unsigned long long)e->seq, (unsigned long long)log->len);
		return;
	}
	exec_grow(log);
	memcpy(log->digests[log->len++], e->digest, HM_DIGEST_LEN);
	if (s->fault_at && !s->recovered_at && e->view > s->fault_view)
		s->recovered_at = s->now;
	/* Safety: compare with every replica that executed this seq too.  A
	 * faulty replica's own execution proves nothing either way. */
	if (s->faulty[ep->index])
		return;
	for (uint32_t i = 0; i < s->o.n; i++)
		if (!s->faulty[i] && s->exec[i].len >= e->seq &&
		    memcmp(s->exec[i].digests[e->seq - 1], zero_digest, HM_DIGEST_LEN) != 0 &&
		    memcmp(s->exec[i].digests[e->seq - 1], e->digest, HM_DIGEST_LEN) != 0)
			snprintf(s->safety_error, sizeof(s->safety_error),
				 "replicas %u and %u executed different batches at seq %llu", i,
				 ep->index, (unsigned long long)e->seq);
}

/* ---- setup ------------------------------------------------------------ */

static void replica_dir(const struct hm_sim *s, uint32_t i, char *buf, size_t len)
{
	snprintf(buf, len, "%s/r%u", s->dir, i);
}

/* A replica's local clock (HM_SIM_KV_SKEW): virtual time plus its offset. */
static uint64_t local_clock(void *ctx)
{
	struct sim_endpoint *ep = ctx;
	int64_t t = (int64_t)ep->sim->now + ep->sim->clock_offset[ep->index];

	return t > 0 ? (uint64_t)t : 0;
}

static int sim_service_new(struct hm_sim *s, uint32_t i, struct hm_service *svc)
{
	if (s->o.service == HM_SIM_KV_SKEW)
		return hm_kv_skew_service_new(svc, local_clock, &s->endpoints[i], s->o.skew_us);
	return hm_kv_service_new(svc);
}

void hm_sim_set_clock_offset(struct hm_sim *s, uint32_t replica, int64_t offset_us)
{
	s->clock_offset[replica] = offset_us;
}

/* A replica's process: service, node (core, vote counter), and, with
 * opts.persist, recovery from its directory. */
static int replica_start(struct hm_sim *s, uint32_t i)
{
	struct hm_transport t = { .sendto = node_sendto, .ctx = &s->endpoints[i] };
	char dir[96], err[256];

	const struct hm_config *cfg = s->o.fast_path_only && !(s->o.fast_path_only >> i & 1)
					     ? &s->cfg_nofast : &s->cfg;

	if (sim_service_new(s, i, &s->services[i]) < 0 ||
	    hm_node_init(&s->nodes[i], cfg, i, &s->replica_keys[i], &s->services[i], &t) < 0)
		return -1;
	s->nodes[i].on_executed = on_executed;
	s->nodes[i].on_installed = on_installed;
	s->nodes[i].on_executed_ctx = &s->endpoints[i];
	if (s->byz[i]) { /* a restarted Byzantine replica stays one */
		struct hm_send_hook h = hm_byz_send_hook(s->byz[i]);

		hm_node_set_send_hook(&s->nodes[i], &h);
	}
	if (!s->o.persist)
		return 0;
	replica_dir(s, i, dir, sizeof(dir));
	hm_node_tick(&s->nodes[i], s->now);
	if (hm_node_open_state(&s->nodes[i], dir,
			       &(struct hm_persist_opts){ .inject = s->disk_fault[i] }, err,
			       sizeof(err)) < 0) {
		fprintf(stderr, "sim: replica %u: %s\n", i, err);
		return -1;
	}
	return 0;
}

static void replica_stop(struct hm_sim *s, uint32_t i)
{
	hm_node_free(&s->nodes[i]);
	s->services[i].ops->destroy(s->services[i].state);
	memset(&s->services[i], 0, sizeof(s->services[i]));
}

static void rm_tree(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	char sub[512];

	if (!d)
		return;
	while ((de = readdir(d))) {
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		snprintf(sub, sizeof(sub), "%s/%s", path, de->d_name);
		if (lstat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			rm_tree(sub);
		else
			unlink(sub);
	}
	closedir(d);
	rmdir(path);
}

void hm_sim_default_opts(struct hm_sim_opts *o)
{
	*o = (struct hm_sim_opts){
		.n = 4, .f = 1, .clients = 4, .ops_per_client = 50, .seed = 1,
		.batch_size = 8, .batch_timeout_ms = 1, .pipeline_depth = 4,
		.checkpoint_interval = 10, .window = 20,
		.min_delay_us = 50, .max_delay_us = 500,
		.client_timeout_ms = 200, .view_change_timeout_ms = 500,
	};
}

static void build_config(struct hm_sim *s)
{
	struct hm_config *c = &s->cfg;

	hm_config_defaults(c);
	c->max_faulty_nodes = s->o.f;
	c->checkpoint_interval = s->o.checkpoint_interval;
	c->watermark_window = s->o.window;
	c->batching_enabled = s->o.batch_size > 1;
	c->batch_size = s->o.batch_size;
	c->batch_timeout_ms = s->o.batch_timeout_ms;
	c->pipeline_depth = s->o.pipeline_depth;
	c->timeout_ms = s->o.client_timeout_ms;
	c->view_change_timeout_ms = s->o.view_change_timeout_ms;
	c->encryption_required = s->o.encryption_required;
	c->message_compression = s->o.message_compression;
	c->fast_path_enabled = s->o.fast_path;
	c->signed_requests = s->o.signed_requests;
	c->n_members = s->o.n;
	for (uint32_t i = 0; i < s->o.n; i++) {
		struct hm_member *m = &c->members[i];
		struct sockaddr_in a;

		m->id = i;
		replica_addr(i, &a);
		memcpy(&m->addr, &a, sizeof(a));
		m->addr_len = sizeof(a);
		m->port = HM_DEFAULT_PORT;
		inet_ntop(AF_INET, &a.sin_addr, m->address, sizeof(m->address));
		memcpy(m->public_key, s->replica_keys[i].pk, HM_PUBKEY_LEN);
	}
	c->n_clients = s->o.clients;
	c->clients = calloc(s->o.clients, sizeof(*c->clients));
	if (!c->clients)
		abort();
	for (uint32_t j = 0; j < s->o.clients; j++) {
		c->clients[j].id = 100 + j;
		memcpy(c->clients[j].public_key, s->clients[j].keys.pk, HM_PUBKEY_LEN);
	}
}

/* Keys from the seed, so a run is reproducible to the byte. */
static void seeded_keypair(struct hm_sim *s, struct hm_keypair *kp)
{
	uint8_t seed[32];

	for (int i = 0; i < 4; i++) {
		uint64_t r = rnd(s);
		memcpy(seed + 8 * i, &r, 8);
	}
	if (hm_keypair_from_seed(kp, seed) < 0)
		abort();
}

struct hm_sim *hm_sim_new(const struct hm_sim_opts *o)
{
	struct hm_sim *s = calloc(1, sizeof(*s));
	uint32_t total = o->n + o->clients;

	if (!s || hm_crypto_init() < 0)
		abort();
	/* Thousands of simulated view changes and restarts: the replicas' info
	 * lines would bury a failing check's output (HM_SIM_LOG=info shows them). */
	hm_log_setup("sim", -1, getenv("HM_SIM_LOG") ? getenv("HM_SIM_LOG") : "warn");
	s->o = *o;
	s->rng = o->seed * 0x9e3779b97f4a7c15ull + 1;
	s->replica_keys = calloc(o->n, sizeof(*s->replica_keys));
	s->services = calloc(o->n, sizeof(*s->services));
	s->nodes = calloc(o->n, sizeof(*s->nodes));
	s->crashed = calloc(o->n, sizeof(*s->crashed));
	s->faulty = calloc(o->n, sizeof(*s->faulty));
	s->bad_chunks = calloc(o->n, sizeof(*s->bad_chunks));
	s->bad_client_macs = calloc(o->clients ? o->clients : 1, sizeof(*s->bad_client_macs));
	s->byz = calloc(o->n, sizeof(*s->byz));
	s->exec = calloc(o->n, sizeof(*s->exec));
	s->endpoints = calloc(total, sizeof(*s->endpoints));
	s->clients = calloc(o->clients ? o->clients : 1, sizeof(*s->clients));
	s->clock_offset = calloc(o->n, sizeof(*s->clock_offset));
	if (!s->replica_keys || !s->services || !s->clock_offset || !s->nodes || !s->crashed || !s->exec ||
	    !s->faulty || !s->byz || !s->bad_chunks || !s->bad_client_macs ||
	    !s->endpoints || !s->clients)
		abort();
	for (uint32_t i = 0; i < o->n; i++)
		seeded_keypair(s, &s->replica_keys[i]);
	for (uint32_t j = 0; j < o->clients; j++)
		seeded_keypair(s, &s->clients[j].keys);
	build_config(s);
	s->cfg_nofast = s->cfg; /* a shallow copy: freed only through s->cfg */
	s->cfg_nofast.fast_path_enabled = false;
	/* drawn only for the skew service, so other runs keep their streams */
	if (o->service == HM_SIM_KV_SKEW && o->max_clock_offset_us)
		for (uint32_t i = 0; i < o->n; i++)
			s->clock_offset[i] = (int64_t)rnd_below(s, 2 * o->max_clock_offset_us + 1) -
					     (int64_t)o->max_clock_offset_us;
	for (uint32_t i = 0; i < total; i++)
		s->endpoints[i] = (struct sim_endpoint){ .sim = s, .index = i };
	if (o->persist) {
		/* tmpfs when there is one: the fsyncs cost nothing there */
		snprintf(s->dir, sizeof(s->dir), "%s/hm-sim-XXXXXX",
			 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
		if (!mkdtemp(s->dir))
			abort();
	}
	for (uint32_t i = 0; i < o->n; i++)
		if (replica_start(s, i) < 0)
			abort();
	for (uint32_t j = 0; j < o->clients; j++)
		if (hm_client_init(&s->clients[j].core, &s->cfg, 100 + j, &s->clients[j].keys, 0,
				   client_send, &s->endpoints[o->n + j]) < 0)
			abort();
	return s;
}

void hm_sim_free(struct hm_sim *s)
{
	if (!s)
		return;
	for (uint32_t i = 0; i < s->o.n; i++) {
		replica_stop(s, i);
		hm_byz_free(s->byz[i]);
		free(s->exec[i].digests);
	}
	if (s->twin) {
		hm_node_free(s->twin);
		s->twin_service.ops->destroy(s->twin_service.state);
		free(s->twin);
	}
	if (s->dir[0])
		rm_tree(s->dir);
	for (uint32_t j = 0; j < s->o.clients; j++)
		hm_client_free(&s->clients[j].core);
	while (s->heap_len)
		free(heap_pop(s).buf);
	free(s->heap);
	hm_config_free(&s->cfg);
	free(s->replica_keys);
	free(s->services);
	free(s->nodes);
	free(s->crashed);
	free(s->faulty);
	free(s->bad_chunks);
	free(s->bad_client_macs);
	free(s->byz);
	free(s->exec);
	free(s->endpoints);
	free(s->clients);
	free(s->history);
	free(s->clock_offset);
	free(s->abandoned);
	free(s);
}

/* ---- the workload: closed-loop clients on a few shared keys ----------- */

static void client_next_op(struct hm_sim *s, uint32_t j)
{
	struct sim_client *c = &s->clients[j];
	struct hm_sim_op *op = &c->current;
	char key[16], value[32];

	memset(op, 0, sizeof(*op));
	op->client = j;
	op->invoked_us = s->now;
	snprintf(key, sizeof(key), "k%u", rnd_below(s, 4));
	if (rnd_below(s, 2)) {
		/* unique per PUT, resends included */
		int vlen = c->attempt ? snprintf(value, sizeof(value), "c%u-%u.%u", j, c->done,
						 c->attempt)
				      : snprintf(value, sizeof(value), "c%u-%u", j, c->done);
		op->op_len = hm_kv_encode_put(op->op, sizeof(op->op), key, value, (size_t)vlen);
	} else {
		op->op_len = hm_kv_encode_get(op->op, sizeof(op->op), key);
	}
	c->waiting = true;
	c->sent_us = s->now;
	/* the skew service's agreed time: the timestamp is the virtual time */
	if (s->o.service == HM_SIM_KV_SKEW && c->core.ts < s->now)
		c->core.ts = s->now;
	hm_client_submit(&c->core, op->op, op->op_len, s->now);
}

/* HM_SIM_KV_SKEW: an op pending for skew_us / 2 may never pass the
 * replicas' check again; give it up (it may still execute) and send a new
 * one under a fresh timestamp. */
static void client_maybe_abandon(struct hm_sim *s, uint32_t j)
{
	struct sim_client *c = &s->clients[j];

	uint64_t after = s->o.skew_resend_us ? s->o.skew_resend_us : s->o.skew_us / 2;

	if (s->o.service != HM_SIM_KV_SKEW || !c->waiting || s->now - c->sent_us < after)
		return;
	if (s->n_abandoned == s->cap_abandoned) {
		s->cap_abandoned = s->cap_abandoned ? 2 * s->cap_abandoned : 16;
		s->abandoned = realloc(s->abandoned, s->cap_abandoned * sizeof(*s->abandoned));
		if (!s->abandoned)
			abort();
	}
	s->abandoned[s->n_abandoned++] = c->current;
	c->core.busy = false;
	c->attempt++;
	client_next_op(s, j);
}

static void client_completed(struct hm_sim *s, uint32_t j)
{
	struct sim_client *c = &s->clients[j];
	struct hm_sim_op *op = &c->current;

	op->completed_us = s->now;
	op->result_len = c->core.result_len < sizeof(op->result) ? c->core.result_len
								 : sizeof(op->result);
	memcpy(op->result, c->core.result, op->result_len);
	op->exec_seq = c->core.result_seq;
	if (s->n_history == s->cap_history) {
		s->cap_history = s->cap_history ? 2 * s->cap_history : 256;
		s->history = realloc(s->history, s->cap_history * sizeof(*s->history));
		if (!s->history)
			abort();
	}
	s->history[s->n_history++] = *op;
	c->waiting = false;
	c->done++;
	c->attempt = 0;
	if (s->crash_after && s->n_history >= s->crash_after) {
		hm_sim_crash(s, s->crash_replica);
		s->crash_after = 0;
	}
}

/* ---- running ---------------------------------------------------------- */

static bool is_twin(const struct hm_sim *s, uint32_t index)
{
	return s->twin && index == s->o.n + s->o.clients;
}

/* The replica an endpoint speaks as (a twin as its original). */
static uint32_t speaks_as(const struct hm_sim *s, uint32_t index)
{
	return is_twin(s, index) ? s->twin_of : index;
}

static void deliver_to_node(struct hm_sim *s, struct hm_node *nd, const struct sim_msg *m,
			    const struct sockaddr_in *from)
{
	hm_node_tick(nd, s->now);
	hm_node_receive(nd, m->buf, m->len, (const struct sockaddr *)from, sizeof(*from));
}

static void deliver(struct hm_sim *s, struct sim_msg *m)
{
	uint32_t as = speaks_as(s, m->from);
	struct sockaddr_in from;

	if (s->twin_down && is_twin(s, m->from))
		return;
	if (m->to < s->o.n) {
		if (s->crashed[m->to] || (as < s->o.n && s->crashed[as]))
			return;
		if (as < s->o.n)
			replica_addr(as, &from);
		else
			client_addr(m->from - s->o.n, &from);
		if (s->twin && !s->twin_down && m->to == s->twin_of && as >= s->o.n) {
			/* clients are split too: odd ones reach the twin, so
			 * the two instances propose different batches */
			deliver_to_node(s, (m->from - s->o.n) % 2 ? s->twin : &s->nodes[m->to], m,
					&from);
		} else if (s->twin && !s->twin_down && m->to == s->twin_of) {
			if (s->twin_peers >> as & 1)
				deliver_to_node(s, s->twin, m, &from);
			if (s->twin_orig_peers >> as & 1)
				deliver_to_node(s, &s->nodes[m->to], m, &from);
		} else {
			deliver_to_node(s, &s->nodes[m->to], m, &from);
		}
		return;
	}
	uint32_t j = m->to - s->o.n;
	if (s->clients[j].waiting && hm_client_receive(&s->clients[j].core, m->buf, m->len))
		client_completed(s, j);
}

/* The earliest timer of any live replica or waiting client. */
static uint64_t next_timer(const struct hm_sim *s)
{
	uint64_t t = UINT64_MAX;

	for (uint32_t i = 0; i < s->o.n; i++) {
		uint64_t d = s->crashed[i] ? 0 : hm_node_next_deadline(&s->nodes[i]);

		if (d && d < t)
			t = d;
	}
	if (s->twin && !s->twin_down && !s->crashed[s->twin_of]) {
		uint64_t d = hm_node_next_deadline(s->twin);

		if (d && d < t)
			t = d;
	}
	for (uint32_t j = 0; j < s->o.clients; j++)
		if (s->clients[j].waiting && s->clients[j].core.deadline < t)
			t = s->clients[j].core.deadline;
	return t;
}

static void fire_timers(struct hm_sim *s)
{
	for (uint32_t i = 0; i < s->o.n; i++)
		if (!s->crashed[i])
			hm_node_tick(&s->nodes[i], s->now);
	if (s->twin && !s->twin_down && !s->crashed[s->twin_of])
		hm_node_tick(s->twin, s->now);
	for (uint32_t j = 0; j < s->o.clients; j++) {
		client_maybe_abandon(s, j);
		if (s->clients[j].waiting)
			hm_client_tick(&s->clients[j].core, s->now);
	}
}

/* A crash-mode Byzantine replica whose time came stops, as the daemon
 * exits. */
static void crash_due(struct hm_sim *s)
{
	for (uint32_t i = 0; i < s->o.n; i++)
		if (s->byz[i] && !s->crashed[i] && hm_byz_crashed(s->byz[i], s->nodes[i].now))
			hm_sim_crash(s, i);
}

/* One step of the simulation; false when nothing is left to happen. */
static bool step(struct hm_sim *s, uint64_t limit_us)
{
	uint64_t timer = next_timer(s);
	uint64_t msg_at = s->heap_len ? s->heap[0].at : UINT64_MAX;

	if (timer == UINT64_MAX && msg_at == UINT64_MAX)
		return false;
	if ((msg_at <= timer ? msg_at : timer) > limit_us)
		return false;
	if (msg_at <= timer) {
		struct sim_msg m = heap_pop(s);

		s->now = m.at > s->now ? m.at : s->now;
		deliver(s, &m);
		free(m.buf);
	} else {
		s->now = timer > s->now ? timer : s->now;
		fire_timers(s);
	}
	crash_due(s);
	return true;
}

static bool clients_start(struct hm_sim *s)
{
	bool all_done = true;

	for (uint32_t j = 0; j < s->o.clients; j++) {
		struct sim_client *c = &s->clients[j];

		if (c->done < s->o.ops_per_client) {
			all_done = false;
			if (!c->waiting)
				client_next_op(s, j);
		}
	}
	return all_done;
}

bool hm_sim_run(struct hm_sim *s, uint64_t limit_us)
{
	while (!s->safety_error[0]) {
		if (clients_start(s))
			return true;
		if (!step(s, limit_us))
			return clients_start(s);
	}
	return false;
}

void hm_sim_settle(struct hm_sim *s, uint64_t limit_us)
{
	while (!s->safety_error[0] && step(s, limit_us))
		;
}

void hm_sim_crash(struct hm_sim *s, uint32_t replica)
{
	s->crashed[replica] = true;
	hm_sim_mark_fault(s);
}

int hm_sim_restart(struct hm_sim *s, uint32_t replica)
{
	/* Without its files a restarted replica would not know it ran before
	 * (the restart rule needs them): not a correct replica's restart. */
	if (!s->o.persist)
		return -1;
	replica_stop(s, replica);
	if (replica_start(s, replica) < 0)
		return -1;
	s->crashed[replica] = false;
	return 0;
}

const char *hm_sim_data_dir(const struct hm_sim *s, uint32_t replica)
{
	static __thread char buf[96];

	if (!s->dir[0])
		return NULL;
	replica_dir(s, replica, buf, sizeof(buf));
	return buf;
}

uint64_t hm_sim_executed_count(const struct hm_sim *s, uint32_t replica)
{
	return s->exec[replica].executed;
}

void hm_sim_mark_fault(struct hm_sim *s)
{
	uint64_t v = 0;

	for (uint32_t i = 0; i < s->o.n; i++)
		if (!s->crashed[i] && pbft_view(s->nodes[i].core) > v)
			v = pbft_view(s->nodes[i].core);
	s->fault_at = s->now ? s->now : 1;
	s->fault_view = v;
	s->recovered_at = 0;
}

uint64_t hm_sim_recovery_us(const struct hm_sim *s)
{
	return s->recovered_at ? s->recovered_at - s->fault_at : 0;
}

void hm_sim_set_filter(struct hm_sim *s, hm_sim_filter f, void *ctx)
{
	s->filter = f;
	s->filter_ctx = ctx;
}

int hm_sim_set_byzantine(struct hm_sim *s, uint32_t replica, const struct hm_byz_opts *o)
{
	struct hm_byz_opts with_seed = *o;
	struct hm_send_hook h;

	with_seed.seed = s->o.seed * 31 + replica;
	hm_byz_free(s->byz[replica]);
	s->byz[replica] = hm_byz_new(&with_seed, replica, s->o.n, s->o.window,
				     &s->replica_keys[replica]);
	if (!s->byz[replica])
		return -1;
	h = hm_byz_send_hook(s->byz[replica]);
	hm_node_set_send_hook(&s->nodes[replica], &h);
	s->faulty[replica] = true;
	return 0;
}

struct hm_byz *hm_sim_byzantine(struct hm_sim *s, uint32_t replica)
{
	return s->byz[replica];
}

void hm_sim_set_equivocator(struct hm_sim *s, uint32_t replica)
{
	struct hm_byz_opts o = { .modes = 1u << HM_BYZ_EQUIVOCATE };

	if (hm_sim_set_byzantine(s, replica, &o) < 0)
		abort();
}

void hm_sim_set_bad_vote_signer(struct hm_sim *s, uint32_t replica)
{
	struct hm_byz_opts o = { .modes = 1u << HM_BYZ_CORRUPT_SIG,
				 .sig_types = 1u << HM_MSG_PREPARE };

	if (hm_sim_set_byzantine(s, replica, &o) < 0)
		abort();
	s->faulty[replica] = false; /* it executes correctly: checked with the rest */
}

int hm_sim_add_twin(struct hm_sim *s, uint32_t replica, hm_voters_t peers)
{
	struct hm_transport t = { .sendto = node_sendto, .ctx = &s->twin_ep };

	if (s->twin || replica >= s->o.n)
		return -1;
	s->twin = calloc(1, sizeof(*s->twin));
	if (!s->twin)
		return -1;
	s->twin_ep = (struct sim_endpoint){ .sim = s, .index = s->o.n + s->o.clients };
	s->twin_of = replica;
	s->twin_peers = peers;
	s->twin_orig_peers = (hm_voters_t)~peers;
	if (sim_service_new(s, replica, &s->twin_service) < 0 ||
	    hm_node_init(s->twin, &s->cfg, replica, &s->replica_keys[replica], &s->twin_service,
			 &t) < 0)
		abort();
	s->twin->on_executed = on_executed;
	s->twin->on_executed_ctx = &s->twin_ep;
	s->faulty[replica] = true;
	return 0;
}

void hm_sim_set_twin_peers(struct hm_sim *s, hm_voters_t peers)
{
	s->twin_peers = peers;
	s->twin_orig_peers = (hm_voters_t)~peers;
}

void hm_sim_set_twin_routes(struct hm_sim *s, hm_voters_t to_twin, hm_voters_t to_orig)
{
	s->twin_peers = to_twin;
	s->twin_orig_peers = to_orig;
}

void hm_sim_remove_twin(struct hm_sim *s)
{
	s->twin_down = true;
}

uint32_t hm_sim_twin_endpoint(const struct hm_sim *s)
{
	return s->twin ? s->o.n + s->o.clients : UINT32_MAX;
}

uint64_t hm_sim_abandoned(const struct hm_sim *s)
{
	return s->n_abandoned;
}

uint64_t hm_sim_refused(const struct hm_sim *s)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < s->o.n; i++)
		n += hm_kv_skew_refused(&s->services[i]);
	return n;
}

void hm_sim_revive(struct hm_sim *s, uint32_t replica)
{
	s->crashed[replica] = false;
}

bool hm_sim_crashed(const struct hm_sim *s, uint32_t replica)
{
	return s->crashed[replica];
}

bool hm_sim_faulty(const struct hm_sim *s, uint32_t replica)
{
	return s->faulty[replica];
}

void hm_sim_set_bad_client_macs(struct hm_sim *s, uint32_t client, hm_voters_t replicas)
{
	s->bad_client_macs[client] = replicas;
}

void hm_sim_set_bad_chunk_server(struct hm_sim *s, uint32_t replica)
{
	s->bad_chunks[replica] = true;
	s->faulty[replica] = true;
}

int hm_sim_set_disk_fault(struct hm_sim *s, uint32_t replica,
			  const struct hm_persist_inject *inj)
{
	if (!s->o.persist || replica >= s->o.n || replica >= HM_MAX_REPLICAS)
		return -1;
	s->disk_fault[replica] = inj ? *inj : (struct hm_persist_inject){ 0 };
	if (!s->crashed[replica] && s->nodes[replica].persist)
		hm_persist_set_inject(s->nodes[replica].persist, inj);
	return 0;
}

void hm_sim_mark_faulty(struct hm_sim *s, uint32_t replica)
{
	s->faulty[replica] = true;
}

bool hm_sim_executed_digest(const struct hm_sim *s, uint32_t replica, uint64_t seq,
			    uint8_t out[HM_DIGEST_LEN])
{
	if (replica >= s->o.n || seq == 0 || seq > s->exec[replica].len)
		return false;
	memcpy(out, s->exec[replica].digests[seq - 1], HM_DIGEST_LEN);
	return true;
}

void hm_sim_crash_after(struct hm_sim *s, uint32_t replica, uint64_t after_ops)
{
	s->crash_replica = replica;
	s->crash_after = after_ops;
}

void hm_sim_inject(struct hm_sim *s, uint32_t to, uint32_t from, const void *buf, size_t len)
{
	struct sim_msg m = { .at = s->now, .order = s->order++, .to = to, .from = from,
			     .len = len };

	m.buf = malloc(len ? len : 1);
	if (!m.buf)
		abort();
	memcpy(m.buf, buf, len);
	deliver(s, &m);
	free(m.buf);
}

/* ---- checks ----------------------------------------------------------- */

bool hm_sim_safety_ok(const struct hm_sim *s, char *why, size_t len)
{
	snprintf(why, len, "%s", s->safety_error);
	return s->safety_error[0] == 0;
}

bool hm_sim_states_agree(const struct hm_sim *s, char *why, size_t len)
{
	uint8_t ref[HM_DIGEST_LEN], d[HM_DIGEST_LEN];
	int first = -1;

	for (uint32_t i = 0; i < s->o.n; i++) {
		if (s->crashed[i] || s->faulty[i])
			continue;
		if (first < 0) {
			first = (int)i;
			pbft_state_digest(s->nodes[i].core, ref);
			continue;
		}
		pbft_state_digest(s->nodes[i].core, d);
		if (s->exec[i].len != s->exec[first].len || memcmp(d, ref, HM_DIGEST_LEN) != 0) {
			snprintf(why, len, "replica %u executed %llu batches, replica %d %llu; "
				 "digests %s", i, (unsigned long long)s->exec[i].len, first,
				 (unsigned long long)s->exec[first].len,
				 memcmp(d, ref, HM_DIGEST_LEN) ? "differ" : "agree");
			return false;
		}
	}
	return true;
}

/* Parse a KV op of the workload: returns the opcode, fills key. */
static int op_key(const struct hm_sim_op *op, char *key, size_t cap)
{
	size_t klen = (size_t)op->op[1] << 8 | op->op[2];

	if (klen >= cap)
		klen = cap - 1;
	memcpy(key, op->op + 3, klen);
	key[klen] = 0;
	return op->op[0];
}

static bool put_wrote(const struct hm_sim_op *put, const uint8_t *v, size_t vlen)
{
	size_t klen = (size_t)put->op[1] << 8 | put->op[2];

	return put->op_len - 3 - klen == vlen && memcmp(put->op + 3 + klen, v, vlen) == 0;
}

/* A real-time check of reads (values are unique per PUT): a GET must return
 * a value whose PUT began before the GET ended and was not certainly
 * overwritten (by a PUT that began after it ended and ended before the GET
 * began); NOT_FOUND only if no PUT to the key ended before the GET began. */
static bool read_ok(const struct hm_sim *s, const struct hm_sim_op *get)
{
	char key[64], k2[64];
	const struct hm_sim_op *w = NULL;

	op_key(get, key, sizeof(key));
	for (size_t i = 0; i < s->n_history; i++) {
		const struct hm_sim_op *p = &s->history[i];

		if (op_key(p, k2, sizeof(k2)) != HM_KV_PUT || strcmp(k2, key) != 0)
			continue;
		if (get->result[0] == HM_KV_OK && put_wrote(p, get->result + 1, get->result_len - 1))
			w = p;
		else if (get->result[0] == HM_KV_NOT_FOUND && p->completed_us < get->invoked_us)
			return false;
	}
	if (get->result[0] == HM_KV_NOT_FOUND)
		return true;
	if (!w) { /* an abandoned PUT (HM_SIM_KV_SKEW) may have executed */
		for (size_t i = 0; i < s->n_abandoned; i++) {
			const struct hm_sim_op *p = &s->abandoned[i];

			if (op_key(p, k2, sizeof(k2)) == HM_KV_PUT && strcmp(k2, key) == 0 &&
			    put_wrote(p, get->result + 1, get->result_len - 1))
				return p->invoked_us <= get->completed_us;
		}
	}
	if (!w || w->invoked_us > get->completed_us)
		return false;
	for (size_t i = 0; i < s->n_history; i++) {
		const struct hm_sim_op *p = &s->history[i];

		if (op_key(p, k2, sizeof(k2)) == HM_KV_PUT && strcmp(k2, key) == 0 &&
		    p->invoked_us > w->completed_us && p->completed_us < get->invoked_us)
			return false;
	}
	return true;
}

bool hm_sim_reads_ok(const struct hm_sim *s, char *why, size_t len)
{
	for (size_t i = 0; i < s->n_history; i++) {
		const struct hm_sim_op *op = &s->history[i];
		char key[64];

		if (op_key(op, key, sizeof(key)) == HM_KV_GET && !read_ok(s, op)) {
			snprintf(why, len, "client %u's GET %s at %llu..%llu returned a stale value",
				 op->client, key, (unsigned long long)op->invoked_us,
				 (unsigned long long)op->completed_us);
			return false;
		}
	}
	return true;
}

/* The PUT that wrote (key, value), completed or still in flight; NULL. */
static const struct hm_sim_op *find_writer(const struct hm_sim *s, const char *key,
					   const uint8_t *v, size_t vlen, bool *in_flight)
{
	char k2[64];

	*in_flight = false;
	for (size_t i = 0; i < s->n_history; i++) {
		const struct hm_sim_op *p = &s->history[i];

		if (op_key(p, k2, sizeof(k2)) == HM_KV_PUT && strcmp(k2, key) == 0 &&
		    put_wrote(p, v, vlen))
			return p;
	}
	for (uint32_t j = 0; j < s->o.clients; j++) {
		const struct hm_sim_op *p = &s->clients[j].current;

		if (s->clients[j].waiting && op_key(p, k2, sizeof(k2)) == HM_KV_PUT &&
		    strcmp(k2, key) == 0 && put_wrote(p, v, vlen)) {
			*in_flight = true;
			return p;
		}
	}
	for (size_t i = 0; i < s->n_abandoned; i++) {
		const struct hm_sim_op *p = &s->abandoned[i];

		if (op_key(p, k2, sizeof(k2)) == HM_KV_PUT && strcmp(k2, key) == 0 &&
		    put_wrote(p, v, vlen)) {
			*in_flight = true; /* executed or not: never completed */
			return p;
		}
	}
	return NULL;
}

/* The GET's result against the agreed order (see hm_sim_linearizable). */
static bool get_linearizable(const struct hm_sim *s, const struct hm_sim_op *g, char *why,
			     size_t len)
{
	const struct hm_sim_op *last = NULL, *w = NULL;
	char key[64], k2[64];
	bool in_flight = false;

	op_key(g, key, sizeof(key));
	for (size_t i = 0; i < s->n_history; i++) {
		const struct hm_sim_op *p = &s->history[i];

		if (op_key(p, k2, sizeof(k2)) == HM_KV_PUT && strcmp(k2, key) == 0 &&
		    p->exec_seq < g->exec_seq && (!last || p->exec_seq > last->exec_seq))
			last = p;
	}
	if (g->result_len >= 1 && g->result[0] == HM_KV_OK)
		w = find_writer(s, key, g->result + 1, g->result_len - 1, &in_flight);
	if (g->result[0] == HM_KV_NOT_FOUND && !last)
		return true;
	if (w && (in_flight || w == last || w->exec_seq == g->exec_seq))
		return true;
	/* several PUTs of the latest earlier batch: any of them may be last */
	if (w && last && w->exec_seq == last->exec_seq)
		return true;
	snprintf(why, len, "client %u's GET %s (batch %llu) returned %s; the last PUT before it "
		 "in the agreed order is in batch %llu", g->client, key,
		 (unsigned long long)g->exec_seq, w ? "another PUT's value" :
		 g->result[0] == HM_KV_NOT_FOUND ? "NOT_FOUND" : "a value nobody wrote",
		 (unsigned long long)(last ? last->exec_seq : 0));
	return false;
}

bool hm_sim_linearizable(const struct hm_sim *s, char *why, size_t len)
{
	for (size_t i = 0; i < s->n_history; i++) {
		const struct hm_sim_op *a = &s->history[i];
		char key[64];

		/* real time: completion order is history order, so only ops
		 * completed before a was invoked need checking */
		for (size_t k = 0; k < i; k++) {
			const struct hm_sim_op *b = &s->history[k];

			if (b->completed_us < a->invoked_us && b->exec_seq >= a->exec_seq) {
				snprintf(why, len, "client %u's op (batch %llu) completed before client "
					 "%u's op (batch %llu) was invoked", b->client,
					 (unsigned long long)b->exec_seq, a->client,
					 (unsigned long long)a->exec_seq);
				return false;
			}
		}
		if (op_key(a, key, sizeof(key)) == HM_KV_GET && !get_linearizable(s, a, why, len))
			return false;
	}
	return true;
}

const struct hm_sim_op *hm_sim_history(const struct hm_sim *s, size_t *n)
{
	*n = s->n_history;
	return s->history;
}

uint64_t hm_sim_now(const struct hm_sim *s) { return s->now; }
uint64_t hm_sim_completed(const struct hm_sim *s) { return s->n_history; }
struct hm_node *hm_sim_node(struct hm_sim *s, uint32_t replica) { return &s->nodes[replica]; }
struct hm_service *hm_sim_service(struct hm_sim *s, uint32_t r) { return &s->services[r]; }
struct hm_client *hm_sim_client(struct hm_sim *s, uint32_t c) { return &s->clients[c].core; }
const struct hm_config *hm_sim_config(const struct hm_sim *s) { return &s->cfg; }

const struct hm_keypair *hm_sim_client_keys(const struct hm_sim *s, uint32_t client)
{
	return &s->clients[client].keys;
}

void hm_sim_dump(const struct hm_sim *s, FILE *out)
{
	fprintf(out, "  sim: n=%u f=%u clients=%u ops=%u batch=%u depth=%u ckpt=%u window=%u "
		"delay=%u..%u dup=%u%% loss=%u%% service=%s now=%llu completed=%zu in-flight=%zu "
		"abandoned=%zu refused=%llu\n",
		s->o.n, s->o.f, s->o.clients, s->o.ops_per_client, s->o.batch_size,
		s->o.pipeline_depth, s->o.checkpoint_interval, s->o.window, s->o.min_delay_us,
		s->o.max_delay_us, s->o.duplicate_pct, s->o.loss_pct,
		s->o.service == HM_SIM_KV_SKEW ? "kv-skew" : "kv", (unsigned long long)s->now,
		s->n_history, s->heap_len, s->n_abandoned, (unsigned long long)hm_sim_refused(s));
	for (uint32_t i = 0; i < s->o.n; i++) {
		const struct pbft_stats *st = pbft_stats(s->nodes[i].core);

		fprintf(out, "  replica %u%s%s: view=%llu%s low=%llu executed=%llu proposed=%llu "
			"stable=%llu mismatches=%llu vc started=%llu installed=%llu refused=%llu "
			"nv refused=%llu proven_faulty=%#x st started=%llu done=%llu failed=%llu "
			"served=%llu bad=%llu blamed=%#x\n", i, s->crashed[i] ? " (crashed)" : "",
			s->faulty[i] ? " (faulty)" : "",
			(unsigned long long)pbft_view(s->nodes[i].core),
			pbft_in_view_change(s->nodes[i].core) ? " (changing)" : "",
			(unsigned long long)pbft_low_watermark(s->nodes[i].core),
			(unsigned long long)pbft_last_executed(s->nodes[i].core),
			(unsigned long long)st->batches_proposed,
			(unsigned long long)st->checkpoints_stable,
			(unsigned long long)st->checkpoint_mismatches,
			(unsigned long long)st->view_changes_started,
			(unsigned long long)st->view_changes_installed,
			(unsigned long long)st->view_changes_refused,
			(unsigned long long)st->new_views_refused, st->proven_faulty,
			(unsigned long long)st->state_transfers_started,
			(unsigned long long)st->state_transfers_done,
			(unsigned long long)st->state_transfers_failed,
			(unsigned long long)st->state_chunks_served,
			(unsigned long long)st->state_bad_chunks, st->state_blamed);
		for (int r = 0; r < HM_DROP_REASON_MAX; r++) {
			uint64_t d = hm_node_drops(&s->nodes[i], r);

			if (d)
				fprintf(out, "    drops %s: %llu\n", hm_drop_reason_name(r),
					(unsigned long long)d);
		}
	}
	for (uint32_t j = 0; j < s->o.clients; j++)
		fprintf(out, "  client %u: done=%u waiting=%d retransmits=%u\n", j,
			s->clients[j].done, s->clients[j].waiting, s->clients[j].core.retransmits);
}

const struct hm_keypair *hm_sim_replica_keys(const struct hm_sim *s, uint32_t replica)
{
	return &s->replica_keys[replica];
}
