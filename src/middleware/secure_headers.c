/* secure_headers.c — see secure_headers.h. */
#include "lib/common.h"

#include "middleware/secure_headers.h"

static const struct kv secure_headers[] = {
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

static void secure_headers_after(struct ctx *c)
{
    for (size_t i = 0; i < ARRAY_LEN(secure_headers); i++)
        if (!ctx_res_header(c, secure_headers[i].name)) /* a handler's own value wins */
            ctx_append_header(c, secure_headers[i].name, secure_headers[i].value);
    ctx_remove_header(c, "X-Powered-By");
}

const struct middleware mw_secure_headers = {"secureHeaders", NULL, secure_headers_after};
