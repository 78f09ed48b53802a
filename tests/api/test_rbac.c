/* The route-level access rules beyond one permission: any of a list, a predicate of the
 * route's own, optional authentication — on routes written for the test, with real sign-ups. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "dbtest.h"
#include "lib/password.h"
#include "routes/routes.h"
#include "support.h"

static int whoami(struct ctx *c)
{
    ctx_json(c, 200, json_pack("{s:s?}", "user", c->user ? c->user->id : NULL));
    return 0;
}

/* At least three permissions: a rule no single name expresses. */
static bool three_or_more(const struct ctx *c)
{
    return c->user && c->user->npermissions >= 3;
}

static const struct route test_routes[] = {
    {.method = HTTP_GET,
     .path = "/any",
     .handler = whoami,
     .auth = ROUTE_AUTH,
     .permission_any = (const char *const[]){"canManageBilling", "canViewUsers", NULL}},
    {.method = HTTP_GET,
     .path = "/rule",
     .handler = whoami,
     .auth = ROUTE_AUTH,
     .permission_check = three_or_more},
    {.method = HTTP_GET,
     .path = "/both",
     .handler = whoami,
     .auth = ROUTE_AUTH,
     .permission = "canViewRoles",
     .permission_any = (const char *const[]){"canManageBilling", "canManageTenant", NULL}},
    {.method = HTTP_GET, .path = "/maybe", .handler = whoami, .auth = ROUTE_AUTH_OPTIONAL},
};

static struct route_group groups[32];
static struct tenv t;

static void setup(void)
{
    size_t n;
    const struct route_group *real = routes_groups(&n);
    cr_assert_lt(n, ARRAY_LEN(groups));
    memcpy(groups, real, n * sizeof(*groups));
    groups[n] = (struct route_group){"/t", test_routes, ARRAY_LEN(test_routes), NULL};
    static const char *const extra[] = {"RATE_LIMIT_ENABLED=false", NULL};
    tenv_setup(&t, extra, groups, n + 1);
}
static void teardown(void)
{
    tenv_teardown(&t);
}
TestSuite(rbac, .init = setup, .fini = teardown);

static void token_for(const char *email, const char *role, char access[4096])
{
    static char owner[4096];
    static char tenant[37];
    json_t *r;
    if (!owner[0]) {
        cr_assert_eq(api_req(t.app, "POST", "/api/v1/auth/signup", NULL,
                             "{\"email\":\"own@r.example\",\"password\":\"correct horse battery\","
                             "\"tenantName\":\"R\"}",
                             &r),
                     201);
        snprintf(owner, sizeof(owner), "%s", json_string_value(json_object_get(r, "accessToken")));
        snprintf(tenant, sizeof(tenant), "%s",
                 json_string_value(json_object_get(json_object_get(r, "tenant"), "id")));
        json_decref(r);
    }
    if (!email) {
        snprintf(access, 4096, "%s", owner);
        return;
    }
    char hash[PASSWORD_HASH_MAX], id[37], body[256];
    cr_assert_eq(password_hash("correct horse battery", hash), 0);
    struct db_conn *c = dbt_acquire(t.db);
    db_set_rls_bypass(c, true);
    uuid_v7(id);
    cr_assert_eq(db_exec(c,
                         "INSERT INTO users (id, tenant_id, email, status, password_hash)"
                         " VALUES ($1, $2, $3, 'active', $4)",
                         DB_ARGS(DB_TEXT(id), DB_TEXT(tenant), DB_TEXT(email), DB_TEXT(hash))),
                 1);
    if (role)
        cr_assert_eq(db_exec(c,
                             "INSERT INTO user_roles (user_id, role_id, tenant_id) SELECT $1, id,"
                             " tenant_id FROM roles WHERE tenant_id = $2 AND name = $3",
                             DB_ARGS(DB_TEXT(id), DB_TEXT(tenant), DB_TEXT(role))),
                     1);
    db_release(c);
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse battery\"}",
             email);
    cr_assert_eq(api_req(t.app, "POST", "/api/v1/auth/login", NULL, body, &r), 200);
    snprintf(access, 4096, "%s", json_string_value(json_object_get(r, "accessToken")));
    json_decref(r);
}

Test(rbac, any_of_a_list_a_rule_and_both)
{
    char owner[4096], viewer[4096], none[4096];
    token_for(NULL, NULL, owner);
    token_for("viewer@r.example", "viewer", viewer);
    token_for("none@r.example", NULL, none);
    /* any of: the viewer holds canViewUsers, the role-less user nothing */
    cr_assert_eq(api_req(t.app, "GET", "/t/any", viewer, NULL, NULL), 200);
    cr_assert_eq(api_req(t.app, "GET", "/t/any", none, NULL, NULL), 403);
    /* a rule: the viewer has four permissions, the role-less user none */
    cr_assert_eq(api_req(t.app, "GET", "/t/rule", viewer, NULL, NULL), 200);
    cr_assert_eq(api_req(t.app, "GET", "/t/rule", none, NULL, NULL), 403);
    /* both must pass: the viewer has canViewRoles but neither billing nor tenant */
    cr_assert_eq(api_req(t.app, "GET", "/t/both", viewer, NULL, NULL), 403);
    cr_assert_eq(api_req(t.app, "GET", "/t/both", owner, NULL, NULL), 200);
}

Test(rbac, optional_authentication)
{
    char viewer[4096];
    token_for("opt@r.example", "viewer", viewer);
    json_t *r;
    cr_assert_eq(api_req(t.app, "GET", "/t/maybe", NULL, NULL, &r), 200);
    cr_assert(json_is_null(json_object_get(r, "user")) || !json_object_get(r, "user"));
    json_decref(r);
    cr_assert_eq(api_req(t.app, "GET", "/t/maybe", viewer, NULL, &r), 200);
    cr_assert_not_null(json_string_value(json_object_get(r, "user")));
    json_decref(r);
    /* a bad token on an optional route is as good as none, not an error */
    cr_assert_eq(api_req(t.app, "GET", "/t/maybe", "garbage", NULL, &r), 200);
    cr_assert_null(json_string_value(json_object_get(r, "user")));
    json_decref(r);
}
