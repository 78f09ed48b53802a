/* Workflows through the API, on the real queue: definitions (CRUD, versions, every validation
 * error, permissions, other tenants' ids), executions end to end with the job runner in this
 * process (http_request, delay, webhook_event with its signature, notify by email and in-app),
 * step retries, failures, cancellation mid-step, idempotency keys, the webhook trigger, the
 * scheduler's at-most-once slots, the live events and the log they must agree with, and an
 * execution whose worker process is killed with SIGKILL finishing in another. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <time.h>
#include <unistd.h>

#include "accounts.h"
#include "dbtest.h"
#include "fake_http.h"
#include "jobs/processors.h"
#include "jobtest.h"
#include "repos/workflows.h"
#include "services/mailer.h"
#include "services/realtime.h"
#include "services/workflow.h"
#include "support.h"
#include "ws_client.h"

static struct tenv t;
static struct fake_http *fh;
static struct realtime *rt;
static struct job_runner *active; /* stopped by teardown when a test failed midway */

/* ---- captured real-time messages ---------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    json_t *events; /* [{room, msg}] in delivery order */
} cap = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void capture(void *arg, bool user, const char *target, const char *text, size_t len)
{
    (void)arg;
    (void)user;
    json_t *m = json_loadb(text, len, 0, NULL);
    pthread_mutex_lock(&cap.mu);
    json_array_append_new(cap.events, json_pack("{s:s, s:o*}", "room", target, "msg", m));
    pthread_mutex_unlock(&cap.mu);
}

/* The messages captured for room so far (new reference). */
static json_t *captured(const char *room)
{
    json_t *out = json_array();
    size_t i;
    json_t *e;
    pthread_mutex_lock(&cap.mu);
    json_array_foreach(cap.events, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "room")), room) == 0)
            json_array_append(out, json_object_get(e, "msg"));
    }
    pthread_mutex_unlock(&cap.mu);
    return out;
}

static void setup(void)
{
    static const char *const extra[] = {"RATE_LIMIT_ENABLED=false",
                                        "WORKFLOW_HTTP_ALLOW_PRIVATE=true", NULL};
    tenv_setup(&t, extra, NULL, 0);
    fh = fake_http_start();
    cr_assert_not_null(fh);
    cap.events = json_array();
    rt = realtime_new(NULL);
    realtime_set_local(rt, capture, NULL);
}

static void teardown(void)
{
    job_runner_stop(active, 5);
    realtime_free(rt);
    fake_http_stop(fh);
    json_decref(cap.events);
    tenv_teardown(&t);
}

TestSuite(workflows, .init = setup, .fini = teardown, .timeout = 120);

/* ---- requests -------------------------------------------------------------------------------- */

static int req(const char *method, const char *path, const char *token, const char *body,
               json_t **out)
{
    return api_req(t.app, method, path, token, body, out);
}

/* A request with one extra header line; the value of the response header `want` (when not
 * NULL) is copied into got. */
static int req_h(const char *method, const char *path, const char *token, const char *body,
                 const char *header, json_t **out, const char *want, char *got, size_t n)
{
    char auth[4200];
    const char *h[4] = {"Content-Type: application/json", NULL, NULL, NULL};
    size_t k = 1;
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h[k++] = auth;
    }
    if (header)
        h[k++] = header;
    struct ctx *c = app_request(t.app, method, path, h, body, body ? strlen(body) : 0);
    int st = c->res.status;
    if (out)
        *out = ctx_body_json(c);
    if (want) {
        const char *v = ctx_res_header(c, want);
        snprintf(got, n, "%s", v ? v : "");
    }
    app_ctx_free(c);
    return st;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t jint(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static void sql(const char *q, const char *a)
{
    struct db_conn *c = dbt_bypass(t.db);
    cr_assert_geq(db_exec(c, q, DB_ARGS(DB_TEXT(a))), 0, "%s: %s", q, db_errmsg(c));
    db_release(c);
}

static int64_t count(const char *q, const char *a)
{
    struct db_conn *c = dbt_bypass(t.db);
    int64_t n = dbt_query_int(c, q, DB_ARGS(DB_TEXT(a)));
    db_release(c);
    return n;
}

static void sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (long)(ms % 1000) * 1000000L}, NULL);
}

/* Creates a workflow from its JSON body; its id (and secrets, when asked) come back. */
static void create(const struct account *w, const char *body, char id[37], char *secret,
                   char *token)
{
    json_t *r;
    int st = req("POST", "/api/v1/workflows", w->access, body, &r);
    char *dump = json_dumps(r, 0);
    cr_assert_eq(st, 201, "%s", dump);
    free(dump);
    snprintf(id, 37, "%s", jstr(r, "id"));
    if (secret)
        snprintf(secret, 64, "%s", jstr(r, "signingSecret"));
    if (token)
        snprintf(token, 64, "%s", jstr(r, "webhookToken") ? jstr(r, "webhookToken") : "");
    json_decref(r);
}

/* POST /workflows/:id/execute; the execution id. */
static void execute(const struct account *w, const char *wf, const char *body, char exec[37])
{
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/workflows/%s/execute", wf);
    json_t *r;
    cr_assert_eq(req("POST", path, w->access, body ? body : "{}", &r), 202);
    cr_assert_str_eq(jstr(r, "status"), "queued");
    snprintf(exec, 37, "%s", jstr(r, "executionId"));
    json_decref(r);
}

static json_t *get_exec(const struct account *w, const char *exec)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/executions/%s", exec);
    json_t *r;
    cr_assert_eq(req("GET", path, w->access, NULL, &r), 200);
    return r;
}

/* Polls the execution until its status is `status` (or its step `step` is, when step >= 0). */
static json_t *wait_exec(const struct account *w, const char *exec, const char *status, int step,
                         int timeout_ms)
{
    for (int waited = 0;; waited += 20) {
        json_t *e = get_exec(w, exec);
        const char *now = step < 0 ? jstr(e, "status")
                                   : jstr(json_array_get(json_object_get(e, "steps"),
                                                         (size_t)step),
                                          "status");
        if (now && strcmp(now, status) == 0)
            return e;
        if (waited >= timeout_ms) {
            char *d = json_dumps(e, JSON_INDENT(1));
            cr_assert_fail("execution %s not %s after %d ms: %s", exec, status, timeout_ms, d);
        }
        json_decref(e);
        sleep_ms(20);
    }
}

/* The job runner of this process on the workflow and notification queues, publishing to bus. */
static struct job_runner *runner_on(struct realtime *bus)
{
    jobs_processors_register();
    size_t n;
    const struct job_queue_def *defs = jobs_queue_defs(&n);
    static const char *const queues[] = {"workflow-execution", "notifications"};
    static struct job_env env;
    env = jobtest_env(&t, bus);
    struct job_runner_options o = {.queues = queues,
                                   .nqueues = 2,
                                   .concurrency = 4,
                                   .poll_ms = 10,
                                   .lease_ms = 600,
                                   .sweep_interval_ms = 50};
    char err[256];
    struct job_runner *r = job_runner_start(&env, defs, n, &o, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    active = r;
    return r;
}

static struct job_runner *runner(void)
{
    return runner_on(rt);
}

static void runner_stop(struct job_runner *r)
{
    job_runner_stop(r, 5);
    active = NULL;
}

/* ---- definitions ------------------------------------------------------------------------------ */

static const char *const HTTP_STEP =
    "{\"name\":\"fetch\",\"type\":\"http_request\",\"config\":{\"url\":\"https://example.com/x\"}}";

Test(workflows, crud_with_versions)
{
    struct account o;
    accounts_signup(t.app, "owner@a.example", NULL, &o);
    char body[1024], id[37], secret[64], token[64];
    snprintf(body, sizeof(body),
             "{\"name\":\"Nightly\",\"description\":\"sync\",\"steps\":[%s]}", HTTP_STEP);
    create(&o, body, id, secret, token);
    cr_assert(strncmp(secret, "whsec_", 6) == 0 && strlen(secret) > 40, "%s", secret);
    cr_assert_str_eq(token, "", "no webhook token for a manual trigger");

    char path[160];
    snprintf(path, sizeof(path), "/api/v1/workflows/%s", id);
    json_t *r;
    cr_assert_eq(req("GET", path, o.access, NULL, &r), 200);
    cr_assert_str_eq(jstr(r, "name"), "Nightly");
    cr_assert_eq(jint(r, "version"), 1);
    cr_assert(json_is_true(json_object_get(r, "enabled")));
    cr_assert_str_eq(jstr(json_object_get(r, "trigger"), "type"), "manual");
    json_t *step = json_array_get(json_object_get(r, "steps"), 0);
    cr_assert_str_eq(jstr(json_object_get(step, "config"), "method"), "GET", "defaults filled");
    cr_assert_eq(jint(json_object_get(step, "retry"), "attempts"), 1);
    cr_assert_eq(jint(step, "timeoutMs"), 30000);
    cr_assert_null(json_object_get(r, "signingSecret"), "secrets are shown once");
    cr_assert(json_is_null(json_object_get(r, "nextRunAt")));
    json_decref(r);

    /* a rename keeps the version; new steps make version 2, and version 1 stays readable */
    cr_assert_eq(req("PATCH", path, o.access, "{\"name\":\"Nightly sync\"}", &r), 200);
    cr_assert_eq(jint(r, "version"), 1);
    json_decref(r);
    cr_assert_eq(req("PATCH", path, o.access,
                     "{\"steps\":[{\"name\":\"wait\",\"type\":\"delay\",\"config\":{\"ms\":5}}],"
                     "\"description\":null}",
                     &r),
                 200);
    cr_assert_eq(jint(r, "version"), 2);
    cr_assert(json_is_null(json_object_get(r, "description")));
    cr_assert_eq(jint(json_array_get(json_object_get(r, "steps"), 0), "timeoutMs"), 5005);
    json_decref(r);
    char vpath[200];
    snprintf(vpath, sizeof(vpath), "%s/versions/1", path);
    cr_assert_eq(req("GET", vpath, o.access, NULL, &r), 200);
    cr_assert_str_eq(jstr(json_array_get(json_object_get(r, "steps"), 0), "type"),
                     "http_request");
    json_decref(r);
    snprintf(vpath, sizeof(vpath), "%s/versions/2", path);
    cr_assert_eq(req("GET", vpath, o.access, NULL, &r), 200);
    cr_assert_str_eq(jstr(json_array_get(json_object_get(r, "steps"), 0), "type"), "delay");
    json_decref(r);
    snprintf(vpath, sizeof(vpath), "%s/versions/3", path);
    cr_assert_eq(req("GET", vpath, o.access, NULL, NULL), 404);

    /* list: pagination and search */
    char id2[37];
    snprintf(body, sizeof(body), "{\"name\":\"Other\",\"steps\":[%s]}", HTTP_STEP);
    create(&o, body, id2, NULL, NULL);
    cr_assert_eq(req("GET", "/api/v1/workflows?limit=1", o.access, NULL, &r), 200);
    cr_assert_eq(json_array_size(json_object_get(r, "data")), 1);
    cr_assert_eq(jint(json_object_get(r, "pagination"), "total"), 2);
    cr_assert_eq(jint(json_object_get(r, "pagination"), "totalPages"), 2);
    cr_assert_str_eq(jstr(json_array_get(json_object_get(r, "data"), 0), "id"), id);
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/workflows?search=nightly", o.access, NULL, &r), 200);
    cr_assert_eq(jint(json_object_get(r, "pagination"), "total"), 1);
    json_decref(r);
    /* names are unique among live workflows */
    cr_assert_eq(req("POST", "/api/v1/workflows", o.access, body, &r), 409);
    cr_assert_str_eq(jstr(r, "error"), "RESOURCE_CONFLICT");
    json_decref(r);

    cr_assert_eq(req("DELETE", path, o.access, NULL, NULL), 204);
    cr_assert_eq(req("GET", path, o.access, NULL, NULL), 404);
    cr_assert_eq(req("DELETE", path, o.access, NULL, NULL), 404);
    cr_assert_eq(req("GET", "/api/v1/workflows", o.access, NULL, &r), 200);
    cr_assert_eq(jint(json_object_get(r, "pagination"), "total"), 1);
    json_decref(r);
    cr_assert_eq(count("SELECT count(*) FROM audit_logs WHERE resource_id = $1", id), 4,
                 "create, two updates, delete");
}

/* The issue paths and messages of a 400. */
static char *issues_of(json_t *r)
{
    static char out[4096];
    size_t w = 0, i;
    json_t *is;
    out[0] = '\0';
    json_array_foreach(json_object_get(json_object_get(r, "details"), "issues"), i, is)
    {
        w += (size_t)snprintf(out + w, sizeof(out) - w, "%s: %s\n", jstr(is, "path"),
                              jstr(is, "message"));
        if (w >= sizeof(out))
            break;
    }
    return out;
}

static void refused(const struct account *w, const char *body, const char *path, const char *msg)
{
    json_t *r;
    int st = req("POST", "/api/v1/workflows", w->access, body, &r);
    cr_assert_eq(st, 400, "%s was accepted", body);
    cr_assert_str_eq(jstr(r, "error"), "VALIDATION_ERROR");
    char *got = issues_of(r);
    char want[300];
    snprintf(want, sizeof(want), "%s: ", path);
    char *at = strstr(got, want);
    cr_assert(at && strstr(at, msg), "%s: wanted \"%s%s\" in:\n%s", body, want, msg, got);
    json_decref(r);
}

Test(workflows, validation_errors)
{
    struct account o;
    accounts_signup(t.app, "val@a.example", NULL, &o);
    refused(&o, "{\"name\":\"x\"}", "steps", "Required");
    refused(&o, "{\"name\":\"x\",\"steps\":[]}", "steps", "");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"server_action\","
            "\"config\":{}}]}",
            "steps.0.type", "server_action steps are not available yet");
    refused(&o, "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"teleport\"}]}",
            "steps.0.type", "Unknown step type 'teleport'");
    refused(&o, "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"http_request\"}]}",
            "steps.0.config.url", "Required");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"http_request\","
            "\"config\":{\"url\":\"ftp://x\"}}]}",
            "steps.0.config.url", "Invalid url");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"http_request\","
            "\"config\":{\"url\":\"https://{{input.host}}/x\"}}]}",
            "steps.0.config.url", "");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"http_request\","
            "\"config\":{\"url\":\"https://{{input.x}}@a.example/\"}}]}",
            "steps.0.config.url", "Templates may not change the URL's host");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"http_request\","
            "\"config\":{\"url\":\"https://a.example/\",\"headers\":{\"Host\":\"internal\"}}}]}",
            "steps.0.config.headers.Host", "set by the request itself");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"http_request\","
            "\"config\":{\"url\":\"https://a.example/\",\"method\":\"TRACE\"}}]}",
            "steps.0.config.method", "Invalid enum value");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"notify\","
            "\"config\":{\"subject\":\"hi\",\"text\":\"t\"}}]}",
            "steps.0.config", "Give emails, userIds or both");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"notify\","
            "\"config\":{\"subject\":\"hi\",\"text\":\"t\",\"emails\":[\"not-an-email\"]}}]}",
            "steps.0.config.emails.0", "Invalid email");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"delay\","
            "\"config\":{\"ms\":5000},\"timeoutMs\":100}]}",
            "steps.0.timeoutMs", "at least its delay");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"s\",\"type\":\"delay\","
            "\"config\":{\"ms\":99999999}}]}",
            "steps.0.config.ms", "");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"a b\",\"type\":\"delay\","
            "\"config\":{\"ms\":1}}]}",
            "steps.0.name", "letters, digits");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"type\":\"delay\",\"config\":{\"ms\":1}},"
            "{\"name\":\"a\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
            "steps.1.name", "used twice");
    refused(&o,
            "{\"name\":\"x\",\"steps\":[{\"name\":\"a\",\"type\":\"delay\",\"config\":{\"ms\":1},"
            "\"retry\":{\"attempts\":11}}]}",
            "steps.0.retry.attempts", "");
    refused(&o,
            "{\"name\":\"x\",\"trigger\":{\"type\":\"schedule\"},\"steps\":[{\"name\":\"a\","
            "\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
            "trigger.cron", "Required");
    refused(&o,
            "{\"name\":\"x\",\"trigger\":{\"type\":\"schedule\",\"cron\":\"61 * * * *\"},"
            "\"steps\":[{\"name\":\"a\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
            "trigger.cron", "Invalid cron expression: minute: 61 is out of 0-59");
    refused(&o,
            "{\"name\":\"x\",\"trigger\":{\"type\":\"schedule\",\"cron\":\"0 0 30 2 *\"},"
            "\"steps\":[{\"name\":\"a\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
            "trigger.cron", "no chosen month");
    refused(&o,
            "{\"name\":\"x\",\"trigger\":{\"type\":\"schedule\",\"cron\":\"0 0 * * *\","
            "\"timezone\":\"Mars/Olympus\"},\"steps\":[{\"name\":\"a\",\"type\":\"delay\","
            "\"config\":{\"ms\":1}}]}",
            "trigger.timezone", "Unknown IANA time zone");
    refused(&o,
            "{\"name\":\"x\",\"trigger\":{\"type\":\"manual\",\"cron\":\"0 0 * * *\"},"
            "\"steps\":[{\"name\":\"a\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
            "trigger.cron", "schedule triggers only");
    refused(&o, "{\"name\":\"\",\"steps\":[{\"name\":\"a\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
            "name", "");
    /* fifty-one steps */
    char big[8192];
    size_t w = (size_t)snprintf(big, sizeof(big), "{\"name\":\"x\",\"steps\":[");
    for (int i = 0; i < 51; i++)
        w += (size_t)snprintf(big + w, sizeof(big) - w,
                              "%s{\"name\":\"s%d\",\"type\":\"delay\",\"config\":{\"ms\":1}}",
                              i ? "," : "", i);
    snprintf(big + w, sizeof(big) - w, "]}");
    refused(&o, big, "steps", "");
    /* malformed JSON and wrong types never reach the handler */
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/workflows", o.access, "{\"name\":", &r), 400);
    json_decref(r);
    cr_assert_eq(req("POST", "/api/v1/workflows", o.access, "{\"name\":1,\"steps\":{}}", &r), 400);
    json_decref(r);
    /* a PATCH is validated against what it leaves */
    char id[37], body[512], path[128];
    snprintf(body, sizeof(body), "{\"name\":\"ok\",\"steps\":[%s]}", HTTP_STEP);
    create(&o, body, id, NULL, NULL);
    snprintf(path, sizeof(path), "/api/v1/workflows/%s", id);
    cr_assert_eq(req("PATCH", path, o.access, "{\"trigger\":{\"type\":\"schedule\"}}", &r), 400);
    cr_assert(strstr(issues_of(r), "trigger.cron: Required"), "%s", issues_of(r));
    json_decref(r);
    cr_assert_eq(req("GET", path, o.access, NULL, &r), 200);
    cr_assert_eq(jint(r, "version"), 1, "nothing changed");
    json_decref(r);
    cr_assert_eq(count("SELECT count(*) FROM workflows WHERE tenant_id = $1", o.tenant_id), 1);
}

Test(workflows, permissions)
{
    struct account o, viewer, member;
    accounts_signup(t.app, "perm@a.example", NULL, &o);
    accounts_user_with_role(&t, &o, "viewer@a.example", "viewer", &viewer);
    accounts_user_with_role(&t, &o, "member@a.example", "member", &member);
    char id[37], body[512], path[160], exec[37];
    snprintf(body, sizeof(body),
             "{\"name\":\"p\",\"steps\":[{\"name\":\"w\",\"type\":\"delay\",\"config\":"
             "{\"ms\":1}}]}");
    create(&o, body, id, NULL, NULL);
    snprintf(path, sizeof(path), "/api/v1/workflows/%s", id);
    /* a viewer reads, and nothing else */
    cr_assert_eq(req("GET", "/api/v1/workflows", viewer.access, NULL, NULL), 200);
    cr_assert_eq(req("GET", path, viewer.access, NULL, NULL), 200);
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/workflows", viewer.access, body, &r), 403);
    cr_assert_str_eq(jstr(r, "error"), "AUTH_FORBIDDEN");
    json_decref(r);
    cr_assert_eq(req("PATCH", path, viewer.access, "{\"name\":\"v\"}", NULL), 403);
    cr_assert_eq(req("DELETE", path, viewer.access, NULL, NULL), 403);
    char sub[200];
    snprintf(sub, sizeof(sub), "%s/execute", path);
    cr_assert_eq(req("POST", sub, viewer.access, "{}", NULL), 403);
    snprintf(sub, sizeof(sub), "%s/webhook-token", path);
    cr_assert_eq(req("POST", sub, viewer.access, NULL, NULL), 403);
    snprintf(sub, sizeof(sub), "%s/signing-secret", path);
    cr_assert_eq(req("POST", sub, viewer.access, NULL, NULL), 403);
    /* a member manages and runs workflows */
    execute(&member, id, NULL, exec);
    snprintf(sub, sizeof(sub), "/api/v1/executions/%s", exec);
    cr_assert_eq(req("GET", sub, viewer.access, NULL, NULL), 200);
    snprintf(sub, sizeof(sub), "/api/v1/executions/%s/logs", exec);
    cr_assert_eq(req("GET", sub, viewer.access, NULL, NULL), 200);
    snprintf(sub, sizeof(sub), "/api/v1/executions/%s/cancel", exec);
    cr_assert_eq(req("POST", sub, viewer.access, NULL, NULL), 403);
    cr_assert_eq(req("PATCH", path, member.access, "{\"name\":\"renamed\"}", NULL), 200);
    cr_assert_eq(req("GET", path, NULL, NULL, NULL), 401);
    /* a role without workflow permissions sees nothing */
    cr_assert_eq(req("POST", "/api/v1/roles", o.access,
                     "{\"name\":\"billing-only\",\"permissions\":[\"canViewBilling\"]}", NULL),
                 201);
    struct account billing;
    accounts_user_with_role(&t, &o, "billing@a.example", "billing-only", &billing);
    cr_assert_eq(req("GET", "/api/v1/workflows", billing.access, NULL, NULL), 403);
    cr_assert_eq(req("GET", path, billing.access, NULL, NULL), 403);
    snprintf(sub, sizeof(sub), "/api/v1/executions/%s", exec);
    cr_assert_eq(req("GET", sub, billing.access, NULL, NULL), 403);
}

Test(workflows, another_tenants_workflows_and_executions_are_404)
{
    struct account a, b;
    accounts_signup(t.app, "a@a.example", NULL, &a);
    accounts_signup(t.app, "b@b.example", NULL, &b);
    char wf_b[37], exec_b[37], body[512], path[200];
    snprintf(body, sizeof(body),
             "{\"name\":\"secret-b\",\"steps\":[{\"name\":\"w\",\"type\":\"delay\",\"config\":"
             "{\"ms\":1}}]}");
    create(&b, body, wf_b, NULL, NULL);
    execute(&b, wf_b, NULL, exec_b);
    static const struct {
        const char *method, *fmt, *body;
        bool exec;
    } calls[] = {
        {"GET", "/api/v1/workflows/%s", NULL, false},
        {"PATCH", "/api/v1/workflows/%s", "{\"name\":\"pwned\"}", false},
        {"DELETE", "/api/v1/workflows/%s", NULL, false},
        {"GET", "/api/v1/workflows/%s/versions/1", NULL, false},
        {"POST", "/api/v1/workflows/%s/execute", "{}", false},
        {"GET", "/api/v1/workflows/%s/executions", NULL, false},
        {"POST", "/api/v1/workflows/%s/webhook-token", NULL, false},
        {"POST", "/api/v1/workflows/%s/signing-secret", NULL, false},
        {"GET", "/api/v1/executions/%s", NULL, true},
        {"GET", "/api/v1/executions/%s/logs", NULL, true},
        {"POST", "/api/v1/executions/%s/cancel", NULL, true},
    };
    for (size_t i = 0; i < ARRAY_LEN(calls); i++) {
        snprintf(path, sizeof(path), calls[i].fmt, calls[i].exec ? exec_b : wf_b);
        json_t *r;
        int st = req(calls[i].method, path, a.access, calls[i].body, &r);
        cr_assert_eq(st, 404, "%s %s: %d", calls[i].method, path, st);
        cr_assert_str_eq(jstr(r, "error"), "RESOURCE_NOT_FOUND");
        json_decref(r);
    }
    /* B's workflow is as B left it, with its one queued execution */
    snprintf(path, sizeof(path), "/api/v1/workflows/%s", wf_b);
    json_t *r;
    cr_assert_eq(req("GET", path, b.access, NULL, &r), 200);
    cr_assert_str_eq(jstr(r, "name"), "secret-b");
    json_decref(r);
    json_t *e = get_exec(&b, exec_b);
    cr_assert_str_eq(jstr(e, "status"), "queued");
    json_decref(e);
    cr_assert_eq(
        count("SELECT count(*) FROM workflow_executions WHERE tenant_id = $1", b.tenant_id), 1);
    /* the WebSocket room check */
    struct db_conn *c = dbt_acquire(t.db);
    cr_assert(workflows_execution_visible(c, b.tenant_id, exec_b));
    cr_assert(!workflows_execution_visible(c, a.tenant_id, exec_b));
    cr_assert(!workflows_execution_visible(c, b.tenant_id, "not-a-uuid"));
    db_release(c);
}

/* ---- executions ------------------------------------------------------------------------------- */

/* HMAC-SHA256 of "<t>.<body>" with the secret, as a receiver checks it. */
static bool signature_ok(const char *header, const char *secret, const char *body)
{
    const char *tp = strstr(header, "t="), *vp = strstr(header, "v1=");
    if (!tp || !vp)
        return false;
    char ts[32];
    snprintf(ts, sizeof(ts), "%.*s", (int)strcspn(tp + 2, ","), tp + 2);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state s;
    crypto_auth_hmacsha256_init(&s, (const unsigned char *)secret, strlen(secret));
    crypto_auth_hmacsha256_update(&s, (const unsigned char *)ts, strlen(ts));
    crypto_auth_hmacsha256_update(&s, (const unsigned char *)".", 1);
    crypto_auth_hmacsha256_update(&s, (const unsigned char *)body, strlen(body));
    crypto_auth_hmacsha256_final(&s, mac);
    char hex[crypto_auth_hmacsha256_BYTES * 2 + 1];
    sodium_bin2hex(hex, sizeof(hex), mac, sizeof(mac));
    long long t0 = strtoll(ts, NULL, 10);
    return strcmp(vp + 3, hex) == 0 && llabs(t0 - (long long)time(NULL)) < 60;
}

/* The events of an execution's log, all of them (new reference). */
static json_t *all_logs(const struct account *w, const char *exec, long long after)
{
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/executions/%s/logs?after=%lld&limit=1000", exec, after);
    json_t *r;
    cr_assert_eq(req("GET", path, w->access, NULL, &r), 200);
    json_t *d = json_incref(json_object_get(r, "data"));
    json_decref(r);
    return d;
}

Test(workflows, end_to_end_with_every_step_type)
{
    struct account o, viewer;
    accounts_signup(t.app, "e2e@a.example", NULL, &o);
    accounts_user_with_role(&t, &o, "watcher@a.example", "viewer", &viewer);
    char hook[160], target[160], body[4096], id[37], secret[64], exec[37];
    fake_http_url(fh, "/orders", target, sizeof(target));
    fake_http_url(fh, "/events", hook, sizeof(hook));
    fake_http_on(fh, "/orders", -1,
                 &(struct fake_http_reply){.status = 201, .body = "{\"orderId\":\"o-77\"}"});
    snprintf(body, sizeof(body),
             "{\"name\":\"everything\",\"steps\":["
             "{\"name\":\"create-order\",\"type\":\"http_request\",\"config\":{\"method\":"
             "\"POST\",\"url\":\"%s?customer={{input.customer}}\",\"headers\":{\"X-Trace\":"
             "\"{{execution.id}}\"},\"body\":{\"item\":\"{{input.item}}\",\"qty\":2}}},"
             "{\"name\":\"pause\",\"type\":\"delay\",\"config\":{\"ms\":30}},"
             "{\"name\":\"announce\",\"type\":\"webhook_event\",\"config\":{\"url\":\"%s\","
             "\"event\":\"order.created\",\"data\":{\"order\":"
             "\"{{steps.create-order.output.body.orderId}}\"}}},"
             "{\"name\":\"tell\",\"type\":\"notify\",\"config\":{\"subject\":\"Order "
             "{{steps.create-order.output.body.orderId}}\",\"text\":\"Done for "
             "{{input.customer}}\",\"emails\":[\"boss@a.example\"],\"userIds\":[\"%s\"]}}]}",
             target, hook, viewer.user_id);
    create(&o, body, id, secret, NULL);
    execute(&o, id, "{\"input\":{\"customer\":\"c-1\",\"item\":\"lamp\"}}", exec);

    struct job_runner *r = runner();
    json_t *e = wait_exec(&o, exec, "succeeded", -1, 20000);
    /* per-step status, attempts, outputs; timings */
    json_t *steps = json_object_get(e, "steps");
    cr_assert_eq(json_array_size(steps), 4);
    for (size_t i = 0; i < 4; i++) {
        json_t *s = json_array_get(steps, i);
        cr_assert_str_eq(jstr(s, "status"), "succeeded", "step %zu", i);
        cr_assert_eq(jint(s, "attempts"), 1);
        cr_assert_not_null(jstr(s, "startedAt"));
        cr_assert_not_null(jstr(s, "finishedAt"));
    }
    json_t *out0 = json_object_get(json_array_get(steps, 0), "output");
    cr_assert_eq(jint(out0, "status"), 201);
    cr_assert_str_eq(jstr(json_object_get(out0, "body"), "orderId"), "o-77");
    cr_assert_eq(jint(json_object_get(json_array_get(steps, 1), "output"), "delayedMs"), 30);
    cr_assert_str_eq(jstr(e, "trigger"), "manual");
    cr_assert_str_eq(jstr(e, "triggeredBy"), o.user_id);
    cr_assert_eq(jint(e, "version"), 1);
    cr_assert_str_eq(jstr(json_object_get(e, "input"), "customer"), "c-1");
    cr_assert_eq(jint(json_object_get(e, "output"), "emailsQueued"), 1, "the last step's output");
    cr_assert(json_is_null(json_object_get(e, "error")));
    cr_assert_not_null(jstr(e, "startedAt"));
    cr_assert_not_null(jstr(e, "finishedAt"));

    /* what the target and the webhook receiver got */
    cr_assert_eq(fake_http_count(fh), 2);
    const struct fake_http_req *q = fake_http_req(fh, 0);
    cr_assert_str_eq(q->method, "POST");
    cr_assert_str_eq(q->path, "/orders?customer=c-1");
    json_t *sent = json_loads(q->body, 0, NULL); /* key order is the database's (jsonb) */
    json_t *want = json_pack("{s:s, s:i}", "item", "lamp", "qty", 2);
    cr_assert(json_equal(sent, want), "%s", q->body);
    json_decref(want);
    json_decref(sent);
    char v[512];
    cr_assert(fake_http_header(q, "x-trace", v, sizeof(v)));
    cr_assert_str_eq(v, exec);
    cr_assert(fake_http_header(q, "content-type", v, sizeof(v)));
    cr_assert_str_eq(v, "application/json");
    q = fake_http_req(fh, 1);
    cr_assert_str_eq(q->path, "/events");
    json_t *ev = json_loads(q->body, 0, NULL);
    cr_assert_str_eq(jstr(ev, "event"), "order.created");
    cr_assert_str_eq(jstr(ev, "executionId"), exec);
    cr_assert_str_eq(jstr(ev, "workflowId"), id);
    cr_assert_str_eq(jstr(json_object_get(ev, "data"), "order"), "o-77");
    char delivery[80];
    cr_assert(fake_http_header(q, "x-zygo-delivery", delivery, sizeof(delivery)));
    cr_assert_str_eq(delivery, jstr(ev, "id"));
    json_decref(ev);
    cr_assert(fake_http_header(q, "x-zygo-event", v, sizeof(v)));
    cr_assert_str_eq(v, "order.created");
    cr_assert(fake_http_header(q, "x-zygo-signature", v, sizeof(v)));
    cr_assert(signature_ok(v, secret, q->body), "signature %s does not verify", v);
    cr_assert(!signature_ok(v, "whsec_wrong", q->body));

    /* the email went through the notifications queue and the mailer (the dev outbox) */
    for (int i = 0; i < 200 && jobtest_count(&t, "notifications", "completed") < 1; i++)
        sleep_ms(20);
    json_t *msgs;
    cr_assert_eq(mailer_outbox_read(t.dir, &msgs), 0);
    bool mailed = false;
    size_t i;
    json_t *m;
    json_array_foreach(msgs, i, m) mailed |= strcmp(jstr(m, "to"), "boss@a.example") == 0 &&
                                              strcmp(jstr(m, "subject"), "Order o-77") == 0 &&
                                              strcmp(jstr(m, "text"), "Done for c-1") == 0;
    json_decref(msgs);
    cr_assert(mailed, "no workflow email in the outbox");
    /* the in-app notification went to the user's own room */
    char room[160];
    snprintf(room, sizeof(room), "tenant:%s:user:%s", o.tenant_id, viewer.user_id);
    json_t *inapp = captured(room);
    cr_assert_eq(json_array_size(inapp), 1);
    cr_assert_str_eq(jstr(json_array_get(inapp, 0), "type"), "notification");
    cr_assert_str_eq(jstr(json_array_get(inapp, 0), "subject"), "Order o-77");
    json_decref(inapp);

    /* live events: exactly the log, in order, seq 1..n without gaps */
    snprintf(room, sizeof(room), "tenant:%s:execution:%s", o.tenant_id, exec);
    json_t *live = captured(room), *logs = all_logs(&o, exec, 0);
    cr_assert_geq(json_array_size(logs), 12, "start, 4 × (running, succeeded), logs, finish");
    cr_assert(json_equal(live, logs), "live events differ from the log:\n%s\n%s",
              json_dumps(live, 0), json_dumps(logs, 0));
    json_array_foreach(logs, i, m) cr_assert_eq(jint(m, "seq"), (json_int_t)i + 1);
    cr_assert_str_eq(jstr(json_array_get(logs, 0), "status"), "running");
    json_t *lastev = json_array_get(logs, json_array_size(logs) - 1);
    cr_assert_str_eq(jstr(lastev, "type"), "execution.status");
    cr_assert_str_eq(jstr(lastev, "status"), "succeeded");
    cr_assert_eq(jint(e, "lastSeq"), (json_int_t)json_array_size(logs));
    cr_assert(json_equal(json_object_get(e, "logs"), logs), "GET /executions/:id has the log");
    /* after= pages the log */
    json_t *tail = all_logs(&o, exec, 10);
    cr_assert_eq(json_array_size(tail), json_array_size(logs) - 10);
    cr_assert_eq(jint(json_array_get(tail, 0), "seq"), 11);
    json_decref(tail);
    json_decref(live);
    json_decref(logs);
    json_decref(e);

    /* the executions list */
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/workflows/%s/executions", id);
    json_t *l;
    cr_assert_eq(req("GET", path, viewer.access, NULL, &l), 200);
    cr_assert_eq(jint(json_object_get(l, "pagination"), "total"), 1);
    cr_assert_str_eq(jstr(json_array_get(json_object_get(l, "data"), 0), "status"), "succeeded");
    json_decref(l);
    /* the job that ran it completed */
    cr_assert_eq(jobtest_count(&t, "workflow-execution", "completed"), 1);
    runner_stop(r);
}

Test(workflows, a_failing_step_is_retried_and_then_succeeds)
{
    struct account o;
    accounts_signup(t.app, "retry@a.example", NULL, &o);
    char url[160], body[1024], id[37], exec[37];
    fake_http_url(fh, "/flaky", url, sizeof(url));
    fake_http_on(fh, "/flaky", 2, &(struct fake_http_reply){.status = 503});
    snprintf(body, sizeof(body),
             "{\"name\":\"flaky\",\"steps\":[{\"name\":\"call\",\"type\":\"http_request\","
             "\"config\":{\"url\":\"%s\"},\"retry\":{\"attempts\":3,\"backoff\":{\"type\":"
             "\"exponential\",\"delayMs\":40}}}]}",
             url);
    create(&o, body, id, NULL, NULL);
    execute(&o, id, NULL, exec);
    struct job_runner *r = runner();
    json_t *e = wait_exec(&o, exec, "succeeded", -1, 20000);
    json_t *s = json_array_get(json_object_get(e, "steps"), 0);
    cr_assert_eq(jint(s, "attempts"), 3);
    cr_assert_eq(jint(json_object_get(s, "output"), "status"), 200);
    cr_assert_eq(fake_http_count(fh), 3);
    json_t *logs = all_logs(&o, exec, 0);
    char all[8192] = "";
    size_t w = 0, i;
    json_t *m;
    json_array_foreach(logs, i, m)
    {
        w += (size_t)snprintf(all + w, sizeof(all) - w, "%s/%s/%s|", jstr(m, "type"),
                              jstr(m, "status") ? jstr(m, "status") : jstr(m, "level"),
                              jstr(m, "message") ? jstr(m, "message") : "");
    }
    cr_assert(strstr(all, "Attempt 1 of step call failed") && strstr(all, "retrying in 40 ms"),
              "%s", all);
    cr_assert(strstr(all, "Attempt 2 of step call failed") && strstr(all, "retrying in 80 ms"),
              "%s", all);
    cr_assert(strstr(all, "answered HTTP 503"), "%s", all);
    json_decref(logs);
    json_decref(e);
    runner_stop(r);
}

Test(workflows, a_step_that_keeps_failing_fails_the_execution)
{
    struct account o;
    accounts_signup(t.app, "fail@a.example", NULL, &o);
    char url[160], body[1024], id[37], exec[37], after[160];
    fake_http_url(fh, "/down", url, sizeof(url));
    fake_http_url(fh, "/never", after, sizeof(after));
    fake_http_on(fh, "/down", -1, &(struct fake_http_reply){.status = 500, .body = "boom"});
    fake_http_on(fh, "/bad", -1, &(struct fake_http_reply){.status = 404});
    snprintf(body, sizeof(body),
             "{\"name\":\"down\",\"steps\":[{\"name\":\"call\",\"type\":\"http_request\","
             "\"config\":{\"url\":\"%s\"},\"retry\":{\"attempts\":2,\"backoff\":{\"type\":"
             "\"fixed\",\"delayMs\":10}}},{\"name\":\"next\",\"type\":\"http_request\","
             "\"config\":{\"url\":\"%s\"}}]}",
             url, after);
    create(&o, body, id, NULL, NULL);
    execute(&o, id, NULL, exec);
    struct job_runner *r = runner();
    json_t *e = wait_exec(&o, exec, "failed", -1, 20000);
    cr_assert(strstr(jstr(e, "error"), "Step call failed") &&
                  strstr(jstr(e, "error"), "answered HTTP 500"),
              "%s", jstr(e, "error"));
    json_t *s0 = json_array_get(json_object_get(e, "steps"), 0);
    cr_assert_str_eq(jstr(s0, "status"), "failed");
    cr_assert_eq(jint(s0, "attempts"), 2);
    cr_assert_str_eq(jstr(json_array_get(json_object_get(e, "steps"), 1), "status"), "pending",
                     "the step after a failure never runs");
    cr_assert_eq(fake_http_count(fh), 2);
    json_decref(e);
    /* the job is in the dead-letter state, not retried */
    for (int i = 0; i < 100 && jobtest_count(&t, "workflow-execution", "failed") < 1; i++)
        sleep_ms(20);
    cr_assert_eq(jobtest_count(&t, "workflow-execution", "failed"), 1);

    /* a 4xx is not retried, whatever the attempts */
    fake_http_url(fh, "/bad", url, sizeof(url));
    snprintf(body, sizeof(body),
             "{\"name\":\"bad\",\"steps\":[{\"name\":\"call\",\"type\":\"http_request\","
             "\"config\":{\"url\":\"%s\"},\"retry\":{\"attempts\":5}}]}",
             url);
    create(&o, body, id, NULL, NULL);
    execute(&o, id, NULL, exec);
    e = wait_exec(&o, exec, "failed", -1, 20000);
    cr_assert_eq(jint(json_array_get(json_object_get(e, "steps"), 0), "attempts"), 1);
    json_decref(e);
    runner_stop(r);
}

Test(workflows, ssrf_targets_are_refused_without_retry)
{
    struct account o;
    accounts_signup(t.app, "ssrf@a.example", NULL, &o);
    t.cfg.workflow_http_allow_private = false; /* as in production */
    static const char *const urls[] = {"http://127.0.0.1:%d/", "http://169.254.169.254/latest",
                                       "http://10.0.0.1/", "http://[::1]:%d/",
                                       "http://localhost:%d/"};
    struct job_runner *r = runner();
    for (size_t i = 0; i < ARRAY_LEN(urls); i++) {
        char url[160], body[1024], id[37], exec[37];
        snprintf(url, sizeof(url), urls[i], fake_http_port(fh));
        snprintf(body, sizeof(body),
                 "{\"name\":\"ssrf%zu\",\"steps\":[{\"name\":\"call\",\"type\":\"http_request\","
                 "\"config\":{\"url\":\"%s\"},\"retry\":{\"attempts\":3}}]}",
                 i, url);
        create(&o, body, id, NULL, NULL);
        execute(&o, id, NULL, exec);
        json_t *e = wait_exec(&o, exec, "failed", -1, 20000);
        cr_assert(strstr(jstr(e, "error"), "refused"), "%s: %s", url, jstr(e, "error"));
        cr_assert_eq(jint(json_array_get(json_object_get(e, "steps"), 0), "attempts"), 1);
        json_decref(e);
    }
    cr_assert_eq(fake_http_count(fh), 0, "a refused target was contacted");
    runner_stop(r);
}

Test(workflows, cancel_stops_a_running_step)
{
    struct account o;
    accounts_signup(t.app, "cancel@a.example", NULL, &o);
    char id[37], exec[37], path[200];
    create(&o,
           "{\"name\":\"slow\",\"steps\":[{\"name\":\"first\",\"type\":\"delay\",\"config\":"
           "{\"ms\":1}},{\"name\":\"long\",\"type\":\"delay\",\"config\":{\"ms\":60000}},"
           "{\"name\":\"after\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
           id, NULL, NULL);
    execute(&o, id, NULL, exec);
    struct job_runner *r = runner();
    json_decref(wait_exec(&o, exec, "running", 1, 20000));
    char job_id[200];
    json_t *e = get_exec(&o, exec);
    snprintf(job_id, sizeof(job_id), "%s", jstr(e, "jobId"));
    json_decref(e);
    snprintf(path, sizeof(path), "/api/v1/executions/%s/cancel", exec);
    uint64_t t0 = (uint64_t)jobs_now_ms();
    cr_assert_eq(req("POST", path, o.access, NULL, &e), 200);
    cr_assert_str_eq(jstr(e, "status"), "cancelled");
    json_t *steps = json_object_get(e, "steps");
    cr_assert_str_eq(jstr(json_array_get(steps, 0), "status"), "succeeded");
    cr_assert_str_eq(jstr(json_array_get(steps, 1), "status"), "cancelled");
    cr_assert_str_eq(jstr(json_array_get(steps, 2), "status"), "cancelled");
    json_decref(e);
    /* the worker lets go of the job well before the delay's end */
    char jpath[300];
    snprintf(jpath, sizeof(jpath), "/api/v1/jobs/%s", job_id);
    const char *state = NULL;
    json_t *j = NULL;
    for (int i = 0; i < 250; i++) {
        json_decref(j);
        cr_assert_eq(req("GET", jpath, o.access, NULL, &j), 200);
        state = jstr(j, "state");
        if (strcmp(state, "cancelled") == 0)
            break;
        sleep_ms(20);
    }
    cr_assert_str_eq(state, "cancelled");
    json_decref(j);
    cr_assert_lt((uint64_t)jobs_now_ms() - t0, 5000);
    /* and nothing more was written after the cancel */
    e = get_exec(&o, exec);
    cr_assert_str_eq(jstr(e, "status"), "cancelled");
    cr_assert_str_eq(jstr(json_array_get(json_object_get(e, "steps"), 1), "status"), "cancelled");
    json_t *logs = json_object_get(e, "logs");
    json_t *lastev = json_array_get(logs, json_array_size(logs) - 1);
    cr_assert_str_eq(jstr(lastev, "type"), "execution.step", "the step events follow the status");
    json_decref(e);
    cr_assert_eq(req("POST", path, o.access, NULL, &e), 409);
    cr_assert(strstr(jstr(e, "message"), "was cancelled"));
    json_decref(e);
    runner_stop(r);

    /* a queued execution is cancelled before any worker sees it */
    execute(&o, id, NULL, exec);
    snprintf(path, sizeof(path), "/api/v1/executions/%s/cancel", exec);
    cr_assert_eq(req("POST", path, o.access, NULL, &e), 200);
    json_decref(e);
    r = runner();
    sleep_ms(300);
    runner_stop(r);
    e = get_exec(&o, exec);
    cr_assert_str_eq(jstr(e, "status"), "cancelled");
    cr_assert(json_is_null(json_object_get(e, "startedAt")), "it never started");
    json_decref(e);
}

Test(workflows, idempotency_keys)
{
    struct account o;
    accounts_signup(t.app, "idem@a.example", NULL, &o);
    char id[37], path[200], hdr[16], first[37];
    create(&o,
           "{\"name\":\"once\",\"steps\":[{\"name\":\"w\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
           id, NULL, NULL);
    snprintf(path, sizeof(path), "/api/v1/workflows/%s/execute", id);
    json_t *r;
    int st = req_h("POST", path, o.access, "{\"input\":{\"n\":1}}", "Idempotency-Key: k-1", &r,
                   "Idempotent-Replayed", hdr, sizeof(hdr));
    cr_assert_eq(st, 202, "%d %s", st, json_dumps(r, 0));
    cr_assert_str_eq(hdr, "");
    snprintf(first, sizeof(first), "%s", jstr(r, "executionId"));
    json_decref(r);
    cr_assert_eq(req_h("POST", path, o.access, "{\"input\":{\"n\":1}}", "Idempotency-Key: k-1",
                       &r, "Idempotent-Replayed", hdr, sizeof(hdr)),
                 202);
    cr_assert_str_eq(jstr(r, "executionId"), first, "the same execution");
    cr_assert_str_eq(hdr, "true");
    json_decref(r);
    cr_assert_eq(req_h("POST", path, o.access, "{\"input\":{\"n\":2}}", "Idempotency-Key: k-1",
                       &r, NULL, NULL, 0),
                 409, "the same key with another input");
    json_decref(r);
    cr_assert_eq(req_h("POST", path, o.access, "{\"input\":{\"n\":1}}", "Idempotency-Key: k-2",
                       &r, NULL, NULL, 0),
                 202);
    cr_assert_str_neq(jstr(r, "executionId"), first);
    json_decref(r);
    cr_assert_eq(req_h("POST", path, o.access, "{}", "Idempotency-Key: bad key", &r, NULL, NULL,
                       0),
                 400);
    json_decref(r);
    cr_assert_eq(count("SELECT count(*) FROM workflow_executions WHERE workflow_id = $1", id), 2);
    cr_assert_eq(count("SELECT count(*) FROM jobs WHERE queue = 'workflow-execution' AND"
                       " tenant_id = $1",
                       o.tenant_id),
                 2, "one job per execution");
    /* a disabled workflow does not run */
    snprintf(path, sizeof(path), "/api/v1/workflows/%s", id);
    cr_assert_eq(req("PATCH", path, o.access, "{\"enabled\":false}", NULL), 200);
    snprintf(path, sizeof(path), "/api/v1/workflows/%s/execute", id);
    cr_assert_eq(req("POST", path, o.access, "{}", &r), 409);
    json_decref(r);
}

Test(workflows, webhook_trigger)
{
    struct account o;
    accounts_signup(t.app, "hook@a.example", NULL, &o);
    char id[37], manual[37], token[64], path[200], hdr[200];
    create(&o,
           "{\"name\":\"hooked\",\"trigger\":{\"type\":\"webhook\"},\"steps\":[{\"name\":\"w\","
           "\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
           id, NULL, token);
    cr_assert_eq(strlen(token), 43, "a token is returned once: %s", token);
    create(&o,
           "{\"name\":\"plain\",\"steps\":[{\"name\":\"w\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
           manual, NULL, NULL);
    snprintf(path, sizeof(path), "/api/v1/workflows/%s/trigger", id);
    json_t *r;
    /* only the hash is stored */
    cr_assert_eq(count("SELECT count(*) FROM workflows WHERE webhook_token_hash IS NOT NULL"
                       " AND id = $1",
                       id),
                 1);
    snprintf(hdr, sizeof(hdr), "X-Webhook-Token: %s", token);
    cr_assert_eq(req_h("POST", path, NULL, "{\"event\":\"push\"}", hdr, &r, NULL, NULL, 0), 202);
    char exec[37];
    snprintf(exec, sizeof(exec), "%s", jstr(r, "executionId"));
    json_decref(r);
    json_t *e = get_exec(&o, exec);
    cr_assert_str_eq(jstr(e, "trigger"), "webhook");
    cr_assert_str_eq(jstr(json_object_get(e, "input"), "event"), "push");
    cr_assert(json_is_null(json_object_get(e, "triggeredBy")));
    json_decref(e);
    /* wrong, missing, another workflow's: all the same 404 */
    cr_assert_eq(req_h("POST", path, NULL, "{}", "X-Webhook-Token: nope", &r, NULL, NULL, 0), 404);
    cr_assert_str_eq(jstr(r, "error"), "RESOURCE_NOT_FOUND");
    json_decref(r);
    cr_assert_eq(req_h("POST", path, NULL, "{}", NULL, NULL, NULL, NULL, 0), 404);
    char other[200];
    snprintf(other, sizeof(other), "/api/v1/workflows/%s/trigger", manual);
    cr_assert_eq(req_h("POST", other, NULL, "{}", hdr, NULL, NULL, NULL, 0), 404);
    /* rotation: the old token stops working */
    char rot[200];
    snprintf(rot, sizeof(rot), "/api/v1/workflows/%s/webhook-token", id);
    cr_assert_eq(req("POST", rot, o.access, NULL, &r), 200);
    char fresh[64];
    snprintf(fresh, sizeof(fresh), "%s", jstr(r, "webhookToken"));
    json_decref(r);
    cr_assert_str_neq(fresh, token);
    cr_assert_eq(req_h("POST", path, NULL, "{}", hdr, NULL, NULL, NULL, 0), 404);
    snprintf(hdr, sizeof(hdr), "X-Webhook-Token: %s", fresh);
    cr_assert_eq(req_h("POST", path, NULL, "{}", hdr, NULL, NULL, NULL, 0), 202);
    /* a deleted workflow's hook is gone */
    snprintf(other, sizeof(other), "/api/v1/workflows/%s", id);
    cr_assert_eq(req("DELETE", other, o.access, NULL, NULL), 204);
    cr_assert_eq(req_h("POST", path, NULL, "{}", hdr, NULL, NULL, NULL, 0), 404);
    cr_assert_eq(count("SELECT count(*) FROM workflow_executions WHERE workflow_id = $1", id), 2);
}

Test(workflows, an_admin_retry_resumes_a_failed_execution_at_its_failed_step)
{
    struct account o;
    accounts_signup(t.app, "again@a.example", NULL, &o);
    char first[160], second[160], body[1024], id[37], exec[37];
    fake_http_url(fh, "/first", first, sizeof(first));
    fake_http_url(fh, "/second", second, sizeof(second));
    fake_http_on(fh, "/second", 1, &(struct fake_http_reply){.status = 503});
    snprintf(body, sizeof(body),
             "{\"name\":\"two\",\"steps\":[{\"name\":\"one\",\"type\":\"http_request\","
             "\"config\":{\"url\":\"%s\"}},{\"name\":\"two\",\"type\":\"http_request\","
             "\"config\":{\"url\":\"%s\"}}]}",
             first, second);
    create(&o, body, id, NULL, NULL);
    execute(&o, id, NULL, exec);
    struct job_runner *r = runner();
    json_t *e = wait_exec(&o, exec, "failed", -1, 20000);
    char job_id[200];
    snprintf(job_id, sizeof(job_id), "%s", jstr(e, "jobId"));
    json_decref(e);
    for (int i = 0; i < 100 && jobtest_count(&t, "workflow-execution", "failed") < 1; i++)
        sleep_ms(20);
    /* the dead letter retried by an admin: the second step again, never the first */
    struct db_conn *c = dbt_bypass(t.db);
    cr_assert_eq(jobs_retry(c, job_id), 0, "%s", db_errmsg(c));
    db_release(c);
    jobs_wake();
    e = wait_exec(&o, exec, "succeeded", -1, 20000);
    json_t *steps = json_object_get(e, "steps");
    cr_assert_eq(jint(json_array_get(steps, 0), "attempts"), 1);
    cr_assert_eq(jint(json_array_get(steps, 1), "attempts"), 1, "fresh attempts");
    cr_assert(json_is_null(json_object_get(e, "error")));
    json_decref(e);
    cr_assert_eq(fake_http_count(fh), 3, "first once, second twice");
    cr_assert_str_eq(fake_http_req(fh, 2)->path, "/second");
    json_t *logs = all_logs(&o, exec, 0);
    size_t i;
    json_t *m;
    bool said = false;
    json_array_foreach(logs, i, m) said |=
        jstr(m, "message") && strcmp(jstr(m, "message"), "Execution retried from its failed step") == 0;
    cr_assert(said);
    json_decref(logs);
    runner_stop(r);
}

/* ---- schedules ------------------------------------------------------------------------------- */

struct ticker {
    int64_t now;
    int fired;
};

static void *tick_thread(void *arg)
{
    struct ticker *tk = arg;
    tk->fired = workflow_schedule_tick(t.db, tk->now);
    return NULL;
}

Test(workflows, schedules_fire_each_slot_once)
{
    struct account o;
    accounts_signup(t.app, "cron@a.example", NULL, &o);
    char id[37], path[200];
    create(&o,
           "{\"name\":\"every-minute\",\"trigger\":{\"type\":\"schedule\",\"cron\":\"* * * * *\","
           "\"timezone\":\"Europe/Berlin\"},\"steps\":[{\"name\":\"w\",\"type\":\"delay\","
           "\"config\":{\"ms\":1}}]}",
           id, NULL, NULL);
    snprintf(path, sizeof(path), "/api/v1/workflows/%s", id);
    json_t *r;
    cr_assert_eq(req("GET", path, o.access, NULL, &r), 200);
    cr_assert_not_null(jstr(r, "nextRunAt"));
    json_decref(r);
    int64_t next = count("SELECT next_fire_at FROM workflows WHERE id = $1", id);
    int64_t now = jobs_now_ms();
    cr_assert(next > now && next <= now + 60000 && next % 60000 == 0, "next %lld", (long long)next);
    cr_assert_eq(workflow_schedule_tick(t.db, next - 1), 0, "not due yet");
    /* eight tickers at the same moment (each its own connection): one fires the slot */
    struct ticker tk[8];
    pthread_t th[8];
    for (int i = 0; i < 8; i++) {
        tk[i] = (struct ticker){.now = next + 5};
        pthread_create(&th[i], NULL, tick_thread, &tk[i]);
    }
    int fired = 0;
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_assert_geq(tk[i].fired, 0);
        fired += tk[i].fired;
    }
    cr_assert_eq(fired, 1, "the slot fired %d times", fired);
    cr_assert_eq(workflow_schedule_tick(t.db, next + 10), 0, "and never again");
    cr_assert_eq(count("SELECT count(*) FROM workflow_executions WHERE workflow_id = $1", id), 1);
    cr_assert_eq(count("SELECT count(*) FROM workflow_schedule_slots WHERE workflow_id = $1", id),
                 1);
    cr_assert_eq(count("SELECT next_fire_at FROM workflows WHERE id = $1", id), next + 60000);
    snprintf(path, sizeof(path), "/api/v1/workflows/%s/executions", id);
    cr_assert_eq(req("GET", path, o.access, NULL, &r), 200);
    json_t *ex = json_array_get(json_object_get(r, "data"), 0);
    cr_assert_str_eq(jstr(ex, "trigger"), "schedule");
    cr_assert(jstr(json_object_get(ex, "input"), "scheduledAt"));
    json_decref(r);
    /* slots missed while nobody ticked: one catch-up run, then on from now */
    cr_assert_eq(workflow_schedule_tick(t.db, next + 10 * 60000 + 5), 1);
    cr_assert_eq(count("SELECT next_fire_at FROM workflows WHERE id = $1", id), next + 11 * 60000);
    /* disabled schedules do not fire */
    snprintf(path, sizeof(path), "/api/v1/workflows/%s", id);
    cr_assert_eq(req("PATCH", path, o.access, "{\"enabled\":false}", NULL), 200);
    cr_assert_eq(workflow_schedule_tick(t.db, next + 20 * 60000), 0);
    cr_assert_eq(count("SELECT count(*) FROM workflow_executions WHERE workflow_id = $1", id), 2);
}

Test(workflows, the_scheduler_thread_fires_due_slots)
{
    struct account o;
    accounts_signup(t.app, "thread@a.example", NULL, &o);
    char id[37];
    create(&o,
           "{\"name\":\"hourly\",\"trigger\":{\"type\":\"schedule\",\"cron\":\"@hourly\"},"
           "\"steps\":[{\"name\":\"w\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
           id, NULL, NULL);
    char err[128];
    struct workflow_scheduler *sch = workflow_scheduler_start(t.db, 50, 30, err, sizeof(err));
    cr_assert_not_null(sch, "%s", err);
    sleep_ms(200);
    cr_assert_eq(count("SELECT count(*) FROM workflow_executions WHERE workflow_id = $1", id), 0,
                 "not due before its hour");
    /* make the slot due now, as if the hour had come */
    struct db_conn *c = dbt_bypass(t.db);
    cr_assert_eq(db_exec(c, "UPDATE workflows SET next_fire_at = $2 WHERE id = $1",
                         DB_ARGS(DB_TEXT(id), DB_INT(jobs_now_ms() - 1000))),
                 1);
    db_release(c);
    int64_t n = 0;
    for (int i = 0; i < 100 && n == 0; i++) {
        sleep_ms(20);
        n = count("SELECT count(*) FROM workflow_executions WHERE workflow_id = $1", id);
    }
    sleep_ms(200);
    workflow_scheduler_stop(sch);
    cr_assert_eq(count("SELECT count(*) FROM workflow_executions WHERE workflow_id = $1", id), 1);
    workflow_scheduler_stop(NULL);
}

static void days_ago(int days, char out[32])
{
    time_t when = time(NULL) - (time_t)days * 24 * 3600;
    struct tm tm;
    gmtime_r(&when, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static int64_t rows_of(const char *table, const char *exec)
{
    char q[160];
    snprintf(q, sizeof(q), "SELECT count(*) FROM %s WHERE %s = $1", table,
             strcmp(table, "workflow_executions") == 0 ? "id" : "execution_id");
    return count(q, exec);
}

/* Retention (WORKFLOW_RETENTION_DAYS): executions that ended before the cut-off go, with
 * their steps and logs, in every tenant; recent ones and unfinished ones stay, whatever their
 * age; 0 keeps everything. */
Test(workflows, ended_executions_are_pruned_after_the_retention)
{
    struct account o, p;
    accounts_signup(t.app, "keep@a.example", NULL, &o);
    accounts_signup(t.app, "keep@b.example", NULL, &p);
    const char *body =
        "{\"name\":\"r\",\"steps\":[{\"name\":\"w\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}";
    char wo[37], wp[37], old[37], recent[37], unfinished[37], other[37];
    create(&o, body, wo, NULL, NULL);
    create(&p, body, wp, NULL, NULL);
    execute(&o, wo, NULL, old);
    execute(&o, wo, NULL, recent);
    execute(&o, wo, NULL, unfinished);
    execute(&p, wp, NULL, other);
    struct job_runner *r = runner();
    const char *all[] = {old, recent, unfinished};
    for (size_t i = 0; i < ARRAY_LEN(all); i++)
        json_decref(wait_exec(&o, all[i], "succeeded", -1, 10000));
    json_decref(wait_exec(&p, other, "succeeded", -1, 10000));
    runner_stop(r);
    cr_assert_gt(rows_of("workflow_execution_steps", old), 0);
    cr_assert_gt(rows_of("workflow_execution_logs", old), 0);

    char d40[32], d10[32];
    days_ago(40, d40);
    days_ago(10, d10);
    struct db_conn *c = dbt_bypass(t.db);
    const char *set_end = "UPDATE workflow_executions SET finished_at = $2 WHERE id = $1";
    cr_assert_eq(db_exec(c, set_end, DB_ARGS(DB_TEXT(old), DB_TEXT(d40))), 1);
    cr_assert_eq(db_exec(c, set_end, DB_ARGS(DB_TEXT(other), DB_TEXT(d40))), 1);
    cr_assert_eq(db_exec(c, set_end, DB_ARGS(DB_TEXT(recent), DB_TEXT(d10))), 1);
    cr_assert_eq(db_exec(c,
                         "UPDATE workflow_executions SET status = 'running', finished_at = NULL,"
                         " created_at = $2, started_at = $2 WHERE id = $1",
                         DB_ARGS(DB_TEXT(unfinished), DB_TEXT(d40))),
                 1);
    db_release(c);

    cr_assert_eq(workflow_prune(t.db, jobs_now_ms(), 0), 0, "0 days: kept forever");
    cr_assert_eq(rows_of("workflow_executions", old), 1);
    cr_assert_eq(workflow_prune(t.db, jobs_now_ms(), 30), 2, "the two that ended 40 days ago");
    cr_assert_eq(rows_of("workflow_executions", old), 0);
    cr_assert_eq(rows_of("workflow_execution_steps", old), 0, "its steps went with it");
    cr_assert_eq(rows_of("workflow_execution_logs", old), 0, "and its logs");
    cr_assert_eq(rows_of("workflow_executions", other), 0, "in every tenant");
    cr_assert_eq(rows_of("workflow_executions", recent), 1);
    cr_assert_gt(rows_of("workflow_execution_logs", recent), 0);
    cr_assert_eq(rows_of("workflow_executions", unfinished), 1, "never one still running");
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/executions/%s", old);
    cr_assert_eq(req("GET", path, o.access, NULL, NULL), 404);
    json_decref(get_exec(&o, recent));
    cr_assert_eq(workflow_prune(t.db, jobs_now_ms(), 30), 0, "nothing more to do");
    cr_assert_eq(workflow_prune(t.db, jobs_now_ms(), 5), 1, "a shorter retention takes more");
    cr_assert_eq(rows_of("workflow_executions", recent), 0);
}

Test(workflows, an_execution_whose_job_ended_is_closed)
{
    struct account o;
    accounts_signup(t.app, "orphan@a.example", NULL, &o);
    char id[37], exec[37];
    create(&o,
           "{\"name\":\"o\",\"steps\":[{\"name\":\"w\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
           id, NULL, NULL);
    execute(&o, id, NULL, exec);
    /* its job failed for good without the processor (e.g. stalled too often) */
    sql("UPDATE jobs SET state = 'failed', claimable = false, error = 'stalled too often'"
        " WHERE id ="
        " (SELECT job_id FROM workflow_executions WHERE id = $1)",
        exec);
    cr_assert_geq(workflow_schedule_tick(t.db, jobs_now_ms()), 0);
    json_t *e = get_exec(&o, exec);
    cr_assert_str_eq(jstr(e, "status"), "failed");
    cr_assert(strstr(jstr(e, "error"), "stalled too often"), "%s", jstr(e, "error"));
    cr_assert_str_eq(jstr(json_array_get(json_object_get(e, "steps"), 0), "status"), "cancelled");
    json_decref(e);
}

/* ---- live events: a client that joins mid-run ------------------------------------------------ */

Test(workflows, a_late_subscriber_merges_the_log_and_live_events_without_gaps)
{
    struct account o;
    accounts_signup(t.app, "late@a.example", NULL, &o);
    char id[37], exec[37], room[160];
    create(&o,
           "{\"name\":\"steps\",\"steps\":[{\"name\":\"a\",\"type\":\"delay\",\"config\":{\"ms\":"
           "100}},{\"name\":\"b\",\"type\":\"delay\",\"config\":{\"ms\":100}},{\"name\":\"c\","
           "\"type\":\"delay\",\"config\":{\"ms\":100}},{\"name\":\"d\",\"type\":\"delay\","
           "\"config\":{\"ms\":100}}]}",
           id, NULL, NULL);
    execute(&o, id, NULL, exec);
    snprintf(room, sizeof(room), "tenant:%s:execution:%s", o.tenant_id, exec);
    struct job_runner *r = runner();
    json_decref(wait_exec(&o, exec, "running", 1, 20000));
    /* the protocol of docs/workflows.md: subscribe (here: remember where the live stream
     * starts), then read the log so far, then keep live events with a greater seq */
    json_t *before = captured(room);
    size_t joined = json_array_size(before);
    json_decref(before);
    json_t *got = all_logs(&o, exec, 0);
    json_int_t last = jint(json_array_get(got, json_array_size(got) - 1), "seq");
    json_decref(wait_exec(&o, exec, "succeeded", -1, 20000));
    runner_stop(r);
    json_t *live = captured(room);
    size_t i;
    json_t *m;
    json_array_foreach(live, i, m)
    {
        if (i >= joined && jint(m, "seq") > last) {
            json_array_append(got, m);
            last = jint(m, "seq");
        }
    }
    json_array_foreach(got, i, m) cr_assert_eq(jint(m, "seq"), (json_int_t)i + 1, "a gap");
    json_t *logs = all_logs(&o, exec, 0);
    cr_assert(json_equal(got, logs), "the merged stream is the log");
    cr_assert_str_eq(jstr(json_array_get(got, json_array_size(got) - 1), "status"), "succeeded");
    json_decref(logs);
    json_decref(live);
    json_decref(got);
}

/* ---- a worker process killed mid-execution ---------------------------------------------------- */

static const char *const *proc_env(void)
{
    static char data[300];
    static const char *env[32];
    size_t n = 0;
    snprintf(data, sizeof(data), "ZYGO_DATA_DIR=%s", t.dir);
    env[n++] = "NODE_ENV=test";
    env[n++] = "ZYGO_ENV_FILE=/nonexistent";
    env[n++] = "LOG_LEVEL=info";
    env[n++] = "JOBS_LEASE_MS=1000";
    env[n++] = "JOBS_POLL_MS=20";
    env[n++] = "JOBS_SWEEP_INTERVAL_MS=100";
    env[n++] = "WORKFLOW_HTTP_ALLOW_PRIVATE=true";
    env[n++] = data;
    for (size_t i = 0; t.tdb.env[i]; i++)
        env[n++] = t.tdb.env[i];
    env[n] = NULL;
    return env;
}

static pid_t worker(const char *name)
{
    char log[400];
    snprintf(log, sizeof(log), "%s/%s", t.dir, name);
    return spawn_zygo(
        (const char *const[]){"zygo", "worker", "--queues", "workflow-execution", NULL},
        proc_env(), log);
}

Test(workflows, a_killed_worker_s_execution_finishes_in_another)
{
    struct account o;
    accounts_signup(t.app, "kill@a.example", NULL, &o);
    char url[160], body[1024], id[37], exec[37];
    fake_http_url(fh, "/once", url, sizeof(url));
    snprintf(body, sizeof(body),
             "{\"name\":\"durable\",\"steps\":[{\"name\":\"call\",\"type\":\"http_request\","
             "\"config\":{\"url\":\"%s\",\"method\":\"POST\"}},{\"name\":\"long\",\"type\":"
             "\"delay\",\"config\":{\"ms\":3000}},{\"name\":\"end\",\"type\":\"delay\","
             "\"config\":{\"ms\":1}}]}",
             url);
    create(&o, body, id, NULL, NULL);
    execute(&o, id, NULL, exec);
    pid_t w1 = worker("w1.log");
    json_decref(wait_exec(&o, exec, "running", 1, 20000));
    kill(w1, SIGKILL);
    cr_assert_eq(wait_child(w1, 5000), 128 + SIGKILL);
    json_t *e = get_exec(&o, exec);
    cr_assert_str_eq(jstr(e, "status"), "running", "left running by the dead worker");
    json_decref(e);
    pid_t w2 = worker("w2.log");
    e = wait_exec(&o, exec, "succeeded", -1, 30000);
    kill(w2, SIGTERM);
    cr_assert_eq(wait_child(w2, 10000), 0);
    json_t *steps = json_object_get(e, "steps");
    cr_assert_eq(jint(json_array_get(steps, 0), "attempts"), 1, "a succeeded step never reruns");
    cr_assert_eq(jint(json_array_get(steps, 1), "attempts"), 2, "the interrupted step reran");
    cr_assert_eq(fake_http_count(fh), 1, "the request was sent once");
    bool resumed = false;
    size_t i;
    json_t *m;
    json_array_foreach(json_object_get(e, "logs"), i, m) resumed |=
        jstr(m, "message") && strstr(jstr(m, "message"), "Resumed");
    cr_assert(resumed, "the log says the run resumed");
    json_decref(e);
}

/* ---- over a real WebSocket ------------------------------------------------------------------- */

static struct tserver srv;

static void ws_setup(void)
{
    static const char *const extra[] = {"RATE_LIMIT_ENABLED=false",
                                        "WORKFLOW_HTTP_ALLOW_PRIVATE=true", NULL};
    cr_assert_eq(workflow_rooms_register(), 0);
    tserver_start(&srv, extra, NULL, 0);
    t = srv.env; /* the helpers above work on the server's app and database */
    fh = fake_http_start();
    cr_assert_not_null(fh);
}

static void ws_teardown(void)
{
    job_runner_stop(active, 5);
    fake_http_stop(fh);
    tserver_stop(&srv);
}

TestSuite(workflows_ws, .init = ws_setup, .fini = ws_teardown, .timeout = 120);

static void ws_connect(struct wsc *c, const struct account *w)
{
    char target[4200];
    snprintf(target, sizeof(target), "/ws?token=%s", w->access);
    cr_assert_eq(wsc_open(c, srv.port, target, NULL), 101, "%s", c->head);
    cr_assert(wsc_expect_type(c, "connected", NULL, 3000));
}

/* "subscribed", or the error's message. */
static char *ws_subscribe(struct wsc *c, const char *room)
{
    static char out[128];
    char msg[300];
    snprintf(msg, sizeof(msg), "{\"type\":\"subscribe\",\"room\":\"%s\"}", room);
    cr_assert_eq(wsc_send_text(c, msg), 0);
    json_t *m = wsc_recv_json(c, 5000);
    cr_assert_not_null(m, "no answer to subscribe");
    snprintf(out, sizeof(out), "%s",
             strcmp(jstr(m, "type"), "subscribed") == 0 ? "subscribed" : jstr(m, "message"));
    json_decref(m);
    return out;
}

Test(workflows_ws, live_step_events_over_a_websocket_then_the_final_state_via_rest)
{
    struct account o, other, billing;
    accounts_signup(t.app, "ws@a.example", NULL, &o);
    accounts_signup(t.app, "ws@b.example", NULL, &other);
    char url[160], body[1024], id[37], exec[37], room[200];
    fake_http_url(fh, "/ping", url, sizeof(url));
    snprintf(body, sizeof(body),
             "{\"name\":\"live\",\"steps\":[{\"name\":\"a\",\"type\":\"delay\",\"config\":{\"ms\":"
             "200}},{\"name\":\"call\",\"type\":\"http_request\",\"config\":{\"url\":\"%s\"}},"
             "{\"name\":\"b\",\"type\":\"delay\",\"config\":{\"ms\":200}}]}",
             url);
    create(&o, body, id, NULL, NULL);
    execute(&o, id, NULL, exec);
    snprintf(room, sizeof(room), "tenant:%s:execution:%s", o.tenant_id, exec);

    /* who may follow it: the tenant's users with the permission, for an execution that exists */
    struct wsc c, x;
    ws_connect(&x, &other);
    cr_assert_str_eq(ws_subscribe(&x, room), "Access denied to room", "another tenant");
    wsc_close(&x);
    cr_assert_eq(req("POST", "/api/v1/roles", o.access,
                     "{\"name\":\"billing-only\",\"permissions\":[\"canViewBilling\"]}", NULL),
                 201);
    accounts_user_with_role(&t, &o, "billing@ws.example", "billing-only", &billing);
    ws_connect(&x, &billing);
    cr_assert_str_eq(ws_subscribe(&x, room), "Access denied to room", "no workflow permission");
    wsc_close(&x);
    ws_connect(&c, &o);
    char nowhere[200];
    snprintf(nowhere, sizeof(nowhere), "tenant:%s:execution:0192f0c1-7a3b-7c4d-8e5f-0123456789ab",
             o.tenant_id);
    cr_assert_str_eq(ws_subscribe(&c, nowhere), "Access denied to room", "no such execution");
    cr_assert_str_eq(ws_subscribe(&c, room), "subscribed");

    /* the run, followed live */
    struct job_runner *r = runner_on(app_realtime(srv.env.app));
    json_t *got = json_array();
    bool done = false;
    while (!done) {
        json_t *m = wsc_recv_json(&c, 15000);
        cr_assert_not_null(m, "the live stream stopped after %zu events", json_array_size(got));
        cr_assert_str_eq(jstr(m, "executionId"), exec);
        done = strcmp(jstr(m, "type"), "execution.status") == 0 && jstr(m, "status") &&
               strcmp(jstr(m, "status"), "succeeded") == 0;
        json_array_append_new(got, m);
    }
    runner_stop(r);
    wsc_close(&c);
    /* every step's transitions arrived in order, seq 1..n, and they are the log */
    size_t i;
    json_t *m;
    char seen[1024] = "";
    size_t w = 0;
    json_array_foreach(got, i, m)
    {
        cr_assert_eq(jint(m, "seq"), (json_int_t)i + 1);
        if (strcmp(jstr(m, "type"), "execution.step") == 0)
            w += (size_t)snprintf(seen + w, sizeof(seen) - w, "%lld:%s ",
                                  (long long)jint(m, "stepIndex"), jstr(m, "status"));
    }
    cr_assert_str_eq(seen, "0:running 0:succeeded 1:running 1:succeeded 2:running 2:succeeded ");
    json_t *logs = all_logs(&o, exec, 0);
    cr_assert(json_equal(got, logs));
    json_decref(logs);
    json_decref(got);
    /* the final state via REST */
    json_t *e = get_exec(&o, exec);
    cr_assert_str_eq(jstr(e, "status"), "succeeded");
    cr_assert_eq(jint(json_object_get(json_array_get(json_object_get(e, "steps"), 1), "output"),
                      "status"),
                 200);
    json_decref(e);
}

/* The run happens in a `zygo worker` process: its step events reach this server's WebSocket
 * through the database relay (the worker's bus), in order and once each. */
Test(workflows_ws, events_of_a_run_in_a_worker_process_reach_the_socket)
{
    struct account o;
    accounts_signup(t.app, "relay@a.example", NULL, &o);
    char id[37], exec[37], room[200];
    create(&o,
           "{\"name\":\"relayed\",\"steps\":[{\"name\":\"a\",\"type\":\"delay\",\"config\":{\"ms\":"
           "100}},{\"name\":\"b\",\"type\":\"delay\",\"config\":{\"ms\":100}}]}",
           id, NULL, NULL);
    execute(&o, id, NULL, exec);
    snprintf(room, sizeof(room), "tenant:%s:execution:%s", o.tenant_id, exec);
    struct wsc c;
    ws_connect(&c, &o);
    cr_assert_str_eq(ws_subscribe(&c, room), "subscribed");
    pid_t w = worker("relay.log"); /* no runner in this process: only the worker can run it */
    char seen[512] = "";
    size_t n = 0;
    long long last_seq = 0;
    for (bool done = false; !done;) {
        json_t *m = wsc_recv_json(&c, 20000);
        cr_assert_not_null(m, "no event from the worker process after \"%s\"", seen);
        cr_assert_str_eq(jstr(m, "executionId"), exec);
        cr_assert_gt(jint(m, "seq"), last_seq, "in order, once each");
        last_seq = jint(m, "seq");
        if (strcmp(jstr(m, "type"), "execution.step") == 0)
            n += (size_t)snprintf(seen + n, sizeof(seen) - n, "%lld:%s ",
                                  (long long)jint(m, "stepIndex"), jstr(m, "status"));
        done = strcmp(jstr(m, "type"), "execution.status") == 0 && jstr(m, "status") &&
               strcmp(jstr(m, "status"), "succeeded") == 0;
        json_decref(m);
    }
    wsc_close(&c);
    kill(w, SIGTERM);
    cr_assert_eq(wait_child(w, 10000), 0);
    cr_assert_str_eq(seen, "0:running 0:succeeded 1:running 1:succeeded ");
}
