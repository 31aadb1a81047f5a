# ruse: build, demo, test, bench. Recipes install the Debian packages they need when missing.
set shell := ["bash", "-euo", "pipefail", "-c"]

ruse := justfile_directory() / "target/release/ruse"

# List recipes
default:
    @just --list

# Install missing Debian packages (busybox-static for the rootfs; runc, crun, hyperfine for bench)
deps *pkgs="busybox-static iproute2":
    #!/usr/bin/env bash
    set -euo pipefail
    missing=()
    for p in {{pkgs}}; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
    if [ ${#missing[@]} -gt 0 ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -q >/dev/null
        apt-get install -y -q "${missing[@]}" >/dev/null
        echo "installed: ${missing[*]}"
    fi

# Build the release binary
build:
    cargo build --release

# Build bundles/busybox/rootfs from the host's static busybox
rootfs: deps
    bash bundles/busybox/build-rootfs.sh

# Run a real container from bundles/busybox (as root)
demo: deps build rootfs
    #!/usr/bin/env bash
    set -euo pipefail
    [ "$(id -u)" = 0 ] || { echo "just demo: run as root (containers need privileges; rootless comes later)"; exit 1; }
    id="ruse-demo-$$"
    root=$(mktemp -d /tmp/ruse-demo.XXXXXX)
    trap '{{ruse}} --root "$root" delete --force "$id" >/dev/null 2>&1 || true; rm -rf "$root"' EXIT
    {{ruse}} --root "$root" run --bundle bundles/busybox "$id"

# Every test: unit, black-box (tests/*.rs) and the OCI conformance suite against ruse
test: deps build rootfs
    cargo test --release
    RUNTIME={{ruse}} cargo test --release --manifest-path tests/oci-conformance/Cargo.toml

# The conformance suite against another runtime (e.g. just conformance runc)
conformance runtime: deps rootfs
    RUNTIME={{runtime}} cargo test --release --manifest-path tests/oci-conformance/Cargo.toml

# Time create+start+delete and run for ruse, runc and crun (hyperfine)
bench: (deps "busybox-static runc crun hyperfine") build rootfs
    bash scripts/bench.sh {{ruse}}

fmt:
    cargo fmt --check

lint:
    cargo clippy --all-targets -- -D warnings
