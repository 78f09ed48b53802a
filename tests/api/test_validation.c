/* The validate phase and the error handler, on a route table written for the test: every
 * schema target, every 400 class, and each domain error mapped to the envelope. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "lib/jsonx.h"
#include "support.h"

static const struct schema uuid_s = {.type = SCHEMA_STRING, .format = SCHEMA_FMT_UUID};
static const struct schema_prop id_props[] = {{"id", &uuid_s, true}, {0}};
static const struct schema params_s = {.type = SCHEMA_OBJECT, .props = id_props};

static const struct schema_prop query_props[] = {
    {"page",
     &(const struct schema){
         .type = SCHEMA_INTEGER, .coerce = true, .has_min = true, .min = 1, .default_json = "1"}},
    {"limit", &(const struct schema){.type = SCHEMA_INTEGER,
                                     .coerce = true,
                                     .has_min = true,
                                     .min = 1,
                                     .has_max = true,
                                     .max = 100,
                                     .default_json = "20"}},
    {"status", &(const struct schema){.type = SCHEMA_STRING,
                                      .enum_values = (const char *const[]){"active", "pending",
                                                                           "suspended", NULL}}},
    {0},
};
static const struct schema query_s = {.type = SCHEMA_OBJECT, .props = query_props};

static const struct schema_prop tag_props[] = {
    {"name", &(const struct schema){.type = SCHEMA_STRING, .has_min = true, .min = 1}, true},
    {0},
};
static const struct schema_prop body_props[] = {
    {"email", &(const struct schema){.type = SCHEMA_STRING, .format = SCHEMA_FMT_EMAIL}, true},
    {"name", &(const struct schema){.type = SCHEMA_STRING, .has_max = true, .max = 5}, true},
    {"tags", &(const struct schema){.type = SCHEMA_ARRAY,
                                    .items = &(const struct schema){.type = SCHEMA_OBJECT,
                                                                    .props = tag_props}}},
    {"role", &(const struct schema){.type = SCHEMA_STRING, .default_json = "\"member\""}},
    {0},
};
static const struct schema body_s = {.type = SCHEMA_OBJECT, .props = body_props};

static int echo(struct ctx *c)
{
    json_t *o = json_object();
    if (c->path_params)
        json_object_set(o, "params", c->path_params);
    if (c->query)
        json_object_set(o, "query", c->query);
    if (c->body)
        json_object_set(o, "body", c->body);
    ctx_json(c, 200, o);
    return 0;
}

static int fail_internal(struct ctx *c)
{
    return ctx_fail(c, ZY_E_INTERNAL, "secret: connection string postgres://u:hunter2@db");
}

static int fail_conflict(struct ctx *c)
{
    return ctx_fail(c, ZY_E_CONFLICT, "Email already registered");
}

static int fail_not_found(struct ctx *c)
{
    return ctx_fail(c, ZY_E_NOT_FOUND, "User with ID %s not found", ctx_param(c, "id"));
}

static int forget_to_answer(struct ctx *c)
{
    (void)c;
    return 0;
}

static const struct route routes[] = {
    {.method = HTTP_POST,
     .path = "/things/:id",
     .handler = echo,
     .params = &params_s,
     .query = &query_s,
     .body = &body_s},
    {.method = HTTP_GET, .path = "/things", .handler = echo, .query = &query_s},
    {.method = HTTP_GET, .path = "/boom", .handler = fail_internal},
    {.method = HTTP_GET, .path = "/conflict", .handler = fail_conflict},
    {.method = HTTP_GET, .path = "/users/:id", .handler = fail_not_found},
    {.method = HTTP_GET, .path = "/silent", .handler = forget_to_answer},
};
static const struct route_group group = {"/api/v1", routes, ARRAY_LEN(routes), NULL};

static struct tenv t;
static void setup(void)
{
    tenv_setup(&t, NULL, &group, 1);
}
static void teardown(void)
{
    tenv_teardown(&t);
}
TestSuite(validate, .init = setup, .fini = teardown);

#define UUID "0192f0c1-7a3b-7c4d-8e5f-0123456789ab"
static const char *const JSON_CT[] = {"Content-Type: application/json", NULL};

static json_t *call(const char *method, const char *target, const char *const *h, const char *body,
                    int want)
{
    struct ctx *c = app_request(t.app, method, target, h, body, body ? strlen(body) : 0);
    cr_assert_eq(c->res.status, want, "%s %s: %d %.*s", method, target, c->res.status,
                 (int)c->res.body_len, c->res.body);
    json_t *b = ctx_body_json(c);
    cr_assert_not_null(b);
    app_ctx_free(c);
    return b;
}

static const char *issue_field(json_t *b, size_t i, const char *f)
{
    return json_string_value(json_object_get(
        json_array_get(json_object_get(json_object_get(b, "details"), "issues"), i), f));
}

static size_t issue_count(json_t *b)
{
    return json_array_size(json_object_get(json_object_get(b, "details"), "issues"));
}

Test(validate, valid_request_with_defaults_and_coercion)
{
    json_t *b = call("POST", "/api/v1/things/" UUID "?page=3&utm_source=x", JSON_CT,
                     "{\"email\":\"a@b.co\",\"name\":\"Ann\",\"tags\":[{\"name\":\"x\"}]}", 200);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(b, "query"), "page")), 3);
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(b, "query"), "limit")), 20);
    cr_assert_null(json_object_get(json_object_get(b, "query"), "utm_source"));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "body"), "role")),
                     "member");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "params"), "id")), UUID);
    json_decref(b);
}

Test(validate, every_body_issue_listed)
{
    json_t *b = call("POST", "/api/v1/things/" UUID, JSON_CT,
                     "{\"email\":\"nope\",\"name\":\"far too long\",\"tags\":[{\"name\":\"\"}],"
                     "\"extra\":1}",
                     400);
    cr_assert_str_eq(json_string_value(json_object_get(b, "error")), "VALIDATION_ERROR");
    cr_assert_str_eq(json_string_value(json_object_get(b, "message")), "Request validation failed");
    cr_assert_eq(issue_count(b), 4);
    bool seen[4] = {0};
    for (size_t i = 0; i < 4; i++) {
        const char *p = issue_field(b, i, "path"), *code = issue_field(b, i, "code");
        cr_assert_not_null(issue_field(b, i, "message"));
        if (strcmp(p, "email") == 0 && strcmp(code, "invalid_string") == 0)
            seen[0] = true;
        if (strcmp(p, "name") == 0 && strcmp(code, "too_big") == 0)
            seen[1] = true;
        if (strcmp(p, "tags.0.name") == 0 && strcmp(code, "too_small") == 0)
            seen[2] = true;
        if (strcmp(code, "unrecognized_keys") == 0)
            seen[3] = true;
    }
    cr_assert(seen[0] && seen[1] && seen[2] && seen[3]);
    json_decref(b);
}

Test(validate, missing_required_and_wrong_types)
{
    json_t *b = call("POST", "/api/v1/things/" UUID, JSON_CT, "{\"name\":5}", 400);
    cr_assert_eq(issue_count(b), 2);
    json_decref(b);
    b = call("POST", "/api/v1/things/" UUID, JSON_CT, "[1,2]", 400);
    cr_assert_str_eq(issue_field(b, 0, "code"), "invalid_type");
    json_decref(b);
    b = call("POST", "/api/v1/things/" UUID, JSON_CT, NULL, 400);
    cr_assert_str_eq(issue_field(b, 0, "message"), "Required");
    json_decref(b);
}

Test(validate, path_and_query_issues)
{
    json_t *b = call("POST", "/api/v1/things/not-a-uuid", JSON_CT, "{}", 400);
    cr_assert_str_eq(issue_field(b, 0, "path"), "id");
    cr_assert_str_eq(issue_field(b, 0, "code"), "invalid_string");
    json_decref(b);
    b = call("GET", "/api/v1/things?page=0&limit=abc&status=gone", NULL, NULL, 400);
    cr_assert_eq(issue_count(b), 3);
    json_decref(b);
    b = call("GET", "/api/v1/things?limit=101", NULL, NULL, 400);
    cr_assert_str_eq(issue_field(b, 0, "code"), "too_big");
    json_decref(b);
}

Test(validate, malformed_json)
{
    json_t *b = call("POST", "/api/v1/things/" UUID, JSON_CT, "{\"email\": ", 400);
    cr_assert_str_eq(json_string_value(json_object_get(b, "error")), "HTTP_ERROR");
    cr_assert_str_eq(json_string_value(json_object_get(b, "message")),
                     "Malformed JSON in request body");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "details"), "reason")),
                     "malformed_json");
    json_decref(b);
    b = call("POST", "/api/v1/things/" UUID, JSON_CT, "{\"a\":1,\"a\":2}", 400);
    cr_assert_str_eq(json_string_value(json_object_get(b, "message")),
                     "Malformed JSON in request body");
    json_decref(b);
}

Test(validate, wrong_content_type)
{
    const char *const h[] = {"Content-Type: text/plain", NULL};
    json_t *b = call("POST", "/api/v1/things/" UUID, h, "{}", 400);
    cr_assert_str_eq(json_string_value(json_object_get(b, "error")), "HTTP_ERROR");
    cr_assert_not_null(strstr(json_string_value(json_object_get(b, "message")), "Content-Type"));
    json_decref(b);
    const char *const ok[] = {"Content-Type: application/json; charset=utf-8", NULL};
    b = call("POST", "/api/v1/things/" UUID, ok, "{\"email\":\"a@b.co\",\"name\":\"x\"}", 200);
    json_decref(b);
}

Test(validate, invalid_utf8)
{
    json_t *b = call("POST", "/api/v1/things/" UUID, JSON_CT, "{\"name\":\"\xff\xfe\"}", 400);
    cr_assert_str_eq(json_string_value(json_object_get(b, "message")),
                     "Request body is not valid UTF-8");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(b, "details"), "position")), 9);
    json_decref(b);
    /* an overlong encoding of '/' and a lone surrogate are rejected too */
    b = call("POST", "/api/v1/things/" UUID, JSON_CT, "{\"name\":\"\xc0\xaf\"}", 400);
    json_decref(b);
    b = call("POST", "/api/v1/things/" UUID, JSON_CT, "{\"name\":\"\xed\xa0\x80\"}", 400);
    json_decref(b);
}

Test(validate, internal_error_never_leaks)
{
    struct ctx *c = app_request(t.app, "GET", "/api/v1/boom", NULL, NULL, 0);
    cr_assert_eq(c->res.status, 500);
    cr_assert_null(strstr(c->res.body, "hunter2"));
    json_t *b = ctx_body_json(c);
    cr_assert_str_eq(json_string_value(json_object_get(b, "error")), "INTERNAL_ERROR");
    cr_assert_str_eq(json_string_value(json_object_get(b, "message")),
                     "An unexpected error occurred");
    json_decref(b);
    app_ctx_free(c);
}

Test(validate, domain_errors_map_to_codes)
{
    json_t *b = call("GET", "/api/v1/conflict", NULL, NULL, 409);
    cr_assert_str_eq(json_string_value(json_object_get(b, "error")), "RESOURCE_CONFLICT");
    json_decref(b);
    b = call("GET", "/api/v1/users/abc", NULL, NULL, 404);
    cr_assert_str_eq(json_string_value(json_object_get(b, "error")), "RESOURCE_NOT_FOUND");
    cr_assert_str_eq(json_string_value(json_object_get(b, "message")),
                     "User with ID abc not found");
    json_decref(b);
    b = call("GET", "/api/v1/silent", NULL, NULL, 500);
    cr_assert_str_eq(json_string_value(json_object_get(b, "error")), "INTERNAL_ERROR");
    json_decref(b);
}

Test(validate, percent_decoded_path_and_query)
{
    json_t *b = call("GET", "/api/v1/things?status=act%69ve&page=%32", NULL, NULL, 200);
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(b, "query"), "status")),
                     "active");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(b, "query"), "page")), 2);
    json_decref(b);
    b = call("GET", "/api/v1/things/%ff%fe", NULL, NULL, 405);
    json_decref(b);
}
