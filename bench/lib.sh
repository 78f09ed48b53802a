# bench/lib.sh — what bench/run.sh (GET /health) and bench/run-pg.sh (GET /bench/users/:id on
# PostgreSQL) share: installing the tools, building zygo, starting and stopping a server,
# running wrk, measuring a server (req/s, latency, RSS, CPU) and the summary table.
# Sourced, not run. The sourcing script sets ROOT and, before calling measure, defines:
#   start_server KIND SETTINGS PORT NAME   start one server (with launch) and set SRV_PID;
#                                          return 1 when the port was taken meanwhile
#   check_answer URL NAME                  die unless the server answers URL as it should
# and the variables BENCH_PATH (the path loaded), WRK_ARGS (wrk options besides -d/--latency/-s)
# and OUT (results directory). db_ticks, when defined, prints the CPU ticks used so far by a
# database server that the servers share: measure reports its CPU and leaves it out of "other".
# shellcheck shell=bash

say() { printf '%s\n' "$*" >&2; }
die() { say "bench: $*"; exit 1; }

BENCH_DIR=$ROOT/bench
HONO_DIR=$BENCH_DIR/hono
LUA=$BENCH_DIR/report.lua
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-5s}
THREADS=${THREADS:-1}
CONNECTIONS=${CONNECTIONS:-64}
ROUNDS=${ROUNDS:-1}
ORIGIN=${ORIGIN-https://app.zygo.tech}
PIN=${PIN:-}
RESULTS_DIR=${RESULTS_DIR:-$ROOT/bench/results}

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

# wrk, curl, node 20+ and npm, taskset when pinning; sets NODE_BIN.
need_tools() {
    command -v wrk >/dev/null || apt_install wrk
    command -v curl >/dev/null || apt_install curl
    command -v node >/dev/null || apt_install nodejs
    command -v npm >/dev/null || apt_install npm
    [ -n "$PIN" ] && { command -v taskset >/dev/null || apt_install util-linux; }
    local major
    major=$(node -p 'process.versions.node.split(".")[0]')
    [ "$major" -ge 20 ] || die "node $(node --version) is too old: the specification's stack is Node 20+"
    NODE_BIN=$(command -v node)
}

# The reference app's dependencies, exactly as locked in bench/hono/package-lock.json.
need_hono_deps() {
    if [ ! -f "$HONO_DIR/node_modules/.package-lock.json" ] ||
        [ "$HONO_DIR/package-lock.json" -nt "$HONO_DIR/node_modules/.package-lock.json" ]; then
        [ -n "${NO_INSTALL:-}" ] && die "bench/hono/node_modules is missing or stale (NO_INSTALL is set)"
        say "bench: npm ci --prefix bench/hono"
        npm ci --prefix "$HONO_DIR" --no-audit --no-fund --loglevel=error >&2
    fi
}
hono_ver() { "$NODE_BIN" -p "require('$HONO_DIR/node_modules/$1/package.json').version"; }

# build_zygo BINARY — sets ZYGO_BIN (a copy, or ZYGO_BIN as given) and ZYGO_DESC. BINARY is
# the name in build/release: zygo (make target all), zygo-bench-server (make bench-server) or
# zygo-bench-queue (make bench-queue). ZYGO_BIN=path uses that binary; ZYGO_REV=rev builds that commit
# apart from the work tree (which others may be editing); otherwise the work tree is built.
build_zygo() {
    local bin=$1 target=all
    [ "$bin" = zygo-bench-server ] && target=bench-server
    [ "$bin" = zygo-bench-queue ] && target=bench-queue
    ZYGO_DESC=
    if [ -n "${ZYGO_BIN:-}" ]; then
        [ -x "$ZYGO_BIN" ] || die "ZYGO_BIN=$ZYGO_BIN is not an executable"
        ZYGO_DESC="binary $ZYGO_BIN"
    elif [ -n "${ZYGO_REV:-}" ]; then
        local rev
        rev=$(git -C "$ROOT" rev-parse --short "$ZYGO_REV^{commit}") || die "unknown ZYGO_REV=$ZYGO_REV"
        say "bench: building $bin at $rev in a temporary directory"
        mkdir -p "$TMP/src-$rev"
        git -C "$ROOT" archive "$rev" | tar -x -C "$TMP/src-$rev"
        make -s -C "$TMP/src-$rev" "$target" >&2 || die "make $target of $rev failed"
        ZYGO_BIN=$TMP/src-$rev/build/release/$bin
        ZYGO_DESC="commit $rev"
    else
        say "bench: make $target"
        if ! make -s "$target" >&2; then
            [ -n "${NO_INSTALL:-}" ] && die "make $target failed"
            say "bench: make failed; installing build dependencies (make deps) and retrying"
            # shellcheck disable=SC2015 # either step failing is a failure
            make -s deps >&2 && make -s "$target" >&2 ||
                die "make $target failed (to measure the last commit instead: ZYGO_REV=HEAD $0)"
        fi
        # A copy, so that a rebuild in the work tree during the run cannot mix two binaries.
        cp "$ROOT/build/release/$bin" "$TMP/$bin"
        ZYGO_BIN=$TMP/$bin
        ZYGO_DESC="work tree at $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"
        [ -z "$(git -C "$ROOT" status --porcelain -- src Makefile "bench/*.c" 2>/dev/null)" ] ||
            ZYGO_DESC="$ZYGO_DESC with uncommitted changes"
    fi
}

# One benchmark at a time: waits (up to BENCH_WAIT seconds, default 1800) for the other
# scripts using this lock, and for any bench/run.sh started without it (an older copy).
bench_lock() {
    local waited=0 limit=${BENCH_WAIT:-1800} lock=${TMPDIR:-/tmp}/zygo-bench.lock
    if [ -n "${1:-}" ]; then
        while pgrep -f "$1" >/dev/null; do
            [ "$waited" -eq 0 ] && say "bench: waiting for the running benchmark to end ($1)"
            [ "$waited" -lt "$limit" ] || die "another benchmark still runs after ${limit}s"
            sleep 5
            waited=$((waited + 5))
        done
    fi
    command -v flock >/dev/null || return 0
    exec 9>>"$lock"
    flock -n 9 && return 0
    say "bench: waiting for another benchmark to end (lock $lock)"
    flock -w "$((limit > waited ? limit - waited : 1))" 9 ||
        die "another benchmark still holds $lock"
}

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

random_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }

# launch NAME PORT DIR VAR=value... -- COMMAND... — starts COMMAND in DIR with only the given
# environment (plus PATH), stdout to /dev/null and stderr to $TMP/NAME.stderr, pinned when PIN
# is set, and waits until it answers /health. Sets SRV_PID to the server process itself (exec
# chain). Returns 1 when the port was taken meanwhile (the caller tries another).
SRV_PID=
launch() {
    local name=$1 port=$2 dir=$3 log=$TMP/$1.stderr
    shift 3
    local -a envs=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do
        envs+=("$1")
        shift
    done
    shift
    # shellcheck disable=SC2046 # pin_srv: a command and its words, or nothing
    (cd "$dir" && exec $(pin_srv) env -i PATH="$PATH" "${envs[@]}" "$@") >/dev/null 2>"$log" &
    SRV_PID=$!
    for _ in $(seq 1 150); do
        if ! kill -0 "$SRV_PID" 2>/dev/null; then
            wait "$SRV_PID" 2>/dev/null || true
            SRV_PID=
            # The port was free when chosen but taken since (the ephemeral range): try another.
            grep -qiE 'in use|EADDRINUSE' "$log" && return 1
            cat "$log" >&2
            die "$name exited during start-up"
        fi
        curl -sf -o /dev/null "http://127.0.0.1:$port/health" && return 0
        sleep 0.1
    done
    die "$name did not answer /health within 15 s"
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

# The global middleware's headers, which both servers must send (not for hono-bare).
check_headers() {
    local name=$1 h=$2 want
    for want in x-request-id server-timing x-content-type-options strict-transport-security \
        vary; do
        grep -qi "^$want:" <<<"$h" || die "$name: the answer lacks $want"
    done
    if [ -n "$ORIGIN" ]; then
        grep -qi '^access-control-allow-credentials: true' <<<"$h" ||
            die "$name: the answer lacks the CORS headers for $ORIGIN"
    fi
}

# Stops wrk and the server; the sourcing script's own cleanup calls it first.
bench_cleanup() {
    if [ -n "${WRK_PID:-}" ]; then
        kill -TERM "$WRK_PID" 2>/dev/null || true
    fi
    if [ -n "$SRV_PID" ] && kill -0 "$SRV_PID" 2>/dev/null; then
        kill -TERM "$SRV_PID" 2>/dev/null || true
        sleep 0.5
        kill -KILL "$SRV_PID" 2>/dev/null || true
    fi
}

# ---------------------------------------------------------------- measuring
proc_kb() { awk -v k="$2:" '$1 == k {print $2}' "/proc/$1/status"; }
proc_threads() { awk '$1 == "Threads:" {print $2}' "/proc/$1/status"; }
# utime + stime of the whole process, in clock ticks.
proc_ticks() { awk '{sub(/^.*\) /, ""); print $12 + $13}' "/proc/$1/stat"; }
# utime + stime + cutime + cstime: the process and its children already waited for.
proc_ticks_all() { awk '{sub(/^.*\) /, ""); print $12 + $13 + $14 + $15}' "/proc/$1/stat"; }
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
CLK_TCK=$(getconf CLK_TCK)
# pct TICKS0 TICKS1 DURATION_US — CPU % (100 = one CPU) of a tick difference over the run.
pct() {
    awk -v a="$1" -v b="$2" -v hz="$CLK_TCK" -v us="$3" \
        'BEGIN{printf "%.0f", (b - a) / hz / (us / 1e6) * 100}'
}

# wait_quiet — waits (up to QUIET_WAIT seconds, default 30) until the processes on the machine
# use less than 15 % of one CPU over 2 s: other people's builds and tests share it.
wait_quiet() {
    local limit=${QUIET_WAIT:-30} waited=0 a b busy
    while :; do
        a=$(sys_busy_ticks)
        sleep 2
        b=$(sys_busy_ticks)
        busy=$(awk -v a="$a" -v b="$b" -v hz="$CLK_TCK" 'BEGIN{printf "%.0f", (b - a) / hz / 2 * 100}')
        waited=$((waited + 2))
        [ "$busy" -lt 15 ] && return 0
        if [ "$waited" -ge "$limit" ]; then
            say "bench:   the machine is still busy (${busy}% of a CPU) after ${waited}s: measuring anyway"
            return 0
        fi
        [ "$waited" -eq 2 ] && say "bench:   waiting for a quiet machine (other processes: ${busy}% of a CPU)"
    done
}

# measure NAME KIND SETTINGS ROUND — measure_once, again (up to RETRIES more times, default 2)
# while other processes used more than 15 % of a CPU during the timed run; the disturbed
# measurements go to $OUT/disturbed.tsv, the last one is kept whatever it was.
measure() {
    local try rc
    for try in $(seq 0 "${RETRIES:-2}"); do
        wait_quiet
        rc=0
        measure_once "$@" "$([ "$try" -lt "${RETRIES:-2}" ] && echo retry)" || rc=$?
        [ "$rc" -eq 0 ] && return 0
        [ "$rc" -eq 2 ] || exit "$rc"
        say "bench:   disturbed by other processes: measuring $1 again"
    done
}

# measure_once NAME KIND SETTINGS ROUND [retry] — start, check, warm up, time, measure and stop
# one server; appends a line to $OUT/rows.tsv: name kind settings round rps p50_us p99_us rss_kb
# hwm_kb server_cpu errors wrk_cpu other_cpu db_cpu ("-" without db_ticks). With "retry", a run
# that other processes disturbed goes to $OUT/disturbed.tsv instead, and it returns 2.
measure_once() {
    local name=$1 kind=$2 settings=$3 round=$4 retry=${5:-} port try
    for try in 1 2 3 4 5; do
        port=$(free_port)
        say "bench: [$round/$ROUNDS] $name ($kind${settings:+ $settings}) on 127.0.0.1:$port"
        start_server "$kind" "$settings" "$port" "$name" && break
        [ "$try" -lt 5 ] || die "$name: no free port after 5 tries"
    done
    local url=http://127.0.0.1:$port$BENCH_PATH
    check_answer "$url" "$name"
    run_wrk "$OUT/$name.r$round.warmup.txt" -d"$WARMUP" -s "$LUA" "$url"
    local has_db='' t0 t1 s0 s1 d0=0 d1=0
    declare -F db_ticks >/dev/null && has_db=1
    s0=$(sys_busy_ticks)
    t0=$(proc_ticks "$SRV_PID")
    [ -n "$has_db" ] && d0=$(db_ticks)
    times >"$TMP/times.0"
    run_wrk "$OUT/$name.r$round.txt" -d"$DURATION" --latency -s "$LUA" "$url"
    times >"$TMP/times.1"
    [ -n "$has_db" ] && d1=$(db_ticks)
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
    local cpu wcpu dcpu=- other
    cpu=$(pct "$t0" "$t1" "$dur_us")
    wcpu=$(awk -v a="$(children_secs "$TMP/times.0")" -v b="$(children_secs "$TMP/times.1")" \
        -v us="$dur_us" 'BEGIN{printf "%.0f", (b - a) / (us / 1e6) * 100}')
    [ -n "$has_db" ] && dcpu=$(pct "$d0" "$d1" "$dur_us")
    # Process time outside these (user + system of the whole machine, softirq excluded): other
    # work on the machine during the run, which makes the figures unreliable when it is large.
    other=$(awk -v a="$s0" -v b="$s1" -v hz="$CLK_TCK" -v us="$dur_us" -v c="$cpu" -v w="$wcpu" \
        -v d="$dcpu" 'BEGIN{o = (b - a) / hz / (us / 1e6) * 100 - c - w - d; printf "%.0f", o < 0 ? 0 : o}')
    local rows=$OUT/rows.tsv disturbed=
    if [ "$other" -gt 15 ]; then
        say "bench:   warning: other processes used ${other}% CPU during this run"
        [ -n "$retry" ] && disturbed=1 && rows=$OUT/disturbed.tsv
    fi
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" \
        "${settings:--}" "$round" "$rps" "$p50" "$p99" "$rss" "$hwm" "$cpu" "$nerr" "$wcpu" \
        "$other" "$dcpu" >>"$rows"
    printf '%s\t%s\n' "$name" "$thr" >"$OUT/$name.threads"
    say "bench:   $(printf '%.0f' "$rps") req/s, p50 $(awk -v u="$p50" 'BEGIN{printf "%.2f", u/1000}') ms, p99 $(awk -v u="$p99" 'BEGIN{printf "%.2f", u/1000}') ms, RSS $((rss / 1024)) MB, server CPU ${cpu}%,${has_db:+ database CPU ${dcpu}%,} wrk CPU ${wcpu}%, others ${other}%, errors $nerr"
    [ -z "$disturbed" ] || return 2
}

# summary_table — medians over the rounds of $OUT/rows.tsv (each column on its own), ratios
# against the medians of "hono", into $OUT/table.md. Targets checked for each zygo row:
# TARGET_RPS (× Hono's req/s), TARGET_RSS_MB (RSS after load; empty: none), TARGET_P99=1
# (a p99 below Hono's).
summary_table() {
    awk -F'\t' -v rounds="$ROUNDS" -v trps="${TARGET_RPS:-2}" -v trss="${TARGET_RSS_MB:-}" \
        -v tp99="${TARGET_P99:-}" '
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
    if ($14 != "" && $14 != "-") { db = 1; dcpu[$1] = dcpu[$1] " " $14 }
}
END {
    hr = median(rps["hono"]); hp50 = median(p50["hono"]); hp99 = median(p99["hono"])
    hrss = median(rss["hono"])
    printf "| server | settings | req/s | p50 ms | p99 ms | RSS after load MB | peak RSS MB | server CPU %% |%s wrk CPU %% | errors | req/s ×Hono | p99 ×Hono | RSS ×Hono |\n",
        (db ? " PostgreSQL CPU % |" : "")
    printf "|---|---|---:|---:|---:|---:|---:|---:|%s---:|---:|---:|---:|---:|\n", (db ? "---:|" : "")
    for (i = 1; i <= n; i++) {
        k = order[i]; r = median(rps[k]); a = median(p50[k]); b = median(p99[k])
        m = median(rss[k]); h = median(hwm[k])
        printf "| %s | %s | %.0f | %.2f | %.2f | %.1f | %.1f | %.0f |%s %.0f | %d | %.2f | %.2f | %.2f |\n",
            k, set[k], r, a / 1000, b / 1000, m / 1024, h / 1024, median(cpu[k]),
            (db ? sprintf(" %.0f |", median(dcpu[k])) : ""),
            median(wcpu[k]), err[k], r / hr, b / hp99, m / hrss
    }
    if (rounds > 1) {
        printf "\nreq/s of each round: "
        for (i = 1; i <= n; i++) printf "%s%s %s", (i > 1 ? "; " : ""), order[i], all[order[i]]
        printf "\n"
    }
    printf "\nCPU used by other processes during a timed run: at most %d%% of one CPU%s.\n", other,
        (other > 15 ? " — too much: the figures are disturbed, run again on a quiet machine" : "")
    printf "\nTargets (zygo ≥ %g× Hono req/s%s%s):\n", trps,
        (tp99 ? ", p99 below Hono" : ""), (trss != "" ? ", ≤ " trss " MB RSS after load" : "")
    for (i = 1; i <= n; i++) {
        k = order[i]; if (k !~ /^zygo/) continue
        r = median(rps[k]) / hr; m = median(rss[k]) / 1024; b = median(p99[k])
        printf "- %s: req/s %.2f× Hono — %s", k, r, (r >= trps ? "met" : "MISSED")
        if (tp99) printf "; p99 %.2f ms vs %.2f ms — %s", b / 1000, hp99 / 1000, (b < hp99 ? "met" : "MISSED")
        if (trss != "") printf "; RSS %.1f MB — %s", m, (m <= trss + 0 ? "met" : "MISSED")
        printf "\n"
    }
}' "$OUT/rows.tsv" >"$OUT/table.md"
}

# machine_line — "N CPUs, model, RAM, kernel" for the header.
machine_line() {
    local model
    model=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
    echo "$(nproc) CPUs, ${model:-unknown CPU}, $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo) RAM, $(uname -sr)"
}

# need_postgres — PostgreSQL's server binaries (for scripts/pg-cluster.sh) and psql, installed
# with apt-get when missing.
need_postgres() {
    if ! compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null && ! command -v pg_ctl >/dev/null; then
        apt_install postgresql
    fi
    command -v psql >/dev/null || apt_install postgresql-client
}

# pg_bench_start — a throwaway cluster in PGDIR, its variables (DIR/env) sourced. pg-cluster.sh
# runs the server as the postgres user when we are root: a directory of its own, directly under
# /tmp (the cluster's parent directories must be reachable by that user).
pg_bench_start() {
    PGDIR=$(mktemp -d /tmp/zygo-bench-pg.XXXXXX)
    say "bench: starting PostgreSQL (scripts/pg-cluster.sh start $PGDIR)"
    "$ROOT/scripts/pg-cluster.sh" start "$PGDIR" >&2
    # shellcheck disable=SC1091 # written by pg-cluster.sh
    . "$PGDIR/env"
}

# pg_bench_stop — stops and removes the cluster of pg_bench_start, if any (EXIT traps).
pg_bench_stop() {
    if [ -n "${PGDIR:-}" ]; then
        "$ROOT/scripts/pg-cluster.sh" stop "$PGDIR" >&2 || true
        rmdir "$PGDIR" 2>/dev/null || true
    fi
}

# perf_profile URL — PERF=1: profiles the server running as SRV_PID for 3 s while wrk loads URL
# (WRK_ARGS, report.lua), into $OUT/perf.txt (self time by library and symbol) and
# $OUT/perf-children.txt (inclusive time: which of our functions the cost is spent under).
# PERF_CALLGRAPH=dwarf gives whole stacks through libraries built without frame pointers.
# PERF_ALL=1 records every process on the machine (the database and wrk too), sorted by command.
perf_profile() {
    local -a scope=(-p "$SRV_PID")
    local sort=dso,symbol
    if [ -n "${PERF_ALL:-}" ]; then
        scope=(-a)
        sort=comm,dso,symbol
    fi
    wrk "${WRK_ARGS[@]}" -d"$WARMUP" -s "$LUA" "$1" >"$OUT/perf-wrk.txt" &
    WRK_PID=$!
    sleep 1
    perf record -q --call-graph "${PERF_CALLGRAPH:-fp}" -o "$TMP/perf.data" "${scope[@]}" \
        -- sleep 3 >/dev/null 2>&1 || true
    wait "$WRK_PID"
    WRK_PID=
    perf report -q -i "$TMP/perf.data" --no-children --sort "$sort" --percent-limit 0.5 \
        --stdio -g none >"$OUT/perf.txt" 2>/dev/null || true
    perf report -q -i "$TMP/perf.data" --children --sort symbol --percent-limit 2 \
        --stdio -g none >"$OUT/perf-children.txt" 2>/dev/null || true
}
