-- 0004_jobs — the durable job queue (src/jobs/queue.h): one row per job, and the rate
-- limiter's window per queue.
--
-- Times in these tables are integers: milliseconds since the Unix epoch (UTC), not ISO text.
-- Every claim, heartbeat and sweep compares them with the runner's clock (which tests
-- control) and adds lease and backoff durations to them; integer milliseconds compare and
-- add the same way on SQLite and PostgreSQL and index well. The API renders them in the usual
-- ISO-8601 form with milliseconds.
--
-- States (queue.h): waiting (run_at in the future: shown as "delayed"), active (leased by a
-- worker until lease_until, renewed by its heartbeat), completed, failed (the dead-letter
-- state), cancelled. The id is a UUIDv7 or the caller's de-duplication id: unique, so a second
-- enqueue with the same id adds nothing while the first is kept. No foreign key on tenant_id:
-- a tenant-deletion job outlives the tenant it purges.
CREATE TABLE jobs (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    name TEXT NOT NULL,
    tenant_id TEXT,
    data TEXT NOT NULL DEFAULT '{}' CHECK (json_valid(data)),
    state TEXT NOT NULL DEFAULT 'waiting',
    -- state = 'waiting', for the claim index (see postgres/0004_jobs.sql)
    claimable INTEGER NOT NULL DEFAULT 1 CHECK (claimable IN (0, 1)),
    priority INTEGER NOT NULL DEFAULT 0,
    prio INTEGER NOT NULL,
    run_at INTEGER NOT NULL,
    attempts_made INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    backoff_ms INTEGER NOT NULL,
    timeout_ms INTEGER NOT NULL,
    stalled_count INTEGER NOT NULL DEFAULT 0,
    progress INTEGER NOT NULL DEFAULT 0,
    progress_message TEXT,
    result TEXT CHECK (result IS NULL OR json_valid(result)),
    error TEXT,
    cancel_requested INTEGER NOT NULL DEFAULT 0 CHECK (cancel_requested IN (0, 1)),
    lease_owner TEXT,
    lease_token TEXT,
    lease_until INTEGER,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    finished_at INTEGER,
    updated_at INTEGER NOT NULL,
    -- The state machine, in one constraint: a known state, a lease (token) exactly while
    -- active (every change out of active clears it), claimable exactly while waiting. The
    -- values themselves (lengths, ranges) are checked by the one module that writes them,
    -- src/jobs/queue.c: PostgreSQL prepares every CHECK of a table again for each statement
    -- that writes to it, a cost the queue's hot statements would pay on every turn.
    CONSTRAINT jobs_state_check CHECK (
        state IN ('waiting', 'active', 'completed', 'failed', 'cancelled')
        AND (state = 'active') = (lease_token IS NOT NULL)
        AND (state = 'waiting') = claimable)
) STRICT;

-- One index besides the keys: the claim's (waiting jobs in claim order); updates after the
-- claim change no indexed column. See postgres/0004_jobs.sql.
CREATE INDEX jobs_claim_idx ON jobs (queue, prio, run_at, seq) WHERE claimable;

-- The limiter (the specification's `limiter: {max, duration}`), shared by every process: at
-- most max claims of the queue per window; a window starts with the first claim after the
-- previous one ended.
CREATE TABLE job_limits (
    queue TEXT NOT NULL PRIMARY KEY,
    window_start INTEGER NOT NULL,
    count INTEGER NOT NULL
) STRICT;
