/* user_deletion.c — see user_deletion.h. */
#include "lib/common.h"

#include "db/db.h"
#include "jobs/processors.h"
#include "jobs/user_deletion.h"
#include "lib/jsonx.h"
#include "lib/uuid.h"
#include "repos/audit.h"
#include "repos/repo.h"

int user_deletion_enqueue(struct db_conn *c, const char *tenant_id, const char *user_id,
                          const char *requested_by, char id_out[JOB_ID_MAX])
{
    char uid[UUID_STRLEN + 1], job_id[64];
    if (!uuid_normalize(user_id, uid)) {
        id_out[0] = '\0';
        return -1;
    }
    snprintf(job_id, sizeof(job_id), "user-deletion:%s", uid);
    json_t *d = json_pack("{s:s, s:s}", "tenantId", tenant_id, "userId", uid);
    if (requested_by)
        json_object_set_new(d, "requestedBy", json_string(requested_by));
    char *dj = jx_dump(d, NULL);
    json_decref(d);
    struct job_opts o = {.job_id = job_id};
    int rc = jobs_enqueue(c, "user-deletion", "user-deletion", tenant_id, dj, &o, id_out);
    free(dj);
    return rc;
}

/* What the user leaves in other tables, deleted in an order the foreign keys accept. $1 is the
 * tenant, $2 the user. */
static const char *const leftovers[] = {
    "DELETE FROM refresh_tokens WHERE tenant_id = $1 AND session_id IN"
    " (SELECT id FROM sessions WHERE tenant_id = $1 AND user_id = $2)",
    "DELETE FROM sessions WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM user_identities WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM mfa_recovery_codes WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM mfa_challenges WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM mfa_factors WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM one_time_tokens WHERE tenant_id = $1 AND user_id = $2",
    "DELETE FROM user_roles WHERE tenant_id = $1 AND user_id = $2",
};

/* 1 soft-deleted, 0 live, -2 no such row, -1 error. */
static int user_state(struct db_conn *c, const char *tid, const char *uid)
{
    struct db_rows *r = db_query(c,
                                 "SELECT deleted_at IS NOT NULL FROM users WHERE id = $1"
                                 " AND tenant_id = $2",
                                 DB_ARGS(DB_TEXT(uid), DB_TEXT(tid)));
    if (!r)
        return -1;
    int st = -2;
    if (db_next(r))
        st = db_bool(r, 0) ? 1 : 0;
    else if (db_rows_error(r) < 0)
        st = -1;
    db_rows_free(r);
    return st;
}

enum job_result user_deletion_process(struct job *j)
{
    char tid[UUID_STRLEN + 1], uid[UUID_STRLEN + 1];
    if (!uuid_normalize(json_string_value(json_object_get(j->data, "tenantId")), tid) ||
        !uuid_normalize(json_string_value(json_object_get(j->data, "userId")), uid)) {
        job_set_error(j, "data needs tenantId and userId (UUIDs)");
        return JOB_UNRECOVERABLE;
    }
    const char *requested_by = json_string_value(json_object_get(j->data, "requestedBy"));
    struct db_conn *c = proc_acquire(j, false);
    if (!c)
        return JOB_RETRY;
    enum job_result res = JOB_DONE;
    if (repo_tenant(c, tid) < 0 || db_begin(c) < 0) {
        res = proc_db_error(j, c, "begin");
        goto out;
    }
    int st = user_state(c, tid, uid);
    if (st == -1) {
        res = proc_db_error(j, c, "read the user");
        goto out;
    }
    if (st == 0) {
        db_rollback(c);
        job_set_error(j, "user %s is not deleted: a live user is never erased", uid);
        res = JOB_UNRECOVERABLE;
        goto out;
    }
    if (st == -2) { /* purged with its tenant already: nothing left to do */
        db_rollback(c);
        job_set_result(j, json_pack("{s:s, s:b}", "userId", uid, "erased", false));
        goto out;
    }
    for (size_t i = 0; i < ARRAY_LEN(leftovers); i++) {
        if (db_exec(c, leftovers[i], DB_ARGS(DB_TEXT(tid), DB_TEXT(uid))) < 0) {
            res = proc_db_error(j, c, "remove the user's rows");
            goto out;
        }
    }
    if (proc_fail_point(j, "leftovers")) {
        db_rollback(c);
        res = JOB_RETRY;
        goto out;
    }
    char now[48], email[96];
    zy_iso_now(now);
    snprintf(email, sizeof(email), "deleted-%s@deleted.invalid", uid);
    int n =
        db_exec(c,
                "UPDATE users SET email = $3, first_name = NULL, last_name = NULL,"
                " display_name = NULL, avatar = NULL, phone = NULL, password_hash = NULL,"
                " mfa_enabled = $4, email_verified = $4, phone_verified = $4,"
                " status = 'deleted', updated_at = $5"
                " WHERE id = $1 AND tenant_id = $2 AND status <> 'deleted'",
                DB_ARGS(DB_TEXT(uid), DB_TEXT(tid), DB_TEXT(email), DB_BOOL(false), DB_TEXT(now)));
    struct audit_entry e = {.tenant_id = tid,
                            .actor_id = requested_by,
                            .action = "user.erase",
                            .resource_type = "user",
                            .resource_id = uid};
    if (n < 0 || (n == 1 && audit_write(c, &e) < 0)) {
        res = proc_db_error(j, c, "anonymise the user");
        goto out;
    }
    if (db_commit(c) < 0) {
        res = proc_db_error(j, c, "commit");
        goto out;
    }
    job_set_result(j, json_pack("{s:s, s:b}", "userId", uid, "erased", true));
out:
    db_release(c);
    return res;
}
