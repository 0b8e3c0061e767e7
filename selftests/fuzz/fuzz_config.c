// SPDX-License-Identifier: MIT
/*
 * libFuzzer target for the configuration file (common/config.c): the input
 * is the file's text, parsed with hm_config_parse() as if it were
 * /nonexistent-hm-fuzz/cluster.yaml (so key files named relative to it are
 * never found, and nothing outside is written).  Built and run by
 * scripts/fuzz.sh (target `config`).
 *
 * Invariants: a refused file gets a message that starts with its path and
 * a colon (file:line: key: reason, as operators see it); an accepted one
 * holds what the daemon relies on: n = 3f+1 members (or none), ids 0..n-1,
 * client ids above them and distinct, a datagram size the wire allows, a
 * pipeline no deeper than the window.
 *
 * Built with -DHM_FUZZ_SEEDGEN, a small program writing the seed corpus:
 * dist/hypermesh.yaml.example and every ```yaml block of
 * docs/configuration.md (run from the repository's root, as fuzz.sh does).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/config.h"
#include "common/crypto.h"
#include "common/wire.h"

#define HM_FUZZ_NAME "fuzz_config"
#define HM_FUZZ_SEED_PREFIX "seed-config-"
#include "hm_fuzz.h"

#define FAKE_PATH "/nonexistent-hm-fuzz/cluster.yaml"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	if (hm_crypto_init() < 0)
		abort();
	return 0;
}

static void check_accepted(const struct hm_config *cfg)
{
	uint32_t n = cfg->n_members, f = cfg->max_faulty_nodes;

	CHECK(n == 0 || n == 3 * f + 1);
	CHECK(n <= HM_MAX_REPLICAS);
	for (uint32_t i = 0; i < n; i++)
		CHECK(cfg->members[i].id == i);
	for (uint32_t i = 0; i < cfg->n_clients; i++) {
		CHECK(cfg->clients[i].id >= n);
		for (uint32_t j = 0; j < i; j++)
			CHECK(cfg->clients[j].id != cfg->clients[i].id);
	}
	CHECK(cfg->max_message_size <= HM_MAX_DATAGRAM);
	CHECK(cfg->batch_size >= 1);
	CHECK(cfg->pipeline_depth >= 1 && cfg->pipeline_depth <= cfg->watermark_window);
	CHECK(strcmp(cfg->path, FAKE_PATH) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct hm_config cfg;
	char err[1024];

	err[0] = '\0';
	if (hm_config_parse(FAKE_PATH, (const char *)data, size, &cfg, err, sizeof(err)) == 0) {
		check_accepted(&cfg);
	} else {
		CHECK(strncmp(err, FAKE_PATH ":", strlen(FAKE_PATH ":")) == 0);
		CHECK(cfg.clients == NULL && cfg.n_members == 0); /* nothing left behind */
	}
	hm_config_free(&cfg);
	return 0;
}

#ifdef HM_FUZZ_SEEDGEN
/* The whole of a file, NUL-terminated; NULL if it cannot be read. */
static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (!f)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		buf[n] = '\0';
		*len = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

int main(int argc, char **argv)
{
	size_t len;
	char *text, *p, name[32];
	int rc = seed_begin(argc, argv), blocks = 0;

	if (rc)
		return rc;
	text = slurp("dist/hypermesh.yaml.example", &len);
	if (!text) {
		perror("dist/hypermesh.yaml.example");
		return 1;
	}
	write_seed("example", text, len);
	free(text);
	text = slurp("docs/configuration.md", &len);
	if (!text) {
		perror("docs/configuration.md");
		return 1;
	}
	for (p = text; (p = strstr(p, "```yaml\n"));) {
		char *start = p + 8, *end = strstr(start, "```");

		if (!end)
			break;
		snprintf(name, sizeof(name), "docs-%d", ++blocks);
		write_seed(name, start, (size_t)(end - start));
		p = end + 3;
	}
	free(text);
	return seed_end();
}
#endif /* HM_FUZZ_SEEDGEN */
