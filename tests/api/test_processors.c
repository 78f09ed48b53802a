/* The processors of the specification's queues, run by the real runner on the suite's database
 * (SQLite, or PostgreSQL with ZYGO_TEST_DB=postgres): tenant deletion requested through
 * DELETE /api/v1/tenants/current (confirmation, owner only, steps and progress, tokens refused,
 * rows purged from every tenant table, archive file complete and limited to the tenant, other
 * tenants untouched, re-runs after a failure at each step without duplicate effects), user
 * deletion, notifications against a fake SMTP server (down → retried; back → delivered once;
 * unacceptable → no retry), the archive job, and emails queued inside the request's
 * transaction (a rolled-back sign-up sends nothing). */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <pthread.h>
#include <sys/stat.h>
#include <zlib.h>

#include "accounts.h"
#include "dbtest.h"
#include "fake_smtp.h"
#include "jobs/queue.h"
#include "jobtest.h"
#include "lib/password.h"
#include "repos/tenant_data.h"
#include "services/mailer.h"
#include "services/realtime.h"
#include "support.h"

static struct tenv t;
static void setup(void)
{
    static const char *const extra[] = {"RATE_LIMIT_ENABLED=false", NULL};
    tenv_setup(&t, extra, NULL, 0);
}
static void teardown(void)
{
    tenv_teardown(&t);
}
TestSuite(processors, .init = setup, .fini = teardown, .timeout = 120);

/* ---- helpers ------------------------------------------------------------------------------ */

static int req(const char *method, const char *path, const char *token, const char *body,
               json_t **out)
{
    return api_req(t.app, method, path, token, body, out);
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void sql(const char *q, const char *a, const char *b)
{
    struct db_conn *c = dbt_bypass(t.db);
    int rc = b   ? db_exec(c, q, DB_ARGS(DB_TEXT(a), DB_TEXT(b)))
             : a ? db_exec(c, q, DB_ARGS(DB_TEXT(a)))
                 : db_exec(c, q, DB_NOARGS);
    cr_assert_geq(rc, 0, "%s: %s", q, db_errmsg(c));
    db_release(c);
}

static int64_t count(const char *q, const char *a, const char *b)
{
    struct db_conn *c = dbt_bypass(t.db);
    int64_t n = b ? dbt_query_int(c, q, DB_ARGS(DB_TEXT(a), DB_TEXT(b)))
                  : dbt_query_int(c, q, DB_ARGS(DB_TEXT(a)));
    db_release(c);
    return n;
}

/* Outbox messages of kind to the address. */
static size_t outbox_count(const char *to, const char *kind)
{
    json_t *msgs, *m;
    size_t i, n = 0;
    cr_assert_eq(mailer_outbox_read(t.dir, &msgs), 0);
    json_array_foreach (msgs, i, m) {
        n += strcmp(jstr(m, "to"), to) == 0 && strcmp(jstr(m, "kind"), kind) == 0;
    }
    json_decref(msgs);
    return n;
}

static json_t *job(const char *id)
{
    struct db_conn *c = dbt_bypass(t.db);
    json_t *j = jobs_get_json(c, id, NULL);
    db_release(c);
    cr_assert_not_null(j, "job %s not found", id);
    return j;
}

static void job_state_is(const char *id, const char *state)
{
    json_t *j = job(id);
    cr_assert_str_eq(jstr(j, "state"), state, "job %s: %s (error %s)", id, jstr(j, "state"),
                     jstr(j, "error") ? jstr(j, "error") : "-");
    json_decref(j);
}

/* Makes a job that waits for its backoff due now (the retry of a failed attempt). */
static void due_now(const char *id)
{
    sql("UPDATE jobs SET run_at = 0 WHERE id = $1 AND state = 'waiting'", id, NULL);
}

static void drain(void)
{
    jobtest_drain(&t, NULL, 30000);
}

/* Requests the deletion of w's tenant; returns the job id (static storage). */
static const char *request_deletion(const struct account *w)
{
    static char id[JOB_ID_MAX];
    char body[256];
    snprintf(body, sizeof(body), "{\"confirm\":\"%s\",\"reason\":\"moving on\"}", w->tenant_slug);
    json_t *r;
    cr_assert_eq(req("DELETE", "/api/v1/tenants/current", w->access, body, &r), 202);
    snprintf(id, sizeof(id), "%s", jstr(r, "jobId"));
    cr_assert_str_eq(jstr(r, "tenantId"), w->tenant_id);
    json_decref(r);
    char want[128];
    snprintf(want, sizeof(want), "tenant-deletion:%s", w->tenant_id);
    cr_assert_str_eq(id, want);
    return id;
}

/* The tenant's rows in every tenant table (tenant_deletions and the tenants row aside). */
static int64_t tenant_rows(const char *tenant)
{
    struct db_conn *c = dbt_bypass(t.db);
    struct tenant_tables tt;
    cr_assert_eq(tenant_data_tables(c, &tt), 0, "%s", db_errmsg(c));
    int64_t n = 0;
    for (size_t i = 0; i < tt.n; i++) {
        char q[160];
        snprintf(q, sizeof(q), "SELECT count(*) FROM \"%s\" WHERE tenant_id = $1", tt.names[i]);
        n += dbt_query_int(c, q, DB_ARGS(DB_TEXT(tenant)));
    }
    tenant_tables_free(&tt);
    db_release(c);
    return n;
}

/* Archive files of the tenant in <data>/archives (hidden temporary ones counted apart). */
static int archives_of(const char *tenant, int *tmp)
{
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/archives", t.dir);
    DIR *d = opendir(dir);
    int n = 0;
    if (tmp)
        *tmp = 0;
    if (!d)
        return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strstr(e->d_name, tenant) && e->d_name[0] != '.')
            n++;
        else if (tmp && strstr(e->d_name, tenant))
            (*tmp)++;
    }
    closedir(d);
    return n;
}

/* The archive decompressed: its text (caller frees) and the parsed document. */
static json_t *read_archive(const char *path, char **text_out)
{
    gzFile f = gzopen(path, "rb");
    cr_assert_not_null(f, "cannot open %s", path);
    size_t cap = 1 << 16, len = 0;
    char *text = xmalloc(cap);
    int n;
    while ((n = gzread(f, text + len, (unsigned)(cap - len - 1))) > 0) {
        len += (size_t)n;
        if (cap - len < 4096)
            text = xrealloc(text, cap *= 2);
    }
    int errnum;
    gzerror(f, &errnum);
    cr_assert_eq(errnum, Z_OK, "gzip stream of %s is broken", path);
    cr_assert_eq(gzclose(f), Z_OK, "gzip trailer of %s is wrong (truncated?)", path);
    text[len] = '\0';
    json_error_t je;
    json_t *doc = json_loads(text, 0, &je);
    cr_assert_not_null(doc, "archive is not JSON: %s", je.text);
    if (text_out)
        *text_out = text;
    else
        free(text);
    return doc;
}

/* Every row of the archive belongs to the tenant. */
static void archive_only_has(json_t *doc, const char *tenant)
{
    const char *table;
    json_t *rows;
    json_object_foreach (json_object_get(doc, "tables"), table, rows) {
        size_t i;
        json_t *row;
        cr_assert(json_is_array(rows), "%s", table);
        cr_assert_eq((json_int_t)json_array_size(rows),
                     json_integer_value(json_object_get(json_object_get(doc, "counts"), table)),
                     "count of %s", table);
        json_array_foreach (rows, i, row) {
            const char *owner = jstr(row, strcmp(table, "tenants") == 0 ? "id" : "tenant_id");
            cr_assert(owner && strcmp(owner, tenant) == 0, "a row of %s not of the tenant", table);
            const char *k;
            json_t *v;
            json_object_foreach (row, k, v) {
                cr_assert(!tenant_data_column_redacted(k), "%s.%s was exported", table, k);
            }
        }
    }
}

/* ---- realtime capture --------------------------------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    json_t *events; /* [{room, msg}] */
} cap = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void capture(void *arg, bool user, const char *target, const char *text, size_t len)
{
    (void)arg;
    (void)user;
    json_t *m = json_loadb(text, len, 0, NULL);
    pthread_mutex_lock(&cap.mu);
    json_array_append_new(cap.events, json_pack("{s:s, s:o}", "room", target, "msg", m));
    pthread_mutex_unlock(&cap.mu);
}

/* ---- DELETE /tenants/current: who may ---------------------------------------------------- */

Test(processors, tenant_deletion_needs_the_owner_and_the_slug)
{
    struct account owner, admin, custom;
    accounts_signup(t.app, "olga@a.example", "Acme A", &owner);
    accounts_user_with_role(&t, &owner, "adam@a.example", "admin", &admin);
    /* a custom role may hold canManageTenant: deleting stays the owner's */
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/roles", owner.access,
                     "{\"name\":\"tenant-admins\",\"permissions\":[\"canManageTenant\"]}", &r),
                 201);
    json_decref(r);
    accounts_user_with_role(&t, &owner, "cora@a.example", "tenant-admins", &custom);
    cr_assert_eq(
        req("PATCH", "/api/v1/tenants/current", custom.access, "{\"name\":\"Renamed\"}", NULL), 200,
        "the custom role does manage the tenant");

    char good[128];
    snprintf(good, sizeof(good), "{\"confirm\":\"%s\"}", owner.tenant_slug);
    cr_assert_eq(req("DELETE", "/api/v1/tenants/current", NULL, good, NULL), 401);
    cr_assert_eq(req("DELETE", "/api/v1/tenants/current", admin.access, good, &r), 403);
    cr_assert_str_eq(jstr(r, "error"), "AUTH_FORBIDDEN");
    json_decref(r);
    cr_assert_eq(req("DELETE", "/api/v1/tenants/current", custom.access, good, NULL), 403,
                 "canManageTenant alone is not enough");
    cr_assert_eq(
        req("DELETE", "/api/v1/tenants/current", owner.access, "{\"confirm\":\"acme-b\"}", &r),
        400);
    cr_assert_str_eq(jstr(r, "error"), "VALIDATION_ERROR");
    cr_assert_str_eq(
        jstr(json_array_get(json_object_get(json_object_get(r, "details"), "issues"), 0), "path"),
        "confirm");
    json_decref(r);
    const char *bad[] = {"{}", "{\"confirm\":\"\"}", "{\"confirm\":42}",
                         "[]", "not json",           "{\"confirm\":\"x\",\"reason\":7}"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        cr_assert_eq(req("DELETE", "/api/v1/tenants/current", owner.access, bad[i], NULL), 400,
                     "%s", bad[i]);
    cr_assert_eq(jobtest_count(&t, "tenant-deletion", "waiting"), 0, "nothing was queued");
    cr_assert_eq(
        count("SELECT count(*) FROM tenant_deletions WHERE tenant_id = $1", owner.tenant_id, NULL),
        0);
    cr_assert_eq(req("GET", "/api/v1/users/me", owner.access, NULL, NULL), 200);
}

/* ---- the whole deletion ------------------------------------------------------------------ */

Test(processors, tenant_deletion_end_to_end)
{
    struct account a, member, b;
    accounts_signup(t.app, "ann@a.example", "Tenant A", &a);
    accounts_user_with_role(&t, &a, "max@a.example", "member", &member);
    accounts_signup(t.app, "bob@b.example", "Tenant B", &b);
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/users", a.access, "{\"email\":\"pending@a.example\"}", &r),
                 201, "a pending invitee: not an active user");
    json_decref(r);
    cr_assert_eq(req("POST", "/api/v1/roles", a.access,
                     "{\"name\":\"auditors\",\"permissions\":[\"canViewAuditLogs\"]}", NULL),
                 201);
    drain(); /* the sign-up and invitation emails */
    int64_t b_rows = tenant_rows(b.tenant_id);
    cr_assert_gt(tenant_rows(a.tenant_id), 0);

    const char *id = request_deletion(&a);
    char job_id[JOB_ID_MAX];
    snprintf(job_id, sizeof(job_id), "%s", id);
    cr_assert_str_eq(request_deletion(&a), job_id, "asking again answers the same job");
    cr_assert_eq(count("SELECT count(*) FROM jobs WHERE queue = 'tenant-deletion' AND"
                       " tenant_id = $1",
                       a.tenant_id, NULL),
                 1);
    cr_assert_eq(req("GET", "/api/v1/users/me", a.access, NULL, NULL), 200,
                 "the tenant works until the job runs");

    /* run it with the real-time bus capturing the job's events */
    struct realtime *rt = realtime_new(NULL);
    realtime_set_local(rt, capture, NULL);
    cap.events = json_array();
    struct job_env env = jobtest_env(&t, rt);
    jobtest_drain(&t, &env, 60000);
    realtime_free(rt);

    json_t *j = job(job_id);
    cr_assert_str_eq(jstr(j, "state"), "completed", "%s", jstr(j, "error"));
    cr_assert_eq(json_integer_value(json_object_get(j, "progress")), 100);
    json_t *res = json_object_get(j, "result");
    cr_assert_str_eq(jstr(res, "tenantId"), a.tenant_id);
    char path[1024];
    snprintf(path, sizeof(path), "%s", jstr(res, "archivePath"));
    json_decref(j);

    /* progress marks in order, then completed, in the job's room */
    char room[256];
    snprintf(room, sizeof(room), "tenant:%s:job:%s", a.tenant_id, job_id);
    int want[] = {5, 10, 20, 30, 40, 90, 100};
    size_t w = 0, i;
    int last = -1;
    bool completed = false;
    json_t *e;
    json_array_foreach (cap.events, i, e) {
        if (strcmp(jstr(e, "room"), room) != 0)
            continue;
        json_t *m = json_object_get(e, "msg");
        if (strcmp(jstr(m, "type"), "job.completed") == 0) {
            completed = true;
            continue;
        }
        cr_assert_str_eq(jstr(m, "type"), "job.progress");
        int p = (int)json_integer_value(json_object_get(m, "progress"));
        cr_assert_geq(p, last, "progress goes forward");
        last = p;
        if (w < ARRAY_LEN(want) && p == want[w])
            w++;
    }
    cr_assert_eq(w, ARRAY_LEN(want), "progress marks seen: %zu of %zu", w, ARRAY_LEN(want));
    cr_assert(completed, "job.completed published");
    json_decref(cap.events);

    /* the tenant's API stopped working */
    cr_assert_eq(req("GET", "/api/v1/users/me", a.access, NULL, NULL), 401);
    cr_assert_eq(req("GET", "/api/v1/users", member.access, NULL, NULL), 401);
    cr_assert_eq(accounts_login(t.app, "ann@a.example", NULL, NULL), 401);
    cr_assert_eq(accounts_login(t.app, "max@a.example", NULL, NULL), 401);
    char body[512];
    snprintf(body, sizeof(body), "{\"refreshToken\":\"%s\"}", a.refresh);
    cr_assert_eq(req("POST", "/api/v1/auth/refresh", NULL, body, NULL), 401);

    /* its rows are gone; the tenants row is a tombstone; the request row stays */
    cr_assert_eq(tenant_rows(a.tenant_id), 0);
    char tomb[64];
    snprintf(tomb, sizeof(tomb), "deleted-%s", a.tenant_id);
    cr_assert_eq(count("SELECT count(*) FROM tenants WHERE id = $1 AND deleted_at IS NOT NULL"
                       " AND status = 'suspended' AND name = 'Deleted tenant' AND slug = $2",
                       a.tenant_id, tomb),
                 1);
    cr_assert_eq(count("SELECT count(*) FROM tenant_deletions WHERE tenant_id = $1 AND"
                       " completed_at IS NOT NULL AND archive_path = $2",
                       a.tenant_id, path),
                 1);
    cr_assert_eq(count("SELECT count(*) FROM audit_logs WHERE tenant_id IS NULL AND"
                       " action = 'tenant.deleted' AND resource_id = $1 AND actor_id = $2",
                       a.tenant_id, a.user_id),
                 1);

    /* every active user was told once; the pending invitee was not */
    cr_assert_eq(outbox_count("ann@a.example", "tenant_deletion"), 1);
    cr_assert_eq(outbox_count("max@a.example", "tenant_deletion"), 1);
    cr_assert_eq(outbox_count("pending@a.example", "tenant_deletion"), 0);
    cr_assert_eq(outbox_count("bob@b.example", "tenant_deletion"), 0);

    /* the archive: complete, private, the tenant's rows only, no credentials */
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "%s", path);
    cr_assert_eq(st.st_mode & 0777, 0600);
    char dir[512];
    snprintf(dir, sizeof(dir), "%s/archives", t.dir);
    cr_assert_eq(stat(dir, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700);
    int tmp;
    cr_assert_eq(archives_of(a.tenant_id, &tmp), 1);
    cr_assert_eq(tmp, 0, "no temporary file left");
    char *text;
    json_t *doc = read_archive(path, &text);
    cr_assert_str_eq(jstr(doc, "format"), "zygo.tenant-archive");
    cr_assert(json_is_true(json_object_get(doc, "complete")));
    cr_assert_str_eq(jstr(doc, "tenantId"), a.tenant_id);
    archive_only_has(doc, a.tenant_id);
    json_t *tables = json_object_get(doc, "tables");
    cr_assert_eq(json_array_size(json_object_get(tables, "tenants")), 1);
    cr_assert_eq(json_array_size(json_object_get(tables, "users")), 3, "owner, member, invitee");
    cr_assert_geq(json_array_size(json_object_get(tables, "roles")), 5, "system + custom");
    cr_assert_gt(json_array_size(json_object_get(tables, "sessions")), 0);
    cr_assert_gt(json_array_size(json_object_get(tables, "audit_logs")), 0);
    cr_assert_not_null(strstr(text, "auditors"));
    cr_assert_null(strstr(text, "bob@b.example"), "nothing of tenant B");
    cr_assert_null(strstr(text, b.tenant_id), "nothing of tenant B");
    cr_assert_null(strstr(text, "$argon2"), "no password hash");
    json_decref(doc);
    free(text);

    /* tenant B is untouched and works */
    cr_assert_eq(tenant_rows(b.tenant_id), b_rows);
    cr_assert_eq(req("GET", "/api/v1/users/me", b.access, NULL, NULL), 200);
    cr_assert_eq(req("GET", "/api/v1/tenants/current", b.access, NULL, NULL), 200);

    /* the addresses are free again */
    struct account again;
    accounts_signup(t.app, "ann@a.example", "Tenant A again", &again);
    cr_assert_str_neq(again.tenant_id, a.tenant_id);
}

/* ---- re-runs ------------------------------------------------------------------------------ */

/* Deletes a tenant whose job fails at `point` on its first attempt, then lets the retry run;
 * the end state must be exactly the one of an uninterrupted run. */
static void rerun_after_failure_at(const char *point)
{
    struct account a, m, b;
    accounts_signup(t.app, "ann@a.example", "Tenant A", &a);
    accounts_user_with_role(&t, &a, "max@a.example", "member", &m);
    accounts_signup(t.app, "bob@b.example", "Tenant B", &b);
    drain();
    int64_t b_rows = tenant_rows(b.tenant_id);
    char job_id[JOB_ID_MAX];
    snprintf(job_id, sizeof(job_id), "%s", request_deletion(&a));
    char data[256];
    snprintf(data, sizeof(data),
             "{\"tenantId\":\"%s\",\"requestedBy\":\"%s\",\"testFailAt\":\"%s\"}", a.tenant_id,
             a.user_id, point);
    sql("UPDATE jobs SET data = $2 WHERE id = $1", job_id, data);

    drain();
    json_t *j = job(job_id);
    cr_assert_str_eq(jstr(j, "state"), "delayed", "waiting for its retry (%s)", point);
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 1);
    cr_assert_not_null(strstr(jstr(j, "error"), point), "%s", jstr(j, "error"));
    json_decref(j);
    /* half done: what the steps before the point did is there */
    bool notified = strcmp(point, "verify") != 0;
    cr_assert_eq(outbox_count("ann@a.example", "tenant_deletion"), notified ? 1 : 0, "%s", point);
    bool archived = strcmp(point, "archive") == 0 || strncmp(point, "purge", 5) == 0;
    cr_assert_eq(archives_of(a.tenant_id, NULL), archived ? 1 : 0, "%s", point);
    if (strcmp(point, "purge:1") == 0)
        cr_assert_gt(tenant_rows(a.tenant_id), 0, "purged only in part");
    if (strcmp(point, "softDelete") == 0) {
        /* soft-deleted, sessions not yet revoked: the auth middleware refuses the tenant */
        json_t *r;
        cr_assert_eq(req("GET", "/api/v1/users/me", a.access, NULL, &r), 403);
        cr_assert_str_eq(jstr(json_object_get(r, "details"), "reason"), "tenant_suspended");
        json_decref(r);
        cr_assert_eq(accounts_login(t.app, "max@a.example", NULL, NULL), 401,
                     "sign-in finds no user");
    }

    due_now(job_id);
    drain();
    job_state_is(job_id, "completed");
    j = job(job_id);
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 2);
    json_decref(j);
    /* no duplicate effects */
    cr_assert_eq(outbox_count("ann@a.example", "tenant_deletion"), 1, "%s", point);
    cr_assert_eq(outbox_count("max@a.example", "tenant_deletion"), 1, "%s", point);
    cr_assert_eq(archives_of(a.tenant_id, NULL), 1, "%s", point);
    cr_assert_eq(count("SELECT count(*) FROM audit_logs WHERE action = 'tenant.deleted' AND"
                       " resource_id = $1",
                       a.tenant_id, NULL),
                 1);
    cr_assert_eq(tenant_rows(a.tenant_id), 0);
    cr_assert_eq(tenant_rows(b.tenant_id), b_rows);
    cr_assert_eq(req("GET", "/api/v1/users/me", a.access, NULL, NULL), 401);
    /* the archive still holds the whole tenant (written before any purge) */
    char *path = NULL;
    struct db_conn *c = dbt_bypass(t.db);
    struct db_rows *r =
        db_query(c, "SELECT archive_path FROM tenant_deletions WHERE tenant_id = $1",
                 DB_ARGS(DB_TEXT(a.tenant_id)));
    cr_assert(r && db_next(r));
    path = xstrdup(db_text(r, 0));
    db_rows_free(r);
    db_release(c);
    json_t *doc = read_archive(path, NULL);
    free(path);
    archive_only_has(doc, a.tenant_id);
    cr_assert_eq(json_array_size(json_object_get(json_object_get(doc, "tables"), "users")), 2);
    json_decref(doc);

    /* running the processor once more on the finished deletion changes nothing */
    c = dbt_bypass(t.db);
    char again[JOB_ID_MAX];
    snprintf(data, sizeof(data), "{\"tenantId\":\"%s\"}", a.tenant_id);
    struct job_opts o = {.job_id = "tenant-deletion-again"};
    cr_assert_eq(jobs_enqueue(c, "tenant-deletion", NULL, a.tenant_id, data, &o, again), 0);
    db_release(c);
    drain();
    job_state_is(again, "completed");
    cr_assert_eq(outbox_count("ann@a.example", "tenant_deletion"), 1);
    cr_assert_eq(archives_of(a.tenant_id, NULL), 1);
    cr_assert_eq(count("SELECT count(*) FROM audit_logs WHERE action = 'tenant.deleted' AND"
                       " resource_id = $1",
                       a.tenant_id, NULL),
                 1);
}

Test(processors, tenant_deletion_rerun_after_verify)
{
    rerun_after_failure_at("verify");
}
Test(processors, tenant_deletion_rerun_after_notify)
{
    rerun_after_failure_at("notify");
}
Test(processors, tenant_deletion_rerun_after_soft_delete)
{
    rerun_after_failure_at("softDelete");
}
Test(processors, tenant_deletion_rerun_after_revoke)
{
    rerun_after_failure_at("revoke");
}
Test(processors, tenant_deletion_rerun_after_archive)
{
    rerun_after_failure_at("archive");
}
Test(processors, tenant_deletion_rerun_mid_purge)
{
    rerun_after_failure_at("purge:1");
}

/* Runs only the deletion's queues (jobtest_drain would wait for the jobs another "process"
 * holds here) until the job is in `state`. */
static void run_deletion_until(const char *job_id, const char *state)
{
    static const char *const queues[] = {"tenant-deletion", "notifications"};
    struct job_runner *r = jobtest_runner(&t, queues, ARRAY_LEN(queues), 10);
    const char *now = NULL;
    for (int waited = 0; waited < 30000; waited += 20) {
        json_t *j = job(job_id);
        bool there = strcmp(jstr(j, "state"), state) == 0;
        json_decref(j);
        if (there) {
            now = state;
            break;
        }
        usleep(20 * 1000);
    }
    job_runner_stop(r, 5);
    cr_assert_not_null(now, "job %s never %s", job_id, state);
}

/* Access is revoked together with the tenant's other jobs: a waiting (or delayed) one ends
 * cancelled, a running one is asked to stop (its worker sees it at its next heartbeat); other
 * tenants' jobs and the deletion itself go on. */
Test(processors, tenant_deletion_cancels_the_tenants_other_jobs)
{
    struct account a, b;
    accounts_signup(t.app, "ann@a.example", "Tenant A", &a);
    accounts_signup(t.app, "bob@b.example", "Tenant B", &b);
    drain();
    char later[JOB_ID_MAX], running[JOB_ID_MAX], others[JOB_ID_MAX];
    struct db_conn *c = dbt_bypass(t.db);
    struct job_opts in_an_hour = {.delay_ms = 3600 * 1000};
    cr_assert_eq(jobs_enqueue(c, "archive", NULL, a.tenant_id, "{}", &in_an_hour, later), 0);
    cr_assert_eq(jobs_enqueue(c, "archive", NULL, a.tenant_id, "{}", &in_an_hour, running), 0);
    cr_assert_eq(jobs_enqueue(c, "archive", NULL, b.tenant_id, "{}", &in_an_hour, others), 0);
    /* another process's worker has `running`, and `others`, under a lease */
    const char *take = "UPDATE jobs SET state = 'active', claimable = false, attempts_made = 1,"
                       " lease_owner = 'elsewhere', lease_token = 'tok', lease_until = $2,"
                       " started_at = $2 WHERE id = $1";
    cr_assert_eq(db_exec(c, take, DB_ARGS(DB_TEXT(running), DB_INT(jobs_now_ms() + 3600000))), 1);
    cr_assert_eq(db_exec(c, take, DB_ARGS(DB_TEXT(others), DB_INT(jobs_now_ms() + 3600000))), 1);
    db_release(c);

    char job_id[JOB_ID_MAX];
    snprintf(job_id, sizeof(job_id), "%s", request_deletion(&a));
    char data[256];
    snprintf(data, sizeof(data), "{\"tenantId\":\"%s\",\"testFailAt\":\"revoke\"}",
             a.tenant_id);
    sql("UPDATE jobs SET data = $2 WHERE id = $1", job_id, data);
    run_deletion_until(job_id, "delayed"); /* it stopped after the revoke step */

    job_state_is(later, "cancelled");
    job_state_is(running, "active");
    cr_assert_eq(count("SELECT count(*) FROM jobs WHERE id = $1 AND cancel_requested", running,
                       NULL),
                 1, "the running one is asked to stop");
    job_state_is(others, "active");
    cr_assert_eq(count("SELECT count(*) FROM jobs WHERE id = $1 AND cancel_requested", others,
                       NULL),
                 0, "another tenant's job goes on");
    due_now(job_id);
    run_deletion_until(job_id, "completed");
}

Test(processors, tenant_deletion_rewrites_a_lost_archive_before_purging)
{
    struct account a;
    accounts_signup(t.app, "ann@a.example", "Tenant A", &a);
    drain();
    char job_id[JOB_ID_MAX], data[256];
    snprintf(job_id, sizeof(job_id), "%s", request_deletion(&a));
    snprintf(data, sizeof(data), "{\"tenantId\":\"%s\",\"testFailAt\":\"archive\"}", a.tenant_id);
    sql("UPDATE jobs SET data = $2 WHERE id = $1", job_id, data);
    drain();
    cr_assert_eq(archives_of(a.tenant_id, NULL), 1);
    /* somebody removed the file before the purge ran */
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -f '%s'/archives/%s-*.json.gz", t.dir, a.tenant_id);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(archives_of(a.tenant_id, NULL), 0);
    due_now(job_id);
    drain();
    job_state_is(job_id, "completed");
    cr_assert_eq(archives_of(a.tenant_id, NULL), 1, "written again before the purge");
    cr_assert_eq(tenant_rows(a.tenant_id), 0);
}

Test(processors, tenant_deletion_without_a_request_is_refused)
{
    struct account a;
    accounts_signup(t.app, "ann@a.example", "Tenant A", &a);
    drain();
    struct db_conn *c = dbt_bypass(t.db);
    char id[JOB_ID_MAX], data[128];
    snprintf(data, sizeof(data), "{\"tenantId\":\"%s\"}", a.tenant_id);
    cr_assert_eq(jobs_enqueue(c, "tenant-deletion", NULL, a.tenant_id, data, NULL, id), 0);
    char bad[JOB_ID_MAX];
    cr_assert_eq(
        jobs_enqueue(c, "tenant-deletion", NULL, NULL, "{\"tenantId\":\"nope\"}", NULL, bad), 0);
    db_release(c);
    drain();
    job_state_is(id, "failed");
    job_state_is(bad, "failed");
    json_t *j = job(id);
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 1, "no retry");
    json_decref(j);
    cr_assert_eq(req("GET", "/api/v1/users/me", a.access, NULL, NULL), 200, "nothing deleted");
    cr_assert_gt(tenant_rows(a.tenant_id), 0);
}

/* ---- the tenant tables -------------------------------------------------------------------- */

static size_t pos(const struct tenant_tables *tt, const char *name)
{
    for (size_t i = 0; i < tt->n; i++)
        if (strcmp(tt->names[i], name) == 0)
            return i;
    cr_assert_fail("table %s not found among the tenant tables", name);
    return 0;
}

Test(processors, tenant_tables_are_found_children_first)
{
    struct db_conn *c = dbt_bypass(t.db);
    struct tenant_tables tt;
    cr_assert_eq(tenant_data_tables(c, &tt), 0, "%s", db_errmsg(c));
    db_release(c);
    const char *known[] = {
        "users",          "roles",           "user_roles",     "sessions",
        "refresh_tokens", "one_time_tokens", "mfa_factors",    "mfa_recovery_codes",
        "mfa_challenges", "audit_logs",      "user_identities"};
    for (size_t i = 0; i < ARRAY_LEN(known); i++)
        pos(&tt, known[i]);
    for (size_t i = 0; i < tt.n; i++) {
        cr_assert_str_neq(tt.names[i], "jobs");
        cr_assert_str_neq(tt.names[i], "tenant_deletions");
        cr_assert_str_neq(tt.names[i], "tenants");
    }
    cr_assert_lt(pos(&tt, "refresh_tokens"), pos(&tt, "sessions"));
    cr_assert_lt(pos(&tt, "sessions"), pos(&tt, "users"));
    cr_assert_lt(pos(&tt, "user_roles"), pos(&tt, "roles"));
    cr_assert_lt(pos(&tt, "user_roles"), pos(&tt, "users"));
    cr_assert_lt(pos(&tt, "user_identities"), pos(&tt, "users"));
    tenant_tables_free(&tt);
}

Test(processors, every_tenant_table_has_forced_row_level_security)
{
    if (!t.tdb.pg)
        cr_skip_test("PostgreSQL only: SQLite has no row-level security");
    struct db_conn *c = dbt_acquire(t.db);
    struct db_rows *r =
        db_query(c,
                 "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid ="
                 " c.relnamespace JOIN information_schema.columns k ON k.table_schema ="
                 " n.nspname AND k.table_name = c.relname WHERE n.nspname = current_schema()"
                 " AND c.relkind = 'r' AND k.column_name = 'tenant_id'"
                 " AND NOT (c.relrowsecurity AND c.relforcerowsecurity)",
                 DB_NOARGS);
    cr_assert_not_null(r, "%s", db_errmsg(c));
    char missing[1024] = "";
    while (db_next(r))
        snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), "%s ",
                 db_text(r, 0));
    db_rows_free(r);
    int64_t tables = dbt_query_int(c,
                                   "SELECT count(*) FROM information_schema.columns WHERE"
                                   " table_schema = current_schema() AND column_name ="
                                   " 'tenant_id'",
                                   DB_NOARGS);
    db_release(c);
    cr_assert_str_eq(missing, "", "tenant tables without forced RLS: %s", missing);
    cr_assert_geq(tables, 13, "the tenant tables were seen");
}

/* ---- the archive job ---------------------------------------------------------------------- */

Test(processors, archive_job_writes_the_tenant_only)
{
    struct account a, b;
    accounts_signup(t.app, "ann@a.example", "Tenant A", &a);
    accounts_signup(t.app, "bob@b.example", "Tenant B", &b);
    drain();
    int64_t a_rows = tenant_rows(a.tenant_id);
    struct db_conn *c = dbt_bypass(t.db);
    char id[JOB_ID_MAX], unknown[JOB_ID_MAX], data[128];
    snprintf(data, sizeof(data), "{\"tenantId\":\"%s\"}", a.tenant_id);
    cr_assert_eq(jobs_enqueue(c, "archive", NULL, a.tenant_id, data, NULL, id), 0);
    cr_assert_eq(jobs_enqueue(c, "archive", NULL, NULL,
                              "{\"tenantId\":\"0192f0c1-7a3b-7c4d-8e5f-0000000000ff\"}", NULL,
                              unknown),
                 0);
    db_release(c);
    drain();
    job_state_is(id, "completed");
    job_state_is(unknown, "failed");
    json_t *j = job(id);
    json_t *res = json_object_get(j, "result");
    const char *path = jstr(res, "path");
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(json_integer_value(json_object_get(res, "bytes")), (json_int_t)st.st_size);
    char *text;
    json_t *doc = read_archive(path, &text);
    archive_only_has(doc, a.tenant_id);
    json_int_t rows = 0;
    const char *k;
    json_t *v;
    json_object_foreach (json_object_get(doc, "counts"), k, v) {
        rows += json_integer_value(v);
    }
    cr_assert_eq(rows, json_integer_value(json_object_get(res, "rows")));
    cr_assert_eq(rows, a_rows + 1, "every row of the tenant, and the tenant");
    cr_assert_null(strstr(text, "bob@b.example"));
    cr_assert_null(strstr(text, "password_hash"));
    cr_assert_null(strstr(text, "token_hash"));
    cr_assert_not_null(strstr(text, "ann@a.example"));
    free(text);
    json_decref(doc);
    json_decref(j);
    cr_assert_eq(tenant_rows(a.tenant_id), a_rows, "archiving alone removes nothing");
    cr_assert_eq(req("GET", "/api/v1/users/me", a.access, NULL, NULL), 200);
}

/* ---- user deletion ------------------------------------------------------------------------ */

Test(processors, user_deletion_erases_what_the_user_left)
{
    struct account o, m;
    accounts_signup(t.app, "olga@a.example", "Tenant A", &o);
    accounts_user_with_role(&t, &o, "mia@a.example", "member", &m);
    /* what a user accumulates: an identity, MFA, a one-time token */
    struct db_conn *c = dbt_bypass(t.db);
    char x[37];
    uuid_v7(x);
    cr_assert_eq(db_exec(c,
                         "INSERT INTO user_identities (id, tenant_id, user_id, provider, subject)"
                         " VALUES ($1, $2, $3, 'github', 'gh-42')",
                         DB_ARGS(DB_TEXT(x), DB_TEXT(o.tenant_id), DB_TEXT(m.user_id))),
                 1, "%s", db_errmsg(c));
    uuid_v7(x);
    cr_assert_eq(db_exec(c,
                         "INSERT INTO mfa_factors (id, tenant_id, user_id, secret_sealed)"
                         " VALUES ($1, $2, $3, 'v1.1.x')",
                         DB_ARGS(DB_TEXT(x), DB_TEXT(o.tenant_id), DB_TEXT(m.user_id))),
                 1, "%s", db_errmsg(c));
    uuid_v7(x);
    cr_assert_eq(db_exec(c,
                         "INSERT INTO mfa_recovery_codes (id, tenant_id, user_id, code_hash)"
                         " VALUES ($1, $2, $3, $4)",
                         DB_ARGS(DB_TEXT(x), DB_TEXT(o.tenant_id), DB_TEXT(m.user_id),
                                 DB_TEXT("0000000000000000000000000000000000000000000000000000000"
                                         "000000000"))),
                 1, "%s", db_errmsg(c));
    db_release(c);
    cr_assert_eq(
        req("POST", "/api/v1/auth/password/forgot", NULL, "{\"email\":\"mia@a.example\"}", NULL),
        202);
    drain();

    char path[128];
    snprintf(path, sizeof(path), "/api/v1/users/%s", m.user_id);
    cr_assert_eq(req("DELETE", path, o.access, NULL, NULL), 204);
    cr_assert_eq(req("GET", "/api/v1/users/me", m.access, NULL, NULL), 401, "at once");
    char job_id[JOB_ID_MAX];
    snprintf(job_id, sizeof(job_id), "user-deletion:%s", m.user_id);
    job_state_is(job_id, "waiting");
    drain();
    job_state_is(job_id, "completed");

    const char *tables[] = {"sessions",           "user_identities", "mfa_factors",
                            "mfa_recovery_codes", "mfa_challenges",  "one_time_tokens",
                            "user_roles"};
    for (size_t i = 0; i < ARRAY_LEN(tables); i++) {
        char q[128];
        snprintf(q, sizeof(q), "SELECT count(*) FROM %s WHERE user_id = $1", tables[i]);
        cr_assert_eq(count(q, m.user_id, NULL), 0, "%s", tables[i]);
    }
    cr_assert_eq(count("SELECT count(*) FROM refresh_tokens r JOIN sessions s ON s.id ="
                       " r.session_id WHERE s.user_id = $1",
                       m.user_id, NULL),
                 0);
    char email[96];
    snprintf(email, sizeof(email), "deleted-%s@deleted.invalid", m.user_id);
    cr_assert_eq(count("SELECT count(*) FROM users WHERE id = $1 AND email = $2 AND"
                       " first_name IS NULL AND password_hash IS NULL AND deleted_at IS NOT NULL"
                       " AND status = 'deleted'",
                       m.user_id, email),
                 1);
    cr_assert_eq(count("SELECT count(*) FROM users WHERE email = $1", "mia@a.example", NULL), 0,
                 "the address is nowhere");
    cr_assert_eq(count("SELECT count(*) FROM audit_logs WHERE action = 'user.erase' AND"
                       " resource_id = $1 AND actor_id = $2",
                       m.user_id, o.user_id),
                 1);
    /* the owner is untouched */
    cr_assert_eq(req("GET", "/api/v1/users/me", o.access, NULL, NULL), 200);
    cr_assert_gt(count("SELECT count(*) FROM user_roles WHERE user_id = $1", o.user_id, NULL), 0);

    /* again: nothing more happens */
    c = dbt_bypass(t.db);
    char data[256], again[JOB_ID_MAX], live[JOB_ID_MAX];
    snprintf(data, sizeof(data), "{\"tenantId\":\"%s\",\"userId\":\"%s\"}", o.tenant_id, m.user_id);
    struct job_opts opt = {.job_id = "user-deletion-again"};
    cr_assert_eq(jobs_enqueue(c, "user-deletion", NULL, o.tenant_id, data, &opt, again), 0);
    /* a live user is never erased, whoever enqueues it */
    snprintf(data, sizeof(data), "{\"tenantId\":\"%s\",\"userId\":\"%s\"}", o.tenant_id, o.user_id);
    cr_assert_eq(jobs_enqueue(c, "user-deletion", NULL, o.tenant_id, data, NULL, live), 0);
    db_release(c);
    drain();
    job_state_is(again, "completed");
    job_state_is(live, "failed");
    json_t *j = job(live);
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 1, "no retry");
    json_decref(j);
    cr_assert_eq(count("SELECT count(*) FROM audit_logs WHERE action = 'user.erase' AND"
                       " resource_id = $1",
                       m.user_id, NULL),
                 1);
    cr_assert_eq(req("GET", "/api/v1/users/me", o.access, NULL, NULL), 200);
    cr_assert_eq(count("SELECT count(*) FROM users WHERE id = $1 AND email = $2", o.user_id,
                       "olga@a.example"),
                 1);
}

/* ---- notifications ------------------------------------------------------------------------ */

/* A mailer for the same configuration but another SMTP port (0: no SMTP in production). */
static struct mailer *mailer_at(int port)
{
    struct config c = t.cfg;
    char host[] = "127.0.0.1";
    if (port) {
        c.smtp_host = host;
        c.smtp_port = port;
    } else {
        c.smtp_host = NULL;
        c.env = ENV_PRODUCTION;
        c.node_env = "production";
    }
    return mailer_new(&c);
}

static const char *queue_mail(const char *to, const char *kind)
{
    static char ids[8][JOB_ID_MAX];
    static int k;
    char *id = ids[k++ % 8];
    struct db_conn *c = dbt_bypass(t.db);
    char data[512];
    snprintf(data, sizeof(data),
             "{\"to\":\"%s\",\"subject\":\"Hello\",\"text\":\"Line one\\n.\\nLine three\","
             "\"kind\":\"%s\"}",
             to, kind);
    cr_assert_eq(jobs_enqueue(c, "notifications", NULL, NULL, data, NULL, id), 0, "%s",
                 db_errmsg(c));
    db_release(c);
    return id;
}

Test(processors, notifications_retry_while_smtp_is_down_and_deliver_once)
{
    struct fake_smtp smtp;
    cr_assert_eq(fake_smtp_start(&smtp, NULL), 0);
    int down_port = free_port();
    struct job_env env = jobtest_env(&t, NULL);

    const char *id = queue_mail("kim@example.com", "welcome");
    env.mailer = mailer_at(down_port);
    jobtest_drain(&t, &env, 30000);
    mailer_free(env.mailer);
    json_t *j = job(id);
    cr_assert_str_eq(jstr(j, "state"), "delayed", "retried later, not failed");
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 1);
    cr_assert_not_null(jstr(j, "error"));
    json_decref(j);
    cr_assert_eq(fake_smtp_count(&smtp), 0);

    /* the server is back */
    due_now(id);
    env.mailer = mailer_at(smtp.port);
    jobtest_drain(&t, &env, 30000);
    job_state_is(id, "completed");
    cr_assert(fake_smtp_wait(&smtp, 1, 5000));
    const struct fake_smtp_msg *m = fake_smtp_msg(&smtp, 0);
    cr_assert_str_eq(m->rcpt[0], "kim@example.com");
    cr_assert_not_null(strstr(m->data, "Subject: Hello"));
    cr_assert_not_null(strstr(m->data, "Line three"));
    j = job(id);
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 2);
    json_decref(j);
    /* nothing is sent twice */
    jobtest_drain(&t, &env, 30000);
    cr_assert_eq(fake_smtp_count(&smtp), 1);

    /* refused messages fail without retry */
    const char *bad = queue_mail("not an address", "welcome");
    jobtest_drain(&t, &env, 30000);
    job_state_is(bad, "failed");
    j = job(bad);
    cr_assert_eq(json_integer_value(json_object_get(j, "attemptsMade")), 1);
    json_decref(j);
    mailer_free(env.mailer);
    /* and so do messages with no way to send them (production without SMTP) */
    const char *nowhere = queue_mail("kim@example.com", "welcome");
    env.mailer = mailer_at(0);
    jobtest_drain(&t, &env, 30000);
    mailer_free(env.mailer);
    job_state_is(nowhere, "failed");
    cr_assert_eq(fake_smtp_count(&smtp), 1);
    fake_smtp_stop(&smtp);
}

Test(processors, request_emails_are_queued_sealed_and_sent_after_commit)
{
    struct account a;
    accounts_signup(t.app, "ann@a.example", "Tenant A", &a);
    /* queued, not sent, while nothing runs the queue */
    cr_assert_eq(outbox_count("ann@a.example", "email_verification"), 0);
    cr_assert_eq(jobtest_count(&t, "notifications", "waiting"), 1);
    /* the body with its link is sealed in the job */
    struct db_conn *c = dbt_bypass(t.db);
    struct db_rows *r = db_query(c,
                                 "SELECT data, tenant_id FROM jobs WHERE queue ="
                                 " 'notifications'",
                                 DB_NOARGS);
    cr_assert(r && db_next(r));
    cr_assert_null(strstr(db_text(r, 0), "token="), "%s", db_text(r, 0));
    cr_assert_null(strstr(db_text(r, 0), "confirm your email"));
    cr_assert_not_null(strstr(db_text(r, 0), "sealed"));
    cr_assert_str_eq(db_text(r, 1), a.tenant_id, "the job belongs to the tenant");
    db_rows_free(r);
    db_release(c);
    drain();
    cr_assert_eq(outbox_count("ann@a.example", "email_verification"), 1);
}

/* A request's email leaves at once: this process's workers are woken after the request's
 * transaction commits, not inside it (a wake before the commit finds nothing on PostgreSQL, and
 * the job then waits a whole poll, here 20 s). */
Test(processors, request_emails_leave_without_waiting_for_the_poll)
{
    static const char *const queues[] = {"notifications", "user-deletion"};
    struct job_runner *r = jobtest_runner(&t, queues, ARRAY_LEN(queues), 20000);
    usleep(300 * 1000); /* its first look found nothing: it sleeps for the poll now */
    int64_t start = jobs_now_ms();
    struct account a;
    accounts_signup(t.app, "ann@a.example", "Tenant A", &a);
    while (outbox_count("ann@a.example", "email_verification") == 0 &&
           jobs_now_ms() - start < 5000)
        usleep(20 * 1000);
    cr_assert_eq(outbox_count("ann@a.example", "email_verification"), 1,
                 "the email waited for the workers' poll");
    /* the same for a job a route queues itself: a user's deletion */
    char id[37];
    accounts_create_user(t.db, a.tenant_id, "bob@a.example", "Bob", "member", id);
    char path[80];
    snprintf(path, sizeof(path), "/api/v1/users/%s", id);
    start = jobs_now_ms();
    cr_assert_eq(req("DELETE", path, a.access, NULL, NULL), 204);
    while (jobtest_count(&t, "user-deletion", "completed") == 0 && jobs_now_ms() - start < 5000)
        usleep(20 * 1000);
    cr_assert_eq(jobtest_count(&t, "user-deletion", "completed"), 1,
                 "the deletion waited for the workers' poll");
    job_runner_stop(r, 5);
}

Test(processors, a_rolled_back_signup_sends_no_mail)
{
    /* the sign-up fails after queueing its email: the session insert is refused */
    const char *create_sqlite = "CREATE TRIGGER test_refuse BEFORE INSERT ON sessions"
                                " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END";
    const char *create_pg[] = {
        "CREATE FUNCTION test_refuse() RETURNS trigger LANGUAGE plpgsql AS"
        " $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
        "CREATE TRIGGER test_refuse BEFORE INSERT ON sessions FOR EACH ROW"
        " EXECUTE FUNCTION test_refuse()",
    };
    struct db *owner = NULL;
    char err[512];
    if (t.tdb.pg) {
        cr_assert_eq(db_open(&owner, t.tdb.owner_url, err, sizeof(err)), 0, "%s", err);
        struct db_conn *c = dbt_acquire(owner);
        for (size_t i = 0; i < ARRAY_LEN(create_pg); i++)
            dbt_exec_ok(c, create_pg[i]);
        db_release(c);
    } else {
        sql(create_sqlite, NULL, NULL);
    }
    int st = req("POST", "/api/v1/auth/signup", NULL,
                 "{\"email\":\"ann@a.example\",\"password\":\"" ACCOUNTS_PASSWORD
                 "\",\"tenantName\":\"A\"}",
                 NULL);
    cr_assert_geq(st, 500, "the sign-up failed (%d)", st);
    cr_assert_eq(jobtest_count(&t, "notifications", "waiting"), 0, "no job survived");
    drain();
    cr_assert_eq(outbox_count("ann@a.example", "email_verification"), 0);
    cr_assert_eq(count("SELECT count(*) FROM users WHERE email = $1", "ann@a.example", NULL), 0);

    if (owner) {
        struct db_conn *c = dbt_acquire(owner);
        dbt_exec_ok(c, "DROP TRIGGER test_refuse ON sessions");
        dbt_exec_ok(c, "DROP FUNCTION test_refuse()");
        db_release(c);
        db_close(owner);
    } else {
        sql("DROP TRIGGER test_refuse", NULL, NULL);
    }
    struct account a;
    accounts_signup(t.app, "ann@a.example", "A", &a);
    drain();
    cr_assert_eq(outbox_count("ann@a.example", "email_verification"), 1, "exactly once");
}
