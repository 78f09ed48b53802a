/*
 * app.h — the application: configuration, route table, database, and the request pipeline
 * (global middleware → router → validate → handler → error handler) that every transport uses.
 *
 * Owns the router and the pre-rendered OpenAPI document; borrows the config and the database,
 * which must outlive it. app_request() is the in-process request (Hono's app.request): the full
 * pipeline without a socket, for tests and tools.
 */
#ifndef ZYGO_APP_H
#define ZYGO_APP_H

#include "http/ctx.h"
#include "http/router.h"

struct config;
struct db;
struct db_conn;
struct secretbox_keyring;
struct mailer;
struct oauth_providers;
struct realtime;

struct app *app_new(const struct config *cfg, struct db *db, const struct route_group *groups,
                    size_t ngroups);
void app_free(struct app *app);

const struct config *app_config(const struct app *app);
struct db *app_db(const struct app *app);
const struct router *app_router(const struct app *app);
/* The configured OAuth/OIDC providers (OAUTH_*). */
const struct oauth_providers *app_oauth(const struct app *app);
/* The outgoing mail sender (SMTP, or the development outbox). */
struct mailer *app_mailer(const struct app *app);
/* The keys that seal secrets at rest (ENCRYPTION_KEY as key id 1). */
const struct secretbox_keyring *app_keyring(const struct app *app);
/* The rate-limit counters (NULL when rate limiting is off). */
struct rl_store *app_rate_limits(const struct app *app);
/* The real-time bus (broadcastToRoom / broadcastToUser), relaying through the database to
 * every zygo process; the HTTP server hooks its WebSocket hub to it while it runs. */
struct realtime *app_realtime(const struct app *app);
/* The OpenAPI document, rendered once at start. */
const char *app_openapi_json(const struct app *app, size_t *len);
/* Seconds since app_new. */
double app_uptime_s(const struct app *app);

/* A fresh ctx in its own arena; free with app_ctx_free. */
struct ctx *app_ctx_new(const struct app *app);
void app_ctx_free(struct ctx *c);

/* Matches c->req against the route table. Returns true when the work may block (a route not
 * marked ROUTE_INLINE) and should run on a worker thread. */
bool app_route(const struct app *app, struct ctx *c);
/* Runs the pipeline; afterwards c->res holds the response. Call app_route first. A transport
 * error recorded on c beforehand (413, 431, 408, 503) is rendered through the same middleware.
 * Returns false when the handler answers later (ctx_query_async; only when c->on_done is set):
 * then c must not be touched until c->on_done(c->on_done_arg) is called, from another thread,
 * with c->res complete. */
bool app_handle(const struct app *app, struct ctx *c);

/* Splits a request target ("/path?query") into c->req.path (percent-decoded) and the query
 * string and parameters. */
void app_parse_target(struct ctx *c, const char *target);

/* In-process request: "GET", "/api/v1/users?page=2", headers as "Name: value" strings
 * (NULL-terminated array, may be NULL), optional body. Free the result with app_ctx_free. */
struct ctx *app_request(const struct app *app, const char *method, const char *target,
                        const char *const *headers, const char *body, size_t body_len);

/* This request's database connection, acquired on first use and released on the same thread
 * when app_handle finishes. NULL (with the 503 error set on c) when the database is
 * unavailable. */
struct db_conn *ctx_db(struct ctx *c);

struct db_param;
/* What a handler returns when it answers later (ctx_query_async). */
#define CTX_PENDING 1
/*
 * For a read that needs nothing of a held connection: runs the statement for tenant (NULL:
 * none) without holding this thread while the database works (db_query_async); done(c, rows,
 * errkind, errmsg) then runs on the database connection's reader thread, sets the response
 * like a handler (rows NULL on error; it frees nothing) and returns what a handler returns. It
 * must not wait on anything (no further statements: the reader serves other requests too).
 * The request's held connection, if any, goes back to the pool first. Returns CTX_PENDING, which the
 * handler returns at once without touching c again; or 0 when it cannot here (SQLite, an
 * in-process request, a transaction open, no shared connection now): do it the blocking way.
 */
int ctx_query_async(struct ctx *c, const char *tenant, const char *sql, const struct db_param *p,
                    size_t n,
                    int (*done)(struct ctx *c, struct db_rows *rows, int errkind,
                                const char *errmsg));
/* The error envelope for a failed statement of that kind (as ctx_fail_db). Returns -1. */
int ctx_fail_dberr(struct ctx *c, int errkind, const char *errmsg, const char *conflict);

/* Runs fn(c, db) in one transaction on this request's connection: committed when fn returns
 * 0, rolled back when it fails (fn has set the error). Returns fn's result. */
int ctx_tx(struct ctx *c, int (*fn)(struct ctx *c, struct db_conn *db));

/* Runs fn(c, arg) once the transaction ctx_tx is running commits (nothing on a rollback), in
 * the order registered; outside ctx_tx it runs now. For effects other processes must only see
 * once the change is durable: real-time messages, waking workers. */
void ctx_after_commit(struct ctx *c, void (*fn)(struct ctx *c, void *arg), void *arg);

/* This process's job workers are woken once the request's transaction commits (ctx_after_commit),
 * so a job it queued starts now instead of at their next poll. */
void ctx_wake_jobs(struct ctx *c);

/* Inside ctx_tx: commits what was done so far (running its after-commit hooks) and opens a
 * new transaction, for a change that must stick although the request then fails. 0 or -1
 * (error set). */
int ctx_commit_midway(struct ctx *c);

/* Maps the last error on conn to the API: unavailable or busy → 503 (Retry-After), unique
 * violation → 409 with `conflict` as message, anything else → 500 (logged, never shown).
 * Returns -1 for `return ctx_fail_db(...)`. */
int ctx_fail_db(struct ctx *c, struct db_conn *conn, const char *conflict);

#endif
