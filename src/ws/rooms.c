/* rooms.c — see rooms.h. */
#include "lib/common.h"

#include <pthread.h>

#include "db/db.h"
#include "lib/arena.h"
#include "repos/roles.h"
#include "ws/rooms.h"

#define KIND_MAX 16
#define KIND_LEN 32

struct kind {
    char name[KIND_LEN];
    ws_room_check_fn fn;
    void *arg;
};

static int default_execution(struct db_conn *db, const struct ws_principal *who, const char *id,
                             void *arg);

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct kind kinds[KIND_MAX] = {{"execution", default_execution, NULL}};
static size_t nkinds = 1;

int ws_rooms_has_permission(struct db_conn *db, const struct ws_principal *who,
                            const char *permission)
{
    if (who->is_global_admin)
        return 1;
    struct arena *a = arena_new();
    const char *role;
    const char **perms;
    size_t n = 0;
    int rc = roles_user_access(db, who->tenant_id, who->user_id, a, &role, &perms, &n);
    int found = 0;
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (strcmp(perms[i], permission) == 0)
            found = 1;
    arena_free(a);
    return rc < 0 ? -1 : found;
}

static int default_execution(struct db_conn *db, const struct ws_principal *who, const char *id,
                             void *arg)
{
    (void)id;
    (void)arg;
    return ws_rooms_has_permission(db, who, "canViewWorkflows");
}

static bool word(const char *s, size_t n)
{
    if (n == 0 || n >= KIND_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
            return false;
    return true;
}

int ws_rooms_register(const char *kind, ws_room_check_fn fn, void *arg)
{
    if (!kind || !fn || !word(kind, strlen(kind)) || strcmp(kind, "user") == 0)
        return -1;
    int rc = -1;
    pthread_mutex_lock(&reg_lock);
    size_t i = 0;
    while (i < nkinds && strcmp(kinds[i].name, kind) != 0)
        i++;
    if (i < KIND_MAX) {
        snprintf(kinds[i].name, KIND_LEN, "%s", kind);
        kinds[i].fn = fn;
        kinds[i].arg = arg;
        if (i == nkinds)
            nkinds++;
        rc = 0;
    }
    pthread_mutex_unlock(&reg_lock);
    return rc;
}

enum ws_room_verdict ws_rooms_classify(const struct ws_principal *who, const char *room,
                                       ws_room_check_fn *check, void **arg, const char **id)
{
    *check = NULL;
    *arg = NULL;
    *id = NULL;
    size_t len = strlen(room);
    if (len == 0 || len > WS_ROOM_MAX)
        return WS_ROOM_DENY;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)room[i] < 0x20 || room[i] == 0x7f)
            return WS_ROOM_DENY;
    /* the specification's rule: the room must start with tenant:<own tenant id>: */
    size_t tl = strlen(who->tenant_id);
    if (strncmp(room, "tenant:", 7) != 0 || strncmp(room + 7, who->tenant_id, tl) != 0 ||
        room[7 + tl] != ':')
        return WS_ROOM_DENY;
    const char *rest = room + 7 + tl + 1;
    const char *colon = strchr(rest, ':');
    if (!colon)
        return WS_ROOM_ALLOW; /* tenant:<tid>:<name>: any member */
    size_t kl = (size_t)(colon - rest);
    const char *rid = colon + 1;
    if (kl == 4 && strncmp(rest, "user", 4) == 0)
        return strcmp(rid, who->user_id) == 0 ? WS_ROOM_ALLOW : WS_ROOM_DENY;
    enum ws_room_verdict v = WS_ROOM_ALLOW;
    pthread_mutex_lock(&reg_lock);
    for (size_t i = 0; i < nkinds; i++) {
        if (strlen(kinds[i].name) == kl && strncmp(kinds[i].name, rest, kl) == 0) {
            /* a kind with a check needs an id to check */
            v = *rid ? WS_ROOM_CHECK : WS_ROOM_DENY;
            *check = kinds[i].fn;
            *arg = kinds[i].arg;
            *id = rid;
            break;
        }
    }
    pthread_mutex_unlock(&reg_lock);
    return v;
}
