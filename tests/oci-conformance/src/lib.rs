//! Harness of the runtime-agnostic OCI conformance suite: finds the runtime under test
//! (`RUNTIME`), asks it what it supports (`features`, else the `spec:` line of `--version`),
//! builds busybox bundles, drives the runtime's runc-style CLI with a private `--root`, and
//! cleans up every container, process and mount a check made, even when the check fails.
//!
//! Nothing here knows about ruse: any runc-compatible binary works (`RUNTIME=runc`,
//! `RUNTIME=crun`). Checks need root; without root they skip, except with `CI=true`, where a
//! skip is a failure.

pub mod bundle;
pub mod console;
pub mod host;
pub mod ns;
pub mod test;

pub use bundle::{base_config, sh_config};
pub use test::{Out, Test};

use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;

/// The runtime under test and what it announces.
pub struct Runtime {
    pub path: PathBuf,
    /// First word of `--version` (`runc`, `crun`, `ruse`, …), for messages.
    pub name: String,
    /// `features` output, when the runtime has that command.
    pub features: Option<Value>,
    /// Highest runtime-spec version the runtime claims: `features.ociVersionMax`, else the
    /// `spec:` line of `--version`.
    pub spec_max: Option<(u64, u64, u64)>,
}

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

/// The path of the runtime under test: `RUNTIME` (a path, or a name looked up on PATH), by
/// default the release ruse of the checkout this crate lives in.
pub fn runtime_path() -> PathBuf {
    let given = std::env::var_os("RUNTIME")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/release/ruse"));
    if given.as_os_str().as_encoded_bytes().contains(&b'/') {
        return std::path::absolute(&given).unwrap_or(given);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|d| d.join(&given))
        .find(|p| p.is_file())
        .unwrap_or(given)
}

pub fn rt() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        let path = runtime_path();
        assert!(
            path.is_file(),
            "runtime {} not found: set RUNTIME to a runc-compatible binary (default: \
             target/release/ruse, built by `cargo build --release`)",
            path.display()
        );
        let version = Command::new(&path)
            .arg("--version")
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        let name = version
            .split_whitespace()
            .next()
            .unwrap_or("runtime")
            .to_string();
        let features = Command::new(&path)
            .arg("features")
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| serde_json::from_slice::<Value>(&o.stdout).ok())
            .filter(Value::is_object);
        let spec_max = features
            .as_ref()
            .and_then(|f| f["ociVersionMax"].as_str().and_then(parse_version))
            .or_else(|| {
                version
                    .lines()
                    .find_map(|l| l.strip_prefix("spec:"))
                    .and_then(|v| parse_version(v.trim()))
            });
        Runtime {
            path,
            name,
            features,
            spec_max,
        }
    })
}

/// "1.0.2-dev" → (1, 0, 2); pre-release and build suffixes are ignored.
pub fn parse_version(v: &str) -> Option<(u64, u64, u64)> {
    let core = v.split(['-', '+']).next()?;
    let mut it = core.split('.').map(|n| n.parse::<u64>().ok());
    Some((it.next()??, it.next()??, it.next().flatten().unwrap_or(0)))
}

impl Runtime {
    fn list(&self, pointer: &str) -> Vec<String> {
        self.features
            .as_ref()
            .and_then(|f| f.pointer(pointer))
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    fn flag(&self, pointer: &str) -> bool {
        self.features
            .as_ref()
            .and_then(|f| f.pointer(pointer))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    }

    /// The runtime claims runtime-spec `v` or later (config fields introduced in `v`).
    pub fn supports_spec(&self, v: &str) -> bool {
        match (self.spec_max, parse_version(v)) {
            (Some(max), Some(want)) => max >= want,
            _ => false,
        }
    }

    pub fn has_mount_option(&self, o: &str) -> bool {
        self.list("/mountOptions").iter().any(|x| x == o)
    }

    pub fn has_namespace(&self, ns: &str) -> bool {
        self.list("/linux/namespaces").iter().any(|x| x == ns)
    }

    pub fn has_hook(&self, h: &str) -> bool {
        self.list("/hooks").iter().any(|x| x == h)
    }

    pub fn has_seccomp(&self) -> bool {
        self.flag("/linux/seccomp/enabled")
    }

    pub fn has_idmap_mounts(&self) -> bool {
        self.flag("/linux/mountExtensions/idmap/enabled")
    }
}

static SKIPS: AtomicUsize = AtomicUsize::new(0);

/// Reports a check that cannot run here. Written straight to fd 2 so that libtest's output
/// capture does not hide it: a skip is never a silent pass.
pub fn skip(test: &str, kind: &str, why: &str) {
    let n = SKIPS.fetch_add(1, Ordering::SeqCst) + 1;
    let line = format!(
        "SKIP({kind}): {test}: {why} [runtime {}] (#{n})\n",
        rt().name
    );
    let _ = std::io::stderr().write_all(line.as_bytes());
}

/// Returns early from a check, with a `SKIP(feature)` line, when `cond` is false.
#[macro_export]
macro_rules! require {
    ($t:expr, $cond:expr, $why:expr) => {
        if !$cond {
            $crate::skip($t.name(), "feature", &$why);
            return;
        }
    };
}

/// True when the effective uid is 0.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// Put in every test file: before `main`, when the runtime under test is crun on a hybrid
/// cgroup host whose cgroup2 tree has controllers, moves the test process into a private
/// mount namespace with an empty tmpfs over `/sys/fs/cgroup/unified` (see `ns`).
#[macro_export]
macro_rules! init {
    () => {
        #[used]
        #[link_section = ".init_array"]
        static OCI_CONFORMANCE_INIT: extern "C" fn() = {
            extern "C" fn init() {
                $crate::ns::prepare_for_runtime();
            }
            init
        };
    };
}
