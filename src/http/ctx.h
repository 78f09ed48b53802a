/*
 * ctx.h — one HTTP request in flight: the request as parsed, the response being built, and the
 * typed variables middleware sets on the way (the specification's Hono Context).
 *
 * Owns nothing itself: everything hangs off ctx->arena, which the caller (the server or
 * app_request) creates before and frees after the request.
 */
#ifndef ZYGO_CTX_H
#define ZYGO_CTX_H

#include <jansson.h>

#include "lib/arena.h"
#include "lib/common.h"
#include "lib/error.h"

struct app;
struct route;
struct db_conn;
struct db_rows;
struct ctx_hook;

enum http_method {
    HTTP_GET = 0,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_PATCH,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_OTHER,
    HTTP_METHOD_COUNT
};

enum http_method http_method_parse(const char *s);
const char *http_method_name(enum http_method m);

struct http_request {
    enum http_method method;
    const char *method_name; /* as sent, e.g. "GET" */
    const char *path;        /* decoded path, no query string */
    const char *query;       /* raw query string after '?', or NULL */
    struct kv *headers;      /* names as sent; look up with ctx_header() */
    size_t nheaders;
    struct kv *query_params; /* decoded, in order, repeated names kept */
    size_t nquery;
    const char *body; /* NUL-terminated; body_len excludes the NUL */
    size_t body_len;
    const char *client_ip;
};

struct http_response {
    int status;
    struct kv *headers; /* arena-owned */
    size_t nheaders, cap_headers;
    const char *body; /* arena-owned (or static) */
    size_t body_len;
    bool close; /* ask the transport to close the connection after this response */
};

/* The authenticated user (the specification's AuthUser); set by the auth middleware. */
struct auth_user {
    const char *session_id;
    const char *aal;
    const char *id;
    const char *email;
    const char *tenant_id;
    const char *role;
    const char *const *permissions;
    size_t npermissions;
    bool is_global_admin;
    int64_t expires_at; /* the access token's exp (seconds since the epoch) */
};

struct ctx {
    struct arena *arena;
    const struct app *app;
    struct http_request req;
    struct http_response res;

    const struct route *route; /* matched route, NULL before routing or when none matched */
    unsigned route_allowed;    /* methods the path answers to (1u << method), for 405 */
    struct kv *params;         /* path parameters, raw */
    size_t nparams;

    /* Validated input, set by the validate phase (borrowed from the arena's cleanup list). */
    json_t *body;
    json_t *query;
    json_t *path_params;

    const char *request_id;
    const char *tenant_id; /* the tenant the request acts in (tenant phase), NULL before */
    uint64_t start_ns;
    struct db_conn *db_conn; /* acquired by ctx_db() on first use */
    void *local;             /* a handler's own state between its steps (arena-owned) */
    struct auth_user *user;
    struct ctx_hook *after_commit; /* ctx_after_commit, newest first */
    /* Answering later (ctx_query_async): the transport's completion (NULL: this request cannot
     * wait), what runs with the rows, and how much of the global middleware ran. */
    void (*on_done)(void *arg);
    void *on_done_arg;
    int (*async_fn)(struct ctx *c, struct db_rows *rows, int errkind, const char *errmsg);
    size_t mw_ran;

    /* Pending domain error, turned into the envelope by the error middleware. */
    enum zy_err err;
    int err_status;
    const char *err_message;
    json_t *err_details;
};

/* Header lookup, case-insensitive; NULL when absent. */
const char *ctx_header(const struct ctx *c, const char *name);
/* Query parameter (first occurrence) or path parameter lookup; NULL when absent. */
const char *ctx_query(const struct ctx *c, const char *name);
const char *ctx_param(const struct ctx *c, const char *name);

/* Response building. Header names and values are copied into the arena. */
void ctx_set_header(struct ctx *c, const char *name, const char *value);
void ctx_append_header(struct ctx *c, const char *name, const char *value);
const char *ctx_res_header(const struct ctx *c, const char *name);
void ctx_remove_header(struct ctx *c, const char *name);
/* Serialises `v` (steals the reference) as the JSON body with status. */
void ctx_json(struct ctx *c, int status, json_t *v);
struct buf;
/* b's JSON text as the response body (b is taken over); a 500 when b overflowed. 0 or -1. */
int ctx_json_buf(struct ctx *c, int status, struct buf *b);
/* Body from memory the arena (or static storage) keeps alive. */
void ctx_body(struct ctx *c, int status, const char *content_type, const char *body, size_t len);

/* Keeps a JSON value alive until the request ends (the arena drops the reference). */
json_t *ctx_keep(struct ctx *c, json_t *v);

/*
 * Records a domain error for the error middleware and returns -1, so handlers can write
 * `return ctx_fail(c, ZY_E_NOT_FOUND, "User with ID %s not found", id);`.
 * For ZY_E_HTTP use ctx_fail_status. `details` (may be NULL) is stolen.
 */
int ctx_fail(struct ctx *c, enum zy_err e, const char *fmt, ...) ZY_PRINTF(3, 4);
int ctx_fail_status(struct ctx *c, int status, const char *fmt, ...) ZY_PRINTF(3, 4);
int ctx_fail_details(struct ctx *c, enum zy_err e, int status, json_t *details, const char *msg);

/* Monotonic clock in nanoseconds. */
uint64_t zy_now_ns(void);

#endif
