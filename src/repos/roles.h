/*
 * roles.h — the roles repository: system roles seeded per tenant, custom roles, role assignment
 * (user_roles), and the permissions a user holds through their roles.
 *
 * Every tenant-scoped query sets the tenant (repo_tenant) and filters on tenant_id. JSON values
 * returned are new references for the caller; NULL with *failed false means "no such row",
 * with *failed true a database error (see db_errkind on c).
 */
#ifndef ZYGO_REPO_ROLES_H
#define ZYGO_REPO_ROLES_H

#include <jansson.h>

#include "db/db.h"
#include "lib/arena.h"

/* Inserts the system roles (owner, admin, member, viewer) into a new tenant. */
int roles_seed_system(struct db_conn *c, const char *tenant_id);

/* Gives the user the tenant's role called `name`. */
int roles_assign_by_name(struct db_conn *c, const char *tenant_id, const char *user_id,
                         const char *name);

/*
 * The user's role (the most powerful of theirs: owner, admin, member, viewer, then custom ones
 * by name) and the union of their roles' permissions, allocated from a. 0, or -1 on a database
 * error. A user without roles gets role "" and no permissions.
 */
int roles_user_access(struct db_conn *c, const char *tenant_id, const char *user_id,
                      struct arena *a, const char **role, const char ***perms, size_t *nperms);

/*
 * The API's Role object: {id, name, description, permissions[], isSystem, userCount, createdAt,
 * updatedAt}; userCount counts the users (not soft-deleted) holding the role.
 */

/* A page of the tenant's roles (system roles first, in rank order, then custom ones by name)
 * and their total. */
json_t *roles_list(struct db_conn *c, const char *tenant_id, long long limit, long long offset,
                   long long *total, bool *failed);

/* The role with this id in this tenant, or NULL. */
json_t *roles_find_by_id(struct db_conn *c, const char *tenant_id, const char *id, bool *failed);

/* The roles the user holds in this tenant, as a JSON array of Role objects (rank order). */
json_t *roles_of_user(struct db_conn *c, const char *tenant_id, const char *user_id,
                      bool *failed);

/*
 * Locks the role's row until the transaction ends (PostgreSQL SELECT ... FOR UPDATE; SQLite's
 * BEGIN IMMEDIATE already holds the database's write lock), so checks made after it — the last
 * owner — cannot race a concurrent change. 0, or -1 on a database error.
 */
int roles_lock(struct db_conn *c, const char *tenant_id, const char *id);

/* Inserts a custom role. permissions_json is a JSON array of permission names. 0, or -1 with
 * DB_ERR_UNIQUE on c when the name is taken in the tenant. */
int roles_create(struct db_conn *c, const char *tenant_id, const char *id, const char *name,
                 const char *description, const char *permissions_json);

/* Sets every editable field of a custom role (system roles are never changed here). Rows
 * changed (0: no such custom role), or -1 (DB_ERR_UNIQUE: name taken). */
int roles_update(struct db_conn *c, const char *tenant_id, const char *id, const char *name,
                 const char *description, const char *permissions_json, const char *now);

/* Deletes a custom role and its assignments; *unassigned gets how many assignments went.
 * Rows deleted (0: no such custom role), or -1. */
int roles_delete(struct db_conn *c, const char *tenant_id, const char *id,
                 long long *unassigned);

/* Gives the user the role (both already checked to be in the tenant). 1, 0 when the user
 * already had it, or -1. */
int roles_assign(struct db_conn *c, const char *tenant_id, const char *user_id,
                 const char *role_id);

/* Takes the role from the user. 1, 0 when the user did not have it, or -1. */
int roles_unassign(struct db_conn *c, const char *tenant_id, const char *user_id,
                   const char *role_id);

/* How many active, not deleted users hold the tenant's system owner role (the last-owner
 * rule), or -1 on a database error. */
long long roles_count_active_owners(struct db_conn *c, const char *tenant_id);

#endif
