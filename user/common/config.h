/* SPDX-License-Identifier: MIT */
/* Cluster configuration: YAML (libyaml) in, validated struct out. */
#ifndef HM_CONFIG_H
#define HM_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "common/netprefix.h"
#include <stddef.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <net/if.h>

#include "hm_wire.h"

#define HM_MAX_CLIENTS 1024
#define HM_PATH_MAX 512

enum hm_dataplane { HM_DATAPLANE_SOCKET = 0, HM_DATAPLANE_XDP = 1 };

/* Certificate Transparency (ct: section, docs/configuration.md).  The
 * loader parses and stores; the files are read by the CT service
 * (hm_ct_from_config, hm_ct_config_check in user/service/ct/ct_service.h),
 * which names the file's line from the *_line fields. */
#define HM_CT_CONFIG_MAX_LOGS 8

struct hm_ct_log_config {
	char name[64];
	char key_path[HM_PATH_MAX];     /* the log's public key, PEM */
	char url[256];                     /* its RFC 6962 base URL (used by clients) */
	uint32_t key_line;                 /* line of `key:` in the file (0: unknown) */
};

struct hm_ct_config {
	bool enabled;                      /* the file has a ct: section */
	char trust_store[HM_PATH_MAX];  /* PEM file of root certificates */
	uint32_t trust_store_line;         /* line of `trust_store:` (0: unknown) */
	uint32_t max_clock_skew_s;         /* check(): |T - now| allowed */
	struct hm_ct_log_config logs[HM_CT_CONFIG_MAX_LOGS];
	uint32_t n_logs;
};

/* One replica of the cluster (cluster.members[]). */
struct hm_member {
	uint32_t id;                        /* 0..n-1, dense */
	char address[64];                   /* as written: IPv4 or IPv6 literal */
	uint16_t port;                      /* default network.port */
	struct sockaddr_storage addr;       /* address + port, resolved */
	socklen_t addr_len;
	uint8_t public_key[HM_PUBKEY_LEN];  /* Ed25519 */
	char public_key_path[HM_PATH_MAX];  /* "" when given inline as hex */
};

/* Replica i also submits ops as a client (the DNS service's observations),
 * with id HM_REPLICA_CLIENT_BASE + i and its replica key; hm_config_load
 * adds those clients when byzantine_config.dns is present. */
#define HM_REPLICA_CLIENT_BASE 1000u
#define HM_DNS_MAX_UPSTREAMS 64
#define HM_DNS_MAX_ANCHORS 32
#define HM_DNS_MAX_ALLOW 256

/* One upstream of byzantine_config.dns.upstreams[]. */
struct hm_dns_upstream_cfg {
	char zone[256];                     /* "." or "signed.hmtest." */
	char address[80];                   /* "198.18.0.53" or "198.18.0.53@5353" */
	bool forward;                       /* mode: forward (recursive) or stub (authoritative) */
	uint32_t replicas;                  /* bitmap of replica ids; 0: every replica without its own */
};

/* byzantine_config.dns (docs/configuration.md). */
struct hm_dns_config {
	bool enabled;                       /* the section is present */
	bool listen;                        /* listen_port not "off" */
	char listen_address[64];            /* "" : the replica's member address */
	uint16_t listen_port;               /* default 53 */
	char *trust_anchors[HM_DNS_MAX_ANCHORS]; /* heap strings */
	uint32_t n_trust_anchors;
	char trust_anchor_file[HM_PATH_MAX];
	uint32_t max_ttl_s;                 /* served TTL ceiling, default 300 */
	uint32_t skew_s;                    /* T versus the wall clock, default 30 */
	uint32_t query_timeout_ms;          /* a parked client query, default 4000 */
	uint32_t lookup_timeout_s;          /* an open lookup in agreed time, default 30 */
	uint32_t validation_epoch_s;        /* resolver reference time step, default 300 */
	uint32_t tcp_idle_ms, max_tcp_connections;
	/* DNS over TLS: port (0: off; 853 is RFC 7858's), PEM chain and key */
	uint32_t tls_port;
	char tls_cert_file[HM_PATH_MAX], tls_key_file[HM_PATH_MAX];
	bool chains;                        /* collect DNSSEC chains (rule (a)), default true */
	bool tcp_upstream;
	struct hm_dns_upstream_cfg upstreams[HM_DNS_MAX_UPSTREAMS];
	uint32_t n_upstreams;
	/* Access control: clients inside allow[] are served, others get
	 * REFUSED.  Absent key: the loopback addresses only (no open resolver). */
	struct hm_prefix allow[HM_DNS_MAX_ALLOW];
	uint32_t n_allow;
	/* Per-client-prefix rate limit: 0 qps = off (the default). */
	uint32_t rate_limit_qps, rate_limit_burst;
	uint32_t rate_limit_prefix_v4, rate_limit_prefix_v6;
	/* Serve-expired (RFC 8767): an expired certified answer is served for
	 * at most this long after its expiry (marked EDE 3) while a fresh
	 * agreement runs; 0 = off (the default). */
	uint32_t serve_expired_s;
	/* Recursion from the root (docs/dns.md, "Recursion from the root"):
	 * the root hints file ("" : libunbound's compiled-in hints); default
	 * /usr/share/dns/root.hints when it exists. */
	char root_hints[HM_PATH_MAX];
	/* Prefetch (docs/dns.md, "Prefetch"): a hit in the last tenth of an
	 * answer's TTL starts a fresh agreement; default true. */
	bool prefetch;
	/* Audit lookups (docs/dns.md, "Audit lookups"): lookups of a Q this
	 * replica's observation can no longer decide, made only to compare
	 * with the decision (the poisoning statistic), at most this many a
	 * second; 0: none.  Default 100. */
	uint32_t audit_lookups_per_s;
	/* Answers from XDP (kern/hm_dns.bpf.c, docs/dns.md "Answers from XDP") */
	bool xdp;                           /* default false */
	char xdp_interface[IF_NAMESIZE];    /* "": the top-level interface setting */
	uint32_t rrl_rate;                  /* XDP answers/s per client prefix, default 100; 0 off */
	uint32_t rrl_burst;                 /* default: rrl_rate */
	uint32_t rrl_slip;                  /* every Nth limited answer TC'd, default 2; 0 drop all */
	uint32_t rrl_ipv4_prefix, rrl_ipv6_prefix; /* default 24 and 56 */
};

/* One client allowed to submit requests (cluster.clients[]). */
struct hm_client_entry {
	uint32_t id;                        /* not a replica id */
	uint8_t public_key[HM_PUBKEY_LEN];
	char public_key_path[HM_PATH_MAX];  /* "" when inline */
};

struct hm_config {
	char path[HM_PATH_MAX];             /* the file it was read from */

	/* byzantine_config.consensus */
	char consensus_algorithm[8];        /* "pbft", the only one */
	uint32_t timeout_ms;                /* client retransmission timeout */
	uint32_t max_faulty_nodes;          /* f */
	uint32_t view_change_timeout_ms;
	uint32_t checkpoint_interval;
	uint32_t watermark_window;          /* L; default 2 * checkpoint_interval */

	/* byzantine_config.performance */
	bool batching_enabled;
	uint32_t batch_size;                /* requests per PRE-PREPARE */
	uint32_t batch_timeout_ms;          /* wait this long for a batch to fill */
	uint32_t pipeline_depth;            /* batches in flight */
	bool fast_path_enabled;
	uint32_t fast_path_timeout_ms;
	/* The fast path is attempted only while every peer's reputation is
	 * above this (never a smaller quorum: docs/protocol.md, "The fast path") */
	double fast_path_trust_threshold;

	/* byzantine_config.security */
	char signature_algorithm[16];       /* "ed25519" */
	char message_authentication[16];    /* "siphash-2-4" (`true` says the same) */
	bool certificate_validation;        /* always true: false is refused */
	bool ct_log_verification;           /* always true: false is refused */
	/* security.signed_requests: clients Ed25519-sign every request and
	 * every replica verifies it (non-repudiation per request).  Off: a
	 * request is authenticated by its link MAC and f+1 replicas' vouches
	 * (docs/protocol.md, "Requests: MACs and vouches"). */
	bool signed_requests;

	/* byzantine_config.network */
	uint32_t max_message_size;          /* bytes, <= HM_MAX_DATAGRAM */
	uint16_t port;                      /* default port for members */
	char interface[IF_NAMESIZE];        /* xdp mode: interface to attach to */
	uint32_t rate_limit_pps;            /* per-sender token bucket, 0 = off */
	bool quic_transport;                /* always false: true is refused */
	bool encryption_required;           /* replica payloads AEAD-sealed; default false */
	bool message_compression;           /* replica payloads zstd-compressed; default false */

	/* byzantine_config.detection: fault detection, block policy, metrics */
	uint32_t judge_interval_ms;         /* how often peers are judged */
	uint32_t block_cooldown_s;          /* first block; doubles on each repeat */
	uint32_t block_max_cooldown_s;      /* ... up to this */
	char metrics_address[64];           /* Prometheus endpoint address */
	uint16_t metrics_port;              /* 0 = no endpoint */
	/* byzantine_config.fault_detection (its keys are accepted in
	 * .detection too, and the reverse; a setting given in both must agree) */
	bool detection_enabled;             /* false: count and score, never suspect or block */
	double reputation_threshold;        /* low-reputation indicator below this, default 0.3 */
	bool anomaly_detection;             /* the robust z-score detector (silence, participation) */
	bool statistical_analysis;          /* the two-indicator suspicion */
	bool ebpf_monitoring;               /* the kernel's node_stats are sampled: xdp mode */

	/* cluster */
	enum hm_dataplane dataplane;
	struct hm_member members[HM_MAX_REPLICAS];
	uint32_t n_members;                 /* n */
	struct hm_client_entry *clients;    /* heap, n_clients entries */
	uint32_t n_clients;

	/* node: local settings of the process reading the file (optional) */
	bool has_node_id;
	uint32_t node_id;
	char private_key_path[HM_PATH_MAX];
	char data_dir[HM_PATH_MAX];
	/* where a client keeps its identity lock and last timestamp ("": the
	 * default, see user/client/identity.h) */
	char runtime_dir[HM_PATH_MAX];
	char log_level[16];                 /* error|warn|info|debug */
	char log_format[8];                 /* kv|json (common/log.h) */
	struct hm_dns_config dns;           /* byzantine_config.dns */

	struct hm_ct_config ct;
};

/*
 * Read and validate a configuration file.  On error returns -1 and writes a
 * message naming the file, the line and the key into err, e.g.
 *   "cluster.yaml:12: byzantine_config.consensus.timeout_ms: expected an integer"
 */
int hm_config_load(const char *path, struct hm_config *cfg, char *err, size_t errlen);
/* The same for text given (len bytes) as the file at path would hold it
 * (path names it in messages; relative key files are found beside it). */
int hm_config_parse(const char *path, const char *text, size_t len, struct hm_config *cfg,
		    char *err, size_t errlen);
void hm_config_free(struct hm_config *cfg);
void hm_config_defaults(struct hm_config *cfg);

const struct hm_member *hm_config_member(const struct hm_config *cfg, uint32_t id);
const struct hm_client_entry *hm_config_client(const struct hm_config *cfg, uint32_t id);

/* Key files: hex text written by `hmctl keygen`.  NAME.pub holds the 32-byte
 * Ed25519 public key (64 hex digits), NAME.key the 64-byte libsodium secret
 * key (128 hex digits).  Return 0, or -1 with a message in err. */
int hm_read_hex_file(const char *path, uint8_t *out, size_t len, char *err, size_t errlen);
int hm_parse_hex(const char *hex, uint8_t *out, size_t len);

#endif /* HM_CONFIG_H */
