-- 0006_workflows — workflows (named, versioned step definitions owned by a tenant), their
-- executions with per-step status and an ordered event log, and the schedule's fired slots.
-- Same tables as sqlite/0006_workflows.sql.
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
-- transaction as the execution and its job. slot_time and next_fire_at are bigint milliseconds
-- since the epoch (the scheduler compares them with its clock); API-visible times are
-- timestamptz(3) as elsewhere.
--
-- Secrets: the webhook trigger's token is stored as its SHA-256 (lib/token.h); the key that
-- signs webhook_event deliveries is sealed with ENCRYPTION_KEY (lib/secretbox.h).
CREATE TABLE workflows (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    name varchar(100) NOT NULL,
    description varchar(1000),
    version integer NOT NULL DEFAULT 1 CHECK (version >= 1),
    steps jsonb NOT NULL,
    trigger jsonb NOT NULL,
    trigger_type varchar(16) NOT NULL CHECK (trigger_type IN ('manual', 'schedule', 'webhook')),
    enabled boolean NOT NULL DEFAULT true,
    next_fire_at bigint,
    webhook_token_hash char(64),
    signing_secret text,
    created_by uuid,
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    updated_at timestamptz(3) NOT NULL DEFAULT now(),
    deleted_at timestamptz(3)
);
CREATE UNIQUE INDEX workflows_tenant_name_uniq ON workflows (tenant_id, name)
    WHERE deleted_at IS NULL;
CREATE INDEX workflows_tenant_created_idx ON workflows (tenant_id, created_at, id)
    WHERE deleted_at IS NULL;
-- The scheduler's scan: due schedules only.
CREATE INDEX workflows_next_fire_idx ON workflows (next_fire_at)
    WHERE trigger_type = 'schedule' AND enabled AND deleted_at IS NULL;

CREATE TABLE workflow_versions (
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version integer NOT NULL,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    steps jsonb NOT NULL,
    trigger jsonb NOT NULL,
    created_by uuid,
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, version)
);
CREATE INDEX workflow_versions_tenant_idx ON workflow_versions (tenant_id);

CREATE TABLE workflow_executions (
    id uuid NOT NULL PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    version integer NOT NULL,
    status varchar(16) NOT NULL DEFAULT 'queued'
        CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')),
    trigger varchar(16) NOT NULL CHECK (trigger IN ('manual', 'schedule', 'webhook')),
    input jsonb,
    output jsonb,
    error text,
    idempotency_key varchar(255),
    job_id text,
    triggered_by uuid,
    log_seq bigint NOT NULL DEFAULT 0,
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    started_at timestamptz(3),
    finished_at timestamptz(3),
    updated_at timestamptz(3) NOT NULL DEFAULT now(),
    FOREIGN KEY (workflow_id, version) REFERENCES workflow_versions (workflow_id, version)
);
CREATE UNIQUE INDEX workflow_executions_idem_uniq ON workflow_executions
    (workflow_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
CREATE INDEX workflow_executions_workflow_idx ON workflow_executions
    (workflow_id, created_at, id);
CREATE INDEX workflow_executions_tenant_idx ON workflow_executions (tenant_id);
-- The scheduler's reconciliation: unfinished executions only.
CREATE INDEX workflow_executions_active_idx ON workflow_executions (job_id)
    WHERE status IN ('queued', 'running');

CREATE TABLE workflow_execution_steps (
    execution_id uuid NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    idx integer NOT NULL CHECK (idx >= 0),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    name varchar(100) NOT NULL,
    kind varchar(32) NOT NULL,
    status varchar(16) NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    attempts integer NOT NULL DEFAULT 0,
    output jsonb,
    error text,
    started_at timestamptz(3),
    finished_at timestamptz(3),
    PRIMARY KEY (execution_id, idx)
);
CREATE INDEX workflow_execution_steps_tenant_idx ON workflow_execution_steps (tenant_id);

CREATE TABLE workflow_execution_logs (
    execution_id uuid NOT NULL REFERENCES workflow_executions (id) ON DELETE CASCADE,
    seq bigint NOT NULL CHECK (seq >= 1),
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    type varchar(16) NOT NULL CHECK (type IN ('execution', 'step', 'log')),
    step_index integer,
    status varchar(16),
    level varchar(8),
    message text,
    attempt integer,
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    PRIMARY KEY (execution_id, seq)
);
CREATE INDEX workflow_execution_logs_tenant_idx ON workflow_execution_logs (tenant_id);

CREATE TABLE workflow_schedule_slots (
    workflow_id uuid NOT NULL REFERENCES workflows (id) ON DELETE CASCADE,
    slot_time bigint NOT NULL,
    tenant_id uuid NOT NULL REFERENCES tenants (id),
    execution_id uuid NOT NULL,
    created_at timestamptz(3) NOT NULL DEFAULT now(),
    PRIMARY KEY (workflow_id, slot_time)
);
CREATE INDEX workflow_schedule_slots_tenant_idx ON workflow_schedule_slots (tenant_id);

-- ---- row-level security (the policy of 0001_init.sql) -------------------------------------

DO $$
DECLARE
    t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['workflows', 'workflow_versions', 'workflow_executions',
                             'workflow_execution_steps', 'workflow_execution_logs',
                             'workflow_schedule_slots']
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', t);
        EXECUTE format('CREATE POLICY tenant_isolation ON %I'
                       ' USING (app_rls_bypass() OR tenant_id = app_current_tenant())'
                       ' WITH CHECK (app_rls_bypass() OR tenant_id = app_current_tenant())', t);
    END LOOP;
END
$$;

GRANT SELECT, INSERT, UPDATE, DELETE ON workflows, workflow_versions, workflow_executions,
    workflow_execution_steps, workflow_execution_logs, workflow_schedule_slots TO zygo_app;
