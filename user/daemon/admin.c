// SPDX-License-Identifier: MIT
/* hypermeshd --check-config and --cleanup (admin.h). */
#include "daemon/admin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/crypto.h"
#include "dataplane/xdp_dataplane.h"
#include "replica/node.h"
#include "service/ct/ct_service.h"
#include "service/dns/dns_chain.h"

/* The DNS trust anchors parse, as the replica will read them. */
static int check_dns_anchors(const struct hm_config *cfg)
{
	const struct hm_dns_config *c = &cfg->dns;
	struct hm_dns_anchors *a;
	char err[1024];

	if (!c->enabled || (!c->n_trust_anchors && !c->trust_anchor_file[0]))
		return 0;
	a = hm_dns_anchors_new((const char *const *)c->trust_anchors, c->n_trust_anchors,
			       c->trust_anchor_file[0] ? c->trust_anchor_file : NULL, err, sizeof(err));
	if (!a) {
		fprintf(stderr, "hypermeshd: %s: byzantine_config.dns: trust anchors: %s\n", cfg->path,
			err);
		return -1;
	}
	hm_dns_anchors_free(a);
	return 0;
}

/* id is a replica's or a client's, and key (when there is one) is the
 * secret half of its public key in the file. */
static int check_identity(const struct hm_config *cfg, uint32_t id, const char *key)
{
	const struct hm_client_entry *c = id >= cfg->n_members ? hm_config_client(cfg, id) : NULL;
	const uint8_t *pk = id < cfg->n_members ? cfg->members[id].public_key
						: c ? c->public_key : NULL;
	struct hm_keypair kp;
	char err[512];

	if (!pk) {
		fprintf(stderr, "hypermeshd: %s: node.id %u is neither a replica (0..%u) nor a "
			"client in cluster.clients\n", cfg->path, id, cfg->n_members - 1);
		return -1;
	}
	if (!key[0]) {
		if (id >= cfg->n_members)
			return 0; /* a client file may leave the key to the command line */
		fprintf(stderr, "hypermeshd: %s: replica %u has no private key: give --key or "
			"node.private_key\n", cfg->path, id);
		return -1;
	}
	if (hm_keypair_read(key, &kp, err, sizeof(err)) < 0) {
		fprintf(stderr, "hypermeshd: %s\n", err);
		return -1;
	}
	if (memcmp(kp.pk, pk, HM_PUBKEY_LEN) != 0) {
		fprintf(stderr, "hypermeshd: %s is not the key of %s %u in %s\n", key,
			id < cfg->n_members ? "replica" : "client", id, cfg->path);
		return -1;
	}
	return 0;
}

int hm_daemon_check_config(const char *path, long id, const char *key)
{
	static struct hm_config cfg;
	char err[1024];
	int rc = 1;

	if (hm_crypto_init() < 0 || hm_config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "hypermeshd: %s\n", err);
		return 1;
	}
	if (id < 0)
		id = cfg.has_node_id ? (long)cfg.node_id : -1;
	if (!key)
		key = cfg.private_key_path;
	if (hm_ct_config_check(&cfg, err, sizeof(err)) < 0)
		fprintf(stderr, "hypermeshd: %s\n", err);
	else if (!hm_node_config_fits(&cfg))
		fprintf(stderr, "hypermeshd: %s: network.max_message_size %u is too small for a "
			"VIEW-CHANGE of watermark_window %u at f = %u (the replica would not start): "
			"raise it or lower the window\n", cfg.path, cfg.max_message_size,
			cfg.watermark_window, cfg.max_faulty_nodes);
	else if (check_dns_anchors(&cfg) == 0 &&
		 (id < 0 || check_identity(&cfg, (uint32_t)id, key) == 0))
		rc = 0;
	if (rc == 0) {
		printf("%s: ok: %u replicas (f=%u), dataplane %s; ", cfg.path, cfg.n_members,
		       cfg.max_faulty_nodes, cfg.dataplane == HM_DATAPLANE_XDP ? "xdp" : "socket");
		if (id < 0)
			printf("no node identity (a shared file)");
		else
			printf("%s %ld", id < (long)cfg.n_members ? "replica" : "client", id);
		printf("; dns %s\n", cfg.dns.enabled ? "on" : "off");
	}
	hm_config_free(&cfg);
	return rc;
}

int hm_daemon_cleanup(const char *path)
{
	const char *result = getenv("SERVICE_RESULT");
	static struct hm_config cfg;
	char err[1024], report[256];
	int rc = 0;

	if (hm_config_load(path, &cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "hypermeshd: %s\n", err);
		return 1;
	}
	/* XDP runs on network.interface in xdp mode, and the DNS responder
	 * (dns.xdp) on dns.xdp_interface, else network.interface. */
	const char *ifname = cfg.dataplane == HM_DATAPLANE_XDP ? cfg.interface
			     : cfg.dns.enabled && cfg.dns.xdp
				     ? (cfg.dns.xdp_interface[0] ? cfg.dns.xdp_interface : cfg.interface)
				     : NULL;

	if (!ifname || !ifname[0]) {
		printf("hypermeshd --cleanup: %s: no XDP in this configuration, nothing to remove\n",
		       cfg.path);
	} else if (result && strcmp(result, "success") == 0) {
		/* the replica removed its own; what is left was attached by hand */
		printf("hypermeshd --cleanup: the replica stopped cleanly and removed what it "
		       "attached; anything left on %s was attached by hand: kept\n", ifname);
	} else if (hm_xdp_dp_cleanup(ifname, report, sizeof(report)) < 0) {
		fprintf(stderr, "hypermeshd --cleanup: %s\n", report);
		rc = 1;
	} else {
		printf("hypermeshd --cleanup: %s\n", report);
	}
	hm_config_free(&cfg);
	return rc;
}
