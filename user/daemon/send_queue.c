// SPDX-License-Identifier: MIT
/* Outgoing datagrams sent together with sendmmsg(2) (see send_queue.h). */
#include "daemon/send_queue.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>


/* Up to this many datagrams, in an arena of this many bytes: a full batch's
 * replies and votes fit; a larger burst goes out in several calls. */
#define SQ_MAX 128
#define SQ_ARENA (1u << 20)

struct hm_send_queue {
	int fd;
	unsigned n;
	size_t used;
	uint64_t errors;
	int last_errno;
	struct mmsghdr msgs[SQ_MAX];
	struct iovec iov[SQ_MAX];
	struct sockaddr_storage to[SQ_MAX];
	uint8_t arena[SQ_ARENA];
};

struct hm_send_queue *hm_send_queue_new(int fd)
{
	struct hm_send_queue *q = calloc(1, sizeof(*q));

	if (q)
		q->fd = fd;
	return q;
}

void hm_send_queue_free(struct hm_send_queue *q)
{
	free(q);
}

void hm_send_queue_flush(struct hm_send_queue *q)
{
	unsigned done = 0;

	while (done < q->n) {
		int r = sendmmsg(q->fd, q->msgs + done, q->n - done, 0);

		if (r > 0) {
			done += (unsigned)r;
			continue;
		}
		if (r < 0 && errno == EINTR)
			continue;
		/* The first remaining datagram was refused: skip it. */
		q->errors++;
		q->last_errno = r < 0 ? errno : EIO;
		done++;
	}
	q->n = 0;
	q->used = 0;
}

void hm_send_queue_add(struct hm_send_queue *q, const void *buf, size_t len,
		       const struct sockaddr *to, socklen_t tolen)
{
	unsigned i;

	if (len > SQ_ARENA || tolen > sizeof(q->to[0]))
		return; /* cannot happen: datagrams and addresses are bounded */
	if (q->n == SQ_MAX || q->used + len > SQ_ARENA)
		hm_send_queue_flush(q);
	i = q->n++;
	memcpy(q->arena + q->used, buf, len);
	memcpy(&q->to[i], to, tolen);
	q->iov[i] = (struct iovec){ .iov_base = q->arena + q->used, .iov_len = len };
	q->msgs[i] = (struct mmsghdr){ .msg_hdr = { .msg_name = &q->to[i], .msg_namelen = tolen,
						     .msg_iov = &q->iov[i], .msg_iovlen = 1 } };
	q->used += len;
}

uint64_t hm_send_queue_errors(const struct hm_send_queue *q, int *last_errno)
{
	if (last_errno)
		*last_errno = q->last_errno;
	return q->errors;
}
