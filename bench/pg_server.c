/*
 * pg_server.c — the benchmark's Zygo server for the PostgreSQL read: the real app (all route
 * groups, all global middleware, the libmicrohttpd server, the PostgreSQL pool) plus one
 * benchmark route, GET /bench/users/:id, that reads one user by primary key as GET
 * /api/v1/users/:id does (users_send_one), scoped to the tenant named by X-Tenant-ID (what the
 * auth middleware takes from the token there). Built with `make bench-server`; run by bench/run-pg.sh.
 *
 * Also POST /bench/publish?room=R with a JSON body: broadcastToRoom(R, body) through the app's
 * real-time bus, the trigger of bench/run-ws.sh's fan-out latency.
 */
#include "lib/common.h"

#include <pthread.h>
#include <signal.h>

#include "http/app.h"
#include "http/server.h"
#include "lib/config.h"
#include "lib/log.h"
#include "routes/routes.h"
#include "routes/users.h"
#include "services/database.h"
#include "services/realtime.h"

extern char **environ;

static int get_user(struct ctx *c)
{
    const char *tenant = ctx_header(c, "X-Tenant-ID");
    if (!tenant)
        return ctx_fail(c, ZY_E_UNAUTHORIZED, "X-Tenant-ID required");
    if (users_send_one_async(c, tenant, ctx_param(c, "id")) == CTX_PENDING)
        return CTX_PENDING;
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    return users_send_one(c, db, tenant, ctx_param(c, "id"), 200);
}

static int publish(struct ctx *c)
{
    const char *room = ctx_query(c, "room");
    if (!room || !c->req.body_len)
        return ctx_fail_status(c, 400, "room and a JSON body required");
    realtime_publish_room(app_realtime(c->app), room, c->req.body, c->req.body_len);
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

static const struct route bench_routes[] = {
    {.method = HTTP_GET, .path = "/users/:id", .handler = get_user},
    /* only queues on the hub: cheap enough for the I/O thread */
    {.method = HTTP_POST, .path = "/publish", .handler = publish, .flags = ROUTE_INLINE},
};

int main(void)
{
    struct config cfg;
    struct config_errors errs;
    if (config_load(&cfg, environ, &errs) < 0) {
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "config: %s\n", errs.v[i]);
        return 1;
    }
    log_init(cfg.log_level, false, 1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    struct db *db;
    struct migrate_report rep;
    char err[1024];
    if (database_open(&cfg, &db, &rep, err, sizeof(err)) < 0) {
        fprintf(stderr, "database: %s\n", err);
        return 1;
    }
    migrate_report_free(&rep);
    size_t n;
    const struct route_group *real = routes_groups(&n);
    struct route_group groups[32];
    if (n >= ARRAY_LEN(groups))
        return 1;
    memcpy(groups, real, n * sizeof(*groups));
    groups[n++] = (struct route_group){"/bench", bench_routes, ARRAY_LEN(bench_routes), NULL};
    struct app *app = app_new(&cfg, db, groups, n);
    struct server_options so;
    server_options_from_config(&so, app);
    struct server *srv;
    if (server_start(&srv, app, &so, err, sizeof(err)) < 0) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    log_msg(LOG_INFO, "bench server on port %d", server_port(srv));
    int sig;
    sigwait(&set, &sig);
    server_shutdown(srv, 5);
    server_free(srv);
    app_free(app);
    db_close(db);
    config_free(&cfg);
    return 0;
}
