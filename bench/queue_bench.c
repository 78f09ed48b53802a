/*
 * queue_bench.c — the benchmark's Zygo side of the queue throughput (bench/run-queue.sh):
 * enqueue JOBS no-op jobs, then start the real runner (src/jobs/runner.c) on them with
 * CONCURRENCY and time until every one has completed. The queue has the specification's
 * default options (attempts 3, exponential backoff 5000 ms, removeOnComplete {age 86400,
 * count 1000}, removeOnFail {age 604800}), like the BullMQ side (bench/queue/bullmq.mjs).
 * The database comes from the environment as for `zygo serve` (DATABASE_URL, and
 * DATABASE_MIGRATION_URL for PostgreSQL), migrations applied first. Jobs are enqueued with
 * jobs_enqueue_many in chunks of 1000, as BullMQ's side adds them with addBulk.
 *
 *   zygo-bench-queue JOBS CONCURRENCY
 *
 * Prints one line: BENCH jobs=N concurrency=C enqueue_s=… process_s=… jobs_per_s=…
 * enqueue_per_s=… cpu_s=… (cpu_s: user + system time of this process while processing).
 * Built with `make bench-queue`.
 */
#include "lib/common.h"

#include <pthread.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <time.h>

#define ZYGO_JOBS_INTERNAL 1 /* jobs_queues_register: the queue is known before its runner */
#include "jobs/queue.h"
#include "lib/config.h"
#include "lib/log.h"
#include "services/database.h"

extern char **environ;

#define BATCH 1000

static atomic_long done;
static long total;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t all_done = PTHREAD_COND_INITIALIZER;

static enum job_result noop(struct job *j)
{
    (void)j;
    if (atomic_fetch_add(&done, 1) + 1 == total) {
        pthread_mutex_lock(&mu);
        pthread_cond_signal(&all_done);
        pthread_mutex_unlock(&mu);
    }
    return JOB_DONE;
}

static const struct job_queue_def defs[] = {{.name = "bench-noop", .process = noop}};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static int die(const char *what, const char *why)
{
    fprintf(stderr, "zygo-bench-queue: %s: %s\n", what, why);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 3)
        return die("usage", "zygo-bench-queue JOBS CONCURRENCY");
    total = strtol(argv[1], NULL, 10);
    long conc = strtol(argv[2], NULL, 10);
    if (total < 1 || conc < 1 || conc > 256)
        return die("usage", "JOBS >= 1, CONCURRENCY 1-256");
    struct config cfg;
    struct config_errors errs;
    if (config_load(&cfg, environ, &errs) < 0)
        return die("config", errs.n ? errs.v[0] : "invalid");
    log_init(LOG_WARN, false, 2);
    struct db *db;
    struct migrate_report rep;
    char err[1024];
    int rc = database_open(&cfg, &db, &rep, err, sizeof(err));
    migrate_report_free(&rep);
    if (rc < 0)
        return die("database", err);

    struct job_env env = {.cfg = &cfg, .db = db};
    struct job_runner_options o = {.poll_ms = cfg.jobs_poll_ms,
                                   .lease_ms = cfg.jobs_lease_ms,
                                   .sweep_interval_ms = cfg.jobs_sweep_interval_ms,
                                   .concurrency = (int)conc};
    jobs_queues_register(defs, ARRAY_LEN(defs));

    /* enqueue: system jobs (no tenant) */
    struct db_conn *c = db_acquire(db, err, sizeof(err));
    if (!c)
        return die("database", err);
    db_set_rls_bypass(c, true);
    double t0 = now_s();
    /* jobs_enqueue_many: one statement per chunk, as BullMQ's side uses addBulk */
    static char ids[BATCH][JOB_ID_MAX], data[BATCH][48];
    const char *datap[BATCH];
    for (long i = 0; i < total; i += BATCH) {
        size_t n = 0;
        for (long k = i; k < total && k < i + BATCH; k++, n++) {
            snprintf(data[n], sizeof(data[n]), "{\"i\":%ld}", k);
            datap[n] = data[n];
        }
        if (jobs_enqueue_many(c, "bench-noop", "noop", NULL, datap, n, NULL, ids) != 0)
            return die("enqueue", db_errmsg(c));
    }
    double t1 = now_s();
    db_release(c);

    double cpu0 = cpu_s();
    double t2 = now_s();
    struct job_runner *r = job_runner_start(&env, defs, ARRAY_LEN(defs), &o, err, sizeof(err));
    if (!r)
        return die("runner", err);
    pthread_mutex_lock(&mu);
    while (atomic_load(&done) < total)
        pthread_cond_wait(&all_done, &mu);
    pthread_mutex_unlock(&mu);
    double t3 = now_s();
    double cpu1 = cpu_s();
    job_runner_stop(r, 10);
    jobs_queues_unregister(defs);

    printf("BENCH jobs=%ld concurrency=%ld enqueue_s=%.3f process_s=%.3f jobs_per_s=%.0f "
           "enqueue_per_s=%.0f cpu_s=%.3f\n",
           total, conc, t1 - t0, t3 - t2, (double)total / (t3 - t2), (double)total / (t1 - t0),
           cpu1 - cpu0);
    db_close(db);
    config_free(&cfg);
    return 0;
}
