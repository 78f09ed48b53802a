/* Jobs over HTTP and in real processes: GET /api/v1/jobs/:id (tenant-scoped: another tenant's
 * job and system jobs are 404, no token is 401), the admin endpoints (403 for a tenant owner;
 * queues with counts, failed jobs paginated, retry and cancel audited), and the workers as
 * processes: `zygo worker` killed with SIGKILL mid-job (the job is recovered from its stalled
 * lease and finished by another worker), SIGTERM letting a running job finish (or giving it
 * back at the deadline), two workers sharing one queue, and `zygo serve` running the queues
 * itself unless JOBS_IN_PROCESS=false. The processes run the diagnostic queue "zygo-test"
 * (ZYGO_TEST_QUEUES=1, src/jobs/queues.c). */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define ZYGO_JOBS_INTERNAL 1
#include "accounts.h"
#include "dbtest.h"
#include "jobs/queue.h"
#include "support.h"

static struct tenv t;

static void setup(void)
{
    /* before anything reads the queue table: this process knows "zygo-test" too */
    setenv("ZYGO_TEST_QUEUES", "1", 1);
    static const char *const extra[] = {"RATE_LIMIT_ENABLED=false", NULL};
    tenv_setup(&t, extra, NULL, 0);
}

static void teardown(void)
{
    tenv_teardown(&t);
}

TestSuite(jobs_api, .init = setup, .fini = teardown, .timeout = 90);

/* ---- helpers ------------------------------------------------------------------------------ */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static struct db_conn *bypass(void)
{
    struct db_conn *c = dbt_acquire(t.db);
    db_set_rls_bypass(c, true);
    return c;
}

static void make_global_admin(const struct account *m)
{
    struct db_conn *c = bypass();
    cr_assert_eq(db_exec(c, "UPDATE users SET is_global_admin = $2 WHERE id = $1",
                         DB_ARGS(DB_TEXT(m->user_id), DB_BOOL(true))),
                 1, "%s", db_errmsg(c));
    db_release(c);
}

static void enqueue(const char *queue, const char *tenant, const char *data,
                    const struct job_opts *o, char id[JOB_ID_MAX])
{
    struct db_conn *c = bypass();
    cr_assert_eq(jobs_enqueue(c, queue, NULL, tenant, data, o, id), 0, "%s", db_errmsg(c));
    db_release(c);
}

static json_t *job(const char *id)
{
    struct db_conn *c = bypass();
    json_t *j = jobs_get_json(c, id, NULL);
    db_release(c);
    cr_assert_not_null(j, "job %s is gone", id);
    return j;
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t jint(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

static bool wait_state(const char *id, const char *state, int ms)
{
    for (int waited = 0; waited <= ms; waited += 20) {
        json_t *j = job(id);
        bool ok = strcmp(jstr(j, "state"), state) == 0;
        json_decref(j);
        if (ok)
            return true;
        sleep_ms(20);
    }
    return false;
}

static int64_t count_bypass(const char *sql, const char *arg)
{
    struct db_conn *c = bypass();
    int64_t n = dbt_query_int(c, sql, DB_ARGS(DB_TEXT(arg)));
    db_release(c);
    return n;
}

/* ---- GET /api/v1/jobs/:id ----------------------------------------------------------------- */

Test(jobs_api, a_tenant_sees_its_own_jobs_only)
{
    struct account a, b;
    accounts_signup(t.app, "ann@a.example", NULL, &a);
    accounts_signup(t.app, "bob@b.example", NULL, &b);
    char mine[JOB_ID_MAX], theirs[JOB_ID_MAX], sys[JOB_ID_MAX];
    enqueue("notifications", a.tenant_id, "{\"secret\":\"payload\"}", NULL, mine);
    enqueue("notifications", b.tenant_id, NULL, NULL, theirs);
    enqueue("notifications", NULL, NULL, NULL, sys);
    char path[256];
    json_t *r;

    snprintf(path, sizeof(path), "/api/v1/jobs/%s", mine);
    cr_assert_eq(api_req(t.app, "GET", path, NULL, NULL, &r), 401);
    cr_assert_str_eq(jstr(r, "error"), "AUTH_UNAUTHORIZED");
    json_decref(r);
    cr_assert_eq(api_req(t.app, "GET", path, a.access, NULL, &r), 200);
    cr_assert_str_eq(jstr(r, "id"), mine);
    cr_assert_str_eq(jstr(r, "queue"), "notifications");
    cr_assert_str_eq(jstr(r, "state"), "waiting");
    cr_assert_str_eq(jstr(r, "tenantId"), a.tenant_id);
    cr_assert_eq(jint(r, "maxAttempts"), 3);
    cr_assert_eq(jint(r, "progress"), 0);
    cr_assert_null(json_object_get(r, "data"));
    char *text = json_dumps(r, 0);
    cr_assert_null(strstr(text, "payload"), "the payload leaked: %s", text);
    free(text);
    json_decref(r);

    /* another tenant's job and a system job are as absent as a missing one */
    const char *others[] = {theirs, sys, "no-such-job", "0192f0c1-7a3b-7c4d-8e5f-0123456789ab"};
    for (size_t i = 0; i < ARRAY_LEN(others); i++) {
        snprintf(path, sizeof(path), "/api/v1/jobs/%s", others[i]);
        cr_assert_eq(api_req(t.app, "GET", path, a.access, NULL, &r), 404, "%s", others[i]);
        cr_assert_str_eq(jstr(r, "error"), "RESOURCE_NOT_FOUND");
        json_decref(r);
    }
    char longid[300] = "/api/v1/jobs/";
    memset(longid + strlen(longid), 'x', 129);
    cr_assert_eq(api_req(t.app, "GET", longid, a.access, NULL, &r), 400);
    cr_assert_str_eq(jstr(r, "error"), "VALIDATION_ERROR");
    json_decref(r);
}

/* ---- admin -------------------------------------------------------------------------------- */

static atomic_bool api_fail = true;

static enum job_result api_process(struct job *j)
{
    if (atomic_load(&api_fail)) {
        job_set_error(j, "upstream refused");
        return JOB_UNRECOVERABLE;
    }
    job_set_result(j, json_pack("{s:b}", "ok", 1));
    return JOB_DONE;
}

static const struct job_queue_def api_q[] = {{.name = "api-work", .process = api_process}};

Test(jobs_api, admin_endpoints_are_for_global_admins_only)
{
    struct account owner;
    accounts_signup(t.app, "owner@a.example", NULL, &owner);
    char id[JOB_ID_MAX];
    enqueue("notifications", owner.tenant_id, NULL, NULL, id);
    char get[200], retry[200], cancel[200];
    snprintf(get, sizeof(get), "/api/v1/admin/jobs/%s", id);
    snprintf(retry, sizeof(retry), "/api/v1/admin/jobs/%s/retry", id);
    snprintf(cancel, sizeof(cancel), "/api/v1/admin/jobs/%s/cancel", id);
    struct {
        const char *method, *path;
    } routes[] = {{"GET", "/api/v1/admin/jobs/queues"},
                  {"GET", "/api/v1/admin/jobs/failed"},
                  {"GET", get},
                  {"POST", retry},
                  {"POST", cancel}};
    json_t *r;
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        cr_assert_eq(api_req(t.app, routes[i].method, routes[i].path, NULL, NULL, &r), 401);
        json_decref(r);
        cr_assert_eq(api_req(t.app, routes[i].method, routes[i].path, owner.access, NULL, &r), 403,
                     "%s %s", routes[i].method, routes[i].path);
        cr_assert_str_eq(jstr(r, "error"), "AUTH_FORBIDDEN");
        json_decref(r);
    }
    json_t *j = job(id);
    cr_assert_str_eq(jstr(j, "state"), "waiting", "the refused cancel changed nothing");
    json_decref(j);
}

Test(jobs_api, an_admin_lists_queues_and_failed_jobs_and_retries_and_cancels)
{
    struct account root, acme;
    accounts_signup(t.app, "root@ops.example", NULL, &root);
    make_global_admin(&root);
    accounts_signup(t.app, "owner@acme.example", NULL, &acme);
    jobs_queues_register(api_q, 1);
    char failed[3][JOB_ID_MAX], waiting[JOB_ID_MAX];
    for (int i = 0; i < 3; i++)
        enqueue("api-work", i == 0 ? acme.tenant_id : NULL, NULL, NULL, failed[i]);
    char err[256];
    struct job_env env = {.cfg = &t.cfg, .db = t.db};
    struct job_runner_options o = {.poll_ms = 10, .sweep_interval_ms = 60000};
    struct job_runner *r = job_runner_start(&env, api_q, 1, &o, err, sizeof(err));
    cr_assert_not_null(r, "%s", err);
    for (int i = 0; i < 3; i++)
        cr_assert(wait_state(failed[i], "failed", 5000));
    enqueue("archive", acme.tenant_id, NULL, NULL, waiting);

    json_t *res;
    cr_assert_eq(api_req(t.app, "GET", "/api/v1/admin/jobs/queues", root.access, NULL, &res), 200);
    json_t *data = json_object_get(res, "data"), *q;
    size_t i;
    bool seen_work = false, seen_archive = false;
    json_array_foreach (data, i, q) {
        json_t *counts = json_object_get(q, "counts");
        if (strcmp(jstr(q, "name"), "api-work") == 0) {
            seen_work = true;
            cr_assert_eq(jint(counts, "failed"), 3);
            cr_assert_eq(jint(counts, "waiting"), 0);
        }
        if (strcmp(jstr(q, "name"), "archive") == 0) {
            seen_archive = true;
            cr_assert_eq(jint(counts, "waiting"),
                         count_bypass("SELECT count(*) FROM jobs WHERE queue = $1"
                                      " AND state = 'waiting'",
                                      "archive"));
            cr_assert_geq(jint(counts, "waiting"), 1);
        }
    }
    cr_assert(seen_work && seen_archive);
    json_decref(res);

    cr_assert_eq(
        api_req(t.app, "GET", "/api/v1/admin/jobs/failed?limit=2", root.access, NULL, &res), 200);
    cr_assert_eq(json_array_size(json_object_get(res, "data")), 2);
    json_t *pag = json_object_get(res, "pagination");
    cr_assert_eq(jint(pag, "total"), 3);
    cr_assert_eq(jint(pag, "totalPages"), 2);
    cr_assert_str_eq(jstr(json_array_get(json_object_get(res, "data"), 0), "error"),
                     "upstream refused");
    json_decref(res);
    cr_assert_eq(api_req(t.app, "GET", "/api/v1/admin/jobs/failed?queue=notifications", root.access,
                         NULL, &res),
                 200);
    cr_assert_eq(json_array_size(json_object_get(res, "data")), 0);
    json_decref(res);
    cr_assert_eq(
        api_req(t.app, "GET", "/api/v1/admin/jobs/failed?limit=0", root.access, NULL, &res), 400);
    json_decref(res);

    /* retry: back to waiting with a fresh set of attempts, audited, then run */
    atomic_store(&api_fail, false);
    char path[256];
    snprintf(path, sizeof(path), "/api/v1/admin/jobs/%s/retry", failed[0]);
    cr_assert_eq(api_req(t.app, "POST", path, root.access, NULL, &res), 200);
    cr_assert(strcmp(jstr(res, "state"), "waiting") == 0 ||
                  strcmp(jstr(res, "state"), "active") == 0 ||
                  strcmp(jstr(res, "state"), "completed") == 0,
              "%s", jstr(res, "state"));
    json_decref(res);
    cr_assert(wait_state(failed[0], "completed", 5000));
    cr_assert_eq(count_bypass("SELECT count(*) FROM audit_logs WHERE action = 'admin.job_retry'"
                              " AND resource_id = $1",
                              failed[0]),
                 1);
    cr_assert_eq(api_req(t.app, "POST", path, root.access, NULL, &res), 409, "completed already");
    cr_assert_str_eq(jstr(res, "error"), "RESOURCE_CONFLICT");
    json_decref(res);
    cr_assert_eq(api_req(t.app, "POST", "/api/v1/admin/jobs/nope/retry", root.access, NULL, &res),
                 404);
    json_decref(res);
    job_runner_stop(r, 5);

    /* cancel: a waiting job ends at once; a second cancel conflicts */
    snprintf(path, sizeof(path), "/api/v1/admin/jobs/%s/cancel", waiting);
    cr_assert_eq(api_req(t.app, "POST", path, root.access, NULL, &res), 200);
    cr_assert_str_eq(jstr(res, "state"), "cancelled");
    json_decref(res);
    cr_assert_eq(api_req(t.app, "POST", path, root.access, NULL, &res), 409);
    json_decref(res);
    cr_assert_eq(count_bypass("SELECT count(*) FROM audit_logs WHERE action = 'admin.job_cancel'"
                              " AND resource_id = $1",
                              waiting),
                 1);
    /* any job, system ones included */
    snprintf(path, sizeof(path), "/api/v1/admin/jobs/%s", failed[1]);
    cr_assert_eq(api_req(t.app, "GET", path, root.access, NULL, &res), 200);
    cr_assert(json_is_null(json_object_get(res, "tenantId")));
    json_decref(res);
    cr_assert_eq(api_req(t.app, "GET", "/api/v1/admin/jobs/nope", root.access, NULL, &res), 404);
    json_decref(res);
    jobs_queues_unregister(api_q);
}

/* ---- worker processes --------------------------------------------------------------------- */

/* The environment of a zygo process on this test's database, plus extra (NULL-terminated). */
static const char *const *proc_env(const char *const *extra)
{
    static char data[300];
    static const char *env[32];
    size_t n = 0;
    snprintf(data, sizeof(data), "ZYGO_DATA_DIR=%s", t.dir);
    env[n++] = "NODE_ENV=test";
    env[n++] = "ZYGO_ENV_FILE=/nonexistent";
    env[n++] = "LOG_LEVEL=info";
    env[n++] = "RATE_LIMIT_ENABLED=false";
    env[n++] = "ZYGO_TEST_QUEUES=1";
    env[n++] = "JOBS_LEASE_MS=1000";
    env[n++] = "JOBS_POLL_MS=20";
    env[n++] = "JOBS_SWEEP_INTERVAL_MS=100";
    env[n++] = data;
    for (size_t i = 0; t.tdb.env[i]; i++)
        env[n++] = t.tdb.env[i];
    for (size_t i = 0; extra && extra[i] && n < ARRAY_LEN(env) - 1; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    return env;
}

static pid_t worker(const char *log_name, const char *const *extra)
{
    char log[400];
    snprintf(log, sizeof(log), "%s/%s", t.dir, log_name);
    return spawn_zygo((const char *const[]){"zygo", "worker", "--queues", "zygo-test", NULL},
                      proc_env(extra), log);
}

static char *log_of(const char *log_name)
{
    char log[400];
    snprintf(log, sizeof(log), "%s/%s", t.dir, log_name);
    char *s = slurp(log);
    return s ? s : xstrdup("");
}

static json_int_t result_pid(const char *id)
{
    json_t *j = job(id);
    json_int_t pid = jint(json_object_get(j, "result"), "pid");
    json_decref(j);
    return pid;
}

Test(jobs_api, a_job_of_a_killed_worker_is_recovered_and_finished_by_another)
{
    char id[JOB_ID_MAX];
    pid_t w1 = worker("w1.log", NULL);
    enqueue("zygo-test", NULL, "{\"sleepMs\": 1500}", NULL, id);
    cr_assert(wait_state(id, "active", 15000), "the first worker never took it");
    kill(w1, SIGKILL);
    cr_assert_eq(wait_child(w1, 5000), 128 + SIGKILL);
    json_t *j = job(id);
    cr_assert_str_eq(jstr(j, "state"), "active", "the dead worker's lease is not over yet");
    json_decref(j);
    pid_t w2 = worker("w2.log", NULL);
    cr_assert(wait_state(id, "completed", 20000), "not recovered");
    j = job(id);
    cr_assert_eq(jint(j, "stalledCount"), 1, "recovered from the stalled lease");
    cr_assert_eq(jint(j, "attemptsMade"), 1, "the killed run is not a failed attempt");
    cr_assert_eq(jint(json_object_get(j, "result"), "pid"), w2, "finished by the second worker");
    cr_assert_eq(jint(json_object_get(j, "result"), "attempt"), 1);
    json_decref(j);
    kill(w2, SIGTERM);
    cr_assert_eq(wait_child(w2, 10000), 0);
    char *out = log_of("w2.log");
    cr_assert(strstr(out, "stalled"), "%s", out);
    free(out);
}

Test(jobs_api, sigterm_lets_the_running_job_finish_then_exits_0)
{
    char id[JOB_ID_MAX];
    pid_t w = worker("w.log", NULL);
    enqueue("zygo-test", NULL, "{\"sleepMs\": 800}", NULL, id);
    cr_assert(wait_state(id, "active", 15000));
    kill(w, SIGTERM);
    cr_assert_eq(wait_child(w, 10000), 0);
    json_t *j = job(id);
    cr_assert_str_eq(jstr(j, "state"), "completed", "finished before the exit");
    cr_assert_eq(jint(json_object_get(j, "result"), "pid"), w);
    json_decref(j);
}

Test(jobs_api, sigterm_past_the_shutdown_timeout_gives_the_job_back)
{
    char id[JOB_ID_MAX];
    pid_t w = worker("w.log", (const char *const[]){"SHUTDOWN_TIMEOUT=1", NULL});
    enqueue("zygo-test", NULL, "{\"sleepMs\": 60000}", NULL, id);
    cr_assert(wait_state(id, "active", 15000));
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    kill(w, SIGTERM);
    cr_assert_eq(wait_child(w, 10000), 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    cr_assert_lt(t1.tv_sec - t0.tv_sec, 5, "bounded by SHUTDOWN_TIMEOUT");
    json_t *j = job(id);
    cr_assert_str_eq(jstr(j, "state"), "waiting", "back in the queue at once");
    cr_assert_eq(jint(j, "attemptsMade"), 0);
    json_decref(j);
}

Test(jobs_api, two_worker_processes_share_a_queue_and_run_each_job_once)
{
    enum { N = 30 };
    char ids[N][JOB_ID_MAX];
    pid_t w1 = worker("w1.log", NULL), w2 = worker("w2.log", NULL);
    for (int i = 0; i < N; i++)
        enqueue("zygo-test", NULL, "{\"sleepMs\": 60}", NULL, ids[i]);
    for (int i = 0; i < N; i++)
        cr_assert(wait_state(ids[i], "completed", 30000), "job %d", i);
    int by1 = 0, by2 = 0;
    for (int i = 0; i < N; i++) {
        json_int_t pid = result_pid(ids[i]);
        by1 += pid == w1;
        by2 += pid == w2;
    }
    cr_assert_eq(by1 + by2, N);
    cr_assert_gt(by1, 0, "the first worker did nothing");
    cr_assert_gt(by2, 0, "the second worker did nothing");
    cr_assert_eq(count_bypass("SELECT count(*) FROM jobs WHERE queue = $1 AND"
                              " (attempts_made <> 1 OR stalled_count <> 0)",
                              "zygo-test"),
                 0, "a job ran twice");
    kill(w1, SIGTERM);
    kill(w2, SIGTERM);
    cr_assert_eq(wait_child(w1, 10000), 0);
    cr_assert_eq(wait_child(w2, 10000), 0);
}

Test(jobs_api, worker_command_line_errors)
{
    char log[400];
    snprintf(log, sizeof(log), "%s/cli.log", t.dir);
    pid_t p = spawn_zygo((const char *const[]){"zygo", "worker", "--queues", "nope", NULL},
                         proc_env(NULL), log);
    cr_assert_eq(wait_child(p, 20000), 1);
    char *out = slurp(log);
    cr_assert(strstr(out, "unknown queue") && strstr(out, "nope"), "%s", out);
    free(out);
    p = spawn_zygo((const char *const[]){"zygo", "worker", "--concurrency", "0", NULL},
                   proc_env(NULL), log);
    cr_assert_eq(wait_child(p, 20000), 2);
    p = spawn_zygo((const char *const[]){"zygo", "worker", "--help", NULL}, proc_env(NULL), log);
    cr_assert_eq(wait_child(p, 20000), 0);
    out = slurp(log);
    cr_assert(strstr(out, "Usage: zygo worker [--queues a,b] [--concurrency N]"), "%s", out);
    free(out);
}

static pid_t serve(int port, const char *extra)
{
    char portenv[32], log[400];
    snprintf(portenv, sizeof(portenv), "PORT=%d", port);
    snprintf(log, sizeof(log), "%s/serve.log", t.dir);
    pid_t pid = spawn_zygo((const char *const[]){"zygo", "serve", NULL},
                           proc_env((const char *const[]){portenv, extra, NULL}), log);
    cr_assert(wait_healthy(port, 15000), "zygo serve did not start");
    return pid;
}

Test(jobs_api, serve_runs_the_queues_unless_told_not_to)
{
    char id[JOB_ID_MAX];
    pid_t s = serve(free_port(), NULL);
    enqueue("zygo-test", NULL, "{\"sleepMs\": 300}", NULL, id);
    cr_assert(wait_state(id, "active", 15000));
    kill(s, SIGTERM);
    cr_assert_eq(wait_child(s, 15000), 0);
    cr_assert_eq(result_pid(id), s, "finished by zygo serve before it exited");

    s = serve(free_port(), "JOBS_IN_PROCESS=false");
    enqueue("zygo-test", NULL, NULL, NULL, id);
    sleep_ms(500);
    json_t *j = job(id);
    cr_assert_str_eq(jstr(j, "state"), "waiting", "nobody works the queue");
    json_decref(j);
    kill(s, SIGTERM);
    cr_assert_eq(wait_child(s, 15000), 0);
}
