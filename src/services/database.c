/* database.c — see database.h. */
#include "lib/common.h"

#include "lib/config.h"
#include "services/database.h"

void database_url(const struct config *cfg, char *out, size_t n)
{
    if (cfg->database_url)
        snprintf(out, n, "%s", cfg->database_url);
    else
        snprintf(out, n, "sqlite:%s/zygo.db", cfg->data_dir);
}

void database_options(const struct config *cfg, struct db_options *opt)
{
    memset(opt, 0, sizeof(*opt));
    opt->pool_max = cfg->database_pool_max;
    opt->pool_timeout_ms = cfg->database_pool_timeout_ms ? cfg->database_pool_timeout_ms : -1;
    opt->pipeline = cfg->database_pipeline;
    opt->connect_timeout_s = cfg->database_connect_timeout_s;
    opt->idle_timeout_s = cfg->database_idle_timeout_s;
    opt->statement_timeout_ms =
        cfg->database_statement_timeout_ms ? cfg->database_statement_timeout_ms : -1;
}

int database_open(const struct config *cfg, struct db **out, struct migrate_report *rep,
                  char *err, size_t errlen)
{
    char url[4096];
    struct db_options opt;
    *out = NULL;
    memset(rep, 0, sizeof(*rep));
    database_url(cfg, url, sizeof(url));
    database_options(cfg, &opt);

    struct db *db = NULL;
    const char *mig_url = cfg->database_migration_url;
    if (mig_url && strcmp(mig_url, url) != 0) {
        /* a separate, short-lived handle for the owner role */
        struct db *owner = NULL;
        struct db_options one = opt;
        one.pool_max = 1;
        if (db_open_ex(&owner, mig_url, &one, err, errlen) < 0)
            return -1;
        int rc = migrate_up(owner, rep, err, errlen);
        db_close(owner);
        if (rc < 0)
            return -1;
        if (db_open_ex(&db, url, &opt, err, errlen) < 0)
            return -1;
    } else {
        if (db_open_ex(&db, url, &opt, err, errlen) < 0)
            return -1;
        if (migrate_up(db, rep, err, errlen) < 0) {
            db_close(db);
            return -1;
        }
    }
    *out = db;
    return 0;
}

int database_check_role(struct db *db, char *why, size_t n)
{
    if (db_dialect(db) != DB_POSTGRES)
        return 0;
    char err[256];
    struct db_conn *c = db_acquire(db, err, sizeof(err));
    if (!c) {
        snprintf(why, n, "cannot check the database role: %s", err);
        return -1;
    }
    struct db_rows *r = db_query(c,
                                 "SELECT r.rolsuper, r.rolbypassrls, "
                                 "       coalesce(pg_get_userbyid(t.relowner) = current_user, false)"
                                 "  FROM pg_roles r LEFT JOIN pg_class t"
                                 "    ON t.relname = 'users' AND t.relkind = 'r'"
                                 " WHERE r.rolname = current_user",
                                 DB_NOARGS);
    int rc = 0;
    if (!r || !db_next(r)) {
        snprintf(why, n, "cannot check the database role: %s", db_errmsg(c));
        rc = -1;
    } else if (db_bool(r, 0) || db_bool(r, 1)) {
        snprintf(why, n, "the application's database role is a superuser or has BYPASSRLS: "
                         "row-level security does not apply to it");
        rc = -1;
    } else if (db_bool(r, 2)) {
        snprintf(why, n, "the application's database role owns the tables: connect as a "
                         "member of zygo_app and migrate with DATABASE_MIGRATION_URL");
        rc = -1;
    }
    db_rows_free(r);
    db_release(c);
    return rc;
}
