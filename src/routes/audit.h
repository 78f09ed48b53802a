/* audit.h — /api/v1/audit: reading the tenant's audit log (canViewAuditLogs), with filters on
 * actor, action (exact or a "prefix.*"), resource and time range, newest first. */
#ifndef ZYGO_ROUTES_AUDIT_H
#define ZYGO_ROUTES_AUDIT_H

#include "http/router.h"

extern const struct route_group audit_routes;

#endif
