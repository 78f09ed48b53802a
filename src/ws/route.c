/* route.c — see route.h. */
#include "lib/common.h"

#include "middleware/auth.h"
#include "ws/handshake.h"
#include "ws/route.h"

static const struct schema_prop query_props[] = {
    {"token",
     &(const struct schema){.type = SCHEMA_STRING,
                            .description = "The access token (the same as for Bearer "
                                           "authentication). Missing: the socket is closed with "
                                           "4001; invalid, expired or revoked: 4002."},
     false},
    {0},
};
/* Unknown parameters are ignored, as the specification's server does. */
static const struct schema query_s = {
    .type = SCHEMA_OBJECT, .props = query_props, .allow_unknown = true};

/* The handshake's verdict goes into the arena; clears the auth error so no envelope is sent. */
static void refuse_after_upgrade(struct ctx *c, struct ws_accept *a, uint16_t code,
                                 const char *reason)
{
    a->close_code = code;
    a->close_reason = reason;
    json_decref(c->err_details);
    c->err_details = NULL;
    c->err = ZY_OK;
    c->err_status = 0;
    c->err_message = NULL;
    c->user = NULL;
    ctx_remove_header(c, "WWW-Authenticate");
}

static int ws_upgrade(struct ctx *c)
{
    switch (c->req.method == HTTP_GET ? ws_handshake_check(c) : WS_HS_NONE) {
    case WS_HS_OK:
        break;
    case WS_HS_NONE:
        ctx_set_header(c, "Upgrade", "websocket");
        return ctx_fail_status(c, 426, "This endpoint speaks WebSocket: send Upgrade: websocket");
    case WS_HS_BAD_VERSION:
        ctx_set_header(c, "Sec-WebSocket-Version", "13");
        return ctx_fail_status(c, 426, "Unsupported WebSocket version (13 is supported)");
    case WS_HS_BAD_KEY:
        return ctx_fail_status(c, 400, "Invalid Sec-WebSocket-Key");
    }
    struct ws_accept *a = arena_alloc(c->arena, sizeof(*a));
    const char *token = ctx_query(c, "token");
    if (!token || !*token) {
        refuse_after_upgrade(c, a, 4001, "Missing authentication token");
    } else {
        int rc = auth_token(c, token);
        if (rc == 0) {
            a->who.tenant_id = c->user->tenant_id;
            a->who.user_id = c->user->id;
            a->who.session_id = c->user->session_id;
            a->who.is_global_admin = c->user->is_global_admin;
            a->expires_at = c->user->expires_at;
        } else if (rc > 0 || c->err == ZY_E_UNAUTHORIZED || c->err == ZY_E_FORBIDDEN) {
            refuse_after_upgrade(c, a, 4002, "Invalid authentication token");
        } else {
            refuse_after_upgrade(c, a, 4000, "Connection error");
        }
    }
    char accept[WS_ACCEPT_LEN + 1];
    ws_handshake_accept(ctx_header(c, "Sec-WebSocket-Key"), accept);
    ctx_set_header(c, "Upgrade", "websocket");
    ctx_set_header(c, "Sec-WebSocket-Accept", accept);
    c->local = a;
    c->res.status = 101;
    return 0;
}

static const struct route routes[] = {
    {
        .method = HTTP_GET,
        .path = "/ws",
        .handler = ws_upgrade,
        .summary = "Open a WebSocket",
        .description =
            "Upgrades to a WebSocket (RFC 6455, version 13) for live events. Authenticate with "
            "`?token=<access token>`. Messages are JSON text frames: the server sends "
            "`{\"type\":\"connected\",\"userId\"}`; the client sends `subscribe` / `unsubscribe` "
            "with a `room` (answered `subscribed` / `unsubscribed`, or `{\"type\":\"error\","
            "\"message\":\"Access denied to room\"}`) and `ping` (answered `pong`). Rooms: "
            "`tenant:<tenantId>:user:<userId>` (that user only), "
            "`tenant:<tenantId>:execution:<executionId>` (canViewWorkflows), "
            "`tenant:<tenantId>:job:<jobId>` and any other `tenant:<tenantId>:…` name (members "
            "of the tenant). Close codes: 4001 missing token, 4002 invalid, expired or revoked "
            "token, 4000 connection error, 1001 server shutting down, 1002 protocol error "
            "(e.g. an unmasked frame), 1007 invalid UTF-8, 1009 message too large.",
        .tag = "Realtime",
        .operation_id = "openWebSocket",
        .query = &query_s,
        .responses =
            (const struct route_response[]){
                {101, "Switching Protocols: the connection is a WebSocket from here on", NULL},
                {400, "Malformed handshake (Sec-WebSocket-Key)", NULL},
                {426, "Not a WebSocket upgrade, or a version other than 13", NULL},
                {0}},
    },
};

const struct route_group ws_routes = {
    .prefix = "",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "Live events over WebSocket",
};

const struct ws_accept *ws_route_upgrade(const struct ctx *c)
{
    if (c->route != &routes[0] || c->res.status != 101 || c->err != ZY_OK)
        return NULL;
    return c->local;
}
