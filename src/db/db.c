/*
 * db.c — the driver-neutral half of db.h: URL selection of the driver, dispatch through the
 * driver vtable, the tenant context, and what the drivers share (error bookkeeping, the SQL
 * hash of their statement caches, the text form of parameters).
 */
#define ZYGO_DB_DRIVER 1
#include "lib/common.h"

#include "db/db.h"
#include "db/pg.h"
#include "db/sqlite.h"
#include "lib/arena.h"
#include "lib/uuid.h"

#include <inttypes.h>
#include <math.h>

#define DB_DEFAULT_PATH "data/zygo.db"
#define DB_DEFAULT_BUSY_MS 5000
#define DB_DEFAULT_POOL_MAX 10
#define DB_DEFAULT_POOL_TIMEOUT_MS 5000
#define DB_DEFAULT_CONNECT_TIMEOUT_S 10
#define DB_DEFAULT_IDLE_TIMEOUT_S 20
#define DB_DEFAULT_STATEMENT_TIMEOUT_MS 30000

static bool has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void seterr(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

int db_open(struct db **out, const char *url, char *err, size_t errlen)
{
    return db_open_ex(out, url, NULL, err, errlen);
}

int db_open_ex(struct db **out, const char *url, const struct db_options *opt, char *err,
               size_t errlen)
{
    *out = NULL;
    /* Zero takes the default; negative values pass through (the driver reads them as "none"). */
    struct db_options o = {
        .busy_timeout_ms = DB_DEFAULT_BUSY_MS,
        .pool_max = DB_DEFAULT_POOL_MAX,
        .pool_timeout_ms = DB_DEFAULT_POOL_TIMEOUT_MS,
        .connect_timeout_s = DB_DEFAULT_CONNECT_TIMEOUT_S,
        .idle_timeout_s = DB_DEFAULT_IDLE_TIMEOUT_S,
        .statement_timeout_ms = DB_DEFAULT_STATEMENT_TIMEOUT_MS,
    };
    if (opt && opt->busy_timeout_ms > 0)
        o.busy_timeout_ms = opt->busy_timeout_ms;
    if (opt && opt->pool_max > 0)
        o.pool_max = opt->pool_max;
    if (opt && opt->pool_timeout_ms != 0)
        o.pool_timeout_ms = opt->pool_timeout_ms;
    if (opt && opt->connect_timeout_s > 0)
        o.connect_timeout_s = opt->connect_timeout_s;
    if (opt && opt->idle_timeout_s != 0)
        o.idle_timeout_s = opt->idle_timeout_s;
    if (opt && opt->statement_timeout_ms != 0)
        o.statement_timeout_ms = opt->statement_timeout_ms;
    if (opt && opt->pipeline > 0)
        o.pipeline = opt->pipeline;

    const char *path;
    if (!url || !*url) {
        path = DB_DEFAULT_PATH;
    } else if (has_prefix(url, "postgres://") || has_prefix(url, "postgresql://")) {
        return db_pg_open(out, url, &o, err, errlen);
    } else if (has_prefix(url, "sqlite:")) {
        path = url + strlen("sqlite:");
        if (has_prefix(path, "//"))
            path += 2; /* sqlite://rel/path, sqlite:///abs/path */
    } else if (strstr(url, "://")) {
        /* Print only the scheme: the rest may hold a password. */
        const char *end = strstr(url, "://");
        if (err && errlen)
            snprintf(err, errlen, "unsupported database URL scheme \"%.*s\"",
                     (int)ZY_MIN(end - url, 32), url);
        return -1;
    } else {
        path = url;
    }
    if (!*path) {
        seterr(err, errlen, "database URL names no SQLite file");
        return -1;
    }
    if (strcmp(path, ":memory:") == 0) {
        /* Each thread has its own connection, so each would see its own empty database. */
        seterr(err, errlen, "in-memory SQLite is not supported; give a file path");
        return -1;
    }
    return db_sqlite_open(out, path, &o, err, errlen);
}

void db_close(struct db *db)
{
    if (db)
        db->drv->close(db);
}

enum db_dialect db_dialect(const struct db *db)
{
    return db->drv->dialect;
}

const char *db_dialect_name(enum db_dialect d)
{
    return d == DB_POSTGRES ? "postgres" : "sqlite";
}

int db_ping(struct db *db, char *reason, size_t n)
{
    if (!db) {
        seterr(reason, n, "database is not open");
        return -1;
    }
    return db->drv->ping(db, reason, n);
}

struct db_conn *db_acquire(struct db *db, char *err, size_t errlen)
{
    return db->drv->acquire(db, err, errlen);
}

void db_release(struct db_conn *c)
{
    if (c)
        c->db->drv->release(c);
}

static void release_hook(void *c)
{
    db_release(c);
}

struct db_conn *db_acquire_arena(struct db *db, struct arena *a, char *err, size_t errlen)
{
    struct db_conn *c = db_acquire(db, err, errlen);
    if (c)
        arena_on_free(a, release_hook, c);
    return c;
}

enum db_dialect db_conn_dialect(const struct db_conn *c)
{
    return c->db->drv->dialect;
}

static void clearerr_conn(struct db_conn *c)
{
    c->errkind = DB_ERR_NONE;
    c->errmsg[0] = '\0';
}

void db_conn_seterr(struct db_conn *c, enum db_errkind k, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
    va_end(ap);
    c->errkind = k;
}

void db_conn_reset_context(struct db_conn *c)
{
    c->tenant[0] = '\0';
    c->rls_bypass = false;
}

uint64_t db_sql_hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

size_t db_param_scalar_text(const struct db_param *p, char buf[DB_PARAM_SCALAR_LEN])
{
    int k = 0;
    switch (p->type) {
    case DB_P_INT:
        k = snprintf(buf, DB_PARAM_SCALAR_LEN, "%" PRId64, p->i);
        break;
    case DB_P_BOOL:
        k = snprintf(buf, DB_PARAM_SCALAR_LEN, "%s", p->i ? "true" : "false");
        break;
    case DB_P_DOUBLE:
        /* printf's "nan"/"inf" are not what float8 input expects. */
        if (isnan(p->d))
            k = snprintf(buf, DB_PARAM_SCALAR_LEN, "NaN");
        else if (isinf(p->d))
            k = snprintf(buf, DB_PARAM_SCALAR_LEN, "%sInfinity", p->d < 0 ? "-" : "");
        else
            k = snprintf(buf, DB_PARAM_SCALAR_LEN, "%.17g", p->d);
        break;
    case DB_P_TEXT:
    case DB_P_NULL:
    default:
        buf[0] = '\0';
        break;
    }
    return k > 0 ? (size_t)k : 0;
}

/* ---- tenant context ------------------------------------------------------------------------ */

int db_set_tenant(struct db_conn *c, const char *tenant_id)
{
    clearerr_conn(c);
    c->tenant[0] = '\0'; /* a refused value must not leave the previous tenant in force */
    if (!tenant_id || !*tenant_id)
        return 0;
    char norm[UUID_STRLEN + 1];
    if (!uuid_normalize(tenant_id, norm)) {
        db_conn_seterr(c, DB_ERR_CHECK, "tenant id is not a UUID");
        return -1;
    }
    memcpy(c->tenant, norm, sizeof(norm));
    return 0;
}

int db_set_rls_bypass(struct db_conn *c, bool on)
{
    clearerr_conn(c);
    c->rls_bypass = on;
    return 0;
}

const char *db_tenant(const struct db_conn *c)
{
    return c->tenant[0] ? c->tenant : NULL;
}

bool db_rls_bypass(const struct db_conn *c)
{
    return c->rls_bypass;
}

/* ---- statements ---------------------------------------------------------------------------- */

int db_exec(struct db_conn *c, const char *sql, const struct db_param *p, size_t n)
{
    clearerr_conn(c);
    return c->db->drv->exec(c, sql, p, n);
}

int db_exec_script(struct db_conn *c, const char *sql)
{
    clearerr_conn(c);
    return c->db->drv->exec_script(c, sql);
}

int db_query_async(struct db *db, const char *tenant, bool bypass, const char *sql,
                   const struct db_param *p, size_t n, db_async_fn done, void *arg)
{
    if (!db->drv->query_async)
        return -1;
    char norm[UUID_STRLEN + 1] = "";
    if (tenant && *tenant && !uuid_normalize(tenant, norm))
        return -1;
    return db->drv->query_async(db, norm, bypass, sql, p, n, done, arg);
}

uint64_t db_async_answered(const struct db *db)
{
    return __atomic_load_n(&db->async_answered, __ATOMIC_RELAXED);
}

struct db_rows *db_query(struct db_conn *c, const char *sql, const struct db_param *p, size_t n)
{
    clearerr_conn(c);
    return c->db->drv->query(c, sql, p, n);
}

bool db_next(struct db_rows *r)
{
    return r && !r->failed && r->conn->db->drv->next(r);
}

int db_rows_error(const struct db_rows *r)
{
    return !r || r->failed ? -1 : 0;
}

int db_ncols(const struct db_rows *r)
{
    return r->conn->db->drv->ncols(r);
}

const char *db_colname(const struct db_rows *r, int i)
{
    return r->conn->db->drv->colname(r, i);
}

bool db_is_null(const struct db_rows *r, int i)
{
    return r->conn->db->drv->is_null(r, i);
}

const char *db_text(const struct db_rows *r, int i)
{
    return r->conn->db->drv->text(r, i);
}

size_t db_textlen(const struct db_rows *r, int i)
{
    return r->conn->db->drv->textlen(r, i);
}

void db_text_copy(const struct db_rows *r, int i, char *out, size_t n)
{
    snprintf(out, n, "%s", db_is_null(r, i) ? "" : db_text(r, i));
}

char *db_text_dup(const struct db_rows *r, int i)
{
    return db_is_null(r, i) ? NULL : xstrndup(db_text(r, i), db_textlen(r, i));
}

int64_t db_int(const struct db_rows *r, int i)
{
    return r->conn->db->drv->int64(r, i);
}

double db_double(const struct db_rows *r, int i)
{
    return r->conn->db->drv->dbl(r, i);
}

bool db_bool(const struct db_rows *r, int i)
{
    return r->conn->db->drv->boolean(r, i);
}

void db_rows_free(struct db_rows *r)
{
    if (r)
        r->conn->db->drv->rows_free(r);
}

int db_begin(struct db_conn *c)
{
    clearerr_conn(c);
    return c->db->drv->begin(c);
}

int db_commit(struct db_conn *c)
{
    clearerr_conn(c);
    return c->db->drv->commit(c);
}

int db_rollback(struct db_conn *c)
{
    clearerr_conn(c);
    return c->db->drv->rollback(c);
}

bool db_in_transaction(struct db_conn *c)
{
    return c->db->drv->in_transaction(c);
}

const char *db_errmsg(const struct db_conn *c)
{
    return c ? c->errmsg : "no database connection";
}

enum db_errkind db_errkind(const struct db_conn *c)
{
    return c ? c->errkind : DB_ERR_UNAVAILABLE;
}

const char *db_errkind_name(enum db_errkind k)
{
    switch (k) {
    case DB_ERR_NONE:
        return "none";
    case DB_ERR_UNIQUE:
        return "unique";
    case DB_ERR_FOREIGN_KEY:
        return "foreign_key";
    case DB_ERR_CHECK:
        return "check";
    case DB_ERR_NOT_NULL:
        return "not_null";
    case DB_ERR_BUSY:
        return "busy";
    case DB_ERR_UNAVAILABLE:
        return "unavailable";
    case DB_ERR_PERMISSION:
        return "permission";
    case DB_ERR_OTHER:
        break;
    }
    return "other";
}
