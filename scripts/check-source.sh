#!/usr/bin/env bash
# Source rules the compiler does not enforce: no banned libc functions (unbounded copies and
# unchecked conversions), no tabs. Exit 1 with the offending lines.
set -uo pipefail
cd "$(dirname "$0")/.."
fail=0
banned='\b(strcpy|stpcpy|strcat|sprintf|vsprintf|gets|atoi|atol|atoll)[[:space:]]*\('
if grep -rnE "$banned" src tests tools --include='*.c' --include='*.h'; then
    echo "check-source: banned function used (see style.md): use snprintf/strtol/buf_*" >&2
    fail=1
fi
if grep -rnP '\t' src --include='*.c' --include='*.h'; then
    echo "check-source: tab characters in src/" >&2
    fail=1
fi
exit $fail
