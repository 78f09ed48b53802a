-- 0004_jobs — the durable job queue (src/jobs/queue.h): one row per job, and the rate
-- limiter's window per queue. Same tables as sqlite/0004_jobs.sql.
--
-- Times in these tables are bigint milliseconds since the Unix epoch (UTC), not timestamptz:
-- every claim, heartbeat and sweep compares them with the runner's clock (which tests
-- control) and adds lease and backoff durations to them; integer milliseconds compare and
-- add the same way on SQLite and PostgreSQL. The API renders them in the usual ISO-8601 form
-- with milliseconds.
--
-- Workers claim with FOR UPDATE SKIP LOCKED, so any number of processes share a queue.
-- Row-level security as on every tenant-scoped table; system jobs (tenant_id NULL) are
-- visible only with the bypass, which workers and admin routes set.
CREATE TABLE jobs (
    id text NOT NULL PRIMARY KEY,
    seq bigint GENERATED ALWAYS AS IDENTITY, -- order of arrival (ties of the claim order)
    queue text NOT NULL,
    name text NOT NULL,
    tenant_id uuid,
    data jsonb NOT NULL DEFAULT '{}',
    state text NOT NULL DEFAULT 'waiting',
    claimable boolean NOT NULL DEFAULT true, -- state = 'waiting', for the claim index
    priority integer NOT NULL DEFAULT 0,
    prio integer NOT NULL,
    run_at bigint NOT NULL,
    attempts_made integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL,
    backoff_ms bigint NOT NULL,
    timeout_ms bigint NOT NULL,
    stalled_count integer NOT NULL DEFAULT 0,
    progress integer NOT NULL DEFAULT 0,
    progress_message text,
    result jsonb,
    error text,
    cancel_requested boolean NOT NULL DEFAULT false,
    lease_owner text,
    lease_token text,
    lease_until bigint,
    created_at bigint NOT NULL,
    started_at bigint,
    finished_at bigint,
    updated_at bigint NOT NULL,
    -- The state machine, in one constraint: a known state, a lease (token) exactly while
    -- active (every change out of active clears it), claimable exactly while waiting. The
    -- values themselves (lengths, ranges) are checked by the one module that writes them,
    -- src/jobs/queue.c: PostgreSQL prepares every CHECK of a table again for each statement
    -- that writes to it, a cost the queue's hot statements would pay on every turn.
    CONSTRAINT jobs_state_check CHECK (
        state IN ('waiting', 'active', 'completed', 'failed', 'cancelled')
        AND (state = 'active') = (lease_token IS NOT NULL)
        AND (state = 'waiting') = claimable)
) WITH (fillfactor = 70);

-- One index besides the primary key: the claim's (waiting jobs in claim order). A job's
-- row is updated several times; PostgreSQL can keep an update on the row's own page without
-- touching any index (a HOT update) only when no indexed column and no column of an index
-- predicate changes. The claim has to take the row out of this index (its predicate is the
-- `claimable` flag, set exactly while waiting); everything after — heartbeats, progress, the
-- end of the run — changes no indexed column, and the free space fillfactor 70 leaves on each
-- page lets those updates stay there. Workers find their jobs by primary key; the periodic
-- stalled-lease recovery, retention sweep and admin lists read the table without an index.
CREATE INDEX jobs_claim_idx ON jobs (queue, prio, run_at, seq) WHERE claimable;

CREATE TABLE job_limits (
    queue text NOT NULL PRIMARY KEY,
    window_start bigint NOT NULL,
    count integer NOT NULL
);

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE jobs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_isolation ON jobs
    USING (app_rls_bypass() OR tenant_id = app_current_tenant())
    WITH CHECK (app_rls_bypass() OR tenant_id = app_current_tenant());

GRANT SELECT, INSERT, UPDATE, DELETE ON jobs, job_limits TO zygo_app;
