/* admin_cli.c — see admin_cli.h. */
#include "lib/common.h"

#include <getopt.h>

#include "db/db.h"
#include "db/migrate.h"
#include "lib/config.h"
#include "lib/jsonx.h"
#include "lib/log.h"
#include "repos/admin.h"
#include "repos/audit.h"
#include "services/admin_cli.h"
#include "services/database.h"

extern char **environ;

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* Users listed when an email is ambiguous. */
#define AMBIGUOUS_SHOWN 10

static const char usage_text[] =
    "Usage: zygo admin create --email EMAIL [--tenant SLUG]\n"
    "\n"
    "Administer the installation from the command line.\n"
    "\n"
    "Commands:\n"
    "  create    Make an existing user a global admin (all tenants, /api/v1/admin).\n"
    "\n"
    "Options of create:\n"
    "  --email EMAIL   the user's email (any case)\n"
    "  --tenant SLUG   the user's tenant, required when the email exists in several\n"
    "  --help          show this help\n"
    "\n"
    "Configuration (DATABASE_URL, ...) comes from the environment and .env.\n";

static int usage_error(const char *fmt, ...) ZY_PRINTF(1, 2);
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zygo admin: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nRun 'zygo admin --help' for usage.\n");
    return EXIT_USAGE;
}

static int fail(const char *fmt, ...) ZY_PRINTF(1, 2);
static int fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "zygo admin create: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return EXIT_FAIL;
}

/* In the open transaction on c (bypass on): find the one user and promote them. */
static int promote(struct db_conn *c, const char *email, const char *slug)
{
    struct admin_user_ref u[AMBIGUOUS_SHOWN];
    int n = admin_users_by_email(c, email, slug, u, AMBIGUOUS_SHOWN);
    if (n < 0)
        return fail("database error: %s", db_errmsg(c));
    if (n == 0)
        return slug ? fail("no user with email %s in tenant '%s'", email, slug)
                    : fail("no user with email %s", email);
    if (n > 1) {
        fprintf(stderr,
                "zygo admin create: %s belongs to users in %d tenants; choose one with "
                "--tenant SLUG:\n",
                email, n);
        for (int i = 0; i < n && i < AMBIGUOUS_SHOWN; i++)
            fprintf(stderr, "  %s\n", u[i].tenant_slug);
        return EXIT_FAIL;
    }
    if (u[0].is_global_admin) {
        printf("%s (tenant %s, user %s) is already a global admin; nothing to do.\n", email,
               u[0].tenant_slug, u[0].id);
        return 0;
    }
    char now[48];
    zy_iso_now(now);
    if (admin_user_set_global(c, u[0].id, true, now) != 1)
        return fail("could not update the user: %s", db_errmsg(c));
    json_t *meta = json_pack("{s:s}", "via", "cli");
    struct audit_entry e = {
        .tenant_id = u[0].tenant_id,
        .action = "admin.global_admin_grant",
        .resource_type = "user",
        .resource_id = u[0].id,
        .metadata = meta,
    };
    int rc = audit_write(c, &e);
    json_decref(meta);
    if (rc < 0)
        return fail("could not write the audit log: %s", db_errmsg(c));
    if (db_commit(c) < 0)
        return fail("could not commit: %s", db_errmsg(c));
    printf("Promoted %s (tenant %s, user %s) to global admin.\n", email, u[0].tenant_slug, u[0].id);
    if (strcmp(u[0].status, "active") != 0)
        printf("Note: the user's status is '%s'; they cannot sign in until it is active.\n",
               u[0].status);
    return 0;
}

static int run_create(const char *email, const char *slug)
{
    struct config cfg;
    struct config_errors errs;
    if (config_load(&cfg, environ, &errs) < 0) {
        fprintf(stderr, "zygo: invalid configuration (%zu problem%s):\n", errs.n,
                errs.n == 1 ? "" : "s");
        for (size_t i = 0; i < errs.n; i++)
            fprintf(stderr, "  - %s\n", errs.v[i]);
        config_errors_free(&errs);
        config_free(&cfg);
        return EXIT_FAIL;
    }
    config_errors_free(&errs);
    log_init(cfg.log_level, false, 2);
    struct db *db = NULL;
    struct migrate_report rep;
    char err[1024];
    int rc = EXIT_FAIL;
    int orc = database_open(&cfg, &db, &rep, err, sizeof(err));
    migrate_report_free(&rep);
    if (orc < 0) {
        fprintf(stderr, "zygo admin create: database: %s\n", err);
        goto out;
    }
    struct db_conn *c = db_acquire(db, err, sizeof(err));
    if (!c) {
        fprintf(stderr, "zygo admin create: database: %s\n", err);
        goto out;
    }
    /* the operator acts across tenants: the explicit bypass, as global-admin work */
    if (db_set_rls_bypass(c, true) < 0 || db_begin(c) < 0)
        rc = fail("database error: %s", db_errmsg(c));
    else
        rc = promote(c, email, slug);
    db_rollback(c); /* no-op after the commit */
    db_release(c);
out:
    db_close(db);
    config_free(&cfg);
    return rc;
}

static int cmd_create(int argc, char **argv)
{
    static const struct option opts[] = {{"email", required_argument, NULL, 'e'},
                                         {"tenant", required_argument, NULL, 't'},
                                         {"help", no_argument, NULL, 'h'},
                                         {0}};
    const char *email = NULL, *slug = NULL;
    optind = 0; /* GNU getopt: start afresh (this may not be the first parse in the process) */
    opterr = 0;
    int opt;
    while ((opt = getopt_long(argc, argv, "+h", opts, NULL)) != -1) {
        switch (opt) {
        case 'h':
            fputs(usage_text, stdout);
            return 0;
        case 'e':
            email = optarg;
            break;
        case 't':
            slug = optarg;
            break;
        default:
            return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    if (!email || !*email)
        return usage_error("create needs --email EMAIL");
    if (strlen(email) > 255 || !strchr(email, '@'))
        return usage_error("'%s' is not an email address", email);
    if (slug && !*slug)
        return usage_error("--tenant needs a tenant slug");
    return run_create(email, slug);
}

int admin_cli(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("missing command (create)");
    const char *sub = argv[1];
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0 || strcmp(sub, "help") == 0) {
        fputs(usage_text, stdout);
        return 0;
    }
    if (strcmp(sub, "create") == 0)
        return cmd_create(argc - 1, argv + 1);
    return usage_error("unknown command '%s'", sub);
}
