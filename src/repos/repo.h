/*
 * repo.h — what every repository shares (the specification's BaseRepository): turning rows
 * into the API's camelCase JSON the same way on SQLite and PostgreSQL, and scoping a
 * connection to a tenant.
 *
 * Owns nothing; JSON values returned are new references for the caller.
 */
#ifndef ZYGO_REPO_H
#define ZYGO_REPO_H

#include <jansson.h>

#include "db/db.h"

enum repo_type {
    REPO_TEXT,      /* string or null */
    REPO_BOOL,      /* true/false (SQLite 0/1, PostgreSQL boolean) */
    REPO_INT,       /* integer */
    REPO_JSON,      /* parsed: jsonb and SQLite JSON text give the same value */
    REPO_TIMESTAMP, /* ISO-8601 UTC with milliseconds on both databases */
};

/* One selected column: its position in the SELECT list is its index in the table. */
struct repo_col {
    const char *key; /* camelCase name in the API; NULL ends the table */
    enum repo_type type;
};

/* The current row as a JSON object shaped by cols. */
json_t *repo_row_json(struct db_rows *r, const struct repo_col *cols);

struct buf;
/*
 * Every remaining row of r appended to b as a JSON array of objects shaped by cols: the same
 * values as repo_row_json, written as text without building jansson objects (lists are the
 * hot path: a page of 100 rows would otherwise be ~1,500 allocations). -1 when iterating
 * failed (db_rows_error) or b overflowed.
 */
int repo_rows_write(struct buf *b, struct db_rows *r, const struct repo_col *cols);
/* The current row appended to b as one such object (single reads by id). -1 when b overflowed. */
int repo_row_write(struct buf *b, struct db_rows *r, const struct repo_col *cols);

/*
 * Scopes the connection to a tenant before a tenant-scoped query: the query's own
 * `tenant_id = $n` filter is the first wall, the row-level security this sets (PostgreSQL) the
 * second. Returns 0, or -1 when the id is not a UUID (no row can match it).
 */
int repo_tenant(struct db_conn *c, const char *tenant_id);

#endif
