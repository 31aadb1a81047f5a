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
# Shell builtins where they do: every process costs ~0.1 s under emulation.
has_word() { [[ " $1 " == *" $2 "* ]]; }
has_lines() { # text, then lines it must have
    local text=$'\n'$1$'\n' l
    shift
    for l; do [[ $text == *$'\n'"$l"$'\n'* ]] || return 1; done
}
no_v1_mount() {
    local _dev _dir type _rest
    while read -r _dev _dir type _rest; do [ "$type" != cgroup ] || return 1; done </proc/self/mounts
}
v1_mount_fails() { ! mount -t cgroup -o pids none "$1" 2>/dev/null; }
in_proc_cgroups() {
    local name _rest
    while read -r name _rest; do [ "$name" != "$1" ] || return 0; done </proc/cgroups
    return 1
}

# --- the host: pure cgroup v2 --------------------------------------------------------------
fstype=$(stat -fc %T /sys/fs/cgroup)
check "/sys/fs/cgroup is cgroup2fs (got $fstype)" [ "$fstype" = cgroup2fs ]
controllers=$(</sys/fs/cgroup/cgroup.controllers)
echo "     controllers: $controllers"
for c in cpu memory pids io; do
    check "controller $c is available" has_word "$controllers" "$c"
done
# Every controller this kernel has on v2 (the v1-only ones have no v2 interface).
for c in cpuset hugetlb rdma misc; do
    if in_proc_cgroups "$c"; then
        check "controller $c (in /proc/cgroups) is available" has_word "$controllers" "$c"
    fi
done
subtree=$(</sys/fs/cgroup/cgroup.subtree_control)
check "every controller is enabled in the root's subtree_control" [ "$subtree" = "$controllers" ]
check "no cgroup v1 hierarchy is mounted" no_v1_mount
probe=$(mktemp -d)
check "a v1 hierarchy cannot be mounted (cgroup_no_v1=all)" v1_mount_fails "$probe"
umount "$probe" 2>/dev/null
rmdir "$probe"
self_cgroup=$(</proc/self/cgroup)
check "/proc/self/cgroup has only the v2 line ($self_cgroup)" [ "${self_cgroup%%/*}" = "0::" ]

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
while IFS= read -r l; do echo "     | $l"; done <<<"$out"
check "run exits 0 (got $rc)" [ "$rc" = 0 ]
check "the container's /proc/self/cgroup is its namespace root (0::/)" \
    [ "$(sed -n 1p <<<"$out")" = "0::/" ]
check "the container sees a cgroup2 tree (cgroup.procs, cgroup.controllers)" \
    has_lines "$out" cgroup.procs cgroup.controllers
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
