/* jobs.c — see jobs.h. */
#include "lib/common.h"

#include "http/app.h"
#include "http/pagination.h"
#include "jobs/queue.h"
#include "repos/repo.h"
#include "routes/admin.h"
#include "routes/jobs.h"
#include "routes/schemas.h"
#include "services/audit.h"

/* ---- schemas ------------------------------------------------------------------------------ */

static const char *const states[] = {"waiting", "delayed",   "active", "completed",
                                     "failed",  "cancelled", NULL};

static const struct schema job_s = {
    .type = SCHEMA_OBJECT,
    .ref = "Job",
    .description = "A background job. Its payload is never shown.",
    .props = (const struct schema_prop[]){
        {"id",
         &(const struct schema){.type = SCHEMA_STRING,
                                .description = "A UUID, or the "
                                               "de-duplication id "
                                               "it was given"},
         true},
        {"queue", &(const struct schema){.type = SCHEMA_STRING, .example = "\"tenant-deletion\""},
         true},
        {"name", &schemas_str, true},
        {"tenantId", &schemas_nullable_uuid, true},
        {"state", &(const struct schema){.type = SCHEMA_STRING, .enum_values = states}, true},
        {"progress",
         &(const struct schema){
             .type = SCHEMA_INTEGER, .has_min = true, .min = 0, .has_max = true, .max = 100},
         true},
        {"progressMessage", &schemas_nullable_str, true},
        {"attemptsMade", &schemas_int, true},
        {"maxAttempts", &schemas_int, true},
        {"priority",
         &(const struct schema){.type = SCHEMA_INTEGER,
                                .description = "0: none; otherwise 1 runs first"},
         true},
        {"result",
         &(const struct schema){.type = SCHEMA_ANY,
                                .nullable = true,
                                .description = "What the job returned when it completed"},
         true},
        {"error",
         &(const struct schema){
             .type = SCHEMA_STRING, .nullable = true, .description = "Why the last run failed"},
         true},
        {"cancelRequested", &schemas_bool, true},
        {"stalledCount",
         &(const struct schema){.type = SCHEMA_INTEGER,
                                .description = "Runs whose worker was lost (lease expired)"},
         true},
        {"runAt",
         &(const struct schema){.type = SCHEMA_STRING,
                                .format = SCHEMA_FMT_DATETIME,
                                .description = "When it may run (delays and retry backoff)"},
         true},
        {"createdAt", &schemas_datetime, true},
        {"startedAt", &schemas_nullable_datetime, true},
        {"finishedAt", &schemas_nullable_datetime, true},
        {"updatedAt", &schemas_datetime, true},
        {NULL}}};

static const struct schema job_list_s = {
    .type = SCHEMA_OBJECT,
    .ref = "JobList",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &job_s}, true},
        {"pagination", &pagination_schema, true},
        {NULL}}};

static const struct schema counts_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"waiting", &schemas_int, true},
                                          {"delayed", &schemas_int, true},
                                          {"active", &schemas_int, true},
                                          {"completed", &schemas_int, true},
                                          {"failed", &schemas_int, true},
                                          {"cancelled", &schemas_int, true},
                                          {NULL}}};

static const struct schema queue_s = {
    .type = SCHEMA_OBJECT,
    .ref = "JobQueue",
    .props = (const struct schema_prop[]){
        {"name", &schemas_str, true}, {"counts", &counts_s, true}, {NULL}}};

static const struct schema queue_list_s = {
    .type = SCHEMA_OBJECT,
    .ref = "JobQueueList",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &queue_s}, true}, {NULL}}};

static const struct schema id_params_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"id",
         &(const struct schema){
             .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 128},
         true},
        {NULL}}};

static const struct schema failed_query_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"queue",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_max = true,
                                .max = 64,
                                .description = "Only jobs of this queue",
                                .example = "\"notifications\""},
         false},
        {"page", &pagination_page_schema, false},
        {"limit", &pagination_limit_schema, false},
        {NULL}}};

/* ---- helpers ------------------------------------------------------------------------------ */

static const char *path_id(const struct ctx *c)
{
    return json_string_value(json_object_get(c->path_params, "id"));
}

static int not_found(struct ctx *c, const char *id)
{
    return ctx_fail(c, ZY_E_NOT_FOUND, "Job with ID %s not found", id);
}

/* Sends the job, or 404 when it is absent (or not the tenant's). */
static int send_job(struct ctx *c, struct db_conn *db, const char *id, const char *tenant_id)
{
    json_t *j = jobs_get_json(db, id, tenant_id);
    if (!j)
        return db_errkind(db) != DB_ERR_NONE ? ctx_fail_db(c, db, NULL) : not_found(c, id);
    ctx_json(c, 200, j);
    return 0;
}

/* The request's connection with the bypass, for a global admin only (the route permission
 * refused everyone else already; this holds even if a role were ever to name it). */
static struct db_conn *admin_conn(struct ctx *c)
{
    if (!c->user || !c->user->is_global_admin) {
        ctx_fail(c, ZY_E_FORBIDDEN, "Insufficient permissions");
        return NULL;
    }
    struct db_conn *db = ctx_db(c);
    if (db && db_set_rls_bypass(db, true) < 0) {
        ctx_fail_db(c, db, NULL);
        return NULL;
    }
    return db;
}

/* ---- the tenant's jobs -------------------------------------------------------------------- */

static int get_job(struct ctx *c)
{
    const char *id = path_id(c);
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    if (repo_tenant(db, c->tenant_id) < 0)
        return not_found(c, id);
    return send_job(c, db, id, c->tenant_id);
}

/* ---- admin -------------------------------------------------------------------------------- */

static int list_queues(struct ctx *c)
{
    struct db_conn *db = admin_conn(c);
    if (!db)
        return -1;
    json_t *qs = jobs_queues_json(db);
    if (!qs)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, json_pack("{s:o}", "data", qs));
    return 0;
}

static int list_failed(struct ctx *c)
{
    struct db_conn *db = admin_conn(c);
    if (!db)
        return -1;
    struct page pg;
    pagination_from_query(c, &pg);
    long long total = 0;
    json_t *data =
        jobs_list_json(db, "failed", json_string_value(json_object_get(c->query, "queue")),
                       pg.limit, pg.offset, &total);
    if (!data)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, pagination_envelope(data, &pg, total));
    return 0;
}

static int admin_get_job(struct ctx *c)
{
    struct db_conn *db = admin_conn(c);
    if (!db)
        return -1;
    return send_job(c, db, path_id(c), NULL);
}

/* Retry or cancel in one transaction with its audit row; the job as it is now after. */
static int admin_change(struct ctx *c, bool retry)
{
    const char *id = path_id(c);
    struct db_conn *db = admin_conn(c);
    if (!db)
        return -1;
    if (db_begin(db) < 0)
        return ctx_fail_db(c, db, NULL);
    json_t *before = jobs_get_json(db, id, NULL);
    if (!before) {
        int rc = db_errkind(db) != DB_ERR_NONE ? ctx_fail_db(c, db, NULL) : not_found(c, id);
        db_rollback(db);
        return rc;
    }
    int rc = retry ? jobs_retry(db, id) : jobs_cancel(db, id, NULL);
    if (rc == 0) {
        const char *tenant = json_string_value(json_object_get(before, "tenantId"));
        json_t *meta = json_pack("{s:O, s:O}", "queue", json_object_get(before, "queue"),
                                 "previousState", json_object_get(before, "state"));
        struct audit_entry e = {
            .tenant_id = tenant,
            .actor_id = c->user->id,
            .action = retry ? "admin.job_retry" : "admin.job_cancel",
            .resource_type = "job",
            .resource_id = id,
            .metadata = meta,
        };
        if (audit_request(c, db, &e) < 0)
            rc = -1;
        json_decref(meta);
    }
    json_decref(before);
    if (rc != 0) {
        int out = rc == -2  ? not_found(c, id)
                  : rc == 1 ? ctx_fail(c, ZY_E_CONFLICT,
                                       retry ? "Only failed or cancelled jobs can be retried"
                                             : "The job has already finished")
                            : ctx_fail_db(c, db, NULL);
        db_rollback(db);
        return out;
    }
    if (db_commit(db) < 0)
        return ctx_fail_db(c, db, NULL);
    if (retry)
        jobs_wake(); /* this process's workers need not wait for their next poll */
    return send_job(c, db, id, NULL);
}

static int retry_job(struct ctx *c)
{
    return admin_change(c, true);
}

static int cancel_job(struct ctx *c)
{
    return admin_change(c, false);
}

/* ---- table -------------------------------------------------------------------------------- */

static const struct route routes[] = {
    {.method = HTTP_GET,
     .path = "/jobs/:id",
     .handler = get_job,
     .tag = "Jobs",
     .summary = "Get a job",
     .description = "State, progress, attempts and result or error of one of the tenant's "
                    "background jobs (e.g. a tenant deletion). Live updates: subscribe to the "
                    "WebSocket room tenant:<tenantId>:job:<jobId>.",
     .operation_id = "getJob",
     .params = &id_params_s,
     .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{200, "The job", &job_s},
                                                  {404, "No such job in the tenant", NULL},
                                                  {0}}},
    {.method = HTTP_GET,
     .path = "/admin/jobs/queues",
     .handler = list_queues,
     .tag = "Admin",
     .summary = "List job queues",
     .description = "Every queue with its number of jobs in each state. Global admins only.",
     .operation_id = "adminListJobQueues",
     .auth = ROUTE_AUTH,
     .permission = ADMIN_PERMISSION,
     .responses = (const struct route_response[]){{200, "Queues", &queue_list_s}, {0}}},
    {.method = HTTP_GET,
     .path = "/admin/jobs/failed",
     .handler = list_failed,
     .tag = "Admin",
     .summary = "List failed jobs",
     .description = "Jobs that used up their attempts or failed for good (the dead letters), "
                    "most recent first, across tenants. Global admins only.",
     .operation_id = "adminListFailedJobs",
     .query = &failed_query_s,
     .auth = ROUTE_AUTH,
     .permission = ADMIN_PERMISSION,
     .responses = (const struct route_response[]){{200, "Failed jobs", &job_list_s}, {0}}},
    {.method = HTTP_GET,
     .path = "/admin/jobs/:id",
     .handler = admin_get_job,
     .tag = "Admin",
     .summary = "Get any job",
     .description = "A job of any tenant, or a system job. Global admins only.",
     .operation_id = "adminGetJob",
     .params = &id_params_s,
     .auth = ROUTE_AUTH,
     .permission = ADMIN_PERMISSION,
     .responses = (const struct route_response[]){{200, "The job", &job_s},
                                                  {404, "No such job", NULL},
                                                  {0}}},
    {.method = HTTP_POST,
     .path = "/admin/jobs/:id/retry",
     .handler = retry_job,
     .tag = "Admin",
     .summary = "Retry a job",
     .description = "Moves a failed or cancelled job back to the queue with a fresh set of "
                    "attempts. Audited as admin.job_retry. Global admins only.",
     .operation_id = "adminRetryJob",
     .params = &id_params_s,
     .auth = ROUTE_AUTH,
     .permission = ADMIN_PERMISSION,
     .responses = (const struct route_response[]){{200, "The job, waiting again", &job_s},
                                                  {404, "No such job", NULL},
                                                  {409, "The job is not failed or cancelled", NULL},
                                                  {0}}},
    {.method = HTTP_POST,
     .path = "/admin/jobs/:id/cancel",
     .handler = cancel_job,
     .tag = "Admin",
     .summary = "Cancel a job",
     .description = "A waiting or delayed job is cancelled at once; a running one is asked to "
                    "stop (cancelRequested) and ends cancelled when its worker notices, within "
                    "a heartbeat. Audited as admin.job_cancel. Global admins only.",
     .operation_id = "adminCancelJob",
     .params = &id_params_s,
     .auth = ROUTE_AUTH,
     .permission = ADMIN_PERMISSION,
     .responses = (const struct route_response[]){{200, "The job", &job_s},
                                                  {404, "No such job", NULL},
                                                  {409, "The job has already finished", NULL},
                                                  {0}}},
};

const struct route_group jobs_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "Background jobs: their state and progress.",
};
