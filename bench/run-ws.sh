#!/usr/bin/env bash
# bench/run-ws.sh — WebSockets: zygo's hub (src/ws) against the specification's server
# (bench/ws/server.mjs: Node, the `ws` package, src/ws/index.ts as written) in one run.
#
# 1. Idle memory: the server's RSS with IDLE authenticated, idle connections (one user, the
#    owner's access token, ?token=…), per connection, two ways: the marginal cost (RSS with IDLE
#    minus RSS with IDLE/2, over IDLE/2 connections: what one more connection costs, once the
#    handshakes' transient memory and one-time costs are paid), and everything from the
#    server's start over IDLE (an upper bound). WARM connections are opened and closed first.
#    RSS is read a second after the first half and HOLD/2 seconds after the second half said
#    "connected".
# 2. Fan-out latency: FANOUT connections subscribed to one room; FANOUT_ROUNDS messages
#    (after 5 uncounted ones), each published by POST /bench/publish?room=… (zygo: the bench
#    server's route calling realtime_publish_room, i.e. the real bus: hub + database relay;
#    Node: the specification's broadcastToRoom), 20 ms apart. Latency = from just before the
#    publish request to each subscriber's copy being read (bench/ws_load.c, one epoll thread
#    for all subscribers): p50/p99 over every delivery, and p99 over the rounds of the last
#    delivery of each round.
#
#   bench/run-ws.sh
#   IDLE=5000 FANOUT=500 bench/run-ws.sh
#
# Environment (all optional): IDLE=10000 WARM=1000 HOLD=6 FANOUT=1000 FANOUT_ROUNDS=200,
# ZYGO_BIN / ZYGO_REV / NO_INSTALL / RESULTS_DIR / QUIET_WAIT / BENCH_WAIT as in bench/lib.sh.
# Needs: curl, node 20+ and npm (bench/ws's package, npm ci), zygo's build (make bench-ws).
# Results go to RESULTS_DIR/<UTC time>-ws/ (table.md). Takes about a minute.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

IDLE=${IDLE:-10000}
WARM=${WARM:-1000}
HOLD=${HOLD:-6}
FANOUT=${FANOUT:-1000}
FANOUT_ROUNDS=${FANOUT_ROUNDS:-200}
WS_DIR=$BENCH_DIR/ws
TARGET_KB=4

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zygo-bench.XXXXXX")
LOAD_PID=
cleanup() {
    [ -n "$LOAD_PID" ] && kill -TERM "$LOAD_PID" 2>/dev/null
    bench_cleanup
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_lock
need_tools
if [ ! -f "$WS_DIR/node_modules/.package-lock.json" ] ||
    [ "$WS_DIR/package-lock.json" -nt "$WS_DIR/node_modules/.package-lock.json" ]; then
    [ -n "${NO_INSTALL:-}" ] && die "bench/ws/node_modules is missing or stale (NO_INSTALL is set)"
    say "bench: npm ci --prefix bench/ws"
    npm ci --prefix "$WS_DIR" --no-audit --no-fund --loglevel=error >&2
fi
build_zygo zygo-bench-server
say "bench: building the load client (bench/ws_load.c)"
cc -std=c17 -O2 -Wall -Wextra -Werror -o "$TMP/ws_load" "$BENCH_DIR/ws_load.c" ||
    die "cannot build bench/ws_load.c"
# The client holds as many sockets as the server: raise our own limit for it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
[ "$(ulimit -n)" -gt $((IDLE + 100)) ] || die "open-files limit $(ulimit -n) is below IDLE=$IDLE"

DATA=$TMP/data
mkdir -p "$DATA"
JWT_SECRET=$(random_hex 32)
ENC_KEY=$(random_hex 32)
API_URL=http://127.0.0.1:3000 # the tokens' issuer, the same for both servers

start_server() {
    local kind=$1 port=$3 name=$4
    if [ "$kind" = zygo ]; then
        launch "$name" "$port" "$DATA" HOME="$DATA" \
            NODE_ENV=production HOST=127.0.0.1 PORT="$port" LOG_LEVEL=warn \
            ZYGO_DATA_DIR="$DATA" ZYGO_ENV_FILE="$DATA/absent.env" \
            RATE_LIMIT_ENABLED=false ACCESS_TOKEN_EXPIRES_IN=1h \
            APP_URL=http://127.0.0.1 API_URL="$API_URL" \
            JWT_SECRET="$JWT_SECRET" ENCRYPTION_KEY="$ENC_KEY" -- "$ZYGO_BIN"
    else
        launch "$name" "$port" "$WS_DIR" HOME="$TMP" NODE_ENV=production PORT="$port" \
            JWT_SECRET="$JWT_SECRET" API_URL="$API_URL" -- "$NODE_BIN" server.mjs
    fi
}

start_any() {
    local _
    for _ in 1 2 3 4 5; do
        PORT_NOW=$(free_port)
        start_server "$1" "" "$PORT_NOW" "$2" && return 0
    done
    die "$2: no free port after 5 tries"
}

STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS_DIR/$STAMP-ws
mkdir -p "$OUT"
: >"$OUT/rows.tsv"

# The owner's token: zygo signs up (and its database stays for its own runs).
say "bench: signing up the owner (zygo)"
start_any zygo setup
curl -s -o "$TMP/signup.json" -w '%{http_code}' -H 'Content-Type: application/json' \
    -d '{"email":"owner@bench.example","password":"Bench-Passw0rd!2026","tenantName":"Bench Inc"}' \
    "http://127.0.0.1:$PORT_NOW/api/v1/auth/signup" >"$TMP/signup.code"
stop_server
[ "$(cat "$TMP/signup.code")" = 201 ] || die "signup failed: $(cat "$TMP/signup.json")"
TOKEN=$("$NODE_BIN" -p 'JSON.parse(require("fs").readFileSync(process.argv[1])).accessToken' "$TMP/signup.json")
TENANT=$("$NODE_BIN" -p 'JSON.parse(require("fs").readFileSync(process.argv[1])).tenant.id' "$TMP/signup.json")
ROOM="tenant:$TENANT:bench"

# wait_ready FILE PID NAME — until the idle client FILE says "ready".
wait_ready() {
    for _ in $(seq 1 600); do
        grep -q '^ready' "$1" && return 0
        kill -0 "$2" 2>/dev/null || die "$3: $(cat "$1")"
        sleep 0.1
    done
    die "$3: the idle client did not get its connections within 60 s"
}

# idle NAME — RSS with no connection yet, after a warm-up, with IDLE/2 and with IDLE idle
# connections (two clients); appends to idle.tsv. The marginal cost, (RSS at IDLE − RSS at
# IDLE/2) / (IDLE/2), is what one more connection costs; (RSS at IDLE − RSS at start) / IDLE
# also carries the one-time costs and the memory the handshakes leave in the allocator.
idle() {
    local name=$1 start base half full secs pid1 pid2 h=$((IDLE / 2))
    start=$(proc_kb "$SRV_PID" VmRSS)
    "$TMP/ws_load" idle "$PORT_NOW" "$TOKEN" "$WARM" 0 >"$OUT/$name.warm.txt" 2>&1 ||
        die "$name: warm-up failed: $(cat "$OUT/$name.warm.txt")"
    sleep 2
    base=$(proc_kb "$SRV_PID" VmRSS)
    "$TMP/ws_load" idle "$PORT_NOW" "$TOKEN" "$h" $((HOLD * 2)) >"$OUT/$name.idle1.txt" 2>&1 &
    pid1=$!
    LOAD_PID=$pid1
    wait_ready "$OUT/$name.idle1.txt" "$pid1" "$name"
    sleep 1
    half=$(proc_kb "$SRV_PID" VmRSS)
    "$TMP/ws_load" idle "$PORT_NOW" "$TOKEN" $((IDLE - h)) "$HOLD" >"$OUT/$name.idle2.txt" 2>&1 &
    pid2=$!
    wait_ready "$OUT/$name.idle2.txt" "$pid2" "$name"
    sleep "$(awk -v h="$HOLD" 'BEGIN{print h / 2}')"
    full=$(proc_kb "$SRV_PID" VmRSS)
    wait "$pid2" || die "$name: the idle client failed: $(cat "$OUT/$name.idle2.txt")"
    wait "$pid1" || die "$name: the idle client failed: $(cat "$OUT/$name.idle1.txt")"
    LOAD_PID=
    secs=$(awk '{print $3}' "$OUT/$name.idle1.txt")
    say "bench:   $name: RSS at start $((start / 1024)) MB, after warm-up $((base / 1024)) MB, with $h idle $((half / 1024)) MB, with $IDLE idle $((full / 1024)) MB"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$start" "$base" "$half" "$full" "$secs" >>"$OUT/idle.tsv"
}

# fanout NAME — latency of one message to FANOUT subscribers.
fanout() {
    local name=$1
    "$TMP/ws_load" fanout "$PORT_NOW" "$TOKEN" "$FANOUT" "$ROOM" "$FANOUT_ROUNDS" \
        >"$OUT/$name.fanout.txt" 2>&1 || die "$name: fan-out failed: $(cat "$OUT/$name.fanout.txt")"
    say "bench:   $name: $(cat "$OUT/$name.fanout.txt")"
    printf '%s\t%s\n' "$name" "$(cat "$OUT/$name.fanout.txt")" >>"$OUT/fanout.tsv"
}

{
    echo "# zygo vs the specification's ws server — idle WebSockets and room fan-out"
    echo
    echo "- date: $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(machine_line)"
    echo "- zygo: bench server (the real app and server, plus POST /bench/publish) of $ZYGO_DESC, NODE_ENV=production, SQLite, WebSocket defaults (WS_*)"
    echo "- ws: node $(node --version), ws $("$NODE_BIN" -p "require('$WS_DIR/node_modules/ws/package.json').version"), bench/ws/server.mjs (the specification's src/ws/index.ts)"
    echo "- load: bench/ws_load.c, one epoll thread; idle: $IDLE connections after $WARM opened and closed; fan-out: $FANOUT subscribers, $FANOUT_ROUNDS messages 20 ms apart after 5 uncounted"
    echo
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

for kind in zygo ws; do
    wait_quiet
    say "bench: $kind"
    start_any "$kind" "$kind"
    idle "$kind"
    fanout "$kind"
    stop_server
done

# ---------------------------------------------------------------- the table
awk -F'\t' -v n="$IDLE" -v target="$TARGET_KB" '
FNR == 1 { file++ }
file == 1 { st[$1] = $2; base[$1] = $3; half[$1] = $4; full[$1] = $5; conn[$1] = $6; order[++k] = $1 }
file == 2 {
    m = split($2, w, " ")
    for (i = 1; i < m; i++) {
        if (w[i] == "p50" && !(($1, "p50") in f)) f[$1, "p50"] = w[i + 1]
        if (w[i] == "p99" && !(($1, "p99") in f)) f[$1, "p99"] = w[i + 1]
        if (w[i] == "max") f[$1, "max"] = w[i + 1]
        if (w[i] == "last-of-round") { f[$1, "lp50"] = w[i + 2]; f[$1, "lp99"] = w[i + 4] }
    }
}
END {
    h = int(n / 2)
    print "| server | RSS at start MB | with " n " idle MB | KB per connection (marginal, " h "→" n ") | KB per connection (all, from start) | connect " h " s | fan-out p50 ms | fan-out p99 ms | max ms | last of round p50 ms | last of round p99 ms |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= k; i++) {
        s = order[i]; mar[s] = (full[s] - half[s]) / (n - h); all[s] = (full[s] - st[s]) / n
        printf "| %s | %.1f | %.1f | %.2f | %.2f | %s | %s | %s | %s | %s | %s |\n", s, st[s] / 1024,
            full[s] / 1024, mar[s], all[s], conn[s], f[s, "p50"], f[s, "p99"], f[s, "max"], f[s, "lp50"], f[s, "lp99"]
    }
    printf "\nTargets: zygo ≤ %d KB RSS per idle connection — %s (%.2f KB marginal, %.2f KB counting everything from start; ws %.2f / %.2f KB); fan-out p99 %s ms vs ws %s ms — %s.\n",
        target, (mar["zygo"] <= target && all["zygo"] <= target ? "met" : "MISSED"), mar["zygo"], all["zygo"],
        mar["ws"], all["ws"], f["zygo", "p99"], f["ws", "p99"], (f["zygo", "p99"] + 0 < f["ws", "p99"] + 0 ? "lower" : "NOT lower")
}' "$OUT/idle.tsv" "$OUT/fanout.tsv" >"$OUT/table.md"
cat "$OUT/header.md" "$OUT/table.md" >"$OUT/README.md"
cat "$OUT/table.md"
say "bench: results in $OUT"
