#!/usr/bin/env bash
# bench/run.sh — GET /health throughput, latency and memory: zygo against the specification's
# own stack (Node 20 + Hono 4 + @hono/node-server + pino, bench/hono/app.mjs), on this machine,
# in one run. Each server is started fresh on a free 127.0.0.1 port with stdout sent to
# /dev/null, warmed up, loaded with wrk, measured (/proc/PID/status VmRSS and VmHWM right after
# the load, CPU time used during it) and stopped; then a side-by-side table is printed.
#
#   bench/run.sh                            defaults below
#   DURATION=30s CONNECTIONS=128 bench/run.sh
#   ROUNDS=3 bench/run.sh                   every server 3 times, interleaved; medians at the end
#   ZYGO_CONFIGS="io1:HTTP_IO_THREADS=1 io2:HTTP_IO_THREADS=2,HTTP_WORKERS=4" bench/run.sh
#
# Environment (all optional):
#   DURATION=10s  WARMUP=5s  THREADS=1  CONNECTIONS=64   wrk settings, the same for every server
#   ROUNDS=1                  how many times each server is measured (interleaved)
#   ZYGO_CONFIGS="io1:HTTP_IO_THREADS=1 io2:HTTP_IO_THREADS=2"
#                             zygo variants: label:VAR=value[,VAR=value...] separated by spaces
#   HONO_BARE=1               also measure "hono-bare": the Hono app without any middleware or
#                             logger (BENCH_BARE=1), to show what the specification's middleware
#                             costs on Node; the ratios stay against the full "hono" app
#   ORIGIN=https://app.zygo.tech   Origin header sent with every request ("" sends none)
#   PIN=""                    e.g. PIN="0:1" runs the servers on CPU 0 and wrk on CPU 1 (taskset)
#   ZYGO_REV=HEAD             build this commit apart from the work tree (git archive into a
#                             temporary directory, then make) instead of the work tree's `make`
#   ZYGO_BIN=path             use this binary and build nothing
#   RESULTS_DIR=bench/results raw wrk output and the summary go to RESULTS_DIR/<timestamp>/
#   NO_INSTALL=1              never apt-get/npm install; fail when something is missing
#   QUIET_WAIT=30  RETRIES=2  before each server, wait up to QUIET_WAIT s for other processes to
#                             calm down; measure it again (up to RETRIES times) when they used
#                             more than 15 % of a CPU during the timed run (bench/lib.sh)
#
# Needs: wrk, curl, node + npm (installed with apt-get when missing), the Debian packages of
# zygo's build (`make deps`). Every run stops by itself: (WARMUP + DURATION) × servers × ROUNDS
# plus a few seconds per start on a quiet machine; at most (WARMUP + DURATION + QUIET_WAIT + a
# few s) × servers × ROUNDS × (1 + RETRIES) on a busy one. It first waits (BENCH_WAIT=1800 s at most) while another
# benchmark holds the lock (bench/run-pg.sh, another bench/run.sh). The helpers it shares with
# bench/run-pg.sh are in bench/lib.sh.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

ZYGO_CONFIGS=${ZYGO_CONFIGS:-"io1:HTTP_IO_THREADS=1 io2:HTTP_IO_THREADS=2"}
BENCH_PATH=/health
TARGET_RPS=2
TARGET_RSS_MB=20

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zygo-bench.XXXXXX")
cleanup() {
    bench_cleanup
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_lock ""
need_tools
need_hono_deps
build_zygo zygo

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
            NODE_ENV=production HOST=127.0.0.1 PORT="$port" LOG_LEVEL=info \
            ZYGO_DATA_DIR="$data" ZYGO_ENV_FILE="$data/absent.env" \
            RATE_LIMIT_ENABLED=false \
            APP_URL=http://127.0.0.1 API_URL="http://127.0.0.1:$port" \
            JWT_SECRET="$(random_hex 32)" ENCRYPTION_KEY="$(random_hex 32)" \
            "${extra[@]}" -- "$ZYGO_BIN" serve
    else
        launch "$name" "$port" "$HONO_DIR" HOME="$TMP" \
            NODE_ENV=production HOST=127.0.0.1 PORT="$port" LOG_LEVEL=info \
            "${extra[@]}" -- "$NODE_BIN" app.mjs
    fi
}

# The answer both servers must give before they are timed: same route, same middleware.
check_answer() {
    local url=$1 name=$2 h
    h=$(curl -s -D - -o "$TMP/body" ${ORIGIN:+-H "Origin: $ORIGIN"} "$url")
    grep -q '"status":"ok"' "$TMP/body" || die "$name: unexpected /health body: $(cat "$TMP/body")"
    [ "$name" = hono-bare ] && return 0
    check_headers "$name" "$h"
}

WRK_ARGS=(-t"$THREADS" -c"$CONNECTIONS" --timeout 5s)
[ -n "$ORIGIN" ] && WRK_ARGS+=(-H "Origin: $ORIGIN")

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS_DIR/$STAMP
mkdir -p "$OUT"
: >"$OUT/rows.tsv"

# ---------------------------------------------------------------- header
{
    echo "# zygo vs Hono — GET /health"
    echo
    echo "- date: $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(machine_line)"
    echo "- zygo: $("$ZYGO_BIN" --version 2>/dev/null | awk '{print $2}') ($ZYGO_DESC), NODE_ENV=production"
    echo "- hono: node $(node --version), hono $(hono_ver hono), @hono/node-server $(hono_ver @hono/node-server), pino $(hono_ver pino), NODE_ENV=production"
    echo "- wrk $(wrk --version 2>&1 | awk 'NR==1{print $2}'): -t$THREADS -c$CONNECTIONS -d$DURATION after a $WARMUP warm-up${ORIGIN:+, Origin: $ORIGIN}${PIN:+, servers on CPU $SRV_CPUS, wrk on CPU $WRK_CPUS}; rounds: $ROUNDS"
    echo
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

# ---------------------------------------------------------------- runs
for round in $(seq 1 "$ROUNDS"); do
    measure hono hono "" "$round"
    [ -n "${HONO_BARE:-}" ] && measure hono-bare hono BENCH_BARE=1 "$round"
    for cfg in $ZYGO_CONFIGS; do
        settings=
        [ "${cfg#*:}" != "$cfg" ] && settings=${cfg#*:}
        measure "zygo-${cfg%%:*}" zygo "$settings" "$round"
    done
done

# ---------------------------------------------------------------- table
# Medians over the rounds (each column on its own), ratios against Hono's medians.
summary_table
{
    echo
    cat "$OUT/header.md"
    cat "$OUT/table.md"
    echo
    echo "(medians over $ROUNDS round(s); CPU % = CPU time used during the timed run / its wall time, 100 = one CPU; raw wrk output in ${OUT#"$ROOT"/})"
} | tee "$OUT/summary.md"
