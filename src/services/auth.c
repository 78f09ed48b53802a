/* auth.c — see auth.h. */
#include "lib/common.h"

#include <time.h>

#include "http/app.h"
#include "jobs/notifications.h"
#include "lib/config.h"
#include "lib/jsonx.h"
#include "lib/jwt.h"
#include "lib/log.h"
#include "services/mailer.h"
#include "services/realtime.h"
#include "repos/roles.h"
#include "repos/sessions.h"
#include "repos/users.h"
#include "services/auth.h"

int64_t auth_now(void)
{
    return (int64_t)time(NULL);
}

void auth_iso(int64_t epoch_s, char out[32])
{
    time_t t = (time_t)epoch_s;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

int auth_token_response(struct ctx *c, struct db_conn *db, const char *tenant_id,
                        const char *user_id, const char *session_id, const char *aal,
                        const char *refresh_token, json_t **out)
{
    const struct config *cfg = app_config(c->app);
    const char *role;
    const char **perms;
    size_t nperms;
    if (roles_user_access(db, tenant_id, user_id, c->arena, &role, &perms, &nperms) < 0)
        return ctx_fail_db(c, db, NULL);
    bool failed;
    json_t *user = users_find_by_id(db, tenant_id, user_id, &failed);
    if (!user)
        return failed ? ctx_fail_db(c, db, NULL)
                      : ctx_fail(c, ZY_E_UNAUTHORIZED, "User not found");
    int64_t now = auth_now();
    /* aal2 is only ever reached with a second factor after the password */
    char *amr[] = {"pwd", strcmp(aal, "aal2") == 0 ? "totp" : NULL, NULL};
    struct jwt_claims cl = {
        .sub = (char *)user_id,
        .tid = (char *)tenant_id,
        .role = (char *)role,
        .perms = (char **)perms,
        .nperms = nperms,
        .pv = -1,
        .sid = (char *)session_id,
        .aal = (char *)aal,
        .amr = amr,
        .namr = amr[1] ? 2 : 1,
        .iat = now,
        .exp = now + cfg->access_token_ttl_s,
        .iss = cfg->api_url,
        .aud = AUTH_AUDIENCE,
    };
    char *token = NULL;
    if (jwt_sign(&cl, (const unsigned char *)cfg->jwt_secret, strlen(cfg->jwt_secret), &token) !=
        JWT_OK) {
        json_decref(user);
        return ctx_fail(c, ZY_E_INTERNAL, "cannot sign the access token");
    }
    json_t *o = json_object();
    json_object_set_new(o, "accessToken", json_string(token));
    json_object_set_new(o, "refreshToken", json_string(refresh_token));
    json_object_set_new(o, "tokenType", json_string("bearer"));
    json_object_set_new(o, "expiresIn", json_integer(cfg->access_token_ttl_s));
    json_object_set_new(o, "expiresAt", json_integer(now + cfg->access_token_ttl_s));
    json_object_set_new(o, "user", user);
    free(token);
    *out = o;
    return 0;
}

int auth_open_session(struct ctx *c, struct db_conn *db, const char *tenant_id,
                      const char *user_id, const char *aal, const char *amr_json, json_t **out)
{
    const struct config *cfg = app_config(c->app);
    char not_after[32], sid[37], refresh[TOKEN_LEN + 1];
    auth_iso(auth_now() + cfg->jwt_expires_s, not_after);
    struct session_new s = {
        .tenant_id = tenant_id,
        .user_id = user_id,
        .user_agent = ctx_header(c, "User-Agent"),
        .ip = c->req.client_ip,
        .aal = aal,
        .amr_json = amr_json,
        .not_after = not_after,
    };
    if (sessions_create(db, &s, sid) < 0 || refresh_issue(db, tenant_id, sid, NULL, refresh) < 0)
        return ctx_fail_db(c, db, NULL);
    return auth_token_response(c, db, tenant_id, user_id, sid, aal, refresh, out);
}

/* Queues the message on the request's connection, inside its transaction when one is open: a
 * change that rolls back sends nothing, and SMTP never slows or fails the request. The job
 * belongs to the tenant the connection works for (row-level security wants it so). */
static int queue_mail(struct ctx *c, const struct mail *m)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    const char *tenant = db_tenant(db) ? db_tenant(db) : c->tenant_id;
    char id[JOB_ID_MAX];
    if (notifications_enqueue(db, app_keyring(c->app), tenant, m, NULL, id) < 0) {
        log_msg(LOG_ERROR, "email (%s) not queued: %s", m->kind, db_errmsg(db));
        return -1;
    }
    ctx_wake_jobs(c);
    return 0;
}

int auth_send_link(struct ctx *c, const char *to, const char *kind, const char *subject,
                   const char *intro, const char *path, const char *token)
{
    const struct config *cfg = app_config(c->app);
    char *text = arena_printf(c->arena,
                              "%s\n\n%s%s?token=%s\n\nThe link works once. If you did not ask "
                              "for this, ignore this email.\n",
                              intro, cfg->app_url, path, token);
    struct mail m = {.to = to, .subject = subject, .text = text, .kind = kind};
    return queue_mail(c, &m);
}

void auth_send_alert(struct ctx *c, const char *to, const char *subject, const char *what)
{
    char when[48];
    zy_iso_now(when);
    char *text = arena_printf(c->arena,
                              "%s\n\nWhen: %s\nFrom: %s\n\nIf this was not you, reset your "
                              "password now and contact your administrator.\n",
                              what, when, c->req.client_ip ? c->req.client_ip : "unknown");
    struct mail m = {.to = to, .subject = subject, .text = text, .kind = "security_alert"};
    queue_mail(c, &m);
}

struct revoked {
    char user[40];
    char *json;
    size_t len;
};

static void publish_revoked(struct ctx *c, void *arg)
{
    struct revoked *r = arg;
    realtime_publish_user(app_realtime(c->app), r->user, r->json, r->len);
}

void auth_announce_revoked(struct ctx *c, const char *user_id, const char *session_id,
                           const char *keep_session)
{
    if (!user_id)
        return;
    struct revoked *r = arena_alloc(c->arena, sizeof(*r));
    snprintf(r->user, sizeof(r->user), "%s", user_id);
    json_t *m = session_id ? json_pack("{s:s, s:s}", "type", "session.revoked", "sessionId",
                                       session_id)
                           : json_pack("{s:s, s:s?}", "type", "session.revoked", "except",
                                       keep_session);
    char *s = jx_dump(m, &r->len);
    json_decref(m);
    r->json = arena_strdup(c->arena, s);
    free(s);
    ctx_after_commit(c, publish_revoked, r);
}
