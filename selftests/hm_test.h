/* SPDX-License-Identifier: MIT */
/*
 * A small test harness in the manner of the kernel's BPF selftests: each
 * selftests/test_*.c defines cases with HM_TEST(name) and checks with ASSERT_*
 * macros, which print what failed and where.  Each binary ends with the line
 * "N passed, N failed" and exits non-zero on any failure.
 *
 *   ./build/tests/test_wire            run every case
 *   ./build/tests/test_wire NAME...    run the named cases only
 */
#ifndef HM_TEST_H
#define HM_TEST_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*hm_test_fn)(void);
struct hm_test_case { const char *name; hm_test_fn fn; };

#define HM_TEST_MAX 256
static struct hm_test_case hm_test_cases[HM_TEST_MAX];
static int hm_test_count;
static int hm_test_failed_asserts; /* failures in the running case */

#define HM_TEST(name)                                                         \
	static void test_##name(void);                                        \
	__attribute__((constructor)) static void register_##name(void)        \
	{                                                                     \
		if (hm_test_count < HM_TEST_MAX)                              \
			hm_test_cases[hm_test_count++] =                      \
				(struct hm_test_case){ #name, test_##name };  \
	}                                                                     \
	static void test_##name(void)

#define HM_FAIL(fmt, ...)                                                     \
	do {                                                                  \
		fprintf(stderr, "  %s:%d: " fmt "\n", __FILE__, __LINE__,     \
			##__VA_ARGS__);                                       \
		hm_test_failed_asserts++;                                     \
	} while (0)

/* Each ASSERT returns whether it held, so a case can stop early:
 *   if (!ASSERT_OK(err, "load")) return; */
#define ASSERT_TRUE(cond, what)                                               \
	({ bool ok_ = (cond); if (!ok_) { HM_FAIL("%s: expected true: %s", what, #cond); } ok_; })
#define ASSERT_FALSE(cond, what)                                              \
	({ bool ok_ = !(cond); if (!ok_) { HM_FAIL("%s: expected false: %s", what, #cond); } ok_; })
#define ASSERT_EQ(a, b, what)                                                 \
	({ long long a_ = (long long)(a), b_ = (long long)(b); bool ok_ = a_ == b_; \
	   if (!ok_) { HM_FAIL("%s: %s == %lld, expected %lld", what, #a, a_, b_); } ok_; })
#define ASSERT_NEQ(a, b, what)                                                \
	({ long long a_ = (long long)(a), b_ = (long long)(b); bool ok_ = a_ != b_; \
	   if (!ok_) { HM_FAIL("%s: %s == %lld, expected another value", what, #a, a_); } ok_; })
#define ASSERT_GE(a, b, what)                                                 \
	({ long long a_ = (long long)(a), b_ = (long long)(b); bool ok_ = a_ >= b_; \
	   if (!ok_) { HM_FAIL("%s: %s == %lld, expected >= %lld", what, #a, a_, b_); } ok_; })
#define ASSERT_LE(a, b, what)                                                 \
	({ long long a_ = (long long)(a), b_ = (long long)(b); bool ok_ = a_ <= b_; \
	   if (!ok_) { HM_FAIL("%s: %s == %lld, expected <= %lld", what, #a, a_, b_); } ok_; })
#define ASSERT_OK(err, what)                                                  \
	({ long long e_ = (long long)(err); bool ok_ = e_ == 0;               \
	   if (!ok_) { HM_FAIL("%s: returned %lld, expected 0", what, e_); } ok_; })
#define ASSERT_ERR(err, what)                                                 \
	({ long long e_ = (long long)(err); bool ok_ = e_ != 0;               \
	   if (!ok_) { HM_FAIL("%s: returned 0, expected an error", what); } ok_; })
#define ASSERT_MEMEQ(a, b, len, what)                                         \
	({ bool ok_ = memcmp((a), (b), (len)) == 0;                           \
	   if (!ok_) { HM_FAIL("%s: %s and %s differ", what, #a, #b); } ok_; })
#define ASSERT_STRCONTAINS(hay, needle, what)                                 \
	({ const char *h_ = (hay); bool ok_ = h_ && strstr(h_, (needle));     \
	   if (!ok_) { HM_FAIL("%s: \"%s\" does not contain \"%s\"", what,      \
			     h_ ? h_ : "(null)", needle); } ok_; })

/* Seeded xorshift64 for randomized cases: print the seed on failure so a
 * run replays exactly. */
static inline uint64_t hm_test_rand(uint64_t *state)
{
	uint64_t x = *state;

	x ^= x << 13;
	x ^= x >> 7;
	x ^= x << 17;
	return *state = x;
}

static bool hm_test_selected(int argc, char **argv, const char *name)
{
	if (argc <= 1)
		return true;
	for (int i = 1; i < argc; i++)
		if (strcmp(argv[i], name) == 0)
			return true;
	return false;
}

int main(int argc, char **argv)
{
	int passed = 0, failed = 0;

	setvbuf(stdout, NULL, _IOLBF, 0);
	for (int i = 0; i < hm_test_count; i++) {
		if (!hm_test_selected(argc, argv, hm_test_cases[i].name))
			continue;
		hm_test_failed_asserts = 0;
		hm_test_cases[i].fn();
		if (hm_test_failed_asserts) {
			printf("FAIL %s\n", hm_test_cases[i].name);
			failed++;
		} else {
			printf("ok   %s\n", hm_test_cases[i].name);
			passed++;
		}
	}
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}

#endif /* HM_TEST_H */
