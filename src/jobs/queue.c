/*
 * queue.c — the job store: every statement on the `jobs` and `job_limits` tables (see
 * queue.h and migrations 0004_jobs). Enqueue, claim, finish, heartbeat, progress, stalled
 * recovery, retention, cancel, retry and the inspection queries. The runner (runner.c) owns
 * threads and timing; this file owns what a state change is.
 */
#include "lib/common.h"

#include <inttypes.h>
#include <time.h>

#define ZYGO_JOBS_INTERNAL 1
#include "db/db.h"
#include "jobs/queue.h"
#include "lib/buf.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "lib/uuid.h"

/* BullMQ's highest priority number; jobs without one sort after every prioritised job. */
#define PRIORITY_MAX 2097152
#define PRIO_NONE 2147483647

static const char *const state_names[JOB_STATE_COUNT] = {
    "waiting", "delayed", "active", "completed", "failed", "cancelled",
};

const char *job_state_name(enum job_state s)
{
    return s >= 0 && s < JOB_STATE_COUNT ? state_names[s] : "unknown";
}

static enum job_state state_parse(const char *s)
{
    for (int i = 0; i < JOB_STATE_COUNT; i++)
        if (s && strcmp(s, state_names[i]) == 0)
            return (enum job_state)i;
    return JOB_FAILED;
}

int64_t jobs_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool id_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == ':';
}

/* A caller's job id: 1-128 URL-safe characters, so it can travel in /jobs/:id. */
static bool job_id_valid(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++)
        if (n >= JOB_ID_MAX - 1 || !id_char(id[n]))
            return false;
    return n > 0;
}

/* The text form of a JSON value from the database (SQLite keeps it as written, jsonb
 * normalises): a JSON object text starts with '{' after spaces. */
static bool looks_like_object(const char *s)
{
    while (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')
        s++;
    return *s == '{';
}

/* ---- enqueue ------------------------------------------------------------------------------ */

/* What one enqueue call stores besides the payload: the options resolved against the queue. */
struct enq {
    const char *queue, *name, *tenant_id;
    char tenant[UUID_STRLEN + 1];
    int64_t now, run_at, priority, prio, attempts, backoff_ms, timeout_ms;
};

/* Checks the arguments common to jobs_enqueue and jobs_enqueue_many (refusals are logged:
 * they are the caller's bugs) and resolves the options. */
static int enq_prepare(struct enq *e, const char *queue, const char *name, const char *tenant_id,
                       const struct job_opts *opts)
{
    const struct job_queue_def *qd = jobs_queue_def(queue);
    if (!qd) {
        log_msg(LOG_ERROR, "jobs: enqueue to unknown queue \"%s\"", queue ? queue : "(null)");
        return -1;
    }
    struct job_queue_def d;
    jobs_def_resolve(qd, &d);
    e->queue = queue;
    e->name = name ? name : queue;
    const char *why = NULL;
    if (strlen(e->name) > 128)
        why = "name longer than 128 bytes";
    else if (opts->job_id && !job_id_valid(opts->job_id))
        why = "job id must be 1-128 of [A-Za-z0-9_.:-]";
    else if (opts->priority < 0 || opts->priority > PRIORITY_MAX)
        why = "priority out of 0..2097152";
    else if (opts->delay_ms < 0 || opts->attempts < 0 || opts->timeout_ms < 0)
        why = "negative delay, attempts or timeout";
    else if (tenant_id && !uuid_normalize(tenant_id, e->tenant))
        why = "tenant id is not a UUID";
    if (why) {
        log_msg(LOG_ERROR, "jobs: enqueue to %s refused: %s", queue, why);
        return -1;
    }
    e->tenant_id = tenant_id ? e->tenant : NULL;
    e->now = jobs_now_ms();
    e->run_at = e->now + opts->delay_ms;
    e->priority = opts->priority;
    e->prio = opts->priority > 0 ? opts->priority : PRIO_NONE;
    e->attempts = opts->attempts > 0 ? opts->attempts : d.attempts;
    e->backoff_ms = d.backoff_ms;
    e->timeout_ms = opts->timeout_ms > 0 ? opts->timeout_ms : d.timeout_ms;
    return 0;
}

static const struct job_opts no_opts = {0};

int jobs_enqueue(struct db_conn *c, const char *queue, const char *name, const char *tenant_id,
                 const char *data_json, const struct job_opts *opts, char id_out[JOB_ID_MAX])
{
    if (!opts)
        opts = &no_opts;
    id_out[0] = '\0';
    struct enq e;
    if (enq_prepare(&e, queue, name, tenant_id, opts) < 0)
        return -1;
    if (!data_json)
        data_json = "{}";
    if (!looks_like_object(data_json)) {
        log_msg(LOG_ERROR, "jobs: enqueue to %s refused: data is not a JSON object", queue);
        return -1;
    }
    if (opts->job_id)
        snprintf(id_out, JOB_ID_MAX, "%s", opts->job_id);
    else
        uuid_v7(id_out);
    int n = db_exec(c,
                    "INSERT INTO jobs (id, queue, name, tenant_id, data, priority, prio, run_at,"
                    " max_attempts, backoff_ms, timeout_ms, created_at, updated_at)"
                    " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12)"
                    " ON CONFLICT (id) DO NOTHING",
                    DB_ARGS(DB_TEXT(id_out), DB_TEXT(e.queue), DB_TEXT(e.name),
                            DB_TEXT(e.tenant_id), DB_TEXT(data_json), DB_INT(e.priority),
                            DB_INT(e.prio), DB_INT(e.run_at), DB_INT(e.attempts),
                            DB_INT(e.backoff_ms), DB_INT(e.timeout_ms), DB_INT(e.now)));
    if (n < 0)
        return -1;
    return n == 1 ? 0 : 1;
}

/* The batch as one JSON array of {"id", "data"} in order: one parameter, read row by row by
 * the statement (jsonb_array_elements / json_each), so any batch size is the same statement. */
static const char enqueue_many_pg[] =
    "INSERT INTO jobs (id, queue, name, tenant_id, data, priority, prio, run_at, max_attempts,"
    " backoff_ms, timeout_ms, created_at, updated_at)"
    " SELECT e ->> 'id', $2, $3, CAST($4 AS uuid), e -> 'data', $5, $6, $7, $8, $9, $10,"
    " $11, $11"
    " FROM jsonb_array_elements(CAST($1 AS jsonb)) WITH ORDINALITY AS a(e, n) ORDER BY n";

static const char enqueue_many_sqlite[] =
    "INSERT INTO jobs (id, queue, name, tenant_id, data, priority, prio, run_at, max_attempts,"
    " backoff_ms, timeout_ms, created_at, updated_at)"
    " SELECT json_extract(value, '$.id'), $2, $3, $4, json_extract(value, '$.data'), $5, $6, $7,"
    " $8, $9, $10, $11, $11 FROM json_each($1) ORDER BY key";

int jobs_enqueue_many(struct db_conn *c, const char *queue, const char *name, const char *tenant_id,
                      const char *const *data_json, size_t n, const struct job_opts *opts,
                      char (*ids_out)[JOB_ID_MAX])
{
    if (!opts)
        opts = &no_opts;
    struct enq e;
    if (enq_prepare(&e, queue, name, tenant_id, opts) < 0)
        return -1;
    if (opts->job_id) {
        log_msg(LOG_ERROR, "jobs: enqueue_many to %s refused: one job id for many jobs", queue);
        return -1;
    }
    if (n == 0)
        return 0;
    struct buf batch;
    buf_init(&batch, (size_t)1 << 30);
    buf_putc(&batch, '[');
    for (size_t i = 0; i < n; i++) {
        const char *data = data_json && data_json[i] ? data_json[i] : "{}";
        if (!looks_like_object(data)) {
            log_msg(LOG_ERROR, "jobs: enqueue_many to %s refused: data %zu is not a JSON object",
                    queue, i);
            buf_free(&batch);
            return -1;
        }
        uuid_v7(ids_out[i]);
        buf_printf(&batch, "%s{\"id\":\"%s\",\"data\":", i ? "," : "", ids_out[i]);
        buf_puts(&batch, data);
        buf_putc(&batch, '}');
    }
    buf_putc(&batch, ']');
    if (batch.overflow) {
        buf_free(&batch);
        log_msg(LOG_ERROR, "jobs: enqueue_many to %s refused: batch too large", queue);
        return -1;
    }
    int rc = db_exec(c, db_conn_dialect(c) == DB_POSTGRES ? enqueue_many_pg : enqueue_many_sqlite,
                     DB_ARGS(DB_TEXT(buf_cstr(&batch)), DB_TEXT(e.queue), DB_TEXT(e.name),
                             DB_TEXT(e.tenant_id), DB_INT(e.priority), DB_INT(e.prio),
                             DB_INT(e.run_at), DB_INT(e.attempts), DB_INT(e.backoff_ms),
                             DB_INT(e.timeout_ms), DB_INT(e.now)));
    buf_free(&batch);
    if (rc >= 0 && (size_t)rc != n) {
        log_msg(LOG_ERROR, "jobs: enqueue_many to %s added %d of %zu", queue, rc, n);
        return -1;
    }
    return rc < 0 ? -1 : 0;
}

/* ---- claim -------------------------------------------------------------------------------- */

void jobs_rows_free(struct jobs_row *rows, int n)
{
    for (int i = 0; rows && i < n; i++) {
        free(rows[i].id);
        free(rows[i].name);
        free(rows[i].tenant_id);
        free(rows[i].data);
    }
    free(rows);
}

/*
 * The limiter's window, shared by every process through job_limits: how many claims the
 * current window still allows (window_start and used returned for limiter_add). On
 * PostgreSQL the row is locked until the transaction ends, so concurrent claimers of a
 * limited queue take turns.
 */
static int limiter_read(struct db_conn *c, const struct job_queue_def *d, int64_t now,
                        int64_t *window_start, int *used)
{
    if (db_exec(c,
                "INSERT INTO job_limits (queue, window_start, count) VALUES ($1, $2, 0)"
                " ON CONFLICT (queue) DO NOTHING",
                DB_ARGS(DB_TEXT(d->name), DB_INT(now))) < 0)
        return -1;
    bool pg = db_conn_dialect(c) == DB_POSTGRES;
    struct db_rows *r = db_query(c,
                                 pg ? "SELECT window_start, count FROM job_limits WHERE queue = $1"
                                      " FOR UPDATE"
                                    : "SELECT window_start, count FROM job_limits WHERE queue = $1",
                                 DB_ARGS(DB_TEXT(d->name)));
    if (!r)
        return -1;
    if (!db_next(r)) {
        db_rows_free(r);
        return -1;
    }
    *window_start = db_int(r, 0);
    *used = (int)db_int(r, 1);
    db_rows_free(r);
    if (now >= *window_start + d->limiter_window_ms || now < *window_start) {
        *window_start = now; /* a new window starts with this claim */
        *used = 0;
    }
    return 0;
}

static const char claim_sql_sqlite[] =
    "UPDATE jobs SET state = 'active', claimable = false, lease_owner = $1, lease_token = $2,"
    " lease_until = $3, started_at = $4, updated_at = $4"
    " WHERE seq IN (SELECT seq FROM jobs WHERE queue = $5 AND claimable AND run_at <= $4"
    "               ORDER BY prio, run_at, seq LIMIT $6)"
    " RETURNING id, name, tenant_id, data, attempts_made, max_attempts, backoff_ms, timeout_ms,"
    " prio, run_at, seq";

/* The same with SKIP LOCKED: another process's claim in flight hides its rows instead of
 * making this one wait for them. The candidates are picked in a CTE, which PostgreSQL runs
 * once: a LIMIT inside "seq IN (SELECT ...)" may be re-evaluated by the plan and lease more
 * rows than asked for. */
static const char claim_sql_pg[] =
    "WITH next AS MATERIALIZED (SELECT id FROM jobs WHERE queue = $5 AND claimable"
    "  AND run_at <= $4 AND (prio, run_at, seq) >= ($7, $8, $9)"
    "  ORDER BY prio, run_at, seq LIMIT $6 FOR UPDATE SKIP LOCKED)"
    " UPDATE jobs SET state = 'active', claimable = false, lease_owner = $1, lease_token = $2,"
    " lease_until = $3, started_at = $4, updated_at = $4"
    " FROM next WHERE jobs.id = next.id"
    " RETURNING jobs.id, jobs.name, jobs.tenant_id, jobs.data, jobs.attempts_made,"
    " jobs.max_attempts, jobs.backoff_ms, jobs.timeout_ms, jobs.prio, jobs.run_at, jobs.seq";

/* The start of the claim order (no `after`): below every key. */
static const struct jobs_key key_min = {INT64_MIN, INT64_MIN, INT64_MIN};

struct sortable {
    struct jobs_row row;
};

/* A claimed job from the current row, whose columns from `first` on are the claim's: id, name,
 * tenant_id, data, attempts_made, max_attempts, backoff_ms, timeout_ms, prio, run_at, seq. */
static void claimed_read(struct sortable *s, struct db_rows *r, int first)
{
    s->row.id = db_text_dup(r, first);
    s->row.name = db_text_dup(r, first + 1);
    s->row.tenant_id = db_text_dup(r, first + 2);
    s->row.data = db_text_dup(r, first + 3);
    s->row.attempts_made = (int)db_int(r, first + 4);
    s->row.max_attempts = (int)db_int(r, first + 5);
    s->row.backoff_ms = db_int(r, first + 6);
    s->row.timeout_ms = db_int(r, first + 7);
    s->row.key.prio = db_int(r, first + 8);
    s->row.key.run_at = db_int(r, first + 9);
    s->row.key.seq = db_int(r, first + 10);
}

static int by_order(const void *a, const void *b)
{
    const struct jobs_key *x = &((const struct sortable *)a)->row.key;
    const struct jobs_key *y = &((const struct sortable *)b)->row.key;
    if (x->prio != y->prio)
        return x->prio < y->prio ? -1 : 1;
    if (x->run_at != y->run_at)
        return x->run_at < y->run_at ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* The claimed rows in queue order (RETURNING has none), v freed; -1 (rows freed) when failed. */
static int claimed_rows(struct sortable *v, int n, bool failed, struct jobs_row **out)
{
    *out = NULL;
    if (!failed && n > 0)
        qsort(v, (size_t)n, sizeof(*v), by_order);
    struct jobs_row *rows = xcalloc((size_t)(n ? n : 1), sizeof(*rows));
    for (int i = 0; i < n; i++)
        rows[i] = v[i].row;
    free(v);
    if (failed || n == 0) {
        jobs_rows_free(rows, n);
        return failed ? -1 : 0;
    }
    *out = rows;
    return n;
}

int jobs_claim(struct db_conn *c, const struct job_queue_def *d, const char *owner,
               const char *token, int64_t now, int64_t lease_ms, int want,
               const struct jobs_key *after, struct jobs_row **out, int64_t *limited_until)
{
    if (!after)
        after = &key_min;
    *out = NULL;
    *limited_until = 0;
    if (want <= 0)
        return 0;
    int64_t window_start = 0;
    int used = 0;
    if (d->limiter_max > 0) {
        if (limiter_read(c, d, now, &window_start, &used) < 0)
            return -1;
        int allowed = d->limiter_max - used;
        if (allowed < want) {
            *limited_until = window_start + d->limiter_window_ms;
            want = allowed;
        }
        if (want <= 0)
            return 0;
    }
    struct db_rows *r =
        db_conn_dialect(c) == DB_POSTGRES
            ? db_query(c, claim_sql_pg,
                       DB_ARGS(DB_TEXT(owner), DB_TEXT(token), DB_INT(now + lease_ms), DB_INT(now),
                               DB_TEXT(d->name), DB_INT(want), DB_INT(after->prio),
                               DB_INT(after->run_at), DB_INT(after->seq)))
            : db_query(c, claim_sql_sqlite,
                       DB_ARGS(DB_TEXT(owner), DB_TEXT(token), DB_INT(now + lease_ms), DB_INT(now),
                               DB_TEXT(d->name), DB_INT(want)));
    if (!r)
        return -1;
    struct sortable *v = xcalloc((size_t)want, sizeof(*v));
    int n = 0;
    while (db_next(r)) {
        if (n == want) { /* cannot happen with the statements above; never overrun v */
            log_msg(LOG_ERROR, "jobs: claim of %s returned more rows than asked", d->name);
            break;
        }
        claimed_read(&v[n++], r, 0);
    }
    bool failed = db_rows_error(r) < 0;
    db_rows_free(r);
    if (!failed && d->limiter_max > 0 && n > 0)
        failed = db_exec(c, "UPDATE job_limits SET window_start = $2, count = $3 WHERE queue = $1",
                         DB_ARGS(DB_TEXT(d->name), DB_INT(window_start), DB_INT(used + n))) < 0;
    return claimed_rows(v, n, failed, out);
}

/*
 * Ends and claims in one round trip: data-modifying CTEs run in one snapshot, and the two
 * touch disjoint rows (active ones end, waiting ones are claimed). The ends come as arrays —
 * ids ($1), their lease tokens ($2, same positions) and results ($3, a JSON array) — so that
 * the ended rows are found through the primary key, not by scanning the active ones.
 */
static const char complete_claim_sql[] =
    "WITH ended AS (UPDATE jobs SET state = 'completed',"
    "   result = NULLIF(CAST($3 AS jsonb) -> (array_position(CAST($1 AS text[]), jobs.id) - 1),"
    "                   'null'),"
    "   attempts_made = jobs.attempts_made + 1, finished_at = $4, updated_at = $4,"
    "   lease_owner = NULL, lease_token = NULL, lease_until = NULL"
    "   WHERE jobs.id = ANY(CAST($1 AS text[]))"
    "   AND jobs.lease_token = (CAST($2 AS text[]))[array_position(CAST($1 AS text[]), jobs.id)]"
    "   RETURNING jobs.id),"
    " next AS MATERIALIZED (SELECT id FROM jobs WHERE queue = $5 AND claimable"
    "   AND run_at <= $4 AND (prio, run_at, seq) >= ($10, $11, $12)"
    "   ORDER BY prio, run_at, seq LIMIT $6 FOR UPDATE SKIP LOCKED),"
    " claimed AS (UPDATE jobs SET state = 'active', claimable = false, lease_owner = $7,"
    "   lease_token = $8,"
    "   lease_until = $9, started_at = $4, updated_at = $4"
    "   FROM next WHERE jobs.id = next.id"
    "   RETURNING jobs.id, jobs.name, CAST(jobs.tenant_id AS text) AS tenant_id,"
    "   CAST(jobs.data AS text) AS data, jobs.attempts_made, jobs.max_attempts,"
    "   jobs.backoff_ms, jobs.timeout_ms, jobs.prio, jobs.run_at, jobs.seq)"
    " SELECT true, id, name, tenant_id, data, attempts_made, max_attempts, backoff_ms,"
    "   timeout_ms, prio, run_at, seq FROM claimed"
    " UNION ALL SELECT false, id, NULL, NULL, NULL, 0, 0, 0, 0, 0, 0, 0 FROM ended";

/* A PostgreSQL array literal, in b (initialised here; free it), of strings that need no
 * escaping (job ids and lease tokens: [A-Za-z0-9_.:-]); quoted all the same. */
static void pg_array(struct buf *b, const char *const *v, size_t n)
{
    buf_init(b, 1u << 24);
    buf_putc(b, '{');
    for (size_t i = 0; i < n; i++)
        buf_printf(b, "%s\"%s\"", i ? "," : "", v[i]);
    buf_putc(b, '}');
}

int jobs_complete_and_claim(struct db_conn *c, const char *const *ids, const char *const *tokens,
                            const char *results_json, size_t nends, const struct job_queue_def *d,
                            const char *owner, const char *token, int64_t now, int64_t lease_ms,
                            int want, const struct jobs_key *after, struct jobs_row **out,
                            jobs_applied_fn applied, void *arg)
{
    *out = NULL;
    if (!after)
        after = &key_min;
    if (!d || want < 0)
        want = 0;
    struct buf idv, tokv;
    pg_array(&idv, ids, nends);
    pg_array(&tokv, tokens, nends);
    struct db_rows *r = db_query(
        c, complete_claim_sql,
        DB_ARGS(DB_TEXT(buf_cstr(&idv)), DB_TEXT(buf_cstr(&tokv)),
                DB_TEXT(results_json ? results_json : "[]"), DB_INT(now), DB_TEXT(d ? d->name : ""),
                DB_INT(want), DB_TEXT(owner), DB_TEXT(token), DB_INT(now + lease_ms),
                DB_INT(after->prio), DB_INT(after->run_at), DB_INT(after->seq)));
    buf_free(&idv);
    buf_free(&tokv);
    if (!r)
        return -1;
    struct sortable *v = xcalloc((size_t)(want ? want : 1), sizeof(*v));
    int n = 0;
    while (db_next(r)) {
        if (!db_bool(r, 0)) {
            applied(arg, db_text(r, 1));
            continue;
        }
        if (n == want)
            continue; /* cannot happen: LIMIT $4 */
        claimed_read(&v[n++], r, 1);
    }
    bool failed = db_rows_error(r) < 0;
    db_rows_free(r);
    return claimed_rows(v, n, failed, out);
}

int jobs_probe(struct db_conn *c, const char *const *queues, size_t n, int64_t now, bool *has)
{
    for (size_t i = 0; i < n; i++)
        has[i] = false;
    if (n == 0)
        return 0;
    if (n > 32)
        n = 32; /* a runner has a handful of queues; more are probed as present */
    struct buf sql;
    buf_init(&sql, 4096);
    buf_puts(&sql, "SELECT DISTINCT queue FROM jobs WHERE claimable AND run_at <= $1"
                   " AND queue IN (");
    struct db_param p[33];
    p[0] = DB_INT(now);
    for (size_t i = 0; i < n; i++) {
        buf_printf(&sql, "%s$%zu", i ? ", " : "", i + 2);
        p[i + 1] = DB_TEXT(queues[i]);
    }
    buf_puts(&sql, ")");
    struct db_rows *r = db_query(c, buf_cstr(&sql), p, n + 1);
    buf_free(&sql);
    if (!r)
        return -1;
    while (db_next(r))
        for (size_t i = 0; i < n; i++)
            if (strcmp(db_text(r, 0), queues[i]) == 0)
                has[i] = true;
    int rc = db_rows_error(r);
    db_rows_free(r);
    return rc;
}

/* ---- a run's end -------------------------------------------------------------------------- */

/*
 * A job holds a lease token exactly while it is active (a CHECK of the table says so): every
 * change out of "active" clears the lease. So a worker's statements find their job by id and
 * token alone — no "state = 'active'" that would let PostgreSQL's planner reach for the index
 * of active jobs, whose entries for jobs that have ended stay until VACUUM.
 */
static const char lease_cleared[] = "lease_owner = NULL, lease_token = NULL, lease_until = NULL";

static int one_state(struct db_rows *r, enum job_state *state_out)
{
    if (!r)
        return -1;
    int rc = 0;
    if (db_next(r)) {
        if (state_out)
            *state_out = state_parse(db_text(r, 0));
        rc = 1;
    }
    if (db_rows_error(r) < 0)
        rc = -1;
    db_rows_free(r);
    return rc;
}

int jobs_finish(struct db_conn *c, const char *id, const char *token, enum jobs_outcome o,
                const char *result_json, const char *error, int64_t run_at, int64_t now,
                enum job_state *state_out)
{
    char sql[768];
    struct db_rows *r;
    switch (o) {
    case JOBS_COMPLETE:
        snprintf(sql, sizeof(sql),
                 "UPDATE jobs SET state = 'completed', result = $3, attempts_made = "
                 "attempts_made + 1, finished_at = $4, updated_at = $4, %s"
                 " WHERE id = $1 AND lease_token = $2 RETURNING state",
                 lease_cleared);
        r = db_query(c, sql,
                     DB_ARGS(DB_TEXT(id), DB_TEXT(token), DB_TEXT(result_json), DB_INT(now)));
        break;
    case JOBS_RETRY:
    case JOBS_FAIL:
        snprintf(sql, sizeof(sql),
                 "UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled'"
                 " ELSE CAST($3 AS text) END,"
                 " claimable = NOT cancel_requested AND $3 = 'waiting', error = $4, attempts_made "
                 "= attempts_made + 1,"
                 " run_at = $5, finished_at = CASE WHEN cancel_requested OR $3 = 'failed'"
                 " THEN $6 ELSE NULL END, updated_at = $6, %s"
                 " WHERE id = $1 AND lease_token = $2 RETURNING state",
                 lease_cleared);
        r = db_query(c, sql,
                     DB_ARGS(DB_TEXT(id), DB_TEXT(token),
                             DB_TEXT(o == JOBS_FAIL ? "failed" : "waiting"), DB_TEXT(error),
                             DB_INT(o == JOBS_FAIL ? now : run_at), DB_INT(now)));
        break;
    case JOBS_RELEASE:
    default:
        snprintf(sql, sizeof(sql),
                 "UPDATE jobs SET state = CASE WHEN cancel_requested THEN 'cancelled'"
                 " ELSE 'waiting' END, claimable = NOT cancel_requested, finished_at = CASE WHEN "
                 "cancel_requested THEN $3"
                 " ELSE NULL END, updated_at = $3, %s"
                 " WHERE id = $1 AND lease_token = $2 RETURNING state",
                 lease_cleared);
        r = db_query(c, sql, DB_ARGS(DB_TEXT(id), DB_TEXT(token), DB_INT(now)));
        break;
    }
    return one_state(r, state_out);
}

int jobs_heartbeat(struct db_conn *c, const char *const *ids, const char *const *tokens, size_t n,
                   int64_t lease_until, jobs_lease_fn fn, void *arg)
{
    if (n == 0)
        return 0;
    if (db_conn_dialect(c) == DB_POSTGRES) {
        /* one statement, through the primary key (see complete_claim_sql) */
        struct buf idv, tokv;
        pg_array(&idv, ids, n);
        pg_array(&tokv, tokens, n);
        struct db_rows *r = db_query(
            c,
            "UPDATE jobs SET lease_until = $3 WHERE id = ANY(CAST($1 AS text[]))"
            " AND lease_token = (CAST($2 AS text[]))[array_position(CAST($1 AS text[]), id)]"
            " RETURNING id, lease_token, cancel_requested",
            DB_ARGS(DB_TEXT(buf_cstr(&idv)), DB_TEXT(buf_cstr(&tokv)), DB_INT(lease_until)));
        buf_free(&idv);
        buf_free(&tokv);
        if (!r)
            return -1;
        while (db_next(r))
            fn(arg, db_text(r, 0), db_text(r, 1), db_bool(r, 2));
        int rc = db_rows_error(r);
        db_rows_free(r);
        return rc;
    }
    for (size_t i = 0; i < n; i++) {
        struct db_rows *r =
            db_query(c,
                     "UPDATE jobs SET lease_until = $3"
                     " WHERE id = $1 AND lease_token = $2"
                     " RETURNING cancel_requested",
                     DB_ARGS(DB_TEXT(ids[i]), DB_TEXT(tokens[i]), DB_INT(lease_until)));
        if (!r)
            return -1;
        if (db_next(r))
            fn(arg, ids[i], tokens[i], db_bool(r, 0));
        int rc = db_rows_error(r);
        db_rows_free(r);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int jobs_set_progress(struct db_conn *c, const char *id, const char *token, int pct,
                      const char *message, int64_t now, bool *cancel_requested)
{
    struct db_rows *r =
        db_query(c,
                 "UPDATE jobs SET progress = $3, progress_message = $4,"
                 " updated_at = $5"
                 " WHERE id = $1 AND lease_token = $2"
                 " RETURNING cancel_requested",
                 DB_ARGS(DB_TEXT(id), DB_TEXT(token), DB_INT(pct), DB_TEXT(message), DB_INT(now)));
    if (!r)
        return -1;
    int rc = 0;
    if (db_next(r)) {
        *cancel_requested = db_bool(r, 0);
        rc = 1;
    }
    if (db_rows_error(r) < 0)
        rc = -1;
    db_rows_free(r);
    return rc;
}

/* ---- maintenance -------------------------------------------------------------------------- */

#define STALLED_ERROR "job stalled more than allowable limit"

int jobs_recover_stalled(struct db_conn *c, const char *queue, int max_stalled, int64_t now,
                         jobs_ended_fn fn, void *arg)
{
    /* SET expressions read the row as it was: stalled_count is the old count throughout */
    char sql[1024];
    snprintf(sql, sizeof(sql),
             "UPDATE jobs SET"
             " state = CASE WHEN cancel_requested THEN 'cancelled'"
             "   WHEN stalled_count >= $3 THEN 'failed' ELSE 'waiting' END,"
             " claimable = NOT cancel_requested AND stalled_count < $3,"
             " error = CASE WHEN cancel_requested THEN error"
             "   WHEN stalled_count >= $3 THEN '" STALLED_ERROR "' ELSE error END,"
             " finished_at = CASE WHEN cancel_requested OR stalled_count >= $3 THEN $2"
             "   ELSE NULL END,"
             " stalled_count = stalled_count + 1, updated_at = $2, %s"
             " WHERE queue = $1 AND state = 'active' AND lease_until < $2"
             " RETURNING id, tenant_id, state, attempts_made, error",
             lease_cleared);
    struct db_rows *r = db_query(c, sql, DB_ARGS(DB_TEXT(queue), DB_INT(now), DB_INT(max_stalled)));
    if (!r)
        return -1;
    int n = 0;
    while (db_next(r)) {
        n++;
        enum job_state st = state_parse(db_text(r, 2));
        log_msg(st == JOB_WAITING ? LOG_WARN : LOG_ERROR,
                "jobs: %s job %s stalled (lease expired): %s", queue, db_text(r, 0),
                job_state_name(st));
        if (st != JOB_WAITING && fn)
            fn(arg, db_text(r, 0), db_text(r, 1), st, (int)db_int(r, 3), db_text(r, 4));
    }
    if (db_rows_error(r) < 0)
        n = -1;
    db_rows_free(r);
    return n;
}

int jobs_sweep(struct db_conn *c, const struct job_queue_def *d, int64_t now)
{
    int total = 0, n;
    if (d->keep_completed_age_s > 0) {
        n = db_exec(c,
                    "DELETE FROM jobs WHERE queue = $1 AND state = 'completed'"
                    " AND finished_at < $2",
                    DB_ARGS(DB_TEXT(d->name), DB_INT(now - d->keep_completed_age_s * 1000)));
        if (n < 0)
            return -1;
        total += n;
    }
    if (d->keep_completed_count > 0) {
        /* the newest keep_completed_count stay: find the first one past them */
        struct db_rows *r = db_query(c,
                                     "SELECT finished_at, seq FROM jobs"
                                     " WHERE queue = $1 AND state = 'completed'"
                                     " AND finished_at IS NOT NULL"
                                     " ORDER BY finished_at DESC, seq DESC LIMIT 1 OFFSET $2",
                                     DB_ARGS(DB_TEXT(d->name), DB_INT(d->keep_completed_count)));
        if (!r)
            return -1;
        bool found = db_next(r);
        int64_t fin = found ? db_int(r, 0) : 0, seq = found ? db_int(r, 1) : 0;
        bool failed = db_rows_error(r) < 0;
        db_rows_free(r);
        if (failed)
            return -1;
        if (found) {
            n = db_exec(c,
                        "DELETE FROM jobs WHERE queue = $1 AND state = 'completed'"
                        " AND (finished_at < $2 OR (finished_at = $2 AND seq <= $3))",
                        DB_ARGS(DB_TEXT(d->name), DB_INT(fin), DB_INT(seq)));
            if (n < 0)
                return -1;
            total += n;
        }
    }
    if (d->keep_failed_age_s > 0) {
        n = db_exec(c,
                    "DELETE FROM jobs WHERE queue = $1 AND state IN ('failed', 'cancelled')"
                    " AND finished_at < $2",
                    DB_ARGS(DB_TEXT(d->name), DB_INT(now - d->keep_failed_age_s * 1000)));
        if (n < 0)
            return -1;
        total += n;
    }
    return total;
}

/* ---- inspection and admin ----------------------------------------------------------------- */

/* The tenant filter of the inspection queries: none when tenant is NULL. The id is unique, so
 * comparing as text costs nothing and reads the same on both databases. */
#define TENANT_FILTER " AND (CAST($2 AS text) IS NULL OR CAST(tenant_id AS text) = $2)"

static const char job_cols[] =
    "id, queue, name, tenant_id, state, run_at, progress, progress_message, attempts_made,"
    " max_attempts, priority, result, error, cancel_requested, stalled_count, created_at,"
    " started_at, finished_at, updated_at";

static json_t *iso_or_null(struct db_rows *r, int i)
{
    if (db_is_null(r, i))
        return json_null();
    int64_t ms = db_int(r, i);
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    char out[96];
    snprintf(out, sizeof(out), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(out);
}

static json_t *text_or_null(struct db_rows *r, int i)
{
    return db_is_null(r, i) ? json_null() : jx_strn(db_text(r, i), db_textlen(r, i));
}

static json_t *job_row_json(struct db_rows *r, int64_t now)
{
    const char *state = db_text(r, 4);
    if (strcmp(state, "waiting") == 0 && db_int(r, 5) > now)
        state = "delayed";
    json_t *result = json_null();
    if (!db_is_null(r, 11)) {
        result = json_loadb(db_text(r, 11), db_textlen(r, 11), JSON_DECODE_ANY, NULL);
        if (!result)
            result = json_null();
    }
    json_t *o = json_object();
    json_object_set_new(o, "id", text_or_null(r, 0));
    json_object_set_new(o, "queue", text_or_null(r, 1));
    json_object_set_new(o, "name", text_or_null(r, 2));
    json_object_set_new(o, "tenantId", text_or_null(r, 3));
    json_object_set_new(o, "state", json_string(state));
    json_object_set_new(o, "progress", json_integer(db_int(r, 6)));
    json_object_set_new(o, "progressMessage", text_or_null(r, 7));
    json_object_set_new(o, "attemptsMade", json_integer(db_int(r, 8)));
    json_object_set_new(o, "maxAttempts", json_integer(db_int(r, 9)));
    json_object_set_new(o, "priority", json_integer(db_int(r, 10)));
    json_object_set_new(o, "result", result);
    json_object_set_new(o, "error", text_or_null(r, 12));
    json_object_set_new(o, "cancelRequested", json_boolean(db_bool(r, 13)));
    json_object_set_new(o, "stalledCount", json_integer(db_int(r, 14)));
    json_object_set_new(o, "runAt", iso_or_null(r, 5));
    json_object_set_new(o, "createdAt", iso_or_null(r, 15));
    json_object_set_new(o, "startedAt", iso_or_null(r, 16));
    json_object_set_new(o, "finishedAt", iso_or_null(r, 17));
    json_object_set_new(o, "updatedAt", iso_or_null(r, 18));
    return o;
}

json_t *jobs_get_json(struct db_conn *c, const char *id, const char *tenant_id)
{
    char sql[512];
    snprintf(sql, sizeof(sql), "SELECT %s FROM jobs WHERE id = $1" TENANT_FILTER, job_cols);
    struct db_rows *r = db_query(c, sql, DB_ARGS(DB_TEXT(id), DB_TEXT(tenant_id)));
    if (!r)
        return NULL;
    json_t *o = db_next(r) ? job_row_json(r, jobs_now_ms()) : NULL;
    db_rows_free(r);
    return o;
}

/* 1 when the job exists (in the tenant), 0 when not, -1 on error. */
static int job_exists(struct db_conn *c, const char *id, const char *tenant_id)
{
    struct db_rows *r = db_query(c, "SELECT 1 FROM jobs WHERE id = $1" TENANT_FILTER,
                                 DB_ARGS(DB_TEXT(id), DB_TEXT(tenant_id)));
    if (!r)
        return -1;
    int rc = db_next(r) ? 1 : 0;
    if (db_rows_error(r) < 0)
        rc = -1;
    db_rows_free(r);
    return rc;
}

int jobs_cancel(struct db_conn *c, const char *id, const char *tenant_id)
{
    int64_t now = jobs_now_ms();
    /* waiting (or delayed): ends now, no worker has it */
    int n =
        db_exec(c,
                "UPDATE jobs SET state = 'cancelled', claimable = false, cancel_requested = true,"
                " finished_at = $3, updated_at = $3"
                " WHERE id = $1 AND state = 'waiting'" TENANT_FILTER,
                DB_ARGS(DB_TEXT(id), DB_TEXT(tenant_id), DB_INT(now)));
    if (n < 0)
        return -1;
    if (n == 1)
        return 0;
    /* active: the row is the signal; its worker sees it at its next heartbeat and ends the
     * job cancelled, or the stalled recovery does when that worker is gone */
    n = db_exec(c,
                "UPDATE jobs SET cancel_requested = true, updated_at = $3"
                " WHERE id = $1 AND state = 'active'" TENANT_FILTER,
                DB_ARGS(DB_TEXT(id), DB_TEXT(tenant_id), DB_INT(now)));
    if (n < 0)
        return -1;
    if (n == 1)
        return 0;
    int e = job_exists(c, id, tenant_id);
    return e < 0 ? -1 : e ? 1 : -2;
}

int jobs_cancel_tenant(struct db_conn *c, const char *tenant_id, const char *except_id)
{
    int64_t now = jobs_now_ms();
    /* the same two moves as jobs_cancel, for every job of the tenant at once */
    int a = db_exec(c,
                    "UPDATE jobs SET state = 'cancelled', claimable = false,"
                    " cancel_requested = true, finished_at = $3, updated_at = $3"
                    " WHERE tenant_id = $1 AND id <> $2 AND state = 'waiting'",
                    DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(except_id ? except_id : ""),
                            DB_INT(now)));
    if (a < 0)
        return -1;
    int b = db_exec(c,
                    "UPDATE jobs SET cancel_requested = true, updated_at = $3"
                    " WHERE tenant_id = $1 AND id <> $2 AND state = 'active'"
                    " AND NOT cancel_requested",
                    DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(except_id ? except_id : ""),
                            DB_INT(now)));
    return b < 0 ? -1 : a + b;
}

int jobs_retry(struct db_conn *c, const char *id)
{
    int64_t now = jobs_now_ms();
    int n = db_exec(c,
                    "UPDATE jobs SET state = 'waiting', claimable = true, attempts_made = 0,"
                    " stalled_count = 0,"
                    " cancel_requested = false, run_at = $2, finished_at = NULL, progress = 0,"
                    " progress_message = NULL, result = NULL, updated_at = $2"
                    " WHERE id = $1 AND state IN ('failed', 'cancelled')",
                    DB_ARGS(DB_TEXT(id), DB_INT(now)));
    if (n < 0)
        return -1;
    if (n == 1)
        return 0;
    int e = job_exists(c, id, NULL);
    return e < 0 ? -1 : e ? 1 : -2;
}

static json_t *zero_counts(void)
{
    json_t *o = json_object();
    for (int i = 0; i < JOB_STATE_COUNT; i++)
        json_object_set_new(o, state_names[i], json_integer(0));
    return o;
}

json_t *jobs_queues_json(struct db_conn *c)
{
    json_t *by_name = json_object(), *order = json_array();
    size_t n;
    const struct job_queue_def *d = jobs_queue_defs(&n);
    for (size_t i = 0; i < n; i++) {
        json_object_set_new(by_name, d[i].name, zero_counts());
        json_array_append_new(order, json_string(d[i].name));
    }
    struct db_rows *r =
        db_query(c,
                 "SELECT queue, CASE WHEN state = 'waiting' AND run_at > $1 THEN 'delayed'"
                 " ELSE state END AS st, count(*) FROM jobs GROUP BY queue, st ORDER BY queue",
                 DB_ARGS(DB_INT(jobs_now_ms())));
    if (!r) {
        json_decref(by_name);
        json_decref(order);
        return NULL;
    }
    while (db_next(r)) {
        const char *q = db_text(r, 0);
        json_t *counts = json_object_get(by_name, q);
        if (!counts) {
            counts = zero_counts();
            json_object_set_new(by_name, q, counts);
            json_array_append_new(order, json_string(q));
        }
        json_object_set_new(counts, db_text(r, 1), json_integer(db_int(r, 2)));
    }
    bool failed = db_rows_error(r) < 0;
    db_rows_free(r);
    json_t *out = NULL;
    if (!failed) {
        out = json_array();
        size_t i;
        json_t *name;
        json_array_foreach (order, i, name) {
            json_array_append_new(out,
                                  json_pack("{s:O, s:O}", "name", name, "counts",
                                            json_object_get(by_name, json_string_value(name))));
        }
    }
    json_decref(by_name);
    json_decref(order);
    return out;
}

json_t *jobs_list_json(struct db_conn *c, const char *state, const char *queue, long long limit,
                       long long offset, long long *total)
{
    /* "delayed" is a waiting job whose time has not come; "waiting" then means runnable */
    int64_t now = jobs_now_ms();
    const char *st = state;
    int when = 0; /* 1: run_at <= now, 2: run_at > now */
    if (state && strcmp(state, "delayed") == 0) {
        st = "waiting";
        when = 2;
    } else if (state && strcmp(state, "waiting") == 0) {
        when = 1;
    }
    static const char where[] =
        " WHERE (CAST($1 AS text) IS NULL OR state = $1) AND (CAST($2 AS text) IS NULL OR"
        " queue = $2) AND ($3 = 0 OR ($3 = 1 AND run_at <= $4) OR ($3 = 2 AND run_at > $4))";
    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT count(*) FROM jobs%s", where);
    struct db_rows *r =
        db_query(c, sql, DB_ARGS(DB_TEXT(st), DB_TEXT(queue), DB_INT(when), DB_INT(now)));
    if (!r)
        return NULL;
    *total = db_next(r) ? db_int(r, 0) : 0;
    db_rows_free(r);
    snprintf(sql, sizeof(sql),
             "SELECT %s FROM jobs%s ORDER BY updated_at DESC, seq DESC LIMIT $5 OFFSET $6",
             job_cols, where);
    r = db_query(c, sql,
                 DB_ARGS(DB_TEXT(st), DB_TEXT(queue), DB_INT(when), DB_INT(now), DB_INT(limit),
                         DB_INT(offset)));
    if (!r)
        return NULL;
    json_t *a = json_array();
    while (db_next(r))
        json_array_append_new(a, job_row_json(r, now));
    if (db_rows_error(r) < 0) {
        json_decref(a);
        a = NULL;
    }
    db_rows_free(r);
    return a;
}
