/* server.c — libmicrohttpd transport; see server.h. */
#include "lib/common.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/app.h"
#include "http/server.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/error.h"
#include "lib/log.h"
#include "lib/workq.h"
#include "services/realtime.h"
#include "ws/hub.h"
#include "ws/route.h"

#define SERVER_MAX_HEADERS 128

struct server {
    struct MHD_Daemon *d;
    struct app *app;
    struct server_options o;
    struct workq *pool;
    struct ws_hub *hub;
    atomic_uint inflight;
    atomic_bool stopping;
    int port;
};

enum rs_state {
    RS_NEW,     /* request line seen, access handler not called yet */
    RS_READING, /* headers accepted, reading the body */
    RS_QUEUED,  /* suspended, waiting for or running on a worker */
    RS_DONE,    /* response ready on the ctx, to be queued on the next call */
    RS_ANSWERED /* response queued; anything still arriving is discarded */
};

/* Per-request state; created by the URI callback, freed when MHD reports completion. */
struct req_state {
    struct server *srv;
    struct MHD_Connection *conn;
    struct ctx *c;
    struct buf body;
    enum rs_state state;
};

void server_options_from_config(struct server_options *o, const struct app *app)
{
    const struct config *cfg = app_config(app);
    memset(o, 0, sizeof(*o));
    o->host = cfg->host;
    o->port = cfg->port;
    o->body_limit = cfg->http_body_limit;
    o->header_limit = cfg->http_header_limit;
    o->idle_timeout_s = (unsigned)cfg->http_idle_timeout_s;
    o->request_timeout_s = (unsigned)cfg->http_request_timeout_s;
    o->max_connections = (unsigned)cfg->http_max_connections;
    o->io_threads = (unsigned)cfg->http_io_threads;
    o->workers = (unsigned)cfg->http_workers;
    o->queue_max = 4096;
    if (ws_options_load(&o->ws, cfg->vars, o->ws_error, sizeof(o->ws_error)) < 0)
        log_msg(LOG_WARN, "%s", o->ws_error);
}

static void *uri_logger(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct server *s = cls;
    struct req_state *rs = xcalloc(1, sizeof(*rs));
    rs->srv = s;
    rs->conn = conn;
    rs->c = app_ctx_new(s->app);
    /* Keep the raw target: the query string is parsed by our own code, as in app_request. */
    rs->c->req.query = arena_strdup(rs->c->arena, uri);
    buf_init(&rs->body, s->o.body_limit);
    atomic_fetch_add(&s->inflight, 1);
    return rs;
}

static void request_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                              enum MHD_RequestTerminationCode toe)
{
    struct server *s = cls;
    struct req_state *rs = *con_cls;
    (void)conn;
    (void)toe;
    if (!rs)
        return;
    app_ctx_free(rs->c);
    buf_free(&rs->body);
    free(rs);
    *con_cls = NULL;
    atomic_fetch_sub(&s->inflight, 1);
}

struct header_walk {
    struct ctx *c;
    size_t bytes;
    size_t count;
};

static enum MHD_Result count_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                    const char *value)
{
    struct header_walk *w = cls;
    (void)kind;
    w->bytes += strlen(key) + (value ? strlen(value) : 0) + 4;
    w->count++;
    return MHD_YES;
}

static enum MHD_Result copy_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct header_walk *w = cls;
    (void)kind;
    if (w->count == SERVER_MAX_HEADERS)
        return MHD_NO;
    w->c->req.headers[w->count].name = arena_strdup(w->c->arena, key);
    w->c->req.headers[w->count].value = arena_strdup(w->c->arena, value ? value : "");
    w->count++;
    return MHD_YES;
}

/* Fills c->req from the connection; returns the header bytes (for the 431 check). */
static size_t fill_request(struct req_state *rs, const char *method)
{
    struct ctx *c = rs->c;
    struct header_walk w = {c, 0, 0};
    const char *target = c->req.query;
    c->req.query = NULL;
    c->req.method_name = arena_strdup(c->arena, method);
    c->req.method = http_method_parse(method);
    MHD_get_connection_values(rs->conn, MHD_HEADER_KIND, count_header, &w);
    size_t bytes = w.bytes + strlen(target);
    c->req.headers =
        arena_alloc(c->arena, ZY_MIN(w.count + 1, SERVER_MAX_HEADERS) * sizeof(struct kv));
    w.count = 0;
    MHD_get_connection_values(rs->conn, MHD_HEADER_KIND, copy_header, &w);
    c->req.nheaders = w.count;
    app_parse_target(c, target);

    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rs->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    char ip[INET6_ADDRSTRLEN] = "unknown";
    if (ci && ci->client_addr) {
        const struct sockaddr *sa = ci->client_addr;
        if (sa->sa_family == AF_INET)
            inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, ip,
                      sizeof(ip));
        else if (sa->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, ip,
                      sizeof(ip));
    }
    c->req.client_ip = arena_strdup(c->arena, ip);
    const char *xff =
        app_config(rs->srv->app)->trust_proxy ? ctx_header(c, "X-Forwarded-For") : NULL;
    if (xff) {
        /* our proxy appends the address it saw: the last entry is the only one to trust */
        const char *last = strrchr(xff, ',');
        last = last ? last + 1 : xff;
        while (*last == ' ')
            last++;
        size_t n = strcspn(last, " ");
        if (n > 0 && n < INET6_ADDRSTRLEN)
            c->req.client_ip = arena_strndup(c->arena, last, n);
    }
    return bytes;
}

/* The 101 is on the wire: the socket leaves libmicrohttpd for the hub. A duplicate of the
 * descriptor goes to the hub and MHD closes (and forgets) its own at once, so an open WebSocket
 * costs MHD nothing (no connection record or memory pool) and counts against no HTTP limit. */
static void on_upgraded(void *cls, struct MHD_Connection *conn, void *con_cls,
                        const char *extra_in, size_t extra_in_size, MHD_socket sock,
                        struct MHD_UpgradeResponseHandle *urh)
{
    struct server *s = cls;
    struct req_state *rs = con_cls;
    (void)conn;
    const struct ws_accept *a = ws_route_upgrade(rs->c);
    int fd = fcntl(sock, F_DUPFD_CLOEXEC, 0);
    if (fd < 0)
        log_msg(LOG_WARN, "ws: cannot take over an upgraded socket: %s", strerror(errno));
    else if (a)
        ws_hub_adopt(s->hub, fd, extra_in, extra_in_size, a); /* copies what it needs */
    else
        close(fd);
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
}

static enum MHD_Result send_upgrade(struct req_state *rs)
{
    struct ctx *c = rs->c;
    struct MHD_Response *r = MHD_create_response_for_upgrade(on_upgraded, rs->srv);
    if (!r)
        return MHD_NO;
    for (size_t i = 0; i < c->res.nheaders; i++)
        MHD_add_response_header(r, c->res.headers[i].name, c->res.headers[i].value);
    rs->state = RS_ANSWERED;
    enum MHD_Result ret = MHD_queue_response(rs->conn, MHD_HTTP_SWITCHING_PROTOCOLS, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result send_response(struct req_state *rs)
{
    struct ctx *c = rs->c;
    if (ws_route_upgrade(c))
        return send_upgrade(rs);
    /* No copy: the body lives in the request's arena, which request_completed frees only after
     * MHD has finished sending (MHD keeps the response referenced until then). */
    struct MHD_Response *r = MHD_create_response_from_buffer(c->res.body_len, (void *)c->res.body,
                                                             MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    for (size_t i = 0; i < c->res.nheaders; i++)
        MHD_add_response_header(r, c->res.headers[i].name, c->res.headers[i].value);
    if (c->res.close || atomic_load(&rs->srv->stopping))
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
    rs->state = RS_ANSWERED;
    enum MHD_Result ret = MHD_queue_response(rs->conn, (unsigned)c->res.status, r);
    MHD_destroy_response(r);
    return ret;
}

/* Answers a transport-level error through the normal pipeline (envelope, request id, CORS…),
 * and closes the connection afterwards: the rest of the request was not read. */
static enum MHD_Result reject(struct req_state *rs, int status, const char *msg)
{
    struct ctx *c = rs->c;
    ctx_fail_status(c, status, "%s", msg);
    c->res.close = true;
    app_handle(rs->srv->app, c);
    c->res.close = true;
    return send_response(rs);
}

/*
 * MHD 0.9.75 accepts a response only before the body is read or after all of it arrived, so an
 * error found mid-body (too large, too slow) is written straight to the socket — a few hundred
 * bytes, sent without blocking — and the connection is dropped. What the client already sent is
 * drained first so the close does not turn into a reset that could discard our answer.
 */
static enum MHD_Result reject_mid_body(struct req_state *rs, int status, const char *msg)
{
    struct ctx *c = rs->c;
    ctx_fail_status(c, status, "%s", msg);
    app_handle(rs->srv->app, c);
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rs->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return MHD_NO;
    struct buf out;
    buf_init(&out, 64 * 1024);
    buf_printf(&out, "HTTP/1.1 %d %s\r\n", c->res.status, zy_http_reason(c->res.status));
    for (size_t i = 0; i < c->res.nheaders; i++)
        buf_printf(&out, "%s: %s\r\n", c->res.headers[i].name, c->res.headers[i].value);
    buf_printf(&out, "Content-Length: %zu\r\nConnection: close\r\n\r\n", c->res.body_len);
    buf_append(&out, c->res.body, c->res.body_len);
    if (!out.overflow) {
        ssize_t w = send(ci->connect_fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        (void)w; /* nothing more to do if the client is not reading */
        shutdown(ci->connect_fd, SHUT_WR);
        char sink[4096];
        for (int i = 0; i < 64; i++)
            if (recv(ci->connect_fd, sink, sizeof(sink), MSG_DONTWAIT) <= 0)
                break;
    }
    buf_free(&out);
    rs->state = RS_ANSWERED;
    return MHD_NO;
}

/* The answer is on the ctx: the I/O thread sends it at its next call for the connection. */
static void answered(void *p)
{
    struct req_state *rs = p;
    rs->state = RS_DONE;
    MHD_resume_connection(rs->conn);
}

static void run_on_worker(void *p)
{
    struct req_state *rs = p;
    /* a handler may answer later, from the database's reader thread (ctx_query_async) */
    rs->c->on_done = answered;
    rs->c->on_done_arg = rs;
    if (app_handle(rs->srv->app, rs->c))
        answered(rs);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct server *s = cls;
    struct req_state *rs = *con_cls;
    (void)url;
    (void)version;
    if (!rs)
        return MHD_NO; /* cannot happen: the URI callback always runs first */

    switch (rs->state) {
    case RS_NEW: {
        rs->state = RS_READING;
        size_t hbytes = fill_request(rs, method);
        if (hbytes > s->o.header_limit)
            return reject(rs, 431, "Request header fields too large");
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > s->o.body_limit) {
            char msg[96];
            snprintf(msg, sizeof(msg), "Request body exceeds the limit of %zu bytes",
                     s->o.body_limit);
            return reject(rs, 413, msg);
        }
        return MHD_YES; /* answering on the first call would force Connection: close */
    }
    case RS_READING:
        if (*upload_data_size) {
            if (buf_append(&rs->body, upload_data, *upload_data_size) < 0) {
                char msg[96];
                snprintf(msg, sizeof(msg), "Request body exceeds the limit of %zu bytes",
                         s->o.body_limit);
                return reject_mid_body(rs, 413, msg);
            }
            *upload_data_size = 0;
            if (zy_now_ns() - rs->c->start_ns > (uint64_t)s->o.request_timeout_s * 1000000000u)
                return reject_mid_body(rs, 408, "Request body was not received in time");
            return MHD_YES;
        }
        rs->c->req.body = rs->body.len ? rs->body.data : "";
        rs->c->req.body_len = rs->body.len;
        if (!app_route(s->app, rs->c))
            break; /* cheap: answer right here on the I/O thread */
        rs->state = RS_QUEUED;
        MHD_suspend_connection(conn);
        if (workq_submit(s->pool, run_on_worker, rs) < 0) {
            MHD_resume_connection(conn);
            ctx_fail_status(rs->c, 503, "Server is overloaded, try again later");
            ctx_set_header(rs->c, "Retry-After", "1");
            break;
        }
        return MHD_YES;
    case RS_QUEUED:
        return MHD_YES; /* spurious call while the worker runs */
    case RS_DONE:
        return send_response(rs);
    case RS_ANSWERED:
        *upload_data_size = 0;
        return MHD_YES;
    }
    app_handle(s->app, rs->c);
    return send_response(rs);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    log_msg(LOG_DEBUG, "http: %s", msg);
}

int server_start(struct server **out, struct app *app, const struct server_options *o, char *err,
                 size_t errlen)
{
    struct addrinfo hints = {.ai_flags = AI_PASSIVE | AI_NUMERICSERV, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof(port), "%d", o->port);
    int gai = getaddrinfo(o->host, port, &hints, &ai);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve HOST %s: %s", o->host, gai_strerror(gai));
        return -1;
    }
    if (o->ws_error[0]) {
        snprintf(err, errlen, "%s", o->ws_error);
        freeaddrinfo(ai);
        return -1;
    }
    struct server *s = xcalloc(1, sizeof(*s));
    s->app = app;
    s->o = *o;
    s->pool = workq_new(o->workers, o->queue_max);
    /* poll(), not epoll: libmicrohttpd 0.9.75's epoll loop stalls for up to the idle timeout
     * when exactly a multiple of 128 keep-alive clients are busy (see docs/benchmarks.md). */
    /* MHD_USE_TURBO also keeps MHD from shutting the socket down when it lets go of an
     * upgraded connection, which the hub relies on (on_upgraded). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG | MHD_USE_TURBO | MHD_ALLOW_UPGRADE;
    if (ai->ai_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The pool holds the request line and headers; leave room above our own 431 check so the
     * client gets our envelope rather than MHD's bare answer. Each open connection costs this
     * much, and MHD clears it between requests: keep it no larger than needed. */
    size_t mem = o->header_limit + 8192;
    s->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR, ai->ai_addr,
        MHD_OPTION_URI_LOG_CALLBACK, uri_logger, s, MHD_OPTION_NOTIFY_COMPLETED, request_completed,
        s, MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        o->max_connections, MHD_OPTION_CONNECTION_MEMORY_LIMIT, mem,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        o->io_threads > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END, o->io_threads,
        MHD_OPTION_END);
    freeaddrinfo(ai);
    if (!s->d) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", o->host, o->port,
                 errno ? strerror(errno) : "libmicrohttpd refused to start");
        workq_free(s->pool);
        free(s);
        return -1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? di->port : o->port;
    s->hub = ws_hub_new(app_db(app), &o->ws);
    realtime_set_local(app_realtime(app), ws_hub_deliver, s->hub);
    *out = s;
    return 0;
}

int server_port(const struct server *s)
{
    return s->port;
}

unsigned server_inflight(const struct server *s)
{
    return atomic_load(&((struct server *)s)->inflight);
}

unsigned server_shutdown(struct server *s, unsigned timeout_s)
{
    if (!s->d)
        return 0;
    atomic_store(&s->stopping, true);
    MHD_socket lfd = MHD_quiesce_daemon(s->d);
    if (lfd != MHD_INVALID_SOCKET)
        close(lfd);
    uint64_t deadline = zy_now_ns() + (uint64_t)timeout_s * 1000000000u;
    /* WebSockets: no more deliveries, then 1001 to every client and their answers awaited */
    realtime_set_local(app_realtime(s->app), NULL, NULL);
    ws_hub_shutdown(s->hub, ZY_MIN(timeout_s * 1000u, s->o.ws.close_timeout_ms));
    while (atomic_load(&s->inflight) > 0 && zy_now_ns() < deadline)
        usleep(5000);
    unsigned left = atomic_load(&s->inflight);
    /* Workers still running will resume their connections: let them finish before MHD goes. */
    workq_free(s->pool);
    s->pool = NULL;
    MHD_stop_daemon(s->d);
    s->d = NULL;
    return left;
}

void server_free(struct server *s)
{
    if (!s)
        return;
    if (s->d)
        server_shutdown(s, 0);
    ws_hub_free(s->hub);
    free(s);
}

struct ws_hub *server_hub(const struct server *s)
{
    return s->hub;
}
