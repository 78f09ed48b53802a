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
#
# Needs: wrk, curl, node + npm (installed with apt-get when missing), the Debian packages of
# zygo's build (`make deps`). Every run stops by itself: (WARMUP + DURATION) × servers × ROUNDS
# plus a few seconds per start.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-5s}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-1}
ZYGO_CONFIGS=${ZYGO_CONFIGS:-"io1:HTTP_IO_THREADS=1 io2:HTTP_IO_THREADS=2"}
ORIGIN=${ORIGIN-https://app.zygo.tech}
PIN=${PIN:-}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}
HONO_DIR=$ROOT/bench/hono
LUA=$ROOT/bench/report.lua

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

# ---------------------------------------------------------------- tools and builds
APT_UPDATED=
apt_install() {
    [ -n "${NO_INSTALL:-}" ] && die "missing $*; install it (NO_INSTALL is set)"
    command -v apt-get >/dev/null || die "missing $* and no apt-get to install it"
    local sudo=
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    if [ -z "$APT_UPDATED" ]; then
        $sudo apt-get update -qq >&2 || true
        APT_UPDATED=1
    fi
    say "bench: apt-get install -y $*"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >&2
}

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zygo-bench.XXXXXX")
SRV_PID=
cleanup() {
    if [ -n "${WRK_PID:-}" ]; then
        kill -TERM "$WRK_PID" 2>/dev/null || true
    fi
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        sleep 0.5
        kill -KILL "$SRV_PID" 2>/dev/null || true
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

command -v wrk >/dev/null || apt_install wrk
command -v curl >/dev/null || apt_install curl
command -v node >/dev/null || apt_install nodejs
command -v npm >/dev/null || apt_install npm
[ -n "$PIN" ] && { command -v taskset >/dev/null || apt_install util-linux; }

NODE_MAJOR=$(node -p 'process.versions.node.split(".")[0]')
[ "$NODE_MAJOR" -ge 20 ] || die "node $(node --version) is too old: the specification's stack is Node 20+"

# The reference app's dependencies, exactly as locked in bench/hono/package-lock.json.
if [ ! -f "$HONO_DIR/node_modules/.package-lock.json" ] ||
    [ "$HONO_DIR/package-lock.json" -nt "$HONO_DIR/node_modules/.package-lock.json" ]; then
    [ -n "${NO_INSTALL:-}" ] && die "bench/hono/node_modules is missing or stale (NO_INSTALL is set)"
    say "bench: npm ci --prefix bench/hono"
    npm ci --prefix "$HONO_DIR" --no-audit --no-fund --loglevel=error >&2
fi

ZYGO_DESC=
if [ -n "${ZYGO_BIN:-}" ]; then
    [ -x "$ZYGO_BIN" ] || die "ZYGO_BIN=$ZYGO_BIN is not an executable"
    ZYGO_DESC="binary $ZYGO_BIN"
elif [ -n "${ZYGO_REV:-}" ]; then
    # A committed revision, built apart from the work tree (which others may be editing).
    REV=$(git -C "$ROOT" rev-parse --short "$ZYGO_REV^{commit}") || die "unknown ZYGO_REV=$ZYGO_REV"
    say "bench: building zygo $REV in a temporary directory"
    mkdir -p "$TMP/src-$REV"
    git -C "$ROOT" archive "$REV" | tar -x -C "$TMP/src-$REV"
    make -s -C "$TMP/src-$REV" >&2 || die "make of $REV failed"
    ZYGO_BIN=$TMP/src-$REV/build/release/zygo
    ZYGO_DESC="commit $REV"
else
    say "bench: make"
    if ! make -s >&2; then
        [ -n "${NO_INSTALL:-}" ] && die "make failed"
        say "bench: make failed; installing build dependencies (make deps) and retrying"
        # shellcheck disable=SC2015 # either step failing is a failure
        make -s deps >&2 && make -s >&2 ||
            die "make failed (to measure the last commit instead: ZYGO_REV=HEAD bench/run.sh)"
    fi
    # A copy, so that a rebuild in the work tree during the run cannot mix two binaries.
    cp "$ROOT/build/release/zygo" "$TMP/zygo"
    ZYGO_BIN=$TMP/zygo
    ZYGO_DESC="work tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
    [ -z "$(git -C "$ROOT" status --porcelain -- src Makefile 2>/dev/null)" ] ||
        ZYGO_DESC="$ZYGO_DESC with uncommitted changes in src/"
fi
NODE_BIN=$(command -v node)

# ---------------------------------------------------------------- servers

SRV_CPUS=
WRK_CPUS=
if [ -n "$PIN" ]; then
    SRV_CPUS=${PIN%%:*}
    WRK_CPUS=${PIN#*:}
fi
pin_srv() { if [ -n "$SRV_CPUS" ]; then echo taskset -c "$SRV_CPUS"; fi; }
pin_wrk() { if [ -n "$WRK_CPUS" ]; then echo taskset -c "$WRK_CPUS"; fi; }

free_port() {
    "$NODE_BIN" -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# start_server KIND SETTINGS PORT — sets SRV_PID to the server process itself (exec chain).
start_server() {
    local kind=$1 settings=$2 port=$3 log=$TMP/$4.stderr
    local -a extra=()
    [ -n "$settings" ] && IFS=, read -ra extra <<<"$settings"
    if [ "$kind" = zygo ]; then
        local data=$TMP/data-$4
        mkdir -p "$data"
        # Production mode as Node gets it; secrets are throw-away values for this run only.
        (cd "$data" && exec $(pin_srv) env -i PATH="$PATH" HOME="$data" \
            NODE_ENV=production HOST=127.0.0.1 PORT="$port" LOG_LEVEL=info \
            ZYGO_DATA_DIR="$data" ZYGO_ENV_FILE="$data/absent.env" \
            APP_URL=http://127.0.0.1 API_URL="http://127.0.0.1:$port" \
            JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
            ENCRYPTION_KEY="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')" \
            "${extra[@]}" "$ZYGO_BIN" serve) >/dev/null 2>"$log" &
    else
        (cd "$HONO_DIR" && exec $(pin_srv) env -i PATH="$PATH" HOME="$TMP" \
            NODE_ENV=production HOST=127.0.0.1 PORT="$port" LOG_LEVEL=info \
            "${extra[@]}" "$NODE_BIN" app.mjs) >/dev/null 2>"$log" &
    fi
    SRV_PID=$!
    for _ in $(seq 1 100); do
        if ! kill -0 "$SRV_PID" 2>/dev/null; then
            wait "$SRV_PID" 2>/dev/null || true
            SRV_PID=
            # The port was free when chosen but taken since (the ephemeral range): try another.
            grep -qiE 'in use|EADDRINUSE' "$log" && return 1
            cat "$log" >&2
            die "$4 exited during start-up"
        fi
        curl -sf -o /dev/null "http://127.0.0.1:$port/health" && return 0
        sleep 0.1
    done
    die "$4 did not answer /health within 10 s"
}

stop_server() {
    [ -n "$SRV_PID" ] || return 0
    kill -TERM "$SRV_PID" 2>/dev/null || true
    for _ in $(seq 1 50); do
        kill -0 "$SRV_PID" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
}

# The answer both servers must give before they are timed: same route, same middleware.
check_answer() {
    local url=$1 name=$2 h
    h=$(curl -s -D - -o "$TMP/body" ${ORIGIN:+-H "Origin: $ORIGIN"} "$url")
    grep -q '"status":"ok"' "$TMP/body" || die "$name: unexpected /health body: $(cat "$TMP/body")"
    [ "$name" = hono-bare ] && return 0
    local want
    for want in x-request-id server-timing x-content-type-options strict-transport-security \
        vary; do
        grep -qi "^$want:" <<<"$h" || die "$name: /health answer lacks $want"
    done
    if [ -n "$ORIGIN" ]; then
        grep -qi '^access-control-allow-credentials: true' <<<"$h" ||
            die "$name: /health answer lacks the CORS headers for $ORIGIN"
    fi
}

proc_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
proc_threads() { awk '$1 == "Threads:" {print $2}' "/proc/$1/status"; }
# utime + stime of the whole process, in clock ticks.
proc_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
# wrk runs in the background and is waited for, so that a signal to this script is handled at
# once (the trap stops wrk and the server) rather than after the load ends.
WRK_PID=
run_wrk() {
    local out=$1
    shift
    $(pin_wrk) wrk "${WRK_ARGS[@]}" "$@" >"$out" &
    WRK_PID=$!
    wait "$WRK_PID"
    WRK_PID=
}
# CPU seconds (user + system) of this shell's finished children, from the output of `times`
# (which must run in this shell, not in a $(...) subshell); wrk's time is the difference.
children_secs() {
    awk 'function s(t,  m) { m = t; sub(/m.*/, "", m); sub(/^[0-9]+m/, "", t); sub(/s$/, "", t)
             return m * 60 + t }
         NR == 2 {printf "%.3f", s($1) + s($2)}' "$1"
}
# user + nice + system ticks of the whole machine (first line of /proc/stat).
sys_busy_ticks() { awk '$1 == "cpu" {print $2 + $3 + $4; exit}' /proc/stat; }

WRK_ARGS=(-t"$THREADS" -c"$CONNECTIONS" --timeout 5s)
[ -n "$ORIGIN" ] && WRK_ARGS+=(-H "Origin: $ORIGIN")
CLK_TCK=$(getconf CLK_TCK)

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS_DIR/$STAMP
mkdir -p "$OUT"
ROWS=$OUT/rows.tsv
: >"$ROWS"

# measure NAME KIND SETTINGS ROUND
measure() {
    local name=$1 kind=$2 settings=$3 round=$4 port try
    for try in 1 2 3 4 5; do
        port=$(free_port)
        say "bench: [$round/$ROUNDS] $name ($kind${settings:+ $settings}) on 127.0.0.1:$port"
        start_server "$kind" "$settings" "$port" "$name" && break
        [ "$try" -lt 5 ] || die "$name: no free port after 5 tries"
    done
    local url=http://127.0.0.1:$port/health
    check_answer "$url" "$name"
    run_wrk "$OUT/$name.r$round.warmup.txt" -d"$WARMUP" "$url"
    local t0 t1 s0 s1
    s0=$(sys_busy_ticks)
    t0=$(proc_ticks "$SRV_PID")
    times >"$TMP/times.0"
    run_wrk "$OUT/$name.r$round.txt" -d"$DURATION" --latency -s "$LUA" "$url"
    times >"$TMP/times.1"
    t1=$(proc_ticks "$SRV_PID")
    s1=$(sys_busy_ticks)
    local rss hwm thr
    rss=$(proc_kb "$SRV_PID" VmRSS)
    hwm=$(proc_kb "$SRV_PID" VmHWM)
    thr=$(proc_threads "$SRV_PID")
    stop_server
    local line
    line=$(grep '^BENCH ' "$OUT/$name.r$round.txt") || die "$name: no result from wrk"
    local rps p50 p99 nerr dur_us
    rps=$(sed -E 's/.* rps=([0-9.]+).*/\1/' <<<"$line")
    p50=$(sed -E 's/.* p50_us=([0-9]+).*/\1/' <<<"$line")
    p99=$(sed -E 's/.* p99_us=([0-9]+).*/\1/' <<<"$line")
    dur_us=$(sed -E 's/.* duration_us=([0-9]+).*/\1/' <<<"$line")
    nerr=$(awk '{for (i = 2; i <= NF; i++) if ($i ~ /^(err_|non2xx)/) {split($i, a, "="); s += a[2]}}
        END {print s + 0}' <<<"$line")
    local cpu wcpu other
    cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$CLK_TCK" -v us="$dur_us" \
        'BEGIN{printf "%.0f", (b - a) / hz / (us / 1e6) * 100}')
    wcpu=$(awk -v a="$(children_secs "$TMP/times.0")" -v b="$(children_secs "$TMP/times.1")" \
        -v us="$dur_us" 'BEGIN{printf "%.0f", (b - a) / (us / 1e6) * 100}')
    # Process time outside both (user + system of the whole machine, softirq excluded): other
    # work on the machine during the run, which makes the figures unreliable when it is large.
    other=$(awk -v a="$s0" -v b="$s1" -v hz="$CLK_TCK" -v us="$dur_us" -v c="$cpu" -v w="$wcpu" \
        'BEGIN{o = (b - a) / hz / (us / 1e6) * 100 - c - w; printf "%.0f", o < 0 ? 0 : o}')
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" \
        "${settings:--}" "$round" "$rps" "$p50" "$p99" "$rss" "$hwm" "$cpu" "$nerr" "$wcpu" \
        "$other" >>"$ROWS"
    [ "$other" -le 15 ] || say "bench:   warning: other processes used ${other}% CPU during this run"
    printf '%s\t%s\n' "$name" "$thr" >"$OUT/$name.threads"
    say "bench:   $(printf '%.0f' "$rps") req/s, p50 $(awk -v u="$p50" 'BEGIN{printf "%.2f", u/1000}') ms, p99 $(awk -v u="$p99" 'BEGIN{printf "%.2f", u/1000}') ms, RSS $((rss / 1024)) MB, server CPU ${cpu}%, wrk CPU ${wcpu}%, others ${other}%, errors $nerr"
}

# ---------------------------------------------------------------- header
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
hono_ver() { "$NODE_BIN" -p "require('$HONO_DIR/node_modules/$1/package.json').version"; }
{
    echo "# zygo vs Hono — GET /health"
    echo
    echo "- date: $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(nproc) CPUs, ${CPU_MODEL:-unknown CPU}, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
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
TABLE=$OUT/table.md
awk -F'\t' -v rounds="$ROUNDS" '
function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) {
        t = a[j]; a[j] = a[j-1]; a[j-1] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1; set[$1] = $3 }
    rps[$1] = rps[$1] " " $5; p50[$1] = p50[$1] " " $6; p99[$1] = p99[$1] " " $7
    rss[$1] = rss[$1] " " $8; hwm[$1] = hwm[$1] " " $9; cpu[$1] = cpu[$1] " " $10
    err[$1] += $11; all[$1] = all[$1] (all[$1] == "" ? "" : ", ") sprintf("%.0f", $5)
    wcpu[$1] = wcpu[$1] " " $12; if ($13 + 0 > other) other = $13 + 0
}
END {
    hr = median(rps["hono"]); hp50 = median(p50["hono"]); hp99 = median(p99["hono"])
    hrss = median(rss["hono"])
    printf "| server | settings | req/s | p50 ms | p99 ms | RSS after load MB | peak RSS MB | server CPU %% | wrk CPU %% | errors | req/s ×Hono | p99 ×Hono | RSS ×Hono |\n"
    printf "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    for (i = 1; i <= n; i++) {
        k = order[i]; r = median(rps[k]); a = median(p50[k]); b = median(p99[k])
        m = median(rss[k]); h = median(hwm[k])
        printf "| %s | %s | %.0f | %.2f | %.2f | %.1f | %.1f | %.0f | %.0f | %d | %.2f | %.2f | %.2f |\n",
            k, set[k], r, a / 1000, b / 1000, m / 1024, h / 1024, median(cpu[k]),
            median(wcpu[k]), err[k], r / hr, b / hp99, m / hrss
    }
    if (rounds > 1) {
        printf "\nreq/s of each round: "
        for (i = 1; i <= n; i++) printf "%s%s %s", (i > 1 ? "; " : ""), order[i], all[order[i]]
        printf "\n"
    }
    printf "\nCPU used by other processes during a timed run: at most %d%% of one CPU%s.\n", other,
        (other > 15 ? " — too much: the figures are disturbed, run again on a quiet machine" : "")
    printf "\nTargets (zygo ≥ 2× Hono req/s, ≤ 20 MB RSS after load):\n"
    for (i = 1; i <= n; i++) {
        k = order[i]; if (k !~ /^zygo/) continue
        r = median(rps[k]) / hr; m = median(rss[k]) / 1024
        printf "- %s: req/s %.2f× Hono — %s; RSS %.1f MB — %s\n", k, r,
            (r >= 2 ? "met" : "MISSED"), m, (m <= 20 ? "met" : "MISSED")
    }
}' "$ROWS" >"$TABLE"

{
    echo
    cat "$OUT/header.md"
    cat "$TABLE"
    echo
    echo "(medians over $ROUNDS round(s); CPU % = CPU time used during the timed run / its wall time, 100 = one CPU; raw wrk output in ${OUT#"$ROOT"/})"
} | tee "$OUT/summary.md"
