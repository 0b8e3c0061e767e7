/* SPDX-License-Identifier: MIT */
/*
 * Structured logs with levels, one line per event on stderr, in one of two
 * formats (node.log_format, hypermeshd --log-format):
 *
 *   kv (default, logfmt):
 *     ts=2026-12-06T07:31:06.123Z level=info prog=hypermeshd replica=0 msg="view change" old_view=1 new_view=2 reason=request_timeout
 *   json (one object per line, for log shippers):
 *     {"ts":"2026-12-06T07:31:06.123Z","level":"info","prog":"hypermeshd","replica":0,"msg":"view change","old_view":1,"new_view":2,"reason":"request_timeout"}
 *
 * hm_log() takes a printf-style message; hm_log_kv() a fixed message (the
 * event's name, what an operator greps for) and key/value pairs, so both
 * formats carry the fields as fields.  Values are strings; HM_KV_U() and
 * HM_KV_F() format numbers in place (a buffer that lives until the end of
 * the calling statement's block).  Integer-looking values are JSON numbers.
 */
#ifndef HM_LOG_H
#define HM_LOG_H

#include <stddef.h>
#include <stdint.h>

enum hm_log_level { HM_LOG_ERROR = 0, HM_LOG_WARN, HM_LOG_INFO, HM_LOG_DEBUG };
enum hm_log_format { HM_LOG_KV = 0, HM_LOG_JSON };

/* Set the program name, node id (-1: none) and threshold ("error".."debug"). */
void hm_log_setup(const char *prog, long id, const char *level);
/* "kv" or "json"; -1 for anything else. */
int hm_log_parse_format(const char *name);
void hm_log_set_format(enum hm_log_format format);
int hm_log_parse_level(const char *name);
/* Whether a line at this level would be written (skip costly formatting). */
int hm_log_enabled(enum hm_log_level level);
void hm_log(enum hm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* msg, then key, value, key, value, ..., NULL. */
void hm_log_kv(enum hm_log_level level, const char *msg, ...) __attribute__((sentinel));

/* Render one line into buf (no newline; truncated to cap): what hm_log_kv
 * writes, for the tests.  kv[] holds n_kv key/value pairs. */
size_t hm_log_render(char *buf, size_t cap, enum hm_log_format format, const char *when,
		     enum hm_log_level level, const char *prog, long id, const char *msg,
		     const char *const *kv, size_t n_kv);

const char *hm_kv_u64(char *buf, size_t cap, uint64_t v);
const char *hm_kv_f(char *buf, size_t cap, double v);
#define HM_KV_U(x) hm_kv_u64((char[24]){ 0 }, 24, (uint64_t)(x))
#define HM_KV_F(x) hm_kv_f((char[32]){ 0 }, 32, (double)(x))

/* Write a message into a caller's error buffer (err may be NULL); returns
 * -1 so that `return hm_set_err(err, len, ...)` reads as a failure. */
int hm_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define hm_err(...) hm_log(HM_LOG_ERROR, __VA_ARGS__)
#define hm_warn(...) hm_log(HM_LOG_WARN, __VA_ARGS__)
#define hm_info(...) hm_log(HM_LOG_INFO, __VA_ARGS__)
#define hm_debug(...) hm_log(HM_LOG_DEBUG, __VA_ARGS__)

#endif /* HM_LOG_H */
