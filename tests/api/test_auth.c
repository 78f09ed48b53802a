/* Identity end to end on the suite's database: sign-up, sign-in, tokens, refresh rotation and
 * reuse detection, sign-out scopes, sessions, the auth/tenant/RBAC phases, and the
 * specification's own Users API tests. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <unistd.h>

#include "accounts.h"
#include "dbtest.h"
#include "lib/jwt.h"
#include "lib/token.h"
#include "services/auth.h"
#include "support.h"

static struct tenv t;

static void setup(void)
{
    /* a grace window of 1 s keeps the reuse test short; budgets out of the way */
    static const char *const extra[] = {"REFRESH_TOKEN_REUSE_INTERVAL=1",
                                        "RATE_LIMIT_ENABLED=false", NULL};
    tenv_setup(&t, extra, NULL, 0);
}
static void teardown(void)
{
    tenv_teardown(&t);
}
TestSuite(auth, .init = setup, .fini = teardown, .timeout = 60);

/* A request with an optional bearer token and JSON body; returns status, body in *out. */
static int req(const char *method, const char *path, const char *token, const char *body,
               json_t **out)
{
    return api_req(t.app, method, path, token, body, out);
}

static const char *jstr(json_t *o, const char *path1, const char *path2)
{
    json_t *v = json_object_get(o, path1);
    if (path2)
        v = json_object_get(v, path2);
    return json_string_value(v);
}

Test(auth, signup_creates_tenant_owner_and_session)
{
    json_t *r;
    int st = req("POST", "/api/v1/auth/signup", NULL,
                 "{\"email\":\"Ann@Example.COM\",\"password\":\"correct horse battery\","
                 "\"firstName\":\"Ann\",\"tenantName\":\"Acme Corp!\"}",
                 &r);
    cr_assert_eq(st, 201);
    cr_assert_str_eq(jstr(r, "tokenType", NULL), "bearer");
    cr_assert_gt(strlen(jstr(r, "accessToken", NULL)), 100);
    cr_assert_eq(strlen(jstr(r, "refreshToken", NULL)), TOKEN_LEN);
    cr_assert_eq(json_integer_value(json_object_get(r, "expiresIn")), 900);
    cr_assert_str_eq(jstr(r, "user", "email"), "ann@example.com", "stored lower-case");
    cr_assert_str_eq(jstr(r, "tenant", "slug"), "acme-corp");
    cr_assert_str_eq(jstr(r, "tenant", "plan"), "free");
    cr_assert_null(json_object_get(json_object_get(r, "user"), "passwordHash"));
    const char *uid = jstr(r, "user", "id");
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM user_roles ur JOIN roles r ON r.id = "
                                  "ur.role_id WHERE ur.user_id = $1 AND r.name = 'owner'",
                                  uid),
                 1, "the first user is the owner");
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM roles WHERE tenant_id = $1 AND is_system",
                                  jstr(r, "tenant", "id")),
                 4);
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM audit_logs WHERE actor_id = $1 AND action "
                                  "= 'auth.signup'",
                                  uid),
                 1);
    json_decref(r);

    st = req("POST", "/api/v1/auth/signup", NULL,
             "{\"email\":\"ann@example.com\",\"password\":\"another password\","
             "\"tenantName\":\"Acme\"}",
             &r);
    cr_assert_eq(st, 409);
    cr_assert_str_eq(jstr(r, "error", NULL), "RESOURCE_CONFLICT");
    json_decref(r);
    /* a second tenant with the same name gets its own slug */
    struct account b;
    accounts_signup(t.app, "bob@example.com", "Acme Corp", &b);
    json_t *me;
    cr_assert_eq(req("GET", "/api/v1/users/me", b.access, NULL, &me), 200);
    json_decref(me);
    cr_assert_eq(
        dbt_count_bypass(t.db, "SELECT count(*) FROM tenants WHERE slug = $1", "acme-corp-2"), 1);
}

Test(auth, signup_validation)
{
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/auth/signup", NULL,
                     "{\"email\":\"nope\",\"password\":\"short\",\"tenantName\":\"\"}", &r),
                 400);
    cr_assert_str_eq(jstr(r, "error", NULL), "VALIDATION_ERROR");
    cr_assert_eq(json_array_size(json_object_get(json_object_get(r, "details"), "issues")), 3);
    json_decref(r);
}

Test(auth, login_success_and_uniform_failures)
{
    struct account a, b;
    accounts_signup(t.app, "carol@example.com", "Carol Inc", &a);
    cr_assert_eq(accounts_login(t.app, "CAROL@example.com", "correct horse battery", &b), 200);
    cr_assert_str_eq(b.user_id, a.user_id);
    json_t *r1, *r2;
    cr_assert_eq(req("POST", "/api/v1/auth/login", NULL,
                     "{\"email\":\"carol@example.com\",\"password\":\"wrong\"}", &r1),
                 401);
    cr_assert_eq(req("POST", "/api/v1/auth/login", NULL,
                     "{\"email\":\"nobody@example.com\",\"password\":\"wrong\"}", &r2),
                 401);
    cr_assert_str_eq(jstr(r1, "error", NULL), "AUTH_UNAUTHORIZED");
    cr_assert_str_eq(jstr(r1, "message", NULL), jstr(r2, "message", NULL),
                     "no account enumeration");
    json_decref(r1);
    json_decref(r2);
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM audit_logs WHERE tenant_id = $1 AND action "
                                  "= 'auth.login_failed'",
                                  a.tenant_id),
                 1, "the failed attempt is audited even though the request failed");
    cr_assert_eq(
        dbt_count_bypass(t.db,
                         "SELECT count(*) FROM users WHERE id = $1 AND last_login_at IS NOT "
                         "NULL",
                         a.user_id),
        1);
}

static int refresh_status(const char *token)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"refreshToken\":\"%s\"}", token);
    return req("POST", "/api/v1/auth/refresh", NULL, body, NULL);
}

Test(auth, suspended_tenant_and_user_are_refused)
{
    struct account a;
    accounts_signup(t.app, "dan@example.com", "Dan Co", &a);
    dbt_exec_bypass(t.db, "UPDATE tenants SET status = 'suspended' WHERE id = $1", a.tenant_id);
    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/users/me", a.access, NULL, &r), 403);
    cr_assert_str_eq(jstr(r, "error", NULL), "AUTH_FORBIDDEN");
    cr_assert_str_eq(jstr(r, "message", NULL), "Tenant is suspended");
    json_decref(r);
    cr_assert_eq(accounts_login(t.app, "dan@example.com", "correct horse battery", NULL), 403);
    cr_assert_eq(refresh_status(a.refresh), 403, "no new tokens for a suspended tenant");
    dbt_exec_bypass(t.db, "UPDATE tenants SET status = 'active' WHERE id = $1", a.tenant_id);
    dbt_exec_bypass(t.db, "UPDATE users SET status = 'suspended' WHERE id = $1", a.user_id);
    cr_assert_eq(req("GET", "/api/v1/users/me", a.access, NULL, NULL), 403);
    cr_assert_eq(accounts_login(t.app, "dan@example.com", "correct horse battery", NULL), 403);
}

static char *forge(const struct account *a, const char *secret, int64_t iat, int64_t exp)
{
    struct jwt_claims cl = {.sub = (char *)a->user_id, .tid = (char *)a->tenant_id,
                            .role = "owner", .pv = -1, .sid = (char *)a->tenant_id,
                            .aal = "aal1", .iat = iat, .exp = exp, .iss = t.cfg.api_url,
                            .aud = AUTH_AUDIENCE};
    char *tok = NULL;
    cr_assert_eq(jwt_sign(&cl, (const unsigned char *)secret, strlen(secret), &tok), JWT_OK);
    return tok;
}

Test(auth, bad_tokens_are_401)
{
    struct account a;
    accounts_signup(t.app, "erin@example.com", "Erin", &a);
    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/users/me", NULL, NULL, &r), 401);
    cr_assert_str_eq(jstr(r, "error", NULL), "AUTH_UNAUTHORIZED");
    cr_assert_str_eq(jstr(r, "message", NULL), "Missing or invalid authorization header");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/users/me", "not.a.jwt", NULL, NULL), 401);
    /* forged with another key, expired, and alg:none */
    char *other = forge(&a, "0123456789abcdef0123456789abcdef-not-ours", auth_now(),
                        auth_now() + 600);
    cr_assert_eq(req("GET", "/api/v1/users/me", other, NULL, NULL), 401);
    free(other);
    char *expired = forge(&a, t.cfg.jwt_secret, auth_now() - 1000, auth_now() - 10);
    cr_assert_eq(req("GET", "/api/v1/users/me", expired, NULL, NULL), 401);
    free(expired);
    char none[1024];
    const char *dot = strchr(a.access, '.');
    snprintf(none, sizeof(none), "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0%.*s.", 
             (int)(strrchr(a.access, '.') - dot), dot);
    cr_assert_eq(req("GET", "/api/v1/users/me", none, NULL, NULL), 401);
    /* a valid signature but a session that does not exist */
    char *nosession = forge(&a, t.cfg.jwt_secret, auth_now(), auth_now() + 600);
    cr_assert_eq(req("GET", "/api/v1/users/me", nosession, NULL, NULL), 401);
    free(nosession);
    cr_assert_eq(req("GET", "/api/v1/users/me", a.access, NULL, NULL), 200);
}

static int refresh(const char *token, struct account *out)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"refreshToken\":\"%s\"}", token);
    json_t *r;
    int st = req("POST", "/api/v1/auth/refresh", NULL, body, &r);
    if (st == 200 && out) {
        snprintf(out->access, sizeof(out->access), "%s", jstr(r, "accessToken", NULL));
        snprintf(out->refresh, sizeof(out->refresh), "%s", jstr(r, "refreshToken", NULL));
    }
    json_decref(r);
    return st;
}

Test(auth, refresh_rotates_and_reuse_revokes_the_session)
{
    struct account a, b, c2;
    accounts_signup(t.app, "fay@example.com", "Fay", &a);
    cr_assert_eq(refresh(a.refresh, &b), 200);
    cr_assert_str_neq(b.refresh, a.refresh, "rotated");
    /* a second tab presenting the same token at once still succeeds */
    cr_assert_eq(refresh(a.refresh, &c2), 200);
    cr_assert_eq(req("GET", "/api/v1/users/me", b.access, NULL, NULL), 200);
    sleep(2); /* past the 1 s grace window: now it is a replay */
    json_t *r;
    char body[256];
    snprintf(body, sizeof(body), "{\"refreshToken\":\"%s\"}", a.refresh);
    cr_assert_eq(req("POST", "/api/v1/auth/refresh", NULL, body, &r), 401);
    cr_assert_str_eq(jstr(r, "message", NULL), "Refresh token was already used");
    json_decref(r);
    /* the whole session is gone: its newest refresh token and its access tokens too */
    cr_assert_eq(refresh(b.refresh, NULL), 401);
    cr_assert_eq(req("GET", "/api/v1/users/me", b.access, NULL, NULL), 401);
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM audit_logs WHERE actor_id = $1 AND action "
                                  "= 'auth.token_reuse_detected'",
                                  a.user_id),
                 1);
    cr_assert_eq(refresh("garbage-token", NULL), 401);
}

Test(auth, logout_scopes_and_sessions)
{
    struct account s1, s2, s3;
    accounts_signup(t.app, "gus@example.com", "Gus", &s1);
    cr_assert_eq(accounts_login(t.app, "gus@example.com", "correct horse battery", &s2), 200);
    cr_assert_eq(accounts_login(t.app, "gus@example.com", "correct horse battery", &s3), 200);
    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/auth/sessions", s1.access, NULL, &r), 200);
    cr_assert_eq(json_array_size(json_object_get(r, "data")), 3);
    json_decref(r);

    cr_assert_eq(req("POST", "/api/v1/auth/logout", s1.access, "{}", NULL), 204);
    cr_assert_eq(req("GET", "/api/v1/users/me", s1.access, NULL, NULL), 401,
                 "a signed-out session's access token stops at once");
    cr_assert_eq(req("GET", "/api/v1/users/me", s2.access, NULL, NULL), 200);

    cr_assert_eq(req("POST", "/api/v1/auth/logout", s2.access, "{\"scope\":\"others\"}", NULL),
                 204);
    cr_assert_eq(req("GET", "/api/v1/users/me", s3.access, NULL, NULL), 401);
    cr_assert_eq(req("GET", "/api/v1/users/me", s2.access, NULL, NULL), 200);
    cr_assert_eq(req("POST", "/api/v1/auth/logout", s2.access, "{\"scope\":\"global\"}", NULL),
                 204);
    cr_assert_eq(req("GET", "/api/v1/users/me", s2.access, NULL, NULL), 401);
    cr_assert_eq(req("POST", "/api/v1/auth/logout", s2.access, "{\"scope\":\"everything\"}",
                     NULL),
                 401);
}

Test(auth, revoke_one_session_only_my_own)
{
    struct account a, a2, other;
    accounts_signup(t.app, "hal@example.com", "Hal", &a);
    cr_assert_eq(accounts_login(t.app, "hal@example.com", "correct horse battery", &a2), 200);
    accounts_signup(t.app, "ivy@example.com", "Ivy", &other);
    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/auth/sessions", a.access, NULL, &r), 200);
    char mine[37] = "", theirs[37] = "";
    json_t *s;
    size_t i;
    json_array_foreach(json_object_get(r, "data"), i, s)
    {
        if (!json_is_true(json_object_get(s, "current")))
            snprintf(mine, sizeof(mine), "%s", json_string_value(json_object_get(s, "id")));
    }
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/auth/sessions", other.access, NULL, &r), 200);
    snprintf(theirs, sizeof(theirs), "%s",
             json_string_value(json_object_get(json_array_get(json_object_get(r, "data"), 0),
                                               "id")));
    json_decref(r);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/auth/sessions/%s", theirs);
    cr_assert_eq(req("DELETE", path, a.access, NULL, NULL), 404, "another tenant's session");
    snprintf(path, sizeof(path), "/api/v1/auth/sessions/%s", mine);
    cr_assert_eq(req("DELETE", path, a.access, NULL, NULL), 204);
    cr_assert_eq(req("GET", "/api/v1/users/me", a2.access, NULL, NULL), 401);
    cr_assert_eq(req("GET", "/api/v1/users/me", a.access, NULL, NULL), 200);
}

/* ---- the specification's Users API tests, translated ------------------------------------ */

static struct account admin;
static void users_setup(void)
{
    accounts_signup(t.app, "owner@example.com", "Spec Tenant", &admin);
}

Test(auth, spec_users_api_returns_paginated_users)
{
    users_setup();
    char id[37];
    accounts_create_user(t.db, admin.tenant_id, "user1@example.com", "User", "member", id);
    accounts_create_user(t.db, admin.tenant_id, "user2@example.com", "User", "member", id);
    json_t *body;
    cr_assert_eq(req("GET", "/api/v1/users", admin.access, NULL, &body), 200);
    cr_assert_eq(json_array_size(json_object_get(body, "data")), 3); /* admin + 2 users */
    json_t *p = json_object_get(body, "pagination");
    cr_assert_eq(json_integer_value(json_object_get(p, "total")), 3);
    cr_assert_eq(json_integer_value(json_object_get(p, "page")), 1);
    cr_assert_eq(json_integer_value(json_object_get(p, "limit")), 20);
    cr_assert_eq(json_integer_value(json_object_get(p, "totalPages")), 1);
    json_decref(body);
    cr_assert_eq(req("GET", "/api/v1/users?page=2&limit=2", admin.access, NULL, &body), 200);
    cr_assert_eq(json_array_size(json_object_get(body, "data")), 1);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(body, "pagination"),
                                                    "totalPages")),
                 2);
    json_decref(body);
}

Test(auth, spec_users_api_filters_by_search_term)
{
    users_setup();
    char id[37];
    accounts_create_user(t.db, admin.tenant_id, "john@example.com", "Johnny", "member", id);
    accounts_create_user(t.db, admin.tenant_id, "jane@example.com", "Jane", "member", id);
    json_t *body;
    cr_assert_eq(req("GET", "/api/v1/users?search=john", admin.access, NULL, &body), 200);
    cr_assert_eq(json_array_size(json_object_get(body, "data")), 1);
    cr_assert_str_eq(jstr(json_array_get(json_object_get(body, "data"), 0), "email", NULL),
                     "john@example.com");
    json_decref(body);
    /* case-insensitive on both databases, and '%' is literal */
    cr_assert_eq(req("GET", "/api/v1/users?search=JOHN", admin.access, NULL, &body), 200);
    cr_assert_eq(json_array_size(json_object_get(body, "data")), 1);
    json_decref(body);
    cr_assert_eq(req("GET", "/api/v1/users?search=%25", admin.access, NULL, &body), 200);
    cr_assert_eq(json_array_size(json_object_get(body, "data")), 0);
    json_decref(body);
}

/* The list is written as text without jansson: same values and types as GET /users/:id. */
Test(auth, users_list_filters_by_status_and_matches_the_single_read)
{
    users_setup();
    char john[37], jane[37];
    accounts_create_user(t.db, admin.tenant_id, "john@example.com", "Jo\"hn \u00e9", "member",
                         john);
    accounts_create_user(t.db, admin.tenant_id, "jane@example.com", "Jane", "member", jane);
    dbt_exec_bypass(t.db, "UPDATE users SET status = 'suspended' WHERE id = $1", jane);
    json_t *body;
    cr_assert_eq(req("GET", "/api/v1/users?status=suspended", admin.access, NULL, &body), 200);
    json_t *data = json_object_get(body, "data");
    cr_assert_eq(json_array_size(data), 1);
    cr_assert_str_eq(jstr(json_array_get(data, 0), "id", NULL), jane);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(body, "pagination"), "total")),
                 1);
    json_decref(body);
    /* status and search together: both must hold */
    cr_assert_eq(req("GET", "/api/v1/users?status=active&search=jane", admin.access, NULL, &body),
                 200);
    cr_assert_eq(json_array_size(json_object_get(body, "data")), 0);
    json_decref(body);
    cr_assert_eq(req("GET", "/api/v1/users?status=active&search=%C3%A9", admin.access, NULL, &body),
                 200);
    data = json_object_get(body, "data");
    cr_assert_eq(json_array_size(data), 1);
    json_t *listed = json_incref(json_array_get(data, 0));
    json_decref(body);
    char path[80];
    snprintf(path, sizeof(path), "/api/v1/users/%s", john);
    cr_assert_eq(req("GET", path, admin.access, NULL, &body), 200);
    /* quotes and non-ASCII escaped properly, booleans, nulls and timestamps typed alike */
    cr_assert(json_equal(listed, body), "list and single read differ");
    cr_assert_str_eq(jstr(listed, "firstName", NULL), "Jo\"hn \u00e9");
    cr_assert(json_is_false(json_object_get(listed, "emailVerified")));
    cr_assert(json_is_null(json_object_get(listed, "lastName")));
    json_decref(listed);
    json_decref(body);
    /* a page past the end: no rows, the total still counted */
    cr_assert_eq(req("GET", "/api/v1/users?page=9", admin.access, NULL, &body), 200);
    cr_assert_eq(json_array_size(json_object_get(body, "data")), 0);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(body, "pagination"), "total")),
                 3);
    json_decref(body);
}

Test(auth, spec_users_api_401_without_auth)
{
    cr_assert_eq(req("GET", "/api/v1/users", NULL, NULL, NULL), 401);
}

Test(auth, rbac_and_cross_tenant_isolation)
{
    users_setup();
    struct account other;
    accounts_signup(t.app, "stranger@example.com", "Other Tenant", &other);
    char nobody_id[37], viewer_id[37];
    accounts_create_user(t.db, admin.tenant_id, "norole@example.com", "No", NULL, nobody_id);
    accounts_create_user(t.db, admin.tenant_id, "viewer@example.com", "Vi", "viewer", viewer_id);
    struct account nobody, viewer;
    cr_assert_eq(accounts_login(t.app, "norole@example.com", "correct horse battery", &nobody),
                 200);
    cr_assert_eq(accounts_login(t.app, "viewer@example.com", "correct horse battery", &viewer),
                 200);
    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/users", nobody.access, NULL, &r), 403);
    cr_assert_str_eq(jstr(r, "error", NULL), "AUTH_FORBIDDEN");
    cr_assert_str_eq(jstr(r, "message", NULL), "Insufficient permissions");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/users/me", nobody.access, NULL, NULL), 200,
                 "the own profile needs no permission");
    cr_assert_eq(req("GET", "/api/v1/users", viewer.access, NULL, NULL), 200);
    /* another tenant's user id answers 404, never 403 */
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/users/%s", other.user_id);
    cr_assert_eq(req("GET", path, admin.access, NULL, &r), 404);
    cr_assert_str_eq(jstr(r, "error", NULL), "RESOURCE_NOT_FOUND");
    json_decref(r);
    snprintf(path, sizeof(path), "/api/v1/users/%s", viewer_id);
    cr_assert_eq(req("GET", path, admin.access, NULL, NULL), 200);
    cr_assert_eq(req("GET", "/api/v1/users/not-a-uuid", admin.access, NULL, NULL), 400);
    /* permissions change at once, not when the token expires */
    dbt_exec_bypass(t.db, "DELETE FROM user_roles WHERE user_id = $1", viewer_id);
    cr_assert_eq(req("GET", "/api/v1/users", viewer.access, NULL, NULL), 403);
}

Test(auth, global_admin_acts_in_a_tenant_by_header)
{
    users_setup();
    struct account other;
    accounts_signup(t.app, "target@example.com", "Target", &other);
    dbt_exec_bypass(t.db, "UPDATE users SET is_global_admin = true WHERE id = $1", admin.user_id);
    char hdr[128], auth_h[4200];
    snprintf(hdr, sizeof(hdr), "X-Tenant-ID: %s", other.tenant_id);
    snprintf(auth_h, sizeof(auth_h), "Authorization: Bearer %s", admin.access);
    const char *h[] = {auth_h, hdr, NULL};
    struct ctx *c = app_request(t.app, "GET", "/api/v1/users", h, NULL, 0);
    cr_assert_eq(c->res.status, 200);
    json_t *b = ctx_body_json(c);
    cr_assert_str_eq(jstr(json_array_get(json_object_get(b, "data"), 0), "email", NULL),
                     "target@example.com");
    json_decref(b);
    app_ctx_free(c);
    /* a regular user's X-Tenant-ID is ignored */
    snprintf(auth_h, sizeof(auth_h), "Authorization: Bearer %s", other.access);
    snprintf(hdr, sizeof(hdr), "X-Tenant-ID: %s", admin.tenant_id);
    c = app_request(t.app, "GET", "/api/v1/users", h, NULL, 0);
    b = ctx_body_json(c);
    cr_assert_str_eq(jstr(json_array_get(json_object_get(b, "data"), 0), "email", NULL),
                     "target@example.com");
    json_decref(b);
    app_ctx_free(c);
}

Test(auth, permissions_catalogue)
{
    users_setup();
    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/permissions", admin.access, NULL, &r), 200);
    cr_assert_geq(json_array_size(json_object_get(r, "data")), 13);
    cr_assert_eq(json_array_size(json_object_get(r, "systemRoles")), 4);
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/permissions", NULL, NULL, NULL), 401);
}
