/* tenants.h — the tenants repository: creating a tenant with a unique slug, reading one, and
 * changing its name, slug and settings. A tenants row is its own tenant: every query sets it
 * (repo_tenant) and filters on id. */
#ifndef ZYGO_REPO_TENANTS_H
#define ZYGO_REPO_TENANTS_H

#include <jansson.h>

#include "db/db.h"

/* "Acme Corp!" → "acme-corp" (lower-case ASCII letters, digits and single dashes; "tenant"
 * when nothing is left). out must hold 64 bytes. */
void tenants_slugify(const char *name, char out[64]);

/*
 * Inserts a tenant named `name` with id `id` and a slug made from the name, made unique with a
 * numeric suffix when taken ("acme", "acme-2", …). System work: the caller has the RLS bypass
 * on. The slug used goes to slug_out (64 bytes). 0, or -1 with the error on c.
 */
int tenants_create(struct db_conn *c, const char *id, const char *name, char slug_out[64]);

/* The tenant as the API's Tenant object (id, slug, name, plan, settings, status, createdAt,
 * updatedAt), or NULL (*failed says whether that was an error). Sets the connection's tenant to
 * it (repo_tenant). */
json_t *tenants_find_by_id(struct db_conn *c, const char *id, bool *failed);

/*
 * Changes the tenant's name, slug and settings (a JSON object's text); NULL leaves a field as it
 * is. The plan and status are not changed here. Rows changed (0: no such tenant), or -1 with
 * DB_ERR_UNIQUE on c when the slug is taken by another tenant.
 */
int tenants_update(struct db_conn *c, const char *id, const char *name, const char *slug,
                   const char *settings_json, const char *now);

#endif
