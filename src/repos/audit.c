/* audit.c — see audit.h. */
#include "lib/common.h"

#include "lib/jsonx.h"
#include "lib/uuid.h"
#include "repos/audit.h"

int audit_write(struct db_conn *c, const struct audit_entry *e)
{
    char id[37], ua[513] = "";
    uuid_v7(id);
    if (e->user_agent)
        snprintf(ua, sizeof(ua), "%s", e->user_agent);
    char *meta = e->metadata ? jx_dump(e->metadata, NULL) : NULL;
    int rc = db_exec(c,
                     "INSERT INTO audit_logs (id, tenant_id, actor_id, action, resource_type,"
                     " resource_id, ip, user_agent, request_id, metadata)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                     DB_ARGS(DB_TEXT(id), DB_TEXT(e->tenant_id), DB_TEXT(e->actor_id),
                             DB_TEXT(e->action), DB_TEXT(e->resource_type),
                             DB_TEXT(e->resource_id), DB_TEXT(e->ip),
                             DB_TEXT(e->user_agent ? ua : NULL), DB_TEXT(e->request_id),
                             DB_TEXT(meta ? meta : "{}")));
    free(meta);
    return rc == 1 ? 0 : -1;
}
