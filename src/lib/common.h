/*
 * common.h — included first by every zygo source file.
 *
 * Owns: the libc headers everyone needs, the allocation wrappers and their single
 * out-of-memory policy (print and abort, as Redis and h2o do), and a few small macros.
 * Banned libc functions (strcpy, sprintf, strcat, atoi, gets) are checked by
 * scripts/check-source.sh, run by `make test`.
 */
#ifndef ZYGO_COMMON_H
#define ZYGO_COMMON_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef ZYGO_VERSION
#define ZYGO_VERSION "0.0.0"
#endif

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define ZY_MIN(a, b) ((a) < (b) ? (a) : (b))
#define ZY_MAX(a, b) ((a) > (b) ? (a) : (b))
#define ZY_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define ZY_NORETURN __attribute__((noreturn))

/* A name/value pair (headers, query and path parameters). */
struct kv {
    const char *name;
    const char *value;
};

/* Allocation never returns NULL: on exhaustion the process prints and aborts. */
void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
ZY_NORETURN void zy_oom(size_t n);

/* Case-insensitive ASCII comparison of a NUL-terminated string with a length-delimited one. */
bool zy_strieq(const char *a, const char *b);

/* Value of a hexadecimal digit, or -1. */
int zy_hexval(int c);

/* Constant-time equality of two byte strings of the same length. */
bool zy_ct_equal(const void *a, const void *b, size_t n);

#endif
