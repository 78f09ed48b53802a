/* sessions.c — see sessions.h. */
#include "lib/common.h"

#include "lib/uuid.h"
#include "repos/repo.h"
#include "repos/sessions.h"

int sessions_create(struct db_conn *c, const struct session_new *s, char id_out[37])
{
    uuid_v7(id_out);
    char ua[513] = "";
    if (s->user_agent)
        snprintf(ua, sizeof(ua), "%s", s->user_agent);
    int rc = db_exec(c,
                     "INSERT INTO sessions (id, tenant_id, user_id, user_agent, ip, aal, amr,"
                     " not_after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                     DB_ARGS(DB_TEXT(id_out), DB_TEXT(s->tenant_id), DB_TEXT(s->user_id),
                             DB_TEXT(s->user_agent ? ua : NULL), DB_TEXT(s->ip), DB_TEXT(s->aal),
                             DB_TEXT(s->amr_json), DB_TEXT(s->not_after)));
    return rc == 1 ? 0 : -1;
}

int refresh_issue(struct db_conn *c, const char *tenant_id, const char *session_id,
                  const char *parent_id, char token_out[TOKEN_LEN + 1])
{
    char id[37], hash[TOKEN_HASH_LEN + 1];
    uuid_v7(id);
    if (token_new(token_out, TOKEN_LEN + 1) < 0)
        return -1;
    token_hash(token_out, hash);
    int rc = db_exec(c,
                     "INSERT INTO refresh_tokens (id, tenant_id, session_id, token_hash,"
                     " parent_id) VALUES ($1, $2, $3, $4, $5)",
                     DB_ARGS(DB_TEXT(id), DB_TEXT(tenant_id), DB_TEXT(session_id),
                             DB_TEXT(hash), DB_TEXT(parent_id)));
    return rc == 1 ? 0 : -1;
}

int refresh_find(struct db_conn *c, const char *token, struct refresh_lookup *out)
{
    memset(out, 0, sizeof(*out));
    char hash[TOKEN_HASH_LEN + 1];
    token_hash(token, hash);
    struct db_rows *r = db_query(c,
                                 "SELECT rt.id, rt.tenant_id, rt.session_id, s.user_id,"
                                 " rt.used_at, s.revoked_at, s.not_after, s.aal"
                                 " FROM refresh_tokens rt JOIN sessions s ON s.id = rt.session_id"
                                 " WHERE rt.token_hash = $1",
                                 DB_ARGS(DB_TEXT(hash)));
    if (!r)
        return -1;
    int found = 0;
    if (db_next(r)) {
        found = 1;
        db_text_copy(r, 0, out->id, sizeof(out->id));
        db_text_copy(r, 1, out->tenant_id, sizeof(out->tenant_id));
        db_text_copy(r, 2, out->session_id, sizeof(out->session_id));
        db_text_copy(r, 3, out->user_id, sizeof(out->user_id));
        db_text_copy(r, 4, out->used_at, sizeof(out->used_at));
        out->session_revoked = !db_is_null(r, 5);
        db_text_copy(r, 6, out->not_after, sizeof(out->not_after));
        db_text_copy(r, 7, out->aal, sizeof(out->aal));
    } else if (db_rows_error(r)) {
        found = -1;
    }
    db_rows_free(r);
    return found;
}

int refresh_mark_used(struct db_conn *c, const char *id, const char *now)
{
    return db_exec(c, "UPDATE refresh_tokens SET used_at = $2 WHERE id = $1 AND used_at IS NULL",
                   DB_ARGS(DB_TEXT(id), DB_TEXT(now)));
}

int sessions_revoke(struct db_conn *c, const char *tenant_id, const char *session_id,
                    const char *now, const char *reason)
{
    return db_exec(c,
                   "UPDATE sessions SET revoked_at = $3, revoked_reason = $4"
                   " WHERE id = $1 AND tenant_id = $2 AND revoked_at IS NULL",
                   DB_ARGS(DB_TEXT(session_id), DB_TEXT(tenant_id), DB_TEXT(now),
                           DB_TEXT(reason)));
}

int sessions_revoke_user(struct db_conn *c, const char *tenant_id, const char *user_id,
                         const char *except_id, const char *now, const char *reason)
{
    /* "id <> NULL" is never true: no exception is the nil UUID, which no session has */
    const char *keep = except_id ? except_id : "00000000-0000-0000-0000-000000000000";
    return db_exec(c,
                   "UPDATE sessions SET revoked_at = $4, revoked_reason = $5"
                   " WHERE user_id = $1 AND tenant_id = $2 AND revoked_at IS NULL AND id <> $3",
                   DB_ARGS(DB_TEXT(user_id), DB_TEXT(tenant_id), DB_TEXT(keep), DB_TEXT(now),
                           DB_TEXT(reason)));
}

int sessions_touch(struct db_conn *c, const char *session_id, const char *now)
{
    return db_exec(c, "UPDATE sessions SET refreshed_at = $2 WHERE id = $1",
                   DB_ARGS(DB_TEXT(session_id), DB_TEXT(now)));
}

static const struct repo_col session_cols[] = {
    {"id", REPO_TEXT},          {"userAgent", REPO_TEXT},       {"ip", REPO_TEXT},
    {"aal", REPO_TEXT},         {"createdAt", REPO_TIMESTAMP},  {"refreshedAt", REPO_TIMESTAMP},
    {"notAfter", REPO_TIMESTAMP}, {NULL, REPO_TEXT},
};

json_t *sessions_list(struct db_conn *c, const char *tenant_id, const char *user_id,
                      const char *current_id, const char *now, bool *failed)
{
    *failed = false;
    struct db_rows *r = db_query(c,
                                 "SELECT id, user_agent, ip, aal, created_at, refreshed_at,"
                                 " not_after FROM sessions WHERE user_id = $1 AND tenant_id = $2"
                                 " AND revoked_at IS NULL AND not_after > $3 ORDER BY created_at",
                                 DB_ARGS(DB_TEXT(user_id), DB_TEXT(tenant_id), DB_TEXT(now)));
    if (!r) {
        *failed = true;
        return NULL;
    }
    json_t *a = json_array();
    while (db_next(r)) {
        json_t *o = repo_row_json(r, session_cols);
        json_object_set_new(o, "current",
                            json_boolean(current_id && strcmp(db_text(r, 0), current_id) == 0));
        json_array_append_new(a, o);
    }
    if (db_rows_error(r)) {
        *failed = true;
        json_decref(a);
        a = NULL;
    }
    db_rows_free(r);
    return a;
}
