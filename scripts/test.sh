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

log=$(mktemp)
if [ "$variant" = asan ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
fi
"build/$variant/zygo-tests" --jobs 2 2>&1 | tee "$log"
synth=$(grep -a "Synthesis:" "$log" | tail -n 1)
rm -f "$log"
if [ -z "$synth" ]; then
    echo "FAILED: the Criterion suite did not report (crashed?)"
    failed=$((failed + 1))
else
    t_pass=$(sed -n 's/.*Passing: \([0-9]*\).*/\1/p' <<<"$synth")
    t_fail=$(sed -n 's/.*Failing: \([0-9]*\).*/\1/p' <<<"$synth")
    t_crash=$(sed -n 's/.*Crashing: \([0-9]*\).*/\1/p' <<<"$synth")
    passed=$((passed + t_pass))
    failed=$((failed + t_fail + t_crash))
fi

echo "$variant: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
