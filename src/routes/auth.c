/* auth.c — see auth.h. */
#include "lib/common.h"

#include "http/app.h"
#include "lib/jsonx.h"
#include "lib/config.h"
#include "lib/password.h"
#include "lib/uuid.h"
#include "middleware/rate_limit.h"
#include "repos/audit.h"
#include "services/audit.h"
#include "repos/mfa.h"
#include "repos/otp.h"
#include "repos/repo.h"
#include "repos/roles.h"
#include "repos/sessions.h"
#include "repos/tenants.h"
#include "repos/users.h"
#include "routes/auth.h"
#include "routes/schemas.h"
#include "services/auth.h"

#define LOGIN_CANDIDATES 5
#define MFA_CHALLENGE_TTL_S 300
#define EMAIL_VERIFY_TTL_S (24 * 3600)

/* Sign-in, sign-up and refresh are what attackers hammer: tighter budgets per address
 * (Supabase's defaults as a guide). */
static const struct rl_policy rl_signin = {"auth-signin", 30, 300};
static const struct rl_policy rl_refresh = {"auth-refresh", 150, 300};

/* ---- schemas ------------------------------------------------------------------------------ */

static const struct schema email_s = {.type = SCHEMA_STRING,
                                      .format = SCHEMA_FMT_EMAIL,
                                      .has_max = true,
                                      .max = 255,
                                      .example = "\"ann@example.com\""};
static const struct schema password_s = {
    .type = SCHEMA_STRING, .has_min = true, .min = 8, .has_max = true, .max = 256};
static const struct schema name_s = {
    .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 100};

static const struct schema signup_s = {
    .type = SCHEMA_OBJECT,
    .ref = "SignupRequest",
    .props = (const struct schema_prop[]){
        {"email", &email_s, true},
        {"password", &password_s, true},
        {"firstName", &name_s, false},
        {"lastName", &name_s, false},
        {"tenantName",
         &(const struct schema){
             .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 100},
         true},
        {NULL}}};

static const struct schema login_s = {
    .type = SCHEMA_OBJECT,
    .ref = "LoginRequest",
    .props = (const struct schema_prop[]){
        {"email", &email_s, true},
        {"password",
         &(const struct schema){
             .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 256},
         true},
        {"tenant",
         &(const struct schema){.type = SCHEMA_STRING,
                                .description = "Tenant slug, when the email exists in "
                                               "several tenants"},
         false},
        {NULL}}};

static const struct schema refresh_s = {
    .type = SCHEMA_OBJECT,
    .ref = "RefreshRequest",
    .props = (const struct schema_prop[]){
        {"refreshToken",
         &(const struct schema){
             .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 256},
         true},
        {NULL}}};

static const struct schema logout_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"scope",
         &(const struct schema){.type = SCHEMA_STRING,
                                .default_json = "\"local\"",
                                .enum_values =
                                    (const char *const[]){"local", "others", "global", NULL}},
         false},
        {NULL}}};

static const struct schema token_response_s = {
    .type = SCHEMA_OBJECT,
    .ref = "TokenResponse",
    .allow_unknown = true,
    .props = (const struct schema_prop[]){{"accessToken", &schemas_str, true},
                                          {"refreshToken", &schemas_str, true},
                                          {"tokenType", &schemas_str, true},
                                          {"expiresIn", &schemas_int, true},
                                          {"expiresAt", &schemas_int, true},
                                          {"user", &schemas_any_object, true},
                                          {NULL}}};

/* ---- helpers ------------------------------------------------------------------------------ */

static void audit(struct ctx *c, struct db_conn *db, const char *tenant, const char *actor,
                  const char *action, json_t *meta)
{
    struct audit_entry e = {
        .tenant_id = tenant,
        .actor_id = actor,
        .action = action,
        .resource_type = "user",
        .resource_id = actor,
        .metadata = meta,
    };
    audit_request(c, db, &e);
    json_decref(meta);
}

/* Keeps what was written so far (an audit row of a refused attempt) although the request is
 * about to fail, then goes on in a fresh transaction for ctx_tx to roll back. */
static int keep_then_fail(struct ctx *c, struct db_conn *db)
{
    (void)db;
    ctx_commit_midway(c);
    return -1;
}

/* ---- sign-up ------------------------------------------------------------------------------ */

static int signup_tx(struct ctx *c, struct db_conn *db)
{
    json_t *b = c->body;
    const char *hash = c->local; /* computed before the transaction: see login() */
    char tid[37], uid[37], slug[64];
    uuid_v7(tid);
    uuid_v7(uid);
    db_set_rls_bypass(db, true); /* a new tenant: system work until it exists */
    /* sign-up owns an address across tenants (invitations may add it to others later) */
    struct user_login existing;
    int n = users_find_login(db, jx_get_str(b, "email"), NULL, &existing, 1);
    if (n < 0)
        return ctx_fail_db(c, db, NULL);
    if (n > 0)
        return ctx_fail(c, ZY_E_CONFLICT, "Email is already registered");
    if (tenants_create(db, tid, jx_get_str(b, "tenantName"), slug) < 0 ||
        roles_seed_system(db, tid) < 0)
        return ctx_fail_db(c, db, NULL);
    struct user_new u = {
        .id = uid,
        .tenant_id = tid,
        .email = jx_get_str(b, "email"),
        .first_name = jx_get_str(b, "firstName"),
        .last_name = jx_get_str(b, "lastName"),
        .password_hash = hash,
        .status = "active",
    };
    if (users_create(db, &u) < 0 || roles_assign_by_name(db, tid, uid, "owner") < 0)
        return ctx_fail_db(c, db, "Email is already registered");
    db_set_rls_bypass(db, false);
    repo_tenant(db, tid);
    audit(c, db, tid, uid, "auth.signup", json_pack("{s:s}", "tenantSlug", slug));
    char expires[32], vtoken[TOKEN_LEN + 1];
    auth_iso(auth_now() + EMAIL_VERIFY_TTL_S, expires);
    if (otp_create(db, tid, uid, "email_verification", expires, vtoken) < 0)
        return ctx_fail_db(c, db, NULL);
    auth_send_link(c, jx_get_str(b, "email"), "email_verification", "Confirm your email address",
                   "Welcome! Please confirm your email address by opening:", "/verify-email",
                   vtoken);
    json_t *out;
    if (auth_open_session(c, db, tid, uid, "aal1", "[\"pwd\"]", &out) < 0)
        return -1;
    bool failed;
    json_object_set_new(out, "tenant", tenants_find_by_id(db, tid, &failed));
    ctx_json(c, 201, out);
    return 0;
}

static int signup(struct ctx *c)
{
    char *hash = arena_alloc(c->arena, PASSWORD_HASH_MAX);
    if (password_hash(jx_get_str(c->body, "password"), hash) < 0)
        return ctx_fail(c, ZY_E_INTERNAL, "password hashing failed");
    c->local = hash;
    return ctx_tx(c, signup_tx);
}

/* ---- sign-in ------------------------------------------------------------------------------ */

/* What the slow part of a sign-in found, for the short transaction that records it. */
struct login_state {
    struct user_login cand[LOGIN_CANDIDATES];
    int n;
    int match;
};

static int login_tx(struct ctx *c, struct db_conn *db)
{
    struct login_state *ls = c->local;
    if (ls->match < 0) {
        ctx_fail(c, ZY_E_UNAUTHORIZED, "Invalid email or password");
        if (ls->n > 0) {
            repo_tenant(db, ls->cand[0].tenant_id);
            audit(c, db, ls->cand[0].tenant_id, NULL, "auth.login_failed",
                  json_pack("{s:s}", "reason", "invalid_credentials"));
            keep_then_fail(c, db);
        }
        return -1;
    }
    struct user_login *u = &ls->cand[ls->match];
    repo_tenant(db, u->tenant_id);
    if (strcmp(u->tenant_status, "active") != 0)
        return ctx_fail_details(c, ZY_E_FORBIDDEN, 403,
                                json_pack("{s:s}", "reason", "tenant_suspended"),
                                "Tenant is suspended");
    if (strcmp(u->status, "suspended") == 0)
        return ctx_fail_details(c, ZY_E_FORBIDDEN, 403,
                                json_pack("{s:s}", "reason", "user_suspended"),
                                "User is suspended");
    char now[32];
    auth_iso(auth_now(), now);
    if (u->mfa_enabled) {
        /* the password was right; the second factor completes it at /auth/mfa/challenge */
        char cid[37], expires[32];
        auth_iso(auth_now() + MFA_CHALLENGE_TTL_S, expires);
        if (mfa_challenge_create(db, u->tenant_id, u->id, ctx_header(c, "User-Agent"),
                                 c->req.client_ip, expires, cid) < 0)
            return ctx_fail_db(c, db, NULL);
        audit(c, db, u->tenant_id, u->id, "auth.login_mfa_required", NULL);
        ctx_json(c, 200,
                 json_pack("{s:b, s:s, s:s, s:s}", "mfaRequired", 1, "challengeId", cid,
                           "factorType", "totp", "expiresAt", expires));
        return 0;
    }
    users_set_last_login(db, u->id, now);
    audit(c, db, u->tenant_id, u->id, "auth.login", NULL);
    json_t *out;
    if (auth_open_session(c, db, u->tenant_id, u->id, "aal1", "[\"pwd\"]", &out) < 0)
        return -1;
    ctx_json(c, 200, out);
    return 0;
}

/*
 * The password check (argon2id, ~100 ms) runs before any transaction: on SQLite a write
 * transaction holds the database lock, and sign-ins would queue behind each other's hashing.
 */
static int login(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    struct login_state *ls = arena_alloc(c->arena, sizeof(*ls));
    const char *pw = jx_get_str(c->body, "password");
    db_set_rls_bypass(db, true); /* the tenant is what we are finding out */
    ls->n = users_find_login(db, jx_get_str(c->body, "email"), jx_get_str(c->body, "tenant"),
                             ls->cand, LOGIN_CANDIDATES);
    db_set_rls_bypass(db, false);
    if (ls->n < 0)
        return ctx_fail_db(c, db, NULL);
    ls->match = -1;
    for (int i = 0; i < ls->n && ls->match < 0; i++)
        if (ls->cand[i].password_hash[0] && password_verify(ls->cand[i].password_hash, pw))
            ls->match = i;
    if (ls->n == 0)
        password_verify_dummy(pw); /* an unknown email costs what a wrong password costs */
    c->local = ls;
    return ctx_tx(c, login_tx);
}

/* ---- refresh ------------------------------------------------------------------------------ */

static int refresh_tx(struct ctx *c, struct db_conn *db)
{
    const struct config *cfg = app_config(c->app);
    struct refresh_lookup rt;
    db_set_rls_bypass(db, true);
    int found = refresh_find(db, jx_get_str(c->body, "refreshToken"), &rt);
    db_set_rls_bypass(db, false);
    if (found < 0)
        return ctx_fail_db(c, db, NULL);
    char now[32];
    int64_t now_s = auth_now();
    auth_iso(now_s, now);
    if (found == 0 || rt.session_revoked || strcmp(rt.not_after, now) <= 0)
        return ctx_fail(c, ZY_E_UNAUTHORIZED, "Invalid refresh token");
    repo_tenant(db, rt.tenant_id);
    /* a suspended tenant or user gets no new tokens either */
    struct user_auth ua;
    int live = users_auth_load(db, rt.tenant_id, rt.user_id, rt.session_id, now, &ua);
    if (live < 0)
        return ctx_fail_db(c, db, NULL);
    if (live == 0)
        return ctx_fail(c, ZY_E_UNAUTHORIZED, "Invalid refresh token");
    if (strcmp(ua.tenant_status, "active") != 0)
        return ctx_fail_details(c, ZY_E_FORBIDDEN, 403,
                                json_pack("{s:s}", "reason", "tenant_suspended"),
                                "Tenant is suspended");
    if (strcmp(ua.status, "suspended") == 0)
        return ctx_fail_details(c, ZY_E_FORBIDDEN, 403,
                                json_pack("{s:s}", "reason", "user_suspended"),
                                "User is suspended");
    int marked = refresh_mark_used(db, rt.id, now);
    if (marked < 0)
        return ctx_fail_db(c, db, NULL);
    if (marked == 0) {
        /* used before: a second tab within the grace window, or a replayed stolen token */
        char grace_start[32];
        auth_iso(now_s - cfg->refresh_reuse_interval_s, grace_start);
        if (rt.used_at[0] && strcmp(rt.used_at, grace_start) < 0) {
            sessions_revoke(db, rt.tenant_id, rt.session_id, now, "token_reuse");
            auth_announce_revoked(c, rt.user_id, rt.session_id, NULL);
            audit(c, db, rt.tenant_id, rt.user_id, "auth.token_reuse_detected",
                  json_pack("{s:s}", "sessionId", rt.session_id));
            /* the revocation must stick even though the request fails */
            ctx_fail(c, ZY_E_UNAUTHORIZED, "Refresh token was already used");
            return keep_then_fail(c, db);
        }
    }
    char token[TOKEN_LEN + 1];
    if (refresh_issue(db, rt.tenant_id, rt.session_id, rt.id, token) < 0 ||
        sessions_touch(db, rt.session_id, now) < 0)
        return ctx_fail_db(c, db, NULL);
    json_t *out;
    if (auth_token_response(c, db, rt.tenant_id, rt.user_id, rt.session_id, rt.aal, token, &out) <
        0)
        return -1;
    ctx_json(c, 200, out);
    return 0;
}

/* ---- sign-out and sessions ---------------------------------------------------------------- */

static int logout_tx(struct ctx *c, struct db_conn *db)
{
    const char *scope = jx_get_str(c->body, "scope");
    const struct auth_user *u = c->user;
    char now[32];
    auth_iso(auth_now(), now);
    int rc;
    if (strcmp(scope, "local") == 0)
        rc = sessions_revoke(db, u->tenant_id, u->session_id, now, "logout");
    else
        rc = sessions_revoke_user(db, u->tenant_id, u->id,
                                  strcmp(scope, "others") == 0 ? u->session_id : NULL, now,
                                  "logout");
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    if (strcmp(scope, "local") == 0)
        auth_announce_revoked(c, u->id, u->session_id, NULL);
    else
        auth_announce_revoked(c, u->id, NULL,
                              strcmp(scope, "others") == 0 ? u->session_id : NULL);
    audit(c, db, u->tenant_id, u->id, "auth.logout", json_pack("{s:s}", "scope", scope));
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

static int list_sessions(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    char now[32];
    auth_iso(auth_now(), now);
    bool failed;
    json_t *a =
        sessions_list(db, c->user->tenant_id, c->user->id, c->user->session_id, now, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, json_pack("{s:o}", "data", a));
    return 0;
}

static int revoke_session(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    char now[32];
    auth_iso(auth_now(), now);
    const char *id = json_string_value(json_object_get(c->path_params, "id"));
    char sid[37];
    uuid_normalize(id, sid);
    /* only the caller's own sessions: another user's or tenant's id is simply not found */
    int rc = db_exec(
        db,
        "UPDATE sessions SET revoked_at = $4, revoked_reason = 'revoked'"
        " WHERE id = $1 AND user_id = $2 AND tenant_id = $3 AND revoked_at IS NULL",
        DB_ARGS(DB_TEXT(sid), DB_TEXT(c->user->id), DB_TEXT(c->user->tenant_id), DB_TEXT(now)));
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    if (rc == 0)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Session with ID %s not found", id);
    auth_announce_revoked(c, c->user->id, sid, NULL);
    audit(c, db, c->user->tenant_id, c->user->id, "auth.session_revoked",
          json_pack("{s:s}", "sessionId", sid));
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

static const struct route routes[] = {
    {.method = HTTP_POST,
     .path = "/auth/signup",
     .handler = signup,
     .tag = "Auth",
     .summary = "Sign up",
     .description = "Creates a tenant and its first user (the owner), "
                    "signed in.",
     .operation_id = "signup",
     .body = &signup_s,
     .rate_limit = &rl_signin,
     .responses = (const struct route_response[]){{201, "Signed up", &token_response_s},
                                                  {409, "Email already registered", NULL},
                                                  {0}}},
    {.method = HTTP_POST,
     .path = "/auth/login",
     .handler = login,
     .tag = "Auth",
     .summary = "Sign in",
     .operation_id = "login",
     .body = &login_s,
     .rate_limit = &rl_signin,
     .responses = (const struct route_response[]){{200, "Signed in", &token_response_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/auth/refresh",
     .tx = refresh_tx,
     .tag = "Auth",
     .summary = "Refresh the access token",
     .description = "Rotates the refresh token. Presenting a used one again (after a short grace "
                    "window for concurrent tabs) revokes the whole session.",
     .operation_id = "refreshToken",
     .body = &refresh_s,
     .rate_limit = &rl_refresh,
     .responses = (const struct route_response[]){{200, "New tokens", &token_response_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/auth/logout",
     .tx = logout_tx,
     .tag = "Auth",
     .summary = "Sign out",
     .description = "scope local: this session; others: every other session; global: all.",
     .operation_id = "logout",
     .body = &logout_s,
     .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{204, "Signed out", NULL}, {0}}},
    {.method = HTTP_GET,
     .path = "/auth/sessions",
     .handler = list_sessions,
     .tag = "Auth",
     .summary = "List my sessions",
     .operation_id = "listSessions",
     .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{200, "Live sessions", NULL}, {0}}},
    {.method = HTTP_DELETE,
     .path = "/auth/sessions/:id",
     .handler = revoke_session,
     .tag = "Auth",
     .summary = "Revoke one of my sessions",
     .operation_id = "revokeSession",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{204, "Revoked", NULL}, {0}}},
};

const struct route_group auth_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "Sign-up, sign-in, tokens and sessions.",
};
