/*
 * main.c — the `zygo` command line: serve, worker, migrate, openapi, version, help.
 *
 * Owns process start-up and shutdown: configuration, logger, database, migrations, the app
 * and the HTTP server, the job workers, and the signal wait that turns SIGTERM/SIGINT into a
 * graceful stop.
 */
#include "lib/common.h"

#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include "db/db.h"
#include "db/migrate.h"
#include "http/app.h"
#include "http/openapi.h"
#include "http/server.h"
#include "jobs/processors.h"
#include "jobs/queue.h"
#include "lib/config.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "routes/routes.h"
#include "services/admin_cli.h"
#include "services/database.h"
#include "services/oauth.h"
#include "services/realtime.h"
#include "services/workflow.h"

extern char **environ;

enum { EXIT_USAGE = 2 };

struct command {
    const char *name;
    const char *summary;
    const char *usage;
    int (*run)(int argc, char **argv);
};

static int cmd_help(int argc, char **argv);
static const struct command *find_command(const char *name);

static void usage_error(const char *cmd, const char *fmt, ...) ZY_PRINTF(2, 3);
static void usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zygo%s%s: ", cmd ? " " : "", cmd ? cmd : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'zygo %s--help' for usage.\n", cmd ? cmd : "");
}

/* Parses the flags every command shares (--help) plus the command's own long options.
 * Returns 1 when help was printed, 0 to go on, -1 on a usage error (message printed). */
static int parse_flags(const struct command *cmd, int argc, char **argv, const struct option *extra,
                       size_t nextra, int (*on_opt)(int opt, const char *arg))
{
    struct option opts[16];
    size_t n = 0;
    for (; n < nextra && n < ARRAY_LEN(opts) - 2; n++)
        opts[n] = extra[n];
    opts[n++] = (struct option){"help", no_argument, NULL, 'h'};
    opts[n] = (struct option){0};
    optind = 1;
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        if (opt == 'h') {
            printf("Usage: %s\n\n%s\n", cmd->usage, cmd->summary);
            return 1;
        }
        if (opt == '?' || opt == ':') {
            const char *bad = argv[optind - 1];
            usage_error(cmd->name, "unknown or incomplete option '%s'", bad);
            return -1;
        }
        if (on_opt(opt, optarg) < 0)
            return -1;
    }
    if (optind < argc) {
        usage_error(cmd->name, "unexpected argument '%s'", argv[optind]);
        return -1;
    }
    return 0;
}

static int no_opts(int opt, const char *arg)
{
    (void)opt;
    (void)arg;
    return 0;
}

/* Loads the configuration; on failure prints every problem and returns -1. */
static int load_config(struct config *cfg)
{
    struct config_errors errs;
    int rc = config_load(cfg, environ, &errs);
    if (rc == 0) {
        /* OAuth providers are configuration too: every problem before anything starts */
        struct oauth_providers ps;
        rc = oauth_providers_load(&ps, oauth_envp_get, cfg->vars, cfg->api_url, &errs);
        oauth_providers_free(&ps);
    }
    if (rc == 0)
        return 0;
    fprintf(stderr, "zygo: invalid configuration (%zu problem%s):\n", errs.n,
            errs.n == 1 ? "" : "s");
    for (size_t i = 0; i < errs.n; i++)
        fprintf(stderr, "  - %s\n", errs.v[i]);
    config_errors_free(&errs);
    config_free(cfg);
    return -1;
}

/* Opens the database with pending migrations applied; logs what it did. */
static int open_database(const struct config *cfg, struct db **db, bool verbose)
{
    struct migrate_report rep;
    char err[1024];
    int rc = database_open(cfg, db, &rep, err, sizeof(err));
    for (size_t i = 0; i < rep.napplied; i++)
        log_msg(LOG_INFO, "applied migration %s", rep.applied[i]);
    if (rc < 0)
        log_msg(LOG_FATAL, "database: %s", err);
    else if (verbose && rep.napplied == 0)
        log_msg(LOG_INFO, "database is up to date");
    migrate_report_free(&rep);
    return rc;
}

/* ---- job workers ---------------------------------------------------------------------------- */

/* The workers of this process on the queue table, with the configured lease and intervals;
 * queues/concurrency from `zygo worker` flags (NULL/0: all queues, each at its own). */
static struct job_runner *start_jobs(const struct config *cfg, const struct job_env *env,
                                     const char *const *queues, size_t nqueues, int concurrency)
{
    jobs_processors_register();
    size_t ndefs;
    const struct job_queue_def *defs = jobs_queue_defs(&ndefs);
    struct job_runner_options o = {
        .queues = queues,
        .nqueues = nqueues,
        .concurrency = concurrency > 0 ? concurrency : cfg->jobs_concurrency,
        .lease_ms = cfg->jobs_lease_ms,
        .poll_ms = cfg->jobs_poll_ms,
        .sweep_interval_ms = cfg->jobs_sweep_interval_ms,
    };
    char err[256];
    struct job_runner *r = job_runner_start(env, defs, ndefs, &o, err, sizeof(err));
    if (!r)
        log_msg(LOG_FATAL, "jobs: %s", err);
    return r;
}

/* What runs beside requests in `zygo serve`, and alone in `zygo worker`: the job runner and
 * the workflow scheduler, on the app's services (mailer, keys, the real-time bus: events of
 * jobs run here reach this process's WebSockets and, through the database, every other
 * process's). */
struct background {
    struct job_env env;
    struct job_runner *r;
    struct workflow_scheduler *sched;
    unsigned grace_s;
    unsigned left; /* jobs still running at the stop deadline */
};

static int background_start(struct background *bg, const struct config *cfg, struct db *db,
                            struct app *app, bool jobs, const char *const *queues, size_t nqueues,
                            int concurrency)
{
    *bg = (struct background){.env = {.cfg = cfg,
                                      .db = db,
                                      .mailer = app_mailer(app),
                                      .keyring = app_keyring(app),
                                      .realtime = app_realtime(app)},
                              .grace_s = (unsigned)cfg->shutdown_timeout_s};
    if (jobs && !(bg->r = start_jobs(cfg, &bg->env, queues, nqueues, concurrency)))
        return -1;
    /* every process may tick: a slot fires once whoever claims it (schedule slots) */
    if (cfg->workflow_schedule_interval_ms > 0) {
        char err[256];
        bg->sched = workflow_scheduler_start(db, cfg->workflow_schedule_interval_ms,
                                             cfg->workflow_retention_days, err, sizeof(err));
        if (!bg->sched) {
            log_msg(LOG_FATAL, "workflow scheduler: %s", err);
            return -1;
        }
    }
    return 0;
}

/* Stops firing schedules, then lets running jobs finish within the grace period. */
static void background_stop(struct background *bg, unsigned grace_s)
{
    workflow_scheduler_stop(bg->sched);
    bg->sched = NULL;
    bg->left = job_runner_stop(bg->r, grace_s);
    bg->r = NULL;
}

static void *stop_background_thread(void *arg)
{
    struct background *bg = arg;
    background_stop(bg, bg->grace_s);
    return NULL;
}

static struct {
    int port;
    const char *host;
} serve_flags;

static int serve_opt(int opt, const char *arg)
{
    if (opt == 'p') {
        char *end;
        long p = strtol(arg, &end, 10);
        if (*end || p < 0 || p > 65535) {
            usage_error("serve", "--port expects 0-65535, got '%s'", arg);
            return -1;
        }
        serve_flags.port = (int)p;
    } else if (opt == 'H') {
        serve_flags.host = arg;
    }
    return 0;
}

static int cmd_serve(int argc, char **argv)
{
    static const struct option opts[] = {{"port", required_argument, NULL, 'p'},
                                         {"host", required_argument, NULL, 'H'}};
    serve_flags.port = -1;
    serve_flags.host = NULL;
    int pf = parse_flags(find_command("serve"), argc, argv, opts, ARRAY_LEN(opts), serve_opt);
    if (pf != 0)
        return pf > 0 ? 0 : EXIT_USAGE;

    struct config cfg;
    if (load_config(&cfg) < 0)
        return 1;
    if (serve_flags.port >= 0)
        cfg.port = serve_flags.port;
    if (serve_flags.host) {
        free(cfg.host);
        cfg.host = xstrdup(serve_flags.host);
    }
    log_init(cfg.log_level, cfg.log_pretty_allowed && isatty(1), 1);
    if (cfg.secrets_generated)
        log_msg(LOG_WARN, "using development secrets from %s/dev-secrets.env", cfg.data_dir);

    /* Every thread started from here on inherits the blocked set; only sigwait below sees
     * SIGTERM/SIGINT. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    struct db *db = NULL;
    struct app *app = NULL;
    struct server *srv = NULL;
    struct background bg = {0};
    if (open_database(&cfg, &db, false) < 0)
        goto out;
    char why[256];
    if (database_check_role(db, why, sizeof(why)) < 0) {
        if (cfg.env == ENV_PRODUCTION || cfg.env == ENV_STAGING) {
            log_msg(LOG_FATAL, "%s", why);
            goto out;
        }
        log_msg(LOG_WARN, "%s", why);
    }
    size_t ngroups;
    const struct route_group *groups = routes_groups(&ngroups);
    app = app_new(&cfg, db, groups, ngroups);
    struct server_options so;
    server_options_from_config(&so, app);
    char err[512];
    if (workflow_rooms_register() < 0) {
        log_msg(LOG_FATAL, "cannot register the workflow execution rooms");
        goto out;
    }
    if (server_start(&srv, app, &so, err, sizeof(err)) < 0) {
        log_msg(LOG_FATAL, "%s", err);
        goto out;
    }
    log_msg(LOG_INFO, "Server running on http://%s:%d", cfg.host, server_port(srv));
    log_msg(LOG_INFO, "Environment: %s", cfg.node_env);
    /* JOBS_IN_PROCESS=false leaves the queues to `zygo worker` processes */
    if (background_start(&bg, &cfg, db, app, cfg.jobs_in_process, NULL, 0, 0) < 0)
        goto out;

    int sig = 0;
    sigwait(&set, &sig);
    log_msg(LOG_INFO, "received %s, shutting down (finishing in-flight requests and jobs)",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    /* requests and jobs finish side by side, each within SHUTDOWN_TIMEOUT */
    pthread_t bt;
    bool bt_started = pthread_create(&bt, NULL, stop_background_thread, &bg) == 0;
    if (!bt_started)
        stop_background_thread(&bg);
    unsigned left = server_shutdown(srv, (unsigned)cfg.shutdown_timeout_s);
    if (left)
        log_msg(LOG_WARN, "%u request(s) still running at the shutdown deadline", left);
    if (bt_started)
        pthread_join(bt, NULL);
    log_msg(LOG_INFO, "stopped");
    rc = 0;
    if (bg.left) {
        /* a processor still runs on the app's services: leave them to the exit, its lease
         * runs out and another worker retries the job */
        config_free(&cfg);
        return rc;
    }
out:
    background_stop(&bg, 0);
    server_free(srv);
    app_free(app);
    db_close(db);
    config_free(&cfg);
    return rc;
}

static struct {
    char *queues; /* comma-separated, as given */
    int concurrency;
} worker_flags;

static int worker_opt(int opt, const char *arg)
{
    if (opt == 'q') {
        free(worker_flags.queues);
        worker_flags.queues = xstrdup(arg);
    } else if (opt == 'c') {
        char *end;
        long n = strtol(arg, &end, 10);
        if (*end || n < 1 || n > 256) {
            usage_error("worker", "--concurrency expects 1-256, got '%s'", arg);
            return -1;
        }
        worker_flags.concurrency = (int)n;
    }
    return 0;
}

static int cmd_worker(int argc, char **argv)
{
    static const struct option opts[] = {{"queues", required_argument, NULL, 'q'},
                                         {"concurrency", required_argument, NULL, 'c'}};
    worker_flags.queues = NULL;
    worker_flags.concurrency = 0;
    int pf = parse_flags(find_command("worker"), argc, argv, opts, ARRAY_LEN(opts), worker_opt);
    if (pf != 0) {
        free(worker_flags.queues);
        return pf > 0 ? 0 : EXIT_USAGE;
    }
    /* --queues a,b: split in place */
    const char *names[32];
    size_t nnames = 0;
    for (char *save = NULL, *q = worker_flags.queues ? strtok_r(worker_flags.queues, ",", &save)
                                                     : NULL;
         q; q = strtok_r(NULL, ",", &save)) {
        if (nnames == ARRAY_LEN(names)) {
            usage_error("worker", "--queues names more than %zu queues", ARRAY_LEN(names));
            free(worker_flags.queues);
            return EXIT_USAGE;
        }
        names[nnames++] = q;
    }
    if (worker_flags.queues && nnames == 0) {
        usage_error("worker", "--queues names no queue");
        free(worker_flags.queues);
        return EXIT_USAGE;
    }

    struct config cfg;
    if (load_config(&cfg) < 0) {
        free(worker_flags.queues);
        return 1;
    }
    log_init(cfg.log_level, cfg.log_pretty_allowed && isatty(1), 1);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    struct db *db = NULL;
    struct app *app = NULL;
    struct background bg = {0};
    if (open_database(&cfg, &db, false) < 0)
        goto out;
    /* the app only lends its services (mailer, keys, the bus); no route is served */
    app = app_new(&cfg, db, NULL, 0);
    if (background_start(&bg, &cfg, db, app, true, nnames ? names : NULL, nnames,
                         worker_flags.concurrency) < 0)
        goto out;
    log_msg(LOG_INFO, "Worker running (pid %d)", (int)getpid());
    int sig = 0;
    sigwait(&set, &sig);
    log_msg(LOG_INFO, "received %s, finishing running jobs",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    background_stop(&bg, (unsigned)cfg.shutdown_timeout_s);
    log_msg(LOG_INFO, "stopped");
    rc = 0;
    if (bg.left) {
        /* see cmd_serve: the stuck processors keep the services until the exit */
        free(worker_flags.queues);
        config_free(&cfg);
        return rc;
    }
out:
    background_stop(&bg, 0);
    app_free(app);
    db_close(db);
    config_free(&cfg);
    free(worker_flags.queues);
    return rc;
}

static int cmd_migrate(int argc, char **argv)
{
    int pf = parse_flags(find_command("migrate"), argc, argv, NULL, 0, no_opts);
    if (pf != 0)
        return pf > 0 ? 0 : EXIT_USAGE;
    struct config cfg;
    if (load_config(&cfg) < 0)
        return 1;
    log_init(cfg.log_level, cfg.log_pretty_allowed && isatty(1), 1);
    struct db *db = NULL;
    int rc = open_database(&cfg, &db, true) == 0 ? 0 : 1;
    db_close(db);
    config_free(&cfg);
    return rc;
}

static int cmd_openapi(int argc, char **argv)
{
    int pf = parse_flags(find_command("openapi"), argc, argv, NULL, 0, no_opts);
    if (pf != 0)
        return pf > 0 ? 0 : EXIT_USAGE;
    const char *api_url = getenv("API_URL");
    struct openapi_info info = {
        .title = "Zygo API",
        .version = ZYGO_VERSION,
        .description = "Multi-tenant platform backend.",
        /* unset: relative to wherever the document is served from */
        .server_url = api_url && *api_url ? api_url : "/",
    };
    size_t ngroups;
    const struct route_group *groups = routes_groups(&ngroups);
    json_t *doc = openapi_document(groups, ngroups, &info);
    int rc = json_dumpf(doc, stdout, JSON_INDENT(2)) == 0 ? 0 : 1;
    putchar('\n');
    json_decref(doc);
    return rc;
}

static int cmd_version(int argc, char **argv)
{
    int pf = parse_flags(find_command("version"), argc, argv, NULL, 0, no_opts);
    if (pf != 0)
        return pf > 0 ? 0 : EXIT_USAGE;
    printf("zygo %s\n", ZYGO_VERSION);
    return 0;
}

static const struct command commands[] = {
    {"serve", "Start the HTTP API (and WebSocket endpoint) on PORT, default 3000.",
     "zygo serve [--port N] [--host ADDR]", cmd_serve},
    {"worker", "Run the job queues' workers only (no HTTP); SIGTERM lets running jobs finish.",
     "zygo worker [--queues a,b] [--concurrency N]", cmd_worker},
    {"migrate", "Apply pending database migrations and exit.", "zygo migrate", cmd_migrate},
    {"openapi", "Print the OpenAPI 3.1 document of the API.", "zygo openapi", cmd_openapi},
    {"version", "Print the version.", "zygo version", cmd_version},
    {"admin", "Administer the installation: make a user a global admin.",
     "zygo admin create --email EMAIL [--tenant SLUG]", admin_cli},
    {"help", "Show the commands, or the usage of one.", "zygo help [COMMAND]", cmd_help},
};

static const struct command *find_command(const char *name)
{
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static void print_overview(FILE *f)
{
    fprintf(f, "Usage: zygo COMMAND [OPTIONS]\n\nCommands:\n");
    for (size_t i = 0; i < ARRAY_LEN(commands); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nConfiguration comes from the environment and .env; see README.md.\n"
               "Run 'zygo COMMAND --help' for a command's options.\n");
}

static int cmd_help(int argc, char **argv)
{
    if (argc > 2) {
        usage_error("help", "expects at most one command name");
        return EXIT_USAGE;
    }
    if (argc == 2 && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0) {
        const struct command *c = find_command(argv[1]);
        if (!c) {
            usage_error("help", "unknown command '%s'", argv[1]);
            return EXIT_USAGE;
        }
        printf("Usage: %s\n\n%s\n", c->usage, c->summary);
        return 0;
    }
    print_overview(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        print_overview(stderr);
        return EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        name = "help";
    else if (strcmp(name, "--version") == 0)
        name = "version";
    const struct command *c = find_command(name);
    if (!c) {
        fprintf(stderr, "zygo: unknown command '%s'\n\n", argv[1]);
        print_overview(stderr);
        return EXIT_USAGE;
    }
    return c->run(argc - 1, argv + 1);
}
