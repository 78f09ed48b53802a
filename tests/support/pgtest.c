/* pgtest.c — see pgtest.h. Talks to the cluster with libpq directly, not through src/db. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pgtest.h"

static int lock_fd = -1;
static bool lock_exclusive;
static bool server_stopped;
static unsigned db_counter;

static const char *env_or_null(const char *name)
{
    const char *v = getenv(name);
    return v && *v ? v : NULL;
}

bool pgtest_available(void)
{
    return env_or_null("ZYGO_TEST_PG_ADMIN_URL") != NULL;
}

bool pgtest_can_restart(void)
{
    return pgtest_available() && env_or_null("ZYGO_TEST_PG_DIR") != NULL;
}

static const char *need_env(const char *name)
{
    const char *v = env_or_null(name);
    cr_assert_not_null(v, "%s is not set (export the env file of scripts/pg-cluster.sh)", name);
    return v;
}

/* The cluster lock, shared or exclusive; held until the process exits. */
static void cluster_lock(bool exclusive)
{
    const char *dir = env_or_null("ZYGO_TEST_PG_DIR");
    if (!dir || (lock_fd >= 0 && (lock_exclusive || !exclusive)))
        return;
    if (lock_fd < 0) {
        char path[512];
        snprintf(path, sizeof(path), "%s/tests.lock", dir);
        lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        cr_assert_geq(lock_fd, 0, "cannot open %s: %s", path, strerror(errno));
    }
    while (flock(lock_fd, exclusive ? LOCK_EX : LOCK_SH) != 0)
        cr_assert_eq(errno, EINTR, "flock: %s", strerror(errno));
    lock_exclusive = exclusive;
}

/* scripts/pg-cluster.sh SUB DIR; its exit status. */
static int run_script(const char *sub)
{
    const char *script = env_or_null("ZYGO_TEST_PG_SCRIPT");
    const char *dir = env_or_null("ZYGO_TEST_PG_DIR");
    if (!dir)
        return -1;
    if (!script)
        script = "scripts/pg-cluster.sh";
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        execl("/bin/bash", "bash", script, sub, dir, (char *)NULL);
        _exit(127);
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* A connection as the superuser; a server left stopped by a crashed fault test is started. */
static PGconn *admin_connect(void)
{
    const char *url = need_env("ZYGO_TEST_PG_ADMIN_URL");
    PGconn *h = PQconnectdb(url);
    if (PQstatus(h) != CONNECTION_OK && pgtest_can_restart() && run_script("start-server") == 0) {
        PQfinish(h);
        h = PQconnectdb(url);
    }
    cr_assert_eq(PQstatus(h), CONNECTION_OK, "cannot connect as the test admin: %s",
                 PQerrorMessage(h));
    return h;
}

static void admin_run(PGconn *h, const char *sql)
{
    PGresult *res = PQexec(h, sql);
    ExecStatusType st = PQresultStatus(res);
    char msg[512];
    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(res));
    PQclear(res);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        PQfinish(h);
        cr_assert_fail("%s: %s", sql, msg);
    }
}

void pgtest_admin_exec(const char *sql)
{
    PGconn *h = admin_connect();
    admin_run(h, sql);
    PQfinish(h);
}

void pgtest_create_db(char *owner_url, size_t owner_len, char *app_url, size_t app_len)
{
    cluster_lock(false);
    const char *host = need_env("ZYGO_TEST_PG_HOST"), *port = need_env("ZYGO_TEST_PG_PORT");
    const char *owner_pw = need_env("ZYGO_TEST_PG_OWNER_PASSWORD");
    const char *app_pw = need_env("ZYGO_TEST_PG_APP_PASSWORD");
    uint32_t rnd = 0;
    if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
        rnd = (uint32_t)time(NULL);
    char name[64], sql[160];
    snprintf(name, sizeof(name), "zt_%ld_%u_%08x", (long)getpid(), ++db_counter, rnd);
    snprintf(sql, sizeof(sql), "CREATE DATABASE %s OWNER zygo_owner TEMPLATE template0", name);
    pgtest_admin_exec(sql);
    snprintf(owner_url, owner_len, "postgres://zygo_owner:%s@%s:%s/%s", owner_pw, host, port, name);
    snprintf(app_url, app_len, "postgres://zygo_api:%s@%s:%s/%s", app_pw, host, port, name);
}

void pgtest_drop_db(const char *url)
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(url, &err);
    cr_assert_not_null(opts, "bad URL: %s", err ? err : "?");
    char name[128] = "";
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (strcmp(o->keyword, "dbname") == 0 && o->val)
            snprintf(name, sizeof(name), "%s", o->val);
    PQconninfoFree(opts);
    cr_assert(strncmp(name, "zt_", 3) == 0, "not a test database: %s", name);
    char sql[200];
    snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pgtest_admin_exec(sql);
}

static void start_at_exit(void)
{
    if (server_stopped && run_script("start-server") != 0)
        fprintf(stderr, "pgtest: could not start the PostgreSQL server again\n");
}

void pgtest_server_stop(void)
{
    cr_assert(pgtest_can_restart(), "ZYGO_TEST_PG_DIR is not set: no local server to stop");
    /* Other tests' processes must not see the outage: wait until none uses the cluster. */
    cluster_lock(true);
    static bool hooked;
    if (!hooked) {
        atexit(start_at_exit);
        hooked = true;
    }
    server_stopped = true;
    cr_assert_eq(run_script("stop-server"), 0, "pg-cluster.sh stop-server failed");
}

void pgtest_server_start(void)
{
    cr_assert(pgtest_can_restart(), "ZYGO_TEST_PG_DIR is not set: no local server to start");
    cr_assert_eq(run_script("start-server"), 0, "pg-cluster.sh start-server failed");
    server_stopped = false;
}
