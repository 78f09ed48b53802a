/* test_secretbox.c — secrets at rest: round trip, binding to the row, tampering, key rotation. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "lib/secretbox.h"

#define AD "mfa_factors:secret:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"

static struct secretbox_keyring ring;

static void key_of(unsigned char k[SECRETBOX_KEYBYTES], unsigned char fill)
{
    memset(k, fill, SECRETBOX_KEYBYTES);
}

static void setup(void)
{
    unsigned char k[SECRETBOX_KEYBYTES];
    key_of(k, 0x11);
    secretbox_keyring_init(&ring);
    cr_assert_eq(secretbox_keyring_add(&ring, 1, k), 0);
}

static void teardown(void)
{
    secretbox_keyring_free(&ring);
}

static char *seal_ok(const char *ad, const char *pt)
{
    char *text = NULL;
    cr_assert_eq(secretbox_seal(&ring, ad, pt, strlen(pt), &text), SECRETBOX_OK);
    cr_assert_not_null(text);
    return text;
}

static int open_rc(const char *ad, const char *text)
{
    unsigned char *pt = NULL;
    size_t len = 99;
    int rc = secretbox_open(&ring, ad, text, &pt, &len);
    if (rc != SECRETBOX_OK) {
        cr_assert_null(pt);
        cr_assert_eq(len, 0);
    }
    secretbox_free(pt, len);
    return rc;
}

TestSuite(secretbox, .init = setup, .fini = teardown);

Test(secretbox, round_trip)
{
    char *text = seal_ok(AD, "JBSWY3DPEHPK3PXP");
    cr_assert_eq(strncmp(text, "v1.1.", 5), 0, "%s", text);
    for (const char *p = text + 5; *p; p++)
        cr_assert(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", *p),
                  "%s", text);
    unsigned char *pt = NULL;
    size_t len = 0;
    cr_assert_eq(secretbox_open(&ring, AD, text, &pt, &len), SECRETBOX_OK);
    cr_assert_eq(len, 16);
    cr_assert_str_eq((char *)pt, "JBSWY3DPEHPK3PXP", "NUL-terminated for text secrets");
    secretbox_free(pt, len);
    free(text);
}

Test(secretbox, binary_and_empty_plaintexts)
{
    unsigned char bin[256];
    for (size_t i = 0; i < sizeof(bin); i++)
        bin[i] = (unsigned char)i;
    char *text = NULL;
    cr_assert_eq(secretbox_seal(&ring, "", bin, sizeof(bin), &text), SECRETBOX_OK);
    unsigned char *pt = NULL;
    size_t len = 0;
    cr_assert_eq(secretbox_open(&ring, "", text, &pt, &len), SECRETBOX_OK);
    cr_assert_eq(len, sizeof(bin));
    cr_assert_arr_eq(pt, bin, sizeof(bin));
    secretbox_free(pt, len);
    free(text);

    cr_assert_eq(secretbox_seal(&ring, AD, "", 0, &text), SECRETBOX_OK);
    cr_assert_eq(secretbox_open(&ring, AD, text, &pt, &len), SECRETBOX_OK);
    cr_assert_eq(len, 0);
    cr_assert_str_eq((char *)pt, "");
    secretbox_free(pt, len);
    free(text);
}

Test(secretbox, same_plaintext_seals_differently)
{
    char *a = seal_ok(AD, "secret"), *b = seal_ok(AD, "secret");
    cr_assert_str_neq(a, b);
    cr_assert_eq(open_rc(AD, a), SECRETBOX_OK);
    cr_assert_eq(open_rc(AD, b), SECRETBOX_OK);
    free(a);
    free(b);
}

Test(secretbox, wrong_associated_data_fails)
{
    char *text = seal_ok(AD, "secret");
    cr_assert_eq(open_rc("mfa_factors:secret:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5c", text),
                 SECRETBOX_EAUTH);
    cr_assert_eq(open_rc("providers:api_key:0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b", text),
                 SECRETBOX_EAUTH);
    cr_assert_eq(open_rc("", text), SECRETBOX_EAUTH);
    free(text);
}

Test(secretbox, tampering_fails)
{
    char *text = seal_ok(AD, "a secret worth stealing");
    size_t len = strlen(text);
    /* Flip each base64 character (nonce, ciphertext and tag alike). */
    for (size_t i = 5; i < len; i++) {
        char *t = xstrdup(text);
        t[i] = t[i] == 'A' ? 'B' : 'A';
        int rc = open_rc(AD, t);
        cr_assert(rc == SECRETBOX_EAUTH || rc == SECRETBOX_EFORMAT, "position %zu: %d", i, rc);
        free(t);
    }
    /* Truncated, extended, or with a different version. */
    char *t = xstrndup(text, len - 1);
    cr_assert_neq(open_rc(AD, t), SECRETBOX_OK);
    free(t);
    t = xmalloc(len + 2);
    snprintf(t, len + 2, "%sA", text);
    cr_assert_neq(open_rc(AD, t), SECRETBOX_OK);
    t[1] = '2';
    t[len] = '\0';
    cr_assert_eq(open_rc(AD, t), SECRETBOX_EFORMAT);
    free(t);
    free(text);
}

Test(secretbox, malformed_texts)
{
    const char *bad[] = {
        /* truncated */
        "",
        "v1",
        "v1.",
        "v1.1",
        "v1.1.",
        /* other versions */
        "v2.1.AAAA",
        "V1.1.AAAA",
        /* bad kids, the last over 32 bits */
        "v1.0.AAAA",
        "v1.01.AAAA",
        "v1.x.AAAA",
        "v1.-1.AAAA",
        "v1.99999999999.AAAA",
        /* bad bodies: too short for nonce and tag, not base64url, padded, a stray dot */
        "v1.1.AAAA",
        "v1.1.!!!!",
        "v1.1.AAAA=",
        "v1.1.AAAA.AAAA",
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        cr_assert_eq(open_rc(AD, bad[i]), SECRETBOX_EFORMAT, "%s", bad[i]);
}

Test(secretbox, unknown_kid_fails)
{
    char *text = seal_ok(AD, "secret");
    char *other = xmalloc(strlen(text) + 2);
    snprintf(other, strlen(text) + 2, "v1.7.%s", text + 5);
    cr_assert_eq(open_rc(AD, other), SECRETBOX_EKID);
    free(other);
    free(text);

    struct secretbox_keyring empty;
    secretbox_keyring_init(&empty);
    char *out = NULL;
    cr_assert_eq(secretbox_seal(&empty, AD, "x", 1, &out), SECRETBOX_EKID);
    cr_assert_null(out);
    secretbox_keyring_free(&empty);
}

Test(secretbox, kid_is_bound_to_the_ciphertext)
{
    /* Key 2 equal to key 1: relabelling a record as kid 2 still fails, because the header is
     * part of the associated data. */
    unsigned char k[SECRETBOX_KEYBYTES];
    key_of(k, 0x11);
    cr_assert_eq(secretbox_keyring_add(&ring, 2, k), 0);
    char *text = seal_ok(AD, "secret");
    char *other = xmalloc(strlen(text) + 2);
    snprintf(other, strlen(text) + 2, "v1.2.%s", text + 5);
    cr_assert_eq(open_rc(AD, other), SECRETBOX_EAUTH);
    free(other);
    free(text);
}

Test(secretbox, rotation)
{
    char *old = seal_ok(AD, "sealed under key 1");
    cr_assert_not(secretbox_needs_reseal(&ring, old));

    unsigned char k2[SECRETBOX_KEYBYTES];
    key_of(k2, 0x22);
    cr_assert_eq(secretbox_keyring_add(&ring, 2, k2), 0);
    cr_assert_eq(ring.current, 1, "adding a key does not switch to it");
    cr_assert_eq(secretbox_keyring_use(&ring, 2), 0);

    char *fresh = seal_ok(AD, "sealed under key 2");
    cr_assert_eq(strncmp(fresh, "v1.2.", 5), 0, "%s", fresh);
    cr_assert_eq(open_rc(AD, old), SECRETBOX_OK, "old records still open");
    cr_assert_eq(open_rc(AD, fresh), SECRETBOX_OK);
    cr_assert(secretbox_needs_reseal(&ring, old));
    cr_assert_not(secretbox_needs_reseal(&ring, fresh));
    cr_assert(secretbox_needs_reseal(&ring, "garbage"));

    /* A ring holding only key 2 opens new records and refuses old ones by kid. */
    struct secretbox_keyring only2;
    secretbox_keyring_init(&only2);
    cr_assert_eq(secretbox_keyring_add(&only2, 2, k2), 0);
    unsigned char *pt = NULL;
    size_t len = 0;
    cr_assert_eq(secretbox_open(&only2, AD, fresh, &pt, &len), SECRETBOX_OK);
    cr_assert_str_eq((char *)pt, "sealed under key 2");
    secretbox_free(pt, len);
    cr_assert_eq(secretbox_open(&only2, AD, old, &pt, &len), SECRETBOX_EKID);
    secretbox_keyring_free(&only2);

    /* Same kid, different key material: authentication fails. */
    struct secretbox_keyring wrong;
    secretbox_keyring_init(&wrong);
    cr_assert_eq(secretbox_keyring_add(&wrong, 1, k2), 0);
    cr_assert_eq(secretbox_open(&wrong, AD, old, &pt, &len), SECRETBOX_EAUTH);
    secretbox_keyring_free(&wrong);
    free(old);
    free(fresh);
}

Test(secretbox, keyring_rules)
{
    unsigned char k[SECRETBOX_KEYBYTES];
    key_of(k, 0x33);
    cr_assert_eq(secretbox_keyring_add(&ring, 0, k), -1, "kid 0 is reserved");
    cr_assert_eq(secretbox_keyring_add(&ring, 1, k), -1, "duplicate kid");
    cr_assert_eq(secretbox_keyring_use(&ring, 5), -1, "unknown kid");
    for (uint32_t kid = 2; kid <= SECRETBOX_MAX_KEYS; kid++)
        cr_assert_eq(secretbox_keyring_add(&ring, kid, k), 0);
    cr_assert_eq(secretbox_keyring_add(&ring, 100, k), -1, "full");
    cr_assert_eq(secretbox_keyring_use(&ring, UINT32_C(8)), 0);
    char *text = seal_ok(AD, "x");
    cr_assert_eq(strncmp(text, "v1.8.", 5), 0, "%s", text);
    free(text);
}

Test(secretbox, plaintext_size_bounded)
{
    size_t n = SECRETBOX_MAX_PLAINTEXT + 1;
    unsigned char *big = xcalloc(1, n);
    char *text = NULL;
    cr_assert_eq(secretbox_seal(&ring, AD, big, n, &text), SECRETBOX_EFORMAT);
    cr_assert_null(text);
    cr_assert_eq(secretbox_seal(&ring, AD, big, n - 1, &text), SECRETBOX_OK);
    cr_assert_eq(open_rc(AD, text), SECRETBOX_OK);
    free(text);
    free(big);
}
