/*
 * frame.h — server-to-client WebSocket frames, encoded once by wslay and shared.
 *
 * Owns struct ws_frame: the bytes of one complete frame (header + unmasked payload) with an
 * atomic reference count, so a message broadcast to a thousand sockets is framed and stored
 * once and each socket's send queue holds a reference (style.md: refcount only what is truly
 * shared). Encoding goes through wslay's frame layer (a wslay_frame_context per thread whose
 * send callback appends to the frame being built).
 */
#ifndef ZYGO_WS_FRAME_H
#define ZYGO_WS_FRAME_H

#include "lib/common.h"

#include <stdatomic.h>

struct ws_frame {
    atomic_uint refs;
    uint32_t len; /* bytes in data */
    uint8_t data[];
};

/* Opcodes (RFC 6455 section 5.2). */
enum {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xa,
};

/* A final, unmasked frame of opcode carrying payload[0..n), refs = 1. NULL when n is too large
 * for a control frame (over 125 bytes) or above 2^31. */
struct ws_frame *ws_frame_new(uint8_t opcode, const void *payload, size_t n);
/* Raw bytes (already framed by wslay's event layer), refs = 1. */
struct ws_frame *ws_frame_raw(const void *bytes, size_t n);
struct ws_frame *ws_frame_ref(struct ws_frame *f);
void ws_frame_unref(struct ws_frame *f);

#endif
