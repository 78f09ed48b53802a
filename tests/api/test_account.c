/* Password and email flows through the real mail path (the development outbox): forgotten
 * password without enumeration, reset with a single-use token that ends every session, change
 * while signed in, and email verification. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "accounts.h"
#include "jobtest.h"
#include "services/mailer.h"
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
TestSuite(account, .init = setup, .fini = teardown, .timeout = 60);

static int req(const char *method, const char *path, const char *token, const char *body,
               json_t **out)
{
    return api_req(t.app, method, path, token, body, out);
}

static void signup(const char *email, char access[4096])
{
    struct account a;
    accounts_signup(t.app, email, NULL, &a);
    snprintf(access, 4096, "%s", a.access);
}

/* The token in the newest outbox message of this kind to this address ("" if none), and how
 * many such messages there are. */
static size_t outbox_token(const char *to, const char *kind, char token[128])
{
    json_t *msgs;
    token[0] = '\0';
    jobtest_drain(&t, NULL, 10000); /* emails are queued jobs */
    cr_assert_eq(mailer_outbox_read(t.dir, &msgs), 0);
    size_t n = 0, i;
    json_t *m;
    json_array_foreach(msgs, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "to")), to) != 0 ||
            strcmp(json_string_value(json_object_get(m, "kind")), kind) != 0)
            continue;
        n++;
        const char *p = strstr(json_string_value(json_object_get(m, "text")), "?token=");
        cr_assert_not_null(p);
        p += 7;
        size_t len = strcspn(p, "\n ");
        snprintf(token, 128, "%.*s", (int)len, p);
    }
    json_decref(msgs);
    return n;
}

/* How many outbox messages of this kind went to this address. */
static size_t outbox_token_kind(const char *to, const char *kind)
{
    json_t *msgs, *m;
    size_t i, n = 0;
    jobtest_drain(&t, NULL, 10000);
    cr_assert_eq(mailer_outbox_read(t.dir, &msgs), 0);
    json_array_foreach(msgs, i, m)
    {
        n += strcmp(json_string_value(json_object_get(m, "to")), to) == 0 &&
             strcmp(json_string_value(json_object_get(m, "kind")), kind) == 0;
    }
    json_decref(msgs);
    return n;
}

Test(account, forgot_does_not_enumerate_and_reset_ends_sessions)
{
    char access[4096], token[128], body[256];
    signup("pat@example.com", access);
    json_t *a, *b;
    cr_assert_eq(req("POST", "/api/v1/auth/password/forgot", NULL,
                     "{\"email\":\"nobody@example.com\"}", &a),
                 202);
    cr_assert_eq(req("POST", "/api/v1/auth/password/forgot", NULL,
                     "{\"email\":\"pat@example.com\"}", &b),
                 202);
    cr_assert(json_equal(a, b), "the same answer either way");
    json_decref(a);
    json_decref(b);
    cr_assert_eq(outbox_token("nobody@example.com", "password_reset", token), 0);
    cr_assert_eq(outbox_token("pat@example.com", "password_reset", token), 1);
    cr_assert_gt(strlen(token), 20);

    snprintf(body, sizeof(body), "{\"token\":\"%s\",\"password\":\"a brand new secret\"}", token);
    cr_assert_eq(req("POST", "/api/v1/auth/password/reset", NULL, body, NULL), 204);
    cr_assert_eq(req("GET", "/api/v1/users/me", access, NULL, NULL), 401,
                 "a reset ends every session");
    cr_assert_eq(accounts_login(t.app, "pat@example.com", "correct horse battery", NULL), 401);
    cr_assert_eq(accounts_login(t.app, "pat@example.com", "a brand new secret", NULL), 200);
    cr_assert_eq(outbox_token_kind("pat@example.com", "security_alert"), 1);
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/auth/password/reset", NULL, body, &r), 400, "single use");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "details"), "reason")),
                     "invalid_or_expired_token");
    json_decref(r);
}

Test(account, change_keeps_this_session_and_ends_the_others)
{
    char a1[4096], body[256];
    signup("quinn@example.com", a1);
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/auth/login", NULL,
                     "{\"email\":\"quinn@example.com\",\"password\":\"correct horse battery\"}",
                     &r),
                 200);
    char a2[4096];
    snprintf(a2, sizeof(a2), "%s", json_string_value(json_object_get(r, "accessToken")));
    json_decref(r);
    cr_assert_eq(req("POST", "/api/v1/auth/password/change", a1,
                     "{\"currentPassword\":\"wrong\",\"newPassword\":\"a brand new secret\"}",
                     NULL),
                 400);
    snprintf(body, sizeof(body), "{\"currentPassword\":\"correct horse battery\","
                                 "\"newPassword\":\"a brand new secret\"}");
    cr_assert_eq(req("POST", "/api/v1/auth/password/change", a1, body, NULL), 204);
    cr_assert_eq(req("GET", "/api/v1/users/me", a1, NULL, NULL), 200);
    cr_assert_eq(req("GET", "/api/v1/users/me", a2, NULL, NULL), 401);
    cr_assert_eq(accounts_login(t.app, "quinn@example.com", "a brand new secret", NULL), 200);
    cr_assert_eq(outbox_token_kind("quinn@example.com", "security_alert"), 1,
                 "the owner hears about the change");
}

Test(account, signup_sends_a_verification_link)
{
    char access[4096], token[128], body[256];
    signup("vera@example.com", access);
    cr_assert_eq(outbox_token("vera@example.com", "email_verification", token), 1);
    json_t *me;
    cr_assert_eq(req("GET", "/api/v1/users/me", access, NULL, &me), 200);
    cr_assert(json_is_false(json_object_get(me, "emailVerified")));
    json_decref(me);
    /* a resend replaces the first link */
    cr_assert_eq(req("POST", "/api/v1/auth/verify-email/resend", access, NULL, NULL), 202);
    char old[128];
    snprintf(old, sizeof(old), "%s", token);
    cr_assert_eq(outbox_token("vera@example.com", "email_verification", token), 2);
    snprintf(body, sizeof(body), "{\"token\":\"%s\"}", old);
    cr_assert_eq(req("POST", "/api/v1/auth/verify-email", NULL, body, NULL), 400);
    snprintf(body, sizeof(body), "{\"token\":\"%s\"}", token);
    cr_assert_eq(req("POST", "/api/v1/auth/verify-email", NULL, body, NULL), 204);
    cr_assert_eq(req("GET", "/api/v1/users/me", access, NULL, &me), 200);
    cr_assert(json_is_true(json_object_get(me, "emailVerified")));
    json_decref(me);
    cr_assert_eq(req("POST", "/api/v1/auth/verify-email/resend", access, NULL, NULL), 409);
}
