/* roles.c — see roles.h. */
#include "lib/common.h"

#include <jansson.h>

#include "lib/jsonx.h"
#include "lib/uuid.h"
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
