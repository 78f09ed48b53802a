/* workflows.h — the workflow routes (/api/v1/workflows, /api/v1/executions): definitions with
 * versions, starting executions (manual, idempotent; a public webhook trigger), following them
 * (status, steps, the event log) and cancelling them. */
#ifndef ZYGO_ROUTES_WORKFLOWS_H
#define ZYGO_ROUTES_WORKFLOWS_H

#include "http/router.h"

extern const struct route_group workflows_routes;

#endif
