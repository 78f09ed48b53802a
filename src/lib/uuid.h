/*
 * uuid.h — UUIDv7 identifiers (RFC 9562) and validation of UUID text.
 *
 * Owns the process-wide generator state: the last timestamp and the 12-bit sub-millisecond
 * counter that make ids from this process strictly increasing (so they sort by creation and
 * index well), shared by all threads under a lock.
 */
#ifndef ZYGO_UUID_H
#define ZYGO_UUID_H

#include "lib/common.h"

#define UUID_STRLEN 36 /* without the NUL */

/* A new UUIDv7 as lowercase canonical text (8-4-4-4-12), NUL-terminated. */
void uuid_v7(char out[UUID_STRLEN + 1]);

/* Canonical 8-4-4-4-12 hex text, any version, either case. NULL is not valid. */
bool uuid_valid(const char *s);

/*
 * Validates s and writes its lowercase form: ids are stored lowercase, and a TEXT comparison
 * on SQLite is case-sensitive where PostgreSQL's uuid type is not. false if s is not valid.
 */
bool uuid_normalize(const char *s, char out[UUID_STRLEN + 1]);

/* The Unix millisecond timestamp in a UUIDv7's first 48 bits (0 if s is not valid). */
uint64_t uuid_v7_time_ms(const char *s);

#endif
