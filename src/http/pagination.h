/*
 * pagination.h — the API's list conventions in one place: the `page`/`limit` query parameters
 * (page ≥ 1, limit 1–100, default 20) and the envelope {data, pagination:{page, limit, total,
 * totalPages}}, with their schemas for validation and the OpenAPI document.
 */
#ifndef ZYGO_PAGINATION_H
#define ZYGO_PAGINATION_H

#include "http/ctx.h"
#include "lib/schema.h"

extern const struct schema pagination_schema;       /* the envelope's "pagination" object */
extern const struct schema pagination_page_schema;  /* query "page" */
extern const struct schema pagination_limit_schema; /* query "limit" */

struct page {
    json_int_t page;
    json_int_t limit;
    json_int_t offset;
};

/* page and limit from the validated query (defaults applied by the schemas). */
void pagination_from_query(const struct ctx *c, struct page *p);
/* {data, pagination}; steals data. */
json_t *pagination_envelope(json_t *data, const struct page *p, long long total);

/*
 * The same envelope written as text (the lists' fast path, with repo_rows_write):
 * pagination_begin initialises b (capped at max bytes) with {"data": ; the caller appends
 * the data array; pagination_send closes the envelope and makes it the 200 response, or fails
 * with 500 when the body outgrew max. b is consumed either way.
 */
struct buf;
int pagination_begin(struct buf *b, size_t max);
int pagination_send(struct ctx *c, struct buf *b, const struct page *p, long long total);

#endif
