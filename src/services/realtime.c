/* realtime.c — the real-time bus; see realtime.h. */
#include "lib/common.h"

#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "lib/log.h"
#include "services/realtime.h"

#define RT_CHANNEL "zygo_realtime"
#define RT_NOTIFY_MAX 7900 /* PostgreSQL refuses notification payloads of 8000 bytes */
#define RT_OUTBOX_MAX_BYTES (16u << 20)
#define RT_POLL_MS 50    /* SQLite: how often the events table is read */
#define RT_KEEP_MS 60000 /* rows older than this are pruned */
#define RT_PRUNE_EVERY_MS 10000
#define RT_BATCH_ROWS 256

/* One message waiting for the relay writer: target and JSON, each NUL-terminated. */
struct rt_msg {
    struct rt_msg *next;
    bool user;
    size_t tlen, jlen;
    char data[];
};

struct realtime {
    struct db *db;
    char *listen_url;
    char origin[17]; /* this bus's random id: its own messages coming back are skipped */

    /* Local delivery is read on every publish from any thread and changed rarely (server
     * start and stop): a read-write lock lets publishers run side by side. */
    pthread_rwlock_t local_lock;
    realtime_deliver_fn local_fn;
    void *local_arg;

    /* the writer: messages to relay, written by one thread in batches */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct rt_msg *head, *tail;
    size_t queued_bytes;
    bool writer_started, writer_stop;
    pthread_t writer;
    uint64_t seq; /* makes every notification payload unique (NOTIFY folds duplicates) */

    /* the reader: other processes' messages, once something local wants them */
    pthread_t reader;
    bool reader_started;
    atomic_bool reader_stop;
    int wakefd;

    atomic_llong last_warn_ms; /* relay failures are logged at most every 10 s */
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void warn_rate_limited(struct realtime *rt, const char *what, const char *why)
{
    int64_t now = wall_ms();
    long long last = atomic_load(&rt->last_warn_ms);
    if (now - last >= 10000 && atomic_compare_exchange_strong(&rt->last_warn_ms, &last, now))
        log_msg(LOG_WARN, "realtime: %s: %s", what, why);
}

/* ---- local delivery ------------------------------------------------------------------- */

static void deliver_local(struct realtime *rt, bool user, const char *target, const char *json,
                          size_t len)
{
    pthread_rwlock_rdlock(&rt->local_lock);
    if (rt->local_fn)
        rt->local_fn(rt->local_arg, user, target, json, len);
    pthread_rwlock_unlock(&rt->local_lock);
}

/* A relayed message: delivered unless this bus sent it. */
static void deliver_remote(struct realtime *rt, const char *origin, const char *kind,
                           const char *target, const char *json, size_t len)
{
    if (strcmp(origin, rt->origin) == 0)
        return;
    deliver_local(rt, strcmp(kind, "user") == 0, target, json, len);
}

/* ---- the writer ----------------------------------------------------------------------- */

static int write_sqlite(struct realtime *rt, struct db_conn *db, struct rt_msg *batch)
{
    if (db_begin(db) < 0)
        return -1;
    int64_t now = wall_ms();
    for (struct rt_msg *m = batch; m; m = m->next) {
        if (db_exec(db,
                    "INSERT INTO realtime_events (origin, kind, target, payload, created_at)"
                    " VALUES ($1, $2, $3, $4, $5)",
                    DB_ARGS(DB_TEXT(rt->origin), DB_TEXT(m->user ? "user" : "room"),
                            DB_TEXTN(m->data, m->tlen), DB_TEXTN(m->data + m->tlen + 1, m->jlen),
                            DB_INT(now))) < 0) {
            db_rollback(db);
            return -1;
        }
    }
    return db_commit(db);
}

/* Notification payload: "<origin> <seq> <room|user> <target>\n<json>", or "@<id>" for a
 * message stored in realtime_events because it is too long for a notification. */
static int write_pg(struct realtime *rt, struct db_conn *db, struct rt_msg *batch)
{
    if (db_begin(db) < 0)
        return -1;
    int64_t now = wall_ms();
    for (struct rt_msg *m = batch; m; m = m->next) {
        const char *kind = m->user ? "user" : "room";
        const char *json = m->data + m->tlen + 1;
        char head[64];
        int hl = snprintf(head, sizeof(head), "%s %llu %s ", rt->origin,
                          (unsigned long long)++rt->seq, kind);
        size_t total = (size_t)hl + m->tlen + 1 + m->jlen;
        char *payload = NULL;
        if (total <= RT_NOTIFY_MAX) {
            payload = xmalloc(total + 1);
            memcpy(payload, head, (size_t)hl);
            memcpy(payload + hl, m->data, m->tlen);
            payload[(size_t)hl + m->tlen] = '\n';
            memcpy(payload + hl + m->tlen + 1, json, m->jlen);
            payload[total] = '\0';
        } else {
            struct db_rows *r =
                db_query(db,
                         "INSERT INTO realtime_events (origin, kind, target, payload, created_at)"
                         " VALUES ($1, $2, $3, $4, $5) RETURNING id",
                         DB_ARGS(DB_TEXT(rt->origin), DB_TEXT(kind), DB_TEXTN(m->data, m->tlen),
                                 DB_TEXTN(json, m->jlen), DB_INT(now)));
            if (r && db_next(r)) {
                payload = xmalloc(32);
                snprintf(payload, 32, "@%lld", (long long)db_int(r, 0));
            }
            db_rows_free(r);
            if (!payload) {
                db_rollback(db);
                return -1;
            }
        }
        struct db_rows *r = db_query(db, "SELECT pg_notify($1, $2)",
                                     DB_ARGS(DB_TEXT(RT_CHANNEL), DB_TEXT(payload)));
        free(payload);
        if (!r) {
            db_rollback(db);
            return -1;
        }
        db_rows_free(r);
    }
    return db_commit(db);
}

static void free_batch(struct rt_msg *m)
{
    while (m) {
        struct rt_msg *next = m->next;
        free(m);
        m = next;
    }
}

static void write_batch(struct realtime *rt, struct rt_msg *batch)
{
    char err[256];
    struct db_conn *db = db_acquire(rt->db, err, sizeof(err));
    if (!db) {
        warn_rate_limited(rt, "messages not relayed (database unavailable)", err);
        return;
    }
    int rc =
        db_dialect(rt->db) == DB_POSTGRES ? write_pg(rt, db, batch) : write_sqlite(rt, db, batch);
    if (rc < 0)
        warn_rate_limited(rt, "messages not relayed", db_errmsg(db));
    db_release(db);
}

static void prune(struct realtime *rt)
{
    char err[256];
    struct db_conn *db = db_acquire(rt->db, err, sizeof(err));
    if (!db)
        return;
    if (db_exec(db, "DELETE FROM realtime_events WHERE created_at < $1",
                DB_ARGS(DB_INT(wall_ms() - RT_KEEP_MS))) < 0)
        warn_rate_limited(rt, "pruning old messages", db_errmsg(db));
    db_release(db);
}

static void *writer_main(void *p)
{
    struct realtime *rt = p;
    int64_t next_prune = 0;
    pthread_mutex_lock(&rt->mu);
    for (;;) {
        if (!rt->head && !rt->writer_stop) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_sec += RT_PRUNE_EVERY_MS / 1000;
            pthread_cond_timedwait(&rt->cv, &rt->mu, &ts);
        }
        struct rt_msg *batch = rt->head;
        rt->head = rt->tail = NULL;
        rt->queued_bytes = 0;
        bool stop = rt->writer_stop;
        pthread_mutex_unlock(&rt->mu);
        if (batch)
            write_batch(rt, batch);
        free_batch(batch);
        if (wall_ms() >= next_prune) {
            prune(rt);
            next_prune = wall_ms() + RT_PRUNE_EVERY_MS;
        }
        pthread_mutex_lock(&rt->mu);
        if (stop && !rt->head)
            break;
    }
    pthread_mutex_unlock(&rt->mu);
    return NULL;
}

/* ---- the reader ----------------------------------------------------------------------- */

/* Sleeps up to ms, or less when the bus is being freed; true when it is. */
static bool reader_wait(struct realtime *rt, int fd, int ms)
{
    struct pollfd p[2] = {{.fd = rt->wakefd, .events = POLLIN}, {.fd = fd, .events = POLLIN}};
    poll(p, fd >= 0 ? 2 : 1, ms);
    return atomic_load(&rt->reader_stop);
}

static void read_sqlite(struct realtime *rt)
{
    long long last = -1;
    while (!atomic_load(&rt->reader_stop)) {
        char err[256];
        struct db_conn *db = db_acquire(rt->db, err, sizeof(err));
        if (!db) {
            warn_rate_limited(rt, "cannot read relayed messages", err);
        } else {
            if (last < 0) {
                /* start from now: what was published before this process listened is past */
                struct db_rows *r =
                    db_query(db, "SELECT COALESCE(MAX(id), 0) FROM realtime_events", DB_NOARGS);
                if (r && db_next(r))
                    last = db_int(r, 0);
                db_rows_free(r);
            }
            bool more = last >= 0;
            while (more && !atomic_load(&rt->reader_stop)) {
                struct db_rows *r =
                    db_query(db,
                             "SELECT id, origin, kind, target, payload FROM realtime_events"
                             " WHERE id > $1 ORDER BY id LIMIT $2",
                             DB_ARGS(DB_INT(last), DB_INT(RT_BATCH_ROWS)));
                if (!r) {
                    warn_rate_limited(rt, "cannot read relayed messages", db_errmsg(db));
                    break;
                }
                int n = 0;
                while (db_next(r)) {
                    last = db_int(r, 0);
                    deliver_remote(rt, db_text(r, 1), db_text(r, 2), db_text(r, 3), db_text(r, 4),
                                   db_textlen(r, 4));
                    n++;
                }
                db_rows_free(r);
                more = n == RT_BATCH_ROWS;
            }
            db_release(db);
        }
        if (reader_wait(rt, -1, RT_POLL_MS))
            break;
    }
}

static void pg_message(struct realtime *rt, PGconn *pg, const char *payload)
{
    if (payload[0] == '@') {
        const char *vals[1] = {payload + 1};
        PGresult *res = PQexecParams(pg,
                                     "SELECT origin, kind, target, payload FROM realtime_events"
                                     " WHERE id = $1::bigint",
                                     1, NULL, vals, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1)
            deliver_remote(rt, PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 2),
                           PQgetvalue(res, 0, 3), (size_t)PQgetlength(res, 0, 3));
        PQclear(res);
        return;
    }
    /* "<origin> <seq> <kind> <target>\n<json>" */
    char origin[17], kind[8];
    unsigned long long seq;
    int off = 0;
    if (sscanf(payload, "%16s %llu %7s %n", origin, &seq, kind, &off) != 3 || off == 0)
        return;
    const char *target = payload + off;
    const char *nl = strchr(target, '\n');
    if (!nl)
        return;
    char *t = xstrndup(target, (size_t)(nl - target));
    deliver_remote(rt, origin, kind, t, nl + 1, strlen(nl + 1));
    free(t);
}

/* What the server says outside a query (e.g. "terminating connection") goes to our log. */
static void pg_notice(void *arg, const char *msg)
{
    (void)arg;
    log_msg(LOG_DEBUG, "realtime: postgres: %.*s", (int)strcspn(msg, "\n"), msg);
}

static PGconn *pg_listen(struct realtime *rt)
{
    const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
    const char *vals[] = {rt->listen_url, "zygo_realtime", "10", NULL};
    PGconn *pg = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(pg) != CONNECTION_OK) {
        warn_rate_limited(rt, "cannot open the LISTEN connection", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, pg_notice, NULL);
    PGresult *res = PQexec(pg, "LISTEN " RT_CHANNEL);
    bool ok = PQresultStatus(res) == PGRES_COMMAND_OK;
    PQclear(res);
    if (!ok) {
        warn_rate_limited(rt, "LISTEN failed", PQerrorMessage(pg));
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

static void read_pg(struct realtime *rt)
{
    PGconn *pg = NULL;
    int backoff = 100;
    int64_t last_seen = 0;
    while (!atomic_load(&rt->reader_stop)) {
        if (!pg) {
            pg = pg_listen(rt);
            if (!pg) {
                if (reader_wait(rt, -1, backoff))
                    break;
                backoff = ZY_MIN(backoff * 2, 5000);
                continue;
            }
            backoff = 100;
            last_seen = wall_ms();
        }
        if (reader_wait(rt, PQsocket(pg), 1000))
            break;
        bool lost = PQconsumeInput(pg) == 0;
        PGnotify *n;
        while (!lost && (n = PQnotifies(pg))) {
            pg_message(rt, pg, n->extra);
            PQfreemem(n);
            last_seen = wall_ms();
        }
        if (!lost && wall_ms() - last_seen > 30000) {
            /* a quiet channel: make sure the server is still there */
            PGresult *res = PQexec(pg, "SELECT 1");
            lost = PQresultStatus(res) != PGRES_TUPLES_OK;
            PQclear(res);
            last_seen = wall_ms();
        }
        if (lost || PQstatus(pg) != CONNECTION_OK) {
            warn_rate_limited(rt, "LISTEN connection lost, reconnecting", PQerrorMessage(pg));
            PQfinish(pg);
            pg = NULL;
        }
    }
    PQfinish(pg);
}

static void *reader_main(void *p)
{
    struct realtime *rt = p;
    if (db_dialect(rt->db) == DB_POSTGRES)
        read_pg(rt);
    else
        read_sqlite(rt);
    return NULL;
}

/* ---- the bus -------------------------------------------------------------------------- */

struct realtime *realtime_new(struct db *db)
{
    struct realtime *rt = xcalloc(1, sizeof(*rt));
    rt->db = db;
    unsigned char rnd[8];
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        uint64_t t = (uint64_t)wall_ms() ^ ((uint64_t)getpid() << 32) ^ (uintptr_t)rt;
        memcpy(rnd, &t, sizeof(rnd));
    }
    for (int i = 0; i < 8; i++)
        snprintf(rt->origin + 2 * i, 3, "%02x", rnd[i]);
    pthread_rwlock_init(&rt->local_lock, NULL);
    pthread_mutex_init(&rt->mu, NULL);
    pthread_cond_init(&rt->cv, NULL);
    rt->wakefd = -1;
    return rt;
}

void realtime_set_listen_url(struct realtime *rt, const char *url)
{
    free(rt->listen_url);
    rt->listen_url = url ? xstrdup(url) : NULL;
}

void realtime_free(struct realtime *rt)
{
    if (!rt)
        return;
    if (rt->reader_started) {
        atomic_store(&rt->reader_stop, true);
        uint64_t one = 1;
        ssize_t w = write(rt->wakefd, &one, sizeof(one));
        (void)w;
        pthread_join(rt->reader, NULL);
    }
    if (rt->wakefd >= 0)
        close(rt->wakefd);
    pthread_mutex_lock(&rt->mu);
    rt->writer_stop = true;
    pthread_cond_signal(&rt->cv);
    bool joined = rt->writer_started;
    pthread_mutex_unlock(&rt->mu);
    if (joined)
        pthread_join(rt->writer, NULL); /* relays what was published before it stops */
    free_batch(rt->head);
    pthread_cond_destroy(&rt->cv);
    pthread_mutex_destroy(&rt->mu);
    pthread_rwlock_destroy(&rt->local_lock);
    free(rt->listen_url);
    free(rt);
}

void realtime_set_local(struct realtime *rt, realtime_deliver_fn fn, void *arg)
{
    pthread_rwlock_wrlock(&rt->local_lock);
    rt->local_fn = fn;
    rt->local_arg = arg;
    /* other processes' messages matter from the first local receiver on */
    bool start = fn && rt->db && !rt->reader_started &&
                 (db_dialect(rt->db) != DB_POSTGRES || rt->listen_url);
    if (start) {
        rt->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (rt->wakefd >= 0 && pthread_create(&rt->reader, NULL, reader_main, rt) == 0)
            rt->reader_started = true;
        else
            log_msg(LOG_ERROR, "realtime: cannot start the relay reader");
    }
    pthread_rwlock_unlock(&rt->local_lock);
}

/* Queues the message for the writer thread; -1 when the queue is full. */
static int relay(struct realtime *rt, bool user, const char *target, size_t tlen, const char *json,
                 size_t len)
{
    struct rt_msg *m = xmalloc(sizeof(*m) + tlen + len + 2);
    m->next = NULL;
    m->user = user;
    m->tlen = tlen;
    m->jlen = len;
    memcpy(m->data, target, tlen);
    m->data[tlen] = '\0';
    memcpy(m->data + tlen + 1, json, len);
    m->data[tlen + 1 + len] = '\0';
    int rc = 0;
    pthread_mutex_lock(&rt->mu);
    if (rt->writer_stop || rt->queued_bytes + tlen + len > RT_OUTBOX_MAX_BYTES) {
        rc = -1;
    } else {
        if (!rt->writer_started) {
            if (pthread_create(&rt->writer, NULL, writer_main, rt) == 0)
                rt->writer_started = true;
            else
                rc = -1;
        }
        if (rc == 0) {
            if (rt->tail)
                rt->tail->next = m;
            else
                rt->head = m;
            rt->tail = m;
            rt->queued_bytes += tlen + len;
            pthread_cond_signal(&rt->cv);
        }
    }
    pthread_mutex_unlock(&rt->mu);
    if (rc < 0) {
        free(m);
        warn_rate_limited(rt, "message not relayed", "relay queue full or stopped");
    }
    return rc;
}

static int publish(struct realtime *rt, bool user, const char *target, const char *json, size_t len)
{
    if (!rt || !target || !json)
        return 0;
    deliver_local(rt, user, target, json, len);
    if (!rt->db)
        return 0;
    size_t tlen = strlen(target);
    /* a target with a newline could not be subscribed to, and would break the framing */
    if (memchr(target, '\n', tlen) || memchr(json, '\0', len))
        return -1;
    return relay(rt, user, target, tlen, json, len);
}

int realtime_publish_room(struct realtime *rt, const char *room, const char *json, size_t len)
{
    return publish(rt, false, room, json, len);
}

int realtime_publish_user(struct realtime *rt, const char *user_id, const char *json, size_t len)
{
    return publish(rt, true, user_id, json, len);
}
