/* support.c — see support.h. */
#include "lib/common.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/migrate.h"
#include "lib/buf.h"
#include "lib/log.h"
#include "routes/routes.h"
#include "services/database.h"
#include "pgtest.h"
#include "support.h"

extern char **environ;

static void rm_rf(const char *dir)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: could not remove %s\n", dir);
}

bool tdb_is_pg(void)
{
    const char *b = getenv("ZYGO_TEST_DB");
    return b && strcmp(b, "postgres") == 0;
}

void tdb_create(struct tdb *d, const char *dir)
{
    memset(d, 0, sizeof(*d));
    d->pg = tdb_is_pg();
    size_t n = 0;
    if (d->pg) {
        cr_assert(pgtest_available(), "ZYGO_TEST_DB=postgres but no test cluster is configured");
        pgtest_create_db(d->owner_url, sizeof(d->owner_url), d->app_url, sizeof(d->app_url));
        snprintf(d->env_migration, sizeof(d->env_migration), "DATABASE_MIGRATION_URL=%s",
                 d->owner_url);
        d->env[n++] = d->env_migration;
    } else {
        snprintf(d->app_url, sizeof(d->app_url), "sqlite:%s/zygo.db", dir);
    }
    snprintf(d->env_url, sizeof(d->env_url), "DATABASE_URL=%s", d->app_url);
    d->env[n++] = d->env_url;
    d->env[n] = NULL;
}

void tdb_destroy(struct tdb *d)
{
    if (d->pg)
        pgtest_drop_db(d->app_url);
}

void tenv_setup(struct tenv *t, const char *const *extra, const struct route_group *groups,
                size_t ngroups)
{
    memset(t, 0, sizeof(*t));
    snprintf(t->dir, sizeof(t->dir), "/tmp/zygo-test-XXXXXX");
    cr_assert_not_null(mkdtemp(t->dir));
    char *env[64];
    size_t n = 0;
    static char data[300];
    snprintf(data, sizeof(data), "ZYGO_DATA_DIR=%s", t->dir);
    env[n++] = "NODE_ENV=test";
    env[n++] = data;
    env[n++] = "ZYGO_ENV_FILE=/nonexistent/.env";
    env[n++] = "LOG_LEVEL=silent";
    tdb_create(&t->tdb, t->dir);
    for (size_t i = 0; t->tdb.env[i]; i++)
        env[n++] = (char *)t->tdb.env[i];
    for (size_t i = 0; extra && extra[i] && n < ARRAY_LEN(env) - 1; i++)
        env[n++] = (char *)extra[i];
    env[n] = NULL;
    struct config_errors errs;
    int rc = config_load(&t->cfg, env, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "config: %s\n", errs.v[i]);
    config_errors_free(&errs);
    cr_assert_eq(rc, 0, "test configuration is invalid");
    log_init(t->cfg.log_level, false, 2);
    char err[1024];
    struct migrate_report rep;
    int orc = database_open(&t->cfg, &t->db, &rep, err, sizeof(err));
    migrate_report_free(&rep);
    cr_assert_eq(orc, 0, "database: %s", err);
    if (!groups)
        groups = routes_groups(&ngroups);
    t->app = app_new(&t->cfg, t->db, groups, ngroups);
}

void tenv_teardown(struct tenv *t)
{
    app_free(t->app);
    db_close(t->db);
    tdb_destroy(&t->tdb);
    config_free(&t->cfg);
    rm_rf(t->dir);
}

static void sqlite_move(const struct tenv *t, bool away)
{
    char a[400], b[400];
    snprintf(a, sizeof(a), "%s/zygo.db", t->dir);
    snprintf(b, sizeof(b), "%s/zygo.db.away", t->dir);
    cr_assert_eq(away ? rename(a, b) : rename(b, a), 0, "rename: %s", strerror(errno));
}

void tenv_outage_begin(struct tenv *t)
{
    if (t->tdb.pg)
        pgtest_server_stop();
    else
        sqlite_move(t, true);
}

void tenv_outage_end(struct tenv *t)
{
    if (t->tdb.pg)
        pgtest_server_start();
    else
        sqlite_move(t, false);
}

int api_req(const struct app *app, const char *method, const char *path, const char *token,
            const char *body, json_t **out)
{
    return api_req_h(app, method, path, token, NULL, body, out);
}

int api_req_h(const struct app *app, const char *method, const char *path, const char *token,
              const char *header, const char *body, json_t **out)
{
    char auth[4200];
    const char *h[4] = {"Content-Type: application/json", NULL, NULL, NULL};
    size_t n = 1;
    if (token) {
        snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
        h[n++] = auth;
    }
    if (header)
        h[n++] = header;
    struct ctx *c = app_request(app, method, path, h, body, body ? strlen(body) : 0);
    int st = c->res.status;
    if (out)
        *out = ctx_body_json(c);
    app_ctx_free(c);
    return st;
}

json_t *ctx_body_json(const struct ctx *c)
{
    return json_loadb(c->res.body, c->res.body_len, JSON_DECODE_ANY, NULL);
}

void tserver_start(struct tserver *s, const char *const *extra, const struct route_group *groups,
                   size_t ngroups)
{
    memset(s, 0, sizeof(*s));
    tenv_setup(&s->env, extra, groups, ngroups);
    struct server_options o;
    server_options_from_config(&o, s->env.app);
    o.port = 0;
    o.host = "127.0.0.1";
    char err[256];
    cr_assert_eq(server_start(&s->srv, s->env.app, &o, err, sizeof(err)), 0, "server: %s", err);
    s->port = server_port(s->srv);
    cr_assert_gt(s->port, 0);
}

void tserver_stop(struct tserver *s)
{
    if (s->srv) {
        server_shutdown(s->srv, 5);
        server_free(s->srv);
    }
    tenv_teardown(&s->env);
}

static size_t collect(char *p, size_t size, size_t n, void *ud)
{
    buf_append(ud, p, size * n);
    return size * n;
}

int http_do(int port, const char *method, const char *target, const char *const *headers,
            const char *body, size_t body_len, struct http_result *out)
{
    memset(out, 0, sizeof(*out));
    CURL *h = curl_easy_init();
    struct buf b, hb;
    buf_init(&b, 64u << 20);
    buf_init(&hb, 1u << 20);
    char url[2048];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d%s", port, target);
    struct curl_slist *hl = NULL;
    for (size_t i = 0; headers && headers[i]; i++)
        hl = curl_slist_append(hl, headers[i]);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    if (body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &hb);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 20L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    out->curl_code = (int)curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out->status);
    curl_easy_getinfo(h, CURLINFO_TOTAL_TIME, &out->total_s);
    out->body = buf_detach(&b, &out->body_len);
    out->headers = buf_detach(&hb, NULL);
    curl_slist_free_all(hl);
    curl_easy_cleanup(h);
    return out->curl_code == 0 ? 0 : -1;
}

void http_result_free(struct http_result *r)
{
    free(r->body);
    free(r->headers);
    memset(r, 0, sizeof(*r));
}

bool http_header(const struct http_result *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *line = r->headers; line && *line;) {
        const char *eol = strstr(line, "\r\n");
        if (!eol)
            break;
        if (strncasecmp(line, name, nl) == 0 && line[nl] == ':') {
            const char *v = line + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)(eol - v), v);
            return true;
        }
        line = eol + 2;
    }
    return false;
}

json_t *http_json(const struct http_result *r)
{
    return json_loadb(r->body, r->body_len, JSON_DECODE_ANY, NULL);
}

int tcp_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

int tcp_send(int fd, const void *data, size_t n)
{
    const char *p = data;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

size_t tcp_read_all(int fd, char *out, size_t n, int timeout_ms)
{
    size_t got = 0;
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (got + 1 < n) {
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (spent >= timeout_ms)
            break;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, (int)(timeout_ms - spent)) <= 0)
            break;
        ssize_t r = recv(fd, out + got, n - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    out[got] = '\0';
    return got;
}

size_t tcp_read_response(int fd, char *out, size_t n, int timeout_ms)
{
    size_t got = 0;
    out[0] = '\0';
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (got + 1 < n) {
        const char *end = strstr(out, "\r\n\r\n");
        if (end) {
            const char *cl = strcasestr(out, "\r\nContent-Length:");
            size_t body = cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0;
            if (got >= (size_t)(end + 4 - out) + body)
                break;
        }
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long spent = (now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (spent >= timeout_ms || poll(&p, 1, (int)(timeout_ms - spent)) <= 0)
            break;
        ssize_t r = recv(fd, out + got, n - 1 - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
        out[got] = '\0';
    }
    return got;
}

size_t count_substr(const char *hay, const char *needle)
{
    size_t k = 0, nl = strlen(needle);
    for (const char *p = strstr(hay, needle); p; p = strstr(p + nl, needle))
        k++;
    return k;
}

pid_t spawn_zygo(const char *const *argv, const char *const *env, const char *log_path)
{
    const char *bin = getenv("ZYGO_BIN");
    if (!bin || !*bin)
        bin = "build/release/zygo";
    char *args[32];
    size_t n = 0;
    args[n++] = (char *)bin;
    for (size_t i = 1; argv[i] && n < ARRAY_LEN(args) - 1; i++)
        args[n++] = (char *)argv[i];
    args[n] = NULL;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    pid_t pid;
    int rc = posix_spawn(&pid, bin, &fa, NULL, args, (char *const *)env);
    posix_spawn_file_actions_destroy(&fa);
    cr_assert_eq(rc, 0, "cannot start %s: %s", bin, strerror(rc));
    return pid;
}

int wait_child(pid_t pid, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 10) {
        int st;
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        usleep(10000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    return -1;
}

int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    if (bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

bool wait_healthy(int port, int timeout_ms)
{
    for (int waited = 0; waited < timeout_ms; waited += 50) {
        struct http_result r;
        int rc = http_do(port, "GET", "/health", NULL, NULL, 0, &r);
        long st = r.status;
        http_result_free(&r);
        if (rc == 0 && st == 200)
            return true;
        usleep(50000);
    }
    return false;
}

char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    struct buf b;
    buf_init(&b, 64u << 20);
    char chunk[4096];
    size_t r;
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&b, chunk, r);
    fclose(f);
    return buf_detach(&b, NULL);
}

static const char *root_dir(void)
{
    const char *r = getenv("ZYGO_ROOT");
    return r && *r ? r : ".";
}

/* Runs node with argv; stdout and stderr into files; exit status or -1. */
static int run_node(char *const argv[], const char *out_path, const char *err_path)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, out_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, err_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    /* no telemetry or update checks: the validator must work offline */
    setenv("REDOCLY_TELEMETRY", "off", 1);
    setenv("REDOCLY_SUPPRESS_UPDATE_NOTICE", "true", 1);
    pid_t pid;
    int rc = posix_spawnp(&pid, "node", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int status;
    if (waitpid(pid, &status, 0) < 0 || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

void redocly_assert_clean(const char *doc_path)
{
    char cli[1024], config[1024], out_path[300], err_path[300];
    snprintf(cli, sizeof(cli), "%s/tests/openapi/node_modules/@redocly/cli/bin/cli.js", root_dir());
    snprintf(config, sizeof(config), "%s/tests/openapi/redocly.yaml", root_dir());
    struct stat st;
    cr_assert_eq(stat(cli, &st), 0,
                 "OpenAPI validator missing (%s): run `npm install --prefix tests/openapi "
                 "--no-audit --no-fund` in the repository root (or set ZYGO_ROOT)",
                 cli);
    snprintf(out_path, sizeof(out_path), "%s.lint-out", doc_path);
    snprintf(err_path, sizeof(err_path), "%s.lint-err", doc_path);
    char *argv[] = {"node",     cli,    "lint",           "--format=json",
                    "--config", config, (char *)doc_path, NULL};
    int rc = run_node(argv, out_path, err_path);
    char *out = slurp(out_path), *err = slurp(err_path);
    unlink(out_path);
    unlink(err_path);
    /* --format=json: the report (problems and totals) on stdout; stderr has Node notices */
    json_t *report = out ? json_loads(out, 0, NULL) : NULL;
    json_t *totals = json_object_get(report, "totals");
    long long errors = json_integer_value(json_object_get(totals, "errors"));
    long long warnings = json_integer_value(json_object_get(totals, "warnings"));
    bool clean = rc == 0 && totals && errors == 0 && warnings == 0;
    if (!clean)
        cr_log_error("redocly lint exit %d:\n%s\n%s", rc, out ? out : "", err ? err : "");
    json_decref(report);
    free(out);
    free(err);
    cr_assert(clean, "redocly lint: exit %d, %lld errors, %lld warnings (see log)", rc, errors,
              warnings);
}
