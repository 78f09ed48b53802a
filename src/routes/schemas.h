/*
 * schemas.h — the schemas several route groups share: leaf values (uuid, string, boolean,
 * date-time, their nullable forms), the {id: uuid} path parameters, the page/limit query, and
 * the properties of a user (users.c's "User"; admin.c's "AdminUser" adds its own to them).
 * Constant data like every route schema; sharing one leaf changes nothing in validation or
 * in the OpenAPI document (leaves have no component name).
 */
#ifndef ZYGO_ROUTES_SCHEMAS_H
#define ZYGO_ROUTES_SCHEMAS_H

#include "lib/schema.h"

extern const struct schema schemas_any;               /* any JSON value */
extern const struct schema schemas_any_object;        /* a JSON object, any keys */
extern const struct schema schemas_str;               /* a string */
extern const struct schema schemas_nullable_str;      /* a string or null */
extern const struct schema schemas_int;               /* an integer */
extern const struct schema schemas_bool;              /* a boolean */
extern const struct schema schemas_uuid;              /* a UUID string */
extern const struct schema schemas_nullable_uuid;     /* a UUID string or null */
extern const struct schema schemas_email;             /* an email address (responses) */
extern const struct schema schemas_datetime;          /* an RFC 3339 date-time */
extern const struct schema schemas_nullable_datetime; /* an RFC 3339 date-time or null */
extern const struct schema schemas_active_suspended;  /* "active" or "suspended" */

extern const struct schema schemas_id_params;  /* path {id: uuid} */
extern const struct schema schemas_page_query; /* query {page, limit} (http/pagination.h) */

/* The properties of a user as the API shows it (repos/users.c's JSON): a list initializer, so
 * that an extended object appends its own before the end, e.g. AdminUser:
 *   (const struct schema_prop[]){SCHEMAS_USER_PROPS, {"tenantName", &schemas_str, true}, {NULL}}
 */
/* clang-format off */
#define SCHEMAS_USER_PROPS                                                                         \
    {"id", &schemas_uuid, true}, {"tenantId", &schemas_uuid, true},                                \
    {"email", &schemas_email, true}, {"firstName", &schemas_nullable_str, true},                   \
    {"lastName", &schemas_nullable_str, true}, {"displayName", &schemas_nullable_str, true},       \
    {"avatar", &schemas_nullable_str, true}, {"phone", &schemas_nullable_str, true},               \
    {"status", &schemas_str, true}, {"emailVerified", &schemas_bool, true},                        \
    {"phoneVerified", &schemas_bool, true}, {"mfaEnabled", &schemas_bool, true},                   \
    {"lastLoginAt", &schemas_nullable_datetime, true}, {"createdAt", &schemas_datetime, true},     \
    {"updatedAt", &schemas_datetime, true}
/* clang-format on */

#endif
