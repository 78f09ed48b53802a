/* mfa.c — see mfa.h. */
#include "lib/common.h"

#include "lib/uuid.h"
#include "repos/mfa.h"
#include "repos/repo.h"

int mfa_factor_get(struct db_conn *c, const char *tenant_id, const char *user_id,
                   const char *factor_id, bool verified_only, struct mfa_factor *out)
{
    memset(out, 0, sizeof(*out));
    if (factor_id && !uuid_valid(factor_id))
        return 0;
    struct db_rows *r = db_query(c,
                                 "SELECT id, secret_sealed, status, last_step FROM mfa_factors"
                                 " WHERE tenant_id = $1 AND user_id = $2"
                                 " AND ($3 = '' OR id = $4) AND ($5 = 0 OR status = 'verified')"
                                 " ORDER BY created_at DESC LIMIT 1",
                                 DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(user_id),
                                         DB_TEXT(factor_id ? factor_id : ""),
                                         DB_TEXT(factor_id ? factor_id : user_id),
                                         DB_INT(verified_only ? 1 : 0)));
    if (!r)
        return -1;
    int found = 0;
    if (db_next(r)) {
        found = 1;
        db_text_copy(r, 0, out->id, sizeof(out->id));
        db_text_copy(r, 1, out->secret_sealed, sizeof(out->secret_sealed));
        db_text_copy(r, 2, out->status, sizeof(out->status));
        out->last_step = db_int(r, 3);
    } else if (db_rows_error(r)) {
        found = -1;
    }
    db_rows_free(r);
    return found;
}

int mfa_factor_create(struct db_conn *c, const char *tenant_id, const char *user_id,
                      const char *id, const char *secret_sealed)
{
    /* an abandoned enrolment is replaced, never piled up */
    if (db_exec(c,
                "DELETE FROM mfa_factors WHERE tenant_id = $1 AND user_id = $2"
                " AND status = 'unverified'",
                DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(user_id))) < 0)
        return -1;
    return db_exec(c,
                   "INSERT INTO mfa_factors (id, tenant_id, user_id, secret_sealed)"
                   " VALUES ($1, $2, $3, $4)",
                   DB_ARGS(DB_TEXT(id), DB_TEXT(tenant_id), DB_TEXT(user_id),
                           DB_TEXT(secret_sealed))) == 1
               ? 0
               : -1;
}

int mfa_factor_verify(struct db_conn *c, const char *id, int64_t step, const char *now)
{
    return db_exec(c,
                   "UPDATE mfa_factors SET status = 'verified', last_step = $2, updated_at = $3"
                   " WHERE id = $1",
                   DB_ARGS(DB_TEXT(id), DB_INT(step), DB_TEXT(now))) == 1
               ? 0
               : -1;
}

int mfa_factor_spend(struct db_conn *c, const char *id, int64_t step, const char *now)
{
    return db_exec(c,
                   "UPDATE mfa_factors SET last_step = $2, updated_at = $3"
                   " WHERE id = $1 AND last_step < $2",
                   DB_ARGS(DB_TEXT(id), DB_INT(step), DB_TEXT(now)));
}

int mfa_set_enabled(struct db_conn *c, const char *tenant_id, const char *user_id, bool enabled)
{
    return db_exec(c, "UPDATE users SET mfa_enabled = $3 WHERE id = $2 AND tenant_id = $1",
                   DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(user_id), DB_BOOL(enabled))) == 1
               ? 0
               : -1;
}

int mfa_clear(struct db_conn *c, const char *tenant_id, const char *user_id)
{
    if (db_exec(c, "DELETE FROM mfa_factors WHERE tenant_id = $1 AND user_id = $2",
                DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(user_id))) < 0 ||
        db_exec(c, "DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2",
                DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(user_id))) < 0)
        return -1;
    return mfa_set_enabled(c, tenant_id, user_id, false);
}

int mfa_recovery_replace(struct db_conn *c, const char *tenant_id, const char *user_id,
                         const char *const *hashes, size_t n)
{
    if (db_exec(c, "DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2",
                DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(user_id))) < 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        char id[37];
        uuid_v7(id);
        if (db_exec(c,
                    "INSERT INTO mfa_recovery_codes (id, tenant_id, user_id, code_hash)"
                    " VALUES ($1, $2, $3, $4)",
                    DB_ARGS(DB_TEXT(id), DB_TEXT(tenant_id), DB_TEXT(user_id),
                            DB_TEXT(hashes[i]))) != 1)
            return -1;
    }
    return 0;
}

int mfa_recovery_spend(struct db_conn *c, const char *tenant_id, const char *user_id,
                       const char *hash, const char *now)
{
    return db_exec(c,
                   "UPDATE mfa_recovery_codes SET used_at = $4 WHERE tenant_id = $1"
                   " AND user_id = $2 AND code_hash = $3 AND used_at IS NULL",
                   DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(user_id), DB_TEXT(hash), DB_TEXT(now)));
}

int mfa_challenge_create(struct db_conn *c, const char *tenant_id, const char *user_id,
                         const char *ua, const char *ip, const char *expires_at, char id[37])
{
    uuid_v7(id);
    char agent[513] = "";
    if (ua)
        snprintf(agent, sizeof(agent), "%s", ua);
    return db_exec(c,
                   "INSERT INTO mfa_challenges (id, tenant_id, user_id, user_agent, ip,"
                   " expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                   DB_ARGS(DB_TEXT(id), DB_TEXT(tenant_id), DB_TEXT(user_id),
                           DB_TEXT(ua ? agent : NULL), DB_TEXT(ip), DB_TEXT(expires_at))) == 1
               ? 0
               : -1;
}

int mfa_challenge_take(struct db_conn *c, const char *id, const char *now,
                       struct mfa_challenge *out)
{
    memset(out, 0, sizeof(*out));
    if (!uuid_valid(id))
        return 0;
    char cid[37];
    uuid_normalize(id, cid);
    struct db_rows *r = db_query(c,
                                 "SELECT tenant_id, user_id FROM mfa_challenges WHERE id = $1"
                                 " AND used_at IS NULL AND expires_at > $2",
                                 DB_ARGS(DB_TEXT(cid), DB_TEXT(now)));
    if (!r)
        return -1;
    int found = 0;
    if (db_next(r)) {
        db_text_copy(r, 0, out->tenant_id, sizeof(out->tenant_id));
        db_text_copy(r, 1, out->user_id, sizeof(out->user_id));
        found = 1;
    } else if (db_rows_error(r)) {
        found = -1;
    }
    db_rows_free(r);
    if (found != 1)
        return found;
    int n = db_exec(c, "UPDATE mfa_challenges SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
                    DB_ARGS(DB_TEXT(cid), DB_TEXT(now)));
    return n < 0 ? -1 : n;
}
