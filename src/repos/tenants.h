/* tenants.h — the tenants repository: creating a tenant with a unique slug, and reading one. */
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
 * updatedAt), or NULL (*failed says whether that was an error). */
json_t *tenants_find_by_id(struct db_conn *c, const char *id, bool *failed);

#endif
