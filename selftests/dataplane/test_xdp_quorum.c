// SPDX-License-Identifier: MIT
/*
 * hm_xdp, vote counting: load the skeleton, configure it with real Ed25519
 * identities and crypto_kx link keys, run signed and MACed PREPARE and COMMIT
 * frames through BPF_PROG_TEST_RUN, and check the verdict, node_stats, the
 * hm_votes slot and the hm_events ring buffer.  The controller's part
 * (setting a slot's expected digest, recording its own vote, clearing slots
 * below the window) is done as the controller does it: the hm_vote_policy
 * program, run with BPF_PROG_TEST_RUN.
 *
 * The fast path's n-of-n event (HM_EV_FAST) is checked case by case at
 * n = 4 and n = 31 (the same cases as selftests/core/test_quorum.c).
 *
 * The reference is user/core/quorum.c itself: a differential run feeds the same
 * random votes, expectations (half with the fast flag), own votes (alone and
 * with the expectation in one run), window moves and view changes to both
 * and compares every outcome, event and slot.
 *
 * Loading BPF needs root (CAP_BPF + CAP_NET_ADMIN); without it these cases
 * fail, they do not skip.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <linux/if_ether.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <sodium.h>

#include "common/crypto.h"
#include "core/evidence.h"
#include "common/wire.h"
#include "core/quorum.h"
#include "hm_maps.h"
#include "dataplane/xdp_policy.h"
#include "hm_xdp.skel.h"

#include "hm_frames.h"
#include "hm_test.h"
#include "core/fast_model.h"
#include "hm_xdp_test.h"

#define PORT HM_DEFAULT_PORT
#define SELF 1
#define MAXMSG 1024
#define ACCEPT HM_DROP_REASON_MAX
#define NPEERS HM_MAX_REPLICAS

/* ---- identities (as test_xdp_filter.c, for replicas 0..15) ------------- */

struct peer {
	uint32_t id;
	struct hm_keypair kp;
	uint8_t tx[HM_LINK_KEY_LEN]; /* the sender's key toward us */
	uint8_t rx[HM_LINK_KEY_LEN]; /* our key for it */
	int family;
	uint8_t addr[16];
	uint16_t port;
};

static struct peer peers[NPEERS];
static bool keys_ready;

static bool init_keys(void)
{
	if (keys_ready)
		return true;
	if (!ASSERT_OK(hm_crypto_init(), "hm_crypto_init"))
		return false;
	for (uint32_t i = 0; i < NPEERS; i++) {
		struct peer *p = &peers[i];

		memset(p, 0, sizeof(*p));
		p->id = i;
		if (!ASSERT_OK(hm_keypair_generate(&p->kp), "hm_keypair_generate"))
			return false;
		p->family = i == 3 ? AF_INET6 : AF_INET;
		if (p->family == AF_INET6) {
			p->addr[0] = 0xfd;
			p->addr[15] = (uint8_t)(0x10 + i);
		} else {
			p->addr[0] = 198; /* 198.18.0.0/15, the test range */
			p->addr[1] = 18;
			p->addr[3] = (uint8_t)(10 + i);
		}
		p->port = (uint16_t)(7100 + i);
	}
	for (uint32_t i = 0; i < NPEERS; i++) {
		struct peer *p = &peers[i];
		struct hm_link_keys ours, theirs;

		if (i == SELF)
			continue;
		if (!ASSERT_OK(hm_link_keys_derive(SELF, &peers[SELF].kp, i, p->kp.pk, &ours),
			       "derive (receiver side)") ||
		    !ASSERT_OK(hm_link_keys_derive(i, &p->kp, SELF, peers[SELF].kp.pk, &theirs),
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

/* ---- frames (selftests/dataplane/hm_frames.h) ------------------------------------ */

/* A frame from the sender's own address and port to PORT. */
static void frame_of(struct frame *f, const struct dgram *d)
{
	const struct peer *p = &peers[hm_get_be32(d->b + HM_OFF_SENDER) % NPEERS];
	struct src s = { .family = p->family, .port = p->port };

	memcpy(s.addr, p->addr, sizeof(s.addr));
	mkframe(f, &s, 0, PORT, d->b, d->len);
}

static uint8_t phase_type(enum hm_vote_phase ph)
{
	return ph == HM_PHASE_PREPARE ? HM_MSG_PREPARE : HM_MSG_COMMIT;
}

/* A signed vote from `voter`, MAC stamped with its link key toward us. */
static void mkvote(struct dgram *d, enum hm_vote_phase ph, uint32_t voter, uint64_t view,
		   uint64_t seq, const uint8_t digest[HM_DIGEST_LEN], uint16_t flags)
{
	d->len = hm_msg_build_flags(d->b, sizeof(d->b), phase_type(ph), flags, voter, view, seq,
				    digest, NULL, 0, &peers[voter % NPEERS].kp);
	hm_mac_stamp((struct hm_hdr *)d->b, peers[voter % NPEERS].tx);
}

static void mkmsg(struct dgram *d, uint8_t type, uint32_t sender, uint64_t view, uint64_t seq,
		  uint32_t plen)
{
	uint8_t payload[64] = { 1, 2, 3 };

	d->len = hm_msg_build(d->b, sizeof(d->b), type, sender, view, seq, NULL, payload, plen,
			      &peers[sender % NPEERS].kp);
	hm_mac_stamp((struct hm_hdr *)d->b, peers[sender % NPEERS].tx);
}

static void digest_of(uint8_t out[HM_DIGEST_LEN], uint64_t a, uint64_t b)
{
	uint64_t in[2] = { a, b };

	hm_digest(in, sizeof(in), out);
}

/* ---- BPF plumbing ------------------------------------------------------- */

static struct hm_xdp_bpf *skel;
static int prog_fd, stats_fd, votes_fd, cfg_fd;
static struct ring_buffer *rb;
static struct hm_xdp_config cfg;

#define EV_MAX 2048
static struct hm_vote_event evs[EV_MAX];
static int nevs, ev_bad_size;

static int on_event(void *ctx, void *data, size_t size)
{
	(void)ctx;
	if (size != sizeof(struct hm_vote_event)) {
		ev_bad_size++;
		return 0;
	}
	if (nevs < EV_MAX)
		memcpy(&evs[nevs], data, sizeof(evs[0]));
	nevs++;
	return 0;
}

/* Collect what the ring buffer holds into evs[0..nevs). */
static int drain_events(void)
{
	nevs = 0;
	ring_buffer__consume(rb);
	return nevs;
}

static bool write_config(void)
{
	uint32_t zero = 0;

	return ASSERT_OK(bpf_map_update_elem(cfg_fd, &zero, &cfg, 0), "update hm_config");
}

static void unload(void)
{
	ring_buffer__free(rb);
	rb = NULL;
	hm_xdp_bpf__destroy(skel);
	skel = NULL;
}

/* Load the program and configure it: replicas 0..n-1 with n = 3f + 1, we
 * are replica 1; normal-case messages of `view` in (low, high]; vote slots
 * seq % window. */
static bool load(uint32_t f, uint64_t view, uint64_t low, uint64_t high, uint32_t window)
{

	if (!init_keys() || !(skel = hm_xdp_open_load()))
		return false;
	prog_fd = bpf_program__fd(skel->progs.hm_xdp);
	stats_fd = bpf_map__fd(skel->maps.node_stats);
	votes_fd = bpf_map__fd(skel->maps.hm_votes);
	cfg_fd = bpf_map__fd(skel->maps.hm_config);
	rb = ring_buffer__new(bpf_map__fd(skel->maps.hm_events), on_event, NULL, NULL);
	if (!ASSERT_TRUE(rb != NULL, "ring_buffer__new"))
		goto fail;
	for (uint32_t i = 0; i < NPEERS; i++) {
		struct hm_xdp_member m = { 0 };

		m.valid = 1;
		m.family = peers[i].family == AF_INET6 ? HM_AF_INET6 : HM_AF_INET;
		memcpy(m.addr, peers[i].addr, 16);
		m.port = htons(peers[i].port);
		memcpy(m.rx_key, peers[i].rx, 16);
		if (!ASSERT_OK(bpf_map_update_elem(bpf_map__fd(skel->maps.hm_members), &i, &m, 0),
			       "update hm_members"))
			goto fail;
	}
	cfg = (struct hm_xdp_config){ .port = PORT, .n = 3 * f + 1, .f = f, .self_id = SELF,
				      .view = view, .low = low, .high = high,
				      .max_message_size = MAXMSG, .window = window };
	if (!write_config())
		goto fail;
	return true;
fail:
	unload();
	return false;
}

/* Run one frame; the XDP verdict, or -errno when the run itself failed. */
static int run_frame(const struct frame *f)
{
	LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = f->buf, .data_size_in = (__u32)f->len,
		    .repeat = 1);
	int err = bpf_prog_test_run_opts(prog_fd, &topts);

	if (err)
		return err < 0 ? err : -EIO;
	return (int)topts.retval;
}

static int run_dgram(const struct dgram *d)
{
	struct frame f;

	frame_of(&f, d);
	return run_frame(&f);
}

static bool read_stats(uint32_t idx, struct hm_node_stats *st)
{
	return bpf_map_lookup_elem(stats_fd, &idx, st) == 0;
}

static uint32_t slot_key(enum hm_vote_phase ph, uint64_t seq)
{
	return (uint32_t)(seq % cfg.window) * HM_PHASE_MAX + ph;
}

static bool read_slot_key(uint32_t key, struct hm_vote_slot *s)
{
	struct hm_xdp_vote_slot v;

	memset(&v, 0, sizeof(v));
	if (bpf_map_lookup_elem_flags(votes_fd, &key, &v, BPF_F_LOCK) != 0)
		return false;
	*s = v.s;
	return true;
}

static bool read_slot(enum hm_vote_phase ph, uint64_t seq, struct hm_vote_slot *s)
{
	return read_slot_key(slot_key(ph, seq), s);
}

/*
 * The controller's side, as user/dataplane/xdp_dataplane.c does it: the hm_vote_policy
 * program run with BPF_PROG_TEST_RUN, which takes the slot's lock like the
 * XDP program.  Returns what hm_quorum_expect / hm_quorum_vote return (the
 * event, if any, taken from the ring buffer into *ev); -2 when the run failed.
 */
static int ctl_run(struct hm_vote_policy_args *a, struct hm_vote_event *ev)
{
	int fd = bpf_program__fd(skel->progs.hm_vote_policy);
	__u32 retval = 0;

	if (hm_vote_policy_run(fd, a, &retval) < 0 || retval != 0)
		return -2;
	if (!a->events)
		return 0;
	if (drain_events() != 1)
		return -2;
	*ev = evs[0];
	return 1;
}

/* HM_POLICY_EXPECT; `fast` asks a PREPARE slot for HM_EV_FAST (the fast
 * path's n-of-n), as hm_quorum_expect_fast. */
static int ctl_expect_fast(enum hm_vote_phase ph, uint64_t view, uint64_t seq,
			   const uint8_t digest[HM_DIGEST_LEN], bool fast, struct hm_vote_event *ev)
{
	struct hm_vote_policy_args a = { .op = HM_POLICY_EXPECT, .phase = ph, .view = view,
					 .seq = seq, .fast = fast };

	memcpy(a.digest, digest, HM_DIGEST_LEN);
	return ctl_run(&a, ev);
}

static int ctl_expect(enum hm_vote_phase ph, uint64_t view, uint64_t seq,
		      const uint8_t digest[HM_DIGEST_LEN], struct hm_vote_event *ev)
{
	return ctl_expect_fast(ph, view, seq, digest, false, ev);
}

static int ctl_own_vote(enum hm_vote_phase ph, uint64_t view, uint64_t seq,
			const uint8_t digest[HM_DIGEST_LEN], const uint8_t sig[HM_SIG_LEN],
			struct hm_vote_event *ev, enum hm_drop_reason *why)
{
	struct hm_vote_policy_args a = { .op = HM_POLICY_OWN_VOTE, .phase = ph, .view = view,
					 .seq = seq };
	int r;

	memcpy(a.digest, digest, HM_DIGEST_LEN);
	memcpy(a.sig, sig, HM_SIG_LEN);
	r = ctl_run(&a, ev);
	/* hm_quorum_vote reports equivocation as an event, other refusals as -1 */
	if (r == 0 && a.result != ACCEPT) {
		*why = (enum hm_drop_reason)a.result;
		return -1;
	}
	return r;
}

/* Zero every slot at or below seq, as hm_quorum_collect. */
static bool ctl_collect(uint64_t seq)
{
	struct hm_vote_policy_args a = { .op = HM_POLICY_COLLECT, .seq = seq };
	struct hm_vote_event ev;

	return ctl_run(&a, &ev) == 0;
}

static const char *why_name(int why)
{
	return why == ACCEPT ? "accept" : hm_drop_reason_name((unsigned)why);
}

/* Equal but for last_activity_timestamp. */
static bool same_counts(const struct hm_node_stats *a, const struct hm_node_stats *b)
{
	struct hm_node_stats x = *a, y = *b;

	x.last_activity_timestamp = y.last_activity_timestamp = 0;
	return memcmp(&x, &y, sizeof(x)) == 0;
}


/*
 * Send a datagram from replica `who` and check: XDP_DROP (or `verdict`),
 * node_stats[who] moved by exactly `want` (accepted: timestamp moves too),
 * no other node_stats entry moved, and return the events it raised (in
 * evs[]).
 */
static int send_expect_v(const struct dgram *d, int verdict, int want, const char *what)
{
	struct hm_node_stats before[HM_XDP_NSTATS], after[HM_XDP_NSTATS];
	uint32_t who = hm_get_be32(d->b + HM_OFF_SENDER);
	int got;

	for (uint32_t i = 0; i < HM_XDP_NSTATS; i++)
		if (!ASSERT_TRUE(read_stats(i, &before[i]), "read node_stats"))
			return -1;
	got = run_dgram(d);
	if (got != verdict)
		HM_FAIL("%s: verdict %d, expected %d", what, got, verdict);
	for (uint32_t i = 0; i < HM_XDP_NSTATS; i++)
		if (!ASSERT_TRUE(read_stats(i, &after[i]), "read node_stats"))
			return -1;
	model_count(&before[who], want);
	model_view(&before[who], who, want, hm_get_be64(d->b + HM_OFF_VIEW), cfg.view);
	for (uint32_t i = 0; i < HM_XDP_NSTATS; i++) {
		if (!same_counts(&before[i], &after[i])) {
			HM_FAIL("%s: node_stats[%u] not as expected for %s", what, i, why_name(want));
			for (int k = 0; k < HM_DROP_REASON_MAX; k++)
				if (hm_drops(after[i].drops)[k] != hm_drops(before[i].drops)[k])
					fprintf(stderr, "    drops[%s]: %llu (model %llu)\n",
						why_name(k), (unsigned long long)hm_drops(after[i].drops)[k],
						(unsigned long long)hm_drops(before[i].drops)[k]);
		}
		if (i == who && want == ACCEPT &&
		    after[i].last_activity_timestamp <= before[i].last_activity_timestamp)
			HM_FAIL("%s: last_activity_timestamp did not move", what);
		if (!(i == who && want == ACCEPT) &&
		    after[i].last_activity_timestamp != before[i].last_activity_timestamp)
			HM_FAIL("%s: node_stats[%u].last_activity_timestamp moved", what, i);
	}
	return drain_events();
}

/* A counted vote is consumed (XDP_DROP), except that one flagged
 * HM_FLAG_RETRANSMIT and accepted or absorbed goes up to the controller. */
static int vote_verdict(const struct dgram *d, int want)
{
	bool retransmit = hm_get_be16(d->b + 6) & HM_FLAG_RETRANSMIT;

	return retransmit && (want == ACCEPT || want == HM_DROP_DUPLICATE) ? XDP_PASS : XDP_DROP;
}

static int send_expect(const struct dgram *d, int want, const char *what)
{
	return send_expect_v(d, vote_verdict(d, want), want, what);
}

/* One vote, built and sent; returns the events it raised. */
static int vote(enum hm_vote_phase ph, uint32_t voter, uint64_t view, uint64_t seq,
		const uint8_t *digest, int want, const char *what)
{
	struct dgram d;

	mkvote(&d, ph, voter, view, seq, digest, 0);
	return send_expect(&d, want, what);
}

static bool check_event(const struct hm_vote_event *e, uint32_t kind, enum hm_vote_phase ph,
			uint64_t view, uint64_t seq, hm_voters_t voters, const uint8_t *digest,
			const char *what)
{
	int failed = hm_test_failed_asserts;

	ASSERT_EQ(e->kind, kind, what);
	ASSERT_EQ(e->phase, ph, what);
	ASSERT_EQ(e->view, view, what);
	ASSERT_EQ(e->seq, seq, what);
	ASSERT_EQ(e->voters, voters, what);
	ASSERT_MEMEQ(e->digest, digest, HM_DIGEST_LEN, what);
	return failed == hm_test_failed_asserts;
}

static bool check_quorum_ev(const struct hm_vote_event *e, enum hm_vote_phase ph,
			    uint64_t view, uint64_t seq, hm_voters_t voters, const uint8_t *digest,
			    const char *what)
{
	return check_event(e, HM_EV_QUORUM, ph, view, seq, voters, digest, what);
}

/* ---- cases -------------------------------------------------------------- */

HM_TEST(xdp_quorum_loads)
{
	struct bpf_prog_info info;
	__u32 len = sizeof(info);

	if (!load(2, 0, 10, 20, 10))
		return;
	memset(&info, 0, sizeof(info));
	if (ASSERT_OK(bpf_obj_get_info_by_fd(prog_fd, &info, &len), "prog info"))
		printf("     hm_xdp: %u instructions verified, %u translated\n",
		       info.verified_insns, info.xlated_prog_len / 8);
	ASSERT_NEQ(bpf_map__btf_value_type_id(skel->maps.hm_votes), 0, "hm_votes BTF");
	ASSERT_EQ(bpf_map__max_entries(skel->maps.hm_votes), HM_XDP_VOTE_SLOTS, "hm_votes entries");
	ASSERT_EQ(bpf_map__value_size(skel->maps.hm_votes), sizeof(struct hm_xdp_vote_slot),
		  "hm_votes value size");
	ASSERT_EQ(bpf_map__type(skel->maps.hm_events), BPF_MAP_TYPE_RINGBUF, "hm_events type");
	ASSERT_EQ(bpf_map__max_entries(skel->maps.hm_events), HM_XDP_EVENTS_BYTES,
		  "hm_events size");
	ASSERT_EQ(sizeof(struct hm_vote_slot), 3136, "hm_vote_slot layout (32 voters)");
	ASSERT_EQ(sizeof(struct hm_vote_event), 160, "hm_vote_event layout (u32 voters, no pad)");
	ASSERT_EQ(sizeof(struct hm_xdp_config), 56, "hm_xdp_config size unchanged");
	unload();
}

/*
 * For f = 1, 2, 5, 10 and both phases, in five orders: the expected digest
 * first; votes first (one short), then the digest, then the last vote;
 * all votes first, then the digest (the controller's write completes the
 * quorum, the program must not raise it again); our own vote through the
 * controller; one vote for another digest among them (it never counts).
 * The quorum event comes with exactly the threshold-th matching vote, once.
 */
HM_TEST(xdp_quorum_threshold)
{
	static const uint32_t fs[] = { 1, 2, 5, 10 };
	const uint64_t view = 2, low = 100, high = 164;

	for (size_t fi = 0; fi < sizeof(fs) / sizeof(fs[0]); fi++) {
		uint32_t f = fs[fi], n = 3 * f + 1;
		uint64_t seq = low + 1;

		if (!load(f, view, low, high, 64))
			return;
		for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
			for (int mode = 0; mode < 5; mode++, seq++) {
				uint32_t thr = ph == HM_PHASE_PREPARE ? 2 * f : 2 * f + 1;
				uint32_t primary = (uint32_t)(view % n);
				uint32_t voters[HM_MAX_REPLICAS], nv = 0, matching = 0;
				uint8_t good[HM_DIGEST_LEN], bad[HM_DIGEST_LEN];
				hm_voters_t bitmap = 0;
				struct hm_vote_event ev;
				struct hm_vote_slot s;
				char what[128];
				int r, events = 0;

				snprintf(what, sizeof(what), "f=%u phase=%d mode=%d", f, ph, mode);
				digest_of(good, seq, 1);
				digest_of(bad, seq, 2);
				for (uint32_t i = 0; i < n; i++)
					if (i != SELF && !(ph == HM_PHASE_PREPARE && i == primary))
						voters[nv++] = i;
				if (mode == 0 || mode == 3) {
					r = ctl_expect(ph, view, seq, good, &ev);
					ASSERT_EQ(r, 0, what);
				}
				if (mode == 3) { /* our own vote, through the controller */
					enum hm_drop_reason why;
					uint8_t sig[HM_SIG_LEN] = { 7 };

					r = ctl_own_vote(ph, view, seq, good, sig, &ev, &why);
					ASSERT_EQ(r, 0, what);
					bitmap |= 1u << SELF;
					matching++;
				}
				if (mode == 4) { /* another digest first: never counts */
					if (nv > thr) {
						ASSERT_EQ(vote(ph, voters[nv - 1], view, seq, bad,
							       ACCEPT, what), 0, what);
						nv--;
					}
					r = ctl_expect(ph, view, seq, good, &ev);
					ASSERT_EQ(r, 0, what);
				}
				for (uint32_t k = 0; k < nv; k++) {
					int got;

					if (mode == 1 && matching == thr - 1) {
						r = ctl_expect(ph, view, seq, good, &ev);
						ASSERT_EQ(r, 0, "expect one short of the quorum");
					}
					if (mode == 2 && matching == thr) {
						r = ctl_expect(ph, view, seq, good, &ev);
						if (ASSERT_EQ(r, 1, "expect completes the quorum"))
							check_quorum_ev(&ev, ph, view, seq, bitmap,
									good, what);
						events++;
					}
					got = vote(ph, voters[k], view, seq, good, ACCEPT, what);
					bitmap |= (hm_voters_t)1 << voters[k];
					matching++;
					if (matching == thr && mode != 2) {
						if (ASSERT_EQ(got, 1, "quorum at the threshold")) {
							check_quorum_ev(&evs[0], ph, view, seq,
									bitmap, good, what);
							events++;
						}
					} else if (!ASSERT_EQ(got, 0, "no event off the threshold")) {
						fprintf(stderr, "    %s: vote %u of %u, %u matching\n",
							what, k + 1, nv, matching);
					}
				}
				if (mode == 2 && matching == thr) {
					r = ctl_expect(ph, view, seq, good, &ev);
					if (ASSERT_EQ(r, 1, "expect completes the quorum"))
						check_quorum_ev(&ev, ph, view, seq, bitmap, good, what);
					events++;
				}
				ASSERT_EQ(events, 1, what);
				if (ASSERT_TRUE(read_slot(ph, seq, &s), "read slot")) {
					ASSERT_EQ(s.view, view, what);
					ASSERT_EQ(s.seq, seq, what);
					ASSERT_EQ(s.phase, ph, what);
					ASSERT_EQ(s.matched, bitmap, what);
					ASSERT_EQ(s.quorum_sent, 1, what);
					ASSERT_EQ(s.expected_set, 1, what);
					ASSERT_MEMEQ(s.expected, good, HM_DIGEST_LEN, what);
				}
				/* Nothing later raises it again: a second expect. */
				ASSERT_EQ(ctl_expect(ph, view, seq, good, &ev), 0, what);
			}
		}
		unload();
	}
}

/* A vote sent again is absorbed: duplicate, no event, slot unchanged; also
 * with the retransmit flag, and after the quorum. */
HM_TEST(xdp_quorum_duplicate)
{
	const uint64_t view = 0, seq = 11;
	uint8_t dg[HM_DIGEST_LEN];
	struct hm_vote_slot a, b;
	struct hm_vote_event ev;
	struct dgram d;

	if (!load(1, view, 10, 20, 10))
		return;
	digest_of(dg, seq, 1);
	mkvote(&d, HM_PHASE_COMMIT, 2, view, seq, dg, 0);
	ASSERT_EQ(send_expect(&d, ACCEPT, "first"), 0, "first: no event");
	ASSERT_TRUE(read_slot(HM_PHASE_COMMIT, seq, &a), "read");
	for (int i = 0; i < 3; i++)
		ASSERT_EQ(send_expect(&d, HM_DROP_DUPLICATE, "again"), 0, "duplicate: no event");
	mkvote(&d, HM_PHASE_COMMIT, 2, view, seq, dg, HM_FLAG_RETRANSMIT);
	ASSERT_EQ(send_expect(&d, HM_DROP_DUPLICATE, "retransmitted"), 0, "no event");
	ASSERT_TRUE(read_slot(HM_PHASE_COMMIT, seq, &b), "read");
	ASSERT_MEMEQ(&a, &b, sizeof(a), "slot unchanged by duplicates");
	/* Complete the quorum (2f+1 = 3), then repeat a vote. */
	ASSERT_EQ(ctl_expect(HM_PHASE_COMMIT, view, seq, dg, &ev), 0, "expect");
	ASSERT_EQ(vote(HM_PHASE_COMMIT, 3, view, seq, dg, ACCEPT, "second"), 0, "no quorum yet");
	ASSERT_EQ(vote(HM_PHASE_COMMIT, 0, view, seq, dg, ACCEPT, "third"), 1, "quorum");
	ASSERT_EQ(vote(HM_PHASE_COMMIT, 0, view, seq, dg, HM_DROP_DUPLICATE, "after quorum"), 0,
		  "duplicate after quorum: no event");
	ASSERT_EQ(vote(HM_PHASE_COMMIT, 3, view, seq, dg, HM_DROP_DUPLICATE, "after quorum"), 0,
		  "duplicate after quorum: no event");
	unload();
}

/*
 * n = 31, f = 10: the widest cluster.  Votes come from the highest ids down
 * (30 first), each sent twice: the duplicate is absorbed and never counted,
 * no event before the threshold-th distinct matching voter (2f = 20
 * PREPAREs, 2f + 1 = 21 COMMITs), exactly one event at it, whose bitmap
 * holds bit 30.  Then f + 1 = 11 replicas (ids 20..30) name a higher view:
 * node_stats keeps each one's max_view_seen, the input of view catch-up.
 */
HM_TEST(xdp_quorum_n31_wide_voters)
{
	const uint32_t f = 10, n = 31;
	const uint64_t view = 0, seq = 101;
	uint8_t good[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	struct hm_vote_slot s;

	if (!load(f, view, 100, 164, 64))
		return;
	digest_of(good, seq, 1);
	for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
		uint32_t thr = ph == HM_PHASE_PREPARE ? 2 * f : 2 * f + 1, matching = 0;
		hm_voters_t bitmap = 0;
		char what[96];

		ASSERT_EQ(ctl_expect(ph, view, seq, good, &ev), 0, "expect first");
		for (uint32_t v = n - 1; v > SELF && matching < thr; v--) {
			struct dgram d;
			int got;

			if (ph == HM_PHASE_PREPARE && v == view % n)
				continue;
			snprintf(what, sizeof(what), "phase %d voter %u (%u matching)", ph, v, matching);
			mkvote(&d, ph, v, view, seq, good, 0);
			got = send_expect(&d, ACCEPT, what);
			bitmap |= (hm_voters_t)1 << v;
			matching++;
			if (matching < thr) {
				ASSERT_EQ(got, 0, "no event below the threshold");
			} else if (ASSERT_EQ(got, 1, "the event at the threshold")) {
				check_quorum_ev(&evs[0], ph, view, seq, bitmap, good, what);
				ASSERT_TRUE(evs[0].voters >> 30 & 1, "voter 30 counted");
				ASSERT_EQ(__builtin_popcount(evs[0].voters), thr, "distinct voters");
			}
			/* the same vote again: absorbed, not counted */
			ASSERT_EQ(send_expect(&d, HM_DROP_DUPLICATE, what), 0, "duplicate: no event");
		}
		ASSERT_EQ(matching, thr, "voters enough for the threshold");
		if (ASSERT_TRUE(read_slot(ph, seq, &s), "read slot")) {
			ASSERT_EQ(s.matched, bitmap, "matched bitmap");
			ASSERT_EQ(s.voted, bitmap, "voted bitmap: duplicates added nothing");
			ASSERT_EQ(s.quorum_sent, 1, "quorum raised once");
		}
	}
	/* f + 1 replicas (20..30) name view 7: each one's max_view_seen. */
	for (uint32_t v = n - 1 - f; v < n; v++) {
		struct hm_node_stats st;
		struct dgram d;

		mkvote(&d, HM_PHASE_COMMIT, v, 7, seq, good, 0);
		run_dgram(&d);
		if (ASSERT_TRUE(read_stats(v, &st), "node_stats"))
			ASSERT_EQ(st.max_view_seen, 7, "a higher view seen, per replica up to 30");
	}
	unload();
}

/* The event carries the second vote's signature: with the first from the
 * slot, the controller builds a proof any replica can check. */
static void check_transferable(enum hm_vote_phase ph, uint32_t who, uint64_t view, uint64_t seq,
			       const uint8_t *d2, const struct hm_vote_event *ev)
{
	uint8_t pks[NPEERS][HM_PUBKEY_LEN];
	struct hm_vote_slot s;
	uint8_t first[HM_EVIDENCE_RECORD], second[HM_EVIDENCE_RECORD], proof[HM_EVIDENCE_LEN];
	uint32_t culprit = 99;
	struct dgram d;

	mkvote(&d, ph, who, view, seq, d2, 0);
	ASSERT_MEMEQ(ev->sig2, ((const struct hm_hdr *)d.b)->sig, HM_SIG_LEN,
		     "sig2 = the second vote's signature");
	if (!ASSERT_TRUE(read_slot(ph, seq, &s), "read slot"))
		return;
	hm_evidence_record(first, phase_type(ph), who, 0, view, seq, s.digests[who], s.sigs[who]);
	hm_evidence_record(second, phase_type(ph), who, 0, view, seq, ev->digest2, ev->sig2);
	for (uint32_t i = 0; i < NPEERS; i++)
		memcpy(pks[i], peers[i].kp.pk, HM_PUBKEY_LEN);
	hm_evidence_build(proof, sizeof(proof), first, second);
	ASSERT_EQ(hm_evidence_check(proof, sizeof(proof), NPEERS,
				    (const uint8_t(*)[HM_PUBKEY_LEN])pks, &culprit, NULL, NULL, NULL),
		  HM_EVIDENCE_OK, "slot + event make a valid proof");
	ASSERT_EQ(culprit, who, "naming the voter");
}

/* A second digest from one voter: an equivocation event with both digests,
 * contradictory_responses, and the slot keeps the first vote. */
HM_TEST(xdp_quorum_equivocation)
{
	const uint64_t view = 4, seq = 15;

	if (!load(2, view, 10, 30, 16))
		return;
	for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
		uint8_t d1[HM_DIGEST_LEN], d2[HM_DIGEST_LEN], d3[HM_DIGEST_LEN];
		struct hm_node_stats st;
		struct hm_vote_slot s;
		uint32_t who = 3;

		digest_of(d1, seq, 1);
		digest_of(d2, seq, 2);
		digest_of(d3, seq, 3);
		ASSERT_EQ(vote(ph, who, view, seq, d1, ACCEPT, "first"), 0, "first");
		if (ASSERT_EQ(vote(ph, who, view, seq, d2, HM_DROP_EQUIVOCATION, "second"), 1,
			      "one event")) {
			ASSERT_EQ(evs[0].kind, HM_EV_EQUIVOCATION, "kind");
			ASSERT_EQ(evs[0].phase, ph, "phase");
			ASSERT_EQ(evs[0].view, view, "view");
			ASSERT_EQ(evs[0].seq, seq, "seq");
			ASSERT_EQ(evs[0].voter, who, "voter");
			ASSERT_EQ(evs[0].voters, 0, "voters");
			ASSERT_MEMEQ(evs[0].digest, d1, HM_DIGEST_LEN, "first digest");
			ASSERT_MEMEQ(evs[0].digest2, d2, HM_DIGEST_LEN, "second digest");
			check_transferable(ph, who, view, seq, d2, &evs[0]);
		}
		ASSERT_TRUE(read_stats(who, &st), "read");
		ASSERT_EQ(st.contradictory_responses, 2 * ph + 1, "contradictory_responses");
		/* Each contradicting vote is one more (as hm_quorum_vote). */
		if (ASSERT_EQ(vote(ph, who, view, seq, d3, HM_DROP_EQUIVOCATION, "third"), 1,
			      "one event"))
			ASSERT_MEMEQ(evs[0].digest2, d3, HM_DIGEST_LEN, "third digest");
		ASSERT_EQ(vote(ph, who, view, seq, d1, HM_DROP_DUPLICATE, "the first again"), 0,
			  "duplicate");
		ASSERT_TRUE(read_stats(who, &st), "read");
		ASSERT_EQ(st.contradictory_responses, 2 * ph + 2, "contradictory_responses");
		ASSERT_TRUE(read_slot(ph, seq, &s), "read");
		ASSERT_EQ(s.voted, 1u << who, "voted");
		ASSERT_MEMEQ(s.digests[who], d1, HM_DIGEST_LEN, "the slot keeps the first digest");
	}
	unload();
}

/* A PREPARE from the view's primary is refused (malformed); its COMMIT
 * counts.  The primary moves with the view. */
HM_TEST(xdp_quorum_primary_prepare)
{
	uint8_t dg[HM_DIGEST_LEN];
	struct hm_vote_slot s;

	if (!load(1, 6, 10, 20, 10)) /* n = 4: primary of view 6 is 2 */
		return;
	digest_of(dg, 12, 1);
	ASSERT_EQ(vote(HM_PHASE_PREPARE, 2, 6, 12, dg, HM_DROP_MALFORMED, "prepare, primary"), 0,
		  "no event");
	ASSERT_TRUE(read_slot(HM_PHASE_PREPARE, 12, &s), "read");
	ASSERT_EQ(s.voted, 0, "not recorded");
	ASSERT_EQ(s.seq, 0, "slot not claimed");
	ASSERT_EQ(vote(HM_PHASE_COMMIT, 2, 6, 12, dg, ACCEPT, "commit, primary"), 0, "no event");
	ASSERT_EQ(vote(HM_PHASE_PREPARE, 3, 6, 12, dg, ACCEPT, "prepare, backup"), 0, "no event");
	cfg.view = 7; /* primary 3 */
	write_config();
	ASSERT_EQ(vote(HM_PHASE_PREPARE, 3, 7, 12, dg, HM_DROP_MALFORMED, "prepare, new primary"),
		  0, "no event");
	ASSERT_EQ(vote(HM_PHASE_PREPARE, 2, 7, 12, dg, ACCEPT, "prepare, old primary"), 0,
		  "no event");
	unload();
}

/* The pre-filter's window: low + 1 and high are counted, low and high + 1
 * and other views are dropped before counting. */
HM_TEST(xdp_quorum_watermarks)
{
	const uint64_t view = 1, low = 40, high = 50;
	uint8_t dg[HM_DIGEST_LEN];
	struct hm_vote_slot s;

	if (!load(1, view, low, high, 10))
		return;
	digest_of(dg, 0, 1);
	for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
		ASSERT_EQ(vote(ph, 0, view, low, dg, HM_DROP_OUT_OF_WINDOW, "seq = low"), 0, "-");
		ASSERT_EQ(vote(ph, 0, view, high + 1, dg, HM_DROP_OUT_OF_WINDOW, "seq = high + 1"), 0,
			  "-");
		/* low and high + 1 share slots with high and low + 1: untouched */
		ASSERT_TRUE(read_slot(ph, low, &s), "read");
		ASSERT_EQ(s.voted | s.seq, 0, "seq = low not counted");
		ASSERT_TRUE(read_slot(ph, high + 1, &s), "read");
		ASSERT_EQ(s.voted | s.seq, 0, "seq = high + 1 not counted");
		ASSERT_EQ(vote(ph, 0, view + 1, low + 1, dg, HM_DROP_BAD_VIEW, "view + 1"), 0, "-");
		ASSERT_EQ(vote(ph, 3, view, low + 1, dg, ACCEPT, "seq = low + 1"), 0, "-");
		ASSERT_EQ(vote(ph, 3, view, high, dg, ACCEPT, "seq = high"), 0, "-");
		ASSERT_TRUE(read_slot(ph, low + 1, &s), "read");
		ASSERT_EQ(s.seq, low + 1, "low + 1 counted");
		ASSERT_EQ(s.voted, 1u << 3, "low + 1 counted");
		ASSERT_TRUE(read_slot(ph, high, &s), "read");
		ASSERT_EQ(s.seq, high, "high counted");
		ASSERT_EQ(s.voted, 1u << 3, "high counted");
	}
	unload();
}

/* A newer seq or view takes a slot over (and forgets its votes and its
 * expected digest); an older vote for a slot that moved on is stale. */
HM_TEST(xdp_quorum_takeover)
{
	uint8_t dg[HM_DIGEST_LEN], dg2[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	struct hm_vote_slot s;

	/* window 10 inside (10, 40]: seqs 15, 25 and 35 share a slot */
	if (!load(2, 3, 10, 40, 10))
		return;
	digest_of(dg, 15, 1);
	digest_of(dg2, 25, 1);
	for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
		ASSERT_EQ(ctl_expect(ph, 3, 15, dg, &ev), 0, "expect 15");
		ASSERT_EQ(vote(ph, 4, 3, 15, dg, ACCEPT, "15 from 4"), 0, "-");
		ASSERT_EQ(vote(ph, 5, 3, 15, dg, ACCEPT, "15 from 5"), 0, "-");
		ASSERT_TRUE(read_slot(ph, 15, &s), "read");
		ASSERT_EQ(s.matched, 1u << 4 | 1u << 5, "matched");
		/* newer seq */
		ASSERT_EQ(vote(ph, 6, 3, 25, dg2, ACCEPT, "25 from 6"), 0, "-");
		ASSERT_TRUE(read_slot(ph, 25, &s), "read");
		ASSERT_EQ(s.seq, 25, "taken over");
		ASSERT_EQ(s.view, 3, "view");
		ASSERT_EQ(s.phase, ph, "phase");
		ASSERT_EQ(s.voted, 1u << 6, "only the new vote");
		ASSERT_EQ(s.matched, 0, "matched reset");
		ASSERT_EQ(s.expected_set, 0, "expected reset");
		/* What the old owner left in digests[]/sigs[] is no vote: 4's
		 * vote for 15 neither makes this one a duplicate nor counts. */
		ASSERT_EQ(vote(ph, 4, 3, 25, dg, ACCEPT, "25 from 4"), 0, "-");
		ASSERT_TRUE(read_slot(ph, 25, &s), "read");
		ASSERT_EQ(s.voted, 1u << 6 | 1u << 4, "4 voted afresh");
		/* older seq: stale, even from a voter new to the slot */
		ASSERT_EQ(vote(ph, 4, 3, 15, dg, HM_DROP_STALE, "15 after 25"), 0, "-");
		ASSERT_EQ(ctl_expect(ph, 3, 15, dg, &ev), 0, "expect for the old seq");
		ASSERT_TRUE(read_slot(ph, 25, &s), "read");
		ASSERT_EQ(s.seq, 25, "still 25");
		ASSERT_EQ(s.expected_set, 0, "old expect ignored");
		/* newer view, same seq */
		cfg.view = 4;
		write_config();
		ASSERT_EQ(vote(ph, 0, 4, 25, dg, ACCEPT, "25 in view 4"), 0, "-");
		ASSERT_TRUE(read_slot(ph, 25, &s), "read");
		ASSERT_EQ(s.view, 4, "view 4 took over");
		ASSERT_EQ(s.voted, 1u << 0, "only the new vote");
		cfg.view = 3;
		write_config();
		ASSERT_EQ(vote(ph, 2, 3, 25, dg2, HM_DROP_STALE, "25 in view 3 again"), 0, "-");
		ASSERT_EQ(vote(ph, 2, 3, 35, dg2, ACCEPT, "35 in view 3: newer seq wins"), 0, "-");
		ASSERT_TRUE(read_slot(ph, 35, &s), "read");
		ASSERT_EQ(s.seq, 35, "35");
		ASSERT_EQ(s.view, 3, "view 3");
		cfg.view = 4;
		write_config();
		ASSERT_EQ(vote(ph, 0, 4, 25, dg, HM_DROP_STALE, "25 in view 4 after 35"), 0, "-");
		cfg.view = 3;
		write_config();
	}
	unload();
}

/* The slot keeps each voter's digest and the packet's signature bytes. */
HM_TEST(xdp_quorum_signatures)
{
	const uint64_t view = 5, seq = 33;
	struct dgram d[HM_MAX_REPLICAS];
	struct hm_vote_slot s;

	if (!load(5, view, 30, 40, 10))
		return;
	for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
		uint16_t voted = 0;

		for (uint32_t v = 0; v < 16; v++) {
			uint8_t dg[HM_DIGEST_LEN];

			if (v == SELF || (ph == HM_PHASE_PREPARE && v == view % 16))
				continue;
			digest_of(dg, seq, v % 3);
			mkvote(&d[v], ph, v, view, seq, dg, v % 2 ? HM_FLAG_RETRANSMIT : 0);
			ASSERT_EQ(send_expect(&d[v], ACCEPT, "vote"), 0, "no event");
			voted |= (uint16_t)(1u << v);
		}
		if (!ASSERT_TRUE(read_slot(ph, seq, &s), "read"))
			continue;
		ASSERT_EQ(s.voted, voted, "voted");
		for (uint32_t v = 0; v < 16; v++) {
			if (!(voted >> v & 1)) {
				ASSERT_TRUE(sodium_is_zero(s.sigs[v], HM_SIG_LEN), "no sig");
				continue;
			}
			ASSERT_MEMEQ(s.sigs[v], d[v].b + HM_OFF_SIG, HM_SIG_LEN, "signature stored");
			ASSERT_MEMEQ(s.digests[v], d[v].b + HM_OFF_DIGEST, HM_DIGEST_LEN,
				     "digest stored");
			ASSERT_TRUE(hm_verify_header((const struct hm_hdr *)d[v].b, peers[v].kp.pk),
				    "stored signature verifies");
		}
	}
	unload();
}

/* Counted votes are consumed (XDP_DROP, accepted in node_stats); other
 * types still pass; window 0 or too large turns counting off. */
HM_TEST(xdp_quorum_verdicts)
{
	const uint64_t view = 0;
	uint8_t dg[HM_DIGEST_LEN];
	struct hm_vote_slot s;
	struct hm_node_stats st;
	struct dgram d;

	if (!load(2, view, 10, 20, 10))
		return;
	digest_of(dg, 1, 1);
	mkvote(&d, HM_PHASE_PREPARE, 2, view, 12, dg, 0);
	send_expect_v(&d, XDP_DROP, ACCEPT, "prepare consumed");
	mkvote(&d, HM_PHASE_COMMIT, 3, view, 12, dg, 0);
	send_expect_v(&d, XDP_DROP, ACCEPT, "commit consumed (v6)");
	ASSERT_TRUE(read_stats(3, &st), "read");
	ASSERT_EQ(st.consecutive_faults, 0, "faults");
	ASSERT_EQ(st.total_messages, 1, "total");
	mkmsg(&d, HM_MSG_PRE_PREPARE, 0, view, 12, 24);
	send_expect_v(&d, XDP_PASS, ACCEPT, "pre-prepare passes");
	mkmsg(&d, HM_MSG_CHECKPOINT, 2, view, 20, 0);
	send_expect_v(&d, XDP_PASS, ACCEPT, "checkpoint passes");
	mkmsg(&d, HM_MSG_STATUS, 4, 0, 3, 0);
	send_expect_v(&d, XDP_PASS, ACCEPT, "status passes");
	/* Pre-filter drops are still drops, and not counted as votes. */
	mkvote(&d, HM_PHASE_PREPARE, 4, view, 13, dg, 0);
	d.b[HM_OFF_MAC] ^= 1;
	send_expect_v(&d, XDP_DROP, HM_DROP_BAD_MAC, "bad mac");
	ASSERT_TRUE(read_slot(HM_PHASE_PREPARE, 13, &s), "read");
	ASSERT_EQ(s.voted, 0, "bad mac not counted");
	/* window 0 (not configured) and above the maximum: votes pass up. */
	cfg.window = 0;
	write_config();
	mkvote(&d, HM_PHASE_PREPARE, 4, view, 13, dg, 0);
	send_expect_v(&d, XDP_PASS, ACCEPT, "window 0: prepare passes");
	cfg.window = HM_XDP_VOTE_WINDOW_MAX + 1;
	write_config();
	mkvote(&d, HM_PHASE_COMMIT, 4, view, 13, dg, 0);
	send_expect_v(&d, XDP_PASS, ACCEPT, "window too large: commit passes");
	cfg.window = 10;
	ASSERT_TRUE(read_slot(HM_PHASE_PREPARE, 13, &s), "read");
	ASSERT_EQ(s.voted, 0, "not counted");
	ASSERT_TRUE(read_slot(HM_PHASE_COMMIT, 13, &s), "read");
	ASSERT_EQ(s.voted, 0, "not counted");
	/* The largest window: the last slots are reachable. */
	cfg.window = HM_XDP_VOTE_WINDOW_MAX;
	cfg.low = 5000;
	cfg.high = 5000 + HM_XDP_VOTE_WINDOW_MAX;
	write_config();
	{
		uint64_t seq = (5000 / HM_XDP_VOTE_WINDOW_MAX + 1) * HM_XDP_VOTE_WINDOW_MAX - 1;

		mkvote(&d, HM_PHASE_COMMIT, 4, view, seq, dg, 0);
		send_expect_v(&d, XDP_DROP, ACCEPT, "last slot");
		ASSERT_EQ(slot_key(HM_PHASE_COMMIT, seq), HM_XDP_VOTE_SLOTS - 1, "last key");
		ASSERT_TRUE(read_slot(HM_PHASE_COMMIT, seq, &s), "read");
		ASSERT_EQ(s.voted, 1u << 4, "counted in the last slot");
	}
	ASSERT_EQ(skel->bss->hm_events_lost, 0, "no event lost");
	unload();
}

/* ---- two CPUs on one slot ------------------------------------------------ */

#define CC_SEQS 1024
#define CC_THREADS 4
#define CC_REPEAT 3

struct cc_thread {
	pthread_t tid;
	int cpu, id, nthreads, err, verdict_bad;
	struct dgram *pkts; /* [seq][voter] */
	uint32_t n;
};

static pthread_barrier_t cc_barrier;
static unsigned cc_arrived, cc_round;

/* A spinning barrier, so that the threads enter each slot together. */
static void cc_sync(int nthreads)
{
	unsigned round = __atomic_load_n(&cc_round, __ATOMIC_ACQUIRE);

	if (__atomic_add_fetch(&cc_arrived, 1, __ATOMIC_ACQ_REL) == (unsigned)nthreads) {
		__atomic_store_n(&cc_arrived, 0, __ATOMIC_RELAXED);
		__atomic_store_n(&cc_round, round + 1, __ATOMIC_RELEASE);
		return;
	}
	while (__atomic_load_n(&cc_round, __ATOMIC_ACQUIRE) == round) {
#if defined(__x86_64__) || defined(__i386__)
		__builtin_ia32_pause();
#endif
	}
}

/* Each thread sends the votes of its share of the voters, seq by seq, each
 * frame a few times (the repeats are duplicates), so that the threads meet
 * on every slot. */
static void *cc_run(void *arg)
{
	struct cc_thread *t = arg;
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(t->cpu, &one);
	pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	pthread_barrier_wait(&cc_barrier);
	for (uint32_t s = 0; s < CC_SEQS; s++) {
		cc_sync(t->nthreads);
		for (uint32_t v = (uint32_t)t->id; v < t->n; v += (uint32_t)t->nthreads) {
			struct frame f;

			if (v == SELF)
				continue;
			frame_of(&f, &t->pkts[s * HM_MAX_REPLICAS + v]);
			/* repeat = 1 and a loop: with repeat > 1 every run goes
			 * through the XDP dispatcher update (synchronize_rcu). */
			for (int k = 0; k < CC_REPEAT; k++) {
				LIBBPF_OPTS(bpf_test_run_opts, topts, .data_in = f.buf,
					    .data_size_in = (__u32)f.len, .repeat = 1);
				if (bpf_prog_test_run_opts(prog_fd, &topts))
					t->err++;
				else if (topts.retval != XDP_DROP)
					t->verdict_bad++;
			}
		}
	}
	return NULL;
}

/*
 * Threads on different CPUs count the 15 COMMITs of f = 5 for 1024 slots at
 * once, each frame CC_REPEAT times.  With the slot lock no vote is lost (voted and matched have all 15
 * bits), each slot raises exactly one quorum event, with exactly 2f + 1 = 11
 * voters, and every voter is accepted once per slot and absorbed as a
 * duplicate on every repeat.
 */
HM_TEST(xdp_quorum_concurrent)
{
	struct cc_thread th[CC_THREADS];
	struct dgram *pkts;
	static uint8_t seen[CC_SEQS + 1];
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN), nth;
	const uint64_t view = 0;
	uint16_t all = 0;
	long events = 0;

	nth = ncpu < 2 ? 2 : ncpu > CC_THREADS ? CC_THREADS : ncpu;
	if (!load(5, view, 0, CC_SEQS, CC_SEQS))
		return;
	pkts = calloc((size_t)CC_SEQS * HM_MAX_REPLICAS, sizeof(*pkts));
	if (!ASSERT_TRUE(pkts != NULL, "calloc"))
		goto out;
	for (uint32_t s = 0; s < CC_SEQS; s++) {
		uint8_t dg[HM_DIGEST_LEN];
		struct hm_vote_event ev;

		digest_of(dg, s + 1, 0);
		if (!ASSERT_EQ(ctl_expect(HM_PHASE_COMMIT, view, s + 1, dg, &ev), 0, "expect"))
			goto out;
		for (uint32_t v = 0; v < cfg.n; v++)
			if (v != SELF)
				mkvote(&pkts[s * HM_MAX_REPLICAS + v], HM_PHASE_COMMIT, v, view, s + 1,
				       dg, 0);
	}
	for (uint32_t v = 0; v < cfg.n; v++)
		if (v != SELF)
			all |= (uint16_t)(1u << v);
	pthread_barrier_init(&cc_barrier, NULL, (unsigned)nth);
	cc_arrived = cc_round = 0;
	for (int i = 0; i < nth; i++) {
		th[i] = (struct cc_thread){ .cpu = i % (ncpu > 0 ? ncpu : 1), .id = i,
					    .nthreads = nth, .pkts = pkts, .n = cfg.n };
		pthread_create(&th[i].tid, NULL, cc_run, &th[i]);
	}
	for (int i = 0; i < nth; i++) {
		pthread_join(th[i].tid, NULL);
		ASSERT_EQ(th[i].err, 0, "test runs");
		ASSERT_EQ(th[i].verdict_bad, 0, "verdicts");
	}
	pthread_barrier_destroy(&cc_barrier);
	/* The ring holds 256 KiB: 1024 events of 104 bytes fit. */
	memset(seen, 0, sizeof(seen));
	nevs = 0;
	ring_buffer__consume(rb);
	events = nevs;
	ASSERT_EQ(events, CC_SEQS, "one quorum event per slot");
	for (long i = 0; i < events && i < EV_MAX; i++) {
		const struct hm_vote_event *e = &evs[i];

		if (!ASSERT_EQ(e->kind, HM_EV_QUORUM, "kind") ||
		    !ASSERT_TRUE(e->seq >= 1 && e->seq <= CC_SEQS, "seq") ||
		    !ASSERT_EQ(seen[e->seq]++, 0, "once per slot") ||
		    !ASSERT_EQ(__builtin_popcount(e->voters), 11, "exactly 2f + 1 voters") ||
		    !ASSERT_EQ(e->voters & ~all, 0, "voters"))
			break;
	}
	printf("     concurrent: %d threads on %d CPUs, %d slots, %ld quorum events\n", nth, ncpu,
	       CC_SEQS, events);
	ASSERT_EQ(skel->bss->hm_events_lost, 0, "no event lost");
	for (uint32_t s = 1; s <= CC_SEQS; s++) {
		struct hm_vote_slot sl;

		if (!ASSERT_TRUE(read_slot(HM_PHASE_COMMIT, s, &sl), "read"))
			break;
		if (!ASSERT_EQ(sl.voted, all, "no vote lost") ||
		    !ASSERT_EQ(sl.matched, all, "matched") || !ASSERT_EQ(sl.quorum_sent, 1, "sent"))
			break;
	}
	for (uint32_t v = 0; v < cfg.n; v++) {
		struct hm_node_stats st;

		if (v == SELF || !ASSERT_TRUE(read_stats(v, &st), "read"))
			continue;
		ASSERT_EQ(st.total_messages, CC_REPEAT * CC_SEQS, "every repeat counted");
		ASSERT_EQ(hm_drops(st.drops)[HM_DROP_DUPLICATE], (CC_REPEAT - 1) * CC_SEQS,
			  "repeats are duplicates");
	}
out:
	free(pkts);
	unload();
}

/*
 * The controller's writes race the votes: on every slot, one thread runs
 * two peers' COMMITs through XDP while the other sets the expected digest
 * and records our own vote through hm_vote_policy, all at once.  Each slot
 * must end with all three votes and raise its quorum exactly once; a
 * controller that wrote the slot with a userspace lookup-modify-update
 * would now and then overwrite a vote counted in between.
 */
#define RACE_SEQS 1000

struct race_thread {
	pthread_t tid;
	int cpu, role, err;
	const struct dgram *votes; /* [seq][2] */
};

static void *race_run(void *arg)
{
	struct race_thread *t = arg;
	int policy_fd = bpf_program__fd(skel->progs.hm_vote_policy);
	cpu_set_t one;

	CPU_ZERO(&one);
	CPU_SET(t->cpu, &one);
	pthread_setaffinity_np(pthread_self(), sizeof(one), &one);
	pthread_barrier_wait(&cc_barrier);
	for (uint32_t s = 0; s < RACE_SEQS; s++) {
		cc_sync(2);
		if (t->role == 0) {
			for (int k = 0; k < 2; k++) {
				struct frame f;
				LIBBPF_OPTS(bpf_test_run_opts, o, .repeat = 1);

				frame_of(&f, &t->votes[s * 2 + k]);
				o.data_in = f.buf;
				o.data_size_in = (__u32)f.len;
				if (bpf_prog_test_run_opts(prog_fd, &o) || o.retval != XDP_DROP)
					t->err++;
			}
			continue;
		}
		for (uint32_t op = HM_POLICY_EXPECT; op <= HM_POLICY_OWN_VOTE; op++) {
			struct hm_vote_policy_args a = { .op = op, .phase = HM_PHASE_COMMIT,
							 .seq = s + 1 };
			__u32 retval = 0;

			digest_of(a.digest, s + 1, 0);
			if (hm_vote_policy_run(policy_fd, &a, &retval) || retval != 0 ||
			    a.result != ACCEPT)
				t->err++;
		}
	}
	return NULL;
}

HM_TEST(xdp_quorum_controller_races_votes)
{
	static struct dgram votes[RACE_SEQS * 2];
	struct race_thread th[2];
	int ncpu = (int)sysconf(_SC_NPROCESSORS_ONLN);
	const uint16_t all = 1u << 0 | 1u << SELF | 1u << 2;
	long events;

	if (!load(1, 0, 0, 1024, 1024))
		return;
	for (uint32_t s = 0; s < RACE_SEQS; s++) {
		uint8_t dg[HM_DIGEST_LEN];

		digest_of(dg, s + 1, 0);
		mkvote(&votes[s * 2], HM_PHASE_COMMIT, 0, 0, s + 1, dg, 0);
		mkvote(&votes[s * 2 + 1], HM_PHASE_COMMIT, 2, 0, s + 1, dg, 0);
	}
	pthread_barrier_init(&cc_barrier, NULL, 2);
	cc_arrived = cc_round = 0;
	for (int i = 0; i < 2; i++) {
		th[i] = (struct race_thread){ .cpu = i % (ncpu > 0 ? ncpu : 1), .role = i,
					      .votes = votes };
		pthread_create(&th[i].tid, NULL, race_run, &th[i]);
	}
	for (int i = 0; i < 2; i++) {
		pthread_join(th[i].tid, NULL);
		ASSERT_EQ(th[i].err, 0, i ? "policy runs" : "vote runs");
	}
	pthread_barrier_destroy(&cc_barrier);
	events = drain_events();
	ASSERT_EQ(events, RACE_SEQS, "one quorum event per slot");
	for (uint32_t s = 1; s <= RACE_SEQS; s++) {
		struct hm_vote_slot sl;

		if (!ASSERT_TRUE(read_slot(HM_PHASE_COMMIT, s, &sl), "read"))
			break;
		if (!ASSERT_EQ(sl.voted, all, "no vote lost") ||
		    !ASSERT_EQ(sl.matched, all, "matched") || !ASSERT_EQ(sl.quorum_sent, 1, "sent"))
			break;
	}
	printf("     controller vs votes: %d slots on %d CPUs, %ld quorum events\n", RACE_SEQS,
	       ncpu, events);
	unload();
}

/* HM_POLICY_EXPECT_OWN_VOTE (the controller's one run per own vote) does
 * what HM_POLICY_EXPECT then HM_POLICY_OWN_VOTE do: one quorum event at
 * most, raised by whichever completes it, our vote recorded either way. */
HM_TEST(xdp_quorum_expect_own_vote)
{
	const uint16_t me = 1u << SELF;
	/* peer votes already in the slot, and the quorum event's voters */
	static const struct { uint16_t before, want; } cases[] = {
		{ 0, 0 },                                  /* no quorum yet */
		{ 1u << 0 | 1u << 2, 1u << 0 | 1u << 2 | me }, /* our vote completes it */
		{ 1u << 0 | 1u << 2 | 1u << 3, 1u << 0 | 1u << 2 | 1u << 3 }, /* the expectation does */
	};

	if (!load(1, 0, 0, 64, 64))
		return;
	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		uint64_t seq = 10 + k;
		struct hm_vote_policy_args a = { .op = HM_POLICY_EXPECT_OWN_VOTE,
						 .phase = HM_PHASE_COMMIT, .seq = seq };
		struct hm_vote_slot sl;
		__u32 retval = 0;
		int n;

		digest_of(a.digest, seq, 1);
		memset(a.sig, 7, sizeof(a.sig));
		for (uint32_t v = 0; v < 4; v++)
			if (cases[k].before >> v & 1)
				vote(HM_PHASE_COMMIT, v, 0, seq, a.digest, ACCEPT, "peer vote");
		if (!ASSERT_OK(hm_vote_policy_run(bpf_program__fd(skel->progs.hm_vote_policy), &a,
						  &retval), "run") ||
		    !ASSERT_EQ(retval, 0, "accepted"))
			break;
		ASSERT_EQ(a.result, ACCEPT, "own vote recorded");
		n = drain_events();
		ASSERT_EQ(n, cases[k].want ? 1 : 0, "quorum events");
		if (n == 1)
			ASSERT_TRUE(check_quorum_ev(&evs[0], HM_PHASE_COMMIT, 0, seq, cases[k].want,
						    a.digest, "event"), "event");
		if (!ASSERT_TRUE(read_slot(HM_PHASE_COMMIT, seq, &sl), "read"))
			break;
		ASSERT_EQ(sl.voted, cases[k].before | me, "voters");
		ASSERT_EQ(sl.expected_set, 1, "expected set");
		ASSERT_MEMEQ(sl.sigs[SELF], a.sig, HM_SIG_LEN, "our signature kept");
	}
	unload();
}

/* HM_POLICY_SET_REPUTATION stores the score into one node_stats field; the
 * counters beside it, which the XDP program adds to, are untouched. */
HM_TEST(xdp_set_reputation)
{
	struct hm_vote_policy_args a = { .op = HM_POLICY_SET_REPUTATION, .index = 2,
					 .value = HM_REPUTATION_ONE / 4 };
	struct hm_node_stats before, after;
	__u32 retval = 0;
	uint8_t dg[HM_DIGEST_LEN];

	if (!load(1, 0, 10, 20, 10))
		return;
	digest_of(dg, 1, 1);
	vote(HM_PHASE_COMMIT, 2, 0, 11, dg, ACCEPT, "a vote");
	if (!ASSERT_TRUE(read_stats(2, &before), "read"))
		goto out;
	ASSERT_OK(hm_vote_policy_run(bpf_program__fd(skel->progs.hm_vote_policy), &a, &retval),
		  "run");
	ASSERT_EQ(retval, 0, "accepted");
	ASSERT_TRUE(read_stats(2, &after), "read");
	ASSERT_EQ(after.reputation_score, HM_REPUTATION_ONE / 4, "score stored");
	after.reputation_score = before.reputation_score;
	ASSERT_MEMEQ(&after, &before, sizeof(after), "every other field as it was");
	a.index = HM_XDP_NSTATS; /* past the map */
	ASSERT_OK(hm_vote_policy_run(bpf_program__fd(skel->progs.hm_vote_policy), &a, &retval),
		  "run");
	ASSERT_EQ(retval, (__u32)-1, "an index past node_stats is refused");
out:
	unload();
}

/* hm_progress: the highest seq each replica named in a message that passed
 * the identity checks, whatever happened to it after (here: out of the
 * window); nothing for a bad MAC or a STATUS. */
HM_TEST(xdp_progress)
{
	uint8_t dg[HM_DIGEST_LEN];
	struct dgram d;
	uint64_t seen;
	uint32_t two = 2;

	if (!load(1, 0, 10, 20, 10))
		return;
	digest_of(dg, 1, 1);
	mkvote(&d, HM_PHASE_COMMIT, 2, 0, 15, dg, 0);
	send_expect(&d, ACCEPT, "in the window");
	mkvote(&d, HM_PHASE_COMMIT, 2, 0, 95, dg, 0);
	send_expect(&d, HM_DROP_OUT_OF_WINDOW, "far ahead");
	ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(skel->maps.hm_progress), &two, &seen), "read");
	ASSERT_EQ(seen, 95, "out-of-window seq still tells how far replica 2 got");
	mkvote(&d, HM_PHASE_COMMIT, 2, 0, 500, dg, 0);
	d.b[HM_OFF_MAC] ^= 1;
	send_expect(&d, HM_DROP_BAD_MAC, "bad MAC");
	mkmsg(&d, HM_MSG_STATUS, 2, 0, 700, 0);
	send_expect_v(&d, XDP_PASS, ACCEPT, "status");
	ASSERT_OK(bpf_map_lookup_elem(bpf_map__fd(skel->maps.hm_progress), &two, &seen), "read");
	ASSERT_EQ(seen, 95, "neither a bad MAC nor a STATUS moves it");
	unload();
}

/* ---- the fast path: HM_EV_FAST ----------------------------------------- */

/* The controller's run for its own vote (HM_POLICY_EXPECT_OWN_VOTE, what
 * xdp_dataplane.c sends for our PREPARE), with the fast flag; or our vote
 * alone (HM_POLICY_OWN_VOTE) when !with_expect.  sig NULL: a fixed one.
 * Returns the events (0 or 1, the event in *ev; -2 when the run failed or
 * raised more than one); *why is the vote's outcome (ACCEPT or the drop
 * reason). */
static int ctl_own(enum hm_vote_phase ph, uint64_t view, uint64_t seq, const uint8_t *digest,
		   const uint8_t *sig, bool with_expect, bool fast, struct hm_vote_event *ev,
		   int *why)
{
	struct hm_vote_policy_args a = { .op = with_expect ? HM_POLICY_EXPECT_OWN_VOTE
							   : HM_POLICY_OWN_VOTE,
					 .phase = ph, .view = view, .seq = seq, .fast = fast };
	int r;

	memcpy(a.digest, digest, HM_DIGEST_LEN);
	if (sig)
		memcpy(a.sig, sig, HM_SIG_LEN);
	else
		memset(a.sig, 0x5a, HM_SIG_LEN);
	r = ctl_run(&a, ev);
	*why = (int)a.result;
	return r;
}

/*
 * A fast-path scenario: a script of steps on one slot, run against the XDP
 * program, with a small model of what each step must raise:
 *   E  the expectation with the case's fast flag (HM_POLICY_EXPECT)
 *   F  the expectation with the flag set, N with it clear
 *   O  our own vote with the expectation in one run (HM_POLICY_EXPECT_OWN_VOTE,
 *      the case's flag)      o  our own vote alone (HM_POLICY_OWN_VOTE)
 *   v  the next peer's vote, the accepted digest;   b  the same, another digest
 *   -  every remaining peer's but one, the accepted digest;   *  every remaining peer's
 *   x  the last peer that voted `b` votes the accepted digest (equivocation)
 * Peers vote from the highest id down (for n = 31, bit 30 first).
 * want_quorum / want_fast: the events the case must deliver in all, stated
 * by hand (not by the model), so a model sharing a bug with the slot code
 * still fails.
 */
struct fast_case {
	const char *name;
	enum hm_vote_phase ph;
	bool self_primary; /* the view makes us (replica 1) the primary; else replica 0 is */
	bool fast;
	const char *steps;
	int want_quorum, want_fast;
};

static const struct fast_case fast_cases[] = {
	{ "backup: expectation and own vote first, then the peers", HM_PHASE_PREPARE, false, true,
	  "O*", 1, 1 },
	{ "backup: expectation first, own vote last", HM_PHASE_PREPARE, false, true, "E*o", 1, 1 },
	/* every peer's vote in, then our expectation and vote in one run: the
	 * expectation completes the quorum, our vote the n-of-n; one run sends
	 * one event, the fast one (it implies the quorum) */
	{ "backup: peers first, then expectation and own vote", HM_PHASE_PREPARE, false, true,
	  "*O", 0, 1 },
	{ "primary: expectation first", HM_PHASE_PREPARE, true, true, "E*", 1, 1 },
	{ "primary: expectation after every vote", HM_PHASE_PREPARE, true, true, "*E", 0, 1 },
	{ "primary: expectation one vote short", HM_PHASE_PREPARE, true, true, "-E*", 1, 1 },
	{ "n-2 matching and one mismatching", HM_PHASE_PREPARE, true, true, "E-bx", 1, 0 },
	{ "n-2 matching and one mismatching, then the expectation", HM_PHASE_PREPARE, true, true,
	  "-bE", 1, 0 },
	{ "backup: one peer mismatching", HM_PHASE_PREPARE, false, true, "Ob*", 1, 0 },
	{ "no fast flag", HM_PHASE_PREPARE, true, false, "E*", 1, 0 },
	{ "no fast flag, expectation after every vote", HM_PHASE_PREPARE, true, false, "*E", 1, 0 },
	{ "no fast flag, backup", HM_PHASE_PREPARE, false, false, "O*", 1, 0 },
	{ "the flag counts with the first expectation only", HM_PHASE_PREPARE, true, false, "NF*",
	  1, 0 },
	{ "COMMIT with the fast flag", HM_PHASE_COMMIT, false, true, "O*", 1, 0 },
	{ "COMMIT with the fast flag, expectation last", HM_PHASE_COMMIT, false, true, "*O", 1, 0 },
	{ "COMMIT with the fast flag, own vote last", HM_PHASE_COMMIT, false, true, "E*o", 1, 0 },
};

static void fast_case_run(const struct fast_case *c, uint32_t f, uint64_t seq)
{
	uint32_t n = 3 * f + 1;
	uint64_t view = c->self_primary ? SELF : 0;
	uint32_t primary = (uint32_t)(view % n), peers[HM_MAX_REPLICAS], np = 0, next = 0;
	uint32_t last_bad = UINT32_MAX;
	uint8_t good[HM_DIGEST_LEN], bad[HM_DIGEST_LEN];
	struct fast_model m = { .n = n, .thr = c->ph == HM_PHASE_PREPARE ? 2 * f : 2 * f + 1 };
	int quorums = 0, fasts = 0;
	struct hm_vote_slot s;
	char what[192];

	digest_of(good, seq, 1);
	digest_of(bad, seq, 2);
	cfg.view = view;
	if (!write_config())
		return;
	for (uint32_t i = n; i-- > 0;)
		if (i != SELF && !(c->ph == HM_PHASE_PREPARE && i == primary))
			peers[np++] = i;
	for (const char *st = c->steps; *st; st++) {
		uint32_t reps = 1, want = 0, want2 = 0;
		int got, why;
		struct hm_vote_event ev;

		if (*st == '*')
			reps = np - next;
		else if (*st == '-')
			reps = np - next - 1;
		for (uint32_t k = 0; k < reps; k++) {
			snprintf(what, sizeof(what), "n=%u %s: step '%c' (%d), %d matching", n, c->name,
				 *st, (int)(st - c->steps), __builtin_popcount(m.matched));
			memset(&ev, 0, sizeof(ev));
			switch (*st) {
			case 'E': case 'F': case 'N': {
				bool fl = *st == 'E' ? c->fast : *st == 'F';

				want = fm_expect(&m, c->ph, fl);
				got = ctl_expect_fast(c->ph, view, seq, good, fl, &ev);
				break;
			}
			case 'O': case 'o':
				if (*st == 'O')
					want = fm_expect(&m, c->ph, c->fast);
				want2 = fm_vote(&m, SELF, true);
				got = ctl_own(c->ph, view, seq, good, NULL, *st == 'O', c->fast, &ev,
					      &why);
				ASSERT_EQ(why, ACCEPT, what);
				/* one run, one event: the later one */
				if (want2)
					want = want2;
				break;
			case 'v': case 'b': case '-': case '*': {
				uint32_t v = peers[next++];
				bool ok = *st != 'b';

				if (!ok)
					last_bad = v;
				want = fm_vote(&m, v, ok);
				got = vote(c->ph, v, view, seq, ok ? good : bad, ACCEPT, what);
				if (got == 1)
					ev = evs[0];
				break;
			}
			case 'x': {
				struct dgram d;

				if (!ASSERT_NEQ(last_bad, UINT32_MAX, "x after b"))
					return;
				mkvote(&d, c->ph, last_bad, view, seq, good, 0);
				got = send_expect(&d, HM_DROP_EQUIVOCATION, what);
				if (ASSERT_EQ(got, 1, what))
					ASSERT_EQ(evs[0].kind, HM_EV_EQUIVOCATION, what);
				continue;
			}
			default:
				HM_FAIL("bad step '%c'", *st);
				return;
			}
			if (!ASSERT_EQ(got, want ? 1 : 0, what))
				continue;
			if (!want)
				continue;
			check_event(&ev, want, c->ph, view, seq, m.raised, good, what);
			if (want == HM_EV_FAST) {
				fasts++;
				/* exactly the n - 1 backups: the primary's PRE-PREPARE is its vote */
				ASSERT_EQ(ev.voters, backups_of(n, view), what);
				ASSERT_EQ(__builtin_popcount(ev.voters), n - 1, what);
				ASSERT_FALSE(ev.voters >> primary & 1, what);
			} else {
				quorums++;
				/* raised by a vote: at exactly the threshold-th (2f
				 * PREPAREs with the PRE-PREPARE, 2f+1 COMMITs) */
				if (strchr("vb-*o", *st))
					ASSERT_EQ(__builtin_popcount(ev.voters), m.thr, what);
			}
		}
	}
	snprintf(what, sizeof(what), "n=%u %s: events", n, c->name);
	ASSERT_EQ(quorums, c->want_quorum, what);
	ASSERT_EQ(fasts, c->want_fast, what);
	/* Nothing raises either again: both expectations, a duplicate vote. */
	{
		struct hm_vote_event ev;

		ASSERT_EQ(ctl_expect_fast(c->ph, view, seq, good, true, &ev), 0, what);
		ASSERT_EQ(ctl_expect_fast(c->ph, view, seq, good, false, &ev), 0, what);
	}
	if (next > 0 && peers[next - 1] != last_bad)
		ASSERT_EQ(vote(c->ph, peers[next - 1], view, seq, good, HM_DROP_DUPLICATE, what), 0,
			  what);
	if (ASSERT_TRUE(read_slot(c->ph, seq, &s), "read slot")) {
		ASSERT_EQ(s.matched, m.matched, what);
		ASSERT_EQ(s.quorum_sent, 1, what);
		ASSERT_EQ(s.fast, c->want_fast ? 2 : c->ph == HM_PHASE_PREPARE && c->fast &&
			  c->steps[0] != 'N' ? 1 : 0, what);
	}
}

/*
 * The fast path in the kernel's counter, at n = 4 (f = 1) and n = 31
 * (f = 10): with the fast flag a PREPARE slot raises HM_EV_FAST exactly
 * once, with the (n-1)-th matching backup PREPARE (or the expectation, if
 * the votes came first), its voters exactly the n - 1 backups; the quorum
 * event still comes at 2f before it; never with a mismatching vote among
 * them, never without the flag, never for a COMMIT slot.
 */
HM_TEST(xdp_quorum_fast_event)
{
	static const uint32_t fs[] = { 1, 10 };

	for (size_t fi = 0; fi < sizeof(fs) / sizeof(fs[0]); fi++) {
		uint64_t seq = 101;

		if (!load(fs[fi], 0, 100, 164, 64))
			return;
		for (size_t k = 0; k < sizeof(fast_cases) / sizeof(fast_cases[0]); k++, seq++)
			fast_case_run(&fast_cases[k], fs[fi], seq);
		ASSERT_EQ(skel->bss->hm_events_lost, 0, "no event lost");
		unload();
	}
}

/* A slot that raised the fast event is taken over by the next view: the
 * new owner starts without the flag (a plain expectation: the quorum
 * only), and with it raises the fast event again, once. */
HM_TEST(xdp_quorum_fast_takeover)
{
	const uint32_t f = 1, n = 4;
	const uint64_t seq = 11;
	uint8_t dg[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	struct hm_vote_slot s;

	if (!load(f, 0, 10, 20, 10))
		return;
	digest_of(dg, seq, 1);
	for (uint64_t view = 1; view <= 3; view++) {
		bool fast = view != 2;
		uint32_t events[4] = { 0 };
		char what[64];

		snprintf(what, sizeof(what), "view %" PRIu64, view);
		cfg.view = view;
		if (!write_config())
			break;
		ASSERT_EQ(ctl_expect_fast(HM_PHASE_PREPARE, view, seq, dg, fast, &ev), 0, what);
		/* the primary is view % 4: replica 1 (us) in view 1, 2 in 2, 3 in 3 */
		if (view % n != SELF) {
			int why;

			ASSERT_EQ(ctl_own(HM_PHASE_PREPARE, view, seq, dg, NULL, false, fast, &ev,
					  &why), 0, what);
			ASSERT_EQ(why, ACCEPT, what);
		}
		for (uint32_t v = 0; v < n; v++) {
			if (v == SELF || v == view % n)
				continue;
			if (vote(HM_PHASE_PREPARE, v, view, seq, dg, ACCEPT, what) == 1)
				events[evs[0].kind & 3]++;
		}
		ASSERT_EQ(events[HM_EV_QUORUM], 1, what);
		ASSERT_EQ(events[HM_EV_FAST], fast ? 1 : 0, what);
		if (ASSERT_TRUE(read_slot(HM_PHASE_PREPARE, seq, &s), "read")) {
			ASSERT_EQ(s.view, view, what);
			ASSERT_EQ(s.fast, fast ? 2 : 0, what);
			ASSERT_EQ(s.matched, backups_of(n, view), what);
		}
	}
	unload();
}

/* ---- differential against user/core/quorum.c ---------------------------------- */

#define HISTORY 64

struct diff {
	uint64_t rs, seed;
	struct hm_quorum q;
	struct hm_node_stats model[HM_XDP_NSTATS];
	struct dgram hist[HISTORY];
	uint32_t nhist;
	long votes, events[4], outcomes[HM_DROP_REASON_MAX + 1], expects, own, moves;
	long fast_expects, expect_own;
};

static uint64_t rnd(struct diff *g)
{
	return hm_test_rand(&g->rs);
}

static bool same_event(const struct hm_vote_event *a, const struct hm_vote_event *b)
{
	return memcmp(a, b, sizeof(*a)) == 0;
}

static bool diff_slot(struct diff *g, uint32_t key, long op)
{
	struct hm_vote_slot s;

	if (!read_slot_key(key, &s)) {
		HM_FAIL("seed %#" PRIx64 ", op %ld: read slot %u", g->seed, op, key);
		return false;
	}
	if (memcmp(&s, &g->q.slots[key], sizeof(s)) != 0) {
		const struct hm_vote_slot *r = &g->q.slots[key];

		HM_FAIL("seed %#" PRIx64 ", op %ld: slot %u differs: xdp (v%" PRIu64 " s%" PRIu64
			" voted %#x matched %#x exp %u sent %u fast %u), quorum.c (v%" PRIu64 " s%" PRIu64
			" voted %#x matched %#x exp %u sent %u fast %u)", g->seed, op, key,
			(uint64_t)s.view, (uint64_t)s.seq, s.voted, s.matched, s.expected_set,
			s.quorum_sent, s.fast, (uint64_t)r->view, (uint64_t)r->seq, r->voted,
			r->matched, r->expected_set, r->quorum_sent, r->fast);
		return false;
	}
	return true;
}

/* A digest for seq: mostly one of two, so that votes match, sometimes
 * disagree, and voters equivocate. */
static void pick_digest(struct diff *g, uint64_t seq, uint8_t out[HM_DIGEST_LEN])
{
	uint64_t r = rnd(g) % 100;

	digest_of(out, seq, r < 85 ? 0 : r < 97 ? 1 : 2 + rnd(g) % 4);
}

/* A seq in the window: mostly among the lowest half-window (so quorums
 * form), else in the lowest window (no two share a slot), now and then
 * anywhere (takeovers, then stale votes until the window moves on). */
static uint64_t pick_seq(struct diff *g, uint32_t window)
{
	uint64_t r = rnd(g) % 1000;

	if (r < 900)
		return cfg.low + 1 + rnd(g) % (window / 2);
	if (r < 995)
		return cfg.low + 1 + rnd(g) % window;
	return cfg.low + 1 + rnd(g) % (cfg.high - cfg.low);
}

static bool diff_vote(struct diff *g, long op, uint64_t view)
{
	struct hm_vote_event want_ev, *got_ev = NULL;
	enum hm_drop_reason why = HM_DROP_REASON_MAX;
	struct hm_node_stats st;
	struct dgram d;
	uint32_t voter;
	uint64_t seq;
	int r, want, verdict, nev;
	enum hm_vote_phase ph;
	bool in_window;

	memset(&want_ev, 0, sizeof(want_ev));
	if (g->nhist && rnd(g) % 100 < 8) { /* the same packet again */
		d = g->hist[rnd(g) % (g->nhist < HISTORY ? g->nhist : HISTORY)];
	} else {
		uint8_t dg[HM_DIGEST_LEN];

		ph = (enum hm_vote_phase)(rnd(g) % 2);
		do
			voter = (uint32_t)(rnd(g) % cfg.n);
		while (voter == SELF);
		seq = pick_seq(g, cfg.window);
		if (rnd(g) % 100 < 2)
			seq = rnd(g) % 2 ? cfg.low : cfg.high + 1 + rnd(g) % 3;
		pick_digest(g, seq, dg);
		mkvote(&d, ph, voter, view, seq, dg, rnd(g) % 10 ? 0 : HM_FLAG_RETRANSMIT);
		g->hist[g->nhist++ % HISTORY] = d;
	}
	ph = d.b[5] == HM_MSG_PREPARE ? HM_PHASE_PREPARE : HM_PHASE_COMMIT;
	voter = hm_get_be32(d.b + HM_OFF_SENDER);
	seq = hm_get_be64(d.b + HM_OFF_SEQ);
	in_window = hm_get_be64(d.b + HM_OFF_VIEW) == cfg.view && seq > cfg.low && seq <= cfg.high;

	/* The reference: the pre-filter's window, then hm_quorum_vote. */
	if (!in_window) {
		want = hm_get_be64(d.b + HM_OFF_VIEW) != cfg.view ? HM_DROP_BAD_VIEW
								   : HM_DROP_OUT_OF_WINDOW;
		r = 0;
	} else {
		r = hm_quorum_vote(&g->q, ph, hm_get_be64(d.b + HM_OFF_VIEW), seq, voter,
				   d.b + HM_OFF_DIGEST, d.b + HM_OFF_SIG, &want_ev, &why);
		want = r < 0 ? (int)why
		       : r > 0 && want_ev.kind == HM_EV_EQUIVOCATION ? HM_DROP_EQUIVOCATION
								     : ACCEPT;
	}
	model_count(&g->model[voter], want);
	model_view(&g->model[voter], voter, want, hm_get_be64(d.b + HM_OFF_VIEW), cfg.view);
	g->votes++;
	g->outcomes[want]++;

	verdict = run_dgram(&d);
	nev = drain_events();
	if (verdict != vote_verdict(&d, want)) {
		HM_FAIL("seed %#" PRIx64 ", op %ld: verdict %d for a vote (%s)", g->seed, op,
			verdict, why_name(want));
		return false;
	}
	if (nev > 0)
		got_ev = &evs[0];
	if (nev != (r > 0) || (r > 0 && !same_event(got_ev, &want_ev))) {
		HM_FAIL("seed %#" PRIx64 ", op %ld: vote from %u phase %d seq %" PRIu64
			" (%s): %d events (kind %u), quorum.c %d (kind %u)", g->seed, op, voter, ph,
			seq, why_name(want), nev, got_ev ? got_ev->kind : 0, r > 0,
			r > 0 ? want_ev.kind : 0);
		return false;
	}
	if (r > 0)
		g->events[want_ev.kind]++;
	if (!read_stats(voter, &st) || !same_counts(&st, &g->model[voter])) {
		HM_FAIL("seed %#" PRIx64 ", op %ld: node_stats[%u] does not show %s", g->seed, op,
			voter, why_name(want));
		return false;
	}
	return !in_window || diff_slot(g, slot_key(ph, seq), op);
}

static bool diff_ctl(struct diff *g, long op, uint64_t view, bool own)
{
	struct hm_vote_event want_ev, got_ev;
	enum hm_drop_reason w1 = HM_DROP_REASON_MAX, w2 = HM_DROP_REASON_MAX;
	enum hm_vote_phase ph = (enum hm_vote_phase)(rnd(g) % 2);
	uint64_t seq = pick_seq(g, cfg.window);
	uint8_t dg[HM_DIGEST_LEN], sig[HM_SIG_LEN];
	int want, got;

	memset(&want_ev, 0, sizeof(want_ev));
	memset(&got_ev, 0, sizeof(got_ev));
	pick_digest(g, seq, dg);
	/* half the expectations ask for the fast path's event (PREPARE slots
	 * honour it, COMMIT slots must ignore it) */
	bool fast = rnd(g) % 2;

	if (own && rnd(g) % 2) {
		/* HM_POLICY_EXPECT_OWN_VOTE, the controller's one run: as
		 * hm_quorum_expect_fast then hm_quorum_vote, of whose events
		 * (at most one each) the run sends the later */
		struct hm_vote_event e2;
		int r2, gwhy;

		memset(&e2, 0, sizeof(e2));
		randombytes_buf(sig, sizeof(sig));
		want = hm_quorum_expect_fast(&g->q, ph, view, seq, dg, fast, &want_ev);
		if (want > 0)
			g->events[want_ev.kind]++;
		r2 = hm_quorum_vote(&g->q, ph, view, seq, SELF, dg, sig, &e2, &w1);
		if (r2 > 0) {
			/* the run's one event struct: an equivocation leaves
			 * the voters an expectation's event wrote (our own
			 * equivocation: never from a correct core) */
			if (e2.kind == HM_EV_EQUIVOCATION && want > 0)
				e2.voters = want_ev.voters;
			want_ev = e2;
			want = 1;
			if (e2.kind == HM_EV_EQUIVOCATION)
				w1 = HM_DROP_EQUIVOCATION;
		}
		/* w1: ACCEPT (HM_DROP_REASON_MAX) unless refused */
		got = ctl_own(ph, view, seq, dg, sig, true, fast, &got_ev, &gwhy);
		if (got != want || gwhy != (int)w1 || (want > 0 && !same_event(&got_ev, &want_ev))) {
			HM_FAIL("seed %#" PRIx64 ", op %ld: expect+own vote (fast %d): %d (kind %u, %s), "
				"quorum.c %d (kind %u, %s)", g->seed, op, fast, got,
				got > 0 ? got_ev.kind : 0, why_name(gwhy), want,
				want > 0 ? want_ev.kind : 0, why_name(w1));
			return false;
		}
		if (r2 > 0)
			g->events[e2.kind]++;
		g->expect_own++;
		g->fast_expects += fast;
		if (drain_events() != 0) {
			HM_FAIL("seed %#" PRIx64 ", op %ld: the program raised an event", g->seed, op);
			return false;
		}
		return diff_slot(g, slot_key(ph, seq), op);
	}
	if (own) {
		randombytes_buf(sig, sizeof(sig));
		want = hm_quorum_vote(&g->q, ph, view, seq, SELF, dg, sig, &want_ev, &w1);
		got = ctl_own_vote(ph, view, seq, dg, sig, &got_ev, &w2);
		g->own++;
	} else {
		want = hm_quorum_expect_fast(&g->q, ph, view, seq, dg, fast, &want_ev);
		got = ctl_expect_fast(ph, view, seq, dg, fast, &got_ev);
		g->expects++;
		g->fast_expects += fast;
	}
	if (got != want || w1 != w2 || (want > 0 && !same_event(&got_ev, &want_ev))) {
		HM_FAIL("seed %#" PRIx64 ", op %ld: controller %s: %d, quorum.c %d", g->seed, op,
			own ? "own vote" : "expect", got, want);
		return false;
	}
	if (want > 0)
		g->events[want_ev.kind]++;
	if (drain_events() != 0) {
		HM_FAIL("seed %#" PRIx64 ", op %ld: the program raised an event", g->seed, op);
		return false;
	}
	return diff_slot(g, slot_key(ph, seq), op);
}

static bool diff_sweep(struct diff *g, long op)
{
	for (uint32_t k = 0; k < cfg.window * HM_PHASE_MAX; k++)
		if (!diff_slot(g, k, op))
			return false;
	return true;
}

/* ops votes and controller actions for f, in a window of `window` slots
 * inside a watermark window three times as wide (slots are taken over and
 * votes go stale), with the window moving and the view changing now and
 * then. */
static bool differential(uint32_t f, uint32_t window, long ops, uint64_t seed)
{
	struct diff *g = calloc(1, sizeof(*g));
	uint64_t view = 0;
	bool ok = false;
	long op;

	if (!ASSERT_TRUE(g != NULL, "calloc"))
		return false;
	g->seed = seed;
	g->rs = seed ? seed : 1;
	if (!load(f, view, 0, 3 * window, window))
		goto out;
	if (!ASSERT_OK(hm_quorum_init(&g->q, 3 * f + 1, f, window), "hm_quorum_init"))
		goto out;
	for (op = 0; op < ops; op++) {
		uint64_t r = rnd(g) % 1000;

		if (r >= 990 && rnd(g) % 4) /* moves and new views: 1 in 400, 1 in 2000 */
			r = rnd(g) % 990;
		bool good;

		if (r < 870) {
			good = diff_vote(g, op, view);
		} else if (r < 960) {
			good = diff_ctl(g, op, view, false);
		} else if (r < 990) {
			good = diff_ctl(g, op, view, true);
		} else if (r < 998) { /* the window moves; slots below are collected */
			uint64_t k = 1 + rnd(g) % window;

			cfg.low += k;
			cfg.high += k;
			g->moves++;
			good = write_config();
			if (rnd(g) % 2) {
				hm_quorum_collect(&g->q, cfg.low);
				good = good && ASSERT_TRUE(ctl_collect(cfg.low), "collect");
			}
		} else { /* a new view; now and then an older one (the counter must
			  * still order (view, seq) as quorum.c does) */
			view = view && rnd(g) % 4 == 0 ? view - 1 : view + 1;
			cfg.view = view;
			good = write_config();
		}
		if (!good)
			break;
		if ((op + 1) % 4096 == 0 && !diff_sweep(g, op))
			break;
	}
	if (op == ops && diff_sweep(g, op))
		ok = true;
	printf("     differential f=%u: seed %#" PRIx64 ", %ld ops: %ld votes (accept %ld stale %ld "
	       "duplicate %ld equivocation %ld malformed %ld out_of_window %ld), %ld expects, "
	       "%ld own votes, %ld expect+own, %ld with the fast flag, %ld moves, view %" PRIu64
	       ", quorum events %ld, fast events %ld, equivocation events %ld\n", f, seed, op,
	       g->votes, g->outcomes[ACCEPT],
	       g->outcomes[HM_DROP_STALE], g->outcomes[HM_DROP_DUPLICATE],
	       g->outcomes[HM_DROP_EQUIVOCATION], g->outcomes[HM_DROP_MALFORMED],
	       g->outcomes[HM_DROP_OUT_OF_WINDOW], g->expects, g->own, g->expect_own,
	       g->fast_expects, g->moves, view, g->events[HM_EV_QUORUM], g->events[HM_EV_FAST],
	       g->events[HM_EV_EQUIVOCATION]);
	if (ok) {
		/* Every outcome came up. */
		static const int outcomes[] = { ACCEPT, HM_DROP_STALE, HM_DROP_DUPLICATE,
						HM_DROP_EQUIVOCATION, HM_DROP_MALFORMED,
						HM_DROP_OUT_OF_WINDOW };
		for (size_t k = 0; k < sizeof(outcomes) / sizeof(outcomes[0]); k++)
			if (g->outcomes[outcomes[k]] < 10)
				HM_FAIL("seed %#" PRIx64 ": outcome %s seen %ld times", seed,
					why_name(outcomes[k]), g->outcomes[outcomes[k]]);
		if (g->events[HM_EV_QUORUM] < 100 || g->events[HM_EV_EQUIVOCATION] < 100)
			HM_FAIL("seed %#" PRIx64 ": too few events", seed);
		/* all n - 1 backups matching: common only at small n */
		if (f <= 2 && g->events[HM_EV_FAST] < 5)
			HM_FAIL("seed %#" PRIx64 ": %ld fast events", seed, g->events[HM_EV_FAST]);
		ASSERT_EQ(skel->bss->hm_events_lost, 0, "no event lost");
		if (ev_bad_size)
			HM_FAIL("%d events of the wrong size", ev_bad_size);
	}
out:
	if (skel)
		unload();
	hm_quorum_free(&g->q);
	free(g);
	return ok;
}

HM_TEST(xdp_quorum_differential)
{
	static const uint32_t fs[] = { 1, 2, 5, 10 };
	static const uint32_t windows[] = { 4, 8, 16, 16 };
	uint64_t seed = 0x9e3779b97f4a7c15ull ^ (uint64_t)time(NULL);
	const char *env = getenv("HM_SEED");
	long ops = 46000; /* x 4 runs, 87% votes: over 150,000 votes */

	if (env)
		seed = strtoull(env, NULL, 0);
	if (getenv("HM_DIFF_OPS"))
		ops = strtol(getenv("HM_DIFF_OPS"), NULL, 0);
	printf("     differential: seed %#" PRIx64 " (HM_SEED=... to replay)\n", seed);
	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++)
		if (!differential(fs[i], windows[i], ops, seed + i))
			break;
}
