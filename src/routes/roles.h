/*
 * roles.h — /api/v1/roles and /api/v1/users/:id/roles: the tenant's roles (the seeded system
 * roles, read-only, and custom ones) and who holds them.
 *
 * Rules the handlers enforce:
 *  - system roles (owner, admin, member, viewer) cannot be changed or deleted: 403
 *    AUTH_FORBIDDEN with details.reason "system_role";
 *  - no privilege escalation: a caller who is not a global admin may only create, change,
 *    delete, assign or remove a role whose permissions (before and after the change) they hold
 *    themselves — otherwise 403 AUTH_FORBIDDEN, details.reason "privilege_escalation" and
 *    details.permissions listing the ones they lack (so an admin cannot make anyone an owner);
 *  - the tenant keeps at least one active owner: removing the owner role from the last one is
 *    409 RESOURCE_CONFLICT with details.reason "last_owner";
 *  - another tenant's role or user ids answer 404, like missing ones.
 * Every change writes its audit row (role.create, role.update, role.delete, role.assign,
 * role.unassign) in the same transaction.
 */
#ifndef ZYGO_ROUTES_ROLES_H
#define ZYGO_ROUTES_ROLES_H

#include "http/router.h"

extern const struct route_group roles_routes;

#endif
