/* In-process API tests (Hono's app.request equivalent): the full middleware + router pipeline
 * on a real SQLite database, without a socket. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <regex.h>
#include <unistd.h>

#include "lib/uuid.h"
#include "support.h"

static struct tenv t;

static void setup(void)
{
    static const char *const extra[] = {"CORS_ORIGINS=https://app.zygo.tech,http://localhost:5173",
                                        NULL};
    tenv_setup(&t, extra, NULL, 0);
}

static void teardown(void)
{
    tenv_teardown(&t);
}

TestSuite(api, .init = setup, .fini = teardown);

static bool matches(const char *re, const char *s)
{
    regex_t r;
    cr_assert_eq(regcomp(&r, re, REG_EXTENDED | REG_NOSUB), 0);
    bool ok = s && regexec(&r, s, 0, NULL, 0) == 0;
    regfree(&r);
    return ok;
}

static const char *ISO_RE = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$";

/* Asserts the specification's error envelope and returns it (caller decrefs). */
static json_t *assert_envelope(struct ctx *c, int status, const char *code)
{
    cr_assert_eq(c->res.status, status, "status %d, want %d: %.*s", c->res.status, status,
                 (int)c->res.body_len, c->res.body);
    cr_assert_str_eq(ctx_res_header(c, "Content-Type"), "application/json");
    json_t *b = ctx_body_json(c);
    cr_assert_not_null(b, "body is not JSON");
    cr_assert_str_eq(json_string_value(json_object_get(b, "error")), code);
    cr_assert(json_is_string(json_object_get(b, "message")));
    cr_assert_eq(json_integer_value(json_object_get(b, "statusCode")), status);
    cr_assert(matches(ISO_RE, json_string_value(json_object_get(b, "timestamp"))));
    cr_assert_str_eq(json_string_value(json_object_get(b, "requestId")),
                     ctx_res_header(c, "X-Request-Id"));
    return b;
}

Test(api, health_ok_with_headers)
{
    struct ctx *c = app_request(t.app, "GET", "/health", NULL, NULL, 0);
    cr_assert_eq(c->res.status, 200);
    json_t *b = ctx_body_json(c);
    cr_assert_str_eq(json_string_value(json_object_get(b, "status")), "ok");
    cr_assert_str_eq(json_string_value(json_object_get(b, "version")), ZYGO_VERSION);
    cr_assert(json_is_number(json_object_get(b, "uptime")));
    cr_assert_geq(json_number_value(json_object_get(b, "uptime")), 0);
    cr_assert(matches(ISO_RE, json_string_value(json_object_get(b, "timestamp"))));
    json_decref(b);
    cr_assert(uuid_valid(ctx_res_header(c, "X-Request-Id")));
    cr_assert(matches("^total;dur=[0-9]+\\.[0-9]+;desc=\"Total Response Time\"$",
                      ctx_res_header(c, "Server-Timing")));
    static const char *const secure[][2] = {
        {"Cross-Origin-Resource-Policy", "same-origin"},
        {"Cross-Origin-Opener-Policy", "same-origin"},
        {"Origin-Agent-Cluster", "?1"},
        {"Referrer-Policy", "no-referrer"},
        {"Strict-Transport-Security", "max-age=15552000; includeSubDomains"},
        {"X-Content-Type-Options", "nosniff"},
        {"X-DNS-Prefetch-Control", "off"},
        {"X-Download-Options", "noopen"},
        {"X-Frame-Options", "SAMEORIGIN"},
        {"X-Permitted-Cross-Domain-Policies", "none"},
        {"X-XSS-Protection", "0"},
    };
    for (size_t i = 0; i < ARRAY_LEN(secure); i++) {
        const char *v = ctx_res_header(c, secure[i][0]);
        cr_assert_not_null(v, "missing %s", secure[i][0]);
        cr_assert_str_eq(v, secure[i][1]);
    }
    cr_assert_null(ctx_res_header(c, "X-Powered-By"));
    app_ctx_free(c);
}

Test(api, request_id_accepted_or_replaced)
{
    const char *const ok[] = {"X-Request-Id: trace-42_abc=", NULL};
    struct ctx *c = app_request(t.app, "GET", "/health", ok, NULL, 0);
    cr_assert_str_eq(ctx_res_header(c, "X-Request-Id"), "trace-42_abc=");
    app_ctx_free(c);

    const char *const bad[] = {"X-Request-Id: bad id; <script>", NULL};
    c = app_request(t.app, "GET", "/nope", bad, NULL, 0);
    cr_assert(uuid_valid(ctx_res_header(c, "X-Request-Id")));
    json_t *b = assert_envelope(c, 404, "ROUTE_NOT_FOUND");
    json_decref(b);
    app_ctx_free(c);

    char longid[300 + 20];
    memset(longid, 'a', sizeof(longid));
    memcpy(longid, "X-Request-Id: ", 14);
    longid[14 + 256] = '\0'; /* 256 characters: one too many */
    const char *const toolong[] = {longid, NULL};
    c = app_request(t.app, "GET", "/health", toolong, NULL, 0);
    cr_assert(uuid_valid(ctx_res_header(c, "X-Request-Id")));
    app_ctx_free(c);
}

Test(api, not_found_envelope)
{
    struct ctx *c = app_request(t.app, "GET", "/api/v1/nothing-here?x=1", NULL, NULL, 0);
    json_t *b = assert_envelope(c, 404, "ROUTE_NOT_FOUND");
    cr_assert_str_eq(json_string_value(json_object_get(b, "message")),
                     "Route GET /api/v1/nothing-here not found");
    cr_assert_null(json_object_get(b, "details"));
    json_decref(b);
    /* error responses carry the global headers too */
    cr_assert_not_null(ctx_res_header(c, "Server-Timing"));
    cr_assert_str_eq(ctx_res_header(c, "X-Content-Type-Options"), "nosniff");
    app_ctx_free(c);
}

Test(api, trailing_slash_is_another_route)
{
    struct ctx *c = app_request(t.app, "GET", "/health/", NULL, NULL, 0);
    json_decref(assert_envelope(c, 404, "ROUTE_NOT_FOUND"));
    app_ctx_free(c);
}

Test(api, method_not_allowed_has_allow)
{
    struct ctx *c = app_request(t.app, "DELETE", "/health", NULL, NULL, 0);
    json_t *b = assert_envelope(c, 405, "HTTP_ERROR");
    cr_assert_str_eq(json_string_value(json_object_get(b, "message")),
                     "Method DELETE not allowed for /health");
    json_decref(b);
    cr_assert_str_eq(ctx_res_header(c, "Allow"), "GET, HEAD, OPTIONS");
    app_ctx_free(c);
}

Test(api, head_is_get)
{
    struct ctx *c = app_request(t.app, "HEAD", "/health", NULL, NULL, 0);
    cr_assert_eq(c->res.status, 200);
    app_ctx_free(c);
}

Test(api, cors_preflight_allowed_origin)
{
    const char *const h[] = {"Origin: https://app.zygo.tech", "Access-Control-Request-Method: POST",
                             "Access-Control-Request-Headers: content-type,authorization", NULL};
    struct ctx *c = app_request(t.app, "OPTIONS", "/api/v1/users", h, NULL, 0);
    cr_assert_eq(c->res.status, 204);
    cr_assert_eq(c->res.body_len, 0);
    cr_assert_str_eq(ctx_res_header(c, "Access-Control-Allow-Origin"), "https://app.zygo.tech");
    cr_assert_str_eq(ctx_res_header(c, "Access-Control-Allow-Credentials"), "true");
    cr_assert_str_eq(ctx_res_header(c, "Access-Control-Allow-Methods"),
                     "GET,HEAD,PUT,POST,DELETE,PATCH");
    cr_assert_str_eq(ctx_res_header(c, "Access-Control-Allow-Headers"),
                     "content-type,authorization");
    cr_assert_not_null(ctx_res_header(c, "Access-Control-Max-Age"));
    cr_assert_str_eq(ctx_res_header(c, "Vary"), "Origin");
    cr_assert_not_null(ctx_res_header(c, "X-Request-Id"));
    app_ctx_free(c);
}

Test(api, cors_rejects_unknown_origin)
{
    const char *const h[] = {"Origin: https://evil.example", "Access-Control-Request-Method: POST",
                             NULL};
    struct ctx *c = app_request(t.app, "OPTIONS", "/health", h, NULL, 0);
    cr_assert_eq(c->res.status, 204);
    cr_assert_null(ctx_res_header(c, "Access-Control-Allow-Origin"));
    cr_assert_null(ctx_res_header(c, "Access-Control-Allow-Credentials"));
    app_ctx_free(c);

    const char *const g[] = {"Origin: https://evil.example", NULL};
    c = app_request(t.app, "GET", "/health", g, NULL, 0);
    cr_assert_eq(c->res.status, 200);
    cr_assert_null(ctx_res_header(c, "Access-Control-Allow-Origin"));
    app_ctx_free(c);
}

Test(api, cors_simple_request_allowed_origin)
{
    const char *const h[] = {"Origin: http://localhost:5173", NULL};
    struct ctx *c = app_request(t.app, "GET", "/nope", h, NULL, 0);
    json_decref(assert_envelope(c, 404, "ROUTE_NOT_FOUND"));
    cr_assert_str_eq(ctx_res_header(c, "Access-Control-Allow-Origin"), "http://localhost:5173");
    cr_assert_str_eq(ctx_res_header(c, "Access-Control-Allow-Credentials"), "true");
    cr_assert_str_eq(ctx_res_header(c, "Access-Control-Expose-Headers"),
                     "X-Request-Id,Server-Timing");
    app_ctx_free(c);
}

static json_t *ready_check(int want)
{
    struct ctx *c = app_request(t.app, "GET", "/health/ready", NULL, NULL, 0);
    cr_assert_eq(c->res.status, want, "%.*s", (int)c->res.body_len, c->res.body);
    json_t *b = ctx_body_json(c);
    if (want == 503)
        cr_assert_not_null(ctx_res_header(c, "Retry-After"));
    app_ctx_free(c);
    return b;
}

static const char *db_check(json_t *b, const char *field)
{
    return json_string_value(
        json_object_get(json_object_get(json_object_get(b, "checks"), "database"), field));
}

Test(api, ready_reports_database_outage_then_recovers)
{
    json_t *b = ready_check(200);
    cr_assert_str_eq(json_string_value(json_object_get(b, "status")), "ready");
    cr_assert_str_eq(db_check(b, "status"), "up");
    json_decref(b);

    tenv_outage_begin(&t);
    b = ready_check(503);
    cr_assert_str_eq(json_string_value(json_object_get(b, "status")), "unavailable");
    cr_assert_str_eq(db_check(b, "status"), "down");
    cr_assert_not_null(db_check(b, "error"), "no reason given");
    cr_assert_gt(strlen(db_check(b, "error")), 5);
    json_decref(b);

    /* liveness is not readiness */
    struct ctx *c = app_request(t.app, "GET", "/health", NULL, NULL, 0);
    cr_assert_eq(c->res.status, 200);
    app_ctx_free(c);

    tenv_outage_end(&t);
    b = ready_check(200);
    cr_assert_str_eq(db_check(b, "status"), "up", "no recovery without a restart");
    json_decref(b);
}

Test(api, openapi_and_docs)
{
    struct ctx *c = app_request(t.app, "GET", "/openapi.json", NULL, NULL, 0);
    cr_assert_eq(c->res.status, 200);
    json_t *doc = ctx_body_json(c);
    cr_assert_str_eq(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    json_t *paths = json_object_get(doc, "paths");
    cr_assert_not_null(json_object_get(paths, "/health"));
    cr_assert_not_null(json_object_get(paths, "/health/ready"));
    cr_assert_not_null(json_object_get(
        json_object_get(json_object_get(doc, "components"), "securitySchemes"), "bearerAuth"));
    json_decref(doc);
    app_ctx_free(c);

    c = app_request(t.app, "GET", "/docs", NULL, NULL, 0);
    cr_assert_eq(c->res.status, 200);
    cr_assert_str_eq(ctx_res_header(c, "Content-Type"), "text/html; charset=utf-8");
    cr_assert_not_null(ctx_res_header(c, "Content-Security-Policy"));
    cr_assert_not_null(strstr(c->res.body, "data-url=\"/openapi.json\""));
    app_ctx_free(c);
}

Test(api, body_over_limit_is_413)
{
    size_t n = t.cfg.http_body_limit + 1;
    char *big = xmalloc(n);
    memset(big, ' ', n);
    const char *const h[] = {"Content-Type: application/json", NULL};
    struct ctx *c = app_request(t.app, "POST", "/health", h, big, n);
    json_decref(assert_envelope(c, 413, "HTTP_ERROR"));
    app_ctx_free(c);
    free(big);
}
