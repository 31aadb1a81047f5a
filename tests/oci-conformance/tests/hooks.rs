//! config.md "POSIX-platform Hooks" and runtime.md "Lifecycle": when each hook kind runs,
//! in which order, in which namespaces, with which state on stdin, args and env, and what a
//! failing hook does to the lifecycle. Every hook appends to one log shared by the host and the
//! container (a host directory bind-mounted at /hk), and records its namespaces and stdin.

use oci_conformance::host::{self, ns_id};
use oci_conformance::{assert_fails, assert_ok, require, rt, sh_config, Test};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};

oci_conformance::init!();

const NS: [&str; 5] = ["mnt", "uts", "ipc", "net", "pid"];

/// The hooks' shared directory: on the host at `dir`, in the container at /hk.
struct Hooks {
    dir: PathBuf,
}

impl Hooks {
    fn new(t: &Test) -> Hooks {
        let dir = t.dir.join("hk");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o777))
            .unwrap();
        Hooks { dir }
    }

    fn body(&self, base: &str, name: &str, exit: i32) -> String {
        format!(
            "cat > {base}/state-{name}.json\n\
             for n in {ns}; do readlink /proc/self/ns/$n; done > {base}/ns-{name}\n\
             echo {name} >> {base}/log\n\
             exit {exit}",
            ns = NS.join(" ")
        )
    }

    fn write(&self, file: &str, body: &str) -> PathBuf {
        let p = self.dir.join(file);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        p
    }

    /// A hook whose path resolves on the host (runtime namespace).
    fn host(&self, name: &str, exit: i32) -> Value {
        let body = self.body(self.dir.to_str().unwrap(), name, exit);
        json!({"path": self.write(&format!("{name}.sh"), &body)})
    }

    /// A hook whose path only resolves inside the container (/hk/<name>.sh).
    fn container(&self, name: &str, exit: i32) -> Value {
        let body = self.body("/hk", name, exit);
        self.write(&format!("{name}.sh"), &body);
        json!({"path": format!("/hk/{name}.sh")})
    }

    fn log(&self) -> Vec<String> {
        std::fs::read_to_string(self.dir.join("log"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn state(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(self.dir.join(format!("state-{name}.json")))
            .unwrap_or_else(|e| panic!("hook {name} left no state ({e})"));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("hook {name}: stdin is not a JSON state ({e}): {text:?}"))
    }

    fn ns(&self, name: &str) -> Vec<String> {
        std::fs::read_to_string(self.dir.join(format!("ns-{name}")))
            .unwrap_or_else(|e| panic!("hook {name} left no namespaces ({e})"))
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// `cfg` with /hk mounted and `program` as the process.
    fn config(&self, program: &str, hooks: Value) -> Value {
        let mut cfg = sh_config(program);
        cfg["mounts"].as_array_mut().unwrap().push(json!({
            "destination": "/hk", "type": "none", "source": self.dir, "options": ["rbind", "rw"]
        }));
        cfg["hooks"] = hooks;
        cfg
    }
}

fn ns_of(pid: &str) -> Vec<String> {
    NS.iter().map(|n| ns_id(pid, n)).collect()
}

// config.md "POSIX-platform Hooks": "Hooks MUST be called in the listed order." and runtime.md
// "Lifecycle": prestart (3), createRuntime (4), createContainer (5) during create; startContainer
// (7) during start, before the program (8); poststart (9) before start returns; poststop (13)
// before delete returns. config.md "Prestart": "The prestart hooks MUST be called before the
// createRuntime hooks"; "CreateContainer": "MUST be called after the createRuntime hooks".
#[test]
fn hooks_run_in_lifecycle_and_listed_order() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let hooks = json!({
        "prestart": [h.host("prestart1", 0), h.host("prestart2", 0)],
        "createRuntime": [h.host("createRuntime1", 0), h.host("createRuntime2", 0)],
        "createContainer": [h.host("createContainer1", 0), h.host("createContainer2", 0)],
        "startContainer": [h.container("startContainer1", 0), h.container("startContainer2", 0)],
        "poststart": [h.host("poststart1", 0), h.host("poststart2", 0)],
        "poststop": [h.host("poststop1", 0), h.host("poststop2", 0)]
    });
    let b = t.bundle(&h.config("echo program >> /hk/log", hooks));
    let id = t.id("order");
    assert_ok!(t.create(&id, &b));
    let create_phase = [
        "prestart1",
        "prestart2",
        "createRuntime1",
        "createRuntime2",
        "createContainer1",
        "createContainer2",
    ];
    assert_eq!(h.log(), create_phase, "after create");
    assert_ok!(t.start(&id));
    let log = h.log();
    let after_start: Vec<&str> = log
        .iter()
        .map(String::as_str)
        .filter(|l| *l != "program")
        .collect();
    let mut want: Vec<&str> = create_phase.to_vec();
    want.extend([
        "startContainer1",
        "startContainer2",
        "poststart1",
        "poststart2",
    ]);
    assert_eq!(after_start, want, "after start returned");
    assert!(t.wait_status(&id, "stopped"));
    let log = h.log();
    let program = log
        .iter()
        .position(|l| l == "program")
        .expect("program ran");
    let start2 = log.iter().position(|l| l == "startContainer2").unwrap();
    assert!(
        program > start2,
        "the program ran before startContainer hooks: {log:?}"
    );
    assert_ok!(t.delete(&id));
    let log = h.log();
    assert_eq!(&log[log.len() - 2..], ["poststop1", "poststop2"], "{log:?}");
}

// config.md "POSIX-platform Hooks": "The state of the container MUST be passed to hooks over
// stdin"; runtime.md "State": for hooks in the runtime namespace the pid "is the pid as seen by
// the runtime".
#[test]
fn hooks_receive_the_state_on_stdin() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let hooks = json!({
        "prestart": [h.host("prestart", 0)],
        "createRuntime": [h.host("createRuntime", 0)],
        "createContainer": [h.host("createContainer", 0)],
        "startContainer": [h.container("startContainer", 0)],
        "poststart": [h.host("poststart", 0)],
        "poststop": [h.host("poststop", 0)]
    });
    let mut cfg = h.config("true", hooks);
    cfg["annotations"] = json!({"org.example.hook": "seen"});
    let b = t.bundle(&cfg);
    let id = t.id("hookstate");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert_ok!(t.delete(&id));
    let bundle = std::fs::canonicalize(&b).unwrap();
    for kind in [
        "prestart",
        "createRuntime",
        "createContainer",
        "startContainer",
        "poststart",
        "poststop",
    ] {
        let s = h.state(kind);
        assert_eq!(s["id"], json!(id), "{kind}: {s}");
        assert!(
            s["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
            "{kind}: {s}"
        );
        // "Additional values MAY be defined by the runtime": any status string will do.
        assert!(
            s["status"].as_str().is_some_and(|v| !v.is_empty()),
            "{kind}: status {s}"
        );
        let sb = s["bundle"]
            .as_str()
            .unwrap_or_else(|| panic!("{kind}: no bundle: {s}"));
        assert_eq!(std::fs::canonicalize(sb).unwrap(), bundle, "{kind}: {s}");
    }
    for kind in ["prestart", "createRuntime", "poststart"] {
        let s = h.state(kind);
        assert_eq!(
            s["pid"].as_u64(),
            Some(pid as u64),
            "{kind}: pid as seen by the runtime: {s}"
        );
    }
}

// runtime.md "State": pid — "For hooks executed in the container namespace, it is the pid as
// seen by the container." With a new pid namespace the container process is pid 1 there.
// (runtime-spec 1.1.0 defined the state per namespace)
#[test]
fn hooks_in_container_namespace_see_the_container_pid() {
    let Some(t) = Test::new() else { return };
    require!(
        t,
        rt().supports_spec("1.1.0"),
        "the pid as seen by the container is runtime-spec 1.1.0"
    );
    let h = Hooks::new(&t);
    let hooks = json!({
        "createContainer": [h.host("createContainer", 0)],
        "startContainer": [h.container("startContainer", 0)]
    });
    let b = t.bundle(&h.config("true", hooks));
    let id = t.id("hookpid");
    assert_ok!(t.create(&id, &b));
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    for kind in ["createContainer", "startContainer"] {
        let s = h.state(kind);
        assert_eq!(
            s["pid"].as_u64(),
            Some(1),
            "{kind}: pid as seen by the container: {s}"
        );
    }
}

// config.md "Prestart": "The prestart hooks' path MUST resolve in the runtime namespace. The
// prestart hooks MUST be executed in the runtime namespace." Same for "CreateRuntime Hooks".
#[test]
fn hooks_prestart_and_create_runtime_run_in_the_runtime_namespace() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let hooks = json!({
        "prestart": [h.host("prestart", 0)],
        "createRuntime": [h.host("createRuntime", 0)]
    });
    let b = t.bundle(&h.config("true", hooks));
    let id = t.id("hookns");
    assert_ok!(t.create(&id, &b));
    let runtime = ns_of("self");
    let container = ns_of(&t.pid(&id).to_string());
    for kind in ["prestart", "createRuntime"] {
        let got = h.ns(kind);
        assert_eq!(
            got, runtime,
            "{kind} not in the runtime namespaces (container: {container:?})"
        );
    }
}

// config.md "CreateContainer Hooks": "The createContainer hooks' path MUST resolve in the
// runtime namespace. The createContainer hooks MUST be executed in the container namespace."
#[test]
fn hooks_create_container_runs_in_the_container_namespace() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let hooks = json!({"createContainer": [h.host("createContainer", 0)]});
    let b = t.bundle(&h.config("true", hooks));
    let id = t.id("hookcc");
    assert_ok!(t.create(&id, &b));
    let container = ns_of(&t.pid(&id).to_string());
    assert_eq!(h.ns("createContainer"), container);
}

// config.md "StartContainer Hooks": "The startContainer hooks' path MUST resolve in the
// container namespace. The startContainer hooks MUST be executed in the container namespace."
// The hook exists only at its path inside the container.
#[test]
fn hooks_start_container_runs_in_the_container_namespace() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let hooks = json!({"startContainer": [h.container("startContainer", 0)]});
    let b = t.bundle(&h.config("exec sleep 1000", hooks));
    let id = t.id("hooksc");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    let container = ns_of(&pid.to_string());
    assert_ok!(t.start(&id));
    assert!(host::wait_comm(pid, "sleep"));
    assert_eq!(h.ns("startContainer"), container);
}

// config.md "Poststart": "The poststart hooks MUST be called after the user-specified process is
// executed but before the start operation returns." "[...] MUST be executed in the runtime
// namespace."
#[test]
fn hooks_poststart_runs_in_the_runtime_namespace_before_start_returns() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let hooks = json!({"poststart": [h.host("poststart", 0)]});
    let b = t.bundle(&h.config("exec sleep 1000", hooks));
    let id = t.id("hookps");
    assert_ok!(t.create(&id, &b));
    assert!(h.log().is_empty(), "poststart ran during create");
    assert_ok!(t.start(&id));
    assert_eq!(
        h.log(),
        ["poststart"],
        "poststart had not run when start returned"
    );
    assert_eq!(h.ns("poststart"), ns_of("self"));
}

// config.md "Poststop": "The poststop hooks MUST be called after the container is deleted but
// before the delete operation returns." "[...] MUST be executed in the runtime namespace."
#[test]
fn hooks_poststop_runs_in_the_runtime_namespace_before_delete_returns() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let hooks = json!({"poststop": [h.host("poststop", 0)]});
    let b = t.bundle(&h.config("true", hooks));
    let id = t.id("hookpst");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert!(h.log().is_empty(), "poststop ran before delete");
    assert_ok!(t.delete(&id));
    assert_eq!(
        h.log(),
        ["poststop"],
        "poststop had not run when delete returned"
    );
    assert_eq!(h.ns("poststop"), ns_of("self"));
    assert!(!host::pid_alive(pid));
}

// config.md "POSIX-platform Hooks": args "with the same semantics as IEEE Std 1003.1-2008
// execv's argv", env "with the same semantics as IEEE Std 1003.1-2008's environ". The hook is
// the host's static busybox, which picks its applet from argv[0]: it only runs as `sh` if
// args[0] reaches it as argv[0].
#[test]
fn hooks_get_their_args_and_env() {
    let Some(t) = Test::new() else { return };
    let out = t.dir.join("hook-args");
    let mut cfg = sh_config("true");
    cfg["hooks"] = json!({"createRuntime": [{
        "path": oci_conformance::bundle::BUSYBOX,
        "args": ["sh", "-c", format!("{{ echo \"$0|$1|$#\"; env | sort; }} > {}", out.display()),
                 "zero", "one two"],
        "env": ["HOOK_A=1", "HOOK_B=with space"]
    }]});
    let b = t.bundle(&cfg);
    let id = t.id("hookargs");
    let mut c = t.cmd();
    c.env("OCI_CONFORMANCE_LEAK", "leaked")
        .arg("create")
        .arg("--bundle")
        .arg(&b)
        .arg(&id);
    t.track(&id);
    assert_ok!(oci_conformance::test::run_cmd(
        c,
        &t.dir.join("io/hookargs"),
        Duration::from_secs(60)
    ));
    let text = std::fs::read_to_string(&out).expect("the hook ran as busybox sh");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("zero|one two|1"), "{text}");
    // busybox sh exports PWD, SHLVL and (when unset) its default PATH itself; the rest is
    // exactly the hook's env.
    let env: Vec<&str> = lines
        .filter(|l| {
            !l.starts_with("PWD=")
                && !l.starts_with("SHLVL=")
                && *l != "PATH=/sbin:/usr/sbin:/bin:/usr/bin"
        })
        .collect();
    assert_eq!(env, ["HOOK_A=1", "HOOK_B=with space"], "{text}");
}

/// A create whose hook of `kind` fails: an error, no container, the program never ran, and
/// (runtime.md: "continue the lifecycle at step 12" — step 13 runs the poststop hooks) the
/// poststop hook ran.
fn failing_create_hook(kind: &str) {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let mut hooks = json!({"poststop": [h.host("poststop", 0)]});
    hooks[kind] = json!([h.host("failing", 1), h.host("after", 0)]);
    let b = t.bundle(&h.config("echo program >> /hk/log", hooks));
    let id = t.id("hookfail");
    assert_fails!(t.create(&id, &b));
    let log = h.log();
    assert!(
        !log.contains(&"after".to_string()),
        "a hook ran after the failing one: {log:?}"
    );
    assert!(!log.contains(&"program".to_string()), "{log:?}");
    if let Some(s) = t.state(&id) {
        panic!("{kind} failed but the container exists: {s}");
    }
    let rootfs = std::fs::canonicalize(b.join("rootfs")).unwrap();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(r) = std::fs::read_link(e.path().join("root")) {
            assert_ne!(
                r,
                rootfs,
                "process {:?} of the container is left",
                e.file_name()
            );
        }
    }
    assert!(
        log.contains(&"poststop".to_string()),
        "poststop hooks were not invoked: {log:?}"
    );
}

// runtime.md "Lifecycle" 3: "If any prestart hook fails, the runtime MUST generate an error, stop
// the container, and continue the lifecycle at step 12."
#[test]
fn hooks_prestart_failure_errors_and_destroys_the_container() {
    failing_create_hook("prestart");
}

// runtime.md "Lifecycle" 4: "If any createRuntime hook fails, the runtime MUST generate an error,
// stop the container, and continue the lifecycle at step 12."
#[test]
fn hooks_create_runtime_failure_errors_and_destroys_the_container() {
    failing_create_hook("createRuntime");
}

// runtime.md "Lifecycle" 5: "If any createContainer hook fails, the runtime MUST generate an
// error, stop the container, and continue the lifecycle at step 12."
#[test]
fn hooks_create_container_failure_errors_and_destroys_the_container() {
    failing_create_hook("createContainer");
}

// runtime.md "Lifecycle" 7: "If any startContainer hook fails, the runtime MUST generate an
// error, stop the container, and continue the lifecycle at step 12." The program never runs.
#[test]
fn hooks_start_container_failure_errors_and_stops_the_container() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let hooks =
        json!({"startContainer": [h.container("failing", 1)], "poststop": [h.host("poststop", 0)]});
    let b = t.bundle(&h.config("echo program >> /hk/log; exec sleep 1000", hooks));
    let id = t.id("hookscfail");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    assert_fails!(t.start(&id));
    assert!(
        host::wait_until(Duration::from_secs(10), || !host::pid_alive(pid)),
        "the container process still runs"
    );
    assert!(!h.log().contains(&"program".to_string()), "{:?}", h.log());
    if let Some(s) = t.status(&id) {
        assert_eq!(s, "stopped", "after a failed startContainer hook");
    }
}

// runtime.md "Lifecycle" 9: "If any poststart hook fails, the runtime MUST generate an error,
// stop the container, and continue the lifecycle at step 12." (runtime-spec 1.3.0; before, a
// failing poststart hook was only a warning)
#[test]
fn hooks_poststart_failure_errors_and_stops_the_container() {
    let Some(t) = Test::new() else { return };
    require!(
        t,
        rt().supports_spec("1.3.0"),
        "poststart failures are errors since runtime-spec 1.3.0"
    );
    let h = Hooks::new(&t);
    let hooks = json!({"poststart": [h.host("failing", 1), h.host("after", 0)]});
    let b = t.bundle(&h.config("exec sleep 1000", hooks));
    let id = t.id("hookpsfail");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    assert_fails!(t.start(&id));
    assert!(
        host::wait_until(Duration::from_secs(10), || !host::pid_alive(pid)),
        "the container still runs after a failed poststart hook"
    );
    assert!(!h.log().contains(&"after".to_string()), "{:?}", h.log());
}

// runtime.md "Lifecycle" 13: "If any poststop hook fails, the runtime MUST log a warning, but the
// remaining hooks and lifecycle continue as if the hook had succeeded."
#[test]
fn hooks_poststop_failure_is_only_a_warning() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let hooks = json!({"poststop": [h.host("failing", 1), h.host("after", 0)]});
    let b = t.bundle(&h.config("true", hooks));
    let id = t.id("hookpstfail");
    assert_ok!(t.create(&id, &b));
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert_ok!(
        t.delete(&id),
        "delete must succeed despite a failing poststop hook"
    );
    assert_eq!(h.log(), ["failing", "after"]);
    assert!(t.state(&id).is_none());
}

// config.md "POSIX-platform Hooks": "timeout (int, OPTIONAL) is the number of seconds before
// aborting the hook." An aborted createRuntime hook is a failed one: create errors, in time.
#[test]
fn hooks_timeout_aborts_the_hook() {
    let Some(t) = Test::new() else { return };
    let script = t.script("slow.sh", "exec sleep 30");
    let mut cfg = sh_config("true");
    cfg["hooks"] = json!({"createRuntime": [{"path": script, "timeout": 1}]});
    let b = t.bundle(&cfg);
    let id = t.id("hooktimeout");
    let t0 = Instant::now();
    assert_fails!(t.create(&id, &b));
    assert!(
        t0.elapsed() < Duration::from_secs(20),
        "took {:?}",
        t0.elapsed()
    );
    assert!(t.state(&id).is_none());
}

// config.md "POSIX-platform Hooks": "If set, timeout MUST be greater than zero." A zero timeout
// is an invalid value ("Runtimes MUST generate an error when invalid or unsupported values are
// encountered").
#[test]
fn hooks_timeout_must_be_positive() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    let mut hook = h.host("zero", 0);
    hook["timeout"] = json!(0);
    let b = t.bundle(&h.config("true", json!({"createRuntime": [hook]})));
    let id = t.id("hookzero");
    assert_fails!(t.create(&id, &b));
}

// config.md "POSIX-platform Hooks": path — "This specification extends the IEEE standard in that
// path MUST be absolute."
#[test]
fn hooks_path_must_be_absolute() {
    let Some(t) = Test::new() else { return };
    let h = Hooks::new(&t);
    h.host("relative", 0);
    let mut cfg = h.config("true", json!({"createRuntime": [{"path": "relative.sh"}]}));
    cfg["process"]["cwd"] = json!("/");
    let b = t.bundle(&cfg);
    std::fs::copy(h.dir.join("relative.sh"), b.join("relative.sh")).unwrap();
    let id = t.id("hookrel");
    let mut c = t.cmd();
    c.current_dir(&h.dir)
        .arg("create")
        .arg("--bundle")
        .arg(&b)
        .arg(&id);
    t.track(&id);
    assert_fails!(oci_conformance::test::run_cmd(
        c,
        &t.dir.join("io/hookrel"),
        Duration::from_secs(60)
    ));
}
