/* notifications.c — see notifications.h. */
#include "lib/common.h"

#include "db/db.h"
#include "jobs/notifications.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "lib/secretbox.h"

/* Associated data of the sealed bodies: bound to the recipient, so sealed bodies copied into
 * another recipient's job do not open. */
static char *sealed_ad(const char *to)
{
    size_t n = strlen(to) + 16;
    char *ad = xmalloc(n);
    snprintf(ad, n, "notifications:%s", to);
    return ad;
}

int notifications_enqueue(struct db_conn *c, const struct secretbox_keyring *kr,
                          const char *tenant_id, const struct mail *m, const char *job_id,
                          char id_out[JOB_ID_MAX])
{
    id_out[0] = '\0';
    if (!m->to || !m->subject || !m->text || !m->kind) {
        log_msg(LOG_ERROR, "notifications: a message needs to, subject, text and kind");
        return -1;
    }
    json_t *data =
        json_pack("{s:s, s:s, s:s}", "to", m->to, "subject", m->subject, "kind", m->kind);
    if (!data) { /* not UTF-8 */
        log_msg(LOG_ERROR, "notifications: %s message is not valid UTF-8", m->kind);
        return -1;
    }
    json_t *bodies = json_pack("{s:s}", "text", m->text);
    if (bodies && m->html)
        json_object_set_new(bodies, "html", jx_str(m->html));
    char *pt = bodies ? jx_dump(bodies, NULL) : NULL;
    char *sealed = NULL;
    if (pt && kr && kr->current) {
        char *ad = sealed_ad(m->to);
        if (secretbox_seal(kr, ad, pt, strlen(pt), &sealed) != SECRETBOX_OK)
            sealed = NULL; /* too big to seal (> 64 KiB): such a body carries no token */
        free(ad);
    }
    if (sealed) {
        json_object_set_new(data, "sealed", json_string(sealed));
    } else if (bodies) {
        json_object_update(data, bodies);
    }
    free(sealed);
    free(pt);
    json_decref(bodies);
    char *dj = jx_dump(data, NULL);
    json_decref(data);
    if (!dj) {
        log_msg(LOG_ERROR, "notifications: %s message is not valid UTF-8", m->kind);
        return -1;
    }
    struct job_opts o = {.job_id = job_id};
    int rc = jobs_enqueue(c, "notifications", m->kind, tenant_id, dj, &o, id_out);
    free(dj);
    return rc;
}

enum job_result notifications_process(struct job *j)
{
    const char *to = json_string_value(json_object_get(j->data, "to"));
    const char *subject = json_string_value(json_object_get(j->data, "subject"));
    const char *kind = json_string_value(json_object_get(j->data, "kind"));
    const char *sealed = json_string_value(json_object_get(j->data, "sealed"));
    if (!to || !subject || !kind) {
        job_set_error(j, "data needs to, subject and kind");
        return JOB_UNRECOVERABLE;
    }
    json_t *bodies = NULL;
    if (sealed) {
        unsigned char *pt = NULL;
        size_t len = 0;
        char *ad = sealed_ad(to);
        int src = j->env->keyring ? secretbox_open(j->env->keyring, ad, sealed, &pt, &len)
                                  : SECRETBOX_EKID;
        free(ad);
        if (src != SECRETBOX_OK) {
            /* the key that sealed it is gone, or the data was tampered with */
            job_set_error(j, "the message body cannot be opened (%d)", src);
            return JOB_UNRECOVERABLE;
        }
        bodies = json_loadb((const char *)pt, len, 0, NULL);
        secretbox_free(pt, len);
    } else {
        bodies = json_incref(j->data);
    }
    struct mail m = {
        .to = to,
        .subject = subject,
        .kind = kind,
        .text = json_string_value(json_object_get(bodies, "text")),
        .html = json_string_value(json_object_get(bodies, "html")),
    };
    if (!m.text) {
        json_decref(bodies);
        job_set_error(j, "data has no text body");
        return JOB_UNRECOVERABLE;
    }
    char err[256] = "";
    int rc = mailer_send(j->env->mailer, &m, err, sizeof(err));
    json_decref(bodies);
    switch (rc) {
    case MAILER_OK:
        /* the kind, not the address: the API shows results to the tenant */
        job_set_result(j, json_pack("{s:s}", "kind", kind));
        return JOB_DONE;
    case MAILER_E_INVALID:
    case MAILER_E_NOT_CONFIGURED:
        job_set_error(j, "%s", err);
        return JOB_UNRECOVERABLE;
    default: /* MAILER_E_SEND, MAILER_E_OUTBOX: the server or the disk may be back later */
        job_set_error(j, "%s", err);
        return JOB_RETRY;
    }
}
