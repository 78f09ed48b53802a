/*
 * router.c — matching requests against the route table; see router.h.
 *
 * Routes are few (tens), so a flat array of pre-split paths scanned segment by segment is
 * both simple and fast; static segments are compared before parameters are captured.
 */
#include "lib/common.h"

#include "http/router.h"

#define ROUTER_MAX_SEGS 16

struct router_entry {
    const struct route *route;
    char *full_path;
    size_t nsegs;
    char *segs[ROUTER_MAX_SEGS]; /* pointers into seg_storage; ":name" for parameters */
    char *seg_storage;
};

struct router {
    struct router_entry *entries;
    size_t count;
};

/* Splits "/a/b/:c" in place into segments; returns the count, or -1 if there are too many. */
static int split_path(char *p, char **segs, size_t max)
{
    size_t n = 0;
    if (*p == '/')
        p++;
    if (*p == '\0')
        return 0;
    for (;;) {
        if (n == max)
            return -1;
        segs[n++] = p;
        char *slash = strchr(p, '/');
        if (!slash)
            break;
        *slash = '\0';
        p = slash + 1;
    }
    return (int)n;
}

struct router *router_new(const struct route_group *groups, size_t ngroups)
{
    struct router *r = xcalloc(1, sizeof(*r));
    size_t total = 0;
    for (size_t g = 0; g < ngroups; g++)
        total += groups[g].count;
    r->entries = xcalloc(total ? total : 1, sizeof(*r->entries));
    for (size_t g = 0; g < ngroups; g++) {
        for (size_t i = 0; i < groups[g].count; i++) {
            struct router_entry *e = &r->entries[r->count++];
            const struct route *rt = &groups[g].routes[i];
            size_t lp = strlen(groups[g].prefix), lr = strlen(rt->path);
            e->route = rt;
            e->full_path = xmalloc(lp + lr + 1);
            memcpy(e->full_path, groups[g].prefix, lp);
            memcpy(e->full_path + lp, rt->path, lr + 1);
            e->seg_storage = xstrdup(e->full_path);
            int n = split_path(e->seg_storage, e->segs, ROUTER_MAX_SEGS);
            if (n < 0) {
                fprintf(stderr, "router: too many segments in %s\n", e->full_path);
                abort();
            }
            e->nsegs = (size_t)n;
        }
    }
    return r;
}

void router_free(struct router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->count; i++) {
        free(r->entries[i].full_path);
        free(r->entries[i].seg_storage);
    }
    free(r->entries);
    free(r);
}

static bool entry_matches(const struct router_entry *e, char **segs, size_t nsegs,
                          struct router_match *m)
{
    if (e->nsegs != nsegs)
        return false;
    for (size_t i = 0; i < nsegs; i++)
        if (e->segs[i][0] != ':' && strcmp(e->segs[i], segs[i]) != 0)
            return false;
    m->nparams = 0;
    for (size_t i = 0; i < nsegs; i++) {
        if (e->segs[i][0] != ':')
            continue;
        if (segs[i][0] == '\0' || m->nparams == ARRAY_LEN(m->params))
            return false; /* an empty segment never fills a parameter */
        m->params[m->nparams].name = e->segs[i] + 1;
        m->params[m->nparams].value = segs[i];
        m->nparams++;
    }
    return true;
}

enum router_result router_match(const struct router *r, enum http_method method, const char *path,
                                char *scratch, struct router_match *m)
{
    char *segs[ROUTER_MAX_SEGS];
    memset(m, 0, sizeof(*m));
    size_t len = strlen(path);
    memcpy(scratch, path, len + 1);
    int n = split_path(scratch, segs, ROUTER_MAX_SEGS);
    if (n < 0)
        return ROUTER_NOT_FOUND;
    enum http_method want = method == HTTP_HEAD ? HTTP_GET : method;
    struct router_match probe;
    for (size_t i = 0; i < r->count; i++) {
        const struct router_entry *e = &r->entries[i];
        if (!entry_matches(e, segs, (size_t)n, &probe))
            continue;
        m->allowed |= 1u << e->route->method;
        if (e->route->method == want && !m->route) {
            probe.route = e->route;
            probe.full_path = e->full_path;
            probe.allowed = m->allowed;
            *m = probe;
        }
    }
    if (m->route) {
        return ROUTER_FOUND;
    }
    if (m->allowed)
        return ROUTER_METHOD_NOT_ALLOWED;
    return ROUTER_NOT_FOUND;
}

size_t router_count(const struct router *r)
{
    return r->count;
}

const struct route *router_at(const struct router *r, size_t i, const char **full_path)
{
    if (i >= r->count)
        return NULL;
    if (full_path)
        *full_path = r->entries[i].full_path;
    return r->entries[i].route;
}

void router_allow_header(unsigned allowed, char *out, size_t n)
{
    size_t w = 0;
    out[0] = '\0';
    if (allowed & (1u << HTTP_GET))
        allowed |= 1u << HTTP_HEAD;
    allowed |= 1u << HTTP_OPTIONS; /* CORS preflight answers OPTIONS everywhere */
    for (int mth = 0; mth < HTTP_OTHER; mth++) {
        if (!(allowed & (1u << mth)))
            continue;
        int k = snprintf(out + w, n - w, "%s%s", w ? ", " : "", http_method_name(mth));
        if (k < 0 || (size_t)k >= n - w)
            break;
        w += (size_t)k;
    }
}
