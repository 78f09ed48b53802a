/* roles.c — see roles.h. */
#include "lib/common.h"

#include "http/app.h"
#include "http/pagination.h"
#include "lib/jsonx.h"
#include "lib/uuid.h"
#include "middleware/auth.h"
#include "repos/audit.h"
#include "services/audit.h"
#include "repos/roles.h"
#include "repos/users.h"
#include "routes/roles.h"
#include "routes/schemas.h"
#include "services/permissions.h"

/* ---- schemas ------------------------------------------------------------------------------ */

static const struct schema permission_name_s = {
    .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 100};

static const struct schema permission_names_s = {
    .type = SCHEMA_ARRAY,
    .description = "Permission names from GET /api/v1/permissions",
    .example = "[\"canViewUsers\", \"canViewServers\"]",
    .items = &permission_name_s,
    .has_max = true,
    .max = 100,
};

static const struct schema role_s = {
    .type = SCHEMA_OBJECT,
    .ref = "Role",
    .props = (const struct schema_prop[]){
        {"id", &schemas_uuid, true},
        {"name", &schemas_str, true},
        {"description", &schemas_nullable_str, true},
        {"permissions", &(const struct schema){.type = SCHEMA_ARRAY, .items = &schemas_str}, true},
        {"isSystem",
         &(const struct schema){.type = SCHEMA_BOOLEAN,
                                .description = "Seeded with the tenant; read-only"},
         true},
        {"userCount",
         &(const struct schema){.type = SCHEMA_INTEGER, .description = "Users holding the role"},
         false},
        {"createdAt", &schemas_datetime, true},
        {"updatedAt", &schemas_datetime, true},
        {NULL}}};

/* The same component as users.c's. */
static const struct schema role_list_s = {
    .type = SCHEMA_OBJECT,
    .ref = "RoleList",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &role_s}, true},
        {"pagination", &pagination_schema, true},
        {NULL}}};

static const struct schema user_roles_s = {
    .type = SCHEMA_OBJECT,
    .ref = "UserRoles",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &role_s}, true}, {NULL}}};

static const struct schema role_name_s = {.type = SCHEMA_STRING,
                                          .has_min = true,
                                          .min = 1,
                                          .has_max = true,
                                          .max = 50,
                                          .example = "\"Deployer\""};
static const struct schema role_description_s = {
    .type = SCHEMA_STRING, .nullable = true, .has_max = true, .max = 500};

static const struct schema create_role_s = {
    .type = SCHEMA_OBJECT,
    .ref = "CreateRoleRequest",
    .props = (const struct schema_prop[]){
        {"name", &role_name_s, true},
        {"description", &role_description_s, false},
        {"permissions",
         &(const struct schema){.type = SCHEMA_ARRAY,
                                .description = "Permission names from GET /api/v1/permissions",
                                .example = "[\"canViewUsers\", \"canViewServers\"]",
                                .items = &permission_name_s,
                                .has_max = true,
                                .max = 100,
                                .default_json = "[]"},
         false},
        {NULL}}};

static const struct schema update_role_s = {
    .type = SCHEMA_OBJECT,
    .ref = "UpdateRoleRequest",
    .description = "Fields to change; permissions replaces the whole set.",
    .props = (const struct schema_prop[]){{"name", &role_name_s, false},
                                          {"description", &role_description_s, false},
                                          {"permissions", &permission_names_s, false},
                                          {NULL}}};

static const struct schema assign_role_s = {
    .type = SCHEMA_OBJECT,
    .ref = "AssignRoleRequest",
    .props = (const struct schema_prop[]){{"roleId", &schemas_uuid, true}, {NULL}}};

static const struct schema user_role_params_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"id", &schemas_uuid, true}, {"roleId", &schemas_uuid, true}, {NULL}}};

/* ---- helpers ------------------------------------------------------------------------------ */

static int audit(struct ctx *c, struct db_conn *db, const char *action, const char *type,
                 const char *id, json_t *meta)
{
    struct audit_entry e = {
        .tenant_id = c->tenant_id,
        .actor_id = c->user->id,
        .action = action,
        .resource_type = type,
        .resource_id = id,
        .metadata = meta,
    };
    int rc = audit_request(c, db, &e);
    json_decref(meta);
    return rc < 0 ? ctx_fail_db(c, db, NULL) : 0;
}

/*
 * The permission names of `given` (a validated array of strings) in catalogue order without
 * duplicates (new reference), or NULL after a 400 VALIDATION_ERROR with one issue per unknown
 * name.
 */
static json_t *known_permissions(struct ctx *c, json_t *given)
{
    json_t *issues = json_array();
    size_t i;
    json_t *v;
    json_array_foreach (given, i, v) {
        const char *name = json_string_value(v);
        if (!permission_known(name))
            json_array_append_new(issues, json_pack("{s:o, s:o, s:s}", "path",
                                                    json_sprintf("permissions.%zu", i), "message",
                                                    json_sprintf("Unknown permission: %s", name),
                                                    "code", "custom"));
    }
    if (json_array_size(issues)) {
        ctx_fail_details(c, ZY_E_VALIDATION, 400, json_pack("{s:o}", "issues", issues),
                         "Request validation failed");
        return NULL;
    }
    json_decref(issues);
    size_t n;
    const struct permission *all = permissions_all(&n);
    json_t *out = json_array();
    for (size_t k = 0; k < n; k++)
        json_array_foreach (given, i, v) {
            if (strcmp(json_string_value(v), all[k].name) == 0) {
                json_array_append_new(out, json_string(all[k].name));
                break;
            }
        }
    return out;
}

/* Nobody hands out or takes away more than they hold: 403 unless the caller holds every
 * permission of `perms` (global admins hold them all). */
static int check_escalation(struct ctx *c, json_t *perms)
{
    json_t *missing = json_array();
    size_t i;
    json_t *v;
    json_array_foreach (perms, i, v) {
        if (json_is_string(v) && !auth_has_permission(c, json_string_value(v)))
            json_array_append(missing, v);
    }
    if (!json_array_size(missing)) {
        json_decref(missing);
        return 0;
    }
    return ctx_fail_details(
        c, ZY_E_FORBIDDEN, 403,
        json_pack("{s:s, s:o}", "reason", "privilege_escalation", "permissions", missing),
        "Cannot grant or revoke permissions you do not hold");
}

static int refuse_system_role(struct ctx *c, const char *msg)
{
    return ctx_fail_details(c, ZY_E_FORBIDDEN, 403, json_pack("{s:s}", "reason", "system_role"),
                            msg);
}

static bool is_system(json_t *role)
{
    return json_is_true(json_object_get(role, "isSystem"));
}

/* The role with this id in the caller's tenant, locked until the transaction ends (kept by
 * the request); NULL after a 404 or a database error. */
static json_t *load_role(struct ctx *c, struct db_conn *db, const char *id)
{
    bool failed = false;
    json_t *role = NULL;
    if (roles_lock(db, c->tenant_id, id) == 0)
        role = roles_find_by_id(db, c->tenant_id, id, &failed);
    else
        failed = true;
    if (failed) {
        ctx_fail_db(c, db, NULL);
        return NULL;
    }
    if (!role) { /* another tenant's role is as absent as a missing one: 404, never 403 */
        ctx_fail(c, ZY_E_NOT_FOUND, "Role with ID %s not found", id);
        return NULL;
    }
    return ctx_keep(c, role);
}

/* 0 when the user exists in the caller's tenant, else -1 after a 404 or a database error. */
static int check_user(struct ctx *c, struct db_conn *db, const char *id)
{
    bool failed;
    json_t *u = users_find_by_id(db, c->tenant_id, id, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    if (!u)
        return ctx_fail(c, ZY_E_NOT_FOUND, "User with ID %s not found", id);
    json_decref(u);
    return 0;
}

static int send_user_roles(struct ctx *c, struct db_conn *db, int status, const char *user_id)
{
    bool failed;
    json_t *a = roles_of_user(db, c->tenant_id, user_id, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, status, json_pack("{s:o}", "data", a));
    return 0;
}

/* ---- reading ------------------------------------------------------------------------------ */

static int list_roles(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    struct page pg;
    pagination_from_query(c, &pg);
    long long total;
    bool failed;
    json_t *data = roles_list(db, c->tenant_id, pg.limit, pg.offset, &total, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, pagination_envelope(data, &pg, total));
    return 0;
}

static int get_role(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    const char *id = jx_get_str(c->path_params, "id");
    bool failed;
    json_t *role = roles_find_by_id(db, c->tenant_id, id, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    if (!role)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Role with ID %s not found", id);
    ctx_json(c, 200, role);
    return 0;
}

static int list_user_roles(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    const char *uid = jx_get_str(c->path_params, "id");
    if (check_user(c, db, uid) < 0)
        return -1;
    return send_user_roles(c, db, 200, uid);
}

/* ---- changing roles ----------------------------------------------------------------------- */

static int create_role_tx(struct ctx *c, struct db_conn *db)
{
    const char *name = jx_get_str(c->body, "name");
    json_t *perms = known_permissions(c, json_object_get(c->body, "permissions"));
    if (!perms)
        return -1;
    ctx_keep(c, perms);
    if (check_escalation(c, perms) < 0)
        return -1;
    char id[37];
    uuid_v7(id);
    char *pj = jx_dump(perms, NULL);
    int rc = roles_create(db, c->tenant_id, id, name, jx_get_str(c->body, "description"), pj);
    free(pj);
    if (rc < 0)
        return ctx_fail_db(c, db, arena_printf(c->arena, "A role named '%s' already exists", name));
    if (audit(c, db, "role.create", "role", id,
              json_pack("{s:s, s:O}", "name", name, "permissions", perms)) < 0)
        return -1;
    bool failed;
    json_t *role = roles_find_by_id(db, c->tenant_id, id, &failed);
    if (!role)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 201, role);
    return 0;
}

static int update_role_tx(struct ctx *c, struct db_conn *db)
{
    const char *id = jx_get_str(c->path_params, "id");
    json_t *role = load_role(c, db, id);
    if (!role)
        return -1;
    if (is_system(role))
        return refuse_system_role(c, "System roles cannot be changed");
    json_t *old_perms = json_object_get(role, "permissions");
    if (check_escalation(c, old_perms) < 0)
        return -1;
    json_t *b = c->body;
    if (json_object_size(b) == 0) { /* nothing to change */
        ctx_json(c, 200, json_incref(role));
        return 0;
    }
    json_t *perms = old_perms;
    if (json_object_get(b, "permissions")) {
        perms = known_permissions(c, json_object_get(b, "permissions"));
        if (!perms)
            return -1;
        ctx_keep(c, perms);
        if (check_escalation(c, perms) < 0)
            return -1;
    }
    const char *name =
        json_object_get(b, "name") ? jx_get_str(b, "name") : jx_get_str(role, "name");
    /* description: absent keeps it, null clears it */
    const char *desc = json_object_get(b, "description") ? jx_get_str(b, "description")
                                                         : jx_get_str(role, "description");
    char now[48];
    zy_iso_now(now);
    char *pj = jx_dump(perms, NULL);
    int rc = roles_update(db, c->tenant_id, id, name, desc, pj, now);
    free(pj);
    if (rc < 0)
        return ctx_fail_db(c, db, arena_printf(c->arena, "A role named '%s' already exists", name));
    if (rc == 0)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Role with ID %s not found", id);
    json_t *changed = json_array();
    const char *key;
    json_t *v;
    json_object_foreach (b, key, v) {
        json_array_append_new(changed, json_string(key));
    }
    json_t *meta = json_pack("{s:s, s:o}", "name", name, "changed", changed);
    if (perms != old_perms) {
        json_object_set(meta, "permissions", perms);
        json_object_set(meta, "previousPermissions", old_perms);
    }
    if (strcmp(name, jx_get_str(role, "name")) != 0)
        json_object_set(meta, "previousName", json_object_get(role, "name"));
    if (audit(c, db, "role.update", "role", jx_get_str(role, "id"), meta) < 0)
        return -1;
    bool failed;
    json_t *updated = roles_find_by_id(db, c->tenant_id, id, &failed);
    if (!updated)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, updated);
    return 0;
}

static int delete_role_tx(struct ctx *c, struct db_conn *db)
{
    const char *id = jx_get_str(c->path_params, "id");
    json_t *role = load_role(c, db, id);
    if (!role)
        return -1;
    if (is_system(role))
        return refuse_system_role(c, "System roles cannot be deleted");
    if (check_escalation(c, json_object_get(role, "permissions")) < 0)
        return -1;
    long long unassigned;
    int rc = roles_delete(db, c->tenant_id, id, &unassigned);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    if (rc == 0)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Role with ID %s not found", id);
    if (audit(c, db, "role.delete", "role", jx_get_str(role, "id"),
              json_pack("{s:s, s:I}", "name", jx_get_str(role, "name"), "unassignedUsers",
                        (json_int_t)unassigned)) < 0)
        return -1;
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

/* ---- assignments -------------------------------------------------------------------------- */

static int assign_role_tx(struct ctx *c, struct db_conn *db)
{
    const char *uid = jx_get_str(c->path_params, "id");
    if (check_user(c, db, uid) < 0)
        return -1;
    json_t *role = load_role(c, db, jx_get_str(c->body, "roleId"));
    if (!role)
        return -1;
    if (check_escalation(c, json_object_get(role, "permissions")) < 0)
        return -1;
    const char *rid = jx_get_str(role, "id"), *rname = jx_get_str(role, "name");
    int rc = roles_assign(db, c->tenant_id, uid, rid);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    if (rc == 0)
        return ctx_fail(c, ZY_E_CONFLICT, "User already has the role '%s'", rname);
    char user_id[37];
    uuid_normalize(uid, user_id);
    if (audit(c, db, "role.assign", "user", user_id,
              json_pack("{s:s, s:s}", "roleId", rid, "roleName", rname)) < 0)
        return -1;
    return send_user_roles(c, db, 201, user_id);
}

static int unassign_role_tx(struct ctx *c, struct db_conn *db)
{
    const char *uid = jx_get_str(c->path_params, "id");
    if (check_user(c, db, uid) < 0)
        return -1;
    /* locked: two owners removing each other at once cannot both pass the last-owner check */
    json_t *role = load_role(c, db, jx_get_str(c->path_params, "roleId"));
    if (!role)
        return -1;
    if (check_escalation(c, json_object_get(role, "permissions")) < 0)
        return -1;
    const char *rid = jx_get_str(role, "id"), *rname = jx_get_str(role, "name");
    int rc = roles_unassign(db, c->tenant_id, uid, rid);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    if (rc == 0)
        return ctx_fail(c, ZY_E_NOT_FOUND, "User does not have the role '%s'", rname);
    if (is_system(role) && strcmp(rname, "owner") == 0) {
        long long owners = roles_count_active_owners(db, c->tenant_id);
        if (owners < 0)
            return ctx_fail_db(c, db, NULL);
        if (owners == 0) /* the caller rolls the removal back */
            return ctx_fail_details(c, ZY_E_CONFLICT, 409,
                                    json_pack("{s:s}", "reason", "last_owner"),
                                    "Cannot remove the owner role from the tenant's last active "
                                    "owner; make another user owner first");
    }
    char user_id[37];
    uuid_normalize(uid, user_id);
    if (audit(c, db, "role.unassign", "user", user_id,
              json_pack("{s:s, s:s}", "roleId", rid, "roleName", rname)) < 0)
        return -1;
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

/* ---- the table ---------------------------------------------------------------------------- */

static const struct route routes[] = {
    {.method = HTTP_GET,
     .path = "/roles",
     .handler = list_roles,
     .tag = "Roles",
     .summary = "List roles",
     .description = "The tenant's roles, system roles first (owner, admin, member, viewer), then "
                    "custom roles by name.",
     .operation_id = "listRoles",
     .query = &schemas_page_query,
     .auth = ROUTE_AUTH,
     .permission = "canViewRoles",
     .responses = (const struct route_response[]){{200, "List of roles", &role_list_s}, {0}}},
    {.method = HTTP_GET,
     .path = "/roles/:id",
     .handler = get_role,
     .tag = "Roles",
     .summary = "Get a role",
     .operation_id = "getRole",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = "canViewRoles",
     .responses = (const struct route_response[]){{200, "The role", &role_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/roles",
     .tx = create_role_tx,
     .tag = "Roles",
     .summary = "Create a custom role",
     .description = "Unknown permission names are a validation error. You can only grant "
                    "permissions you hold yourself.",
     .operation_id = "createRole",
     .body = &create_role_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageRoles",
     .responses = (const struct route_response[]){{201, "Created", &role_s},
                                                  {409, "A role with this name exists", NULL},
                                                  {0}}},
    {.method = HTTP_PATCH,
     .path = "/roles/:id",
     .tx = update_role_tx,
     .tag = "Roles",
     .summary = "Change a custom role",
     .description = "System roles cannot be changed (403, details.reason system_role). "
                    "permissions replaces the whole set; description null clears it.",
     .operation_id = "updateRole",
     .params = &schemas_id_params,
     .body = &update_role_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageRoles",
     .responses = (const struct route_response[]){{200, "The changed role", &role_s},
                                                  {409, "A role with this name exists", NULL},
                                                  {0}}},
    {.method = HTTP_DELETE,
     .path = "/roles/:id",
     .tx = delete_role_tx,
     .tag = "Roles",
     .summary = "Delete a custom role",
     .description = "Removes the role from every user who held it. System roles cannot be "
                    "deleted (403, details.reason system_role).",
     .operation_id = "deleteRole",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = "canManageRoles",
     .responses = (const struct route_response[]){{204, "Deleted", NULL}, {0}}},
    {.method = HTTP_GET,
     .path = "/users/:id/roles",
     .handler = list_user_roles,
     .tag = "Roles",
     .summary = "A user's roles",
     .operation_id = "listUserRoles",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = "canViewRoles",
     .responses = (const struct route_response[]){{200, "The user's roles", &user_roles_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/users/:id/roles",
     .tx = assign_role_tx,
     .tag = "Roles",
     .summary = "Give a user a role",
     .operation_id = "assignUserRole",
     .params = &schemas_id_params,
     .body = &assign_role_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageRoles",
     .responses = (const struct route_response[]){{201, "The user's roles now", &user_roles_s},
                                                  {409, "The user already has the role", NULL},
                                                  {0}}},
    {.method = HTTP_DELETE,
     .path = "/users/:id/roles/:roleId",
     .tx = unassign_role_tx,
     .tag = "Roles",
     .summary = "Take a role from a user",
     .description = "The tenant's last active owner keeps the owner role (409, details.reason "
                    "last_owner).",
     .operation_id = "removeUserRole",
     .params = &user_role_params_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageRoles",
     .responses = (const struct route_response[]){{204, "Removed", NULL},
                                                  {409, "The last owner", NULL},
                                                  {0}}},
};

const struct route_group roles_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "Roles and the permissions they grant.",
};
