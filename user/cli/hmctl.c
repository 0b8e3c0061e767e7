// SPDX-License-Identifier: MIT
/*
 * hmctl: the HyperMesh command line.
 *
 *   hmctl init --out DIR [options] ADDRESS...   a new cluster's keys and files (cli_init.c)
 *   hmctl keygen PATH                     write PATH.key and PATH.pub
 *   hmctl -c CONFIG put KEY VALUE         replicated PUT, f+1 matching replies
 *   hmctl -c CONFIG get KEY               replicated GET
 *   hmctl -c CONFIG bench --clients C --duration S [--op null|put] [--ops N]
 *   hmctl status --socket PATH [--json|--table]   a replica's status
 *   hmctl block list|lift ID --socket PATH        block decisions; lift one
 *   hmctl metrics --socket PATH           the Prometheus text
 *   hmctl control --socket PATH REQUEST   one raw control request
 *   hmctl -c CONFIG inject KIND --replica ID [--count N | --duration S]
 *                                         test traffic: forged-sig, bad-mac, replay, garbage,
 *                                         split-request (a faulty client: two requests
 *                                         under one timestamp to the two halves)
 *   hmctl -c CONFIG cert check CHAIN [--cert] [--out FILE] [--tlsa NAME]
 *       CT verdict (cli_ct.c); --tlsa: DANE match against the agreed TLSA RRset
 *   hmctl -c CONFIG verify CERTFILE       check a certificate (DNS answer or CT verdict) offline
 *
 * CONFIG defaults to $HM_CONFIG.  The control socket (status, block,
 * metrics, control) defaults to $HM_CONTROL_SOCKET, else the systemd
 * install's /run/hypermesh/control.sock (common/paths.h).  `hmctl
 * --version` prints the release; `hmctl COMMAND --help` any command's
 * usage, with no configuration.  The client identity is the config's node
 * section (node.id, node.private_key).  Every command that talks to the
 * replicas goes through the one client transport (user/client/transport.h),
 * which holds the identity for as long as hmctl runs: a second hmctl under
 * an identity in use exits 1 with "client identity N is in use by pid P"
 * (user/client/identity.h).  A request the replicas refuse (its timestamp
 * already used) exits 1 with the reason, rather than timing out.  Errors
 * print "hmctl: <message>" through hm_cli_error() (cli_msg.h), shared with
 * the subcommands.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "common/clock.h"
#include "cli/cli_ct.h"
#include "cli/cli_init.h"
#include "client/transport.h"
#include "common/config.h"
#include "common/crypto.h"
#include "common/paths.h"
#include "cli/cli_msg.h"
#include "cli/dns_ctl.h"
#include "service/kv/kv.h"
#include "common/wire.h"
#include "hm_version.h"

#define OP_TIMEOUT_S 10

/* Print "hmctl: <message>" (cli_msg.h) and exit 1. */
#define die(...) exit(hm_cli_error(__VA_ARGS__))

/* ---- the client: one transport (user/client/transport.h) -------------- */

/* Submit one op and wait for its result (f+1 matching signed replies). */
static void call(struct hm_transport *t, const uint8_t *op, size_t len)
{
	switch (hm_transport_call(t, op, len, hm_mono_us() + OP_TIMEOUT_S * 1000000ull, NULL)) {
	case HM_TRANSPORT_OK:
		return;
	case HM_TRANSPORT_TOO_LARGE:
		die("the request (%zu bytes of op) does not fit max_message_size %u with its "
		    "PRE-PREPARE framing", len, t->cfg->max_message_size);
	case HM_TRANSPORT_REFUSED: {
		char why[256];

		die("%s", hm_transport_refusal(t, why, sizeof(why)));
	}
	default:
		die("no result from f+1=%u replicas within %d s (%u retransmissions)",
		    t->core.f + 1, OP_TIMEOUT_S, t->core.retransmits);
	}
}

/* ---- commands --------------------------------------------------------- */

static void load_config(const char *path, struct hm_config *cfg)
{
	char err[1024];

	if (!path)
		die("no configuration: give -c CONFIG or set HM_CONFIG");
	if (hm_config_load(path, cfg, err, sizeof(err)) < 0)
		die("%s", err);
}

static void open_identity(struct hm_transport *t, const struct hm_config *cfg)
{
	char err[1024];

	if (hm_transport_open_node(t, cfg, err, sizeof(err)) < 0)
		die("%s", err);
}

static const char *status_name(uint8_t s)
{
	return s == HM_KV_OK ? "OK" : s == HM_KV_NOT_FOUND ? "NOT_FOUND" : "BAD_OP";
}

static int cmd_put_get(const struct hm_config *cfg, int argc, char **argv)
{
	struct hm_transport c;
	uint8_t op[HM_KV_MAX_KEY + HM_KV_MAX_VALUE + 3];
	size_t len;
	bool put = strcmp(argv[0], "put") == 0;

	if (argc != (put ? 3 : 2))
		die(put ? "usage: put KEY VALUE" : "usage: get KEY");
	len = put ? hm_kv_encode_put(op, sizeof(op), argv[1], argv[2], strlen(argv[2]))
		  : hm_kv_encode_get(op, sizeof(op), argv[1]);
	if (!len)
		die("key must be 1..%d bytes, value at most %d", HM_KV_MAX_KEY, HM_KV_MAX_VALUE);
	open_identity(&c, cfg);
	call(&c, op, len);
	if (c.core.result_len < 1)
		die("empty result");
	if (put || c.core.result[0] != HM_KV_OK)
		printf("%s\n", status_name(c.core.result[0]));
	else
		printf("%.*s\n", (int)c.core.result_len - 1, (const char *)c.core.result + 1);
	hm_transport_close(&c);
	return c.core.result[0] == HM_KV_BAD_OP ? 1 : 0;
}

static int cmd_keygen(int argc, char **argv)
{
	struct hm_keypair kp;
	char err[512];

	if (argc != 2)
		die("usage: keygen PATH   (writes PATH.key and PATH.pub)");
	if (hm_keypair_generate(&kp) < 0 || hm_keypair_write(&kp, argv[1], err, sizeof(err)) < 0)
		die("%s", err);
	printf("wrote %s.key and %s.pub\n", argv[1], argv[1]);
	return 0;
}

/* Set when the socket path is the default rather than --socket: an error
 * then says how to name another. */
static bool socket_defaulted;

/* --socket PATH if given, else $HM_CONTROL_SOCKET, else the path a systemd
 * install's hypermeshd listens on. */
static const char *control_socket(const char *given)
{
	const char *env = getenv("HM_CONTROL_SOCKET");

	if (given)
		return given;
	socket_defaulted = true;
	return env && env[0] ? env : HM_DEFAULT_CONTROL_SOCKET;
}

/* One request line to a replica's control socket; the answer, or die. */
static char *control_request(const char *path, const char *line)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap);
	int fd;

	if (!buf)
		die("out of memory");
	snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0)
		die("%s: %s%s", path, strerror(errno),
		    socket_defaulted ? " (the default control socket of a replica run by systemd; "
				       "for one started by hand give --socket DATA_DIR/control.sock "
				       "or set HM_CONTROL_SOCKET)" : "");
	if (write(fd, line, strlen(line)) < 0 || write(fd, "\n", 1) < 0)
		die("%s: %s", path, strerror(errno));
	shutdown(fd, SHUT_WR);
	for (ssize_t n; (n = read(fd, buf + len, cap - 1 - len)) > 0;) {
		len += (size_t)n;
		if (len == cap - 1) {
			char *b = realloc(buf, cap *= 2);

			if (!b)
				die("out of memory");
			buf = b;
		}
	}
	close(fd);
	buf[len] = 0;
	return buf;
}

static json_t *control_json(const char *path, const char *line)
{
	char *text = control_request(path, line);
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	if (!j)
		die("%s: not JSON: %s", path, jerr.text);
	free(text);
	if (json_is_string(json_object_get(j, "error")))
		die("%s: %s", path, json_string_value(json_object_get(j, "error")));
	return j;
}

static json_int_t jint(json_t *o, const char *key)
{
	return json_integer_value(json_object_get(o, key));
}

static double jreal(json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

/* "reason=count ..." of a drops object, or "-". */
static void print_drops(json_t *drops)
{
	const char *k;
	json_t *v;
	int shown = 0;

	json_object_foreach(drops, k, v)
		if (json_integer_value(v)) {
			printf("%s%s=%lld", shown++ ? " " : "", k, (long long)json_integer_value(v));
		}
	printf("%s\n", shown ? "" : "-");
}

/* One line per peer that is not up: its state and why. */
static void print_peer_states(json_t *det)
{
	const char *k;
	json_t *p;

	json_object_foreach(json_object_get(det, "peers"), k, p) {
		const char *state = json_string_value(json_object_get(p, "state"));

		if (state && strcmp(state, "up") != 0)
			printf("peer %s %s for %.0f s: %s\n", k, state, jreal(p, "state_for_s"),
			       json_string_value(json_object_get(p, "state_reason")) ?: "?");
	}
}

static void print_peer_row(json_t *st, const char *id, json_t *det)
{
	json_t *p = json_object_get(json_object_get(det, "peers"), id);
	json_t *ind = json_object_get(p, "indicators"), *x;
	json_t *kst = json_object_get(json_object_get(json_object_get(st, "xdp"), "node_stats"), id);
	json_t *u = json_object_get(json_object_get(st, "peers"), id);
	/* this replica's trust in the peer: row = self, column = peer (diagnosis only) */
	json_t *tr = json_array_get(json_array_get(json_object_get(det, "trust"),
						   (size_t)jint(st, "id")),
				    (size_t)strtoul(id, NULL, 10));
	char inds[128] = "", trust[16] = "-";
	size_t i;

	if (json_is_number(tr))
		snprintf(trust, sizeof(trust), "%.3f", json_number_value(tr));
	json_array_foreach(ind, i, x)
		snprintf(inds + strlen(inds), sizeof(inds) - strlen(inds), "%s%s", i ? "," : "",
			 json_string_value(x));
	printf("%-5s %-9s %10.3f %8.3f %10.0f %8.2f  %-26s %-9s %6s %10lld  ", id,
	       json_string_value(json_object_get(p, "state")) ?: "?", jreal(p, "reputation"),
	       jreal(p, "historical"), jreal(p, "latency_ms"), jreal(p, "participation"),
	       inds[0] ? inds : "-", json_is_true(json_object_get(p, "blocked")) ? "BLOCKED" : "no",
	       trust, (long long)(kst ? jint(kst, "total_messages") : jint(u, "accepted")));
	print_drops(kst ? json_object_get(kst, "drops") : json_object_get(u, "drops"));
}

/* The XDP DNS responder's counters, when dns.xdp is on. */
static void print_dns_xdp(json_t *x)
{
	if (!x)
		return;
	printf("dns from xdp (%s): hit %lld  miss %lld  expired %lld  pass %lld  tc %lld  "
	       "rrl dropped %lld slipped %lld  grow_failed %lld  entries %lld\n",
	       json_string_value(json_object_get(x, "attached")), (long long)jint(x, "hit"),
	       (long long)jint(x, "miss"), (long long)jint(x, "expired"), (long long)jint(x, "pass"),
	       (long long)jint(x, "tc"), (long long)jint(x, "rrl_dropped"),
	       (long long)jint(x, "rrl_slipped"), (long long)jint(x, "grow_failed"),
	       (long long)jint(x, "entries"));
}

static void print_status_table(json_t *st)
{
	json_t *det = json_object_get(st, "detection");
	const char *k;
	json_t *v;

	printf("replica %lld (%s)  view %lld  primary %lld  watermarks (%lld, %lld]  "
	       "last stable checkpoint %lld  last executed %lld\n",
	       (long long)jint(st, "id"), json_string_value(json_object_get(st, "dataplane")),
	       (long long)jint(st, "view"), (long long)jint(st, "primary"),
	       (long long)jint(st, "low_watermark"), (long long)jint(st, "high_watermark"),
	       (long long)jint(st, "last_stable_checkpoint"), (long long)jint(st, "last_executed"));
	char *down = json_dumps(json_object_get(det, "down"), JSON_COMPACT);
	char *byz = json_dumps(json_object_get(det, "byzantine"), JSON_COMPACT);
	char *sus = json_dumps(json_object_get(det, "suspected"), JSON_COMPACT);
	char *blocked = json_dumps(json_object_get(det, "blocked"), JSON_COMPACT);

	printf("rounds/s %.1f  messages/s %.1f  loss %.4f  down %s  proven byzantine %s  "
	       "suspected %s  blocked %s\n",
	       jreal(det, "rounds_per_second"), jreal(det, "messages_per_second"),
	       jreal(det, "loss_rate"), down ? down : "?", byz ? byz : "?", sus ? sus : "?",
	       blocked ? blocked : "?");
	free(down);
	free(byz);
	free(sus);
	free(blocked);
	print_peer_states(det);
	printf("\n%-5s %-9s %10s %8s %10s %8s  %-26s %-9s %6s %10s  %s\n", "peer", "state",
	       "reputation", "history",
	       "latency_ms", "particip", "indicators", "block", "trust", "messages", "drops");
	json_object_foreach(json_object_get(det, "peers"), k, v)
		print_peer_row(st, k, det);
	printf("\ndrops (all senders): ");
	print_drops(json_object_get(st, "drops"));
	print_dns_xdp(json_object_get(json_object_get(st, "dns"), "xdp"));
}

/* status --socket PATH [--json|--table]: a table on a terminal, JSON
 * otherwise (scripts pipe it to jq), either on request. */
static int cmd_status(int argc, char **argv)
{
	const char *path = NULL;
	int json = -1;
	json_t *j;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = 1;
		else if (strcmp(argv[i], "--table") == 0)
			json = 0;
		else
			die("usage: status [--socket PATH] [--json|--table]");
	}
	path = control_socket(path);
	if (json < 0)
		json = !isatty(STDOUT_FILENO);
	j = control_json(path, "status");
	if (json) {
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else {
		print_status_table(j);
	}
	json_decref(j);
	return 0;
}

static void print_blocks(json_t *j)
{
	json_t *d;
	size_t i;

	printf("%-5s %-9s %-20s %-7s %-7s %9s  %s\n", "id", "decision", "offence", "replica",
	       "strikes", "cooldown", "evidence");
	json_array_foreach(json_object_get(j, "decisions"), i, d)
		printf("%-5lld %-9s %-20s %-7lld %-7lld %8.0fs  %s\n", (long long)jint(d, "id"),
		       json_string_value(json_object_get(d, "decision")),
		       json_string_value(json_object_get(d, "offence"))[0]
			       ? json_string_value(json_object_get(d, "offence")) : "-",
		       (long long)jint(d, "replica"), (long long)jint(d, "strikes"),
		       jreal(d, "cooldown_s"), json_string_value(json_object_get(d, "evidence")));
	printf("blocked now:");
	json_array_foreach(json_object_get(j, "blocked"), i, d)
		printf(" %lld (%.0fs left)", (long long)jint(d, "replica"), jreal(d, "remaining_s"));
	printf("%s\n", json_array_size(json_object_get(j, "blocked")) ? "" : " none");
}

/* block list|lift ID --socket PATH [--json] */
static int cmd_block(int argc, char **argv)
{
	const char *path = NULL, *what = argc > 1 ? argv[1] : "", *id = NULL;
	bool json = false;
	char line[64];
	json_t *j;

	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc)
			path = argv[++i];
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else if (!id && strcmp(what, "lift") == 0)
			id = argv[i];
		else
			what = "";
	}
	if ((strcmp(what, "list") != 0 && strcmp(what, "lift") != 0) ||
	    (strcmp(what, "lift") == 0 && !id))
		die("usage: block list [--socket PATH] [--json] | block lift REPLICA_ID [--socket PATH]");
	path = control_socket(path);
	if (id)
		snprintf(line, sizeof(line), "block lift %s", id);
	else
		snprintf(line, sizeof(line), "block list");
	j = control_json(path, line);
	if (json) {
		json_dumpf(j, stdout, JSON_INDENT(2) | JSON_SORT_KEYS);
		putchar('\n');
	} else if (id) {
		printf("lifted the block on replica %s\n", id);
	} else {
		print_blocks(j);
	}
	json_decref(j);
	return 0;
}

/* control --socket PATH REQUEST...: one raw request line, the raw answer
 * (tests: "inject equivocation" on a daemon run with HM_ALLOW_INJECT=1). */
static int cmd_control(int argc, char **argv)
{
	char line[256] = "", *text;
	const char *path = NULL;
	int first = 1;

	if (argc > 2 && strcmp(argv[1], "--socket") == 0) {
		path = argv[2];
		first = 3;
	}
	if (first >= argc)
		die("usage: control [--socket PATH] REQUEST...");
	for (int i = first; i < argc; i++)
		snprintf(line + strlen(line), sizeof(line) - strlen(line), "%s%s",
			 i > first ? " " : "", argv[i]);
	text = control_request(control_socket(path), line);
	fputs(text, stdout);
	free(text);
	return 0;
}

/* metrics --socket PATH: the Prometheus text, through the control socket. */
static int cmd_metrics(int argc, char **argv)
{
	char *text;

	if (argc != 1 && (argc != 3 || strcmp(argv[1], "--socket") != 0))
		die("usage: metrics [--socket DATA_DIR/control.sock]");
	text = control_request(control_socket(argc == 3 ? argv[2] : NULL), "metrics");
	fputs(text, stdout);
	free(text);
	return 0;
}

/* ---- bench: closed-loop clients --------------------------------------- */

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static uint64_t percentile(const uint64_t *sorted, size_t n, double p)
{
	return n ? sorted[(size_t)(p * (double)(n - 1) + 0.5)] : 0;
}

/* The private key beside a client's public key file (NAME.pub -> NAME.key). */
static void client_key_path(const struct hm_client_entry *e, char *out, size_t cap)
{
	size_t len = strlen(e->public_key_path);

	if (len < 4 || strcmp(e->public_key_path + len - 4, ".pub") != 0)
		die("client %u: bench needs its key file NAME.key beside NAME.pub", e->id);
	snprintf(out, cap, "%.*s.key", (int)(len - 4), e->public_key_path);
}

static size_t bench_op(uint8_t *op, size_t cap, bool put, uint32_t client, uint64_t n)
{
	char key[32], value[32];

	if (!put)
		return hm_kv_encode_null(op, cap);
	snprintf(key, sizeof(key), "bench-%u-%llu", client, (unsigned long long)(n % 64));
	snprintf(value, sizeof(value), "%llu", (unsigned long long)n);
	return hm_kv_encode_put(op, cap, key, value, strlen(value));
}

struct bench_result {
	uint64_t ops, *lat;
	size_t n_lat, cap_lat;
};

static void record(struct bench_result *r, uint64_t us)
{
	if (r->n_lat == r->cap_lat) {
		r->cap_lat = r->cap_lat ? 2 * r->cap_lat : 4096;
		r->lat = realloc(r->lat, r->cap_lat * sizeof(*r->lat));
		if (!r->lat)
			die("out of memory");
	}
	r->lat[r->n_lat++] = us;
	r->ops++;
}

/* One closed-loop bench client: a transport and when its op began. */
struct bench_client {
	struct hm_transport t;
	uint64_t started;
};

/* Run until duration_us passed or max_ops completed (0 = no limit). */
static void bench_loop(struct bench_client *cs, uint32_t nc, bool put, uint64_t duration_us,
		       uint64_t max_ops, struct bench_result *r)
{
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint64_t end = hm_mono_us() + duration_us, seqno = 0;
	uint8_t op[128];

	for (uint32_t i = 0; i < nc; i++) {
		struct epoll_event ev = { .events = EPOLLIN, .data.u32 = i };

		epoll_ctl(ep, EPOLL_CTL_ADD, hm_transport_fd(&cs[i].t), &ev);
		if (max_ops && seqno >= max_ops)
			break;
		cs[i].started = hm_mono_us();
		hm_transport_submit(&cs[i].t, op, bench_op(op, sizeof(op), put, i, seqno++), NULL);
	}
	while (hm_mono_us() < end && (!max_ops || r->ops < max_ops)) {
		struct epoll_event evs[64];
		int n = epoll_wait(ep, evs, 64, 10);

		for (int k = 0; k < n; k++) {
			struct bench_client *c = &cs[evs[k].data.u32];

			if (!hm_transport_pump(&c->t))
				continue;
			record(r, hm_mono_us() - c->started);
			if (max_ops && seqno >= max_ops)
				continue; /* every op is issued: this client is done */
			c->started = hm_mono_us();
			hm_transport_submit(&c->t, op, bench_op(op, sizeof(op), put, evs[k].data.u32,
								seqno++), NULL);
		}
		for (uint32_t i = 0; i < nc; i++)
			hm_transport_tick(&cs[i].t);
	}
	close(ep);
}

static int cmd_bench(const struct hm_config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "clients", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ "op", required_argument, NULL, 'o' },
		{ "ops", required_argument, NULL, 'x' },
		{ 0 },
	};
	uint64_t max_ops = 0;
	uint32_t nc = 4;
	double duration = 5;
	bool put = false;
	struct bench_result r = { 0 };
	struct bench_client *cs;
	uint64_t t0, elapsed;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (c == 'n')
			nc = (uint32_t)strtoul(optarg, NULL, 10);
		else if (c == 'd')
			duration = strtod(optarg, NULL);
		else if (c == 'x')
			max_ops = strtoull(optarg, NULL, 10);
		else if (c == 'o' && (strcmp(optarg, "put") == 0 || strcmp(optarg, "null") == 0))
			put = strcmp(optarg, "put") == 0;
		else
			die("usage: bench --clients C --duration S [--op null|put] [--ops N]");
	}
	if (nc == 0 || nc > cfg->n_clients || duration <= 0)
		die("bench: --clients must be 1..%u (the clients in %s), --duration > 0",
		    cfg->n_clients, cfg->path);
	cs = calloc(nc, sizeof(*cs));
	if (!cs)
		die("out of memory");
	for (uint32_t i = 0; i < nc; i++) {
		char key[HM_PATH_MAX + 8], err[1024];

		client_key_path(&cfg->clients[i], key, sizeof(key));
		if (hm_transport_open_key_file(&cs[i].t, cfg, cfg->clients[i].id, key, err,
					       sizeof(err)) < 0)
			die("%s", err);
	}
	t0 = hm_mono_us();
	bench_loop(cs, nc, put, (uint64_t)(duration * 1e6), max_ops, &r);
	elapsed = hm_mono_us() - t0;
	qsort(r.lat, r.n_lat, sizeof(*r.lat), u64_cmp);
	double ops_s = (double)r.ops * 1e6 / (double)elapsed;
	printf("clients  op    ops      ops/s     p50_us  p99_us  p999_us\n");
	printf("%-8u %-5s %-8llu %-9.0f %-7llu %-7llu %llu\n", nc, put ? "put" : "null",
	       (unsigned long long)r.ops, ops_s, (unsigned long long)percentile(r.lat, r.n_lat, .5),
	       (unsigned long long)percentile(r.lat, r.n_lat, .99),
	       (unsigned long long)percentile(r.lat, r.n_lat, .999));
	printf("{\"clients\":%u,\"op\":\"%s\",\"duration_s\":%.3f,\"ops\":%llu,\"ops_per_s\":%.1f,"
	       "\"p50_us\":%llu,\"p99_us\":%llu,\"p999_us\":%llu}\n", nc, put ? "put" : "null",
	       (double)elapsed / 1e6, (unsigned long long)r.ops, ops_s,
	       (unsigned long long)percentile(r.lat, r.n_lat, .5),
	       (unsigned long long)percentile(r.lat, r.n_lat, .99),
	       (unsigned long long)percentile(r.lat, r.n_lat, .999));
	for (uint32_t i = 0; i < nc; i++)
		hm_transport_close(&cs[i].t);
	free(cs);
	free(r.lat);
	return r.ops ? 0 : 1;
}

/* ---- inject: misbehaving traffic for the tests ------------------------ */

static void send_raw(struct hm_transport *c, uint32_t to, const void *buf, size_t len)
{
	const struct hm_member *m = &c->cfg->members[to];

	/* a flood may outrun the device queue: that is not an error here */
	if (sendto(c->fd, buf, len, 0, (const struct sockaddr *)&m->addr, m->addr_len) < 0 &&
	    errno != ENOBUFS && errno != EAGAIN)
		die("sendto: %s", strerror(errno));
}

/* A request signed with a key that is not the client's, MAC valid. */
static void inject_forged(struct hm_transport *c, uint32_t to, uint32_t i)
{
	struct hm_keypair other;
	uint8_t op[64], buf[256];
	size_t len;

	hm_keypair_generate(&other);
	len = hm_kv_encode_put(op, sizeof(op), "forged", "x", 1);
	len = hm_msg_build(buf, sizeof(buf), HM_MSG_REQUEST, c->core.id, 0, hm_wall_us() + i, NULL,
			   op, (uint32_t)len, &other);
	hm_mac_stamp((struct hm_hdr *)buf, c->core.links[to].tx);
	send_raw(c, to, buf, len);
}

static void inject_bad_mac(struct hm_transport *c, uint32_t to, uint32_t i)
{
	uint8_t op[64], buf[256];
	size_t len = hm_kv_encode_put(op, sizeof(op), "badmac", "x", 1);

	len = hm_msg_build(buf, sizeof(buf), HM_MSG_REQUEST, c->core.id, 0, hm_wall_us() + i, NULL,
			   op, (uint32_t)len, &c->keys);
	hm_mac_stamp((struct hm_hdr *)buf, c->core.links[to].tx);
	buf[HM_OFF_MAC] ^= 0x01;
	send_raw(c, to, buf, len);
}

static void inject_garbage(struct hm_transport *c, uint32_t to, uint32_t i)
{
	uint8_t buf[2048];
	size_t len = randombytes_uniform(sizeof(buf));

	randombytes_buf(buf, len);
	if (i % 2 && len >= HM_HDR_LEN) {
		/* Half of it looks like HyperMesh, to get past the magic. */
		hm_put_be32(buf, HM_MAGIC);
		buf[4] = HM_VERSION;
	}
	send_raw(c, to, buf, len);
}

/* A COMMIT in the name of another replica, from our address, with a
 * made-up MAC and signature: what an attacker without keys can send. */
static void inject_forged_vote(struct hm_transport *c, uint32_t to, uint32_t i)
{
	uint32_t victim = (to + 1) % c->cfg->n_members;
	uint8_t buf[HM_HDR_LEN];

	memset(buf, 0, sizeof(buf));
	hm_put_be32(buf, HM_MAGIC);
	buf[4] = HM_VERSION;
	buf[5] = HM_MSG_COMMIT;
	hm_put_be32(buf + HM_OFF_SENDER, victim);
	hm_put_be64(buf + HM_OFF_SEQ, 1 + i % 64);
	randombytes_buf(buf + HM_OFF_DIGEST, HM_DIGEST_LEN + HM_SIG_LEN + HM_MAC_LEN);
	buf[HM_OFF_SIG + 63] &= 0x0f; /* a canonical-looking S */
	send_raw(c, to, buf, sizeof(buf));
}

/* Complete two requests, then send the first one's datagram again: a replay
 * of an old, validly signed and MACed message, older than the client's last
 * executed request. */
static void inject_replay(struct hm_transport *c, uint32_t to, uint32_t count)
{
	uint8_t op[64], first[HM_MAX_DATAGRAM];
	size_t len = hm_kv_encode_put(op, sizeof(op), "replay", "1", 1), first_len;

	call(c, op, len);
	first_len = c->core.req_len; /* the request as it was sent */
	memcpy(first, c->core.req, first_len);
	call(c, op, len);
	for (uint32_t i = 0; i < count; i++) {
		hm_mac_stamp((struct hm_hdr *)first, c->core.links[to].tx);
		send_raw(c, to, first, first_len);
	}
}

/* A faulty client: one timestamp, two different requests, each validly
 * signed, the first to the lower half of the replicas and the second to the
 * upper half.  The replicas must still agree on one of them (or neither). */
static void inject_split_request(struct hm_transport *c, uint32_t count)
{
	uint32_t n = c->cfg->n_members;

	for (uint32_t i = 0; i < count; i++) {
		uint64_t ts = hm_wall_us();
		uint8_t op[2][64], buf[2][256];
		size_t len[2];

		for (int v = 0; v < 2; v++) {
			len[v] = hm_kv_encode_put(op[v], sizeof(op[v]), "split", v ? "b" : "a", 1);
			len[v] = hm_msg_build(buf[v], sizeof(buf[v]), HM_MSG_REQUEST, c->core.id, 0,
					      ts, NULL, op[v], (uint32_t)len[v], &c->keys);
		}
		for (uint32_t to = 0; to < n; to++) {
			int v = to >= n / 2;

			hm_mac_stamp((struct hm_hdr *)buf[v], c->core.links[to].tx);
			send_raw(c, to, buf[v], len[v]);
		}
		usleep(2000); /* one conflict at a time, not a flood */
	}
}

static int cmd_inject(const struct hm_config *cfg, int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "replica", required_argument, NULL, 'r' },
		{ "count", required_argument, NULL, 'n' },
		{ "duration", required_argument, NULL, 'd' },
		{ 0 },
	};
	const char *kind = argc > 1 ? argv[1] : "";
	uint32_t to = 0, count = 1;
	double duration = 0;
	struct hm_transport c;
	int opt;

	optind = 2;
	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		if (opt == 'r')
			to = (uint32_t)strtoul(optarg, NULL, 10);
		else if (opt == 'n')
			count = (uint32_t)strtoul(optarg, NULL, 10);
		else if (opt == 'd')
			duration = strtod(optarg, NULL);
		else
			die("usage: inject forged-sig|bad-mac|forged-vote|replay|garbage|split-request --replica ID "
			    "[--count N | --duration S]");
	}
	if (to >= cfg->n_members)
		die("--replica must be 0..%u", cfg->n_members - 1);
	open_identity(&c, cfg);
	if (strcmp(kind, "replay") == 0) {
		inject_replay(&c, to, count);
	} else if (strcmp(kind, "split-request") == 0) {
		inject_split_request(&c, count); /* to every replica: --replica unused */
	} else {
		void (*fn)(struct hm_transport *, uint32_t, uint32_t) =
			strcmp(kind, "forged-sig") == 0 ? inject_forged :
			strcmp(kind, "bad-mac") == 0 ? inject_bad_mac :
			strcmp(kind, "forged-vote") == 0 ? inject_forged_vote :
			strcmp(kind, "garbage") == 0 ? inject_garbage : NULL;
		uint64_t until = hm_wall_us() + (uint64_t)(duration * 1e6);

		if (!fn)
			die("inject: unknown kind '%s' (forged-sig, bad-mac, forged-vote, replay, "
			    "garbage)", kind);
		uint32_t sent = 0;

		/* --duration: as fast as we can until the time is up (a flood) */
		while (duration > 0 ? hm_wall_us() < until : sent < count)
			fn(&c, to, sent++);
		count = sent;
	}
	printf("injected %u %s to replica %u\n", count, kind, to);
	hm_transport_close(&c);
	return 0;
}

/* Every command's usage, for `hmctl --help` and `hmctl COMMAND --help`;
 * `config` says whether the command reads the configuration (-c). */
static const struct {
	const char *name, *text;
	bool config;
} commands[] = {
	{ "init", "  init --out DIR [options] ADDRESS...  a new cluster: keys and one file per host\n"
		  "                                   (hmctl init --help for the options)\n", false },
	{ "keygen", "  keygen PATH                      write PATH.key (secret) and PATH.pub\n", false },
	{ "put", "  put KEY VALUE                    replicated PUT\n", true },
	{ "get", "  get KEY                          replicated GET\n", true },
	{ "bench", "  bench --clients C --duration S [--op null|put] [--ops N]\n", true },
	{ "status", "  status [--socket PATH] [--json|--table]\n"
		    "                                   a replica's status (a table on a terminal,\n"
		    "                                   JSON otherwise)\n", false },
	{ "block", "  block list [--socket PATH] [--json]  block decisions with their evidence\n"
		   "  block lift REPLICA_ID [--socket PATH]\n", false },
	{ "metrics", "  metrics [--socket PATH]          Prometheus text\n", false },
	{ "control", "  control [--socket PATH] REQUEST... one raw control request (status, block list,\n"
		     "                                   block lift ID, metrics, inject ...)\n", false },
	{ "dns", "  dns query NAME TYPE [--cert]     the cluster's decided DNS entry (--cert: JSON "
		 "certificate)\n", true },
	{ "inject", "  inject forged-sig|bad-mac|forged-vote|replay|garbage|split-request --replica ID\n"
		    "         [--count N | --duration S]   test traffic\n", true },
	{ "cert", "  cert check CHAIN [--cert] [--out FILE] [--tlsa NAME]   CT verdict (--cert: 2f+1\n"
		  "      signatures; --tlsa: DANE match against the agreed TLSA RRset of NAME)\n", true },
	{ "verify", "  verify CERTFILE [--now T | --allow-expired]\n"
		    "                                   check a certificate (DNS answer or CT verdict)\n"
		    "                                   offline; a DNS answer must not have expired\n"
		    "                                   (now, or at T)\n", true },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: hmctl [-c CONFIG] COMMAND ...   (hmctl --version; hmctl COMMAND --help)\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		fputs(commands[i].text, out);
	fprintf(out, "CONFIG defaults to $HM_CONFIG.  The control socket (status, block, metrics,\n"
		     "control) defaults to $HM_CONTROL_SOCKET, else " HM_DEFAULT_CONTROL_SOCKET ".\n"
		     "Exit status: 0 done, 1 failed or bad arguments (the reason on stderr), 2 an\n"
		     "unknown command or option; cert check: 3 a\n"
		     "verdict other than ok, 4 no TLSA match (hmctl(8)).\n");
}

/* hmctl COMMAND --help: that command's usage, with no configuration needed. */
static int command_help(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0) {
			printf("usage: hmctl %s", commands[i].config ? "[-c CONFIG] " : "");
			fputs(commands[i].text + 2, stdout);
			return 0;
		}
	usage(stderr);
	return 2;
}

static bool known_command(const char *name)
{
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
		if (strcmp(commands[i].name, name) == 0)
			return true;
	return false;
}

static bool wants_help(int argc, char **argv)
{
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	return false;
}

/* Certificates of both forms (user/client/certificate.h): a CT verdict's
 * names its "format"; the version 1 form (DNS answers) does not. */
static int cmd_verify(const struct hm_config *cfg, int argc, char **argv)
{
	json_t *j = argc >= 2 ? json_load_file(argv[1], 0, NULL) : NULL;
	bool ct = j && hm_cert_format_of(j) == HM_CERT_CT;

	json_decref(j);
	return ct ? hm_cli_verify(cfg, argc, argv) : hm_ctl_verify(cfg, argc, argv);
}

int main(int argc, char **argv)
{
	const char *config = getenv("HM_CONFIG");
	static struct hm_config cfg;
	int i = 1, rc;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (hm_crypto_init() < 0)
		die("libsodium failed to initialise");
	while (i < argc && argv[i][0] == '-') {
		if ((strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			config = argv[i + 1];
			i += 2;
		} else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("hmctl %s\n", HM_RELEASE);
			return 0;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc) {
		usage(stderr);
		return 2;
	}
	argc -= i;
	argv += i;
	if (strcmp(argv[0], "init") == 0)
		return hm_cli_init(argc, argv);
	if (!known_command(argv[0])) {
		usage(stderr);
		return 2;
	}
	if (wants_help(argc, argv))
		return command_help(argv[0]);
	if (strcmp(argv[0], "keygen") == 0)
		return cmd_keygen(argc, argv);
	if (strcmp(argv[0], "status") == 0)
		return cmd_status(argc, argv);
	if (strcmp(argv[0], "block") == 0)
		return cmd_block(argc, argv);
	if (strcmp(argv[0], "metrics") == 0)
		return cmd_metrics(argc, argv);
	if (strcmp(argv[0], "control") == 0)
		return cmd_control(argc, argv);
	load_config(config, &cfg);
	if (strcmp(argv[0], "put") == 0 || strcmp(argv[0], "get") == 0)
		rc = cmd_put_get(&cfg, argc, argv);
	else if (strcmp(argv[0], "bench") == 0)
		rc = cmd_bench(&cfg, argc, argv);
	else if (strcmp(argv[0], "inject") == 0)
		rc = cmd_inject(&cfg, argc, argv);
	else if (strcmp(argv[0], "dns") == 0)
		rc = hm_dns_ctl_query(&cfg, argc, argv);
	else if (strcmp(argv[0], "cert") == 0)
		rc = hm_cli_cert(&cfg, argc, argv);
	else if (strcmp(argv[0], "verify") == 0)
		rc = cmd_verify(&cfg, argc, argv);
	else {
		usage(stderr);
		rc = 2;
	}
	hm_config_free(&cfg);
	return rc;
}
