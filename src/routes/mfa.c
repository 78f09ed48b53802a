/* mfa.c — see mfa.h. */
#include "lib/common.h"

#include "http/app.h"
#include "lib/jsonx.h"
#include "lib/secretbox.h"
#include "lib/token.h"
#include "lib/totp.h"
#include "lib/uuid.h"
#include "middleware/rate_limit.h"
#include "repos/audit.h"
#include "services/audit.h"
#include "repos/mfa.h"
#include "repos/repo.h"
#include "routes/mfa.h"
#include "routes/schemas.h"
#include "services/auth.h"

#define MFA_RECOVERY_CODES 10
#define MFA_ISSUER "Zygo"

static const struct rl_policy rl_mfa = {"auth-mfa", 30, 300};

static const struct schema code_s = {.type = SCHEMA_STRING,
                                     .has_min = true,
                                     .min = 6,
                                     .has_max = true,
                                     .max = 6,
                                     .example = "\"123456\""};

static const struct schema verify_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"factorId", &schemas_uuid, true}, {"code", &code_s, true}, {NULL}}};
static const struct schema challenge_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"challengeId", &schemas_uuid, true},
        {"code", &code_s, false},
        {"recoveryCode", &(const struct schema){.type = SCHEMA_STRING, .has_max = true, .max = 32},
         false},
        {NULL}}};
static const struct schema disable_s = {
    .type = SCHEMA_OBJECT, .props = (const struct schema_prop[]){{"code", &code_s, true}, {NULL}}};

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

/* The factor's secret, opened from its sealed form. AD binds it to the factor row. */
static int open_secret(struct ctx *c, const struct mfa_factor *f, unsigned char **secret,
                       size_t *len)
{
    char ad[64];
    snprintf(ad, sizeof(ad), "mfa_factors:%s", f->id);
    if (secretbox_open(app_keyring(c->app), ad, f->secret_sealed, secret, len) != SECRETBOX_OK)
        return ctx_fail(c, ZY_E_INTERNAL, "cannot open the MFA secret of factor %s", f->id);
    return 0;
}

/* Checks a code against the user's active factor and spends its time step. 1 good, 0 wrong,
 * -1 error (set on c). */
static int check_code(struct ctx *c, struct db_conn *db, const char *tenant, const char *user,
                      const char *code)
{
    struct mfa_factor f;
    int found = mfa_factor_get(db, tenant, user, NULL, true, &f);
    if (found <= 0)
        return found < 0 ? ctx_fail_db(c, db, NULL) : 0;
    unsigned char *secret;
    size_t len;
    if (open_secret(c, &f, &secret, &len) < 0)
        return -1;
    int64_t step;
    bool ok = totp_verify_after(secret, len, code, auth_now(), f.last_step, &step);
    secretbox_free(secret, len);
    if (!ok)
        return 0;
    char now[32];
    auth_iso(auth_now(), now);
    int spent = mfa_factor_spend(db, f.id, step, now); /* a code works once, even in a race */
    return spent < 0 ? ctx_fail_db(c, db, NULL) : spent;
}

static int enroll(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    const struct auth_user *u = c->user;
    struct mfa_factor f;
    int found = mfa_factor_get(db, u->tenant_id, u->id, NULL, true, &f);
    if (found < 0)
        return ctx_fail_db(c, db, NULL);
    if (found)
        return ctx_fail(c, ZY_E_CONFLICT, "MFA is already enabled; disable it first");
    unsigned char secret[TOTP_SECRET_BYTES];
    char b32[TOTP_SECRET_B32_LEN + 1], id[37], ad[64];
    totp_secret_new(secret);
    totp_base32(secret, sizeof(secret), b32, sizeof(b32));
    uuid_v7(id);
    snprintf(ad, sizeof(ad), "mfa_factors:%s", id);
    char *sealed = NULL;
    int rc = secretbox_seal(app_keyring(c->app), ad, secret, sizeof(secret), &sealed);
    memset(secret, 0, sizeof(secret));
    if (rc != SECRETBOX_OK)
        return ctx_fail(c, ZY_E_INTERNAL, "cannot seal the MFA secret");
    rc = mfa_factor_create(db, u->tenant_id, u->id, id, sealed);
    free(sealed);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    char *uri = totp_otpauth_uri(MFA_ISSUER, u->email, b32);
    char *qr = uri ? totp_qr_data_uri(uri) : NULL;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s?}", "factorId", id, "type", "totp", "secret",
                          b32, "otpauthUri", uri ? uri : "", "qrCode", qr);
    free(uri);
    free(qr);
    memset(b32, 0, sizeof(b32));
    ctx_json(c, 201, o);
    return 0;
}

static int verify_tx(struct ctx *c, struct db_conn *db)
{
    const struct auth_user *u = c->user;
    struct mfa_factor f;
    int found = mfa_factor_get(db, u->tenant_id, u->id, jx_get_str(c->body, "factorId"), false, &f);
    if (found < 0)
        return ctx_fail_db(c, db, NULL);
    if (!found || strcmp(f.status, "unverified") != 0)
        return ctx_fail(c, ZY_E_NOT_FOUND, "MFA factor with ID %s not found",
                        jx_get_str(c->body, "factorId"));
    unsigned char *secret;
    size_t len;
    if (open_secret(c, &f, &secret, &len) < 0)
        return -1;
    int64_t step;
    bool ok = totp_verify(secret, len, jx_get_str(c->body, "code"), auth_now(), &step);
    secretbox_free(secret, len);
    if (!ok)
        return ctx_fail(c, ZY_E_VALIDATION, "Invalid MFA code");
    char now[32];
    auth_iso(auth_now(), now);
    char codes[MFA_RECOVERY_CODES][TOKEN_RECOVERY_LEN + 1];
    char hashes[MFA_RECOVERY_CODES][TOKEN_HASH_LEN + 1];
    const char *hp[MFA_RECOVERY_CODES];
    json_t *list = json_array();
    for (int i = 0; i < MFA_RECOVERY_CODES; i++) {
        token_recovery_code(codes[i]);
        token_hash(codes[i], hashes[i]);
        hp[i] = hashes[i];
        json_array_append_new(list, json_string(codes[i]));
    }
    if (mfa_factor_verify(db, f.id, step, now) < 0 ||
        mfa_set_enabled(db, u->tenant_id, u->id, true) < 0 ||
        mfa_recovery_replace(db, u->tenant_id, u->id, hp, MFA_RECOVERY_CODES) < 0 ||
        db_exec(db, "UPDATE sessions SET aal = 'aal2', amr = '[\"pwd\",\"totp\"]' WHERE id = $1",
                DB_ARGS(DB_TEXT(u->session_id))) < 0) {
        json_decref(list);
        return ctx_fail_db(c, db, NULL);
    }
    audit(c, db, u->tenant_id, u->id, "mfa.enable");
    auth_send_alert(c, u->email, "Two-factor authentication is on",
                    "An authenticator app now protects your account.");
    memset(codes, 0, sizeof(codes));
    /* shown once: only their hashes are kept */
    ctx_json(c, 200, json_pack("{s:o, s:b}", "recoveryCodes", list, "mfaEnabled", 1));
    return 0;
}

static int challenge_tx(struct ctx *c, struct db_conn *db)
{
    const char *code = jx_get_str(c->body, "code"), *rcode = jx_get_str(c->body, "recoveryCode");
    if (!code == !rcode)
        return ctx_fail(c, ZY_E_VALIDATION, "Give either code or recoveryCode");
    char now[32];
    auth_iso(auth_now(), now);
    struct mfa_challenge ch;
    db_set_rls_bypass(db, true); /* whose challenge it is decides the tenant */
    int taken = mfa_challenge_take(db, jx_get_str(c->body, "challengeId"), now, &ch);
    db_set_rls_bypass(db, false);
    if (taken < 0)
        return ctx_fail_db(c, db, NULL);
    if (!taken)
        return ctx_fail(c, ZY_E_UNAUTHORIZED, "MFA challenge is invalid or has expired");
    repo_tenant(db, ch.tenant_id);
    int ok;
    if (code) {
        ok = check_code(c, db, ch.tenant_id, ch.user_id, code);
    } else {
        char norm[TOKEN_RECOVERY_LEN + 1], hash[TOKEN_HASH_LEN + 1];
        ok = 0;
        if (token_recovery_normalize(rcode, norm) == 0) {
            token_hash(norm, hash);
            ok = mfa_recovery_spend(db, ch.tenant_id, ch.user_id, hash, now);
            if (ok < 0)
                return ctx_fail_db(c, db, NULL);
        }
    }
    if (ok < 0)
        return -1;
    if (!ok) {
        audit(c, db, ch.tenant_id, ch.user_id, "auth.mfa_failed");
        ctx_fail(c, ZY_E_UNAUTHORIZED, "Invalid MFA code");
        /* keep the audit row and the spent challenge: a new sign-in is needed */
        if (db_commit(db) < 0 || db_begin(db) < 0)
            ctx_fail_db(c, db, NULL);
        return -1;
    }
    audit(c, db, ch.tenant_id, ch.user_id, code ? "auth.login_mfa" : "auth.login_recovery_code");
    json_t *out;
    if (auth_open_session(c, db, ch.tenant_id, ch.user_id, "aal2",
                          code ? "[\"pwd\",\"totp\"]" : "[\"pwd\",\"recovery\"]", &out) < 0)
        return -1;
    ctx_json(c, 200, out);
    return 0;
}

static int disable_tx(struct ctx *c, struct db_conn *db)
{
    const struct auth_user *u = c->user;
    int ok = check_code(c, db, u->tenant_id, u->id, jx_get_str(c->body, "code"));
    if (ok < 0)
        return -1;
    if (!ok)
        return ctx_fail(c, ZY_E_VALIDATION, "Invalid MFA code");
    if (mfa_clear(db, u->tenant_id, u->id) < 0)
        return ctx_fail_db(c, db, NULL);
    audit(c, db, u->tenant_id, u->id, "mfa.disable");
    auth_send_alert(c, u->email, "Two-factor authentication is off",
                    "Two-factor authentication was turned off for your account.");
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

static const struct route routes[] = {
    {.method = HTTP_POST,
     .path = "/auth/mfa/enroll",
     .handler = enroll,
     .tag = "Auth",
     .summary = "Start TOTP enrolment",
     .description = "Returns the secret, an otpauth:// URI and a QR code (SVG data URI).",
     .operation_id = "mfaEnroll",
     .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{201, "Factor created", NULL}, {0}}},
    {.method = HTTP_POST,
     .path = "/auth/mfa/verify",
     .tx = verify_tx,
     .tag = "Auth",
     .summary = "Activate TOTP",
     .operation_id = "mfaVerify",
     .auth = ROUTE_AUTH,
     .body = &verify_s,
     .rate_limit = &rl_mfa,
     .responses =
         (const struct route_response[]){{200, "Enabled; recovery codes shown once", NULL}, {0}}},
    {.method = HTTP_POST,
     .path = "/auth/mfa/challenge",
     .tx = challenge_tx,
     .tag = "Auth",
     .summary = "Complete an MFA sign-in",
     .description = "With the challengeId from /auth/login and a TOTP code (or a recovery code).",
     .operation_id = "mfaChallenge",
     .body = &challenge_s,
     .rate_limit = &rl_mfa,
     .responses = (const struct route_response[]){{200, "Signed in at aal2", NULL}, {0}}},
    {.method = HTTP_POST,
     .path = "/auth/mfa/disable",
     .tx = disable_tx,
     .tag = "Auth",
     .summary = "Turn MFA off",
     .operation_id = "mfaDisable",
     .auth = ROUTE_AUTH,
     .body = &disable_s,
     .rate_limit = &rl_mfa,
     .responses = (const struct route_response[]){{204, "Disabled", NULL}, {0}}},
};

const struct route_group mfa_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
};
