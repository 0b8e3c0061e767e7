/* SPDX-License-Identifier: MIT */
/*
 * hypermeshd's one-shot modes, which start no replica (hypermeshd(8)):
 *   --check-config FILE   validate as the daemon would, like unbound-checkconf
 *   --cleanup FILE        remove what a replica that died without its
 *                         shutdown left on its interface (the unit's
 *                         ExecStopPost)
 * Each returns the process's exit status.
 */
#ifndef HM_DAEMON_ADMIN_H
#define HM_DAEMON_ADMIN_H

/* id < 0 and key NULL: the file's node section decides (none: a shared
 * file, checked without an identity).  0 valid, 1 not (the reason on
 * stderr, with file:line:key where the loader gives one). */
int hm_daemon_check_config(const char *path, long id, const char *key);

/* 0 done or nothing to do, 1 failed (no such interface, a bad file). */
int hm_daemon_cleanup(const char *path);

#endif /* HM_DAEMON_ADMIN_H */
