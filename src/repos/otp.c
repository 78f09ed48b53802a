/* otp.c — see otp.h. */
#include "lib/common.h"

#include "lib/uuid.h"
#include "repos/otp.h"

int otp_create(struct db_conn *c, const char *tenant_id, const char *user_id, const char *purpose,
               const char *expires_at, char out[TOKEN_LEN + 1])
{
    char id[37], hash[TOKEN_HASH_LEN + 1];
    if (db_exec(c,
                "UPDATE one_time_tokens SET used_at = expires_at WHERE tenant_id = $1"
                " AND user_id = $2 AND purpose = $3 AND used_at IS NULL",
                DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(user_id), DB_TEXT(purpose))) < 0)
        return -1;
    uuid_v7(id);
    if (token_new(out, TOKEN_LEN + 1) < 0)
        return -1;
    token_hash(out, hash);
    return db_exec(c,
                   "INSERT INTO one_time_tokens (id, tenant_id, user_id, purpose, token_hash,"
                   " expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                   DB_ARGS(DB_TEXT(id), DB_TEXT(tenant_id), DB_TEXT(user_id), DB_TEXT(purpose),
                           DB_TEXT(hash), DB_TEXT(expires_at))) == 1
               ? 0
               : -1;
}

int otp_take(struct db_conn *c, const char *token, const char *purpose, const char *now,
             char tenant_id[37], char user_id[37])
{
    char hash[TOKEN_HASH_LEN + 1];
    token_hash(token, hash);
    struct db_rows *r = db_query(c,
                                 "SELECT id, tenant_id, user_id FROM one_time_tokens"
                                 " WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL"
                                 " AND expires_at > $3",
                                 DB_ARGS(DB_TEXT(hash), DB_TEXT(purpose), DB_TEXT(now)));
    if (!r)
        return -1;
    char id[37] = "";
    int found = 0;
    if (db_next(r)) {
        snprintf(id, sizeof(id), "%s", db_text(r, 0));
        snprintf(tenant_id, 37, "%s", db_text(r, 1));
        snprintf(user_id, 37, "%s", db_text(r, 2));
        found = 1;
    } else if (db_rows_error(r)) {
        found = -1;
    }
    db_rows_free(r);
    if (found != 1)
        return found;
    /* only one caller spends it, even when two race */
    int n = db_exec(c, "UPDATE one_time_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
                    DB_ARGS(DB_TEXT(id), DB_TEXT(now)));
    return n < 0 ? -1 : n;
}
