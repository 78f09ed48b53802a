/* oauth.c — OAuth 2.0 / OpenID Connect authorization-code flow with PKCE; see oauth.h. */
#include "lib/common.h"

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <sodium.h>
#include <strings.h>
#include <time.h>

#include "lib/buf.h"
#include "lib/log.h"
#include "lib/token.h"
#include "services/oauth.h"

#define PROVIDER_TEXT_MAX 200 /* provider-supplied text kept in an error message */
#define ID_TOKEN_MAX 65536    /* longest id_token looked at */
#define ID_TOKEN_SKEW_S 120   /* clock skew allowed on an id_token's exp */
#define SUBJECT_MAX 255
#define EMAIL_MAX 320
#define PROFILE_MAX 1024 /* names */
#define PICTURE_MAX 2048
#define URL_BUILD_MAX 16384 /* authorization URL, form bodies */
#define NONCE_CONTEXT "zygo-oidc-nonce:"

/* ---- process-wide setup ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_start(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "zygo: libcurl failed to initialise\n");
        abort();
    }
}

static void oauth_global_init(void)
{
    token_crypto_init();
    pthread_once(&curl_once, curl_start);
}

/* ---- errors ---- */

const char *oauth_strerror(int rc)
{
    switch (rc) {
    case OAUTH_OK:
        return "ok";
    case OAUTH_ERR_INVALID:
        return "invalid argument";
    case OAUTH_ERR_CONFIG:
        return "provider misconfigured";
    case OAUTH_ERR_NETWORK:
        return "provider unreachable";
    case OAUTH_ERR_TIMEOUT:
        return "provider timed out";
    case OAUTH_ERR_HTTP:
        return "unexpected HTTP status from the provider";
    case OAUTH_ERR_PROVIDER:
        return "provider error";
    case OAUTH_ERR_RESPONSE:
        return "invalid response from the provider";
    default:
        return "unknown error";
    }
}

static int fail(char *err, size_t n, int rc, const char *fmt, ...) ZY_PRINTF(4, 5);
static int fail(char *err, size_t n, int rc, const char *fmt, ...)
{
    if (err && n) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, n, fmt, ap);
        va_end(ap);
    }
    return rc;
}

/* Provider-supplied text made safe for a message or a log line: printable ASCII only,
 * truncated. */
static void clean_text(const char *s, char *out, size_t n)
{
    size_t max = ZY_MIN(n - 1, (size_t)PROVIDER_TEXT_MAX), k = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p && k < max; p++)
        out[k++] = (*p >= 0x20 && *p < 0x7f) ? (char)*p : '?';
    out[k] = '\0';
}

/* ---- small string checks ---- */

static bool is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

static bool is_b64url(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

/* Visible ASCII only (no space, no control characters): safe inside a header or a form. */
static bool is_visible_ascii(const char *s, size_t max)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p <= 0x20 || *p >= 0x7f || n >= max)
            return false;
    return n > 0;
}

/* RFC 6749 Appendix A: VSCHAR (%x20-7E), for client ids and codes, which travel encoded. */
static bool is_vschar(const char *s, size_t max)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (*p < 0x20 || *p >= 0x7f || n >= max)
            return false;
    return n > 0;
}

static bool name_valid(const char *s)
{
    size_t n = 0;
    for (const char *p = s; p && *p; p++, n++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_' || *p == '-'))
            return false;
    return n >= 1 && n <= OAUTH_NAME_MAX;
}

static bool host_is_loopback(const char *h, size_t n)
{
    static const char *const names[] = {"127.0.0.1", "localhost", "[::1]"};
    for (size_t i = 0; i < ARRAY_LEN(names); i++)
        if (strlen(names[i]) == n && strncasecmp(h, names[i], n) == 0)
            return true;
    return false;
}

/* An absolute http(s) URL without spaces, control characters, user info or fragment; plain
 * http only to a loopback host. */
static bool url_allowed(const char *u)
{
    if (!u || !*u)
        return false;
    for (const unsigned char *p = (const unsigned char *)u; *p; p++)
        if (*p <= 0x20 || *p >= 0x7f || *p == '#' || *p == '\\')
            return false;
    bool https = strncasecmp(u, "https://", 8) == 0;
    if (!https && strncasecmp(u, "http://", 7) != 0)
        return false;
    const char *auth = u + (https ? 8 : 7);
    size_t alen = strcspn(auth, "/?");
    if (alen == 0 || memchr(auth, '@', alen))
        return false;
    size_t hlen;
    if (auth[0] == '[') {
        const char *rb = memchr(auth, ']', alen);
        if (!rb)
            return false;
        hlen = (size_t)(rb - auth) + 1;
    } else {
        const char *colon = memchr(auth, ':', alen);
        hlen = colon ? (size_t)(colon - auth) : alen;
    }
    if (hlen == 0 || (hlen == 1 && auth[0] == '['))
        return false;
    if (hlen < alen) { /* a port: ':' and 1-5 digits */
        if (auth[hlen] != ':' || alen - hlen < 2 || alen - hlen > 6)
            return false;
        for (size_t i = hlen + 1; i < alen; i++)
            if (auth[i] < '0' || auth[i] > '9')
                return false;
    }
    return https || host_is_loopback(auth, hlen);
}

bool oauth_redirect_to_safe(const char *r)
{
    if (!r)
        return true;
    size_t n = strlen(r);
    if (n == 0 || n > OAUTH_REDIRECT_TO_MAX || r[0] != '/' || r[1] == '/')
        return false;
    for (const unsigned char *p = (const unsigned char *)r; *p; p++)
        if (*p < 0x20 || *p == 0x7f || *p == '\\')
            return false;
    return true;
}

bool oauth_state_valid(const char *s)
{
    if (!s)
        return false;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++, n++)
        if (n >= OAUTH_STATE_LEN || !is_b64url(*p))
            return false;
    return n == OAUTH_STATE_LEN;
}

bool oauth_state_equal(const char *a, const char *b)
{
    if (!a || !b)
        return false;
    return token_equal(a, b);
}

bool oauth_verifier_valid(const char *v)
{
    if (!v)
        return false;
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++, n++)
        if (n >= 128 || !is_unreserved(*p))
            return false;
    return n >= 43;
}

/* ---- crypto helpers ---- */

static void b64url32(const unsigned char bin[32], char out[OAUTH_CHALLENGE_LEN + 1])
{
    sodium_bin2base64(out, OAUTH_CHALLENGE_LEN + 1, bin, 32,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void oauth_pkce_challenge(const char *verifier, char out[OAUTH_CHALLENGE_LEN + 1])
{
    oauth_global_init();
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
    b64url32(h, out);
}

void oauth_nonce_for(const char *verifier, char out[OAUTH_NONCE_LEN + 1])
{
    oauth_global_init();
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)NONCE_CONTEXT, strlen(NONCE_CONTEXT));
    crypto_hash_sha256_update(&st, (const unsigned char *)verifier, strlen(verifier));
    crypto_hash_sha256_final(&st, h);
    b64url32(h, out);
}

/* ---- providers ---- */

void oauth_set(char **field, const char *value)
{
    free(*field);
    *field = value ? xstrdup(value) : NULL;
}

void oauth_provider_init(struct oauth_provider *p, const char *name, enum oauth_kind kind)
{
    memset(p, 0, sizeof(*p));
    oauth_set(&p->name, name);
    p->kind = kind;
    oauth_set(&p->scopes, kind == OAUTH_GITHUB ? "read:user user:email" : "openid email profile");
    p->client_auth = OAUTH_AUTH_POST;
    p->connect_timeout_ms = OAUTH_CONNECT_TIMEOUT_MS;
    p->timeout_ms = OAUTH_TIMEOUT_MS;
    p->max_response = OAUTH_MAX_RESPONSE;
}

static void set_client(struct oauth_provider *p, const char *client_id, const char *client_secret,
                       const char *redirect_uri)
{
    oauth_set(&p->client_id, client_id);
    oauth_set(&p->client_secret, client_secret);
    oauth_set(&p->redirect_uri, redirect_uri);
}

void oauth_preset_google(struct oauth_provider *p, const char *client_id, const char *client_secret,
                         const char *redirect_uri)
{
    oauth_provider_init(p, "google", OAUTH_OIDC);
    oauth_set(&p->issuer, "https://accounts.google.com");
    oauth_set(&p->authorize_url, "https://accounts.google.com/o/oauth2/v2/auth");
    oauth_set(&p->token_url, "https://oauth2.googleapis.com/token");
    oauth_set(&p->userinfo_url, "https://openidconnect.googleapis.com/v1/userinfo");
    set_client(p, client_id, client_secret, redirect_uri);
}

void oauth_preset_github(struct oauth_provider *p, const char *client_id, const char *client_secret,
                         const char *redirect_uri)
{
    oauth_provider_init(p, "github", OAUTH_GITHUB);
    oauth_set(&p->authorize_url, "https://github.com/login/oauth/authorize");
    oauth_set(&p->token_url, "https://github.com/login/oauth/access_token");
    oauth_set(&p->userinfo_url, "https://api.github.com/user");
    oauth_set(&p->emails_url, "https://api.github.com/user/emails");
    set_client(p, client_id, client_secret, redirect_uri);
}

int oauth_provider_validate(const struct oauth_provider *p, char *err, size_t n)
{
    if (!p || !name_valid(p->name))
        return fail(err, n, OAUTH_ERR_CONFIG, "provider name must be 1-%d of [a-z0-9_-]",
                    OAUTH_NAME_MAX);
    if (p->kind != OAUTH_OIDC && p->kind != OAUTH_GITHUB)
        return fail(err, n, OAUTH_ERR_CONFIG, "%s: unknown provider kind", p->name);
    if (!p->client_id || !is_vschar(p->client_id, 1024))
        return fail(err, n, OAUTH_ERR_CONFIG, "%s: client id missing or malformed", p->name);
    if (!p->client_secret || !*p->client_secret || strlen(p->client_secret) > 1024)
        return fail(err, n, OAUTH_ERR_CONFIG, "%s: client secret missing or too long", p->name);
    const struct {
        const char *what;
        const char *url;
        bool required;
    } urls[] = {
        {"authorization URL", p->authorize_url, true},
        {"token URL", p->token_url, true},
        {"userinfo URL", p->userinfo_url, true},
        {"emails URL", p->emails_url, p->kind == OAUTH_GITHUB},
        {"redirect URI", p->redirect_uri, true},
        {"issuer", p->issuer, false},
    };
    for (size_t i = 0; i < ARRAY_LEN(urls); i++) {
        if (!urls[i].url && !urls[i].required)
            continue;
        if (!urls[i].url)
            return fail(err, n, OAUTH_ERR_CONFIG, "%s: %s missing", p->name, urls[i].what);
        if (!url_allowed(urls[i].url))
            return fail(err, n, OAUTH_ERR_CONFIG,
                        "%s: %s must be an https URL (http only to a loopback host)", p->name,
                        urls[i].what);
    }
    if (p->scopes && strlen(p->scopes) > 1024)
        return fail(err, n, OAUTH_ERR_CONFIG, "%s: scopes too long", p->name);
    if (p->client_auth != OAUTH_AUTH_POST && p->client_auth != OAUTH_AUTH_BASIC)
        return fail(err, n, OAUTH_ERR_CONFIG, "%s: unknown client authentication", p->name);
    if (p->connect_timeout_ms <= 0 || p->timeout_ms <= 0 || p->max_response == 0)
        return fail(err, n, OAUTH_ERR_CONFIG, "%s: timeouts and response cap must be positive",
                    p->name);
    return OAUTH_OK;
}

void oauth_provider_free(struct oauth_provider *p)
{
    if (!p)
        return;
    if (p->client_secret)
        sodium_memzero(p->client_secret, strlen(p->client_secret));
    char **fields[] = {&p->name,         &p->issuer,      &p->authorize_url, &p->token_url,
                       &p->userinfo_url, &p->emails_url,  &p->client_id,     &p->client_secret,
                       &p->scopes,       &p->redirect_uri};
    for (size_t i = 0; i < ARRAY_LEN(fields); i++)
        free(*fields[i]);
    memset(p, 0, sizeof(*p));
}

/* ---- providers from configuration ---- */

static void add_error(struct config_errors *e, const char *fmt, ...) ZY_PRINTF(2, 3);
static void add_error(struct config_errors *e, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e->v = xrealloc(e->v, (e->n + 1) * sizeof(*e->v));
    e->v[e->n++] = xstrdup(msg);
}

const char *oauth_envp_get(void *ctx, const char *name)
{
    char *const *envp = ctx;
    size_t len = strlen(name);
    for (size_t i = 0; envp && envp[i]; i++)
        if (strncmp(envp[i], name, len) == 0 && envp[i][len] == '=')
            return envp[i][len + 1] ? envp[i] + len + 1 : NULL;
    return NULL;
}

/* Looks up OAUTH_<PREFIX>_<suffix>; the variable's name goes to var for messages. */
static const char *env_for(oauth_getenv_fn get, void *ctx, const char *prefix, const char *suffix,
                           char *var, size_t n)
{
    snprintf(var, n, "OAUTH_%s_%s", prefix, suffix);
    const char *v = get(ctx, var);
    return v && *v ? v : NULL;
}

/* Loads one named provider into p; returns false (errors added) if it is unusable. */
static bool load_provider(struct oauth_provider *p, const char *name, oauth_getenv_fn get,
                          void *ctx, const char *api_url, struct config_errors *errs)
{
    char prefix[OAUTH_NAME_MAX + 1], var[128];
    size_t k = 0;
    for (const char *c = name; *c; c++)
        prefix[k++] = *c == '-' ? '_' : (*c >= 'a' && *c <= 'z') ? (char)(*c - 'a' + 'A') : *c;
    prefix[k] = '\0';
    size_t nerr = errs->n;

    enum oauth_kind kind = strcmp(name, "github") == 0 ? OAUTH_GITHUB : OAUTH_OIDC;
    const char *v = env_for(get, ctx, prefix, "KIND", var, sizeof(var));
    if (v) {
        if (strcmp(v, "oidc") == 0)
            kind = OAUTH_OIDC;
        else if (strcmp(v, "github") == 0)
            kind = OAUTH_GITHUB;
        else
            add_error(errs, "%s: expected oidc or github, got \"%s\"", var, v);
    }
    if (strcmp(name, "google") == 0 && kind == OAUTH_OIDC)
        oauth_preset_google(p, NULL, NULL, NULL);
    else if (strcmp(name, "github") == 0 && kind == OAUTH_GITHUB)
        oauth_preset_github(p, NULL, NULL, NULL);
    else
        oauth_provider_init(p, name, kind);

    /* client credentials: never echo their values */
    if (!(v = env_for(get, ctx, prefix, "CLIENT_ID", var, sizeof(var))))
        add_error(errs, "%s: required for OAuth provider %s", var, name);
    else if (!is_vschar(v, 1024))
        add_error(errs, "%s: malformed (printable ASCII, at most 1024 characters)", var);
    else
        oauth_set(&p->client_id, v);
    if (!(v = env_for(get, ctx, prefix, "CLIENT_SECRET", var, sizeof(var))))
        add_error(errs, "%s: required for OAuth provider %s", var, name);
    else if (strlen(v) > 1024)
        add_error(errs, "%s: longer than 1024 characters", var);
    else
        oauth_set(&p->client_secret, v);

    const struct {
        const char *suffix;
        char **field;
    } urls[] = {
        {"ISSUER", &p->issuer},         {"AUTHORIZE_URL", &p->authorize_url},
        {"TOKEN_URL", &p->token_url},   {"USERINFO_URL", &p->userinfo_url},
        {"EMAILS_URL", &p->emails_url}, {"REDIRECT_URI", &p->redirect_uri},
    };
    for (size_t i = 0; i < ARRAY_LEN(urls); i++) {
        if (!(v = env_for(get, ctx, prefix, urls[i].suffix, var, sizeof(var))))
            continue;
        if (!url_allowed(v))
            add_error(errs, "%s: expected an https URL (http only to a loopback host), got \"%s\"",
                      var, v);
        else
            oauth_set(urls[i].field, v);
    }
    const char *required[] = {"AUTHORIZE_URL", "TOKEN_URL", "USERINFO_URL"};
    char **rfields[] = {&p->authorize_url, &p->token_url, &p->userinfo_url};
    for (size_t i = 0; i < ARRAY_LEN(required); i++) {
        snprintf(var, sizeof(var), "OAUTH_%s_%s", prefix, required[i]);
        if (!*rfields[i] && !get(ctx, var))
            add_error(errs, "%s: required for OAuth provider %s (no preset for this name)", var,
                      name);
    }
    if (kind == OAUTH_GITHUB && !p->emails_url && p->userinfo_url) {
        struct buf b;
        buf_init(&b, 4096);
        buf_puts(&b, p->userinfo_url);
        while (b.len && b.data[b.len - 1] == '/')
            b.len--;
        buf_puts(&b, "/emails");
        oauth_set(&p->emails_url, buf_cstr(&b));
        buf_free(&b);
    }
    if ((v = env_for(get, ctx, prefix, "SCOPES", var, sizeof(var))))
        oauth_set(&p->scopes, v);
    if ((v = env_for(get, ctx, prefix, "CLIENT_AUTH", var, sizeof(var)))) {
        if (strcmp(v, "client_secret_post") == 0)
            p->client_auth = OAUTH_AUTH_POST;
        else if (strcmp(v, "client_secret_basic") == 0)
            p->client_auth = OAUTH_AUTH_BASIC;
        else
            add_error(errs, "%s: expected client_secret_post or client_secret_basic, got \"%s\"",
                      var, v);
    }
    if (!p->redirect_uri) {
        if (!api_url || !*api_url) {
            add_error(errs, "OAUTH_%s_REDIRECT_URI: required when API_URL is not set", prefix);
        } else {
            struct buf b;
            buf_init(&b, 4096);
            buf_puts(&b, api_url);
            while (b.len && b.data[b.len - 1] == '/')
                b.len--;
            buf_printf(&b, "/api/v1/auth/oauth/%s/callback", name);
            if (url_allowed(buf_cstr(&b)))
                oauth_set(&p->redirect_uri, buf_cstr(&b));
            else
                add_error(errs,
                          "OAUTH_%s_REDIRECT_URI: the default from API_URL (%s) is not an https "
                          "URL (http only to a loopback host); set it explicitly",
                          prefix, buf_cstr(&b));
            buf_free(&b);
        }
    }
    if (errs->n != nerr)
        return false;
    char msg[256];
    if (oauth_provider_validate(p, msg, sizeof(msg)) != OAUTH_OK) {
        add_error(errs, "OAUTH_%s_*: %s", prefix, msg);
        return false;
    }
    return true;
}

int oauth_providers_load(struct oauth_providers *out, oauth_getenv_fn get, void *ctx,
                         const char *api_url, struct config_errors *errs)
{
    memset(out, 0, sizeof(*out));
    size_t nerr = errs->n;
    char *names = NULL;
    const char *list = get(ctx, "OAUTH_PROVIDERS");
    if (list && *list) {
        names = xstrdup(list);
    } else {
        struct buf b;
        buf_init(&b, 256);
        const char *g = get(ctx, "OAUTH_GOOGLE_CLIENT_ID"), *h = get(ctx, "OAUTH_GITHUB_CLIENT_ID");
        if (g && *g)
            buf_puts(&b, "google,");
        if (h && *h)
            buf_puts(&b, "github,");
        names = xstrdup(buf_cstr(&b));
        buf_free(&b);
    }
    char *save = NULL;
    const char **seen = NULL; /* names handled so far (pointers into names) */
    size_t nseen = 0;
    for (char *tok = strtok_r(names, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len && tok[len - 1] == ' ')
            tok[--len] = '\0';
        if (!len)
            continue;
        if (!name_valid(tok)) {
            add_error(errs, "OAUTH_PROVIDERS: \"%s\" is not a provider name (1-%d of [a-z0-9_-])",
                      tok, OAUTH_NAME_MAX);
            continue;
        }
        /* "a-b" and "a_b" would read the same variables: compare as variable names */
        bool dup = false;
        for (size_t i = 0; i < nseen; i++) {
            const char *x = seen[i], *y = tok;
            while (*x && *y && (*x == *y || ((*x == '-' || *x == '_') && (*y == '-' || *y == '_'))))
                x++, y++;
            dup = dup || (*x == '\0' && *y == '\0');
        }
        if (dup) {
            add_error(errs, "OAUTH_PROVIDERS: \"%s\" is listed twice", tok);
            continue;
        }
        seen = xrealloc(seen, (nseen + 1) * sizeof(*seen));
        seen[nseen++] = tok;
        struct oauth_provider p;
        if (load_provider(&p, tok, get, ctx, api_url, errs)) {
            out->v = xrealloc(out->v, (out->n + 1) * sizeof(*out->v));
            out->v[out->n++] = p;
        } else {
            oauth_provider_free(&p);
        }
    }
    free(seen);
    free(names);
    return errs->n == nerr ? 0 : -1;
}

const struct oauth_provider *oauth_providers_find(const struct oauth_providers *ps,
                                                  const char *name)
{
    for (size_t i = 0; ps && name && i < ps->n; i++)
        if (strcmp(ps->v[i].name, name) == 0)
            return &ps->v[i];
    return NULL;
}

void oauth_providers_free(struct oauth_providers *ps)
{
    for (size_t i = 0; i < ps->n; i++)
        oauth_provider_free(&ps->v[i]);
    free(ps->v);
    ps->v = NULL;
    ps->n = 0;
}

/* ---- the begin step ---- */

/* Percent-encodes everything but RFC 3986 unreserved characters (so space is %20). */
static void pct_encode(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (is_unreserved(*p)) {
            buf_putc(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(b, e, 3);
        }
    }
}

/* Appends "&name=value" (no '&' when the buffer is empty or already ends in '?' or '&'). */
static void add_param(struct buf *b, const char *name, const char *value)
{
    if (b->len && b->data[b->len - 1] != '?' && b->data[b->len - 1] != '&')
        buf_putc(b, '&');
    pct_encode(b, name);
    buf_putc(b, '=');
    pct_encode(b, value);
}

int oauth_begin(const struct oauth_provider *p, const char *redirect_to, struct oauth_begin *out)
{
    memset(out, 0, sizeof(*out));
    char err[256];
    if (oauth_provider_validate(p, err, sizeof(err)) != OAUTH_OK) {
        log_msg(LOG_ERROR, "oauth: %s", err);
        return OAUTH_ERR_CONFIG;
    }
    if (!oauth_redirect_to_safe(redirect_to))
        return OAUTH_ERR_INVALID;
    oauth_global_init();
    token_new(out->state, sizeof(out->state));
    token_new(out->code_verifier, sizeof(out->code_verifier));
    oauth_pkce_challenge(out->code_verifier, out->code_challenge);
    if (p->kind == OAUTH_OIDC)
        oauth_nonce_for(out->code_verifier, out->nonce);

    struct buf b;
    buf_init(&b, URL_BUILD_MAX);
    buf_puts(&b, p->authorize_url);
    if (!strchr(p->authorize_url, '?'))
        buf_putc(&b, '?');
    add_param(&b, "response_type", "code");
    add_param(&b, "client_id", p->client_id);
    add_param(&b, "redirect_uri", p->redirect_uri);
    if (p->scopes && *p->scopes)
        add_param(&b, "scope", p->scopes);
    add_param(&b, "state", out->state);
    add_param(&b, "code_challenge", out->code_challenge);
    add_param(&b, "code_challenge_method", "S256");
    if (p->kind == OAUTH_OIDC)
        add_param(&b, "nonce", out->nonce);
    if (b.overflow) {
        buf_free(&b);
        oauth_begin_free(out);
        log_msg(LOG_ERROR, "oauth: %s: authorization URL longer than %d bytes", p->name,
                URL_BUILD_MAX);
        return OAUTH_ERR_CONFIG;
    }
    out->authorize_url = buf_detach(&b, NULL);
    out->redirect_to = redirect_to ? xstrdup(redirect_to) : NULL;
    return OAUTH_OK;
}

void oauth_begin_free(struct oauth_begin *b)
{
    if (!b)
        return;
    free(b->redirect_to);
    free(b->authorize_url);
    sodium_memzero(b, sizeof(*b));
}

/* ---- HTTP with libcurl ---- */

struct reply {
    long status;
    struct buf body;
    char content_type[128];
};

/* Wipes a buffer that held secrets, then frees it. */
static void buf_wipe_free(struct buf *b)
{
    if (b->data)
        sodium_memzero(b->data, b->cap);
    buf_free(b);
}

static void reply_free(struct reply *r)
{
    buf_wipe_free(&r->body);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
    struct buf *b = ud;
    size_t n = size * nmemb;
    return buf_append(b, data, n) == 0 ? n : 0; /* 0 aborts: the body passed its cap */
}

/* Wipes and frees a header list (it may hold a bearer token or Basic credentials). */
static void headers_free(struct curl_slist *h)
{
    for (struct curl_slist *i = h; i; i = i->next)
        sodium_memzero(i->data, strlen(i->data));
    curl_slist_free_all(h);
}

static struct curl_slist *header_add(struct curl_slist *h, const char *line)
{
    struct curl_slist *n = curl_slist_append(h, line);
    if (!n)
        zy_oom(strlen(line));
    return n;
}

/* One request to `url` (POST when post != NULL) before the deadline. The reply's body is
 * capped at p->max_response. Returns 0 whatever the HTTP status, or a transport error. */
static int http_call(const struct oauth_provider *p, long long deadline, const char *what,
                     const char *url, struct curl_slist *headers, const char *post, size_t post_len,
                     struct reply *r, char *err, size_t errn)
{
    memset(r, 0, sizeof(*r));
    buf_init(&r->body, p->max_response);
    long left = (long)(deadline - now_ms());
    if (left <= 0)
        return fail(err, errn, OAUTH_ERR_TIMEOUT, "%s: no time left (deadline %ld ms)", what,
                    p->timeout_ms);
    CURL *h = curl_easy_init();
    if (!h)
        return fail(err, errn, OAUTH_ERR_NETWORK, "%s: libcurl could not start a transfer", what);
    char cerr[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, ZY_MIN(p->connect_timeout_ms, left));
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, left);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "zygo/" ZYGO_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &r->body);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)p->max_response);
    if (post) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, post);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)post_len);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(h);
    int ret = OAUTH_OK;
    if (rc == CURLE_OPERATION_TIMEDOUT) {
        ret = fail(err, errn, OAUTH_ERR_TIMEOUT, "%s: no answer within %ld ms", what, left);
    } else if (rc == CURLE_FILESIZE_EXCEEDED || (rc == CURLE_WRITE_ERROR && r->body.overflow)) {
        ret = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: response larger than %zu bytes", what,
                   p->max_response);
    } else if (rc == CURLE_UNSUPPORTED_PROTOCOL) {
        ret = fail(err, errn, OAUTH_ERR_CONFIG, "%s: only http and https are allowed", what);
    } else if (rc != CURLE_OK) {
        ret = fail(err, errn, OAUTH_ERR_NETWORK, "%s: %s", what,
                   cerr[0] ? cerr : curl_easy_strerror(rc));
    } else {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
        char *ct = NULL;
        if (curl_easy_getinfo(h, CURLINFO_CONTENT_TYPE, &ct) == CURLE_OK && ct)
            clean_text(ct, r->content_type, sizeof(r->content_type));
    }
    curl_easy_cleanup(h);
    return ret;
}

/* The body as JSON (any type), or NULL. */
static json_t *reply_json(const struct reply *r)
{
    if (r->body.len == 0)
        return NULL;
    return json_loadb(r->body.data, r->body.len, JSON_REJECT_DUPLICATES, NULL);
}

/* When the body is an OAuth error ({"error": "...", "error_description": "..."}) or GitHub's
 * REST error ({"message": "..."}), writes "code: description" to out and returns true. */
static bool error_text(json_t *j, bool allow_message, char *out, size_t n)
{
    const char *code = json_string_value(json_object_get(j, "error"));
    const char *desc = json_string_value(json_object_get(j, "error_description"));
    if (!code && allow_message)
        code = json_string_value(json_object_get(j, "message"));
    if (!code)
        return false;
    char c[PROVIDER_TEXT_MAX + 1], d[PROVIDER_TEXT_MAX + 1];
    clean_text(code, c, sizeof(c));
    clean_text(desc ? desc : "", d, sizeof(d));
    snprintf(out, n, "%s%s%s", c, d[0] ? ": " : "", d);
    return true;
}

static const char *describe_type(const struct reply *r)
{
    return r->content_type[0] ? r->content_type : "no Content-Type";
}

/* ---- the finish step ---- */

/* Exchanges the code; on success *access_token and maybe *id_token are set (caller wipes). */
static int exchange_code(const struct oauth_provider *p, long long deadline, const char *code,
                         const char *verifier, char **access_token, char **id_token, char *err,
                         size_t errn)
{
    const char *what = "token endpoint";
    struct buf form;
    buf_init(&form, URL_BUILD_MAX);
    add_param(&form, "grant_type", "authorization_code");
    add_param(&form, "code", code);
    add_param(&form, "redirect_uri", p->redirect_uri);
    add_param(&form, "code_verifier", verifier);
    struct curl_slist *hdr = NULL;
    hdr = header_add(hdr, "Accept: application/json");
    hdr = header_add(hdr, "Content-Type: application/x-www-form-urlencoded");
    if (p->client_auth == OAUTH_AUTH_BASIC) {
        /* RFC 6749 §2.3.1: id and secret are form-encoded before they are joined */
        struct buf cred, line;
        buf_init(&cred, 8192);
        buf_init(&line, 16384);
        pct_encode(&cred, p->client_id);
        buf_putc(&cred, ':');
        pct_encode(&cred, p->client_secret);
        size_t b64len = sodium_base64_ENCODED_LEN(cred.len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = xmalloc(b64len);
        sodium_bin2base64(b64, b64len, (const unsigned char *)buf_cstr(&cred), cred.len,
                          sodium_base64_VARIANT_ORIGINAL);
        buf_puts(&line, "Authorization: Basic ");
        buf_puts(&line, b64);
        hdr = header_add(hdr, buf_cstr(&line));
        sodium_memzero(b64, b64len);
        free(b64);
        buf_wipe_free(&cred);
        buf_wipe_free(&line);
    } else {
        add_param(&form, "client_id", p->client_id);
        add_param(&form, "client_secret", p->client_secret);
    }
    int rc = OAUTH_OK;
    struct reply r;
    memset(&r, 0, sizeof(r));
    if (form.overflow)
        rc = fail(err, errn, OAUTH_ERR_INVALID, "%s: request body too long", what);
    else
        rc = http_call(p, deadline, what, p->token_url, hdr, buf_cstr(&form), form.len, &r, err,
                       errn);
    buf_wipe_free(&form);
    headers_free(hdr);
    if (rc != OAUTH_OK) {
        reply_free(&r);
        return rc;
    }

    json_t *j = reply_json(&r);
    char text[2 * PROVIDER_TEXT_MAX + 8];
    if (json_is_object(j) && error_text(j, false, text, sizeof(text))) {
        /* standard errors come with 400/401; GitHub answers 200 with an error body */
        rc = fail(err, errn, OAUTH_ERR_PROVIDER, "%s: %s", what, text);
    } else if (r.status < 200 || r.status > 299) {
        rc = fail(err, errn, OAUTH_ERR_HTTP, "%s answered HTTP %ld", what, r.status);
    } else if (!json_is_object(j)) {
        rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: response is not a JSON object (HTTP %ld, %s)",
                  what, r.status, describe_type(&r));
    } else {
        const char *at = json_string_value(json_object_get(j, "access_token"));
        json_t *tt = json_object_get(j, "token_type");
        json_t *idt = json_object_get(j, "id_token");
        if (!at || !is_visible_ascii(at, 8192)) {
            rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: no usable access_token in the response",
                      what);
        } else if (tt && (!json_is_string(tt) || strcasecmp(json_string_value(tt), "bearer"))) {
            rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: token_type is not Bearer", what);
        } else if (idt && !json_is_null(idt) && !json_is_string(idt)) {
            rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: id_token is not a string", what);
        } else {
            *access_token = xstrdup(at);
            if (json_is_string(idt))
                *id_token = xstrdup(json_string_value(idt));
        }
    }
    if (j) {
        /* the tree holds the tokens: wipe their strings before releasing it */
        const char *keys[] = {"access_token", "id_token", "refresh_token"};
        for (size_t i = 0; json_is_object(j) && i < ARRAY_LEN(keys); i++) {
            json_t *s = json_object_get(j, keys[i]);
            if (json_is_string(s))
                sodium_memzero((void *)json_string_value(s), json_string_length(s));
        }
        json_decref(j);
    }
    reply_free(&r);
    return rc;
}

/* Checks an id_token's claims (see oauth.h: no signature check, TLS from the token endpoint
 * stands in for it) and returns its sub in *sub. */
static int check_id_token(const struct oauth_provider *p, const char *idt, const char *verifier,
                          char **sub, char *err, size_t errn)
{
    const char *what = "id_token";
    size_t total = strlen(idt);
    const char *d1 = strchr(idt, '.');
    const char *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (total > ID_TOKEN_MAX || !d1 || !d2 || strchr(d2 + 1, '.') || d2 == d1 + 1)
        return fail(err, errn, OAUTH_ERR_RESPONSE, "%s: not a compact JWS", what);
    size_t plen = (size_t)(d2 - (d1 + 1));
    unsigned char *bin = xmalloc(plen);
    size_t blen = 0;
    if (sodium_base642bin(bin, plen, d1 + 1, plen, NULL, &blen, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0) {
        free(bin);
        return fail(err, errn, OAUTH_ERR_RESPONSE, "%s: payload is not base64url", what);
    }
    json_t *c = json_loadb((const char *)bin, blen, JSON_REJECT_DUPLICATES, NULL);
    free(bin);
    int rc = OAUTH_OK;
    char expect_nonce[OAUTH_NONCE_LEN + 1];
    oauth_nonce_for(verifier, expect_nonce);
    if (!json_is_object(c)) {
        rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: payload is not a JSON object", what);
        goto out;
    }
    const char *iss = json_string_value(json_object_get(c, "iss"));
    if (p->issuer && (!iss || strcmp(iss, p->issuer) != 0)) {
        rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: iss is not the provider's issuer", what);
        goto out;
    }
    json_t *aud = json_object_get(c, "aud");
    bool aud_ok = false;
    if (json_is_string(aud)) {
        aud_ok = strcmp(json_string_value(aud), p->client_id) == 0;
    } else if (json_is_array(aud)) {
        size_t i;
        json_t *a;
        json_array_foreach (aud, i, a) {
            if (json_is_string(a) && strcmp(json_string_value(a), p->client_id) == 0)
                aud_ok = true;
        }
    }
    const char *azp = json_string_value(json_object_get(c, "azp"));
    if (!aud_ok || (azp && strcmp(azp, p->client_id) != 0)) {
        rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: not issued to this client (aud/azp)", what);
        goto out;
    }
    json_t *exp = json_object_get(c, "exp");
    if (!json_is_number(exp) || json_number_value(exp) + ID_TOKEN_SKEW_S < (double)time(NULL)) {
        rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: expired or without exp", what);
        goto out;
    }
    const char *nonce = json_string_value(json_object_get(c, "nonce"));
    if (!nonce || !token_equal(nonce, expect_nonce)) {
        rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: nonce does not match the request", what);
        goto out;
    }
    const char *s = json_string_value(json_object_get(c, "sub"));
    if (!s || !*s || strlen(s) > SUBJECT_MAX) {
        rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: no usable sub", what);
        goto out;
    }
    *sub = xstrdup(s);
out:
    json_decref(c);
    return rc;
}

/* GET url with the bearer token; the body must be JSON of the given type (object or array)
 * with a 2xx status. *out is a new reference. */
static int get_json(const struct oauth_provider *p, long long deadline, const char *what,
                    const char *url, const char *access_token, bool github, bool want_array,
                    json_t **out, long *status, char *err, size_t errn)
{
    *out = NULL;
    struct curl_slist *hdr = NULL;
    struct buf auth;
    buf_init(&auth, 16384);
    buf_printf(&auth, "Authorization: Bearer %s", access_token);
    hdr = header_add(hdr, buf_cstr(&auth));
    buf_wipe_free(&auth);
    if (github) {
        hdr = header_add(hdr, "Accept: application/vnd.github+json");
        hdr = header_add(hdr, "X-GitHub-Api-Version: 2022-11-28");
    } else {
        hdr = header_add(hdr, "Accept: application/json");
    }
    struct reply r;
    int rc = http_call(p, deadline, what, url, hdr, NULL, 0, &r, err, errn);
    headers_free(hdr);
    *status = r.status;
    if (rc != OAUTH_OK) {
        reply_free(&r);
        return rc;
    }
    json_t *j = reply_json(&r);
    char text[2 * PROVIDER_TEXT_MAX + 8];
    if (r.status < 200 || r.status > 299) {
        if (json_is_object(j) && error_text(j, true, text, sizeof(text)))
            rc = fail(err, errn, OAUTH_ERR_HTTP, "%s answered HTTP %ld: %s", what, r.status, text);
        else
            rc = fail(err, errn, OAUTH_ERR_HTTP, "%s answered HTTP %ld", what, r.status);
    } else if (want_array ? !json_is_array(j) : !json_is_object(j)) {
        rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: response is not a JSON %s (HTTP %ld, %s)",
                  what, want_array ? "array" : "object", r.status, describe_type(&r));
    } else {
        *out = j;
        j = NULL;
    }
    json_decref(j);
    reply_free(&r);
    return rc;
}

/* A profile string: present, 1..max bytes, no control characters; else NULL. */
static char *claim_str(json_t *o, const char *key, size_t max)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s || !*s || strlen(s) > max)
        return NULL;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f)
            return NULL;
    return xstrdup(s);
}

/* An address that looks like one: local@domain, no spaces; else NULL. */
static char *claim_email(json_t *o, const char *key)
{
    char *e = claim_str(o, key, EMAIL_MAX);
    if (!e)
        return NULL;
    const char *at = strchr(e, '@');
    if (!at || at == e || !at[1] || strchr(at + 1, '@') || strchr(e, ' ')) {
        free(e);
        return NULL;
    }
    return e;
}

/* email_verified is a boolean, though some providers send the string "true". */
static bool claim_true(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);
    return json_is_true(v) || (json_is_string(v) && strcmp(json_string_value(v), "true") == 0);
}

static int oidc_identity(const struct oauth_provider *p, long long deadline,
                         const char *access_token, const char *id_sub, struct oauth_identity *id,
                         char *err, size_t errn)
{
    const char *what = "userinfo endpoint";
    json_t *u;
    long status;
    int rc = get_json(p, deadline, what, p->userinfo_url, access_token, false, false, &u, &status,
                      err, errn);
    if (rc != OAUTH_OK)
        return rc;
    id->subject = claim_str(u, "sub", SUBJECT_MAX);
    if (!id->subject) {
        rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: no usable sub", what);
    } else if (id_sub && strcmp(id_sub, id->subject) != 0) {
        rc = fail(err, errn, OAUTH_ERR_RESPONSE, "%s: sub differs from the id_token's", what);
    } else {
        id->email = claim_email(u, "email");
        id->email_verified = id->email && claim_true(u, "email_verified");
        id->name = claim_str(u, "name", PROFILE_MAX);
        id->given_name = claim_str(u, "given_name", PROFILE_MAX);
        id->family_name = claim_str(u, "family_name", PROFILE_MAX);
        id->picture = claim_str(u, "picture", PICTURE_MAX);
    }
    json_decref(u);
    return rc;
}

static int github_identity(const struct oauth_provider *p, long long deadline,
                           const char *access_token, struct oauth_identity *id, char *err,
                           size_t errn)
{
    json_t *u;
    long status;
    int rc = get_json(p, deadline, "user endpoint", p->userinfo_url, access_token, true, false, &u,
                      &status, err, errn);
    if (rc != OAUTH_OK)
        return rc;
    json_t *jid = json_object_get(u, "id");
    if (!json_is_integer(jid) || json_integer_value(jid) <= 0) {
        json_decref(u);
        return fail(err, errn, OAUTH_ERR_RESPONSE, "user endpoint: no usable id");
    }
    char sub[32];
    snprintf(sub, sizeof(sub), "%" JSON_INTEGER_FORMAT, json_integer_value(jid));
    id->subject = xstrdup(sub);
    id->name = claim_str(u, "name", PROFILE_MAX);
    if (!id->name)
        id->name = claim_str(u, "login", PROFILE_MAX);
    id->picture = claim_str(u, "avatar_url", PICTURE_MAX);
    char *public_email = claim_email(u, "email"); /* the profile's public address: unverified */
    json_decref(u);

    /* The verified primary address comes from /user/emails (scope user:email). */
    json_t *list;
    rc = get_json(p, deadline, "emails endpoint", p->emails_url, access_token, true, true, &list,
                  &status, err, errn);
    if (rc == OAUTH_ERR_HTTP && (status == 403 || status == 404)) {
        /* the token lacks user:email: fall back to the public address, unverified */
        log_msg(LOG_WARN, "oauth: %s: /user/emails refused (HTTP %ld); email not verified", p->name,
                status);
        id->email = public_email;
        if (err && errn)
            err[0] = '\0';
        return OAUTH_OK;
    }
    if (rc != OAUTH_OK) {
        free(public_email);
        return rc;
    }
    char *primary = NULL;
    bool verified = false;
    size_t i;
    json_t *e;
    json_array_foreach (list, i, e) {
        if (!json_is_object(e) || !json_is_true(json_object_get(e, "primary")))
            continue;
        char *addr = claim_email(e, "email");
        if (!addr)
            continue;
        free(primary);
        primary = addr;
        verified = json_is_true(json_object_get(e, "verified"));
    }
    json_decref(list);
    if (primary) {
        free(public_email);
        id->email = primary;
        id->email_verified = verified;
    } else {
        id->email = public_email;
    }
    return OAUTH_OK;
}

int oauth_finish(const struct oauth_provider *p, const char *code, const char *verifier,
                 struct oauth_identity *out, char *err, size_t errn)
{
    memset(out, 0, sizeof(*out));
    if (err && errn)
        err[0] = '\0';
    int rc = oauth_provider_validate(p, err, errn);
    if (rc != OAUTH_OK)
        return rc;
    if (!code || !is_vschar(code, OAUTH_CODE_MAX))
        return fail(err, errn, OAUTH_ERR_INVALID, "malformed authorization code");
    if (!oauth_verifier_valid(verifier))
        return fail(err, errn, OAUTH_ERR_INVALID, "malformed PKCE code verifier");
    oauth_global_init();
    long long deadline = now_ms() + p->timeout_ms;
    char *at = NULL, *idt = NULL, *id_sub = NULL;
    rc = exchange_code(p, deadline, code, verifier, &at, &idt, err, errn);
    if (rc == OAUTH_OK && idt && p->kind == OAUTH_OIDC)
        rc = check_id_token(p, idt, verifier, &id_sub, err, errn);
    if (rc == OAUTH_OK) {
        if (p->kind == OAUTH_GITHUB)
            rc = github_identity(p, deadline, at, out, err, errn);
        else
            rc = oidc_identity(p, deadline, at, id_sub, out, err, errn);
    }
    if (at)
        sodium_memzero(at, strlen(at));
    if (idt)
        sodium_memzero(idt, strlen(idt));
    free(at);
    free(idt);
    free(id_sub);
    if (rc != OAUTH_OK) {
        oauth_identity_free(out);
        return rc;
    }
    out->provider = xstrdup(p->name);
    return OAUTH_OK;
}

void oauth_identity_free(struct oauth_identity *id)
{
    if (!id)
        return;
    free(id->provider);
    free(id->subject);
    free(id->email);
    free(id->name);
    free(id->given_name);
    free(id->family_name);
    free(id->picture);
    memset(id, 0, sizeof(*id));
}
