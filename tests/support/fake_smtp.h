/*
 * fake_smtp.h — a small SMTP server (RFC 5321) on 127.0.0.1 for tests of the mailer.
 *
 * Owns a listening socket on a free loopback port and one thread that serves connections one
 * after another: 220 greeting, EHLO/HELO (advertising AUTH PLAIN LOGIN unless told otherwise,
 * 8BITMIME, SIZE; never STARTTLS), AUTH PLAIN (with or without initial response) and AUTH LOGIN,
 * MAIL FROM, RCPT TO, DATA (354, lines up to "." with dot-unstuffing), RSET, NOOP, QUIT. Every
 * accepted message is recorded (envelope, raw data, the AUTH identity seen on its connection) for
 * assertions. Lines are capped at 1000 bytes and a message's data at FAKE_SMTP_DATA_MAX; the server
 * answers 500/552 past those. fake_smtp_stop() wakes the thread, joins it and frees everything.
 */
#ifndef ZYGO_TEST_FAKE_SMTP_H
#define ZYGO_TEST_FAKE_SMTP_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#define FAKE_SMTP_MAX_MSGS 64
#define FAKE_SMTP_MAX_RCPTS 16
#define FAKE_SMTP_DATA_MAX (4 * 1024 * 1024)

struct fake_smtp_options {
    /* RCPT TO for this address (or every address when "*") is answered 550. */
    const char *reject_rcpt;
    /* MAIL FROM before a successful AUTH is answered 530. */
    bool require_auth;
    /* AUTH is refused (535) unless username and password match these (when set). */
    const char *user;
    const char *pass;
    /* The mechanisms advertised in EHLO's AUTH line (default "PLAIN LOGIN"). */
    const char *auth_mechs;
};

/* One message as the server received it. Immutable once recorded. */
struct fake_smtp_msg {
    char *mail_from; /* envelope sender, without <> */
    char *rcpt[FAKE_SMTP_MAX_RCPTS];
    size_t nrcpt;
    char *data; /* the DATA section, dot-unstuffed, CRLF line ends, NUL-terminated */
    size_t data_len;
    char *auth_user; /* the identity of a successful AUTH on this connection, or NULL */
    char *auth_pass;
    char *auth_mech; /* "PLAIN" or "LOGIN", or NULL */
    char *helo;      /* the EHLO/HELO argument */
};

struct fake_smtp {
    int port;
    struct fake_smtp_options opt;
    /* private */
    bool running;
    int listen_fd;
    int wake[2]; /* a pipe: writing wakes the thread to stop */
    pthread_t thread;
    pthread_mutex_t mu;
    struct fake_smtp_msg msgs[FAKE_SMTP_MAX_MSGS];
    size_t nmsgs;
    size_t nconn;      /* connections served */
    size_t nrejected;  /* RCPT answered 550 */
    char *reject_rcpt; /* copies of the option strings */
    char *user;
    char *pass;
    char *auth_mechs;
};

/* Starts the server (opt may be NULL). Returns 0, or -1 when no socket/thread could be made. */
int fake_smtp_start(struct fake_smtp *s, const struct fake_smtp_options *opt);
void fake_smtp_stop(struct fake_smtp *s);

/* Messages recorded so far. */
size_t fake_smtp_count(struct fake_smtp *s);
/* Waits until at least n messages are recorded or timeout_ms passes; true when they are. */
bool fake_smtp_wait(struct fake_smtp *s, size_t n, int timeout_ms);
/* The i-th recorded message (NULL if there is none); valid until fake_smtp_stop(). */
const struct fake_smtp_msg *fake_smtp_msg(struct fake_smtp *s, size_t i);
/* RCPT commands refused with 550 so far. */
size_t fake_smtp_rejected(struct fake_smtp *s);

#endif
