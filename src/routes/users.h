/* users.h — /api/v1/users: the tenant's users (the specification's list route and its
 * companions) and the caller's own profile. */
#ifndef ZYGO_ROUTES_USERS_H
#define ZYGO_ROUTES_USERS_H

#include "http/router.h"

extern const struct route_group users_routes;

struct ctx;
struct db_conn;
/*
 * Answers with the tenant's user as the API's User object (written as text from the row), or
 * the error envelope: 404 when there is no such user in that tenant, 503/500 for database
 * failures. Returns what a handler returns.
 */
int users_send_one(struct ctx *c, struct db_conn *db, const char *tenant_id, const char *id,
                   int status);
/*
 * The same answer without holding the thread while the database works (ctx_query_async):
 * CTX_PENDING (return it from the handler), or 0 when that is not possible here (then use
 * users_send_one).
 */
int users_send_one_async(struct ctx *c, const char *tenant_id, const char *id);

#endif
