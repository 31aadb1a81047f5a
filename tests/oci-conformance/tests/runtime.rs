//! runtime.md: the state, the lifecycle, and the operations (state, create, start, kill,
//! delete) with their errors, as the kernel and the runtime's `state` show them.

use oci_conformance::host::{self, ns_id};
use oci_conformance::{assert_fails, assert_ok, base_config, sh_config, Test};
use serde_json::{json, Value};
use std::path::Path;

oci_conformance::init!();

fn sleeper() -> Value {
    base_config(&["/bin/sleep", "1000"])
}

// runtime.md "Query State": "This operation MUST generate an error if it is not provided the
// ID of a container."
#[test]
fn state_requires_container_id() {
    let Some(t) = Test::new() else { return };
    assert_fails!(t.rt(&["state"]));
}

// runtime.md "Query State": "Attempting to query a container that does not exist MUST
// generate an error."
#[test]
fn state_of_missing_container_errors() {
    let Some(t) = Test::new() else { return };
    let id = t.id("missing");
    assert_fails!(t.rt(&["state", &id]));
}

// runtime.md "Query State": "This operation MUST return the state of a container as specified
// in the State section." State: ociVersion, id, status, pid ("REQUIRED when status is created
// or running on Linux"), bundle ("the absolute path to the container's bundle directory").
#[test]
fn state_of_created_container_has_required_properties() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sleeper());
    let id = t.id("state");
    assert_ok!(t.create(&id, &b));
    let s = t.state(&id).expect("state of a created container");
    assert!(
        s["ociVersion"].as_str().is_some_and(|v| !v.is_empty()),
        "{s}"
    );
    assert_eq!(s["id"], json!(id), "{s}");
    assert_eq!(s["status"], "created", "{s}");
    let pid = s["pid"].as_u64().expect("pid is required when created") as u32;
    assert!(
        host::pid_alive(pid),
        "state pid {pid} is not a live process"
    );
    let bundle = s["bundle"].as_str().expect("bundle is a string");
    assert!(
        Path::new(bundle).is_absolute(),
        "bundle {bundle} not absolute"
    );
    assert_eq!(
        std::fs::canonicalize(bundle).unwrap(),
        std::fs::canonicalize(&b).unwrap()
    );
}

// runtime.md "State": "annotations (map, OPTIONAL) contains the list of annotations associated
// with the container." When the runtime reports them, they are the config's.
#[test]
fn state_annotations_are_the_configs() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sleeper();
    cfg["annotations"] = json!({"org.example.key": "value", "org.example.empty": ""});
    let b = t.bundle(&cfg);
    let id = t.id("annot");
    assert_ok!(t.create(&id, &b));
    let s = t.state(&id).unwrap();
    if let Some(a) = s.get("annotations").filter(|a| !a.is_null()) {
        assert_eq!(a, &cfg["annotations"], "{s}");
    }
}

// runtime.md "State": "running: the container process has executed the user-specified program
// but has not exited"; pid is required and is the container process.
#[test]
fn state_running_after_start() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sleeper());
    let id = t.id("running");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    assert_ok!(t.start(&id));
    assert!(host::wait_comm(pid, "sleep"));
    let s = t.state(&id).unwrap();
    assert_eq!(s["status"], "running", "{s}");
    assert_eq!(s["pid"].as_u64(), Some(pid as u64), "{s}");
}

// runtime.md "State": "stopped: the container process has exited"; lifecycle step 10.
#[test]
fn state_stopped_after_process_exits() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&base_config(&["/bin/true"]));
    let id = t.id("stopped");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    assert_ok!(t.start(&id));
    assert!(host::wait_until(std::time::Duration::from_secs(10), || {
        !host::pid_alive(pid)
    }));
    assert!(t.wait_status(&id, "stopped"), "status {:?}", t.status(&id));
}

// runtime.md "Create": "This operation MUST generate an error if it is not provided a path to
// the bundle and the container ID to associate with the container."
#[test]
fn create_requires_container_id() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sleeper());
    let mut c = t.cmd();
    c.arg("create").arg("--bundle").arg(&b);
    let out = oci_conformance::test::run_cmd(
        c,
        &t.dir.join("io/noid"),
        std::time::Duration::from_secs(60),
    );
    assert_fails!(out);
    assert_eq!(
        host::host_mounts_under(&b),
        Vec::<std::path::PathBuf>::new()
    );
}

// runtime.md "Create": "This operation MUST generate an error if it is not provided a path to
// the bundle" (here: a path that is no bundle) — and "generating an error MUST leave the state
// of the environment as if the operation were never attempted".
#[test]
fn create_with_missing_bundle_errors() {
    let Some(t) = Test::new() else { return };
    let id = t.id("nobundle");
    let missing = t.dir.join("no-such-bundle");
    assert_fails!(t.create(&id, &missing));
    assert!(
        t.state(&id).is_none(),
        "container exists after a failed create"
    );
}

// runtime.md "Create": "If the ID provided is not unique across all containers within the
// scope of the runtime, [...] the implementation MUST generate an error and a new container
// MUST NOT be created."
#[test]
fn create_duplicate_id_errors() {
    let Some(t) = Test::new() else { return };
    let b1 = t.bundle(&sleeper());
    let b2 = t.bundle(&sleeper());
    let id = t.id("dup");
    assert_ok!(t.create(&id, &b1));
    let before = t.state(&id).unwrap();
    assert_fails!(t.create(&id, &b2));
    let after = t.state(&id).expect("first container still exists");
    assert_eq!(before["pid"], after["pid"]);
    assert_eq!(before["bundle"], after["bundle"]);
    assert_eq!(after["status"], "created");
}

// runtime.md "Create": "If the ID provided [...] is not valid in any other way, the
// implementation MUST generate an error and a new container MUST NOT be created." An id
// that is a path (or empty) cannot name a container; nothing may appear outside `--root`.
#[test]
fn create_invalid_id_errors() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sleeper());
    let nest = t.dir.join("nest");
    let root = nest.join("state");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(nest.join("canary"), "canary").unwrap();
    let marker = format!("oci-conf-escape-{}", std::process::id());
    for bad in [
        "",
        "..",
        "../escape",
        "a/b",
        &format!("../../../../../../tmp/{marker}"),
    ] {
        let out = t.rt_root(&root, &["create", "--bundle", b.to_str().unwrap(), bad]);
        if out.ok() {
            // Created after all: remove it with the same id before failing.
            let _ = t.rt_root(&root, &["delete", "--force", bad]);
        }
        assert_fails!(out, "id {bad:?}");
    }
    assert!(!Path::new("/tmp").join(&marker).exists());
    assert!(!nest.join("escape").exists());
    assert_eq!(
        std::fs::read_to_string(nest.join("canary")).unwrap(),
        "canary"
    );
}

// runtime.md "Delete": "Attempting to delete a container that is not stopped MUST have no
// effect on the container and MUST generate an error", and "Errors": "generating an error
// MUST leave the state of the environment as if the operation were never attempted". An id
// that is a path names no container: deleting it removes nothing, inside or outside `--root`.
#[test]
fn delete_of_invalid_id_errors_and_removes_nothing() {
    let Some(t) = Test::new() else { return };
    let nest = t.dir.join("nest");
    let root = nest.join("state");
    std::fs::create_dir_all(root.join("inner")).unwrap();
    std::fs::write(nest.join("canary"), "canary").unwrap();
    for bad in ["..", "../canary", "."] {
        let out = t.rt_root(&root, &["delete", bad]);
        assert_fails!(out, "delete {bad:?}");
        assert!(
            nest.join("canary").exists(),
            "`delete {bad}` removed a file outside the runtime's root"
        );
        assert!(
            root.join("inner").exists(),
            "`delete {bad}` emptied the root"
        );
    }
}

// runtime.md "Create": "process.args MUST NOT be applied until triggered by the start
// operation." (and lifecycle step 2: "the user-specified program MUST NOT be run at this time")
#[test]
fn create_does_not_run_the_program() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sh_config("echo ran > /ran; exec sleep 1000"));
    let id = t.id("norun");
    assert_ok!(t.create(&id, &b));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!b.join("rootfs/ran").exists(), "program ran at create");
    assert_ok!(t.start(&id));
    assert!(host::wait_until(std::time::Duration::from_secs(10), || {
        b.join("rootfs/ran").exists()
    }));
}

// runtime.md "Create": "All of the properties configured in config.json except for process
// MUST be applied." After create, before start, the container has its namespaces, hostname
// and mounts.
#[test]
fn create_applies_config_before_start() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sleeper();
    cfg["hostname"] = json!("applied-at-create");
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"destination": "/data", "type": "tmpfs", "source": "tmpfs"}));
    let b = t.bundle(&cfg);
    let id = t.id("applied");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    for ns in ["pid", "net", "ipc", "uts", "mnt"] {
        let own = if ns == "pid" { "pid_for_children" } else { ns };
        assert_ne!(
            ns_id(&pid.to_string(), own),
            ns_id("self", own),
            "{ns} namespace not created at create"
        );
    }
    let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        host::parse_mountinfo(&mi)
            .iter()
            .any(|m| m.mount_point == "/data" && m.fstype == "tmpfs"),
        "mount /data not made at create:\n{mi}"
    );
}

// runtime.md lifecycle step 2 / "Create": "Any updates to config.json after this step MUST NOT
// affect the container." / "Any changes made to the config.json file after this operation
// will not have an effect on the container."
#[test]
fn config_changes_after_create_have_no_effect() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("echo \"$WHICH\" > /which");
    cfg["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("WHICH=original"));
    let b = t.bundle(&cfg);
    let id = t.id("frozen");
    assert_ok!(t.create(&id, &b));
    let mut changed = sh_config("echo changed > /which");
    changed["process"]["env"]
        .as_array_mut()
        .unwrap()
        .push(json!("WHICH=changed"));
    t.write_config(&b, &changed);
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert_eq!(
        std::fs::read_to_string(b.join("rootfs/which"))
            .unwrap()
            .trim(),
        "original"
    );
}

// runtime.md "Start": "This operation MUST generate an error if it is not provided the
// container ID."
#[test]
fn start_requires_container_id() {
    let Some(t) = Test::new() else { return };
    assert_fails!(t.rt(&["start"]));
}

// runtime.md "Start": "Attempting to start a container that is not created MUST have no effect
// on the container and MUST generate an error." (a container that does not exist)
#[test]
fn start_of_missing_container_errors() {
    let Some(t) = Test::new() else { return };
    let id = t.id("nostart");
    assert_fails!(t.start(&id));
}

// runtime.md "Start": "Attempting to start a container that is not created MUST have no effect
// on the container and MUST generate an error." (a running container)
#[test]
fn start_of_running_container_errors() {
    let Some(t) = Test::new() else { return };
    let (id, pid) = t.start_running(&sh_config("echo x >> /count; exec sleep 1000"), "sleep");
    let b = t.state(&id).unwrap()["bundle"]
        .as_str()
        .unwrap()
        .to_string();
    assert_fails!(t.start(&id));
    std::thread::sleep(std::time::Duration::from_millis(200));
    let s = t.state(&id).unwrap();
    assert_eq!(s["status"], "running");
    assert_eq!(s["pid"].as_u64(), Some(pid as u64));
    assert_eq!(
        std::fs::read_to_string(Path::new(&b).join("rootfs/count")).unwrap(),
        "x\n",
        "the program ran twice"
    );
}

// runtime.md "Start": "Attempting to start a container that is not created MUST have no effect
// on the container and MUST generate an error." (a stopped container)
#[test]
fn start_of_stopped_container_errors() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sh_config("echo x >> /count"));
    let id = t.id("restart");
    assert_ok!(t.create(&id, &b));
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert_fails!(t.start(&id));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(t.status(&id).as_deref(), Some("stopped"));
    assert_eq!(
        std::fs::read_to_string(b.join("rootfs/count")).unwrap(),
        "x\n"
    );
}

// runtime.md "Start": "This operation MUST run the user-specified program as specified by
// process." (lifecycle step 8)
#[test]
fn start_runs_the_user_program() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&base_config(&["/bin/echo", "hello", "from", "start"]));
    let id = t.id("hello");
    assert_ok!(t.create(&id, &b));
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert_eq!(t.output(&id).0, "hello from start\n");
}

// runtime.md "Start": "This operation MUST generate an error if process was not set." The
// error may come at create (a runtime MAY validate early); the program never runs either way.
#[test]
fn start_without_process_errors() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sleeper();
    cfg.as_object_mut().unwrap().remove("process");
    let b = t.bundle(&cfg);
    let id = t.id("noproc");
    if t.create(&id, &b).ok() {
        assert_fails!(t.start(&id));
        assert_ne!(t.status(&id).as_deref(), Some("running"));
    }
}

// runtime.md "Kill": "This operation MUST generate an error if it is not provided the
// container ID."
#[test]
fn kill_requires_container_id() {
    let Some(t) = Test::new() else { return };
    assert_fails!(t.rt(&["kill"]));
}

// runtime.md "Kill": "This operation MUST send the specified signal to the container process."
#[test]
fn kill_sends_the_signal() {
    let Some(t) = Test::new() else { return };
    let script = "trap 'echo got-usr1 > /sig; exit 0' USR1; echo ready > /ready; \
                  while :; do sleep 0.05; done";
    let b = t.bundle(&sh_config(script));
    let id = t.id("kill");
    assert_ok!(t.create(&id, &b));
    assert_ok!(t.start(&id));
    assert!(host::wait_until(std::time::Duration::from_secs(10), || {
        b.join("rootfs/ready").exists()
    }));
    assert_ok!(t.kill(&id, libc::SIGUSR1));
    assert!(
        host::wait_until(std::time::Duration::from_secs(10), || b
            .join("rootfs/sig")
            .exists()),
        "SIGUSR1 never reached the container process"
    );
    assert!(t.wait_status(&id, "stopped"));
}

// runtime.md "Kill": signals go to a created container too ("neither created nor running"
// is the error case): SIGKILL stops it, and the program never runs.
#[test]
fn kill_of_created_container_stops_it() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sh_config("echo ran > /ran"));
    let id = t.id("killcreated");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    assert_ok!(t.kill(&id, libc::SIGKILL));
    assert!(host::wait_until(std::time::Duration::from_secs(10), || {
        !host::pid_alive(pid)
    }));
    assert!(t.wait_status(&id, "stopped"));
    assert!(!b.join("rootfs/ran").exists());
}

// runtime.md "Kill": "Attempting to send a signal to a container that is neither created nor
// running MUST have no effect on the container and MUST generate an error."
#[test]
fn kill_of_stopped_container_errors() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&base_config(&["/bin/true"]));
    let id = t.id("killstopped");
    assert_ok!(t.create(&id, &b));
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert_fails!(t.kill(&id, libc::SIGTERM));
    assert_eq!(t.status(&id).as_deref(), Some("stopped"));
}

// runtime.md "Kill": a container that does not exist is neither created nor running.
#[test]
fn kill_of_missing_container_errors() {
    let Some(t) = Test::new() else { return };
    let id = t.id("killmissing");
    assert_fails!(t.kill(&id, libc::SIGTERM));
}

// runtime.md "Delete": "This operation MUST generate an error if it is not provided the
// container ID."
#[test]
fn delete_requires_container_id() {
    let Some(t) = Test::new() else { return };
    assert_fails!(t.rt(&["delete"]));
}

// runtime.md "Delete": "Attempting to delete a container that is not stopped MUST have no
// effect on the container and MUST generate an error." (running)
#[test]
fn delete_of_running_container_errors() {
    let Some(t) = Test::new() else { return };
    let (id, pid) = t.start_running(&sleeper(), "sleep");
    assert_fails!(t.delete(&id));
    let s = t.state(&id).expect("container still exists");
    assert_eq!(s["status"], "running");
    assert!(host::pid_alive(pid));
}

// runtime.md "Delete": "Attempting to delete a container that is not stopped MUST have no
// effect on the container and MUST generate an error." (created: not stopped either)
#[test]
fn delete_of_created_container_errors() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sleeper());
    let id = t.id("delcreated");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    assert_fails!(t.delete(&id));
    let s = t.state(&id).expect("container still exists");
    assert_eq!(s["status"], "created");
    assert!(host::pid_alive(pid));
}

// runtime.md "Delete": "Deleting a container MUST delete the resources that were created
// during the create step." The state, the process and the cgroup it made are gone.
#[test]
fn delete_removes_the_containers_resources() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("sleep 0.2");
    let id = t.id("delete");
    cfg["linux"]["cgroupsPath"] = json!(format!("/{id}"));
    let b = t.bundle(&cfg);
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    let cgroups: Vec<_> = ["pids", "memory", "cpu"]
        .iter()
        .filter_map(|c| host::cgroup_dir(pid, c))
        .filter(|d| d.exists() && d.to_string_lossy().contains(&id))
        .collect();
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert_ok!(t.delete(&id));
    assert!(t.state(&id).is_none(), "state still answers after delete");
    assert!(!host::pid_alive(pid));
    for d in cgroups {
        assert!(!d.exists(), "cgroup {} left after delete", d.display());
    }
    assert_eq!(
        host::host_mounts_under(&b),
        Vec::<std::path::PathBuf>::new()
    );
}

// runtime.md "Delete": "Note that resources associated with the container, but not created by
// this container, MUST NOT be deleted." A joined network namespace and a bind-mounted host
// directory survive.
#[test]
fn delete_keeps_resources_it_did_not_create() {
    let Some(t) = Test::new() else { return };
    let holder = t.holder(&["--net"]);
    let netns = ns_id(&holder.to_string(), "net");
    let shared = t.dir.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("keep"), "keep").unwrap();
    let mut cfg = sh_config("echo written > /shared/new");
    cfg["linux"]["namespaces"] = json!([
        {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"},
        {"type": "network", "path": format!("/proc/{holder}/ns/net")}
    ]);
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/shared", "type": "none", "source": shared, "options": ["rbind"]
    }));
    let b = t.bundle(&cfg);
    let id = t.id("keep");
    assert_ok!(t.create(&id, &b));
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert_ok!(t.delete(&id));
    assert!(host::pid_alive(holder), "the namespace holder was killed");
    assert_eq!(ns_id(&holder.to_string(), "net"), netns);
    assert_eq!(
        std::fs::read_to_string(shared.join("keep")).unwrap(),
        "keep"
    );
    assert_eq!(
        std::fs::read_to_string(shared.join("new")).unwrap(),
        "written\n"
    );
}

// runtime.md "Delete": a pre-existing cgroup given as cgroupsPath is associated with the
// container but was not created by it: "MUST NOT be deleted".
#[test]
fn delete_keeps_a_cgroup_it_did_not_create() {
    struct Rm(std::path::PathBuf);
    impl Drop for Rm {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    // Declared first, so it is removed after the check's container is deleted.
    let id = oci_conformance::test::unique("precg");
    let dir = Path::new("/sys/fs/cgroup/pids").join(&id);
    let _rm = Rm(dir.clone());
    let Some(t) = Test::new() else { return };
    t.track(&id);
    if !Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists() {
        oci_conformance::skip(t.name(), "host", "no cgroup v1 pids hierarchy");
        return;
    }
    std::fs::create_dir(&dir).unwrap();
    let mut cfg = base_config(&["/bin/true"]);
    cfg["linux"]["cgroupsPath"] = json!(format!("/{id}"));
    let b = t.bundle(&cfg);
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    assert_eq!(
        host::cgroup_dir(pid, "pids").as_deref(),
        Some(dir.as_path()),
        "container not placed in the given cgroup"
    );
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert_ok!(t.delete(&id));
    assert!(
        dir.exists(),
        "delete removed a cgroup the container did not create"
    );
}

// runtime.md "Errors": "generating an error MUST leave the state of the environment as if the
// operation were never attempted" / "Create": "If the runtime cannot apply a property as
// specified in the configuration, it MUST generate an error and a new container MUST NOT be
// created." A mount whose source is missing: no container, no process, no cgroup, no mount.
#[test]
fn failed_create_leaves_nothing_behind() {
    let Some(t) = Test::new() else { return };
    let id = t.id("fail");
    let mut cfg = sleeper();
    cfg["linux"]["cgroupsPath"] = json!(format!("/{id}"));
    cfg["mounts"].as_array_mut().unwrap().push(json!({
        "destination": "/missing", "type": "none",
        "source": t.dir.join("does-not-exist"), "options": ["rbind"]
    }));
    let b = t.bundle(&cfg);
    assert_fails!(t.create(&id, &b));
    assert!(
        t.state(&id).is_none(),
        "container exists after a failed create"
    );
    assert_eq!(
        host::host_mounts_under(&b),
        Vec::<std::path::PathBuf>::new()
    );
    for m in host::cgroup_mounts() {
        let d = m.join(&id);
        assert!(
            !d.exists(),
            "cgroup {} left after a failed create",
            d.display()
        );
    }
    // No process of the container: nothing runs with the bundle's rootfs as its root.
    let rootfs = std::fs::canonicalize(b.join("rootfs")).unwrap();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(r) = std::fs::read_link(e.path().join("root")) {
            assert_ne!(r, rootfs, "process {:?} left behind", e.file_name());
        }
    }
}

// runtime.md "Scope of a Container": "The entity using a runtime to create a container MUST be
// able to use the operations defined in this specification against that same container." The
// whole lifecycle with one id: create, state, start, state, kill, state, delete.
#[test]
fn full_lifecycle_on_one_id() {
    let Some(t) = Test::new() else { return };
    let b = t.bundle(&sleeper());
    let id = t.id("life");
    assert_ok!(t.create(&id, &b));
    assert_eq!(t.status(&id).as_deref(), Some("created"));
    assert_ok!(t.start(&id));
    assert_eq!(t.status(&id).as_deref(), Some("running"));
    assert_ok!(t.kill(&id, libc::SIGKILL));
    assert!(t.wait_status(&id, "stopped"));
    assert_ok!(t.delete(&id));
    assert!(t.state(&id).is_none());
}
