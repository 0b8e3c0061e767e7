// SPDX-License-Identifier: MIT
/* hypermeshd and systemd (see service_manager.h). */
#include "daemon/service_manager.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>

#include <systemd/sd-daemon.h>

#include "common/log.h"

/* sd_notify with "PREFIX" then "STATUS=<fmt...>"; failures are logged
 * once at debug level: a missing manager is the normal case by hand. */
static void notify_status(const char *prefix, const char *fmt, va_list ap)
{
	char status[512];

	vsnprintf(status, sizeof(status), fmt, ap);
	if (sd_notifyf(0, "%sSTATUS=%s", prefix, status) < 0)
		hm_debug("sd_notify: cannot reach the service manager");
}

void hm_sm_status(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_status("", fmt, ap);
	va_end(ap);
}

void hm_sm_ready(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	notify_status("READY=1\n", fmt, ap);
	va_end(ap);
}

void hm_sm_stopping(void)
{
	if (sd_notify(0, "STOPPING=1\nSTATUS=stopping: detaching and closing") < 0)
		hm_debug("sd_notify: cannot reach the service manager");
}

int hm_control_socket_path(const char *explicit, const char *data_dir, char *out, size_t cap)
{
	const char *runtime = getenv("RUNTIME_DIRECTORY");
	size_t max = sizeof(((struct sockaddr_un *)0)->sun_path);
	int n;

	if (explicit && explicit[0])
		n = snprintf(out, cap, "%s", explicit);
	else if (runtime && runtime[0])
		/* RuntimeDirectory= may list several, separated by ':' */
		n = snprintf(out, cap, "%.*s/%s", (int)strcspn(runtime, ":"), runtime,
			     HM_CONTROL_SOCKET_NAME);
	else if (data_dir && data_dir[0])
		n = snprintf(out, cap, "%s/%s", data_dir, HM_CONTROL_SOCKET_NAME);
	else
		n = snprintf(out, cap, "%s", "");
	if (n < 0 || (size_t)n >= cap || (size_t)n >= max) {
		out[0] = 0;
		return -1;
	}
	return 0;
}
