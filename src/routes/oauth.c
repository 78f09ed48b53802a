/* oauth.c — see oauth.h. */
#include "lib/common.h"

#include <strings.h>

#include "http/app.h"
#include "lib/config.h"
#include "lib/uuid.h"
#include "middleware/rate_limit.h"
#include "repos/audit.h"
#include "services/audit.h"
#include "repos/repo.h"
#include "repos/roles.h"
#include "repos/tenants.h"
#include "repos/users.h"
#include "routes/oauth.h"
#include "services/auth.h"
#include "services/oauth.h"

#define OAUTH_STATE_TTL_S 600
#define STATE_COOKIE "zygo_oauth_state"

static const struct rl_policy rl_oauth = {"auth-oauth", 30, 300};

static const struct schema provider_params_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"provider", &(const struct schema){.type = SCHEMA_STRING, .has_max = true, .max = 50},
         true},
        {NULL}}};
static const struct schema begin_query_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"redirectTo",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_max = true,
                                .max = 2048,
                                .description = "A path in the app to return to"},
         false},
        {NULL}}};
static const struct schema callback_query_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"code", &(const struct schema){.type = SCHEMA_STRING, .has_max = true, .max = 2048},
         false},
        {"state", &(const struct schema){.type = SCHEMA_STRING, .has_max = true, .max = 128},
         false},
        {"error", &(const struct schema){.type = SCHEMA_STRING, .has_max = true, .max = 256},
         false},
        {NULL}}};

static const char *q(struct ctx *c, const char *k)
{
    return json_string_value(json_object_get(c->query, k));
}

static const struct oauth_provider *provider(struct ctx *c)
{
    const char *name = json_string_value(json_object_get(c->path_params, "provider"));
    const struct oauth_provider *p = oauth_providers_find(app_oauth(c->app), name);
    if (!p)
        ctx_fail(c, ZY_E_NOT_FOUND, "OAuth provider %s not found", name);
    return p;
}

static int begin(struct ctx *c)
{
    const struct oauth_provider *p = provider(c);
    if (!p)
        return -1;
    const char *redirect_to = q(c, "redirectTo");
    if (!oauth_redirect_to_safe(redirect_to))
        return ctx_fail(c, ZY_E_VALIDATION, "redirectTo must be a path in the app");
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    struct oauth_begin b;
    if (oauth_begin(p, redirect_to, &b) < 0)
        return ctx_fail(c, ZY_E_INTERNAL, "cannot start the OAuth flow");
    char expires[32];
    auth_iso(auth_now() + OAUTH_STATE_TTL_S, expires);
    int rc = db_exec(db,
                     "INSERT INTO oauth_states (state, provider, code_verifier, redirect_to,"
                     " expires_at) VALUES ($1, $2, $3, $4, $5)",
                     DB_ARGS(DB_TEXT(b.state), DB_TEXT(p->name), DB_TEXT(b.code_verifier),
                             DB_TEXT(redirect_to), DB_TEXT(expires)));
    if (rc != 1) {
        oauth_begin_free(&b);
        return ctx_fail_db(c, db, NULL);
    }
    /* the state also rides in a cookie only this browser has: a callback carrying someone
     * else's state (login CSRF) does not match it */
    bool secure = strncmp(app_config(c->app)->api_url, "https://", 8) == 0;
    char *cookie = arena_printf(c->arena,
                                STATE_COOKIE "=%s; Path=/api/v1/auth/oauth; Max-Age=%d;"
                                             " HttpOnly; SameSite=Lax%s",
                                b.state, OAUTH_STATE_TTL_S, secure ? "; Secure" : "");
    ctx_set_header(c, "Set-Cookie", cookie);
    ctx_set_header(c, "Location", b.authorize_url);
    ctx_set_header(c, "Cache-Control", "no-store");
    ctx_body(c, 302, NULL, "", 0);
    oauth_begin_free(&b);
    return 0;
}

/* The value of the state cookie, or NULL. */
static const char *state_cookie(struct ctx *c)
{
    const char *h = ctx_header(c, "Cookie");
    for (const char *p = h; p && *p;) {
        while (*p == ' ' || *p == ';')
            p++;
        size_t n = strlen(STATE_COOKIE);
        if (strncmp(p, STATE_COOKIE, n) == 0 && p[n] == '=') {
            const char *v = p + n + 1;
            return arena_strndup(c->arena, v, strcspn(v, ";"));
        }
        p = strchr(p, ';');
    }
    return NULL;
}

/* Finds or makes the user for the identity; tenant and user ids out. */
static int resolve_user(struct ctx *c, struct db_conn *db, const struct oauth_identity *id,
                        char tenant[37], char user[37])
{
    db_set_rls_bypass(db, true); /* who this is decides the tenant */
    struct db_rows *r = db_query(db,
                                 "SELECT tenant_id, user_id FROM user_identities"
                                 " WHERE provider = $1 AND subject = $2",
                                 DB_ARGS(DB_TEXT(id->provider), DB_TEXT(id->subject)));
    if (!r)
        return ctx_fail_db(c, db, NULL);
    bool known = db_next(r);
    if (known) {
        snprintf(tenant, 37, "%s", db_text(r, 0));
        snprintf(user, 37, "%s", db_text(r, 1));
    }
    db_rows_free(r);
    if (known)
        return 0;
    if (!id->email)
        return ctx_fail(c, ZY_E_UNAUTHORIZED, "The provider gave no email address");
    struct user_login existing[2];
    int n = users_find_login(db, id->email, NULL, existing, 2);
    if (n < 0)
        return ctx_fail_db(c, db, NULL);
    if (n > 0 && !id->email_verified)
        return ctx_fail(c, ZY_E_CONFLICT,
                        "An account with this email exists; the provider has not verified the "
                        "address, so it cannot be linked");
    if (n > 0) {
        snprintf(tenant, 37, "%s", existing[0].tenant_id);
        snprintf(user, 37, "%s", existing[0].id);
    } else {
        char slug[64];
        const char *name = id->name ? id->name : id->email;
        uuid_v7(tenant);
        uuid_v7(user);
        struct user_new u = {.id = user,
                             .tenant_id = tenant,
                             .email = id->email,
                             .first_name = id->given_name,
                             .last_name = id->family_name,
                             .status = "active"};
        if (tenants_create(db, tenant, name, slug) < 0 || roles_seed_system(db, tenant) < 0 ||
            users_create(db, &u) < 0 || roles_assign_by_name(db, tenant, user, "owner") < 0)
            return ctx_fail_db(c, db, "Email is already registered");
        if (id->email_verified && db_exec(db, "UPDATE users SET email_verified = $2 WHERE id = $1",
                                          DB_ARGS(DB_TEXT(user), DB_BOOL(true))) < 0)
            return ctx_fail_db(c, db, NULL);
    }
    char iid[37];
    uuid_v7(iid);
    if (db_exec(db,
                "INSERT INTO user_identities (id, tenant_id, user_id, provider, subject, email)"
                " VALUES ($1, $2, $3, $4, $5, $6)",
                DB_ARGS(DB_TEXT(iid), DB_TEXT(tenant), DB_TEXT(user), DB_TEXT(id->provider),
                        DB_TEXT(id->subject), DB_TEXT(id->email))) != 1)
        return ctx_fail_db(c, db, NULL);
    return 0;
}

static int callback_tx(struct ctx *c, struct db_conn *db, const struct oauth_provider *p)
{
    const char *state = q(c, "state"), *code = q(c, "code"), *cookie = state_cookie(c);
    if (q(c, "error"))
        return ctx_fail_status(c, 400, "The provider refused the sign-in: %s", q(c, "error"));
    if (!state || !code || !oauth_state_valid(state) || !cookie ||
        !oauth_state_equal(state, cookie))
        return ctx_fail_status(c, 400, "OAuth state mismatch: start the sign-in again");
    char now[32];
    auth_iso(auth_now(), now);
    struct db_rows *r = db_query(db,
                                 "SELECT code_verifier, redirect_to FROM oauth_states"
                                 " WHERE state = $1 AND provider = $2 AND expires_at > $3",
                                 DB_ARGS(DB_TEXT(state), DB_TEXT(p->name), DB_TEXT(now)));
    if (!r)
        return ctx_fail_db(c, db, NULL);
    char *verifier = NULL, *redirect_to = NULL;
    if (db_next(r)) {
        verifier = arena_strdup(c->arena, db_text(r, 0));
        redirect_to = db_is_null(r, 1) ? NULL : arena_strdup(c->arena, db_text(r, 1));
    }
    db_rows_free(r);
    /* single use: whoever deletes it owns the flow */
    if (!verifier ||
        db_exec(db, "DELETE FROM oauth_states WHERE state = $1", DB_ARGS(DB_TEXT(state))) != 1)
        return ctx_fail_status(c, 400, "OAuth state mismatch: start the sign-in again");
    struct oauth_identity id;
    char err[256];
    int rc = oauth_finish(p, code, verifier, &id, err, sizeof(err));
    if (rc < 0) {
        bool provider_said_no = rc == OAUTH_ERR_PROVIDER || rc == OAUTH_ERR_INVALID;
        return provider_said_no
                   ? ctx_fail(c, ZY_E_UNAUTHORIZED, "Sign-in with %s failed: %s", p->name, err)
                   : ctx_fail_status(c, 502, "The provider %s could not be reached: %s", p->name,
                                     oauth_strerror(rc));
    }
    char tenant[37], user[37];
    rc = resolve_user(c, db, &id, tenant, user);
    oauth_identity_free(&id);
    if (rc < 0)
        return -1;
    db_set_rls_bypass(db, false);
    repo_tenant(db, tenant);
    struct audit_entry e = {.tenant_id = tenant,
                            .actor_id = user,
                            .action = "auth.login_oauth",
                            .resource_type = "user",
                            .resource_id = user,
                            .metadata = json_pack("{s:s}", "provider", p->name)};
    audit_request(c, db, &e);
    json_decref(e.metadata);
    json_t *out;
    if (auth_open_session(c, db, tenant, user, "aal1", "[\"oauth\"]", &out) < 0)
        return -1;
    ctx_set_header(c, "Set-Cookie", STATE_COOKIE "=; Path=/api/v1/auth/oauth; Max-Age=0");
    ctx_set_header(c, "Cache-Control", "no-store");
    if (!redirect_to) {
        ctx_json(c, 200, out);
        return 0;
    }
    /* back to the app; the tokens travel in the fragment, which never reaches a server log */
    char *loc = arena_printf(c->arena,
                             "%s%s#access_token=%s&refresh_token=%s&token_type=bearer"
                             "&expires_in=%lld",
                             app_config(c->app)->app_url, redirect_to,
                             json_string_value(json_object_get(out, "accessToken")),
                             json_string_value(json_object_get(out, "refreshToken")),
                             (long long)json_integer_value(json_object_get(out, "expiresIn")));
    json_decref(out);
    ctx_set_header(c, "Location", loc);
    ctx_body(c, 302, NULL, "", 0);
    return 0;
}

static int callback(struct ctx *c)
{
    const struct oauth_provider *p = provider(c);
    if (!p)
        return -1;
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    if (db_begin(db) < 0)
        return ctx_fail_db(c, db, NULL);
    if (callback_tx(c, db, p) < 0) {
        db_rollback(db);
        return -1;
    }
    return db_commit(db) < 0 ? ctx_fail_db(c, db, NULL) : 0;
}

static const struct route routes[] = {
    {.method = HTTP_GET,
     .path = "/auth/oauth/:provider",
     .handler = begin,
     .tag = "Auth",
     .summary = "Start signing in with a provider",
     .description = "Redirects to the provider (authorization code with PKCE S256).",
     .operation_id = "oauthBegin",
     .params = &provider_params_s,
     .query = &begin_query_s,
     .rate_limit = &rl_oauth,
     .responses = (const struct route_response[]){{302, "To the provider", NULL}, {0}}},
    {.method = HTTP_GET,
     .path = "/auth/oauth/:provider/callback",
     .handler = callback,
     .tag = "Auth",
     .summary = "Provider callback",
     .description = "Exchanges the code, then signs in the linked or a new user. Answers the "
                    "tokens as JSON, or redirects to the app with them in the URL fragment when "
                    "the flow was started with redirectTo.",
     .operation_id = "oauthCallback",
     .params = &provider_params_s,
     .query = &callback_query_s,
     .rate_limit = &rl_oauth,
     .responses = (const struct route_response[]){{200, "Signed in", NULL},
                                                  {302, "Back to the app", NULL},
                                                  {502, "Provider unreachable", NULL},
                                                  {0}}},
};

const struct route_group oauth_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
};
