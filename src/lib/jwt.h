/*
 * jwt.h — HS256 access tokens: signing (libjwt) and verification with the algorithm pinned.
 *
 * Owns: the claim set of an access token and the rules a token must pass to be believed.
 *
 * Verification does not hand the token to libjwt. libjwt 1.10.2 picks the algorithm from the
 * token's own header (case-insensitively), so any HMAC alg verifies with our secret; upstream it
 * compares signatures with strcmp (CVE-2024-25189 — only distro builds carry the fix); and it
 * decodes base64 leniently and keeps the last of duplicate JSON keys. Instead, jwt_verify:
 *   1. refuses tokens over JWT_MAX_LEN and anything but three non-empty base64url segments
 *      (strict: no padding, no stray characters, no non-zero trailing bits);
 *   2. pins the header: alg must be exactly "HS256" ("none", "hs256", "HS512", "RS256"… fail),
 *      typ absent or "JWT", no "crit";
 *   3. recomputes HMAC-SHA256 with libsodium and compares in constant time (sodium_memcmp);
 *   4. only then parses the payload (duplicate keys refused) and checks exp, iat/nbf (with
 *      JWT_LEEWAY_S of clock skew), iss and aud, and the types of every claim.
 * Signing goes through libjwt; the tests check that libjwt accepts what jwt_sign makes.
 */
#ifndef ZYGO_JWT_H
#define ZYGO_JWT_H

#include "lib/common.h"

#define JWT_KEY_MIN 32   /* bytes: an HS256 key may not be shorter than the hash (RFC 7518 3.2) */
#define JWT_MAX_LEN 8192 /* longer tokens are refused before any decoding */
#define JWT_LEEWAY_S 60  /* clock skew tolerated for iat and nbf (not for exp) */

enum jwt_status {
    JWT_OK = 0,
    JWT_EMALFORMED = -1, /* not a compact JWS, bad JSON, or a claim missing / of the wrong type */
    JWT_EALG = -2,       /* header alg other than exactly HS256, bad typ, or crit present */
    JWT_ESIGNATURE = -3, /* signature does not match (other key, tampered header or payload) */
    JWT_EEXPIRED = -4,   /* now >= exp */
    JWT_EFUTURE = -5,    /* iat or nbf later than now + JWT_LEEWAY_S */
    JWT_EISSUER = -6,    /* iss is not the expected issuer */
    JWT_EAUDIENCE = -7,  /* aud is not (or does not contain) the expected audience */
    JWT_EKEY = -8,       /* key shorter than JWT_KEY_MIN (a configuration error) */
};

/*
 * The claims of an access token. For jwt_sign the caller owns every pointer (literals are fine);
 * NULL strings and NULL arrays are left out of the token. jwt_verify fills a struct whose
 * strings and arrays it allocates; release those with jwt_claims_free.
 */
struct jwt_claims {
    char *sub;    /* user id (required) */
    char *tid;    /* tenant id */
    char *role;   /* role name */
    char **perms; /* permission names, NULL-terminated; NULL when the claim is absent */
    size_t nperms;
    int64_t pv; /* permissions version; -1 when absent (sign: left out when < 0) */
    char *sid;  /* session id */
    char *aal;  /* authenticator assurance level: "aal1" or "aal2" */
    char **amr; /* authentication methods, e.g. {"pwd", "totp"}, NULL-terminated; or NULL */
    size_t namr;
    int64_t iat; /* issued at, seconds since the epoch (required) */
    int64_t exp; /* expires at (required, > iat) */
    char *iss;   /* issuer (required) */
    char *aud;   /* audience (required; verify stores the expected audience that matched) */
    char *jti;   /* token id; jwt_sign makes a random one when NULL */
};

/* Signs the claims as an HS256 JWT into *out (free() it). Returns JWT_OK, JWT_EKEY, or
 * JWT_EMALFORMED when a required claim is missing, exp <= iat or aal is not aal1/aal2. */
int jwt_sign(const struct jwt_claims *c, const unsigned char *key, size_t keylen, char **out);

/*
 * Verifies token as described above against key, the expected issuer and audience (both
 * required: NULL fails) and the time now (seconds since the epoch). On JWT_OK fills *out; on
 * any failure *out is left zeroed (pv = -1) and nothing needs freeing. *reason (optional) gets
 * a short static English text for logs; it never contains token material.
 */
int jwt_verify(const char *token, const unsigned char *key, size_t keylen, const char *iss,
               const char *aud, int64_t now, struct jwt_claims *out, const char **reason);

/* Frees what jwt_verify allocated and zeroes the struct (pv = -1). NULL is fine. */
void jwt_claims_free(struct jwt_claims *c);

#endif
