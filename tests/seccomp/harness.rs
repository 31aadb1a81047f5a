//! Shared by tests/seccomp.rs and tests/seccomp_notify.rs: builds the C helpers, runs a
//! bundle under runc or ruse, and compares what the probe saw.
#![allow(dead_code)]

use crate::common::{stderr, stdout, unique_id, Env};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Builds tests/seccomp/NAME.c statically, once per test binary.
pub fn helper(name: &'static str) -> PathBuf {
    static BUILT: OnceLock<std::sync::Mutex<Vec<(&'static str, PathBuf)>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut b = built.lock().unwrap();
    if let Some((_, p)) = b.iter().find(|(n, _)| *n == name) {
        return p.clone();
    }
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("seccomp-{name}"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/seccomp/{name}.c"));
    let st = Command::new("gcc")
        .args(["-static", "-O2", "-Wall", "-o"])
        .arg(&out)
        .arg(&src)
        .arg("-lpthread")
        .status()
        .expect("gcc is needed to build the seccomp probes (just deps installs it)");
    assert!(st.success(), "gcc -static {}: {st}", src.display());
    b.push((name, out.clone()));
    out
}

pub fn have_runc() -> bool {
    let ok = Command::new("runc").arg("--version").output().is_ok();
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("runc is needed for the differential tests (just deps installs it)");
    }
    ok
}

/// Replaces "@BASE" in every names list with `base`.
pub fn expand(mut sc: Value, base: &[Value]) -> Value {
    for rule in sc["syscalls"].as_array_mut().into_iter().flatten() {
        let names = rule["names"].as_array().cloned().unwrap_or_default();
        let mut out: Vec<Value> = Vec::new();
        for n in names {
            if n == "@BASE" {
                out.extend(base.iter().cloned());
            } else {
                out.push(n);
            }
        }
        rule["names"] = out.into();
    }
    sc
}

pub struct Outcome {
    pub code: i32,
    pub out: String,
    pub err: String,
}

/// Runs the env's bundle under `runtime` ("ruse" or "runc") in the foreground.
pub fn run_under(env: &Env, runtime: &str, tag: &str) -> Outcome {
    let id = unique_id(tag);
    let b = env.bundle();
    let o = if runtime == "ruse" {
        env.run(&id)
    } else {
        let root = env.dir.join("runc-state");
        let o = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["run", "--bundle", b.to_str().unwrap(), &id])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let _ = Command::new("runc")
            .arg("--root")
            .arg(&root)
            .args(["delete", "--force", &id])
            .output();
        o
    };
    if runtime == "ruse" {
        env.assert_clean(&id);
    }
    Outcome {
        code: o.status.code().unwrap_or(-1),
        out: stdout(&o),
        err: stderr(&o),
    }
}

/// An env whose rootfs holds the probe, running it with `probes`.
pub fn probe_env(probes: &[String]) -> Env {
    let mut args = vec!["/probe".to_string()];
    args.extend(probes.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = Env::new(&args);
    std::fs::copy(helper("probe"), env.rootfs().join("probe")).unwrap();
    env
}

/// Runs one profile under both runtimes; returns a mismatch description, if any, and the
/// number of syscalls compared.
pub fn differ(name: &str, p: &Value, base: &[Value], probes: &[String]) -> (Option<String>, usize) {
    let env = probe_env(probes);
    env.edit(|c| {
        c["linux"]["seccomp"] = expand(p["seccomp"].clone(), base);
        if let Some(p) = p["process"].as_object() {
            for (k, v) in p {
                c["process"][k] = v.clone();
            }
        }
    });
    let runc = run_under(&env, "runc", "sc-runc");
    if let Some(flags) = p.get("ruse_only_flags") {
        env.edit(|c| c["linux"]["seccomp"]["flags"] = flags.clone());
    }
    let ruse = run_under(&env, "ruse", "sc-ruse");
    if std::env::var_os("SECCOMP_SHOW").is_some() {
        eprintln!(
            "== {name} (runc exit {}, ruse exit {})\n{}",
            runc.code, ruse.code, ruse.out
        );
    }
    let lines = runc.out.lines().count();
    assert!(
        lines > 0 || runc.code != 0,
        "{name}: runc printed nothing: {}",
        runc.err
    );
    if runc.out == ruse.out && runc.code == ruse.code {
        return (None, lines);
    }
    let report = format!(
        "profile {name}: runc exit {} vs ruse exit {}\n--- runc\n{}{}--- ruse\n{}{}",
        runc.code, ruse.code, runc.out, runc.err, ruse.out, ruse.err
    );
    (Some(report), lines)
}
