// SPDX-License-Identifier: MIT
/* The client transport: a UDP socket around the client state machine (see
 * transport.h). */
#include "client/transport.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "common/clock.h"
#include "common/log.h"

/* The longest a blocking wait sleeps in poll() between two looks. */
#define WAIT_SLICE_MS 100

static void transport_send(void *ctx, uint32_t to, const void *buf, size_t len)
{
	struct hm_transport *t = ctx;
	const struct hm_member *m = &t->cfg->members[to];

	if (sendto(t->fd, buf, len, 0, (const struct sockaddr *)&m->addr, m->addr_len) >= 0 ||
	    errno == EAGAIN)
		return;
	if (t->log_send_errors)
		hm_debug("client %u: sendto replica %u: %s", t->core.id, to, strerror(errno));
	else
		fprintf(stderr, "hmctl: sendto replica %u: %s\n", to, strerror(errno));
}

int hm_transport_open(struct hm_transport *t, const struct hm_config *cfg, uint32_t id,
		      const struct hm_keypair *keys, const struct sockaddr *bind_addr,
		      socklen_t bind_len, char *err, size_t errlen)
{
	memset(t, 0, sizeof(*t));
	t->cfg = cfg;
	t->keys = *keys;
	t->fd = socket(bind_addr ? bind_addr->sa_family : cfg->members[0].addr.ss_family,
		       SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (t->fd < 0 || (bind_addr && bind(t->fd, bind_addr, bind_len) < 0)) {
		snprintf(err, errlen, "socket: %s", strerror(errno));
		hm_transport_close(t);
		return -1;
	}
	if (hm_client_init(&t->core, cfg, id, &t->keys, hm_wall_us(), transport_send, t) < 0) {
		snprintf(err, errlen, "client %u: bad keys in %s", id, cfg->path);
		hm_transport_close(t);
		return -1;
	}
	return 0;
}

int hm_transport_open_key_file(struct hm_transport *t, const struct hm_config *cfg, uint32_t id,
			       const char *key_path, char *err, size_t errlen)
{
	struct hm_keypair keys;
	int rc;

	uint64_t last_ts;

	memset(t, 0, sizeof(*t));
	if (hm_keypair_read(key_path, &keys, err, errlen) < 0)
		return -1;
	rc = hm_transport_open(t, cfg, id, &keys, NULL, 0, err, errlen);
	sodium_memzero(&keys, sizeof(keys));
	if (rc < 0)
		return -1;
	if (hm_identity_lock(&t->lock, cfg, id, t->keys.pk, &last_ts, err, errlen) < 0) {
		hm_transport_close(t);
		return -1;
	}
	/* The first request goes out at max(stored + 1, wall clock). */
	if (t->core.ts < last_ts)
		t->core.ts = last_ts;
	return 0;
}

int hm_transport_open_node(struct hm_transport *t, const struct hm_config *cfg, char *err,
			   size_t errlen)
{
	memset(t, 0, sizeof(*t));
	if (!cfg->has_node_id || !cfg->private_key_path[0]) {
		snprintf(err, errlen, "%s: a client needs node.id and node.private_key", cfg->path);
		return -1;
	}
	if (!hm_config_client(cfg, cfg->node_id)) {
		snprintf(err, errlen, "%s: node.id %u is not in cluster.clients", cfg->path,
			 cfg->node_id);
		return -1;
	}
	return hm_transport_open_key_file(t, cfg, cfg->node_id, cfg->private_key_path, err, errlen);
}

void hm_transport_close(struct hm_transport *t)
{
	if (!t->cfg)
		return; /* zeroed, never opened, or closed already */
	if (t->core.req)
		hm_client_free(&t->core);
	hm_identity_unlock(&t->lock);
	if (t->fd >= 0)
		close(t->fd);
	sodium_memzero(&t->keys, sizeof(t->keys));
	t->cfg = NULL;
	t->fd = -1;
}

int hm_transport_fd(const struct hm_transport *t)
{
	return t->fd;
}

bool hm_transport_busy(const struct hm_transport *t)
{
	return t->core.busy;
}

enum hm_transport_status hm_transport_submit(struct hm_transport *t, const void *op, size_t len,
					     struct hm_cert *cert)
{
	hm_transport_abandon(t);
	t->done = t->certified = false;
	t->cert = NULL;
	/* Above every timestamp this identity used (another transport of this
	 * process may have gone on), and stored before the request leaves
	 * (hm_client_submit sends it under ts + 1): the next process under
	 * this identity starts above it. */
	if (t->core.ts < hm_identity_last(&t->lock))
		t->core.ts = hm_identity_last(&t->lock);
	if (hm_identity_store(&t->lock, t->core.ts + 1) < 0)
		hm_debug("client %u: cannot store its timestamp in %s: %s", t->core.id,
			 hm_identity_path(&t->lock), strerror(errno));
	if (hm_client_submit(&t->core, op, len, hm_mono_us()) < 0)
		return HM_TRANSPORT_TOO_LARGE;
	if (cert) {
		if (hm_cert_init(cert, t->core.id, t->core.ts, op, len) < 0) {
			hm_transport_abandon(t);
			return HM_TRANSPORT_NO_MEMORY;
		}
		t->cert = cert;
	}
	return HM_TRANSPORT_OK;
}

static bool refused(const struct hm_transport *t)
{
	return t->done && t->core.status != HM_REPLY_RESULT;
}

/* A refusal has no certificate to wait for. */
static bool finished(const struct hm_transport *t)
{
	return t->done && (!t->cert || t->certified || refused(t));
}

bool hm_transport_pump(struct hm_transport *t)
{
	uint8_t buf[HM_MAX_DATAGRAM];
	bool before = finished(t);
	ssize_t n;

	while ((n = recv(t->fd, buf, sizeof(buf), MSG_DONTWAIT)) >= 0) {
		/* The certificate takes replies also after the f+1 result. */
		if (t->cert && !t->certified)
			t->certified = hm_cert_add(t->cert, t->cfg, buf, (size_t)n);
		if (hm_client_receive(&t->core, buf, (size_t)n))
			t->done = true;
	}
	hm_transport_tick(t);
	return !before && finished(t);
}

void hm_transport_tick(struct hm_transport *t)
{
	hm_client_tick(&t->core, hm_mono_us());
}

void hm_transport_abandon(struct hm_transport *t)
{
	t->core.busy = false;
}

enum hm_transport_status hm_transport_wait(struct hm_transport *t, uint64_t deadline_us)
{
	while (hm_mono_us() < deadline_us) {
		struct pollfd p = { .fd = t->fd, .events = POLLIN };
		/* Wake for a datagram, or in time to retransmit. */
		int64_t wait_ms = ((int64_t)t->core.deadline - (int64_t)hm_mono_us()) / 1000;

		if (!t->core.busy)
			wait_ms = WAIT_SLICE_MS; /* the result came: only the certificate waits */
		poll(&p, 1, wait_ms < 0 ? 0 : wait_ms > WAIT_SLICE_MS ? WAIT_SLICE_MS : (int)wait_ms);
		if (hm_transport_pump(t))
			return refused(t) ? HM_TRANSPORT_REFUSED : HM_TRANSPORT_OK;
	}
	hm_transport_abandon(t);
	return t->done ? HM_TRANSPORT_NO_CERT : HM_TRANSPORT_NO_RESULT;
}

const char *hm_transport_refusal(const struct hm_transport *t, char *buf, size_t len)
{
	if (t->core.status == HM_REPLY_CONFLICT)
		snprintf(buf, len, "the replicas refused request %" PRIu64 " of client identity %u: "
			 "another request already executed under that timestamp (is another "
			 "process using this client identity?)", t->core.ts, t->core.id);
	else
		snprintf(buf, len, "the replicas refused request %" PRIu64 " of client identity %u: "
			 "its timestamp is not above the last one they executed for this identity "
			 "(is another process using it, or did the clock go back?)", t->core.ts,
			 t->core.id);
	return buf;
}

enum hm_transport_status hm_transport_call(struct hm_transport *t, const void *op, size_t len,
					   uint64_t deadline_us, struct hm_cert *cert)
{
	enum hm_transport_status st = hm_transport_submit(t, op, len, cert);

	return st != HM_TRANSPORT_OK ? st : hm_transport_wait(t, deadline_us);
}
