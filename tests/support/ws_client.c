/* ws_client.c — see ws_client.h. */
#include "lib/common.h"

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sodium.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "support.h"
#include "ws/handshake.h"
#include "ws_client.h"

static uint64_t now_ms(void)
{
    return zy_now_ns() / 1000000u;
}

static int send_all(int fd, const void *data, size_t n)
{
    const uint8_t *p = data;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads what is there into the buffer, waiting up to ms; 1 read something, 0 timeout,
 * -1 end of stream. */
static int fill(struct wsc *w, int ms)
{
    if (w->eof)
        return -1;
    struct pollfd p = {.fd = w->fd, .events = POLLIN};
    int r = poll(&p, 1, ms < 0 ? 0 : ms);
    if (r <= 0)
        return 0;
    if (w->cap - w->len < 65536) {
        w->cap = w->cap ? w->cap * 2 : 131072;
        w->buf = xrealloc(w->buf, w->cap);
    }
    ssize_t n = recv(w->fd, w->buf + w->len, w->cap - w->len, 0);
    if (n <= 0) {
        w->eof = true;
        return -1;
    }
    w->len += (size_t)n;
    return 1;
}

static void consume(struct wsc *w, size_t n)
{
    memmove(w->buf, w->buf + n, w->len - n);
    w->len -= n;
}

static int connect_to(int port)
{
    int fd = tcp_connect(port);
    cr_assert_geq(fd, 0, "connect to port %d", port);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Reads the response head; leftover bytes stay in the buffer. */
static int read_head(struct wsc *w)
{
    uint64_t deadline = now_ms() + 5000;
    char *end = NULL;
    while (!end) {
        if (w->len && (end = memmem(w->buf, w->len, "\r\n\r\n", 4)))
            break;
        if (now_ms() >= deadline || fill(w, 50) < 0)
            break;
    }
    if (!end)
        return -1;
    size_t hl = (size_t)(end - (char *)w->buf) + 4;
    snprintf(w->head, sizeof(w->head), "%.*s", (int)hl, (char *)w->buf);
    consume(w, hl);
    int status = -1;
    if (sscanf(w->head, "HTTP/1.1 %d", &status) != 1)
        return -1;
    return status;
}

static bool head_value(const char *head, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = head; (p = strstr(p, "\r\n"));) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (*v == ' ')
                v++;
            snprintf(out, n, "%.*s", (int)strcspn(v, "\r"), v);
            return true;
        }
    }
    return false;
}

static void init(struct wsc *w)
{
    memset(w, 0, sizeof(*w));
    w->fd = -1;
    w->auto_pong = true;
}

static int handshake(struct wsc *w, int port, const char *target, const char *const *headers,
                     const void *first, size_t n)
{
    init(w);
    w->fd = connect_to(port);
    unsigned char rnd[16];
    randombytes_buf(rnd, sizeof(rnd));
    char key[32];
    sodium_bin2base64(key, sizeof(key), rnd, sizeof(rnd), sodium_base64_VARIANT_ORIGINAL);
    char req[8192];
    int len = snprintf(req, sizeof(req),
                       "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                       "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                       "Sec-WebSocket-Version: 13\r\n",
                       target, port, key);
    for (size_t i = 0; headers && headers[i]; i++)
        len += snprintf(req + len, sizeof(req) - (size_t)len, "%s\r\n", headers[i]);
    len += snprintf(req + len, sizeof(req) - (size_t)len, "\r\n");
    cr_assert_lt((size_t)len, sizeof(req) - n);
    if (n)
        memcpy(req + len, first, n);
    cr_assert_eq(send_all(w->fd, req, (size_t)len + n), 0);
    w->status = read_head(w);
    if (w->status == 101) {
        char want[WS_ACCEPT_LEN + 1], got[64] = "";
        ws_handshake_accept(key, want);
        cr_assert(head_value(w->head, "Sec-WebSocket-Accept", got, sizeof(got)),
                  "no Sec-WebSocket-Accept in %s", w->head);
        cr_assert_str_eq(got, want);
        char up[64] = "";
        cr_assert(head_value(w->head, "Upgrade", up, sizeof(up)));
        cr_assert_eq(strcasecmp(up, "websocket"), 0);
    }
    return w->status;
}

int wsc_open(struct wsc *w, int port, const char *target, const char *const *headers)
{
    return handshake(w, port, target, headers, NULL, 0);
}

int wsc_open_with(struct wsc *w, int port, const char *target, const void *first, size_t n)
{
    return handshake(w, port, target, NULL, first, n);
}

int wsc_open_raw(struct wsc *w, int port, const char *request)
{
    init(w);
    w->fd = connect_to(port);
    cr_assert_eq(send_all(w->fd, request, strlen(request)), 0);
    w->status = read_head(w);
    return w->status;
}

size_t wsc_frame(uint8_t *out, bool fin, int opcode, const void *data, size_t n, bool mask)
{
    size_t h = 0;
    out[h++] = (uint8_t)((fin ? 0x80 : 0) | (opcode & 0x0f));
    uint8_t m = mask ? 0x80 : 0;
    if (n < 126) {
        out[h++] = (uint8_t)(m | n);
    } else if (n <= 0xffff) {
        out[h++] = (uint8_t)(m | 126);
        out[h++] = (uint8_t)(n >> 8);
        out[h++] = (uint8_t)n;
    } else {
        out[h++] = (uint8_t)(m | 127);
        for (int i = 7; i >= 0; i--)
            out[h++] = (uint8_t)((uint64_t)n >> (8 * i));
    }
    uint8_t key[4] = {0};
    if (mask) {
        randombytes_buf(key, sizeof(key));
        memcpy(out + h, key, 4);
        h += 4;
    }
    const uint8_t *p = data;
    for (size_t i = 0; i < n; i++)
        out[h + i] = mask ? p[i] ^ key[i % 4] : p[i];
    return h + n;
}

int wsc_send_frame(struct wsc *w, bool fin, int opcode, const void *data, size_t n, bool mask)
{
    uint8_t *f = xmalloc(n + 14);
    size_t len = wsc_frame(f, fin, opcode, data, n, mask);
    int rc = send_all(w->fd, f, len);
    free(f);
    return rc;
}

int wsc_send_text(struct wsc *w, const char *text)
{
    return wsc_send_frame(w, true, 1, text, strlen(text), true);
}

/* One whole frame from the buffer: 1 parsed, 0 more bytes needed. */
static int parse_frame(struct wsc *w, bool *fin, int *op, uint8_t **payload, size_t *n)
{
    if (w->len < 2)
        return 0;
    const uint8_t *b = w->buf;
    cr_assert_eq(b[1] & 0x80, 0, "the server masked a frame");
    cr_assert_eq(b[0] & 0x70, 0, "the server set RSV bits");
    size_t h = 2;
    uint64_t len = b[1] & 0x7f;
    if (len == 126) {
        if (w->len < 4)
            return 0;
        len = (uint64_t)b[2] << 8 | b[3];
        h = 4;
    } else if (len == 127) {
        if (w->len < 10)
            return 0;
        len = 0;
        for (int i = 0; i < 8; i++)
            len = len << 8 | b[2 + i];
        h = 10;
    }
    if (w->len < h + len)
        return 0;
    *fin = b[0] & 0x80;
    *op = b[0] & 0x0f;
    *payload = xmalloc(len + 1);
    memcpy(*payload, b + h, len);
    (*payload)[len] = '\0';
    *n = len;
    consume(w, h + len);
    return 1;
}

int wsc_recv(struct wsc *w, struct wsc_msg *m, int timeout_ms, bool return_control)
{
    memset(m, 0, sizeof(*m));
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    uint8_t *msg = NULL;
    size_t msg_len = 0;
    int msg_op = -1;
    for (;;) {
        bool fin;
        int op;
        uint8_t *p;
        size_t n;
        while (parse_frame(w, &fin, &op, &p, &n)) {
            if (op >= 8) {
                if (op == 9) {
                    w->pings++;
                    if (w->auto_pong)
                        wsc_send_frame(w, true, 10, p, n, true);
                }
                if (op == 8 || return_control) {
                    m->opcode = op;
                    m->data = (char *)p;
                    m->len = n;
                    if (op == 8 && n >= 2) {
                        m->close_code = p[0] << 8 | p[1];
                        snprintf(m->reason, sizeof(m->reason), "%.*s", (int)(n - 2), (char *)p + 2);
                    }
                    free(msg);
                    return 1;
                }
                free(p);
                continue;
            }
            if (op != 0)
                msg_op = op;
            msg = xrealloc(msg, msg_len + n + 1);
            memcpy(msg + msg_len, p, n);
            msg_len += n;
            msg[msg_len] = '\0';
            free(p);
            if (fin) {
                m->opcode = msg_op;
                m->data = (char *)msg;
                m->len = msg_len;
                return 1;
            }
        }
        uint64_t t = now_ms();
        if (t >= deadline) {
            free(msg);
            return 0;
        }
        if (fill(w, (int)ZY_MIN(deadline - t, 50)) < 0) {
            free(msg);
            return -1;
        }
    }
}

void wsc_msg_free(struct wsc_msg *m)
{
    free(m->data);
    m->data = NULL;
}

json_t *wsc_recv_json(struct wsc *w, int timeout_ms)
{
    struct wsc_msg m;
    if (wsc_recv(w, &m, timeout_ms, false) != 1)
        return NULL;
    json_t *v = NULL;
    if (m.opcode == 1)
        v = json_loadb(m.data, m.len, 0, NULL);
    wsc_msg_free(&m);
    return v;
}

bool wsc_expect_type(struct wsc *w, const char *type, json_t **msg, int timeout_ms)
{
    if (msg)
        *msg = NULL;
    json_t *v = wsc_recv_json(w, timeout_ms);
    if (!v)
        return false;
    const char *t = json_string_value(json_object_get(v, "type"));
    bool ok = t && strcmp(t, type) == 0;
    if (!ok) {
        char *s = json_dumps(v, JSON_COMPACT);
        fprintf(stderr, "ws_client: expected type %s, got %s\n", type, s);
        free(s);
    }
    if (msg)
        *msg = v;
    else
        json_decref(v);
    return ok;
}

int wsc_wait_close(struct wsc *w, char *reason, size_t n, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        uint64_t t = now_ms();
        if (t >= deadline)
            return -1;
        struct wsc_msg m;
        int r = wsc_recv(w, &m, (int)(deadline - t), false);
        if (r < 0)
            return 0;
        if (r == 0)
            return -1;
        if (m.opcode == 8) {
            int code = m.close_code;
            if (reason)
                snprintf(reason, n, "%s", m.reason);
            /* the handshake: echo the code */
            uint8_t body[2] = {(uint8_t)(code >> 8), (uint8_t)code};
            wsc_send_frame(w, true, 8, body, code ? 2 : 0, true);
            wsc_msg_free(&m);
            return code;
        }
        wsc_msg_free(&m);
    }
}

bool wsc_wait_eof(struct wsc *w, int timeout_ms)
{
    uint64_t deadline = now_ms() + (uint64_t)timeout_ms;
    while (now_ms() < deadline) {
        if (fill(w, 50) < 0)
            return true;
        w->len = 0;
    }
    return false;
}

void wsc_close(struct wsc *w)
{
    if (w->fd >= 0)
        close(w->fd);
    w->fd = -1;
    free(w->buf);
    w->buf = NULL;
    w->len = w->cap = 0;
}
