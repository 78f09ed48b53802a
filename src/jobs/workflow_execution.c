/* workflow_execution.c — see workflow_execution.h. */
#include "lib/common.h"

#include "jobs/workflow_execution.h"
#include "lib/log.h"
#include "services/workflow.h"

static bool should_stop(void *arg)
{
    return job_should_stop(arg);
}

enum job_result workflow_execution_process(struct job *j)
{
    const char *exec_id = json_string_value(json_object_get(j->data, "executionId"));
    if (!exec_id || !j->tenant_id) {
        job_set_error(j, "data needs executionId and a tenant");
        return JOB_UNRECOVERABLE;
    }
    struct workflow_env env = {.cfg = j->env->cfg,
                               .db = j->env->db,
                               .keyring = j->env->keyring,
                               .realtime = j->env->realtime};
    struct workflow_run_opts o = {.tenant_id = j->tenant_id,
                                  .execution_id = exec_id,
                                  .should_stop = should_stop,
                                  .stop_arg = j};
    char final[16], err[512];
    enum workflow_run_result r = workflow_run(&env, &o, final, err, sizeof(err));
    switch (r) {
    case WORKFLOW_RUN_FINISHED:
        job_set_result(j, json_pack("{s:s, s:s}", "executionId", exec_id, "status", final));
        if (strcmp(final, "failed") == 0) {
            job_set_error(j, "the execution failed");
            return JOB_UNRECOVERABLE;
        }
        /* cancelled while this run had it: the job ends cancelled too (a retry of a job whose
         * cancel was requested is cancelled by the queue) */
        if (strcmp(final, "cancelled") == 0 && job_should_stop(j)) {
            job_set_error(j, "the execution was cancelled");
            return JOB_RETRY;
        }
        return JOB_DONE;
    case WORKFLOW_RUN_GONE:
        job_set_error(j, "no execution %s in the tenant", exec_id);
        return JOB_UNRECOVERABLE;
    case WORKFLOW_RUN_STOPPED:
    case WORKFLOW_RUN_ERROR:
        break;
    }
    job_set_error(j, "%s", err[0] ? err : "stopped");
    /* the last attempt: fail the execution rather than leave it running for nobody (a
     * cancelled job ends here too, but its execution is already cancelled: no change) */
    if (r == WORKFLOW_RUN_ERROR && j->attempt >= j->max_attempts &&
        workflow_fail_execution(j->env->db, j->env->realtime, j->tenant_id, exec_id, err) < 0)
        log_msg(LOG_WARN, "workflow-execution: could not mark %s failed", exec_id);
    return JOB_RETRY;
}
