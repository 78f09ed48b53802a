/*
 * openapi.c — the OpenAPI 3.1 document built from the route table; see openapi.h.
 *
 * Owns the error envelope's schema (the specification's error handler writes
 * {error, message, statusCode, timestamp, requestId, details?}) and the standard error
 * responses every operation lists. Error codes come from lib/error.c, the one table of them.
 */
#include "lib/common.h"

#include "http/openapi.h"
#include "lib/buf.h"
#include "lib/error.h"
#include "lib/schema.h"

#define ERROR_SCHEMA "ErrorResponse"
#define MAX_RESPONSES 32

/* ---- the error envelope ------------------------------------------------------------------ */

static const struct schema issue_schema = {
    .type = SCHEMA_OBJECT,
    .ref = "ValidationIssue",
    .description = "One problem with the request, as Zod reports it",
    .props =
        (const struct schema_prop[]){
            {"path",
             &(const struct schema){.type = SCHEMA_STRING,
                                    .description = "Dotted path of the value; empty for the whole "
                                                   "input",
                                    .example = "\"items.0.name\""},
             true},
            {"message", &(const struct schema){.type = SCHEMA_STRING, .example = "\"Required\""},
             true},
            {"code", &(const struct schema){.type = SCHEMA_STRING, .example = "\"invalid_type\""},
             true},
            {NULL},
        },
};

static const struct schema error_details_schema = {
    .type = SCHEMA_OBJECT,
    .allow_unknown = true,
    .description = "Extra facts about the error, when there are any",
    .props =
        (const struct schema_prop[]){
            {"issues",
             &(const struct schema){.type = SCHEMA_ARRAY,
                                    .description = "Every validation problem (VALIDATION_ERROR)",
                                    .items = &issue_schema},
             false},
            {"retryAfter",
             &(const struct schema){.type = SCHEMA_INTEGER,
                                    .description = "Seconds to wait (RATE_LIMIT_EXCEEDED)",
                                    .has_min = true},
             false},
            {NULL},
        },
};

/* "error" gets its enum from lib/error.c when the document is built. */
static const struct schema error_schema = {
    .type = SCHEMA_OBJECT,
    .ref = ERROR_SCHEMA,
    .description = "The envelope of every error response",
    .example = "{\"error\":\"RESOURCE_NOT_FOUND\",\"message\":\"User with ID 42 not found\","
               "\"statusCode\":404,\"timestamp\":\"2026-01-26T10:00:00.000Z\","
               "\"requestId\":\"8c6f2a9e-4f7d-4b8a-9d1e-2a3b4c5d6e7f\"}",
    .props =
        (const struct schema_prop[]){
            {"error", &(const struct schema){.type = SCHEMA_STRING, .description = "Error code"},
             true},
            {"message",
             &(const struct schema){.type = SCHEMA_STRING, .description = "Human-readable message"},
             true},
            {"statusCode",
             &(const struct schema){
                 .type = SCHEMA_INTEGER, .has_min = true, .min = 400, .has_max = true, .max = 599},
             true},
            {"timestamp",
             &(const struct schema){.type = SCHEMA_STRING, .format = SCHEMA_FMT_DATETIME}, true},
            {"requestId",
             &(const struct schema){.type = SCHEMA_STRING,
                                    .description = "Also sent as the X-Request-Id header"},
             true},
            {"details", &error_details_schema, false},
            {NULL},
        },
};

/* The standard error responses, shared under components.responses. */
static const struct std_response {
    int status;
    const char *name;
    const char *description;
} std_responses[] = {
    {400, "ValidationError", "The request failed validation; details.issues lists every problem"},
    {401, "Unauthorized", "Missing, invalid or expired access token"},
    {403, "Forbidden", "The caller lacks the permission this operation needs"},
    {404, "NotFound", "No such resource in the caller's tenant"},
    {429, "RateLimited", "Too many requests; details.retryAfter says how many seconds to wait"},
    {500, "InternalError", "Unexpected server error"},
};

/* ---- generator state --------------------------------------------------------------------- */

/* The parts being filled in; each is handed to the document (or dropped) at the end. */
struct gen {
    json_t *paths;
    json_t *tags;      /* in order of first use */
    json_t *tag_index; /* tag name -> its entry in tags */
    json_t *schemas;   /* components.schemas */
    json_t *responses; /* components.responses: only the shared errors some operation uses */
    json_t *op_ids;    /* operationIds used so far (a set) */
};

static const char *const method_keys[HTTP_METHOD_COUNT] = {
    [HTTP_GET] = "get",         [HTTP_HEAD] = "head",   [HTTP_POST] = "post",
    [HTTP_PUT] = "put",         [HTTP_PATCH] = "patch", [HTTP_DELETE] = "delete",
    [HTTP_OPTIONS] = "options",
};

static json_t *ref_to(const char *section, const char *name)
{
    return json_pack("{s:o}", "$ref", json_sprintf("#/components/%s/%s", section, name));
}

/* A schema for the document: named parts go to components.schemas, the rest inline. */
static json_t *use_schema(struct gen *g, const struct schema *s)
{
    schema_collect_components(s, g->schemas);
    return schema_to_json(s, true);
}

static json_t *media(const char *type, json_t *schema)
{
    return json_pack("{s:{s:o}}", type, "schema", schema);
}

static json_t *error_content(void)
{
    return media("application/json", ref_to("schemas", ERROR_SCHEMA));
}

/* ---- paths and parameters ---------------------------------------------------------------- */

/* "/users/:id" -> "/users/{id}", the parameter names appended to `names`; caller frees. */
static char *path_template(const char *full, json_t *names)
{
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    const char *p = full;
    while (*p) {
        if (*p == ':' && (p == full || p[-1] == '/')) {
            size_t n = strcspn(p + 1, "/");
            json_array_append_new(names, json_stringn(p + 1, n));
            buf_printf(&b, "{%.*s}", (int)n, p + 1);
            p += 1 + n;
        } else {
            buf_putc(&b, *p++);
        }
    }
    return buf_detach(&b, NULL);
}

static const struct schema_prop *find_prop(const struct schema *obj, const char *name)
{
    for (const struct schema_prop *p = obj ? obj->props : NULL; p && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return p;
    return NULL;
}

static json_t *parameter(struct gen *g, const char *name, const char *in, bool required,
                         const struct schema *s)
{
    json_t *o = json_pack("{s:s, s:s}", "name", name, "in", in);
    if (required)
        json_object_set_new(o, "required", json_true());
    if (s->description)
        json_object_set_new(o, "description", json_string(s->description));
    json_object_set_new(o, "schema", use_schema(g, s));
    return o;
}

/* Path parameters in template order (a parameter the params schema lacks is a string), then
 * the query schema's properties. NULL when there are none. */
static json_t *parameters(struct gen *g, const struct route *r, json_t *path_names)
{
    static const struct schema plain_string = {.type = SCHEMA_STRING};
    json_t *list = json_array();
    size_t i;
    json_t *name;
    json_array_foreach (path_names, i, name) {
        const struct schema_prop *p = find_prop(r->params, json_string_value(name));
        json_array_append_new(list, parameter(g, json_string_value(name), "path", true,
                                              p ? p->schema : &plain_string));
    }
    for (const struct schema_prop *p = r->query ? r->query->props : NULL; p && p->name; p++)
        json_array_append_new(list, parameter(g, p->name, "query",
                                              p->required && !p->schema->default_json, p->schema));
    if (json_array_size(list))
        return list;
    json_decref(list);
    return NULL;
}

/* ---- operation ids, tags, security ------------------------------------------------------- */

/* getApiV1UsersById for GET /api/v1/users/:id. */
static void derive_operation_id(struct buf *b, const struct route *r, const char *full)
{
    buf_puts(b, method_keys[r->method]);
    size_t start = b->len;
    bool upper = true;
    for (const char *p = full; *p; p++) {
        if (*p == ':' && (p == full || p[-1] == '/')) {
            buf_puts(b, "By");
            upper = true;
        } else if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                   (*p >= '0' && *p <= '9')) {
            buf_putc(b, upper && *p >= 'a' && *p <= 'z' ? (char)(*p - 'a' + 'A') : *p);
            upper = false;
        } else {
            upper = true; /* '/', '-', '_', '.' start a new word */
        }
    }
    if (b->len == start)
        buf_puts(b, "Root");
}

/* The route's operationId (or one derived from method and path), made unique with _2, _3. */
static json_t *operation_id(struct gen *g, const struct route *r, const char *full)
{
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    if (r->operation_id)
        buf_puts(&b, r->operation_id);
    else
        derive_operation_id(&b, r, full);
    size_t base = b.len;
    for (int n = 2; json_object_get(g->op_ids, buf_cstr(&b)); n++) {
        b.len = base;
        buf_printf(&b, "_%d", n);
    }
    json_object_set_new(g->op_ids, buf_cstr(&b), json_true());
    json_t *id = json_string(buf_cstr(&b));
    buf_free(&b);
    return id;
}

/* Adds the tag to the document's list on first use; the group's description describes it. */
static void note_tag(struct gen *g, const char *tag, const char *description)
{
    json_t *t = json_object_get(g->tag_index, tag);
    if (!t) {
        t = json_pack("{s:s}", "name", tag);
        json_array_append_new(g->tags, t);
        json_object_set(g->tag_index, tag, t);
    }
    if (description && !json_object_get(t, "description"))
        json_object_set_new(t, "description", json_string(description));
}

static json_t *security(enum route_auth auth)
{
    switch (auth) {
    case ROUTE_PUBLIC:
        return json_array();
    case ROUTE_AUTH:
        return json_pack("[{s:[]}]", "bearerAuth");
    case ROUTE_AUTH_OPTIONAL:
        return json_pack("[{s:[]}, {}]", "bearerAuth"); /* {}: no token */
    }
    return json_array();
}

/* ---- responses --------------------------------------------------------------------------- */

struct resp_entry {
    int status;
    json_t *v;
};

static int resp_cmp(const void *a, const void *b)
{
    return ((const struct resp_entry *)a)->status - ((const struct resp_entry *)b)->status;
}

static bool resp_has(const struct resp_entry *e, size_t n, int status)
{
    for (size_t i = 0; i < n; i++)
        if (e[i].status == status)
            return true;
    return false;
}

static json_t *route_response(struct gen *g, const struct route_response *rr)
{
    const char *desc = rr->description ? rr->description : zy_http_reason(rr->status);
    json_t *o = json_pack("{s:s}", "description", desc);
    if (rr->content_type)
        json_object_set_new(o, "content",
                            media(rr->content_type, json_pack("{s:s}", "type", "string")));
    else if (rr->schema)
        json_object_set_new(o, "content", media("application/json", use_schema(g, rr->schema)));
    else if (rr->status >= 400)
        json_object_set_new(o, "content", error_content()); /* every error is the envelope */
    return o;
}

static bool std_applies(const struct route *r, int status, bool path_params)
{
    switch (status) {
    case 400:
        return r->params || r->query || r->body;
    case 401:
        return r->auth != ROUTE_PUBLIC;
    case 403:
        return r->permission || r->permission_any || r->permission_check;
    case 404:
        return path_params;
    default:
        return true;
    }
}

/* A $ref to the shared response, written to components.responses on first use. */
static json_t *std_response_ref(struct gen *g, const struct std_response *sr)
{
    if (!json_object_get(g->responses, sr->name))
        json_object_set_new(
            g->responses, sr->name,
            json_pack("{s:s, s:o}", "description", sr->description, "content", error_content()));
    return ref_to("responses", sr->name);
}

/* The route's own responses, then the standard errors it lacks, ordered by status. */
static json_t *responses(struct gen *g, const struct route *r, bool path_params)
{
    struct resp_entry e[MAX_RESPONSES];
    size_t n = 0;
    for (const struct route_response *rr = r->responses; rr && rr->status; rr++)
        if (n < MAX_RESPONSES - ARRAY_LEN(std_responses) && !resp_has(e, n, rr->status))
            e[n++] = (struct resp_entry){rr->status, route_response(g, rr)};
    if (!r->responses)
        e[n++] = (struct resp_entry){200, json_pack("{s:s}", "description", "OK")};
    for (size_t i = 0; i < ARRAY_LEN(std_responses); i++) {
        const struct std_response *sr = &std_responses[i];
        if (std_applies(r, sr->status, path_params) && !resp_has(e, n, sr->status))
            e[n++] = (struct resp_entry){sr->status, std_response_ref(g, sr)};
    }
    qsort(e, n, sizeof(e[0]), resp_cmp);
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        char key[16];
        snprintf(key, sizeof(key), "%d", e[i].status);
        json_object_set_new(o, key, e[i].v);
    }
    return o;
}

/* ---- operations -------------------------------------------------------------------------- */

static char *full_path(const struct route_group *grp, const struct route *r)
{
    const char *prefix = grp->prefix ? grp->prefix : "";
    size_t lp = strlen(prefix), lr = strlen(r->path);
    char *full = xmalloc(lp + lr + 1);
    memcpy(full, prefix, lp);
    memcpy(full + lp, r->path, lr + 1);
    return full;
}

/* The Operation Object. `full` is the routed path, `tpl` its OpenAPI form. */
static json_t *operation(struct gen *g, const struct route_group *grp, const struct route *r,
                         const char *full, const char *tpl, json_t *path_names)
{
    json_t *op = json_object();
    if (r->tag) {
        json_object_set_new(op, "tags", json_pack("[s]", r->tag));
        note_tag(g, r->tag, grp->tag_description);
    }
    if (r->summary)
        json_object_set_new(op, "summary", json_string(r->summary));
    else
        json_object_set_new(op, "summary", json_sprintf("%s %s", method_keys[r->method], tpl));
    if (r->description)
        json_object_set_new(op, "description", json_string(r->description));
    json_object_set_new(op, "operationId", operation_id(g, r, full));
    json_object_set_new(op, "security", security(r->auth));
    if (r->permission)
        json_object_set_new(op, "x-permission", json_string(r->permission));
    if (r->permission_any) {
        json_t *any = json_array();
        for (size_t i = 0; r->permission_any[i]; i++)
            json_array_append_new(any, json_string(r->permission_any[i]));
        json_object_set_new(op, "x-permission-any", any);
    }
    json_t *params = parameters(g, r, path_names);
    if (params)
        json_object_set_new(op, "parameters", params);
    if (r->body)
        json_object_set_new(op, "requestBody",
                            json_pack("{s:b, s:o}", "required", 1, "content",
                                      media("application/json", use_schema(g, r->body))));
    json_object_set_new(op, "responses", responses(g, r, json_array_size(path_names) > 0));
    return op;
}

static void add_operation(struct gen *g, const struct route_group *grp, const struct route *r)
{
    if ((r->flags & ROUTE_HIDDEN) || (unsigned)r->method >= HTTP_METHOD_COUNT ||
        !method_keys[r->method])
        return;
    char *full = full_path(grp, r);
    json_t *names = json_array();
    char *tpl = path_template(full, names);
    json_t *item = json_object_get(g->paths, tpl);
    if (!item) {
        item = json_object();
        json_object_set_new(g->paths, tpl, item);
    }
    /* A second route for the same method and path never matches: the router takes the first. */
    const char *key = method_keys[r->method];
    if (!json_object_get(item, key))
        json_object_set_new(item, key, operation(g, grp, r, full, tpl, names));
    free(tpl);
    free(full);
    json_decref(names);
}

/* components.schemas.ErrorResponse, with the error codes of lib/error.c as its enum. */
static void add_error_schema(struct gen *g)
{
    schema_collect_components(&error_schema, g->schemas);
    json_t *codes = json_array();
    /* ZY_E_VALIDATION .. ZY_E_INTERNAL are every error code, in the order error.h lists them */
    for (int e = ZY_E_VALIDATION; e <= ZY_E_INTERNAL; e++)
        json_array_append_new(codes, json_string(zy_err_name((enum zy_err)e)));
    json_t *code = json_object_get(
        json_object_get(json_object_get(g->schemas, ERROR_SCHEMA), "properties"), "error");
    json_object_set_new(code, "enum", codes);
}

static json_t *info_json(const struct openapi_info *info)
{
    const char *license = info->license ? info->license : "MIT";
    json_t *o = json_pack("{s:s, s:s}", "title", info->title, "version", info->version);
    if (info->description)
        json_object_set_new(o, "description", json_string(info->description));
    json_object_set_new(o, "license",
                        json_pack("{s:s, s:s}", "name", license, "identifier", license));
    return o;
}

json_t *openapi_document(const struct route_group *groups, size_t ngroups,
                         const struct openapi_info *info)
{
    json_t *doc = json_pack("{s:s, s:o}", "openapi", "3.1.0", "info", info_json(info));
    if (info->server_url)
        json_object_set_new(doc, "servers", json_pack("[{s:s}]", "url", info->server_url));
    /* Secure by default (the specification's principle); every operation still says what it
     * needs, public ones with an empty list. */
    json_object_set_new(doc, "security", security(ROUTE_AUTH));
    struct gen g = {
        .paths = json_object(),
        .tags = json_array(),
        .tag_index = json_object(),
        .schemas = json_object(),
        .responses = json_object(),
        .op_ids = json_object(),
    };
    add_error_schema(&g);
    for (size_t i = 0; i < ngroups; i++)
        for (size_t j = 0; j < groups[i].count; j++)
            add_operation(&g, &groups[i], &groups[i].routes[j]);

    if (json_array_size(g.tags))
        json_object_set_new(doc, "tags", g.tags);
    else
        json_decref(g.tags);
    json_object_set_new(doc, "paths", g.paths);
    json_t *components = json_pack("{s:o}", "schemas", g.schemas);
    if (json_object_size(g.responses))
        json_object_set_new(components, "responses", g.responses);
    else
        json_decref(g.responses);
    json_object_set_new(components, "securitySchemes",
                        json_pack("{s:{s:s, s:s, s:s}}", "bearerAuth", "type", "http", "scheme",
                                  "bearer", "bearerFormat", "JWT"));
    json_object_set_new(doc, "components", components);
    json_decref(g.tag_index);
    json_decref(g.op_ids);
    return doc;
}
