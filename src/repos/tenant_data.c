/* tenant_data.c — see tenant_data.h. */
#include "lib/common.h"

#include "lib/buf.h"
#include "lib/log.h"
#include "repos/tenant_data.h"

#define NAME_MAX_LEN 63
/* json_build_object takes at most 100 arguments (PostgreSQL's FUNC_MAX_ARGS). */
#define COLS_MAX 50

/* Tables with a tenant_id that are not the tenant's data (see the header). */
static const char *const skipped[] = {"jobs", "tenant_deletions"};

/* Catalogue names are used as SQL identifiers: only plain lower-case ones are accepted. */
static bool ident_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

static bool is_skipped(const char *t)
{
    for (size_t i = 0; i < ARRAY_LEN(skipped); i++)
        if (strcmp(skipped[i], t) == 0)
            return true;
    return false;
}

bool tenant_data_column_redacted(const char *column)
{
    size_t n = strlen(column);
    return (n > 5 && strcmp(column + n - 5, "_hash") == 0) ||
           (n > 7 && strcmp(column + n - 7, "_sealed") == 0);
}

/* The single-text-column rows of a catalogue query, appended to a growable list. */
struct names {
    size_t n, cap;
    char **v;
};

static void names_push(struct names *l, const char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 16;
        l->v = xrealloc(l->v, l->cap * sizeof(*l->v));
    }
    l->v[l->n++] = xstrdup(s);
}

static void names_free(struct names *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->v[i]);
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static bool names_has(const struct names *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return true;
    return false;
}

/* Runs a catalogue query with an optional table-name parameter into *out. 0 or -1. */
static int catalogue(struct db_conn *c, const char *sql, const char *table, struct names *out)
{
    struct db_rows *r =
        table ? db_query(c, sql, DB_ARGS(DB_TEXT(table))) : db_query(c, sql, DB_NOARGS);
    if (!r)
        return -1;
    while (db_next(r))
        names_push(out, db_text(r, 0));
    int rc = db_rows_error(r);
    db_rows_free(r);
    return rc < 0 ? -1 : 0;
}

static int table_names(struct db_conn *c, struct names *out)
{
    if (db_conn_dialect(c) == DB_SQLITE)
        return catalogue(c,
                         "SELECT m.name FROM sqlite_master m WHERE m.type = 'table'"
                         " AND m.name NOT LIKE 'sqlite_%' AND EXISTS (SELECT 1 FROM"
                         " pragma_table_info(m.name) p WHERE p.name = 'tenant_id')"
                         " ORDER BY m.name",
                         NULL, out);
    return catalogue(c,
                     "SELECT c.table_name FROM information_schema.columns c"
                     " JOIN information_schema.tables t ON t.table_schema = c.table_schema"
                     " AND t.table_name = c.table_name"
                     " WHERE c.table_schema = current_schema() AND c.column_name = 'tenant_id'"
                     " AND t.table_type = 'BASE TABLE' ORDER BY 1",
                     NULL, out);
}

/* The tables `table` references with a foreign key. */
static int referenced(struct db_conn *c, const char *table, struct names *out)
{
    if (db_conn_dialect(c) == DB_SQLITE)
        return catalogue(c, "SELECT DISTINCT \"table\" FROM pragma_foreign_key_list($1)", table,
                         out);
    return catalogue(c,
                     "SELECT DISTINCT cf.relname::text FROM pg_constraint k"
                     " JOIN pg_class c ON c.oid = k.conrelid"
                     " JOIN pg_class cf ON cf.oid = k.confrelid"
                     " JOIN pg_namespace n ON n.oid = c.relnamespace"
                     " WHERE k.contype = 'f' AND n.nspname = current_schema()"
                     " AND c.relname = $1",
                     table, out);
}

static int columns(struct db_conn *c, const char *table, struct names *out)
{
    if (db_conn_dialect(c) == DB_SQLITE)
        return catalogue(c, "SELECT name FROM pragma_table_info($1) ORDER BY cid", table, out);
    return catalogue(c,
                     "SELECT column_name FROM information_schema.columns"
                     " WHERE table_schema = current_schema() AND table_name = $1"
                     " ORDER BY ordinal_position",
                     table, out);
}

int tenant_data_tables(struct db_conn *c, struct tenant_tables *out)
{
    memset(out, 0, sizeof(*out));
    struct names all = {0}, tables = {0};
    if (table_names(c, &all) < 0)
        return -1;
    for (size_t i = 0; i < all.n; i++)
        if (!is_skipped(all.v[i]) && ident_ok(all.v[i]))
            names_push(&tables, all.v[i]);
    names_free(&all);
    /* refs[i]: the other tenant tables table i references (self references do not matter:
     * one statement deletes all of a tenant's rows of a table) */
    struct names *refs = xcalloc(tables.n ? tables.n : 1, sizeof(*refs));
    int rc = 0;
    for (size_t i = 0; i < tables.n && rc == 0; i++) {
        struct names r = {0};
        rc = referenced(c, tables.v[i], &r);
        for (size_t k = 0; k < r.n; k++)
            if (strcmp(r.v[k], tables.v[i]) != 0 && names_has(&tables, r.v[k]))
                names_push(&refs[i], r.v[k]);
        names_free(&r);
    }
    /* Kahn's algorithm on "is referenced by": a table is emitted once no table still to be
     * emitted references it */
    bool *done = xcalloc(tables.n ? tables.n : 1, sizeof(*done));
    out->names = xcalloc(tables.n ? tables.n : 1, sizeof(*out->names));
    while (rc == 0 && out->n < tables.n) {
        bool progress = false;
        for (size_t i = 0; i < tables.n; i++) {
            if (done[i])
                continue;
            bool referenced_by_pending = false;
            for (size_t k = 0; k < tables.n && !referenced_by_pending; k++)
                referenced_by_pending = !done[k] && k != i && names_has(&refs[k], tables.v[i]);
            if (referenced_by_pending)
                continue;
            done[i] = true;
            out->names[out->n++] = xstrdup(tables.v[i]);
            progress = true;
        }
        if (!progress) {
            log_msg(LOG_ERROR, "tenant data: foreign keys between tenant tables form a cycle");
            rc = -1;
        }
    }
    for (size_t i = 0; i < tables.n; i++)
        names_free(&refs[i]);
    free(refs);
    free(done);
    names_free(&tables);
    if (rc < 0)
        tenant_tables_free(out);
    return rc;
}

void tenant_tables_free(struct tenant_tables *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    memset(t, 0, sizeof(*t));
}

int tenant_data_rows(struct db_conn *c, const char *table, const char *tenant_id, tenant_row_fn fn,
                     void *arg, long long *nrows)
{
    *nrows = 0;
    if (!ident_ok(table))
        return -1;
    struct names cols = {0};
    if (columns(c, table, &cols) < 0)
        return -1;
    bool pg = db_conn_dialect(c) == DB_POSTGRES;
    struct buf sql;
    buf_init(&sql, 64 * 1024);
    buf_puts(&sql, pg ? "SELECT json_build_object(" : "SELECT json_object(");
    size_t used = 0;
    for (size_t i = 0; i < cols.n; i++) {
        if (tenant_data_column_redacted(cols.v[i]) || !ident_ok(cols.v[i]))
            continue;
        buf_printf(&sql, "%s'%s', \"%s\"", used ? ", " : "", cols.v[i], cols.v[i]);
        used++;
    }
    buf_printf(&sql, ")%s FROM \"%s\" WHERE %s = $1", pg ? "::text" : "", table,
               strcmp(table, "tenants") == 0 ? "id" : "tenant_id");
    names_free(&cols);
    if (used == 0 || used > COLS_MAX || sql.overflow) {
        log_msg(LOG_ERROR, "tenant data: cannot export table %s (%zu columns)", table, used);
        buf_free(&sql);
        return -1;
    }
    struct db_rows *r = db_query(c, buf_cstr(&sql), DB_ARGS(DB_TEXT(tenant_id)));
    buf_free(&sql);
    if (!r)
        return -1;
    int rc = 0;
    while (rc == 0 && db_next(r)) {
        rc = fn(arg, db_text(r, 0), db_textlen(r, 0));
        (*nrows)++;
    }
    if (db_rows_error(r) < 0)
        rc = -1;
    db_rows_free(r);
    return rc;
}

int tenant_data_purge(struct db_conn *c, const char *table, const char *tenant_id)
{
    if (!ident_ok(table) || strcmp(table, "tenants") == 0 || is_skipped(table))
        return -1;
    char sql[128];
    snprintf(sql, sizeof(sql), "DELETE FROM \"%s\" WHERE tenant_id = $1", table);
    return db_exec(c, sql, DB_ARGS(DB_TEXT(tenant_id)));
}

int tenant_data_purge_jobs(struct db_conn *c, const char *tenant_id, const char *keep_job_id)
{
    return db_exec(c, "DELETE FROM jobs WHERE tenant_id = $1 AND id <> $2 AND state <> 'active'",
                   DB_ARGS(DB_TEXT(tenant_id), DB_TEXT(keep_job_id)));
}
