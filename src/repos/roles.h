/* roles.h — the roles repository: system roles seeded per tenant, role assignment, and the
 * permissions a user holds through their roles. */
#ifndef ZYGO_REPO_ROLES_H
#define ZYGO_REPO_ROLES_H

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

#endif
