/* audit.c — see audit.h. */
#include "lib/common.h"

#include "services/audit.h"

int audit_request(struct ctx *c, struct db_conn *db, struct audit_entry *e)
{
    e->ip = c->req.client_ip;
    e->user_agent = ctx_header(c, "User-Agent");
    e->request_id = c->request_id;
    return audit_write(db, e);
}
