/* SPDX-License-Identifier: MIT */
/*
 * Configuration loader: YAML (libyaml's document API) in, struct hm_config out.
 *
 * The file is composed into a node tree first and then walked in schema order
 * rather than document order, so a check that spans sections (n >= 3f+1, a
 * member's default port) can rely on the sections it needs being read already.
 * Every refusal names the file, the line and the dotted key path:
 *
 *   cluster.yaml:12: byzantine_config.consensus.timeout_ms: expected an unsigned integer, got "abc"
 *
 * It reads the replica and client key files it names.  The ct: section's
 * PEM files it only parses and stores, with their lines: the CT service reads
 * them (user/service/ct/ct_service.c, hm_ct_config_check), so this module
 * depends on nothing above common/.
 *
 * docs/configuration.md is the reference for every key; keep the two in step.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <yaml.h>

#include "common/config.h"

/* Configurations are small; the cap only stops a wrong path (a disk image,
 * /dev/zero) from being read into memory. */
#define CONFIG_MAX_BYTES (4u << 20)

#define HM_MAX_TIMEOUT_MS 600000u

/* network.max_message_size accepts up to 2^16 (the specification's sample
 * writes 65536) and stores at most HM_MAX_DATAGRAM: a message is one UDP
 * datagram, and IPv4 carries at most 65507 bytes of payload in one. */
#define HM_MAX_UDP_MESSAGE 65536u

/* Deepest nesting of mappings and sequences accepted.  The schema needs 4
 * (byzantine_config.dns.upstreams[i].addresses); the bound is checked on the
 * parser's events before the document is composed, because libyaml's
 * scanner and composer take time quadratic in the depth (100k levels: 24 s). */
#define CONFIG_MAX_DEPTH 64

struct ctx {
	const char *file;          /* as given, for messages */
	char dir[HM_PATH_MAX];     /* "" or the file's directory with a trailing '/' */
	yaml_document_t *doc;
	struct hm_config *cfg;
	char *err;
	size_t errlen;
	yaml_node_t *window_at;    /* what set watermark_window, if the file did */
	yaml_node_t *pipeline_at;  /* pipeline_depth, if the file set it */
	yaml_node_t *ebpf_at;      /* fault_detection.ebpf_monitoring, if set */
	yaml_node_t *cooldown_at;  /* block_max_cooldown_s, if set */
};

/* ---- error reporting ---------------------------------------------------- */

static size_t line_of(const yaml_node_t *n)
{
	return n ? n->start_mark.line + 1 : 1; /* libyaml counts from 0 */
}

/* "PATH:LINE: message" */
__attribute__((format(printf, 3, 4)))
static int fail_line(struct ctx *c, size_t line, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c->errlen)
		snprintf(c->err, c->errlen, "%s:%zu: %s", c->file, line, msg);
	return -1;
}

/* "PATH:LINE: parent.key: message", at the line where node `at` starts. */
__attribute__((format(printf, 5, 6)))
static int fail(struct ctx *c, const yaml_node_t *at, const char *parent, const char *key,
		const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (!*parent && !key)
		return fail_line(c, line_of(at), "%s", msg);
	return fail_line(c, line_of(at), "%s%s%s: %s", parent, *parent && key ? "." : "",
			 key ? key : "", msg);
}

/* How a node reads in a message: a mapping, a sequence, or "the text". */
static const char *describe(const yaml_node_t *n, char *buf, size_t len)
{
	if (n->type == YAML_MAPPING_NODE)
		return "a mapping";
	if (n->type == YAML_SEQUENCE_NODE)
		return "a sequence";
	snprintf(buf, len, "\"%.60s%s\"", (const char *)n->data.scalar.value,
		 n->data.scalar.length > 60 ? "..." : "");
	return buf;
}

static int fail_type(struct ctx *c, const yaml_node_t *n, const char *parent, const char *key,
		     const char *expected)
{
	char buf[80];

	return fail(c, n, parent, key, "expected %s, got %s", expected, describe(n, buf, sizeof(buf)));
}

/* ---- node access -------------------------------------------------------- */

static yaml_node_t *node_at(struct ctx *c, int index)
{
	return yaml_document_get_node(c->doc, index);
}

/* An empty value (`clients:` with nothing after it) stands for an empty
 * section, so a commented-out body does not turn into a type error. */
static bool is_empty(const yaml_node_t *n)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	s = (const char *)n->data.scalar.value;
	return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

/* The value under `key` in a mapping, or NULL.  Keys are unique by then:
 * check_mapping() has refused duplicates. */
static yaml_node_t *lookup(struct ctx *c, yaml_node_t *map, const char *key)
{
	if (!map || map->type != YAML_MAPPING_NODE)
		return NULL;
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_at(c, p->key);

		if (k->type == YAML_SCALAR_NODE && !strcmp((const char *)k->data.scalar.value, key))
			return node_at(c, p->value);
	}
	return NULL;
}

static bool in_list(const char *s, const char *const list[])
{
	for (; *list; list++)
		if (!strcmp(s, *list))
			return true;
	return false;
}

static void join_list(const char *const list[], char *buf, size_t len)
{
	size_t off = 0;

	buf[0] = '\0';
	for (; *list && off < len; list++)
		off += snprintf(buf + off, len - off, "%s%s", off ? ", " : "", *list);
}

/* A mapping whose keys are all in `keys`, each once (an empty value passes as
 * an empty mapping). */
static int check_mapping(struct ctx *c, yaml_node_t *map, const char *path, const char *const keys[])
{
	char allowed[512];

	if (is_empty(map))
		return 0;
	if (map->type != YAML_MAPPING_NODE)
		return fail_type(c, map, path, NULL, "a mapping");
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_at(c, p->key);
		const char *name;

		if (k->type != YAML_SCALAR_NODE)
			return fail_type(c, k, path, NULL, "a plain key");
		name = (const char *)k->data.scalar.value;
		/* An embedded NUL would otherwise let "timeout_ms\0x" pass as timeout_ms. */
		if (strlen(name) != k->data.scalar.length || !in_list(name, keys)) {
			join_list(keys, allowed, sizeof(allowed));
			return fail(c, k, path, name, "unknown key (allowed: %s)", allowed);
		}
		for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p; q++) {
			yaml_node_t *prev = node_at(c, q->key);

			if (!strcmp((const char *)prev->data.scalar.value, name))
				return fail(c, k, path, name, "duplicate key (first at line %zu)",
					    line_of(prev));
		}
	}
	return 0;
}

/* Number of items of a sequence (an empty value counts as none), or -1. */
static int check_sequence(struct ctx *c, yaml_node_t *seq, const char *parent, const char *key)
{
	if (is_empty(seq))
		return 0;
	if (seq->type != YAML_SEQUENCE_NODE)
		return fail_type(c, seq, parent, key, "a sequence");
	return (int)(seq->data.sequence.items.top - seq->data.sequence.items.start);
}

static yaml_node_t *item(struct ctx *c, yaml_node_t *seq, int i)
{
	return node_at(c, seq->data.sequence.items.start[i]);
}

/* The text of a scalar, or NULL after reporting the wrong type. */
static const char *scalar(struct ctx *c, yaml_node_t *n, const char *parent, const char *key,
			  const char *expected)
{
	const char *s;

	if (n->type != YAML_SCALAR_NODE) {
		fail_type(c, n, parent, key, expected);
		return NULL;
	}
	s = (const char *)n->data.scalar.value;
	if (strlen(s) != n->data.scalar.length) {
		fail(c, n, parent, key, "contains a NUL character");
		return NULL;
	}
	return s;
}

static int require(struct ctx *c, yaml_node_t *map, const char *path, const char *key)
{
	return lookup(c, map, key) ? 0 : fail(c, map, path, key, "required key is missing");
}

/* ---- typed values: each returns -1 on error, 0 when absent, 1 when set --- */

/* Plain decimal only: no sign, no leading zero (YAML 1.1 reads 010 as octal),
 * no 0x, no exponent, and it must fit in 32 bits. */
static int parse_u32(const char *s, uint32_t *out)
{
	uint64_t v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return -1;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -1;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > UINT32_MAX)
			return -2;
	}
	*out = (uint32_t)v;
	return 0;
}

static int opt_uint(struct ctx *c, yaml_node_t *map, const char *path, const char *key,
		    uint32_t min, uint32_t max, uint32_t *dst)
{
	yaml_node_t *v = lookup(c, map, key);
	const char *s;
	uint32_t val;
	int rc;

	if (!v)
		return 0;
	if (!(s = scalar(c, v, path, key, "an unsigned integer")))
		return -1;
	rc = parse_u32(s, &val);
	if (rc == -2)
		return fail(c, v, path, key, "%s does not fit in 32 bits (at most %u)", s, UINT32_MAX);
	if (rc < 0)
		return fail_type(c, v, path, key, "an unsigned integer");
	if (val < min || val > max)
		return fail(c, v, path, key, "%u is out of range %u..%u", val, min, max);
	*dst = val;
	return 1;
}

static int opt_port(struct ctx *c, yaml_node_t *map, const char *path, const char *key, uint16_t *dst)
{
	uint32_t v;
	int rc = opt_uint(c, map, path, key, 1, 65535, &v);

	if (rc == 1)
		*dst = (uint16_t)v;
	return rc;
}

static int opt_bool(struct ctx *c, yaml_node_t *map, const char *path, const char *key, bool *dst)
{
	static const char *const yes[] = { "true", "yes", "on" }, *const no[] = { "false", "no", "off" };
	yaml_node_t *v = lookup(c, map, key);
	const char *s;

	if (!v)
		return 0;
	if (!(s = scalar(c, v, path, key, "a boolean")))
		return -1;
	for (int i = 0; i < 3; i++) {
		if (!strcasecmp(s, yes[i]) || !strcasecmp(s, no[i])) {
			*dst = !strcasecmp(s, yes[i]);
			return 1;
		}
	}
	return fail_type(c, v, path, key, "a boolean (true/false, yes/no, on/off)");
}

static int opt_string(struct ctx *c, yaml_node_t *map, const char *path, const char *key,
		      char *dst, size_t size)
{
	yaml_node_t *v = lookup(c, map, key);
	const char *s;

	if (!v)
		return 0;
	if (!(s = scalar(c, v, path, key, "a string")))
		return -1;
	if (strlen(s) >= size)
		return fail(c, v, path, key, "too long: at most %zu characters", size - 1);
	strcpy(dst, s);
	return 1;
}

/* One of a fixed set of words; *idx receives its position in `choices`. */
static int opt_choice(struct ctx *c, yaml_node_t *map, const char *path, const char *key,
		      const char *const choices[], int *idx)
{
	yaml_node_t *v = lookup(c, map, key);
	char allowed[256], buf[80];
	const char *s;

	if (!v)
		return 0;
	if (!(s = scalar(c, v, path, key, "a string")))
		return -1;
	for (int i = 0; choices[i]; i++) {
		if (!strcmp(s, choices[i])) {
			*idx = i;
			return 1;
		}
	}
	join_list(choices, allowed, sizeof(allowed));
	return fail(c, v, path, key, "unsupported value %s (allowed: %s)",
		    describe(v, buf, sizeof(buf)), allowed);
}

/* A decimal number in [min, max] (reputation scores are in [0, 1]). */
static int opt_fraction(struct ctx *c, yaml_node_t *map, const char *path, const char *key,
			double min, double max, double *dst)
{
	yaml_node_t *v = lookup(c, map, key);
	const char *s;
	char *end;
	double val;

	if (!v)
		return 0;
	if (!(s = scalar(c, v, path, key, "a number")))
		return -1;
	errno = 0;
	val = strtod(s, &end);
	/* strtod also reads "nan", "inf" and hex floats: none of them is a score */
	if (!*s || *end || errno || isspace((unsigned char)*s) || strpbrk(s, "xXnNiI"))
		return fail_type(c, v, path, key, "a number");
	if (val < min || val > max)
		return fail(c, v, path, key, "%s is out of range %g..%g", s, min, max);
	*dst = val;
	return 1;
}

/* A boolean that only one value of makes sense for: the other is refused
 * with the reason (the setting is there so a file states what it relies on). */
static int opt_must_be(struct ctx *c, yaml_node_t *map, const char *path, const char *key,
		       bool only, const char *why, bool *dst)
{
	bool val = only;
	int rc = opt_bool(c, map, path, key, &val);

	if (rc == 1 && val != only)
		return fail(c, lookup(c, map, key), path, key, "%s is not supported: %s",
			    only ? "false" : "true", why);
	*dst = only;
	return rc;
}

/* A path from the file, relative to the config file's directory unless
 * absolute, so a cluster directory can be moved or run from anywhere.  An
 * empty value is refused unless allow_empty (then it stays ""). */
static int opt_path(struct ctx *c, yaml_node_t *map, const char *path, const char *key,
		    bool allow_empty, char out[HM_PATH_MAX])
{
	char given[HM_PATH_MAX];
	int rc = opt_string(c, map, path, key, given, sizeof(given));

	if (rc <= 0)
		return rc;
	if (!given[0]) {
		out[0] = '\0';
		return allow_empty ? 1 : fail(c, lookup(c, map, key), path, key, "expected a path, got \"\"");
	}
	if (snprintf(out, HM_PATH_MAX, "%s%s", given[0] == '/' ? "" : c->dir, given) >= HM_PATH_MAX)
		return fail(c, lookup(c, map, key), path, key, "path too long (at most %d bytes)",
			    HM_PATH_MAX - 1);
	return 1;
}

static bool all_hex(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (!isxdigit((unsigned char)*s))
			return false;
	return true;
}

/* public_key: a value made only of hex digits is an inline key (and must be
 * exactly 64 of them); anything else is a key file path. */
static int req_pubkey(struct ctx *c, yaml_node_t *map, const char *path,
		      uint8_t out[HM_PUBKEY_LEN], char file[HM_PATH_MAX])
{
	yaml_node_t *v = lookup(c, map, "public_key");
	char why[HM_PATH_MAX + 256];
	const char *s;

	if (require(c, map, path, "public_key"))
		return -1;
	if (!(s = scalar(c, v, path, "public_key", "64 hex digits or a key file path")))
		return -1;
	if (all_hex(s)) {
		if (hm_parse_hex(s, out, HM_PUBKEY_LEN))
			return fail(c, v, path, "public_key",
				    "inline key must be exactly %d hex digits, got %zu", 2 * HM_PUBKEY_LEN,
				    strlen(s));
		file[0] = '\0';
		return 0;
	}
	if (opt_path(c, map, path, "public_key", false, file) < 0)
		return -1;
	if (hm_read_hex_file(file, out, HM_PUBKEY_LEN, why, sizeof(why)))
		return fail(c, v, path, "public_key", "%s", why);
	return 0;
}

/* ---- sections ----------------------------------------------------------- */

static int parse_consensus(struct ctx *c, yaml_node_t *map)
{
	static const char *const keys[] = { "algorithm", "timeout_ms", "max_faulty_nodes",
					    "view_change_timeout_ms", "checkpoint_interval",
					    "watermark_window", NULL };
	static const char *const algorithms[] = { "pbft", NULL };
	const char *path = "byzantine_config.consensus";
	struct hm_config *cfg = c->cfg;
	int window, idx;

	/* PBFT is the protocol the core, the XDP vote counter and the proofs
	 * are written for; the key exists so a file says so. */
	if (check_mapping(c, map, path, keys) ||
	    opt_choice(c, map, path, "algorithm", algorithms, &idx) < 0 ||
	    opt_uint(c, map, path, "timeout_ms", 1, HM_MAX_TIMEOUT_MS, &cfg->timeout_ms) < 0 ||
	    opt_uint(c, map, path, "max_faulty_nodes", 0, HM_MAX_FAULTY, &cfg->max_faulty_nodes) < 0 ||
	    opt_uint(c, map, path, "view_change_timeout_ms", 1, HM_MAX_TIMEOUT_MS,
		     &cfg->view_change_timeout_ms) < 0 ||
	    opt_uint(c, map, path, "checkpoint_interval", 1, 100000, &cfg->checkpoint_interval) < 0 ||
	    (window = opt_uint(c, map, path, "watermark_window", 1, 1000000, &cfg->watermark_window)) < 0)
		return -1;
	if (!window) {
		/* The window must hold two checkpoints' worth of sequence numbers. */
		cfg->watermark_window = 2 * cfg->checkpoint_interval;
		c->window_at = lookup(c, map, "checkpoint_interval");
		return 0;
	}
	c->window_at = lookup(c, map, "watermark_window");
	if (cfg->watermark_window < cfg->checkpoint_interval)
		return fail(c, c->window_at, path, "watermark_window",
			    "%u is below checkpoint_interval %u", cfg->watermark_window,
			    cfg->checkpoint_interval);
	/* A replica keeps the checkpoints inside its window in a fixed table
	 * (HM_MAX_LIVE_CHECKPOINTS): more would go unrecorded. */
	if (cfg->watermark_window / cfg->checkpoint_interval + 1 > HM_MAX_LIVE_CHECKPOINTS)
		return fail(c, c->window_at, path, "watermark_window",
			    "%u holds more than %u checkpoints of interval %u", cfg->watermark_window,
			    HM_MAX_LIVE_CHECKPOINTS - 1, cfg->checkpoint_interval);
	return 0;
}

static int parse_performance(struct ctx *c, yaml_node_t *map)
{
	static const char *const keys[] = { "batching_enabled", "batch_size", "batch_timeout_ms",
					    "pipeline_depth", "fast_path_enabled",
					    "fast_path_timeout_ms", "fast_path_trust_threshold",
					    NULL };
	const char *path = "byzantine_config.performance";
	struct hm_config *cfg = c->cfg;

	if (check_mapping(c, map, path, keys) ||
	    opt_bool(c, map, path, "batching_enabled", &cfg->batching_enabled) < 0 ||
	    opt_uint(c, map, path, "batch_size", 1, 1024, &cfg->batch_size) < 0 ||
	    opt_uint(c, map, path, "batch_timeout_ms", 0, 10000, &cfg->batch_timeout_ms) < 0 ||
	    opt_uint(c, map, path, "pipeline_depth", 1, 1000000, &cfg->pipeline_depth) < 0 ||
	    opt_bool(c, map, path, "fast_path_enabled", &cfg->fast_path_enabled) < 0 ||
	    opt_uint(c, map, path, "fast_path_timeout_ms", 1, HM_MAX_TIMEOUT_MS,
		     &cfg->fast_path_timeout_ms) < 0 ||
	    opt_fraction(c, map, path, "fast_path_trust_threshold", 0, 1,
			 &cfg->fast_path_trust_threshold) < 0)
		return -1;
	c->pipeline_at = lookup(c, map, "pipeline_depth");
	return 0;
}

/* message_authentication: the MAC's name, or `true` for the same thing. */
static int parse_mac_choice(struct ctx *c, yaml_node_t *map, const char *path)
{
	static const char *const macs[] = { "siphash-2-4", NULL };
	yaml_node_t *v = lookup(c, map, "message_authentication");
	bool on;
	int idx;

	if (!v || v->type != YAML_SCALAR_NODE || opt_bool(c, map, path, "message_authentication", &on) != 1)
		return opt_choice(c, map, path, "message_authentication", macs, &idx) < 0 ? -1 : 0;
	if (!on)
		return fail(c, v, path, "message_authentication",
			    "false is not supported: every replica message carries a per-link "
			    "SipHash-2-4 MAC, and the XDP pre-filter drops a message whose MAC does "
			    "not verify before anything else (allowed: true, \"siphash-2-4\")");
	return 0;
}

static int parse_security(struct ctx *c, yaml_node_t *map)
{
	static const char *const keys[] = { "signature_algorithm", "message_authentication",
					    "certificate_validation", "ct_log_verification",
					    "signed_requests", NULL };
	static const char *const sigs[] = { "ed25519", NULL };
	const char *path = "byzantine_config.security";
	struct hm_config *cfg = c->cfg;
	int idx;

	/* Only one of each exists; the keys are there so a file states what it
	 * relies on and a future algorithm is refused by older binaries. */
	if (check_mapping(c, map, path, keys) ||
	    opt_choice(c, map, path, "signature_algorithm", sigs, &idx) < 0 ||
	    parse_mac_choice(c, map, path) < 0 ||
	    opt_must_be(c, map, path, "certificate_validation", true,
			"the CT service (ct: section) always checks a submitted chain up to its "
			"trust_store; a verdict agreed without that check would certify nothing",
			&cfg->certificate_validation) < 0 ||
	    opt_must_be(c, map, path, "ct_log_verification", true,
			"the CT service always verifies each SCT's signature with the key of "
			"a log in ct.logs; an unverified SCT proves nothing was logged",
			&cfg->ct_log_verification) < 0 ||
	    opt_bool(c, map, path, "signed_requests", &cfg->signed_requests) < 0)
		return -1;
	return 0;
}

static int parse_network(struct ctx *c, yaml_node_t *map)
{
	static const char *const keys[] = { "port", "max_message_size", "interface",
					    "rate_limit_pps", "quic_transport",
					    "encryption_required", "message_compression", NULL };
	const char *path = "byzantine_config.network";
	struct hm_config *cfg = c->cfg;

	if (check_mapping(c, map, path, keys) ||
	    opt_port(c, map, path, "port", &cfg->port) < 0 ||
	    opt_uint(c, map, path, "max_message_size", HM_HDR_LEN + 64, HM_MAX_UDP_MESSAGE,
		     &cfg->max_message_size) < 0 ||
	    opt_string(c, map, path, "interface", cfg->interface, sizeof(cfg->interface)) < 0 ||
	    opt_uint(c, map, path, "rate_limit_pps", 0, 100000000, &cfg->rate_limit_pps) < 0 ||
	    opt_must_be(c, map, path, "quic_transport", false,
			"replica messages stay one UDP datagram each, because the XDP program "
			"reads and filters them (MAC, window, vote counting) in the kernel, which "
			"it could not do inside encrypted QUIC streams; DNS over QUIC (RFC 9250) "
			"for clients is not built (DNS is served over UDP, TCP and TLS: "
			"byzantine_config.dns)", &cfg->quic_transport) < 0 ||
	    /* the link layer (common/link_crypt.h); both off by default */
	    opt_bool(c, map, path, "encryption_required", &cfg->encryption_required) < 0 ||
	    opt_bool(c, map, path, "message_compression", &cfg->message_compression) < 0)
		return -1;
	/* A message is one datagram: 65536 (2^16, as written in the
	 * specification's sample) is read as "the largest a datagram carries". */
	if (cfg->max_message_size > HM_MAX_DATAGRAM)
		cfg->max_message_size = HM_MAX_DATAGRAM;
	return 0;
}

/* byzantine_config.detection and byzantine_config.fault_detection take the
 * same keys (fault_detection is the specification's name): one setting of
 * either into cfg. */
static const char *const detection_keys[] = {
	"judge_interval_ms", "block_cooldown_s", "block_max_cooldown_s", "metrics_address",
	"metrics_port", "enabled", "reputation_threshold", "anomaly_detection",
	"statistical_analysis", "ebpf_monitoring", NULL
};

static int detection_key(struct ctx *c, yaml_node_t *map, const char *path, const char *key,
			 struct hm_config *cfg)
{
	uint32_t port = cfg->metrics_port;
	int rc;

	if (!strcmp(key, "judge_interval_ms"))
		return opt_uint(c, map, path, key, 100, 60000, &cfg->judge_interval_ms);
	if (!strcmp(key, "block_cooldown_s"))
		return opt_uint(c, map, path, key, 1, 86400, &cfg->block_cooldown_s);
	if (!strcmp(key, "block_max_cooldown_s"))
		return opt_uint(c, map, path, key, 1, 604800, &cfg->block_max_cooldown_s);
	if (!strcmp(key, "metrics_address"))
		return opt_string(c, map, path, key, cfg->metrics_address,
				  sizeof(cfg->metrics_address));
	if (!strcmp(key, "metrics_port")) {
		rc = opt_uint(c, map, path, key, 0, 65535, &port);
		cfg->metrics_port = (uint16_t)port;
		return rc;
	}
	if (!strcmp(key, "enabled"))
		return opt_bool(c, map, path, key, &cfg->detection_enabled);
	if (!strcmp(key, "reputation_threshold"))
		return opt_fraction(c, map, path, key, 0, 1, &cfg->reputation_threshold);
	if (!strcmp(key, "anomaly_detection"))
		return opt_bool(c, map, path, key, &cfg->anomaly_detection);
	if (!strcmp(key, "statistical_analysis"))
		return opt_bool(c, map, path, key, &cfg->statistical_analysis);
	rc = opt_bool(c, map, path, key, &cfg->ebpf_monitoring); /* ebpf_monitoring */
	if (rc == 1)
		c->ebpf_at = lookup(c, map, key);
	return rc;
}

static int parse_detection(struct ctx *c, yaml_node_t *map, const char *path)
{
	if (check_mapping(c, map, path, detection_keys))
		return -1;
	for (int k = 0; detection_keys[k]; k++)
		if (detection_key(c, map, path, detection_keys[k], c->cfg) < 0)
			return -1;
	if (lookup(c, map, "block_max_cooldown_s"))
		c->cooldown_at = lookup(c, map, "block_max_cooldown_s");
	return 0;
}

/* A setting in both blocks must say the same thing: each is read into a
 * copy of the configuration and the copies compared. */
static int check_detection_conflicts(struct ctx *c, yaml_node_t *old, yaml_node_t *spec)
{
	struct hm_config *a = malloc(sizeof(*a)), *b = malloc(sizeof(*b));
	int rc = 0;

	if (!a || !b) {
		free(a);
		free(b);
		return fail(c, spec, "byzantine_config", "fault_detection", "out of memory");
	}
	for (int k = 0; !rc && detection_keys[k]; k++) {
		const char *key = detection_keys[k];
		yaml_node_t *va = lookup(c, old, key), *vb = lookup(c, spec, key);

		if (!va || !vb)
			continue;
		memcpy(a, c->cfg, sizeof(*a));
		memcpy(b, c->cfg, sizeof(*b));
		detection_key(c, old, "byzantine_config.detection", key, a);
		detection_key(c, spec, "byzantine_config.fault_detection", key, b);
		if (memcmp(a, b, sizeof(*a)))
			rc = fail(c, vb, "byzantine_config.fault_detection", key,
				  "conflicts with byzantine_config.detection.%s at line %zu: "
				  "give the setting once", key, line_of(va));
	}
	free(a);
	free(b);
	return rc;
}

static int parse_detection_blocks(struct ctx *c, yaml_node_t *old, yaml_node_t *spec)
{
	struct hm_config *cfg = c->cfg;

	if ((old && parse_detection(c, old, "byzantine_config.detection")) ||
	    (spec && parse_detection(c, spec, "byzantine_config.fault_detection")) ||
	    (old && spec && !is_empty(old) && !is_empty(spec) &&
	     check_detection_conflicts(c, old, spec)))
		return -1;
	if (cfg->block_max_cooldown_s < cfg->block_cooldown_s)
		return fail(c, c->cooldown_at ? c->cooldown_at : (old ? old : spec),
			    old && lookup(c, old, "block_max_cooldown_s") ? "byzantine_config.detection"
			    : spec && lookup(c, spec, "block_max_cooldown_s")
			    ? "byzantine_config.fault_detection" : "byzantine_config.detection",
			    "block_max_cooldown_s", "%u is below block_cooldown_s %u",
			    cfg->block_max_cooldown_s, cfg->block_cooldown_s);
	return 0;
}

/* ebpf_monitoring states which counters the detector reads: the kernel's
 * per-node statistics exist in xdp mode only, and there they carry what
 * userspace never sees (votes, XDP drops), so neither other pairing can be
 * honoured.  Unset, it follows the dataplane. */
static int check_ebpf_monitoring(struct ctx *c)
{
	struct hm_config *cfg = c->cfg;
	bool xdp = cfg->dataplane == HM_DATAPLANE_XDP;

	if (!c->ebpf_at) {
		cfg->ebpf_monitoring = xdp;
		return 0;
	}
	if (cfg->ebpf_monitoring && !xdp)
		return fail(c, c->ebpf_at, "byzantine_config.fault_detection", "ebpf_monitoring",
			    "true needs cluster.dataplane: xdp (in socket mode no eBPF program "
			    "runs, so there are no kernel per-node statistics to read)");
	if (!cfg->ebpf_monitoring && xdp)
		return fail(c, c->ebpf_at, "byzantine_config.fault_detection", "ebpf_monitoring",
			    "false is not supported with cluster.dataplane: xdp: votes and XDP "
			    "drops are counted only in the kernel's node_stats, so the detector "
			    "would miss the messages XDP handles and the proofs it drops");
	return 0;
}

static int parse_byzantine(struct ctx *c, yaml_node_t *map)
{
	static const char *const keys[] = { "consensus", "performance", "security", "network",
					    "detection", "fault_detection", "dns", NULL };
	const char *path = "byzantine_config";
	struct hm_config *cfg = c->cfg;
	yaml_node_t *v;

	if (check_mapping(c, map, path, keys))
		return -1;
	if (((v = lookup(c, map, "consensus")) && parse_consensus(c, v)) ||
	    ((v = lookup(c, map, "performance")) && parse_performance(c, v)) ||
	    ((v = lookup(c, map, "security")) && parse_security(c, v)) ||
	    ((v = lookup(c, map, "network")) && parse_network(c, v)) ||
	    parse_detection_blocks(c, lookup(c, map, "detection"), lookup(c, map, "fault_detection")))
		return -1;
	/* Checked here, not in performance, because either side may be a
	 * default: blame whichever the file actually set. */
	if (cfg->pipeline_depth > cfg->watermark_window) {
		if (c->pipeline_at)
			return fail(c, c->pipeline_at, "byzantine_config.performance", "pipeline_depth",
				    "%u exceeds watermark_window %u", cfg->pipeline_depth,
				    cfg->watermark_window);
		return fail(c, c->window_at, "byzantine_config.consensus", "watermark_window",
			    "%u is below pipeline_depth %u (the default)", cfg->watermark_window,
			    cfg->pipeline_depth);
	}
	if (!cfg->batching_enabled)
		cfg->batch_size = 1;
	return 0;
}

static void fill_addr(struct hm_member *m)
{
	struct sockaddr_in *sin = (struct sockaddr_in *)&m->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&m->addr;

	memset(&m->addr, 0, sizeof(m->addr));
	if (inet_pton(AF_INET, m->address, &sin->sin_addr) == 1) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(m->port);
		m->addr_len = sizeof(*sin);
	} else {
		inet_pton(AF_INET6, m->address, &sin6->sin6_addr); /* checked by the caller */
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(m->port);
		m->addr_len = sizeof(*sin6);
	}
}

static bool is_ip_literal(const char *s)
{
	struct in6_addr a;

	return inet_pton(AF_INET, s, &a) == 1 || inet_pton(AF_INET6, s, &a) == 1;
}

/* One cluster.members[i]; *id_at receives the id's node for later messages. */
static int parse_member(struct ctx *c, yaml_node_t *map, int i, struct hm_member *m, yaml_node_t **id_at)
{
	static const char *const keys[] = { "id", "address", "port", "public_key", NULL };
	char path[64];

	snprintf(path, sizeof(path), "cluster.members[%d]", i);
	memset(m, 0, sizeof(*m));
	m->port = c->cfg->port;
	if (check_mapping(c, map, path, keys) ||
	    require(c, map, path, "id") || require(c, map, path, "address") ||
	    opt_uint(c, map, path, "id", 0, UINT32_MAX, &m->id) < 0 ||
	    opt_string(c, map, path, "address", m->address, sizeof(m->address)) < 0 ||
	    opt_port(c, map, path, "port", &m->port) < 0)
		return -1;
	*id_at = lookup(c, map, "id");
	/* Literals only: a replica's identity must not depend on DNS. */
	if (!is_ip_literal(m->address))
		return fail(c, lookup(c, map, "address"), path, "address",
			    "\"%s\" is not an IPv4 or IPv6 address (host names are not resolved)",
			    m->address);
	fill_addr(m);
	return req_pubkey(c, map, path, m->public_key, m->public_key_path);
}

static bool has_id(const struct hm_member *m, int n, uint32_t id)
{
	for (int i = 0; i < n; i++)
		if (m[i].id == id)
			return true;
	return false;
}

/* Ids 0..n-1, each once: with duplicates refused as they come, an id >= n
 * means some id below n is missing, and the message names both. */
static int check_member_ids(struct ctx *c, const struct hm_member *m, yaml_node_t *const id_at[], int n)
{
	uint32_t missing = 0;
	char path[64];

	while (has_id(m, n, missing))
		missing++;
	for (int i = 0; i < n; i++) {
		if (m[i].id < (uint32_t)n)
			continue;
		snprintf(path, sizeof(path), "cluster.members[%d]", i);
		return fail(c, id_at[i], path, "id",
			    "id %u is out of range: %d members must have ids 0..%d, and id %u is missing",
			    m[i].id, n, n - 1, missing);
	}
	return 0;
}

static int fail_dup_member(struct ctx *c, yaml_node_t *at, int i, int first, uint32_t id)
{
	char path[64];

	snprintf(path, sizeof(path), "cluster.members[%d]", i);
	return fail(c, at, path, "id", "duplicate id %u (cluster.members[%d] has it too)", id, first);
}

static int parse_members(struct ctx *c, yaml_node_t *key, yaml_node_t *seq)
{
	struct hm_config *cfg = c->cfg;
	struct hm_member tmp[HM_MAX_REPLICAS];
	yaml_node_t *id_at[HM_MAX_REPLICAS];
	uint32_t f = cfg->max_faulty_nodes;
	int n = check_sequence(c, seq, "cluster", "members");

	if (n < 0)
		return -1;
	if (n > HM_MAX_REPLICAS)
		return fail(c, key, "cluster", "members", "%d members, at most %d are supported", n,
			    HM_MAX_REPLICAS);
	if ((uint32_t)n < 3 * f + 1)
		return fail(c, key, "cluster", "members",
			    "%d members cannot tolerate f=%u: need n >= 3f+1 = %u", n, f, 3 * f + 1);
	for (int i = 0; i < n; i++) {
		if (parse_member(c, item(c, seq, i), i, &tmp[i], &id_at[i]))
			return -1;
		for (int j = 0; j < i; j++)
			if (tmp[j].id == tmp[i].id)
				return fail_dup_member(c, id_at[i], i, j, tmp[i].id);
	}
	if (check_member_ids(c, tmp, id_at, n))
		return -1;
	/* Quorums are 2f+1: two of them share a correct replica only when
	 * n = 3f+1 (with n = 3f+2, two quorums may share a single, faulty one). */
	if ((uint32_t)n > 3 * f + 1)
		return fail(c, key, "cluster", "members",
			    "%d members with f=%u: quorums of 2f+1 = %u would not intersect in a correct "
			    "replica; use n = 3f+1 = %u members, or raise max_faulty_nodes", n, f,
			    2 * f + 1, 3 * f + 1);
	for (int i = 0; i < n; i++)
		cfg->members[tmp[i].id] = tmp[i];
	cfg->n_members = (uint32_t)n;
	return 0;
}

static int parse_client(struct ctx *c, yaml_node_t *map, int i, struct hm_client_entry *e)
{
	static const char *const keys[] = { "id", "public_key", NULL };
	const struct hm_config *cfg = c->cfg;
	char path[64];

	snprintf(path, sizeof(path), "cluster.clients[%d]", i);
	if (check_mapping(c, map, path, keys) || require(c, map, path, "id") ||
	    opt_uint(c, map, path, "id", 0, UINT32_MAX, &e->id) < 0)
		return -1;
	/* Replicas and clients share the header's sender field. */
	if (e->id < cfg->n_members)
		return fail(c, lookup(c, map, "id"), path, "id",
			    "id %u is a replica id (cluster.members uses 0..%u)", e->id, cfg->n_members - 1);
	for (int j = 0; j < i; j++)
		if (cfg->clients[j].id == e->id)
			return fail(c, lookup(c, map, "id"), path, "id",
				    "duplicate id %u (cluster.clients[%d] has it too)", e->id, j);
	return req_pubkey(c, map, path, e->public_key, e->public_key_path);
}

static int cmp_client(const void *a, const void *b)
{
	uint32_t x = ((const struct hm_client_entry *)a)->id, y = ((const struct hm_client_entry *)b)->id;

	return x < y ? -1 : x > y;
}

/* Needs the members parsed: client ids must stay clear of replica ids. */
static int parse_clients(struct ctx *c, yaml_node_t *key, yaml_node_t *seq)
{
	struct hm_config *cfg = c->cfg;
	int n = check_sequence(c, seq, "cluster", "clients");

	if (n <= 0)
		return n;
	if (n > HM_MAX_CLIENTS)
		return fail(c, key, "cluster", "clients", "%d clients, at most %d are supported", n,
			    HM_MAX_CLIENTS);
	cfg->clients = calloc((size_t)n, sizeof(*cfg->clients));
	if (!cfg->clients)
		return fail(c, key, "cluster", "clients", "out of memory");
	for (int i = 0; i < n; i++) {
		if (parse_client(c, item(c, seq, i), i, &cfg->clients[i]))
			return -1;
		cfg->n_clients++;
	}
	/* Sorted so hm_config_client() can bsearch on the receive path. */
	qsort(cfg->clients, cfg->n_clients, sizeof(*cfg->clients), cmp_client);
	return 0;
}

/* Look up a key's node (not its value), for messages about the key itself. */
static yaml_node_t *key_node(struct ctx *c, yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_at(c, p->key);

		if (!strcmp((const char *)k->data.scalar.value, key))
			return k;
	}
	return NULL;
}

static int parse_cluster(struct ctx *c, yaml_node_t *map)
{
	static const char *const keys[] = { "dataplane", "members", "clients", NULL };
	static const char *const planes[] = { "socket", "xdp", NULL };
	yaml_node_t *members, *clients;
	int plane = 0;

	if (check_mapping(c, map, "cluster", keys) ||
	    require(c, map, "cluster", "members"))
		return -1;
	if (opt_choice(c, map, "cluster", "dataplane", planes, &plane) < 0)
		return -1;
	if (lookup(c, map, "dataplane"))
		c->cfg->dataplane = plane ? HM_DATAPLANE_XDP : HM_DATAPLANE_SOCKET;
	members = lookup(c, map, "members");
	if (parse_members(c, key_node(c, map, "members"), members))
		return -1;
	clients = lookup(c, map, "clients");
	return clients ? parse_clients(c, key_node(c, map, "clients"), clients) : 0;
}


/* Every replica as a client too (HM_REPLICA_CLIENT_BASE + i, its replica
 * key), so the core, node.c and the XDP client map accept its ops. */
static int add_replica_clients(struct ctx *c, yaml_node_t *at)
{
	struct hm_config *cfg = c->cfg;
	uint32_t n = cfg->n_clients + cfg->n_members;
	struct hm_client_entry *cl;

	for (uint32_t i = 0; i < cfg->n_clients; i++)
		if (cfg->clients[i].id >= HM_REPLICA_CLIENT_BASE &&
		    cfg->clients[i].id < HM_REPLICA_CLIENT_BASE + HM_MAX_REPLICAS)
			return fail(c, at, "byzantine_config", "dns",
				    "cluster.clients id %u is reserved for the replicas' own "
				    "clients (%u..%u) when dns is on", cfg->clients[i].id,
				    HM_REPLICA_CLIENT_BASE, HM_REPLICA_CLIENT_BASE + HM_MAX_REPLICAS - 1);
	if (n > HM_MAX_CLIENTS)
		return fail(c, at, "byzantine_config", "dns", "too many clients with the replicas'");
	cl = realloc(cfg->clients, n * sizeof(*cl));
	if (!cl)
		return fail(c, at, "byzantine_config", "dns", "out of memory");
	cfg->clients = cl;
	for (uint32_t i = 0; i < cfg->n_members; i++) {
		struct hm_client_entry *e = &cl[cfg->n_clients++];

		memset(e, 0, sizeof(*e));
		e->id = HM_REPLICA_CLIENT_BASE + cfg->members[i].id;
		memcpy(e->public_key, cfg->members[i].public_key, HM_PUBKEY_LEN);
		snprintf(e->public_key_path, sizeof(e->public_key_path), "%s",
			 cfg->members[i].public_key_path);
	}
	qsort(cfg->clients, cfg->n_clients, sizeof(*cl), cmp_client);
	return 0;
}

/* ---- byzantine_config.dns -------------------------------------------------- */

static int parse_dns_upstream(struct ctx *c, yaml_node_t *map, int i, struct hm_dns_upstream_cfg *u)
{
	static const char *const keys[] = { "zone", "address", "mode", "replicas", NULL };
	static const char *const modes[] = { "stub", "forward", NULL };
	yaml_node_t *seq;
	char path[64];
	int mode = 0, n;

	snprintf(path, sizeof(path), "byzantine_config.dns.upstreams[%d]", i);
	if (check_mapping(c, map, path, keys) || require(c, map, path, "zone") ||
	    require(c, map, path, "address") ||
	    opt_string(c, map, path, "zone", u->zone, sizeof(u->zone)) < 0 ||
	    opt_string(c, map, path, "address", u->address, sizeof(u->address)) < 0 ||
	    opt_choice(c, map, path, "mode", modes, &mode) < 0)
		return -1;
	u->forward = mode == 1;
	if (!u->zone[0] || u->zone[strlen(u->zone) - 1] != '.')
		return fail(c, lookup(c, map, "zone"), path, "zone",
			    "expected an absolute zone name ending in '.', got \"%s\"", u->zone);
	if (!(seq = lookup(c, map, "replicas")))
		return 0;
	if ((n = check_sequence(c, seq, path, "replicas")) < 0)
		return -1;
	for (int k = 0; k < n; k++) {
		yaml_node_t *v = item(c, seq, k);
		const char *s = scalar(c, v, path, "replicas", "a replica id");
		uint32_t id;

		if (!s)
			return -1;
		if (parse_u32(s, &id) < 0 || id >= c->cfg->n_members)
			return fail(c, v, path, "replicas", "%s is not a replica id (0..%u)", s,
				    c->cfg->n_members - 1);
		u->replicas |= 1u << id;
	}
	return 0;
}

static int parse_dns_lists(struct ctx *c, yaml_node_t *map, struct hm_dns_config *d)
{
	const char *path = "byzantine_config.dns";
	yaml_node_t *seq;
	int n;

	if ((seq = lookup(c, map, "trust_anchors"))) {
		if ((n = check_sequence(c, seq, path, "trust_anchors")) < 0)
			return -1;
		if (n > HM_DNS_MAX_ANCHORS)
			return fail(c, seq, path, "trust_anchors", "at most %d", HM_DNS_MAX_ANCHORS);
		for (int i = 0; i < n; i++) {
			const char *s = scalar(c, item(c, seq, i), path, "trust_anchors",
					       "a DS or DNSKEY record");

			if (!s || !(d->trust_anchors[i] = strdup(s)))
				return s ? fail(c, seq, path, "trust_anchors", "out of memory") : -1;
			d->n_trust_anchors++;
		}
	}
	if ((seq = lookup(c, map, "upstreams"))) {
		if ((n = check_sequence(c, seq, path, "upstreams")) < 0)
			return -1;
		if (n > HM_DNS_MAX_UPSTREAMS)
			return fail(c, seq, path, "upstreams", "at most %d", HM_DNS_MAX_UPSTREAMS);
		for (int i = 0; i < n; i++, d->n_upstreams++)
			if (parse_dns_upstream(c, item(c, seq, i), i, &d->upstreams[i]))
				return -1;
	}
	return 0;
}

/* allow: the client prefixes served; without the key only loopback. */
static int parse_dns_allow(struct ctx *c, yaml_node_t *map, struct hm_dns_config *d)
{
	static const char *const loopback[] = { "127.0.0.0/8", "::1/128" };
	const char *path = "byzantine_config.dns";
	yaml_node_t *seq = lookup(c, map, "allow");
	char why[160];
	int n;

	if (!seq) {
		for (size_t i = 0; i < sizeof(loopback) / sizeof(loopback[0]); i++)
			hm_prefix_parse(loopback[i], &d->allow[d->n_allow++], NULL, 0);
		return 0;
	}
	if ((n = check_sequence(c, seq, path, "allow")) < 0)
		return -1;
	if (n > HM_DNS_MAX_ALLOW)
		return fail(c, seq, path, "allow", "at most %d prefixes", HM_DNS_MAX_ALLOW);
	for (int i = 0; i < n; i++) {
		yaml_node_t *v = item(c, seq, i);
		const char *s = scalar(c, v, path, "allow", "an address prefix (198.18.0.0/15, ::1)");

		if (!s)
			return -1;
		if (hm_prefix_parse(s, &d->allow[i], why, sizeof(why)) < 0)
			return fail(c, v, path, "allow", "%s", why);
		d->n_allow++;
	}
	return 0;
}

static int parse_dns_rate_limit(struct ctx *c, yaml_node_t *map, struct hm_dns_config *d)
{
	const char *path = "byzantine_config.dns";

	if (opt_uint(c, map, path, "rate_limit_qps", 0, 10000000, &d->rate_limit_qps) < 0 ||
	    opt_uint(c, map, path, "rate_limit_burst", 1, 10000000, &d->rate_limit_burst) < 0 ||
	    opt_uint(c, map, path, "rate_limit_prefix_v4", 1, 32, &d->rate_limit_prefix_v4) < 0 ||
	    opt_uint(c, map, path, "rate_limit_prefix_v6", 1, 128, &d->rate_limit_prefix_v6) < 0 ||
	    opt_uint(c, map, path, "serve_expired_s", 0, 7 * 86400, &d->serve_expired_s) < 0)
		return -1;
	if (!d->rate_limit_burst)
		d->rate_limit_burst = d->rate_limit_qps;
	return 0;
}

/* listen_port: a port, or "off" for no DNS listener on any replica. */
static int parse_dns_listen(struct ctx *c, yaml_node_t *map, struct hm_dns_config *d)
{
	const char *path = "byzantine_config.dns";
	yaml_node_t *v = lookup(c, map, "listen_port");

	if (opt_string(c, map, path, "listen_address", d->listen_address,
		       sizeof(d->listen_address)) < 0)
		return -1;
	if (v && v->type == YAML_SCALAR_NODE && !strcmp((const char *)v->data.scalar.value, "off")) {
		d->listen = false;
		return 0;
	}
	return opt_port(c, map, path, "listen_port", &d->listen_port) < 0 ? -1 : 0;
}

/* DNS over TLS: a port needs both files, the files need a port. */
static int parse_dns_tls(struct ctx *c, yaml_node_t *map, struct hm_dns_config *d)
{
	const char *path = "byzantine_config.dns";

	if (opt_uint(c, map, path, "tls_port", 0, 65535, &d->tls_port) < 0 ||
	    opt_path(c, map, path, "tls_cert_file", false, d->tls_cert_file) < 0 ||
	    opt_path(c, map, path, "tls_key_file", false, d->tls_key_file) < 0)
		return -1;
	if (d->tls_port && (!d->tls_cert_file[0] || !d->tls_key_file[0]))
		return fail(c, lookup(c, map, "tls_port"), path, "tls_port",
			    "DNS over TLS needs tls_cert_file and tls_key_file");
	if (!d->tls_port && (d->tls_cert_file[0] || d->tls_key_file[0]))
		return fail(c, lookup(c, map, d->tls_cert_file[0] ? "tls_cert_file" : "tls_key_file"),
			    path, d->tls_cert_file[0] ? "tls_cert_file" : "tls_key_file",
			    "given without tls_port (853 for DNS over TLS)");
	return 0;
}

/* Recursion from the root: the hints file (given: it must be readable;
 * absent: Debian's dns-root-data when installed) and, with no upstreams and
 * no anchors of its own, the root trust anchor of dns-root-data. */
#define DNS_ROOT_HINTS "/usr/share/dns/root.hints"
#define DNS_ROOT_KEY "/usr/share/dns/root.key"
static int parse_dns_recursion(struct ctx *c, yaml_node_t *map, struct hm_dns_config *d)
{
	const char *path = "byzantine_config.dns";
	int rc = opt_path(c, map, path, "root_hints", false, d->root_hints);

	if (rc < 0)
		return -1;
	if (rc == 1 && access(d->root_hints, R_OK))
		return fail(c, lookup(c, map, "root_hints"), path, "root_hints", "cannot read %s: %s",
			    d->root_hints, strerror(errno));
	if (rc == 0 && !access(DNS_ROOT_HINTS, R_OK))
		snprintf(d->root_hints, sizeof(d->root_hints), "%s", DNS_ROOT_HINTS);
	if (!d->n_upstreams && !d->n_trust_anchors && !d->trust_anchor_file[0] &&
	    !access(DNS_ROOT_KEY, R_OK))
		snprintf(d->trust_anchor_file, sizeof(d->trust_anchor_file), "%s", DNS_ROOT_KEY);
	return 0;
}

static int parse_dns(struct ctx *c, yaml_node_t *map)
{
	static const char *const keys[] = {
		"listen_address", "listen_port", "trust_anchors", "trust_anchor_file", "max_ttl_s",
		"skew_s", "query_timeout_ms", "lookup_timeout_s", "validation_epoch_s",
		"tcp_idle_ms", "max_tcp_connections", "chains", "tcp_upstream", "upstreams", "xdp",
		"xdp_interface", "rrl_rate", "rrl_burst", "rrl_slip", "rrl_ipv4_prefix",
		"rrl_ipv6_prefix", "allow", "rate_limit_qps", "rate_limit_burst",
		"rate_limit_prefix_v4", "rate_limit_prefix_v6", "serve_expired_s", "tls_port",
		"tls_cert_file", "tls_key_file", "root_hints", "prefetch", "audit_lookups_per_s", NULL
	};
	const char *path = "byzantine_config.dns";
	struct hm_dns_config *d = &c->cfg->dns;

	d->enabled = true;
	if (check_mapping(c, map, path, keys) || parse_dns_listen(c, map, d) ||
	    opt_path(c, map, path, "trust_anchor_file", false, d->trust_anchor_file) < 0 ||
	    opt_uint(c, map, path, "max_ttl_s", 1, 7 * 86400, &d->max_ttl_s) < 0 ||
	    opt_uint(c, map, path, "skew_s", 1, 86400, &d->skew_s) < 0 ||
	    opt_uint(c, map, path, "query_timeout_ms", 10, 600000, &d->query_timeout_ms) < 0 ||
	    opt_uint(c, map, path, "lookup_timeout_s", 1, 3600, &d->lookup_timeout_s) < 0 ||
	    opt_uint(c, map, path, "validation_epoch_s", 1, 86400, &d->validation_epoch_s) < 0 ||
	    opt_uint(c, map, path, "tcp_idle_ms", 1, 3600000, &d->tcp_idle_ms) < 0 ||
	    opt_uint(c, map, path, "max_tcp_connections", 1, 65536, &d->max_tcp_connections) < 0 ||
	    opt_bool(c, map, path, "chains", &d->chains) < 0 ||
	    opt_bool(c, map, path, "tcp_upstream", &d->tcp_upstream) < 0 ||
	    opt_bool(c, map, path, "xdp", &d->xdp) < 0 ||
	    opt_string(c, map, path, "xdp_interface", d->xdp_interface, sizeof(d->xdp_interface)) < 0 ||
	    opt_uint(c, map, path, "rrl_rate", 0, 10000000, &d->rrl_rate) < 0 ||
	    opt_uint(c, map, path, "rrl_burst", 0, 10000000, &d->rrl_burst) < 0 ||
	    opt_uint(c, map, path, "rrl_slip", 0, 100, &d->rrl_slip) < 0 ||
	    opt_uint(c, map, path, "rrl_ipv4_prefix", 1, 32, &d->rrl_ipv4_prefix) < 0 ||
	    opt_uint(c, map, path, "rrl_ipv6_prefix", 1, 128, &d->rrl_ipv6_prefix) < 0 ||
	    parse_dns_lists(c, map, d) || parse_dns_allow(c, map, d) ||
	    parse_dns_rate_limit(c, map, d) || parse_dns_tls(c, map, d) ||
	    parse_dns_recursion(c, map, d) || opt_bool(c, map, path, "prefetch", &d->prefetch) < 0 ||
	    opt_uint(c, map, path, "audit_lookups_per_s", 0, 1000000, &d->audit_lookups_per_s) < 0)
		return -1;
	return add_replica_clients(c, map);
}

static int parse_node(struct ctx *c, yaml_node_t *map)
{
	static const char *const keys[] = { "id", "private_key", "data_dir", "runtime_dir",
					    "log_level", "log_format", NULL };
	static const char *const levels[] = { "error", "warn", "info", "debug", NULL };
	static const char *const formats[] = { "kv", "json", NULL };
	struct hm_config *cfg = c->cfg;
	int rc, level;

	if (check_mapping(c, map, "node", keys) ||
	    (rc = opt_uint(c, map, "node", "id", 0, UINT32_MAX, &cfg->node_id)) < 0)
		return -1;
	cfg->has_node_id = rc == 1;
	if ((rc = opt_path(c, map, "node", "private_key", false, cfg->private_key_path)) < 0)
		return -1;
	/* Read later, by hm_keypair_read(); checked now so a typo fails at load
	 * with a line number rather than at startup without one. */
	if (rc == 1 && access(cfg->private_key_path, R_OK))
		return fail(c, lookup(c, map, "private_key"), "node", "private_key", "cannot read %s: %s",
			    cfg->private_key_path, strerror(errno));
	if (opt_path(c, map, "node", "data_dir", true, cfg->data_dir) < 0 ||
	    opt_path(c, map, "node", "runtime_dir", true, cfg->runtime_dir) < 0)
		return -1;
	if ((rc = opt_choice(c, map, "node", "log_level", levels, &level)) < 0)
		return -1;
	if (rc == 1)
		snprintf(cfg->log_level, sizeof(cfg->log_level), "%s", levels[level]);
	if ((rc = opt_choice(c, map, "node", "log_format", formats, &level)) < 0)
		return -1;
	if (rc == 1)
		snprintf(cfg->log_format, sizeof(cfg->log_format), "%s", formats[level]);
	return 0;
}

/* ---- ct: Certificate Transparency ---------------------------------------- */

static int parse_ct_url(struct ctx *c, yaml_node_t *map, const char *path, char *dst, size_t size)
{
	if (require(c, map, path, "url") || opt_string(c, map, path, "url", dst, size) < 0)
		return -1;
	if (strncmp(dst, "http://", 7) != 0 && strncmp(dst, "https://", 8) != 0)
		return fail(c, lookup(c, map, "url"), path, "url",
			    "expected an http:// or https:// URL, got \"%.60s\"", dst);
	return 0;
}

/* One log.  Its key file is read by the CT service, not here (config is
 * below the services): the line is kept so that a bad PEM or a second log
 * with the same key is reported at it (hm_ct_config_check). */
static int parse_ct_log(struct ctx *c, yaml_node_t *map, int i)
{
	static const char *const keys[] = { "name", "key", "url", NULL };
	struct hm_ct_log_config *lc = &c->cfg->ct.logs[i];
	char path[32];

	snprintf(path, sizeof(path), "ct.logs[%d]", i);
	if (check_mapping(c, map, path, keys) || require(c, map, path, "name") ||
	    require(c, map, path, "key") ||
	    opt_string(c, map, path, "name", lc->name, sizeof(lc->name)) < 0 ||
	    opt_path(c, map, path, "key", false, lc->key_path) < 0 ||
	    parse_ct_url(c, map, path, lc->url, sizeof(lc->url)))
		return -1;
	lc->key_line = (uint32_t)line_of(lookup(c, map, "key"));
	return 0;
}

static int parse_ct_logs(struct ctx *c, yaml_node_t *map)
{
	yaml_node_t *seq = lookup(c, map, "logs");
	int n;

	if (!seq)
		return 0;
	n = check_sequence(c, seq, "ct", "logs");
	if (n < 0)
		return -1;
	if (n > HM_CT_CONFIG_MAX_LOGS)
		return fail(c, seq, "ct", "logs", "%d logs, at most %d are supported", n,
			    HM_CT_CONFIG_MAX_LOGS);
	for (int i = 0; i < n; i++) {
		if (parse_ct_log(c, item(c, seq, i), i))
			return -1;
		c->cfg->ct.n_logs++;
	}
	return 0;
}

static int parse_ct(struct ctx *c, yaml_node_t *map)
{
	static const char *const keys[] = { "trust_store", "logs", "max_clock_skew_s", NULL };
	struct hm_ct_config *cc = &c->cfg->ct;

	if (check_mapping(c, map, "ct", keys) || require(c, map, "ct", "trust_store") ||
	    opt_path(c, map, "ct", "trust_store", false, cc->trust_store) < 0 ||
	    opt_uint(c, map, "ct", "max_clock_skew_s", 1, 86400, &cc->max_clock_skew_s) < 0)
		return -1;
	cc->trust_store_line = (uint32_t)line_of(lookup(c, map, "trust_store"));
	if (parse_ct_logs(c, map))
		return -1;
	cc->enabled = true;
	return 0;
}

static int parse_root(struct ctx *c, yaml_node_t *root)
{
	static const char *const keys[] = { "byzantine_config", "cluster", "node", "ct", NULL };
	char buf[80];
	yaml_node_t *v;

	if (!root)
		return fail_line(c, 1, "empty configuration: cluster.members is required");
	if (root->type != YAML_MAPPING_NODE)
		return fail_line(c, line_of(root), "expected a mapping at the top level, got %s",
				 describe(root, buf, sizeof(buf)));
	if (check_mapping(c, root, "", keys))
		return -1;
	/* Schema order: cluster needs f and the default port. */
	if ((v = lookup(c, root, "byzantine_config")) && parse_byzantine(c, v))
		return -1;
	if (!(v = lookup(c, root, "cluster")))
		return fail(c, root, "cluster", "members", "required key is missing");
	if (parse_cluster(c, v) || check_ebpf_monitoring(c))
		return -1;
	/* dns after cluster: its upstreams name replica ids. */
	if ((v = lookup(c, root, "byzantine_config")) && !is_empty(v) &&
	    (v = lookup(c, v, "dns")) && parse_dns(c, v))
		return -1;
	if ((v = lookup(c, root, "ct")) && parse_ct(c, v))
		return -1;
	return (v = lookup(c, root, "node")) ? parse_node(c, v) : 0;
}

/* ---- loading ------------------------------------------------------------ */

static int fail_io(struct ctx *c, int error)
{
	if (c->errlen)
		snprintf(c->err, c->errlen, "%s: cannot read: %s", c->file, strerror(error));
	return -1;
}

/* The whole file in memory: libyaml reports reader errors (bad UTF-8) as a
 * byte offset, which needs the text to turn into a line. */
static int read_text(struct ctx *c, char **text, size_t *len)
{
	FILE *f = fopen(c->file, "rb");
	size_t cap = 0, n = 0, got = 1;
	char *buf = NULL, *bigger;
	int error = 0;

	if (!f)
		return fail_io(c, errno);
	while (got && !error) {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			if (cap > CONFIG_MAX_BYTES)
				error = EFBIG;
			else if (!(bigger = realloc(buf, cap)))
				error = ENOMEM;
			else
				buf = bigger;
			if (error)
				break;
		}
		got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (ferror(f))
			error = errno ? errno : EIO;
	}
	fclose(f);
	if (error) {
		free(buf);
		return fail_io(c, error);
	}
	*text = buf;
	*len = n;
	return 0;
}

static int fail_syntax(struct ctx *c, const yaml_parser_t *p, const char *text)
{
	size_t line = p->problem_mark.line + 1;

	if (p->error == YAML_MEMORY_ERROR)
		return fail_line(c, 1, "out of memory parsing YAML");
	if (p->error == YAML_READER_ERROR) {
		line = 1;
		for (size_t i = 0; i < p->problem_offset; i++)
			line += text[i] == '\n';
	}
	if (p->context)
		return fail_line(c, line, "invalid YAML: %s (%s at line %zu)", p->problem, p->context,
				 p->context_mark.line + 1);
	return fail_line(c, line, "invalid YAML: %s", p->problem ? p->problem : "unknown error");
}

/* Refuse nesting deeper than CONFIG_MAX_DEPTH before composing the tree:
 * the event pass stops at the first level too deep, so its cost is bounded
 * by the depth limit, not by the file.  Syntax errors are left to the
 * composing pass, which reports them the same way. */
static int check_depth(struct ctx *c, const char *text, size_t len)
{
	yaml_parser_t p;
	yaml_event_t ev;
	unsigned depth = 0;
	int rc = 0;
	bool done = false;

	if (!yaml_parser_initialize(&p))
		return fail_line(c, 1, "out of memory");
	yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
	while (!done && !rc) {
		if (!yaml_parser_parse(&p, &ev))
			break;
		switch (ev.type) {
		case YAML_SEQUENCE_START_EVENT:
		case YAML_MAPPING_START_EVENT:
			if (++depth > CONFIG_MAX_DEPTH)
				rc = fail_line(c, ev.start_mark.line + 1,
					       "nesting deeper than %u levels", CONFIG_MAX_DEPTH);
			break;
		case YAML_SEQUENCE_END_EVENT:
		case YAML_MAPPING_END_EVENT:
			depth--;
			break;
		case YAML_STREAM_END_EVENT:
			done = true;
			break;
		default:
			break;
		}
		yaml_event_delete(&ev);
	}
	yaml_parser_delete(&p);
	return rc;
}

/* Only one document: a second one would be silently ignored otherwise. */
static int check_single_document(struct ctx *c, yaml_parser_t *p, const char *text)
{
	yaml_document_t next;
	yaml_node_t *root;
	int rc = 0;

	if (!yaml_parser_load(p, &next))
		return fail_syntax(c, p, text);
	if ((root = yaml_document_get_root_node(&next)))
		rc = fail_line(c, line_of(root), "more than one YAML document (one is expected)");
	yaml_document_delete(&next);
	return rc;
}

static void set_dir(struct ctx *c, const char *path)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash ? (size_t)(slash - path) + 1 : 0; /* keep the '/' */

	memcpy(c->dir, path, len);
	c->dir[len] = '\0';
}

/* Parse and validate text as the configuration file at path (for the
 * messages, and the directory relative key files are found in). */
static int load_text(struct ctx *c, const char *text, size_t len)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	int rc;

	if (check_depth(c, text, len))
		return -1;
	if (!yaml_parser_initialize(&parser))
		return fail_line(c, 1, "out of memory");
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		rc = fail_syntax(c, &parser, text);
	} else {
		c->doc = &doc;
		rc = check_single_document(c, &parser, text);
		if (!rc)
			rc = parse_root(c, yaml_document_get_root_node(&doc));
		yaml_document_delete(&doc);
	}
	yaml_parser_delete(&parser);
	return rc;
}

/* hm_config_load() and hm_config_parse(): the file's text, or text given. */
static int load(const char *path, const char *given, size_t given_len, struct hm_config *cfg,
		char *err, size_t errlen)
{
	struct ctx c = { .file = path, .cfg = cfg, .err = err, .errlen = err ? errlen : 0 };
	char *text = NULL;
	size_t len = given_len;
	int rc;

	hm_config_defaults(cfg);
	if (strlen(path) >= sizeof(cfg->path)) {
		if (c.errlen)
			snprintf(err, errlen, "%.64s...: path too long", path);
		return -1;
	}
	strcpy(cfg->path, path);
	set_dir(&c, path);
	if (given) {
		/* a copy, freed below as read_text()'s would be */
		if (!(text = malloc(len + 1)))
			return fail_io(&c, ENOMEM);
		memcpy(text, given, len);
		text[len] = '\0';
	} else if (read_text(&c, &text, &len)) {
		return -1;
	}
	rc = load_text(&c, text, len);
	free(text);
	if (rc) {
		/* Leave nothing half-filled or allocated behind. */
		hm_config_free(cfg);
		hm_config_defaults(cfg);
		strcpy(cfg->path, path);
	}
	return rc;
}

int hm_config_load(const char *path, struct hm_config *cfg, char *err, size_t errlen)
{
	return load(path, NULL, 0, cfg, err, errlen);
}

int hm_config_parse(const char *path, const char *text, size_t len, struct hm_config *cfg,
		    char *err, size_t errlen)
{
	return load(path, text, len, cfg, err, errlen);
}

/* Overwrites everything: call hm_config_free() first on a loaded config. */
void hm_config_defaults(struct hm_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout_ms = 1000;
	cfg->max_faulty_nodes = 1;
	cfg->view_change_timeout_ms = 5000;
	cfg->checkpoint_interval = 100;
	cfg->watermark_window = 2 * cfg->checkpoint_interval;
	cfg->batching_enabled = true;
	cfg->batch_size = 64;
	cfg->batch_timeout_ms = 10;
	cfg->pipeline_depth = 8;
	cfg->fast_path_enabled = false;
	cfg->fast_path_timeout_ms = 50;
	cfg->fast_path_trust_threshold = 0.9;
	strcpy(cfg->signature_algorithm, "ed25519");
	strcpy(cfg->message_authentication, "siphash-2-4");
	cfg->max_message_size = 65000;
	cfg->port = HM_DEFAULT_PORT;
	cfg->dataplane = HM_DATAPLANE_SOCKET;
	strcpy(cfg->log_level, "info");
	strcpy(cfg->log_format, "kv");
	cfg->judge_interval_ms = 1000;
	cfg->block_cooldown_s = 60;
	cfg->block_max_cooldown_s = 3600;
	strcpy(cfg->metrics_address, "0.0.0.0");
	cfg->metrics_port = 0;
	cfg->detection_enabled = true;
	cfg->reputation_threshold = 0.3;     /* HM_REP_LOW, user/detect/reputation.h */
	cfg->anomaly_detection = true;
	cfg->statistical_analysis = true;
	strcpy(cfg->consensus_algorithm, "pbft");
	cfg->certificate_validation = true;
	cfg->ct_log_verification = true;
	cfg->dns.listen = true;
	cfg->dns.listen_port = 53;
	cfg->dns.max_ttl_s = 300;
	cfg->dns.skew_s = 30;
	cfg->dns.query_timeout_ms = 4000;
	cfg->dns.lookup_timeout_s = 30;
	cfg->dns.validation_epoch_s = 300;
	cfg->dns.tcp_idle_ms = 10000;
	cfg->dns.max_tcp_connections = 256;
	cfg->dns.chains = true;
	cfg->dns.prefetch = true;
	cfg->dns.audit_lookups_per_s = 100;
	cfg->dns.rate_limit_prefix_v4 = 24;
	cfg->dns.rate_limit_prefix_v6 = 56;
	cfg->dns.rrl_rate = 100;
	cfg->dns.rrl_slip = 2;
	cfg->dns.rrl_ipv4_prefix = 24;
	cfg->dns.rrl_ipv6_prefix = 56;
	cfg->ct.max_clock_skew_s = 300;
}

void hm_config_free(struct hm_config *cfg)
{
	free(cfg->clients);
	cfg->clients = NULL;
	cfg->n_clients = 0;
	for (uint32_t i = 0; i < cfg->dns.n_trust_anchors; i++)
		free(cfg->dns.trust_anchors[i]);
	cfg->dns.n_trust_anchors = 0;
}

const struct hm_member *hm_config_member(const struct hm_config *cfg, uint32_t id)
{
	return id < cfg->n_members ? &cfg->members[id] : NULL;
}

const struct hm_client_entry *hm_config_client(const struct hm_config *cfg, uint32_t id)
{
	struct hm_client_entry key = { .id = id };

	if (!cfg->n_clients)
		return NULL;
	return bsearch(&key, cfg->clients, cfg->n_clients, sizeof(key), cmp_client);
}

/* ---- hex key files ------------------------------------------------------ */

static int hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int hm_parse_hex(const char *hex, uint8_t *out, size_t len)
{
	if (strlen(hex) != 2 * len)
		return -1;
	/* Validate everything before writing, so a bad key leaves out intact. */
	for (size_t i = 0; i < 2 * len; i++)
		if (hex_digit(hex[i]) < 0)
			return -1;
	for (size_t i = 0; i < len; i++)
		out[i] = (uint8_t)(hex_digit(hex[2 * i]) << 4 | hex_digit(hex[2 * i + 1]));
	return 0;
}

int hm_read_hex_file(const char *path, uint8_t *out, size_t len, char *err, size_t errlen)
{
	size_t cap = 2 * len + 256; /* room for trailing whitespace, and to see excess */
	char *buf = malloc(cap + 1);
	size_t n = 0;
	bool too_long;
	FILE *f;
	int rc = -1;

	if (!buf) {
		snprintf(err, errlen, "%s: out of memory", path);
		return -1;
	}
	if (!(f = fopen(path, "r"))) {
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		goto out;
	}
	n = fread(buf, 1, cap, f);
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		fclose(f);
		goto out;
	}
	too_long = n == cap && fgetc(f) != EOF;
	fclose(f);
	while (n && isspace((unsigned char)buf[n - 1]))
		n--;
	buf[n] = '\0';
	/* strlen catches a NUL hidden in the middle. */
	if (too_long || strlen(buf) != n || hm_parse_hex(buf, out, len))
		snprintf(err, errlen, "%s: expected %zu hex digits and nothing else", path, 2 * len);
	else
		rc = 0;
out:
	free(buf);
	return rc;
}
