/* SPDX-License-Identifier: MIT */
/*
 * hypermeshd and its service manager (systemd, Type=notify): readiness and
 * status through sd_notify(3), and where the control socket goes.  Every
 * call is a no-op when the daemon was not started by systemd (no
 * NOTIFY_SOCKET), so the daemon runs the same by hand and in the tests.
 */
#ifndef HM_SERVICE_MANAGER_H
#define HM_SERVICE_MANAGER_H

#include <stddef.h>

#include "common/paths.h"

/* STATUS=<text>: the one line `systemctl status` shows. */
void hm_sm_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* READY=1 with a status line: the daemon serves (consensus and DNS). */
void hm_sm_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* STOPPING=1: the daemon is shutting down (detaching XDP, closing files). */
void hm_sm_stopping(void);

/*
 * Where the control socket goes: `explicit` (--control-socket) if given;
 * else $RUNTIME_DIRECTORY/control.sock when systemd made a runtime
 * directory (its first entry); else DATA_DIR/control.sock; else none ("").
 * Returns 0, or -1 (out empty) when the path does not fit a unix socket
 * address (107 bytes).
 */
int hm_control_socket_path(const char *explicit, const char *data_dir, char *out, size_t cap);

#endif /* HM_SERVICE_MANAGER_H */
