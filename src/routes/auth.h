/* auth.h — /api/v1/auth: sign-up, sign-in, token refresh with rotation and reuse detection,
 * sign-out with scopes, and the caller's sessions. */
#ifndef ZYGO_ROUTES_AUTH_H
#define ZYGO_ROUTES_AUTH_H

#include "http/router.h"

extern const struct route_group auth_routes;

#endif
