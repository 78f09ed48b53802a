/* tenant_deletion.c — see tenant_deletion.h. */
#include "lib/common.h"

#include <unistd.h>

#include "db/db.h"
#include "jobs/archive.h"
#include "jobs/notifications.h"
#include "jobs/processors.h"
#include "jobs/tenant_deletion.h"
#include "lib/arena.h"
#include "lib/config.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "lib/uuid.h"
#include "repos/audit.h"
#include "repos/tenant_data.h"

/* Progress marks (the specification's worker). */
#define P_VERIFY 5
#define P_NOTIFY 10
#define P_SOFT_DELETE 20
#define P_REVOKE 30
#define P_ARCHIVE 40
#define P_PURGE 65
#define P_PURGE_END 90
#define P_COMPLETE 100

int tenant_deletion_request(struct db_conn *c, const char *tenant_id, const char *requested_by,
                            const char *reason, char job_id_out[JOB_ID_MAX])
{
    char tid[UUID_STRLEN + 1], job_id[64];
    job_id_out[0] = '\0';
    if (!uuid_normalize(tenant_id, tid))
        return -1;
    snprintf(job_id, sizeof(job_id), "tenant-deletion:%s", tid);
    int n = db_exec(c,
                    "INSERT INTO tenant_deletions (tenant_id, job_id, requested_by, reason)"
                    " VALUES ($1, $2, $3, $4) ON CONFLICT (tenant_id) DO NOTHING",
                    DB_ARGS(DB_TEXT(tid), DB_TEXT(job_id), DB_TEXT(requested_by), DB_TEXT(reason)));
    if (n < 0)
        return -1;
    if (n == 0) { /* asked before: the same request, the same job */
        struct db_rows *r = db_query(c, "SELECT job_id FROM tenant_deletions WHERE tenant_id = $1",
                                     DB_ARGS(DB_TEXT(tid)));
        int rc = r && db_next(r) ? 1 : -1;
        if (rc == 1)
            snprintf(job_id_out, JOB_ID_MAX, "%s", db_text(r, 0));
        db_rows_free(r);
        return rc;
    }
    json_t *d = json_pack("{s:s}", "tenantId", tid);
    if (requested_by)
        json_object_set_new(d, "requestedBy", json_string(requested_by));
    if (reason)
        json_object_set_new(d, "reason", jx_str(reason));
    char *dj = jx_dump(d, NULL);
    json_decref(d);
    struct job_opts o = {.job_id = job_id};
    int rc = jobs_enqueue(c, "tenant-deletion", "tenant-deletion", tid, dj, &o, job_id_out);
    free(dj);
    return rc < 0 ? -1 : 0;
}

/* ---- the processor ------------------------------------------------------------------------ */

/* The request row: which steps are done. */
struct td_record {
    bool notified, soft_deleted, revoked, archived, purged, completed;
    char archive_path[PATH_MAX];
    long long archive_bytes, archive_rows;
    char *requested_by; /* arena */
    char *reason;       /* arena */
};

struct td {
    struct job *j;
    struct db_conn *c;
    char tid[UUID_STRLEN + 1];
    char now[48];
    struct td_record rec;
};

static char *col_dup(struct td *t, struct db_rows *r, int i)
{
    return db_is_null(r, i) ? NULL : arena_strdup(t->j->arena, db_text(r, i));
}

/* 1 found, 0 no request row, -1 error. */
static int load_record(struct td *t)
{
    struct db_rows *r = db_query(t->c,
                                 "SELECT notified_at IS NOT NULL, soft_deleted_at IS NOT NULL,"
                                 " revoked_at IS NOT NULL, archived_at IS NOT NULL,"
                                 " purged_at IS NOT NULL, completed_at IS NOT NULL,"
                                 " archive_path, archive_bytes, archive_rows, requested_by, reason"
                                 " FROM tenant_deletions WHERE tenant_id = $1",
                                 DB_ARGS(DB_TEXT(t->tid)));
    if (!r)
        return -1;
    int found = 0;
    if (db_next(r)) {
        found = 1;
        struct td_record *x = &t->rec;
        x->notified = db_bool(r, 0);
        x->soft_deleted = db_bool(r, 1);
        x->revoked = db_bool(r, 2);
        x->archived = db_bool(r, 3);
        x->purged = db_bool(r, 4);
        x->completed = db_bool(r, 5);
        snprintf(x->archive_path, sizeof(x->archive_path), "%s",
                 db_is_null(r, 6) ? "" : db_text(r, 6));
        x->archive_bytes = db_int(r, 7);
        x->archive_rows = db_int(r, 8);
        x->requested_by = col_dup(t, r, 9);
        x->reason = col_dup(t, r, 10);
    } else if (db_rows_error(r) < 0) {
        found = -1;
    }
    db_rows_free(r);
    return found;
}

/* Stamps a step done (column is one of the fixed names below). */
static int mark(struct td *t, const char *column)
{
    char sql[128];
    snprintf(sql, sizeof(sql), "UPDATE tenant_deletions SET %s = $2 WHERE tenant_id = $1", column);
    return db_exec(t->c, sql, DB_ARGS(DB_TEXT(t->tid), DB_TEXT(t->now))) == 1 ? 0 : -1;
}

/* One step's work and its stamp in one transaction. */
static enum job_result in_tx(struct td *t, const char *step, const char *column,
                             int (*work)(struct td *t))
{
    zy_iso_now(t->now);
    if (db_begin(t->c) < 0)
        return proc_db_error(t->j, t->c, step);
    if ((work && work(t) < 0) || mark(t, column) < 0)
        return proc_db_error(t->j, t->c, step);
    if (db_commit(t->c) < 0)
        return proc_db_error(t->j, t->c, step);
    jobs_wake(); /* the members' notices queued by a step go out now, not at the next poll */
    return JOB_DONE;
}

/* Ends the run between steps when the job is cancelled, timed out or the runner stops, or when a
 * test asked for a failure here. */
static bool stop_after(struct td *t, const char *step)
{
    if (proc_fail_point(t->j, step))
        return true;
    if (job_should_stop(t->j)) {
        job_set_error(t->j, "stopped after %s", step);
        return true;
    }
    return false;
}

/* 1 the tenant row exists, 0 not, -1 error; its name and slug into the arena. */
static int load_tenant(struct td *t, char **name, char **slug)
{
    struct db_rows *r =
        db_query(t->c, "SELECT name, slug FROM tenants WHERE id = $1", DB_ARGS(DB_TEXT(t->tid)));
    if (!r)
        return -1;
    int found = 0;
    if (db_next(r)) {
        found = 1;
        *name = col_dup(t, r, 0);
        *slug = col_dup(t, r, 1);
    } else if (db_rows_error(r) < 0) {
        found = -1;
    }
    db_rows_free(r);
    return found;
}

/* ---- steps -------------------------------------------------------------------------------- */

static int notify_users(struct td *t)
{
    char *name = NULL, *slug = NULL;
    if (load_tenant(t, &name, &slug) != 1)
        return -1;
    /* read first, enqueue after: one statement at a time on the connection */
    struct db_rows *r = db_query(t->c,
                                 "SELECT id, email FROM users WHERE tenant_id = $1"
                                 " AND deleted_at IS NULL AND status = 'active' ORDER BY id",
                                 DB_ARGS(DB_TEXT(t->tid)));
    if (!r)
        return -1;
    size_t n = 0, cap = 16;
    char **ids = xmalloc(cap * sizeof(*ids)), **emails = xmalloc(cap * sizeof(*emails));
    while (db_next(r)) {
        if (n == cap) {
            cap *= 2;
            ids = xrealloc(ids, cap * sizeof(*ids));
            emails = xrealloc(emails, cap * sizeof(*emails));
        }
        ids[n] = xstrdup(db_text(r, 0));
        emails[n] = xstrdup(db_text(r, 1));
        n++;
    }
    int rc = db_rows_error(r);
    db_rows_free(r);
    char *text = arena_printf(
        t->j->arena,
        "The workspace \"%s\" (%s) is being deleted at the request of its owner.\n\n"
        "%s%s%sYou can no longer sign in to it. Its data is archived and then removed from "
        "the service.\n",
        name, slug, t->rec.reason ? "Reason given: " : "", t->rec.reason ? t->rec.reason : "",
        t->rec.reason ? "\n\n" : "");
    for (size_t i = 0; i < n && rc == 0; i++) {
        char job_id[128], out[JOB_ID_MAX];
        snprintf(job_id, sizeof(job_id), "tenant-del:%s:%s", t->tid, ids[i]);
        struct mail m = {.to = emails[i],
                         .subject = "Your Zygo workspace is being deleted",
                         .text = text,
                         .kind = "tenant_deletion"};
        /* a system job: it must outlive the purge of the tenant's own jobs */
        if (notifications_enqueue(t->c, t->j->env->keyring, NULL, &m, job_id, out) < 0)
            rc = -1;
    }
    for (size_t i = 0; i < n; i++) {
        free(ids[i]);
        free(emails[i]);
    }
    free(ids);
    free(emails);
    return rc;
}

static int soft_delete(struct td *t)
{
    return db_exec(t->c,
                   "UPDATE tenants SET status = 'suspended', deleted_at = COALESCE(deleted_at, $2),"
                   " updated_at = $2 WHERE id = $1",
                   DB_ARGS(DB_TEXT(t->tid), DB_TEXT(t->now))) == 1
               ? 0
               : -1;
}

/* Sessions end, and the tenant's other jobs (workflow runs, exports…) are cancelled: a
 * running one stops at its next check instead of working on rows the purge removes. */
static int revoke_access(struct td *t)
{
    if (db_exec(t->c,
                "UPDATE sessions SET revoked_at = $2, revoked_reason = 'tenant_deleted'"
                " WHERE tenant_id = $1 AND revoked_at IS NULL",
                DB_ARGS(DB_TEXT(t->tid), DB_TEXT(t->now))) < 0)
        return -1;
    return jobs_cancel_tenant(t->c, t->tid, t->j->id) < 0 ? -1 : 0;
}

static void archive_progress(void *arg, double done)
{
    struct td *t = arg;
    job_progress(t->j, P_ARCHIVE + (int)(done * (P_PURGE - P_ARCHIVE)), "archiving");
}

static enum job_result archive_step(struct td *t)
{
    /* never purge without the archive on disk: one that went missing is written again */
    if (t->rec.archived && (t->rec.purged || access(t->rec.archive_path, F_OK) == 0))
        return JOB_DONE;
    if (t->rec.archived)
        log_msg(LOG_WARN, "tenant deletion %s: archive %s is missing; writing it again", t->tid,
                t->rec.archive_path);
    struct archive_info info;
    char err[512];
    int rc = archive_tenant(t->c, t->j->env->cfg->data_dir, t->tid, archive_progress, t, &info, err,
                            sizeof(err));
    if (rc < 0) {
        job_set_error(t->j, "archive: %s", err);
        return JOB_RETRY;
    }
    zy_iso_now(t->now);
    if (db_exec(t->c,
                "UPDATE tenant_deletions SET archived_at = $2, archive_path = $3,"
                " archive_bytes = $4, archive_rows = $5 WHERE tenant_id = $1",
                DB_ARGS(DB_TEXT(t->tid), DB_TEXT(t->now), DB_TEXT(info.path), DB_INT(info.bytes),
                        DB_INT(info.rows))) != 1)
        return proc_db_error(t->j, t->c, "record the archive");
    snprintf(t->rec.archive_path, sizeof(t->rec.archive_path), "%s", info.path);
    t->rec.archive_bytes = info.bytes;
    t->rec.archive_rows = info.rows;
    return JOB_DONE;
}

static int purge_jobs(struct td *t)
{
    return tenant_data_purge_jobs(t->c, t->tid, t->j->id) < 0 ? -1 : 0;
}

static enum job_result purge_step(struct td *t)
{
    struct tenant_tables tt;
    if (tenant_data_tables(t->c, &tt) < 0)
        return proc_db_error(t->j, t->c, "list the tenant's tables");
    enum job_result res = JOB_DONE;
    for (size_t i = 0; i < tt.n && res == JOB_DONE; i++) {
        /* one table per transaction: a large tenant never holds the write lock for long, and
         * a table already emptied by an earlier run deletes nothing */
        if (db_begin(t->c) < 0 || tenant_data_purge(t->c, tt.names[i], t->tid) < 0 ||
            db_commit(t->c) < 0) {
            res = proc_db_error(t->j, t->c, arena_printf(t->j->arena, "purge %s", tt.names[i]));
            break;
        }
        job_progress(t->j, P_PURGE + (int)((i + 1) * (P_PURGE_END - P_PURGE) / tt.n), "purging");
        if (stop_after(t, arena_printf(t->j->arena, "purge:%zu", i + 1)))
            res = JOB_RETRY;
    }
    tenant_tables_free(&tt);
    if (res == JOB_DONE)
        res = in_tx(t, "purge jobs", "purged_at", purge_jobs);
    return res;
}

static int complete(struct td *t)
{
    char slug[64];
    snprintf(slug, sizeof(slug), "deleted-%s", t->tid);
    if (db_exec(t->c,
                "UPDATE tenants SET name = 'Deleted tenant', slug = $2, settings = '{}',"
                " updated_at = $3 WHERE id = $1",
                DB_ARGS(DB_TEXT(t->tid), DB_TEXT(slug), DB_TEXT(t->now))) != 1)
        return -1;
    json_t *meta =
        json_pack("{s:s, s:I, s:I}", "archivePath", t->rec.archive_path, "archiveBytes",
                  (json_int_t)t->rec.archive_bytes, "rows", (json_int_t)t->rec.archive_rows);
    if (t->rec.reason)
        json_object_set_new(meta, "reason", jx_str(t->rec.reason));
    /* global: the tenant's own audit rows are in the archive, not in the table any more */
    struct audit_entry e = {.tenant_id = NULL,
                            .actor_id = t->rec.requested_by,
                            .action = "tenant.deleted",
                            .resource_type = "tenant",
                            .resource_id = t->tid,
                            .metadata = meta};
    int rc = audit_write(t->c, &e);
    json_decref(meta);
    return rc;
}

static void set_result(struct td *t)
{
    job_set_result(t->j,
                   json_pack("{s:s, s:s, s:I, s:I}", "tenantId", t->tid, "archivePath",
                             t->rec.archive_path, "archiveBytes", (json_int_t)t->rec.archive_bytes,
                             "rows", (json_int_t)t->rec.archive_rows));
}

static enum job_result run(struct td *t)
{
    struct job *j = t->j;
    /* 5: verify */
    job_progress(j, P_VERIFY, "verifying");
    int found = load_record(t);
    if (found < 0)
        return proc_db_error(j, t->c, "verify");
    if (!found) {
        job_set_error(j, "no deletion was requested for tenant %s", t->tid);
        return JOB_UNRECOVERABLE;
    }
    char *name, *slug;
    int tenant = load_tenant(t, &name, &slug);
    if (tenant < 0)
        return proc_db_error(j, t->c, "verify");
    if (!tenant) {
        job_set_error(j, "tenant %s does not exist", t->tid);
        return JOB_UNRECOVERABLE;
    }
    if (t->rec.completed) {
        set_result(t);
        return JOB_DONE;
    }
    enum job_result res;
    if (stop_after(t, "verify"))
        return JOB_RETRY;
    /* 10: notify users */
    job_progress(j, P_NOTIFY, "notifying users");
    if (!t->rec.notified && (res = in_tx(t, "notify", "notified_at", notify_users)) != JOB_DONE)
        return res;
    if (stop_after(t, "notify"))
        return JOB_RETRY;
    /* 20: soft delete */
    job_progress(j, P_SOFT_DELETE, "soft delete");
    if (!t->rec.soft_deleted &&
        (res = in_tx(t, "soft delete", "soft_deleted_at", soft_delete)) != JOB_DONE)
        return res;
    if (stop_after(t, "softDelete"))
        return JOB_RETRY;
    /* 30: revoke access */
    job_progress(j, P_REVOKE, "revoking access");
    if (!t->rec.revoked && (res = in_tx(t, "revoke", "revoked_at", revoke_access)) != JOB_DONE)
        return res;
    if (stop_after(t, "revoke"))
        return JOB_RETRY;
    /* 40 → 90: archive, then purge */
    job_progress(j, P_ARCHIVE, "archiving");
    if ((res = archive_step(t)) != JOB_DONE)
        return res;
    if (stop_after(t, "archive"))
        return JOB_RETRY;
    job_progress(j, P_PURGE, "purging");
    if (!t->rec.purged && (res = purge_step(t)) != JOB_DONE)
        return res;
    if (stop_after(t, "purge"))
        return JOB_RETRY;
    /* 100: complete */
    if ((res = in_tx(t, "complete", "completed_at", complete)) != JOB_DONE)
        return res;
    job_progress(j, P_COMPLETE, "deleted");
    set_result(t);
    log_msg(LOG_INFO, "tenant %s deleted (archive %s, %lld rows)", t->tid, t->rec.archive_path,
            t->rec.archive_rows);
    return JOB_DONE;
}

enum job_result tenant_deletion_process(struct job *j)
{
    struct td t = {.j = j};
    if (!uuid_normalize(json_string_value(json_object_get(j->data, "tenantId")), t.tid)) {
        job_set_error(j, "data.tenantId must be a UUID");
        return JOB_UNRECOVERABLE;
    }
    /* system work: every table of the tenant, and jobs with no tenant */
    t.c = proc_acquire(j, true);
    if (!t.c)
        return JOB_RETRY;
    enum job_result res = run(&t);
    db_release(t.c);
    return res;
}
