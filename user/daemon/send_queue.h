/* SPDX-License-Identifier: MIT */
/*
 * Outgoing datagrams of one event, sent together with sendmmsg(2).
 *
 * A Ready sends a message to every peer and a reply to every client of
 * the batch: tens of datagrams, one sendto(2) each, and on this project's
 * (virtualised) machines each system call costs more than the datagram
 * (README, Benchmarks: the kernel's share of a replica's CPU).  The daemon
 * queues what the node sends while it handles one event and sends the lot
 * in one call at the end of it (hm_send_queue_flush()), or earlier when
 * the queue is full.  Nothing is reordered, and nothing leaves earlier than
 * it would have: the node only sends after its Ready is durable.
 */
#ifndef HM_SEND_QUEUE_H
#define HM_SEND_QUEUE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

struct hm_send_queue;

/* A queue for socket fd; NULL when out of memory. */
struct hm_send_queue *hm_send_queue_new(int fd);
void hm_send_queue_free(struct hm_send_queue *q);

/* Queue one datagram (copied); sends the queue first when it is full. */
void hm_send_queue_add(struct hm_send_queue *q, const void *buf, size_t len,
		       const struct sockaddr *to, socklen_t tolen);

/* Send everything queued.  A datagram the kernel refuses (ENOBUFS, EAGAIN
 * under a flood, or an unreachable peer) is counted and skipped, as a
 * failed sendto(2) would be. */
void hm_send_queue_flush(struct hm_send_queue *q);

/* Datagrams the kernel refused so far, and the last errno. */
uint64_t hm_send_queue_errors(const struct hm_send_queue *q, int *last_errno);

#endif
