/* migrate.c — the migrations runner; see migrate.h. */
#include "lib/common.h"

#include "db/migrate.h"

#include <ctype.h>
#include <sodium.h>
#include <time.h>

#define MIGRATIONS_DIR "src/db/migrations/"
/* How many busy timeouts to wait out for the lock: another process may be migrating. */
#define LOCK_ATTEMPTS 12
/* Any constant: the key of the PostgreSQL advisory lock that serialises migration runs. */
#define PG_LOCK_KEY 7386051

static const char create_table_sql[] = "CREATE TABLE IF NOT EXISTS schema_migrations ("
                                       " version INTEGER PRIMARY KEY,"
                                       " name TEXT NOT NULL,"
                                       " checksum TEXT NOT NULL,"
                                       " applied_at TEXT NOT NULL)";

struct migration {
    long version;
    char *name; /* file name without ".sql" */
    const struct embedded_file *file;
    char checksum[crypto_hash_sha256_BYTES * 2 + 1];
};

struct mset {
    struct migration *v;
    size_t n;
};

struct applied {
    long version;
    char *name;
    char *checksum;
    char *applied_at;
};

struct aset {
    struct applied *v;
    size_t n;
};

static void mset_free(struct mset *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i].name);
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static void aset_free(struct aset *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].name);
        free(s->v[i].checksum);
        free(s->v[i].applied_at);
    }
    free(s->v);
    s->v = NULL;
    s->n = 0;
}

static int cmp_migration(const void *a, const void *b)
{
    long x = ((const struct migration *)a)->version, y = ((const struct migration *)b)->version;
    return (x > y) - (x < y);
}

/* "0001_init.sql" → version 1, name "0001_init"; -1 if the name is not NNNN_name.sql. */
static int parse_name(const char *path, long *version, char **name)
{
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen(base), digits = 0;
    while (isdigit((unsigned char)base[digits]))
        digits++;
    if (digits == 0 || digits > 9 || base[digits] != '_' || len < digits + 6 ||
        strcmp(base + len - 4, ".sql") != 0)
        return -1;
    for (size_t i = digits + 1; i < len - 4; i++)
        if (!isalnum((unsigned char)base[i]) && base[i] != '_' && base[i] != '-')
            return -1;
    *version = strtol(base, NULL, 10);
    *name = xstrndup(base, len - 4);
    return 0;
}

/* The migrations to consider, sorted, with checksums. files NULL: embedded, this dialect. */
static int load_set(enum db_dialect d, const struct embedded_file *files, size_t nfiles,
                    struct mset *out, char *err, size_t errlen)
{
    char prefix[64] = "";
    if (!files) {
        files = embedded_files;
        nfiles = embedded_files_count;
        snprintf(prefix, sizeof(prefix), MIGRATIONS_DIR "%s/", db_dialect_name(d));
    }
    if (sodium_init() < 0) {
        snprintf(err, errlen, "libsodium failed to initialise");
        return -1;
    }
    out->v = xcalloc(nfiles ? nfiles : 1, sizeof(*out->v));
    out->n = 0;
    for (size_t i = 0; i < nfiles; i++) {
        const struct embedded_file *f = &files[i];
        if (!f->path || (prefix[0] && strncmp(f->path, prefix, strlen(prefix)) != 0))
            continue;
        struct migration *m = &out->v[out->n];
        if (parse_name(f->path, &m->version, &m->name) != 0) {
            snprintf(err, errlen, "migration file name must look like NNNN_name.sql: %s", f->path);
            mset_free(out);
            return -1;
        }
        m->file = f;
        unsigned char hash[crypto_hash_sha256_BYTES];
        crypto_hash_sha256(hash, f->data, f->len);
        sodium_bin2hex(m->checksum, sizeof(m->checksum), hash, sizeof(hash));
        out->n++;
    }
    qsort(out->v, out->n, sizeof(*out->v), cmp_migration);
    for (size_t i = 1; i < out->n; i++) {
        if (out->v[i].version == out->v[i - 1].version) {
            snprintf(err, errlen, "two migrations have version %ld: %s and %s", out->v[i].version,
                     out->v[i - 1].file->path, out->v[i].file->path);
            mset_free(out);
            return -1;
        }
    }
    return 0;
}

static const struct migration *find_migration(const struct mset *s, long version)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].version == version)
            return &s->v[i];
    return NULL;
}

static const struct applied *find_applied(const struct aset *s, long version)
{
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i].version == version)
            return &s->v[i];
    return NULL;
}

static char *dup_or_empty(const char *s)
{
    return xstrdup(s ? s : "");
}

static int load_applied(struct db_conn *c, struct aset *out)
{
    out->v = NULL;
    out->n = 0;
    struct db_rows *r = db_query(c,
                                 "SELECT version, name, checksum, applied_at"
                                 " FROM schema_migrations ORDER BY version",
                                 DB_NOARGS);
    if (!r)
        return -1;
    size_t cap = 0;
    while (db_next(r)) {
        if (out->n == cap) {
            cap = cap ? cap * 2 : 16;
            out->v = xrealloc(out->v, cap * sizeof(*out->v));
        }
        struct applied *a = &out->v[out->n++];
        a->version = (long)db_int(r, 0);
        a->name = dup_or_empty(db_text(r, 1));
        a->checksum = dup_or_empty(db_text(r, 2));
        a->applied_at = dup_or_empty(db_text(r, 3));
    }
    int ret = db_rows_error(r);
    db_rows_free(r);
    if (ret != 0)
        aset_free(out);
    return ret;
}

/* Every recorded migration must be known to this binary and unchanged. */
static int check_applied(const struct mset *ms, const struct aset *as, char *err, size_t errlen)
{
    for (size_t i = 0; i < as->n; i++) {
        const struct applied *a = &as->v[i];
        const struct migration *m = find_migration(ms, a->version);
        if (!m) {
            snprintf(err, errlen,
                     "the database has migration %s (version %ld) applied, which this binary "
                     "does not know: the database is newer than this build; refusing to migrate",
                     a->name, a->version);
            return -1;
        }
        if (strcmp(m->checksum, a->checksum) != 0) {
            snprintf(err, errlen,
                     "migration %s was changed after it was applied: %s has checksum %s, the "
                     "database recorded %s; refusing to migrate (add a new migration instead "
                     "of editing an applied one)",
                     m->name, m->file->path, m->checksum, a->checksum);
            return -1;
        }
    }
    return 0;
}

static void now_iso(char *out, size_t n)
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t k = strftime(out, n, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/* Opens a transaction holding the write lock, waiting out other migrating processes. */
static int begin_locked(struct db_conn *c)
{
    int rc = -1;
    for (int attempt = 0; attempt < LOCK_ATTEMPTS; attempt++) {
        rc = db_begin(c);
        if (rc == 0 || db_errkind(c) != DB_ERR_BUSY)
            break;
    }
    if (rc != 0)
        return -1;
    if (db_conn_dialect(c) == DB_POSTGRES) {
        /* A migration may take longer than the statement timeout of ordinary requests, and so
         * may waiting for another process's: lifted for this transaction only. */
        if (db_exec(c, "SET LOCAL statement_timeout = 0", DB_NOARGS) < 0) {
            db_rollback(c);
            return -1;
        }
        /* BEGIN takes no table lock there; serialise runs explicitly until commit. */
        struct db_rows *r =
            db_query(c, "SELECT pg_advisory_xact_lock($1)", DB_ARGS(DB_INT(PG_LOCK_KEY)));
        if (!r) {
            db_rollback(c);
            return -1;
        }
        db_rows_free(r);
    }
    return 0;
}

static int table_exists(struct db_conn *c, bool *exists);

/*
 * CREATE TABLE IF NOT EXISTS, but on PostgreSQL only when it is missing: even for an existing
 * table the statement needs CREATE on the schema, which the application's role lacks, and a
 * `zygo serve` running as that role still checks that the database is up to date.
 */
static int ensure_table(struct db_conn *c)
{
    bool exists = false;
    if (db_conn_dialect(c) == DB_POSTGRES && table_exists(c, &exists) != 0)
        return -1;
    if (exists)
        return 0;
    return db_exec(c, create_table_sql, DB_NOARGS) < 0 ? -1 : 0;
}

static void report_add(struct migrate_report *rep, const char *name)
{
    rep->applied = xrealloc(rep->applied, (rep->napplied + 1) * sizeof(*rep->applied));
    rep->applied[rep->napplied++] = xstrdup(name);
}

/*
 * One step under the lock: validate everything recorded, then apply the first pending
 * migration. 1 when one was applied, 0 when none is pending, -1 on error (rolled back).
 */
static int apply_next(struct db_conn *c, const struct mset *ms, struct migrate_report *rep,
                      char *err, size_t errlen)
{
    if (begin_locked(c) != 0) {
        snprintf(err, errlen, "cannot lock the database for migrations: %s", db_errmsg(c));
        return -1;
    }
    struct aset as;
    if (ensure_table(c) != 0 || load_applied(c, &as) != 0) {
        snprintf(err, errlen, "cannot read schema_migrations: %s", db_errmsg(c));
        db_rollback(c);
        return -1;
    }
    const struct migration *next = NULL;
    int ret = check_applied(ms, &as, err, errlen);
    for (size_t i = 0; ret == 0 && i < ms->n && !next; i++)
        if (!find_applied(&as, ms->v[i].version))
            next = &ms->v[i];
    aset_free(&as);
    if (ret != 0) {
        db_rollback(c);
        return -1;
    }
    if (!next) {
        /* Up to date; committing keeps a newly created schema_migrations for status. */
        if (db_commit(c) != 0) {
            snprintf(err, errlen, "cannot commit: %s", db_errmsg(c));
            return -1;
        }
        return 0;
    }

    char now[40];
    now_iso(now, sizeof(now));
    if (db_exec_script(c, (const char *)next->file->data) != 0) {
        snprintf(err, errlen, "migration %s failed: %s", next->name, db_errmsg(c));
        db_rollback(c);
        return -1;
    }
    if (db_exec(c,
                "INSERT INTO schema_migrations (version, name, checksum, applied_at)"
                " VALUES ($1, $2, $3, $4)",
                DB_ARGS(DB_INT(next->version), DB_TEXT(next->name), DB_TEXT(next->checksum),
                        DB_TEXT(now))) < 0) {
        snprintf(err, errlen, "cannot record migration %s: %s", next->name, db_errmsg(c));
        db_rollback(c);
        return -1;
    }
    if (db_commit(c) != 0) {
        snprintf(err, errlen, "cannot commit migration %s: %s", next->name, db_errmsg(c));
        return -1;
    }
    report_add(rep, next->name);
    return 1;
}

int migrate_run(struct db *db, const struct embedded_file *files, size_t nfiles,
                struct migrate_report *rep, char *err, size_t errlen)
{
    memset(rep, 0, sizeof(*rep));
    struct mset ms;
    if (load_set(db_dialect(db), files, nfiles, &ms, err, errlen) != 0)
        return -1;
    struct db_conn *c = db_acquire(db, err, errlen);
    if (!c) {
        mset_free(&ms);
        return -1;
    }
    /* Migrations are system work: row-level security (forced even on the tables' owner)
     * must not hide or refuse rows a data migration touches. db_release turns it off. */
    db_set_rls_bypass(c, true);
    int rc;
    while ((rc = apply_next(c, &ms, rep, err, errlen)) > 0)
        ;
    db_release(c);
    mset_free(&ms);
    return rc;
}

int migrate_up(struct db *db, struct migrate_report *rep, char *err, size_t errlen)
{
    return migrate_run(db, NULL, 0, rep, err, errlen);
}

void migrate_report_free(struct migrate_report *rep)
{
    for (size_t i = 0; i < rep->napplied; i++)
        free(rep->applied[i]);
    free(rep->applied);
    rep->applied = NULL;
    rep->napplied = 0;
}

/* ---- status ------------------------------------------------------------------------------ */

static int table_exists(struct db_conn *c, bool *exists)
{
    const char *sql = db_conn_dialect(c) == DB_POSTGRES
                          ? "SELECT to_regclass('schema_migrations') IS NOT NULL"
                          : "SELECT count(*) FROM sqlite_master"
                            " WHERE type = 'table' AND name = 'schema_migrations'";
    struct db_rows *r = db_query(c, sql, DB_NOARGS);
    if (!r)
        return -1;
    *exists = db_next(r) && db_bool(r, 0);
    int ret = db_rows_error(r);
    db_rows_free(r);
    return ret;
}

static int cmp_entry(const void *a, const void *b)
{
    long x = ((const struct migrate_entry *)a)->version;
    long y = ((const struct migrate_entry *)b)->version;
    return (x > y) - (x < y);
}

int migrate_status(struct db *db, const struct embedded_file *files, size_t nfiles,
                   struct migrate_status *st, char *err, size_t errlen)
{
    memset(st, 0, sizeof(*st));
    struct mset ms;
    if (load_set(db_dialect(db), files, nfiles, &ms, err, errlen) != 0)
        return -1;
    struct db_conn *c = db_acquire(db, err, errlen);
    if (!c) {
        mset_free(&ms);
        return -1;
    }
    struct aset as = {0};
    bool exists = false;
    if (table_exists(c, &exists) != 0 || (exists && load_applied(c, &as) != 0)) {
        snprintf(err, errlen, "cannot read schema_migrations: %s", db_errmsg(c));
        db_release(c);
        mset_free(&ms);
        return -1;
    }
    db_release(c);

    st->v = xcalloc(ms.n + as.n + 1, sizeof(*st->v));
    for (size_t i = 0; i < ms.n; i++) {
        const struct migration *m = &ms.v[i];
        const struct applied *a = find_applied(&as, m->version);
        struct migrate_entry *e = &st->v[st->n++];
        e->version = m->version;
        e->name = xstrdup(m->name);
        e->state = !a                                 ? MIGRATE_PENDING
                   : strcmp(a->checksum, m->checksum) ? MIGRATE_CHANGED
                                                      : MIGRATE_APPLIED;
        e->applied_at = a ? xstrdup(a->applied_at) : NULL;
    }
    for (size_t i = 0; i < as.n; i++) {
        const struct applied *a = &as.v[i];
        if (find_migration(&ms, a->version))
            continue;
        struct migrate_entry *e = &st->v[st->n++];
        e->version = a->version;
        e->name = xstrdup(a->name);
        e->state = MIGRATE_UNKNOWN;
        e->applied_at = xstrdup(a->applied_at);
    }
    qsort(st->v, st->n, sizeof(*st->v), cmp_entry);
    aset_free(&as);
    mset_free(&ms);
    return 0;
}

void migrate_status_free(struct migrate_status *st)
{
    for (size_t i = 0; i < st->n; i++) {
        free(st->v[i].name);
        free(st->v[i].applied_at);
    }
    free(st->v);
    st->v = NULL;
    st->n = 0;
}

const char *migrate_state_name(enum migrate_state s)
{
    switch (s) {
    case MIGRATE_APPLIED:
        return "applied";
    case MIGRATE_PENDING:
        return "pending";
    case MIGRATE_CHANGED:
        return "changed";
    case MIGRATE_UNKNOWN:
        break;
    }
    return "unknown";
}
