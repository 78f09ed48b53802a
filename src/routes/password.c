/* password.c — see password.h. */
#include "lib/common.h"

#include "http/app.h"
#include "lib/jsonx.h"
#include "lib/password.h"
#include "middleware/rate_limit.h"
#include "repos/audit.h"
#include "services/audit.h"
#include "repos/otp.h"
#include "repos/repo.h"
#include "repos/sessions.h"
#include "repos/users.h"
#include "routes/password.h"
#include "services/auth.h"

#define RESET_TTL_S 3600
#define VERIFY_TTL_S (24 * 3600)

static const struct rl_policy rl_email = {"auth-email", 10, 3600};
static const struct rl_policy rl_token = {"auth-token", 30, 300};

static const struct schema email_s = {
    .type = SCHEMA_STRING, .format = SCHEMA_FMT_EMAIL, .has_max = true, .max = 255};
static const struct schema token_s = {
    .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 128};
static const struct schema new_password_s = {
    .type = SCHEMA_STRING, .has_min = true, .min = 8, .has_max = true, .max = 256};

static const struct schema forgot_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"email", &email_s, true}, {NULL}}};
static const struct schema reset_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"token", &token_s, true}, {"password", &new_password_s, true}, {NULL}}};
static const struct schema change_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"currentPassword",
         &(const struct schema){.type = SCHEMA_STRING, .has_max = true, .max = 256}, true},
        {"newPassword", &new_password_s, true},
        {NULL}}};
static const struct schema accept_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"token", &token_s, true}, {"password", &new_password_s, true}, {NULL}}};
static const struct schema token_only_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"token", &token_s, true}, {NULL}}};

static void audit(struct ctx *c, struct db_conn *db, const char *tenant, const char *user,
                  const char *action)
{
    struct audit_entry e = {.tenant_id = tenant,
                            .actor_id = user,
                            .action = action,
                            .resource_type = "user",
                            .resource_id = user};
    audit_request(c, db, &e);
}

/*
 * Sets the password hash computed before the transaction (argon2id takes ~100 ms: inside a
 * transaction it would hold SQLite's write lock that long) and ends every session of the user
 * but keep_session (NULL: all). With `was` set the update only happens while the stored hash
 * is still that one (a concurrent change wins, this one fails with 409).
 */
static int set_password(struct ctx *c, struct db_conn *db, const char *tenant, const char *user,
                        const char *hash, const char *was, const char *keep_session,
                        const char *reason)
{
    char now[32];
    auth_iso(auth_now(), now);
    int n = db_exec(db,
                    "UPDATE users SET password_hash = $3, updated_at = $4 WHERE id = $2"
                    " AND tenant_id = $1 AND (CAST($5 AS text) IS NULL OR password_hash = $5)",
                    DB_ARGS(DB_TEXT(tenant), DB_TEXT(user), DB_TEXT(hash), DB_TEXT(now),
                            DB_TEXT(was)));
    if (n == 0 && was)
        return ctx_fail(c, ZY_E_CONFLICT, "The password was changed meanwhile; try again");
    if (n != 1 || sessions_revoke_user(db, tenant, user, keep_session, now, reason) < 0)
        return ctx_fail_db(c, db, NULL);
    auth_announce_revoked(c, user, NULL, keep_session);
    return 0;
}

/* Hashes the body's `field` into c->local, then runs fn in a transaction. */
static int hash_then_tx(struct ctx *c, const char *field_name,
                        int (*fn)(struct ctx *c, struct db_conn *db))
{
    char *hash = arena_alloc(c->arena, PASSWORD_HASH_MAX);
    if (password_hash(jx_get_str(c->body, field_name), hash) < 0)
        return ctx_fail(c, ZY_E_INTERNAL, "password hashing failed");
    c->local = hash;
    return ctx_tx(c, fn);
}

static int forgot_tx(struct ctx *c, struct db_conn *db)
{
    struct user_login cand[5];
    db_set_rls_bypass(db, true);
    int n = users_find_login(db, jx_get_str(c->body, "email"), NULL, cand, 5);
    db_set_rls_bypass(db, false);
    if (n < 0)
        return ctx_fail_db(c, db, NULL);
    char expires[32], token[TOKEN_LEN + 1];
    auth_iso(auth_now() + RESET_TTL_S, expires);
    for (int i = 0; i < n; i++) {
        repo_tenant(db, cand[i].tenant_id);
        if (otp_create(db, cand[i].tenant_id, cand[i].id, "password_reset", expires, token) < 0)
            return ctx_fail_db(c, db, NULL);
        audit(c, db, cand[i].tenant_id, cand[i].id, "auth.password_reset_requested");
        auth_send_link(c, jx_get_str(c->body, "email"), "password_reset", "Reset your password",
                       "Someone asked to reset the password of your account. To choose a new "
                       "one, open:",
                       "/reset-password", token);
    }
    /* the same answer whether or not the address exists: no account enumeration */
    ctx_json(c, 202,
             json_pack("{s:s}", "message",
                       "If the address has an account, a reset link is on its way."));
    return 0;
}

/* Spends the emailed token of this purpose from the body and scopes the connection to its
 * tenant; 0, or -1 with 400 (unknown, used or expired) or a database error set. */
static int take_token(struct ctx *c, struct db_conn *db, const char *purpose, const char *what,
                      char tenant[37], char user[37])
{
    char now[32];
    auth_iso(auth_now(), now);
    db_set_rls_bypass(db, true); /* whose token it is decides the tenant */
    int ok = otp_take(db, jx_get_str(c->body, "token"), purpose, now, tenant, user);
    db_set_rls_bypass(db, false);
    if (ok < 0)
        return ctx_fail_db(c, db, NULL);
    if (!ok)
        return ctx_fail_details(c, ZY_E_VALIDATION, 400,
                                json_pack("{s:s}", "reason", "invalid_or_expired_token"),
                                arena_printf(c->arena, "The %s is invalid or has expired", what));
    repo_tenant(db, tenant);
    return 0;
}

static int reset_tx(struct ctx *c, struct db_conn *db)
{
    char tenant[37], user[37];
    if (take_token(c, db, "password_reset", "reset link", tenant, user) < 0)
        return -1;
    if (set_password(c, db, tenant, user, c->local, NULL, NULL, "password_reset") < 0)
        return -1;
    audit(c, db, tenant, user, "auth.password_reset");
    bool failed;
    json_t *who = users_find_by_id(db, tenant, user, &failed);
    if (who)
        auth_send_alert(c, json_string_value(json_object_get(who, "email")),
                        "Your password was reset",
                        "The password of your account was reset with an emailed link; every "
                        "session was ended.");
    json_decref(who);
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

/* What the password check before the transaction found. */
struct pw_change {
    char was[PASSWORD_HASH_MAX];
    char hash[PASSWORD_HASH_MAX];
};

static int reset(struct ctx *c)
{
    return hash_then_tx(c, "password", reset_tx);
}

static int change_tx(struct ctx *c, struct db_conn *db)
{
    const struct auth_user *u = c->user;
    const struct pw_change *pc = c->local;
    if (set_password(c, db, u->tenant_id, u->id, pc->hash, pc->was, u->session_id,
                     "password_change") < 0)
        return -1;
    audit(c, db, u->tenant_id, u->id, "auth.password_change");
    auth_send_alert(c, u->email, "Your password was changed",
                    "The password of your account was changed; your other sessions were ended.");
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

/* Both argon2id runs (check the current password, hash the new one) happen before the
 * transaction; the update then requires the stored hash to be the one checked. */
static int change(struct ctx *c)
{
    const struct auth_user *u = c->user;
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    struct pw_change *pc = arena_alloc(c->arena, sizeof(*pc));
    struct db_rows *r = db_query(db,
                                 "SELECT password_hash FROM users WHERE id = $1 AND "
                                 "tenant_id = $2",
                                 DB_ARGS(DB_TEXT(u->id), DB_TEXT(u->tenant_id)));
    if (!r || !db_next(r)) {
        db_rows_free(r);
        return ctx_fail_db(c, db, NULL);
    }
    bool ok = !db_is_null(r, 0) && db_textlen(r, 0) < sizeof(pc->was);
    if (ok)
        snprintf(pc->was, sizeof(pc->was), "%s", db_text(r, 0));
    db_rows_free(r);
    ok = ok && password_verify(pc->was, jx_get_str(c->body, "currentPassword"));
    if (!ok)
        return ctx_fail_details(c, ZY_E_VALIDATION, 400,
                                json_pack("{s:s}", "reason", "wrong_password"),
                                "The current password is wrong");
    if (password_hash(jx_get_str(c->body, "newPassword"), pc->hash) < 0)
        return ctx_fail(c, ZY_E_INTERNAL, "password hashing failed");
    c->local = pc;
    return ctx_tx(c, change_tx);
}

static int verify_email_tx(struct ctx *c, struct db_conn *db)
{
    char tenant[37], user[37];
    if (take_token(c, db, "email_verification", "verification link", tenant, user) < 0)
        return -1;
    char now[32];
    auth_iso(auth_now(), now);
    if (db_exec(db,
                "UPDATE users SET email_verified = $3, updated_at = $4 WHERE id = $2"
                " AND tenant_id = $1",
                DB_ARGS(DB_TEXT(tenant), DB_TEXT(user), DB_BOOL(true), DB_TEXT(now))) < 0)
        return ctx_fail_db(c, db, NULL);
    audit(c, db, tenant, user, "auth.email_verified");
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

static int resend_tx(struct ctx *c, struct db_conn *db)
{
    const struct auth_user *u = c->user;
    bool failed;
    json_t *me = users_find_by_id(db, u->tenant_id, u->id, &failed);
    if (!me)
        return ctx_fail_db(c, db, NULL);
    bool verified = json_is_true(json_object_get(me, "emailVerified"));
    json_decref(me);
    if (verified)
        return ctx_fail(c, ZY_E_CONFLICT, "Email is already verified");
    char expires[32], token[TOKEN_LEN + 1];
    auth_iso(auth_now() + VERIFY_TTL_S, expires);
    if (otp_create(db, u->tenant_id, u->id, "email_verification", expires, token) < 0)
        return ctx_fail_db(c, db, NULL);
    auth_send_link(c, u->email, "email_verification", "Confirm your email address",
                   "Please confirm your email address by opening:", "/verify-email", token);
    ctx_json(c, 202, json_pack("{s:s}", "message", "A verification link is on its way."));
    return 0;
}

static int accept_tx(struct ctx *c, struct db_conn *db)
{
    char tenant[37], user[37];
    if (take_token(c, db, "invitation", "invitation", tenant, user) < 0)
        return -1;
    if (set_password(c, db, tenant, user, c->local, NULL, NULL, "invitation") < 0)
        return -1;
    /* the invitation reached this address: it is verified */
    if (db_exec(db,
                "UPDATE users SET status = 'active', email_verified = $3 WHERE id = $2"
                " AND tenant_id = $1 AND deleted_at IS NULL",
                DB_ARGS(DB_TEXT(tenant), DB_TEXT(user), DB_BOOL(true))) != 1)
        return ctx_fail_db(c, db, NULL);
    audit(c, db, tenant, user, "auth.invitation_accepted");
    json_t *out;
    if (auth_open_session(c, db, tenant, user, "aal1", "[\"pwd\"]", &out) < 0)
        return -1;
    ctx_json(c, 200, out);
    return 0;
}

static int accept(struct ctx *c)
{
    return hash_then_tx(c, "password", accept_tx);
}

static const struct route routes[] = {
    {.method = HTTP_POST,
     .path = "/auth/password/forgot",
     .tx = forgot_tx,
     .tag = "Auth",
     .summary = "Ask for a password reset link",
     .description = "Always 202, whether or not the address has an account.",
     .operation_id = "passwordForgot",
     .body = &forgot_s,
     .rate_limit = &rl_email,
     .responses = (const struct route_response[]){{202, "Accepted", NULL}, {0}}},
    {.method = HTTP_POST,
     .path = "/auth/password/reset",
     .handler = reset,
     .tag = "Auth",
     .summary = "Set a new password with a reset token",
     .operation_id = "passwordReset",
     .body = &reset_s,
     .rate_limit = &rl_token,
     .responses =
         (const struct route_response[]){{204, "Password changed; sessions ended", NULL}, {0}}},
    {.method = HTTP_POST,
     .path = "/auth/password/change",
     .handler = change,
     .tag = "Auth",
     .summary = "Change my password",
     .operation_id = "passwordChange",
     .body = &change_s,
     .auth = ROUTE_AUTH,
     .rate_limit = &rl_token,
     .responses =
         (const struct route_response[]){{204, "Changed; other sessions ended", NULL}, {0}}},
    {.method = HTTP_POST,
     .path = "/auth/verify-email",
     .tx = verify_email_tx,
     .tag = "Auth",
     .summary = "Confirm an email address",
     .operation_id = "verifyEmail",
     .body = &token_only_s,
     .rate_limit = &rl_token,
     .responses = (const struct route_response[]){{204, "Verified", NULL}, {0}}},
    {.method = HTTP_POST,
     .path = "/auth/invitations/accept",
     .handler = accept,
     .tag = "Auth",
     .summary = "Accept an invitation",
     .description = "Sets the invited user's password with the emailed token and signs in.",
     .operation_id = "acceptInvitation",
     .body = &accept_s,
     .rate_limit = &rl_token,
     .responses = (const struct route_response[]){{200, "Signed in", NULL}, {0}}},
    {.method = HTTP_POST,
     .path = "/auth/verify-email/resend",
     .tx = resend_tx,
     .tag = "Auth",
     .summary = "Send the verification email again",
     .operation_id = "verifyEmailResend",
     .auth = ROUTE_AUTH,
     .rate_limit = &rl_email,
     .responses = (const struct route_response[]){{202, "Sent", NULL}, {0}}},
};

const struct route_group password_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
};
