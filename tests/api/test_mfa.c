/* TOTP MFA end to end: enrolment with QR code, activation with recovery codes, the two-step
 * sign-in at aal2, codes that work once, recovery codes, and turning MFA off. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <liboath/oath.h>

#include "accounts.h"
#include "lib/jwt.h"
#include "lib/totp.h"
#include "services/auth.h"
#include "support.h"

static struct tenv t;
static void setup(void)
{
    static const char *const extra[] = {"RATE_LIMIT_ENABLED=false", NULL};
    tenv_setup(&t, extra, NULL, 0);
}
static void teardown(void)
{
    tenv_teardown(&t);
}
TestSuite(mfa, .init = setup, .fini = teardown, .timeout = 60);

static int req(const char *method, const char *path, const char *token, const char *body,
               json_t **out)
{
    return api_req(t.app, method, path, token, body, out);
}

struct user {
    char access[4096];
    unsigned char secret[64];
    size_t secret_len;
    char factor[37];
    char recovery[10][16];
};

static void signup(const char *email, struct user *u)
{
    struct account a;
    accounts_signup(t.app, email, NULL, &a);
    snprintf(u->access, sizeof(u->access), "%s", a.access);
}

static void code_at(const struct user *u, int64_t offset, char out[7])
{
    cr_assert_eq(totp_generate(u->secret, u->secret_len, auth_now() + offset, out), 0);
}

/* Enrols and activates with the code of the current step. */
static void enable_mfa(struct user *u)
{
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/auth/mfa/enroll", u->access, NULL, &r), 201);
    const char *b32 = json_string_value(json_object_get(r, "secret"));
    cr_assert_eq(strncmp(json_string_value(json_object_get(r, "otpauthUri")),
                         "otpauth://totp/Zygo:", 20),
                 0);
    cr_assert_eq(strncmp(json_string_value(json_object_get(r, "qrCode")),
                         "data:image/svg+xml;base64,", 26),
                 0);
    snprintf(u->factor, sizeof(u->factor), "%s", json_string_value(json_object_get(r, "factorId")));
    char *raw = NULL;
    cr_assert_eq(oath_init(), OATH_OK);
    cr_assert_eq(oath_base32_decode(b32, strlen(b32), &raw, &u->secret_len), OATH_OK);
    memcpy(u->secret, raw, u->secret_len);
    free(raw);
    json_decref(r);

    char body[128], code[7];
    snprintf(body, sizeof(body), "{\"factorId\":\"%s\",\"code\":\"000000\"}", u->factor);
    code_at(u, 0, code);
    if (strcmp(code, "000000") != 0)
        cr_assert_eq(req("POST", "/api/v1/auth/mfa/verify", u->access, body, NULL), 400);
    snprintf(body, sizeof(body), "{\"factorId\":\"%s\",\"code\":\"%s\"}", u->factor, code);
    cr_assert_eq(req("POST", "/api/v1/auth/mfa/verify", u->access, body, &r), 200);
    json_t *codes = json_object_get(r, "recoveryCodes");
    cr_assert_eq(json_array_size(codes), 10);
    for (size_t i = 0; i < 10; i++)
        snprintf(u->recovery[i], sizeof(u->recovery[i]), "%s",
                 json_string_value(json_array_get(codes, i)));
    json_decref(r);
}

static int login_challenge(const char *email, char cid[37])
{
    char body[256];
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse battery\"}",
             email);
    json_t *r;
    int st = req("POST", "/api/v1/auth/login", NULL, body, &r);
    cr_assert_eq(st, 200);
    cr_assert(json_is_true(json_object_get(r, "mfaRequired")), "no challenge");
    cr_assert_null(json_object_get(r, "accessToken"), "no tokens before the second factor");
    snprintf(cid, 37, "%s", json_string_value(json_object_get(r, "challengeId")));
    json_decref(r);
    return st;
}

static int answer(const char *cid, const char *field, const char *value, json_t **out)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"challengeId\":\"%s\",\"%s\":\"%s\"}", cid, field, value);
    return req("POST", "/api/v1/auth/mfa/challenge", NULL, body, out);
}

Test(mfa, enrol_then_two_step_sign_in_at_aal2)
{
    struct user u;
    signup("mia@example.com", &u);
    enable_mfa(&u);
    json_t *me;
    cr_assert_eq(req("GET", "/api/v1/users/me", u.access, NULL, &me), 200);
    cr_assert(json_is_true(json_object_get(me, "mfaEnabled")));
    json_decref(me);
    cr_assert_eq(req("POST", "/api/v1/auth/mfa/enroll", u.access, NULL, NULL), 409);

    char cid[37], next[7];
    login_challenge("mia@example.com", cid);
    code_at(&u, 30, next); /* the current step was spent on activation */
    json_t *r;
    cr_assert_eq(answer(cid, "code", next, &r), 200);
    const char *access = json_string_value(json_object_get(r, "accessToken"));
    struct jwt_claims cl;
    cr_assert_eq(jwt_verify(access, (const unsigned char *)t.cfg.jwt_secret,
                            strlen(t.cfg.jwt_secret), t.cfg.api_url, AUTH_AUDIENCE, auth_now(),
                            &cl, NULL),
                 JWT_OK);
    cr_assert_str_eq(cl.aal, "aal2");
    cr_assert_eq(cl.namr, 2);
    cr_assert_str_eq(cl.amr[1], "totp");
    jwt_claims_free(&cl);
    cr_assert_eq(req("GET", "/api/v1/users/me", access, NULL, NULL), 200);
    /* a refresh keeps the session's level */
    char body[256];
    snprintf(body, sizeof(body), "{\"refreshToken\":\"%s\"}",
             json_string_value(json_object_get(r, "refreshToken")));
    json_t *rr;
    cr_assert_eq(req("POST", "/api/v1/auth/refresh", NULL, body, &rr), 200);
    cr_assert_eq(jwt_verify(json_string_value(json_object_get(rr, "accessToken")),
                            (const unsigned char *)t.cfg.jwt_secret, strlen(t.cfg.jwt_secret),
                            t.cfg.api_url, AUTH_AUDIENCE, auth_now(), &cl, NULL),
                 JWT_OK);
    cr_assert_str_eq(cl.aal, "aal2");
    jwt_claims_free(&cl);
    json_decref(rr);
    json_decref(r);

    /* the same code never works twice, and a challenge is single-use */
    cr_assert_eq(answer(cid, "code", next, NULL), 401);
    login_challenge("mia@example.com", cid);
    cr_assert_eq(answer(cid, "code", next, NULL), 401, "code replayed within its window");
    login_challenge("mia@example.com", cid);
    cr_assert_eq(answer(cid, "code", "12345x", NULL), 401);
    cr_assert_eq(answer(cid, "code", "1234", NULL), 400, "not six characters");
}

Test(mfa, recovery_codes_work_once)
{
    struct user u;
    signup("rex@example.com", &u);
    enable_mfa(&u);
    char cid[37];
    login_challenge("rex@example.com", cid);
    char lower[16];
    snprintf(lower, sizeof(lower), "%s", u.recovery[3]);
    for (char *p = lower; *p; p++)
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p + 32);
    cr_assert_eq(answer(cid, "recoveryCode", lower, NULL), 200, "typed in lower case is fine");
    login_challenge("rex@example.com", cid);
    cr_assert_eq(answer(cid, "recoveryCode", u.recovery[3], NULL), 401, "spent");
    login_challenge("rex@example.com", cid);
    cr_assert_eq(answer(cid, "recoveryCode", u.recovery[4], NULL), 200);
}

Test(mfa, disable_needs_a_current_code)
{
    struct user u;
    signup("sam@example.com", &u);
    enable_mfa(&u);
    cr_assert_eq(req("POST", "/api/v1/auth/mfa/disable", u.access, "{\"code\":\"999999\"}", NULL),
                 400);
    char body[64], next[7];
    code_at(&u, 30, next);
    snprintf(body, sizeof(body), "{\"code\":\"%s\"}", next);
    cr_assert_eq(req("POST", "/api/v1/auth/mfa/disable", u.access, body, NULL), 204);
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/auth/login", NULL,
                     "{\"email\":\"sam@example.com\",\"password\":\"correct horse battery\"}", &r),
                 200);
    cr_assert_not_null(json_object_get(r, "accessToken"), "plain sign-in again");
    json_decref(r);
    cr_assert_eq(req("POST", "/api/v1/auth/mfa/enroll", NULL, NULL, NULL), 401);
}
