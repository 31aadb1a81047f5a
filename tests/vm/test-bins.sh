#!/usr/bin/env bash
# Builds the given integration test targets (tests/NAME.rs) with cargo's release profile and
# prints the absolute path of each test binary, one per line, in the order given.
#
#   tests/vm/test-bins.sh cli cgroups
set -euo pipefail
cd "$(dirname "$0")/../.."
[ $# -gt 0 ] || exit 0
args=()
for t in "$@"; do args+=(--test "$t"); done
json=$(cargo test --release --no-run --message-format=json "${args[@]}")
for t in "$@"; do
    bin=$(jq -r --arg t "$t" 'select(.reason == "compiler-artifact" and .profile.test
        and .target.name == $t and (.target.kind | index("test"))) | .executable' <<<"$json")
    [ -n "$bin" ] || { echo "test-bins: no test binary for tests/$t.rs" >&2; exit 1; }
    echo "$bin"
done
