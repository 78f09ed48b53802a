/* auth.c — see auth.h. */
#include "lib/common.h"

#include <strings.h>

#include "http/app.h"
#include "http/router.h"
#include "lib/config.h"
#include "lib/jwt.h"
#include "lib/uuid.h"
#include "middleware/auth.h"
#include "repos/repo.h"
#include "repos/roles.h"
#include "repos/tenants.h"
#include "repos/users.h"
#include "services/auth.h"

static int unauthorized(struct ctx *c, const char *msg)
{
    ctx_set_header(c, "WWW-Authenticate", "Bearer");
    return ctx_fail(c, ZY_E_UNAUTHORIZED, "%s", msg);
}

static int forbidden(struct ctx *c, const char *reason, const char *msg)
{
    return ctx_fail_details(c, ZY_E_FORBIDDEN, 403, json_pack("{s:s}", "reason", reason), msg);
}

int auth_authenticate(struct ctx *c)
{
    bool optional = c->route->auth == ROUTE_AUTH_OPTIONAL;
    const char *h = ctx_header(c, "Authorization");
    if (!h || strncasecmp(h, "Bearer ", 7) != 0 || !h[7])
        return optional ? 0 : unauthorized(c, "Missing or invalid authorization header");
    int rc = auth_token(c, h + 7);
    if (rc > 0)
        return optional ? 0 : unauthorized(c, "Invalid or expired token");
    return rc;
}

int auth_token(struct ctx *c, const char *token)
{
    const struct config *cfg = app_config(c->app);
    struct jwt_claims cl;
    const char *why = NULL;
    int rc = jwt_verify(token, (const unsigned char *)cfg->jwt_secret, strlen(cfg->jwt_secret),
                        cfg->api_url, AUTH_AUDIENCE, auth_now(), &cl, &why);
    if (rc != JWT_OK)
        return 1;
    int ret = -1;
    struct db_conn *db = ctx_db(c);
    if (!db || !cl.tid || !cl.sid)
        goto out;
    char now[32];
    auth_iso(auth_now(), now);
    struct user_auth ua;
    int found = users_auth_load(db, cl.tid, cl.sub, cl.sid, now, &ua);
    if (found < 0) {
        ctx_fail_db(c, db, NULL);
        goto out;
    }
    if (found == 0 || !ua.session_live) {
        unauthorized(c, "Session has been revoked or has expired");
        goto out;
    }
    if (strcmp(ua.status, "suspended") == 0) {
        forbidden(c, "user_suspended", "User is suspended");
        goto out;
    }
    struct auth_user *u = arena_alloc(c->arena, sizeof(*u));
    u->id = arena_strdup(c->arena, cl.sub);
    u->email = arena_strdup(c->arena, ua.email);
    u->tenant_id = arena_strdup(c->arena, db_tenant(db));
    u->session_id = arena_strdup(c->arena, cl.sid);
    u->aal = arena_strdup(c->arena, cl.aal ? cl.aal : "aal1");
    u->is_global_admin = ua.is_global_admin;
    u->expires_at = cl.exp;
    /* permissions come from the roles now, not from the token: a change applies at once */
    const char **perms;
    if (roles_user_access(db, u->tenant_id, u->id, c->arena, &u->role, &perms, &u->npermissions) <
        0) {
        ctx_fail_db(c, db, NULL);
        goto out;
    }
    u->permissions = perms;
    c->user = u;
    c->tenant_id = u->tenant_id;
    /* the user's own tenant must be usable even for a global admin acting elsewhere */
    if (strcmp(ua.tenant_status, "active") != 0 && !u->is_global_admin) {
        forbidden(c, "tenant_suspended", "Tenant is suspended");
        goto out;
    }
    ret = 0;
out:
    jwt_claims_free(&cl);
    return ret;
}

int auth_tenant(struct ctx *c)
{
    if (!c->user)
        return c->route->auth == ROUTE_AUTH_OPTIONAL ? 0
                                                     : unauthorized(c, "Authentication required");
    const char *want = ctx_header(c, "X-Tenant-ID");
    if (!c->user->is_global_admin || !want || strcmp(want, c->user->tenant_id) == 0)
        return 0;
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    bool failed = false;
    json_t *t = NULL;
    if (uuid_valid(want) && repo_tenant(db, want) == 0)
        t = tenants_find_by_id(db, want, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    if (!t)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Tenant with ID %s not found", want);
    json_decref(t);
    c->tenant_id = arena_strdup(c->arena, db_tenant(db));
    return 0;
}

bool auth_has_permission(const struct ctx *c, const char *permission)
{
    if (!c->user)
        return false;
    if (c->user->is_global_admin)
        return true;
    for (size_t i = 0; i < c->user->npermissions; i++)
        if (strcmp(c->user->permissions[i], permission) == 0)
            return true;
    return false;
}

int auth_require_permission(struct ctx *c)
{
    const struct route *r = c->route;
    if (!r->permission && !r->permission_any && !r->permission_check)
        return 0;
    if (!c->user)
        return unauthorized(c, "Authentication required");
    if (c->user->is_global_admin)
        return 0;
    bool ok = !r->permission || auth_has_permission(c, r->permission);
    if (ok && r->permission_any) {
        ok = false;
        for (size_t i = 0; r->permission_any[i] && !ok; i++)
            ok = auth_has_permission(c, r->permission_any[i]);
    }
    if (ok && r->permission_check)
        ok = r->permission_check(c);
    return ok ? 0 : ctx_fail(c, ZY_E_FORBIDDEN, "Insufficient permissions");
}
