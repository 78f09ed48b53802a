/* dbtest.h — database helpers shared by the tests of the drivers, migrations and
 * repositories: each fails the test with the database's own message when a step fails. */
#ifndef ZYGO_TEST_DBTEST_H
#define ZYGO_TEST_DBTEST_H

#include "db/db.h"
#include "lib/uuid.h"

struct db_conn *dbt_acquire(struct db *db);
void dbt_exec_ok(struct db_conn *c, const char *sql);
/* The single integer a query returns. */
int64_t dbt_query_int(struct db_conn *c, const char *sql, const struct db_param *p, size_t n);
/* Inserts a tenant with a new UUIDv7 (returned in id) and the slug. */
void dbt_insert_tenant(struct db_conn *c, char id[UUID_STRLEN + 1], const char *slug);

/* A connection with row-level security bypassed: the test's view across tenants. */
struct db_conn *dbt_bypass(struct db *db);
/* sql with one text parameter $1 run across tenants; fails the test on an error. */
void dbt_exec_bypass(struct db *db, const char *sql, const char *arg);
/* The single integer sql with one text parameter $1 returns, across tenants. */
int64_t dbt_count_bypass(struct db *db, const char *sql, const char *arg);

#endif
