/*
 * permissions.h — the permission catalogue (one name per capability of every route group of
 * the specification, in its canXxx style) and the system roles seeded in every tenant.
 *
 * Owns static data only. Roles store permission names; RBAC checks a route's permission
 * against the union of the user's roles (global admins pass every check).
 */
#ifndef ZYGO_SERVICES_PERMISSIONS_H
#define ZYGO_SERVICES_PERMISSIONS_H

#include <jansson.h>

#include "lib/common.h"

struct permission {
    const char *name;  /* "canManageUsers" */
    const char *group; /* route group: "users", "roles", … */
    const char *description;
};

struct system_role {
    const char *name; /* owner, admin, member, viewer */
    const char *description;
    const char *const *permissions; /* NULL-terminated */
};

const struct permission *permissions_all(size_t *n);
bool permission_known(const char *name);
const struct system_role *permissions_system_roles(size_t *n);
/* The system role with this name, or NULL. */
const struct system_role *permissions_system_role(const char *name);
/* JSON array of the role's permission names (new reference). */
json_t *permissions_role_json(const struct system_role *r);

#endif
