/*
 * pg.c — the PostgreSQL driver: see pg.h for what it owns, db.h for the contract.
 *
 * Why a pool and not one connection per thread like SQLite: a server connection is a process
 * on the server and costs a network round trip to open, so a fixed number of them is shared
 * by whichever threads need one. Everything the pool does happens under one mutex; a holder
 * talks to its connection without it. Results are fetched whole (PGresult), so a struct
 * db_rows needs nothing from the connection and several may be open at once.
 *
 * Connections that died (server restarted, network cut) are noticed three ways: an idle one
 * whose socket became readable is checked before it is handed out, a statement failing with
 * a connection-class error marks its connection broken (closed at release), and such a
 * failure also retires every idle connection older than it, so after an outage requests
 * succeed again at once instead of each tripping over one more dead connection.
 *
 * The tenant context (db_set_tenant, db_set_rls_bypass) lives in the session settings
 * app.tenant_id and app.rls_bypass. The connection remembers what the server has and sends
 * set_config() only before a statement that needs a different value: a released connection's
 * context is cleared in its struct, so the next statement on it, whoever holds it, first
 * resets the server's. A rollback undoes set_config() done inside the transaction, so the
 * remembered value is dropped then and sent again.
 */
#define ZYGO_DB_DRIVER 1
#include "lib/common.h"

#include "db/pg.h"
#include "lib/civil.h"

#include <ctype.h>
#include <libpq-fe.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Type OIDs of pg_type (stable across versions). */
#define OID_BOOL 16
#define OID_INT8 20
#define OID_FLOAT8 701
#define OID_TIMESTAMP 1114
#define OID_TIMESTAMPTZ 1184

/* A readiness probe must not sit through the whole connect timeout of a dead host. */
#define PING_CONNECT_TIMEOUT_S 3
/* "2026-11-25T17:45:49.123Z" and its NUL, with room to spare. */
#define TS_LEN 32
/* PostgreSQL's limit on parameters of one statement. */
#define MAX_PARAMS 65535

struct pg_stmt {
    char *sql;
    uint64_t hash;
    Oid *types; /* the parameter types it was prepared with: part of the key */
    int ntypes;
    int nparams; /* as the server counted them */
    uint64_t used;
    char name[24];
};

struct pg_db;
struct mux_conn;

/* Most shared connections one pool keeps. */
#define MUX_MAX 16

struct pg_conn {
    struct db_conn base;
    struct pg_db *owner;
    PGconn *h;
    struct pg_conn *prev, *next; /* owner->all */
    struct pg_conn *idle_next;   /* owner->idle */
    uint64_t epoch;              /* owner->epoch when opened */
    int64_t idle_since_ms;
    bool in_use;
    bool broken; /* the server went away: closed at release */

    /* The tenant context the server session has (see the header comment). */
    bool ctx_known;
    bool ctx_bypass;
    bool ctx_in_tx; /* last sent inside a transaction block, which may still roll it back */
    char ctx_tenant[sizeof(((struct db_conn *)0)->tenant)];

    /* The first error inside the current transaction, reported again by a failing commit. */
    enum db_errkind tx_errkind;
    char tx_errmsg[sizeof(((struct db_conn *)0)->errmsg)];

    uint64_t tick;
    unsigned next_name;
    size_t nstmts;
    struct pg_stmt stmts[DB_PG_STMT_CACHE];
};

struct pg_db {
    struct db base;
    char *url;
    char *where;    /* "user@host:port/dbname" for messages: no password */
    char *password; /* to scrub from libpq's messages; NULL when the URL has none */
    int pool_max;
    int pool_timeout_ms; /* <= 0: do not wait */
    int connect_timeout_s;
    int idle_timeout_s; /* < 0: never */
    int statement_timeout_ms;

    pthread_mutex_t mu;
    pthread_cond_t freed; /* a connection went back to the pool or a slot opened */
    struct pg_conn *all;  /* every connection, held or idle */
    struct pg_conn *idle; /* most recently released first */
    int nopen;            /* connections open or being opened */
    uint64_t epoch;       /* bumped when a connection is found dead */

    /* The shared, pipelined connections (see "pipeline" below); all under mux_mu, which is
     * taken before mu when both are needed. */
    int mux_max;
    pthread_mutex_t mux_mu;
    struct mux_conn *mux[MUX_MAX];
    int nmux;
    struct mux_conn *mux_dead; /* given up, freed once nobody uses them */
    int mux_opening;
};

struct pg_rows {
    struct db_rows base;
    PGresult *res;
    int nrows, ncols;
    int row;            /* -1 before the first db_next, nrows after the last */
    char (*ts)[TS_LEN]; /* per column: this row's timestamp as ISO-8601, "" if left as is */
};

static const struct db_driver pg_driver;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- messages ---------------------------------------------------------------------------- */

/*
 * libpq's messages on one line (they come with newlines and tabs), without the password
 * should one ever be quoted back.
 */
static void one_line(char *dst, size_t n, const char *src, const char *password)
{
    size_t k = 0;
    bool space = false;
    for (const char *p = src ? src : ""; *p && k + 1 < n; p++) {
        if (password && *password && strncmp(p, password, strlen(password)) == 0) {
            int w = snprintf(dst + k, n - k, "%s***", space && k ? " " : "");
            k = ZY_MIN(k + (size_t)(w > 0 ? w : 0), n - 1);
            p += strlen(password) - 1;
            space = false;
        } else if (isspace((unsigned char)*p)) {
            space = true;
        } else {
            if (space && k && k + 2 < n)
                dst[k++] = ' ';
            space = false;
            dst[k++] = *p;
        }
    }
    dst[k] = '\0';
}

/* libpq prints NOTICEs ("relation already exists, skipping") on stderr: they are not errors. */
static void notice_drop(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

/* ---- errors ------------------------------------------------------------------------------ */

static bool state_is(const char *state, const char *want)
{
    return state && strcmp(state, want) == 0;
}

static bool state_class(const char *state, const char *cls)
{
    return state && strncmp(state, cls, 2) == 0;
}

/* SQLSTATEs meaning the server or the connection is gone. */
static bool state_lost(const char *state)
{
    return state_class(state, "08") || state_is(state, "57P01") || state_is(state, "57P02") ||
           state_is(state, "57P03");
}

static enum db_errkind classify(const char *state)
{
    if (!state)
        return DB_ERR_OTHER;
    if (state_is(state, "23505") || state_is(state, "23P01")) /* unique, exclusion */
        return DB_ERR_UNIQUE;
    if (state_is(state, "23503") || state_is(state, "23001")) /* foreign key, restrict */
        return DB_ERR_FOREIGN_KEY;
    if (state_is(state, "23502"))
        return DB_ERR_NOT_NULL;
    /* Other integrity violations (CHECK), data exceptions (bad uuid/json/number text, value
     * too long) and a parameter of the wrong type: what SQLite's CHECK and STRICT refuse. */
    if (state_class(state, "23") || state_class(state, "22") || state_is(state, "42804"))
        return DB_ERR_CHECK;
    /* Serialization failure, deadlock, lock not available, statement timeout / cancel. */
    if (state_is(state, "40001") || state_is(state, "40P01") || state_is(state, "55P03") ||
        state_is(state, "57014"))
        return DB_ERR_BUSY;
    /* Privilege missing, or a row-level security policy's WITH CHECK refused the row. */
    if (state_is(state, "42501"))
        return DB_ERR_PERMISSION;
    /* Gone, out of resources (disk full, too many connections), read-only standby, login. */
    if (state_lost(state) || state_class(state, "53") || state_class(state, "28") ||
        state_is(state, "25006") || state_is(state, "3D000"))
        return DB_ERR_UNAVAILABLE;
    return DB_ERR_OTHER;
}

static void mark_broken(struct pg_conn *c)
{
    if (c->broken)
        return;
    c->broken = true;
    /* Idle connections opened before this are most likely dead too: retire them. */
    pthread_mutex_lock(&c->owner->mu);
    c->owner->epoch++;
    pthread_mutex_unlock(&c->owner->mu);
}

/* Records on dst the failure that res (NULL: the connection's own error) of c reports. */
static void seterr_into(struct pg_conn *c, struct db_conn *dst, const PGresult *res)
{
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (!msg || !*msg)
        msg = res && *PQresultErrorMessage(res) ? PQresultErrorMessage(res) : PQerrorMessage(c->h);
    char line[400];
    one_line(line, sizeof(line), msg, c->owner->password);
    if (PQstatus(c->h) != CONNECTION_OK || state_lost(state)) {
        mark_broken(c);
        db_conn_seterr(dst, DB_ERR_UNAVAILABLE, "database connection lost: %s", line);
    } else if (state) {
        db_conn_seterr(dst, classify(state), "%s (SQLSTATE %s)", line, state);
    } else {
        db_conn_seterr(dst, DB_ERR_OTHER, "%s", line);
    }
}

/* Records the failure that res (NULL: the connection's own error) reports. */
static void seterr_result(struct pg_conn *c, const PGresult *res)
{
    seterr_into(c, &c->base, res);
    if (!c->broken && PQtransactionStatus(c->h) == PQTRANS_INERROR &&
        c->tx_errkind == DB_ERR_NONE) {
        c->tx_errkind = c->base.errkind;
        memcpy(c->tx_errmsg, c->base.errmsg, sizeof(c->tx_errmsg));
    }
}

static void seterr_lost(struct pg_conn *c)
{
    db_conn_seterr(&c->base, DB_ERR_UNAVAILABLE,
                   "database connection lost: this connection can no longer be used");
}

/* ---- session state ---------------------------------------------------------------------- */

/* After every statement: notice the end of a transaction (commit, rollback, abort). */
static void after_statement(struct pg_conn *c)
{
    if (c->broken || PQtransactionStatus(c->h) != PQTRANS_IDLE)
        return;
    c->tx_errkind = DB_ERR_NONE;
    c->tx_errmsg[0] = '\0';
    if (c->ctx_in_tx) {
        /* Maybe rolled back with the transaction: send it again next time. */
        c->ctx_in_tx = false;
        c->ctx_known = false;
    }
}

/* Brings the server's app.tenant_id / app.rls_bypass to what the holder set. */
static int context_sync(struct pg_conn *c)
{
    const char *tenant = c->base.tenant;
    bool bypass = c->base.rls_bypass;
    if (c->ctx_known && c->ctx_bypass == bypass && strcmp(c->ctx_tenant, tenant) == 0)
        return 0;
    const char *vals[2] = {tenant, bypass ? "on" : "off"};
    PGresult *res = PQexecParams(c->h,
                                 "SELECT set_config('app.tenant_id', $1, false),"
                                 " set_config('app.rls_bypass', $2, false)",
                                 2, NULL, vals, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        seterr_result(c, res);
        PQclear(res);
        c->ctx_known = false;
        return -1;
    }
    PQclear(res);
    c->ctx_known = true;
    c->ctx_bypass = bypass;
    snprintf(c->ctx_tenant, sizeof(c->ctx_tenant), "%s", tenant);
    if (PQtransactionStatus(c->h) != PQTRANS_IDLE)
        c->ctx_in_tx = true;
    return 0;
}

/* ---- parameters ----------------------------------------------------------------------------- */

/*
 * Parameters as libpq takes them: NUL-terminated text (a DB_TEXTN slice is copied), NULL
 * for SQL NULL, and a declared type. Text and NULL go as "unknown" so the server types them
 * from where they are used (a uuid column, a jsonb column, a timestamptz comparison), as
 * SQLite's dynamic typing lets the same SQL run there; numbers and booleans go typed, so
 * "$1 + 1" or "LIMIT $1" need no cast.
 */
struct pg_args {
    const char **values;
    Oid *types;
    char *store;
    const char *values_buf[16];
    Oid types_buf[16];
    char store_buf[1024];
};

static void args_free(struct pg_args *a)
{
    if (a->values != a->values_buf)
        free(a->values);
    if (a->types != a->types_buf)
        free(a->types);
    if (a->store != a->store_buf)
        free(a->store);
}

static int args_build(struct db_conn *errto, const struct db_param *p, size_t n, struct pg_args *a)
{
    a->values = n <= ARRAY_LEN(a->values_buf) ? a->values_buf : xcalloc(n, sizeof(*a->values));
    a->types = n <= ARRAY_LEN(a->types_buf) ? a->types_buf : xcalloc(n, sizeof(*a->types));
    size_t need = 0;
    for (size_t k = 0; k < n; k++) {
        if (p[k].type == DB_P_TEXT && p[k].len && memchr(p[k].text, '\0', p[k].len)) {
            db_conn_seterr(errto, DB_ERR_CHECK, "parameter $%zu: text contains a NUL byte",
                           k + 1);
            a->store = a->store_buf;
            args_free(a);
            return -1;
        }
        need += (p[k].type == DB_P_TEXT ? p[k].len : DB_PARAM_SCALAR_LEN) + 1;
    }
    a->store = need <= sizeof(a->store_buf) ? a->store_buf : xmalloc(need);
    char *w = a->store;
    for (size_t k = 0; k < n; k++) {
        switch (p[k].type) {
        case DB_P_TEXT:
            if (p[k].len)
                memcpy(w, p[k].text, p[k].len);
            w[p[k].len] = '\0';
            a->values[k] = w;
            a->types[k] = 0;
            w += p[k].len + 1;
            break;
        case DB_P_INT:
        case DB_P_DOUBLE:
        case DB_P_BOOL:
            a->values[k] = w;
            a->types[k] = p[k].type == DB_P_INT    ? OID_INT8
                          : p[k].type == DB_P_BOOL ? OID_BOOL
                                                   : OID_FLOAT8;
            w += db_param_scalar_text(&p[k], w) + 1;
            break;
        case DB_P_NULL:
        default:
            a->values[k] = NULL;
            a->types[k] = 0;
            break;
        }
    }
    return 0;
}

/* ---- statement cache ---------------------------------------------------------------------- */

static void stmt_deallocate(struct pg_conn *c, const char *name)
{
    char sql[48];
    snprintf(sql, sizeof(sql), "DEALLOCATE %s", name);
    PQclear(PQexec(c->h, sql));
}

static void stmt_clear(struct pg_stmt *s)
{
    free(s->sql);
    free(s->types);
    memset(s, 0, sizeof(*s));
}

/* Forgets every cached statement, which the server no longer has (DISCARD, DEALLOCATE ALL). */
static void stmt_forget_all(struct pg_conn *c)
{
    for (size_t i = 0; i < c->nstmts; i++)
        stmt_clear(&c->stmts[i]);
    c->nstmts = 0;
}

/* Takes s out of the cache (the last entry moves into its place). */
static void stmt_remove(struct pg_conn *c, struct pg_stmt *s)
{
    stmt_clear(s);
    c->nstmts--;
    *s = c->stmts[c->nstmts];
    memset(&c->stmts[c->nstmts], 0, sizeof(c->stmts[0]));
}

/* Forgets a statement the server refuses to run any more (its tables changed shape). */
static void stmt_drop(struct pg_conn *c, struct pg_stmt *s)
{
    stmt_deallocate(c, s->name);
    stmt_remove(c, s);
}

static struct pg_stmt *stmt_find(struct pg_conn *c, const char *sql, uint64_t hash,
                                 const Oid *types, int n)
{
    for (size_t i = 0; i < c->nstmts; i++) {
        struct pg_stmt *s = &c->stmts[i];
        if (s->hash == hash && s->ntypes == n &&
            (n == 0 || memcmp(s->types, types, (size_t)n * sizeof(Oid)) == 0) &&
            strcmp(s->sql, sql) == 0)
            return s;
    }
    return NULL;
}

/* A slot for a new statement: a free one, else the least recently used one, deallocated. */
static struct pg_stmt *stmt_slot(struct pg_conn *c)
{
    if (c->nstmts < DB_PG_STMT_CACHE)
        return &c->stmts[c->nstmts++];
    struct pg_stmt *victim = &c->stmts[0];
    for (size_t i = 1; i < c->nstmts; i++)
        if (c->stmts[i].used < victim->used)
            victim = &c->stmts[i];
    stmt_deallocate(c, victim->name);
    stmt_clear(victim);
    return victim;
}

/* Records a statement prepared (or being prepared) under name in slot s. */
static void stmt_fill(struct pg_conn *c, struct pg_stmt *s, const char *name, const char *sql,
                      size_t len, uint64_t hash, const Oid *types, int n)
{
    snprintf(s->name, sizeof(s->name), "%s", name);
    s->sql = xstrndup(sql, len);
    s->hash = hash;
    s->ntypes = n;
    s->types = n ? xmalloc((size_t)n * sizeof(Oid)) : NULL;
    if (n)
        memcpy(s->types, types, (size_t)n * sizeof(Oid));
    s->nparams = n;
    s->used = ++c->tick;
}

/* The prepared statement for sql with these parameter types: cached, or prepared now. */
static struct pg_stmt *stmt_get(struct pg_conn *c, const char *sql, const Oid *types, int n)
{
    size_t len = strlen(sql);
    uint64_t hash = db_sql_hash(sql, len);
    struct pg_stmt *s = stmt_find(c, sql, hash, types, n);
    if (s) {
        s->used = ++c->tick;
        return s;
    }
    char name[24];
    snprintf(name, sizeof(name), "zygo_%u", ++c->next_name);
    PGresult *res = PQprepare(c->h, name, sql, n, types);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        seterr_result(c, res);
        PQclear(res);
        return NULL;
    }
    PQclear(res);
    /* The server's count of $k, to refuse a wrong number of parameters as SQLite does. */
    res = PQdescribePrepared(c->h, name);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        seterr_result(c, res);
        PQclear(res);
        if (!c->broken)
            stmt_deallocate(c, name);
        return NULL;
    }
    int nparams = PQnparams(res);
    PQclear(res);
    s = stmt_slot(c);
    stmt_fill(c, s, name, sql, len, hash, types, n);
    s->nparams = nparams;
    return s;
}

/* ---- statements -------------------------------------------------------------------------- */

static bool result_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* A result status that is neither success nor an error report. */
static void seterr_status(struct pg_conn *c, ExecStatusType st)
{
    if (st == PGRES_EMPTY_QUERY) {
        db_conn_seterr(&c->base, DB_ERR_OTHER, "empty SQL statement");
        return;
    }
    /* COPY leaves the connection in a mode we never drive: give it up. */
    mark_broken(c);
    db_conn_seterr(&c->base, DB_ERR_OTHER, "unsupported statement (COPY): %s", PQresStatus(st));
}

/*
 * Runs one statement with parameters through the statement cache; the successful result, or
 * NULL with the error recorded.
 */
static PGresult *run(struct pg_conn *c, const char *sql, const struct db_param *p, size_t n)
{
    if (c->broken) {
        seterr_lost(c);
        return NULL;
    }
    if (n > MAX_PARAMS) {
        db_conn_seterr(&c->base, DB_ERR_OTHER, "too many parameters (%zu)", n);
        return NULL;
    }
    if (context_sync(c) != 0)
        return NULL;
    struct pg_args a;
    if (args_build(&c->base, p, n, &a) != 0)
        return NULL;
    PGresult *res = NULL;
    for (int attempt = 0; attempt < 2 && !res; attempt++) {
        struct pg_stmt *s = stmt_get(c, sql, a.types, (int)n);
        if (!s)
            break;
        if (s->nparams != (int)n) {
            db_conn_seterr(&c->base, DB_ERR_OTHER,
                           "statement uses %d parameter(s) but %zu were given", s->nparams, n);
            break;
        }
        res = PQexecPrepared(c->h, s->name, (int)n, a.values, NULL, NULL, 0);
        if (result_ok(res))
            break;
        ExecStatusType st = PQresultStatus(res);
        const char *state = PQresultErrorField(res, PG_DIAG_SQLSTATE);
        /* "cached plan must not change result type" (a table it reads changed shape since it
         * was prepared), or the statement is gone (DISCARD ALL, DEALLOCATE ALL in a script).
         * Prepare it again; outside a transaction nothing was lost, so retry. */
        bool stale = st == PGRES_FATAL_ERROR && !c->broken &&
                     (state_is(state, "0A000") || state_is(state, "26000"));
        bool retry = stale && attempt == 0 && PQtransactionStatus(c->h) == PQTRANS_IDLE;
        if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE)
            seterr_result(c, res);
        else
            seterr_status(c, st);
        if (stale && state_is(state, "26000"))
            stmt_forget_all(c); /* one gone: likely all of them */
        else if (stale)
            stmt_drop(c, s);
        PQclear(res);
        res = NULL;
        if (!retry)
            break;
    }
    args_free(&a);
    after_statement(c);
    return res;
}

static bool tag_is(const char *tag, const char *word)
{
    size_t n = strlen(word);
    return strncmp(tag, word, n) == 0 && tag[n] == ' ';
}

static int pg_exec(struct db_conn *bc, const char *sql, const struct db_param *p, size_t n)
{
    PGresult *res = run((struct pg_conn *)bc, sql, p, n);
    if (!res)
        return -1;
    /* Rows changed, as SQLite counts them: DML only (a SELECT's tag counts rows returned). */
    long count = 0;
    const char *tag = PQcmdStatus(res);
    if (tag_is(tag, "INSERT") || tag_is(tag, "UPDATE") || tag_is(tag, "DELETE") ||
        tag_is(tag, "MERGE"))
        count = strtol(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return count > INT_MAX ? INT_MAX : (int)count;
}

/* A statement without parameters by the simple protocol (scripts, transaction control). */
static int simple(struct pg_conn *c, const char *sql)
{
    if (c->broken) {
        seterr_lost(c);
        return -1;
    }
    PGresult *res = PQexec(c->h, sql);
    int ret = 0;
    ExecStatusType st = PQresultStatus(res);
    if (result_ok(res) || st == PGRES_EMPTY_QUERY) {
        /* done (an empty result: a script of comments only) */
    } else if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR || st == PGRES_BAD_RESPONSE) {
        seterr_result(c, res);
        ret = -1;
    } else {
        seterr_status(c, st);
        ret = -1;
    }
    PQclear(res);
    after_statement(c);
    return ret;
}

static int conn_exec_script(struct pg_conn *c, const char *sql)
{
    if (c->broken) {
        seterr_lost(c);
        return -1;
    }
    if (context_sync(c) != 0)
        return -1;
    int ret = simple(c, sql);
    /* A script may throw the session's prepared statements away: forget ours too. */
    if (strcasestr(sql, "DEALLOCATE") || strcasestr(sql, "DISCARD"))
        stmt_forget_all(c);
    return ret;
}

/* ---- rows ---------------------------------------------------------------------------------- */

static bool is_ts(Oid t)
{
    return t == OID_TIMESTAMPTZ || t == OID_TIMESTAMP;
}

/*
 * PostgreSQL's ISO output "2026-11-25 17:45:49.123456+00" (timestamptz; timestamp has no
 * offset and is taken as UTC) → "2026-11-25T17:45:49.123Z", the form SQLite stores and the API
 * returns. Fractions are truncated to milliseconds. false for what has no such form
 * (infinity, BC, years past 9999): the caller leaves those as PostgreSQL wrote them.
 */
static bool ts_to_iso(const char *s, bool with_tz, char out[TS_LEN])
{
    int Y, M, D, h, mi, sec, ms = 0;
    if (!(civil_digits(s, 4, &Y) && s[4] == '-' && civil_digits(s + 5, 2, &M) && s[7] == '-' &&
          civil_digits(s + 8, 2, &D) && s[10] == ' ' && civil_digits(s + 11, 2, &h) &&
          s[13] == ':' && civil_digits(s + 14, 2, &mi) && s[16] == ':' &&
          civil_digits(s + 17, 2, &sec)))
        return false;
    const char *p = s + 19;
    if (*p == '.') {
        int k = 0;
        for (p++; isdigit((unsigned char)*p); p++, k++)
            if (k < 3)
                ms = ms * 10 + (*p - '0');
        if (k == 0)
            return false;
        for (; k < 3; k++)
            ms *= 10;
    }
    int off = 0;
    if (with_tz) {
        if (*p != '+' && *p != '-')
            return false;
        int sign = *p++ == '-' ? -1 : 1, oh, om = 0, os = 0;
        if (!civil_digits(p, 2, &oh))
            return false;
        p += 2;
        if (*p == ':') {
            if (!civil_digits(p + 1, 2, &om))
                return false;
            p += 3;
            if (*p == ':') {
                if (!civil_digits(p + 1, 2, &os))
                    return false;
                p += 3;
            }
        }
        off = sign * (oh * 3600 + om * 60 + os);
    }
    if (*p)
        return false;
    int64_t t = civil_days(Y, M, D) * 86400 + h * 3600 + mi * 60 + sec - off;
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t rem = t - days * 86400;
    int64_t y;
    int m, d;
    civil_date(days, &y, &m, &d);
    if (y < 1 || y > 9999)
        return false;
    snprintf(out, TS_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)y, m, d, (int)(rem / 3600),
             (int)(rem % 3600 / 60), (int)(rem % 60), ms);
    return true;
}

/* A successful result as rows to iterate (res is taken over). */
static struct db_rows *rows_new(struct db_conn *bc, PGresult *res)
{
    struct pg_rows *r = xcalloc(1, sizeof(*r));
    r->base.conn = bc;
    r->res = res;
    r->nrows = PQntuples(res);
    r->ncols = PQnfields(res);
    r->row = -1;
    for (int i = 0; i < r->ncols; i++) {
        if (is_ts(PQftype(res, i))) {
            r->ts = xcalloc((size_t)r->ncols, sizeof(*r->ts));
            break;
        }
    }
    return &r->base;
}

static struct db_rows *pg_query(struct db_conn *bc, const char *sql, const struct db_param *p,
                                size_t n)
{
    PGresult *res = run((struct pg_conn *)bc, sql, p, n);
    return res ? rows_new(bc, res) : NULL;
}

static bool pg_next(struct db_rows *br)
{
    struct pg_rows *r = (struct pg_rows *)br;
    if (r->row + 1 >= r->nrows) {
        r->row = r->nrows;
        return false;
    }
    r->row++;
    for (int i = 0; r->ts && i < r->ncols; i++) {
        Oid t = PQftype(r->res, i);
        r->ts[i][0] = '\0';
        if (is_ts(t) && !PQgetisnull(r->res, r->row, i) &&
            !ts_to_iso(PQgetvalue(r->res, r->row, i), t == OID_TIMESTAMPTZ, r->ts[i]))
            r->ts[i][0] = '\0';
    }
    return true;
}

static int pg_ncols(const struct db_rows *br)
{
    return ((const struct pg_rows *)br)->ncols;
}

static const char *pg_colname(const struct db_rows *br, int i)
{
    const struct pg_rows *r = (const struct pg_rows *)br;
    return i >= 0 && i < r->ncols ? PQfname(r->res, i) : NULL;
}

/* True when column i of a current row exists and is not NULL. */
static bool has_value(const struct pg_rows *r, int i)
{
    return r->row >= 0 && r->row < r->nrows && i >= 0 && i < r->ncols &&
           !PQgetisnull(r->res, r->row, i);
}

static bool pg_is_null(const struct db_rows *br, int i)
{
    return !has_value((const struct pg_rows *)br, i);
}

static bool is_bool_col(const struct pg_rows *r, int i)
{
    return PQftype(r->res, i) == OID_BOOL;
}

/* Booleans read "true"/"false" (PostgreSQL sends "t"/"f"); timestamps as ISO-8601 UTC. */
static const char *pg_text(const struct db_rows *br, int i)
{
    const struct pg_rows *r = (const struct pg_rows *)br;
    if (!has_value(r, i))
        return NULL;
    const char *v = PQgetvalue(r->res, r->row, i);
    if (is_bool_col(r, i))
        return v[0] == 't' ? "true" : "false";
    if (r->ts && r->ts[i][0])
        return r->ts[i];
    return v;
}

static size_t pg_textlen(const struct db_rows *br, int i)
{
    const struct pg_rows *r = (const struct pg_rows *)br;
    if (!has_value(r, i))
        return 0;
    if (is_bool_col(r, i) || (r->ts && r->ts[i][0]))
        return strlen(pg_text(br, i));
    return (size_t)PQgetlength(r->res, r->row, i);
}

static int64_t pg_int(const struct db_rows *br, int i)
{
    const struct pg_rows *r = (const struct pg_rows *)br;
    if (!has_value(r, i))
        return 0;
    const char *v = PQgetvalue(r->res, r->row, i);
    if (is_bool_col(r, i))
        return v[0] == 't';
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end == '.' || *end == 'e' || *end == 'E')
        return (int64_t)strtod(v, NULL); /* numeric/float text, truncated as SQLite does */
    return x;
}

static double pg_dbl(const struct db_rows *br, int i)
{
    const struct pg_rows *r = (const struct pg_rows *)br;
    if (!has_value(r, i))
        return 0.0;
    const char *v = PQgetvalue(r->res, r->row, i);
    if (is_bool_col(r, i))
        return v[0] == 't' ? 1.0 : 0.0;
    return strtod(v, NULL);
}

static bool pg_boolean(const struct db_rows *br, int i)
{
    const struct pg_rows *r = (const struct pg_rows *)br;
    if (!has_value(r, i))
        return false;
    const char *v = PQgetvalue(r->res, r->row, i);
    if (is_bool_col(r, i))
        return v[0] == 't';
    if (strcmp(v, "t") == 0 || strcmp(v, "true") == 0 || strcmp(v, "on") == 0)
        return true;
    return strtod(v, NULL) != 0.0; /* a count or a 0/1 column */
}

static void pg_rows_free(struct db_rows *br)
{
    struct pg_rows *r = (struct pg_rows *)br;
    PQclear(r->res);
    free(r->ts);
    free(r);
}

/* ---- transactions ------------------------------------------------------------------------ */

static bool conn_in_transaction(struct pg_conn *c)
{
    if (c->broken)
        return false;
    PGTransactionStatusType ts = PQtransactionStatus(c->h);
    return ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
}

static int conn_begin(struct pg_conn *c)
{
    if (conn_in_transaction(c)) {
        db_conn_seterr(&c->base, DB_ERR_OTHER, "a transaction is already open on this connection");
        return -1;
    }
    c->tx_errkind = DB_ERR_NONE;
    c->tx_errmsg[0] = '\0';
    return simple(c, "BEGIN");
}

static int conn_commit(struct pg_conn *c)
{
    struct db_conn *bc = &c->base;
    if (c->broken) {
        seterr_lost(c);
        return -1;
    }
    if (!conn_in_transaction(c)) {
        db_conn_seterr(bc, DB_ERR_OTHER, "no transaction is open on this connection");
        return -1;
    }
    enum db_errkind earlier = c->tx_errkind;
    char msg[sizeof(c->tx_errmsg)];
    memcpy(msg, c->tx_errmsg, sizeof(msg));
    PGresult *res = PQexec(c->h, "COMMIT");
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    if (!ok) {
        seterr_result(c, res); /* deferred constraint, serialization failure, server gone */
    } else if (strcmp(PQcmdStatus(res), "ROLLBACK") == 0) {
        /* The server answers COMMIT of a failed transaction by rolling back. */
        ok = false;
        db_conn_seterr(bc, earlier != DB_ERR_NONE ? earlier : DB_ERR_OTHER,
                       "transaction rolled back: %s", msg[0] ? msg : "a statement in it failed");
    }
    PQclear(res);
    if (ok)
        c->ctx_in_tx = false; /* committed: what was set inside it stays */
    after_statement(c);
    if (!ok && conn_in_transaction(c)) {
        /* Keep the commit's error, not the rollback's. */
        enum db_errkind kind = bc->errkind;
        memcpy(msg, bc->errmsg, sizeof(msg));
        simple(c, "ROLLBACK");
        bc->errkind = kind;
        memcpy(bc->errmsg, msg, sizeof(msg));
    }
    return ok ? 0 : -1;
}

static int conn_rollback(struct pg_conn *c)
{
    if (!conn_in_transaction(c))
        return 0;
    return simple(c, "ROLLBACK");
}

/* ---- connections ------------------------------------------------------------------------- */

static void conn_free(struct pg_conn *c)
{
    for (size_t i = 0; i < c->nstmts; i++)
        stmt_clear(&c->stmts[i]);
    PQfinish(c->h);
    free(c);
}

/* Under mu. */
static void all_unlink(struct pg_db *db, struct pg_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        db->all = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

/* Under mu. */
static void all_link(struct pg_db *db, struct pg_conn *c)
{
    c->prev = NULL;
    c->next = db->all;
    if (db->all)
        db->all->prev = c;
    db->all = c;
}

/* A new connection with the session every connection has; NULL with the reason in err. */
static struct pg_conn *conn_open(struct pg_db *db, int timeout_s, char *err, size_t errlen)
{
    char timeout[16];
    snprintf(timeout, sizeof(timeout), "%d", timeout_s);
    /* Later keywords win: the URL may name its own application_name; timeout and encoding are
     * ours. */
    const char *const keys[] = {"application_name", "dbname", "connect_timeout", "client_encoding",
                                NULL};
    const char *const vals[] = {"zygo", db->url, timeout, "UTF8", NULL};
    PGconn *h = PQconnectdbParams(keys, vals, 1);
    if (!h)
        zy_oom(0);
    char line[400];
    if (PQstatus(h) != CONNECTION_OK) {
        one_line(line, sizeof(line), PQerrorMessage(h), db->password);
        snprintf(err, errlen, "cannot connect to PostgreSQL at %s: %s", db->where, line);
        PQfinish(h);
        return NULL;
    }
    PQsetNoticeProcessor(h, notice_drop, NULL);
    char setup[320];
    snprintf(setup, sizeof(setup),
             "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, MDY'; SET statement_timeout = %d;"
             " SELECT set_config('app.tenant_id', '', false),"
             " set_config('app.rls_bypass', 'off', false)",
             db->statement_timeout_ms > 0 ? db->statement_timeout_ms : 0);
    PGresult *res = PQexec(h, setup);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        one_line(line, sizeof(line), PQresultErrorMessage(res), db->password);
        snprintf(err, errlen, "cannot set up a PostgreSQL session at %s: %s", db->where, line);
        PQclear(res);
        PQfinish(h);
        return NULL;
    }
    PQclear(res);
    struct pg_conn *c = xcalloc(1, sizeof(*c));
    c->base.db = &db->base;
    c->owner = db;
    c->h = h;
    c->ctx_known = true; /* tenant "", bypass off: just set */
    return c;
}

/*
 * An idle connection may have died while it sat in the pool: a server that shut down, a
 * backend that was terminated, first send an error and close the socket, which then reads as
 * ready. Nothing else is ever sent to an idle connection of ours (no LISTEN), so a quiet
 * socket means alive and anything else means give it up (at worst, one needless reconnect).
 */
static bool conn_alive(struct pg_conn *c)
{
    if (PQstatus(c->h) != CONNECTION_OK)
        return false;
    struct pollfd pfd = {.fd = PQsocket(c->h), .events = POLLIN};
    return pfd.fd >= 0 && poll(&pfd, 1, 0) == 0;
}

/*
 * Under mu: takes out of the pool the idle connections that have been idle too long or are
 * older than the last failure, and returns them as a list (by idle_next) to free unlocked.
 */
static struct pg_conn *prune_locked(struct pg_db *db, int64_t now)
{
    struct pg_conn *doomed = NULL;
    for (struct pg_conn **pp = &db->idle; *pp;) {
        struct pg_conn *c = *pp;
        bool old =
            db->idle_timeout_s >= 0 && now - c->idle_since_ms > (int64_t)db->idle_timeout_s * 1000;
        if (old || c->epoch < db->epoch) {
            *pp = c->idle_next;
            all_unlink(db, c);
            db->nopen--;
            c->idle_next = doomed;
            doomed = c;
        } else {
            pp = &c->idle_next;
        }
    }
    if (doomed)
        pthread_cond_broadcast(&db->freed);
    return doomed;
}

static void free_list(struct pg_conn *c)
{
    while (c) {
        struct pg_conn *next = c->idle_next;
        conn_free(c);
        c = next;
    }
}

/* Under mu: one connection fewer (closed or never opened). */
static void slot_freed_locked(struct pg_db *db)
{
    db->nopen--;
    pthread_cond_signal(&db->freed);
}

/*
 * A connection for one holder: an idle one that is still alive, else a new one if the pool
 * has room, else waiting up to wait_ms for either. NULL with the reason in err; *exhausted
 * says the reason was a full pool.
 */
static struct pg_conn *pool_get(struct pg_db *db, int wait_ms, int connect_timeout_s, char *err,
                                size_t errlen, bool *exhausted)
{
    *exhausted = false;
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    int64_t ns = deadline.tv_nsec + (int64_t)(wait_ms > 0 ? wait_ms : 0) % 1000 * 1000000;
    deadline.tv_sec += (wait_ms > 0 ? wait_ms : 0) / 1000 + ns / 1000000000;
    deadline.tv_nsec = ns % 1000000000;

    pthread_mutex_lock(&db->mu);
    for (;;) {
        struct pg_conn *doomed = prune_locked(db, now_ms());
        if (doomed) {
            pthread_mutex_unlock(&db->mu);
            free_list(doomed);
            pthread_mutex_lock(&db->mu);
            continue;
        }
        if (db->idle) {
            struct pg_conn *c = db->idle;
            db->idle = c->idle_next;
            c->idle_next = NULL;
            c->in_use = true;
            pthread_mutex_unlock(&db->mu);
            if (conn_alive(c))
                return c;
            pthread_mutex_lock(&db->mu);
            all_unlink(db, c);
            db->epoch++; /* one died: its elders may have too */
            slot_freed_locked(db);
            pthread_mutex_unlock(&db->mu);
            conn_free(c);
            pthread_mutex_lock(&db->mu);
            continue;
        }
        if (db->nopen < db->pool_max) {
            db->nopen++;
            pthread_mutex_unlock(&db->mu);
            struct pg_conn *c = conn_open(db, connect_timeout_s, err, errlen);
            pthread_mutex_lock(&db->mu);
            if (!c) {
                slot_freed_locked(db);
                pthread_mutex_unlock(&db->mu);
                return NULL;
            }
            c->epoch = db->epoch;
            c->in_use = true;
            all_link(db, c);
            pthread_mutex_unlock(&db->mu);
            return c;
        }
        if (wait_ms <= 0 || pthread_cond_timedwait(&db->freed, &db->mu, &deadline) == ETIMEDOUT) {
            pthread_mutex_unlock(&db->mu);
            *exhausted = true;
            snprintf(err, errlen,
                     "connection pool exhausted: all %d connections stayed busy for %d ms",
                     db->pool_max, wait_ms > 0 ? wait_ms : 0);
            return NULL;
        }
    }
}

static struct db_conn *conn_acquire(struct pg_db *db, char *err, size_t errlen)
{
    char tmp[512];
    bool exhausted;
    struct pg_conn *c =
        pool_get(db, db->pool_timeout_ms, db->connect_timeout_s, tmp, sizeof(tmp), &exhausted);
    if (!c) {
        if (err && errlen)
            snprintf(err, errlen, "%s", tmp);
        return NULL;
    }
    c->base.errkind = DB_ERR_NONE;
    c->base.errmsg[0] = '\0';
    return &c->base;
}

static void conn_release(struct pg_conn *c)
{
    struct db_conn *bc = &c->base;
    struct pg_db *db = c->owner;
    if (!c->in_use)
        return; /* more releases than acquires */
    if (!c->broken) {
        PGTransactionStatusType ts = PQtransactionStatus(c->h);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR)
            simple(c, "ROLLBACK"); /* a holder bailed out mid-transaction */
        else if (ts != PQTRANS_IDLE)
            mark_broken(c); /* a statement still running: nothing we do, give it up */
    }
    /* The next holder starts with no tenant; its first statement resets the server's. */
    db_conn_reset_context(bc);
    c->in_use = false;
    pthread_mutex_lock(&db->mu);
    if (c->broken) {
        all_unlink(db, c);
        slot_freed_locked(db);
        pthread_mutex_unlock(&db->mu);
        conn_free(c);
        return;
    }
    int64_t now = now_ms();
    c->idle_since_ms = now;
    c->idle_next = db->idle;
    db->idle = c;
    pthread_cond_signal(&db->freed);
    struct pg_conn *doomed = prune_locked(db, now);
    pthread_mutex_unlock(&db->mu);
    free_list(doomed);
}

/* ---- pipeline: statements that do not block ---------------------------------------------
 *
 * db_query_async: a statement outside any transaction goes to one of a few connections of the
 * pool kept in libpq's pipeline mode and shared by every thread; the caller does not wait. A
 * thread appends its statement and a Sync to the connection's output under mux_mu and returns;
 * the connection's reader thread reads the results as they come, in the order they were sent,
 * and calls each statement's callback itself. Under load the backend finds the next statement
 * already waiting when it finishes one, and the reader finds several results per wakeup: no
 * thread sleeps and wakes once per statement, on either side.
 *
 * Every statement has its own Sync, so a failing one aborts only itself. The tenant context:
 * each connection knows the context its next segment runs with; a statement whose tenant
 * differs is preceded by set_config() in a segment of its own, which commits by itself (in the
 * statement's segment a failure would roll it back and later segments would run with the old
 * one); should that segment fail, the connection is given up with everything queued on it.
 * A statement new to a connection is prepared in the same segment, ahead of its first use, and
 * cached (the server refuses a wrong parameter count; later segments may use the name at once,
 * the pipeline keeps them in order). A connection whose oldest statement has waited
 * MUX_STALL_MS (a slow query ahead) is passed over; with none usable the caller runs the
 * statement the blocking way.
 */

#define MUX_STALL_MS 20
/* Statements queued on one shared connection before another is opened. */
#define MUX_DEPTH 32

enum seg_kind { SEG_QUERY, SEG_CONTEXT, SEG_DEALLOCATE };

struct mux_seg {
    struct mux_seg *next;
    enum seg_kind kind;
    int ncmds, got; /* statements in it (a Prepare, then the query); results complete */
    PGresult *res[2];
    int64_t sent_ms;
    /* SEG_QUERY: its callback, and what it is told (set under mux_mu when answered) */
    db_async_fn done;
    void *arg;
    char name[24]; /* the prepared statement it runs */
    bool lost;
    PGresult *ok;
    enum db_errkind errkind;
    char errmsg[sizeof(((struct db_conn *)0)->errmsg)];
};

struct mux_conn {
    struct pg_conn *pc;
    struct mux_seg *head, *tail; /* sent, results not all read yet */
    struct mux_seg *ready;       /* answered queries whose callbacks the reader runs next */
    int pending;
    int users; /* the reader, and a sender while it sends */
    bool dead;
    bool stop;                  /* the database is closing: the reader ends */
    struct mux_conn *next_dead; /* pg_db.mux_dead */
    int wake_fd;                /* eventfd that interrupts the reader's poll */
    pthread_t reader;
    /* the context segments sent from now on run with */
    bool ctx_known, ctx_bypass;
    char ctx_tenant[sizeof(((struct db_conn *)0)->tenant)];
};

static struct mux_seg *seg_new(enum seg_kind kind, int ncmds)
{
    struct mux_seg *s = xcalloc(1, sizeof(*s));
    s->kind = kind;
    s->ncmds = ncmds;
    return s;
}

static void seg_free(struct mux_seg *s)
{
    for (size_t i = 0; i < ARRAY_LEN(s->res); i++)
        PQclear(s->res[i]);
    PQclear(s->ok);
    free(s);
}

/* Under mux_mu: the segment now sent (its Sync included) waits for its results. */
static void seg_push(struct mux_conn *m, struct mux_seg *s)
{
    s->sent_ms = now_ms();
    if (m->tail)
        m->tail->next = s;
    else
        m->head = s;
    m->tail = s;
    m->pending++;
}

static struct mux_seg *seg_pop(struct mux_conn *m)
{
    struct mux_seg *s = m->head;
    m->head = s->next;
    if (!m->head)
        m->tail = NULL;
    m->pending--;
    s->next = NULL;
    return s;
}

static void mux_wake(struct mux_conn *m)
{
    uint64_t one = 1;
    if (write(m->wake_fd, &one, sizeof(one)) < 0) {
        /* an eventfd far from its limit does not refuse */
    }
}

/* Under mux_mu: gives up m (its server went away, or we lost track of it): every statement
 * queued on it is answered as lost (by the reader), and no new one is sent to it. */
static void mux_kill(struct pg_db *db, struct mux_conn *m);

/* Under mux_mu: forgets s on m; the server's copy goes with a DEALLOCATE queued behind the
 * segments that may still use it. */
static void mux_stmt_drop(struct pg_db *db, struct mux_conn *m, struct pg_stmt *s)
{
    char sql[48];
    snprintf(sql, sizeof(sql), "DEALLOCATE %s", s->name);
    stmt_remove(m->pc, s);
    if (m->dead)
        return;
    if (!PQsendQueryParams(m->pc->h, sql, 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(m->pc->h)) {
        mux_kill(db, m);
        return;
    }
    seg_push(m, seg_new(SEG_DEALLOCATE, 1));
}

static struct pg_stmt *stmt_by_name(struct pg_conn *c, const char *name)
{
    for (size_t i = 0; i < c->nstmts; i++)
        if (strcmp(c->stmts[i].name, name) == 0)
            return &c->stmts[i];
    return NULL;
}

/* Under mux_mu: what a query segment's callback will be told, from its results. */
static void seg_outcome(struct pg_db *db, struct mux_conn *m, struct mux_seg *s)
{
    if (s->lost) {
        s->errkind = DB_ERR_UNAVAILABLE;
        snprintf(s->errmsg, sizeof(s->errmsg), "database connection lost");
        return;
    }
    PGresult *q = s->res[s->ncmds - 1];
    if (s->ncmds == 2 && !result_ok(s->res[0])) {
        q = s->res[0]; /* the Prepare failed (a syntax error): that is the error */
        struct pg_stmt *st = stmt_by_name(m->pc, s->name);
        if (st)
            stmt_remove(m->pc, st);
    }
    if (q && result_ok(q)) {
        s->ok = q;
        s->res[s->ncmds - 1] = NULL;
        return;
    }
    const char *state = q ? PQresultErrorField(q, PG_DIAG_SQLSTATE) : NULL;
    struct db_conn tmp = {.db = &db->base};
    if (!q) {
        db_conn_seterr(&tmp, DB_ERR_OTHER, "no result for the statement");
    } else if (state_is(state, "08P01") && PQstatus(m->pc->h) == CONNECTION_OK) {
        /* a wrong parameter count: the statement's fault, the connection is fine */
        char line[400];
        one_line(line, sizeof(line), PQresultErrorField(q, PG_DIAG_MESSAGE_PRIMARY), NULL);
        db_conn_seterr(&tmp, DB_ERR_OTHER, "%s (SQLSTATE 08P01)", line);
        state = NULL;
    } else {
        seterr_into(m->pc, &tmp, q);
    }
    s->errkind = tmp.errkind;
    memcpy(s->errmsg, tmp.errmsg, sizeof(s->errmsg));
    if ((state_is(state, "0A000") || state_is(state, "26000")) && !m->dead) {
        /* a stale plan, or the statement gone: prepared afresh by the next one to use it */
        struct pg_stmt *st = stmt_by_name(m->pc, s->name);
        if (st)
            mux_stmt_drop(db, m, st);
    }
    if (m->pc->broken || state_lost(state))
        mux_kill(db, m);
}

/* Under mux_mu: the head segment is answered. */
static void seg_finish(struct pg_db *db, struct mux_conn *m, struct mux_seg *s)
{
    if (s->kind == SEG_QUERY) {
        /* queued for its callback before its outcome may give m up (answering the later
         * segments as lost): the callbacks keep the order of the statements */
        s->next = m->ready;
        m->ready = s;
        seg_outcome(db, m, s);
        return;
    }
    bool ctx_failed = s->kind == SEG_CONTEXT && !s->lost && !(s->res[0] && result_ok(s->res[0]));
    seg_free(s);
    if (ctx_failed)
        mux_kill(db, m); /* the segments behind it assumed the new context */
}

static void mux_kill(struct pg_db *db, struct mux_conn *m)
{
    if (m->dead)
        return;
    m->dead = true;
    mark_broken(m->pc);
    for (int i = 0; i < db->nmux; i++) {
        if (db->mux[i] == m) {
            db->mux[i] = db->mux[--db->nmux];
            db->mux[db->nmux] = NULL;
            break;
        }
    }
    m->next_dead = db->mux_dead;
    db->mux_dead = m;
    while (m->head) {
        struct mux_seg *s = seg_pop(m);
        s->lost = true;
        seg_finish(db, m, s);
    }
    mux_wake(m); /* the reader runs the callbacks, then ends */
}
/* Not under mux_mu: m's reader has ended. */
static void mux_free(struct mux_conn *m)
{
    pthread_join(m->reader, NULL);
    close(m->wake_fd);
    conn_release(m->pc); /* broken: closed */
    free(m);
}

/* Under mux_mu: frees the given-up connections whose reader has ended and that nobody sends on. */
static void mux_sweep(struct pg_db *db)
{
    for (struct mux_conn **pp = &db->mux_dead; *pp;) {
        struct mux_conn *m = *pp;
        if (m->users > 0) {
            pp = &m->next_dead;
            continue;
        }
        *pp = m->next_dead;
        pthread_mutex_unlock(&db->mux_mu);
        mux_free(m);
        pthread_mutex_lock(&db->mux_mu);
        pp = &db->mux_dead; /* the list may have changed meanwhile */
    }
}

/* Under mux_mu: sends what libpq holds for m, letting go of the lock while the socket is full
 * (the reader must be able to drain results meanwhile, or the server could block on us). */
static int mux_flush(struct pg_db *db, struct mux_conn *m)
{
    for (;;) {
        if (m->dead)
            return -1;
        int f = PQflush(m->pc->h);
        if (f == 0)
            return 0;
        if (f < 0) {
            mux_kill(db, m);
            return -1;
        }
        struct pollfd pfd = {.fd = PQsocket(m->pc->h), .events = POLLOUT};
        pthread_mutex_unlock(&db->mux_mu);
        poll(&pfd, 1, 1000);
        pthread_mutex_lock(&db->mux_mu);
    }
}

/* Under mux_mu: hands one result (NULL: the end of a statement's results) to the head. */
static void mux_dispatch(struct pg_db *db, struct mux_conn *m, PGresult *res)
{
    struct mux_seg *s = m->head;
    if (!res) {
        if (s->got < s->ncmds)
            s->got++;
        else
            mux_kill(db, m); /* libpq never ends a Sync's round with NULL: we lost track */
        return;
    }
    if (PQresultStatus(res) == PGRES_PIPELINE_SYNC) {
        PQclear(res);
        seg_finish(db, m, seg_pop(m));
        return;
    }
    if (s->got < s->ncmds && !s->res[s->got])
        s->res[s->got] = res;
    else
        PQclear(res);
}

/* Not under mux_mu: tells each answered query (oldest first), then frees it. */
static void run_callbacks(struct pg_db *db, struct mux_conn *m, struct mux_seg *list)
{
    struct mux_seg *in_order = NULL;
    while (list) {
        struct mux_seg *next = list->next;
        list->next = in_order;
        in_order = list;
        list = next;
    }
    while (in_order) {
        struct mux_seg *s = in_order;
        in_order = s->next;
        if (s->ok) {
            struct db_rows *r = rows_new(&m->pc->base, s->ok);
            s->ok = NULL;
            s->done(s->arg, r, DB_ERR_NONE, "");
        } else {
            s->done(s->arg, NULL, s->errkind, s->errmsg);
        }
        __atomic_fetch_add(&db->base.async_answered, 1, __ATOMIC_RELAXED);
        seg_free(s);
    }
}

struct mux_reader_arg {
    struct pg_db *db;
    struct mux_conn *m;
};

/* m's reader thread: reads results as they come and runs their callbacks, until m is given up
 * (its queued statements then answered as lost) or the database closes. */
static void *mux_reader(void *p)
{
    struct mux_reader_arg a = *(struct mux_reader_arg *)p;
    free(p);
    struct pg_db *db = a.db;
    struct mux_conn *m = a.m;
    PGconn *h = m->pc->h;
    pthread_mutex_lock(&db->mux_mu);
    while (!m->stop) {
        while (m->head && !m->dead && !PQisBusy(h))
            mux_dispatch(db, m, PQgetResult(h));
        if (!m->dead && PQstatus(h) != CONNECTION_OK)
            mux_kill(db, m);
        if (m->ready) {
            struct mux_seg *list = m->ready;
            m->ready = NULL;
            pthread_mutex_unlock(&db->mux_mu);
            run_callbacks(db, m, list);
            pthread_mutex_lock(&db->mux_mu);
            continue;
        }
        if (m->dead)
            break;
        struct pollfd pfd[2] = {{.fd = PQsocket(h), .events = POLLIN},
                                {.fd = m->wake_fd, .events = POLLIN}};
        pthread_mutex_unlock(&db->mux_mu);
        poll(pfd, 2, -1);
        pthread_mutex_lock(&db->mux_mu);
        if (pfd[1].revents) {
            uint64_t v;
            if (read(m->wake_fd, &v, sizeof(v)) < 0) {
                /* nothing to read: another wake took it */
            }
        }
        /* readable with nothing asked: an error or the end, which consuming reports */
        if (!m->dead && !m->stop && pfd[0].revents && !PQconsumeInput(h))
            mux_kill(db, m);
    }
    m->users--;
    pthread_mutex_unlock(&db->mux_mu);
    return NULL;
}

/* Under mux_mu: a shared connection for one statement, users counted; NULL when none is
 * usable right now (the caller runs the statement the blocking way). */
static struct mux_conn *mux_pick(struct pg_db *db)
{
    mux_sweep(db);
    for (;;) {
        int64_t now = now_ms();
        struct mux_conn *best = NULL, *room = NULL;
        for (int i = 0; i < db->nmux; i++) {
            struct mux_conn *m = db->mux[i];
            if (m->head && now - m->head->sent_ms >= MUX_STALL_MS)
                continue; /* stuck behind a slow statement */
            if (!room && m->pending < MUX_DEPTH)
                room = m;
            if (!best || m->pending < best->pending)
                best = m;
        }
        /* the first connection with room: the deeper one pipeline, the more statements each
         * wakeup serves on both sides; another opens only when all are that deep */
        bool can_open = db->nmux + db->mux_opening < db->mux_max;
        if (room || (best && !can_open)) {
            best = room ? room : best;
            best->users++;
            return best;
        }
        if (!can_open)
            return NULL;
        db->mux_opening++;
        pthread_mutex_unlock(&db->mux_mu);
        char err[512];
        bool exhausted;
        struct pg_conn *pc = pool_get(db, 0, db->connect_timeout_s, err, sizeof(err), &exhausted);
        bool ok = pc && PQsetnonblocking(pc->h, 1) == 0 && PQenterPipelineMode(pc->h) == 1;
        if (pc && !ok) {
            mark_broken(pc);
            conn_release(pc);
        }
        pthread_mutex_lock(&db->mux_mu);
        db->mux_opening--;
        if (!ok)
            return best ? (best->users++, best) : NULL;
        struct mux_conn *m = xcalloc(1, sizeof(*m));
        m->pc = pc;
        m->users = 1; /* its reader */
        m->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        struct mux_reader_arg *ra = xmalloc(sizeof(*ra));
        *ra = (struct mux_reader_arg){db, m};
        if (m->wake_fd < 0 || pthread_create(&m->reader, NULL, mux_reader, ra) != 0) {
            free(ra);
            if (m->wake_fd >= 0)
                close(m->wake_fd);
            mark_broken(pc);
            pthread_mutex_unlock(&db->mux_mu);
            conn_release(pc);
            free(m);
            pthread_mutex_lock(&db->mux_mu);
            return best ? (best->users++, best) : NULL;
        }
        db->mux[db->nmux++] = m;
    }
}

/* Under mux_mu: the context segment, when the statement's differs from what m's next runs
 * with. 0, or -1 (m given up). */
static int mux_context(struct pg_db *db, struct mux_conn *m, const char *tenant, bool bypass)
{
    if (m->dead)
        return -1;
    if (m->ctx_known && m->ctx_bypass == bypass && strcmp(m->ctx_tenant, tenant) == 0)
        return 0;
    const char *vals[2] = {tenant, bypass ? "on" : "off"};
    if (!PQsendQueryParams(m->pc->h,
                           "SELECT set_config('app.tenant_id', $1, false),"
                           " set_config('app.rls_bypass', $2, false)",
                           2, NULL, vals, NULL, NULL, 0) ||
        !PQpipelineSync(m->pc->h)) {
        mux_kill(db, m);
        return -1;
    }
    m->ctx_known = true;
    m->ctx_bypass = bypass;
    snprintf(m->ctx_tenant, sizeof(m->ctx_tenant), "%s", tenant);
    seg_push(m, seg_new(SEG_CONTEXT, 1));
    return 0;
}

/* Under mux_mu: the statement's cached name on m, or a new entry (*fresh: prepare it in the
 * segment). NULL when every slot is in use by... never: the least recently used one goes. */
static struct pg_stmt *mux_stmt(struct pg_db *db, struct mux_conn *m, const char *sql,
                                uint64_t hash, const Oid *types, int n, bool *fresh)
{
    struct pg_conn *c = m->pc;
    struct pg_stmt *s = stmt_find(c, sql, hash, types, n);
    *fresh = !s;
    if (s) {
        s->used = ++c->tick;
        return s;
    }
    if (c->nstmts == DB_PG_STMT_CACHE) {
        struct pg_stmt *victim = &c->stmts[0];
        for (size_t i = 1; i < c->nstmts; i++)
            if (c->stmts[i].used < victim->used)
                victim = &c->stmts[i];
        mux_stmt_drop(db, m, victim);
        if (m->dead)
            return NULL;
    }
    char name[24];
    snprintf(name, sizeof(name), "zygo_%u", ++c->next_name);
    s = &c->stmts[c->nstmts++];
    stmt_fill(c, s, name, sql, strlen(sql), hash, types, n);
    return s;
}

static int pg_query_async(struct db *bdb, const char *tenant, bool bypass, const char *sql,
                          const struct db_param *p, size_t n, db_async_fn done, void *arg)
{
    struct pg_db *db = (struct pg_db *)bdb;
    if (db->mux_max <= 0 || n > MAX_PARAMS)
        return -1;
    struct db_conn tmp = {.db = bdb};
    struct pg_args a;
    if (args_build(&tmp, p, n, &a) != 0)
        return -1; /* a NUL in a text: the blocking way reports it */
    uint64_t hash = db_sql_hash(sql, strlen(sql));
    pthread_mutex_lock(&db->mux_mu);
    struct mux_conn *m = mux_pick(db);
    int rc = -1;
    if (m && mux_context(db, m, tenant ? tenant : "", bypass) == 0) {
        bool fresh;
        struct pg_stmt *st = mux_stmt(db, m, sql, hash, a.types, (int)n, &fresh);
        PGconn *h = m->pc->h;
        if (st && (!fresh || PQsendPrepare(h, st->name, sql, (int)n, a.types)) &&
            PQsendQueryPrepared(h, st->name, (int)n, a.values, NULL, NULL, 0) &&
            PQpipelineSync(h)) {
            struct mux_seg *s = seg_new(SEG_QUERY, fresh ? 2 : 1);
            s->done = done;
            s->arg = arg;
            memcpy(s->name, st->name, sizeof(s->name));
            seg_push(m, s);
            rc = 0; /* answered by the reader from now on, even if the flush fails */
            mux_flush(db, m);
        } else if (!m->dead) {
            mux_kill(db, m); /* part of a segment may be in libpq's buffer: give it up */
        }
    }
    if (m)
        m->users--;
    pthread_mutex_unlock(&db->mux_mu);
    args_free(&a);
    return rc;
}


/* ---- the driver's connection calls ----------------------------------------------------------- */

static int pg_exec_script(struct db_conn *bc, const char *sql)
{
    return conn_exec_script((struct pg_conn *)bc, sql);
}

static bool pg_in_transaction(struct db_conn *bc)
{
    return conn_in_transaction((struct pg_conn *)bc);
}

static int pg_begin(struct db_conn *bc)
{
    return conn_begin((struct pg_conn *)bc);
}

static int pg_commit(struct db_conn *bc)
{
    return conn_commit((struct pg_conn *)bc);
}

static int pg_rollback(struct db_conn *bc)
{
    return conn_rollback((struct pg_conn *)bc);
}

static struct db_conn *pg_acquire(struct db *bdb, char *err, size_t errlen)
{
    return conn_acquire((struct pg_db *)bdb, err, errlen);
}

static void pg_release(struct db_conn *bc)
{
    conn_release((struct pg_conn *)bc);
}

/* ---- the database -------------------------------------------------------------------------- */

static int ping_once(struct pg_db *db, char *reason, size_t n, bool retried)
{
    char err[512];
    bool exhausted;
    int timeout = ZY_MIN(db->connect_timeout_s, PING_CONNECT_TIMEOUT_S);
    struct pg_conn *c = pool_get(db, 0, timeout, err, sizeof(err), &exhausted);
    if (!c && exhausted) {
        /* Every connection is busy, which says the server works: check it still answers. */
        char t[16];
        snprintf(t, sizeof(t), "%d", timeout);
        const char *const keys[] = {"dbname", "connect_timeout", NULL};
        const char *const vals[] = {db->url, t, NULL};
        if (PQpingParams(keys, vals, 1) == PQPING_OK)
            return 0;
        snprintf(reason, n, "database server at %s does not answer", db->where);
        return -1;
    }
    if (!c) {
        snprintf(reason, n, "%s", err);
        return -1;
    }
    struct db_rows *r = db_query(&c->base, "SELECT 1", NULL, 0);
    bool ok = r && db_next(r) && db_int(r, 0) == 1;
    db_rows_free(r);
    if (ok) {
        conn_release(c);
        return 0;
    }
    bool lost = c->broken;
    snprintf(reason, n, "database does not answer: %s", db_errmsg(&c->base));
    conn_release(c);
    /* A pooled connection that died unnoticed says little about the server now (the failure
     * retired the other old ones): ask once more, on a connection opened for it. */
    return lost && !retried ? ping_once(db, reason, n, true) : -1;
}

static int pg_ping(struct db *bdb, char *reason, size_t n)
{
    return ping_once((struct pg_db *)bdb, reason, n, false);
}

static void pg_free(struct pg_db *db)
{
    pthread_mutex_destroy(&db->mux_mu);
    pthread_cond_destroy(&db->freed);
    pthread_mutex_destroy(&db->mu);
    free(db->url);
    free(db->where);
    free(db->password);
    free(db);
}

static void pg_close(struct db *bdb)
{
    struct pg_db *db = (struct pg_db *)bdb;
    /* No thread uses the database any more: stop the shared connections' readers (a
     * statement still queued is dropped unanswered: close only after the server stopped);
     * their connections are closed below with the rest of the pool. */
    pthread_mutex_lock(&db->mux_mu);
    for (int i = 0; i < db->nmux; i++) {
        db->mux[i]->stop = true;
        mux_wake(db->mux[i]);
    }
    pthread_mutex_unlock(&db->mux_mu);
    for (int i = 0; i < db->nmux; i++) {
        struct mux_conn *m = db->mux[i];
        pthread_join(m->reader, NULL);
        close(m->wake_fd);
        while (m->head)
            seg_free(seg_pop(m));
        while (m->ready) {
            struct mux_seg *next = m->ready->next;
            seg_free(m->ready);
            m->ready = next;
        }
        free(m);
    }
    db->nmux = 0;
    while (db->mux_dead) {
        struct mux_conn *m = db->mux_dead;
        db->mux_dead = m->next_dead;
        mux_free(m);
    }
    pthread_mutex_lock(&db->mu);
    struct pg_conn *c = db->all;
    db->all = NULL;
    db->idle = NULL;
    db->nopen = 0;
    pthread_mutex_unlock(&db->mu);
    while (c) {
        struct pg_conn *next = c->next;
        conn_free(c);
        c = next;
    }
    pg_free(db);
}

static const char *opt_val(const PQconninfoOption *o, const char *key)
{
    for (; o && o->keyword; o++)
        if (strcmp(o->keyword, key) == 0)
            return o->val && *o->val ? o->val : NULL;
    return NULL;
}

int db_pg_open(struct db **out, const char *url, const struct db_options *opt, char *err,
               size_t errlen)
{
    *out = NULL;
    if (!PQisthreadsafe()) {
        snprintf(err, errlen, "libpq was built without thread support");
        return -1;
    }
    char *perr = NULL;
    PQconninfoOption *info = PQconninfoParse(url, &perr);
    if (!info) {
        /* libpq quotes the offending part, which may be the password: keep only its words. */
        char line[200];
        one_line(line, sizeof(line), perr ? perr : "out of memory", NULL);
        line[strcspn(line, ":\"")] = '\0';
        snprintf(err, errlen, "invalid PostgreSQL URL: %s", line);
        PQfreemem(perr);
        return -1;
    }
    const char *user = opt_val(info, "user"), *host = opt_val(info, "host");
    const char *port = opt_val(info, "port"), *dbname = opt_val(info, "dbname");
    const char *password = opt_val(info, "password");
    char where[512];
    snprintf(where, sizeof(where), "%s%s%s:%s/%s", user ? user : "", user ? "@" : "",
             host ? host : "localhost", port ? port : "5432",
             dbname ? dbname
             : user ? user
                    : "");

    struct pg_db *db = xcalloc(1, sizeof(*db));
    db->base.drv = &pg_driver;
    db->url = xstrdup(url);
    db->where = xstrdup(where);
    db->password = password ? xstrdup(password) : NULL;
    PQconninfoFree(info);
    db->pool_max = opt->pool_max > 0 ? opt->pool_max : 1;
    db->pool_timeout_ms = opt->pool_timeout_ms;
    db->connect_timeout_s = opt->connect_timeout_s > 0 ? opt->connect_timeout_s : 10;
    db->idle_timeout_s = opt->idle_timeout_s;
    db->statement_timeout_ms = opt->statement_timeout_ms;
    db->mux_max = ZY_MIN(ZY_MIN(opt->pipeline, db->pool_max - 1), MUX_MAX);
    pthread_mutex_init(&db->mux_mu, NULL);
    pthread_mutex_init(&db->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&db->freed, &ca);
    pthread_condattr_destroy(&ca);

    char tmp[512];
    bool exhausted;
    struct pg_conn *c = pool_get(db, 0, db->connect_timeout_s, tmp, sizeof(tmp), &exhausted);
    if (!c) {
        snprintf(err, errlen, "%s", tmp);
        pg_free(db);
        return -1;
    }
    conn_release(c); /* the first connection waits in the pool */
    *out = &db->base;
    return 0;
}

static const struct db_driver pg_driver = {
    .dialect = DB_POSTGRES,
    .close = pg_close,
    .ping = pg_ping,
    .acquire = pg_acquire,
    .release = pg_release,
    .exec = pg_exec,
    .exec_script = pg_exec_script,
    .query = pg_query,
    .next = pg_next,
    .ncols = pg_ncols,
    .colname = pg_colname,
    .is_null = pg_is_null,
    .text = pg_text,
    .textlen = pg_textlen,
    .int64 = pg_int,
    .dbl = pg_dbl,
    .boolean = pg_boolean,
    .rows_free = pg_rows_free,
    .begin = pg_begin,
    .commit = pg_commit,
    .rollback = pg_rollback,
    .in_transaction = pg_in_transaction,
    .query_async = pg_query_async,
};
