/* Repositories on the suite's database (SQLite or PostgreSQL): the same rows give the same
 * JSON on both, the tenant filter holds, and on PostgreSQL row-level security holds even for
 * a query that forgot the filter. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <regex.h>

#include "db/db.h"
#include "lib/buf.h"
#include "repos/repo.h"
#include "repos/users.h"
#include "dbtest.h"
#include "support.h"

#define TENANT_A "0192f0c1-7a3b-7c4d-8e5f-00000000000a"
#define TENANT_B "0192f0c1-7a3b-7c4d-8e5f-00000000000b"
#define USER_A1 "0192f0c1-7a3b-7c4d-8e5f-0000000000a1"
#define USER_A2 "0192f0c1-7a3b-7c4d-8e5f-0000000000a2"
#define USER_GONE "0192f0c1-7a3b-7c4d-8e5f-0000000000a3"
#define USER_B1 "0192f0c1-7a3b-7c4d-8e5f-0000000000b1"

static struct tenv t;
static struct db_conn *c;

static void setup(void)
{
    tenv_setup(&t, NULL, NULL, 0);
    c = dbt_acquire(t.db);
    /* fixtures are system work: across tenants */
    cr_assert_eq(db_set_rls_bypass(c, true), 0);
    dbt_exec_ok(c, "INSERT INTO tenants (id, slug, name) VALUES ('" TENANT_A "', 'a', 'A'), "
            "('" TENANT_B "', 'b', 'B')");
    dbt_exec_ok(c, "INSERT INTO users (id, tenant_id, email, first_name, status, email_verified, "
            "last_login_at, created_at, updated_at) VALUES ('" USER_A1 "', '" TENANT_A
            "', 'ann@a.test', 'Ann', 'active', true, '2026-01-02T03:04:05.678Z', "
            "'2026-01-01T00:00:00.000Z', '2026-01-01T00:00:00.000Z')");
    dbt_exec_ok(c, "INSERT INTO users (id, tenant_id, email) VALUES ('" USER_A2 "', '" TENANT_A
            "', 'bob@a.test')");
    dbt_exec_ok(c, "INSERT INTO users (id, tenant_id, email, deleted_at) VALUES ('" USER_GONE
            "', '" TENANT_A "', 'gone@a.test', '2026-02-01T00:00:00.000Z')");
    dbt_exec_ok(c, "INSERT INTO users (id, tenant_id, email) VALUES ('" USER_B1 "', '" TENANT_B
            "', 'ann@b.test')");
    cr_assert_eq(db_set_rls_bypass(c, false), 0);
}

static void teardown(void)
{
    db_release(c);
    tenv_teardown(&t);
}

TestSuite(repos, .init = setup, .fini = teardown);

static bool iso_ms(const char *s)
{
    regex_t r;
    regcomp(&r, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$",
            REG_EXTENDED | REG_NOSUB);
    bool ok = s && regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

Test(repos, user_by_id_has_the_api_shape)
{
    bool failed;
    json_t *u = users_find_by_id(c, TENANT_A, USER_A1, &failed);
    cr_assert_not_null(u);
    cr_assert_not(failed);
    cr_assert_str_eq(json_string_value(json_object_get(u, "id")), USER_A1);
    cr_assert_str_eq(json_string_value(json_object_get(u, "tenantId")), TENANT_A);
    cr_assert_str_eq(json_string_value(json_object_get(u, "email")), "ann@a.test");
    cr_assert_str_eq(json_string_value(json_object_get(u, "firstName")), "Ann");
    cr_assert(json_is_null(json_object_get(u, "lastName")));
    cr_assert(json_is_true(json_object_get(u, "emailVerified")));
    cr_assert(json_is_false(json_object_get(u, "mfaEnabled")));
    cr_assert_str_eq(json_string_value(json_object_get(u, "lastLoginAt")),
                     "2026-01-02T03:04:05.678Z", "same timestamp text on both databases");
    cr_assert_str_eq(json_string_value(json_object_get(u, "createdAt")),
                     "2026-01-01T00:00:00.000Z");
    cr_assert_null(json_object_get(u, "deletedAt"));
    cr_assert_eq(json_object_size(u), 15);
    json_decref(u);

    /* defaults from the schema come back in the same shape */
    u = users_find_by_id(c, TENANT_A, USER_A2, &failed);
    cr_assert_str_eq(json_string_value(json_object_get(u, "status")), "pending");
    cr_assert(json_is_false(json_object_get(u, "emailVerified")));
    cr_assert(iso_ms(json_string_value(json_object_get(u, "createdAt"))));
    json_decref(u);
}

Test(repos, user_by_id_never_crosses_tenants_or_shows_deleted)
{
    bool failed;
    cr_assert_null(users_find_by_id(c, TENANT_B, USER_A1, &failed));
    cr_assert_not(failed);
    cr_assert_null(users_find_by_id(c, TENANT_A, USER_B1, &failed));
    cr_assert_null(users_find_by_id(c, TENANT_A, USER_GONE, &failed));
    cr_assert_not(failed);
    cr_assert_null(users_find_by_id(c, TENANT_A, "not-a-uuid", &failed));
    cr_assert_not(failed, "a malformed id is simply not found");
    cr_assert_null(users_find_by_id(c, "nope", USER_A1, &failed));
    /* upper-case ids name the same user on both databases */
    json_t *u = users_find_by_id(c, TENANT_A, "0192F0C1-7A3B-7C4D-8E5F-0000000000A1", &failed);
    cr_assert_not_null(u);
    json_decref(u);
}

/* The single read's text path (GET /users/:id) writes exactly the object the jansson path
 * builds (login, roles, password answers): same keys, values and types, escapes included. */
static json_t *written(const char *tenant, const char *id, int *rc)
{
    struct buf b;
    buf_init(&b, 64 * 1024);
    *rc = users_write_by_id(c, tenant, id, &b);
    json_t *v = b.len ? json_loadb(b.data, b.len, 0, NULL) : NULL;
    buf_free(&b);
    return v;
}

Test(repos, user_written_as_text_equals_the_object)
{
    cr_assert_eq(db_set_rls_bypass(c, true), 0);
    dbt_exec_ok(c, "UPDATE users SET last_name = 'O''Neil \"Q\" \\ \t', "
                   "display_name = 'Zoë 名前 \U0001F600' WHERE id = '" USER_A1 "'");
    cr_assert_eq(db_set_rls_bypass(c, false), 0);
    const char *ids[] = {USER_A1, USER_A2};
    for (size_t i = 0; i < ARRAY_LEN(ids); i++) {
        bool failed;
        json_t *want = users_find_by_id(c, TENANT_A, ids[i], &failed);
        cr_assert_not_null(want);
        int rc;
        json_t *got = written(TENANT_A, ids[i], &rc);
        cr_assert_eq(rc, 1);
        cr_assert_not_null(got, "not valid JSON");
        char *w = json_dumps(want, JSON_SORT_KEYS), *g = json_dumps(got, JSON_SORT_KEYS);
        cr_assert_str_eq(g, w);
        free(w);
        free(g);
        json_decref(want);
        json_decref(got);
    }
    int rc;
    cr_assert_null(written(TENANT_B, USER_A1, &rc));
    cr_assert_eq(rc, 0, "another tenant's user is not found");
    cr_assert_null(written(TENANT_A, USER_GONE, &rc));
    cr_assert_eq(rc, 0, "a deleted user is not found");
    cr_assert_null(written(TENANT_A, "not-a-uuid", &rc));
    cr_assert_eq(rc, 0);
    /* a buffer too small is reported, not truncated into invalid JSON */
    struct buf b;
    buf_init(&b, 16);
    cr_assert_eq(users_write_by_id(c, TENANT_A, USER_A1, &b), -2);
    buf_free(&b);
}

static long long count_users_without_filter(void)
{
    /* a query that "forgot" its tenant filter */
    return dbt_query_int(c, "SELECT count(*) FROM users", NULL, 0);
}

Test(repos, forgotten_tenant_filter_is_caught_by_rls_on_postgres)
{
    if (!t.tdb.pg)
        cr_skip_test("SQLite has no row-level security: the tenant filter in every repository "
                     "query is the wall there (tested above)");
    cr_assert_eq(repo_tenant(c, TENANT_B), 0);
    cr_assert_eq(count_users_without_filter(), 1, "only tenant B's row is visible");
    cr_assert_eq(repo_tenant(c, TENANT_A), 0);
    cr_assert_eq(count_users_without_filter(), 3, "tenant A's rows, soft-deleted one included");
    cr_assert_eq(db_set_tenant(c, NULL), 0);
    cr_assert_eq(count_users_without_filter(), 0, "no tenant set: no rows at all");
}

Test(repos, every_tenant_scoped_table_has_forced_rls)
{
    if (!t.tdb.pg)
        cr_skip_test("SQLite has no row-level security");
    /* any table with a tenant_id column, now or in a later migration */
    int64_t tables = dbt_query_int(c,
                                   "SELECT count(*) FROM information_schema.columns"
                                   " WHERE table_schema = current_schema()"
                                   "   AND column_name = 'tenant_id'",
                                   NULL, 0);
    cr_assert_geq(tables, 10);
    int64_t unprotected =
        dbt_query_int(c,
                      "SELECT count(*) FROM information_schema.columns col"
                      "  JOIN pg_class k ON k.relname = col.table_name"
                      "   AND k.relnamespace = current_schema()::regnamespace"
                      " WHERE col.table_schema = current_schema()"
                      "   AND col.column_name = 'tenant_id'"
                      "   AND (NOT k.relrowsecurity OR NOT k.relforcerowsecurity"
                      "        OR NOT EXISTS (SELECT 1 FROM pg_policies p"
                      "                        WHERE p.tablename = col.table_name"
                      "                          AND p.policyname = 'tenant_isolation'))",
                      NULL, 0);
    cr_assert_eq(unprotected, 0, "a tenant-scoped table without forced row-level security");
}
