/*
 * jobtest.h — running the real job queue inside API tests: requests enqueue jobs (emails,
 * deletions) on the request's transaction; a test that checks their effect (the outbox, purged
 * rows) first runs what is queued with the real processors and the real runner.
 */
#ifndef ZYGO_TEST_JOBTEST_H
#define ZYGO_TEST_JOBTEST_H

#include "jobs/queue.h"
#include "support.h"

/* The env a runner in test t works with (config, database, mailer, keyring; realtime may be
 * NULL). */
struct job_env jobtest_env(struct tenv *t, struct realtime *rt);

/*
 * Attaches the processors (jobs_processors_register), runs every due job of the
 * specification's queues that have one until none is waiting or running, and stops the runner.
 * Jobs waiting for a later time (a retry's backoff) are left. env NULL: jobtest_env(t, NULL).
 * Fails the test after timeout_ms.
 */
void jobtest_drain(struct tenv *t, const struct job_env *env, int timeout_ms);

/* A runner of this process (the real processors) on the named queues of the specification's
 * table, polling every poll_ms, with jobtest_env(t, NULL); stop it with job_runner_stop. Fails
 * the test when it cannot start. */
struct job_runner *jobtest_runner(struct tenv *t, const char *const *queues, size_t n,
                                  int64_t poll_ms);

/* How many jobs of queue (NULL: any) are in state ("waiting", "active", "completed", …). */
long long jobtest_count(struct tenv *t, const char *queue, const char *state);

#endif
