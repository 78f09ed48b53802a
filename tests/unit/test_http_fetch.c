/* Outbound HTTP for workflow steps: the SSRF policy (every refused address class, IPv4 and
 * IPv6, embedded IPv4 forms, names that resolve to loopback, numeric spellings), and, with
 * private targets allowed, real requests to a loopback server: methods, headers, bodies, the
 * response cap, timeouts, no redirects followed, and stopping a transfer from outside. */
#include "lib/common.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "fake_http.h"
#include "services/http_fetch.h"

TestSuite(http_fetch, .timeout = 60);

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static enum http_fetch_status get(const char *url, bool allow_private, struct http_fetch_res *res)
{
    struct http_fetch_req rq = {.url = url, .allow_private = allow_private, .timeout_ms = 5000};
    return http_fetch(&rq, res);
}

static void assert_refused(const char *url, enum http_fetch_status want)
{
    struct http_fetch_res res;
    enum http_fetch_status st = get(url, false, &res);
    cr_assert_eq(st, want, "%s: status %d (%s), wanted %d", url, st, res.error, want);
    cr_assert_eq(res.http_status, 0);
    cr_assert(res.error[0]);
    http_fetch_res_free(&res);
}

Test(http_fetch, refuses_non_public_targets)
{
    /* a server that would answer: a refusal must come before any connection */
    struct fake_http *s = fake_http_start();
    cr_assert_not_null(s);
    char url[128];
    static const char *const hosts[] = {
        "127.0.0.1",  "127.1.2.3",      "10.1.2.3",       "172.16.0.1",     "172.31.255.255",
        "192.168.1.1", "169.254.169.254", "100.64.0.1",     "0.0.0.0",        "224.0.0.1",
        "255.255.255.255", "198.18.0.1", "[::1]",          "[::]",           "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]", "[::ffff:10.0.0.1]", "[::ffff:169.254.169.254]", "[fe80::1]",
        "[fc00::1]",  "[fd12:3456::1]", "[ff02::1]",      "[64:ff9b::7f00:1]", "[2002:7f00:1::1]",
        "[::127.0.0.1]", "[2001:db8::1]", "2130706433",   "0x7f.1",         "017700000001",
        "localhost",  "LocalHost",
    };
    for (size_t i = 0; i < ARRAY_LEN(hosts); i++) {
        snprintf(url, sizeof(url), "http://%s:%d/secret", hosts[i], fake_http_port(s));
        assert_refused(url, HTTP_FETCH_E_BLOCKED);
    }
    cr_assert_eq(fake_http_count(s), 0, "a refused target was contacted");
    /* a name resolving to loopback says so without the address */
    struct http_fetch_res res;
    snprintf(url, sizeof(url), "http://localhost:%d/", fake_http_port(s));
    get(url, false, &res);
    cr_assert(strstr(res.error, "localhost resolves to a non-public address"), "%s", res.error);
    http_fetch_res_free(&res);
    fake_http_stop(s);
}

Test(http_fetch, refuses_other_schemes_and_bad_requests)
{
    assert_refused("ftp://example.com/", HTTP_FETCH_E_URL);
    assert_refused("file:///etc/passwd", HTTP_FETCH_E_URL);
    assert_refused("gopher://127.0.0.1/", HTTP_FETCH_E_URL);
    assert_refused("not a url", HTTP_FETCH_E_URL);
    assert_refused("http://[fe80::1%25eth0]/", HTTP_FETCH_E_BLOCKED);
    assert_refused("http://no-such-host.invalid/", HTTP_FETCH_E_RESOLVE);
    struct http_fetch_res res;
    struct kv bad[] = {{"X-Ok", "1"}, {"Host", "internal"}};
    struct http_fetch_req rq = {.url = "http://example.com/", .headers = bad, .nheaders = 2};
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_E_URL, "Host may not be set");
    http_fetch_res_free(&res);
    struct kv crlf[] = {{"X-A", "1\r\nX-Injected: 1"}};
    rq.headers = crlf;
    rq.nheaders = 1;
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_E_URL, "no header injection");
    http_fetch_res_free(&res);
    rq.nheaders = 0;
    rq.method = "GET /x HTTP/1.1\r\n";
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_E_URL);
    http_fetch_res_free(&res);
}

static bool public_v4(const char *a)
{
    struct sockaddr_in sa = {.sin_family = AF_INET};
    cr_assert_eq(inet_pton(AF_INET, a, &sa.sin_addr), 1, "%s", a);
    return http_fetch_addr_public((struct sockaddr *)&sa);
}

static bool public_v6(const char *a)
{
    struct sockaddr_in6 sa = {.sin6_family = AF_INET6};
    cr_assert_eq(inet_pton(AF_INET6, a, &sa.sin6_addr), 1, "%s", a);
    return http_fetch_addr_public((struct sockaddr *)&sa);
}

Test(http_fetch, address_policy)
{
    cr_assert(public_v4("8.8.8.8"));
    cr_assert(public_v4("93.184.216.34"));
    cr_assert(public_v4("172.32.0.1"), "just past 172.16/12");
    cr_assert(public_v4("100.128.0.1"), "just past 100.64/10");
    cr_assert(!public_v4("172.20.1.1"));
    cr_assert(!public_v4("192.0.2.5"));
    cr_assert(!public_v4("203.0.113.9"));
    cr_assert(!public_v4("240.1.1.1"));
    cr_assert(public_v6("2606:4700:4700::1111"));
    cr_assert(public_v6("2a00:1450:4001:81c::200e"));
    cr_assert(public_v6("::ffff:8.8.8.8"), "mapped public IPv4");
    cr_assert(public_v6("64:ff9b::808:808"), "NAT64 of a public IPv4");
    cr_assert(!public_v6("::ffff:192.168.0.1"));
    cr_assert(!public_v6("64:ff9b:1::1"));
    cr_assert(!public_v6("2001::1"), "Teredo");
    cr_assert(!public_v6("fec0::1"));
    cr_assert(!public_v6("100::1"));
    struct sockaddr other = {.sa_family = AF_UNIX};
    cr_assert(!http_fetch_addr_public(&other));
}

Test(http_fetch, requests_to_an_allowed_loopback_target)
{
    struct fake_http *s = fake_http_start();
    char url[128];
    fake_http_url(s, "/hook?x=1", url, sizeof(url));
    struct kv hdrs[] = {{"Content-Type", "application/json"}, {"X-Trace", "abc"}};
    struct http_fetch_req rq = {.method = "POST",
                                .url = url,
                                .headers = hdrs,
                                .nheaders = 2,
                                .body = "{\"a\":1}",
                                .body_len = 7,
                                .allow_private = true};
    fake_http_on(s, "/hook", 1,
                 &(struct fake_http_reply){.status = 201, .body = "{\"made\":true}"});
    struct http_fetch_res res;
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_OK, "%s", res.error);
    cr_assert_eq(res.http_status, 201);
    cr_assert_str_eq(res.body, "{\"made\":true}");
    cr_assert_eq(res.body_len, 13);
    cr_assert_str_eq(json_string_value(json_object_get(res.headers, "x-fake")), "yes");
    cr_assert_str_eq(json_string_value(json_object_get(res.headers, "content-type")),
                     "application/json");
    http_fetch_res_free(&res);
    const struct fake_http_req *got = fake_http_req(s, 0);
    cr_assert_str_eq(got->method, "POST");
    cr_assert_str_eq(got->path, "/hook?x=1");
    cr_assert_str_eq(got->body, "{\"a\":1}");
    char v[128];
    cr_assert(fake_http_header(got, "x-trace", v, sizeof(v)));
    cr_assert_str_eq(v, "abc");
    cr_assert(fake_http_header(got, "user-agent", v, sizeof(v)));
    cr_assert(strncmp(v, "zygo-workflows/", 15) == 0, "%s", v);
    cr_assert(!fake_http_header(got, "expect", v, sizeof(v)));

    /* a name that resolves to loopback, allowed by configuration */
    snprintf(url, sizeof(url), "http://localhost:%d/named", fake_http_port(s));
    cr_assert_eq(get(url, true, &res), HTTP_FETCH_OK, "%s", res.error);
    cr_assert_eq(res.http_status, 200);
    http_fetch_res_free(&res);

    /* PUT without a body, DELETE, HEAD */
    rq = (struct http_fetch_req){.method = "DELETE", .url = url, .allow_private = true};
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_OK);
    http_fetch_res_free(&res);
    rq.method = "HEAD";
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_OK);
    cr_assert_eq(res.body_len, 0);
    http_fetch_res_free(&res);
    cr_assert_eq(fake_http_count(s), 4);
    cr_assert_str_eq(fake_http_req(s, 2)->method, "DELETE");
    cr_assert_str_eq(fake_http_req(s, 3)->method, "HEAD");
    fake_http_stop(s);
}

Test(http_fetch, caps_timeouts_and_redirects)
{
    struct fake_http *s = fake_http_start();
    char url[128];
    struct http_fetch_res res;
    /* the body cap */
    fake_http_on(s, "/big", -1, &(struct fake_http_reply){.big_body = 300000});
    struct http_fetch_req rq = {
        .url = fake_http_url(s, "/big", url, sizeof(url)), .allow_private = true,
        .max_response = 100000};
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_E_TOO_LARGE, "%s", res.error);
    cr_assert(!http_fetch_retryable(res.status));
    http_fetch_res_free(&res);
    rq.max_response = 400000;
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_OK);
    cr_assert_eq(res.body_len, 300000);
    http_fetch_res_free(&res);
    /* the timeout */
    fake_http_on(s, "/slow", -1, &(struct fake_http_reply){.delay_ms = 3000});
    rq = (struct http_fetch_req){
        .url = fake_http_url(s, "/slow", url, sizeof(url)), .allow_private = true,
        .timeout_ms = 300};
    uint64_t t0 = now_ns();
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_E_TIMEOUT, "%s", res.error);
    cr_assert_lt(now_ns() - t0, 2000000000ull);
    cr_assert(http_fetch_retryable(res.status));
    http_fetch_res_free(&res);
    /* redirects are returned, not followed (the next hop is unchecked) */
    fake_http_on(s, "/redirect", -1,
                 &(struct fake_http_reply){.status = 302,
                                           .location = "http://169.254.169.254/latest/meta-data"});
    rq = (struct http_fetch_req){.url = fake_http_url(s, "/redirect", url, sizeof(url)),
                                 .allow_private = true};
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_OK);
    cr_assert_eq(res.http_status, 302);
    cr_assert_str_eq(json_string_value(json_object_get(res.headers, "location")),
                     "http://169.254.169.254/latest/meta-data");
    http_fetch_res_free(&res);
    fake_http_stop(s);
}

static bool stop_after_flag(void *arg)
{
    return atomic_load((atomic_bool *)arg);
}

static void *raise_flag_later(void *arg)
{
    usleep(200000);
    atomic_store((atomic_bool *)arg, true);
    return NULL;
}

Test(http_fetch, a_transfer_stops_when_asked)
{
    struct fake_http *s = fake_http_start();
    fake_http_on(s, "/", -1, &(struct fake_http_reply){.delay_ms = 5000});
    char url[128];
    atomic_bool flag;
    atomic_init(&flag, false);
    pthread_t th;
    pthread_create(&th, NULL, raise_flag_later, &flag);
    struct http_fetch_req rq = {.url = fake_http_url(s, "/", url, sizeof(url)),
                                .allow_private = true,
                                .timeout_ms = 10000,
                                .should_stop = stop_after_flag,
                                .stop_arg = &flag};
    struct http_fetch_res res;
    uint64_t t0 = now_ns();
    cr_assert_eq(http_fetch(&rq, &res), HTTP_FETCH_E_STOPPED, "%s", res.error);
    cr_assert_lt(now_ns() - t0, 3000000000ull);
    http_fetch_res_free(&res);
    pthread_join(th, NULL);
    fake_http_stop(s);
}
