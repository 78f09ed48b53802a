/* health.h — GET /health (liveness: status, version, uptime) and GET /health/ready (the
 * database answers; 503 with the reason when it does not). */
#ifndef ZYGO_ROUTES_HEALTH_H
#define ZYGO_ROUTES_HEALTH_H

#include "http/router.h"

extern const struct route_group health_routes;

#endif
