/* SPDX-License-Identifier: MIT */
/*
 * hmctl's error line, shared by hmctl.c and its subcommands (cli_ct.c):
 * "hmctl: <message>\n" on stderr.
 */
#ifndef HM_CLI_MSG_H
#define HM_CLI_MSG_H

/* Print "hmctl: " and the printf-formatted message on stderr; returns 1
 * (the exit status of an error), so callers can return it or exit with it. */
int hm_cli_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
