/*
 * queue.h — the durable job queue (the specification's BullMQ queues, kept in the database).
 *
 * Owns the `jobs` table and everything that changes a job's state: enqueue (on the caller's
 * connection, so inside the caller's transaction: a job exists if and only if the change that
 * caused it committed), claim with a lease (PostgreSQL: FOR UPDATE SKIP LOCKED, so any number of
 * worker processes share one queue; SQLite: one short write transaction), heartbeat, complete,
 * fail with exponential backoff, unrecoverable failure, cancel, stalled-lease recovery, the
 * retention sweep, and the per-queue rate limiter.
 *
 * Queues are data: one struct job_queue_def per queue gives its defaults (attempts, backoff,
 * concurrency, limiter, retention, timeout) and its processor. jobs_queue_defs() is the table
 * of the specification's queues; a runner (job_runner_start) works any table, so tests run
 * their own processors through the same code.
 *
 * States: waiting (runnable now), delayed (run_at in the future: a retry backoff or a delay),
 * active (leased by a worker), completed, failed (attempts exhausted or unrecoverable: the
 * dead-letter state, kept for inspection and admin retry), cancelled.
 *
 * Events: progress (0–100 + optional message), completed and failed are published to the
 * WebSocket room `tenant:<tenantId>:job:<jobId>` through the realtime bus
 * (services/realtime.h) as {"type":"job.progress"|"job.completed"|"job.failed", "jobId",
 * "queue", "progress"?, "message"?, "result"?, "error"?, "attempt"}.
 */
#ifndef ZYGO_JOBS_QUEUE_H
#define ZYGO_JOBS_QUEUE_H

#include <jansson.h>

#include "lib/common.h"

struct arena;
struct config;
struct db;
struct db_conn;
struct mailer;
struct realtime;
struct secretbox_keyring;

/* A job id: a UUID, or the caller's de-duplication id (at most 128 bytes). */
#define JOB_ID_MAX 129

enum job_state {
    JOB_WAITING,
    JOB_DELAYED,
    JOB_ACTIVE,
    JOB_COMPLETED,
    JOB_FAILED,
    JOB_CANCELLED,
    JOB_STATE_COUNT
};
/* "waiting", "delayed", "active", "completed", "failed", "cancelled". */
const char *job_state_name(enum job_state s);

/* What a processor returns. */
enum job_result {
    JOB_DONE = 0,           /* success: completed, result kept */
    JOB_RETRY = -1,         /* failure: retried with backoff while attempts are left */
    JOB_UNRECOVERABLE = -2, /* failure that retrying cannot fix: failed now, no retry */
};

/* Services a processor may use; borrowed from whoever started the runner. */
struct job_env {
    const struct config *cfg;
    struct db *db;
    struct mailer *mailer;
    const struct secretbox_keyring *keyring;
    struct realtime *realtime; /* NULL: events are not published */
};

/* The job a processor is running. Everything hangs off `arena`, freed after the job. */
struct job {
    const char *id;
    const char *queue;
    const char *name;
    const char *tenant_id; /* NULL for system jobs */
    json_t *data;          /* the payload (borrowed; an object) */
    int attempt;           /* 1 on the first run */
    int max_attempts;
    struct arena *arena;
    const struct job_env *env;
    struct job_run *run; /* the runner's private state */
};

typedef enum job_result (*job_process_fn)(struct job *j);

struct job_queue_def {
    const char *name;
    job_process_fn process;
    int attempts;              /* default 3 */
    int64_t backoff_ms;        /* exponential: backoff_ms * 2^(attempt-1); default 5000 */
    bool backoff_jitter;       /* up to +50 % random, so retries of a burst spread out */
    int concurrency;           /* jobs of this queue at once per runner; default 1 */
    int limiter_max;           /* at most this many jobs started ... (0: no limiter) */
    int64_t limiter_window_ms; /* ... per this window, across every process */
    int64_t keep_completed_age_s;  /* removeOnComplete.age, default 86400 */
    int keep_completed_count;      /* removeOnComplete.count, default 1000 */
    int64_t keep_failed_age_s;     /* removeOnFail.age, default 604800 */
    int64_t timeout_ms;            /* per run; default 300000 */
};

/* The specification's queues: tenant-deletion, user-deletion, workflow-execution,
 * notifications, archive. */
const struct job_queue_def *jobs_queue_defs(size_t *n);
const struct job_queue_def *jobs_queue_def(const char *name);

/* ---- enqueue (any process, any thread) --------------------------------------------------- */

struct job_opts {
    int attempts;        /* 0: the queue's default */
    int64_t delay_ms;    /* run no earlier than now + delay_ms */
    int priority;        /* 0: none; otherwise 1 is the highest (BullMQ), runs before 0 */
    const char *job_id;  /* de-duplication: a job with this id already present is not added */
    int64_t timeout_ms;  /* 0: the queue's default */
};

/*
 * Adds a job on c, inside c's transaction when one is open. data_json is a JSON object text
 * (NULL: {}). tenant_id NULL for system work. id_out receives the job's id. Returns 0 when
 * added, 1 when opts->job_id was already present (nothing added, id_out is that id), -1 on a
 * database error (db_errmsg(c)) or an unknown queue.
 */
int jobs_enqueue(struct db_conn *c, const char *queue, const char *name, const char *tenant_id,
                 const char *data_json, const struct job_opts *opts, char id_out[JOB_ID_MAX]);

/* ---- inside a processor ----------------------------------------------------------------- */

/* Records progress (clamped to 0..100) and publishes job.progress. message may be NULL. */
void job_progress(struct job *j, int pct, const char *message);
/* True once the job was cancelled (from any process) or the runner is stopping past its
 * grace period, or the job's timeout passed: the processor should stop and return JOB_RETRY. */
bool job_should_stop(struct job *j);
/* The error message kept on a failed run (printf-style); the last call wins. */
void job_set_error(struct job *j, const char *fmt, ...) ZY_PRINTF(2, 3);
/* The result kept on completion (reference stolen). */
void job_set_result(struct job *j, json_t *result);

/* ---- workers ---------------------------------------------------------------------------- */

struct job_runner_options {
    const char *const *queues; /* run only these (NULL: every queue of the table) */
    size_t nqueues;
    int concurrency;           /* > 0: overrides every queue's own */
    int64_t lease_ms;          /* a claimed job belongs to its worker this long, renewed by a
                                  heartbeat every lease/3; default 30000 */
    int64_t poll_ms;           /* idle wait between claims; default 200 */
    int64_t sweep_interval_ms; /* retention sweep and stalled-lease recovery; default 60000 */
    /* A clock for tests (ms since the epoch); NULL: the real one. */
    int64_t (*now_ms)(void *arg);
    void *clock_arg;
};

struct job_runner;

/* Starts worker threads for defs (the table is borrowed and must outlive the runner). */
struct job_runner *job_runner_start(const struct job_env *env, const struct job_queue_def *defs,
                                    size_t ndefs, const struct job_runner_options *o, char *err,
                                    size_t errlen);
/* Stops claiming, lets running jobs finish for up to grace_s, then asks them to stop and
 * waits; returns how many jobs were still running at the deadline (they are retried later
 * by lease expiry). NULL is a no-op. */
unsigned job_runner_stop(struct job_runner *r, unsigned grace_s);
/* Wakes idle workers now (after an enqueue in this process). */
void job_runner_wake(struct job_runner *r);

/* ---- inspection and admin (routes/jobs.c) ------------------------------------------------ */

/* The job as the API shows it ({id, queue, name, state, progress, attempts, ...}), or NULL.
 * tenant_id non-NULL: only a job of that tenant. */
json_t *jobs_get_json(struct db_conn *c, const char *id, const char *tenant_id);
/* Cancels a waiting, delayed or active job (an active one stops at its next
 * job_should_stop). 0, 1 when the job is in a state that cannot be cancelled, -2 when absent,
 * -1 on a database error. */
int jobs_cancel(struct db_conn *c, const char *id, const char *tenant_id);
/* Moves a failed or cancelled job back to waiting with a fresh set of attempts. Same
 * returns. */
int jobs_retry(struct db_conn *c, const char *id);

#endif
