-- 0007_deletion — tenant deletion requests; see sqlite/0007_deletion.sql for what each column
-- is for. Same row-level security as every tenant-scoped table (0001_init.sql): the processor
-- works with the bypass, a tenant's own requests see only its row.
CREATE TABLE tenant_deletions (
    tenant_id uuid NOT NULL PRIMARY KEY REFERENCES tenants (id),
    job_id varchar(128) NOT NULL,
    requested_by uuid,
    reason varchar(500),
    requested_at timestamptz(3) NOT NULL DEFAULT now(),
    notified_at timestamptz(3),
    soft_deleted_at timestamptz(3),
    revoked_at timestamptz(3),
    archived_at timestamptz(3),
    archive_path text,
    archive_bytes bigint,
    archive_rows bigint,
    purged_at timestamptz(3),
    completed_at timestamptz(3)
);

ALTER TABLE tenant_deletions ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenant_deletions FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON tenant_deletions
    USING (app_rls_bypass() OR tenant_id = app_current_tenant())
    WITH CHECK (app_rls_bypass() OR tenant_id = app_current_tenant());

GRANT SELECT, INSERT, UPDATE, DELETE ON tenant_deletions TO zygo_app;
