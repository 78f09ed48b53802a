/*
 * admin_cli.h — `zygo admin …`: the operator's commands that have no API on purpose.
 *
 *   zygo admin create --email EMAIL [--tenant SLUG]
 *       Makes an existing user a global admin. When the email belongs to users in several
 *       tenants, --tenant names which. Idempotent; audited as admin.global_admin_grant in the
 *       user's tenant (actor null: the operator at the command line).
 *
 * Configuration (DATABASE_URL, …) comes from the environment and .env as for `zygo serve`;
 * pending migrations are applied first, as `zygo migrate` would.
 */
#ifndef ZYGO_SERVICES_ADMIN_CLI_H
#define ZYGO_SERVICES_ADMIN_CLI_H

/* argv[0] is "admin" (main.c passes the command's own argv). Returns the exit status: 0 done
 * (or nothing to do), 1 failure (message on stderr), 2 usage error. */
int admin_cli(int argc, char **argv);

#endif
