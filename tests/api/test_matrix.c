/* The cross-tenant matrix: every route of the table that names a tenant-scoped resource by id
 * is called by tenant A's owner with tenant B's ids. Each must answer 404 — never 403 (which
 * would confirm the id exists) and never success — and B's data must be unchanged after. A
 * route with parameters that is not in the matrix fails the test, so new routes join it. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "accounts.h"
#include "dbtest.h"
#include "jobs/queue.h"
#include "lib/jwt.h"
#include "services/auth.h"
#include "routes/routes.h"
#include "support.h"

static struct tenv t;
static void setup(void)
{
    static const char *const extra[] = {"RATE_LIMIT_ENABLED=false", NULL};
    tenv_setup(&t, extra, NULL, 0);
}
static void teardown(void)
{
    tenv_teardown(&t);
}
TestSuite(matrix, .init = setup, .fini = teardown, .timeout = 60);

/* One id of tenant B from a query run with the bypass. */
static void b_id(const char *sql, const char *tenant, char out[37])
{
    struct db_conn *c = dbt_acquire(t.db);
    db_set_rls_bypass(c, true);
    struct db_rows *r = db_query(c, sql, DB_ARGS(DB_TEXT(tenant)));
    cr_assert(r && db_next(r), "%s: no row (%s)", sql, db_errmsg(c));
    snprintf(out, 37, "%s", db_text(r, 0));
    db_rows_free(r);
    db_release(c);
}

struct target {
    enum http_method method;
    const char *path; /* as in the route table */
    const char *body;
};

/* What each parameterised route is called with. Admin routes are global-admin only and cross
 * tenants by design; OAuth's :provider names no tenant data. */
static const struct target matrix[] = {
    {HTTP_GET, "/api/v1/users/:id", NULL},
    {HTTP_PATCH, "/api/v1/users/:id", "{\"firstName\":\"Mallory\"}"},
    {HTTP_DELETE, "/api/v1/users/:id", NULL},
    {HTTP_GET, "/api/v1/users/:id/roles", NULL},
    {HTTP_POST, "/api/v1/users/:id/roles", "ROLE_A_BODY"},
    {HTTP_DELETE, "/api/v1/users/:id/roles/:roleId", NULL},
    {HTTP_GET, "/api/v1/roles/:id", NULL},
    {HTTP_PATCH, "/api/v1/roles/:id", "{\"description\":\"pwned\"}"},
    {HTTP_DELETE, "/api/v1/roles/:id", NULL},
    {HTTP_DELETE, "/api/v1/auth/sessions/:id", NULL},
    {HTTP_GET, "/api/v1/audit/:id", NULL},
    {HTTP_GET, "/api/v1/jobs/:id", NULL},
    {HTTP_GET, "/api/v1/workflows/:id", NULL},
    {HTTP_PATCH, "/api/v1/workflows/:id", "{\"name\":\"pwned\"}"},
    {HTTP_DELETE, "/api/v1/workflows/:id", NULL},
    {HTTP_GET, "/api/v1/workflows/:id/versions/:version", NULL},
    {HTTP_POST, "/api/v1/workflows/:id/webhook-token", NULL},
    {HTTP_POST, "/api/v1/workflows/:id/signing-secret", NULL},
    {HTTP_POST, "/api/v1/workflows/:id/execute", "{}"},
    {HTTP_POST, "/api/v1/workflows/:id/trigger", "{}"},
    {HTTP_GET, "/api/v1/workflows/:id/executions", NULL},
    {HTTP_GET, "/api/v1/executions/:id", NULL},
    {HTTP_GET, "/api/v1/executions/:id/logs", NULL},
    {HTTP_POST, "/api/v1/executions/:id/cancel", NULL},
};

static bool exempt(const char *path)
{
    return strncmp(path, "/api/v1/admin/", 14) == 0 ||
           strncmp(path, "/api/v1/auth/oauth/", 19) == 0;
}

Test(matrix, another_tenants_ids_are_404_on_every_route)
{
    struct account a, b;
    accounts_signup(t.app, "alice@a.example", NULL, &a);
    accounts_signup(t.app, "bob@b.example", NULL, &b);
    /* tenant B's objects: a custom role, a second user holding it, a session, audit rows */
    json_t *r;
    cr_assert_eq(api_req(t.app, "POST", "/api/v1/roles", b.access,
                         "{\"name\":\"auditors\",\"permissions\":[\"canViewAuditLogs\"]}", &r),
                 201);
    char role_b[37], role_a[37], user_b[37], session_b[37], audit_b[37], path_b[128];
    snprintf(role_b, sizeof(role_b), "%s", json_string_value(json_object_get(r, "id")));
    json_decref(r);
    cr_assert_eq(api_req(t.app, "POST", "/api/v1/users", b.access,
                         "{\"email\":\"carl@b.example\",\"role\":\"auditors\"}", &r),
                 201);
    snprintf(user_b, sizeof(user_b), "%s", json_string_value(json_object_get(r, "id")));
    json_decref(r);
    b_id("SELECT id FROM sessions WHERE tenant_id = $1", b.tenant_id, session_b);
    b_id("SELECT id FROM audit_logs WHERE tenant_id = $1", b.tenant_id, audit_b);
    b_id("SELECT id FROM roles WHERE tenant_id = $1 AND name = 'member'", a.tenant_id, role_a);
    char job_b[JOB_ID_MAX];
    struct db_conn *jc = dbt_acquire(t.db);
    db_set_rls_bypass(jc, true);
    cr_assert_eq(jobs_enqueue(jc, "notifications", NULL, b.tenant_id, NULL, NULL, job_b), 0);
    db_release(jc);
    char wf_b[37], exec_b[37];
    cr_assert_eq(api_req(t.app, "POST", "/api/v1/workflows", b.access,
                         "{\"name\":\"wf-b\",\"trigger\":{\"type\":\"webhook\"},\"steps\":"
                         "[{\"name\":\"w\",\"type\":\"delay\",\"config\":{\"ms\":1}}]}",
                         &r),
                 201);
    snprintf(wf_b, sizeof(wf_b), "%s", json_string_value(json_object_get(r, "id")));
    json_decref(r);
    snprintf(path_b, sizeof(path_b), "/api/v1/workflows/%s/execute", wf_b);
    cr_assert_eq(api_req(t.app, "POST", path_b, b.access, "{}", &r), 202);
    snprintf(exec_b, sizeof(exec_b), "%s", json_string_value(json_object_get(r, "executionId")));
    json_decref(r);

    size_t ngroups, checked = 0;
    const struct route_group *groups = routes_groups(&ngroups);
    for (size_t g = 0; g < ngroups; g++) {
        for (size_t i = 0; i < groups[g].count; i++) {
            const struct route *rt = &groups[g].routes[i];
            char full[256];
            snprintf(full, sizeof(full), "%s%s", groups[g].prefix, rt->path);
            if (!strchr(full, ':') || exempt(full))
                continue;
            const struct target *tg = NULL;
            for (size_t k = 0; k < ARRAY_LEN(matrix); k++)
                if (matrix[k].method == rt->method && strcmp(matrix[k].path, full) == 0)
                    tg = &matrix[k];
            cr_assert_not_null(tg, "%s %s takes ids but is not in the cross-tenant matrix",
                               http_method_name(rt->method), full);
            /* tenant B's id for each parameter */
            char path[512] = "";
            const char *first = strstr(full, "/roles/:id")   ? role_b
                                : strstr(full, "/sessions/") ? session_b
                                : strstr(full, "/audit/")    ? audit_b
                                : strstr(full, "/jobs/")     ? job_b
                                : strncmp(full, "/api/v1/workflows/", 18) == 0  ? wf_b
                                : strncmp(full, "/api/v1/executions/", 19) == 0 ? exec_b
                                                             : user_b;
            char *p = full;
            size_t w = 0;
            while (*p && w < sizeof(path) - 40) {
                if (*p == ':') {
                    bool role_param = strncmp(p, ":roleId", 7) == 0;
                    bool version = strncmp(p, ":version", 8) == 0;
                    w += (size_t)snprintf(path + w, sizeof(path) - w, "%s",
                                          version ? "1" : role_param ? role_b : first);
                    while (*p && *p != '/')
                        p++;
                } else {
                    path[w++] = *p++;
                }
            }
            path[w] = '\0';
            char body[128];
            const char *send = tg->body;
            if (send && strcmp(send, "ROLE_A_BODY") == 0) {
                snprintf(body, sizeof(body), "{\"roleId\":\"%s\"}", role_a);
                send = body;
            }
            int st = api_req(t.app, http_method_name(rt->method), path, a.access, send, &r);
            cr_assert_eq(st, 404, "%s %s answered %d for another tenant's id",
                         http_method_name(rt->method), path, st);
            cr_assert_str_eq(json_string_value(json_object_get(r, "error")), "RESOURCE_NOT_FOUND");
            json_decref(r);
            checked++;
        }
    }
    cr_assert_geq(checked, ARRAY_LEN(matrix));
    /* and B's data is as B left it */
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/users/%s", user_b);
    cr_assert_eq(api_req(t.app, "GET", path, b.access, NULL, &r), 200);
    cr_assert(json_is_null(json_object_get(r, "firstName")));
    json_decref(r);
    snprintf(path, sizeof(path), "/api/v1/roles/%s", role_b);
    cr_assert_eq(api_req(t.app, "GET", path, b.access, NULL, &r), 200);
    cr_assert(json_is_null(json_object_get(r, "description")) ||
              strcmp(json_string_value(json_object_get(r, "description")), "pwned") != 0);
    json_decref(r);
    snprintf(path, sizeof(path), "/api/v1/workflows/%s", wf_b);
    cr_assert_eq(api_req(t.app, "GET", path, b.access, NULL, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "name")), "wf-b");
    json_decref(r);
    snprintf(path, sizeof(path), "/api/v1/executions/%s", exec_b);
    cr_assert_eq(api_req(t.app, "GET", path, b.access, NULL, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "status")), "queued");
    json_decref(r);
}

/* Every route that needs a token refuses, with 401 and the envelope, a request without one and
 * one whose token is forged, expired or unsigned (alg "none"). */
Test(matrix, every_authenticated_route_refuses_bad_tokens)
{
    struct account a;
    accounts_signup(t.app, "ann@a.example", NULL, &a);
    const char *secret = "another-secret-of-at-least-32-bytes!!";
    struct jwt_claims cl = {.sub = a.user_id,
                            .tid = a.tenant_id,
                            .role = "owner",
                            .pv = -1,
                            .sid = a.user_id,
                            .aal = "aal1",
                            .iat = auth_now(),
                            .exp = auth_now() + 600,
                            .iss = t.cfg.api_url,
                            .aud = AUTH_AUDIENCE};
    char *forged = NULL, *expired = NULL;
    cr_assert_eq(jwt_sign(&cl, (const unsigned char *)secret, strlen(secret), &forged), JWT_OK);
    cl.iat = auth_now() - 7200;
    cl.exp = auth_now() - 3600;
    cr_assert_eq(
        jwt_sign(&cl, (const unsigned char *)t.cfg.jwt_secret, strlen(t.cfg.jwt_secret), &expired),
        JWT_OK);
    /* the real token's payload under a header that asks for no signature */
    char none[4200];
    const char *dot = strchr(a.access, '.');
    snprintf(none, sizeof(none), "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0%.*s.",
             (int)(strrchr(a.access, '.') - dot), dot);
    const char *tokens[] = {NULL, forged, expired, none, "garbage"};

    size_t ngroups, checked = 0;
    const struct route_group *groups = routes_groups(&ngroups);
    for (size_t g = 0; g < ngroups; g++) {
        for (size_t i = 0; i < groups[g].count; i++) {
            const struct route *rt = &groups[g].routes[i];
            if (rt->auth != ROUTE_AUTH)
                continue;
            char path[512];
            size_t w = 0;
            for (const char *p = groups[g].prefix; *p;)
                path[w++] = *p++;
            for (const char *p = rt->path; *p && w < sizeof(path) - 40;) {
                if (*p == ':') {
                    w += (size_t)snprintf(path + w, sizeof(path) - w,
                                          "0192f0c1-7a3b-7c4d-8e5f-0123456789ab");
                    while (*p && *p != '/')
                        p++;
                } else {
                    path[w++] = *p++;
                }
            }
            path[w] = '\0';
            const char *body = rt->method == HTTP_POST || rt->method == HTTP_PATCH ? "{}" : NULL;
            for (size_t k = 0; k < ARRAY_LEN(tokens); k++) {
                json_t *r;
                int st = api_req(t.app, http_method_name(rt->method), path, tokens[k], body, &r);
                cr_assert_eq(st, 401, "%s %s with token #%zu answered %d",
                             http_method_name(rt->method), path, k, st);
                cr_assert_str_eq(json_string_value(json_object_get(r, "error")),
                                 "AUTH_UNAUTHORIZED");
                json_decref(r);
            }
            checked++;
        }
    }
    cr_assert_geq(checked, 30, "only %zu authenticated routes found", checked);
    free(forged);
    free(expired);
}
