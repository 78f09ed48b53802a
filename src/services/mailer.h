/*
 * mailer.h — outgoing email (verification, password reset, invitations, security alerts).
 *
 * Owns the delivery of one message at a time, chosen once from the configuration:
 *   - SMTP_HOST set: SMTP through libcurl (smtps:// on port 465, else smtp:// with STARTTLS
 *     when the server offers it; STARTTLS is required when credentials would otherwise cross a
 *     non-loopback network in clear). AUTH with SMTP_USER/SMTP_PASS when set, envelope sender
 *     EMAIL_FROM (default no-reply@localhost), 10 s connect / 30 s overall timeouts. The
 *     message is built here: Date, From, To, Subject (RFC 2047 when not plain ASCII),
 *     Message-ID, MIME-Version, text/plain UTF-8 quoted-printable, multipart/alternative when
 *     there is an HTML body, CRLF line endings. curl does the SMTP dot-stuffing.
 *   - no SMTP_HOST, development or test: the dev outbox, <data_dir>/outbox.jsonl (mode 0600),
 *     one JSON line {to, subject, kind, text, html?, createdAt} per message, one write(2) under
 *     a lock; a log line names recipient, subject and kind.
 *   - no SMTP_HOST, staging or production: every send fails with MAILER_E_NOT_CONFIGURED.
 *
 * Bodies carry tokens and links, so they are secrets: only recipient, subject and kind are
 * ever logged. A mailer is immutable after mailer_new() and may be shared by any number of
 * threads (each send uses its own curl handle).
 */
#ifndef ZYGO_SERVICES_MAILER_H
#define ZYGO_SERVICES_MAILER_H

#include <jansson.h>

#include "lib/common.h"

struct config;
struct mailer;

/* Results of mailer_send (0 is success). */
enum mailer_result {
    MAILER_OK = 0,
    MAILER_E_INVALID = -1,        /* the message itself is unacceptable: do not retry */
    MAILER_E_NOT_CONFIGURED = -2, /* staging/production without SMTP_HOST */
    MAILER_E_SEND = -3,           /* the SMTP transaction failed: worth retrying later */
    MAILER_E_OUTBOX = -4,         /* the dev outbox could not be written */
};

/* Limits on what a message may hold (bytes). */
#define MAILER_ADDR_MAX 254
#define MAILER_SUBJECT_MAX 998
#define MAILER_KIND_MAX 64
#define MAILER_BODY_MAX (1024 * 1024)

/* One message. Strings are borrowed for the duration of the call. */
struct mail {
    const char *to;      /* one address, "local@domain" (no display name) */
    const char *subject; /* UTF-8, no CR/LF */
    const char *text;    /* plain-text body, UTF-8 (LF or CRLF line ends) */
    const char *html;    /* optional HTML body, UTF-8; NULL for text only */
    const char *kind;    /* "email_verification", "password_reset", "invitation",
                            "security_alert", …: [a-z0-9_], for logs and the outbox */
};

/* A mailer for cfg (read now; cfg may be freed afterwards). Never NULL. */
struct mailer *mailer_new(const struct config *cfg);
void mailer_free(struct mailer *m);

/* True when the mailer delivers over SMTP (SMTP_HOST is set). */
bool mailer_uses_smtp(const struct mailer *m);

/*
 * Sends (or, without SMTP in development/test, records) one message. Blocking: call it from a
 * worker or job, never from an I/O thread. Returns MAILER_OK, or a negative enum mailer_result
 * with a human-readable reason in err (which never contains the body).
 */
int mailer_send(struct mailer *m, const struct mail *msg, char *err, size_t errlen);

/* The dev outbox file of this mailer, or NULL when it sends over SMTP or has no outbox
 * (staging/production). Owned by the mailer. */
const char *mailer_outbox_path(const struct mailer *m);

/*
 * Reads <data_dir>/outbox.jsonl: *messages becomes a new JSON array with one object per line,
 * oldest first (empty when the file does not exist). Returns 0, or -1 (and *messages NULL)
 * when the file cannot be read or a line is not a JSON object.
 */
int mailer_outbox_read(const char *data_dir, json_t **messages);

/* True when addr is a single plain address we are willing to send to ("local@domain": ASCII,
 * no spaces, controls, brackets, quotes or commas; a domain of letters, digits, '-' and '.'). */
bool mailer_address_valid(const char *addr);

#endif
