/*
 * arena.h — per-request memory arenas with cleanup hooks (nginx pools, h2o mem pools).
 *
 * Owns every allocation made for one request: strings, parsed headers, JSON trees (through
 * cleanup hooks), database connections handed back on free. arena_free() runs the hooks in
 * reverse order of registration, then releases the memory.
 *
 * Built with ZYGO_ARENA_DEBUG (the sanitizer build), every allocation is its own malloc so
 * AddressSanitizer sees each overflow and use-after-free.
 */
#ifndef ZYGO_ARENA_H
#define ZYGO_ARENA_H

#include "lib/common.h"

struct arena;

struct arena *arena_new(void);
void arena_free(struct arena *a);

/* Zeroed memory aligned for any type, valid until arena_free(). */
void *arena_alloc(struct arena *a, size_t n);
char *arena_strdup(struct arena *a, const char *s);
char *arena_strndup(struct arena *a, const char *s, size_t n);
char *arena_printf(struct arena *a, const char *fmt, ...) ZY_PRINTF(2, 3);

/* Run fn(arg) when the arena is freed (last registered runs first). */
void arena_on_free(struct arena *a, void (*fn)(void *), void *arg);

/* Bytes handed out so far (for tests and accounting). */
size_t arena_used(const struct arena *a);

#endif
