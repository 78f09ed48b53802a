/* pagination.c — see pagination.h. */
#include "lib/common.h"

#include "http/pagination.h"
#include "lib/buf.h"

static const struct schema int_s = {.type = SCHEMA_INTEGER};

const struct schema pagination_schema = {
    .type = SCHEMA_OBJECT,
    .ref = "Pagination",
    .props = (const struct schema_prop[]){{"page", &int_s, true},
                                          {"limit", &int_s, true},
                                          {"total", &int_s, true},
                                          {"totalPages", &int_s, true},
                                          {NULL}}};

const struct schema pagination_page_schema = {.type = SCHEMA_INTEGER,
                                              .coerce = true,
                                              .has_min = true,
                                              .min = 1,
                                              .has_max = true,
                                              .max = 1000000,
                                              .default_json = "1"};

const struct schema pagination_limit_schema = {.type = SCHEMA_INTEGER,
                                               .coerce = true,
                                               .has_min = true,
                                               .min = 1,
                                               .has_max = true,
                                               .max = 100,
                                               .default_json = "20"};

void pagination_from_query(const struct ctx *c, struct page *p)
{
    p->page = json_integer_value(json_object_get(c->query, "page"));
    p->limit = json_integer_value(json_object_get(c->query, "limit"));
    if (p->page < 1)
        p->page = 1;
    if (p->limit < 1)
        p->limit = 20;
    p->offset = (p->page - 1) * p->limit;
}

json_t *pagination_envelope(json_t *data, const struct page *p, long long total)
{
    return json_pack("{s:o, s:{s:I, s:I, s:I, s:I}}", "data", data, "pagination", "page", p->page,
                     "limit", p->limit, "total", (json_int_t)total, "totalPages",
                     (json_int_t)((total + p->limit - 1) / p->limit));
}

int pagination_begin(struct buf *b, size_t max)
{
    buf_init(b, max);
    return buf_puts(b, "{\"data\":");
}

int pagination_send(struct ctx *c, struct buf *b, const struct page *p, long long total)
{
    buf_printf(b, ",\"pagination\":{\"page\":%lld,\"limit\":%lld,\"total\":%lld,\"totalPages\":%lld}}",
               (long long)p->page, (long long)p->limit, total, (total + p->limit - 1) / p->limit);
    return ctx_json_buf(c, 200, b);
}
