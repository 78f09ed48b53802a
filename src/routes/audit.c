/* audit.c — see audit.h. */
#include "lib/common.h"

#include "http/app.h"
#include "lib/jsonx.h"
#include "http/pagination.h"
#include "repos/audit.h"
#include "routes/audit.h"
#include "routes/schemas.h"

static const struct schema audit_log_s = {
    .type = SCHEMA_OBJECT,
    .ref = "AuditLog",
    .props = (const struct schema_prop[]){
        {"id", &schemas_uuid, true},
        {"tenantId", &schemas_uuid, true},
        {"actorId",
         &(const struct schema){.type = SCHEMA_STRING,
                                .format = SCHEMA_FMT_UUID,
                                .nullable = true,
                                .description = "Who acted; null when nobody was "
                                               "signed in (a failed sign-in)"},
         true},
        {"action", &(const struct schema){.type = SCHEMA_STRING, .example = "\"auth.login\""},
         true},
        {"resourceType", &schemas_nullable_str, true},
        {"resourceId", &schemas_nullable_str, true},
        {"ip", &schemas_nullable_str, true},
        {"userAgent", &schemas_nullable_str, true},
        {"requestId", &schemas_nullable_str, true},
        {"metadata",
         &(const struct schema){.type = SCHEMA_OBJECT,
                                .allow_unknown = true,
                                .description = "Details of the action; never "
                                               "tokens, passwords or secrets"},
         true},
        {"createdAt", &schemas_datetime, true},
        {NULL}}};

static const struct schema audit_list_s = {
    .type = SCHEMA_OBJECT,
    .ref = "AuditLogList",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &audit_log_s}, true},
        {"pagination", &pagination_schema, true},
        {NULL}}};

static const struct schema list_query_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"actorId",
         &(const struct schema){.type = SCHEMA_STRING,
                                .format = SCHEMA_FMT_UUID,
                                .description = "Only actions by this user"},
         false},
        {"action",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = 101,
                                .description = "Exact action, or a prefix ending in "
                                               "'*' (auth.* is every auth event)",
                                .example = "\"auth.*\""},
         false},
        {"resourceType",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = 50,
                                .example = "\"user\""},
         false},
        {"resourceId",
         &(const struct schema){
             .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 100},
         false},
        {"from",
         &(const struct schema){.type = SCHEMA_STRING,
                                .format = SCHEMA_FMT_DATETIME,
                                .description = "Created at or after (inclusive)",
                                .example = "\"2026-01-01T00:00:00Z\""},
         false},
        {"to",
         &(const struct schema){.type = SCHEMA_STRING,
                                .format = SCHEMA_FMT_DATETIME,
                                .description = "Created before (exclusive)",
                                .example = "\"2026-02-01T00:00:00Z\""},
         false},
        {"page", &pagination_page_schema, false},
        {"limit", &pagination_limit_schema, false},
        {NULL}}};

static int list_audit(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    struct page pg;
    pagination_from_query(c, &pg);
    struct audit_filter f = {
        .actor_id = jx_get_str(c->query, "actorId"),
        .action = jx_get_str(c->query, "action"),
        .resource_type = jx_get_str(c->query, "resourceType"),
        .resource_id = jx_get_str(c->query, "resourceId"),
        .from = jx_get_str(c->query, "from"),
        .to = jx_get_str(c->query, "to"),
    };
    long long total;
    bool failed;
    json_t *data = audit_list(db, c->tenant_id, &f, pg.limit, pg.offset, &total, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, pagination_envelope(data, &pg, total));
    return 0;
}

static int get_audit(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    const char *id = json_string_value(json_object_get(c->path_params, "id"));
    bool failed;
    json_t *o = audit_find_by_id(db, c->tenant_id, id, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    if (!o) /* another tenant's row is as absent as a missing one */
        return ctx_fail(c, ZY_E_NOT_FOUND, "Audit log entry with ID %s not found", id);
    ctx_json(c, 200, o);
    return 0;
}

static const struct route routes[] = {
    {.method = HTTP_GET,
     .path = "/audit",
     .handler = list_audit,
     .tag = "Audit",
     .summary = "List audit log entries",
     .description = "The tenant's audit log, newest first. Filters combine (AND); from is "
                    "inclusive, to exclusive.",
     .operation_id = "listAuditLogs",
     .query = &list_query_s,
     .auth = ROUTE_AUTH,
     .permission = "canViewAuditLogs",
     .responses = (const struct route_response[]){{200, "Audit log entries", &audit_list_s}, {0}}},
    {.method = HTTP_GET,
     .path = "/audit/:id",
     .handler = get_audit,
     .tag = "Audit",
     .summary = "Get an audit log entry",
     .operation_id = "getAuditLog",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = "canViewAuditLogs",
     .responses = (const struct route_response[]){{200, "The entry", &audit_log_s}, {0}}},
};

const struct route_group audit_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "The tenant's audit log: who did what, when, from where.",
};
