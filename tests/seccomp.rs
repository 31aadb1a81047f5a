//! linux.seccomp, differential: the same bundle runs under runc (libseccomp) and under ruse,
//! a probe inside (tests/seccomp/probe.c) tries syscalls with chosen arguments, and every
//! outcome (success, errno, trap, which kill) and the runtime's exit status must be equal:
//! the hand-written profiles of tests/seccomp/profiles.json and podman's default profile.
//! Needs root, runc, gcc with a static libc and containers-common's profile.

mod common;
#[path = "seccomp/harness.rs"]
mod harness;

use harness::{differ, have_runc};
use serde_json::{json, Value};
use std::path::Path;

#[test]
fn hand_written_profiles_match_runc() {
    if !common::root_or_skip() || !have_runc() {
        return;
    }
    let text = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/seccomp/profiles.json"),
    )
    .unwrap();
    let doc: Value = serde_json::from_str(&text).unwrap();
    let (mut bad, mut compared) = (Vec::new(), 0);
    let profiles = doc["profiles"].as_array().unwrap();
    for p in profiles {
        let probes: Vec<String> = p["probes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        let base = doc["base"].as_array().unwrap();
        let (diff, n) = differ(p["name"].as_str().unwrap(), p, base, &probes);
        compared += n;
        bad.extend(diff);
    }
    eprintln!(
        "{} profiles, {compared} syscall outcomes compared with runc",
        profiles.len()
    );
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// containers-common's profile → linux.seccomp, as podman builds it for x86_64 and the
/// container's bounding capabilities (includes/excludes by arch and capability).
fn podman_profile(caps: &[&str]) -> Value {
    let path = "/usr/share/containers/seccomp.json";
    let src: Value = match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).unwrap(),
        Err(e) if std::env::var("CI").as_deref() == Ok("true") => {
            panic!("{path}: {e} (just deps installs golang-github-containers-common)")
        }
        Err(_) => return Value::Null,
    };
    let has = |list: &Value, x: &str| {
        list.as_array()
            .is_some_and(|l| l.iter().any(|v| v.as_str() == Some(x)))
    };
    let mut archs = vec![json!("SCMP_ARCH_X86_64")];
    for m in src["archMap"].as_array().unwrap() {
        if m["architecture"] == "SCMP_ARCH_X86_64" {
            archs.extend(m["subArchitectures"].as_array().unwrap().iter().cloned());
        }
    }
    let mut syscalls = Vec::new();
    for s in src["syscalls"].as_array().unwrap() {
        let (inc, exc) = (&s["includes"], &s["excludes"]);
        let inc_arch =
            inc["arches"].as_array().map_or(true, |a| a.is_empty()) || has(&inc["arches"], "amd64");
        let exc_arch = has(&exc["arches"], "amd64");
        let inc_caps = inc["caps"].as_array().map_or(true, |l| {
            l.iter().all(|c| caps.contains(&c.as_str().unwrap()))
        });
        let exc_caps = exc["caps"]
            .as_array()
            .is_some_and(|l| l.iter().any(|c| caps.contains(&c.as_str().unwrap())));
        if !inc_arch || exc_arch || !inc_caps || exc_caps {
            continue;
        }
        let mut rule = json!({"names": s["names"], "action": s["action"]});
        if let Some(a) = s["args"].as_array().filter(|a| !a.is_empty()) {
            rule["args"] = a.clone().into();
        }
        if !s["errnoRet"].is_null() {
            rule["errnoRet"] = s["errnoRet"].clone();
        }
        syscalls.push(rule);
    }
    json!({
        "defaultAction": src["defaultAction"],
        "defaultErrnoRet": src["defaultErrnoRet"],
        "architectures": archs,
        "syscalls": syscalls,
    })
}

const PODMAN_PROBES: &[&str] = &[
    "102",
    "111",
    "100,0",
    "246",
    "175,0,0,0",
    "163,0",
    "312,0,0,0,0,0",
    "165,0,0,0,0,0",
    "135,0",
    "135,8",
    "135,0x20000",
    "135,0x20008",
    "135,0xffffffff",
    "135,3",
    "41,16,3,9",
    "41,16,3,0",
    "41,2,1,0",
    "41,1,1,0",
    "272,0",
    "154,0,0,0",
    "310,0,0,0,0,0,0",
    "425,0,0",
    "435,0,0",
    "439,-100,0,0,0",
    "440",
    "450",
    "9999",
    "0x80000000",
    "-1",
    "x86:20",
    "x86:24",
    "x86:199",
    "x86:136,8",
    "x86:136,3",
    "x86:102,1,0",
    "x86:102,19,0",
    "x86:134",
    "x86:359,16,3,9",
    "x86:359,16,3,0",
    "x86:9999",
    "x86:-1",
    "x32:39",
    "x32:111",
    "x32:9999",
];

#[test]
fn podman_default_profile_matches_runc() {
    if !common::root_or_skip() || !have_runc() {
        return;
    }
    let probes: Vec<String> = PODMAN_PROBES.iter().map(|s| s.to_string()).collect();
    // The bundle's own capabilities (runc's spec: CAP_AUDIT_WRITE among them), then a set
    // without CAP_AUDIT_WRITE, which turns on the profile's argument rules for socket().
    let with = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let without = ["CAP_KILL", "CAP_NET_BIND_SERVICE"];
    let (mut bad, mut compared) = (Vec::new(), 0);
    for (name, caps) in [
        ("podman", &with[..]),
        ("podman-no-audit-write", &without[..]),
    ] {
        let profile = podman_profile(caps);
        if profile.is_null() {
            eprintln!("skipped: no /usr/share/containers/seccomp.json");
            return;
        }
        let caps: Vec<Value> = caps.iter().map(|c| Value::from(*c)).collect();
        let p = json!({
            "seccomp": profile,
            "process": {"capabilities": {"bounding": caps, "effective": caps, "permitted": caps}}
        });
        let (diff, n) = differ(name, &p, &[], &probes);
        compared += n;
        bad.extend(diff);
    }
    eprintln!("podman profile: {compared} syscall outcomes compared with runc");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
