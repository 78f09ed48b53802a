/* processors.c — see processors.h. */
#include "lib/common.h"

#include "db/db.h"
#include "jobs/archive.h"
#include "jobs/notifications.h"
#include "jobs/processors.h"
#include "jobs/tenant_deletion.h"
#include "jobs/user_deletion.h"
#include "jobs/workflow_execution.h"
#include "lib/config.h"
#include "lib/log.h"

void jobs_processors_register(void)
{
    static const struct {
        const char *queue;
        job_process_fn fn;
    } table[] = {
        {"tenant-deletion", tenant_deletion_process},
        {"user-deletion", user_deletion_process},
        {"notifications", notifications_process},
        {"archive", archive_process},
        {"workflow-execution", workflow_execution_process},
    };
    for (size_t i = 0; i < ARRAY_LEN(table); i++)
        if (jobs_set_processor(table[i].queue, table[i].fn) < 0)
            log_msg(LOG_ERROR, "jobs: no queue \"%s\" for its processor", table[i].queue);
}

struct db_conn *proc_acquire(struct job *j, bool bypass)
{
    char err[256];
    struct db_conn *c = db_acquire(j->env->db, err, sizeof(err));
    if (!c) {
        job_set_error(j, "database: %s", err);
        return NULL;
    }
    if (bypass && db_set_rls_bypass(c, true) < 0) {
        job_set_error(j, "database: %s", db_errmsg(c));
        db_release(c);
        return NULL;
    }
    return c;
}

enum job_result proc_db_error(struct job *j, struct db_conn *c, const char *step)
{
    /* the message before the rollback replaces it */
    job_set_error(j, "%s: %s", step, *db_errmsg(c) ? db_errmsg(c) : "database error");
    db_rollback(c);
    return JOB_RETRY;
}

bool proc_fail_point(struct job *j, const char *point)
{
    if (j->env->cfg->env != ENV_TEST || j->attempt != 1)
        return false;
    const char *at = json_string_value(json_object_get(j->data, "testFailAt"));
    if (!at || strcmp(at, point) != 0)
        return false;
    job_set_error(j, "test failure injected at %s", point);
    return true;
}
