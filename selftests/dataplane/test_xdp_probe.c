// SPDX-License-Identifier: MIT
/*
 * hm_probe, the BPF pipeline proof: load the skeleton on the running kernel,
 * feed crafted frames through BPF_PROG_TEST_RUN and check the verdict and the
 * exact per-type counters (summed over CPUs).
 *
 * Loading BPF needs root (CAP_BPF + CAP_NET_ADMIN); without it these cases
 * fail, they do not skip.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sodium.h>

#include "common/crypto.h"
#include "hm_probe.skel.h"

#include "hm_test.h"

#define NCOUNTERS (HM_MSG_TYPE_MAX + 2)
#define MAC_FAIL (HM_MSG_TYPE_MAX + 1)
#define PORT HM_DEFAULT_PORT

/* ---- frame builder ------------------------------------------------------ */

struct frame {
	uint8_t buf[512];
	size_t len;
};

static const uint8_t mac_dst[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x01 };
static const uint8_t mac_src[ETH_ALEN] = { 0x02, 0, 0, 0, 0, 0x02 };

static size_t put_eth(uint8_t *p, uint16_t proto)
{
	struct ethhdr eth;

	memcpy(eth.h_dest, mac_dst, ETH_ALEN);
	memcpy(eth.h_source, mac_src, ETH_ALEN);
	eth.h_proto = htons(proto);
	memcpy(p, &eth, sizeof(eth));
	return sizeof(eth);
}

static uint16_t ip_checksum(const void *data, size_t len)
{
	const uint8_t *p = data;
	uint32_t sum = 0;

	for (size_t i = 0; i + 1 < len; i += 2)
		sum += (uint32_t)(p[i] << 8 | p[i + 1]);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return htons((uint16_t)~sum);
}

/* IPv4 header with `opt_words` 32-bit words of options (NOPs). */
static size_t put_ipv4(uint8_t *p, uint8_t proto, size_t l4_len, unsigned opt_words,
		       uint16_t frag_off)
{
	struct iphdr ip;
	size_t hl = sizeof(ip) + 4 * opt_words;

	memset(&ip, 0, sizeof(ip));
	ip.version = 4;
	ip.ihl = (uint8_t)(hl / 4);
	ip.tot_len = htons((uint16_t)(hl + l4_len));
	ip.id = htons(1);
	ip.frag_off = htons(frag_off);
	ip.ttl = 64;
	ip.protocol = proto;
	ip.saddr = htonl(0xc6120001); /* 198.18.0.1 */
	ip.daddr = htonl(0xc6120002);
	memcpy(p, &ip, sizeof(ip));
	memset(p + sizeof(ip), 1 /* NOP */, 4 * opt_words);
	ip.check = ip_checksum(p, hl);
	memcpy(p, &ip, sizeof(ip));
	return hl;
}

static size_t put_ipv6(uint8_t *p, uint8_t nexthdr, size_t l4_len)
{
	struct ipv6hdr ip6;

	memset(&ip6, 0, sizeof(ip6));
	ip6.version = 6;
	ip6.payload_len = htons((uint16_t)l4_len);
	ip6.nexthdr = nexthdr;
	ip6.hop_limit = 64;
	ip6.saddr.s6_addr[0] = 0xfd;
	ip6.saddr.s6_addr[15] = 1;
	ip6.daddr.s6_addr[0] = 0xfd;
	ip6.daddr.s6_addr[15] = 2;
	memcpy(p, &ip6, sizeof(ip6));
	return sizeof(ip6);
}

static size_t put_udp(uint8_t *p, uint16_t dport, size_t payload_len)
{
	struct udphdr udp;

	udp.source = htons(40000);
	udp.dest = htons(dport);
	udp.len = htons((uint16_t)(sizeof(udp) + payload_len));
	udp.check = 0;
	memcpy(p, &udp, sizeof(udp));
	return sizeof(udp);
}

/* A HyperMesh header of the given type (plus `payload` bytes), MAC stamped
 * with `key` when it is not NULL. */
static void make_hm(uint8_t *p, uint8_t type, size_t payload, const uint8_t *key)
{
	struct hm_hdr h;

	memset(&h, 0, sizeof(h));
	h.magic = htonl(HM_MAGIC);
	h.version = HM_TYPE_VERSION(type);
	h.type = type;
	h.sender = htonl(2);
	h.payload_len = htonl((uint32_t)payload);
	h.view = htobe64(1);
	h.seq = htobe64(42);
	for (int i = 0; i < HM_DIGEST_LEN; i++)
		h.digest[i] = (uint8_t)(0x10 + i);
	for (int i = 0; i < HM_SIG_LEN; i++)
		h.sig[i] = (uint8_t)(0x80 + i);
	if (key)
		hm_mac_stamp(&h, key);
	memcpy(p, &h, sizeof(h));
	memset(p + sizeof(h), 0xcc, payload);
}

enum l3 { V4, V4_OPTS, V6 };

/* Ethernet + IP + UDP to `dport` + HyperMesh header (+ payload); `hm_len`
 * cuts the datagram's HyperMesh part short (truncation) when below
 * HM_HDR_LEN + payload. */
static struct frame hm_frame(enum l3 l3, uint16_t dport, uint8_t type, size_t payload,
			     const uint8_t *key, size_t hm_len)
{
	uint8_t hm[HM_HDR_LEN + 64];
	struct frame f;
	size_t n = 0, l4;

	make_hm(hm, type, payload, key);
	if (hm_len > HM_HDR_LEN + payload)
		hm_len = HM_HDR_LEN + payload;
	l4 = sizeof(struct udphdr) + hm_len;

	memset(&f, 0, sizeof(f));
	if (l3 == V6) {
		n += put_eth(f.buf, ETH_P_IPV6);
		n += put_ipv6(f.buf + n, IPPROTO_UDP, l4);
	} else {
		n += put_eth(f.buf, ETH_P_IP);
		n += put_ipv4(f.buf + n, IPPROTO_UDP, l4, l3 == V4_OPTS ? 3 : 0, 0);
	}
	n += put_udp(f.buf + n, dport, hm_len);
	memcpy(f.buf + n, hm, hm_len);
	f.len = n + hm_len;
	return f;
}

static struct frame hm_v4(uint8_t type)
{
	return hm_frame(V4, PORT, type, 0, NULL, SIZE_MAX);
}

static struct frame arp_frame(void)
{
	struct frame f;
	size_t n;

	memset(&f, 0, sizeof(f));
	n = put_eth(f.buf, ETH_P_ARP);
	/* request: htype 1, ptype IPv4, hlen 6, plen 4, op 1, then addresses */
	static const uint8_t arp[28] = { 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 198, 18, 0, 1,
					 0, 0, 0, 0, 0, 0, 198, 18, 0, 2 };
	memcpy(f.buf + n, arp, sizeof(arp));
	f.len = n + sizeof(arp);
	return f;
}

/* Byte offset of the HyperMesh header in a frame from hm_frame(). */
static size_t hm_offset(enum l3 l3)
{
	size_t ip = l3 == V6 ? sizeof(struct ipv6hdr)
			     : sizeof(struct iphdr) + (l3 == V4_OPTS ? 12 : 0);

	return sizeof(struct ethhdr) + ip + sizeof(struct udphdr);
}

/* ---- BPF plumbing ------------------------------------------------------- */

static struct hm_probe_bpf *load_probe(uint16_t port)
{
	struct hm_probe_bpf *skel;
	int err;

	skel = hm_probe_bpf__open();
	if (!skel) {
		HM_FAIL("hm_probe_bpf__open: %s", strerror(errno));
		return NULL;
	}
	skel->rodata->hm_port = port;
	err = hm_probe_bpf__load(skel);
	if (err) {
		HM_FAIL("hm_probe_bpf__load: %s%s", strerror(-err),
			(err == -EPERM || err == -EACCES)
				? " (loading BPF needs root: CAP_BPF and CAP_NET_ADMIN)"
				: "");
		hm_probe_bpf__destroy(skel);
		return NULL;
	}
	return skel;
}

/* Run one frame through the program; true when it ran and said XDP_PASS. */
static bool run(struct hm_probe_bpf *skel, const struct frame *f, const char *what)
{
	uint8_t out[sizeof(f->buf)];
	LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = f->buf, .data_size_in = (__u32)f->len,
		    .data_out = out, .data_size_out = sizeof(out), .repeat = 1);
	int err;

	err = bpf_prog_test_run_opts(bpf_program__fd(skel->progs.hm_probe), &topts);
	if (!ASSERT_OK(err, what))
		return false;
	if (!ASSERT_EQ(topts.retval, XDP_PASS, what))
		return false;
	ASSERT_EQ(topts.data_size_out, f->len, what);
	ASSERT_MEMEQ(out, f->buf, f->len, what);
	return true;
}

/* Counters summed over every possible CPU. */
static bool read_counts(struct hm_probe_bpf *skel, uint64_t counts[NCOUNTERS])
{
	int ncpu = libbpf_num_possible_cpus();
	uint64_t *vals;
	bool ok = true;

	if (!ASSERT_GE(ncpu, 1, "libbpf_num_possible_cpus"))
		return false;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return false;
	for (uint32_t k = 0; k < NCOUNTERS && ok; k++) {
		counts[k] = 0;
		ok = ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(skel->maps.probe_counts), &k, vals),
			       "lookup probe_counts");
		for (int c = 0; ok && c < ncpu; c++)
			counts[k] += vals[c];
	}
	free(vals);
	return ok;
}

static void expect_counts(struct hm_probe_bpf *skel, const uint64_t want[NCOUNTERS],
			  const char *when)
{
	uint64_t got[NCOUNTERS];

	if (!read_counts(skel, got))
		return;
	for (int k = 0; k < NCOUNTERS; k++)
		if (got[k] != want[k])
			HM_FAIL("%s: probe_counts[%d] = %" PRIu64 ", expected %" PRIu64, when, k,
				got[k], want[k]);
}

static bool set_key(struct hm_probe_bpf *skel, const uint8_t key[HM_LINK_KEY_LEN])
{
	uint32_t zero = 0;

	return ASSERT_OK(bpf_map_update_elem(bpf_map__fd(skel->maps.probe_link_key), &zero, key,
					     BPF_ANY),
			 "set probe_link_key");
}

/* ---- cases -------------------------------------------------------------- */

HM_TEST(xdp_probe_counts)
{
	uint64_t want[NCOUNTERS] = { 0 };
	struct hm_probe_bpf *skel = load_probe(PORT);
	struct frame f;

	if (!skel)
		return;

	/* IPv4 + UDP + HyperMesh, every type once */
	for (uint8_t t = 1; t <= HM_MSG_TYPE_MAX; t++) {
		f = hm_v4(t);
		run(skel, &f, "ipv4 hm");
		want[t]++;
	}
	expect_counts(skel, want, "ipv4, every type");

	/* IPv4 with options (IHL = 8), and a payload after the header */
	f = hm_frame(V4_OPTS, PORT, HM_MSG_COMMIT, 40, NULL, SIZE_MAX);
	run(skel, &f, "ipv4 options");
	want[HM_MSG_COMMIT]++;

	/* IPv6 + UDP + HyperMesh, twice */
	f = hm_frame(V6, PORT, HM_MSG_REQUEST, 16, NULL, SIZE_MAX);
	run(skel, &f, "ipv6 hm");
	run(skel, &f, "ipv6 hm again");
	want[HM_MSG_REQUEST] += 2;
	expect_counts(skel, want, "options and ipv6");

	/* Not HyperMesh: other port (v4 and v6), ARP, TCP to the port, a later
	 * IPv4 fragment, a frame cut inside its IP / UDP header.  No counter. */
	f = hm_frame(V4, PORT + 1, HM_MSG_PREPARE, 0, NULL, SIZE_MAX);
	run(skel, &f, "other port v4");
	f = hm_frame(V6, PORT + 1, HM_MSG_PREPARE, 0, NULL, SIZE_MAX);
	run(skel, &f, "other port v6");
	f = arp_frame();
	run(skel, &f, "arp");
	f = hm_v4(HM_MSG_PREPARE);
	f.buf[sizeof(struct ethhdr) + offsetof(struct iphdr, protocol)] = IPPROTO_TCP;
	run(skel, &f, "tcp");
	f = hm_v4(HM_MSG_PREPARE);
	f.buf[sizeof(struct ethhdr) + offsetof(struct iphdr, frag_off)] = 0x00;
	f.buf[sizeof(struct ethhdr) + offsetof(struct iphdr, frag_off) + 1] = 0x10;
	run(skel, &f, "later fragment");
	f = hm_v4(HM_MSG_PREPARE);
	f.len = sizeof(struct ethhdr) + 10;
	run(skel, &f, "cut in ip header");
	f = hm_frame(V6, PORT, HM_MSG_PREPARE, 0, NULL, SIZE_MAX);
	f.len = sizeof(struct ethhdr) + sizeof(struct ipv6hdr) + 4;
	run(skel, &f, "cut in udp header");
	expect_counts(skel, want, "non-HyperMesh frames");

	/* Malformed HyperMesh datagrams: counter 0. */
	f = hm_frame(V4, PORT, HM_MSG_PREPARE, 0, NULL, 60);
	run(skel, &f, "truncated v4 (60 of 136 header bytes)");
	want[0]++;
	f = hm_frame(V6, PORT, HM_MSG_PREPARE, 0, NULL, HM_HDR_LEN - 1);
	run(skel, &f, "truncated v6 (135 of 136 header bytes)");
	want[0]++;
	f = hm_frame(V4, PORT, HM_MSG_PREPARE, 0, NULL, 0);
	run(skel, &f, "empty datagram");
	want[0]++;
	f = hm_v4(HM_MSG_PREPARE);
	f.buf[hm_offset(V4) + 3] ^= 0xff; /* magic */
	run(skel, &f, "bad magic");
	want[0]++;
	f = hm_v4(HM_MSG_PREPARE);
	f.buf[hm_offset(V4) + 4] = HM_VERSION + 1;
	run(skel, &f, "bad version");
	want[0]++;
	f = hm_v4(0);
	run(skel, &f, "type 0");
	want[0]++;
	f = hm_v4(HM_MSG_TYPE_MAX + 1);
	run(skel, &f, "type max+1");
	want[0]++;
	f = hm_v4(0xff);
	run(skel, &f, "type 255");
	want[0]++;
	expect_counts(skel, want, "malformed");

	/* No key set: a garbage MAC is not checked. */
	f = hm_v4(HM_MSG_PREPARE);
	f.buf[hm_offset(V4) + HM_OFF_MAC] ^= 0x01;
	run(skel, &f, "no key, bad mac");
	want[HM_MSG_PREPARE]++;
	expect_counts(skel, want, "no key set");

	hm_probe_bpf__destroy(skel);
}

HM_TEST(xdp_probe_mac)
{
	uint64_t want[NCOUNTERS] = { 0 };
	uint8_t key[HM_LINK_KEY_LEN], other[HM_LINK_KEY_LEN], zero[HM_LINK_KEY_LEN] = { 0 };
	struct hm_probe_bpf *skel;
	struct frame f;

	if (!ASSERT_OK(hm_crypto_init(), "hm_crypto_init"))
		return;
	skel = load_probe(PORT);
	if (!skel)
		return;
	randombytes_buf(key, sizeof(key));
	memcpy(other, key, sizeof(other));
	other[0] ^= 0x80;
	if (!set_key(skel, key))
		goto out;

	/* Good MACs, v4, v4 with options and v6, with and without payload. */
	f = hm_frame(V4, PORT, HM_MSG_PREPARE, 0, key, SIZE_MAX);
	run(skel, &f, "good mac v4");
	want[HM_MSG_PREPARE]++;
	f = hm_frame(V4_OPTS, PORT, HM_MSG_COMMIT, 32, key, SIZE_MAX);
	run(skel, &f, "good mac v4 options");
	want[HM_MSG_COMMIT]++;
	f = hm_frame(V6, PORT, HM_MSG_PRE_PREPARE, 48, key, SIZE_MAX);
	run(skel, &f, "good mac v6");
	want[HM_MSG_PRE_PREPARE]++;
	/* The payload is not MACed: changing it keeps the MAC good. */
	f.buf[hm_offset(V6) + HM_HDR_LEN + 5] ^= 0xff;
	run(skel, &f, "payload changed");
	want[HM_MSG_PRE_PREPARE]++;
	expect_counts(skel, want, "good MACs");

	/* Bad MACs: a flipped MAC bit, a flipped bit in the MACed header (one
	 * in each of a few fields, and the last MACed byte), the wrong key. */
	static const size_t flips[] = { HM_OFF_MAC * 8 + 0,  HM_OFF_MAC * 8 + 63,
					HM_OFF_SENDER * 8 + 7, HM_OFF_SEQ * 8 + 1,
					HM_OFF_DIGEST * 8 + 100, HM_OFF_SIG * 8 + 511,
					(HM_MACED_LEN - 1) * 8 + 7 };
	for (size_t i = 0; i < sizeof(flips) / sizeof(flips[0]); i++) {
		f = hm_frame(i % 2 ? V6 : V4, PORT, HM_MSG_COMMIT, 8, key, SIZE_MAX);
		f.buf[hm_offset(i % 2 ? V6 : V4) + flips[i] / 8] ^= (uint8_t)(1u << (flips[i] % 8));
		run(skel, &f, "flipped bit");
		want[HM_MSG_COMMIT]++;
		want[MAC_FAIL]++;
	}
	f = hm_frame(V4, PORT, HM_MSG_REQUEST, 0, other, SIZE_MAX);
	run(skel, &f, "wrong key");
	want[HM_MSG_REQUEST]++;
	want[MAC_FAIL]++;
	f = hm_frame(V4, PORT, HM_MSG_REQUEST, 0, NULL, SIZE_MAX);
	run(skel, &f, "no mac");
	want[HM_MSG_REQUEST]++;
	want[MAC_FAIL]++;
	expect_counts(skel, want, "bad MACs");

	/* Malformed datagrams are not MAC-checked. */
	f = hm_frame(V4, PORT, HM_MSG_REQUEST, 0, key, 100);
	run(skel, &f, "truncated");
	want[0]++;
	expect_counts(skel, want, "truncated, key set");

	/* A zero key switches the check off again. */
	if (set_key(skel, zero)) {
		f = hm_frame(V4, PORT, HM_MSG_REQUEST, 0, other, SIZE_MAX);
		run(skel, &f, "zero key");
		want[HM_MSG_REQUEST]++;
		expect_counts(skel, want, "zero key");
	}
out:
	hm_probe_bpf__destroy(skel);
}

/* hm_port is read-only data set before load. */
HM_TEST(xdp_probe_port)
{
	uint64_t want[NCOUNTERS] = { 0 };
	struct hm_probe_bpf *skel = load_probe(7100);
	struct frame f;

	if (!skel)
		return;
	f = hm_frame(V4, PORT, HM_MSG_PREPARE, 0, NULL, SIZE_MAX);
	run(skel, &f, "default port, not configured");
	f = hm_frame(V6, 7100, HM_MSG_PREPARE, 0, NULL, SIZE_MAX);
	run(skel, &f, "configured port");
	want[HM_MSG_PREPARE]++;
	expect_counts(skel, want, "port 7100");
	hm_probe_bpf__destroy(skel);
}
