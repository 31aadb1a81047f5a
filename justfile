# ruse: build, demo, test, bench. Recipes install the Debian packages they need when missing.
set shell := ["bash", "-euo", "pipefail", "-c"]

ruse := justfile_directory() / "target/release/ruse"
conformance_dir := justfile_directory() / "tests/oci-conformance"
# Integration test targets (tests/NAME.rs) that `vm-test` also runs inside the cgroup-v2 VM
vm_tests := "cli cgroups rootless userns"

# List recipes
default:
    @{{just_executable()}} --list --justfile {{justfile()}}

# Install the missing Debian packages the recipes and tests use (README "Requirements" says which needs what)
deps:
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    for p in busybox-static iproute2 nftables util-linux procps runc crun hyperfine qemu-system-x86 kmod cpio jq xz-utils gcc libc6-dev golang-github-containers-common uidmap passwd podman containerd; do
        [ "$(dpkg-query -W -f '${Status}' "$p" 2>/dev/null)" = "install ok installed" ] || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && exit 0
    if [ "$(id -u)" != 0 ]; then
        echo "just deps: missing ${missing[*]}; run as root (or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    export DEBIAN_FRONTEND=noninteractive
    echo "just deps: installing ${missing[*]}"
    apt-get update -q </dev/null >/dev/null
    apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null >/dev/null

# Build the release binary (target/release/ruse)
build:
    cargo build --release

# Build bundles/busybox/rootfs from the host's static busybox
rootfs: deps
    bash bundles/busybox/build-rootfs.sh

# Run a real container from bundles/busybox, then delete it (as root)
demo: _need-root deps build rootfs
    #!/usr/bin/env bash
    set -euo pipefail
    id="ruse-demo-$$"
    root=$(mktemp -d /tmp/ruse-demo.XXXXXX)
    trap '"{{ruse}}" --root "$root" delete --force "$id" >/dev/null 2>&1 || true; rm -rf "$root"' EXIT
    "{{ruse}}" --root "$root" run --bundle bundles/busybox "$id"

# Every test: unit, black-box (tests/*.rs), a short fuzz run, the OCI conformance suite against ruse, then vm-test
test: deps build rootfs && vm-test
    cargo fmt --check
    cargo clippy --release --all-targets -- -D warnings
    cargo test --release
    bash scripts/fuzz.sh 10
    @[ -f "{{conformance_dir}}/Cargo.toml" ] || { echo "just test: {{conformance_dir}}/Cargo.toml is missing" >&2; exit 1; }
    RUNTIME="{{ruse}}" cargo test --release --manifest-path "{{conformance_dir}}/Cargo.toml" --target-dir "{{justfile_directory()}}/target/oci-conformance"

# The smoke test and the vm_tests binaries inside a qemu VM that is a pure cgroup-v2 host (tests/vm/README.md)
vm-test: _need-root deps build rootfs
    #!/usr/bin/env bash
    set -euo pipefail
    bins=$(bash tests/vm/test-bins.sh {{vm_tests}})
    bash tests/vm/run-in-vm.sh tests/vm/suite.sh "{{ruse}}" $bins

# The conformance suite against another runtime (e.g. `just conformance runc`)
conformance runtime: deps rootfs
    RUNTIME="{{runtime}}" cargo test --release --manifest-path "{{conformance_dir}}/Cargo.toml" --target-dir "{{justfile_directory()}}/target/oci-conformance"

# Time create+start+delete and run of /bin/true for ruse, runc and crun (hyperfine; BENCH_RUNS=30)
bench: _need-root deps build rootfs
    bash scripts/bench.sh "{{ruse}}"

# Fuzz every target of fuzz/ (or the ones named) for SECONDS each, on stable Rust; a crash fails (README "Fuzzing")
fuzz seconds=env_var_or_default("FUZZ_SECONDS", "20") *targets:
    bash scripts/fuzz.sh {{seconds}} {{targets}}

# Check formatting
fmt:
    cargo fmt --check

# Clippy with warnings as errors
lint:
    cargo clippy --all-targets -- -D warnings

_need-root:
    @[ "$(id -u)" = 0 ] || { echo "just: this recipe needs root (the tests make throwaway users for the rootless ones); run as root" >&2; exit 1; }
