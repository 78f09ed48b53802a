/*
 * tenant_data.h — all of one tenant's rows, whatever tables hold them: the tenant archive
 * reads them (jobs/archive.c) and the tenant deletion purges them (jobs/tenant_deletion.c).
 *
 * Owns the discovery of the tenant-scoped tables from the database's own catalogue (every base
 * table with a tenant_id column), so a table added by a later migration is archived and purged
 * without a list to keep in step. Two tables are left out on purpose: `jobs` (the queue: the
 * running deletion job lives there; tenant_data_purge_jobs handles it) and `tenant_deletions`
 * (the record of the deletion itself, kept). The tenants row is read with the others and kept
 * (the caller turns it into a tombstone).
 *
 * Every function needs the connection's row-level-security bypass on (system work).
 */
#ifndef ZYGO_REPO_TENANT_DATA_H
#define ZYGO_REPO_TENANT_DATA_H

#include "db/db.h"

/* The tenant-scoped tables in an order safe for deleting: a table comes before every table it
 * references (children first). */
struct tenant_tables {
    size_t n;
    char **names;
};

/* 0, or -1 with the error on c (or a reference cycle, logged). Free with tenant_tables_free. */
int tenant_data_tables(struct db_conn *c, struct tenant_tables *out);
void tenant_tables_free(struct tenant_tables *t);

/* Columns never exported: credentials and what seals them (suffixes _hash and _sealed). */
bool tenant_data_column_redacted(const char *column);

/*
 * Calls fn with each of the tenant's rows of table ("tenants": its own row) as one JSON object
 * text, the database's rendering of the row (redacted columns left out). fn returns 0 to go on,
 * -1 to stop (then this returns -1 too). Rows counted into *nrows. 0, or -1.
 */
typedef int (*tenant_row_fn)(void *arg, const char *json, size_t len);
int tenant_data_rows(struct db_conn *c, const char *table, const char *tenant_id, tenant_row_fn fn,
                     void *arg, long long *nrows);

/* Deletes the tenant's rows of one table (not "tenants"). Rows deleted, or -1. */
int tenant_data_purge(struct db_conn *c, const char *table, const char *tenant_id);

/* Deletes the tenant's jobs that are not running, except keep_job_id (the deletion's own).
 * Rows deleted, or -1. */
int tenant_data_purge_jobs(struct db_conn *c, const char *tenant_id, const char *keep_job_id);

#endif
