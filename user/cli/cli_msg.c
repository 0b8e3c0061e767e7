// SPDX-License-Identifier: MIT
/*
 * hmctl's error line (cli_msg.h).
 */
#include "cli/cli_msg.h"

#include <stdarg.h>
#include <stdio.h>

int hm_cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("hmctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}
