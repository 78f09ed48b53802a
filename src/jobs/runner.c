/*
 * runner.c — workers for the job queue (queue.h): one dispatcher thread per runner that talks
 * to the database, and executor threads that run processors.
 *
 * Work with the database happens in "turns": one transaction (on PostgreSQL usually one
 * statement) that records the ends of the runs that finished since the last turn and claims
 * as many new jobs as the queues have free slots, so a busy queue costs one round trip per
 * batch, not two per job. One turn runs at a time, on whichever thread needs it: the executor
 * that ends the last run of a batch leads the next turn itself (no hand-off on the hot path);
 * the dispatcher leads the turns of polls, wake-ups and stops, and those of runs that end
 * while others still run (after waiting GATHER_US for them, so they are recorded together).
 * The dispatcher also renews the leases of the running jobs (heartbeat, every lease/3),
 * recovers stalled leases of its queues and applies their retention (every sweep interval).
 * Executors take claimed jobs in queue order and run the processor; how many wake up depends
 * on how long jobs take (exec_main). Events (progress, completed, failed) go to the realtime
 * bus after the change that they report has committed.
 *
 * Owns its threads, the runs in flight and a copy of the job_env; borrows the queue table.
 */
#include "lib/common.h"

#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <time.h>

#define ZYGO_JOBS_INTERNAL 1
#include "db/db.h"
#include "jobs/queue.h"
#include "lib/arena.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "services/realtime.h"

#define DEF_LEASE_MS 30000
#define DEF_POLL_MS 200
#define DEF_SWEEP_MS 60000
#define STOP_EXTRA_MS 2000 /* after the grace period: how long stopped jobs get to return */
#define RETRY_PAUSE_MS 500 /* after a failed dispatcher transaction */
#define MAX_QUEUES 32      /* per runner */
#define GATHER_US 300      /* how long ended runs wait for the others of their batch */
#define SHORT_RUN_US 200   /* jobs shorter than this (on average) need no helper thread */
#define WATCH_US 1000      /* claimed jobs nobody took for this long get a helper */

struct job_run {
    struct job job;
    struct job_runner *runner;
    size_t qi;
    char token[80];
    int64_t deadline; /* runner clock */
    int attempts_made;
    int64_t backoff_ms, timeout_ms;
    char *data_text;
    struct jobs_key key; /* its place in the claim order */
    atomic_bool cancel, lost;
    enum job_result res;
    bool timed_out;
    char *error;                                /* job_set_error, arena */
    json_t *result;                             /* job_set_result */
    struct job_run *next;                       /* ready or done list */
    char id[JOB_ID_MAX], name[129], tenant[40]; /* what job.id, .name, .tenant_id point to */
    struct job_run *lprev, *lnext;              /* every run not yet recorded (for the heartbeat) */
    uint64_t gen;                               /* when it joined the live list */
};

struct rq {
    struct job_queue_def def; /* resolved */
    int active;               /* claimed and not yet recorded */
    bool maybe_more;          /* the last claim filled every slot, or a wake came */
    int64_t limited_until;    /* runner clock; 0: not limited */
    bool have_floor;          /* floor: the last job claimed (turns only) */
    bool rescan;              /* the next claim looks from the head (set at every poll) */
    struct jobs_key floor;
};

struct job_runner {
    struct job_env env;
    const struct job_queue_def *table; /* as given, registered for jobs_queue_def */
    struct rq *q;
    size_t nq;
    const char **qnames;
    struct job_runner_options o;
    char owner[UUID_STRLEN + 1];
    uint64_t batch;

    pthread_mutex_t mu;
    pthread_cond_t wake; /* the dispatcher */
    pthread_cond_t work; /* executors */
    pthread_cond_t idle; /* job_runner_stop */
    struct job_run *ready_head, *ready_tail;
    struct job_run *done;
    struct job_run *live; /* claimed, not yet recorded */
    size_t nlive;
    uint64_t gen;             /* live_add count */
    bool turn_busy;           /* a thread is leading a turn */
    int nidle;                /* executors waiting for work */
    int nbusy;                /* executors running a job */
    int64_t done_since_us;    /* monotonic µs when `done` last became non-empty */
    int64_t avg_run_us;       /* recent runs' duration (moving average) */
    int64_t ready_touched_us; /* when the ready list was last filled or taken from */
    struct db_conn *tconn;    /* PostgreSQL: the turns' connection (turn_conn) */
    bool kicked, stopping, quit;
    atomic_bool hard;

    pthread_t dispatcher;
    pthread_t *exec;
    size_t nexec;
    struct job_runner *reg_next;
};

static int64_t clock_ms(const struct job_runner *r)
{
    return r->o.now_ms ? r->o.now_ms(r->o.clock_arg) : jobs_now_ms();
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void cond_wait_until_us(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t mono_deadline_us)
{
    struct timespec ts = {.tv_sec = mono_deadline_us / 1000000,
                          .tv_nsec = (long)(mono_deadline_us % 1000000) * 1000};
    pthread_cond_timedwait(cv, mu, &ts);
}

static void cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t mono_deadline)
{
    struct timespec ts = {.tv_sec = mono_deadline / 1000,
                          .tv_nsec = (long)(mono_deadline % 1000) * 1000000};
    pthread_cond_timedwait(cv, mu, &ts);
}

/* ---- the process's runners (jobs_wake) ---------------------------------------------------- */

static pthread_mutex_t runners_mu = PTHREAD_MUTEX_INITIALIZER;
static struct job_runner *runners;

void jobs_wake(void)
{
    pthread_mutex_lock(&runners_mu);
    for (struct job_runner *r = runners; r; r = r->reg_next)
        job_runner_wake(r);
    pthread_mutex_unlock(&runners_mu);
}

void job_runner_wake(struct job_runner *r)
{
    if (!r)
        return;
    pthread_mutex_lock(&r->mu);
    r->kicked = true;
    pthread_cond_signal(&r->wake);
    pthread_mutex_unlock(&r->mu);
}

/* ---- events ------------------------------------------------------------------------------- */

static void publish(const struct job_runner *r, const char *tenant_id, const char *job_id,
                    json_t *msg)
{
    if (r->env.realtime && tenant_id) {
        char room[256];
        snprintf(room, sizeof(room), "tenant:%s:job:%s", tenant_id, job_id);
        size_t len;
        char *text = jx_dump(msg, &len);
        realtime_publish_room(r->env.realtime, room, text, len);
        free(text);
    }
    json_decref(msg);
}

static json_t *event(const char *type, const char *id, const char *queue, int attempt)
{
    return json_pack("{s:s, s:s, s:s, s:i}", "type", type, "jobId", id, "queue", queue, "attempt",
                     attempt);
}

/* ---- inside a processor ------------------------------------------------------------------- */

void job_progress(struct job *j, int pct, const char *message)
{
    struct job_run *run = j->run;
    struct job_runner *r = run->runner;
    pct = pct < 0 ? 0 : pct > 100 ? 100 : pct;
    char err[256];
    struct db_conn *c = db_acquire(r->env.db, err, sizeof(err));
    if (!c) {
        log_msg(LOG_WARN, "jobs: progress of %s not recorded: %s", j->id, err);
        return;
    }
    db_set_rls_bypass(c, true);
    bool cancel = false;
    int rc = jobs_set_progress(c, j->id, run->token, pct, message, clock_ms(r), &cancel);
    if (rc < 0)
        log_msg(LOG_WARN, "jobs: progress of %s not recorded: %s", j->id, db_errmsg(c));
    db_release(c);
    if (rc == 0)
        atomic_store(&run->lost, true);
    if (cancel)
        atomic_store(&run->cancel, true);
    if (rc == 1) {
        json_t *m = event("job.progress", j->id, j->queue, j->attempt);
        json_object_set_new(m, "progress", json_integer(pct));
        if (message)
            json_object_set_new(m, "message", jx_str(message));
        publish(r, j->tenant_id, j->id, m);
    }
}

bool job_should_stop(struct job *j)
{
    struct job_run *run = j->run;
    if (atomic_load(&run->cancel) || atomic_load(&run->lost) || atomic_load(&run->runner->hard))
        return true;
    if (clock_ms(run->runner) >= run->deadline) {
        run->timed_out = true;
        return true;
    }
    return false;
}

void job_set_error(struct job *j, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    j->run->error = arena_strdup(j->arena, msg);
}

void job_set_result(struct job *j, json_t *result)
{
    json_decref(j->run->result);
    j->run->result = result;
}

/* ---- executors ---------------------------------------------------------------------------- */

static void run_job(struct job_run *run)
{
    struct job_runner *r = run->runner;
    const struct job_queue_def *d = &r->q[run->qi].def;
    struct job *j = &run->job;
    json_t *data = json_loads(run->data_text ? run->data_text : "{}", 0, NULL);
    if (!json_is_object(data)) {
        json_decref(data);
        data = json_object();
    }
    j->data = data;
    run->deadline = clock_ms(r) + run->timeout_ms;
    enum job_result res = d->process(j);
    if (res != JOB_DONE && res != JOB_UNRECOVERABLE)
        res = JOB_RETRY;
    /* a run that ends past its deadline failed, whatever it returns (BullMQ's timeout) */
    if (clock_ms(r) >= run->deadline)
        run->timed_out = true;
    if (run->timed_out && !atomic_load(&run->cancel) && !atomic_load(&r->hard)) {
        res = JOB_RETRY;
        job_set_error(j, "Job timed out after %lld ms", (long long)run->timeout_ms);
    }
    if (res != JOB_DONE && !run->error)
        job_set_error(j, "%s", atomic_load(&run->cancel) ? "Job was cancelled" : "Job failed");
    run->res = res;
    j->data = NULL;
    json_decref(data);
}

/* ---- the dispatcher ----------------------------------------------------------------------- */

static struct job_run *run_new(struct job_runner *r, size_t qi, struct jobs_row *row,
                               const char *token)
{
    struct job_run *run = xcalloc(1, sizeof(*run));
    struct arena *a = arena_new();
    run->runner = r;
    run->qi = qi;
    snprintf(run->token, sizeof(run->token), "%s", token);
    run->attempts_made = row->attempts_made;
    run->backoff_ms = row->backoff_ms;
    run->timeout_ms = row->timeout_ms > 0 ? row->timeout_ms : r->q[qi].def.timeout_ms;
    run->data_text = row->data;
    row->data = NULL;
    run->key = row->key;
    snprintf(run->id, sizeof(run->id), "%s", row->id);
    snprintf(run->name, sizeof(run->name), "%s", row->name ? row->name : "");
    snprintf(run->tenant, sizeof(run->tenant), "%s", row->tenant_id ? row->tenant_id : "");
    atomic_init(&run->cancel, false);
    atomic_init(&run->lost, false);
    run->job = (struct job){
        .id = run->id,
        .queue = r->q[qi].def.name,
        .name = run->name,
        .tenant_id = row->tenant_id ? run->tenant : NULL,
        .attempt = row->attempts_made + 1,
        .max_attempts = row->max_attempts,
        .arena = a,
        .env = &r->env,
        .run = run,
    };
    return run;
}

static void run_free(struct job_run *run)
{
    json_decref(run->result);
    free(run->data_text);
    arena_free(run->job.arena);
    free(run);
}

static void live_add(struct job_runner *r, struct job_run *run)
{
    run->gen = ++r->gen;
    run->lprev = NULL;
    run->lnext = r->live;
    if (r->live)
        r->live->lprev = run;
    r->live = run;
    r->nlive++;
}

static void live_remove(struct job_runner *r, struct job_run *run)
{
    if (run->lprev)
        run->lprev->lnext = run->lnext;
    else
        r->live = run->lnext;
    if (run->lnext)
        run->lnext->lprev = run->lprev;
    r->nlive--;
}

/* exponential: backoff·2^(attempt-1), attempt counting this failed run; jitter adds up to
 * half again, so that the retries of a burst spread out */
static int64_t backoff_delay(const struct job_run *run, bool jitter)
{
    int shift = run->attempts_made; /* attempt - 1 */
    if (shift > 30)
        shift = 30;
    int64_t delay = run->backoff_ms * ((int64_t)1 << shift);
    if (jitter && delay > 1)
        delay += (int64_t)randombytes_uniform((uint32_t)ZY_MIN(delay / 2, (int64_t)UINT32_MAX));
    return delay;
}

/* What was recorded for a finished (or released) run, for its event after the commit. */
struct ended {
    struct job_run *run;
    enum job_state state;
    bool applied;
    bool released; /* given back, not ended: no event */
};

/* Records one run's end on c (inside the dispatcher's transaction). */
static int record_end(struct job_runner *r, struct db_conn *c, struct ended *e, bool release,
                      int64_t now)
{
    struct job_run *run = e->run;
    const struct job_queue_def *d = &r->q[run->qi].def;
    enum jobs_outcome o;
    int64_t run_at = now;
    char *result = NULL;
    if (release || (run->res != JOB_DONE && atomic_load(&r->hard))) {
        /* never started, or interrupted by shutdown: not the job's fault */
        o = JOBS_RELEASE;
        e->released = true;
    } else if (run->res == JOB_DONE) {
        o = JOBS_COMPLETE;
        result = run->result ? json_dumps(run->result, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    } else if (run->res == JOB_UNRECOVERABLE || run->attempts_made + 1 >= run->job.max_attempts) {
        o = JOBS_FAIL;
    } else {
        o = JOBS_RETRY;
        run_at = now + backoff_delay(run, d->backoff_jitter);
    }
    int rc = jobs_finish(c, run->job.id, run->token, o, result, run->error, run_at, now, &e->state);
    free(result);
    if (rc < 0)
        return -1;
    e->applied = rc == 1;
    if (!e->applied)
        log_msg(LOG_WARN, "jobs: %s job %s: lease lost, its outcome is dropped", d->name,
                run->job.id);
    return 0;
}

static void publish_end(struct job_runner *r, const struct ended *e)
{
    struct job_run *run = e->run;
    if (!e->applied || e->released || !run->job.tenant_id)
        return;
    json_t *m;
    switch (e->state) {
    case JOB_COMPLETED:
        m = event("job.completed", run->job.id, run->job.queue, run->job.attempt);
        json_object_set(m, "result", run->result ? run->result : json_null());
        break;
    case JOB_WAITING:
    case JOB_FAILED:
    case JOB_CANCELLED:
        m = event("job.failed", run->job.id, run->job.queue, run->job.attempt);
        json_object_set_new(m, "error", jx_str(run->error ? run->error : "Job failed"));
        json_object_set_new(m, "willRetry", json_boolean(e->state == JOB_WAITING));
        json_object_set_new(m, "cancelled", json_boolean(e->state == JOB_CANCELLED));
        break;
    default:
        return;
    }
    publish(r, run->job.tenant_id, run->job.id, m);
}

/* The leases a heartbeat renewed. */
struct held {
    char **ids, **tokens;
    bool *cancel;
    size_t n, cap;
};

static void lease_seen(void *arg, const char *id, const char *token, bool cancel)
{
    struct held *h = arg;
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 16;
        h->ids = xrealloc(h->ids, h->cap * sizeof(*h->ids));
        h->tokens = xrealloc(h->tokens, h->cap * sizeof(*h->tokens));
        h->cancel = xrealloc(h->cancel, h->cap * sizeof(*h->cancel));
    }
    h->ids[h->n] = xstrdup(id);
    h->tokens[h->n] = xstrdup(token);
    h->cancel[h->n++] = cancel;
}

static void heartbeat(struct job_runner *r)
{
    char err[256];
    struct db_conn *c = db_acquire(r->env.db, err, sizeof(err));
    if (!c) {
        log_msg(LOG_WARN, "jobs: heartbeat skipped: %s", err);
        return;
    }
    db_set_rls_bypass(c, true);
    /* the leases of the runs live now; runs that join later were claimed after this */
    pthread_mutex_lock(&r->mu);
    uint64_t before = r->gen;
    size_t n = 0;
    char **ids = xcalloc(r->nlive ? r->nlive : 1, sizeof(*ids));
    char **tokens = xcalloc(r->nlive ? r->nlive : 1, sizeof(*tokens));
    for (struct job_run *run = r->live; run && n < r->nlive; run = run->lnext) {
        ids[n] = xstrdup(run->job.id);
        tokens[n++] = xstrdup(run->token);
    }
    pthread_mutex_unlock(&r->mu);
    struct held h = {0};
    int rc = jobs_heartbeat(c, (const char *const *)ids, (const char *const *)tokens, n,
                            clock_ms(r) + r->o.lease_ms, lease_seen, &h);
    if (rc < 0)
        log_msg(LOG_WARN, "jobs: heartbeat failed: %s", db_errmsg(c));
    db_release(c);
    for (size_t i = 0; i < n; i++) {
        free(ids[i]);
        free(tokens[i]);
    }
    free(ids);
    free(tokens);
    pthread_mutex_lock(&r->mu);
    for (struct job_run *run = r->live; rc == 0 && run; run = run->lnext) {
        if (run->gen > before)
            continue;
        bool held = false;
        for (size_t i = 0; i < h.n && !held; i++) {
            if (strcmp(h.tokens[i], run->token) == 0 && strcmp(h.ids[i], run->job.id) == 0) {
                held = true;
                if (h.cancel[i])
                    atomic_store(&run->cancel, true);
            }
        }
        if (!held && !atomic_load(&run->lost)) {
            atomic_store(&run->lost, true);
            log_msg(LOG_WARN, "jobs: %s job %s: lease lost", run->job.queue, run->job.id);
        }
    }
    pthread_mutex_unlock(&r->mu);
    for (size_t i = 0; i < h.n; i++) {
        free(h.ids[i]);
        free(h.tokens[i]);
    }
    free(h.ids);
    free(h.tokens);
    free(h.cancel);
}

static void stalled_ended(void *arg, const char *id, const char *tenant_id, enum job_state state,
                          int attempts_made, const char *error)
{
    struct job_runner *r = ((void **)arg)[0];
    const char *queue = ((void **)arg)[1];
    if (!tenant_id)
        return;
    json_t *m = event("job.failed", id, queue, attempts_made + 1);
    json_object_set_new(m, "error", jx_str(error ? error : "Job was cancelled"));
    json_object_set_new(m, "willRetry", json_false());
    json_object_set_new(m, "cancelled", json_boolean(state == JOB_CANCELLED));
    publish(r, tenant_id, id, m);
}

static void maintain(struct job_runner *r, bool sweep)
{
    char err[256];
    struct db_conn *c = db_acquire(r->env.db, err, sizeof(err));
    if (!c) {
        log_msg(LOG_WARN, "jobs: maintenance skipped: %s", err);
        return;
    }
    db_set_rls_bypass(c, true);
    for (size_t i = 0; i < r->nq; i++) {
        const struct job_queue_def *d = &r->q[i].def;
        void *arg[2] = {r, (void *)d->name};
        int n = jobs_recover_stalled(c, d->name, d->max_stalled, clock_ms(r), stalled_ended, arg);
        if (n < 0)
            log_msg(LOG_WARN, "jobs: stalled recovery of %s failed: %s", d->name, db_errmsg(c));
        else if (n > 0)
            job_runner_wake(r);
        if (sweep && jobs_sweep(c, d, clock_ms(r)) < 0)
            log_msg(LOG_WARN, "jobs: retention sweep of %s failed: %s", d->name, db_errmsg(c));
    }
    db_release(c);
}

/* What one dispatcher turn does, decided under the lock. */
struct turn {
    struct job_run *done;    /* finished runs to record */
    struct job_run *release; /* claimed runs to give back (stopping) */
    int want[MAX_QUEUES];    /* per queue: claims to make (0: none) */
    bool ask[MAX_QUEUES];    /* per queue: ask the database first whether it has work */
    bool full[MAX_QUEUES];   /* per queue: claim from the head of the queue, not the floor */
    bool by_executor;        /* led by an executor, which will take a claimed job itself */
};

/*
 * One transaction: record the ends, give back, claim. On failure nothing of it happened: the
 * ends are kept for the next turn and the claims are forgotten.
 */
/*
 * The connection of a turn. PostgreSQL: one connection of the pool kept for the runner's
 * turns (one turn at a time, any thread), so that a turn costs no set-up round trip; SQLite:
 * the thread's own. NULL (err set) when none can be had.
 */
static struct db_conn *turn_conn(struct job_runner *r, char *err, size_t errlen)
{
    if (r->tconn)
        return r->tconn;
    struct db_conn *c = db_acquire(r->env.db, err, errlen);
    if (!c)
        return NULL;
    db_set_rls_bypass(c, true);
    if (db_conn_dialect(c) == DB_POSTGRES) {
        /* Plans that do not depend on statistics. Generic ones: a custom plan of the claim
         * asks the claim index for the actual bounds of run_at, walking the entries of every
         * job claimed since the last VACUUM. And walks of the claim index in its order, never
         * a bitmap scan and sort of the whole backlog, which the planner picks for a table not
         * analysed yet (a fresh one, or one that just took a large batch). This connection
         * runs the turns' statements only; all three are reset before it goes back. */
        if (db_exec_script(c, "SET plan_cache_mode = force_generic_plan;"
                              " SET enable_bitmapscan = off; SET enable_sort = off") < 0)
            log_msg(LOG_WARN, "jobs: %s", db_errmsg(c));
        r->tconn = c;
    }
    return c;
}

static void turn_conn_release(struct job_runner *r)
{
    if (!r->tconn)
        return;
    db_exec_script(r->tconn, "RESET plan_cache_mode; RESET enable_bitmapscan; RESET enable_sort");
    db_release(r->tconn);
    r->tconn = NULL;
}

static void turn_conn_done(struct job_runner *r, struct db_conn *c, bool failed)
{
    if (!c)
        return;
    if (c != r->tconn) {
        db_release(c);
    } else if (failed && db_errkind(c) == DB_ERR_UNAVAILABLE) {
        turn_conn_release(r); /* a connection whose server went away is closed by the pool */
    }
}

/* Where a claim of queue i starts (jobs_claim's `after`): past the last job claimed, when
 * continuing; NULL, the head of the queue, when polling. */
static const struct jobs_key *claim_after(const struct job_runner *r, const struct turn *t,
                                          size_t i)
{
    return t->full[i] || !r->q[i].have_floor ? NULL : &r->q[i].floor;
}

static void applied_end(void *arg, const char *id)
{
    struct ended *e = ((struct ended **)arg)[0];
    size_t n = (size_t)(((struct ended **)arg)[1] - e);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(e[i].run->job.id, id) == 0) {
            e[i].applied = true;
            e[i].state = JOB_COMPLETED;
        }
    }
}

/*
 * PostgreSQL, when every end is a completion and at most one queue (without a limiter) wants
 * claims: all of it in one statement (jobs_complete_and_claim). false when this turn does not
 * qualify; else *ok says whether it worked.
 */
static bool fast_turn(struct job_runner *r, struct db_conn *c, struct ended *ends, size_t nend,
                      size_t ndone, const struct turn *t, const char *token, int64_t now,
                      int *nclaimed, struct job_run **claimed, bool *ok)
{
    if (db_conn_dialect(c) != DB_POSTGRES || nend != ndone)
        return false;
    int qi = -1;
    for (size_t i = 0; i < r->nq; i++) {
        if (t->want[i] <= 0)
            continue;
        if (qi >= 0 || r->q[i].def.limiter_max > 0)
            return false;
        qi = (int)i;
    }
    for (size_t i = 0; i < nend; i++)
        if (ends[i].run->res != JOB_DONE)
            return false;
    const char **ids = xcalloc(nend ? nend : 1, sizeof(*ids));
    const char **tokens = xcalloc(nend ? nend : 1, sizeof(*tokens));
    json_t *results = json_array();
    for (size_t i = 0; i < nend; i++) {
        ids[i] = ends[i].run->job.id;
        tokens[i] = ends[i].run->token;
        json_array_append(results, ends[i].run->result ? ends[i].run->result : json_null());
    }
    char *text = json_dumps(results, JSON_COMPACT);
    json_decref(results);
    struct ended *span[2] = {ends, ends + nend};
    struct jobs_row *rows = NULL;
    int n = jobs_complete_and_claim(c, ids, tokens, text, nend, qi >= 0 ? &r->q[qi].def : NULL,
                                    r->owner, token, now, r->o.lease_ms, qi >= 0 ? t->want[qi] : 0,
                                    qi >= 0 ? claim_after(r, t, (size_t)qi) : NULL, &rows,
                                    applied_end, span);
    free(text);
    free(ids);
    free(tokens);
    *ok = n >= 0;
    if (n > 0) {
        nclaimed[qi] = n;
        for (int m = n - 1; m >= 0; m--) {
            struct job_run *run = run_new(r, (size_t)qi, &rows[m], token);
            run->next = claimed[qi];
            claimed[qi] = run;
        }
    }
    jobs_rows_free(rows, n > 0 ? n : 0);
    for (size_t i = 0; *ok && i < nend; i++)
        if (!ends[i].applied)
            log_msg(LOG_WARN, "jobs: %s job %s: lease lost, its outcome is dropped",
                    ends[i].run->job.queue, ends[i].run->job.id);
    if (!*ok)
        log_msg(LOG_WARN, "jobs: turn failed: %s", db_errmsg(c));
    return true;
}

static void do_turn(struct job_runner *r, struct turn *t)
{
    char err[256];
    struct db_conn *c = turn_conn(r, err, sizeof(err));
    size_t nend = 0;
    for (struct job_run *x = t->done; x; x = x->next)
        nend++;
    for (struct job_run *x = t->release; x; x = x->next)
        nend++;
    struct ended *ends = xcalloc(nend ? nend : 1, sizeof(*ends));
    size_t k = 0;
    for (struct job_run *x = t->done; x; x = x->next)
        ends[k++].run = x;
    size_t ndone = k;
    for (struct job_run *x = t->release; x; x = x->next)
        ends[k++].run = x;
    struct job_run *claimed[MAX_QUEUES] = {0};
    int nclaimed[MAX_QUEUES] = {0};
    int64_t limited[MAX_QUEUES] = {0};
    bool ok = c != NULL;
    if (!c)
        log_msg(LOG_WARN, "jobs: dispatcher: %s", err);
    int64_t now = clock_ms(r);
    /* an idle poll reads first, so that it takes no write lock when there is nothing to do */
    const char *ask[MAX_QUEUES];
    size_t nask = 0, askq[MAX_QUEUES];
    for (size_t i = 0; i < r->nq; i++) {
        if (t->want[i] > 0 && t->ask[i]) {
            askq[nask] = i;
            ask[nask++] = r->qnames[i];
        }
    }
    if (ok && nask > 0) {
        bool has[MAX_QUEUES];
        if (jobs_probe(c, ask, nask, now, has) < 0) {
            log_msg(LOG_WARN, "jobs: probe failed: %s", db_errmsg(c));
            ok = false;
        } else {
            for (size_t i = 0; i < nask; i++)
                if (!has[i])
                    t->want[askq[i]] = 0;
        }
    }
    bool any_claim = false;
    for (size_t i = 0; i < r->nq; i++)
        any_claim |= t->want[i] > 0;
    char token[80];
    snprintf(token, sizeof(token), "%s:%llu", r->owner, (unsigned long long)++r->batch);
    if (ok && (nend > 0 || any_claim) &&
        !fast_turn(r, c, ends, nend, ndone, t, token, now, nclaimed, claimed, &ok)) {
        ok = db_begin(c) == 0;
        for (size_t i = 0; ok && i < nend; i++)
            ok = record_end(r, c, &ends[i], i >= ndone, now) == 0;
        for (size_t i = 0; ok && i < r->nq; i++) {
            struct jobs_row *rows = NULL;
            int n = jobs_claim(c, &r->q[i].def, r->owner, token, now, r->o.lease_ms, t->want[i],
                               claim_after(r, t, i), &rows, &limited[i]);
            if (n < 0) {
                ok = false;
                break;
            }
            nclaimed[i] = n;
            for (int m = n - 1; m >= 0; m--) { /* list in queue order */
                struct job_run *run = run_new(r, i, &rows[m], token);
                run->next = claimed[i];
                claimed[i] = run;
            }
            jobs_rows_free(rows, n);
        }
        if (ok)
            ok = db_commit(c) == 0;
        if (!ok) {
            log_msg(LOG_WARN, "jobs: dispatcher transaction failed: %s", db_errmsg(c));
            db_rollback(c);
        }
    }
    turn_conn_done(r, c, !ok);

    pthread_mutex_lock(&r->mu);
    if (!ok) {
        /* nothing happened: the ends go back for the next turn, the claims never were */
        for (size_t i = 0; i < nend; i++) {
            struct job_run *run = ends[i].run;
            if (i < ndone) {
                run->next = r->done;
                r->done = run;
            } else {
                run->next = NULL;
                if (r->ready_tail)
                    r->ready_tail->next = run;
                else
                    r->ready_head = run;
                r->ready_tail = run;
            }
        }
        for (size_t i = 0; i < r->nq; i++) {
            while (claimed[i]) {
                struct job_run *run = claimed[i];
                claimed[i] = run->next;
                run_free(run);
            }
        }
        pthread_mutex_unlock(&r->mu);
        free(ends);
        struct timespec ts = {0, RETRY_PAUSE_MS * 1000000L};
        nanosleep(&ts, NULL);
        return;
    }
    for (size_t i = 0; i < nend; i++) {
        r->q[ends[i].run->qi].active--;
        live_remove(r, ends[i].run);
    }
    for (size_t i = 0; i < r->nq; i++) {
        if (t->want[i] > 0) {
            r->q[i].maybe_more = nclaimed[i] == t->want[i];
            r->q[i].limited_until = limited[i];
        }
        for (struct job_run *x = claimed[i]; x; x = x->next) {
            if (!x->next) { /* the last in claim order */
                r->q[i].floor = x->key;
                r->q[i].have_floor = true;
            }
        }
        r->q[i].active += nclaimed[i];
        while (claimed[i]) {
            struct job_run *run = claimed[i];
            claimed[i] = run->next;
            run->next = NULL;
            live_add(r, run);
            if (r->ready_tail)
                r->ready_tail->next = run;
            else
                r->ready_head = run;
            r->ready_tail = run;
        }
    }
    /* one executor is woken (exec_main wakes more for long jobs), unless an executor leads
     * this turn and short jobs do not need another */
    if (r->ready_head) {
        r->ready_touched_us = mono_us();
        if (r->nidle > 0 && (!t->by_executor || r->avg_run_us >= SHORT_RUN_US))
            pthread_cond_signal(&r->work);
    }
    if (r->nlive == 0)
        pthread_cond_broadcast(&r->idle);
    pthread_mutex_unlock(&r->mu);

    for (size_t i = 0; i < nend; i++) {
        publish_end(r, &ends[i]);
        run_free(ends[i].run);
    }
    free(ends);
}

/*
 * Under the lock: what the next turn does — record the finished runs, give back the claimed
 * ones when stopping, claim for the free slots of queues that may have work (the last claim
 * filled its slots, a wake-up came, or it is time to poll). false when there is nothing to do.
 */
static bool plan_turn(struct job_runner *r, struct turn *t, bool poll_due)
{
    memset(t, 0, sizeof(*t));
    bool claims = false;
    int64_t cnow = clock_ms(r);
    /* every poll, each queue's next claim looks from the head, even when it is busy and
     * that claim is made later by an executor */
    for (size_t i = 0; poll_due && i < r->nq; i++)
        r->q[i].rescan = true;
    /* the runs this turn records free their slots before it claims */
    int ending[MAX_QUEUES] = {0};
    for (struct job_run *x = r->done; x; x = x->next)
        ending[x->qi]++;
    for (size_t i = 0; i < r->nq && !r->stopping; i++) {
        struct rq *q = &r->q[i];
        int free_slots = q->def.concurrency - q->active + ending[i];
        if (free_slots <= 0 || (q->limited_until && cnow < q->limited_until))
            continue;
        if (q->maybe_more || r->kicked || poll_due) {
            t->want[i] = free_slots;
            t->ask[i] = !q->maybe_more && !r->kicked;
            /* a claim that continues a busy queue starts past the jobs it took before; one
             * that polls or answers a wake-up looks from the head (jobs_claim's `after`) */
            t->full[i] = !q->maybe_more || r->kicked || poll_due || q->rescan;
            q->rescan = false;
            q->maybe_more = false; /* set again from the claim's result */
            claims = true;
        }
    }
    r->kicked = false;
    t->done = r->done;
    r->done = NULL;
    if (r->stopping) {
        t->release = r->ready_head;
        r->ready_head = r->ready_tail = NULL;
    }
    return claims || t->done || t->release;
}

/*
 * Called with the lock held: unless another thread leads a turn, lead up to max_turns of them
 * (the lock is released meanwhile). Work left over is the dispatcher's (it is signalled).
 */
static void lead(struct job_runner *r, bool poll_due, int max_turns, bool by_executor)
{
    if (r->turn_busy)
        return;
    struct turn t;
    while (max_turns-- > 0 && plan_turn(r, &t, poll_due)) {
        t.by_executor = by_executor;
        poll_due = false;
        r->turn_busy = true;
        pthread_mutex_unlock(&r->mu);
        do_turn(r, &t);
        pthread_mutex_lock(&r->mu);
        r->turn_busy = false;
    }
    if (max_turns < 0 && r->done)
        pthread_cond_signal(&r->wake);
}

/*
 * An executor. Short jobs (the recent average under SHORT_RUN_US) are run one after the
 * other by the executor that has work, without waking others — a thread switch costs more
 * than such a job — and the executor that ends the last of a batch records it and claims the
 * next batch itself (lead), so a busy queue of short jobs runs as one thread's loop, on one
 * connection. Longer jobs wake a helper for each job still waiting; and claimed jobs that
 * nobody took for WATCH_US get one from the dispatcher, whatever the average says.
 */
static void *exec_main(void *arg)
{
    struct job_runner *r = arg;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        while (!r->ready_head && !r->quit) {
            r->nidle++;
            pthread_cond_wait(&r->work, &r->mu);
            r->nidle--;
        }
        if (!r->ready_head)
            break;
        struct job_run *run = r->ready_head;
        r->ready_head = run->next;
        r->ready_touched_us = mono_us();
        if (!r->ready_head)
            r->ready_tail = NULL;
        else if (r->nidle > 0 && r->avg_run_us >= SHORT_RUN_US)
            pthread_cond_signal(&r->work);
        r->nbusy++;
        pthread_mutex_unlock(&r->mu);
        int64_t t0 = mono_us();
        run_job(run);
        int64_t took = mono_us() - t0;
        pthread_mutex_lock(&r->mu);
        r->avg_run_us += (took - r->avg_run_us) / 8;
        r->nbusy--;
        bool first = !r->done;
        if (first)
            r->done_since_us = mono_us();
        run->next = r->done;
        r->done = run;
        if (r->ready_head)
            continue; /* more of this batch to run */
        if (r->nbusy == 0 && !r->turn_busy && !r->stopping) {
            /* the batch is over: record it and claim the next one right here; a hand-off
             * to the dispatcher would cost two thread switches */
            lead(r, false, 2, true);
        } else if (first || r->nbusy == 0 || r->stopping) {
            /* the dispatcher gathers the runs ending together (dispatch_main): it is told of
             * the first, and when the last of them is done */
            pthread_cond_signal(&r->wake);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

static void *dispatch_main(void *arg)
{
    struct job_runner *r = arg;
    int64_t hb_every = ZY_MAX(r->o.lease_ms / 3, 1);
    int64_t stall_every = ZY_MAX(ZY_MIN(r->o.sweep_interval_ms, r->o.lease_ms), 1);
    int64_t now = mono_ms();
    /* stalled leases and retention are looked at once at start (a restart after a crash) */
    int64_t next_poll = now, next_hb = now + hb_every, next_stall = now, next_sweep = now;
    pthread_mutex_lock(&r->mu);
    for (;;) {
        now = mono_ms();
        bool poll_due = now >= next_poll && !r->stopping;
        if (poll_due)
            next_poll = now + r->o.poll_ms;
        /* Runs that ended wait a moment (GATHER_US) for the others still running or about to
         * start, so that short jobs are recorded and replaced by one turn per batch rather
         * than one each. */
        int64_t gather_until = r->done_since_us + GATHER_US;
        bool gather = r->done && (r->nbusy > 0 || r->ready_head) && mono_us() < gather_until &&
                      !r->stopping && !r->quit && !r->kicked && !poll_due;
        if (!r->turn_busy && !gather)
            lead(r, poll_due, 4, false);
        if (r->quit && !r->done && !r->turn_busy)
            break;
        now = mono_ms();
        bool hb = r->nlive > 0 && now >= next_hb;
        bool stall = now >= next_stall, sweep = now >= next_sweep;
        if (hb || stall || sweep) {
            pthread_mutex_unlock(&r->mu);
            if (hb) {
                next_hb = mono_ms() + hb_every;
                heartbeat(r);
            }
            if (stall || sweep) {
                if (stall)
                    next_stall = mono_ms() + stall_every;
                if (sweep)
                    next_sweep = mono_ms() + r->o.sweep_interval_ms;
                maintain(r, sweep);
            }
            pthread_mutex_lock(&r->mu);
            continue;
        }
        /* claimed jobs that nobody took for WATCH_US get a helper */
        int64_t watch_until = r->ready_touched_us + WATCH_US;
        bool watch = r->ready_head && r->nidle > 0;
        if (watch && mono_us() >= watch_until) {
            pthread_cond_signal(&r->work);
            r->ready_touched_us = mono_us();
            watch_until = r->ready_touched_us + WATCH_US;
        }
        if (gather && !r->turn_busy) {
            cond_wait_until_us(&r->wake, &r->mu,
                               watch ? ZY_MIN(gather_until, watch_until) : gather_until);
            continue;
        }
        if (watch) {
            int64_t until_us = ZY_MIN(ZY_MIN(next_stall, next_sweep), next_hb) * 1000;
            cond_wait_until_us(&r->wake, &r->mu, ZY_MIN(until_us, watch_until));
            continue;
        }
        /* work that needs a turn now: wait only for the turn under way to end */
        bool pending = r->done || r->kicked || (r->stopping && r->ready_head);
        for (size_t i = 0; i < r->nq && !pending && !r->stopping; i++)
            pending = r->q[i].maybe_more && r->q[i].active < r->q[i].def.concurrency;
        int64_t until = ZY_MIN(next_stall, next_sweep);
        if (r->nlive > 0)
            until = ZY_MIN(until, next_hb);
        if (!r->stopping)
            until = ZY_MIN(until, next_poll);
        if (pending && !r->turn_busy)
            continue;
        /* a turn under way (perhaps an executor's, while stopping): look again soon; waiting
         * releases the lock that its leader needs to finish */
        if (pending || r->quit)
            until = ZY_MIN(until, now + 1);
        cond_wait_until(&r->wake, &r->mu, until);
    }
    pthread_mutex_unlock(&r->mu);
    return NULL;
}

/* ---- start and stop ----------------------------------------------------------------------- */

static void seterr(char *err, size_t errlen, const char *fmt, ...) ZY_PRINTF(3, 4);
static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static bool wanted(const struct job_runner_options *o, const char *name)
{
    if (!o || !o->queues)
        return true;
    for (size_t i = 0; i < o->nqueues; i++)
        if (strcmp(o->queues[i], name) == 0)
            return true;
    return false;
}

static void runner_free(struct job_runner *r)
{
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->wake);
    pthread_cond_destroy(&r->work);
    pthread_cond_destroy(&r->idle);
    free(r->exec);
    free(r->q);
    free(r->qnames);
    free(r);
}

struct job_runner *job_runner_start(const struct job_env *env, const struct job_queue_def *defs,
                                    size_t ndefs, const struct job_runner_options *o, char *err,
                                    size_t errlen)
{
    if (!env || !env->db) {
        seterr(err, errlen, "job runner: no database");
        return NULL;
    }
    /* every queue asked for must exist here and have a processor */
    for (size_t i = 0; o && o->queues && i < o->nqueues; i++) {
        const struct job_queue_def *d = NULL;
        for (size_t k = 0; k < ndefs && !d; k++)
            if (strcmp(defs[k].name, o->queues[i]) == 0)
                d = &defs[k];
        if (!d) {
            seterr(err, errlen, "unknown queue \"%s\"", o->queues[i]);
            return NULL;
        }
        if (!d->process) {
            seterr(err, errlen, "queue \"%s\" has no processor in this build", o->queues[i]);
            return NULL;
        }
    }
    struct job_runner *r = xcalloc(1, sizeof(*r));
    r->env = *env;
    r->table = defs;
    if (o)
        r->o = *o;
    if (r->o.lease_ms <= 0)
        r->o.lease_ms = DEF_LEASE_MS;
    if (r->o.poll_ms <= 0)
        r->o.poll_ms = DEF_POLL_MS;
    if (r->o.sweep_interval_ms <= 0)
        r->o.sweep_interval_ms = DEF_SWEEP_MS;
    r->q = xcalloc(ndefs ? ndefs : 1, sizeof(*r->q));
    r->qnames = xcalloc(ndefs ? ndefs : 1, sizeof(*r->qnames));
    for (size_t i = 0; i < ndefs; i++) {
        if (!defs[i].process || !wanted(o, defs[i].name))
            continue; /* no processor here: its jobs wait for a process that has one */
        if (r->nq == MAX_QUEUES) {
            log_msg(LOG_ERROR, "jobs: more than %d queues in one runner: %s not run", MAX_QUEUES,
                    defs[i].name);
            continue;
        }
        struct rq *q = &r->q[r->nq];
        jobs_def_resolve(&defs[i], &q->def);
        if (r->o.concurrency > 0)
            q->def.concurrency = r->o.concurrency;
        q->maybe_more = true;
        r->qnames[r->nq++] = q->def.name;
        r->nexec += (size_t)q->def.concurrency;
    }
    uuid_v7(r->owner);
    pthread_mutex_init(&r->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&r->wake, &ca);
    pthread_cond_init(&r->idle, &ca);
    pthread_condattr_destroy(&ca);
    pthread_cond_init(&r->work, NULL);
    atomic_init(&r->hard, false);
    r->avg_run_us = SHORT_RUN_US * 10; /* until measured: long jobs, every executor helps */
    jobs_queues_register(defs, ndefs);
    r->exec = xcalloc(r->nexec ? r->nexec : 1, sizeof(pthread_t));
    size_t started = 0;
    int rc = 0;
    for (; started < r->nexec && rc == 0; started++)
        rc = pthread_create(&r->exec[started], NULL, exec_main, r);
    if (rc == 0)
        rc = pthread_create(&r->dispatcher, NULL, dispatch_main, r);
    else
        started--;
    if (rc != 0) {
        pthread_mutex_lock(&r->mu);
        r->quit = true;
        pthread_cond_broadcast(&r->work);
        pthread_mutex_unlock(&r->mu);
        for (size_t i = 0; i < started; i++)
            pthread_join(r->exec[i], NULL);
        jobs_queues_unregister(defs);
        runner_free(r);
        seterr(err, errlen, "job runner: cannot start threads: %s", strerror(rc));
        return NULL;
    }
    pthread_mutex_lock(&runners_mu);
    r->reg_next = runners;
    runners = r;
    pthread_mutex_unlock(&runners_mu);
    for (size_t i = 0; i < r->nq; i++)
        log_msg(LOG_INFO, "jobs: working queue %s (concurrency %d)", r->q[i].def.name,
                r->q[i].def.concurrency);
    return r;
}

unsigned job_runner_stop(struct job_runner *r, unsigned grace_s)
{
    if (!r)
        return 0;
    pthread_mutex_lock(&runners_mu);
    for (struct job_runner **p = &runners; *p; p = &(*p)->reg_next) {
        if (*p == r) {
            *p = r->reg_next;
            break;
        }
    }
    pthread_mutex_unlock(&runners_mu);

    pthread_mutex_lock(&r->mu);
    r->stopping = true;
    pthread_cond_signal(&r->wake);
    /* running jobs finish within the grace period; claimed ones not started go back */
    int64_t deadline = mono_ms() + (int64_t)grace_s * 1000;
    while (r->nlive > 0 && mono_ms() < deadline)
        cond_wait_until(&r->idle, &r->mu, deadline);
    if (r->nlive > 0) {
        atomic_store(&r->hard, true); /* job_should_stop() is true from now on */
        deadline = mono_ms() + STOP_EXTRA_MS;
        while (r->nlive > 0 && mono_ms() < deadline)
            cond_wait_until(&r->idle, &r->mu, deadline);
    }
    size_t left = r->nlive;
    r->quit = true;
    pthread_cond_broadcast(&r->wake);
    pthread_cond_broadcast(&r->work);
    pthread_mutex_unlock(&r->mu);
    pthread_join(r->dispatcher, NULL);
    if (left == 0)
        turn_conn_release(r);
    if (left > 0) {
        /* processors that ignore job_should_stop: their threads are left to the process's
         * exit, and their leases run out, so another worker retries the jobs */
        for (size_t i = 0; i < r->nexec; i++)
            pthread_detach(r->exec[i]);
        log_msg(LOG_WARN, "jobs: %zu job(s) still running at the shutdown deadline", left);
        return (unsigned)left;
    }
    for (size_t i = 0; i < r->nexec; i++)
        pthread_join(r->exec[i], NULL);
    jobs_queues_unregister(r->table);
    runner_free(r);
    return 0;
}
