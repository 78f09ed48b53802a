/* Start-up database checks: the application's role must be one row-level security applies to. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "pgtest.h"
#include "services/database.h"
#include "support.h"

static void expect_role(const char *url, int want, const char *needle)
{
    struct db *db;
    char err[512], why[256] = "";
    cr_assert_eq(db_open(&db, url, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(database_check_role(db, why, sizeof(why)), want, "%s: %s", url, why);
    if (needle)
        cr_assert_not_null(strstr(why, needle), "%s", why);
    db_close(db);
}

Test(database, application_role_is_subject_to_rls)
{
    struct tenv t;
    tenv_setup(&t, NULL, NULL, 0);
    if (!t.tdb.pg) {
        /* SQLite has no roles: nothing to refuse */
        expect_role(t.tdb.app_url, 0, NULL);
    } else {
        expect_role(t.tdb.app_url, 0, NULL);
        expect_role(t.tdb.owner_url, -1, "owns the tables");
        char admin[600];
        const char *base = getenv("ZYGO_TEST_PG_ADMIN_URL");
        /* the same database as the superuser: its path replaces the admin URL's */
        const char *slash = strrchr(t.tdb.app_url, '/');
        const char *aslash = strrchr(base, '/');
        snprintf(admin, sizeof(admin), "%.*s%s", (int)(aslash - base), base, slash);
        expect_role(admin, -1, "superuser");
    }
    tenv_teardown(&t);
}
