/*
 * notifications.h — email through the `notifications` queue: requests enqueue, a worker sends.
 *
 * Owns the job's data format and its processor. Enqueueing happens on the caller's connection,
 * so inside the caller's transaction: a change that rolls back sends no mail, and the SMTP
 * server's latency or outage never fails or slows the request (the job retries with backoff).
 *
 * Data: {"to", "subject", "kind", "sealed"} where sealed is the bodies {"text", "html"?}
 * encrypted with ENCRYPTION_KEY (lib/secretbox.h, associated data "notifications:<to>"):
 * bodies carry single-use links and stay secret at rest in the jobs table. A job may instead
 * give "text" (and "html") in the clear, for mail that holds no secret.
 *
 * Outcomes: sent → done; MAILER_E_SEND (SMTP down, refused for now) → retried; a message the
 * mailer refuses (MAILER_E_INVALID), no mailer configured (MAILER_E_NOT_CONFIGURED) or data
 * that cannot be read → failed without retry.
 */
#ifndef ZYGO_JOBS_NOTIFICATIONS_H
#define ZYGO_JOBS_NOTIFICATIONS_H

#include "jobs/queue.h"
#include "services/mailer.h"

/*
 * Queues m on c. tenant_id: the job's tenant (NULL: a system job; on PostgreSQL c must then have
 * the bypass on, else be scoped to that tenant). kr seals the bodies (NULL or no current key:
 * they go in the clear). job_id: a de-duplication id, or NULL. Returns what jobs_enqueue does:
 * 0 added, 1 already there, -1 refused (invalid message, logged) or a database error.
 * The caller wakes the workers (jobs_wake) once the job is committed: a wake before the commit
 * finds nothing, and the job then waits for the next poll.
 */
int notifications_enqueue(struct db_conn *c, const struct secretbox_keyring *kr,
                          const char *tenant_id, const struct mail *m, const char *job_id,
                          char id_out[JOB_ID_MAX]);

enum job_result notifications_process(struct job *j);

#endif
