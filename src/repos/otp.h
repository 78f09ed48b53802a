/* otp.h — single-use tokens sent by email (verification, password reset, invitation): only
 * the SHA-256 of each token is stored, with an expiry, and taking one marks it used. */
#ifndef ZYGO_REPO_OTP_H
#define ZYGO_REPO_OTP_H

#include "db/db.h"
#include "lib/token.h"

/* A new token for the user and purpose, valid until expires_at (ISO-8601); earlier unused
 * tokens of the same purpose stop working. The token goes to out. */
int otp_create(struct db_conn *c, const char *tenant_id, const char *user_id, const char *purpose,
               const char *expires_at, char out[TOKEN_LEN + 1]);

/* Spends a live token of this purpose: 1 (whose it was in tenant_id/user_id), 0 unknown,
 * expired or used, -1 error. The caller has the bypass on: the tenant is not known yet. */
int otp_take(struct db_conn *c, const char *token, const char *purpose, const char *now,
             char tenant_id[37], char user_id[37]);

#endif
