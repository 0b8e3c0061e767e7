/* SPDX-License-Identifier: MIT */
/*
 * What every libFuzzer target in selftests/fuzz/ shares: the entry points,
 * CHECK (an invariant that abort()s when broken, so the fuzzer reports it
 * like a crash) and, built with -DHM_FUZZ_SEEDGEN, the seed generator's
 * frame: seed_begin() takes the corpus directory from the command line and
 * initializes the target, write_seed() writes one seed and runs the target
 * on it once (uninstrumented), seed_end() says how many were written.
 */
#ifndef HM_FUZZ_H
#define HM_FUZZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond)                                                                 \
	do {                                                                        \
		if (!(cond)) {                                                      \
			fprintf(stderr, "%s: invariant broken at %s:%d: %s\n",       \
				HM_FUZZ_NAME, __FILE__, __LINE__, #cond);            \
			abort();                                                    \
		}                                                                   \
	} while (0)

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef HM_FUZZ_SEEDGEN
#include <errno.h>
#include <sys/stat.h>

static const char *seed_dir;
static int seed_count;

/* Write seed SEED_PREFIX-name into the corpus and run the target on it. */
static void write_seed(const char *name, const void *p, size_t len)
{
	char path[4096];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s%s", seed_dir, HM_FUZZ_SEED_PREFIX, name);
	f = fopen(path, "wb");
	if (!f || fwrite(p, 1, len, f) != len || fclose(f) != 0) {
		perror(path);
		exit(1);
	}
	LLVMFuzzerTestOneInput(p, len);
	seed_count++;
}

/* 0, or the status main should exit with. */
static int seed_begin(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: %s CORPUS_DIR\n", argv[0]);
		return 2;
	}
	seed_dir = argv[1];
	if (mkdir(seed_dir, 0755) < 0 && errno != EEXIST) {
		perror(seed_dir);
		return 1;
	}
	LLVMFuzzerInitialize(NULL, NULL);
	return 0;
}

static int seed_end(void)
{
	printf("fuzz seeds: %d written to %s\n", seed_count, seed_dir);
	return 0;
}
#endif /* HM_FUZZ_SEEDGEN */

#endif
