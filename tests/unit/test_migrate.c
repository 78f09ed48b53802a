/* test_migrate.c — the migrations runner and the 0001 schema, on real SQLite files. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "db/db.h"
#include "db/migrate.h"
#include "lib/embed.h"
#include "lib/uuid.h"
#include "dbtest.h"

static char tmpdir[64];
static char dbpath[128];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/zygo-migrate-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
    snprintf(dbpath, sizeof(dbpath), "%s/m.db", tmpdir);
}

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static void teardown(void)
{
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

TestSuite(migrate, .init = setup, .fini = teardown);

#define MFILE(path, sql)                                                                           \
    {                                                                                              \
        path, (const unsigned char *)(sql), sizeof(sql) - 1                                        \
    }

static struct db *open_db(void)
{
    char err[256];
    struct db *db = NULL;
    cr_assert_eq(db_open(&db, dbpath, err, sizeof(err)), 0, "%s", err);
    return db;
}

static int64_t query_int(struct db *db, const char *sql)
{
    struct db_conn *c = db_acquire(db, NULL, 0);
    cr_assert_not_null(c);
    struct db_rows *r = db_query(c, sql, DB_NOARGS);
    cr_assert_not_null(r, "%s: %s", sql, db_errmsg(c));
    cr_assert(db_next(r), "%s: no row", sql);
    int64_t v = db_int(r, 0);
    db_rows_free(r);
    db_release(c);
    return v;
}

static bool table_exists(struct db *db, const char *name)
{
    char sql[160];
    snprintf(sql, sizeof(sql),
             "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '%s'", name);
    return query_int(db, sql) == 1;
}

static void sha256_hex(const unsigned char *data, size_t len, char out[65])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    cr_assert_geq(sodium_init(), 0);
    crypto_hash_sha256(h, data, len);
    sodium_bin2hex(out, 65, h, sizeof(h));
}

static bool iso_ms_utc(const char *s)
{
    /* 2026-11-25T17:45:49.123Z */
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (!s || strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    }
    return true;
}

/* ---- the runner ----------------------------------------------------------------------- */

/* How many migrations the binary embeds for SQLite. */
static size_t embedded_sqlite_count(void)
{
    size_t n = 0;
    for (size_t i = 0; i < embedded_files_count; i++)
        n += strncmp(embedded_files[i].path, "src/db/migrations/sqlite/", 25) == 0;
    return n;
}

Test(migrate, fresh_database_applies_embedded_0001_once)
{
    struct db *db = open_db();
    struct migrate_report rep;
    char err[512] = "";
    cr_assert_eq(migrate_up(db, &rep, err, sizeof(err)), 0, "%s", err);
    cr_assert_geq(embedded_sqlite_count(), 2);
    cr_assert_eq(rep.napplied, embedded_sqlite_count(), "every embedded migration, in order");
    cr_assert_str_eq(rep.applied[0], "0001_init");
    cr_assert_str_eq(rep.applied[1], "0002_identity");
    migrate_report_free(&rep);

    const struct embedded_file *f = embed_find("src/db/migrations/sqlite/0001_init.sql");
    cr_assert_not_null(f);
    char want[65];
    sha256_hex(f->data, f->len, want);

    struct db_conn *c = db_acquire(db, NULL, 0);
    struct db_rows *r =
        db_query(c, "SELECT version, name, checksum, applied_at FROM schema_migrations", DB_NOARGS);
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert(db_next(r));
    cr_assert_eq(db_int(r, 0), 1);
    cr_assert_str_eq(db_text(r, 1), "0001_init");
    cr_assert_str_eq(db_text(r, 2), want);
    cr_assert(iso_ms_utc(db_text(r, 3)), "%s", db_text(r, 3));
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 1), "0002_identity");
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 1), "0003_identities");
    /* later migrations (0004_jobs, ...) follow in order, each once */
    int64_t prev = 3;
    size_t rows = 3;
    while (db_next(r)) {
        cr_assert_gt(db_int(r, 0), prev, "%s out of order", db_text(r, 1));
        prev = db_int(r, 0);
        rows++;
    }
    cr_assert_eq(rows, embedded_sqlite_count());
    db_rows_free(r);
    db_release(c);

    cr_assert_eq(migrate_up(db, &rep, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rep.napplied, 0, "second run applies nothing");
    migrate_report_free(&rep);
    db_close(db);

    /* And again from a new process's point of view. */
    db = open_db();
    cr_assert_eq(migrate_up(db, &rep, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rep.napplied, 0);
    migrate_report_free(&rep);
    cr_assert_eq(query_int(db, "SELECT count(*) FROM schema_migrations"),
                 (int64_t)embedded_sqlite_count());
    db_close(db);
}

static const struct embedded_file set_v1[] = {
    MFILE("m/sqlite/0001_a.sql", "CREATE TABLE a (x INTEGER);"),
};

static const struct embedded_file set_v1_changed[] = {
    MFILE("m/sqlite/0001_a.sql", "CREATE TABLE a (x INTEGER, y TEXT);"),
    MFILE("m/sqlite/0002_b.sql", "CREATE TABLE b (x INTEGER);"),
};

Test(migrate, changed_applied_migration_is_refused)
{
    struct db *db = open_db();
    struct migrate_report rep;
    char err[512] = "";
    cr_assert_eq(migrate_run(db, set_v1, ARRAY_LEN(set_v1), &rep, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rep.napplied, 1);
    migrate_report_free(&rep);

    cr_assert_eq(migrate_run(db, set_v1_changed, ARRAY_LEN(set_v1_changed), &rep, err, sizeof(err)),
                 -1);
    cr_assert_eq(rep.napplied, 0);
    migrate_report_free(&rep);
    char old_sum[65], new_sum[65];
    sha256_hex(set_v1[0].data, set_v1[0].len, old_sum);
    sha256_hex(set_v1_changed[0].data, set_v1_changed[0].len, new_sum);
    cr_assert_not_null(strstr(err, "m/sqlite/0001_a.sql"), "%s", err);
    cr_assert_not_null(strstr(err, old_sum), "%s", err);
    cr_assert_not_null(strstr(err, new_sum), "%s", err);
    cr_assert_not_null(strstr(err, "changed"), "%s", err);
    cr_assert_not(table_exists(db, "b"), "nothing applied");
    cr_assert_eq(query_int(db, "SELECT count(*) FROM schema_migrations"), 1);

    struct migrate_status st;
    cr_assert_eq(
        migrate_status(db, set_v1_changed, ARRAY_LEN(set_v1_changed), &st, err, sizeof(err)), 0,
        "%s", err);
    cr_assert_eq(st.n, 2);
    cr_assert_eq(st.v[0].state, MIGRATE_CHANGED);
    cr_assert_str_eq(migrate_state_name(st.v[0].state), "changed");
    cr_assert_eq(st.v[1].state, MIGRATE_PENDING);
    cr_assert_null(st.v[1].applied_at);
    migrate_status_free(&st);
    db_close(db);
}

static const struct embedded_file set_12[] = {
    MFILE("m/sqlite/0001_a.sql", "CREATE TABLE a (x INTEGER);"),
    MFILE("m/sqlite/0002_b.sql", "CREATE TABLE b (x INTEGER);"),
};

static const struct embedded_file set_13[] = {
    MFILE("m/sqlite/0001_a.sql", "CREATE TABLE a (x INTEGER);"),
    MFILE("m/sqlite/0003_c.sql", "CREATE TABLE c (x INTEGER);"),
};

Test(migrate, unknown_applied_version_is_refused)
{
    struct db *db = open_db();
    struct migrate_report rep;
    char err[512] = "";
    cr_assert_eq(migrate_run(db, set_12, ARRAY_LEN(set_12), &rep, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rep.napplied, 2);
    cr_assert_str_eq(rep.applied[0], "0001_a");
    cr_assert_str_eq(rep.applied[1], "0002_b");
    migrate_report_free(&rep);

    cr_assert_eq(migrate_run(db, set_13, ARRAY_LEN(set_13), &rep, err, sizeof(err)), -1);
    cr_assert_eq(rep.napplied, 0);
    migrate_report_free(&rep);
    cr_assert_not_null(strstr(err, "0002_b"), "%s", err);
    cr_assert_not_null(strstr(err, "newer"), "%s", err);
    cr_assert_not(table_exists(db, "c"), "nothing applied");

    struct migrate_status st;
    cr_assert_eq(migrate_status(db, set_13, ARRAY_LEN(set_13), &st, err, sizeof(err)), 0);
    cr_assert_eq(st.n, 3);
    cr_assert_eq(st.v[0].state, MIGRATE_APPLIED);
    cr_assert_eq(st.v[1].version, 2);
    cr_assert_eq(st.v[1].state, MIGRATE_UNKNOWN);
    cr_assert_eq(st.v[2].state, MIGRATE_PENDING);
    migrate_status_free(&st);
    db_close(db);
}

static const struct embedded_file set_bad[] = {
    MFILE("m/sqlite/0001_a.sql", "CREATE TABLE a (x INTEGER);"),
    MFILE("m/sqlite/0002_bad.sql", "CREATE TABLE x (a INTEGER);\n"
                                   "INSERT INTO x VALUES (1);\n"
                                   "INSERT INTO nope VALUES (1);\n"),
};

static const struct embedded_file set_fixed[] = {
    MFILE("m/sqlite/0001_a.sql", "CREATE TABLE a (x INTEGER);"),
    MFILE("m/sqlite/0002_bad.sql", "CREATE TABLE x (a INTEGER);\n"
                                   "INSERT INTO x VALUES (1);\n"),
};

Test(migrate, failing_migration_rolls_back_and_is_not_recorded)
{
    struct db *db = open_db();
    struct migrate_report rep;
    char err[512] = "";
    cr_assert_eq(migrate_run(db, set_bad, ARRAY_LEN(set_bad), &rep, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "0002_bad"), "%s", err);
    cr_assert_not_null(strstr(err, "nope"), "%s", err);
    cr_assert_eq(rep.napplied, 1, "0001 went in its own transaction");
    migrate_report_free(&rep);
    cr_assert(table_exists(db, "a"));
    cr_assert_not(table_exists(db, "x"), "0002 rolled back");
    cr_assert_eq(query_int(db, "SELECT count(*) FROM schema_migrations"), 1);
    cr_assert_eq(query_int(db, "SELECT max(version) FROM schema_migrations"), 1);

    /* The fixed file (never recorded, so it may change) applies cleanly. */
    cr_assert_eq(migrate_run(db, set_fixed, ARRAY_LEN(set_fixed), &rep, err, sizeof(err)), 0, "%s",
                 err);
    cr_assert_eq(rep.napplied, 1);
    cr_assert_str_eq(rep.applied[0], "0002_bad");
    migrate_report_free(&rep);
    cr_assert_eq(query_int(db, "SELECT count(*) FROM x"), 1);
    db_close(db);
}

static const struct embedded_file set_badname[] = {
    MFILE("m/sqlite/init.sql", "SELECT 1;"),
};

static const struct embedded_file set_dup[] = {
    MFILE("m/sqlite/0001_a.sql", "SELECT 1;"),
    MFILE("m/sqlite/001_b.sql", "SELECT 1;"),
};

Test(migrate, malformed_sets_are_refused)
{
    struct db *db = open_db();
    struct migrate_report rep;
    char err[512] = "";
    cr_assert_eq(migrate_run(db, set_badname, ARRAY_LEN(set_badname), &rep, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "init.sql"), "%s", err);
    migrate_report_free(&rep);
    cr_assert_eq(migrate_run(db, set_dup, ARRAY_LEN(set_dup), &rep, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "version 1"), "%s", err);
    migrate_report_free(&rep);
    db_close(db);
}

Test(migrate, status_lists_pending_then_applied)
{
    struct db *db = open_db();
    struct migrate_status st;
    char err[512] = "";
    cr_assert_eq(migrate_status(db, NULL, 0, &st, err, sizeof(err)), 0, "%s", err);
    cr_assert_geq(st.n, 1);
    cr_assert_str_eq(st.v[0].name, "0001_init");
    cr_assert_eq(st.v[0].state, MIGRATE_PENDING);
    migrate_status_free(&st);
    cr_assert_not(table_exists(db, "schema_migrations"), "status only reads");

    struct migrate_report rep;
    cr_assert_eq(migrate_up(db, &rep, err, sizeof(err)), 0, "%s", err);
    migrate_report_free(&rep);
    cr_assert_eq(migrate_status(db, NULL, 0, &st, err, sizeof(err)), 0, "%s", err);
    for (size_t i = 0; i < st.n; i++) {
        cr_assert_eq(st.v[i].state, MIGRATE_APPLIED, "%s", st.v[i].name);
        cr_assert(iso_ms_utc(st.v[i].applied_at));
    }
    migrate_status_free(&st);
    db_close(db);
}

/* ---- concurrency ------------------------------------------------------------------------- */

/* 0002 takes a while, so racing runners really overlap; 0003 would show a double apply. */
static const struct embedded_file set_race[] = {
    MFILE("m/sqlite/0001_counter.sql", "CREATE TABLE counter (n INTEGER);"),
    MFILE("m/sqlite/0002_fill.sql",
          "CREATE TABLE fill (i INTEGER);"
          "WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < 100000)"
          " INSERT INTO fill SELECT i FROM s;"),
    MFILE("m/sqlite/0003_count.sql", "INSERT INTO counter VALUES (1);"),
};

struct racer {
    size_t applied;
    int rc;
    char err[512];
};

static void *race_thread(void *arg)
{
    struct racer *r = arg;
    struct db *db = NULL; /* its own struct db: as if another process */
    r->rc = db_open(&db, dbpath, r->err, sizeof(r->err));
    if (r->rc != 0)
        return NULL;
    struct migrate_report rep;
    r->rc = migrate_run(db, set_race, ARRAY_LEN(set_race), &rep, r->err, sizeof(r->err));
    r->applied = rep.napplied;
    migrate_report_free(&rep);
    db_close(db);
    return NULL;
}

static void check_race_result(size_t total_applied)
{
    cr_assert_eq(total_applied, 3, "each migration applied exactly once");
    struct db *db = open_db();
    cr_assert_eq(query_int(db, "SELECT count(*) FROM schema_migrations"), 3);
    cr_assert_eq(query_int(db, "SELECT count(*) FROM counter"), 1);
    cr_assert_eq(query_int(db, "SELECT count(*) FROM fill"), 100000);
    db_close(db);
}

Test(migrate, concurrent_threads_apply_once)
{
    struct racer r[4];
    pthread_t t[4];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < 4; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
    size_t total = 0;
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(r[i].rc, 0, "runner %d: %s", i, r[i].err);
        total += r[i].applied;
    }
    check_race_result(total);
}

Test(migrate, concurrent_processes_apply_once)
{
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        pids[i] = fork();
        cr_assert_neq(pids[i], -1);
        if (pids[i] == 0) {
            struct racer r = {0};
            race_thread(&r);
            if (r.rc != 0)
                fprintf(stderr, "child: %s\n", r.err);
            _exit(r.rc != 0 ? 100 : (int)r.applied);
        }
    }
    size_t total = 0;
    for (int i = 0; i < 3; i++) {
        int status = 0;
        cr_assert_eq(waitpid(pids[i], &status, 0), pids[i]);
        cr_assert(WIFEXITED(status));
        cr_assert_neq(WEXITSTATUS(status), 100, "child %d failed", i);
        total += (size_t)WEXITSTATUS(status);
    }
    check_race_result(total);
}

/* ---- the 0001 schema ----------------------------------------------------------------------- */

static struct db *migrated_db(void)
{
    struct db *db = open_db();
    struct migrate_report rep;
    char err[512] = "";
    cr_assert_eq(migrate_up(db, &rep, err, sizeof(err)), 0, "%s", err);
    migrate_report_free(&rep);
    return db;
}

struct column {
    const char *name, *type;
    bool notnull;
    const char *dflt; /* as PRAGMA table_info shows it; NULL: no default */
    bool pk;
};

#define TS_DEFAULT "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/* The specification's Drizzle users table, column by column. */
static const struct column users_columns[] = {
    {"id", "TEXT", true, "(uuid)", true},
    {"tenant_id", "TEXT", true, NULL, false},
    {"email", "TEXT", true, NULL, false},
    {"first_name", "TEXT", false, NULL, false},
    {"last_name", "TEXT", false, NULL, false},
    {"display_name", "TEXT", false, NULL, false},
    {"avatar", "TEXT", false, NULL, false},
    {"phone", "TEXT", false, NULL, false},
    {"status", "TEXT", true, "'pending'", false},
    {"email_verified", "INTEGER", true, "0", false},
    {"phone_verified", "INTEGER", true, "0", false},
    {"mfa_enabled", "INTEGER", true, "0", false},
    {"last_login_at", "TEXT", false, NULL, false},
    {"created_at", "TEXT", true, TS_DEFAULT, false},
    {"updated_at", "TEXT", true, TS_DEFAULT, false},
    {"deleted_at", "TEXT", false, NULL, false},
    /* ours, from 0002_identity: not in the spec's Drizzle schema */
    {"password_hash", "TEXT", false, NULL, false},
    {"is_global_admin", "INTEGER", true, "0", false},
};

Test(migrate, users_table_has_every_spec_column)
{
    struct db *db = migrated_db();
    struct db_conn *c = db_acquire(db, NULL, 0);
    struct db_rows *r =
        db_query(c,
                 "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('users')"
                 " ORDER BY cid",
                 DB_NOARGS);
    cr_assert_not_null(r, "%s", db_errmsg(c));
    size_t i = 0;
    for (; db_next(r); i++) {
        cr_assert_lt(i, ARRAY_LEN(users_columns), "extra column %s", db_text(r, 0));
        const struct column *want = &users_columns[i];
        cr_assert_str_eq(db_text(r, 0), want->name);
        cr_assert_str_eq(db_text(r, 1), want->type, "%s", want->name);
        cr_assert_eq(db_bool(r, 2), want->notnull, "%s NOT NULL", want->name);
        cr_assert_eq(db_bool(r, 4), want->pk, "%s pk", want->name);
        const char *dflt = db_text(r, 3);
        if (!want->dflt)
            cr_assert_null(dflt, "%s has no default", want->name);
        else if (strcmp(want->dflt, "(uuid)") == 0)
            cr_assert_not_null(dflt && strstr(dflt, "randomblob"), "%s", want->name);
        else
            cr_assert(dflt && strstr(dflt, want->dflt), "%s default %s", want->name, dflt);
    }
    cr_assert_eq(i, ARRAY_LEN(users_columns));
    db_rows_free(r);

    r = db_query(c, "SELECT \"table\", \"to\" FROM pragma_foreign_key_list('users')", DB_NOARGS);
    cr_assert_not_null(r);
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 0), "tenants");
    cr_assert_str_eq(db_text(r, 1), "id");
    db_rows_free(r);
    db_release(c);
    db_close(db);
}

static const char *index_sql(struct db_conn *c, const char *name, char *buf, size_t n)
{
    struct db_rows *r =
        db_query(c, "SELECT tbl_name, sql FROM sqlite_master WHERE type = 'index' AND name = $1",
                 DB_ARGS(DB_TEXT(name)));
    cr_assert_not_null(r);
    cr_assert(db_next(r), "index %s exists", name);
    cr_assert_str_eq(db_text(r, 0), "users");
    snprintf(buf, n, "%s", db_text(r, 1));
    db_rows_free(r);
    return buf;
}

static void check_index_columns(struct db_conn *c, const char *index, const char *cols)
{
    struct db_rows *r =
        db_query(c,
                 "SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_index_info($1)"
                 " ORDER BY seqno)",
                 DB_ARGS(DB_TEXT(index)));
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 0), cols, "%s", index);
    db_rows_free(r);
}

Test(migrate, users_indexes_exist)
{
    struct db *db = migrated_db();
    struct db_conn *c = db_acquire(db, NULL, 0);
    char sql[512];
    index_sql(c, "users_tenant_idx", sql, sizeof(sql));
    check_index_columns(c, "users_tenant_idx", "tenant_id");
    index_sql(c, "users_email_idx", sql, sizeof(sql));
    check_index_columns(c, "users_email_idx", "email");
    index_sql(c, "users_status_idx", sql, sizeof(sql));
    check_index_columns(c, "users_status_idx", "status");
    index_sql(c, "users_tenant_email_uniq", sql, sizeof(sql));
    cr_assert_not_null(strstr(sql, "UNIQUE"), "%s", sql);
    cr_assert_not_null(strstr(sql, "WHERE deleted_at IS NULL"), "%s", sql);
    check_index_columns(c, "users_tenant_email_uniq", "tenant_id,email");
    db_release(c);
    db_close(db);
}

Test(migrate, minimal_rows_get_the_spec_defaults)
{
    struct db *db = migrated_db();
    struct db_conn *c = db_acquire(db, NULL, 0);
    char tid[UUID_STRLEN + 1], uid[UUID_STRLEN + 1];
    dbt_insert_tenant(c, tid, "acme");

    struct db_rows *r = db_query(
        c, "SELECT plan, settings, status, created_at, updated_at, deleted_at FROM tenants",
        DB_NOARGS);
    cr_assert_not_null(r);
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 0), "free");
    cr_assert_str_eq(db_text(r, 1), "{}");
    cr_assert_str_eq(db_text(r, 2), "active");
    cr_assert(iso_ms_utc(db_text(r, 3)), "%s", db_text(r, 3));
    cr_assert(iso_ms_utc(db_text(r, 4)));
    cr_assert(db_is_null(r, 5));
    db_rows_free(r);

    uuid_v7(uid);
    cr_assert_eq(db_exec(c, "INSERT INTO users (id, tenant_id, email) VALUES ($1, $2, $3)",
                         DB_ARGS(DB_TEXT(uid), DB_TEXT(tid), DB_TEXT("a@example.com"))),
                 1, "%s", db_errmsg(c));
    r = db_query(c,
                 "SELECT id, tenant_id, email, first_name, last_name, display_name, avatar, phone,"
                 " status, email_verified, phone_verified, mfa_enabled, last_login_at,"
                 " created_at, updated_at, deleted_at FROM users WHERE id = $1",
                 DB_ARGS(DB_TEXT(uid)));
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 0), uid);
    cr_assert_str_eq(db_text(r, 1), tid);
    cr_assert_str_eq(db_text(r, 2), "a@example.com");
    for (int i = 3; i <= 7; i++)
        cr_assert(db_is_null(r, i), "column %s", db_colname(r, i));
    cr_assert_str_eq(db_text(r, 8), "pending");
    for (int i = 9; i <= 11; i++) {
        cr_assert_not(db_is_null(r, i));
        cr_assert_not(db_bool(r, i), "column %s", db_colname(r, i));
    }
    cr_assert(db_is_null(r, 12));
    cr_assert(iso_ms_utc(db_text(r, 13)), "%s", db_text(r, 13));
    cr_assert(iso_ms_utc(db_text(r, 14)), "%s", db_text(r, 14));
    cr_assert(db_is_null(r, 15));
    db_rows_free(r);

    /* Without an id the default makes a random (version 4) UUID, like defaultRandom(). */
    r = db_query(c, "INSERT INTO users (tenant_id, email) VALUES ($1, $2) RETURNING id",
                 DB_ARGS(DB_TEXT(tid), DB_TEXT("b@example.com")));
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert(db_next(r));
    const char *id = db_text(r, 0);
    cr_assert(uuid_valid(id), "%s", id);
    cr_assert_eq(id[14], '4', "%s", id);
    cr_assert_neq(strchr("89ab", id[19]), NULL, "%s", id);
    char lower[UUID_STRLEN + 1];
    cr_assert(uuid_normalize(id, lower));
    cr_assert_str_eq(id, lower, "stored lowercase");
    db_rows_free(r);
    db_release(c);
    db_close(db);
}

static void expect_fail(struct db_conn *c, enum db_errkind kind, const char *sql,
                        const struct db_param *p, size_t n)
{
    cr_assert_eq(db_exec(c, sql, p, n), -1, "accepted: %s", sql);
    cr_assert_eq(db_errkind(c), kind, "%s: %s (%s)", sql, db_errkind_name(db_errkind(c)),
                 db_errmsg(c));
}

Test(migrate, schema_constraints_hold)
{
    struct db *db = migrated_db();
    struct db_conn *c = db_acquire(db, NULL, 0);
    char t1[UUID_STRLEN + 1], t2[UUID_STRLEN + 1], nobody[UUID_STRLEN + 1];
    dbt_insert_tenant(c, t1, "one");
    dbt_insert_tenant(c, t2, "two");
    uuid_v7(nobody);
    const char *ins = "INSERT INTO users (tenant_id, email) VALUES ($1, $2)";

    cr_assert_eq(db_exec(c, ins, DB_ARGS(DB_TEXT(t1), DB_TEXT("a@x.io"))), 1, "%s", db_errmsg(c));
    expect_fail(c, DB_ERR_UNIQUE, ins, DB_ARGS(DB_TEXT(t1), DB_TEXT("a@x.io")));
    cr_assert_eq(db_exec(c, ins, DB_ARGS(DB_TEXT(t2), DB_TEXT("a@x.io"))), 1,
                 "same email, other tenant");
    /* A soft-deleted user's address can be used again. */
    cr_assert_eq(db_exec(c,
                         "UPDATE users SET deleted_at = '2026-01-01T00:00:00.000Z'"
                         " WHERE tenant_id = $1",
                         DB_ARGS(DB_TEXT(t1))),
                 1);
    cr_assert_eq(db_exec(c, ins, DB_ARGS(DB_TEXT(t1), DB_TEXT("a@x.io"))), 1, "%s", db_errmsg(c));

    expect_fail(c, DB_ERR_FOREIGN_KEY, ins, DB_ARGS(DB_TEXT(nobody), DB_TEXT("b@x.io")));
    expect_fail(c, DB_ERR_NOT_NULL, ins, DB_ARGS(DB_TEXT(t1), DB_NULL));
    expect_fail(c, DB_ERR_NOT_NULL, ins, DB_ARGS(DB_NULL, DB_TEXT("c@x.io")));

    char long_email[300];
    memset(long_email, 'a', 250);
    memcpy(long_email + 250, "@x.io", 6); /* 255 characters: the limit */
    cr_assert_eq(db_exec(c, ins, DB_ARGS(DB_TEXT(t1), DB_TEXT(long_email))), 1, "%s", db_errmsg(c));
    memset(long_email, 'b', 251);
    memcpy(long_email + 251, "@x.io", 6); /* 256 */
    expect_fail(c, DB_ERR_CHECK, ins, DB_ARGS(DB_TEXT(t1), DB_TEXT(long_email)));

    const char *ins_phone = "INSERT INTO users (tenant_id, email, phone) VALUES ($1, $2, $3)";
    expect_fail(c, DB_ERR_CHECK, ins_phone,
                DB_ARGS(DB_TEXT(t1), DB_TEXT("p@x.io"), DB_TEXT("123456789012345678901")));
    const char *ins_flag =
        "INSERT INTO users (tenant_id, email, email_verified) VALUES ($1, $2, $3)";
    expect_fail(c, DB_ERR_CHECK, ins_flag, DB_ARGS(DB_TEXT(t1), DB_TEXT("f@x.io"), DB_INT(2)));
    expect_fail(c, DB_ERR_CHECK, ins_flag, DB_ARGS(DB_TEXT(t1), DB_TEXT("f@x.io"), DB_TEXT("yes")));
    cr_assert_eq(db_exec(c, ins_flag, DB_ARGS(DB_TEXT(t1), DB_TEXT("f@x.io"), DB_BOOL(true))), 1);

    expect_fail(c, DB_ERR_UNIQUE, "INSERT INTO tenants (slug, name) VALUES ('one', 'Dup')",
                DB_NOARGS);
    expect_fail(c, DB_ERR_CHECK,
                "INSERT INTO tenants (slug, name, settings) VALUES ('s3', 'S', 'not json')",
                DB_NOARGS);
    expect_fail(c, DB_ERR_CHECK,
                "INSERT INTO tenants (slug, name, status) VALUES ('s4', 'S', 'deleted')",
                DB_NOARGS);
    cr_assert_eq(db_exec(c, "UPDATE tenants SET status = 'suspended', settings = $1 WHERE id = $2",
                         DB_ARGS(DB_TEXT("{\"a\":1}"), DB_TEXT(t2))),
                 1, "%s", db_errmsg(c));
    /* Users still reference the tenant. */
    expect_fail(c, DB_ERR_FOREIGN_KEY, "DELETE FROM tenants WHERE id = $1", DB_ARGS(DB_TEXT(t2)));
    db_release(c);
    db_close(db);
}
