/*
 * schema.c — validating JSON values against the static schemas (Zod's checks and wording) and
 * writing those schemas as JSON Schema for the OpenAPI document; see schema.h.
 *
 * Owns nothing past a call: validation builds a fresh output tree (the caller owns it), issues
 * live in the caller's arena, and the path being visited is a heap buffer freed on return.
 */
#include "lib/common.h"

#include <inttypes.h>
#include <math.h>
#include <strings.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/schema.h"
#include "lib/utf8.h"

#define STR_(x) #x
#define STR(x) STR_(x)

/* Property names come from the static schemas, so the path is bounded by their depth. */
#define SCHEMA_PATH_MAX (16 * 1024)

/* int64 range as doubles: the first value past INT64_MAX is exactly 2^63. */
#define INT64_LOW (-9223372036854775808.0)
#define INT64_END 9223372036854775808.0

/* ---- issues ------------------------------------------------------------------------------ */

void schema_issues_init(struct schema_issues *is, struct arena *a)
{
    memset(is, 0, sizeof(*is));
    is->arena = a;
}

static void issues_push(struct schema_issues *is, const char *path, const char *code,
                        const char *message)
{
    if (is->n == is->cap) {
        /* The arena cannot grow a block in place: copy into a twice larger one. */
        size_t cap = is->cap ? is->cap * 2 : 8;
        struct schema_issue *v = arena_alloc(is->arena, cap * sizeof(*v));
        if (is->n)
            memcpy(v, is->v, is->n * sizeof(*v));
        is->v = v;
        is->cap = cap;
    }
    struct schema_issue *i = &is->v[is->n++];
    i->path = arena_strdup(is->arena, path ? path : "");
    i->code = arena_strdup(is->arena, code);
    i->message = arena_strdup(is->arena, message);
}

void schema_issue_add(struct schema_issues *is, const char *path, const char *code,
                      const char *message)
{
    if (is->n < SCHEMA_MAX_ISSUES) {
        issues_push(is, path, code, message);
        return;
    }
    if (is->dropped++ == 0)
        issues_push(is, "", "custom",
                    "Too many issues: only the first " STR(SCHEMA_MAX_ISSUES) " are listed");
}

/* ---- helpers shared by validation and JSON Schema output --------------------------------- */

/* A number as JavaScript prints it for the usual cases: 1 not 1.0, 0.5, shortest round trip. */
static void fmt_num(char *out, size_t n, double v)
{
    if (v == 0)
        v = 0; /* -0 prints as 0 */
    if (v == floor(v) && fabs(v) < 1e15) {
        snprintf(out, n, "%.0f", v);
        return;
    }
    snprintf(out, n, "%.15g", v);
    if (strtod(out, NULL) != v)
        snprintf(out, n, "%.17g", v);
}

/* An integral double that fits int64 as a JSON integer, anything else as a real. */
static json_t *num_json(double v)
{
    if (v == floor(v) && v >= INT64_LOW && v < INT64_END)
        return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *parse_json_text(const char *text)
{
    return json_loads(text, JSON_DECODE_ANY, NULL);
}

static bool enum_has(const struct schema *s, const char *v, size_t n)
{
    for (const char *const *e = s->enum_values; *e; e++)
        if (strlen(*e) == n && memcmp(*e, v, n) == 0)
            return true;
    return false;
}

/* "'a' | 'b'" as Zod writes the options of an enum; caller frees. */
static char *enum_list(const struct schema *s)
{
    struct buf b;
    buf_init(&b, SIZE_MAX / 2);
    for (const char *const *e = s->enum_values; *e; e++)
        buf_printf(&b, "%s'%s'", e == s->enum_values ? "" : " | ", *e);
    return buf_detach(&b, NULL);
}

/* ---- validation state -------------------------------------------------------------------- */

struct vctx {
    struct schema_issues *issues;
    struct buf path; /* "items.0.name" while visiting that value */
};

/* Issues recorded so far, counting the ones past the cap: a change means "this value failed". */
static size_t issue_count(const struct vctx *vc)
{
    return vc->issues->n + vc->issues->dropped;
}

static void issue(struct vctx *vc, const char *code, const char *fmt, ...) ZY_PRINTF(3, 4);
static void issue(struct vctx *vc, const char *code, const char *fmt, ...)
{
    char *msg;
    va_list ap;
    va_start(ap, fmt);
    int rc = vasprintf(&msg, fmt, ap);
    va_end(ap);
    if (rc < 0)
        zy_oom(0);
    schema_issue_add(vc->issues, buf_cstr(&vc->path), code, msg);
    free(msg);
}

/* Path segments: push returns a mark that path_pop() goes back to. */
static size_t path_push_key(struct vctx *vc, const char *key)
{
    size_t mark = vc->path.len;
    if (mark)
        buf_putc(&vc->path, '.');
    buf_puts(&vc->path, key);
    return mark;
}

static size_t path_push_index(struct vctx *vc, size_t i)
{
    size_t mark = vc->path.len;
    buf_printf(&vc->path, mark ? ".%zu" : "%zu", i);
    return mark;
}

static void path_pop(struct vctx *vc, size_t mark)
{
    vc->path.len = mark;
    if (vc->path.data)
        vc->path.data[mark] = '\0';
}

/* Zod's names for the type of a received value. */
static const char *received_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

/* Zod's names for the expected type; integers are numbers with an .int() check. */
static const char *expected_name(enum schema_type t)
{
    switch (t) {
    case SCHEMA_STRING:
        return "string";
    case SCHEMA_INTEGER:
    case SCHEMA_NUMBER:
        return "number";
    case SCHEMA_BOOLEAN:
        return "boolean";
    case SCHEMA_OBJECT:
        return "object";
    case SCHEMA_ARRAY:
        return "array";
    case SCHEMA_ANY:
        break;
    }
    return "any";
}

static void type_issue(struct vctx *vc, const struct schema *s, const char *received)
{
    if (s->type == SCHEMA_STRING && s->enum_values) {
        char *opts = enum_list(s); /* z.enum says which values it wanted */
        issue(vc, "invalid_type", "Expected %s, received %s", opts, received);
        free(opts);
        return;
    }
    issue(vc, "invalid_type", "Expected %s, received %s", expected_name(s->type), received);
}

/* ---- string formats ---------------------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_hex(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* Zod 3's email pattern, written out:
 * ^(?!\.)(?!.*\.\.)([A-Z0-9_'+\-\.]*)[A-Z0-9_+-]@([A-Z0-9][A-Z0-9\-]*\.)+[A-Z]{2,}$  (i) */
static bool is_email(const char *s, size_t n)
{
    const char *at = memchr(s, '@', n);
    if (!at || at == s || s[0] == '.')
        return false;
    for (size_t i = 0; i + 1 < n; i++)
        if (s[i] == '.' && s[i + 1] == '.')
            return false;
    for (const char *p = s; p < at; p++)
        if (!is_alnum(*p) && !strchr("_'+-.", *p))
            return false;
    if (at[-1] == '.' || at[-1] == '\'')
        return false;
    /* Domain: one or more "label." then a top-level domain of two or more letters. */
    const char *p = at + 1, *end = s + n;
    size_t labels = 0;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        if (!dot)
            break;
        if (dot == p || !is_alnum(*p))
            return false;
        for (const char *q = p; q < dot; q++)
            if (!is_alnum(*q) && *q != '-')
                return false;
        labels++;
        p = dot + 1;
    }
    if (labels == 0 || end - p < 2)
        return false;
    for (; p < end; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z')))
            return false;
    return true;
}

/* 8-4-4-4-12 hex digits, any version (as Zod 3.23). */
static bool is_uuid(const char *s, size_t n)
{
    if (n != 36)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool dash = i == 8 || i == 13 || i == 18 || i == 23;
        if (dash ? s[i] != '-' : !is_hex(s[i]))
            return false;
    }
    return true;
}

/* The host[:port] part of an http(s) URL: a name, an IPv4 address or an [IPv6] literal. */
static bool is_url_host(const char *p, const char *end)
{
    const char *port;
    if (p < end && *p == '[') {
        const char *close = memchr(p, ']', (size_t)(end - p));
        if (!close || close == p + 1)
            return false;
        for (const char *q = p + 1; q < close; q++)
            if (!is_hex(*q) && *q != ':' && *q != '.')
                return false;
        port = close + 1;
        if (port < end && *port != ':')
            return false;
    } else {
        port = memchr(p, ':', (size_t)(end - p));
        if (!port)
            port = end;
        if (port == p)
            return false;
        for (const char *q = p; q < port; q++)
            if (!is_alnum(*q) && !strchr("-._~%", *q) && (unsigned char)*q < 0x80)
                return false;
    }
    if (port < end) {
        /* ":" with no digits is allowed (WHATWG URL); otherwise 0..65535 */
        long v = 0;
        for (const char *q = port + 1; q < end; q++) {
            if (!is_digit(*q) || q - port > 5)
                return false;
            v = v * 10 + (*q - '0');
        }
        if (v > 65535)
            return false;
    }
    return true;
}

/* Absolute http or https URL with a host; no spaces or control characters anywhere. */
static bool is_url(const char *s, size_t n)
{
    size_t scheme;
    if (n > 7 && strncasecmp(s, "http://", 7) == 0)
        scheme = 7;
    else if (n > 8 && strncasecmp(s, "https://", 8) == 0)
        scheme = 8;
    else
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return false;
    const char *auth = s + scheme, *end = s + n;
    const char *auth_end = auth + strcspn(auth, "/?#");
    if (auth_end > end)
        auth_end = end;
    /* userinfo@ is skipped: the host is what follows the last '@' */
    for (const char *q = auth; q < auth_end; q++)
        if (*q == '@')
            auth = q + 1;
    return is_url_host(auth, auth_end);
}

/* n ASCII digits at s as a number, or -1. */
static int digits(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit(s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static int days_in_month(int y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

/* RFC 3339 date-time: YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM), fields in range. */
static bool is_datetime(const char *s, size_t n)
{
    if (n < 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return false;
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2);
    int h = digits(s + 11, 2), mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h < 0 || h > 23 ||
        mi < 0 || mi > 59 || se < 0 || se > 59)
        return false;
    size_t i = 19;
    if (s[i] == '.') {
        size_t start = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        if (i == start)
            return false;
    }
    if (i + 1 == n && s[i] == 'Z')
        return true;
    if (i + 6 != n || (s[i] != '+' && s[i] != '-') || s[i + 3] != ':')
        return false;
    int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
    return oh >= 0 && oh <= 23 && om >= 0 && om <= 59;
}

static const struct {
    bool (*check)(const char *s, size_t n);
    const char *message;   /* Zod's */
    const char *json_name; /* JSON Schema "format" */
} formats[] = {
    [SCHEMA_FMT_EMAIL] = {is_email, "Invalid email", "email"},
    [SCHEMA_FMT_UUID] = {is_uuid, "Invalid uuid", "uuid"},
    [SCHEMA_FMT_URL] = {is_url, "Invalid url", "uri"},
    [SCHEMA_FMT_DATETIME] = {is_datetime, "Invalid datetime", "date-time"},
};

static bool format_known(enum schema_format f)
{
    return f != SCHEMA_FMT_NONE && (size_t)f < ARRAY_LEN(formats);
}

/* ---- validation -------------------------------------------------------------------------- */

static json_t *validate(const struct schema *s, json_t *in, struct vctx *vc, int depth);

/* An absent value: the schema's default (validated like any input, as Zod does) or NULL. */
static json_t *validate_absent(const struct schema *s, struct vctx *vc, int depth)
{
    if (!s->default_json)
        return NULL;
    json_t *def = parse_json_text(s->default_json);
    if (!def) {
        issue(vc, "custom", "Invalid default value in schema");
        return NULL;
    }
    json_t *out = validate(s, def, vc, depth);
    json_decref(def);
    return out;
}

/* z.coerce for numbers, strictly: decimal text only. New reference, or NULL after an issue. */
static json_t *coerce_number(const char *text, struct vctx *vc)
{
    bool digit = false, ok = *text != '\0';
    for (const char *p = text; *p && ok; p++) {
        digit |= is_digit(*p);
        ok = is_digit(*p) || strchr("+-.eE", *p);
    }
    char *end = NULL;
    double v = ok && digit ? strtod(text, &end) : NAN;
    if (!end || *end != '\0') {
        issue(vc, "invalid_type", "Expected number, received nan");
        return NULL;
    }
    if (!isfinite(v)) {
        issue(vc, "not_finite", "Number must be finite");
        return NULL;
    }
    return num_json(v);
}

/* Converts `in` for a coerce schema. New reference (maybe to `in` itself), NULL after an issue. */
static json_t *coerce(const struct schema *s, json_t *in, struct vctx *vc)
{
    switch (s->type) {
    case SCHEMA_INTEGER:
    case SCHEMA_NUMBER:
        if (json_is_string(in))
            return coerce_number(json_string_value(in), vc);
        break;
    case SCHEMA_BOOLEAN:
        if (json_is_string(in)) {
            const char *t = json_string_value(in);
            if (strcmp(t, "true") == 0 || strcmp(t, "1") == 0)
                return json_true();
            if (strcmp(t, "false") == 0 || strcmp(t, "0") == 0)
                return json_false();
            issue(vc, "invalid_type", "Expected boolean, received string");
            return NULL;
        }
        break;
    case SCHEMA_STRING:
        if (json_is_number(in)) {
            char num[64];
            fmt_num(num, sizeof(num), json_number_value(in));
            return json_string(num);
        }
        if (json_is_boolean(in))
            return json_string(json_is_true(in) ? "true" : "false");
        break;
    case SCHEMA_ARRAY:
        if (!json_is_array(in)) {
            json_t *a = json_array(); /* a query key given once */
            json_array_append(a, in);
            return a;
        }
        break;
    case SCHEMA_ANY:
    case SCHEMA_OBJECT:
        break;
    }
    return json_incref(in);
}

/* Length (strings, arrays) against the bounds, in Zod's words. `what`: "String" / "Array". */
static void check_count(const struct schema *s, size_t count, const char *what, const char *unit,
                        struct vctx *vc)
{
    char num[64];
    if (s->has_min && (double)count < s->min) {
        fmt_num(num, sizeof(num), s->min);
        issue(vc, "too_small", "%s must contain at least %s %s(s)", what, num, unit);
    }
    if (s->has_max && (double)count > s->max) {
        fmt_num(num, sizeof(num), s->max);
        issue(vc, "too_big", "%s must contain at most %s %s(s)", what, num, unit);
    }
}

static void check_string(const struct schema *s, const json_t *in, struct vctx *vc)
{
    const char *str = json_string_value(in);
    size_t len = json_string_length(in);
    if (s->enum_values && !enum_has(s, str, len)) {
        char *opts = enum_list(s);
        issue(vc, "invalid_enum_value", "Invalid enum value. Expected %s, received '%s'", opts,
              str);
        free(opts);
    }
    check_count(s, utf8_count(str, len), "String", "character", vc);
    /* An embedded NUL never belongs to a formatted value (and would end the C string). */
    if (format_known(s->format) && (strlen(str) != len || !formats[s->format].check(str, len)))
        issue(vc, "invalid_string", "%s", formats[s->format].message);
}

/* Integer and number checks; *out gets the integer form of an integral real. */
static void check_number(const struct schema *s, json_t *in, struct vctx *vc, json_t **out)
{
    double v = json_number_value(in);
    char num[64];
    if (!isfinite(v)) {
        issue(vc, "not_finite", "Number must be finite");
        return;
    }
    if (s->type == SCHEMA_INTEGER && json_is_real(in)) {
        if (v != floor(v))
            issue(vc, "invalid_type", "Expected integer, received float");
        else if (v < INT64_LOW)
            issue(vc, "too_small", "Number must be greater than or equal to %" PRId64, INT64_MIN);
        else if (v >= INT64_END)
            issue(vc, "too_big", "Number must be less than or equal to %" PRId64, INT64_MAX);
        else
            *out = json_integer((json_int_t)v);
    }
    if (s->has_min && v < s->min) {
        fmt_num(num, sizeof(num), s->min);
        issue(vc, "too_small", "Number must be greater than or equal to %s", num);
    }
    if (s->has_max && v > s->max) {
        fmt_num(num, sizeof(num), s->max);
        issue(vc, "too_big", "Number must be less than or equal to %s", num);
    }
}

static bool has_prop(const struct schema *s, const char *name)
{
    for (const struct schema_prop *p = s->props; p && p->name; p++)
        if (strcmp(p->name, name) == 0)
            return true;
    return false;
}

/* Properties in schema order, then unknown keys (kept, or one unrecognized_keys issue). */
static json_t *check_object(const struct schema *s, json_t *in, struct vctx *vc, int depth)
{
    json_t *out = json_object();
    for (const struct schema_prop *p = s->props; p && p->name; p++) {
        size_t mark = path_push_key(vc, p->name);
        json_t *v = json_object_get(in, p->name);
        if (v || p->schema->default_json) {
            json_t *r = v ? validate(p->schema, v, vc, depth + 1)
                          : validate_absent(p->schema, vc, depth + 1);
            if (r)
                json_object_set_new(out, p->name, r);
        } else if (p->required) {
            issue(vc, "invalid_type", "Required");
        }
        path_pop(vc, mark);
    }
    struct buf unknown;
    buf_init(&unknown, SIZE_MAX / 2);
    const char *key;
    json_t *v;
    json_object_foreach (in, key, v) {
        if (has_prop(s, key))
            continue;
        if (s->allow_unknown)
            json_object_set(out, key, v);
        else
            buf_printf(&unknown, "%s'%s'", unknown.len ? ", " : "", key);
    }
    if (unknown.len)
        issue(vc, "unrecognized_keys", "Unrecognized key(s) in object: %s", buf_cstr(&unknown));
    buf_free(&unknown);
    return out;
}

static json_t *check_array(const struct schema *s, json_t *in, struct vctx *vc, int depth)
{
    check_count(s, json_array_size(in), "Array", "element", vc);
    json_t *out = json_array();
    size_t i;
    json_t *el;
    json_array_foreach (in, i, el) {
        size_t mark = path_push_index(vc, i);
        json_t *r = s->items ? validate(s->items, el, vc, depth + 1) : json_incref(el);
        if (r)
            json_array_append_new(out, r);
        path_pop(vc, mark);
    }
    return out;
}

static bool type_matches(enum schema_type t, const json_t *v)
{
    switch (t) {
    case SCHEMA_ANY:
        return true;
    case SCHEMA_STRING:
        return json_is_string(v);
    case SCHEMA_INTEGER:
    case SCHEMA_NUMBER:
        return json_is_number(v);
    case SCHEMA_BOOLEAN:
        return json_is_boolean(v);
    case SCHEMA_OBJECT:
        return json_is_object(v);
    case SCHEMA_ARRAY:
        return json_is_array(v);
    }
    return false;
}

/* `in` is present (borrowed). New reference to the output, or NULL when an issue was added. */
static json_t *validate(const struct schema *s, json_t *in, struct vctx *vc, int depth)
{
    if (json_is_null(in) && (s->nullable || s->type == SCHEMA_ANY))
        return json_null();
    json_t *val = s->coerce && !json_is_null(in) ? coerce(s, in, vc) : json_incref(in);
    if (!val)
        return NULL;
    if (!type_matches(s->type, val)) {
        type_issue(vc, s, received_name(val));
        json_decref(val);
        return NULL;
    }
    if ((s->type == SCHEMA_OBJECT || s->type == SCHEMA_ARRAY) && depth >= SCHEMA_MAX_DEPTH) {
        issue(vc, "custom", "Value is nested more than " STR(SCHEMA_MAX_DEPTH) " levels deep");
        json_decref(val);
        return NULL;
    }
    size_t before = issue_count(vc);
    json_t *out = NULL;
    switch (s->type) {
    case SCHEMA_STRING:
        check_string(s, val, vc);
        break;
    case SCHEMA_INTEGER:
    case SCHEMA_NUMBER:
        check_number(s, val, vc, &out);
        break;
    case SCHEMA_OBJECT:
        out = check_object(s, val, vc, depth);
        break;
    case SCHEMA_ARRAY:
        out = check_array(s, val, vc, depth);
        break;
    case SCHEMA_BOOLEAN:
    case SCHEMA_ANY:
        break;
    }
    if (!out)
        out = json_incref(val);
    json_decref(val);
    if (issue_count(vc) != before) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *schema_validate(const struct schema *s, json_t *in, struct schema_issues *issues)
{
    struct vctx vc = {.issues = issues};
    buf_init(&vc.path, SCHEMA_PATH_MAX);
    size_t before = issue_count(&vc);
    json_t *out = in ? validate(s, in, &vc, 0) : validate_absent(s, &vc, 0);
    buf_free(&vc.path);
    if (issue_count(&vc) != before) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* ---- JSON Schema ------------------------------------------------------------------------- */

/* The schemas being expanded inline, outermost first: an unnamed schema that contains itself
 * cannot be written inline, so its inner occurrence becomes {} (any value). */
struct jctx {
    bool refs;
    size_t depth;
    const struct schema *stack[SCHEMA_MAX_DEPTH];
};

static json_t *to_json(const struct schema *s, struct jctx *jc);

static const char *json_type_name(enum schema_type t)
{
    switch (t) {
    case SCHEMA_STRING:
        return "string";
    case SCHEMA_INTEGER:
        return "integer";
    case SCHEMA_NUMBER:
        return "number";
    case SCHEMA_BOOLEAN:
        return "boolean";
    case SCHEMA_OBJECT:
        return "object";
    case SCHEMA_ARRAY:
        return "array";
    case SCHEMA_ANY:
        break;
    }
    return NULL;
}

static void set_bounds(json_t *o, const struct schema *s, const char *min_key, const char *max_key)
{
    if (s->has_min)
        json_object_set_new(o, min_key, num_json(s->min));
    if (s->has_max)
        json_object_set_new(o, max_key, num_json(s->max));
}

static void set_parsed(json_t *o, const char *key, const char *text, bool wrap)
{
    json_t *v = text ? parse_json_text(text) : NULL;
    if (!v)
        return; /* absent, or a broken literal in a table: the unit tests catch those */
    if (wrap) {
        json_t *a = json_array();
        json_array_append_new(a, v);
        v = a;
    }
    json_object_set_new(o, key, v);
}

static void set_object_parts(json_t *o, const struct schema *s, struct jctx *jc)
{
    json_t *props = json_object(), *required = json_array();
    for (const struct schema_prop *p = s->props; p && p->name; p++) {
        json_object_set_new(props, p->name, to_json(p->schema, jc));
        /* a property with a default may be left out by the client */
        if (p->required && !p->schema->default_json)
            json_array_append_new(required, json_string(p->name));
    }
    json_object_set_new(o, "properties", props);
    if (json_array_size(required))
        json_object_set_new(o, "required", required);
    else
        json_decref(required);
    if (!s->allow_unknown)
        json_object_set_new(o, "additionalProperties", json_false());
}

/* The schema itself, written out (its own ref is not used; sub-schemas may be $refs). */
static json_t *inline_json(const struct schema *s, struct jctx *jc)
{
    json_t *o = json_object();
    const char *type = json_type_name(s->type);
    if (type && s->nullable)
        json_object_set_new(o, "type", json_pack("[ss]", type, "null"));
    else if (type)
        json_object_set_new(o, "type", json_string(type));
    if (format_known(s->format))
        json_object_set_new(o, "format", json_string(formats[s->format].json_name));
    if (s->description)
        json_object_set_new(o, "description", json_string(s->description));
    if (s->enum_values) {
        json_t *e = json_array();
        for (const char *const *v = s->enum_values; *v; v++)
            json_array_append_new(e, json_string(*v));
        if (s->nullable)
            json_array_append_new(e, json_null()); /* else enum would forbid the null */
        json_object_set_new(o, "enum", e);
    }
    switch (s->type) {
    case SCHEMA_STRING:
        set_bounds(o, s, "minLength", "maxLength");
        break;
    case SCHEMA_INTEGER:
    case SCHEMA_NUMBER:
        set_bounds(o, s, "minimum", "maximum");
        break;
    case SCHEMA_ARRAY:
        set_bounds(o, s, "minItems", "maxItems");
        if (s->items)
            json_object_set_new(o, "items", to_json(s->items, jc));
        break;
    case SCHEMA_OBJECT:
        set_object_parts(o, s, jc);
        break;
    case SCHEMA_BOOLEAN:
    case SCHEMA_ANY:
        break;
    }
    set_parsed(o, "default", s->default_json, false);
    set_parsed(o, "examples", s->example, true);
    return o;
}

/* inline_json with the cycle and depth guard. */
static json_t *expand(const struct schema *s, struct jctx *jc)
{
    for (size_t i = 0; i < jc->depth; i++)
        if (jc->stack[i] == s)
            return json_object();
    if (jc->depth == ARRAY_LEN(jc->stack))
        return json_object();
    jc->stack[jc->depth++] = s;
    json_t *o = inline_json(s, jc);
    jc->depth--;
    return o;
}

static json_t *ref_json(const char *name)
{
    json_t *o = json_object();
    json_object_set_new(o, "$ref", json_sprintf("#/components/schemas/%s", name));
    return o;
}

static json_t *to_json(const struct schema *s, struct jctx *jc)
{
    if (jc->refs && s->ref)
        return ref_json(s->ref);
    return expand(s, jc);
}

json_t *schema_to_json(const struct schema *s, bool refs)
{
    struct jctx jc = {.refs = refs};
    return to_json(s, &jc);
}

/* Schemas already walked, so shared and self-referencing sub-schemas are visited once. */
struct seen {
    const struct schema **v;
    size_t n, cap;
};

static bool seen_add(struct seen *sn, const struct schema *s)
{
    for (size_t i = 0; i < sn->n; i++)
        if (sn->v[i] == s)
            return false;
    if (sn->n == sn->cap) {
        sn->cap = sn->cap ? sn->cap * 2 : 16;
        sn->v = xrealloc(sn->v, sn->cap * sizeof(*sn->v));
    }
    sn->v[sn->n++] = s;
    return true;
}

static void collect(const struct schema *s, json_t *components, struct seen *sn)
{
    if (!s || !seen_add(sn, s))
        return;
    if (s->ref && !json_object_get(components, s->ref)) {
        struct jctx jc = {.refs = true};
        json_object_set_new(components, s->ref, expand(s, &jc));
    }
    for (const struct schema_prop *p = s->props; p && p->name; p++)
        collect(p->schema, components, sn);
    collect(s->items, components, sn);
}

void schema_collect_components(const struct schema *s, json_t *components)
{
    struct seen sn = {0};
    collect(s, components, &sn);
    free(sn.v);
}
