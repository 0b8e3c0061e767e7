// SPDX-License-Identifier: MIT
/* Structured logs (see log.h). */
#include "common/log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LOG_LINE_MAX 4096
#define LOG_MAX_PAIRS 32

static const char *names[] = { "error", "warn", "info", "debug" };
static const char *log_prog = "hypermesh";
static long log_id = -1;
static int log_threshold = HM_LOG_INFO;
static enum hm_log_format log_format = HM_LOG_KV;

int hm_log_parse_level(const char *name)
{
	for (int i = 0; i <= HM_LOG_DEBUG; i++)
		if (strcmp(name, names[i]) == 0)
			return i;
	return -1;
}

int hm_log_parse_format(const char *name)
{
	if (strcmp(name, "kv") == 0)
		return HM_LOG_KV;
	if (strcmp(name, "json") == 0)
		return HM_LOG_JSON;
	return -1;
}

void hm_log_set_format(enum hm_log_format format)
{
	log_format = format;
}

void hm_log_setup(const char *prog, long id, const char *level)
{
	int l = level ? hm_log_parse_level(level) : -1;

	log_prog = prog;
	log_id = id;
	if (l >= 0)
		log_threshold = l;
}

int hm_log_enabled(enum hm_log_level level)
{
	return (int)level <= log_threshold;
}

/* ---- rendering into a bounded buffer ------------------------------------- */

struct line {
	char *buf;
	size_t cap, len;
};

static void put_c(struct line *l, char c)
{
	if (l->len + 1 < l->cap)
		l->buf[l->len++] = c;
	l->buf[l->len < l->cap ? l->len : l->cap - 1] = 0;
}

static void put_s(struct line *l, const char *s)
{
	while (*s)
		put_c(l, *s++);
}

/* A logfmt value needs no quotes when it is one plain word. */
static bool bare_word(const char *v)
{
	if (!*v)
		return false;
	for (const char *p = v; *p; p++)
		if (!(*p >= 'a' && *p <= 'z') && !(*p >= 'A' && *p <= 'Z') &&
		    !(*p >= '0' && *p <= '9') && !strchr("_.:/+-@,[]", *p))
			return false;
	return true;
}

static const char *digits(const char *p)
{
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

/* A JSON number (RFC 8259's grammar): -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? */
static bool json_number(const char *v)
{
	const char *p = v + (*v == '-'), *q;

	if (*p == '0')
		q = p + 1;
	else if ((q = digits(p)) == p)
		return false;
	if (*q == '.') {
		p = q + 1;
		if ((q = digits(p)) == p)
			return false;
	}
	if (*q == 'e' || *q == 'E') {
		p = q + 1 + (q[1] == '+' || q[1] == '-');
		if ((q = digits(p)) == p)
			return false;
	}
	return *q == 0;
}

/* A quoted string, escaped as both logfmt and JSON read it. */
static void put_quoted(struct line *l, const char *v)
{
	put_c(l, '"');
	for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
		char esc[8];

		if (*p == '"' || *p == '\\') {
			put_c(l, '\\');
			put_c(l, (char)*p);
		} else if (*p == '\n') {
			put_s(l, "\\n");
		} else if (*p < 0x20 || *p == 0x7f) {
			snprintf(esc, sizeof(esc), "\\u%04x", *p);
			put_s(l, esc);
		} else {
			put_c(l, (char)*p);
		}
	}
	put_c(l, '"');
}

static void put_pair(struct line *l, enum hm_log_format f, bool first, const char *k,
		     const char *v)
{
	if (f == HM_LOG_JSON) {
		put_s(l, first ? "{" : ",");
		put_quoted(l, k);
		put_c(l, ':');
		if (json_number(v))
			put_s(l, v);
		else
			put_quoted(l, v);
		return;
	}
	if (!first)
		put_c(l, ' ');
	put_s(l, k);
	put_c(l, '=');
	if (bare_word(v))
		put_s(l, v);
	else
		put_quoted(l, v);
}

size_t hm_log_render(char *buf, size_t cap, enum hm_log_format format, const char *when,
		     enum hm_log_level level, const char *prog, long id, const char *msg,
		     const char *const *kv, size_t n_kv)
{
	struct line l = { buf, cap, 0 };
	char idbuf[24];

	if (!cap)
		return 0;
	buf[0] = 0;
	put_pair(&l, format, true, "ts", when);
	put_pair(&l, format, false, "level", names[level]);
	put_pair(&l, format, false, "prog", prog);
	if (id >= 0) {
		snprintf(idbuf, sizeof(idbuf), "%ld", id);
		put_pair(&l, format, false, "replica", idbuf);
	}
	put_pair(&l, format, false, "msg", msg);
	for (size_t i = 0; i < n_kv; i++)
		put_pair(&l, format, false, kv[2 * i], kv[2 * i + 1] ? kv[2 * i + 1] : "");
	if (format == HM_LOG_JSON)
		put_c(&l, '}');
	return l.len;
}

static void emit(enum hm_log_level level, const char *msg, const char *const *kv, size_t n_kv)
{
	struct timespec ts;
	struct tm tm;
	char when[48], date[32], line[LOG_LINE_MAX];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(when, sizeof(when), "%s.%03ldZ", date, ts.tv_nsec / 1000000);
	hm_log_render(line, sizeof(line), log_format, when, level, log_prog, log_id, msg, kv, n_kv);
	fprintf(stderr, "%s\n", line);
}

void hm_log(enum hm_log_level level, const char *fmt, ...)
{
	char msg[LOG_LINE_MAX / 2];
	va_list ap;

	if (!hm_log_enabled(level))
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	emit(level, msg, NULL, 0);
}

void hm_log_kv(enum hm_log_level level, const char *msg, ...)
{
	const char *kv[2 * LOG_MAX_PAIRS];
	size_t n = 0;
	const char *k;
	va_list ap;

	if (!hm_log_enabled(level))
		return;
	va_start(ap, msg);
	while ((k = va_arg(ap, const char *)) && n < LOG_MAX_PAIRS) {
		kv[2 * n] = k;
		kv[2 * n + 1] = va_arg(ap, const char *);
		n++;
	}
	va_end(ap);
	emit(level, msg, kv, n);
}

const char *hm_kv_u64(char *buf, size_t cap, uint64_t v)
{
	snprintf(buf, cap, "%llu", (unsigned long long)v);
	return buf;
}

const char *hm_kv_f(char *buf, size_t cap, double v)
{
	snprintf(buf, cap, "%.3f", v);
	return buf;
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
