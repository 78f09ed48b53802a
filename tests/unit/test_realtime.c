/* The real-time bus (services/realtime): local delivery from any thread. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>

#include "services/realtime.h"

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
