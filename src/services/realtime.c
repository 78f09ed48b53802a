/* realtime.c — the real-time bus; see realtime.h. */
#include "lib/common.h"

#include <pthread.h>

#include "db/db.h"
#include "services/realtime.h"

struct realtime {
    struct db *db;
    /* Local delivery is read on every publish from any thread and changed rarely (server
     * start and stop): a read-write lock lets publishers run side by side. */
    pthread_rwlock_t local_lock;
    realtime_deliver_fn local_fn;
    void *local_arg;
};

struct realtime *realtime_new(struct db *db)
{
    struct realtime *rt = xcalloc(1, sizeof(*rt));
    rt->db = db;
    pthread_rwlock_init(&rt->local_lock, NULL);
    return rt;
}

void realtime_free(struct realtime *rt)
{
    if (!rt)
        return;
    pthread_rwlock_destroy(&rt->local_lock);
    free(rt);
}

void realtime_set_local(struct realtime *rt, realtime_deliver_fn fn, void *arg)
{
    pthread_rwlock_wrlock(&rt->local_lock);
    rt->local_fn = fn;
    rt->local_arg = arg;
    pthread_rwlock_unlock(&rt->local_lock);
}

static void deliver_local(struct realtime *rt, bool user, const char *target, const char *json,
                          size_t len)
{
    pthread_rwlock_rdlock(&rt->local_lock);
    if (rt->local_fn)
        rt->local_fn(rt->local_arg, user, target, json, len);
    pthread_rwlock_unlock(&rt->local_lock);
}

static int publish(struct realtime *rt, bool user, const char *target, const char *json,
                   size_t len)
{
    if (!rt || !target || !json)
        return 0;
    deliver_local(rt, user, target, json, len);
    return 0;
}

int realtime_publish_room(struct realtime *rt, const char *room, const char *json, size_t len)
{
    return publish(rt, false, room, json, len);
}

int realtime_publish_user(struct realtime *rt, const char *user_id, const char *json, size_t len)
{
    return publish(rt, true, user_id, json, len);
}
