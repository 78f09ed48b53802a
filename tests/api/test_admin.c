/* /api/v1/admin on the suite's database: global admins only (a tenant owner with every
 * permission is refused), tenants listed, searched, read, suspended and reactivated (with
 * audit rows, and the tenant's users refused meanwhile), users across tenants; and the
 * `zygo admin create` command against the same database. Users and tokens are made directly
 * (repositories and a signed session) so that only one test pays for argon2id. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <fcntl.h>
#include <unistd.h>

#include "accounts.h"
#include "dbtest.h"
#include "lib/password.h"
#include "repos/roles.h"
#include "repos/tenants.h"
#include "repos/users.h"
#include "services/admin_cli.h"
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
TestSuite(admin, .init = setup, .fini = teardown, .timeout = 60);

/* ---- helpers ------------------------------------------------------------------------------ */

struct user_spec {
    const char *email, *first, *last, *role, *status, *password_hash;
};

static void make_user(const char *tid, const struct user_spec *s, char id[37])
{
    struct db_conn *c = dbt_bypass(t.db);
    uuid_v7(id);
    struct user_new u = {.id = id,
                         .tenant_id = tid,
                         .email = s->email,
                         .first_name = s->first,
                         .last_name = s->last,
                         .password_hash = s->password_hash,
                         .status = s->status ? s->status : "active"};
    cr_assert_eq(users_create(c, &u), 0, "%s", db_errmsg(c));
    if (s->role)
        cr_assert_eq(roles_assign_by_name(c, tid, id, s->role), 0, "%s", db_errmsg(c));
    db_release(c);
}

static void set_global_admin(const char *uid)
{
    struct db_conn *c = dbt_bypass(t.db);
    cr_assert_eq(db_exec(c, "UPDATE users SET is_global_admin = $2 WHERE id = $1",
                         DB_ARGS(DB_TEXT(uid), DB_BOOL(true))),
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

static size_t ndata(json_t *r)
{
    return json_array_size(json_object_get(r, "data"));
}

/* A tenant with one user (the owner unless said otherwise) and a token for them. */
struct member {
    char tid[37];
    char slug[64];
    char uid[37];
    char token[4096];
};

static void member_of(const char *tenant, const char *email, const char *role, struct member *m)
{
    accounts_make_tenant(t.db, tenant, m->tid, m->slug);
    make_user(m->tid, &(struct user_spec){.email = email, .first = "Ann", .role = role}, m->uid);
    accounts_mint_token(&t, m->uid, m->tid, m->token);
}

/* The platform's operator: a global admin in a tenant of their own. */
static void global_admin(struct member *a)
{
    member_of("Ops", "root@ops.test", "owner", a);
    set_global_admin(a->uid);
}

/* ---- access ------------------------------------------------------------------------------- */

Test(admin, global_admins_only)
{
    struct member owner;
    member_of("Acme", "owner@acme.test", "owner", &owner);
    char tenant_path[100], suspend[120], reactivate[120];
    snprintf(tenant_path, sizeof(tenant_path), "/api/v1/admin/tenants/%s", owner.tid);
    snprintf(suspend, sizeof(suspend), "%s/suspend", tenant_path);
    snprintf(reactivate, sizeof(reactivate), "%s/reactivate", tenant_path);
    struct {
        const char *method, *path;
    } routes[] = {{"GET", "/api/v1/admin/tenants"},
                  {"GET", tenant_path},
                  {"POST", suspend},
                  {"POST", reactivate},
                  {"GET", "/api/v1/admin/users"}};
    json_t *r;
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        cr_assert_eq(req(routes[i].method, routes[i].path, NULL, &r), 401, "%s", routes[i].path);
        cr_assert_str_eq(jstr(r, "error"), "AUTH_UNAUTHORIZED");
        json_decref(r);
        cr_assert_eq(req(routes[i].method, routes[i].path, "forged.token.here", NULL), 401);
        /* the owner holds every permission of the tenant, and still is no global admin */
        cr_assert_eq(req(routes[i].method, routes[i].path, owner.token, &r), 403, "%s %s",
                     routes[i].method, routes[i].path);
        cr_assert_str_eq(jstr(r, "error"), "AUTH_FORBIDDEN");
        json_decref(r);
    }
    /* refused before validation: a non-admin learns nothing from bad input either */
    cr_assert_eq(req("GET", "/api/v1/admin/tenants?limit=1000", owner.token, NULL), 403);
    cr_assert_eq(
        dbt_count_bypass(t.db, "SELECT count(*) FROM tenants WHERE id = $1 AND status = 'active'",
                         owner.tid),
        1, "the refused suspend changed nothing");

    struct member root;
    global_admin(&root);
    for (size_t i = 0; i < ARRAY_LEN(routes); i++) {
        if (strcmp(routes[i].method, "GET") != 0)
            continue;
        cr_assert_eq(req(routes[i].method, routes[i].path, root.token, NULL), 200, "%s",
                     routes[i].path);
    }
}

/* ---- tenants ------------------------------------------------------------------------------ */

Test(admin, list_and_search_tenants)
{
    struct member root;
    global_admin(&root);
    char alpha[37], beta[37], gamma[37], gslug[64];
    accounts_make_tenant(t.db, "Alpha Industries", alpha, NULL);
    accounts_make_tenant(t.db, "Beta", beta, NULL);
    accounts_make_tenant(t.db, "Gamma 100% Corp", gamma, gslug);
    char uid[37];
    make_user(alpha, &(struct user_spec){.email = "a1@alpha.test"}, uid);
    make_user(alpha, &(struct user_spec){.email = "a2@alpha.test"}, uid);
    make_user(alpha, &(struct user_spec){.email = "gone@alpha.test"}, uid);
    struct db_conn *c = dbt_bypass(t.db);
    cr_assert_eq(
        db_exec(c, "UPDATE users SET deleted_at = created_at WHERE id = $1", DB_ARGS(DB_TEXT(uid))),
        1);
    db_release(c);

    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/admin/tenants", root.token, &r), 200);
    cr_assert_eq(pag(r, "total"), 4);
    cr_assert_eq(pag(r, "page"), 1);
    cr_assert_eq(pag(r, "limit"), 20);
    cr_assert_eq(pag(r, "totalPages"), 1);
    cr_assert_eq(ndata(r), 4);
    json_t *g = item(r, 0);
    cr_assert_str_eq(jstr(g, "id"), gamma, "newest first");
    cr_assert_str_eq(jstr(g, "slug"), gslug);
    cr_assert_str_eq(jstr(g, "name"), "Gamma 100% Corp");
    cr_assert_str_eq(jstr(g, "status"), "active");
    cr_assert_str_eq(jstr(g, "plan"), "free");
    cr_assert(json_is_object(json_object_get(g, "settings")));
    cr_assert_not_null(jstr(g, "createdAt"));
    cr_assert_not_null(jstr(g, "updatedAt"));
    cr_assert_eq(json_integer_value(json_object_get(g, "userCount")), 0);
    cr_assert_str_eq(jstr(item(r, 2), "id"), alpha);
    cr_assert_eq(json_integer_value(json_object_get(item(r, 2), "userCount")), 2,
                 "deleted users are not counted");
    cr_assert_str_eq(jstr(item(r, 3), "id"), root.tid);
    json_decref(r);

    struct {
        const char *query;
        json_int_t total;
        const char *first;
    } cases[] = {
        {"?search=alpha", 1, alpha},      {"?search=ALPHA", 1, alpha},
        {"?search=industries", 1, alpha}, {"?search=gamma-100", 1, gamma}, /* the slug */
        {"?search=100%25", 1, gamma},     {"?search=%25", 1, gamma},       /* '%' is literal */
        {"?search=_", 0, NULL},           {"?search=a", 3, NULL},
        {"?search=zzz", 0, NULL},         {"?status=active", 4, NULL},
        {"?status=suspended", 0, NULL},   {"?search=", 4, NULL},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char path[120];
        snprintf(path, sizeof(path), "/api/v1/admin/tenants%s", cases[i].query);
        cr_assert_eq(req("GET", path, root.token, &r), 200, "%s", cases[i].query);
        cr_assert_eq(pag(r, "total"), cases[i].total, "%s: %lld", cases[i].query,
                     (long long)pag(r, "total"));
        if (cases[i].first)
            cr_assert_str_eq(jstr(item(r, 0), "id"), cases[i].first, "%s", cases[i].query);
        json_decref(r);
    }

    cr_assert_eq(req("GET", "/api/v1/admin/tenants?page=2&limit=3", root.token, &r), 200);
    cr_assert_eq(ndata(r), 1);
    cr_assert_eq(pag(r, "totalPages"), 2);
    cr_assert_str_eq(jstr(item(r, 0), "id"), root.tid);
    json_decref(r);
    const char *bad[] = {"?status=deleted", "?limit=0", "?limit=101", "?page=0"};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++) {
        char path[80];
        snprintf(path, sizeof(path), "/api/v1/admin/tenants%s", bad[i]);
        cr_assert_eq(req("GET", path, root.token, &r), 400, "%s", bad[i]);
        cr_assert_str_eq(jstr(r, "error"), "VALIDATION_ERROR");
        json_decref(r);
    }
}

Test(admin, get_one_tenant)
{
    struct member root, acme;
    global_admin(&root);
    member_of("Acme", "owner@acme.test", "owner", &acme);
    char path[100];
    snprintf(path, sizeof(path), "/api/v1/admin/tenants/%s", acme.tid);
    json_t *r;
    cr_assert_eq(req("GET", path, root.token, &r), 200);
    cr_assert_str_eq(jstr(r, "id"), acme.tid);
    cr_assert_str_eq(jstr(r, "slug"), acme.slug);
    cr_assert_eq(json_integer_value(json_object_get(r, "userCount")), 1);
    json_decref(r);
    /* upper-case ids name the same tenant */
    for (char *p = path + strlen("/api/v1/admin/tenants/"); *p; p++)
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 32);
    cr_assert_eq(req("GET", path, root.token, NULL), 200);
    char fresh[37];
    uuid_v7(fresh);
    snprintf(path, sizeof(path), "/api/v1/admin/tenants/%s", fresh);
    cr_assert_eq(req("GET", path, root.token, &r), 404);
    cr_assert_str_eq(jstr(r, "error"), "RESOURCE_NOT_FOUND");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/admin/tenants/nope", root.token, &r), 400);
    cr_assert_str_eq(jstr(r, "error"), "VALIDATION_ERROR");
    json_decref(r);
}

Test(admin, suspend_refuses_the_tenants_users_until_reactivated)
{
    struct member root, acme, other;
    global_admin(&root);
    member_of("Acme", "owner@acme.test", "owner", &acme);
    member_of("Other", "owner@other.test", "owner", &other);
    /* one user with a password, to see sign-in refused too */
    char hash[PASSWORD_HASH_MAX], pw_user[37];
    cr_assert_eq(password_hash("correct horse battery", hash), 0);
    make_user(acme.tid,
              &(struct user_spec){.email = "pw@acme.test", .role = "member", .password_hash = hash},
              pw_user);
    const char *login = "{\"email\":\"pw@acme.test\",\"password\":\"correct horse battery\"}";

    char suspend[140], reactivate[140];
    snprintf(suspend, sizeof(suspend), "/api/v1/admin/tenants/%s/suspend", acme.tid);
    snprintf(reactivate, sizeof(reactivate), "/api/v1/admin/tenants/%s/reactivate", acme.tid);
    json_t *r;
    cr_assert_eq(req("POST", reactivate, root.token, &r), 409, "not suspended");
    cr_assert_str_eq(jstr(r, "error"), "RESOURCE_CONFLICT");
    json_decref(r);

    cr_assert_eq(req("POST", suspend, root.token, &r), 200);
    cr_assert_str_eq(jstr(r, "id"), acme.tid);
    cr_assert_str_eq(jstr(r, "status"), "suspended");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/users/me", acme.token, &r), 403);
    cr_assert_str_eq(jstr(r, "error"), "AUTH_FORBIDDEN");
    cr_assert_str_eq(jstr(r, "message"), "Tenant is suspended");
    json_decref(r);
    cr_assert_eq(api_req(t.app, "POST", "/api/v1/auth/login", NULL, login, &r), 403);
    cr_assert_str_eq(jstr(r, "message"), "Tenant is suspended");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/users/me", other.token, NULL), 200, "other tenants go on");
    cr_assert_eq(req("GET", "/api/v1/users/me", root.token, NULL), 200);
    cr_assert_eq(req("POST", suspend, root.token, &r), 409, "already suspended");
    cr_assert_str_eq(jstr(r, "message"), "Tenant is already suspended");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/admin/tenants?status=suspended", root.token, &r), 200);
    cr_assert_eq(pag(r, "total"), 1);
    cr_assert_str_eq(jstr(item(r, 0), "id"), acme.tid);
    json_decref(r);

    cr_assert_eq(req("POST", reactivate, root.token, &r), 200);
    cr_assert_str_eq(jstr(r, "status"), "active");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/users/me", acme.token, NULL), 200, "allowed again");
    cr_assert_eq(api_req(t.app, "POST", "/api/v1/auth/login", NULL, login, NULL), 200);

    /* both changes are in the tenant's own audit log, by the admin, with the statuses */
    cr_assert_eq(req("GET", "/api/v1/audit?action=admin.*", acme.token, &r), 200);
    cr_assert_eq(pag(r, "total"), 2);
    json_t *e = item(r, 0);
    cr_assert_str_eq(jstr(e, "action"), "admin.tenant_reactivate");
    cr_assert_str_eq(jstr(e, "actorId"), root.uid);
    cr_assert_str_eq(jstr(e, "tenantId"), acme.tid);
    cr_assert_str_eq(jstr(e, "resourceType"), "tenant");
    cr_assert_str_eq(jstr(e, "resourceId"), acme.tid);
    cr_assert_str_eq(jstr(json_object_get(e, "metadata"), "previousStatus"), "suspended");
    cr_assert_str_eq(jstr(json_object_get(e, "metadata"), "status"), "active");
    cr_assert_not_null(jstr(e, "requestId"));
    e = item(r, 1);
    cr_assert_str_eq(jstr(e, "action"), "admin.tenant_suspend");
    cr_assert_str_eq(jstr(json_object_get(e, "metadata"), "status"), "suspended");
    json_decref(r);
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM audit_logs WHERE action LIKE 'admin.%'"
                                  " AND tenant_id <> $1",
                                  acme.tid),
                 0, "refused attempts wrote nothing");

    char fresh[37], path[140];
    uuid_v7(fresh);
    snprintf(path, sizeof(path), "/api/v1/admin/tenants/%s/suspend", fresh);
    cr_assert_eq(req("POST", path, root.token, &r), 404);
    cr_assert_str_eq(jstr(r, "error"), "RESOURCE_NOT_FOUND");
    json_decref(r);
    cr_assert_eq(req("POST", "/api/v1/admin/tenants/x/suspend", root.token, NULL), 400);
}

/* ---- users -------------------------------------------------------------------------------- */

Test(admin, list_users_across_tenants)
{
    struct member root;
    global_admin(&root);
    char acme[37], beta[37], acme_slug[64], id[37], john[37], gone[37];
    accounts_make_tenant(t.db, "Acme", acme, acme_slug);
    accounts_make_tenant(t.db, "Beta", beta, NULL);
    make_user(acme,
              &(struct user_spec){.email = "john@acme.test", .first = "John", .last = "Smith"},
              john);
    make_user(acme,
              &(struct user_spec){
                  .email = "jane@acme.test", .first = "Jane", .last = "Doe", .status = "pending"},
              id);
    make_user(beta, &(struct user_spec){.email = "john@beta.test", .first = "Johnny"}, id);
    make_user(beta, &(struct user_spec){.email = "x_y@beta.test", .last = "Smithers"}, id);
    make_user(beta, &(struct user_spec){.email = "gone@beta.test", .first = "John"}, gone);
    struct db_conn *c = dbt_bypass(t.db);
    cr_assert_eq(db_exec(c, "UPDATE users SET deleted_at = created_at WHERE id = $1",
                         DB_ARGS(DB_TEXT(gone))),
                 1);
    db_release(c);

    json_t *r;
    cr_assert_eq(req("GET", "/api/v1/admin/users", root.token, &r), 200);
    cr_assert_eq(pag(r, "total"), 5, "four users and the admin; not the deleted one");
    json_t *u = item(r, 4);
    cr_assert_str_eq(jstr(u, "id"), root.uid, "newest first");
    cr_assert(json_is_true(json_object_get(u, "isGlobalAdmin")));
    cr_assert_str_eq(jstr(u, "tenantSlug"), root.slug);
    cr_assert_str_eq(jstr(u, "tenantName"), "Ops");
    u = item(r, 3);
    cr_assert_str_eq(jstr(u, "id"), john);
    cr_assert_str_eq(jstr(u, "email"), "john@acme.test");
    cr_assert_str_eq(jstr(u, "firstName"), "John");
    cr_assert_str_eq(jstr(u, "tenantId"), acme);
    cr_assert_str_eq(jstr(u, "tenantSlug"), acme_slug);
    cr_assert(json_is_false(json_object_get(u, "isGlobalAdmin")));
    cr_assert_null(json_object_get(u, "passwordHash"));
    cr_assert_eq(json_object_size(u), 18);
    json_decref(r);

    char q_acme[120], q_beta_john[160];
    snprintf(q_acme, sizeof(q_acme), "?tenantId=%s", acme);
    snprintf(q_beta_john, sizeof(q_beta_john), "?tenantId=%s&search=john", beta);
    struct {
        const char *query;
        json_int_t total;
    } cases[] = {
        {"?search=john", 2},      {"?search=JOHN", 2},
        {"?search=smith", 2},     {"?search=john%20smith", 1},
        {"?search=acme.test", 2}, {"?search=_", 1},
        {"?search=doe", 1},       {"?status=pending", 1},
        {"?status=active", 4},    {q_acme, 2},
        {q_beta_john, 1},         {"?search=nobody", 0},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char path[200];
        snprintf(path, sizeof(path), "/api/v1/admin/users%s", cases[i].query);
        cr_assert_eq(req("GET", path, root.token, &r), 200, "%s", cases[i].query);
        cr_assert_eq(pag(r, "total"), cases[i].total, "%s: %lld", cases[i].query,
                     (long long)pag(r, "total"));
        cr_assert_eq((json_int_t)ndata(r), cases[i].total);
        json_decref(r);
    }
    cr_assert_eq(req("GET", "/api/v1/admin/users?limit=2&page=3", root.token, &r), 200);
    cr_assert_eq(ndata(r), 1);
    cr_assert_eq(pag(r, "totalPages"), 3);
    cr_assert_str_eq(jstr(item(r, 0), "id"), root.uid);
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/admin/users?tenantId=acme", root.token, &r), 400);
    cr_assert_str_eq(jstr(r, "error"), "VALIDATION_ERROR");
    json_decref(r);
    cr_assert_eq(req("GET", "/api/v1/admin/users?status=gone", root.token, NULL), 400);
}

/* ---- zygo admin create -------------------------------------------------------------------- */

/* Runs admin_cli with the test's configuration in the environment; returns the exit status
 * and what it printed (stdout and stderr) in out. */
static int cli(const char *const *args, char *out, size_t n)
{
    static char data[300];
    snprintf(data, sizeof(data), "%s", t.dir);
    setenv("NODE_ENV", "test", 1);
    setenv("ZYGO_DATA_DIR", data, 1);
    setenv("ZYGO_ENV_FILE", "/nonexistent/.env", 1);
    setenv("LOG_LEVEL", "silent", 1);
    for (size_t i = 0; t.tdb.env[i]; i++) {
        char name[64];
        const char *eq = strchr(t.tdb.env[i], '=');
        cr_assert_not_null(eq);
        snprintf(name, sizeof(name), "%.*s", (int)(eq - t.tdb.env[i]), t.tdb.env[i]);
        setenv(name, eq + 1, 1);
    }
    char *argv[16];
    int argc = 0;
    argv[argc++] = "admin";
    for (size_t i = 0; args[i] && argc < 15; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;

    char path[320];
    snprintf(path, sizeof(path), "%s/cli.out", t.dir);
    fflush(stdout);
    fflush(stderr);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    cr_assert_geq(fd, 0);
    int saved_out = dup(1), saved_err = dup(2);
    dup2(fd, 1);
    dup2(fd, 2);
    close(fd);
    int rc = admin_cli(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    char *text = slurp(path);
    snprintf(out, n, "%s", text ? text : "");
    free(text);
    return rc;
}

#define HAS(out, s) cr_assert_not_null(strstr(out, s), "expected \"%s\" in: %s", s, out)

Test(admin, cli_usage)
{
    char out[4096];
    cr_assert_eq(cli((const char *const[]){NULL}, out, sizeof(out)), 2);
    HAS(out, "zygo admin --help");
    cr_assert_eq(cli((const char *const[]){"--help", NULL}, out, sizeof(out)), 0);
    HAS(out, "Usage: zygo admin create --email EMAIL [--tenant SLUG]");
    cr_assert_eq(cli((const char *const[]){"create", "--help", NULL}, out, sizeof(out)), 0);
    HAS(out, "--tenant SLUG");
    cr_assert_eq(cli((const char *const[]){"destroy", NULL}, out, sizeof(out)), 2);
    HAS(out, "unknown command 'destroy'");
    cr_assert_eq(cli((const char *const[]){"create", NULL}, out, sizeof(out)), 2);
    HAS(out, "--email");
    cr_assert_eq(cli((const char *const[]){"create", "--email", NULL}, out, sizeof(out)), 2);
    cr_assert_eq(cli((const char *const[]){"create", "--bogus", NULL}, out, sizeof(out)), 2);
    HAS(out, "--bogus");
    cr_assert_eq(cli((const char *const[]){"create", "--email", "a@b.test", "extra", NULL}, out,
                     sizeof(out)),
                 2);
    HAS(out, "unexpected argument 'extra'");
    cr_assert_eq(cli((const char *const[]){"create", "--email", "nope", NULL}, out, sizeof(out)),
                 2);
    HAS(out, "not an email");
}

Test(admin, cli_create_promotes_a_user)
{
    struct member acme, beta;
    member_of("Acme", "ann@shared.test", "member", &acme);
    member_of("Beta", "ann@shared.test", "viewer", &beta);
    char bob[37], bob_token[4096];
    make_user(acme.tid, &(struct user_spec){.email = "bob@acme.test", .role = "viewer"}, bob);
    accounts_mint_token(&t, bob, acme.tid, bob_token);
    char out[4096];

    cr_assert_eq(
        cli((const char *const[]){"create", "--email", "nobody@x.test", NULL}, out, sizeof(out)),
        1);
    HAS(out, "no user with email nobody@x.test");
    /* the same address in two tenants: --tenant must say which */
    cr_assert_eq(
        cli((const char *const[]){"create", "--email", "ann@shared.test", NULL}, out, sizeof(out)),
        1);
    HAS(out, "--tenant");
    HAS(out, acme.slug);
    HAS(out, beta.slug);
    cr_assert_eq(cli((const char *const[]){"create", "--email", "ann@shared.test", "--tenant",
                                           "no-such-tenant", NULL},
                     out, sizeof(out)),
                 1);
    HAS(out, "no-such-tenant");
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM users WHERE is_global_admin AND email = $1",
                                  "ann@shared.test"),
                 0);

    cr_assert_eq(cli((const char *const[]){"create", "--email", "Ann@Shared.TEST", "--tenant",
                                           beta.slug, NULL},
                     out, sizeof(out)),
                 0, "%s", out);
    HAS(out, "Promoted");
    HAS(out, beta.uid);
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM users WHERE is_global_admin AND id = $1",
                                  beta.uid),
                 1);
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM users WHERE is_global_admin AND id = $1",
                                  acme.uid),
                 0, "only the chosen tenant's user");
    cr_assert_eq(dbt_count_bypass(t.db,
                                  "SELECT count(*) FROM audit_logs WHERE action ="
                                  " 'admin.global_admin_grant' AND resource_id = $1"
                                  " AND actor_id IS NULL",
                                  beta.uid),
                 1);
    /* it applies at once, to the session the user already has */
    cr_assert_eq(req("GET", "/api/v1/admin/tenants", beta.token, NULL), 200);
    cr_assert_eq(req("GET", "/api/v1/admin/tenants", acme.token, NULL), 403);

    /* again: nothing to do, still success */
    cr_assert_eq(cli((const char *const[]){"create", "--email=ann@shared.test", "--tenant=", NULL},
                     out, sizeof(out)),
                 2, "an empty --tenant is a usage error");
    char tenant_flag[100];
    snprintf(tenant_flag, sizeof(tenant_flag), "--tenant=%s", beta.slug);
    cr_assert_eq(cli((const char *const[]){"create", "--email=ann@shared.test", tenant_flag, NULL},
                     out, sizeof(out)),
                 0);
    HAS(out, "already a global admin");

    /* a unique address needs no --tenant */
    cr_assert_eq(req("GET", "/api/v1/admin/users", bob_token, NULL), 403);
    cr_assert_eq(
        cli((const char *const[]){"create", "--email", "bob@acme.test", NULL}, out, sizeof(out)),
        0);
    HAS(out, acme.slug);
    cr_assert_eq(req("GET", "/api/v1/admin/users", bob_token, NULL), 200);
}
