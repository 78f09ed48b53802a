/* Cron expressions and time zones: parsing and its errors, next fire times in UTC and in zones
 * with daylight-saving time (the gap and the overlap), the TZif reader checked against glibc's
 * own conversion, and rules past the zone file's last transition. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <time.h>

#include "lib/civil.h"
#include "lib/cron.h"

TestSuite(cron, .timeout = 60);

/* Seconds since the epoch of a UTC date-time. */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
    return civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60;
}

static struct cron parse_ok(const char *expr)
{
    struct cron c;
    char err[128] = "";
    cr_assert_eq(cron_parse(expr, &c, err, sizeof(err)), 0, "%s: %s", expr, err);
    return c;
}

static const struct cron_zone *zone(const char *name)
{
    char err[128] = "";
    const struct cron_zone *z = cron_zone_get(name, err, sizeof(err));
    cr_assert_not_null(z, "%s: %s", name, err);
    return z;
}

static int64_t next(const char *expr, const char *tz, int64_t after)
{
    struct cron c = parse_ok(expr);
    return cron_next(&c, zone(tz), after);
}

Test(cron, fields_lists_ranges_steps_and_names)
{
    struct cron c = parse_ok("*/15 9-17 * JAN,jul mon-FRI");
    cr_assert_eq(c.minutes, (1ull << 0) | (1ull << 15) | (1ull << 30) | (1ull << 45));
    cr_assert_eq(c.hours, 0x3fe00u); /* 9..17 */
    cr_assert_eq(c.months, (1u << 1) | (1u << 7));
    cr_assert_eq(c.wdays, 0x3eu); /* Monday..Friday */
    cr_assert(c.mday_star && !c.wday_star);
    c = parse_ok("5/20 0 1,15 * 7");
    cr_assert_eq(c.minutes, (1ull << 5) | (1ull << 25) | (1ull << 45));
    cr_assert_eq(c.wdays, 1u, "7 is Sunday");
    c = parse_ok("0-30/10 0 * * 5-7");
    cr_assert_eq(c.minutes, (1ull << 0) | (1ull << 10) | (1ull << 20) | (1ull << 30));
    cr_assert_eq(c.wdays, (1u << 5) | (1u << 6) | 1u);
    c = parse_ok("  @Daily ");
    cr_assert_eq(c.minutes, 1ull);
    cr_assert_eq(c.hours, 1u);
}

Test(cron, refuses_malformed_expressions_with_a_reason)
{
    static const struct {
        const char *expr, *reason;
    } bad[] = {
        {"", "expected 5 fields"},
        {"* * * *", "expected 5 fields"},
        {"* * * * * *", "got more"},
        {"60 * * * *", "minute: 60 is out of 0-59"},
        {"* 24 * * *", "hour: 24 is out of 0-23"},
        {"* * 0 * *", "day-of-month: 0 is out of 1-31"},
        {"* * * 13 *", "month: 13 is out of 1-12"},
        {"* * * * 8", "day-of-week: 8 is out of 0-7"},
        {"5-3 * * * *", "reversed"},
        {"*/0 * * * *", "step"},
        {"*/ * * * *", "step"},
        {"1,,2 * * * *", "expected a number"},
        {"a * * * *", "expected a number"},
        {"* * * foo *", "or a name"},
        {"* * * * sun-", "end of a range"},
        {"1x * * * *", "unexpected 'x'"},
        {"99999999999 * * * *", "expected a number"},
        {"0 0 30 2 *", "no chosen month"},
        {"0 0 31 4,6,9,11 *", "no chosen month"},
        {"@every 5m", "unknown macro"},
        {"@daily 5", "nothing may follow"},
    };
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        struct cron c;
        char err[128] = "";
        cr_assert_eq(cron_parse(bad[i].expr, &c, err, sizeof(err)), -1, "\"%s\" was accepted",
                     bad[i].expr);
        cr_assert(strstr(err, bad[i].reason), "\"%s\": \"%s\" lacks \"%s\"", bad[i].expr, err,
                  bad[i].reason);
    }
    /* a restricted weekday makes "February 30" reachable (either day field matches) */
    parse_ok("0 0 30 2 1");
    struct cron c;
    char err[16];
    cr_assert_eq(cron_parse(NULL, &c, err, sizeof(err)), -1);
}

Test(cron, next_fire_in_utc)
{
    int64_t t = utc(2024, 1, 1, 0, 0);
    cr_assert_eq(next("* * * * *", "UTC", t), t + 60, "strictly after");
    cr_assert_eq(next("* * * * *", "UTC", t + 59), t + 60);
    cr_assert_eq(next("*/15 * * * *", "UTC", utc(2024, 1, 1, 10, 7)), utc(2024, 1, 1, 10, 15));
    cr_assert_eq(next("0 9 * * mon-fri", "UTC", utc(2024, 1, 5, 9, 0)), /* a Friday */
                 utc(2024, 1, 8, 9, 0));
    cr_assert_eq(next("0 0 29 2 *", "UTC", utc(2024, 3, 1, 0, 0)), utc(2028, 2, 29, 0, 0));
    cr_assert_eq(next("0 0 31 * *", "UTC", utc(2024, 4, 1, 0, 0)), utc(2024, 5, 31, 0, 0));
    cr_assert_eq(next("@yearly", "UTC", utc(2024, 6, 1, 0, 0)), utc(2025, 1, 1, 0, 0));
    /* both day fields restricted: either matches (the 13th, or a Friday) */
    cr_assert_eq(next("0 0 13 * 5", "UTC", utc(2024, 9, 1, 0, 0)), utc(2024, 9, 6, 0, 0));
    cr_assert_eq(next("0 0 13 * 5", "UTC", utc(2024, 9, 12, 0, 0)), utc(2024, 9, 13, 0, 0));
    /* a day field starting with '*' counts as unrestricted: both must hold (a Friday among
     * the 1st, 14th and 27th) */
    cr_assert_eq(next("0 0 */13 * 5", "UTC", utc(2024, 9, 1, 0, 0)), utc(2024, 9, 27, 0, 0));
    /* February only: its Mondays or the 29th */
    cr_assert_eq(next("0 0 29 2 1", "UTC", utc(2024, 3, 1, 0, 0)), utc(2025, 2, 3, 0, 0));
}

Test(cron, next_fire_in_a_zone_with_dst)
{
    /* New York: EST (UTC-5), EDT (UTC-4) from 2024-03-10 02:00 to 2024-11-03 02:00 local */
    cr_assert_eq(next("0 9 * * *", "America/New_York", utc(2024, 1, 15, 0, 0)),
                 utc(2024, 1, 15, 14, 0));
    cr_assert_eq(next("0 9 * * *", "America/New_York", utc(2024, 7, 15, 0, 0)),
                 utc(2024, 7, 15, 13, 0));
    /* spring forward: 02:30 does not exist on 2024-03-10; it fires when the clocks jump
     * (03:00 EDT = 07:00 UTC), and on the next day at 02:30 EDT again */
    int64_t gap = next("30 2 * * *", "America/New_York", utc(2024, 3, 10, 0, 0));
    cr_assert_eq(gap, utc(2024, 3, 10, 7, 0));
    cr_assert_eq(next("30 2 * * *", "America/New_York", gap), utc(2024, 3, 11, 6, 30));
    /* every 15 minutes across the gap: 01:45 EST, then 03:00 EDT once (02:00-02:45 collapse) */
    int64_t t = next("*/15 * * * *", "America/New_York", utc(2024, 3, 10, 6, 30));
    cr_assert_eq(t, utc(2024, 3, 10, 6, 45));
    t = next("*/15 * * * *", "America/New_York", t);
    cr_assert_eq(t, utc(2024, 3, 10, 7, 0));
    t = next("*/15 * * * *", "America/New_York", t);
    cr_assert_eq(t, utc(2024, 3, 10, 7, 15));
    /* fall back: 01:30 happens twice on 2024-11-03 (EDT 05:30 UTC, EST 06:30 UTC); it fires
     * at the first only */
    t = next("30 1 * * *", "America/New_York", utc(2024, 11, 3, 0, 0));
    cr_assert_eq(t, utc(2024, 11, 3, 5, 30));
    cr_assert_eq(next("30 1 * * *", "America/New_York", t), utc(2024, 11, 4, 6, 30));
    /* Berlin: CET/CEST, the change at 02:00/03:00 local on the last Sunday of March */
    cr_assert_eq(next("0 12 * * *", "Europe/Berlin", utc(2024, 3, 30, 12, 0)),
                 utc(2024, 3, 31, 10, 0));
    cr_assert_eq(next("0 12 * * *", "Europe/Berlin", utc(2024, 3, 29, 12, 0)),
                 utc(2024, 3, 30, 11, 0));
    /* Sydney: daylight time across the new year (southern hemisphere) */
    cr_assert_eq(next("0 0 1 1 *", "Australia/Sydney", utc(2024, 6, 1, 0, 0)),
                 utc(2024, 12, 31, 13, 0));
    cr_assert_eq(next("0 0 1 7 *", "Australia/Sydney", utc(2024, 6, 1, 0, 0)),
                 utc(2024, 6, 30, 14, 0));
    /* a half-hour zone without DST */
    cr_assert_eq(next("0 0 * * *", "Asia/Kolkata", utc(2024, 1, 1, 0, 0)),
                 utc(2024, 1, 1, 18, 30));
}

Test(cron, rules_past_the_last_transition)
{
    /* far beyond any file's transition table: the footer's POSIX rule decides */
    cr_assert_eq(next("0 12 1 7 *", "America/New_York", utc(2100, 1, 1, 0, 0)),
                 utc(2100, 7, 1, 16, 0));
    cr_assert_eq(next("0 12 1 1 *", "America/New_York", utc(2099, 12, 1, 0, 0)),
                 utc(2100, 1, 1, 17, 0));
    cr_assert_eq(next("0 12 1 1 *", "Australia/Sydney", utc(2099, 12, 1, 0, 0)),
                 utc(2100, 1, 1, 1, 0));
    /* the spring-forward gap in 2101 (second Sunday of March: March 13) */
    cr_assert_eq(next("30 2 * * *", "America/New_York", utc(2101, 3, 13, 0, 0)),
                 utc(2101, 3, 13, 7, 0));
}

/* The reader against glibc's own (TZ set in this test process only). */
static void compare_with_libc(const char *name)
{
    const struct cron_zone *z = zone(name);
    setenv("TZ", name, 1);
    tzset();
    int checked = 0;
    /* every 7 hours 13 minutes from 1971 to 2090: hits both sides of every transition */
    for (int64_t t = utc(1971, 1, 1, 0, 0); t < utc(2090, 1, 1, 0, 0); t += 7 * 3600 + 13 * 60) {
        time_t tt = (time_t)t;
        struct tm tm;
        cr_assert_not_null(localtime_r(&tt, &tm));
        cr_assert_eq(cron_zone_offset(z, t), (int32_t)tm.tm_gmtoff, "%s at %lld: %d, libc %ld",
                     name, (long long)t, cron_zone_offset(z, t), tm.tm_gmtoff);
        checked++;
    }
    cr_assert_gt(checked, 100000);
    unsetenv("TZ");
}

Test(cron, zone_offsets_match_the_c_library)
{
    compare_with_libc("America/New_York");
    compare_with_libc("Europe/London");
    compare_with_libc("Australia/Lord_Howe"); /* a 30-minute DST shift */
    compare_with_libc("America/Sao_Paulo");   /* DST abolished in 2019 */
    compare_with_libc("Asia/Tokyo");
    compare_with_libc("UTC");
}

Test(cron, zone_names)
{
    char err[128];
    static const char *const bad[] = {"",           "../etc/passwd", "/etc/localtime",
                                      "Europe/../x", "Europe//Berlin", "Mars/Olympus",
                                      "a b",        "zone.tab",       "Europe/",
                                      "right/UTC"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        err[0] = '\0';
        cr_assert_null(cron_zone_get(bad[i], err, sizeof(err)), "\"%s\" accepted", bad[i]);
        cr_assert(err[0]);
    }
    cr_assert_null(cron_zone_get(NULL, err, sizeof(err)));
    const struct cron_zone *a = zone("Europe/Berlin");
    cr_assert_eq(zone("Europe/Berlin"), a, "zones are cached");
    cr_assert_str_eq(cron_zone_name(a), "Europe/Berlin");
    /* UTC works without the tz database */
    setenv("TZDIR", "/nonexistent", 1);
    cr_assert_eq(cron_zone_offset(zone("Etc/UTC"), 1700000000), 0);
    cr_assert_null(cron_zone_get("Asia/Tokyo", err, sizeof(err)), "read from TZDIR");
    unsetenv("TZDIR");
}
