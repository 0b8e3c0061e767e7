/* SPDX-License-Identifier: MIT */
/* Structured logs with levels: "TIME LEVEL PROG[ID]: message". */
#ifndef HM_LOG_H
#define HM_LOG_H

#include <stddef.h>

enum hm_log_level { HM_LOG_ERROR = 0, HM_LOG_WARN, HM_LOG_INFO, HM_LOG_DEBUG };

/* Set the program name, node id and threshold ("error".."debug"). */
void hm_log_setup(const char *prog, long id, const char *level);
int hm_log_parse_level(const char *name);
void hm_log(enum hm_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Write a message into a caller's error buffer (err may be NULL); returns
 * -1 so that `return hm_set_err(err, len, ...)` reads as a failure. */
int hm_set_err(char *err, size_t errlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#define hm_err(...) hm_log(HM_LOG_ERROR, __VA_ARGS__)
#define hm_warn(...) hm_log(HM_LOG_WARN, __VA_ARGS__)
#define hm_info(...) hm_log(HM_LOG_INFO, __VA_ARGS__)
#define hm_debug(...) hm_log(HM_LOG_DEBUG, __VA_ARGS__)

#endif /* HM_LOG_H */
