/*
 * router.h — the route table as data, and matching a method + path against it.
 *
 * One entry gives method, path (with :params), schemas, permission, OpenAPI description and
 * handler. The same table drives validation (src/middleware/validate.c) and the OpenAPI
 * document (src/http/openapi.c). Route groups mount entries under a prefix ("/api/v1").
 */
#ifndef ZYGO_ROUTER_H
#define ZYGO_ROUTER_H

#include "http/ctx.h"
#include "lib/schema.h"

/* Returns 0 when the response is set, -1 after ctx_fail(). */
typedef int (*route_handler)(struct ctx *c);
/* The same, run inside one transaction on the request's connection: committed on 0, rolled
 * back on -1 (see ctx_tx). */
typedef int (*route_tx_handler)(struct ctx *c, struct db_conn *db);

enum route_auth {
    ROUTE_PUBLIC = 0, /* no token needed; security: [] in the OpenAPI document */
    ROUTE_AUTH,       /* bearer token required */
    ROUTE_AUTH_OPTIONAL,
};

/* Flags */
#define ROUTE_INLINE 0x1 /* cheap and non-blocking: may run on the I/O thread */
#define ROUTE_HIDDEN 0x2 /* left out of the OpenAPI document */

struct rl_policy;

struct route_response {
    int status; /* 0 ends the list */
    const char *description;
    const struct schema *schema; /* application/json body, or NULL */
    const char *content_type;    /* other than JSON (e.g. "text/html"), schema ignored */
};

struct route {
    enum http_method method;
    const char *path; /* relative to the group prefix, e.g. "/users/:id" */
    route_handler handler;
    route_tx_handler tx; /* instead of handler, for work that writes */
    const char *summary;
    const char *description;
    const char *tag;
    const char *operation_id;
    const struct schema *params; /* path parameters, object schema */
    const struct schema *query;  /* query string, object schema with coerce on fields */
    const struct schema *body;   /* JSON body */
    const struct route_response *responses;
    enum route_auth auth;
    /* RBAC (the specification's requirePermission(string | string[] | predicate)); each one
     * given must pass, global admins pass all: */
    const char *permission;                        /* this permission */
    const char *const *permission_any;             /* any of these (NULL-terminated) */
    bool (*permission_check)(const struct ctx *c); /* a rule of the route's own */
    const struct rl_policy *rate_limit;            /* stricter budget than the default, or NULL */
    unsigned flags;
};

struct route_group {
    const char *prefix; /* "" or "/api/v1" */
    const struct route *routes;
    size_t count;
    const char *tag_description; /* for the OpenAPI tags list */
};

struct router;

enum router_result { ROUTER_FOUND, ROUTER_NOT_FOUND, ROUTER_METHOD_NOT_ALLOWED };

struct router_match {
    const struct route *route;
    const char *full_path; /* prefix + route path, e.g. "/api/v1/users/:id" */
    struct kv params[8];
    size_t nparams;
    unsigned allowed; /* bitmask of methods (1u << enum http_method) for 405's Allow header */
};

struct router *router_new(const struct route_group *groups, size_t ngroups);
void router_free(struct router *r);

/* Matches path (decoded, no query) for method; HEAD matches GET routes. Parameter values
 * point into `scratch`, which must be at least strlen(path)+1 bytes and outlive the match. */
enum router_result router_match(const struct router *r, enum http_method method, const char *path,
                                char *scratch, struct router_match *m);

/* Iteration over all routes with their full paths (for the OpenAPI document). */
size_t router_count(const struct router *r);
const struct route *router_at(const struct router *r, size_t i, const char **full_path);

/* "GET, HEAD, POST" for the Allow header; writes into out (size n). */
void router_allow_header(unsigned allowed, char *out, size_t n);

#endif
