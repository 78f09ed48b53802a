/* Small library modules: JSON escaping, bounded buffers, arenas, URL decoding, UTF-8, the
 * worker queue, request ids, the logger's lines. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <stdatomic.h>
#include <unistd.h>

#include "lib/arena.h"
#include "lib/buf.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "lib/url.h"
#include "lib/utf8.h"
#include "lib/workq.h"
#include "middleware/request_id.h"

static char *esc(const char *s, size_t n)
{
    struct buf b;
    buf_init(&b, 1 << 16);
    cr_assert_eq(buf_json_str(&b, s, n), 0);
    return buf_detach(&b, NULL);
}

Test(json, escaping)
{
    struct {
        const char *in;
        size_t n;
        const char *out;
    } cases[] = {
        {"plain", 5, "\"plain\""},
        {"a\"b\\c", 5, "\"a\\\"b\\\\c\""},
        {"\n\r\t\b\f", 5, "\"\\n\\r\\t\\b\\f\""},
        {"\x01\x1f\x7f", 3, "\"\\u0001\\u001f\\u007f\""},
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        {"bad\xff", 4, "\"bad\\ufffd\""},
        {"\xc0\xaf", 2, "\"\\ufffd\\ufffd\""},
        {"\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""},
        {"nul\0x", 5, "\"nul\\u0000x\""},
        {"</script>", 9, "\"</script>\""},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
        char *o = esc(cases[i].in, cases[i].n);
        cr_assert_str_eq(o, cases[i].out, "case %zu", i);
        /* and the output is always valid JSON that decodes back */
        json_t *v = json_loads(o, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        cr_assert_not_null(v, "case %zu is not JSON: %s", i, o);
        json_decref(v);
        free(o);
    }
}

Test(json, jx_str_repairs_invalid_utf8)
{
    json_t *s = jx_str("ok\xff");
    cr_assert_not_null(s);
    cr_assert_str_eq(json_string_value(s), "ok\xef\xbf\xbd");
    json_decref(s);
    char ts[48];
    zy_iso_now(ts);
    cr_assert_eq(strlen(ts), 24);
    cr_assert_eq(ts[23], 'Z');
}

Test(buf, hard_cap)
{
    struct buf b;
    buf_init(&b, 8);
    cr_assert_eq(buf_puts(&b, "12345678"), 0);
    cr_assert_eq(buf_putc(&b, '9'), -1);
    cr_assert(b.overflow);
    cr_assert_eq(b.len, 8);
    cr_assert_eq(buf_printf(&b, "%d", 1), -1, "once overflowed, stays refused");
    buf_reset(&b);
    cr_assert_eq(buf_printf(&b, "%s-%d", "ab", 12), 0);
    cr_assert_str_eq(buf_cstr(&b), "ab-12");
    buf_free(&b);
}

static int order[4];
static int norder;
static void note(void *p)
{
    order[norder++] = (int)(intptr_t)p;
}

Test(arena, cleanups_reverse_and_large_allocations)
{
    struct arena *a = arena_new();
    norder = 0;
    arena_on_free(a, note, (void *)1);
    arena_on_free(a, note, (void *)2);
    char *big = arena_alloc(a, 100000);
    memset(big, 'x', 100000);
    for (int i = 0; i < 1000; i++) {
        char *s = arena_printf(a, "item-%d", i);
        cr_assert_str_eq(s, arena_strdup(a, s));
    }
    int *z = arena_alloc(a, 64 * sizeof(int));
    for (int i = 0; i < 64; i++)
        cr_assert_eq(z[i], 0, "arena memory is zeroed");
    cr_assert_eq((uintptr_t)z % 16, 0);
    cr_assert_geq(arena_used(a), 100000);
    arena_free(a);
    cr_assert_eq(norder, 2);
    cr_assert_eq(order[0], 2);
    cr_assert_eq(order[1], 1);
}

Test(url, decode_and_query)
{
    char s[] = "a%20b+c%2Fd%zz%4";
    url_decode(s, false);
    cr_assert_str_eq(s, "a b+c/d%zz%4");
    char p[] = "x+y%2B";
    url_decode(p, true);
    cr_assert_str_eq(p, "x y+");
    struct arena *a = arena_new();
    struct kv *q;
    size_t n;
    size_t total = url_parse_query(a, "a=1&b=two%20words&&a=3&flag&e=", &q, &n, 100);
    cr_assert_eq(total, 5);
    cr_assert_eq(n, 5);
    cr_assert_str_eq(q[1].value, "two words");
    cr_assert_str_eq(q[2].name, "a");
    cr_assert_str_eq(q[2].value, "3");
    cr_assert_str_eq(q[3].name, "flag");
    cr_assert_str_eq(q[3].value, "");
    total = url_parse_query(a, "a=1&a=2&a=3&a=4", &q, &n, 2);
    cr_assert_eq(total, 4);
    cr_assert_eq(n, 2, "bounded");
    arena_free(a);
}

Test(utf8, validity_and_counting)
{
    size_t bad = 99;
    cr_assert(utf8_valid("h\xc3\xa9llo", 6, &bad));
    cr_assert_not(utf8_valid("ab\xe2\x82", 4, &bad));
    cr_assert_eq(bad, 2);
    cr_assert_not(utf8_valid("\xf4\x90\x80\x80", 4, NULL), "above U+10FFFF");
    cr_assert_not(utf8_valid("\xe0\x80\xaf", 3, NULL), "overlong");
    cr_assert_eq(utf8_count("h\xc3\xa9\xf0\x9f\x98\x80", 7), 3);
}

static atomic_int ran;
static void work(void *p)
{
    (void)p;
    usleep(1000);
    atomic_fetch_add(&ran, 1);
}
static void block(void *p)
{
    atomic_int *gate = p;
    while (!atomic_load(gate))
        usleep(1000);
}

Test(workq, runs_everything_and_bounds_queue)
{
    atomic_store(&ran, 0);
    struct workq *q = workq_new(4, 1000);
    for (int i = 0; i < 200; i++)
        cr_assert_eq(workq_submit(q, work, NULL), 0);
    workq_free(q);
    cr_assert_eq(atomic_load(&ran), 200, "queued tasks finish before workq_free returns");

    atomic_int gate = 0;
    q = workq_new(1, 2);
    cr_assert_eq(workq_submit(q, block, &gate), 0);
    usleep(20000); /* the worker picked it up: the queue is empty again */
    cr_assert_eq(workq_submit(q, block, &gate), 0);
    cr_assert_eq(workq_submit(q, block, &gate), 0);
    cr_assert_eq(workq_submit(q, block, &gate), -1, "a full queue refuses");
    cr_assert_eq(workq_pending(q), 3);
    atomic_store(&gate, 1);
    workq_free(q);
}

Test(request_id, validity)
{
    cr_assert(request_id_valid("abc-DEF_123="));
    cr_assert_not(request_id_valid(""));
    cr_assert_not(request_id_valid("has space"));
    cr_assert_not(request_id_valid("semi;colon"));
    char s[300];
    memset(s, 'a', 255);
    s[255] = '\0';
    cr_assert(request_id_valid(s));
    s[255] = 'a';
    s[256] = '\0';
    cr_assert_not(request_id_valid(s));
}

/* The JSON lines pino writes: level, time, pid, hostname, the fields, msg; numbers by hand. */
Test(log, json_lines_have_pinos_shape)
{
    int p[2];
    cr_assert_eq(pipe(p), 0);
    log_init(LOG_INFO, false, p[1]);
    struct log_line l;
    log_begin(&l, LOG_WARN);
    log_str(&l, "reqId", "r-1");
    log_str(&l, "path", "/a\"b\\c\n");
    log_int(&l, "status", 404);
    log_int(&l, "neg", -9223372036854775807LL - 1);
    log_num(&l, "duration", 12.3456);
    log_num(&l, "small", 0.0004);
    log_num(&l, "minus", -2.5);
    log_num(&l, "big", 1e20);
    log_end(&l, "request \"completed\"");
    log_begin(&l, LOG_DEBUG); /* below the level: nothing written */
    log_int(&l, "x", 1);
    log_end(&l, "hidden");
    log_msg(LOG_ERROR, "plain %d", 7);
    log_init(LOG_SILENT, false, 2);
    close(p[1]);
    char out[4096];
    ssize_t n = read(p[0], out, sizeof(out) - 1);
    close(p[0]);
    cr_assert_gt(n, 0);
    out[n] = '\0';
    char *nl = strchr(out, '\n');
    cr_assert_not_null(nl);
    *nl = '\0';
    json_error_t e;
    json_t *v = json_loads(out, 0, &e);
    cr_assert_not_null(v, "not JSON (%s): %s", e.text, out);
    cr_assert_eq(json_integer_value(json_object_get(v, "level")), LOG_WARN);
    cr_assert_gt(json_integer_value(json_object_get(v, "time")), 1700000000000LL);
    cr_assert_eq(json_integer_value(json_object_get(v, "pid")), getpid());
    cr_assert(json_is_string(json_object_get(v, "hostname")));
    cr_assert_str_eq(json_string_value(json_object_get(v, "path")), "/a\"b\\c\n");
    cr_assert_eq(json_integer_value(json_object_get(v, "status")), 404);
    cr_assert_eq(json_integer_value(json_object_get(v, "neg")), -9223372036854775807LL - 1);
    cr_assert_str_eq(json_string_value(json_object_get(v, "msg")), "request \"completed\"");
    json_decref(v);
    /* numbers as "%.3f" writes them */
    cr_assert_not_null(strstr(out, "\"duration\":12.346,"), "%s", out);
    cr_assert_not_null(strstr(out, "\"small\":0.000,"), "%s", out);
    cr_assert_not_null(strstr(out, "\"minus\":-2.500,"), "%s", out);
    cr_assert_not_null(strstr(out, "\"big\":100000000000000000000.000,"), "%s", out);
    /* keys in pino's order: level, time, pid, hostname first, msg last */
    const char *head = "{\"level\":40,\"time\":";
    cr_assert_eq(strncmp(out, head, strlen(head)), 0, "%s", out);
    cr_assert_not_null(strstr(out, ",\"pid\":"));
    const char *tail = "\"msg\":\"request \\\"completed\\\"\"}";
    cr_assert_eq(strcmp(out + strlen(out) - strlen(tail), tail), 0, "%s", out);
    /* the next line is the plain message; the debug one was never written */
    cr_assert_not_null(strstr(nl + 1, "\"level\":50"));
    cr_assert_not_null(strstr(nl + 1, "\"msg\":\"plain 7\"}\n"));
    cr_assert_null(strstr(nl + 1, "hidden"));
}
