// SPDX-License-Identifier: MIT
/* One process per client identity: the lock and last-timestamp file (see
 * identity.h). */
#include "client/identity.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"

/* The locks this process holds, one per state file. */
struct hm_identity_held {
	struct hm_identity_held *next;
	int fd;
	unsigned refs;
	uint64_t last_ts;
	char path[HM_PATH_MAX + 64];
};

static struct hm_identity_held *held_list;

/* dir exists (created 0700 if not) and we can write in it. */
static bool usable_dir(const char *dir)
{
	if (mkdir(dir, 0700) < 0 && errno != EEXIST)
		return false;
	return access(dir, W_OK | X_OK) == 0;
}

static int pick_dir(const struct hm_config *cfg, char *out, size_t len)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");

	if (cfg->runtime_dir[0]) {
		snprintf(out, len, "%s", cfg->runtime_dir);
		return usable_dir(out) ? 0 : -1; /* configured: no silent fallback */
	}
	if (xdg && xdg[0] == '/') {
		snprintf(out, len, "%s/hypermesh", xdg);
		if (usable_dir(out))
			return 0;
	}
	snprintf(out, len, "/run/hypermesh");
	if (usable_dir(out))
		return 0;
	snprintf(out, len, "/tmp/hypermesh-%u", (unsigned)getuid());
	return usable_dir(out) ? 0 : -1;
}

/* "pid P ts T" (either may be missing in a file being written). */
static void read_state(int fd, long *pid, uint64_t *ts)
{
	char buf[128];
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);
	const char *p;

	*pid = 0;
	*ts = 0;
	if (n <= 0)
		return;
	buf[n] = '\0';
	if ((p = strstr(buf, "pid ")))
		*pid = strtol(p + 4, NULL, 10);
	if ((p = strstr(buf, "ts ")))
		*ts = strtoull(p + 3, NULL, 10);
}

static int write_state(int fd, uint64_t ts)
{
	char buf[128];
	int n = snprintf(buf, sizeof(buf), "pid %ld ts %" PRIu64 "\n", (long)getpid(), ts);

	/* Fixed-size records would not shrink; a longer old line is cut. */
	if (pwrite(fd, buf, (size_t)n, 0) != n || ftruncate(fd, n) < 0)
		return -1;
	return 0;
}

int hm_identity_lock(struct hm_identity_lock *l, const struct hm_config *cfg, uint32_t id,
		     const uint8_t *pk, uint64_t *last_ts, char *err, size_t errlen)
{
	struct hm_identity_held *h;
	char dir[HM_PATH_MAX], path[HM_PATH_MAX + 64];
	long pid;
	int fd;

	l->held = NULL;
	*last_ts = 0;
	if (pick_dir(cfg, dir, sizeof(dir)) < 0)
		return hm_set_err(err, errlen, "client identity %u: no directory for its lock "
				  "(%s: %s; set node.runtime_dir)", id, dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/client-%u-%02x%02x%02x%02x%02x%02x%02x%02x.state", dir,
		 id, pk[0], pk[1], pk[2], pk[3], pk[4], pk[5], pk[6], pk[7]);
	for (h = held_list; h; h = h->next) {
		if (strcmp(h->path, path) == 0) {
			h->refs++;
			l->held = h;
			*last_ts = h->last_ts;
			return 0;
		}
	}
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return hm_set_err(err, errlen, "client identity %u: %s: %s", id, path,
				  strerror(errno));
	if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		int e = errno;

		read_state(fd, &pid, last_ts);
		close(fd);
		if (e == EWOULDBLOCK)
			return hm_set_err(err, errlen, "client identity %u is in use by pid %ld (lock "
					  "%s): one process per identity; give this one another "
					  "identity (node.id)", id, pid, path);
		return hm_set_err(err, errlen, "client identity %u: flock %s: %s", id, path,
				  strerror(e));
	}
	read_state(fd, &pid, last_ts);
	if (write_state(fd, *last_ts) < 0 || !(h = calloc(1, sizeof(*h)))) {
		hm_set_err(err, errlen, "client identity %u: write %s: %s", id, path,
			   strerror(errno));
		close(fd);
		return -1;
	}
	h->fd = fd;
	h->refs = 1;
	h->last_ts = *last_ts;
	snprintf(h->path, sizeof(h->path), "%s", path);
	h->next = held_list;
	held_list = h;
	l->held = h;
	return 0;
}

uint64_t hm_identity_last(const struct hm_identity_lock *l)
{
	return l->held ? l->held->last_ts : 0;
}

const char *hm_identity_path(const struct hm_identity_lock *l)
{
	return l->held ? l->held->path : "";
}

int hm_identity_store(struct hm_identity_lock *l, uint64_t ts)
{
	if (!l->held || ts <= l->held->last_ts)
		return 0;
	l->held->last_ts = ts;
	return write_state(l->held->fd, ts);
}

void hm_identity_unlock(struct hm_identity_lock *l)
{
	struct hm_identity_held **p, *h = l->held;

	l->held = NULL;
	if (!h || --h->refs)
		return;
	for (p = &held_list; *p; p = &(*p)->next) {
		if (*p == h) {
			*p = h->next;
			break;
		}
	}
	close(h->fd); /* releases the flock */
	free(h);
}
