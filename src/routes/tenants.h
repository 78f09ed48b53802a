/*
 * tenants.h — /api/v1/tenants/current: the caller's tenant (for a global admin, the one chosen
 * with X-Tenant-ID). Anyone signed in reads it; canManageTenant changes its name, slug and
 * settings. The plan is read-only here (billing changes it): a body naming it fails validation
 * as an unrecognized key. A change writes a tenant.update audit row in the same transaction.
 */
#ifndef ZYGO_ROUTES_TENANTS_H
#define ZYGO_ROUTES_TENANTS_H

#include "http/router.h"

/* Longest settings object accepted, serialized compactly. */
#define TENANT_SETTINGS_MAX 16384

extern const struct route_group tenants_routes;

#endif
