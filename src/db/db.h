/*
 * db.h — the database interface used by repositories, migrations and health checks.
 *
 * Owns the driver-neutral API: opening a database from a URL, per-thread connections,
 * statements with $1..$n parameters (the same SQL text on every driver), row iteration with
 * typed column access, transactions, the tenant context that row-level security keys on,
 * error classification and readiness checks. Drivers (src/db/sqlite.c, src/db/pg.c) sit behind
 * one vtable; code that includes db.h never sees which one is in use except through
 * db_dialect().
 *
 * Threads: a struct db is shared by all threads. A struct db_conn is used by one thread at a
 * time: acquire it, use it, release it. Strings returned by db_text()/db_colname() stay valid
 * until the next db_next() or db_rows_free() on the same rows.
 *
 * Values are the same on both drivers: timestamps come back as ISO-8601 UTC text with
 * milliseconds ("2026-11-25T17:45:49.123Z"), uuid and JSON as text, booleans through db_bool()
 * (db_text() of a PostgreSQL boolean is "true"/"false", of a SQLite one "1"/"0").
 *
 * Errors: functions returning int give 0 (or a count) on success and -1 on failure; functions
 * returning pointers give NULL. After a failure on a connection, db_errmsg() says what went
 * wrong and db_errkind() classifies it (DB_ERR_UNIQUE → 409, DB_ERR_UNAVAILABLE → 503...).
 */
#ifndef ZYGO_DB_H
#define ZYGO_DB_H

#include "lib/common.h"

struct arena;
struct db;
struct db_conn;
struct db_rows;

enum db_dialect { DB_SQLITE, DB_POSTGRES };

enum db_errkind {
    DB_ERR_NONE = 0,
    DB_ERR_UNIQUE,      /* unique or primary-key violation (API: 409 RESOURCE_CONFLICT) */
    DB_ERR_FOREIGN_KEY, /* referenced row missing, or still referenced */
    DB_ERR_CHECK,       /* CHECK constraint or a value of the wrong type */
    DB_ERR_NOT_NULL,    /* NULL in a NOT NULL column */
    DB_ERR_BUSY,        /* locked by another writer past the busy timeout; PostgreSQL also:
                           serialization failure, deadlock, lock not available, statement
                           timeout; retry later */
    DB_ERR_UNAVAILABLE, /* cannot open, I/O error, disk full, file gone, server gone,
                           connection pool exhausted (API: 503) */
    DB_ERR_PERMISSION,  /* PostgreSQL: privilege missing, or a row-level security policy refused
                           the row (a write for another tenant than the one set): a repository or
                           deployment bug, never the client's fault (API: 500) */
    DB_ERR_OTHER,       /* SQL error, misuse, anything else (API: 500) */
};

/* ---- parameters ------------------------------------------------------------------------ */

enum db_ptype { DB_P_NULL, DB_P_TEXT, DB_P_INT, DB_P_DOUBLE, DB_P_BOOL };

/* One value bound to $k. Text is not copied: it must stay valid for the call that binds it. */
struct db_param {
    enum db_ptype type;
    const char *text;
    size_t len;
    int64_t i; /* DB_P_INT, DB_P_BOOL (0/1) */
    double d;
};

static inline struct db_param db_param_null(void)
{
    return (struct db_param){.type = DB_P_NULL};
}

/* A NULL string binds SQL NULL, so optional columns need no special case. */
static inline struct db_param db_param_textn(const char *s, size_t len)
{
    if (!s)
        return db_param_null();
    return (struct db_param){.type = DB_P_TEXT, .text = s, .len = len};
}

static inline struct db_param db_param_text(const char *s)
{
    return db_param_textn(s, s ? strlen(s) : 0);
}

static inline struct db_param db_param_int(int64_t v)
{
    return (struct db_param){.type = DB_P_INT, .i = v};
}

static inline struct db_param db_param_double(double v)
{
    return (struct db_param){.type = DB_P_DOUBLE, .d = v};
}

static inline struct db_param db_param_bool(bool v)
{
    return (struct db_param){.type = DB_P_BOOL, .i = v ? 1 : 0};
}

#define DB_NULL db_param_null()
#define DB_TEXT(s) db_param_text(s)
#define DB_TEXTN(s, n) db_param_textn((s), (n))
#define DB_INT(v) db_param_int(v)
#define DB_DOUBLE(v) db_param_double(v)
#define DB_BOOL(v) db_param_bool(v)

/*
 * Parameter list and its count for db_exec/db_query, e.g.
 *   db_exec(c, "UPDATE users SET status = $2 WHERE id = $1", DB_ARGS(DB_TEXT(id), DB_TEXT(st)));
 * (sizeof does not evaluate its operand, so each constructor runs once.)
 */
#define DB_ARGS(...)                                                                               \
    (const struct db_param[]){__VA_ARGS__},                                                        \
        (sizeof((const struct db_param[]){__VA_ARGS__}) / sizeof(struct db_param))
#define DB_NOARGS NULL, 0

/* ---- opening --------------------------------------------------------------------------- */

/* Zero means the default everywhere; the PostgreSQL ones are ignored by SQLite. */
struct db_options {
    int busy_timeout_ms;      /* SQLite: wait this long for a lock (0: default 5000) */
    int pool_max;             /* PostgreSQL: connections in the pool (0: default 10) */
    int pool_timeout_ms;      /* PostgreSQL: how long db_acquire waits for a free pooled
                                 connection before failing (0: 5000; negative: no wait) */
    int connect_timeout_s;    /* PostgreSQL: to open one connection (0: 10) */
    int idle_timeout_s;       /* PostgreSQL: pooled connections idle longer are closed
                                 (0: 20; negative: never) */
    int statement_timeout_ms; /* PostgreSQL: statement_timeout of every connection
                                 (0: 30000; negative: none) */
    int pipeline;             /* PostgreSQL: connections of the pool shared, in pipeline mode,
                                 by db_query_async (0: none, db_query_async always declines;
                                 at most pool_max - 1, so db_acquire always finds one) */
};

/*
 * url: "sqlite:PATH", "sqlite://PATH", a plain file path, or NULL/"" for data/zygo.db. The
 * parent directory of a SQLite file is created when missing. "postgres://" and
 * "postgresql://" select PostgreSQL: the URL goes to libpq as it is (user, password, host,
 * port, database, and parameters such as sslmode). The database is opened and checked (one
 * connection made) before this returns; on failure *out is NULL and err holds the reason (never
 * the URL's password).
 */
int db_open(struct db **out, const char *url, char *err, size_t errlen);
int db_open_ex(struct db **out, const char *url, const struct db_options *opt, char *err,
               size_t errlen);
/* Closes every connection. No thread may be using the database any more. NULL is a no-op. */
void db_close(struct db *db);
enum db_dialect db_dialect(const struct db *db);
/* "sqlite" or "postgres": the directory name of the dialect's migrations. */
const char *db_dialect_name(enum db_dialect d);

/*
 * readiness: 0 when a connection answers SELECT 1 and (SQLite) the file at the path is still
 * the one opened; else -1 with a human reason. PostgreSQL: a pooled connection (never waiting
 * for one: with the pool fully busy, the server answering a connection probe is enough), and a
 * server that is down is reported within a few seconds.
 */
int db_ping(struct db *db, char *reason, size_t n);

/* ---- connections ----------------------------------------------------------------------- */

/*
 * SQLite: the calling thread's own connection, opened on first use and kept until the thread
 * exits or db_close(); acquiring again on the same thread returns the same connection.
 * Every acquire needs one release. Releasing the last hold with a transaction still open
 * rolls it back. Release on the acquiring thread: a release from another thread is safe but
 * leaves that rollback to the owner's next acquire (SQLite connections are not shared).
 *
 * PostgreSQL: a connection of the pool (each acquire a different one, usable from any thread,
 * one at a time): an idle one, else a new one while fewer than pool_max are open, else it
 * waits up to pool_timeout_ms and fails with "connection pool exhausted". Release rolls back
 * a transaction left open, clears the tenant context and returns it to the pool; a connection
 * whose server went away is closed instead, and later acquires open fresh ones.
 *
 * NULL with err on failure (treat as DB_ERR_UNAVAILABLE).
 */
struct db_conn *db_acquire(struct db *db, char *err, size_t errlen);
void db_release(struct db_conn *c);
/* db_acquire, with db_release hooked to arena_free (one per request). */
struct db_conn *db_acquire_arena(struct db *db, struct arena *a, char *err, size_t errlen);
enum db_dialect db_conn_dialect(const struct db_conn *c);

/* ---- statements ------------------------------------------------------------------------ */

/*
 * One statement with $1..$n parameters; n must equal the highest $k used. Returns the number
 * of rows inserted/updated/deleted (0 for other statements), or -1.
 *
 * PostgreSQL types the parameters as follows: TEXT and NULL go untyped, so the server reads
 * them as what the context wants (a uuid, jsonb or timestamptz column takes its text form;
 * a bare "$1 IS NULL" has no context: write CAST($1 AS text), which SQLite reads too); INT
 * goes as bigint, DOUBLE as double precision, BOOL as boolean — so a boolean column takes
 * DB_BOOL (DB_INT is refused with DB_ERR_CHECK there, as SQLite's CHECK refuses 2). Text may
 * not contain NUL bytes (DB_ERR_CHECK). Statements are prepared once per connection and
 * cached (DB_PG_STMT_CACHE).
 */
int db_exec(struct db_conn *c, const char *sql, const struct db_param *p, size_t n);
/* Several statements separated by ';' and no parameters (migrations). 0 or -1. */
int db_exec_script(struct db_conn *c, const char *sql);

/*
 * Runs a statement that returns rows (SELECT, ... RETURNING). The statement has executed when
 * this returns: constraint errors of INSERT ... RETURNING come back here as NULL. Iterate
 * with db_next(); free with db_rows_free() before releasing the connection.
 */
struct db_rows *db_query(struct db_conn *c, const char *sql, const struct db_param *p, size_t n);
/* Moves to the next row; false at the end or on error (then db_rows_error() is -1). */
bool db_next(struct db_rows *r);
int db_rows_error(const struct db_rows *r);
int db_ncols(const struct db_rows *r);
const char *db_colname(const struct db_rows *r, int i);
bool db_is_null(const struct db_rows *r, int i);
/* Column i of the current row; SQL NULL gives NULL / 0 / 0.0 / false. */
const char *db_text(const struct db_rows *r, int i);
size_t db_textlen(const struct db_rows *r, int i);
/* Column i copied into out (at most n-1 bytes, always terminated); SQL NULL gives "". */
void db_text_copy(const struct db_rows *r, int i, char *out, size_t n);
/* Column i as a new string (free() it); SQL NULL gives NULL. */
char *db_text_dup(const struct db_rows *r, int i);
int64_t db_int(const struct db_rows *r, int i);
double db_double(const struct db_rows *r, int i);
bool db_bool(const struct db_rows *r, int i);
void db_rows_free(struct db_rows *r);

/* ---- statements that do not block (PostgreSQL) ------------------------------------------ */

/*
 * done(arg, rows, kind, errmsg): rows of the statement's result (iterate, then db_rows_free
 * before returning), or NULL with the error's kind and message.
 */
typedef void (*db_async_fn)(void *arg, struct db_rows *rows, enum db_errkind kind,
                            const char *errmsg);
/*
 * Runs one statement outside any transaction, for tenant (NULL: none; row-level security as
 * db_set_tenant) or with the bypass, without waiting for it: done is called exactly once,
 * later, on another thread (the reader of the shared connection it went to), in the order
 * statements were queued there. 0 when queued; -1 when it was not (SQLite, the pipeline option
 * off, no shared connection usable now, an argument the blocking way must refuse): run it with
 * db_query then. For reads that need nothing of a held connection; the server answers
 * requests this way without holding a worker thread per database wait.
 */
int db_query_async(struct db *db, const char *tenant, bool bypass, const char *sql,
                   const struct db_param *p, size_t n, db_async_fn done, void *arg);
/* How many statements db_query_async has answered so far (0 on SQLite). */
uint64_t db_async_answered(const struct db *db);

/* ---- tenant context (row-level security) ----------------------------------------------- */

/*
 * The tenant a connection works for, until changed or db_release() (which clears both
 * settings, so a pooled connection never carries a tenant into the next request).
 *
 * PostgreSQL: the session settings app.tenant_id / app.rls_bypass, which the row-level
 * security policies of every tenant-scoped table read (migrations/postgres/0001_init.sql):
 * with a tenant set only its rows are visible and writable, with none set no row is, and a
 * write for another tenant fails with DB_ERR_PERMISSION. The settings are sent before the
 * next statement that runs with a different value, so setting the same tenant again costs
 * nothing. SQLite has no row-level security: the values are only stored (db_tenant()), and
 * the tenant filter every repository query carries is the wall there, as it is the first one
 * on PostgreSQL.
 *
 * tenant_id must be a UUID (stored lowercase); NULL or "" clears it. -1 (DB_ERR_CHECK) when
 * it is not a UUID, and then no tenant is set.
 */
int db_set_tenant(struct db_conn *c, const char *tenant_id);
/*
 * The explicit bypass for global-admin and system work (jobs, migrations): every row of every
 * tenant-scoped table, whatever the tenant set. Off again after db_release().
 */
int db_set_rls_bypass(struct db_conn *c, bool on);
/* The tenant set on the connection, or NULL. */
const char *db_tenant(const struct db_conn *c);
bool db_rls_bypass(const struct db_conn *c);

/* ---- transactions ---------------------------------------------------------------------- */

/*
 * SQLite: BEGIN IMMEDIATE (the write lock is taken now, so the transaction cannot fail later
 * for lack of it). PostgreSQL: BEGIN (read committed); after a statement failed inside it,
 * commit fails and reports that statement's error. No nesting. A failed commit rolls back;
 * rollback outside a transaction is a no-op, so cleanup paths may call it unconditionally.
 */
int db_begin(struct db_conn *c);
int db_commit(struct db_conn *c);
int db_rollback(struct db_conn *c);
bool db_in_transaction(struct db_conn *c);

/* ---- errors ---------------------------------------------------------------------------- */

/* The last failure on this connection ("" after a success). */
const char *db_errmsg(const struct db_conn *c);
enum db_errkind db_errkind(const struct db_conn *c);
/* "unique", "foreign_key", ... for logs. */
const char *db_errkind_name(enum db_errkind k);

/* ---- driver interface: only for the files in src/db that define ZYGO_DB_DRIVER ---------- */
#ifdef ZYGO_DB_DRIVER

struct db_driver {
    enum db_dialect dialect;
    void (*close)(struct db *db);
    int (*ping)(struct db *db, char *reason, size_t n);
    struct db_conn *(*acquire)(struct db *db, char *err, size_t errlen);
    void (*release)(struct db_conn *c);
    int (*exec)(struct db_conn *c, const char *sql, const struct db_param *p, size_t n);
    int (*exec_script)(struct db_conn *c, const char *sql);
    struct db_rows *(*query)(struct db_conn *c, const char *sql, const struct db_param *p,
                             size_t n);
    bool (*next)(struct db_rows *r);
    int (*ncols)(const struct db_rows *r);
    const char *(*colname)(const struct db_rows *r, int i);
    bool (*is_null)(const struct db_rows *r, int i);
    const char *(*text)(const struct db_rows *r, int i);
    size_t (*textlen)(const struct db_rows *r, int i);
    int64_t (*int64)(const struct db_rows *r, int i);
    double (*dbl)(const struct db_rows *r, int i);
    bool (*boolean)(const struct db_rows *r, int i);
    void (*rows_free)(struct db_rows *r);
    int (*begin)(struct db_conn *c);
    int (*commit)(struct db_conn *c);
    int (*rollback)(struct db_conn *c);
    bool (*in_transaction)(struct db_conn *c);
    int (*query_async)(struct db *db, const char *tenant, bool bypass, const char *sql,
                       const struct db_param *p, size_t n, db_async_fn done, void *arg);
};

/* Each driver's own structs start with these. */
struct db {
    const struct db_driver *drv;
    uint64_t async_answered; /* db_query_async statements answered (atomic) */
};

struct db_conn {
    struct db *db;
    enum db_errkind errkind;
    char errmsg[512];
    char tenant[40]; /* lowercase UUID, "" for none (db_set_tenant) */
    bool rls_bypass;
};

struct db_rows {
    struct db_conn *conn;
    bool failed; /* iteration stopped on an error */
};

/* Records a failure on the connection (the message is truncated to fit). */
void db_conn_seterr(struct db_conn *c, enum db_errkind k, const char *fmt, ...) ZY_PRINTF(3, 4);
/* Clears the tenant context: drivers call it when a connection is handed back. */
void db_conn_reset_context(struct db_conn *c);

/* FNV-1a of n bytes: the key of the drivers' prepared-statement caches. */
uint64_t db_sql_hash(const char *s, size_t n);

/* Room for the text of any non-text parameter (db_param_scalar_text). */
#define DB_PARAM_SCALAR_LEN 32
/*
 * The text form of an INT, DOUBLE or BOOL parameter as SQL literals read it: "-12",
 * "2.5" (17 significant digits, so the double round-trips), "NaN", "Infinity", "true". Returns
 * its length; 0 (buf "") for TEXT and NULL parameters, whose text is their own.
 */
size_t db_param_scalar_text(const struct db_param *p, char buf[DB_PARAM_SCALAR_LEN]);

#endif /* ZYGO_DB_DRIVER */

#endif
