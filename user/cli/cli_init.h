/* SPDX-License-Identifier: MIT */
/*
 * hmctl init --out DIR [options] ADDRESS...: the keys and configuration
 * files of a new cluster, one replica per address (n = 3f+1), plus the
 * operator's client (cli_init.c describes the layout; docs/deployment.md
 * walks through using it).
 */
#ifndef HM_CLI_INIT_H
#define HM_CLI_INIT_H

/* argv[0] is "init".  Returns the exit status: 0 written, 1 refused
 * (existing keys without --force, a bad address, n not 3f+1), 2 usage. */
int hm_cli_init(int argc, char **argv);

#endif /* HM_CLI_INIT_H */
