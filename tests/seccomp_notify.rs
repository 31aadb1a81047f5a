//! linux.seccomp, the rest of the contract: SCMP_ACT_NOTIFY's hand-off of the listener fd and
//! the container state to linux.seccomp.listenerPath (an agent, tests/seccomp/agent.c,
//! answers the trapped syscall), the filter being in place after `create`, and bad profiles
//! failing with the rule named. Needs root and gcc with a static libc; runc for comparison.

mod common;
#[path = "seccomp/harness.rs"]
mod harness;

use common::{stderr, unique_id, Env};
use harness::{have_runc, helper, probe_env, run_under};
use serde_json::{json, Value};
use std::process::{Command, Stdio};

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

/// Where the filter goes on. Without no_new_privs it is in place once `create` returns, as
/// with runc (root installs it before dropping CAP_SYS_ADMIN). With it, and no listener to
/// hand over, it goes on last, right before the execve: created init has none yet, and the
/// program runs under it.
#[test]
fn filter_is_installed_at_create_without_no_new_privs_and_last_with_it() {
    if !common::root_or_skip() {
        return;
    }
    for nnp in [true, false] {
        let env = Env::new(&[
            "grep",
            "-E",
            "^(Seccomp|Seccomp_filters|NoNewPrivs):",
            "/proc/self/status",
        ]);
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
        assert_eq!(
            field("Seccomp:"),
            if nnp { "0" } else { "2" },
            "nnp {nnp}: {status}"
        );
        assert_eq!(
            field("NoNewPrivs:"),
            if nnp { "1" } else { "0" },
            "nnp {nnp}"
        );
        assert!(env.ruse(&["delete", "--force", &id]).status.success());
        env.assert_clean(&id);
        let id = unique_id("sc-running");
        let out = env.run(&id);
        assert!(out.status.success(), "{}", stderr(&out));
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let want_nnp = if nnp { "1" } else { "0" };
        let got: Vec<String> = text.split_whitespace().map(str::to_string).collect();
        assert_eq!(
            got,
            [
                "NoNewPrivs:",
                want_nnp,
                "Seccomp:",
                "2",
                "Seccomp_filters:",
                "1"
            ],
            "nnp {nnp}: {text}"
        );
        env.assert_clean(&id);
    }
}

/// With no_new_privs the filter is the last thing before the execve, so a profile may deny
/// what ruse itself uses to start the container (its messages, the start connection, fd and
/// signal cleanup); the program still runs, as under runc.
#[test]
fn a_profile_denying_what_the_runtime_uses_still_starts_with_no_new_privs() {
    if !common::root_or_skip() {
        return;
    }
    let denied = [
        "accept4",
        "sendmsg",
        "recvmsg",
        "recvfrom",
        "close_range",
        "rt_sigprocmask",
        "prctl",
        "close",
    ];
    let env = Env::new(&["echo", "hello"]);
    env.edit(|c| {
        c["process"]["noNewPrivileges"] = true.into();
        c["linux"]["seccomp"] = json!({"defaultAction": "SCMP_ACT_ALLOW",
            "syscalls": [{"names": denied, "action": "SCMP_ACT_ERRNO"}]});
    });
    let id = unique_id("sc-deny-rt");
    let out = env.run(&id);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello\n");
    env.assert_clean(&id);
}
