#!/usr/bin/env bash
# Smoke test, run inside the VM (tests/vm/run-in-vm.sh tests/vm/smoke.sh [RUSE]): proves the VM
# is a real pure cgroup-v2 host, then runs busybox containers with the host-built ruse (RUSE,
# default target/release/ruse, else target/debug/ruse) and checks from the VM's side what the
# kernel shows: the container's cgroup namespace root, and pids.max in its cgroup.
# Prints one line per check and "N passed, N failed" at the end; exits 1 on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1

ruse=${1:-}
if [ -z "$ruse" ]; then
    for r in target/release/ruse target/debug/ruse; do
        [ -x "$r" ] && { ruse=$PWD/$r; break; }
    done
fi
[ -x "$ruse" ] || { echo "smoke: no ruse binary (cargo build --release first)" >&2; exit 1; }

passed=0 failed=0
check() { # name, then a command that must succeed
    local name=$1
    shift
    if "$@"; then
        echo "ok   $name"
        passed=$((passed + 1))
    else
        echo "FAIL $name"
        failed=$((failed + 1))
    fi
}
has_word() { grep -qw -- "$2" <<<"$1"; }

# --- the host: pure cgroup v2 --------------------------------------------------------------
fstype=$(stat -fc %T /sys/fs/cgroup)
check "/sys/fs/cgroup is cgroup2fs (got $fstype)" [ "$fstype" = cgroup2fs ]
controllers=$(cat /sys/fs/cgroup/cgroup.controllers)
echo "     controllers: $controllers"
for c in cpu memory pids io; do
    check "controller $c is available" has_word "$controllers" "$c"
done
# Every controller this kernel has on v2 (the v1-only ones have no v2 interface).
for c in cpuset hugetlb rdma misc; do
    if grep -q "^${c}[[:space:]]" /proc/cgroups; then
        check "controller $c (in /proc/cgroups) is available" has_word "$controllers" "$c"
    fi
done
subtree=$(cat /sys/fs/cgroup/cgroup.subtree_control)
check "every controller is enabled in the root's subtree_control" [ "$subtree" = "$controllers" ]
check "no cgroup v1 hierarchy is mounted" bash -c '! awk "\$3 == \"cgroup\"" /proc/self/mounts | grep -q .'
probe=$(mktemp -d)
check "a v1 hierarchy cannot be mounted (cgroup_no_v1=all)" bash -c "! mount -t cgroup -o pids none $probe 2>/dev/null"
umount "$probe" 2>/dev/null
rmdir "$probe"
check "/proc/self/cgroup has only the v2 line" [ "$(cut -d: -f1,2 /proc/self/cgroup)" = "0:" ]

# --- containers ----------------------------------------------------------------------------
work=$(mktemp -d /tmp/ruse-smoke.XXXXXX)
state="$work/state"
ids=()
cleanup() {
    for id in "${ids[@]}"; do "$ruse" --root "$state" delete --force "$id" >/dev/null 2>&1; done
    rm -rf "$work"
}
trap cleanup EXIT

# A bundle like bundles/busybox, in a scratch dir. Its rootfs is the one `just rootfs` built
# on the host (copied: one process), else built here by the same script (hundreds of `ln`
# processes: minutes under emulation).
bundle="$work/bundle"
mkdir -p "$bundle"
if [ -x bundles/busybox/rootfs/bin/busybox ]; then
    cp -a bundles/busybox/rootfs "$bundle/rootfs" || exit 1
else
    cp bundles/busybox/build-rootfs.sh "$bundle/"
    bash "$bundle/build-rootfs.sh" >/dev/null || { echo "smoke: build-rootfs.sh failed" >&2; exit 1; }
fi
"$ruse" spec -b "$bundle" || exit 1
config() { # jq filter applied to a fresh copy of the spec config
    jq "$1" "$bundle/config.json" >"$bundle/config.json.new" && mv "$bundle/config.json.new" "$bundle/config.json"
}
config '.process.terminal = false'
cp "$bundle/config.json" "$work/base.json"

id=smoke-$$-ns
ids+=("$id")
config '.process.args = ["sh", "-c", "cat /proc/self/cgroup; echo ---; ls /sys/fs/cgroup"]'
out=$("$ruse" --root "$state" run --bundle "$bundle" "$id" 2>&1)
rc=$?
echo "$out" | sed 's/^/     | /'
check "run exits 0 (got $rc)" [ "$rc" = 0 ]
check "the container's /proc/self/cgroup is its namespace root (0::/)" \
    [ "$(sed -n 1p <<<"$out")" = "0::/" ]
check "the container sees a cgroup2 tree (cgroup.procs, cgroup.controllers)" \
    bash -c "grep -qx cgroup.procs <<<'$out' && grep -qx cgroup.controllers <<<'$out'"
check "run left no state dir" [ ! -e "$state/$id" ]
check "run left no cgroup named $id" bash -c "[ -z \"\$(find /sys/fs/cgroup -name '$id' -type d)\" ]"

# pids.limit: the container is created (init waits on the exec fifo, already in its cgroup),
# pids.max is read through the init's /proc/<pid>/cgroup, then the container is deleted.
id=smoke-$$-pids
ids+=("$id")
cp "$work/base.json" "$bundle/config.json"
config ".process.args = [\"true\"] | .linux.cgroupsPath = \"/$id\" | .linux.resources.pids.limit = 42"
"$ruse" --root "$state" create --bundle "$bundle" "$id" >"$work/create.out" 2>&1
rc=$?
check "create with pids.limit exits 0 (got $rc: $(cat "$work/create.out"))" [ "$rc" = 0 ]
pid=$("$ruse" --root "$state" state "$id" 2>/dev/null | jq -r .pid)
cg=$(sed -n 's/^0:://p' "/proc/$pid/cgroup" 2>/dev/null)
echo "     init pid $pid in cgroup $cg"
check "the container's cgroup is /$id" [ "$cg" = "/$id" ]
check "pids.max in /sys/fs/cgroup/$id is 42" [ "$(cat "/sys/fs/cgroup$cg/pids.max" 2>&1)" = 42 ]
"$ruse" --root "$state" delete --force "$id" >/dev/null 2>&1
check "delete removed /sys/fs/cgroup/$id" [ ! -e "/sys/fs/cgroup/$id" ]

echo "smoke: $passed passed, $failed failed"
[ "$failed" = 0 ]
