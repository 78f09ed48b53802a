/*
 * queues.c — the specification's queue table (jobs_queue_defs), the defaults every queue
 * starts from, the processor registration seam, the registry of runners' own queues, and the
 * diagnostic queue "zygo-test" that ZYGO_TEST_QUEUES=1 adds for tests of real worker
 * processes.
 */
#include "lib/common.h"

#include <pthread.h>
#include <time.h>
#include <unistd.h>

#define ZYGO_JOBS_INTERNAL 1
#include "jobs/queue.h"
#include "lib/log.h"

#define DEF_ATTEMPTS 3
#define DEF_BACKOFF_MS 5000
#define DEF_CONCURRENCY 1
#define DEF_KEEP_COMPLETED_AGE_S 86400
#define DEF_KEEP_COMPLETED_COUNT 1000
#define DEF_KEEP_FAILED_AGE_S 604800
#define DEF_TIMEOUT_MS 300000
#define DEF_MAX_STALLED 1

/* The specification's queues (src/jobs/queues.ts there); zero fields take the defaults. */
static struct job_queue_def spec_defs[] = {
    {.name = "tenant-deletion",
     .attempts = 5,
     .concurrency = 2,
     .limiter_max = 5,
     .limiter_window_ms = 60000},
    {.name = "user-deletion"},
    {.name = "workflow-execution", .attempts = 3},
    {.name = "notifications", .attempts = 3},
    {.name = "archive", .attempts = 5},
    /* Only with ZYGO_TEST_QUEUES=1 (see test_process): always the last entry. */
    {.name = "zygo-test", .attempts = 3, .backoff_ms = 100, .concurrency = 2},
};

#define NSPEC (ARRAY_LEN(spec_defs) - 1)

static enum job_result test_process(struct job *j);

static pthread_once_t test_once = PTHREAD_ONCE_INIT;
static bool test_queues;

static void test_init(void)
{
    const char *v = getenv("ZYGO_TEST_QUEUES");
    test_queues = v && strcmp(v, "1") == 0;
    spec_defs[NSPEC].process = test_process;
}

const struct job_queue_def *jobs_queue_defs(size_t *n)
{
    pthread_once(&test_once, test_init);
    *n = NSPEC + (test_queues ? 1 : 0);
    return spec_defs;
}

int jobs_set_processor(const char *queue, job_process_fn fn)
{
    for (size_t i = 0; i < NSPEC; i++) {
        if (strcmp(spec_defs[i].name, queue) == 0) {
            spec_defs[i].process = fn;
            return 0;
        }
    }
    return -1;
}

void jobs_def_resolve(const struct job_queue_def *in, struct job_queue_def *out)
{
    *out = *in;
    if (out->attempts <= 0)
        out->attempts = DEF_ATTEMPTS;
    if (out->backoff_ms <= 0)
        out->backoff_ms = in->backoff_ms < 0 ? 0 : DEF_BACKOFF_MS;
    if (out->concurrency <= 0)
        out->concurrency = DEF_CONCURRENCY;
    if (out->limiter_max <= 0 || out->limiter_window_ms <= 0) {
        out->limiter_max = 0;
        out->limiter_window_ms = 0;
    }
    if (out->keep_completed_age_s == 0)
        out->keep_completed_age_s = DEF_KEEP_COMPLETED_AGE_S;
    if (out->keep_completed_count == 0)
        out->keep_completed_count = DEF_KEEP_COMPLETED_COUNT;
    if (out->keep_failed_age_s == 0)
        out->keep_failed_age_s = DEF_KEEP_FAILED_AGE_S;
    if (out->timeout_ms <= 0)
        out->timeout_ms = DEF_TIMEOUT_MS;
    if (out->max_stalled == 0)
        out->max_stalled = DEF_MAX_STALLED;
    else if (out->max_stalled < 0)
        out->max_stalled = 0;
}

/* ---- runners' own queues ------------------------------------------------------------------ */

struct reg {
    const struct job_queue_def *defs;
    size_t n;
};

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct reg *regs;
static size_t nregs, capregs;

void jobs_queues_register(const struct job_queue_def *defs, size_t n)
{
    pthread_mutex_lock(&reg_mu);
    if (nregs == capregs) {
        capregs = capregs ? capregs * 2 : 4;
        regs = xrealloc(regs, capregs * sizeof(*regs));
    }
    regs[nregs++] = (struct reg){defs, n};
    pthread_mutex_unlock(&reg_mu);
}

void jobs_queues_unregister(const struct job_queue_def *defs)
{
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < nregs; i++) {
        if (regs[i].defs == defs) {
            regs[i] = regs[--nregs];
            break;
        }
    }
    if (nregs == 0) {
        free(regs);
        regs = NULL;
        capregs = 0;
    }
    pthread_mutex_unlock(&reg_mu);
}

const struct job_queue_def *jobs_queue_def(const char *name)
{
    if (!name)
        return NULL;
    size_t n;
    const struct job_queue_def *d = jobs_queue_defs(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(d[i].name, name) == 0)
            return &d[i];
    const struct job_queue_def *found = NULL;
    pthread_mutex_lock(&reg_mu);
    for (size_t i = 0; i < nregs && !found; i++)
        for (size_t k = 0; k < regs[i].n && !found; k++)
            if (strcmp(regs[i].defs[k].name, name) == 0)
                found = &regs[i].defs[k];
    pthread_mutex_unlock(&reg_mu);
    return found;
}

/* ---- the diagnostic queue ----------------------------------------------------------------- */

/*
 * "zygo-test" (ZYGO_TEST_QUEUES=1 only). Data: {"sleepMs": n} sleeps n ms in 10 ms steps,
 * stopping early (JOB_RETRY) when job_should_stop(); {"failTimes": k} fails the first k
 * attempts; {"unrecoverable": true} fails for good; {"progress": p} reports p before
 * sleeping. Result: {"pid", "attempt"} — which process ran it, and which attempt.
 */
static enum job_result test_process(struct job *j)
{
    json_int_t sleep_ms = json_integer_value(json_object_get(j->data, "sleepMs"));
    json_int_t fail_times = json_integer_value(json_object_get(j->data, "failTimes"));
    json_t *p = json_object_get(j->data, "progress");
    if (json_is_integer(p))
        job_progress(j, (int)json_integer_value(p), "working");
    for (json_int_t slept = 0; slept < sleep_ms; slept += 10) {
        if (job_should_stop(j)) {
            job_set_error(j, "stopped after %lld ms", (long long)slept);
            return JOB_RETRY;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    if (json_is_true(json_object_get(j->data, "unrecoverable"))) {
        job_set_error(j, "unrecoverable by request");
        return JOB_UNRECOVERABLE;
    }
    if (j->attempt <= fail_times) {
        job_set_error(j, "failing attempt %d by request", j->attempt);
        return JOB_RETRY;
    }
    job_set_result(j, json_pack("{s:I, s:i}", "pid", (json_int_t)getpid(), "attempt", j->attempt));
    return JOB_DONE;
}
