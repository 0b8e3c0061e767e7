// SPDX-License-Identifier: MIT
/*
 * Vote counter tests (user/core/quorum.c): thresholds for f = 1, 2, 5, one quorum
 * event per slot, votes before the PRE-PREPARE, mismatched digests,
 * duplicates, equivocation, the primary's PREPARE, slot take-over and
 * staleness, the watermark window's edges, garbage collection, the
 * signatures kept per voter, the fast path's n-of-n event (HM_EV_FAST),
 * and the same counter behind the vote-counter interface
 * (core/vote_counter.h).
 */
#include "hm_test.h"
#include "core/fast_model.h"
#include "core/quorum.h"
#include "common/wire.h"

/* ---- helpers ------------------------------------------------------------ */

static void digest_of(uint8_t d[HM_DIGEST_LEN], uint8_t tag)
{
	for (int i = 0; i < HM_DIGEST_LEN; i++)
		d[i] = (uint8_t)(tag * 37 + i);
}

static void sig_of(uint8_t s[HM_SIG_LEN], uint32_t voter, uint64_t seq)
{
	for (int i = 0; i < HM_SIG_LEN; i++)
		s[i] = (uint8_t)(voter * 13 + seq * 7 + i);
}

static int vote(struct hm_quorum *q, enum hm_vote_phase ph, uint64_t view, uint64_t seq,
		uint32_t voter, const uint8_t *d, struct hm_vote_event *ev,
		enum hm_drop_reason *why)
{
	uint8_t sig[HM_SIG_LEN];

	sig_of(sig, voter, seq);
	return hm_quorum_vote(q, ph, view, seq, voter, d, sig, ev, why);
}

/* The voters that may vote in a phase, in order: every replica for COMMIT,
 * every replica but the view's primary for PREPARE. */
static uint32_t voters_for(uint32_t n, enum hm_vote_phase ph, uint64_t view, uint32_t *out)
{
	uint32_t k = 0;

	for (uint32_t i = 0; i < n; i++)
		if (!(ph == HM_PHASE_PREPARE && i == view % n))
			out[k++] = i;
	return k;
}

static const char *phase_name(enum hm_vote_phase ph)
{
	return ph == HM_PHASE_PREPARE ? "prepare" : "commit";
}

static bool init_f(struct hm_quorum *q, uint32_t f, uint32_t window)
{
	return ASSERT_OK(hm_quorum_init(q, 3 * f + 1, f, window), "hm_quorum_init");
}

static const uint32_t fs[] = { 1, 2, 5, 10 };

/* ---- thresholds ------------------------------------------------------------ */

HM_TEST(thresholds)
{
	struct hm_quorum q;

	for (size_t i = 0; i < sizeof(fs) / sizeof(fs[0]); i++) {
		if (!init_f(&q, fs[i], 16))
			continue;
		ASSERT_EQ(hm_quorum_threshold(&q, HM_PHASE_PREPARE), 2 * fs[i], "prepare: 2f");
		ASSERT_EQ(hm_quorum_threshold(&q, HM_PHASE_COMMIT), 2 * fs[i] + 1, "commit: 2f+1");
		hm_quorum_free(&q);
	}
}

HM_TEST(init_refuses_bad_sizes)
{
	struct hm_quorum q;

	ASSERT_EQ(hm_quorum_init(&q, 0, 0, 8), -1, "n = 0");
	ASSERT_EQ(hm_quorum_init(&q, HM_MAX_REPLICAS + 1, HM_MAX_FAULTY, 8), -1, "n too big for the bitmap");
	ASSERT_EQ(hm_quorum_init(&q, 4, 1, 0), -1, "window 0");
	if (ASSERT_OK(hm_quorum_init(&q, HM_MAX_REPLICAS, HM_MAX_FAULTY, 1), "n = HM_MAX_REPLICAS, window 1"))
		hm_quorum_free(&q);
	hm_quorum_free(&q); /* twice: harmless */
}

/* Expected digest set first, then votes one at a time: the event comes with
 * exactly the threshold-th matching vote, once. */
HM_TEST(quorum_exactly_at_threshold_once)
{
	uint8_t d[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	char what[96];

	digest_of(d, 1);
	for (size_t fi = 0; fi < sizeof(fs) / sizeof(fs[0]); fi++) {
		uint32_t f = fs[fi], n = 3 * f + 1;

		if (!init_f(&q, f, 32))
			continue;
		for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
			/* Several views so the primary moves around. */
			for (uint64_t view = 0; view < n + 2; view += 1 + n / 3) {
				uint64_t seq = 3 + view;
				uint32_t voters[HM_MAX_REPLICAS], nv, thr, events = 0;
				hm_voters_t expect_bits = 0;

				nv = voters_for(n, ph, view, voters);
				thr = hm_quorum_threshold(&q, ph);
				snprintf(what, sizeof(what), "f=%u %s view %" PRIu64, f,
					 phase_name(ph), view);
				ASSERT_EQ(hm_quorum_expect(&q, ph, view, seq, d, &ev), 0, what);
				for (uint32_t k = 0; k < nv; k++) {
					int r;

					memset(&ev, 0xee, sizeof(ev));
					r = vote(&q, ph, view, seq, voters[k], d, &ev, &why);
					if (k < thr)
						expect_bits |= ((hm_voters_t)1 << voters[k]);
					if (k + 1 < thr) {
						ASSERT_EQ(r, 0, what);
					} else if (k + 1 == thr) {
						if (!ASSERT_EQ(r, 1, what))
							continue;
						events++;
						ASSERT_EQ(ev.kind, HM_EV_QUORUM, what);
						ASSERT_EQ(ev.phase, ph, what);
						ASSERT_TRUE(ev.view == view, what);
						ASSERT_TRUE(ev.seq == seq, what);
						ASSERT_EQ(ev.voters, expect_bits, what);
						ASSERT_EQ(__builtin_popcount(ev.voters), thr, what);
						ASSERT_MEMEQ(ev.digest, d, HM_DIGEST_LEN, what);
					} else {
						/* Later votes are recorded, with no second event. */
						ASSERT_EQ(r, 0, what);
					}
				}
				ASSERT_EQ(events, 1, what);
				/* Setting the expected digest again raises nothing. */
				ASSERT_EQ(hm_quorum_expect(&q, ph, view, seq, d, &ev), 0, what);
				const struct hm_vote_slot *s = hm_quorum_find(&q, ph, view, seq);
				if (ASSERT_TRUE(s != NULL, what)) {
					ASSERT_EQ(__builtin_popcount(s->voted), nv, what);
					ASSERT_EQ(s->matched, s->voted, what);
					ASSERT_EQ(s->quorum_sent, 1, what);
				}
			}
		}
		hm_quorum_free(&q);
	}
}

/* Votes that arrive before the PRE-PREPARE count once its digest is known:
 * the event comes from hm_quorum_expect. */
HM_TEST(votes_before_expect)
{
	uint8_t d[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	char what[96];

	digest_of(d, 2);
	for (size_t fi = 0; fi < sizeof(fs) / sizeof(fs[0]); fi++) {
		uint32_t f = fs[fi], n = 3 * f + 1;

		if (!init_f(&q, f, 32))
			continue;
		for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
			uint64_t view = 1, seq = 10 + (uint64_t)ph;
			uint32_t voters[HM_MAX_REPLICAS], thr = hm_quorum_threshold(&q, ph);
			hm_voters_t bits = 0;

			voters_for(n, ph, view, voters);
			snprintf(what, sizeof(what), "f=%u %s", f, phase_name(ph));
			/* All the votes a quorum needs, and no event yet. */
			for (uint32_t k = 0; k < thr; k++) {
				ASSERT_EQ(vote(&q, ph, view, seq, voters[k], d, &ev, &why), 0, what);
				bits |= ((hm_voters_t)1 << voters[k]);
			}
			const struct hm_vote_slot *s = hm_quorum_find(&q, ph, view, seq);
			if (ASSERT_TRUE(s != NULL, what)) {
				ASSERT_EQ(s->expected_set, 0, what);
				ASSERT_EQ(s->voted, bits, what);
				ASSERT_EQ(s->matched, 0, what);
			}
			memset(&ev, 0, sizeof(ev));
			if (ASSERT_EQ(hm_quorum_expect(&q, ph, view, seq, d, &ev), 1, what)) {
				ASSERT_EQ(ev.kind, HM_EV_QUORUM, what);
				ASSERT_EQ(ev.voters, bits, what);
				ASSERT_MEMEQ(ev.digest, d, HM_DIGEST_LEN, what);
			}
			/* Once only: another vote, another expect. */
			if (thr < voters_for(n, ph, view, voters))
				ASSERT_EQ(vote(&q, ph, view, seq, voters[thr], d, &ev, &why), 0, what);
			ASSERT_EQ(hm_quorum_expect(&q, ph, view, seq, d, &ev), 0, what);

			/* One vote short before expect: expect raises nothing, the
			 * next vote does. */
			seq += 2;
			for (uint32_t k = 0; k + 1 < thr; k++)
				ASSERT_EQ(vote(&q, ph, view, seq, voters[k], d, &ev, &why), 0, what);
			ASSERT_EQ(hm_quorum_expect(&q, ph, view, seq, d, &ev), 0, what);
			ASSERT_EQ(vote(&q, ph, view, seq, voters[thr - 1], d, &ev, &why), 1, what);
			ASSERT_EQ(ev.kind, HM_EV_QUORUM, what);
		}
		hm_quorum_free(&q);
	}
}

/* Votes for another digest do not count toward the expected one, whether
 * they come before or after the expected digest is set. */
HM_TEST(mismatched_digests_do_not_count)
{
	uint8_t d[HM_DIGEST_LEN], other[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	char what[96];

	digest_of(d, 3);
	digest_of(other, 4);
	for (size_t fi = 0; fi < sizeof(fs) / sizeof(fs[0]); fi++) {
		uint32_t f = fs[fi], n = 3 * f + 1;

		if (!init_f(&q, f, 32))
			continue;
		for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
			for (int expect_first = 0; expect_first < 2; expect_first++) {
				uint64_t view = 2, seq = 5 + 2 * (uint64_t)expect_first;
				uint32_t voters[HM_MAX_REPLICAS], nv, thr, k;
				hm_voters_t good = 0;

				nv = voters_for(n, ph, view, voters);
				thr = hm_quorum_threshold(&q, ph);
				snprintf(what, sizeof(what), "f=%u %s expect %s", f, phase_name(ph),
					 expect_first ? "first" : "last");
				if (expect_first)
					ASSERT_EQ(hm_quorum_expect(&q, ph, view, seq, d, &ev), 0, what);
				/* f votes for another digest, then thr-1 good ones: with
				 * nv = thr + f voters that leaves exactly one. */
				if (!ASSERT_EQ(nv, thr + f, what))
					continue;
				for (k = 0; k < f; k++)
					ASSERT_EQ(vote(&q, ph, view, seq, voters[k], other, &ev, &why),
						  0, what);
				for (; k < f + thr - 1; k++) {
					ASSERT_EQ(vote(&q, ph, view, seq, voters[k], d, &ev, &why), 0,
						  what);
					good |= ((hm_voters_t)1 << voters[k]);
				}
				if (!expect_first)
					ASSERT_EQ(hm_quorum_expect(&q, ph, view, seq, d, &ev), 0, what);
				const struct hm_vote_slot *s = hm_quorum_find(&q, ph, view, seq);
				if (ASSERT_TRUE(s != NULL, what)) {
					ASSERT_EQ(s->matched, good, what);
					ASSERT_EQ(__builtin_popcount(s->voted), f + thr - 1, what);
				}
				ASSERT_EQ(vote(&q, ph, view, seq, voters[k], d, &ev, &why), 1, what);
				good |= ((hm_voters_t)1 << voters[k]);
				ASSERT_EQ(ev.kind, HM_EV_QUORUM, what);
				ASSERT_EQ(ev.voters, good, what);
			}
		}
		/* A quorum for the wrong digest is no quorum: everybody votes
		 * `other`, the PRE-PREPARE says d. */
		{
			uint32_t voters[HM_MAX_REPLICAS], nv = voters_for(n, HM_PHASE_COMMIT, 0, voters);

			for (uint32_t k = 0; k < nv; k++)
				ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 0, 20, voters[k], other, &ev, &why),
					  0, "all vote another digest");
			ASSERT_EQ(hm_quorum_expect(&q, HM_PHASE_COMMIT, 0, 20, d, &ev), 0,
				  "no quorum for the expected digest");
		}
		hm_quorum_free(&q);
	}
}

/* ---- duplicates, equivocation, bad voters -------------------------------- */

HM_TEST(duplicate_vote)
{
	uint8_t d[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;

	digest_of(d, 5);
	if (!init_f(&q, 1, 8))
		return;
	for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
		ASSERT_EQ(vote(&q, ph, 0, 1, 1, d, &ev, &why), 0, "first vote");
		why = HM_DROP_REASON_MAX;
		ASSERT_EQ(vote(&q, ph, 0, 1, 1, d, &ev, &why), -1, "same vote again");
		ASSERT_EQ(why, HM_DROP_DUPLICATE, "duplicate");
		/* A duplicate does not count twice toward the quorum. */
		ASSERT_EQ(hm_quorum_expect(&q, ph, 0, 1, d, &ev), 0, "one voter is no quorum");
		why = HM_DROP_REASON_MAX;
		ASSERT_EQ(vote(&q, ph, 0, 1, 1, d, &ev, &why), -1, "again after expect");
		ASSERT_EQ(why, HM_DROP_DUPLICATE, "duplicate after expect");
		const struct hm_vote_slot *s = hm_quorum_find(&q, ph, 0, 1);
		if (ASSERT_TRUE(s != NULL, "slot"))
			ASSERT_EQ(s->voted, 1u << 1, "one voter recorded");
	}
	/* After the quorum, a duplicate is still a duplicate (no event). */
	ASSERT_EQ(vote(&q, HM_PHASE_PREPARE, 0, 1, 2, d, &ev, &why), 1, "prepare quorum");
	ASSERT_EQ(vote(&q, HM_PHASE_PREPARE, 0, 1, 2, d, &ev, &why), -1, "dup after quorum");
	ASSERT_EQ(why, HM_DROP_DUPLICATE, "dup after quorum");
	hm_quorum_free(&q);
}

HM_TEST(equivocation)
{
	uint8_t d1[HM_DIGEST_LEN], d2[HM_DIGEST_LEN], d3[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	char what[64];

	digest_of(d1, 6);
	digest_of(d2, 7);
	digest_of(d3, 8);
	if (!init_f(&q, 2, 8))
		return;
	for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
		for (int expect = 0; expect < 2; expect++) {
			uint64_t seq = 3 + (uint64_t)expect;

			snprintf(what, sizeof(what), "%s, expect %d", phase_name(ph), expect);
			if (expect)
				hm_quorum_expect(&q, ph, 4, seq, d1, &ev);
			ASSERT_EQ(vote(&q, ph, 4, seq, 5, d1, &ev, &why), 0, what);
			memset(&ev, 0, sizeof(ev));
			if (!ASSERT_EQ(vote(&q, ph, 4, seq, 5, d2, &ev, &why), 1, what))
				continue;
			ASSERT_EQ(ev.kind, HM_EV_EQUIVOCATION, what);
			ASSERT_EQ(ev.phase, ph, what);
			ASSERT_TRUE(ev.view == 4 && ev.seq == seq, what);
			ASSERT_EQ(ev.voter, 5, what);
			ASSERT_MEMEQ(ev.digest, d1, HM_DIGEST_LEN, what);
			ASSERT_MEMEQ(ev.digest2, d2, HM_DIGEST_LEN, what);
			/* The first vote stands; a third digest is caught too. */
			const struct hm_vote_slot *s = hm_quorum_find(&q, ph, 4, seq);
			if (ASSERT_TRUE(s != NULL, what)) {
				ASSERT_MEMEQ(s->digests[5], d1, HM_DIGEST_LEN, what);
				ASSERT_EQ(s->voted, 1u << 5, what);
				ASSERT_EQ(s->matched, expect ? 1u << 5 : 0, what);
			}
			ASSERT_EQ(vote(&q, ph, 4, seq, 5, d3, &ev, &why), 1, what);
			ASSERT_EQ(ev.kind, HM_EV_EQUIVOCATION, what);
			ASSERT_MEMEQ(ev.digest, d1, HM_DIGEST_LEN, what);
			ASSERT_MEMEQ(ev.digest2, d3, HM_DIGEST_LEN, what);
			/* The original vote again is a plain duplicate. */
			ASSERT_EQ(vote(&q, ph, 4, seq, 5, d1, &ev, &why), -1, what);
			ASSERT_EQ(why, HM_DROP_DUPLICATE, what);
		}
	}
	hm_quorum_free(&q);
}

HM_TEST(prepare_from_primary_refused)
{
	uint8_t d[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	char what[64];

	digest_of(d, 9);
	for (size_t fi = 0; fi < sizeof(fs) / sizeof(fs[0]); fi++) {
		uint32_t n = 3 * fs[fi] + 1;

		if (!init_f(&q, fs[fi], 8))
			continue;
		for (uint64_t view = 0; view < 2 * n + 1; view++) {
			uint32_t primary = (uint32_t)(view % n);

			snprintf(what, sizeof(what), "n=%u view %" PRIu64 " primary %u", n, view,
				 primary);
			why = HM_DROP_REASON_MAX;
			ASSERT_EQ(vote(&q, HM_PHASE_PREPARE, view, 1, primary, d, &ev, &why), -1,
				  what);
			ASSERT_EQ(why, HM_DROP_MALFORMED, what);
			/* Its COMMIT counts; a backup's PREPARE too. */
			ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, view, 1, primary, d, &ev, &why), 0, what);
			ASSERT_EQ(vote(&q, HM_PHASE_PREPARE, view, 1, (primary + 1) % n, d, &ev,
				       &why), 0, what);
			const struct hm_vote_slot *s = hm_quorum_find(&q, HM_PHASE_PREPARE, view, 1);
			if (ASSERT_TRUE(s != NULL, what))
				ASSERT_FALSE(s->voted & (1u << primary), what);
		}
		/* A huge view: primary = view % n, no truncation. */
		uint64_t view = 0xfffffffffffffff0ull;
		uint32_t primary = (uint32_t)(view % n);

		ASSERT_EQ(vote(&q, HM_PHASE_PREPARE, view, 1, primary, d, &ev, &why), -1, "huge view");
		ASSERT_EQ(why, HM_DROP_MALFORMED, "huge view");
		hm_quorum_free(&q);
	}
}

HM_TEST(voter_out_of_range_refused)
{
	uint8_t d[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	const uint32_t bad[] = { 4, 5, 15, 16, 17, 31, 32, 0x10000, 0x7fffffff, 0xffffffffu };

	digest_of(d, 10);
	if (!init_f(&q, 1, 8))
		return;
	for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			why = HM_DROP_REASON_MAX;
			ASSERT_EQ(vote(&q, ph, 1, 2, bad[i], d, &ev, &why), -1, "voter >= n");
			ASSERT_EQ(why, HM_DROP_MALFORMED, "voter >= n");
		}
		ASSERT_TRUE(hm_quorum_find(&q, ph, 1, 2) == NULL ||
			    hm_quorum_find(&q, ph, 1, 2)->voted == 0, "nothing recorded");
	}
	hm_quorum_free(&q);
	/* n = 16: voter 15 was the top bit of the old u16 bitmap; 16 is out. */
	if (!ASSERT_OK(hm_quorum_init(&q, 16, 5, 8), "n = 16"))
		return;
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 0, 1, 15, d, &ev, &why), 0, "voter 15 of 16");
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 0, 1, 16, d, &ev, &why), -1, "voter 16 of 16");
	ASSERT_EQ(why, HM_DROP_MALFORMED, "voter 16 of 16");
	hm_quorum_free(&q);
	/* n = 32: voter 31 is the top bit of the u32 bitmap; 32 is out. */
	if (!ASSERT_OK(hm_quorum_init(&q, 32, 10, 8), "n = 32"))
		return;
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 0, 1, 31, d, &ev, &why), 0, "voter 31 of 32");
	ASSERT_EQ(hm_quorum_find(&q, HM_PHASE_COMMIT, 0, 1)->voted, 1u << 31, "bit 31");
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 0, 1, 32, d, &ev, &why), -1, "voter 32 of 32");
	ASSERT_EQ(why, HM_DROP_MALFORMED, "voter 32 of 32");
	hm_quorum_free(&q);
}

/* ---- slots ------------------------------------------------------------------ */

HM_TEST(newer_view_or_seq_takes_over)
{
	uint8_t d[HM_DIGEST_LEN], d2[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	const uint32_t W = 8;
	const struct hm_vote_slot *s;

	digest_of(d, 11);
	digest_of(d2, 12);
	if (!init_f(&q, 1, W))
		return;
	/* n = 4: the primaries of views 1, 2, 3, 5, 9 are 1, 2, 3, 1, 1; the
	 * voters below avoid them so PREPAREs are accepted. */
	for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
		/* (view 1, seq 3): two votes. */
		ASSERT_EQ(vote(&q, ph, 1, 3, 2, d, &ev, &why), 0, "v1 s3 voter 2");
		ASSERT_EQ(vote(&q, ph, 1, 3, 3, d, &ev, &why), 0, "v1 s3 voter 3");
		/* A newer view for the same seq takes the slot over. */
		ASSERT_EQ(vote(&q, ph, 2, 3, 3, d2, &ev, &why), 0, "v2 s3 voter 3");
		ASSERT_TRUE(hm_quorum_find(&q, ph, 1, 3) == NULL, "old view gone");
		s = hm_quorum_find(&q, ph, 2, 3);
		if (ASSERT_TRUE(s != NULL, "new view there")) {
			ASSERT_EQ(s->voted, 1u << 3, "only the new view's vote");
			ASSERT_MEMEQ(s->digests[3], d2, HM_DIGEST_LEN, "its digest");
			ASSERT_EQ(s->phase, ph, "phase");
		}
		/* The old view is stale now: vote and expect refused. */
		why = HM_DROP_REASON_MAX;
		ASSERT_EQ(vote(&q, ph, 1, 3, 0, d, &ev, &why), -1, "old view vote");
		ASSERT_EQ(why, HM_DROP_STALE, "old view vote");
		ASSERT_EQ(hm_quorum_expect(&q, ph, 1, 3, d, &ev), 0, "old view expect");
		ASSERT_TRUE(hm_quorum_find(&q, ph, 1, 3) == NULL, "old view still gone");

		/* A newer seq in the same slot (seq + W) takes over too. */
		ASSERT_EQ(hm_quorum_expect(&q, ph, 2, 3, d2, &ev), 0, "expect on v2 s3");
		ASSERT_EQ(vote(&q, ph, 2, 3 + W, 0, d, &ev, &why), 0, "v2 s3+W voter 0");
		ASSERT_TRUE(hm_quorum_find(&q, ph, 2, 3) == NULL, "old seq gone");
		s = hm_quorum_find(&q, ph, 2, 3 + W);
		if (ASSERT_TRUE(s != NULL, "new seq there")) {
			ASSERT_EQ(s->voted, 1u << 0, "only the new seq's vote");
			ASSERT_EQ(s->expected_set, 0, "expected digest not inherited");
			ASSERT_EQ(s->quorum_sent, 0, "quorum flag not inherited");
		}
		why = HM_DROP_REASON_MAX;
		ASSERT_EQ(vote(&q, ph, 2, 3, 1, d2, &ev, &why), -1, "old seq vote");
		ASSERT_EQ(why, HM_DROP_STALE, "old seq vote");
		/* Even an old seq with a newer view: the slot's seq is newer. */
		why = HM_DROP_REASON_MAX;
		ASSERT_EQ(vote(&q, ph, 9, 3, 3, d2, &ev, &why), -1, "old seq, newer view");
		ASSERT_EQ(why, HM_DROP_STALE, "old seq, newer view");

		/* An expect for a newer (view, seq) takes the slot over as well. */
		ASSERT_EQ(hm_quorum_expect(&q, ph, 3, 3 + W, d, &ev), 0, "expect v3");
		s = hm_quorum_find(&q, ph, 3, 3 + W);
		if (ASSERT_TRUE(s != NULL, "expect claimed the slot")) {
			ASSERT_EQ(s->voted, 0, "no votes carried over");
			ASSERT_EQ(s->expected_set, 1, "expected set");
		}
		why = HM_DROP_REASON_MAX;
		ASSERT_EQ(vote(&q, ph, 2, 3 + W, 3, d, &ev, &why), -1, "older view after expect");
		ASSERT_EQ(why, HM_DROP_STALE, "older view after expect");
	}
	/* The phases have separate slots. */
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 5, 4, 0, d, &ev, &why), 0, "commit v5 s4");
	ASSERT_EQ(vote(&q, HM_PHASE_PREPARE, 5, 4, 2, d, &ev, &why), 0, "prepare v5 s4");
	s = hm_quorum_find(&q, HM_PHASE_COMMIT, 5, 4);
	if (ASSERT_TRUE(s != NULL, "commit slot kept"))
		ASSERT_EQ(s->voted, 1u << 0, "commit slot's vote");
	s = hm_quorum_find(&q, HM_PHASE_PREPARE, 5, 4);
	if (ASSERT_TRUE(s != NULL, "prepare slot"))
		ASSERT_EQ(s->voted, 1u << 2, "prepare slot's vote");
	hm_quorum_free(&q);
}

/* A quorum that completed in an old view does not stop the new view's slot
 * from raising its own event. */
HM_TEST(new_view_raises_its_own_quorum)
{
	uint8_t d[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;

	digest_of(d, 13);
	if (!init_f(&q, 1, 8))
		return;
	hm_quorum_expect(&q, HM_PHASE_COMMIT, 0, 6, d, &ev);
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 0, 6, 0, d, &ev, &why), 0, "v0 1");
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 0, 6, 1, d, &ev, &why), 0, "v0 2");
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 0, 6, 2, d, &ev, &why), 1, "v0 quorum");
	hm_quorum_expect(&q, HM_PHASE_COMMIT, 1, 6, d, &ev);
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 1, 6, 0, d, &ev, &why), 0, "v1 1");
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 1, 6, 1, d, &ev, &why), 0, "v1 2");
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 1, 6, 2, d, &ev, &why), 1, "v1 quorum");
	ASSERT_TRUE(ev.view == 1 && ev.seq == 6, "event for the new view");
	hm_quorum_free(&q);
}

HM_TEST(watermark_edges)
{
	uint8_t d[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	const uint32_t L = 16;
	char what[64];

	digest_of(d, 14);
	if (!init_f(&q, 1, L))
		return;
	/* Several low watermarks, including ones where h + L wraps the slot
	 * index past zero. */
	const uint64_t hs[] = { 0, 1, 15, 16, 17, 1000, 0xffffffffull, 0x7fffffffffffff00ull };
	for (size_t hi = 0; hi < sizeof(hs) / sizeof(hs[0]); hi++) {
		uint64_t h = hs[hi];

		hm_quorum_collect(&q, UINT64_MAX);
		/* Every seq in (h, h + L] has a slot of its own: all keep their
		 * votes side by side. */
		for (uint64_t seq = h + 1; seq <= h + L; seq++) {
			snprintf(what, sizeof(what), "h=%" PRIu64 " seq %" PRIu64, h, seq);
			for (int ph = 0; ph < HM_PHASE_MAX; ph++)
				ASSERT_EQ(vote(&q, ph, 1, seq, 2, d, &ev, &why), 0, what);
		}
		for (uint64_t seq = h + 1; seq <= h + L; seq++) {
			snprintf(what, sizeof(what), "h=%" PRIu64 " seq %" PRIu64 " kept", h, seq);
			for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
				const struct hm_vote_slot *s = hm_quorum_find(&q, ph, 1, seq);

				if (ASSERT_TRUE(s != NULL, what))
					ASSERT_EQ(s->voted, 1u << 2, what);
			}
		}
		/* The two edges: a quorum at h + 1 and one at h + L, separately. */
		snprintf(what, sizeof(what), "h=%" PRIu64 " edges", h);
		ASSERT_EQ(hm_quorum_expect(&q, HM_PHASE_PREPARE, 1, h + 1, d, &ev), 0, what);
		ASSERT_EQ(vote(&q, HM_PHASE_PREPARE, 1, h + 1, 3, d, &ev, &why), 1, what);
		ASSERT_TRUE(ev.seq == h + 1, what);
		ASSERT_EQ(vote(&q, HM_PHASE_PREPARE, 1, h + L, 3, d, &ev, &why), 0, what);
		ASSERT_EQ(hm_quorum_expect(&q, HM_PHASE_PREPARE, 1, h + L, d, &ev), 1, what);
		ASSERT_TRUE(ev.seq == h + L, what);
		ASSERT_TRUE(hm_quorum_find(&q, HM_PHASE_PREPARE, 1, h + 1) != NULL, what);
	}
	hm_quorum_free(&q);
}

HM_TEST(collect_clears_up_to_seq)
{
	uint8_t d[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	const uint32_t L = 10;
	char what[64];

	digest_of(d, 15);
	if (!init_f(&q, 1, L))
		return;
	for (uint64_t seq = 21; seq <= 30; seq++)
		for (int ph = 0; ph < HM_PHASE_MAX; ph++)
			vote(&q, ph, 0, seq, 1, d, &ev, &why);
	hm_quorum_collect(&q, 25);
	for (uint64_t seq = 21; seq <= 30; seq++) {
		for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
			const struct hm_vote_slot *s = hm_quorum_find(&q, ph, 0, seq);

			snprintf(what, sizeof(what), "%s seq %" PRIu64, phase_name(ph), seq);
			if (seq <= 25) {
				ASSERT_TRUE(s == NULL, what);
			} else if (ASSERT_TRUE(s != NULL, what)) {
				ASSERT_EQ(s->voted, 1u << 1, what);
				ASSERT_MEMEQ(s->digests[1], d, HM_DIGEST_LEN, what);
			}
		}
	}
	/* A collected slot is free for the next window's seq; the kept ones
	 * still see duplicates. */
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 0, 31, 1, d, &ev, &why), 0, "seq 31 reuses 21's slot");
	ASSERT_EQ(vote(&q, HM_PHASE_COMMIT, 0, 26, 1, d, &ev, &why), -1, "kept slot");
	ASSERT_EQ(why, HM_DROP_DUPLICATE, "kept slot remembers its votes");
	/* Collecting everything. */
	hm_quorum_collect(&q, UINT64_MAX);
	for (uint64_t seq = 26; seq <= 31; seq++)
		ASSERT_TRUE(hm_quorum_find(&q, HM_PHASE_COMMIT, 0, seq) == NULL, "all collected");
	hm_quorum_free(&q);
}

HM_TEST(signatures_kept_per_voter)
{
	uint8_t d[HM_DIGEST_LEN], other[HM_DIGEST_LEN], sig[HM_SIG_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	char what[64];

	digest_of(d, 16);
	digest_of(other, 17);
	if (!init_f(&q, 5, 8))
		return;
	for (int ph = 0; ph < HM_PHASE_MAX; ph++) {
		uint32_t voters[HM_MAX_REPLICAS], nv = voters_for(16, ph, 0, voters);

		for (uint32_t k = 0; k < nv; k++)
			vote(&q, ph, 0, 7, voters[k], (k & 1) ? other : d, &ev, &why);
		const struct hm_vote_slot *s = hm_quorum_find(&q, ph, 0, 7);
		if (!ASSERT_TRUE(s != NULL, "slot"))
			continue;
		for (uint32_t k = 0; k < nv; k++) {
			snprintf(what, sizeof(what), "%s voter %u", phase_name(ph), voters[k]);
			sig_of(sig, voters[k], 7);
			ASSERT_MEMEQ(s->sigs[voters[k]], sig, HM_SIG_LEN, what);
			ASSERT_MEMEQ(s->digests[voters[k]], (k & 1) ? other : d, HM_DIGEST_LEN,
				     what);
		}
		/* An equivocating vote does not replace the stored signature. */
		uint8_t bad[HM_SIG_LEN];

		memset(bad, 0xab, sizeof(bad));
		ASSERT_EQ(hm_quorum_vote(&q, ph, 0, 7, voters[0], other, bad, &ev, &why), 1,
			  "equivocation");
		sig_of(sig, voters[0], 7);
		ASSERT_MEMEQ(s->sigs[voters[0]], sig, HM_SIG_LEN, "first signature kept");
		/* Nor does a duplicate. */
		ASSERT_EQ(hm_quorum_vote(&q, ph, 0, 7, voters[0], d, bad, &ev, &why), -1,
			  "duplicate");
		ASSERT_MEMEQ(s->sigs[voters[0]], sig, HM_SIG_LEN, "signature kept on duplicate");
		/* Voters that did not vote have no signature. */
		if (ph == HM_PHASE_PREPARE) {
			uint8_t zero[HM_SIG_LEN] = { 0 };

			ASSERT_MEMEQ(s->sigs[0], zero, HM_SIG_LEN, "primary's slot empty");
		}
	}
	/* hm_quorum_find on another (view, seq) of the same slot. */
	ASSERT_TRUE(hm_quorum_find(&q, HM_PHASE_COMMIT, 1, 7) == NULL, "other view");
	ASSERT_TRUE(hm_quorum_find(&q, HM_PHASE_COMMIT, 0, 15) == NULL, "other seq");
	hm_quorum_free(&q);
}

/* A randomized cross-check against a simple model: for any order of votes,
 * duplicates and expects, exactly one quorum event per slot, raised exactly
 * when the expected digest and the threshold-th matching vote are both in. */

HM_TEST(random_orders_match_model)
{
	uint8_t dg[3][HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;
	uint64_t seed = 0x1234567887654321ull, rng = seed;

	for (int i = 0; i < 3; i++)
		digest_of(dg[i], (uint8_t)(20 + i));
	for (int round = 0; round < 3000; round++) {
		uint32_t f = fs[hm_test_rand(&rng) % 3], n = 3 * f + 1;
		int ph = (int)(hm_test_rand(&rng) % 2);
		uint64_t view = hm_test_rand(&rng) % 5, seq = 1 + hm_test_rand(&rng) % 50;
		uint32_t thr;
		int vote_of[HM_MAX_REPLICAS], events = 0, matched = 0;
		bool expected = false, sent = false;

		if (!init_f(&q, f, 64))
			return;
		thr = hm_quorum_threshold(&q, ph);
		for (uint32_t i = 0; i < n; i++)
			vote_of[i] = -1;
		for (int step = 0; step < 60; step++) {
			uint64_t x = hm_test_rand(&rng);
			int r;

			if (x % 8 == 0) {
				r = hm_quorum_expect(&q, ph, view, seq, dg[0], &ev);
				if (!expected) {
					expected = true;
					if (matched >= (int)thr && !sent) {
						if (!ASSERT_EQ(r, 1, "expect completes"))
							goto fail;
						sent = true;
						events++;
						continue;
					}
				}
				if (!ASSERT_EQ(r, 0, "expect without event"))
					goto fail;
				continue;
			}
			uint32_t voter = (uint32_t)(x >> 8) % n;
			int d = (x >> 16) % 4 == 0 ? 1 : 0; /* mostly the right digest */

			r = vote(&q, ph, view, seq, voter, dg[d], &ev, &why);
			if (ph == HM_PHASE_PREPARE && voter == view % n) {
				if (!ASSERT_EQ(r, -1, "primary's prepare"))
					goto fail;
			} else if (vote_of[voter] == d) {
				if (!ASSERT_EQ(r, -1, "duplicate") ||
				    !ASSERT_EQ(why, HM_DROP_DUPLICATE, "duplicate"))
					goto fail;
			} else if (vote_of[voter] >= 0) {
				if (!ASSERT_EQ(r, 1, "equivocation") ||
				    !ASSERT_EQ(ev.kind, HM_EV_EQUIVOCATION, "equivocation"))
					goto fail;
			} else {
				vote_of[voter] = d;
				matched += d == 0;
				if (expected && !sent && matched >= (int)thr) {
					if (!ASSERT_EQ(r, 1, "quorum") ||
					    !ASSERT_EQ(ev.kind, HM_EV_QUORUM, "quorum") ||
					    !ASSERT_EQ(__builtin_popcount(ev.voters), matched, "voters"))
						goto fail;
					sent = true;
					events++;
				} else if (!ASSERT_EQ(r, 0, "plain vote")) {
					goto fail;
				}
			}
		}
		hm_quorum_free(&q);
		if (!ASSERT_LE(events, 1, "at most one event"))
			break;
		continue;
fail:
		fprintf(stderr, "  round %d of seed %#" PRIx64 "\n", round, seed);
		hm_quorum_free(&q);
		break;
	}
}

/* ---- the fast path: HM_EV_FAST (hm_quorum_expect_fast) ------------------ */

#define ME 1 /* "our" replica id in the fast-path cases */

/*
 * A script of steps on one slot (as selftests/dataplane/test_xdp_quorum.c
 * runs against the XDP program), each checked against what it must raise:
 *   E  the expectation with the case's fast flag;  F  with the flag;  N  without
 *   O  the expectation (case's flag), then our own vote (replica ME): two
 *      calls, each may raise one event;   o  our own vote alone
 *   v  the next peer's vote, the accepted digest;  b  the same, another digest
 *   -  every remaining peer's but one, accepted;   *  every remaining peer's
 *   x  the last peer that voted `b` votes the accepted digest (equivocation)
 * want_quorum / want_fast: the events in all, stated by hand.
 */
struct fast_case {
	const char *name;
	enum hm_vote_phase ph;
	bool me_primary; /* the view makes ME the primary; else replica 0 is */
	bool fast;
	const char *steps;
	int want_quorum, want_fast;
};

static const struct fast_case fast_cases[] = {
	{ "backup: expectation and own vote first", HM_PHASE_PREPARE, false, true, "O*", 1, 1 },
	{ "backup: own vote last", HM_PHASE_PREPARE, false, true, "E*o", 1, 1 },
	/* here the expectation raises the quorum, then our vote the fast event */
	{ "backup: peers first, then expectation and own vote", HM_PHASE_PREPARE, false, true,
	  "*O", 1, 1 },
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

/* One step's outcome against the model: r from the call, the event. */
static void fast_check(const struct fast_case *c, struct fast_model *m, uint32_t want, int r,
		       const struct hm_vote_event *ev, uint64_t view, uint64_t seq, const uint8_t *d,
		       bool by_vote, int *quorums, int *fasts, const char *what)
{
	if (!ASSERT_EQ(r, want ? 1 : 0, what) || !want)
		return;
	ASSERT_EQ(ev->kind, want, what);
	ASSERT_EQ(ev->phase, c->ph, what);
	ASSERT_TRUE(ev->view == view && ev->seq == seq, what);
	ASSERT_EQ(ev->voters, m->raised, what);
	ASSERT_MEMEQ(ev->digest, d, HM_DIGEST_LEN, what);
	if (want == HM_EV_FAST) {
		(*fasts)++;
		ASSERT_EQ(ev->voters, backups_of(m->n, view), what);
		ASSERT_EQ(__builtin_popcount(ev->voters), m->n - 1, what);
	} else {
		(*quorums)++;
		if (by_vote)
			ASSERT_EQ(__builtin_popcount(ev->voters), m->thr, what);
	}
}

static void fast_case_run(struct hm_quorum *q, const struct fast_case *c, uint32_t f,
			  uint64_t seq)
{
	uint32_t n = 3 * f + 1, peers[HM_MAX_REPLICAS], np = 0, next = 0, last_bad = UINT32_MAX;
	uint64_t view = c->me_primary ? ME : 0;
	uint32_t primary = (uint32_t)(view % n);
	uint8_t good[HM_DIGEST_LEN], bad[HM_DIGEST_LEN];
	struct fast_model m = { .n = n, .thr = hm_quorum_threshold(q, c->ph) };
	int quorums = 0, fasts = 0;
	enum hm_drop_reason why;
	struct hm_vote_event ev;
	char what[192];

	digest_of(good, 3);
	digest_of(bad, 4);
	for (uint32_t i = n; i-- > 0;)
		if (i != ME && !(c->ph == HM_PHASE_PREPARE && i == primary))
			peers[np++] = i;
	for (const char *st = c->steps; *st; st++) {
		uint32_t reps = *st == '*' ? np - next : *st == '-' ? np - next - 1 : 1;

		for (uint32_t k = 0; k < reps; k++) {
			uint32_t want;
			int r;

			snprintf(what, sizeof(what), "n=%u %s: step '%c' (%d), %d matching", n, c->name,
				 *st, (int)(st - c->steps), __builtin_popcount(m.matched));
			memset(&ev, 0, sizeof(ev));
			switch (*st) {
			case 'E': case 'F': case 'N': {
				bool fl = *st == 'E' ? c->fast : *st == 'F';

				want = fm_expect(&m, c->ph, fl);
				r = hm_quorum_expect_fast(q, c->ph, view, seq, good, fl, &ev);
				fast_check(c, &m, want, r, &ev, view, seq, good, false, &quorums,
					   &fasts, what);
				break;
			}
			case 'O': case 'o':
				if (*st == 'O') {
					want = fm_expect(&m, c->ph, c->fast);
					r = hm_quorum_expect_fast(q, c->ph, view, seq, good, c->fast, &ev);
					fast_check(c, &m, want, r, &ev, view, seq, good, false,
						   &quorums, &fasts, what);
				}
				m.matched |= (hm_voters_t)1 << ME;
				want = fm_raise(&m);
				r = vote(q, c->ph, view, seq, ME, good, &ev, &why);
				fast_check(c, &m, want, r, &ev, view, seq, good, true, &quorums,
					   &fasts, what);
				break;
			case 'v': case 'b': case '-': case '*': {
				uint32_t v = peers[next++];
				bool ok = *st != 'b';

				if (ok)
					m.matched |= (hm_voters_t)1 << v;
				else
					last_bad = v;
				want = fm_raise(&m);
				r = vote(q, c->ph, view, seq, v, ok ? good : bad, &ev, &why);
				fast_check(c, &m, want, r, &ev, view, seq, good, true, &quorums,
					   &fasts, what);
				break;
			}
			case 'x':
				r = vote(q, c->ph, view, seq, last_bad, good, &ev, &why);
				if (ASSERT_EQ(r, 1, what))
					ASSERT_EQ(ev.kind, HM_EV_EQUIVOCATION, what);
				break;
			default:
				HM_FAIL("bad step '%c'", *st);
				return;
			}
		}
	}
	snprintf(what, sizeof(what), "n=%u %s: events", n, c->name);
	ASSERT_EQ(quorums, c->want_quorum, what);
	ASSERT_EQ(fasts, c->want_fast, what);
	/* Nothing raises either again. */
	ASSERT_EQ(hm_quorum_expect_fast(q, c->ph, view, seq, good, true, &ev), 0, what);
	ASSERT_EQ(hm_quorum_expect_fast(q, c->ph, view, seq, good, false, &ev), 0, what);
	if (next > 0 && peers[next - 1] != last_bad) {
		ASSERT_EQ(vote(q, c->ph, view, seq, peers[next - 1], good, &ev, &why), -1, what);
		ASSERT_EQ(why, HM_DROP_DUPLICATE, what);
	}
	const struct hm_vote_slot *s = hm_quorum_find(q, c->ph, view, seq);
	if (ASSERT_TRUE(s != NULL, what)) {
		ASSERT_EQ(s->matched, m.matched, what);
		ASSERT_EQ(s->quorum_sent, 1, what);
		ASSERT_EQ(s->fast, c->want_fast ? 2 : c->ph == HM_PHASE_PREPARE && c->fast &&
			  c->steps[0] != 'N' ? 1 : 0, what);
	}
}

/*
 * The userspace counter's fast path, at n = 4 and n = 31 (the same cases
 * as the XDP program's, selftests/dataplane/test_xdp_quorum.c): HM_EV_FAST
 * exactly once, with the (n-1)-th matching backup PREPARE (or the
 * expectation, when the votes came first), voters exactly the n - 1
 * backups; the quorum at 2f before it; never with a mismatching vote,
 * never without the flag, never for COMMIT.
 */
HM_TEST(fast_event_n_of_n)
{
	static const uint32_t ffs[] = { 1, 10 };
	struct hm_quorum q;

	for (size_t fi = 0; fi < sizeof(ffs) / sizeof(ffs[0]); fi++) {
		if (!init_f(&q, ffs[fi], 64))
			continue;
		for (size_t k = 0; k < sizeof(fast_cases) / sizeof(fast_cases[0]); k++)
			fast_case_run(&q, &fast_cases[k], ffs[fi], 101 + k);
		hm_quorum_free(&q);
	}
}

/* hm_quorum_expect is hm_quorum_expect_fast without the flag: all n - 1
 * backups matching raise the quorum only, at 2f, for every f. */
HM_TEST(fast_event_never_without_flag)
{
	uint8_t d[HM_DIGEST_LEN];
	struct hm_vote_event ev;
	enum hm_drop_reason why;
	struct hm_quorum q;

	digest_of(d, 5);
	for (size_t fi = 0; fi < sizeof(fs) / sizeof(fs[0]); fi++) {
		uint32_t f = fs[fi], n = 3 * f + 1, voters[HM_MAX_REPLICAS], nv, events = 0;

		if (!init_f(&q, f, 8))
			continue;
		nv = voters_for(n, HM_PHASE_PREPARE, 0, voters);
		ASSERT_EQ(hm_quorum_expect(&q, HM_PHASE_PREPARE, 0, 5, d, &ev), 0, "expect");
		for (uint32_t k = 0; k < nv; k++) {
			int r = vote(&q, HM_PHASE_PREPARE, 0, 5, voters[k], d, &ev, &why);

			if (r == 1) {
				events++;
				ASSERT_EQ(ev.kind, HM_EV_QUORUM, "the quorum, never fast");
				ASSERT_EQ(k + 1, 2 * f, "at 2f");
			} else {
				ASSERT_EQ(r, 0, "no other event");
			}
		}
		ASSERT_EQ(events, 1, "one event");
		hm_quorum_free(&q);
	}
}

/* The counter interface (what the socket dataplane runs): a PREPARE
 * policy entry with .fast and our own vote completes the n-of-n: the
 * expectation raises the quorum (the peers' votes were in), our vote the
 * fast event, both delivered in order; the same entry without .fast, or
 * for COMMIT, raises the quorum only. */
HM_TEST(counter_interface_fast_policy)
{
	static const struct { enum hm_vote_phase ph; bool fast; uint32_t kinds[2]; size_t nev; }
	cases[] = {
		{ HM_PHASE_PREPARE, true, { HM_EV_QUORUM, HM_EV_FAST }, 2 },
		{ HM_PHASE_PREPARE, false, { HM_EV_QUORUM, 0 }, 1 },
		{ HM_PHASE_COMMIT, true, { HM_EV_QUORUM, 0 }, 1 },
	};

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		struct hm_vote_counter vc;
		struct hm_vote_event evs[2], ev;
		enum hm_drop_reason why;
		uint8_t sig[HM_SIG_LEN];
		struct pbft_vote_policy pol = { .phase = cases[k].ph, .view = 0, .seq = 3,
						.own_vote = true, .fast = cases[k].fast };
		size_t got;

		/* n = 4, we are 2; view 0: replica 0 is the primary */
		if (!ASSERT_EQ(hm_quorum_counter_new(&vc, 4, 1, 2, 8), 0, "counter"))
			return;
		digest_of(pol.digest, 1);
		sig_of(pol.sig, 2, 3);
		for (uint32_t v = cases[k].ph == HM_PHASE_PREPARE ? 1 : 0; v < 4; v++) {
			if (v == 2)
				continue;
			sig_of(sig, v, 3);
			ASSERT_EQ(vc.ops->vote(vc.state, cases[k].ph, 0, 3, v, pol.digest, sig, &ev,
					       &why), 0, "peer vote before the PRE-PREPARE");
		}
		memset(evs, 0, sizeof(evs));
		got = vc.ops->policy(vc.state, &pol, evs);
		if (ASSERT_EQ(got, cases[k].nev, "events from the policy entry")) {
			for (size_t i = 0; i < got; i++)
				ASSERT_EQ(evs[i].kind, cases[k].kinds[i], "event kind, in order");
			if (cases[k].kinds[got - 1] == HM_EV_FAST)
				ASSERT_EQ(evs[got - 1].voters, 0xe, "fast: 1, 2 (us) and 3, not 0");
		}
		vc.ops->destroy(vc.state);
	}
}

/* ---- the vote-counter interface (hm_quorum_counter_new) ------------------ */

/* The socket counter behind core/vote_counter.h does what the quorum does:
 * a policy entry with our own vote counts it as ours, votes complete the
 * quorum once, an equivocation is reported, the signatures are kept, and
 * collect forgets the slot. */
HM_TEST(counter_interface_matches_the_quorum)
{
	struct hm_vote_counter vc;
	struct hm_vote_event evs[2], ev;
	enum hm_drop_reason why;
	uint8_t d[HM_DIGEST_LEN], d2[HM_DIGEST_LEN], sig[HM_SIG_LEN];
	uint8_t sigs[HM_MAX_REPLICAS][HM_SIG_LEN];
	struct pbft_vote_policy pol = { .phase = HM_PHASE_COMMIT, .view = 0, .seq = 3,
					.own_vote = true };

	ASSERT_EQ(hm_quorum_counter_new(&vc, 4, 1, 4, 8), -1, "self outside the group");
	ASSERT_EQ(hm_quorum_counter_new(&vc, 4, 1, 2, 0), -1, "window 0");
	if (!ASSERT_EQ(hm_quorum_counter_new(&vc, 4, 1, 2, 8), 0, "counter"))
		return;
	ASSERT_TRUE(vc.ops->window == NULL && vc.ops->bind == NULL && vc.ops->progress == NULL,
		    "the socket counter delivers every event at once and sees nothing the node does not");
	digest_of(d, 1);
	digest_of(d2, 2);
	memcpy(pol.digest, d, HM_DIGEST_LEN);
	sig_of(pol.sig, 2, 3);
	ASSERT_EQ(vc.ops->policy(vc.state, &pol, evs), 0, "expectation and our vote: no quorum yet");
	sig_of(sig, 0, 3);
	ASSERT_EQ(vc.ops->vote(vc.state, HM_PHASE_COMMIT, 0, 3, 0, d, sig, &ev, &why), 0, "vote 0");
	ASSERT_EQ(vc.ops->vote(vc.state, HM_PHASE_COMMIT, 0, 3, 0, d, sig, &ev, &why), -1,
		  "duplicate");
	ASSERT_EQ(why, HM_DROP_DUPLICATE, "duplicate reason");
	sig_of(sig, 1, 3);
	ASSERT_EQ(vc.ops->vote(vc.state, HM_PHASE_COMMIT, 0, 3, 1, d, sig, &ev, &why), 1,
		  "the third matching COMMIT (ours included) is the quorum");
	ASSERT_EQ(ev.kind, HM_EV_QUORUM, "quorum event");
	ASSERT_EQ(ev.voters, 0x7, "voters 0, 1 and us (2)");
	ASSERT_EQ(vc.ops->vote(vc.state, HM_PHASE_COMMIT, 0, 3, 1, d2, sig, &ev, &why), 1,
		  "equivocation");
	ASSERT_EQ(ev.kind, HM_EV_EQUIVOCATION, "equivocation event");
	ASSERT_EQ(ev.voter, 1, "culprit");
	ASSERT_EQ(vc.ops->sigs(vc.state, HM_PHASE_COMMIT, 0, 3, 0x5, sigs), 0, "sigs of 0 and 2");
	ASSERT_MEMEQ(sigs[2], pol.sig, HM_SIG_LEN, "our own vote's signature");
	ASSERT_EQ(vc.ops->sigs(vc.state, HM_PHASE_COMMIT, 0, 3, 0x8, sigs), -1, "3 did not vote");
	vc.ops->collect(vc.state, 3);
	ASSERT_EQ(vc.ops->sigs(vc.state, HM_PHASE_COMMIT, 0, 3, 0x1, sigs), -1, "collected");
	vc.ops->destroy(vc.state);
}
