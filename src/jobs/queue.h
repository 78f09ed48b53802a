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
 * dead-letter state, kept for inspection and admin retry), cancelled. "delayed" is a waiting
 * job whose run_at has not come yet: stored as waiting, shown as delayed.
 *
 * Leases: a claimed job belongs to one worker (lease owner + a token new for every claim)
 * until lease_until, which the worker's heartbeat renews every lease/3. Every change a worker
 * makes to its job (progress, complete, fail) names the token, so a worker whose lease was
 * lost cannot touch the job any more. A lease that runs out (the worker process died) is
 * "stalled": the periodic recovery moves the job back to waiting without counting an attempt,
 * and fails it once it stalled more than max_stalled times (BullMQ's maxStalledCount).
 * A job never runs twice at once: it is claimable again only after its lease ran out or its
 * worker gave it back.
 *
 * Processors: the specification's queues (jobs_queue_defs) start without one; the module that
 * implements a queue registers its processor with jobs_set_processor() at start-up (zygo serve
 * and zygo worker do it before starting their runner). A queue with no processor is not run by
 * anyone in that process: its jobs wait (enqueue still works).
 *
 * Events: progress (0–100 + optional message), completed and failed are published to the
 * WebSocket room `tenant:<tenantId>:job:<jobId>` through the realtime bus
 * (services/realtime.h) as {"type":"job.progress"|"job.completed"|"job.failed", "jobId",
 * "queue", "progress"?, "message"?, "result"?, "error"?, "attempt"}. job.failed is published for
 * every failed run, with "willRetry" (true when it goes back to the queue after its backoff)
 * and "cancelled" (true when the job ended because it was cancelled). System jobs (no tenant)
 * publish nothing.
 *
 * Diagnostics: with ZYGO_TEST_QUEUES=1 in the environment, jobs_queue_defs() also holds the
 * queue "zygo-test" (a processor that sleeps, fails or reports progress as its data says; see
 * queues.c), so that tests can drive a real `zygo worker` process. Never set it in production.
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
    int attempts;                 /* default 3 */
    int64_t backoff_ms;           /* exponential: backoff_ms * 2^(attempt-1); default 5000 */
    bool backoff_jitter;          /* up to +50 % random, so retries of a burst spread out */
    int concurrency;              /* jobs of this queue at once per runner; default 1 */
    int limiter_max;              /* at most this many jobs started ... (0: no limiter) */
    int64_t limiter_window_ms;    /* ... per this window, across every process */
    int64_t keep_completed_age_s; /* removeOnComplete.age, default 86400 */
    int keep_completed_count;     /* removeOnComplete.count, default 1000 */
    int64_t keep_failed_age_s;    /* removeOnFail.age, default 604800 */
    int64_t timeout_ms;           /* per run; default 300000 */
    int max_stalled;              /* lease lost this many times: moved back to waiting; once
                                     more: failed. Default 1 (BullMQ), negative: 0 */
};
/* Zero fields take the defaults above; negative keep_* values mean "keep forever". */

/* The specification's queues: tenant-deletion, user-deletion, workflow-execution,
 * notifications, archive. */
const struct job_queue_def *jobs_queue_defs(size_t *n);
/* A queue by name: the table above, then the tables of runners started in this process
 * (tests run their own). NULL when unknown. */
const struct job_queue_def *jobs_queue_def(const char *name);
/* Registers the processor of one of the specification's queues. Call at start-up, before any
 * runner starts (not thread-safe against running runners). -1 for an unknown queue. */
int jobs_set_processor(const char *queue, job_process_fn fn);
/* The def with every zero field replaced by its default. */
void jobs_def_resolve(const struct job_queue_def *in, struct job_queue_def *out);

/* ---- enqueue (any process, any thread) --------------------------------------------------- */

struct job_opts {
    int attempts;       /* 0: the queue's default */
    int64_t delay_ms;   /* run no earlier than now + delay_ms */
    int priority;       /* 0: none; otherwise 1 is the highest (BullMQ), runs before 0 */
    const char *job_id; /* de-duplication: a job with this id already present is not added */
    int64_t timeout_ms; /* 0: the queue's default */
};

/*
 * Adds a job on c, inside c's transaction when one is open. data_json is a JSON object text
 * (NULL: {}). tenant_id NULL for system work. id_out receives the job's id. Returns 0 when
 * added, 1 when opts->job_id was already present (nothing added, id_out is that id), -1 on a
 * database error (db_errmsg(c)) or an unknown queue or invalid argument (logged).
 *
 * On PostgreSQL the row is subject to row-level security: a tenant job needs c scoped to that
 * tenant (or the bypass), a system job (tenant_id NULL) the bypass. opts->job_id: 1-128 of
 * [A-Za-z0-9_.:-], unique across queues and tenants — prefix it with what makes it unique
 * (e.g. "tenant-deletion:<tenantId>"). A job's id stays taken until retention removes it.
 * Jobs enqueued by a running transaction become visible to workers when it commits; workers
 * poll (poll_ms), and jobs_wake() after the commit saves that wait in this process.
 */
int jobs_enqueue(struct db_conn *c, const char *queue, const char *name, const char *tenant_id,
                 const char *data_json, const struct job_opts *opts, char id_out[JOB_ID_MAX]);

/*
 * Adds n jobs of one queue in one statement (BullMQ's addBulk), on c inside its transaction
 * when one is open: data_json[i] a JSON object text (data_json or an entry NULL: {}), the
 * same name, tenant and options for all, without de-duplication (opts->job_id must be NULL).
 * They are claimed in the order given. ids_out[i] receives each id. 0, or -1 (nothing added;
 * a database error on c, or an argument refused and logged).
 */
int jobs_enqueue_many(struct db_conn *c, const char *queue, const char *name, const char *tenant_id,
                      const char *const *data_json, size_t n, const struct job_opts *opts,
                      char (*ids_out)[JOB_ID_MAX]);

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
/* Wakes every runner of this process (call after committing an enqueue). */
void jobs_wake(void);

/* ---- inspection and admin (routes/jobs.c) ------------------------------------------------ */

/* The job as the API shows it ({id, queue, name, state, progress, attempts, ...}), or NULL.
 * tenant_id non-NULL: only a job of that tenant. */
json_t *jobs_get_json(struct db_conn *c, const char *id, const char *tenant_id);
/* Cancels a waiting, delayed or active job (an active one stops at its next
 * job_should_stop). 0, 1 when the job is in a state that cannot be cancelled, -2 when absent,
 * -1 on a database error. */
int jobs_cancel(struct db_conn *c, const char *id, const char *tenant_id);
/* Cancels every waiting, delayed or active job of a tenant but except_id (NULL: none), as
 * jobs_cancel does one (a tenant's deletion stops its work). The number of jobs, or -1. */
int jobs_cancel_tenant(struct db_conn *c, const char *tenant_id, const char *except_id);
/* Moves a failed or cancelled job back to waiting with a fresh set of attempts. Same
 * returns. */
int jobs_retry(struct db_conn *c, const char *id);
/* Every queue (the table's, then any other found in the database) with its job count per
 * state: [{"name", "counts": {"waiting", "delayed", "active", "completed", "failed",
 * "cancelled"}}]. NULL on a database error. Needs the bypass on PostgreSQL. */
json_t *jobs_queues_json(struct db_conn *c);
/* Jobs in a state (NULL: any), of a queue (NULL: any), most recently changed first; *total is
 * the count of all that match. NULL on a database error. */
json_t *jobs_list_json(struct db_conn *c, const char *state, const char *queue, long long limit,
                       long long offset, long long *total);
/* Milliseconds since the epoch (the real clock). */
int64_t jobs_now_ms(void);

/* ---- the store's primitives for the runner (runner.c, queues.c) ------------------------- */
#ifdef ZYGO_JOBS_INTERNAL

/* Makes jobs_queue_def() find a runner's own queues; unregistered when it stops. */
void jobs_queues_register(const struct job_queue_def *defs, size_t n);
void jobs_queues_unregister(const struct job_queue_def *defs);

/* A job's place in its queue's claim order. */
struct jobs_key {
    int64_t prio, run_at, seq;
};

/* A claimed job (strings malloc'd; jobs_rows_free). */
struct jobs_row {
    char *id, *name, *tenant_id, *data;
    int attempts_made, max_attempts;
    int64_t backoff_ms, timeout_ms;
    struct jobs_key key;
};
void jobs_rows_free(struct jobs_row *rows, int n);

/*
 * Inside a transaction on c: leases up to `want` runnable jobs of d's queue to owner with
 * token until now + lease_ms, highest priority first, respecting d's limiter across
 * processes. Returns how many (rows in *out, in claim order, NULL when none) or -1.
 * *limited_until is set (else 0) when the limiter allowed fewer than wanted: no claim of this
 * queue before then.
 *
 * after (NULL: none): only jobs at or after this key in claim order. On PostgreSQL the jobs a
 * claim took leave dead entries at the head of the claim index until VACUUM, which every later
 * claim would step over; a runner that keeps claiming passes the key of its last claimed job
 * to start past them, and claims without it at each poll so that nothing behind is left (a job
 * given back, a higher priority). SQLite removes index entries at once: ignored there.
 */
int jobs_claim(struct db_conn *c, const struct job_queue_def *d, const char *owner,
               const char *token, int64_t now, int64_t lease_ms, int want,
               const struct jobs_key *after, struct jobs_row **out, int64_t *limited_until);

/*
 * PostgreSQL only, one statement and no transaction of its own: completes the nends runs
 * (ids[i] under lease tokens[i], with the results of the JSON array results_json, null for
 * none), each only if its lease still holds (applied(id) is called for those), and claims up
 * to `want` jobs of d's queue (d NULL or want 0: none; d must have no limiter) as jobs_claim
 * does (after likewise). Returns how many were claimed, or -1.
 */
typedef void (*jobs_applied_fn)(void *arg, const char *id);
int jobs_complete_and_claim(struct db_conn *c, const char *const *ids, const char *const *tokens,
                            const char *results_json, size_t nends, const struct job_queue_def *d,
                            const char *owner, const char *token, int64_t now, int64_t lease_ms,
                            int want, const struct jobs_key *after, struct jobs_row **out,
                            jobs_applied_fn applied, void *arg);

/* Which of the queues have a runnable job now: has[i] for queues[i]. 0 or -1. */
int jobs_probe(struct db_conn *c, const char *const *queues, size_t n, int64_t now, bool *has);

enum jobs_outcome {
    JOBS_COMPLETE, /* completed with result_json */
    JOBS_RETRY,    /* failed run, back to waiting at run_at */
    JOBS_FAIL,     /* failed for good (dead letter) */
    JOBS_RELEASE,  /* never ran (or interrupted by shutdown): back to waiting, no attempt used */
};
/* Applies a run's end if the lease (id, token) still holds; a job whose cancel was requested
 * ends cancelled instead of going back to waiting. 1 applied (*state_out = the new state),
 * 0 the lease was lost (nothing changed), -1 database error. */
int jobs_finish(struct db_conn *c, const char *id, const char *token, enum jobs_outcome o,
                const char *result_json, const char *error, int64_t run_at, int64_t now,
                enum job_state *state_out);

/* Renews the leases (ids[i] under tokens[i]) until lease_until; fn is called for each job
 * still held. 0 or -1. */
typedef void (*jobs_lease_fn)(void *arg, const char *id, const char *token, bool cancel_requested);
int jobs_heartbeat(struct db_conn *c, const char *const *ids, const char *const *tokens, size_t n,
                   int64_t lease_until, jobs_lease_fn fn, void *arg);

/* Records progress under the lease. 1 (and *cancel_requested), 0 lease lost, -1 error. */
int jobs_set_progress(struct db_conn *c, const char *id, const char *token, int pct,
                      const char *message, int64_t now, bool *cancel_requested);

/* Active jobs of queue whose lease ran out before now: back to waiting, or failed once they
 * stalled more than max_stalled times, or cancelled when that was requested. fn is called
 * for each job that ended (failed or cancelled). Returns how many were recovered, or -1. */
typedef void (*jobs_ended_fn)(void *arg, const char *id, const char *tenant_id,
                              enum job_state state, int attempts_made, const char *error);
int jobs_recover_stalled(struct db_conn *c, const char *queue, int max_stalled, int64_t now,
                         jobs_ended_fn fn, void *arg);

/* The retention of d (resolved) applied at now: how many jobs were removed, or -1. */
int jobs_sweep(struct db_conn *c, const struct job_queue_def *d, int64_t now);

#endif /* ZYGO_JOBS_INTERNAL */

#endif
