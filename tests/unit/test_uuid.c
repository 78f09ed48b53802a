/* test_uuid.c — UUIDv7 generation and UUID text validation. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <pthread.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/uuid.h"

static uint64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static bool is_lower_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

Test(uuid, v7_format_version_and_variant)
{
    for (int n = 0; n < 1000; n++) {
        char id[UUID_STRLEN + 1];
        uuid_v7(id);
        cr_assert_eq(strlen(id), 36);
        cr_assert(uuid_valid(id), "%s", id);
        for (int i = 0; i < 36; i++) {
            if (i == 8 || i == 13 || i == 18 || i == 23)
                cr_assert_eq(id[i], '-', "%s", id);
            else
                cr_assert(is_lower_hex(id[i]), "lowercase hex: %s", id);
        }
        cr_assert_eq(id[14], '7', "version nibble: %s", id);
        cr_assert_neq(strchr("89ab", id[19]), NULL, "variant 10: %s", id);
    }
}

Test(uuid, v7_strictly_increasing)
{
    char prev[UUID_STRLEN + 1], cur[UUID_STRLEN + 1];
    uuid_v7(prev);
    for (int n = 0; n < 10000; n++) {
        uuid_v7(cur);
        cr_assert_lt(strcmp(prev, cur), 0, "%s !< %s", prev, cur);
        memcpy(prev, cur, sizeof(cur));
    }
}

Test(uuid, v7_timestamp_is_now)
{
    uint64_t before = wall_ms();
    char id[UUID_STRLEN + 1];
    uuid_v7(id);
    uint64_t after = wall_ms();
    uint64_t ts = uuid_v7_time_ms(id);
    cr_assert_geq(ts, before, "%s", id);
    cr_assert_leq(ts, after + 2, "%s", id);
}

#define PER_THREAD 5000
#define THREADS 4

struct gen {
    char (*ids)[UUID_STRLEN + 1];
    bool increasing;
};

static void *gen_thread(void *arg)
{
    struct gen *g = arg;
    g->increasing = true;
    for (int i = 0; i < PER_THREAD; i++) {
        uuid_v7(g->ids[i]);
        if (i > 0 && strcmp(g->ids[i - 1], g->ids[i]) >= 0)
            g->increasing = false;
    }
    return NULL;
}

static int cmp_id(const void *a, const void *b)
{
    return strcmp(a, b);
}

Test(uuid, v7_unique_across_threads)
{
    char(*all)[UUID_STRLEN + 1] = xcalloc(PER_THREAD * THREADS, sizeof(*all));
    struct gen g[THREADS];
    pthread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        g[i].ids = all + i * PER_THREAD;
        cr_assert_eq(pthread_create(&t[i], NULL, gen_thread, &g[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(t[i], NULL);
        cr_assert(g[i].increasing, "thread %d", i);
    }
    qsort(all, PER_THREAD * THREADS, sizeof(*all), cmp_id);
    for (int i = 1; i < PER_THREAD * THREADS; i++)
        cr_assert_neq(strcmp(all[i - 1], all[i]), 0, "duplicate %s", all[i]);
    free(all);
}

Test(uuid, valid_accepts_canonical_text_only)
{
    cr_assert(uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398f"));
    cr_assert(uuid_valid("017F22E2-79B0-7CC3-98C4-DC0C0C07398F"));
    cr_assert(uuid_valid("f81d4fae-7dec-11d0-a765-00a0c91e6bf6"), "any version");
    cr_assert(uuid_valid("00000000-0000-0000-0000-000000000000"));
    cr_assert_not(uuid_valid(NULL));
    cr_assert_not(uuid_valid(""));
    cr_assert_not(uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398"), "35 chars");
    cr_assert_not(uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398f0"), "37 chars");
    cr_assert_not(uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398f "));
    cr_assert_not(uuid_valid("017f22e279b0-7cc3-98c4-dc0c0c07398f0-"), "hyphens misplaced");
    cr_assert_not(uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07398g"), "not hex");
    cr_assert_not(uuid_valid("{017f22e2-79b0-7cc3-98c4-dc0c0c07398f}"));
    cr_assert_not(uuid_valid("017f22e279b07cc398c4dc0c0c07398f"), "no hyphens");
    cr_assert_not(uuid_valid("017f22e2-79b0-7cc3-98c4-dc0c0c07\x00"
                             "98f"));
}

Test(uuid, normalize_lowercases)
{
    char out[UUID_STRLEN + 1];
    cr_assert(uuid_normalize("017F22E2-79B0-7CC3-98C4-DC0C0C07398F", out));
    cr_assert_str_eq(out, "017f22e2-79b0-7cc3-98c4-dc0c0c07398f");
    cr_assert_not(uuid_normalize("not-a-uuid", out));
}

Test(uuid, v7_time_of_known_value)
{
    /* RFC 9562 appendix A.6: 2022-02-22 19:22:22 UTC. */
    cr_assert_eq(uuid_v7_time_ms("017F22E2-79B0-7CC3-98C4-DC0C0C07398F"), UINT64_C(1645557742000));
    cr_assert_eq(uuid_v7_time_ms("nonsense"), 0);
}

/* Ids come from a per-thread pool of random bytes: a forked child must not hand out the bytes
 * its parent is about to use. */
Test(uuid, forked_child_does_not_repeat_the_parent)
{
    char first[UUID_STRLEN + 1];
    uuid_v7(first); /* the pool is filled now */
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        char id[UUID_STRLEN + 1];
        uuid_v7(id);
        ssize_t w = write(fds[1], id, UUID_STRLEN);
        _exit(w == UUID_STRLEN ? 0 : 1);
    }
    char mine[UUID_STRLEN + 1], theirs[UUID_STRLEN + 1] = "";
    uuid_v7(mine);
    cr_assert_eq(read(fds[0], theirs, UUID_STRLEN), UUID_STRLEN);
    int st;
    waitpid(pid, &st, 0);
    close(fds[0]);
    close(fds[1]);
    /* the last 16 hex digits are random bits: equal ones would mean a shared pool */
    cr_assert_neq(strcmp(mine + 20, theirs + 20), 0, "%s vs %s", mine, theirs);
}
