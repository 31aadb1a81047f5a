#!/usr/bin/env bash
# Times ruse against runc and crun on bundles/busybox running /bin/true, in one hyperfine
# run per scenario, and prints each runtime's mean relative to crun.
#
# crun 1.8 refuses hybrid cgroup hosts whose cgroup2 tree has controllers, so on such a host
# the whole benchmark runs in a private mount namespace with an empty tmpfs over
# /sys/fs/cgroup/unified (the host's hierarchies are untouched), for every runtime alike.
set -euo pipefail
ruse=${1:-target/release/ruse}
runs=${BENCH_RUNS:-30}
here=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/ruse-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT

python3 - "$here/bundles/busybox" "$work/bundle" <<'PY'
import json, os, sys
src, dst = sys.argv[1], sys.argv[2]
os.makedirs(dst)
d = json.load(open(os.path.join(src, "config.json")))
d["ociVersion"] = "1.0.2"  # crun 1.8 rejects newer versions
d["root"] = {"path": os.path.join(src, "rootfs"), "readonly": True}
d["process"]["args"] = ["/bin/true"]
d["process"]["terminal"] = False
json.dump(d, open(os.path.join(dst, "config.json"), "w"))
PY

runtimes=()
for r in "$ruse" runc crun; do
    if command -v "$r" >/dev/null 2>&1; then runtimes+=("$(command -v "$r")"); else echo "bench: $r not found, skipped"; fi
done

inner() {
    set -euo pipefail
    local cmds_csd=() cmds_run=() names=()
    for r in "${runtimes[@]}"; do
        local n; n=$(basename "$r")
        names+=("$n")
        local root="$work/root-$n"
        "$r" --root "$root" run --bundle "$work/bundle" probe-$n >/dev/null \
            || { echo "bench: $n cannot run the bundle; fix that first" >&2; exit 1; }
        cmds_csd+=(-n "$n" --prepare "$r --root $root delete --force csd-$n"
            "$r --root $root create --bundle $work/bundle csd-$n && $r --root $root start csd-$n && $r --root $root delete --force csd-$n")
        cmds_run+=(-n "$n" --prepare "$r --root $root delete --force run-$n"
            "$r --root $root run --bundle $work/bundle run-$n")
    done
    echo "== create + start + delete (/bin/true)"
    hyperfine ${HF_FLAGS:-} --warmup 3 --runs "$runs" --export-json "$work/csd.json" "${cmds_csd[@]}" >/dev/null
    report "$work/csd.json"
    echo "== run (/bin/true, foreground, removed on exit)"
    hyperfine --warmup 3 --runs "$runs" --export-json "$work/run.json" "${cmds_run[@]}" >/dev/null
    report "$work/run.json"
}

report() {
    python3 - "$1" <<'PY'
import json, sys
res = json.load(open(sys.argv[1]))["results"]
base = next((r["mean"] for r in res if r["command"] == "crun"), None)
for r in res:
    ratio = f"{r['mean'] / base:.2f}x crun" if base else "n/a"
    print(f"  {r['command']:<6} {r['mean']*1000:7.2f} ms ± {r['stddev']*1000:5.2f}   {ratio}")
PY
}

export -f inner report
export work runs
if grep -q " /sys/fs/cgroup/unified .* cgroup2 " /proc/self/mountinfo && [ -n "$(cat /sys/fs/cgroup/unified/cgroup.controllers 2>/dev/null)" ]; then
    RUNTIMES="${runtimes[*]}" unshare -m --propagation private bash -c '
        mount -t tmpfs none /sys/fs/cgroup/unified
        read -ra runtimes <<<"$RUNTIMES"
        inner'
else
    inner
fi
