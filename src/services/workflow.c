/* workflow.c — see workflow.h. */
#include "lib/common.h"

#include <ctype.h>
#include <pthread.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "jobs/notifications.h"
#include "jobs/queue.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/cron.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "lib/secretbox.h"
#include "lib/token.h"
#include "lib/uuid.h"
#include "repos/workflows.h"
#include "services/http_fetch.h"
#include "services/realtime.h"
#include "services/workflow.h"
#include "ws/rooms.h"

#define STEP_TIMEOUT_DEFAULT_MS 30000
#define STEP_TIMEOUT_MAX_MS 3600000
#define HTTP_RESPONSE_MAX (256u * 1024) /* a step's response body is kept as its output */
#define TEMPLATE_MAX (64u * 1024)       /* a rendered string */
#define JOB_BUDGET_MAX_MS (24LL * 3600 * 1000)
#define SIGNING_AD "workflows:signing_secret:"

/* ---- definitions: schemas ----------------------------------------------------------------- */

static const struct schema backoff_s = {
    .type = SCHEMA_OBJECT,
    .ref = "WorkflowBackoff",
    .description = "Wait before a retry: fixed delayMs, or delayMs·2^(attempt-1) (exponential).",
    .default_json = "{}",
    .props = (const struct schema_prop[]){
        {"type",
         &(const struct schema){.type = SCHEMA_STRING,
                                .default_json = "\"exponential\"",
                                .enum_values = (const char *const[]){"fixed", "exponential", NULL}},
         false},
        {"delayMs",
         &(const struct schema){.type = SCHEMA_INTEGER,
                                .has_min = true,
                                .min = 0,
                                .has_max = true,
                                .max = 600000,
                                .default_json = "1000"},
         false},
        {NULL}}};

static const struct schema retry_s = {
    .type = SCHEMA_OBJECT,
    .ref = "WorkflowRetry",
    .description = "How often a failing step is tried (attempts 1 = no retry).",
    .default_json = "{}",
    .props = (const struct schema_prop[]){
        {"attempts",
         &(const struct schema){.type = SCHEMA_INTEGER,
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = 10,
                                .default_json = "1"},
         false},
        {"backoff", &backoff_s, false},
        {NULL}}};

static const struct schema step_s = {
    .type = SCHEMA_OBJECT,
    .ref = "WorkflowStep",
    .description = "One step: type is http_request, delay, notify or webhook_event; config "
                   "depends on the type.",
    .props = (const struct schema_prop[]){
        {"name",
         &(const struct schema){.type = SCHEMA_STRING,
                                .description = "Unique in the workflow; letters, digits, _ and -",
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = 100,
                                .example = "\"fetch-orders\""},
         true},
        {"type",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = 32,
                                .example = "\"http_request\""},
         true},
        {"config",
         &(const struct schema){
             .type = SCHEMA_OBJECT, .allow_unknown = true, .default_json = "{}"},
         false},
        {"retry", &retry_s, false},
        {"timeoutMs",
         &(const struct schema){.type = SCHEMA_INTEGER,
                                .description = "Limit of one attempt (default 30000; a delay "
                                               "step's default is its delay plus 5 s)",
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = STEP_TIMEOUT_MAX_MS},
         false},
        {NULL}}};

const struct schema workflow_steps_schema = {
    .type = SCHEMA_ARRAY,
    .has_min = true,
    .min = 1,
    .has_max = true,
    .max = WORKFLOW_MAX_STEPS,
    .items = &step_s,
};

const struct schema workflow_trigger_schema = {
    .type = SCHEMA_OBJECT,
    .ref = "WorkflowTrigger",
    .description = "manual (the default), schedule (cron in timezone, default UTC) or webhook "
                   "(POST /workflows/{id}/trigger with the X-Webhook-Token header).",
    .props = (const struct schema_prop[]){
        {"type",
         &(const struct schema){.type = SCHEMA_STRING,
                                .enum_values =
                                    (const char *const[]){"manual", "schedule", "webhook", NULL}},
         true},
        {"cron",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = 100,
                                .example = "\"0 3 * * mon-fri\""},
         false},
        {"timezone",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = CRON_ZONE_NAME_MAX,
                                .example = "\"Europe/Berlin\""},
         false},
        {NULL}}};

/* The configs of each step type. */
static const struct schema url_s = {
    .type = SCHEMA_STRING, .format = SCHEMA_FMT_URL, .has_max = true, .max = 2048};

static const struct schema http_config_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"method",
         &(const struct schema){.type = SCHEMA_STRING,
                                .default_json = "\"GET\"",
                                .enum_values = (const char *const[]){"GET", "POST", "PUT", "PATCH",
                                                                     "DELETE", "HEAD", NULL}},
         false},
        {"url", &url_s, true},
        {"headers", &(const struct schema){.type = SCHEMA_OBJECT, .allow_unknown = true}, false},
        {"body", &(const struct schema){.type = SCHEMA_ANY}, false},
        {NULL}}};

static const struct schema delay_config_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"ms",
         &(const struct schema){.type = SCHEMA_INTEGER,
                                .has_min = true,
                                .min = 0,
                                .has_max = true,
                                .max = WORKFLOW_MAX_DELAY_MS},
         true},
        {NULL}}};

static const struct schema notify_config_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"subject",
         &(const struct schema){
             .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 200},
         true},
        {"text",
         &(const struct schema){
             .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 10000},
         true},
        {"emails",
         &(const struct schema){.type = SCHEMA_ARRAY,
                                .has_max = true,
                                .max = 20,
                                .items = &(const struct schema){.type = SCHEMA_STRING,
                                                                .format = SCHEMA_FMT_EMAIL,
                                                                .has_max = true,
                                                                .max = 254}},
         false},
        {"userIds",
         &(const struct schema){
             .type = SCHEMA_ARRAY,
             .has_max = true,
             .max = 50,
             .items = &(const struct schema){.type = SCHEMA_STRING, .format = SCHEMA_FMT_UUID}},
         false},
        {NULL}}};

static const struct schema webhook_config_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"url", &url_s, true},
        {"event",
         &(const struct schema){
             .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 100},
         true},
        {"data", &(const struct schema){.type = SCHEMA_ANY}, false},
        {NULL}}};

enum step_kind { KIND_HTTP, KIND_DELAY, KIND_NOTIFY, KIND_WEBHOOK, KIND_UNKNOWN };

static const struct {
    const char *name;
    enum step_kind kind;
    const struct schema *config;
} kinds[] = {
    {"http_request", KIND_HTTP, &http_config_s},
    {"delay", KIND_DELAY, &delay_config_s},
    {"notify", KIND_NOTIFY, &notify_config_s},
    {"webhook_event", KIND_WEBHOOK, &webhook_config_s},
};

static enum step_kind kind_of(const char *name)
{
    for (size_t i = 0; name && i < ARRAY_LEN(kinds); i++)
        if (strcmp(kinds[i].name, name) == 0)
            return kinds[i].kind;
    return KIND_UNKNOWN;
}

/* ---- definitions: checks beyond the schemas ------------------------------------------------ */

static void issuef(struct schema_issues *is, const char *path, const char *code, const char *fmt,
                   ...) ZY_PRINTF(4, 5);
static void issuef(struct schema_issues *is, const char *path, const char *code, const char *fmt,
                   ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    schema_issue_add(is, path, code, msg);
}

/* A URL's templates may only follow its authority: the host is fixed by the definition. */
static bool url_host_fixed(const char *url)
{
    const char *auth = strstr(url, "://");
    if (!auth)
        return true;
    auth += 3;
    size_t n = strcspn(auth, "/?#");
    const char *open = strstr(auth, "{{");
    return !open || open >= auth + n;
}

static bool step_name_ok(const char *s)
{
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-')
            return false;
    return true;
}

/* Validates one step's config against its type; returns the normalised config or NULL. */
static json_t *check_config(json_t *step, size_t i, enum step_kind kind, struct schema_issues *is)
{
    const struct schema *cs = NULL;
    for (size_t k = 0; k < ARRAY_LEN(kinds); k++)
        if (kinds[k].kind == kind)
            cs = kinds[k].config;
    struct schema_issues sub;
    schema_issues_init(&sub, is->arena);
    json_t *cfg = schema_validate(cs, json_object_get(step, "config"), &sub);
    char path[600];
    for (size_t k = 0; k < sub.n; k++) {
        snprintf(path, sizeof(path), "steps.%zu.config%s%s", i, *sub.v[k].path ? "." : "",
                 sub.v[k].path);
        schema_issue_add(is, path, sub.v[k].code, sub.v[k].message);
    }
    if (!cfg)
        return NULL;
    bool ok = true;
    if (kind == KIND_HTTP || kind == KIND_WEBHOOK) {
        const char *url = json_string_value(json_object_get(cfg, "url"));
        if (!url_host_fixed(url)) {
            snprintf(path, sizeof(path), "steps.%zu.config.url", i);
            issuef(is, path, "custom", "Templates may not change the URL's host");
            ok = false;
        }
    }
    if (kind == KIND_HTTP) {
        json_t *h = json_object_get(cfg, "headers");
        const char *name;
        json_t *v;
        if (json_object_size(h) > 32) {
            snprintf(path, sizeof(path), "steps.%zu.config.headers", i);
            issuef(is, path, "too_big", "At most 32 headers");
            ok = false;
        }
        json_object_foreach(h, name, v)
        {
            snprintf(path, sizeof(path), "steps.%zu.config.headers.%.100s", i, name);
            const char *value = json_string_value(v);
            bool bad_name = !*name || strlen(name) > 100;
            for (const char *p = name; *p && !bad_name; p++)
                bad_name = !isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p);
            if (!value || bad_name || strpbrk(value, "\r\n") || strlen(value) > 4096) {
                issuef(is, path, "custom", "Expected a header name with a one-line text value");
                ok = false;
            } else if (zy_strieq("host", name) || zy_strieq("content-length", name) ||
                       zy_strieq("transfer-encoding", name) || zy_strieq("connection", name)) {
                issuef(is, path, "custom", "This header is set by the request itself");
                ok = false;
            }
        }
    }
    if (kind == KIND_NOTIFY && json_array_size(json_object_get(cfg, "emails")) == 0 &&
        json_array_size(json_object_get(cfg, "userIds")) == 0) {
        snprintf(path, sizeof(path), "steps.%zu.config", i);
        issuef(is, path, "custom", "Give emails, userIds or both");
        ok = false;
    }
    if (!ok) {
        json_decref(cfg);
        return NULL;
    }
    return cfg;
}

int64_t workflow_next_fire(json_t *trigger, int64_t after_ms)
{
    struct cron c;
    char err[160];
    const char *tz = json_string_value(json_object_get(trigger, "timezone"));
    if (cron_parse(json_string_value(json_object_get(trigger, "cron")), &c, err, sizeof(err)) < 0)
        return -1;
    const struct cron_zone *z = cron_zone_get(tz ? tz : "UTC", err, sizeof(err));
    if (!z)
        return -1;
    int64_t after_s = after_ms >= 0 ? after_ms / 1000 : (after_ms - 999) / 1000;
    int64_t next = cron_next(&c, z, after_s);
    return next < 0 ? -1 : next * 1000;
}

static void check_trigger(json_t *trigger, int64_t now_ms, struct schema_issues *is,
                          int64_t *next_fire)
{
    *next_fire = -1;
    const char *type = json_string_value(json_object_get(trigger, "type"));
    json_t *cron = json_object_get(trigger, "cron"), *tz = json_object_get(trigger, "timezone");
    if (!type || strcmp(type, "schedule") != 0) {
        if (cron)
            schema_issue_add(is, "trigger.cron", "custom",
                             "cron applies to schedule triggers only");
        if (tz)
            schema_issue_add(is, "trigger.timezone", "custom",
                             "timezone applies to schedule triggers only");
        return;
    }
    if (!cron) {
        schema_issue_add(is, "trigger.cron", "invalid_type", "Required");
        return;
    }
    char err[200];
    struct cron c;
    bool ok = true;
    if (cron_parse(json_string_value(cron), &c, err, sizeof(err)) < 0) {
        issuef(is, "trigger.cron", "custom", "Invalid cron expression: %s", err);
        ok = false;
    }
    if (!tz)
        json_object_set_new(trigger, "timezone", json_string("UTC"));
    else if (!cron_zone_get(json_string_value(tz), err, sizeof(err))) {
        issuef(is, "trigger.timezone", "custom", "Unknown IANA time zone (%s)", err);
        ok = false;
    }
    if (ok && (*next_fire = workflow_next_fire(trigger, now_ms)) < 0)
        schema_issue_add(is, "trigger.cron", "custom",
                         "The schedule never fires in the next five years");
}

int workflow_validate(json_t *steps, json_t *trigger, int64_t now_ms, struct schema_issues *is,
                      json_t **steps_out, int64_t *next_fire_ms)
{
    size_t before = is->n;
    *steps_out = NULL;
    check_trigger(trigger, now_ms, is, next_fire_ms);
    json_t *out = json_array();
    size_t i;
    json_t *step;
    char path[128];
    json_array_foreach(steps, i, step)
    {
        const char *name = json_string_value(json_object_get(step, "name"));
        const char *type = json_string_value(json_object_get(step, "type"));
        snprintf(path, sizeof(path), "steps.%zu.name", i);
        if (!step_name_ok(name))
            issuef(is, path, "invalid_string", "Use letters, digits, _ and - only");
        for (size_t k = 0; k < i; k++)
            if (strcmp(name, json_string_value(json_object_get(json_array_get(steps, k),
                                                               "name"))) == 0) {
                issuef(is, path, "custom", "Step name \"%s\" is used twice", name);
                break;
            }
        snprintf(path, sizeof(path), "steps.%zu.type", i);
        enum step_kind kind = kind_of(type);
        if (strcmp(type, "server_action") == 0) {
            issuef(is, path, "custom",
                   "server_action steps are not available yet: they act on servers of the "
                   "infrastructure module, which this deployment does not have");
            continue;
        }
        if (kind == KIND_UNKNOWN) {
            issuef(is, path, "invalid_enum_value",
                   "Unknown step type '%.40s'; expected http_request, delay, notify or "
                   "webhook_event",
                   type);
            continue;
        }
        json_t *cfg = check_config(step, i, kind, is);
        if (!cfg)
            continue;
        json_t *s = json_deep_copy(step);
        json_object_set_new(s, "config", cfg);
        json_t *timeout = json_object_get(s, "timeoutMs");
        if (kind == KIND_DELAY) {
            json_int_t ms = json_integer_value(json_object_get(cfg, "ms"));
            snprintf(path, sizeof(path), "steps.%zu.timeoutMs", i);
            if (!timeout)
                json_object_set_new(s, "timeoutMs", json_integer(ms + 5000));
            else if (json_integer_value(timeout) < ms)
                issuef(is, path, "too_small", "A delay step's timeout must be at least its delay");
        } else if (!timeout) {
            json_object_set_new(s, "timeoutMs", json_integer(STEP_TIMEOUT_DEFAULT_MS));
        }
        json_array_append_new(out, s);
    }
    if (is->n > before) {
        json_decref(out);
        return -1;
    }
    *steps_out = out;
    return 0;
}

/* ---- secrets ------------------------------------------------------------------------------ */

void workflow_new_token(char token[64], char hash[65])
{
    token_new(token, 64);
    token_hash(token, hash);
}

int workflow_new_signing_secret(const struct secretbox_keyring *kr, const char *workflow_id,
                                char secret[64], char **sealed)
{
    char t[TOKEN_LEN + 1];
    token_new(t, sizeof(t));
    snprintf(secret, 64, "whsec_%s", t);
    char ad[96];
    snprintf(ad, sizeof(ad), SIGNING_AD "%s", workflow_id);
    return secretbox_seal(kr, ad, secret, strlen(secret), sealed) == SECRETBOX_OK ? 0 : -1;
}

/* ---- starting executions ------------------------------------------------------------------ */

/* The most one run of the job may take: every attempt of every step at its timeout, the
 * backoffs between them, and a margin; the job queue stops the run past it. */
static int64_t job_budget_ms(json_t *steps)
{
    int64_t total = 60000;
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        json_t *retry = json_object_get(s, "retry");
        int64_t attempts = json_integer_value(json_object_get(retry, "attempts"));
        int64_t delay = json_integer_value(
            json_object_get(json_object_get(retry, "backoff"), "delayMs"));
        const char *type =
            json_string_value(json_object_get(json_object_get(retry, "backoff"), "type"));
        bool expo = !type || strcmp(type, "exponential") == 0;
        int64_t timeout = json_integer_value(json_object_get(s, "timeoutMs"));
        if (attempts < 1)
            attempts = 1;
        for (int64_t a = 1; a <= attempts && total < JOB_BUDGET_MAX_MS; a++) {
            total += timeout + 5000;
            if (a < attempts)
                total += expo ? delay << ZY_MIN(a - 1, 20) : delay;
        }
    }
    return ZY_MIN(total, JOB_BUDGET_MAX_MS);
}

static enum workflow_start_result existing(struct db_conn *c, const struct workflow_start *s,
                                           char exec_id[37])
{
    char *stored = NULL;
    int rc = workflows_exec_by_key(c, s->tenant_id, s->workflow_id, s->idempotency_key, exec_id,
                                   &stored);
    if (rc <= 0) {
        free(stored);
        return rc < 0 ? WORKFLOW_START_DB_ERROR : WORKFLOW_START_NOT_FOUND;
    }
    json_t *prev = stored ? json_loads(stored, JSON_DECODE_ANY, NULL) : NULL;
    free(stored);
    bool same = (!prev && !s->input) || (prev && s->input && json_equal(prev, s->input));
    json_decref(prev);
    return same ? WORKFLOW_START_EXISTING : WORKFLOW_START_KEY_REUSED;
}

enum workflow_start_result workflow_start(struct db_conn *c, const struct workflow_start *s,
                                          char exec_id[37])
{
    struct workflow_ref ref;
    int rc = workflows_load_ref(c, s->tenant_id, s->workflow_id, &ref);
    if (rc <= 0)
        return rc < 0 ? WORKFLOW_START_DB_ERROR : WORKFLOW_START_NOT_FOUND;
    enum workflow_start_result res;
    if (s->idempotency_key && (res = existing(c, s, exec_id)) != WORKFLOW_START_NOT_FOUND) {
        workflow_ref_free(&ref);
        return res;
    }
    res = WORKFLOW_STARTED;
    if (!ref.enabled) {
        workflow_ref_free(&ref);
        return WORKFLOW_START_DISABLED;
    }
    if (s->execution_id)
        snprintf(exec_id, 37, "%s", s->execution_id);
    else
        uuid_v7(exec_id);
    char *input = s->input ? jx_dump(s->input, NULL) : NULL;
    struct execution_new e = {.id = exec_id,
                              .tenant_id = ref.tenant_id,
                              .workflow_id = ref.id,
                              .version = ref.version,
                              .trigger = s->trigger,
                              .input_json = input,
                              .idempotency_key = s->idempotency_key,
                              .triggered_by = s->triggered_by,
                              .steps_json = ref.steps_json};
    rc = workflows_exec_create(c, &e);
    free(input);
    if (rc == 0) { /* a concurrent request with the same key won */
        workflow_ref_free(&ref);
        res = existing(c, s, exec_id);
        return res == WORKFLOW_START_NOT_FOUND ? WORKFLOW_START_DB_ERROR : res;
    }
    json_t *steps = rc > 0 ? json_loads(ref.steps_json, 0, NULL) : NULL;
    char job_id[JOB_ID_MAX], dedupe[JOB_ID_MAX];
    snprintf(dedupe, sizeof(dedupe), "workflow-execution:%s", exec_id);
    struct job_opts o = {.job_id = dedupe, .timeout_ms = job_budget_ms(steps)};
    json_t *data = json_pack("{s:s, s:s}", "executionId", exec_id, "workflowId", ref.id);
    char *dj = jx_dump(data, NULL);
    json_decref(data);
    json_decref(steps);
    if (rc < 0 ||
        jobs_enqueue(c, "workflow-execution", "workflow-execution", ref.tenant_id, dj, &o,
                     job_id) < 0 ||
        workflows_exec_set_job(c, ref.tenant_id, exec_id, job_id) != 1)
        res = WORKFLOW_START_DB_ERROR;
    free(dj);
    workflow_ref_free(&ref);
    return res;
}

/* ---- events -------------------------------------------------------------------------------- */

/* Events written in one transaction, published after its commit. */
struct batch {
    struct workflow_event ev[WORKFLOW_MAX_STEPS + 4];
    char *msg[WORKFLOW_MAX_STEPS + 4]; /* owned copies of the messages */
    int n;
};

static void batch_clear(struct batch *b)
{
    for (int i = 0; i < b->n; i++)
        free(b->msg[i]);
    b->n = 0;
}

/* Adds an event in the open transaction, guarded by the execution's status. 1, 0 (the
 * execution is not in a guarded status), -1. */
static int batch_add(struct db_conn *c, struct batch *b, const char *tenant_id,
                     const char *exec_id, const char *guard, const char *type, int step,
                     const char *status, const char *level, int attempt, const char *msg)
{
    if (b->n == (int)ARRAY_LEN(b->ev))
        return -1;
    struct workflow_event *ev = &b->ev[b->n];
    *ev = (struct workflow_event){.execution_id = exec_id,
                                  .tenant_id = tenant_id,
                                  .type = type,
                                  .step_index = step,
                                  .status = status,
                                  .level = level,
                                  .attempt = attempt};
    b->msg[b->n] = msg ? xstrdup(msg) : NULL;
    ev->message = b->msg[b->n];
    int rc = workflows_event_begin(c, ev, guard);
    if (rc == 1)
        b->n++;
    else
        free(b->msg[b->n]);
    return rc;
}

static void publish(struct realtime *rt, const struct workflow_event *ev)
{
    if (!rt)
        return;
    char room[128];
    snprintf(room, sizeof(room), "tenant:%s:execution:%s", ev->tenant_id, ev->execution_id);
    json_t *j = workflows_event_json(ev);
    size_t len;
    char *s = jx_dump(j, &len);
    json_decref(j);
    realtime_publish_room(rt, room, s, len);
    free(s);
}

/* Inserts the batch's events, commits, publishes; the batch is emptied either way. 0 or -1
 * (rolled back). */
static int batch_commit(struct db_conn *c, struct batch *b, struct realtime *rt)
{
    int rc = 0;
    for (int i = 0; i < b->n && rc == 0; i++)
        rc = workflows_event_insert(c, &b->ev[i]);
    if (rc == 0)
        rc = db_commit(c);
    else
        db_rollback(c);
    for (int i = 0; rc == 0 && i < b->n; i++)
        publish(rt, &b->ev[i]);
    batch_clear(b);
    return rc;
}

/* ---- the engine ---------------------------------------------------------------------------- */

struct run {
    const struct workflow_env *env;
    const struct workflow_run_opts *o;
    struct db_conn *c;
    const char *tenant;
    const char *exec_id;
    struct workflow_run_state st;
    json_t *steps;   /* the version's steps */
    json_t *input;   /* may be NULL */
    json_t *outputs; /* step name → output of the succeeded steps */
    struct batch b;
    char *err;
    size_t errlen;
};

enum step_outcome { STEP_OK, STEP_FAILED, STEP_STOPPED, STEP_GUARD, STEP_DB_ERROR };

static bool stopping(struct run *r)
{
    return r->o->should_stop && r->o->should_stop(r->o->stop_arg);
}

static void run_dberr(struct run *r, const char *what)
{
    snprintf(r->err, r->errlen, "%s: %s", what, *db_errmsg(r->c) ? db_errmsg(r->c) : "error");
    db_rollback(r->c);
    batch_clear(&r->b);
}

/* Opens a transaction and adds the first event; maps the guard to a step outcome. */
static enum step_outcome tx_event(struct run *r, const char *guard, const char *type, int step,
                                  const char *status, const char *level, int attempt,
                                  const char *msg)
{
    if (!db_in_transaction(r->c) && db_begin(r->c) < 0) {
        run_dberr(r, "begin");
        return STEP_DB_ERROR;
    }
    int rc = batch_add(r->c, &r->b, r->tenant, r->exec_id, guard, type, step, status, level,
                       attempt, msg);
    if (rc < 0) {
        run_dberr(r, "event");
        return STEP_DB_ERROR;
    }
    if (rc == 0) {
        db_rollback(r->c);
        batch_clear(&r->b);
        return STEP_GUARD;
    }
    return STEP_OK;
}

static enum step_outcome tx_commit(struct run *r)
{
    if (batch_commit(r->c, &r->b, r->env->realtime) < 0) {
        snprintf(r->err, r->errlen, "commit: %s", db_errmsg(r->c));
        return STEP_DB_ERROR;
    }
    return STEP_OK;
}

/* A one-event transaction: a log line of the running execution. */
static enum step_outcome log_line(struct run *r, int step, const char *level, const char *fmt, ...)
    ZY_PRINTF(4, 5);
static enum step_outcome log_line(struct run *r, int step, const char *level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    enum step_outcome o = tx_event(r, "running", "log", step, NULL, level, 0, msg);
    return o == STEP_OK ? tx_commit(r) : o;
}

/* Sleeps ms in short slices; false when asked to stop first. */
static bool nap(struct run *r, int64_t ms)
{
    while (ms > 0) {
        if (stopping(r))
            return false;
        int64_t slice = ZY_MIN(ms, 50);
        nanosleep(&(struct timespec){slice / 1000, (long)(slice % 1000) * 1000000L}, NULL);
        ms -= slice;
    }
    return !stopping(r);
}

/* ---- templates ---- */

/* The value an expression names ("input.a.0.b", "steps.fetch.output.id"), borrowed, or NULL. */
static json_t *lookup(struct run *r, const char *expr, size_t n)
{
    char buf[512];
    if (n >= sizeof(buf))
        return NULL;
    memcpy(buf, expr, n);
    buf[n] = '\0';
    char *save = NULL, *part = strtok_r(buf, ".", &save);
    json_t *cur = NULL;
    if (!part)
        return NULL;
    if (strcmp(part, "input") == 0) {
        cur = r->input;
    } else if (strcmp(part, "steps") == 0) {
        part = strtok_r(NULL, ".", &save);
        cur = part ? json_object_get(r->outputs, part) : NULL;
        part = strtok_r(NULL, ".", &save);
        if (!part || strcmp(part, "output") != 0)
            return NULL;
    } else {
        return NULL;
    }
    while (cur && (part = strtok_r(NULL, ".", &save))) {
        if (json_is_object(cur)) {
            cur = json_object_get(cur, part);
        } else if (json_is_array(cur) && isdigit((unsigned char)part[0])) {
            char *end;
            unsigned long k = strtoul(part, &end, 10);
            cur = *end ? NULL : json_array_get(cur, k);
        } else {
            cur = NULL;
        }
    }
    return cur;
}

/* s with every {{expr}} replaced (strings as they are, other values as compact JSON, missing
 * as ""). malloc'd; NULL when the result passes TEMPLATE_MAX. */
static char *render_str(struct run *r, const char *s)
{
    struct buf b;
    buf_init(&b, TEMPLATE_MAX);
    for (const char *p = s; *p;) {
        const char *open = strstr(p, "{{");
        const char *close = open ? strstr(open + 2, "}}") : NULL;
        if (!close) {
            buf_puts(&b, p);
            break;
        }
        buf_append(&b, p, (size_t)(open - p));
        const char *e = open + 2, *end = close;
        while (e < end && isspace((unsigned char)*e))
            e++;
        while (end > e && isspace((unsigned char)end[-1]))
            end--;
        size_t n = (size_t)(end - e);
        if (n == 12 && strncmp(e, "execution.id", 12) == 0) {
            buf_puts(&b, r->exec_id);
        } else if (n == 11 && strncmp(e, "workflow.id", 11) == 0) {
            buf_puts(&b, r->st.workflow_id);
        } else {
            json_t *v = lookup(r, e, n);
            if (json_is_string(v)) {
                buf_append(&b, json_string_value(v), json_string_length(v));
            } else if (v && !json_is_null(v)) {
                char *d = jx_dump(v, NULL);
                buf_puts(&b, d);
                free(d);
            }
        }
        p = close + 2;
    }
    if (b.overflow) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

/* A deep copy of v with its strings rendered; NULL when one grew too large. */
static json_t *render(struct run *r, json_t *v)
{
    if (json_is_string(v)) {
        char *s = render_str(r, json_string_value(v));
        json_t *out = s ? jx_str(s) : NULL;
        free(s);
        return out;
    }
    if (json_is_object(v)) {
        json_t *o = json_object();
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            json_t *y = render(r, x);
            if (!y) {
                json_decref(o);
                return NULL;
            }
            json_object_set_new(o, k, y);
        }
        return o;
    }
    if (json_is_array(v)) {
        json_t *a = json_array();
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            json_t *y = render(r, x);
            if (!y) {
                json_decref(a);
                return NULL;
            }
            json_array_append_new(a, y);
        }
        return a;
    }
    return json_incref(v);
}

/* ---- step types ---- */

struct attempt {
    const char *name;
    int index;
    json_t *config; /* rendered */
    int64_t timeout_ms;
    /* results */
    bool ok, retryable, stopped;
    json_t *output;
    char error[800];
    char log[800]; /* a line for the log with the outcome, or "" */
};

static bool stop_cb(void *arg)
{
    struct run *r = arg;
    return stopping(r);
}

/* "GET https://host/path" without the query string (which may carry credentials). */
static void describe_url(const char *method, const char *url, char *out, size_t n)
{
    snprintf(out, n, "%s %.*s", method, (int)strcspn(url, "?#"), url);
}

static json_t *response_body(const struct http_fetch_res *res)
{
    const char *ct = json_string_value(json_object_get(res->headers, "content-type"));
    if (ct && strstr(ct, "json")) {
        json_t *j = json_loadb(res->body, res->body_len, JSON_DECODE_ANY, NULL);
        if (j)
            return j;
    }
    return jx_strn(res->body, res->body_len);
}

static void fetch(struct attempt *a, const struct http_fetch_req *rq)
{
    struct http_fetch_res res;
    char what[300];
    describe_url(rq->method, rq->url, what, sizeof(what));
    uint64_t t0 = (uint64_t)jobs_now_ms();
    http_fetch(rq, &res);
    long ms = (long)((uint64_t)jobs_now_ms() - t0);
    if (res.status == HTTP_FETCH_E_STOPPED) {
        a->stopped = true;
    } else if (res.status != HTTP_FETCH_OK) {
        snprintf(a->error, sizeof(a->error), "%s: %s", what, res.error);
        a->retryable = http_fetch_retryable(res.status);
    } else {
        long st = res.http_status;
        snprintf(a->log, sizeof(a->log), "%s -> %ld (%ld ms)", what, st, ms);
        json_t *hdrs = json_object();
        json_t *ct = json_object_get(res.headers, "content-type");
        if (ct)
            json_object_set(hdrs, "content-type", ct);
        a->output = json_pack("{s:i, s:o, s:o}", "status", (int)st, "headers", hdrs, "body",
                              response_body(&res));
        if (st >= 200 && st < 300) {
            a->ok = true;
        } else {
            snprintf(a->error, sizeof(a->error), "%s answered HTTP %ld%s", what, st,
                     st >= 300 && st < 400 ? " (redirects are not followed)" : "");
            a->retryable = st >= 500 || st == 408 || st == 429;
        }
    }
    http_fetch_res_free(&res);
}

static void run_http(struct run *r, struct attempt *a)
{
    json_t *cfg = a->config;
    json_t *hdrs = json_object_get(cfg, "headers");
    struct kv kvs[34];
    size_t nk = 0;
    bool has_ct = false;
    const char *name;
    json_t *v;
    json_object_foreach(hdrs, name, v)
    {
        if (nk < 32 && json_is_string(v)) {
            kvs[nk++] = (struct kv){name, json_string_value(v)};
            has_ct = has_ct || zy_strieq("content-type", name);
        }
    }
    json_t *body = json_object_get(cfg, "body");
    char *text = NULL;
    size_t len = 0;
    if (json_is_string(body)) {
        text = xstrdup(json_string_value(body));
        len = strlen(text);
    } else if (body && !json_is_null(body)) {
        text = jx_dump(body, &len);
        if (!has_ct)
            kvs[nk++] = (struct kv){"Content-Type", "application/json"};
    }
    struct http_fetch_req rq = {
        .method = json_string_value(json_object_get(cfg, "method")),
        .url = json_string_value(json_object_get(cfg, "url")),
        .headers = kvs,
        .nheaders = nk,
        .body = text,
        .body_len = len,
        .timeout_ms = a->timeout_ms,
        .max_response = HTTP_RESPONSE_MAX,
        .allow_private = r->env->cfg && r->env->cfg->workflow_http_allow_private,
        .should_stop = stop_cb,
        .stop_arg = r,
    };
    fetch(a, &rq);
    free(text);
}

static void run_webhook(struct run *r, struct attempt *a)
{
    json_t *cfg = a->config;
    unsigned char *secret = NULL;
    size_t slen = 0;
    char ad[96];
    snprintf(ad, sizeof(ad), SIGNING_AD "%s", r->st.workflow_id);
    if (!r->st.signing_secret || !r->env->keyring ||
        secretbox_open(r->env->keyring, ad, r->st.signing_secret, &secret, &slen) !=
            SECRETBOX_OK) {
        snprintf(a->error, sizeof(a->error), "the workflow's signing secret cannot be read");
        return;
    }
    char delivery[64], now[48];
    snprintf(delivery, sizeof(delivery), "%.36s-%d", r->exec_id, a->index);
    zy_iso_now(now);
    json_t *data = json_object_get(cfg, "data");
    const char *event = json_string_value(json_object_get(cfg, "event"));
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:O}", "id", delivery, "event", event,
                           "workflowId", r->st.workflow_id, "executionId", r->exec_id,
                           "createdAt", now, "data", data ? data : json_null());
    size_t len;
    char *body = jx_dump(ev, &len);
    json_decref(ev);
    /* Stripe-style: the timestamp is signed with the body, so a captured delivery cannot be
     * replayed later with another time */
    char ts[24], sig[200], hex[crypto_auth_hmacsha256_BYTES * 2 + 1];
    snprintf(ts, sizeof(ts), "%lld", (long long)(jobs_now_ms() / 1000));
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state hs;
    crypto_auth_hmacsha256_init(&hs, secret, slen);
    crypto_auth_hmacsha256_update(&hs, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&hs, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&hs, (const unsigned char *)body, len);
    crypto_auth_hmacsha256_final(&hs, mac);
    secretbox_free(secret, slen);
    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
    snprintf(sig, sizeof(sig), "t=%s,v1=%s", ts, hex);
    struct kv kvs[] = {{"Content-Type", "application/json"},
                       {"X-Zygo-Event", event},
                       {"X-Zygo-Delivery", delivery},
                       {"X-Zygo-Signature", sig}};
    struct http_fetch_req rq = {
        .method = "POST",
        .url = json_string_value(json_object_get(cfg, "url")),
        .headers = kvs,
        .nheaders = ARRAY_LEN(kvs),
        .body = body,
        .body_len = len,
        .timeout_ms = a->timeout_ms,
        .max_response = HTTP_RESPONSE_MAX,
        .allow_private = r->env->cfg && r->env->cfg->workflow_http_allow_private,
        .should_stop = stop_cb,
        .stop_arg = r,
    };
    fetch(a, &rq);
    free(body);
    if (a->ok) { /* the receiver's answer is not the event's outcome: keep it short */
        json_t *out = json_pack("{s:O, s:s}", "status", json_object_get(a->output, "status"),
                                "deliveryId", delivery);
        json_decref(a->output);
        a->output = out;
    }
}

static void run_delay(struct run *r, struct attempt *a)
{
    json_int_t ms = json_integer_value(json_object_get(a->config, "ms"));
    if (!nap(r, ms)) {
        a->stopped = true;
        return;
    }
    a->ok = true;
    a->output = json_pack("{s:I}", "delayedMs", ms);
}

static void run_notify(struct run *r, struct attempt *a)
{
    json_t *cfg = a->config;
    const char *subject = json_string_value(json_object_get(cfg, "subject"));
    const char *text = json_string_value(json_object_get(cfg, "text"));
    json_t *emails = json_object_get(cfg, "emails"), *users = json_object_get(cfg, "userIds");
    size_t i;
    json_t *v;
    /* emails: queued in one transaction under ids fixed by execution, step and recipient, so a
     * re-run step queues nothing twice */
    if (json_array_size(emails)) {
        if (db_begin(r->c) < 0) {
            snprintf(a->error, sizeof(a->error), "database: %s", db_errmsg(r->c));
            a->retryable = true;
            return;
        }
        json_array_foreach(emails, i, v)
        {
            char job_id[JOB_ID_MAX], out[JOB_ID_MAX];
            snprintf(job_id, sizeof(job_id), "workflow-notify:%s:%d:%zu", r->exec_id, a->index,
                     i);
            struct mail m = {.to = json_string_value(v),
                             .subject = subject,
                             .text = text,
                             .kind = "workflow"};
            if (notifications_enqueue(r->c, r->env->keyring, r->tenant, &m, job_id, out) < 0) {
                snprintf(a->error, sizeof(a->error), "queueing the email to recipient %zu: %s",
                         i + 1, *db_errmsg(r->c) ? db_errmsg(r->c) : "refused");
                a->retryable = *db_errmsg(r->c) != '\0';
                db_rollback(r->c);
                return;
            }
        }
        if (db_commit(r->c) < 0) {
            snprintf(a->error, sizeof(a->error), "database: %s", db_errmsg(r->c));
            a->retryable = true;
            return;
        }
        jobs_wake();
    }
    /* in-app: to each user's own room */
    json_t *msg = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "notification", "subject",
                            subject, "text", text, "workflowId", r->st.workflow_id, "executionId",
                            r->exec_id);
    size_t len;
    char *s = jx_dump(msg, &len);
    json_decref(msg);
    json_array_foreach(users, i, v)
    {
        char room[128];
        snprintf(room, sizeof(room), "tenant:%s:user:%s", r->tenant, json_string_value(v));
        realtime_publish_room(r->env->realtime, room, s, len);
    }
    free(s);
    a->ok = true;
    a->output = json_pack("{s:i, s:i}", "emailsQueued", (int)json_array_size(emails),
                          "usersNotified", (int)json_array_size(users));
}

/* ---- running the steps ---- */

static int64_t backoff_ms(json_t *retry, int attempt)
{
    json_t *bo = json_object_get(retry, "backoff");
    int64_t d = json_integer_value(json_object_get(bo, "delayMs"));
    const char *type = json_string_value(json_object_get(bo, "type"));
    if (type && strcmp(type, "fixed") == 0)
        return d;
    int shift = ZY_MIN(attempt - 1, 20);
    return ZY_MIN(d << shift, 3600000);
}

static enum step_outcome run_step(struct run *r, int i)
{
    json_t *step = json_array_get(r->steps, (size_t)i);
    const char *name = json_string_value(json_object_get(step, "name"));
    enum step_kind kind = kind_of(json_string_value(json_object_get(step, "type")));
    json_t *retry = json_object_get(step, "retry");
    int max = (int)json_integer_value(json_object_get(retry, "attempts"));
    if (max < 1)
        max = 1;
    int attempt = r->st.steps[i].attempts;
    char now[48], msg[700];
    for (;;) {
        if (stopping(r))
            return STEP_STOPPED;
        attempt++;
        snprintf(msg, sizeof(msg), "Step %s started (attempt %d of %d)", name, attempt,
                 ZY_MAX(max, attempt));
        zy_iso_now(now);
        enum step_outcome o = tx_event(r, "running", "step", i, "running", NULL, attempt, msg);
        if (o != STEP_OK)
            return o;
        if (workflows_step_mark(r->c, r->exec_id, i, "running", NULL, NULL, now) != 1) {
            run_dberr(r, "step");
            return STEP_DB_ERROR;
        }
        if ((o = tx_commit(r)) != STEP_OK)
            return o;

        struct attempt a = {.name = name,
                            .index = i,
                            .timeout_ms = json_integer_value(json_object_get(step, "timeoutMs"))};
        a.config = render(r, json_object_get(step, "config"));
        if (!a.config) {
            snprintf(a.error, sizeof(a.error), "a template expands past %u bytes", TEMPLATE_MAX);
        } else {
            switch (kind) {
            case KIND_HTTP:
                run_http(r, &a);
                break;
            case KIND_DELAY:
                run_delay(r, &a);
                break;
            case KIND_NOTIFY:
                run_notify(r, &a);
                break;
            case KIND_WEBHOOK:
                run_webhook(r, &a);
                break;
            case KIND_UNKNOWN:
                snprintf(a.error, sizeof(a.error), "unknown step type");
                break;
            }
        }
        json_decref(a.config);
        if (a.stopped) {
            json_decref(a.output);
            return STEP_STOPPED;
        }
        zy_iso_now(now);
        if (a.ok) {
            char *out = jx_dump(a.output, NULL);
            snprintf(msg, sizeof(msg), "Step %s succeeded", name);
            o = a.log[0] ? tx_event(r, "running", "log", i, NULL, "info", 0, a.log) : STEP_OK;
            if (o == STEP_OK)
                o = tx_event(r, "running", "step", i, "succeeded", NULL, attempt, msg);
            if (o == STEP_OK &&
                workflows_step_mark(r->c, r->exec_id, i, "succeeded", out, NULL, now) != 1) {
                run_dberr(r, "step");
                o = STEP_DB_ERROR;
            }
            free(out);
            if (o == STEP_OK)
                o = tx_commit(r);
            if (o == STEP_OK)
                json_object_set_new(r->outputs, name, a.output);
            else
                json_decref(a.output);
            return o;
        }
        json_decref(a.output);
        if (a.retryable && attempt < max) {
            int64_t wait = backoff_ms(retry, attempt);
            o = log_line(r, i, "warn", "Attempt %d of step %s failed: %s; retrying in %lld ms",
                         attempt, name, a.error, (long long)wait);
            if (o != STEP_OK)
                return o;
            if (!nap(r, wait))
                return STEP_STOPPED;
            continue;
        }
        /* the step, and with it the execution, failed */
        char exec_err[1024];
        snprintf(exec_err, sizeof(exec_err), "Step %.100s failed: %.800s", name, a.error);
        o = tx_event(r, "running", "step", i, "failed", NULL, attempt, a.error);
        if (o == STEP_OK)
            o = tx_event(r, "running", "execution", -1, "failed", NULL, 0, exec_err);
        if (o == STEP_OK &&
            (workflows_step_mark(r->c, r->exec_id, i, "failed", NULL, a.error, now) != 1 ||
             workflows_exec_mark(r->c, r->exec_id, "failed", NULL, exec_err, now) != 1)) {
            run_dberr(r, "step");
            o = STEP_DB_ERROR;
        }
        if (o == STEP_OK)
            o = tx_commit(r);
        return o == STEP_OK ? STEP_FAILED : o;
    }
}

/* Moves the execution to running (first run, or an admin retry of a failed one). */
static enum step_outcome start_running(struct run *r)
{
    const char *from = r->st.status;
    char now[48];
    zy_iso_now(now);
    if (strcmp(from, "running") == 0)
        return log_line(r, -1, "info", "Resumed: a previous run of this execution stopped");
    bool again = strcmp(from, "failed") == 0;
    enum step_outcome o = tx_event(r, from, "execution", -1, "running", NULL, 0,
                                   again ? "Execution retried from its failed step"
                                         : "Execution started");
    if (o != STEP_OK)
        return o;
    if ((again && workflows_steps_reset_failed(r->c, r->exec_id) < 0) ||
        workflows_exec_mark(r->c, r->exec_id, "running", NULL, NULL, now) != 1) {
        run_dberr(r, "start");
        return STEP_DB_ERROR;
    }
    if (again)
        for (int i = 0; i < r->st.nsteps; i++)
            if (strcmp(r->st.steps[i].status, "failed") == 0)
                r->st.steps[i].attempts = 0;
    return tx_commit(r);
}

static enum step_outcome finish_ok(struct run *r, json_t *last)
{
    char now[48];
    zy_iso_now(now);
    char *out = last ? jx_dump(last, NULL) : NULL;
    enum step_outcome o =
        tx_event(r, "running", "execution", -1, "succeeded", NULL, 0, "Execution succeeded");
    if (o == STEP_OK && workflows_exec_mark(r->c, r->exec_id, "succeeded", out, NULL, now) != 1) {
        run_dberr(r, "finish");
        o = STEP_DB_ERROR;
    }
    free(out);
    return o == STEP_OK ? tx_commit(r) : o;
}

/* The status now (after a guard refused a write, or a stop). */
static enum workflow_run_result settle(struct run *r, enum step_outcome o, char final[16])
{
    char status[16], job[130];
    if (o == STEP_DB_ERROR)
        return WORKFLOW_RUN_ERROR;
    int rc = workflows_exec_status(r->c, r->tenant, r->exec_id, status, job);
    if (rc < 0) {
        snprintf(r->err, r->errlen, "status: %s", db_errmsg(r->c));
        return WORKFLOW_RUN_ERROR;
    }
    if (rc == 0)
        return WORKFLOW_RUN_GONE;
    if (strcmp(status, "running") == 0 || strcmp(status, "queued") == 0) {
        snprintf(r->err, r->errlen, "stopped");
        return WORKFLOW_RUN_STOPPED;
    }
    snprintf(final, 16, "%s", status);
    return WORKFLOW_RUN_FINISHED;
}

static enum workflow_run_result run_steps(struct run *r, char final[16])
{
    if (strcmp(r->st.status, "succeeded") == 0 || strcmp(r->st.status, "cancelled") == 0) {
        snprintf(final, 16, "%s", r->st.status);
        return WORKFLOW_RUN_FINISHED; /* a duplicate delivery of a finished execution */
    }
    r->steps = json_loads(r->st.steps_json ? r->st.steps_json : "[]", 0, NULL);
    r->input = r->st.input_json ? json_loads(r->st.input_json, JSON_DECODE_ANY, NULL) : NULL;
    r->outputs = json_object();
    if (!json_is_array(r->steps) || (int)json_array_size(r->steps) != r->st.nsteps) {
        snprintf(r->err, r->errlen, "the execution's steps do not match its version");
        return WORKFLOW_RUN_ERROR;
    }
    enum step_outcome o = start_running(r);
    if (o != STEP_OK)
        return settle(r, o, final);
    json_t *last = NULL;
    for (int i = 0; i < r->st.nsteps; i++) {
        const char *name = json_string_value(json_object_get(json_array_get(r->steps, (size_t)i),
                                                              "name"));
        if (strcmp(r->st.steps[i].status, "succeeded") == 0) { /* never runs twice */
            json_t *out = r->st.steps[i].output_json
                              ? json_loads(r->st.steps[i].output_json, JSON_DECODE_ANY, NULL)
                              : NULL;
            json_object_set_new(r->outputs, name, out ? out : json_null());
            last = json_object_get(r->outputs, name);
            continue;
        }
        o = run_step(r, i);
        if (o == STEP_FAILED) {
            snprintf(final, 16, "failed");
            return WORKFLOW_RUN_FINISHED;
        }
        if (o != STEP_OK)
            return settle(r, o, final);
        last = json_object_get(r->outputs, name);
    }
    o = finish_ok(r, last);
    if (o != STEP_OK)
        return settle(r, o, final);
    snprintf(final, 16, "succeeded");
    return WORKFLOW_RUN_FINISHED;
}

enum workflow_run_result workflow_run(const struct workflow_env *env,
                                      const struct workflow_run_opts *o, char final[16],
                                      char *error, size_t errlen)
{
    final[0] = '\0';
    error[0] = '\0';
    char err[256];
    struct run r = {.env = env, .o = o, .tenant = o->tenant_id, .exec_id = o->execution_id,
                    .err = error, .errlen = errlen};
    r.c = db_acquire(env->db, err, sizeof(err));
    if (!r.c) {
        snprintf(error, errlen, "database: %s", err);
        return WORKFLOW_RUN_ERROR;
    }
    enum workflow_run_result res;
    int rc = workflows_run_load(r.c, o->tenant_id, o->execution_id, &r.st);
    if (rc < 0) {
        snprintf(error, errlen, "load: %s", db_errmsg(r.c));
        res = WORKFLOW_RUN_ERROR;
    } else if (rc == 0) {
        snprintf(error, errlen, "no execution %s", o->execution_id);
        res = WORKFLOW_RUN_GONE;
    } else {
        res = run_steps(&r, final);
    }
    db_rollback(r.c);
    batch_clear(&r.b);
    workflows_run_state_free(&r.st);
    json_decref(r.steps);
    json_decref(r.input);
    json_decref(r.outputs);
    db_release(r.c);
    return res;
}

/* ---- failing and cancelling from outside the engine ---------------------------------------- */

int workflow_fail_execution(struct db *db, struct realtime *rt, const char *tenant_id,
                            const char *execution_id, const char *error)
{
    char err[256], now[48];
    struct db_conn *c = db_acquire(db, err, sizeof(err));
    if (!c)
        return -1;
    struct batch *b = xcalloc(1, sizeof(*b));
    int rc = db_begin(c);
    if (rc == 0)
        rc = batch_add(c, b, tenant_id, execution_id, "queued running", "execution", -1,
                       "failed", NULL, 0, error);
    if (rc == 1) {
        zy_iso_now(now);
        if (workflows_steps_cancel(c, execution_id, now) < 0 ||
            workflows_exec_mark(c, execution_id, "failed", NULL, error, now) != 1)
            rc = -1;
    }
    if (rc == 1 && batch_commit(c, b, rt) < 0)
        rc = -1;
    if (rc != 1)
        db_rollback(c);
    batch_clear(b);
    free(b);
    db_release(c);
    return rc;
}

int workflow_cancel(struct db_conn *c, struct realtime *rt, const char *tenant_id,
                    const char *execution_id, char status[16])
{
    char job[130];
    int rc = workflows_exec_status(c, tenant_id, execution_id, status, job);
    if (rc <= 0)
        return rc;
    if (strcmp(status, "queued") != 0 && strcmp(status, "running") != 0)
        return 2;
    struct workflow_run_state st;
    if (workflows_run_load(c, tenant_id, execution_id, &st) != 1)
        return -1;
    struct batch *b = xcalloc(1, sizeof(*b));
    char now[48];
    zy_iso_now(now);
    rc = db_begin(c) < 0 ? -1 : 1;
    /* the execution's event first: it takes the guard (a worker that finishes the execution at
     * this moment either commits first, and we answer "already finished", or finds it
     * cancelled) */
    if (rc == 1)
        rc = batch_add(c, b, tenant_id, execution_id, "queued running", "execution", -1,
                       "cancelled", NULL, 0, "Execution cancelled");
    for (int i = 0; rc == 1 && i < st.nsteps; i++)
        if (strcmp(st.steps[i].status, "pending") == 0 ||
            strcmp(st.steps[i].status, "running") == 0)
            rc = batch_add(c, b, tenant_id, execution_id, "queued running", "step", i,
                           "cancelled", NULL, 0, "Step cancelled");
    if (rc == 1 && (workflows_steps_cancel(c, execution_id, now) < 0 ||
                    workflows_exec_mark(c, execution_id, "cancelled", NULL, NULL, now) != 1))
        rc = -1;
    if (rc == 1 && *job && jobs_cancel(c, job, tenant_id) == -1)
        rc = -1;
    if (rc == 1)
        rc = batch_commit(c, b, rt) < 0 ? -1 : 1;
    else
        db_rollback(c);
    batch_clear(b);
    free(b);
    workflows_run_state_free(&st);
    if (rc == 0) { /* finished meanwhile */
        workflows_exec_status(c, tenant_id, execution_id, status, job);
        return 2;
    }
    if (rc == 1)
        snprintf(status, 16, "cancelled");
    return rc;
}

/* ---- the WebSocket room of an execution ------------------------------------------------------ */

static int execution_room_check(struct db_conn *db, const struct ws_principal *who,
                                const char *id, void *arg)
{
    (void)arg;
    int rc = ws_rooms_has_permission(db, who, "canViewWorkflows");
    if (rc == 0)
        rc = ws_rooms_has_permission(db, who, "canManageWorkflows");
    if (rc != 1)
        return rc;
    return workflows_execution_visible(db, who->tenant_id, id) ? 1 : 0;
}

int workflow_rooms_register(void)
{
    return ws_rooms_register("execution", execution_room_check, NULL);
}

/* ---- scheduling ---------------------------------------------------------------------------- */

#define TICK_BATCH 32
#define PRUNE_EVERY_MS (3600LL * 1000)
#define SLOT_KEEP_MS (7LL * 24 * 3600 * 1000)

static void iso_ms(int64_t ms, char out[48])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

/* One due workflow: claim its slot, start its execution, move the schedule on — one
 * transaction. 1 fired, 0 not (someone else did, or it changed), -1 error. */
static int fire(struct db_conn *c, const struct workflow_due *d, int64_t now_ms)
{
    json_t *trigger = json_loads(d->trigger_json ? d->trigger_json : "{}", 0, NULL);
    int64_t next = workflow_next_fire(trigger, ZY_MAX(now_ms, d->next_fire_at));
    json_decref(trigger);
    char exec_id[37], at[48];
    uuid_v7(exec_id);
    iso_ms(d->next_fire_at, at);
    if (db_begin(c) < 0)
        return -1;
    int rc = workflows_slot_claim(c, d->id, d->tenant_id, d->next_fire_at, exec_id);
    if (rc == 1) {
        json_t *input = json_pack("{s:s}", "scheduledAt", at);
        struct workflow_start s = {.tenant_id = d->tenant_id,
                                   .workflow_id = d->id,
                                   .trigger = "schedule",
                                   .input = input,
                                   .execution_id = exec_id};
        char out[37];
        enum workflow_start_result sr = workflow_start(c, &s, out);
        json_decref(input);
        if (sr == WORKFLOW_START_DB_ERROR)
            rc = -1;
        else if (sr != WORKFLOW_STARTED)
            rc = 0;
    }
    /* moved on even when another process fired the slot (it moved it too: no change then) */
    if (rc >= 0 && workflows_set_next_fire(c, d->id, d->next_fire_at, next) < 0)
        rc = -1;
    if (rc < 0) {
        log_msg(LOG_WARN, "workflows: schedule of %s: %s", d->id, db_errmsg(c));
        db_rollback(c);
        return -1;
    }
    return db_commit(c) < 0 ? -1 : rc;
}

static void reconcile(struct db_conn *c, struct db *db)
{
    struct workflow_orphan o[TICK_BATCH];
    int n = workflows_orphans(c, o, TICK_BATCH);
    for (int i = 0; i < n; i++) {
        char msg[600];
        snprintf(msg, sizeof(msg), "The execution's job %s%s%s",
                 strcmp(o[i].job_state, "removed") == 0 ? "is gone" : o[i].job_state,
                 o[i].error ? ": " : "", o[i].error ? o[i].error : "");
        workflow_fail_execution(db, NULL, o[i].tenant_id, o[i].id, msg);
    }
    if (n > 0)
        workflows_orphans_free(o, n);
}

int workflow_schedule_tick(struct db *db, int64_t now_ms)
{
    char err[256];
    struct db_conn *c = db_acquire(db, err, sizeof(err));
    if (!c)
        return -1;
    if (db_set_rls_bypass(c, true) < 0) { /* schedules of every tenant */
        db_release(c);
        return -1;
    }
    struct workflow_due due[TICK_BATCH];
    int n = workflows_due(c, now_ms, due, TICK_BATCH), fired = 0;
    for (int i = 0; i < n; i++)
        if (fire(c, &due[i], now_ms) == 1)
            fired++;
    if (n > 0)
        workflows_due_free(due, n);
    if (fired)
        jobs_wake();
    reconcile(c, db);
    db_release(c);
    return n < 0 ? -1 : fired;
}

/* Deleted per statement: a long prune never holds its locks (or SQLite's write lock) for long. */
#define PRUNE_BATCH 500
/* Batches per prune: the rest waits for the next hour, so one prune stays short. */
#define PRUNE_BATCHES 200

int workflow_prune(struct db *db, int64_t now_ms, int retention_days)
{
    char err[256];
    struct db_conn *c = db_acquire(db, err, sizeof(err));
    if (!c || db_set_rls_bypass(c, true) < 0) { /* every tenant's */
        log_msg(LOG_WARN, "workflows: prune: %s", c ? db_errmsg(c) : err);
        db_release(c);
        return -1;
    }
    int total = 0, rc = workflows_slots_prune(c, now_ms - SLOT_KEEP_MS) < 0 ? -1 : 0;
    if (rc == 0 && retention_days > 0) {
        char before[48];
        iso_ms(now_ms - (int64_t)retention_days * 24 * 3600 * 1000, before);
        for (int i = 0; i < PRUNE_BATCHES; i++) {
            int n = workflows_executions_prune(c, before, PRUNE_BATCH);
            if (n < 0) {
                rc = -1;
                break;
            }
            total += n;
            if (n < PRUNE_BATCH)
                break;
        }
    }
    if (rc < 0)
        log_msg(LOG_WARN, "workflows: prune: %s", db_errmsg(c));
    else if (total > 0)
        log_msg(LOG_INFO, "workflows: pruned %d execution(s) ended before %d day(s) ago", total,
                retention_days);
    db_release(c);
    return rc < 0 ? -1 : total;
}

struct workflow_scheduler {
    struct db *db;
    int interval_ms;
    int retention_days;
    int64_t last_prune; /* monotonic ms; 0: not yet */
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool stop;
};

static void *scheduler_main(void *arg)
{
    struct workflow_scheduler *s = arg;
    pthread_mutex_lock(&s->mu);
    while (!s->stop) {
        pthread_mutex_unlock(&s->mu);
        if (workflow_schedule_tick(s->db, jobs_now_ms()) < 0)
            log_msg(LOG_WARN, "workflows: the schedule tick failed");
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        int64_t mono = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (s->last_prune == 0 || mono - s->last_prune >= PRUNE_EVERY_MS) {
            s->last_prune = mono;
            workflow_prune(s->db, jobs_now_ms(), s->retention_days);
        }
        pthread_mutex_lock(&s->mu);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_sec += s->interval_ms / 1000;
        until.tv_nsec += (long)(s->interval_ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        while (!s->stop && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
            ;
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

struct workflow_scheduler *workflow_scheduler_start(struct db *db, int interval_ms,
                                                    int retention_days, char *err, size_t errlen)
{
    struct workflow_scheduler *s = xcalloc(1, sizeof(*s));
    s->db = db;
    s->interval_ms = interval_ms > 0 ? interval_ms : 1000;
    s->retention_days = retention_days;
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&s->thread, NULL, scheduler_main, s) != 0) {
        snprintf(err, errlen, "workflows: cannot start the scheduler thread");
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return NULL;
    }
    return s;
}

void workflow_scheduler_stop(struct workflow_scheduler *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    s->stop = true;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}
