/*
 * uuid.c — UUIDv7 generation and UUID text checks; see uuid.h.
 *
 * Layout (RFC 9562 §5.7): unix_ts_ms:48 | ver=7:4 | rand_a:12 | var=10:2 | rand_b:62.
 * rand_a is used as a counter (§6.2 method 1): a new millisecond seeds it randomly in its
 * lower half, each further id in the same millisecond adds one, and when it runs out the
 * timestamp borrows the next millisecond. Together (ms, counter) strictly increase, so ids
 * sort in generation order even when the clock stands still or steps back.
 */
#include "lib/common.h"

#include "lib/uuid.h"

#include <pthread.h>
#include <sys/random.h>
#include <time.h>

static pthread_mutex_t uuid_mu = PTHREAD_MUTEX_INITIALIZER;
static uint64_t uuid_last_ms;
static uint16_t uuid_counter;

static void getrandom_all(void *p, size_t n)
{
    unsigned char *b = p;
    while (n > 0) {
        ssize_t got = getrandom(b, n, 0);
        if (got < 0) {
            if (errno == EINTR)
                continue;
            /* No randomness means no safe ids: stop rather than hand out guessable ones. */
            fprintf(stderr, "zygo: getrandom failed: %s\n", strerror(errno));
            abort();
        }
        b += got;
        n -= (size_t)got;
    }
}

/*
 * Ids are made per request; one getrandom(2) per id showed in profiles. Each thread draws from
 * its own small pool instead. A forked child must not repeat its parent's bytes: the fork
 * handler empties the pool of the one thread a child has.
 */
#define UUID_POOL 512
static _Thread_local struct {
    unsigned char buf[UUID_POOL];
    size_t left;
} pool;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;

static void pool_after_fork(void)
{
    pool.left = 0;
}

static void pool_register(void)
{
    pthread_atfork(NULL, NULL, pool_after_fork);
}

static void random_bytes(void *p, size_t n)
{
    pthread_once(&pool_once, pool_register);
    if (pool.left < n) {
        getrandom_all(pool.buf, sizeof(pool.buf));
        pool.left = sizeof(pool.buf);
    }
    unsigned char *src = pool.buf + sizeof(pool.buf) - pool.left;
    memcpy(p, src, n);
    memset(src, 0, n); /* a byte is handed out once */
    pool.left -= n;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void uuid_v7(char out[UUID_STRLEN + 1])
{
    unsigned char rnd[10];
    random_bytes(rnd, sizeof(rnd)); /* 2 bytes seed the counter, 8 fill rand_b */

    uint64_t ms = now_ms();
    pthread_mutex_lock(&uuid_mu);
    if (ms > uuid_last_ms) {
        uuid_last_ms = ms;
        uuid_counter = (uint16_t)(((rnd[8] << 8) | rnd[9]) & 0x7ff); /* leave room to count */
    } else if (uuid_counter < 0xfff) {
        uuid_counter++;
    } else {
        uuid_last_ms++;
        uuid_counter = 0;
    }
    ms = uuid_last_ms;
    uint16_t counter = uuid_counter;
    pthread_mutex_unlock(&uuid_mu);

    unsigned char b[16];
    for (int i = 0; i < 6; i++)
        b[i] = (unsigned char)(ms >> (40 - 8 * i));
    b[6] = (unsigned char)(0x70 | (counter >> 8));
    b[7] = (unsigned char)(counter & 0xff);
    memcpy(b + 8, rnd, 8);
    b[8] = (unsigned char)(0x80 | (b[8] & 0x3f));

    static const char hex[] = "0123456789abcdef";
    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[b[i] >> 4];
        out[o++] = hex[b[i] & 0xf];
    }
    out[o] = '\0';
}

bool uuid_valid(const char *s)
{
    if (!s)
        return false;
    for (size_t i = 0; i < UUID_STRLEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (zy_hexval(s[i]) < 0) {
            return false; /* also stops at a NUL before position 36 */
        }
    }
    return s[UUID_STRLEN] == '\0';
}

bool uuid_normalize(const char *s, char out[UUID_STRLEN + 1])
{
    if (!uuid_valid(s))
        return false;
    for (size_t i = 0; i < UUID_STRLEN; i++)
        out[i] = (s[i] >= 'A' && s[i] <= 'F') ? (char)(s[i] - 'A' + 'a') : s[i];
    out[UUID_STRLEN] = '\0';
    return true;
}

uint64_t uuid_v7_time_ms(const char *s)
{
    if (!uuid_valid(s))
        return 0;
    uint64_t ms = 0;
    for (size_t i = 0; i < 13; i++) {
        if (i == 8)
            continue;
        ms = (ms << 4) | (uint64_t)zy_hexval(s[i]);
    }
    return ms;
}
