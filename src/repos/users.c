/* users.c — see users.h. */
#include "lib/common.h"

#include "lib/buf.h"
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

#define USER_BY_ID_SQL                                                                         \
    "SELECT " USER_COLUMNS " FROM users WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL"

bool users_by_id_stmt(const char *tenant_id, const char *id, char uid[37], char tid[37],
                      const char **sql, struct db_param p[2])
{
    if (!tenant_id || !id || !uuid_normalize(id, uid) || !uuid_normalize(tenant_id, tid))
        return false;
    *sql = USER_BY_ID_SQL;
    p[0] = DB_TEXT(uid);
    p[1] = DB_TEXT(tid);
    return true;
}

int users_row_write(struct buf *b, struct db_rows *r)
{
    return repo_row_write(b, r, user_cols);
}

/* The user's row: 1 with *out on it, 0 when there is none (*out NULL), -1 on a database error. */
static int find_row(struct db_conn *c, const char *tenant_id, const char *id,
                    struct db_rows **out)
{
    *out = NULL;
    char uid[37];
    /* an id that is not a UUID names no user (and PostgreSQL would refuse the cast); ids are
     * stored lower-case, which SQLite compares exactly */
    if (!uuid_valid(id) || repo_tenant(c, tenant_id) < 0)
        return 0;
    uuid_normalize(id, uid);
    struct db_rows *r = db_query(c, USER_BY_ID_SQL, DB_ARGS(DB_TEXT(uid), DB_TEXT(db_tenant(c))));
    if (!r)
        return -1;
    if (db_next(r)) {
        *out = r;
        return 1;
    }
    int rc = db_rows_error(r) ? -1 : 0;
    db_rows_free(r);
    return rc;
}

json_t *users_find_by_id(struct db_conn *c, const char *tenant_id, const char *id, bool *failed)
{
    struct db_rows *r;
    int found = find_row(c, tenant_id, id, &r);
    *failed = found < 0;
    if (found <= 0)
        return NULL;
    json_t *u = repo_row_json(r, user_cols);
    db_rows_free(r);
    return u;
}

int users_write_by_id(struct db_conn *c, const char *tenant_id, const char *id, struct buf *b)
{
    struct db_rows *r;
    int found = find_row(c, tenant_id, id, &r);
    if (found <= 0)
        return found;
    int rc = users_row_write(b, r);
    db_rows_free(r);
    return rc < 0 ? -2 : 1;
}

void users_email_lower(const char *email, char *out, size_t n)
{
    size_t i = 0;
    for (; email[i] && i + 1 < n; i++)
        out[i] = (email[i] >= 'A' && email[i] <= 'Z') ? (char)(email[i] + 32) : email[i];
    out[i] = '\0';
}

int users_create(struct db_conn *c, const struct user_new *u)
{
    char email[256];
    users_email_lower(u->email, email, sizeof(email));
    int rc = db_exec(c,
                     "INSERT INTO users (id, tenant_id, email, first_name, last_name,"
                     " password_hash, status) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                     DB_ARGS(DB_TEXT(u->id), DB_TEXT(u->tenant_id), DB_TEXT(email),
                             DB_TEXT(u->first_name), DB_TEXT(u->last_name),
                             DB_TEXT(u->password_hash), DB_TEXT(u->status)));
    return rc == 1 ? 0 : -1;
}

int users_find_login(struct db_conn *c, const char *email, const char *tenant_slug,
                     struct user_login *out, int max)
{
    char lower[256];
    users_email_lower(email, lower, sizeof(lower));
    struct db_rows *r = db_query(c,
                                 "SELECT u.id, u.tenant_id, u.password_hash, u.status, t.status,"
                                 " u.mfa_enabled FROM users u JOIN tenants t ON t.id = u.tenant_id"
                                 " WHERE u.email = $1 AND u.deleted_at IS NULL"
                                 " AND t.deleted_at IS NULL AND ($2 = '' OR t.slug = $2)"
                                 " ORDER BY u.created_at LIMIT 10",
                                 DB_ARGS(DB_TEXT(lower), DB_TEXT(tenant_slug ? tenant_slug : "")));
    if (!r)
        return -1;
    int n = 0;
    while (n < max && db_next(r)) {
        db_text_copy(r, 0, out[n].id, sizeof(out[n].id));
        db_text_copy(r, 1, out[n].tenant_id, sizeof(out[n].tenant_id));
        db_text_copy(r, 2, out[n].password_hash, sizeof(out[n].password_hash));
        db_text_copy(r, 3, out[n].status, sizeof(out[n].status));
        db_text_copy(r, 4, out[n].tenant_status, sizeof(out[n].tenant_status));
        out[n].mfa_enabled = db_bool(r, 5);
        n++;
    }
    if (db_rows_error(r))
        n = -1;
    db_rows_free(r);
    return n;
}

int users_set_last_login(struct db_conn *c, const char *id, const char *now)
{
    return db_exec(c, "UPDATE users SET last_login_at = $2 WHERE id = $1",
                   DB_ARGS(DB_TEXT(id), DB_TEXT(now)));
}

int users_auth_load(struct db_conn *c, const char *tenant_id, const char *user_id,
                    const char *session_id, const char *now, struct user_auth *out)
{
    memset(out, 0, sizeof(*out));
    if (!uuid_valid(user_id) || !uuid_valid(session_id) || repo_tenant(c, tenant_id) < 0)
        return 0;
    struct db_rows *r = db_query(c,
                                 "SELECT u.email, u.status, t.status, u.is_global_admin,"
                                 " s.revoked_at IS NULL AND s.not_after > $4"
                                 " FROM sessions s JOIN users u ON u.id = s.user_id"
                                 " JOIN tenants t ON t.id = s.tenant_id"
                                 " WHERE s.id = $1 AND s.user_id = $2 AND s.tenant_id = $3"
                                 " AND u.deleted_at IS NULL",
                                 DB_ARGS(DB_TEXT(session_id), DB_TEXT(user_id),
                                         DB_TEXT(db_tenant(c)), DB_TEXT(now)));
    if (!r)
        return -1;
    int found = 0;
    if (db_next(r)) {
        found = 1;
        db_text_copy(r, 0, out->email, sizeof(out->email));
        db_text_copy(r, 1, out->status, sizeof(out->status));
        db_text_copy(r, 2, out->tenant_status, sizeof(out->tenant_status));
        out->is_global_admin = db_bool(r, 3);
        out->session_live = db_bool(r, 4);
    } else if (db_rows_error(r)) {
        found = -1;
    }
    db_rows_free(r);
    return found;
}

int users_list(struct db_conn *c, const char *tenant_id, const char *search, const char *status,
               long long limit, long long offset, long long *total, struct buf *out)
{
    *total = 0;
    if (repo_tenant(c, tenant_id) < 0)
        return buf_puts(out, "[]");
    /* ILIKE on PostgreSQL; SQLite's LIKE already ignores ASCII case. '%' and '_' in the
     * search are literal. */
    bool pg = db_conn_dialect(c) == DB_POSTGRES;
    char pattern[300] = "";
    if (search && *search) {
        size_t w = 0;
        pattern[w++] = '%';
        for (const char *p = search; *p && w < sizeof(pattern) - 3; p++) {
            if (*p == '%' || *p == '_' || *p == '\\')
                pattern[w++] = '\\';
            pattern[w++] = *p;
        }
        pattern[w++] = '%';
        pattern[w] = '\0';
    }
    /* Filters appear only when given, so the common unfiltered page is a plain range of the
     * (tenant_id, created_at, id) index: the count reads the index alone and the page stops
     * after `limit` rows instead of sorting the tenant's users. $2/$3 are always bound. */
    char where[512];
    snprintf(where, sizeof(where),
             " FROM users WHERE tenant_id = $1 AND deleted_at IS NULL%s%s%s%s%s",
             status && *status ? " AND status = $2" : " AND CAST($2 AS text) = ''",
             *pattern ? " AND (email " : " AND CAST($3 AS text) = ''",
             *pattern ? (pg ? "ILIKE" : "LIKE") : "",
             *pattern ? " $3 ESCAPE '\\' OR first_name " : "",
             *pattern ? (pg ? "ILIKE $3 ESCAPE '\\' OR last_name ILIKE $3 ESCAPE '\\')"
                            : "LIKE $3 ESCAPE '\\' OR last_name LIKE $3 ESCAPE '\\')")
                      : "");
    char sql[1024];
    snprintf(sql, sizeof(sql), "SELECT count(*)%s", where);
    struct db_rows *r = db_query(c, sql,
                                 DB_ARGS(DB_TEXT(db_tenant(c)), DB_TEXT(status ? status : ""),
                                         DB_TEXT(pattern)));
    if (!r || !db_next(r)) {
        db_rows_free(r);
        return -1;
    }
    *total = db_int(r, 0);
    db_rows_free(r);
    snprintf(sql, sizeof(sql), "SELECT " USER_COLUMNS "%s ORDER BY created_at, id LIMIT $4 OFFSET $5",
             where);
    r = db_query(c, sql,
                 DB_ARGS(DB_TEXT(db_tenant(c)), DB_TEXT(status ? status : ""), DB_TEXT(pattern),
                         DB_INT(limit), DB_INT(offset)));
    if (!r)
        return -1;
    int rc = repo_rows_write(out, r, user_cols);
    db_rows_free(r);
    return rc;
}

/* API field → column, for the fields a profile update may touch. */
static const struct {
    const char *key;
    const char *column;
} user_fields[] = {
    {"firstName", "first_name"}, {"lastName", "last_name"}, {"displayName", "display_name"},
    {"avatar", "avatar"},        {"phone", "phone"},        {"status", "status"},
};

int users_update(struct db_conn *c, const char *tenant_id, const char *id, json_t *fields,
                 const char *now)
{
    char uid[37];
    if (!uuid_normalize(id, uid) || repo_tenant(c, tenant_id) < 0)
        return 0;
    /* SET list from the whitelist only: names never come from the request */
    char sql[512];
    size_t w = (size_t)snprintf(sql, sizeof(sql), "UPDATE users SET updated_at = $3");
    struct db_param p[3 + ARRAY_LEN(user_fields)];
    size_t n = 0;
    p[n++] = DB_TEXT(uid);
    p[n++] = DB_TEXT(db_tenant(c));
    p[n++] = DB_TEXT(now);
    for (size_t i = 0; i < ARRAY_LEN(user_fields); i++) {
        json_t *v = json_object_get(fields, user_fields[i].key);
        if (!v)
            continue;
        p[n] = json_is_string(v) ? DB_TEXT(json_string_value(v)) : DB_NULL;
        n++;
        w += (size_t)snprintf(sql + w, sizeof(sql) - w, ", %s = $%zu", user_fields[i].column, n);
    }
    snprintf(sql + w, sizeof(sql) - w,
             " WHERE id = $1 AND tenant_id = $2 AND deleted_at IS NULL");
    int rc = db_exec(c, sql, p, n);
    return rc < 0 ? -1 : rc;
}

int users_soft_delete(struct db_conn *c, const char *tenant_id, const char *id, const char *now)
{
    char uid[37];
    if (!uuid_normalize(id, uid) || repo_tenant(c, tenant_id) < 0)
        return 0;
    int rc = db_exec(c,
                     "UPDATE users SET deleted_at = $3, updated_at = $3 WHERE id = $1"
                     " AND tenant_id = $2 AND deleted_at IS NULL",
                     DB_ARGS(DB_TEXT(uid), DB_TEXT(db_tenant(c)), DB_TEXT(now)));
    return rc < 0 ? -1 : rc;
}

long long users_count_owners(struct db_conn *c, const char *tenant_id)
{
    struct db_rows *r = db_query(c,
                                 "SELECT count(*) FROM user_roles ur JOIN roles r ON r.id ="
                                 " ur.role_id JOIN users u ON u.id = ur.user_id"
                                 " WHERE ur.tenant_id = $1 AND r.name = 'owner'"
                                 " AND u.deleted_at IS NULL",
                                 DB_ARGS(DB_TEXT(tenant_id)));
    long long n = r && db_next(r) ? db_int(r, 0) : -1;
    db_rows_free(r);
    return n;
}

bool users_is_owner(struct db_conn *c, const char *tenant_id, const char *id)
{
    char uid[37];
    if (!uuid_normalize(id, uid))
        return false;
    struct db_rows *r = db_query(c,
                                 "SELECT count(*) FROM user_roles ur JOIN roles r ON r.id ="
                                 " ur.role_id WHERE ur.tenant_id = $1 AND ur.user_id = $2"
                                 " AND r.name = 'owner'",
                                 DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(uid)));
    bool owner = r && db_next(r) && db_int(r, 0) > 0;
    db_rows_free(r);
    return owner;
}
