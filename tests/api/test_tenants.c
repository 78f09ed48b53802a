/* The caller's tenant end to end on the suite's database: reading it, changing name, slug and
 * settings (validation, the slug's uniqueness, the read-only plan), permission checks, tenant
 * isolation and the audit row. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "accounts.h"
#include "dbtest.h"
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

static int req(const char *method, const char *path, const char *token, const char *body,
               json_t **out)
{
    return api_req(t.app, method, path, token, body, out);
}

static int patch(const char *token, const char *body, json_t **out)
{
    return req("PATCH", "/api/v1/tenants/current", token, body, out);
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static int64_t audit_updates(const char *tenant_id)
{
    return dbt_count_bypass(t.db,
                            "SELECT count(*) FROM audit_logs WHERE tenant_id = $1 AND action = "
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
    accounts_signup(t.app, "owner@example.com", "Acme Corp", &o);
    accounts_user_with_role(&t, &o, "nobody@example.com", NULL, &nobody);
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
    accounts_signup(t.app, "owner@example.com", "Acme Corp", &o);
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
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM audit_logs WHERE action = 'tenant.update' "
                                  "AND actor_id = $1",
                                  o.user_id),
                 3);
    /* the slug's history is in the audit row; the settings' content is not */
    struct db_conn *c = dbt_bypass(t.db);
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
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
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
    cr_assert_eq(
        dbt_count_bypass(t.db,
                         "SELECT count(*) FROM tenants WHERE id = $1 AND plan = 'free' AND "
                         "slug = 'acme'",
                         o.tenant_id),
        1);
    cr_assert_eq(audit_updates(o.tenant_id), 1, "only the accepted change");
}

Test(tenants, taken_slug_conflicts)
{
    struct account o, other;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    accounts_signup(t.app, "other@example.com", "Other Co", &other);
    json_t *r;
    cr_assert_eq(patch(o.access, "{\"name\":\"New name\",\"slug\":\"other-co\"}", &r), 409);
    cr_assert_str_eq(jstr(r, "error"), "RESOURCE_CONFLICT");
    cr_assert_not_null(strstr(jstr(r, "message"), "other-co"));
    json_decref(r);
    /* nothing changed, nothing audited */
    cr_assert_eq(
        dbt_count_bypass(t.db,
                         "SELECT count(*) FROM tenants WHERE id = $1 AND slug = 'acme' AND "
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
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    accounts_user_with_role(&t, &o, "admin@example.com", "admin", &admin);
    accounts_user_with_role(&t, &o, "viewer@example.com", "viewer", &viewer);
    json_t *r;
    cr_assert_eq(patch(viewer.access, "{\"name\":\"Mine\"}", &r), 403);
    cr_assert_str_eq(jstr(r, "error"), "AUTH_FORBIDDEN");
    json_decref(r);
    cr_assert_eq(patch(admin.access, "{\"name\":\"Mine\"}", NULL), 403,
                 "admins do not manage the tenant");
    cr_assert_eq(req("GET", "/api/v1/tenants/current", viewer.access, NULL, NULL), 200);
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM tenants WHERE id = $1 AND name = 'Acme'",
                                  o.tenant_id),
                 1);
    cr_assert_eq(audit_updates(o.tenant_id), 0);
}

/* ---- tenants are walled off --------------------------------------------------------------- */

Test(tenants, each_user_sees_and_changes_only_their_own)
{
    struct account a, b;
    accounts_signup(t.app, "a@example.com", "Alpha", &a);
    accounts_signup(t.app, "b@example.com", "Beta", &b);
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
    cr_assert_eq(api_req_h(t.app, "GET", "/api/v1/tenants/current", b.access, hdr, NULL, &r), 200);
    cr_assert_str_eq(jstr(r, "id"), b.tenant_id);
    json_decref(r);
    cr_assert_eq(api_req_h(t.app, "PATCH", "/api/v1/tenants/current", b.access, hdr,
                           "{\"name\":\"Hijacked\"}", NULL),
                 200);
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM tenants WHERE id = $1 AND name = 'Alpha 2'",
                                  a.tenant_id),
                 1, "the header did not redirect the change");

    /* a global admin acts on the tenant it names */
    struct db_conn *c = dbt_bypass(t.db);
    cr_assert_eq(db_exec(c, "UPDATE users SET is_global_admin = true WHERE id = $1",
                         DB_ARGS(DB_TEXT(b.user_id))),
                 1);
    db_release(c);
    cr_assert_eq(api_req_h(t.app, "GET", "/api/v1/tenants/current", b.access, hdr, NULL, &r), 200);
    cr_assert_str_eq(jstr(r, "id"), a.tenant_id);
    json_decref(r);
    cr_assert_eq(api_req_h(t.app, "PATCH", "/api/v1/tenants/current", b.access, hdr,
                           "{\"name\":\"Renamed by support\"}", NULL),
                 200);
    cr_assert_eq(
        dbt_count_bypass(t.db,
                         "SELECT count(*) FROM audit_logs WHERE tenant_id = $1 AND action = "
                         "'tenant.update' AND metadata IS NOT NULL",
                         a.tenant_id),
        2);
}
