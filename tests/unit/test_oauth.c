/* OAuth 2.0 / OpenID Connect (services/oauth): PKCE against RFC 7636 Appendix B, the
 * authorization URL, states, presets and configuration, and the whole code flow end to end
 * against the fake provider on loopback (tests/support/fake_oidc), errors included. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <sodium.h>
#include <time.h>

#include "services/oauth.h"
#include "fake_oidc.h"
#include "support.h"

#define REDIRECT "http://127.0.0.1:3999/api/v1/auth/oauth/fake/callback"
#define SECRET "s3cret with spaces&symbols=+/%"
#define RFC_VERIFIER "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" /* RFC 7636 Appendix B */

static const struct fake_oidc_user alice = {
    .sub = "alice-123",
    .email = "alice@example.com",
    .email_verified = true,
    .name = "Alice Liddell",
    .given_name = "Alice",
    .family_name = "Liddell",
    .picture = "https://example.com/alice.png",
    .github_id = 583231,
    .login = "alice",
};

/* ---- helpers ---- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

struct fx {
    struct fake_oidc *f;
    struct oauth_provider p;
};

/* A fake provider and a provider description pointing at it. */
static void fx_start(struct fx *x, enum oauth_kind kind, bool id_token)
{
    struct fake_oidc_options o = {
        .client_id = "zygo-client",
        .client_secret = SECRET,
        .redirect_uri = REDIRECT,
        .id_token = id_token,
        .github = kind == OAUTH_GITHUB,
    };
    x->f = fake_oidc_start(&o, &alice);
    cr_assert_not_null(x->f);
    char u[256];
    oauth_provider_init(&x->p, "fake", kind);
    oauth_set(&x->p.authorize_url, fake_oidc_url(x->f, "/authorize", u, sizeof(u)));
    oauth_set(&x->p.token_url, fake_oidc_url(x->f, "/token", u, sizeof(u)));
    if (kind == OAUTH_GITHUB) {
        oauth_set(&x->p.userinfo_url, fake_oidc_url(x->f, "/user", u, sizeof(u)));
        oauth_set(&x->p.emails_url, fake_oidc_url(x->f, "/user/emails", u, sizeof(u)));
    } else {
        oauth_set(&x->p.issuer, fake_oidc_base(x->f));
        oauth_set(&x->p.userinfo_url, fake_oidc_url(x->f, "/userinfo", u, sizeof(u)));
    }
    oauth_set(&x->p.client_id, "zygo-client");
    oauth_set(&x->p.client_secret, SECRET);
    oauth_set(&x->p.redirect_uri, REDIRECT);
    char err[256];
    cr_assert_eq(oauth_provider_validate(&x->p, err, sizeof(err)), 0, "%s", err);
}

static void fx_stop(struct fx *x)
{
    fake_oidc_stop(x->f);
    oauth_provider_free(&x->p);
}

/* The browser's part: begin, GET the authorization URL, take code and state from the
 * redirect to our callback. */
static void authorize(struct fx *x, struct oauth_begin *b, char *code, size_t n)
{
    cr_assert_eq(oauth_begin(&x->p, "/dashboard", b), 0);
    char loc[4096];
    long status = fake_oidc_browse(b->authorize_url, loc, sizeof(loc));
    cr_assert_eq(status, 302, "authorize answered %ld", status);
    cr_assert(strncmp(loc, REDIRECT "?", strlen(REDIRECT) + 1) == 0, "Location: %s", loc);
    char state[256];
    cr_assert(fake_oidc_query_param(loc, "state", state, sizeof(state)));
    cr_assert(oauth_state_valid(state));
    cr_assert(oauth_state_equal(state, b->state), "the state came back changed");
    cr_assert(fake_oidc_query_param(loc, "code", code, n));
    cr_assert_gt(strlen(code), 0);
}

/* An error text never carries the secrets involved. */
static void assert_no_secrets(const char *err, const char *code, const struct oauth_begin *b)
{
    cr_assert_null(strstr(err, SECRET), "client secret in: %s", err);
    cr_assert_null(strstr(err, b->code_verifier), "verifier in: %s", err);
    if (code && *code)
        cr_assert_null(strstr(err, code), "code in: %s", err);
}

/* Runs the flow with `fault` set before the callback and expects `want`. */
static void expect_failure(enum oauth_kind kind, bool id_token, enum fake_oidc_fault fault,
                           int want, const char *needle)
{
    struct fx x;
    fx_start(&x, kind, id_token);
    struct oauth_begin b;
    char code[256], err[512];
    authorize(&x, &b, code, sizeof(code));
    fake_oidc_set_fault(x.f, fault, 0);
    struct oauth_identity id;
    int rc = oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err));
    cr_assert_eq(rc, want, "rc %d (%s), want %d: %s", rc, oauth_strerror(rc), want, err);
    cr_assert_not_null(strstr(err, needle), "\"%s\" not in: %s", needle, err);
    cr_assert_null(id.subject);
    assert_no_secrets(err, code, &b);
    oauth_begin_free(&b);
    fx_stop(&x);
}

static bool query_has(const char *url, const char *name, const char *value)
{
    char v[1024];
    return fake_oidc_query_param(url, name, v, sizeof(v)) && strcmp(v, value) == 0;
}

static int count_param(const char *url, const char *name)
{
    char pat[64];
    int n = 0;
    snprintf(pat, sizeof(pat), "%s=", name);
    const char *q = strchr(url, '?');
    for (const char *p = q; p && (p = strstr(p, pat)); p++)
        if (p[-1] == '?' || p[-1] == '&')
            n++;
    return n;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* ---- PKCE, states, URLs ---- */

Test(oauth, pkce_matches_rfc7636_appendix_b)
{
    /* RFC 7636 Appendix B: these 32 octets, base64url-encoded, are the code_verifier ... */
    static const unsigned char octets[32] = {116, 24,  223, 180, 151, 153, 224, 37,  79,  250, 96,
                                             125, 216, 173, 187, 186, 22,  212, 37,  77,  105, 214,
                                             191, 240, 91,  88,  5,   88,  83,  132, 141, 121};
    const char *verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    char encoded[64];
    sodium_bin2base64(encoded, sizeof(encoded), octets, sizeof(octets),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    cr_assert_str_eq(encoded, verifier);
    cr_assert(oauth_verifier_valid(verifier));
    /* ... and BASE64URL(SHA256(verifier)) is the code_challenge */
    char challenge[OAUTH_CHALLENGE_LEN + 1];
    oauth_pkce_challenge(verifier, challenge);
    cr_assert_str_eq(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
}

Test(oauth, verifier_rules)
{
    char v[200];
    memset(v, 'a', sizeof(v));
    v[43] = '\0';
    cr_assert(oauth_verifier_valid(v));
    v[42] = '\0';
    cr_assert_not(oauth_verifier_valid(v), "42 characters are too few");
    memset(v, 'a', sizeof(v));
    v[128] = '\0';
    cr_assert(oauth_verifier_valid(v));
    v[128] = 'a';
    v[129] = '\0';
    cr_assert_not(oauth_verifier_valid(v), "129 characters are too many");
    cr_assert(oauth_verifier_valid("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ-._~0123456789"));
    cr_assert_not(oauth_verifier_valid("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ+"));
    cr_assert_not(oauth_verifier_valid("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ/"));
    cr_assert_not(oauth_verifier_valid("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQ="));
    cr_assert_not(oauth_verifier_valid("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOP Q"));
    cr_assert_not(oauth_verifier_valid(NULL));
}

Test(oauth, authorization_url_has_every_parameter_encoded)
{
    struct oauth_provider p;
    oauth_provider_init(&p, "acme", OAUTH_OIDC);
    oauth_set(&p.authorize_url, "https://idp.example/oauth2/auth");
    oauth_set(&p.token_url, "https://idp.example/oauth2/token");
    oauth_set(&p.userinfo_url, "https://idp.example/userinfo");
    oauth_set(&p.client_id, "my client/1+2");
    oauth_set(&p.client_secret, "x");
    oauth_set(&p.redirect_uri, "https://api.example/cb?next=/x&b=c+d~");

    struct oauth_begin b;
    cr_assert_eq(oauth_begin(&p, "/settings?tab=security", &b), 0);
    const char *u = b.authorize_url;
    cr_assert(strncmp(u, "https://idp.example/oauth2/auth?", 32) == 0, "%s", u);
    /* every character of the query is unreserved or part of the encoding */
    for (const char *c = strchr(u, '?') + 1; *c; c++)
        cr_assert(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%&=", *c),
            "raw '%c' in %s", *c, u);
    /* exactly once each, with the right values */
    const char *names[] = {"response_type", "client_id",      "redirect_uri",          "scope",
                           "state",         "code_challenge", "code_challenge_method", "nonce"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        cr_assert_eq(count_param(u, names[i]), 1, "%s in %s", names[i], u);
    cr_assert(query_has(u, "response_type", "code"));
    cr_assert(query_has(u, "client_id", "my client/1+2"));
    cr_assert(query_has(u, "redirect_uri", "https://api.example/cb?next=/x&b=c+d~"));
    cr_assert(query_has(u, "scope", "openid email profile"));
    cr_assert(query_has(u, "state", b.state));
    cr_assert(query_has(u, "code_challenge", b.code_challenge));
    cr_assert(query_has(u, "code_challenge_method", "S256"));
    cr_assert(query_has(u, "nonce", b.nonce));
    /* spaces are %20, never '+'; reserved characters are escaped */
    cr_assert_not_null(strstr(u, "scope=openid%20email%20profile"));
    cr_assert_not_null(strstr(u, "client_id=my%20client%2F1%2B2"));
    cr_assert_not_null(
        strstr(u, "redirect_uri=https%3A%2F%2Fapi.example%2Fcb%3Fnext%3D%2Fx%26b%3Dc%2Bd~&"));
    /* the verifier never leaves; the challenge is its S256 */
    cr_assert_null(strstr(u, b.code_verifier));
    cr_assert_eq(strlen(b.code_verifier), OAUTH_VERIFIER_LEN);
    cr_assert(oauth_verifier_valid(b.code_verifier));
    char challenge[OAUTH_CHALLENGE_LEN + 1], nonce[OAUTH_NONCE_LEN + 1];
    oauth_pkce_challenge(b.code_verifier, challenge);
    cr_assert_str_eq(b.code_challenge, challenge);
    oauth_nonce_for(b.code_verifier, nonce);
    cr_assert_str_eq(b.nonce, nonce);
    cr_assert_str_neq(b.nonce, b.code_challenge);
    cr_assert(oauth_state_valid(b.state));
    cr_assert_str_eq(b.redirect_to, "/settings?tab=security");
    oauth_begin_free(&b);

    /* an authorization endpoint with a query of its own keeps it */
    oauth_set(&p.authorize_url, "https://idp.example/auth?prompt=consent");
    cr_assert_eq(oauth_begin(&p, NULL, &b), 0);
    cr_assert(strncmp(b.authorize_url, "https://idp.example/auth?prompt=consent&response_type=code",
                      58) == 0,
              "%s", b.authorize_url);
    cr_assert_null(b.redirect_to);
    oauth_begin_free(&b);
    oauth_provider_free(&p);
}

Test(oauth, github_authorization_url_has_no_nonce)
{
    struct oauth_provider p;
    oauth_preset_github(&p, "Iv1.abc", "secret",
                        "https://api.example/api/v1/auth/oauth/github/callback");
    struct oauth_begin b;
    cr_assert_eq(oauth_begin(&p, NULL, &b), 0);
    cr_assert(strncmp(b.authorize_url, "https://github.com/login/oauth/authorize?", 41) == 0);
    cr_assert_eq(count_param(b.authorize_url, "nonce"), 0);
    cr_assert_str_eq(b.nonce, "");
    cr_assert_not_null(strstr(b.authorize_url, "scope=read%3Auser%20user%3Aemail"));
    cr_assert(query_has(b.authorize_url, "code_challenge_method", "S256"));
    oauth_begin_free(&b);
    oauth_provider_free(&p);
}

Test(oauth, states_and_verifiers_are_unique)
{
    struct oauth_provider p;
    oauth_preset_google(&p, "id", "secret", "https://api.example/cb");
    enum { N = 1000 };
    char **states = xcalloc(N, sizeof(char *)), **verifiers = xcalloc(N, sizeof(char *));
    for (int i = 0; i < N; i++) {
        struct oauth_begin b;
        cr_assert_eq(oauth_begin(&p, NULL, &b), 0);
        cr_assert(oauth_state_valid(b.state));
        cr_assert(oauth_verifier_valid(b.code_verifier));
        states[i] = xstrdup(b.state);
        verifiers[i] = xstrdup(b.code_verifier);
        oauth_begin_free(&b);
    }
    qsort(states, N, sizeof(char *), cmp_str);
    qsort(verifiers, N, sizeof(char *), cmp_str);
    for (int i = 1; i < N; i++) {
        cr_assert_str_neq(states[i - 1], states[i]);
        cr_assert_str_neq(verifiers[i - 1], verifiers[i]);
    }
    for (int i = 0; i < N; i++) {
        free(states[i]);
        free(verifiers[i]);
    }
    free(states);
    free(verifiers);
    oauth_provider_free(&p);
}

Test(oauth, state_format_and_comparison)
{
    const char *good = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcd"; /* 42 */
    char s43[64];
    snprintf(s43, sizeof(s43), "%sx", good);
    cr_assert(oauth_state_valid(s43));
    cr_assert_not(oauth_state_valid(good), "42 characters");
    char s44[64];
    snprintf(s44, sizeof(s44), "%sxy", good);
    cr_assert_not(oauth_state_valid(s44), "44 characters");
    char bad[64];
    snprintf(bad, sizeof(bad), "%s=", good);
    cr_assert_not(oauth_state_valid(bad));
    snprintf(bad, sizeof(bad), "%s/", good);
    cr_assert_not(oauth_state_valid(bad));
    cr_assert_not(oauth_state_valid(""));
    cr_assert_not(oauth_state_valid(NULL));

    char other[64];
    snprintf(other, sizeof(other), "%sy", good);
    cr_assert(oauth_state_equal(s43, s43));
    cr_assert_not(oauth_state_equal(s43, other), "state mismatch in the last character");
    cr_assert_not(oauth_state_equal(s43, good), "different lengths");
    cr_assert_not(oauth_state_equal(s43, NULL));
}

Test(oauth, redirect_to_must_stay_local)
{
    cr_assert(oauth_redirect_to_safe(NULL));
    cr_assert(oauth_redirect_to_safe("/"));
    cr_assert(oauth_redirect_to_safe("/settings?tab=x#top"));
    cr_assert_not(oauth_redirect_to_safe(""));
    cr_assert_not(oauth_redirect_to_safe("//evil.example/x"));
    cr_assert_not(oauth_redirect_to_safe("/\\evil.example"));
    cr_assert_not(oauth_redirect_to_safe("https://evil.example/"));
    cr_assert_not(oauth_redirect_to_safe("javascript:alert(1)"));
    cr_assert_not(oauth_redirect_to_safe("/a\r\nSet-Cookie: x=1"));
    char *long_path = xmalloc(OAUTH_REDIRECT_TO_MAX + 2);
    memset(long_path, 'a', OAUTH_REDIRECT_TO_MAX + 1);
    long_path[0] = '/';
    long_path[OAUTH_REDIRECT_TO_MAX + 1] = '\0';
    cr_assert_not(oauth_redirect_to_safe(long_path));
    free(long_path);

    struct oauth_provider p;
    oauth_preset_google(&p, "id", "secret", "https://api.example/cb");
    struct oauth_begin b;
    cr_assert_eq(oauth_begin(&p, "//evil.example", &b), OAUTH_ERR_INVALID);
    cr_assert_null(b.authorize_url);
    oauth_provider_free(&p);
}

/* ---- presets, validation, configuration ---- */

Test(oauth, presets_have_the_documented_endpoints)
{
    struct oauth_provider g, h;
    char err[256];
    oauth_preset_google(&g, "gid", "gsecret",
                        "https://api.example/api/v1/auth/oauth/google/callback");
    cr_assert_str_eq(g.name, "google");
    cr_assert_eq(g.kind, OAUTH_OIDC);
    cr_assert_str_eq(g.issuer, "https://accounts.google.com");
    cr_assert_str_eq(g.authorize_url, "https://accounts.google.com/o/oauth2/v2/auth");
    cr_assert_str_eq(g.token_url, "https://oauth2.googleapis.com/token");
    cr_assert_str_eq(g.userinfo_url, "https://openidconnect.googleapis.com/v1/userinfo");
    cr_assert_str_eq(g.scopes, "openid email profile");
    cr_assert_str_eq(g.client_id, "gid");
    cr_assert_eq(oauth_provider_validate(&g, err, sizeof(err)), 0, "%s", err);

    oauth_preset_github(&h, "hid", "hsecret",
                        "https://api.example/api/v1/auth/oauth/github/callback");
    cr_assert_str_eq(h.name, "github");
    cr_assert_eq(h.kind, OAUTH_GITHUB);
    cr_assert_null(h.issuer);
    cr_assert_str_eq(h.authorize_url, "https://github.com/login/oauth/authorize");
    cr_assert_str_eq(h.token_url, "https://github.com/login/oauth/access_token");
    cr_assert_str_eq(h.userinfo_url, "https://api.github.com/user");
    cr_assert_str_eq(h.emails_url, "https://api.github.com/user/emails");
    cr_assert_str_eq(h.scopes, "read:user user:email");
    cr_assert_eq(oauth_provider_validate(&h, err, sizeof(err)), 0, "%s", err);
    cr_assert_eq(h.timeout_ms, 15000);
    cr_assert_eq(h.connect_timeout_ms, 5000);
    cr_assert_eq(h.max_response, (size_t)1 << 20);
    oauth_provider_free(&g);
    oauth_provider_free(&h);
}

Test(oauth, validation_refuses_unsafe_providers)
{
    struct oauth_provider p;
    char err[256];
    oauth_preset_google(&p, "id", "secret", "https://api.example/cb");
    const char *bad_urls[] = {
        "http://idp.example/token",       /* plain http off loopback */
        "ftp://idp.example/token",        /* not http(s) */
        "https://user:pw@idp.example/",   /* credentials in the URL */
        "https://idp.example/t#frag",     /* fragment */
        "https://idp.example/a b",        /* space */
        "https:///token",                 /* no host */
        "https://idp.example:99999999/t", /* not a port */
        "",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad_urls); i++) {
        oauth_set(&p.token_url, bad_urls[i]);
        cr_assert_eq(oauth_provider_validate(&p, err, sizeof(err)), OAUTH_ERR_CONFIG, "%s",
                     bad_urls[i]);
    }
    const char *loopback[] = {"http://127.0.0.1:8080/token", "http://localhost/token",
                              "http://[::1]:9000/token", "HTTPS://idp.example/token"};
    for (size_t i = 0; i < ARRAY_LEN(loopback); i++) {
        oauth_set(&p.token_url, loopback[i]);
        cr_assert_eq(oauth_provider_validate(&p, err, sizeof(err)), 0, "%s: %s", loopback[i], err);
    }
    oauth_set(&p.client_secret, NULL);
    cr_assert_eq(oauth_provider_validate(&p, err, sizeof(err)), OAUTH_ERR_CONFIG);
    cr_assert_not_null(strstr(err, "secret"), "%s", err);
    oauth_set(&p.client_secret, "secret");
    oauth_set(&p.name, "Bad Name");
    cr_assert_eq(oauth_provider_validate(&p, err, sizeof(err)), OAUTH_ERR_CONFIG);
    oauth_provider_free(&p);

    /* GitHub needs the emails endpoint */
    oauth_preset_github(&p, "id", "secret", "https://api.example/cb");
    oauth_set(&p.emails_url, NULL);
    cr_assert_eq(oauth_provider_validate(&p, err, sizeof(err)), OAUTH_ERR_CONFIG);
    oauth_provider_free(&p);

    /* nothing is attempted with an unusable provider */
    struct oauth_identity id;
    oauth_provider_init(&p, "empty", OAUTH_OIDC);
    cr_assert_eq(oauth_finish(&p, "code", RFC_VERIFIER, &id, err, sizeof(err)), OAUTH_ERR_CONFIG);
    oauth_provider_free(&p);
}

Test(oauth, providers_from_configuration)
{
    const char *env[] = {
        "API_URL=https://api.example",
        "OAUTH_PROVIDERS=google, github,acme-sso",
        "OAUTH_GOOGLE_CLIENT_ID=gid.apps.googleusercontent.com",
        "OAUTH_GOOGLE_CLIENT_SECRET=gsecret",
        "OAUTH_GITHUB_CLIENT_ID=Iv1.123",
        "OAUTH_GITHUB_CLIENT_SECRET=hsecret",
        "OAUTH_GITHUB_SCOPES=user:email",
        "OAUTH_ACME_SSO_CLIENT_ID=acme",
        "OAUTH_ACME_SSO_CLIENT_SECRET=asecret",
        "OAUTH_ACME_SSO_ISSUER=https://sso.acme.example",
        "OAUTH_ACME_SSO_AUTHORIZE_URL=https://sso.acme.example/authorize",
        "OAUTH_ACME_SSO_TOKEN_URL=https://sso.acme.example/token",
        "OAUTH_ACME_SSO_USERINFO_URL=https://sso.acme.example/userinfo",
        "OAUTH_ACME_SSO_CLIENT_AUTH=client_secret_basic",
        "OAUTH_ACME_SSO_REDIRECT_URI=https://login.example/cb/acme",
        NULL,
    };
    struct oauth_providers ps;
    struct config_errors errs = {0};
    int rc = oauth_providers_load(&ps, oauth_envp_get, (void *)env, "https://api.example/", &errs);
    cr_assert_eq(rc, 0, "%s", errs.n ? errs.v[0] : "");
    cr_assert_eq(ps.n, 3);
    const struct oauth_provider *g = oauth_providers_find(&ps, "google");
    cr_assert_not_null(g);
    cr_assert_str_eq(g->token_url, "https://oauth2.googleapis.com/token");
    cr_assert_str_eq(g->client_id, "gid.apps.googleusercontent.com");
    cr_assert_str_eq(g->redirect_uri, "https://api.example/api/v1/auth/oauth/google/callback");
    const struct oauth_provider *h = oauth_providers_find(&ps, "github");
    cr_assert_not_null(h);
    cr_assert_eq(h->kind, OAUTH_GITHUB);
    cr_assert_str_eq(h->scopes, "user:email");
    cr_assert_str_eq(h->emails_url, "https://api.github.com/user/emails");
    const struct oauth_provider *a = oauth_providers_find(&ps, "acme-sso");
    cr_assert_not_null(a);
    cr_assert_eq(a->kind, OAUTH_OIDC);
    cr_assert_eq(a->client_auth, OAUTH_AUTH_BASIC);
    cr_assert_str_eq(a->issuer, "https://sso.acme.example");
    cr_assert_str_eq(a->redirect_uri, "https://login.example/cb/acme");
    cr_assert_null(oauth_providers_find(&ps, "twitter"));
    oauth_providers_free(&ps);
    config_errors_free(&errs);

    /* without OAUTH_PROVIDERS: the presets whose client id is set */
    const char *env2[] = {"OAUTH_GITHUB_CLIENT_ID=x", "OAUTH_GITHUB_CLIENT_SECRET=y", NULL};
    cr_assert_eq(
        oauth_providers_load(&ps, oauth_envp_get, (void *)env2, "http://localhost:3000", &errs), 0);
    cr_assert_eq(ps.n, 1);
    cr_assert_str_eq(ps.v[0].redirect_uri,
                     "http://localhost:3000/api/v1/auth/oauth/github/callback");
    oauth_providers_free(&ps);

    /* nothing configured: no providers, no errors */
    const char *env3[] = {NULL};
    cr_assert_eq(oauth_providers_load(&ps, oauth_envp_get, (void *)env3, NULL, &errs), 0);
    cr_assert_eq(ps.n, 0);
    cr_assert_eq(errs.n, 0);
}

Test(oauth, configuration_errors_are_all_listed_without_secrets)
{
    const char *env[] = {
        "OAUTH_PROVIDERS=google,acme,Bad!,google",
        "OAUTH_GOOGLE_CLIENT_ID=gid",
        "OAUTH_GOOGLE_CLIENT_SECRET=top-secret-value",
        "OAUTH_GOOGLE_TOKEN_URL=http://evil.example/token",
        "OAUTH_ACME_KIND=saml",
        "OAUTH_ACME_CLIENT_SECRET=another-secret",
        "OAUTH_ACME_CLIENT_AUTH=private_key_jwt",
        NULL,
    };
    struct oauth_providers ps;
    struct config_errors errs = {0};
    cr_assert_eq(
        oauth_providers_load(&ps, oauth_envp_get, (void *)env, "https://api.example", &errs), -1);
    cr_assert_eq(ps.n, 0);
    const char *expect[] = {"OAUTH_GOOGLE_TOKEN_URL",
                            "OAUTH_ACME_KIND",
                            "OAUTH_ACME_CLIENT_ID",
                            "OAUTH_ACME_CLIENT_AUTH",
                            "OAUTH_ACME_AUTHORIZE_URL",
                            "OAUTH_ACME_TOKEN_URL",
                            "OAUTH_ACME_USERINFO_URL",
                            "\"Bad!\"",
                            "listed twice"};
    for (size_t i = 0; i < ARRAY_LEN(expect); i++) {
        bool found = false;
        for (size_t k = 0; k < errs.n; k++)
            found = found || strstr(errs.v[k], expect[i]);
        cr_assert(found, "no error mentions %s", expect[i]);
    }
    for (size_t k = 0; k < errs.n; k++) {
        cr_assert_null(strstr(errs.v[k], "top-secret-value"), "%s", errs.v[k]);
        cr_assert_null(strstr(errs.v[k], "another-secret"), "%s", errs.v[k]);
    }
    oauth_providers_free(&ps);
    config_errors_free(&errs);
}

/* ---- end to end against the fake provider ---- */

Test(oauth, oidc_flow_end_to_end, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, true);
    struct oauth_begin b;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));

    struct fake_oidc_seen seen;
    fake_oidc_seen(x.f, &seen);
    cr_assert_eq(seen.authorize_calls, 1);
    cr_assert_str_eq(seen.response_type, "code");
    cr_assert_str_eq(seen.client_id, "zygo-client");
    cr_assert_str_eq(seen.redirect_uri, REDIRECT);
    cr_assert_str_eq(seen.scope, "openid email profile");
    cr_assert_str_eq(seen.code_challenge, b.code_challenge);
    cr_assert_str_eq(seen.code_challenge_method, "S256");
    cr_assert_str_eq(seen.nonce, b.nonce);

    struct oauth_identity id;
    int rc = oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err));
    cr_assert_eq(rc, 0, "%s", err);
    cr_assert_str_eq(id.provider, "fake");
    cr_assert_str_eq(id.subject, "alice-123");
    cr_assert_str_eq(id.email, "alice@example.com");
    cr_assert(id.email_verified);
    cr_assert_str_eq(id.name, "Alice Liddell");
    cr_assert_str_eq(id.given_name, "Alice");
    cr_assert_str_eq(id.family_name, "Liddell");
    cr_assert_str_eq(id.picture, "https://example.com/alice.png");

    fake_oidc_seen(x.f, &seen);
    cr_assert_eq(seen.token_calls, 1);
    cr_assert_eq(seen.userinfo_calls, 1);
    cr_assert_str_eq(seen.grant_type, "authorization_code");
    cr_assert_str_eq(seen.client_auth, "post");
    cr_assert(seen.had_verifier);
    cr_assert_str_eq(seen.token_error, "");
    cr_assert(strncmp(seen.content_type, "application/x-www-form-urlencoded", 33) == 0);
    cr_assert_str_eq(seen.accept, "application/json");
    cr_assert_str_eq(seen.auth_scheme, "Bearer");
    cr_assert(strncmp(seen.user_agent, "zygo/", 5) == 0, "%s", seen.user_agent);
    oauth_identity_free(&id);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, client_secret_basic_end_to_end, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, false);
    x.p.client_auth = OAUTH_AUTH_BASIC;
    struct oauth_begin b;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    struct oauth_identity id;
    cr_assert_eq(oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(id.subject, "alice-123");
    struct fake_oidc_seen seen;
    fake_oidc_seen(x.f, &seen);
    cr_assert_str_eq(seen.client_auth, "basic");
    oauth_identity_free(&id);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, bad_verifier_is_invalid_grant, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, true);
    struct oauth_begin b, other;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    cr_assert_eq(oauth_begin(&x.p, NULL, &other), 0); /* a valid verifier of another flow */
    struct oauth_identity id;
    int rc = oauth_finish(&x.p, code, other.code_verifier, &id, err, sizeof(err));
    cr_assert_eq(rc, OAUTH_ERR_PROVIDER, "%d: %s", rc, err);
    cr_assert_not_null(strstr(err, "invalid_grant"), "%s", err);
    cr_assert_not_null(strstr(err, "PKCE"), "%s", err);
    assert_no_secrets(err, code, &b);
    assert_no_secrets(err, code, &other);
    struct fake_oidc_seen seen;
    fake_oidc_seen(x.f, &seen);
    cr_assert_eq(seen.userinfo_calls, 0);
    oauth_begin_free(&other);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, code_cannot_be_used_twice, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, false);
    struct oauth_begin b;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    struct oauth_identity id;
    cr_assert_eq(oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err)), 0, "%s", err);
    oauth_identity_free(&id);
    int rc = oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err));
    cr_assert_eq(rc, OAUTH_ERR_PROVIDER, "%d: %s", rc, err);
    cr_assert_not_null(strstr(err, "invalid_grant"), "%s", err);
    cr_assert_not_null(strstr(err, "already used"), "%s", err);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, expired_code_is_refused, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, false);
    struct oauth_begin b;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    fake_oidc_expire_codes(x.f);
    struct oauth_identity id;
    cr_assert_eq(oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err)),
                 OAUTH_ERR_PROVIDER);
    cr_assert_not_null(strstr(err, "invalid_grant: authorization code expired"), "%s", err);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, wrong_client_secret_is_invalid_client, .timeout = 20)
{
    enum oauth_client_auth methods[] = {OAUTH_AUTH_POST, OAUTH_AUTH_BASIC};
    for (size_t i = 0; i < ARRAY_LEN(methods); i++) {
        struct fx x;
        fx_start(&x, OAUTH_OIDC, false);
        x.p.client_auth = methods[i];
        oauth_set(&x.p.client_secret, "not-the-secret");
        struct oauth_begin b;
        char code[256], err[512] = "";
        authorize(&x, &b, code, sizeof(code));
        struct oauth_identity id;
        int rc = oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err));
        cr_assert_eq(rc, OAUTH_ERR_PROVIDER, "%d: %s", rc, err);
        cr_assert_not_null(strstr(err, "invalid_client"), "%s", err);
        cr_assert_null(strstr(err, "not-the-secret"), "%s", err);
        oauth_begin_free(&b);
        fx_stop(&x);
    }
}

Test(oauth, unverified_email_is_reported, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, true);
    struct fake_oidc_user u = alice;
    u.email = "mallory@example.com";
    u.email_verified = false;
    fake_oidc_set_user(x.f, &u);
    struct oauth_begin b;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    struct oauth_identity id;
    cr_assert_eq(oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(id.email, "mallory@example.com");
    cr_assert_not(id.email_verified);
    oauth_identity_free(&id);
    oauth_begin_free(&b);

    /* no email at all */
    u.email = NULL;
    fake_oidc_set_user(x.f, &u);
    authorize(&x, &b, code, sizeof(code));
    cr_assert_eq(oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err)), 0, "%s", err);
    cr_assert_null(id.email);
    cr_assert_not(id.email_verified);
    oauth_identity_free(&id);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, provider_down_fails_fast, .timeout = 20)
{
    struct oauth_provider p;
    char u[128], err[512] = "";
    int port = free_port(); /* nothing listens there */
    oauth_provider_init(&p, "down", OAUTH_OIDC);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/authorize", port);
    oauth_set(&p.authorize_url, u);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/token", port);
    oauth_set(&p.token_url, u);
    snprintf(u, sizeof(u), "http://127.0.0.1:%d/userinfo", port);
    oauth_set(&p.userinfo_url, u);
    oauth_set(&p.client_id, "zygo-client");
    oauth_set(&p.client_secret, SECRET);
    oauth_set(&p.redirect_uri, REDIRECT);
    struct oauth_identity id;
    double t0 = now_s();
    int rc = oauth_finish(&p, "some-code", RFC_VERIFIER, &id, err, sizeof(err));
    double took = now_s() - t0;
    cr_assert_eq(rc, OAUTH_ERR_NETWORK, "%d: %s", rc, err);
    cr_assert(strncmp(err, "token endpoint: ", 16) == 0, "%s", err);
    cr_assert_lt(took, 2.0, "took %.2f s", took);
    oauth_provider_free(&p);
}

Test(oauth, slow_provider_times_out, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, false);
    x.p.timeout_ms = 300;
    struct oauth_begin b;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    fake_oidc_set_fault(x.f, FAKE_OIDC_TOKEN_SLOW, 3000);
    struct oauth_identity id;
    double t0 = now_s();
    int rc = oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err));
    double took = now_s() - t0;
    cr_assert_eq(rc, OAUTH_ERR_TIMEOUT, "%d: %s", rc, err);
    cr_assert_not_null(strstr(err, "token endpoint"), "%s", err);
    cr_assert_lt(took, 1.5, "took %.2f s", took);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, userinfo_not_json, .timeout = 20)
{
    expect_failure(OAUTH_OIDC, false, FAKE_OIDC_USERINFO_NOT_JSON, OAUTH_ERR_RESPONSE,
                   "userinfo endpoint: response is not a JSON object (HTTP 200, text/html");
}

Test(oauth, userinfo_server_error, .timeout = 20)
{
    expect_failure(OAUTH_OIDC, false, FAKE_OIDC_USERINFO_500, OAUTH_ERR_HTTP,
                   "userinfo endpoint answered HTTP 500");
}

Test(oauth, token_response_not_json, .timeout = 20)
{
    expect_failure(OAUTH_OIDC, false, FAKE_OIDC_TOKEN_NOT_JSON, OAUTH_ERR_RESPONSE,
                   "token endpoint: response is not a JSON object");
}

Test(oauth, token_response_without_access_token, .timeout = 20)
{
    expect_failure(OAUTH_OIDC, false, FAKE_OIDC_TOKEN_NO_ACCESS, OAUTH_ERR_RESPONSE,
                   "no usable access_token");
}

Test(oauth, oversized_response_is_refused, .timeout = 20)
{
    expect_failure(OAUTH_OIDC, false, FAKE_OIDC_TOKEN_HUGE, OAUTH_ERR_RESPONSE,
                   "response larger than 1048576 bytes");
}

Test(oauth, id_token_nonce_must_match, .timeout = 20)
{
    expect_failure(OAUTH_OIDC, true, FAKE_OIDC_ID_TOKEN_BAD_NONCE, OAUTH_ERR_RESPONSE,
                   "id_token: nonce");
}

Test(oauth, id_token_sub_must_match_userinfo, .timeout = 20)
{
    expect_failure(OAUTH_OIDC, true, FAKE_OIDC_ID_TOKEN_OTHER_SUB, OAUTH_ERR_RESPONSE,
                   "sub differs from the id_token");
}

Test(oauth, id_token_for_another_client_is_refused, .timeout = 20)
{
    expect_failure(OAUTH_OIDC, true, FAKE_OIDC_ID_TOKEN_OTHER_AUD, OAUTH_ERR_RESPONSE,
                   "id_token: not issued to this client");
}

Test(oauth, id_token_from_another_issuer_is_refused, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, true);
    oauth_set(&x.p.issuer, "https://accounts.google.com");
    struct oauth_begin b;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    struct oauth_identity id;
    cr_assert_eq(oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err)),
                 OAUTH_ERR_RESPONSE);
    cr_assert_not_null(strstr(err, "id_token: iss"), "%s", err);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, malformed_callback_input_never_reaches_the_provider, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, false);
    struct oauth_begin b;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    struct oauth_identity id;
    cr_assert_eq(oauth_finish(&x.p, "", b.code_verifier, &id, err, sizeof(err)), OAUTH_ERR_INVALID);
    cr_assert_eq(oauth_finish(&x.p, "abc\r\ndef", b.code_verifier, &id, err, sizeof(err)),
                 OAUTH_ERR_INVALID);
    cr_assert_eq(oauth_finish(&x.p, NULL, b.code_verifier, &id, err, sizeof(err)),
                 OAUTH_ERR_INVALID);
    cr_assert_eq(oauth_finish(&x.p, code, "short", &id, err, sizeof(err)), OAUTH_ERR_INVALID);
    struct fake_oidc_seen seen;
    fake_oidc_seen(x.f, &seen);
    cr_assert_eq(seen.token_calls, 0);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, fake_provider_enforces_the_protocol, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, false);
    char url[1024], loc[2048];
    const char *base = fake_oidc_base(x.f);
    /* unknown client: an error page, never a redirect */
    snprintf(
        url, sizeof(url),
        "%s/authorize?response_type=code&client_id=evil&redirect_uri=%s&state=s&"
        "code_challenge=E9Melhoe2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256",
        base, "http%3A%2F%2F127.0.0.1%3A3999%2Fapi%2Fv1%2Fauth%2Foauth%2Ffake%2Fcallback");
    cr_assert_eq(fake_oidc_browse(url, loc, sizeof(loc)), 400);
    cr_assert_str_eq(loc, "");
    /* no PKCE: redirected back with invalid_request and the state */
    snprintf(url, sizeof(url),
             "%s/authorize?response_type=code&client_id=zygo-client&"
             "redirect_uri=%s&state=s1",
             base, "http%3A%2F%2F127.0.0.1%3A3999%2Fapi%2Fv1%2Fauth%2Foauth%2Ffake%2Fcallback");
    cr_assert_eq(fake_oidc_browse(url, loc, sizeof(loc)), 302);
    cr_assert(query_has(loc, "error", "invalid_request"), "%s", loc);
    cr_assert(query_has(loc, "state", "s1"), "%s", loc);
    /* plain PKCE is refused */
    snprintf(url, sizeof(url),
             "%s/authorize?response_type=code&client_id=zygo-client&"
             "redirect_uri=%s&state=s2&code_challenge=abc&code_challenge_method=plain",
             base, "http%3A%2F%2F127.0.0.1%3A3999%2Fapi%2Fv1%2Fauth%2Foauth%2Ffake%2Fcallback");
    cr_assert_eq(fake_oidc_browse(url, loc, sizeof(loc)), 302);
    cr_assert(query_has(loc, "error", "invalid_request"), "%s", loc);
    /* no state */
    snprintf(url, sizeof(url),
             "%s/authorize?response_type=code&client_id=zygo-client&"
             "redirect_uri=%s&code_challenge=E9Melhoe2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&"
             "code_challenge_method=S256",
             base, "http%3A%2F%2F127.0.0.1%3A3999%2Fapi%2Fv1%2Fauth%2Foauth%2Ffake%2Fcallback");
    cr_assert_eq(fake_oidc_browse(url, loc, sizeof(loc)), 302);
    cr_assert(query_has(loc, "error", "invalid_request"), "%s", loc);
    char code[64];
    cr_assert_not(fake_oidc_query_param(loc, "code", code, sizeof(code)));
    fx_stop(&x);
}

Test(oauth, state_mismatch_is_detected, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_OIDC, false);
    struct oauth_begin b1, b2;
    char code[256];
    authorize(&x, &b1, code, sizeof(code));
    cr_assert_eq(oauth_begin(&x.p, NULL, &b2), 0);
    /* a callback carrying flow 1's state does not match flow 2's stored state */
    cr_assert_not(oauth_state_equal(b1.state, b2.state));
    oauth_begin_free(&b1);
    oauth_begin_free(&b2);
    fx_stop(&x);
}

/* ---- GitHub ---- */

Test(oauth, github_flow_end_to_end, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_GITHUB, false);
    struct oauth_begin b;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    struct oauth_identity id;
    cr_assert_eq(oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(id.provider, "fake");
    cr_assert_str_eq(id.subject, "583231");
    cr_assert_str_eq(id.email, "alice@example.com");
    cr_assert(id.email_verified, "the verified primary address");
    cr_assert_str_eq(id.name, "Alice Liddell");
    cr_assert_null(id.given_name);
    cr_assert_str_eq(id.picture, "https://example.com/alice.png");
    struct fake_oidc_seen seen;
    fake_oidc_seen(x.f, &seen);
    cr_assert_eq(seen.user_calls, 1);
    cr_assert_eq(seen.emails_calls, 1);
    cr_assert_str_eq(seen.nonce, "");
    cr_assert(strncmp(seen.user_agent, "zygo/", 5) == 0);
    oauth_identity_free(&id);
    oauth_begin_free(&b);

    /* an unverified primary address is reported as unverified */
    struct fake_oidc_user u = alice;
    u.email_verified = false;
    fake_oidc_set_user(x.f, &u);
    authorize(&x, &b, code, sizeof(code));
    cr_assert_eq(oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(id.email, "alice@example.com");
    cr_assert_not(id.email_verified);
    oauth_identity_free(&id);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, github_without_emails_scope_is_unverified, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_GITHUB, false);
    struct oauth_begin b;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    fake_oidc_set_fault(x.f, FAKE_OIDC_EMAILS_404, 0);
    struct oauth_identity id;
    cr_assert_eq(oauth_finish(&x.p, code, b.code_verifier, &id, err, sizeof(err)), 0, "%s", err);
    cr_assert_str_eq(id.email, "alice@example.com"); /* the public profile address */
    cr_assert_not(id.email_verified);
    oauth_identity_free(&id);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, github_errors_answered_with_200_are_errors, .timeout = 20)
{
    struct fx x;
    fx_start(&x, OAUTH_GITHUB, false);
    struct oauth_begin b, other;
    char code[256], err[512] = "";
    authorize(&x, &b, code, sizeof(code));
    cr_assert_eq(oauth_begin(&x.p, NULL, &other), 0);
    struct oauth_identity id;
    int rc = oauth_finish(&x.p, code, other.code_verifier, &id, err, sizeof(err));
    cr_assert_eq(rc, OAUTH_ERR_PROVIDER, "%d: %s", rc, err);
    cr_assert_not_null(strstr(err, "invalid_grant"), "%s", err);
    oauth_begin_free(&other);
    oauth_begin_free(&b);
    fx_stop(&x);
}

Test(oauth, github_profile_not_json, .timeout = 20)
{
    expect_failure(OAUTH_GITHUB, false, FAKE_OIDC_USERINFO_NOT_JSON, OAUTH_ERR_RESPONSE,
                   "user endpoint: response is not a JSON object");
}
