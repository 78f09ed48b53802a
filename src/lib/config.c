/* config.c — environment + .env loading and validation; see config.h. */
#include "lib/common.h"

#include <ctype.h>
#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/buf.h"
#include "lib/config.h"

#define DOTENV_MAX (1u << 20)

/* Where values come from while loading: the environment wins over the .env file. */
struct config_src {
    char *const *envp;
    char **dotenv;
    size_t ndotenv;
    char **dev; /* development secrets file */
    size_t ndev;
    struct config_errors *errs;
};

static void add_error(struct config_errors *e, const char *fmt, ...) ZY_PRINTF(2, 3);
static void add_error(struct config_errors *e, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    e->v = xrealloc(e->v, (e->n + 1) * sizeof(*e->v));
    e->v[e->n++] = xstrdup(msg);
}

static const char *pairs_find(char *const *v, size_t n, const char *name)
{
    size_t len = strlen(name);
    for (size_t i = 0; v && (n == SIZE_MAX ? v[i] != NULL : i < n); i++)
        if (strncmp(v[i], name, len) == 0 && v[i][len] == '=')
            return v[i] + len + 1;
    return NULL;
}

/* The value of name, or NULL when unset or empty (an empty variable counts as unset). */
static const char *get(const struct config_src *s, const char *name)
{
    const char *v = pairs_find(s->envp, SIZE_MAX, name);
    if (!v)
        v = pairs_find(s->dotenv, s->ndotenv, name);
    if (!v)
        v = pairs_find(s->dev, s->ndev, name);
    return v && *v ? v : NULL;
}

static char *get_dup(const struct config_src *s, const char *name, const char *def)
{
    const char *v = get(s, name);
    return v ? xstrdup(v) : def ? xstrdup(def) : NULL;
}

static bool parse_ll(const char *v, long long *out)
{
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        return false;
    *out = x;
    return true;
}

static long long get_int(const struct config_src *s, const char *name, long long def, long long min,
                         long long max)
{
    const char *v = get(s, name);
    long long x;
    if (!v)
        return def;
    if (!parse_ll(v, &x) || x < min || x > max) {
        add_error(s->errs, "%s: expected an integer from %lld to %lld, got \"%s\"", name, min, max,
                  v);
        return def;
    }
    return x;
}

static bool get_bool(const struct config_src *s, const char *name, bool def)
{
    const char *v = get(s, name);
    if (!v)
        return def;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        return true;
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        return false;
    add_error(s->errs, "%s: expected true or false, got \"%s\"", name, v);
    return def;
}

static bool is_http_url(const char *v)
{
    const char *rest = NULL;
    if (strncmp(v, "http://", 7) == 0)
        rest = v + 7;
    else if (strncmp(v, "https://", 8) == 0)
        rest = v + 8;
    if (!rest || !*rest || *rest == '/' || *rest == ':')
        return false;
    for (const char *p = v; *p; p++)
        if (isspace((unsigned char)*p) || (unsigned char)*p < 0x20)
            return false;
    return true;
}

static char *get_url(const struct config_src *s, const char *name, const char *def, bool required)
{
    const char *v = get(s, name);
    if (!v) {
        if (required)
            add_error(s->errs, "%s: required in this environment (an http(s) URL)", name);
        return def ? xstrdup(def) : NULL;
    }
    if (!is_http_url(v)) {
        add_error(s->errs, "%s: expected an http(s) URL, got \"%s\"", name, v);
        return def ? xstrdup(def) : NULL;
    }
    return xstrdup(v);
}

long long config_parse_duration(const char *s)
{
    if (!s || !*s)
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll(s, &end, 10);
    if (errno || end == s || n < 0)
        return -1;
    long long mul;
    if (*end == '\0' || strcmp(end, "s") == 0)
        mul = 1;
    else if (strcmp(end, "m") == 0)
        mul = 60;
    else if (strcmp(end, "h") == 0)
        mul = 3600;
    else if (strcmp(end, "d") == 0)
        mul = 86400;
    else if (strcmp(end, "w") == 0)
        mul = 7 * 86400;
    else
        return -1;
    if (n > (1LL << 40) / mul)
        return -1;
    return n * mul;
}

static bool parse_hex_key(const char *v, unsigned char out[32])
{
    if (strlen(v) != 64)
        return false;
    for (size_t i = 0; i < 32; i++) {
        int hi = zy_hexval((unsigned char)v[2 * i]), lo = zy_hexval((unsigned char)v[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

/* An origin is scheme://host[:port] with nothing after it. */
static bool is_origin(const char *v)
{
    if (!is_http_url(v))
        return false;
    const char *host = strstr(v, "://") + 3;
    return strchr(host, '/') == NULL;
}

static void push_pair(char ***out, size_t *n, const char *name, size_t nlen, const char *val,
                      size_t vlen)
{
    char *p = xmalloc(nlen + vlen + 2);
    memcpy(p, name, nlen);
    p[nlen] = '=';
    memcpy(p + nlen + 1, val, vlen);
    p[nlen + 1 + vlen] = '\0';
    *out = xrealloc(*out, (*n + 1) * sizeof(**out));
    (*out)[(*n)++] = p;
}

int config_parse_dotenv(const char *text, char ***out, size_t *n)
{
    int line = 0;
    const char *p = text;
    struct buf val;
    buf_init(&val, DOTENV_MAX);
    while (*p) {
        line++;
        const char *eol = strchr(p, '\n');
        const char *end = eol ? eol : p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (p == end || *p == '#' || (*p == '\r' && p + 1 == end))
            goto next;
        if (strncmp(p, "export ", 7) == 0)
            p += 7;
        const char *name = p;
        while (p < end && (isalnum((unsigned char)*p) || *p == '_'))
            p++;
        size_t nlen = (size_t)(p - name);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        if (nlen == 0 || p == end || *p != '=')
            goto bad;
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        buf_reset(&val);
        if (p < end && (*p == '"' || *p == '\'')) {
            char q = *p++;
            while (p < end && *p != q) {
                if (q == '"' && *p == '\\' && p + 1 < end) {
                    p++;
                    buf_putc(&val, *p == 'n' ? '\n' : *p == 't' ? '\t' : *p);
                } else {
                    buf_putc(&val, *p);
                }
                p++;
            }
            if (p == end)
                goto bad;
            p++;
            while (p < end && (*p == ' ' || *p == '\t' || *p == '\r'))
                p++;
            if (p < end && *p != '#')
                goto bad;
        } else {
            const char *v = p;
            const char *vend = v;
            while (p < end && !(*p == '#' && (p == v || p[-1] == ' ' || p[-1] == '\t'))) {
                if (*p != ' ' && *p != '\t' && *p != '\r')
                    vend = p + 1;
                p++;
            }
            buf_append(&val, v, (size_t)(vend - v));
        }
        push_pair(out, n, name, nlen, val.data ? val.data : "", val.len);
    next:
        p = eol ? eol + 1 : end;
        continue;
    bad:
        buf_free(&val);
        return line;
    }
    buf_free(&val);
    return 0;
}

static char *read_file(const char *path, bool *missing)
{
    *missing = false;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *missing = errno == ENOENT;
        return NULL;
    }
    struct buf b;
    buf_init(&b, DOTENV_MAX);
    char chunk[4096];
    size_t r;
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0)
        if (buf_append(&b, chunk, r) < 0)
            break;
    fclose(f);
    if (b.overflow) {
        buf_free(&b);
        return NULL;
    }
    return buf_detach(&b, NULL);
}

static void free_pairs(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Loads (or creates) <data_dir>/dev-secrets.env holding development-only secrets. */
static void load_dev_secrets(struct config_src *s, const char *data_dir)
{
    char path[4096];
    snprintf(path, sizeof(path), "%s/dev-secrets.env", data_dir);
    bool missing;
    char *text = read_file(path, &missing);
    if (!text && missing) {
        unsigned char rnd[64];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
            add_error(s->errs, "cannot generate development secrets: %s", strerror(errno));
            return;
        }
        struct buf b;
        buf_init(&b, 4096);
        buf_puts(&b, "# Development-only secrets generated by zygo on first start.\n"
                     "# Never use these in production: set JWT_SECRET and ENCRYPTION_KEY.\n"
                     "JWT_SECRET=");
        for (int i = 0; i < 32; i++)
            buf_printf(&b, "%02x", rnd[i]);
        buf_puts(&b, "\nENCRYPTION_KEY=");
        for (int i = 32; i < 64; i++)
            buf_printf(&b, "%02x", rnd[i]);
        buf_putc(&b, '\n');
        mkdir(data_dir, 0700);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0 || write(fd, b.data, b.len) != (ssize_t)b.len) {
            add_error(s->errs, "cannot write %s: %s", path, strerror(errno));
            if (fd >= 0)
                close(fd);
            buf_free(&b);
            return;
        }
        close(fd);
        text = buf_detach(&b, NULL);
    }
    if (!text) {
        add_error(s->errs, "cannot read %s: %s", path, strerror(errno));
        return;
    }
    int bad = config_parse_dotenv(text, &s->dev, &s->ndev);
    if (bad)
        add_error(s->errs, "%s:%d: syntax error", path, bad);
    free(text);
}

static void load_cors(struct config *cfg, const struct config_src *s)
{
    const char *v = get(s, "CORS_ORIGINS");
    char *list =
        v ? xstrdup(v)
          : xstrdup(cfg->env == ENV_DEVELOPMENT ? "https://app.zygo.tech,https://admin.zygo.tech,"
                                                  "http://localhost:5173"
                                                : "https://app.zygo.tech,https://admin.zygo.tech");
    char *save = NULL;
    for (char *tok = strtok_r(list, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        while (*tok == ' ')
            tok++;
        size_t len = strlen(tok);
        while (len && tok[len - 1] == ' ')
            tok[--len] = '\0';
        if (!len)
            continue;
        if (!is_origin(tok)) {
            add_error(s->errs, "CORS_ORIGINS: \"%s\" is not an origin (scheme://host[:port])", tok);
            continue;
        }
        cfg->cors_origins = xrealloc(cfg->cors_origins, (cfg->ncors_origins + 2) * sizeof(char *));
        cfg->cors_origins[cfg->ncors_origins++] = xstrdup(tok);
        cfg->cors_origins[cfg->ncors_origins] = NULL;
    }
    free(list);
    if (!cfg->cors_origins)
        cfg->cors_origins = xcalloc(1, sizeof(char *));
}

static void load_secrets(struct config *cfg, struct config_src *s)
{
    bool dev = cfg->env == ENV_DEVELOPMENT || cfg->env == ENV_TEST;
    if (dev && (!get(s, "JWT_SECRET") || !get(s, "ENCRYPTION_KEY"))) {
        load_dev_secrets(s, cfg->data_dir);
        cfg->secrets_generated = true;
    }
    cfg->jwt_secret = get_dup(s, "JWT_SECRET", NULL);
    if (!cfg->jwt_secret)
        add_error(s->errs, "JWT_SECRET: required (at least 32 characters)");
    else if (strlen(cfg->jwt_secret) < 32)
        add_error(s->errs, "JWT_SECRET: must be at least 32 characters (got %zu)",
                  strlen(cfg->jwt_secret));
    cfg->encryption_key_hex = get_dup(s, "ENCRYPTION_KEY", NULL);
    if (!cfg->encryption_key_hex)
        add_error(s->errs, "ENCRYPTION_KEY: required (64 hex characters = 32 bytes)");
    else if (!parse_hex_key(cfg->encryption_key_hex, cfg->encryption_key))
        add_error(s->errs, "ENCRYPTION_KEY: must be exactly 64 hex characters (32 bytes)");
}

int config_load(struct config *cfg, char *const *envp, struct config_errors *errs)
{
    memset(cfg, 0, sizeof(*cfg));
    memset(errs, 0, sizeof(*errs));
    struct config_src s = {.envp = envp, .errs = errs};

    const char *env_file = pairs_find(envp, SIZE_MAX, "ZYGO_ENV_FILE");
    env_file = env_file && *env_file ? env_file : ".env";
    bool missing;
    char *text = read_file(env_file, &missing);
    if (text) {
        int bad = config_parse_dotenv(text, &s.dotenv, &s.ndotenv);
        if (bad)
            add_error(errs, "%s:%d: syntax error", env_file, bad);
        free(text);
    } else if (!missing) {
        add_error(errs, "%s: cannot read (%s)", env_file, strerror(errno));
    }

    const char *env = get(&s, "NODE_ENV");
    static const char *const envs[] = {"development", "staging", "production", "test"};
    cfg->env = ENV_DEVELOPMENT;
    if (env) {
        size_t i;
        for (i = 0; i < ARRAY_LEN(envs) && strcmp(env, envs[i]) != 0; i++)
            ;
        if (i == ARRAY_LEN(envs))
            add_error(errs,
                      "NODE_ENV: expected development, staging, production or test, got "
                      "\"%s\"",
                      env);
        else
            cfg->env = (enum zy_env)i;
    }
    cfg->node_env = envs[cfg->env];
    bool dev = cfg->env == ENV_DEVELOPMENT || cfg->env == ENV_TEST;

    cfg->port = (int)get_int(&s, "PORT", 3000, 0, 65535);
    cfg->host = get_dup(&s, "HOST", dev ? "127.0.0.1" : "0.0.0.0");
    cfg->data_dir = get_dup(&s, "ZYGO_DATA_DIR", "data");
    cfg->app_url = get_url(&s, "APP_URL", dev ? "http://localhost:5173" : NULL, !dev);
    char api_default[64];
    snprintf(api_default, sizeof(api_default), "http://localhost:%d", cfg->port);
    cfg->api_url = get_url(&s, "API_URL", dev ? api_default : NULL, !dev);

    cfg->database_url = get_dup(&s, "DATABASE_URL", NULL);
    cfg->database_migration_url = get_dup(&s, "DATABASE_MIGRATION_URL", NULL);
    cfg->database_pool_max = (int)get_int(&s, "DATABASE_POOL_MAX", 10, 1, 1000);
    cfg->database_pool_timeout_ms = (int)get_int(&s, "DATABASE_POOL_TIMEOUT_MS", 5000, 0, 600000);
    cfg->database_pipeline = (int)get_int(&s, "DATABASE_PIPELINE", 2, 0, 16);
    cfg->database_statement_timeout_ms =
        (int)get_int(&s, "DATABASE_STATEMENT_TIMEOUT_MS", 30000, 0, 3600000);
    cfg->database_connect_timeout_s = (int)get_int(&s, "DATABASE_CONNECT_TIMEOUT", 10, 1, 600);
    cfg->database_idle_timeout_s = (int)get_int(&s, "DATABASE_IDLE_TIMEOUT", 20, 1, 86400);
    cfg->redis_url = get_dup(&s, "REDIS_URL", NULL);
    if (cfg->redis_url && strncmp(cfg->redis_url, "redis://", 8) != 0 &&
        strncmp(cfg->redis_url, "rediss://", 9) != 0)
        add_error(errs, "REDIS_URL: expected redis://… or rediss://…");

    load_secrets(cfg, &s);
    cfg->jwt_expires_in = get_dup(&s, "JWT_EXPIRES_IN", "7d");
    cfg->jwt_expires_s = config_parse_duration(cfg->jwt_expires_in);
    if (cfg->jwt_expires_s <= 0)
        add_error(errs, "JWT_EXPIRES_IN: expected a duration like 900, 15m, 12h or 7d, got \"%s\"",
                  cfg->jwt_expires_in);

    const char *ttl = get(&s, "ACCESS_TOKEN_EXPIRES_IN");
    cfg->access_token_ttl_s = config_parse_duration(ttl ? ttl : "15m");
    if (cfg->access_token_ttl_s <= 0 || cfg->access_token_ttl_s > 86400)
        add_error(errs, "ACCESS_TOKEN_EXPIRES_IN: expected a duration from 1s to 1d, got \"%s\"",
                  ttl);
    cfg->refresh_reuse_interval_s = get_int(&s, "REFRESH_TOKEN_REUSE_INTERVAL", 10, 0, 300);

    cfg->stripe_secret_key = get_dup(&s, "STRIPE_SECRET_KEY", NULL);
    cfg->stripe_webhook_secret = get_dup(&s, "STRIPE_WEBHOOK_SECRET", NULL);
    cfg->hetzner_api_key = get_dup(&s, "HETZNER_API_KEY", NULL);
    cfg->smtp_host = get_dup(&s, "SMTP_HOST", NULL);
    cfg->smtp_port = (int)get_int(&s, "SMTP_PORT", 0, 1, 65535);
    cfg->smtp_user = get_dup(&s, "SMTP_USER", NULL);
    cfg->smtp_pass = get_dup(&s, "SMTP_PASS", NULL);
    cfg->email_from = get_dup(&s, "EMAIL_FROM", NULL);
    if (cfg->email_from) {
        const char *at = strchr(cfg->email_from, '@');
        if (!at || at == cfg->email_from || !strchr(at, '.') || strchr(cfg->email_from, ' '))
            add_error(errs, "EMAIL_FROM: expected an email address, got \"%s\"", cfg->email_from);
    }

    load_cors(cfg, &s);
    cfg->rate_limit_enabled = get_bool(&s, "RATE_LIMIT_ENABLED", true);
    cfg->rate_limit_ip_per_minute =
        (unsigned)get_int(&s, "RATE_LIMIT_IP_PER_MINUTE", 600, 1, 1000000);
    cfg->rate_limit_user_per_minute =
        (unsigned)get_int(&s, "RATE_LIMIT_USER_PER_MINUTE", 1200, 1, 1000000);
    cfg->trust_proxy = get_bool(&s, "TRUST_PROXY", false);
    const char *lv = get(&s, "LOG_LEVEL");
    cfg->log_level = LOG_INFO;
    if (lv && log_level_parse(lv, &cfg->log_level) < 0)
        add_error(errs,
                  "LOG_LEVEL: expected trace, debug, info, warn, error, fatal or silent, "
                  "got \"%s\"",
                  lv);
    cfg->log_pretty_allowed = cfg->env == ENV_DEVELOPMENT;

    cfg->http_body_limit = (size_t)get_int(&s, "HTTP_BODY_LIMIT", 1 << 20, 1024, 1LL << 30);
    cfg->http_header_limit = (size_t)get_int(&s, "HTTP_HEADER_LIMIT", 16384, 1024, 1 << 20);
    cfg->http_idle_timeout_s = (int)get_int(&s, "HTTP_IDLE_TIMEOUT", 30, 1, 3600);
    cfg->http_request_timeout_s = (int)get_int(&s, "HTTP_REQUEST_TIMEOUT", 30, 1, 3600);
    cfg->http_max_connections = (int)get_int(&s, "HTTP_MAX_CONNECTIONS", 1024, 1, 100000);
    cfg->http_io_threads = (int)get_int(&s, "HTTP_IO_THREADS", 1, 1, 64);
    cfg->http_workers = (int)get_int(&s, "HTTP_WORKERS", 8, 1, 256);
    cfg->shutdown_timeout_s = (int)get_int(&s, "SHUTDOWN_TIMEOUT", 20, 0, 600);
    cfg->jobs_in_process = get_bool(&s, "JOBS_IN_PROCESS", true);
    cfg->jobs_concurrency = (int)get_int(&s, "JOBS_CONCURRENCY", 0, 0, 256);
    cfg->jobs_lease_ms = (int)get_int(&s, "JOBS_LEASE_MS", 30000, 100, 3600000);
    cfg->jobs_poll_ms = (int)get_int(&s, "JOBS_POLL_MS", 200, 1, 60000);
    cfg->jobs_sweep_interval_ms = (int)get_int(&s, "JOBS_SWEEP_INTERVAL_MS", 60000, 10, 86400000);
    cfg->workflow_http_allow_private = get_bool(&s, "WORKFLOW_HTTP_ALLOW_PRIVATE", false);
    cfg->workflow_schedule_interval_ms =
        (int)get_int(&s, "WORKFLOW_SCHEDULE_INTERVAL_MS", 1000, 0, 3600000);
    cfg->workflow_retention_days = (int)get_int(&s, "WORKFLOW_RETENTION_DAYS", 30, 0, 36500);

    size_t nenv = 0;
    while (envp && envp[nenv])
        nenv++;
    cfg->vars = xcalloc(nenv + s.ndotenv + 1, sizeof(char *));
    for (size_t i = 0; i < nenv; i++)
        cfg->vars[i] = xstrdup(envp[i]);
    for (size_t i = 0; i < s.ndotenv; i++)
        cfg->vars[nenv + i] = s.dotenv[i]; /* handed over */
    free(s.dotenv);
    free_pairs(s.dev, s.ndev);
    return errs->n ? -1 : 0;
}

void config_free(struct config *cfg)
{
    char **strs[] = {&cfg->host,
                     &cfg->app_url,
                     &cfg->api_url,
                     &cfg->data_dir,
                     &cfg->database_url,
                     &cfg->database_migration_url,
                     &cfg->redis_url,
                     &cfg->jwt_secret,
                     &cfg->jwt_expires_in,
                     &cfg->encryption_key_hex,
                     &cfg->stripe_secret_key,
                     &cfg->stripe_webhook_secret,
                     &cfg->hetzner_api_key,
                     &cfg->smtp_host,
                     &cfg->smtp_user,
                     &cfg->smtp_pass,
                     &cfg->email_from};
    for (size_t i = 0; i < ARRAY_LEN(strs); i++) {
        free(*strs[i]);
        *strs[i] = NULL;
    }
    for (size_t i = 0; cfg->vars && cfg->vars[i]; i++)
        free(cfg->vars[i]);
    free(cfg->vars);
    cfg->vars = NULL;
    for (size_t i = 0; i < cfg->ncors_origins; i++)
        free(cfg->cors_origins[i]);
    free(cfg->cors_origins);
    cfg->cors_origins = NULL;
    cfg->ncors_origins = 0;
}

void config_errors_free(struct config_errors *errs)
{
    free_pairs(errs->v, errs->n);
    errs->v = NULL;
    errs->n = 0;
}
