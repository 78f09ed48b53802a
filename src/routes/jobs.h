/* jobs.h — the job queue over HTTP. GET /api/v1/jobs/:id: a job of the caller's tenant (its
 * state, progress, attempts, result or error; never its payload), another tenant's is 404.
 * /api/v1/admin/jobs…, global admins only: the queues with their counts per state, the failed
 * jobs (the dead letters, paginated), any job, retry of a failed or cancelled job, and cancel
 * of a waiting or running one (audited as admin.job_retry / admin.job_cancel). */
#ifndef ZYGO_ROUTES_JOBS_H
#define ZYGO_ROUTES_JOBS_H

#include "http/router.h"

extern const struct route_group jobs_routes;

#endif
