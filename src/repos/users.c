/* users.c — see users.h. */
#include "lib/common.h"

#include "lib/uuid.h"
#include "repos/repo.h"
#include "repos/users.h"

/* The API's User object, in SELECT order. */
#define USER_COLUMNS                                                                           \
    "id, tenant_id, email, first_name, last_name, display_name, avatar, phone, status, "       \
    "email_verified, phone_verified, mfa_enabled, last_login_at, created_at, updated_at"

static const struct repo_col user_cols[] = {
    {"id", REPO_TEXT},
    {"tenantId", REPO_TEXT},
    {"email", REPO_TEXT},
    {"firstName", REPO_TEXT},
    {"lastName", REPO_TEXT},
    {"displayName", REPO_TEXT},
    {"avatar", REPO_TEXT},
    {"phone", REPO_TEXT},
    {"status", REPO_TEXT},
    {"emailVerified", REPO_BOOL},
    {"phoneVerified", REPO_BOOL},
    {"mfaEnabled", REPO_BOOL},
    {"lastLoginAt", REPO_TIMESTAMP},
    {"createdAt", REPO_TIMESTAMP},
    {"updatedAt", REPO_TIMESTAMP},
    {NULL, REPO_TEXT},
};

json_t *users_find_by_id(struct db_conn *c, const char *tenant_id, const char *id, bool *failed)
{
    *failed = false;
    char uid[37];
    /* an id that is not a UUID names no user (and PostgreSQL would refuse the cast); ids are
     * stored lower-case, which SQLite compares exactly */
    if (!uuid_valid(id) || repo_tenant(c, tenant_id) < 0)
        return NULL;
    uuid_normalize(id, uid);
    struct db_rows *r = db_query(c,
                                 "SELECT " USER_COLUMNS " FROM users"
                                 " WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL",
                                 DB_ARGS(DB_TEXT(uid), DB_TEXT(db_tenant(c))));
    if (!r) {
        *failed = true;
        return NULL;
    }
    json_t *u = NULL;
    if (db_next(r))
        u = repo_row_json(r, user_cols);
    else if (db_rows_error(r))
        *failed = true;
    db_rows_free(r);
    return u;
}
