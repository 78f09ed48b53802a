/*
 * oauth.h — sign-in with OAuth 2.0 / OpenID Connect providers: the authorization-code flow with
 * PKCE (RFC 7636, S256 only) and `state`, for configurable providers with presets for Google
 * (OpenID Connect) and GitHub (plain OAuth 2.0 + its REST API).
 *
 * Owns:
 *  - provider descriptions (struct oauth_provider; every string in it is owned by it) and the
 *    set built from OAUTH_* configuration variables (struct oauth_providers);
 *  - the begin step: fresh state, PKCE verifier and challenge, OIDC nonce and the authorization
 *    URL the browser is sent to (struct oauth_begin);
 *  - the finish step: the code exchange at the token endpoint and the user's identity from the
 *    userinfo endpoint (GitHub: /user and /user/emails), over libcurl.
 * Not owned: keeping state → verifier between the two steps (the caller stores the pair in the
 * oauth_states table and deletes it on use), linking an identity to a user or creating one.
 *
 * Trust model. The userinfo endpoint, reached over verified TLS with the access token, is the
 * source of truth for the identity. An id_token in the token response is NOT signature-checked:
 * it arrives directly from the token endpoint over verified TLS, which OpenID Connect Core
 * §3.1.3.7 (6) accepts in place of the signature. Its claims are still checked (iss when the
 * provider has an issuer, aud contains client_id, exp, nonce), and its sub must equal the
 * userinfo sub (Core §5.3.2). The nonce is not stored: it is derived from the PKCE verifier
 * (BASE64URL(SHA-256("zygo-oidc-nonce:" || verifier))), which the caller keeps anyway.
 *
 * Transport rules: only http(s) URLs; plain http only to loopback hosts (127.0.0.1, localhost,
 * [::1] — the tests' fake provider); TLS peer and host verification always on; redirects never
 * followed; connect timeout 5 s; one deadline of 15 s for the whole finish step; every response
 * body capped at 1 MiB.
 *
 * oauth_finish() blocks on the network: call it from the worker pool, never the I/O thread.
 * Nothing here logs codes, verifiers, tokens or client secrets; error texts never contain them.
 */
#ifndef ZYGO_SERVICES_OAUTH_H
#define ZYGO_SERVICES_OAUTH_H

#include "lib/common.h"
#include "lib/config.h"

#define OAUTH_NAME_MAX 50      /* provider names: [a-z0-9_-]{1,50} (oauth_states.provider) */
#define OAUTH_STATE_LEN 43     /* 256 random bits, base64url, no padding */
#define OAUTH_VERIFIER_LEN 43  /* 256 random bits, base64url (RFC 7636 allows 43–128) */
#define OAUTH_CHALLENGE_LEN 43 /* BASE64URL(SHA-256(verifier)) */
#define OAUTH_NONCE_LEN 43
#define OAUTH_REDIRECT_TO_MAX 2048 /* oauth_states.redirect_to */
#define OAUTH_CODE_MAX 2048        /* longest authorization code accepted from a callback */

#define OAUTH_CONNECT_TIMEOUT_MS 5000L
#define OAUTH_TIMEOUT_MS 15000L
#define OAUTH_MAX_RESPONSE ((size_t)1 << 20)

/* Results: 0 or one of these negative codes. Each comes with a human-readable text. */
enum oauth_result {
    OAUTH_OK = 0,
    OAUTH_ERR_INVALID = -1,  /* bad argument: malformed code, verifier or redirect_to */
    OAUTH_ERR_CONFIG = -2,   /* the provider description is incomplete or unsafe */
    OAUTH_ERR_NETWORK = -3,  /* could not connect, TLS failure, connection reset */
    OAUTH_ERR_TIMEOUT = -4,  /* the provider did not answer in time */
    OAUTH_ERR_HTTP = -5,     /* unexpected HTTP status without an OAuth error body */
    OAUTH_ERR_PROVIDER = -6, /* an OAuth error response: invalid_grant, invalid_client, … */
    OAUTH_ERR_RESPONSE = -7, /* not JSON, too large, missing/invalid fields, bad id_token claims */
};

/* Short fixed text for a result code ("provider error", …). */
const char *oauth_strerror(int rc);

enum oauth_kind {
    OAUTH_OIDC,   /* OpenID Connect: nonce, optional id_token, standard userinfo claims */
    OAUTH_GITHUB, /* GitHub: no id_token; /user for the profile, /user/emails for the address */
};

/* How the client authenticates at the token endpoint (RFC 6749 §2.3.1). */
enum oauth_client_auth {
    OAUTH_AUTH_POST,  /* client_secret_post: client_id and client_secret in the form body */
    OAUTH_AUTH_BASIC, /* client_secret_basic: HTTP Basic with the form-encoded id and secret */
};

/* One provider. Strings are owned (set them with oauth_set); NULL means unset. */
struct oauth_provider {
    char *name; /* "google", "github", "acme": the URL segment and oauth_states.provider */
    enum oauth_kind kind;
    char *issuer;        /* OIDC issuer; when set, an id_token's iss must equal it */
    char *authorize_url; /* authorization endpoint (may carry a query of its own) */
    char *token_url;
    char *userinfo_url; /* OIDC userinfo, or GitHub's https://api.github.com/user */
    char *emails_url;   /* GitHub only: https://api.github.com/user/emails */
    char *client_id;
    char *client_secret;
    char *scopes;       /* space-separated */
    char *redirect_uri; /* our callback, registered with the provider */
    enum oauth_client_auth client_auth;
    long connect_timeout_ms; /* default OAUTH_CONNECT_TIMEOUT_MS */
    long timeout_ms;         /* deadline for all of oauth_finish; default OAUTH_TIMEOUT_MS */
    size_t max_response;     /* cap on each response body; default OAUTH_MAX_RESPONSE */
};

/* Replaces *field with a copy of value (NULL clears it). */
void oauth_set(char **field, const char *value);

/* An empty provider of this kind: name copied, default scopes ("openid email profile" for
 * OIDC, "read:user user:email" for GitHub), client_secret_post, default limits. */
void oauth_provider_init(struct oauth_provider *p, const char *name, enum oauth_kind kind);

/* Google (OIDC): issuer https://accounts.google.com, https://accounts.google.com/o/oauth2/v2/auth,
 * https://oauth2.googleapis.com/token, https://openidconnect.googleapis.com/v1/userinfo. */
void oauth_preset_google(struct oauth_provider *p, const char *client_id, const char *client_secret,
                         const char *redirect_uri);
/* GitHub: https://github.com/login/oauth/authorize, https://github.com/login/oauth/access_token,
 * https://api.github.com/user and https://api.github.com/user/emails. */
void oauth_preset_github(struct oauth_provider *p, const char *client_id, const char *client_secret,
                         const char *redirect_uri);

/* Checks that the provider can be used: name, client id and secret, redirect_uri and the
 * endpoint URLs present, every URL https (or http to a loopback host), limits positive.
 * Returns 0, or OAUTH_ERR_CONFIG with the first problem in err. */
int oauth_provider_validate(const struct oauth_provider *p, char *err, size_t n);

/* Releases the strings (the client secret is wiped first) and zeroes *p. */
void oauth_provider_free(struct oauth_provider *p);

/*
 * The providers enabled by configuration. Variables, with NAME the provider name upper-cased
 * and '-' turned into '_':
 *   OAUTH_PROVIDERS              comma-separated names, e.g. "google,github,acme". Unset: google
 *                                and github are enabled when their CLIENT_ID is set.
 *   OAUTH_<NAME>_CLIENT_ID       required
 *   OAUTH_<NAME>_CLIENT_SECRET   required
 *   OAUTH_<NAME>_KIND            oidc | github (default: github for "github", else oidc)
 *   OAUTH_<NAME>_ISSUER          OIDC issuer (optional; the Google preset sets it)
 *   OAUTH_<NAME>_AUTHORIZE_URL   \
 *   OAUTH_<NAME>_TOKEN_URL        } required unless the name is google or github (presets)
 *   OAUTH_<NAME>_USERINFO_URL    /
 *   OAUTH_<NAME>_EMAILS_URL      GitHub kind (default: USERINFO_URL + "/emails")
 *   OAUTH_<NAME>_SCOPES          default per kind (see oauth_provider_init)
 *   OAUTH_<NAME>_REDIRECT_URI    default <api_url>/api/v1/auth/oauth/<name>/callback
 *   OAUTH_<NAME>_CLIENT_AUTH     client_secret_post (default) | client_secret_basic
 * `get` returns a variable's value or NULL (an empty value counts as unset). Every problem is
 * appended to errs as one line (the config module's format; freed by config_errors_free).
 * Returns 0, or -1 when there was a problem (out then holds the providers that were fine).
 */
typedef const char *(*oauth_getenv_fn)(void *ctx, const char *name);

struct oauth_providers {
    struct oauth_provider *v;
    size_t n;
};

int oauth_providers_load(struct oauth_providers *out, oauth_getenv_fn get, void *ctx,
                         const char *api_url, struct config_errors *errs);
/* A getter over a NULL-terminated "NAME=value" array (like environ); ctx is the array. */
const char *oauth_envp_get(void *ctx, const char *name);
/* The provider with this name, or NULL. */
const struct oauth_provider *oauth_providers_find(const struct oauth_providers *ps,
                                                  const char *name);
void oauth_providers_free(struct oauth_providers *ps);

/* What the begin step hands back. Store state → (provider name, code_verifier, redirect_to)
 * with an expiry of a few minutes, then send the browser to authorize_url (302). */
struct oauth_begin {
    char state[OAUTH_STATE_LEN + 1];
    char code_verifier[OAUTH_VERIFIER_LEN + 1]; /* secret: store it, never log or send it */
    char code_challenge[OAUTH_CHALLENGE_LEN + 1];
    char nonce[OAUTH_NONCE_LEN + 1]; /* OIDC only ("" for GitHub); derived from the verifier */
    char *redirect_to;               /* copy of the argument, or NULL */
    char *authorize_url;             /* the full authorization URL */
};

/* Fills *out (release with oauth_begin_free). redirect_to, where the application goes after
 * sign-in, may be NULL or a local path ("/settings?tab=x": one leading '/', not "//", no
 * backslash or control characters, ≤ OAUTH_REDIRECT_TO_MAX); anything else is refused so the
 * callback cannot become an open redirect. Returns 0, OAUTH_ERR_CONFIG or OAUTH_ERR_INVALID. */
int oauth_begin(const struct oauth_provider *p, const char *redirect_to, struct oauth_begin *out);
void oauth_begin_free(struct oauth_begin *b);

/* The signed-in user as the provider describes them. Strings are owned; NULL when absent. */
struct oauth_identity {
    char *provider;      /* the provider's name */
    char *subject;       /* stable id at the provider: OIDC sub, GitHub numeric id */
    char *email;         /* as given by the provider (not lower-cased) */
    bool email_verified; /* the provider vouches for the address */
    char *name;
    char *given_name;
    char *family_name;
    char *picture;
};

/*
 * The callback step: exchanges `code` (from the callback's query) with the PKCE `verifier`
 * stored under its state, then reads the identity. Blocking (see the top of this file). On
 * success returns 0 and fills *out (release with oauth_identity_free); otherwise a negative
 * oauth_result, *out zeroed and err holding a text such as
 * "token endpoint: invalid_grant: PKCE verification failed" (provider texts are truncated and
 * stripped of control characters; no secrets are ever included).
 */
int oauth_finish(const struct oauth_provider *p, const char *code, const char *verifier,
                 struct oauth_identity *out, char *err, size_t errn);
void oauth_identity_free(struct oauth_identity *id);

/* A redirect_to value oauth_begin accepts (NULL is accepted). */
bool oauth_redirect_to_safe(const char *redirect_to);
/* The shape of a state this module issues: exactly OAUTH_STATE_LEN base64url characters. Check
 * the callback's state with it before looking it up. */
bool oauth_state_valid(const char *state);
/* Constant-time comparison of two states (only the lengths can leak). */
bool oauth_state_equal(const char *a, const char *b);
/* RFC 7636 §4.1: 43–128 characters of [A-Za-z0-9-._~]. */
bool oauth_verifier_valid(const char *verifier);
/* RFC 7636 §4.2 S256: BASE64URL-ENCODE(SHA256(ASCII(verifier))). */
void oauth_pkce_challenge(const char *verifier, char out[OAUTH_CHALLENGE_LEN + 1]);
/* The OIDC nonce sent with the authorization request for this verifier. */
void oauth_nonce_for(const char *verifier, char out[OAUTH_NONCE_LEN + 1]);

#endif
