/* tenants.c — see tenants.h. */
#include "lib/common.h"

#include "http/app.h"
#include "jobs/tenant_deletion.h"
#include "lib/jsonx.h"
#include "repos/audit.h"
#include "services/audit.h"
#include "repos/tenants.h"
#include "routes/schemas.h"
#include "routes/tenants.h"

/* ---- schemas ------------------------------------------------------------------------------ */

static const struct schema settings_s = {
    .type = SCHEMA_OBJECT,
    .allow_unknown = true,
    .description = "Free-form tenant settings, e.g. {\"timezone\": \"Europe/Berlin\"}: a JSON "
                   "object of at most 16 KiB serialized",
};

static const struct schema tenant_s = {
    .type = SCHEMA_OBJECT,
    .ref = "Tenant",
    .props = (const struct schema_prop[]){
        {"id", &schemas_uuid, true},
        {"slug", &schemas_str, true},
        {"name", &schemas_str, true},
        {"plan",
         &(const struct schema){.type = SCHEMA_STRING,
                                .description = "Read-only here; billing changes it"},
         true},
        {"settings", &settings_s, true},
        {"status", &schemas_active_suspended, true},
        {"createdAt", &schemas_datetime, true},
        {"updatedAt", &schemas_datetime, true},
        {NULL}}};

static const struct schema update_tenant_s = {
    .type = SCHEMA_OBJECT,
    .ref = "UpdateTenantRequest",
    .description = "Fields to change; settings replaces the whole object. The plan is not "
                   "accepted here.",
    .props = (const struct schema_prop[]){
        {"name",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = 100,
                                .example = "\"Acme Corp\""},
         false},
        {"slug",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_min = true,
                                .min = 3,
                                .has_max = true,
                                .max = 48,
                                .description = "Lower-case letters, digits and hyphens, "
                                               "not starting or ending with a hyphen; "
                                               "unique across tenants",
                                .example = "\"acme-corp\""},
         false},
        {"settings", &settings_s, false},
        {NULL}}};

static const struct schema delete_tenant_s = {
    .type = SCHEMA_OBJECT,
    .ref = "DeleteTenantRequest",
    .description = "Deleting a tenant cannot be undone: its data is archived, then removed.",
    .props = (const struct schema_prop[]){
        {"confirm",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = 100,
                                .description = "The tenant's slug, typed again",
                                .example = "\"acme-corp\""},
         true},
        {"reason",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_max = true,
                                .max = 500,
                                .description = "Why (kept with the deletion record and told "
                                               "to the tenant's users)"},
         false},
        {NULL}}};

static const struct schema deletion_accepted_s = {
    .type = SCHEMA_OBJECT,
    .ref = "TenantDeletionAccepted",
    .props = (const struct schema_prop[]){
        {"jobId",
         &(const struct schema){.type = SCHEMA_STRING,
                                .description = "The tenant-deletion job (GET /jobs/{id} until "
                                               "the tenant's tokens stop working)"},
         true},
        {"tenantId", &schemas_uuid, true},
        {"message", &schemas_str, true},
        {NULL}}};

/* ---- helpers ------------------------------------------------------------------------------ */

static bool slug_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || s[0] == '-' || s[n - 1] == '-')
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
            return false;
    return true;
}

static void add_issue(json_t *issues, const char *path, const char *code, const char *msg)
{
    json_array_append_new(issues,
                          json_pack("{s:s, s:s, s:s}", "path", path, "message", msg, "code", code));
}

/* ---- handlers ----------------------------------------------------------------------------- */

static int get_current(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    bool failed;
    json_t *t = tenants_find_by_id(db, c->tenant_id, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    if (!t)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Tenant with ID %s not found", c->tenant_id);
    ctx_json(c, 200, t);
    return 0;
}

static int update_current_tx(struct ctx *c, struct db_conn *db, const char *settings)
{
    json_t *b = c->body;
    const char *name = jx_get_str(b, "name"), *slug = jx_get_str(b, "slug");
    bool failed;
    json_t *before = tenants_find_by_id(db, c->tenant_id, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    if (!before)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Tenant with ID %s not found", c->tenant_id);
    ctx_keep(c, before);
    if (json_object_size(b) == 0) { /* nothing to change */
        ctx_json(c, 200, json_incref(before));
        return 0;
    }
    char now[48];
    zy_iso_now(now);
    int rc = tenants_update(db, c->tenant_id, name, slug, settings, now);
    if (rc < 0)
        return ctx_fail_db(c, db, arena_printf(c->arena, "Slug '%s' is already taken", slug));
    if (rc == 0)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Tenant with ID %s not found", c->tenant_id);
    /* which fields changed, and the old and new name and slug; never the settings' content */
    json_t *changed = json_array();
    const char *key;
    json_t *v;
    json_object_foreach (b, key, v) {
        json_array_append_new(changed, json_string(key));
    }
    json_t *meta = json_pack("{s:o}", "changed", changed);
    if (name) {
        json_object_set(meta, "previousName", json_object_get(before, "name"));
        json_object_set_new(meta, "name", json_string(name));
    }
    if (slug) {
        json_object_set(meta, "previousSlug", json_object_get(before, "slug"));
        json_object_set_new(meta, "slug", json_string(slug));
    }
    struct audit_entry e = {
        .tenant_id = c->tenant_id,
        .actor_id = c->user->id,
        .action = "tenant.update",
        .resource_type = "tenant",
        .resource_id = c->tenant_id,
        .metadata = meta,
    };
    rc = audit_request(c, db, &e);
    json_decref(meta);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    json_t *after = tenants_find_by_id(db, c->tenant_id, &failed);
    if (!after)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200, after);
    return 0;
}

static int update_current(struct ctx *c)
{
    /* what the schema cannot say: the slug's alphabet and the settings' size */
    json_t *issues = json_array();
    const char *slug = jx_get_str(c->body, "slug");
    if (slug && !slug_valid(slug))
        add_issue(issues, "slug", "invalid_string",
                  "Slug may contain only lower-case letters, digits and hyphens, and cannot "
                  "start or end with a hyphen");
    json_t *settings = json_object_get(c->body, "settings");
    char *sj = settings ? jx_dump(settings, NULL) : NULL;
    if (sj && strlen(sj) > TENANT_SETTINGS_MAX) {
        char msg[96];
        snprintf(msg, sizeof(msg), "Settings must be at most %d bytes serialized",
                 TENANT_SETTINGS_MAX);
        add_issue(issues, "settings", "too_big", msg);
    }
    if (json_array_size(issues)) {
        free(sj);
        return ctx_fail_details(c, ZY_E_VALIDATION, 400, json_pack("{s:o}", "issues", issues),
                                "Request validation failed");
    }
    json_decref(issues);
    /* the change and its audit row in one transaction (ctx_tx's pattern, with the serialised
     * settings as an extra argument) */
    int rc = -1;
    struct db_conn *db = ctx_db(c);
    if (!db)
        goto out;
    if (db_begin(db) < 0) {
        ctx_fail_db(c, db, NULL);
        goto out;
    }
    if (update_current_tx(c, db, sj) < 0) {
        db_rollback(db);
        goto out;
    }
    rc = db_commit(db) < 0 ? ctx_fail_db(c, db, NULL) : 0;
out:
    free(sj);
    return rc;
}

/* Deleting the tenant is the owner's alone (canManageTenant may be given to a custom role). */
static bool is_owner(const struct ctx *c)
{
    return c->user && c->user->role && strcmp(c->user->role, "owner") == 0;
}

static int delete_current_tx(struct ctx *c, struct db_conn *db)
{
    bool failed;
    json_t *t = tenants_find_by_id(db, c->tenant_id, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    if (!t)
        return ctx_fail(c, ZY_E_NOT_FOUND, "Tenant with ID %s not found", c->tenant_id);
    ctx_keep(c, t);
    if (strcmp(jx_get_str(c->body, "confirm"), jx_get_str(t, "slug")) != 0) {
        json_t *issues = json_array();
        add_issue(issues, "confirm", "custom", "Type the tenant's slug to confirm the deletion");
        return ctx_fail_details(c, ZY_E_VALIDATION, 400, json_pack("{s:o}", "issues", issues),
                                "Request validation failed");
    }
    const char *reason = jx_get_str(c->body, "reason");
    char job_id[JOB_ID_MAX];
    int rc = tenant_deletion_request(db, c->tenant_id, c->user->id, reason, job_id);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    ctx_wake_jobs(c);
    if (rc == 0) {
        json_t *meta = json_pack("{s:s}", "jobId", job_id);
        if (reason)
            json_object_set_new(meta, "reason", json_string(reason));
        struct audit_entry e = {
            .tenant_id = c->tenant_id,
            .actor_id = c->user->id,
            .action = "tenant.delete_requested",
            .resource_type = "tenant",
            .resource_id = c->tenant_id,
            .metadata = meta,
        };
        rc = audit_request(c, db, &e);
        json_decref(meta);
        if (rc < 0)
            return ctx_fail_db(c, db, NULL);
    }
    ctx_json(c, 202,
             json_pack("{s:s, s:s, s:s}", "jobId", job_id, "tenantId", c->tenant_id, "message",
                       "The tenant is being deleted"));
    return 0;
}

static const struct route routes[] = {
    {.method = HTTP_GET,
     .path = "/tenants/current",
     .handler = get_current,
     .tag = "Tenants",
     .summary = "My tenant",
     .description = "The caller's tenant (a global admin's: the one chosen with X-Tenant-ID).",
     .operation_id = "getCurrentTenant",
     .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{200, "The tenant", &tenant_s}, {0}}},
    {.method = HTTP_PATCH,
     .path = "/tenants/current",
     .handler = update_current,
     .tag = "Tenants",
     .summary = "Change my tenant",
     .description = "Name, slug and settings (replaced as a whole). The plan is read-only.",
     .operation_id = "updateCurrentTenant",
     .body = &update_tenant_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageTenant",
     .responses = (const struct route_response[]){{200, "The changed tenant", &tenant_s},
                                                  {409, "The slug is taken", NULL},
                                                  {0}}},
    {.method = HTTP_DELETE,
     .path = "/tenants/current",
     .tx = delete_current_tx,
     .tag = "Tenants",
     .summary = "Delete my tenant",
     .description = "The owner only, confirming with the tenant's slug. Answers at once with "
                    "the tenant-deletion job: it emails the tenant's users, ends every session "
                    "(the tenant's tokens are refused from then on), archives the tenant's "
                    "data to a compressed file and removes it. Asking again while it runs "
                    "answers the same job.",
     .operation_id = "deleteCurrentTenant",
     .body = &delete_tenant_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageTenant",
     .permission_check = is_owner,
     .responses = (const struct route_response[]){{202, "Deletion started", &deletion_accepted_s},
                                                  {400, "The confirmation does not match", NULL},
                                                  {403, "Not the tenant's owner", NULL},
                                                  {0}}},
};

const struct route_group tenants_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "The caller's tenant: name, slug, plan and settings.",
};
