/* accounts.c — see accounts.h. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "accounts.h"
#include "dbtest.h"
#include "lib/jwt.h"
#include "lib/password.h"
#include "repos/roles.h"
#include "repos/sessions.h"
#include "repos/tenants.h"
#include "services/auth.h"

static void copy(char *dst, size_t n, json_t *v)
{
    snprintf(dst, n, "%s", json_string_value(v) ? json_string_value(v) : "");
}

void accounts_signup(const struct app *app, const char *email, const char *tenant_name,
                     struct account *a)
{
    json_t *body = json_pack("{s:s, s:s, s:s}", "email", email, "password", ACCOUNTS_PASSWORD,
                             "tenantName", tenant_name ? tenant_name : "T");
    char *text = json_dumps(body, 0);
    json_decref(body);
    json_t *r;
    int st = api_req(app, "POST", "/api/v1/auth/signup", NULL, text, &r);
    free(text);
    cr_assert_eq(st, 201, "signup %s: %d", email, st);
    json_t *tenant = json_object_get(r, "tenant");
    copy(a->access, sizeof(a->access), json_object_get(r, "accessToken"));
    copy(a->refresh, sizeof(a->refresh), json_object_get(r, "refreshToken"));
    copy(a->user_id, sizeof(a->user_id), json_object_get(json_object_get(r, "user"), "id"));
    copy(a->tenant_id, sizeof(a->tenant_id), json_object_get(tenant, "id"));
    copy(a->tenant_slug, sizeof(a->tenant_slug), json_object_get(tenant, "slug"));
    json_decref(r);
}

int accounts_login(const struct app *app, const char *email, const char *password,
                   struct account *a)
{
    json_t *body = json_pack("{s:s, s:s}", "email", email, "password",
                             password ? password : ACCOUNTS_PASSWORD);
    char *text = json_dumps(body, 0);
    json_decref(body);
    json_t *r = NULL;
    int st = api_req(app, "POST", "/api/v1/auth/login", NULL, text, &r);
    free(text);
    if (st == 200 && a) {
        json_t *u = json_object_get(r, "user");
        copy(a->access, sizeof(a->access), json_object_get(r, "accessToken"));
        copy(a->refresh, sizeof(a->refresh), json_object_get(r, "refreshToken"));
        copy(a->user_id, sizeof(a->user_id), json_object_get(u, "id"));
        copy(a->tenant_id, sizeof(a->tenant_id), json_object_get(u, "tenantId"));
        a->tenant_slug[0] = '\0';
    }
    json_decref(r);
    return st;
}

void accounts_create_user(struct db *db, const char *tenant_id, const char *email,
                          const char *first_name, const char *role, char id_out[37])
{
    static char hash[PASSWORD_HASH_MAX];
    if (!hash[0])
        cr_assert_eq(password_hash(ACCOUNTS_PASSWORD, hash), 0);
    struct db_conn *c = dbt_bypass(db);
    uuid_v7(id_out);
    cr_assert_eq(db_exec(c,
                         "INSERT INTO users (id, tenant_id, email, first_name, status,"
                         " password_hash) VALUES ($1, $2, $3, $4, 'active', $5)",
                         DB_ARGS(DB_TEXT(id_out), DB_TEXT(tenant_id), DB_TEXT(email),
                                 DB_TEXT(first_name), DB_TEXT(hash))),
                 1, "%s", db_errmsg(c));
    if (role)
        cr_assert_eq(db_exec(c,
                             "INSERT INTO user_roles (user_id, role_id, tenant_id) SELECT $1, id,"
                             " tenant_id FROM roles WHERE tenant_id = $2 AND name = $3",
                             DB_ARGS(DB_TEXT(id_out), DB_TEXT(tenant_id), DB_TEXT(role))),
                     1, "%s", db_errmsg(c));
    db_release(c);
}

void accounts_user_with_role(const struct tenv *t, const struct account *owner, const char *email,
                             const char *role, struct account *out)
{
    char id[37];
    accounts_create_user(t->db, owner->tenant_id, email, NULL, role, id);
    int st = accounts_login(t->app, email, NULL, out);
    cr_assert_eq(st, 200, "login %s: %d", email, st);
}

void accounts_make_tenant(struct db *db, const char *name, char id[37], char slug[64])
{
    struct db_conn *c = dbt_bypass(db);
    char own[64];
    uuid_v7(id);
    cr_assert_eq(tenants_create(c, id, name, slug ? slug : own), 0, "%s", db_errmsg(c));
    cr_assert_eq(roles_seed_system(c, id), 0, "%s", db_errmsg(c));
    db_release(c);
}

void accounts_mint_token(const struct tenv *t, const char *uid, const char *tid, char out[4096])
{
    struct db_conn *c = dbt_bypass(t->db);
    char sid[37], not_after[32];
    int64_t now = auth_now();
    auth_iso(now + 3600, not_after);
    struct session_new s = {.tenant_id = tid,
                            .user_id = uid,
                            .aal = "aal1",
                            .amr_json = "[\"pwd\"]",
                            .not_after = not_after};
    cr_assert_eq(sessions_create(c, &s, sid), 0, "%s", db_errmsg(c));
    db_release(c);
    struct jwt_claims cl = {.sub = (char *)uid,
                            .tid = (char *)tid,
                            .role = "owner",
                            .pv = -1,
                            .sid = sid,
                            .aal = "aal1",
                            .iat = now,
                            .exp = now + 900,
                            .iss = t->cfg.api_url,
                            .aud = AUTH_AUDIENCE};
    char *tok = NULL;
    cr_assert_eq(
        jwt_sign(&cl, (const unsigned char *)t->cfg.jwt_secret, strlen(t->cfg.jwt_secret), &tok),
        JWT_OK);
    snprintf(out, 4096, "%s", tok);
    free(tok);
}
