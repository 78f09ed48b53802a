/*
 * workflow_execution.h — the processor of the `workflow-execution` queue: runs one workflow
 * execution with the step engine (services/workflow.h) and maps its outcome onto the job.
 *
 * Job data: {"executionId", "workflowId"}; the job's tenant is the execution's. Outcomes:
 *   - the execution finished: succeeded → done; cancelled → done, or cancelled when it was
 *     cancelled during this run (the job's cancel was requested); failed (a step failed after
 *     its attempts) → failed without retry (the dead-letter state: an admin retry of the job
 *     resumes the execution from its failed step);
 *   - the run was stopped (the job was cancelled, timed out, or its worker is shutting down)
 *     or hit a database error → retry: the next run resumes from the first step not
 *     succeeded. On the job's last attempt the execution is marked failed instead of being
 *     left running;
 *   - no such execution (its tenant was purged) → failed without retry.
 */
#ifndef ZYGO_JOBS_WORKFLOW_EXECUTION_H
#define ZYGO_JOBS_WORKFLOW_EXECUTION_H

#include "jobs/queue.h"

/* Attached to the queue by jobs_processors_register() (jobs/processors.c). */
enum job_result workflow_execution_process(struct job *j);

#endif
