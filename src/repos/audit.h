/* audit.h — the audit log: one row per mutating action, written on the caller's connection so
 * it lands in the same transaction as the change, and read back per tenant (GET /audit).
 * metadata never carries secrets. */
#ifndef ZYGO_REPO_AUDIT_H
#define ZYGO_REPO_AUDIT_H

#include <jansson.h>

#include "db/db.h"

struct audit_entry {
    const char *tenant_id; /* NULL for global actions */
    const char *actor_id;  /* NULL when nobody is signed in (a failed login) */
    const char *action;    /* "auth.login", "auth.login_failed", "user.create", … */
    const char *resource_type;
    const char *resource_id;
    const char *ip;
    const char *user_agent;
    const char *request_id;
    json_t *metadata; /* borrowed; NULL for {} */
};

int audit_write(struct db_conn *c, const struct audit_entry *e);

/* What GET /audit filters on; NULL fields do not filter. */
struct audit_filter {
    const char *actor_id;      /* a UUID (any case) */
    const char *action;        /* exact, or a prefix when it ends in '*' ("auth.*") */
    const char *resource_type; /* exact */
    const char *resource_id;   /* exact */
    const char *from;          /* RFC 3339 date-time: created at or after (inclusive) */
    const char *to;            /* RFC 3339 date-time: created before (exclusive) */
};

/*
 * A page of the tenant's audit rows as the API's AuditLog objects {id, tenantId, actorId,
 * action, resourceType, resourceId, ip, userAgent, requestId, metadata, createdAt}, newest
 * first, and the total matching. NULL with *failed true on a database error.
 */
json_t *audit_list(struct db_conn *c, const char *tenant_id, const struct audit_filter *f,
                   long long limit, long long offset, long long *total, bool *failed);

/* One row of the tenant's log, or NULL: none (*failed false; another tenant's row is none)
 * or a database error (*failed true). */
json_t *audit_find_by_id(struct db_conn *c, const char *tenant_id, const char *id, bool *failed);

/*
 * An RFC 3339 date-time (as the schema's date-time format accepts it: any offset, any number
 * of fraction digits) as the stored form, UTC with milliseconds ("2026-01-26T08:00:00.000Z"),
 * which compares correctly as text (SQLite) and as timestamptz (PostgreSQL). Fractions finer
 * than a millisecond round up, so `>= from` and `< to` keep their meaning on ms-precision rows;
 * instants outside years 0001–9999 are clamped. false when `in` is not such a date-time.
 */
bool audit_time_utc(const char *in, char out[32]);

#endif
