/*
 * token.h — opaque random tokens (refresh tokens, email-verification and password-reset tokens,
 * MFA recovery codes) and the hashes that are stored in their place.
 *
 * Owns: the one-time libsodium initialisation every crypto module in lib/ goes through
 * (token_crypto_init), so the hot paths pay an atomic load instead of sodium_init()'s lock.
 *
 * Only hashes are stored: a database leak must not hand out usable tokens. A token carries 256
 * random bits, so a plain SHA-256 is enough (nothing to brute-force). A recovery code carries
 * 50 bits; its hash only ever replaces the second factor, the codes are single-use and the
 * verify route is rate limited.
 */
#ifndef ZYGO_TOKEN_H
#define ZYGO_TOKEN_H

#include "lib/common.h"

#define TOKEN_BYTES 32        /* random bytes in a token */
#define TOKEN_LEN 43          /* base64url without padding of TOKEN_BYTES, without the NUL */
#define TOKEN_HASH_LEN 64     /* lowercase hex SHA-256, without the NUL */
#define TOKEN_RECOVERY_LEN 11 /* "ABCDE-FGHJK", without the NUL */

/* Initialises libsodium once for the process; aborts if it cannot (no safe randomness).
 * Cheap after the first call; safe from any thread. */
void token_crypto_init(void);

/* Fills `out` with TOKEN_LEN base64url characters of fresh randomness and a NUL.
 * Returns 0, or -1 (out untouched beyond out[0] = '\0') when n < TOKEN_LEN + 1. */
int token_new(char *out, size_t n);

/* SHA-256 of the NUL-terminated token as lowercase hex: what the database stores. */
void token_hash(const char *token, char out[TOKEN_HASH_LEN + 1]);

/* Constant-time equality of two hashes (or any two secrets of public length). Strings of
 * different lengths are unequal; only the length can leak through timing. */
bool token_equal(const char *a, const char *b);

/* A human-friendly single-use recovery code: 10 characters of Crockford base32 (no I, L, O, U)
 * in two groups, "ABCDE-FGHJK". */
void token_recovery_code(char out[TOKEN_RECOVERY_LEN + 1]);

/* Brings what a user typed back to the canonical "ABCDE-FGHJK" form so it can be hashed and
 * compared: case, spaces and hyphens are ignored and the look-alikes O→0, I/L→1 are mapped as
 * Crockford does. Returns 0, or -1 if it is not 10 valid characters. */
int token_recovery_normalize(const char *in, char out[TOKEN_RECOVERY_LEN + 1]);

#endif
