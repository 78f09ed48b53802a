/* log.c — JSON-lines / pretty logger; see log.h. */
#include "lib/common.h"

#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"

#define LOG_LINE_MAX 16384

static struct {
    enum log_level level;
    bool pretty;
    int fd;
    long pid;
    char hostname[128];
} logger = {LOG_INFO, false, 1, 0, ""};

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
    buf_printf(&l->json, "%lld", value);
    if (logger.pretty)
        buf_printf(&l->pretty, "%lld", value);
}

void log_num(struct log_line *l, const char *key, double value)
{
    if (!l->on)
        return;
    log_key(l, key);
    buf_printf(&l->json, "%.3f", value);
    if (logger.pretty)
        buf_printf(&l->pretty, "%.3f", value);
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

void log_end(struct log_line *l, const char *msg)
{
    if (l->on) {
        struct buf out;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        long long ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        buf_init(&out, LOG_LINE_MAX + 1024);
        if (logger.pretty) {
            struct tm tm;
            localtime_r(&ts.tv_sec, &tm);
            buf_printf(&out, "[%02d:%02d:%02d.%03lld] %s\x1b[0m: %s%s\n", tm.tm_hour, tm.tm_min,
                       tm.tm_sec, ms % 1000, level_label(l->level), msg, buf_cstr(&l->pretty));
        } else {
            buf_printf(&out, "{\"level\":%d,\"time\":%lld,\"pid\":%ld,\"hostname\":", l->level, ms,
                       logger.pid);
            buf_json_str(&out, logger.hostname, strlen(logger.hostname));
            buf_append(&out, l->json.data ? l->json.data : "", l->json.len);
            buf_puts(&out, ",\"msg\":");
            buf_json_str(&out, msg, strlen(msg));
            buf_puts(&out, "}\n");
        }
        if (!out.overflow)
            write_all(logger.fd, out.data, out.len);
        buf_free(&out);
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
