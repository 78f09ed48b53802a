/* test_jwt.c — HS256 access tokens: round trip, the algorithm pin, forgeries, time and claim
 * checks, malformed input; and what libjwt itself does with the same tokens. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <jwt.h>
#include <sodium.h>

#include "lib/buf.h"
#include "lib/jwt.h"

#define ISS "zygo"
#define AUD "zygo-api"
#define NOW 1700000000

static const unsigned char key[] = "0123456789abcdef0123456789abcdef-test-key";
#define KEYLEN (sizeof(key) - 1)
static const unsigned char other_key[] = "another secret that is long enough to use";
#define OTHER_KEYLEN (sizeof(other_key) - 1)

static char *perms[] = {"canViewUsers", "canManageUsers", NULL};
static char *amr[] = {"pwd", "totp", NULL};

static struct jwt_claims sample(void)
{
    return (struct jwt_claims){
        .sub = "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b",
        .tid = "0190a1b2-c3d4-7e5f-8a9b-000000000001",
        .role = "admin",
        .perms = perms,
        .nperms = 2,
        .pv = 7,
        .sid = "0190a1b2-c3d4-7e5f-8a9b-000000000002",
        .aal = "aal2",
        .amr = amr,
        .namr = 2,
        .iat = NOW,
        .exp = NOW + 900,
        .iss = ISS,
        .aud = AUD,
        .jti = "jti-1",
    };
}

static char *sign_ok(const struct jwt_claims *c)
{
    char *t = NULL;
    cr_assert_eq(jwt_sign(c, key, KEYLEN, &t), JWT_OK);
    cr_assert_not_null(t);
    return t;
}

static int verify_at(const char *token, int64_t now, const char **reason)
{
    struct jwt_claims out;
    int rc = jwt_verify(token, key, KEYLEN, ISS, AUD, now, &out, reason);
    if (rc != JWT_OK) {
        /* A failed verify leaves nothing behind. */
        cr_assert_null(out.sub);
        cr_assert_null(out.perms);
        cr_assert_eq(out.pv, -1);
    }
    jwt_claims_free(&out);
    return rc;
}

static int verify(const char *token)
{
    return verify_at(token, NOW + 1, NULL);
}

static void b64url(struct buf *b, const void *data, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *s = xmalloc(cap);
    sodium_bin2base64(s, cap, data, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    buf_puts(b, s);
    free(s);
}

/* A token built by hand: header and payload JSON as given, signed with `mac` ("HS256",
 * "HS512", or "none" for an empty signature) under key k. */
static char *forge(const char *header, const char *payload, const char *mac, const unsigned char *k,
                   size_t klen)
{
    struct buf b;
    buf_init(&b, 1 << 20);
    b64url(&b, header, strlen(header));
    buf_putc(&b, '.');
    b64url(&b, payload, strlen(payload));
    const unsigned char *signed_part = (const unsigned char *)buf_cstr(&b);
    size_t n = b.len;
    if (strcmp(mac, "HS256") == 0) {
        unsigned char sig[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, k, klen);
        crypto_auth_hmacsha256_update(&st, signed_part, n);
        crypto_auth_hmacsha256_final(&st, sig);
        buf_putc(&b, '.');
        b64url(&b, sig, sizeof(sig));
    } else if (strcmp(mac, "HS512") == 0) {
        unsigned char sig[crypto_auth_hmacsha512_BYTES];
        crypto_auth_hmacsha512_state st;
        crypto_auth_hmacsha512_init(&st, k, klen);
        crypto_auth_hmacsha512_update(&st, signed_part, n);
        crypto_auth_hmacsha512_final(&st, sig);
        buf_putc(&b, '.');
        b64url(&b, sig, sizeof(sig));
    } else {
        buf_putc(&b, '.');
    }
    return buf_detach(&b, NULL);
}

#define HS256_HEADER "{\"alg\":\"HS256\",\"typ\":\"JWT\"}"
#define GOOD_PAYLOAD                                                                               \
    "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000,\"exp\":1700000900}"

/* Verifies a token forged with our key and the given header/payload. */
static int verify_forged(const char *header, const char *payload, const char **reason)
{
    char *t = forge(header, payload, "HS256", key, KEYLEN);
    int rc = verify_at(t, NOW + 1, reason);
    free(t);
    return rc;
}

Test(jwt, round_trip_all_claims)
{
    struct jwt_claims in = sample();
    char *t = sign_ok(&in);
    struct jwt_claims out;
    const char *reason = NULL;
    cr_assert_eq(jwt_verify(t, key, KEYLEN, ISS, AUD, NOW + 10, &out, &reason), JWT_OK, "%s",
                 reason);
    cr_assert_str_eq(out.sub, in.sub);
    cr_assert_str_eq(out.tid, in.tid);
    cr_assert_str_eq(out.role, "admin");
    cr_assert_eq(out.nperms, 2);
    cr_assert_str_eq(out.perms[0], "canViewUsers");
    cr_assert_str_eq(out.perms[1], "canManageUsers");
    cr_assert_null(out.perms[2]);
    cr_assert_eq(out.pv, 7);
    cr_assert_str_eq(out.sid, in.sid);
    cr_assert_str_eq(out.aal, "aal2");
    cr_assert_eq(out.namr, 2);
    cr_assert_str_eq(out.amr[0], "pwd");
    cr_assert_str_eq(out.amr[1], "totp");
    cr_assert_null(out.amr[2]);
    cr_assert_eq(out.iat, NOW);
    cr_assert_eq(out.exp, NOW + 900);
    cr_assert_str_eq(out.iss, ISS);
    cr_assert_str_eq(out.aud, AUD);
    cr_assert_str_eq(out.jti, "jti-1");
    jwt_claims_free(&out);
    cr_assert_null(out.sub);
    jwt_claims_free(&out); /* twice is harmless */
    free(t);
}

Test(jwt, optional_claims_absent)
{
    struct jwt_claims in = {
        .sub = "u1", .iat = NOW, .exp = NOW + 60, .iss = ISS, .aud = AUD, .pv = -1};
    char *t = sign_ok(&in);
    struct jwt_claims out;
    cr_assert_eq(jwt_verify(t, key, KEYLEN, ISS, AUD, NOW, &out, NULL), JWT_OK);
    cr_assert_null(out.tid);
    cr_assert_null(out.role);
    cr_assert_null(out.perms);
    cr_assert_eq(out.nperms, 0);
    cr_assert_eq(out.pv, -1);
    cr_assert_null(out.amr);
    cr_assert_null(out.aal);
    cr_assert_not_null(out.jti, "a jti is generated when none is given");
    jwt_claims_free(&out);
    free(t);

    /* An empty permission list is present and empty, not absent. */
    char *none[] = {NULL};
    in.perms = none;
    t = sign_ok(&in);
    cr_assert_eq(jwt_verify(t, key, KEYLEN, ISS, AUD, NOW, &out, NULL), JWT_OK);
    cr_assert_not_null(out.perms);
    cr_assert_eq(out.nperms, 0);
    cr_assert_null(out.perms[0]);
    jwt_claims_free(&out);
    free(t);
}

Test(jwt, generated_jti_unique)
{
    struct jwt_claims in = sample();
    in.jti = NULL;
    char *a = sign_ok(&in), *b = sign_ok(&in);
    cr_assert_str_neq(a, b);
    struct jwt_claims ca, cb;
    cr_assert_eq(jwt_verify(a, key, KEYLEN, ISS, AUD, NOW, &ca, NULL), JWT_OK);
    cr_assert_eq(jwt_verify(b, key, KEYLEN, ISS, AUD, NOW, &cb, NULL), JWT_OK);
    cr_assert_geq(strlen(ca.jti), 22);
    cr_assert_str_neq(ca.jti, cb.jti);
    jwt_claims_free(&ca);
    jwt_claims_free(&cb);
    free(a);
    free(b);
}

Test(jwt, libjwt_accepts_what_we_sign)
{
    struct jwt_claims in = sample();
    char *t = sign_ok(&in);
    jwt_t *j = NULL;
    cr_assert_eq(jwt_decode(&j, t, key, (int)KEYLEN), 0);
    cr_assert_eq(jwt_get_alg(j), JWT_ALG_HS256);
    cr_assert_str_eq(jwt_get_header(j, "typ"), "JWT");
    /* The header verification's fast path expects exactly these bytes. */
    cr_assert_eq(strncmp(t, "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.", 37), 0, "%s", t);
    cr_assert_str_eq(jwt_get_grant(j, "sub"), in.sub);
    cr_assert_eq(jwt_get_grant_int(j, "exp"), NOW + 900);
    jwt_free(j);
    /* And refuses it under another key. */
    j = NULL;
    cr_assert_neq(jwt_decode(&j, t, other_key, (int)OTHER_KEYLEN), 0);
    cr_assert_null(j);
    free(t);
}

Test(jwt, alg_none_refused_by_us_and_by_libjwt)
{
    char *t = forge("{\"alg\":\"none\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, "none", NULL, 0);
    cr_assert_eq(t[strlen(t) - 1], '.', "empty signature: %s", t);
    const char *reason = NULL;
    cr_assert_eq(verify_at(t, NOW + 1, &reason), JWT_EALG);
    cr_assert_str_eq(reason, "algorithm not allowed");
    /* libjwt with a key refuses alg none (jwt_verify_head: "there should not be a key")... */
    jwt_t *j = NULL;
    cr_assert_neq(jwt_decode(&j, t, key, (int)KEYLEN), 0);
    cr_assert_null(j);
    free(t);

    /* ...and every spelling of it, and none with a signature attached, fail here too. */
    const char *headers[] = {"{\"alg\":\"none\"}",
                             "{\"alg\":\"None\",\"typ\":\"JWT\"}",
                             "{\"alg\":\"NONE\",\"typ\":\"JWT\"}",
                             "{\"typ\":\"JWT\"}",
                             "{\"alg\":\"\",\"typ\":\"JWT\"}",
                             "{\"alg\":null}"};
    for (size_t i = 0; i < ARRAY_LEN(headers); i++) {
        t = forge(headers[i], GOOD_PAYLOAD, "none", NULL, 0);
        cr_assert_neq(verify(t), JWT_OK, "%s", headers[i]);
        free(t);
        cr_assert_eq(verify_forged(headers[i], GOOD_PAYLOAD, NULL), JWT_EALG, "%s", headers[i]);
    }
}

Test(jwt, other_hmac_algorithms_refused_although_libjwt_accepts_them)
{
    /* A valid HS512 signature under our own key: libjwt 1.10.2 takes the algorithm from the
     * header and accepts it. That is the algorithm switch the pin exists for. */
    char *t = forge("{\"alg\":\"HS512\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, "HS512", key, KEYLEN);
    jwt_t *j = NULL;
    cr_assert_eq(jwt_decode(&j, t, key, (int)KEYLEN), 0, "libjwt behaviour changed?");
    cr_assert_eq(jwt_get_alg(j), JWT_ALG_HS512);
    jwt_free(j);
    cr_assert_eq(verify(t), JWT_EALG);
    free(t);

    /* Lower-case "hs256" with a valid HS256 signature: libjwt compares case-insensitively. */
    t = forge("{\"alg\":\"hs256\",\"typ\":\"JWT\"}", GOOD_PAYLOAD, "HS256", key, KEYLEN);
    j = NULL;
    cr_assert_eq(jwt_decode(&j, t, key, (int)KEYLEN), 0, "libjwt behaviour changed?");
    jwt_free(j);
    cr_assert_eq(verify(t), JWT_EALG);
    free(t);

    /* An HS256 header over an HS512 signature is simply a bad signature. */
    t = forge(HS256_HEADER, GOOD_PAYLOAD, "HS512", key, KEYLEN);
    cr_assert_eq(verify(t), JWT_ESIGNATURE);
    free(t);

    const char *algs[] = {"HS384", "RS256", "ES256", "PS256", "EdDSA"};
    for (size_t i = 0; i < ARRAY_LEN(algs); i++) {
        char h[64];
        snprintf(h, sizeof(h), "{\"alg\":\"%s\",\"typ\":\"JWT\"}", algs[i]);
        cr_assert_eq(verify_forged(h, GOOD_PAYLOAD, NULL), JWT_EALG, "%s", algs[i]);
    }
}

Test(jwt, header_typ_and_crit)
{
    cr_assert_eq(verify_forged("{\"alg\":\"HS256\"}", GOOD_PAYLOAD, NULL), JWT_OK);
    cr_assert_eq(
        verify_forged("{\"typ\":\"JWT\",\"alg\":\"HS256\",\"kid\":\"1\"}", GOOD_PAYLOAD, NULL),
        JWT_OK);
    cr_assert_eq(verify_forged("{\"alg\":\"HS256\",\"typ\":\"at+jwt\"}", GOOD_PAYLOAD, NULL),
                 JWT_EALG);
    cr_assert_eq(verify_forged("{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", GOOD_PAYLOAD, NULL),
                 JWT_EALG);
    cr_assert_eq(verify_forged("{\"alg\":\"HS256\",\"alg\":\"none\"}", GOOD_PAYLOAD, NULL),
                 JWT_EMALFORMED, "duplicate header keys");
    cr_assert_eq(verify_forged("{\"alg\":\"HS256\\u0000x\"}", GOOD_PAYLOAD, NULL), JWT_EMALFORMED,
                 "jansson refuses NUL inside strings, so strcmp cannot be fooled");
    cr_assert_eq(verify_forged("[\"HS256\"]", GOOD_PAYLOAD, NULL), JWT_EMALFORMED);
    cr_assert_eq(verify_forged("HS256", GOOD_PAYLOAD, NULL), JWT_EMALFORMED);
}

Test(jwt, forged_under_another_key)
{
    char *t = NULL;
    struct jwt_claims in = sample();
    cr_assert_eq(jwt_sign(&in, other_key, OTHER_KEYLEN, &t), JWT_OK);
    const char *reason = NULL;
    cr_assert_eq(verify_at(t, NOW + 1, &reason), JWT_ESIGNATURE);
    cr_assert_str_eq(reason, "bad signature");
    free(t);
}

Test(jwt, tampered_payload_and_signature)
{
    struct jwt_claims in = sample();
    char *t = sign_ok(&in);
    char *dot1 = strchr(t, '.'), *dot2 = strrchr(t, '.');

    /* Swap in a payload claiming another user and role, keeping header and signature. */
    struct buf b;
    buf_init(&b, 1 << 16);
    buf_append(&b, t, (size_t)(dot1 - t) + 1);
    const char *evil = "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"attacker\",\"role\":"
                       "\"owner\",\"iat\":1700000000,\"exp\":1800000000}";
    b64url(&b, evil, strlen(evil));
    buf_puts(&b, dot2);
    cr_assert_eq(verify(buf_cstr(&b)), JWT_ESIGNATURE);
    buf_free(&b);

    /* One character of the payload changed. */
    char *copy = xstrdup(t);
    size_t mid = (size_t)(dot1 - t) + 5;
    copy[mid] = copy[mid] == 'A' ? 'B' : 'A';
    cr_assert_neq(verify(copy), JWT_OK);
    free(copy);

    /* Every position of the signature matters. */
    size_t sig = (size_t)(dot2 - t) + 1, len = strlen(t);
    for (size_t i = sig; i < len; i++) {
        copy = xstrdup(t);
        copy[i] = copy[i] == 'A' ? 'B' : 'A';
        cr_assert_eq(verify(copy), JWT_ESIGNATURE, "position %zu", i - sig);
        free(copy);
    }
    /* The last character carries 4 bits of the MAC and 2 unused bits: a variant that differs
     * only in the unused bits decodes to the same MAC in a lax decoder; ours refuses it. */
    copy = xstrdup(t);
    const char *alpha = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(alpha, copy[len - 1]) - alpha);
    copy[len - 1] = alpha[v ^ 1];
    cr_assert_eq(verify(copy), JWT_ESIGNATURE);
    free(copy);

    /* Signature removed or truncated. */
    copy = xstrndup(t, sig);
    cr_assert_eq(verify(copy), JWT_ESIGNATURE);
    free(copy);
    copy = xstrndup(t, len - 1);
    cr_assert_eq(verify(copy), JWT_ESIGNATURE);
    free(copy);
    free(t);
}

Test(jwt, expiry)
{
    struct jwt_claims in = sample();
    char *t = sign_ok(&in);
    const char *reason = NULL;
    cr_assert_eq(verify_at(t, in.exp - 1, &reason), JWT_OK);
    cr_assert_eq(verify_at(t, in.exp, &reason), JWT_EEXPIRED);
    cr_assert_str_eq(reason, "token expired");
    cr_assert_eq(verify_at(t, in.exp + 3600, &reason), JWT_EEXPIRED);
    free(t);
}

Test(jwt, issued_in_the_future)
{
    struct jwt_claims in = sample();
    char *t = sign_ok(&in);
    const char *reason = NULL;
    /* Clocks a little behind the issuer are tolerated... */
    cr_assert_eq(verify_at(t, in.iat - JWT_LEEWAY_S, &reason), JWT_OK);
    /* ...a token from further in the future is not. */
    cr_assert_eq(verify_at(t, in.iat - JWT_LEEWAY_S - 1, &reason), JWT_EFUTURE);
    cr_assert_str_eq(reason, "token not valid yet");
    free(t);

    char payload[256];
    snprintf(payload, sizeof(payload),
             "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":%d,\"exp\":%d,"
             "\"nbf\":%d}",
             NOW, NOW + 900, NOW + 600);
    cr_assert_eq(verify_forged(HS256_HEADER, payload, NULL), JWT_EFUTURE);
}

Test(jwt, issuer_and_audience)
{
    struct jwt_claims in = sample();
    char *t = sign_ok(&in);
    struct jwt_claims out;
    const char *reason = NULL;
    cr_assert_eq(jwt_verify(t, key, KEYLEN, "other", AUD, NOW, &out, &reason), JWT_EISSUER);
    cr_assert_str_eq(reason, "wrong issuer");
    cr_assert_eq(jwt_verify(t, key, KEYLEN, ISS, "other-api", NOW, &out, &reason), JWT_EAUDIENCE);
    cr_assert_str_eq(reason, "wrong audience");
    /* Expected values are mandatory: NULL fails closed. */
    cr_assert_eq(jwt_verify(t, key, KEYLEN, NULL, AUD, NOW, &out, NULL), JWT_EISSUER);
    cr_assert_eq(jwt_verify(t, key, KEYLEN, ISS, NULL, NOW, &out, NULL), JWT_EAUDIENCE);
    free(t);

    /* aud as an array (RFC 7519) is accepted when it contains ours. */
    const char *p = "{\"iss\":\"zygo\",\"aud\":[\"x\",\"zygo-api\"],\"sub\":\"u1\","
                    "\"iat\":1700000000,\"exp\":1700000900}";
    cr_assert_eq(verify_forged(HS256_HEADER, p, NULL), JWT_OK);
    p = "{\"iss\":\"zygo\",\"aud\":[\"x\",\"y\"],\"sub\":\"u1\",\"iat\":1700000000,"
        "\"exp\":1700000900}";
    cr_assert_eq(verify_forged(HS256_HEADER, p, NULL), JWT_EAUDIENCE);
    p = "{\"iss\":\"zygo\",\"sub\":\"u1\",\"iat\":1700000000,\"exp\":1700000900}";
    cr_assert_eq(verify_forged(HS256_HEADER, p, NULL), JWT_EAUDIENCE);
}

Test(jwt, claim_types_checked)
{
    const char *bad[] = {
        /* required claims missing */
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"iat\":1700000000,\"exp\":1700000900}",
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"\",\"iat\":1700000000,"
        "\"exp\":1700000900}",
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000}",
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"exp\":1700000900}",
        "{\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000,\"exp\":1700000900}",
        /* wrong types */
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000,"
        "\"exp\":\"1700000900\"}",
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000,"
        "\"exp\":1700000900.5}",
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":7,\"iat\":1700000000,\"exp\":1700000900}",
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000,"
        "\"exp\":1700000900,\"perms\":[\"canViewUsers\",1]}",
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000,"
        "\"exp\":1700000900,\"perms\":\"canViewUsers\"}",
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000,"
        "\"exp\":1700000900,\"amr\":[null]}",
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000,"
        "\"exp\":1700000900,\"pv\":\"3\"}",
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000,"
        "\"exp\":1700000900,\"aal\":\"aal3\"}",
        /* a second sub after the first: refused, not "last one wins" */
        "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"sub\":\"admin\","
        "\"iat\":1700000000,\"exp\":1700000900}",
        /* not an object */
        "[1,2,3]",
        "\"sub\"",
        "{\"iss\":\"zygo\"",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        cr_assert_eq(verify_forged(HS256_HEADER, bad[i], NULL), JWT_EMALFORMED, "%s", bad[i]);
    cr_assert_eq(verify_forged(HS256_HEADER, GOOD_PAYLOAD, NULL), JWT_OK);
}

Test(jwt, malformed_strings_fail_cleanly)
{
    struct jwt_claims in = sample();
    char *good = sign_ok(&in);
    const char *bad[] = {"",
                         ".",
                         "..",
                         "...",
                         "abc",
                         "a.b",
                         "a.b.c",
                         "a.b.c.d",
                         "!!!!.eyJ9.c2ln",
                         " eyJhbGciOiJIUzI1NiJ9.e30.x",
                         "eyJhbGciOiJIUzI1NiJ9=.e30.x",
                         "eyJhbGciOiJIUzI1NiJ9.e30.",
                         "eyJhbGciOiJIUzI1NiJ9..x",
                         ".e30.x"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        cr_assert_neq(verify(bad[i]), JWT_OK, "%s", bad[i]);
    cr_assert_eq(verify(NULL), JWT_EMALFORMED);

    /* The good token with an extra segment or a trailing dot. */
    char *extra = xmalloc(strlen(good) + 8);
    snprintf(extra, strlen(good) + 8, "%s.abc", good);
    cr_assert_eq(verify(extra), JWT_EMALFORMED);
    snprintf(extra, strlen(good) + 8, "%s.", good);
    cr_assert_eq(verify(extra), JWT_EMALFORMED);
    snprintf(extra, strlen(good) + 8, ".%s", good);
    cr_assert_eq(verify(extra), JWT_EMALFORMED);
    free(extra);

    /* Over 8 KB: refused before decoding, even when well-signed. */
    struct buf p;
    buf_init(&p, 1 << 16);
    buf_puts(&p, "{\"iss\":\"zygo\",\"aud\":\"zygo-api\",\"sub\":\"u1\",\"iat\":1700000000,"
                 "\"exp\":1700000900,\"pad\":\"");
    for (int i = 0; i < 7000; i++)
        buf_putc(&p, 'x');
    buf_puts(&p, "\"}");
    char *huge = forge(HS256_HEADER, buf_cstr(&p), "HS256", key, KEYLEN);
    cr_assert_gt(strlen(huge), JWT_MAX_LEN);
    const char *reason = NULL;
    cr_assert_eq(verify_at(huge, NOW + 1, &reason), JWT_EMALFORMED);
    cr_assert_str_eq(reason, "malformed token");
    free(huge);
    buf_free(&p);
    free(good);
}

Test(jwt, key_length_enforced)
{
    struct jwt_claims in = sample();
    char *t = NULL;
    cr_assert_eq(jwt_sign(&in, key, JWT_KEY_MIN - 1, &t), JWT_EKEY);
    cr_assert_null(t);
    t = sign_ok(&in);
    struct jwt_claims out;
    cr_assert_eq(jwt_verify(t, key, JWT_KEY_MIN - 1, ISS, AUD, NOW, &out, NULL), JWT_EKEY);
    cr_assert_null(out.sub);
    free(t);
}

Test(jwt, sign_refuses_incomplete_claims)
{
    char *t = NULL;
    struct jwt_claims c = sample();
    c.sub = NULL;
    cr_assert_eq(jwt_sign(&c, key, KEYLEN, &t), JWT_EMALFORMED);
    c = sample();
    c.iss = NULL;
    cr_assert_eq(jwt_sign(&c, key, KEYLEN, &t), JWT_EMALFORMED);
    c = sample();
    c.aud = NULL;
    cr_assert_eq(jwt_sign(&c, key, KEYLEN, &t), JWT_EMALFORMED);
    c = sample();
    c.exp = c.iat;
    cr_assert_eq(jwt_sign(&c, key, KEYLEN, &t), JWT_EMALFORMED);
    c = sample();
    c.aal = "aal9";
    cr_assert_eq(jwt_sign(&c, key, KEYLEN, &t), JWT_EMALFORMED);
    c = sample();
    c.role = "\xff\xfe"; /* not UTF-8: jansson refuses it, so must we */
    cr_assert_eq(jwt_sign(&c, key, KEYLEN, &t), JWT_EMALFORMED);
    char *bad_perms[] = {"ok", NULL};
    c = sample();
    c.perms = bad_perms;
    c.nperms = 2; /* claims two, second is NULL */
    cr_assert_eq(jwt_sign(&c, key, KEYLEN, &t), JWT_EMALFORMED);
    cr_assert_null(t);
}
