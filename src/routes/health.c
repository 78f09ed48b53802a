/* health.c — see health.h. */
#include "lib/common.h"

#include "db/db.h"
#include "http/app.h"
#include "lib/jsonx.h"
#include "routes/health.h"
#include "routes/schemas.h"

static const struct schema num = {.type = SCHEMA_NUMBER};

static const struct schema_prop health_props[] = {
    {"status", &(const struct schema){.type = SCHEMA_STRING, .example = "\"ok\""}, true},
    {"version", &schemas_str, true},
    {"uptime", &(const struct schema){.type = SCHEMA_NUMBER, .description = "Seconds since start"},
     true},
    {"timestamp", &schemas_datetime, true},
    {0},
};
static const struct schema health_schema = {
    .type = SCHEMA_OBJECT, .ref = "Health", .props = health_props};

static const struct schema_prop check_props[] = {
    {"status",
     &(const struct schema){.type = SCHEMA_STRING,
                            .enum_values = (const char *const[]){"up", "down", NULL}},
     true},
    {"latencyMs", &num, false},
    {"error", &schemas_str, false},
    {0},
};
static const struct schema check_schema = {.type = SCHEMA_OBJECT, .props = check_props};
static const struct schema_prop checks_props[] = {{"database", &check_schema, true}, {0}};
static const struct schema_prop ready_props[] = {
    {"status",
     &(const struct schema){.type = SCHEMA_STRING,
                            .enum_values = (const char *const[]){"ready", "unavailable", NULL}},
     true},
    {"checks", &(const struct schema){.type = SCHEMA_OBJECT, .props = checks_props}, true},
    {"timestamp", &schemas_datetime, true},
    {0},
};
static const struct schema ready_schema = {
    .type = SCHEMA_OBJECT, .ref = "Readiness", .props = ready_props};

static int health(struct ctx *c)
{
    char ts[48];
    zy_iso_now(ts);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string("ok"));
    json_object_set_new(o, "version", json_string(ZYGO_VERSION));
    json_object_set_new(o, "uptime",
                        json_real((double)(long long)(app_uptime_s(c->app) * 1000) / 1000.0));
    json_object_set_new(o, "timestamp", json_string(ts));
    ctx_json(c, 200, o);
    return 0;
}

static int ready(struct ctx *c)
{
    char reason[256] = "";
    char ts[48];
    uint64_t t0 = zy_now_ns();
    int rc = db_ping(app_db(c->app), reason, sizeof(reason));
    double ms = (double)(zy_now_ns() - t0) / 1e6;
    json_t *db = json_object();
    json_object_set_new(db, "status", json_string(rc == 0 ? "up" : "down"));
    json_object_set_new(db, "latencyMs", json_real((double)(long long)(ms * 1000) / 1000.0));
    if (rc != 0)
        json_object_set_new(db, "error", jx_str(reason));
    json_t *checks = json_object();
    json_object_set_new(checks, "database", db);
    zy_iso_now(ts);
    json_t *o = json_object();
    json_object_set_new(o, "status", json_string(rc == 0 ? "ready" : "unavailable"));
    json_object_set_new(o, "checks", checks);
    json_object_set_new(o, "timestamp", json_string(ts));
    if (rc != 0)
        ctx_set_header(c, "Retry-After", "5");
    ctx_json(c, rc == 0 ? 200 : 503, o);
    return 0;
}

static const struct route routes[] = {
    {
        .method = HTTP_GET,
        .path = "/health",
        .handler = health,
        .summary = "Liveness",
        .description = "Answers as long as the process serves HTTP.",
        .tag = "System",
        .operation_id = "getHealth",
        .responses = (const struct route_response[]){{200, "Alive", &health_schema}, {0}},
        .flags = ROUTE_INLINE,
    },
    {
        .method = HTTP_GET,
        .path = "/health/ready",
        .handler = ready,
        .summary = "Readiness",
        .description = "Checks the database; 503 with the reason when it cannot serve.",
        .tag = "System",
        .operation_id = "getReadiness",
        .responses = (const struct route_response[]){{200, "Ready", &ready_schema},
                                                     {503, "Not ready", &ready_schema},
                                                     {0}},
    },
};

const struct route_group health_routes = {
    .prefix = "",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "Health, readiness and the API description.",
};
