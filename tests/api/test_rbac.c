/* The route-level access rules beyond one permission: any of a list, a predicate of the
 * route's own, optional authentication — on routes written for the test, with real sign-ups. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "accounts.h"
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

/* The owner's token (email NULL), or that of a new user of the owner's tenant with role. */
static void token_for(const char *email, const char *role, char access[4096])
{
    static struct account owner;
    if (!owner.access[0])
        accounts_signup(t.app, "own@r.example", "R", &owner);
    struct account a = owner;
    if (email)
        accounts_user_with_role(&t, &owner, email, role, &a);
    snprintf(access, 4096, "%s", a.access);
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
