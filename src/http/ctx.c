/* ctx.c — request lookups and response building on a struct ctx; see ctx.h. */
#include "lib/common.h"

#include <strings.h>
#include <time.h>

#include "http/ctx.h"
#include "lib/buf.h"
#include "lib/jsonx.h"

static const char *const method_names[HTTP_METHOD_COUNT] = {
    [HTTP_GET] = "GET",         [HTTP_HEAD] = "HEAD",   [HTTP_POST] = "POST",
    [HTTP_PUT] = "PUT",         [HTTP_PATCH] = "PATCH", [HTTP_DELETE] = "DELETE",
    [HTTP_OPTIONS] = "OPTIONS", [HTTP_OTHER] = "OTHER",
};

enum http_method http_method_parse(const char *s)
{
    for (int m = 0; m < HTTP_OTHER; m++)
        if (strcmp(s, method_names[m]) == 0)
            return (enum http_method)m;
    return HTTP_OTHER;
}

const char *http_method_name(enum http_method m)
{
    return (unsigned)m < HTTP_METHOD_COUNT ? method_names[m] : "OTHER";
}

static const char *kv_find(const struct kv *v, size_t n, const char *name, bool icase)
{
    for (size_t i = 0; i < n; i++)
        if (icase ? strcasecmp(v[i].name, name) == 0 : strcmp(v[i].name, name) == 0)
            return v[i].value;
    return NULL;
}

const char *ctx_header(const struct ctx *c, const char *name)
{
    return kv_find(c->req.headers, c->req.nheaders, name, true);
}

const char *ctx_query(const struct ctx *c, const char *name)
{
    return kv_find(c->req.query_params, c->req.nquery, name, false);
}

const char *ctx_param(const struct ctx *c, const char *name)
{
    return kv_find(c->params, c->nparams, name, false);
}

const char *ctx_res_header(const struct ctx *c, const char *name)
{
    return kv_find(c->res.headers, c->res.nheaders, name, true);
}

void ctx_append_header(struct ctx *c, const char *name, const char *value)
{
    struct http_response *r = &c->res;
    if (r->nheaders == r->cap_headers) {
        size_t cap = r->cap_headers ? r->cap_headers * 2 : 16;
        struct kv *h = arena_alloc(c->arena, cap * sizeof(*h));
        if (r->nheaders)
            memcpy(h, r->headers, r->nheaders * sizeof(*h));
        r->headers = h;
        r->cap_headers = cap;
    }
    r->headers[r->nheaders].name = arena_strdup(c->arena, name);
    r->headers[r->nheaders].value = arena_strdup(c->arena, value);
    r->nheaders++;
}

void ctx_remove_header(struct ctx *c, const char *name)
{
    struct http_response *r = &c->res;
    size_t w = 0;
    for (size_t i = 0; i < r->nheaders; i++)
        if (strcasecmp(r->headers[i].name, name) != 0)
            r->headers[w++] = r->headers[i];
    r->nheaders = w;
}

void ctx_set_header(struct ctx *c, const char *name, const char *value)
{
    ctx_remove_header(c, name);
    ctx_append_header(c, name, value);
}

static void json_release(void *v)
{
    json_decref(v);
}

json_t *ctx_keep(struct ctx *c, json_t *v)
{
    if (v)
        arena_on_free(c->arena, json_release, v);
    return v;
}

void ctx_body(struct ctx *c, int status, const char *content_type, const char *body, size_t len)
{
    c->res.status = status;
    if (content_type)
        ctx_set_header(c, "Content-Type", content_type);
    c->res.body = body;
    c->res.body_len = len;
}

int ctx_json_buf(struct ctx *c, int status, struct buf *b)
{
    if (b->overflow) {
        buf_free(b);
        return ctx_fail(c, ZY_E_INTERNAL, "response larger than its buffer");
    }
    size_t len;
    char *body = buf_detach(b, &len);
    arena_on_free(c->arena, free, body);
    ctx_body(c, status, "application/json", body, len);
    return 0;
}

void ctx_json(struct ctx *c, int status, json_t *v)
{
    size_t len;
    char *s = jx_dump(v, &len);
    json_decref(v);
    arena_on_free(c->arena, free, s);
    ctx_body(c, status, "application/json", s, len);
}

int ctx_fail_details(struct ctx *c, enum zy_err e, int status, json_t *details, const char *msg)
{
    c->err = e;
    c->err_status = status ? status : zy_err_status(e);
    c->err_message = arena_strdup(c->arena, msg);
    if (c->err_details)
        json_decref(c->err_details);
    c->err_details = details;
    return -1;
}

static int ctx_fail_v(struct ctx *c, enum zy_err e, int status, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    return ctx_fail_details(c, e, status, NULL, msg);
}

int ctx_fail(struct ctx *c, enum zy_err e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx_fail_v(c, e, 0, fmt, ap);
    va_end(ap);
    return -1;
}

int ctx_fail_status(struct ctx *c, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ctx_fail_v(c, ZY_E_HTTP, status, fmt, ap);
    va_end(ap);
    return -1;
}

uint64_t zy_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
