/*
 * conn.h — one upgraded WebSocket socket on the hub's event loop: RFC 6455 framing by wslay,
 * a bounded send queue of shared frames, and the close handshake.
 *
 * Owns the socket descriptor, its wslay context and its queued output. Runs on the loop thread
 * only (nothing here locks). The owner (src/ws/hub.c) embeds struct ws_conn in its own client
 * record and frees both once the state is WS_DEAD and it has called ws_conn_release.
 *
 * Memory: an idle connection holds no wslay context (wslay's event and frame contexts cost
 * about 9 KB, two 4 KB buffers). One is made when bytes arrive or a close must be sent, and
 * dropped again as soon as wslay holds nothing: every byte it was given belongs to a complete
 * frame (counted through its frame callbacks), no fragmented message is half received, and
 * nothing is queued in it. Server frames are framed once (src/ws/frame.h) and queued by
 * reference. What wslay's event layer writes (pong, close) goes through the same queue.
 *
 * Rules enforced (by wslay, configured here): client frames must be masked (else close 1002),
 * text must be UTF-8 (1007), messages above max_message bytes (1009), fragmented messages are
 * reassembled, pings answered with pongs, a peer's close answered and the socket closed.
 */
#ifndef ZYGO_WS_CONN_H
#define ZYGO_WS_CONN_H

#include "lib/common.h"

#include <wslay/wslay.h>

struct ws_frame;
struct ws_conn;
struct ws_out;

enum ws_conn_state {
    WS_OPEN = 0, /* messages flow both ways */
    WS_CLOSING,  /* a close frame is queued or sent; waiting for the peer's close or a flush */
    WS_LINGER,   /* our side shut down after the close handshake; draining until the peer
                    closes or the deadline passes, so it reads our close frame, not a reset */
    WS_DEAD,     /* finished: the owner releases it at its next safe point */
};

/* What every connection of one loop shares. */
struct ws_conn_env {
    int epfd;
    size_t max_message;        /* larger messages: close 1009 */
    size_t queue_max;          /* bytes queued for a client before it is dropped as too slow */
    unsigned close_timeout_ms; /* how long a close handshake or the linger may take */
    /* A complete text or binary message. May send, close or abort c. */
    void (*on_message)(struct ws_conn *c, const uint8_t *data, size_t len);
    /* Bytes arrived (any frame, pongs included): the heartbeat's sign of life. */
    void (*on_activity)(struct ws_conn *c);
};

struct ws_conn {
    const struct ws_conn_env *env;
    int fd;
    uint8_t state;   /* enum ws_conn_state */
    bool want_out;   /* EPOLLOUT is registered */
    bool rx_fin;     /* of the frame being received */
    bool rx_frag;    /* inside a fragmented message */
    bool overflowed; /* dropped because its send queue passed queue_max */
    uint8_t rx_op;
    uint32_t out_off;           /* bytes of the first queued frame already written */
    wslay_event_context_ptr ev; /* NULL while nothing is pending in wslay */
    uint64_t rx_pending;        /* bytes given to wslay not yet part of a whole frame */
    uint64_t rx_frame;          /* wire size of the frame being received */
    struct ws_out *out_head, *out_tail;
    size_t out_bytes;  /* queued and not yet written */
    uint64_t deadline; /* ms (CLOCK_MONOTONIC): WS_CLOSING / WS_LINGER end */
    uint8_t *pre;      /* bytes read by the HTTP server past the handshake, fed first */
    uint32_t pre_len, pre_off;
};

/* Takes fd (non-blocking from here on) onto the loop: registers it with env->epfd with
 * data.ptr = c. extra[0..n) are bytes the HTTP layer read after the request (copied). 0, or -1
 * (fd is not taken: the caller closes it). */
int ws_conn_init(struct ws_conn *c, const struct ws_conn_env *env, int fd, const void *extra,
                 size_t n);

/* Handles the epoll events for c. Afterwards c may be WS_DEAD. */
void ws_conn_on_events(struct ws_conn *c, uint32_t events, uint64_t now_ms);

/* Queues a frame (takes a reference of its own). A client whose queue would exceed
 * env->queue_max is aborted (WS_DEAD); frames for a connection that is not open are dropped.
 * Returns 0, or -1 when the frame was not queued. */
int ws_conn_send(struct ws_conn *c, struct ws_frame *f);

/* Starts the close handshake with code and reason (at most 123 bytes). No more messages are
 * sent after it; the socket ends when the peer answers or close_timeout_ms passes. */
void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason, uint64_t now_ms);

/* Drops the connection at once (dead peer, slow consumer, shutdown deadline). */
void ws_conn_abort(struct ws_conn *c);

/* Deadlines of WS_CLOSING and WS_LINGER; call now and then. */
void ws_conn_tick(struct ws_conn *c, uint64_t now_ms);

/* Frees what c holds and closes the socket; c must be WS_DEAD (or is made so). */
void ws_conn_release(struct ws_conn *c);

/* True when no wslay context is held (the idle, cheap state). For tests and statistics. */
bool ws_conn_idle(const struct ws_conn *c);

#endif
