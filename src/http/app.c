/* app.c — the request pipeline shared by every transport; see app.h. */
#include "lib/common.h"

#include "db/db.h"
#include "http/app.h"
#include "http/openapi.h"
#include "jobs/queue.h"
#include "lib/config.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "lib/secretbox.h"
#include "services/mailer.h"
#include "services/oauth.h"
#include "services/realtime.h"
#include "lib/url.h"
#include "middleware/auth.h"
#include "middleware/cors.h"
#include "middleware/error.h"
#include "middleware/logger.h"
#include "middleware/rate_limit.h"
#include "middleware/request_id.h"
#include "middleware/secure_headers.h"
#include "middleware/timing.h"
#include "middleware/validate.h"

#define APP_MAX_QUERY_PARAMS 128

/* Global middleware in the specification's order (app.ts). */
static const struct middleware *const global_mw[] = {
    &mw_request_id, &mw_timing, &mw_secure_headers, &mw_cors, &mw_logger,
};

struct app {
    const struct config *cfg;
    struct db *db;
    struct router *router;
    char *openapi;
    size_t openapi_len;
    struct rl_store *rate_limits;
    struct secretbox_keyring keyring;
    struct mailer *mailer;
    struct oauth_providers oauth;
    struct realtime *realtime;
    uint64_t started_ns;
};

struct app *app_new(const struct config *cfg, struct db *db, const struct route_group *groups,
                    size_t ngroups)
{
    struct app *app = xcalloc(1, sizeof(*app));
    app->cfg = cfg;
    app->db = db;
    app->router = router_new(groups, ngroups);
    if (cfg->rate_limit_enabled)
        app->rate_limits = rl_store_new(100000);
    app->mailer = mailer_new(cfg);
    struct config_errors oerr = {0};
    /* main checked these at start; an app built elsewhere (tests) just logs */
    if (oauth_providers_load(&app->oauth, oauth_envp_get, cfg->vars, cfg->api_url, &oerr) < 0)
        for (size_t i = 0; i < oerr.n; i++)
            log_msg(LOG_WARN, "oauth: %s", oerr.v[i]);
    config_errors_free(&oerr);
    app->realtime = realtime_new(db);
    if (db && db_dialect(db) == DB_POSTGRES)
        realtime_set_listen_url(app->realtime, cfg->database_url);
    secretbox_keyring_init(&app->keyring);
    secretbox_keyring_add(&app->keyring, 1, cfg->encryption_key);
    app->started_ns = zy_now_ns();
    struct openapi_info info = {
        .title = "Zygo API",
        .version = ZYGO_VERSION,
        .description = "Multi-tenant platform backend.",
        .server_url = cfg->api_url,
    };
    json_t *doc = openapi_document(groups, ngroups, &info);
    app->openapi = jx_dump(doc, &app->openapi_len);
    json_decref(doc);
    return app;
}

void app_free(struct app *app)
{
    if (!app)
        return;
    router_free(app->router);
    rl_store_free(app->rate_limits);
    secretbox_keyring_free(&app->keyring);
    mailer_free(app->mailer);
    oauth_providers_free(&app->oauth);
    realtime_free(app->realtime);
    free(app->openapi);
    free(app);
}

const struct config *app_config(const struct app *app)
{
    return app->cfg;
}

const struct oauth_providers *app_oauth(const struct app *app)
{
    return &app->oauth;
}

struct mailer *app_mailer(const struct app *app)
{
    return app->mailer;
}

const struct secretbox_keyring *app_keyring(const struct app *app)
{
    return &app->keyring;
}

struct realtime *app_realtime(const struct app *app)
{
    return app->realtime;
}

struct rl_store *app_rate_limits(const struct app *app)
{
    return app->rate_limits;
}

struct db *app_db(const struct app *app)
{
    return app->db;
}

const struct router *app_router(const struct app *app)
{
    return app->router;
}

const char *app_openapi_json(const struct app *app, size_t *len)
{
    *len = app->openapi_len;
    return app->openapi;
}

double app_uptime_s(const struct app *app)
{
    return (double)(zy_now_ns() - app->started_ns) / 1e9;
}

static void ctx_release(void *p)
{
    struct ctx *c = p;
    json_decref(c->err_details);
    c->err_details = NULL;
}

struct ctx *app_ctx_new(const struct app *app)
{
    struct arena *a = arena_new();
    struct ctx *c = arena_alloc(a, sizeof(*c));
    c->arena = a;
    c->app = app;
    c->start_ns = zy_now_ns();
    arena_on_free(a, ctx_release, c);
    return c;
}

void app_ctx_free(struct ctx *c)
{
    if (c)
        arena_free(c->arena);
}

/* No route: 405 with Allow when the path exists for other methods, else 404. */
static void route_not_found(struct ctx *c)
{
    if (c->route_allowed) {
        char allow[128];
        router_allow_header(c->route_allowed, allow, sizeof(allow));
        ctx_set_header(c, "Allow", allow);
        ctx_fail_status(c, 405, "Method %s not allowed for %s", c->req.method_name, c->req.path);
    } else {
        ctx_fail(c, ZY_E_ROUTE_NOT_FOUND, "Route %s %s not found", c->req.method_name, c->req.path);
    }
}

bool app_route(const struct app *app, struct ctx *c)
{
    struct router_match m;
    char *scratch = arena_alloc(c->arena, strlen(c->req.path) + 1);
    enum router_result rr = router_match(app->router, c->req.method, c->req.path, scratch, &m);
    c->route_allowed = m.allowed;
    if (rr != ROUTER_FOUND) {
        c->route = NULL;
        return false;
    }
    c->route = m.route;
    c->nparams = m.nparams;
    c->params = arena_alloc(c->arena, (m.nparams ? m.nparams : 1) * sizeof(struct kv));
    for (size_t i = 0; i < m.nparams; i++) {
        c->params[i].name = m.params[i].name;
        c->params[i].value = m.params[i].value;
    }
    return !(m.route->flags & ROUTE_INLINE);
}

/* A handler that forgot to answer is a bug, not a 200. */
static int handler_answered(struct ctx *c)
{
    if (!c->res.status)
        return ctx_fail(c, ZY_E_INTERNAL, "handler for %s set no response",
                        c->route ? c->route->path : "?");
    return 0;
}

/* The route phases, in the specification's order: auth → tenant → rate limit → RBAC →
 * validate → handler. A per-address budget is counted before anything else, so floods of bad
 * tokens or unknown paths are limited too. */
static int run_route(struct ctx *c)
{
    if (rate_limit_check(c) < 0)
        return -1;
    if (!c->route) {
        route_not_found(c);
        return -1;
    }
    if (c->route->auth != ROUTE_PUBLIC) {
        if (auth_authenticate(c) < 0 || auth_tenant(c) < 0)
            return -1;
        if (c->user && rate_limit_check(c) < 0)
            return -1;
    }
    if (auth_require_permission(c) < 0 || validate_request(c) < 0)
        return -1;
    int rc = c->route->tx ? ctx_tx(c, c->route->tx) : c->route->handler(c);
    if (rc == CTX_PENDING)
        return rc; /* c may be answered, even freed, by now: not touched again here */
    return rc < 0 ? -1 : handler_answered(c);
}

/* After the route: the error envelope if it failed, the global middleware's after-phase, and
 * the connection handed back. */
static void app_finish(struct ctx *c, int rc)
{
    if (rc < 0)
        error_render(c);
    size_t ran = c->mw_ran;
    while (ran-- > 0)
        if (global_mw[ran]->after)
            global_mw[ran]->after(c);
    /* SQLite connections belong to the thread that acquired them: hand it back here, on the
     * worker, not when the transport frees the request on its I/O thread. */
    if (c->db_conn) {
        db_release(c->db_conn);
        c->db_conn = NULL;
    }
}

bool app_handle(const struct app *app, struct ctx *c)
{
    (void)app;
    size_t ran = 0;
    enum mw_result r = MW_NEXT;
    bool preset = c->err != ZY_OK; /* transport error found before the pipeline */
    for (; ran < ARRAY_LEN(global_mw) && r == MW_NEXT; ran++) {
        if (global_mw[ran]->before)
            r = global_mw[ran]->before(c);
    }
    c->mw_ran = ran; /* before the route: an answer given later finishes from here */
    int rc = preset || r == MW_ERROR ? -1 : 0; /* MW_DONE: answered by the middleware */
    if (!preset && r == MW_NEXT) {
        rc = run_route(c);
        if (rc == CTX_PENDING)
            return false;
    }
    app_finish(c, rc);
    return true;
}

static void async_done(void *arg, struct db_rows *rows, enum db_errkind kind, const char *errmsg)
{
    struct ctx *c = arg;
    int rc = c->async_fn(c, rows, (int)kind, errmsg);
    db_rows_free(rows);
    if (rc == 0)
        rc = handler_answered(c);
    app_finish(c, rc < 0 ? -1 : 0);
    c->on_done(c->on_done_arg);
}

int ctx_query_async(struct ctx *c, const char *tenant, const char *sql, const struct db_param *p,
                    size_t n,
                    int (*done)(struct ctx *c, struct db_rows *rows, int errkind,
                                const char *errmsg))
{
    if (!c->on_done || (c->db_conn && db_in_transaction(c->db_conn)))
        return 0;
    /* a connection held from the earlier phases (auth) is not needed while waiting: on
     * PostgreSQL (the only driver that can be here) it goes back to the pool now */
    if (db_dialect(app_db(c->app)) != DB_POSTGRES)
        return 0;
    if (c->db_conn) {
        db_release(c->db_conn);
        c->db_conn = NULL;
    }
    c->async_fn = done;
    return db_query_async(app_db(c->app), tenant, false, sql, p, n, async_done, c) == 0
               ? CTX_PENDING
               : 0;
}

void app_parse_target(struct ctx *c, const char *target)
{
    const char *q = strchr(target, '?');
    size_t plen = q ? (size_t)(q - target) : strlen(target);
    char *path = arena_strndup(c->arena, target, plen);
    url_decode(path, false);
    c->req.path = path;
    if (q) {
        c->req.query = arena_strdup(c->arena, q + 1);
        url_parse_query(c->arena, c->req.query, &c->req.query_params, &c->req.nquery,
                        APP_MAX_QUERY_PARAMS);
    }
}

struct ctx *app_request(const struct app *app, const char *method, const char *target,
                        const char *const *headers, const char *body, size_t body_len)
{
    struct ctx *c = app_ctx_new(app);
    c->req.method_name = arena_strdup(c->arena, method);
    c->req.method = http_method_parse(method);
    c->req.client_ip = "127.0.0.1";
    app_parse_target(c, target);
    size_t nh = 0;
    while (headers && headers[nh])
        nh++;
    c->req.headers = arena_alloc(c->arena, (nh ? nh : 1) * sizeof(struct kv));
    for (size_t i = 0; i < nh; i++) {
        const char *colon = strchr(headers[i], ':');
        if (!colon)
            continue;
        const char *v = colon + 1;
        while (*v == ' ')
            v++;
        c->req.headers[c->req.nheaders].name =
            arena_strndup(c->arena, headers[i], (size_t)(colon - headers[i]));
        c->req.headers[c->req.nheaders].value = arena_strdup(c->arena, v);
        c->req.nheaders++;
    }
    c->req.body = arena_strndup(c->arena, body ? body : "", body ? body_len : 0);
    c->req.body_len = body ? body_len : 0;
    if (c->req.body_len > app->cfg->http_body_limit)
        ctx_fail_status(c, 413, "Request body exceeds the limit of %zu bytes",
                        app->cfg->http_body_limit);
    app_route(app, c);
    app_handle(app, c);
    return c;
}

struct db_conn *ctx_db(struct ctx *c)
{
    if (c->db_conn)
        return c->db_conn;
    char err[256];
    struct db_conn *conn = db_acquire(app_db(c->app), err, sizeof(err));
    if (!conn) {
        log_msg(LOG_WARN, "database unavailable: %s", err);
        ctx_set_header(c, "Retry-After", "1");
        ctx_fail_status(c, 503, "Database unavailable");
        return NULL;
    }
    c->db_conn = conn; /* released at the end of app_handle */
    return conn;
}

int ctx_fail_db(struct ctx *c, struct db_conn *conn, const char *conflict)
{
    return ctx_fail_dberr(c, db_errkind(conn), db_errmsg(conn), conflict);
}

int ctx_fail_dberr(struct ctx *c, int errkind, const char *errmsg, const char *conflict)
{
    switch ((enum db_errkind)errkind) {
    case DB_ERR_UNAVAILABLE:
    case DB_ERR_BUSY:
        log_msg(LOG_WARN, "database unavailable: %s", errmsg);
        ctx_set_header(c, "Retry-After", "1");
        return ctx_fail_status(c, 503, "Database unavailable");
    case DB_ERR_UNIQUE:
        return ctx_fail(c, ZY_E_CONFLICT, "%s", conflict ? conflict : "Resource already exists");
    default:
        return ctx_fail(c, ZY_E_INTERNAL, "database: %s", errmsg);
    }
}

struct ctx_hook {
    struct ctx_hook *next;
    void (*fn)(struct ctx *c, void *arg);
    void *arg;
};

void ctx_after_commit(struct ctx *c, void (*fn)(struct ctx *c, void *arg), void *arg)
{
    if (!c->db_conn || !db_in_transaction(c->db_conn)) {
        fn(c, arg);
        return;
    }
    struct ctx_hook *h = arena_alloc(c->arena, sizeof(*h));
    *h = (struct ctx_hook){c->after_commit, fn, arg};
    c->after_commit = h;
}

static void wake_jobs(struct ctx *c, void *arg)
{
    (void)c;
    (void)arg;
    jobs_wake();
}

void ctx_wake_jobs(struct ctx *c)
{
    ctx_after_commit(c, wake_jobs, NULL);
}

/* The hooks were pushed newest first: run them oldest first. */
static void run_hooks(struct ctx *c, struct ctx_hook *h)
{
    struct ctx_hook *oldest_first = NULL;
    while (h) {
        struct ctx_hook *next = h->next;
        h->next = oldest_first;
        oldest_first = h;
        h = next;
    }
    for (h = oldest_first; h; h = h->next)
        h->fn(c, h->arg);
}

int ctx_commit_midway(struct ctx *c)
{
    struct db_conn *db = c->db_conn;
    if (!db || db_commit(db) < 0)
        return ctx_fail_db(c, db, NULL);
    struct ctx_hook *hooks = c->after_commit;
    c->after_commit = NULL;
    run_hooks(c, hooks);
    return db_begin(db) < 0 ? ctx_fail_db(c, db, NULL) : 0;
}

int ctx_tx(struct ctx *c, int (*fn)(struct ctx *c, struct db_conn *db))
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    if (db_begin(db) < 0)
        return ctx_fail_db(c, db, NULL);
    c->after_commit = NULL;
    int rc = fn(c, db);
    if (rc < 0)
        db_rollback(db);
    else if (db_commit(db) < 0)
        rc = ctx_fail_db(c, db, NULL);
    struct ctx_hook *hooks = c->after_commit;
    c->after_commit = NULL;
    if (rc == 0)
        run_hooks(c, hooks);
    return rc;
}
