/*
 * rooms.h — the room catalogue and who may join which room (the specification's joinRoom
 * check, extended: its "realtime-auth" hook).
 *
 * Room names (see also services/realtime.h and docs/realtime.md):
 *   tenant:<tenantId>:user:<userId>        only that user
 *   tenant:<tenantId>:execution:<execId>   a workflow execution; default rule: the permission
 *                                          canViewWorkflows (the workflows module registers a
 *                                          rule that also checks the execution exists)
 *   tenant:<tenantId>:job:<jobId>          a background job's progress; any member
 *   tenant:<tenantId>:<anything else>      any member of the tenant
 * A room outside `tenant:<own tenant id>:` is refused ("Access denied to room"), as are names
 * longer than WS_ROOM_MAX bytes or with control characters.
 *
 * Owns the registry of room kinds (process-wide, fixed-size, guarded by a lock). Rules that
 * need only the connection's identity run on the loop; registered checks may query the
 * database and run on the hub's worker threads.
 */
#ifndef ZYGO_WS_ROOMS_H
#define ZYGO_WS_ROOMS_H

#include "lib/common.h"

struct db_conn;

#define WS_ROOM_MAX 200

/* Who is asking: the identity checked when the socket was opened. */
struct ws_principal {
    const char *tenant_id;
    const char *user_id;
    const char *session_id;
    bool is_global_admin;
};

/*
 * A room kind's check, on a worker thread: db is scoped to the principal's tenant
 * (repo_tenant done: row-level security applies). id is the part after "<kind>:" (never
 * empty). Return 1 to allow, 0 to deny, -1 when it could not be decided (database error: the
 * client gets an error message, not a denial).
 */
typedef int (*ws_room_check_fn)(struct db_conn *db, const struct ws_principal *who, const char *id,
                                void *arg);

/* Sets (or replaces) the check of room kind `kind` (e.g. "execution"). Call at start-up, any
 * thread. 0, or -1 when the registry is full or kind is not a plain word. */
int ws_rooms_register(const char *kind, ws_room_check_fn fn, void *arg);

/* For checks: 1 when the user holds the permission through their roles now (global admins
 * always), 0 when not, -1 on a database error. */
int ws_rooms_has_permission(struct db_conn *db, const struct ws_principal *who,
                            const char *permission);

enum ws_room_verdict {
    WS_ROOM_DENY = 0,
    WS_ROOM_ALLOW,
    WS_ROOM_CHECK, /* run *check (with *arg, *id) on a worker */
};

/* The rules that need no database, and which check (if any) remains. *id points into room. */
enum ws_room_verdict ws_rooms_classify(const struct ws_principal *who, const char *room,
                                       ws_room_check_fn *check, void **arg, const char **id);

#endif
