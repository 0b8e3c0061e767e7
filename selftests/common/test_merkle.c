// SPDX-License-Identifier: MIT
/*
 * Merkle trees (user/common/merkle.c) against the RFC 9162 / RFC 6962 section 2.1
 * definitions, written here a second time in their literal recursive form
 * (MTH, PATH, PROOF/SUBPROOF) with OpenSSL's SHA256() directly: the module
 * builds roots bottom-up and proofs by an unrolled walk, so the two agree
 * only if both are right.  Every tree size 1..64, every leaf, every (m, n)
 * pair; every byte of every proof flipped, proofs cut short and lengthened,
 * wrong indexes and sizes: all refused.
 */
#include <openssl/sha.h>

#include "hm_test.h"
#include "common/merkle.h"

#define MAXN 64
#define H HM_MERKLE_HASH_LEN

/* ---- the reference: RFC 9162 section 2.1.1, 2.1.3.1, 2.1.4.1 verbatim ---- */

/* Proofs in trees of up to 64 leaves have at most 12 hashes. */
struct ref_path { int len; uint8_t h[16][H]; };

static const uint8_t *leaf_data[MAXN];
static size_t leaf_len[MAXN];

static void ref_mth(int lo, int n, uint8_t out[H])
{
	uint8_t buf[1 + 2 * H];

	if (n == 0) {
		SHA256((const uint8_t *)"", 0, out);
		return;
	}
	if (n == 1) {
		uint8_t tmp[1 + 64];

		tmp[0] = 0x00;
		memcpy(tmp + 1, leaf_data[lo], leaf_len[lo]);
		SHA256(tmp, 1 + leaf_len[lo], out);
		return;
	}
	int k = 1;
	while (k * 2 < n)
		k *= 2;
	buf[0] = 0x01;
	ref_mth(lo, k, buf + 1);
	ref_mth(lo + k, n - k, buf + 1 + H);
	SHA256(buf, sizeof(buf), out);
}

static void ref_append(struct ref_path *p, int lo, int n)
{
	ref_mth(lo, n, p->h[p->len++]);
}

/* PATH(m, D[lo:lo+n]) */
static void ref_path(int m, int lo, int n, struct ref_path *p)
{
	if (n == 1)
		return;
	int k = 1;
	while (k * 2 < n)
		k *= 2;
	if (m < k) {
		ref_path(m, lo, k, p);
		ref_append(p, lo + k, n - k);
	} else {
		ref_path(m - k, lo + k, n - k, p);
		ref_append(p, lo, k);
	}
}

/* SUBPROOF(m, D[lo:lo+n], b) */
static void ref_subproof(int m, int lo, int n, bool b, struct ref_path *p)
{
	if (m == n) {
		if (!b)
			ref_append(p, lo, n);
		return;
	}
	int k = 1;
	while (k * 2 < n)
		k *= 2;
	if (m <= k) {
		ref_subproof(m, lo, k, b, p);
		ref_append(p, lo + k, n - k);
	} else {
		ref_subproof(m - k, lo + k, n - k, false, p);
		ref_append(p, lo, k);
	}
}

/* ---- fixtures ---- */

static uint8_t data_store[MAXN][64];
static hm_merkle_hash leaves[MAXN];
static hm_merkle_hash roots[MAXN + 1];
/* The reference proofs, computed once: ref_incl[n][i] = PATH(i, D[n]),
 * ref_cons[n][m] = PROOF(m, D[n]). */
static struct ref_path ref_incl[MAXN + 1][MAXN];
static struct ref_path ref_cons[MAXN + 1][MAXN + 1];

static void ref_path(int m, int lo, int n, struct ref_path *p);
static void ref_subproof(int m, int lo, int n, bool b, struct ref_path *p);

static void setup(void)
{
	static bool done;
	uint64_t seed = 0x5eed0f7e11u;

	if (done)
		return;
	done = true;

	for (int i = 0; i < MAXN; i++) {
		leaf_len[i] = hm_test_rand(&seed) % 64; /* includes empty leaves */
		for (size_t j = 0; j < leaf_len[i]; j++)
			data_store[i][j] = (uint8_t)hm_test_rand(&seed);
		leaf_data[i] = data_store[i];
		hm_merkle_leaf_hash(data_store[i], leaf_len[i], leaves[i]);
	}
	for (int n = 0; n <= MAXN; n++)
		ref_mth(0, n, roots[n]);
	for (int n = 1; n <= MAXN; n++)
		for (int m = 0; m < n; m++) {
			ref_path(m, 0, n, &ref_incl[n][m]);
			ref_subproof(m + 1, 0, n, true, &ref_cons[n][m + 1]);
		}
}

static void unhex(const char *s, uint8_t *out, size_t len)
{
	for (size_t i = 0; i < len; i++)
		sscanf(s + 2 * i, "%2hhx", &out[i]);
}

/* ---- cases ---- */

/* The published vectors of the CT reference implementation: roots of the
 * first 1..8 of these eight leaves. */
HM_TEST(known_vectors)
{
	static const char *const in[8] = {
		"", "00", "10", "2021", "3031", "40414243", "5051525354555657",
		"606162636465666768696a6b6c6d6e6f",
	};
	static const char *const want[8] = {
		"6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
		"fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
		"aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
		"d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
		"4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
		"76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
		"ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
		"5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
	};
	hm_merkle_hash lv[8], root, expect;
	uint8_t buf[16];

	for (int i = 0; i < 8; i++) {
		size_t len = strlen(in[i]) / 2;

		unhex(in[i], buf, len);
		hm_merkle_leaf_hash(buf, len, lv[i]);
	}
	for (int n = 1; n <= 8; n++) {
		hm_merkle_root(lv, n, root);
		unhex(want[n - 1], expect, H);
		ASSERT_MEMEQ(root, expect, H, "published root");
	}
	hm_merkle_root(lv, 0, root);
	unhex("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", expect, H);
	ASSERT_MEMEQ(root, expect, H, "empty tree");
}

HM_TEST(roots_match_definition)
{
	hm_merkle_hash root;

	setup();
	for (int n = 0; n <= MAXN; n++) {
		hm_merkle_root(leaves, n, root);
		if (!ASSERT_MEMEQ(root, roots[n], H, "MTH"))
			printf("  n=%d\n", n);
	}
}

static bool flips_refused_inclusion(int i, int n, hm_merkle_hash *path, int len)
{
	for (int e = 0; e < len; e++)
		for (int b = 0; b < H; b++) {
			path[e][b] ^= 0x01;
			bool ok = hm_merkle_verify_inclusion(i, n, leaves[i], path, len, roots[n]);
			path[e][b] ^= 0x01;
			if (ok)
				return false;
		}
	return true;
}

HM_TEST(inclusion_every_leaf_every_size)
{
	hm_merkle_hash path[HM_MERKLE_MAX_PATH + 1];
	hm_merkle_hash other;
	int checked = 0;

	setup();
	for (int n = 1; n <= MAXN; n++) {
		for (int i = 0; i < n; i++) {
			const struct ref_path *ref = &ref_incl[n][i];
			int len = hm_merkle_inclusion_proof(leaves, n, i, path, HM_MERKLE_MAX_PATH);

			if (!ASSERT_EQ(len, ref->len, "proof length") ||
			    !ASSERT_MEMEQ(path, ref->h, (size_t)len * H, "proof = PATH(m, D[n])") ||
			    !ASSERT_TRUE(hm_merkle_verify_inclusion(i, n, leaves[i], path, len, roots[n]),
					 "verify")) {
				printf("  n=%d i=%d\n", n, i);
				return;
			}
			ASSERT_TRUE(flips_refused_inclusion(i, n, path, len), "every byte flipped");
			/* the leaf hash and the root, flipped */
			memcpy(other, leaves[i], H);
			other[i % H] ^= 0x80;
			ASSERT_FALSE(hm_merkle_verify_inclusion(i, n, other, path, len, roots[n]), "wrong leaf");
			memcpy(other, roots[n], H);
			other[(i * 7) % H] ^= 0x04;
			ASSERT_FALSE(hm_merkle_verify_inclusion(i, n, leaves[i], path, len, other), "wrong root");
			/* lengths: cut short, one hash too many */
			if (len > 0)
				ASSERT_FALSE(hm_merkle_verify_inclusion(i, n, leaves[i], path, len - 1, roots[n]),
					     "truncated");
			memcpy(path[len], roots[n], H);
			ASSERT_FALSE(hm_merkle_verify_inclusion(i, n, leaves[i], path, len + 1, roots[n]),
				     "extended");
			/* every other index in the same tree */
			for (int j = 0; j < n; j++)
				if (j != i && !ASSERT_FALSE(hm_merkle_verify_inclusion(j, n, leaves[i], path,
										len, roots[n]),
							    "wrong index"))
					printf("  n=%d i=%d j=%d\n", n, i, j);
			/* out of range: index at or past the size, size 0 */
			ASSERT_FALSE(hm_merkle_verify_inclusion(n, n, leaves[i], path, len, roots[n]),
				     "index == size");
			ASSERT_FALSE(hm_merkle_verify_inclusion(i, 0, leaves[i], path, len, roots[n]), "size 0");
			/* the proof of this leaf in a smaller or larger tree, whose
			 * proofs differ, does not verify against this root */
			for (int n2 = i + 1; n2 <= MAXN; n2++) {
				const struct ref_path *r2 = &ref_incl[n2][i];

				if (n2 == n)
					continue;
				if (r2->len == len && memcmp(r2->h, path, (size_t)len * H) == 0)
					continue;
				ASSERT_FALSE(hm_merkle_verify_inclusion(i, n, leaves[i], r2->h, r2->len, roots[n]),
					     "proof from another tree size");
			}
			checked++;
		}
	}
	ASSERT_EQ(checked, MAXN * (MAXN + 1) / 2, "every leaf of every size checked");
	ASSERT_EQ(hm_merkle_inclusion_proof(leaves, 4, 4, path, HM_MERKLE_MAX_PATH), -1, "index >= n");
	ASSERT_EQ(hm_merkle_inclusion_proof(leaves, 64, 3, path, 5), -1, "cap too small");
}

static bool flips_refused_consistency(int m, int n, hm_merkle_hash *path, int len)
{
	for (int e = 0; e < len; e++)
		for (int b = 0; b < H; b++) {
			path[e][b] ^= 0x01;
			bool ok = hm_merkle_verify_consistency(m, n, roots[m], roots[n], path, len);
			path[e][b] ^= 0x01;
			if (ok)
				return false;
		}
	return true;
}

HM_TEST(consistency_every_pair)
{
	hm_merkle_hash path[HM_MERKLE_MAX_PATH + 1], other;
	int checked = 0;

	setup();
	for (int n = 1; n <= MAXN; n++) {
		for (int m = 1; m <= n; m++) {
			const struct ref_path *ref = &ref_cons[n][m];
			int len = hm_merkle_consistency_proof(leaves, n, m, path, HM_MERKLE_MAX_PATH);

			if (!ASSERT_EQ(len, ref->len, "proof length") ||
			    !ASSERT_MEMEQ(path, ref->h, (size_t)len * H, "proof = PROOF(m, D[n])") ||
			    !ASSERT_TRUE(hm_merkle_verify_consistency(m, n, roots[m], roots[n], path, len),
					 "verify")) {
				printf("  m=%d n=%d\n", m, n);
				return;
			}
			ASSERT_TRUE(flips_refused_consistency(m, n, path, len), "every byte flipped");
			memcpy(other, roots[m], H);
			other[m % H] ^= 0x10;
			ASSERT_FALSE(hm_merkle_verify_consistency(m, n, other, roots[n], path, len), "wrong old root");
			memcpy(other, roots[n], H);
			other[n % H] ^= 0x10;
			ASSERT_FALSE(hm_merkle_verify_consistency(m, n, roots[m], other, path, len), "wrong new root");
			if (len > 0)
				ASSERT_FALSE(hm_merkle_verify_consistency(m, n, roots[m], roots[n], path, len - 1),
					     "truncated");
			memcpy(path[len], roots[n], H);
			ASSERT_FALSE(hm_merkle_verify_consistency(m, n, roots[m], roots[n], path, len + 1),
				     "extended");
			/* the same proof claimed for another old size (with that
			 * tree's true root), where the proofs differ */
			for (int m2 = 1; m2 <= n; m2++) {
				const struct ref_path *r2 = &ref_cons[n][m2];

				if (m2 == m)
					continue;
				if (r2->len == len && memcmp(r2->h, path, (size_t)len * H) == 0)
					continue;
				if (!ASSERT_FALSE(hm_merkle_verify_consistency(m2, n, roots[m2], roots[n], path, len),
						  "wrong first size"))
					printf("  m=%d n=%d m2=%d\n", m, n, m2);
			}
			/* a tree that is not an extension: the old root of a
			 * different leaf set of the same size */
			if (m < n) {
				hm_merkle_hash alt[MAXN], alt_root;

				memcpy(alt, leaves, sizeof(alt));
				alt[m - 1][0] ^= 0xff;
				hm_merkle_root(alt, m, alt_root);
				ASSERT_FALSE(hm_merkle_verify_consistency(m, n, alt_root, roots[n], path, len),
					     "two views");
			}
			checked++;
		}
	}
	ASSERT_EQ(checked, MAXN * (MAXN + 1) / 2, "every pair checked");
	/* edges: m > n, m == 0, m == n with a non-empty proof */
	ASSERT_EQ(hm_merkle_consistency_proof(leaves, 4, 5, path, HM_MERKLE_MAX_PATH), -1, "m > n");
	ASSERT_EQ(hm_merkle_consistency_proof(leaves, 4, 0, path, HM_MERKLE_MAX_PATH), -1, "m == 0");
	ASSERT_FALSE(hm_merkle_verify_consistency(5, 4, roots[5], roots[4], path, 1), "verify m > n");
	ASSERT_TRUE(hm_merkle_verify_consistency(0, 4, roots[0], roots[4], path, 0), "empty tree, empty proof");
	ASSERT_FALSE(hm_merkle_verify_consistency(0, 4, roots[1], roots[4], path, 0), "size 0 with a root");
	ASSERT_FALSE(hm_merkle_verify_consistency(0, 4, roots[0], roots[4], path, 1), "size 0, non-empty proof");
	memcpy(path[0], roots[4], H);
	ASSERT_FALSE(hm_merkle_verify_consistency(4, 4, roots[4], roots[4], path, 1), "m == n, non-empty");
	ASSERT_FALSE(hm_merkle_verify_consistency(4, 4, roots[4], roots[3], path, 0), "m == n, roots differ");
	ASSERT_FALSE(hm_merkle_verify_consistency(3, 5, roots[3], roots[5], path, 0), "m < n, empty proof");
}
