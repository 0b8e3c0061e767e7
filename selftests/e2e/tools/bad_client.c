// SPDX-License-Identifier: MIT
/*
 * hm_bad_client: a faulty client for selftests/e2e/e2e_request_auth.sh.  It
 * is hmctl's client (the configuration's node.id and node.private_key,
 * user/client/transport.h) except that every datagram it sends to a replica
 * in --bad leaves with one byte of its link MAC flipped (after hm_client
 * stamped it): its requests are authentic only at the other replicas.
 *
 *   hm_bad_client [-c CONFIG] --bad IDS [--ops K] [--timeout S]
 *
 * IDS is a comma list of replica ids (e.g. 1,2,3); CONFIG defaults to
 * $HM_CONFIG.  It submits K KV puts (default 5) one after the other, all
 * within S seconds (default 10), and prints "served N of K".
 *
 * Exit: 0 all K served (f+1 matching replies each), 3 not all served within
 * S seconds, 1 any other failure (refused, bad configuration), 2 usage.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/transport.h"
#include "common/clock.h"
#include "common/config.h"
#include "common/crypto.h"
#include "service/kv/kv.h"

#define EXIT_NOT_SERVED 3

static struct {
	void (*send)(void *ctx, uint32_t to, const void *buf, size_t len);
	void *ctx;
	bool bad[HM_MAX_REPLICAS];
} wrap;

/* hm_client's send callback: the transport's, with the MAC spoilt for the
 * replicas in --bad. */
static void bad_send(void *ctx, uint32_t to, const void *buf, size_t len)
{
	uint8_t copy[HM_MAX_DATAGRAM];

	(void)ctx;
	if (to < HM_MAX_REPLICAS && wrap.bad[to] && len > HM_OFF_MAC && len <= sizeof(copy)) {
		memcpy(copy, buf, len);
		copy[HM_OFF_MAC] ^= 0x01;
		buf = copy;
	}
	wrap.send(wrap.ctx, to, buf, len);
}

static int usage(void)
{
	fprintf(stderr, "usage: hm_bad_client [-c CONFIG] --bad IDS [--ops K] [--timeout S]\n");
	return 2;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "bad", required_argument, NULL, 'b' },
		{ "ops", required_argument, NULL, 'k' },
		{ "timeout", required_argument, NULL, 't' },
		{ 0 },
	};
	const char *config = getenv("HM_CONFIG"), *bad = NULL;
	static struct hm_config cfg;
	struct hm_transport t;
	unsigned ops = 5, served = 0;
	double timeout_s = 10;
	uint64_t deadline;
	char err[1024];
	int opt, rc = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((opt = getopt_long(argc, argv, "c:", longopts, NULL)) != -1) {
		if (opt == 'c')
			config = optarg;
		else if (opt == 'b')
			bad = optarg;
		else if (opt == 'k')
			ops = (unsigned)strtoul(optarg, NULL, 10);
		else if (opt == 't')
			timeout_s = strtod(optarg, NULL);
		else
			return usage();
	}
	if (!config || !bad || optind != argc || ops < 1 || timeout_s <= 0)
		return usage();
	if (hm_crypto_init() < 0 || hm_config_load(config, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "hm_bad_client: %s\n", err);
		return 1;
	}
	for (const char *s = bad; *s;) {
		char *end;
		unsigned long id = strtoul(s, &end, 10);

		if (end == s || id >= cfg.n_members || (*end && *end != ','))
			return usage();
		wrap.bad[id] = true;
		s = *end ? end + 1 : end;
	}
	if (hm_transport_open_node(&t, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "hm_bad_client: %s\n", err);
		return 1;
	}
	wrap.send = t.core.send;
	wrap.ctx = t.core.send_ctx;
	t.core.send = bad_send;

	deadline = hm_mono_us() + (uint64_t)(timeout_s * 1e6);
	while (served < ops) {
		enum hm_transport_status st;
		uint8_t op[64];
		char key[32];
		size_t len;

		snprintf(key, sizeof(key), "bad-%u-%u", t.core.id, served);
		len = hm_kv_encode_put(op, sizeof(op), key, "x", 1);
		st = hm_transport_call(&t, op, len, deadline, NULL);
		if (st != HM_TRANSPORT_OK) {
			rc = st == HM_TRANSPORT_NO_RESULT ? EXIT_NOT_SERVED : 1;
			if (rc == 1)
				fprintf(stderr, "hm_bad_client: request %u refused or too large\n",
					served);
			break;
		}
		served++;
	}
	printf("served %u of %u (client %u, %u retransmissions of the last)\n", served, ops,
	       t.core.id, t.core.retransmits);
	hm_transport_close(&t);
	hm_config_free(&cfg);
	return rc;
}
