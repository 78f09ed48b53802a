/* users.c — see users.h. */
#include "lib/common.h"

#include "http/app.h"
#include "repos/users.h"
#include "routes/users.h"

static const struct schema user_s = {
    .type = SCHEMA_OBJECT,
    .ref = "User",
    .props = (const struct schema_prop[]){
        {"id", &(const struct schema){.type = SCHEMA_STRING, .format = SCHEMA_FMT_UUID}, true},
        {"tenantId", &(const struct schema){.type = SCHEMA_STRING, .format = SCHEMA_FMT_UUID},
         true},
        {"email", &(const struct schema){.type = SCHEMA_STRING, .format = SCHEMA_FMT_EMAIL}, true},
        {"firstName", &(const struct schema){.type = SCHEMA_STRING, .nullable = true}, true},
        {"lastName", &(const struct schema){.type = SCHEMA_STRING, .nullable = true}, true},
        {"displayName", &(const struct schema){.type = SCHEMA_STRING, .nullable = true}, true},
        {"avatar", &(const struct schema){.type = SCHEMA_STRING, .nullable = true}, true},
        {"phone", &(const struct schema){.type = SCHEMA_STRING, .nullable = true}, true},
        {"status", &(const struct schema){.type = SCHEMA_STRING}, true},
        {"emailVerified", &(const struct schema){.type = SCHEMA_BOOLEAN}, true},
        {"phoneVerified", &(const struct schema){.type = SCHEMA_BOOLEAN}, true},
        {"mfaEnabled", &(const struct schema){.type = SCHEMA_BOOLEAN}, true},
        {"lastLoginAt", &(const struct schema){.type = SCHEMA_STRING,
                                               .format = SCHEMA_FMT_DATETIME, .nullable = true},
         true},
        {"createdAt", &(const struct schema){.type = SCHEMA_STRING,
                                             .format = SCHEMA_FMT_DATETIME},
         true},
        {"updatedAt", &(const struct schema){.type = SCHEMA_STRING,
                                             .format = SCHEMA_FMT_DATETIME},
         true},
        {NULL}}};

static const struct schema pagination_s = {
    .type = SCHEMA_OBJECT,
    .ref = "Pagination",
    .props = (const struct schema_prop[]){
        {"page", &(const struct schema){.type = SCHEMA_INTEGER}, true},
        {"limit", &(const struct schema){.type = SCHEMA_INTEGER}, true},
        {"total", &(const struct schema){.type = SCHEMA_INTEGER}, true},
        {"totalPages", &(const struct schema){.type = SCHEMA_INTEGER}, true},
        {NULL}}};

static const struct schema user_list_s = {
    .type = SCHEMA_OBJECT,
    .ref = "UserList",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &user_s}, true},
        {"pagination", &pagination_s, true},
        {NULL}}};

/* The specification's querySchema for GET /users. */
static const struct schema list_query_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"search", &(const struct schema){.type = SCHEMA_STRING, .has_max = true, .max = 100,
                                          .example = "\"john\""},
         false},
        {"status", &(const struct schema){.type = SCHEMA_STRING,
                                          .enum_values = (const char *const[]){"active", "pending",
                                                                               "suspended", NULL}},
         false},
        {"page", &(const struct schema){.type = SCHEMA_INTEGER, .coerce = true, .has_min = true,
                                        .min = 1, .has_max = true, .max = 1000000,
                                        .default_json = "1"},
         false},
        {"limit", &(const struct schema){.type = SCHEMA_INTEGER, .coerce = true, .has_min = true,
                                         .min = 1, .has_max = true, .max = 100,
                                         .default_json = "20"},
         false},
        {NULL}}};

static const struct schema id_params_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"id", &(const struct schema){.type = SCHEMA_STRING, .format = SCHEMA_FMT_UUID}, true},
        {NULL}}};

static int list_users(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    json_int_t page = json_integer_value(json_object_get(c->query, "page"));
    json_int_t limit = json_integer_value(json_object_get(c->query, "limit"));
    long long total;
    bool failed;
    json_t *data = users_list(db, c->tenant_id,
                              json_string_value(json_object_get(c->query, "search")),
                              json_string_value(json_object_get(c->query, "status")), limit,
                              (page - 1) * limit, &total, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    ctx_json(c, 200,
             json_pack("{s:o, s:{s:I, s:I, s:I, s:I}}", "data", data, "pagination", "page", page,
                       "limit", limit, "total", (json_int_t)total, "totalPages",
                       (json_int_t)((total + limit - 1) / limit)));
    return 0;
}

static int send_user(struct ctx *c, const char *id)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    bool failed;
    json_t *u = users_find_by_id(db, c->tenant_id, id, &failed);
    if (failed)
        return ctx_fail_db(c, db, NULL);
    if (!u) /* another tenant's user is as absent as a missing one: 404, never 403 */
        return ctx_fail(c, ZY_E_NOT_FOUND, "User with ID %s not found", id);
    ctx_json(c, 200, u);
    return 0;
}

static int get_me(struct ctx *c)
{
    return send_user(c, c->user->id);
}

static int get_user(struct ctx *c)
{
    return send_user(c, json_string_value(json_object_get(c->path_params, "id")));
}

static const struct route routes[] = {
    {.method = HTTP_GET, .path = "/users", .handler = list_users, .tag = "Users",
     .summary = "List users", .description = "Get a paginated list of users in the tenant",
     .operation_id = "listUsers", .query = &list_query_s, .auth = ROUTE_AUTH,
     .permission = "canViewUsers",
     .responses = (const struct route_response[]){{200, "List of users", &user_list_s}, {0}}},
    {.method = HTTP_GET, .path = "/users/me", .handler = get_me, .tag = "Users",
     .summary = "My profile", .operation_id = "getMe", .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{200, "The signed-in user", &user_s}, {0}}},
    {.method = HTTP_GET, .path = "/users/:id", .handler = get_user, .tag = "Users",
     .summary = "Get a user", .operation_id = "getUser", .params = &id_params_s,
     .auth = ROUTE_AUTH, .permission = "canViewUsers",
     .responses = (const struct route_response[]){{200, "The user", &user_s}, {0}}},
};

const struct route_group users_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "The tenant's users.",
};
