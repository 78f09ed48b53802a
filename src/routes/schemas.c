/* schemas.c — see schemas.h. */
#include "lib/common.h"

#include "http/pagination.h"
#include "routes/schemas.h"

const struct schema schemas_any = {.type = SCHEMA_ANY};
const struct schema schemas_any_object = {.type = SCHEMA_OBJECT, .allow_unknown = true};
const struct schema schemas_str = {.type = SCHEMA_STRING};
const struct schema schemas_nullable_str = {.type = SCHEMA_STRING, .nullable = true};
const struct schema schemas_int = {.type = SCHEMA_INTEGER};
const struct schema schemas_bool = {.type = SCHEMA_BOOLEAN};
const struct schema schemas_uuid = {.type = SCHEMA_STRING, .format = SCHEMA_FMT_UUID};
const struct schema schemas_nullable_uuid = {
    .type = SCHEMA_STRING, .format = SCHEMA_FMT_UUID, .nullable = true};
const struct schema schemas_email = {.type = SCHEMA_STRING, .format = SCHEMA_FMT_EMAIL};
const struct schema schemas_datetime = {.type = SCHEMA_STRING, .format = SCHEMA_FMT_DATETIME};
const struct schema schemas_nullable_datetime = {
    .type = SCHEMA_STRING, .format = SCHEMA_FMT_DATETIME, .nullable = true};
const struct schema schemas_active_suspended = {
    .type = SCHEMA_STRING, .enum_values = (const char *const[]){"active", "suspended", NULL}};

const struct schema schemas_id_params = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"id", &schemas_uuid, true}, {NULL}}};

const struct schema schemas_page_query = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"page", &pagination_page_schema, false},
                                          {"limit", &pagination_limit_schema, false},
                                          {NULL}}};
