/* users.h — /api/v1/users: the tenant's users (the specification's list route and its
 * companions) and the caller's own profile. */
#ifndef ZYGO_ROUTES_USERS_H
#define ZYGO_ROUTES_USERS_H

#include "http/router.h"

extern const struct route_group users_routes;

#endif
