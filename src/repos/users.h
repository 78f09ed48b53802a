/*
 * users.h — the users repository (the specification's UserRepository): all SQL on the users
 * table. Every query carries the tenant filter and soft-deleted rows are never returned.
 */
#ifndef ZYGO_REPO_USERS_H
#define ZYGO_REPO_USERS_H

#include <jansson.h>

#include "db/db.h"

/*
 * The user with this id in this tenant, as the API's User object; NULL when there is none
 * (*failed false) or on a database error (*failed true; see db_errkind on c).
 */
json_t *users_find_by_id(struct db_conn *c, const char *tenant_id, const char *id, bool *failed);

struct buf;
/*
 * The same User object written as JSON text onto b (the single read's fast path): 1, 0 when
 * there is no such user, -1 on a database error, -2 when b overflowed.
 */
int users_write_by_id(struct db_conn *c, const char *tenant_id, const char *id, struct buf *b);
/*
 * The same read as one statement, for db_query_async: its SQL and parameters ($1 the id, $2 the
 * tenant, normalised into uid and tid, which must outlive the call). false when either is not
 * a UUID (no user can match).
 */
bool users_by_id_stmt(const char *tenant_id, const char *id, char uid[37], char tid[37],
                      const char **sql, struct db_param p[2]);
/* The current row of that statement written onto b as the User object. -1 when b overflowed. */
int users_row_write(struct buf *b, struct db_rows *r);

struct user_new {
    const char *id; /* UUIDv7 from the caller */
    const char *tenant_id;
    const char *email; /* stored lower-case */
    const char *first_name;
    const char *last_name;
    const char *password_hash; /* NULL for an invited user who has not set one */
    const char *status;        /* "active", "pending" */
};

/* Inserts the user; -1 with DB_ERR_UNIQUE on c when the email is taken in the tenant. */
int users_create(struct db_conn *c, const struct user_new *u);

/* A user an email + password may sign in as (across tenants: the caller has the bypass on). */
struct user_login {
    char id[37];
    char tenant_id[37];
    char password_hash[160];
    char status[24];
    char tenant_status[16];
    bool mfa_enabled;
};

/* Up to max candidates with this email (lower-cased here), optionally only in the tenant with
 * slug tenant_slug; oldest first. Returns how many, or -1 on a database error. */
int users_find_login(struct db_conn *c, const char *email, const char *tenant_slug,
                     struct user_login *out, int max);

int users_set_last_login(struct db_conn *c, const char *id, const char *now);

/* What the auth middleware needs per request: the session is live and the user and tenant may
 * act. One query. */
struct user_auth {
    char email[256];
    char status[24];
    char tenant_status[16];
    bool is_global_admin;
    bool session_live; /* not revoked and not past not_after */
};

/* 1 found, 0 no such session for this user, -1 database error. */
int users_auth_load(struct db_conn *c, const char *tenant_id, const char *user_id,
                    const char *session_id, const char *now, struct user_auth *out);

struct buf;
/* The spec's UserRepository.findAll: page of users (search over email, first and last name,
 * case-insensitive; optional status) ordered by createdAt, written to out as a JSON array of
 * users, and the total. 0, or -1 on a database error or when out overflowed. */
int users_list(struct db_conn *c, const char *tenant_id, const char *search, const char *status,
               long long limit, long long offset, long long *total, struct buf *out);

/* Updates the profile fields present in `fields` (camelCase API names: firstName, lastName,
 * displayName, avatar, phone, status; JSON null clears a field) of a live user. 1 updated,
 * 0 no such user in the tenant, -1 error. */
int users_update(struct db_conn *c, const char *tenant_id, const char *id, json_t *fields,
                 const char *now);
/* Soft delete: 1 deleted, 0 no such live user, -1 error. */
int users_soft_delete(struct db_conn *c, const char *tenant_id, const char *id, const char *now);
/* How many live users of the tenant hold the owner role. */
long long users_count_owners(struct db_conn *c, const char *tenant_id);
/* True when the user holds the tenant's owner role. */
bool users_is_owner(struct db_conn *c, const char *tenant_id, const char *id);

/* Lower-cases ASCII letters of an email into out (n bytes). */
void users_email_lower(const char *email, char *out, size_t n);

#endif
