/* tenants.c — see tenants.h. */
#include "lib/common.h"

#include <ctype.h>

#include "lib/uuid.h"
#include "repos/repo.h"
#include "repos/tenants.h"

#define TENANT_SLUG_TRIES 50

static const struct repo_col tenant_cols[] = {
    {"id", REPO_TEXT},         {"slug", REPO_TEXT},      {"name", REPO_TEXT},
    {"plan", REPO_TEXT},       {"settings", REPO_JSON},  {"status", REPO_TEXT},
    {"createdAt", REPO_TIMESTAMP}, {"updatedAt", REPO_TIMESTAMP}, {NULL, REPO_TEXT},
};

void tenants_slugify(const char *name, char out[64])
{
    size_t n = 0;
    bool dash = false;
    for (const unsigned char *p = (const unsigned char *)name; *p && n < 48; p++) {
        if (isalnum(*p)) {
            if (dash && n > 0)
                out[n++] = '-';
            out[n++] = (char)tolower(*p);
            dash = false;
        } else {
            dash = true;
        }
    }
    out[n] = '\0';
    if (n == 0)
        snprintf(out, 64, "tenant");
}

int tenants_create(struct db_conn *c, const char *id, const char *name, char slug_out[64])
{
    char base[64];
    tenants_slugify(name, base);
    for (int i = 1; i <= TENANT_SLUG_TRIES; i++) {
        if (i == 1)
            snprintf(slug_out, 64, "%.48s", base);
        else
            snprintf(slug_out, 64, "%.48s-%d", base, i);
        /* a taken slug must not abort the caller's transaction (PostgreSQL would) */
        int rc = db_exec(c,
                         "INSERT INTO tenants (id, slug, name) SELECT $1, $2, $3"
                         " WHERE NOT EXISTS (SELECT 1 FROM tenants WHERE slug = $2)",
                         DB_ARGS(DB_TEXT(id), DB_TEXT(slug_out), DB_TEXT(name)));
        if (rc < 0)
            return -1;
        if (rc == 1)
            return 0;
    }
    return -1;
}

json_t *tenants_find_by_id(struct db_conn *c, const char *id, bool *failed)
{
    *failed = false;
    char tid[37];
    if (!uuid_normalize(id, tid) || repo_tenant(c, tid) < 0)
        return NULL;
    struct db_rows *r = db_query(c,
                                 "SELECT id, slug, name, plan, settings, status, created_at,"
                                 " updated_at FROM tenants WHERE id = $1 AND deleted_at IS NULL",
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

int tenants_update(struct db_conn *c, const char *id, const char *name, const char *slug,
                   const char *settings_json, const char *now)
{
    char tid[37];
    if (!uuid_normalize(id, tid) || repo_tenant(c, tid) < 0)
        return 0;
    /* one statement, so fields the caller leaves out cannot be overwritten by a concurrent
     * change read earlier */
    return db_exec(c,
                   "UPDATE tenants SET name = COALESCE($2, name), slug = COALESCE($3, slug),"
                   " settings = COALESCE($4, settings), updated_at = $5"
                   " WHERE id = $1 AND deleted_at IS NULL",
                   DB_ARGS(DB_TEXT(tid), DB_TEXT(name), DB_TEXT(slug), DB_TEXT(settings_json),
                           DB_TEXT(now)));
}
