/*
 * config.h — the validated configuration (the specification's env.ts + config/index.ts).
 *
 * Sources, strongest first: the process environment, then the .env file (ZYGO_ENV_FILE, default
 * ".env"). In development and test, missing JWT_SECRET / ENCRYPTION_KEY are generated once into
 * <data dir>/dev-secrets.env (mode 0600) so `make run` needs no hand-written config; staging and
 * production refuse to start without them. Every problem is reported at once.
 *
 * Owns every string in struct config; config_free() releases them.
 */
#ifndef ZYGO_CONFIG_H
#define ZYGO_CONFIG_H

#include "lib/common.h"
#include "lib/log.h"

enum zy_env { ENV_DEVELOPMENT, ENV_STAGING, ENV_PRODUCTION, ENV_TEST };

struct config {
    enum zy_env env;
    const char *node_env;
    int port;
    char *host;
    char *app_url;
    char *api_url;
    char *data_dir;

    char *database_url;           /* NULL: SQLite at <data_dir>/zygo.db */
    char *database_migration_url; /* owner role for migrations (PostgreSQL); NULL: database_url */
    int database_pool_max;
    int database_pool_timeout_ms;      /* wait for a free pooled connection, then 503 */
    int database_pipeline;             /* shared pipelined connections (0: none) */
    int database_statement_timeout_ms; /* PostgreSQL statement_timeout */
    int database_connect_timeout_s;
    int database_idle_timeout_s; /* pooled connections idle longer are closed */
    char *redis_url;

    char *jwt_secret;
    char *jwt_expires_in; /* as given, e.g. "7d": the lifetime of a session (refresh tokens) */
    long long jwt_expires_s;
    long long access_token_ttl_s;      /* ACCESS_TOKEN_EXPIRES_IN, default 15m */
    long long refresh_reuse_interval_s; /* two tabs refreshing at once both succeed */
    char *encryption_key_hex;
    unsigned char encryption_key[32];
    bool secrets_generated; /* development secrets came from dev-secrets.env */

    char *stripe_secret_key;
    char *stripe_webhook_secret;
    char *hetzner_api_key;
    char *smtp_host;
    int smtp_port;
    char *smtp_user;
    char *smtp_pass;
    char *email_from;

    char **cors_origins; /* NULL-terminated */
    size_t ncors_origins;
    bool rate_limit_enabled;
    unsigned rate_limit_ip_per_minute;
    unsigned rate_limit_user_per_minute;
    bool trust_proxy; /* client IP from X-Forwarded-For (only behind a proxy you run) */
    enum log_level log_level;
    bool log_pretty_allowed; /* development: pretty output when stdout is a terminal */

    /* Every variable as loaded (environment first, then .env), NULL-terminated "NAME=value",
     * for modules that read families of variables (OAUTH_<NAME>_*). */
    char **vars;

    /* HTTP limits (ours; see README) */
    size_t http_body_limit;
    size_t http_header_limit;
    int http_idle_timeout_s;
    int http_request_timeout_s;
    int http_max_connections;
    int http_io_threads;
    int http_workers;
    int shutdown_timeout_s;

    /* Job workers (src/jobs) */
    bool jobs_in_process;         /* JOBS_IN_PROCESS: `zygo serve` runs the queues' workers */
    int jobs_concurrency;         /* JOBS_CONCURRENCY: 0 = each queue's own */
    int jobs_lease_ms;            /* JOBS_LEASE_MS: a claimed job's lease, renewed by heartbeat */
    int jobs_poll_ms;             /* JOBS_POLL_MS: idle wait between looks at the queues */
    int jobs_sweep_interval_ms;   /* JOBS_SWEEP_INTERVAL_MS: stalled recovery and retention */

    /* Workflows (services/workflow.h) */
    bool workflow_http_allow_private; /* WORKFLOW_HTTP_ALLOW_PRIVATE: steps may reach loopback and
                                         private addresses (tests, closed networks only) */
    int workflow_schedule_interval_ms; /* WORKFLOW_SCHEDULE_INTERVAL_MS: how often a process
                                          looks for due schedules; 0: never in this process */
    int workflow_retention_days; /* WORKFLOW_RETENTION_DAYS: ended executions kept this long;
                                    0: forever */
};

/* Problems found while loading; each is one human-readable line. */
struct config_errors {
    char **v;
    size_t n;
};

/*
 * Loads from `envp` (a NULL-terminated "NAME=value" array like environ) and the .env file it
 * names (ZYGO_ENV_FILE, default ".env"; a missing file is fine). Returns 0, or -1 with every
 * problem in errs. The caller frees both with config_free / config_errors_free.
 */
int config_load(struct config *cfg, char *const *envp, struct config_errors *errs);
void config_free(struct config *cfg);
void config_errors_free(struct config_errors *errs);

/* Parses a duration like "900", "15m", "7d", "12h", "30s" into seconds; -1 if malformed. */
long long config_parse_duration(const char *s);

/* Parses one .env file's text into NAME=value pairs (appended to *out, count in *n). Supports
 * comments, `export `, single and double quotes (with \n escapes in double quotes). Returns the
 * 1-based line of the first syntax error, or 0. */
int config_parse_dotenv(const char *text, char ***out, size_t *n);

#endif
