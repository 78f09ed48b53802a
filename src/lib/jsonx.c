/* jsonx.c — jansson helpers; see jsonx.h. */
#include "lib/jsonx.h"

#include <time.h>

#include "lib/buf.h"
#include "lib/utf8.h"

json_t *jx_strn(const char *s, size_t n)
{
    if (utf8_valid(s, n, NULL))
        return json_stringn_nocheck(s, n);
    /* Re-encode through the JSON escaper, which replaces bad bytes, then decode. */
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    buf_json_str(&b, s, n);
    json_t *v = json_loadb(b.data, b.len, JSON_DECODE_ANY, NULL);
    buf_free(&b);
    return v ? v : json_string("");
}

json_t *jx_str(const char *s)
{
    return jx_strn(s ? s : "", s ? strlen(s) : 0);
}

const char *jx_get_str(const json_t *o, const char *key)
{
    return json_string_value(json_object_get(o, key));
}

char *jx_dump(const json_t *v, size_t *len)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(15));
    if (!s)
        zy_oom(0);
    if (len)
        *len = strlen(s);
    return s;
}

void zy_iso_now(char out[48])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, 48, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}
