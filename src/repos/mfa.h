/* mfa.h — the MFA repository: TOTP factors (secret sealed at rest), one-time recovery codes
 * (hashed) and login challenges. */
#ifndef ZYGO_REPO_MFA_H
#define ZYGO_REPO_MFA_H

#include "db/db.h"

struct mfa_factor {
    char id[37];
    char secret_sealed[256];
    char status[16];
    int64_t last_step;
};

/* The user's factor: verified_only picks the active one; else the newest of any status.
 * 1 found, 0 none, -1 error. */
int mfa_factor_get(struct db_conn *c, const char *tenant_id, const char *user_id,
                   const char *factor_id, bool verified_only, struct mfa_factor *out);
int mfa_factor_create(struct db_conn *c, const char *tenant_id, const char *user_id,
                      const char *id, const char *secret_sealed);
int mfa_factor_verify(struct db_conn *c, const char *id, int64_t step, const char *now);
/* Moves last_step forward only: 1 when this call did (the code is now spent), 0 when someone
 * used this or a later step first, -1 error. */
int mfa_factor_spend(struct db_conn *c, const char *id, int64_t step, const char *now);
/* Removes every factor and recovery code of the user and clears users.mfa_enabled, or, with
 * enabled true, sets it. */
int mfa_set_enabled(struct db_conn *c, const char *tenant_id, const char *user_id, bool enabled);
int mfa_clear(struct db_conn *c, const char *tenant_id, const char *user_id);

/* Replaces the user's recovery codes with the given hashes. */
int mfa_recovery_replace(struct db_conn *c, const char *tenant_id, const char *user_id,
                         const char *const *hashes, size_t n);
/* Spends an unused recovery code with this hash: 1 spent, 0 no such unused code, -1 error. */
int mfa_recovery_spend(struct db_conn *c, const char *tenant_id, const char *user_id,
                       const char *hash, const char *now);

int mfa_challenge_create(struct db_conn *c, const char *tenant_id, const char *user_id,
                         const char *ua, const char *ip, const char *expires_at, char id[37]);
struct mfa_challenge {
    char tenant_id[37];
    char user_id[37];
};
/* Marks a live challenge used and says whose it was: 1 ok, 0 unknown/expired/used, -1 error.
 * (The caller has the bypass on: the tenant is not known yet.) */
int mfa_challenge_take(struct db_conn *c, const char *id, const char *now,
                       struct mfa_challenge *out);

#endif
