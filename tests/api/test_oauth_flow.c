/* Sign-in with an OAuth/OIDC provider end to end: zygo's routes, the real libcurl exchange and
 * a loopback fake provider that enforces PKCE. Covers new users, returning users, linking by a
 * verified email, state mismatch and a bad verifier. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "dbtest.h"
#include "fake_oidc.h"
#include "support.h"

#define REDIRECT "http://localhost:3000/api/v1/auth/oauth/acme/callback"

static struct tenv t;
static struct fake_oidc *idp;
static char env_auth[300], env_token[300], env_userinfo[300];

static void setup(void)
{
    struct fake_oidc_options o = {.redirect_uri = REDIRECT};
    idp = fake_oidc_start(&o, NULL);
    cr_assert_not_null(idp);
    char url[256];
    snprintf(env_auth, sizeof(env_auth), "OAUTH_ACME_AUTHORIZE_URL=%s",
             fake_oidc_url(idp, "/authorize", url, sizeof(url)));
    snprintf(env_token, sizeof(env_token), "OAUTH_ACME_TOKEN_URL=%s",
             fake_oidc_url(idp, "/token", url, sizeof(url)));
    snprintf(env_userinfo, sizeof(env_userinfo), "OAUTH_ACME_USERINFO_URL=%s",
             fake_oidc_url(idp, "/userinfo", url, sizeof(url)));
    const char *extra[] = {"RATE_LIMIT_ENABLED=false",
                           "API_URL=http://localhost:3000",
                           "OAUTH_PROVIDERS=acme",
                           "OAUTH_ACME_CLIENT_ID=zygo-client",
                           "OAUTH_ACME_CLIENT_SECRET=zygo-secret",
                           env_auth,
                           env_token,
                           env_userinfo,
                           NULL};
    tenv_setup(&t, extra, NULL, 0);
}

static void teardown(void)
{
    tenv_teardown(&t);
    fake_oidc_stop(idp);
}

TestSuite(oauth_flow, .init = setup, .fini = teardown, .timeout = 60);

struct flow {
    char cookie[256];
    char code[512];
    char state[128];
};

/* Begin at zygo, then the browser's trip through the provider's consent. */
static void start(struct flow *f)
{
    struct ctx *c = app_request(t.app, "GET", "/api/v1/auth/oauth/acme", NULL, NULL, 0);
    cr_assert_eq(c->res.status, 302, "%.*s", (int)c->res.body_len, c->res.body);
    const char *set = ctx_res_header(c, "Set-Cookie");
    cr_assert_not_null(set);
    cr_assert_not_null(strstr(set, "HttpOnly"));
    snprintf(f->cookie, sizeof(f->cookie), "Cookie: %.*s", (int)strcspn(set, ";"), set);
    char loc[4096];
    long st = fake_oidc_browse(ctx_res_header(c, "Location"), loc, sizeof(loc));
    app_ctx_free(c);
    cr_assert_eq(st, 302);
    cr_assert(fake_oidc_query_param(loc, "code", f->code, sizeof(f->code)));
    cr_assert(fake_oidc_query_param(loc, "state", f->state, sizeof(f->state)));
    struct fake_oidc_seen seen;
    fake_oidc_seen(idp, &seen);
    cr_assert_str_eq(seen.code_challenge_method, "S256");
}

static int finish(const struct flow *f, const char *cookie, json_t **out)
{
    char path[1024];
    snprintf(path, sizeof(path), "/api/v1/auth/oauth/acme/callback?code=%s&state=%s", f->code,
             f->state);
    const char *h[] = {cookie, NULL};
    struct ctx *c = app_request(t.app, "GET", path, cookie ? h : NULL, NULL, 0);
    int st = c->res.status;
    if (out)
        *out = ctx_body_json(c);
    app_ctx_free(c);
    return st;
}

static const char *user_field(json_t *r, const char *k)
{
    return json_string_value(json_object_get(json_object_get(r, "user"), k));
}

Test(oauth_flow, new_user_then_the_same_user_again)
{
    struct fake_oidc_user u = {.sub = "sub-123", .email = "Oli@Example.com",
                               .email_verified = true, .name = "Oli Oak",
                               .given_name = "Oli", .family_name = "Oak"};
    fake_oidc_set_user(idp, &u);
    struct flow f;
    start(&f);
    json_t *r;
    cr_assert_eq(finish(&f, f.cookie, &r), 200);
    cr_assert_str_eq(user_field(r, "email"), "oli@example.com");
    cr_assert(json_is_true(json_object_get(json_object_get(r, "user"), "emailVerified")));
    cr_assert_not_null(json_object_get(r, "accessToken"));
    char first[37];
    snprintf(first, sizeof(first), "%s", user_field(r, "id"));
    json_decref(r);
    cr_assert_eq(finish(&f, f.cookie, NULL), 400, "a state is used once");

    start(&f);
    cr_assert_eq(finish(&f, f.cookie, &r), 200);
    cr_assert_str_eq(user_field(r, "id"), first, "found by provider + subject");
    json_decref(r);
}

Test(oauth_flow, links_an_existing_user_by_verified_email)
{
    json_t *r;
    const char *h[] = {"Content-Type: application/json", NULL};
    const char *body = "{\"email\":\"pam@example.com\",\"password\":\"correct horse battery\","
                       "\"tenantName\":\"Pam\"}";
    struct ctx *c = app_request(t.app, "POST", "/api/v1/auth/signup", h, body, strlen(body));
    cr_assert_eq(c->res.status, 201);
    r = ctx_body_json(c);
    char existing[37];
    snprintf(existing, sizeof(existing), "%s", user_field(r, "id"));
    json_decref(r);
    app_ctx_free(c);

    struct fake_oidc_user unverified = {.sub = "sub-x", .email = "pam@example.com",
                                        .email_verified = false};
    fake_oidc_set_user(idp, &unverified);
    struct flow f;
    start(&f);
    cr_assert_eq(finish(&f, f.cookie, NULL), 409, "an unverified address never links");

    struct fake_oidc_user verified = {.sub = "sub-pam", .email = "pam@example.com",
                                      .email_verified = true};
    fake_oidc_set_user(idp, &verified);
    start(&f);
    cr_assert_eq(finish(&f, f.cookie, &r), 200);
    cr_assert_str_eq(user_field(r, "id"), existing);
    json_decref(r);
}

Test(oauth_flow, state_mismatch_is_refused)
{
    struct fake_oidc_user u = {.sub = "sub-s", .email = "sid@example.com", .email_verified = true};
    fake_oidc_set_user(idp, &u);
    struct flow mine, theirs;
    start(&mine);
    start(&theirs);
    /* a callback with someone else's state in this browser (login CSRF) */
    json_t *r;
    cr_assert_eq(finish(&theirs, mine.cookie, &r), 400);
    cr_assert_not_null(strstr(json_string_value(json_object_get(r, "message")), "state"));
    json_decref(r);
    cr_assert_eq(finish(&mine, NULL, NULL), 400, "no cookie, no sign-in");
    cr_assert_eq(finish(&mine, mine.cookie, NULL), 200);
}

Test(oauth_flow, bad_verifier_is_refused_by_the_provider)
{
    struct fake_oidc_user u = {.sub = "sub-v", .email = "val@example.com", .email_verified = true};
    fake_oidc_set_user(idp, &u);
    struct flow f;
    start(&f);
    /* the stored PKCE verifier no longer matches the challenge the provider saw */
    struct db_conn *c = dbt_acquire(t.db);
    cr_assert_eq(db_exec(c, "UPDATE oauth_states SET code_verifier = $2 WHERE state = $1",
                         DB_ARGS(DB_TEXT(f.state),
                                 DB_TEXT("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"))),
                 1, "%s", db_errmsg(c));
    db_release(c);
    json_t *r;
    cr_assert_eq(finish(&f, f.cookie, &r), 401);
    cr_assert_str_eq(json_string_value(json_object_get(r, "error")), "AUTH_UNAUTHORIZED");
    json_decref(r);
    struct fake_oidc_seen seen;
    fake_oidc_seen(idp, &seen);
    cr_assert_str_eq(seen.token_error, "invalid_grant");
}

Test(oauth_flow, unknown_provider_is_404)
{
    struct ctx *c = app_request(t.app, "GET", "/api/v1/auth/oauth/myspace", NULL, NULL, 0);
    cr_assert_eq(c->res.status, 404);
    app_ctx_free(c);
}
