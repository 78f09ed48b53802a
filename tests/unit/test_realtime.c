/* The real-time bus (services/realtime): local delivery from any thread, and the relay between
 * processes through the database (SQLite table / PostgreSQL LISTEN-NOTIFY). */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <unistd.h>

#include "db/db.h"
#include "services/realtime.h"
#include "dbtest.h"
#include "support.h"

struct seen {
    pthread_mutex_t mu;
    int n;
    bool user[8];
    char target[8][64];
    char json[8][128];
};

static void record(void *arg, bool user, const char *target, const char *json, size_t len)
{
    struct seen *s = arg;
    pthread_mutex_lock(&s->mu);
    if (s->n < 8) {
        s->user[s->n] = user;
        snprintf(s->target[s->n], sizeof(s->target[0]), "%s", target);
        snprintf(s->json[s->n], sizeof(s->json[0]), "%.*s", (int)len, json);
    }
    s->n++;
    pthread_mutex_unlock(&s->mu);
}

Test(realtime, local_delivery_of_rooms_and_users)
{
    struct seen s = {.mu = PTHREAD_MUTEX_INITIALIZER};
    struct realtime *rt = realtime_new(NULL);
    /* nothing registered yet: publishing is fine and goes nowhere */
    cr_assert_eq(realtime_publish_room(rt, "tenant:t:x", "{}", 2), 0);
    realtime_set_local(rt, record, &s);
    const char *m = "{\"type\":\"progress\",\"value\":10}";
    cr_assert_eq(realtime_publish_room(rt, "tenant:t:job:1", m, strlen(m)), 0);
    cr_assert_eq(realtime_publish_user(rt, "u-1", "{\"a\":1}", 7), 0);
    cr_assert_eq(s.n, 2);
    cr_assert_not(s.user[0]);
    cr_assert_str_eq(s.target[0], "tenant:t:job:1");
    cr_assert_str_eq(s.json[0], m);
    cr_assert(s.user[1]);
    cr_assert_str_eq(s.target[1], "u-1");
    cr_assert_str_eq(s.json[1], "{\"a\":1}");
    /* unregistered again: no more deliveries */
    realtime_set_local(rt, NULL, NULL);
    realtime_publish_room(rt, "tenant:t:job:1", m, strlen(m));
    cr_assert_eq(s.n, 2);
    realtime_free(rt);
    /* NULL bus: a no-op */
    cr_assert_eq(realtime_publish_room(NULL, "r", "{}", 2), 0);
    cr_assert_eq(realtime_publish_user(NULL, "u", "{}", 2), 0);
}

static atomic_int counted;

static void count(void *arg, bool user, const char *target, const char *json, size_t len)
{
    (void)arg;
    (void)user;
    (void)target;
    (void)json;
    (void)len;
    atomic_fetch_add(&counted, 1);
}

static void *publisher(void *p)
{
    struct realtime *rt = p;
    for (int i = 0; i < 1000; i++)
        realtime_publish_room(rt, "tenant:t:room", "{}", 2);
    return NULL;
}

Test(realtime, publish_from_many_threads)
{
    struct realtime *rt = realtime_new(NULL);
    realtime_set_local(rt, count, NULL);
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, publisher, rt);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    cr_assert_eq(atomic_load(&counted), 4000);
    realtime_free(rt);
}

/* ---- the relay between processes (two buses on two handles of one database) ------------ */

struct log {
    pthread_mutex_t mu;
    size_t n;
    char *items[2048]; /* "r|target|json" or "u|target|json" */
};

static void log_add(void *arg, bool user, const char *target, const char *json, size_t len)
{
    struct log *l = arg;
    size_t tl = strlen(target);
    char *s = xmalloc(tl + len + 4);
    snprintf(s, tl + len + 4, "%c|%s|%.*s", user ? 'u' : 'r', target, (int)len, json);
    pthread_mutex_lock(&l->mu);
    if (l->n < ARRAY_LEN(l->items))
        l->items[l->n++] = s;
    else
        free(s);
    pthread_mutex_unlock(&l->mu);
}

static size_t log_count(struct log *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->n;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static void log_clear(struct log *l)
{
    pthread_mutex_lock(&l->mu);
    for (size_t i = 0; i < l->n; i++)
        free(l->items[i]);
    l->n = 0;
    pthread_mutex_unlock(&l->mu);
}

static bool wait_count(struct log *l, size_t n, int ms)
{
    for (int i = 0; i < ms / 10 && log_count(l) < n; i++)
        usleep(10000);
    return log_count(l) >= n;
}

static struct tenv t;
static struct db *db2;
static struct realtime *bus_a, *bus_b;
static struct log got_a = {.mu = PTHREAD_MUTEX_INITIALIZER},
                  got_b = {.mu = PTHREAD_MUTEX_INITIALIZER};

static struct realtime *bus_on(struct db *db)
{
    struct realtime *rt = realtime_new(db);
    if (tdb_is_pg())
        realtime_set_listen_url(rt, t.tdb.app_url);
    return rt;
}

static void relay_setup(void)
{
    tenv_setup(&t, NULL, NULL, 0);
    char err[256];
    cr_assert_eq(db_open(&db2, t.tdb.app_url, err, sizeof(err)), 0, "%s", err);
    bus_a = bus_on(t.db);
    bus_b = bus_on(db2);
    realtime_set_local(bus_a, log_add, &got_a);
    realtime_set_local(bus_b, log_add, &got_b);
    /* a reader only sees what is published after it started listening: wait for that */
    bool ready = false;
    for (int i = 0; i < 100 && !ready; i++) {
        realtime_publish_room(bus_b, "probe", "{}", 2);
        ready = wait_count(&got_a, 1, 100);
    }
    cr_assert(ready, "bus A never heard bus B");
    usleep(300000);
    log_clear(&got_a);
    log_clear(&got_b);
}

static void relay_teardown(void)
{
    realtime_free(bus_a);
    realtime_free(bus_b);
    log_clear(&got_a);
    log_clear(&got_b);
    db_close(db2);
    tenv_teardown(&t);
}

TestSuite(relay, .init = relay_setup, .fini = relay_teardown, .timeout = 60);

Test(relay, messages_cross_once_and_in_order)
{
    char msg[64];
    for (int i = 0; i < 300; i++) {
        int n = snprintf(msg, sizeof(msg), "{\"n\":%d}", i);
        cr_assert_eq(realtime_publish_room(bus_b, "tenant:t:job:1", msg, (size_t)n), 0);
    }
    cr_assert_eq(realtime_publish_user(bus_b, "user-7", "{\"dm\":true}", 11), 0);
    /* longer than a PostgreSQL notification: carried by the table */
    size_t big = 20000;
    char *b = xmalloc(big + 16);
    int bn = snprintf(b, big + 16, "{\"pad\":\"%0*d\"}", (int)big, 7);
    cr_assert_eq(realtime_publish_room(bus_b, "tenant:t:big", b, (size_t)bn), 0);
    cr_assert(wait_count(&got_a, 302, 10000), "A got %zu of 302", log_count(&got_a));
    usleep(500000); /* relay rounds that could bring duplicates */
    cr_assert_eq(log_count(&got_a), 302, "delivered more than once");
    for (int i = 0; i < 300; i++) {
        snprintf(msg, sizeof(msg), "r|tenant:t:job:1|{\"n\":%d}", i);
        cr_assert_str_eq(got_a.items[i], msg);
    }
    cr_assert_str_eq(got_a.items[300], "u|user-7|{\"dm\":true}");
    cr_assert_eq(strncmp(got_a.items[301], "r|tenant:t:big|{\"pad\":\"000", 26), 0);
    cr_assert_eq(strlen(got_a.items[301]), strlen("r|tenant:t:big|") + (size_t)bn);
    /* B's own messages: delivered locally once, never again from the database */
    cr_assert_eq(log_count(&got_b), 302);
    free(b);
}

Test(relay, a_bad_target_is_not_relayed_but_delivered_here)
{
    cr_assert_eq(realtime_publish_room(bus_b, "two\nlines", "{}", 2), -1);
    cr_assert_eq(log_count(&got_b), 1);
    usleep(300000);
    cr_assert_eq(log_count(&got_a), 0);
}

Test(relay, old_rows_are_pruned)
{
    struct db_conn *c = dbt_acquire(t.db);
    cr_assert_eq(db_exec(c,
                         "INSERT INTO realtime_events (origin, kind, target, payload, created_at)"
                         " VALUES ('elsewhere', 'room', 'r', '{}', 1000)",
                         DB_NOARGS),
                 1);
    db_release(c);
    /* a fresh bus prunes when its writer starts, then every 10 s */
    struct realtime *rt = bus_on(t.db);
    realtime_publish_room(rt, "r", "{}", 2);
    int64_t left = 1;
    for (int i = 0; i < 100 && left; i++) {
        usleep(20000);
        c = dbt_acquire(t.db);
        left = dbt_query_int(c, "SELECT count(*) FROM realtime_events WHERE created_at = 1000",
                             DB_NOARGS);
        db_release(c);
    }
    cr_assert_eq(left, 0, "the old row is still there");
    realtime_free(rt);
}
