#!/usr/bin/env bash
# Runs a command inside a throwaway qemu VM that is a pure cgroup-v2 Linux host, streams its
# output here and exits with its exit status.
#
#   tests/vm/run-in-vm.sh <command> [args…]      (as root; cwd in the VM is the repo)
#
# The VM: Debian's stock linux-image-*-amd64 kernel (fetched with apt-get download, cached in
# target/vm/), booted with cgroup_no_v1=all under TCG (or KVM, RUSE_VM_ACCEL=kvm), no network
# card. Its root is the host's / (9p, read-only, under a tmpfs overlay), so host binaries and
# their glibc run unchanged; the repo is shared read-write at its own absolute path, so paths
# baked in at build time (env!("CARGO_BIN_EXE_ruse")) hold. /tmp, /run are fresh tmpfs.
# cgroup2 is at /sys/fs/cgroup with every controller enabled in the root's subtree_control;
# the command runs in the leaf cgroup RUSE_VM_CGROUP (default /init.scope, as systemd puts
# PID 1; "/" for the root). See tests/vm/README.md.
#
# Exit status: the command's; 124 on timeout; 125 when the VM itself failed (setup error,
# kernel panic, qemu error).
#
# Environment: RUSE_VM_TIMEOUT (seconds, default 1800), RUSE_VM_ACCEL (tcg|kvm, default tcg),
# RUSE_VM_SMP (2), RUSE_VM_MEM (MiB, 2048), RUSE_VM_CGROUP (/init.scope), RUSE_VM_PASS_ENV
# (more variable names to pass in; CI and RUST_* ones always are), RUSE_VM_KERNEL_PKG (a
# linux-image package name; default: what linux-image-amd64 depends on), RUSE_VM_KARGS (in
# place of "quiet loglevel=3" on the kernel command line: "loglevel=7" shows the boot).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd -P)
repo=$(cd "$here/../.." && pwd -P)
vmdir="$repo/target/vm"
timeout_s=${RUSE_VM_TIMEOUT:-1800}
accel=${RUSE_VM_ACCEL:-tcg}
smp=${RUSE_VM_SMP:-2}
mem=${RUSE_VM_MEM:-2048}
cgroup=${RUSE_VM_CGROUP:-/init.scope}
# Modules the VM loads at boot, dependencies first (resolved with modinfo). 9p and
# virtio_pci for the shares; the rest is what container tests may use.
# brd gives the VM one block device (ram0) for the blkio/io tests, which have no disk else.
modules=(virtio_pci 9pnet_virtio 9p overlay veth bridge macvlan dummy brd)
read -ra pass_env <<<"CI RUST_BACKTRACE RUST_LOG RUST_TEST_THREADS RUST_TEST_NOCAPTURE NO_COLOR ${RUSE_VM_PASS_ENV:-}"
packages=(qemu-system-x86 kmod cpio busybox-static jq xz-utils)
# Bump when the image build below changes in a way the cache key does not see.
build_rev=3

say() { echo "run-in-vm: $*" >&2; }
die() {
    say "$*"
    exit 125
}

[ $# -gt 0 ] || die "usage: $0 <command> [args…]"
[ "$(id -u)" = 0 ] || die "needs root (9p passthrough shares the host's files with their owners)"
case "$repo" in *[[:space:],]*) die "the repo path $repo has a space or a comma; qemu's -fsdev and the kernel command line cannot carry it" ;; esac
case "$cgroup" in /*) ;; *) die "RUSE_VM_CGROUP=$cgroup: must be an absolute cgroup path" ;; esac

ensure_packages() {
    local missing=() p
    for p in "${packages[@]}"; do
        [ "$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >/dev/null ||
        { apt-get update -q </dev/null >/dev/null &&
            apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >/dev/null; } ||
        die "apt-get install ${missing[*]} failed"
}

# Prints the path of the kernel .deb, downloading it into target/vm/debs/ when missing.
kernel_deb() {
    local pkg=${RUSE_VM_KERNEL_PKG:-} deb
    mkdir -p "$vmdir/debs"
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
            awk '$1 == "Depends:" && $2 ~ /^linux-image-/ { print $2; exit }') || true
    fi
    if [ -z "$pkg" ]; then
        # No apt lists (offline rerun): the newest kernel already downloaded.
        deb=$(ls -t "$vmdir"/debs/linux-image-*.deb 2>/dev/null | head -1) || true
        [ -n "$deb" ] || die "cannot tell which linux-image package to use (apt-get update?)"
        echo "$deb"
        return
    fi
    local ver
    ver=$(apt-cache policy "$pkg" | awk '$1 == "Candidate:" { print $2 }')
    deb=$(ls "$vmdir/debs/${pkg}_${ver/*:/}_"*.deb 2>/dev/null | head -1) || true
    if [ -z "$deb" ]; then
        say "downloading $pkg $ver"
        (cd "$vmdir/debs" && apt-get download -q -o APT::Sandbox::User=root "$pkg" </dev/null >/dev/null) ||
            die "apt-get download $pkg failed"
        deb=$(ls "$vmdir/debs/${pkg}_"*.deb | head -1)
        # Older kernels are of no more use.
        find "$vmdir/debs" -name 'linux-image-*.deb' ! -path "$deb" -delete
    fi
    echo "$deb"
}

# Decompresses the ELF vmlinux out of a bzImage (as the kernel's scripts/extract-vmlinux
# does): booting it through its PVH entry skips the in-guest decompression, slow under TCG.
extract_vmlinux() {
    local img=$1 out=$2 magic off tool
    for magic in '\xfd\x37\x7a\x58\x5a\x00:xz' '\x28\xb5\x2f\xfd:zstd' '\x1f\x8b\x08:gzip'; do
        tool=${magic##*:}
        command -v "$tool" >/dev/null || continue
        for off in $(LC_ALL=C grep -obUaP "${magic%:*}" "$img" | cut -d: -f1); do
            tail -c "+$((off + 1))" "$img" | "$tool" -dc >"$out" 2>/dev/null || true
            [ "$(head -c 4 "$out" | od -An -c | tr -d ' ')" = '177ELF' ] && return 0
        done
    done
    rm -f "$out"
    return 1
}

# Builds target/vm/img-<key>/{vmlinux or bzImage, initramfs.cpio}; prints the directory.
build_images() {
    local deb=$1 key img tmp
    key=$(
        {
            echo "$build_rev ${deb##*/} ${modules[*]}"
            sha256sum "$here/init" /bin/busybox
        } | sha256sum | cut -c1-16
    )
    img="$vmdir/img-$key"
    if [ -f "$img/initramfs.cpio" ]; then
        echo "$img"
        return
    fi
    say "building the VM kernel and initramfs (${deb##*/})"
    tmp=$(mktemp -d "$vmdir/.build.XXXXXX")
    # shellcheck disable=SC2064 # expand now: tmp is local
    trap "rm -rf '$tmp'" RETURN
    mkdir -p "$tmp/x" "$tmp/out" "$tmp/root/bin" "$tmp/root/dev" "$tmp/root/lib/modules"
    dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" --wildcards './boot/vmlinuz-*' './lib/modules/*' ||
        die "extract $deb"
    local vmlinuz moddir
    vmlinuz=$(ls "$tmp"/x/boot/vmlinuz-* | head -1)
    moddir=$(ls -d "$tmp"/x/lib/modules/* | head -1)
    if ! extract_vmlinux "$vmlinuz" "$tmp/out/vmlinux"; then
        say "no vmlinux inside $vmlinuz; booting the bzImage"
        cp "$vmlinuz" "$tmp/out/bzImage"
    fi

    # Module name → file, then a depth-first walk of modinfo's depends= (deps first).
    local -A file=() seen=()
    local order=() f b
    while IFS= read -r f; do
        b=${f##*/}
        b=${b%%.ko*}
        file[${b//-/_}]=$f
    done < <(find "$moddir" -name '*.ko*')
    add_module() {
        local m=${1//-/_} d
        [ -z "${seen[$m]:-}" ] || return 0
        seen[$m]=1
        if [ -z "${file[$m]:-}" ]; then
            grep -q "/${m}.ko\$\|/${1}.ko\$" "$moddir/modules.builtin" 2>/dev/null && return 0
            die "module $m: not in ${deb##*/}"
        fi
        for d in $(modinfo -F depends "${file[$m]}" | tr , ' '); do add_module "$d"; done
        order+=("$m")
    }
    for m in "${modules[@]}"; do add_module "$m"; done
    for m in "${order[@]}"; do
        f=${file[$m]}
        case "$f" in
        *.ko) cp "$f" "$tmp/root/lib/modules/$m.ko" ;;
        *.ko.xz) xz -dc "$f" >"$tmp/root/lib/modules/$m.ko" ;;
        *.ko.zst) zstd -qdc "$f" >"$tmp/root/lib/modules/$m.ko" ;;
        *.ko.gz) gzip -dc "$f" >"$tmp/root/lib/modules/$m.ko" ;;
        *) die "module $f: unknown compression" ;;
        esac
    done
    printf '%s\n' "${order[@]}" >"$tmp/root/modules.order"
    cp /bin/busybox "$tmp/root/bin/busybox"
    install -m 0755 "$here/init" "$tmp/root/init"
    mknod -m 0600 "$tmp/root/dev/console" c 5 1
    # Uncompressed: decompressing in the guest costs more under TCG than reading it.
    (cd "$tmp/root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) >"$tmp/out/initramfs.cpio"
    rm -rf "$vmdir"/img-*
    mv "$tmp/out" "$img"
    echo "$img"
}

ensure_packages
mkdir -p "$vmdir/runs"
# One download and image build at a time per repo; runs killed hard leave their dir behind.
exec 9>"$vmdir/.lock"
flock 9
find "$vmdir/runs" -mindepth 1 -maxdepth 1 -mmin +1440 -exec rm -rf {} +
deb=$(kernel_deb)
img=$(build_images "$deb")
flock -u 9
exec 9>&-
kernel="$img/vmlinux"
[ -f "$kernel" ] || kernel="$img/bzImage"

run=$(mktemp -d "$vmdir/runs/run.XXXXXX")
qemu_pid=
cleanup() {
    [ -z "$qemu_pid" ] || kill "$qemu_pid" 2>/dev/null || true
    [ -z "$qemu_pid" ] || wait "$qemu_pid" 2>/dev/null || true
    [ ! -f "$run/dmesg" ] || cp "$run/dmesg" "$vmdir/last-dmesg.txt"
    rm -rf "$run"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

{
    echo "# written by run-in-vm.sh; run by tests/vm/guest.sh"
    echo "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=dumb RUSE_VM=1"
    for v in "${pass_env[@]}"; do
        [ -z "${!v+set}" ] || printf 'export %s=%q\n' "$v" "${!v}"
    done
    printf 'cd %q || exit 125\n' "$repo"
    printf 'read -r up _ </proc/uptime && echo "$up" >%q\n' "$run/started"
    printf 'exec'
    printf ' %q' "$@"
    echo
} >"$run/cmd.sh"

# shellcheck disable=SC2054 # the commas are qemu's
case "$accel" in
kvm) accel_args=(-accel kvm -cpu host) ;;
tcg) accel_args=(-accel tcg,thread=multi -cpu max) ;;
*) die "RUSE_VM_ACCEL=$accel: tcg or kvm" ;;
esac
share() { # tag path [readonly]
    echo "-fsdev" "local,id=$1,path=$2,security_model=passthrough,multidevs=remap${3:+,readonly=on}"
    echo "-device" "virtio-9p-pci,fsdev=$1,mount_tag=$1"
}
# quiet loglevel=3: only kernel errors reach the console, between the command's output.
# The rest saves boot time under TCG (crypto self-tests, the TSC watchdog) and run time
# (no speculation mitigations in a throwaway VM). panic=-1 + -no-reboot: a panic ends qemu.
cmdline="console=ttyS0 ${RUSE_VM_KARGS:-quiet loglevel=3} panic=-1"
cmdline+=" cryptomgr.notests tsc=reliable no_timer_check mitigations=off"
cmdline+=" systemd.unified_cgroup_hierarchy=1 cgroup_no_v1=all"
cmdline+=" ruse_repo=$repo ruse_run=$run ruse_cgroup=$cgroup"

start=$(date +%s.%N)
# stdin is /dev/null: qemu then leaves the terminal alone and the guest gets no input.
# shellcheck disable=SC2046 # share() prints whitespace-free words
timeout -k 10 "$timeout_s" qemu-system-x86_64 \
    -nodefaults -no-user-config -machine pc "${accel_args[@]}" -smp "$smp" -m "$mem" \
    -display none -monitor none -nic none -no-reboot \
    -chardev stdio,id=con,signal=off -serial chardev:con \
    -device isa-debug-exit,iobase=0xf4,iosize=0x04 \
    $(share hostroot / ro) $(share repo "$repo") \
    -kernel "$kernel" -initrd "$img/initramfs.cpio" -append "$cmdline" </dev/null &
qemu_pid=$!
set +e
wait "$qemu_pid"
rc=$?
set -e
qemu_pid=
end=$(date +%s.%N)

took=$(awk "BEGIN { printf \"%.1f\", $end - $start }")
case $rc in
1)
    [ -f "$run/status" ] || die "the VM ended without the command's status"
    status=$(cat "$run/status")
    boot=$(cat "$run/started" 2>/dev/null || echo '?')
    say "exit $status; ${took}s in all, ${boot}s guest uptime before the command"
    exit "$status"
    ;;
3) die "the VM's setup failed (see the messages above)" ;;
124) say "timed out after ${timeout_s}s (RUSE_VM_TIMEOUT)"; exit 124 ;;
0) die "the VM rebooted: kernel panic or PID 1 died (see the console output above)" ;;
*) die "qemu failed (exit $rc)" ;;
esac
