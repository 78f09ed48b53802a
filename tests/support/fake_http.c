/* fake_http.c — a scripted HTTP server on loopback; see fake_http.h. */
#include "lib/common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "fake_http.h"

#define MAX_RULES 32

struct rule {
    char prefix[256];
    int left; /* < 0: unlimited */
    int status, delay_ms;
    char *body, *content_type, *location;
    size_t big_body;
};

struct fake_http {
    struct MHD_Daemon *d;
    int port;
    atomic_bool stopping;
    pthread_mutex_t mu; /* everything below */
    pthread_cond_t cv;
    struct rule rules[MAX_RULES];
    size_t nrules;
    struct fake_http_req reqs[FAKE_HTTP_MAX_REQS];
    size_t nreqs;
};

struct conn {
    struct buf body;
};

static int collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct buf *b = cls;
    for (const char *p = key; *p; p++)
        buf_putc(b, (char)tolower((unsigned char)*p));
    buf_printf(b, ": %s\n", value ? value : "");
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct fake_http *s = cls;
    struct conn *st = *con_cls;
    if (!st) {
        st = xcalloc(1, sizeof(*st));
        buf_init(&st->body, FAKE_HTTP_BODY_MAX);
        *con_cls = st;
        return MHD_YES;
    }
    if (*upload_size) {
        buf_append(&st->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    struct buf path, headers;
    buf_init(&path, 8192);
    buf_init(&headers, 65536);
    buf_puts(&path, url);
    MHD_get_connection_values(c, MHD_HEADER_KIND, (MHD_KeyValueIterator)collect_header, &headers);
    /* MHD hands the query separately: put it back */
    struct buf query;
    buf_init(&query, 8192);
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, (MHD_KeyValueIterator)collect_header,
                              &query);
    if (query.len) { /* "k: v\n" lines back into "?k=v&…" (tests use plain values) */
        buf_putc(&path, '?');
        const char *q = buf_cstr(&query);
        bool first = true;
        while (*q) {
            const char *nl = strchr(q, '\n');
            const char *colon = strstr(q, ": ");
            if (!first)
                buf_putc(&path, '&');
            first = false;
            buf_append(&path, q, (size_t)(colon - q));
            buf_putc(&path, '=');
            buf_append(&path, colon + 2, (size_t)(nl - colon - 2));
            q = nl + 1;
        }
    }
    buf_free(&query);

    struct rule r = {.status = 200};
    bool matched = false;
    size_t n;
    pthread_mutex_lock(&s->mu);
    n = s->nreqs;
    if (s->nreqs < FAKE_HTTP_MAX_REQS) {
        struct fake_http_req *q = &s->reqs[s->nreqs];
        snprintf(q->method, sizeof(q->method), "%s", method);
        q->path = xstrdup(buf_cstr(&path));
        q->headers = xstrdup(buf_cstr(&headers));
        q->body_len = st->body.len;
        q->body = xstrndup(buf_cstr(&st->body), st->body.len);
        s->nreqs++;
    }
    for (size_t i = 0; i < s->nrules; i++) {
        struct rule *ru = &s->rules[i];
        if (ru->left == 0 || strncmp(buf_cstr(&path), ru->prefix, strlen(ru->prefix)) != 0)
            continue;
        if (ru->left > 0)
            ru->left--;
        r = *ru;
        r.body = ru->body ? xstrdup(ru->body) : NULL;
        r.content_type = ru->content_type ? xstrdup(ru->content_type) : NULL;
        r.location = ru->location ? xstrdup(ru->location) : NULL;
        matched = true;
        break;
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    buf_free(&path);
    buf_free(&headers);

    for (int waited = 0; waited < r.delay_ms && !atomic_load(&s->stopping); waited += 10)
        usleep(10000);
    char dflt[64];
    const char *body = r.body;
    size_t len = body ? strlen(body) : 0;
    char *big = NULL;
    if (r.big_body) {
        big = xmalloc(r.big_body);
        memset(big, 'x', r.big_body);
        body = big;
        len = r.big_body;
    } else if (!matched) {
        snprintf(dflt, sizeof(dflt), "{\"ok\":true,\"n\":%zu}", n + 1);
        body = dflt;
        len = strlen(dflt);
    }
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)(body ? body : ""), MHD_RESPMEM_MUST_COPY);
    free(big);
    enum MHD_Result ret = MHD_NO;
    if (resp) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                                r.content_type ? r.content_type : "application/json");
        MHD_add_response_header(resp, "X-Fake", "yes");
        if (r.location)
            MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r.location);
        ret = MHD_queue_response(c, (unsigned)r.status, resp);
        MHD_destroy_response(resp);
    }
    free(r.body);
    free(r.content_type);
    free(r.location);
    return ret;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls, (void)c, (void)toe;
    struct conn *st = *con_cls;
    if (st) {
        buf_free(&st->body);
        free(st);
        *con_cls = NULL;
    }
}

struct fake_http *fake_http_start(void)
{
    struct fake_http *s = xcalloc(1, sizeof(*s));
    atomic_init(&s->stopping, false);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    s->d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION |
                                MHD_USE_POLL,
                            0, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
                            (struct sockaddr *)&sa, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!s->d) {
        fprintf(stderr, "fake_http: could not start the daemon\n");
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
        free(s);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
    s->port = info ? info->port : 0;
    return s;
}

void fake_http_stop(struct fake_http *s)
{
    if (!s)
        return;
    atomic_store(&s->stopping, true);
    MHD_stop_daemon(s->d);
    for (size_t i = 0; i < s->nreqs; i++) {
        free(s->reqs[i].path);
        free(s->reqs[i].headers);
        free(s->reqs[i].body);
    }
    for (size_t i = 0; i < s->nrules; i++) {
        free(s->rules[i].body);
        free(s->rules[i].content_type);
        free(s->rules[i].location);
    }
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
    free(s);
}

int fake_http_port(const struct fake_http *s)
{
    return s->port;
}

const char *fake_http_url(const struct fake_http *s, const char *path, char *out, size_t n)
{
    snprintf(out, n, "http://127.0.0.1:%d%s", s->port, path);
    return out;
}

void fake_http_on(struct fake_http *s, const char *prefix, int times,
                  const struct fake_http_reply *r)
{
    pthread_mutex_lock(&s->mu);
    if (s->nrules < MAX_RULES) {
        struct rule *ru = &s->rules[s->nrules++];
        snprintf(ru->prefix, sizeof(ru->prefix), "%s", prefix);
        ru->left = times < 0 ? -1 : times;
        ru->status = r->status ? r->status : 200;
        ru->delay_ms = r->delay_ms;
        ru->big_body = r->big_body;
        ru->body = r->body ? xstrdup(r->body) : NULL;
        ru->content_type = r->content_type ? xstrdup(r->content_type) : NULL;
        ru->location = r->location ? xstrdup(r->location) : NULL;
    }
    pthread_mutex_unlock(&s->mu);
}

size_t fake_http_count(struct fake_http *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->nreqs;
    pthread_mutex_unlock(&s->mu);
    return n;
}

bool fake_http_wait(struct fake_http *s, size_t n, int timeout_ms)
{
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->nreqs < n)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) != 0)
            break;
    bool ok = s->nreqs >= n;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

const struct fake_http_req *fake_http_req(struct fake_http *s, size_t i)
{
    pthread_mutex_lock(&s->mu);
    const struct fake_http_req *r = i < s->nreqs ? &s->reqs[i] : NULL;
    pthread_mutex_unlock(&s->mu);
    return r;
}

bool fake_http_header(const struct fake_http_req *r, const char *name, char *out, size_t n)
{
    size_t nl = strlen(name);
    for (const char *p = r->headers; p && *p;) {
        const char *eol = strchr(p, '\n');
        if (!eol)
            break;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':' && p[nl + 1] == ' ') {
            snprintf(out, n, "%.*s", (int)(eol - p - nl - 2), p + nl + 2);
            return true;
        }
        p = eol + 1;
    }
    return false;
}
