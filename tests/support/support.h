/*
 * support.h — test helpers: a real app on a real SQLite file in a temporary directory, the
 * in-process request, a real HTTP server on a loopback port with a libcurl client, raw sockets
 * for what curl will not send, and the zygo binary as a child process.
 */
#ifndef ZYGO_TEST_SUPPORT_H
#define ZYGO_TEST_SUPPORT_H

#include <jansson.h>
#include <sys/types.h>

#include "http/app.h"
#include "http/server.h"
#include "lib/config.h"

/* The database a test runs on: a SQLite file in dir, or, when the suite runs on PostgreSQL
 * (ZYGO_TEST_DB=postgres), a fresh database in the test cluster. env[] holds the
 * DATABASE_URL (and DATABASE_MIGRATION_URL) lines to give to config_load or the binary. */
struct tdb {
    bool pg;
    char app_url[512];
    char owner_url[512];
    char env_url[600];
    char env_migration[600];
    const char *env[3]; /* NULL-terminated */
};

/* True when this run of the suite uses PostgreSQL. */
bool tdb_is_pg(void);
void tdb_create(struct tdb *d, const char *dir);
void tdb_destroy(struct tdb *d);

struct tenv {
    char dir[256];
    struct tdb tdb;
    struct config cfg;
    struct db *db;
    struct app *app;
};

/* Temp dir, config (NODE_ENV=test, data dir = temp dir, plus `extra` "NAME=value" strings,
 * NULL-terminated, may be NULL), database migrated, app on `groups` (NULL: the real routes). */
void tenv_setup(struct tenv *t, const char *const *extra, const struct route_group *groups,
                size_t ngroups);
void tenv_teardown(struct tenv *t);

/* A real database outage and its end: the PostgreSQL server stopped and started again, or the
 * SQLite file moved away and back (the readiness check notices a replaced file). */
void tenv_outage_begin(struct tenv *t);
void tenv_outage_end(struct tenv *t);

/* An in-process JSON request with an optional bearer token and body; the status is returned
 * and the response body parsed into *out (when out is not NULL; caller decrefs). */
int api_req(const struct app *app, const char *method, const char *path, const char *token,
            const char *body, json_t **out);
/* The same with one more header line ("Name: value"; NULL: none). */
int api_req_h(const struct app *app, const char *method, const char *path, const char *token,
              const char *header, const char *body, json_t **out);

/* The response body of an in-process request parsed as JSON (new reference; NULL if not). */
json_t *ctx_body_json(const struct ctx *c);

struct tserver {
    struct tenv env;
    struct server *srv;
    int port;
};

void tserver_start(struct tserver *s, const char *const *extra, const struct route_group *groups,
                   size_t ngroups);
void tserver_stop(struct tserver *s);

struct http_result {
    long status;
    char *body;
    size_t body_len;
    char *headers; /* raw header block, lines "Name: value\r\n" */
    double total_s;
    int curl_code;
};

/* One request with libcurl to http://127.0.0.1:port + target. headers NULL-terminated. */
int http_do(int port, const char *method, const char *target, const char *const *headers,
            const char *body, size_t body_len, struct http_result *out);
void http_result_free(struct http_result *r);
/* A response header's value (first occurrence, case-insensitive name) copied into out. */
bool http_header(const struct http_result *r, const char *name, char *out, size_t n);
json_t *http_json(const struct http_result *r);

/* Raw TCP: connect to 127.0.0.1:port; send everything; read until the peer closes or
 * `timeout_ms` passes (returns bytes read into out, NUL-terminated). */
int tcp_connect(int port);
int tcp_send(int fd, const void *data, size_t n);
size_t tcp_read_all(int fd, char *out, size_t n, int timeout_ms);
/* Reads exactly one HTTP response (headers + Content-Length body) or until timeout_ms; returns
 * the bytes read (0: nothing arrived). */
size_t tcp_read_response(int fd, char *out, size_t n, int timeout_ms);
/* Counts occurrences of needle in hay. */
size_t count_substr(const char *hay, const char *needle);

/* Starts the built zygo binary (ZYGO_BIN, default build/release/zygo) with argv (argv[0] is
 * ignored) and env (NULL-terminated "NAME=value"); stdout+stderr go to `log_path`. */
pid_t spawn_zygo(const char *const *argv, const char *const *env, const char *log_path);
/* Waits for the child; returns its exit status, or -1 (and kills it) after timeout_ms. */
int wait_child(pid_t pid, int timeout_ms);
/* A free TCP port on loopback. */
int free_port(void);
/* Polls GET /health on port until it answers 200 or timeout_ms passes. */
bool wait_healthy(int port, int timeout_ms);
/* Lints an OpenAPI document file with the real validator (@redocly/cli, recommended rules,
 * installed under tests/openapi by scripts/test.sh) and fails the test unless it reports zero
 * errors and zero warnings. */
void redocly_assert_clean(const char *doc_path);
/* Reads a whole file into a malloc'd string (NULL if unreadable). */
char *slurp(const char *path);

#endif
