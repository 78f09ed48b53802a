/*
 * users.h — the users repository (the specification's UserRepository): all SQL on the users
 * table. Every query carries the tenant filter and soft-deleted rows are never returned.
 */
#ifndef ZYGO_REPO_USERS_H
#define ZYGO_REPO_USERS_H

#include <jansson.h>

#include "db/db.h"

/*
 * The user with this id in this tenant, as the API's User object; NULL when there is none
 * (*failed false) or on a database error (*failed true; see db_errkind on c).
 */
json_t *users_find_by_id(struct db_conn *c, const char *tenant_id, const char *id, bool *failed);

#endif
