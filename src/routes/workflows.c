/* workflows.c — see workflows.h. */
#include "lib/common.h"

#include <sodium.h>

#include "http/app.h"
#include "http/pagination.h"
#include "jobs/queue.h"
#include "lib/jsonx.h"
#include "lib/token.h"
#include "lib/uuid.h"
#include "repos/workflows.h"
#include "routes/schemas.h"
#include "routes/workflows.h"
#include "services/audit.h"
#include "services/workflow.h"

#define IDEMPOTENCY_KEY_MAX 255

/* ---- schemas ------------------------------------------------------------------------------- */

/* clang-format off */
#define WORKFLOW_PROPS                                                                             \
    {"id", &schemas_uuid, true}, {"tenantId", &schemas_uuid, true}, {"name", &schemas_str, true},  \
    {"description", &schemas_nullable_str, true}, {"version", &schemas_int, true},                 \
    {"enabled", &schemas_bool, true}, {"trigger", &workflow_trigger_schema, true},                 \
    {"steps", &workflow_steps_schema, true}, {"createdBy", &schemas_nullable_uuid, true},          \
    {"createdAt", &schemas_datetime, true}, {"updatedAt", &schemas_datetime, true},                \
    {"hasWebhookToken", &schemas_bool, true}, {"nextRunAt", &schemas_nullable_datetime, true}
/* clang-format on */

static const struct schema workflow_s = {
    .type = SCHEMA_OBJECT,
    .ref = "Workflow",
    .props = (const struct schema_prop[]){WORKFLOW_PROPS, {NULL}}};

static const struct schema token_s = {
    .type = SCHEMA_STRING, .description = "Shown once: only its hash is stored"};
static const struct schema secret_s = {
    .type = SCHEMA_STRING,
    .description = "Shown once: signs webhook_event deliveries (X-Zygo-Signature)"};

static const struct schema workflow_created_s = {
    .type = SCHEMA_OBJECT,
    .ref = "WorkflowCreated",
    .description = "The workflow, with its secrets this one time",
    .props = (const struct schema_prop[]){WORKFLOW_PROPS,
                                          {"signingSecret", &secret_s, false},
                                          {"webhookToken", &token_s, false},
                                          {NULL}}};

static const struct schema workflow_list_s = {
    .type = SCHEMA_OBJECT,
    .ref = "WorkflowList",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &workflow_s}, true},
        {"pagination", &pagination_schema, true},
        {NULL}}};

static const struct schema version_s = {
    .type = SCHEMA_OBJECT,
    .ref = "WorkflowVersion",
    .props = (const struct schema_prop[]){{"workflowId", &schemas_uuid, true},
                                          {"version", &schemas_int, true},
                                          {"steps", &workflow_steps_schema, true},
                                          {"trigger", &workflow_trigger_schema, true},
                                          {"createdBy", &schemas_nullable_uuid, true},
                                          {"createdAt", &schemas_datetime, true},
                                          {NULL}}};

static const struct schema name_s = {
    .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 100};
static const struct schema description_s = {
    .type = SCHEMA_STRING, .nullable = true, .has_max = true, .max = 1000};

static const struct schema create_s = {
    .type = SCHEMA_OBJECT,
    .ref = "WorkflowCreate",
    .props = (const struct schema_prop[]){
        {"name", &name_s, true},
        {"description", &description_s, false},
        {"enabled", &(const struct schema){.type = SCHEMA_BOOLEAN, .default_json = "true"},
         false},
        {"trigger", &workflow_trigger_schema, false},
        {"steps", &workflow_steps_schema, true},
        {NULL}}};

static const struct schema update_s = {
    .type = SCHEMA_OBJECT,
    .ref = "WorkflowUpdate",
    .description = "Changing steps or trigger makes a new version; executions keep theirs.",
    .props = (const struct schema_prop[]){{"name", &name_s, false},
                                          {"description", &description_s, false},
                                          {"enabled", &schemas_bool, false},
                                          {"trigger", &workflow_trigger_schema, false},
                                          {"steps", &workflow_steps_schema, false},
                                          {NULL}}};

static const struct schema input_body_s = {
    .type = SCHEMA_OBJECT,
    .ref = "WorkflowExecute",
    .props = (const struct schema_prop[]){
        {"input",
         &(const struct schema){.type = SCHEMA_OBJECT,
                                .allow_unknown = true,
                                .description = "Available to steps as {{input.…}}"},
         false},
        {NULL}}};

static const struct schema trigger_body_s = {
    .type = SCHEMA_OBJECT,
    .allow_unknown = true,
    .description = "Any JSON object: the execution's input"};

static const struct schema started_s = {
    .type = SCHEMA_OBJECT,
    .ref = "ExecutionStarted",
    .props = (const struct schema_prop[]){{"executionId", &schemas_uuid, true},
                                          {"workflowId", &schemas_uuid, true},
                                          {"status", &schemas_str, true},
                                          {NULL}}};

static const char *const exec_statuses[] = {"queued", "running", "succeeded", "failed",
                                            "cancelled", NULL};
static const char *const step_statuses[] = {"pending", "running", "succeeded", "failed",
                                            "cancelled", NULL};

/* clang-format off */
#define EXECUTION_PROPS                                                                            \
    {"id", &schemas_uuid, true}, {"workflowId", &schemas_uuid, true},                              \
    {"tenantId", &schemas_uuid, true}, {"version", &schemas_int, true},                            \
    {"status", &(const struct schema){.type = SCHEMA_STRING, .enum_values = exec_statuses}, true}, \
    {"trigger", &schemas_str, true}, {"input", &schemas_any, true},                                \
    {"output", &schemas_any, true}, {"error", &schemas_nullable_str, true},                        \
    {"idempotencyKey", &schemas_nullable_str, true}, {"jobId", &schemas_nullable_str, true},       \
    {"triggeredBy", &schemas_nullable_uuid, true}, {"lastSeq", &schemas_int, true},                \
    {"createdAt", &schemas_datetime, true}, {"startedAt", &schemas_nullable_datetime, true},       \
    {"finishedAt", &schemas_nullable_datetime, true}, {"updatedAt", &schemas_datetime, true}
/* clang-format on */

static const struct schema execution_s = {
    .type = SCHEMA_OBJECT,
    .ref = "Execution",
    .props = (const struct schema_prop[]){EXECUTION_PROPS, {NULL}}};

static const struct schema exec_step_s = {
    .type = SCHEMA_OBJECT,
    .ref = "ExecutionStep",
    .props = (const struct schema_prop[]){
        {"index", &schemas_int, true},
        {"name", &schemas_str, true},
        {"type", &schemas_str, true},
        {"status", &(const struct schema){.type = SCHEMA_STRING, .enum_values = step_statuses},
         true},
        {"attempts", &schemas_int, true},
        {"output", &schemas_any, true},
        {"error", &schemas_nullable_str, true},
        {"startedAt", &schemas_nullable_datetime, true},
        {"finishedAt", &schemas_nullable_datetime, true},
        {NULL}}};

static const struct schema event_s = {
    .type = SCHEMA_OBJECT,
    .ref = "ExecutionEvent",
    .description = "One entry of the execution's log, as the WebSocket room "
                   "tenant:<tenantId>:execution:<id> carries it; seq orders and identifies it.",
    .props = (const struct schema_prop[]){
        {"type",
         &(const struct schema){.type = SCHEMA_STRING,
                                .enum_values =
                                    (const char *const[]){"execution.status", "execution.step",
                                                          "execution.log", NULL}},
         true},
        {"executionId", &schemas_uuid, true},
        {"seq", &schemas_int, true},
        {"time", &schemas_datetime, true},
        {"stepIndex", &schemas_int, false},
        {"status", &schemas_str, false},
        {"level", &schemas_str, false},
        {"message", &schemas_str, false},
        {"attempt", &schemas_int, false},
        {NULL}}};

static const struct schema execution_detail_s = {
    .type = SCHEMA_OBJECT,
    .ref = "ExecutionDetail",
    .props = (const struct schema_prop[]){
        EXECUTION_PROPS,
        {"steps", &(const struct schema){.type = SCHEMA_ARRAY, .items = &exec_step_s}, true},
        {"logs",
         &(const struct schema){.type = SCHEMA_ARRAY,
                                .items = &event_s,
                                .description = "The first 1000 events; page on with "
                                               "GET /executions/{id}/logs?after=<seq>"},
         true},
        {NULL}}};

static const struct schema execution_list_s = {
    .type = SCHEMA_OBJECT,
    .ref = "ExecutionList",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &execution_s}, true},
        {"pagination", &pagination_schema, true},
        {NULL}}};

static const struct schema events_s = {
    .type = SCHEMA_OBJECT,
    .ref = "ExecutionEvents",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &event_s}, true},
        {"lastSeq", &schemas_int, true},
        {NULL}}};

static const struct schema token_body_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"webhookToken", &token_s, true}, {NULL}}};
static const struct schema secret_body_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"signingSecret", &secret_s, true}, {NULL}}};

static const struct schema version_params_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"id", &schemas_uuid, true},
                                          {"version",
                                           &(const struct schema){.type = SCHEMA_INTEGER,
                                                                  .coerce = true,
                                                                  .has_min = true,
                                                                  .min = 1,
                                                                  .has_max = true,
                                                                  .max = 2147483647},
                                           true},
                                          {NULL}}};

static const struct schema list_query_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"search", &(const struct schema){.type = SCHEMA_STRING, .has_max = true, .max = 100},
         false},
        {"page", &pagination_page_schema, false},
        {"limit", &pagination_limit_schema, false},
        {NULL}}};

static const struct schema logs_query_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"after",
         &(const struct schema){.type = SCHEMA_INTEGER,
                                .coerce = true,
                                .has_min = true,
                                .min = 0,
                                .default_json = "0",
                                .description = "Only events with a greater seq"},
         false},
        {"limit",
         &(const struct schema){.type = SCHEMA_INTEGER,
                                .coerce = true,
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = 1000,
                                .default_json = "500"},
         false},
        {NULL}}};

/* ---- helpers ------------------------------------------------------------------------------- */

static const char *param(struct ctx *c, const char *name)
{
    return json_string_value(json_object_get(c->path_params, name));
}

static int fail_issues(struct ctx *c, const struct schema_issues *is)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < is->n; i++)
        json_array_append_new(arr, json_pack("{s:o, s:o, s:s}", "path", jx_str(is->v[i].path),
                                             "message", jx_str(is->v[i].message), "code",
                                             is->v[i].code));
    return ctx_fail_details(c, ZY_E_VALIDATION, 400, json_pack("{s:o}", "issues", arr),
                            "Request validation failed");
}

static void audit(struct ctx *c, struct db_conn *db, const char *action, const char *type,
                  const char *id)
{
    struct audit_entry e = {.tenant_id = c->tenant_id,
                            .actor_id = c->user ? c->user->id : NULL,
                            .action = action,
                            .resource_type = type,
                            .resource_id = id};
    audit_request(c, db, &e);
}

static int not_found(struct ctx *c, const char *what, const char *id)
{
    return ctx_fail(c, ZY_E_NOT_FOUND, "%s with ID %s not found", what, id);
}

/* The workflow as GET shows it, plus the secrets in `extra` (stolen, may be NULL). */
static int send_workflow(struct ctx *c, struct db_conn *db, const char *id, int status,
                         json_t *extra)
{
    bool failed;
    json_t *w = workflows_find(db, c->tenant_id, id, &failed);
    if (!w) {
        json_decref(extra);
        return failed ? ctx_fail_db(c, db, NULL) : not_found(c, "Workflow", id);
    }
    if (extra)
        json_object_update(w, extra);
    json_decref(extra);
    ctx_json(c, status, w);
    return 0;
}

/* ---- workflows ------------------------------------------------------------------------------ */

static int create_tx(struct ctx *c, struct db_conn *db)
{
    json_t *trigger = json_object_get(c->body, "trigger");
    trigger = trigger ? json_deep_copy(trigger) : json_pack("{s:s}", "type", "manual");
    struct schema_issues is;
    schema_issues_init(&is, c->arena);
    json_t *steps;
    int64_t next_fire;
    if (workflow_validate(json_object_get(c->body, "steps"), trigger, jobs_now_ms(), &is, &steps,
                          &next_fire) < 0) {
        json_decref(trigger);
        return fail_issues(c, &is);
    }
    ctx_keep(c, trigger);
    ctx_keep(c, steps);
    char id[37], token[64] = "", hash[65] = "", secret[64];
    char *sealed = NULL;
    uuid_v7(id);
    const char *type = json_string_value(json_object_get(trigger, "type"));
    if (strcmp(type, "webhook") == 0)
        workflow_new_token(token, hash);
    if (workflow_new_signing_secret(app_keyring(c->app), id, secret, &sealed) < 0)
        return ctx_fail(c, ZY_E_INTERNAL, "sealing the signing secret failed");
    char *steps_json = jx_dump(steps, NULL), *trigger_json = jx_dump(trigger, NULL);
    struct workflow_new w = {.id = id,
                             .tenant_id = c->tenant_id,
                             .name = json_string_value(json_object_get(c->body, "name")),
                             .description =
                                 json_string_value(json_object_get(c->body, "description")),
                             .enabled = json_is_true(json_object_get(c->body, "enabled")),
                             .steps_json = steps_json,
                             .trigger_json = trigger_json,
                             .trigger_type = type,
                             .next_fire_at = next_fire,
                             .webhook_token_hash = hash[0] ? hash : NULL,
                             .signing_secret = sealed,
                             .created_by = c->user->id};
    int rc = workflows_create(db, &w);
    free(steps_json);
    free(trigger_json);
    free(sealed);
    if (rc < 0)
        return ctx_fail_db(c, db, "A workflow with this name already exists");
    audit(c, db, "workflow.create", "workflow", id);
    json_t *extra = json_pack("{s:s}", "signingSecret", secret);
    if (token[0])
        json_object_set_new(extra, "webhookToken", json_string(token));
    sodium_memzero(secret, sizeof(secret));
    return send_workflow(c, db, id, 201, extra);
}

static int update_tx(struct ctx *c, struct db_conn *db)
{
    const char *id = param(c, "id");
    bool failed;
    json_t *cur = ctx_keep(c, workflows_find(db, c->tenant_id, id, &failed));
    if (!cur)
        return failed ? ctx_fail_db(c, db, NULL) : not_found(c, "Workflow", id);
    char now[48], token[64] = "", hash[65] = "";
    zy_iso_now(now);
    struct workflow_change ch = {.enabled = -1, .now = now, .updated_by = c->user->id};
    json_t *name = json_object_get(c->body, "name"), *desc = json_object_get(c->body, "description");
    json_t *enabled = json_object_get(c->body, "enabled");
    ch.name = json_string_value(name);
    if (desc) {
        ch.description = json_string_value(desc);
        ch.clear_description = json_is_null(desc);
    }
    if (enabled)
        ch.enabled = json_is_true(enabled);
    json_t *steps_in = json_object_get(c->body, "steps"), *trig_in = json_object_get(c->body, "trigger");
    json_t *trigger = ctx_keep(c, json_deep_copy(trig_in ? trig_in : json_object_get(cur, "trigger")));
    const char *type = json_string_value(json_object_get(trigger, "type"));
    char *steps_json = NULL, *trigger_json = NULL;
    if (steps_in || trig_in) {
        struct schema_issues is;
        schema_issues_init(&is, c->arena);
        json_t *steps;
        int64_t next_fire;
        if (workflow_validate(steps_in ? steps_in : json_object_get(cur, "steps"), trigger,
                              jobs_now_ms(), &is, &steps, &next_fire) < 0)
            return fail_issues(c, &is);
        steps_json = jx_dump(steps, NULL);
        json_decref(steps);
        trigger_json = jx_dump(trigger, NULL);
        ch.steps_json = steps_json;
        ch.trigger_json = trigger_json;
        ch.trigger_type = type;
        ch.set_next_fire = true;
        ch.next_fire_at = next_fire;
        if (strcmp(type, "webhook") == 0 && !json_is_true(json_object_get(cur, "hasWebhookToken"))) {
            workflow_new_token(token, hash);
            ch.webhook_token_hash = hash;
        }
    } else if (ch.enabled == 1 && strcmp(type, "schedule") == 0) {
        /* enabled again: the schedule starts from now, not from slots missed while off */
        ch.set_next_fire = true;
        ch.next_fire_at = workflow_next_fire(trigger, jobs_now_ms());
    }
    int rc = workflows_update(db, c->tenant_id, id, &ch);
    free(steps_json);
    free(trigger_json);
    if (rc < 0)
        return ctx_fail_db(c, db, "A workflow with this name already exists");
    if (rc == 0)
        return not_found(c, "Workflow", id);
    audit(c, db, "workflow.update", "workflow", id);
    return send_workflow(c, db, id, 200,
                         token[0] ? json_pack("{s:s}", "webhookToken", token) : NULL);
}

static int delete_tx(struct ctx *c, struct db_conn *db)
{
    const char *id = param(c, "id");
    char now[48];
    zy_iso_now(now);
    int rc = workflows_soft_delete(db, c->tenant_id, id, now);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    if (rc == 0)
        return not_found(c, "Workflow", id);
    audit(c, db, "workflow.delete", "workflow", id);
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

static int rotate_token_tx(struct ctx *c, struct db_conn *db)
{
    const char *id = param(c, "id");
    char token[64], hash[65], now[48];
    zy_iso_now(now);
    workflow_new_token(token, hash);
    int rc = workflows_set_webhook_token(db, c->tenant_id, id, hash, now);
    if (rc <= 0)
        return rc < 0 ? ctx_fail_db(c, db, NULL) : not_found(c, "Workflow", id);
    audit(c, db, "workflow.webhook_token_rotate", "workflow", id);
    ctx_json(c, 200, json_pack("{s:s}", "webhookToken", token));
    return 0;
}

static int rotate_secret_tx(struct ctx *c, struct db_conn *db)
{
    const char *id = param(c, "id");
    char secret[64], now[48], wid[37];
    char *sealed = NULL;
    zy_iso_now(now);
    if (!uuid_normalize(id, wid))
        return not_found(c, "Workflow", id);
    if (workflow_new_signing_secret(app_keyring(c->app), wid, secret, &sealed) < 0)
        return ctx_fail(c, ZY_E_INTERNAL, "sealing the signing secret failed");
    int rc = workflows_set_signing_secret(db, c->tenant_id, wid, sealed, now);
    free(sealed);
    if (rc <= 0)
        return rc < 0 ? ctx_fail_db(c, db, NULL) : not_found(c, "Workflow", id);
    audit(c, db, "workflow.signing_secret_rotate", "workflow", id);
    ctx_json(c, 200, json_pack("{s:s}", "signingSecret", secret));
    sodium_memzero(secret, sizeof(secret));
    return 0;
}

static int list_workflows(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    struct page pg;
    pagination_from_query(c, &pg);
    long long total;
    json_t *data = workflows_list(db, c->tenant_id,
                                  json_string_value(json_object_get(c->query, "search")),
                                  pg.limit, pg.offset, &total);
    if (!data)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, pagination_envelope(data, &pg, total));
    return 0;
}

static int get_workflow(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    return db ? send_workflow(c, db, param(c, "id"), 200, NULL) : -1;
}

static int get_version(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    bool failed;
    json_int_t v = json_integer_value(json_object_get(c->path_params, "version"));
    json_t *o = workflows_version_find(db, c->tenant_id, param(c, "id"), v, &failed);
    if (!o)
        return failed ? ctx_fail_db(c, db, NULL)
                      : ctx_fail(c, ZY_E_NOT_FOUND, "Version %lld of workflow %s not found",
                                 (long long)v, param(c, "id"));
    ctx_json(c, 200, o);
    return 0;
}

/* ---- starting executions -------------------------------------------------------------------- */

struct start_req {
    struct workflow_start s;
    char exec_id[37];
    enum workflow_start_result res;
};

static int start_tx(struct ctx *c, struct db_conn *db)
{
    struct start_req *st = c->local;
    st->res = workflow_start(db, &st->s, st->exec_id);
    switch (st->res) {
    case WORKFLOW_STARTED:
        audit(c, db, "workflow.execute", "workflow_execution", st->exec_id);
        return 0;
    case WORKFLOW_START_EXISTING:
        return 0;
    case WORKFLOW_START_NOT_FOUND:
        return not_found(c, "Workflow", st->s.workflow_id);
    case WORKFLOW_START_DISABLED:
        return ctx_fail(c, ZY_E_CONFLICT, "The workflow is disabled");
    case WORKFLOW_START_KEY_REUSED:
        return ctx_fail(c, ZY_E_CONFLICT,
                        "This Idempotency-Key was used for an execution with another input");
    case WORKFLOW_START_DB_ERROR:
        break;
    }
    return ctx_fail_db(c, db, NULL);
}

/* Starts an execution in one transaction, then wakes this process's workers; 202. */
static int start(struct ctx *c, const char *trigger, json_t *input)
{
    const char *key = ctx_header(c, "Idempotency-Key");
    if (key) {
        size_t n = strlen(key);
        bool ok = n >= 1 && n <= IDEMPOTENCY_KEY_MAX;
        for (size_t i = 0; ok && i < n; i++)
            ok = key[i] > 0x20 && key[i] < 0x7f;
        if (!ok)
            return ctx_fail_status(c, 400, "Idempotency-Key must be 1-%d visible ASCII characters",
                                   IDEMPOTENCY_KEY_MAX);
    }
    struct start_req *st = arena_alloc(c->arena, sizeof(*st));
    st->s = (struct workflow_start){.tenant_id = c->tenant_id,
                                    .workflow_id = param(c, "id"),
                                    .trigger = trigger,
                                    .input = input,
                                    .idempotency_key = key,
                                    .triggered_by = c->user ? c->user->id : NULL};
    c->local = st;
    if (ctx_tx(c, start_tx) < 0)
        return -1;
    if (st->res == WORKFLOW_STARTED)
        jobs_wake();
    else
        ctx_set_header(c, "Idempotent-Replayed", "true");
    ctx_json(c, 202,
             json_pack("{s:s, s:s, s:s}", "executionId", st->exec_id, "workflowId",
                       st->s.workflow_id, "status", "queued"));
    return 0;
}

static int execute(struct ctx *c)
{
    return start(c, "manual", json_object_get(c->body, "input"));
}

/* The public webhook trigger: the workflow's token in X-Webhook-Token (a header, so it never
 * lands in access logs), compared by hash in constant time. Every refusal is the same 404, so
 * the endpoint tells nothing about which workflows exist. */
static int trigger_hook(struct ctx *c)
{
    const char *token = ctx_header(c, "X-Webhook-Token");
    const char *id = param(c, "id");
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    struct workflow_ref ref;
    /* the tenant is not known yet: found with the bypass, which is switched off again */
    if (db_set_rls_bypass(db, true) < 0)
        return ctx_fail_db(c, db, NULL);
    int rc = workflows_load_ref(db, NULL, id, &ref);
    db_set_rls_bypass(db, false);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    char hash[TOKEN_HASH_LEN + 1];
    token_hash(token ? token : "", hash);
    bool ok = rc == 1 && strcmp(ref.trigger_type, "webhook") == 0 && token &&
              strlen(ref.webhook_token_hash) == TOKEN_HASH_LEN &&
              token_equal(hash, ref.webhook_token_hash);
    char tenant[37];
    snprintf(tenant, sizeof(tenant), "%s", ref.tenant_id);
    workflow_ref_free(&ref);
    if (!ok)
        return not_found(c, "Workflow", id);
    c->tenant_id = arena_strdup(c->arena, tenant);
    return start(c, "webhook", c->body);
}

/* ---- executions ----------------------------------------------------------------------------- */

static int list_executions(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    const char *id = param(c, "id");
    bool failed;
    json_t *w = workflows_find(db, c->tenant_id, id, &failed);
    if (!w)
        return failed ? ctx_fail_db(c, db, NULL) : not_found(c, "Workflow", id);
    json_decref(w);
    struct page pg;
    pagination_from_query(c, &pg);
    long long total;
    json_t *data = workflows_exec_list(db, c->tenant_id, id, pg.limit, pg.offset, &total);
    if (!data)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, pagination_envelope(data, &pg, total));
    return 0;
}

static int send_execution(struct ctx *c, struct db_conn *db, const char *id)
{
    bool failed;
    json_t *e = workflows_exec_find(db, c->tenant_id, id, true, &failed);
    if (!e)
        return failed ? ctx_fail_db(c, db, NULL) : not_found(c, "Execution", id);
    ctx_json(c, 200, e);
    return 0;
}

static int get_execution(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    return db ? send_execution(c, db, param(c, "id")) : -1;
}

static int get_logs(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    const char *id = param(c, "id");
    long long last;
    json_t *data = workflows_exec_events(
        db, c->tenant_id, id, json_integer_value(json_object_get(c->query, "after")),
        json_integer_value(json_object_get(c->query, "limit")), &last);
    if (!data)
        return ctx_fail_db(c, db, NULL);
    if (last < 0) {
        json_decref(data);
        return not_found(c, "Execution", id);
    }
    ctx_json(c, 200, json_pack("{s:o, s:I}", "data", data, "lastSeq", (json_int_t)last));
    return 0;
}

static int cancel(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    const char *id = param(c, "id");
    char status[16];
    /* its own transaction: the events are published after the commit */
    int rc = workflow_cancel(db, app_realtime(c->app), c->tenant_id, id, status);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    if (rc == 0)
        return not_found(c, "Execution", id);
    if (rc == 2)
        return ctx_fail(c, ZY_E_CONFLICT, "The execution already %s",
                        strcmp(status, "succeeded") == 0 ? "succeeded"
                        : strcmp(status, "failed") == 0  ? "failed"
                                                         : "was cancelled");
    if (db_begin(db) == 0) {
        audit(c, db, "workflow.cancel", "workflow_execution", id);
        db_commit(db);
    }
    return send_execution(c, db, id);
}

/* ---- the route table ------------------------------------------------------------------------ */

static const char *const view_perms[] = {"canViewWorkflows", "canManageWorkflows", NULL};

static const struct route routes[] = {
    {.method = HTTP_GET,
     .path = "/workflows",
     .handler = list_workflows,
     .tag = "Workflows",
     .summary = "List workflows",
     .operation_id = "listWorkflows",
     .query = &list_query_s,
     .auth = ROUTE_AUTH,
     .permission_any = view_perms,
     .responses =
         (const struct route_response[]){{200, "A page of workflows", &workflow_list_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/workflows",
     .tx = create_tx,
     .tag = "Workflows",
     .summary = "Create a workflow",
     .description = "Version 1 of a new workflow. The answer carries the signing secret of its "
                    "webhook_event deliveries and, for a webhook trigger, the trigger's token: "
                    "both are shown only here (and when rotated).",
     .operation_id = "createWorkflow",
     .body = &create_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageWorkflows",
     .responses = (const struct route_response[]){{201, "Created", &workflow_created_s},
                                                  {409, "Name taken in the tenant", NULL},
                                                  {0}}},
    {.method = HTTP_GET,
     .path = "/workflows/:id",
     .handler = get_workflow,
     .tag = "Workflows",
     .summary = "Get a workflow",
     .operation_id = "getWorkflow",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission_any = view_perms,
     .responses = (const struct route_response[]){{200, "The workflow", &workflow_s}, {0}}},
    {.method = HTTP_PATCH,
     .path = "/workflows/:id",
     .tx = update_tx,
     .tag = "Workflows",
     .summary = "Update a workflow",
     .description = "New steps or a new trigger make a new version; queued and running "
                    "executions keep the version they started with.",
     .operation_id = "updateWorkflow",
     .params = &schemas_id_params,
     .body = &update_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageWorkflows",
     .responses = (const struct route_response[]){{200, "Updated", &workflow_created_s},
                                                  {409, "Name taken in the tenant", NULL},
                                                  {0}}},
    {.method = HTTP_DELETE,
     .path = "/workflows/:id",
     .tx = delete_tx,
     .tag = "Workflows",
     .summary = "Delete a workflow",
     .description = "Soft delete: its schedule and webhook stop; executions stay readable.",
     .operation_id = "deleteWorkflow",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = "canManageWorkflows",
     .responses = (const struct route_response[]){{204, "Deleted", NULL}, {0}}},
    {.method = HTTP_GET,
     .path = "/workflows/:id/versions/:version",
     .handler = get_version,
     .tag = "Workflows",
     .summary = "Get a version of a workflow",
     .description = "The steps and trigger an execution of that version ran with.",
     .operation_id = "getWorkflowVersion",
     .params = &version_params_s,
     .auth = ROUTE_AUTH,
     .permission_any = view_perms,
     .responses = (const struct route_response[]){{200, "The version", &version_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/workflows/:id/webhook-token",
     .tx = rotate_token_tx,
     .tag = "Workflows",
     .summary = "Rotate the webhook trigger token",
     .description = "A new token for POST /workflows/{id}/trigger; the old one stops working.",
     .operation_id = "rotateWorkflowWebhookToken",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = "canManageWorkflows",
     .responses = (const struct route_response[]){{200, "The new token", &token_body_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/workflows/:id/signing-secret",
     .tx = rotate_secret_tx,
     .tag = "Workflows",
     .summary = "Rotate the signing secret",
     .description = "A new secret for the X-Zygo-Signature of webhook_event deliveries.",
     .operation_id = "rotateWorkflowSigningSecret",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = "canManageWorkflows",
     .responses = (const struct route_response[]){{200, "The new secret", &secret_body_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/workflows/:id/execute",
     .handler = execute,
     .tag = "Workflows",
     .summary = "Run a workflow",
     .description = "Queues an execution of the current version (its job is enqueued in the "
                    "same transaction) and answers at once. An Idempotency-Key header (1-255 "
                    "visible ASCII characters) makes a repeated request answer with the first "
                    "one's execution (Idempotent-Replayed: true); the same key with another "
                    "input is a conflict. Follow the execution on the WebSocket room "
                    "tenant:<tenantId>:execution:<executionId> (see docs/workflows.md).",
     .operation_id = "executeWorkflow",
     .params = &schemas_id_params,
     .body = &input_body_s,
     .auth = ROUTE_AUTH,
     .permission = "canExecuteWorkflows",
     .responses = (const struct route_response[]){{202, "Queued", &started_s},
                                                  {409, "Disabled, or key reused", NULL},
                                                  {0}}},
    {.method = HTTP_POST,
     .path = "/workflows/:id/trigger",
     .handler = trigger_hook,
     .tag = "Workflows",
     .summary = "Webhook trigger",
     .description = "Public: starts an execution of a workflow whose trigger is webhook, with "
                    "the request body as its input. The token goes in the X-Webhook-Token "
                    "header; an unknown workflow, another trigger type and a wrong token all "
                    "answer 404. Idempotency-Key works as for /execute.",
     .operation_id = "triggerWorkflow",
     .params = &schemas_id_params,
     .body = &trigger_body_s,
     .auth = ROUTE_PUBLIC,
     .responses = (const struct route_response[]){{202, "Queued", &started_s},
                                                  {404, "No such webhook", NULL},
                                                  {409, "Disabled, or key reused", NULL},
                                                  {0}}},
    {.method = HTTP_GET,
     .path = "/workflows/:id/executions",
     .handler = list_executions,
     .tag = "Workflows",
     .summary = "List a workflow's executions",
     .operation_id = "listWorkflowExecutions",
     .params = &schemas_id_params,
     .query = &schemas_page_query,
     .auth = ROUTE_AUTH,
     .permission_any = view_perms,
     .responses =
         (const struct route_response[]){
             {200, "A page of executions, newest first", &execution_list_s}, {0}}},
    {.method = HTTP_GET,
     .path = "/executions/:id",
     .handler = get_execution,
     .tag = "Workflows",
     .summary = "Get an execution",
     .description = "Status, each step's status, attempts, output and error, timings, and the "
                    "event log.",
     .operation_id = "getExecution",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission_any = view_perms,
     .responses =
         (const struct route_response[]){{200, "The execution", &execution_detail_s}, {0}}},
    {.method = HTTP_GET,
     .path = "/executions/:id/logs",
     .handler = get_logs,
     .tag = "Workflows",
     .summary = "An execution's event log",
     .description = "Events with seq greater than `after`, oldest first. To follow a running "
                    "execution without gaps: subscribe to its WebSocket room first, then read "
                    "this, then drop live events whose seq you already have.",
     .operation_id = "getExecutionLogs",
     .params = &schemas_id_params,
     .query = &logs_query_s,
     .auth = ROUTE_AUTH,
     .permission_any = view_perms,
     .responses = (const struct route_response[]){{200, "Events", &events_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/executions/:id/cancel",
     .handler = cancel,
     .tag = "Workflows",
     .summary = "Cancel an execution",
     .description = "A queued execution never starts; a running one stops its current step.",
     .operation_id = "cancelExecution",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = "canExecuteWorkflows",
     .responses = (const struct route_response[]){{200, "Cancelled", &execution_detail_s},
                                                  {409, "Already finished", NULL},
                                                  {0}}},
};

const struct route_group workflows_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "Workflows: step definitions with versions, and their executions.",
};
