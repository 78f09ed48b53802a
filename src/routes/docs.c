/* docs.c — see docs.h. The page is an embedded asset (src/routes/assets/docs.html) that loads
 * the Scalar API reference viewer and points it at /openapi.json. */
#include "lib/common.h"

#include "http/app.h"
#include "lib/embed.h"
#include "routes/docs.h"

/* The reference viewer's script comes from a CDN; allow exactly that for this page. */
#define DOCS_CSP                                                                                   \
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "             \
    "style-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net https://fonts.googleapis.com; "     \
    "font-src 'self' data: https://fonts.gstatic.com https://cdn.jsdelivr.net; "                   \
    "img-src 'self' data: https:; connect-src 'self'; frame-ancestors 'self'"

static int openapi_json(struct ctx *c)
{
    size_t len;
    const char *doc = app_openapi_json(c->app, &len);
    ctx_body(c, 200, "application/json", doc, len);
    return 0;
}

static int docs_page(struct ctx *c)
{
    const struct embedded_file *f = embed_find("src/routes/assets/docs.html");
    if (!f)
        return ctx_fail(c, ZY_E_INTERNAL, "docs.html is not embedded");
    ctx_set_header(c, "Content-Security-Policy", DOCS_CSP);
    /* The viewer loads from another origin; the default same-origin CORP would be fine, but
     * COEP is not set, so nothing else is needed. */
    ctx_body(c, 200, "text/html; charset=utf-8", (const char *)f->data, f->len);
    return 0;
}

static const struct route routes[] = {
    {
        .method = HTTP_GET,
        .path = "/openapi.json",
        .handler = openapi_json,
        .summary = "OpenAPI document",
        .description = "The OpenAPI 3.1 description of this API, generated from the route table.",
        .tag = "System",
        .operation_id = "getOpenApi",
        .responses =
            (const struct route_response[]){
                {200, "OpenAPI 3.1 document",
                 &(const struct schema){.type = SCHEMA_OBJECT, .allow_unknown = true}},
                {0}},
        .flags = ROUTE_INLINE,
    },
    {
        .method = HTTP_GET,
        .path = "/docs",
        .handler = docs_page,
        .summary = "API reference",
        .description = "Interactive API reference rendering /openapi.json.",
        .tag = "System",
        .operation_id = "getDocs",
        .responses = (const struct route_response[]){{200, "HTML page", NULL, "text/html"}, {0}},
        .flags = ROUTE_INLINE,
    },
};

const struct route_group docs_routes = {
    .prefix = "",
    .routes = routes,
    .count = ARRAY_LEN(routes),
};
