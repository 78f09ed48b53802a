#!/usr/bin/env bash
# bench/run-pg.sh — one user read by primary key from PostgreSQL: zygo against the
# specification's own stack, on this machine, in one run. Both serve GET /bench/users/:id
# behind all of their global middleware, scoped to the tenant in the X-Tenant-ID header:
#   zygo   build/release/zygo-bench-server (bench/pg_server.c: the real app plus that route, via
#          the users repository), connected as the application role zygo_api, so row-level
#          security applies and the tenant goes to the session with set_config() when it changes;
#   hono   bench/hono/app.mjs with DATABASE_URL (Node 20 + Hono 4 + pino + postgres.js, the
#          specification's driver), connected as the superuser: no row-level security and no
#          set_config(), only the query — a comparison that favours Hono.
# Both use a pool of POOL_MAX connections (10, zygo's default and the specification's
# DATABASE_POOL_MAX). The script starts a throwaway PostgreSQL cluster (scripts/pg-cluster.sh)
# that shares this machine's CPUs with the servers and wrk, creates the database (the schema
# comes from zygo's migrations, applied by a first start of the bench server), seeds one tenant
# and USERS users as the superuser, then for every server: start fresh on a free 127.0.0.1 port
# with stdout to /dev/null, check its answer against the database (same JSON), warm up, load it
# with wrk going round IDS user ids (bench/report.lua with BENCH_PATHS, the same sequence for
# every server), read its RSS and the CPU time it, PostgreSQL and wrk used, and stop it. At the
# end it prints the side-by-side table and removes the cluster (also when interrupted).
#
#   bench/run-pg.sh                         defaults below
#   ROUNDS=3 bench/run-pg.sh                every server 3 times, interleaved; medians at the end
#   ZYGO_CONFIGS="w8:HTTP_WORKERS=8 w16:HTTP_WORKERS=16,DATABASE_POOL_MAX=16" bench/run-pg.sh
#
# Environment (all optional):
#   DURATION=10s  WARMUP=5s  THREADS=1  CONNECTIONS=64   wrk settings, the same for every server
#   ROUNDS=1                  how many times each server is measured (interleaved)
#   ZYGO_CONFIGS="defaults:"  zygo variants: label:VAR=value[,VAR=value...] separated by spaces
#                             (HTTP_WORKERS, HTTP_IO_THREADS, DATABASE_POOL_MAX, …); a row each
#   POOL_MAX=10               DATABASE_POOL_MAX of both servers (a ZYGO_CONFIGS value wins)
#   USERS=10000  IDS=100      users seeded; how many of them the load goes round
#   ORIGIN=https://app.zygo.tech   Origin header sent with every request ("" sends none)
#   PIN=""                    e.g. PIN="0:1": servers on CPU 0, wrk on CPU 1 (PostgreSQL unpinned)
#   ZYGO_REV=rev              build zygo-bench-server at this commit apart from the work tree
#   ZYGO_BIN=path             use this zygo-bench-server binary and build nothing
#   RESULTS_DIR=bench/results raw wrk output and the summary go to RESULTS_DIR/<timestamp>-pg/
#   NO_INSTALL=1              never apt-get/npm install; fail when something is missing
#   QUIET_WAIT=30  RETRIES=2  before each server, wait up to QUIET_WAIT s for other processes to
#                             calm down; measure it again (up to RETRIES times) when they used
#                             more than 15 % of a CPU during the timed run (bench/lib.sh)
#   BENCH_WAIT=1800           seconds to wait at most for another benchmark to end
#   PG_SOCKET=1               both servers reach PostgreSQL over its Unix-domain socket instead
#                             of TCP on 127.0.0.1 (the usual set-up when they share a host)
#   PERF=1                    also profile zygo (defaults) under the load (perf, 3 s) into
#                             perf.txt and perf-children.txt (PERF_CALLGRAPH=dwarf: whole stacks;
#                             PERF_ALL=1: every process, PostgreSQL and wrk too, by command)
#
# Needs: wrk, curl, node + npm, PostgreSQL server binaries and psql (installed with apt-get when
# missing), zygo's build dependencies (`make deps`). It waits first while bench/run.sh (or
# another benchmark holding bench/lib.sh's lock) runs. Then every run stops by itself:
# (WARMUP + DURATION + a few s) × servers × ROUNDS plus about 10 s of set-up on a quiet machine;
# at most (WARMUP + DURATION + QUIET_WAIT + a few s) × servers × ROUNDS × (1 + RETRIES) on a
# busy one.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

ZYGO_CONFIGS=${ZYGO_CONFIGS:-"defaults:"}
POOL_MAX=${POOL_MAX:-10}
USERS=${USERS:-10000}
IDS=${IDS:-100}
TARGET_RPS=4
TARGET_P99=1
TENANT=7d1c2a4e-0b7f-4c1e-9a55-3f2d8c6b1a01
DB=bench

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zygo-bench.XXXXXX")
PGDIR=
cleanup() {
    bench_cleanup
    pg_bench_stop
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_lock 'bench/run\.sh'
need_tools
need_postgres # psql creates and seeds
need_hono_deps
build_zygo zygo-bench-server

# ---------------------------------------------------------------- database
pg_bench_start
PG_BASE=127.0.0.1:$ZYGO_TEST_PG_PORT
ADMIN_PW=${ZYGO_TEST_PG_ADMIN_URL#postgres://zygo_admin:}
ADMIN_PW=${ADMIN_PW%%@*}
ADMIN_URL=postgres://zygo_admin:$ADMIN_PW@$PG_BASE/$DB
OWNER_URL=postgres://zygo_owner:$ZYGO_TEST_PG_OWNER_PASSWORD@$PG_BASE/$DB
APP_URL=postgres://zygo_api:$ZYGO_TEST_PG_APP_PASSWORD@$PG_BASE/$DB
PG_TRANSPORT="loopback TCP"
HONO_SOCKET=
if [ -n "${PG_SOCKET:-}" ]; then
    # libpq reads a socket directory from the host parameter; postgres.js takes the socket
    # file as its path option (bench/hono/app.mjs: DATABASE_SOCKET)
    PG_TRANSPORT="Unix-domain socket"
    APP_URL="postgres://zygo_api:$ZYGO_TEST_PG_APP_PASSWORD@/$DB?host=$PGDIR/sock&port=$ZYGO_TEST_PG_PORT"
    HONO_SOCKET=$PGDIR/sock/.s.PGSQL.$ZYGO_TEST_PG_PORT
fi
psql_admin() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
psql_admin "$ZYGO_TEST_PG_ADMIN_URL" -c "CREATE DATABASE $DB OWNER zygo_owner"
PG_VERSION=$(psql -X -At "$ADMIN_URL" -c 'SHOW server_version')

# CPU ticks of the whole cluster so far: the postmaster with the children it has reaped, plus
# its live children (backends, checkpointer, …).
PG_PM=$(head -n 1 "$PGDIR/data/postmaster.pid")
db_ticks() {
    local t p v
    t=$(proc_ticks_all "$PG_PM")
    for p in $(pgrep -P "$PG_PM"); do
        v=$(proc_ticks "$p" 2>/dev/null) && t=$((t + v))
    done
    echo "$t"
}

# ---------------------------------------------------------------- servers

# start_server KIND SETTINGS PORT NAME — sets SRV_PID (see launch in bench/lib.sh).
start_server() {
    local kind=$1 settings=$2 port=$3 name=$4
    local -a extra=()
    [ -n "$settings" ] && IFS=, read -ra extra <<<"$settings"
    if [ "$kind" = zygo ]; then
        local data=$TMP/data-$name
        mkdir -p "$data"
        # Production mode as Node gets it; secrets are throw-away values for this run only.
        # No rate limiting: the reference app has none (the specification's would count in
        # Redis), and one client's load would only measure 429 answers.
        launch "$name" "$port" "$data" HOME="$data" \
            NODE_ENV=production HOST=127.0.0.1 PORT="$port" \
            ZYGO_DATA_DIR="$data" ZYGO_ENV_FILE="$data/absent.env" \
            RATE_LIMIT_ENABLED=false \
            APP_URL=http://127.0.0.1 API_URL="http://127.0.0.1:$port" \
            JWT_SECRET="$(random_hex 32)" ENCRYPTION_KEY="$(random_hex 32)" \
            DATABASE_URL="$APP_URL" DATABASE_MIGRATION_URL="$OWNER_URL" \
            DATABASE_POOL_MAX="$POOL_MAX" "${extra[@]}" -- "$ZYGO_BIN"
    else
        launch "$name" "$port" "$HONO_DIR" HOME="$TMP" \
            NODE_ENV=production HOST=127.0.0.1 PORT="$port" \
            DATABASE_URL="$ADMIN_URL" DATABASE_SOCKET="$HONO_SOCKET" DATABASE_POOL_MAX="$POOL_MAX" \
            "${extra[@]}" -- "$NODE_BIN" app.mjs
    fi
}

# The schema: zygo's migrations, applied (as zygo_owner) by a first start of the bench server.
say "bench: applying zygo's migrations (zygo-bench-server start)"
for try in 1 2 3 4 5; do
    start_server zygo "" "$(free_port)" migrate && break
    [ "$try" -lt 5 ] || die "migrate: no free port after 5 tries"
done
stop_server

# One tenant and USERS users, every column filled, as the superuser (which skips RLS).
say "bench: seeding $USERS users"
psql_admin "$ADMIN_URL" -v tenant="$TENANT" -v users="$USERS" <<'EOF'
INSERT INTO tenants (id, slug, name, plan) VALUES (:'tenant', 'bench', 'Bench Inc.', 'pro');
INSERT INTO users (tenant_id, email, first_name, last_name, display_name, avatar, phone, status,
                   email_verified, phone_verified, mfa_enabled, last_login_at, created_at,
                   updated_at)
SELECT :'tenant', 'user' || i || '@bench.example', 'First' || i, 'Last' || i,
       'First' || i || ' Last' || i, 'https://cdn.zygo.tech/avatars/' || i || '.png',
       '+1555' || lpad(i::text, 7, '0'), 'active', true, i % 2 = 0, i % 5 = 0,
       CASE WHEN i % 10 = 0 THEN NULL ELSE now() - make_interval(mins => i) END,
       now() - make_interval(days => i % 365), now() - make_interval(hours => i % 100)
FROM generate_series(1, :users) AS i;
VACUUM ANALYZE tenants;
VACUUM ANALYZE users;
EOF
# The ids the load goes round (a fixed sample: every server gets the same sequence).
psql -X -At "$ADMIN_URL" -c "SELECT '/bench/users/' || id FROM users ORDER BY email LIMIT $IDS" \
    >"$TMP/paths"
[ "$(wc -l <"$TMP/paths")" -ge 1 ] || die "no users seeded"
export BENCH_PATHS=$TMP/paths
BENCH_PATH=$(head -n 1 "$TMP/paths")
FIRST_ID=${BENCH_PATH##*/}

# What both servers must answer for the first id: the row as PostgreSQL has it, as the API's
# User object (camelCase, timestamps ISO-8601 UTC with milliseconds).
psql -X -At "$ADMIN_URL" -v id="$FIRST_ID" >"$TMP/expected.json" <<'EOF'
SELECT json_build_object(
    'id', id, 'tenantId', tenant_id, 'email', email, 'firstName', first_name,
    'lastName', last_name, 'displayName', display_name, 'avatar', avatar, 'phone', phone,
    'status', status, 'emailVerified', email_verified, 'phoneVerified', phone_verified,
    'mfaEnabled', mfa_enabled,
    'lastLoginAt', to_char(last_login_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'createdAt', to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'),
    'updatedAt', to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'))
FROM users WHERE id = :'id'
EOF

# The answer both servers must give before they are timed: the same user, the same fields and
# values, and the global middleware's headers.
check_answer() {
    local url=$1 name=$2 h
    h=$(curl -s -D - -o "$TMP/body" ${ORIGIN:+-H "Origin: $ORIGIN"} -H "X-Tenant-ID: $TENANT" \
        "$url")
    "$NODE_BIN" -e '
        const fs = require("fs"), assert = require("assert");
        const [want, got] = process.argv.slice(1).map((f) => fs.readFileSync(f, "utf8"));
        let g;
        try { g = JSON.parse(got); } catch { console.error(got); process.exit(1); }
        const w = JSON.parse(want);
        try { assert.deepStrictEqual(g, w); } catch (e) { console.error(e.message); process.exit(1); }
        ' "$TMP/expected.json" "$TMP/body" >&2 ||
        die "$name: GET $BENCH_PATH does not answer the user as the database has it"
    check_headers "$name" "$h"
    say "bench:   answer checked: $(tr -d '\n' <"$TMP/body" | head -c 120)…"
}

WRK_ARGS=(-t"$THREADS" -c"$CONNECTIONS" --timeout 5s -H "X-Tenant-ID: $TENANT")
[ -n "$ORIGIN" ] && WRK_ARGS+=(-H "Origin: $ORIGIN")

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS_DIR/$STAMP-pg
mkdir -p "$OUT"
: >"$OUT/rows.tsv"

# ---------------------------------------------------------------- header
{
    echo "# zygo vs Hono — GET /bench/users/:id (PostgreSQL, one user by primary key)"
    echo
    echo "- date: $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(machine_line); PostgreSQL, the servers and wrk share it"
    echo "- PostgreSQL $PG_VERSION (scripts/pg-cluster.sh: $PG_TRANSPORT, fsync off, shared_buffers 64MB); $USERS users in one tenant, the load goes round $IDS of them"
    echo "- zygo: zygo-bench-server $(cat "$ROOT/VERSION") ($ZYGO_DESC), NODE_ENV=production, role zygo_api (row-level security), DATABASE_POOL_MAX=$POOL_MAX"
    echo "- hono: node $(node --version), hono $(hono_ver hono), @hono/node-server $(hono_ver @hono/node-server), pino $(hono_ver pino), postgres (postgres.js) $(hono_ver postgres) with max=$POOL_MAX, NODE_ENV=production, superuser (no row-level security)"
    echo "- wrk $(wrk --version 2>&1 | awk 'NR==1{print $2}'): -t$THREADS -c$CONNECTIONS -d$DURATION after a $WARMUP warm-up, X-Tenant-ID${ORIGIN:+, Origin: $ORIGIN}${PIN:+, servers on CPU $SRV_CPUS, wrk on CPU $WRK_CPUS}; rounds: $ROUNDS"
    echo
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

# ---------------------------------------------------------------- runs
for round in $(seq 1 "$ROUNDS"); do
    measure hono hono "" "$round"
    for cfg in $ZYGO_CONFIGS; do
        settings=
        [ "${cfg#*:}" != "$cfg" ] && settings=${cfg#*:}
        measure "zygo-${cfg%%:*}" zygo "$settings" "$round"
    done
done

# ---------------------------------------------------------------- table
summary_table
{
    echo
    cat "$OUT/header.md"
    cat "$OUT/table.md"
    echo
    echo "(medians over $ROUNDS round(s); CPU % = CPU time used during the timed run / its wall time, 100 = one CPU; PostgreSQL CPU = the whole cluster; raw wrk output in ${OUT#"$ROOT"/})"
} | tee "$OUT/summary.md"

if [ -n "${PERF:-}" ] && command -v perf >/dev/null; then
    PORT_NOW=$(free_port)
    start_server zygo "" "$PORT_NOW" zygo-perf
    perf_profile "http://127.0.0.1:$PORT_NOW$BENCH_PATH"
    stop_server
fi
