/* jobtest.c — see jobtest.h. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <time.h>

#include "db/db.h"
#include "jobs/processors.h"
#include "jobtest.h"
#include "lib/buf.h"

struct job_env jobtest_env(struct tenv *t, struct realtime *rt)
{
    return (struct job_env){.cfg = &t->cfg,
                            .db = t->db,
                            .mailer = app_mailer(t->app),
                            .keyring = app_keyring(t->app),
                            .realtime = rt};
}

static long long count_sql(struct tenv *t, const char *sql, const struct db_param *p, size_t n)
{
    char err[256];
    struct db_conn *c = db_acquire(t->db, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    db_set_rls_bypass(c, true);
    struct db_rows *r = db_query(c, sql, p, n);
    cr_assert(r && db_next(r), "%s: %s", sql, db_errmsg(c));
    long long v = db_int(r, 0);
    db_rows_free(r);
    db_release(c);
    return v;
}

long long jobtest_count(struct tenv *t, const char *queue, const char *state)
{
    return count_sql(t,
                     "SELECT count(*) FROM jobs WHERE (queue = $1 OR CAST($1 AS text) IS NULL)"
                     " AND state = $2",
                     DB_ARGS(DB_TEXT(queue), DB_TEXT(state)));
}

struct job_runner *jobtest_runner(struct tenv *t, const char *const *queues, size_t n,
                                  int64_t poll_ms)
{
    jobs_processors_register();
    size_t ndefs;
    const struct job_queue_def *defs = jobs_queue_defs(&ndefs);
    struct job_env env = jobtest_env(t, NULL); /* the runner keeps a copy */
    struct job_runner_options o = {.queues = queues, .nqueues = n, .poll_ms = poll_ms};
    char err[256];
    struct job_runner *r = job_runner_start(&env, defs, ndefs, &o, err, sizeof(err));
    cr_assert_not_null(r, "runner: %s", err);
    return r;
}

void jobtest_drain(struct tenv *t, const struct job_env *env, int timeout_ms)
{
    jobs_processors_register();
    size_t n, k = 0;
    const struct job_queue_def *defs = jobs_queue_defs(&n);
    const char *names[32];
    struct buf in;
    buf_init(&in, 4096);
    for (size_t i = 0; i < n && k < ARRAY_LEN(names); i++) {
        if (!defs[i].process)
            continue;
        buf_printf(&in, "%s'%s'", k ? ", " : "", defs[i].name);
        names[k++] = defs[i].name;
    }
    struct job_env own = jobtest_env(t, NULL);
    struct job_runner_options o = {.queues = names, .nqueues = k, .poll_ms = 10};
    char err[256];
    struct job_runner *r = job_runner_start(env ? env : &own, defs, n, &o, err, sizeof(err));
    cr_assert_not_null(r, "runner: %s", err);
    char *sql = NULL;
    cr_assert(asprintf(&sql,
                       "SELECT count(*) FROM jobs WHERE queue IN (%s) AND ((state = 'waiting'"
                       " AND run_at <= $1) OR state = 'active')",
                       buf_cstr(&in)) > 0);
    buf_free(&in);
    long long left = 1;
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        left = count_sql(t, sql, DB_ARGS(DB_INT(jobs_now_ms())));
        if (left == 0)
            break;
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
    }
    free(sql);
    job_runner_stop(r, 5);
    cr_assert_eq(left, 0, "%lld job(s) still due after %d ms", left, timeout_ms);
}
