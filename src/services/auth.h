/*
 * auth.h — issuing what a successful sign-in gives: a session, a rotating refresh token and a
 * short-lived HS256 access token whose claims carry tenant, role and permissions
 * (the specification's on-auth-hook), shaped as the API's token response.
 */
#ifndef ZYGO_SERVICES_AUTH_H
#define ZYGO_SERVICES_AUTH_H

#include <jansson.h>

#include "db/db.h"
#include "http/ctx.h"

#define AUTH_AUDIENCE "authenticated"

/* Seconds since the epoch, and the same instant (+ offset seconds) as ISO-8601 UTC ms. */
int64_t auth_now(void);
void auth_iso(int64_t epoch_s, char out[32]);

/*
 * Opens a session for the user (aal, amr_json like ["pwd"]) and returns the token response
 * {accessToken, refreshToken, tokenType, expiresIn, expiresAt, user} in *out. On the caller's
 * connection and transaction. 0, or -1 with the error set on c (ctx_fail_db / internal).
 */
int auth_open_session(struct ctx *c, struct db_conn *db, const char *tenant_id,
                      const char *user_id, const char *aal, const char *amr_json, json_t **out);

/* A token response for an existing session with a new refresh token already issued. */
int auth_token_response(struct ctx *c, struct db_conn *db, const char *tenant_id,
                        const char *user_id, const char *session_id, const char *aal,
                        const char *refresh_token, json_t **out);

/*
 * Emails a link with a single-use token: APP_URL + path + "?token=" + token. The token only
 * ever travels in the email (sealed at rest in the job); logs and audit rows never see it.
 * The email is a `notifications` job queued on the request's connection, inside its
 * transaction (jobs/notifications.h): sent after the change commits, never if it rolls back.
 * Returns 0, or -1 when it could not be queued (logged; callers answering "always 202" carry
 * on).
 */
int auth_send_link(struct ctx *c, const char *to, const char *kind, const char *subject,
                   const char *intro, const char *path, const char *token);

/* Tells the account owner about a security-relevant change (password changed, MFA turned on
 * or off): kind "security_alert", never with a secret in it; queued like auth_send_link.
 * Failures are logged only. */
void auth_send_alert(struct ctx *c, const char *to, const char *subject, const char *what);

/*
 * Tells the WebSocket hubs of every process that sessions ended, once the transaction that
 * revoked them commits: the user's sockets on session_id close at once (4002), or, with
 * session_id NULL, every socket of the user except those on keep_session (NULL: all). The
 * user's sockets receive {"type":"session.revoked","sessionId"|"except"} first. Without this
 * the hubs notice at their next periodic session check.
 */
void auth_announce_revoked(struct ctx *c, const char *user_id, const char *session_id,
                           const char *keep_session);

#endif
