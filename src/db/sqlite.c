/*
 * sqlite.c — the SQLite driver: see sqlite.h for what it owns, db.h for the contract.
 *
 * Why one connection per thread: SQLite connections are cheap, a connection must not be used
 * by two threads at once, and WAL lets each thread's connection read while one writes, so a
 * pool would only add waiting. The connection lives in a pthread key of its struct db; the key's
 * destructor closes it when the thread exits, db_close() closes those of live threads.
 */
#define ZYGO_DB_DRIVER 1
#include "lib/common.h"

#include "db/sqlite.h"

#include <ctype.h>
#include <limits.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <sys/stat.h>
#include <sys/types.h>

/* A prepared statement kept for reuse, keyed by the SQL text as the caller wrote it. */
struct sq_slot {
    char *sql;
    uint64_t hash;
    sqlite3_stmt *st;
    uint64_t used; /* tick of last use, for LRU eviction */
    bool busy;     /* handed out and not yet reset */
};

struct sq_db;

struct sq_conn {
    struct db_conn base;
    struct sq_db *owner;
    sqlite3 *h;
    struct sq_conn *next; /* in owner->conns */
    atomic_int holds;     /* acquires not yet released (released maybe from another thread) */
    uint64_t tick;
    size_t nslots;
    struct sq_slot slots[DB_SQLITE_STMT_CACHE];
};

struct sq_db {
    struct db base;
    char *path;    /* as given, for messages */
    char *abspath; /* resolved at open, so a later chdir does not break db_ping */
    dev_t dev;     /* identity of the file opened, to notice removal or replacement */
    ino_t ino;
    int busy_ms;
    pthread_key_t key; /* this thread's struct sq_conn */
    pthread_mutex_t mu;
    struct sq_conn *conns; /* every open connection, guarded by mu */
};

enum { ROWS_FIRST, ROWS_ON_ROW, ROWS_DONE };

struct sq_rows {
    struct db_rows base;
    sqlite3_stmt *st;
    struct sq_slot *slot; /* NULL: a private statement, finalized on free */
    int state;
};

static const struct db_driver sqlite_driver;

/* ---- errors ---------------------------------------------------------------------------- */

static enum db_errkind classify(int rc)
{
    switch (rc) {
    case SQLITE_CONSTRAINT_UNIQUE:
    case SQLITE_CONSTRAINT_PRIMARYKEY:
    case SQLITE_CONSTRAINT_ROWID:
        return DB_ERR_UNIQUE;
    case SQLITE_CONSTRAINT_FOREIGNKEY:
        return DB_ERR_FOREIGN_KEY;
    case SQLITE_CONSTRAINT_NOTNULL:
        return DB_ERR_NOT_NULL;
    default:
        break;
    }
    switch (rc & 0xff) {
    case SQLITE_CONSTRAINT: /* CHECK, STRICT datatype, trigger RAISE */
        return DB_ERR_CHECK;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return DB_ERR_BUSY;
    case SQLITE_CANTOPEN:
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_NOTADB:
    case SQLITE_CORRUPT:
    case SQLITE_READONLY: /* includes READONLY_DBMOVED: the file was unlinked */
    case SQLITE_PROTOCOL:
    case SQLITE_PERM:
        return DB_ERR_UNAVAILABLE;
    default:
        return DB_ERR_OTHER;
    }
}

static void seterr_sqlite(struct sq_conn *c, int rc)
{
    db_conn_seterr(&c->base, classify(rc), "%s", sqlite3_errmsg(c->h));
}

/* ---- SQL text ---------------------------------------------------------------------------- */

static uint64_t fnv1a(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static bool ident_char(char ch)
{
    return isalnum((unsigned char)ch) || ch == '_' || ch == '$' || (unsigned char)ch >= 0x80;
}

/*
 * $1..$n → ?1..?n, the same length. SQLite would take "$1" as a *named* parameter numbered by
 * first appearance, so "$2 ... $1" would bind backwards without this. String literals, quoted
 * identifiers, comments and identifiers containing '$' are left alone.
 */
static char *translate_params(const char *sql, size_t len)
{
    char *out = xstrndup(sql, len);
    size_t i = 0;
    while (i < len) {
        char ch = out[i];
        if (ch == '\'' || ch == '"' || ch == '`' || ch == '[') {
            char close = ch == '[' ? ']' : ch;
            i++;
            while (i < len && out[i] != close)
                i++;
            i++; /* a doubled quote just reopens: 'it''s' is two adjacent literals here */
        } else if (ch == '-' && i + 1 < len && out[i + 1] == '-') {
            while (i < len && out[i] != '\n')
                i++;
        } else if (ch == '/' && i + 1 < len && out[i + 1] == '*') {
            i += 2;
            while (i + 1 < len && !(out[i] == '*' && out[i + 1] == '/'))
                i++;
            i += 2;
        } else if (ch == '$' && i + 1 < len && isdigit((unsigned char)out[i + 1])) {
            out[i] = '?';
            i++;
        } else if (ident_char(ch)) {
            while (i < len && ident_char(out[i])) /* abc$1 is one identifier */
                i++;
        } else {
            i++;
        }
    }
    return out;
}

/* True when nothing but whitespace, ';' and comments follows the first statement. */
static bool only_trailer(const char *s)
{
    while (*s) {
        if (isspace((unsigned char)*s) || *s == ';') {
            s++;
        } else if (s[0] == '-' && s[1] == '-') {
            while (*s && *s != '\n')
                s++;
        } else if (s[0] == '/' && s[1] == '*') {
            const char *end = strstr(s + 2, "*/");
            if (!end)
                return true; /* an unterminated comment runs to the end */
            s = end + 2;
        } else {
            return false;
        }
    }
    return true;
}

/* ---- statement cache ------------------------------------------------------------------- */

static struct sq_slot *slot_for_new(struct sq_conn *c)
{
    if (c->nslots < DB_SQLITE_STMT_CACHE)
        return &c->slots[c->nslots++];
    struct sq_slot *victim = NULL;
    for (size_t i = 0; i < c->nslots; i++) {
        struct sq_slot *s = &c->slots[i];
        if (!s->busy && (!victim || s->used < victim->used))
            victim = s;
    }
    if (victim) {
        sqlite3_finalize(victim->st);
        free(victim->sql);
        memset(victim, 0, sizeof(*victim));
    }
    return victim;
}

/*
 * A ready statement for sql: from the cache when there, else prepared and cached. When the
 * same SQL is still iterating (nested query) or every slot is busy, a private statement is
 * returned with *slotp NULL. NULL with the error recorded on failure.
 */
static sqlite3_stmt *stmt_get(struct sq_conn *c, const char *sql, struct sq_slot **slotp)
{
    *slotp = NULL;
    size_t len = strlen(sql);
    uint64_t hash = fnv1a(sql, len);
    bool cacheable = true;
    for (size_t i = 0; i < c->nslots; i++) {
        struct sq_slot *s = &c->slots[i];
        if (s->hash == hash && strcmp(s->sql, sql) == 0) {
            if (s->busy) {
                cacheable = false;
                break;
            }
            s->busy = true;
            s->used = ++c->tick;
            *slotp = s;
            return s->st;
        }
    }
    if (len >= INT_MAX) {
        db_conn_seterr(&c->base, DB_ERR_OTHER, "SQL text too long");
        return NULL;
    }
    char *tsql = translate_params(sql, len);
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    int rc = sqlite3_prepare_v3(c->h, tsql, (int)len + 1, SQLITE_PREPARE_PERSISTENT, &st, &tail);
    if (rc != SQLITE_OK) {
        seterr_sqlite(c, rc);
        free(tsql);
        return NULL;
    }
    if (!st) {
        db_conn_seterr(&c->base, DB_ERR_OTHER, "empty SQL statement");
        free(tsql);
        return NULL;
    }
    bool single = only_trailer(tail);
    free(tsql);
    if (!single) {
        sqlite3_finalize(st);
        db_conn_seterr(&c->base, DB_ERR_OTHER,
                       "one SQL statement expected; use db_exec_script for several");
        return NULL;
    }
    struct sq_slot *s = cacheable ? slot_for_new(c) : NULL;
    if (s) {
        s->sql = xstrndup(sql, len);
        s->hash = hash;
        s->st = st;
        s->busy = true;
        s->used = ++c->tick;
    }
    *slotp = s;
    return st;
}

/* Statements go back reset and with bindings cleared, so no parameter text is kept alive. */
static void stmt_put(sqlite3_stmt *st, struct sq_slot *slot)
{
    if (!slot) {
        sqlite3_finalize(st);
        return;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    slot->busy = false;
}

static int bind_params(struct sq_conn *c, sqlite3_stmt *st, const struct db_param *p, size_t n,
                       bool copy)
{
    int want = sqlite3_bind_parameter_count(st);
    if (want < 0 || (size_t)want != n) {
        db_conn_seterr(&c->base, DB_ERR_OTHER, "statement uses %d parameter(s) but %zu were given",
                       want, n);
        return -1;
    }
    sqlite3_destructor_type keep = copy ? SQLITE_TRANSIENT : SQLITE_STATIC;
    for (size_t k = 0; k < n; k++) {
        int idx = (int)k + 1, rc;
        switch (p[k].type) {
        case DB_P_TEXT:
            rc = sqlite3_bind_text64(st, idx, p[k].text, p[k].len, keep, SQLITE_UTF8);
            break;
        case DB_P_INT:
        case DB_P_BOOL:
            rc = sqlite3_bind_int64(st, idx, p[k].i);
            break;
        case DB_P_DOUBLE:
            rc = sqlite3_bind_double(st, idx, p[k].d);
            break;
        case DB_P_NULL:
        default:
            rc = sqlite3_bind_null(st, idx);
            break;
        }
        if (rc != SQLITE_OK) {
            seterr_sqlite(c, rc);
            return -1;
        }
    }
    return 0;
}

/* ---- statements -------------------------------------------------------------------------- */

static int sq_exec(struct db_conn *bc, const char *sql, const struct db_param *p, size_t n)
{
    struct sq_conn *c = (struct sq_conn *)bc;
    struct sq_slot *slot;
    sqlite3_stmt *st = stmt_get(c, sql, &slot);
    if (!st)
        return -1;
    int ret = -1;
    /* Parameters are only read during the steps below, so they need not be copied. */
    if (bind_params(c, st, p, n, false) == 0) {
        sqlite3_int64 before = sqlite3_total_changes64(c->h);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW)
            ;
        if (rc == SQLITE_DONE) {
            /* sqlite3_changes() keeps the previous DML's count across DDL and SELECT. */
            sqlite3_int64 ch =
                sqlite3_total_changes64(c->h) != before ? sqlite3_changes64(c->h) : 0;
            ret = ch > INT_MAX ? INT_MAX : (int)ch;
        } else {
            seterr_sqlite(c, rc);
        }
    }
    stmt_put(st, slot);
    return ret;
}

static int sq_exec_script(struct db_conn *bc, const char *sql)
{
    struct sq_conn *c = (struct sq_conn *)bc;
    char *msg = NULL;
    int rc = sqlite3_exec(c->h, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        db_conn_seterr(bc, classify(sqlite3_extended_errcode(c->h)), "%s",
                       msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
        return -1;
    }
    return 0;
}

static struct db_rows *sq_query(struct db_conn *bc, const char *sql, const struct db_param *p,
                                size_t n)
{
    struct sq_conn *c = (struct sq_conn *)bc;
    struct sq_slot *slot;
    sqlite3_stmt *st = stmt_get(c, sql, &slot);
    if (!st)
        return NULL;
    /* Copied: the caller may iterate after its parameter array is gone. */
    if (bind_params(c, st, p, n, true) != 0) {
        stmt_put(st, slot);
        return NULL;
    }
    /* Run the first step now, as a libpq driver would run the whole query: errors surface here. */
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        seterr_sqlite(c, rc);
        stmt_put(st, slot);
        return NULL;
    }
    struct sq_rows *r = xcalloc(1, sizeof(*r));
    r->base.conn = bc;
    r->st = st;
    r->slot = slot;
    r->state = rc == SQLITE_ROW ? ROWS_FIRST : ROWS_DONE;
    return &r->base;
}

static bool sq_next(struct db_rows *br)
{
    struct sq_rows *r = (struct sq_rows *)br;
    switch (r->state) {
    case ROWS_FIRST:
        r->state = ROWS_ON_ROW;
        return true;
    case ROWS_ON_ROW: {
        int rc = sqlite3_step(r->st);
        if (rc == SQLITE_ROW)
            return true;
        r->state = ROWS_DONE;
        if (rc != SQLITE_DONE) {
            seterr_sqlite((struct sq_conn *)br->conn, rc);
            br->failed = true;
        }
        return false;
    }
    default:
        return false;
    }
}

static int sq_ncols(const struct db_rows *br)
{
    return sqlite3_column_count(((const struct sq_rows *)br)->st);
}

static const char *sq_colname(const struct db_rows *br, int i)
{
    const struct sq_rows *r = (const struct sq_rows *)br;
    if (i < 0 || i >= sqlite3_column_count(r->st))
        return NULL;
    return sqlite3_column_name(r->st, i);
}

/* The statement when column i of a current row exists, else NULL. */
static sqlite3_stmt *cell(const struct db_rows *br, int i)
{
    const struct sq_rows *r = (const struct sq_rows *)br;
    if (r->state != ROWS_ON_ROW || i < 0 || i >= sqlite3_column_count(r->st))
        return NULL;
    return r->st;
}

static bool sq_is_null(const struct db_rows *br, int i)
{
    sqlite3_stmt *st = cell(br, i);
    return !st || sqlite3_column_type(st, i) == SQLITE_NULL;
}

static const char *sq_text(const struct db_rows *br, int i)
{
    sqlite3_stmt *st = cell(br, i);
    return st ? (const char *)sqlite3_column_text(st, i) : NULL;
}

static size_t sq_textlen(const struct db_rows *br, int i)
{
    sqlite3_stmt *st = cell(br, i);
    if (!st)
        return 0;
    sqlite3_column_text(st, i); /* convert first: bytes then counts the text form */
    return (size_t)sqlite3_column_bytes(st, i);
}

static int64_t sq_int64(const struct db_rows *br, int i)
{
    sqlite3_stmt *st = cell(br, i);
    return st ? sqlite3_column_int64(st, i) : 0;
}

static double sq_dbl(const struct db_rows *br, int i)
{
    sqlite3_stmt *st = cell(br, i);
    return st ? sqlite3_column_double(st, i) : 0.0;
}

static bool sq_boolean(const struct db_rows *br, int i)
{
    return sq_int64(br, i) != 0; /* booleans are INTEGER 0/1 with a CHECK */
}

static void sq_rows_free(struct db_rows *br)
{
    struct sq_rows *r = (struct sq_rows *)br;
    stmt_put(r->st, r->slot);
    free(r);
}

/* ---- transactions ------------------------------------------------------------------------ */

static bool sq_in_transaction(struct db_conn *bc)
{
    return sqlite3_get_autocommit(((struct sq_conn *)bc)->h) == 0;
}

static int sq_begin(struct db_conn *bc)
{
    if (sq_in_transaction(bc)) {
        db_conn_seterr(bc, DB_ERR_OTHER, "a transaction is already open on this connection");
        return -1;
    }
    return sq_exec(bc, "BEGIN IMMEDIATE", NULL, 0) < 0 ? -1 : 0;
}

static int sq_commit(struct db_conn *bc)
{
    if (!sq_in_transaction(bc)) {
        db_conn_seterr(bc, DB_ERR_OTHER, "no transaction is open on this connection");
        return -1;
    }
    if (sq_exec(bc, "COMMIT", NULL, 0) >= 0)
        return 0;
    if (sq_in_transaction(bc)) {
        /* Keep the commit's error, not the rollback's. */
        enum db_errkind kind = bc->errkind;
        char msg[sizeof(bc->errmsg)];
        memcpy(msg, bc->errmsg, sizeof(msg));
        sq_exec(bc, "ROLLBACK", NULL, 0);
        bc->errkind = kind;
        memcpy(bc->errmsg, msg, sizeof(msg));
    }
    return -1;
}

static int sq_rollback(struct db_conn *bc)
{
    /* SQLite may already have rolled back by itself (I/O error, disk full). */
    if (!sq_in_transaction(bc))
        return 0;
    return sq_exec(bc, "ROLLBACK", NULL, 0) < 0 ? -1 : 0;
}

/* ---- connections ------------------------------------------------------------------------- */

static void conn_close(struct sq_conn *c)
{
    for (size_t i = 0; i < c->nslots; i++) {
        sqlite3_finalize(c->slots[i].st);
        free(c->slots[i].sql);
    }
    /* _v2: a statement leaked by a caller delays the close instead of failing it. */
    sqlite3_close_v2(c->h);
    free(c);
}

static bool same_file(const struct sq_db *db, const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && st.st_dev == db->dev && st.st_ino == db->ino;
}

static int try_journal_wal(sqlite3 *h)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(h, "PRAGMA journal_mode=WAL", -1, &st, NULL);
    if (rc != SQLITE_OK)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *mode = (const char *)sqlite3_column_text(st, 0);
        rc = mode && strcmp(mode, "wal") == 0 ? SQLITE_OK : SQLITE_CANTOPEN;
    }
    sqlite3_finalize(st);
    return rc;
}

/*
 * Switching a new file to WAL needs an exclusive lock, and SQLite reports BUSY at once, without
 * its busy handler, when another process opening the same new file holds a conflicting lock:
 * retry for as long as the busy timeout allows.
 */
static int set_journal_wal(sqlite3 *h, int busy_ms)
{
    int rc, waited = 0;
    while (((rc = try_journal_wal(h)) & 0xff) == SQLITE_BUSY && waited < busy_ms) {
        sqlite3_sleep(10);
        waited += 10;
    }
    return rc;
}

/*
 * A new connection with the settings every connection has. The first one (at db_open) may
 * create the file; later ones must find the same file, or an unlinked database would be
 * silently replaced by an empty one.
 */
static struct sq_conn *conn_open(struct sq_db *db, bool first, char *err, size_t errlen)
{
    sqlite3 *h = NULL;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (first ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(db->path, &h, flags, NULL);
    if (!first && !same_file(db, db->abspath)) {
        snprintf(err, errlen, "database file was removed or replaced: %s", db->path);
        sqlite3_close(h);
        return NULL;
    }
    if (rc == SQLITE_OK) {
        sqlite3_extended_result_codes(h, 1);
        sqlite3_busy_timeout(h, db->busy_ms);
        /* "x" is an identifier, never a string, as on PostgreSQL. */
        sqlite3_db_config(h, SQLITE_DBCONFIG_DQS_DML, 0, (int *)NULL);
        sqlite3_db_config(h, SQLITE_DBCONFIG_DQS_DDL, 0, (int *)NULL);
        rc = set_journal_wal(h, db->busy_ms);
        if (rc == SQLITE_CANTOPEN) {
            snprintf(err, errlen, "cannot open database %s: WAL journal mode unavailable",
                     db->path);
            sqlite3_close(h);
            return NULL;
        }
    }
    if (rc == SQLITE_OK)
        rc =
            sqlite3_exec(h, "PRAGMA foreign_keys=ON; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open database %s: %s", db->path,
                 h ? sqlite3_errmsg(h) : sqlite3_errstr(rc));
        sqlite3_close(h);
        return NULL;
    }
    struct sq_conn *c = xcalloc(1, sizeof(*c));
    c->base.db = &db->base;
    c->owner = db;
    c->h = h;
    return c;
}

static void conn_track(struct sq_db *db, struct sq_conn *c)
{
    pthread_setspecific(db->key, c);
    pthread_mutex_lock(&db->mu);
    c->next = db->conns;
    db->conns = c;
    pthread_mutex_unlock(&db->mu);
}

/* pthread key destructor: the thread that owned the connection is exiting. */
static void conn_thread_exit(void *p)
{
    struct sq_conn *c = p;
    struct sq_db *db = c->owner;
    bool found = false;
    pthread_mutex_lock(&db->mu);
    for (struct sq_conn **pp = &db->conns; *pp; pp = &(*pp)->next) {
        if (*pp == c) {
            *pp = c->next;
            found = true;
            break;
        }
    }
    pthread_mutex_unlock(&db->mu);
    if (found)
        conn_close(c);
}

static struct db_conn *sq_acquire(struct db *bdb, char *err, size_t errlen)
{
    struct sq_db *db = (struct sq_db *)bdb;
    struct sq_conn *c = pthread_getspecific(db->key);
    if (!c) {
        char tmp[256];
        c = conn_open(db, false, tmp, sizeof(tmp));
        if (!c) {
            if (err && errlen)
                snprintf(err, errlen, "%s", tmp);
            return NULL;
        }
        conn_track(db, c);
    }
    if (atomic_fetch_add(&c->holds, 1) == 0) {
        /* A new holder starts without the last one's tenant (only stored here: no RLS). Done
         * here rather than in sq_release, which may run on another thread. */
        db_conn_reset_context(&c->base);
        if (sq_in_transaction(&c->base)) {
            /* Left open by a holder that released from another thread (see sq_release). */
            sq_exec(&c->base, "ROLLBACK", NULL, 0);
        }
    }
    return &c->base;
}

static void sq_release(struct db_conn *bc)
{
    struct sq_conn *c = (struct sq_conn *)bc;
    if (atomic_load(&c->holds) <= 0)
        return; /* more releases than acquires */
    if (atomic_fetch_sub(&c->holds, 1) != 1)
        return;
    /*
     * A caller bailed out mid-transaction: roll back so the thread's next user starts clean.
     * Only on the owning thread: from any other thread (a request arena freed on an I/O
     * thread) the owner may be using the connection right now, so the next acquire does it.
     */
    if (pthread_getspecific(c->owner->key) == c && sq_in_transaction(bc))
        sq_exec(bc, "ROLLBACK", NULL, 0);
}

/* ---- the database -------------------------------------------------------------------------- */

static int sq_ping(struct db *bdb, char *reason, size_t n)
{
    struct sq_db *db = (struct sq_db *)bdb;
    if (!same_file(db, db->abspath)) {
        snprintf(reason, n, "database file was removed or replaced: %s", db->path);
        return -1;
    }
    char err[256];
    struct db_conn *c = sq_acquire(bdb, err, sizeof(err));
    if (!c) {
        snprintf(reason, n, "%s", err);
        return -1;
    }
    int ret = -1;
    struct db_rows *r = db_query(c, "SELECT 1", NULL, 0);
    if (r && db_next(r) && db_int(r, 0) == 1)
        ret = 0;
    else
        snprintf(reason, n, "database does not answer: %s", db_errmsg(c));
    db_rows_free(r);
    sq_release(c);
    return ret;
}

static void sq_free(struct sq_db *db)
{
    pthread_key_delete(db->key);
    pthread_mutex_destroy(&db->mu);
    free(db->path);
    free(db->abspath);
    free(db);
}

static void sq_close(struct db *bdb)
{
    struct sq_db *db = (struct sq_db *)bdb;
    pthread_mutex_lock(&db->mu);
    struct sq_conn *c = db->conns;
    db->conns = NULL;
    pthread_mutex_unlock(&db->mu);
    while (c) {
        struct sq_conn *next = c->next;
        conn_close(c);
        c = next;
    }
    sq_free(db);
}

/* mkdir -p of path's directory. */
static int make_parent_dirs(const char *path, char *err, size_t errlen)
{
    char *dir = xstrdup(path);
    char *slash = strrchr(dir, '/');
    int ret = 0;
    if (slash && slash != dir) {
        *slash = '\0';
        for (char *p = dir + 1;; p++) {
            if (*p != '/' && *p != '\0')
                continue;
            char saved = *p;
            *p = '\0';
            if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
                snprintf(err, errlen, "cannot create directory %s: %s", dir, strerror(errno));
                ret = -1;
                break;
            }
            if (saved == '\0')
                break;
            *p = saved;
        }
    }
    free(dir);
    return ret;
}

int db_sqlite_open(struct db **out, const char *path, const struct db_options *opt, char *err,
                   size_t errlen)
{
    char tmp[512];
    *out = NULL;
    if (!sqlite3_threadsafe()) {
        snprintf(err, errlen, "libsqlite3 was built without thread support");
        return -1;
    }
    if (make_parent_dirs(path, tmp, sizeof(tmp)) != 0) {
        snprintf(err, errlen, "%s", tmp);
        return -1;
    }
    struct sq_db *db = xcalloc(1, sizeof(*db));
    db->base.drv = &sqlite_driver;
    db->path = xstrdup(path);
    db->busy_ms = opt->busy_timeout_ms;
    if (pthread_key_create(&db->key, conn_thread_exit) != 0) {
        snprintf(err, errlen, "cannot open database %s: out of thread keys", path);
        free(db->path);
        free(db);
        return -1;
    }
    pthread_mutex_init(&db->mu, NULL);

    struct sq_conn *c = conn_open(db, true, tmp, sizeof(tmp));
    if (!c) {
        snprintf(err, errlen, "%s", tmp);
        sq_free(db);
        return -1;
    }
    struct stat st;
    char *abs = realpath(path, NULL);
    if (!abs || stat(abs, &st) != 0) {
        snprintf(err, errlen, "cannot open database %s: %s", path, strerror(errno));
        free(abs);
        conn_close(c);
        sq_free(db);
        return -1;
    }
    db->abspath = abs;
    db->dev = st.st_dev;
    db->ino = st.st_ino;
    conn_track(db, c);
    *out = &db->base;
    return 0;
}

static const struct db_driver sqlite_driver = {
    .dialect = DB_SQLITE,
    .close = sq_close,
    .ping = sq_ping,
    .acquire = sq_acquire,
    .release = sq_release,
    .exec = sq_exec,
    .exec_script = sq_exec_script,
    .query = sq_query,
    .next = sq_next,
    .ncols = sq_ncols,
    .colname = sq_colname,
    .is_null = sq_is_null,
    .text = sq_text,
    .textlen = sq_textlen,
    .int64 = sq_int64,
    .dbl = sq_dbl,
    .boolean = sq_boolean,
    .rows_free = sq_rows_free,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .in_transaction = sq_in_transaction,
};
