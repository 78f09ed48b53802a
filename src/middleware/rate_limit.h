/*
 * rate_limit.h — the rate-limit phase ("rate limiting on all endpoints") and its counter store.
 *
 * Every request counts against a budget: per client IP before authentication, per user after
 * it, and per route class where a route asks for a stricter one (sign-in, sign-up, password
 * reset, MFA, refresh). Over budget → 429 RATE_LIMIT_EXCEEDED with details.retryAfter,
 * Retry-After, and RateLimit-Limit/Remaining/Reset on every limited response.
 *
 * The store is in-process (fixed windows in a bounded, sharded hash table); struct rl_store is
 * the seam where a shared Redis store plugs in for several nodes.
 */
#ifndef ZYGO_MW_RATE_LIMIT_H
#define ZYGO_MW_RATE_LIMIT_H

#include "http/ctx.h"

struct rl_policy {
    const char *name; /* part of the counter key: "default", "auth", … */
    unsigned limit;   /* requests per window */
    unsigned window_s;
};

struct rl_result {
    bool allowed;
    unsigned limit;
    unsigned remaining;
    unsigned reset_s; /* seconds until the window resets */
};

struct rl_store;

/* At most max_keys counters are kept; expired ones are reused first. */
struct rl_store *rl_store_new(size_t max_keys);
void rl_store_free(struct rl_store *s);
/* Counts one hit on key under p at now_ms. */
void rl_hit(struct rl_store *s, const char *key, const struct rl_policy *p, uint64_t now_ms,
            struct rl_result *out);

/* The phase: 0 to go on, -1 after answering 429. Uses the app's store and config. */
int rate_limit_check(struct ctx *c);

#endif
