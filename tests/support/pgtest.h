/*
 * pgtest.h — PostgreSQL for the tests: a fresh database per test in the throwaway cluster that
 * scripts/pg-cluster.sh started, and stopping/starting that server for fault tests.
 *
 * The cluster is described by the variables of its DIR/env, exported into the tests'
 * environment (`set -a; . DIR/env; set +a`): ZYGO_TEST_PG_ADMIN_URL (a superuser, for
 * CREATE/DROP DATABASE), ZYGO_TEST_PG_HOST/PORT, ZYGO_TEST_PG_OWNER_PASSWORD (role
 * zygo_owner, which owns the test databases and runs migrations), ZYGO_TEST_PG_APP_PASSWORD
 * (role zygo_api: the application's login role, member of zygo_app, neither owner nor
 * superuser, so row-level security applies to it), ZYGO_TEST_PG_DIR and ZYGO_TEST_PG_SCRIPT
 * (for stopping and starting the server).
 *
 * Criterion runs each test in its own process, two at a time: database names are unique
 * (pid, counter, random). A test that stops the server would break the other process's
 * test, so the cluster has a lock (DIR/tests.lock): pgtest_create_db takes it shared,
 * pgtest_server_stop exclusive, each until the test's process exits.
 */
#ifndef ZYGO_TEST_PGTEST_H
#define ZYGO_TEST_PGTEST_H

#include <stdbool.h>
#include <stddef.h>

/* True when ZYGO_TEST_PG_ADMIN_URL is set: tests needing PostgreSQL skip otherwise. */
bool pgtest_available(void);

/* cr_skip_test() with the reason, unless PostgreSQL is available. */
#define PGTEST_REQUIRE()                                                                           \
    do {                                                                                           \
        if (!pgtest_available())                                                                   \
            cr_skip_test("PostgreSQL not configured: ZYGO_TEST_PG_ADMIN_URL is unset (start a "    \
                         "cluster with scripts/pg-cluster.sh start DIR and export DIR/env)");      \
    } while (0)

/*
 * Creates a fresh, empty, uniquely named database owned by zygo_owner and writes two URLs
 * for it: as zygo_owner (migrations, fixtures) and as zygo_api (the application). Fails the
 * test when it cannot.
 */
void pgtest_create_db(char *owner_url, size_t owner_len, char *app_url, size_t app_len);

/* Drops the database that a URL from pgtest_create_db names, ending connections to it. */
void pgtest_drop_db(const char *url);

/* Runs SQL as the cluster's superuser (in the database "postgres"); fails the test on error. */
void pgtest_admin_exec(const char *sql);

/* True when this process can stop and start the server (a local cluster: ZYGO_TEST_PG_DIR). */
bool pgtest_can_restart(void);

/*
 * Stops the server, keeping its data, after waiting for every other test using the cluster
 * to finish. Should the test end without pgtest_server_start(), it is started at exit.
 */
void pgtest_server_stop(void);
/* Starts it again on the same port; returns when it accepts connections. */
void pgtest_server_start(void);

#endif
