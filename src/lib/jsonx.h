/*
 * jsonx.h — small helpers over jansson used across modules.
 *
 * jansson refuses strings that are not valid UTF-8 (json_string returns NULL); request data
 * (paths, headers) can be anything, so jx_str() repairs it instead of failing.
 */
#ifndef ZYGO_JSONX_H
#define ZYGO_JSONX_H

#include <jansson.h>

#include "lib/common.h"

/* A JSON string from arbitrary bytes: invalid UTF-8 sequences become U+FFFD. Never NULL. */
json_t *jx_str(const char *s);
json_t *jx_strn(const char *s, size_t n);
/* The string member `key` of object o; NULL when o is not an object, the member is absent or
 * not a string. */
const char *jx_get_str(const json_t *o, const char *key);
/* Compact serialisation; caller frees. Never NULL. */
char *jx_dump(const json_t *v, size_t *len);
/* ISO-8601 UTC timestamp with milliseconds ("2026-11-25T17:45:49.123Z") of now. */
void zy_iso_now(char out[48]);

#endif
