/*
 * pg.h — the PostgreSQL driver behind db.h (libpq).
 *
 * Owns the pool of server connections of one database URL: opened lazily up to pool_max,
 * handed out one holder at a time, waited for up to pool_timeout_ms, closed when idle longer
 * than idle_timeout_s or when their server went away. Every connection has the same session:
 * TimeZone UTC, DateStyle ISO, client_encoding UTF8, application_name zygo (unless the URL
 * names one), statement_timeout, and a bounded cache of prepared statements. Also up to
 * `pipeline` of those connections kept in libpq's pipeline mode for db_query_async, each with
 * a reader thread that runs the statements' callbacks. Only db.c calls this.
 */
#ifndef ZYGO_DB_PG_H
#define ZYGO_DB_PG_H

#include "db/db.h"

/* Max prepared statements kept per connection (least recently used ones are deallocated). */
#define DB_PG_STMT_CACHE 64

/*
 * Opens a pool for url (postgres:// or postgresql://, handed to libpq as it is) with the
 * options db_open_ex resolved (no zeros left), and checks it by making one connection. 0, or
 * -1 with the reason in err (never the password).
 */
int db_pg_open(struct db **out, const char *url, const struct db_options *opt, char *err,
               size_t errlen);

#endif
