//! linux.seccomp, black-box and differential: the same bundle runs under runc (libseccomp)
//! and under ruse, a probe inside tries syscalls with chosen arguments, and every outcome
//! (success, errno, trap, which kill) and the runtime's exit status must be equal. Also the
//! SCMP_ACT_NOTIFY hand-off to a listener, and bad profiles. Needs root, runc, gcc with a
//! static libc (tests/seccomp/*.c are built at test time) and containers-common's profile.

mod common;

use common::{stderr, stdout, unique_id, Env};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// Syscalls both runtimes' last steps and the probe need, for profiles that deny by default.
const BASE: &[&str] = &[
    "read",
    "write",
    "close",
    "fstat",
    "mmap",
    "mprotect",
    "munmap",
    "brk",
    "rt_sigaction",
    "rt_sigprocmask",
    "rt_sigreturn",
    "ioctl",
    "pread64",
    "access",
    "sched_yield",
    "madvise",
    "getpid",
    "clone",
    "clone3",
    "fork",
    "vfork",
    "execve",
    "exit",
    "wait4",
    "kill",
    "uname",
    "fcntl",
    "sigaltstack",
    "arch_prctl",
    "gettid",
    "futex",
    "set_tid_address",
    "exit_group",
    "tgkill",
    "openat",
    "newfstatat",
    "set_robust_list",
    "rseq",
    "prlimit64",
    "nanosleep",
    "getrandom",
    "epoll_pwait",
    "epoll_ctl",
    "epoll_create1",
    "pipe2",
    "getppid",
    "capget",
    "capset",
    "prctl",
    "setgroups",
    "setresuid",
    "setresgid",
    "getdents64",
    "readlinkat",
    "dup3",
    "mincore",
    "fchdir",
    "chdir",
    "lseek",
    "getuid",
    "getgid",
    "geteuid",
    "getegid",
    "setsid",
    "setuid",
    "setgid",
    "statfs",
    "fstatfs",
    "getcwd",
    "close_range",
    "poll",
    "ppoll",
    "pselect6",
    "select",
    "dup",
    "dup2",
    "stat",
    "lstat",
    "open",
    "sendmsg",
    "recvmsg",
    "accept4",
    "socket",
    "connect",
    "setpgid",
    "getpgid",
    "getrlimit",
    "setrlimit",
    "umask",
    "waitid",
    "clock_gettime",
    "clock_nanosleep",
    "gettimeofday",
    "sysinfo",
    "faccessat",
    "faccessat2",
    "statx",
    "readlink",
    "fchmod",
    "getsockopt",
    "setsockopt",
    "shutdown",
    "recvfrom",
    "sendto",
];

/// Builds tests/seccomp/NAME.c statically, once per test binary.
fn helper(name: &'static str) -> PathBuf {
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

fn have_runc() -> bool {
    let ok = Command::new("runc").arg("--version").output().is_ok();
    if !ok && std::env::var("CI").as_deref() == Ok("true") {
        panic!("runc is needed for the differential tests (just deps installs it)");
    }
    ok
}

/// Replaces "@BASE" in every names list.
fn expand(mut sc: Value) -> Value {
    for rule in sc["syscalls"].as_array_mut().into_iter().flatten() {
        let names = rule["names"].as_array().cloned().unwrap_or_default();
        let mut out: Vec<Value> = Vec::new();
        for n in names {
            if n == "@BASE" {
                out.extend(BASE.iter().map(|b| Value::from(*b)));
            } else {
                out.push(n);
            }
        }
        rule["names"] = out.into();
    }
    sc
}

struct Outcome {
    code: i32,
    out: String,
    err: String,
}

/// Runs the env's bundle under `runtime` ("ruse" or "runc") in the foreground.
fn run_under(env: &Env, runtime: &str, tag: &str) -> Outcome {
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
fn probe_env(probes: &[String]) -> Env {
    let mut args = vec!["/probe".to_string()];
    args.extend(probes.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let env = Env::new(&args);
    std::fs::copy(helper("probe"), env.rootfs().join("probe")).unwrap();
    env
}

/// Runs one profile under both runtimes; returns a mismatch description, if any, and the
/// number of syscalls compared.
fn differ(name: &str, p: &Value, probes: &[String]) -> (Option<String>, usize) {
    let env = probe_env(probes);
    env.edit(|c| {
        c["linux"]["seccomp"] = expand(p["seccomp"].clone());
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
        let (diff, n) = differ(p["name"].as_str().unwrap(), p, &probes);
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
        let (diff, n) = differ(name, &p, &probes);
        compared += n;
        bad.extend(diff);
    }
    eprintln!("podman profile: {compared} syscall outcomes compared with runc");
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// The listener gets the state and the fd from `create`, answers the trapped syscall, and the
/// container sees the answer; runc's run of the same bundle must agree.
#[test]
fn notify_reaches_the_listener_and_its_answer_the_container() {
    if !common::root_or_skip() {
        return;
    }
    let runtimes: &[&str] = if have_runc() {
        &["ruse", "runc"]
    } else {
        &["ruse"]
    };
    let mut outputs = Vec::new();
    for rt in runtimes {
        let env = probe_env(&["111".into(), "100,0".into(), "111".into()]);
        let sock = env.dir.join("agent.sock");
        let state = env.dir.join("agent-state.json");
        env.edit(|c| {
            c["annotations"] = json!({"org.example/k": "v"});
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "listenerPath": sock,
                "listenerMetadata": "hello agent",
                // runc 1.1 does not know SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV.
                "flags": if *rt == "ruse" { json!(["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]) } else { json!([]) },
                "syscalls": [{"names": ["getpgrp"], "action": "SCMP_ACT_NOTIFY"}]
            });
        });
        let mut agent = Command::new(helper("agent"))
            .arg(&sock)
            .arg(&state)
            .arg("18")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut ready = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(agent.stdout.as_mut().unwrap()),
            &mut ready,
        )
        .unwrap();
        assert_eq!(ready.trim(), "ready");
        let o = run_under(&env, rt, "sc-notify");
        if o.code != 0 {
            let _ = agent.kill();
        }
        let st = agent.wait().unwrap();
        assert_eq!(o.code, 0, "{rt}: {}", o.err);
        assert!(st.success(), "{rt}: agent {st}");
        // The trapped getpgrp sees the agent's EXDEV; the rest runs normally.
        assert_eq!(o.out, "111 errno=18\n100,0 ok\n111 errno=18\n", "{rt}");
        let got: Value = serde_json::from_slice(&std::fs::read(&state).unwrap()).unwrap();
        assert_eq!(got["fds_received"], 1, "{rt}: {got}");
        let m = &got["message"];
        assert_eq!(m["fds"], json!(["seccompFd"]), "{rt}: {m}");
        assert_eq!(m["metadata"], "hello agent", "{rt}: {m}");
        assert_eq!(m["state"]["status"], "creating", "{rt}: {m}");
        assert!(
            m["pid"].as_i64().unwrap() > 0 && m["pid"] == m["state"]["pid"],
            "{rt}: {m}"
        );
        assert_eq!(
            m["state"]["bundle"],
            env.bundle().to_str().unwrap(),
            "{rt}: {m}"
        );
        assert_eq!(m["state"]["annotations"]["org.example/k"], "v", "{rt}: {m}");
        assert!(
            m["state"]["id"].as_str().unwrap().contains("sc-notify"),
            "{rt}: {m}"
        );
        outputs.push(o.out);
    }
    outputs.dedup();
    assert_eq!(outputs.len(), 1);
}

#[test]
fn notify_without_a_listener_fails_create_and_leaves_nothing() {
    if !common::root_or_skip() {
        return;
    }
    let env = probe_env(&["111".into()]);
    env.edit(|c| {
        c["linux"]["seccomp"] = json!({
            "defaultAction": "SCMP_ACT_ALLOW",
            "listenerPath": env.dir.join("nobody-listens.sock"),
            "syscalls": [{"names": ["getpgrp"], "action": "SCMP_ACT_NOTIFY"}]
        });
    });
    let id = unique_id("sc-nolistener");
    let o = env.ruse(&["create", "--bundle", env.bundle().to_str().unwrap(), &id]);
    assert_eq!(o.status.code(), Some(1));
    let e = stderr(&o);
    assert!(
        e.contains("linux.seccomp.listenerPath") && e.contains("nobody-listens.sock"),
        "{e}"
    );
    env.assert_clean(&id);
}

#[test]
fn bad_profiles_fail_with_the_rule_named_and_leave_nothing() {
    if !common::root_or_skip() {
        return;
    }
    let rule = |extra: Value| {
        let mut r = json!({"names": ["getpid"], "action": "SCMP_ACT_ERRNO"});
        for (k, v) in extra.as_object().unwrap() {
            r[k] = v.clone();
        }
        json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [{"names": ["read"], "action": "SCMP_ACT_LOG"}, r]})
    };
    let cases = [
        (
            rule(json!({"action": "SCMP_ACT_EXPLODE"})),
            "linux.seccomp.syscalls[1].action",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "architectures": ["SCMP_ARCH_VAX"]}),
            "linux.seccomp.architectures[0]",
        ),
        (
            rule(json!({"action": "SCMP_ACT_KILL", "errnoRet": 1})),
            "linux.seccomp.syscalls[1].errnoRet",
        ),
        (
            rule(json!({"errnoRet": 4095})),
            "linux.seccomp.syscalls[1].errnoRet 4095",
        ),
        (
            rule(json!({"args": [{"index": 0, "value": 1, "op": "SCMP_CMP_ALMOST"}]})),
            "linux.seccomp.syscalls[1].args[0].op",
        ),
        (
            rule(json!({"args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]})),
            "linux.seccomp.syscalls[1].args[0].index 7",
        ),
        (
            json!({"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [
                {"names": ["getpid"], "action": "SCMP_ACT_ERRNO", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]},
                {"names": ["getpid"], "action": "SCMP_ACT_LOG", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}]}]}),
            "linux.seccomp.syscalls[1]: the rule for getpid conflicts with an earlier rule",
        ),
    ];
    for (profile, want) in cases {
        let env = Env::new(&["true"]);
        env.edit(|c| c["linux"]["seccomp"] = profile.clone());
        let id = unique_id("sc-bad");
        let o = env.ruse(&["create", "--bundle", env.bundle().to_str().unwrap(), &id]);
        assert_eq!(o.status.code(), Some(1), "{profile}");
        assert!(
            stderr(&o).contains(want),
            "want {want:?} in: {}",
            stderr(&o)
        );
        env.assert_clean(&id);
    }
}

/// The filter is in place once `create` returns, as with runc, with and without
/// no_new_privs (root installs it before dropping CAP_SYS_ADMIN then).
#[test]
fn filter_is_installed_at_create_with_and_without_no_new_privs() {
    if !common::root_or_skip() {
        return;
    }
    for nnp in [true, false] {
        let env = probe_env(&["111".into()]);
        env.edit(|c| {
            c["process"]["noNewPrivileges"] = nnp.into();
            c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["getpgrp"], "action": "SCMP_ACT_ERRNO", "errnoRet": 33}]});
        });
        let id = unique_id("sc-created");
        env.create(&id);
        let pid = env.state(&id)["pid"].as_i64().unwrap();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let field = |k: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(k))
                .map(str::trim)
                .unwrap_or_default()
                .to_string()
        };
        assert_eq!(field("Seccomp:"), "2", "nnp {nnp}: {status}");
        assert_eq!(field("Seccomp_filters:"), "1", "nnp {nnp}");
        assert_eq!(field("NoNewPrivs:"), if nnp { "1" } else { "0" });
        let o = env.ruse(&["start", &id]);
        assert!(o.status.success(), "{}", stderr(&o));
        env.wait_status(&id, "stopped");
        let o = env.ruse(&["delete", &id]);
        assert!(o.status.success(), "{}", stderr(&o));
        env.assert_clean(&id);
    }
}
