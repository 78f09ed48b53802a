/*
 * cron.h — five-field cron schedules evaluated in an IANA time zone: when does a schedule fire
 * next after a given instant.
 *
 * Owns the parsed expression (struct cron, plain data) and the process-wide cache of time
 * zones read from the TZif files of the system's tz database (TZDIR, default
 * /usr/share/zoneinfo; Debian package tzdata). glibc has no per-call time-zone API and
 * setenv("TZ") is not thread-safe, so the zone files are read here: the transition table
 * (64-bit section of TZif v2+) and, past its last transition, the POSIX TZ rule of the footer.
 * A loaded zone is immutable and lives until the process ends; lookups are thread-safe.
 *
 * Expressions: "minute hour day-of-month month day-of-week" with *, lists (1,15), ranges
 * (1-5), steps (*\/15, 0-30/10, 5/20 = from 5 to the field's end), month names JAN–DEC and
 * day names SUN–SAT (case-insensitive), day-of-week 0–7 (0 and 7 are Sunday), and the macros
 * @yearly @annually @monthly @weekly @daily @midnight @hourly. As in Vixie cron, when both
 * day fields are restricted (neither starts with '*') a day matches if either matches.
 * An expression that can never fire (0 0 30 2 *) is refused by cron_parse.
 *
 * Daylight-saving time: a schedule names local wall-clock times, and each matching wall-clock
 * time fires once. A time skipped by a spring-forward gap fires at the end of the gap (the
 * instant the clocks jump); a time that occurs twice in a fall-back overlap fires at its first
 * occurrence only.
 */
#ifndef ZYGO_CRON_H
#define ZYGO_CRON_H

#include "lib/common.h"

struct cron {
    uint64_t minutes; /* bit m: minute m (0–59) */
    uint32_t hours;   /* bit h: 0–23 */
    uint32_t mdays;   /* bit d: 1–31 */
    uint16_t months;  /* bit m: 1–12 */
    uint8_t wdays;    /* bit d: 0–6, Sunday 0 */
    bool mday_star;   /* the day-of-month field started with '*' */
    bool wday_star;   /* the day-of-week field started with '*' */
};

/* Parses expr into *out. 0, or -1 with a human reason in err ("minute: 61 is out of 0-59"). */
int cron_parse(const char *expr, struct cron *out, char *err, size_t errlen);

struct cron_zone;

/* Longest zone name accepted ("America/Argentina/ComodRivadavia" is 32). */
#define CRON_ZONE_NAME_MAX 64

/*
 * The zone named name ("Europe/Berlin", "UTC"), loaded on first use and cached for the
 * process; NULL with a reason in err when the name is malformed (only letters, digits, '/',
 * '_', '-', '+'; no "..", no leading '/') or no valid zone file has that name. "UTC" works
 * without the tz database.
 */
const struct cron_zone *cron_zone_get(const char *name, char *err, size_t errlen);
/* The zone's name as given to cron_zone_get. */
const char *cron_zone_name(const struct cron_zone *z);
/* Offset from UTC in seconds (east positive) in effect at the instant utc_s. */
int32_t cron_zone_offset(const struct cron_zone *z, int64_t utc_s);

/*
 * The first instant (seconds since the epoch, UTC, a whole local minute) strictly after
 * after_s at which the schedule fires in zone z; -1 when it does not fire within the next
 * five years (which cron_parse makes impossible for an expression it accepted, short of a
 * time zone that skips the matching times throughout).
 */
int64_t cron_next(const struct cron *c, const struct cron_zone *z, int64_t after_s);

#endif
