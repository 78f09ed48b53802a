/* oauth.h — /api/v1/auth/oauth/:provider: sign-in with an OAuth 2.0 / OpenID Connect provider
 * (authorization code + PKCE S256 + state bound to a cookie), linking to an existing user by a
 * verified email or creating one with a tenant. */
#ifndef ZYGO_ROUTES_OAUTH_H
#define ZYGO_ROUTES_OAUTH_H

#include "http/router.h"

extern const struct route_group oauth_routes;

#endif
