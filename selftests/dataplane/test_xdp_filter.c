// SPDX-License-Identifier: MIT
/*
 * hm_xdp, the XDP pre-filter: load the skeleton on the running kernel, fill
 * its maps with a real configuration (Ed25519 identities, crypto_kx link
 * keys), run crafted Ethernet frames through BPF_PROG_TEST_RUN and check the
 * verdict and the exact changes of node_stats.  A userspace reference
 * (ref_classify, built on hm_msg_decode, hm_mac_verify and
 * hm_sig_is_canonical) must agree with every hand-written expectation, and
 * with the program on a million random and mutated frames.
 *
 * Truncation (documented in kern/hm_xdp.bpf.c): a frame cut before the end of
 * its UDP header is not HyperMesh and passes uncounted; a frame cut anywhere
 * after it still claims, in its IP and UDP headers, more bytes than it holds,
 * and is dropped as bad_length; a datagram whose IP and UDP lengths are
 * consistent but shorter than 136 bytes is truncated.  Frames shorter than an
 * Ethernet header never reach the program: the kernel's test run refuses them
 * (EINVAL).
 *
 * Loading BPF needs root (CAP_BPF + CAP_NET_ADMIN); without it these cases
 * fail, they do not skip.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <time.h>

#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/udp.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sodium.h>

#include "common/crypto.h"
#include "common/wire.h"
#include "hm_maps.h"
#include "hm_xdp.skel.h"

#include "hm_frames.h"
#include "hm_test.h"
#include "hm_xdp_test.h"

#define PORT HM_DEFAULT_PORT
#define N 7
#define F 2
#define SELF 1
#define VIEW 3
#define LOW 10
#define HIGH 20
#define MAXMSG 1024
#define NOT_HM (-1)
#define ACCEPT HM_DROP_REASON_MAX
#define CLIENTS HM_XDP_STATS_CLIENTS
#define UNKNOWN HM_XDP_STATS_UNKNOWN

/* ---- identities --------------------------------------------------------- */

/* Every sender the tests use: members 0..N-1 (1 is us, 5 is not a valid
 * member, 3 lives on IPv6), clients, and strangers. */
struct peer {
	uint32_t id;
	bool member, client;
	struct hm_keypair kp;
	uint8_t tx[HM_LINK_KEY_LEN]; /* the sender's key toward us */
	uint8_t rx[HM_LINK_KEY_LEN]; /* our key for it (must equal tx) */
	int family;
	uint8_t addr[16];
	uint16_t port; /* host order */
};

static const uint32_t peer_ids[] = { 0, 1, 2, 3, 4, 5, 6, 100, 101, 102, 50, 60 };
#define NPEERS (sizeof(peer_ids) / sizeof(peer_ids[0]))
static struct peer peers[NPEERS];
static bool keys_ready;

static struct peer *peer(uint32_t id)
{
	for (size_t i = 0; i < NPEERS; i++)
		if (peers[i].id == id)
			return &peers[i];
	return NULL;
}

static bool init_keys(void)
{
	struct peer *self;

	if (keys_ready)
		return true;
	if (!ASSERT_OK(hm_crypto_init(), "hm_crypto_init"))
		return false;
	for (size_t i = 0; i < NPEERS; i++) {
		struct peer *p = &peers[i];

		memset(p, 0, sizeof(*p));
		p->id = peer_ids[i];
		p->member = p->id < N && p->id != SELF && p->id != 5;
		p->client = p->id >= 100 && p->id <= 102;
		if (!ASSERT_OK(hm_keypair_generate(&p->kp), "hm_keypair_generate"))
			return false;
		p->family = p->id == 3 ? AF_INET6 : AF_INET;
		if (p->family == AF_INET6) {
			p->addr[0] = 0xfd;
			p->addr[15] = (uint8_t)(0x10 + p->id);
		} else {
			p->addr[0] = 198; /* 198.18.0.0/15, the test range */
			p->addr[1] = 18;
			p->addr[3] = (uint8_t)(p->id < N ? 10 + p->id : 200);
		}
		p->port = (uint16_t)(7100 + (p->id < N ? p->id : 50));
	}
	self = peer(SELF);
	for (size_t i = 0; i < NPEERS; i++) {
		struct peer *p = &peers[i];
		struct hm_link_keys ours, theirs;

		if (p->id == SELF || !(p->member || p->client)) {
			randombytes_buf(p->tx, sizeof(p->tx)); /* nobody knows it */
			continue;
		}
		if (!ASSERT_OK(hm_link_keys_derive(SELF, &self->kp, p->id, p->kp.pk, &ours),
			       "derive (receiver side)") ||
		    !ASSERT_OK(hm_link_keys_derive(p->id, &p->kp, SELF, self->kp.pk, &theirs),
			       "derive (sender side)"))
			return false;
		memcpy(p->rx, ours.rx, HM_LINK_KEY_LEN);
		memcpy(p->tx, theirs.tx, HM_LINK_KEY_LEN);
		if (!ASSERT_MEMEQ(p->rx, p->tx, HM_LINK_KEY_LEN, "link key sender->self"))
			return false;
	}
	keys_ready = true;
	return true;
}

/* The key a sender's messages are stamped with (strangers: a key nobody
 * has configured). */
static const uint8_t *tx_key(uint32_t id)
{
	static uint8_t junk[HM_LINK_KEY_LEN] = { 0x5a };
	struct peer *p = peer(id);

	return p ? p->tx : junk;
}

/* ---- the reference -------------------------------------------------------- */

/* What the maps hold, kept in step by the helpers that write the maps. */
struct ref_cfg {
	struct hm_xdp_config c;
	struct hm_xdp_member m[HM_MAX_REPLICAS];
	struct { uint32_t id; uint8_t key[16]; } cli[8];
	int ncli;
	struct { uint32_t id; uint64_t expiry; } blk[8];
	int nblk;
};
static struct ref_cfg ref;

static const uint8_t *ref_client_key(uint32_t id)
{
	for (int i = 0; i < ref.ncli; i++)
		if (ref.cli[i].id == id)
			return ref.cli[i].key;
	return NULL;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static bool ref_blocked(uint32_t id)
{
	for (int i = 0; i < ref.nblk; i++)
		if (ref.blk[i].id == id)
			return ref.blk[i].expiry == 0 || now_ns() < ref.blk[i].expiry;
	return false;
}

static uint32_t ref_index(uint32_t sender)
{
	if (sender < ref.c.n && sender < HM_MAX_REPLICAS)
		return sender;
	return ref_client_key(sender) ? CLIENTS : UNKNOWN;
}

static bool from_replica_only(uint8_t t)
{
	/* every type but the client's request and the replica's reply */
	return t != HM_MSG_REQUEST && t != HM_MSG_REPLY;
}

static bool normal_case(uint8_t t)
{
	return t == HM_MSG_PRE_PREPARE || t == HM_MSG_PREPARE || t == HM_MSG_COMMIT;
}

/* The view of the last datagram ref_classify() found bad_view (for the
 * max_view_seen model). */
static uint64_t ref_view;

/* The pre-filter on a decoded datagram: authenticate() and window_ok() of
 * user/replica/node.c, then the signature's encoding.  No rate limit (the
 * differential runs with it off). */
static int ref_check_msg(const struct hm_msg *m, int family, const uint8_t saddr[16],
			 uint16_t sport_be)
{
	const uint8_t *key;

	if (m->sender < ref.c.n && m->sender != ref.c.self_id && m->sender < HM_MAX_REPLICAS &&
	    ref.m[m->sender].valid) {
		const struct hm_xdp_member *mb = &ref.m[m->sender];

		if ((int)mb->family != family || memcmp(mb->addr, saddr, 16) != 0 ||
		    mb->port != sport_be)
			return HM_DROP_BAD_ADDRESS;
		if (!hm_mac_verify(m->hdr, mb->rx_key))
			return HM_DROP_BAD_MAC;
		if (!from_replica_only(m->type))
			return HM_DROP_MALFORMED;
	} else {
		key = ref_client_key(m->sender);
		if (!key)
			return HM_DROP_UNKNOWN_SENDER;
		if (!hm_mac_verify(m->hdr, key))
			return HM_DROP_BAD_MAC;
		if (m->type != HM_MSG_REQUEST)
			return HM_DROP_MALFORMED;
	}
	if (normal_case(m->type)) {
		if (m->view != ref.c.view) {
			ref_view = m->view;
			return HM_DROP_BAD_VIEW;
		}
		if (m->seq <= ref.c.low || m->seq > ref.c.high)
			return HM_DROP_OUT_OF_WINDOW;
	}
	if (!hm_sig_is_canonical(m->hdr->sig))
		return HM_DROP_NONCANONICAL_SIG;
	return ACCEPT;
}

/* NOT_HM, ACCEPT or a drop reason for one frame, and the node_stats index
 * it is counted under. */
static int ref_classify(const uint8_t *f, size_t len, uint32_t *idx)
{
	uint8_t saddr[16] = { 0 };
	size_t l3 = ETH_HLEN, l4;
	long ip_l4, udp_len, frame_l4, seen;
	bool mf = false, have_sender = false;
	uint32_t sender = 0;
	uint16_t proto, sport_be;
	int family, why = ACCEPT;
	enum hm_drop_reason dr;
	struct hm_msg m;

	*idx = UNKNOWN;
	ref_view = 0;
	if (len < ETH_HLEN)
		return NOT_HM;
	proto = hm_get_be16(f + 12);
	if (proto == ETH_P_8021Q) {
		if (len < ETH_HLEN + 4)
			return NOT_HM;
		proto = hm_get_be16(f + 16);
		l3 += 4;
	}
	if (proto == ETH_P_IP) {
		size_t ihl;
		uint16_t frag;

		if (len < l3 + 20)
			return NOT_HM;
		ihl = (size_t)(f[l3] & 15) * 4;
		if (f[l3] >> 4 != 4 || ihl < 20 || f[l3 + 9] != IPPROTO_UDP)
			return NOT_HM;
		frag = hm_get_be16(f + l3 + 6);
		if (frag & 0x1fff)
			return NOT_HM;
		mf = frag & 0x2000;
		ip_l4 = (long)hm_get_be16(f + l3 + 2) - (long)ihl;
		memcpy(saddr, f + l3 + 12, 4);
		family = AF_INET;
		l4 = l3 + ihl;
	} else if (proto == ETH_P_IPV6) {
		if (len < l3 + 40)
			return NOT_HM;
		if (f[l3] >> 4 != 6 || f[l3 + 6] != IPPROTO_UDP)
			return NOT_HM;
		ip_l4 = hm_get_be16(f + l3 + 4);
		memcpy(saddr, f + l3 + 8, 16);
		family = AF_INET6;
		l4 = l3 + 40;
	} else {
		return NOT_HM;
	}
	if (len < l4 + 8 || hm_get_be16(f + l4 + 2) != ref.c.port)
		return NOT_HM;
	memcpy(&sport_be, f + l4, 2);
	udp_len = hm_get_be16(f + l4 + 4);
	frame_l4 = (long)(len - l4);

	/* Step 0: the blocklist, once the sender is there. */
	seen = frame_l4 < ip_l4 ? frame_l4 : ip_l4;
	seen = seen < udp_len ? seen : udp_len;
	if (seen - 8 >= HM_OFF_SENDER + 4) {
		have_sender = true;
		sender = hm_get_be32(f + l4 + 8 + HM_OFF_SENDER);
		*idx = ref_index(sender);
		if (ref_blocked(sender))
			return HM_DROP_BLOCKED;
	}
	/* IP and UDP lengths, then the fixed header in this packet. */
	if (udp_len < 8 || ip_l4 > frame_l4 || (mf ? udp_len < ip_l4 : udp_len != ip_l4))
		return HM_DROP_BAD_LENGTH;
	if (ip_l4 - 8 < HM_HDR_LEN || !have_sender)
		return HM_DROP_TRUNCATED;
	/* Step 1: hm_msg_decode on the datagram (UDP length - 8 bytes; of a
	 * first fragment only the header is here, and only it is read). */
	if (hm_msg_decode(f + l4 + 8, (size_t)(udp_len - 8), ref.c.max_message_size, &m, &dr) < 0)
		return (int)dr;
	why = ref_check_msg(&m, family, saddr, sport_be);
	return why;
}

/* ---- frames -------------------------------------------------------------- */

static struct src src_of(uint32_t id)
{
	struct peer *p = peer(id);
	struct src s = { .family = AF_INET, .addr = { 198, 18, 9, 9 }, .port = 5555 };

	if (p && (p->member || p->id == SELF)) {
		s.family = p->family;
		memcpy(s.addr, p->addr, 16);
		s.port = p->port;
	}
	return s;
}

/* A signed message from `sender`, MAC stamped with its link key. */
static void mkmsg_flags(struct dgram *d, uint8_t type, uint16_t flags, uint32_t sender,
			uint64_t view, uint64_t seq, uint32_t plen)
{
	uint8_t payload[FRAME_MAX];
	struct peer *p = peer(sender);

	for (uint32_t i = 0; i < plen; i++)
		payload[i] = (uint8_t)(i * 7 + 1);
	d->len = hm_msg_build_flags(d->b, sizeof(d->b), type, flags, sender, view, seq, NULL,
				    payload, plen, p ? &p->kp : &peers[0].kp);
	hm_mac_stamp((struct hm_hdr *)d->b, tx_key(sender));
}

static void mkmsg(struct dgram *d, uint8_t type, uint32_t sender, uint64_t view, uint64_t seq,
		  uint32_t plen)
{
	mkmsg_flags(d, type, 0, sender, view, seq, plen);
}

static void restamp(struct dgram *d)
{
	hm_mac_stamp((struct hm_hdr *)d->b, tx_key(hm_get_be32(d->b + HM_OFF_SENDER)));
}

/* A frame from the sender's own address (clients: anywhere). */
static void frame_of(struct frame *f, const struct dgram *d, unsigned fl)
{
	struct src s = src_of(hm_get_be32(d->b + HM_OFF_SENDER));

	mkframe(f, &s, fl, PORT, d->b, d->len);
}

static void set_ip_l4_len(struct frame *f, long v)
{
	if (f->v6)
		put16(f->buf + f->l3 + 4, (uint16_t)v);
	else
		put16(f->buf + f->l3 + 2, (uint16_t)(v + (long)(f->l4 - f->l3)));
}

static void set_udp_len(struct frame *f, long v)
{
	put16(f->buf + f->l4 + 4, (uint16_t)v);
}

/* ---- BPF plumbing ------------------------------------------------------- */

static int stats_fd, prog_fd;

static bool write_config(struct hm_xdp_bpf *skel)
{
	uint32_t zero = 0;

	return ASSERT_OK(bpf_map_update_elem(bpf_map__fd(skel->maps.hm_config), &zero, &ref.c, 0),
			 "update hm_config");
}

static bool block(struct hm_xdp_bpf *skel, uint32_t id, uint64_t expiry)
{
	int i;

	for (i = 0; i < ref.nblk && ref.blk[i].id != id; i++)
		;
	if (i == ref.nblk)
		ref.nblk++;
	ref.blk[i].id = id;
	ref.blk[i].expiry = expiry;
	return ASSERT_OK(bpf_map_update_elem(bpf_map__fd(skel->maps.hm_blocklist), &id, &expiry, 0),
			 "update hm_blocklist");
}

static bool unblock(struct hm_xdp_bpf *skel, uint32_t id)
{
	for (int i = 0; i < ref.nblk; i++)
		if (ref.blk[i].id == id)
			ref.blk[i] = ref.blk[--ref.nblk];
	return ASSERT_OK(bpf_map_delete_elem(bpf_map__fd(skel->maps.hm_blocklist), &id),
			 "delete hm_blocklist");
}

/* Load the program and fill its maps: n = 7, f = 2, we are replica 1, view
 * 3, window (10, 20], max_message_size 1024, no rate limit. */
static struct hm_xdp_bpf *load(void)
{
	struct hm_xdp_bpf *skel;

	if (!init_keys() || !(skel = hm_xdp_open_load()))
		return NULL;
	stats_fd = bpf_map__fd(skel->maps.node_stats);
	prog_fd = bpf_program__fd(skel->progs.hm_xdp);

	memset(&ref, 0, sizeof(ref));
	ref.c = (struct hm_xdp_config){ .port = PORT, .n = N, .f = F, .self_id = SELF, .view = VIEW,
					.low = LOW, .high = HIGH, .max_message_size = MAXMSG };
	for (size_t i = 0; i < NPEERS; i++) {
		struct peer *p = &peers[i];

		if (p->id < N) {
			struct hm_xdp_member *m = &ref.m[p->id];

			m->valid = p->id != 5;
			m->family = p->family == AF_INET6 ? HM_AF_INET6 : HM_AF_INET;
			memcpy(m->addr, p->addr, 16);
			m->port = htons(p->port);
			memcpy(m->rx_key, p->rx, 16); /* self: unused */
			if (!ASSERT_OK(bpf_map_update_elem(bpf_map__fd(skel->maps.hm_members),
							   &p->id, m, 0), "update hm_members"))
				goto fail;
		} else if (p->client) {
			struct hm_xdp_client c;

			memcpy(c.rx_key, p->rx, 16);
			ref.cli[ref.ncli].id = p->id;
			memcpy(ref.cli[ref.ncli++].key, p->rx, 16);
			if (!ASSERT_OK(bpf_map_update_elem(bpf_map__fd(skel->maps.hm_clients), &p->id,
							   &c, 0), "update hm_clients"))
				goto fail;
		}
	}
	if (!write_config(skel))
		goto fail;
	return skel;
fail:
	hm_xdp_bpf__destroy(skel);
	return NULL;
}

/* Run one frame; the XDP verdict, or -errno when the run itself failed. */
static int run_frame(const struct frame *f, uint8_t *out, size_t out_cap)
{
	LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = f->buf, .data_size_in = (__u32)f->len,
		    .data_out = out, .data_size_out = (__u32)out_cap, .repeat = 1);
	int err = bpf_prog_test_run_opts(prog_fd, &topts);

	if (err)
		return err < 0 ? err : -EIO;
	if (out && topts.data_size_out != f->len)
		return -EMSGSIZE;
	return (int)topts.retval;
}

static bool read_stats(uint32_t idx, struct hm_node_stats *st)
{
	return bpf_map_lookup_elem(stats_fd, &idx, st) == 0;
}

static bool read_all(struct hm_node_stats st[HM_XDP_NSTATS])
{
	for (uint32_t i = 0; i < HM_XDP_NSTATS; i++)
		if (!ASSERT_TRUE(read_stats(i, &st[i]), "lookup node_stats"))
			return false;
	return true;
}

/* Equal but for last_activity_timestamp. */
static bool same_counts(const struct hm_node_stats *a, const struct hm_node_stats *b)
{
	struct hm_node_stats x = *a, y = *b;

	x.last_activity_timestamp = y.last_activity_timestamp = 0;
	return memcmp(&x, &y, sizeof(x)) == 0;
}

static const char *why_name(int why)
{
	if (why == NOT_HM)
		return "not-hypermesh";
	if (why == ACCEPT)
		return "accept";
	return hm_drop_reason_name((unsigned)why);
}

/*
 * Run `f` and check: the verdict; the frame untouched when it passes; for a
 * HyperMesh datagram exactly the counters of node_stats[idx] that `want`
 * moves, and no other entry; for anything else no counter at all.  The
 * reference must agree (except on rate limiting, which it does not model).
 */
static bool expect(const struct frame *f, int want, uint32_t idx, const char *what)
{
	struct hm_node_stats before[HM_XDP_NSTATS], after[HM_XDP_NSTATS];
	static uint8_t out[FRAME_MAX + 256];
	uint32_t ridx;
	int r, verdict, failed = hm_test_failed_asserts;

	r = ref_classify(f->buf, f->len, &ridx);
	if (want != HM_DROP_RATE_LIMITED && !ref.c.rate_limit_pps) {
		if (r != want || (want != NOT_HM && ridx != idx))
			HM_FAIL("%s: reference says %s at [%u], expected %s at [%u]", what,
				why_name(r), ridx, why_name(want), idx);
	}
	if (!read_all(before))
		return false;
	verdict = run_frame(f, out, sizeof(out));
	if (!read_all(after))
		return false;
	if (verdict != ((want == NOT_HM || want == ACCEPT) ? XDP_PASS : XDP_DROP))
		HM_FAIL("%s: verdict %d, expected %s (%s)", what, verdict,
			(want == NOT_HM || want == ACCEPT) ? "XDP_PASS" : "XDP_DROP", why_name(want));
	if (verdict == XDP_PASS)
		ASSERT_MEMEQ(out, f->buf, f->len, what);
	if (want != NOT_HM) {
		model_count(&before[idx], want);
		model_view(&before[idx], idx, want, ref_view, ref.c.view);
	}
	for (uint32_t i = 0; i < HM_XDP_NSTATS; i++) {
		if (!same_counts(&before[i], &after[i])) {
			HM_FAIL("%s: node_stats[%u] not as expected for %s: total %llu drops[%s] %llu "
				"faults %u", what, i, why_name(want),
				(unsigned long long)after[i].total_messages,
				want >= 0 && want < ACCEPT ? why_name(want) : "-",
				want >= 0 && want < ACCEPT
					? (unsigned long long)hm_drops(after[i].drops)[want] : 0ull,
				after[i].consecutive_faults);
			for (int k = 0; k < HM_DROP_REASON_MAX; k++)
				if (hm_drops(after[i].drops)[k] != hm_drops(before[i].drops)[k])
					fprintf(stderr, "    drops[%s]: %llu (model %llu)\n",
						why_name(k), (unsigned long long)hm_drops(after[i].drops)[k],
						(unsigned long long)hm_drops(before[i].drops)[k]);
		}
		if (want == ACCEPT && i == idx &&
		    after[i].last_activity_timestamp <= before[i].last_activity_timestamp)
			HM_FAIL("%s: last_activity_timestamp did not move", what);
		if (!(want == ACCEPT && i == idx) &&
		    after[i].last_activity_timestamp != before[i].last_activity_timestamp)
			HM_FAIL("%s: node_stats[%u].last_activity_timestamp moved", what, i);
	}
	return failed == hm_test_failed_asserts;
}

/* Shorthands: a message of `type` from `sender`, in view and window. */
static void good(struct dgram *d, uint8_t type, uint32_t sender)
{
	mkmsg(d, type, sender, VIEW, LOW + 1, type == HM_MSG_PRE_PREPARE ? 24 : 0);
}

static void expect_msg(const struct dgram *d, unsigned fl, int want, uint32_t idx,
		       const char *what)
{
	struct frame f;

	frame_of(&f, d, fl);
	expect(&f, want, idx, what);
}

/* ---- cases -------------------------------------------------------------- */

HM_TEST(xdp_filter_loads)
{
	struct hm_xdp_bpf *skel = load();
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	if (!skel)
		return;
	memset(&info, 0, sizeof(info));
	if (ASSERT_OK(bpf_obj_get_info_by_fd(prog_fd, &info, &len), "prog info"))
		printf("     hm_xdp: %u instructions verified, %u translated\n",
		       info.verified_insns, info.xlated_prog_len / 8);
	/* BTF on every map, so bpftool prints named fields. */
	ASSERT_NEQ(bpf_map__btf_value_type_id(skel->maps.node_stats), 0, "node_stats BTF");
	ASSERT_NEQ(bpf_map__btf_value_type_id(skel->maps.hm_config), 0, "hm_config BTF");
	ASSERT_NEQ(bpf_map__btf_value_type_id(skel->maps.hm_members), 0, "hm_members BTF");
	ASSERT_NEQ(bpf_map__btf_value_type_id(skel->maps.hm_clients), 0, "hm_clients BTF");
	ASSERT_NEQ(bpf_map__btf_value_type_id(skel->maps.hm_blocklist), 0, "hm_blocklist BTF");
	ASSERT_EQ(bpf_map__max_entries(skel->maps.node_stats), HM_MAX_REPLICAS + 2, "entries");
	hm_xdp_bpf__destroy(skel);
}

HM_TEST(xdp_filter_accepts)
{
	struct hm_xdp_bpf *skel = load();
	struct dgram d;

	if (!skel)
		return;
	good(&d, HM_MSG_PREPARE, 0);
	expect_msg(&d, 0, ACCEPT, 0, "prepare v4");
	expect_msg(&d, FL_OPTS, ACCEPT, 0, "prepare v4 options");
	expect_msg(&d, FL_VLAN, ACCEPT, 0, "prepare v4 vlan");
	expect_msg(&d, FL_VLAN | FL_OPTS, ACCEPT, 0, "prepare v4 vlan options");
	good(&d, HM_MSG_COMMIT, 3);
	expect_msg(&d, 0, ACCEPT, 3, "commit v6");
	expect_msg(&d, FL_VLAN, ACCEPT, 3, "commit v6 vlan");
	good(&d, HM_MSG_PRE_PREPARE, 0);
	expect_msg(&d, 0, ACCEPT, 0, "pre-prepare with payload");
	mkmsg(&d, HM_MSG_CHECKPOINT, 2, VIEW + 7, 1000, 0);
	expect_msg(&d, 0, ACCEPT, 2, "checkpoint: no view or window check");
	mkmsg(&d, HM_MSG_STATUS, 4, 0, 0, 0);
	expect_msg(&d, 0, ACCEPT, 4, "status");
	mkmsg_flags(&d, HM_MSG_COMMIT, HM_FLAG_RETRANSMIT, 6, VIEW, HIGH, 0);
	expect_msg(&d, 0, ACCEPT, 6, "retransmit flag");
	mkmsg(&d, HM_MSG_REQUEST, 100, 0, 12345, 40);
	expect_msg(&d, 0, ACCEPT, CLIENTS, "request v4");
	{
		struct src s = { .family = AF_INET6, .addr = { 0x20, 0x01, [15] = 9 }, .port = 1 };
		struct frame f;

		mkframe(&f, &s, FL_VLAN, PORT, d.b, d.len);
		expect(&f, ACCEPT, CLIENTS, "request v6 vlan, any address");
	}
	/* Ethernet padding after the IP packet is not part of it. */
	{
		struct frame f;

		good(&d, HM_MSG_PREPARE, 2);
		frame_of(&f, &d, 0);
		memset(f.buf + f.len, 0, 32);
		f.len += 32;
		expect(&f, ACCEPT, 2, "padded frame");
	}
	hm_xdp_bpf__destroy(skel);
}

/* Counters: consecutive_faults resets on an accepted message,
 * reputation_score keeps the controller's value. */
HM_TEST(xdp_filter_counters)
{
	struct hm_xdp_bpf *skel = load();
	struct hm_node_stats st;
	struct dgram d;
	uint32_t idx = 0;

	if (!skel)
		return;
	memset(&st, 0, sizeof(st));
	st.reputation_score = 0x12345;
	ASSERT_OK(bpf_map_update_elem(stats_fd, &idx, &st, 0), "seed reputation");
	good(&d, HM_MSG_PREPARE, 0);
	d.b[HM_OFF_MAC] ^= 1;
	for (int i = 0; i < 3; i++)
		expect_msg(&d, 0, HM_DROP_BAD_MAC, 0, "bad mac");
	ASSERT_TRUE(read_stats(0, &st), "read");
	ASSERT_EQ(st.consecutive_faults, 3, "three faults");
	ASSERT_EQ(st.total_messages, 3, "three messages");
	d.b[HM_OFF_MAC] ^= 1;
	expect_msg(&d, 0, ACCEPT, 0, "good again");
	ASSERT_TRUE(read_stats(0, &st), "read");
	ASSERT_EQ(st.consecutive_faults, 0, "reset");
	ASSERT_EQ(st.total_messages, 4, "four messages");
	ASSERT_EQ(st.reputation_score, 0x12345, "reputation untouched");
	ASSERT_NEQ(st.last_activity_timestamp, 0, "timestamp");
	hm_xdp_bpf__destroy(skel);
}

HM_TEST(xdp_filter_blocklist)
{
	struct hm_xdp_bpf *skel = load();
	struct dgram d;
	struct frame f;

	if (!skel)
		return;
	good(&d, HM_MSG_PREPARE, 2);
	block(skel, 2, 0);
	expect_msg(&d, 0, HM_DROP_BLOCKED, 2, "blocked forever");
	d.b[0] ^= 0xff; /* before anything else: even a bad magic counts as blocked */
	expect_msg(&d, 0, HM_DROP_BLOCKED, 2, "blocked, bad magic");
	frame_of(&f, &d, 0);
	f.len = f.hm + HM_OFF_SENDER + 4;
	set_ip_l4_len(&f, 8 + HM_OFF_SENDER + 4);
	set_udp_len(&f, 8 + HM_OFF_SENDER + 4);
	expect(&f, HM_DROP_BLOCKED, 2, "blocked, 12-byte datagram");
	f.len--;
	set_ip_l4_len(&f, 8 + HM_OFF_SENDER + 3);
	set_udp_len(&f, 8 + HM_OFF_SENDER + 3);
	expect(&f, HM_DROP_TRUNCATED, UNKNOWN, "11 bytes: no sender yet");
	d.b[0] ^= 0xff;
	block(skel, 2, now_ns() + 3600ull * 1000000000ull);
	expect_msg(&d, 0, HM_DROP_BLOCKED, 2, "blocked for an hour");
	block(skel, 2, 1);
	expect_msg(&d, 0, ACCEPT, 2, "blocked, but expired");
	unblock(skel, 2);
	expect_msg(&d, 0, ACCEPT, 2, "unblocked");
	/* Any id can be blocked: clients and strangers too. */
	block(skel, 100, 0);
	mkmsg(&d, HM_MSG_REQUEST, 100, 0, 1, 0);
	expect_msg(&d, 0, HM_DROP_BLOCKED, CLIENTS, "blocked client");
	block(skel, 77, 0);
	mkmsg(&d, HM_MSG_REQUEST, 77, 0, 1, 0);
	expect_msg(&d, 0, HM_DROP_BLOCKED, UNKNOWN, "blocked stranger");
	hm_xdp_bpf__destroy(skel);
}

HM_TEST(xdp_filter_framing)
{
	struct hm_xdp_bpf *skel = load();
	struct dgram d, big;
	struct frame f;

	if (!skel)
		return;
	good(&d, HM_MSG_PREPARE, 0);
	/* truncated: consistent lengths, short datagram */
	frame_of(&f, &d, 0);
	for (size_t l = 0; l < HM_HDR_LEN; l += 1) {
		struct frame g;
		struct src s = src_of(0);

		mkframe(&g, &s, 0, PORT, d.b, l);
		if (!expect(&g, HM_DROP_TRUNCATED, l >= 12 ? 0 : UNKNOWN, "short datagram"))
			break;
	}
	/* bad_magic */
	d.b[1] ^= 0x01;
	expect_msg(&d, 0, HM_DROP_BAD_MAGIC, 0, "magic");
	d.b[1] ^= 0x01;
	d.b[4] = HM_VERSION + 1;
	expect_msg(&d, FL_VLAN, HM_DROP_BAD_MAGIC, 0, "version");
	/* bad_type: type 0, 12, 255; unknown flag bits */
	static const uint8_t types[] = { 0, HM_MSG_TYPE_MAX + 1, 0xff };
	for (size_t i = 0; i < sizeof(types); i++) {
		good(&d, HM_MSG_PREPARE, 0);
		d.b[5] = types[i];
		restamp(&d);
		expect_msg(&d, 0, HM_DROP_BAD_TYPE, 0, "type");
	}
	/* 0x0002 and 0x0004 are the link layer's (sealed, compressed) */
	static const uint16_t flags[] = { 0x0008, 0x8000, 0x0101, 0xffff };
	for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		mkmsg_flags(&d, HM_MSG_COMMIT, flags[i], 0, VIEW, LOW + 1, 0);
		expect_msg(&d, 0, HM_DROP_BAD_TYPE, 0, "unknown flag");
	}
	/* oversize: max_message_size exactly passes, one more byte is refused */
	mkmsg(&big, HM_MSG_PRE_PREPARE, 0, VIEW, LOW + 1, MAXMSG - HM_HDR_LEN);
	expect_msg(&big, 0, ACCEPT, 0, "max_message_size");
	mkmsg(&big, HM_MSG_PRE_PREPARE, 0, VIEW, LOW + 1, MAXMSG - HM_HDR_LEN + 1);
	expect_msg(&big, 0, HM_DROP_OVERSIZE, 0, "max_message_size + 1");
	mkmsg(&big, HM_MSG_REQUEST, 101, 0, 1, 1500);
	expect_msg(&big, 0, HM_DROP_OVERSIZE, CLIENTS, "oversize request");
	/* bad_length: payload_len lies either way */
	good(&d, HM_MSG_PRE_PREPARE, 3);
	hm_put_be32(d.b + 12, hm_get_be32(d.b + 12) + 1);
	restamp(&d);
	expect_msg(&d, 0, HM_DROP_BAD_LENGTH, 3, "payload_len + 1");
	hm_put_be32(d.b + 12, hm_get_be32(d.b + 12) - 2);
	restamp(&d);
	expect_msg(&d, 0, HM_DROP_BAD_LENGTH, 3, "payload_len - 1");
	/* bad_length: UDP length against IP length and the frame */
	good(&d, HM_MSG_PRE_PREPARE, 0);
	for (int v6 = 0; v6 < 2; v6++) {
		uint32_t who = v6 ? 3 : 0;
		long l4;

		good(&d, HM_MSG_PRE_PREPARE, who);
		frame_of(&f, &d, FL_VLAN);
		l4 = (long)(f.len - f.l4);
		set_udp_len(&f, l4 + 1);
		expect(&f, HM_DROP_BAD_LENGTH, who, "udp length > ip length");
		set_udp_len(&f, l4 - 1);
		expect(&f, HM_DROP_BAD_LENGTH, who, "udp length < ip length");
		set_udp_len(&f, 4); /* the sender is outside the datagram */
		expect(&f, HM_DROP_BAD_LENGTH, UNKNOWN, "udp length < 8");
		set_udp_len(&f, l4);
		set_ip_l4_len(&f, l4 + 1);
		expect(&f, HM_DROP_BAD_LENGTH, who, "ip length > frame");
		set_udp_len(&f, l4 + 1);
		expect(&f, HM_DROP_BAD_LENGTH, who, "ip and udp length > frame");
		set_udp_len(&f, l4);
		set_ip_l4_len(&f, l4);
		expect(&f, ACCEPT, who, "lengths restored");
	}
	hm_xdp_bpf__destroy(skel);
}

HM_TEST(xdp_filter_identity)
{
	struct hm_xdp_bpf *skel = load();
	struct dgram d;
	struct frame f;
	struct src s;

	if (!skel)
		return;
	/* unknown_sender: strangers, ourselves, an invalid member slot */
	good(&d, HM_MSG_PREPARE, 60);
	expect_msg(&d, 0, HM_DROP_UNKNOWN_SENDER, UNKNOWN, "stranger");
	mkmsg(&d, HM_MSG_REQUEST, 0xffffffffu, 0, 1, 0);
	expect_msg(&d, 0, HM_DROP_UNKNOWN_SENDER, UNKNOWN, "id 2^32-1");
	good(&d, HM_MSG_PREPARE, SELF);
	expect_msg(&d, 0, HM_DROP_UNKNOWN_SENDER, SELF, "claims to be us");
	good(&d, HM_MSG_PREPARE, 5);
	expect_msg(&d, 0, HM_DROP_UNKNOWN_SENDER, 5, "invalid member slot");
	mkmsg(&d, HM_MSG_PREPARE, N, VIEW, LOW + 1, 0);
	expect_msg(&d, 0, HM_DROP_UNKNOWN_SENDER, UNKNOWN, "id n");

	/* bad_address: wrong IP, wrong port, wrong family */
	good(&d, HM_MSG_PREPARE, 0);
	s = src_of(0);
	s.addr[3]++;
	mkframe(&f, &s, 0, PORT, d.b, d.len);
	expect(&f, HM_DROP_BAD_ADDRESS, 0, "wrong ip");
	s = src_of(0);
	s.port++;
	mkframe(&f, &s, 0, PORT, d.b, d.len);
	expect(&f, HM_DROP_BAD_ADDRESS, 0, "wrong port");
	s = src_of(0);
	s.family = AF_INET6;
	mkframe(&f, &s, 0, PORT, d.b, d.len);
	expect(&f, HM_DROP_BAD_ADDRESS, 0, "v4 member over v6");
	good(&d, HM_MSG_COMMIT, 3);
	s = src_of(3);
	s.addr[8] ^= 0x40;
	mkframe(&f, &s, 0, PORT, d.b, d.len);
	expect(&f, HM_DROP_BAD_ADDRESS, 3, "wrong ipv6");
	s = src_of(2); /* another member's address */
	mkframe(&f, &s, 0, PORT, d.b, d.len);
	expect(&f, HM_DROP_BAD_ADDRESS, 3, "another member's address");

	/* bad_mac: one flipped bit (MAC, MACed fields), a wrong key */
	static const size_t bits[] = { HM_OFF_MAC * 8, HM_OFF_MAC * 8 + 63, HM_OFF_SEQ * 8 + 3,
				       HM_OFF_DIGEST * 8 + 77, HM_OFF_SIG * 8 + 5,
				       (HM_MACED_LEN - 1) * 8 + 7, 7 * 8 /* flags: RETRANSMIT */ };
	for (size_t i = 0; i < sizeof(bits) / sizeof(bits[0]); i++) {
		uint32_t who = i % 2 ? 3 : 4;

		good(&d, HM_MSG_COMMIT, who);
		d.b[bits[i] / 8] ^= (uint8_t)(1u << (bits[i] % 8));
		expect_msg(&d, 0, HM_DROP_BAD_MAC, who, "flipped bit");
	}
	mkmsg(&d, HM_MSG_REQUEST, 102, 0, 1, 8);
	d.b[HM_OFF_MAC + 4] ^= 0x10;
	expect_msg(&d, 0, HM_DROP_BAD_MAC, CLIENTS, "client, flipped bit");
	mkmsg(&d, HM_MSG_REQUEST, 102, 0, 1, 8);
	hm_mac_stamp((struct hm_hdr *)d.b, peer(101)->tx);
	expect_msg(&d, 0, HM_DROP_BAD_MAC, CLIENTS, "client, another client's key");
	good(&d, HM_MSG_PREPARE, 0);
	hm_mac_stamp((struct hm_hdr *)d.b, peer(2)->tx);
	expect_msg(&d, 0, HM_DROP_BAD_MAC, 0, "replica, another replica's key");
	/* The payload is not MACed: changing it keeps the MAC good. */
	good(&d, HM_MSG_PRE_PREPARE, 0);
	d.b[HM_HDR_LEN + 3] ^= 0xff;
	expect_msg(&d, 0, ACCEPT, 0, "payload changed, header intact");

	/* malformed: replica-only types from clients, client types from
	 * replicas */
	mkmsg(&d, HM_MSG_REQUEST, 0, 0, 1, 0);
	expect_msg(&d, 0, HM_DROP_MALFORMED, 0, "request from a replica");
	mkmsg(&d, HM_MSG_REPLY, 2, 0, 1, 12);
	expect_msg(&d, 0, HM_DROP_MALFORMED, 2, "reply from a replica");
	mkmsg(&d, HM_MSG_VIEW_CHANGE, 3, VIEW, 1, 0);
	expect_msg(&d, 0, ACCEPT, 3, "view-change from a replica");
	mkmsg(&d, HM_MSG_STATE_CHUNK, 3, VIEW, 1, 0);
	expect_msg(&d, 0, ACCEPT, 3, "state chunk from a replica");
	mkmsg(&d, HM_MSG_NEW_VIEW, 101, VIEW, 1, 0);
	expect_msg(&d, 0, HM_DROP_MALFORMED, CLIENTS, "new-view from a client");
	good(&d, HM_MSG_PREPARE, 100);
	expect_msg(&d, 0, HM_DROP_MALFORMED, CLIENTS, "prepare from a client");
	mkmsg(&d, HM_MSG_STATUS, 101, 0, 1, 0);
	expect_msg(&d, 0, HM_DROP_MALFORMED, CLIENTS, "status from a client");
	/* equivocation proofs travel between replicas only (any view, seq 0:
	 * no window applies) */
	mkmsg(&d, HM_MSG_EVIDENCE, 3, VIEW + 5, 0, 40);
	expect_msg(&d, 0, ACCEPT, 3, "evidence from a replica");
	mkmsg(&d, HM_MSG_EVIDENCE, 101, VIEW, 0, 40);
	expect_msg(&d, 0, HM_DROP_MALFORMED, CLIENTS, "evidence from a client");
	/* vouches too (any view, seq 0) */
	mkmsg(&d, HM_MSG_VOUCH, 3, VIEW + 5, 0, 40);
	expect_msg(&d, 0, ACCEPT, 3, "vouch from a replica");
	mkmsg(&d, HM_MSG_VOUCH, 101, VIEW, 0, 40);
	expect_msg(&d, 0, HM_DROP_MALFORMED, CLIENTS, "vouch from a client");
	mkmsg(&d, HM_MSG_TYPE_MAX + 1, 3, VIEW, 0, 0);
	expect_msg(&d, 0, HM_DROP_BAD_TYPE, 3, "the type after the last");
	hm_xdp_bpf__destroy(skel);
}

HM_TEST(xdp_filter_window_and_signature)
{
	static const uint8_t normal[] = { HM_MSG_PRE_PREPARE, HM_MSG_PREPARE, HM_MSG_COMMIT };
	/* L, little-endian (user/common/crypto.c) */
	static const uint8_t L[32] = { 0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
				       0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
				       [31] = 0x10 };
	struct hm_xdp_bpf *skel = load();
	struct dgram d;

	if (!skel)
		return;
	for (size_t i = 0; i < sizeof(normal); i++) {
		uint8_t t = normal[i];
		uint32_t who = t == HM_MSG_COMMIT ? 3 : 0;
		uint32_t plen = t == HM_MSG_PRE_PREPARE ? 8 : 0;

		mkmsg(&d, t, who, VIEW + 1, LOW + 1, plen);
		expect_msg(&d, 0, HM_DROP_BAD_VIEW, who, "view + 1");
		mkmsg(&d, t, who, VIEW - 1, LOW + 1, plen);
		expect_msg(&d, 0, HM_DROP_BAD_VIEW, who, "view - 1");
		mkmsg(&d, t, who, VIEW + 1, HIGH + 5, plen);
		expect_msg(&d, 0, HM_DROP_BAD_VIEW, who, "view before window");
		mkmsg(&d, t, who, VIEW, LOW, plen);
		expect_msg(&d, 0, HM_DROP_OUT_OF_WINDOW, who, "seq = low");
		mkmsg(&d, t, who, VIEW, 0, plen);
		expect_msg(&d, 0, HM_DROP_OUT_OF_WINDOW, who, "seq = 0");
		mkmsg(&d, t, who, VIEW, LOW + 1, plen);
		expect_msg(&d, 0, ACCEPT, who, "seq = low + 1");
		mkmsg(&d, t, who, VIEW, HIGH, plen);
		expect_msg(&d, 0, ACCEPT, who, "seq = high");
		mkmsg(&d, t, who, VIEW, HIGH + 1, plen);
		expect_msg(&d, 0, HM_DROP_OUT_OF_WINDOW, who, "seq = high + 1");
		mkmsg(&d, t, who, VIEW, UINT64_MAX, plen);
		expect_msg(&d, 0, HM_DROP_OUT_OF_WINDOW, who, "seq = 2^64 - 1");
	}
	/* The window moves with the config map. */
	ref.c.low = 100;
	ref.c.high = 200;
	ref.c.view = 9;
	write_config(skel);
	mkmsg(&d, HM_MSG_PREPARE, 0, 9, 200, 0);
	expect_msg(&d, 0, ACCEPT, 0, "new window, high");
	mkmsg(&d, HM_MSG_PREPARE, 0, 9, 100, 0);
	expect_msg(&d, 0, HM_DROP_OUT_OF_WINDOW, 0, "new window, low");
	mkmsg(&d, HM_MSG_PREPARE, 0, VIEW, 150, 0);
	expect_msg(&d, 0, HM_DROP_BAD_VIEW, 0, "old view");

	/* noncanonical_sig: S = L, L + 1 and 2^256 - 1 are refused, S = L - 1
	 * passes; for every type that passes identity. */
	struct { uint8_t type; uint32_t who; uint32_t idx; } kinds[] = {
		{ HM_MSG_PREPARE, 0, 0 }, { HM_MSG_CHECKPOINT, 3, 3 },
		{ HM_MSG_REQUEST, 100, CLIENTS },
	};
	for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
		uint8_t *s = d.b + HM_OFF_SIG + 32;

		mkmsg(&d, kinds[k].type, kinds[k].who, 9, 150, 0);
		memcpy(s, L, 32);
		restamp(&d);
		expect_msg(&d, 0, HM_DROP_NONCANONICAL_SIG, kinds[k].idx, "S = L");
		s[0]++;
		restamp(&d);
		expect_msg(&d, 0, HM_DROP_NONCANONICAL_SIG, kinds[k].idx, "S = L + 1");
		s[0] -= 2;
		restamp(&d);
		expect_msg(&d, 0, ACCEPT, kinds[k].idx, "S = L - 1");
		memset(s, 0xff, 32);
		restamp(&d);
		expect_msg(&d, 0, HM_DROP_NONCANONICAL_SIG, kinds[k].idx, "S = 2^256 - 1");
		memcpy(s, L, 32);
		s[16] = 1; /* above L in the third limb */
		restamp(&d);
		expect_msg(&d, 0, HM_DROP_NONCANONICAL_SIG, kinds[k].idx, "S > L, limb 2");
		memcpy(s, L, 32);
		s[15]--; /* below L in the second limb, above in the first */
		s[0] = 0xff;
		restamp(&d);
		expect_msg(&d, 0, ACCEPT, kinds[k].idx, "S < L, limb 1");
		memset(s, 0, 32);
		restamp(&d);
		expect_msg(&d, 0, ACCEPT, kinds[k].idx, "S = 0");
	}
	hm_xdp_bpf__destroy(skel);
}

/* View catch-up: a replica's MAC-valid PRE-PREPARE, PREPARE or COMMIT of a
 * view above ours raises its node_stats max_view_seen (which the controller
 * polls for pbft_observe_view); a lower view, a bad MAC, a view-less type or
 * another sender's message does not. */
HM_TEST(xdp_filter_max_view_seen)
{
	struct hm_xdp_bpf *skel = load();
	struct hm_node_stats st;
	struct dgram d;

	if (!skel)
		return;
	ASSERT_TRUE(read_stats(0, &st) && st.max_view_seen == 0, "nothing seen at first");
	mkmsg(&d, HM_MSG_PREPARE, 0, VIEW + 3, LOW + 1, 0);
	expect_msg(&d, 0, HM_DROP_BAD_VIEW, 0, "view + 3");
	ASSERT_TRUE(read_stats(0, &st), "lookup");
	ASSERT_EQ(st.max_view_seen, VIEW + 3, "replica 0 seen in view + 3");
	mkmsg(&d, HM_MSG_COMMIT, 0, VIEW + 1, LOW + 1, 0);
	expect_msg(&d, 0, HM_DROP_BAD_VIEW, 0, "view + 1 after view + 3");
	mkmsg(&d, HM_MSG_PREPARE, 0, VIEW - 1, LOW + 1, 0);
	expect_msg(&d, 0, HM_DROP_BAD_VIEW, 0, "view - 1");
	mkmsg(&d, HM_MSG_PREPARE, 0, VIEW, LOW + 1, 0);
	expect_msg(&d, 0, ACCEPT, 0, "our view");
	ASSERT_TRUE(read_stats(0, &st), "lookup");
	ASSERT_EQ(st.max_view_seen, VIEW + 3, "only ever the highest");
	/* a forged view: the MAC no longer matches */
	mkmsg(&d, HM_MSG_PREPARE, 0, VIEW + 50, LOW + 1, 0);
	d.b[HM_OFF_VIEW + 7] ^= 1;
	expect_msg(&d, 0, HM_DROP_BAD_MAC, 0, "view + 50, bad MAC");
	/* CHECKPOINTs carry a view but are not normal-case messages */
	mkmsg(&d, HM_MSG_CHECKPOINT, 0, VIEW + 40, LOW + 1, 0);
	expect_msg(&d, 0, ACCEPT, 0, "a checkpoint of view + 40");
	mkmsg(&d, HM_MSG_PRE_PREPARE, 3, VIEW + 7, LOW + 1, 8);
	expect_msg(&d, 0, HM_DROP_BAD_VIEW, 3, "replica 3 in view + 7");
	ASSERT_TRUE(read_stats(0, &st), "lookup");
	ASSERT_EQ(st.max_view_seen, VIEW + 3, "replica 0 unchanged");
	ASSERT_TRUE(read_stats(3, &st), "lookup");
	ASSERT_EQ(st.max_view_seen, VIEW + 7, "replica 3 seen in view + 7");
	/* the controller moves the view: a view above the new one counts */
	ref.c.view = VIEW + 10;
	write_config(skel);
	mkmsg(&d, HM_MSG_PREPARE, 0, VIEW + 11, LOW + 1, 0);
	expect_msg(&d, 0, HM_DROP_BAD_VIEW, 0, "view + 11 after the move");
	ASSERT_TRUE(read_stats(0, &st), "lookup");
	ASSERT_EQ(st.max_view_seen, VIEW + 11, "raised to view + 11");
	ref.c.view = VIEW;
	write_config(skel);
	hm_xdp_bpf__destroy(skel);
}

/* Per-CPU buckets: pin to one CPU so that every run shares one. */
HM_TEST(xdp_filter_rate_limit)
{
	struct hm_xdp_bpf *skel = load();
	cpu_set_t old, one;
	struct hm_node_stats st;
	struct dgram d;
	int cpu = sched_getcpu();

	if (!skel)
		return;
	if (!ASSERT_OK(sched_getaffinity(0, sizeof(old), &old), "getaffinity"))
		goto out;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (!ASSERT_OK(sched_setaffinity(0, sizeof(one), &one), "pin"))
		goto out;
	ref.c.rate_limit_pps = 3;
	write_config(skel);

	/* Spoofed packets (bad MAC) come before the bucket: 10 of them do not
	 * use up replica 2's rate. */
	good(&d, HM_MSG_PREPARE, 2);
	d.b[HM_OFF_MAC] ^= 1;
	for (int i = 0; i < 10; i++)
		expect_msg(&d, 0, HM_DROP_BAD_MAC, 2, "spoofed");
	d.b[HM_OFF_MAC] ^= 1;
	for (int i = 0; i < 3; i++)
		expect_msg(&d, 0, ACCEPT, 2, "within the burst");
	for (int i = 0; i < 5; i++)
		expect_msg(&d, 0, HM_DROP_RATE_LIMITED, 2, "over the rate");
	ASSERT_TRUE(read_stats(2, &st), "read");
	ASSERT_EQ(st.timing_violations, 5, "timing_violations");
	ASSERT_EQ(hm_drops(st.drops)[HM_DROP_RATE_LIMITED], 5, "rate_limited");
	/* Another replica and each client have their own bucket. */
	good(&d, HM_MSG_COMMIT, 4);
	for (int i = 0; i < 3; i++)
		expect_msg(&d, 0, ACCEPT, 4, "replica 4 burst");
	expect_msg(&d, 0, HM_DROP_RATE_LIMITED, 4, "replica 4 over");
	mkmsg(&d, HM_MSG_REQUEST, 100, 0, 1, 0);
	for (int i = 0; i < 3; i++)
		expect_msg(&d, 0, ACCEPT, CLIENTS, "client 100 burst");
	for (int i = 0; i < 2; i++)
		expect_msg(&d, 0, HM_DROP_RATE_LIMITED, CLIENTS, "client 100 over");
	mkmsg(&d, HM_MSG_REQUEST, 101, 0, 1, 0);
	expect_msg(&d, 0, ACCEPT, CLIENTS, "client 101 has its own bucket");
	/* The rate limit comes before the type check. */
	mkmsg(&d, HM_MSG_REQUEST, 4, 0, 1, 0);
	expect_msg(&d, 0, HM_DROP_RATE_LIMITED, 4, "replica 4, wrong type, no token");
	/* 0 turns it off. */
	ref.c.rate_limit_pps = 0;
	write_config(skel);
	good(&d, HM_MSG_PREPARE, 2);
	for (int i = 0; i < 10; i++)
		expect_msg(&d, 0, ACCEPT, 2, "rate limit off");
	sched_setaffinity(0, sizeof(old), &old);
out:
	hm_xdp_bpf__destroy(skel);
}

HM_TEST(xdp_filter_not_hypermesh)
{
	struct hm_xdp_bpf *skel = load();
	struct dgram d;
	struct frame f;
	struct src s = src_of(0);

	if (!skel)
		return;
	good(&d, HM_MSG_PREPARE, 0);
	mkframe(&f, &s, 0, PORT + 1, d.b, d.len);
	expect(&f, NOT_HM, 0, "other port v4");
	good(&d, HM_MSG_COMMIT, 3);
	frame_of(&f, &d, 0);
	put16(f.buf + f.l4 + 2, PORT - 1);
	expect(&f, NOT_HM, 0, "other port v6");
	good(&d, HM_MSG_PREPARE, 0);
	frame_of(&f, &d, 0);
	f.buf[f.l3 + 9] = IPPROTO_TCP;
	expect(&f, NOT_HM, 0, "tcp");
	frame_of(&f, &d, 0);
	put16(f.buf + f.l3 + 6, 0x0010); /* offset 16 * 8 */
	expect(&f, NOT_HM, 0, "ipv4 later fragment");
	put16(f.buf + f.l3 + 6, 0x2001); /* offset 8, more to come */
	expect(&f, NOT_HM, 0, "ipv4 middle fragment");
	frame_of(&f, &d, 0);
	f.buf[f.l3] = 0x44; /* IHL 4 */
	expect(&f, NOT_HM, 0, "ipv4 ihl < 5");
	frame_of(&f, &d, 0);
	f.buf[f.l3] = 0x65;
	expect(&f, NOT_HM, 0, "ethertype ipv4, version 6");
	good(&d, HM_MSG_COMMIT, 3);
	frame_of(&f, &d, 0);
	f.buf[f.l3 + 6] = 0; /* hop-by-hop options header */
	expect(&f, NOT_HM, 0, "ipv6 extension header");
	f.buf[f.l3 + 6] = 44; /* fragment header */
	expect(&f, NOT_HM, 0, "ipv6 fragment header");
	/* ARP */
	{
		static const uint8_t arp[28] = { 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 198, 18, 0, 1,
						 0, 0, 0, 0, 0, 0, 198, 18, 0, 2 };

		memset(&f, 0, sizeof(f));
		memset(f.buf, 0xff, 6);
		f.buf[6] = 2;
		put16(f.buf + 12, ETH_P_ARP);
		memcpy(f.buf + 14, arp, sizeof(arp));
		f.len = 14 + sizeof(arp);
		expect(&f, NOT_HM, 0, "arp");
	}
	/* Two VLAN tags (only one is parsed), 802.1ad */
	good(&d, HM_MSG_PREPARE, 0);
	frame_of(&f, &d, FL_VLAN);
	memmove(f.buf + 16, f.buf + 12, f.len - 12);
	put16(f.buf + 12, ETH_P_8021Q);
	put16(f.buf + 14, 7);
	f.len += 4;
	expect(&f, NOT_HM, 0, "double vlan");
	frame_of(&f, &d, FL_VLAN);
	put16(f.buf + 12, 0x88a8);
	expect(&f, NOT_HM, 0, "802.1ad");
	/* Not configured yet (port 0): everything passes uncounted. */
	ref.c.port = 0;
	write_config(skel);
	frame_of(&f, &d, 0);
	{
		struct hm_node_stats before[HM_XDP_NSTATS], after[HM_XDP_NSTATS];
		uint8_t out[FRAME_MAX + 256];

		read_all(before);
		ASSERT_EQ(run_frame(&f, out, sizeof(out)), XDP_PASS, "port 0");
		d.b[0] ^= 1;
		frame_of(&f, &d, 0);
		ASSERT_EQ(run_frame(&f, out, sizeof(out)), XDP_PASS, "port 0, bad magic");
		read_all(after);
		ASSERT_MEMEQ(before, after, sizeof(before), "port 0: no counter");
	}
	hm_xdp_bpf__destroy(skel);
}

/* IPv4 first fragments: only the first 136 bytes of the datagram are
 * needed, and the UDP length covers the whole datagram. */
HM_TEST(xdp_filter_first_fragment)
{
	struct hm_xdp_bpf *skel = load();
	struct dgram d;
	struct frame f;

	if (!skel)
		return;
	mkmsg(&d, HM_MSG_PRE_PREPARE, 0, VIEW, LOW + 1, 600);
	frame_of(&f, &d, 0);
	put16(f.buf + f.l3 + 6, 0x2000); /* MF */
	set_ip_l4_len(&f, 8 + 200);
	f.len = f.hm + 200;
	expect(&f, ACCEPT, 0, "first fragment, 200 datagram bytes");
	set_ip_l4_len(&f, 8 + HM_HDR_LEN);
	f.len = f.hm + HM_HDR_LEN;
	expect(&f, ACCEPT, 0, "first fragment, exactly the header");
	set_ip_l4_len(&f, 8 + HM_HDR_LEN - 8);
	f.len = f.hm + HM_HDR_LEN - 8;
	expect(&f, HM_DROP_TRUNCATED, 0, "first fragment without the whole header");
	set_ip_l4_len(&f, 8 + 200);
	f.len = f.hm + 200;
	set_udp_len(&f, 8 + 100);
	expect(&f, HM_DROP_BAD_LENGTH, 0, "first fragment longer than its udp length");
	set_udp_len(&f, 8 + 600 + HM_HDR_LEN + 1);
	expect(&f, HM_DROP_BAD_LENGTH, 0, "first fragment, payload_len != udp length");
	set_udp_len(&f, 8 + 600 + HM_HDR_LEN);
	f.buf[f.hm + HM_OFF_MAC] ^= 1;
	expect(&f, HM_DROP_BAD_MAC, 0, "first fragment, bad mac");
	hm_xdp_bpf__destroy(skel);
}

/* Cut a good frame at every length.  Below the Ethernet header the kernel
 * refuses the run; inside the Ethernet/IP/UDP headers the frame is not
 * HyperMesh; after them the IP and UDP lengths claim more than the frame
 * holds (bad_length), counted for the sender once 12 bytes are in. */
HM_TEST(xdp_filter_truncation)
{
	struct hm_xdp_bpf *skel = load();
	struct dgram d;

	if (!skel)
		return;
	for (int variant = 0; variant < 4; variant++) {
		uint32_t who = variant == 1 ? 3 : variant == 3 ? 100 : 0;
		unsigned fl = variant == 2 ? FL_VLAN | FL_OPTS : 0;
		uint32_t idx = who == 100 ? CLIENTS : who;
		struct frame full, f;
		uint8_t out[FRAME_MAX + 256];

		if (who == 100)
			mkmsg(&d, HM_MSG_REQUEST, 100, 0, 5, 30);
		else
			mkmsg(&d, HM_MSG_PRE_PREPARE, who, VIEW, LOW + 1, 30);
		frame_of(&full, &d, fl);
		for (size_t len = 0; len <= full.len; len++) {
			bool ok;

			f = full;
			f.len = len;
			if (len < ETH_HLEN) {
				ok = ASSERT_EQ(run_frame(&f, out, sizeof(out)), -EINVAL,
					       "frame shorter than Ethernet");
			} else if (len < full.hm) {
				ok = expect(&f, NOT_HM, 0, "cut in the Ethernet/IP/UDP headers");
			} else if (len < full.len) {
				ok = expect(&f, HM_DROP_BAD_LENGTH,
					    len - full.hm >= 12 ? idx : UNKNOWN,
					    "cut in the datagram");
			} else {
				ok = expect(&f, ACCEPT, idx, "whole frame");
			}
			if (!ok) {
				fprintf(stderr, "    variant %d, cut at %zu of %zu\n", variant, len,
					full.len);
				break;
			}
		}
		/* The same cuts with IP and UDP lengths fixed up: truncated,
		 * then bad_length (payload_len), then good. */
		for (size_t dl = 0; dl <= d.len; dl++) {
			struct src s = src_of(who);
			int want = dl < HM_HDR_LEN ? HM_DROP_TRUNCATED
				   : dl < d.len	   ? HM_DROP_BAD_LENGTH
						   : ACCEPT;

			mkframe(&f, &s, fl, PORT, d.b, dl);
			if (!expect(&f, want, dl >= 12 ? idx : UNKNOWN, "short datagram")) {
				fprintf(stderr, "    variant %d, datagram of %zu\n", variant, dl);
				break;
			}
		}
	}
	hm_xdp_bpf__destroy(skel);
}

/* ---- differential ---------------------------------------------------------- */

#define DIFF_FRAMES 1000000
#define SWEEP_EVERY 4096

struct gen {
	uint64_t rs;
	struct dgram *tmpl;
	size_t ntmpl;
};

static uint64_t rnd(struct gen *g)
{
	return hm_test_rand(&g->rs);
}

static bool chance(struct gen *g, unsigned percent)
{
	return rnd(g) % 100 < percent;
}

static uint64_t pick64(struct gen *g, const uint64_t *v, size_t n)
{
	return v[rnd(g) % n];
}

/* Senders for a mutated message: members, us, the invalid slot, clients,
 * blocked and plain strangers. */
static const uint32_t sender_pool[] = { 0, 1, 2, 3, 4, 5, 6, 7, 100, 101, 102, 103, 50, 60 };

static void mutate_header(struct gen *g, struct dgram *d)
{
	static const uint64_t seqs[] = { LOW - 1, LOW, LOW + 1, HIGH - 1, HIGH, HIGH + 1, 0,
					 UINT64_MAX, (LOW + HIGH) / 2 };
	static const uint64_t views[] = { VIEW - 1, VIEW, VIEW + 1, 0, UINT64_MAX };
	static const uint8_t L[32] = { 0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58,
				       0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
				       [31] = 0x10 };
	uint8_t *s = d->b + HM_OFF_SIG + 32;

	if (chance(g, 10))
		hm_put_be32(d->b + HM_OFF_SENDER,
			    chance(g, 90) ? sender_pool[rnd(g) % (sizeof(sender_pool) / 4)]
					  : (uint32_t)rnd(g));
	if (chance(g, 8))
		d->b[5] = chance(g, 80) ? (uint8_t)(rnd(g) % 14) : (uint8_t)rnd(g);
	if (chance(g, 5))
		put16(d->b + 6, chance(g, 50) ? (uint16_t)(rnd(g) % 3) : (uint16_t)rnd(g));
	if (chance(g, 8))
		hm_put_be64(d->b + HM_OFF_VIEW, chance(g, 90) ? pick64(g, views, 5) : rnd(g));
	if (chance(g, 10))
		hm_put_be64(d->b + HM_OFF_SEQ, chance(g, 90) ? pick64(g, seqs, 9) : rnd(g));
	if (chance(g, 8)) {
		memcpy(s, L, 32);
		switch (rnd(g) % 6) {
		case 0: break;
		case 1: s[0]--; break;
		case 2: s[0]++; break;
		case 3: memset(s, 0xff, 32); break;
		case 4: s[31] = (uint8_t)rnd(g); break;
		default: s[rnd(g) % 32] ^= (uint8_t)(1u << (rnd(g) % 8)); break;
		}
	}
	if (chance(g, 3))
		d->b[rnd(g) % 5] ^= (uint8_t)(1u << (rnd(g) % 8)); /* magic, version */
	if (chance(g, 6)) { /* resize the payload, payload_len following or not */
		size_t plen = rnd(g) % 3 ? rnd(g) % 64 : rnd(g) % (MAXMSG + 64 - HM_HDR_LEN);

		for (size_t i = d->len; i < HM_HDR_LEN + plen; i++)
			d->b[i] = (uint8_t)rnd(g);
		d->len = HM_HDR_LEN + plen;
		if (chance(g, 70))
			hm_put_be32(d->b + 12, (uint32_t)plen);
	}
	if (chance(g, 4))
		hm_put_be32(d->b + 12, hm_get_be32(d->b + 12) + (uint32_t)(rnd(g) % 5) - 2);
	/* Most get a MAC that verifies for whoever they now claim to be. */
	if (chance(g, 85))
		restamp(d);
	if (chance(g, 6))
		for (unsigned k = 1 + rnd(g) % 3; k; k--) {
			size_t bit = rnd(g) % (d->len * 8);

			d->b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		}
}

static void mutate_frame(struct gen *g, struct frame *f)
{
	long l4 = (long)(f->len - f->l4);

	if (chance(g, 2)) {
		static const uint16_t types[] = { ETH_P_ARP, 0x88a8, ETH_P_8021Q, ETH_P_IPV6, ETH_P_IP };

		put16(f->buf + f->l3 - 2, chance(g, 70) ? types[rnd(g) % 5] : (uint16_t)rnd(g));
	}
	if (chance(g, 2))
		f->buf[f->l3 + (f->v6 ? 6 : 9)] = chance(g, 50) ? IPPROTO_TCP : (uint8_t)rnd(g);
	if (!f->v6 && chance(g, 4)) {
		static const uint16_t frags[] = { 0x2000, 0x4000, 0x0001, 0x2001, 0x1fff, 0x6000 };

		put16(f->buf + f->l3 + 6, frags[rnd(g) % 6]);
		if (chance(g, 50)) { /* a plausible first fragment */
			long cut = 8 + (long)(rnd(g) % (size_t)l4);

			set_ip_l4_len(f, cut);
			f->len = f->l4 + (size_t)cut;
		}
	}
	if (chance(g, 3))
		f->buf[f->l3] = (uint8_t)(chance(g, 50) ? (f->buf[f->l3] & 0xf0) | (rnd(g) % 16)
							 : rnd(g));
	if (chance(g, 4))
		set_ip_l4_len(f, chance(g, 70) ? l4 + (long)(rnd(g) % 9) - 4 : (long)(rnd(g) % 65536));
	if (chance(g, 4))
		set_udp_len(f, chance(g, 70) ? l4 + (long)(rnd(g) % 9) - 4 : (long)(rnd(g) % 65536));
	if (chance(g, 3))
		put16(f->buf + f->l4 + 2, (uint16_t)(PORT + rnd(g) % 3 - 1));
	if (chance(g, 4))
		f->len = ETH_HLEN + rnd(g) % (f->len - ETH_HLEN + 1);
	if (chance(g, 2)) { /* Ethernet padding */
		size_t pad = rnd(g) % 48;

		for (size_t i = 0; i < pad; i++)
			f->buf[f->len + i] = (uint8_t)rnd(g);
		f->len += pad;
	}
	if (chance(g, 2)) {
		size_t bit = rnd(g) % (f->len * 8);

		f->buf[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
}

/* A random frame: noise, sometimes shaped like IPv4/UDP to the port. */
static void random_frame(struct gen *g, struct frame *f)
{
	f->len = ETH_HLEN + rnd(g) % 300;
	for (size_t i = 0; i < f->len; i++)
		f->buf[i] = (uint8_t)rnd(g);
	if (chance(g, 60) && f->len >= 42) {
		put16(f->buf + 12, ETH_P_IP);
		f->buf[14] = 0x45;
		f->buf[14 + 6] &= 0x20;
		f->buf[14 + 7] = 0;
		f->buf[14 + 9] = IPPROTO_UDP;
		put16(f->buf + 14 + 20 + 2, PORT);
		if (chance(g, 50)) {
			put16(f->buf + 14 + 2, (uint16_t)(f->len - 14));
			put16(f->buf + 14 + 20 + 4, (uint16_t)(f->len - 34));
		}
		if (chance(g, 50) && f->len >= 42 + 16) {
			hm_put_be32(f->buf + 42, HM_MAGIC);
			f->buf[46] = HM_VERSION;
		}
	}
}

static void gen_frame(struct gen *g, struct frame *f)
{
	struct dgram d;
	struct src s;
	uint32_t sender;
	unsigned fl = 0;

	if (chance(g, 2)) {
		random_frame(g, f);
		return;
	}
	memcpy(&d, &g->tmpl[rnd(g) % g->ntmpl], sizeof(d));
	mutate_header(g, &d);
	sender = hm_get_be32(d.b + HM_OFF_SENDER);
	s = src_of(sender);
	if (chance(g, 10)) {
		switch (rnd(g) % 4) {
		case 0: s.port = (uint16_t)rnd(g); break;
		case 1: s.addr[s.family == AF_INET ? 3 : 15] ^= 1; break;
		case 2: s.family = s.family == AF_INET ? AF_INET6 : AF_INET; break;
		default: s = src_of(sender_pool[rnd(g) % 7]); break;
		}
	}
	if (chance(g, 15))
		fl |= FL_VLAN;
	if (chance(g, 20))
		fl |= FL_OPTS;
	mkframe(f, &s, fl, PORT, d.b, d.len);
	mutate_frame(g, f);
}

static bool build_templates(struct gen *g)
{
	static const uint32_t senders[] = { 0, 1, 2, 3, 4, 5, 6, 100, 101, 102, 50, 60 };
	size_t cap = sizeof(senders) / 4 * HM_MSG_TYPE_MAX * 2;

	g->tmpl = calloc(cap, sizeof(*g->tmpl));
	if (!ASSERT_TRUE(g->tmpl != NULL, "calloc"))
		return false;
	g->ntmpl = 0;
	for (size_t s = 0; s < sizeof(senders) / 4; s++)
		for (uint8_t t = 1; t <= HM_MSG_TYPE_MAX; t++)
			for (int p = 0; p < 2; p++)
				mkmsg(&g->tmpl[g->ntmpl++], t, senders[s], VIEW,
				      LOW + 1 + rnd(g) % (HIGH - LOW), p ? (uint32_t)(rnd(g) % 48) : 0);
	return true;
}

static bool check_sweep(const struct hm_node_stats model[HM_XDP_NSTATS], uint64_t seed, long at)
{
	struct hm_node_stats got;

	for (uint32_t i = 0; i < HM_XDP_NSTATS; i++) {
		if (!read_stats(i, &got) || !same_counts(&got, &model[i])) {
			HM_FAIL("seed %#" PRIx64 ": node_stats[%u] differs from the reference "
				"somewhere in frames (%ld, %ld]", seed, i,
				at >= SWEEP_EVERY ? at - SWEEP_EVERY : -1, at);
			return false;
		}
	}
	return true;
}

HM_TEST(xdp_filter_differential)
{
	static struct hm_node_stats model[HM_XDP_NSTATS];
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
	uint64_t hits[HM_DROP_REASON_MAX + 2] = { 0 };
	struct hm_xdp_bpf *skel;
	struct gen g = { 0 };
	struct frame f;
	const char *env = getenv("HM_SEED");
	long i;

	if (env)
		seed = strtoull(env, NULL, 0);
	g.rs = seed ? seed : 1;
	printf("     differential: seed %#" PRIx64 " (HM_SEED=... to replay)\n", seed);
	skel = load();
	if (!skel)
		return;
	if (!build_templates(&g))
		goto out;
	/* Blocked: replica 6 and client 101 for good, stranger 50 forever;
	 * replica 0 and client 102 expired long ago. */
	block(skel, 6, 0);
	block(skel, 101, UINT64_MAX);
	block(skel, 50, 0);
	block(skel, 0, 1);
	block(skel, 102, 1);
	memset(model, 0, sizeof(model));

	for (i = 0; i < DIFF_FRAMES; i++) {
		struct hm_node_stats got;
		uint32_t idx;
		int want, verdict;

		gen_frame(&g, &f);
		want = ref_classify(f.buf, f.len, &idx);
		verdict = run_frame(&f, NULL, 0);
		hits[want + 1]++;
		if (verdict != ((want == NOT_HM || want == ACCEPT) ? XDP_PASS : XDP_DROP)) {
			HM_FAIL("seed %#" PRIx64 ", frame %ld (%zu bytes): verdict %d, reference %s",
				seed, i, f.len, verdict, why_name(want));
			break;
		}
		if (want != NOT_HM) {
			uint64_t ts = model[idx].last_activity_timestamp;

			model_count(&model[idx], want);
			model_view(&model[idx], idx, want, ref_view, ref.c.view);
			if (!ASSERT_TRUE(read_stats(idx, &got), "lookup node_stats"))
				break;
			if (!same_counts(&got, &model[idx]) ||
			    (want == ACCEPT && got.last_activity_timestamp <= ts)) {
				HM_FAIL("seed %#" PRIx64 ", frame %ld (%zu bytes): node_stats[%u] "
					"does not show %s", seed, i, f.len, idx, why_name(want));
				for (int k = 0; k < HM_DROP_REASON_MAX; k++)
					if (hm_drops(got.drops)[k] != hm_drops(model[idx].drops)[k])
						fprintf(stderr, "    drops[%s]: %llu, reference %llu\n",
							why_name(k),
							(unsigned long long)hm_drops(got.drops)[k],
							(unsigned long long)hm_drops(model[idx].drops)[k]);
				break;
			}
			model[idx].last_activity_timestamp = got.last_activity_timestamp;
		}
		if ((i + 1) % SWEEP_EVERY == 0 && !check_sweep(model, seed, i))
			break;
	}
	if (i == DIFF_FRAMES)
		check_sweep(model, seed, i);
	printf("     differential: %ld frames:", i);
	for (int k = 0; k < HM_DROP_REASON_MAX + 2; k++)
		if (hits[k])
			printf(" %s %" PRIu64, why_name(k - 1), hits[k]);
	printf("\n");
	/* Every pre-filter outcome but rate_limited (off here) came up. */
	static const int outcomes[] = {
		NOT_HM, ACCEPT, HM_DROP_BLOCKED, HM_DROP_TRUNCATED, HM_DROP_BAD_MAGIC,
		HM_DROP_BAD_TYPE, HM_DROP_BAD_LENGTH, HM_DROP_OVERSIZE, HM_DROP_UNKNOWN_SENDER,
		HM_DROP_BAD_ADDRESS, HM_DROP_BAD_MAC, HM_DROP_BAD_VIEW, HM_DROP_OUT_OF_WINDOW,
		HM_DROP_NONCANONICAL_SIG, HM_DROP_MALFORMED,
	};
	for (size_t k = 0; k < sizeof(outcomes) / sizeof(outcomes[0]); k++)
		if (hits[outcomes[k] + 1] < 100)
			HM_FAIL("seed %#" PRIx64 ": outcome %s seen %" PRIu64 " times (< 100)", seed,
				why_name(outcomes[k]), hits[outcomes[k] + 1]);
out:
	free(g.tmpl);
	hm_xdp_bpf__destroy(skel);
}
