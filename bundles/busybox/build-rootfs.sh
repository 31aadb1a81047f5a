#!/usr/bin/env bash
# Builds bundles/busybox/rootfs from the host's static busybox (Debian busybox-static).
# Idempotent: builds into a temp dir, then swaps it in.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bb=/bin/busybox
if ! [ -x "$bb" ] || ! "$bb" --list >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q busybox-static >/dev/null || { apt-get update -q >/dev/null && apt-get install -y -q busybox-static >/dev/null; }
fi
# A dynamically linked busybox would need the host's libraries inside the rootfs.
if head -c 4096 "$bb" | grep -q "ld-linux"; then
    echo "build-rootfs: $bb is not statically linked; install busybox-static" >&2
    exit 1
fi
tmp=$(mktemp -d "$here/.rootfs.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,etc,proc,sys,dev,tmp,root}
chmod 1777 "$tmp/tmp"
cp "$bb" "$tmp/bin/busybox"
for applet in $("$bb" --list); do
    [ "$applet" = busybox ] || ln -sf busybox "$tmp/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' >"$tmp/etc/passwd"
printf 'root:x:0:\ntty:x:5:\nnogroup:x:65534:\n' >"$tmp/etc/group"
echo ruse-demo >"$tmp/etc/hostname"
rm -rf "$here/rootfs"
mv "$tmp" "$here/rootfs"
trap - EXIT
echo "rootfs ready: $here/rootfs ($("$bb" --list | wc -l) applets)"
