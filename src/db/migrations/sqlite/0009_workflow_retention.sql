-- Retention of workflow executions (WORKFLOW_RETENTION_DAYS): the hourly prune deletes ended
-- executions whose end is older than the cut-off, oldest first; their steps and logs go with
-- them (ON DELETE CASCADE). This index makes that a range scan of ended executions only.
CREATE INDEX workflow_executions_finished_idx ON workflow_executions (finished_at)
    WHERE status IN ('succeeded', 'failed', 'cancelled');
