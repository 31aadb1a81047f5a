#!/bin/bash
# Stage 2 of the test VM: PID 1 after switch_root (tests/vm/init set everything up), run by
# the host's bash from the 9p root. Runs $ruse_run/cmd.sh (written by run-in-vm.sh), writes
# its exit status to $ruse_run/status and ends the VM through qemu's isa-debug-exit device.
# Few processes on purpose: each exec of a host binary costs ~0.1 s under emulation.
#
# From the kernel command line, as environment: ruse_run (absolute path on the repo share).
set -u
run=${ruse_run:-/nonexistent}
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# Value 0 → qemu exits 1 (ran to the end: the status file says how the command did);
# value 1 → qemu exits 3 (set-up failed). A kernel panic reboots: qemu exits 0.
vm_exit() {
    sync
    # shellcheck disable=SC2059 # the format is the byte to write
    printf "\\$(printf %o "$1")" | dd of=/dev/port bs=1 seek=244 count=1 conv=notrunc 2>/dev/null
    sleep 5
    echo o >/proc/sysrq-trigger
}

if [ ! -s "$run/cmd.sh" ]; then
    echo "ruse-vm: guest: $run/cmd.sh is missing"
    vm_exit 1
fi
# Not exec: PID 1 stays to collect the status (and reaps orphans meanwhile).
env -i bash "$run/cmd.sh" </dev/null
echo $? >"$run/status"
dmesg >"$run/dmesg" 2>/dev/null
vm_exit 0
