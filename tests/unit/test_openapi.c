/*
 * test_openapi.c — the OpenAPI document generated from a sample route table: its structure,
 * then the real validator (@redocly/cli lint, recommended ruleset, zero errors and warnings).
 *
 * The validator is installed by `npm install --prefix tests/openapi --no-audit --no-fund`;
 * paths are relative to ZYGO_ROOT (default "."), the repository root.
 */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http/openapi.h"
#include "support.h"
#include "http/router.h"
#include "lib/schema.h"

extern char **environ;

static int dummy_handler(struct ctx *c)
{
    (void)c;
    return 0;
}

/* ---- the sample API ---------------------------------------------------------------------- */

static const struct schema uuid_s = {
    .type = SCHEMA_STRING, .format = SCHEMA_FMT_UUID, .description = "User ID"};
static const struct schema email_s = {
    .type = SCHEMA_STRING, .format = SCHEMA_FMT_EMAIL, .example = "\"ada@zygo.tech\""};
static const struct schema name_s = {
    .type = SCHEMA_STRING, .has_min = true, .min = 1, .has_max = true, .max = 100};
static const char *const statuses[] = {"active", "pending", "suspended", NULL};
static const struct schema status_s = {.type = SCHEMA_STRING, .enum_values = statuses};
static const struct schema time_s = {.type = SCHEMA_STRING, .format = SCHEMA_FMT_DATETIME};

static const struct schema user_s = {
    .type = SCHEMA_OBJECT,
    .ref = "User",
    .description = "A user of the tenant",
    .props =
        (const struct schema_prop[]){
            {"id", &uuid_s, true},
            {"email", &email_s, true},
            {"name", &(const struct schema){.type = SCHEMA_STRING, .nullable = true}, true},
            {"status", &status_s, true},
            {"createdAt", &time_s, true},
            {NULL},
        },
};

static const struct schema pagination_s = {
    .type = SCHEMA_OBJECT,
    .ref = "Pagination",
    .props =
        (const struct schema_prop[]){
            {"page", &(const struct schema){.type = SCHEMA_INTEGER, .has_min = true, .min = 1},
             true},
            {"limit", &(const struct schema){.type = SCHEMA_INTEGER}, true},
            {"total", &(const struct schema){.type = SCHEMA_INTEGER}, true},
            {"totalPages", &(const struct schema){.type = SCHEMA_INTEGER}, true},
            {NULL},
        },
};

static const struct schema user_list_s = {
    .type = SCHEMA_OBJECT,
    .props =
        (const struct schema_prop[]){
            {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &user_s}, true},
            {"pagination", &pagination_s, true},
            {NULL},
        },
};

static const struct schema list_query_s = {
    .type = SCHEMA_OBJECT,
    .props =
        (const struct schema_prop[]){
            {"search",
             &(const struct schema){.type = SCHEMA_STRING,
                                    .description = "Name or email contains",
                                    .example = "\"john\""},
             false},
            {"status", &status_s, false},
            {"page",
             &(const struct schema){.type = SCHEMA_INTEGER,
                                    .coerce = true,
                                    .has_min = true,
                                    .min = 1,
                                    .default_json = "1"},
             false},
            {"limit",
             &(const struct schema){.type = SCHEMA_INTEGER,
                                    .coerce = true,
                                    .has_min = true,
                                    .min = 1,
                                    .has_max = true,
                                    .max = 100,
                                    .default_json = "20"},
             false},
            {NULL},
        },
};

static const struct schema create_user_s = {
    .type = SCHEMA_OBJECT,
    .ref = "CreateUser",
    .props =
        (const struct schema_prop[]){
            {"email", &email_s, true},
            {"name", &name_s, true},
            {"role", &(const struct schema){.type = SCHEMA_STRING, .default_json = "\"member\""},
             false},
            {NULL},
        },
};

static const struct schema id_params_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"id", &uuid_s, true}, {NULL}},
};

static const struct schema login_s = {
    .type = SCHEMA_OBJECT,
    .ref = "LoginRequest",
    .props =
        (const struct schema_prop[]){
            {"email", &email_s, true},
            {"password", &(const struct schema){.type = SCHEMA_STRING, .has_min = true, .min = 8},
             true},
            {NULL},
        },
};

static const struct schema health_s = {
    .type = SCHEMA_OBJECT,
    .props =
        (const struct schema_prop[]){
            {"status", &(const struct schema){.type = SCHEMA_STRING, .example = "\"ok\""}, true},
            {NULL},
        },
};

/* Only reachable from the hidden route: must not appear in components. */
static const struct schema secret_s = {.type = SCHEMA_OBJECT, .ref = "HiddenThing"};

static const struct route root_routes[] = {
    {.method = HTTP_GET,
     .path = "/health",
     .handler = dummy_handler,
     .summary = "Health check",
     .tag = "System",
     .operation_id = "getHealth",
     .responses = (const struct route_response[]){{200, "Service is up", &health_s, NULL}, {0}}},
    {.method = HTTP_GET,
     .path = "/",
     .handler = dummy_handler,
     .summary = "Landing page",
     .tag = "System",
     .responses = (const struct route_response[]){{200, "HTML page", NULL, "text/html"}, {0}}},
    {.method = HTTP_GET,
     .path = "/internal/debug",
     .handler = dummy_handler,
     .tag = "Internal",
     .summary = "Debug dump",
     .flags = ROUTE_HIDDEN,
     .responses = (const struct route_response[]){{200, "Dump", &secret_s, NULL}, {0}}},
};

static const struct route user_routes[] = {
    {.method = HTTP_GET,
     .path = "/users",
     .handler = dummy_handler,
     .summary = "List users",
     .description = "Get a paginated list of users in the tenant",
     .tag = "Users",
     .query = &list_query_s,
     .auth = ROUTE_AUTH,
     .permission = "canViewUsers",
     .responses = (const struct route_response[]){{200, "List of users", &user_list_s, NULL}, {0}}},
    {.method = HTTP_POST,
     .path = "/users",
     .handler = dummy_handler,
     .summary = "Create a user",
     .tag = "Users",
     .body = &create_user_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageUsers",
     .responses = (const struct route_response[]){{201, "Created", &user_s, NULL},
                                                  {409, "Email already taken", NULL, NULL},
                                                  {0}}},
    {.method = HTTP_GET,
     .path = "/users/:id",
     .handler = dummy_handler,
     .summary = "Get a user",
     .tag = "Users",
     .params = &id_params_s,
     .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{200, "The user", &user_s, NULL},
                                                  {404, "No such user", NULL, NULL},
                                                  {0}}},
    /* no params schema: the generator still declares {id} as a string */
    {.method = HTTP_DELETE,
     .path = "/users/:id",
     .handler = dummy_handler,
     .summary = "Delete a user",
     .tag = "Users",
     .auth = ROUTE_AUTH,
     .permission = "canManageUsers",
     .responses = (const struct route_response[]){{204, "Deleted", NULL, NULL}, {0}}},
};

static const struct route auth_routes[] = {
    {.method = HTTP_POST,
     .path = "/auth/login",
     .handler = dummy_handler,
     .summary = "Log in",
     .tag = "Auth",
     .body = &login_s,
     .operation_id = "login",
     .responses = (const struct route_response[]){{200, "Tokens", NULL, NULL}, {0}}},
    /* same operationId by mistake: made unique */
    {.method = HTTP_GET,
     .path = "/auth/session",
     .handler = dummy_handler,
     .summary = "Current session",
     .tag = "Auth",
     .operation_id = "login",
     .auth = ROUTE_AUTH_OPTIONAL,
     .responses = (const struct route_response[]){{200, "Session", NULL, NULL}, {0}}},
};

static const struct route_group groups[] = {
    {"", root_routes, ARRAY_LEN(root_routes), "Service health and pages"},
    {"/api/v1", user_routes, ARRAY_LEN(user_routes), "Users of a tenant"},
    {"/api/v1", auth_routes, ARRAY_LEN(auth_routes), "Sign-in and sessions"},
};

static const struct openapi_info info = {
    .title = "Zygo API",
    .version = "1.0.0",
    .description = "Multi-tenant backend",
    .server_url = "https://api.zygo.tech",
};

/* ---- helpers ----------------------------------------------------------------------------- */

static json_t *doc;

static void setup(void)
{
    doc = openapi_document(groups, ARRAY_LEN(groups), &info);
    cr_assert_not_null(doc);
}

static void teardown(void)
{
    json_decref(doc);
}

TestSuite(openapi, .init = setup, .fini = teardown);

/* doc.paths[path][method] */
static json_t *op(const char *path, const char *method)
{
    json_t *o = json_object_get(json_object_get(json_object_get(doc, "paths"), path), method);
    cr_assert_not_null(o, "no operation %s %s", method, path);
    return o;
}

static const char *str_at(json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

static json_t *param(json_t *operation, const char *name)
{
    size_t i;
    json_t *p;
    json_array_foreach(json_object_get(operation, "parameters"), i, p) {
        if (strcmp(str_at(p, "name"), name) == 0)
            return p;
    }
    cr_assert_fail("no parameter %s", name);
    return NULL;
}

/* The $ref of responses[status], or NULL when it is written inline. */
static const char *response_ref(json_t *operation, const char *status)
{
    json_t *r = json_object_get(json_object_get(operation, "responses"), status);
    cr_assert_not_null(r, "no %s response", status);
    return str_at(r, "$ref");
}

static void assert_json(json_t *got, const char *want)
{
    json_t *w = json_loads(want, 0, NULL);
    cr_assert_not_null(w, "bad expected JSON %s", want);
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    bool eq = json_equal(got, w);
    json_decref(w);
    cr_assert(eq, "got %s, want %s", g, want);
    free(g);
}

/* ---- structure --------------------------------------------------------------------------- */

Test(openapi, header_and_servers)
{
    cr_assert_str_eq(str_at(doc, "openapi"), "3.1.0");
    json_t *i = json_object_get(doc, "info");
    cr_assert_str_eq(str_at(i, "title"), "Zygo API");
    cr_assert_str_eq(str_at(i, "version"), "1.0.0");
    cr_assert_str_eq(str_at(i, "description"), "Multi-tenant backend");
    assert_json(json_object_get(i, "license"), "{\"name\":\"MIT\",\"identifier\":\"MIT\"}");
    assert_json(json_object_get(doc, "servers"), "[{\"url\":\"https://api.zygo.tech\"}]");
}

Test(openapi, paths_are_templated)
{
    json_t *paths = json_object_get(doc, "paths");
    cr_assert_not_null(json_object_get(paths, "/api/v1/users/{id}"));
    cr_assert_null(json_object_get(paths, "/api/v1/users/:id"));
    cr_assert_not_null(json_object_get(paths, "/health"));
    cr_assert_not_null(json_object_get(paths, "/"));
    /* both methods of one path share the Path Item */
    cr_assert_not_null(op("/api/v1/users/{id}", "get"));
    cr_assert_not_null(op("/api/v1/users/{id}", "delete"));
    cr_assert_not_null(op("/api/v1/users", "post"));
}

Test(openapi, hidden_route_left_out)
{
    cr_assert_null(json_object_get(json_object_get(doc, "paths"), "/internal/debug"));
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    cr_assert_null(json_object_get(schemas, "HiddenThing"));
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(doc, "tags"), i, t) {
        cr_assert_str_neq(str_at(t, "name"), "Internal");
    }
}

Test(openapi, query_parameters)
{
    json_t *o = op("/api/v1/users", "get");
    cr_assert_eq(json_array_size(json_object_get(o, "parameters")), 4);
    assert_json(param(o, "page"), "{\"name\":\"page\",\"in\":\"query\",\"schema\":"
                                  "{\"type\":\"integer\",\"minimum\":1,\"default\":1}}");
    assert_json(param(o, "limit"),
                "{\"name\":\"limit\",\"in\":\"query\",\"schema\":{\"type\":\"integer\","
                "\"minimum\":1,\"maximum\":100,\"default\":20}}");
    assert_json(param(o, "search"),
                "{\"name\":\"search\",\"in\":\"query\",\"description\":\"Name or email "
                "contains\",\"schema\":{\"type\":\"string\",\"description\":\"Name or email "
                "contains\",\"examples\":[\"john\"]}}");
    assert_json(json_object_get(param(o, "status"), "schema"),
                "{\"type\":\"string\",\"enum\":[\"active\",\"pending\",\"suspended\"]}");
}

Test(openapi, path_parameters)
{
    assert_json(param(op("/api/v1/users/{id}", "get"), "id"),
                "{\"name\":\"id\",\"in\":\"path\",\"required\":true,\"description\":\"User "
                "ID\",\"schema\":{\"type\":\"string\",\"format\":\"uuid\",\"description\":"
                "\"User ID\"}}");
    assert_json(param(op("/api/v1/users/{id}", "delete"), "id"),
                "{\"name\":\"id\",\"in\":\"path\",\"required\":true,"
                "\"schema\":{\"type\":\"string\"}}");
    cr_assert_null(json_object_get(op("/health", "get"), "parameters"));
}

Test(openapi, request_body)
{
    assert_json(json_object_get(op("/api/v1/users", "post"), "requestBody"),
                "{\"required\":true,\"content\":{\"application/json\":{\"schema\":"
                "{\"$ref\":\"#/components/schemas/CreateUser\"}}}}");
    cr_assert_null(json_object_get(op("/api/v1/users", "get"), "requestBody"));
}

Test(openapi, security)
{
    assert_json(json_object_get(op("/health", "get"), "security"), "[]");
    assert_json(json_object_get(op("/api/v1/users", "get"), "security"), "[{\"bearerAuth\":[]}]");
    assert_json(json_object_get(op("/api/v1/auth/session", "get"), "security"),
                "[{\"bearerAuth\":[]},{}]");
    assert_json(json_object_get(json_object_get(doc, "components"), "securitySchemes"),
                "{\"bearerAuth\":{\"type\":\"http\",\"scheme\":\"bearer\","
                "\"bearerFormat\":\"JWT\"}}");
    cr_assert_str_eq(str_at(op("/api/v1/users", "post"), "x-permission"), "canManageUsers");
}

Test(openapi, standard_error_responses)
{
    /* authenticated, permission, query schema */
    json_t *list = op("/api/v1/users", "get");
    cr_assert_str_eq(response_ref(list, "400"), "#/components/responses/ValidationError");
    cr_assert_str_eq(response_ref(list, "401"), "#/components/responses/Unauthorized");
    cr_assert_str_eq(response_ref(list, "403"), "#/components/responses/Forbidden");
    cr_assert_str_eq(response_ref(list, "429"), "#/components/responses/RateLimited");
    cr_assert_str_eq(response_ref(list, "500"), "#/components/responses/InternalError");
    cr_assert_null(json_object_get(json_object_get(list, "responses"), "404"));
    /* responses are ordered by status */
    const char *key, *prev = "";
    json_t *v;
    json_object_foreach(json_object_get(list, "responses"), key, v) {
        cr_assert_gt(strcmp(key, prev), 0, "%s after %s", key, prev);
        prev = key;
    }

    /* public, no schema: only 429 and 500 besides its own */
    json_t *health = json_object_get(op("/health", "get"), "responses");
    cr_assert_eq(json_object_size(health), 3);
    cr_assert_not_null(json_object_get(health, "200"));

    /* authenticated without permission: 401 but no 403 */
    json_t *get = op("/api/v1/users/{id}", "get");
    cr_assert_not_null(response_ref(get, "401"));
    cr_assert_null(json_object_get(json_object_get(get, "responses"), "403"));
    /* the route's own 404 wins, with the error envelope as body */
    assert_json(json_object_get(json_object_get(get, "responses"), "404"),
                "{\"description\":\"No such user\",\"content\":{\"application/json\":"
                "{\"schema\":{\"$ref\":\"#/components/schemas/ErrorResponse\"}}}}");
    /* a path parameter without schema still gets the shared 404, and no 400 */
    json_t *del = op("/api/v1/users/{id}", "delete");
    cr_assert_str_eq(response_ref(del, "404"), "#/components/responses/NotFound");
    cr_assert_null(json_object_get(json_object_get(del, "responses"), "400"));

    json_t *shared = json_object_get(json_object_get(doc, "components"), "responses");
    cr_assert_eq(json_object_size(shared), 6);
    json_object_foreach(shared, key, v) {
        json_t *media = json_object_get(json_object_get(v, "content"), "application/json");
        cr_assert_str_eq(str_at(json_object_get(media, "schema"), "$ref"),
                         "#/components/schemas/ErrorResponse");
    }
}

Test(openapi, response_bodies)
{
    json_t *r = json_object_get(json_object_get(op("/", "get"), "responses"), "200");
    assert_json(r, "{\"description\":\"HTML page\",\"content\":{\"text/html\":"
                   "{\"schema\":{\"type\":\"string\"}}}}");
    r = json_object_get(json_object_get(op("/api/v1/users", "post"), "responses"), "201");
    assert_json(r, "{\"description\":\"Created\",\"content\":{\"application/json\":"
                   "{\"schema\":{\"$ref\":\"#/components/schemas/User\"}}}}");
    r = json_object_get(json_object_get(op("/api/v1/users/{id}", "delete"), "responses"), "204");
    assert_json(r, "{\"description\":\"Deleted\"}");
    /* unnamed response schema inline, named parts by $ref */
    r = json_object_get(json_object_get(op("/api/v1/users", "get"), "responses"), "200");
    json_t *s = json_object_get(json_object_get(json_object_get(r, "content"), "application/json"),
                                "schema");
    assert_json(json_object_get(s, "properties"),
                "{\"data\":{\"type\":\"array\",\"items\":{\"$ref\":\"#/components/schemas/"
                "User\"}},\"pagination\":{\"$ref\":\"#/components/schemas/Pagination\"}}");
}

Test(openapi, components_schemas)
{
    json_t *schemas = json_object_get(json_object_get(doc, "components"), "schemas");
    const char *want[] = {"ErrorResponse", "ValidationIssue", "User",
                          "Pagination",    "CreateUser",      "LoginRequest"};
    for (size_t i = 0; i < ARRAY_LEN(want); i++)
        cr_assert_not_null(json_object_get(schemas, want[i]), "missing %s", want[i]);
    cr_assert_eq(json_object_size(schemas), ARRAY_LEN(want));
    json_t *user = json_object_get(schemas, "User");
    cr_assert_null(json_object_get(user, "$ref"), "component must be written out");
    assert_json(json_object_get(json_object_get(user, "properties"), "name"),
                "{\"type\":[\"string\",\"null\"]}");

    json_t *err = json_object_get(schemas, "ErrorResponse");
    assert_json(json_object_get(err, "required"),
                "[\"error\",\"message\",\"statusCode\",\"timestamp\",\"requestId\"]");
    json_t *props = json_object_get(err, "properties");
    assert_json(json_object_get(json_object_get(props, "error"), "enum"),
                "[\"VALIDATION_ERROR\",\"RESOURCE_NOT_FOUND\",\"AUTH_UNAUTHORIZED\","
                "\"AUTH_FORBIDDEN\",\"RESOURCE_CONFLICT\",\"RATE_LIMIT_EXCEEDED\","
                "\"ROUTE_NOT_FOUND\",\"HTTP_ERROR\",\"INTERNAL_ERROR\"]");
    cr_assert_str_eq(str_at(json_object_get(props, "timestamp"), "format"), "date-time");
    json_t *issues =
        json_object_get(json_object_get(json_object_get(props, "details"), "properties"), "issues");
    assert_json(json_object_get(issues, "items"),
                "{\"$ref\":\"#/components/schemas/ValidationIssue\"}");
}

Test(openapi, tags)
{
    assert_json(json_object_get(doc, "tags"),
                "[{\"name\":\"System\",\"description\":\"Service health and pages\"},"
                "{\"name\":\"Users\",\"description\":\"Users of a tenant\"},"
                "{\"name\":\"Auth\",\"description\":\"Sign-in and sessions\"}]");
    assert_json(json_object_get(op("/api/v1/users", "get"), "tags"), "[\"Users\"]");
}

Test(openapi, operation_ids_unique)
{
    cr_assert_str_eq(str_at(op("/health", "get"), "operationId"), "getHealth");
    cr_assert_str_eq(str_at(op("/api/v1/users/{id}", "get"), "operationId"), "getApiV1UsersById");
    cr_assert_str_eq(str_at(op("/", "get"), "operationId"), "getRoot");
    cr_assert_str_eq(str_at(op("/api/v1/auth/login", "post"), "operationId"), "login");
    cr_assert_str_eq(str_at(op("/api/v1/auth/session", "get"), "operationId"), "login_2");

    json_t *seen = json_object();
    const char *path, *method;
    json_t *item, *o;
    size_t count = 0;
    json_object_foreach(json_object_get(doc, "paths"), path, item) {
        json_object_foreach(item, method, o) {
            const char *id = str_at(o, "operationId");
            cr_assert_not_null(id);
            cr_assert_null(json_object_get(seen, id), "duplicate operationId %s", id);
            json_object_set_new(seen, id, json_true());
            count++;
        }
    }
    json_decref(seen);
    cr_assert_eq(count, 8); /* every route but the hidden one */
}

Test(openapi, deterministic)
{
    json_t *again = openapi_document(groups, ARRAY_LEN(groups), &info);
    char *a = json_dumps(doc, JSON_COMPACT), *b = json_dumps(again, JSON_COMPACT);
    cr_assert_str_eq(a, b);
    free(a);
    free(b);
    json_decref(again);
}

Test(openapi, empty_table)
{
    static const struct openapi_info bare = {.title = "t", .version = "0"};
    json_t *d = openapi_document(NULL, 0, &bare);
    assert_json(json_object_get(d, "paths"), "{}");
    cr_assert_null(json_object_get(d, "servers"));
    cr_assert_null(json_object_get(d, "tags"));
    /* the document-wide default names bearerAuth, so the scheme is never unused */
    assert_json(json_object_get(d, "security"), "[{\"bearerAuth\":[]}]");
    cr_assert_not_null(json_object_get(
        json_object_get(json_object_get(d, "components"), "securitySchemes"), "bearerAuth"));
    json_decref(d);
}

/* ---- the real validator ------------------------------------------------------------------ */

Test(openapi, redocly_lint_recommended)
{
    char doc_path[] = "/tmp/zygo-openapi-XXXXXX.json";
    int fd = mkstemps(doc_path, 5);
    cr_assert_geq(fd, 0);
    close(fd);
    cr_assert_eq(json_dump_file(doc, doc_path, JSON_INDENT(2)), 0);
    redocly_assert_clean(doc_path);
    unlink(doc_path);
}
