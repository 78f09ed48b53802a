/* The WebSocket building blocks without a socket: SHA-1 and the accept key, handshake header
 * parsing, server frames as wslay encodes them, the room rules and the WS_* settings. (Over a
 * real socket: tests/api/test_ws.c.) */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <unistd.h>

#include "ws/frame.h"
#include "ws/handshake.h"
#include "ws/hub.h"
#include "ws/rooms.h"

static void hex(const unsigned char *d, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void sha1_hex(const void *data, size_t n, char out[41])
{
    unsigned char d[20];
    ws_sha1(data, n, d);
    hex(d, 20, out);
}

Test(ws_unit, sha1_known_answers)
{
    char h[41];
    sha1_hex("", 0, h);
    cr_assert_str_eq(h, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    sha1_hex("abc", 3, h);
    cr_assert_str_eq(h, "a9993e364706816aba3e25717850c26c9cd0d89d");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sha1_hex(two, strlen(two), h);
    cr_assert_str_eq(h, "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    char *million = xmalloc(1000000);
    memset(million, 'a', 1000000);
    sha1_hex(million, 1000000, h);
    cr_assert_str_eq(h, "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    free(million);
}

/* Every length around the padding boundaries, against coreutils' sha1sum. */
Test(ws_unit, sha1_matches_sha1sum_for_every_length_up_to_200)
{
    unsigned char data[200];
    for (size_t i = 0; i < sizeof(data); i++)
        data[i] = (unsigned char)(i * 37 + 11);
    char path[] = "/tmp/zygo-sha1-XXXXXX";
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    close(fd);
    for (size_t n = 0; n <= sizeof(data); n++) {
        FILE *f = fopen(path, "wb");
        cr_assert_eq(fwrite(data, 1, n, f), n);
        fclose(f);
        char cmd[128], want[41] = "", got[41];
        snprintf(cmd, sizeof(cmd), "sha1sum %s", path);
        FILE *p = popen(cmd, "r");
        cr_assert_not_null(p);
        cr_assert_eq(fscanf(p, "%40s", want), 1);
        pclose(p);
        sha1_hex(data, n, got);
        cr_assert_str_eq(got, want, "length %zu", n);
    }
    unlink(path);
}

Test(ws_unit, accept_key_of_rfc_6455)
{
    char a[WS_ACCEPT_LEN + 1];
    ws_handshake_accept("dGhlIHNhbXBsZSBub25jZQ==", a);
    cr_assert_str_eq(a, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

Test(ws_unit, header_token_lists)
{
    cr_assert(ws_header_has_token("Upgrade", "upgrade"));
    cr_assert(ws_header_has_token("keep-alive, Upgrade", "upgrade"));
    cr_assert(ws_header_has_token("  keep-alive ,upgrade  ", "upgrade"));
    cr_assert(ws_header_has_token("WebSocket", "websocket"));
    cr_assert_not(ws_header_has_token("keep-alive", "upgrade"));
    cr_assert_not(ws_header_has_token("upgrades", "upgrade"));
    cr_assert_not(ws_header_has_token("xupgrade", "upgrade"));
    cr_assert_not(ws_header_has_token("", "upgrade"));
    cr_assert_not(ws_header_has_token(",,,", "upgrade"));
}

static void check_frame(uint8_t op, size_t n, const uint8_t *head, size_t hl)
{
    char *p = xmalloc(n + 1);
    memset(p, 'x', n);
    struct ws_frame *f = ws_frame_new(op, p, n);
    cr_assert_not_null(f);
    cr_assert_eq(f->len, hl + n, "length %zu", n);
    cr_assert_eq(memcmp(f->data, head, hl), 0, "header for length %zu", n);
    cr_assert_eq(memcmp(f->data + hl, p, n), 0);
    ws_frame_unref(f);
    free(p);
}

Test(ws_unit, frames_have_minimal_unmasked_headers)
{
    check_frame(WS_OP_TEXT, 0, (const uint8_t[]){0x81, 0x00}, 2);
    check_frame(WS_OP_TEXT, 125, (const uint8_t[]){0x81, 125}, 2);
    check_frame(WS_OP_TEXT, 126, (const uint8_t[]){0x81, 126, 0x00, 126}, 4);
    check_frame(WS_OP_TEXT, 65535, (const uint8_t[]){0x81, 126, 0xff, 0xff}, 4);
    check_frame(WS_OP_TEXT, 65536, (const uint8_t[]){0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}, 10);
    check_frame(WS_OP_PING, 0, (const uint8_t[]){0x89, 0x00}, 2);
    check_frame(WS_OP_CLOSE, 125, (const uint8_t[]){0x88, 125}, 2);
    cr_assert_null(ws_frame_new(WS_OP_PING, "x", 126), "control frames carry at most 125 bytes");
    /* shared: a reference per holder */
    struct ws_frame *f = ws_frame_new(WS_OP_TEXT, "{}", 2);
    ws_frame_ref(f);
    ws_frame_unref(f);
    cr_assert_eq(atomic_load(&f->refs), 1);
    ws_frame_unref(f);
}

static const struct ws_principal who = {"0190f1d2-aaaa-7000-8000-000000000001",
                                        "0190f1d2-bbbb-7000-8000-000000000002",
                                        "0190f1d2-cccc-7000-8000-000000000003", false};

static enum ws_room_verdict classify(const char *fmt, const char *arg)
{
    char room[512];
    snprintf(room, sizeof(room), fmt, arg);
    ws_room_check_fn fn;
    void *a;
    const char *id;
    return ws_rooms_classify(&who, room, &fn, &a, &id);
}

Test(ws_unit, room_rules)
{
    const char *t = who.tenant_id;
    cr_assert_eq(classify("tenant:%s:dashboard", t), WS_ROOM_ALLOW);
    cr_assert_eq(classify("tenant:%s:job:1", t), WS_ROOM_ALLOW);
    cr_assert_eq(classify("tenant:%s:a:b:c", t), WS_ROOM_ALLOW);
    cr_assert_eq(classify("tenant:%s:execution:e1", t), WS_ROOM_CHECK);
    cr_assert_eq(classify("tenant:%s:execution:", t), WS_ROOM_DENY);
    cr_assert_eq(classify("tenant:%s:user:0190f1d2-bbbb-7000-8000-000000000002", t), WS_ROOM_ALLOW);
    cr_assert_eq(classify("tenant:%s:user:0190f1d2-bbbb-7000-8000-000000000009", t), WS_ROOM_DENY);
    cr_assert_eq(classify("tenant:%s:user:0190f1d2-bbbb-7000-8000-000000000002:x", t),
                 WS_ROOM_DENY);
    cr_assert_eq(classify("tenant:%s:", t), WS_ROOM_ALLOW);
    cr_assert_eq(classify("tenant:%s", t), WS_ROOM_DENY);
    cr_assert_eq(classify("tenant:%sx:room", t), WS_ROOM_DENY);
    cr_assert_eq(classify("tenant:0190f1d2-aaaa-7000-8000-000000000009:room", NULL), WS_ROOM_DENY);
    cr_assert_eq(classify("Tenant:%s:room", t), WS_ROOM_DENY);
    cr_assert_eq(classify("%s", ""), WS_ROOM_DENY);
    cr_assert_eq(classify("tenant:%s:a\tb", t), WS_ROOM_DENY);
    char longname[300];
    memset(longname, 'r', 250);
    longname[250] = '\0';
    char fmt[400];
    snprintf(fmt, sizeof(fmt), "tenant:%%s:%s", longname);
    cr_assert_eq(classify(fmt, t), WS_ROOM_DENY);
}

static int yes(struct db_conn *db, const struct ws_principal *w, const char *id, void *arg)
{
    (void)db;
    (void)w;
    (void)id;
    (void)arg;
    return 1;
}

Test(ws_unit, room_kinds_register)
{
    int tag;
    cr_assert_eq(ws_rooms_register("server", yes, &tag), 0);
    ws_room_check_fn fn;
    void *a;
    const char *id;
    char room[200];
    snprintf(room, sizeof(room), "tenant:%s:server:srv-1", who.tenant_id);
    cr_assert_eq(ws_rooms_classify(&who, room, &fn, &a, &id), WS_ROOM_CHECK);
    cr_assert_eq(fn, yes);
    cr_assert_eq(a, &tag);
    cr_assert_str_eq(id, "srv-1");
    cr_assert_eq(ws_rooms_register("user", yes, NULL), -1);
    cr_assert_eq(ws_rooms_register("", yes, NULL), -1);
    cr_assert_eq(ws_rooms_register("a:b", yes, NULL), -1);
    cr_assert_eq(ws_rooms_register("ok", NULL, NULL), -1);
    char name[16];
    int added = 0;
    for (int i = 0; i < 32; i++) {
        snprintf(name, sizeof(name), "k%d", i);
        added += ws_rooms_register(name, yes, NULL) == 0;
    }
    cr_assert_lt(added, 32, "the registry is bounded");
}

Test(ws_unit, options_from_variables)
{
    struct ws_options o;
    char err[200];
    cr_assert_eq(ws_options_load(&o, NULL, err, sizeof(err)), 0);
    cr_assert_eq(o.max_message, 65536);
    cr_assert_eq(o.send_queue_max, 1u << 20);
    cr_assert_eq(o.ping_interval_ms, 30000);
    cr_assert_eq(o.pong_timeout_ms, 10000);
    cr_assert_eq(o.session_check_ms, 30000);
    char *vars[] = {"WS_MAX_MESSAGE_BYTES=1024", "WS_SESSION_CHECK_MS=0", "OTHER=1", NULL};
    cr_assert_eq(ws_options_load(&o, vars, err, sizeof(err)), 0);
    cr_assert_eq(o.max_message, 1024);
    cr_assert_eq(o.session_check_ms, 0);
    const char *bad[] = {"WS_PING_INTERVAL_MS=abc",
                         "WS_PING_INTERVAL_MS=-5",
                         "WS_MAX_MESSAGE_BYTES=12",
                         "WS_SEND_QUEUE_BYTES=99999999999999999999",
                         "WS_MAX_CONNECTIONS=0",
                         "WS_PONG_TIMEOUT_MS=10 ",
                         NULL};
    for (size_t i = 0; bad[i]; i++) {
        char *v[] = {(char *)bad[i], NULL};
        cr_assert_eq(ws_options_load(&o, v, err, sizeof(err)), -1, "%s accepted", bad[i]);
        cr_assert_not_null(strstr(err, "WS_"), "%s", err);
    }
}
