/* handshake.c — see handshake.h. */
#include "lib/common.h"

#include <sodium.h>
#include <strings.h>

#include "http/ctx.h"
#include "ws/handshake.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

static uint32_t rol(uint32_t x, int n)
{
    return (x << n) | (x >> (32 - n));
}

static void sha1_block(uint32_t h[5], const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = rol(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = rol(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

void ws_sha1(const void *data, size_t n, unsigned char out[20])
{
    uint32_t h[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    const unsigned char *p = data;
    size_t left = n;
    for (; left >= 64; left -= 64, p += 64)
        sha1_block(h, p);
    /* the tail, the 0x80 marker and the bit length, in one or two final blocks */
    unsigned char last[128] = {0};
    memcpy(last, p, left);
    last[left] = 0x80;
    size_t total = left + 9 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)n * 8;
    for (int i = 0; i < 8; i++)
        last[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(h, last);
    if (total == 128)
        sha1_block(h, last + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (unsigned char)(h[i] >> 24);
        out[4 * i + 1] = (unsigned char)(h[i] >> 16);
        out[4 * i + 2] = (unsigned char)(h[i] >> 8);
        out[4 * i + 3] = (unsigned char)h[i];
    }
}

void ws_handshake_accept(const char *key, char out[WS_ACCEPT_LEN + 1])
{
    char joined[128];
    int n = snprintf(joined, sizeof(joined), "%s%s", key, WS_GUID);
    unsigned char digest[20];
    ws_sha1(joined, n > 0 && (size_t)n < sizeof(joined) ? (size_t)n : 0, digest);
    sodium_bin2base64(out, WS_ACCEPT_LEN + 1, digest, sizeof(digest),
                      sodium_base64_VARIANT_ORIGINAL);
}

bool ws_header_has_token(const char *value, const char *token)
{
    size_t tl = strlen(token);
    const char *p = value;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        size_t n = strcspn(p, ",");
        size_t m = n;
        while (m && (p[m - 1] == ' ' || p[m - 1] == '\t'))
            m--;
        if (m == tl && strncasecmp(p, token, tl) == 0)
            return true;
        p += n;
    }
    return false;
}

static bool key_valid(const char *key)
{
    /* 16 random bytes in base64: 24 characters ending in "==" */
    unsigned char bin[18];
    size_t len = 0;
    if (!key || strlen(key) != 24)
        return false;
    if (sodium_base642bin(bin, sizeof(bin), key, 24, NULL, &len, NULL,
                          sodium_base64_VARIANT_ORIGINAL) != 0)
        return false;
    return len == 16;
}

enum ws_handshake ws_handshake_check(const struct ctx *c)
{
    const char *up = ctx_header(c, "Upgrade");
    const char *conn = ctx_header(c, "Connection");
    if (!up || !conn || !ws_header_has_token(up, "websocket") ||
        !ws_header_has_token(conn, "upgrade"))
        return WS_HS_NONE;
    const char *ver = ctx_header(c, "Sec-WebSocket-Version");
    if (!ver || strcmp(ver, "13") != 0)
        return WS_HS_BAD_VERSION;
    if (!key_valid(ctx_header(c, "Sec-WebSocket-Key")))
        return WS_HS_BAD_KEY;
    return WS_HS_OK;
}
