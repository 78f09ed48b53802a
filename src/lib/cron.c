/* cron.c — see cron.h. */
#include "lib/common.h"

#include <ctype.h>
#include <fcntl.h>
#include <pthread.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/civil.h"
#include "lib/cron.h"

/* ---- expressions ------------------------------------------------------------------------ */

struct field_def {
    const char *name;
    int lo, hi;
    const char *const *names; /* names for lo, lo+1, ... (NULL: numbers only) */
};

static const char *const month_names[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                          "jul", "aug", "sep", "oct", "nov", "dec", NULL};
static const char *const day_names[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL};

static const struct field_def fields[5] = {
    {"minute", 0, 59, NULL},
    {"hour", 0, 23, NULL},
    {"day-of-month", 1, 31, NULL},
    {"month", 1, 12, month_names},
    {"day-of-week", 0, 7, day_names},
};

static const struct {
    const char *name;
    const char *expr;
} macros[] = {
    {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
    {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
    {"@hourly", "0 * * * *"},
};

/* A number or (where the field has names) a three-letter name at *p; advances *p. */
static bool parse_value(const struct field_def *f, const char **p, int *out)
{
    const char *s = *p;
    if (isdigit((unsigned char)*s)) {
        long v = 0;
        while (isdigit((unsigned char)*s) && v < 1000)
            v = v * 10 + (*s++ - '0');
        if (isdigit((unsigned char)*s))
            return false;
        *out = (int)v;
        *p = s;
        return true;
    }
    if (!f->names || !isalpha((unsigned char)s[0]) || !isalpha((unsigned char)s[1]) ||
        !isalpha((unsigned char)s[2]) || isalpha((unsigned char)s[3]))
        return false;
    for (int i = 0; f->names[i]; i++) {
        if (strncasecmp(s, f->names[i], 3) == 0) {
            *out = f->lo + i;
            *p = s + 3;
            return true;
        }
    }
    return false;
}

static int field_err(char *err, size_t errlen, const struct field_def *f, const char *fmt, ...)
    ZY_PRINTF(4, 5);
static int field_err(char *err, size_t errlen, const struct field_def *f, const char *fmt, ...)
{
    int w = snprintf(err, errlen, "%s: ", f->name);
    if (w < 0 || (size_t)w >= errlen)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err + w, errlen - (size_t)w, fmt, ap);
    va_end(ap);
    return -1;
}

/* One field ("1-5,*\/15,30") of length n into a bit set. */
static int parse_field(const struct field_def *f, const char *s, size_t n, uint64_t *bits,
                       char *err, size_t errlen)
{
    char text[128];
    if (n == 0 || n >= sizeof(text))
        return field_err(err, errlen, f, "%s", n ? "too long" : "empty");
    memcpy(text, s, n);
    text[n] = '\0';
    *bits = 0;
    const char *p = text;
    for (;;) {
        int a, b, step = 1;
        bool star = false;
        if (*p == '*') {
            star = true;
            a = f->lo;
            b = f->hi;
            p++;
        } else {
            if (!parse_value(f, &p, &a))
                return field_err(err, errlen, f, "expected a number%s in \"%s\"",
                                 f->names ? " or a name" : "", text);
            b = a;
            if (*p == '-') {
                p++;
                if (!parse_value(f, &p, &b))
                    return field_err(err, errlen, f, "expected the end of a range in \"%s\"",
                                     text);
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p) || !parse_value(&(struct field_def){0}, &p, &step) ||
                step < 1 || step > f->hi)
                return field_err(err, errlen, f, "expected a step from 1 to %d in \"%s\"", f->hi,
                                 text);
            if (!star && b == a) /* "5/20": from 5 to the end of the field */
                b = f->hi;
        }
        if (a < f->lo || a > f->hi || b < f->lo || b > f->hi)
            return field_err(err, errlen, f, "%d is out of %d-%d", a < f->lo || a > f->hi ? a : b,
                             f->lo, f->hi);
        if (b < a)
            return field_err(err, errlen, f, "range %d-%d is reversed", a, b);
        for (int v = a; v <= b; v += step)
            *bits |= 1ull << v;
        if (*p == '\0')
            return 0;
        if (*p != ',')
            return field_err(err, errlen, f, "unexpected '%c' in \"%s\"", *p, text);
        p++;
    }
}

static const int mdays_max[13] = {0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};

int cron_parse(const char *expr, struct cron *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof(*out));
    if (!expr)
        return snprintf(err, errlen, "empty expression"), -1;
    while (isspace((unsigned char)*expr))
        expr++;
    if (*expr == '@') {
        size_t n = strcspn(expr, " \t\n");
        const char *macro = NULL;
        for (size_t i = 0; i < ARRAY_LEN(macros); i++)
            if (strlen(macros[i].name) == n && strncasecmp(expr, macros[i].name, n) == 0)
                macro = macros[i].expr;
        if (!macro)
            return snprintf(err, errlen, "unknown macro %.*s", (int)ZY_MIN(n, 32), expr), -1;
        for (const char *q = expr + n; *q; q++)
            if (!isspace((unsigned char)*q))
                return snprintf(err, errlen, "nothing may follow %.*s", (int)n, expr), -1;
        return cron_parse(macro, out, err, errlen);
    }
    const char *start[5];
    size_t len[5];
    int nf = 0;
    for (const char *p = expr; *p;) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        if (nf == 5)
            return snprintf(err, errlen, "expected 5 fields, got more"), -1;
        start[nf] = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        len[nf] = (size_t)(p - start[nf]);
        nf++;
    }
    if (nf != 5)
        return snprintf(err, errlen, "expected 5 fields (minute hour day month weekday), got %d",
                        nf),
               -1;
    uint64_t bits[5];
    for (int i = 0; i < 5; i++)
        if (parse_field(&fields[i], start[i], len[i], &bits[i], err, errlen) < 0)
            return -1;
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->mdays = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    out->wdays = (uint8_t)((bits[4] | (bits[4] >> 7)) & 0x7f); /* 7 is Sunday too */
    out->mday_star = start[2][0] == '*';
    out->wday_star = start[4][0] == '*';
    /* A day-of-month that no chosen month has ("30 2") never fires unless the weekday field
     * (OR-ed in when both are restricted) can match instead. */
    if (out->mday_star || !out->wday_star)
        return 0;
    for (int m = 1; m <= 12; m++)
        if ((out->months >> m) & 1)
            for (int d = 1; d <= mdays_max[m]; d++)
                if ((out->mdays >> d) & 1)
                    return 0;
    return snprintf(err, errlen, "day-of-month: no chosen month has such a day"), -1;
}

/* ---- time zones -------------------------------------------------------------------------- */

/* A POSIX TZ rule ("CET-1CEST,M3.5.0,M10.5.0/3"): the footer of a TZif file. */
enum rule_kind { RULE_JULIAN1, RULE_JULIAN0, RULE_MWD };
struct tz_date {
    enum rule_kind kind;
    int n, m, w, d; /* Jn / n / Mm.w.d */
    int32_t time;   /* seconds after local midnight, may be negative or past 24h */
};
struct tz_rule {
    int32_t std_off, dst_off; /* east positive */
    bool has_dst;
    struct tz_date start, end;
};

struct cron_zone {
    char name[CRON_ZONE_NAME_MAX + 1];
    size_t ntrans;
    int64_t *trans;    /* transition instants, ascending */
    int32_t *trans_off; /* offset in effect from trans[i] */
    int32_t first_off;  /* before the first transition */
    bool has_rule;
    struct tz_rule rule; /* after the last transition */
    struct cron_zone *next;
};

static pthread_mutex_t zones_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cron_zone *zones;

const char *cron_zone_name(const struct cron_zone *z)
{
    return z->name;
}

static int64_t be64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return (int64_t)v;
}

static int32_t be32(const unsigned char *p)
{
    return (int32_t)((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]);
}

/* ---- POSIX TZ strings (RFC 8536 section 3.3, POSIX.1 TZ) ---- */

static bool tz_name(const char **p)
{
    const char *s = *p;
    if (*s == '<') {
        const char *e = strchr(s, '>');
        if (!e || e - s < 4)
            return false;
        *p = e + 1;
        return true;
    }
    int n = 0;
    while (isalpha((unsigned char)s[n]))
        n++;
    if (n < 3)
        return false;
    *p = s + n;
    return true;
}

/* [+-]hh[:mm[:ss]] into seconds; hours up to max_h. */
static bool tz_hms(const char **p, int max_h, int32_t *out)
{
    const char *s = *p;
    int sign = 1;
    if (*s == '+' || *s == '-')
        sign = *s++ == '-' ? -1 : 1;
    int part[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        if (!isdigit((unsigned char)*s))
            return false;
        int v = 0;
        for (int k = 0; k < 3 && isdigit((unsigned char)*s); k++)
            v = v * 10 + (*s++ - '0');
        part[i] = v;
        if (*s != ':' || i == 2)
            break;
        s++;
    }
    if (part[0] > max_h || part[1] > 59 || part[2] > 59)
        return false;
    *out = sign * (part[0] * 3600 + part[1] * 60 + part[2]);
    *p = s;
    return true;
}

static bool tz_int(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    if (!isdigit((unsigned char)*s))
        return false;
    int v = 0;
    while (isdigit((unsigned char)*s) && v <= hi)
        v = v * 10 + (*s++ - '0');
    if (v < lo || v > hi || isdigit((unsigned char)*s))
        return false;
    *out = v;
    *p = s;
    return true;
}

static bool tz_date_parse(const char **p, struct tz_date *d)
{
    const char *s = *p;
    if (*s == 'J') {
        s++;
        d->kind = RULE_JULIAN1;
        if (!tz_int(&s, 1, 365, &d->n))
            return false;
    } else if (*s == 'M') {
        s++;
        d->kind = RULE_MWD;
        if (!tz_int(&s, 1, 12, &d->m) || *s++ != '.' || !tz_int(&s, 1, 5, &d->w) ||
            *s++ != '.' || !tz_int(&s, 0, 6, &d->d))
            return false;
    } else {
        d->kind = RULE_JULIAN0;
        if (!tz_int(&s, 0, 365, &d->n))
            return false;
    }
    d->time = 2 * 3600;
    if (*s == '/') {
        s++;
        if (!tz_hms(&s, 167, &d->time)) /* RFC 8536 allows -167..167 hours */
            return false;
    }
    *p = s;
    return true;
}

static bool tz_rule_parse(const char *s, struct tz_rule *r)
{
    memset(r, 0, sizeof(*r));
    int32_t off;
    if (!tz_name(&s) || !tz_hms(&s, 24, &off))
        return false;
    r->std_off = -off; /* POSIX offsets are west positive */
    if (*s == '\0')
        return true;
    if (!tz_name(&s))
        return false;
    r->has_dst = true;
    r->dst_off = r->std_off + 3600;
    if (*s && *s != ',') {
        if (!tz_hms(&s, 24, &off))
            return false;
        r->dst_off = -off;
    }
    if (*s == '\0') { /* no rule given: POSIX's default, the US rule */
        r->start = (struct tz_date){RULE_MWD, 0, 3, 2, 0, 7200};
        r->end = (struct tz_date){RULE_MWD, 0, 11, 1, 0, 7200};
        return true;
    }
    if (*s++ != ',' || !tz_date_parse(&s, &r->start) || *s++ != ',' ||
        !tz_date_parse(&s, &r->end))
        return false;
    return *s == '\0';
}

static bool leap_year(int64_t y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int month_days(int64_t y, int m)
{
    return m == 2 && !leap_year(y) ? 28 : mdays_max[m];
}

/* Weekday of a day number, Sunday 0 (1970-01-01 was a Thursday). */
static int weekday(int64_t days)
{
    int w = (int)((days + 4) % 7);
    return w < 0 ? w + 7 : w;
}

/* The day number of a rule date in year y. */
static int64_t tz_date_day(const struct tz_date *d, int64_t y)
{
    int64_t jan1 = civil_days(y, 1, 1);
    switch (d->kind) {
    case RULE_JULIAN1: /* 1..365, February 29 never counted */
        return jan1 + d->n - 1 + (leap_year(y) && d->n >= 60 ? 1 : 0);
    case RULE_JULIAN0:
        return jan1 + d->n;
    case RULE_MWD:
        break;
    }
    int64_t first = civil_days(y, d->m, 1);
    int day = 1 + (d->d - weekday(first) + 7) % 7 + (d->w - 1) * 7;
    while (day > month_days(y, d->m))
        day -= 7;
    return first + day - 1;
}

static int32_t tz_rule_offset(const struct tz_rule *r, int64_t t)
{
    if (!r->has_dst)
        return r->std_off;
    int64_t y;
    int m, d;
    int64_t local = t + r->std_off;
    civil_date(local >= 0 ? local / 86400 : (local - 86399) / 86400, &y, &m, &d);
    /* the start is given in standard time, the end in daylight time */
    int64_t start = tz_date_day(&r->start, y) * 86400 + r->start.time - r->std_off;
    int64_t end = tz_date_day(&r->end, y) * 86400 + r->end.time - r->dst_off;
    bool dst = start < end ? (t >= start && t < end) : !(t >= end && t < start);
    return dst ? r->dst_off : r->std_off;
}

int32_t cron_zone_offset(const struct cron_zone *z, int64_t t)
{
    if (z->ntrans == 0 || t < z->trans[0])
        return z->ntrans == 0 && z->has_rule ? tz_rule_offset(&z->rule, t) : z->first_off;
    if (t >= z->trans[z->ntrans - 1] && z->has_rule)
        return tz_rule_offset(&z->rule, t);
    size_t lo = 0, hi = z->ntrans; /* the last transition at or before t */
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (z->trans[mid] <= t)
            lo = mid;
        else
            hi = mid;
    }
    return z->trans_off[lo];
}

/* ---- TZif files (RFC 8536) ---- */

#define TZIF_MAX (1u << 20) /* real files are under 4 KB */

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chr;
};

static void tzif_counts(const unsigned char *h, struct tzif_counts *c)
{
    c->isut = (uint32_t)be32(h + 20);
    c->isstd = (uint32_t)be32(h + 24);
    c->leap = (uint32_t)be32(h + 28);
    c->time = (uint32_t)be32(h + 32);
    c->type = (uint32_t)be32(h + 36);
    c->chr = (uint32_t)be32(h + 40);
}

static bool tzif_parse(const unsigned char *buf, size_t n, struct cron_zone *z)
{
    if (n < 44 || memcmp(buf, "TZif", 4) != 0)
        return false;
    struct tzif_counts c;
    tzif_counts(buf, &c);
    if (c.time > 100000 || c.type > 256 || c.chr > 65536 || c.leap > 100000 || c.type == 0)
        return false;
    size_t tsize = 4; /* version 1: 32-bit times */
    size_t body = (size_t)c.time * 5 + (size_t)c.type * 6 + c.chr + (size_t)c.leap * 8 +
                  c.isstd + c.isut;
    const unsigned char *p = buf + 44;
    if (buf[4] >= '2') { /* skip the v1 block: the second header has 64-bit times */
        if (44 + body + 44 > n)
            return false;
        p = buf + 44 + body;
        if (memcmp(p, "TZif", 4) != 0)
            return false;
        tzif_counts(p, &c);
        /* "right/" zones count leap seconds in their transition times: not supported */
        if (c.time > 100000 || c.type > 256 || c.chr > 65536 || c.leap > 0 || c.type == 0)
            return false;
        tsize = 8;
        body = (size_t)c.time * 9 + (size_t)c.type * 6 + c.chr + (size_t)c.leap * 12 + c.isstd +
               c.isut;
        p += 44;
    }
    if ((size_t)(p - buf) + body > n)
        return false;
    const unsigned char *times = p, *idx = p + (size_t)c.time * tsize;
    const unsigned char *types = idx + c.time;
    int32_t *offs = xcalloc(c.type, sizeof(int32_t));
    for (uint32_t i = 0; i < c.type; i++)
        offs[i] = be32(types + i * 6);
    z->ntrans = c.time;
    z->trans = xcalloc(c.time ? c.time : 1, sizeof(int64_t));
    z->trans_off = xcalloc(c.time ? c.time : 1, sizeof(int32_t));
    bool ok = true;
    for (uint32_t i = 0; i < c.time && ok; i++) {
        z->trans[i] = tsize == 8 ? be64(times + i * 8) : be32(times + i * 4);
        ok = idx[i] < c.type && (i == 0 || z->trans[i] > z->trans[i - 1]);
        if (ok)
            z->trans_off[i] = offs[idx[i]];
    }
    z->first_off = offs[0];
    free(offs);
    if (!ok)
        return false;
    const unsigned char *footer = p + body;
    if (tsize == 8 && footer < buf + n && *footer == '\n') {
        const unsigned char *end = memchr(footer + 1, '\n', (size_t)(buf + n - footer - 1));
        if (end && end > footer + 1 && end - footer < 256) {
            char tzs[256];
            memcpy(tzs, footer + 1, (size_t)(end - footer - 1));
            tzs[end - footer - 1] = '\0';
            z->has_rule = tz_rule_parse(tzs, &z->rule);
        }
    }
    return true;
}

static bool zone_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CRON_ZONE_NAME_MAX || name[0] == '/' || name[0] == '.' ||
        strstr(name, "..") || strstr(name, "//"))
        return false;
    for (const char *p = name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_-+", *p))
            return false;
    return name[n - 1] != '/';
}

static struct cron_zone *zone_load(const char *name, char *err, size_t errlen)
{
    struct cron_zone *z = xcalloc(1, sizeof(*z));
    snprintf(z->name, sizeof(z->name), "%s", name);
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    unsigned char *buf = NULL;
    ssize_t got = -1;
    struct stat st;
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
        (size_t)st.st_size <= TZIF_MAX) {
        buf = xmalloc((size_t)st.st_size);
        size_t have = 0;
        while (have < (size_t)st.st_size) {
            ssize_t r = read(fd, buf + have, (size_t)st.st_size - have);
            if (r <= 0)
                break;
            have += (size_t)r;
        }
        got = (ssize_t)have;
    }
    if (fd >= 0)
        close(fd);
    bool ok = got > 0 && tzif_parse(buf, (size_t)got, z);
    free(buf);
    if (!ok && (strcmp(name, "UTC") == 0 || strcmp(name, "Etc/UTC") == 0)) {
        free(z->trans);
        free(z->trans_off);
        z->trans = NULL;
        z->trans_off = NULL;
        z->ntrans = 0;
        z->first_off = 0;
        z->has_rule = false;
        ok = true;
    }
    if (!ok) {
        snprintf(err, errlen, "unknown time zone \"%s\"", name);
        free(z->trans);
        free(z->trans_off);
        free(z);
        return NULL;
    }
    return z;
}

const struct cron_zone *cron_zone_get(const char *name, char *err, size_t errlen)
{
    if (!name || !zone_name_ok(name)) {
        snprintf(err, errlen, "invalid time zone name");
        return NULL;
    }
    pthread_mutex_lock(&zones_mu);
    struct cron_zone *z = zones;
    while (z && strcmp(z->name, name) != 0)
        z = z->next;
    if (!z) {
        z = zone_load(name, err, errlen);
        if (z) { /* kept for the life of the process: readers hold no lock */
            z->next = zones;
            zones = z;
        }
    }
    pthread_mutex_unlock(&zones_mu);
    return z;
}

/* ---- next fire time ---------------------------------------------------------------------- */

#define SEARCH_YEARS 5

static bool day_matches(const struct cron *c, int64_t y, int m, int d)
{
    bool md = (c->mdays >> d) & 1;
    bool wd = (c->wdays >> weekday(civil_days(y, m, d))) & 1;
    if (c->mday_star || c->wday_star)
        return md && wd;
    return md || wd;
}

/* The first local wall-clock minute at or after wall (seconds, as if UTC) that matches; -1. */
static int64_t next_wall(const struct cron *c, int64_t wall, int64_t limit_year)
{
    int64_t days = wall >= 0 ? wall / 86400 : (wall - 86399) / 86400;
    int64_t secs = wall - days * 86400;
    int64_t y;
    int mo, d, h = (int)(secs / 3600), mi = (int)(secs % 3600 / 60);
    civil_date(days, &y, &mo, &d);
    for (;;) {
        if (y > limit_year)
            return -1;
        if (!((c->months >> mo) & 1) || d > month_days(y, mo)) {
            d = 1, h = 0, mi = 0;
            if (++mo > 12)
                mo = 1, y++;
            continue;
        }
        if (!day_matches(c, y, mo, d)) {
            d++, h = 0, mi = 0;
            continue;
        }
        if (!((c->hours >> h) & 1)) {
            mi = 0;
            if (++h > 23)
                h = 0, d++;
            continue;
        }
        if (!((c->minutes >> mi) & 1)) {
            if (++mi > 59) {
                mi = 0;
                if (++h > 23)
                    h = 0, d++;
            }
            continue;
        }
        return civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60;
    }
}

/* The instant in (lo, hi] where the offset stops being `before` (a transition). */
static int64_t transition_in(const struct cron_zone *z, int64_t lo, int64_t hi, int32_t before)
{
    while (hi - lo > 1) {
        int64_t mid = lo + (hi - lo) / 2;
        if (cron_zone_offset(z, mid) == before)
            lo = mid;
        else
            hi = mid;
    }
    return hi;
}

int64_t cron_next(const struct cron *c, const struct cron_zone *z, int64_t after_s)
{
    int64_t wall = after_s + cron_zone_offset(z, after_s);
    wall = (wall >= 0 ? wall / 60 : (wall - 59) / 60) * 60 + 60; /* the next whole minute */
    int64_t y;
    int m, d;
    civil_date(wall >= 0 ? wall / 86400 : (wall - 86399) / 86400, &y, &m, &d);
    int64_t limit = y + SEARCH_YEARS;
    for (;;) {
        wall = next_wall(c, wall, limit);
        if (wall == -1)
            return -1;
        /* the offsets before and after this wall time (no zone changes twice in 2.5 days) */
        int32_t oa = cron_zone_offset(z, wall - 86400 - 18 * 3600);
        int32_t ob = cron_zone_offset(z, wall + 86400);
        bool found = false;
        int64_t first = 0;
        int32_t cand[2] = {oa, ob};
        for (int i = 0; i < (oa == ob ? 1 : 2); i++) {
            int64_t u = wall - cand[i];
            if (cron_zone_offset(z, u) == cand[i] && (!found || u < first))
                first = u, found = true;
        }
        if (!found && oa != ob) {
            /* in a gap: this wall time does not exist; it fires when the clocks jump */
            int64_t lo = wall - ZY_MAX(oa, ob) - 1, hi = wall - ZY_MIN(oa, ob);
            first = transition_in(z, lo, hi, cron_zone_offset(z, lo));
            found = true;
        }
        /* a wall time fires once: at its first occurrence, so not again in a repeated hour */
        if (found && first > after_s)
            return first;
        wall += 60;
    }
}
