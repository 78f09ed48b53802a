-- 0007_deletion — tenant deletion requests (src/jobs/tenant_deletion.c): one row per tenant
-- whose deletion was requested, written in the same transaction as the tenant-deletion job.
--
-- The row is the job's memory across attempts: each step of the processor stamps its column in
-- the transaction that does the step's work, so a re-run (a retry, a worker killed mid-way)
-- skips what is already done instead of doing it twice (no second round of emails, no second
-- archive). It also stays as the record of the deletion: who asked, why, when each step ran and
-- where the archive was written. It survives the purge of the tenant's data (the purge leaves
-- this table and the tenants row, kept as an anonymised tombstone, alone).
CREATE TABLE tenant_deletions (
    tenant_id TEXT NOT NULL PRIMARY KEY REFERENCES tenants (id),
    job_id TEXT NOT NULL CHECK (length(job_id) BETWEEN 1 AND 128),
    requested_by TEXT,
    reason TEXT CHECK (length(reason) <= 500),
    requested_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    notified_at TEXT,
    soft_deleted_at TEXT,
    revoked_at TEXT,
    archived_at TEXT,
    archive_path TEXT,
    archive_bytes INTEGER,
    archive_rows INTEGER,
    purged_at TEXT,
    completed_at TEXT
) STRICT;
