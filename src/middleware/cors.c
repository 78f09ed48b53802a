/* cors.c — see cors.h. */
#include "lib/common.h"

#include "http/app.h"
#include "lib/config.h"
#include "middleware/cors.h"

#define CORS_ALLOW_METHODS "GET,HEAD,PUT,POST,DELETE,PATCH"
#define CORS_EXPOSE_HEADERS "X-Request-Id,Server-Timing"
#define CORS_MAX_AGE "600"

static bool origin_allowed(const struct config *cfg, const char *origin)
{
    for (size_t i = 0; i < cfg->ncors_origins; i++)
        if (strcmp(cfg->cors_origins[i], origin) == 0)
            return true;
    return false;
}

static enum mw_result cors_before(struct ctx *c)
{
    const char *origin = ctx_header(c, "Origin");
    if (origin && origin_allowed(app_config(c->app), origin)) {
        ctx_set_header(c, "Access-Control-Allow-Origin", origin);
        ctx_set_header(c, "Access-Control-Allow-Credentials", "true");
        ctx_set_header(c, "Access-Control-Expose-Headers", CORS_EXPOSE_HEADERS);
    }
    /* The answer depends on Origin, so shared caches must key on it. */
    ctx_append_header(c, "Vary", "Origin");
    if (c->req.method != HTTP_OPTIONS)
        return MW_NEXT;

    ctx_remove_header(c, "Access-Control-Expose-Headers");
    ctx_set_header(c, "Access-Control-Allow-Methods", CORS_ALLOW_METHODS);
    ctx_set_header(c, "Access-Control-Max-Age", CORS_MAX_AGE);
    const char *req_headers = ctx_header(c, "Access-Control-Request-Headers");
    if (req_headers) {
        ctx_set_header(c, "Access-Control-Allow-Headers", req_headers);
        ctx_append_header(c, "Vary", "Access-Control-Request-Headers");
    }
    ctx_body(c, 204, NULL, "", 0);
    return MW_DONE;
}

const struct middleware mw_cors = {"cors", cors_before, NULL};
