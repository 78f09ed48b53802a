/* users.c — see users.h. */
#include "lib/common.h"

#include "http/app.h"
#include "http/pagination.h"
#include "jobs/user_deletion.h"
#include "lib/buf.h"
#include "lib/uuid.h"
#include "repos/audit.h"
#include "services/audit.h"
#include "repos/otp.h"
#include "repos/repo.h"
#include "repos/roles.h"
#include "repos/sessions.h"
#include "repos/users.h"
#include "routes/schemas.h"
#include "routes/users.h"
#include "services/auth.h"

#define INVITE_TTL_S (7 * 24 * 3600)
/* A page of 100 users is about 60 KB. */
#define LIST_BODY_MAX (4u << 20)
/* One User object: its fields are bounded by the schemas, far below this. */
#define USER_BODY_MAX (64u << 10)

static const struct schema user_s = {.type = SCHEMA_OBJECT,
                                     .ref = "User",
                                     .props =
                                         (const struct schema_prop[]){SCHEMAS_USER_PROPS, {NULL}}};

static const struct schema user_list_s = {
    .type = SCHEMA_OBJECT,
    .ref = "UserList",
    .props = (const struct schema_prop[]){
        {"data", &(const struct schema){.type = SCHEMA_ARRAY, .items = &user_s}, true},
        {"pagination", &pagination_schema, true},
        {NULL}}};

/* The specification's querySchema for GET /users. */
static const struct schema list_query_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){
        {"search",
         &(const struct schema){
             .type = SCHEMA_STRING, .has_max = true, .max = 100, .example = "\"john\""},
         false},
        {"status",
         &(const struct schema){.type = SCHEMA_STRING,
                                .enum_values =
                                    (const char *const[]){"active", "pending", "suspended", NULL}},
         false},
        {"page", &pagination_page_schema, false},
        {"limit", &pagination_limit_schema, false},
        {NULL}}};

static const struct schema opt_name_s = {.type = SCHEMA_STRING,
                                         .nullable = true,
                                         .has_min = true,
                                         .min = 1,
                                         .has_max = true,
                                         .max = 100};

static const struct schema display_name_s = {
    .type = SCHEMA_STRING, .nullable = true, .has_max = true, .max = 200};
static const struct schema avatar_s = {.type = SCHEMA_STRING,
                                       .format = SCHEMA_FMT_URL,
                                       .nullable = true,
                                       .has_max = true,
                                       .max = 2048};
static const struct schema phone_s = {
    .type = SCHEMA_STRING, .nullable = true, .has_max = true, .max = 20};

/* Profile fields a user may change about themselves. */
/* clang-format off */
#define PROFILE_PROPS                                                                              \
    {"firstName", &opt_name_s, false}, {"lastName", &opt_name_s, false},                           \
    {"displayName", &display_name_s, false}, {"avatar", &avatar_s, false},                         \
    {"phone", &phone_s, false}
/* clang-format on */

static const struct schema profile_s = {.type = SCHEMA_OBJECT,
                                        .ref = "ProfileUpdate",
                                        .props =
                                            (const struct schema_prop[]){PROFILE_PROPS, {NULL}}};

/* …plus the account status, which only user managers set. */
static const struct schema update_s = {
    .type = SCHEMA_OBJECT,
    .ref = "UserUpdate",
    .props = (const struct schema_prop[]){
        PROFILE_PROPS, {"status", &schemas_active_suspended, false}, {NULL}}};

static const struct schema invite_s = {
    .type = SCHEMA_OBJECT,
    .ref = "UserInvite",
    .props = (const struct schema_prop[]){
        {"email",
         &(const struct schema){
             .type = SCHEMA_STRING, .format = SCHEMA_FMT_EMAIL, .has_max = true, .max = 255},
         true},
        {"firstName", &opt_name_s, false},
        {"lastName", &opt_name_s, false},
        {"role",
         &(const struct schema){.type = SCHEMA_STRING,
                                .has_min = true,
                                .min = 1,
                                .has_max = true,
                                .max = 50,
                                .default_json = "\"member\""},
         false},
        {NULL}}};

static void audit_user(struct ctx *c, struct db_conn *db, const char *action, const char *id)
{
    struct audit_entry e = {.tenant_id = c->tenant_id,
                            .actor_id = c->user->id,
                            .action = action,
                            .resource_type = "user",
                            .resource_id = id};
    audit_request(c, db, &e);
}

/* The answer for a user written onto b (found 1), absent (0) or too large (-2); b is taken. */
static int send_written(struct ctx *c, int found, struct buf *b, const char *id, int status)
{
    if (found == 1)
        return ctx_json_buf(c, status, b);
    buf_free(b);
    if (found == -2)
        return ctx_fail(c, ZY_E_INTERNAL, "user larger than its response buffer");
    /* another tenant's user is as absent as a missing one: 404, never 403 */
    return ctx_fail(c, ZY_E_NOT_FOUND, "User with ID %s not found", id);
}

int users_send_one(struct ctx *c, struct db_conn *db, const char *tenant_id, const char *id,
                   int status)
{
    struct buf b;
    buf_init(&b, USER_BODY_MAX);
    int found = users_write_by_id(db, tenant_id, id, &b);
    if (found == -1) {
        buf_free(&b);
        return ctx_fail_db(c, db, NULL);
    }
    return send_written(c, found, &b, id, status);
}

static int user_row_done(struct ctx *c, struct db_rows *rows, int errkind, const char *errmsg)
{
    if (!rows)
        return ctx_fail_dberr(c, errkind, errmsg, NULL);
    struct buf b;
    buf_init(&b, USER_BODY_MAX);
    int found = 0;
    if (db_next(rows)) {
        found = users_row_write(&b, rows) < 0 ? -2 : 1;
    } else if (db_rows_error(rows)) {
        buf_free(&b);
        return ctx_fail(c, ZY_E_INTERNAL, "database: reading the user");
    }
    return send_written(c, found, &b, c->local, 200);
}

int users_send_one_async(struct ctx *c, const char *tenant_id, const char *id)
{
    char uid[37], tid[37];
    const char *sql;
    struct db_param p[2];
    if (!users_by_id_stmt(tenant_id, id, uid, tid, &sql, p))
        return 0; /* the blocking way answers that with its 404 */
    c->local = arena_strdup(c->arena, id);
    return ctx_query_async(c, tid, sql, p, 2, user_row_done);
}

static int send_user_db(struct ctx *c, struct db_conn *db, const char *id, int status)
{
    return users_send_one(c, db, c->tenant_id, id, status);
}

static int invite_tx(struct ctx *c, struct db_conn *db)
{
    char id[37], expires[32], token[TOKEN_LEN + 1];
    uuid_v7(id);
    repo_tenant(db, c->tenant_id);
    struct user_new u = {
        .id = id,
        .tenant_id = c->tenant_id,
        .email = json_string_value(json_object_get(c->body, "email")),
        .first_name = json_string_value(json_object_get(c->body, "firstName")),
        .last_name = json_string_value(json_object_get(c->body, "lastName")),
        .status = "pending",
    };
    if (users_create(db, &u) < 0)
        return ctx_fail_db(c, db, "A user with this email already exists in the tenant");
    const char *role = json_string_value(json_object_get(c->body, "role"));
    if (roles_assign_by_name(db, c->tenant_id, id, role) < 0)
        return ctx_fail_details(c, ZY_E_VALIDATION, 400,
                                json_pack("{s:[{s:s, s:s, s:s}]}", "issues", "path", "role", "code",
                                          "custom", "message", "No such role"),
                                "Request validation failed");
    auth_iso(auth_now() + INVITE_TTL_S, expires);
    if (otp_create(db, c->tenant_id, id, "invitation", expires, token) < 0)
        return ctx_fail_db(c, db, NULL);
    audit_user(c, db, "user.invite", id);
    auth_send_link(c, u.email, "invitation", "You are invited to Zygo",
                   "You have been invited to join a team. To set your password and sign in, "
                   "open:",
                   "/accept-invitation", token);
    return send_user_db(c, db, id, 201);
}

/* Every socket of the user closes once the change commits. */
static void announce_user_revoked(struct ctx *c, const char *id)
{
    char uid[37];
    uuid_normalize(id, uid);
    auth_announce_revoked(c, uid, NULL, NULL);
}

static int update_tx(struct ctx *c, struct db_conn *db)
{
    const char *id = json_string_value(json_object_get(c->path_params, "id"));
    const char *status = json_string_value(json_object_get(c->body, "status"));
    char now[32];
    auth_iso(auth_now(), now);
    if (status && strcmp(status, "suspended") == 0 && users_is_owner(db, c->tenant_id, id) &&
        users_count_owners(db, c->tenant_id) <= 1)
        return ctx_fail(c, ZY_E_CONFLICT, "The last owner cannot be suspended");
    int rc = users_update(db, c->tenant_id, id, c->body, now);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    if (rc == 0)
        return ctx_fail(c, ZY_E_NOT_FOUND, "User with ID %s not found", id);
    if (status && strcmp(status, "suspended") == 0) {
        if (sessions_revoke_user(db, c->tenant_id, id, NULL, now, "user_suspended") < 0)
            return ctx_fail_db(c, db, NULL);
        announce_user_revoked(c, id);
    }
    audit_user(c, db, "user.update", id);
    return send_user_db(c, db, id, 200);
}

static int update_me_tx(struct ctx *c, struct db_conn *db)
{
    char now[32];
    auth_iso(auth_now(), now);
    if (users_update(db, c->tenant_id, c->user->id, c->body, now) != 1)
        return ctx_fail_db(c, db, NULL);
    audit_user(c, db, "user.update_profile", c->user->id);
    return send_user_db(c, db, c->user->id, 200);
}

static int delete_tx(struct ctx *c, struct db_conn *db)
{
    const char *id = json_string_value(json_object_get(c->path_params, "id"));
    char now[32];
    auth_iso(auth_now(), now);
    if (users_is_owner(db, c->tenant_id, id) && users_count_owners(db, c->tenant_id) <= 1)
        return ctx_fail(c, ZY_E_CONFLICT, "The last owner cannot be deleted");
    int rc = users_soft_delete(db, c->tenant_id, id, now);
    if (rc < 0)
        return ctx_fail_db(c, db, NULL);
    if (rc == 0)
        return ctx_fail(c, ZY_E_NOT_FOUND, "User with ID %s not found", id);
    if (sessions_revoke_user(db, c->tenant_id, id, NULL, now, "user_deleted") < 0)
        return ctx_fail_db(c, db, NULL);
    announce_user_revoked(c, id);
    /* the rest (identities, MFA, roles, anonymising the row) is the user-deletion job's */
    char job_id[JOB_ID_MAX];
    if (user_deletion_enqueue(db, c->tenant_id, id, c->user->id, job_id) < 0)
        return ctx_fail_db(c, db, NULL);
    ctx_wake_jobs(c);
    audit_user(c, db, "user.delete", id);
    ctx_body(c, 204, NULL, "", 0);
    return 0;
}

static int list_users(struct ctx *c)
{
    struct db_conn *db = ctx_db(c);
    if (!db)
        return -1;
    struct page pg;
    pagination_from_query(c, &pg);
    long long total;
    struct buf rows;
    pagination_begin(&rows, LIST_BODY_MAX);
    if (users_list(db, c->tenant_id, json_string_value(json_object_get(c->query, "search")),
                   json_string_value(json_object_get(c->query, "status")), pg.limit, pg.offset,
                   &total, &rows) < 0 &&
        !rows.overflow) {
        buf_free(&rows);
        return ctx_fail_db(c, db, NULL);
    }
    return pagination_send(c, &rows, &pg, total);
}

static int send_user(struct ctx *c, const char *id)
{
    if (users_send_one_async(c, c->tenant_id, id) == CTX_PENDING)
        return CTX_PENDING;
    struct db_conn *db = ctx_db(c);
    return db ? send_user_db(c, db, id, 200) : -1;
}

static int get_me(struct ctx *c)
{
    return send_user(c, c->user->id);
}

static int get_user(struct ctx *c)
{
    return send_user(c, json_string_value(json_object_get(c->path_params, "id")));
}

static const struct route routes[] = {
    {.method = HTTP_GET,
     .path = "/users",
     .handler = list_users,
     .tag = "Users",
     .summary = "List users",
     .description = "Get a paginated list of users in the tenant",
     .operation_id = "listUsers",
     .query = &list_query_s,
     .auth = ROUTE_AUTH,
     .permission = "canViewUsers",
     .responses = (const struct route_response[]){{200, "List of users", &user_list_s}, {0}}},
    {.method = HTTP_GET,
     .path = "/users/me",
     .handler = get_me,
     .tag = "Users",
     .summary = "My profile",
     .operation_id = "getMe",
     .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{200, "The signed-in user", &user_s}, {0}}},
    {.method = HTTP_PATCH,
     .path = "/users/me",
     .tx = update_me_tx,
     .tag = "Users",
     .summary = "Update my profile",
     .operation_id = "updateMe",
     .body = &profile_s,
     .auth = ROUTE_AUTH,
     .responses = (const struct route_response[]){{200, "Updated", &user_s}, {0}}},
    {.method = HTTP_POST,
     .path = "/users",
     .tx = invite_tx,
     .tag = "Users",
     .summary = "Invite a user",
     .description = "Creates a pending user with a role and emails an invitation link that "
                    "sets the password.",
     .operation_id = "inviteUser",
     .body = &invite_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageUsers",
     .responses = (const struct route_response[]){{201, "Invited", &user_s},
                                                  {409, "Email taken in the tenant", NULL},
                                                  {0}}},
    {.method = HTTP_PATCH,
     .path = "/users/:id",
     .tx = update_tx,
     .tag = "Users",
     .summary = "Update a user",
     .operation_id = "updateUser",
     .params = &schemas_id_params,
     .body = &update_s,
     .auth = ROUTE_AUTH,
     .permission = "canManageUsers",
     .responses = (const struct route_response[]){{200, "Updated", &user_s}, {0}}},
    {.method = HTTP_DELETE,
     .path = "/users/:id",
     .tx = delete_tx,
     .tag = "Users",
     .summary = "Delete a user",
     .description = "Soft delete; the user's sessions end at once. A user-deletion job then "
                    "removes their sign-in identities, MFA factors, role assignments and "
                    "sessions and anonymises the row.",
     .operation_id = "deleteUser",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = "canManageUsers",
     .responses = (const struct route_response[]){{204, "Deleted", NULL}, {0}}},
    {.method = HTTP_GET,
     .path = "/users/:id",
     .handler = get_user,
     .tag = "Users",
     .summary = "Get a user",
     .operation_id = "getUser",
     .params = &schemas_id_params,
     .auth = ROUTE_AUTH,
     .permission = "canViewUsers",
     .responses = (const struct route_response[]){{200, "The user", &user_s}, {0}}},
};

const struct route_group users_routes = {
    .prefix = "/api/v1",
    .routes = routes,
    .count = ARRAY_LEN(routes),
    .tag_description = "The tenant's users.",
};
