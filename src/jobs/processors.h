/*
 * processors.h — the processors of the specification's queues, attached at start-up, and what
 * they share.
 *
 * jobs_processors_register() attaches tenant-deletion, user-deletion, notifications, archive
 * and workflow-execution (jobs_set_processor) — call it once before starting a runner (zygo
 * serve, zygo worker, tests). workflow-execution's processor belongs to the workflows module
 * (jobs/workflow_execution.c).
 *
 * The helpers keep the processors' database handling alike: a connection for system work, a
 * failed step rolled back and retried with the database's reason, and the test-only failure
 * points that let tests stop a job half-way to prove that a re-run finishes it.
 */
#ifndef ZYGO_JOBS_PROCESSORS_H
#define ZYGO_JOBS_PROCESSORS_H

#include "jobs/queue.h"

void jobs_processors_register(void);

/* A connection from the job's database, with the row-level-security bypass on when bypass is
 * true; NULL (error set on the job) when none can be had. Release with db_release. */
struct db_conn *proc_acquire(struct job *j, bool bypass);

/* Rolls back what the failed step did and records "<step>: <database error>"; returns
 * JOB_RETRY. */
enum job_result proc_db_error(struct job *j, struct db_conn *c, const char *step);

/*
 * True when the job should fail at this point, for tests of re-runs: only with NODE_ENV=test,
 * only on the job's first attempt, and only when its data names the point in "testFailAt".
 * Requests never put that field in a job's data; a test adds it to the stored job.
 */
bool proc_fail_point(struct job *j, const char *point);

#endif
