/*
 * workflows.h — the workflows repository: all SQL on workflows, their versions, executions,
 * execution steps, the execution event log and the schedule's fired slots
 * (migrations 0006_workflows). Every query carries the tenant filter (and scopes the
 * connection with repo_tenant for row-level security) except the scheduler's and the public
 * trigger's look-ups, which run with the bypass and say so.
 *
 * JSON values returned are new references; strings in the structs are malloc'd and released by
 * the matching _free function.
 */
#ifndef ZYGO_REPO_WORKFLOWS_H
#define ZYGO_REPO_WORKFLOWS_H

#include <jansson.h>

#include "db/db.h"

struct buf;

/* ---- workflows ---------------------------------------------------------------------------- */

struct workflow_new {
    const char *id; /* UUIDv7 from the caller */
    const char *tenant_id;
    const char *name;
    const char *description; /* NULL: none */
    bool enabled;
    const char *steps_json;   /* the validated steps array */
    const char *trigger_json; /* the validated trigger object */
    const char *trigger_type; /* "manual", "schedule", "webhook" */
    int64_t next_fire_at;     /* ms, schedules only (else -1) */
    const char *webhook_token_hash; /* NULL: none */
    const char *signing_secret;     /* sealed */
    const char *created_by;
};

/* Inserts the workflow and its version 1; -1 with DB_ERR_UNIQUE when the name is taken. */
int workflows_create(struct db_conn *c, const struct workflow_new *w);

/* The API's Workflow object, or NULL (*failed says whether it was a database error). */
json_t *workflows_find(struct db_conn *c, const char *tenant_id, const char *id, bool *failed);

/* A page of the tenant's workflows (oldest first; optional case-insensitive name search) as a
 * JSON array, and the total. NULL on a database error. */
json_t *workflows_list(struct db_conn *c, const char *tenant_id, const char *search,
                       long long limit, long long offset, long long *total);

struct workflow_change {
    const char *name;        /* NULL: unchanged */
    const char *description; /* NULL: unchanged */
    bool clear_description;
    int enabled;              /* -1 unchanged, 0, 1 */
    const char *steps_json;   /* steps_json and trigger_json both set: a new version */
    const char *trigger_json;
    const char *trigger_type;
    int64_t next_fire_at; /* with a new version, or when enabled changes: -1 none */
    bool set_next_fire;
    const char *webhook_token_hash; /* NULL: unchanged */
    const char *updated_by;
    const char *now;
};

/* 1 updated, 0 no such live workflow, -1 error (DB_ERR_UNIQUE: name taken). */
int workflows_update(struct db_conn *c, const char *tenant_id, const char *id,
                     const struct workflow_change *ch);
/* Soft delete: 1, 0 no such live workflow, -1 error. */
int workflows_soft_delete(struct db_conn *c, const char *tenant_id, const char *id,
                          const char *now);
/* One version of a live workflow as {workflowId, version, steps, trigger, createdBy,
 * createdAt}, or NULL (*failed on a database error). */
json_t *workflows_version_find(struct db_conn *c, const char *tenant_id, const char *id,
                               long long version, bool *failed);

/* Replace the stored webhook token hash / sealed signing secret. 1, 0 absent, -1 error. */
int workflows_set_webhook_token(struct db_conn *c, const char *tenant_id, const char *id,
                                const char *hash, const char *now);
int workflows_set_signing_secret(struct db_conn *c, const char *tenant_id, const char *id,
                                 const char *sealed, const char *now);

/* What starting an execution needs about a live workflow. */
struct workflow_ref {
    char id[37];
    char tenant_id[37];
    int version;
    bool enabled;
    char trigger_type[16];
    char webhook_token_hash[65]; /* "" when none */
    char *steps_json;            /* the current version's steps */
};
void workflow_ref_free(struct workflow_ref *r);

/* The live workflow id of tenant_id; tenant_id NULL: of any tenant (the caller has the bypass
 * on: the public trigger, which learns the tenant here). 1 found, 0 none, -1 error. */
int workflows_load_ref(struct db_conn *c, const char *tenant_id, const char *id,
                       struct workflow_ref *out);

/* ---- executions --------------------------------------------------------------------------- */

struct execution_new {
    const char *id;
    const char *tenant_id;
    const char *workflow_id;
    int version;
    const char *trigger;         /* "manual", "schedule", "webhook" */
    const char *input_json;      /* NULL: none */
    const char *idempotency_key; /* NULL: none */
    const char *triggered_by;    /* user id or NULL */
    const char *steps_json;      /* the version's steps: one pending row each */
};

/* Inserts the execution (queued) and its step rows. Returns 1 inserted, 0 when an execution of
 * this workflow already holds the idempotency key (nothing inserted), -1 error. */
int workflows_exec_create(struct db_conn *c, const struct execution_new *e);
/* Records the execution's job id. */
int workflows_exec_set_job(struct db_conn *c, const char *tenant_id, const char *id,
                           const char *job_id);
/* The execution of workflow_id holding key: its id and input (malloc'd JSON text or NULL).
 * 1 found, 0 none, -1 error. */
int workflows_exec_by_key(struct db_conn *c, const char *tenant_id, const char *workflow_id,
                          const char *key, char id_out[37], char **input_json);

/* The API's Execution object: with its steps and the first `max_logs` events when full,
 * without them in lists. NULL when absent (*failed on a database error). */
json_t *workflows_exec_find(struct db_conn *c, const char *tenant_id, const char *id,
                            bool full, bool *failed);
/* A page of one workflow's executions, newest first, and the total. NULL on error. */
json_t *workflows_exec_list(struct db_conn *c, const char *tenant_id, const char *workflow_id,
                            long long limit, long long offset, long long *total);
/* The events with seq > after, oldest first, at most limit, as a JSON array; *last_seq is the
 * execution's latest seq (-1 when the execution is absent). NULL on error. */
json_t *workflows_exec_events(struct db_conn *c, const char *tenant_id, const char *id,
                              long long after, long long limit, long long *last_seq);
/* True when the execution exists in the tenant: the WebSocket hub's authorisation of the room
 * tenant:<tid>:execution:<id> (false on a database error too). */
bool workflows_execution_visible(struct db_conn *c, const char *tenant_id,
                                 const char *execution_id);

/* The execution's status and job id ("" when none). 1 found, 0 none, -1 error. */
int workflows_exec_status(struct db_conn *c, const char *tenant_id, const char *id,
                          char status[16], char job_id[130]);

/* ---- the event log ------------------------------------------------------------------------- */

/* One event of an execution: a status change of the execution or of a step, or a log line. */
struct workflow_event {
    const char *execution_id;
    const char *tenant_id;
    int64_t seq;          /* set by workflows_event_begin */
    const char *type;     /* "execution", "step", "log" */
    int step_index;       /* -1: none */
    const char *status;   /* execution/step events */
    const char *level;    /* log lines: "info", "warn", "error" */
    const char *message;  /* may be NULL */
    int attempt;          /* step events: the attempt (0: none) */
    char time[48];        /* ISO-8601 with ms, set by workflows_event_begin */
};

/*
 * Inside a transaction: takes the execution's next seq, provided its status is one of
 * `statuses` (a comma-free list such as "running" or "queued running": the guard that keeps a
 * cancelled execution from being written by a worker that has not noticed yet). 1 taken (ev->seq
 * and ev->time set), 0 the execution is not in such a status, -1 error.
 */
int workflows_event_begin(struct db_conn *c, struct workflow_event *ev, const char *statuses);
/* Inserts ev (after workflows_event_begin, same transaction). 0 or -1. */
int workflows_event_insert(struct db_conn *c, const struct workflow_event *ev);
/* The event as the API and the real-time bus show it. */
json_t *workflows_event_json(const struct workflow_event *ev);

/* ---- what the step engine writes (under workflows_event_begin's guard) --------------------- */

int workflows_exec_mark(struct db_conn *c, const char *id, const char *status,
                        const char *output_json, const char *error, const char *now);
/* Step idx: status "running" (attempts + 1, started_at), "succeeded" / "failed" (output, error,
 * finished_at), "cancelled". */
int workflows_step_mark(struct db_conn *c, const char *execution_id, int idx, const char *status,
                        const char *output_json, const char *error, const char *now);
/* Every step still pending or running becomes cancelled. */
int workflows_steps_cancel(struct db_conn *c, const char *execution_id, const char *now);
/* Failed steps go back to pending with their attempts reset (an admin retry of the job). */
int workflows_steps_reset_failed(struct db_conn *c, const char *execution_id);

/* What the engine knows about an execution it runs. */
struct workflow_run_state {
    char workflow_id[37];
    char status[16];
    int version;
    char *input_json;     /* NULL: none */
    char *steps_json;     /* the version's steps */
    char *signing_secret; /* sealed, NULL when none */
    int nsteps;
    struct workflow_step_state {
        char status[16];
        int attempts;
        char *output_json; /* NULL: none */
    } *steps;
};
/* 1 loaded, 0 no such execution in the tenant, -1 error. */
int workflows_run_load(struct db_conn *c, const char *tenant_id, const char *id,
                       struct workflow_run_state *st);
void workflows_run_state_free(struct workflow_run_state *st);

/* ---- schedules --------------------------------------------------------------------------- */

struct workflow_due {
    char id[37];
    char tenant_id[37];
    int64_t next_fire_at;
    char *trigger_json;
};
/* Up to max schedule workflows due at now_ms (bypass; any tenant). Returns how many, -1. */
int workflows_due(struct db_conn *c, int64_t now_ms, struct workflow_due *out, int max);
void workflows_due_free(struct workflow_due *d, int n);
/* Claims the slot: 1 this caller won it, 0 someone else did, -1 error. */
int workflows_slot_claim(struct db_conn *c, const char *workflow_id, const char *tenant_id,
                         int64_t slot_ms, const char *execution_id);
/* Moves the schedule on, provided it still expects `expected` (another process may have). */
int workflows_set_next_fire(struct db_conn *c, const char *workflow_id, int64_t expected,
                            int64_t next);
/* Deletes fired slots older than before_ms (bypass). */
int workflows_slots_prune(struct db_conn *c, int64_t before_ms);
/* Deletes up to `limit` ended executions (succeeded, failed, cancelled) that finished before
 * before_iso, oldest first, with their steps and logs; every tenant's with the bypass. The
 * number deleted, or -1. */
int workflows_executions_prune(struct db_conn *c, const char *before_iso, int limit);

/* Executions still queued or running whose job has ended without finishing them (failed,
 * cancelled or removed): up to max ids, tenants and the job's error (bypass). */
struct workflow_orphan {
    char id[37];
    char tenant_id[37];
    char job_state[16];
    char *error;
};
int workflows_orphans(struct db_conn *c, struct workflow_orphan *out, int max);
void workflows_orphans_free(struct workflow_orphan *o, int n);

#endif
