/* SPDX-License-Identifier: MIT */
/*
 * The client transport: the one way a client reaches the replicas (hmctl's
 * KV, bench and inject commands, `hmctl cert check`, `hmctl dns query`,
 * `--tlsa`, and the DNS daemon's OBSERVE submitter all use it).  A UDP
 * socket to the replicas around the client state machine (client.h):
 * submitting sends the request to every replica; pumping reads every
 * waiting datagram into the state machine (f+1 matching signed replies make
 * the result) and into a certificate when one is being collected (2f+1,
 * certificate.h), then retransmits to every replica if the request's
 * deadline passed.  Two ways to drive it:
 *
 *   blocking (hmctl):
 *       hm_transport_open_node(&t, cfg, err, len);
 *       rc = hm_transport_call(&t, op, len, hm_mono_us() + 10 s, cert or NULL);
 *       the result is in t.core.result / result_len; hm_transport_close(&t);
 *
 *   fd-driven (a daemon's epoll loop):
 *       hm_transport_open(&t, cfg, id, keys, bind address, err, len);
 *       add hm_transport_fd() to epoll; hm_transport_submit() when
 *       !hm_transport_busy(); hm_transport_pump() when the fd is readable
 *       and from a periodic timer (retransmissions); hm_transport_abandon()
 *       a request the cluster never answers.
 */
#ifndef HM_TRANSPORT_H
#define HM_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "client/certificate.h"
#include "client/client.h"
#include "client/identity.h"
#include "common/config.h"
#include "common/crypto.h"

struct hm_transport {
	const struct hm_config *cfg;
	struct hm_keypair keys;    /* the client's (core points here) */
	struct hm_client core;     /* ids, link keys, the outstanding request, its result */
	int fd;
	bool done;                 /* the outstanding request has its f+1 result */
	struct hm_cert *cert;      /* collecting 2f+1 signed replies, or NULL */
	bool certified;            /* cert is complete */
	/* Send failures go to the debug log (a daemon) rather than to stderr
	 * as "hmctl: sendto replica I: ..." (the command line). */
	bool log_send_errors;
	/* hm_transport_open_key_file and _node: this process holds the
	 * identity (identity.h); timestamps start above the last one stored
	 * and each is stored before its request leaves. */
	struct hm_identity_lock lock;
};

enum hm_transport_status {
	HM_TRANSPORT_OK = 0,
	HM_TRANSPORT_TOO_LARGE,    /* the op does not fit a request inside a PRE-PREPARE */
	HM_TRANSPORT_NO_RESULT,    /* no f+1 matching signed replies by the deadline */
	HM_TRANSPORT_NO_CERT,      /* the f+1 result, but not 2f+1 signed replies by then */
	HM_TRANSPORT_NO_MEMORY,
	/* f+1 matching signed refusals: the request's timestamp was already
	 * used (t->core.status says how; hm_transport_refusal() says it in
	 * words).  Nothing executed. */
	HM_TRANSPORT_REFUSED,
};

/* A client `id` with `keys` (copied): a non-blocking UDP socket of the
 * members' address family, bound to `bind_addr` if not NULL (a replica's
 * address with port 0, say).  0, or -1 with the reason in err. */
int hm_transport_open(struct hm_transport *t, const struct hm_config *cfg, uint32_t id,
		      const struct hm_keypair *keys, const struct sockaddr *bind_addr,
		      socklen_t bind_len, char *err, size_t errlen);
/* The same with the private key read from key_path, for a command-line
 * process: it also takes the identity's lock (identity.h), and fails with
 * "client identity N is in use by pid P" while another process holds it. */
int hm_transport_open_key_file(struct hm_transport *t, const struct hm_config *cfg, uint32_t id,
			       const char *key_path, char *err, size_t errlen);
/* The configuration's own client identity: node.id (one of
 * cluster.clients) with node.private_key. */
int hm_transport_open_node(struct hm_transport *t, const struct hm_config *cfg, char *err,
			   size_t errlen);
/* Also fine on a zeroed transport, one whose open failed, or twice. */
void hm_transport_close(struct hm_transport *t);
int hm_transport_fd(const struct hm_transport *t);
/* A request is outstanding (submitted, neither answered nor abandoned). */
bool hm_transport_busy(const struct hm_transport *t);

/* Send op to every replica as a new request, abandoning one still
 * outstanding.  With cert, also collect the 2f+1 signed replies into it
 * (hm_cert_init'd here; the caller hm_cert_free's it). */
enum hm_transport_status hm_transport_submit(struct hm_transport *t, const void *op, size_t len,
					     struct hm_cert *cert);
/* Read every datagram waiting, then retransmit if the deadline passed.
 * True when this call completed the outstanding request: its f+1 result
 * (in t->core.result) and, when collecting, its certificate. */
bool hm_transport_pump(struct hm_transport *t);
/* Only the retransmission half of a pump (for many transports at once). */
void hm_transport_tick(struct hm_transport *t);
/* Stop waiting for the outstanding request (it may never be answered). */
void hm_transport_abandon(struct hm_transport *t);
/* Block, pumping, until the request is done or the monotonic clock
 * (hm_mono_us) reaches deadline_us; a request not done is abandoned. */
enum hm_transport_status hm_transport_wait(struct hm_transport *t, uint64_t deadline_us);
/* Why the last request was refused, in words for an operator (after
 * HM_TRANSPORT_REFUSED, or a pump that completed with a refusal). */
const char *hm_transport_refusal(const struct hm_transport *t, char *buf, size_t len);

/* Submit and wait. */
enum hm_transport_status hm_transport_call(struct hm_transport *t, const void *op, size_t len,
					   uint64_t deadline_us, struct hm_cert *cert);

#endif /* HM_TRANSPORT_H */
