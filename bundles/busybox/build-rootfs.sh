#!/usr/bin/env bash
# Builds bundles/busybox/rootfs from the host's static busybox (Debian busybox-static):
# bin/busybox plus one symlink per applet, a minimal etc/, and the empty mount points.
# Idempotent: builds from scratch into a temp dir beside rootfs/, then swaps it in.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bb=/bin/busybox

if ! [ -x "$bb" ]; then
    [ "$(id -u)" = 0 ] || { echo "build-rootfs: $bb is missing; as root: apt-get install busybox-static" >&2; exit 1; }
    echo "build-rootfs: installing busybox-static"
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q busybox-static >/dev/null 2>&1 \
        || { apt-get update -q >/dev/null && apt-get install -y -q busybox-static >/dev/null; }
fi

# A dynamically linked busybox would need the host's loader and libc inside the rootfs.
if command -v file >/dev/null 2>&1; then
    if ! file -L "$bb" | grep -Eq 'statically linked|static-pie linked'; then
        echo "build-rootfs: $bb is not statically linked ($(file -bL "$bb" | cut -d, -f1-2));" \
            "replace it: apt-get install busybox-static" >&2
        exit 1
    fi
elif command -v readelf >/dev/null 2>&1; then
    if readelf -lW "$bb" | grep -q INTERP; then
        echo "build-rootfs: $bb has a program interpreter (not static); apt-get install busybox-static" >&2
        exit 1
    fi
else
    echo "build-rootfs: neither file nor readelf found; not checking that $bb is static" >&2
fi

tmp=$(mktemp -d "$here/.rootfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
chmod 0755 "$tmp" # mktemp makes it 0700; it becomes the container's /
mkdir -p "$tmp"/{bin,etc,proc,sys,dev,tmp,root}
chmod 1777 "$tmp/tmp"
chmod 0700 "$tmp/root"
cp "$bb" "$tmp/bin/busybox"
chmod 0755 "$tmp/bin/busybox"
n=0
for applet in $("$bb" --list); do
    [ "$applet" = busybox ] && continue
    ln -s busybox "$tmp/bin/$applet"
    n=$((n + 1))
done
cat >"$tmp/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
EOF
cat >"$tmp/etc/group" <<'EOF'
root:x:0:
tty:x:5:
nogroup:x:65534:
EOF
echo ruse-demo >"$tmp/etc/hostname"

# Swap: the old tree moves aside first so a failure never leaves rootfs/ half-deleted.
old=
if [ -e "$here/rootfs" ]; then
    old=$(mktemp -d "$here/.rootfs.old.XXXXXX")
    mv "$here/rootfs" "$old/"
fi
mv "$tmp" "$here/rootfs"
trap - EXIT
[ -z "$old" ] || rm -rf "$old"
echo "build-rootfs: $here/rootfs ready (busybox $("$bb" 2>&1 | head -1 | awk '{print $2}'), $n applets)"
