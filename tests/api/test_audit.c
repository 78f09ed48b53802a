/* GET /api/v1/audit on the suite's database: the tenant's rows newest first, every filter,
 * pagination, 401/403, 404 across tenants, rows written by real actions, and the time
 * normalisation the range filters rely on. Users and tokens are made directly (repositories and
 * a signed session) so no test pays for argon2id. */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "accounts.h"
#include "dbtest.h"
#include "repos/audit.h"
#include "repos/roles.h"
#include "repos/tenants.h"
#include "repos/users.h"
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
TestSuite(audit, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------------ */

/* A user with a system role (NULL: none, so no permissions at all). */
static void make_user(const char *tid, const char *email, const char *role, char id[37])
{
    struct db_conn *c = dbt_bypass(t.db);
    uuid_v7(id);
    struct user_new u = {.id = id, .tenant_id = tid, .email = email, .status = "active"};
    cr_assert_eq(users_create(c, &u), 0, "%s", db_errmsg(c));
    if (role)
        cr_assert_eq(roles_assign_by_name(c, tid, id, role), 0, "%s", db_errmsg(c));
    db_release(c);
}

/* One audit row with a chosen time (NULL fields stay NULL). */
static void put_row(const char *tid, const char *actor, const char *action, const char *rtype,
                    const char *rid, const char *at, char id[37])
{
    struct db_conn *c = dbt_bypass(t.db);
    char own[37];
    if (!id)
        id = own;
    uuid_v7(id);
    cr_assert_eq(db_exec(c,
                         "INSERT INTO audit_logs (id, tenant_id, actor_id, action, resource_type,"
                         " resource_id, metadata, created_at)"
                         " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                         DB_ARGS(DB_TEXT(id), DB_TEXT(tid), DB_TEXT(actor), DB_TEXT(action),
                                 DB_TEXT(rtype), DB_TEXT(rid), DB_TEXT("{\"n\":1}"), DB_TEXT(at))),
                 1, "%s", db_errmsg(c));
    db_release(c);
}

static int req(const char *method, const char *path, const char *token, json_t **out)
{
    return api_req(t.app, method, path, token, NULL, out);
}

static const char *jstr(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static json_int_t pag(json_t *r, const char *k)
{
    return json_integer_value(json_object_get(json_object_get(r, "pagination"), k));
}

static json_t *item(json_t *r, size_t i)
{
    return json_array_get(json_object_get(r, "data"), i);
}

/* GET path as token; asserts 200 and returns pagination.total. */
static json_int_t total_of(const char *path, const char *token)
{
    json_t *r;
    int st = req("GET", path, token, &r);
    cr_assert_eq(st, 200, "%s: %d", path, st);
    json_int_t n = pag(r, "total");
    cr_assert_eq((json_int_t)json_array_size(json_object_get(r, "data")), n < 20 ? n : 20, "%s",
                 path);
    json_decref(r);
    return n;
}

struct owner {
    char tid[37];
    char uid[37];
    char token[4096];
};

static void owner_of(const char *tenant, const char *email, struct owner *o)
{
    accounts_make_tenant(t.db, tenant, o->tid, NULL);
    make_user(o->tid, email, "owner", o->uid);
    accounts_mint_token(&t, o->uid, o->tid, o->token);
}

/* ---- tests -------------------------------------------------------------------------------- */

Test(audit, lists_newest_first_with_pagination)
{
    struct owner a;
    owner_of("Acme", "owner@acme.test", &a);
    char first[37], last[37];
    for (int i = 0; i < 25; i++) {
        char at[32];
        snprintf(at, sizeof(at), "2026-01-01T00:00:%02d.000Z", i);
        put_row(a.tid, a.uid, "user.update", "user", a.uid, at,
                i == 0    ? first
                : i == 24 ? last
                          : NULL);
    }
    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/audit", a.token, &r), 200);
    cr_assert_eq(pag(r, "page"), 1);
    cr_assert_eq(pag(r, "limit"), 20);
    cr_assert_eq(pag(r, "total"), 25);
    cr_assert_eq(pag(r, "totalPages"), 2);
    cr_assert_eq(json_array_size(json_object_get(r, "data")), 20);
    json_t *e = item(r, 0);
    cr_assert_str_eq(jstr(e, "id"), last, "newest first");
    cr_assert_str_eq(jstr(e, "createdAt"), "2026-01-01T00:00:24.000Z");
    cr_assert_str_eq(jstr(e, "tenantId"), a.tid);
    cr_assert_str_eq(jstr(e, "actorId"), a.uid);
    cr_assert_str_eq(jstr(e, "action"), "user.update");
    cr_assert_str_eq(jstr(e, "resourceType"), "user");
    cr_assert_str_eq(jstr(e, "resourceId"), a.uid);
    cr_assert(json_is_null(json_object_get(e, "ip")));
    cr_assert(json_is_null(json_object_get(e, "userAgent")));
    cr_assert(json_is_null(json_object_get(e, "requestId")));
    cr_assert(json_is_object(json_object_get(e, "metadata")), "metadata is an object");
    cr_assert_eq(json_integer_value(json_object_get(json_object_get(e, "metadata"), "n")), 1);
    cr_assert_eq(json_object_size(e), 11);
    json_decref(r);

    cr_assert_eq(req("GET", "/api/v1/audit?page=2", a.token, &r), 200);
    cr_assert_eq(json_array_size(json_object_get(r, "data")), 5);
    cr_assert_str_eq(jstr(item(r, 4), "id"), first, "oldest last");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/audit?page=3&limit=10", a.token, &r), 200);
    cr_assert_eq(json_array_size(json_object_get(r, "data")), 5);
    cr_assert_eq(pag(r, "totalPages"), 3);
    cr_assert_str_eq(jstr(item(r, 0), "createdAt"), "2026-01-01T00:00:04.000Z");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/audit?page=9", a.token, &r), 200);
    cr_assert_eq(json_array_size(json_object_get(r, "data")), 0, "past the end: empty page");
    cr_assert_eq(pag(r, "total"), 25);
    json_decref(r);

    const char *bad[] = {"?page=0", "?limit=0", "?limit=101", "?page=x"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char path[64];
        snprintf(path, sizeof(path), "/api/v1/audit%s", bad[i]);
        cr_assert_eq(req("GET", path, a.token, &r), 400, "%s", bad[i]);
        cr_assert_str_eq(jstr(r, "error"), "VALIDATION_ERROR");
        json_decref(r);
    }
}

Test(audit, filters)
{
    struct owner a;
    owner_of("Acme", "owner@acme.test", &a);
    char bob[37];
    make_user(a.tid, "bob@acme.test", "member", bob);
    put_row(a.tid, a.uid, "auth.login", "user", a.uid, "2026-03-01T10:00:00.000Z", NULL);
    put_row(a.tid, NULL, "auth.login_failed", "user", NULL, "2026-03-01T11:00:00.000Z", NULL);
    put_row(a.tid, bob, "auth.logout", "user", bob, "2026-03-01T12:00:00.000Z", NULL);
    put_row(a.tid, a.uid, "user.create", "user", bob, "2026-03-02T09:30:00.500Z", NULL);
    put_row(a.tid, a.uid, "role.update", "role", "r-1", "2026-03-03T00:00:00.000Z", NULL);
    put_row(a.tid, bob, "Auth.other", "user", bob, "2026-03-04T00:00:00.000Z", NULL);
    put_row(a.tid, bob, "authx.login", NULL, NULL, "2026-03-05T00:00:00.000Z", NULL);

    struct {
        const char *query;
        json_int_t total;
    } cases[] = {
        {"", 7},
        {"?action=auth.login", 1},
        {"?action=auth.*", 3}, /* prefix: not Auth.other (case), not authx.login */
        {"?action=auth*", 4},
        {"?action=auth.login_*", 1}, /* '_' is literal */
        {"?action=*", 7},
        {"?action=auth", 0},
        {"?resourceType=role", 1},
        {"?resourceType=user", 5},
        {"?from=2026-03-01T11:00:00Z", 6}, /* inclusive */
        {"?to=2026-03-01T11:00:00Z", 1},   /* exclusive */
        {"?from=2026-03-01T11:00:00.000Z&to=2026-03-02T09:30:00.500Z", 2},
        {"?from=2026-03-02T09:30:00.5001Z", 3}, /* finer than ms: that row is before it */
        {"?to=2026-03-02T09:30:00.5001Z", 4},
        {"?from=2026-03-01T13:00:00%2B02:00", 6}, /* 11:00Z with an offset */
        {"?from=2026-03-01T06:00:00-05:00&to=2026-03-03T00:00:00Z", 3},
        {"?from=2027-01-01T00:00:00Z", 0},
        {"?to=0001-01-01T00:00:00Z", 0},
        {"?from=0000-01-01T00:00:00Z&to=9999-12-31T23:59:59.999%2B00:00", 7},
        {"?action=auth.*&from=2026-03-01T10:30:00Z", 2},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char path[160];
        snprintf(path, sizeof(path), "/api/v1/audit%s", cases[i].query);
        json_int_t n = total_of(path, a.token);
        cr_assert_eq(n, cases[i].total, "%s: %lld, expected %lld", cases[i].query, (long long)n,
                     (long long)cases[i].total);
    }
    char path[200];
    snprintf(path, sizeof(path), "/api/v1/audit?actorId=%s", bob);
    cr_assert_eq(total_of(path, a.token), 3);
    /* ids in upper case are the same ids */
    for (char *p = path; *p; p++)
        if (*p >= 'a' && *p <= 'f' && p > strchr(path, '='))
            *p = (char)(*p - 32);
    cr_assert_eq(total_of(path, a.token), 3);
    snprintf(path, sizeof(path), "/api/v1/audit?resourceType=user&resourceId=%s", bob);
    cr_assert_eq(total_of(path, a.token), 3);
    snprintf(path, sizeof(path), "/api/v1/audit?actorId=%s&action=auth.*", a.uid);
    json_t *r;
    cr_assert_eq(req("GET", path, a.token, &r), 200);
    cr_assert_eq(pag(r, "total"), 1);
    cr_assert_str_eq(jstr(item(r, 0), "action"), "auth.login");
    json_decref(r);

    const char *bad[] = {"?actorId=nope", "?from=yesterday", "?to=2026-13-01T00:00:00Z",
                         "?resourceId=",  "?action=",        "?unknown=1&from=2026-01-01"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        snprintf(path, sizeof(path), "/api/v1/audit%s", bad[i]);
        cr_assert_eq(req("GET", path, a.token, &r), 400, "%s", bad[i]);
        cr_assert_str_eq(jstr(r, "error"), "VALIDATION_ERROR");
        json_decref(r);
    }
}

Test(audit, rows_of_real_actions)
{
    struct owner a;
    owner_of("Acme", "owner@acme.test", &a);
    char second[4096];
    accounts_mint_token(&t, a.uid, a.tid, second);
    json_t *r;
    cr_assert_eq(api_req_h(t.app, "POST", "/api/v1/auth/logout", a.token,
                           "User-Agent: audit-test/1.0", "{\"scope\":\"local\"}", NULL),
                 204);
    cr_assert_eq(req("GET", "/api/v1/audit?action=auth.*", second, &r), 200);
    cr_assert_eq(pag(r, "total"), 1);
    json_t *e = item(r, 0);
    cr_assert_str_eq(jstr(e, "action"), "auth.logout");
    cr_assert_str_eq(jstr(e, "actorId"), a.uid);
    cr_assert_str_eq(jstr(e, "userAgent"), "audit-test/1.0");
    cr_assert_not_null(jstr(e, "requestId"));
    cr_assert_str_eq(jstr(json_object_get(e, "metadata"), "scope"), "local");
    char id[37];
    snprintf(id, sizeof(id), "%s", jstr(e, "id"));
    json_decref(r);

    char path[100];
    snprintf(path, sizeof(path), "/api/v1/audit/%s", id);
    cr_assert_eq(req("GET", path, second, &r), 200);
    cr_assert_str_eq(jstr(r, "id"), id);
    cr_assert_str_eq(jstr(r, "action"), "auth.logout");
    json_decref(r);
}

Test(audit, needs_a_token_and_the_permission)
{
    struct owner a;
    owner_of("Acme", "owner@acme.test", &a);
    char row[37];
    put_row(a.tid, a.uid, "auth.login", "user", a.uid, "2026-01-01T00:00:00.000Z", row);
    char one[100];
    snprintf(one, sizeof(one), "/api/v1/audit/%s", row);
    const char *paths[] = {"/api/v1/audit", one};
    json_t *r;
    for (size_t i = 0; i < ARRAY_LEN(paths); i++) {
        cr_assert_eq(req("GET", paths[i], NULL, &r), 401, "%s", paths[i]);
        cr_assert_str_eq(jstr(r, "error"), "AUTH_UNAUTHORIZED");
        json_decref(r);
        cr_assert_eq(req("GET", paths[i], "not.a.token", NULL), 401);
    }
    /* admin has canViewAuditLogs; member, viewer and a user without roles do not */
    struct {
        const char *role;
        int status;
    } roles[] = {{"admin", 200}, {"member", 403}, {"viewer", 403}, {NULL, 403}};
    for (size_t i = 0; i < ARRAY_LEN(roles); i++) {
        char email[64], uid[37], tok[4096];
        snprintf(email, sizeof(email), "u%zu@acme.test", i);
        make_user(a.tid, email, roles[i].role, uid);
        accounts_mint_token(&t, uid, a.tid, tok);
        for (size_t k = 0; k < ARRAY_LEN(paths); k++) {
            cr_assert_eq(req("GET", paths[k], tok, &r), roles[i].status, "%s %s",
                         roles[i].role ? roles[i].role : "(none)", paths[k]);
            if (roles[i].status == 403)
                cr_assert_str_eq(jstr(r, "error"), "AUTH_FORBIDDEN");
            json_decref(r);
        }
    }
}

Test(audit, other_tenants_rows_are_invisible)
{
    struct owner a, b;
    owner_of("Acme", "owner@acme.test", &a);
    owner_of("Beta", "owner@beta.test", &b);
    char mine[37], theirs[37];
    put_row(a.tid, a.uid, "auth.login", "user", a.uid, "2026-01-01T00:00:00.000Z", mine);
    put_row(b.tid, b.uid, "auth.login", "user", b.uid, "2026-01-01T00:00:00.000Z", theirs);
    put_row(b.tid, b.uid, "auth.logout", "user", b.uid, "2026-01-01T00:00:01.000Z", NULL);
    put_row(NULL, NULL, "system.global", NULL, NULL, "2026-01-01T00:00:02.000Z", NULL);

    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/audit", a.token, &r), 200);
    cr_assert_eq(pag(r, "total"), 1, "only the tenant's own rows");
    cr_assert_str_eq(jstr(item(r, 0), "id"), mine);
    json_decref(r);
    char path[160];
    snprintf(path, sizeof(path), "/api/v1/audit?actorId=%s", b.uid);
    cr_assert_eq(total_of(path, a.token), 0);

    snprintf(path, sizeof(path), "/api/v1/audit/%s", theirs);
    cr_assert_eq(req("GET", path, a.token, &r), 404, "another tenant's id is not found");
    cr_assert_str_eq(jstr(r, "error"), "RESOURCE_NOT_FOUND");
    json_decref(r);
    cr_assert_eq(req("GET", path, b.token, NULL), 200);
    snprintf(path, sizeof(path), "/api/v1/audit/%s", mine);
    cr_assert_eq(req("GET", path, a.token, NULL), 200);
    cr_assert_eq(req("GET", path, b.token, NULL), 404);
    char fresh[37];
    uuid_v7(fresh);
    snprintf(path, sizeof(path), "/api/v1/audit/%s", fresh);
    cr_assert_eq(req("GET", path, a.token, NULL), 404);
    cr_assert_eq(req("GET", "/api/v1/audit/not-a-uuid", a.token, &r), 400);
    cr_assert_str_eq(jstr(r, "error"), "VALIDATION_ERROR");
    json_decref(r);

    /* a global admin reads another tenant's log by naming it */
    struct db_conn *c = dbt_bypass(t.db);
    cr_assert_eq(db_exec(c, "UPDATE users SET is_global_admin = $2 WHERE id = $1",
                         DB_ARGS(DB_TEXT(a.uid), DB_BOOL(true))),
                 1, "%s", db_errmsg(c));
    db_release(c);
    char hdr[80];
    snprintf(hdr, sizeof(hdr), "X-Tenant-ID: %s", b.tid);
    cr_assert_eq(api_req_h(t.app, "GET", "/api/v1/audit", a.token, hdr, NULL, &r), 200);
    cr_assert_eq(pag(r, "total"), 2);
    cr_assert_str_eq(jstr(item(r, 1), "id"), theirs);
    json_decref(r);
}

Test(audit, time_normalisation)
{
    struct {
        const char *in, *out;
    } ok[] = {
        {"2026-01-26T10:00:00Z", "2026-01-26T10:00:00.000Z"},
        {"2026-01-26T10:00:00.1Z", "2026-01-26T10:00:00.100Z"},
        {"2026-01-26T10:00:00.123Z", "2026-01-26T10:00:00.123Z"},
        {"2026-01-26T10:00:00.1230Z", "2026-01-26T10:00:00.123Z"},
        {"2026-01-26T10:00:00.1231Z", "2026-01-26T10:00:00.124Z"},
        {"2026-01-26T23:59:59.9999Z", "2026-01-27T00:00:00.000Z"},
        {"2026-01-26T10:00:00+02:00", "2026-01-26T08:00:00.000Z"},
        {"2026-01-01T01:30:00+02:00", "2025-12-31T23:30:00.000Z"},
        {"2024-02-28T23:00:00-01:30", "2024-02-29T00:30:00.000Z"},
        {"1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z"},
        {"1969-12-31T23:59:59.999Z", "1969-12-31T23:59:59.999Z"},
        {"2000-03-01T00:00:00Z", "2000-03-01T00:00:00.000Z"},
        {"0000-01-01T00:00:00Z", "0001-01-01T00:00:00.000Z"},
        {"9999-12-31T23:59:59-23:59", "9999-12-31T23:59:59.999Z"},
    };
    char out[32];
    for (size_t i = 0; i < ARRAY_LEN(ok); i++) {
        cr_assert(audit_time_utc(ok[i].in, out), "%s", ok[i].in);
        cr_assert_str_eq(out, ok[i].out, "%s", ok[i].in);
    }
    const char *bad[] = {"",
                         "2026-01-26",
                         "2026-01-26T10:00:00",
                         "2026-01-26 10:00:00Z",
                         "2026-01-26T10:00:00.Z",
                         "2026-01-26T10:00:00+0200",
                         "2026-01-26T10:00:00Zjunk",
                         "2026-13-26T10:00:00Z"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        cr_assert_not(audit_time_utc(bad[i], out), "%s", bad[i]);
}
