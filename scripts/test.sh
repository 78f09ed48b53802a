#!/usr/bin/env bash
# The whole test suite for one build variant: `scripts/test.sh release|asan` (called by
# `make test`, which builds first). Prints Criterion's report, then one closing line
# "N passed, N failed".
set -uo pipefail
variant=${1:-release}
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export ZYGO_ROOT="$root" ZYGO_BIN="$root/build/$variant/zygo"
passed=0 failed=0

step() { # name, command...
    local name=$1; shift
    if "$@"; then passed=$((passed + 1)); echo "ok: $name"
    else failed=$((failed + 1)); echo "FAILED: $name"; fi
}

step "source rules" scripts/check-source.sh

# The OpenAPI validator (@redocly/cli) runs from tests/openapi/node_modules.
if [ ! -x tests/openapi/node_modules/.bin/redocly ]; then
    echo "installing the OpenAPI validator (npm)…"
    npm ci --prefix tests/openapi --no-audit --no-fund --loglevel=error >/dev/null 2>&1 ||
        npm install --prefix tests/openapi --no-audit --no-fund --loglevel=error >/dev/null
fi

if [ "$variant" = asan ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi

# suite NAME FILTER: runs the Criterion binary on the tests matching FILTER and adds its
# synthesis to the totals.
suite() {
    local name=$1 filter=$2 log synth
    log=$(mktemp)
    echo "== $name =="
    "build/$variant/zygo-tests" --jobs 2 --filter "$filter" 2>&1 | tee "$log"
    synth=$(grep -a "Synthesis:" "$log" | tail -n 1)
    rm -f "$log"
    if [ -z "$synth" ]; then
        echo "FAILED: $name: the Criterion suite did not report (crashed?)"
        failed=$((failed + 1))
        return
    fi
    passed=$((passed + $(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$synth")))
    failed=$((failed + $(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$synth")))
    failed=$((failed + $(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$synth")))
}

# A throwaway PostgreSQL cluster on loopback for the PostgreSQL pass; removed on exit.
pgdir=$(mktemp -d /tmp/zygo-pg-XXXXXX)
cleanup() { scripts/pg-cluster.sh stop "$pgdir" >/dev/null 2>&1; rm -rf "$pgdir"; }
trap cleanup EXIT
if scripts/pg-cluster.sh start "$pgdir"; then
    set -a; . "$pgdir/env"; set +a
else
    echo "FAILED: could not start the PostgreSQL test cluster"
    failed=$((failed + 1))
fi

# Everything on SQLite (the default), then the API suite and the PostgreSQL driver tests on
# PostgreSQL: the same tests, a different DATABASE_URL.
ZYGO_TEST_DB=sqlite suite "SQLite" '!(pg)/*'
if [ -n "${ZYGO_TEST_PG_ADMIN_URL:-}" ]; then
    ZYGO_TEST_DB=postgres suite "PostgreSQL" '@(api|validate|server|cli|database|repos|auth|mfa|account|users|oauth_flow|roles|tenants|audit|admin|matrix|rbac|jobs|jobs_api|processors|relay|ws|workflows|workflows_ws|tx_hooks|pg)/*'
fi

echo "$variant: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
