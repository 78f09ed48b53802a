/*
 * archive.h — the tenant archive: every row a tenant has, written as one gzip-compressed JSON
 * document in the data directory before the tenant's data is purged (the specification's
 * archiveData step), and the `archive` queue's processor ({tenantId} → the same file on its
 * own).
 *
 * Owns the file format and its safe writing. The file is
 * <data_dir>/archives/<tenantId>-<UTC timestamp>.json.gz (directory 0700, file 0600), written
 * to a hidden temporary name in the same directory, fsync'd, then renamed (and the directory
 * fsync'd): a file with the final name is always complete. The document:
 *
 *   {"format": "zygo.tenant-archive", "version": 1, "tenantId", "createdAt",
 *    "tables": {"tenants": [<the tenant's row>], "<table>": [<row>, ...], ...},
 *    "counts": {"<table>": n, ...}, "complete": true}
 *
 * Rows are as the database renders them (repos/tenant_data.h): SQLite gives booleans as 0/1
 * and JSON columns as text, PostgreSQL true/false and nested JSON. Credentials (columns ending
 * in _hash or _sealed) are never exported. Every table with a tenant_id is included, found in
 * the catalogue, and only the tenant's own rows.
 */
#ifndef ZYGO_JOBS_ARCHIVE_H
#define ZYGO_JOBS_ARCHIVE_H

#include <limits.h>

#include "jobs/queue.h"

struct archive_info {
    char path[PATH_MAX]; /* the final file */
    long long bytes;     /* compressed size */
    long long rows;      /* rows written, all tables */
    size_t tables;       /* tables written, "tenants" included */
};

/* Called after each table with the share done so far (0..1). */
typedef void (*archive_progress_fn)(void *arg, double done);

/*
 * Writes the archive of tenant_id from c (the row-level-security bypass must be on). progress
 * may be NULL. 0 with *out filled; -2 when there is no such tenant; -1 with a reason in err (a
 * database error, or the file could not be written). On failure nothing is left behind, and a
 * temporary file an earlier crashed run left for the tenant is removed.
 */
int archive_tenant(struct db_conn *c, const char *data_dir, const char *tenant_id,
                   archive_progress_fn progress, void *arg, struct archive_info *out, char *err,
                   size_t errlen);

/* The `archive` queue: data {"tenantId"}; result {path, bytes, rows, tables}. An unknown
 * tenant or bad data is unrecoverable; database and file errors are retried. */
enum job_result archive_process(struct job *j);

#endif
