/*
 * realtime.h — the real-time bus: messages for WebSocket rooms and users, from any thread of
 * any zygo process sharing the database (the specification's broadcastToRoom/broadcastToUser).
 *
 * Owns delivery to the local WebSocket hub (src/ws) and the relay between processes: a message
 * published in one process (a `zygo worker` running a job, another `zygo serve` behind the same
 * proxy) reaches the sockets of every process. Publishing never blocks on a client: the hub
 * queues per socket and drops a socket whose queue overflows.
 *
 * Rooms (the catalogue, enforced by the hub's subscribe rules):
 *   tenant:<tenantId>:user:<userId>        that user only
 *   tenant:<tenantId>:job:<jobId>          a job's progress/completed/failed
 *   tenant:<tenantId>:execution:<execId>   a workflow execution's steps and logs
 *   tenant:<tenantId>:<anything else>      any member of the tenant
 */
#ifndef ZYGO_SERVICES_REALTIME_H
#define ZYGO_SERVICES_REALTIME_H

#include "lib/common.h"

struct db;
struct realtime;

/* Local delivery: the WebSocket hub of this process registers one. user is true for
 * realtime_publish_user (target is a user id), false for a room. Called on any thread. */
typedef void (*realtime_deliver_fn)(void *arg, bool user, const char *target, const char *json,
                                    size_t len);

/* A bus relaying through db (NULL: this process only). */
struct realtime *realtime_new(struct db *db);
void realtime_free(struct realtime *rt);
void realtime_set_local(struct realtime *rt, realtime_deliver_fn fn, void *arg);

/* json is one JSON object text. 0, or -1 when it could not be relayed (logged; local
 * delivery still happened). rt NULL is a no-op returning 0. */
int realtime_publish_room(struct realtime *rt, const char *room, const char *json, size_t len);
int realtime_publish_user(struct realtime *rt, const char *user_id, const char *json, size_t len);

#endif
