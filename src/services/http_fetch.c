/* http_fetch.c — see http_fetch.h. */
#include "lib/common.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>

#include "lib/buf.h"
#include "lib/jsonx.h"
#include "services/http_fetch.h"

#define MAX_ADDRS 16
#define MAX_RES_HEADERS 64
#define MAX_HEADER_LINE 8192

/* ---- the address policy ------------------------------------------------------------------- */

static bool v4_public(uint32_t a)
{
    static const struct {
        uint32_t net, mask;
    } refused[] = {
        {0x00000000, 0xff000000}, /* 0.0.0.0/8 "this network", incl. unspecified */
        {0x0a000000, 0xff000000}, /* 10/8 private */
        {0x64400000, 0xffc00000}, /* 100.64/10 carrier-grade NAT */
        {0x7f000000, 0xff000000}, /* 127/8 loopback */
        {0xa9fe0000, 0xffff0000}, /* 169.254/16 link-local, cloud metadata */
        {0xac100000, 0xfff00000}, /* 172.16/12 private */
        {0xc0000000, 0xffffff00}, /* 192.0.0/24 IETF protocol assignments */
        {0xc0000200, 0xffffff00}, /* 192.0.2/24 documentation */
        {0xc0586300, 0xffffff00}, /* 192.88.99/24 6to4 relay anycast */
        {0xc0a80000, 0xffff0000}, /* 192.168/16 private */
        {0xc6120000, 0xfffe0000}, /* 198.18/15 benchmarking */
        {0xc6336400, 0xffffff00}, /* 198.51.100/24 documentation */
        {0xcb007100, 0xffffff00}, /* 203.0.113/24 documentation */
        {0xe0000000, 0xf0000000}, /* 224/4 multicast */
        {0xf0000000, 0xf0000000}, /* 240/4 reserved, incl. 255.255.255.255 */
    };
    for (size_t i = 0; i < ARRAY_LEN(refused); i++)
        if ((a & refused[i].mask) == refused[i].net)
            return false;
    return true;
}

static uint32_t v4_at(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static bool v6_public(const unsigned char *b)
{
    static const unsigned char zeros[12] = {0};
    /* IPv4-mapped ::ffff:a.b.c.d: what the socket would really reach */
    if (memcmp(b, zeros, 10) == 0 && b[10] == 0xff && b[11] == 0xff)
        return v4_public(v4_at(b + 12));
    /* ::/96 (unspecified, loopback, the deprecated IPv4-compatible form) */
    if (memcmp(b, zeros, 12) == 0)
        return false;
    /* NAT64 64:ff9b::/96 reaches the embedded IPv4 address */
    if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b &&
        memcmp(b + 4, zeros, 8) == 0)
        return v4_public(v4_at(b + 12));
    /* 6to4 2002:a.b.c.d::/48 */
    if (b[0] == 0x20 && b[1] == 0x02)
        return v4_public(v4_at(b + 2));
    /* only global unicast 2000::/3 is public: this refuses fc00::/7 (unique local),
     * fe80::/10 (link-local), fec0::/10 (site-local), ff00::/8 (multicast), 64:ff9b:1::/48,
     * 100::/64 (discard) */
    if ((b[0] & 0xe0) != 0x20)
        return false;
    /* 2001::/32 Teredo (embeds a client address), 2001:db8::/32 documentation,
     * 2001:2::/48 benchmarking */
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00)
        return false;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x0d && b[3] == 0xb8)
        return false;
    if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x02 && b[4] == 0 && b[5] == 0)
        return false;
    return true;
}

bool http_fetch_addr_public(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        return v4_public(ntohl(in->sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        return v6_public(in6->sin6_addr.s6_addr);
    }
    return false;
}

bool http_fetch_retryable(enum http_fetch_status s)
{
    return s == HTTP_FETCH_E_RESOLVE || s == HTTP_FETCH_E_CONNECT || s == HTTP_FETCH_E_TIMEOUT;
}

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_start(void)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "zygo: libcurl failed to initialise\n");
        abort();
    }
}

/* ---- one transfer ------------------------------------------------------------------------- */

struct transfer {
    const struct http_fetch_req *rq;
    struct http_fetch_res *res;
    struct buf body;
    size_t nheaders;
    bool too_large;
    bool blocked; /* a socket to a refused address was refused */
    bool stopped;
};

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    if (buf_append(&t->body, data, len) < 0) {
        t->too_large = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    struct transfer *t = arg;
    size_t len = size * n;
    /* a new response (after 100 Continue, or an interim one) starts the set again */
    if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        json_object_clear(t->res->headers);
        t->nheaders = 0;
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon || len > MAX_HEADER_LINE || t->nheaders >= MAX_RES_HEADERS)
        return len;
    char name[128];
    size_t nl = (size_t)(colon - data);
    if (nl == 0 || nl >= sizeof(name))
        return len;
    for (size_t i = 0; i < nl; i++)
        name[i] = (char)tolower((unsigned char)data[i]);
    name[nl] = '\0';
    const char *v = colon + 1, *end = data + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    json_object_set_new(t->res->headers, name, jx_strn(v, (size_t)(end - v)));
    t->nheaders++;
    return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)dt, (void)dn, (void)ut, (void)un;
    struct transfer *t = arg;
    if (t->rq->should_stop && t->rq->should_stop(t->rq->stop_arg)) {
        t->stopped = true;
        return 1;
    }
    return 0;
}

/* Every socket curl opens goes through here: the last check against rebinding. */
static curl_socket_t on_open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct transfer *t = arg;
    (void)purpose;
    if (!t->rq->allow_private && !http_fetch_addr_public(&a->addr)) {
        t->blocked = true;
        return CURL_SOCKET_BAD;
    }
    return socket(a->family, a->socktype, a->protocol);
}

static enum http_fetch_status fail(struct http_fetch_res *res, enum http_fetch_status st,
                                   const char *fmt, ...) ZY_PRINTF(3, 4);
static enum http_fetch_status fail(struct http_fetch_res *res, enum http_fetch_status st,
                                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(res->error, sizeof(res->error), fmt, ap);
    va_end(ap);
    res->status = st;
    return st;
}

static bool header_ok(const struct kv *h)
{
    static const char *const refused[] = {"host", "content-length", "transfer-encoding",
                                          "connection"};
    if (!h->name || !h->value || !*h->name || strlen(h->name) > 100 || strlen(h->value) > 4096)
        return false;
    for (const char *p = h->name; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return false;
    for (const char *p = h->value; *p; p++)
        if (*p == '\r' || *p == '\n')
            return false;
    for (size_t i = 0; i < ARRAY_LEN(refused); i++)
        if (zy_strieq(refused[i], h->name))
            return false;
    return true;
}

struct target {
    char host[256]; /* without brackets */
    char port[8];
    bool literal;  /* an IP address, not a name */
};

/* Scheme, host and port of the URL, refusing anything but http(s). */
static enum http_fetch_status parse_target(const char *url, struct target *tg,
                                           struct http_fetch_res *res)
{
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *zone = NULL;
    enum http_fetch_status st = HTTP_FETCH_OK;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        st = fail(res, HTTP_FETCH_E_URL, "not an absolute URL");
    } else if (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) {
        st = fail(res, HTTP_FETCH_E_URL, "only http and https URLs are allowed");
    } else if (curl_url_get(u, CURLUPART_ZONEID, &zone, 0) == CURLUE_OK) {
        st = fail(res, HTTP_FETCH_E_BLOCKED, "refused: an IPv6 zone id names a link-local target");
    } else {
        size_t n = strlen(host);
        const char *h = host;
        if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
            h = host + 1, n -= 2;
        if (n == 0 || n >= sizeof(tg->host)) {
            st = fail(res, HTTP_FETCH_E_URL, "bad host");
        } else {
            memcpy(tg->host, h, n);
            tg->host[n] = '\0';
            snprintf(tg->port, sizeof(tg->port), "%s", port);
            unsigned char tmp[16];
            tg->literal = inet_pton(AF_INET, tg->host, tmp) == 1 ||
                          inet_pton(AF_INET6, tg->host, tmp) == 1;
        }
    }
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(zone);
    curl_url_cleanup(u);
    return st;
}

/* Resolves the target and applies the policy; on success `pin` holds the CURLOPT_RESOLVE entry
 * ("host:port:addr,addr") for a name ("" for a literal address). */
static enum http_fetch_status check_target(const struct http_fetch_req *rq, const struct target *tg,
                                           char *pin, size_t pinlen, struct http_fetch_res *res)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    int rc = getaddrinfo(tg->host, tg->port, &hints, &ai);
    if (rc != 0 || !ai)
        return fail(res, HTTP_FETCH_E_RESOLVE, "could not resolve host %s", tg->host);
    size_t w = (size_t)snprintf(pin, pinlen, "%s:%s:", tg->host, tg->port);
    int n = 0;
    enum http_fetch_status st = HTTP_FETCH_OK;
    for (struct addrinfo *p = ai; p && n < MAX_ADDRS; p = p->ai_next) {
        if (p->ai_family != AF_INET && p->ai_family != AF_INET6)
            continue;
        if (!rq->allow_private && !http_fetch_addr_public(p->ai_addr)) {
            st = tg->literal
                     ? fail(res, HTTP_FETCH_E_BLOCKED, "refused: %s is not a public address",
                            tg->host)
                     : fail(res, HTTP_FETCH_E_BLOCKED,
                            "refused: %s resolves to a non-public address", tg->host);
            break;
        }
        char addr[INET6_ADDRSTRLEN];
        const void *src = p->ai_family == AF_INET
                              ? (const void *)&((struct sockaddr_in *)p->ai_addr)->sin_addr
                              : (const void *)&((struct sockaddr_in6 *)p->ai_addr)->sin6_addr;
        if (!inet_ntop(p->ai_family, src, addr, sizeof(addr)))
            continue;
        if (w < pinlen)
            w += (size_t)snprintf(pin + w, pinlen - w, "%s%s%s%s", n ? "," : "",
                                  p->ai_family == AF_INET6 ? "[" : "", addr,
                                  p->ai_family == AF_INET6 ? "]" : "");
        n++;
    }
    freeaddrinfo(ai);
    if (st == HTTP_FETCH_OK && n == 0)
        st = fail(res, HTTP_FETCH_E_RESOLVE, "could not resolve host %s", tg->host);
    if (st == HTTP_FETCH_OK && w >= pinlen)
        st = fail(res, HTTP_FETCH_E_URL, "host name too long");
    if (tg->literal)
        pin[0] = '\0';
    return st;
}

static enum http_fetch_status map_curl_error(struct transfer *t, CURLcode cc, const char *msg)
{
    struct http_fetch_res *res = t->res;
    if (t->blocked)
        return fail(res, HTTP_FETCH_E_BLOCKED, "refused: the connection went to a non-public "
                                               "address");
    if (t->too_large || cc == CURLE_FILESIZE_EXCEEDED)
        return fail(res, HTTP_FETCH_E_TOO_LARGE, "response body larger than %zu bytes",
                    t->body.max);
    if (t->stopped || cc == CURLE_ABORTED_BY_CALLBACK)
        return fail(res, HTTP_FETCH_E_STOPPED, "stopped");
    switch (cc) {
    case CURLE_OPERATION_TIMEDOUT:
        return fail(res, HTTP_FETCH_E_TIMEOUT, "timed out");
    case CURLE_COULDNT_RESOLVE_HOST:
        return fail(res, HTTP_FETCH_E_RESOLVE, "could not resolve host");
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
        return fail(res, HTTP_FETCH_E_URL, "%s", *msg ? msg : curl_easy_strerror(cc));
    default:
        return fail(res, HTTP_FETCH_E_CONNECT, "%s", *msg ? msg : curl_easy_strerror(cc));
    }
}

enum http_fetch_status http_fetch(const struct http_fetch_req *rq, struct http_fetch_res *res)
{
    memset(res, 0, sizeof(*res));
    res->headers = json_object();
    pthread_once(&curl_once, curl_start);
    if (!rq->url)
        return fail(res, HTTP_FETCH_E_URL, "no URL");
    for (size_t i = 0; i < rq->nheaders; i++)
        if (!header_ok(&rq->headers[i]))
            return fail(res, HTTP_FETCH_E_URL, "header %zu is not allowed", i + 1);
    const char *method = rq->method ? rq->method : "GET";
    for (const char *p = method; *p; p++)
        if (!isupper((unsigned char)*p) || p - method > 16)
            return fail(res, HTTP_FETCH_E_URL, "bad method");
    struct target tg;
    if (parse_target(rq->url, &tg, res) != HTTP_FETCH_OK)
        return res->status;
    char pin[1024];
    if (check_target(rq, &tg, pin, sizeof(pin), res) != HTTP_FETCH_OK)
        return res->status;

    struct transfer t = {.rq = rq, .res = res};
    size_t max = rq->max_response ? rq->max_response : HTTP_FETCH_MAX_RESPONSE;
    buf_init(&t.body, max);
    int64_t timeout = rq->timeout_ms > 0 ? rq->timeout_ms : HTTP_FETCH_TIMEOUT_MS;
    if (timeout > HTTP_FETCH_MAX_TIMEOUT_MS)
        timeout = HTTP_FETCH_MAX_TIMEOUT_MS;

    CURL *h = curl_easy_init();
    if (!h)
        zy_oom(0);
    struct curl_slist *resolve = NULL, *hdrs = NULL;
    if (pin[0])
        resolve = curl_slist_append(resolve, pin);
    char line[4300];
    for (size_t i = 0; i < rq->nheaders; i++) {
        snprintf(line, sizeof(line), "%s: %s", rq->headers[i].name, rq->headers[i].value);
        hdrs = curl_slist_append(hdrs, line);
    }
    hdrs = curl_slist_append(hdrs, "Expect:");
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(h, CURLOPT_URL, rq->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_PROXY, ""); /* never a proxy from the environment */
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)timeout);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)ZY_MIN(timeout, 10000));
    curl_easy_setopt(h, CURLOPT_RESOLVE, resolve);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETFUNCTION, on_open_socket);
    curl_easy_setopt(h, CURLOPT_OPENSOCKETDATA, &t);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &t);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &t);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)max);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "zygo-workflows/" ZYGO_VERSION);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") != 0 || rq->body) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    }
    if (rq->body) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, rq->body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
    }
    CURLcode cc = curl_easy_perform(h);
    if (cc == CURLE_OK) {
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &res->http_status);
        res->body = buf_detach(&t.body, &res->body_len);
        res->status = HTTP_FETCH_OK;
    } else {
        map_curl_error(&t, cc, errbuf);
    }
    buf_free(&t.body);
    curl_easy_cleanup(h);
    curl_slist_free_all(resolve);
    curl_slist_free_all(hdrs);
    return res->status;
}

void http_fetch_res_free(struct http_fetch_res *res)
{
    free(res->body);
    json_decref(res->headers);
    res->body = NULL;
    res->headers = NULL;
}
