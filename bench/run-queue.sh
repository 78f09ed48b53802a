#!/usr/bin/env bash
# bench/run-queue.sh — job queue throughput: zygo's durable queue against the specification's
# own stack (BullMQ 5 on Redis), on this machine, in one run. Each side enqueues JOBS no-op
# jobs with the specification's default job options (attempts 3, exponential backoff 5000 ms,
# removeOnComplete {age 86400, count 1000}, removeOnFail {age 604800}) in chunks of 1000
# (zygo: jobs_enqueue_many, one statement per chunk; BullMQ: addBulk), then
# starts its workers with the given concurrency and times until every job has completed:
#   zygo-sqlite  build/release/zygo-bench-queue (bench/queue_bench.c: the real runner of
#                src/jobs on a fresh SQLite file in WAL mode, synchronous=NORMAL)
#   zygo-pg      the same on a fresh PostgreSQL database (scripts/pg-cluster.sh: loopback TCP,
#                fsync off), as the application role zygo_api (row-level security on)
#   bullmq       bench/queue/bullmq.mjs (Node 20 + bullmq, pinned in bench/queue/package.json)
#                on a local redis-server (Debian's; no persistence: --save "" --appendonly no)
# For every concurrency in CONCS and every round: each side once, on a quiet machine
# (bench/lib.sh wait_quiet), in that order. The summary gives, per side and concurrency, the
# median processing rate (jobs completed per second once the workers start: the figure the
# targets are about), the enqueue rate, the end-to-end rate (JOBS / (enqueue + processing))
# and the ratios to BullMQ.
#
#   bench/run-queue.sh                      defaults below
#   ROUNDS=3 JOBS=50000 bench/run-queue.sh
#
# Environment (all optional):
#   JOBS=20000       jobs per run
#   CONCS="1 8"      worker concurrencies
#   ROUNDS=1         runs of each side per concurrency (medians at the end)
#   ZYGO_REV=rev     build zygo-bench-queue at this commit apart from the work tree
#   ZYGO_BIN=path    use this zygo-bench-queue binary and build nothing
#   RESULTS_DIR=bench/results   output goes to RESULTS_DIR/<timestamp>-queue/
#   NO_INSTALL=1     never apt-get/npm install; fail when something is missing
#   QUIET_WAIT=30    seconds to wait at most for other processes to calm down before a run
#   BENCH_WAIT=1800  seconds to wait at most for another benchmark to end
#
# Needs: node + npm, redis-server, PostgreSQL server binaries and psql (each installed with
# apt-get when missing), zygo's build dependencies (`make deps`).
# Targets: zygo-pg ≥ BullMQ's jobs/s, zygo-sqlite ≥ 2× BullMQ's jobs/s.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# shellcheck source=bench/lib.sh
. "$ROOT/bench/lib.sh"

JOBS=${JOBS:-20000}
CONCS=${CONCS:-"1 8"}
QUEUE_DIR=$BENCH_DIR/queue

TMP=$(mktemp -d "${TMPDIR:-/tmp}/zygo-bench.XXXXXX")
PGDIR=
REDIS_PID=
cleanup() {
    if [ -n "$REDIS_PID" ]; then
        kill -TERM "$REDIS_PID" 2>/dev/null || true
        wait "$REDIS_PID" 2>/dev/null || true
    fi
    pg_bench_stop
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bench_lock 'bench/run\.sh'
need_tools
command -v redis-server >/dev/null || apt_install redis-server
command -v redis-cli >/dev/null || apt_install redis-tools
need_postgres
# BullMQ exactly as locked in bench/queue/package-lock.json.
if [ ! -f "$QUEUE_DIR/node_modules/.package-lock.json" ] ||
    [ "$QUEUE_DIR/package-lock.json" -nt "$QUEUE_DIR/node_modules/.package-lock.json" ]; then
    [ -n "${NO_INSTALL:-}" ] && die "bench/queue/node_modules is missing or stale (NO_INSTALL is set)"
    say "bench: npm ci --prefix bench/queue"
    npm ci --prefix "$QUEUE_DIR" --no-audit --no-fund --loglevel=error >&2
fi
BULLMQ_VER=$("$NODE_BIN" -p "require('$QUEUE_DIR/node_modules/bullmq/package.json').version")
build_zygo zygo-bench-queue

# ---------------------------------------------------------------- servers
pg_bench_start
PG_BASE=127.0.0.1:$ZYGO_TEST_PG_PORT
PG_VERSION=$(psql -X -At "$ZYGO_TEST_PG_ADMIN_URL" -c 'SHOW server_version')

REDIS_PORT=$(free_port)
redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$TMP" >"$TMP/redis.log" 2>&1 &
REDIS_PID=$!
for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG && break
    sleep 0.1
done
redis-cli -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG || die "redis-server did not start"
REDIS_VER=$(redis-server --version | sed -E 's/.*v=([0-9.]+).*/\1/')

# ---------------------------------------------------------------- runs
STAMP=$(date -u +%Y%m%dT%H%M%SZ)
OUT=$RESULTS_DIR/$STAMP-queue
mkdir -p "$OUT"
: >"$OUT/rows.tsv"

# The environment of zygo-bench-queue: production mode, throw-away secrets, the database.
zygo_env() {
    local data=$TMP/data
    mkdir -p "$data"
    echo PATH="$PATH" NODE_ENV=production ZYGO_DATA_DIR="$data" ZYGO_ENV_FILE="$data/absent.env" \
        APP_URL=http://127.0.0.1 API_URL=http://127.0.0.1 \
        JWT_SECRET="$(random_hex 32)" ENCRYPTION_KEY="$(random_hex 32)" "$@"
}

# run_one NAME CONC ROUND — one run of one side; appends "name conc round jobs_per_s
# enqueue_per_s enqueue_s process_s" to rows.tsv.
RUN=0
run_one() {
    local name=$1 conc=$2 round=$3 log line
    RUN=$((RUN + 1))
    log=$OUT/$name.c$conc.r$round.txt
    wait_quiet
    say "bench: [$round/$ROUNDS] $name, $JOBS jobs, concurrency $conc"
    case $name in
    zygo-sqlite)
        rm -f "$TMP"/q*.db*
        # shellcheck disable=SC2046 # zygo_env: words
        env -i $(zygo_env DATABASE_URL="sqlite:$TMP/q$RUN.db") "$ZYGO_BIN" "$JOBS" "$conc" \
            >"$log" 2>&1 || { cat "$log" >&2; die "$name failed"; }
        ;;
    zygo-pg)
        local db=bench$RUN
        psql -X -q "$ZYGO_TEST_PG_ADMIN_URL" -c "CREATE DATABASE $db OWNER zygo_owner"
        # shellcheck disable=SC2046
        env -i $(zygo_env \
            DATABASE_URL="postgres://zygo_api:$ZYGO_TEST_PG_APP_PASSWORD@$PG_BASE/$db" \
            DATABASE_MIGRATION_URL="postgres://zygo_owner:$ZYGO_TEST_PG_OWNER_PASSWORD@$PG_BASE/$db") \
            "$ZYGO_BIN" "$JOBS" "$conc" >"$log" 2>&1 || { cat "$log" >&2; die "$name failed"; }
        psql -X -q "$ZYGO_TEST_PG_ADMIN_URL" -c "DROP DATABASE $db WITH (FORCE)"
        ;;
    bullmq)
        redis-cli -p "$REDIS_PORT" flushall >/dev/null
        (cd "$QUEUE_DIR" && env -i PATH="$PATH" JOBS="$JOBS" CONCURRENCY="$conc" \
            REDIS_PORT="$REDIS_PORT" "$NODE_BIN" bullmq.mjs) >"$log" 2>&1 ||
            { cat "$log" >&2; die "$name failed"; }
        ;;
    esac
    line=$(grep '^BENCH ' "$log") || { cat "$log" >&2; die "$name: no result"; }
    say "bench:   $line"
    awk -v n="$name" -v c="$conc" -v r="$round" '{
        for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
        printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", n, c, r, v["jobs_per_s"], v["enqueue_per_s"],
            v["enqueue_s"], v["process_s"]
    }' <<<"$line" >>"$OUT/rows.tsv"
}

{
    echo "# zygo vs BullMQ — job queue throughput (no-op jobs)"
    echo
    echo "- date: $(date -u +'%Y-%m-%d %H:%M UTC')"
    echo "- machine: $(machine_line); the queue's process and its server (PostgreSQL or Redis) share it"
    echo "- $JOBS jobs per run, the specification's default job options, enqueued in chunks of 1000 (jobs_enqueue_many / addBulk), then processed; rounds: $ROUNDS"
    echo "- zygo: zygo-bench-queue $(cat "$ROOT/VERSION") ($ZYGO_DESC): the runner of src/jobs; SQLite $(sqlite3 --version 2>/dev/null | awk '{print $1}') (WAL, synchronous=NORMAL); PostgreSQL $PG_VERSION (scripts/pg-cluster.sh: loopback TCP, fsync off) as the application role (row-level security)"
    echo "- bullmq: node $(node --version), bullmq $BULLMQ_VER, redis-server $REDIS_VER (no persistence)"
    echo
} >"$OUT/header.md"
cat "$OUT/header.md" >&2

for round in $(seq 1 "$ROUNDS"); do
    for conc in $CONCS; do
        for name in zygo-sqlite zygo-pg bullmq; do
            run_one "$name" "$conc" "$round"
        done
    done
done

# ---------------------------------------------------------------- table
awk -F'\t' -v jobs="$JOBS" '
function median(list,   n, a, i, j, t) {
    n = split(list, a, " ")
    for (i = 2; i <= n; i++) for (j = i; j > 1 && a[j-1] + 0 > a[j] + 0; j--) {
        t = a[j]; a[j] = a[j-1]; a[j-1] = t
    }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
{
    k = $1 SUBSEP $2
    rate[k] = rate[k] " " $4; enq[k] = enq[k] " " $5; e2e[k] = e2e[k] " " jobs / ($6 + $7)
    if (!($2 in seenc)) { seenc[$2] = 1; concs[++nc] = $2 }
}
END {
    names[1] = "zygo-sqlite"; names[2] = "zygo-pg"; names[3] = "bullmq"
    printf "| side | concurrency | jobs/s (processing) | × BullMQ | enqueue jobs/s | end-to-end jobs/s | × BullMQ |\n"
    printf "|---|---|---|---|---|---|---|\n"
    for (ci = 1; ci <= nc; ci++) {
        c = concs[ci]; b = median(rate["bullmq" SUBSEP c]); be = median(e2e["bullmq" SUBSEP c])
        for (i = 1; i <= 3; i++) {
            k = names[i] SUBSEP c
            if (!(k in rate)) continue
            printf "| %s | %s | %.0f | %.2f | %.0f | %.0f | %.2f |\n", names[i], c, median(rate[k]),
                median(rate[k]) / b, median(enq[k]), median(e2e[k]), median(e2e[k]) / be
        }
    }
    printf "\nTargets (processing jobs/s): zygo-pg ≥ BullMQ, zygo-sqlite ≥ 2× BullMQ\n"
    for (ci = 1; ci <= nc; ci++) {
        c = concs[ci]; b = median(rate["bullmq" SUBSEP c])
        s = median(rate["zygo-sqlite" SUBSEP c]) / b; p = median(rate["zygo-pg" SUBSEP c]) / b
        printf "- concurrency %s: SQLite %.2f× — %s; PostgreSQL %.2f× — %s\n", c,
            s, (s >= 2 ? "met" : "MISSED"), p, (p >= 1 ? "met" : "MISSED")
    }
}' "$OUT/rows.tsv" >"$OUT/table.md"
{
    echo
    cat "$OUT/header.md"
    cat "$OUT/table.md"
    echo
    echo "(medians over $ROUNDS round(s); raw output in ${OUT#"$ROOT"/})"
} | tee "$OUT/summary.md"
