#!/usr/bin/env bash
# Times ruse against runc and crun on bundles/busybox running /bin/true: one hyperfine
# invocation per scenario, then a table of mean ± stddev and each runtime's ratio to crun.
#
#   scripts/bench.sh [path/to/ruse]      (default target/release/ruse; BENCH_RUNS=30)
#
# Scenarios: "create+start+delete" (create, start, delete --force), "run" (foreground run,
# which removes the container when it exits) and "exec" (foreground exec of /bin/true into a
# running container of the same bundle running sleep). Every runtime gets its own private
# --root; a fixed id per runtime is cleaned with `delete --force` before each timed run
# (--prepare).
# A runtime that is missing is skipped with a note; one that fails a scenario once, untimed,
# is reported with its error and left out of that scenario, and the script then exits 1.
#
# crun 1.8 refuses hybrid cgroup hosts whose cgroup2 tree has controllers, so on such a host
# the script re-executes itself in a private mount namespace with an empty tmpfs over
# /sys/fs/cgroup/unified (the host's hierarchies are untouched), for every runtime alike.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
ruse=${1:-$here/target/release/ruse}
runs=${BENCH_RUNS:-30}
warmup=${BENCH_WARMUP:-3}

[ "$(id -u)" = 0 ] || { echo "bench: needs root" >&2; exit 1; }
command -v hyperfine >/dev/null || { echo "bench: hyperfine not found (just deps)" >&2; exit 1; }
[ -x "$here/bundles/busybox/rootfs/bin/busybox" ] || { echo "bench: no rootfs; run just rootfs" >&2; exit 1; }

if [ -z "${RUSE_BENCH_NS:-}" ] && grep -q ' /sys/fs/cgroup/unified .* - cgroup2 ' /proc/self/mountinfo &&
    [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
    echo "bench: hybrid cgroups with cgroup2 controllers: running in a private mount namespace (see header)"
    exec env RUSE_BENCH_NS=1 unshare -m --propagation private bash "$0" "$ruse"
fi
if [ -n "${RUSE_BENCH_NS:-}" ]; then
    mount -t tmpfs -o mode=755 none /sys/fs/cgroup/unified
fi

work=$(mktemp -d /tmp/ruse-bench.XXXXXX)
declare -a names=() paths=()
cleanup() {
    local i
    for i in "${!names[@]}"; do
        for id in csd run probe-csd probe-run ex; do
            "${paths[$i]}" --root "$work/root-${names[$i]}" delete --force "$id-${names[$i]}" >/dev/null 2>&1 || true
        done
    done
    rm -rf "$work"
}
trap cleanup EXIT

python3 - "$here/bundles/busybox" "$work/bundle" <<'PY'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
with open(os.path.join(src, "config.json")) as f:
    d = json.load(f)
d["ociVersion"] = "1.0.2"  # crun 1.8 rejects newer versions
d["root"] = {"path": os.path.join(src, "rootfs"), "readonly": True}
d["process"]["args"] = ["/bin/true"]
d["process"]["terminal"] = False
with open(os.path.join(dst, "config.json"), "w") as f:
    json.dump(d, f)
# The exec scenario's container: the same, running sleep.
os.makedirs(dst + "/../sleeper")
d["process"]["args"] = ["sleep", "100000"]
with open(os.path.join(dst, "../sleeper/config.json"), "w") as f:
    json.dump(d, f)
PY

for r in "$ruse" runc crun; do
    n=$(basename "$r")
    if p=$(command -v "$r"); then
        names+=("$n")
        paths+=("$p")
        mkdir -m 0700 "$work/root-$n"
    else
        hint=
        [ "$r" != "$ruse" ] || hint="; build it with: just build"
        echo "bench: $n not found ($r), skipped$hint"
    fi
done
[ ${#names[@]} -gt 0 ] || { echo "bench: no runtime to time" >&2; exit 1; }

failed=()
B=$(printf %q "$work/bundle")
# cmd <scenario> <runtime path> <root> <id>: the shell command hyperfine times.
cmd() {
    local r root
    r=$(printf %q "$2") root=$(printf %q "$3")
    case $1 in
    csd) echo "$r --root $root create --bundle $B $4 && $r --root $root start $4 && $r --root $root delete --force $4" ;;
    run) echo "$r --root $root run --bundle $B $4" ;;
    exec) echo "$r --root $root exec $4 /bin/true" ;;
    esac
}
# scenario <key> <title>: runs each runtime once untimed, then times those that worked.
scenario() {
    local key=$1 title=$2 i n r root id out rc
    local args=()
    echo
    echo "== $title (/bin/true, $runs runs, $warmup warmup)"
    for i in "${!names[@]}"; do
        n=${names[$i]} r=${paths[$i]} root=$work/root-$n
        id=probe-$key-$n
        if [ "$key" = exec ]; then
            # One running container per runtime (`sleep`), exec'd into again and again.
            id=ex-$n
            "$r" --root "$root" run -d --bundle "$work/sleeper" "$id" </dev/null >/dev/null 2>&1 || true
        fi
        rc=0
        out=$(bash -c "$(cmd "$key" "$r" "$root" "$id")" 2>&1 </dev/null) || rc=$?
        if [ "$rc" != 0 ]; then
            echo "  $n: FAILED (exit status $rc), skipped:"
            printf '%s\n' "${out:-(no output)}" | tail -n 5 | sed 's/^/    /'
            failed+=("$n ($key)")
            "$r" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
            continue
        fi
        if [ "$key" = exec ]; then
            args+=(-n "$n" "$(cmd "$key" "$r" "$root" "$id")")
            continue
        fi
        "$r" --root "$root" delete --force "$id" >/dev/null 2>&1 || true
        id=$key-$n
        args+=(-n "$n" --prepare "$(printf %q "$r") --root $(printf %q "$root") delete --force $id >/dev/null 2>&1 || true"
            "$(cmd "$key" "$r" "$root" "$id")")
    done
    if [ ${#args[@]} -eq 0 ]; then
        echo "  nothing to time"
        return
    fi
    if ! hyperfine --style none --warmup "$warmup" --runs "$runs" \
        --export-json "$work/$key.json" "${args[@]}" </dev/null >"$work/$key.log" 2>&1; then
        echo "  hyperfine failed:"
        sed 's/^/    /' "$work/$key.log" | tail -15
        failed+=("hyperfine ($title)")
        return
    fi
    python3 - "$work/$key.json" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
base = next((r["mean"] for r in res if r["command"] == "crun"), None)
print(f"  {'runtime':<8} {'mean ± stddev':>20} {'min':>9} {'max':>9}  {'vs crun':>8}")
for r in res:
    ratio = f"{r['mean'] / base:.2f}x" if base else "n/a"
    ms = lambda v: f"{v * 1000:.2f} ms"
    print(f"  {r['command']:<8} {ms(r['mean']):>10} ± {ms(r['stddev']):>8} {ms(r['min']):>9} {ms(r['max']):>9}  {ratio:>8}")
PY
}

scenario csd "create + start + delete"
scenario run "run (foreground; the runtime removes the container on exit)"
scenario exec "exec into a running container (foreground)"

if [ ${#failed[@]} -gt 0 ]; then
    echo
    echo "bench: FAILED: ${failed[*]}"
    exit 1
fi
