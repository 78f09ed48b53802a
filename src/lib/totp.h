/*
 * totp.h — time-based one-time passwords (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps,
 * one step of clock drift either way) with liboath, and what enrolment shows the user: the
 * base32 secret, the otpauth:// URI and that URI as a QR code (SVG, libqrencode).
 *
 * Owns: liboath's one-time initialisation. Nothing here stores anything: the caller keeps the
 * secret encrypted (secretbox) and the last accepted time step, and passes that step back to
 * totp_verify_after so a code cannot be used twice within its window.
 */
#ifndef ZYGO_TOTP_H
#define ZYGO_TOTP_H

#include "lib/common.h"

#define TOTP_SECRET_BYTES 20   /* 160 bits, the HMAC-SHA1 block RFC 4226 recommends */
#define TOTP_SECRET_B32_LEN 32 /* base32 of TOTP_SECRET_BYTES, without the NUL */
#define TOTP_DIGITS 6
#define TOTP_PERIOD 30 /* seconds per step */
#define TOTP_WINDOW 1  /* steps accepted either side of now */

/* A fresh random secret. */
void totp_secret_new(unsigned char out[TOTP_SECRET_BYTES]);

/* RFC 4648 base32 (A–Z, 2–7) without padding, as authenticator apps expect, into out[0..n).
 * Returns 0, or -1 if out is too small (8 characters per 5 bytes, rounded up, plus the NUL). */
int totp_base32(const unsigned char *secret, size_t len, char *out, size_t n);

/* The time step holding t (t / TOTP_PERIOD). */
int64_t totp_step(int64_t t);

/* The code for time t (seconds since the epoch, >= 0) as 6 digits and a NUL. Returns 0 or -1. */
int totp_generate(const unsigned char *secret, size_t len, int64_t t, char out[TOTP_DIGITS + 1]);

/*
 * True if code (exactly 6 ASCII digits) is the code of a step within TOTP_WINDOW of now's step
 * and later than last_step; *matched_step (optional) gets that step, to be stored as the new
 * last_step so the same code (or an older one) is refused from then on. Every candidate step is
 * computed and compared in constant time, so timing does not tell which one matched.
 * Pass INT64_MIN as last_step when there is none.
 */
bool totp_verify_after(const unsigned char *secret, size_t len, const char *code, int64_t now,
                       int64_t last_step, int64_t *matched_step);
/* totp_verify_after with no previous step: for confirming an enrolment. */
bool totp_verify(const unsigned char *secret, size_t len, const char *code, int64_t now,
                 int64_t *matched_step);

/* otpauth://totp/<Issuer>:<account>?secret=<b32>&issuer=<Issuer>&algorithm=SHA1&digits=6
 * &period=30, issuer and account percent-encoded (RFC 3986 unreserved characters kept; space
 * is %20, ':' %3A, '@' %40). issuer may be NULL or "" (then no prefix and no parameter).
 * Returns a malloc'd string. */
char *totp_otpauth_uri(const char *issuer, const char *account, const char *secret_b32);

/* text as a QR code (error correction M, byte mode) in a standalone SVG: 4-module quiet zone,
 * viewBox in modules, one path for the dark modules. malloc'd, or NULL if text is too long for
 * a QR code. */
char *totp_qr_svg(const char *text);

/* The same SVG as "data:image/svg+xml;base64,…" for an <img src>. malloc'd, or NULL. */
char *totp_qr_data_uri(const char *text);

#endif
