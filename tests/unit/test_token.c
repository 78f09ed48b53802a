/* test_token.c — opaque tokens, their hashes and recovery codes. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "lib/token.h"

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Asserts that n strings of width w (each NUL-terminated, stored back to back) are distinct. */
static void assert_distinct(char *all, size_t n, size_t w)
{
    char **p = xmalloc(n * sizeof(char *));
    for (size_t i = 0; i < n; i++)
        p[i] = all + i * w;
    qsort(p, n, sizeof(char *), cmp_str);
    for (size_t i = 1; i < n; i++)
        cr_assert_neq(strcmp(p[i - 1], p[i]), 0, "duplicate %s", p[i]);
    free(p);
}

Test(token, new_length_and_alphabet)
{
    for (int n = 0; n < 1000; n++) {
        char t[TOKEN_LEN + 1];
        cr_assert_eq(token_new(t, sizeof(t)), 0);
        cr_assert_eq(strlen(t), TOKEN_LEN);
        for (size_t i = 0; i < TOKEN_LEN; i++)
            cr_assert(is_b64url(t[i]), "%s", t);
    }
}

Test(token, new_refuses_small_buffer)
{
    char t[TOKEN_LEN];
    memset(t, 'x', sizeof(t));
    cr_assert_eq(token_new(t, sizeof(t)), -1);
    cr_assert_eq(t[0], '\0');
}

Test(token, new_unique_over_10k)
{
    enum { N = 10000, W = TOKEN_LEN + 1 };
    char *all = xmalloc((size_t)N * W);
    for (size_t i = 0; i < N; i++)
        cr_assert_eq(token_new(all + i * W, W), 0);
    assert_distinct(all, N, W);
    free(all);
}

Test(token, hash_known_vectors_and_stable)
{
    char h[TOKEN_HASH_LEN + 1], h2[TOKEN_HASH_LEN + 1];
    token_hash("abc", h);
    cr_assert_str_eq(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    token_hash("", h);
    cr_assert_str_eq(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

    char t[TOKEN_LEN + 1];
    token_new(t, sizeof(t));
    token_hash(t, h);
    token_hash(t, h2);
    cr_assert_str_eq(h, h2);
    cr_assert_eq(strlen(h), TOKEN_HASH_LEN);
    t[0] = t[0] == 'A' ? 'B' : 'A';
    token_hash(t, h2);
    cr_assert_str_neq(h, h2);
}

Test(token, equal_is_correct)
{
    char a[TOKEN_HASH_LEN + 1], b[TOKEN_HASH_LEN + 1];
    token_hash("one", a);
    token_hash("one", b);
    cr_assert(token_equal(a, b));
    cr_assert(token_equal("", ""));
    /* A difference in the first, a middle and the last position each counts. */
    size_t pos[] = {0, TOKEN_HASH_LEN / 2, TOKEN_HASH_LEN - 1};
    for (size_t i = 0; i < ARRAY_LEN(pos); i++) {
        memcpy(b, a, sizeof(a));
        b[pos[i]] = b[pos[i]] == '0' ? '1' : '0';
        cr_assert_not(token_equal(a, b), "diff at %zu", pos[i]);
    }
    cr_assert_not(token_equal(a, "abc"));
    cr_assert_not(token_equal("abc", "abcd"));
}

Test(token, recovery_code_format)
{
    static const char alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    for (int n = 0; n < 1000; n++) {
        char c[TOKEN_RECOVERY_LEN + 1];
        token_recovery_code(c);
        cr_assert_eq(strlen(c), TOKEN_RECOVERY_LEN, "%s", c);
        cr_assert_eq(c[5], '-', "%s", c);
        for (int i = 0; i < TOKEN_RECOVERY_LEN; i++)
            if (i != 5)
                cr_assert_not_null(strchr(alphabet, c[i]), "%s", c);
        char norm[TOKEN_RECOVERY_LEN + 1];
        cr_assert_eq(token_recovery_normalize(c, norm), 0);
        cr_assert_str_eq(norm, c);
    }
}

Test(token, recovery_code_unique_over_10k)
{
    enum { N = 10000, W = TOKEN_RECOVERY_LEN + 1 };
    char *all = xmalloc((size_t)N * W);
    for (size_t i = 0; i < N; i++)
        token_recovery_code(all + i * W);
    assert_distinct(all, N, W);
    free(all);
}

Test(token, recovery_normalize_what_users_type)
{
    char out[TOKEN_RECOVERY_LEN + 1];
    cr_assert_eq(token_recovery_normalize("abcde fghjk", out), 0);
    cr_assert_str_eq(out, "ABCDE-FGHJK");
    cr_assert_eq(token_recovery_normalize(" ABCDEFGHJK ", out), 0);
    cr_assert_str_eq(out, "ABCDE-FGHJK");
    /* Crockford look-alikes: O is 0, I and L are 1. */
    cr_assert_eq(token_recovery_normalize("oOiIl-LZZZZ", out), 0);
    cr_assert_str_eq(out, "00111-1ZZZZ");

    cr_assert_eq(token_recovery_normalize("ABCDE-FGHJ", out), -1);   /* 9 characters */
    cr_assert_eq(token_recovery_normalize("ABCDE-FGHJKM", out), -1); /* 11 characters */
    cr_assert_eq(token_recovery_normalize("ABCDE-FGHJU", out), -1);  /* U is not in the set */
    cr_assert_eq(token_recovery_normalize("ABCDE_FGHJK", out), -1);  /* '_' is not a separator */
    cr_assert_eq(token_recovery_normalize("", out), -1);
}
