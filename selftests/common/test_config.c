/* SPDX-License-Identifier: MIT */
/*
 * Configuration loader: a complete valid file, defaults, the hex key helpers,
 * and one case per refusal.  Every refusal checks the file name, the exact
 * line and the dotted key path ("cluster.yaml:7: cluster.members[1].id: "),
 * so a message pointing at the wrong line fails the case.
 *
 * Each case writes its files to a fresh mkdtemp() directory under /tmp and
 * removes it before returning.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "hm_test.h"
#include "common/config.h"

struct fixture {
	char dir[64];
	char path[128]; /* dir/cluster.yaml */
};

static void write_text(const struct fixture *fx, const char *name, const char *text)
{
	char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", fx->dir, name);
	f = fopen(path, "w");
	if (!ASSERT_TRUE(f != NULL, path))
		return;
	fputs(text, f);
	fclose(f);
}

/* 2*len hex digits of the byte b repeated, NUL-terminated. */
static char *hex_of(uint8_t b, size_t len, char *out)
{
	for (size_t i = 0; i < len; i++)
		sprintf(out + 2 * i, "%02x", b);
	return out;
}

static void write_key(const struct fixture *fx, const char *name, uint8_t b, size_t len)
{
	char hex[2 * 64 + 2];

	hex_of(b, len, hex);
	strcat(hex, "\n");
	write_text(fx, name, hex);
}

/* A temp dir holding keys/r0..r3.pub (bytes 0xa0..0xa3), keys/c100.pub,
 * keys/c101.pub (0xc0, 0xc1) and keys/r0.key. */
static bool fixture_setup(struct fixture *fx)
{
	char keys[128];

	snprintf(fx->dir, sizeof(fx->dir), "/tmp/hm-test-config-XXXXXX");
	if (!ASSERT_TRUE(mkdtemp(fx->dir) != NULL, "mkdtemp"))
		return false;
	snprintf(fx->path, sizeof(fx->path), "%s/cluster.yaml", fx->dir);
	snprintf(keys, sizeof(keys), "%s/keys", fx->dir);
	if (!ASSERT_OK(mkdir(keys, 0700), "mkdir keys"))
		return false;
	for (int i = 0; i < 4; i++) {
		char name[32];

		snprintf(name, sizeof(name), "keys/r%d.pub", i);
		write_key(fx, name, (uint8_t)(0xa0 + i), 32);
	}
	write_key(fx, "keys/c100.pub", 0xc0, 32);
	write_key(fx, "keys/c101.pub", 0xc1, 32);
	write_key(fx, "keys/r0.key", 0x55, 64);
	return true;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st, (void)flag, (void)ftw;
	return remove(path);
}

static void fixture_teardown(struct fixture *fx)
{
	ASSERT_OK(nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), "remove temp dir");
}

/* Write `yaml` as cluster.yaml in a fresh fixture and load it. */
static int load_yaml(const char *yaml, struct hm_config *cfg, char *err, size_t errlen)
{
	struct fixture fx;
	int rc;

	if (!fixture_setup(&fx))
		return -100;
	write_text(&fx, "cluster.yaml", yaml);
	rc = hm_config_load(fx.path, cfg, err, errlen);
	fixture_teardown(&fx);
	return rc;
}

/* Expect a refusal "…/cluster.yaml:LINE: KEY: …MSG…" (no "KEY: " when key is NULL). */
static void expect_error(const char *yaml, int line, const char *key, const char *msg)
{
	struct hm_config cfg;
	char err[1024] = "", want[256];
	int rc = load_yaml(yaml, &cfg, err, sizeof(err));

	if (rc == -100)
		return;
	if (!ASSERT_ERR(rc, msg))
		return;
	if (key)
		snprintf(want, sizeof(want), "/cluster.yaml:%d: %s: ", line, key);
	else
		snprintf(want, sizeof(want), "/cluster.yaml:%d: ", line);
	ASSERT_STRCONTAINS(err, want, "file, line and key");
	ASSERT_STRCONTAINS(err, msg, "message");
	ASSERT_TRUE(cfg.clients == NULL && cfg.n_clients == 0, "nothing left allocated");
	hm_config_free(&cfg);
}

/* Lines 1-3: f = 0, so a single member is a valid cluster. */
#define F0 "byzantine_config:\n  consensus:\n    max_faulty_nodes: 0\n"
/* One line per member. */
#define M(i) "    - {id: " #i ", address: 10.0.0." #i ", public_key: keys/r0.pub}\n"
/* Two lines + one member. */
#define ONE "cluster:\n  members:\n" M(0)
/* Two lines + four members: valid with the default f = 1. */
#define FOUR "cluster:\n  members:\n" M(0) M(1) M(2) M(3)

/* ---- valid files -------------------------------------------------------- */

/* hm_config_parse(): text given as the file at a path would hold it (the
 * configuration fuzzer's entry): the same result as the file, key files
 * found beside the path, errors named by it. */
HM_TEST(parse_text_as_the_file)
{
	static const char text[] = FOUR "  clients:\n    - {id: 100, public_key: keys/c100.pub}\n";
	struct hm_config a, b;
	char err[1024] = "";
	struct fixture fx;

	if (!fixture_setup(&fx))
		return;
	write_text(&fx, "cluster.yaml", text);
	if (ASSERT_OK(hm_config_load(fx.path, &a, err, sizeof(err)), err)) {
		if (ASSERT_OK(hm_config_parse(fx.path, text, strlen(text), &b, err, sizeof(err)), err)) {
			ASSERT_EQ(b.n_members, a.n_members, "members");
			ASSERT_TRUE(memcmp(b.members, a.members, sizeof(a.members)) == 0,
				    "the same members, keys read from the files beside it");
			ASSERT_TRUE(b.n_clients == 1 && b.clients[0].id == 100, "its client");
			ASSERT_TRUE(strcmp(b.path, fx.path) == 0, "named by the path given");
			hm_config_free(&b);
		}
		hm_config_free(&a);
	}
	/* the text is taken by its length: what follows is not read */
	ASSERT_ERR(hm_config_parse(fx.path, "cluster: [\n", 12, &b, err, sizeof(err)), "unclosed");
	ASSERT_STRCONTAINS(err, fx.path, "the error names the path");
	ASSERT_OK(hm_config_parse(fx.path, FOUR "garbage: [", strlen(FOUR), &b, err, sizeof(err)),
		  "only the first len bytes count");
	hm_config_free(&b);
	fixture_teardown(&fx);
}

HM_TEST(full_config_every_field)
{
	struct fixture fx;
	struct hm_config cfg;
	char yaml[4096], err[1024] = "", hex_a1[65], hex_c0[65], want[256];
	uint8_t key[32];
	const struct hm_member *m;
	const struct hm_client_entry *cl;
	struct sockaddr_in *sin;
	struct sockaddr_in6 *sin6;
	struct in6_addr a6;

	if (!fixture_setup(&fx))
		return;
	snprintf(yaml, sizeof(yaml),
		 "# every key, non-default values\n"
		 "byzantine_config:\n"
		 "  consensus:\n"
		 "    timeout_ms: 1500\n"
		 "    max_faulty_nodes: 1\n"
		 "    view_change_timeout_ms: 7000\n"
		 "    checkpoint_interval: 50\n"
		 "    watermark_window: 150\n"
		 "  performance:\n"
		 "    batching_enabled: yes\n"
		 "    batch_size: 32\n"
		 "    batch_timeout_ms: 0\n"
		 "    pipeline_depth: 16\n"
		 "    fast_path_enabled: On\n"
		 "    fast_path_timeout_ms: 20\n"
		 "  security:\n"
		 "    signature_algorithm: ed25519\n"
		 "    message_authentication: siphash-2-4\n"
		 "  network:\n"
		 "    port: 7100\n"
		 "    max_message_size: 9000\n"
		 "    interface: eth0\n"
		 "    rate_limit_pps: 5000\n"
		 "cluster:\n"
		 "  dataplane: xdp\n"
		 "  members:\n"
		 "    - id: 2\n"
		 "      address: 198.18.0.3\n"
		 "      public_key: keys/r2.pub\n"
		 "    - id: 0\n"
		 "      address: 198.18.0.1\n"
		 "      port: 7001\n"
		 "      public_key: keys/r0.pub\n"
		 "    - id: 1\n"
		 "      address: \"2001:db8::2\"\n"
		 "      public_key: %s\n"
		 "    - id: 3\n"
		 "      address: ::1\n"
		 "      port: 7003\n"
		 "      public_key: %s/keys/r3.pub\n"
		 "  clients:\n"
		 "    - id: 101\n"
		 "      public_key: keys/c101.pub\n"
		 "    - {id: 100, public_key: %s}\n"
		 "node:\n"
		 "  id: 0\n"
		 "  private_key: keys/r0.key\n"
		 "  data_dir: state\n"
		 "  log_level: debug\n"
		 "  log_format: json\n",
		 hex_of(0xa1, 32, hex_a1), fx.dir, hex_of(0xc0, 32, hex_c0));
	write_text(&fx, "cluster.yaml", yaml);
	if (!ASSERT_OK(hm_config_load(fx.path, &cfg, err, sizeof(err)), err))
		goto out;

	ASSERT_TRUE(!strcmp(cfg.path, fx.path), "path stored");
	ASSERT_EQ(cfg.timeout_ms, 1500, "timeout_ms");
	ASSERT_EQ(cfg.max_faulty_nodes, 1, "f");
	ASSERT_EQ(cfg.view_change_timeout_ms, 7000, "view_change_timeout_ms");
	ASSERT_EQ(cfg.checkpoint_interval, 50, "checkpoint_interval");
	ASSERT_EQ(cfg.watermark_window, 150, "watermark_window");
	ASSERT_TRUE(cfg.batching_enabled, "batching_enabled");
	ASSERT_EQ(cfg.batch_size, 32, "batch_size");
	ASSERT_EQ(cfg.batch_timeout_ms, 0, "batch_timeout_ms");
	ASSERT_EQ(cfg.pipeline_depth, 16, "pipeline_depth");
	ASSERT_TRUE(cfg.fast_path_enabled, "fast_path_enabled");
	ASSERT_EQ(cfg.fast_path_timeout_ms, 20, "fast_path_timeout_ms");
	ASSERT_TRUE(!strcmp(cfg.signature_algorithm, "ed25519"), "signature_algorithm");
	ASSERT_TRUE(!strcmp(cfg.message_authentication, "siphash-2-4"), "message_authentication");
	ASSERT_EQ(cfg.port, 7100, "network.port");
	ASSERT_EQ(cfg.max_message_size, 9000, "max_message_size");
	ASSERT_TRUE(!strcmp(cfg.interface, "eth0"), "interface");
	ASSERT_EQ(cfg.rate_limit_pps, 5000, "rate_limit_pps");
	ASSERT_EQ(cfg.dataplane, HM_DATAPLANE_XDP, "dataplane");
	ASSERT_EQ(cfg.n_members, 4, "n_members");

	/* Stored by id, whatever the order in the file. */
	for (uint32_t i = 0; i < 4; i++) {
		m = hm_config_member(&cfg, i);
		if (!ASSERT_TRUE(m == &cfg.members[i], "member by id"))
			goto free;
		ASSERT_EQ(m->id, i, "member id");
		hex_of((uint8_t)(0xa0 + i), 32, hex_a1);
		hm_parse_hex(hex_a1, key, 32);
		ASSERT_MEMEQ(m->public_key, key, 32, "member public key");
	}
	ASSERT_TRUE(hm_config_member(&cfg, 4) == NULL, "no member 4");

	/* IPv4 with its own port. */
	m = &cfg.members[0];
	sin = (struct sockaddr_in *)&m->addr;
	ASSERT_TRUE(!strcmp(m->address, "198.18.0.1"), "address 0");
	ASSERT_EQ(m->port, 7001, "port 0");
	ASSERT_EQ(m->addr_len, sizeof(struct sockaddr_in), "addr_len 0");
	ASSERT_EQ(sin->sin_family, AF_INET, "family 0");
	ASSERT_EQ(sin->sin_port, htons(7001), "sin_port 0");
	ASSERT_EQ(sin->sin_addr.s_addr, inet_addr("198.18.0.1"), "sin_addr 0");
	snprintf(want, sizeof(want), "%s/keys/r0.pub", fx.dir);
	ASSERT_TRUE(!strcmp(m->public_key_path, want), "relative key path resolved");

	/* IPv4 with network.port. */
	m = &cfg.members[2];
	sin = (struct sockaddr_in *)&m->addr;
	ASSERT_EQ(m->port, 7100, "port 2 from network.port");
	ASSERT_EQ(sin->sin_port, htons(7100), "sin_port 2");

	/* IPv6, inline key. */
	m = &cfg.members[1];
	sin6 = (struct sockaddr_in6 *)&m->addr;
	inet_pton(AF_INET6, "2001:db8::2", &a6);
	ASSERT_EQ(m->addr_len, sizeof(struct sockaddr_in6), "addr_len 1");
	ASSERT_EQ(sin6->sin6_family, AF_INET6, "family 1");
	ASSERT_EQ(sin6->sin6_port, htons(7100), "sin6_port 1");
	ASSERT_MEMEQ(&sin6->sin6_addr, &a6, sizeof(a6), "sin6_addr 1");
	ASSERT_TRUE(m->public_key_path[0] == '\0', "inline key has no path");

	/* IPv6, own port, absolute key path kept as is. */
	m = &cfg.members[3];
	sin6 = (struct sockaddr_in6 *)&m->addr;
	ASSERT_EQ(sin6->sin6_port, htons(7003), "sin6_port 3");
	ASSERT_MEMEQ(&sin6->sin6_addr, &in6addr_loopback, sizeof(a6), "::1");
	snprintf(want, sizeof(want), "%s/keys/r3.pub", fx.dir);
	ASSERT_TRUE(!strcmp(m->public_key_path, want), "absolute key path");

	ASSERT_EQ(cfg.n_clients, 2, "n_clients");
	cl = hm_config_client(&cfg, 100);
	if (ASSERT_TRUE(cl != NULL, "client 100")) {
		hm_parse_hex(hex_of(0xc0, 32, hex_c0), key, 32);
		ASSERT_MEMEQ(cl->public_key, key, 32, "client 100 inline key");
		ASSERT_TRUE(cl->public_key_path[0] == '\0', "client 100 inline");
	}
	cl = hm_config_client(&cfg, 101);
	if (ASSERT_TRUE(cl != NULL, "client 101")) {
		hm_parse_hex(hex_of(0xc1, 32, hex_c0), key, 32);
		ASSERT_MEMEQ(cl->public_key, key, 32, "client 101 key file");
		snprintf(want, sizeof(want), "%s/keys/c101.pub", fx.dir);
		ASSERT_TRUE(!strcmp(cl->public_key_path, want), "client key path");
	}
	ASSERT_TRUE(hm_config_client(&cfg, 0) == NULL, "a replica is not a client");
	ASSERT_TRUE(hm_config_client(&cfg, 102) == NULL, "no client 102");

	ASSERT_TRUE(cfg.has_node_id, "has_node_id");
	ASSERT_EQ(cfg.node_id, 0, "node_id");
	snprintf(want, sizeof(want), "%s/keys/r0.key", fx.dir);
	ASSERT_TRUE(!strcmp(cfg.private_key_path, want), "private_key_path");
	snprintf(want, sizeof(want), "%s/state", fx.dir);
	ASSERT_TRUE(!strcmp(cfg.data_dir, want), "data_dir resolved");
	ASSERT_TRUE(!strcmp(cfg.log_level, "debug"), "log_level");
	ASSERT_TRUE(!strcmp(cfg.log_format, "json"), "log_format");
free:
	hm_config_free(&cfg);
	ASSERT_TRUE(cfg.clients == NULL && cfg.n_clients == 0, "freed");
out:
	fixture_teardown(&fx);
}

static void check_defaults(const struct hm_config *cfg)
{
	ASSERT_EQ(cfg->timeout_ms, 1000, "timeout_ms");
	ASSERT_EQ(cfg->max_faulty_nodes, 1, "f");
	ASSERT_EQ(cfg->view_change_timeout_ms, 5000, "view_change_timeout_ms");
	ASSERT_EQ(cfg->checkpoint_interval, 100, "checkpoint_interval");
	ASSERT_EQ(cfg->watermark_window, 200, "watermark_window");
	ASSERT_TRUE(cfg->batching_enabled, "batching_enabled");
	ASSERT_EQ(cfg->batch_size, 64, "batch_size");
	ASSERT_EQ(cfg->batch_timeout_ms, 10, "batch_timeout_ms");
	ASSERT_EQ(cfg->pipeline_depth, 8, "pipeline_depth");
	ASSERT_FALSE(cfg->fast_path_enabled, "fast_path_enabled");
	ASSERT_EQ(cfg->fast_path_timeout_ms, 50, "fast_path_timeout_ms");
	ASSERT_TRUE(!strcmp(cfg->signature_algorithm, "ed25519"), "signature_algorithm");
	ASSERT_TRUE(!strcmp(cfg->message_authentication, "siphash-2-4"), "message_authentication");
	ASSERT_EQ(cfg->port, HM_DEFAULT_PORT, "port");
	ASSERT_EQ(cfg->max_message_size, 65000, "max_message_size");
	ASSERT_TRUE(cfg->interface[0] == '\0', "interface");
	ASSERT_EQ(cfg->rate_limit_pps, 0, "rate_limit_pps");
	ASSERT_EQ(cfg->dataplane, HM_DATAPLANE_SOCKET, "dataplane");
	ASSERT_TRUE(cfg->clients == NULL && cfg->n_clients == 0, "no clients");
	ASSERT_FALSE(cfg->has_node_id, "has_node_id");
	ASSERT_TRUE(cfg->private_key_path[0] == '\0', "private_key_path");
	ASSERT_TRUE(cfg->data_dir[0] == '\0', "data_dir");
	ASSERT_TRUE(!strcmp(cfg->log_level, "info"), "log_level");
	ASSERT_TRUE(!strcmp(cfg->log_format, "kv"), "log_format defaults to kv");
}

HM_TEST(defaults_function)
{
	struct hm_config cfg;

	memset(&cfg, 0xff, sizeof(cfg));
	cfg.clients = NULL;
	hm_config_defaults(&cfg);
	check_defaults(&cfg);
	ASSERT_EQ(cfg.n_members, 0, "n_members");
}

HM_TEST(minimal_config_gets_defaults)
{
	struct hm_config cfg;
	char err[1024] = "";

	if (!ASSERT_OK(load_yaml(FOUR, &cfg, err, sizeof(err)), err))
		return;
	check_defaults(&cfg);
	ASSERT_EQ(cfg.n_members, 4, "n_members");
	for (int i = 0; i < 4; i++) {
		ASSERT_EQ(cfg.members[i].port, HM_DEFAULT_PORT, "member port");
		ASSERT_EQ(((struct sockaddr_in *)&cfg.members[i].addr)->sin_port, htons(HM_DEFAULT_PORT),
			  "sin_port");
	}
	hm_config_free(&cfg);
}

HM_TEST(watermark_defaults_to_two_checkpoints)
{
	struct hm_config cfg;
	char err[1024] = "";

	if (!ASSERT_OK(load_yaml("byzantine_config:\n  consensus:\n    checkpoint_interval: 300\n" FOUR,
				 &cfg, err, sizeof(err)), err))
		return;
	ASSERT_EQ(cfg.watermark_window, 600, "2 * checkpoint_interval");
	hm_config_free(&cfg);
}

HM_TEST(batching_disabled_forces_batch_size_1)
{
	struct hm_config cfg;
	char err[1024] = "";

	if (!ASSERT_OK(load_yaml("byzantine_config:\n  performance:\n    batching_enabled: OFF\n"
				 "    batch_size: 32\n" FOUR, &cfg, err, sizeof(err)), err))
		return;
	ASSERT_FALSE(cfg.batching_enabled, "batching_enabled");
	ASSERT_EQ(cfg.batch_size, 1, "batch_size forced to 1");
	hm_config_free(&cfg);
}

HM_TEST(empty_sections_and_absolute_data_dir)
{
	struct hm_config cfg;
	char err[1024] = "";

	if (!ASSERT_OK(load_yaml("byzantine_config:\n  performance:\n  network:\n" FOUR "  clients:\n"
				 "node:\n  data_dir: /var/lib/hypermesh\n  log_level: warn\n",
				 &cfg, err, sizeof(err)), err))
		return;
	ASSERT_EQ(cfg.n_clients, 0, "no clients");
	ASSERT_TRUE(!strcmp(cfg.data_dir, "/var/lib/hypermesh"), "absolute data_dir as given");
	ASSERT_TRUE(!strcmp(cfg.log_level, "warn"), "log_level");
	hm_config_free(&cfg);
}

HM_TEST(hex_helpers)
{
	struct fixture fx;
	uint8_t out[4], want[4] = { 0x01, 0xab, 0xCD, 0xef };
	char err[512] = "", path[128];

	ASSERT_OK(hm_parse_hex("01abCDef", out, 4), "mixed case");
	ASSERT_MEMEQ(out, want, 4, "decoded");
	ASSERT_ERR(hm_parse_hex("01abCDe", out, 4), "too short");
	ASSERT_ERR(hm_parse_hex("01abCDef00", out, 4), "too long");
	ASSERT_ERR(hm_parse_hex("01abCDeg", out, 4), "not hex");
	ASSERT_ERR(hm_parse_hex("01abCDe ", out, 4), "space");
	ASSERT_MEMEQ(out, want, 4, "left intact on error");

	if (!fixture_setup(&fx))
		return;
	write_text(&fx, "ok", "01abcdef \n\n");
	write_text(&fx, "lead", " 01abcdef");
	write_text(&fx, "junk", "01abcdef\nxx\n");
	snprintf(path, sizeof(path), "%s/ok", fx.dir);
	ASSERT_OK(hm_read_hex_file(path, out, 4, err, sizeof(err)), "trailing whitespace is fine");
	ASSERT_MEMEQ(out, want, 4, "read");
	ASSERT_ERR(hm_read_hex_file(path, out, 5, err, sizeof(err)), "too short for len");
	ASSERT_STRCONTAINS(err, "/ok: expected 10 hex digits", "names the file");

	snprintf(path, sizeof(path), "%s/lead", fx.dir);
	ASSERT_ERR(hm_read_hex_file(path, out, 4, err, sizeof(err)), "leading space");
	ASSERT_STRCONTAINS(err, "/lead: expected 8 hex digits", "names the file");
	snprintf(path, sizeof(path), "%s/junk", fx.dir);
	ASSERT_ERR(hm_read_hex_file(path, out, 4, err, sizeof(err)), "trailing junk");
	ASSERT_STRCONTAINS(err, "/junk: expected 8 hex digits", "names the file");
	snprintf(path, sizeof(path), "%s/missing", fx.dir);
	ASSERT_ERR(hm_read_hex_file(path, out, 4, err, sizeof(err)), "missing file");
	ASSERT_STRCONTAINS(err, "/missing: No such file or directory", "names the file and errno");
	fixture_teardown(&fx);
}

/* ---- refusals: keys and node types -------------------------------------- */

HM_TEST(unknown_top_level_key)
{
	expect_error(F0 ONE "bogus: 1\n", 7, "bogus", "unknown key (allowed: byzantine_config, cluster, node, ct)");
}

HM_TEST(unknown_nested_key)
{
	expect_error(F0 "    timeot_ms: 5\n" ONE, 4, "byzantine_config.consensus.timeot_ms", "unknown key");
}

HM_TEST(unknown_member_key)
{
	expect_error(F0 ONE "    - id: 1\n      address: 10.0.0.2\n      pubkey: keys/r1.pub\n",
		     9, "cluster.members[1].pubkey", "unknown key");
}

HM_TEST(duplicate_key)
{
	expect_error("byzantine_config:\n  consensus:\n    max_faulty_nodes: 0\n    timeout_ms: 10\n"
		     "    timeout_ms: 20\n" ONE,
		     5, "byzantine_config.consensus.timeout_ms", "duplicate key (first at line 4)");
}

HM_TEST(duplicate_section)
{
	expect_error(F0 ONE "byzantine_config:\n  network:\n    port: 1\n", 7, "byzantine_config",
		     "duplicate key (first at line 1)");
}

HM_TEST(mapping_expected)
{
	expect_error("byzantine_config:\n  consensus: 5\n" FOUR, 2, "byzantine_config.consensus",
		     "expected a mapping, got \"5\"");
}

HM_TEST(sequence_expected)
{
	expect_error(F0 "cluster:\n  members:\n    id: 0\n", 6, "cluster.members",
		     "expected a sequence, got a mapping");
}

HM_TEST(scalar_expected)
{
	expect_error(F0 "    timeout_ms: [1, 2]\n" ONE, 4, "byzantine_config.consensus.timeout_ms",
		     "expected an unsigned integer, got a sequence");
}

HM_TEST(member_not_a_mapping)
{
	expect_error(F0 ONE "    - 5\n", 7, "cluster.members[1]", "expected a mapping, got \"5\"");
}

HM_TEST(missing_cluster_members)
{
	expect_error(F0 "cluster:\n  dataplane: socket\n", 5, "cluster.members", "required key is missing");
	expect_error(F0, 1, "cluster.members", "required key is missing");
}

HM_TEST(missing_member_key)
{
	expect_error(F0 "cluster:\n  members:\n    - id: 0\n      public_key: keys/r0.pub\n", 6,
		     "cluster.members[0].address", "required key is missing");
}

/* ---- refusals: scalar types and ranges ---------------------------------- */

HM_TEST(integer_not_a_number)
{
	expect_error(F0 "    timeout_ms: abc\n" ONE, 4, "byzantine_config.consensus.timeout_ms",
		     "expected an unsigned integer, got \"abc\"");
}

HM_TEST(integer_with_sign_or_leading_zero)
{
	expect_error("byzantine_config:\n  performance:\n    batch_size: -5\n" FOUR, 3,
		     "byzantine_config.performance.batch_size", "expected an unsigned integer, got \"-5\"");
	expect_error("byzantine_config:\n  performance:\n    batch_size: +5\n" FOUR, 3,
		     "byzantine_config.performance.batch_size", "expected an unsigned integer, got \"+5\"");
	expect_error("byzantine_config:\n  performance:\n    batch_size: 010\n" FOUR, 3,
		     "byzantine_config.performance.batch_size", "expected an unsigned integer, got \"010\"");
	expect_error("byzantine_config:\n  performance:\n    batch_size: 0x10\n" FOUR, 3,
		     "byzantine_config.performance.batch_size", "expected an unsigned integer");
}

HM_TEST(integer_overflow)
{
	expect_error(F0 "    view_change_timeout_ms: 4294967296\n" ONE, 4,
		     "byzantine_config.consensus.view_change_timeout_ms", "does not fit in 32 bits");
	expect_error(F0 ONE "    - {id: 99999999999, address: 10.0.0.2, public_key: keys/r1.pub}\n", 7,
		     "cluster.members[1].id", "does not fit in 32 bits");
}

HM_TEST(integer_out_of_range)
{
	expect_error(F0 "    timeout_ms: 0\n" ONE, 4, "byzantine_config.consensus.timeout_ms",
		     "0 is out of range 1..600000");
	expect_error("byzantine_config:\n  performance:\n    batch_size: 2000\n" FOUR, 3,
		     "byzantine_config.performance.batch_size", "2000 is out of range 1..1024");
	expect_error("byzantine_config:\n  consensus:\n    max_faulty_nodes: 11\n" ONE, 3,
		     "byzantine_config.consensus.max_faulty_nodes",
		     "11 is out of range 0..10");
	expect_error("byzantine_config:\n  network:\n    max_message_size: 199\n" FOUR, 3,
		     "byzantine_config.network.max_message_size", "199 is out of range 200..65536");
	/* 65536 (the specification's sample) is one datagram at most */
	expect_error("byzantine_config:\n  network:\n    max_message_size: 65537\n" FOUR, 3,
		     "byzantine_config.network.max_message_size", "65537 is out of range 200..65536");
}

HM_TEST(port_out_of_range)
{
	expect_error("byzantine_config:\n  network:\n    port: 0\n" FOUR, 3, "byzantine_config.network.port",
		     "0 is out of range 1..65535");
	expect_error(F0 "cluster:\n  members:\n    - {id: 0, address: '::1', port: 65536, public_key: keys/r0.pub}\n",
		     6, "cluster.members[0].port", "65536 is out of range 1..65535");
}

HM_TEST(bad_boolean)
{
	expect_error("byzantine_config:\n  performance:\n    batch_size: 4\n    fast_path_enabled: maybe\n" FOUR,
		     4, "byzantine_config.performance.fast_path_enabled",
		     "expected a boolean (true/false, yes/no, on/off), got \"maybe\"");
}

HM_TEST(bad_enumerations)
{
	expect_error("byzantine_config:\n  security:\n    signature_algorithm: rsa\n" FOUR, 3,
		     "byzantine_config.security.signature_algorithm",
		     "unsupported value \"rsa\" (allowed: ed25519)");
	expect_error("byzantine_config:\n  security:\n    message_authentication: hmac-sha256\n" FOUR, 3,
		     "byzantine_config.security.message_authentication", "(allowed: siphash-2-4)");
	expect_error(F0 "cluster:\n  dataplane: dpdk\n  members:\n" M(0), 5, "cluster.dataplane",
		     "unsupported value \"dpdk\" (allowed: socket, xdp)");
	expect_error(F0 ONE "node:\n  log_level: verbose\n", 8, "node.log_level",
		     "(allowed: error, warn, info, debug)");
	expect_error(F0 ONE "node:\n  log_format: xml\n", 8, "node.log_format",
		     "(allowed: kv, json)");
}

HM_TEST(interface_name_too_long)
{
	expect_error("byzantine_config:\n  network:\n    interface: abcdefghijklmnop\n" FOUR, 3,
		     "byzantine_config.network.interface", "too long: at most 15 characters");
}

HM_TEST(nul_in_scalar)
{
	expect_error(F0 "cluster:\n  members:\n    - {id: 0, address: \"10.0.0.1\\0x\", public_key: keys/r0.pub}\n",
		     6, "cluster.members[0].address", "contains a NUL character");
}

/* ---- refusals: cluster membership --------------------------------------- */

HM_TEST(duplicate_member_id)
{
	expect_error(F0 ONE "    - {id: 1, address: 10.0.0.2, public_key: keys/r1.pub}\n"
		     "    - {id: 1, address: 10.0.0.3, public_key: keys/r2.pub}\n",
		     8, "cluster.members[2].id", "duplicate id 1");
}

HM_TEST(missing_member_id)
{
	expect_error("cluster:\n  members:\n" M(0) M(1) M(2) M(5), 6, "cluster.members[3].id",
		     "id 5 is out of range: 4 members must have ids 0..3, and id 3 is missing");
}

HM_TEST(too_many_members)
{
	char yaml[4096];
	size_t off = snprintf(yaml, sizeof(yaml), F0 "cluster:\n  members:\n");

	for (int i = 0; i < 33; i++)
		off += snprintf(yaml + off, sizeof(yaml) - off,
				"    - {id: %d, address: 10.0.0.%d, public_key: keys/r0.pub}\n", i, i + 1);
	expect_error(yaml, 5, "cluster.members", "33 members, at most 32 are supported");
}

HM_TEST(too_few_members_for_f)
{
	expect_error("byzantine_config:\n  consensus:\n    max_faulty_nodes: 2\n" FOUR, 5, "cluster.members",
		     "4 members cannot tolerate f=2: need n >= 3f+1 = 7");
	expect_error("cluster:\n  members: []\n", 2, "cluster.members",
		     "0 members cannot tolerate f=1: need n >= 3f+1 = 4");
}

/* 2f+1 quorums of more than 3f+1 replicas may meet in a faulty one only. */
HM_TEST(more_members_than_3f_plus_1)
{
	expect_error(FOUR M(4), 2, "cluster.members",
		     "5 members with f=1: quorums of 2f+1 = 3 would not intersect in a correct "
		     "replica; use n = 3f+1 = 4 members, or raise max_faulty_nodes");
	expect_error(F0 FOUR, 5, "cluster.members",
		     "4 members with f=0: quorums of 2f+1 = 1 would not intersect in a correct "
		     "replica; use n = 3f+1 = 1 members, or raise max_faulty_nodes");
}

HM_TEST(duplicate_client_id)
{
	expect_error(FOUR "  clients:\n    - {id: 100, public_key: keys/c100.pub}\n"
		     "    - {id: 100, public_key: keys/c101.pub}\n",
		     9, "cluster.clients[1].id", "duplicate id 100 (cluster.clients[0] has it too)");
}

HM_TEST(client_id_is_member_id)
{
	expect_error("cluster:\n  clients:\n    - {id: 100, public_key: keys/c100.pub}\n"
		     "    - id: 3\n      public_key: keys/c101.pub\n  members:\n" M(0) M(1) M(2) M(3),
		     4, "cluster.clients[1].id", "id 3 is a replica id");
}

HM_TEST(too_many_clients)
{
	size_t cap = 64 * (HM_MAX_CLIENTS + 8), off;
	char *yaml = malloc(cap);

	if (!ASSERT_TRUE(yaml != NULL, "malloc"))
		return;
	off = snprintf(yaml, cap, FOUR "  clients:\n");
	for (int i = 0; i <= HM_MAX_CLIENTS; i++)
		off += snprintf(yaml + off, cap - off, "    - {id: %d, public_key: keys/c100.pub}\n", 100 + i);
	expect_error(yaml, 7, "cluster.clients", "1025 clients, at most 1024 are supported");
	free(yaml);
}

HM_TEST(bad_address)
{
	expect_error(F0 "cluster:\n  members:\n    - {id: 0, address: replica0.example.com, public_key: keys/r0.pub}\n",
		     6, "cluster.members[0].address", "\"replica0.example.com\" is not an IPv4 or IPv6 address");
	expect_error(F0 "cluster:\n  members:\n    - {id: 0, address: 10.0.0.256, public_key: keys/r0.pub}\n",
		     6, "cluster.members[0].address", "is not an IPv4 or IPv6 address");
}

/* ---- refusals: keys ----------------------------------------------------- */

HM_TEST(missing_key_file)
{
	expect_error(F0 "cluster:\n  members:\n    - id: 0\n      address: ::1\n"
		     "      public_key: keys/missing.pub\n",
		     8, "cluster.members[0].public_key", "/keys/missing.pub: No such file or directory");
}

HM_TEST(key_file_wrong_content)
{
	struct fixture fx;
	struct hm_config cfg;
	char err[1024] = "";

	if (!fixture_setup(&fx))
		return;
	write_text(&fx, "keys/bad.pub", "not a key\n");
	write_text(&fx, "cluster.yaml", FOUR "  clients:\n    - {id: 7, public_key: keys/bad.pub}\n");
	ASSERT_ERR(hm_config_load(fx.path, &cfg, err, sizeof(err)), "bad key file");
	ASSERT_STRCONTAINS(err, "/cluster.yaml:8: cluster.clients[0].public_key: ", "line and key");
	ASSERT_STRCONTAINS(err, "/keys/bad.pub: expected 64 hex digits", "names the key file");
	fixture_teardown(&fx);
}

HM_TEST(inline_key_wrong_length)
{
	char yaml[512], hex[65];

	hex_of(0xa0, 32, hex);
	hex[63] = '\0';
	snprintf(yaml, sizeof(yaml), F0 "cluster:\n  members:\n    - id: 0\n      address: ::1\n"
		 "      public_key: %s\n", hex);
	expect_error(yaml, 8, "cluster.members[0].public_key",
		     "inline key must be exactly 64 hex digits, got 63");
}

HM_TEST(private_key_unreadable)
{
	expect_error(F0 ONE "node:\n  id: 0\n  private_key: keys/nope.key\n", 9, "node.private_key",
		     "/keys/nope.key: No such file or directory");
}

/* ---- refusals: cross-field ---------------------------------------------- */

HM_TEST(pipeline_depth_above_window)
{
	expect_error("byzantine_config:\n  performance:\n    pipeline_depth: 300\n" FOUR, 3,
		     "byzantine_config.performance.pipeline_depth", "300 exceeds watermark_window 200");
}

HM_TEST(watermark_below_checkpoint_interval)
{
	expect_error("byzantine_config:\n  consensus:\n    checkpoint_interval: 100\n"
		     "    watermark_window: 50\n" FOUR,
		     4, "byzantine_config.consensus.watermark_window", "50 is below checkpoint_interval 100");
}

HM_TEST(default_window_below_default_pipeline)
{
	/* checkpoint_interval 3 makes the default window 6, under the default
	 * pipeline depth 8: blamed on the line that set it. */
	expect_error("byzantine_config:\n  consensus:\n    checkpoint_interval: 3\n" FOUR, 3,
		     "byzantine_config.consensus.watermark_window", "6 is below pipeline_depth 8");
}

/* ---- refusals: the file itself ------------------------------------------ */

HM_TEST(malformed_yaml)
{
	expect_error(F0 "\ttimeout_ms: 5\n" ONE, 4, NULL, "invalid YAML: ");
	expect_error(F0 "cluster:\n  members: [\n", 6, NULL, "invalid YAML: ");
}

HM_TEST(empty_file)
{
	expect_error("", 1, NULL, "empty configuration");
	expect_error("# only a comment\n", 1, NULL, "empty configuration");
}

HM_TEST(top_level_not_a_mapping)
{
	expect_error("# a list\n- a\n- b\n", 2, NULL, "expected a mapping at the top level, got a sequence");
	expect_error("hello\n", 1, NULL, "expected a mapping at the top level, got \"hello\"");
}

HM_TEST(second_document)
{
	expect_error(FOUR "---\nnode:\n  id: 1\n", 8, NULL, "more than one YAML document");
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* 100k levels of flow nesting are refused quickly (libyaml alone takes time
 * quadratic in the depth: 24 s), naming the file and the line; the bound is
 * generous so the case holds on a loaded machine. */
static void expect_deep_refused(const char *open, const char *close, size_t levels)
{
	size_t lo = strlen(open), lc = strlen(close);
	size_t len = strlen(FOUR) + 3 + levels * (lo + lc) + 2;
	char *yaml = malloc(len), *p = yaml;
	char err[1024] = "";
	struct hm_config cfg;
	double t0;
	int rc;

	if (!ASSERT_TRUE(yaml != NULL, "malloc"))
		return;
	p += sprintf(p, "%sx: ", FOUR);
	for (size_t i = 0; i < levels; i++, p += lo)
		memcpy(p, open, lo);
	for (size_t i = 0; i < levels; i++, p += lc)
		memcpy(p, close, lc);
	strcpy(p, "\n");
	t0 = now_s();
	rc = load_yaml(yaml, &cfg, err, sizeof(err));
	ASSERT_LE((long long)((now_s() - t0) * 1000), 1000, "refused within 1 s (ms)");
	free(yaml);
	if (rc == -100 || !ASSERT_ERR(rc, "deep nesting"))
		return;
	ASSERT_STRCONTAINS(err, "/cluster.yaml:7: ", "file and line");
	ASSERT_STRCONTAINS(err, "nesting deeper than 64 levels", "message");
	hm_config_free(&cfg);
}

HM_TEST(deep_nesting_refused_quickly)
{
	expect_deep_refused("[", "]", 100000);
	expect_deep_refused("{a: ", "}", 100000);
	/* 64 levels are still parsed (and refused only by the schema). */
	expect_error(FOUR "x: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n", 7, "x", "unknown key");
}

HM_TEST(missing_config_file)
{
	struct hm_config cfg;
	char err[512] = "";

	ASSERT_ERR(hm_config_load("/nonexistent/hm/cluster.yaml", &cfg, err, sizeof(err)), "missing");
	ASSERT_STRCONTAINS(err, "/nonexistent/hm/cluster.yaml: cannot read: No such file or directory",
			   "names the file");
	ASSERT_TRUE(cfg.clients == NULL, "nothing allocated");
}

HM_TEST(detection_section)
{
	struct hm_config cfg;
	char err[1024] = "";

	if (!ASSERT_OK(load_yaml(FOUR, &cfg, err, sizeof(err)), err))
		return;
	ASSERT_EQ(cfg.judge_interval_ms, 1000, "judge interval default");
	ASSERT_EQ(cfg.block_cooldown_s, 60, "cooldown default");
	ASSERT_EQ(cfg.block_max_cooldown_s, 3600, "max cooldown default");
	ASSERT_EQ(cfg.metrics_port, 0, "no metrics endpoint by default");
	hm_config_free(&cfg);
	if (!ASSERT_OK(load_yaml("byzantine_config:\n  detection:\n    judge_interval_ms: 250\n"
				 "    block_cooldown_s: 5\n    block_max_cooldown_s: 40\n"
				 "    metrics_address: 127.0.0.1\n    metrics_port: 9464\n" FOUR,
				 &cfg, err, sizeof(err)), err))
		return;
	ASSERT_EQ(cfg.judge_interval_ms, 250, "judge interval");
	ASSERT_EQ(cfg.block_cooldown_s, 5, "cooldown");
	ASSERT_EQ(cfg.block_max_cooldown_s, 40, "max cooldown");
	ASSERT_STRCONTAINS(cfg.metrics_address, "127.0.0.1", "address");
	ASSERT_EQ(cfg.metrics_port, 9464, "port");
	hm_config_free(&cfg);
	expect_error("byzantine_config:\n  detection:\n    judge_interval_ms: 5\n" FOUR, 3,
		     "byzantine_config.detection.judge_interval_ms", "out of range 100..60000");
	expect_error("byzantine_config:\n  detection:\n    block_cooldown_s: 50\n"
		     "    block_max_cooldown_s: 10\n" FOUR, 4,
		     "byzantine_config.detection.block_max_cooldown_s", "below block_cooldown_s 50");
	expect_error("byzantine_config:\n  detection:\n    metrics_port: 70000\n" FOUR, 3,
		     "byzantine_config.detection.metrics_port", "out of range");
	expect_error("byzantine_config:\n  detection:\n    blocklist: 1\n" FOUR, 3, NULL, "blocklist");
}

/* ---- byzantine_config.dns ------------------------------------------------ */

#define DNS_HEAD "byzantine_config:\n  dns:\n"

HM_TEST(dns_section_and_replica_clients)
{
	struct hm_config cfg;
	char err[1024] = "";
	const char *yaml = DNS_HEAD
		"    listen_port: 5353\n"
		"    max_ttl_s: 60\n"
		"    trust_anchors: [\"signed.hmtest. IN DS 1 13 2 00\"]\n"
		"    upstreams:\n"
		"      - {zone: signed.hmtest., address: 198.18.0.53}\n"
		"      - {zone: signed.hmtest., address: 198.18.0.54@5353, mode: forward, replicas: [3]}\n"
		"cluster:\n  members:\n" M(0) M(1) M(2) M(3)
		"  clients:\n    - {id: 100, public_key: keys/r0.pub}\n";

	if (!ASSERT_OK(load_yaml(yaml, &cfg, err, sizeof(err)), err))
		return;
	ASSERT_TRUE(cfg.dns.enabled, "enabled");
	ASSERT_EQ(cfg.dns.listen_port, 5353, "port");
	ASSERT_EQ(cfg.dns.max_ttl_s, 60, "max ttl");
	ASSERT_EQ(cfg.dns.skew_s, 30, "default skew");
	ASSERT_FALSE(cfg.dns.xdp, "xdp answers off by default");
	ASSERT_EQ(cfg.dns.rrl_rate, 100, "default rrl rate");
	ASSERT_EQ(cfg.dns.rrl_slip, 2, "default rrl slip");
	ASSERT_EQ(cfg.dns.rrl_ipv4_prefix, 24, "default IPv4 prefix");
	ASSERT_EQ(cfg.dns.rrl_ipv6_prefix, 56, "default IPv6 prefix");
	ASSERT_EQ(cfg.dns.n_trust_anchors, 1, "anchors");
	ASSERT_EQ(cfg.dns.n_upstreams, 2, "upstreams");
	ASSERT_EQ(cfg.dns.upstreams[0].replicas, 0, "for every replica");
	ASSERT_EQ(cfg.dns.upstreams[1].replicas, 1u << 3, "replica 3 only");
	ASSERT_TRUE(cfg.dns.upstreams[1].forward, "forward mode");
	ASSERT_EQ(cfg.n_clients, 5, "one client and four replica clients");
	for (uint32_t i = 0; i < 4; i++) {
		const struct hm_client_entry *e = hm_config_client(&cfg, HM_REPLICA_CLIENT_BASE + i);

		if (ASSERT_TRUE(e != NULL, "replica client"))
			ASSERT_MEMEQ(e->public_key, cfg.members[i].public_key, HM_PUBKEY_LEN,
				     "with the replica's key");
	}
	ASSERT_TRUE(hm_config_client(&cfg, 100) != NULL, "the configured client still found");
	{
		struct sockaddr_in lo = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f000001) };
		struct sockaddr_in out = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(0xc6120001) };

		ASSERT_EQ(cfg.dns.n_allow, 2, "no allow key: loopback v4 and v6");
		ASSERT_TRUE(hm_prefix_match_any(cfg.dns.allow, cfg.dns.n_allow, (void *)&lo),
			    "127.0.0.1 served");
		ASSERT_FALSE(hm_prefix_match_any(cfg.dns.allow, cfg.dns.n_allow, (void *)&out),
			     "no open resolver by default");
		ASSERT_EQ(cfg.dns.rate_limit_qps, 0, "no rate limit by default");
	}
	hm_config_free(&cfg);

	if (!ASSERT_OK(load_yaml(DNS_HEAD "    allow: [198.18.0.0/15, \"2001:db8::/32\"]\n"
				 "    rate_limit_qps: 100\n" FOUR, &cfg, err, sizeof(err)), err))
		return;
	ASSERT_EQ(cfg.dns.n_allow, 2, "two prefixes");
	ASSERT_EQ(cfg.dns.allow[1].family, AF_INET6, "the IPv6 one");
	ASSERT_EQ(cfg.dns.rate_limit_burst, 100, "burst defaults to qps");
	ASSERT_EQ(cfg.dns.rate_limit_prefix_v4, 24, "per /24");
	ASSERT_EQ(cfg.dns.rate_limit_prefix_v6, 56, "per /56");
	hm_config_free(&cfg);
	if (!ASSERT_OK(load_yaml(DNS_HEAD "    allow: []\n" FOUR, &cfg, err, sizeof(err)), err))
		return;
	ASSERT_EQ(cfg.dns.n_allow, 0, "an empty list refuses everybody");
	hm_config_free(&cfg);

	if (!ASSERT_OK(load_yaml(FOUR, &cfg, err, sizeof(err)), err))
		return;
	ASSERT_FALSE(cfg.dns.enabled, "no section: off");
	ASSERT_EQ(cfg.n_clients, 0, "no replica clients without dns");
	hm_config_free(&cfg);
}

/* Recursion from the root: dns.root_hints (checked readable, else Debian's
 * hints when installed), the root anchor without upstreams, dns.prefetch. */
HM_TEST(dns_root_hints_and_prefetch)
{
	struct hm_config cfg;
	char err[1024] = "";
	bool debian = access("/usr/share/dns/root.hints", R_OK) == 0;

	if (!ASSERT_OK(load_yaml(DNS_HEAD "    listen_port: 53\n" FOUR, &cfg, err, sizeof(err)), err))
		return;
	ASSERT_TRUE(cfg.dns.prefetch, "prefetch on by default");
	if (debian) {
		ASSERT_TRUE(strcmp(cfg.dns.root_hints, "/usr/share/dns/root.hints") == 0, "Debian's hints");
		ASSERT_TRUE(strcmp(cfg.dns.trust_anchor_file, "/usr/share/dns/root.key") == 0,
			    "no upstreams, no anchors: the root's");
	}
	hm_config_free(&cfg);
	if (!ASSERT_OK(load_yaml(DNS_HEAD "    prefetch: false\n    root_hints: /dev/null\n"
				 "    upstreams: [{zone: a., address: 1.2.3.4}]\n" FOUR,
				 &cfg, err, sizeof(err)), err))
		return;
	ASSERT_FALSE(cfg.dns.prefetch, "prefetch off");
	ASSERT_TRUE(strcmp(cfg.dns.root_hints, "/dev/null") == 0, "given hints");
	ASSERT_TRUE(strcmp(cfg.dns.trust_anchor_file, "") == 0, "upstreams: no default anchor");
	hm_config_free(&cfg);
	expect_error(DNS_HEAD "    root_hints: /nonexistent/root.hints\n" FOUR, 3,
		     "byzantine_config.dns.root_hints", "cannot read /nonexistent/root.hints");
	expect_error(DNS_HEAD "    prefetch: often\n" FOUR, 3, "byzantine_config.dns.prefetch",
		     "boolean");
}

HM_TEST(dns_section_errors)
{
	expect_error(DNS_HEAD "    upstreams:\n      - {zone: a., address: 1.2.3.4, replicas: [4]}\n" FOUR,
		     4, "byzantine_config.dns.upstreams[0].replicas", "not a replica id");
	expect_error(DNS_HEAD "    upstreams:\n      - {zone: a, address: 1.2.3.4}\n" FOUR, 4,
		     "byzantine_config.dns.upstreams[0].zone", "absolute zone name");
	expect_error(DNS_HEAD "    upstreams:\n      - {zone: a., address: 1.2.3.4, mode: x}\n" FOUR,
		     4, "byzantine_config.dns.upstreams[0].mode", "unsupported value");
	expect_error(DNS_HEAD "    max_ttl_s: 0\n" FOUR, 3, "byzantine_config.dns.max_ttl_s",
		     "out of range");
	expect_error(DNS_HEAD "    listen_port: on\n" FOUR, 3, "byzantine_config.dns.listen_port",
		     "unsigned integer");
	expect_error(DNS_HEAD "    bogus: 1\n" FOUR, 3, "byzantine_config.dns.bogus", "unknown key");
	expect_error(DNS_HEAD "    allow: [127.0.0.0/8, 198.18.0.1/15]\n" FOUR, 3,
		     "byzantine_config.dns.allow", "bits set after the prefix length");
	expect_error(DNS_HEAD "    allow:\n      - 10.0.0.0/8\n      - example.org\n" FOUR, 5,
		     "byzantine_config.dns.allow", "IPv4 or IPv6");
	expect_error(DNS_HEAD "    allow: 10.0.0.0/8\n" FOUR, 3, "byzantine_config.dns.allow",
		     "sequence");
	expect_error(DNS_HEAD "    serve_expired_s: -1\n" FOUR, 3,
		     "byzantine_config.dns.serve_expired_s", "unsigned integer");
	expect_error(DNS_HEAD "    rate_limit_prefix_v4: 33\n" FOUR, 3,
		     "byzantine_config.dns.rate_limit_prefix_v4", "out of range");
	expect_error(DNS_HEAD "    rrl_ipv4_prefix: 33\n" FOUR, 3, "byzantine_config.dns.rrl_ipv4_prefix",
		     "out of range");
	expect_error(DNS_HEAD "    xdp: maybe\n" FOUR, 3, "byzantine_config.dns.xdp", "boolean");
	expect_error(DNS_HEAD "    tls_port: 853\n" FOUR, 3, "byzantine_config.dns.tls_port",
		     "needs tls_cert_file and tls_key_file");
	expect_error(DNS_HEAD "    tls_cert_file: /etc/ssl/c.pem\n" FOUR, 3,
		     "byzantine_config.dns.tls_cert_file", "without tls_port");
	expect_error(DNS_HEAD "    tls_port: 70000\n" FOUR, 3, "byzantine_config.dns.tls_port",
		     "out of range");
	expect_error(DNS_HEAD "    skew_s: 5\ncluster:\n  members:\n" M(0) M(1) M(2) M(3)
		     "  clients:\n    - {id: 1001, public_key: keys/r0.pub}\n",
		     3, "byzantine_config.dns", "reserved");
}

/* ---- the specification's keys (issue 13) --------------------------------- */

#define SPEC_SAMPLE \
	"byzantine_config:\n" \
	"  consensus:\n" \
	"    algorithm: \"pbft\"\n" \
	"    timeout_ms: 100\n" \
	"    max_faulty_nodes: 10\n" \
	"    view_change_timeout_ms: 1000\n" \
	"    checkpoint_interval: 100\n" \
	"  fault_detection:\n" \
	"    enabled: true\n" \
	"    reputation_threshold: 0.5\n" \
	"    anomaly_detection: true\n" \
	"    statistical_analysis: true\n" \
	"    ebpf_monitoring: true\n" \
	"  performance:\n" \
	"    fast_path_enabled: true\n" \
	"    fast_path_trust_threshold: 0.9\n" \
	"    batching_enabled: true\n" \
	"    batch_size: 50\n" \
	"    pipeline_depth: 3\n" \
	"  security:\n" \
	"    signature_algorithm: \"ed25519\"\n" \
	"    message_authentication: true\n" \
	"    certificate_validation: true\n" \
	"    ct_log_verification: true\n" \
	"  network:\n" \
	"    max_message_size: 65536\n" \
	"    message_compression: true\n" \
	"    encryption_required: true\n" \
	"    quic_transport: false\n"

/* The sample says `quic_transport: true`; that is refused with its reason
 * (quic_transport_refused), so the whole-sample check uses false. */
#define SPEC_MEMBERS_31 \
	"cluster:\n  dataplane: xdp\n  members:\n" \
	M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) \
	M(15) M(16) M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) \
	M(28) M(29) M(30)

/* The specification's block as written (with 3f+1 = 31 members) loads,
 * every key with its meaning: f = 10, the trust graph's fault_detection
 * keys, the fast path and its trust threshold, the link layer's
 * message_compression and encryption_required. */
HM_TEST(spec_sample_block)
{
	struct hm_config cfg;
	char err[1024] = "";

	if (!ASSERT_OK(load_yaml(SPEC_SAMPLE SPEC_MEMBERS_31, &cfg, err, sizeof(err)), err))
		return;
	ASSERT_EQ(cfg.n_members, 31, "31 members");
	ASSERT_EQ(cfg.max_faulty_nodes, 10, "f = 10");
	ASSERT_EQ(cfg.timeout_ms, 100, "timeout_ms");
	ASSERT_EQ(cfg.view_change_timeout_ms, 1000, "view_change_timeout_ms");
	ASSERT_EQ(cfg.checkpoint_interval, 100, "checkpoint_interval");
	ASSERT_TRUE(cfg.fast_path_enabled, "fast path on");
	ASSERT_TRUE(cfg.fast_path_trust_threshold == 0.9, "trust threshold 0.9");
	ASSERT_TRUE(cfg.batching_enabled && cfg.batch_size == 50, "batching, 50");
	ASSERT_EQ(cfg.pipeline_depth, 3, "pipeline depth");
	ASSERT_TRUE(cfg.reputation_threshold == 0.5, "reputation threshold");
	ASSERT_TRUE(cfg.message_compression && cfg.encryption_required, "link layer");
	ASSERT_EQ(cfg.max_message_size, HM_MAX_DATAGRAM, "65536 reads as one whole datagram");
	hm_config_free(&cfg);
	/* the threshold is a fraction */
	expect_error("byzantine_config:\n  performance:\n    fast_path_trust_threshold: 1.5\n" FOUR,
		     3, "byzantine_config.performance.fast_path_trust_threshold",
		     "1.5 is out of range 0..1");
}

/* This branch's keys of the sample, with f = 1: each with its effect. */
HM_TEST(spec_keys_accepted)
{
	struct hm_config cfg;
	char err[1024] = "";

	if (!ASSERT_OK(load_yaml("byzantine_config:\n"
				 "  consensus:\n    algorithm: \"pbft\"\n"
				 "  fault_detection:\n    enabled: true\n    reputation_threshold: 0.5\n"
				 "    anomaly_detection: true\n    statistical_analysis: true\n"
				 "    ebpf_monitoring: true\n"
				 "  security:\n    signature_algorithm: \"ed25519\"\n"
				 "    message_authentication: true\n    certificate_validation: true\n"
				 "    ct_log_verification: true\n"
				 "  network:\n    max_message_size: 65536\n    quic_transport: false\n"
				 "cluster:\n  dataplane: xdp\n  members:\n" M(0) M(1) M(2) M(3),
				 &cfg, err, sizeof(err)), err))
		return;
	ASSERT_STRCONTAINS(cfg.consensus_algorithm, "pbft", "algorithm");
	ASSERT_TRUE(cfg.detection_enabled, "enabled");
	ASSERT_TRUE(cfg.reputation_threshold == 0.5, "reputation threshold");
	ASSERT_TRUE(cfg.anomaly_detection && cfg.statistical_analysis, "analyses");
	ASSERT_TRUE(cfg.ebpf_monitoring, "ebpf monitoring");
	ASSERT_STRCONTAINS(cfg.message_authentication, "siphash-2-4", "true means siphash-2-4");
	ASSERT_TRUE(cfg.certificate_validation && cfg.ct_log_verification, "ct checks");
	ASSERT_TRUE(!cfg.quic_transport, "quic off");
	ASSERT_EQ(cfg.max_message_size, HM_MAX_DATAGRAM, "65536 reads as one whole datagram");
	hm_config_free(&cfg);

	/* the other values, and the defaults they replace */
	if (!ASSERT_OK(load_yaml("byzantine_config:\n  fault_detection:\n    enabled: false\n"
				 "    reputation_threshold: 0.25\n    anomaly_detection: no\n"
				 "    statistical_analysis: off\n    ebpf_monitoring: false\n"
				 "  security:\n    message_authentication: siphash-2-4\n" FOUR,
				 &cfg, err, sizeof(err)), err))
		return;
	ASSERT_TRUE(!cfg.detection_enabled && !cfg.anomaly_detection && !cfg.statistical_analysis,
		    "all off");
	ASSERT_TRUE(cfg.reputation_threshold == 0.25, "threshold 0.25");
	ASSERT_TRUE(!cfg.ebpf_monitoring, "socket mode: no eBPF monitoring");
	hm_config_free(&cfg);
	if (!ASSERT_OK(load_yaml(FOUR, &cfg, err, sizeof(err)), err))
		return;
	ASSERT_TRUE(cfg.detection_enabled && cfg.anomaly_detection && cfg.statistical_analysis,
		    "on by default");
	ASSERT_TRUE(cfg.reputation_threshold == 0.3, "default threshold is the old fixed 0.3");
	ASSERT_TRUE(!cfg.ebpf_monitoring, "socket: off by default");
	hm_config_free(&cfg);
	if (!ASSERT_OK(load_yaml("cluster:\n  dataplane: xdp\n  members:\n" M(0) M(1) M(2) M(3),
				 &cfg, err, sizeof(err)), err))
		return;
	ASSERT_TRUE(cfg.ebpf_monitoring, "xdp: on by default");
	hm_config_free(&cfg);
}

HM_TEST(spec_keys_refused)
{
	expect_error("byzantine_config:\n  consensus:\n    algorithm: raft\n" FOUR, 3,
		     "byzantine_config.consensus.algorithm", "unsupported value \"raft\" (allowed: pbft)");
	expect_error("byzantine_config:\n  fault_detection:\n    reputation_threshold: 1.5\n" FOUR, 3,
		     "byzantine_config.fault_detection.reputation_threshold", "1.5 is out of range 0..1");
	expect_error("byzantine_config:\n  fault_detection:\n    reputation_threshold: nan\n" FOUR, 3,
		     "byzantine_config.fault_detection.reputation_threshold", "expected a number");
	expect_error("byzantine_config:\n  fault_detection:\n    reputation_threshold: 0x1p-1\n" FOUR,
		     3, "byzantine_config.fault_detection.reputation_threshold", "expected a number");
	expect_error("byzantine_config:\n  fault_detection:\n    enabled: maybe\n" FOUR, 3,
		     "byzantine_config.fault_detection.enabled", "boolean");
	expect_error("byzantine_config:\n  fault_detection:\n    ebpf_monitoring: true\n" FOUR, 3,
		     "byzantine_config.fault_detection.ebpf_monitoring",
		     "needs cluster.dataplane: xdp");
	expect_error("byzantine_config:\n  fault_detection:\n    ebpf_monitoring: false\n"
		     "cluster:\n  dataplane: xdp\n  members:\n" M(0) M(1) M(2) M(3), 3,
		     "byzantine_config.fault_detection.ebpf_monitoring",
		     "false is not supported with cluster.dataplane: xdp");
	expect_error("byzantine_config:\n  fault_detection:\n    tracing: true\n" FOUR, 3,
		     "byzantine_config.fault_detection.tracing", "unknown key");
	expect_error("byzantine_config:\n  security:\n    message_authentication: false\n" FOUR, 3,
		     "byzantine_config.security.message_authentication",
		     "false is not supported: every replica message carries a per-link SipHash-2-4 MAC");
	expect_error("byzantine_config:\n  security:\n    certificate_validation: false\n" FOUR, 3,
		     "byzantine_config.security.certificate_validation",
		     "false is not supported: the CT service");
	expect_error("byzantine_config:\n  security:\n    ct_log_verification: no\n" FOUR, 3,
		     "byzantine_config.security.ct_log_verification",
		     "false is not supported: the CT service always verifies each SCT");
	expect_error("byzantine_config:\n  security:\n    ct_log_verification: 1\n" FOUR, 3,
		     "byzantine_config.security.ct_log_verification", "boolean");
}

/* The sample's `quic_transport: true` (why it is refused: docs/configuration.md). */
HM_TEST(quic_transport_refused)
{
	expect_error("byzantine_config:\n  network:\n    quic_transport: true\n" FOUR, 3,
		     "byzantine_config.network.quic_transport",
		     "true is not supported: replica messages stay one UDP datagram each, because "
		     "the XDP program reads and filters them");
	expect_error("byzantine_config:\n  network:\n    quic_transport: true\n" FOUR, 3,
		     "byzantine_config.network.quic_transport", "DNS over QUIC (RFC 9250)");
}

/* detection and fault_detection take the same keys; a setting given in
 * both must agree, wherever it is written. */
HM_TEST(detection_and_fault_detection)
{
	struct hm_config cfg;
	char err[1024] = "";

	if (!ASSERT_OK(load_yaml("byzantine_config:\n"
				 "  detection:\n    judge_interval_ms: 250\n    enabled: false\n"
				 "  fault_detection:\n    block_cooldown_s: 7\n    enabled: no\n"
				 "    reputation_threshold: 0.4\n" FOUR, &cfg, err, sizeof(err)), err))
		return;
	ASSERT_EQ(cfg.judge_interval_ms, 250, "from detection");
	ASSERT_EQ(cfg.block_cooldown_s, 7, "from fault_detection");
	ASSERT_TRUE(!cfg.detection_enabled, "the same setting twice, agreeing");
	ASSERT_TRUE(cfg.reputation_threshold == 0.4, "threshold");
	hm_config_free(&cfg);
	expect_error("byzantine_config:\n  detection:\n    enabled: true\n"
		     "  fault_detection:\n    enabled: false\n" FOUR, 5,
		     "byzantine_config.fault_detection.enabled",
		     "conflicts with byzantine_config.detection.enabled at line 3");
	expect_error("byzantine_config:\n  fault_detection:\n    judge_interval_ms: 300\n"
		     "  detection:\n    judge_interval_ms: 400\n" FOUR, 3,
		     "byzantine_config.fault_detection.judge_interval_ms",
		     "conflicts with byzantine_config.detection.judge_interval_ms at line 5");
	expect_error("byzantine_config:\n  detection:\n    block_cooldown_s: 50\n"
		     "  fault_detection:\n    block_max_cooldown_s: 10\n" FOUR, 5,
		     "byzantine_config.fault_detection.block_max_cooldown_s",
		     "below block_cooldown_s 50");
}
