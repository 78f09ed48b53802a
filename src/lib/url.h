/* url.h — percent-decoding and query-string parsing (application/x-www-form-urlencoded). */
#ifndef ZYGO_URL_H
#define ZYGO_URL_H

#include "lib/arena.h"

/* Decodes %XX (and '+' as space when plus_space) in place; returns the new length. Malformed
 * escapes are kept as they are. */
size_t url_decode(char *s, bool plus_space);

/* Parses "a=1&b=x%20y&a=2" into decoded pairs allocated from the arena, in order. At most
 * `max` pairs are kept (bounded); returns how many there were in total. */
size_t url_parse_query(struct arena *a, const char *q, struct kv **out, size_t *n, size_t max);

#endif
