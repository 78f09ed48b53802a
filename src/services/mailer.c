/* mailer.c — SMTP over libcurl, or the development outbox; see mailer.h. */
#include "lib/common.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "lib/utf8.h"
#include "lib/uuid.h"
#include "services/mailer.h"

#define MAILER_DEFAULT_FROM "no-reply@localhost"
#define MAILER_DEFAULT_PORT 587 /* message submission (RFC 6409), STARTTLS */
#define MAILER_SMTPS_PORT 465   /* implicit TLS (RFC 8314) */
#define MAILER_CONNECT_TIMEOUT_MS 10000L
#define MAILER_TIMEOUT_MS 30000L
/* A whole message: headers plus two bodies after quoted-printable (at most ~3x + soft breaks). */
#define MAILER_MESSAGE_MAX (8 * MAILER_BODY_MAX + 64 * 1024)
/* One outbox line: two bodies JSON-escaped (at most 6x for control characters). */
#define MAILER_OUTBOX_LINE_MAX (13 * MAILER_BODY_MAX + 64 * 1024)
#define MAILER_OUTBOX_FILE_MAX ((size_t)256 * 1024 * 1024)
#define OUTBOX_NAME "outbox.jsonl"

enum mailer_mode { MODE_SMTP, MODE_OUTBOX, MODE_NONE };

struct mailer {
    enum mailer_mode mode;
    char *from;        /* envelope sender and From: */
    char *from_domain; /* right-hand side of Message-ID */
    /* SMTP */
    char *url; /* smtp://host:port or smtps://host:port */
    char *user;
    char *pass;
    bool require_tls; /* credentials to a non-loopback host: STARTTLS or nothing */
    bool curl_global;
    /* dev outbox */
    char *data_dir;
    char *outbox_path;
    pthread_mutex_t outbox_mu;
};

static char *dup_or_null(const char *s)
{
    return s && *s ? xstrdup(s) : NULL;
}

static bool host_is_loopback(const char *host)
{
    return strcmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
           strcmp(host, "::1") == 0 || strcmp(host, "[::1]") == 0;
}

struct mailer *mailer_new(const struct config *cfg)
{
    struct mailer *m = xcalloc(1, sizeof(*m));
    pthread_mutex_init(&m->outbox_mu, NULL);
    const char *from = cfg->email_from && *cfg->email_from ? cfg->email_from : MAILER_DEFAULT_FROM;
    if (!mailer_address_valid(from)) {
        /* config.c checks EMAIL_FROM loosely; never let a malformed one reach a header. */
        log_msg(LOG_WARN, "EMAIL_FROM is not a plain address; using %s", MAILER_DEFAULT_FROM);
        from = MAILER_DEFAULT_FROM;
    }
    m->from = xstrdup(from);
    m->from_domain = xstrdup(strchr(m->from, '@') + 1);

    if (cfg->smtp_host && *cfg->smtp_host) {
        m->mode = MODE_SMTP;
        int port = cfg->smtp_port > 0 ? cfg->smtp_port : MAILER_DEFAULT_PORT;
        const char *host = cfg->smtp_host;
        bool bracket = strchr(host, ':') && host[0] != '[';
        struct buf u;
        buf_init(&u, 1024);
        buf_printf(&u, "%s://%s%s%s:%d", port == MAILER_SMTPS_PORT ? "smtps" : "smtp",
                   bracket ? "[" : "", host, bracket ? "]" : "", port);
        m->url = buf_detach(&u, NULL);
        m->user = dup_or_null(cfg->smtp_user);
        m->pass = dup_or_null(cfg->smtp_pass);
        m->require_tls = m->user && port != MAILER_SMTPS_PORT && !host_is_loopback(host);
        m->curl_global = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
    } else if (cfg->env == ENV_DEVELOPMENT || cfg->env == ENV_TEST) {
        m->mode = MODE_OUTBOX;
        m->data_dir = xstrdup(cfg->data_dir ? cfg->data_dir : "data");
        struct buf p;
        buf_init(&p, 4096);
        buf_printf(&p, "%s/%s", m->data_dir, OUTBOX_NAME);
        m->outbox_path = buf_detach(&p, NULL);
    } else {
        m->mode = MODE_NONE;
        log_msg(LOG_WARN, "SMTP is not configured (SMTP_HOST): emails will not be sent");
    }
    return m;
}

void mailer_free(struct mailer *m)
{
    if (!m)
        return;
    if (m->pass) {
        explicit_bzero(m->pass, strlen(m->pass));
        free(m->pass);
    }
    if (m->curl_global)
        curl_global_cleanup();
    free(m->user);
    free(m->url);
    free(m->from);
    free(m->from_domain);
    free(m->data_dir);
    free(m->outbox_path);
    pthread_mutex_destroy(&m->outbox_mu);
    free(m);
}

bool mailer_uses_smtp(const struct mailer *m)
{
    return m->mode == MODE_SMTP;
}

const char *mailer_outbox_path(const struct mailer *m)
{
    return m->mode == MODE_OUTBOX ? m->outbox_path : NULL;
}

/* ---- validation ---------------------------------------------------------------------- */

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool domain_valid(const char *d, size_t n)
{
    if (n == 0 || n > 253)
        return false;
    size_t label = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)d[i];
        if (c == '.') {
            if (label == 0 || d[i - 1] == '-')
                return false;
            label = 0;
            continue;
        }
        if (!is_alnum(c) && c != '-')
            return false;
        if (c == '-' && label == 0)
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0 && d[n - 1] != '-';
}

bool mailer_address_valid(const char *addr)
{
    if (!addr)
        return false;
    size_t n = strlen(addr);
    const char *at = strchr(addr, '@');
    if (n > MAILER_ADDR_MAX || !at || strchr(at + 1, '@'))
        return false;
    size_t local = (size_t)(at - addr);
    if (local == 0 || local > 64 || addr[0] == '.' || addr[local - 1] == '.')
        return false;
    static const char specials[] = "!#$%&'*+-/=?^_`{|}~.";
    for (size_t i = 0; i < local; i++) {
        unsigned char c = (unsigned char)addr[i];
        if (!is_alnum(c) && (c == '\0' || !strchr(specials, c)))
            return false;
        if (c == '.' && addr[i + 1] == '.')
            return false;
    }
    return domain_valid(at + 1, n - local - 1);
}

static bool kind_valid(const char *k)
{
    size_t n = k ? strlen(k) : 0;
    if (n == 0 || n > MAILER_KIND_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
            return false;
    return true;
}

static int invalid(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "%s", why);
    return MAILER_E_INVALID;
}

static int validate(const struct mail *msg, char *err, size_t errlen)
{
    if (!msg || !msg->to || !msg->subject || !msg->text)
        return invalid(err, errlen, "a message needs a recipient, a subject and a text body");
    if (strpbrk(msg->to, "\r\n") || strpbrk(msg->subject, "\r\n"))
        return invalid(err, errlen, "recipient and subject must not contain CR or LF");
    if (!mailer_address_valid(msg->to))
        return invalid(err, errlen, "the recipient is not a valid email address");
    size_t sn = strlen(msg->subject);
    if (sn > MAILER_SUBJECT_MAX)
        return invalid(err, errlen, "the subject is too long");
    if (!utf8_valid(msg->subject, sn, NULL))
        return invalid(err, errlen, "the subject is not valid UTF-8");
    if (!kind_valid(msg->kind))
        return invalid(err, errlen, "the kind must be 1-64 characters of [a-z0-9_]");
    const char *bodies[2] = {msg->text, msg->html};
    for (size_t i = 0; i < 2; i++) {
        if (!bodies[i])
            continue;
        size_t n = strlen(bodies[i]);
        if (n > MAILER_BODY_MAX)
            return invalid(err, errlen, "the body is too large");
        if (!utf8_valid(bodies[i], n, NULL))
            return invalid(err, errlen, "the body is not valid UTF-8");
    }
    return MAILER_OK;
}

/* ---- building the RFC 5322 message ---------------------------------------------------- */

static void put_base64(struct buf *b, const unsigned char *p, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned)p[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)p[i + 1] << 8;
        if (i + 2 < n)
            v |= p[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        buf_append(b, q, 4);
    }
}

/* Subject text as given when it is short printable ASCII; else RFC 2047 encoded-words of 68
 * characters at most (42 bytes of whole UTF-8 characters each), one per line, so that every
 * line, "Subject: " included, stays within the 78 characters RFC 5322 recommends. */
static void put_subject(struct buf *b, const char *s)
{
    size_t n = strlen(s);
    bool plain = n <= 78 - strlen("Subject: ") && !strstr(s, "=?");
    for (size_t i = 0; plain && i < n; i++)
        plain = s[i] >= 0x20 && s[i] < 0x7f;
    buf_puts(b, "Subject: ");
    if (plain) {
        buf_append(b, s, n);
    } else if (n == 0) {
        /* nothing */
    } else {
        size_t i = 0;
        while (i < n) {
            size_t j = i;
            while (j < n) {
                size_t l = utf8_seq_len((const unsigned char *)s + j, n - j);
                if (l == 0)
                    l = 1; /* validated before; never split a byte */
                if (j + l - i > 42)
                    break;
                j += l;
            }
            if (i > 0)
                buf_puts(b, "\r\n ");
            buf_puts(b, "=?UTF-8?B?");
            put_base64(b, (const unsigned char *)s + i, j - i);
            buf_puts(b, "?=");
            i = j;
        }
    }
    buf_puts(b, "\r\n");
}

/* Quoted-printable (RFC 2045 6.7) with CRLF line ends; lines at most 76 characters. Any of
 * CRLF, LF or CR in the input ends a line. The output ends with CRLF. */
static void put_qp(struct buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t col = 0;
    for (size_t i = 0;; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\0' || c == '\r' || c == '\n') {
            buf_puts(b, "\r\n");
            col = 0;
            if (c == '\0')
                break;
            if (c == '\r' && s[i + 1] == '\n')
                i++;
            if (s[i + 1] == '\0')
                break;
            continue;
        }
        bool eol = s[i + 1] == '\0' || s[i + 1] == '\r' || s[i + 1] == '\n';
        bool literal = (c >= 33 && c <= 126 && c != '=') || ((c == ' ' || c == '\t') && !eol);
        size_t w = literal ? 1 : 3;
        /* leave room for the soft break's '=' unless this is the line's last token */
        if (col + w > (eol ? 76u : 75u)) {
            buf_puts(b, "=\r\n");
            col = 0;
        }
        if (literal) {
            buf_putc(b, (char)c);
        } else {
            char e[3] = {'=', hex[c >> 4], hex[c & 15]};
            buf_append(b, e, 3);
        }
        col += w;
    }
}

static void put_date(struct buf *b)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                         "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    buf_printf(b, "Date: %s, %02d %s %04d %02d:%02d:%02d +0000\r\n", days[tm.tm_wday % 7],
               tm.tm_mday, months[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
               tm.tm_sec);
}

static void put_part_headers(struct buf *b, const char *type)
{
    buf_printf(b, "Content-Type: %s; charset=UTF-8\r\n", type);
    buf_puts(b, "Content-Transfer-Encoding: quoted-printable\r\n");
}

/* The whole message into b; message_id receives the Message-ID's text (without <>). */
static int build_message(const struct mailer *m, const struct mail *msg, struct buf *b,
                         char *message_id, size_t idlen)
{
    char uuid[UUID_STRLEN + 1];
    uuid_v7(uuid);
    snprintf(message_id, idlen, "%s@%s", uuid, m->from_domain);
    put_date(b);
    buf_printf(b, "From: %s\r\n", m->from);
    buf_printf(b, "To: %s\r\n", msg->to);
    put_subject(b, msg->subject);
    buf_printf(b, "Message-ID: <%s>\r\n", message_id);
    buf_puts(b, "MIME-Version: 1.0\r\n");
    buf_puts(b, "Auto-Submitted: auto-generated\r\n");
    if (!msg->html) {
        put_part_headers(b, "text/plain");
        buf_puts(b, "\r\n");
        put_qp(b, msg->text);
    } else {
        /* "=_" never occurs in quoted-printable output, so the boundary cannot either. */
        char boundary[64];
        uuid_v7(uuid);
        snprintf(boundary, sizeof(boundary), "=_zygo_%s", uuid);
        buf_printf(b, "Content-Type: multipart/alternative;\r\n boundary=\"%s\"\r\n\r\n", boundary);
        buf_printf(b, "--%s\r\n", boundary);
        put_part_headers(b, "text/plain");
        buf_puts(b, "\r\n");
        put_qp(b, msg->text);
        buf_printf(b, "--%s\r\n", boundary);
        put_part_headers(b, "text/html");
        buf_puts(b, "\r\n");
        put_qp(b, msg->html);
        buf_printf(b, "--%s--\r\n", boundary);
    }
    return b->overflow ? -1 : 0;
}

/* ---- SMTP ------------------------------------------------------------------------------ */

struct reader {
    const char *p;
    size_t left;
};

static size_t read_cb(char *out, size_t size, size_t nmemb, void *userdata)
{
    struct reader *r = userdata;
    size_t n = ZY_MIN(size * nmemb, r->left);
    memcpy(out, r->p, n);
    r->p += n;
    r->left -= n;
    return n;
}

static void log_mail(enum log_level level, const struct mail *msg, const char *text,
                     const char *extra_key, const char *extra)
{
    struct log_line l;
    log_begin(&l, level);
    log_str(&l, "to", msg->to);
    log_str(&l, "subject", msg->subject);
    log_str(&l, "kind", msg->kind);
    if (extra_key)
        log_str(&l, extra_key, extra);
    log_end(&l, text);
}

static int send_smtp(struct mailer *m, const struct mail *msg, char *err, size_t errlen)
{
    struct buf body;
    char message_id[128];
    buf_init(&body, MAILER_MESSAGE_MAX);
    if (build_message(m, msg, &body, message_id, sizeof(message_id)) < 0) {
        buf_free(&body);
        return invalid(err, errlen, "the message is too large");
    }
    CURL *c = curl_easy_init();
    if (!c) {
        buf_free(&body);
        snprintf(err, errlen, "SMTP: could not create a curl handle");
        return MAILER_E_SEND;
    }
    char from[MAILER_ADDR_MAX + 3], to[MAILER_ADDR_MAX + 3];
    snprintf(from, sizeof(from), "<%s>", m->from);
    snprintf(to, sizeof(to), "<%s>", msg->to);
    struct curl_slist *rcpt = curl_slist_append(NULL, to);
    if (!rcpt)
        zy_oom(sizeof(to));
    struct reader rd = {body.data, body.len};
    char cerr[CURL_ERROR_SIZE] = "";

    curl_easy_setopt(c, CURLOPT_URL, m->url);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, MAILER_CONNECT_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, MAILER_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, cerr);
    curl_easy_setopt(c, CURLOPT_USE_SSL,
                     m->require_tls ? (long)CURLUSESSL_ALL : (long)CURLUSESSL_TRY);
    if (m->user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, m->user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, m->pass ? m->pass : "");
    }
    curl_easy_setopt(c, CURLOPT_MAIL_FROM, from);
    curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_READFUNCTION, read_cb);
    curl_easy_setopt(c, CURLOPT_READDATA, &rd);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)body.len);

    CURLcode rc = curl_easy_perform(c);
    long reply = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply);
    curl_slist_free_all(rcpt);
    curl_easy_cleanup(c);
    buf_free(&body);

    if (rc != CURLE_OK) {
        snprintf(err, errlen, "SMTP delivery failed: %s (last reply %ld)",
                 cerr[0] ? cerr : curl_easy_strerror(rc), reply);
        log_mail(LOG_WARN, msg, "email not sent", "error", err);
        return MAILER_E_SEND;
    }
    log_mail(LOG_INFO, msg, "email sent", "messageId", message_id);
    return MAILER_OK;
}

/* ---- development outbox --------------------------------------------------------------- */

static int write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int open_outbox(const struct mailer *m)
{
    int flags = O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW;
    int fd = open(m->outbox_path, flags, 0600);
    if (fd < 0 && errno == ENOENT && mkdir(m->data_dir, 0700) == 0)
        fd = open(m->outbox_path, flags, 0600);
    if (fd >= 0 && fchmod(fd, 0600) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int send_outbox(struct mailer *m, const struct mail *msg, char *err, size_t errlen)
{
    char now[48];
    zy_iso_now(now);
    struct buf line;
    buf_init(&line, MAILER_OUTBOX_LINE_MAX);
    const struct {
        const char *key;
        const char *value;
    } fields[] = {{"to", msg->to},     {"subject", msg->subject}, {"kind", msg->kind},
                  {"text", msg->text}, {"html", msg->html},       {"createdAt", now}};
    buf_putc(&line, '{');
    bool first = true;
    for (size_t i = 0; i < ARRAY_LEN(fields); i++) {
        if (!fields[i].value)
            continue;
        if (!first)
            buf_putc(&line, ',');
        first = false;
        buf_json_str(&line, fields[i].key, strlen(fields[i].key));
        buf_putc(&line, ':');
        buf_json_str(&line, fields[i].value, strlen(fields[i].value));
    }
    buf_puts(&line, "}\n");
    if (line.overflow) {
        buf_free(&line);
        return invalid(err, errlen, "the message is too large");
    }

    int rc = 0, saved = 0;
    pthread_mutex_lock(&m->outbox_mu);
    int fd = open_outbox(m);
    if (fd < 0 || write_all(fd, line.data, line.len) < 0) {
        rc = -1;
        saved = errno;
    }
    if (fd >= 0)
        close(fd);
    pthread_mutex_unlock(&m->outbox_mu);
    buf_free(&line);
    if (rc < 0) {
        snprintf(err, errlen, "dev outbox %s: %s", m->outbox_path, strerror(saved));
        log_mail(LOG_ERROR, msg, "email not written to the dev outbox", "error", err);
        return MAILER_E_OUTBOX;
    }
    log_mail(LOG_INFO, msg, "email written to the dev outbox", "outbox", m->outbox_path);
    return MAILER_OK;
}

int mailer_send(struct mailer *m, const struct mail *msg, char *err, size_t errlen)
{
    if (errlen)
        err[0] = '\0';
    int rc = validate(msg, err, errlen);
    if (rc != MAILER_OK) {
        struct log_line l;
        log_begin(&l, LOG_WARN);
        log_str(&l, "kind", msg && kind_valid(msg->kind) ? msg->kind : "");
        log_str(&l, "error", err);
        log_end(&l, "email refused");
        return rc;
    }
    switch (m->mode) {
    case MODE_SMTP:
        return send_smtp(m, msg, err, errlen);
    case MODE_OUTBOX:
        return send_outbox(m, msg, err, errlen);
    case MODE_NONE:
        break;
    }
    snprintf(err, errlen, "SMTP is not configured");
    log_mail(LOG_ERROR, msg, "email not sent: SMTP is not configured (set SMTP_HOST)", NULL, NULL);
    return MAILER_E_NOT_CONFIGURED;
}

/* ---- reading the outbox --------------------------------------------------------------- */

int mailer_outbox_read(const char *data_dir, json_t **messages)
{
    *messages = NULL;
    struct buf path;
    buf_init(&path, 4096);
    buf_printf(&path, "%s/%s", data_dir, OUTBOX_NAME);
    int fd = path.overflow ? -1 : open(buf_cstr(&path), O_RDONLY | O_CLOEXEC);
    buf_free(&path);
    if (fd < 0) {
        if (errno != ENOENT)
            return -1;
        *messages = json_array();
        return 0;
    }
    struct buf text;
    buf_init(&text, MAILER_OUTBOX_FILE_MAX);
    char chunk[65536];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof(chunk))) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || buf_append(&text, chunk, (size_t)r) < 0)
            break;
    }
    close(fd);
    if (r != 0) {
        buf_free(&text);
        return -1;
    }
    json_t *arr = json_array();
    const char *p = text.data ? text.data : "";
    const char *end = p + text.len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
        if (n > 0) {
            json_t *v = json_loadb(p, n, 0, NULL);
            if (!json_is_object(v)) {
                json_decref(v);
                json_decref(arr);
                buf_free(&text);
                return -1;
            }
            json_array_append_new(arr, v);
        }
        p += n + (nl ? 1 : 0);
    }
    buf_free(&text);
    *messages = arr;
    return 0;
}
