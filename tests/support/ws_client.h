/*
 * ws_client.h — a WebSocket client for the tests, on a raw TCP socket: the opening handshake
 * (checking Sec-WebSocket-Accept), frames built byte by byte so a test can send exactly what
 * it wants (masked or not, fragmented, invalid UTF-8, oversized), and a reader that
 * reassembles fragments and answers pings unless told not to.
 *
 * Owns its socket and receive buffer; wsc_close() releases both.
 */
#ifndef ZYGO_TEST_WS_CLIENT_H
#define ZYGO_TEST_WS_CLIENT_H

#include <jansson.h>

#include "lib/common.h"

struct wsc {
    int fd;
    bool auto_pong;  /* answer pings (default true) */
    int status;      /* HTTP status of the handshake */
    char head[4096]; /* the handshake's response head */
    uint8_t *buf;    /* received, not yet parsed */
    size_t len, cap;
    unsigned pings; /* pings received so far */
    bool eof;       /* the server closed the TCP connection */
};

struct wsc_msg {
    int opcode; /* 1 text, 2 binary, 8 close, 9 ping, 10 pong */
    char *data; /* NUL-terminated; free with wsc_msg_free */
    size_t len;
    int close_code; /* close: the code, 0 without one */
    char reason[128];
};

/* Connects to 127.0.0.1:port and sends a version-13 upgrade request for target ("/ws?token=…")
 * plus extra header lines (NULL-terminated, may be NULL). Returns the response status (101:
 * a WebSocket, whose Sec-WebSocket-Accept has been checked), or -1 when none came. */
int wsc_open(struct wsc *w, int port, const char *target, const char *const *headers);
/* The same, sending `first` bytes right behind the request in the same write. */
int wsc_open_with(struct wsc *w, int port, const char *target, const void *first, size_t n);
/* Any request head (for handshake errors): raw text up to the blank line; returns the status. */
int wsc_open_raw(struct wsc *w, int port, const char *request);

/* Builds one frame into out (at most 14 + n bytes): fin, opcode, payload, masked with a random
 * key or not. Returns its length. */
size_t wsc_frame(uint8_t *out, bool fin, int opcode, const void *data, size_t n, bool mask);
/* Sends one frame as wsc_frame builds it. 0 or -1. */
int wsc_send_frame(struct wsc *w, bool fin, int opcode, const void *data, size_t n, bool mask);
/* A masked, final text frame. */
int wsc_send_text(struct wsc *w, const char *text);

/* The next message (fragments reassembled; pings answered when auto_pong and also returned
 * when return_control). 1 with *m filled, 0 on timeout, -1 when the connection ended. */
int wsc_recv(struct wsc *w, struct wsc_msg *m, int timeout_ms, bool return_control);
void wsc_msg_free(struct wsc_msg *m);
/* The next data message parsed as JSON (control frames skipped); NULL on timeout or end. */
json_t *wsc_recv_json(struct wsc *w, int timeout_ms);
/* The next data message's "type" (copied into out) and the parsed message in *msg (may be
 * NULL); false on timeout or end. */
bool wsc_expect_type(struct wsc *w, const char *type, json_t **msg, int timeout_ms);
/* Waits for the server's close frame (skipping data), answers it, and returns its code with
 * the reason in reason; 0 if the connection ended without one, -1 on timeout. */
int wsc_wait_close(struct wsc *w, char *reason, size_t n, int timeout_ms);
/* True when the server ends the TCP connection (EOF or reset) within timeout_ms; data and
 * frames meanwhile are discarded. */
bool wsc_wait_eof(struct wsc *w, int timeout_ms);
void wsc_close(struct wsc *w);

#endif
