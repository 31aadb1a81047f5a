#!/usr/bin/env bash
# Builds the libFuzzer targets of fuzz/ on the stable toolchain and runs each for a bounded
# time; any crash, panic, timeout or out-of-memory fails the script.
#
#   scripts/fuzz.sh [SECONDS] [TARGET…]     (default: FUZZ_SECONDS or 20, every target)
#
# No nightly and no cargo-fuzz are needed: the targets are built with the coverage
# instrumentation cargo-fuzz itself passes (`cargo fuzz run -s none`), all of it stable rustc
# flags, and `--target <host>` so build scripts and proc macros are left uninstrumented.
# (With cargo-fuzz installed, `cd fuzz && cargo fuzz run -s none TARGET` works the same way.
# AddressSanitizer needs nightly and is not used: what is fuzzed is safe Rust over a few thin
# syscall wrappers.) fuzz/Cargo.toml's profile aborts on panic, with overflow checks on.
#
# Seeds are read from fuzz/corpus/<target>/ (checked in, never written); what the fuzzer
# finds goes to fuzz/target/corpus/<target>/ and crash inputs to fuzz/artifacts/<target>/,
# both ignored by git. A crash input is replayed afterwards so its panic message is shown
# (stderr is closed while fuzzing: the parsers' warnings would flood it).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
fuzz=$here/fuzz
secs=${1:-${FUZZ_SECONDS:-20}}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config signal id user resolve)

# The C++ runtime libFuzzer needs (libstdc++, from g++), and the compiler for the fallback below.
if ! command -v c++ >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "fuzz: installing g++ (libFuzzer is C++)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends g++ </dev/null >/dev/null
    else
        echo "fuzz: no C++ compiler; install g++ (libFuzzer is C++)" >&2
        exit 1
    fi
fi

host=$(rustc -vV | sed -n 's/^host: //p')
llvm=$(rustc -vV | sed -n 's/^LLVM version: \([0-9]*\).*/\1/p')
# libfuzzer-sys compiles libFuzzer's C++ from source, a large part of a cold build. Debian ships it
# prebuilt for the LLVM rustc uses (libfuzzer-N-dev): fetch that one .deb (not its clang
# dependency) and link it; build from source when it cannot be had.
if [ -z "${CUSTOM_LIBFUZZER_PATH:-}" ]; then
    lib=$fuzz/target/libfuzzer-$llvm/libFuzzer.a
    if [ ! -f "$lib" ] && command -v apt-get >/dev/null 2>&1; then
        dl=$(mktemp -d)
        if (cd "$dl" && apt-get download -q "libfuzzer-$llvm-dev" </dev/null >/dev/null 2>&1 &&
            dpkg -x ./*.deb x && [ -f "x/usr/lib/llvm-$llvm/lib/libFuzzer.a" ]); then
            mkdir -p "$(dirname "$lib")"
            cp "$dl/x/usr/lib/llvm-$llvm/lib/libFuzzer.a" "$lib"
        fi
        rm -rf "$dl"
    fi
    if [ -f "$lib" ]; then
        export CUSTOM_LIBFUZZER_PATH=$lib
    else
        echo "fuzz: no prebuilt libFuzzer for LLVM $llvm (Debian libfuzzer-$llvm-dev); building it from source"
    fi
fi

flags=(
    -Cpasses=sancov-module
    -Cllvm-args=-sanitizer-coverage-level=4
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters
    -Cllvm-args=-sanitizer-coverage-pc-table
    -Cllvm-args=-sanitizer-coverage-trace-compares
    -Cllvm-args=-sanitizer-coverage-stack-depth
    -Cllvm-args=-simplifycfg-branch-fold-threshold=0
    --cfg fuzzing
)
echo "fuzz: building ${targets[*]} for $host"
bins=()
for t in "${targets[@]}"; do bins+=(--bin "$t"); done
# Not --locked: fuzz/Cargo.lock pins what it has, and takes in a dependency the main crate
# gains rather than failing the build.
RUSTFLAGS="${flags[*]} ${RUSTFLAGS:-}" cargo build --release \
    --manifest-path "$fuzz/Cargo.toml" --target "$host" "${bins[@]}"

# The targets' fixtures (a bundle, a rootfs of symlinks) are rewritten for every input: on a
# tmpfs they cost a tenth of what they cost on disk.
tmp=$(mktemp -d /dev/shm/ruse-fuzz.XXXXXX 2>/dev/null || mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failed=()
for t in "${targets[@]}"; do
    bin=$fuzz/target/$host/release/$t
    corpus=$fuzz/target/corpus/$t
    artifacts=$fuzz/artifacts/$t
    mkdir -p "$corpus" "$artifacts"
    opts=(-max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -close_fd_mask=2
        -print_final_stats=1 -artifact_prefix="$artifacts/")
    [ -f "$fuzz/dict/$t.dict" ] && opts+=(-dict="$fuzz/dict/$t.dict")
    # A config.json is bigger than libFuzzer's default 4096 bytes; --user and a subuid file
    # are smaller (and a 4 KB subuid text runs 10x slower in the grant check).
    case $t in
    config) opts+=(-max_len=16384) ;;
    user) opts+=(-max_len=1024) ;;
    esac
    echo "fuzz: $t for ${secs}s"
    before=$(ls "$artifacts" | wc -l)
    log=$tmp/$t.log
    if TMPDIR=$tmp "$bin" "${opts[@]}" "$corpus" "$fuzz/corpus/$t" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        echo "fuzz: $t: ${runs:-?} runs, ${rate:-?} exec/s, no crash"
    else
        failed+=("$t")
        tail -n 40 "$log" >&2
        # Replay the newest artifact with stderr open, so the panic says what broke.
        new=$(ls -t "$artifacts" | head -n 1)
        if [ -n "$new" ] && [ "$(ls "$artifacts" | wc -l)" -gt "$before" ]; then
            echo "fuzz: $t: replaying $artifacts/$new" >&2
            TMPDIR=$tmp "$bin" -timeout=10 -rss_limit_mb=2048 "$artifacts/$new" 2>&1 | grep -v -e '^INFO:' -e '^WARNING: Failed to find function' | head -n 40 >&2 || true
            # The input itself, so a CI log is enough to reproduce it.
            echo "fuzz: $t: input (base64): $(head -c 4096 "$artifacts/$new" | base64 -w0)" >&2
        fi
    fi
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz: FAILED: ${failed[*]} (inputs in fuzz/artifacts/<target>/; replay: fuzz/target/$host/release/<target> <file>)" >&2
    exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${secs}s each, no crash"
