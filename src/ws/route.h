/*
 * route.h — GET /ws: the WebSocket endpoint in the route table (documented in OpenAPI) and the
 * HTTP half of a connection: the handshake check and the token, verified as every
 * authenticated route verifies it (middleware/auth.c's auth_token: signature, claims, live
 * session, user and tenant not suspended).
 *
 * As in the specification, a well-formed upgrade is always accepted; authentication failures
 * are reported after it with close codes 4001 / 4002 / 4000. The HTTP transport
 * (src/http/server.c) asks ws_route_upgrade() whether a finished request is such an accepted
 * upgrade and then hands the socket to the hub.
 */
#ifndef ZYGO_WS_ROUTE_H
#define ZYGO_WS_ROUTE_H

#include "http/router.h"
#include "ws/hub.h"

extern const struct route_group ws_routes;

/* The accepted upgrade of a handled request (status 101 set by GET /ws), or NULL. Lives in
 * the request's arena. */
const struct ws_accept *ws_route_upgrade(const struct ctx *c);

#endif
