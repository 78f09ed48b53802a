/*
 * admin.h — the global-admin repository: queries across every tenant (tenants, users) and the
 * changes only a global admin or the operator's CLI makes (tenant status, the global-admin
 * flag).
 *
 * Nothing here filters by tenant: the caller turns on the explicit row-level-security bypass
 * first (db_set_rls_bypass(c, true)) and is responsible for having checked that the actor is a
 * global admin (or is the operator at the command line). JSON values returned are new
 * references for the caller.
 */
#ifndef ZYGO_REPO_ADMIN_H
#define ZYGO_REPO_ADMIN_H

#include <jansson.h>

#include "db/db.h"

/*
 * A page of tenants (not deleted) as the API's AdminTenant objects — the Tenant object plus
 * userCount — newest first, and the total. search matches name or slug (substring, ignoring
 * ASCII case), status is "active" or "suspended"; NULL does not filter. NULL with *failed true
 * on a database error.
 */
json_t *admin_tenants_list(struct db_conn *c, const char *search, const char *status,
                           long long limit, long long offset, long long *total, bool *failed);

/* One tenant (not deleted) as an AdminTenant, or NULL: none (*failed false) or a database
 * error (*failed true). */
json_t *admin_tenant_find(struct db_conn *c, const char *id, bool *failed);

/* Sets the tenant's status when it differs: 1 changed, 0 no such tenant or already in that
 * status, -1 database error. */
int admin_tenant_set_status(struct db_conn *c, const char *id, const char *status, const char *now);

/*
 * A page of users of every tenant (not deleted, in tenants not deleted) as AdminUser objects —
 * the User object plus isGlobalAdmin, tenantSlug and tenantName — newest first, and the total.
 * search matches email, first name, last name or "first last" (substring, ignoring ASCII case);
 * tenant_id (a UUID) and status narrow it; NULL does not filter.
 */
json_t *admin_users_list(struct db_conn *c, const char *search, const char *tenant_id,
                         const char *status, long long limit, long long offset, long long *total,
                         bool *failed);

/* A user found by email for `zygo admin create`. */
struct admin_user_ref {
    char id[37];
    char tenant_id[37];
    char tenant_slug[64];
    char status[24];
    bool is_global_admin;
};

/* Users (not deleted) with this email (lower-cased here) in any tenant, or only the tenant with
 * slug tenant_slug when not NULL; oldest first. The first max go to out; the return value counts
 * every match (up to 100), or is -1 on a database error. */
int admin_users_by_email(struct db_conn *c, const char *email, const char *tenant_slug,
                         struct admin_user_ref *out, int max);

/* Sets or clears the user's global-admin flag. 1 changed, 0 no such user, -1 error. */
int admin_user_set_global(struct db_conn *c, const char *id, bool on, const char *now);

#endif
