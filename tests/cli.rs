//! Black-box tests of the engine-facing CLI contract (../shared/COMPAT.md): flag syntax,
//! `--version`, `features`, `spec`, the lifecycle verbs, `--log` JSON lines, `--pid-file`.
//! Needs root (containers are real).

mod common;

use common::{stderr, Env, RUSE};
use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[test]
fn version_is_runc_shaped() {
    let out = Command::new(RUSE).arg("--version").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("ruse version "), "{text}");
    assert!(lines[1].starts_with("commit: "), "{text}");
    assert_eq!(lines[2], "spec: 1.3.0");
}

#[test]
fn features_lists_only_what_is_implemented() {
    let out = Command::new(RUSE).arg("features").output().unwrap();
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ociVersionMax"], "1.3.0");
    let sc = &f["linux"]["seccomp"];
    assert_eq!(sc["enabled"], true);
    assert_eq!(sc["actions"].as_array().unwrap().len(), 9, "{sc}");
    assert_eq!(sc["operators"].as_array().unwrap().len(), 7, "{sc}");
    assert!(sc["archs"]
        .as_array()
        .unwrap()
        .contains(&"SCMP_ARCH_X86".into()));
    assert!(sc["supportedFlags"]
        .as_array()
        .unwrap()
        .contains(&"SECCOMP_FILTER_FLAG_LOG".into()));
    assert!(f["linux"]["namespaces"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "time"));
    assert!(f["mountOptions"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n == "rro"));
}

#[test]
fn spec_has_no_inheritable_capabilities_and_refuses_to_overwrite() {
    let dir = std::env::temp_dir().join(format!("ruse-spec-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _ = std::fs::remove_file(dir.join("config.json"));
    assert!(Command::new(RUSE)
        .args(["spec", "--bundle"])
        .arg(&dir)
        .status()
        .unwrap()
        .success());
    let cfg: Value =
        serde_json::from_slice(&std::fs::read(dir.join("config.json")).unwrap()).unwrap();
    assert!(cfg["process"]["capabilities"].get("inheritable").is_none());
    let again = Command::new(RUSE)
        .args(["spec", "-b"])
        .arg(&dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("exists"), "{}", stderr(&again));
    let rootless = Command::new(RUSE)
        .args(["spec", "--rootless"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert_eq!(
        rootless.status.code(),
        Some(1),
        "config.json exists there too"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn lifecycle_with_go_style_flags_and_pid_file() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "30"]);
    let pid_file = env.dir.join("init.pid");
    let bundle = env.bundle();
    let status = Command::new(RUSE)
        .arg(format!("-root={}", env.root.display()))
        .args(["create", "-bundle"])
        .arg(&bundle)
        .arg(format!("--pid-file={}", pid_file.display()))
        .arg("--no-new-keyring=false")
        .arg("c1")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let st = env.state("c1");
    assert_eq!(st["status"], "created");
    assert_eq!(st["ociVersion"], "1.3.0");
    let pid = st["pid"].as_i64().unwrap();
    assert_eq!(std::fs::read_to_string(&pid_file).unwrap(), pid.to_string());
    assert_eq!(Path::new(st["bundle"].as_str().unwrap()), bundle);
    // Not started yet: init is still ruse (from its read-only overlay, or a sealed memfd
    // where overlayfs is missing), not sleep.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let e = exe.to_string_lossy();
    assert!(e.starts_with("/memfd:") || e == "/ruse", "{exe:?}");
    assert!(env.ruse(&["start", "c1"]).status.success());
    assert_eq!(env.state("c1")["status"], "running");
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    assert!(exe.ends_with("busybox"), "{exe:?}");
    let again = env.ruse(&["start", "c1"]);
    assert_eq!(again.status.code(), Some(1));
    let del = env.ruse(&["delete", "c1"]);
    assert_eq!(del.status.code(), Some(1));
    assert!(stderr(&del).contains("running"), "{}", stderr(&del));
    assert_eq!(env.state("c1")["status"], "running");
    assert!(env.ruse(&["kill", "c1", "sigkill"]).status.success());
    for _ in 0..200 {
        if env.state("c1")["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let st = env.state("c1");
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["pid"], 0);
    let kill = env.ruse(&["kill", "c1"]);
    assert_eq!(kill.status.code(), Some(1));
    assert!(
        stderr(&kill).contains("container not running"),
        "{}",
        stderr(&kill)
    );
    assert!(env.ruse(&["delete", "c1"]).status.success());
    let gone = env.ruse(&["state", "c1"]);
    assert_eq!(gone.status.code(), Some(1));
    assert!(stderr(&gone).contains("does not exist"));
    assert!(!env.root.join("c1").exists());
    assert!(
        env.ruse(&["delete", "--force", "c1"]).status.success(),
        "delete -f of a missing id exits 0"
    );
}

#[test]
fn kill_default_is_sigterm_and_list_formats() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "trap 'exit 7' TERM; while true; do sleep 0.05; done",
    ]);
    assert!(env
        .ruse(&[
            "run",
            "-d",
            "--bundle",
            env.bundle().to_str().unwrap(),
            "k1"
        ])
        .status
        .success());
    let list = env.ruse(&["list", "--format", "json"]);
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["id"], "k1");
    assert_eq!(v[0]["status"], "running");
    let q = env.ruse(&["list", "-q"]);
    assert_eq!(String::from_utf8_lossy(&q.stdout).trim(), "k1");
    let table = String::from_utf8(env.ruse(&["list"]).stdout).unwrap();
    assert!(
        table.starts_with("ID") && table.contains("running"),
        "{table}"
    );
    let pid = env.state("k1")["pid"].as_i64().unwrap();
    // Sent a moment after start so the shell's trap is installed.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(env.ruse(&["kill", "k1"]).status.success());
    for _ in 0..300 {
        if !Path::new(&format!("/proc/{pid}")).exists() || env.state("k1")["status"] == "stopped" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    assert_eq!(env.state("k1")["status"], "stopped");
}

#[test]
fn run_returns_the_exit_status() {
    if !common::root_or_skip() {
        return;
    }
    for (script, code) in [
        ("exit 0", 0),
        ("exit 1", 1),
        ("exit 42", 42),
        ("kill -9 $$", 137),
    ] {
        // Without a pid namespace the shell is not an init, so SIGKILL to itself works.
        let env = Env::new(&["sh", "-c", script]);
        let cfg_path = env.bundle().join("config.json");
        let mut cfg: Value = serde_json::from_slice(&std::fs::read(&cfg_path).unwrap()).unwrap();
        let ns = cfg["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "pid");
        std::fs::write(&cfg_path, cfg.to_string()).unwrap();
        let out = env.ruse(&["run", "--bundle", env.bundle().to_str().unwrap(), "r1"]);
        assert_eq!(out.status.code(), Some(code), "{script}: {}", stderr(&out));
        assert!(
            !env.root.join("r1").exists(),
            "run removes the container on exit"
        );
    }
}

#[test]
fn json_log_lines_are_appended() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    let log = env.dir.join("log.json");
    std::fs::write(&log, "{\"level\":\"info\",\"msg\":\"earlier\"}\n").unwrap();
    for _ in 0..2 {
        let out = Command::new(RUSE)
            .args(["--root"])
            .arg(&env.root)
            .arg("--log")
            .arg(&log)
            .args(["--log-format", "json", "state", "nope"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let line = stderr(&out);
        assert_eq!(line.lines().count(), 1, "one error line: {line}");
    }
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert_eq!(lines[2]["level"], "error");
    assert!(lines[2]["msg"].as_str().unwrap().contains("does not exist"));
    assert!(lines[2]["time"].as_str().unwrap().ends_with('Z'));
}
