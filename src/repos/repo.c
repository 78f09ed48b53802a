/* repo.c — see repo.h. */
#include "lib/common.h"

#include "lib/buf.h"
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

static int col_write(struct buf *b, struct db_rows *r, int i, enum repo_type type)
{
    if (db_is_null(r, i))
        return buf_append(b, "null", 4);
    switch (type) {
    case REPO_BOOL:
        return db_bool(r, i) ? buf_append(b, "true", 4) : buf_append(b, "false", 5);
    case REPO_INT:
        return buf_printf(b, "%lld", (long long)db_int(r, i));
    case REPO_JSON: {
        /* parsed and dumped again: the stored text is not trusted to be valid JSON */
        json_t *v = col_json(r, i, type);
        char *s = jx_dump(v, NULL);
        json_decref(v);
        int rc = buf_puts(b, s);
        free(s);
        return rc;
    }
    case REPO_TEXT:
    case REPO_TIMESTAMP:
        break;
    }
    return buf_json_str(b, db_text(r, i), db_textlen(r, i));
}

int repo_row_write(struct buf *b, struct db_rows *r, const struct repo_col *cols)
{
    int rc = buf_putc(b, '{');
    for (int i = 0; cols[i].key && rc == 0; i++) {
        if (i)
            rc |= buf_putc(b, ',');
        rc |= buf_json_str(b, cols[i].key, strlen(cols[i].key));
        rc |= buf_putc(b, ':');
        rc |= col_write(b, r, i, cols[i].type);
    }
    rc |= buf_putc(b, '}');
    return rc ? -1 : 0;
}

int repo_rows_write(struct buf *b, struct db_rows *r, const struct repo_col *cols)
{
    int rc = buf_putc(b, '[');
    for (bool first = true; rc == 0 && db_next(r); first = false) {
        if (!first)
            rc |= buf_putc(b, ',');
        rc |= repo_row_write(b, r, cols);
    }
    rc |= buf_putc(b, ']');
    return rc || db_rows_error(r) ? -1 : 0;
}

int repo_tenant(struct db_conn *c, const char *tenant_id)
{
    if (!tenant_id || !uuid_valid(tenant_id))
        return -1;
    return db_set_tenant(c, tenant_id);
}
