/* validate.c — see validate.h. */
#include "lib/common.h"

#include <strings.h>

#include "http/router.h"
#include "lib/jsonx.h"
#include "lib/schema.h"
#include "lib/utf8.h"
#include "middleware/validate.h"

static int fail_issues(struct ctx *c, const struct schema_issues *is)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < is->n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "path", jx_str(is->v[i].path));
        json_object_set_new(o, "message", jx_str(is->v[i].message));
        json_object_set_new(o, "code", json_string(is->v[i].code));
        json_array_append_new(arr, o);
    }
    json_t *details = json_object();
    json_object_set_new(details, "issues", arr);
    return ctx_fail_details(c, ZY_E_VALIDATION, 400, details, "Request validation failed");
}

/* Validates `in` (stolen) against s; stores the result in *out. */
static int check(struct ctx *c, const struct schema *s, json_t *in, json_t **out)
{
    struct schema_issues is;
    schema_issues_init(&is, c->arena);
    json_t *v = schema_validate(s, in, &is);
    json_decref(in);
    if (is.n) {
        json_decref(v);
        return fail_issues(c, &is);
    }
    *out = ctx_keep(c, v);
    return 0;
}

static const struct schema *prop_schema(const struct schema *obj, const char *name)
{
    for (const struct schema_prop *p = obj->props; p && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p->schema;
    return NULL;
}

/* Declared query parameters as a JSON object of strings; a repeated name becomes an array. */
static json_t *query_object(const struct ctx *c, const struct schema *s)
{
    json_t *o = json_object();
    for (size_t i = 0; i < c->req.nquery; i++) {
        const struct kv *q = &c->req.query_params[i];
        if (!prop_schema(s, q->name))
            continue;
        json_t *prev = json_object_get(o, q->name);
        json_t *v = jx_str(q->value);
        if (!prev) {
            json_object_set_new(o, q->name, v);
        } else if (json_is_array(prev)) {
            json_array_append_new(prev, v);
        } else {
            json_t *arr = json_array();
            json_array_append(arr, prev);
            json_array_append_new(arr, v);
            json_object_set_new(o, q->name, arr);
        }
    }
    return o;
}

static bool is_json_type(const char *ct)
{
    size_t n = strcspn(ct, ";");
    while (n && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
        n--;
    if (n == 16 && strncasecmp(ct, "application/json", 16) == 0)
        return true;
    /* application/<anything>+json, e.g. application/merge-patch+json */
    return n > 17 && strncasecmp(ct, "application/", 12) == 0 &&
           strncasecmp(ct + n - 5, "+json", 5) == 0;
}

static int parse_body(struct ctx *c, json_t **out)
{
    *out = NULL;
    if (c->req.body_len == 0)
        return 0; /* absent: the schema decides whether that is allowed */
    const char *ct = ctx_header(c, "Content-Type");
    if (!ct || !is_json_type(ct))
        return ctx_fail_status(c, 400, "Content-Type must be application/json, got %s",
                               ct ? ct : "none");
    size_t bad = 0;
    if (!utf8_valid(c->req.body, c->req.body_len, &bad)) {
        json_t *d = json_pack("{s:s, s:I}", "reason", "invalid_utf8", "position", (json_int_t)bad);
        return ctx_fail_details(c, ZY_E_HTTP, 400, d, "Request body is not valid UTF-8");
    }
    json_error_t err;
    json_t *v =
        json_loadb(c->req.body, c->req.body_len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
    if (!v) {
        json_t *d =
            json_pack("{s:s, s:i, s:i, s:i, s:s}", "reason", "malformed_json", "line", err.line,
                      "column", err.column, "position", err.position, "detail", err.text);
        return ctx_fail_details(c, ZY_E_HTTP, 400, d, "Malformed JSON in request body");
    }
    *out = v;
    return 0;
}

int validate_request(struct ctx *c)
{
    const struct route *r = c->route;
    if (r->params) {
        json_t *o = json_object();
        for (size_t i = 0; i < c->nparams; i++)
            json_object_set_new(o, c->params[i].name, jx_str(c->params[i].value));
        if (check(c, r->params, o, &c->path_params) < 0)
            return -1;
    }
    if (r->query && check(c, r->query, query_object(c, r->query), &c->query) < 0)
        return -1;
    if (r->body) {
        json_t *body;
        if (parse_body(c, &body) < 0)
            return -1;
        if (!body) {
            struct schema_issues is;
            schema_issues_init(&is, c->arena);
            schema_issue_add(&is, "", "invalid_type", "Required");
            return fail_issues(c, &is);
        }
        if (check(c, r->body, body, &c->body) < 0)
            return -1;
    }
    return 0;
}
