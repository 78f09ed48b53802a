/*
 * fake_oidc.h — a small OAuth 2.0 / OpenID Connect provider on 127.0.0.1 for tests: real HTTP
 * (libmicrohttpd, a free port, its own threads), following RFC 6749, RFC 7636 and OIDC Core.
 *
 *   GET  /authorize     checks client_id, redirect_uri, response_type=code, PKCE S256 and state;
 *                       issues a one-time code bound to the challenge, redirect_uri, nonce and
 *                       the configured user; 302 to redirect_uri?code=…&state=…
 *   POST /token         checks grant_type, client credentials (client_secret_post or _basic),
 *                       the code (single use, expiry), redirect_uri and PKCE
 *                       (BASE64URL(SHA256(code_verifier)) == challenge); answers access_token
 *                       (+ an HS256 id_token signed with the client secret, when enabled)
 *   GET  /userinfo      Bearer access token → {sub, email, email_verified, name, …}
 *   GET  /user          GitHub's shape: {id, login, name, avatar_url, email} (needs User-Agent)
 *   GET  /user/emails   GitHub's shape: [{email, primary, verified, visibility}]
 *
 * Owns its daemon, the codes and tokens it issued and a record of what it saw. Faults can be
 * switched on to test the client's error handling. Independent of Criterion and of the app.
 */
#ifndef ZYGO_TEST_FAKE_OIDC_H
#define ZYGO_TEST_FAKE_OIDC_H

#include <stdbool.h>
#include <stddef.h>

struct fake_oidc;

/* The signed-in user the provider describes (strings copied; NULL/empty = absent). */
struct fake_oidc_user {
    const char *sub;
    const char *email;
    bool email_verified;
    const char *name;
    const char *given_name;
    const char *family_name;
    const char *picture;
    long long github_id; /* GitHub's numeric id (/user); default 4242 */
    const char *login;   /* GitHub login */
};

struct fake_oidc_options {
    const char *client_id;     /* default "zygo-client" */
    const char *client_secret; /* default "zygo-secret" */
    const char *redirect_uri;  /* the one registered redirect URI (required) */
    bool id_token;             /* add an id_token to token responses */
    bool github;               /* token errors answered 200 like GitHub; no id_token */
    int code_ttl_s;            /* default 60 */
};

enum fake_oidc_fault {
    FAKE_OIDC_NO_FAULT = 0,
    FAKE_OIDC_USERINFO_NOT_JSON,  /* /userinfo and /user answer 200 text/html */
    FAKE_OIDC_USERINFO_500,       /* /userinfo and /user answer 500 */
    FAKE_OIDC_TOKEN_NOT_JSON,     /* /token answers 200 text/html */
    FAKE_OIDC_TOKEN_NO_ACCESS,    /* /token answers 200 JSON without access_token */
    FAKE_OIDC_TOKEN_HUGE,         /* /token answers 2 MiB of JSON */
    FAKE_OIDC_TOKEN_SLOW,         /* /token waits slow_ms before answering */
    FAKE_OIDC_ID_TOKEN_BAD_NONCE, /* the id_token carries another nonce */
    FAKE_OIDC_ID_TOKEN_OTHER_SUB, /* the id_token names another subject */
    FAKE_OIDC_ID_TOKEN_OTHER_AUD, /* the id_token was issued to another client */
    FAKE_OIDC_EMAILS_404,         /* /user/emails answers 404 (no user:email scope) */
};

/* What the provider saw (the last request of each kind, and counts). */
struct fake_oidc_seen {
    int authorize_calls, token_calls, userinfo_calls, user_calls, emails_calls;
    /* last /authorize query */
    char response_type[64], client_id[128], redirect_uri[512], scope[256], state[256];
    char code_challenge[256], code_challenge_method[32], nonce[256];
    /* last /token request */
    char grant_type[64];
    char client_auth[16]; /* "post", "basic" or "none" */
    char content_type[128], accept[128];
    bool had_verifier;
    char token_error[64]; /* the OAuth error it answered ("" after a success) */
    /* last /userinfo or /user request */
    char auth_scheme[32];
    char user_agent[128];
};

/* Starts the provider on a free loopback port; NULL (with a message on stderr) on failure. */
struct fake_oidc *fake_oidc_start(const struct fake_oidc_options *o,
                                  const struct fake_oidc_user *u);
void fake_oidc_stop(struct fake_oidc *f);

int fake_oidc_port(const struct fake_oidc *f);
/* "http://127.0.0.1:PORT" — also the issuer in id_tokens. */
const char *fake_oidc_base(const struct fake_oidc *f);
/* base + path, e.g. fake_oidc_url(f, "/token", buf, sizeof(buf)). */
const char *fake_oidc_url(const struct fake_oidc *f, const char *path, char *out, size_t n);

void fake_oidc_set_user(struct fake_oidc *f, const struct fake_oidc_user *u);
void fake_oidc_set_fault(struct fake_oidc *f, enum fake_oidc_fault fault, int slow_ms);
/* Every code issued so far expires now. */
void fake_oidc_expire_codes(struct fake_oidc *f);
void fake_oidc_seen(struct fake_oidc *f, struct fake_oidc_seen *out);

/* The browser's leg: GETs the authorization URL with libcurl without following the redirect
 * and copies the Location header to `location`. Returns the HTTP status (0 on a transport
 * error). */
long fake_oidc_browse(const char *authorize_url, char *location, size_t n);
/* A query parameter of a URL, percent-decoded; false when absent. */
bool fake_oidc_query_param(const char *url, const char *name, char *out, size_t n);

#endif
