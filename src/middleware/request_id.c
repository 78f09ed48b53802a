/* request_id.c — see request_id.h. */
#include "lib/common.h"

#include "lib/uuid.h"
#include "middleware/request_id.h"

bool request_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        char ch = s[n];
        bool ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '_' || ch == '-' || ch == '=';
        if (!ok || n >= 255)
            return false;
    }
    return n > 0;
}

static enum mw_result request_id_before(struct ctx *c)
{
    const char *in = ctx_header(c, "X-Request-Id");
    if (in && request_id_valid(in)) {
        c->request_id = in;
    } else {
        char *id = arena_alloc(c->arena, 37);
        uuid_v7(id);
        c->request_id = id;
    }
    ctx_set_header(c, "X-Request-Id", c->request_id);
    return MW_NEXT;
}

const struct middleware mw_request_id = {"requestId", request_id_before, NULL};
