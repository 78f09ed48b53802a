/* hub.c — see hub.h. */
#include "lib/common.h"

#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <unistd.h>

#include "db/db.h"
#include "http/ctx.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "lib/workq.h"
#include "repos/repo.h"
#include "repos/users.h"
#include "services/auth.h"
#include "ws/conn.h"
#include "ws/frame.h"
#include "ws/hub.h"

#define ID_LEN 40 /* a UUID and its NUL, with room */
#define INBOX_MAX_BYTES (64u << 20)
#define EVENTS_PER_WAIT 256
#define MAX_PENDING_CHECKS 16 /* room checks in flight per client */

/* ---- indexes: rooms and users --------------------------------------------------------- */

/* A named set: a room's members, or a user's clients. */
struct group {
    struct group *hnext;
    void *head; /* struct member * (rooms) or struct client * (users) */
    uint32_t count;
    uint32_t hash;
    char key[];
};

struct gmap {
    struct group **b;
    size_t nb, n;
};

struct client;

/* One client in one room: on the room's list and on the client's. */
struct member {
    struct member *rnext, *rprev; /* in the room */
    struct member *cnext;         /* in the client */
    struct group *room;
    struct client *cl;
};

struct client {
    struct ws_conn conn;          /* first: the loop's epoll data points here */
    struct client *prev, *next;   /* every client */
    struct client *uprev, *unext; /* the user's clients */
    struct group *user;           /* NULL until authenticated */
    struct member *rooms;
    uint16_t nrooms;
    uint16_t pending; /* worker checks in flight that will post back to this record */
    bool is_global_admin;
    bool reaped; /* out of every index, socket released; freed when pending reaches 0 */
    bool dead_listed;
    struct client *dead_next;
    int64_t expires_at; /* seconds since the epoch; 0: never */
    uint64_t last_rx;   /* ms */
    uint64_t ping_sent; /* ms; 0: no ping outstanding */
    char tenant_id[ID_LEN], user_id[ID_LEN], session_id[ID_LEN];
};

static uint32_t hash_str(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void gmap_grow(struct gmap *m)
{
    size_t nb = m->nb ? m->nb * 2 : 64;
    struct group **b = xcalloc(nb, sizeof(*b));
    for (size_t i = 0; i < m->nb; i++) {
        struct group *g = m->b[i];
        while (g) {
            struct group *next = g->hnext;
            g->hnext = b[g->hash & (nb - 1)];
            b[g->hash & (nb - 1)] = g;
            g = next;
        }
    }
    free(m->b);
    m->b = b;
    m->nb = nb;
}

static struct group *gmap_get(struct gmap *m, const char *key, bool create)
{
    uint32_t h = hash_str(key);
    if (m->nb) {
        for (struct group *g = m->b[h & (m->nb - 1)]; g; g = g->hnext)
            if (g->hash == h && strcmp(g->key, key) == 0)
                return g;
    }
    if (!create)
        return NULL;
    if (m->n + 1 > m->nb)
        gmap_grow(m);
    size_t kl = strlen(key);
    struct group *g = xcalloc(1, sizeof(*g) + kl + 1);
    memcpy(g->key, key, kl + 1);
    g->hash = h;
    g->hnext = m->b[h & (m->nb - 1)];
    m->b[h & (m->nb - 1)] = g;
    m->n++;
    return g;
}

static void gmap_del(struct gmap *m, struct group *g)
{
    struct group **pp = &m->b[g->hash & (m->nb - 1)];
    while (*pp && *pp != g)
        pp = &(*pp)->hnext;
    if (*pp) {
        *pp = g->hnext;
        m->n--;
    }
    free(g);
}

static void gmap_free(struct gmap *m)
{
    for (size_t i = 0; i < m->nb; i++) {
        struct group *g = m->b[i];
        while (g) {
            struct group *next = g->hnext;
            free(g);
            g = next;
        }
    }
    free(m->b);
    memset(m, 0, sizeof(*m));
}

/* ---- commands posted to the loop ------------------------------------------------------ */

enum cmd_kind { CMD_ADOPT, CMD_ROOM, CMD_USER, CMD_ROOM_CHECKED, CMD_SESSIONS_CHECKED };

struct cmd {
    struct cmd *next;
    enum cmd_kind kind;
    size_t bytes; /* counted against INBOX_MAX_BYTES */
    union {
        struct {
            int fd;
            uint16_t close_code;
            bool global_admin;
            int64_t expires_at;
            char reason[64];
            char tenant_id[ID_LEN], user_id[ID_LEN], session_id[ID_LEN];
            size_t nextra;
            uint8_t *extra;
        } adopt;
        struct {
            struct ws_frame *f;
            char *target;
            /* a user message announcing revoked sessions (auth_announce_revoked): close
             * the user's sockets on `revoke`, or with revoke_all all but those on `keep` */
            bool revoke_all;
            char revoke[ID_LEN], keep[ID_LEN];
        } pub;
        struct {
            struct client *cl;
            int verdict; /* 1 allowed, 0 denied, -1 could not check */
            char *room;
        } checked;
        struct {
            char **dead; /* session ids to close, NULL-terminated */
            char **why;
        } sessions;
    } u;
};

struct ws_hub {
    struct db *db;
    struct ws_options o;
    struct ws_conn_env env;
    int epfd, wakefd;
    pthread_t thread;
    bool started;
    struct workq *checks;
    struct ws_frame *ping;

    pthread_mutex_t inbox_lock;
    struct cmd *inbox_head, *inbox_tail;
    size_t inbox_bytes;

    atomic_bool stopping;
    atomic_uint shutdown_ms; /* the grace period asked for */
    atomic_uint nclients, nrooms, nframing;
    atomic_ullong dropped_slow;

    /* loop thread only */
    struct client *clients;
    struct client *dead;
    struct gmap rooms, users;
    uint64_t now;
    uint64_t next_tick, next_session_check;
    unsigned tick_ms;
    bool session_check_running;
    bool closing_all;
};

static struct ws_hub *hub_of(struct ws_conn *c)
{
    /* the env is the hub's own member */
    return (struct ws_hub *)(void *)((char *)c->env - offsetof(struct ws_hub, env));
}

static uint64_t mono_ms(void)
{
    return zy_now_ns() / 1000000u;
}

static void post(struct ws_hub *h, struct cmd *c)
{
    c->next = NULL;
    pthread_mutex_lock(&h->inbox_lock);
    bool was_empty = !h->inbox_head;
    if (h->inbox_tail)
        h->inbox_tail->next = c;
    else
        h->inbox_head = c;
    h->inbox_tail = c;
    h->inbox_bytes += c->bytes;
    pthread_mutex_unlock(&h->inbox_lock);
    if (was_empty) {
        uint64_t one = 1;
        ssize_t w = write(h->wakefd, &one, sizeof(one));
        (void)w; /* the counter saturating still wakes the loop */
    }
}

static void cmd_free(struct cmd *c)
{
    switch (c->kind) {
    case CMD_ADOPT:
        if (c->u.adopt.fd >= 0)
            close(c->u.adopt.fd);
        free(c->u.adopt.extra);
        break;
    case CMD_ROOM:
    case CMD_USER:
        ws_frame_unref(c->u.pub.f);
        free(c->u.pub.target);
        break;
    case CMD_ROOM_CHECKED:
        free(c->u.checked.room);
        break;
    case CMD_SESSIONS_CHECKED:
        for (size_t i = 0; c->u.sessions.dead && c->u.sessions.dead[i]; i++) {
            free(c->u.sessions.dead[i]);
            free(c->u.sessions.why[i]);
        }
        free(c->u.sessions.dead);
        free(c->u.sessions.why);
        break;
    }
    free(c);
}

/* ---- options -------------------------------------------------------------------------- */

static const char *var(char *const *vars, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; vars && vars[i]; i++)
        if (strncmp(vars[i], name, n) == 0 && vars[i][n] == '=')
            return vars[i][n + 1] ? vars[i] + n + 1 : NULL;
    return NULL;
}

static int opt_num(char *const *vars, const char *name, unsigned long long min,
                   unsigned long long max, unsigned long long *out, char *err, size_t errlen)
{
    const char *v = var(vars, name);
    if (!v)
        return 0;
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (errno || *end || v[0] == '-' || v[0] == '+' || v[0] == ' ' || x < min || x > max) {
        snprintf(err, errlen, "%s must be an integer from %llu to %llu", name, min, max);
        return -1;
    }
    *out = x;
    return 0;
}

int ws_options_load(struct ws_options *o, char *const *vars, char *err, size_t errlen)
{
    struct {
        const char *name;
        unsigned long long def, min, max;
    } t[] = {
        {"WS_MAX_MESSAGE_BYTES", 65536, 126, 16u << 20},
        {"WS_SEND_QUEUE_BYTES", 1u << 20, 1024, 1u << 30},
        {"WS_PING_INTERVAL_MS", 30000, 10, 3600000},
        {"WS_PONG_TIMEOUT_MS", 10000, 10, 3600000},
        {"WS_SESSION_CHECK_MS", 30000, 0, 86400000},
        {"WS_CLOSE_TIMEOUT_MS", 5000, 10, 600000},
        {"WS_MAX_CONNECTIONS", 100000, 1, 10000000},
        {"WS_MAX_ROOMS", 100, 1, 10000},
        {"WS_CHECK_THREADS", 2, 1, 64},
    };
    unsigned long long v[ARRAY_LEN(t)];
    for (size_t i = 0; i < ARRAY_LEN(t); i++) {
        v[i] = t[i].def;
        if (opt_num(vars, t[i].name, t[i].min, t[i].max, &v[i], err, errlen) < 0)
            return -1;
    }
    o->max_message = (size_t)v[0];
    o->send_queue_max = (size_t)v[1];
    o->ping_interval_ms = (unsigned)v[2];
    o->pong_timeout_ms = (unsigned)v[3];
    o->session_check_ms = (unsigned)v[4];
    o->close_timeout_ms = (unsigned)v[5];
    o->max_connections = (unsigned)v[6];
    o->max_rooms = (unsigned)v[7];
    o->check_threads = (unsigned)v[8];
    return 0;
}

/* ---- sending -------------------------------------------------------------------------- */

static void mark_dead(struct ws_hub *h, struct client *cl)
{
    if (cl->conn.state == WS_DEAD && !cl->dead_listed) {
        cl->dead_listed = true;
        cl->dead_next = h->dead;
        h->dead = cl;
    }
}

static void send_frame(struct ws_hub *h, struct client *cl, struct ws_frame *f)
{
    if (ws_conn_send(&cl->conn, f) < 0)
        mark_dead(h, cl);
}

/* Sends v (reference stolen) as one text message. */
static void send_json(struct ws_hub *h, struct client *cl, json_t *v)
{
    size_t len;
    char *s = jx_dump(v, &len);
    json_decref(v);
    struct ws_frame *f = ws_frame_new(WS_OP_TEXT, s, len);
    free(s);
    if (f) {
        send_frame(h, cl, f);
        ws_frame_unref(f);
    }
}

static void send_error(struct ws_hub *h, struct client *cl, const char *msg)
{
    send_json(h, cl, json_pack("{s:s, s:s}", "type", "error", "message", msg));
}

static void send_room_reply(struct ws_hub *h, struct client *cl, const char *type, const char *room)
{
    send_json(h, cl, json_pack("{s:s, s:o}", "type", type, "room", jx_str(room)));
}

static void close_client(struct ws_hub *h, struct client *cl, uint16_t code, const char *why)
{
    ws_conn_close(&cl->conn, code, why, h->now);
    mark_dead(h, cl);
}

/* ---- rooms ---------------------------------------------------------------------------- */

static struct member *find_member(struct client *cl, const char *room)
{
    for (struct member *m = cl->rooms; m; m = m->cnext)
        if (strcmp(m->room->key, room) == 0)
            return m;
    return NULL;
}

static void join(struct ws_hub *h, struct client *cl, const char *room)
{
    if (find_member(cl, room))
        return;
    struct group *g = gmap_get(&h->rooms, room, true);
    struct member *m = xcalloc(1, sizeof(*m));
    m->room = g;
    m->cl = cl;
    m->rnext = g->head;
    if (m->rnext)
        m->rnext->rprev = m;
    g->head = m;
    g->count++;
    m->cnext = cl->rooms;
    cl->rooms = m;
    cl->nrooms++;
    atomic_store(&h->nrooms, (unsigned)h->rooms.n);
}

/* Takes m off its room (deleting an empty room); the caller unlinks it from the client. */
static void member_drop(struct ws_hub *h, struct member *m)
{
    struct group *g = m->room;
    if (m->rprev)
        m->rprev->rnext = m->rnext;
    else
        g->head = m->rnext;
    if (m->rnext)
        m->rnext->rprev = m->rprev;
    if (--g->count == 0)
        gmap_del(&h->rooms, g);
    free(m);
    atomic_store(&h->nrooms, (unsigned)h->rooms.n);
}

static void leave(struct ws_hub *h, struct client *cl, const char *room)
{
    struct member **pp = &cl->rooms;
    while (*pp && strcmp((*pp)->room->key, room) != 0)
        pp = &(*pp)->cnext;
    if (!*pp)
        return;
    struct member *m = *pp;
    *pp = m->cnext;
    cl->nrooms--;
    member_drop(h, m);
}

/* A room check on a worker thread. */
struct room_job {
    struct ws_hub *h;
    struct client *cl;
    ws_room_check_fn fn;
    void *arg;
    char *room;
    size_t id_off;
    char tenant_id[ID_LEN], user_id[ID_LEN], session_id[ID_LEN];
    bool global_admin;
};

static void room_job_run(void *p)
{
    struct room_job *j = p;
    int verdict = -1;
    char err[256];
    struct db_conn *db = db_acquire(j->h->db, err, sizeof(err));
    if (!db) {
        log_msg(LOG_WARN, "ws: room check: database unavailable: %s", err);
    } else {
        struct ws_principal who = {j->tenant_id, j->user_id, j->session_id, j->global_admin};
        verdict =
            repo_tenant(db, j->tenant_id) < 0 ? 0 : j->fn(db, &who, j->room + j->id_off, j->arg);
        db_release(db);
    }
    struct cmd *c = xcalloc(1, sizeof(*c));
    c->kind = CMD_ROOM_CHECKED;
    c->u.checked.cl = j->cl;
    c->u.checked.verdict = verdict < 0 ? -1 : verdict > 0;
    c->u.checked.room = j->room;
    post(j->h, c);
    free(j);
}

static void subscribe(struct ws_hub *h, struct client *cl, const char *room)
{
    if (find_member(cl, room)) {
        send_room_reply(h, cl, "subscribed", room);
        return;
    }
    if (cl->nrooms >= h->o.max_rooms) {
        send_error(h, cl, "Too many rooms");
        return;
    }
    struct ws_principal who = {cl->tenant_id, cl->user_id, cl->session_id, cl->is_global_admin};
    ws_room_check_fn fn;
    void *arg;
    const char *id;
    switch (ws_rooms_classify(&who, room, &fn, &arg, &id)) {
    case WS_ROOM_DENY:
        send_error(h, cl, "Access denied to room");
        return;
    case WS_ROOM_ALLOW:
        join(h, cl, room);
        send_room_reply(h, cl, "subscribed", room);
        return;
    case WS_ROOM_CHECK:
        break;
    }
    if (cl->pending >= MAX_PENDING_CHECKS) {
        /* one client may not fill the check queue that every client shares */
        send_error(h, cl, "Too many subscriptions being checked, try again");
        return;
    }
    struct room_job *j = xcalloc(1, sizeof(*j));
    j->h = h;
    j->cl = cl;
    j->fn = fn;
    j->arg = arg;
    j->room = xstrdup(room);
    j->id_off = (size_t)(id - room);
    memcpy(j->tenant_id, cl->tenant_id, ID_LEN);
    memcpy(j->user_id, cl->user_id, ID_LEN);
    memcpy(j->session_id, cl->session_id, ID_LEN);
    j->global_admin = cl->is_global_admin;
    cl->pending++;
    if (workq_submit(h->checks, room_job_run, j) < 0) {
        cl->pending--;
        free(j->room);
        free(j);
        send_error(h, cl, "Server busy, try again");
    }
}

static void room_checked(struct ws_hub *h, struct cmd *c)
{
    struct client *cl = c->u.checked.cl;
    cl->pending--;
    if (cl->reaped) {
        if (cl->pending == 0)
            free(cl);
        return;
    }
    if (cl->conn.state != WS_OPEN)
        return;
    const char *room = c->u.checked.room;
    if (c->u.checked.verdict == 1) {
        if (cl->nrooms >= h->o.max_rooms && !find_member(cl, room)) {
            send_error(h, cl, "Too many rooms");
            return;
        }
        join(h, cl, room);
        send_room_reply(h, cl, "subscribed", room);
    } else if (c->u.checked.verdict == 0) {
        send_error(h, cl, "Access denied to room");
    } else {
        send_error(h, cl, "Could not check access to room, try again");
    }
}

/* ---- messages from clients ------------------------------------------------------------ */

static void on_message(struct ws_conn *c, const uint8_t *data, size_t len)
{
    struct client *cl = (struct client *)c;
    struct ws_hub *h = hub_of(c);
    if (!cl->user)
        return; /* a socket being refused says nothing more */
    json_error_t jerr;
    json_t *m = json_loadb((const char *)data, len, JSON_DECODE_ANY, &jerr);
    if (!m) {
        send_error(h, cl, "Invalid JSON");
        return;
    }
    const char *type = json_string_value(json_object_get(m, "type"));
    if (!json_is_object(m) || !type) {
        send_error(h, cl, "Invalid message: expected an object with a string \"type\"");
    } else if (strcmp(type, "subscribe") == 0 || strcmp(type, "unsubscribe") == 0) {
        const char *room = json_string_value(json_object_get(m, "room"));
        if (!room || !*room) {
            send_error(h, cl, "Missing room");
        } else if (type[0] == 's') {
            subscribe(h, cl, room);
        } else {
            leave(h, cl, room);
            send_room_reply(h, cl, "unsubscribed", room);
        }
    } else if (strcmp(type, "ping") == 0) {
        send_json(h, cl, json_pack("{s:s}", "type", "pong"));
    } else {
        char msg[128];
        snprintf(msg, sizeof(msg), "Unknown message type: %.64s", type);
        send_json(h, cl, json_pack("{s:s, s:o}", "type", "error", "message", jx_str(msg)));
    }
    json_decref(m);
    mark_dead(h, cl);
}

static void on_activity(struct ws_conn *c)
{
    struct client *cl = (struct client *)c;
    cl->last_rx = hub_of(c)->now;
    cl->ping_sent = 0;
}

/* ---- clients -------------------------------------------------------------------------- */

static void adopt(struct ws_hub *h, struct cmd *c)
{
    struct client *cl = xcalloc(1, sizeof(*cl));
    int fd = c->u.adopt.fd;
    c->u.adopt.fd = -1; /* ours now */
    if (ws_conn_init(&cl->conn, &h->env, fd, c->u.adopt.extra, c->u.adopt.nextra) < 0) {
        log_msg(LOG_WARN, "ws: cannot watch a socket: %s", strerror(errno));
        close(fd);
        free(cl);
        return;
    }
    cl->next = h->clients;
    if (cl->next)
        cl->next->prev = cl;
    h->clients = cl;
    atomic_fetch_add(&h->nclients, 1);
    cl->last_rx = h->now;
    uint16_t code = c->u.adopt.close_code;
    const char *reason = c->u.adopt.reason;
    if (code == 0 && (h->closing_all || atomic_load(&h->stopping))) {
        code = 1001;
        reason = "Server shutting down";
    } else if (code == 0 && atomic_load(&h->nclients) > h->o.max_connections) {
        code = 1013;
        reason = "Too many connections";
    }
    if (code) {
        close_client(h, cl, code, reason);
        return;
    }
    memcpy(cl->tenant_id, c->u.adopt.tenant_id, ID_LEN);
    memcpy(cl->user_id, c->u.adopt.user_id, ID_LEN);
    memcpy(cl->session_id, c->u.adopt.session_id, ID_LEN);
    cl->is_global_admin = c->u.adopt.global_admin;
    cl->expires_at = c->u.adopt.expires_at;
    struct group *u = gmap_get(&h->users, cl->user_id, true);
    cl->user = u;
    cl->unext = u->head;
    if (cl->unext)
        cl->unext->uprev = cl;
    u->head = cl;
    u->count++;
    log_msg(LOG_DEBUG, "ws: client connected (user %s)", cl->user_id);
    send_json(h, cl, json_pack("{s:s, s:s}", "type", "connected", "userId", cl->user_id));
    if (cl->conn.pre) /* frames the client sent right behind its request */
        ws_conn_on_events(&cl->conn, 0, h->now);
    mark_dead(h, cl);
}

/* Takes a finished client out of every index and releases its socket; frees the record
 * unless a worker check will still post back to it. */
static void reap(struct ws_hub *h, struct client *cl)
{
    while (cl->rooms) {
        struct member *m = cl->rooms;
        cl->rooms = m->cnext;
        member_drop(h, m);
    }
    cl->nrooms = 0;
    if (cl->user) {
        if (cl->uprev)
            cl->uprev->unext = cl->unext;
        else
            cl->user->head = cl->unext;
        if (cl->unext)
            cl->unext->uprev = cl->uprev;
        if (--cl->user->count == 0)
            gmap_del(&h->users, cl->user);
        cl->user = NULL;
    }
    if (cl->prev)
        cl->prev->next = cl->next;
    else
        h->clients = cl->next;
    if (cl->next)
        cl->next->prev = cl->prev;
    if (cl->conn.overflowed)
        atomic_fetch_add(&h->dropped_slow, 1);
    ws_conn_release(&cl->conn);
    atomic_fetch_sub(&h->nclients, 1);
    cl->reaped = true;
    if (cl->pending == 0)
        free(cl);
}

static void reap_dead(struct ws_hub *h)
{
    while (h->dead) {
        struct client *cl = h->dead;
        h->dead = cl->dead_next;
        reap(h, cl);
    }
}

static void publish(struct ws_hub *h, struct cmd *c)
{
    if (c->kind == CMD_ROOM) {
        struct group *g = gmap_get(&h->rooms, c->u.pub.target, false);
        for (struct member *m = g ? g->head : NULL; m; m = m->rnext)
            send_frame(h, m->cl, c->u.pub.f);
    } else {
        struct group *g = gmap_get(&h->users, c->u.pub.target, false);
        bool revocation = c->u.pub.revoke_all || c->u.pub.revoke[0];
        for (struct client *cl = g ? g->head : NULL; cl; cl = cl->unext) {
            if (!revocation) {
                send_frame(h, cl, c->u.pub.f);
                continue;
            }
            /* the notice goes to the sockets it ends, and only to those */
            if (c->u.pub.revoke_all ? strcmp(cl->session_id, c->u.pub.keep) == 0
                                    : strcmp(cl->session_id, c->u.pub.revoke) != 0)
                continue;
            send_frame(h, cl, c->u.pub.f);
            /* mark_dead leaves the client listed until the end of the turn */
            close_client(h, cl, 4002, "Session has been revoked");
        }
    }
}

/* Reads a revocation announcement into the command; other user messages are left as they
 * are (only auth_announce_revoked writes this type, so the prefix test is exact). The notice
 * reaches only the sockets it closes. */
static void read_revocation(struct cmd *c, const char *json, size_t len)
{
    static const char prefix[] = "{\"type\":\"session.revoked\"";
    if (len < sizeof(prefix) - 1 || memcmp(json, prefix, sizeof(prefix) - 1) != 0)
        return;
    json_t *m = json_loadb(json, len, 0, NULL);
    const char *sid = json_string_value(json_object_get(m, "sessionId"));
    json_t *except = json_object_get(m, "except");
    if (sid) {
        snprintf(c->u.pub.revoke, sizeof(c->u.pub.revoke), "%s", sid);
    } else if (except) {
        c->u.pub.revoke_all = true;
        snprintf(c->u.pub.keep, sizeof(c->u.pub.keep), "%s",
                 json_is_string(except) ? json_string_value(except) : "");
    }
    json_decref(m);
}

/* ---- session re-checks ---------------------------------------------------------------- */

struct session_job {
    struct ws_hub *h;
    size_t n;
    char (*ids)[3][ID_LEN]; /* tenant, user, session */
};

static int cmp_session(const void *a, const void *b)
{
    const char(*x)[ID_LEN] = a, (*y)[ID_LEN] = b;
    return strcmp(x[2], y[2]);
}

static void session_job_run(void *p)
{
    struct session_job *j = p;
    size_t ndead = 0;
    char **dead = xcalloc(j->n + 1, sizeof(char *));
    char **why = xcalloc(j->n + 1, sizeof(char *));
    char err[256];
    struct db_conn *db = db_acquire(j->h->db, err, sizeof(err));
    if (!db)
        log_msg(LOG_WARN, "ws: session check: database unavailable: %s", err);
    char now[32];
    auth_iso(auth_now(), now);
    for (size_t i = 0; db && i < j->n; i++) {
        struct user_auth ua;
        int found = users_auth_load(db, j->ids[i][0], j->ids[i][1], j->ids[i][2], now, &ua);
        const char *reason = NULL;
        if (found == 0 || (found == 1 && !ua.session_live))
            reason = "Session has been revoked or has expired";
        else if (found == 1 && strcmp(ua.status, "suspended") == 0)
            reason = "User is suspended";
        else if (found == 1 && strcmp(ua.tenant_status, "active") != 0 && !ua.is_global_admin)
            reason = "Tenant is suspended";
        if (reason) {
            dead[ndead] = xstrdup(j->ids[i][2]);
            why[ndead++] = xstrdup(reason);
        }
    }
    if (db)
        db_release(db);
    struct cmd *c = xcalloc(1, sizeof(*c));
    c->kind = CMD_SESSIONS_CHECKED;
    c->u.sessions.dead = dead;
    c->u.sessions.why = why;
    post(j->h, c);
    free(j->ids);
    free(j);
}

static void start_session_check(struct ws_hub *h)
{
    size_t n = 0;
    for (struct client *cl = h->clients; cl; cl = cl->next)
        n += cl->user && cl->conn.state == WS_OPEN;
    if (n == 0)
        return;
    struct session_job *j = xcalloc(1, sizeof(*j));
    j->h = h;
    j->ids = xcalloc(n, sizeof(*j->ids));
    for (struct client *cl = h->clients; cl; cl = cl->next) {
        if (!cl->user || cl->conn.state != WS_OPEN)
            continue;
        memcpy(j->ids[j->n][0], cl->tenant_id, ID_LEN);
        memcpy(j->ids[j->n][1], cl->user_id, ID_LEN);
        memcpy(j->ids[j->n][2], cl->session_id, ID_LEN);
        j->n++;
    }
    /* one lookup per session, however many sockets share it */
    qsort(j->ids, j->n, sizeof(*j->ids), cmp_session);
    size_t u = 0;
    for (size_t i = 0; i < j->n; i++)
        if (u == 0 || strcmp(j->ids[u - 1][2], j->ids[i][2]) != 0)
            memcpy(j->ids[u++], j->ids[i], sizeof(*j->ids));
    j->n = u;
    h->session_check_running = true;
    if (workq_submit(h->checks, session_job_run, j) < 0) {
        h->session_check_running = false;
        free(j->ids);
        free(j);
    }
}

static void sessions_checked(struct ws_hub *h, struct cmd *c)
{
    h->session_check_running = false;
    for (size_t i = 0; c->u.sessions.dead[i]; i++)
        for (struct client *cl = h->clients; cl; cl = cl->next)
            if (cl->user && strcmp(cl->session_id, c->u.sessions.dead[i]) == 0)
                close_client(h, cl, 4002, c->u.sessions.why[i]);
}

/* ---- the loop ------------------------------------------------------------------------- */

static void tick(struct ws_hub *h)
{
    int64_t now_s = auth_now();
    unsigned framing = 0;
    for (struct client *cl = h->clients; cl; cl = cl->next) {
        struct ws_conn *c = &cl->conn;
        ws_conn_tick(c, h->now);
        if (c->state == WS_OPEN && cl->user && cl->expires_at && now_s >= cl->expires_at) {
            close_client(h, cl, 4002, "Authentication token expired");
        } else if (c->state == WS_OPEN && cl->ping_sent &&
                   h->now - cl->ping_sent >= h->o.pong_timeout_ms) {
            log_msg(LOG_DEBUG, "ws: no pong in %u ms, dropping the connection",
                    h->o.pong_timeout_ms);
            ws_conn_abort(c);
        } else if (c->state == WS_OPEN && !cl->ping_sent &&
                   h->now - cl->last_rx >= h->o.ping_interval_ms) {
            cl->ping_sent = h->now;
            send_frame(h, cl, h->ping);
        }
        framing += !ws_conn_idle(c);
        mark_dead(h, cl);
    }
    atomic_store(&h->nframing, framing);
    if (h->o.session_check_ms && h->now >= h->next_session_check) {
        h->next_session_check = h->now + h->o.session_check_ms;
        if (!h->session_check_running && !h->closing_all)
            start_session_check(h);
    }
}

static void run_inbox(struct ws_hub *h)
{
    pthread_mutex_lock(&h->inbox_lock);
    struct cmd *c = h->inbox_head;
    h->inbox_head = h->inbox_tail = NULL;
    h->inbox_bytes = 0;
    pthread_mutex_unlock(&h->inbox_lock);
    while (c) {
        struct cmd *next = c->next;
        switch (c->kind) {
        case CMD_ADOPT:
            adopt(h, c);
            break;
        case CMD_ROOM:
        case CMD_USER:
            publish(h, c);
            break;
        case CMD_ROOM_CHECKED:
            room_checked(h, c);
            break;
        case CMD_SESSIONS_CHECKED:
            sessions_checked(h, c);
            break;
        }
        cmd_free(c);
        c = next;
    }
}

static void close_all(struct ws_hub *h)
{
    h->closing_all = true;
    for (struct client *cl = h->clients; cl; cl = cl->next)
        close_client(h, cl, 1001, "Server shutting down");
}

static void *loop_main(void *p)
{
    struct ws_hub *h = p;
    struct epoll_event evs[EVENTS_PER_WAIT];
    uint64_t stop_deadline = 0;
    h->now = mono_ms();
    h->next_tick = h->now + h->tick_ms;
    h->next_session_check = h->now + h->o.session_check_ms;
    for (;;) {
        if (atomic_load(&h->stopping) && !h->closing_all) {
            close_all(h);
            stop_deadline = h->now + atomic_load(&h->shutdown_ms);
        }
        if (h->closing_all && (!h->clients || h->now >= stop_deadline))
            break;
        int timeout = h->next_tick > h->now ? (int)(h->next_tick - h->now) : 0;
        int n = epoll_wait(h->epfd, evs, EVENTS_PER_WAIT, timeout);
        h->now = mono_ms();
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t v;
                ssize_t r = read(h->wakefd, &v, sizeof(v));
                (void)r;
                continue;
            }
            struct client *cl = evs[i].data.ptr;
            ws_conn_on_events(&cl->conn, evs[i].events, h->now);
            mark_dead(h, cl);
        }
        run_inbox(h);
        if (h->now >= h->next_tick) {
            tick(h);
            h->next_tick = h->now + h->tick_ms;
        }
        reap_dead(h);
    }
    /* past the deadline: whoever did not finish the handshake is dropped */
    for (struct client *cl = h->clients; cl; cl = cl->next) {
        ws_conn_abort(&cl->conn);
        mark_dead(h, cl);
    }
    reap_dead(h);
    return NULL;
}

static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
            log_msg(LOG_WARN, "ws: cannot raise the open-files limit: %s", strerror(errno));
    }
}

struct ws_hub *ws_hub_new(struct db *db, const struct ws_options *o)
{
    raise_nofile();
    struct ws_hub *h = xcalloc(1, sizeof(*h));
    h->db = db;
    h->o = *o;
    h->env = (struct ws_conn_env){
        .max_message = o->max_message,
        .queue_max = o->send_queue_max,
        .close_timeout_ms = o->close_timeout_ms,
        .on_message = on_message,
        .on_activity = on_activity,
    };
    unsigned t = ZY_MIN(ZY_MIN(o->ping_interval_ms, o->pong_timeout_ms), o->close_timeout_ms);
    if (o->session_check_ms)
        t = ZY_MIN(t, o->session_check_ms);
    h->tick_ms = ZY_MAX(5u, ZY_MIN(1000u, t / 4));
    pthread_mutex_init(&h->inbox_lock, NULL);
    h->epfd = epoll_create1(EPOLL_CLOEXEC);
    h->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (h->epfd < 0 || h->wakefd < 0)
        zy_oom(0); /* out of descriptors at start: nothing sensible to go on with */
    h->env.epfd = h->epfd;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    epoll_ctl(h->epfd, EPOLL_CTL_ADD, h->wakefd, &ev);
    h->ping = ws_frame_new(WS_OP_PING, NULL, 0);
    h->checks = workq_new(o->check_threads, 4096);
    if (pthread_create(&h->thread, NULL, loop_main, h) == 0)
        h->started = true;
    else
        log_msg(LOG_ERROR, "ws: cannot start the loop thread");
    return h;
}

void ws_hub_adopt(struct ws_hub *h, int fd, const void *extra, size_t n, const struct ws_accept *a)
{
    if (!h->started || atomic_load(&h->stopping)) {
        close(fd);
        return;
    }
    struct cmd *c = xcalloc(1, sizeof(*c));
    c->kind = CMD_ADOPT;
    c->u.adopt.fd = fd;
    c->u.adopt.close_code = a->close_code;
    snprintf(c->u.adopt.reason, sizeof(c->u.adopt.reason), "%s",
             a->close_reason ? a->close_reason : "");
    if (!a->close_code) {
        snprintf(c->u.adopt.tenant_id, ID_LEN, "%s", a->who.tenant_id);
        snprintf(c->u.adopt.user_id, ID_LEN, "%s", a->who.user_id);
        snprintf(c->u.adopt.session_id, ID_LEN, "%s", a->who.session_id);
        c->u.adopt.global_admin = a->who.is_global_admin;
        c->u.adopt.expires_at = a->expires_at;
    }
    if (n) {
        c->u.adopt.extra = xmalloc(n);
        memcpy(c->u.adopt.extra, extra, n);
        c->u.adopt.nextra = n;
    }
    post(h, c);
}

void ws_hub_deliver(void *hub, bool user, const char *target, const char *json, size_t len)
{
    struct ws_hub *h = hub;
    if (!h || !h->started || atomic_load(&h->stopping) || !target)
        return;
    size_t tl = strlen(target);
    size_t bytes = len + tl + sizeof(struct cmd);
    pthread_mutex_lock(&h->inbox_lock);
    bool full = h->inbox_bytes + bytes > INBOX_MAX_BYTES;
    pthread_mutex_unlock(&h->inbox_lock);
    if (full) {
        log_msg(LOG_WARN, "ws: hub inbox full, a message for %s was dropped",
                user ? "a user" : "a room");
        return;
    }
    struct ws_frame *f = ws_frame_new(WS_OP_TEXT, json, len);
    if (!f)
        return;
    struct cmd *c = xcalloc(1, sizeof(*c));
    c->kind = user ? CMD_USER : CMD_ROOM;
    c->bytes = bytes;
    c->u.pub.f = f;
    c->u.pub.target = xstrndup(target, tl);
    if (user)
        read_revocation(c, json, len);
    post(h, c);
}

void ws_hub_shutdown(struct ws_hub *h, unsigned timeout_ms)
{
    if (!h || !h->started)
        return;
    atomic_store(&h->shutdown_ms, timeout_ms);
    atomic_store(&h->stopping, true);
    uint64_t one = 1;
    ssize_t w = write(h->wakefd, &one, sizeof(one));
    (void)w;
    pthread_join(h->thread, NULL);
    h->started = false;
}

void ws_hub_free(struct ws_hub *h)
{
    if (!h)
        return;
    ws_hub_shutdown(h, 0);
    /* checks still running post back; let them finish, then settle what they posted */
    workq_free(h->checks);
    pthread_mutex_lock(&h->inbox_lock);
    struct cmd *c = h->inbox_head;
    h->inbox_head = h->inbox_tail = NULL;
    pthread_mutex_unlock(&h->inbox_lock);
    while (c) {
        struct cmd *next = c->next;
        if (c->kind == CMD_ROOM_CHECKED && --c->u.checked.cl->pending == 0 &&
            c->u.checked.cl->reaped)
            free(c->u.checked.cl);
        cmd_free(c);
        c = next;
    }
    gmap_free(&h->rooms);
    gmap_free(&h->users);
    ws_frame_unref(h->ping);
    close(h->epfd);
    close(h->wakefd);
    pthread_mutex_destroy(&h->inbox_lock);
    free(h);
}

void ws_hub_stats(struct ws_hub *h, struct ws_hub_stats *out)
{
    out->connections = atomic_load(&h->nclients);
    out->rooms = atomic_load(&h->nrooms);
    out->framing = atomic_load(&h->nframing);
    out->dropped_slow = atomic_load(&h->dropped_slow);
}
