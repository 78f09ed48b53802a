/* Users beyond the list: invitations through the real mail path, updates, suspension and soft
 * deletion (sessions end), the last-owner rule, own-profile edits, and cross-tenant 404s. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "accounts.h"
#include "jobtest.h"
#include "services/mailer.h"
#include "support.h"

static struct tenv t;
static void setup(void)
{
    static const char *const extra[] = {"RATE_LIMIT_ENABLED=false", NULL};
    tenv_setup(&t, extra, NULL, 0);
}
static void teardown(void)
{
    tenv_teardown(&t);
}
TestSuite(users, .init = setup, .fini = teardown, .timeout = 60);

static int req(const char *method, const char *path, const char *token, const char *body,
               json_t **out)
{
    return api_req(t.app, method, path, token, body, out);
}

static void invitation_token(const char *to, char token[128])
{
    json_t *msgs, *m;
    size_t i;
    token[0] = '\0';
    jobtest_drain(&t, NULL, 10000); /* emails are queued jobs */
    cr_assert_eq(mailer_outbox_read(t.dir, &msgs), 0);
    json_array_foreach(msgs, i, m)
    {
        if (strcmp(json_string_value(json_object_get(m, "to")), to) == 0 &&
            strcmp(json_string_value(json_object_get(m, "kind")), "invitation") == 0) {
            const char *p = strstr(json_string_value(json_object_get(m, "text")), "?token=") + 7;
            snprintf(token, 128, "%.*s", (int)strcspn(p, "\n "), p);
        }
    }
    json_decref(msgs);
    cr_assert(token[0], "no invitation to %s", to);
}

/* Invites email with role and accepts it; the invitee's session comes back in w. */
static void invite_and_accept(const struct account *owner, const char *email, const char *role,
                              struct account *w)
{
    char body[256], token[128];
    snprintf(body, sizeof(body), "{\"email\":\"%s\",\"role\":\"%s\",\"firstName\":\"New\"}", email,
             role);
    json_t *r;
    cr_assert_eq(req("POST", "/api/v1/users", owner->access, body, &r), 201);
    cr_assert_str_eq(json_string_value(json_object_get(r, "status")), "pending");
    json_decref(r);
    invitation_token(email, token);
    snprintf(body, sizeof(body), "{\"token\":\"%s\",\"password\":\"invitee password\"}", token);
    cr_assert_eq(req("POST", "/api/v1/auth/invitations/accept", NULL, body, &r), 200);
    snprintf(w->access, sizeof(w->access), "%s",
             json_string_value(json_object_get(r, "accessToken")));
    snprintf(w->user_id, sizeof(w->user_id), "%s",
             json_string_value(json_object_get(json_object_get(r, "user"), "id")));
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(r, "user"), "status")),
                     "active");
    cr_assert(json_is_true(json_object_get(json_object_get(r, "user"), "emailVerified")));
    json_decref(r);
    cr_assert_eq(req("POST", "/api/v1/auth/invitations/accept", NULL, body, NULL), 400,
                 "an invitation is used once");
}

Test(users, invite_accept_and_conflicts)
{
    struct account owner, member;
    accounts_signup(t.app, "boss@example.com", NULL, &owner);
    invite_and_accept(&owner, "New@Example.com", "member", &member);
    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/users/me", member.access, NULL, &r), 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "email")), "new@example.com");
    json_decref(r);
    cr_assert_eq(req("POST", "/api/v1/users", owner.access, "{\"email\":\"new@example.com\"}", &r),
                 409);
    cr_assert_str_eq(json_string_value(json_object_get(r, "error")), "RESOURCE_CONFLICT");
    json_decref(r);
    cr_assert_eq(req("POST", "/api/v1/users", owner.access,
                     "{\"email\":\"x@example.com\",\"role\":\"emperor\"}", NULL),
                 400);
    cr_assert_eq(req("POST", "/api/v1/users", member.access, "{\"email\":\"y@example.com\"}",
                     NULL),
                 403, "a member cannot invite");
    cr_assert_eq(req("POST", "/api/v1/users", NULL, "{\"email\":\"y@example.com\"}", NULL), 401);
}

Test(users, update_suspend_delete_and_their_sessions)
{
    struct account owner, member;
    accounts_signup(t.app, "ola@example.com", NULL, &owner);
    invite_and_accept(&owner, "mo@example.com", "member", &member);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/users/%s", member.user_id);
    json_t *r;
    cr_assert_eq(req("PATCH", path, owner.access, "{\"firstName\":\"Mo\",\"phone\":null}", &r),
                 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "firstName")), "Mo");
    json_decref(r);
    cr_assert_eq(req("PATCH", path, owner.access, "{\"email\":\"new@x.y\"}", NULL), 400,
                 "email is not editable here");
    cr_assert_eq(req("PATCH", path, member.access, "{\"firstName\":\"Me\"}", NULL), 403);

    cr_assert_eq(req("PATCH", path, owner.access, "{\"status\":\"suspended\"}", NULL), 200);
    cr_assert_eq(req("GET", "/api/v1/users/me", member.access, NULL, NULL), 401,
                 "suspension ends the sessions");
    cr_assert_eq(req("POST", "/api/v1/auth/login", NULL,
                     "{\"email\":\"mo@example.com\",\"password\":\"invitee password\"}", NULL),
                 403);
    cr_assert_eq(req("PATCH", path, owner.access, "{\"status\":\"active\"}", NULL), 200);
    cr_assert_eq(req("DELETE", path, owner.access, NULL, NULL), 204);
    cr_assert_eq(req("GET", path, owner.access, NULL, NULL), 404);
    cr_assert_eq(req("DELETE", path, owner.access, NULL, NULL), 404);
    cr_assert_eq(req("POST", "/api/v1/auth/login", NULL,
                     "{\"email\":\"mo@example.com\",\"password\":\"invitee password\"}", NULL),
                 401);
}

Test(users, last_owner_and_cross_tenant)
{
    struct account owner, stranger;
    accounts_signup(t.app, "only@example.com", NULL, &owner);
    accounts_signup(t.app, "stranger@example.com", NULL, &stranger);
    char path[128];
    snprintf(path, sizeof(path), "/api/v1/users/%s", owner.user_id);
    cr_assert_eq(req("DELETE", path, owner.access, NULL, NULL), 409);
    cr_assert_eq(req("PATCH", path, owner.access, "{\"status\":\"suspended\"}", NULL), 409);
    /* another tenant's user id: 404 on every route, never 403 */
    cr_assert_eq(req("GET", path, stranger.access, NULL, NULL), 404);
    cr_assert_eq(req("PATCH", path, stranger.access, "{\"firstName\":\"X\"}", NULL), 404);
    cr_assert_eq(req("DELETE", path, stranger.access, NULL, NULL), 404);
    json_t *r;
    cr_assert_eq(req("GET", path, owner.access, NULL, &r), 200);
    cr_assert(json_is_null(json_object_get(r, "firstName")), "untouched by the stranger");
    json_decref(r);
}

Test(users, own_profile)
{
    struct account w;
    accounts_signup(t.app, "pia@example.com", NULL, &w);
    json_t *r;
    cr_assert_eq(req("PATCH", "/api/v1/users/me", w.access,
                     "{\"displayName\":\"Pia P.\",\"avatar\":\"https://img.example/p.png\"}", &r),
                 200);
    cr_assert_str_eq(json_string_value(json_object_get(r, "displayName")), "Pia P.");
    json_decref(r);
    cr_assert_eq(req("PATCH", "/api/v1/users/me", w.access, "{\"status\":\"active\"}", NULL),
                 400, "no one promotes themselves");
    cr_assert_eq(req("PATCH", "/api/v1/users/me", w.access, "{\"avatar\":\"javascript:x\"}", NULL),
                 400);
}
