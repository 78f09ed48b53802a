/* test_password.c — argon2id hashing, verification, rehash detection and the dummy verify. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <time.h>

#include "lib/password.h"

/* Cheap parameters for the tests that only exercise logic, not cost. */
static const struct password_params fast = {.opslimit = 1, .memlimit = 8u * 1024 * 1024};

/* Reads the unsigned number after "<key>=" in a PHC string, or returns 0. */
static unsigned long long phc_param(const char *hash, const char *key)
{
    char pat[8];
    snprintf(pat, sizeof(pat), "%s=", key);
    const char *p = strstr(hash, pat);
    return p ? strtoull(p + strlen(pat), NULL, 10) : 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(double), cmp_double);
    return v[n / 2];
}

Test(password, round_trip_and_wrong_password)
{
    char h[PASSWORD_HASH_MAX];
    cr_assert_eq(password_hash("correct horse battery staple", h), 0);
    cr_assert(password_verify(h, "correct horse battery staple"));
    cr_assert_not(password_verify(h, "correct horse battery stapl"));
    cr_assert_not(password_verify(h, "Correct horse battery staple"));
    cr_assert_not(password_verify(h, ""));
}

Test(password, default_hash_is_argon2id_at_or_above_owasp_minimum)
{
    char h[PASSWORD_HASH_MAX];
    cr_assert_eq(password_hash("pw", h), 0);
    cr_assert_eq(strncmp(h, "$argon2id$v=19$", 15), 0, "%s", h);
    /* OWASP: argon2id with m >= 19 MiB (19456 KiB) and t >= 2, p = 1. */
    cr_assert_geq(phc_param(h, "m"), 19456, "%s", h);
    cr_assert_geq(phc_param(h, "t"), 2, "%s", h);
    cr_assert_eq(phc_param(h, "p"), 1, "%s", h);
    cr_assert(password_params_ok(&password_params_default));
    cr_assert(password_params_ok(&password_params_owasp_min));
    cr_assert_not(password_params_ok(&fast));
}

Test(password, salted_hashes_differ)
{
    char a[PASSWORD_HASH_MAX], b[PASSWORD_HASH_MAX];
    cr_assert_eq(password_hash_with(&fast, "same", a), 0);
    cr_assert_eq(password_hash_with(&fast, "same", b), 0);
    cr_assert_str_neq(a, b);
    cr_assert(password_verify(a, "same"));
    cr_assert(password_verify(b, "same"));
}

Test(password, params_are_honoured)
{
    char h[PASSWORD_HASH_MAX];
    cr_assert_eq(password_hash_with(&fast, "pw", h), 0);
    cr_assert_eq(phc_param(h, "m"), 8192, "%s", h);
    cr_assert_eq(phc_param(h, "t"), 1, "%s", h);
    /* Below libsodium's floor: refused, not silently raised. */
    struct password_params tiny = {.opslimit = 0, .memlimit = 8u * 1024 * 1024};
    cr_assert_eq(password_hash_with(&tiny, "pw", h), -1);
}

Test(password, long_passwords_refused_cleanly)
{
    char *pw = xmalloc(PASSWORD_MAX_BYTES + 2);
    memset(pw, 'a', PASSWORD_MAX_BYTES + 1);
    pw[PASSWORD_MAX_BYTES + 1] = '\0';
    char h[PASSWORD_HASH_MAX];
    cr_assert_eq(password_hash_with(&fast, pw, h), -1);
    /* Exactly at the bound is fine. */
    pw[PASSWORD_MAX_BYTES] = '\0';
    cr_assert_eq(password_hash_with(&fast, pw, h), 0);
    cr_assert(password_verify(h, pw));
    pw[PASSWORD_MAX_BYTES] = 'a';
    cr_assert_not(password_verify(h, pw));
    cr_assert_not(password_verify_dummy_with(&fast, pw));
    free(pw);
}

Test(password, malformed_hashes_do_not_verify)
{
    cr_assert_not(password_verify("", "pw"));
    cr_assert_not(password_verify("$argon2id$v=19$m=8192,t=1,p=1$", "pw"));
    cr_assert_not(
        password_verify("$2b$12$abcdefghijklmnopqrstuuN8f1p6S1b0N5V8tW2ZqQ8b2n5l3Rk.", "pw"));
    cr_assert_not(password_verify("plaintext", "plaintext"));
}

Test(password, needs_rehash)
{
    char weak[PASSWORD_HASH_MAX], cur[PASSWORD_HASH_MAX];
    cr_assert_eq(password_hash_with(&fast, "pw", weak), 0);
    cr_assert_eq(password_hash("pw", cur), 0);
    cr_assert(password_needs_rehash(weak));
    cr_assert_not(password_needs_rehash(cur));
    cr_assert_not(password_needs_rehash_with(&fast, weak));
    cr_assert(password_needs_rehash_with(&fast, cur));
    cr_assert(password_needs_rehash("not a hash"));
}

Test(password, dummy_never_matches)
{
    cr_assert_not(password_verify_dummy_with(&fast, "anything"));
    cr_assert_not(password_verify_dummy_with(&fast, "anything")); /* cached path too */
    cr_assert_not(password_verify_dummy_with(&fast, ""));
}

/* The login path for an unknown email must cost what a wrong password costs. Median of a few
 * runs each with the production parameters; the bound is loose on purpose (CI noise), the
 * thing it catches is a dummy that skips argon2id (100x cheaper) or runs it twice. */
Test(password, dummy_costs_like_a_real_verify, .timeout = 60)
{
    enum { RUNS = 5 };
    char h[PASSWORD_HASH_MAX];
    cr_assert_eq(password_hash("real password", h), 0);
    (void)password_verify_dummy("warm-up"); /* computes the dummy hash once */

    double real[RUNS], dummy[RUNS];
    for (int i = 0; i < RUNS; i++) {
        double t0 = now_s();
        cr_assert_not(password_verify(h, "wrong password"));
        double t1 = now_s();
        cr_assert_not(password_verify_dummy("wrong password"));
        double t2 = now_s();
        real[i] = t1 - t0;
        dummy[i] = t2 - t1;
    }
    double ratio = median(dummy, RUNS) / median(real, RUNS);
    cr_assert(ratio > 0.5 && ratio < 2.0, "dummy %.1f ms vs real %.1f ms",
              median(dummy, RUNS) * 1e3, median(real, RUNS) * 1e3);
}
