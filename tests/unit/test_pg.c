/*
 * test_pg.c — the PostgreSQL driver, its pool, row-level security and the migrations, on a
 * real server: each test gets a fresh database in the cluster of scripts/pg-cluster.sh
 * (tests/support/pgtest.h). Without ZYGO_TEST_PG_ADMIN_URL every PostgreSQL test skips,
 * saying so.
 */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <ctype.h>
#include <ftw.h>
#include <math.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/migrate.h"
#include "db/pg.h"
#include "lib/embed.h"
#include "lib/uuid.h"
#include "pgtest.h"
#include "dbtest.h"

static char owner_url[512], app_url[512];
static bool have_db;

static void setup(void)
{
    have_db = false;
    if (!pgtest_available())
        return;
    pgtest_create_db(owner_url, sizeof(owner_url), app_url, sizeof(app_url));
    have_db = true;
}

static void teardown(void)
{
    if (have_db)
        pgtest_drop_db(owner_url);
}

TestSuite(pg, .init = setup, .fini = teardown);

#define MFILE(path, sql)                                                                           \
    {                                                                                              \
        path, (const unsigned char *)(sql), sizeof(sql) - 1                                        \
    }

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static struct db *open_url(const char *url, const struct db_options *opt)
{
    char err[512];
    struct db *db = NULL;
    cr_assert_eq(db_open_ex(&db, url, opt, err, sizeof(err)), 0, "db_open: %s", err);
    cr_assert_not_null(db);
    return db;
}

static const char *query_text(struct db_conn *c, const char *sql, const struct db_param *p,
                              size_t n, char *buf, size_t len)
{
    struct db_rows *r = db_query(c, sql, p, n);
    cr_assert_not_null(r, "%s: %s", sql, db_errmsg(c));
    cr_assert(db_next(r), "%s: no row", sql);
    const char *t = db_text(r, 0);
    snprintf(buf, len, "%s", t ? t : "(null)");
    db_rows_free(r);
    return buf;
}

static void expect_fail(struct db_conn *c, enum db_errkind kind, const char *sql,
                        const struct db_param *p, size_t n)
{
    cr_assert_eq(db_exec(c, sql, p, n), -1, "accepted: %s", sql);
    cr_assert_eq(db_errkind(c), kind, "%s: %s (%s)", sql, db_errkind_name(db_errkind(c)),
                 db_errmsg(c));
}

static bool iso_ms_utc(const char *s)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (!s || strlen(s) != sizeof(shape) - 1)
        return false;
    for (size_t i = 0; shape[i]; i++) {
        if (shape[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != shape[i])
            return false;
    }
    return true;
}

static void migrate_ok(const char *url)
{
    struct db *db = open_url(url, NULL);
    struct migrate_report rep;
    char err[1024] = "";
    cr_assert_eq(migrate_up(db, &rep, err, sizeof(err)), 0, "%s", err);
    migrate_report_free(&rep);
    db_close(db);
}

/* ---- opening and the session ----------------------------------------------------------- */

Test(pg, open_sets_up_every_session)
{
    PGTEST_REQUIRE();
    struct db *db = open_url(app_url, NULL);
    cr_assert_eq(db_dialect(db), DB_POSTGRES);
    cr_assert_str_eq(db_dialect_name(db_dialect(db)), "postgres");
    struct db_conn *c = dbt_acquire(db);
    cr_assert_eq(db_conn_dialect(c), DB_POSTGRES);
    char buf[128];
    cr_assert_str_eq(query_text(c, "SHOW TimeZone", DB_NOARGS, buf, sizeof(buf)), "UTC");
    cr_assert_str_eq(query_text(c, "SHOW DateStyle", DB_NOARGS, buf, sizeof(buf)), "ISO, MDY");
    cr_assert_str_eq(query_text(c, "SHOW client_encoding", DB_NOARGS, buf, sizeof(buf)), "UTF8");
    cr_assert_str_eq(query_text(c, "SHOW application_name", DB_NOARGS, buf, sizeof(buf)), "zygo");
    cr_assert_str_eq(query_text(c, "SHOW statement_timeout", DB_NOARGS, buf, sizeof(buf)), "30s");
    db_release(c);
    char reason[256] = "";
    cr_assert_eq(db_ping(db, reason, sizeof(reason)), 0, "%s", reason);
    db_close(db);

    struct db_options opt = {.statement_timeout_ms = 1234};
    db = open_url(app_url, &opt);
    c = dbt_acquire(db);
    cr_assert_str_eq(query_text(c, "SHOW statement_timeout", DB_NOARGS, buf, sizeof(buf)),
                     "1234ms");
    db_release(c);
    db_close(db);

    /* postgresql:// too, and the URL may name its own application_name. */
    char url[600];
    snprintf(url, sizeof(url), "postgresql://%s?application_name=mine", strstr(app_url, "://") + 3);
    db = open_url(url, NULL);
    c = dbt_acquire(db);
    cr_assert_str_eq(query_text(c, "SHOW application_name", DB_NOARGS, buf, sizeof(buf)), "mine");
    db_release(c);
    db_close(db);
}

Test(pg, open_refusals_never_show_the_password)
{
    PGTEST_REQUIRE();
    char url[600], err[512];
    struct db *db = (struct db *)&err;
    /* Wrong password. */
    snprintf(url, sizeof(url), "postgres://zygo_api:Sup3rSecretPw@%s:%s/postgres",
             getenv("ZYGO_TEST_PG_HOST"), getenv("ZYGO_TEST_PG_PORT"));
    cr_assert_eq(db_open(&db, url, err, sizeof(err)), -1);
    cr_assert_null(db);
    cr_assert_not_null(strstr(err, "password authentication failed"), "%s", err);
    cr_assert_null(strstr(err, "Sup3rSecretPw"), "password leaked: %s", err);
    cr_assert_null(strchr(err, '\n'), "one line: %s", err);

    /* Nobody listening: refused at once. */
    int64_t t0 = mono_ms();
    cr_assert_eq(db_open(&db, "postgres://u:Sup3rSecretPw@127.0.0.1:1/x", err, sizeof(err)), -1);
    cr_assert_lt(mono_ms() - t0, 3000);
    cr_assert_not_null(strstr(err, "cannot connect to PostgreSQL at u@127.0.0.1:1/x"), "%s", err);
    cr_assert_null(strstr(err, "Sup3rSecretPw"), "%s", err);

    /* A URL libpq cannot parse (bad percent-encoding in the password). */
    cr_assert_eq(db_open(&db, "postgres://u:Sup3r%zzSecretPw@127.0.0.1:1/x", err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "invalid PostgreSQL URL"), "%s", err);
    cr_assert_null(strstr(err, "Secret"), "%s", err);
    cr_assert_null(db);
}

/* ---- statements and values --------------------------------------------------------------- */

Test(pg, params_of_every_type)
{
    PGTEST_REQUIRE();
    struct db *db = open_url(owner_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE t (a text, b bigint, c float8, d boolean, e text, f text, g int)");
    /* Parameters used out of order: $k binds p[k-1] whatever its position in the SQL. */
    int n = db_exec(c, "INSERT INTO t (f, e, d, c, b, a, g) VALUES ($6, $5, $4, $3, $2, $1, $7)",
                    DB_ARGS(DB_TEXT("héllo"), DB_INT(INT64_C(9007199254740993)), DB_DOUBLE(2.5),
                            DB_BOOL(true), DB_NULL, DB_TEXTN("abcdef", 3), DB_INT(-7)));
    cr_assert_eq(n, 1, "%s", db_errmsg(c));
    const char *none = NULL;
    cr_assert_eq(
        db_exec(c, "INSERT INTO t (a, c) VALUES ($1, $2)", DB_ARGS(DB_TEXT(none), DB_DOUBLE(0.1))),
        1, "%s", db_errmsg(c));

    struct db_rows *r =
        db_query(c, "SELECT a, b, c, d, e, f, g FROM t ORDER BY a NULLS LAST", DB_NOARGS);
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert_eq(db_ncols(r), 7);
    cr_assert_str_eq(db_colname(r, 3), "d");
    cr_assert_null(db_colname(r, 7));
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 0), "héllo");
    cr_assert_eq(db_textlen(r, 0), strlen("héllo"));
    cr_assert_eq(db_int(r, 1), INT64_C(9007199254740993));
    cr_assert_str_eq(db_text(r, 1), "9007199254740993");
    cr_assert_float_eq(db_double(r, 2), 2.5, 1e-12);
    cr_assert(db_bool(r, 3));
    cr_assert_eq(db_int(r, 3), 1);
    cr_assert_str_eq(db_text(r, 3), "true", "booleans read true/false");
    cr_assert_eq(db_textlen(r, 3), 4);
    cr_assert(db_is_null(r, 4));
    cr_assert_null(db_text(r, 4));
    cr_assert_eq(db_int(r, 4), 0);
    cr_assert_not(db_bool(r, 4));
    cr_assert_str_eq(db_text(r, 5), "abc");
    cr_assert_eq(db_int(r, 6), -7);
    cr_assert(db_next(r));
    cr_assert(db_is_null(r, 0), "a NULL string binds SQL NULL");
    cr_assert_float_eq(db_double(r, 2), 0.1, 0, "doubles round-trip exactly");
    cr_assert_not(db_next(r));
    cr_assert_null(db_text(r, 0), "no current row");
    cr_assert_eq(db_rows_error(r), 0);
    db_rows_free(r);

    /* Typed numbers need no cast; text takes the type of where it is used. */
    cr_assert_eq(dbt_query_int(c, "SELECT $1 + 1", DB_ARGS(DB_INT(41))), 42);
    cr_assert_eq(
        dbt_query_int(c, "SELECT count(*) FROM (SELECT 1 FROM t LIMIT $1) s", DB_ARGS(DB_INT(1))), 1);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM t WHERE d = $1", DB_ARGS(DB_BOOL(true))), 1);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM t WHERE d = $1", DB_ARGS(DB_TEXT("true"))), 1);
    char buf[64];
    cr_assert_str_eq(query_text(c, "SELECT $1::float8", DB_ARGS(DB_DOUBLE(NAN)), buf, sizeof(buf)),
                     "NaN");
    cr_assert_str_eq(
        query_text(c, "SELECT $1::float8", DB_ARGS(DB_DOUBLE(-INFINITY)), buf, sizeof(buf)),
        "-Infinity");
    cr_assert_str_eq(
        query_text(c, "SELECT $1 || '!'", DB_ARGS(DB_TEXTN("it's $1", 7)), buf, sizeof(buf)),
        "it's $1!");

    /* PostgreSQL text cannot hold NUL. */
    cr_assert_null(db_query(c, "SELECT $1", DB_ARGS(DB_TEXTN("a\0b", 3))));
    cr_assert_eq(db_errkind(c), DB_ERR_CHECK, "%s", db_errmsg(c));

    /* db_exec counts rows changed, not rows returned. */
    cr_assert_eq(db_exec(c, "UPDATE t SET g = 1", DB_NOARGS), 2);
    cr_assert_eq(db_exec(c, "SELECT * FROM t", DB_NOARGS), 0);
    cr_assert_eq(db_exec(c, "DELETE FROM t WHERE a IS NULL", DB_NOARGS), 1);
    db_release(c);
    db_close(db);
}

Test(pg, timestamps_read_like_sqlite)
{
    PGTEST_REQUIRE();
    struct db *db = open_url(owner_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    char buf[64];
    cr_assert_str_eq(query_text(c, "SELECT '2026-11-25 17:45:49.123456+00'::timestamptz", DB_NOARGS,
                                buf, sizeof(buf)),
                     "2026-11-25T17:45:49.123Z", "milliseconds, truncated, Z");
    cr_assert_str_eq(query_text(c, "SELECT '2026-11-25 19:45:49.5+02'::timestamptz", DB_NOARGS, buf,
                                sizeof(buf)),
                     "2026-11-25T17:45:49.500Z");
    cr_assert_str_eq(
        query_text(c, "SELECT '2026-01-01 00:00:00'::timestamptz", DB_NOARGS, buf, sizeof(buf)),
        "2026-01-01T00:00:00.000Z");
    cr_assert_str_eq(
        query_text(c, "SELECT '2024-02-29 23:59:59.999'::timestamp", DB_NOARGS, buf, sizeof(buf)),
        "2024-02-29T23:59:59.999Z", "timestamp without time zone taken as UTC");
    /* Even if a statement changes the session's zone, the value reads in UTC. */
    dbt_exec_ok(c, "SET TimeZone = 'Asia/Kolkata'");
    cr_assert_str_eq(query_text(c, "SELECT '2026-11-25 17:45:49.123Z'::timestamptz", DB_NOARGS, buf,
                                sizeof(buf)),
                     "2026-11-25T17:45:49.123Z");
    dbt_exec_ok(c, "SET TimeZone = 'America/St_Johns'"); /* -03:30 */
    cr_assert_str_eq(
        query_text(c, "SELECT '2026-01-01 01:00:00Z'::timestamptz", DB_NOARGS, buf, sizeof(buf)),
        "2026-01-01T01:00:00.000Z");
    dbt_exec_ok(c, "SET TimeZone = 'UTC'");
    cr_assert_str_eq(query_text(c, "SELECT 'infinity'::timestamptz", DB_NOARGS, buf, sizeof(buf)),
                     "infinity", "no ISO form: left as PostgreSQL writes it");

    /* What the API sends back compares equal to what is stored (timestamptz(3)). */
    dbt_exec_ok(c, "CREATE TABLE ev (at timestamptz(3) NOT NULL DEFAULT now(), n timestamptz)");
    dbt_exec_ok(c, "INSERT INTO ev DEFAULT VALUES");
    char at[64];
    query_text(c, "SELECT at FROM ev", DB_NOARGS, at, sizeof(at));
    cr_assert(iso_ms_utc(at), "%s", at);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM ev WHERE at = $1", DB_ARGS(DB_TEXT(at))), 1);
    struct db_rows *r = db_query(c, "SELECT n, at FROM ev", DB_NOARGS);
    cr_assert_not_null(r);
    cr_assert(db_next(r));
    cr_assert(db_is_null(r, 0));
    cr_assert_null(db_text(r, 0));
    cr_assert_eq(db_textlen(r, 1), 24);
    db_rows_free(r);
    db_release(c);
    db_close(db);
}

Test(pg, uuid_and_jsonb_as_text)
{
    PGTEST_REQUIRE();
    struct db *db = open_url(owner_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE u (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), doc jsonb)");
    char buf[128];
    query_text(c, "INSERT INTO u (doc) VALUES ($1) RETURNING id",
               DB_ARGS(DB_TEXT("{\"b\": [1, 2], \"a\": \"x\"}")), buf, sizeof(buf));
    cr_assert(uuid_valid(buf), "%s", buf);
    cr_assert_eq(buf[14], '4', "%s", buf);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM u WHERE id = $1", DB_ARGS(DB_TEXT(buf))), 1);
    /* uuid text comes back lowercase whatever the case it went in with. */
    const char *upper = "0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B";
    cr_assert_eq(db_exec(c, "INSERT INTO u (id) VALUES ($1)", DB_ARGS(DB_TEXT(upper))), 1);
    cr_assert_str_eq(
        query_text(c, "SELECT id FROM u WHERE doc IS NULL", DB_NOARGS, buf, sizeof(buf)),
        "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
    cr_assert_str_eq(
        query_text(c, "SELECT doc FROM u WHERE doc IS NOT NULL", DB_NOARGS, buf, sizeof(buf)),
        "{\"a\": \"x\", \"b\": [1, 2]}");
    cr_assert_str_eq(
        query_text(c, "SELECT doc->>'a' FROM u WHERE doc IS NOT NULL", DB_NOARGS, buf, sizeof(buf)),
        "x");
    expect_fail(c, DB_ERR_CHECK, "INSERT INTO u (id) VALUES ($1)", DB_ARGS(DB_TEXT("nope")));
    expect_fail(c, DB_ERR_CHECK, "INSERT INTO u (doc) VALUES ($1)", DB_ARGS(DB_TEXT("{bad")));
    db_release(c);
    db_close(db);
}

Test(pg, errors_are_classified)
{
    PGTEST_REQUIRE();
    struct db *db = open_url(owner_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE p (id int PRIMARY KEY)");
    dbt_exec_ok(c, "CREATE TABLE ch (id int PRIMARY KEY, p int REFERENCES p (id),"
               " v int NOT NULL CHECK (v > 0), s varchar(3))");
    dbt_exec_ok(c, "INSERT INTO p VALUES (1)");
    const char *ins = "INSERT INTO ch (id, p, v) VALUES ($1, $2, $3)";
    cr_assert_eq(db_exec(c, ins, DB_ARGS(DB_INT(1), DB_INT(1), DB_INT(1))), 1, "%s", db_errmsg(c));
    cr_assert_eq(db_errkind(c), DB_ERR_NONE);
    cr_assert_str_eq(db_errmsg(c), "");
    expect_fail(c, DB_ERR_UNIQUE, ins, DB_ARGS(DB_INT(1), DB_INT(1), DB_INT(1)));
    cr_assert_not_null(strstr(db_errmsg(c), "ch_pkey"), "%s", db_errmsg(c));
    cr_assert_null(strstr(db_errmsg(c), "Key ("), "no DETAIL with row values: %s", db_errmsg(c));
    expect_fail(c, DB_ERR_FOREIGN_KEY, ins, DB_ARGS(DB_INT(2), DB_INT(9), DB_INT(1)));
    expect_fail(c, DB_ERR_FOREIGN_KEY, "DELETE FROM p", DB_NOARGS);
    expect_fail(c, DB_ERR_CHECK, ins, DB_ARGS(DB_INT(3), DB_INT(1), DB_INT(0)));
    expect_fail(c, DB_ERR_NOT_NULL, ins, DB_ARGS(DB_INT(4), DB_INT(1), DB_NULL));
    expect_fail(c, DB_ERR_CHECK, "INSERT INTO ch (id, v, s) VALUES (5, 1, $1)",
                DB_ARGS(DB_TEXT("four")));
    expect_fail(c, DB_ERR_CHECK, ins, DB_ARGS(DB_INT(6), DB_INT(1), DB_TEXT("x")));
    expect_fail(c, DB_ERR_CHECK, "INSERT INTO ch (id, v) VALUES ($1, 1)", DB_ARGS(DB_BOOL(true)));
    expect_fail(c, DB_ERR_OTHER, "INSERT INTO nope VALUES (1)", DB_NOARGS);
    cr_assert_not_null(strstr(db_errmsg(c), "nope"), "%s", db_errmsg(c));
    expect_fail(c, DB_ERR_OTHER, "SELEC 1", DB_NOARGS);
    /* The number of parameters must match the statement's. */
    expect_fail(c, DB_ERR_OTHER, "SELECT $1::int, $2::int", DB_ARGS(DB_INT(1)));
    cr_assert_not_null(strstr(db_errmsg(c), "2 parameter(s) but 1"), "%s", db_errmsg(c));
    expect_fail(c, DB_ERR_OTHER, "SELECT $1::int", DB_ARGS(DB_INT(1), DB_TEXT("x")));
    /* One statement per db_exec; db_exec_script runs several. */
    expect_fail(c, DB_ERR_OTHER, "SELECT 1; SELECT 2", DB_NOARGS);
    cr_assert_eq(db_exec_script(c, "INSERT INTO p VALUES (2); INSERT INTO p VALUES (3);"), 0, "%s",
                 db_errmsg(c));
    cr_assert_eq(db_exec_script(c, "-- only a comment\n"), 0, "%s", db_errmsg(c));
    cr_assert_eq(db_exec_script(c, "INSERT INTO p VALUES (4); INSERT INTO p VALUES (4);"), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_UNIQUE);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM p WHERE id = 4", DB_NOARGS), 0,
                 "a failed script is all or nothing");
    expect_fail(c, DB_ERR_OTHER, "", DB_NOARGS);
    db_release(c);
    db_close(db);

    /* Privileges: the application's role cannot create tables. */
    migrate_ok(owner_url);
    db = open_url(app_url, NULL);
    c = dbt_acquire(db);
    expect_fail(c, DB_ERR_PERMISSION, "CREATE TABLE x (a int)", DB_NOARGS);
    expect_fail(c, DB_ERR_PERMISSION, "DROP TABLE users", DB_NOARGS);
    db_release(c);
    db_close(db);
}

Test(pg, statement_timeout_reports_busy)
{
    PGTEST_REQUIRE();
    struct db_options opt = {.statement_timeout_ms = 200};
    struct db *db = open_url(app_url, &opt);
    struct db_conn *c = dbt_acquire(db);
    int64_t t0 = mono_ms();
    cr_assert_null(db_query(c, "SELECT pg_sleep(5)", DB_NOARGS));
    cr_assert_lt(mono_ms() - t0, 3000);
    cr_assert_eq(db_errkind(c), DB_ERR_BUSY, "%s", db_errmsg(c));
    cr_assert_eq(dbt_query_int(c, "SELECT 7", DB_NOARGS), 7, "the connection is still usable");
    db_release(c);
    db_close(db);
}

Test(pg, nested_result_sets)
{
    PGTEST_REQUIRE();
    struct db *db = open_url(owner_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    struct db_rows *a = db_query(c, "SELECT generate_series(1, 3)", DB_NOARGS);
    cr_assert_not_null(a);
    int64_t sum = 0;
    while (db_next(a)) {
        struct db_rows *b = db_query(c, "SELECT $1 * 10", DB_ARGS(DB_INT(db_int(a, 0))));
        cr_assert_not_null(b, "%s", db_errmsg(c));
        cr_assert(db_next(b));
        sum += db_int(b, 0);
        db_rows_free(b);
    }
    cr_assert_eq(sum, 60);
    db_rows_free(a);
    db_release(c);
    db_close(db);
}

/* ---- transactions ---------------------------------------------------------------------- */

Test(pg, transactions)
{
    PGTEST_REQUIRE();
    struct db_options opt = {.pool_max = 1};
    struct db *db = open_url(owner_url, &opt);
    struct db_conn *c = dbt_acquire(db);
    dbt_exec_ok(c, "CREATE TABLE t (id int PRIMARY KEY)");
    cr_assert_not(db_in_transaction(c));
    cr_assert_eq(db_rollback(c), 0, "rollback outside a transaction is a no-op");
    cr_assert_eq(db_commit(c), -1);

    cr_assert_eq(db_begin(c), 0, "%s", db_errmsg(c));
    cr_assert(db_in_transaction(c));
    cr_assert_eq(db_begin(c), -1, "no nesting");
    dbt_exec_ok(c, "INSERT INTO t VALUES (1)");
    cr_assert_eq(db_commit(c), 0, "%s", db_errmsg(c));
    cr_assert_not(db_in_transaction(c));

    cr_assert_eq(db_begin(c), 0);
    dbt_exec_ok(c, "INSERT INTO t VALUES (2)");
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) + 0 FROM t", DB_NOARGS), 2);
    cr_assert_eq(db_rollback(c), 0);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM t", DB_NOARGS), 1);
    /* Statements prepared inside a rolled-back transaction are still there to reuse. */
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) + 0 FROM t", DB_NOARGS), 1, "%s", db_errmsg(c));
    /* And a script that throws every prepared statement away does not break the cache. */
    cr_assert_eq(db_exec_script(c, "DEALLOCATE ALL"), 0, "%s", db_errmsg(c));
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) + 0 FROM t", DB_NOARGS), 1, "%s", db_errmsg(c));

    /* A failed statement dooms the transaction: commit fails with that statement's error. */
    cr_assert_eq(db_begin(c), 0);
    dbt_exec_ok(c, "INSERT INTO t VALUES (3)");
    expect_fail(c, DB_ERR_UNIQUE, "INSERT INTO t VALUES (1)", DB_NOARGS);
    cr_assert_eq(db_exec(c, "INSERT INTO t VALUES (4)", DB_NOARGS), -1, "aborted transaction");
    cr_assert_eq(db_commit(c), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_UNIQUE, "%s", db_errmsg(c));
    cr_assert_not_null(strstr(db_errmsg(c), "rolled back"), "%s", db_errmsg(c));
    cr_assert_not(db_in_transaction(c));
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM t", DB_NOARGS), 1);

    /* A holder that releases mid-transaction: rolled back, the next one starts clean. */
    cr_assert_eq(db_begin(c), 0);
    dbt_exec_ok(c, "INSERT INTO t VALUES (5)");
    db_release(c);
    c = dbt_acquire(db);
    cr_assert_not(db_in_transaction(c));
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM t", DB_NOARGS), 1);
    db_release(c);
    db_close(db);
}

/* ---- statement cache ------------------------------------------------------------------- */

Test(pg, statement_cache_is_bounded)
{
    PGTEST_REQUIRE();
    struct db *db = open_url(owner_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    const char *count_sql = "SELECT count(*) FROM pg_prepared_statements";
    for (int i = 0; i < 3; i++)
        cr_assert_eq(dbt_query_int(c, "SELECT 42", DB_NOARGS), 42);
    int64_t few = dbt_query_int(c, count_sql, DB_NOARGS);
    cr_assert_leq(few, 3, "the same SQL is prepared once");
    char sql[64];
    for (int i = 0; i < DB_PG_STMT_CACHE * 2; i++) {
        snprintf(sql, sizeof(sql), "SELECT %d + $1", i);
        cr_assert_eq(dbt_query_int(c, sql, DB_ARGS(DB_INT(1))), i + 1, "%s", db_errmsg(c));
    }
    int64_t many = dbt_query_int(c, count_sql, DB_NOARGS);
    cr_assert_leq(many, DB_PG_STMT_CACHE, "%lld prepared", (long long)many);
    cr_assert_geq(many, DB_PG_STMT_CACHE / 2);

    /* A table changing shape under a prepared SELECT *: prepared again, transparently. */
    dbt_exec_ok(c, "CREATE TABLE s (a int)");
    dbt_exec_ok(c, "INSERT INTO s VALUES (1)");
    struct db_rows *r = db_query(c, "SELECT * FROM s", DB_NOARGS);
    cr_assert_not_null(r);
    cr_assert_eq(db_ncols(r), 1);
    db_rows_free(r);
    dbt_exec_ok(c, "ALTER TABLE s ADD COLUMN b int DEFAULT 2");
    r = db_query(c, "SELECT * FROM s", DB_NOARGS);
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert_eq(db_ncols(r), 2);
    cr_assert(db_next(r));
    cr_assert_eq(db_int(r, 1), 2);
    db_rows_free(r);
    db_release(c);
    db_close(db);
}

/* ---- migrations ------------------------------------------------------------------------ */

/* 0002 takes a while, so racing runners really overlap; 0003 would show a double apply. */
static const struct embedded_file set_race[] = {
    MFILE("m/postgres/0001_counter.sql", "CREATE TABLE counter (n integer);"),
    MFILE("m/postgres/0002_fill.sql", "CREATE TABLE fill (i integer);"
                                      "INSERT INTO fill SELECT generate_series(1, 100000);"
                                      "SELECT pg_sleep(0.3);"),
    MFILE("m/postgres/0003_count.sql", "INSERT INTO counter VALUES (1);"),
};

struct racer {
    const struct embedded_file *files;
    size_t nfiles;
    size_t applied;
    int rc;
    char err[1024];
};

static void *race_thread(void *arg)
{
    struct racer *r = arg;
    struct db *db = NULL; /* its own pool: as if another process */
    r->rc = db_open(&db, owner_url, r->err, sizeof(r->err));
    if (r->rc != 0)
        return NULL;
    struct migrate_report rep;
    r->rc = migrate_run(db, r->files, r->nfiles, &rep, r->err, sizeof(r->err));
    r->applied = rep.napplied;
    migrate_report_free(&rep);
    db_close(db);
    return NULL;
}

static size_t race(const struct embedded_file *files, size_t nfiles, int nthreads)
{
    struct racer r[4];
    pthread_t t[4];
    memset(r, 0, sizeof(r));
    for (int i = 0; i < nthreads; i++) {
        r[i].files = files;
        r[i].nfiles = nfiles;
        cr_assert_eq(pthread_create(&t[i], NULL, race_thread, &r[i]), 0);
    }
    size_t total = 0;
    for (int i = 0; i < nthreads; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(r[i].rc, 0, "runner %d: %s", i, r[i].err);
        total += r[i].applied;
    }
    return total;
}

Test(pg, concurrent_migrators_apply_each_once)
{
    PGTEST_REQUIRE();
    cr_assert_eq(race(set_race, ARRAY_LEN(set_race), 3), 3, "each migration applied once");
    struct db *db = open_url(owner_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM schema_migrations", DB_NOARGS), 3);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM counter", DB_NOARGS), 1);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM fill", DB_NOARGS), 100000);
    char buf[64];
    cr_assert(iso_ms_utc(query_text(c, "SELECT applied_at FROM schema_migrations LIMIT 1",
                                    DB_NOARGS, buf, sizeof(buf))),
              "%s", buf);
    db_release(c);
    db_close(db);

    /* The embedded PostgreSQL migrations, raced the same way on a fresh database. */
    pgtest_drop_db(owner_url);
    pgtest_create_db(owner_url, sizeof(owner_url), app_url, sizeof(app_url));
    cr_assert_geq(race(NULL, 0, 2), 1);
    db = open_url(owner_url, NULL);
    struct migrate_status st;
    char err[512];
    cr_assert_eq(migrate_status(db, NULL, 0, &st, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(st.v[0].name, "0001_init");
    for (size_t i = 0; i < st.n; i++)
        cr_assert_eq(st.v[i].state, MIGRATE_APPLIED, "%s", st.v[i].name);
    migrate_status_free(&st);
    db_close(db);
}

static const struct embedded_file set_v1[] = {
    MFILE("m/postgres/0001_a.sql", "CREATE TABLE a (x integer);"),
};

static const struct embedded_file set_v1_changed[] = {
    MFILE("m/postgres/0001_a.sql", "CREATE TABLE a (x integer, y text);"),
    MFILE("m/postgres/0002_b.sql", "CREATE TABLE b (x integer);"),
};

static const struct embedded_file set_bad[] = {
    MFILE("m/postgres/0001_a.sql", "CREATE TABLE a (x integer);"),
    MFILE("m/postgres/0002_bad.sql", "CREATE TABLE x (a integer);\n"
                                     "INSERT INTO x VALUES (1);\n"
                                     "INSERT INTO nope VALUES (1);\n"),
};

Test(pg, migrations_refuse_changes_and_roll_back_failures)
{
    PGTEST_REQUIRE();
    struct db *db = open_url(owner_url, NULL);
    struct migrate_report rep;
    char err[1024] = "";
    cr_assert_eq(migrate_run(db, set_v1, ARRAY_LEN(set_v1), &rep, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rep.napplied, 1);
    migrate_report_free(&rep);
    cr_assert_eq(migrate_run(db, set_v1_changed, ARRAY_LEN(set_v1_changed), &rep, err, sizeof(err)),
                 -1);
    cr_assert_eq(rep.napplied, 0);
    migrate_report_free(&rep);
    cr_assert_not_null(strstr(err, "changed"), "%s", err);
    cr_assert_not_null(strstr(err, "m/postgres/0001_a.sql"), "%s", err);
    struct db_conn *c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM schema_migrations", DB_NOARGS), 1);
    cr_assert_eq(dbt_query_int(c, "SELECT (to_regclass('b') IS NULL)::int", DB_NOARGS), 1,
                 "nothing applied");
    db_release(c);
    db_close(db);

    pgtest_drop_db(owner_url);
    pgtest_create_db(owner_url, sizeof(owner_url), app_url, sizeof(app_url));
    db = open_url(owner_url, NULL);
    cr_assert_eq(migrate_run(db, set_bad, ARRAY_LEN(set_bad), &rep, err, sizeof(err)), -1);
    cr_assert_not_null(strstr(err, "0002_bad"), "%s", err);
    cr_assert_not_null(strstr(err, "nope"), "%s", err);
    cr_assert_eq(rep.napplied, 1, "0001 went in its own transaction");
    migrate_report_free(&rep);
    c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "SELECT (to_regclass('x') IS NULL)::int", DB_NOARGS), 1,
                 "0002 rolled back");
    cr_assert_eq(dbt_query_int(c, "SELECT max(version) FROM schema_migrations", DB_NOARGS), 1);
    db_release(c);
    db_close(db);
}

struct column {
    const char *name, *type;
    bool notnull;
    const char *dflt; /* substring of the default's text; NULL: no default */
};

/* The specification's Drizzle users table, column by column, in native types. */
static const struct column users_columns[] = {
    {"id", "uuid", true, "gen_random_uuid()"},
    {"tenant_id", "uuid", true, NULL},
    {"email", "character varying(255)", true, NULL},
    {"first_name", "character varying(100)", false, NULL},
    {"last_name", "character varying(100)", false, NULL},
    {"display_name", "character varying(200)", false, NULL},
    {"avatar", "text", false, NULL},
    {"phone", "character varying(20)", false, NULL},
    {"status", "character varying(20)", true, "'pending'"},
    {"email_verified", "boolean", true, "false"},
    {"phone_verified", "boolean", true, "false"},
    {"mfa_enabled", "boolean", true, "false"},
    {"last_login_at", "timestamp(3) with time zone", false, NULL},
    {"created_at", "timestamp(3) with time zone", true, "now()"},
    {"updated_at", "timestamp(3) with time zone", true, "now()"},
    {"deleted_at", "timestamp(3) with time zone", false, NULL},
    /* ours, from 0002_identity: not in the spec's Drizzle schema */
    {"password_hash", "text", false, NULL},
    {"is_global_admin", "boolean", true, "false"},
};

Test(pg, schema_0001_matches_the_spec)
{
    PGTEST_REQUIRE();
    migrate_ok(owner_url);
    struct db *db = open_url(owner_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    struct db_rows *r = db_query(c,
                                 "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
                                 " a.attnotnull, pg_get_expr(d.adbin, d.adrelid)"
                                 " FROM pg_attribute a LEFT JOIN pg_attrdef d"
                                 " ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
                                 " WHERE a.attrelid = 'users'::regclass AND a.attnum > 0"
                                 " AND NOT a.attisdropped ORDER BY a.attnum",
                                 DB_NOARGS);
    cr_assert_not_null(r, "%s", db_errmsg(c));
    size_t i = 0;
    for (; db_next(r); i++) {
        cr_assert_lt(i, ARRAY_LEN(users_columns), "extra column %s", db_text(r, 0));
        const struct column *want = &users_columns[i];
        cr_assert_str_eq(db_text(r, 0), want->name);
        cr_assert_str_eq(db_text(r, 1), want->type, "%s", want->name);
        cr_assert_eq(db_bool(r, 2), want->notnull, "%s NOT NULL", want->name);
        const char *dflt = db_text(r, 3);
        if (!want->dflt)
            cr_assert_null(dflt, "%s has no default", want->name);
        else
            cr_assert(dflt && strstr(dflt, want->dflt), "%s default %s", want->name, dflt);
    }
    cr_assert_eq(i, ARRAY_LEN(users_columns));
    db_rows_free(r);

    /* The three Drizzle indexes and the partial unique one. */
    static const char *const idx[][2] = {
        {"users_tenant_idx", "(tenant_id)"},
        {"users_email_idx", "(email)"},
        {"users_status_idx", "(status)"},
        {"users_tenant_email_uniq", "UNIQUE INDEX users_tenant_email_uniq ON public.users USING "
                                    "btree (tenant_id, email) WHERE (deleted_at IS NULL)"},
    };
    char buf[512];
    for (size_t k = 0; k < ARRAY_LEN(idx); k++) {
        query_text(c,
                   "SELECT indexdef FROM pg_indexes WHERE tablename = 'users' AND indexname = $1",
                   DB_ARGS(DB_TEXT(idx[k][0])), buf, sizeof(buf));
        cr_assert_not_null(strstr(buf, idx[k][1]), "%s", buf);
    }
    /* RLS enabled and forced on both tables, with the policy. */
    cr_assert_eq(dbt_query_int(c,
                           "SELECT count(*) FROM pg_class WHERE relname IN ('users', 'tenants')"
                           " AND relrowsecurity AND relforcerowsecurity",
                           DB_NOARGS),
                 2);
    cr_assert_eq(dbt_query_int(c,
                           "SELECT count(*) FROM pg_policies WHERE policyname = 'tenant_isolation'"
                           " AND tablename IN ('users', 'tenants') AND cmd = 'ALL'",
                           DB_NOARGS),
                 2);
    db_release(c);
    db_close(db);
}

Test(pg, schema_0001_defaults_and_constraints)
{
    PGTEST_REQUIRE();
    migrate_ok(owner_url);
    struct db *db = open_url(owner_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    db_set_rls_bypass(c, true);
    char t1[UUID_STRLEN + 1], t2[UUID_STRLEN + 1], nobody[UUID_STRLEN + 1];
    dbt_insert_tenant(c, t1, "one");
    dbt_insert_tenant(c, t2, "two");
    uuid_v7(nobody);

    struct db_rows *r =
        db_query(c,
                 "SELECT plan, settings, status, created_at, updated_at, deleted_at FROM tenants"
                 " WHERE id = $1",
                 DB_ARGS(DB_TEXT(t1)));
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert(db_next(r));
    cr_assert_str_eq(db_text(r, 0), "free");
    cr_assert_str_eq(db_text(r, 1), "{}");
    cr_assert_str_eq(db_text(r, 2), "active");
    cr_assert(iso_ms_utc(db_text(r, 3)), "%s", db_text(r, 3));
    cr_assert(iso_ms_utc(db_text(r, 4)));
    cr_assert(db_is_null(r, 5));
    db_rows_free(r);

    const char *ins = "INSERT INTO users (tenant_id, email) VALUES ($1, $2)";
    char uid[64];
    query_text(c, "INSERT INTO users (tenant_id, email) VALUES ($1, $2) RETURNING id",
               DB_ARGS(DB_TEXT(t1), DB_TEXT("a@x.io")), uid, sizeof(uid));
    cr_assert(uuid_valid(uid), "%s", uid);
    r = db_query(c,
                 "SELECT status, email_verified, phone_verified, mfa_enabled, created_at"
                 " FROM users WHERE id = $1",
                 DB_ARGS(DB_TEXT(uid)));
    cr_assert(r && db_next(r));
    cr_assert_str_eq(db_text(r, 0), "pending");
    for (int i = 1; i <= 3; i++)
        cr_assert_not(db_bool(r, i), "column %s", db_colname(r, i));
    cr_assert(iso_ms_utc(db_text(r, 4)), "%s", db_text(r, 4));
    db_rows_free(r);

    expect_fail(c, DB_ERR_UNIQUE, ins, DB_ARGS(DB_TEXT(t1), DB_TEXT("a@x.io")));
    cr_assert_eq(db_exec(c, ins, DB_ARGS(DB_TEXT(t2), DB_TEXT("a@x.io"))), 1,
                 "same email, other tenant");
    cr_assert_eq(db_exec(c,
                         "UPDATE users SET deleted_at = '2026-01-01T00:00:00.000Z'"
                         " WHERE tenant_id = $1",
                         DB_ARGS(DB_TEXT(t1))),
                 1);
    cr_assert_eq(db_exec(c, ins, DB_ARGS(DB_TEXT(t1), DB_TEXT("a@x.io"))), 1, "%s", db_errmsg(c));
    expect_fail(c, DB_ERR_FOREIGN_KEY, ins, DB_ARGS(DB_TEXT(nobody), DB_TEXT("b@x.io")));
    expect_fail(c, DB_ERR_NOT_NULL, ins, DB_ARGS(DB_TEXT(t1), DB_NULL));
    char long_email[300];
    memset(long_email, 'b', 251);
    memcpy(long_email + 251, "@x.io", 6); /* 256 characters */
    expect_fail(c, DB_ERR_CHECK, ins, DB_ARGS(DB_TEXT(t1), DB_TEXT(long_email)));
    const char *ins_flag =
        "INSERT INTO users (tenant_id, email, email_verified) VALUES ($1, $2, $3)";
    expect_fail(c, DB_ERR_CHECK, ins_flag, DB_ARGS(DB_TEXT(t1), DB_TEXT("f@x.io"), DB_INT(2)));
    expect_fail(c, DB_ERR_CHECK, ins_flag,
                DB_ARGS(DB_TEXT(t1), DB_TEXT("f@x.io"), DB_TEXT("maybe")));
    cr_assert_eq(db_exec(c, ins_flag, DB_ARGS(DB_TEXT(t1), DB_TEXT("f@x.io"), DB_BOOL(true))), 1);
    expect_fail(c, DB_ERR_UNIQUE, "INSERT INTO tenants (slug, name) VALUES ('one', 'Dup')",
                DB_NOARGS);
    expect_fail(c, DB_ERR_CHECK,
                "INSERT INTO tenants (slug, name, settings) VALUES ('s3', 'S', 'not json')",
                DB_NOARGS);
    expect_fail(c, DB_ERR_CHECK,
                "INSERT INTO tenants (slug, name, status) VALUES ('s4', 'S', 'deleted')",
                DB_NOARGS);
    expect_fail(c, DB_ERR_FOREIGN_KEY, "DELETE FROM tenants WHERE id = $1", DB_ARGS(DB_TEXT(t2)));
    db_release(c);
    db_close(db);
}

/* ---- row-level security -------------------------------------------------------------------- */

struct two_tenants {
    char a[UUID_STRLEN + 1], b[UUID_STRLEN + 1];
};

/* Migrated database with tenants A (2 users) and B (1 user), made by the owner. */
static void rls_fixture(struct two_tenants *t)
{
    migrate_ok(owner_url);
    struct db *db = open_url(owner_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    /* FORCE: the owner too sees nothing without a tenant or the bypass. */
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM tenants", DB_NOARGS), 0);
    db_set_rls_bypass(c, true);
    dbt_insert_tenant(c, t->a, "a");
    dbt_insert_tenant(c, t->b, "b");
    const char *ins = "INSERT INTO users (tenant_id, email) VALUES ($1, $2)";
    cr_assert_eq(db_exec(c, ins, DB_ARGS(DB_TEXT(t->a), DB_TEXT("a1@x.io"))), 1);
    cr_assert_eq(db_exec(c, ins, DB_ARGS(DB_TEXT(t->a), DB_TEXT("a2@x.io"))), 1);
    cr_assert_eq(db_exec(c, ins, DB_ARGS(DB_TEXT(t->b), DB_TEXT("b1@x.io"))), 1);
    db_release(c);
    db_close(db);
}

Test(pg, rls_a_query_without_tenant_filter_sees_only_its_tenant)
{
    PGTEST_REQUIRE();
    struct two_tenants t;
    rls_fixture(&t);
    struct db *db = open_url(app_url, NULL);
    struct db_conn *c = dbt_acquire(db);

    /* No tenant set: nothing at all. */
    cr_assert_null(db_tenant(c));
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 0);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM tenants", DB_NOARGS), 0);

    /* Tenant A: a query that forgot its tenant filter still sees only A's rows. */
    cr_assert_eq(db_set_tenant(c, t.a), 0);
    cr_assert_str_eq(db_tenant(c), t.a);
    struct db_rows *r = db_query(c, "SELECT * FROM users", DB_NOARGS);
    cr_assert_not_null(r, "%s", db_errmsg(c));
    int n = 0;
    while (db_next(r)) {
        cr_assert_str_eq(db_text(r, 1), t.a);
        n++;
    }
    db_rows_free(r);
    cr_assert_eq(n, 2);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM tenants", DB_NOARGS), 1);
    cr_assert_eq(
        dbt_query_int(c, "SELECT count(*) FROM users WHERE tenant_id = $1", DB_ARGS(DB_TEXT(t.b))), 0,
        "B's rows are invisible even when asked for");
    /* Writing B's rows: an insert is refused, updates and deletes find nothing. */
    expect_fail(c, DB_ERR_PERMISSION, "INSERT INTO users (tenant_id, email) VALUES ($1, $2)",
                DB_ARGS(DB_TEXT(t.b), DB_TEXT("evil@x.io")));
    cr_assert_not_null(strstr(db_errmsg(c), "row-level security"), "%s", db_errmsg(c));
    cr_assert_eq(db_exec(c, "UPDATE users SET status = 'x'", DB_NOARGS), 2);
    cr_assert_eq(db_exec(c, "DELETE FROM users WHERE tenant_id = $1", DB_ARGS(DB_TEXT(t.b))), 0);
    /* Nor can a row of A be moved to B. */
    expect_fail(c, DB_ERR_PERMISSION, "UPDATE users SET tenant_id = $1", DB_ARGS(DB_TEXT(t.b)));
    /* A's own insert works. */
    cr_assert_eq(db_exec(c, "INSERT INTO users (tenant_id, email) VALUES ($1, $2)",
                         DB_ARGS(DB_TEXT(t.a), DB_TEXT("a3@x.io"))),
                 1, "%s", db_errmsg(c));

    /* Uppercase ids are the same tenant; a non-UUID is refused and leaves no tenant set. */
    char upper[UUID_STRLEN + 1];
    for (size_t i = 0; i <= UUID_STRLEN; i++)
        upper[i] = (char)toupper((unsigned char)t.b[i]);
    cr_assert_eq(db_set_tenant(c, upper), 0);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 1);
    cr_assert_eq(db_set_tenant(c, "not-a-uuid"), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_CHECK);
    cr_assert_null(db_tenant(c));
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 0);

    /* The bypass: every tenant's rows. */
    cr_assert_eq(db_set_rls_bypass(c, true), 0);
    cr_assert(db_rls_bypass(c));
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 4);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM tenants", DB_NOARGS), 2);
    db_set_rls_bypass(c, false);
    cr_assert_eq(db_set_tenant(c, NULL), 0);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 0);
    db_release(c);
    db_close(db);
}

Test(pg, rls_context_never_leaks_to_the_next_holder)
{
    PGTEST_REQUIRE();
    struct two_tenants t;
    rls_fixture(&t);
    struct db_options opt = {.pool_max = 1}; /* the same server connection every time */
    struct db *db = open_url(app_url, &opt);
    struct db_conn *c = dbt_acquire(db);
    int64_t pid = dbt_query_int(c, "SELECT pg_backend_pid()", DB_NOARGS);
    db_set_tenant(c, t.a);
    db_set_rls_bypass(c, true);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 3);
    db_release(c);

    c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "SELECT pg_backend_pid()", DB_NOARGS), pid, "same connection");
    cr_assert_null(db_tenant(c));
    cr_assert_not(db_rls_bypass(c));
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 0);
    char buf[64];
    cr_assert_str_eq(
        query_text(c, "SELECT current_setting('app.tenant_id')", DB_NOARGS, buf, sizeof(buf)), "");

    /* Set inside a transaction that rolls back: the server forgets it, the driver resends. */
    db_set_tenant(c, t.b);
    cr_assert_eq(db_begin(c), 0);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 1);
    cr_assert_eq(db_rollback(c), 0);
    cr_assert_str_eq(
        query_text(c, "SELECT current_setting('app.tenant_id')", DB_NOARGS, buf, sizeof(buf)), t.b);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 1);
    /* And inside one that commits, it stays. */
    db_set_tenant(c, t.a);
    cr_assert_eq(db_begin(c), 0);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 2);
    cr_assert_eq(db_commit(c), 0);
    cr_assert_eq(dbt_query_int(c, "SELECT count(*) FROM users", DB_NOARGS), 2);
    db_release(c);
    db_close(db);
}

Test(pg, app_role_is_neither_owner_nor_superuser)
{
    PGTEST_REQUIRE();
    migrate_ok(owner_url);
    struct db *db = open_url(app_url, NULL);
    struct db_conn *c = dbt_acquire(db);
    char buf[64];
    cr_assert_str_eq(query_text(c, "SELECT current_user", DB_NOARGS, buf, sizeof(buf)), "zygo_api");
    cr_assert_eq(dbt_query_int(c,
                           "SELECT count(*) FROM pg_roles WHERE rolname = current_user"
                           " AND NOT rolsuper AND NOT rolbypassrls",
                           DB_NOARGS),
                 1);
    cr_assert_eq(dbt_query_int(c,
                           "SELECT count(*) FROM pg_tables WHERE tablename IN ('users', 'tenants')"
                           " AND tableowner <> current_user",
                           DB_NOARGS),
                 2);
    cr_assert_eq(dbt_query_int(c, "SELECT pg_has_role('zygo_app', 'MEMBER')::int", DB_NOARGS), 1);
    cr_assert_eq(
        dbt_query_int(c, "SELECT has_table_privilege('users', 'SELECT, INSERT')::int", DB_NOARGS), 1);
    db_release(c);

    /* The application's role may check that nothing is pending, without creating anything. */
    struct migrate_report rep;
    char err[1024] = "";
    cr_assert_eq(migrate_up(db, &rep, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(rep.napplied, 0);
    migrate_report_free(&rep);
    db_close(db);
}

/* ---- the pool ------------------------------------------------------------------------------ */

struct releaser {
    struct db_conn *c;
    int after_ms;
};

static void *release_later(void *arg)
{
    struct releaser *r = arg;
    usleep((useconds_t)r->after_ms * 1000);
    db_release(r->c);
    return NULL;
}

Test(pg, pool_exhaustion_waits_then_fails)
{
    PGTEST_REQUIRE();
    struct db_options opt = {.pool_max = 2, .pool_timeout_ms = 300};
    struct db *db = open_url(app_url, &opt);
    struct db_conn *a = dbt_acquire(db), *b = dbt_acquire(db);
    cr_assert_neq(a, b);
    char err[256] = "";
    int64_t t0 = mono_ms();
    cr_assert_null(db_acquire(db, err, sizeof(err)));
    int64_t waited = mono_ms() - t0;
    cr_assert_geq(waited, 280, "waited %lld ms", (long long)waited);
    cr_assert_lt(waited, 2000, "waited %lld ms", (long long)waited);
    cr_assert_not_null(strstr(err, "connection pool exhausted"), "%s", err);
    cr_assert_null(db_acquire(db, NULL, 0), "no error buffer is fine too");
    /* Readiness does not wait for a connection: the server answering is enough. */
    char reason[256] = "";
    cr_assert_eq(db_ping(db, reason, sizeof(reason)), 0, "%s", reason);

    /* A connection released while someone waits goes to the waiter. */
    pthread_t th;
    struct releaser rel = {a, 100};
    cr_assert_eq(pthread_create(&th, NULL, release_later, &rel), 0);
    t0 = mono_ms();
    struct db_conn *c = dbt_acquire(db);
    cr_assert_lt(mono_ms() - t0, 290);
    pthread_join(th, NULL);
    cr_assert_eq(dbt_query_int(c, "SELECT 1", DB_NOARGS), 1);
    db_release(c);
    db_release(b);
    db_release(b); /* one release too many is ignored */

    /* pool_timeout_ms < 0: fail at once. */
    db_close(db);
    opt.pool_timeout_ms = -1;
    opt.pool_max = 1;
    db = open_url(app_url, &opt);
    a = dbt_acquire(db);
    t0 = mono_ms();
    cr_assert_null(db_acquire(db, err, sizeof(err)));
    cr_assert_lt(mono_ms() - t0, 100);
    db_release(a);
    db_close(db);
}

struct worker {
    struct db *db;
    int ok;
};

static void *pool_worker(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < 20; i++) {
        struct db_conn *c = db_acquire(w->db, NULL, 0);
        if (!c)
            continue;
        struct db_rows *r = db_query(c,
                                     "SELECT count(*) FROM pg_stat_activity"
                                     " WHERE datname = current_database()"
                                     " AND application_name = 'zygo'",
                                     DB_NOARGS);
        if (r && db_next(r) && db_int(r, 0) >= 1 && db_int(r, 0) <= 3)
            w->ok++;
        db_rows_free(r);
        db_release(c);
    }
    return NULL;
}

Test(pg, pool_shared_by_threads_stays_within_its_size)
{
    PGTEST_REQUIRE();
    struct db_options opt = {.pool_max = 3, .pool_timeout_ms = 10000};
    struct db *db = open_url(app_url, &opt);
    struct worker w[8];
    pthread_t t[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct worker){db, 0};
        cr_assert_eq(pthread_create(&t[i], NULL, pool_worker, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(t[i], NULL);
        cr_assert_eq(w[i].ok, 20, "worker %d: %d of 20", i, w[i].ok);
    }
    db_close(db);
}

Test(pg, idle_connections_are_closed)
{
    PGTEST_REQUIRE();
    struct db_options opt = {.idle_timeout_s = 1};
    struct db *db = open_url(app_url, &opt);
    struct db_conn *c = dbt_acquire(db);
    int64_t pid = dbt_query_int(c, "SELECT pg_backend_pid()", DB_NOARGS);
    db_release(c);
    c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "SELECT pg_backend_pid()", DB_NOARGS), pid, "reused while fresh");
    db_release(c);
    usleep(1300 * 1000);
    c = dbt_acquire(db);
    cr_assert_neq(dbt_query_int(c, "SELECT pg_backend_pid()", DB_NOARGS), pid, "idle one closed");
    /* ... on the server too. */
    cr_assert_eq(
        dbt_query_int(c, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1", DB_ARGS(DB_INT(pid))),
        0);
    db_release(c);
    db_close(db);
}

Test(pg, a_killed_backend_is_replaced)
{
    PGTEST_REQUIRE();
    struct db_options opt = {.pool_max = 2};
    struct db *db = open_url(app_url, &opt);
    struct db_conn *c = dbt_acquire(db);
    int64_t pid = dbt_query_int(c, "SELECT pg_backend_pid()", DB_NOARGS);
    char sql[96];
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%lld)", (long long)pid);
    pgtest_admin_exec(sql);
    usleep(100 * 1000);
    cr_assert_null(db_query(c, "SELECT 1", DB_NOARGS));
    cr_assert_eq(db_errkind(c), DB_ERR_UNAVAILABLE, "%s", db_errmsg(c));
    cr_assert_not(db_in_transaction(c));
    db_release(c);
    c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "SELECT 1", DB_NOARGS), 1, "%s", db_errmsg(c));
    db_release(c);

    /* Killed while idle in the pool: noticed before it is handed out. */
    c = dbt_acquire(db);
    pid = dbt_query_int(c, "SELECT pg_backend_pid()", DB_NOARGS);
    db_release(c);
    snprintf(sql, sizeof(sql), "SELECT pg_terminate_backend(%lld)", (long long)pid);
    pgtest_admin_exec(sql);
    usleep(100 * 1000);
    c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "SELECT 1", DB_NOARGS), 1, "%s", db_errmsg(c));
    db_release(c);
    db_close(db);
}

Test(pg, server_restart_fails_fast_then_recovers)
{
    PGTEST_REQUIRE();
    if (!pgtest_can_restart())
        cr_skip_test("no local cluster to stop: ZYGO_TEST_PG_DIR is unset");
    struct db_options opt = {.pool_max = 3};
    struct db *db = open_url(app_url, &opt);
    /* Two idle connections in the pool, one held across the outage. */
    struct db_conn *a = dbt_acquire(db), *b = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(a, "SELECT 1", DB_NOARGS), 1);
    cr_assert_eq(dbt_query_int(b, "SELECT 1", DB_NOARGS), 1);
    db_release(a);
    struct db_conn *held = b;

    pgtest_server_stop();
    char reason[512] = "";
    int64_t t0 = mono_ms();
    cr_assert_eq(db_ping(db, reason, sizeof(reason)), -1);
    cr_assert_lt(mono_ms() - t0, 5000, "ping must not hang");
    cr_assert_not_null(strstr(reason, "cannot connect"), "%s", reason);

    cr_assert_null(db_query(held, "SELECT 1", DB_NOARGS));
    cr_assert_eq(db_errkind(held), DB_ERR_UNAVAILABLE, "%s", db_errmsg(held));
    db_release(held);

    char err[512] = "";
    t0 = mono_ms();
    struct db_conn *c = db_acquire(db, err, sizeof(err));
    cr_assert_null(c, "no server, no connection");
    cr_assert_lt(mono_ms() - t0, 5000);
    cr_assert_not_null(strstr(err, "cannot connect to PostgreSQL"), "%s", err);

    pgtest_server_start();
    /* The same struct db: the next request succeeds. */
    c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c, "SELECT 1", DB_NOARGS), 1, "%s", db_errmsg(c));
    db_release(c);
    cr_assert_eq(db_ping(db, reason, sizeof(reason)), 0, "%s", reason);
    db_close(db);
}

Test(pg, restart_without_requests_in_between_is_transparent)
{
    PGTEST_REQUIRE();
    if (!pgtest_can_restart())
        cr_skip_test("no local cluster to stop: ZYGO_TEST_PG_DIR is unset");
    struct db *db = open_url(app_url, NULL);
    struct db_conn *a = dbt_acquire(db), *b = dbt_acquire(db);
    db_release(a);
    db_release(b);
    pgtest_server_stop();
    pgtest_server_start();
    /* Both pooled connections died; neither is handed out. */
    for (int i = 0; i < 3; i++) {
        struct db_conn *c = dbt_acquire(db);
        cr_assert_eq(dbt_query_int(c, "SELECT 1", DB_NOARGS), 1, "%s", db_errmsg(c));
        db_release(c);
    }
    db_close(db);
}

/* ---- SQLite keeps the tenant context too ---------------------------------------------------- */

static char sqlite_dir[64];

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(p);
}

Test(pg, sqlite_stores_the_tenant_context)
{
    snprintf(sqlite_dir, sizeof(sqlite_dir), "/tmp/zygo-pgtest-XXXXXX");
    cr_assert_not_null(mkdtemp(sqlite_dir));
    char path[128];
    snprintf(path, sizeof(path), "%s/t.db", sqlite_dir);
    struct db *db = open_url(path, NULL);
    struct db_conn *c = dbt_acquire(db);
    cr_assert_null(db_tenant(c));
    const char *id = "0190A1B2-C3D4-7E5F-8A6B-7C8D9E0F1A2B";
    cr_assert_eq(db_set_tenant(c, id), 0);
    cr_assert_str_eq(db_tenant(c), "0190a1b2-c3d4-7e5f-8a6b-7c8d9e0f1a2b");
    cr_assert_eq(db_set_rls_bypass(c, true), 0);
    cr_assert(db_rls_bypass(c));
    /* Nested holds on the same thread share it... */
    struct db_conn *again = dbt_acquire(db);
    cr_assert_eq(again, c);
    cr_assert_not_null(db_tenant(again));
    db_release(again);
    db_release(c);
    /* ...and a new holder starts without it. */
    c = dbt_acquire(db);
    cr_assert_null(db_tenant(c));
    cr_assert_not(db_rls_bypass(c));
    cr_assert_eq(db_set_tenant(c, "x"), -1);
    cr_assert_eq(db_errkind(c), DB_ERR_CHECK);
    db_release(c);
    db_close(db);
    nftw(sqlite_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* ---- statements that do not block (db_query_async) ------------------------------------------ */

#define ASYNC_N 300

struct async_call {
    int index;
    int64_t count; /* the first column of the first row, or -1 */
    enum db_errkind kind;
    char msg[256];
};

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int answered;
    int order[ASYNC_N + 8]; /* indexes in the order the callbacks ran */
    struct async_call calls[ASYNC_N + 8];
} aq = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, {0}, {{0}}};

static void async_done(void *arg, struct db_rows *rows, enum db_errkind kind, const char *msg)
{
    struct async_call *c = arg;
    c->count = rows && db_next(rows) ? db_int(rows, 0) : -1;
    c->kind = kind;
    snprintf(c->msg, sizeof(c->msg), "%s", msg ? msg : "");
    db_rows_free(rows);
    pthread_mutex_lock(&aq.mu);
    aq.order[aq.answered++] = c->index;
    pthread_cond_broadcast(&aq.cv);
    pthread_mutex_unlock(&aq.mu);
}

static void async_wait(int n)
{
    int64_t until = mono_ms() + 10000;
    pthread_mutex_lock(&aq.mu);
    while (aq.answered < n && mono_ms() < until) {
        pthread_mutex_unlock(&aq.mu);
        usleep(2000);
        pthread_mutex_lock(&aq.mu);
    }
    int got = aq.answered;
    pthread_mutex_unlock(&aq.mu);
    cr_assert_eq(got, n, "%d of %d statements answered", got, n);
}

static void async_queue(struct db *db, int i, const char *tenant, const char *sql,
                        const struct db_param *p, size_t n)
{
    aq.calls[i].index = i;
    cr_assert_eq(db_query_async(db, tenant, false, sql, p, n, async_done, &aq.calls[i]), 0,
                 "statement %d not queued", i);
}

/* Interleaved tenants on one shared connection: each statement runs with its own tenant's
 * row-level security, answers come back in the order queued, and a failing statement (bad SQL,
 * a wrong parameter count) fails alone. */
Test(pg, async_statements_keep_their_tenant_their_order_and_fail_alone)
{
    PGTEST_REQUIRE();
    struct two_tenants t;
    rls_fixture(&t);
    struct db_options opt = {.pool_max = 3, .pipeline = 1};
    struct db *db = open_url(app_url, &opt);
    aq.answered = 0;
    for (int i = 0; i < ASYNC_N; i++) {
        /* no tenant filter: only row-level security tells them apart */
        const char *tenant = i % 3 == 0 ? t.a : i % 3 == 1 ? t.b : NULL;
        async_queue(db, i, tenant, "SELECT count(*) FROM users WHERE $1::int >= 0",
                    DB_ARGS(DB_INT(i)));
    }
    int k = ASYNC_N;
    async_queue(db, k++, t.a, "SELEC count(*) FROM users", NULL, 0);
    async_queue(db, k++, t.a, "SELECT count(*) FROM users WHERE $1::int >= $2::int",
                DB_ARGS(DB_INT(1)));
    async_queue(db, k++, t.b, "SELECT count(*) FROM users WHERE $1::int >= 0",
                DB_ARGS(DB_INT(7)));
    async_wait(k);
    for (int i = 0; i < ASYNC_N; i++) {
        int64_t want = i % 3 == 0 ? 2 : i % 3 == 1 ? 1 : 0;
        cr_assert_eq(aq.calls[i].kind, DB_ERR_NONE, "%d: %s", i, aq.calls[i].msg);
        cr_assert_eq(aq.calls[i].count, want, "statement %d saw %lld rows, not %lld", i,
                     (long long)aq.calls[i].count, (long long)want);
    }
    for (int i = 0; i < k; i++)
        cr_assert_eq(aq.order[i], i, "answered out of order at %d", i);
    cr_assert_eq(aq.calls[ASYNC_N].kind, DB_ERR_OTHER);
    cr_assert_not_null(strstr(aq.calls[ASYNC_N].msg, "syntax"), "%s", aq.calls[ASYNC_N].msg);
    cr_assert_eq(aq.calls[ASYNC_N + 1].kind, DB_ERR_OTHER, "%s", aq.calls[ASYNC_N + 1].msg);
    cr_assert_eq(aq.calls[ASYNC_N + 2].kind, DB_ERR_NONE, "the connection still serves: %s",
                 aq.calls[ASYNC_N + 2].msg);
    cr_assert_eq(aq.calls[ASYNC_N + 2].count, 1);
    /* one shared connection was used, and the pool still hands out its others */
    struct db_conn *c = dbt_acquire(db);
    cr_assert_eq(dbt_query_int(c,
                               "SELECT count(*) FROM pg_stat_activity WHERE datname ="
                               " current_database() AND usename = current_user",
                               DB_NOARGS),
                 2, "the shared connection and this one");
    db_release(c);
    db_close(db);
}

/* A shared connection whose server went away answers what was queued as unavailable, and
 * the next statements get a fresh one; SQLite and a pool without the option decline. */
Test(pg, async_statements_survive_a_server_restart)
{
    PGTEST_REQUIRE();
    if (!pgtest_can_restart())
        cr_skip_test("no local cluster to stop: ZYGO_TEST_PG_DIR is unset");
    migrate_ok(owner_url);
    struct db_options off = {.pool_max = 3};
    struct db *db = open_url(app_url, &off);
    struct async_call unused = {0};
    cr_assert_eq(db_query_async(db, NULL, false, "SELECT 1", NULL, 0, async_done, &unused), -1,
                 "declined without the pipeline option");
    db_close(db);
    struct db_options opt = {.pool_max = 3, .pipeline = 1};
    db = open_url(app_url, &opt);
    aq.answered = 0;
    async_queue(db, 0, NULL, "SELECT 1", NULL, 0);
    async_wait(1);
    cr_assert_eq(aq.calls[0].count, 1);
    pgtest_server_stop();
    /* queued on the dead connection (or declined when no connection can be had) */
    int k = 1;
    if (db_query_async(db, NULL, false, "SELECT 2", NULL, 0, async_done, &aq.calls[1]) == 0) {
        aq.calls[1].index = 1;
        k = 2;
        async_wait(2);
        cr_assert_eq(aq.calls[1].kind, DB_ERR_UNAVAILABLE, "%s", aq.calls[1].msg);
    }
    pgtest_server_start();
    int done_before = k;
    bool ok = false;
    for (int attempt = 0; attempt < 3 && !ok; attempt++) {
        if (db_query_async(db, NULL, false, "SELECT 3", NULL, 0, async_done, &aq.calls[k]) != 0)
            continue;
        aq.calls[k].index = k;
        async_wait(k + 1);
        ok = aq.calls[k].kind == DB_ERR_NONE && aq.calls[k].count == 3;
        k++;
    }
    cr_assert(ok, "a fresh shared connection after the restart (%d tries)", k - done_before);
    db_close(db);
}
