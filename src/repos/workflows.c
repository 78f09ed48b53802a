/* workflows.c — see workflows.h. */
#include "lib/common.h"

#include <time.h>

#include "lib/buf.h"
#include "lib/jsonx.h"
#include "lib/uuid.h"
#include "repos/repo.h"
#include "repos/workflows.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* An id that is not a UUID names nothing (and PostgreSQL would refuse the cast). */
static bool norm_id(const char *id, char out[37])
{
    return id && uuid_normalize(id, out);
}

/* ms since the epoch as the API's ISO-8601 text, or null. */
static json_t *ms_json(struct db_rows *r, int i)
{
    if (db_is_null(r, i))
        return json_null();
    int64_t ms = db_int(r, i);
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char out[80];
    snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(out);
}

/* ---- workflows ------------------------------------------------------------------------------ */

#define WORKFLOW_COLUMNS                                                                         \
    "id, tenant_id, name, description, version, enabled, trigger, steps, created_by,"          \
    " created_at, updated_at, webhook_token_hash IS NOT NULL, next_fire_at"

static const struct repo_col workflow_cols[] = {
    {"id", REPO_TEXT},          {"tenantId", REPO_TEXT}, {"name", REPO_TEXT},
    {"description", REPO_TEXT}, {"version", REPO_INT},   {"enabled", REPO_BOOL},
    {"trigger", REPO_JSON},     {"steps", REPO_JSON},    {"createdBy", REPO_TEXT},
    {"createdAt", REPO_TIMESTAMP}, {"updatedAt", REPO_TIMESTAMP}, {NULL, REPO_TEXT},
};

static json_t *workflow_json(struct db_rows *r)
{
    json_t *w = repo_row_json(r, workflow_cols);
    json_object_set_new(w, "hasWebhookToken", json_boolean(db_bool(r, 11)));
    json_object_set_new(w, "nextRunAt", ms_json(r, 12));
    return w;
}

int workflows_create(struct db_conn *c, const struct workflow_new *w)
{
    if (repo_tenant(c, w->tenant_id) < 0)
        return -1;
    int rc = db_exec(c,
                     "INSERT INTO workflows (id, tenant_id, name, description, enabled, steps,"
                     " trigger, trigger_type, next_fire_at, webhook_token_hash, signing_secret,"
                     " created_by) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
                     DB_ARGS(DB_TEXT(w->id), DB_TEXT(db_tenant(c)), DB_TEXT(w->name),
                             DB_TEXT(w->description), DB_BOOL(w->enabled),
                             DB_TEXT(w->steps_json), DB_TEXT(w->trigger_json),
                             DB_TEXT(w->trigger_type),
                             w->next_fire_at >= 0 ? DB_INT(w->next_fire_at) : DB_NULL,
                             DB_TEXT(w->webhook_token_hash), DB_TEXT(w->signing_secret),
                             DB_TEXT(w->created_by)));
    if (rc != 1)
        return -1;
    rc = db_exec(c,
                 "INSERT INTO workflow_versions (workflow_id, version, tenant_id, steps, trigger,"
                 " created_by) VALUES ($1, 1, $2, $3, $4, $5)",
                 DB_ARGS(DB_TEXT(w->id), DB_TEXT(db_tenant(c)), DB_TEXT(w->steps_json),
                         DB_TEXT(w->trigger_json), DB_TEXT(w->created_by)));
    return rc == 1 ? 0 : -1;
}

json_t *workflows_find(struct db_conn *c, const char *tenant_id, const char *id, bool *failed)
{
    *failed = false;
    char wid[37];
    if (!norm_id(id, wid) || repo_tenant(c, tenant_id) < 0)
        return NULL;
    struct db_rows *r = db_query(c,
                                 "SELECT " WORKFLOW_COLUMNS " FROM workflows WHERE id = $1"
                                 " AND tenant_id = $2 AND deleted_at IS NULL",
                                 DB_ARGS(DB_TEXT(wid), DB_TEXT(db_tenant(c))));
    if (!r) {
        *failed = true;
        return NULL;
    }
    json_t *w = NULL;
    if (db_next(r))
        w = workflow_json(r);
    else if (db_rows_error(r))
        *failed = true;
    db_rows_free(r);
    return w;
}

/* A LIKE pattern matching s anywhere, with its own wildcards escaped. */
static void like_pattern(const char *s, char *out, size_t n)
{
    size_t w = 0;
    out[w++] = '%';
    for (const char *p = s; *p && w < n - 3; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            out[w++] = '\\';
        out[w++] = *p;
    }
    out[w++] = '%';
    out[w] = '\0';
}

json_t *workflows_list(struct db_conn *c, const char *tenant_id, const char *search,
                       long long limit, long long offset, long long *total)
{
    *total = 0;
    if (repo_tenant(c, tenant_id) < 0)
        return json_array();
    char pattern[300] = "";
    if (search && *search)
        like_pattern(search, pattern, sizeof(pattern));
    /* ILIKE on PostgreSQL; SQLite's LIKE already ignores ASCII case */
    const char *where = db_conn_dialect(c) == DB_POSTGRES
                            ? " FROM workflows WHERE tenant_id = $1 AND deleted_at IS NULL"
                              " AND (CAST($2 AS text) = '' OR name ILIKE $2 ESCAPE '\\')"
                            : " FROM workflows WHERE tenant_id = $1 AND deleted_at IS NULL"
                              " AND (CAST($2 AS text) = '' OR name LIKE $2 ESCAPE '\\')";
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT count(*)%s", where);
    struct db_rows *r =
        db_query(c, sql, DB_ARGS(DB_TEXT(db_tenant(c)), DB_TEXT(pattern)));
    if (!r || !db_next(r)) {
        db_rows_free(r);
        return NULL;
    }
    *total = db_int(r, 0);
    db_rows_free(r);
    snprintf(sql, sizeof(sql),
             "SELECT " WORKFLOW_COLUMNS "%s ORDER BY created_at, id LIMIT $3 OFFSET $4", where);
    r = db_query(c, sql,
                 DB_ARGS(DB_TEXT(db_tenant(c)), DB_TEXT(pattern), DB_INT(limit), DB_INT(offset)));
    if (!r)
        return NULL;
    json_t *arr = json_array();
    while (db_next(r))
        json_array_append_new(arr, workflow_json(r));
    if (db_rows_error(r)) {
        json_decref(arr);
        arr = NULL;
    }
    db_rows_free(r);
    return arr;
}

int workflows_update(struct db_conn *c, const char *tenant_id, const char *id,
                     const struct workflow_change *ch)
{
    char wid[37];
    if (!norm_id(id, wid) || repo_tenant(c, tenant_id) < 0)
        return 0;
    bool new_version = ch->steps_json && ch->trigger_json;
    struct db_param p[16];
    size_t n = 0;
    p[n++] = DB_TEXT(wid);
    p[n++] = DB_TEXT(db_tenant(c));
    p[n++] = DB_TEXT(ch->now);
    struct buf sql;
    buf_init(&sql, 2048);
    buf_puts(&sql, "UPDATE workflows SET updated_at = $3");
    /* SET list from this fixed set only: names never come from the request */
#define SET(col, param)                                                                          \
    do {                                                                                         \
        p[n++] = (param);                                                                        \
        buf_printf(&sql, ", " col " = $%zu", n);                                                 \
    } while (0)
    if (ch->name)
        SET("name", DB_TEXT(ch->name));
    if (ch->description || ch->clear_description)
        SET("description", DB_TEXT(ch->description));
    if (ch->enabled >= 0)
        SET("enabled", DB_BOOL(ch->enabled == 1));
    if (new_version) {
        SET("steps", DB_TEXT(ch->steps_json));
        SET("trigger", DB_TEXT(ch->trigger_json));
        SET("trigger_type", DB_TEXT(ch->trigger_type));
        buf_puts(&sql, ", version = version + 1");
    }
    if (ch->set_next_fire)
        SET("next_fire_at", ch->next_fire_at >= 0 ? DB_INT(ch->next_fire_at) : DB_NULL);
    if (ch->webhook_token_hash)
        SET("webhook_token_hash", DB_TEXT(ch->webhook_token_hash));
#undef SET
    buf_puts(&sql, " WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL RETURNING version");
    struct db_rows *r = db_query(c, buf_cstr(&sql), p, n);
    buf_free(&sql);
    if (!r)
        return -1;
    int rc = 0;
    int64_t version = 0;
    if (db_next(r)) {
        rc = 1;
        version = db_int(r, 0);
    } else if (db_rows_error(r)) {
        rc = -1;
    }
    db_rows_free(r);
    if (rc == 1 && new_version &&
        db_exec(c,
                "INSERT INTO workflow_versions (workflow_id, version, tenant_id, steps, trigger,"
                " created_by) VALUES ($1, $2, $3, $4, $5, $6)",
                DB_ARGS(DB_TEXT(wid), DB_INT(version), DB_TEXT(db_tenant(c)),
                        DB_TEXT(ch->steps_json), DB_TEXT(ch->trigger_json),
                        DB_TEXT(ch->updated_by))) != 1)
        rc = -1;
    return rc;
}

int workflows_soft_delete(struct db_conn *c, const char *tenant_id, const char *id,
                          const char *now)
{
    char wid[37];
    if (!norm_id(id, wid) || repo_tenant(c, tenant_id) < 0)
        return 0;
    return db_exec(c,
                   "UPDATE workflows SET deleted_at = $3, updated_at = $3, next_fire_at = NULL,"
                   " webhook_token_hash = NULL WHERE id = $1 AND tenant_id = $2"
                   " AND deleted_at IS NULL",
                   DB_ARGS(DB_TEXT(wid), DB_TEXT(db_tenant(c)), DB_TEXT(now)));
}

static const struct repo_col version_cols[] = {
    {"workflowId", REPO_TEXT}, {"version", REPO_INT},         {"steps", REPO_JSON},
    {"trigger", REPO_JSON},    {"createdBy", REPO_TEXT},      {"createdAt", REPO_TIMESTAMP},
    {NULL, REPO_TEXT},
};

json_t *workflows_version_find(struct db_conn *c, const char *tenant_id, const char *id,
                               long long version, bool *failed)
{
    *failed = false;
    char wid[37];
    if (!norm_id(id, wid) || repo_tenant(c, tenant_id) < 0)
        return NULL;
    struct db_rows *r = db_query(c,
                                 "SELECT v.workflow_id, v.version, v.steps, v.trigger,"
                                 " v.created_by, v.created_at FROM workflow_versions v"
                                 " JOIN workflows w ON w.id = v.workflow_id"
                                 " WHERE v.workflow_id = $1 AND v.tenant_id = $2"
                                 " AND v.version = $3 AND w.deleted_at IS NULL",
                                 DB_ARGS(DB_TEXT(wid), DB_TEXT(db_tenant(c)), DB_INT(version)));
    if (!r) {
        *failed = true;
        return NULL;
    }
    json_t *v = NULL;
    if (db_next(r))
        v = repo_row_json(r, version_cols);
    else if (db_rows_error(r))
        *failed = true;
    db_rows_free(r);
    return v;
}

static int set_column(struct db_conn *c, const char *sql, const char *tenant_id, const char *id,
                      const char *value, const char *now)
{
    char wid[37];
    if (!norm_id(id, wid) || repo_tenant(c, tenant_id) < 0)
        return 0;
    return db_exec(c, sql,
                   DB_ARGS(DB_TEXT(wid), DB_TEXT(db_tenant(c)), DB_TEXT(value), DB_TEXT(now)));
}

int workflows_set_webhook_token(struct db_conn *c, const char *tenant_id, const char *id,
                                const char *hash, const char *now)
{
    return set_column(c,
                      "UPDATE workflows SET webhook_token_hash = $3, updated_at = $4"
                      " WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
                      tenant_id, id, hash, now);
}

int workflows_set_signing_secret(struct db_conn *c, const char *tenant_id, const char *id,
                                 const char *sealed, const char *now)
{
    return set_column(c,
                      "UPDATE workflows SET signing_secret = $3, updated_at = $4"
                      " WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
                      tenant_id, id, sealed, now);
}

void workflow_ref_free(struct workflow_ref *r)
{
    free(r->steps_json);
    r->steps_json = NULL;
}

int workflows_load_ref(struct db_conn *c, const char *tenant_id, const char *id,
                       struct workflow_ref *out)
{
    memset(out, 0, sizeof(*out));
    char wid[37];
    if (!norm_id(id, wid))
        return 0;
    if (tenant_id && repo_tenant(c, tenant_id) < 0)
        return 0;
#define REF_SELECT                                                                               \
    "SELECT id, tenant_id, version, enabled, trigger_type, webhook_token_hash, steps"            \
    " FROM workflows WHERE id = $1 AND deleted_at IS NULL"
    struct db_rows *r =
        tenant_id ? db_query(c, REF_SELECT " AND tenant_id = $2",
                             DB_ARGS(DB_TEXT(wid), DB_TEXT(db_tenant(c))))
                  : db_query(c, REF_SELECT, DB_ARGS(DB_TEXT(wid)));
#undef REF_SELECT
    if (!r)
        return -1;
    int found = 0;
    if (db_next(r)) {
        found = 1;
        db_text_copy(r, 0, out->id, sizeof(out->id));
        db_text_copy(r, 1, out->tenant_id, sizeof(out->tenant_id));
        out->version = (int)db_int(r, 2);
        out->enabled = db_bool(r, 3);
        db_text_copy(r, 4, out->trigger_type, sizeof(out->trigger_type));
        db_text_copy(r, 5, out->webhook_token_hash, sizeof(out->webhook_token_hash));
        out->steps_json = db_text_dup(r, 6);
    } else if (db_rows_error(r)) {
        found = -1;
    }
    db_rows_free(r);
    return found;
}

/* ---- executions ---------------------------------------------------------------------------- */

int workflows_exec_create(struct db_conn *c, const struct execution_new *e)
{
    if (repo_tenant(c, e->tenant_id) < 0)
        return -1;
    int rc = db_exec(c,
                     "INSERT INTO workflow_executions (id, tenant_id, workflow_id, version,"
                     " trigger, input, idempotency_key, triggered_by)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
                     " ON CONFLICT (workflow_id, idempotency_key)"
                     " WHERE idempotency_key IS NOT NULL DO NOTHING",
                     DB_ARGS(DB_TEXT(e->id), DB_TEXT(db_tenant(c)), DB_TEXT(e->workflow_id),
                             DB_INT(e->version), DB_TEXT(e->trigger), DB_TEXT(e->input_json),
                             DB_TEXT(e->idempotency_key), DB_TEXT(e->triggered_by)));
    if (rc <= 0)
        return rc;
    json_t *steps = json_loads(e->steps_json, 0, NULL);
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        if (db_exec(c,
                    "INSERT INTO workflow_execution_steps (execution_id, idx, tenant_id, name,"
                    " kind) VALUES ($1, $2, $3, $4, $5)",
                    DB_ARGS(DB_TEXT(e->id), DB_INT((int64_t)i), DB_TEXT(db_tenant(c)),
                            DB_TEXT(json_string_value(json_object_get(s, "name"))),
                            DB_TEXT(json_string_value(json_object_get(s, "type"))))) != 1) {
            json_decref(steps);
            return -1;
        }
    }
    json_decref(steps);
    return 1;
}

int workflows_exec_set_job(struct db_conn *c, const char *tenant_id, const char *id,
                           const char *job_id)
{
    if (repo_tenant(c, tenant_id) < 0)
        return -1;
    return db_exec(c,
                   "UPDATE workflow_executions SET job_id = $3 WHERE id = $1 AND tenant_id = $2",
                   DB_ARGS(DB_TEXT(id), DB_TEXT(db_tenant(c)), DB_TEXT(job_id)));
}

int workflows_exec_by_key(struct db_conn *c, const char *tenant_id, const char *workflow_id,
                          const char *key, char id_out[37], char **input_json)
{
    *input_json = NULL;
    if (repo_tenant(c, tenant_id) < 0)
        return 0;
    struct db_rows *r = db_query(c,
                                 "SELECT id, input FROM workflow_executions WHERE workflow_id = $1"
                                 " AND tenant_id = $2 AND idempotency_key = $3",
                                 DB_ARGS(DB_TEXT(workflow_id), DB_TEXT(db_tenant(c)),
                                         DB_TEXT(key)));
    if (!r)
        return -1;
    int found = 0;
    if (db_next(r)) {
        found = 1;
        db_text_copy(r, 0, id_out, 37);
        *input_json = db_text_dup(r, 1);
    } else if (db_rows_error(r)) {
        found = -1;
    }
    db_rows_free(r);
    return found;
}

#define EXEC_COLUMNS                                                                             \
    "id, workflow_id, tenant_id, version, status, trigger, input, output, error,"               \
    " idempotency_key, job_id, triggered_by, log_seq, created_at, started_at, finished_at,"     \
    " updated_at"

static const struct repo_col exec_cols[] = {
    {"id", REPO_TEXT},
    {"workflowId", REPO_TEXT},
    {"tenantId", REPO_TEXT},
    {"version", REPO_INT},
    {"status", REPO_TEXT},
    {"trigger", REPO_TEXT},
    {"input", REPO_JSON},
    {"output", REPO_JSON},
    {"error", REPO_TEXT},
    {"idempotencyKey", REPO_TEXT},
    {"jobId", REPO_TEXT},
    {"triggeredBy", REPO_TEXT},
    {"lastSeq", REPO_INT},
    {"createdAt", REPO_TIMESTAMP},
    {"startedAt", REPO_TIMESTAMP},
    {"finishedAt", REPO_TIMESTAMP},
    {"updatedAt", REPO_TIMESTAMP},
    {NULL, REPO_TEXT},
};

static const struct repo_col step_cols[] = {
    {"index", REPO_INT},   {"name", REPO_TEXT},         {"type", REPO_TEXT},
    {"status", REPO_TEXT}, {"attempts", REPO_INT},      {"output", REPO_JSON},
    {"error", REPO_TEXT},  {"startedAt", REPO_TIMESTAMP}, {"finishedAt", REPO_TIMESTAMP},
    {NULL, REPO_TEXT},
};

#define EXEC_MAX_LOGS 1000

json_t *workflows_exec_find(struct db_conn *c, const char *tenant_id, const char *id, bool full,
                            bool *failed)
{
    *failed = false;
    char eid[37];
    if (!norm_id(id, eid) || repo_tenant(c, tenant_id) < 0)
        return NULL;
    struct db_rows *r = db_query(c,
                                 "SELECT " EXEC_COLUMNS " FROM workflow_executions"
                                 " WHERE id = $1 AND tenant_id = $2",
                                 DB_ARGS(DB_TEXT(eid), DB_TEXT(db_tenant(c))));
    if (!r) {
        *failed = true;
        return NULL;
    }
    json_t *e = NULL;
    if (db_next(r))
        e = repo_row_json(r, exec_cols);
    else if (db_rows_error(r))
        *failed = true;
    db_rows_free(r);
    if (!e || !full)
        return e;
    r = db_query(c,
                 "SELECT idx, name, kind, status, attempts, output, error, started_at,"
                 " finished_at FROM workflow_execution_steps WHERE execution_id = $1"
                 " AND tenant_id = $2 ORDER BY idx",
                 DB_ARGS(DB_TEXT(eid), DB_TEXT(db_tenant(c))));
    json_t *steps = json_array();
    while (r && db_next(r))
        json_array_append_new(steps, repo_row_json(r, step_cols));
    if (!r || db_rows_error(r)) {
        db_rows_free(r);
        json_decref(steps);
        json_decref(e);
        *failed = true;
        return NULL;
    }
    db_rows_free(r);
    json_object_set_new(e, "steps", steps);
    long long last;
    json_t *logs = workflows_exec_events(c, tenant_id, eid, 0, EXEC_MAX_LOGS, &last);
    if (!logs) {
        json_decref(e);
        *failed = true;
        return NULL;
    }
    json_object_set_new(e, "logs", logs);
    return e;
}

json_t *workflows_exec_list(struct db_conn *c, const char *tenant_id, const char *workflow_id,
                            long long limit, long long offset, long long *total)
{
    *total = 0;
    char wid[37];
    if (!norm_id(workflow_id, wid) || repo_tenant(c, tenant_id) < 0)
        return json_array();
    struct db_rows *r = db_query(c,
                                 "SELECT count(*) FROM workflow_executions WHERE workflow_id = $1"
                                 " AND tenant_id = $2",
                                 DB_ARGS(DB_TEXT(wid), DB_TEXT(db_tenant(c))));
    if (!r || !db_next(r)) {
        db_rows_free(r);
        return NULL;
    }
    *total = db_int(r, 0);
    db_rows_free(r);
    r = db_query(c,
                 "SELECT " EXEC_COLUMNS " FROM workflow_executions WHERE workflow_id = $1"
                 " AND tenant_id = $2 ORDER BY created_at DESC, id DESC LIMIT $3 OFFSET $4",
                 DB_ARGS(DB_TEXT(wid), DB_TEXT(db_tenant(c)), DB_INT(limit), DB_INT(offset)));
    if (!r)
        return NULL;
    json_t *arr = json_array();
    while (db_next(r))
        json_array_append_new(arr, repo_row_json(r, exec_cols));
    if (db_rows_error(r)) {
        json_decref(arr);
        arr = NULL;
    }
    db_rows_free(r);
    return arr;
}

bool workflows_execution_visible(struct db_conn *c, const char *tenant_id,
                                 const char *execution_id)
{
    char eid[37];
    if (!norm_id(execution_id, eid) || repo_tenant(c, tenant_id) < 0)
        return false;
    struct db_rows *r = db_query(c,
                                 "SELECT 1 FROM workflow_executions WHERE id = $1"
                                 " AND tenant_id = $2",
                                 DB_ARGS(DB_TEXT(eid), DB_TEXT(db_tenant(c))));
    bool found = r && db_next(r);
    db_rows_free(r);
    return found;
}

int workflows_exec_status(struct db_conn *c, const char *tenant_id, const char *id,
                          char status[16], char job_id[130])
{
    status[0] = job_id[0] = '\0';
    char eid[37];
    if (!norm_id(id, eid) || repo_tenant(c, tenant_id) < 0)
        return 0;
    struct db_rows *r = db_query(c,
                                 "SELECT status, job_id FROM workflow_executions WHERE id = $1"
                                 " AND tenant_id = $2",
                                 DB_ARGS(DB_TEXT(eid), DB_TEXT(db_tenant(c))));
    if (!r)
        return -1;
    int found = 0;
    if (db_next(r)) {
        found = 1;
        db_text_copy(r, 0, status, 16);
        db_text_copy(r, 1, job_id, 130);
    } else if (db_rows_error(r)) {
        found = -1;
    }
    db_rows_free(r);
    return found;
}

/* ---- the event log -------------------------------------------------------------------------- */

int workflows_event_begin(struct db_conn *c, struct workflow_event *ev, const char *statuses)
{
    if (repo_tenant(c, ev->tenant_id) < 0)
        return -1;
    zy_iso_now(ev->time);
    struct db_rows *r = db_query(c,
                                 "UPDATE workflow_executions SET log_seq = log_seq + 1,"
                                 " updated_at = $3 WHERE id = $1 AND tenant_id = $2"
                                 " AND (' ' || CAST($4 AS text) || ' ') LIKE"
                                 " ('% ' || status || ' %') RETURNING log_seq",
                                 DB_ARGS(DB_TEXT(ev->execution_id), DB_TEXT(db_tenant(c)),
                                         DB_TEXT(ev->time), DB_TEXT(statuses)));
    if (!r)
        return -1;
    int rc = 0;
    if (db_next(r)) {
        ev->seq = db_int(r, 0);
        rc = 1;
    } else if (db_rows_error(r)) {
        rc = -1;
    }
    db_rows_free(r);
    return rc;
}

int workflows_event_insert(struct db_conn *c, const struct workflow_event *ev)
{
    int rc = db_exec(c,
                     "INSERT INTO workflow_execution_logs (execution_id, seq, tenant_id, type,"
                     " step_index, status, level, message, attempt, created_at)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                     DB_ARGS(DB_TEXT(ev->execution_id), DB_INT(ev->seq), DB_TEXT(ev->tenant_id),
                             DB_TEXT(ev->type),
                             ev->step_index >= 0 ? DB_INT(ev->step_index) : DB_NULL,
                             DB_TEXT(ev->status), DB_TEXT(ev->level), DB_TEXT(ev->message),
                             ev->attempt > 0 ? DB_INT(ev->attempt) : DB_NULL, DB_TEXT(ev->time)));
    return rc == 1 ? 0 : -1;
}

json_t *workflows_event_json(const struct workflow_event *ev)
{
    const char *type = strcmp(ev->type, "execution") == 0 ? "execution.status"
                       : strcmp(ev->type, "step") == 0    ? "execution.step"
                                                          : "execution.log";
    json_t *o = json_pack("{s:s, s:s, s:I, s:s}", "type", type, "executionId", ev->execution_id,
                          "seq", (json_int_t)ev->seq, "time", ev->time);
    if (ev->step_index >= 0)
        json_object_set_new(o, "stepIndex", json_integer(ev->step_index));
    if (ev->status)
        json_object_set_new(o, "status", json_string(ev->status));
    if (ev->level)
        json_object_set_new(o, "level", json_string(ev->level));
    if (ev->message)
        json_object_set_new(o, "message", jx_str(ev->message));
    if (ev->attempt > 0)
        json_object_set_new(o, "attempt", json_integer(ev->attempt));
    return o;
}

json_t *workflows_exec_events(struct db_conn *c, const char *tenant_id, const char *id,
                              long long after, long long limit, long long *last_seq)
{
    *last_seq = -1;
    char eid[37];
    if (!norm_id(id, eid) || repo_tenant(c, tenant_id) < 0)
        return json_array();
    struct db_rows *r = db_query(c,
                                 "SELECT log_seq FROM workflow_executions WHERE id = $1"
                                 " AND tenant_id = $2",
                                 DB_ARGS(DB_TEXT(eid), DB_TEXT(db_tenant(c))));
    if (!r)
        return NULL;
    if (db_next(r))
        *last_seq = db_int(r, 0);
    bool err = db_rows_error(r) != 0;
    db_rows_free(r);
    if (err)
        return NULL;
    if (*last_seq < 0)
        return json_array();
    /* created_at is read back as the same ISO text the live event carried */
    r = db_query(c,
                 "SELECT seq, type, step_index, status, level, message, attempt, created_at"
                 " FROM workflow_execution_logs WHERE execution_id = $1 AND tenant_id = $2"
                 " AND seq > $3 ORDER BY seq LIMIT $4",
                 DB_ARGS(DB_TEXT(eid), DB_TEXT(db_tenant(c)), DB_INT(after), DB_INT(limit)));
    if (!r)
        return NULL;
    json_t *arr = json_array();
    while (db_next(r)) {
        struct workflow_event ev = {
            .execution_id = eid,
            .seq = db_int(r, 0),
            .type = db_text(r, 1),
            .step_index = db_is_null(r, 2) ? -1 : (int)db_int(r, 2),
            .status = db_is_null(r, 3) ? NULL : db_text(r, 3),
            .level = db_is_null(r, 4) ? NULL : db_text(r, 4),
            .message = db_is_null(r, 5) ? NULL : db_text(r, 5),
            .attempt = db_is_null(r, 6) ? 0 : (int)db_int(r, 6),
        };
        db_text_copy(r, 7, ev.time, sizeof(ev.time));
        json_array_append_new(arr, workflows_event_json(&ev));
    }
    if (db_rows_error(r)) {
        json_decref(arr);
        arr = NULL;
    }
    db_rows_free(r);
    return arr;
}

/* ---- what the engine writes ----------------------------------------------------------------- */

int workflows_exec_mark(struct db_conn *c, const char *id, const char *status,
                        const char *output_json, const char *error, const char *now)
{
    if (strcmp(status, "running") == 0) /* (again, after an admin retry of a failed one) */
        return db_exec(c,
                       "UPDATE workflow_executions SET status = 'running', output = NULL,"
                       " error = NULL, started_at = COALESCE(started_at, $2),"
                       " finished_at = NULL, updated_at = $2 WHERE id = $1",
                       DB_ARGS(DB_TEXT(id), DB_TEXT(now)));
    return db_exec(c,
                   "UPDATE workflow_executions SET status = $2, output = $3, error = $4,"
                   " finished_at = $5, updated_at = $5 WHERE id = $1",
                   DB_ARGS(DB_TEXT(id), DB_TEXT(status), DB_TEXT(output_json), DB_TEXT(error),
                           DB_TEXT(now)));
}

int workflows_step_mark(struct db_conn *c, const char *execution_id, int idx, const char *status,
                        const char *output_json, const char *error, const char *now)
{
    if (strcmp(status, "running") == 0)
        return db_exec(c,
                       "UPDATE workflow_execution_steps SET status = 'running',"
                       " attempts = attempts + 1, started_at = COALESCE(started_at, $3),"
                       " error = NULL WHERE execution_id = $1 AND idx = $2",
                       DB_ARGS(DB_TEXT(execution_id), DB_INT(idx), DB_TEXT(now)));
    return db_exec(c,
                   "UPDATE workflow_execution_steps SET status = $3, output = $4, error = $5,"
                   " finished_at = $6 WHERE execution_id = $1 AND idx = $2",
                   DB_ARGS(DB_TEXT(execution_id), DB_INT(idx), DB_TEXT(status),
                           DB_TEXT(output_json), DB_TEXT(error), DB_TEXT(now)));
}

int workflows_steps_cancel(struct db_conn *c, const char *execution_id, const char *now)
{
    return db_exec(c,
                   "UPDATE workflow_execution_steps SET status = 'cancelled', finished_at = $2"
                   " WHERE execution_id = $1 AND status IN ('pending', 'running')",
                   DB_ARGS(DB_TEXT(execution_id), DB_TEXT(now)));
}

int workflows_steps_reset_failed(struct db_conn *c, const char *execution_id)
{
    return db_exec(c,
                   "UPDATE workflow_execution_steps SET status = 'pending', attempts = 0,"
                   " error = NULL, finished_at = NULL WHERE execution_id = $1"
                   " AND status = 'failed'",
                   DB_ARGS(DB_TEXT(execution_id)));
}

void workflows_run_state_free(struct workflow_run_state *st)
{
    free(st->input_json);
    free(st->steps_json);
    free(st->signing_secret);
    for (int i = 0; i < st->nsteps; i++)
        free(st->steps[i].output_json);
    free(st->steps);
    memset(st, 0, sizeof(*st));
}

int workflows_run_load(struct db_conn *c, const char *tenant_id, const char *id,
                       struct workflow_run_state *st)
{
    memset(st, 0, sizeof(*st));
    char eid[37];
    if (!norm_id(id, eid) || repo_tenant(c, tenant_id) < 0)
        return 0;
    struct db_rows *r = db_query(c,
                                 "SELECT e.workflow_id, e.status, e.version, e.input, v.steps,"
                                 " w.signing_secret FROM workflow_executions e"
                                 " JOIN workflow_versions v ON v.workflow_id = e.workflow_id"
                                 " AND v.version = e.version"
                                 " JOIN workflows w ON w.id = e.workflow_id"
                                 " WHERE e.id = $1 AND e.tenant_id = $2",
                                 DB_ARGS(DB_TEXT(eid), DB_TEXT(db_tenant(c))));
    if (!r)
        return -1;
    int found = 0;
    if (db_next(r)) {
        found = 1;
        db_text_copy(r, 0, st->workflow_id, sizeof(st->workflow_id));
        db_text_copy(r, 1, st->status, sizeof(st->status));
        st->version = (int)db_int(r, 2);
        st->input_json = db_text_dup(r, 3);
        st->steps_json = db_text_dup(r, 4);
        st->signing_secret = db_text_dup(r, 5);
    } else if (db_rows_error(r)) {
        found = -1;
    }
    db_rows_free(r);
    if (found != 1)
        return found;
    r = db_query(c,
                 "SELECT idx, status, attempts, output FROM workflow_execution_steps"
                 " WHERE execution_id = $1 AND tenant_id = $2 ORDER BY idx",
                 DB_ARGS(DB_TEXT(eid), DB_TEXT(db_tenant(c))));
    if (!r) {
        workflows_run_state_free(st);
        return -1;
    }
    int cap = 0;
    while (db_next(r)) {
        if (st->nsteps == cap) {
            cap = cap ? cap * 2 : 8;
            st->steps = xrealloc(st->steps, (size_t)cap * sizeof(*st->steps));
        }
        struct workflow_step_state *s = &st->steps[st->nsteps++];
        db_text_copy(r, 1, s->status, sizeof(s->status));
        s->attempts = (int)db_int(r, 2);
        s->output_json = db_text_dup(r, 3);
    }
    if (db_rows_error(r)) {
        db_rows_free(r);
        workflows_run_state_free(st);
        return -1;
    }
    db_rows_free(r);
    return 1;
}

/* ---- schedules ------------------------------------------------------------------------------ */

int workflows_due(struct db_conn *c, int64_t now_ms, struct workflow_due *out, int max)
{
    struct db_rows *r = db_query(c,
                                 "SELECT id, tenant_id, next_fire_at, trigger FROM workflows"
                                 " WHERE trigger_type = 'schedule' AND enabled"
                                 " AND deleted_at IS NULL AND next_fire_at <= $1"
                                 " ORDER BY next_fire_at LIMIT $2",
                                 DB_ARGS(DB_INT(now_ms), DB_INT(max)));
    if (!r)
        return -1;
    int n = 0;
    while (n < max && db_next(r)) {
        db_text_copy(r, 0, out[n].id, sizeof(out[n].id));
        db_text_copy(r, 1, out[n].tenant_id, sizeof(out[n].tenant_id));
        out[n].next_fire_at = db_int(r, 2);
        out[n].trigger_json = db_text_dup(r, 3);
        n++;
    }
    if (db_rows_error(r)) {
        workflows_due_free(out, n);
        n = -1;
    }
    db_rows_free(r);
    return n;
}

void workflows_due_free(struct workflow_due *d, int n)
{
    for (int i = 0; i < n; i++) {
        free(d[i].trigger_json);
        d[i].trigger_json = NULL;
    }
}

int workflows_slot_claim(struct db_conn *c, const char *workflow_id, const char *tenant_id,
                         int64_t slot_ms, const char *execution_id)
{
    if (repo_tenant(c, tenant_id) < 0)
        return -1;
    return db_exec(c,
                   "INSERT INTO workflow_schedule_slots (workflow_id, slot_time, tenant_id,"
                   " execution_id) VALUES ($1, $2, $3, $4)"
                   " ON CONFLICT (workflow_id, slot_time) DO NOTHING",
                   DB_ARGS(DB_TEXT(workflow_id), DB_INT(slot_ms), DB_TEXT(db_tenant(c)),
                           DB_TEXT(execution_id)));
}

int workflows_set_next_fire(struct db_conn *c, const char *workflow_id, int64_t expected,
                            int64_t next)
{
    return db_exec(c,
                   "UPDATE workflows SET next_fire_at = $3 WHERE id = $1 AND next_fire_at = $2",
                   DB_ARGS(DB_TEXT(workflow_id), DB_INT(expected),
                           next >= 0 ? DB_INT(next) : DB_NULL));
}

int workflows_slots_prune(struct db_conn *c, int64_t before_ms)
{
    return db_exec(c, "DELETE FROM workflow_schedule_slots WHERE slot_time < $1",
                   DB_ARGS(DB_INT(before_ms)));
}

int workflows_executions_prune(struct db_conn *c, const char *before_iso, int limit)
{
    /* the same predicate as the partial index of migration 0009, so it is used */
    return db_exec(c,
                   "DELETE FROM workflow_executions WHERE id IN (SELECT id FROM workflow_executions"
                   " WHERE status IN ('succeeded', 'failed', 'cancelled') AND finished_at < $1"
                   " ORDER BY finished_at LIMIT $2)",
                   DB_ARGS(DB_TEXT(before_iso), DB_INT(limit)));
}

int workflows_orphans(struct db_conn *c, struct workflow_orphan *out, int max)
{
    /* an execution's job is enqueued in the transaction that creates it, so a missing job
     * means retention removed it after it ended */
    struct db_rows *r = db_query(c,
                                 "SELECT e.id, e.tenant_id, COALESCE(j.state, 'removed'), j.error"
                                 " FROM workflow_executions e LEFT JOIN jobs j ON j.id = e.job_id"
                                 " WHERE e.status IN ('queued', 'running') AND e.job_id IS NOT NULL"
                                 " AND (j.id IS NULL OR j.state IN ('failed', 'cancelled',"
                                 " 'completed')) LIMIT $1",
                                 DB_ARGS(DB_INT(max)));
    if (!r)
        return -1;
    int n = 0;
    while (n < max && db_next(r)) {
        db_text_copy(r, 0, out[n].id, sizeof(out[n].id));
        db_text_copy(r, 1, out[n].tenant_id, sizeof(out[n].tenant_id));
        db_text_copy(r, 2, out[n].job_state, sizeof(out[n].job_state));
        out[n].error = db_text_dup(r, 3);
        n++;
    }
    if (db_rows_error(r)) {
        workflows_orphans_free(out, n);
        n = -1;
    }
    db_rows_free(r);
    return n;
}

void workflows_orphans_free(struct workflow_orphan *o, int n)
{
    for (int i = 0; i < n; i++) {
        free(o[i].error);
        o[i].error = NULL;
    }
}
