/*
 * main.c — the `zygo` command line: serve, migrate, openapi, version, help.
 *
 * Owns process start-up and shutdown: configuration, logger, database, migrations, the app
 * and the HTTP server, and the signal wait that turns SIGTERM/SIGINT into a graceful stop.
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
#include "lib/config.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "routes/routes.h"
#include "services/admin_cli.h"
#include "services/database.h"
#include "services/oauth.h"

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
    if (server_start(&srv, app, &so, err, sizeof(err)) < 0) {
        log_msg(LOG_FATAL, "%s", err);
        goto out;
    }
    log_msg(LOG_INFO, "Server running on http://%s:%d", cfg.host, server_port(srv));
    log_msg(LOG_INFO, "Environment: %s", cfg.node_env);

    int sig = 0;
    sigwait(&set, &sig);
    log_msg(LOG_INFO, "received %s, shutting down (finishing in-flight requests)",
            sig == SIGTERM ? "SIGTERM" : "SIGINT");
    unsigned left = server_shutdown(srv, (unsigned)cfg.shutdown_timeout_s);
    if (left)
        log_msg(LOG_WARN, "%u request(s) still running at the shutdown deadline", left);
    log_msg(LOG_INFO, "stopped");
    rc = 0;
out:
    server_free(srv);
    app_free(app);
    db_close(db);
    config_free(&cfg);
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
