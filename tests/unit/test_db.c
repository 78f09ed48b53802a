/* test_db.c — the database interface on real SQLite files in a temporary directory. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "db/db.h"
#include "lib/arena.h"
#include "dbtest.h"

static char tmpdir[64];

static void setup(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/zygo-db-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
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

TestSuite(db, .init = setup, .fini = teardown);

/* A path inside the test's directory (one static buffer per call site is enough here). */
static const char *tmp_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", tmpdir, name);
    return buf;
}

static struct db *open_tmp(const char *name)
{
    char path[PATH_MAX], err[256];
    struct db *db = NULL;
    int rc = db_open(&db, tmp_path(path, sizeof(path), name), err, sizeof(err));
    cr_assert_eq(rc, 0, "db_open: %s", err);
    cr_assert_not_null(db);
    return db;
}

/* The single text a query returns, copied into buf. */
static const char *query_text(struct db_conn *c, const char *sql, char *buf, size_t n)
{
    struct db_rows *r = db_query(c, sql, NULL, 0);
    cr_assert_not_null(r, "%s: %s", sql, db_errmsg(c));
    cr_assert(db_next(r), "%s: no row", sql);
    const char *t = db_text(r, 0);
    cr_assert_not_null(t);
    snprintf(buf, n, "%s", t);
    db_rows_free(r);
    return buf;
}

/* ---- opening ----------------------------------------------------------------------------- */

Test(db, open_default_path_creates_data_dir)
{
    char cwd[PATH_MAX], err[256];
    cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
    cr_assert_eq(chdir(tmpdir), 0);
    struct db *db = NULL;
    cr_assert_eq(db_open(&db, NULL, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(db_dialect(db), DB_SQLITE);
    cr_assert_str_eq(db_dialect_name(db_dialect(db)), "sqlite");
    struct stat st;
    cr_assert_eq(stat("data", &st), 0);
    cr_assert(S_ISDIR(st.st_mode));
    cr_assert_eq(stat("data/zygo.db", &st), 0);
    db_close(db);

    /* "" means the default too, and an existing directory is fine. */
    cr_assert_eq(db_open(&db, "", err, sizeof(err)), 0, "%s", err);
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE t (x INTEGER)");
    db_release(c);
    db_close(db);
    cr_assert_eq(db_open(&db, NULL, err, sizeof(err)), 0, "%s", err);
    c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM sqlite_master WHERE name = 't'", NULL, 0), 1);
    db_release(c);
    db_close(db);
    cr_assert_eq(chdir(cwd), 0);
}

Test(db, open_url_forms)
{
    char path[PATH_MAX], url[PATH_MAX + 16], err[256];
    struct db *db = NULL;

    snprintf(url, sizeof(url), "sqlite:%s", tmp_path(path, sizeof(path), "a/b/one.db"));
    cr_assert_eq(db_open(&db, url, err, sizeof(err)), 0, "%s", err);
    db_close(db);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0, "nested directories created");

    /* sqlite:///abs/path */
    snprintf(url, sizeof(url), "sqlite://%s", tmp_path(path, sizeof(path), "two.db"));
    cr_assert_eq(db_open(&db, url, err, sizeof(err)), 0, "%s", err);
    db_close(db);
    cr_assert_eq(stat(path, &st), 0);

    struct db_options opt = {.busy_timeout_ms = 1234};
    cr_assert_eq(db_open_ex(&db, path, &opt, err, sizeof(err)), 0, "%s", err);
    struct db_conn *c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "PRAGMA busy_timeout", NULL, 0), 1234);
    db_release(c);
    db_close(db);
}

Test(db, open_refusals)
{
    char path[PATH_MAX], err[256];
    struct db *db = (struct db *)&err; /* must be reset to NULL on failure */

    /* nothing listens on port 1: refused at once, and the password is never echoed */
    cr_assert_eq(db_open(&db, "postgres://u:secret@127.0.0.1:1/zygo", err, sizeof(err)), -1);
    cr_assert_null(db);
    cr_assert_not_null(strstr(err, "cannot connect to PostgreSQL"), "%s", err);
    cr_assert_null(strstr(err, "secret"), "password leaked: %s", err);
    cr_assert_eq(db_open(&db, "postgresql://u:secret@127.0.0.1:1/zygo", err, sizeof(err)), -1);
    cr_assert_null(strstr(err, "secret"), "password leaked: %s", err);

    cr_assert_eq(db_open(&db, "mysql://u:secret@localhost/zygo", err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "mysql"), "%s", err);
    cr_assert_null(strstr(err, "secret"), "password leaked: %s", err);

    cr_assert_eq(db_open(&db, ":memory:", err, sizeof(err)), -1);
    cr_assert_eq(db_open(&db, "sqlite:", err, sizeof(err)), -1);

    /* A directory is not a database. */
    cr_assert_eq(db_open(&db, tmpdir, err, sizeof(err)), -1);
    cr_assert_null(db);

    /* Neither is a text file. */
    FILE *f = fopen(tmp_path(path, sizeof(path), "junk.db"), "w");
    cr_assert_not_null(f);
    for (int i = 0; i < 100; i++)
        fputs("this is not a database file at all\n", f);
    fclose(f);
    cr_assert_eq(db_open(&db, path, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "not a database"), "%s", err);
}

/* ---- connection settings ------------------------------------------------------------------ */

static void check_pragmas(struct db *db)
{
    char buf[32];
    struct db_conn *c = dbt_acquire(db);
    cr_assert_str_eq(query_text(c, "PRAGMA journal_mode", buf, sizeof(buf)), "wal");
    cr_assert_eq(dbt_query_int(c, "PRAGMA foreign_keys", NULL, 0), 1);
    cr_assert_eq(dbt_query_int(c, "PRAGMA synchronous", NULL, 0), 1, "NORMAL");
    cr_assert_eq(dbt_query_int(c, "PRAGMA busy_timeout", NULL, 0), 5000);
    db_release(c);
}

static void *pragmas_thread(void *db)
{
    check_pragmas(db);
    return NULL;
}

Test(db, pragmas_on_every_connection)
{
    struct db *db = open_tmp("p.db");
    check_pragmas(db);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, pragmas_thread, db), 0);
    pthread_join(t, NULL);
    db_close(db);
}

/* ---- statements ------------------------------------------------------------------------- */

Test(db, params_of_every_type)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE t (a TEXT, b INTEGER, c REAL, d INTEGER, e TEXT, f TEXT)");
    /* Parameters used out of order: $k binds p[k-1] whatever its position in the SQL. */
    int n = db_exec(c, "INSERT INTO t (f, e, d, c, b, a) VALUES ($6, $5, $4, $3, $2, $1)",
                    DB_ARGS(DB_TEXT("héllo"), DB_INT(INT64_C(9007199254740993)), DB_DOUBLE(2.5),
                            DB_BOOL(true), DB_NULL, DB_TEXTN("abcdef", 3)));
    cr_assert_eq(n, 1, "%s", db_errmsg(c));
    const char *none = NULL;
    cr_assert_eq(db_exec(c, "INSERT INTO t (a) VALUES ($1)", DB_ARGS(DB_TEXT(none))), 1);

    struct db_rows *r =
        db_query(c, "SELECT a, b, c, d, e, f, typeof(e) FROM t ORDER BY rowid", DB_NOARGS);
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert_eq(db_ncols(r), 7);
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 0), "héllo");
    cr_assert_eq(db_textlen(r, 0), strlen("héllo"));
    cr_assert_eq(db_int(r, 1), INT64_C(9007199254740993));
    cr_assert_float_eq(db_double(r, 2), 2.5, 1e-12);
    cr_assert(db_bool(r, 3));
    cr_assert_eq(db_int(r, 3), 1);
    cr_assert(db_is_null(r, 4));
    cr_assert_null(db_text(r, 4));
    cr_assert_str_eq(db_text(r, 5), "abc");
    cr_assert_str_eq(db_text(r, 6), "null");
    cr_assert(db_next(r));
    cr_assert(db_is_null(r, 0), "a NULL string binds SQL NULL");
    cr_assert_not(db_next(r));
    cr_assert_eq(db_rows_error(r), 0);
    db_rows_free(r);
    db_release(c);
    db_close(db);
}

Test(db, dollar_inside_literals_is_not_a_parameter)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    struct db_rows *r = db_query(c,
                                 "SELECT '$1 it''s $2' AS \"col$1\", $1 AS v -- $2 in a comment\n"
                                 "/* and $3 here */",
                                 DB_ARGS(DB_INT(42)));
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 0), "$1 it's $2");
    cr_assert_str_eq(db_colname(r, 0), "col$1");
    cr_assert_str_eq(db_colname(r, 1), "v");
    cr_assert_eq(db_int(r, 1), 42);
    db_rows_free(r);

    /* Reversed numbering binds by number, not by order of appearance. */
    r = db_query(c, "SELECT $2, $1, $2 + $1", DB_ARGS(DB_INT(1), DB_INT(10)));
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert(db_next(r));
    cr_assert_eq(db_int(r, 0), 10);
    cr_assert_eq(db_int(r, 1), 1);
    cr_assert_eq(db_int(r, 2), 11);
    db_rows_free(r);

    /* A '$' inside an identifier stays part of it. */
    dbt_exec_ok(c, "CREATE TABLE t (a$1 INTEGER)");
    cr_assert_eq(db_exec(c, "INSERT INTO t (a$1) VALUES ($1)", DB_ARGS(DB_INT(7))), 1);
    cr_assert_eq(dbt_query_int(c, "SELECT a$1 FROM t", NULL, 0), 7);
    db_release(c);
    db_close(db);
}

Test(db, parameter_count_must_match)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    cr_assert_null(db_query(c, "SELECT $1, $2", DB_ARGS(DB_INT(1))));
    cr_assert_eq(db_errkind(c), DB_ERR_OTHER);
    cr_assert_not_null(strstr(db_errmsg(c), "parameter"), "%s", db_errmsg(c));
    cr_assert_eq(db_exec(c, "SELECT 1", DB_ARGS(DB_INT(1))), -1);
    /* The failed statement left nothing behind: the same SQL works with the right count. */
    cr_assert_eq(dbt_query_int(c, "SELECT $1, $2", DB_ARGS(DB_INT(5), DB_INT(6))), 5);
    db_release(c);
    db_close(db);
}

Test(db, exec_counts_changed_rows)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    cr_assert_eq(db_exec(c, "CREATE TABLE t (x INTEGER)", DB_NOARGS), 0);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(db_exec(c, "INSERT INTO t VALUES ($1)", DB_ARGS(DB_INT(i))), 1);
    cr_assert_eq(db_exec(c, "UPDATE t SET x = x + 1", DB_NOARGS), 3);
    cr_assert_eq(db_exec(c, "CREATE INDEX t_x ON t (x)", DB_NOARGS), 0, "DDL after DML: 0");
    cr_assert_eq(db_exec(c, "SELECT * FROM t", DB_NOARGS), 0);
    cr_assert_eq(db_exec(c, "DELETE FROM t WHERE x > 100", DB_NOARGS), 0);
    cr_assert_eq(db_exec(c, "DELETE FROM t WHERE x >= $1", DB_ARGS(DB_INT(2))), 2);
    db_release(c);
    db_close(db);
}

Test(db, one_statement_per_exec_and_scripts)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    cr_assert_eq(db_exec(c, "SELECT 1; SELECT 2", DB_NOARGS), -1);
    cr_assert_not_null(strstr(db_errmsg(c), "db_exec_script"), "%s", db_errmsg(c));
    cr_assert_eq(db_exec(c, "SELECT 1;  -- trailing comment\n ; /* x */", DB_NOARGS), 0);
    cr_assert_eq(db_exec(c, "", DB_NOARGS), -1);
    cr_assert_eq(db_exec(c, "SELEC 1", DB_NOARGS), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_OTHER);
    cr_assert_not_null(strstr(db_errmsg(c), "syntax error"), "%s", db_errmsg(c));

    cr_assert_eq(db_exec_script(c, "CREATE TABLE a (x INTEGER); INSERT INTO a VALUES (1);"
                                   "INSERT INTO a VALUES (2);"),
                 0, "%s", db_errmsg(c));
    cr_assert_eq(dbt_query_int(c, "SELECT sum(x) FROM a", NULL, 0), 3);
    cr_assert_eq(db_exec_script(c, "INSERT INTO a VALUES (3); INSERT INTO nope VALUES (1)"), -1);
    cr_assert_not_null(strstr(db_errmsg(c), "nope"), "%s", db_errmsg(c));
    db_release(c);
    db_close(db);
}

Test(db, typed_column_access)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    struct db_rows *r =
        db_query(c, "SELECT 1.25 AS d, '17' AS s, 0 AS f, NULL AS n, x'4142' AS b", DB_NOARGS);
    cr_assert_not_null(r);
    cr_assert_null(db_text(r, 0), "no current row before db_next");
    cr_assert_eq(db_ncols(r), 5);
    cr_assert_str_eq(db_colname(r, 0), "d");
    cr_assert_str_eq(db_colname(r, 4), "b");
    cr_assert_null(db_colname(r, 5));
    cr_assert(db_next(r));
    cr_assert_float_eq(db_double(r, 0), 1.25, 1e-12);
    cr_assert_str_eq(db_text(r, 0), "1.25");
    cr_assert_eq(db_int(r, 1), 17);
    cr_assert_not(db_bool(r, 2));
    cr_assert_not(db_is_null(r, 2));
    cr_assert(db_is_null(r, 3));
    cr_assert_eq(db_int(r, 3), 0);
    cr_assert_float_eq(db_double(r, 3), 0.0, 1e-12);
    cr_assert_not(db_bool(r, 3));
    cr_assert_eq(db_textlen(r, 3), 0);
    cr_assert_str_eq(db_text(r, 4), "AB");
    cr_assert_eq(db_textlen(r, 4), 2);
    cr_assert_null(db_text(r, 9), "out of range");
    cr_assert_null(db_text(r, -1));
    cr_assert(db_is_null(r, 9));
    cr_assert_not(db_next(r));
    cr_assert_not(db_next(r), "stays at the end");
    cr_assert_eq(db_rows_error(r), 0);
    db_rows_free(r);

    r = db_query(c, "SELECT 1 WHERE 0", DB_NOARGS);
    cr_assert_not_null(r);
    cr_assert_not(db_next(r));
    cr_assert_eq(db_rows_error(r), 0);
    db_rows_free(r);
    db_rows_free(NULL);
    cr_assert_not(db_next(NULL));
    db_release(c);
    db_close(db);
}

Test(db, insert_returning_reports_errors_at_query)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL DEFAULT 5)");
    struct db_rows *r =
        db_query(c, "INSERT INTO t (id) VALUES ($1) RETURNING id, n", DB_ARGS(DB_TEXT("a")));
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 0), "a");
    cr_assert_eq(db_int(r, 1), 5);
    db_rows_free(r);
    r = db_query(c, "INSERT INTO t (id) VALUES ($1) RETURNING id, n", DB_ARGS(DB_TEXT("a")));
    cr_assert_null(r);
    cr_assert_eq(db_errkind(c), DB_ERR_UNIQUE, "%s", db_errmsg(c));
    db_release(c);
    db_close(db);
}

/* ---- statement cache ---------------------------------------------------------------------- */

Test(db, prepared_statements_are_reused)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE t (x INTEGER)");
    cr_assert_eq(db_begin(c), 0);
    for (int i = 1; i <= 1000; i++)
        cr_assert_eq(db_exec(c, "INSERT INTO t VALUES ($1)", DB_ARGS(DB_INT(i))), 1);
    cr_assert_eq(db_commit(c), 0);
    cr_assert_eq(dbt_query_int(c, "SELECT sum(x) FROM t", NULL, 0), 500500);

    /* 200 distinct statements, more than the cache holds, twice over: still right. */
    char sql[64];
    for (int pass = 0; pass < 2; pass++) {
        for (int k = 0; k < 200; k++) {
            snprintf(sql, sizeof(sql), "SELECT $1 + %d", k);
            cr_assert_eq(dbt_query_int(c, sql, DB_ARGS(DB_INT(pass))), pass + k, "%s", sql);
        }
    }

    /* The same SQL nested inside its own iteration gets a statement of its own. */
    const char *q = "SELECT x FROM t WHERE x <= $1 ORDER BY x";
    struct db_rows *outer = db_query(c, q, DB_ARGS(DB_INT(3)));
    cr_assert_not_null(outer);
    int64_t total = 0;
    while (db_next(outer)) {
        struct db_rows *inner = db_query(c, q, DB_ARGS(DB_INT(db_int(outer, 0))));
        cr_assert_not_null(inner, "%s", db_errmsg(c));
        while (db_next(inner))
            total += db_int(inner, 0);
        db_rows_free(inner);
    }
    db_rows_free(outer);
    cr_assert_eq(total, 1 + (1 + 2) + (1 + 2 + 3));
    /* And the cached one still works afterwards. */
    cr_assert_eq(dbt_query_int(c, q, DB_ARGS(DB_INT(2))), 1);
    db_release(c);
    db_close(db);
}

static struct db_rows *open_rows(struct db_conn *c, int k)
{
    char sql[64];
    snprintf(sql, sizeof(sql), "SELECT %d UNION ALL SELECT %d", k, k + 1000);
    struct db_rows *r = db_query(c, sql, DB_NOARGS);
    cr_assert_not_null(r, "%s", db_errmsg(c));
    return r;
}

Test(db, more_open_queries_than_cache_slots)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    struct db_rows *rows[100];
    for (int k = 0; k < 100; k++) {
        rows[k] = open_rows(c, k);
        cr_assert(db_next(rows[k]));
    }
    for (int k = 0; k < 100; k++) {
        cr_assert_eq(db_int(rows[k], 0), k);
        cr_assert(db_next(rows[k]));
        cr_assert_eq(db_int(rows[k], 0), k + 1000);
        cr_assert_not(db_next(rows[k]));
        db_rows_free(rows[k]);
    }
    db_release(c);
    db_close(db);
}

/* ---- transactions ----------------------------------------------------------------------- */

Test(db, transactions_commit_and_rollback)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE t (x INTEGER)");

    cr_assert_not(db_in_transaction(c));
    cr_assert_eq(db_begin(c), 0);
    cr_assert(db_in_transaction(c));
    cr_assert_eq(db_exec(c, "INSERT INTO t VALUES (1)", DB_NOARGS), 1);
    cr_assert_eq(db_rollback(c), 0);
    cr_assert_not(db_in_transaction(c));
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM t", NULL, 0), 0);

    cr_assert_eq(db_begin(c), 0);
    cr_assert_eq(db_begin(c), -1, "no nesting");
    cr_assert(db_in_transaction(c), "the open transaction is untouched");
    cr_assert_eq(db_exec(c, "INSERT INTO t VALUES (2)", DB_NOARGS), 1);
    cr_assert_eq(db_commit(c), 0);
    cr_assert_eq(dbt_query_int(c, "SELECT sum(x) FROM t", NULL, 0), 2);

    cr_assert_eq(db_commit(c), -1, "nothing to commit");
    cr_assert_eq(db_rollback(c), 0, "rollback outside a transaction is a no-op");
    db_release(c);
    db_close(db);
}

Test(db, release_rolls_back_an_open_transaction)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE t (x INTEGER)");
    struct db_conn *nested = dbt_acquire(db);
    cr_assert_eq(nested, c);
    cr_assert_eq(db_begin(c), 0);
    cr_assert_eq(db_exec(c, "INSERT INTO t VALUES (1)", DB_NOARGS), 1);
    db_release(nested);
    cr_assert(db_in_transaction(c), "still held once");
    db_release(c);
    c = dbt_acquire(db);
    cr_assert_not(db_in_transaction(c));
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM t", NULL, 0), 0);
    db_release(c);

    /* The same through a request arena. */
    char err[128];
    struct arena *a = arena_new();
    c = db_acquire_arena(db, a, err, sizeof(err));
    cr_assert_not_null(c, "%s", err);
    cr_assert_eq(db_begin(c), 0);
    cr_assert_eq(db_exec(c, "INSERT INTO t VALUES (1)", DB_NOARGS), 1);
    arena_free(a);
    c = dbt_acquire(db);
    cr_assert_not(db_in_transaction(c));
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM t", NULL, 0), 0);
    db_release(c);
    db_close(db);
}

struct foreign_release {
    struct db *db;
    pthread_barrier_t barrier;
    struct db_conn *conn;
    bool in_tx_after_release, in_tx_after_reacquire;
    int64_t rows_after;
};

static void *owner_thread(void *arg)
{
    struct foreign_release *f = arg;
    f->conn = db_acquire(f->db, NULL, 0);
    db_begin(f->conn);
    db_exec(f->conn, "INSERT INTO t VALUES (1)", DB_NOARGS);
    pthread_barrier_wait(&f->barrier); /* the main thread releases our connection */
    pthread_barrier_wait(&f->barrier);
    f->in_tx_after_release = db_in_transaction(f->conn);
    struct db_conn *c = db_acquire(f->db, NULL, 0);
    f->in_tx_after_reacquire = db_in_transaction(c);
    struct db_rows *r = db_query(c, "SELECT count(*) FROM t", DB_NOARGS);
    f->rows_after = r && db_next(r) ? db_int(r, 0) : -1;
    db_rows_free(r);
    db_release(c);
    return NULL;
}

Test(db, release_from_another_thread_defers_the_rollback)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE t (x INTEGER)");
    db_release(c);
    struct foreign_release f = {.db = db};
    pthread_barrier_init(&f.barrier, NULL, 2);
    pthread_t t;
    cr_assert_eq(pthread_create(&t, NULL, owner_thread, &f), 0);
    pthread_barrier_wait(&f.barrier);
    db_release(f.conn); /* as a request arena freed on an I/O thread would */
    pthread_barrier_wait(&f.barrier);
    pthread_join(t, NULL);
    pthread_barrier_destroy(&f.barrier);
    cr_assert(f.in_tx_after_release, "not touched from the foreign thread");
    cr_assert_not(f.in_tx_after_reacquire, "rolled back by the owner's next acquire");
    cr_assert_eq(f.rows_after, 0);
    db_close(db);
}

/* ---- errors ----------------------------------------------------------------------------- */

Test(db, constraint_errors_are_classified)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    cr_assert_eq(db_exec_script(c, "CREATE TABLE p (id TEXT PRIMARY KEY, slug TEXT UNIQUE);"
                                   "CREATE TABLE ch (id INTEGER PRIMARY KEY,"
                                   " p TEXT NOT NULL REFERENCES p (id),"
                                   " n INTEGER CHECK (n >= 0));"),
                 0, "%s", db_errmsg(c));
    dbt_exec_ok(c, "INSERT INTO p VALUES ('a', 'a')");
    cr_assert_eq(db_errkind(c), DB_ERR_NONE);
    cr_assert_str_eq(db_errmsg(c), "");

    cr_assert_eq(db_exec(c, "INSERT INTO p VALUES ('a', 'b')", DB_NOARGS), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_UNIQUE, "%s", db_errmsg(c));
    cr_assert_not_null(strstr(db_errmsg(c), "UNIQUE"), "%s", db_errmsg(c));
    cr_assert_eq(db_exec(c, "INSERT INTO p VALUES ('b', 'a')", DB_NOARGS), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_UNIQUE);
    cr_assert_eq(db_exec(c, "INSERT INTO ch (id, p) VALUES (1, 'a')", DB_NOARGS), 1);
    cr_assert_eq(db_exec(c, "INSERT INTO ch (id, p) VALUES (1, 'a')", DB_NOARGS), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_UNIQUE, "INTEGER PRIMARY KEY: %s", db_errmsg(c));

    cr_assert_eq(db_exec(c, "INSERT INTO ch (id, p) VALUES (2, 'zz')", DB_NOARGS), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_FOREIGN_KEY, "%s", db_errmsg(c));
    cr_assert_eq(db_exec(c, "DELETE FROM p WHERE id = 'a'", DB_NOARGS), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_FOREIGN_KEY, "%s", db_errmsg(c));

    cr_assert_eq(db_exec(c, "INSERT INTO ch (id, p) VALUES (3, NULL)", DB_NOARGS), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_NOT_NULL, "%s", db_errmsg(c));
    cr_assert_eq(db_exec(c, "INSERT INTO ch (id, p, n) VALUES (4, 'a', -1)", DB_NOARGS), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_CHECK, "%s", db_errmsg(c));

    cr_assert_eq(db_exec(c, "SELECT * FROM missing", DB_NOARGS), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_OTHER);

    /* A success clears the last error. */
    cr_assert_eq(dbt_query_int(c, "SELECT 1", NULL, 0), 1);
    cr_assert_eq(db_errkind(c), DB_ERR_NONE);

    cr_assert_str_eq(db_errkind_name(DB_ERR_UNIQUE), "unique");
    cr_assert_str_eq(db_errkind_name(DB_ERR_UNAVAILABLE), "unavailable");
    cr_assert_str_eq(db_errkind_name(DB_ERR_OTHER), "other");
    db_release(c);
    db_close(db);
}

Test(db, lock_wait_past_busy_timeout_is_busy)
{
    char path[PATH_MAX], err[256];
    tmp_path(path, sizeof(path), "t.db");
    struct db_options opt = {.busy_timeout_ms = 50};
    struct db *a = NULL, *b = NULL;
    cr_assert_eq(db_open_ex(&a, path, &opt, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(db_open_ex(&b, path, &opt, err, sizeof(err)), 0, "%s", err);
    struct db_conn *ca = dbt_acquire(a), *cb = dbt_acquire(b);
    cr_assert_neq(ca, cb);
    cr_assert_eq(db_begin(ca), 0);
    cr_assert_eq(db_begin(cb), -1);
    cr_assert_eq(db_errkind(cb), DB_ERR_BUSY, "%s", db_errmsg(cb));
    cr_assert_not(db_in_transaction(cb));
    /* Readers are not blocked by the writer (WAL). */
    cr_assert_eq(dbt_query_int(cb, "SELECT count(*) FROM sqlite_master", NULL, 0), 0);
    cr_assert_eq(db_rollback(ca), 0);
    cr_assert_eq(db_begin(cb), 0);
    cr_assert_eq(db_commit(cb), 0);
    db_release(ca);
    db_release(cb);
    db_close(a);
    db_close(b);
}

/* ---- threads ---------------------------------------------------------------------------- */

struct conn_probe {
    struct db *db;
    pthread_barrier_t *barrier;
    struct db_conn *first, *second;
};

static void *probe_thread(void *arg)
{
    struct conn_probe *p = arg;
    p->first = db_acquire(p->db, NULL, 0);
    p->second = db_acquire(p->db, NULL, 0);
    /* Both threads hold their connections at once, so addresses cannot be recycled. */
    pthread_barrier_wait(p->barrier);
    db_release(p->second);
    db_release(p->first);
    return NULL;
}

Test(db, one_connection_per_thread)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *mine = dbt_acquire(db);
    cr_assert_eq(dbt_acquire(db), mine, "same thread, same connection");
    db_release(mine);

    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, 2);
    struct conn_probe p[2] = {{db, &barrier, NULL, NULL}, {db, &barrier, NULL, NULL}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(pthread_create(&t[i], NULL, probe_thread, &p[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    pthread_barrier_destroy(&barrier);
    for (int i = 0; i < 2; i++) {
        cr_assert_not_null(p[i].first);
        cr_assert_eq(p[i].first, p[i].second);
        cr_assert_neq(p[i].first, mine);
    }
    cr_assert_neq(p[0].first, p[1].first);
    cr_assert_eq(dbt_acquire(db), mine, "still mine after the others exited");
    db_release(mine);
    db_release(mine);
    db_close(db);
}

struct writer {
    struct db *db;
    int id;
    int failures;
};

static void *writer_thread(void *arg)
{
    struct writer *w = arg;
    for (int i = 0; i < 100; i++) {
        struct db_conn *c = db_acquire(w->db, NULL, 0);
        if (!c) {
            w->failures++;
            continue;
        }
        if (db_begin(c) != 0 ||
            db_exec(c, "INSERT INTO t (w, i) VALUES ($1, $2)", DB_ARGS(DB_INT(w->id), DB_INT(i))) !=
                1 ||
            db_commit(c) != 0) {
            w->failures++;
            db_rollback(c);
        }
        db_release(c);
    }
    return NULL;
}

Test(db, concurrent_writers_all_succeed)
{
    struct db *db = open_tmp("t.db");
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE t (w INTEGER, i INTEGER, PRIMARY KEY (w, i))");
    db_release(c);
    struct writer w[4];
    pthread_t t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (struct writer){db, i, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, writer_thread, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(w[i].failures, 0);
    }
    c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM t", NULL, 0), 400);
    db_release(c);
    db_close(db);
}

/* ---- readiness -------------------------------------------------------------------------- */

static void *acquire_in_thread(void *db)
{
    char err[256] = "";
    struct db_conn *c = db_acquire(db, err, sizeof(err));
    if (c) {
        db_release(c);
        return NULL;
    }
    return xstrdup(err);
}

Test(db, ping_detects_a_removed_file)
{
    char path[PATH_MAX], reason[256] = "";
    struct db *db = open_tmp("ready.db");
    cr_assert_eq(db_ping(db, reason, sizeof(reason)), 0, "%s", reason);

    cr_assert_eq(unlink(tmp_path(path, sizeof(path), "ready.db")), 0);
    cr_assert_eq(db_ping(db, reason, sizeof(reason)), -1);
    cr_assert_not_null(strstr(reason, "database file was removed or replaced"), "%s", reason);
    cr_assert_not_null(strstr(reason, "ready.db"), "%s", reason);

    /* A new thread must not silently start an empty database at the same path. */
    pthread_t t;
    void *msg = NULL;
    cr_assert_eq(pthread_create(&t, NULL, acquire_in_thread, db), 0);
    pthread_join(t, &msg);
    cr_assert_not_null(msg, "acquire on a new thread must fail");
    cr_assert_not_null(strstr(msg, "removed or replaced"), "%s", (char *)msg);
    free(msg);
    struct stat st;
    cr_assert_neq(stat(path, &st), 0, "no new file was created");
    db_close(db);
}

Test(db, ping_detects_a_replaced_file)
{
    char path[PATH_MAX], other[PATH_MAX], err[256], reason[256] = "";
    struct db *db = open_tmp("ready.db");
    struct db *db2 = NULL;
    cr_assert_eq(db_open(&db2, tmp_path(other, sizeof(other), "other.db"), err, sizeof(err)), 0);
    db_close(db2);
    cr_assert_eq(rename(other, tmp_path(path, sizeof(path), "ready.db")), 0);
    cr_assert_eq(db_ping(db, reason, sizeof(reason)), -1);
    cr_assert_not_null(strstr(reason, "removed or replaced"), "%s", reason);
    db_close(db);
    cr_assert_eq(db_ping(NULL, reason, sizeof(reason)), -1);
}
