/*
 * test_schema.c — schema_validate() against Zod's codes, messages and paths, and the JSON
 * Schema written by schema_to_json() / schema_collect_components().
 */
#include "lib/common.h"

#include <criterion/criterion.h>

#include "lib/arena.h"
#include "lib/schema.h"

static struct arena *arena;

static void setup(void)
{
    arena = arena_new();
}

static void teardown(void)
{
    arena_free(arena);
}

TestSuite(schema, .init = setup, .fini = teardown);

/* ---- helpers ----------------------------------------------------------------------------- */

static char *dump(const json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : xstrdup("(null)");
}

/* Validates the JSON text `in` (NULL: absent); the issues land in *is. */
static json_t *run(const struct schema *s, const char *in, struct schema_issues *is)
{
    schema_issues_init(is, arena);
    json_t *v = NULL;
    if (in) {
        v = json_loads(in, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        cr_assert_not_null(v, "bad test JSON: %s", in);
    }
    json_t *out = schema_validate(s, v, is);
    json_decref(v);
    return out;
}

static void assert_issue(const struct schema_issues *is, size_t i, const char *path,
                         const char *code, const char *message)
{
    cr_assert_lt(i, is->n, "only %zu issues", is->n);
    cr_expect_str_eq(is->v[i].path, path, "issue %zu path", i);
    cr_expect_str_eq(is->v[i].code, code, "issue %zu code (%s)", i, is->v[i].message);
    cr_expect_str_eq(is->v[i].message, message, "issue %zu message", i);
}

/* `in` fails with exactly this one issue. */
static void expect_issue(const struct schema *s, const char *in, const char *path, const char *code,
                         const char *message)
{
    struct schema_issues is;
    json_t *out = run(s, in, &is);
    char *got = dump(out);
    json_decref(out);
    cr_expect_str_eq(got, "(null)", "%s: expected failure, got %s", in, got);
    free(got);
    cr_assert_eq(is.n, 1, "%s: %zu issues (first: %s)", in, is.n, is.n ? is.v[0].message : "-");
    assert_issue(&is, 0, path, code, message);
}

/* `in` passes and the output is `want` (compared as JSON; integer 1 differs from 1.0). */
static void expect_ok(const struct schema *s, const char *in, const char *want)
{
    struct schema_issues is;
    json_t *out = run(s, in, &is);
    cr_assert_eq(is.n, 0, "%s: unexpected issue %s: %s (%s)", in ? in : "(absent)",
                 is.n ? is.v[0].path : "", is.n ? is.v[0].message : "", is.n ? is.v[0].code : "");
    json_t *w = json_loads(want, JSON_DECODE_ANY, NULL);
    cr_assert_not_null(w, "bad expected JSON %s", want);
    char *got = dump(out);
    bool eq = out && json_equal(out, w);
    json_decref(w);
    json_decref(out);
    cr_expect(eq, "%s: got %s, want %s", in ? in : "(absent)", got, want);
    free(got);
}

/* schema_to_json(s, refs) equals `want`. */
static void expect_json_schema(const struct schema *s, bool refs, const char *want)
{
    json_t *got = schema_to_json(s, refs);
    json_t *w = json_loads(want, 0, NULL);
    cr_assert_not_null(w, "bad expected JSON %s", want);
    char *g = dump(got);
    bool eq = json_equal(got, w);
    json_decref(w);
    json_decref(got);
    cr_expect(eq, "got %s\nwant %s", g, want);
    free(g);
}

/* ---- schemas used below ------------------------------------------------------------------ */

static const struct schema str_s = {.type = SCHEMA_STRING};
static const struct schema int_s = {.type = SCHEMA_INTEGER};
static const struct schema num_s = {.type = SCHEMA_NUMBER};
static const struct schema bool_s = {.type = SCHEMA_BOOLEAN};
static const struct schema any_s = {.type = SCHEMA_ANY};
static const struct schema obj_s = {.type = SCHEMA_OBJECT};
static const struct schema arr_s = {.type = SCHEMA_ARRAY};

static const char *const abc[] = {"a", "b", "c", NULL};
static const char *const ab[] = {"a", "b", NULL};

/* ---- types ------------------------------------------------------------------------------- */

Test(schema, wrong_types)
{
    static const struct {
        const struct schema *s;
        const char *in, *message;
    } cases[] = {
        {&str_s, "1", "Expected string, received number"},
        {&str_s, "true", "Expected string, received boolean"},
        {&str_s, "{}", "Expected string, received object"},
        {&str_s, "[]", "Expected string, received array"},
        {&str_s, "null", "Expected string, received null"},
        {&num_s, "\"1\"", "Expected number, received string"},
        {&num_s, "null", "Expected number, received null"},
        /* z.number().int(): the type check speaks of numbers */
        {&int_s, "false", "Expected number, received boolean"},
        {&int_s, "\"3\"", "Expected number, received string"},
        {&bool_s, "0", "Expected boolean, received number"},
        {&bool_s, "\"true\"", "Expected boolean, received string"},
        {&obj_s, "[]", "Expected object, received array"},
        {&obj_s, "null", "Expected object, received null"},
        {&arr_s, "{}", "Expected array, received object"},
        {&arr_s, "\"x\"", "Expected array, received string"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        expect_issue(cases[i].s, cases[i].in, "", "invalid_type", cases[i].message);
}

Test(schema, right_types)
{
    expect_ok(&str_s, "\"x\"", "\"x\"");
    expect_ok(&int_s, "-7", "-7");
    expect_ok(&num_s, "2.5", "2.5");
    expect_ok(&num_s, "3", "3");
    expect_ok(&bool_s, "false", "false");
    expect_ok(&obj_s, "{}", "{}");
    expect_ok(&arr_s, "[1,\"a\",null]", "[1,\"a\",null]");
}

Test(schema, any_takes_everything)
{
    const char *values[] = {"null", "1", "\"s\"", "[1,[2]]", "{\"a\":{\"b\":null}}", "true"};
    for (size_t i = 0; i < ARRAY_LEN(values); i++)
        expect_ok(&any_s, values[i], values[i]);
}

Test(schema, nullable)
{
    static const struct schema ns = {.type = SCHEMA_STRING, .nullable = true};
    static const struct schema nobj = {.type = SCHEMA_OBJECT, .nullable = true};
    expect_ok(&ns, "null", "null");
    expect_ok(&ns, "\"x\"", "\"x\"");
    expect_issue(&ns, "3", "", "invalid_type", "Expected string, received number");
    expect_ok(&nobj, "null", "null");
}

/* ---- objects: required, unknown keys, paths ---------------------------------------------- */

static const struct schema person_s = {
    .type = SCHEMA_OBJECT,
    .props =
        (const struct schema_prop[]){
            {"name", &str_s, true},
            {"age", &int_s, false},
            {NULL},
        },
};

Test(schema, required_and_optional)
{
    expect_issue(&person_s, "{}", "name", "invalid_type", "Required");
    expect_issue(&person_s, "{\"age\":3}", "name", "invalid_type", "Required");
    expect_ok(&person_s, "{\"name\":\"Ada\"}", "{\"name\":\"Ada\"}");
    /* present-but-null is not absent */
    expect_issue(&person_s, "{\"name\":\"Ada\",\"age\":null}", "age", "invalid_type",
                 "Expected number, received null");
}

Test(schema, absent_root)
{
    struct schema_issues is;
    json_t *out = run(&person_s, NULL, &is);
    cr_assert_null(out);
    cr_assert_eq(is.n, 0, "absent optional value: no issue");
}

Test(schema, output_in_schema_order)
{
    expect_ok(&person_s, "{\"age\":3,\"name\":\"Ada\"}", "{\"name\":\"Ada\",\"age\":3}");
    struct schema_issues is;
    json_t *out = run(&person_s, "{\"age\":3,\"name\":\"Ada\"}", &is);
    char *s = dump(out);
    cr_expect_str_eq(s, "{\"name\":\"Ada\",\"age\":3}");
    free(s);
    json_decref(out);
}

static const struct schema outer_s = {
    .type = SCHEMA_OBJECT,
    .props = (const struct schema_prop[]){{"person", &person_s, true}, {NULL}},
};

Test(schema, unrecognized_keys)
{
    expect_issue(&person_s, "{\"name\":\"x\",\"a\":1,\"b\":2}", "", "unrecognized_keys",
                 "Unrecognized key(s) in object: 'a', 'b'");
    expect_issue(&outer_s, "{\"person\":{\"name\":\"x\",\"zip\":1}}", "person", "unrecognized_keys",
                 "Unrecognized key(s) in object: 'zip'");
}

static const struct schema loose_s = {
    .type = SCHEMA_OBJECT,
    .allow_unknown = true,
    .props = (const struct schema_prop[]){{"name", &str_s, true}, {NULL}},
};

Test(schema, allow_unknown_keeps_keys)
{
    expect_ok(&loose_s, "{\"extra\":[1],\"name\":\"x\"}", "{\"name\":\"x\",\"extra\":[1]}");
    expect_issue(&loose_s, "{\"extra\":1}", "name", "invalid_type", "Required");
}

static const struct schema item_s = {
    .type = SCHEMA_OBJECT,
    .props =
        (const struct schema_prop[]){
            {"name", &(const struct schema){.type = SCHEMA_STRING, .has_min = true, .min = 1},
             true},
            {"qty", &(const struct schema){.type = SCHEMA_INTEGER, .has_min = true, .min = 1},
             true},
            {NULL},
        },
};

static const struct schema order_s = {
    .type = SCHEMA_OBJECT,
    .props =
        (const struct schema_prop[]){
            {"customer",
             &(const struct schema){
                 .type = SCHEMA_OBJECT,
                 .props =
                     (const struct schema_prop[]){
                         {"email",
                          &(const struct schema){.type = SCHEMA_STRING, .format = SCHEMA_FMT_EMAIL},
                          true},
                         {NULL},
                     },
             },
             true},
            {"items", &(const struct schema){.type = SCHEMA_ARRAY, .items = &item_s}, true},
            {NULL},
        },
};

Test(schema, nested_paths)
{
    expect_issue(&order_s,
                 "{\"customer\":{\"email\":\"a@b.co\"},\"items\":[{\"name\":\"x\","
                 "\"qty\":1},{\"name\":3,\"qty\":1}]}",
                 "items.1.name", "invalid_type", "Expected string, received number");
    expect_issue(&order_s, "{\"customer\":{},\"items\":[]}", "customer.email", "invalid_type",
                 "Required");
}

Test(schema, every_issue_collected)
{
    struct schema_issues is;
    json_t *out = run(&order_s,
                      "{\"customer\":{\"email\":\"nope\"},\"items\":[{\"name\":\"\",\"qty\":0},"
                      "{\"qty\":1.5},\"x\"],\"extra\":true}",
                      &is);
    cr_assert_null(out);
    cr_assert_eq(is.n, 7, "got %zu issues", is.n);
    assert_issue(&is, 0, "customer.email", "invalid_string", "Invalid email");
    assert_issue(&is, 1, "items.0.name", "too_small",
                 "String must contain at least 1 character(s)");
    assert_issue(&is, 2, "items.0.qty", "too_small", "Number must be greater than or equal to 1");
    assert_issue(&is, 3, "items.1.name", "invalid_type", "Required");
    assert_issue(&is, 4, "items.1.qty", "invalid_type", "Expected integer, received float");
    assert_issue(&is, 5, "items.2", "invalid_type", "Expected object, received string");
    assert_issue(&is, 6, "", "unrecognized_keys", "Unrecognized key(s) in object: 'extra'");
}

Test(schema, several_checks_on_one_value)
{
    /* Zod runs every check of a string: too short and not an email at once */
    static const struct schema s = {
        .type = SCHEMA_STRING, .format = SCHEMA_FMT_EMAIL, .has_min = true, .min = 5};
    struct schema_issues is;
    json_t *out = run(&s, "\"ab\"", &is);
    cr_assert_null(out);
    cr_assert_eq(is.n, 2);
    assert_issue(&is, 0, "", "too_small", "String must contain at least 5 character(s)");
    assert_issue(&is, 1, "", "invalid_string", "Invalid email");
}

/* ---- strings ----------------------------------------------------------------------------- */

Test(schema, string_length_counts_code_points)
{
    static const struct schema s = {
        .type = SCHEMA_STRING, .has_min = true, .min = 3, .has_max = true, .max = 5};
    expect_ok(&s, "\"abc\"", "\"abc\"");
    expect_ok(&s, "\"h\\u00e9llo\"", "\"h\\u00e9llo\""); /* 5 code points, 6 bytes */
    expect_ok(&s, "\"\\u65e5\\u672c\\u8a9e\"", "\"\\u65e5\\u672c\\u8a9e\""); /* 3 x 3 bytes */
    expect_ok(&s, "\"\\ud83d\\ude00ab\"", "\"\\ud83d\\ude00ab\"");           /* emoji: 1 */
    expect_issue(&s, "\"ab\"", "", "too_small", "String must contain at least 3 character(s)");
    expect_issue(&s, "\"\\u65e5\\u672c\"", "", "too_small",
                 "String must contain at least 3 character(s)"); /* 6 bytes, 2 characters */
    expect_issue(&s, "\"abcdef\"", "", "too_big", "String must contain at most 5 character(s)");
    expect_issue(&s, "\"\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\\u00e9\"", "", "too_big",
                 "String must contain at most 5 character(s)");
}

static void check_format(enum schema_format f, const char *message, const char *const *good,
                         size_t ngood, const char *const *bad, size_t nbad)
{
    const struct schema s = {.type = SCHEMA_STRING, .format = f};
    char json[512];
    for (size_t i = 0; i < ngood; i++) {
        snprintf(json, sizeof(json), "\"%s\"", good[i]);
        expect_ok(&s, json, json);
    }
    for (size_t i = 0; i < nbad; i++) {
        snprintf(json, sizeof(json), "\"%s\"", bad[i]);
        expect_issue(&s, json, "", "invalid_string", message);
    }
}

Test(schema, format_email)
{
    const char *good[] = {"ada@zygo.tech", "first.last+tag@mail.example.co.uk", "o'neil@x.io",
                          "a_b-c@sub-domain.example.com", "UPPER@EXAMPLE.COM"};
    const char *bad[] = {"",
                         "plain",
                         "@zygo.tech",
                         "ada@",
                         "ada@zygo",
                         "ada@zygo.t",
                         ".ada@zygo.tech",
                         "ad..a@zygo.tech",
                         "ada.@zygo.tech",
                         "ada@zygo..tech",
                         "ada@-zygo.tech",
                         "ada@zygo.t3ch",
                         "a da@zygo.tech",
                         "ada@zygo.tech.",
                         "a@b@zygo.tech",
                         "ada@zygo.tech\\u0000"};
    check_format(SCHEMA_FMT_EMAIL, "Invalid email", good, ARRAY_LEN(good), bad, ARRAY_LEN(bad));
}

Test(schema, format_uuid)
{
    const char *good[] = {"123e4567-e89b-12d3-a456-426614174000",
                          "00000000-0000-0000-0000-000000000000",
                          "A987FBC9-4BED-3078-CF07-9141BA07C9F3"};
    const char *bad[] = {"",
                         "123e4567e89b12d3a456426614174000",
                         "123e4567-e89b-12d3-a456-42661417400",
                         "123e4567-e89b-12d3-a456-4266141740000",
                         "g23e4567-e89b-12d3-a456-426614174000",
                         "123e4567-e89b-12d3-a456_426614174000"};
    check_format(SCHEMA_FMT_UUID, "Invalid uuid", good, ARRAY_LEN(good), bad, ARRAY_LEN(bad));
}

Test(schema, format_url)
{
    const char *good[] = {"https://zygo.tech",
                          "http://localhost:3000/api/v1?x=1#top",
                          "https://user:pw@api.zygo.tech/path",
                          "http://127.0.0.1/",
                          "https://[::1]:8443/x",
                          "HTTPS://ZYGO.TECH"};
    const char *bad[] = {"",
                         "zygo.tech",
                         "ftp://zygo.tech",
                         "mailto:a@b.co",
                         "https://",
                         "https:///path",
                         "http://:80/",
                         "https://zygo.tech:99999",
                         "https://zygo.tech:8a",
                         "https://zy go.tech",
                         "javascript:alert(1)",
                         "https://[]/",
                         "//zygo.tech"};
    check_format(SCHEMA_FMT_URL, "Invalid url", good, ARRAY_LEN(good), bad, ARRAY_LEN(bad));
}

Test(schema, format_datetime)
{
    const char *good[] = {"2026-01-26T10:00:00Z", "2026-01-26T10:00:00.123Z",
                          "2024-02-29T23:59:59.999999Z", "2026-01-26T10:00:00+02:00",
                          "2026-12-31T00:00:00-11:30"};
    const char *bad[] = {"",
                         "2026-01-26",
                         "2026-01-26T10:00Z",
                         "2026-01-26 10:00:00Z",
                         "2026-01-26T10:00:00",
                         "2026-13-01T00:00:00Z",
                         "2026-00-01T00:00:00Z",
                         "2026-02-29T00:00:00Z",
                         "2026-04-31T00:00:00Z",
                         "2026-01-00T00:00:00Z",
                         "2026-01-26T24:00:00Z",
                         "2026-01-26T10:60:00Z",
                         "2026-01-26T10:00:60Z",
                         "2026-01-26T10:00:00.Z",
                         "2026-01-26T10:00:00+2:00",
                         "2026-01-26T10:00:00+24:00",
                         "2026-01-26T10:00:00+02:60",
                         "2026-01-26T10:00:00Zjunk",
                         "2026-01-26t10:00:00z",
                         "1900-02-29T00:00:00Z"};
    check_format(SCHEMA_FMT_DATETIME, "Invalid datetime", good, ARRAY_LEN(good), bad,
                 ARRAY_LEN(bad));
}

Test(schema, enum_values)
{
    static const struct schema e = {.type = SCHEMA_STRING, .enum_values = ab};
    expect_ok(&e, "\"b\"", "\"b\"");
    expect_issue(&e, "\"c\"", "", "invalid_enum_value",
                 "Invalid enum value. Expected 'a' | 'b', received 'c'");
    expect_issue(&e, "\"a\\u0000\"", "", "invalid_enum_value",
                 "Invalid enum value. Expected 'a' | 'b', received 'a'");
    /* z.enum names its options when the type is wrong */
    expect_issue(&e, "1", "", "invalid_type", "Expected 'a' | 'b', received number");
}

/* ---- numbers ----------------------------------------------------------------------------- */

Test(schema, number_bounds)
{
    static const struct schema s = {
        .type = SCHEMA_NUMBER, .has_min = true, .min = 1, .has_max = true, .max = 100};
    expect_ok(&s, "1", "1");
    expect_ok(&s, "100", "100");
    expect_ok(&s, "50.5", "50.5");
    expect_issue(&s, "0", "", "too_small", "Number must be greater than or equal to 1");
    expect_issue(&s, "0.99", "", "too_small", "Number must be greater than or equal to 1");
    expect_issue(&s, "101", "", "too_big", "Number must be less than or equal to 100");
    expect_issue(&s, "-1e300", "", "too_small", "Number must be greater than or equal to 1");

    static const struct schema frac = {
        .type = SCHEMA_NUMBER, .has_min = true, .min = 0.5, .has_max = true, .max = 2.25};
    expect_issue(&frac, "0.25", "", "too_small", "Number must be greater than or equal to 0.5");
    expect_issue(&frac, "3", "", "too_big", "Number must be less than or equal to 2.25");
    static const struct schema neg = {.type = SCHEMA_INTEGER, .has_max = true, .max = -3};
    expect_issue(&neg, "0", "", "too_big", "Number must be less than or equal to -3");
}

Test(schema, integer_vs_float)
{
    expect_issue(&int_s, "1.5", "", "invalid_type", "Expected integer, received float");
    expect_ok(&int_s, "2.0", "2"); /* integral float: becomes a JSON integer */
    expect_ok(&int_s, "1e3", "1000");
    expect_ok(&int_s, "-0.0", "0");
    expect_issue(&int_s, "1e19", "", "too_big",
                 "Number must be less than or equal to 9223372036854775807");
    expect_issue(&int_s, "-1e19", "", "too_small",
                 "Number must be greater than or equal to -9223372036854775808");
    /* the .int() issue and the bound issue together, as Zod */
    static const struct schema s = {.type = SCHEMA_INTEGER, .has_min = true, .min = 1};
    struct schema_issues is;
    json_t *out = run(&s, "0.5", &is);
    cr_assert_null(out);
    cr_assert_eq(is.n, 2);
    assert_issue(&is, 0, "", "invalid_type", "Expected integer, received float");
    assert_issue(&is, 1, "", "too_small", "Number must be greater than or equal to 1");
}

/* ---- arrays ------------------------------------------------------------------------------ */

Test(schema, array_bounds_and_items)
{
    static const struct schema s = {.type = SCHEMA_ARRAY,
                                    .items = &str_s,
                                    .has_min = true,
                                    .min = 1,
                                    .has_max = true,
                                    .max = 3};
    expect_ok(&s, "[\"a\"]", "[\"a\"]");
    expect_issue(&s, "[]", "", "too_small", "Array must contain at least 1 element(s)");
    expect_issue(&s, "[\"a\",\"b\",\"c\",\"d\"]", "", "too_big",
                 "Array must contain at most 3 element(s)");
    expect_issue(&s, "[\"a\",2]", "1", "invalid_type", "Expected string, received number");
}

/* ---- defaults ---------------------------------------------------------------------------- */

static const struct schema page_s = {
    .type = SCHEMA_INTEGER, .has_min = true, .min = 1, .default_json = "1"};

static const struct schema opts_s = {
    .type = SCHEMA_OBJECT,
    .props =
        (const struct schema_prop[]){
            {"page", &page_s, false},
            {"sort", &(const struct schema){.type = SCHEMA_STRING, .default_json = "\"name\""},
             true}, /* a default satisfies "required" */
            {"filter",
             &(const struct schema){
                 .type = SCHEMA_OBJECT,
                 .default_json = "{}",
                 .props =
                     (const struct schema_prop[]){
                         {"tags",
                          &(const struct schema){
                              .type = SCHEMA_ARRAY, .items = &str_s, .default_json = "[]"},
                          false},
                         {NULL},
                     },
             },
             false},
            {NULL},
        },
};

Test(schema, defaults)
{
    expect_ok(&opts_s, "{}", "{\"page\":1,\"sort\":\"name\",\"filter\":{\"tags\":[]}}");
    expect_ok(&opts_s, "{\"page\":3,\"filter\":{}}",
              "{\"page\":3,\"sort\":\"name\",\"filter\":{\"tags\":[]}}");
    /* null is not absent: no default for it */
    expect_issue(&opts_s, "{\"page\":null}", "page", "invalid_type",
                 "Expected number, received null");
    /* the root's own default */
    expect_ok(&page_s, NULL, "1");
}

Test(schema, defaults_are_validated)
{
    static const struct schema bad_default = {
        .type = SCHEMA_INTEGER, .has_min = true, .min = 5, .default_json = "1"};
    expect_issue(&bad_default, NULL, "", "too_small", "Number must be greater than or equal to 5");
    static const struct schema broken = {.type = SCHEMA_STRING, .default_json = "{nope"};
    expect_issue(&broken, NULL, "", "custom", "Invalid default value in schema");
}

/* ---- coercion ---------------------------------------------------------------------------- */

static const struct schema c_int = {.type = SCHEMA_INTEGER, .coerce = true};
static const struct schema c_num = {.type = SCHEMA_NUMBER, .coerce = true};
static const struct schema c_bool = {.type = SCHEMA_BOOLEAN, .coerce = true};

Test(schema, coerce_numbers)
{
    expect_ok(&c_int, "\"12\"", "12");
    expect_ok(&c_int, "\"-3\"", "-3");
    expect_ok(&c_int, "\"1e2\"", "100");
    expect_ok(&c_int, "7", "7"); /* already a number */
    expect_ok(&c_num, "\"1.5\"", "1.5");
    expect_ok(&c_num, "\"12\"", "12");
    expect_issue(&c_int, "\"1.5\"", "", "invalid_type", "Expected integer, received float");
    const char *nan[] = {"\"abc\"",      "\"\"",   "\" 1\"", "\"0x10\"", "\"NaN\"",
                         "\"Infinity\"", "\"1e\"", "\"-\"",  "\"1,5\""};
    for (size_t i = 0; i < ARRAY_LEN(nan); i++) {
        expect_issue(&c_int, nan[i], "", "invalid_type", "Expected number, received nan");
        expect_issue(&c_num, nan[i], "", "invalid_type", "Expected number, received nan");
    }
    expect_issue(&c_num, "\"1e999\"", "", "not_finite", "Number must be finite");
    expect_issue(&c_int, "true", "", "invalid_type", "Expected number, received boolean");
}

Test(schema, coerce_bounds_apply_after_conversion)
{
    static const struct schema limit = {.type = SCHEMA_INTEGER,
                                        .coerce = true,
                                        .has_min = true,
                                        .min = 1,
                                        .has_max = true,
                                        .max = 100,
                                        .default_json = "20"};
    expect_ok(&limit, "\"100\"", "100");
    expect_ok(&limit, NULL, "20");
    expect_issue(&limit, "\"0\"", "", "too_small", "Number must be greater than or equal to 1");
    expect_issue(&limit, "\"101\"", "", "too_big", "Number must be less than or equal to 100");
}

Test(schema, coerce_booleans)
{
    expect_ok(&c_bool, "\"true\"", "true");
    expect_ok(&c_bool, "\"1\"", "true");
    expect_ok(&c_bool, "\"false\"", "false");
    expect_ok(&c_bool, "\"0\"", "false");
    expect_ok(&c_bool, "true", "true");
    const char *bad[] = {"\"yes\"", "\"TRUE\"", "\"\"", "\"2\""};
    for (size_t i = 0; i < ARRAY_LEN(bad); i++)
        expect_issue(&c_bool, bad[i], "", "invalid_type", "Expected boolean, received string");
}

Test(schema, coerce_strings_and_arrays)
{
    static const struct schema c_str = {.type = SCHEMA_STRING, .coerce = true};
    expect_ok(&c_str, "12", "\"12\"");
    expect_ok(&c_str, "0.5", "\"0.5\"");
    expect_ok(&c_str, "true", "\"true\"");
    static const struct schema tags = {.type = SCHEMA_ARRAY, .coerce = true, .items = &str_s};
    expect_ok(&tags, "\"a\"", "[\"a\"]");               /* ?tag=a */
    expect_ok(&tags, "[\"a\",\"b\"]", "[\"a\",\"b\"]"); /* ?tag=a&tag=b */
}

static const struct schema query_s = {
    .type = SCHEMA_OBJECT,
    .props =
        (const struct schema_prop[]){
            {"page",
             &(const struct schema){.type = SCHEMA_INTEGER,
                                    .coerce = true,
                                    .has_min = true,
                                    .min = 1,
                                    .default_json = "1"},
             false},
            {"active", &c_bool, false},
            {"status", &(const struct schema){.type = SCHEMA_STRING, .enum_values = abc}, false},
            {NULL},
        },
};

Test(schema, query_object)
{
    /* as the validate middleware builds it: strings, a repeated key as an array */
    expect_ok(&query_s, "{\"active\":\"1\",\"status\":\"c\"}",
              "{\"page\":1,\"active\":true,\"status\":\"c\"}");
    expect_issue(&query_s, "{\"page\":[\"1\",\"2\"]}", "page", "invalid_type",
                 "Expected number, received array");
    struct schema_issues is;
    json_t *out = run(&query_s, "{\"page\":\"x\",\"active\":\"maybe\",\"status\":\"d\"}", &is);
    cr_assert_null(out);
    cr_assert_eq(is.n, 3);
    assert_issue(&is, 0, "page", "invalid_type", "Expected number, received nan");
    assert_issue(&is, 1, "active", "invalid_type", "Expected boolean, received string");
    assert_issue(&is, 2, "status", "invalid_enum_value",
                 "Invalid enum value. Expected 'a' | 'b' | 'c', received 'd'");
}

/* ---- bounds on the work ------------------------------------------------------------------ */

static const struct schema nested_s = {.type = SCHEMA_ARRAY, .items = &nested_s};

static char *nested_arrays(int levels)
{
    char *s = xmalloc((size_t)levels * 2 + 1);
    for (int i = 0; i < levels; i++) {
        s[i] = '[';
        s[levels * 2 - 1 - i] = ']';
    }
    s[levels * 2] = '\0';
    return s;
}

Test(schema, depth_limit)
{
    char *ok = nested_arrays(SCHEMA_MAX_DEPTH), *deep = nested_arrays(SCHEMA_MAX_DEPTH + 1);
    expect_ok(&nested_s, ok, ok);
    struct schema_issues is;
    json_t *out = run(&nested_s, deep, &is);
    cr_assert_null(out);
    cr_assert_eq(is.n, 1);
    cr_expect_str_eq(is.v[0].code, "custom");
    cr_expect_str_eq(is.v[0].message, "Value is nested more than 64 levels deep");
    cr_expect_eq(strlen(is.v[0].path), 2 * SCHEMA_MAX_DEPTH - 1, "path %s", is.v[0].path);
    free(ok);
    free(deep);
    /* much deeper input stops at the same place */
    char *very = nested_arrays(1000);
    out = run(&nested_s, very, &is);
    cr_assert_null(out);
    cr_assert_eq(is.n, 1);
    free(very);
}

Test(schema, issue_count_is_capped)
{
    static const struct schema ints = {.type = SCHEMA_ARRAY, .items = &int_s};
    size_t n = SCHEMA_MAX_ISSUES + 50;
    char *in = xmalloc(n * 4 + 3);
    size_t len = 0;
    in[len++] = '[';
    for (size_t i = 0; i < n; i++)
        len += (size_t)snprintf(in + len, 5, i ? ",\"x\"" : "\"x\"");
    in[len++] = ']';
    in[len] = '\0';
    struct schema_issues is;
    json_t *out = run(&ints, in, &is);
    free(in);
    cr_assert_null(out);
    cr_assert_eq(is.n, SCHEMA_MAX_ISSUES + 1);
    cr_assert_eq(is.dropped, 50);
    assert_issue(&is, SCHEMA_MAX_ISSUES - 1, "99", "invalid_type",
                 "Expected number, received string");
    assert_issue(&is, SCHEMA_MAX_ISSUES, "", "custom",
                 "Too many issues: only the first 100 are listed");
}

Test(schema, issue_add_copies_into_arena)
{
    struct schema_issues is;
    schema_issues_init(&is, arena);
    char path[] = "a.b", msg[] = "Required";
    for (int i = 0; i < 20; i++) /* past the first growth */
        schema_issue_add(&is, path, "invalid_type", msg);
    path[0] = 'z';
    msg[0] = 'X';
    cr_assert_eq(is.n, 20);
    assert_issue(&is, 19, "a.b", "invalid_type", "Required");
    assert_issue(&is, 0, "a.b", "invalid_type", "Required");
    schema_issue_add(&is, NULL, "custom", "root");
    assert_issue(&is, 20, "", "custom", "root");
}

/* ---- JSON Schema ------------------------------------------------------------------------- */

Test(schema, to_json_scalars)
{
    static const struct schema s = {.type = SCHEMA_STRING,
                                    .format = SCHEMA_FMT_EMAIL,
                                    .description = "Login",
                                    .example = "\"ada@zygo.tech\"",
                                    .has_min = true,
                                    .min = 3,
                                    .has_max = true,
                                    .max = 254};
    expect_json_schema(&s, true,
                       "{\"type\":\"string\",\"format\":\"email\",\"description\":\"Login\","
                       "\"minLength\":3,\"maxLength\":254,\"examples\":[\"ada@zygo.tech\"]}");
    static const struct schema n = {.type = SCHEMA_NUMBER,
                                    .has_min = true,
                                    .min = 0.5,
                                    .has_max = true,
                                    .max = 10,
                                    .default_json = "1.5",
                                    .nullable = true};
    expect_json_schema(&n, true,
                       "{\"type\":[\"number\",\"null\"],\"minimum\":0.5,\"maximum\":10,"
                       "\"default\":1.5}");
    static const struct schema e = {.type = SCHEMA_STRING, .enum_values = ab, .nullable = true};
    expect_json_schema(&e, true, "{\"type\":[\"string\",\"null\"],\"enum\":[\"a\",\"b\",null]}");
    static const struct schema u = {.type = SCHEMA_STRING, .format = SCHEMA_FMT_URL};
    expect_json_schema(&u, true, "{\"type\":\"string\",\"format\":\"uri\"}");
    static const struct schema d = {.type = SCHEMA_STRING, .format = SCHEMA_FMT_DATETIME};
    expect_json_schema(&d, true, "{\"type\":\"string\",\"format\":\"date-time\"}");
    expect_json_schema(&any_s, true, "{}");
    expect_json_schema(&bool_s, true, "{\"type\":\"boolean\"}");
}

static const struct schema tag_s = {
    .type = SCHEMA_OBJECT,
    .ref = "Tag",
    .allow_unknown = true,
    .props = (const struct schema_prop[]){{"label", &str_s, true}, {NULL}},
};

static const struct schema post_s = {
    .type = SCHEMA_OBJECT,
    .ref = "Post",
    .props =
        (const struct schema_prop[]){
            {"title", &str_s, true},
            {"page", &page_s, true}, /* has a default: not in "required" */
            {"tags",
             &(const struct schema){
                 .type = SCHEMA_ARRAY, .items = &tag_s, .has_max = true, .max = 5},
             false},
            {NULL},
        },
};

Test(schema, to_json_objects_and_refs)
{
    expect_json_schema(&post_s, true, "{\"$ref\":\"#/components/schemas/Post\"}");
    expect_json_schema(&post_s, false,
                       "{\"type\":\"object\",\"properties\":{"
                       "\"title\":{\"type\":\"string\"},"
                       "\"page\":{\"type\":\"integer\",\"minimum\":1,\"default\":1},"
                       "\"tags\":{\"type\":\"array\",\"maxItems\":5,\"items\":{\"type\":"
                       "\"object\",\"properties\":{\"label\":{\"type\":\"string\"}},"
                       "\"required\":[\"label\"]}}},"
                       "\"required\":[\"title\"],\"additionalProperties\":false}");
}

Test(schema, collect_components)
{
    json_t *c = json_object();
    schema_collect_components(&post_s, c);
    schema_collect_components(&post_s, c); /* idempotent */
    cr_assert_eq(json_object_size(c), 2);
    json_t *post = json_object_get(c, "Post");
    cr_assert_str_eq(json_string_value(json_object_get(post, "type")), "object");
    json_t *items =
        json_object_get(json_object_get(json_object_get(post, "properties"), "tags"), "items");
    cr_assert_str_eq(json_string_value(json_object_get(items, "$ref")), "#/components/schemas/Tag");
    cr_assert_null(json_object_get(json_object_get(c, "Tag"), "additionalProperties"));
    json_decref(c);
}

/* A named schema that contains itself (a comment thread). */
static const struct schema comment_s = {
    .type = SCHEMA_OBJECT,
    .ref = "Comment",
    .props =
        (const struct schema_prop[]){
            {"text", &str_s, true},
            {"replies", &(const struct schema){.type = SCHEMA_ARRAY, .items = &comment_s}, false},
            {NULL},
        },
};

Test(schema, recursive_schemas_terminate)
{
    json_t *c = json_object();
    schema_collect_components(&comment_s, c);
    cr_assert_eq(json_object_size(c), 1);
    json_t *replies =
        json_object_get(json_object_get(json_object_get(c, "Comment"), "properties"), "replies");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(replies, "items"), "$ref")),
                     "#/components/schemas/Comment");
    json_decref(c);
    /* inline, the inner occurrence cannot be written out: it becomes {} */
    expect_json_schema(&nested_s, false, "{\"type\":\"array\",\"items\":{}}");
    json_t *j = schema_to_json(&comment_s, false);
    cr_assert_not_null(j);
    json_decref(j);
    /* and validation of the recursive schema works */
    expect_ok(&comment_s, "{\"text\":\"a\",\"replies\":[{\"text\":\"b\",\"replies\":[]}]}",
              "{\"text\":\"a\",\"replies\":[{\"text\":\"b\",\"replies\":[]}]}");
    struct schema_issues is;
    json_t *out =
        run(&comment_s, "{\"text\":\"a\",\"replies\":[{\"replies\":[{\"text\":1}]}]}", &is);
    cr_assert_null(out);
    cr_assert_eq(is.n, 2);
    assert_issue(&is, 0, "replies.0.text", "invalid_type", "Required");
    assert_issue(&is, 1, "replies.0.replies.0.text", "invalid_type",
                 "Expected string, received number");
}
