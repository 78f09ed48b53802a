/*
 * realtime.h — the real-time bus: messages for WebSocket rooms and users, from any thread of
 * any zygo process sharing the database (the specification's broadcastToRoom/broadcastToUser).
 *
 * Owns delivery to the local WebSocket hub (src/ws) and the relay between processes: a message
 * published in one process (a `zygo worker` running a job, another `zygo serve` behind the same
 * proxy) reaches the sockets of every process. Publishing never blocks on a client or on the
 * database: local delivery only queues on the hub, and the relay is written by a thread of the
 * bus in batches.
 *
 * The relay (a bus made with a database):
 *   - SQLite: rows appended to realtime_events; a reader thread in each process with a local
 *     receiver reads the new ones every 50 ms. Rows are pruned after a minute.
 *   - PostgreSQL: NOTIFY on channel zygo_realtime; the reader holds one dedicated LISTEN
 *     connection (realtime_set_listen_url), reconnecting with backoff when it is lost.
 *     Messages above a notification's 8000 bytes go through realtime_events by id.
 *   A bus skips its own messages when they come back (a random origin id per bus), so nothing
 *   is delivered twice. Delivery is at most once: messages published while a reader is
 *   reconnecting, or that the database refused, are lost (logged). Order is kept per
 *   publishing process.
 *
 * Rooms (the catalogue, enforced by the hub's subscribe rules, src/ws/rooms.h):
 *   tenant:<tenantId>:user:<userId>        that user only
 *   tenant:<tenantId>:job:<jobId>          a job's progress/completed/failed
 *   tenant:<tenantId>:execution:<execId>   a workflow execution's steps and logs
 *                                          (canViewWorkflows, plus the workflows module's
 *                                          check registered with ws_rooms_register)
 *   tenant:<tenantId>:<anything else>      any member of the tenant
 */
#ifndef ZYGO_SERVICES_REALTIME_H
#define ZYGO_SERVICES_REALTIME_H

#include "lib/common.h"

struct db;
struct realtime;

/* Local delivery: the WebSocket hub of this process registers one. user is true for
 * realtime_publish_user (target is a user id), false for a room. Called on any thread (the
 * publisher's, or the relay reader's); must not block. */
typedef void (*realtime_deliver_fn)(void *arg, bool user, const char *target, const char *json,
                                    size_t len);

/* A bus relaying through db (NULL: this process only). No thread runs until the first
 * publish (the writer) or the first local receiver (the reader). */
struct realtime *realtime_new(struct db *db);
/* Relays what is still queued (bounded by the database's own timeouts), stops the threads. */
void realtime_free(struct realtime *rt);
/* PostgreSQL: the database URL for the dedicated LISTEN connection (pooled connections cannot
 * wait for notifications). Set before realtime_set_local; without it a PostgreSQL bus still
 * publishes to other processes but receives nothing from them. The URL is copied. */
void realtime_set_listen_url(struct realtime *rt, const char *url);
/* Sets (fn) or removes (NULL) the local receiver. Once it returns, the previous receiver is
 * called no more. */
void realtime_set_local(struct realtime *rt, realtime_deliver_fn fn, void *arg);

/* json is one JSON object text. 0, or -1 when it could not be relayed (queue full, target with
 * a newline; logged; local delivery still happened). rt NULL is a no-op returning 0. */
int realtime_publish_room(struct realtime *rt, const char *room, const char *json, size_t len);
int realtime_publish_user(struct realtime *rt, const char *user_id, const char *json, size_t len);

#endif
