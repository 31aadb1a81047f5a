#!/usr/bin/env bash
# What `just vm-test` runs inside the VM: the smoke test with RUSE, then each test binary
# (built on the host by cargo, run as cargo would: cwd is the repo). Every part runs even when
# an earlier one failed; the last line sums the tests: "vm-test: N passed, N failed".
#
#   tests/vm/run-in-vm.sh tests/vm/suite.sh RUSE [TEST_BINARY [ARGS…]]…
# A test binary's own arguments (e.g. a name filter) follow it up to the next absolute path.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
[ $# -ge 1 ] || { echo "usage: suite.sh RUSE [TEST_BINARY [ARGS…]]…" >&2; exit 2; }
ruse=$1
shift

passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT
count() { # adds up the summary lines in $log: libtest's "test result:" and smoke's
    local p f sums
    sums=$(grep -E '^test result: |^smoke: [0-9]+ passed' "$log")
    p=$(grep -Eo '[0-9]+ passed' <<<"$sums" | awk '{ s += $1 } END { print s + 0 }')
    f=$(grep -Eo '[0-9]+ failed' <<<"$sums" | awk '{ s += $1 } END { print s + 0 }')
    passed=$((passed + p))
    failed=$((failed + f))
    # A part that failed without reporting a failed test (crash, build error) counts as one.
    [ "$1" = 0 ] || [ "$f" -gt 0 ] || failed=$((failed + 1))
}

echo "=== vm-test: smoke (tests/vm/smoke.sh $ruse)"
bash tests/vm/smoke.sh "$ruse" 2>&1 | tee "$log"
count "${PIPESTATUS[0]}"

while [ $# -gt 0 ]; do
    bin=$1
    shift
    args=()
    while [ $# -gt 0 ] && [ "${1#/}" = "$1" ]; do
        args+=("$1")
        shift
    done
    echo "=== vm-test: $bin ${args[*]}"
    "$bin" "${args[@]}" 2>&1 | tee "$log"
    count "${PIPESTATUS[0]}"
done

echo "vm-test: $passed passed, $failed failed"
[ "$failed" = 0 ]
