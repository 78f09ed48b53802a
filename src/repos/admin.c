/* admin.c — see admin.h. */
#include "lib/common.h"

#include "lib/uuid.h"
#include "repos/admin.h"
#include "repos/repo.h"
#include "repos/users.h"

/* ---- shared ------------------------------------------------------------------------------- */

/* "%search%" for LIKE ... ESCAPE '\', with '%', '_' and '\' in the search taken literally;
 * NULL when there is nothing to search for. */
static const char *like_pattern(const char *search, char *out, size_t n)
{
    if (!search || !*search)
        return NULL;
    size_t w = 0;
    out[w++] = '%';
    for (const char *p = search; *p && w < n - 3; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            out[w++] = '\\';
        out[w++] = *p;
    }
    out[w++] = '%';
    out[w] = '\0';
    return out;
}

/* ILIKE on PostgreSQL; SQLite's LIKE already ignores ASCII case. */
static const char *like_op(const struct db_conn *c)
{
    return db_conn_dialect(c) == DB_POSTGRES ? "ILIKE" : "LIKE";
}

/* Runs the count and the page query of a list; the page's rows go through cols. */
static json_t *run_list(struct db_conn *c, const char *count_sql, const char *page_sql,
                        const struct db_param *p, size_t n, const struct repo_col *cols,
                        long long *total, bool *failed)
{
    struct db_rows *r = db_query(c, count_sql, p, n - 2); /* the last two: LIMIT, OFFSET */
    if (!r || !db_next(r)) {
        db_rows_free(r);
        *failed = true;
        return NULL;
    }
    *total = db_int(r, 0);
    db_rows_free(r);
    r = db_query(c, page_sql, p, n);
    if (!r) {
        *failed = true;
        return NULL;
    }
    json_t *a = json_array();
    while (db_next(r))
        json_array_append_new(a, repo_row_json(r, cols));
    if (db_rows_error(r)) {
        *failed = true;
        json_decref(a);
        a = NULL;
    }
    db_rows_free(r);
    return a;
}

/* ---- tenants ------------------------------------------------------------------------------ */

#define TENANT_COLUMNS                                                                             \
    "t.id, t.slug, t.name, t.plan, t.settings, t.status, t.created_at, t.updated_at,"              \
    " (SELECT count(*) FROM users u WHERE u.tenant_id = t.id AND u.deleted_at IS NULL)"

static const struct repo_col tenant_cols[] = {
    {"id", REPO_TEXT},
    {"slug", REPO_TEXT},
    {"name", REPO_TEXT},
    {"plan", REPO_TEXT},
    {"settings", REPO_JSON},
    {"status", REPO_TEXT},
    {"createdAt", REPO_TIMESTAMP},
    {"updatedAt", REPO_TIMESTAMP},
    {"userCount", REPO_INT},
    {NULL, REPO_TEXT},
};

/* Optional filters are bound as NULL and written `col = $k OR $k IS NULL`, column first, so
 * PostgreSQL types the parameter from the column (see repos/audit.c). */
json_t *admin_tenants_list(struct db_conn *c, const char *search, const char *status,
                           long long limit, long long offset, long long *total, bool *failed)
{
    *failed = false;
    *total = 0;
    char pat_buf[300];
    const char *pat = like_pattern(search, pat_buf, sizeof(pat_buf));
    char where[512];
    snprintf(where, sizeof(where),
             " FROM tenants t WHERE t.deleted_at IS NULL"
             " AND (t.status = $1 OR $1 IS NULL)"
             " AND (t.name %1$s $2 ESCAPE '\\' OR t.slug %1$s $2 ESCAPE '\\' OR $2 IS NULL)",
             like_op(c));
    char count_sql[640], page_sql[1024];
    snprintf(count_sql, sizeof(count_sql), "SELECT count(*)%s", where);
    snprintf(page_sql, sizeof(page_sql),
             "SELECT " TENANT_COLUMNS "%s ORDER BY t.created_at DESC, t.id DESC"
             " LIMIT $3 OFFSET $4",
             where);
    return run_list(c, count_sql, page_sql,
                    DB_ARGS(DB_TEXT(status), DB_TEXT(pat), DB_INT(limit), DB_INT(offset)),
                    tenant_cols, total, failed);
}

json_t *admin_tenant_find(struct db_conn *c, const char *id, bool *failed)
{
    *failed = false;
    char tid[37];
    if (!uuid_normalize(id ? id : "", tid))
        return NULL;
    struct db_rows *r = db_query(
        c, "SELECT " TENANT_COLUMNS " FROM tenants t WHERE t.id = $1 AND t.deleted_at IS NULL",
        DB_ARGS(DB_TEXT(tid)));
    if (!r) {
        *failed = true;
        return NULL;
    }
    json_t *t = NULL;
    if (db_next(r))
        t = repo_row_json(r, tenant_cols);
    else if (db_rows_error(r))
        *failed = true;
    db_rows_free(r);
    return t;
}

int admin_tenant_set_status(struct db_conn *c, const char *id, const char *status, const char *now)
{
    char tid[37];
    if (!uuid_normalize(id ? id : "", tid))
        return 0;
    return db_exec(c,
                   "UPDATE tenants SET status = $2, updated_at = $3"
                   " WHERE id = $1 AND deleted_at IS NULL AND status <> $2",
                   DB_ARGS(DB_TEXT(tid), DB_TEXT(status), DB_TEXT(now)));
}

/* ---- users -------------------------------------------------------------------------------- */

#define ADMIN_USER_COLUMNS                                                                         \
    "u.id, u.tenant_id, u.email, u.first_name, u.last_name, u.display_name, u.avatar,"             \
    " u.phone, u.status, u.email_verified, u.phone_verified, u.mfa_enabled, u.last_login_at,"      \
    " u.created_at, u.updated_at, u.is_global_admin, t.slug, t.name"

static const struct repo_col admin_user_cols[] = {
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
    {"isGlobalAdmin", REPO_BOOL},
    {"tenantSlug", REPO_TEXT},
    {"tenantName", REPO_TEXT},
    {NULL, REPO_TEXT},
};

json_t *admin_users_list(struct db_conn *c, const char *search, const char *tenant_id,
                         const char *status, long long limit, long long offset, long long *total,
                         bool *failed)
{
    *failed = false;
    *total = 0;
    char tid[37];
    if (tenant_id && !uuid_normalize(tenant_id, tid))
        return json_array(); /* names no tenant */
    char pat_buf[300];
    const char *pat = like_pattern(search, pat_buf, sizeof(pat_buf));
    char where[768];
    snprintf(where, sizeof(where),
             " FROM users u JOIN tenants t ON t.id = u.tenant_id"
             " WHERE u.deleted_at IS NULL AND t.deleted_at IS NULL"
             " AND (u.tenant_id = $1 OR $1 IS NULL)"
             " AND (u.status = $2 OR $2 IS NULL)"
             " AND (u.email %1$s $3 ESCAPE '\\' OR u.first_name %1$s $3 ESCAPE '\\'"
             " OR u.last_name %1$s $3 ESCAPE '\\'"
             " OR (coalesce(u.first_name, '') || ' ' || coalesce(u.last_name, '')) %1$s $3"
             " ESCAPE '\\' OR $3 IS NULL)",
             like_op(c));
    char count_sql[900], page_sql[1400];
    snprintf(count_sql, sizeof(count_sql), "SELECT count(*)%s", where);
    snprintf(page_sql, sizeof(page_sql),
             "SELECT " ADMIN_USER_COLUMNS "%s ORDER BY u.created_at DESC, u.id DESC"
             " LIMIT $4 OFFSET $5",
             where);
    return run_list(c, count_sql, page_sql,
                    DB_ARGS(DB_TEXT(tenant_id ? tid : NULL), DB_TEXT(status), DB_TEXT(pat),
                            DB_INT(limit), DB_INT(offset)),
                    admin_user_cols, total, failed);
}

int admin_users_by_email(struct db_conn *c, const char *email, const char *tenant_slug,
                         struct admin_user_ref *out, int max)
{
    char lower[256];
    users_email_lower(email, lower, sizeof(lower));
    struct db_rows *r = db_query(c,
                                 "SELECT u.id, u.tenant_id, t.slug, u.status, u.is_global_admin"
                                 " FROM users u JOIN tenants t ON t.id = u.tenant_id"
                                 " WHERE u.email = $1 AND u.deleted_at IS NULL"
                                 " AND t.deleted_at IS NULL AND (t.slug = $2 OR $2 IS NULL)"
                                 " ORDER BY u.created_at, u.id LIMIT 100",
                                 DB_ARGS(DB_TEXT(lower), DB_TEXT(tenant_slug)));
    if (!r)
        return -1;
    int n = 0;
    while (db_next(r)) {
        if (n < max) {
            db_text_copy(r, 0, out[n].id, sizeof(out[n].id));
            db_text_copy(r, 1, out[n].tenant_id, sizeof(out[n].tenant_id));
            db_text_copy(r, 2, out[n].tenant_slug, sizeof(out[n].tenant_slug));
            db_text_copy(r, 3, out[n].status, sizeof(out[n].status));
            out[n].is_global_admin = db_bool(r, 4);
        }
        n++;
    }
    if (db_rows_error(r))
        n = -1;
    db_rows_free(r);
    return n;
}

int admin_user_set_global(struct db_conn *c, const char *id, bool on, const char *now)
{
    return db_exec(c,
                   "UPDATE users SET is_global_admin = $2, updated_at = $3"
                   " WHERE id = $1 AND deleted_at IS NULL",
                   DB_ARGS(DB_TEXT(id), DB_BOOL(on), DB_TEXT(now)));
}
