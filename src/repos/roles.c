/* roles.c — see roles.h. */
#include "lib/common.h"

#include <jansson.h>

#include "lib/jsonx.h"
#include "lib/uuid.h"
#include "repos/repo.h"
#include "repos/roles.h"
#include "services/permissions.h"

int roles_seed_system(struct db_conn *c, const char *tenant_id)
{
    size_t n;
    const struct system_role *roles = permissions_system_roles(&n);
    for (size_t i = 0; i < n; i++) {
        char id[37];
        uuid_v7(id);
        json_t *perms = permissions_role_json(&roles[i]);
        char *pj = jx_dump(perms, NULL);
        json_decref(perms);
        int rc = db_exec(c,
                         "INSERT INTO roles (id, tenant_id, name, description, permissions,"
                         " is_system) VALUES ($1, $2, $3, $4, $5, $6)",
                         DB_ARGS(DB_TEXT(id), DB_TEXT(tenant_id), DB_TEXT(roles[i].name),
                                 DB_TEXT(roles[i].description), DB_TEXT(pj), DB_BOOL(true)));
        free(pj);
        if (rc < 0)
            return -1;
    }
    return 0;
}

int roles_assign_by_name(struct db_conn *c, const char *tenant_id, const char *user_id,
                         const char *name)
{
    int rc = db_exec(c,
                     "INSERT INTO user_roles (user_id, role_id, tenant_id)"
                     " SELECT $1, id, tenant_id FROM roles WHERE tenant_id = $2 AND name = $3",
                     DB_ARGS(DB_TEXT(user_id), DB_TEXT(tenant_id), DB_TEXT(name)));
    return rc == 1 ? 0 : -1;
}

/* Smaller is more powerful; custom roles come after the system ones. */
static int role_rank(const char *name)
{
    static const char *const order[] = {"owner", "admin", "member", "viewer"};
    for (size_t i = 0; i < ARRAY_LEN(order); i++)
        if (strcmp(name, order[i]) == 0)
            return (int)i;
    return (int)ARRAY_LEN(order);
}

int roles_user_access(struct db_conn *c, const char *tenant_id, const char *user_id,
                      struct arena *a, const char **role, const char ***perms, size_t *nperms)
{
    *role = "";
    *perms = NULL;
    *nperms = 0;
    struct db_rows *r = db_query(c,
                                 "SELECT r.name, r.permissions FROM user_roles ur"
                                 " JOIN roles r ON r.id = ur.role_id"
                                 " WHERE ur.user_id = $1 AND ur.tenant_id = $2 ORDER BY r.name",
                                 DB_ARGS(DB_TEXT(user_id), DB_TEXT(tenant_id)));
    if (!r)
        return -1;
    json_t *all = json_object(); /* set of names */
    int best = 1 << 30;
    while (db_next(r)) {
        const char *name = db_text(r, 0);
        if (role_rank(name) < best) {
            best = role_rank(name);
            *role = arena_strdup(a, name);
        }
        json_t *p = json_loadb(db_text(r, 1), db_textlen(r, 1), 0, NULL);
        size_t i;
        json_t *v;
        json_array_foreach(p, i, v)
        {
            if (json_is_string(v))
                json_object_set_new(all, json_string_value(v), json_true());
        }
        json_decref(p);
    }
    int rc = db_rows_error(r) ? -1 : 0;
    db_rows_free(r);
    size_t n = json_object_size(all);
    const char **list = arena_alloc(a, (n + 1) * sizeof(*list));
    const char *k;
    json_t *v;
    size_t i = 0;
    json_object_foreach(all, k, v)
    {
        list[i++] = arena_strdup(a, k);
    }
    list[i] = NULL;
    json_decref(all);
    *perms = list;
    *nperms = n;
    return rc;
}

/* ---- the API's Role object ---------------------------------------------------------------- */

/* In SELECT order; r is roles. */
#define ROLE_COLUMNS                                                                           \
    "r.id, r.name, r.description, r.permissions, r.is_system,"                                 \
    " (SELECT count(*) FROM user_roles cu JOIN users u ON u.id = cu.user_id"                   \
    " WHERE cu.role_id = r.id AND cu.tenant_id = r.tenant_id AND u.deleted_at IS NULL),"        \
    " r.created_at, r.updated_at"

/* System roles by rank (owner, admin, member, viewer), then custom roles by name. */
#define ROLE_ORDER                                                                             \
    " ORDER BY r.is_system DESC, CASE r.name WHEN 'owner' THEN 0 WHEN 'admin' THEN 1"           \
    " WHEN 'member' THEN 2 WHEN 'viewer' THEN 3 ELSE 4 END, r.name, r.id"

static const struct repo_col role_cols[] = {
    {"id", REPO_TEXT},         {"name", REPO_TEXT},           {"description", REPO_TEXT},
    {"permissions", REPO_JSON}, {"isSystem", REPO_BOOL},      {"userCount", REPO_INT},
    {"createdAt", REPO_TIMESTAMP}, {"updatedAt", REPO_TIMESTAMP}, {NULL, REPO_TEXT},
};

/* Every row of r as a JSON array of Role objects (frees r); NULL with *failed on error. */
static json_t *role_array(struct db_rows *r, bool *failed)
{
    if (!r) {
        *failed = true;
        return NULL;
    }
    json_t *a = json_array();
    while (db_next(r))
        json_array_append_new(a, repo_row_json(r, role_cols));
    if (db_rows_error(r)) {
        *failed = true;
        json_decref(a);
        a = NULL;
    }
    db_rows_free(r);
    return a;
}

json_t *roles_list(struct db_conn *c, const char *tenant_id, long long limit, long long offset,
                   long long *total, bool *failed)
{
    *failed = false;
    *total = 0;
    if (repo_tenant(c, tenant_id) < 0)
        return json_array();
    struct db_rows *r = db_query(c, "SELECT count(*) FROM roles WHERE tenant_id = $1",
                                 DB_ARGS(DB_TEXT(db_tenant(c))));
    if (!r || !db_next(r)) {
        db_rows_free(r);
        *failed = true;
        return NULL;
    }
    *total = db_int(r, 0);
    db_rows_free(r);
    r = db_query(c,
                 "SELECT " ROLE_COLUMNS " FROM roles r WHERE r.tenant_id = $1" ROLE_ORDER
                 " LIMIT $2 OFFSET $3",
                 DB_ARGS(DB_TEXT(db_tenant(c)), DB_INT(limit), DB_INT(offset)));
    return role_array(r, failed);
}

json_t *roles_find_by_id(struct db_conn *c, const char *tenant_id, const char *id, bool *failed)
{
    *failed = false;
    char rid[37];
    /* not a UUID: no such role (PostgreSQL would refuse the cast) */
    if (!uuid_normalize(id, rid) || repo_tenant(c, tenant_id) < 0)
        return NULL;
    struct db_rows *r = db_query(c,
                                 "SELECT " ROLE_COLUMNS
                                 " FROM roles r WHERE r.id = $1 AND r.tenant_id = $2",
                                 DB_ARGS(DB_TEXT(rid), DB_TEXT(db_tenant(c))));
    json_t *a = role_array(r, failed);
    json_t *role = json_incref(json_array_get(a, 0));
    json_decref(a);
    return role;
}

json_t *roles_of_user(struct db_conn *c, const char *tenant_id, const char *user_id,
                      bool *failed)
{
    *failed = false;
    char uid[37];
    if (!uuid_normalize(user_id, uid) || repo_tenant(c, tenant_id) < 0)
        return json_array();
    struct db_rows *r = db_query(c,
                                 "SELECT " ROLE_COLUMNS " FROM roles r JOIN user_roles ur"
                                 " ON ur.role_id = r.id AND ur.tenant_id = r.tenant_id"
                                 " WHERE ur.user_id = $1 AND r.tenant_id = $2" ROLE_ORDER,
                                 DB_ARGS(DB_TEXT(uid), DB_TEXT(db_tenant(c))));
    return role_array(r, failed);
}

int roles_lock(struct db_conn *c, const char *tenant_id, const char *id)
{
    if (db_conn_dialect(c) != DB_POSTGRES)
        return 0;
    char rid[37];
    if (!uuid_normalize(id, rid) || repo_tenant(c, tenant_id) < 0)
        return 0; /* names no row: nothing to lock */
    struct db_rows *r = db_query(c, "SELECT id FROM roles WHERE id = $1 AND tenant_id = $2"
                                    " FOR UPDATE",
                                 DB_ARGS(DB_TEXT(rid), DB_TEXT(db_tenant(c))));
    if (!r)
        return -1;
    while (db_next(r))
        ;
    int rc = db_rows_error(r) ? -1 : 0;
    db_rows_free(r);
    return rc;
}

int roles_create(struct db_conn *c, const char *tenant_id, const char *id, const char *name,
                 const char *description, const char *permissions_json)
{
    if (repo_tenant(c, tenant_id) < 0)
        return -1; /* the caller's own tenant id: always a UUID */
    int rc = db_exec(c,
                     "INSERT INTO roles (id, tenant_id, name, description, permissions, is_system)"
                     " VALUES ($1, $2, $3, $4, $5, $6)",
                     DB_ARGS(DB_TEXT(id), DB_TEXT(db_tenant(c)), DB_TEXT(name),
                             DB_TEXT(description), DB_TEXT(permissions_json), DB_BOOL(false)));
    return rc == 1 ? 0 : -1;
}

int roles_update(struct db_conn *c, const char *tenant_id, const char *id, const char *name,
                 const char *description, const char *permissions_json, const char *now)
{
    char rid[37];
    if (!uuid_normalize(id, rid) || repo_tenant(c, tenant_id) < 0)
        return 0;
    return db_exec(c,
                   "UPDATE roles SET name = $3, description = $4, permissions = $5,"
                   " updated_at = $6 WHERE id = $1 AND tenant_id = $2 AND NOT is_system",
                   DB_ARGS(DB_TEXT(rid), DB_TEXT(db_tenant(c)), DB_TEXT(name),
                           DB_TEXT(description), DB_TEXT(permissions_json), DB_TEXT(now)));
}

int roles_delete(struct db_conn *c, const char *tenant_id, const char *id,
                 long long *unassigned)
{
    *unassigned = 0;
    char rid[37];
    if (!uuid_normalize(id, rid) || repo_tenant(c, tenant_id) < 0)
        return 0;
    /* assignments first and explicitly (not only by the foreign key's cascade), counted for
     * the audit row; a system role keeps its assignments */
    int n = db_exec(c,
                    "DELETE FROM user_roles WHERE role_id = $1 AND tenant_id = $2"
                    " AND role_id IN (SELECT id FROM roles WHERE id = $1 AND tenant_id = $2"
                    " AND NOT is_system)",
                    DB_ARGS(DB_TEXT(rid), DB_TEXT(db_tenant(c))));
    if (n < 0)
        return -1;
    *unassigned = n;
    return db_exec(c, "DELETE FROM roles WHERE id = $1 AND tenant_id = $2 AND NOT is_system",
                   DB_ARGS(DB_TEXT(rid), DB_TEXT(db_tenant(c))));
}

int roles_assign(struct db_conn *c, const char *tenant_id, const char *user_id,
                 const char *role_id)
{
    char uid[37], rid[37];
    if (!uuid_normalize(user_id, uid) || !uuid_normalize(role_id, rid) ||
        repo_tenant(c, tenant_id) < 0)
        return 0;
    /* an existing assignment is not an error (PostgreSQL would abort the transaction) */
    return db_exec(c,
                   "INSERT INTO user_roles (user_id, role_id, tenant_id) VALUES ($1, $2, $3)"
                   " ON CONFLICT DO NOTHING",
                   DB_ARGS(DB_TEXT(uid), DB_TEXT(rid), DB_TEXT(db_tenant(c))));
}

int roles_unassign(struct db_conn *c, const char *tenant_id, const char *user_id,
                   const char *role_id)
{
    char uid[37], rid[37];
    if (!uuid_normalize(user_id, uid) || !uuid_normalize(role_id, rid) ||
        repo_tenant(c, tenant_id) < 0)
        return 0;
    return db_exec(c,
                   "DELETE FROM user_roles WHERE user_id = $1 AND role_id = $2 AND tenant_id = $3",
                   DB_ARGS(DB_TEXT(uid), DB_TEXT(rid), DB_TEXT(db_tenant(c))));
}

long long roles_count_active_owners(struct db_conn *c, const char *tenant_id)
{
    if (repo_tenant(c, tenant_id) < 0)
        return 0;
    struct db_rows *r = db_query(c,
                                 "SELECT count(*) FROM user_roles ur"
                                 " JOIN roles r ON r.id = ur.role_id"
                                 " JOIN users u ON u.id = ur.user_id"
                                 " WHERE ur.tenant_id = $1 AND r.tenant_id = $1"
                                 " AND u.tenant_id = $1 AND r.is_system AND r.name = 'owner'"
                                 " AND u.deleted_at IS NULL AND u.status = 'active'",
                                 DB_ARGS(DB_TEXT(db_tenant(c))));
    if (!r)
        return -1;
    long long n = db_next(r) ? db_int(r, 0) : -1;
    db_rows_free(r);
    return n;
}
