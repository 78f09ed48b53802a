/* The job queue on the suite's database (SQLite, or PostgreSQL with ZYGO_TEST_DB=postgres):
 * enqueue inside the caller's transaction, de-duplication, priority, delays, retries with
 * exponential backoff on a controlled clock, unrecoverable failures, timeouts, cancellation of
 * waiting and running jobs, admin retry, stalled leases, the limiter across runners, the
 * retention sweep, exactly-one run under competing runners, and graceful stops. Processors
 * here are the tests' own, run by the real runner (src/jobs/runner.c). */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define ZYGO_JOBS_INTERNAL 1
#include "db/db.h"
#include "dbtest.h"
#include "jobs/queue.h"
#include "lib/log.h"
#include "services/realtime.h"
#include "support.h"

#define TENANT_A "0192f0c1-7a3b-7c4d-8e5f-00000000000a"
#define TENANT_B "0192f0c1-7a3b-7c4d-8e5f-00000000000b"

static struct tenv t;
static struct db_conn *c; /* the test's own connection, with the bypass */
static struct job_env env;

static enum job_result process(struct job *j);

/* The tests' queues: registered at set-up so that jobs can be enqueued before a runner starts;
 * each test starts a runner on the one it needs (&QDEF(name), 1). */
static const struct job_queue_def qdefs[] = {
    {.name = "t-plain", .process = process, .backoff_ms = 50},
    {.name = "t-retry", .process = process, .attempts = 3, .backoff_ms = 5000},
    {.name = "t-jitter",
     .process = process,
     .attempts = 2,
     .backoff_ms = 5000,
     .backoff_jitter = true},
    {.name = "t-timeout", .process = process, .attempts = 1, .timeout_ms = 100},
    {.name = "t-limited",
     .process = process,
     .concurrency = 5,
     .limiter_max = 2,
     .limiter_window_ms = 1000},
    {.name = "t-keep",
     .process = process,
     .attempts = 1,
     .keep_completed_count = 3,
     .keep_completed_age_s = 10,
     .keep_failed_age_s = 20},
    {.name = "t-wide", .process = process, .concurrency = 4},
    {.name = "t-stall", .process = process, .attempts = 1, .max_stalled = 1},
};

static const struct job_queue_def *qdef(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(qdefs); i++)
        if (strcmp(qdefs[i].name, name) == 0)
            return &qdefs[i];
    cr_assert_fail("no test queue %s", name);
    return NULL;
}

static void setup(void)
{
    jobs_queues_register(qdefs, ARRAY_LEN(qdefs));
    tenv_setup(&t, NULL, NULL, 0);
    c = dbt_acquire(t.db);
    cr_assert_eq(db_set_rls_bypass(c, true), 0);
    dbt_exec_ok(c, "INSERT INTO tenants (id, slug, name) VALUES ('" TENANT_A "', 'a', 'A'), "
                   "('" TENANT_B "', 'b', 'B')");
    env = (struct job_env){.cfg = &t.cfg, .db = t.db};
    if (getenv("JOBS_TEST_LOG"))
        log_init(LOG_DEBUG, false, 2);
}

static void teardown(void)
{
    jobs_queues_unregister(qdefs);
    db_release(c);
    tenv_teardown(&t);
}

TestSuite(jobs, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------------ */

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* The controlled clock: a day ahead of the real one, so every job enqueued (at the real
 * time) is due, and it moves only when a test moves it. */
static _Atomic int64_t fake_now;
static int64_t fake_clock(void *arg)
{
    (void)arg;
    return atomic_load(&fake_now);
}

static const char *enq(const char *queue, const char *tenant, const char *data,
                       const struct job_opts *o)
{
    static char ids[64][JOB_ID_MAX];
    static int k;
    char *id = ids[k++ % 64];
    int rc = jobs_enqueue(c, queue, NULL, tenant, data, o, id);
    cr_assert_eq(rc, 0, "enqueue to %s: %d %s", queue, rc, db_errmsg(c));
    return id;
}

static json_t *job(const char *id)
{
    json_t *j = jobs_get_json(c, id, NULL);
    cr_assert_not_null(j, "job %s not found (%s)", id, db_errmsg(c));
    return j;
}

static const char *state_of(const char *id)
{
    static char s[32];
    json_t *j = job(id);
    snprintf(s, sizeof(s), "%s", json_string_value(json_object_get(j, "state")));
    json_decref(j);
    return s;
}

static int64_t col(const char *id, const char *column)
{
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT %s FROM jobs WHERE id = $1", column);
    return dbt_query_int(c, sql, DB_ARGS(DB_TEXT(id)));
}

static int64_t count_sql(const char *sql)
{
    return dbt_query_int(c, sql, NULL, 0);
}

/* Waits up to ms for the job to reach state (as the API shows it). */
static bool wait_state(const char *id, const char *state, int ms)
{
    for (int waited = 0; waited <= ms; waited += 10) {
        if (strcmp(state_of(id), state) == 0)
            return true;
        sleep_ms(10);
    }
    return false;
}

static bool wait_col(const char *id, const char *column, int64_t value, int ms)
{
    for (int waited = 0; waited <= ms; waited += 10) {
        if (col(id, column) == value)
            return true;
        sleep_ms(10);
    }
    return false;
}

/* ---- the tests' processor ----------------------------------------------------------------- */

/* What the processor saw, for the assertions. */
static struct {
    pthread_mutex_t mu;
    char order[256][64]; /* job names in the order they started */
    int norder;
    atomic_int runs;
    atomic_int running; /* at once, all queues */
    atomic_int max_running;
    atomic_int per_job[512]; /* jobs named "n<k>": runs now (a second at once is a double run) */
    atomic_int ran[512];
    atomic_int doubles;
    atomic_bool saw_stop;
    atomic_int succeed_from; /* "flaky": attempts below this fail */
} rec = {.mu = PTHREAD_MUTEX_INITIALIZER};

/* The job is claimed ("active" is written at the claim) and its processor has been called,
 * which comes a moment later: tests that stop or cancel a running job wait for both. */
static void wait_running(const char *id)
{
    cr_assert(wait_state(id, "active", 3000));
    for (int i = 0; i < 300 && atomic_load(&rec.runs) == 0; i++)
        sleep_ms(10);
    cr_assert_eq(atomic_load(&rec.runs), 1, "the processor is running");
}

/*
 * Data: {"fail": true} fails every attempt, {"unrecoverable": true}, {"sleepMs": n} (in 5 ms
 * steps; with "honor": true it stops when job_should_stop), {"flaky": true} fails unless
 * rec.succeed_from allows, {"progress": p}. Names "n<k>" are counted per k.
 */
static enum job_result process(struct job *j)
{
    atomic_fetch_add(&rec.runs, 1);
    int now_running = atomic_fetch_add(&rec.running, 1) + 1;
    int prev = atomic_load(&rec.max_running);
    while (now_running > prev &&
           !atomic_compare_exchange_weak(&rec.max_running, &prev, now_running))
        ;
    pthread_mutex_lock(&rec.mu);
    if (rec.norder < 256)
        snprintf(rec.order[rec.norder++], 64, "%s", j->name);
    pthread_mutex_unlock(&rec.mu);
    int k = -1;
    if (j->name[0] == 'n')
        k = (int)strtol(j->name + 1, NULL, 10) % 512;
    if (k >= 0) {
        if (atomic_fetch_add(&rec.per_job[k], 1) > 0)
            atomic_fetch_add(&rec.doubles, 1);
        atomic_fetch_add(&rec.ran[k], 1);
    }
    enum job_result res = JOB_DONE;
    json_t *p = json_object_get(j->data, "progress");
    if (json_is_integer(p))
        job_progress(j, (int)json_integer_value(p), "half way");
    json_int_t sleep = json_integer_value(json_object_get(j->data, "sleepMs"));
    bool honor = json_is_true(json_object_get(j->data, "honor"));
    for (json_int_t s = 0; s < sleep; s += 5) {
        if (honor && job_should_stop(j)) {
            atomic_store(&rec.saw_stop, true);
            job_set_error(j, "stopped");
            res = JOB_RETRY;
            break;
        }
        sleep_ms(5);
    }
    if (res == JOB_DONE) {
        if (json_is_true(json_object_get(j->data, "fail"))) {
            job_set_error(j, "boom %d", j->attempt);
            res = JOB_RETRY;
        } else if (json_is_true(json_object_get(j->data, "unrecoverable"))) {
            job_set_error(j, "cannot ever work");
            res = JOB_UNRECOVERABLE;
        } else if (json_is_true(json_object_get(j->data, "flaky")) &&
                   atomic_load(&rec.succeed_from) > j->attempt) {
            job_set_error(j, "flaky");
            res = JOB_RETRY;
        } else {
            job_set_result(j, json_pack("{s:s, s:i}", "name", j->name, "attempt", j->attempt));
        }
    }
    if (k >= 0)
        atomic_fetch_sub(&rec.per_job[k], 1);
    atomic_fetch_sub(&rec.running, 1);
    return res;
}

static struct job_runner *start(const struct job_queue_def *defs, size_t n,
                                const struct job_runner_options *o)
{
    char err[256];
    struct job_runner_options opts = {.poll_ms = 10, .lease_ms = 2000, .sweep_interval_ms = 50};
    if (o)
        opts = *o;
    struct job_runner *r = job_runner_start(&env, defs, n, &opts, err, sizeof(err));
    cr_assert_not_null(r, "runner: %s", err);
    return r;
}

static void stop(struct job_runner *r)
{
    cr_assert_eq(job_runner_stop(r, 5), 0, "a job was still running at the end");
}

/* ---- enqueue ------------------------------------------------------------------------------ */

Test(jobs, enqueue_takes_the_queue_defaults_and_options)
{
    const char *id = enq("tenant-deletion", TENANT_A, "{\"tenantId\":\"" TENANT_A "\"}", NULL);
    json_t *j = job(id);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "waiting");
    cr_assert_str_eq(json_string_value(json_object_get(j, "queue")), "tenant-deletion");
    cr_assert_str_eq(json_string_value(json_object_get(j, "name")), "tenant-deletion");
    cr_assert_str_eq(json_string_value(json_object_get(j, "tenantId")), TENANT_A);
    cr_assert_eq(json_integer_value(json_object_get(j, "maxAttempts")), 5, "the queue's own");
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 0);
    cr_assert_eq(json_integer_value(json_object_get(j, "progress")), 0);
    cr_assert_null(json_object_get(j, "data"), "the payload is never shown");
    json_decref(j);
    cr_assert_eq(col(id, "backoff_ms"), 5000);
    cr_assert_eq(col(id, "timeout_ms"), 300000);

    id = enq("user-deletion", NULL, NULL,
             &(struct job_opts){.attempts = 7, .priority = 4, .timeout_ms = 1234});
    j = job(id);
    cr_assert_eq(json_integer_value(json_object_get(j, "maxAttempts")), 7);
    cr_assert_eq(json_integer_value(json_object_get(j, "priority")), 4);
    cr_assert(json_is_null(json_object_get(j, "tenantId")));
    json_decref(j);
    cr_assert_eq(col(id, "timeout_ms"), 1234);

    id = enq("notifications", NULL, "{}", &(struct job_opts){.delay_ms = 60000});
    cr_assert_str_eq(state_of(id), "delayed");
}

Test(jobs, enqueue_refuses_bad_arguments)
{
    char id[JOB_ID_MAX];
    cr_assert_eq(jobs_enqueue(c, "no-such-queue", NULL, NULL, NULL, NULL, id), -1);
    cr_assert_eq(jobs_enqueue(c, "archive", NULL, NULL, "[1,2]", NULL, id), -1, "not an object");
    cr_assert_eq(jobs_enqueue(c, "archive", NULL, "not-a-uuid", NULL, NULL, id), -1);
    cr_assert_eq(
        jobs_enqueue(c, "archive", NULL, NULL, NULL, &(struct job_opts){.job_id = "has space"}, id),
        -1);
    cr_assert_eq(jobs_enqueue(c, "archive", NULL, NULL, NULL,
                              &(struct job_opts){.job_id = "../etc/passwd"}, id),
                 -1);
    char longid[200];
    memset(longid, 'a', sizeof(longid) - 1);
    longid[sizeof(longid) - 1] = '\0';
    cr_assert_eq(
        jobs_enqueue(c, "archive", NULL, NULL, NULL, &(struct job_opts){.job_id = longid}, id), -1);
    cr_assert_eq(
        jobs_enqueue(c, "archive", NULL, NULL, NULL, &(struct job_opts){.priority = 2097153}, id),
        -1);
    cr_assert_eq(
        jobs_enqueue(c, "archive", NULL, NULL, NULL, &(struct job_opts){.delay_ms = -1}, id), -1);
    cr_assert_eq(jobs_enqueue(c, "archive", NULL, NULL, "{\"broken\":", NULL, id), -1,
                 "invalid JSON");
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs"), 0);
}

Test(jobs, enqueue_is_part_of_the_callers_transaction)
{
    char id[JOB_ID_MAX];
    cr_assert_eq(db_begin(c), 0);
    dbt_exec_ok(c, "UPDATE tenants SET name = 'Renamed' WHERE id = '" TENANT_A "'");
    cr_assert_eq(jobs_enqueue(c, "notifications", "renamed", TENANT_A, NULL, NULL, id), 0);
    cr_assert_eq(db_rollback(c), 0);
    cr_assert_null(jobs_get_json(c, id, NULL), "a rolled-back change leaves no job");
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs"), 0);

    cr_assert_eq(db_begin(c), 0);
    dbt_exec_ok(c, "UPDATE tenants SET name = 'Renamed' WHERE id = '" TENANT_A "'");
    cr_assert_eq(jobs_enqueue(c, "notifications", "renamed", TENANT_A, NULL, NULL, id), 0);
    /* another connection (a worker) does not see it before the commit */
    struct db *other;
    char err[256];
    cr_assert_eq(db_open(&other, t.tdb.app_url, err, sizeof(err)), 0, "%s", err);
    struct db_conn *oc = dbt_acquire(other);
    db_set_rls_bypass(oc, true);
    cr_assert_eq(dbt_query_int(oc, "SELECT count(*) FROM jobs", NULL, 0), 0);
    cr_assert_eq(db_commit(c), 0);
    cr_assert_eq(dbt_query_int(oc, "SELECT count(*) FROM jobs", NULL, 0), 1);
    db_release(oc);
    db_close(other);
    cr_assert_str_eq(state_of(id), "waiting");
}

Test(jobs, a_job_id_deduplicates)
{
    char a[JOB_ID_MAX], b[JOB_ID_MAX];
    struct job_opts o = {.job_id = "tenant-deletion:" TENANT_A};
    cr_assert_eq(jobs_enqueue(c, "tenant-deletion", NULL, TENANT_A, "{\"n\":1}", &o, a), 0);
    cr_assert_eq(jobs_enqueue(c, "tenant-deletion", NULL, TENANT_A, "{\"n\":2}", &o, b), 1,
                 "the same id again adds nothing");
    cr_assert_str_eq(a, "tenant-deletion:" TENANT_A);
    cr_assert_str_eq(b, a);
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs"), 1);
    /* inside a transaction too, without aborting it (PostgreSQL) */
    cr_assert_eq(db_begin(c), 0);
    cr_assert_eq(jobs_enqueue(c, "tenant-deletion", NULL, TENANT_A, NULL, &o, b), 1);
    cr_assert_eq(jobs_enqueue(c, "archive", NULL, NULL, NULL, NULL, b), 0);
    cr_assert_eq(db_commit(c), 0, "%s", db_errmsg(c));
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs"), 2);
}

Test(jobs, row_level_security_scopes_jobs_to_their_tenant)
{
    if (!t.tdb.pg)
        cr_skip_test("SQLite has no row-level security");
    struct db_conn *tc = dbt_acquire(t.db);
    cr_assert_eq(db_set_tenant(tc, TENANT_B), 0);
    char id[JOB_ID_MAX];
    cr_assert_eq(jobs_enqueue(tc, "notifications", NULL, TENANT_A, NULL, NULL, id), -1,
                 "a job for another tenant than the connection's");
    cr_assert_eq(db_errkind(tc), DB_ERR_PERMISSION);
    cr_assert_eq(jobs_enqueue(tc, "notifications", NULL, NULL, NULL, NULL, id), -1,
                 "a system job needs the bypass");
    cr_assert_eq(jobs_enqueue(tc, "notifications", NULL, TENANT_B, NULL, NULL, id), 0);
    const char *a = enq("notifications", TENANT_A, NULL, NULL);
    /* even without the tenant filter, tenant B's connection sees only its own */
    cr_assert_null(jobs_get_json(tc, a, NULL));
    json_t *mine = jobs_get_json(tc, id, NULL);
    cr_assert_not_null(mine);
    json_decref(mine);
    db_release(tc);
}

Test(jobs, inspection_filters_by_tenant)
{
    const char *a = enq("notifications", TENANT_A, NULL, NULL);
    const char *sys = enq("notifications", NULL, NULL, NULL);
    cr_assert_null(jobs_get_json(c, a, TENANT_B));
    cr_assert_null(jobs_get_json(c, sys, TENANT_B), "system jobs belong to no tenant");
    json_t *j = jobs_get_json(c, a, TENANT_A);
    cr_assert_not_null(j);
    json_decref(j);
    cr_assert_eq(jobs_cancel(c, a, TENANT_B), -2, "another tenant's job is absent");
    cr_assert_str_eq(state_of(a), "waiting");
    cr_assert_null(jobs_get_json(c, "no-such-job", NULL));
}

/* ---- running ------------------------------------------------------------------------------ */

static const char *enq_named(const char *queue, const char *name, const char *data,
                             const struct job_opts *o)
{
    static char ids[256][JOB_ID_MAX];
    static int k;
    char *id = ids[k++ % 256];
    cr_assert_eq(jobs_enqueue(c, queue, name, NULL, data, o, id), 0, "%s", db_errmsg(c));
    return id;
}

Test(jobs, a_job_runs_once_and_keeps_its_result)
{
    const char *id = enq_named("t-plain", "hello", "{\"progress\": 50}", NULL);
    struct job_runner *r = start(qdef("t-plain"), 1, NULL);
    cr_assert(wait_state(id, "completed", 5000), "state %s", state_of(id));
    stop(r);
    json_t *j = job(id);
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 1);
    cr_assert_eq(json_integer_value(json_object_get(j, "progress")), 50);
    cr_assert_str_eq(json_string_value(json_object_get(j, "progressMessage")), "half way");
    json_t *res = json_object_get(j, "result");
    cr_assert_str_eq(json_string_value(json_object_get(res, "name")), "hello");
    cr_assert_eq(json_integer_value(json_object_get(res, "attempt")), 1);
    cr_assert(json_is_string(json_object_get(j, "startedAt")));
    cr_assert(json_is_string(json_object_get(j, "finishedAt")));
    json_decref(j);
    cr_assert_eq(atomic_load(&rec.runs), 1);
    cr_assert_eq(col(id, "lease_token IS NULL"), 1, "the lease is gone with the run");
}

Test(jobs, jobs_run_in_priority_order_then_in_order_of_arrival)
{
    const struct {
        const char *name;
        int prio;
    } in[] = {{"plain-1", 0}, {"p3", 3}, {"p1", 1}, {"plain-2", 0}, {"p2", 2}, {"p1-again", 1}};
    for (size_t i = 0; i < ARRAY_LEN(in); i++)
        enq_named("t-plain", in[i].name, NULL, &(struct job_opts){.priority = in[i].prio});
    struct job_runner *r = start(qdef("t-plain"), 1, NULL); /* concurrency 1: one at a time */
    for (size_t i = 0; i < 500 && count_sql("SELECT count(*) FROM jobs WHERE state = "
                                            "'completed'") < 6;
         i++)
        sleep_ms(10);
    stop(r);
    const char *want[] = {"p1", "p1-again", "p2", "p3", "plain-1", "plain-2"};
    cr_assert_eq(rec.norder, 6);
    for (size_t i = 0; i < ARRAY_LEN(want); i++)
        cr_assert_str_eq(rec.order[i], want[i], "position %zu", i);
}

Test(jobs, a_delayed_job_waits_for_its_time)
{
    const char *id = enq_named("t-plain", "later", NULL, &(struct job_opts){.delay_ms = 1000});
    cr_assert_str_eq(state_of(id), "delayed");
    const char *now_id = enq_named("t-plain", "now", NULL, NULL);
    int64_t created = col(id, "created_at");
    struct job_runner *r = start(qdef("t-plain"), 1, NULL);
    cr_assert(wait_state(now_id, "completed", 3000));
    cr_assert(wait_state(id, "completed", 5000));
    stop(r);
    cr_assert_geq(col(id, "started_at") - created, 1000, "started %lld ms after enqueue",
                  (long long)(col(id, "started_at") - created));
    cr_assert_str_eq(rec.order[0], "now", "the job due now ran first");
}

Test(jobs, failed_runs_retry_with_exponential_backoff_then_dead_letter)
{
    int64_t t0 = jobs_now_ms() + 86400000;
    atomic_store(&fake_now, t0);
    const char *id = enq_named("t-retry", "always-fails", "{\"fail\": true}", NULL);
    struct job_runner *r = start(
        qdef("t-retry"), 1,
        &(struct job_runner_options){
            .poll_ms = 10, .lease_ms = 60000, .sweep_interval_ms = 60000, .now_ms = fake_clock});
    /* attempt 1 fails at t0: back in the queue for 5000 ms (5000·2^0) */
    cr_assert(wait_col(id, "attempts_made", 1, 3000));
    cr_assert_eq(col(id, "run_at"), t0 + 5000);
    cr_assert_eq(col(id, "updated_at"), t0);
    atomic_store(&fake_now, t0 + 4999);
    sleep_ms(300);
    cr_assert_eq(col(id, "attempts_made"), 1, "not before its backoff is over");
    cr_assert_eq(atomic_load(&rec.runs), 1);
    /* attempt 2 fails at t0+5000: next in 10000 ms (5000·2^1) */
    atomic_store(&fake_now, t0 + 5000);
    cr_assert(wait_col(id, "attempts_made", 2, 3000));
    cr_assert_eq(col(id, "run_at"), t0 + 5000 + 10000);
    atomic_store(&fake_now, t0 + 14999);
    sleep_ms(300);
    cr_assert_eq(col(id, "attempts_made"), 2);
    /* attempt 3 is the last: failed for good, kept with its error */
    atomic_store(&fake_now, t0 + 15000);
    cr_assert(wait_state(id, "failed", 3000), "state %s", state_of(id));
    stop(r);
    json_t *j = job(id);
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 3);
    cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "boom 3");
    json_decref(j);
    cr_assert_eq(col(id, "finished_at"), t0 + 15000);
    cr_assert_eq(atomic_load(&rec.runs), 3);
}

Test(jobs, jitter_spreads_the_backoff_by_up_to_half)
{
    int64_t t0 = jobs_now_ms() + 86400000;
    atomic_store(&fake_now, t0);
    const char *ids[8];
    for (int i = 0; i < 8; i++)
        ids[i] = enq_named("t-jitter", "j", "{\"fail\": true}", NULL);
    struct job_runner *r = start(qdef("t-jitter"), 1,
                                 &(struct job_runner_options){.poll_ms = 10,
                                                              .lease_ms = 60000,
                                                              .sweep_interval_ms = 60000,
                                                              .now_ms = fake_clock,
                                                              .concurrency = 8});
    for (int i = 0; i < 8; i++)
        cr_assert(wait_col(ids[i], "attempts_made", 1, 3000));
    stop(r);
    bool differ = false;
    int64_t first = col(ids[0], "run_at") - t0;
    for (int i = 0; i < 8; i++) {
        int64_t d = col(ids[i], "run_at") - t0;
        cr_assert(d >= 5000 && d <= 7500, "delay %lld", (long long)d);
        differ |= d != first;
    }
    cr_assert(differ, "eight jittered delays all equal");
}

Test(jobs, an_unrecoverable_failure_skips_the_retries)
{
    const char *id = enq_named("t-plain", "bad", "{\"unrecoverable\": true}", NULL);
    struct job_runner *r = start(qdef("t-plain"), 1, NULL);
    cr_assert(wait_state(id, "failed", 3000));
    stop(r);
    cr_assert_eq(col(id, "attempts_made"), 1);
    cr_assert_eq(col(id, "max_attempts"), 3);
    cr_assert_eq(atomic_load(&rec.runs), 1);
    json_t *j = job(id);
    cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "cannot ever work");
    json_decref(j);
}

Test(jobs, a_run_past_its_timeout_fails)
{
    /* one that stops when asked, one that does not look */
    const char *polite =
        enq_named("t-timeout", "polite", "{\"sleepMs\": 5000, \"honor\": true}", NULL);
    struct job_runner *r = start(qdef("t-timeout"), 1, NULL);
    cr_assert(wait_state(polite, "failed", 3000));
    cr_assert(atomic_load(&rec.saw_stop), "job_should_stop said so");
    const char *deaf = enq_named("t-timeout", "deaf", "{\"sleepMs\": 300}", NULL);
    cr_assert(wait_state(deaf, "failed", 3000));
    stop(r);
    json_t *j = job(polite);
    cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "Job timed out after 100 ms");
    json_decref(j);
    j = job(deaf);
    cr_assert_str_eq(json_string_value(json_object_get(j, "error")), "Job timed out after 100 ms");
    cr_assert(json_is_null(json_object_get(j, "result")), "a late success does not count");
    json_decref(j);
}

Test(jobs, a_waiting_job_cancelled_never_runs)
{
    const char *id = enq_named("t-plain", "doomed", NULL, NULL);
    const char *other = enq_named("t-plain", "other", NULL, NULL);
    cr_assert_eq(jobs_cancel(c, id, NULL), 0);
    cr_assert_str_eq(state_of(id), "cancelled");
    cr_assert_eq(jobs_cancel(c, id, NULL), 1, "already ended");
    cr_assert_eq(jobs_cancel(c, "absent", NULL), -2);
    struct job_runner *r = start(qdef("t-plain"), 1, NULL);
    cr_assert(wait_state(other, "completed", 3000));
    stop(r);
    cr_assert_eq(atomic_load(&rec.runs), 1);
    cr_assert_str_eq(rec.order[0], "other");
    cr_assert_str_eq(state_of(id), "cancelled");
}

Test(jobs, a_running_job_cancelled_from_another_connection_stops)
{
    const char *id = enq_named("t-plain", "long", "{\"sleepMs\": 20000, \"honor\": true}", NULL);
    struct job_runner *r = start(
        qdef("t-plain"), 1,
        &(struct job_runner_options){.poll_ms = 10, .lease_ms = 300, .sweep_interval_ms = 60000});
    wait_running(id);
    /* the cancel comes from another database handle, as from another process */
    struct db *other;
    char err[256];
    cr_assert_eq(db_open(&other, t.tdb.app_url, err, sizeof(err)), 0, "%s", err);
    struct db_conn *oc = dbt_acquire(other);
    db_set_rls_bypass(oc, true);
    cr_assert_eq(jobs_cancel(oc, id, NULL), 0);
    json_t *j = jobs_get_json(oc, id, NULL);
    cr_assert_str_eq(json_string_value(json_object_get(j, "state")), "active",
                     "running until its worker notices");
    cr_assert(json_is_true(json_object_get(j, "cancelRequested")));
    json_decref(j);
    db_release(oc);
    db_close(other);
    /* the heartbeat (every 100 ms) brings the news */
    cr_assert(wait_state(id, "cancelled", 2000), "state %s", state_of(id));
    stop(r);
    cr_assert(atomic_load(&rec.saw_stop));
    cr_assert_eq(atomic_load(&rec.runs), 1, "a cancelled job is not retried");
    cr_assert_eq(jobs_cancel(c, id, NULL), 1);
}

Test(jobs, an_admin_retries_a_dead_letter_job)
{
    atomic_store(&rec.succeed_from, 99);
    const char *id =
        enq_named("t-plain", "flaky", "{\"flaky\": true}", &(struct job_opts){.attempts = 1});
    const char *busy = enq_named("t-plain", "busy", "{\"sleepMs\": 20000, \"honor\": true}", NULL);
    struct job_runner *r =
        start(qdef("t-plain"), 1,
              &(struct job_runner_options){
                  .poll_ms = 10, .lease_ms = 2000, .sweep_interval_ms = 60000, .concurrency = 2});
    cr_assert(wait_state(id, "failed", 3000));
    cr_assert(wait_state(busy, "active", 3000));
    cr_assert_eq(jobs_retry(c, busy), 1, "an active job is not retried");
    cr_assert_eq(jobs_retry(c, "absent"), -2);
    atomic_store(&rec.succeed_from, 0);
    cr_assert_eq(jobs_retry(c, id), 0);
    cr_assert(wait_state(id, "completed", 3000), "state %s", state_of(id));
    cr_assert_eq(jobs_cancel(c, busy, NULL), 0);
    stop(r);
    json_t *j = job(id);
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 1, "a fresh set");
    json_decref(j);
}

Test(jobs, the_limiter_holds_across_runners)
{
    int64_t t0 = jobs_now_ms() + 86400000;
    atomic_store(&fake_now, t0);
    for (int i = 0; i < 5; i++)
        enq_named("t-limited", "lim", NULL, NULL);
    struct job_runner_options o = {
        .poll_ms = 10, .lease_ms = 60000, .sweep_interval_ms = 60000, .now_ms = fake_clock};
    struct job_runner *r1 = start(qdef("t-limited"), 1, &o);
    struct job_runner *r2 = start(qdef("t-limited"), 1, &o);
    sleep_ms(500);
    cr_assert_eq(atomic_load(&rec.runs), 2, "two per window, whichever runner");
    atomic_store(&fake_now, t0 + 999);
    sleep_ms(300);
    cr_assert_eq(atomic_load(&rec.runs), 2, "the window is not over");
    atomic_store(&fake_now, t0 + 1000);
    for (int i = 0; i < 300 && atomic_load(&rec.runs) < 4; i++)
        sleep_ms(10);
    sleep_ms(200);
    cr_assert_eq(atomic_load(&rec.runs), 4);
    atomic_store(&fake_now, t0 + 2000);
    for (int i = 0; i < 300 && atomic_load(&rec.runs) < 5; i++)
        sleep_ms(10);
    cr_assert_eq(atomic_load(&rec.runs), 5);
    stop(r1);
    stop(r2);
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs WHERE state = 'completed'"), 5);
}

Test(jobs, the_retention_sweep_removes_by_count_and_age)
{
    int64_t t0 = jobs_now_ms() + 86400000;
    atomic_store(&fake_now, t0);
    const char *done[5], *failed, *waiting;
    for (int i = 0; i < 5; i++)
        done[i] = enq_named("t-keep", "k", NULL, NULL);
    failed = enq_named("t-keep", "f", "{\"fail\": true}", NULL);
    waiting = enq_named("t-keep", "w", NULL, &(struct job_opts){.delay_ms = 86400000 * 3LL});
    struct job_runner_options o = {
        .poll_ms = 10, .lease_ms = 60000, .sweep_interval_ms = 50, .now_ms = fake_clock};
    struct job_runner *r = start(qdef("t-keep"), 1, &o);
    cr_assert(wait_state(failed, "failed", 3000));
    /* count: the newest 3 completed stay (the last ones to finish) */
    for (int i = 0;
         i < 300 && count_sql("SELECT count(*) FROM jobs WHERE state = 'completed'") != 3; i++)
        sleep_ms(10);
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs WHERE state = 'completed'"), 3);
    cr_assert_null(jobs_get_json(c, done[0], NULL), "the oldest went");
    cr_assert_null(jobs_get_json(c, done[1], NULL));
    json_t *j = jobs_get_json(c, done[4], NULL);
    cr_assert_not_null(j, "the newest stays");
    json_decref(j);
    /* age: completed after 10 s, failed after 20 s; unfinished jobs stay */
    atomic_store(&fake_now, t0 + 10001);
    for (int i = 0; i < 300 && count_sql("SELECT count(*) FROM jobs WHERE state = 'completed'");
         i++)
        sleep_ms(10);
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs WHERE state = 'completed'"), 0);
    cr_assert_str_eq(state_of(failed), "failed", "the dead letter is kept longer");
    atomic_store(&fake_now, t0 + 20001);
    for (int i = 0; i < 300 && count_sql("SELECT count(*) FROM jobs WHERE state = 'failed'"); i++)
        sleep_ms(10);
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs WHERE state = 'failed'"), 0);
    stop(r);
    cr_assert_str_eq(state_of(waiting), "delayed");
}

/* A worker that died: its lease is taken with a token nobody renews. */
static void claim_as_dead_worker(const char *queue, int64_t now, int64_t lease_ms, char *token)
{
    snprintf(token, 80, "dead-worker:%lld", (long long)now);
    struct jobs_row *rows;
    int64_t limited;
    cr_assert_eq(db_begin(c), 0);
    int n =
        jobs_claim(c, qdef(queue), "dead-worker", token, now, lease_ms, 1, NULL, &rows, &limited);
    cr_assert_eq(n, 1, "claim: %d %s", n, db_errmsg(c));
    jobs_rows_free(rows, n);
    cr_assert_eq(db_commit(c), 0);
}

Test(jobs, a_stalled_lease_goes_back_to_the_queue_and_the_old_worker_cannot_finish)
{
    int64_t t0 = jobs_now_ms() + 86400000;
    atomic_store(&fake_now, t0);
    const char *id = enq_named("t-stall", "orphan", NULL, NULL);
    char token[80];
    claim_as_dead_worker("t-stall", t0, 1000, token);
    cr_assert_str_eq(state_of(id), "active");
    struct job_runner_options o = {
        .poll_ms = 10, .lease_ms = 1000, .sweep_interval_ms = 20, .now_ms = fake_clock};
    struct job_runner *r = start(qdef("t-stall"), 1, &o);
    sleep_ms(300);
    cr_assert_str_eq(state_of(id), "active", "the lease still holds");
    cr_assert_eq(atomic_load(&rec.runs), 0, "never two runs at once");
    atomic_store(&fake_now, t0 + 1001);
    cr_assert(wait_state(id, "completed", 3000), "state %s", state_of(id));
    stop(r);
    cr_assert_eq(col(id, "stalled_count"), 1);
    cr_assert_eq(col(id, "attempts_made"), 1, "a stall is not a failed attempt");
    enum job_state st;
    cr_assert_eq(jobs_finish(c, id, token, JOBS_FAIL, NULL, "late", 0, t0 + 2000, &st), 0,
                 "the dead worker's token no longer counts");
    cr_assert_str_eq(state_of(id), "completed");
}

Test(jobs, a_job_that_stalls_too_often_fails)
{
    int64_t t0 = jobs_now_ms() + 86400000;
    const char *id = enq_named("t-stall", "cursed", NULL, NULL);
    char token[80];
    enum job_state st;
    claim_as_dead_worker("t-stall", t0, 100, token);
    cr_assert_eq(jobs_recover_stalled(c, "t-stall", 1, t0 + 50, NULL, NULL), 0, "not yet");
    cr_assert_eq(jobs_recover_stalled(c, "t-stall", 1, t0 + 101, NULL, NULL), 1);
    cr_assert_str_eq(state_of(id), "waiting");
    claim_as_dead_worker("t-stall", t0 + 200, 100, token);
    cr_assert_eq(jobs_recover_stalled(c, "t-stall", 1, t0 + 301, NULL, NULL), 1);
    cr_assert_str_eq(state_of(id), "failed", "stalled twice with max_stalled 1");
    json_t *j = job(id);
    cr_assert_str_eq(json_string_value(json_object_get(j, "error")),
                     "job stalled more than allowable limit");
    json_decref(j);
    cr_assert_eq(jobs_finish(c, id, token, JOBS_COMPLETE, NULL, NULL, 0, t0 + 400, &st), 0);
}

Test(jobs, the_heartbeat_keeps_a_long_job_leased)
{
    /* the job lasts more than two leases; a lease is renewed every third of it */
    const char *id = enq_named("t-stall", "long", "{\"sleepMs\": 2500}", NULL);
    struct job_runner_options o = {.poll_ms = 10, .lease_ms = 1000, .sweep_interval_ms = 20};
    struct job_runner *r = start(qdef("t-stall"), 1, &o);
    /* a second runner on the queue recovers stalled leases every 20 ms */
    struct job_runner *watcher = start(qdef("t-stall"), 1, &o);
    cr_assert(wait_state(id, "completed", 5000), "state %s", state_of(id));
    stop(r);
    stop(watcher);
    cr_assert_eq(col(id, "stalled_count"), 0, "renewed every 333 ms, never stalled");
    cr_assert_eq(atomic_load(&rec.runs), 1);
}

/* Runners on separate database handles (as separate processes) race for the same jobs. */
Test(jobs, competing_runners_never_run_a_job_twice, .timeout = 120)
{
    enum { N = 200 };
    char name[16];
    cr_assert_eq(db_begin(c), 0);
    for (int i = 0; i < N; i++) {
        snprintf(name, sizeof(name), "n%d", i);
        char id[JOB_ID_MAX];
        cr_assert_eq(jobs_enqueue(c, "t-wide", name, NULL, "{\"sleepMs\": 5}", NULL, id), 0);
    }
    cr_assert_eq(db_commit(c), 0);
    struct db *dbs[2];
    struct job_env envs[2];
    struct job_runner *rs[2];
    for (int i = 0; i < 2; i++) {
        char err[256];
        cr_assert_eq(db_open(&dbs[i], t.tdb.app_url, err, sizeof(err)), 0, "%s", err);
        envs[i] = (struct job_env){.cfg = &t.cfg, .db = dbs[i]};
        struct job_runner_options o = {.poll_ms = 5, .lease_ms = 5000, .sweep_interval_ms = 50};
        rs[i] = job_runner_start(&envs[i], qdef("t-wide"), 1, &o, err, sizeof(err));
        cr_assert_not_null(rs[i], "%s", err);
    }
    for (int i = 0;
         i < 3000 && count_sql("SELECT count(*) FROM jobs WHERE state = 'completed'") < N; i++)
        sleep_ms(10);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(job_runner_stop(rs[i], 5), 0);
        db_close(dbs[i]);
    }
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs WHERE state = 'completed'"), N);
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs WHERE attempts_made <> 1"), 0);
    cr_assert_eq(atomic_load(&rec.doubles), 0, "a job ran twice at once");
    for (int i = 0; i < N; i++)
        cr_assert_eq(atomic_load(&rec.ran[i]), 1, "job n%d ran %d times", i,
                     atomic_load(&rec.ran[i]));
    cr_assert_leq(atomic_load(&rec.max_running), 8, "two runners of concurrency 4");
    cr_assert_gt(atomic_load(&rec.max_running), 1, "they did run side by side");
}

Test(jobs, stopping_lets_running_jobs_finish)
{
    const char *id = enq_named("t-plain", "finishing", "{\"sleepMs\": 300}", NULL);
    struct job_runner *r = start(qdef("t-plain"), 1, NULL);
    wait_running(id);
    cr_assert_eq(job_runner_stop(r, 5), 0);
    cr_assert_str_eq(state_of(id), "completed", "finished within the grace period");
}

Test(jobs, stopping_past_the_grace_period_gives_the_job_back)
{
    const char *id = enq_named("t-plain", "endless", "{\"sleepMs\": 60000, \"honor\": true}", NULL);
    struct job_runner *r = start(qdef("t-plain"), 1, NULL);
    wait_running(id);
    cr_assert_eq(job_runner_stop(r, 0), 0, "it stopped when asked");
    cr_assert(atomic_load(&rec.saw_stop));
    cr_assert_str_eq(state_of(id), "waiting", "back in the queue for the next worker");
    cr_assert_eq(col(id, "attempts_made"), 0, "a shutdown is not a failed attempt");
    cr_assert_eq(col(id, "lease_token IS NULL"), 1);
}

Test(jobs, a_runner_refuses_unknown_queues_and_queues_without_processor)
{
    char err[256];
    static const struct job_queue_def none[] = {{.name = "t-none"}};
    struct job_runner_options o = {.queues = (const char *const[]){"t-none"}, .nqueues = 1};
    cr_assert_null(job_runner_start(&env, none, 1, &o, err, sizeof(err)));
    cr_assert(strstr(err, "no processor"), "%s", err);
    o.queues = (const char *const[]){"t-nope"};
    cr_assert_null(job_runner_start(&env, qdefs, ARRAY_LEN(qdefs), &o, err, sizeof(err)));
    cr_assert(strstr(err, "unknown queue"), "%s", err);
    /* the specification's queues have no processor until their modules register one */
    size_t n;
    const struct job_queue_def *spec = jobs_queue_defs(&n);
    cr_assert_geq(n, 5);
    cr_assert_str_eq(spec[0].name, "tenant-deletion");
    struct job_queue_def d;
    jobs_def_resolve(jobs_queue_def("tenant-deletion"), &d);
    cr_assert_eq(d.attempts, 5);
    cr_assert_eq(d.concurrency, 2);
    cr_assert_eq(d.limiter_max, 5);
    cr_assert_eq(d.limiter_window_ms, 60000);
    cr_assert_eq(d.backoff_ms, 5000);
    cr_assert_eq(d.keep_completed_age_s, 86400);
    cr_assert_eq(d.keep_completed_count, 1000);
    cr_assert_eq(d.keep_failed_age_s, 604800);
    jobs_def_resolve(jobs_queue_def("archive"), &d);
    cr_assert_eq(d.attempts, 5);
    jobs_def_resolve(jobs_queue_def("user-deletion"), &d);
    cr_assert_eq(d.attempts, 3);
    cr_assert_eq(d.concurrency, 1);
}

Test(jobs, admin_views_count_and_list)
{
    const char *f = enq_named("t-plain", "f", "{\"unrecoverable\": true}", NULL);
    enq_named("t-plain", "d", NULL, &(struct job_opts){.delay_ms = 600000});
    struct job_runner *r = start(qdef("t-plain"), 1, NULL);
    cr_assert(wait_state(f, "failed", 3000));
    stop(r);
    enq_named("t-plain", "w", NULL, NULL);
    json_t *qs = jobs_queues_json(c);
    cr_assert_not_null(qs);
    json_t *plain = NULL, *q;
    size_t i;
    json_array_foreach (qs, i, q) {
        if (strcmp(json_string_value(json_object_get(q, "name")), "t-plain") == 0)
            plain = json_object_get(q, "counts");
    }
    cr_assert_not_null(plain, "a queue found in the database is listed");
    cr_assert_eq(json_integer_value(json_object_get(plain, "failed")), 1);
    cr_assert_eq(json_integer_value(json_object_get(plain, "delayed")), 1);
    cr_assert_eq(json_integer_value(json_object_get(plain, "waiting")), 1);
    cr_assert_eq(json_integer_value(json_object_get(plain, "completed")), 0);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(qs, 0), "name")),
                     "tenant-deletion", "the specification's queues first");
    json_decref(qs);
    long long total;
    json_t *l = jobs_list_json(c, "failed", NULL, 10, 0, &total);
    cr_assert_eq(total, 1);
    cr_assert_str_eq(json_string_value(json_object_get(json_array_get(l, 0), "id")), f);
    json_decref(l);
    l = jobs_list_json(c, NULL, "t-plain", 1, 1, &total);
    cr_assert_eq(total, 3);
    cr_assert_eq(json_array_size(l), 1);
    json_decref(l);
}

/* ---- events ------------------------------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    char room[64][160];
    json_t *msg[64];
    int n;
} ev = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void capture(void *arg, bool user, const char *target, const char *json, size_t len)
{
    (void)arg;
    cr_assert_not(user);
    pthread_mutex_lock(&ev.mu);
    if (ev.n < 64) {
        snprintf(ev.room[ev.n], sizeof(ev.room[0]), "%s", target);
        ev.msg[ev.n++] = json_loadb(json, len, 0, NULL);
    }
    pthread_mutex_unlock(&ev.mu);
}

/* The events of one job, in order, as "type" or "type:detail" strings joined by spaces. */
static void events_of(const char *tenant, const char *id, char *out, size_t n)
{
    char room[160];
    snprintf(room, sizeof(room), "tenant:%s:job:%s", tenant, id);
    out[0] = '\0';
    size_t w = 0;
    pthread_mutex_lock(&ev.mu);
    for (int i = 0; i < ev.n; i++) {
        if (strcmp(ev.room[i], room) != 0)
            continue;
        json_t *m = ev.msg[i];
        cr_assert_str_eq(json_string_value(json_object_get(m, "jobId")), id);
        const char *type = json_string_value(json_object_get(m, "type"));
        char detail[64] = "";
        if (strcmp(type, "job.progress") == 0)
            snprintf(detail, sizeof(detail), ":%lld:%s",
                     (long long)json_integer_value(json_object_get(m, "progress")),
                     json_string_value(json_object_get(m, "message")));
        else if (strcmp(type, "job.failed") == 0)
            snprintf(detail, sizeof(detail), ":%s:%s",
                     json_is_true(json_object_get(m, "willRetry")) ? "retry" : "final",
                     json_is_true(json_object_get(m, "cancelled")) ? "cancelled" : "failed");
        else if (strcmp(type, "job.completed") == 0)
            snprintf(detail, sizeof(detail), ":%s",
                     json_string_value(json_object_get(json_object_get(m, "result"), "name")));
        w += (size_t)snprintf(out + w, n - w, "%s%s%s@%lld", w ? " " : "", type, detail,
                              (long long)json_integer_value(json_object_get(m, "attempt")));
    }
    pthread_mutex_unlock(&ev.mu);
}

Test(jobs, progress_completion_and_failures_are_published_to_the_jobs_room)
{
    struct realtime *rt = realtime_new(NULL);
    realtime_set_local(rt, capture, NULL);
    env.realtime = rt;
    char ok[JOB_ID_MAX], bad[JOB_ID_MAX], sys[JOB_ID_MAX], gone[JOB_ID_MAX];
    cr_assert_eq(jobs_enqueue(c, "t-plain", "fine", TENANT_A, "{\"progress\": 40}", NULL, ok), 0);
    cr_assert_eq(jobs_enqueue(c, "t-plain", "broken", TENANT_B, "{\"fail\": true}",
                              &(struct job_opts){.attempts = 2}, bad),
                 0);
    cr_assert_eq(jobs_enqueue(c, "t-plain", "system", NULL, "{\"progress\": 10}", NULL, sys), 0);
    cr_assert_eq(jobs_enqueue(c, "t-plain", "gone", TENANT_A,
                              "{\"sleepMs\": 20000, \"honor\": true}", NULL, gone),
                 0);
    struct job_runner *r =
        start(qdef("t-plain"), 1,
              &(struct job_runner_options){
                  .poll_ms = 10, .lease_ms = 300, .sweep_interval_ms = 60000, .concurrency = 4});
    cr_assert(wait_state(ok, "completed", 3000));
    cr_assert(wait_state(bad, "failed", 3000));
    cr_assert(wait_state(sys, "completed", 3000));
    cr_assert(wait_state(gone, "active", 3000));
    cr_assert_eq(jobs_cancel(c, gone, NULL), 0);
    cr_assert(wait_state(gone, "cancelled", 3000));
    stop(r);
    char got[512];
    events_of(TENANT_A, ok, got, sizeof(got));
    cr_assert_str_eq(got, "job.progress:40:half way@1 job.completed:fine@1");
    events_of(TENANT_B, bad, got, sizeof(got));
    cr_assert_str_eq(got, "job.failed:retry:failed@1 job.failed:final:failed@2");
    events_of(TENANT_A, gone, got, sizeof(got));
    cr_assert_str_eq(got, "job.failed:final:cancelled@1");
    pthread_mutex_lock(&ev.mu);
    for (int i = 0; i < ev.n; i++) {
        cr_assert(strstr(ev.room[i], sys) == NULL, "a system job has no room");
        cr_assert(strncmp(ev.room[i], "tenant:", 7) == 0);
        json_decref(ev.msg[i]);
    }
    cr_assert_eq(ev.n, 5);
    pthread_mutex_unlock(&ev.mu);
    realtime_free(rt);
}

/* A busy queue claims past the jobs it took before (jobs_claim's `after`, PostgreSQL); a job
 * that becomes runnable ahead of them — a higher priority here — is still taken at the next
 * poll, not after the backlog. */
Test(jobs, a_priority_job_overtakes_a_busy_backlog)
{
    for (int i = 0; i < 40; i++)
        enq_named("t-plain", "backlog", "{\"sleepMs\": 10}", NULL);
    struct job_runner *r = start(qdef("t-plain"), 1, NULL);
    for (int i = 0; i < 300 && atomic_load(&rec.runs) < 5; i++)
        sleep_ms(5);
    const char *urgent = enq_named("t-plain", "urgent", NULL, &(struct job_opts){.priority = 1});
    cr_assert(wait_state(urgent, "completed", 5000));
    int before = count_sql("SELECT count(*) FROM jobs WHERE name = 'backlog' AND state = "
                           "'completed'");
    stop(r);
    cr_assert_lt(before, 30, "the urgent job waited for %d of 40 backlog jobs", before);
}

Test(jobs, many_jobs_are_added_in_one_statement_in_order)
{
    const char *data[] = {"{\"k\": 1}", NULL, "{\"k\": 3}"};
    char ids[3][JOB_ID_MAX];
    /* inside a transaction that rolls back: none */
    cr_assert_eq(db_begin(c), 0);
    cr_assert_eq(jobs_enqueue_many(c, "t-plain", "many", TENANT_A, data, 3, NULL, ids), 0, "%s",
                 db_errmsg(c));
    cr_assert_eq(db_rollback(c), 0);
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs"), 0);
    cr_assert_eq(jobs_enqueue_many(c, "t-plain", "many", TENANT_A, data, 3,
                                   &(struct job_opts){.attempts = 4, .delay_ms = 0}, ids),
                 0, "%s", db_errmsg(c));
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs WHERE tenant_id = '" TENANT_A
                           "' AND max_attempts = 4 AND name = 'many'"),
                 3);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM jobs WHERE id = $1 AND data = $2",
                               DB_ARGS(DB_TEXT(ids[1]), DB_TEXT("{}"))),
                 1, "a NULL payload is {}");
    /* claimed in the order given */
    struct job_runner *r = start(qdef("t-plain"), 1, NULL);
    cr_assert(wait_state(ids[2], "completed", 3000));
    stop(r);
    cr_assert_lt(col(ids[0], "seq"), col(ids[1], "seq"));
    cr_assert_lt(col(ids[1], "seq"), col(ids[2], "seq"));
    cr_assert_leq(col(ids[0], "started_at"), col(ids[1], "started_at"));
    /* refused: a job id for many, a payload that is no object (nothing added) */
    cr_assert_eq(jobs_enqueue_many(c, "t-plain", NULL, NULL, data, 3,
                                   &(struct job_opts){.job_id = "same"}, ids),
                 -1);
    const char *bad[] = {"{}", "[1]"};
    cr_assert_eq(jobs_enqueue_many(c, "t-plain", NULL, NULL, bad, 2, NULL, ids), -1);
    const char *broken[] = {"{}", "{\"x\":"};
    cr_assert_eq(jobs_enqueue_many(c, "t-plain", NULL, NULL, broken, 2, NULL, ids), -1);
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs"), 3);
}

/* After a stream of short jobs one executor runs them in turn without waking the others (a
 * thread switch costs more than such a job); a long job among them must not hold up the rest:
 * claimed jobs nobody takes for a millisecond get a helper. */
Test(jobs, short_jobs_do_not_wait_behind_a_long_one)
{
    const struct job_queue_def *q = qdef("t-wide"); /* concurrency 4 */
    struct job_runner *r = start(q, 1, NULL);
    for (int i = 0; i < 40; i++)
        enq_named("t-wide", "quick", NULL, NULL);
    for (int i = 0;
         i < 500 && count_sql("SELECT count(*) FROM jobs WHERE state = 'completed'") < 40; i++)
        sleep_ms(10);
    const char *slow = enq_named("t-wide", "slow", "{\"sleepMs\": 10000, \"honor\": true}", NULL);
    const char *after[3];
    for (int i = 0; i < 3; i++)
        after[i] = enq_named("t-wide", "after", NULL, NULL);
    jobs_wake();
    for (int i = 0; i < 3; i++)
        cr_assert(wait_state(after[i], "completed", 1500), "a short job waited for the long one");
    cr_assert_str_eq(state_of(slow), "active", "the long one is still running");
    cr_assert_eq(atomic_load(&rec.doubles), 0);
    cr_assert_leq(atomic_load(&rec.max_running), 4);
    cr_assert_eq(job_runner_stop(r, 0), 0, "the long one stops when asked");
}

/* Stops that land mid-stream and as the queue drains (when the executor ending the last batch
 * may be leading the turn that records it) end promptly and leave no job active. Repeated:
 * the windows are small. (A stop racing an executor's turn once spun the dispatcher with the
 * lock held; the limiter test caught it under load.) */
Test(jobs, stopping_under_load_is_prompt_and_leaves_nothing_active, .timeout = 120)
{
    for (int round = 0; round < 40; round++) {
        /* even rounds stop mid-stream, odd ones as the queue drains (the executor that ends
         * the last batch is then leading the turn that records it) */
        int n = round % 2 ? 8 : 60;
        const char *data[60] = {0};
        char ids[60][JOB_ID_MAX];
        cr_assert_eq(jobs_enqueue_many(c, "t-wide", "quick", NULL, data, (size_t)n, NULL, ids), 0);
        int64_t before = atomic_load(&rec.runs);
        struct job_runner *r = start(qdef("t-wide"), 1, NULL);
        while (atomic_load(&rec.runs) < before + (round % 2 ? n : 10 + round))
            ;
        int64_t t0 = jobs_now_ms();
        cr_assert_eq(job_runner_stop(r, 5), 0);
        cr_assert_lt(jobs_now_ms() - t0, 3000, "round %d: the stop took %lld ms", round,
                     (long long)(jobs_now_ms() - t0));
    }
    cr_assert_eq(count_sql("SELECT count(*) FROM jobs WHERE state = 'active'"), 0,
                 "every claimed job was recorded or given back");
}
