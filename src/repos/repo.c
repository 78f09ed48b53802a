/* repo.c — see repo.h. */
#include "lib/common.h"

#include "lib/jsonx.h"
#include "lib/uuid.h"
#include "repos/repo.h"

static json_t *col_json(struct db_rows *r, int i, enum repo_type type)
{
    if (db_is_null(r, i))
        return json_null();
    switch (type) {
    case REPO_BOOL:
        return json_boolean(db_bool(r, i));
    case REPO_INT:
        return json_integer(db_int(r, i));
    case REPO_JSON: {
        json_t *v = json_loadb(db_text(r, i), db_textlen(r, i), JSON_DECODE_ANY, NULL);
        return v ? v : json_null();
    }
    case REPO_TEXT:
    case REPO_TIMESTAMP:
        break;
    }
    return jx_strn(db_text(r, i), db_textlen(r, i));
}

json_t *repo_row_json(struct db_rows *r, const struct repo_col *cols)
{
    json_t *o = json_object();
    for (int i = 0; cols[i].key; i++)
        json_object_set_new(o, cols[i].key, col_json(r, i, cols[i].type));
    return o;
}

int repo_tenant(struct db_conn *c, const char *tenant_id)
{
    if (!tenant_id || !uuid_valid(tenant_id))
        return -1;
    return db_set_tenant(c, tenant_id);
}
