// SPDX-License-Identifier: MIT
/* Equivocation proofs (user/core/evidence.c): built from two signed votes,
 * checked by anyone with the public keys; every way a proof can lie. */
#include <arpa/inet.h>
#include <sodium.h>

#include "common/crypto.h"
#include "core/evidence.h"
#include "hm_test.h"
#include "common/wire.h"

#define N 4

static struct hm_keypair keys[N];
static uint8_t pks[N][HM_PUBKEY_LEN];

static void setup(void)
{
	static bool done;

	if (done)
		return;
	hm_crypto_init();
	for (int i = 0; i < N; i++) {
		uint8_t seed[32] = { (uint8_t)(i + 1) };

		hm_keypair_from_seed(&keys[i], seed);
		memcpy(pks[i], keys[i].pk, HM_PUBKEY_LEN);
	}
	done = true;
}

/* A vote from `who`, signed with `kp`, for digest filled with `d`. */
static void vote(uint8_t *buf, uint8_t type, uint32_t who, uint64_t view, uint64_t seq, uint8_t d,
		 const struct hm_keypair *kp)
{
	uint8_t digest[HM_DIGEST_LEN];

	memset(digest, d, sizeof(digest));
	hm_msg_build(buf, HM_HDR_LEN, type, who, view, seq, digest, NULL, 0, kp);
}

static enum hm_evidence_error check(const uint8_t *proof, size_t len, uint32_t *culprit)
{
	return hm_evidence_check(proof, len, N, (const uint8_t(*)[HM_PUBKEY_LEN])pks, culprit, NULL,
				 NULL, NULL);
}

HM_TEST(valid_proof)
{
	uint8_t a[HM_HDR_LEN], b[HM_HDR_LEN], proof[HM_EVIDENCE_LEN];
	uint32_t culprit = 99;
	uint64_t view, seq;
	uint8_t type;

	setup();
	vote(a, HM_MSG_COMMIT, 2, 3, 17, 0xaa, &keys[2]);
	vote(b, HM_MSG_COMMIT, 2, 3, 17, 0xbb, &keys[2]);
	((struct hm_hdr *)b)->flags = htons(HM_FLAG_RETRANSMIT); /* not signed: ignored */
	ASSERT_EQ(hm_evidence_build(proof, sizeof(proof), a, b), HM_EVIDENCE_LEN, "built");
	ASSERT_EQ(hm_evidence_check(proof, sizeof(proof), N, (const uint8_t(*)[HM_PUBKEY_LEN])pks,
				    &culprit, &type, &view, &seq), HM_EVIDENCE_OK, "checks");
	ASSERT_EQ(culprit, 2, "names the sender");
	ASSERT_EQ(type, HM_MSG_COMMIT, "type");
	ASSERT_EQ(view, 3, "view");
	ASSERT_EQ(seq, 17, "seq");
	ASSERT_EQ(hm_evidence_build(proof, sizeof(proof) - 1, a, b), 0, "no room");
}

HM_TEST(record_from_fields_matches_the_message)
{
	uint8_t a[HM_HDR_LEN], b[HM_HDR_LEN], ra[HM_EVIDENCE_RECORD], proof[HM_EVIDENCE_LEN];
	const struct hm_hdr *h = (const void *)a;
	uint32_t culprit;

	setup();
	vote(a, HM_MSG_PREPARE, 1, 0, 5, 0x11, &keys[1]);
	vote(b, HM_MSG_PREPARE, 1, 0, 5, 0x22, &keys[1]);
	/* what the XDP vote slot keeps (digest, signature) is enough */
	hm_evidence_record(ra, HM_MSG_PREPARE, 1, 0, 0, 5, h->digest, h->sig);
	ASSERT_MEMEQ(ra, a, HM_EVIDENCE_RECORD, "same bytes as the message's header");
	hm_evidence_build(proof, sizeof(proof), ra, b);
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_OK, "checks");
	ASSERT_EQ(culprit, 1, "replica 1");
}

HM_TEST(not_conflicting)
{
	uint8_t a[HM_HDR_LEN], b[HM_HDR_LEN], proof[HM_EVIDENCE_LEN];
	uint32_t culprit;

	setup();
	vote(a, HM_MSG_COMMIT, 2, 3, 17, 0xaa, &keys[2]);
	vote(b, HM_MSG_COMMIT, 2, 3, 17, 0xaa, &keys[2]);
	hm_evidence_build(proof, sizeof(proof), a, b);
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_NOT_CONFLICTING, "same digest");
	vote(b, HM_MSG_COMMIT, 2, 3, 18, 0xbb, &keys[2]);
	hm_evidence_build(proof, sizeof(proof), a, b);
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_NOT_CONFLICTING, "other seq");
	vote(b, HM_MSG_COMMIT, 2, 4, 17, 0xbb, &keys[2]);
	hm_evidence_build(proof, sizeof(proof), a, b);
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_NOT_CONFLICTING, "other view");
	vote(b, HM_MSG_PREPARE, 2, 3, 17, 0xbb, &keys[2]);
	hm_evidence_build(proof, sizeof(proof), a, b);
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_NOT_CONFLICTING, "other type");
	vote(b, HM_MSG_COMMIT, 1, 3, 17, 0xbb, &keys[1]);
	hm_evidence_build(proof, sizeof(proof), a, b);
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_NOT_CONFLICTING,
		  "two senders: no equivocation by either");
	/* checkpoints, replies and the like are not one-per-slot messages */
	vote(a, HM_MSG_CHECKPOINT, 2, 0, 10, 0xaa, &keys[2]);
	vote(b, HM_MSG_CHECKPOINT, 2, 0, 10, 0xbb, &keys[2]);
	hm_evidence_build(proof, sizeof(proof), a, b);
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_BAD_HEADER, "checkpoint");
}

HM_TEST(forged_signatures)
{
	uint8_t a[HM_HDR_LEN], b[HM_HDR_LEN], proof[HM_EVIDENCE_LEN];
	uint32_t culprit;

	setup();
	/* replica 1 tries to frame replica 2: its own key on 2's name */
	vote(a, HM_MSG_COMMIT, 2, 3, 17, 0xaa, &keys[2]);
	vote(b, HM_MSG_COMMIT, 2, 3, 17, 0xbb, &keys[1]);
	hm_evidence_build(proof, sizeof(proof), a, b);
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_BAD_SIGNATURE, "framing fails");
	/* a real pair with one digest byte changed after signing */
	vote(b, HM_MSG_COMMIT, 2, 3, 17, 0xbb, &keys[2]);
	hm_evidence_build(proof, sizeof(proof), a, b);
	proof[8 + HM_EVIDENCE_RECORD + HM_OFF_DIGEST] ^= 1;
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_BAD_SIGNATURE, "tampered digest");
	/* the non-canonical twin of a valid signature (S + L) */
	hm_evidence_build(proof, sizeof(proof), a, b);
	proof[8 + HM_OFF_SIG + 63] |= 0xf0;
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_BAD_SIGNATURE, "non-canonical S");
}

HM_TEST(malformed)
{
	uint8_t a[HM_HDR_LEN], b[HM_HDR_LEN], proof[HM_EVIDENCE_LEN];
	uint32_t culprit;

	setup();
	vote(a, HM_MSG_COMMIT, 2, 3, 17, 0xaa, &keys[2]);
	vote(b, HM_MSG_COMMIT, 2, 3, 17, 0xbb, &keys[2]);
	hm_evidence_build(proof, sizeof(proof), a, b);
	for (size_t len = 0; len < sizeof(proof); len++)
		if (check(proof, len, &culprit) != HM_EVIDENCE_TRUNCATED) {
			HM_FAIL("length %zu accepted", len);
			break;
		}
	ASSERT_EQ(check(NULL, sizeof(proof), &culprit), HM_EVIDENCE_TRUNCATED, "NULL");
	proof[0] ^= 1;
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_BAD_MAGIC, "magic");
	proof[0] ^= 1;
	proof[6] = 1;
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_BAD_MAGIC, "reserved bytes");
	proof[6] = 0;
	proof[8 + 4] = 9;
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_BAD_HEADER, "record version");
	proof[8 + 4] = HM_VERSION;
	/* a sender id past n, signed by nobody we know */
	vote(a, HM_MSG_COMMIT, 7, 3, 17, 0xaa, &keys[2]);
	vote(b, HM_MSG_COMMIT, 7, 3, 17, 0xbb, &keys[2]);
	hm_evidence_build(proof, sizeof(proof), a, b);
	ASSERT_EQ(check(proof, sizeof(proof), &culprit), HM_EVIDENCE_UNKNOWN_SENDER, "sender >= n");
	ASSERT_STRCONTAINS(hm_evidence_error_name(HM_EVIDENCE_BAD_SIGNATURE), "signature", "names");
	ASSERT_STRCONTAINS(hm_evidence_error_name(99), "?", "out of range");
}

HM_TEST(random_bytes_never_pass)
{
	uint8_t proof[HM_EVIDENCE_LEN];
	uint32_t culprit;

	setup();
	for (int i = 0; i < 20000; i++) {
		randombytes_buf(proof, sizeof(proof));
		if (i % 2) {
			hm_put_be32(proof, HM_EVIDENCE_MAGIC);
			proof[4] = HM_EVIDENCE_VERSION;
			proof[5] = proof[6] = proof[7] = 0;
		}
		if (check(proof, sizeof(proof), &culprit) == HM_EVIDENCE_OK) {
			HM_FAIL("random proof %d accepted", i);
			return;
		}
	}
}
