/* fake_smtp.c — a loopback SMTP server for tests; see fake_smtp.h. */
#include "lib/common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/buf.h"
#include "fake_smtp.h"

#define LINE_MAX_LEN 998 /* RFC 5321 4.5.3.1.6: 1000 with the CRLF */
#define IDLE_TIMEOUT_MS 10000

struct conn {
    struct fake_smtp *s;
    int fd;
    char in[4096];
    size_t inlen;
    /* session */
    char *helo;
    char *auth_user;
    char *auth_pass;
    char *auth_mech;
    /* transaction */
    char *mail_from;
    char *rcpt[FAKE_SMTP_MAX_RCPTS];
    size_t nrcpt;
};

static void txn_reset(struct conn *c)
{
    free(c->mail_from);
    c->mail_from = NULL;
    for (size_t i = 0; i < c->nrcpt; i++)
        free(c->rcpt[i]);
    c->nrcpt = 0;
}

static void conn_free(struct conn *c)
{
    txn_reset(c);
    free(c->helo);
    free(c->auth_user);
    free(c->auth_pass);
    free(c->auth_mech);
}

static int conn_send(struct conn *c, const char *s)
{
    size_t n = strlen(s);
    while (n > 0) {
        ssize_t w = send(c->fd, s, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Waits until fd is readable. false on stop request, timeout or error. */
static bool wait_readable(struct fake_smtp *s, int fd, int timeout_ms)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->wake[0], .events = POLLIN}};
        int r = poll(p, 2, timeout_ms);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0 || p[1].revents)
            return false;
        return true;
    }
}

/* The next line without its CRLF (or bare LF) into out. Returns its length, -1 when the
 * connection ends (EOF, error, idle timeout, stop) and -2 for a line longer than LINE_MAX_LEN. */
static int conn_line(struct conn *c, char *out, size_t outlen)
{
    for (;;) {
        char *nl = memchr(c->in, '\n', c->inlen);
        if (nl) {
            size_t n = (size_t)(nl - c->in);
            size_t used = n + 1;
            if (n > 0 && c->in[n - 1] == '\r')
                n--;
            int rc;
            if (n > LINE_MAX_LEN || n >= outlen) {
                rc = -2;
            } else {
                memcpy(out, c->in, n);
                out[n] = '\0';
                rc = (int)n;
            }
            memmove(c->in, c->in + used, c->inlen - used);
            c->inlen -= used;
            return rc;
        }
        if (c->inlen == sizeof(c->in))
            return -2;
        if (!wait_readable(c->s, c->fd, IDLE_TIMEOUT_MS))
            return -1;
        ssize_t r = recv(c->fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        c->inlen += (size_t)r;
    }
}

static bool cmd_is(const char *line, const char *cmd)
{
    size_t n = strlen(cmd);
    return strlen(line) >= n && strncasecmp(line, cmd, n) == 0 &&
           (line[n] == '\0' || line[n] == ' ');
}

/* The address between <> after "FROM:" / "TO:" (case-insensitive prefix). NULL if malformed. */
static char *path_arg(const char *line, const char *prefix)
{
    size_t n = strlen(prefix);
    if (strlen(line) < n || strncasecmp(line, prefix, n) != 0)
        return NULL;
    const char *p = line + n;
    while (*p == ' ')
        p++;
    if (*p != '<')
        return NULL;
    const char *end = strchr(p, '>');
    if (!end)
        return NULL;
    return xstrndup(p + 1, (size_t)(end - p - 1));
}

static int b64val(int ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Decodes base64 text into out (at most outlen - 1 bytes, NUL-terminated). Returns the
 * decoded length or -1. */
static int b64_decode(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0;
    for (const char *p = in; *p && *p != '='; p++) {
        int v = b64val((unsigned char)*p);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (n + 1 >= outlen)
                return -1;
            out[n++] = (char)((acc >> bits) & 0xff);
        }
    }
    out[n] = '\0';
    return (int)n;
}

static bool creds_ok(struct fake_smtp *s, const char *user, const char *pass)
{
    return (!s->user || strcmp(s->user, user) == 0) && (!s->pass || strcmp(s->pass, pass) == 0);
}

static void auth_done(struct conn *c, const char *mech, const char *user, const char *pass)
{
    if (!creds_ok(c->s, user, pass)) {
        conn_send(c, "535 5.7.8 Authentication credentials invalid\r\n");
        return;
    }
    free(c->auth_user);
    free(c->auth_pass);
    free(c->auth_mech);
    c->auth_user = xstrdup(user);
    c->auth_pass = xstrdup(pass);
    c->auth_mech = xstrdup(mech);
    conn_send(c, "235 2.7.0 Authentication successful\r\n");
}

/* AUTH PLAIN / AUTH LOGIN; arg is what follows "AUTH ". Returns -1 when the connection ended. */
static int do_auth(struct conn *c, const char *arg)
{
    char line[LINE_MAX_LEN + 1], dec[LINE_MAX_LEN + 1];
    const char *sp = strchr(arg, ' ');
    size_t mlen = sp ? (size_t)(sp - arg) : strlen(arg);
    const char *ir = sp ? sp + 1 : NULL;
    if (mlen == 5 && strncasecmp(arg, "PLAIN", 5) == 0) {
        if (!ir) {
            conn_send(c, "334 \r\n");
            int n = conn_line(c, line, sizeof(line));
            if (n < 0)
                return -1;
            ir = line;
        }
        int n = b64_decode(ir, dec, sizeof(dec));
        /* authzid NUL authcid NUL passwd */
        const char *z1 = n > 0 ? memchr(dec, '\0', (size_t)n) : NULL;
        const char *z2 = z1 ? memchr(z1 + 1, '\0', (size_t)(n - (z1 + 1 - dec))) : NULL;
        if (!z2) {
            conn_send(c, "501 5.5.2 Malformed AUTH PLAIN response\r\n");
            return 0;
        }
        auth_done(c, "PLAIN", z1 + 1, z2 + 1);
        return 0;
    }
    if (mlen == 5 && strncasecmp(arg, "LOGIN", 5) == 0) {
        char user[LINE_MAX_LEN + 1];
        if (!ir) {
            conn_send(c, "334 VXNlcm5hbWU6\r\n"); /* "Username:" */
            if (conn_line(c, line, sizeof(line)) < 0)
                return -1;
            ir = line;
        }
        if (b64_decode(ir, user, sizeof(user)) < 0) {
            conn_send(c, "501 5.5.2 Malformed AUTH LOGIN response\r\n");
            return 0;
        }
        conn_send(c, "334 UGFzc3dvcmQ6\r\n"); /* "Password:" */
        if (conn_line(c, line, sizeof(line)) < 0)
            return -1;
        if (b64_decode(line, dec, sizeof(dec)) < 0) {
            conn_send(c, "501 5.5.2 Malformed AUTH LOGIN response\r\n");
            return 0;
        }
        auth_done(c, "LOGIN", user, dec);
        return 0;
    }
    conn_send(c, "504 5.5.4 Unrecognized authentication type\r\n");
    return 0;
}

static void record(struct conn *c, struct buf *data)
{
    struct fake_smtp *s = c->s;
    pthread_mutex_lock(&s->mu);
    if (s->nmsgs < FAKE_SMTP_MAX_MSGS) {
        struct fake_smtp_msg *m = &s->msgs[s->nmsgs];
        m->mail_from = xstrdup(c->mail_from);
        for (size_t i = 0; i < c->nrcpt; i++)
            m->rcpt[i] = xstrdup(c->rcpt[i]);
        m->nrcpt = c->nrcpt;
        m->data_len = data->len;
        m->data = buf_detach(data, NULL);
        if (!m->data)
            m->data = xstrdup("");
        m->auth_user = c->auth_user ? xstrdup(c->auth_user) : NULL;
        m->auth_pass = c->auth_pass ? xstrdup(c->auth_pass) : NULL;
        m->auth_mech = c->auth_mech ? xstrdup(c->auth_mech) : NULL;
        m->helo = c->helo ? xstrdup(c->helo) : NULL;
        s->nmsgs++;
    }
    pthread_mutex_unlock(&s->mu);
}

/* DATA after 354: lines up to ".", dot-unstuffed. Returns -1 when the connection ended. */
static int do_data(struct conn *c)
{
    char line[LINE_MAX_LEN + 1];
    struct buf data;
    buf_init(&data, FAKE_SMTP_DATA_MAX);
    conn_send(c, "354 End data with <CR><LF>.<CR><LF>\r\n");
    bool too_long = false;
    for (;;) {
        int n = conn_line(c, line, sizeof(line));
        if (n == -1) {
            buf_free(&data);
            return -1;
        }
        if (n == -2) {
            too_long = true;
            continue;
        }
        if (strcmp(line, ".") == 0)
            break;
        const char *p = line[0] == '.' ? line + 1 : line;
        buf_puts(&data, p);
        buf_puts(&data, "\r\n");
    }
    if (too_long)
        conn_send(c, "500 5.5.2 Line too long\r\n");
    else if (data.overflow)
        conn_send(c, "552 5.3.4 Message too big\r\n");
    else {
        record(c, &data);
        conn_send(c, "250 2.0.0 OK queued\r\n");
    }
    buf_free(&data);
    txn_reset(c);
    return 0;
}

static void serve(struct fake_smtp *s, int fd)
{
    struct conn c = {.s = s, .fd = fd};
    char line[LINE_MAX_LEN + 1] = {0}, reply[LINE_MAX_LEN + 64];
    conn_send(&c, "220 fake-smtp ESMTP ready\r\n");
    for (;;) {
        int n = conn_line(&c, line, sizeof(line));
        if (n == -1)
            break;
        if (n == -2) {
            conn_send(&c, "500 5.5.2 Line too long\r\n");
            break;
        }
        if (cmd_is(line, "EHLO") || cmd_is(line, "HELO")) {
            txn_reset(&c);
            free(c.helo);
            c.helo = xstrdup(line[4] ? line + 5 : "");
            if (toupper((unsigned char)line[0]) == 'H') {
                conn_send(&c, "250 fake-smtp\r\n");
            } else {
                snprintf(reply, sizeof(reply),
                         "250-fake-smtp greets %s\r\n250-AUTH %s\r\n250-8BITMIME\r\n"
                         "250 SIZE %d\r\n",
                         c.helo, s->auth_mechs, FAKE_SMTP_DATA_MAX);
                conn_send(&c, reply);
            }
        } else if (cmd_is(line, "AUTH") && line[4]) {
            if (c.auth_user)
                conn_send(&c, "503 5.5.1 Already authenticated\r\n");
            else if (do_auth(&c, line + 5) < 0)
                break;
        } else if (strncasecmp(line, "MAIL ", 5) == 0) {
            char *from = path_arg(line + 5, "FROM:");
            if (!from) {
                conn_send(&c, "501 5.5.4 Syntax: MAIL FROM:<address>\r\n");
            } else if (s->opt.require_auth && !c.auth_user) {
                conn_send(&c, "530 5.7.0 Authentication required\r\n");
                free(from);
            } else {
                txn_reset(&c);
                c.mail_from = from;
                conn_send(&c, "250 2.1.0 OK\r\n");
            }
        } else if (strncasecmp(line, "RCPT ", 5) == 0) {
            char *to = path_arg(line + 5, "TO:");
            bool reject = to && s->reject_rcpt &&
                          (strcmp(s->reject_rcpt, "*") == 0 || strcmp(s->reject_rcpt, to) == 0);
            if (!to) {
                conn_send(&c, "501 5.5.4 Syntax: RCPT TO:<address>\r\n");
            } else if (!c.mail_from) {
                conn_send(&c, "503 5.5.1 MAIL first\r\n");
                free(to);
            } else if (reject) {
                pthread_mutex_lock(&s->mu);
                s->nrejected++;
                pthread_mutex_unlock(&s->mu);
                conn_send(&c, "550 5.1.1 Mailbox unavailable\r\n");
                free(to);
            } else if (c.nrcpt == FAKE_SMTP_MAX_RCPTS) {
                conn_send(&c, "452 4.5.3 Too many recipients\r\n");
                free(to);
            } else {
                c.rcpt[c.nrcpt++] = to;
                conn_send(&c, "250 2.1.5 OK\r\n");
            }
        } else if (cmd_is(line, "DATA")) {
            if (!c.mail_from || c.nrcpt == 0)
                conn_send(&c, "503 5.5.1 No valid recipients\r\n");
            else if (do_data(&c) < 0)
                break;
        } else if (cmd_is(line, "RSET")) {
            txn_reset(&c);
            conn_send(&c, "250 2.0.0 OK\r\n");
        } else if (cmd_is(line, "NOOP")) {
            conn_send(&c, "250 2.0.0 OK\r\n");
        } else if (cmd_is(line, "QUIT")) {
            conn_send(&c, "221 2.0.0 Bye\r\n");
            break;
        } else {
            conn_send(&c, "502 5.5.2 Command not recognized\r\n");
        }
    }
    conn_free(&c);
}

static void *server_main(void *arg)
{
    struct fake_smtp *s = arg;
    for (;;) {
        if (!wait_readable(s, s->listen_fd, -1))
            break;
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break;
        }
        pthread_mutex_lock(&s->mu);
        s->nconn++;
        pthread_mutex_unlock(&s->mu);
        serve(s, fd);
        close(fd);
    }
    return NULL;
}

int fake_smtp_start(struct fake_smtp *s, const struct fake_smtp_options *opt)
{
    memset(s, 0, sizeof(*s));
    s->listen_fd = -1;
    s->wake[0] = s->wake[1] = -1;
    if (opt)
        s->opt = *opt;
    s->reject_rcpt = s->opt.reject_rcpt ? xstrdup(s->opt.reject_rcpt) : NULL;
    s->user = s->opt.user ? xstrdup(s->opt.user) : NULL;
    s->pass = s->opt.pass ? xstrdup(s->opt.pass) : NULL;
    s->auth_mechs = xstrdup(s->opt.auth_mechs ? s->opt.auth_mechs : "PLAIN LOGIN");
    s->opt.reject_rcpt = s->reject_rcpt;
    s->opt.user = s->user;
    s->opt.pass = s->pass;
    s->opt.auth_mechs = s->auth_mechs;
    pthread_mutex_init(&s->mu, NULL);

    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(a);
    s->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s->listen_fd < 0 || bind(s->listen_fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        listen(s->listen_fd, 64) != 0 ||
        getsockname(s->listen_fd, (struct sockaddr *)&a, &len) != 0 ||
        pipe2(s->wake, O_CLOEXEC) != 0 || pthread_create(&s->thread, NULL, server_main, s) != 0) {
        if (s->listen_fd >= 0)
            close(s->listen_fd);
        if (s->wake[0] >= 0) {
            close(s->wake[0]);
            close(s->wake[1]);
        }
        free(s->reject_rcpt);
        free(s->user);
        free(s->pass);
        free(s->auth_mechs);
        pthread_mutex_destroy(&s->mu);
        memset(s, 0, sizeof(*s));
        return -1;
    }
    s->port = ntohs(a.sin_port);
    s->running = true;
    return 0;
}

void fake_smtp_stop(struct fake_smtp *s)
{
    if (!s->running)
        return;
    ssize_t w;
    do
        w = write(s->wake[1], "x", 1);
    while (w < 0 && errno == EINTR);
    pthread_join(s->thread, NULL);
    close(s->listen_fd);
    close(s->wake[0]);
    close(s->wake[1]);
    for (size_t i = 0; i < s->nmsgs; i++) {
        struct fake_smtp_msg *m = &s->msgs[i];
        free(m->mail_from);
        for (size_t j = 0; j < m->nrcpt; j++)
            free(m->rcpt[j]);
        free(m->data);
        free(m->auth_user);
        free(m->auth_pass);
        free(m->auth_mech);
        free(m->helo);
    }
    free(s->reject_rcpt);
    free(s->user);
    free(s->pass);
    free(s->auth_mechs);
    pthread_mutex_destroy(&s->mu);
    memset(s, 0, sizeof(*s));
}

size_t fake_smtp_count(struct fake_smtp *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nmsgs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

bool fake_smtp_wait(struct fake_smtp *s, size_t n, int timeout_ms)
{
    for (int waited = 0;; waited += 10) {
        if (fake_smtp_count(s) >= n)
            return true;
        if (waited >= timeout_ms)
            return false;
        usleep(10000);
    }
}

const struct fake_smtp_msg *fake_smtp_msg(struct fake_smtp *s, size_t i)
{
    pthread_mutex_lock(&s->mu);
    const struct fake_smtp_msg *m = i < s->nmsgs ? &s->msgs[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    return m;
}

size_t fake_smtp_rejected(struct fake_smtp *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nrejected;
    pthread_mutex_unlock(&s->mu);
    return n;
}
