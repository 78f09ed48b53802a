/*
 * server.h — the HTTP/1.1 transport: libmicrohttpd on an internal epoll thread, with blocking
 * handler work moved to a worker pool through suspend/resume.
 *
 * Owns the MHD daemon, the worker pool, every per-request state until MHD reports the
 * request complete, and the WebSocket hub (src/ws/hub.h): an accepted GET /ws upgrade leaves
 * libmicrohttpd at once and lives on the hub's own event loop; the hub receives the app's
 * real-time bus deliveries while the server runs. Enforces the limits (body 413, headers 431, request time 408, idle timeout,
 * max connections) and shuts down gracefully: stop accepting, finish in-flight requests, stop.
 */
#ifndef ZYGO_SERVER_H
#define ZYGO_SERVER_H

#include "lib/common.h"
#include "ws/hub.h"

struct app;
struct server;

struct server_options {
    const char *host; /* numeric address or name; "0.0.0.0", "::", "127.0.0.1" */
    int port;         /* 0 picks a free port (see server_port) */
    size_t body_limit;
    size_t header_limit;
    unsigned idle_timeout_s;
    unsigned request_timeout_s;
    unsigned max_connections;
    unsigned io_threads;
    unsigned workers;
    size_t queue_max; /* requests waiting for a worker before 503 */
    struct ws_options ws; /* the WebSocket hub behind GET /ws (WS_* variables) */
    char ws_error[160];   /* a bad WS_* variable: server_start refuses to start */
};

/* Fills options from the application's config. */
void server_options_from_config(struct server_options *o, const struct app *app);

int server_start(struct server **out, struct app *app, const struct server_options *o, char *err,
                 size_t errlen);
int server_port(const struct server *s);
/* Requests currently being processed (read, queued, running or being answered). */
unsigned server_inflight(const struct server *s);
/* Stops accepting, closes every WebSocket with 1001 (waiting for their close handshakes within
 * the same deadline), waits up to timeout_s for in-flight requests, then stops. Returns the
 * number of requests that were still in flight when the deadline passed (0: clean). */
unsigned server_shutdown(struct server *s, unsigned timeout_s);
/* The WebSocket hub (for statistics and tests). */
struct ws_hub *server_hub(const struct server *s);
void server_free(struct server *s);

#endif
