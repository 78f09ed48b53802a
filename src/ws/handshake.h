/*
 * handshake.h — the HTTP side of the WebSocket opening handshake (RFC 6455 section 4.2):
 * whether a request asks for an upgrade, and the Sec-WebSocket-Accept answer to its key.
 *
 * Owns nothing; pure functions (SHA-1 lives here: the handshake is its only use).
 */
#ifndef ZYGO_WS_HANDSHAKE_H
#define ZYGO_WS_HANDSHAKE_H

#include "lib/common.h"

struct ctx;

enum ws_handshake {
    WS_HS_OK = 0,      /* a valid version-13 upgrade request */
    WS_HS_NONE,        /* not an upgrade request at all (426 Upgrade Required) */
    WS_HS_BAD_VERSION, /* Sec-WebSocket-Version other than 13 (426 with the version we speak) */
    WS_HS_BAD_KEY,     /* Sec-WebSocket-Key missing or not 16 bytes in base64 (400) */
};

/* Classifies the request's headers: Upgrade: websocket, Connection: upgrade (both token lists,
 * any case), Sec-WebSocket-Version: 13 and a well-formed Sec-WebSocket-Key. */
enum ws_handshake ws_handshake_check(const struct ctx *c);

#define WS_ACCEPT_LEN 28
/* base64(SHA-1(key + the RFC's GUID)) into out (NUL-terminated). */
void ws_handshake_accept(const char *key, char out[WS_ACCEPT_LEN + 1]);

/* SHA-1 of n bytes (FIPS 180-4). Only for the handshake: SHA-1 is no security primitive here. */
void ws_sha1(const void *data, size_t n, unsigned char out[20]);

/* True when the comma-separated header value list contains token (case-insensitive). */
bool ws_header_has_token(const char *value, const char *token);

#endif
