/* conn.c — see conn.h. */
#include "lib/common.h"

#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "lib/log.h"
#include "ws/conn.h"
#include "ws/frame.h"

/* One queued frame; the first one may be partly written (c->out_off). */
struct ws_out {
    struct ws_out *next;
    struct ws_frame *f;
};

/* Bytes read from one socket per readiness event, so a client that floods cannot keep the
 * loop from the others; level-triggered epoll reports the rest on the next round. */
#define WS_READ_BUDGET (256 * 1024)
#define WS_IOV_MAX 16

static __thread size_t read_budget;
static __thread struct ws_conn *in_recv; /* the connection inside wslay_event_recv */

static void set_events(struct ws_conn *c, bool out)
{
    if (c->state == WS_DEAD || out == c->want_out)
        return;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | (out ? EPOLLOUT : 0u), .data.ptr = c};
    if (epoll_ctl(c->env->epfd, EPOLL_CTL_MOD, c->fd, &ev) == 0)
        c->want_out = out;
}

void ws_conn_abort(struct ws_conn *c)
{
    if (c->state == WS_DEAD)
        return;
    /* The descriptor is closed later (ws_conn_release), at the owner's safe point: closing it
     * here could let its number be reused while wslay still calls back for this connection. */
    epoll_ctl(c->env->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->state = WS_DEAD;
}

/* Appends f (reference taken over) at offset off; -1 (and the connection aborted) when the
 * queue would exceed its cap. */
static int out_push(struct ws_conn *c, struct ws_frame *f, size_t off)
{
    size_t n = f->len - off;
    if (c->out_bytes + n > c->env->queue_max) {
        ws_frame_unref(f);
        log_msg(LOG_INFO, "ws: dropping a slow client (%zu bytes queued)", c->out_bytes);
        c->overflowed = true;
        /* a reset, not a close: the kernel drops what it still buffers for this client */
        struct linger lg = {.l_onoff = 1, .l_linger = 0};
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
        ws_conn_abort(c);
        return -1;
    }
    struct ws_out *o = xmalloc(sizeof(*o));
    o->next = NULL;
    o->f = f;
    if (c->out_tail)
        c->out_tail->next = o;
    else {
        c->out_head = o;
        c->out_off = (uint32_t)off;
    }
    c->out_tail = o;
    c->out_bytes += n;
    set_events(c, true);
    return 0;
}

/* Writes straight to the socket when nothing is queued before it; returns the bytes written
 * (0 when it would block), or -1 after aborting on a socket error. */
static ssize_t write_now(struct ws_conn *c, const uint8_t *data, size_t n)
{
    if (c->out_head || n == 0)
        return 0;
    for (;;) {
        ssize_t w = send(c->fd, data, n, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        ws_conn_abort(c);
        return -1;
    }
}

static void start_linger(struct ws_conn *c, uint64_t now_ms);

/* The close handshake is over (both close frames exchanged, or ours sent after a protocol
 * error): linger once everything queued is on the wire. */
static bool handshake_over(const struct ws_conn *c)
{
    return c->ev && wslay_event_get_close_sent(c->ev) && !wslay_event_want_read(c->ev);
}

static void out_flush(struct ws_conn *c, uint64_t now_ms)
{
    while (c->out_head && c->state != WS_DEAD) {
        struct iovec iov[WS_IOV_MAX];
        int n = 0;
        size_t off = c->out_off;
        for (struct ws_out *o = c->out_head; o && n < WS_IOV_MAX; o = o->next) {
            iov[n].iov_base = o->f->data + off;
            iov[n].iov_len = o->f->len - off;
            off = 0;
            n++;
        }
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                ws_conn_abort(c);
            return;
        }
        size_t left = (size_t)w;
        c->out_bytes -= left;
        while (left && c->out_head) {
            struct ws_out *o = c->out_head;
            size_t rest = o->f->len - c->out_off;
            if (left < rest) {
                c->out_off += (uint32_t)left;
                break;
            }
            left -= rest;
            c->out_head = o->next;
            if (!c->out_head)
                c->out_tail = NULL;
            c->out_off = 0;
            ws_frame_unref(o->f);
            free(o);
        }
    }
    if (c->state == WS_DEAD)
        return;
    if (!c->out_head) {
        set_events(c, false);
        if (c->state == WS_CLOSING && handshake_over(c))
            start_linger(c, now_ms);
    }
}

int ws_conn_send(struct ws_conn *c, struct ws_frame *f)
{
    if (c->state != WS_OPEN)
        return -1;
    ssize_t w = write_now(c, f->data, f->len);
    if (w < 0)
        return -1;
    if ((size_t)w == f->len)
        return 0;
    return out_push(c, ws_frame_ref(f), (size_t)w);
}

/* ---- wslay callbacks ------------------------------------------------------------------ */

static ssize_t ev_recv(wslay_event_context_ptr ev, uint8_t *buf, size_t len, int flags, void *user)
{
    struct ws_conn *c = user;
    (void)flags;
    if (c->state == WS_DEAD) {
        wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
    if (c->pre) {
        size_t n = ZY_MIN(len, (size_t)(c->pre_len - c->pre_off));
        memcpy(buf, c->pre + c->pre_off, n);
        c->pre_off += (uint32_t)n;
        if (c->pre_off == c->pre_len) {
            free(c->pre);
            c->pre = NULL;
        }
        c->rx_pending += n;
        return (ssize_t)n;
    }
    if (read_budget == 0) {
        wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    for (;;) {
        ssize_t r = recv(c->fd, buf, ZY_MIN(len, read_budget), 0);
        if (r > 0) {
            read_budget -= (size_t)r;
            c->rx_pending += (size_t)r;
            if (c->env->on_activity)
                c->env->on_activity(c);
            return r;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wslay_event_set_error(ev, WSLAY_ERR_WOULDBLOCK);
            return -1;
        }
        /* end of stream or a reset: the peer is gone */
        wslay_event_set_error(ev, WSLAY_ERR_CALLBACK_FAILURE);
        return -1;
    }
}

static ssize_t ev_send(wslay_event_context_ptr ev, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct ws_conn *c = user;
    (void)ev;
    (void)flags;
    /* Always take everything: wslay then never holds half a frame, and the ordering with our
     * own frames is that of one queue. */
    if (c->state == WS_DEAD)
        return (ssize_t)len;
    ssize_t w = write_now(c, data, len);
    if (w >= 0 && (size_t)w < len)
        out_push(c, ws_frame_raw(data + w, len - (size_t)w), 0);
    return (ssize_t)len;
}

static uint64_t wire_len(uint64_t payload)
{
    /* client frames are masked (4 bytes); wslay refuses non-minimal length encodings */
    return 2 + 4 + (payload < 126 ? 0 : payload <= 0xffff ? 2 : 8) + payload;
}

static void on_frame_start(wslay_event_context_ptr ev,
                           const struct wslay_event_on_frame_recv_start_arg *a, void *user)
{
    struct ws_conn *c = user;
    (void)ev;
    c->rx_frame = wire_len(a->payload_length);
    c->rx_fin = a->fin;
    c->rx_op = a->opcode;
}

static void on_frame_end(wslay_event_context_ptr ev, void *user)
{
    struct ws_conn *c = user;
    (void)ev;
    c->rx_pending = c->rx_pending >= c->rx_frame ? c->rx_pending - c->rx_frame : 0;
    c->rx_frame = 0;
    if (!(c->rx_op & 0x8))
        c->rx_frag = !c->rx_fin;
}

static void on_msg(wslay_event_context_ptr ev, const struct wslay_event_on_msg_recv_arg *a,
                   void *user)
{
    struct ws_conn *c = user;
    (void)ev;
    if ((a->opcode == WSLAY_TEXT_FRAME || a->opcode == WSLAY_BINARY_FRAME) && c->state == WS_OPEN &&
        c->env->on_message)
        c->env->on_message(c, a->msg, a->msg_length);
}

static void ev_make(struct ws_conn *c)
{
    if (c->ev)
        return;
    struct wslay_event_callbacks cb = {
        .recv_callback = ev_recv,
        .send_callback = ev_send,
        .on_frame_recv_start_callback = on_frame_start,
        .on_frame_recv_end_callback = on_frame_end,
        .on_msg_recv_callback = on_msg,
    };
    if (wslay_event_context_server_init(&c->ev, &cb, c) != 0)
        zy_oom(sizeof(struct ws_conn));
    wslay_event_config_set_max_recv_msg_length(c->ev, c->env->max_message);
    c->rx_pending = 0;
    c->rx_frame = 0;
    c->rx_frag = false;
}

/* Frees the wslay context when it holds nothing: see conn.h. */
static void maybe_drop_ev(struct ws_conn *c)
{
    if (c->ev && c->state == WS_OPEN && c->rx_pending == 0 && !c->rx_frag && !c->pre &&
        wslay_event_get_queued_msg_count(c->ev) == 0) {
        wslay_event_context_free(c->ev);
        c->ev = NULL;
    }
}

static void start_linger(struct ws_conn *c, uint64_t now_ms)
{
    shutdown(c->fd, SHUT_WR);
    c->state = WS_LINGER;
    c->deadline = now_ms + c->env->close_timeout_ms;
    if (c->ev) {
        wslay_event_context_free(c->ev);
        c->ev = NULL;
    }
}

/* Moves what wslay's event layer has to say (pongs, close frames) into our queue and follows
 * the close handshake. */
static void flush_wslay(struct ws_conn *c, uint64_t now_ms)
{
    if (!c->ev || c->state == WS_DEAD)
        return;
    if (wslay_event_send(c->ev) != 0) {
        ws_conn_abort(c);
        return;
    }
    if (c->state == WS_DEAD)
        return;
    if (wslay_event_get_close_sent(c->ev) && c->state == WS_OPEN) {
        c->state = WS_CLOSING;
        c->deadline = now_ms + c->env->close_timeout_ms;
    }
    if (c->state == WS_CLOSING && handshake_over(c) && !c->out_head)
        start_linger(c, now_ms);
    maybe_drop_ev(c);
}

static void do_read(struct ws_conn *c, uint64_t now_ms)
{
    ev_make(c);
    read_budget = WS_READ_BUDGET;
    in_recv = c;
    int rv = wslay_event_recv(c->ev);
    in_recv = NULL;
    if (c->state == WS_DEAD)
        return;
    if (rv != 0) {
        ws_conn_abort(c); /* the peer went away (or memory ran out) */
        return;
    }
    flush_wslay(c, now_ms);
}

static void drain(struct ws_conn *c)
{
    char sink[4096];
    for (;;) {
        ssize_t r = recv(c->fd, sink, sizeof(sink), 0);
        if (r > 0)
            continue;
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        ws_conn_abort(c); /* the peer closed too: done */
        return;
    }
}

void ws_conn_on_events(struct ws_conn *c, uint32_t events, uint64_t now_ms)
{
    if (c->state == WS_DEAD)
        return;
    if (events & EPOLLERR) {
        ws_conn_abort(c);
        return;
    }
    if (c->state == WS_LINGER) {
        if (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP))
            drain(c);
        return;
    }
    if (events & EPOLLOUT)
        out_flush(c, now_ms);
    if (c->state != WS_DEAD && c->state != WS_LINGER &&
        (events & (EPOLLIN | EPOLLHUP | EPOLLRDHUP) || c->pre))
        do_read(c, now_ms);
}

void ws_conn_close(struct ws_conn *c, uint16_t code, const char *reason, uint64_t now_ms)
{
    if (c->state != WS_OPEN)
        return;
    ev_make(c);
    size_t rl = reason ? ZY_MIN(strlen(reason), (size_t)123) : 0;
    wslay_event_queue_close(c->ev, code, (const uint8_t *)reason, rl);
    c->state = WS_CLOSING;
    c->deadline = now_ms + c->env->close_timeout_ms;
    /* inside wslay_event_recv the frame goes out when it returns (do_read flushes) */
    if (in_recv != c)
        flush_wslay(c, now_ms);
}

void ws_conn_tick(struct ws_conn *c, uint64_t now_ms)
{
    if ((c->state == WS_CLOSING || c->state == WS_LINGER) && now_ms >= c->deadline)
        ws_conn_abort(c);
}

int ws_conn_init(struct ws_conn *c, const struct ws_conn_env *env, int fd, const void *extra,
                 size_t n)
{
    memset(c, 0, sizeof(*c));
    c->env = env;
    c->fd = fd;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        return -1;
    /* libmicrohttpd turns Nagle back on before the upgrade; messages are small and latency
     * matters more than packet count */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(env->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    if (n) {
        c->pre = xmalloc(n);
        memcpy(c->pre, extra, n);
        c->pre_len = (uint32_t)n;
    }
    return 0;
}

void ws_conn_release(struct ws_conn *c)
{
    ws_conn_abort(c);
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    if (c->ev)
        wslay_event_context_free(c->ev);
    c->ev = NULL;
    while (c->out_head) {
        struct ws_out *o = c->out_head;
        c->out_head = o->next;
        ws_frame_unref(o->f);
        free(o);
    }
    c->out_tail = NULL;
    c->out_bytes = 0;
    free(c->pre);
    c->pre = NULL;
}

bool ws_conn_idle(const struct ws_conn *c)
{
    return c->ev == NULL;
}
