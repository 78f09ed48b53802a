/*
 * sessions.h — the sessions and refresh-tokens repository: one session per login, refresh
 * tokens stored only as SHA-256 hashes, rotated on every use.
 */
#ifndef ZYGO_REPO_SESSIONS_H
#define ZYGO_REPO_SESSIONS_H

#include <jansson.h>

#include "db/db.h"
#include "lib/token.h"

struct session_new {
    const char *tenant_id;
    const char *user_id;
    const char *user_agent; /* may be NULL; cut to 512 bytes */
    const char *ip;
    const char *aal;      /* "aal1" or "aal2" */
    const char *amr_json; /* e.g. ["pwd"] */
    const char *not_after; /* ISO-8601 UTC: the session ends then, whatever happens */
};

int sessions_create(struct db_conn *c, const struct session_new *s, char id_out[37]);

/* A new refresh token for the session (child of parent_id, or NULL for the first); the token
 * itself goes to token_out, only its hash to the database. */
int refresh_issue(struct db_conn *c, const char *tenant_id, const char *session_id,
                  const char *parent_id, char token_out[TOKEN_LEN + 1]);

/* What a presented refresh token points at (looked up by hash; the caller has the bypass on,
 * since the tenant is not known yet). */
struct refresh_lookup {
    char id[37];
    char tenant_id[37];
    char session_id[37];
    char user_id[37];
    char used_at[32];   /* "" when never used */
    bool session_revoked;
    char not_after[32];
    char aal[8]; /* the session's level: a refresh keeps it */
};

/* 1 found, 0 not found, -1 database error. */
int refresh_find(struct db_conn *c, const char *token, struct refresh_lookup *out);
/* Marks the token used at `now` if nobody did yet: 1 when this call did, 0 when it was already
 * used (a concurrent refresh), -1 on error. */
int refresh_mark_used(struct db_conn *c, const char *id, const char *now);

/* Revokes sessions with a reason ("logout", "token_reuse", "password_change", …). */
int sessions_revoke(struct db_conn *c, const char *tenant_id, const char *session_id,
                    const char *now, const char *reason);
/* Every session of the user but `except_id` (NULL: all of them). */
int sessions_revoke_user(struct db_conn *c, const char *tenant_id, const char *user_id,
                         const char *except_id, const char *now, const char *reason);
int sessions_touch(struct db_conn *c, const char *session_id, const char *now);

/* The user's live sessions as API objects (id, userAgent, ip, aal, createdAt, refreshedAt,
 * notAfter, current). */
json_t *sessions_list(struct db_conn *c, const char *tenant_id, const char *user_id,
                      const char *current_id, const char *now, bool *failed);

#endif
