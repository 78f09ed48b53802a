/* ctx_after_commit: effects that other processes may only see once a change is durable run
 * after ctx_tx commits, in order, never after a rollback, at once outside a transaction, and
 * at a commit made midway (ctx_commit_midway) for what ran before it. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "lib/uuid.h"
#include "dbtest.h"
#include "support.h"

static char trail[256];

/* The probe row: a tenant, a table every database has and the app role may write (with the
 * system bypass of row-level security). */
#define PROBE_COUNT "SELECT count(*) FROM tenants WHERE slug = 'tx-hook-probe'"

static int write_probe(struct db_conn *db)
{
    char id[37];
    uuid_v7(id);
    db_set_rls_bypass(db, true);
    return db_exec(db, "INSERT INTO tenants (id, slug, name) VALUES ($1, 'tx-hook-probe', 'P')",
                   DB_ARGS(DB_TEXT(id)));
}

static void note(struct ctx *c, void *arg)
{
    (void)c;
    size_t n = strlen(trail);
    snprintf(trail + n, sizeof(trail) - n, "%s ", (const char *)arg);
}

/* What the transaction wrote is visible to the hook: it runs after the commit. */
static void note_committed(struct ctx *c, void *arg)
{
    (void)arg;
    struct db_conn *db = ctx_db(c);
    db_set_rls_bypass(db, true);
    struct db_rows *r = db_query(db, PROBE_COUNT, DB_NOARGS);
    cr_assert(r && db_next(r));
    size_t n = strlen(trail);
    snprintf(trail + n, sizeof(trail) - n, "rows=%lld ", (long long)db_int(r, 0));
    db_rows_free(r);
}


static int commit_tx(struct ctx *c, struct db_conn *db)
{
    ctx_after_commit(c, note, "first");
    cr_assert_eq(write_probe(db), 1);
    ctx_after_commit(c, note_committed, NULL);
    ctx_after_commit(c, note, "last");
    cr_assert_str_eq(trail, "", "nothing runs before the commit");
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

static int rollback_tx(struct ctx *c, struct db_conn *db)
{
    ctx_after_commit(c, note, "never");
    cr_assert_eq(write_probe(db), 1);
    return ctx_fail(c, ZY_E_CONFLICT, "refused");
}

static int midway_tx(struct ctx *c, struct db_conn *db)
{
    ctx_after_commit(c, note, "kept");
    cr_assert_eq(write_probe(db), 1);
    cr_assert_eq(ctx_commit_midway(c), 0);
    ctx_after_commit(c, note, "dropped");
    return ctx_fail(c, ZY_E_UNAUTHORIZED, "fails after keeping the first part");
}

static int no_tx(struct ctx *c)
{
    ctx_db(c);
    ctx_after_commit(c, note, "now");
    cr_assert_str_eq(trail, "now ", "outside a transaction the hook runs at once");
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

static const struct route routes[] = {
    {.method = HTTP_POST, .path = "/commit", .tx = commit_tx},
    {.method = HTTP_POST, .path = "/rollback", .tx = rollback_tx},
    {.method = HTTP_POST, .path = "/midway", .tx = midway_tx},
    {.method = HTTP_POST, .path = "/none", .handler = no_tx},
};
static const struct route_group group = {"/t", routes, ARRAY_LEN(routes), NULL};

static struct tenv t;

static void setup(void)
{
    tenv_setup(&t, NULL, &group, 1);
    trail[0] = '\0';
}

static void teardown(void)
{
    tenv_teardown(&t);
}

TestSuite(tx_hooks, .init = setup, .fini = teardown);

static int post(const char *path)
{
    struct ctx *c = app_request(t.app, "POST", path, NULL, NULL, 0);
    int status = c->res.status;
    app_ctx_free(c);
    return status;
}

static long long probe_rows(void)
{
    struct db_conn *db = dbt_acquire(t.db);
    db_set_rls_bypass(db, true);
    long long n = dbt_query_int(db, PROBE_COUNT, DB_NOARGS);
    db_release(db);
    return n;
}

Test(tx_hooks, run_after_the_commit_in_order)
{
    cr_assert_eq(post("/t/commit"), 204);
    cr_assert_str_eq(trail, "first rows=1 last ");
}

Test(tx_hooks, never_after_a_rollback)
{
    cr_assert_eq(post("/t/rollback"), 409);
    cr_assert_str_eq(trail, "");
    cr_assert_eq(probe_rows(), 0);
}

Test(tx_hooks, a_midway_commit_runs_those_before_it)
{
    cr_assert_eq(post("/t/midway"), 401);
    cr_assert_str_eq(trail, "kept ");
    cr_assert_eq(probe_rows(), 1, "the part before the midway commit stays");
}

Test(tx_hooks, outside_a_transaction_at_once)
{
    cr_assert_eq(post("/t/none"), 204);
}
