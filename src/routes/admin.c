/* admin.c — see admin.h. */
#include "lib/common.h"

#include "http/app.h"
#include "http/pagination.h"
#include "lib/jsonx.h"
#include "repos/admin.h"
#include "repos/audit.h"
#include "services/audit.h"
#include "routes/admin.h"
#include "routes/schemas.h"

/* ---- schemas ------------------------------------------------------------------------------ */

static const struct schema admin_tenant_s = {
    .type = SCHEMA_OBJECT,
    .ref = "AdminTenant",
    .props = (const struct schema_prop[]){
        {"id", &schemas_uuid, true},
        {"slug", &schemas_str, true},
        {"name", &schemas_str, true},
        {"plan", &schemas_str, true},
        {"settings", &schemas_any_object, true},
        {"status", &schemas_active_suspended, true},
        {"createdAt", &schemas_datetime, true},
        {"updatedAt", &schemas_datetime, true},
        {"userCount",
         &(const struct schema){.type = SCHEMA_INTEGER,
                                .description = "Users of the tenant (not deleted)"},
         true},
        {NULL}}};

static const struct schema admin_user_s = {
    .type = SCHEMA_OBJECT,
    .ref = "AdminUser",
    .props = (const struct schema_prop[]){SCHEMAS_USER_PROPS,
                                          {"isGlobalAdmin", &schemas_bool, true},
                                          {"tenantSlug", &schemas_str, true},
                                          {"tenantName", &schemas_str, true},
                                          {NULL}}};

static const struct schema tenant_list_s = {
    .type = SCHEMA_OBJECT,
    .ref = "AdminTenantList",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &admin_tenant_s}, true},
        {"pagination", &pagination_schema, true},
        {NULL}}};

static const struct schema user_list_s = {
    .type = SCHEMA_OBJECT,
    .ref = "AdminUserList",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &admin_user_s}, true},
        {"pagination", &pagination_schema, true},
        {NULL}}};

static const struct schema search_s = {
    .type = SCHEMA_STRING, .has_max = true, .max = 100, .example = "\"acme\""};

static const struct schema tenants_query_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"search", &search_s, false},
                                          {"status", &schemas_active_suspended, false},
                                          {"page", &pagination_page_schema, false},
                                          {"limit", &pagination_limit_schema, false},
                                          {NULL}}};

static const struct schema users_query_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"search", &search_s, false},
        {"tenantId",
         &(const struct schema){.type = SCHEMA_STRING,
                                .format = SCHEMA_FMT_UUID,
                                .description = "Only users of this tenant"},
         false},
        {"status",
         &(const struct schema){.type = SCHEMA_STRING,
                                .enum_values =
                                    (const char *const[]){"active", "pending", "suspended", NULL}},
         false},
        {"page", &pagination_page_schema, false},
        {"limit", &pagination_limit_schema, false},
        {NULL}}};

/* ---- helpers ------------------------------------------------------------------------------ */

/*
 * The request's connection with the explicit row-level-security bypass on: every admin query
 * spans tenants. The route permission already refused anyone but a global admin; this checks
 * again, so nothing but the is_global_admin flag can ever reach cross-tenant data. NULL after
 * ctx_fail.
 */
static struct db_conn *admin_db(struct ctx *c)
{
    if (!c->user || !c->user->is_global_admin) {
        ctx_fail(c, ZY_E_FORBIDDEN, "Insufficient permissions");
        return NULL;
    }
    struct db_conn *db = ctx_db(c);
    if (db && db_set_rls_bypass(db, true) < 0) {
        ctx_fail_db(c, db, NULL);
        return NULL;
    }
    return db;
}

/* ---- tenants ------------------------------------------------------------------------------ */

static int list_tenants(struct ctx *c)
{
    struct db_conn *db = admin_db(c);
    if (!db)
        return -1;
    struct page pg;
    pagination_from_query(c, &pg);
    long long total;
    bool failed;
    json_t *data =
        admin_tenants_list(db, jx_get_str(c->query, "search"), jx_get_str(c->query, "status"),
                           pg.limit, pg.offset, &total, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, pagination_envelope(data, &pg, total));
    return 0;
}

static int get_tenant(struct ctx *c)
{
    struct db_conn *db = admin_db(c);
    if (!db)
        return -1;
    const char *id = json_string_value(json_object_get(c->path_params, "id"));
    bool failed;
    json_t *t = admin_tenant_find(db, id, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    if (!t)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Tenant with ID %s not found", id);
    ctx_json(c, 200, t);
    return 0;
}

/* Moves the tenant to status `to` and audits it, in one transaction. Refused tenants' users
 * are then turned away by the auth phase on their next request ("Tenant is suspended"). */
static int change_status_tx(struct ctx *c, struct db_conn *db, const char *to, const char *action)
{
    const char *id = json_string_value(json_object_get(c->path_params, "id"));
    bool failed;
    json_t *t = admin_tenant_find(db, id, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    if (!t)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Tenant with ID %s not found", id);
    char tid[37], prev[16], now[48];
    snprintf(tid, sizeof(tid), "%s", json_string_value(json_object_get(t, "id")));
    snprintf(prev, sizeof(prev), "%s", json_string_value(json_object_get(t, "status")));
    json_decref(t);
    zy_iso_now(now);
    int rc = admin_tenant_set_status(db, tid, to, now);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    if (rc == 0) /* already there (or a concurrent request just moved it) */
        return ctx_fail(c, ZY_E_CONFLICT, "Tenant is already %s", to);
    json_t *meta = json_pack("{s:s, s:s}", "previousStatus", prev, "status", to);
    struct audit_entry e = {
        .tenant_id = tid,
        .actor_id = c->user->id,
        .action = action,
        .resource_type = "tenant",
        .resource_id = tid,
        .metadata = meta,
    };
    rc = audit_request(c, db, &e);
    json_decref(meta);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    t = admin_tenant_find(db, tid, &failed);
    if (!t)
        return failed ? ctx_fail_db(c, db, NULL)
                      : ctx_fail(c, ZY_E_NOT_FOUND, "Tenant with ID %s not found", id);
    ctx_json(c, 200, t);
    return 0;
}

static int change_status(struct ctx *c, const char *to, const char *action)
{
    struct db_conn *db = admin_db(c);
    if (!db)
        return -1;
    if (db_begin(db) < 0)
        return ctx_fail_db(c, db, NULL);
    if (change_status_tx(c, db, to, action) < 0) {
        db_rollback(db);
        return -1;
    }
    if (db_commit(db) < 0)
        return ctx_fail_db(c, db, NULL);
    return 0;
}

static int suspend_tenant(struct ctx *c)
{
    return change_status(c, "suspended", "admin.tenant_suspend");
}

static int reactivate_tenant(struct ctx *c)
{
    return change_status(c, "active", "admin.tenant_reactivate");
}

/* ---- users -------------------------------------------------------------------------------- */

static int list_users(struct ctx *c)
{
    struct db_conn *db = admin_db(c);
    if (!db)
        return -1;
    struct page pg;
    pagination_from_query(c, &pg);
    long long total;
    bool failed;
    json_t *data =
        admin_users_list(db, jx_get_str(c->query, "search"), jx_get_str(c->query, "tenantId"),
                         jx_get_str(c->query, "status"), pg.limit, pg.offset, &total, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, pagination_envelope(data, &pg, total));
    return 0;
}

/* ---- table -------------------------------------------------------------------------------- */

static const struct route routes[] = {
    {.method = HTTP_GET,
     .path = "/admin/tenants",
     .handler = list_tenants,
     .tag = "Admin",
     .summary = "List tenants",
     .description = "Every tenant, newest first; search matches name or slug. Global admins "
                    "only.",
     .operation_id = "adminListTenants",
     .query = &tenants_query_s,
     .auth = ROUTE_AUTH,
     .permission = ADMIN_PERMISSION,
     .responses = (const struct route_response[]){{200, "Tenants", &tenant_list_s}, {0}}},
    {.method = HTTP_GET,
     .path = "/admin/tenants/:id",
     .handler = get_tenant,
     .tag = "Admin",
     .summary = "Get a tenant",
     .description = "Global admins only.",
     .operation_id = "adminGetTenant",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = ADMIN_PERMISSION,
     .responses = (const struct route_response[]){{200, "The tenant", &admin_tenant_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/admin/tenants/:id/suspend",
     .handler = suspend_tenant,
     .tag = "Admin",
     .summary = "Suspend a tenant",
     .description = "Its users are refused (403 \"Tenant is suspended\") from their next "
                    "request and cannot sign in until it is reactivated. Audited as "
                    "admin.tenant_suspend. Global admins only.",
     .operation_id = "adminSuspendTenant",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = ADMIN_PERMISSION,
     .responses = (const struct route_response[]){{200, "The suspended tenant", &admin_tenant_s},
                                                  {409, "The tenant is already suspended", NULL},
                                                  {0}}},
    {.method = HTTP_POST,
     .path = "/admin/tenants/:id/reactivate",
     .handler = reactivate_tenant,
     .tag = "Admin",
     .summary = "Reactivate a tenant",
     .description = "Lifts a suspension. Audited as admin.tenant_reactivate. Global admins only.",
     .operation_id = "adminReactivateTenant",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = ADMIN_PERMISSION,
     .responses = (const struct route_response[]){{200, "The active tenant", &admin_tenant_s},
                                                  {409, "The tenant is already active", NULL},
                                                  {0}}},
    {.method = HTTP_GET,
     .path = "/admin/users",
     .handler = list_users,
     .tag = "Admin",
     .summary = "List users across tenants",
     .description = "Users of every tenant, newest first; search matches email, first and last "
                    "name. Global admins only.",
     .operation_id = "adminListUsers",
     .query = &users_query_s,
     .auth = ROUTE_AUTH,
     .permission = ADMIN_PERMISSION,
     .responses = (const struct route_response[]){{200, "Users", &user_list_s}, {0}}},
};

const struct route_group admin_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "Installation-wide administration, for global admins only.",
};
