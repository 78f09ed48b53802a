/*
 * user_deletion.h — the `user-deletion` queue: what remains of a user after DELETE /users/:id.
 *
 * The request itself soft-deletes the user and ends their sessions at once (the user is gone
 * for the API from that moment) and enqueues this job in the same transaction. The job then
 * removes what the user leaves behind — sessions and refresh tokens, sign-in identities, MFA
 * factors, recovery codes and challenges, single-use tokens, role assignments — and anonymises
 * the user row (email, names, phone, avatar, password), keeping only the id and timestamps so
 * audit rows still name who acted. One transaction, scoped to the user's tenant.
 *
 * Idempotent: every delete is a no-op the second time, and the row is anonymised (and the
 * `user.erase` audit row written) only while it is not yet. A live user (not soft-deleted) is
 * never touched: that job fails without retry. A user already purged with their tenant is done.
 *
 * Data: {"tenantId", "userId", "requestedBy"?}. Job id "user-deletion:<userId>".
 */
#ifndef ZYGO_JOBS_USER_DELETION_H
#define ZYGO_JOBS_USER_DELETION_H

#include "jobs/queue.h"

/* Enqueues the job on c (the caller's transaction; c scoped to tenant_id or with the bypass).
 * 0 added, 1 already queued, -1 on error. The caller wakes the workers after its commit. */
int user_deletion_enqueue(struct db_conn *c, const char *tenant_id, const char *user_id,
                          const char *requested_by, char id_out[JOB_ID_MAX]);

enum job_result user_deletion_process(struct job *j);

#endif
