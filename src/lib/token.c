/* token.c — opaque random tokens, their hashes and recovery codes; see token.h. */
#include "lib/common.h"

#include "lib/token.h"

#include <pthread.h>
#include <sodium.h>

/* Crockford's base32: digits and letters without I, L, O, U, which read as 1, 1, 0, V. */
static const char crockford[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

static pthread_once_t sodium_once = PTHREAD_ONCE_INIT;

static void sodium_start(void)
{
    if (sodium_init() < 0) {
        /* Without libsodium there is no randomness and no hashing: nothing safe to do. */
        fprintf(stderr, "zygo: libsodium failed to initialise\n");
        abort();
    }
}

void token_crypto_init(void)
{
    pthread_once(&sodium_once, sodium_start);
}

int token_new(char *out, size_t n)
{
    if (n < TOKEN_LEN + 1) {
        if (n)
            out[0] = '\0';
        return -1;
    }
    token_crypto_init();
    unsigned char raw[TOKEN_BYTES];
    randombytes_buf(raw, sizeof(raw));
    sodium_bin2base64(out, n, raw, sizeof(raw), sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof(raw));
    return 0;
}

void token_hash(const char *token, char out[TOKEN_HASH_LEN + 1])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, TOKEN_HASH_LEN + 1, h, sizeof(h));
}

bool token_equal(const char *a, const char *b)
{
    size_t n = strlen(a);
    if (n != strlen(b))
        return false;
    return zy_ct_equal(a, b, n);
}

/* Writes the 10 symbols as "XXXXX-XXXXX". */
static void recovery_format(const char sym[10], char out[TOKEN_RECOVERY_LEN + 1])
{
    memcpy(out, sym, 5);
    out[5] = '-';
    memcpy(out + 6, sym + 5, 5);
    out[TOKEN_RECOVERY_LEN] = '\0';
}

void token_recovery_code(char out[TOKEN_RECOVERY_LEN + 1])
{
    token_crypto_init();
    unsigned char raw[10];
    char sym[10];
    randombytes_buf(raw, sizeof(raw));
    /* 32 symbols divide 256 evenly, so the low five bits are unbiased. */
    for (size_t i = 0; i < sizeof(raw); i++)
        sym[i] = crockford[raw[i] & 31];
    recovery_format(sym, out);
    sodium_memzero(raw, sizeof(raw));
    sodium_memzero(sym, sizeof(sym));
}

int token_recovery_normalize(const char *in, char out[TOKEN_RECOVERY_LEN + 1])
{
    char sym[10];
    size_t n = 0;
    for (const char *p = in; *p; p++) {
        char c = *p;
        if (c == ' ' || c == '-')
            continue;
        if (c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        if (c == 'O')
            c = '0';
        else if (c == 'I' || c == 'L')
            c = '1';
        if (!strchr(crockford, c) || n == sizeof(sym))
            return -1;
        sym[n++] = c;
    }
    if (n != sizeof(sym))
        return -1;
    recovery_format(sym, out);
    return 0;
}
