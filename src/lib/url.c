/* url.c — see url.h. */
#include "lib/common.h"

#include "lib/url.h"

size_t url_decode(char *s, bool plus_space)
{
    char *w = s;
    for (char *r = s; *r; r++) {
        if (*r == '%' && zy_hexval(r[1]) >= 0 && zy_hexval(r[2]) >= 0) {
            *w++ = (char)(zy_hexval(r[1]) << 4 | zy_hexval(r[2]));
            r += 2;
        } else if (*r == '+' && plus_space) {
            *w++ = ' ';
        } else {
            *w++ = *r;
        }
    }
    *w = '\0';
    return (size_t)(w - s);
}

size_t url_parse_query(struct arena *a, const char *q, struct kv **out, size_t *n, size_t max)
{
    size_t total = 0;
    *out = NULL;
    *n = 0;
    if (!q || !*q)
        return 0;
    size_t cap = 1;
    for (const char *p = q; *p; p++)
        cap += *p == '&';
    cap = ZY_MIN(cap, max);
    *out = arena_alloc(a, (cap ? cap : 1) * sizeof(**out));
    const char *p = q;
    while (*p) {
        const char *amp = strchr(p, '&');
        size_t len = amp ? (size_t)(amp - p) : strlen(p);
        if (len) {
            total++;
            if (*n < cap) {
                char *pair = arena_strndup(a, p, len);
                char *eq = strchr(pair, '=');
                const char *val = "";
                if (eq) {
                    *eq = '\0';
                    val = eq + 1;
                }
                url_decode(pair, true);
                char *v = arena_strdup(a, val);
                url_decode(v, true);
                (*out)[*n].name = pair;
                (*out)[*n].value = v;
                (*n)++;
            }
        }
        if (!amp)
            break;
        p = amp + 1;
    }
    return total;
}
