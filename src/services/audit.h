/* audit.h — writing an audit row for the request being served: who acted is given, where from
 * (IP, user agent, request id) comes from the request itself. */
#ifndef ZYGO_SERVICES_AUDIT_H
#define ZYGO_SERVICES_AUDIT_H

#include "http/ctx.h"
#include "repos/audit.h"

/* Fills e's ip, user_agent and request_id from c, then writes it on db (in the caller's
 * transaction). Returns audit_write's result. */
int audit_request(struct ctx *c, struct db_conn *db, struct audit_entry *e);

#endif
