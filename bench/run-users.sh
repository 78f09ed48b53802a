#!/usr/bin/env bash
# bench/run-users.sh — an authenticated list on SQLite, and logins. Two parts, in one run:
#
# 1. GET /api/v1/users?page=1&limit=20 with `Authorization: Bearer <access token>`: zygo
#    (build/release/zygo serve, its real route: JWT, session row, roles and permissions,
#    canViewUsers, count + page of the tenant's users) against the specification's stack doing
#    the same (bench/hono/app.mjs with SQLITE_PATH: hono/jwt with the same secret, better-sqlite3
#    on the same database file, read-only). Both behind their global middleware, timed with wrk
#    like bench/run.sh (bench/lib.sh), the same token for both; the table has the ratios.
# 2. Logins, zygo only: POST /api/v1/auth/login (argon2id, by design the bottleneck) with
#    LOGIN_CONNECTIONS connections for DURATION, and, at the same time, GET /health with a second
#    wrk at HEALTH_CONNECTIONS connections: logins/s, logins/s per CPU of the server, and the
#    p99 of /health while the logins keep the worker pool busy (target < 10 ms).
#
# Set-up: one database file in a temporary ZYGO_DATA_DIR. zygo creates it (migrations) and signs
# up an owner (POST /api/v1/auth/signup: tenant, owner role, session, tokens); then, with zygo
# stopped, sqlite3 adds USERS users to that tenant. The owner's access token (ACCESS_TOKEN_EXPIRES_IN
# =1h, issuer API_URL, fixed for the run whatever the port) is what wrk sends to both servers.
# Before timing a server the script checks its answer against the database (the page and the
# total as sqlite3 reads them, deep-equal in node) and the middleware headers.
#
#   bench/run-users.sh
#   ROUNDS=2 bench/run-users.sh
#   ZYGO_CONFIGS="defaults: w2:HTTP_WORKERS=2" bench/run-users.sh
#
# Environment (all optional): those of bench/run.sh (DURATION=10s WARMUP=5s THREADS=1
# CONNECTIONS=64 ROUNDS=1 ORIGIN PIN ZYGO_REV ZYGO_BIN RESULTS_DIR NO_INSTALL QUIET_WAIT RETRIES
# BENCH_WAIT), and
#   ZYGO_CONFIGS="defaults:"  zygo variants for part 1: label:VAR=value[,VAR=value...]
#   USERS=200                 users added to the tenant (besides the owner)
#   LOGIN_CONNECTIONS=16  HEALTH_CONNECTIONS=4  LOGIN_DURATION=$DURATION   part 2
#   SKIP_LOGIN=1  SKIP_LIST=1 part 1 only, part 2 only
#   PERF=1                    also profile zygo under the list load (perf, 3 s) into perf.txt
#                             (self) and perf-children.txt (inclusive); PERF_CALLGRAPH=dwarf for
#                             whole stacks through libraries built without frame pointers
#
# Needs: wrk, curl, node + npm, sqlite3 (apt-get when missing), bench/hono's packages (npm ci),
# zygo's build (make). Results go to RESULTS_DIR/<UTC time>-users/. It waits while another
# benchmark holds bench/lib.sh's lock. Takes about (WARMUP + DURATION) × servers × ROUNDS plus
# LOGIN_DURATION and ~15 s of set-up.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

ZYGO_CONFIGS=${ZYGO_CONFIGS:-"defaults:"}
USERS=${USERS:-200}
LOGIN_CONNECTIONS=${LOGIN_CONNECTIONS:-16}
HEALTH_CONNECTIONS=${HEALTH_CONNECTIONS:-4}
LOGIN_DURATION=${LOGIN_DURATION:-$DURATION}
TARGET_RPS=5
TARGET_P99=1
BENCH_PATH='/api/v1/users?page=1&limit=20'
OWNER_EMAIL=owner@bench.example
OWNER_PASSWORD='Bench-Passw0rd!2026'

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zygo-bench.XXXXXX")
HEALTH_PID=
cleanup() {
    [ -n "$HEALTH_PID" ] && kill -TERM "$HEALTH_PID" 2>/dev/null
    bench_cleanup
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_lock 'bench/run(-pg)?\.sh'
need_tools
command -v sqlite3 >/dev/null || apt_install sqlite3
need_hono_deps
build_zygo zygo

# One database, secrets and issuer for the whole run, shared by both servers.
DATA=$TMP/data
mkdir -p "$DATA"
DB_FILE=$DATA/zygo.db
JWT_SECRET=$(random_hex 32)
ENC_KEY=$(random_hex 32)
API_URL=http://127.0.0.1:3000

# start_server KIND SETTINGS PORT NAME — sets SRV_PID (see launch in bench/lib.sh).
start_server() {
    local kind=$1 settings=$2 port=$3 name=$4
    local -a extra=()
    [ -n "$settings" ] && IFS=, read -ra extra <<<"$settings"
    if [ "$kind" = zygo ]; then
        # As in bench/run.sh: production mode, no rate limiting (the reference has none).
        launch "$name" "$port" "$DATA" HOME="$DATA" \
            NODE_ENV=production HOST=127.0.0.1 PORT="$port" LOG_LEVEL=info \
            ZYGO_DATA_DIR="$DATA" ZYGO_ENV_FILE="$DATA/absent.env" \
            RATE_LIMIT_ENABLED=false ACCESS_TOKEN_EXPIRES_IN=1h \
            APP_URL=http://127.0.0.1 API_URL="$API_URL" \
            JWT_SECRET="$JWT_SECRET" ENCRYPTION_KEY="$ENC_KEY" \
            "${extra[@]}" -- "$ZYGO_BIN" serve
    else
        launch "$name" "$port" "$HONO_DIR" HOME="$TMP" \
            NODE_ENV=production HOST=127.0.0.1 PORT="$port" LOG_LEVEL=info \
            SQLITE_PATH="$DB_FILE" JWT_SECRET="$JWT_SECRET" API_URL="$API_URL" \
            "${extra[@]}" -- "$NODE_BIN" app.mjs
    fi
}

start_zygo_any() {
    local _
    for _ in 1 2 3 4 5; do
        PORT_NOW=$(free_port)
        start_server zygo "" "$PORT_NOW" "$1" && return 0
    done
    die "$1: no free port after 5 tries"
}

# ---------------------------------------------------------------- database
say "bench: creating the database and signing up the owner (zygo serve)"
start_zygo_any setup
curl -s -o "$TMP/signup.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d "{\"email\":\"$OWNER_EMAIL\",\"password\":\"$OWNER_PASSWORD\",\"tenantName\":\"Bench Inc\",\"firstName\":\"Owner\"}" \
    "http://127.0.0.1:$PORT_NOW/api/v1/auth/signup" >"$TMP/signup.code"
stop_server
[ "$(cat "$TMP/signup.code")" = 201 ] || die "signup failed: $(cat "$TMP/signup.code") $(cat "$TMP/signup.json")"
TOKEN=$("$NODE_BIN" -p 'JSON.parse(require("fs").readFileSync(process.argv[1])).accessToken' "$TMP/signup.json")
TENANT=$("$NODE_BIN" -p 'const j=JSON.parse(require("fs").readFileSync(process.argv[1])); j.tenant.id' "$TMP/signup.json")
[ -f "$DB_FILE" ] || die "no database at $DB_FILE"

say "bench: adding $USERS users to tenant $TENANT (sqlite3, zygo stopped)"
sqlite3 "$DB_FILE" <<EOF
PRAGMA busy_timeout = 5000;
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $USERS)
INSERT INTO users (id, tenant_id, email, first_name, last_name, display_name, avatar, phone,
                   status, email_verified, phone_verified, mfa_enabled, last_login_at,
                   created_at, updated_at)
SELECT lower(hex(randomblob(4)) || '-' || hex(randomblob(2)) || '-4' ||
             substr(hex(randomblob(2)), 2) || '-a' || substr(hex(randomblob(2)), 2) || '-' ||
             hex(randomblob(6))),
       '$TENANT', 'user' || i || '@bench.example', 'First' || i, 'Last' || i,
       'First' || i || ' Last' || i, 'https://cdn.zygo.tech/avatars/' || i || '.png',
       '+1555' || printf('%07d', i), 'active', 1, i % 2 = 0, i % 5 = 0,
       CASE WHEN i % 10 = 0 THEN NULL
            ELSE strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || i || ' minutes') END,
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (i % 365) || ' days', '-' || i || ' seconds'),
       strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || (i % 100) || ' hours')
FROM n;
ANALYZE;
EOF
SQLITE_VERSION=$(sqlite3 "$DB_FILE" 'SELECT sqlite_version()')

# What both servers must answer: the first page as the database has it, as the API's User
# objects, and the total.
sqlite3 "$DB_FILE" >"$TMP/expected.json" <<EOF
SELECT json_object('data', (SELECT json_group_array(json(u)) FROM (
    SELECT json_object('id', id, 'tenantId', tenant_id, 'email', email, 'firstName', first_name,
        'lastName', last_name, 'displayName', display_name, 'avatar', avatar, 'phone', phone,
        'status', status,
        'emailVerified', json(CASE email_verified WHEN 1 THEN 'true' ELSE 'false' END),
        'phoneVerified', json(CASE phone_verified WHEN 1 THEN 'true' ELSE 'false' END),
        'mfaEnabled', json(CASE mfa_enabled WHEN 1 THEN 'true' ELSE 'false' END),
        'lastLoginAt', last_login_at, 'createdAt', created_at, 'updatedAt', updated_at) AS u
    FROM users WHERE tenant_id = '$TENANT' AND deleted_at IS NULL
    ORDER BY created_at, id LIMIT 20)),
  'pagination', json_object('page', 1, 'limit', 20, 'total', t.n,
                            'totalPages', (t.n + 19) / 20))
FROM (SELECT count(*) AS n FROM users WHERE tenant_id = '$TENANT' AND deleted_at IS NULL) t;
EOF

check_answer() {
    local url=$1 name=$2 h
    h=$(curl -s -D - -o "$TMP/body" ${ORIGIN:+-H "Origin: $ORIGIN"} \
        -H "Authorization: Bearer $TOKEN" "$url")
    "$NODE_BIN" -e '
        const fs = require("fs"), assert = require("assert");
        const [want, got] = process.argv.slice(1).map((f) => fs.readFileSync(f, "utf8"));
        let g;
        try { g = JSON.parse(got); } catch { console.error(got); process.exit(1); }
        try { assert.deepStrictEqual(g, JSON.parse(want)); }
        catch (e) { console.error(got.slice(0, 400)); console.error(e.message.slice(0, 2000)); process.exit(1); }
        ' "$TMP/expected.json" "$TMP/body" >&2 ||
        die "$name: GET $BENCH_PATH does not answer the page as the database has it"
    check_headers "$name" "$h"
    say "bench:   answer checked: $(tr -d '\n' <"$TMP/body" | head -c 100)…"
}

WRK_ARGS=(-t"$THREADS" -c"$CONNECTIONS" --timeout 5s -H "Authorization: Bearer $TOKEN")
[ -n "$ORIGIN" ] && WRK_ARGS+=(-H "Origin: $ORIGIN")

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS_DIR/$STAMP-users
mkdir -p "$OUT"
: >"$OUT/rows.tsv"

{
    echo "# zygo vs Hono — GET /api/v1/users?page=1&limit=20 (SQLite, authenticated), and logins"
    echo
    echo "- date: $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(machine_line)"
    echo "- SQLite $SQLITE_VERSION, one file (WAL) shared by both servers; 1 tenant, $((USERS + 1)) users (the owner + $USERS), the owner's access token"
    echo "- zygo: $("$ZYGO_BIN" --version 2>/dev/null | awk '{print $2}') ($ZYGO_DESC), NODE_ENV=production, RATE_LIMIT_ENABLED=false"
    echo "- hono: node $(node --version), hono $(hono_ver hono) (hono/jwt), @hono/node-server $(hono_ver @hono/node-server), pino $(hono_ver pino), better-sqlite3 $(hono_ver better-sqlite3) (read-only), NODE_ENV=production"
    echo "- wrk $(wrk --version 2>&1 | awk 'NR==1{print $2}'): -t$THREADS -c$CONNECTIONS -d$DURATION after a $WARMUP warm-up, Authorization${ORIGIN:+, Origin: $ORIGIN}${PIN:+, servers on CPU $SRV_CPUS, wrk on CPU $WRK_CPUS}; rounds: $ROUNDS"
    echo
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

# ---------------------------------------------------------------- part 1: the list
for round in $(seq 1 "$ROUNDS"); do
    [ -n "${SKIP_LIST:-}" ] && break
    measure hono hono "" "$round"
    for cfg in $ZYGO_CONFIGS; do
        settings=
        [ "${cfg#*:}" != "$cfg" ] && settings=${cfg#*:}
        measure "zygo-${cfg%%:*}" zygo "$settings" "$round"
    done
done
[ -n "${SKIP_LIST:-}" ] || summary_table

# PERF=1: a perf profile of zygo (defaults) under the list load, for WARMUP, into $OUT/perf.txt.
if [ -n "${PERF:-}" ] && command -v perf >/dev/null; then
    start_zygo_any zygo-perf
    perf_profile "http://127.0.0.1:$PORT_NOW$BENCH_PATH"
    stop_server
fi

# ---------------------------------------------------------------- part 2: logins (zygo only)
login_part() {
    say "bench: logins: POST /api/v1/auth/login -c$LOGIN_CONNECTIONS and GET /health -c$HEALTH_CONNECTIONS for $LOGIN_DURATION (zygo, defaults)"
    wait_quiet
    start_zygo_any zygo-login
    local base=http://127.0.0.1:$PORT_NOW body code
    body="{\"email\":\"$OWNER_EMAIL\",\"password\":\"$OWNER_PASSWORD\"}"
    code=$(curl -s -o "$TMP/login.json" -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "$body" "$base/api/v1/auth/login")
    [ "$code" = 200 ] || die "login: $code $(cat "$TMP/login.json")"
    grep -q accessToken "$TMP/login.json" || die "login: no accessToken in $(cat "$TMP/login.json")"
    local threads t0 t1 s0 s1 l h
    threads=$(proc_threads "$SRV_PID")
    s0=$(sys_busy_ticks)
    t0=$(proc_ticks "$SRV_PID")
    # shellcheck disable=SC2046 # pin_wrk: a command and its words, or nothing
    $(pin_wrk) wrk -t1 -c"$HEALTH_CONNECTIONS" -d"$LOGIN_DURATION" --timeout 5s --latency \
        ${ORIGIN:+-H "Origin: $ORIGIN"} -s "$LUA" "$base/health" >"$OUT/login-health.txt" &
    HEALTH_PID=$!
    # shellcheck disable=SC2046
    BENCH_LOGIN_BODY=$body BENCH_REPORT_LUA=$LUA $(pin_wrk) wrk -t1 -c"$LOGIN_CONNECTIONS" \
        -d"$LOGIN_DURATION" --timeout 10s --latency -s "$BENCH_DIR/login.lua" \
        "$base/api/v1/auth/login" >"$OUT/login.txt"
    wait "$HEALTH_PID"
    HEALTH_PID=
    t1=$(proc_ticks "$SRV_PID")
    s1=$(sys_busy_ticks)
    stop_server
    l=$(grep '^BENCH ' "$OUT/login.txt") || die "login: no result from wrk"
    h=$(grep '^BENCH ' "$OUT/login-health.txt") || die "login: no /health result from wrk"
    awk -v l="$l" -v h="$h" -v t0="$t0" -v t1="$t1" -v s0="$s0" -v s1="$s1" -v hz="$CLK_TCK" \
        -v ncpu="$(nproc)" -v lc="$LOGIN_CONNECTIONS" -v hc="$HEALTH_CONNECTIONS" -v thr="$threads" '
function f(line, k,   a, i, n, kv) { n = split(line, a, " ")
    for (i = 2; i <= n; i++) { split(a[i], kv, "="); if (kv[1] == k) return kv[2] + 0 } return 0 }
function errs(line,   a, i, n, kv, s) { n = split(line, a, " "); s = 0
    for (i = 2; i <= n; i++) { split(a[i], kv, "="); if (kv[1] ~ /^(err_|non2xx)/) s += kv[2] } return s }
BEGIN {
    dur = f(l, "duration_us") / 1e6; rps = f(l, "rps"); cpu = (t1 - t0) / hz / dur * 100
    busy = (s1 - s0) / hz / dur * 100
    print "| load | connections | req/s | p50 ms | p99 ms | errors |"
    print "|---|---:|---:|---:|---:|---:|"
    printf "| POST /api/v1/auth/login | %d | %.1f | %.1f | %.1f | %d |\n", lc, rps,
        f(l, "p50_us") / 1000, f(l, "p99_us") / 1000, errs(l)
    printf "| GET /health (at the same time) | %d | %.0f | %.2f | %.2f | %d |\n", hc, f(h, "rps"),
        f(h, "p50_us") / 1000, f(h, "p99_us") / 1000, errs(h)
    printf "\nzygo used %.0f%% CPU (100 = one CPU; machine: %d CPUs, all processes %.0f%%): %.1f logins/s per CPU-second of the server, %.1f logins/s per core of the machine.\n",
        cpu, ncpu, busy, rps / (cpu / 100), rps / ncpu
    p99 = f(h, "p99_us") / 1000
    printf "\nTarget: /health p99 < 10 ms while logins saturate the worker pool — %.2f ms, %s.\n", p99,
        (p99 < 10 ? "met" : "MISSED")
}' >"$OUT/login.md"
    grep '^LOGIN_STATUS ' "$OUT/login.txt" | sed 's/^LOGIN_STATUS /\nHTTP statuses of the logins: /' >>"$OUT/login.md" || true
}
[ -n "${SKIP_LOGIN:-}" ] || login_part

{
    echo
    cat "$OUT/header.md"
    if [ -f "$OUT/table.md" ]; then
    echo "## GET /api/v1/users?page=1&limit=20"
    echo
    cat "$OUT/table.md"
    echo
    echo "(medians over $ROUNDS round(s); CPU % = CPU time used during the timed run / its wall time, 100 = one CPU; raw wrk output in ${OUT#"$ROOT"/})"
    fi
    if [ -f "$OUT/login.md" ]; then
        echo
        echo "## Logins (zygo only, defaults): POST /api/v1/auth/login -c$LOGIN_CONNECTIONS with GET /health -c$HEALTH_CONNECTIONS, $LOGIN_DURATION"
        echo
        cat "$OUT/login.md"
    fi
} | tee "$OUT/summary.md"
