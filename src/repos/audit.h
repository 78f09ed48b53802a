/* audit.h — the audit log: one row per mutating action, written on the caller's connection so
 * it lands in the same transaction as the change. metadata never carries secrets. */
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

#endif
