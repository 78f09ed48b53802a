/*
 * utf8.h — UTF-8 checks shared by the JSON escaper, request validation and schemas.
 * Strict RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF.
 */
#ifndef ZYGO_UTF8_H
#define ZYGO_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid sequence starting at s (at most n bytes available), 0 if invalid. */
size_t utf8_seq_len(const unsigned char *s, size_t n);
/* True when s[0..n) is valid UTF-8; otherwise *bad (if given) is the first invalid offset. */
bool utf8_valid(const char *s, size_t n, size_t *bad);
/* Number of code points in valid UTF-8 text. */
size_t utf8_count(const char *s, size_t n);

#endif
