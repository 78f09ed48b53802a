/* jwt.c — HS256 access tokens; see jwt.h for why verification is done here and not by libjwt. */
#include "lib/common.h"

#include "lib/jwt.h"

#include <jansson.h>
#include <jwt.h>
#include <limits.h>
#include <sodium.h>

#include "lib/token.h"

#define HS256_SIG_LEN 43   /* base64url of a 32-byte HMAC-SHA256, no padding */
#define HEADER_MAX_LEN 512 /* our header is 36 characters; room for kid and friends */
#define JTI_BYTES 16
/* base64url of {"alg":"HS256","typ":"JWT"}, the header libjwt writes for us. */
#define OUR_HEADER "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"

/* ---- signing ---- */

/* The setters return false when jansson refused a value: json_string() returns NULL for
 * invalid UTF-8 or NULL, and a token silently missing a claim must not be signed. */
static bool set_str(json_t *o, const char *name, const char *v)
{
    return !v || json_object_set_new(o, name, json_string(v)) == 0;
}

static bool set_strs(json_t *o, const char *name, char *const *v, size_t n)
{
    if (!v)
        return true;
    json_t *a = json_array();
    bool ok = true;
    for (size_t i = 0; i < n && ok; i++)
        ok = json_array_append_new(a, json_string(v[i])) == 0;
    return json_object_set_new(o, name, a) == 0 && ok;
}

static bool set_int(json_t *o, const char *name, int64_t v)
{
    return json_object_set_new(o, name, json_integer(v)) == 0;
}

static bool aal_valid(const char *aal)
{
    return strcmp(aal, "aal1") == 0 || strcmp(aal, "aal2") == 0;
}

/* The payload as JSON text (free() it), or NULL when the claims cannot make a valid token. */
static char *claims_json(const struct jwt_claims *c)
{
    if (!c->sub || !*c->sub || !c->iss || !c->aud || c->exp <= c->iat ||
        (c->aal && !aal_valid(c->aal)))
        return NULL;

    char jti[sodium_base64_ENCODED_LEN(JTI_BYTES, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    if (!c->jti) {
        unsigned char raw[JTI_BYTES];
        randombytes_buf(raw, sizeof(raw));
        sodium_bin2base64(jti, sizeof(jti), raw, sizeof(raw),
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    }

    json_t *o = json_object();
    bool ok = set_str(o, "iss", c->iss) && set_str(o, "sub", c->sub) && set_str(o, "aud", c->aud) &&
              set_int(o, "iat", c->iat) && set_int(o, "exp", c->exp) &&
              set_str(o, "jti", c->jti ? c->jti : jti) && set_str(o, "tid", c->tid) &&
              set_str(o, "role", c->role) && set_strs(o, "perms", c->perms, c->nperms) &&
              (c->pv < 0 || set_int(o, "pv", c->pv)) && set_str(o, "sid", c->sid) &&
              set_str(o, "aal", c->aal) && set_strs(o, "amr", c->amr, c->namr);
    char *text = ok ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

int jwt_sign(const struct jwt_claims *c, const unsigned char *key, size_t keylen, char **out)
{
    *out = NULL;
    if (keylen < JWT_KEY_MIN || keylen > INT_MAX)
        return JWT_EKEY;
    token_crypto_init();
    char *payload = claims_json(c);
    if (!payload)
        return JWT_EMALFORMED;

    jwt_t *j = NULL;
    if (jwt_new(&j) != 0)
        zy_oom(sizeof(void *));
    int rc = JWT_EMALFORMED;
    if (jwt_set_alg(j, JWT_ALG_HS256, key, (int)keylen) == 0 &&
        jwt_add_grants_json(j, payload) == 0) {
        char *s = jwt_encode_str(j);
        if (!s)
            zy_oom(0);
        *out = s;
        rc = JWT_OK;
    }
    jwt_free(j); /* also scrubs its copy of the key */
    free(payload);
    return rc;
}

/* ---- verification ---- */

/* Strict base64url (no padding) of s[0..n) into out; 0 or -1. */
static int b64url_decode(const char *s, size_t n, unsigned char *out, size_t cap, size_t *len)
{
    const char *end = NULL;
    if (n == 0 || sodium_base642bin(out, cap, s, n, NULL, len, &end,
                                    sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return -1;
    return end == s + n ? 0 : -1;
}

/* Decodes a base64url segment holding a JSON object; NULL if it is not one. */
static json_t *segment_json(const char *s, size_t n)
{
    size_t cap = n / 4 * 3 + 3, len;
    unsigned char *raw = xmalloc(cap);
    json_t *o = NULL;
    if (b64url_decode(s, n, raw, cap, &len) == 0)
        o = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* The algorithm pin: alg exactly "HS256", typ absent or "JWT", no crit (RFC 7515 4.1.11:
 * extensions we do not understand must be refused). */
static bool header_ok(const json_t *h)
{
    const json_t *alg = json_object_get(h, "alg");
    const json_t *typ = json_object_get(h, "typ");
    return json_is_string(alg) && strcmp(json_string_value(alg), "HS256") == 0 &&
           (!typ || (json_is_string(typ) && strcmp(json_string_value(typ), "JWT") == 0)) &&
           !json_object_get(h, "crit");
}

static bool signature_ok(const char *signed_part, size_t n, const char *sig, size_t sig_len,
                         const unsigned char *key, size_t keylen)
{
    unsigned char want[crypto_auth_hmacsha256_BYTES], got[crypto_auth_hmacsha256_BYTES + 1];
    size_t got_len;
    if (sig_len != HS256_SIG_LEN || b64url_decode(sig, sig_len, got, sizeof(got), &got_len) != 0 ||
        got_len != sizeof(want))
        return false;
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, key, keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)signed_part, n);
    crypto_auth_hmacsha256_final(&st, want);
    sodium_memzero(&st, sizeof(st));
    return sodium_memcmp(want, got, sizeof(want)) == 0;
}

/* Optional string claim: absent leaves *dst NULL; present must be a string. */
static int take_str(const json_t *o, const char *name, char **dst)
{
    const json_t *v = json_object_get(o, name);
    if (!v)
        return 0;
    if (!json_is_string(v))
        return -1;
    *dst = xstrndup(json_string_value(v), json_string_length(v));
    return 0;
}

/* Optional array of strings, stored NULL-terminated. */
static int take_strs(const json_t *o, const char *name, char ***dst, size_t *n)
{
    const json_t *v = json_object_get(o, name);
    if (!v)
        return 0;
    if (!json_is_array(v))
        return -1;
    size_t count = json_array_size(v);
    char **a = xcalloc(count + 1, sizeof(char *));
    *dst = a; /* owned by the claims from here, so a failure below is freed with them */
    for (size_t i = 0; i < count; i++) {
        const json_t *s = json_array_get(v, i);
        if (!json_is_string(s))
            return -1;
        a[i] = xstrndup(json_string_value(s), json_string_length(s));
        *n = i + 1;
    }
    return 0;
}

/* Integer claim; *present says whether it was there. Reals and strings are refused. */
static int take_int(const json_t *o, const char *name, int64_t *dst, bool *present)
{
    const json_t *v = json_object_get(o, name);
    *present = v != NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v))
        return -1;
    *dst = json_integer_value(v);
    return 0;
}

/* aud may be a string or an array of strings (RFC 7519 4.1.3). */
static bool audience_ok(const json_t *aud, const char *want)
{
    if (json_is_string(aud))
        return strcmp(json_string_value(aud), want) == 0;
    if (!json_is_array(aud))
        return false;
    size_t i;
    const json_t *v;
    json_array_foreach (aud, i, v) {
        if (json_is_string(v) && strcmp(json_string_value(v), want) == 0)
            return true;
    }
    return false;
}

static int fail(int rc, const char *why, const char **reason)
{
    if (reason)
        *reason = why;
    return rc;
}

/* Reads and checks the claims of a payload whose signature already verified. */
static int check_claims(const json_t *p, const char *iss, const char *aud, int64_t now,
                        struct jwt_claims *c, const char **reason)
{
    bool has_iat, has_exp, has_nbf, has_pv;
    int64_t nbf = 0;
    if (take_str(p, "sub", &c->sub) || take_str(p, "tid", &c->tid) ||
        take_str(p, "role", &c->role) || take_strs(p, "perms", &c->perms, &c->nperms) ||
        take_int(p, "pv", &c->pv, &has_pv) || take_str(p, "sid", &c->sid) ||
        take_str(p, "aal", &c->aal) || take_strs(p, "amr", &c->amr, &c->namr) ||
        take_int(p, "iat", &c->iat, &has_iat) || take_int(p, "exp", &c->exp, &has_exp) ||
        take_int(p, "nbf", &nbf, &has_nbf) || take_str(p, "iss", &c->iss) ||
        take_str(p, "jti", &c->jti))
        return fail(JWT_EMALFORMED, "claim of the wrong type", reason);
    if (!c->sub || !*c->sub || !has_iat || !has_exp || !c->iss)
        return fail(JWT_EMALFORMED, "required claim missing", reason);
    if (!has_pv)
        c->pv = -1;
    if (c->aal && !aal_valid(c->aal))
        return fail(JWT_EMALFORMED, "bad aal", reason);
    if (now >= c->exp)
        return fail(JWT_EEXPIRED, "token expired", reason);
    if (c->iat > now + JWT_LEEWAY_S || (has_nbf && nbf > now + JWT_LEEWAY_S))
        return fail(JWT_EFUTURE, "token not valid yet", reason);
    if (!iss || strcmp(c->iss, iss) != 0)
        return fail(JWT_EISSUER, "wrong issuer", reason);
    if (!aud || !audience_ok(json_object_get(p, "aud"), aud))
        return fail(JWT_EAUDIENCE, "wrong audience", reason);
    c->aud = xstrdup(aud);
    return fail(JWT_OK, "ok", reason);
}

int jwt_verify(const char *token, const unsigned char *key, size_t keylen, const char *iss,
               const char *aud, int64_t now, struct jwt_claims *out, const char **reason)
{
    memset(out, 0, sizeof(*out));
    out->pv = -1;
    if (keylen < JWT_KEY_MIN)
        return fail(JWT_EKEY, "key too short", reason);
    size_t len = token ? strnlen(token, JWT_MAX_LEN + 1) : 0;
    if (len == 0 || len > JWT_MAX_LEN)
        return fail(JWT_EMALFORMED, "malformed token", reason);

    /* header.payload.signature, exactly two dots. An empty signature gets past this point so
     * that "alg":"none" is reported as what it is; it can never pass signature_ok. */
    const char *dot1 = memchr(token, '.', len);
    const char *dot2 = dot1 ? memchr(dot1 + 1, '.', len - (size_t)(dot1 + 1 - token)) : NULL;
    if (!dot1 || !dot2 || dot1 == token || dot2 == dot1 + 1 ||
        memchr(dot2 + 1, '.', len - (size_t)(dot2 + 1 - token)))
        return fail(JWT_EMALFORMED, "malformed token", reason);
    size_t head_len = (size_t)(dot1 - token), body_len = (size_t)(dot2 - dot1 - 1);
    size_t sig_len = len - (size_t)(dot2 + 1 - token);

    if (head_len > HEADER_MAX_LEN)
        return fail(JWT_EMALFORMED, "malformed token", reason);
    /* Every token jwt_sign makes carries the same header bytes: skip parsing those. */
    if (head_len != sizeof(OUR_HEADER) - 1 || memcmp(token, OUR_HEADER, head_len) != 0) {
        json_t *head = segment_json(token, head_len);
        if (!head)
            return fail(JWT_EMALFORMED, "malformed header", reason);
        bool alg_ok = header_ok(head);
        json_decref(head);
        if (!alg_ok)
            return fail(JWT_EALG, "algorithm not allowed", reason);
    }

    token_crypto_init();
    if (!signature_ok(token, (size_t)(dot2 - token), dot2 + 1, sig_len, key, keylen))
        return fail(JWT_ESIGNATURE, "bad signature", reason);

    json_t *payload = segment_json(dot1 + 1, body_len);
    if (!payload)
        return fail(JWT_EMALFORMED, "malformed payload", reason);
    int rc = check_claims(payload, iss, aud, now, out, reason);
    json_decref(payload);
    if (rc != JWT_OK)
        jwt_claims_free(out);
    return rc;
}

static void free_strs(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

void jwt_claims_free(struct jwt_claims *c)
{
    if (!c)
        return;
    free(c->sub);
    free(c->tid);
    free(c->role);
    free_strs(c->perms, c->nperms);
    free(c->sid);
    free(c->aal);
    free_strs(c->amr, c->namr);
    free(c->iss);
    free(c->aud);
    free(c->jti);
    memset(c, 0, sizeof(*c));
    c->pv = -1;
}
