/*
 * workflow.h — workflows: what a definition may say, starting executions, the step engine that
 * runs them, their live events, and the scheduler.
 *
 * Definitions. A workflow is a list of steps, each {name, type, config, retry, timeoutMs}, and
 * a trigger {type: manual | schedule (cron, timezone) | webhook}. Step types: http_request
 * (method, url, headers, body — outbound through services/http_fetch, SSRF-safe), delay (ms),
 * notify (email through the notifications queue and/or in-app through the real-time room
 * tenant:<tid>:user:<uid>), webhook_event (a JSON event POSTed to a URL with an HMAC-SHA256
 * signature header). server_action is refused until the infrastructure module exists. String
 * values of a step's config may use {{input.a.b}}, {{steps.<name>.output.a}},
 * {{execution.id}} and {{workflow.id}}.
 *
 * Executions. workflow_start() creates the execution row (queued, one pending row per step) and
 * enqueues its `workflow-execution` job in the caller's transaction, honouring an idempotency
 * key. The engine (workflow_run, called by jobs/workflow_execution.c) resumes from the first step
 * not yet succeeded — step status is persisted per step, and a succeeded step never runs again
 * — so a re-run job (retry, stalled worker, admin retry) finishes the execution. Each step has
 * its own attempts with fixed or exponential backoff, and a timeout per attempt.
 *
 * Live events. Every execution and step status change and every log line is one row of the
 * execution's event log with the next per-execution seq, written in the transaction that makes
 * the change, then (after the commit) published to tenant:<tid>:execution:<id>. Writes by the
 * engine are guarded by the execution's status, so after a cancel nothing more is written.
 *
 * Scheduling. workflow_schedule_tick() fires due schedule slots: a slot is fired by whichever
 * process inserts (workflow, slot time) first, in the transaction that creates its execution
 * and job, so each slot fires at most once however many processes tick. It also closes
 * executions whose job ended without finishing them (a job that failed for good while its worker
 * was gone).
 */
#ifndef ZYGO_SERVICES_WORKFLOW_H
#define ZYGO_SERVICES_WORKFLOW_H

#include <jansson.h>

#include "lib/common.h"
#include "lib/schema.h"

struct config;
struct db;
struct db_conn;
struct realtime;
struct secretbox_keyring;

/* Request schemas of a definition's parts (also the OpenAPI components). */
extern const struct schema workflow_steps_schema;
extern const struct schema workflow_trigger_schema;

#define WORKFLOW_MAX_STEPS 50
#define WORKFLOW_MAX_DELAY_MS 3600000

/*
 * Checks what the schemas cannot: each step's config against its type, unique step names,
 * timeouts against delays, the trigger's cron expression and time zone. Issues are appended
 * with their paths ("steps.2.config.url", "trigger.cron"). On success returns 0 with
 * *steps_out the normalised steps (defaults filled in; new reference) and *next_fire_ms the
 * schedule's first slot after now_ms (-1 when not a schedule); -1 otherwise.
 */
int workflow_validate(json_t *steps, json_t *trigger, int64_t now_ms, struct schema_issues *is,
                      json_t **steps_out, int64_t *next_fire_ms);
/* The next slot of a schedule trigger object strictly after after_ms, or -1. */
int64_t workflow_next_fire(json_t *trigger, int64_t after_ms);

/* Secrets: a fresh webhook trigger token (shown once; only its hash is stored), and a fresh
 * signing secret for webhook_event steps sealed for the workflow. */
void workflow_new_token(char token[64], char hash[65]);
int workflow_new_signing_secret(const struct secretbox_keyring *kr, const char *workflow_id,
                                char secret[64], char **sealed);

/* ---- starting executions ----------------------------------------------------------------- */

struct workflow_start {
    const char *tenant_id;
    const char *workflow_id;
    const char *trigger;         /* "manual", "schedule", "webhook" */
    json_t *input;               /* borrowed; NULL: none */
    const char *idempotency_key; /* NULL: none */
    const char *triggered_by;    /* user id or NULL */
    const char *execution_id;    /* a preset id (the scheduler's), or NULL for a new one */
};

enum workflow_start_result {
    WORKFLOW_STARTED = 0,       /* a new execution (and its job) */
    WORKFLOW_START_EXISTING,    /* the idempotency key's execution, with the same input */
    WORKFLOW_START_NOT_FOUND,   /* no live workflow of that id in the tenant */
    WORKFLOW_START_DISABLED,    /* the workflow is disabled */
    WORKFLOW_START_KEY_REUSED,  /* the idempotency key's execution had another input */
    WORKFLOW_START_DB_ERROR,    /* see db_errmsg(c) */
};

/* In the caller's transaction. exec_id receives the execution's id (new or existing). Call
 * jobs_wake() after the commit. */
enum workflow_start_result workflow_start(struct db_conn *c, const struct workflow_start *s,
                                          char exec_id[37]);

/* ---- the engine ---------------------------------------------------------------------------- */

struct workflow_env {
    const struct config *cfg;
    struct db *db;
    const struct secretbox_keyring *keyring;
    struct realtime *realtime; /* NULL: events are stored, not published */
};

struct workflow_run_opts {
    const char *tenant_id;
    const char *execution_id;
    bool (*should_stop)(void *arg); /* polled between and inside steps */
    void *stop_arg;
};

enum workflow_run_result {
    WORKFLOW_RUN_FINISHED, /* the execution is succeeded, failed or cancelled (*final) */
    WORKFLOW_RUN_STOPPED,  /* should_stop: left running, to be resumed by a later run */
    WORKFLOW_RUN_ERROR,    /* a database error: retry later (error says which) */
    WORKFLOW_RUN_GONE,     /* no such execution */
};

enum workflow_run_result workflow_run(const struct workflow_env *env,
                                      const struct workflow_run_opts *o, char final[16],
                                      char *error, size_t errlen);

/* Marks a queued or running execution failed (the job that ran it gave up). 1, 0 when it was
 * no longer queued or running, -1. Publishes the event when rt is given. */
int workflow_fail_execution(struct db *db, struct realtime *rt, const char *tenant_id,
                            const char *execution_id, const char *error);

/*
 * Cancels a queued or running execution: its job is cancelled (jobs_cancel; a running step
 * stops at its next job_should_stop), and the execution and its unfinished steps are marked
 * cancelled with their events, in one transaction on c (not one already open), then published.
 * 1 cancelled, 0 not found, 2 already finished (status in `status`), -1 database error.
 */
int workflow_cancel(struct db_conn *c, struct realtime *rt, const char *tenant_id,
                    const char *execution_id, char status[16]);

/* ---- the WebSocket room of an execution --------------------------------------------------- */

/*
 * Registers the check of rooms tenant:<tid>:execution:<id> with the WebSocket hub
 * (ws_rooms_register): the user must hold canViewWorkflows or canManageWorkflows, and the
 * execution must exist in the user's tenant (workflows_execution_visible). Call once at
 * start-up, before serving. 0, or -1 when the hub refused it.
 */
int workflow_rooms_register(void);

/* ---- scheduling ---------------------------------------------------------------------------- */

/* Fires every due schedule slot at now_ms (see above); returns how many fired, or -1. */
int workflow_schedule_tick(struct db *db, int64_t now_ms);

/*
 * Retention: deletes the executions of every tenant that ended (succeeded, failed, cancelled)
 * more than retention_days before now_ms, with their steps and logs (0: keep them all), and
 * the fired-slot records older than a week. In batches, and at most 100,000 executions a call.
 * Their idempotency keys go with them: a key replayed after that starts a new execution. The
 * scheduler thread calls it hourly. Returns the executions deleted, or -1.
 */
int workflow_prune(struct db *db, int64_t now_ms, int retention_days);

/* A thread of this process ticking every interval_ms (config WORKFLOW_SCHEDULE_INTERVAL_MS),
 * and pruning hourly with retention_days (WORKFLOW_RETENTION_DAYS), first right at the start.
 * Stop before closing the database. NULL with err when it cannot start; stop(NULL) is a no-op. */
struct workflow_scheduler;
struct workflow_scheduler *workflow_scheduler_start(struct db *db, int interval_ms,
                                                    int retention_days, char *err, size_t errlen);
void workflow_scheduler_stop(struct workflow_scheduler *s);

#endif
