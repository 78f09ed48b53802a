/* dbtest.c — see dbtest.h. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "dbtest.h"

struct db_conn *dbt_acquire(struct db *db)
{
    char err[512];
    struct db_conn *c = db_acquire(db, err, sizeof(err));
    cr_assert_not_null(c, "db_acquire: %s", err);
    return c;
}

void dbt_exec_ok(struct db_conn *c, const char *sql)
{
    int rc = db_exec(c, sql, NULL, 0);
    cr_assert_geq(rc, 0, "%s: %s", sql, db_errmsg(c));
}

int64_t dbt_query_int(struct db_conn *c, const char *sql, const struct db_param *p, size_t n)
{
    struct db_rows *r = db_query(c, sql, p, n);
    cr_assert_not_null(r, "%s: %s", sql, db_errmsg(c));
    cr_assert(db_next(r), "%s: no row", sql);
    int64_t v = db_int(r, 0);
    db_rows_free(r);
    return v;
}

void dbt_insert_tenant(struct db_conn *c, char id[UUID_STRLEN + 1], const char *slug)
{
    uuid_v7(id);
    cr_assert_eq(db_exec(c, "INSERT INTO tenants (id, slug, name) VALUES ($1, $2, $3)",
                         DB_ARGS(DB_TEXT(id), DB_TEXT(slug), DB_TEXT("Tenant"))),
                 1, "%s", db_errmsg(c));
}

struct db_conn *dbt_bypass(struct db *db)
{
    struct db_conn *c = dbt_acquire(db);
    db_set_rls_bypass(c, true);
    return c;
}

void dbt_exec_bypass(struct db *db, const char *sql, const char *arg)
{
    struct db_conn *c = dbt_bypass(db);
    cr_assert_geq(db_exec(c, sql, DB_ARGS(DB_TEXT(arg))), 0, "%s: %s", sql, db_errmsg(c));
    db_release(c);
}

int64_t dbt_count_bypass(struct db *db, const char *sql, const char *arg)
{
    struct db_conn *c = dbt_bypass(db);
    int64_t n = dbt_query_int(c, sql, DB_ARGS(DB_TEXT(arg)));
    db_release(c);
    return n;
}
