/*
 * middleware.h — the shape of a global middleware: an ordered phase that may answer the
 * request itself (nginx phases, Hono's onion).
 *
 * The app runs each `before` in table order until one answers or fails, then the router and
 * handler, then every `after` of the middleware whose `before` ran, in reverse order — so
 * headers set by request id, secure headers and CORS land on error responses too.
 */
#ifndef ZYGO_MIDDLEWARE_H
#define ZYGO_MIDDLEWARE_H

#include "http/ctx.h"

enum mw_result {
    MW_NEXT = 0,  /* continue with the next phase */
    MW_DONE = 1,  /* the response is set; skip routing and the handler */
    MW_ERROR = -1 /* ctx_fail() was called; the error handler renders it */
};

struct middleware {
    const char *name;
    enum mw_result (*before)(struct ctx *c); /* may be NULL */
    void (*after)(struct ctx *c);            /* may be NULL */
};

#endif
