/* Rate limiting: budgets per client, stricter budgets per route, the 429 envelope and headers,
 * windows that reset, and a store that stays bounded. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "middleware/rate_limit.h"
#include "support.h"

static const struct rl_policy strict = {"signin", 2, 60};

static int ok(struct ctx *c)
{
    ctx_json(c, 200, json_pack("{s:b}", "ok", 1));
    return 0;
}

static const struct route routes[] = {
    {.method = HTTP_GET, .path = "/open", .handler = ok},
    {.method = HTTP_POST, .path = "/signin", .handler = ok, .rate_limit = &strict},
};
static const struct route_group group = {"/t", routes, ARRAY_LEN(routes), NULL};

static struct tenv t;

static int atoi_safe(const char *s)
{
    cr_assert_not_null(s);
    return (int)strtol(s, NULL, 10);
}
static void teardown(void)
{
    tenv_teardown(&t);
}
TestSuite(rate_limit, .fini = teardown);

static struct ctx *get(const char *method, const char *path)
{
    return app_request(t.app, method, path, NULL, NULL, 0);
}

Test(rate_limit, per_ip_budget_then_429_envelope)
{
    static const char *const extra[] = {"RATE_LIMIT_IP_PER_MINUTE=5", NULL};
    tenv_setup(&t, extra, &group, 1);
    for (int i = 0; i < 5; i++) {
        struct ctx *c = get("GET", "/t/open");
        cr_assert_eq(c->res.status, 200);
        cr_assert_str_eq(ctx_res_header(c, "RateLimit-Limit"), "5");
        char want[8];
        snprintf(want, sizeof(want), "%d", 4 - i);
        cr_assert_str_eq(ctx_res_header(c, "RateLimit-Remaining"), want);
        int reset = atoi_safe(ctx_res_header(c, "RateLimit-Reset"));
        cr_assert(reset > 0 && reset <= 60);
        app_ctx_free(c);
    }
    struct ctx *c = get("GET", "/t/open");
    cr_assert_eq(c->res.status, 429);
    json_t *b = ctx_body_json(c);
    cr_assert_str_eq(json_string_value(json_object_get(b, "error")), "RATE_LIMIT_EXCEEDED");
    cr_assert_str_eq(json_string_value(json_object_get(b, "message")), "Too many requests");
    cr_assert_eq(json_integer_value(json_object_get(b, "statusCode")), 429);
    json_int_t retry =
        json_integer_value(json_object_get(json_object_get(b, "details"), "retryAfter"));
    cr_assert(retry > 0 && retry <= 60, "retryAfter %lld", (long long)retry);
    cr_assert_eq(atoi_safe(ctx_res_header(c, "Retry-After")), retry);
    cr_assert_str_eq(ctx_res_header(c, "RateLimit-Remaining"), "0");
    json_decref(b);
    app_ctx_free(c);
    /* unknown routes count too: scanning is not free */
    c = get("GET", "/nope");
    cr_assert_eq(c->res.status, 429);
    app_ctx_free(c);
}

Test(rate_limit, stricter_route_budget)
{
    tenv_setup(&t, NULL, &group, 1);
    for (int i = 0; i < 2; i++) {
        struct ctx *c = get("POST", "/t/signin");
        cr_assert_eq(c->res.status, 200);
        cr_assert_str_eq(ctx_res_header(c, "RateLimit-Limit"), "2");
        app_ctx_free(c);
    }
    struct ctx *c = get("POST", "/t/signin");
    cr_assert_eq(c->res.status, 429);
    app_ctx_free(c);
    c = get("GET", "/t/open");
    cr_assert_eq(c->res.status, 200, "the general budget is separate");
    app_ctx_free(c);
}

Test(rate_limit, disabled_means_no_headers)
{
    static const char *const extra[] = {"RATE_LIMIT_ENABLED=false", "RATE_LIMIT_IP_PER_MINUTE=1",
                                        NULL};
    tenv_setup(&t, extra, &group, 1);
    for (int i = 0; i < 3; i++) {
        struct ctx *c = get("GET", "/t/open");
        cr_assert_eq(c->res.status, 200);
        cr_assert_null(ctx_res_header(c, "RateLimit-Limit"));
        app_ctx_free(c);
    }
}

Test(rate_limit, windows_reset_and_keys_are_separate)
{
    tenv_setup(&t, NULL, &group, 1); /* only for teardown symmetry */
    struct rl_store *s = rl_store_new(1000);
    struct rl_policy p = {"x", 3, 10};
    struct rl_result r;
    uint64_t now = 1000000;
    for (int i = 0; i < 3; i++) {
        rl_hit(s, "ip:x:1.2.3.4", &p, now, &r);
        cr_assert(r.allowed);
    }
    rl_hit(s, "ip:x:1.2.3.4", &p, now + 5000, &r);
    cr_assert_not(r.allowed);
    cr_assert_eq(r.reset_s, 5);
    rl_hit(s, "ip:x:5.6.7.8", &p, now + 5000, &r);
    cr_assert(r.allowed, "another client has its own budget");
    rl_hit(s, "ip:x:1.2.3.4", &p, now + 10000, &r);
    cr_assert(r.allowed, "a new window after the reset");
    cr_assert_eq(r.remaining, 2);
    rl_store_free(s);
}

Test(rate_limit, store_stays_bounded_under_a_flood_of_keys)
{
    tenv_setup(&t, NULL, &group, 1);
    struct rl_store *s = rl_store_new(256);
    struct rl_policy p = {"x", 2, 60};
    struct rl_result r;
    char key[64];
    for (int i = 0; i < 100000; i++) {
        snprintf(key, sizeof(key), "ip:x:10.%d.%d.%d", i >> 16, (i >> 8) & 255, i & 255);
        rl_hit(s, key, &p, 5000, &r);
        cr_assert(r.allowed);
    }
    /* the newest clients are still counted: 1 hit above, 2 here, limit 2 */
    rl_hit(s, key, &p, 5000, &r);
    cr_assert(r.allowed);
    rl_hit(s, key, &p, 5000, &r);
    cr_assert_not(r.allowed);
    rl_store_free(s);
}

static long get_from(int port, const char *xff)
{
    char h[128];
    snprintf(h, sizeof(h), "X-Forwarded-For: %s", xff);
    const char *const headers[] = {h, NULL};
    struct http_result r;
    http_do(port, "GET", "/t/open", headers, NULL, 0, &r);
    long st = r.status;
    http_result_free(&r);
    return st;
}

/* Behind a trusted proxy the budget follows the client's address, not the proxy's; without
 * TRUST_PROXY a forged X-Forwarded-For buys nothing. */
Test(rate_limit, client_address_behind_a_trusted_proxy)
{
    struct tserver ts;
    static const char *const trusted[] = {"RATE_LIMIT_IP_PER_MINUTE=2", "TRUST_PROXY=true", NULL};
    tserver_start(&ts, trusted, &group, 1);
    cr_assert_eq(get_from(ts.port, "9.9.9.9, 10.0.0.1"), 200);
    cr_assert_eq(get_from(ts.port, "10.0.0.1"), 200);
    cr_assert_eq(get_from(ts.port, "1.2.3.4, 10.0.0.1"), 429, "the last hop is what counts");
    cr_assert_eq(get_from(ts.port, "10.0.0.2"), 200, "another client, another budget");
    tserver_stop(&ts);

    static const char *const untrusted[] = {"RATE_LIMIT_IP_PER_MINUTE=2", NULL};
    tserver_start(&ts, untrusted, &group, 1);
    cr_assert_eq(get_from(ts.port, "10.0.0.1"), 200);
    cr_assert_eq(get_from(ts.port, "10.0.0.2"), 200);
    cr_assert_eq(get_from(ts.port, "10.0.0.3"), 429, "forged headers change nothing");
    tserver_stop(&ts);
    tenv_setup(&t, NULL, &group, 1); /* for the suite's teardown */
}
