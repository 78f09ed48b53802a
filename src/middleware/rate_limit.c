/* rate_limit.c — see rate_limit.h. */
#include "lib/common.h"

#include <pthread.h>
#include <time.h>

#include "http/app.h"
#include "http/router.h"
#include "lib/config.h"
#include "middleware/rate_limit.h"

#define RL_SHARDS 16
#define RL_KEY_MAX 160

struct rl_entry {
    char key[RL_KEY_MAX];
    uint64_t window_start_ms;
    uint64_t window_end_ms;
    unsigned count;
    bool used;
};

struct rl_shard {
    pthread_mutex_t mu;
    struct rl_entry *v;
    size_t cap;
};

struct rl_store {
    struct rl_shard shards[RL_SHARDS];
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

struct rl_store *rl_store_new(size_t max_keys)
{
    struct rl_store *s = xcalloc(1, sizeof(*s));
    size_t per = max_keys / RL_SHARDS + 1;
    for (int i = 0; i < RL_SHARDS; i++) {
        pthread_mutex_init(&s->shards[i].mu, NULL);
        s->shards[i].v = xcalloc(per, sizeof(struct rl_entry));
        s->shards[i].cap = per;
    }
    return s;
}

void rl_store_free(struct rl_store *s)
{
    if (!s)
        return;
    for (int i = 0; i < RL_SHARDS; i++) {
        pthread_mutex_destroy(&s->shards[i].mu);
        free(s->shards[i].v);
    }
    free(s);
}

/*
 * Open addressing over a small fixed table. When the probe run finds neither the key nor a free
 * or expired slot, the entry whose window ends first is reused: under a flood of distinct keys
 * the store forgets the oldest counters rather than growing.
 */
static struct rl_entry *find_slot(struct rl_shard *sh, const char *key, uint64_t h, uint64_t now_ms)
{
    size_t probe = ZY_MIN(sh->cap, (size_t)32);
    struct rl_entry *free_slot = NULL, *oldest = NULL;
    for (size_t i = 0; i < probe; i++) {
        struct rl_entry *e = &sh->v[(h + i) % sh->cap];
        if (e->used && strcmp(e->key, key) == 0)
            return e;
        if (!free_slot && (!e->used || e->window_end_ms <= now_ms))
            free_slot = e;
        if (!oldest || e->window_end_ms < oldest->window_end_ms)
            oldest = e;
    }
    struct rl_entry *v = free_slot ? free_slot : oldest;
    v->used = false; /* the caller starts a new window in it */
    return v;
}

void rl_hit(struct rl_store *s, const char *key, const struct rl_policy *p, uint64_t now_ms,
            struct rl_result *out)
{
    uint64_t h = fnv1a(key);
    struct rl_shard *sh = &s->shards[h % RL_SHARDS];
    pthread_mutex_lock(&sh->mu);
    struct rl_entry *e = find_slot(sh, key, h / RL_SHARDS, now_ms);
    if (!e->used || e->window_end_ms <= now_ms) {
        snprintf(e->key, sizeof(e->key), "%s", key);
        e->used = true;
        e->count = 0;
        e->window_start_ms = now_ms;
        e->window_end_ms = now_ms + (uint64_t)p->window_s * 1000;
    }
    e->count++;
    out->limit = p->limit;
    out->allowed = e->count <= p->limit;
    out->remaining = out->allowed ? p->limit - e->count : 0;
    out->reset_s = (unsigned)((e->window_end_ms - now_ms + 999) / 1000);
    pthread_mutex_unlock(&sh->mu);
}

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void set_headers(struct ctx *c, const struct rl_result *r)
{
    char v[32];
    snprintf(v, sizeof(v), "%u", r->limit);
    ctx_set_header(c, "RateLimit-Limit", v);
    snprintf(v, sizeof(v), "%u", r->remaining);
    ctx_set_header(c, "RateLimit-Remaining", v);
    snprintf(v, sizeof(v), "%u", r->reset_s);
    ctx_set_header(c, "RateLimit-Reset", v);
}

int rate_limit_check(struct ctx *c)
{
    const struct config *cfg = app_config(c->app);
    struct rl_store *store = app_rate_limits(c->app);
    if (!cfg->rate_limit_enabled || !store)
        return 0;
    struct rl_policy general = {"ip", cfg->rate_limit_ip_per_minute, 60};
    const struct rl_policy *p = &general;
    const char *who = c->req.client_ip ? c->req.client_ip : "unknown";
    const char *kind = "ip";
    if (c->user) {
        general = (struct rl_policy){"user", cfg->rate_limit_user_per_minute, 60};
        who = c->user->id;
        kind = "user";
    }
    struct rl_result r = {0}, strict = {0};
    char key[RL_KEY_MAX];
    snprintf(key, sizeof(key), "%s:%s:%s", kind, p->name, who);
    rl_hit(store, key, p, wall_ms(), &r);
    /* a route's own, stricter budget counts per client IP (on the first pass, before
     * authentication): it guards unauthenticated flows */
    if (r.allowed && !c->user && c->route && c->route->rate_limit) {
        const struct rl_policy *rp = c->route->rate_limit;
        snprintf(key, sizeof(key), "ip:%s:%s", rp->name,
                 c->req.client_ip ? c->req.client_ip : "unknown");
        rl_hit(store, key, rp, wall_ms(), &strict);
        if (!strict.allowed || strict.remaining < r.remaining)
            r = strict;
    }
    set_headers(c, &r);
    if (r.allowed)
        return 0;
    char ra[16];
    snprintf(ra, sizeof(ra), "%u", r.reset_s);
    ctx_set_header(c, "Retry-After", ra);
    return ctx_fail_details(c, ZY_E_RATE_LIMIT, 429,
                            json_pack("{s:I}", "retryAfter", (json_int_t)r.reset_s),
                            "Too many requests");
}
