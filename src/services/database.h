/*
 * database.h — opens the configured database and brings its schema up to date: the start-up
 * sequence shared by `zygo serve`, `zygo migrate` and the tests.
 *
 * Migrations run over DATABASE_MIGRATION_URL when it is set (on PostgreSQL, the role that
 * owns the tables), else over DATABASE_URL; the returned handle always uses DATABASE_URL (the
 * application's role, subject to row-level security).
 */
#ifndef ZYGO_SERVICES_DATABASE_H
#define ZYGO_SERVICES_DATABASE_H

#include "db/db.h"
#include "db/migrate.h"

struct config;

/* The database URL to use for the application ("sqlite:<data dir>/zygo.db" by default). */
void database_url(const struct config *cfg, char *out, size_t n);

/* db_options from the configuration. */
void database_options(const struct config *cfg, struct db_options *opt);

/* Opens the application's database after applying pending migrations (reported in rep, which
 * the caller frees). 0, or -1 with the reason in err and *out NULL. */
int database_open(const struct config *cfg, struct db **out, struct migrate_report *rep,
                  char *err, size_t errlen);

/*
 * PostgreSQL only: row-level security protects nothing when the application's role is a
 * superuser, has BYPASSRLS, or owns the tables without FORCE. Returns 0 when the role is fine
 * (or on SQLite), else -1 with the problem in why.
 */
int database_check_role(struct db *db, char *why, size_t n);

#endif
