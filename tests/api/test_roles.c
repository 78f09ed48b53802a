/* Roles end to end on the suite's database: the system roles, custom roles (create, change,
 * delete), assignments, the last-owner rule, no privilege escalation, permission checks,
 * cross-tenant isolation and the audit rows of every change. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "accounts.h"
#include "dbtest.h"
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
TestSuite(roles, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------------ */

/* A request with an optional bearer token and JSON body; returns status, body in *out. */
static int req(const char *method, const char *path, const char *token, const char *body,
               json_t **out)
{
    return api_req(t.app, method, path, token, body, out);
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* The error code of an error envelope, and its details.reason. */
static const char *err_code(json_t *r)
{
    return jstr(r, "error");
}
static const char *err_reason(json_t *r)
{
    return jstr(json_object_get(r, "details"), "reason");
}

static int64_t audit_count(const char *tenant_id, const char *action)
{
    struct db_conn *c = dbt_bypass(t.db);
    int64_t n = dbt_query_int(c,
                              "SELECT count(*) FROM audit_logs WHERE tenant_id = $1"
                              " AND action = $2",
                              DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(action)));
    db_release(c);
    return n;
}

/* The id of the tenant's role called name. */
static void role_id(const char *tenant_id, const char *name, char out[37])
{
    struct db_conn *c = dbt_bypass(t.db);
    struct db_rows *r = db_query(c, "SELECT id FROM roles WHERE tenant_id = $1 AND name = $2",
                                 DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(name)));
    cr_assert_not_null(r, "%s", db_errmsg(c));
    cr_assert(db_next(r), "no role %s", name);
    snprintf(out, 37, "%s", db_text(r, 0));
    db_rows_free(r);
    db_release(c);
}

/* POST /roles; returns status, the new id in id_out (when 201). */
static int create_role(const char *token, const char *body, char id_out[37], json_t **out)
{
    json_t *r;
    int st = req("POST", "/api/v1/roles", token, body, &r);
    if (st == 201 && id_out)
        snprintf(id_out, 37, "%s", jstr(r, "id"));
    if (out)
        *out = r;
    else
        json_decref(r);
    return st;
}

static int assign(const char *token, const char *user_id, const char *rid, json_t **out)
{
    char path[128], body[128];
    snprintf(path, sizeof(path), "/api/v1/users/%s/roles", user_id);
    snprintf(body, sizeof(body), "{\"roleId\":\"%s\"}", rid);
    return req("POST", path, token, body, out);
}

static int unassign(const char *token, const char *user_id, const char *rid, json_t **out)
{
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/users/%s/roles/%s", user_id, rid);
    return req("DELETE", path, token, NULL, out);
}

static int on_role(const char *method, const char *rid, const char *token, const char *body,
                   json_t **out)
{
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/roles/%s", rid);
    return req(method, path, token, body, out);
}

/* The names in a JSON array of Role objects, comma-separated. */
static void role_names(json_t *arr, char *out, size_t n)
{
    size_t w = 0, i;
    json_t *v;
    out[0] = '\0';
    json_array_foreach(arr, i, v)
    {
        w += (size_t)snprintf(out + w, n - w, "%s%s", i ? "," : "", jstr(v, "name"));
        if (w >= n)
            break;
    }
}

/* ---- reading ------------------------------------------------------------------------------ */

Test(roles, list_and_get_system_roles)
{
    struct account o;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/roles", o.access, NULL, &r), 200);
    char names[256];
    role_names(json_object_get(r, "data"), names, sizeof(names));
    cr_assert_str_eq(names, "owner,admin,member,viewer");
    json_t *p = json_object_get(r, "pagination");
    cr_assert_eq(json_integer_value(json_object_get(p, "total")), 4);
    cr_assert_eq(json_integer_value(json_object_get(p, "page")), 1);
    cr_assert_eq(json_integer_value(json_object_get(p, "limit")), 20);
    cr_assert_eq(json_integer_value(json_object_get(p, "totalPages")), 1);
    json_t *owner = json_array_get(json_object_get(r, "data"), 0);
    cr_assert(json_is_true(json_object_get(owner, "isSystem")));
    cr_assert_eq(json_integer_value(json_object_get(owner, "userCount")), 1);
    cr_assert_geq(json_array_size(json_object_get(owner, "permissions")), 13);
    cr_assert_not_null(jstr(owner, "createdAt"));
    cr_assert_not_null(jstr(owner, "updatedAt"));
    char oid[37];
    snprintf(oid, sizeof(oid), "%s", jstr(owner, "id"));
    json_decref(r);

    cr_assert_eq(on_role("GET", oid, o.access, NULL, &r), 200);
    cr_assert_str_eq(jstr(r, "name"), "owner");
    cr_assert_str_eq(jstr(r, "id"), oid);
    json_decref(r);

    cr_assert_eq(req("GET", "/api/v1/roles?page=2&limit=3", o.access, NULL, &r), 200);
    role_names(json_object_get(r, "data"), names, sizeof(names));
    cr_assert_str_eq(names, "viewer");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(r, "pagination"),
                                                    "totalPages")),
                 2);
    json_decref(r);

    cr_assert_eq(req("GET", "/api/v1/roles?limit=0", o.access, NULL, NULL), 400);
    cr_assert_eq(req("GET", "/api/v1/roles/not-a-uuid", o.access, NULL, NULL), 400);
    cr_assert_eq(req("GET", "/api/v1/roles/00000000-0000-4000-8000-000000000000", o.access,
                     NULL, &r),
                 404);
    cr_assert_str_eq(err_code(r), "RESOURCE_NOT_FOUND");
    json_decref(r);

    /* a user's roles */
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/users/%s/roles", o.user_id);
    cr_assert_eq(req("GET", path, o.access, NULL, &r), 200);
    role_names(json_object_get(r, "data"), names, sizeof(names));
    cr_assert_str_eq(names, "owner");
    json_decref(r);
}

Test(roles, every_route_needs_a_token)
{
    static const char *const calls[][2] = {
        {"GET", "/api/v1/roles"},
        {"GET", "/api/v1/roles/00000000-0000-4000-8000-000000000000"},
        {"POST", "/api/v1/roles"},
        {"PATCH", "/api/v1/roles/00000000-0000-4000-8000-000000000000"},
        {"DELETE", "/api/v1/roles/00000000-0000-4000-8000-000000000000"},
        {"GET", "/api/v1/users/00000000-0000-4000-8000-000000000000/roles"},
        {"POST", "/api/v1/users/00000000-0000-4000-8000-000000000000/roles"},
        {"DELETE", "/api/v1/users/00000000-0000-4000-8000-000000000000/roles/"
                   "00000000-0000-4000-8000-000000000000"},
    };
    for (size_t i = 0; i < ARRAY_LEN(calls); i++) {
        json_t *r;
        int st = req(calls[i][0], calls[i][1], NULL,
                     strcmp(calls[i][0], "GET") && strcmp(calls[i][0], "DELETE") ? "{}" : NULL,
                     &r);
        cr_assert_eq(st, 401, "%s %s: %d", calls[i][0], calls[i][1], st);
        cr_assert_str_eq(err_code(r), "AUTH_UNAUTHORIZED");
        json_decref(r);
        cr_assert_eq(req(calls[i][0], calls[i][1], "not.a.jwt", NULL, NULL), 401);
    }
}

/* ---- custom roles ------------------------------------------------------------------------- */

Test(roles, create_update_delete_custom_role)
{
    struct account o;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    json_t *r;
    char rid[37];
    /* permissions come back in catalogue order, without duplicates */
    cr_assert_eq(create_role(o.access,
                             "{\"name\":\"Deployer\",\"description\":\"Ships things\","
                             "\"permissions\":[\"canManageServers\",\"canViewServers\","
                             "\"canManageServers\"]}",
                             rid, &r),
                 201);
    cr_assert_str_eq(jstr(r, "name"), "Deployer");
    cr_assert_str_eq(jstr(r, "description"), "Ships things");
    cr_assert(json_is_false(json_object_get(r, "isSystem")));
    cr_assert_eq(json_integer_value(json_object_get(r, "userCount")), 0);
    json_t *perms = json_object_get(r, "permissions");
    cr_assert_eq(json_array_size(perms), 2);
    cr_assert_str_eq(json_string_value(json_array_get(perms, 0)), "canViewServers");
    cr_assert_str_eq(json_string_value(json_array_get(perms, 1)), "canManageServers");
    json_decref(r);
    cr_assert_eq(audit_count(o.tenant_id, "role.create"), 1);

    /* without permissions: an empty set */
    char empty[37];
    cr_assert_eq(create_role(o.access, "{\"name\":\"Nothing\"}", empty, &r), 201);
    cr_assert_eq(json_array_size(json_object_get(r, "permissions")), 0);
    cr_assert(json_is_null(json_object_get(r, "description")));
    json_decref(r);

    cr_assert_eq(req("GET", "/api/v1/roles", o.access, NULL, &r), 200);
    char names[256];
    role_names(json_object_get(r, "data"), names, sizeof(names));
    cr_assert_str_eq(names, "owner,admin,member,viewer,Deployer,Nothing");
    json_decref(r);

    /* change: name and permissions; description stays */
    cr_assert_eq(on_role("PATCH", rid, o.access,
                         "{\"name\":\"Release manager\",\"permissions\":[\"canViewServers\"]}", &r),
                 200);
    cr_assert_str_eq(jstr(r, "name"), "Release manager");
    cr_assert_str_eq(jstr(r, "description"), "Ships things");
    cr_assert_eq(json_array_size(json_object_get(r, "permissions")), 1);
    json_decref(r);
    /* description null clears it; an empty body changes nothing */
    cr_assert_eq(on_role("PATCH", rid, o.access, "{\"description\":null}", &r), 200);
    cr_assert(json_is_null(json_object_get(r, "description")));
    cr_assert_str_eq(jstr(r, "name"), "Release manager");
    json_decref(r);
    cr_assert_eq(on_role("PATCH", rid, o.access, "{}", &r), 200);
    cr_assert_str_eq(jstr(r, "name"), "Release manager");
    json_decref(r);
    cr_assert_eq(audit_count(o.tenant_id, "role.update"), 2);
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM audit_logs WHERE resource_id = $1 AND "
                                  "action = 'role.update' AND resource_type = 'role'",
                                  rid),
                 2);

    /* delete: its assignments go with it */
    char uid[37];
    accounts_create_user(t.db, o.tenant_id, "member@example.com", NULL, "member", uid);
    cr_assert_eq(assign(o.access, uid, rid, NULL), 201);
    cr_assert_eq(on_role("GET", rid, o.access, NULL, &r), 200);
    cr_assert_eq(json_integer_value(json_object_get(r, "userCount")), 1);
    json_decref(r);
    cr_assert_eq(on_role("DELETE", rid, o.access, NULL, NULL), 204);
    cr_assert_eq(on_role("GET", rid, o.access, NULL, NULL), 404);
    cr_assert_eq(on_role("DELETE", rid, o.access, NULL, NULL), 404);
    cr_assert_eq(on_role("PATCH", rid, o.access, "{\"name\":\"x\"}", NULL), 404);
    cr_assert_eq(dbt_count_bypass(t.db, "SELECT count(*) FROM user_roles WHERE role_id = $1", rid),
                 0);
    cr_assert_eq(dbt_count_bypass(t.db, "SELECT count(*) FROM user_roles WHERE user_id = $1", uid),
                 1, "the user keeps their other roles");
    cr_assert_eq(audit_count(o.tenant_id, "role.delete"), 1);
    cr_assert_eq(
        dbt_count_bypass(t.db,
                         "SELECT count(*) FROM audit_logs WHERE action = 'role.delete' AND "
                         "actor_id = $1",
                         o.user_id),
        1);
}

Test(roles, validation_errors)
{
    struct account o;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    json_t *r;
    cr_assert_eq(create_role(o.access, "{}", NULL, &r), 400);
    cr_assert_str_eq(err_code(r), "VALIDATION_ERROR");
    json_decref(r);
    char body[256];
    snprintf(body, sizeof(body), "{\"name\":\"%051d\"}", 0);
    cr_assert_eq(create_role(o.access, body, NULL, NULL), 400, "51 characters");
    cr_assert_eq(create_role(o.access, "{\"name\":\"\"}", NULL, NULL), 400);
    cr_assert_eq(create_role(o.access, "{\"name\":\"x\",\"permissions\":\"canViewUsers\"}", NULL,
                             NULL),
                 400);
    cr_assert_eq(create_role(o.access, "{\"name\":\"x\",\"isSystem\":true}", NULL, NULL), 400,
                 "unknown keys are refused");
    /* unknown permission names: one issue each, naming it */
    cr_assert_eq(create_role(o.access,
                             "{\"name\":\"x\",\"permissions\":[\"canViewUsers\",\"canFly\","
                             "\"canTeleport\"]}",
                             NULL, &r),
                 400);
    cr_assert_str_eq(err_code(r), "VALIDATION_ERROR");
    json_t *issues = json_object_get(json_object_get(r, "details"), "issues");
    cr_assert_eq(json_array_size(issues), 2);
    cr_assert_str_eq(jstr(json_array_get(issues, 0), "path"), "permissions.1");
    cr_assert_not_null(strstr(jstr(json_array_get(issues, 0), "message"), "canFly"));
    cr_assert_str_eq(jstr(json_array_get(issues, 1), "path"), "permissions.2");
    json_decref(r);
    char rid[37];
    cr_assert_eq(create_role(o.access, "{\"name\":\"ok\"}", rid, NULL), 201);
    cr_assert_eq(on_role("PATCH", rid, o.access, "{\"permissions\":[\"canFly\"]}", NULL), 400);
    cr_assert_eq(on_role("PATCH", rid, o.access, "{\"name\":\"\"}", NULL), 400);
    cr_assert_eq(on_role("PATCH", "nope", o.access, "{\"name\":\"a\"}", NULL), 400);
    cr_assert_eq(assign(o.access, o.user_id, "not-a-uuid", NULL), 400);
    cr_assert_eq(audit_count(o.tenant_id, "role.create"), 1);
    cr_assert_eq(audit_count(o.tenant_id, "role.update"), 0);
}

Test(roles, duplicate_names_conflict)
{
    struct account o, other;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    accounts_signup(t.app, "other@example.com", "Other", &other);
    json_t *r;
    char a[37], b[37];
    cr_assert_eq(create_role(o.access, "{\"name\":\"Deployer\"}", a, NULL), 201);
    cr_assert_eq(create_role(o.access, "{\"name\":\"Deployer\"}", NULL, &r), 409);
    cr_assert_str_eq(err_code(r), "RESOURCE_CONFLICT");
    cr_assert_not_null(strstr(jstr(r, "message"), "Deployer"));
    json_decref(r);
    cr_assert_eq(create_role(o.access, "{\"name\":\"owner\"}", NULL, NULL), 409,
                 "a system role's name is taken too");
    cr_assert_eq(create_role(o.access, "{\"name\":\"Auditor\"}", b, NULL), 201);
    cr_assert_eq(on_role("PATCH", b, o.access, "{\"name\":\"Deployer\"}", &r), 409);
    cr_assert_str_eq(err_code(r), "RESOURCE_CONFLICT");
    json_decref(r);
    cr_assert_eq(on_role("PATCH", b, o.access, "{\"name\":\"Auditor\"}", NULL), 200,
                 "keeping its own name is no conflict");
    /* names are per tenant */
    cr_assert_eq(create_role(other.access, "{\"name\":\"Deployer\"}", NULL, NULL), 201);
    cr_assert_eq(audit_count(o.tenant_id, "role.create"), 2);
}

Test(roles, system_roles_cannot_be_changed_or_deleted)
{
    struct account o;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    static const char *const system[] = {"owner", "admin", "member", "viewer"};
    for (size_t i = 0; i < ARRAY_LEN(system); i++) {
        char rid[37];
        role_id(o.tenant_id, system[i], rid);
        json_t *r;
        cr_assert_eq(on_role("PATCH", rid, o.access, "{\"name\":\"renamed\"}", &r), 403);
        cr_assert_str_eq(err_code(r), "AUTH_FORBIDDEN");
        cr_assert_str_eq(err_reason(r), "system_role");
        json_decref(r);
        cr_assert_eq(on_role("PATCH", rid, o.access, "{\"permissions\":[]}", NULL), 403);
        cr_assert_eq(on_role("DELETE", rid, o.access, NULL, &r), 403);
        cr_assert_str_eq(err_reason(r), "system_role");
        json_decref(r);
    }
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM roles WHERE tenant_id = $1 AND is_system",
                                  o.tenant_id),
                 4);
    cr_assert_eq(
        dbt_count_bypass(t.db, "SELECT count(*) FROM user_roles WHERE user_id = $1", o.user_id), 1);
    cr_assert_eq(audit_count(o.tenant_id, "role.update"), 0);
    cr_assert_eq(audit_count(o.tenant_id, "role.delete"), 0);
}

/* ---- permissions -------------------------------------------------------------------------- */

Test(roles, viewers_read_and_others_are_refused)
{
    struct account o, viewer, nobody;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    accounts_user_with_role(&t, &o, "viewer@example.com", "viewer", &viewer);
    accounts_user_with_role(&t, &o, "nobody@example.com", NULL, &nobody);
    char rid[37], member[37];
    cr_assert_eq(create_role(o.access, "{\"name\":\"Custom\"}", rid, NULL), 201);
    role_id(o.tenant_id, "member", member);

    /* a viewer reads roles but changes nothing */
    cr_assert_eq(req("GET", "/api/v1/roles", viewer.access, NULL, NULL), 200);
    cr_assert_eq(on_role("GET", rid, viewer.access, NULL, NULL), 200);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/users/%s/roles", o.user_id);
    cr_assert_eq(req("GET", path, viewer.access, NULL, NULL), 200);
    json_t *r;
    cr_assert_eq(create_role(viewer.access, "{\"name\":\"Mine\"}", NULL, &r), 403);
    cr_assert_str_eq(err_code(r), "AUTH_FORBIDDEN");
    json_decref(r);
    cr_assert_eq(on_role("PATCH", rid, viewer.access, "{\"name\":\"x\"}", NULL), 403);
    cr_assert_eq(on_role("DELETE", rid, viewer.access, NULL, NULL), 403);
    cr_assert_eq(assign(viewer.access, viewer.user_id, member, NULL), 403);
    cr_assert_eq(unassign(viewer.access, o.user_id, member, NULL), 403);

    /* a user with no roles reads nothing */
    cr_assert_eq(req("GET", "/api/v1/roles", nobody.access, NULL, &r), 403);
    cr_assert_str_eq(jstr(r, "message"), "Insufficient permissions");
    json_decref(r);
    cr_assert_eq(on_role("GET", rid, nobody.access, NULL, NULL), 403);
    cr_assert_eq(req("GET", path, nobody.access, NULL, NULL), 403);
    cr_assert_eq(create_role(nobody.access, "{\"name\":\"Mine\"}", NULL, NULL), 403);
    cr_assert_eq(assign(nobody.access, nobody.user_id, member, NULL), 403);

    cr_assert_eq(audit_count(o.tenant_id, "role.assign"), 0);
    cr_assert_eq(
        dbt_count_bypass(t.db, "SELECT count(*) FROM roles WHERE tenant_id = $1", o.tenant_id), 5);
}

Test(roles, no_privilege_escalation)
{
    struct account o, admin;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    accounts_user_with_role(&t, &o, "admin@example.com", "admin", &admin);
    char owner_role[37];
    role_id(o.tenant_id, "owner", owner_role);
    json_t *r;
    /* an admin lacks billing and tenant permissions: they cannot hand them out */
    cr_assert_eq(create_role(admin.access,
                             "{\"name\":\"Biller\",\"permissions\":[\"canViewUsers\","
                             "\"canManageBilling\"]}",
                             NULL, &r),
                 403);
    cr_assert_str_eq(err_reason(r), "privilege_escalation");
    json_t *missing = json_object_get(json_object_get(r, "details"), "permissions");
    cr_assert_eq(json_array_size(missing), 1);
    cr_assert_str_eq(json_string_value(json_array_get(missing, 0)), "canManageBilling");
    json_decref(r);
    cr_assert_eq(assign(admin.access, admin.user_id, owner_role, &r), 403,
                 "an admin cannot make themselves owner");
    cr_assert_str_eq(err_reason(r), "privilege_escalation");
    json_decref(r);
    cr_assert_eq(unassign(admin.access, o.user_id, owner_role, NULL), 403,
                 "nor take the owner role away");
    /* within their own permissions they manage roles freely */
    char rid[37];
    cr_assert_eq(create_role(admin.access,
                             "{\"name\":\"Ops\",\"permissions\":[\"canManageServers\"]}", rid,
                             NULL),
                 201);
    cr_assert_eq(on_role("PATCH", rid, admin.access, "{\"permissions\":[\"canManageTenant\"]}",
                         NULL),
                 403);
    /* a role holding more than the admin is out of their reach, even to change or delete */
    char biller[37];
    cr_assert_eq(create_role(o.access,
                             "{\"name\":\"Biller\",\"permissions\":[\"canManageBilling\"]}",
                             biller, NULL),
                 201);
    cr_assert_eq(on_role("PATCH", biller, admin.access, "{\"permissions\":[]}", NULL), 403);
    cr_assert_eq(on_role("DELETE", biller, admin.access, NULL, NULL), 403);
    cr_assert_eq(on_role("DELETE", rid, admin.access, NULL, NULL), 204);
    /* global admins hold every permission */
    dbt_exec_bypass(t.db, "UPDATE users SET is_global_admin = true WHERE id = $1", admin.user_id);
    cr_assert_eq(on_role("DELETE", biller, admin.access, NULL, NULL), 204);
}

/* ---- assignments -------------------------------------------------------------------------- */

Test(roles, assign_and_unassign)
{
    struct account o, u;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    accounts_user_with_role(&t, &o, "user@example.com", NULL, &u);
    char viewer[37], custom[37];
    role_id(o.tenant_id, "viewer", viewer);
    cr_assert_eq(create_role(o.access, "{\"name\":\"Ops\",\"permissions\":[\"canViewServers\"]}",
                             custom, NULL),
                 201);
    cr_assert_eq(req("GET", "/api/v1/roles", u.access, NULL, NULL), 403);

    json_t *r;
    cr_assert_eq(assign(o.access, u.user_id, viewer, &r), 201);
    char names[256];
    role_names(json_object_get(r, "data"), names, sizeof(names));
    cr_assert_str_eq(names, "viewer");
    json_decref(r);
    /* permissions apply at once */
    cr_assert_eq(req("GET", "/api/v1/roles", u.access, NULL, NULL), 200);
    cr_assert_eq(assign(o.access, u.user_id, viewer, &r), 409);
    cr_assert_str_eq(err_code(r), "RESOURCE_CONFLICT");
    json_decref(r);
    /* upper-case ids name the same rows */
    char upper[37];
    for (size_t i = 0; i < 37; i++)
        upper[i] = (char)((custom[i] >= 'a' && custom[i] <= 'f') ? custom[i] - 32 : custom[i]);
    cr_assert_eq(assign(o.access, u.user_id, upper, &r), 201);
    role_names(json_object_get(r, "data"), names, sizeof(names));
    cr_assert_str_eq(names, "viewer,Ops");
    json_decref(r);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/users/%s/roles", u.user_id);
    cr_assert_eq(req("GET", path, o.access, NULL, &r), 200);
    cr_assert_eq(json_array_size(json_object_get(r, "data")), 2);
    json_decref(r);
    cr_assert_eq(on_role("GET", viewer, o.access, NULL, &r), 200);
    cr_assert_eq(json_integer_value(json_object_get(r, "userCount")), 1);
    json_decref(r);
    cr_assert_eq(audit_count(o.tenant_id, "role.assign"), 2);
    cr_assert_eq(
        dbt_count_bypass(t.db,
                         "SELECT count(*) FROM audit_logs WHERE action = 'role.assign' AND "
                         "resource_type = 'user' AND resource_id = $1",
                         u.user_id),
        2);

    cr_assert_eq(unassign(o.access, u.user_id, viewer, NULL), 204);
    cr_assert_eq(unassign(o.access, u.user_id, viewer, &r), 404, "no longer has it");
    cr_assert_str_eq(err_code(r), "RESOURCE_NOT_FOUND");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/roles", u.access, NULL, NULL), 403);
    cr_assert_eq(audit_count(o.tenant_id, "role.unassign"), 1);
    /* an unknown user or role */
    cr_assert_eq(assign(o.access, "00000000-0000-4000-8000-000000000000", viewer, NULL), 404);
    cr_assert_eq(assign(o.access, u.user_id, "00000000-0000-4000-8000-000000000000", NULL), 404);
    /* a soft-deleted user is gone */
    dbt_exec_bypass(t.db, "UPDATE users SET deleted_at = '2026-01-01T00:00:00.000Z' WHERE id = $1",
                    u.user_id);
    cr_assert_eq(assign(o.access, u.user_id, viewer, NULL), 404);
    cr_assert_eq(req("GET", path, o.access, NULL, NULL), 404);
}

Test(roles, last_owner_keeps_the_owner_role)
{
    struct account o;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    char owner_role[37], second[37];
    role_id(o.tenant_id, "owner", owner_role);
    json_t *r;
    cr_assert_eq(unassign(o.access, o.user_id, owner_role, &r), 409);
    cr_assert_str_eq(err_code(r), "RESOURCE_CONFLICT");
    cr_assert_str_eq(err_reason(r), "last_owner");
    cr_assert_not_null(strstr(jstr(r, "message"), "last"));
    json_decref(r);
    cr_assert_eq(
        dbt_count_bypass(t.db, "SELECT count(*) FROM user_roles WHERE user_id = $1", o.user_id), 1,
        "rolled back");

    /* a suspended second owner does not count */
    accounts_create_user(t.db, o.tenant_id, "second@example.com", NULL, NULL, second);
    cr_assert_eq(assign(o.access, second, owner_role, NULL), 201);
    dbt_exec_bypass(t.db, "UPDATE users SET status = 'suspended' WHERE id = $1", second);
    cr_assert_eq(unassign(o.access, o.user_id, owner_role, NULL), 409);
    dbt_exec_bypass(t.db, "UPDATE users SET status = 'active' WHERE id = $1", second);

    /* with another active owner, the first may step down; the second is then the last */
    cr_assert_eq(unassign(o.access, o.user_id, owner_role, NULL), 204);
    cr_assert_eq(audit_count(o.tenant_id, "role.unassign"), 1);
    struct account s;
    cr_assert_eq(accounts_login(t.app, "second@example.com", NULL, &s), 200);
    cr_assert_eq(unassign(s.access, second, owner_role, &r), 409);
    cr_assert_str_eq(err_reason(r), "last_owner");
    json_decref(r);
    cr_assert_eq(audit_count(o.tenant_id, "role.unassign"), 1);
}

/* ---- tenants are walled off --------------------------------------------------------------- */

Test(roles, other_tenants_ids_are_404)
{
    struct account o, x;
    accounts_signup(t.app, "owner@example.com", "Acme", &o);
    accounts_signup(t.app, "stranger@example.com", "Other", &x);
    char mine[37], theirs[37], their_viewer[37], my_viewer[37];
    cr_assert_eq(create_role(o.access, "{\"name\":\"Mine\"}", mine, NULL), 201);
    cr_assert_eq(create_role(x.access, "{\"name\":\"Theirs\"}", theirs, NULL), 201);
    role_id(x.tenant_id, "viewer", their_viewer);
    role_id(o.tenant_id, "viewer", my_viewer);
    json_t *r;
    /* their roles */
    cr_assert_eq(on_role("GET", theirs, o.access, NULL, &r), 404);
    cr_assert_str_eq(err_code(r), "RESOURCE_NOT_FOUND");
    json_decref(r);
    cr_assert_eq(on_role("PATCH", theirs, o.access, "{\"name\":\"Hijacked\"}", NULL), 404);
    cr_assert_eq(on_role("DELETE", theirs, o.access, NULL, NULL), 404);
    cr_assert_eq(on_role("PATCH", their_viewer, o.access, "{\"name\":\"x\"}", NULL), 404,
                 "404 before the system-role 403");
    cr_assert_eq(assign(o.access, o.user_id, their_viewer, NULL), 404);
    cr_assert_eq(assign(o.access, o.user_id, theirs, NULL), 404);
    /* their users */
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/users/%s/roles", x.user_id);
    cr_assert_eq(req("GET", path, o.access, NULL, NULL), 404);
    cr_assert_eq(assign(o.access, x.user_id, my_viewer, NULL), 404);
    cr_assert_eq(unassign(o.access, x.user_id, their_viewer, NULL), 404);
    char their_owner[37];
    role_id(x.tenant_id, "owner", their_owner);
    cr_assert_eq(unassign(o.access, x.user_id, their_owner, NULL), 404);
    /* the list shows only the tenant's own */
    cr_assert_eq(req("GET", "/api/v1/roles", o.access, NULL, &r), 200);
    char names[256];
    role_names(json_object_get(r, "data"), names, sizeof(names));
    cr_assert_str_eq(names, "owner,admin,member,viewer,Mine");
    json_decref(r);
    /* nothing of theirs changed, and nothing was audited in their tenant by us */
    cr_assert_eq(dbt_count_bypass(
                     t.db, "SELECT count(*) FROM roles WHERE name = 'Theirs' AND tenant_id = $1",
                     x.tenant_id),
                 1);
    cr_assert_eq(
        dbt_count_bypass(t.db, "SELECT count(*) FROM user_roles WHERE tenant_id = $1", x.tenant_id),
        1);
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM audit_logs WHERE tenant_id = $1 AND action "
                                  "LIKE 'role.%'",
                                  x.tenant_id),
                 1, "only their own role.create");
}
