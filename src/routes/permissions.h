/* permissions.h — GET /api/v1/permissions: the permission catalogue and the system roles. */
#ifndef ZYGO_ROUTES_PERMISSIONS_H
#define ZYGO_ROUTES_PERMISSIONS_H

#include "http/router.h"

extern const struct route_group permissions_routes;

#endif
