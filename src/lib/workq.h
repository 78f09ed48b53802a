/*
 * workq.h — a fixed pool of worker threads fed by a bounded FIFO (libuv's uv_queue_work,
 * Redis' bio). Blocking work — SQLite, password hashing, outbound HTTP — runs here so the
 * I/O thread never stalls.
 *
 * Owns its threads and queued task records. workq_free() lets queued tasks finish, then joins.
 */
#ifndef ZYGO_WORKQ_H
#define ZYGO_WORKQ_H

#include "lib/common.h"

struct workq;

struct workq *workq_new(unsigned nthreads, size_t max_queued);
/* Queues fn(arg). Returns -1 when the queue is full or shutting down (fn is not called). */
int workq_submit(struct workq *q, void (*fn)(void *), void *arg);
/* Tasks queued or running right now. */
size_t workq_pending(struct workq *q);
void workq_free(struct workq *q);

#endif
