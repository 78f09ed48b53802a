/*
 * password.h — password hashing with argon2id (libsodium's crypto_pwhash_argon2id_str).
 *
 * Owns: the cost parameters and, per parameter set, one dummy hash computed on first use, so a
 * login for an unknown email can spend exactly the time a real verification spends
 * (password_verify_dummy) and "wrong email" cannot be told from "wrong password" by timing.
 *
 * Hashes are libsodium's PHC strings ("$argon2id$v=19$m=65536,t=2,p=1$salt$hash"): salt and
 * parameters travel with the hash, so old hashes keep verifying after the defaults change and
 * password_needs_rehash says when to re-hash at the next successful login.
 * Hashing costs tens of milliseconds by design: call it from the worker pool, never the I/O
 * thread.
 */
#ifndef ZYGO_PASSWORD_H
#define ZYGO_PASSWORD_H

#include "lib/common.h"

#define PASSWORD_HASH_MAX 128   /* buffer for a hash, NUL included (crypto_pwhash_STRBYTES) */
#define PASSWORD_MAX_BYTES 1024 /* longer passwords are refused */

struct password_params {
    unsigned long long opslimit; /* argon2id passes (t) */
    size_t memlimit;             /* memory in bytes (m); argon2id always runs with p = 1 */
};

/* The defaults: libsodium's INTERACTIVE preset, t = 2 and m = 64 MiB, above OWASP's minimum. */
extern const struct password_params password_params_default;
/* OWASP's minimum for argon2id (t = 2, m = 19 MiB): the cheapest a deployment may configure. */
extern const struct password_params password_params_owasp_min;

/* Whether p is at or above OWASP's minimum. The configuration refuses weaker parameters outside
 * tests; this module hashes with whatever it is given. */
bool password_params_ok(const struct password_params *p);

/* Hashes pw into out with the default parameters (a fresh random salt every time).
 * Returns 0, or -1 if pw is longer than PASSWORD_MAX_BYTES or the parameters are out of
 * libsodium's range. */
int password_hash(const char *pw, char out[PASSWORD_HASH_MAX]);
int password_hash_with(const struct password_params *p, const char *pw,
                       char out[PASSWORD_HASH_MAX]);

/* True if pw matches the stored hash (libsodium compares in constant time). False for a wrong
 * password, a malformed or non-argon2id hash, or a password over PASSWORD_MAX_BYTES. */
bool password_verify(const char *hash, const char *pw);

/* Costs what password_verify costs against a hash of the given parameters, and returns false.
 * For the login path when no user matched. */
bool password_verify_dummy(const char *pw);
bool password_verify_dummy_with(const struct password_params *p, const char *pw);

/* True if hash was not made with argon2id at exactly these parameters (or is malformed):
 * re-hash the password after the next successful verification. */
bool password_needs_rehash(const char *hash);
bool password_needs_rehash_with(const struct password_params *p, const char *hash);

#endif
