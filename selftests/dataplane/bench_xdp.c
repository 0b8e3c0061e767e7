// SPDX-License-Identifier: MIT
/*
 * bench_xdp: how long hm_xdp takes per packet, by message type, and how much
 * memory its maps take.  Not a test: `make bench` runs it and prints the
 * figures.  Frames are real (Ed25519-signed, SipHash-MACed with crypto_kx
 * link keys) and run through BPF_PROG_TEST_RUN; the kernel reports the mean
 * run time of the program over `repeat` runs, without the syscall around it.
 *
 *   build/bench_xdp [--repeat N] [--json]
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>
#include <sodium.h>

#include "common/crypto.h"
#include "hm_frames.h"
#include "hm_maps.h"
#include "hm_xdp.skel.h"
#include "common/wire.h"

#define PORT HM_DEFAULT_PORT
#define SELF 1
#define CLIENT 100

static struct hm_keypair replica_kp[4], client_kp;
static uint8_t rx_key[4][16], tx_key[4][16], client_tx[16], client_rx[16];

static void die(const char *what)
{
	fprintf(stderr, "bench_xdp: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void keys(void)
{
	struct hm_link_keys ours, theirs;

	if (hm_crypto_init() < 0)
		die("hm_crypto_init");
	for (uint32_t i = 0; i < 4; i++)
		hm_keypair_generate(&replica_kp[i]);
	hm_keypair_generate(&client_kp);
	for (uint32_t i = 0; i < 4; i++) {
		if (i == SELF)
			continue;
		hm_link_keys_derive(SELF, &replica_kp[SELF], i, replica_kp[i].pk, &ours);
		hm_link_keys_derive(i, &replica_kp[i], SELF, replica_kp[SELF].pk, &theirs);
		memcpy(rx_key[i], ours.rx, 16);
		memcpy(tx_key[i], theirs.tx, 16);
	}
	hm_link_keys_derive(SELF, &replica_kp[SELF], CLIENT, client_kp.pk, &ours);
	hm_link_keys_derive(CLIENT, &client_kp, SELF, replica_kp[SELF].pk, &theirs);
	memcpy(client_rx, ours.rx, 16);
	memcpy(client_tx, theirs.tx, 16);
}

static struct src replica_src(uint32_t i)
{
	struct src s = { .family = AF_INET, .addr = { 198, 18, 0, (uint8_t)(10 + i) },
			 .port = PORT };

	return s;
}

/* Load hm_xdp configured as replica SELF of n = 4, window `window`; the
 * vote map sized for that window, as the controller does. */
static struct hm_xdp_bpf *load(uint32_t n, uint32_t window)
{
	struct hm_xdp_bpf *skel = hm_xdp_bpf__open();
	struct hm_xdp_config cfg = { .port = PORT, .n = n, .f = (n - 1) / 3, .self_id = SELF,
				     .view = 0, .low = 0, .high = window,
				     .max_message_size = 65507, .window = window };
	uint32_t zero = 0;

	if (!skel)
		die("open hm_xdp");
	bpf_map__set_max_entries(skel->maps.hm_votes, window * HM_PHASE_MAX);
	if (hm_xdp_bpf__load(skel))
		die("load hm_xdp (needs root)");
	for (uint32_t i = 0; i < 4; i++) {
		struct hm_xdp_member m = { .valid = i != SELF, .family = HM_AF_INET,
					   .port = htons(PORT) };
		struct src s = replica_src(i);

		memcpy(m.addr, s.addr, 4);
		memcpy(m.rx_key, rx_key[i], 16);
		bpf_map_update_elem(bpf_map__fd(skel->maps.hm_members), &i, &m, 0);
	}
	{
		struct hm_xdp_client c;
		uint32_t id = CLIENT;

		memcpy(c.rx_key, client_rx, 16);
		bpf_map_update_elem(bpf_map__fd(skel->maps.hm_clients), &id, &c, 0);
	}
	bpf_map_update_elem(bpf_map__fd(skel->maps.hm_config), &zero, &cfg, 0);
	return skel;
}

static void frame_msg_view(struct frame *f, uint8_t type, uint32_t sender, uint64_t view,
			   uint64_t seq, const uint8_t *payload, uint32_t plen, const struct src *from)
{
	const struct hm_keypair *kp = sender == CLIENT ? &client_kp : &replica_kp[sender];
	const uint8_t *key = sender == CLIENT ? client_tx : tx_key[sender];
	uint8_t digest[HM_DIGEST_LEN] = { 1, 2, 3 };
	struct dgram d;
	bool vote = type == HM_MSG_PREPARE || type == HM_MSG_COMMIT;

	d.len = hm_msg_build(d.b, sizeof(d.b), type, sender, view, seq, vote ? digest : NULL,
			     payload, plen, kp);
	hm_mac_stamp((struct hm_hdr *)d.b, key);
	mkframe(f, from, 0, PORT, d.b, d.len);
}

static void frame_msg(struct frame *f, uint8_t type, uint32_t sender, uint64_t seq,
		      const uint8_t *payload, uint32_t plen, const struct src *from)
{
	frame_msg_view(f, type, sender, 0, seq, payload, plen, from);
}

/* Mean ns per run of frame f, repeated; and the verdict. */
static double ns_per_run(int prog_fd, const struct frame *f, uint32_t repeat, int *verdict)
{
	LIBBPF_OPTS(bpf_test_run_opts, o, .data_in = f->buf, .data_size_in = (__u32)f->len,
		    .repeat = repeat);

	if (bpf_prog_test_run_opts(prog_fd, &o) < 0)
		die("BPF_PROG_TEST_RUN");
	*verdict = (int)o.retval;
	return (double)o.duration;
}

/* A vote counted into a fresh slot every time: distinct seqs, each run
 * once, the view moving on when the window is used up (a newer view takes
 * the slots over); the mean of the kernel's per-run times. */
static double fresh_votes(struct hm_xdp_bpf *skel, uint8_t type, uint32_t count)
{
	int fd = bpf_program__fd(skel->progs.hm_xdp), cfg_fd = bpf_map__fd(skel->maps.hm_config);
	struct src s = replica_src(2);
	struct hm_xdp_config cfg;
	uint32_t zero = 0;
	double sum = 0;
	int verdict;

	bpf_map_lookup_elem(cfg_fd, &zero, &cfg);
	for (uint32_t i = 0; i < count; i++) {
		struct frame f;

		if (i % cfg.window == 0) {
			cfg.view = i / cfg.window * 4 + 1; /* a view whose primary is not 2 */
			bpf_map_update_elem(cfg_fd, &zero, &cfg, 0);
		}
		frame_msg_view(&f, type, 2, cfg.view, 1 + i % cfg.window, NULL, 0, &s);
		sum += ns_per_run(fd, &f, 1, &verdict);
	}
	cfg.view = 0;
	bpf_map_update_elem(cfg_fd, &zero, &cfg, 0);
	return sum / count;
}

/* memlock of a map, as the kernel accounts it (fdinfo). */
static unsigned long long map_bytes(int fd)
{
	char path[64], line[128];
	unsigned long long v = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/self/fdinfo/%d", fd);
	fp = fopen(path, "r");
	if (!fp)
		return 0;
	while (fgets(line, sizeof(line), fp))
		if (sscanf(line, "memlock: %llu", &v) == 1)
			break;
	fclose(fp);
	return v;
}

static unsigned long long maps_total(struct hm_xdp_bpf *skel)
{
	struct bpf_map *m;
	unsigned long long sum = 0;

	bpf_object__for_each_map(m, skel->obj)
		sum += map_bytes(bpf_map__fd(m));
	return sum;
}

struct row {
	const char *name;
	double ns;
	const char *verdict;
};

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "repeat", required_argument, NULL, 'r' }, { "json", no_argument, NULL, 'j' }, { 0 }
	};
	uint32_t repeat = 1000000;
	bool json = false;
	struct row rows[16];
	int nrows = 0, opt, v, fd;
	struct hm_xdp_bpf *skel;
	struct frame f;
	struct src s0 = replica_src(0), s2 = replica_src(2), c = replica_src(3);
	uint8_t op[32] = "op";
	uint32_t blocked_id = 2;
	double harness_ns = 0;
	__u64 forever = 0;

	while ((opt = getopt_long(argc, argv, "", longopts, NULL)) != -1)
		if (opt == 'r')
			repeat = (uint32_t)strtoul(optarg, NULL, 10);
		else if (opt == 'j')
			json = true;
		else
			return 2;
	keys();
	c.addr[3] = 200;
	c.port = 40000;
	skel = load(4, 200);
	fd = bpf_program__fd(skel->progs.hm_xdp);

#define ROW(label)                                                                  \
	do {                                                                        \
		rows[nrows].name = label;                                           \
		rows[nrows].ns = ns_per_run(fd, &f, repeat, &v);                    \
		rows[nrows++].verdict = v == XDP_DROP ? "drop" : v == XDP_PASS ? "pass" : "?"; \
	} while (0)

	/* A fresh slot can only be measured one run at a time, and a single
	 * run's time carries the test harness's own cost (timer reads, frame
	 * setup).  That cost is measured on the duplicate frame (one run at a
	 * time versus `repeat` runs) and taken off. */
	frame_msg(&f, HM_MSG_PREPARE, 2, 5, NULL, 0, &s2);
	ns_per_run(fd, &f, 1, &v); /* the first one is counted */
	ROW("PREPARE, duplicate (absorbed)");
	{
		double single = 0, overhead;

		for (int i = 0; i < 2000; i++)
			single += ns_per_run(fd, &f, 1, &v);
		overhead = single / 2000 - rows[nrows - 1].ns;
		rows[nrows].name = "PREPARE, MAC checked, counted (fresh slot)";
		rows[nrows].ns = fresh_votes(skel, HM_MSG_PREPARE, 2000) - overhead;
		rows[nrows++].verdict = "drop (consumed)";
		rows[nrows].name = "COMMIT, MAC checked, counted (fresh slot)";
		rows[nrows].ns = fresh_votes(skel, HM_MSG_COMMIT, 2000) - overhead;
		rows[nrows++].verdict = "drop (consumed)";
		harness_ns = overhead;
	}
	frame_msg(&f, HM_MSG_PRE_PREPARE, 0, 5, op, 64, &s0);
	ROW("PRE-PREPARE, MAC checked, passed up");
	frame_msg(&f, HM_MSG_REQUEST, CLIENT, 5, op, 32, &c);
	ROW("REQUEST from a client, MAC checked, passed up");
	frame_msg(&f, HM_MSG_CHECKPOINT, 2, 100, NULL, 0, &s2);
	ROW("CHECKPOINT, MAC checked, passed up");
	frame_msg(&f, HM_MSG_COMMIT, 2, 6, NULL, 0, &s2);
	f.buf[f.hm + HM_OFF_MAC] ^= 1;
	ROW("forged COMMIT, bad MAC");
	frame_msg(&f, HM_MSG_COMMIT, 2, 6, NULL, 0, &c);
	ROW("forged COMMIT, wrong source address");
	frame_msg(&f, HM_MSG_COMMIT, 2, 6, NULL, 0, &s2);
	bpf_map_update_elem(bpf_map__fd(skel->maps.hm_blocklist), &blocked_id, &forever, 0);
	ROW("COMMIT from a blocklisted sender");
	bpf_map_delete_elem(bpf_map__fd(skel->maps.hm_blocklist), &blocked_id);
	mkframe(&f, &s2, 0, 53, op, 32);
	ROW("other UDP traffic (not HyperMesh)");

	if (json) {
		printf("{\"repeat\": %u, \"xdp_ns\": [", repeat);
		for (int i = 0; i < nrows; i++)
			printf("%s{\"case\": \"%s\", \"ns\": %.1f, \"verdict\": \"%s\"}", i ? ", " : "",
			       rows[i].name, rows[i].ns, rows[i].verdict);
		printf("], \"harness_ns\": %.1f, \"map_bytes\": {", harness_ns);
	} else {
		printf("%-48s %8s  %s\n", "hm_xdp, per packet", "ns", "verdict");
		for (int i = 0; i < nrows; i++)
			printf("%-48s %8.1f  %s\n", rows[i].name, rows[i].ns, rows[i].verdict);
		printf("(fresh-slot rows: one run at a time, %.0f ns of harness cost per run "
		       "taken off)\n", harness_ns);
		printf("\n%-48s %12s\n", "BPF map memory (kernel memlock accounting)", "bytes");
	}
	hm_xdp_bpf__destroy(skel);
	/* Maps are sized for HM_MAX_REPLICAS, so n changes nothing; the vote
	 * map follows the watermark window. */
	{
		static const uint32_t ns[] = { 4, 16 }, windows[] = { 200, 1024 };
		bool first = true;

		for (size_t a = 0; a < 2; a++)
			for (size_t b = 0; b < 2; b++) {
				char label[64];

				skel = load(ns[a], windows[b]);
				snprintf(label, sizeof(label), "n=%u, window %u", ns[a], windows[b]);
				if (json)
					printf("%s\"%s\": %llu", first ? "" : ", ", label,
					       maps_total(skel));
				else
					printf("%-48s %12llu\n", label, maps_total(skel));
				first = false;
				hm_xdp_bpf__destroy(skel);
			}
	}
	if (json)
		printf("}}\n");
	return 0;
}
