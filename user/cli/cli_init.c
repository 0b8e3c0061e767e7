// SPDX-License-Identifier: MIT
/*
 * hmctl init: a new cluster's keys and configuration files for a list of
 * replica addresses (cli_init.h).
 *
 * Layout of OUT (one directory per machine, so that copying a directory is
 * the whole installation and no machine receives another's secret key):
 *
 *   OUT/replica-I/hypermesh.yaml   -> /etc/hypermesh/ on replica I's host
 *   OUT/replica-I/replica-I.key    its secret key (0600), .pub beside it
 *   OUT/client/hmctl.yaml          the operator's hmctl configuration
 *   OUT/client/client-ID.key       the operator's client key (0600)
 *
 * Every file holds the whole cluster with the public keys inline (the
 * format has no include, and inline keys need no key files to copy); the
 * files differ only in their node section.  One file per host, rather than
 * a shared cluster file plus a per-host one, because the daemon reads one
 * file, and `hypermeshd --check-config` on the host checks exactly what
 * will run.
 */
#include "cli/cli_init.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "cli/cli_msg.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/netprefix.h"

#define INIT_MAX_UPSTREAMS 16
#define INIT_MAX_ALLOW 64
#define DEFAULT_TRUST_ANCHOR "/usr/share/dns/root.key" /* Debian's dns-root-data */

struct init_upstream {
	const char *zone, *address;
	bool forward;
};

struct init_opts {
	const char *out, *data_dir, *dataplane, *interface, *trust_anchor_file;
	const char *addresses[HM_MAX_REPLICAS];
	uint32_t n, f, port, client_id, metrics_port;
	bool force, dns;
	struct init_upstream upstreams[INIT_MAX_UPSTREAMS];
	uint32_t n_upstreams;
	const char *allow[INIT_MAX_ALLOW]; /* dns.allow; none: loopback only */
	uint32_t n_allow;
};

struct init_keys {
	struct hm_keypair replica[HM_MAX_REPLICAS];
	struct hm_keypair client;
};

static const char init_usage[] =
	"usage: hmctl init --out DIR [options] ADDRESS...\n"
	"  Writes the keys and configuration of a new cluster of n = 3f+1 replicas, one per\n"
	"  ADDRESS (an IPv4 or IPv6 literal), in DIR:\n"
	"    DIR/replica-I/   hypermesh.yaml and replica-I.key: copy to /etc/hypermesh on host I\n"
	"    DIR/client/      hmctl.yaml and client-ID.key: the operator's hmctl -c configuration\n"
	"  --out DIR               where to write (created if missing)\n"
	"  --port N                consensus UDP port of every replica (default 7000)\n"
	"  --data-dir DIR          the replicas' data directory (default /var/lib/hypermesh)\n"
	"  --client-id N           the operator's client id (default 100)\n"
	"  --metrics-port N        Prometheus /metrics port, 0 for none (default 9154)\n"
	"  --dataplane socket|xdp  (default socket); xdp needs --interface\n"
	"  --interface IF          the NIC the XDP program attaches to (the same name on every host)\n"
	"  --no-dns                no DNS service (by default every replica resolves on port 53)\n"
	"  --forward ADDR[@PORT]   send every query to this recursive resolver (repeatable);\n"
	"                          default: each replica resolves from the root servers itself\n"
	"  --stub ZONE=ADDR[@PORT] ask this authoritative server for ZONE (repeatable)\n"
	"  --allow PREFIX          DNS clients to serve, e.g. 192.0.2.0/24 (repeatable); default:\n"
	"                          loopback only, every other client gets REFUSED (no open resolver)\n"
	"  --trust-anchor-file F   DNSSEC trust anchors (default " DEFAULT_TRUST_ANCHOR ")\n"
	"  --force                 overwrite existing keys and files\n"
	"  Exit status: 0 written, 1 refused (existing keys, a bad address), 2 usage.\n";

static int usage_error(const char *what)
{
	if (what)
		hm_cli_error("init: %s", what);
	fputs(init_usage, stderr);
	return 2;
}

static bool parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (!*s || *s == '-' || *s == '+')
		return false;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v > max)
		return false;
	*out = (uint32_t)v;
	return true;
}

static bool is_ip_literal(const char *s)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* ADDR or ADDR@PORT, as byzantine_config.dns.upstreams[].address takes it. */
static bool is_upstream_address(const char *s)
{
	char addr[80];
	const char *at = strchr(s, '@');
	uint32_t port;

	if (strlen(s) >= sizeof(addr))
		return false;
	snprintf(addr, sizeof(addr), "%.*s", (int)(at ? (size_t)(at - s) : strlen(s)), s);
	return is_ip_literal(addr) && (!at || (parse_u32(at + 1, 65535, &port) && port > 0));
}

static int add_upstream(struct init_opts *o, const char *zone, const char *address,
			bool forward)
{
	size_t zl = strlen(zone);

	if (o->n_upstreams == INIT_MAX_UPSTREAMS)
		return usage_error("at most 16 --forward/--stub upstreams");
	if (!is_upstream_address(address)) {
		hm_cli_error("init: upstream \"%s\": expected ADDR or ADDR@PORT, ADDR an IP literal",
			     address);
		return 2;
	}
	if (!zl || zone[zl - 1] != '.') {
		hm_cli_error("init: --stub zone \"%s\": expected an absolute name ending in '.'",
			     zone);
		return 2;
	}
	o->upstreams[o->n_upstreams++] = (struct init_upstream){ zone, address, forward };
	return 0;
}

/* --allow PREFIX: checked here with the parser the daemon uses, so that a
 * typo is refused now rather than by --check-config on every host. */
static int add_allow(struct init_opts *o, const char *arg)
{
	struct hm_prefix p;
	char why[160];

	if (o->n_allow == INIT_MAX_ALLOW)
		return usage_error("at most 64 --allow prefixes");
	if (hm_prefix_parse(arg, &p, why, sizeof(why)) < 0) {
		hm_cli_error("init: --allow \"%s\": %s", arg, why);
		return 1;
	}
	o->allow[o->n_allow++] = arg;
	return 0;
}

/* --stub ZONE=ADDR[@PORT] */
static int add_stub(struct init_opts *o, char *arg)
{
	char *eq = strchr(arg, '=');

	if (!eq)
		return usage_error("--stub expects ZONE=ADDR[@PORT]");
	*eq = 0;
	return add_upstream(o, arg, eq + 1, false);
}

static int parse_number_option(const char *name, const char *arg, uint32_t min, uint32_t max,
			       uint32_t *out)
{
	if (!parse_u32(arg, max, out) || *out < min) {
		hm_cli_error("init: %s %s: expected an integer %u..%u", name, arg, min, max);
		return 2;
	}
	return 0;
}

static int parse_init_options(int argc, char **argv, struct init_opts *o)
{
	static const struct option longopts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "port", required_argument, NULL, 'p' },
		{ "data-dir", required_argument, NULL, 'd' },
		{ "client-id", required_argument, NULL, 'c' },
		{ "metrics-port", required_argument, NULL, 'm' },
		{ "dataplane", required_argument, NULL, 'D' },
		{ "interface", required_argument, NULL, 'i' },
		{ "no-dns", no_argument, NULL, 'N' },
		{ "forward", required_argument, NULL, 'F' },
		{ "stub", required_argument, NULL, 'S' },
		{ "allow", required_argument, NULL, 'A' },
		{ "trust-anchor-file", required_argument, NULL, 'T' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int c, rc = 0;

	*o = (struct init_opts){ .data_dir = "/var/lib/hypermesh", .dataplane = "socket",
				 .trust_anchor_file = DEFAULT_TRUST_ANCHOR, .port = 7000,
				 .client_id = 100, .metrics_port = 9154, .dns = true };
	optind = 1;
	while (rc == 0 && (c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'o': o->out = optarg; break;
		case 'd': o->data_dir = optarg; break;
		case 'i': o->interface = optarg; break;
		case 'T': o->trust_anchor_file = optarg; break;
		case 'N': o->dns = false; break;
		case 'f': o->force = true; break;
		case 'p': rc = parse_number_option("--port", optarg, 1, 65535, &o->port); break;
		case 'm': rc = parse_number_option("--metrics-port", optarg, 0, 65535,
						   &o->metrics_port); break;
		case 'c': rc = parse_number_option("--client-id", optarg, 0, UINT32_MAX,
						   &o->client_id); break;
		case 'F': rc = add_upstream(o, ".", optarg, true); break;
		case 'S': rc = add_stub(o, optarg); break;
		case 'A': rc = add_allow(o, optarg); break;
		case 'D':
			if (strcmp(optarg, "socket") != 0 && strcmp(optarg, "xdp") != 0)
				return usage_error("--dataplane is socket or xdp");
			o->dataplane = optarg;
			break;
		case 'h': fputs(init_usage, stdout); exit(0);
		default: return usage_error(NULL);
		}
	}
	if (rc)
		return rc;
	for (int i = optind; i < argc; i++) {
		if (o->n == HM_MAX_REPLICAS) {
			hm_cli_error("init: at most %d replicas", HM_MAX_REPLICAS);
			return usage_error(NULL);
		}
		o->addresses[o->n++] = argv[i];
	}
	return 0;
}

/* What the options must satisfy beyond their syntax: n = 3f+1, distinct
 * literal addresses, a client id that is no replica's, xdp's interface. */
static int check_init_options(struct init_opts *o)
{
	if (!o->out)
		return usage_error("--out DIR is required");
	if (o->n < 4 || (o->n - 1) % 3 != 0) {
		hm_cli_error("init: %u addresses: a cluster needs n = 3f+1 replicas (4, 7, 10, ..., "
			     "31)", o->n);
		return 1;
	}
	o->f = (o->n - 1) / 3;
	for (uint32_t i = 0; i < o->n; i++) {
		if (!is_ip_literal(o->addresses[i])) {
			hm_cli_error("init: \"%s\" is not an IPv4 or IPv6 address (host names are not "
				     "resolved: a replica's identity must not depend on DNS)",
				     o->addresses[i]);
			return 1;
		}
		for (uint32_t j = 0; j < i; j++)
			if (strcmp(o->addresses[i], o->addresses[j]) == 0) {
				hm_cli_error("init: %s is given twice", o->addresses[i]);
				return 1;
			}
	}
	if (o->client_id < o->n ||
	    (o->dns && o->client_id >= HM_REPLICA_CLIENT_BASE &&
	     o->client_id < HM_REPLICA_CLIENT_BASE + HM_MAX_REPLICAS)) {
		hm_cli_error("init: --client-id %u is a replica's id (0..%u, and %u..%u with DNS)",
			     o->client_id, o->n - 1, HM_REPLICA_CLIENT_BASE,
			     HM_REPLICA_CLIENT_BASE + HM_MAX_REPLICAS - 1);
		return 1;
	}
	if (strcmp(o->dataplane, "xdp") == 0 && (!o->interface || !o->interface[0]))
		return usage_error("--dataplane xdp needs --interface IF");
	if (o->interface && strlen(o->interface) >= IF_NAMESIZE)
		return usage_error("--interface: at most 15 characters");
	return 0;
}

/* ---- paths ------------------------------------------------------------ */

static void path_of(char *out, size_t cap, const struct init_opts *o, const char *dir,
		    const char *file)
{
	if (snprintf(out, cap, "%s/%s%s%s", o->out, dir, file ? "/" : "", file ? file : "") >=
	    (int)cap)
		exit(hm_cli_error("init: %s: path too long", o->out));
}

static void replica_dir(char *out, size_t cap, uint32_t i)
{
	snprintf(out, cap, "replica-%u", i);
}

/* Every file init would write: when one exists and --force was not given,
 * nothing is written (a cluster's keys are never half replaced). */
static int refuse_existing(const struct init_opts *o)
{
	char dir[32], name[64], path[PATH_MAX];
	int found = 0;

	for (uint32_t i = 0; i <= o->n; i++) {
		const char *names[2];

		if (i < o->n) {
			replica_dir(dir, sizeof(dir), i);
			snprintf(name, sizeof(name), "replica-%u.key", i);
			names[1] = "hypermesh.yaml";
		} else {
			snprintf(dir, sizeof(dir), "client");
			snprintf(name, sizeof(name), "client-%u.key", o->client_id);
			names[1] = "hmctl.yaml";
		}
		names[0] = name;
		for (int k = 0; k < 2; k++) {
			path_of(path, sizeof(path), o, dir, names[k]);
			if (access(path, F_OK) == 0 && !o->force) {
				hm_cli_error("init: %s exists%s", path,
					     k == 0 ? " (a key of a cluster already written)" : "");
				found = 1;
			}
		}
	}
	if (found) {
		hm_cli_error("init: nothing written; --force overwrites (and makes new keys: "
			     "the old cluster's files stop working)");
		return 1;
	}
	return 0;
}

static int make_dir(const char *path)
{
	if (mkdir(path, 0755) < 0 && errno != EEXIST)
		return hm_cli_error("init: cannot create %s: %s", path, strerror(errno));
	return 0;
}

/* ---- the files -------------------------------------------------------- */

static void hex(char out[2 * HM_PUBKEY_LEN + 1], const uint8_t pk[HM_PUBKEY_LEN])
{
	sodium_bin2hex(out, 2 * HM_PUBKEY_LEN + 1, pk, HM_PUBKEY_LEN);
}

static void write_dns(FILE *f, const struct init_opts *o)
{
	if (!o->dns)
		return;
	fprintf(f, "  dns:                        # every replica answers DNS on port 53 of its "
		   "address\n"
		   "    trust_anchor_file: %s\n", o->trust_anchor_file);
	if (o->n_allow) {
		fprintf(f, "    allow:                    # DNS clients served; others get REFUSED\n");
		for (uint32_t i = 0; i < o->n_allow; i++)
			fprintf(f, "      - '%s'\n", o->allow[i]);
	} else {
		fprintf(f, "    # no allow: only loopback clients are served (add --allow to init)\n");
	}
	if (!o->n_upstreams) {
		fprintf(f, "    # no upstreams: each replica resolves from the root servers itself\n"
			   "    # (root_hints: /usr/share/dns/root.hints, dns-root-data's, by default)\n");
		return;
	}
	fprintf(f, "    upstreams:\n");
	for (uint32_t i = 0; i < o->n_upstreams; i++)
		fprintf(f, "      - {zone: '%s', address: '%s', mode: %s}\n", o->upstreams[i].zone,
			o->upstreams[i].address, o->upstreams[i].forward ? "forward" : "stub");
}

/* The part every file shares: settings, members, clients. */
static void write_cluster(FILE *f, const struct init_opts *o, const struct init_keys *k)
{
	char h[2 * HM_PUBKEY_LEN + 1];

	fprintf(f, "byzantine_config:\n"
		   "  consensus:\n"
		   "    max_faulty_nodes: %u           # f: n = %u replicas tolerate %u faulty\n"
		   "  network:\n"
		   "    port: %u\n", o->f, o->n, o->f, o->port);
	if (o->interface)
		fprintf(f, "    interface: %s\n", o->interface);
	if (o->metrics_port)
		fprintf(f, "  detection:\n"
			   "    metrics_port: %u           # Prometheus: http://ADDRESS:%u/metrics\n",
			o->metrics_port, o->metrics_port);
	write_dns(f, o);
	fprintf(f, "cluster:\n"
		   "  dataplane: %s\n"
		   "  members:\n", o->dataplane);
	for (uint32_t i = 0; i < o->n; i++) {
		hex(h, k->replica[i].pk);
		fprintf(f, "    - {id: %u, address: '%s', public_key: %s}\n", i, o->addresses[i], h);
	}
	hex(h, k->client.pk);
	fprintf(f, "  clients:\n"
		   "    - {id: %u, public_key: %s}   # the operator (hmctl)\n", o->client_id, h);
}

static FILE *create_file(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FILE *f;

	if (fd < 0 || fchmod(fd, mode) < 0 || !(f = fdopen(fd, "w"))) {
		hm_cli_error("init: cannot write %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	return f;
}

static int close_file(FILE *f, const char *path)
{
	if (fflush(f) != 0 || fsync(fileno(f)) < 0) {
		hm_cli_error("init: cannot write %s: %s", path, strerror(errno));
		fclose(f);
		return 1;
	}
	fclose(f);
	return 0;
}

/* One machine's file: the cluster, then its node section.  id < n: a
 * replica; otherwise the operator's client. */
static int write_config(const struct init_opts *o, const struct init_keys *k, uint32_t id,
			const char *path, const char *key_file)
{
	FILE *f = create_file(path, 0644);
	char when[32];
	time_t now = time(NULL);

	if (!f)
		return 1;
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", gmtime(&now));
	if (id < o->n)
		fprintf(f, "# HyperMesh replica %u of %u, written by `hmctl init` on %s.\n"
			   "# Install as /etc/hypermesh/hypermesh.yaml on %s, with %s beside it\n"
			   "# (docs/deployment.md).  The replicas' files differ only in `node:`.\n",
			id, o->n, when, o->addresses[id], key_file);
	else
		fprintf(f, "# The operator's hmctl configuration (client %u), written by `hmctl init`\n"
			   "# on %s: hmctl -c THIS_FILE ..., or HM_CONFIG=THIS_FILE.\n", id, when);
	write_cluster(f, o, k);
	fprintf(f, "node:\n"
		   "  id: %u\n"
		   "  private_key: %s           # relative to this file's directory\n", id, key_file);
	if (id < o->n)
		fprintf(f, "  data_dir: %s\n", o->data_dir);
	return close_file(f, path);
}

/* DIR/NAME.key (0600) and .pub for one identity. */
static int write_key(const struct init_opts *o, const char *dir, const char *name,
		     const struct hm_keypair *kp)
{
	char base[PATH_MAX], err[512];

	path_of(base, sizeof(base), o, dir, name);
	if (hm_keypair_write(kp, base, err, sizeof(err)) < 0)
		return hm_cli_error("init: %s", err);
	return 0;
}

/* A file init wrote must load: a check that what we write is what the
 * daemon reads (with file:line:key if not). */
static int check_written(const char *path)
{
	static struct hm_config cfg;
	char err[1024];

	if (hm_config_load(path, &cfg, err, sizeof(err)) < 0)
		return hm_cli_error("init: the file written does not load (a bug): %s", err);
	hm_config_free(&cfg);
	return 0;
}

static int write_machine(const struct init_opts *o, const struct init_keys *k, uint32_t id)
{
	char dir[32], name[64], key_file[80], path[PATH_MAX];
	bool replica = id < o->n;

	if (replica) {
		replica_dir(dir, sizeof(dir), id);
		snprintf(name, sizeof(name), "replica-%u", id);
	} else {
		snprintf(dir, sizeof(dir), "client");
		snprintf(name, sizeof(name), "client-%u", id);
	}
	snprintf(key_file, sizeof(key_file), "%s.key", name);
	path_of(path, sizeof(path), o, dir, NULL);
	if (make_dir(path) || write_key(o, dir, name, replica ? &k->replica[id] : &k->client))
		return 1;
	path_of(path, sizeof(path), o, dir, replica ? "hypermesh.yaml" : "hmctl.yaml");
	if (write_config(o, k, id, path, key_file) || check_written(path))
		return 1;
	printf("  %-34s %s\n", path,
	       replica ? o->addresses[id] : "the operator's hmctl -c configuration");
	return 0;
}

int hm_cli_init(int argc, char **argv)
{
	static struct init_keys keys;
	struct init_opts o;
	int rc = parse_init_options(argc, argv, &o);

	if (rc || (rc = check_init_options(&o)) || (rc = refuse_existing(&o)) ||
	    (rc = make_dir(o.out)))
		return rc;
	for (uint32_t i = 0; i < o.n; i++)
		if (hm_keypair_generate(&keys.replica[i]) < 0)
			return hm_cli_error("init: key generation failed");
	if (hm_keypair_generate(&keys.client) < 0)
		return hm_cli_error("init: key generation failed");
	printf("a cluster of %u replicas (f=%u)%s, in %s:\n", o.n, o.f,
	       o.dns ? ", DNS on port 53 of each" : "", o.out);
	for (uint32_t id = 0; id < o.n; id++)
		if (write_machine(&o, &keys, id))
			return 1;
	if (write_machine(&o, &keys, o.client_id))
		return 1;
	sodium_memzero(&keys, sizeof(keys));
	printf("next: copy each replica-I/ to /etc/hypermesh/ on its host, then "
	       "`hypermeshd --check-config /etc/hypermesh/hypermesh.yaml` and "
	       "`systemctl enable --now hypermeshd` there (docs/deployment.md)\n");
	return 0;
}
