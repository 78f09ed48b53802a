/*
 * ws_load.c — the WebSocket load client of bench/run-ws.sh (built by `make bench-ws`).
 *
 * Opens N authenticated WebSocket connections to 127.0.0.1:PORT/ws?token=TOKEN from one epoll
 * loop (at most RAMP handshakes in flight), waits for every {"type":"connected"}, and then:
 *
 *   idle    prints "ready N <seconds to connect>" and keeps the connections open (answering
 *           pings) for HOLD seconds; the caller measures the server meanwhile.
 *   fanout  subscribes every connection to ROOM, then ROUNDS times: notes the time, sends
 *           POST /bench/publish?room=ROOM {"type":"bench","seq":k} on a keep-alive HTTP
 *           connection, and records, for each subscriber, how long until its copy arrived.
 *           Prints the latency percentiles over all N x ROUNDS deliveries and over the rounds'
 *           last deliveries, in milliseconds.
 *
 *   ws_load idle PORT TOKEN N HOLD
 *   ws_load fanout PORT TOKEN N ROOM ROUNDS
 *
 * Deliberately small and blocking where it does not matter (the publish request); the
 * receive path is one non-blocking loop, the same for every server measured.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum phase { P_CONNECTING, P_HANDSHAKE, P_UPGRADED, P_OPEN, P_SUBSCRIBED };

struct conn {
    int fd;
    enum phase phase;
    size_t len;
    uint8_t buf[8192];
    long long got_seq; /* last bench seq received */
    double got_at;     /* when it was read (ms) */
};

static int port;
static const char *token;
static struct conn *conns;
static int nconns;
static int epfd;

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static void die(const char *what)
{
    fprintf(stderr, "ws_load: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int tcp_open(bool nonblock)
{
    int fd = socket(AF_INET, SOCK_STREAM | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0)
        die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0 && errno != EINPROGRESS)
        die("connect");
    return fd;
}

static void send_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            struct pollfd pf = {.fd = fd, .events = POLLOUT};
            poll(&pf, 1, 100);
            continue;
        }
        if (w <= 0)
            die("send");
        c += w;
        n -= (size_t)w;
    }
}

/* A masked client frame (the mask key is fixed: the server only has to unmask). */
static void send_frame(int fd, int opcode, const char *data, size_t n)
{
    uint8_t f[256];
    static const uint8_t key[4] = {0x12, 0x34, 0x56, 0x78};
    if (n > 125)
        return;
    f[0] = (uint8_t)(0x80 | opcode);
    f[1] = (uint8_t)(0x80 | n);
    memcpy(f + 2, key, 4);
    for (size_t i = 0; i < n; i++)
        f[6 + i] = (uint8_t)data[i] ^ key[i % 4];
    send_all(fd, f, 6 + n);
}

static void start_handshake(struct conn *c)
{
    char req[8192];
    int n = snprintf(req, sizeof(req),
                     "GET /ws?token=%s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     token, port);
    send_all(c->fd, req, (size_t)n);
    c->phase = P_HANDSHAKE;
}

/* Handles one text message from the server. */
static void on_text(struct conn *c, const char *m, size_t n)
{
    if (memmem(m, n, "\"connected\"", 11))
        c->phase = P_OPEN;
    else if (memmem(m, n, "\"subscribed\"", 12))
        c->phase = P_SUBSCRIBED;
    else if (memmem(m, n, "\"bench\"", 7)) {
        const char *s = memmem(m, n, "\"seq\":", 6);
        if (s) {
            c->got_seq = strtoll(s + 6, NULL, 10);
            c->got_at = now_ms();
        }
    } else if (memmem(m, n, "\"error\"", 7)) {
        fprintf(stderr, "ws_load: server error: %.*s\n", (int)n, m);
        exit(1);
    }
}

/* Parses whole frames from c->buf. */
static void parse(struct conn *c)
{
    for (;;) {
        if (c->phase == P_HANDSHAKE) {
            uint8_t *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
            if (!end)
                return;
            if (c->len < 12 || memcmp(c->buf, "HTTP/1.1 101", 12) != 0) {
                fprintf(stderr, "ws_load: handshake refused: %.*s\n", (int)c->len, c->buf);
                exit(1);
            }
            size_t hl = (size_t)(end - c->buf) + 4;
            memmove(c->buf, c->buf + hl, c->len - hl);
            c->len -= hl;
            c->phase = P_UPGRADED; /* "connected" comes next */
            continue;
        }
        if (c->len < 2)
            return;
        size_t h = 2;
        uint64_t len = c->buf[1] & 0x7f;
        if (len == 126) {
            if (c->len < 4)
                return;
            len = (uint64_t)c->buf[2] << 8 | c->buf[3];
            h = 4;
        } else if (len == 127) {
            fprintf(stderr, "ws_load: unexpected large frame\n");
            exit(1);
        }
        if (c->len < h + len)
            return;
        int op = c->buf[0] & 0x0f;
        if (op == 1)
            on_text(c, (const char *)c->buf + h, (size_t)len);
        else if (op == 9)
            send_frame(c->fd, 10, (const char *)c->buf + h, (size_t)len);
        else if (op == 8) {
            fprintf(stderr, "ws_load: the server closed a connection (%d)\n",
                    len >= 2 ? c->buf[h] << 8 | c->buf[h + 1] : 0);
            exit(1);
        }
        memmove(c->buf, c->buf + h + len, c->len - h - (size_t)len);
        c->len -= h + (size_t)len;
    }
}

/* One round of the loop: reads what is readable. Returns events handled. */
static int pump(int timeout_ms)
{
    struct epoll_event ev[512];
    int n = epoll_wait(epfd, ev, 512, timeout_ms);
    for (int i = 0; i < n; i++) {
        struct conn *c = &conns[ev[i].data.u32];
        if (c->phase == P_CONNECTING) {
            if (ev[i].events & (EPOLLERR | EPOLLHUP)) {
                fprintf(stderr, "ws_load: connect failed\n");
                exit(1);
            }
            start_handshake(c);
            struct epoll_event e = {.events = EPOLLIN, .data.u32 = ev[i].data.u32};
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &e);
            continue;
        }
        for (;;) {
            ssize_t r = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
            if (r > 0) {
                c->len += (size_t)r;
                parse(c);
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            fprintf(stderr, "ws_load: a connection ended\n");
            exit(1);
        }
    }
    return n;
}

static int count(enum phase p)
{
    int k = 0;
    for (int i = 0; i < nconns; i++)
        k += conns[i].phase == p;
    return k;
}

static void open_all(int ramp)
{
    int opened = 0;
    while (count(P_OPEN) < nconns) {
        int inflight = opened - count(P_OPEN);
        while (opened < nconns && inflight < ramp) {
            struct conn *c = &conns[opened];
            c->fd = tcp_open(true);
            c->phase = P_CONNECTING;
            struct epoll_event e = {.events = EPOLLOUT, .data.u32 = (uint32_t)opened};
            if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &e) < 0)
                die("epoll_ctl");
            opened++;
            inflight++;
        }
        pump(100);
    }
}

/* The publish trigger: POST on a keep-alive connection, answer read in full. */
static void publish(int fd, const char *room, long long seq)
{
    char body[128], req[512];
    int bn = snprintf(body, sizeof(body), "{\"type\":\"bench\",\"seq\":%lld}", seq);
    int n = snprintf(req, sizeof(req),
                     "POST /bench/publish?room=%s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     room, bn, body);
    send_all(fd, req, (size_t)n);
}

static void read_publish_answer(int fd)
{
    char buf[2048];
    size_t len = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);
        if (r <= 0)
            die("publish answer");
        len += (size_t)r;
        buf[len] = '\0';
        char *end = strstr(buf, "\r\n\r\n");
        if (!end)
            continue;
        if (strncmp(buf, "HTTP/1.1 2", 10) != 0) {
            fprintf(stderr, "ws_load: publish refused: %s\n", buf);
            exit(1);
        }
        const char *cl = strcasestr(buf, "content-length:");
        size_t want = (size_t)(end - buf) + 4 + (cl ? strtoul(cl + 15, NULL, 10) : 0);
        if (len >= want)
            return;
    }
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(const double *v, size_t n, double p)
{
    size_t i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

int main(int argc, char **argv)
{
    if (argc < 5) {
        fprintf(stderr, "usage: ws_load idle PORT TOKEN N HOLD | fanout PORT TOKEN N ROOM "
                        "ROUNDS\n");
        return 2;
    }
    bool fanout = strcmp(argv[1], "fanout") == 0;
    port = atoi(argv[2]);
    token = argv[3];
    nconns = atoi(argv[4]);
    const char *room = argc > 5 ? argv[5] : "";
    int rounds = argc > 6 ? atoi(argv[6]) : 100;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    conns = calloc((size_t)nconns, sizeof(*conns));
    epfd = epoll_create1(0);
    double t0 = now_ms();
    open_all(256);
    double connect_s = (now_ms() - t0) / 1e3;
    if (!fanout) {
        printf("ready %d %.2f\n", nconns, connect_s);
        fflush(stdout);
        double until = now_ms() + 1000.0 * atof(room);
        while (now_ms() < until)
            pump(200);
        return 0;
    }
    char sub[512];
    int sn = snprintf(sub, sizeof(sub), "{\"type\":\"subscribe\",\"room\":\"%s\"}", room);
    for (int i = 0; i < nconns; i++)
        send_frame(conns[i].fd, 1, sub, (size_t)sn);
    while (count(P_SUBSCRIBED) < nconns)
        pump(100);
    int http = tcp_open(false);
    size_t nsamples = (size_t)nconns * (size_t)rounds;
    double *lat = malloc(nsamples * sizeof(double));
    double *last = calloc((size_t)rounds, sizeof(double));
    size_t k = 0;
    for (int r = 1; r <= rounds + 5; r++) {
        bool warm = r <= 5; /* the first rounds are not counted */
        double start = now_ms();
        publish(http, room, r);
        int done = 0;
        bool *seen = calloc((size_t)nconns, 1);
        double deadline = start + 10000;
        while (done < nconns) {
            if (now_ms() > deadline) {
                fprintf(stderr, "ws_load: round %d: only %d of %d delivered\n", r, done, nconns);
                return 1;
            }
            pump(10);
            for (int i = 0; i < nconns; i++) {
                if (!seen[i] && conns[i].got_seq == r) {
                    double t = conns[i].got_at - start;
                    seen[i] = true;
                    done++;
                    if (!warm) {
                        lat[k++] = t;
                        if (t > last[r - 6])
                            last[r - 6] = t;
                    }
                }
            }
        }
        free(seen);
        read_publish_answer(http);
        usleep(20000);
    }
    qsort(lat, k, sizeof(double), cmp_double);
    qsort(last, (size_t)rounds, sizeof(double), cmp_double);
    printf("deliveries %zu p50 %.3f p90 %.3f p99 %.3f max %.3f ms; last-of-round p50 %.3f p99 "
           "%.3f ms; connect %.2f s\n",
           k, pct(lat, k, 50), pct(lat, k, 90), pct(lat, k, 99), pct(lat, k, 100),
           pct(last, (size_t)rounds, 50), pct(last, (size_t)rounds, 99), connect_s);
    return 0;
}
