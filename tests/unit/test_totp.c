/* test_totp.c — RFC 6238 codes, the verification window and reuse, otpauth URIs, QR SVGs. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <sodium.h>

#include "lib/totp.h"

/* RFC 6238 Appendix B: the SHA1 key is the ASCII string "12345678901234567890". */
static const unsigned char rfc_key[] = "12345678901234567890";
#define RFC_KEYLEN 20

Test(totp, rfc6238_appendix_b_sha1)
{
    /* The RFC lists 8-digit codes; a 6-digit code is the same value mod 10^6, i.e. its last six
     * digits. */
    static const struct {
        int64_t t;
        const char *code8;
    } v[] = {{59, "94287082"},         {1111111109, "07081804"}, {1111111111, "14050471"},
             {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"}};
    for (size_t i = 0; i < ARRAY_LEN(v); i++) {
        char code[TOTP_DIGITS + 1];
        cr_assert_eq(totp_generate(rfc_key, RFC_KEYLEN, v[i].t, code), 0);
        cr_assert_str_eq(code, v[i].code8 + 2, "t=%lld", (long long)v[i].t);
        int64_t step = -1;
        cr_assert(totp_verify(rfc_key, RFC_KEYLEN, v[i].code8 + 2, v[i].t, &step));
        cr_assert_eq(step, v[i].t / 30);
    }
}

Test(totp, generate_refuses_negative_time)
{
    char code[TOTP_DIGITS + 1];
    cr_assert_eq(totp_generate(rfc_key, RFC_KEYLEN, -1, code), -1);
    cr_assert_str_eq(code, "");
}

Test(totp, window_is_one_step)
{
    const int64_t now = 1234567890; /* exactly the start of step 41152263 */
    const int64_t step = totp_step(now);
    char code[TOTP_DIGITS + 1];
    for (int off = -3; off <= 3; off++) {
        cr_assert_eq(totp_generate(rfc_key, RFC_KEYLEN, (step + off) * TOTP_PERIOD, code), 0);
        int64_t matched = INT64_MIN;
        bool ok = totp_verify(rfc_key, RFC_KEYLEN, code, now, &matched);
        if (off >= -1 && off <= 1) {
            cr_assert(ok, "offset %d", off);
            cr_assert_eq(matched, step + off, "offset %d", off);
        } else {
            cr_assert_not(ok, "offset %d", off);
            cr_assert_eq(matched, INT64_MIN, "untouched on failure");
        }
    }
    /* Seconds within a step do not matter: the start and the end of the step agree. */
    cr_assert_eq(totp_generate(rfc_key, RFC_KEYLEN, step * TOTP_PERIOD, code), 0);
    cr_assert(totp_verify(rfc_key, RFC_KEYLEN, code, step * TOTP_PERIOD + 29, NULL));
}

Test(totp, code_cannot_be_reused_in_its_window)
{
    const int64_t now = 2000000000;
    char code[TOTP_DIGITS + 1];
    cr_assert_eq(totp_generate(rfc_key, RFC_KEYLEN, now, code), 0);
    int64_t last = INT64_MIN, matched = 0;
    cr_assert(totp_verify_after(rfc_key, RFC_KEYLEN, code, now, last, &matched));
    last = matched;
    /* The same code again, now or 30 s later while still inside the window: refused. */
    cr_assert_not(totp_verify_after(rfc_key, RFC_KEYLEN, code, now, last, NULL));
    cr_assert_not(totp_verify_after(rfc_key, RFC_KEYLEN, code, now + TOTP_PERIOD, last, NULL));
    /* The previous step's code is older than what was used: refused as well. */
    cr_assert_eq(totp_generate(rfc_key, RFC_KEYLEN, now - TOTP_PERIOD, code), 0);
    cr_assert_not(totp_verify_after(rfc_key, RFC_KEYLEN, code, now, last, NULL));
    /* The next step's code is fine. */
    cr_assert_eq(totp_generate(rfc_key, RFC_KEYLEN, now + TOTP_PERIOD, code), 0);
    cr_assert(totp_verify_after(rfc_key, RFC_KEYLEN, code, now + TOTP_PERIOD, last, &matched));
    cr_assert_eq(matched, last + 1);
}

Test(totp, malformed_codes_refused)
{
    const int64_t now = 59;
    cr_assert(totp_verify(rfc_key, RFC_KEYLEN, "287082", now, NULL));
    const char *bad[] = {"",        "28708",    "2870820", "28708a", " 287082",
                         "287 082", "94287082", "-287082", "２87082"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        cr_assert_not(totp_verify(rfc_key, RFC_KEYLEN, bad[i], now, NULL), "%s", bad[i]);
    cr_assert_not(totp_verify(rfc_key, RFC_KEYLEN, NULL, now, NULL));
    cr_assert_not(totp_verify(rfc_key, RFC_KEYLEN, "287082", -1, NULL));
    /* The wrong secret. */
    static const unsigned char other[] = "12345678901234567891";
    cr_assert_not(totp_verify(other, RFC_KEYLEN, "287082", now, NULL));
}

Test(totp, secret_and_base32)
{
    unsigned char a[TOTP_SECRET_BYTES], b[TOTP_SECRET_BYTES];
    totp_secret_new(a);
    totp_secret_new(b);
    cr_assert_arr_neq(a, b, sizeof(a));

    char b32[TOTP_SECRET_B32_LEN + 1];
    cr_assert_eq(totp_base32(a, sizeof(a), b32, sizeof(b32)), 0);
    cr_assert_eq(strlen(b32), TOTP_SECRET_B32_LEN);
    for (const char *p = b32; *p; p++)
        cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", *p), "%s", b32);

    /* RFC 4648 test vectors, unpadded; and the RFC 6238 key as apps would show it. */
    cr_assert_eq(totp_base32((const unsigned char *)"foobar", 6, b32, sizeof(b32)), 0);
    cr_assert_str_eq(b32, "MZXW6YTBOI");
    cr_assert_eq(totp_base32((const unsigned char *)"f", 1, b32, sizeof(b32)), 0);
    cr_assert_str_eq(b32, "MY");
    cr_assert_eq(totp_base32(rfc_key, RFC_KEYLEN, b32, sizeof(b32)), 0);
    cr_assert_str_eq(b32, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
    char small[TOTP_SECRET_B32_LEN];
    cr_assert_eq(totp_base32(rfc_key, RFC_KEYLEN, small, sizeof(small)), -1);
    cr_assert_str_eq(small, "");
}

Test(totp, otpauth_uri)
{
    char *uri = totp_otpauth_uri("Zygo", "alice@example.com", "JBSWY3DPEHPK3PXP");
    cr_assert_str_eq(uri, "otpauth://totp/Zygo:alice%40example.com?secret=JBSWY3DPEHPK3PXP"
                          "&issuer=Zygo&algorithm=SHA1&digits=6&period=30");
    free(uri);

    /* Spaces, colons, '&' and non-ASCII are percent-encoded in label and parameter alike. */
    uri = totp_otpauth_uri("Acme Co: Ops & Dev", "bob:smith@ex.com", "GEZDGNBV");
    cr_assert_str_eq(uri, "otpauth://totp/Acme%20Co%3A%20Ops%20%26%20Dev:bob%3Asmith%40ex.com"
                          "?secret=GEZDGNBV&issuer=Acme%20Co%3A%20Ops%20%26%20Dev"
                          "&algorithm=SHA1&digits=6&period=30");
    free(uri);
    uri = totp_otpauth_uri("Zyg\xc3\xb6", "a+b~c_d.e-f", "GEZDGNBV");
    cr_assert_str_eq(uri, "otpauth://totp/Zyg%C3%B6:a%2Bb~c_d.e-f?secret=GEZDGNBV"
                          "&issuer=Zyg%C3%B6&algorithm=SHA1&digits=6&period=30");
    free(uri);

    /* No issuer: no prefix, no parameter. */
    uri = totp_otpauth_uri(NULL, "carol", "GEZDGNBV");
    cr_assert_str_eq(uri, "otpauth://totp/carol?secret=GEZDGNBV&algorithm=SHA1&digits=6&period=30");
    free(uri);
}

Test(totp, qr_svg_well_formed)
{
    const char *text = "otpauth://totp/Zygo:alice%40example.com?secret=JBSWY3DPEHPK3PXP"
                       "&issuer=Zygo&algorithm=SHA1&digits=6&period=30";
    char *svg = totp_qr_svg(text);
    cr_assert_not_null(svg);
    cr_assert_eq(strncmp(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\"", 39), 0, "%s", svg);
    size_t len = strlen(svg);
    cr_assert_str_eq(svg + len - 6, "</svg>");

    /* viewBox "0 0 N N" with N = modules + 2 × 4-module quiet zone; N - 8 is a QR width
     * (21 + 4k). */
    int n1 = 0, n2 = 0;
    const char *vb = strstr(svg, "viewBox=\"0 0 ");
    cr_assert_not_null(vb);
    cr_assert_eq(sscanf(vb, "viewBox=\"0 0 %d %d\"", &n1, &n2), 2);
    cr_assert_eq(n1, n2);
    cr_assert_eq((n1 - 8 - 21) % 4, 0, "width %d", n1);
    cr_assert_gt(n1 - 8, 21, "this much text needs more than version 1");
    cr_assert_not_null(strstr(svg, "<rect"));
    cr_assert_not_null(strstr(svg, "<path"));
    /* The top-left finder pattern starts at the quiet zone: a run of 7 dark modules at (4,4). */
    cr_assert_not_null(strstr(svg, "d=\"M4 4h7v1h-7z"), "%.300s", svg);
    /* Nothing is drawn inside the quiet zone. */
    for (const char *p = strchr(strstr(svg, " d=\""), 'M'); p; p = strchr(p + 1, 'M')) {
        int x = -1, y = -1;
        cr_assert_eq(sscanf(p, "M%d %d", &x, &y), 2);
        cr_assert(x >= 4 && y >= 4 && x < n1 - 4 && y < n1 - 4, "M%d %d", x, y);
    }
    /* Balanced quotes and a single root element. */
    size_t quotes = 0;
    for (const char *p = svg; *p; p++)
        quotes += *p == '"';
    cr_assert_eq(quotes % 2, 0);
    cr_assert_null(strstr(svg + 1, "<svg"));

    /* Deterministic for the same text. */
    char *again = totp_qr_svg(text);
    cr_assert_str_eq(svg, again);
    free(again);
    free(svg);
}

Test(totp, qr_data_uri)
{
    const char *text = "otpauth://totp/Zygo:a?secret=GEZDGNBV&issuer=Zygo";
    char *svg = totp_qr_svg(text);
    char *uri = totp_qr_data_uri(text);
    static const char prefix[] = "data:image/svg+xml;base64,";
    cr_assert_eq(strncmp(uri, prefix, sizeof(prefix) - 1), 0);
    const char *b64 = uri + sizeof(prefix) - 1;
    unsigned char *dec = xmalloc(strlen(b64));
    size_t dec_len = 0;
    cr_assert_eq(sodium_base642bin(dec, strlen(b64), b64, strlen(b64), NULL, &dec_len, NULL,
                                   sodium_base64_VARIANT_ORIGINAL),
                 0);
    cr_assert_eq(dec_len, strlen(svg));
    cr_assert_arr_eq(dec, svg, dec_len);
    free(dec);
    free(uri);
    free(svg);
}

Test(totp, qr_too_long_is_null)
{
    size_t n = 8000; /* beyond version 40's byte capacity at level M (2331 bytes) */
    char *text = xmalloc(n + 1);
    memset(text, 'x', n);
    text[n] = '\0';
    cr_assert_null(totp_qr_svg(text));
    cr_assert_null(totp_qr_data_uri(text));
    free(text);
}
