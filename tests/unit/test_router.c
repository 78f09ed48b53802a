/* Router matching: static and parameter segments, groups, HEAD, 405 sets, edge paths. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "http/router.h"

static int h(struct ctx *c)
{
    (void)c;
    return 0;
}

static const struct route v1[] = {
    {.method = HTTP_GET, .path = "/users", .handler = h},
    {.method = HTTP_POST, .path = "/users", .handler = h},
    {.method = HTTP_GET, .path = "/users/me", .handler = h},
    {.method = HTTP_GET, .path = "/users/:id", .handler = h},
    {.method = HTTP_PATCH, .path = "/users/:id", .handler = h},
    {.method = HTTP_DELETE, .path = "/users/:id/roles/:roleId", .handler = h},
};
static const struct route root[] = {{.method = HTTP_GET, .path = "/health", .handler = h}};
static const struct route_group groups[] = {{"/api/v1", v1, ARRAY_LEN(v1), NULL},
                                            {"", root, ARRAY_LEN(root), NULL}};

static struct router *r;
static void setup(void)
{
    r = router_new(groups, ARRAY_LEN(groups));
}
static void teardown(void)
{
    router_free(r);
}
TestSuite(router, .init = setup, .fini = teardown);

static enum router_result match(enum http_method m, const char *path, struct router_match *out)
{
    static char scratch[1024];
    return router_match(r, m, path, scratch, out);
}

Test(router, static_before_param_and_params_captured)
{
    struct router_match m;
    cr_assert_eq(match(HTTP_GET, "/api/v1/users/me", &m), ROUTER_FOUND);
    cr_assert_eq(m.route, &v1[2], "the static /users/me entry comes first in the table");
    cr_assert_eq(m.nparams, 0);
    cr_assert_eq(match(HTTP_GET, "/api/v1/users/42", &m), ROUTER_FOUND);
    cr_assert_eq(m.route, &v1[3]);
    cr_assert_str_eq(m.full_path, "/api/v1/users/:id");
    cr_assert_eq(m.nparams, 1);
    cr_assert_str_eq(m.params[0].name, "id");
    cr_assert_str_eq(m.params[0].value, "42");
    cr_assert_eq(match(HTTP_DELETE, "/api/v1/users/7/roles/admin", &m), ROUTER_FOUND);
    cr_assert_eq(m.nparams, 2);
    cr_assert_str_eq(m.params[1].name, "roleId");
    cr_assert_str_eq(m.params[1].value, "admin");
}

Test(router, method_not_allowed_lists_methods)
{
    struct router_match m;
    cr_assert_eq(match(HTTP_PUT, "/api/v1/users/42", &m), ROUTER_METHOD_NOT_ALLOWED);
    cr_assert_eq(m.route, NULL);
    char allow[128];
    router_allow_header(m.allowed, allow, sizeof(allow));
    cr_assert_str_eq(allow, "GET, HEAD, PATCH, OPTIONS");
    cr_assert_eq(match(HTTP_DELETE, "/api/v1/users", &m), ROUTER_METHOD_NOT_ALLOWED);
    router_allow_header(m.allowed, allow, sizeof(allow));
    cr_assert_str_eq(allow, "GET, HEAD, POST, OPTIONS");
}

Test(router, not_found_cases)
{
    struct router_match m;
    const char *paths[] = {"/api/v1/user",
                           "/api/v1/users/42/extra",
                           "/api/v1/users/",
                           "/",
                           "",
                           "/health/",
                           "/api/v2/users",
                           "//health",
                           "/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p/q/r/s"};
    for (size_t i = 0; i < ARRAY_LEN(paths); i++)
        cr_assert_eq(match(HTTP_GET, paths[i], &m), ROUTER_NOT_FOUND, "%s matched", paths[i]);
    /* an empty segment never fills a parameter */
    cr_assert_eq(match(HTTP_GET, "/api/v1/users//roles", &m), ROUTER_NOT_FOUND);
}

Test(router, head_matches_get_and_root_group)
{
    struct router_match m;
    cr_assert_eq(match(HTTP_HEAD, "/health", &m), ROUTER_FOUND);
    cr_assert_eq(m.route, &root[0]);
    cr_assert_eq(router_count(r), ARRAY_LEN(v1) + ARRAY_LEN(root));
    const char *fp;
    cr_assert_eq(router_at(r, 6, &fp), &root[0]);
    cr_assert_str_eq(fp, "/health");
    cr_assert_null(router_at(r, 7, &fp));
}
