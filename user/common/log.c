// SPDX-License-Identifier: MIT
/* Structured logs (see log.h). */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *names[] = { "error", "warn", "info", "debug" };
static const char *log_prog = "hypermesh";
static long log_id = -1;
static int log_threshold = HM_LOG_INFO;

int hm_log_parse_level(const char *name)
{
	for (int i = 0; i <= HM_LOG_DEBUG; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

void hm_log_setup(const char *prog, long id, const char *level)
{
	int l = level ? hm_log_parse_level(level) : -1;

	log_prog = prog;
	log_id = id;
	if (l >= 0)
		log_threshold = l;
}

void hm_log(enum hm_log_level level, const char *fmt, ...)
{
	struct timespec ts;
	struct tm tm;
	char when[32];
	va_list ap;

	if ((int)level > log_threshold)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	if (log_id >= 0)
		fprintf(stderr, "%s.%03ldZ %-5s %s[%ld]: ", when, ts.tv_nsec / 1000000, names[level],
			log_prog, log_id);
	else
		fprintf(stderr, "%s.%03ldZ %-5s %s: ", when, ts.tv_nsec / 1000000, names[level],
			log_prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int hm_set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || !errlen)
		return -1;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}
