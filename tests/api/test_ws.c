/* The WebSocket endpoint over real sockets: the handshake, the specification's protocol and
 * close codes, RFC 6455 rules (masking, fragmentation, UTF-8, size, ping/pong, close), room
 * authorisation, broadcasts from other threads and other processes, slow consumers, token
 * expiry, session revocation, the heartbeat and the graceful shutdown. Every test runs on
 * SQLite and, with ZYGO_TEST_DB=postgres, on PostgreSQL. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "accounts.h"
#include "db/db.h"
#include "lib/jwt.h"
#include "lib/password.h"
#include "services/auth.h"
#include "services/realtime.h"
#include "dbtest.h"
#include "pgtest.h"
#include "support.h"
#include "ws/hub.h"
#include "ws/rooms.h"
#include "ws_client.h"

static struct tserver s;
static bool started;

/* Every test starts its own server (Criterion runs each test in its own process), with the
 * base settings plus the test's own. */
static void start(const char *const *extra)
{
    const char *env[32];
    size_t n = 0;
    env[n++] = "RATE_LIMIT_ENABLED=false";
    env[n++] = "WS_MAX_MESSAGE_BYTES=4096";
    env[n++] = "WS_CLOSE_TIMEOUT_MS=1000";
    for (size_t i = 0; extra && extra[i] && n < ARRAY_LEN(env) - 1; i++)
        env[n++] = extra[i];
    env[n] = NULL;
    tserver_start(&s, env, NULL, 0);
    started = true;
}

static void teardown(void)
{
    if (started)
        tserver_stop(&s);
}
TestSuite(ws, .fini = teardown, .timeout = 60);

/* A member of owner's tenant with no role at all (no permissions), signed in. */
static void roleless_member(const struct account *owner, const char *email, struct account *w)
{
    char hash[PASSWORD_HASH_MAX], body[256];
    cr_assert_eq(password_hash("correct horse battery", hash), 0);
    struct db_conn *c = dbt_acquire(s.env.db);
    db_set_rls_bypass(c, true);
    uuid_v7(w->user_id);
    cr_assert_eq(db_exec(c,
                         "INSERT INTO users (id, tenant_id, email, status, password_hash)"
                         " VALUES ($1, $2, $3, 'active', $4)",
                         DB_ARGS(DB_TEXT(w->user_id), DB_TEXT(owner->tenant_id), DB_TEXT(email),
                                 DB_TEXT(hash))),
                 1);
    db_release(c);
    snprintf(w->tenant_id, sizeof(w->tenant_id), "%s", owner->tenant_id);
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse battery\"}",
             email);
    json_t *r;
    cr_assert_eq(api_req(s.env.app, "POST", "/api/v1/auth/login", NULL, body, &r), 200);
    snprintf(w->access, sizeof(w->access), "%s",
             json_string_value(json_object_get(r, "accessToken")));
    json_decref(r);
}

/* Opens /ws?token=… and reads the connected message. */
static void connect_as(struct wsc *c, const struct account *w)
{
    char target[4200];
    snprintf(target, sizeof(target), "/ws?token=%s", w->access);
    cr_assert_eq(wsc_open(c, s.port, target, NULL), 101, "%s", c->head);
    json_t *m;
    cr_assert(wsc_expect_type(c, "connected", &m, 3000));
    cr_assert_str_eq(json_string_value(json_object_get(m, "userId")), w->user_id);
    json_decref(m);
}

static void send_json(struct wsc *c, const char *fmt, ...) ZY_PRINTF(2, 3);
static void send_json(struct wsc *c, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    cr_assert_eq(wsc_send_text(c, buf), 0);
}

/* Sends {"type":"subscribe","room"} and returns the answer's type ("subscribed" / "error"). */
static const char *subscribe(struct wsc *c, const char *room)
{
    static char type[32];
    send_json(c, "{\"type\":\"subscribe\",\"room\":\"%s\"}", room);
    json_t *m = wsc_recv_json(c, 3000);
    cr_assert_not_null(m, "no answer to subscribe %s", room);
    snprintf(type, sizeof(type), "%s", json_string_value(json_object_get(m, "type")));
    if (strcmp(type, "subscribed") == 0)
        cr_assert_str_eq(json_string_value(json_object_get(m, "room")), room);
    else
        cr_assert_str_eq(json_string_value(json_object_get(m, "message")), "Access denied to room");
    json_decref(m);
    return type;
}

static void expect_error(struct wsc *c, const char *message_prefix)
{
    json_t *m;
    cr_assert(wsc_expect_type(c, "error", &m, 3000), "no error message");
    const char *msg = json_string_value(json_object_get(m, "message"));
    cr_assert_not_null(msg);
    cr_assert_eq(strncmp(msg, message_prefix, strlen(message_prefix)), 0, "message: %s", msg);
    json_decref(m);
}

static void expect_pong(struct wsc *c)
{
    send_json(c, "{\"type\":\"ping\"}");
    cr_assert(wsc_expect_type(c, "pong", NULL, 3000), "the connection no longer answers");
}

static void expect_close(struct wsc *c, int code, const char *reason)
{
    char got[128] = "";
    int rc = wsc_wait_close(c, got, sizeof(got), 5000);
    cr_assert_eq(rc, code, "close code %d (%s), expected %d", rc, got, code);
    if (reason)
        cr_assert_str_eq(got, reason);
    cr_assert(wsc_wait_eof(c, 3000), "the server kept the TCP connection after the close");
}

/* ---- the handshake ------------------------------------------------------------------- */

Test(ws, plain_http_get_is_426_and_bad_handshakes_are_refused)
{
    start(NULL);
    struct http_result r;
    cr_assert_eq(http_do(s.port, "GET", "/ws", NULL, NULL, 0, &r), 0);
    cr_assert_eq(r.status, 426);
    json_t *b = http_json(&r);
    cr_assert_str_eq(json_string_value(json_object_get(b, "error")), "HTTP_ERROR");
    cr_assert_eq(json_integer_value(json_object_get(b, "statusCode")), 426);
    json_decref(b);
    char up[64];
    cr_assert(http_header(&r, "Upgrade", up, sizeof(up)));
    cr_assert_str_eq(up, "websocket");
    http_result_free(&r);

    struct wsc c;
    cr_assert_eq(
        wsc_open_raw(&c, s.port,
                     "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 8\r\n\r\n"),
        426);
    cr_assert_not_null(strstr(c.head, "Sec-WebSocket-Version: 13"), "%s", c.head);
    wsc_close(&c);
    cr_assert_eq(wsc_open_raw(&c, s.port,
                              "GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                              "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: short\r\n"
                              "Sec-WebSocket-Version: 13\r\n\r\n"),
                 400);
    wsc_close(&c);
    /* a POST is no upgrade */
    cr_assert_eq(
        wsc_open_raw(&c, s.port,
                     "POST /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"),
        405);
    wsc_close(&c);
}

/* ---- authentication close codes ----------------------------------------------------- */

Test(ws, missing_and_invalid_tokens_close_4001_4002)
{
    start(NULL);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc c;
    cr_assert_eq(wsc_open(&c, s.port, "/ws", NULL), 101);
    expect_close(&c, 4001, "Missing authentication token");
    wsc_close(&c);
    cr_assert_eq(wsc_open(&c, s.port, "/ws?token=", NULL), 101);
    expect_close(&c, 4001, "Missing authentication token");
    wsc_close(&c);
    cr_assert_eq(wsc_open(&c, s.port, "/ws?token=not.a.jwt", NULL), 101);
    expect_close(&c, 4002, "Invalid authentication token");
    wsc_close(&c);

    /* signed with another key */
    struct jwt_claims cl;
    cr_assert_eq(jwt_verify(a.access, (const unsigned char *)s.env.cfg.jwt_secret,
                            strlen(s.env.cfg.jwt_secret), s.env.cfg.api_url, AUTH_AUDIENCE,
                            auth_now(), &cl, NULL),
                 JWT_OK);
    char *forged = NULL;
    const char *other = "another-secret-another-secret-another-secret!";
    cr_assert_eq(jwt_sign(&cl, (const unsigned char *)other, strlen(other), &forged), JWT_OK);
    char target[4200];
    snprintf(target, sizeof(target), "/ws?token=%s", forged);
    cr_assert_eq(wsc_open(&c, s.port, target, NULL), 101);
    expect_close(&c, 4002, "Invalid authentication token");
    wsc_close(&c);
    free(forged);

    /* already expired */
    cl.iat = auth_now() - 100;
    cl.exp = auth_now() - 10;
    char *expired = NULL;
    cr_assert_eq(jwt_sign(&cl, (const unsigned char *)s.env.cfg.jwt_secret,
                          strlen(s.env.cfg.jwt_secret), &expired),
                 JWT_OK);
    snprintf(target, sizeof(target), "/ws?token=%s", expired);
    cr_assert_eq(wsc_open(&c, s.port, target, NULL), 101);
    expect_close(&c, 4002, "Invalid authentication token");
    wsc_close(&c);
    free(expired);
    jwt_claims_free(&cl);

    /* a revoked session: signed out, the access token is refused at once */
    cr_assert_eq(api_req(s.env.app, "POST", "/api/v1/auth/logout", a.access, "{}", NULL), 204);
    snprintf(target, sizeof(target), "/ws?token=%s", a.access);
    cr_assert_eq(wsc_open(&c, s.port, target, NULL), 101);
    expect_close(&c, 4002, "Invalid authentication token");
    wsc_close(&c);
}

Test(ws, database_failure_at_connect_closes_4000)
{
    start(NULL);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    if (tdb_is_pg()) {
        tenv_outage_begin(&s.env);
    } else {
        /* SQLite cannot go down while this process holds it open: break the session lookup */
        struct db_conn *c = dbt_acquire(s.env.db);
        dbt_exec_ok(c, "ALTER TABLE sessions RENAME TO sessions_gone");
        db_release(c);
    }
    struct wsc c;
    char target[4200];
    snprintf(target, sizeof(target), "/ws?token=%s", a.access);
    cr_assert_eq(wsc_open(&c, s.port, target, NULL), 101);
    expect_close(&c, 4000, "Connection error");
    wsc_close(&c);
    if (tdb_is_pg())
        tenv_outage_end(&s.env);
}

/* ---- the protocol -------------------------------------------------------------------- */

Test(ws, connected_subscribe_unsubscribe_ping_and_errors)
{
    start(NULL);
    struct account a, b;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    accounts_signup(s.env.app, "b@ws.example", NULL, &b);
    struct wsc c;
    connect_as(&c, &a);
    expect_pong(&c);

    char room[128];
    snprintf(room, sizeof(room), "tenant:%s:dashboard", a.tenant_id);
    cr_assert_str_eq(subscribe(&c, room), "subscribed");
    cr_assert_str_eq(subscribe(&c, room), "subscribed", "subscribing twice is harmless");
    send_json(&c, "{\"type\":\"unsubscribe\",\"room\":\"%s\"}", room);
    json_t *m;
    cr_assert(wsc_expect_type(&c, "unsubscribed", &m, 3000));
    cr_assert_str_eq(json_string_value(json_object_get(m, "room")), room);
    json_decref(m);

    /* other tenants' rooms, rooms without the prefix, lookalike prefixes */
    snprintf(room, sizeof(room), "tenant:%s:dashboard", b.tenant_id);
    cr_assert_str_eq(subscribe(&c, room), "error");
    cr_assert_str_eq(subscribe(&c, "dashboard"), "error");
    snprintf(room, sizeof(room), "tenant:%sX:dashboard", a.tenant_id);
    cr_assert_str_eq(subscribe(&c, room), "error");
    snprintf(room, sizeof(room), "tenant:%s", a.tenant_id);
    cr_assert_str_eq(subscribe(&c, room), "error");

    /* answered with an error, the connection kept */
    send_json(&c, "{\"type\":\"dance\"}");
    expect_error(&c, "Unknown message type: dance");
    cr_assert_eq(wsc_send_text(&c, "{not json"), 0);
    expect_error(&c, "Invalid JSON");
    cr_assert_eq(wsc_send_text(&c, "[1,2]"), 0);
    expect_error(&c, "Invalid message");
    send_json(&c, "{\"type\":42}");
    expect_error(&c, "Invalid message");
    send_json(&c, "{\"type\":\"subscribe\"}");
    expect_error(&c, "Missing room");
    send_json(&c, "{\"type\":\"subscribe\",\"room\":7}");
    expect_error(&c, "Missing room");
    cr_assert_eq(wsc_send_frame(&c, true, 2, "{\"type\":\"ping\"}", 15, true), 0);
    cr_assert(wsc_expect_type(&c, "pong", NULL, 3000), "binary frames carry JSON too");
    expect_pong(&c);

    /* the client closes: the server answers with the same code and ends the connection */
    uint8_t body[2] = {0x03, 0xe8}; /* 1000 */
    cr_assert_eq(wsc_send_frame(&c, true, 8, body, 2, true), 0);
    struct wsc_msg cm;
    cr_assert_eq(wsc_recv(&c, &cm, 3000, false), 1);
    cr_assert_eq(cm.opcode, 8);
    cr_assert_eq(cm.close_code, 1000);
    wsc_msg_free(&cm);
    cr_assert(wsc_wait_eof(&c, 3000));
    wsc_close(&c);
}

Test(ws, room_rules_user_and_execution_rooms)
{
    start(NULL);
    struct account owner, member;
    accounts_signup(s.env.app, "owner@ws.example", NULL, &owner);
    roleless_member(&owner, "member@ws.example", &member);
    struct wsc o, m;
    connect_as(&o, &owner);
    connect_as(&m, &member);
    char room[200];
    /* user rooms: one's own only */
    snprintf(room, sizeof(room), "tenant:%s:user:%s", owner.tenant_id, owner.user_id);
    cr_assert_str_eq(subscribe(&o, room), "subscribed");
    cr_assert_str_eq(subscribe(&m, room), "error");
    snprintf(room, sizeof(room), "tenant:%s:user:%s", member.tenant_id, member.user_id);
    cr_assert_str_eq(subscribe(&m, room), "subscribed");
    /* execution rooms: canViewWorkflows (the owner has it, a member without roles not) */
    snprintf(room, sizeof(room), "tenant:%s:execution:0190f1d2-0000-7000-8000-000000000001",
             owner.tenant_id);
    cr_assert_str_eq(subscribe(&o, room), "subscribed");
    cr_assert_str_eq(subscribe(&m, room), "error");
    snprintf(room, sizeof(room), "tenant:%s:execution:", owner.tenant_id);
    cr_assert_str_eq(subscribe(&o, room), "error", "an execution room needs an id");
    /* job rooms and free-form rooms: any member */
    snprintf(room, sizeof(room), "tenant:%s:job:42", owner.tenant_id);
    cr_assert_str_eq(subscribe(&m, room), "subscribed");
    /* names too long or with control characters */
    char longroom[400];
    int n = snprintf(longroom, sizeof(longroom), "tenant:%s:", owner.tenant_id);
    memset(longroom + n, 'x', 250);
    longroom[n + 250] = '\0';
    cr_assert_str_eq(subscribe(&o, longroom), "error");
    snprintf(room, sizeof(room), "tenant:%s:a\\u0001b", owner.tenant_id);
    send_json(&o, "{\"type\":\"subscribe\",\"room\":\"%s\"}", room);
    expect_error(&o, "Access denied to room");
    wsc_close(&o);
    wsc_close(&m);
}

static int deny_odd(struct db_conn *db, const struct ws_principal *who, const char *id, void *arg)
{
    (void)arg;
    /* a real check queries the tenant's rows; this one proves it runs with the tenant set
     * (no cr_assert: this runs on a worker thread) */
    if (!db_tenant(db) || strcmp(db_tenant(db), who->tenant_id) != 0)
        return -1;
    return id[strlen(id) - 1] % 2 == 0 ? 1 : 0;
}

static int broken_check(struct db_conn *db, const struct ws_principal *who, const char *id,
                        void *arg)
{
    (void)db;
    (void)who;
    (void)id;
    (void)arg;
    return -1;
}

Test(ws, registered_room_checks_decide)
{
    cr_assert_eq(ws_rooms_register("execution", deny_odd, NULL), 0);
    cr_assert_eq(ws_rooms_register("broken", broken_check, NULL), 0);
    cr_assert_eq(ws_rooms_register("user", deny_odd, NULL), -1, "the user rule is fixed");
    cr_assert_eq(ws_rooms_register("bad kind", deny_odd, NULL), -1);
    start(NULL);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc c;
    connect_as(&c, &a);
    char room[200];
    snprintf(room, sizeof(room), "tenant:%s:execution:e2", a.tenant_id);
    cr_assert_str_eq(subscribe(&c, room), "subscribed");
    snprintf(room, sizeof(room), "tenant:%s:execution:e3", a.tenant_id);
    cr_assert_str_eq(subscribe(&c, room), "error");
    snprintf(room, sizeof(room), "tenant:%s:broken:x", a.tenant_id);
    send_json(&c, "{\"type\":\"subscribe\",\"room\":\"%s\"}", room);
    expect_error(&c, "Could not check access to room");
    expect_pong(&c);
    wsc_close(&c);
}

static int slow_yes(struct db_conn *db, const struct ws_principal *who, const char *id, void *arg)
{
    (void)db;
    (void)who;
    (void)id;
    (void)arg;
    usleep(50 * 1000);
    return 1;
}

Test(ws, room_checks_in_flight_are_bounded_per_client)
{
    cr_assert_eq(ws_rooms_register("execution", slow_yes, NULL), 0);
    static const char *const extra[] = {"WS_CHECK_THREADS=1", NULL};
    start(extra);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc c;
    connect_as(&c, &a);
    for (int i = 0; i < 20; i++)
        send_json(&c, "{\"type\":\"subscribe\",\"room\":\"tenant:%s:execution:e%d\"}", a.tenant_id,
                  i);
    int subscribed = 0, refused = 0;
    for (int i = 0; i < 20; i++) {
        json_t *m = wsc_recv_json(&c, 5000);
        cr_assert_not_null(m, "answer %d missing", i);
        const char *type = json_string_value(json_object_get(m, "type"));
        if (strcmp(type, "subscribed") == 0)
            subscribed++;
        else if (strncmp(json_string_value(json_object_get(m, "message")),
                         "Too many subscriptions being checked", 36) == 0)
            refused++;
        json_decref(m);
    }
    cr_assert_eq(subscribed, 16);
    cr_assert_eq(refused, 4);
    wsc_close(&c);
}

/* ---- RFC 6455 ------------------------------------------------------------------------ */

Test(ws, fragments_are_reassembled_with_control_frames_between)
{
    start(NULL);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc c;
    connect_as(&c, &a);
    cr_assert_eq(wsc_send_frame(&c, false, 1, "{\"ty", 4, true), 0);
    cr_assert_eq(wsc_send_frame(&c, true, 9, "hb", 2, true), 0); /* a ping in the middle */
    cr_assert_eq(wsc_send_frame(&c, false, 0, "pe\":\"pi", 7, true), 0);
    cr_assert_eq(wsc_send_frame(&c, true, 0, "ng\"}", 4, true), 0);
    /* the ping gets its pong frame with the same payload, the message its answer (in either
     * order: the pong is a control frame, free to overtake) */
    bool pong_frame = false, pong_msg = false;
    for (int i = 0; i < 2; i++) {
        struct wsc_msg m;
        cr_assert_eq(wsc_recv(&c, &m, 3000, true), 1);
        if (m.opcode == 10) {
            cr_assert_eq(m.len, 2);
            cr_assert_str_eq(m.data, "hb");
            pong_frame = true;
        } else {
            cr_assert_eq(m.opcode, 1);
            cr_assert_str_eq(m.data, "{\"type\":\"pong\"}");
            pong_msg = true;
        }
        wsc_msg_free(&m);
    }
    cr_assert(pong_frame && pong_msg);
    /* a message split in one-byte frames */
    const char *msg = "{\"type\":\"ping\"}";
    for (size_t i = 0; msg[i]; i++)
        cr_assert_eq(wsc_send_frame(&c, msg[i + 1] == '\0', i ? 0 : 1, msg + i, 1, true), 0);
    cr_assert(wsc_expect_type(&c, "pong", NULL, 3000));
    wsc_close(&c);
}

Test(ws, unmasked_client_frame_closes_1002)
{
    start(NULL);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc c;
    connect_as(&c, &a);
    cr_assert_eq(wsc_send_frame(&c, true, 1, "{\"type\":\"ping\"}", 15, false), 0);
    expect_close(&c, 1002, NULL);
    wsc_close(&c);
}

Test(ws, invalid_utf8_closes_1007)
{
    start(NULL);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc c;
    connect_as(&c, &a);
    cr_assert_eq(wsc_send_frame(&c, true, 1, "{\"type\":\"\xc0\xaf\"}", 13, true), 0);
    expect_close(&c, 1007, NULL);
    wsc_close(&c);
    /* split across fragments: the sequence is checked as a whole */
    connect_as(&c, &a);
    cr_assert_eq(wsc_send_frame(&c, false, 1, "\"caf\xc3", 5, true), 0);
    cr_assert_eq(wsc_send_frame(&c, true, 0, "\xa9\"", 2, true), 0);
    expect_error(&c, "Invalid message"); /* valid UTF-8, a JSON string: not an object */
    cr_assert_eq(wsc_send_frame(&c, false, 1, "\"\xed", 2, true), 0);
    cr_assert_eq(wsc_send_frame(&c, true, 0, "\xa0\x80\"", 3, true), 0); /* a surrogate */
    expect_close(&c, 1007, NULL);
    wsc_close(&c);
}

Test(ws, oversized_message_closes_1009)
{
    start(NULL); /* WS_MAX_MESSAGE_BYTES=4096 */
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc c;
    connect_as(&c, &a);
    char *big = xmalloc(5000);
    memset(big, ' ', 5000);
    memcpy(big, "{\"type\":\"ping\"", 14);
    big[4999] = '}';
    /* just under the limit is fine */
    cr_assert_eq(wsc_send_frame(&c, true, 1, big + 5000 - 4096, 4096, true), 0);
    expect_error(&c, "Invalid JSON");
    cr_assert_eq(wsc_send_frame(&c, true, 1, big, 5000, true), 0);
    expect_close(&c, 1009, NULL);
    wsc_close(&c);
    /* the limit holds for a fragmented message as a whole */
    connect_as(&c, &a);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(wsc_send_frame(&c, false, i ? 0 : 1, big, 1200, true), 0);
    expect_close(&c, 1009, NULL);
    wsc_close(&c);
    free(big);
}

Test(ws, frames_sent_with_the_request_are_read)
{
    start(NULL);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    uint8_t frame[64];
    size_t n = wsc_frame(frame, true, 1, "{\"type\":\"ping\"}", 15, true);
    char target[4200];
    snprintf(target, sizeof(target), "/ws?token=%s", a.access);
    struct wsc c;
    cr_assert_eq(wsc_open_with(&c, s.port, target, frame, n), 101);
    cr_assert(wsc_expect_type(&c, "connected", NULL, 3000));
    cr_assert(wsc_expect_type(&c, "pong", NULL, 3000));
    wsc_close(&c);
}

/* ---- broadcasts ---------------------------------------------------------------------- */

struct pub_arg {
    struct realtime *rt;
    const char *room;
    int from, count;
};

static void *publisher(void *p)
{
    struct pub_arg *a = p;
    for (int i = a->from; i < a->from + a->count; i++) {
        char msg[64];
        int n = snprintf(msg, sizeof(msg), "{\"type\":\"tick\",\"n\":%d}", i);
        realtime_publish_room(a->rt, a->room, msg, (size_t)n);
    }
    return NULL;
}

Test(ws, broadcast_to_room_and_user_from_other_threads)
{
    start(NULL);
    struct account a, b;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    accounts_signup(s.env.app, "b@ws.example", NULL, &b);
    struct wsc a1, a2, b1;
    connect_as(&a1, &a);
    connect_as(&a2, &a);
    connect_as(&b1, &b);
    char room[128];
    snprintf(room, sizeof(room), "tenant:%s:news", a.tenant_id);
    cr_assert_str_eq(subscribe(&a1, room), "subscribed");
    struct realtime *rt = app_realtime(s.env.app);

    /* four threads at once: every message arrives once; each thread's in its order */
    pthread_t th[4];
    struct pub_arg args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct pub_arg){rt, room, i * 1000, 250};
        pthread_create(&th[i], NULL, publisher, &args[i]);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    int last[4] = {-1, -1, -1, -1}, got = 0;
    while (got < 1000) {
        json_t *m = wsc_recv_json(&a1, 5000);
        cr_assert_not_null(m, "only %d of 1000 messages arrived", got);
        cr_assert_str_eq(json_string_value(json_object_get(m, "type")), "tick");
        int n = (int)json_integer_value(json_object_get(m, "n"));
        cr_assert_gt(n, last[n / 1000], "out of order or twice: %d", n);
        last[n / 1000] = n;
        got++;
        json_decref(m);
    }
    /* the other socket of the same user is not in the room */
    expect_pong(&a2);

    /* broadcastToUser: every socket of that user, nobody else */
    const char *note = "{\"type\":\"notification\",\"text\":\"hi\"}";
    cr_assert_eq(realtime_publish_user(rt, a.user_id, note, strlen(note)), 0);
    json_t *m;
    cr_assert(wsc_expect_type(&a1, "notification", &m, 3000));
    cr_assert_str_eq(json_string_value(json_object_get(m, "text")), "hi");
    json_decref(m);
    cr_assert(wsc_expect_type(&a2, "notification", NULL, 3000));
    expect_pong(&b1); /* b got nothing: its next message is the pong */

    /* after unsubscribing, nothing more from the room */
    send_json(&a1, "{\"type\":\"unsubscribe\",\"room\":\"%s\"}", room);
    cr_assert(wsc_expect_type(&a1, "unsubscribed", NULL, 3000));
    realtime_publish_room(rt, room, "{\"type\":\"late\"}", 15);
    expect_pong(&a1);

    /* idle sockets give their framing state back */
    struct ws_hub_stats st;
    for (int i = 0; i < 100; i++) {
        ws_hub_stats(server_hub(s.srv), &st);
        if (st.framing == 0)
            break;
        usleep(20000);
    }
    cr_assert_eq(st.framing, 0, "%u sockets still hold a wslay context", st.framing);
    cr_assert_eq(st.connections, 3);
    wsc_close(&a1);
    wsc_close(&a2);
    wsc_close(&b1);
}

struct firehose {
    struct realtime *rt;
    const char *room;
    int total;
    atomic_int read; /* messages the fast client has read */
};

/* 4 KB messages as fast as the fast client reads them, never more than 8 (32 KB) ahead of it:
 * whatever the machine's speed (sanitizers, a loaded CI box) the fast client's queue never
 * fills, while the slow client, which reads nothing, must overflow its 64 KB queue. */
static void *firehose(void *p)
{
    struct firehose *f = p;
    char *msg = xmalloc(4200);
    for (int i = 0; i < f->total; i++) {
        while (i - atomic_load(&f->read) > 8)
            usleep(100);
        int n = snprintf(msg, 4200, "{\"type\":\"blob\",\"n\":%d,\"pad\":\"%04000d\"}", i, 0);
        realtime_publish_room(f->rt, f->room, msg, (size_t)n);
    }
    free(msg);
    return NULL;
}

Test(ws, slow_consumer_is_dropped_without_slowing_the_others)
{
    static const char *const extra[] = {"WS_SEND_QUEUE_BYTES=65536", NULL};
    start(extra);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc slow, fast;
    connect_as(&slow, &a);
    connect_as(&fast, &a);
    /* the slow client reads nothing, with a tiny receive window */
    int small = 4096;
    setsockopt(slow.fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    char room[128];
    snprintf(room, sizeof(room), "tenant:%s:firehose", a.tenant_id);
    cr_assert_str_eq(subscribe(&slow, room), "subscribed");
    cr_assert_str_eq(subscribe(&fast, room), "subscribed");
    struct firehose f = {app_realtime(s.env.app), room, 3000, 0};
    uint64_t t0 = zy_now_ns();
    pthread_t th;
    pthread_create(&th, NULL, firehose, &f);
    for (int got = 0; got < f.total; got++) {
        json_t *m = wsc_recv_json(&fast, 5000);
        cr_assert_not_null(m, "the fast client got %d of %d", got, f.total);
        cr_assert_eq(json_integer_value(json_object_get(m, "n")), got);
        json_decref(m);
        atomic_store(&f.read, got + 1);
    }
    pthread_join(th, NULL);
    double secs = (double)(zy_now_ns() - t0) / 1e9;
    cr_assert_lt(secs, 10.0, "the fast client took %.1f s", secs);
    struct ws_hub_stats st;
    ws_hub_stats(server_hub(s.srv), &st);
    cr_assert_eq(st.dropped_slow, 1);
    cr_assert_eq(st.connections, 1);
    cr_assert(wsc_wait_eof(&slow, 5000), "the slow client's connection stayed open");
    expect_pong(&fast);
    wsc_close(&slow);
    wsc_close(&fast);
}

/* ---- the connection's life ----------------------------------------------------------- */

Test(ws, token_expiry_closes_the_socket)
{
    start(NULL);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct jwt_claims cl;
    cr_assert_eq(jwt_verify(a.access, (const unsigned char *)s.env.cfg.jwt_secret,
                            strlen(s.env.cfg.jwt_secret), s.env.cfg.api_url, AUTH_AUDIENCE,
                            auth_now(), &cl, NULL),
                 JWT_OK);
    cl.iat = auth_now();
    cl.exp = cl.iat + 2;
    free(cl.jti);
    cl.jti = NULL;
    char *shortlived = NULL;
    cr_assert_eq(jwt_sign(&cl, (const unsigned char *)s.env.cfg.jwt_secret,
                          strlen(s.env.cfg.jwt_secret), &shortlived),
                 JWT_OK);
    jwt_claims_free(&cl);
    struct account tmp = a;
    snprintf(tmp.access, sizeof(tmp.access), "%s", shortlived);
    free(shortlived);
    struct wsc c;
    connect_as(&c, &tmp);
    expect_pong(&c);
    uint64_t t0 = zy_now_ns();
    expect_close(&c, 4002, "Authentication token expired");
    double secs = (double)(zy_now_ns() - t0) / 1e9;
    cr_assert_lt(secs, 4.5, "closed %.1f s later", secs);
    wsc_close(&c);
}

Test(ws, session_revocation_closes_the_socket)
{
    static const char *const extra[] = {"WS_SESSION_CHECK_MS=200", NULL};
    start(extra);
    struct account a, b;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    accounts_signup(s.env.app, "b@ws.example", NULL, &b);
    struct wsc ca, cb;
    connect_as(&ca, &a);
    connect_as(&cb, &b);
    usleep(500 * 1000);
    expect_pong(&ca); /* live sessions survive the checks */
    /* ended behind the API's back (no announcement): the periodic check finds it */
    struct db_conn *db = dbt_acquire(s.env.db);
    db_set_rls_bypass(db, true);
    cr_assert_eq(db_exec(db, "UPDATE sessions SET revoked_at = not_after WHERE user_id = $1",
                         DB_ARGS(DB_TEXT(a.user_id))),
                 1, "%s", db_errmsg(db));
    db_release(db);
    expect_close(&ca, 4002, "Session has been revoked or has expired");
    expect_pong(&cb);
    wsc_close(&ca);
    wsc_close(&cb);
}

/* Signs w's user in again: a second session, same user. */
static void login_again(const char *email, const struct account *w, struct account *again)
{
    char body[256];
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"password\":\"correct horse battery\"}",
             email);
    json_t *r;
    cr_assert_eq(api_req(s.env.app, "POST", "/api/v1/auth/login", NULL, body, &r), 200);
    *again = *w;
    snprintf(again->access, sizeof(again->access), "%s",
             json_string_value(json_object_get(r, "accessToken")));
    json_decref(r);
}

/* Sign-outs announce themselves: the sockets close at once, not at the next periodic check
 * (30 s by default), and only those of the sessions that ended. */
Test(ws, sign_outs_close_the_sockets_of_those_sessions_at_once)
{
    start(NULL);
    struct account a, a2, a3, b;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    login_again("a@ws.example", &a, &a2);
    login_again("a@ws.example", &a, &a3);
    accounts_signup(s.env.app, "b@ws.example", NULL, &b);
    struct wsc c1, c2, c3, cb;
    connect_as(&c1, &a);
    connect_as(&c2, &a2);
    connect_as(&c3, &a3);
    connect_as(&cb, &b);
    /* one session signs out: its socket is told, then closed; the others stay */
    uint64_t t0 = zy_now_ns();
    cr_assert_eq(api_req(s.env.app, "POST", "/api/v1/auth/logout", a2.access,
                         "{\"scope\":\"local\"}", NULL),
                 204);
    json_t *m;
    cr_assert(wsc_expect_type(&c2, "session.revoked", &m, 3000));
    cr_assert_not_null(json_string_value(json_object_get(m, "sessionId")));
    json_decref(m);
    expect_close(&c2, 4002, "Session has been revoked");
    cr_assert_lt((double)(zy_now_ns() - t0) / 1e9, 3.0);
    expect_pong(&c1);
    expect_pong(&c3);
    /* "others" from the first session: the third closes, the first stays */
    cr_assert_eq(api_req(s.env.app, "POST", "/api/v1/auth/logout", a.access,
                         "{\"scope\":\"others\"}", NULL),
                 204);
    expect_close(&c3, 4002, "Session has been revoked");
    expect_pong(&c1);
    /* another user's sockets never hear of it (the next message is the pong) */
    expect_pong(&cb);
    wsc_close(&c1);
    wsc_close(&c2);
    wsc_close(&c3);
    wsc_close(&cb);
}

Test(ws, heartbeat_pings_idle_clients_and_reaps_dead_ones)
{
    static const char *const extra[] = {"WS_PING_INTERVAL_MS=150", "WS_PONG_TIMEOUT_MS=200", NULL};
    start(extra);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc alive, dead;
    connect_as(&alive, &a);
    connect_as(&dead, &a);
    dead.auto_pong = false;
    /* the live client answers pings as it reads; the dead one never does */
    uint64_t until = zy_now_ns() + 1500 * 1000000ull;
    struct wsc_msg m;
    while (zy_now_ns() < until)
        if (wsc_recv(&alive, &m, 50, false) == 1)
            wsc_msg_free(&m);
    cr_assert_geq(alive.pings, 3, "only %u pings in 1.5 s", alive.pings);
    /* the silent one was pinged, then dropped */
    cr_assert_eq(wsc_recv(&dead, &m, 1000, true), 1);
    cr_assert_eq(m.opcode, 9);
    wsc_msg_free(&m);
    cr_assert(wsc_wait_eof(&dead, 3000), "the silent peer was not reaped");
    expect_pong(&alive);
    wsc_close(&alive);
    wsc_close(&dead);
}

Test(ws, connection_limit_closes_1013)
{
    static const char *const extra[] = {"WS_MAX_CONNECTIONS=2", NULL};
    start(extra);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc c1, c2, c3;
    connect_as(&c1, &a);
    connect_as(&c2, &a);
    char target[4200];
    snprintf(target, sizeof(target), "/ws?token=%s", a.access);
    cr_assert_eq(wsc_open(&c3, s.port, target, NULL), 101);
    expect_close(&c3, 1013, "Too many connections");
    wsc_close(&c3);
    wsc_close(&c1);
    /* a place freed is usable again */
    for (int i = 0; i < 100; i++) {
        struct ws_hub_stats st;
        ws_hub_stats(server_hub(s.srv), &st);
        if (st.connections < 2)
            break;
        usleep(20000);
    }
    connect_as(&c3, &a);
    wsc_close(&c3);
    wsc_close(&c2);
}

Test(ws, shutdown_closes_with_1001)
{
    start(NULL);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc c1, c2;
    connect_as(&c1, &a);
    connect_as(&c2, &a);
    c2.auto_pong = false;
    cr_assert_eq(server_shutdown(s.srv, 5), 0);
    /* c1 answered during the shutdown? it reads after; the server waited for it briefly and
     * went on: what matters is the code it saw */
    expect_close(&c1, 1001, "Server shutting down");
    char reason[64];
    cr_assert_eq(wsc_wait_close(&c2, reason, sizeof(reason), 1000), 1001);
    wsc_close(&c1);
    wsc_close(&c2);
}

/* ---- other processes ----------------------------------------------------------------- */

/* A second app on the same database, as a `zygo worker` process would have: its messages
 * reach this server's sockets through the database; the server's own come once. */
Test(ws, messages_from_another_process_arrive_once)
{
    start(NULL);
    struct account a;
    accounts_signup(s.env.app, "a@ws.example", NULL, &a);
    struct wsc c;
    connect_as(&c, &a);
    char room[128];
    snprintf(room, sizeof(room), "tenant:%s:job:7", a.tenant_id);
    cr_assert_str_eq(subscribe(&c, room), "subscribed");

    struct db *db2;
    char err[256];
    cr_assert_eq(db_open(&db2, s.env.tdb.app_url, err, sizeof(err)), 0, "%s", err);
    struct app *other = app_new(&s.env.cfg, db2, NULL, 0);
    struct realtime *rt2 = app_realtime(other);
    const char *m1 = "{\"type\":\"job.progress\",\"progress\":10}";
    cr_assert_eq(realtime_publish_room(rt2, room, m1, strlen(m1)), 0);
    json_t *m;
    cr_assert(wsc_expect_type(&c, "job.progress", &m, 5000), "nothing came from the other app");
    cr_assert_eq(json_integer_value(json_object_get(m, "progress")), 10);
    json_decref(m);
    /* a message longer than a PostgreSQL notification takes the table */
    char *big = xmalloc(20000);
    int n = snprintf(big, 20000, "{\"type\":\"job.log\",\"text\":\"%015000d\"}", 0);
    cr_assert_eq(realtime_publish_room(rt2, room, big, (size_t)n), 0);
    cr_assert(wsc_expect_type(&c, "job.log", &m, 5000));
    cr_assert_eq(strlen(json_string_value(json_object_get(m, "text"))), 15000);
    json_decref(m);
    free(big);
    /* a user message too */
    cr_assert_eq(realtime_publish_user(rt2, a.user_id, "{\"type\":\"dm\"}", 13), 0);
    cr_assert(wsc_expect_type(&c, "dm", NULL, 5000));

    /* the server's own publication: delivered locally, not again through the database */
    struct realtime *rt1 = app_realtime(s.env.app);
    cr_assert_eq(realtime_publish_room(rt1, room, "{\"type\":\"own\"}", 14), 0);
    cr_assert(wsc_expect_type(&c, "own", NULL, 3000));
    usleep(600 * 1000); /* several relay rounds */
    expect_pong(&c);

    if (tdb_is_pg()) {
        /* the LISTEN connection dies: the reader reconnects and delivery resumes */
        struct db_conn *oc = dbt_acquire(s.env.db);
        static const char q[] = "SELECT COALESCE(MAX(pid), 0) FROM pg_stat_activity"
                                " WHERE application_name = 'zygo_realtime'"
                                " AND datname = current_database()";
        int64_t pid = dbt_query_int(oc, q, DB_NOARGS);
        cr_assert_gt(pid, 0, "no LISTEN connection in pg_stat_activity");
        char kill[128];
        snprintf(kill, sizeof(kill), "SELECT pg_terminate_backend(%lld)", (long long)pid);
        pgtest_admin_exec(kill);
        int64_t again = 0;
        for (int i = 0; i < 100 && (again == 0 || again == pid); i++) {
            usleep(50000);
            again = dbt_query_int(oc, q, DB_NOARGS);
        }
        db_release(oc);
        cr_assert(again != 0 && again != pid, "the LISTEN connection was not reopened");
        bool seen = false;
        for (int i = 0; i < 40 && !seen; i++) {
            realtime_publish_room(rt2, room, "{\"type\":\"again\"}", 16);
            json_t *x = wsc_recv_json(&c, 250);
            seen = x && strcmp(json_string_value(json_object_get(x, "type")), "again") == 0;
            json_decref(x);
        }
        cr_assert(seen, "no delivery after the LISTEN connection was killed");
    }
    app_free(other);
    db_close(db2);
    wsc_close(&c);
}

/* ---- the API document ---------------------------------------------------------------- */

Test(ws, openapi_documents_the_endpoint)
{
    start(NULL);
    size_t len;
    const char *doc = app_openapi_json(s.env.app, &len);
    json_t *d = json_loadb(doc, len, 0, NULL);
    json_t *op = json_object_get(json_object_get(json_object_get(d, "paths"), "/ws"), "get");
    cr_assert_not_null(op);
    cr_assert_str_eq(json_string_value(json_object_get(op, "operationId")), "openWebSocket");
    json_t *resp = json_object_get(op, "responses");
    cr_assert_not_null(json_object_get(resp, "101"));
    cr_assert_not_null(json_object_get(resp, "426"));
    json_decref(d);
}
