/*
 * fake_http.h — a small HTTP server on 127.0.0.1 for tests of outbound requests (the workflow
 * steps http_request and webhook_event, services/http_fetch).
 *
 * Owns a libmicrohttpd daemon (a thread per connection) on a free loopback port. Every request
 * is recorded (method, path with query, headers, body up to FAKE_HTTP_BODY_MAX) for
 * assertions. Replies are scripted per path prefix: fake_http_on() queues a reply for the next
 * `times` matching requests (or all of them), with a status, body, content type, an optional
 * delay before answering and an optional large generated body; a request no rule matches gets
 * 200 {"ok":true,"n":<its number>}. fake_http_stop() stops the daemon and frees everything.
 */
#ifndef ZYGO_TEST_FAKE_HTTP_H
#define ZYGO_TEST_FAKE_HTTP_H

#include <stdbool.h>
#include <stddef.h>

#define FAKE_HTTP_MAX_REQS 256
#define FAKE_HTTP_BODY_MAX (1024 * 1024)

struct fake_http_reply {
    int status;               /* 0: 200 */
    const char *body;         /* NULL: "" */
    const char *content_type; /* NULL: application/json */
    int delay_ms;             /* wait before answering */
    size_t big_body;          /* > 0: a body of this many 'x' instead of body */
    const char *location;     /* a Location header */
};

/* One request as the server received it. Immutable once recorded. */
struct fake_http_req {
    char method[16];
    char *path;    /* with the query string */
    char *headers; /* "name: value\n" lines, names lower-case */
    char *body;    /* NUL-terminated */
    size_t body_len;
};

struct fake_http;

struct fake_http *fake_http_start(void);
void fake_http_stop(struct fake_http *s);
int fake_http_port(const struct fake_http *s);
/* "http://127.0.0.1:<port><path>" into out. */
const char *fake_http_url(const struct fake_http *s, const char *path, char *out, size_t n);

/* The next `times` requests whose path starts with `prefix` get r (times < 0: every one).
 * Rules are tried in the order they were added; a used-up rule is skipped. */
void fake_http_on(struct fake_http *s, const char *prefix, int times,
                  const struct fake_http_reply *r);

/* Requests recorded so far. */
size_t fake_http_count(struct fake_http *s);
/* Waits until at least n requests are recorded or timeout_ms passes. */
bool fake_http_wait(struct fake_http *s, size_t n, int timeout_ms);
/* The i-th request (NULL if none); valid until fake_http_stop(). */
const struct fake_http_req *fake_http_req(struct fake_http *s, size_t i);
/* A request header's value copied into out (name case-insensitive); false when absent. */
bool fake_http_header(const struct fake_http_req *r, const char *name, char *out, size_t n);

#endif
