/*
 * migrate.h — schema migrations: ordered SQL files per dialect, applied once, recorded.
 *
 * Owns the schema_migrations table (version INTEGER PRIMARY KEY, name, checksum = SHA-256 hex
 * of the file, applied_at). Files are src/db/migrations/<dialect>/NNNN_name.sql, compiled into
 * the binary (lib/embed.h). Each pending migration runs in its own transaction that also holds
 * the database's write lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: an advisory lock), and the
 * applied set is re-read inside it, so processes starting together apply each file once.
 *
 * Refused, with nothing applied: an applied migration whose file changed since (checksum
 * differs), and an applied version this binary does not have (the database is newer).
 * Migration files must not contain BEGIN/COMMIT.
 *
 * PostgreSQL: the lock is pg_advisory_xact_lock (held until that transaction ends), the
 * statement timeout is lifted inside it, and migrations run with the row-level-security
 * bypass on (db_set_rls_bypass). They must run as the role that owns the tables (see
 * migrations/postgres/0001_init.sql for the role model); the application's role, which may
 * not create tables, can still run migrate_up/migrate_status to check that nothing is
 * pending (0001 grants it SELECT on schema_migrations).
 */
#ifndef ZYGO_MIGRATE_H
#define ZYGO_MIGRATE_H

#include "db/db.h"
#include "lib/embed.h"

/* What a run applied, in order: names like "0001_init". Free with migrate_report_free(). */
struct migrate_report {
    size_t napplied;
    char **applied;
};

void migrate_report_free(struct migrate_report *rep);

/*
 * Applies the pending migrations among files (all of them, whatever their directory; names
 * must be NNNN_name.sql), or, with files NULL, the embedded ones of the database's dialect.
 * 0 when the database is up to date (rep says what this run applied, possibly nothing); -1
 * with the reason in err (rep still lists what was applied before the failure).
 */
int migrate_run(struct db *db, const struct embedded_file *files, size_t nfiles,
                struct migrate_report *rep, char *err, size_t errlen);

/* migrate_run with the embedded migrations of the database's dialect. */
int migrate_up(struct db *db, struct migrate_report *rep, char *err, size_t errlen);

enum migrate_state {
    MIGRATE_APPLIED,
    MIGRATE_PENDING,
    MIGRATE_CHANGED, /* applied, but the file's checksum differs now */
    MIGRATE_UNKNOWN, /* applied, but not in this binary */
};

struct migrate_entry {
    long version;
    char *name; /* "0001_init" */
    enum migrate_state state;
    char *applied_at; /* NULL when pending */
};

struct migrate_status {
    struct migrate_entry *v; /* by version */
    size_t n;
};

/* Every known or recorded migration and its state; reads only. files as in migrate_run. */
int migrate_status(struct db *db, const struct embedded_file *files, size_t nfiles,
                   struct migrate_status *st, char *err, size_t errlen);
void migrate_status_free(struct migrate_status *st);
/* "applied", "pending", "changed", "unknown". */
const char *migrate_state_name(enum migrate_state s);

#endif
