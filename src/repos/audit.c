/* audit.c — see audit.h. */
#include "lib/common.h"

#include "lib/jsonx.h"
#include "lib/uuid.h"
#include "lib/civil.h"
#include "repos/audit.h"
#include "repos/repo.h"

int audit_write(struct db_conn *c, const struct audit_entry *e)
{
    char id[37], ua[513] = "";
    uuid_v7(id);
    if (e->user_agent)
        snprintf(ua, sizeof(ua), "%s", e->user_agent);
    char *meta = e->metadata ? jx_dump(e->metadata, NULL) : NULL;
    int rc = db_exec(c,
                     "INSERT INTO audit_logs (id, tenant_id, actor_id, action, resource_type,"
                     " resource_id, ip, user_agent, request_id, metadata)"
                     " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                     DB_ARGS(DB_TEXT(id), DB_TEXT(e->tenant_id), DB_TEXT(e->actor_id),
                             DB_TEXT(e->action), DB_TEXT(e->resource_type), DB_TEXT(e->resource_id),
                             DB_TEXT(e->ip), DB_TEXT(e->user_agent ? ua : NULL),
                             DB_TEXT(e->request_id), DB_TEXT(meta ? meta : "{}")));
    free(meta);
    return rc == 1 ? 0 : -1;
}

/* ---- reading ------------------------------------------------------------------------------ */

/* The API's AuditLog object, in SELECT order. */
#define AUDIT_COLUMNS                                                                              \
    "id, tenant_id, actor_id, action, resource_type, resource_id, ip, user_agent, request_id,"     \
    " metadata, created_at"

static const struct repo_col audit_cols[] = {
    {"id", REPO_TEXT},       {"tenantId", REPO_TEXT},       {"actorId", REPO_TEXT},
    {"action", REPO_TEXT},   {"resourceType", REPO_TEXT},   {"resourceId", REPO_TEXT},
    {"ip", REPO_TEXT},       {"userAgent", REPO_TEXT},      {"requestId", REPO_TEXT},
    {"metadata", REPO_JSON}, {"createdAt", REPO_TIMESTAMP}, {NULL, REPO_TEXT},
};

/* Every filter is bound on every call (NULL when absent), so one statement text serves all
 * combinations on both databases. `col = $k OR $k IS NULL` names the column first: PostgreSQL
 * types an untyped parameter at its first use (a uuid for actor_id), and a bare `$k IS NULL`
 * has no type to give it. The time range is always bound (the widest one when absent) so the
 * parameters take timestamptz from created_at. Prefixes compare with substr, not LIKE: LIKE
 * ignores case on SQLite and not on PostgreSQL. */
#define AUDIT_WHERE                                                                                \
    " FROM audit_logs WHERE tenant_id = $1"                                                        \
    " AND (actor_id = $2 OR $2 IS NULL)"                                                           \
    " AND (action = $3 OR $3 IS NULL)"                                                             \
    " AND (substr(action, 1, CAST($4 AS integer)) = $5 OR $5 IS NULL)"                             \
    " AND (resource_type = $6 OR $6 IS NULL)"                                                      \
    " AND (resource_id = $7 OR $7 IS NULL)"                                                        \
    " AND created_at >= $8 AND created_at < $9"

#define TIME_MIN "0001-01-01T00:00:00.000Z"
#define TIME_MAX "9999-12-31T23:59:59.999Z"

/* Characters (not bytes) of UTF-8 text: substr counts characters on both databases. */
static long long utf8_chars(const char *s, size_t n)
{
    long long k = 0;
    for (size_t i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            k++;
    return k;
}

json_t *audit_list(struct db_conn *c, const char *tenant_id, const struct audit_filter *f,
                   long long limit, long long offset, long long *total, bool *failed)
{
    *failed = false;
    *total = 0;
    if (repo_tenant(c, tenant_id) < 0)
        return json_array();
    char actor[37], from[32] = TIME_MIN, to[32] = TIME_MAX, prefix[256];
    const char *actor_p = NULL, *exact = NULL, *prefix_p = NULL;
    long long prefix_chars = 0;
    if (f->actor_id) {
        if (!uuid_normalize(f->actor_id, actor))
            return json_array(); /* names no actor */
        actor_p = actor;
    }
    if (f->action) {
        size_t n = strlen(f->action);
        if (n > 0 && f->action[n - 1] == '*') {
            snprintf(prefix, sizeof(prefix), "%.*s", (int)(n - 1), f->action);
            prefix_p = prefix;
            prefix_chars = utf8_chars(prefix, strlen(prefix));
        } else {
            exact = f->action;
        }
    }
    if ((f->from && !audit_time_utc(f->from, from)) || (f->to && !audit_time_utc(f->to, to)))
        return json_array();
    const char *tid = db_tenant(c);

    struct db_rows *r =
        db_query(c, "SELECT count(*)" AUDIT_WHERE,
                 DB_ARGS(DB_TEXT(tid), DB_TEXT(actor_p), DB_TEXT(exact), DB_INT(prefix_chars),
                         DB_TEXT(prefix_p), DB_TEXT(f->resource_type), DB_TEXT(f->resource_id),
                         DB_TEXT(from), DB_TEXT(to)));
    if (!r || !db_next(r)) {
        db_rows_free(r);
        *failed = true;
        return NULL;
    }
    *total = db_int(r, 0);
    db_rows_free(r);
    r = db_query(c,
                 "SELECT " AUDIT_COLUMNS AUDIT_WHERE
                 " ORDER BY created_at DESC, id DESC LIMIT $10 OFFSET $11",
                 DB_ARGS(DB_TEXT(tid), DB_TEXT(actor_p), DB_TEXT(exact), DB_INT(prefix_chars),
                         DB_TEXT(prefix_p), DB_TEXT(f->resource_type), DB_TEXT(f->resource_id),
                         DB_TEXT(from), DB_TEXT(to), DB_INT(limit), DB_INT(offset)));
    if (!r) {
        *failed = true;
        return NULL;
    }
    json_t *a = json_array();
    while (db_next(r))
        json_array_append_new(a, repo_row_json(r, audit_cols));
    if (db_rows_error(r)) {
        *failed = true;
        json_decref(a);
        a = NULL;
    }
    db_rows_free(r);
    return a;
}

json_t *audit_find_by_id(struct db_conn *c, const char *tenant_id, const char *id, bool *failed)
{
    *failed = false;
    char aid[37];
    if (!uuid_normalize(id ? id : "", aid) || repo_tenant(c, tenant_id) < 0)
        return NULL;
    struct db_rows *r =
        db_query(c, "SELECT " AUDIT_COLUMNS " FROM audit_logs WHERE id = $1 AND tenant_id = $2",
                 DB_ARGS(DB_TEXT(aid), DB_TEXT(db_tenant(c))));
    if (!r) {
        *failed = true;
        return NULL;
    }
    json_t *o = NULL;
    if (db_next(r))
        o = repo_row_json(r, audit_cols);
    else if (db_rows_error(r))
        *failed = true;
    db_rows_free(r);
    return o;
}

/* ---- time --------------------------------------------------------------------------------- */

bool audit_time_utc(const char *in, char out[32])
{
    size_t n = in ? strlen(in) : 0;
    if (n < 20 || in[4] != '-' || in[7] != '-' || (in[10] != 'T' && in[10] != 't') ||
        in[13] != ':' || in[16] != ':')
        return false;
    int y, mo, d, h, mi, s;
    if (!civil_digits(in, 4, &y) || !civil_digits(in + 5, 2, &mo) || !civil_digits(in + 8, 2, &d) ||
        !civil_digits(in + 11, 2, &h) || !civil_digits(in + 14, 2, &mi) ||
        !civil_digits(in + 17, 2, &s))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60)
        return false;
    size_t i = 19;
    int64_t ms = 0;
    if (in[i] == '.') {
        size_t start = ++i;
        bool finer = false;
        for (; i < n && in[i] >= '0' && in[i] <= '9'; i++) {
            if (i - start < 3)
                ms = ms * 10 + (in[i] - '0');
            else if (in[i] != '0')
                finer = true;
        }
        if (i == start)
            return false;
        for (size_t k = i - start; k < 3; k++)
            ms *= 10;
        ms += finer; /* round up: see audit.h */
    }
    int64_t offset_s = 0;
    if (i + 1 == n && (in[i] == 'Z' || in[i] == 'z')) {
        offset_s = 0;
    } else if (i + 6 == n && (in[i] == '+' || in[i] == '-') && in[i + 3] == ':') {
        int oh, om;
        if (!civil_digits(in + i + 1, 2, &oh) || !civil_digits(in + i + 4, 2, &om) || oh > 23 ||
            om > 59)
            return false;
        offset_s = (in[i] == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
    } else {
        return false;
    }
    int64_t t = ((civil_days(y, mo, d) * 86400 + h * 3600 + mi * 60 + s) - offset_s) * 1000 + ms;
    const int64_t lo = civil_days(1, 1, 1) * 86400000;
    const int64_t hi = civil_days(10000, 1, 1) * 86400000 - 1;
    if (t < lo)
        t = lo;
    if (t > hi)
        t = hi;
    int64_t days = t / 86400000, rem = t % 86400000;
    if (rem < 0) {
        rem += 86400000;
        days--;
    }
    int64_t yy;
    int mm, dd;
    civil_date(days, &yy, &mm, &dd);
    char buf[64]; /* always 24 characters after the clamping above */
    int len = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", (int)yy, mm, dd,
                       (int)(rem / 3600000), (int)(rem / 60000 % 60), (int)(rem / 1000 % 60),
                       (int)(rem % 1000));
    if (len < 0 || len > 31)
        return false;
    memcpy(out, buf, (size_t)len + 1);
    return true;
}
