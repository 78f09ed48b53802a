/* The caller's tenant end to end on the suite's database: reading it, changing name, slug and
 * settings (validation, the slug's uniqueness, the read-only plan), permission checks, tenant
 * isolation and the audit row. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "dbtest.h"
#include "lib/password.h"
#include "routes/tenants.h"
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
TestSuite(tenants, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------------ */

static int req_h(const char *method, const char *path, const char *token, const char *extra_h,
                 const char *body, json_t **out)
{
    char auth[4200];
    const char *h[4] = {"Content-Type: application/json", NULL, NULL, NULL};
    size_t n = 1;
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h[n++] = auth;
    }
    if (extra_h)
        h[n++] = extra_h;
    struct ctx *c = app_request(t.app, method, path, h, body, body ? strlen(body) : 0);
    int st = c->res.status;
    if (out)
        *out = ctx_body_json(c);
    app_ctx_free(c);
    return st;
}

static int req(const char *method, const char *path, const char *token, const char *body,
               json_t **out)
{
    return req_h(method, path, token, NULL, body, out);
}

static int patch(const char *token, const char *body, json_t **out)
{
    return req("PATCH", "/api/v1/tenants/current", token, body, out);
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

struct account {
    char access[4096];
    char user_id[37];
    char tenant_id[37];
};

static void signup(const char *email, const char *tenant, struct account *a)
{
    char body[512];
    snprintf(body, sizeof(body),
             "{\"email\":\"%s\",\"password\":\"correct horse battery\",\"tenantName\":\"%s\"}",
             email, tenant);
    json_t *r;
    int st = req("POST", "/api/v1/auth/signup", NULL, body, &r);
    cr_assert_eq(st, 201, "signup: %d", st);
    snprintf(a->access, sizeof(a->access), "%s", jstr(r, "accessToken"));
    snprintf(a->user_id, sizeof(a->user_id), "%s", jstr(json_object_get(r, "user"), "id"));
    snprintf(a->tenant_id, sizeof(a->tenant_id), "%s",
             jstr(json_object_get(r, "tenant"), "id"));
    json_decref(r);
}

/* A user in the owner's tenant with an optional system role, signed in. */
static void user_with_role(const struct account *owner, const char *email, const char *role,
                           struct account *out)
{
    char hash[PASSWORD_HASH_MAX], id[37];
    cr_assert_eq(password_hash("correct horse battery", hash), 0);
    struct db_conn *c = dbt_acquire(t.db);
    db_set_rls_bypass(c, true);
    uuid_v7(id);
    cr_assert_eq(db_exec(c,
                         "INSERT INTO users (id, tenant_id, email, status, password_hash)"
                         " VALUES ($1, $2, $3, 'active', $4)",
                         DB_ARGS(DB_TEXT(id), DB_TEXT(owner->tenant_id), DB_TEXT(email),
                                 DB_TEXT(hash))),
                 1, "%s", db_errmsg(c));
    if (role)
        cr_assert_eq(db_exec(c,
                             "INSERT INTO user_roles (user_id, role_id, tenant_id) SELECT $1, id,"
                             " tenant_id FROM roles WHERE tenant_id = $2 AND name = $3",
                             DB_ARGS(DB_TEXT(id), DB_TEXT(owner->tenant_id), DB_TEXT(role))),
                     1, "%s", db_errmsg(c));
    db_release(c);
    char body[512];
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse battery\"}",
             email);
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/auth/login", NULL, body, &r), 200);
    snprintf(out->access, sizeof(out->access), "%s", jstr(r, "accessToken"));
    snprintf(out->user_id, sizeof(out->user_id), "%s", id);
    snprintf(out->tenant_id, sizeof(out->tenant_id), "%s", owner->tenant_id);
    json_decref(r);
}

static int64_t count_bypass(const char *sql, const char *arg)
{
    struct db_conn *c = dbt_acquire(t.db);
    db_set_rls_bypass(c, true);
    int64_t n = dbt_query_int(c, sql, DB_ARGS(DB_TEXT(arg)));
    db_release(c);
    return n;
}

static int64_t audit_updates(const char *tenant_id)
{
    return count_bypass("SELECT count(*) FROM audit_logs WHERE tenant_id = $1 AND action = "
                        "'tenant.update' AND resource_type = 'tenant'"
                        " AND resource_id = CAST($1 AS text)",
                        tenant_id);
}

/* The number of issues of a 400 VALIDATION_ERROR, and the first one's path. */
static size_t issues(json_t *r, const char **first_path)
{
    cr_assert_str_eq(jstr(r, "error"), "VALIDATION_ERROR");
    json_t *a = json_object_get(json_object_get(r, "details"), "issues");
    if (first_path)
        *first_path = jstr(json_array_get(a, 0), "path");
    return json_array_size(a);
}

/* ---- reading ------------------------------------------------------------------------------ */

Test(tenants, current_tenant_for_anyone_signed_in)
{
    struct account o, nobody;
    signup("owner@example.com", "Acme Corp", &o);
    user_with_role(&o, "nobody@example.com", NULL, &nobody);
    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/tenants/current", nobody.access, NULL, &r), 200,
                 "no permission needed");
    cr_assert_str_eq(jstr(r, "id"), o.tenant_id);
    cr_assert_str_eq(jstr(r, "slug"), "acme-corp");
    cr_assert_str_eq(jstr(r, "name"), "Acme Corp");
    cr_assert_str_eq(jstr(r, "plan"), "free");
    cr_assert_str_eq(jstr(r, "status"), "active");
    cr_assert(json_is_object(json_object_get(r, "settings")));
    cr_assert_not_null(jstr(r, "createdAt"));
    cr_assert_not_null(jstr(r, "updatedAt"));
    json_decref(r);

    cr_assert_eq(req("GET", "/api/v1/tenants/current", NULL, NULL, &r), 401);
    cr_assert_str_eq(jstr(r, "error"), "AUTH_UNAUTHORIZED");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/tenants/current", "not.a.jwt", NULL, NULL), 401);
    cr_assert_eq(patch(NULL, "{\"name\":\"x\"}", NULL), 401);
    cr_assert_eq(patch("not.a.jwt", "{\"name\":\"x\"}", NULL), 401);
}

/* ---- changing ----------------------------------------------------------------------------- */

Test(tenants, update_name_slug_and_settings)
{
    struct account o;
    signup("owner@example.com", "Acme Corp", &o);
    json_t *r;
    cr_assert_eq(patch(o.access,
                       "{\"name\":\"Acme Europe\",\"slug\":\"acme-eu-2\","
                       "\"settings\":{\"timezone\":\"Europe/Berlin\",\"features\":{\"beta\":true},"
                       "\"limits\":[1,2,3]}}",
                       &r),
                 200);
    cr_assert_str_eq(jstr(r, "name"), "Acme Europe");
    cr_assert_str_eq(jstr(r, "slug"), "acme-eu-2");
    cr_assert_str_eq(jstr(r, "plan"), "free");
    json_t *s = json_object_get(r, "settings");
    cr_assert_str_eq(jstr(s, "timezone"), "Europe/Berlin");
    cr_assert(json_is_true(json_object_get(json_object_get(s, "features"), "beta")));
    cr_assert_eq(json_array_size(json_object_get(s, "limits")), 3);
    char created[64];
    snprintf(created, sizeof(created), "%s", jstr(r, "createdAt"));
    cr_assert_geq(strcmp(jstr(r, "updatedAt"), created), 0);
    json_decref(r);

    /* stored: a fresh read says the same */
    cr_assert_eq(req("GET", "/api/v1/tenants/current", o.access, NULL, &r), 200);
    cr_assert_str_eq(jstr(r, "slug"), "acme-eu-2");
    cr_assert_str_eq(jstr(json_object_get(r, "settings"), "timezone"), "Europe/Berlin");
    json_decref(r);

    /* one field at a time leaves the others; settings is replaced as a whole */
    cr_assert_eq(patch(o.access, "{\"settings\":{\"locale\":\"de\"}}", &r), 200);
    cr_assert_str_eq(jstr(r, "name"), "Acme Europe");
    cr_assert_str_eq(jstr(r, "slug"), "acme-eu-2");
    cr_assert_str_eq(jstr(json_object_get(r, "settings"), "locale"), "de");
    cr_assert_null(json_object_get(json_object_get(r, "settings"), "timezone"));
    json_decref(r);
    cr_assert_eq(patch(o.access, "{\"settings\":{}}", &r), 200);
    cr_assert_eq(json_object_size(json_object_get(r, "settings")), 0);
    json_decref(r);
    /* an empty change changes nothing and is not audited */
    cr_assert_eq(patch(o.access, "{}", &r), 200);
    cr_assert_str_eq(jstr(r, "name"), "Acme Europe");
    json_decref(r);

    cr_assert_eq(audit_updates(o.tenant_id), 3);
    cr_assert_eq(count_bypass("SELECT count(*) FROM audit_logs WHERE action = 'tenant.update' "
                              "AND actor_id = $1",
                              o.user_id),
                 3);
    /* the slug's history is in the audit row; the settings' content is not */
    struct db_conn *c = dbt_acquire(t.db);
    db_set_rls_bypass(c, true);
    struct db_rows *rows = db_query(c,
                                    "SELECT metadata FROM audit_logs WHERE tenant_id = $1 AND "
                                    "action = 'tenant.update' ORDER BY created_at, id",
                                    DB_ARGS(DB_TEXT(o.tenant_id)));
    cr_assert_not_null(rows, "%s", db_errmsg(c));
    cr_assert(db_next(rows));
    json_t *meta = json_loads(db_text(rows, 0), 0, NULL);
    cr_assert_str_eq(jstr(meta, "previousSlug"), "acme-corp");
    cr_assert_str_eq(jstr(meta, "slug"), "acme-eu-2");
    cr_assert_str_eq(jstr(meta, "previousName"), "Acme Corp");
    cr_assert_null(strstr(db_text(rows, 0), "Europe/Berlin"));
    json_decref(meta);
    db_rows_free(rows);
    db_release(c);

    /* the new slug signs in */
    cr_assert_eq(req("POST", "/api/v1/auth/login", NULL,
                     "{\"email\":\"owner@example.com\",\"password\":\"correct horse battery\","
                     "\"tenant\":\"acme-eu-2\"}",
                     NULL),
                 200);
}

Test(tenants, validation_errors)
{
    struct account o;
    signup("owner@example.com", "Acme", &o);
    json_t *r;
    const char *path;
    static const char *const bad_slugs[] = {"\"Acme\"", "\"ab\"", "\"-acme\"", "\"acme-\"",
                                            "\"ac me\"", "\"acme_corp\"", "\"äcme\"", "42"};
    for (size_t i = 0; i < ARRAY_LEN(bad_slugs); i++) {
        char body[128];
        snprintf(body, sizeof(body), "{\"slug\":%s}", bad_slugs[i]);
        cr_assert_eq(patch(o.access, body, &r), 400, "slug %s", bad_slugs[i]);
        cr_assert_eq(issues(r, &path), 1);
        cr_assert_str_eq(path, "slug");
        json_decref(r);
    }
    char body[20100];
    snprintf(body, sizeof(body), "{\"slug\":\"%049d\"}", 0);
    cr_assert_eq(patch(o.access, body, NULL), 400, "49 characters");
    cr_assert_eq(patch(o.access, "{\"name\":\"\"}", NULL), 400);
    snprintf(body, sizeof(body), "{\"name\":\"%0101d\"}", 0);
    cr_assert_eq(patch(o.access, body, NULL), 400, "101 characters");
    static const char *const bad_settings[] = {"[]", "\"x\"", "null", "1"};
    for (size_t i = 0; i < ARRAY_LEN(bad_settings); i++) {
        snprintf(body, sizeof(body), "{\"settings\":%s}", bad_settings[i]);
        cr_assert_eq(patch(o.access, body, &r), 400, "settings %s", bad_settings[i]);
        cr_assert_eq(issues(r, &path), 1);
        cr_assert_str_eq(path, "settings");
        json_decref(r);
    }
    /* settings past the size limit */
    int w = snprintf(body, sizeof(body), "{\"settings\":{\"blob\":\"");
    memset(body + w, 'x', TENANT_SETTINGS_MAX);
    snprintf(body + w + TENANT_SETTINGS_MAX, sizeof(body) - (size_t)w - TENANT_SETTINGS_MAX,
             "\"}}");
    cr_assert_eq(patch(o.access, body, &r), 400);
    cr_assert_eq(issues(r, &path), 1);
    cr_assert_str_eq(path, "settings");
    cr_assert_str_eq(jstr(json_array_get(json_object_get(json_object_get(r, "details"), "issues"),
                                         0),
                          "code"),
                     "too_big");
    json_decref(r);
    /* just under it is fine */
    w = snprintf(body, sizeof(body), "{\"settings\":{\"blob\":\"");
    memset(body + w, 'x', TENANT_SETTINGS_MAX - 20);
    snprintf(body + w + TENANT_SETTINGS_MAX - 20, 8, "\"}}");
    cr_assert_eq(patch(o.access, body, NULL), 200);
    /* the plan is read-only, and unknown keys are refused */
    cr_assert_eq(patch(o.access, "{\"plan\":\"enterprise\"}", &r), 400);
    cr_assert_eq(issues(r, NULL), 1);
    cr_assert_str_eq(jstr(json_array_get(json_object_get(json_object_get(r, "details"), "issues"),
                                         0),
                          "code"),
                     "unrecognized_keys");
    json_decref(r);
    cr_assert_eq(patch(o.access, "{\"status\":\"suspended\"}", NULL), 400);
    cr_assert_eq(patch(o.access, "[]", NULL), 400);
    cr_assert_eq(count_bypass("SELECT count(*) FROM tenants WHERE id = $1 AND plan = 'free' AND "
                              "slug = 'acme'",
                              o.tenant_id),
                 1);
    cr_assert_eq(audit_updates(o.tenant_id), 1, "only the accepted change");
}

Test(tenants, taken_slug_conflicts)
{
    struct account o, other;
    signup("owner@example.com", "Acme", &o);
    signup("other@example.com", "Other Co", &other);
    json_t *r;
    cr_assert_eq(patch(o.access, "{\"name\":\"New name\",\"slug\":\"other-co\"}", &r), 409);
    cr_assert_str_eq(jstr(r, "error"), "RESOURCE_CONFLICT");
    cr_assert_not_null(strstr(jstr(r, "message"), "other-co"));
    json_decref(r);
    /* nothing changed, nothing audited */
    cr_assert_eq(count_bypass("SELECT count(*) FROM tenants WHERE id = $1 AND slug = 'acme' AND "
                              "name = 'Acme'",
                              o.tenant_id),
                 1);
    cr_assert_eq(audit_updates(o.tenant_id), 0);
    /* its own slug is no conflict */
    cr_assert_eq(patch(o.access, "{\"slug\":\"acme\"}", NULL), 200);
    /* a slug given up is free again */
    cr_assert_eq(patch(other.access, "{\"slug\":\"other-co-renamed\"}", NULL), 200);
    cr_assert_eq(patch(o.access, "{\"slug\":\"other-co\"}", &r), 200);
    cr_assert_str_eq(jstr(r, "slug"), "other-co");
    json_decref(r);
}

Test(tenants, only_managers_change_it)
{
    struct account o, admin, viewer;
    signup("owner@example.com", "Acme", &o);
    user_with_role(&o, "admin@example.com", "admin", &admin);
    user_with_role(&o, "viewer@example.com", "viewer", &viewer);
    json_t *r;
    cr_assert_eq(patch(viewer.access, "{\"name\":\"Mine\"}", &r), 403);
    cr_assert_str_eq(jstr(r, "error"), "AUTH_FORBIDDEN");
    json_decref(r);
    cr_assert_eq(patch(admin.access, "{\"name\":\"Mine\"}", NULL), 403,
                 "admins do not manage the tenant");
    cr_assert_eq(req("GET", "/api/v1/tenants/current", viewer.access, NULL, NULL), 200);
    cr_assert_eq(count_bypass("SELECT count(*) FROM tenants WHERE id = $1 AND name = 'Acme'",
                              o.tenant_id),
                 1);
    cr_assert_eq(audit_updates(o.tenant_id), 0);
}

/* ---- tenants are walled off --------------------------------------------------------------- */

Test(tenants, each_user_sees_and_changes_only_their_own)
{
    struct account a, b;
    signup("a@example.com", "Alpha", &a);
    signup("b@example.com", "Beta", &b);
    json_t *r;
    cr_assert_eq(patch(a.access, "{\"name\":\"Alpha 2\",\"settings\":{\"k\":1}}", NULL), 200);
    cr_assert_eq(req("GET", "/api/v1/tenants/current", b.access, NULL, &r), 200);
    cr_assert_str_eq(jstr(r, "id"), b.tenant_id);
    cr_assert_str_eq(jstr(r, "name"), "Beta");
    cr_assert_eq(json_object_size(json_object_get(r, "settings")), 0);
    json_decref(r);
    cr_assert_eq(audit_updates(b.tenant_id), 0);

    /* a regular user's X-Tenant-ID is ignored */
    char hdr[128];
    snprintf(hdr, sizeof(hdr), "X-Tenant-ID: %s", a.tenant_id);
    cr_assert_eq(req_h("GET", "/api/v1/tenants/current", b.access, hdr, NULL, &r), 200);
    cr_assert_str_eq(jstr(r, "id"), b.tenant_id);
    json_decref(r);
    cr_assert_eq(req_h("PATCH", "/api/v1/tenants/current", b.access, hdr,
                       "{\"name\":\"Hijacked\"}", NULL),
                 200);
    cr_assert_eq(count_bypass("SELECT count(*) FROM tenants WHERE id = $1 AND name = 'Alpha 2'",
                              a.tenant_id),
                 1, "the header did not redirect the change");

    /* a global admin acts on the tenant it names */
    struct db_conn *c = dbt_acquire(t.db);
    db_set_rls_bypass(c, true);
    cr_assert_eq(db_exec(c, "UPDATE users SET is_global_admin = true WHERE id = $1",
                         DB_ARGS(DB_TEXT(b.user_id))),
                 1);
    db_release(c);
    cr_assert_eq(req_h("GET", "/api/v1/tenants/current", b.access, hdr, NULL, &r), 200);
    cr_assert_str_eq(jstr(r, "id"), a.tenant_id);
    json_decref(r);
    cr_assert_eq(req_h("PATCH", "/api/v1/tenants/current", b.access, hdr,
                       "{\"name\":\"Renamed by support\"}", NULL),
                 200);
    cr_assert_eq(count_bypass("SELECT count(*) FROM audit_logs WHERE tenant_id = $1 AND action = "
                              "'tenant.update' AND metadata IS NOT NULL",
                              a.tenant_id),
                 2);
}
