// SPDX-License-Identifier: MIT
/* The PBFT client state machine (see client.h). */
#include "client/client.h"

#include <stdlib.h>
#include <string.h>

#include "common/wire.h"

int hm_client_init(struct hm_client *c, const struct hm_config *cfg, uint32_t id,
		   const struct hm_keypair *keys, uint64_t first_timestamp,
		   void (*send)(void *ctx, uint32_t to, const void *buf, size_t len), void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->id = id;
	c->n = cfg->n_members;
	c->f = cfg->max_faulty_nodes;
	c->keys = keys;
	c->sign = cfg->signed_requests;
	c->timeout_us = (uint64_t)cfg->timeout_ms * 1000;
	c->max_message_size = cfg->max_message_size;
	c->ts = first_timestamp;
	c->send = send;
	c->send_ctx = ctx;
	for (uint32_t i = 0; i < c->n; i++) {
		memcpy(c->replica_keys[i], cfg->members[i].public_key, HM_PUBKEY_LEN);
		if (hm_link_keys_derive(id, keys, i, c->replica_keys[i], &c->links[i]) < 0)
			return -1;
	}
	c->req = malloc(cfg->max_message_size);
	return c->req ? 0 : -1;
}

void hm_client_free(struct hm_client *c)
{
	free(c->req);
	c->req = NULL;
}

static void send_to(struct hm_client *c, uint32_t to)
{
	hm_mac_stamp((struct hm_hdr *)c->req, c->links[to].tx);
	c->send(c->send_ctx, to, c->req, c->req_len);
}

int hm_client_submit(struct hm_client *c, const void *op, size_t len, uint64_t now_us)
{
	if (c->busy)
		return -1;
	/* The primary must be able to carry it in a PRE-PREPARE (count and
	 * length words around it); a larger one would only be refused. */
	if (HM_HDR_LEN + 8 + HM_HDR_LEN + len > c->max_message_size)
		return -1;
	c->ts++;
	c->req_len = hm_msg_build(c->req, c->max_message_size, HM_MSG_REQUEST, c->id, 0, c->ts,
				  NULL, op, (uint32_t)len, c->sign ? c->keys : NULL);
	if (!c->req_len)
		return -1;
	memcpy(c->req_digest, ((const struct hm_hdr *)c->req)->digest, HM_DIGEST_LEN);
	memset(c->replies, 0, sizeof(c->replies));
	c->busy = true;
	c->retransmits = 0;
	c->deadline = now_us + c->timeout_us;
	/* To every replica, not only the primary: backups learn where to send
	 * their replies (the request reaches them next inside a PRE-PREPARE,
	 * which carries no address), and they know a request is pending. */
	for (uint32_t i = 0; i < c->n; i++)
		send_to(c, i);
	return 0;
}

void hm_client_tick(struct hm_client *c, uint64_t now_us)
{
	if (!c->busy || now_us < c->deadline)
		return;
	/* The primary may be faulty or the request lost: ask everyone. */
	for (uint32_t i = 0; i < c->n; i++)
		send_to(c, i);
	c->retransmits++;
	c->deadline = now_us + c->timeout_us;
}

/* How many recorded replies carry body digest d. */
static uint32_t matches(const struct hm_client *c, const uint8_t *d)
{
	uint32_t count = 0;

	for (uint32_t i = 0; i < c->n; i++)
		if (c->replies[i].have && memcmp(c->replies[i].digest, d, HM_DIGEST_LEN) == 0)
			count++;
	return count;
}

bool hm_client_receive(struct hm_client *c, const uint8_t *buf, size_t len)
{
	enum hm_drop_reason why;
	struct hm_reply rep;
	struct hm_msg m;

	if (!c->busy || hm_msg_decode(buf, len, HM_MAX_DATAGRAM, &m, &why) < 0 ||
	    m.type != HM_MSG_REPLY || m.sender >= c->n)
		return false;
	if (!hm_mac_verify(m.hdr, c->links[m.sender].rx) || !hm_msg_payload_ok(&m, &why) ||
	    hm_reply_parse(&m, &rep) < 0 || rep.client != c->id) {
		c->bad_replies++;
		return false;
	}
	if (m.seq != c->ts || c->replies[m.sender].have)
		return false; /* an old request's reply, or a duplicate */
	/* For our timestamp but about another request (one sent under our
	 * identity by someone else): never ours to take. */
	if (memcmp(rep.req_digest, c->req_digest, HM_DIGEST_LEN) != 0) {
		c->foreign_replies++;
		return false;
	}
	/* Replies match on their body (client, exec_seq, request digest,
	 * status, result); the batch proofs differ from replica to replica
	 * and are not checked here.  f+1 MAC-authenticated replies with one
	 * body include a correct replica's: no signature is needed to take
	 * the result (docs/protocol.md, "Replies accepted on f+1 matching
	 * MAC-authenticated replies"). */
	c->replies[m.sender].have = true;
	hm_digest(rep.body, rep.body_len, c->replies[m.sender].digest);
	if (matches(c, c->replies[m.sender].digest) < c->f + 1)
		return false;
	c->busy = false;
	c->view = m.view;
	c->status = rep.status;
	c->result_seq = rep.exec_seq;
	c->result_len = rep.result_len < sizeof(c->result) ? rep.result_len : sizeof(c->result);
	memcpy(c->result, rep.result, c->result_len);
	return true;
}
