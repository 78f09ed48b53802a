/*
 * schema.h — declarative request schemas (the C counterpart of Zod objects).
 *
 * A schema is static, constant data: the same table validates requests (body, query, path
 * params) and generates the OpenAPI document (src/http/openapi.c). Validation reports every
 * issue, Zod-style: {path, message, code} with Zod's codes (invalid_type, too_small, too_big,
 * invalid_string, invalid_enum_value, unrecognized_keys, invalid_literal, custom).
 *
 * Unknown object keys are rejected (Zod .strict()) unless the schema sets allow_unknown.
 *
 * Where we differ from Zod, on purpose:
 *  - string lengths count Unicode code points, not UTF-16 units;
 *  - integers: an integral float (1.0, 1e3) becomes a JSON integer; outside int64 it fails;
 *  - coerce is strict: numbers accept decimal text only ("", " 1", "0x1", "abc" fail with
 *    "Expected number, received nan"; "1e999" with not_finite "Number must be finite"), booleans
 *    accept "true", "false", "1", "0" only; an array schema with coerce wraps a lone value in an
 *    array (one ?tag=a), and a scalar schema given an array (a repeated query key,
 *    ?page=1&page=2) fails with Zod's "Expected number, received array";
 *  - values nested deeper than SCHEMA_MAX_DEPTH containers fail with a "custom" issue instead
 *    of recursing without bound (only a self-referencing schema can get there).
 */
#ifndef ZYGO_SCHEMA_H
#define ZYGO_SCHEMA_H

#include <jansson.h>

#include "lib/common.h"

struct arena;

enum schema_type {
    SCHEMA_ANY = 0, /* any JSON value */
    SCHEMA_STRING,
    SCHEMA_INTEGER,
    SCHEMA_NUMBER,
    SCHEMA_BOOLEAN,
    SCHEMA_OBJECT,
    SCHEMA_ARRAY,
};

enum schema_format {
    SCHEMA_FMT_NONE = 0,
    SCHEMA_FMT_EMAIL,
    SCHEMA_FMT_UUID,
    SCHEMA_FMT_URL,      /* absolute http(s) URL */
    SCHEMA_FMT_DATETIME, /* RFC 3339 date-time, e.g. 2026-01-26T10:00:00.000Z */
};

/* Containers (objects, arrays) nested deeper than this fail validation. */
#define SCHEMA_MAX_DEPTH 64

struct schema;

struct schema_prop {
    const char *name; /* NULL ends the list */
    const struct schema *schema;
    bool required;
};

struct schema {
    enum schema_type type;
    enum schema_format format;
    const char *ref; /* component name in the OpenAPI document; NULL: inline */
    const char *description;
    const char *example;      /* JSON text */
    const char *default_json; /* JSON text applied when the value is absent */
    bool nullable;
    bool coerce; /* accept strings and convert them (query strings, like z.coerce) */
    /* Bounds: value range for numbers, length in characters for strings, item count for
     * arrays. has_min / has_max say whether each bound applies. */
    bool has_min, has_max;
    double min, max;
    const char *const *enum_values;  /* NULL-terminated list of allowed strings */
    const struct schema_prop *props; /* objects: NULL-name-terminated */
    bool allow_unknown;              /* objects: keep unknown keys instead of rejecting them */
    const struct schema *items;      /* arrays */
};

struct schema_issue {
    const char *path;    /* "address.zip", "items.0.name"; "" for the root */
    const char *message; /* Zod's wording, e.g. "Required" */
    const char *code;    /* Zod's code, e.g. "invalid_type" */
};

/* At most this many issues are stored; past it one "custom" issue says the list was cut and
 * the rest are only counted in `dropped` (a body of 100k bad array items must not produce a
 * 100k-entry error response). */
#define SCHEMA_MAX_ISSUES 100

struct schema_issues {
    struct schema_issue *v; /* arena-owned */
    size_t n, cap;
    struct arena *arena;
    size_t dropped; /* issues past SCHEMA_MAX_ISSUES, not stored */
};

/* Issues, and copies of the strings given to schema_issue_add(), live in the arena `a`. */
void schema_issues_init(struct schema_issues *is, struct arena *a);
void schema_issue_add(struct schema_issues *is, const char *path, const char *code,
                      const char *message);

/*
 * Validates `in` (borrowed; NULL means absent) against `s`.
 * Returns a new reference to the validated value — defaults filled in, coerced values
 * converted — or NULL when any issue was found (all of them appended to `issues`).
 * An absent optional value with no default returns NULL with no issue added; callers tell the
 * two apart by issues->n.
 */
json_t *schema_validate(const struct schema *s, json_t *in, struct schema_issues *issues);

/* JSON Schema (OpenAPI 3.1 dialect) for s; $ref to #/components/schemas/<ref> for named
 * sub-schemas when `refs` is true. New reference. */
json_t *schema_to_json(const struct schema *s, bool refs);

/* The named schemas reachable from s, added to `components` (an object) by ref name. */
void schema_collect_components(const struct schema *s, json_t *components);

#endif
