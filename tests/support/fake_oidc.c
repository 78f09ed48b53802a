/* fake_oidc.c — a small OAuth 2.0 / OpenID Connect provider on loopback; see fake_oidc.h. */
#include "lib/common.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/token.h"
#include "lib/url.h"
#include "fake_oidc.h"

#define MAX_ISSUED 64        /* codes and tokens remembered (a ring) */
#define BODY_MAX 65536       /* largest /token body accepted */
#define HUGE_BODY (2u << 20) /* FAKE_OIDC_TOKEN_HUGE */

struct user_copy {
    char sub[256], email[256], name[256], given_name[256], family_name[256], picture[512];
    char login[128];
    bool email_verified;
    long long github_id;
};

struct grant { /* an authorization code */
    bool live, used;
    char code[TOKEN_LEN + 1];
    char challenge[128], redirect_uri[512], nonce[256], scope[256];
    time_t expires;
    struct user_copy user;
};

struct access {
    bool live;
    char token[TOKEN_LEN + 1];
    struct user_copy user;
};

struct fake_oidc {
    struct MHD_Daemon *d;
    int port;
    char base[64];
    char client_id[128], client_secret[128], redirect_uri[512];
    bool id_token, github;
    int code_ttl_s;
    atomic_bool stopping;

    pthread_mutex_t mu; /* everything below */
    struct user_copy user;
    enum fake_oidc_fault fault;
    int slow_ms;
    struct grant grants[MAX_ISSUED];
    size_t next_grant;
    struct access tokens[MAX_ISSUED];
    size_t next_token;
    struct fake_oidc_seen seen;
};

/* Per-request state: the request body as it arrives. */
struct conn {
    struct buf body;
};

static void copy_str(char *dst, size_t n, const char *src)
{
    snprintf(dst, n, "%s", src ? src : "");
}
#define COPY(dst, src) copy_str((dst), sizeof(dst), (src))

static void user_copy(struct user_copy *d, const struct fake_oidc_user *u)
{
    memset(d, 0, sizeof(*d));
    if (!u)
        return;
    COPY(d->sub, u->sub);
    COPY(d->email, u->email);
    COPY(d->name, u->name);
    COPY(d->given_name, u->given_name);
    COPY(d->family_name, u->family_name);
    COPY(d->picture, u->picture);
    COPY(d->login, u->login);
    d->email_verified = u->email_verified;
    d->github_id = u->github_id ? u->github_id : 4242;
}

/* ---- responses ---- */

static enum MHD_Result respond(struct MHD_Connection *c, unsigned status, const char *ctype,
                               const char *body, size_t len, const char *location,
                               const char *www_auth)
{
    struct MHD_Response *r =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!r)
        return MHD_NO;
    if (ctype)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (location)
        MHD_add_response_header(r, MHD_HTTP_HEADER_LOCATION, location);
    if (www_auth)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, www_auth);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Answers with a JSON value (reference stolen). */
static enum MHD_Result respond_json(struct MHD_Connection *c, unsigned status, json_t *j,
                                    const char *www_auth)
{
    char *s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (!s)
        return MHD_NO;
    enum MHD_Result ret =
        respond(c, status, "application/json;charset=UTF-8", s, strlen(s), NULL, www_auth);
    free(s);
    return ret;
}

/* An OAuth error from the token endpoint: the given status, or 200 when imitating GitHub. */
static enum MHD_Result token_error(struct fake_oidc *f, struct MHD_Connection *c, unsigned status,
                                   const char *code, const char *desc, const char *www_auth)
{
    pthread_mutex_lock(&f->mu);
    COPY(f->seen.token_error, code);
    pthread_mutex_unlock(&f->mu);
    return respond_json(c, f->github ? 200 : status,
                        json_pack("{s:s, s:s}", "error", code, "error_description", desc),
                        www_auth);
}

/* ---- URL helpers ---- */

static void pct_encode(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '.' || *p == '_' || *p == '~') {
            buf_putc(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(b, e, 3);
        }
    }
}

/* Value of `name` in an "a=1&b=2" string, decoded (+ is a space); false when absent. */
static bool pairs_get(const char *q, const char *name, char *out, size_t n)
{
    while (q && *q) {
        size_t len = strcspn(q, "&");
        const char *eq = memchr(q, '=', len);
        size_t klen = eq ? (size_t)(eq - q) : len;
        char *key = xstrndup(q, klen);
        url_decode(key, true);
        bool match = strcmp(key, name) == 0;
        free(key);
        if (match) {
            char *v = eq ? xstrndup(eq + 1, len - klen - 1) : xstrdup("");
            url_decode(v, true);
            snprintf(out, n, "%s", v);
            bool fits = strlen(v) < n;
            free(v);
            return fits;
        }
        q += len;
        if (*q == '&')
            q++;
    }
    return false;
}

bool fake_oidc_query_param(const char *url, const char *name, char *out, size_t n)
{
    const char *q = strchr(url, '?');
    if (!q)
        return false;
    char *query = xstrndup(q + 1, strcspn(q + 1, "#"));
    bool ok = pairs_get(query, name, out, n);
    free(query);
    return ok;
}

static bool b64url_43(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if (!((s[n] >= 'A' && s[n] <= 'Z') || (s[n] >= 'a' && s[n] <= 'z') ||
              (s[n] >= '0' && s[n] <= '9') || s[n] == '-' || s[n] == '_'))
            return false;
    return n == 43;
}

static bool verifier_ok(const char *v)
{
    size_t n = 0;
    for (; v[n]; n++)
        if (!((v[n] >= 'A' && v[n] <= 'Z') || (v[n] >= 'a' && v[n] <= 'z') ||
              (v[n] >= '0' && v[n] <= '9') || strchr("-._~", v[n])))
            return false;
    return n >= 43 && n <= 128;
}

static void b64url(const unsigned char *bin, size_t len, struct buf *out)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = xmalloc(cap);
    sodium_bin2base64(s, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    buf_puts(out, s);
    free(s);
}

/* ---- /authorize ---- */

static const char *arg(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_GET_ARGUMENT_KIND, name);
}

static enum MHD_Result redirect_error(struct MHD_Connection *c, const char *redirect_uri,
                                      const char *error, const char *desc, const char *state)
{
    struct buf b;
    buf_init(&b, 8192);
    buf_puts(&b, redirect_uri);
    buf_puts(&b, strchr(redirect_uri, '?') ? "&error=" : "?error=");
    pct_encode(&b, error);
    buf_puts(&b, "&error_description=");
    pct_encode(&b, desc);
    if (state && *state) {
        buf_puts(&b, "&state=");
        pct_encode(&b, state);
    }
    enum MHD_Result r = respond(c, 302, "text/plain", "", 0, buf_cstr(&b), NULL);
    buf_free(&b);
    return r;
}

static enum MHD_Result on_authorize(struct fake_oidc *f, struct MHD_Connection *c)
{
    const char *client_id = arg(c, "client_id"), *redirect_uri = arg(c, "redirect_uri");
    const char *response_type = arg(c, "response_type"), *state = arg(c, "state");
    const char *challenge = arg(c, "code_challenge"), *method = arg(c, "code_challenge_method");
    const char *nonce = arg(c, "nonce"), *scope = arg(c, "scope");
    pthread_mutex_lock(&f->mu);
    struct fake_oidc_seen *s = &f->seen;
    s->authorize_calls++;
    COPY(s->response_type, response_type);
    COPY(s->client_id, client_id);
    COPY(s->redirect_uri, redirect_uri);
    COPY(s->scope, scope);
    COPY(s->state, state);
    COPY(s->code_challenge, challenge);
    COPY(s->code_challenge_method, method);
    COPY(s->nonce, nonce);
    pthread_mutex_unlock(&f->mu);

    /* RFC 6749 §4.1.2.1: a bad client or redirect URI is never redirected to */
    if (!client_id || strcmp(client_id, f->client_id) != 0)
        return respond_json(c, 400,
                            json_pack("{s:s, s:s}", "error", "invalid_request", "error_description",
                                      "unknown client_id"),
                            NULL);
    if (!redirect_uri || strcmp(redirect_uri, f->redirect_uri) != 0)
        return respond_json(c, 400,
                            json_pack("{s:s, s:s}", "error", "invalid_request", "error_description",
                                      "redirect_uri is not registered"),
                            NULL);
    if (!response_type || strcmp(response_type, "code") != 0)
        return redirect_error(c, redirect_uri, "unsupported_response_type",
                              "only response_type=code", state);
    if (!state || !*state)
        return redirect_error(c, redirect_uri, "invalid_request", "state is required", NULL);
    if (!challenge || !method || strcmp(method, "S256") != 0 || !b64url_43(challenge))
        return redirect_error(c, redirect_uri, "invalid_request", "PKCE with S256 is required",
                              state);

    struct grant g;
    memset(&g, 0, sizeof(g));
    g.live = true;
    token_new(g.code, sizeof(g.code));
    COPY(g.challenge, challenge);
    COPY(g.redirect_uri, redirect_uri);
    COPY(g.nonce, nonce);
    COPY(g.scope, scope);
    g.expires = time(NULL) + f->code_ttl_s;
    pthread_mutex_lock(&f->mu);
    g.user = f->user;
    f->grants[f->next_grant++ % MAX_ISSUED] = g;
    pthread_mutex_unlock(&f->mu);

    struct buf loc;
    buf_init(&loc, 8192);
    buf_puts(&loc, redirect_uri);
    buf_puts(&loc, strchr(redirect_uri, '?') ? "&code=" : "?code=");
    pct_encode(&loc, g.code);
    buf_puts(&loc, "&state=");
    pct_encode(&loc, state);
    enum MHD_Result r = respond(c, 302, "text/plain", "", 0, buf_cstr(&loc), NULL);
    buf_free(&loc);
    return r;
}

/* ---- /token ---- */

static const char *header(struct MHD_Connection *c, const char *name)
{
    return MHD_lookup_connection_value(c, MHD_HEADER_KIND, name);
}

/* Client authentication: client_secret_basic or client_secret_post, exactly one of them.
 * Returns NULL when the client is authenticated, else the error description; *basic tells
 * which method was tried. */
static const char *client_auth(struct fake_oidc *f, struct MHD_Connection *c, const char *body,
                               bool *basic)
{
    const char *h = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
    char id[600] = "", secret[600] = "";
    bool form_id = pairs_get(body, "client_id", id, sizeof(id));
    bool form_secret = pairs_get(body, "client_secret", secret, sizeof(secret));
    *basic = h && strncasecmp(h, "Basic ", 6) == 0;
    pthread_mutex_lock(&f->mu);
    COPY(f->seen.client_auth, *basic ? "basic" : form_secret ? "post" : "none");
    pthread_mutex_unlock(&f->mu);
    if (*basic && form_secret)
        return "more than one client authentication method";
    if (*basic) {
        unsigned char raw[600];
        size_t len = 0;
        const char *b64 = h + 6;
        if (sodium_base642bin(raw, sizeof(raw) - 1, b64, strlen(b64), NULL, &len, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0)
            return "malformed Basic credentials";
        raw[len] = '\0';
        char *colon = strchr((char *)raw, ':');
        if (!colon)
            return "malformed Basic credentials";
        *colon = '\0';
        /* RFC 6749 §2.3.1: both parts are form-encoded */
        url_decode((char *)raw, true);
        url_decode(colon + 1, true);
        if (form_id && strcmp(id, (char *)raw) != 0)
            return "client_id differs from the Basic credentials";
        snprintf(id, sizeof(id), "%s", (char *)raw);
        snprintf(secret, sizeof(secret), "%s", colon + 1);
    } else if (!form_id || !form_secret) {
        return "client authentication required";
    }
    if (strcmp(id, f->client_id) != 0 || strcmp(secret, f->client_secret) != 0)
        return "client authentication failed";
    return NULL;
}

static void id_token_for(struct fake_oidc *f, const struct grant *g, enum fake_oidc_fault fault,
                         struct buf *out)
{
    time_t now = time(NULL);
    json_t *claims =
        json_pack("{s:s, s:s, s:s, s:I, s:I}", "iss", f->base, "sub",
                  fault == FAKE_OIDC_ID_TOKEN_OTHER_SUB ? "someone-else" : g->user.sub, "aud",
                  fault == FAKE_OIDC_ID_TOKEN_OTHER_AUD ? "other-client" : f->client_id, "iat",
                  (json_int_t)now, "exp", (json_int_t)(now + 300));
    if (g->nonce[0])
        json_object_set_new(
            claims, "nonce",
            json_string(fault == FAKE_OIDC_ID_TOKEN_BAD_NONCE ? "another-nonce" : g->nonce));
    if (g->user.email[0]) {
        json_object_set_new(claims, "email", json_string(g->user.email));
        json_object_set_new(claims, "email_verified", json_boolean(g->user.email_verified));
    }
    char *payload = json_dumps(claims, JSON_COMPACT);
    json_decref(claims);
    const char *hdr = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    b64url((const unsigned char *)hdr, strlen(hdr), out);
    buf_putc(out, '.');
    b64url((const unsigned char *)payload, strlen(payload), out);
    free(payload);
    /* HS256 with the client secret, as OIDC Core §10.1 allows for confidential clients */
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)f->client_secret,
                                strlen(f->client_secret));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)out->data, out->len);
    crypto_auth_hmacsha256_final(&st, mac);
    buf_putc(out, '.');
    b64url(mac, sizeof(mac), out);
}

static void slow_down(struct fake_oidc *f, int ms)
{
    for (int waited = 0; waited < ms && !atomic_load(&f->stopping); waited += 10)
        usleep(10 * 1000);
}

static enum MHD_Result on_token(struct fake_oidc *f, struct MHD_Connection *c, struct conn *st)
{
    const char *body = buf_cstr(&st->body);
    char grant_type[64] = "", code[128] = "", redirect_uri[512] = "", verifier[256] = "";
    pairs_get(body, "grant_type", grant_type, sizeof(grant_type));
    pairs_get(body, "code", code, sizeof(code));
    pairs_get(body, "redirect_uri", redirect_uri, sizeof(redirect_uri));
    bool has_verifier = pairs_get(body, "code_verifier", verifier, sizeof(verifier));
    pthread_mutex_lock(&f->mu);
    struct fake_oidc_seen *s = &f->seen;
    s->token_calls++;
    COPY(s->grant_type, grant_type);
    COPY(s->content_type, header(c, MHD_HTTP_HEADER_CONTENT_TYPE));
    COPY(s->accept, header(c, MHD_HTTP_HEADER_ACCEPT));
    s->had_verifier = has_verifier;
    s->token_error[0] = '\0';
    enum fake_oidc_fault fault = f->fault;
    int slow_ms = f->slow_ms;
    pthread_mutex_unlock(&f->mu);

    if (fault == FAKE_OIDC_TOKEN_SLOW)
        slow_down(f, slow_ms);
    if (st->body.overflow)
        return token_error(f, c, 400, "invalid_request", "request body too large", NULL);
    const char *ct = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || strncasecmp(ct, "application/x-www-form-urlencoded", 33) != 0)
        return token_error(f, c, 400, "invalid_request", "expected a form body", NULL);
    bool basic;
    const char *why = client_auth(f, c, body, &basic);
    if (why)
        return token_error(f, c, 401, "invalid_client", why,
                           basic ? "Basic realm=\"fake-oidc\"" : NULL);
    if (fault == FAKE_OIDC_TOKEN_NOT_JSON) {
        const char *html = "<html><body>Service temporarily unavailable</body></html>";
        return respond(c, 200, "text/html", html, strlen(html), NULL, NULL);
    }
    if (strcmp(grant_type, "authorization_code") != 0)
        return token_error(f, c, 400, "unsupported_grant_type", "only authorization_code", NULL);

    /* the code: known, unused, unexpired; spent by this attempt whatever follows */
    pthread_mutex_lock(&f->mu);
    struct grant *g = NULL;
    for (size_t i = 0; i < MAX_ISSUED; i++)
        if (f->grants[i].live && code[0] && strcmp(f->grants[i].code, code) == 0)
            g = &f->grants[i];
    struct grant copy;
    memset(&copy, 0, sizeof(copy));
    const char *bad = NULL;
    if (!g) {
        bad = "unknown authorization code";
    } else if (g->used) {
        bad = "authorization code already used";
    } else if (time(NULL) >= g->expires) {
        bad = "authorization code expired";
    } else {
        g->used = true;
        copy = *g;
    }
    pthread_mutex_unlock(&f->mu);
    if (bad)
        return token_error(f, c, 400, "invalid_grant", bad, NULL);
    if (strcmp(redirect_uri, copy.redirect_uri) != 0)
        return token_error(f, c, 400, "invalid_grant", "redirect_uri does not match", NULL);
    /* RFC 7636 §4.6 */
    if (!has_verifier || !verifier_ok(verifier))
        return token_error(f, c, 400, "invalid_grant", "code_verifier missing or malformed", NULL);
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)verifier, strlen(verifier));
    struct buf challenge;
    buf_init(&challenge, 128);
    b64url(h, sizeof(h), &challenge);
    bool pkce_ok = strcmp(buf_cstr(&challenge), copy.challenge) == 0;
    buf_free(&challenge);
    if (!pkce_ok)
        return token_error(f, c, 400, "invalid_grant", "PKCE verification failed", NULL);

    if (fault == FAKE_OIDC_TOKEN_NO_ACCESS)
        return respond_json(c, 200, json_pack("{s:s}", "token_type", "Bearer"), NULL);
    if (fault == FAKE_OIDC_TOKEN_HUGE) {
        struct buf big;
        buf_init(&big, HUGE_BODY + 256);
        buf_puts(&big, "{\"access_token\":\"x\",\"pad\":\"");
        while (big.len < HUGE_BODY)
            buf_puts(&big, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        buf_puts(&big, "\"}");
        enum MHD_Result r = respond(c, 200, "application/json", big.data, big.len, NULL, NULL);
        buf_free(&big);
        return r;
    }

    struct access a;
    memset(&a, 0, sizeof(a));
    a.live = true;
    token_new(a.token, sizeof(a.token));
    a.user = copy.user;
    pthread_mutex_lock(&f->mu);
    f->tokens[f->next_token++ % MAX_ISSUED] = a;
    pthread_mutex_unlock(&f->mu);

    json_t *j = json_pack("{s:s, s:s, s:i, s:s}", "access_token", a.token, "token_type",
                          f->github ? "bearer" : "Bearer", "expires_in", 3600, "scope", copy.scope);
    if (f->id_token && !f->github) {
        struct buf idt;
        buf_init(&idt, 16384);
        id_token_for(f, &copy, fault, &idt);
        json_object_set_new(j, "id_token", json_string(buf_cstr(&idt)));
        buf_free(&idt);
    }
    return respond_json(c, 200, j, NULL);
}

/* ---- /userinfo, /user, /user/emails ---- */

/* The user behind the request's access token; false when there is none. */
static bool bearer_user(struct fake_oidc *f, struct MHD_Connection *c, bool github,
                        struct user_copy *u)
{
    const char *h = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
    const char *ua = header(c, MHD_HTTP_HEADER_USER_AGENT);
    size_t sp = h ? strcspn(h, " ") : 0;
    pthread_mutex_lock(&f->mu);
    snprintf(f->seen.auth_scheme, sizeof(f->seen.auth_scheme), "%.*s", (int)sp, h ? h : "");
    COPY(f->seen.user_agent, ua);
    bool found = false;
    const char *tok = NULL;
    if (h && strncasecmp(h, "Bearer ", 7) == 0)
        tok = h + 7;
    else if (github && h && strncasecmp(h, "token ", 6) == 0)
        tok = h + 6;
    for (size_t i = 0; tok && i < MAX_ISSUED; i++) {
        if (f->tokens[i].live && strcmp(f->tokens[i].token, tok) == 0) {
            *u = f->tokens[i].user;
            found = true;
        }
    }
    pthread_mutex_unlock(&f->mu);
    return found;
}

static void set_opt_str(json_t *o, const char *key, const char *v)
{
    if (v && *v)
        json_object_set_new(o, key, json_string(v));
}

static enum fake_oidc_fault current_fault(struct fake_oidc *f)
{
    pthread_mutex_lock(&f->mu);
    enum fake_oidc_fault fault = f->fault;
    pthread_mutex_unlock(&f->mu);
    return fault;
}

static enum MHD_Result profile_fault(struct MHD_Connection *c, enum fake_oidc_fault fault)
{
    if (fault == FAKE_OIDC_USERINFO_NOT_JSON) {
        const char *html = "<!doctype html><title>Sign in</title><p>Please sign in</p>";
        return respond(c, 200, "text/html", html, strlen(html), NULL, NULL);
    }
    const char *t = "internal error";
    return respond(c, 500, "text/plain", t, strlen(t), NULL, NULL);
}

static enum MHD_Result on_userinfo(struct fake_oidc *f, struct MHD_Connection *c)
{
    pthread_mutex_lock(&f->mu);
    f->seen.userinfo_calls++;
    pthread_mutex_unlock(&f->mu);
    struct user_copy u;
    if (!bearer_user(f, c, false, &u))
        return respond_json(c, 401, json_pack("{s:s}", "error", "invalid_token"),
                            "Bearer error=\"invalid_token\"");
    enum fake_oidc_fault fault = current_fault(f);
    if (fault == FAKE_OIDC_USERINFO_NOT_JSON || fault == FAKE_OIDC_USERINFO_500)
        return profile_fault(c, fault);
    json_t *j = json_pack("{s:s}", "sub", u.sub);
    if (u.email[0]) {
        json_object_set_new(j, "email", json_string(u.email));
        json_object_set_new(j, "email_verified", json_boolean(u.email_verified));
    }
    set_opt_str(j, "name", u.name);
    set_opt_str(j, "given_name", u.given_name);
    set_opt_str(j, "family_name", u.family_name);
    set_opt_str(j, "picture", u.picture);
    return respond_json(c, 200, j, NULL);
}

static enum MHD_Result github_refuse(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return respond_json(c, status,
                        json_pack("{s:s, s:s}", "message", msg, "documentation_url",
                                  "https://docs.github.com/rest"),
                        NULL);
}

static enum MHD_Result on_github(struct fake_oidc *f, struct MHD_Connection *c, bool emails)
{
    pthread_mutex_lock(&f->mu);
    if (emails)
        f->seen.emails_calls++;
    else
        f->seen.user_calls++;
    pthread_mutex_unlock(&f->mu);
    struct user_copy u;
    bool ok = bearer_user(f, c, true, &u);
    const char *ua = header(c, MHD_HTTP_HEADER_USER_AGENT);
    if (!ua || !*ua) /* GitHub's API refuses requests without a User-Agent */
        return github_refuse(c, 403, "Request forbidden by administrative rules.");
    if (!ok)
        return github_refuse(c, 401, "Bad credentials");
    enum fake_oidc_fault fault = current_fault(f);
    if (!emails) {
        if (fault == FAKE_OIDC_USERINFO_NOT_JSON || fault == FAKE_OIDC_USERINFO_500)
            return profile_fault(c, fault);
        json_t *j = json_pack("{s:I, s:s}", "id", (json_int_t)u.github_id, "login",
                              u.login[0] ? u.login : "octocat");
        json_object_set_new(j, "name", u.name[0] ? json_string(u.name) : json_null());
        set_opt_str(j, "avatar_url", u.picture);
        /* the public profile address; may be any address, verified or not */
        json_object_set_new(j, "email", u.email[0] ? json_string(u.email) : json_null());
        return respond_json(c, 200, j, NULL);
    }
    if (fault == FAKE_OIDC_EMAILS_404)
        return github_refuse(c, 404, "Not Found");
    json_t *list = json_array();
    /* a verified secondary address first: only the primary one may be chosen */
    json_array_append_new(list, json_pack("{s:s, s:b, s:b, s:n}", "email",
                                          "4242+octocat@users.noreply.github.com", "primary", 0,
                                          "verified", 1, "visibility"));
    if (u.email[0])
        json_array_append_new(list, json_pack("{s:s, s:b, s:b, s:s}", "email", u.email, "primary",
                                              1, "verified", (int)u.email_verified, "visibility",
                                              "private"));
    return respond_json(c, 200, list, NULL);
}

/* ---- the daemon ---- */

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct fake_oidc *f = cls;
    struct conn *st = *con_cls;
    if (!st) {
        st = xcalloc(1, sizeof(*st));
        buf_init(&st->body, BODY_MAX);
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_size) {
        buf_append(&st->body, upload, *upload_size); /* past BODY_MAX: overflow flag */
        *upload_size = 0;
        return MHD_YES;
    }
    bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;
    if (get && strcmp(url, "/authorize") == 0)
        return on_authorize(f, c);
    if (post && strcmp(url, "/token") == 0)
        return on_token(f, c, st);
    if ((get || post) && strcmp(url, "/userinfo") == 0)
        return on_userinfo(f, c);
    if (get && strcmp(url, "/user") == 0)
        return on_github(f, c, false);
    if (get && strcmp(url, "/user/emails") == 0)
        return on_github(f, c, true);
    return respond_json(c, 404, json_pack("{s:s}", "error", "not_found"), NULL);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct conn *st = *con_cls;
    if (st) {
        buf_free(&st->body);
        free(st);
        *con_cls = NULL;
    }
}

struct fake_oidc *fake_oidc_start(const struct fake_oidc_options *o, const struct fake_oidc_user *u)
{
    token_crypto_init();
    struct fake_oidc *f = xcalloc(1, sizeof(*f));
    COPY(f->client_id, o && o->client_id ? o->client_id : "zygo-client");
    COPY(f->client_secret, o && o->client_secret ? o->client_secret : "zygo-secret");
    COPY(f->redirect_uri, o ? o->redirect_uri : NULL);
    f->id_token = o && o->id_token;
    f->github = o && o->github;
    f->code_ttl_s = o && o->code_ttl_s > 0 ? o->code_ttl_s : 60;
    atomic_init(&f->stopping, false);
    pthread_mutex_init(&f->mu, NULL);
    user_copy(&f->user, u);

    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = 0; /* the kernel picks a free port */
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_POLL,
                            0, NULL, NULL, on_request, f, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, f,
                            MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    if (!f->d) {
        fprintf(stderr, "fake_oidc: could not start the daemon\n");
        pthread_mutex_destroy(&f->mu);
        free(f);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(f->d, MHD_DAEMON_INFO_BIND_PORT);
    f->port = info ? info->port : 0;
    snprintf(f->base, sizeof(f->base), "http://127.0.0.1:%d", f->port);
    return f;
}

void fake_oidc_stop(struct fake_oidc *f)
{
    if (!f)
        return;
    atomic_store(&f->stopping, true);
    MHD_stop_daemon(f->d);
    pthread_mutex_destroy(&f->mu);
    free(f);
}

int fake_oidc_port(const struct fake_oidc *f)
{
    return f->port;
}

const char *fake_oidc_base(const struct fake_oidc *f)
{
    return f->base;
}

const char *fake_oidc_url(const struct fake_oidc *f, const char *path, char *out, size_t n)
{
    snprintf(out, n, "%s%s", f->base, path);
    return out;
}

void fake_oidc_set_user(struct fake_oidc *f, const struct fake_oidc_user *u)
{
    pthread_mutex_lock(&f->mu);
    user_copy(&f->user, u);
    pthread_mutex_unlock(&f->mu);
}

void fake_oidc_set_fault(struct fake_oidc *f, enum fake_oidc_fault fault, int slow_ms)
{
    pthread_mutex_lock(&f->mu);
    f->fault = fault;
    f->slow_ms = slow_ms;
    pthread_mutex_unlock(&f->mu);
}

void fake_oidc_expire_codes(struct fake_oidc *f)
{
    pthread_mutex_lock(&f->mu);
    for (size_t i = 0; i < MAX_ISSUED; i++)
        f->grants[i].expires = time(NULL) - 1;
    pthread_mutex_unlock(&f->mu);
}

void fake_oidc_seen(struct fake_oidc *f, struct fake_oidc_seen *out)
{
    pthread_mutex_lock(&f->mu);
    *out = f->seen;
    pthread_mutex_unlock(&f->mu);
}

/* ---- the browser ---- */

static size_t discard(char *data, size_t size, size_t nmemb, void *ud)
{
    (void)data, (void)ud;
    return size * nmemb;
}

long fake_oidc_browse(const char *authorize_url, char *location, size_t n)
{
    if (n)
        location[0] = '\0';
    CURL *h = curl_easy_init();
    if (!h)
        return 0;
    curl_easy_setopt(h, CURLOPT_URL, authorize_url);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    long status = 0;
    if (curl_easy_perform(h) == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        struct curl_header *loc = NULL;
        if (curl_easy_header(h, "Location", 0, CURLH_HEADER, -1, &loc) == CURLHE_OK && loc)
            snprintf(location, n, "%s", loc->value);
    }
    curl_easy_cleanup(h);
    return status;
}
