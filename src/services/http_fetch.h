/*
 * http_fetch.h — outbound HTTP on behalf of tenants (the workflow steps http_request and
 * webhook_event), safe against server-side request forgery.
 *
 * Owns one blocking request at a time per call (libcurl easy handle; call it from a worker
 * thread, never the I/O thread). The target is checked before anything is sent:
 *   - http or https only, no redirects followed (a 3xx is returned as it is), no proxy from the
 *     environment;
 *   - the host is resolved here and every address it resolves to must be public: loopback,
 *     private (RFC 1918, ULA), carrier-grade NAT, link-local (incl. 169.254.169.254, the cloud
 *     metadata service), multicast, unspecified, reserved and documentation ranges are refused,
 *     in IPv4 and IPv6, and so are IPv6 forms that embed such an IPv4 address (::ffff:a.b.c.d,
 *     ::a.b.c.d, 64:ff9b::/96 NAT64, 2002::/16 6to4) — unless the caller allows private targets
 *     (configuration WORKFLOW_HTTP_ALLOW_PRIVATE, for tests and closed networks);
 *   - the checked addresses are pinned for the transfer (CURLOPT_RESOLVE), and every socket curl
 *     opens is checked again (CURLOPT_OPENSOCKETFUNCTION), so a DNS answer that changes between
 *     the check and the connection (rebinding) cannot reach a refused address.
 * The response body is capped (max_response) and the whole transfer bounded by timeout_ms; a
 * should_stop callback aborts it early (a cancelled job).
 */
#ifndef ZYGO_SERVICES_HTTP_FETCH_H
#define ZYGO_SERVICES_HTTP_FETCH_H

#include <jansson.h>
#include <sys/socket.h>

#include "lib/common.h"

enum http_fetch_status {
    HTTP_FETCH_OK = 0,        /* a response arrived (any HTTP status) */
    HTTP_FETCH_E_URL = -1,    /* not an absolute http(s) URL, bad header */
    HTTP_FETCH_E_BLOCKED = -2, /* the target is a refused address */
    HTTP_FETCH_E_RESOLVE = -3, /* the host name does not resolve */
    HTTP_FETCH_E_CONNECT = -4, /* connection or TLS failure, reset */
    HTTP_FETCH_E_TIMEOUT = -5,
    HTTP_FETCH_E_TOO_LARGE = -6, /* the response body passed max_response */
    HTTP_FETCH_E_STOPPED = -7,   /* should_stop returned true */
};

/* Defaults and bounds */
#define HTTP_FETCH_TIMEOUT_MS 10000
#define HTTP_FETCH_MAX_TIMEOUT_MS 120000
#define HTTP_FETCH_MAX_RESPONSE (1u << 20)

struct http_fetch_req {
    const char *method; /* "GET", "POST", … (NULL: GET) */
    const char *url;
    const struct kv *headers; /* extra request headers; Host, Content-Length, Transfer-Encoding
                                 and Connection are refused (HTTP_FETCH_E_URL) */
    size_t nheaders;
    const char *body; /* NULL: none */
    size_t body_len;
    int64_t timeout_ms;  /* 0: HTTP_FETCH_TIMEOUT_MS; capped at HTTP_FETCH_MAX_TIMEOUT_MS */
    size_t max_response; /* 0: HTTP_FETCH_MAX_RESPONSE */
    bool allow_private;  /* skip the address policy (tests, closed networks) */
    bool (*should_stop)(void *arg); /* polled during the transfer; may be NULL */
    void *stop_arg;
};

struct http_fetch_res {
    enum http_fetch_status status;
    long http_status;   /* 0 when no response */
    char *body;         /* NUL-terminated, body_len bytes; free with http_fetch_res_free */
    size_t body_len;
    json_t *headers;    /* response headers, lower-case names → value (last one wins) */
    char error[256];    /* human reason when status != OK (never includes the request body) */
};

/* Performs the request. Returns res->status. Release res with http_fetch_res_free. */
enum http_fetch_status http_fetch(const struct http_fetch_req *rq, struct http_fetch_res *res);
void http_fetch_res_free(struct http_fetch_res *res);

/* The address policy on its own: true when sa (AF_INET or AF_INET6) is a public unicast
 * address an outbound request may reach. */
bool http_fetch_addr_public(const struct sockaddr *sa);

/* True for errors worth retrying (timeouts, connection failures) as opposed to a request that
 * can never succeed (a refused target, a malformed URL). */
bool http_fetch_retryable(enum http_fetch_status s);

#endif
