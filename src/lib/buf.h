/*
 * buf.h — growable byte buffers with a hard cap (curl's dynbuf).
 *
 * Owns: its data block, until buf_free() or buf_detach(). Every append past `max` fails with
 * -1 and marks the buffer as overflowed instead of growing without bound.
 * Also the JSON string escaper used by the logger and the hand-written JSON fast paths.
 */
#ifndef ZYGO_BUF_H
#define ZYGO_BUF_H

#include "lib/common.h"

struct buf {
    char *data; /* NUL-terminated whenever len > 0 or after buf_cstr() */
    size_t len;
    size_t cap;
    size_t max;    /* hard cap on len */
    bool overflow; /* an append was refused */
};

void buf_init(struct buf *b, size_t max);
void buf_free(struct buf *b);
void buf_reset(struct buf *b);
int buf_append(struct buf *b, const void *data, size_t n);
int buf_puts(struct buf *b, const char *s);
int buf_putc(struct buf *b, char c);
int buf_printf(struct buf *b, const char *fmt, ...) ZY_PRINTF(2, 3);
/* Always returns a NUL-terminated string ("" for an empty buffer). */
const char *buf_cstr(struct buf *b);
/* Hands the data to the caller (free() it); the buffer is left empty. */
char *buf_detach(struct buf *b, size_t *len);

/* Appends s[0..n) as a quoted JSON string; control characters and non-UTF-8 bytes are escaped
 * (invalid bytes become U+FFFD) so the output is always valid JSON. */
int buf_json_str(struct buf *b, const char *s, size_t n);

#endif
