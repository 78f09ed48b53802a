/* Configuration: defaults, precedence, .env syntax, every validation error at once,
 * production strictness, development secrets. */
#include "lib/common.h"

#include <criterion/criterion.h>
#include <sys/stat.h>

#include "lib/config.h"

static char dir[256];
static char data_env[300], file_env[400], env_path[300];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/zygo-config-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(data_env, sizeof(data_env), "ZYGO_DATA_DIR=%s/data", dir);
    snprintf(env_path, sizeof(env_path), "%s/.env", dir);
    snprintf(file_env, sizeof(file_env), "ZYGO_ENV_FILE=%s", env_path);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(config, .init = setup, .fini = teardown);

static void write_env(const char *text)
{
    FILE *f = fopen(env_path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
}

static const char *KEY =
    "ENCRYPTION_KEY=00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
static const char *JWT = "JWT_SECRET=0123456789abcdef0123456789abcdef";

static bool has_error(const struct config_errors *e, const char *needle)
{
    for (size_t i = 0; i < e->n; i++)
        if (strstr(e->v[i], needle))
            return true;
    return false;
}

Test(config, development_defaults_and_generated_secrets)
{
    char *env[] = {data_env, file_env, NULL};
    struct config c;
    struct config_errors e;
    cr_assert_eq(config_load(&c, env, &e), 0);
    cr_assert_eq(c.env, ENV_DEVELOPMENT);
    cr_assert_eq(c.port, 3000);
    cr_assert_str_eq(c.host, "127.0.0.1");
    cr_assert_str_eq(c.jwt_expires_in, "7d");
    cr_assert_eq(c.jwt_expires_s, 7 * 86400);
    cr_assert_eq(c.database_pool_max, 10);
    cr_assert_null(c.database_url);
    cr_assert_eq(c.log_level, LOG_INFO);
    cr_assert_eq(c.ncors_origins, 3, "spec origins + localhost:5173 in development");
    cr_assert_str_eq(c.cors_origins[2], "http://localhost:5173");
    cr_assert(c.secrets_generated);
    cr_assert_geq(strlen(c.jwt_secret), 32);
    char first[128];
    snprintf(first, sizeof(first), "%s", c.jwt_secret);
    config_free(&c);

    char path[400];
    snprintf(path, sizeof(path), "%s/data/dev-secrets.env", dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600);
    cr_assert_eq(config_load(&c, env, &e), 0);
    cr_assert_str_eq(c.jwt_secret, first, "the same secrets on the next start");
    config_free(&c);
}

Test(config, environment_wins_over_dotenv)
{
    write_env("# comment\nexport PORT=4000\nAPP_URL=\"http://a.example\" # trailing\n"
              "LOG_LEVEL='debug'\nSMTP_HOST = mail.example \nEMPTY=\n");
    char *env[] = {data_env, file_env, "PORT=5000", NULL};
    struct config c;
    struct config_errors e;
    cr_assert_eq(config_load(&c, env, &e), 0);
    cr_assert_eq(c.port, 5000);
    cr_assert_str_eq(c.app_url, "http://a.example");
    cr_assert_eq(c.log_level, LOG_DEBUG);
    cr_assert_str_eq(c.smtp_host, "mail.example");
    cr_assert_str_eq(c.api_url, "http://localhost:5000");
    config_free(&c);
}

Test(config, every_problem_reported_at_once)
{
    char *env[] = {data_env,
                   file_env,
                   "NODE_ENV=production",
                   "PORT=70000",
                   "DATABASE_POOL_MAX=0",
                   "JWT_SECRET=tooshort",
                   "ENCRYPTION_KEY=xyz",
                   "JWT_EXPIRES_IN=soon",
                   "REDIS_URL=http://nope",
                   "EMAIL_FROM=not-an-email",
                   "CORS_ORIGINS=https://ok.example,https://bad.example/path",
                   "HTTP_BODY_LIMIT=-1",
                   NULL};
    struct config c;
    struct config_errors e;
    cr_assert_eq(config_load(&c, env, &e), -1);
    const char *want[] = {
        "PORT",      "DATABASE_POOL_MAX", "JWT_SECRET",   "ENCRYPTION_KEY",  "JWT_EXPIRES_IN",
        "REDIS_URL", "EMAIL_FROM",        "CORS_ORIGINS", "HTTP_BODY_LIMIT", "APP_URL",
        "API_URL"};
    for (size_t i = 0; i < ARRAY_LEN(want); i++)
        cr_assert(has_error(&e, want[i]), "%s not reported", want[i]);
    cr_assert_eq(e.n, ARRAY_LEN(want));
    config_errors_free(&e);
    config_free(&c);
}

Test(config, production_with_everything_set)
{
    char *env[] = {data_env,
                   file_env,
                   "NODE_ENV=production",
                   (char *)JWT,
                   (char *)KEY,
                   "APP_URL=https://app.zygo.tech",
                   "API_URL=https://api.zygo.tech",
                   NULL};
    struct config c;
    struct config_errors e;
    cr_assert_eq(config_load(&c, env, &e), 0);
    cr_assert_str_eq(c.host, "0.0.0.0");
    cr_assert_not(c.secrets_generated);
    cr_assert_eq(c.encryption_key[0], 0x00);
    cr_assert_eq(c.encryption_key[31], 0xff);
    cr_assert_eq(c.ncors_origins, 2);
    config_free(&c);
}

Test(config, dotenv_syntax_error_reported_with_line)
{
    write_env("GOOD=1\nthis is not an assignment\n");
    char *env[] = {data_env, file_env, NULL};
    struct config c;
    struct config_errors e;
    cr_assert_eq(config_load(&c, env, &e), -1);
    cr_assert(has_error(&e, ".env:2"));
    config_errors_free(&e);
    config_free(&c);
}

Test(config, durations)
{
    cr_assert_eq(config_parse_duration("900"), 900);
    cr_assert_eq(config_parse_duration("15m"), 900);
    cr_assert_eq(config_parse_duration("12h"), 43200);
    cr_assert_eq(config_parse_duration("7d"), 604800);
    cr_assert_eq(config_parse_duration("2w"), 1209600);
    cr_assert_eq(config_parse_duration("30s"), 30);
    cr_assert_eq(config_parse_duration("7 days"), -1);
    cr_assert_eq(config_parse_duration("-5m"), -1);
    cr_assert_eq(config_parse_duration(""), -1);
    cr_assert_eq(config_parse_duration("99999999999999999999d"), -1);
}

Test(config, dotenv_quotes_and_escapes)
{
    char **v = NULL;
    size_t n = 0;
    cr_assert_eq(config_parse_dotenv("A=\"x\\ny\"\nB='a#b'\nC=plain # c\nexport D=1\n", &v, &n), 0);
    cr_assert_eq(n, 4);
    cr_assert_str_eq(v[0], "A=x\ny");
    cr_assert_str_eq(v[1], "B=a#b");
    cr_assert_str_eq(v[2], "C=plain");
    cr_assert_str_eq(v[3], "D=1");
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
    v = NULL;
    n = 0;
    cr_assert_eq(config_parse_dotenv("A=\"unterminated\n", &v, &n), 1);
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

Test(config, identity_and_limit_settings)
{
    char *ok[] = {data_env, file_env, "ACCESS_TOKEN_EXPIRES_IN=5m",
                  "REFRESH_TOKEN_REUSE_INTERVAL=0", "RATE_LIMIT_ENABLED=false",
                  "RATE_LIMIT_IP_PER_MINUTE=30", "TRUST_PROXY=1", NULL};
    struct config c;
    struct config_errors e;
    cr_assert_eq(config_load(&c, ok, &e), 0);
    cr_assert_eq(c.access_token_ttl_s, 300);
    cr_assert_eq(c.refresh_reuse_interval_s, 0);
    cr_assert_not(c.rate_limit_enabled);
    cr_assert_eq(c.rate_limit_ip_per_minute, 30);
    cr_assert(c.trust_proxy);
    /* every variable stays readable for modules with families of settings (OAUTH_*) */
    bool seen = false;
    for (size_t i = 0; c.vars[i]; i++)
        seen |= strcmp(c.vars[i], "TRUST_PROXY=1") == 0;
    cr_assert(seen);
    config_free(&c);

    char *bad[] = {data_env, file_env, "ACCESS_TOKEN_EXPIRES_IN=2d", "RATE_LIMIT_ENABLED=maybe",
                   "REFRESH_TOKEN_REUSE_INTERVAL=-1", NULL};
    cr_assert_eq(config_load(&c, bad, &e), -1);
    cr_assert(has_error(&e, "ACCESS_TOKEN_EXPIRES_IN"));
    cr_assert(has_error(&e, "RATE_LIMIT_ENABLED"));
    cr_assert(has_error(&e, "REFRESH_TOKEN_REUSE_INTERVAL"));
    config_errors_free(&e);
    config_free(&c);
}
