/*
 * sqlite.h — the SQLite driver behind db.h (libsqlite3).
 *
 * Owns the SQLite file's connections: one per thread, opened lazily and kept in a
 * thread-local slot, each with WAL journaling, a busy timeout, foreign keys on and
 * synchronous=NORMAL, and a bounded cache of prepared statements. Only db.c calls this.
 */
#ifndef ZYGO_DB_SQLITE_H
#define ZYGO_DB_SQLITE_H

#include "db/db.h"

/* Max prepared statements kept per connection (least recently used ones are finalized). */
#define DB_SQLITE_STMT_CACHE 64

/*
 * Opens the SQLite database at path (created with its parent directory if missing) and checks
 * it by opening this thread's connection. 0, or -1 with the reason in err.
 */
int db_sqlite_open(struct db **out, const char *path, const struct db_options *opt, char *err,
                   size_t errlen);

#endif
