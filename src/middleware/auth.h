/*
 * auth.h — the route phases that decide who is calling (the specification's authMiddleware and
 * optionalAuth), which tenant they act in (tenantMiddleware), and whether they may
 * (requirePermission). Driven by the route table: route->auth and route->permission.
 *
 * Revocation is checked on every request: the access token's session must still be live in the
 * database (one indexed query that also loads the user and tenant status), so signing out or
 * revoking a session stops its access tokens at once, not when they expire.
 */
#ifndef ZYGO_MW_AUTH_H
#define ZYGO_MW_AUTH_H

#include "http/ctx.h"

/* Bearer token → c->user (and c->tenant_id). 0, or -1 with 401/403 set. */
int auth_authenticate(struct ctx *c);
/* The same check for a token given some other way (the WebSocket's ?token=): the signature and
 * claims, then the session live in the database, the user and tenant not suspended. 0 with
 * c->user set; 1 when the token itself is not valid (nothing set, no error); -1 with the
 * 401/403/503 set on c. */
int auth_token(struct ctx *c, const char *token);
/* Tenant context: the user's own, or X-Tenant-ID for global admins; 403 when suspended. */
int auth_tenant(struct ctx *c);
/* route->permission, with global admins passing. */
int auth_require_permission(struct ctx *c);
/* True when the signed-in user holds the permission (or is a global admin). */
bool auth_has_permission(const struct ctx *c, const char *permission);

#endif
