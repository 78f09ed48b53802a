/*
 * hub.h — the WebSocket hub: every upgraded socket of the process on one epoll loop thread,
 * the specification's protocol (connected / subscribe / unsubscribe / ping / error), rooms and
 * users for broadcastToRoom / broadcastToUser, the heartbeat, token expiry, session
 * re-checks and the graceful close.
 *
 * Owns the loop thread, its epoll and wake descriptors, every client record (struct ws_conn
 * plus identity and room memberships), the room and user indexes, and a small worker pool for
 * the checks that need the database (room rules of src/ws/rooms.h, session re-checks). Other
 * threads only post commands to the loop (a locked list and an eventfd): publishing never
 * touches a socket or waits for one.
 *
 * Protocol (text frames of JSON; see docs/realtime.md):
 *   server → {"type":"connected","userId"} once authenticated
 *   {"type":"subscribe","room"}   → {"type":"subscribed","room"} or
 *                                   {"type":"error","message":"Access denied to room"}
 *   {"type":"unsubscribe","room"} → {"type":"unsubscribed","room"}
 *   {"type":"ping"}               → {"type":"pong"}
 *   anything else                 → {"type":"error","message":…}; the connection stays open
 * Close codes: 4001 missing token, 4002 invalid token (also: expired, session revoked, user
 * or tenant suspended while connected), 4000 connection error, 1001 server shutting down,
 * 1013 too many connections; RFC 6455's own (1002, 1007, 1009) come from wslay.
 */
#ifndef ZYGO_WS_HUB_H
#define ZYGO_WS_HUB_H

#include "lib/common.h"
#include "ws/rooms.h"

struct db;
struct ws_hub;

struct ws_options {
    size_t max_message;        /* WS_MAX_MESSAGE_BYTES (65536): larger → close 1009 */
    size_t send_queue_max;     /* WS_SEND_QUEUE_BYTES (1 MiB): a client this far behind is
                                  dropped */
    unsigned ping_interval_ms; /* WS_PING_INTERVAL_MS (30000): ping after this long silent */
    unsigned pong_timeout_ms;  /* WS_PONG_TIMEOUT_MS (10000): no answer → connection dropped */
    unsigned session_check_ms; /* WS_SESSION_CHECK_MS (30000): re-check sessions (0: never) */
    unsigned close_timeout_ms; /* WS_CLOSE_TIMEOUT_MS (5000): close handshake at most */
    unsigned max_connections;  /* WS_MAX_CONNECTIONS (100000) */
    unsigned max_rooms;        /* WS_MAX_ROOMS (100): rooms per connection */
    unsigned check_threads;    /* WS_CHECK_THREADS (2): workers for database checks */
};

/* Defaults, then the WS_* variables found in vars ("NAME=value", NULL-terminated, may be
 * NULL). 0, or -1 with the first bad variable described in err. */
int ws_options_load(struct ws_options *o, char *const *vars, char *err, size_t errlen);

/* Starts the loop. db (for room checks and session re-checks) must outlive the hub. Raises the
 * open-files limit to its hard maximum so that many sockets fit. */
struct ws_hub *ws_hub_new(struct db *db, const struct ws_options *o);

/* What the opening handshake decided. */
struct ws_accept {
    uint16_t close_code;      /* 0: authenticated; else close with this code at once */
    const char *close_reason; /* for close_code */
    struct ws_principal who;  /* copied */
    int64_t expires_at;       /* the token's exp, seconds since the epoch (0: none) */
};

/* Takes over an upgraded socket (any thread). extra[0..n) are bytes already read past the
 * request. The hub owns fd from here on, whatever happens. */
void ws_hub_adopt(struct ws_hub *h, int fd, const void *extra, size_t n, const struct ws_accept *a);

/* broadcastToRoom / broadcastToUser from any thread: json is one JSON text, framed once and
 * queued on every socket of the room / of the user. Shaped as realtime_deliver_fn so the
 * real-time bus can call it directly (hub = the struct ws_hub). */
void ws_hub_deliver(void *hub, bool user, const char *target, const char *json, size_t len);

/* Closes every socket with 1001 and waits up to timeout_ms for the close handshakes (then
 * drops what is left) and stops the loop. New sockets are refused from the start. */
void ws_hub_shutdown(struct ws_hub *h, unsigned timeout_ms);
/* Shuts down (at once) if not done yet and frees everything. NULL is fine. */
void ws_hub_free(struct ws_hub *h);

struct ws_hub_stats {
    unsigned connections; /* sockets on the loop (open or closing) */
    unsigned rooms;       /* rooms with at least one member */
    unsigned framing;     /* sockets holding a wslay context right now (updated each tick) */
    unsigned long long dropped_slow; /* clients dropped for an overflowing send queue */
};
void ws_hub_stats(struct ws_hub *h, struct ws_hub_stats *out);

#endif
