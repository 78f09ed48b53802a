/* admin.h — /api/v1/admin: global admins only. Tenants across the installation (list, search,
 * read, suspend, reactivate) and users across tenants. Promoting a global admin is not an API:
 * the operator does it with `zygo admin create` (services/admin_cli.h). */
#ifndef ZYGO_ROUTES_ADMIN_H
#define ZYGO_ROUTES_ADMIN_H

#include "http/router.h"

/* The route permission of every admin route. No role holds it (it is not in the permission
 * catalogue); auth_has_permission lets global admins through, and the handlers check
 * is_global_admin again so a custom role naming it could never open these routes. */
#define ADMIN_PERMISSION "isGlobalAdmin"

extern const struct route_group admin_routes;

#endif
