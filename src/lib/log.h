/*
 * log.h — the process logger: pino-compatible JSON lines ({"level":30,"time":…,"pid":…,
 * "hostname":…,"msg":…} plus fields), or pretty coloured lines for a developer's terminal.
 *
 * Owns the output descriptor and level set by log_init(). One write(2) per line, so lines from
 * several threads never interleave. Never give it secrets: callers log ids, not tokens.
 */
#ifndef ZYGO_LOG_H
#define ZYGO_LOG_H

#include "lib/buf.h"
#include "lib/common.h"

enum log_level {
    LOG_TRACE = 10,
    LOG_DEBUG = 20,
    LOG_INFO = 30,
    LOG_WARN = 40,
    LOG_ERROR = 50,
    LOG_FATAL = 60,
    LOG_SILENT = 100,
};

/* "info" → LOG_INFO; returns -1 for an unknown name. */
int log_level_parse(const char *s, enum log_level *out);

void log_init(enum log_level level, bool pretty, int fd);
bool log_enabled(enum log_level level);

/* One structured line: log_begin, any number of log_str/log_int/log_num, then log_end. */
struct log_line {
    enum log_level level;
    bool on;
    struct buf json;   /* JSON fields after the fixed prefix */
    struct buf pretty; /* " key=value" pairs for pretty mode */
};

void log_begin(struct log_line *l, enum log_level level);
void log_str(struct log_line *l, const char *key, const char *value);
void log_int(struct log_line *l, const char *key, long long value);
void log_num(struct log_line *l, const char *key, double value);
void log_end(struct log_line *l, const char *msg);

/* A line with just a message. */
void log_msg(enum log_level level, const char *fmt, ...) ZY_PRINTF(2, 3);

#endif
