-- 0006_workflows — workflows (named, versioned step definitions owned by a tenant), their
-- executions with per-step status and an ordered event log, and the schedule's fired slots.
-- Same tables as postgres/0006_workflows.sql (type mapping as in 0001_init.sql).
--
-- Versions: workflows holds the current definition; every version (1, 2, …) is kept in
-- workflow_versions, and an execution records the version it runs, so editing a workflow never
-- changes what a queued or running execution does.
--
-- Event log: every step transition and log line of an execution is one row of
-- workflow_execution_logs with a per-execution sequence number (seq, 1, 2, …, taken from
-- workflow_executions.log_seq in the writing transaction). The same row is what the real-time
-- bus carries, so a client that subscribes mid-run and then reads the log can merge both by seq.
--
-- Schedules: a slot fires at most once, whatever the number of processes ticking: the INSERT of
-- (workflow_id, slot_time) into workflow_schedule_slots decides the winner, in the same
-- transaction as the execution and its job. slot_time and next_fire_at are integer milliseconds
-- since the epoch (the scheduler compares them with its clock); API-visible times are ISO text.
--
-- Secrets: the webhook trigger's token is stored as its SHA-256 (lib/token.h); the key that
-- signs webhook_event deliveries is sealed with ENCRYPTION_KEY (lib/secretbox.h).
CREATE TABLE workflows (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL CHECK (length(name) <= 100),
    description TEXT CHECK (length(description) <= 1000),
    version INTEGER NOT NULL DEFAULT 1 CHECK (version >= 1),
    steps TEXT NOT NULL CHECK (json_valid(steps)),
    trigger TEXT NOT NULL CHECK (json_valid(trigger)),
    trigger_type TEXT NOT NULL CHECK (trigger_type IN ('manual', 'schedule', 'webhook')),
    enabled INTEGER NOT NULL DEFAULT 1 CHECK (enabled IN (0, 1)),
    next_fire_at INTEGER,
    webhook_token_hash TEXT CHECK (length(webhook_token_hash) = 64),
    signing_secret TEXT,
    created_by TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    deleted_at TEXT
) STRICT;
CREATE UNIQUE INDEX workflows_tenant_name_uniq ON workflows (tenant_id, name)
    WHERE deleted_at IS NULL;
CREATE INDEX workflows_tenant_created_idx ON workflows (tenant_id, created_at, id)
    WHERE deleted_at IS NULL;
-- The scheduler's scan: due schedules only.
CREATE INDEX workflows_next_fire_idx ON workflows (next_fire_at)
    WHERE trigger_type = 'schedule' AND enabled = 1 AND deleted_at IS NULL;

CREATE TABLE workflow_versions (
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    steps TEXT NOT NULL CHECK (json_valid(steps)),
    trigger TEXT NOT NULL CHECK (json_valid(trigger)),
    created_by TEXT,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (workflow_id, version)
) STRICT;
CREATE INDEX workflow_versions_tenant_idx ON workflow_versions (tenant_id);

CREATE TABLE workflow_executions (
    id TEXT NOT NULL PRIMARY KEY,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    trigger TEXT NOT NULL CHECK (trigger IN ('manual', 'schedule', 'webhook')),
    input TEXT CHECK (input IS NULL OR json_valid(input)),
    output TEXT CHECK (output IS NULL OR json_valid(output)),
    error TEXT,
    idempotency_key TEXT CHECK (length(idempotency_key) <= 255),
    job_id TEXT,
    triggered_by TEXT,
    log_seq INTEGER NOT NULL DEFAULT 0,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    started_at TEXT,
    finished_at TEXT,
    updated_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions (workflow_id, version)
) STRICT;
CREATE UNIQUE INDEX workflow_executions_idem_uniq ON workflow_executions
    (workflow_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX workflow_executions_workflow_idx ON workflow_executions
    (workflow_id, created_at, id);
CREATE INDEX workflow_executions_tenant_idx ON workflow_executions (tenant_id);
-- The scheduler's reconciliation: unfinished executions only.
CREATE INDEX workflow_executions_active_idx ON workflow_executions (job_id)
    WHERE status IN ('queued', 'running');

CREATE TABLE workflow_execution_steps (
    execution_id TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    idx INTEGER NOT NULL CHECK (idx >= 0),
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL CHECK (length(name) <= 100),
    kind TEXT NOT NULL CHECK (length(kind) <= 32),
    status TEXT NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts INTEGER NOT NULL DEFAULT 0,
    output TEXT CHECK (output IS NULL OR json_valid(output)),
    error TEXT,
    started_at TEXT,
    finished_at TEXT,
    PRIMARY KEY (execution_id, idx)
) STRICT;
CREATE INDEX workflow_execution_steps_tenant_idx ON workflow_execution_steps (tenant_id);

CREATE TABLE workflow_execution_logs (
    execution_id TEXT NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    seq INTEGER NOT NULL CHECK (seq >= 1),
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    type TEXT NOT NULL CHECK (type IN ('execution', 'step', 'log')),
    step_index INTEGER,
    status TEXT CHECK (length(status) <= 16),
    level TEXT CHECK (length(level) <= 8),
    message TEXT,
    attempt INTEGER,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (execution_id, seq)
) STRICT;
CREATE INDEX workflow_execution_logs_tenant_idx ON workflow_execution_logs (tenant_id);

CREATE TABLE workflow_schedule_slots (
    workflow_id TEXT NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    slot_time INTEGER NOT NULL,
    tenant_id TEXT NOT NULL REFERENCES tenants (id),
    execution_id TEXT NOT NULL,
    created_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (workflow_id, slot_time)
) STRICT;
CREATE INDEX workflow_schedule_slots_tenant_idx ON workflow_schedule_slots (tenant_id);
