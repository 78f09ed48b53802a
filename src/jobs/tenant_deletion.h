/*
 * tenant_deletion.h — deleting a tenant: the request (DELETE /api/v1/tenants/current) and the
 * `tenant-deletion` queue's processor with the specification's steps and progress marks:
 *
 *    5  verify       the request row and the tenant exist
 *   10  notify       one email per active user, as notifications jobs (system jobs, so they
 *                    outlive the purge; job ids "tenant-del:<tenantId>:<userId>")
 *   20  soft delete  tenants.status = suspended, deleted_at set: the tenant's tokens are refused
 *                    from now on (the auth middleware's tenant check), sign-in finds no user
 *   30  revoke       every session of the tenant revoked (its refresh tokens stop working)
 *   40  archive      the tenant's rows written to <data_dir>/archives (jobs/archive.h), 40→65
 *   65  purge        the tenant's rows deleted from every tenant-scoped table, children first,
 *                    one table per transaction, and its pending jobs, 65→90
 *  100  complete     the tenants row kept as a tombstone (name and settings cleared, slug freed
 *                    as "deleted-<id>"), a global audit row tenant.deleted
 *
 * Idempotent: the request row (table tenant_deletions) has one timestamp per step, set in the
 * transaction that does the step, and a re-run skips every step already stamped — no second
 * email (the de-duplicating job ids guard that too), no second archive, no failure on rows
 * already purged. The purge never starts without the archive file on disk: a missing one is
 * written again first.
 *
 * Data: {"tenantId", "requestedBy", "reason"?}. Job id "tenant-deletion:<tenantId>".
 * Result: {"tenantId", "archivePath", "archiveBytes", "rows"}.
 */
#ifndef ZYGO_JOBS_TENANT_DELETION_H
#define ZYGO_JOBS_TENANT_DELETION_H

#include "jobs/queue.h"

/*
 * Records the deletion request and enqueues its job on c, inside the caller's transaction (c
 * scoped to tenant_id, or with the bypass). reason may be NULL. job_id_out receives the job's
 * id. 0 when requested now, 1 when a deletion of this tenant was already requested (nothing
 * changed; job_id_out is that request's job), -1 on a database error. The caller wakes the
 * workers after its commit.
 */
int tenant_deletion_request(struct db_conn *c, const char *tenant_id, const char *requested_by,
                            const char *reason, char job_id_out[JOB_ID_MAX]);

enum job_result tenant_deletion_process(struct job *j);

#endif
