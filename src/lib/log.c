/* log.c — JSON-lines / pretty logger; see log.h. */
#include "lib/common.h"

#include <strings.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define LOG_LINE_MAX 16384
/* before log_init() */
#define FIXED_UNSET ",\"pid\":0,\"hostname\":\"\""

static struct {
    enum log_level level;
    bool pretty;
    int fd;
    long pid;
    char hostname[128];
    /* ,"pid":N,"hostname":"…" — the same on every line, written once */
    char fixed[320];
    size_t fixed_len;
} logger = {LOG_INFO, false, 1, 0, "", FIXED_UNSET, sizeof(FIXED_UNSET) - 1};

static const struct {
    const char *name;
    enum log_level level;
    const char *label; /* pretty mode: colour + upper-case name, as pino-pretty prints it */
} levels[] = {
    {"trace", LOG_TRACE, "\x1b[90mTRACE"},
    {"debug", LOG_DEBUG, "\x1b[36mDEBUG"},
    {"info", LOG_INFO, "\x1b[32mINFO"},
    {"warn", LOG_WARN, "\x1b[33mWARN"},
    {"error", LOG_ERROR, "\x1b[31mERROR"},
    {"fatal", LOG_FATAL, "\x1b[35mFATAL"},
    {"silent", LOG_SILENT, ""},
};

int log_level_parse(const char *s, enum log_level *out)
{
    for (size_t i = 0; i < ARRAY_LEN(levels); i++) {
        if (strcasecmp(s, levels[i].name) == 0) {
            *out = levels[i].level;
            return 0;
        }
    }
    return -1;
}

void log_init(enum log_level level, bool pretty, int fd)
{
    logger.level = level;
    logger.pretty = pretty;
    logger.fd = fd;
    logger.pid = (long)getpid();
    if (gethostname(logger.hostname, sizeof(logger.hostname) - 1) != 0)
        logger.hostname[0] = '\0';
    struct buf b;
    buf_init(&b, sizeof(logger.fixed) - 1);
    buf_printf(&b, ",\"pid\":%ld,\"hostname\":", logger.pid);
    buf_json_str(&b, logger.hostname, strlen(logger.hostname));
    logger.fixed_len = b.overflow ? 0 : b.len;
    memcpy(logger.fixed, b.overflow ? "" : buf_cstr(&b), logger.fixed_len + 1);
    buf_free(&b);
}

/* Decimal digits of v into the end of buf[0..n); returns where they start. The log's numbers
 * are formatted by hand: printf was a visible share of a request's cost. */
static char *fmt_u64(char *buf, size_t n, unsigned long long v)
{
    char *p = buf + n;
    do {
        *--p = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p;
}

static size_t fmt_int(char out[24], long long v)
{
    char tmp[24];
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    char *p = fmt_u64(tmp, sizeof(tmp), u);
    size_t k = 0;
    if (v < 0)
        out[k++] = '-';
    size_t len = (size_t)(tmp + sizeof(tmp) - p);
    memcpy(out + k, p, len);
    return k + len;
}

bool log_enabled(enum log_level level)
{
    return level >= logger.level && logger.level != LOG_SILENT;
}

void log_begin(struct log_line *l, enum log_level level)
{
    l->level = level;
    l->on = log_enabled(level);
    buf_init(&l->json, LOG_LINE_MAX);
    buf_init(&l->pretty, LOG_LINE_MAX);
}

static void log_key(struct log_line *l, const char *key)
{
    buf_putc(&l->json, ',');
    buf_json_str(&l->json, key, strlen(key));
    buf_putc(&l->json, ':');
    if (logger.pretty)
        buf_printf(&l->pretty, " \x1b[90m%s=\x1b[0m", key);
}

void log_str(struct log_line *l, const char *key, const char *value)
{
    if (!l->on)
        return;
    log_key(l, key);
    value = value ? value : "";
    buf_json_str(&l->json, value, strlen(value));
    if (logger.pretty)
        buf_puts(&l->pretty, value);
}

void log_int(struct log_line *l, const char *key, long long value)
{
    if (!l->on)
        return;
    log_key(l, key);
    char d[24];
    size_t n = fmt_int(d, value);
    buf_append(&l->json, d, n);
    if (logger.pretty)
        buf_append(&l->pretty, d, n);
}

void log_num(struct log_line *l, const char *key, double value)
{
    if (!l->on)
        return;
    log_key(l, key);
    char d[48];
    size_t n;
    if (value > -1e15 && value < 1e15) {
        /* "%.3f" by hand: thousandths rounded half away from zero, as printf does here */
        long long m = (long long)(value * 1000.0 + (value < 0 ? -0.5 : 0.5));
        unsigned long long u = m < 0 ? 0ULL - (unsigned long long)m : (unsigned long long)m;
        n = 0;
        if (m < 0)
            d[n++] = '-';
        char ip[24];
        char *p = fmt_u64(ip, sizeof(ip), u / 1000);
        memcpy(d + n, p, (size_t)(ip + sizeof(ip) - p));
        n += (size_t)(ip + sizeof(ip) - p);
        d[n++] = '.';
        d[n++] = (char)('0' + u % 1000 / 100);
        d[n++] = (char)('0' + u % 100 / 10);
        d[n++] = (char)('0' + u % 10);
    } else {
        int w = snprintf(d, sizeof(d), "%.3f", value);
        n = w > 0 ? ZY_MIN((size_t)w, sizeof(d) - 1) : 0;
    }
    buf_append(&l->json, d, n);
    if (logger.pretty)
        buf_append(&l->pretty, d, n);
}

static const char *level_label(enum log_level lv)
{
    for (size_t i = 0; i < ARRAY_LEN(levels); i++)
        if (levels[i].level == lv)
            return levels[i].label;
    return "INFO";
}

static void write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return; /* nowhere to report a failing log write */
        p += w;
        n -= (size_t)w;
    }
}

/* The JSON line: {"level":L,"time":T + the fixed part, then the fields, msg and the end
 * appended to l->json; one writev. */
static void end_json(struct log_line *l, long long ms, const char *msg)
{
    char head[96];
    size_t k = 0;
    memcpy(head, "{\"level\":", 9);
    k = 9;
    k += fmt_int(head + k, l->level);
    memcpy(head + k, ",\"time\":", 8);
    k += 8;
    k += fmt_int(head + k, ms);
    buf_puts(&l->json, ",\"msg\":");
    buf_json_str(&l->json, msg, strlen(msg));
    buf_append(&l->json, "}\n", 2);
    if (l->json.overflow)
        return;
    struct iovec v[3] = {{head, k}, {logger.fixed, logger.fixed_len}, {l->json.data, l->json.len}};
    size_t total = k + logger.fixed_len + l->json.len;
    ssize_t w;
    do
        w = writev(logger.fd, v, 3);
    while (w < 0 && errno == EINTR);
    if (w >= 0 && (size_t)w < total) {
        /* a short write (a pipe nearly full): the rest goes the slow way */
        struct buf rest;
        buf_init(&rest, total);
        for (int i = 0; i < 3; i++)
            buf_append(&rest, v[i].iov_base, v[i].iov_len);
        if (!rest.overflow)
            write_all(logger.fd, rest.data + w, rest.len - (size_t)w);
        buf_free(&rest);
    }
}

void log_end(struct log_line *l, const char *msg)
{
    if (l->on) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        if (!logger.pretty) {
            end_json(l, ms, msg);
        } else {
            struct buf out;
            buf_init(&out, LOG_LINE_MAX + 1024);
            struct tm tm;
            localtime_r(&ts.tv_sec, &tm);
            buf_printf(&out, "[%02d:%02d:%02d.%03lld] %s\x1b[0m: %s%s\n", tm.tm_hour, tm.tm_min,
                       tm.tm_sec, ms % 1000, level_label(l->level), msg, buf_cstr(&l->pretty));
            if (!out.overflow)
                write_all(logger.fd, out.data, out.len);
            buf_free(&out);
        }
    }
    buf_free(&l->json);
    buf_free(&l->pretty);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    if (!log_enabled(level))
        return;
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct log_line l;
    log_begin(&l, level);
    log_end(&l, msg);
}
