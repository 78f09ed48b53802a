/* The mailer: real SMTP through libcurl to a fake server on loopback (headers, encoding,
 * dot-stuffing, AUTH, refusals, a server that is down, concurrency), the development outbox
 * (file mode, one JSON line per message, concurrent writers), production without SMTP, and
 * header injection. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fake_smtp.h"
#include "lib/buf.h"
#include "lib/config.h"
#include "lib/log.h"
#include "services/mailer.h"
#include "support.h"

static char dir[256];
static char log_path[320];
static int log_fd = -1;

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/zygo-mailer-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(log_path, sizeof(log_path), "%s/log.jsonl", dir);
    log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    cr_assert_geq(log_fd, 0);
    log_init(LOG_INFO, false, log_fd);
}

static void teardown(void)
{
    log_init(LOG_SILENT, false, 2);
    close(log_fd);
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(mailer, .init = setup, .fini = teardown, .timeout = 60);

/* A configuration for node_env with the data dir in the temporary directory, plus extra
 * "NAME=value" strings (NULL-terminated, may be NULL). */
static void load_cfg(struct config *cfg, const char *node_env, const char *const *extra)
{
    static char env_line[64], data_line[300];
    snprintf(env_line, sizeof(env_line), "NODE_ENV=%s", node_env);
    snprintf(data_line, sizeof(data_line), "ZYGO_DATA_DIR=%s/data", dir);
    char *env[32];
    size_t n = 0;
    env[n++] = env_line;
    env[n++] = data_line;
    env[n++] = "ZYGO_ENV_FILE=/nonexistent/.env";
    env[n++] = "JWT_SECRET=0123456789abcdef0123456789abcdef-mailer";
    env[n++] = "ENCRYPTION_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    env[n++] = "APP_URL=https://app.zygo.test";
    env[n++] = "API_URL=https://api.zygo.test";
    for (size_t i = 0; extra && extra[i] && n < ARRAY_LEN(env) - 1; i++)
        env[n++] = (char *)extra[i];
    env[n] = NULL;
    struct config_errors errs;
    int rc = config_load(cfg, env, &errs);
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "config: %s\n", errs.v[i]);
    config_errors_free(&errs);
    cr_assert_eq(rc, 0, "test configuration is invalid");
}

/* A mailer pointed at the fake server on port (user/pass may be NULL). */
static struct mailer *smtp_mailer(struct config *cfg, int port, const char *user, const char *pass)
{
    static char host[64], port_line[64], user_line[128], pass_line[128];
    snprintf(host, sizeof(host), "SMTP_HOST=127.0.0.1");
    snprintf(port_line, sizeof(port_line), "SMTP_PORT=%d", port);
    const char *extra[6] = {host, port_line, "EMAIL_FROM=hello@zygo.test"};
    size_t n = 3;
    if (user) {
        snprintf(user_line, sizeof(user_line), "SMTP_USER=%s", user);
        extra[n++] = user_line;
    }
    if (pass) {
        snprintf(pass_line, sizeof(pass_line), "SMTP_PASS=%s", pass);
        extra[n++] = pass_line;
    }
    extra[n] = NULL;
    load_cfg(cfg, "test", extra);
    struct mailer *m = mailer_new(cfg);
    cr_assert(mailer_uses_smtp(m));
    cr_assert_null(mailer_outbox_path(m));
    return m;
}

/* ---- decoding what the server received -------------------------------------------------- */

/* The header block (up to the blank line) of a message or MIME part; caller frees. */
static char *header_block(const char *data)
{
    const char *end = strstr(data, "\r\n\r\n");
    cr_assert_not_null(end, "no blank line after the headers");
    return xstrndup(data, (size_t)(end - data) + 2);
}

static const char *body_of(const char *data)
{
    const char *end = strstr(data, "\r\n\r\n");
    cr_assert_not_null(end);
    return end + 4;
}

/* Unfolded value of header `name` (first occurrence, case-insensitive) in a header block;
 * caller frees; NULL if absent. */
static char *header(const char *block, const char *name)
{
    size_t nl = strlen(name);
    for (const char *p = block; *p;) {
        const char *eol = strstr(p, "\r\n");
        cr_assert_not_null(eol, "header line without CRLF");
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            struct buf v;
            buf_init(&v, 1 << 16);
            const char *q = p + nl + 1;
            while (*q == ' ')
                q++;
            for (;;) {
                buf_append(&v, q, (size_t)(eol - q));
                if (eol[2] != ' ' && eol[2] != '\t')
                    break;
                q = eol + 2; /* unfolding removes the CRLF, keeps the whitespace */
                eol = strstr(q, "\r\n");
                cr_assert_not_null(eol);
            }
            buf_cstr(&v);
            return buf_detach(&v, NULL);
        }
        p = eol + 2;
    }
    return NULL;
}

static int b64v(int c)
{
    const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const char *p = c ? strchr(tab, c) : NULL;
    return p ? (int)(p - tab) : -1;
}

static void b64_decode_into(struct buf *out, const char *s, size_t n)
{
    unsigned acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n && s[i] != '='; i++) {
        int v = b64v((unsigned char)s[i]);
        cr_assert_geq(v, 0, "bad base64 character '%c'", s[i]);
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            buf_putc(out, (char)((acc >> bits) & 0xff));
        }
    }
}

/* RFC 2047 decoding of a header value made only of =?UTF-8?B?…?= words, or plain text. */
static char *decode_2047(const char *v)
{
    struct buf out;
    buf_init(&out, 1 << 16);
    if (strncmp(v, "=?", 2) != 0) {
        buf_puts(&out, v);
    } else {
        const char *p = v;
        while (*p) {
            while (*p == ' ' || *p == '\t')
                p++;
            if (!*p)
                break;
            cr_assert(strncmp(p, "=?UTF-8?B?", 10) == 0, "not an encoded word: %s", p);
            const char *start = p + 10;
            const char *end = strstr(start, "?=");
            cr_assert_not_null(end);
            cr_assert_leq((size_t)(end + 2 - p), 75, "encoded word longer than 75 characters");
            b64_decode_into(&out, start, (size_t)(end - start));
            p = end + 2;
        }
    }
    buf_cstr(&out);
    return buf_detach(&out, NULL);
}

/* Quoted-printable decoding (soft breaks removed, =XX decoded). */
static char *decode_qp(const char *s, size_t n)
{
    struct buf out;
    buf_init(&out, 1 << 24);
    for (size_t i = 0; i < n; i++) {
        if (s[i] != '=') {
            buf_putc(&out, s[i]);
            continue;
        }
        if (i + 2 < n && s[i + 1] == '\r' && s[i + 2] == '\n') {
            i += 2;
            continue;
        }
        cr_assert(i + 2 < n, "truncated =XX");
        int hi = zy_hexval((unsigned char)s[i + 1]), lo = zy_hexval((unsigned char)s[i + 2]);
        cr_assert(hi >= 0 && lo >= 0, "bad =XX escape");
        buf_putc(&out, (char)(hi * 16 + lo));
        i += 2;
    }
    buf_cstr(&out);
    return buf_detach(&out, NULL);
}

/* Every line ends in CRLF (no bare CR or LF) and is at most `max` characters. */
static void assert_lines(const char *data, size_t max)
{
    size_t col = 0;
    for (const char *p = data; *p; p++) {
        if (*p == '\r') {
            cr_assert_eq(p[1], '\n', "bare CR at offset %zu", (size_t)(p - data));
            p++;
            col = 0;
            continue;
        }
        cr_assert_neq(*p, '\n', "bare LF at offset %zu", (size_t)(p - data));
        col++;
        cr_assert_leq(col, max, "line longer than %zu at offset %zu", max, (size_t)(p - data));
    }
}

/* LF → CRLF. */
static char *crlf(const char *s)
{
    struct buf out;
    buf_init(&out, 1 << 24);
    for (; *s; s++) {
        if (*s == '\n')
            buf_putc(&out, '\r');
        buf_putc(&out, *s);
    }
    buf_cstr(&out);
    return buf_detach(&out, NULL);
}

static char *log_text(void)
{
    char *t = slurp(log_path);
    return t ? t : xstrdup("");
}

/* ---- SMTP -------------------------------------------------------------------------------- */

static const char *SUBJECT_UTF8 = "V\xc3\xa9rifiez votre adresse \xe2\x9c\x93 \xe2\x80\x94 "
                                  "un tr\xc3\xa8s long sujet pour \xc3\xaatre repli\xc3\xa9 "
                                  "sur plusieurs mots encod\xc3\xa9s \xf0\x9f\x98\x80";
static const char *TEXT_BODY = "Hello,\n"
                               ".hidden line that starts with a dot\n"
                               "..two dots\n"
                               ".\n"
                               "caf\xc3\xa9 = 3\xe2\x82\xac, trailing space \n"
                               "Your code: TOKEN-abc123-SECRET\n"
                               "end";

Test(mailer, smtp_message_is_well_formed)
{
    struct fake_smtp fs;
    cr_assert_eq(fake_smtp_start(&fs, NULL), 0);
    struct config cfg;
    struct mailer *m = smtp_mailer(&cfg, fs.port, NULL, NULL);

    /* a 300-character line must be wrapped by quoted-printable soft breaks */
    struct buf text;
    buf_init(&text, 1 << 16);
    buf_puts(&text, TEXT_BODY);
    buf_putc(&text, '\n');
    for (int i = 0; i < 300; i++)
        buf_putc(&text, (char)('a' + i % 26));
    struct mail msg = {.to = "ada@example.com",
                       .subject = SUBJECT_UTF8,
                       .text = buf_cstr(&text),
                       .kind = "email_verification"};
    char err[256];
    time_t before = time(NULL);
    cr_assert_eq(mailer_send(m, &msg, err, sizeof(err)), MAILER_OK, "%s", err);
    cr_assert_eq(fake_smtp_count(&fs), 1);
    const struct fake_smtp_msg *r = fake_smtp_msg(&fs, 0);
    cr_assert_str_eq(r->mail_from, "hello@zygo.test");
    cr_assert_eq(r->nrcpt, 1);
    cr_assert_str_eq(r->rcpt[0], "ada@example.com");
    cr_assert_null(r->auth_user, "no AUTH without SMTP_USER");
    assert_lines(r->data, 998);

    char *h = header_block(r->data);
    char *date = header(h, "Date"), *from = header(h, "From"), *to = header(h, "To");
    char *subj = header(h, "Subject"), *mid = header(h, "Message-ID");
    char *mime = header(h, "MIME-Version"), *ctype = header(h, "Content-Type");
    char *cte = header(h, "Content-Transfer-Encoding");
    cr_assert_not_null(date);
    struct tm tm = {0};
    const char *end = strptime(date, "%a, %d %b %Y %H:%M:%S %z", &tm);
    cr_assert(end && *end == '\0', "Date is not RFC 5322: %s", date);
    time_t t = timegm(&tm);
    cr_assert(t >= before - 2 && t <= time(NULL) + 2, "Date is not now: %s", date);
    cr_assert_str_eq(from, "hello@zygo.test");
    cr_assert_str_eq(to, "ada@example.com");
    cr_assert_not_null(subj);
    cr_assert(strncmp(subj, "=?UTF-8?B?", 10) == 0, "non-ASCII subject not encoded: %s", subj);
    for (const char *p = subj; *p; p++)
        cr_assert((unsigned char)*p < 0x80, "raw 8-bit byte in the Subject header");
    char *subj_dec = decode_2047(subj);
    cr_assert_str_eq(subj_dec, SUBJECT_UTF8);
    cr_assert_not_null(mid);
    size_t ml = strlen(mid);
    cr_assert(mid[0] == '<' && ml > 13 && strcmp(mid + ml - 11, "@zygo.test>") == 0,
              "Message-ID: %s", mid);
    cr_assert_null(strchr(mid, ' '));
    cr_assert_str_eq(mime, "1.0");
    cr_assert_str_eq(ctype, "text/plain; charset=UTF-8");
    cr_assert_str_eq(cte, "quoted-printable");
    /* header lines stay within the 78 characters RFC 5322 recommends */
    assert_lines(h, 78);

    const char *body = body_of(r->data);
    assert_lines(body, 76);
    char *decoded = decode_qp(body, strlen(body));
    char *want = crlf(buf_cstr(&text));
    size_t dl = strlen(decoded);
    cr_assert(dl >= 2 && strcmp(decoded + dl - 2, "\r\n") == 0);
    decoded[dl - 2] = '\0';
    cr_assert_str_eq(decoded, want);

    /* the log names recipient, subject and kind, never the body */
    char *lt = log_text();
    cr_assert(strstr(lt, "\"msg\":\"email sent\""), "%s", lt);
    cr_assert(strstr(lt, "\"to\":\"ada@example.com\""), "%s", lt);
    cr_assert(strstr(lt, "\"kind\":\"email_verification\""), "%s", lt);
    cr_assert_null(strstr(lt, "TOKEN-abc123-SECRET"), "the body leaked into the log");

    free(lt);
    free(want);
    free(decoded);
    free(subj_dec);
    free(date), free(from), free(to), free(subj), free(mid), free(mime), free(ctype), free(cte);
    free(h);
    buf_free(&text);
    mailer_free(m);
    config_free(&cfg);
    fake_smtp_stop(&fs);
}

Test(mailer, smtp_plain_ascii_subject_and_html_alternative)
{
    struct fake_smtp fs;
    cr_assert_eq(fake_smtp_start(&fs, NULL), 0);
    struct config cfg;
    struct mailer *m = smtp_mailer(&cfg, fs.port, NULL, NULL);
    const char *html = "<p>Hello <b>Ada</b>,</p>\n<p>.dot line &amp; caf\xc3\xa9</p>";
    struct mail msg = {.to = "ada@example.com",
                       .subject = "You are invited to Acme",
                       .text = "Hello Ada,\njoin us: https://app.zygo.test/i/abc",
                       .html = html,
                       .kind = "invitation"};
    char err[256];
    cr_assert_eq(mailer_send(m, &msg, err, sizeof(err)), MAILER_OK, "%s", err);
    const struct fake_smtp_msg *r = fake_smtp_msg(&fs, 0);
    cr_assert_not_null(r);
    assert_lines(r->data, 998);
    char *h = header_block(r->data);
    assert_lines(h, 78);
    char *subj = header(h, "Subject"), *ctype = header(h, "Content-Type");
    cr_assert_str_eq(subj, "You are invited to Acme");
    const char *prefix = "multipart/alternative; boundary=\"";
    cr_assert(strncmp(ctype, prefix, strlen(prefix)) == 0, "Content-Type: %s", ctype);
    char boundary[128];
    const char *b0 = ctype + strlen(prefix);
    const char *b1 = strchr(b0, '"');
    cr_assert_not_null(b1);
    snprintf(boundary, sizeof(boundary), "\r\n--%.*s", (int)(b1 - b0), b0);

    /* parts: after each delimiter line, up to the next delimiter */
    const char *want_type[2] = {"text/plain; charset=UTF-8", "text/html; charset=UTF-8"};
    const char *want_body[2] = {msg.text, html};
    const char *p = strstr(r->data, boundary);
    for (int i = 0; i < 2; i++) {
        cr_assert_not_null(p, "part %d missing", i);
        p += strlen(boundary);
        cr_assert(strncmp(p, "\r\n", 2) == 0);
        p += 2;
        const char *next = strstr(p, boundary);
        cr_assert_not_null(next);
        char *part = xstrndup(p, (size_t)(next - p));
        char *ph = header_block(part);
        char *pt = header(ph, "Content-Type"), *pe = header(ph, "Content-Transfer-Encoding");
        cr_assert_str_eq(pt, want_type[i]);
        cr_assert_str_eq(pe, "quoted-printable");
        const char *pb = body_of(part);
        char *dec = decode_qp(pb, strlen(pb));
        char *want = crlf(want_body[i]);
        cr_assert_str_eq(dec, want);
        free(want), free(dec), free(pt), free(pe), free(ph), free(part);
        p = next;
    }
    cr_assert(strncmp(p + strlen(boundary), "--\r\n", 4) == 0, "closing delimiter missing");
    free(subj), free(ctype), free(h);
    mailer_free(m);
    config_free(&cfg);
    fake_smtp_stop(&fs);
}

Test(mailer, smtp_auth_with_user_and_pass)
{
    struct fake_smtp fs;
    struct fake_smtp_options opt = {.require_auth = true, .user = "mailer", .pass = "s3cret pw"};
    cr_assert_eq(fake_smtp_start(&fs, &opt), 0);
    struct config cfg;
    struct mailer *m = smtp_mailer(&cfg, fs.port, "mailer", "s3cret pw");
    struct mail msg = {.to = "bob@example.org",
                       .subject = "Reset your password",
                       .text = "https://app.zygo.test/reset?token=xyz",
                       .kind = "password_reset"};
    char err[256];
    cr_assert_eq(mailer_send(m, &msg, err, sizeof(err)), MAILER_OK, "%s", err);
    const struct fake_smtp_msg *r = fake_smtp_msg(&fs, 0);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->auth_user, "mailer");
    cr_assert_str_eq(r->auth_pass, "s3cret pw");
    cr_assert(strcmp(r->auth_mech, "PLAIN") == 0 || strcmp(r->auth_mech, "LOGIN") == 0);
    mailer_free(m);
    config_free(&cfg);

    /* a wrong password is an error, and the error does not repeat the password */
    m = smtp_mailer(&cfg, fs.port, "mailer", "wrong-password");
    int rc = mailer_send(m, &msg, err, sizeof(err));
    cr_assert_eq(rc, MAILER_E_SEND, "rc %d: %s", rc, err);
    cr_assert_null(strstr(err, "wrong-password"));
    cr_assert_eq(fake_smtp_count(&fs), 1);
    mailer_free(m);
    config_free(&cfg);
    fake_smtp_stop(&fs);
}

Test(mailer, smtp_auth_login_when_it_is_the_only_mechanism)
{
    struct fake_smtp fs;
    struct fake_smtp_options opt = {
        .require_auth = true, .user = "mailer", .pass = "pw", .auth_mechs = "LOGIN"};
    cr_assert_eq(fake_smtp_start(&fs, &opt), 0);
    struct config cfg;
    struct mailer *m = smtp_mailer(&cfg, fs.port, "mailer", "pw");
    struct mail msg = {.to = "bob@example.org", .subject = "Hi", .text = "x", .kind = "test"};
    char err[256];
    cr_assert_eq(mailer_send(m, &msg, err, sizeof(err)), MAILER_OK, "%s", err);
    const struct fake_smtp_msg *r = fake_smtp_msg(&fs, 0);
    cr_assert_not_null(r);
    cr_assert_str_eq(r->auth_mech, "LOGIN");
    cr_assert_str_eq(r->auth_user, "mailer");
    cr_assert_str_eq(r->auth_pass, "pw");
    mailer_free(m);
    config_free(&cfg);
    fake_smtp_stop(&fs);
}

Test(mailer, smtp_credentials_never_sent_in_clear_to_a_remote_host)
{
    /* 2130706433 is 127.0.0.1 written as one number: curl reaches the fake server, but the
     * mailer treats the host as remote, so it must insist on STARTTLS (which the fake server
     * does not offer) and never send the password. */
    struct fake_smtp fs;
    cr_assert_eq(fake_smtp_start(&fs, NULL), 0);
    char port_line[64];
    snprintf(port_line, sizeof(port_line), "SMTP_PORT=%d", fs.port);
    const char *extra[] = {"SMTP_HOST=2130706433", port_line, "SMTP_USER=mailer",
                           "SMTP_PASS=s3cret", NULL};
    struct config cfg;
    load_cfg(&cfg, "production", extra);
    struct mailer *m = mailer_new(&cfg);
    struct mail msg = {.to = "bob@example.org", .subject = "Hi", .text = "x", .kind = "test"};
    char err[256];
    int rc = mailer_send(m, &msg, err, sizeof(err));
    cr_assert_eq(rc, MAILER_E_SEND, "rc %d: %s", rc, err);
    cr_assert_eq(fake_smtp_count(&fs), 0);
    mailer_free(m);
    config_free(&cfg);
    fake_smtp_stop(&fs);
}

Test(mailer, smtp_recipient_refused_is_an_error)
{
    struct fake_smtp fs;
    struct fake_smtp_options opt = {.reject_rcpt = "nobody@example.com"};
    cr_assert_eq(fake_smtp_start(&fs, &opt), 0);
    struct config cfg;
    struct mailer *m = smtp_mailer(&cfg, fs.port, NULL, NULL);
    struct mail msg = {.to = "nobody@example.com",
                       .subject = "Security alert",
                       .text = "A new sign-in",
                       .kind = "security_alert"};
    char err[256];
    int rc = mailer_send(m, &msg, err, sizeof(err));
    cr_assert_eq(rc, MAILER_E_SEND, "rc %d: %s", rc, err);
    cr_assert(strstr(err, "550"), "the error names the reply: %s", err);
    cr_assert_eq(fake_smtp_rejected(&fs), 1);
    cr_assert_eq(fake_smtp_count(&fs), 0);
    char *lt = log_text();
    cr_assert(strstr(lt, "\"msg\":\"email not sent\""), "%s", lt);
    free(lt);

    /* the same mailer still delivers to an accepted address afterwards */
    msg.to = "somebody@example.com";
    cr_assert_eq(mailer_send(m, &msg, err, sizeof(err)), MAILER_OK, "%s", err);
    cr_assert_eq(fake_smtp_count(&fs), 1);
    mailer_free(m);
    config_free(&cfg);
    fake_smtp_stop(&fs);
}

Test(mailer, smtp_server_down_fails_quickly)
{
    int port = free_port(); /* nothing listens there */
    cr_assert_gt(port, 0);
    struct config cfg;
    struct mailer *m = smtp_mailer(&cfg, port, NULL, NULL);
    struct mail msg = {.to = "ada@example.com", .subject = "Hi", .text = "x", .kind = "test"};
    char err[256];
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    int rc = mailer_send(m, &msg, err, sizeof(err));
    clock_gettime(CLOCK_MONOTONIC, &b);
    double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    cr_assert_eq(rc, MAILER_E_SEND, "rc %d: %s", rc, err);
    cr_assert(strlen(err) > 0);
    cr_assert_lt(s, 3.0, "took %.2fs", s);
    mailer_free(m);
    config_free(&cfg);
}

struct smtp_worker {
    struct mailer *m;
    int id;
    int failures;
};

static void *smtp_worker_main(void *arg)
{
    struct smtp_worker *w = arg;
    for (int i = 0; i < 3; i++) {
        char to[64], subject[64], err[256];
        snprintf(to, sizeof(to), "user%d.%d@example.com", w->id, i);
        snprintf(subject, sizeof(subject), "Message %d/%d", w->id, i);
        struct mail msg = {.to = to, .subject = subject, .text = "hello", .kind = "test"};
        if (mailer_send(w->m, &msg, err, sizeof(err)) != MAILER_OK)
            w->failures++;
    }
    return NULL;
}

Test(mailer, smtp_concurrent_sends)
{
    struct fake_smtp fs;
    cr_assert_eq(fake_smtp_start(&fs, NULL), 0);
    struct config cfg;
    struct mailer *m = smtp_mailer(&cfg, fs.port, NULL, NULL);
    pthread_t th[8];
    struct smtp_worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct smtp_worker){.m = m, .id = i};
        cr_assert_eq(pthread_create(&th[i], NULL, smtp_worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(w[i].failures, 0, "worker %d", i);
    }
    cr_assert_eq(fake_smtp_count(&fs), 24);
    /* every recipient exactly once, every Message-ID distinct */
    bool seen[8][3] = {{false}};
    char *ids[24];
    for (size_t i = 0; i < 24; i++) {
        const struct fake_smtp_msg *r = fake_smtp_msg(&fs, i);
        int a, b;
        cr_assert_eq(sscanf(r->rcpt[0], "user%d.%d@", &a, &b), 2);
        cr_assert(a >= 0 && a < 8 && b >= 0 && b < 3 && !seen[a][b]);
        seen[a][b] = true;
        char *h = header_block(r->data);
        ids[i] = header(h, "Message-ID");
        free(h);
        for (size_t j = 0; j < i; j++)
            cr_assert_str_neq(ids[i], ids[j]);
    }
    for (size_t i = 0; i < 24; i++)
        free(ids[i]);
    mailer_free(m);
    config_free(&cfg);
    fake_smtp_stop(&fs);
}

/* ---- development outbox -------------------------------------------------------------------- */

static size_t count_lines(const char *path)
{
    char *t = slurp(path);
    cr_assert_not_null(t);
    size_t n = 0;
    for (const char *p = t; *p; p++)
        n += *p == '\n';
    size_t len = strlen(t);
    cr_assert(len == 0 || t[len - 1] == '\n', "the last line is not terminated");
    free(t);
    return n;
}

static void outbox_roundtrip(const char *node_env)
{
    struct config cfg;
    load_cfg(&cfg, node_env, NULL);
    struct mailer *m = mailer_new(&cfg);
    cr_assert_not(mailer_uses_smtp(m));
    char want_path[400];
    snprintf(want_path, sizeof(want_path), "%s/data/outbox.jsonl", dir);
    cr_assert_str_eq(mailer_outbox_path(m), want_path);

    json_t *arr;
    cr_assert_eq(mailer_outbox_read(cfg.data_dir, &arr), 0);
    cr_assert_eq(json_array_size(arr), 0, "no file yet: an empty list");
    json_decref(arr);

    struct mail a = {.to = "ada@example.com",
                     .subject = SUBJECT_UTF8,
                     .text = TEXT_BODY,
                     .kind = "email_verification"};
    struct mail b = {.to = "bob@example.org",
                     .subject = "Invitation",
                     .text = "join",
                     .html = "<p>join \"now\"</p>",
                     .kind = "invitation"};
    char err[256];
    cr_assert_eq(mailer_send(m, &a, err, sizeof(err)), MAILER_OK, "%s", err);
    cr_assert_eq(mailer_send(m, &b, err, sizeof(err)), MAILER_OK, "%s", err);

    struct stat st;
    cr_assert_eq(stat(want_path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    cr_assert_eq(count_lines(want_path), 2);

    cr_assert_eq(mailer_outbox_read(cfg.data_dir, &arr), 0);
    cr_assert_eq(json_array_size(arr), 2);
    json_t *x = json_array_get(arr, 0), *y = json_array_get(arr, 1);
    cr_assert_str_eq(json_string_value(json_object_get(x, "to")), "ada@example.com");
    cr_assert_str_eq(json_string_value(json_object_get(x, "subject")), SUBJECT_UTF8);
    cr_assert_str_eq(json_string_value(json_object_get(x, "kind")), "email_verification");
    cr_assert_str_eq(json_string_value(json_object_get(x, "text")), TEXT_BODY);
    cr_assert_null(json_object_get(x, "html"));
    const char *created = json_string_value(json_object_get(x, "createdAt"));
    cr_assert_not_null(created);
    struct tm tm = {0};
    const char *end = strptime(created, "%Y-%m-%dT%H:%M:%S", &tm);
    cr_assert(end && end[0] == '.' && end[4] == 'Z', "createdAt: %s", created);
    cr_assert_str_eq(json_string_value(json_object_get(y, "html")), "<p>join \"now\"</p>");
    cr_assert_str_eq(json_string_value(json_object_get(y, "kind")), "invitation");
    json_decref(arr);

    /* logged with recipient, subject and kind; the body stays out of the log */
    char *lt = log_text();
    cr_assert(strstr(lt, "\"msg\":\"email written to the dev outbox\""), "%s", lt);
    cr_assert(strstr(lt, "\"to\":\"ada@example.com\""), "%s", lt);
    cr_assert(strstr(lt, "\"kind\":\"invitation\""), "%s", lt);
    cr_assert(strstr(lt, "\"subject\":\"Invitation\""), "%s", lt);
    cr_assert_null(strstr(lt, "TOKEN-abc123-SECRET"), "the body leaked into the log");
    free(lt);

    mailer_free(m);
    config_free(&cfg);
}

Test(mailer, outbox_in_development)
{
    outbox_roundtrip("development");
}

Test(mailer, outbox_in_test)
{
    outbox_roundtrip("test");
}

Test(mailer, outbox_tightens_an_existing_file_to_0600)
{
    struct config cfg;
    load_cfg(&cfg, "development", NULL);
    char path[400];
    snprintf(path, sizeof(path), "%s/outbox.jsonl", cfg.data_dir);
    mkdir(cfg.data_dir, 0700);
    int fd = open(path, O_WRONLY | O_CREAT, 0644);
    cr_assert_geq(fd, 0);
    cr_assert_eq(fchmod(fd, 0644), 0);
    close(fd);
    struct mailer *m = mailer_new(&cfg);
    struct mail msg = {.to = "ada@example.com", .subject = "Hi", .text = "x", .kind = "test"};
    char err[256];
    cr_assert_eq(mailer_send(m, &msg, err, sizeof(err)), MAILER_OK, "%s", err);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    mailer_free(m);
    config_free(&cfg);
}

struct outbox_worker {
    struct mailer *m;
    int id;
    int failures;
};

#define OUTBOX_PER_THREAD 40

static void *outbox_worker_main(void *arg)
{
    struct outbox_worker *w = arg;
    /* some bodies far larger than PIPE_BUF, so a torn write would show */
    struct buf big;
    buf_init(&big, 1 << 20);
    for (int i = 0; i < 20000; i++)
        buf_putc(&big, (char)('A' + (w->id + i) % 26));
    for (int i = 0; i < OUTBOX_PER_THREAD; i++) {
        char to[64], subject[64], err[256];
        snprintf(to, sizeof(to), "user%d.%d@example.com", w->id, i);
        snprintf(subject, sizeof(subject), "t%d m%d", w->id, i);
        struct mail msg = {.to = to,
                           .subject = subject,
                           .text = i % 4 == 0 ? buf_cstr(&big) : "short body\nline 2",
                           .html = i % 3 == 0 ? "<p>x</p>" : NULL,
                           .kind = "security_alert"};
        if (mailer_send(w->m, &msg, err, sizeof(err)) != MAILER_OK)
            w->failures++;
    }
    buf_free(&big);
    return NULL;
}

Test(mailer, outbox_concurrent_writers)
{
    struct config cfg;
    load_cfg(&cfg, "test", NULL);
    struct mailer *m = mailer_new(&cfg);
    pthread_t th[8];
    struct outbox_worker w[8];
    for (int i = 0; i < 8; i++) {
        w[i] = (struct outbox_worker){.m = m, .id = i};
        cr_assert_eq(pthread_create(&th[i], NULL, outbox_worker_main, &w[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        cr_assert_eq(w[i].failures, 0, "worker %d", i);
    }
    cr_assert_eq(count_lines(mailer_outbox_path(m)), 8 * OUTBOX_PER_THREAD);
    json_t *arr;
    cr_assert_eq(mailer_outbox_read(cfg.data_dir, &arr), 0, "every line is a JSON object");
    cr_assert_eq(json_array_size(arr), 8 * OUTBOX_PER_THREAD);
    bool seen[8][OUTBOX_PER_THREAD] = {{false}};
    size_t i;
    json_t *v;
    json_array_foreach (arr, i, v) {
        int a, b;
        const char *subject = json_string_value(json_object_get(v, "subject"));
        cr_assert_not_null(subject);
        cr_assert_eq(sscanf(subject, "t%d m%d", &a, &b), 2);
        cr_assert(a >= 0 && a < 8 && b >= 0 && b < OUTBOX_PER_THREAD && !seen[a][b]);
        seen[a][b] = true;
        const char *text = json_string_value(json_object_get(v, "text"));
        cr_assert_not_null(text);
        cr_assert_eq(strlen(text), b % 4 == 0 ? 20000u : strlen("short body\nline 2"));
        cr_assert_eq(json_object_get(v, "html") != NULL, b % 3 == 0);
    }
    json_decref(arr);
    mailer_free(m);
    config_free(&cfg);
}

Test(mailer, outbox_read_rejects_a_corrupt_line)
{
    char data_dir[300], path[400];
    snprintf(data_dir, sizeof(data_dir), "%s/data", dir);
    mkdir(data_dir, 0700);
    snprintf(path, sizeof(path), "%s/outbox.jsonl", data_dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("{\"to\":\"a@b.c\"}\n{not json\n", f);
    fclose(f);
    json_t *arr = (json_t *)1;
    cr_assert_eq(mailer_outbox_read(data_dir, &arr), -1);
    cr_assert_null(arr);
}

/* ---- no SMTP outside development ------------------------------------------------------------ */

Test(mailer, production_without_smtp_is_an_error)
{
    const char *envs[] = {"production", "staging"};
    for (size_t e = 0; e < ARRAY_LEN(envs); e++) {
        struct config cfg;
        load_cfg(&cfg, envs[e], NULL);
        struct mailer *m = mailer_new(&cfg);
        cr_assert_not(mailer_uses_smtp(m));
        cr_assert_null(mailer_outbox_path(m));
        struct mail msg = {.to = "ada@example.com",
                           .subject = "Verify",
                           .text = "TOKEN-abc123-SECRET",
                           .kind = "email_verification"};
        char err[256];
        int rc = mailer_send(m, &msg, err, sizeof(err));
        cr_assert_eq(rc, MAILER_E_NOT_CONFIGURED, "%s: rc %d", envs[e], rc);
        cr_assert(strstr(err, "SMTP is not configured"), "%s", err);
        char path[400];
        snprintf(path, sizeof(path), "%s/outbox.jsonl", cfg.data_dir);
        cr_assert_neq(access(path, F_OK), 0, "no outbox outside development");
        mailer_free(m);
        config_free(&cfg);
    }
    char *lt = log_text();
    cr_assert(strstr(lt, "\"level\":50"), "an error is logged: %s", lt);
    cr_assert_null(strstr(lt, "TOKEN-abc123-SECRET"));
    free(lt);
}

/* ---- refusals ------------------------------------------------------------------------------ */

static void assert_refused(struct mailer *m, const struct mail *msg, const char *what)
{
    char err[256] = "";
    int rc = mailer_send(m, msg, err, sizeof(err));
    cr_assert_eq(rc, MAILER_E_INVALID, "%s: rc %d (%s)", what, rc, err);
    cr_assert(strlen(err) > 0, "%s: no reason given", what);
}

static void refusals(struct mailer *m)
{
    struct mail ok = {.to = "ada@example.com", .subject = "Hi", .text = "x", .kind = "test"};
    struct mail msg = ok;
    msg.to = "ada@example.com\r\nBcc: eve@evil.test";
    assert_refused(m, &msg, "CRLF in to");
    msg.to = "ada@example.com\nBcc: eve@evil.test";
    assert_refused(m, &msg, "LF in to");
    msg = ok;
    msg.subject = "Hello\r\nBcc: eve@evil.test";
    assert_refused(m, &msg, "CRLF in subject");
    msg.subject = "Hello\rX-Injected: 1";
    assert_refused(m, &msg, "CR in subject");
    msg.subject = "Hello\n\nbody injected";
    assert_refused(m, &msg, "LF in subject");
    const char *bad_to[] = {"",
                            "no-at-sign",
                            "two@@example.com",
                            "a@b@example.com",
                            "<ada@example.com>",
                            "Ada <ada@example.com>",
                            "ada @example.com",
                            "ada@example.com,eve@evil.test",
                            "ada@-example.com",
                            "ada@example..com",
                            ".ada@example.com",
                            "ad..a@example.com",
                            "ada@",
                            "@example.com",
                            "ad\"a@example.com",
                            "caf\xc3\xa9@example.com"};
    for (size_t i = 0; i < ARRAY_LEN(bad_to); i++) {
        msg = ok;
        msg.to = bad_to[i];
        assert_refused(m, &msg, bad_to[i]);
    }
    msg = ok;
    msg.to = NULL;
    assert_refused(m, &msg, "no recipient");
    msg = ok;
    msg.subject = "bad \xff utf-8";
    assert_refused(m, &msg, "invalid UTF-8 subject");
    msg = ok;
    msg.kind = "Bad Kind";
    assert_refused(m, &msg, "kind");
    msg = ok;
    msg.kind = NULL;
    assert_refused(m, &msg, "no kind");
    msg = ok;
    msg.text = NULL;
    assert_refused(m, &msg, "no text");
}

Test(mailer, header_injection_refused_over_smtp)
{
    struct fake_smtp fs;
    cr_assert_eq(fake_smtp_start(&fs, NULL), 0);
    struct config cfg;
    struct mailer *m = smtp_mailer(&cfg, fs.port, NULL, NULL);
    refusals(m);
    cr_assert_eq(fake_smtp_count(&fs), 0);
    cr_assert_eq(fs.nconn, 0, "nothing reached the server");
    mailer_free(m);
    config_free(&cfg);
    fake_smtp_stop(&fs);
}

Test(mailer, header_injection_refused_in_the_outbox)
{
    struct config cfg;
    load_cfg(&cfg, "development", NULL);
    struct mailer *m = mailer_new(&cfg);
    refusals(m);
    cr_assert_neq(access(mailer_outbox_path(m), F_OK), 0, "nothing was written");
    mailer_free(m);
    config_free(&cfg);
}

Test(mailer, address_validation)
{
    const char *good[] = {"ada@example.com", "a.b+tag@sub.example.co.uk", "x@localhost",
                          "o'brien@example.ie", "user_1-2@ex-ample.org"};
    for (size_t i = 0; i < ARRAY_LEN(good); i++)
        cr_assert(mailer_address_valid(good[i]), "%s", good[i]);
    cr_assert_not(mailer_address_valid(NULL));
    char long_local[80];
    memset(long_local, 'a', 65);
    snprintf(long_local + 65, sizeof(long_local) - 65, "@x.io");
    cr_assert_not(mailer_address_valid(long_local));
}
