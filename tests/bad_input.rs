//! Bad input (../shared/SECURITY.md "Bad input"): every case gets one clear error line that
//! names the field or path (and the OS error where there is one), exit code 1, and leaves
//! nothing behind: no state dir, cgroup, mount or process. Config cases go through both
//! `create` and `run`. A few inputs are accepted on purpose (unknown fields, unknown
//! capabilities, relative mount destinations), as the spec and runc do. Needs root.

mod common;

use common::{assert_error, stderr, unique_id, Env};
use serde_json::{json, Value};
use std::path::Path;

/// Config edit as a bundle edit.
fn cfg(f: impl Fn(&mut Value)) -> impl Fn(&Env) {
    move |env: &Env| env.edit(&f)
}

fn raw(text: &'static str) -> impl Fn(&Env) {
    move |env: &Env| env.write_config(text)
}

/// Applies `edit` to a fresh bundle, then `create` and `run` must both fail with `wants` in
/// their one error line, and leave nothing behind.
fn refused(name: &str, edit: impl Fn(&Env), wants: &[&str]) {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    edit(&env);
    let b = env.bundle();
    for verb in ["create", "run"] {
        // Not named after the case: the id is in the error line, the wanted words must not be.
        let id = unique_id("bad");
        let out = env.ruse(&[verb, "--bundle", b.to_str().unwrap(), &id]);
        assert_error(&format!("{name} ({verb})"), &out, wants);
        env.assert_clean(&id);
    }
}

macro_rules! refused {
    ($name:ident, $edit:expr, [$($want:expr),+ $(,)?]) => {
        #[test]
        fn $name() {
            refused(stringify!($name), $edit, &[$($want),+]);
        }
    };
}

fn push_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().unwrap().push(m);
}

fn drop_ns(c: &mut Value, t: &str) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .retain(|n| n["type"] != t);
}

fn add_ns(c: &mut Value, t: &str) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "type": t }));
}

// ---- config.json itself ----

refused!(
    missing_config_json,
    |env: &Env| std::fs::remove_file(env.bundle().join("config.json")).unwrap(),
    ["config.json", "No such file or directory"]
);
refused!(
    invalid_json_reports_file_and_position,
    raw("{\n  \"ociVersion\": \"1.0.2\",\n  \"process\": {,}\n}"),
    ["config.json", "line 3 column 15"]
);
refused!(json_null, raw("null"), ["config.json", "JSON object"]);
refused!(json_array, raw("[1,2]"), ["config.json", "JSON object"]);
refused!(json_empty_object, raw("{}"), ["root"]);
refused!(
    json_truncated,
    raw("{\"ociVersion\": \"1.0.2\", \"process\""),
    ["config.json", "line 1"]
);

// ---- wrong types ----

refused!(
    args_is_a_string,
    cfg(|c| c["process"]["args"] = json!("sh")),
    ["process.args", "invalid type"]
);
refused!(
    uid_negative,
    cfg(|c| c["process"]["user"]["uid"] = json!(-1)),
    ["process.user.uid", "-1"]
);
refused!(
    uid_is_a_string,
    cfg(|c| c["process"]["user"]["uid"] = json!("0")),
    ["process.user.uid", "invalid type"]
);
refused!(
    gid_too_big,
    cfg(|c| c["process"]["user"]["gid"] = json!(4294967296u64)),
    ["process.user.gid"]
);
refused!(
    namespaces_is_an_object,
    cfg(|c| c["linux"]["namespaces"] = json!({"type": "pid"})),
    ["linux.namespaces", "invalid type"]
);
refused!(
    oci_version_two,
    cfg(|c| c["ociVersion"] = json!("2.0.0")),
    ["ociVersion", "2.0.0"]
);

// ---- process ----

refused!(
    args_empty,
    cfg(|c| c["process"]["args"] = json!([])),
    ["process.args", "empty"]
);
refused!(
    args_empty_string,
    cfg(|c| c["process"]["args"] = json!([""])),
    ["process.args", "empty"]
);
refused!(
    args_with_nul,
    cfg(|c| c["process"]["args"] = json!(["true", "a\u{0}b"])),
    ["process.args", "NUL"]
);
refused!(
    process_missing,
    cfg(|c| {
        c.as_object_mut().unwrap().remove("process");
    }),
    ["process", "missing"]
);
refused!(
    cwd_empty,
    cfg(|c| c["process"]["cwd"] = json!("")),
    ["process.cwd", "absolute"]
);
refused!(
    cwd_relative,
    cfg(|c| c["process"]["cwd"] = json!("tmp")),
    ["process.cwd", "\"tmp\"", "absolute"]
);
refused!(
    cwd_with_nul,
    cfg(|c| c["process"]["cwd"] = json!("/tmp/a\u{0}b")),
    ["process.cwd", "NUL"]
);
refused!(
    env_without_equals,
    cfg(|c| c["process"]["env"] = json!(["PATH=/bin", "JUSTAWORD"])),
    ["process.env", "JUSTAWORD"]
);
refused!(
    unknown_rlimit,
    cfg(|c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}])),
    ["process.rlimits[0].type", "RLIMIT_BOGUS"]
);
refused!(
    rlimit_soft_above_hard,
    cfg(|c| c["process"]["rlimits"] = json!([{"type": "RLIMIT_NOFILE", "soft": 100, "hard": 10}])),
    [
        "process.rlimits",
        "RLIMIT_NOFILE",
        "soft limit 100 exceeds hard limit 10"
    ]
);
refused!(
    rlimit_duplicated,
    cfg(|c| {
        c["process"]["rlimits"] = json!([
            {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 10},
            {"type": "RLIMIT_NOFILE", "soft": 20, "hard": 20}
        ])
    }),
    ["process.rlimits", "RLIMIT_NOFILE", "duplicated"]
);
refused!(
    oom_score_adj_above_1000,
    cfg(|c| c["process"]["oomScoreAdj"] = json!(1001)),
    ["process.oomScoreAdj", "1001", "[-1000, 1000]"]
);
refused!(
    oom_score_adj_below_minus_1000,
    cfg(|c| c["process"]["oomScoreAdj"] = json!(-1001)),
    ["process.oomScoreAdj", "-1001"]
);
refused!(
    selinux_label_without_selinux,
    cfg(|c| c["process"]["selinuxLabel"] = json!("system_u:system_r:container_t:s0")),
    ["not supported", "process.selinuxLabel"]
);
refused!(
    apparmor_profile_without_apparmor,
    cfg(|c| c["process"]["apparmorProfile"] = json!("docker-default")),
    ["not supported", "process.apparmorProfile"]
);
refused!(
    mount_label_without_selinux,
    cfg(|c| c["linux"]["mountLabel"] = json!("system_u:object_r:container_file_t:s0")),
    ["not supported", "linux.mountLabel"]
);
refused!(
    hook_path_relative,
    cfg(|c| c["hooks"] = json!({"prestart": [{"path": "bin/true"}]})),
    ["hooks.prestart[0].path", "absolute"]
);
refused!(
    failing_create_runtime_hook,
    cfg(|c| c["hooks"] =
        json!({"createRuntime": [{"path": "/bin/sh", "args": ["sh", "-c", "exit 3"]}]})),
    ["createRuntime hook #0", "/bin/sh", "exit status: 3"]
);

// ---- root ----

refused!(
    root_missing,
    cfg(|c| {
        c.as_object_mut().unwrap().remove("root");
    }),
    ["root", "missing"]
);
refused!(
    rootfs_nonexistent,
    cfg(|c| c["root"]["path"] = json!("nope")),
    ["root.path", "nope", "No such file or directory"]
);
refused!(
    rootfs_is_a_symlink,
    |env: &Env| {
        std::os::unix::fs::symlink("rootfs", env.bundle().join("link")).unwrap();
        env.edit(|c| c["root"]["path"] = json!("link"));
    },
    ["root.path", "link", "symlink"]
);
refused!(
    rootfs_is_a_file,
    |env: &Env| {
        std::fs::write(env.bundle().join("file"), "").unwrap();
        env.edit(|c| c["root"]["path"] = json!("file"));
    },
    ["root.path", "file", "not a directory"]
);

// ---- mounts ----

refused!(
    mount_destination_with_nul,
    cfg(|c| push_mount(
        c,
        json!({"destination": "/tmp/a\u{0}b", "type": "tmpfs", "source": "tmpfs"})
    )),
    ["mounts[7]", "NUL"]
);
refused!(
    mount_source_with_nul,
    cfg(|c| push_mount(
        c,
        json!({"destination": "/mnt", "source": "/tmp\u{0}x", "options": ["bind"]})
    )),
    ["mounts[7]", "NUL"]
);
refused!(
    mount_destination_over_path_max,
    cfg(|c| push_mount(
        c,
        json!({"destination": format!("/{}", "d/".repeat(2100)), "type": "tmpfs"})
    )),
    ["mounts[7].destination", "PATH_MAX"]
);
refused!(
    mount_destination_component_over_name_max,
    cfg(|c| push_mount(
        c,
        json!({"destination": format!("/{}", "n".repeat(300)), "type": "tmpfs"})
    )),
    ["mount tmpfs on /nnnn", "File name too long"]
);
refused!(
    mount_destination_empty,
    cfg(|c| push_mount(c, json!({"destination": "", "type": "tmpfs"}))),
    ["mounts[7].destination", "empty"]
);
refused!(
    bind_mount_with_data_options,
    cfg(|c| push_mount(
        c,
        json!({"destination": "/mnt", "source": "/tmp", "options": ["bind", "size=1m"]})
    )),
    ["mounts[7]", "\"/tmp\"", "data options", "size=1m"]
);
refused!(
    bind_mount_without_source,
    cfg(|c| push_mount(c, json!({"destination": "/mnt", "options": ["rbind"]}))),
    ["mounts[7].source"]
);
refused!(
    bind_mount_source_missing,
    cfg(|c| push_mount(
        c,
        json!({"destination": "/mnt", "source": "/nonexistent-ruse-src", "options": ["bind"]})
    )),
    [
        "bind /nonexistent-ruse-src on /mnt",
        "No such file or directory"
    ]
);
refused!(
    mount_type_missing,
    cfg(|c| push_mount(c, json!({"destination": "/mnt", "source": "x"}))),
    ["mounts[7].type", "missing"]
);
refused!(
    mount_type_unknown,
    cfg(|c| push_mount(
        c,
        json!({"destination": "/mnt", "type": "nosuchfs", "source": "x"})
    )),
    ["mount nosuchfs on /mnt", "nosuchfs", "No such device"]
);
refused!(
    idmap_on_a_non_bind_mount,
    cfg(|c| push_mount(
        c,
        json!({"destination": "/mnt", "type": "tmpfs", "options": ["idmap"]})
    )),
    ["mounts[7]", "idmap", "bind"]
);
refused!(
    mount_id_mappings_on_a_non_bind_mount,
    cfg(|c| push_mount(
        c,
        json!({"destination": "/mnt", "type": "tmpfs",
        "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}],
        "gidMappings": [{"containerID": 0, "hostID": 1000, "size": 1}]})
    )),
    ["mounts[7]", "uidMappings", "bind"]
);
refused!(
    non_proc_mount_on_proc,
    cfg(|c| push_mount(c, json!({"destination": "/proc", "type": "tmpfs"}))),
    ["mounts[7]", "/proc", "tmpfs"]
);
refused!(
    bind_inside_proc,
    cfg(|c| push_mount(
        c,
        json!({"destination": "/proc/sys/kernel", "source": "/tmp", "options": ["bind"]})
    )),
    ["mounts[7]", "/proc/sys/kernel", "inside /proc"]
);

// ---- namespaces and id maps ----

refused!(
    user_namespace_without_mappings,
    cfg(|c| add_ns(c, "user")),
    ["linux.namespaces", "uidMappings"]
);
refused!(
    mappings_without_user_namespace,
    cfg(|c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 10}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 10}]);
    }),
    ["linux.uidMappings", "user namespace"]
);
refused!(
    overlapping_maps,
    cfg(|c| {
        add_ns(c, "user");
        c["linux"]["uidMappings"] = json!([
            {"containerID": 0, "hostID": 100000, "size": 10},
            {"containerID": 5, "hostID": 200000, "size": 10}
        ]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 10}]);
    }),
    ["linux.uidMappings[1]", "overlaps", "linux.uidMappings[0]"]
);
refused!(
    overlapping_host_ranges,
    cfg(|c| {
        add_ns(c, "user");
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 10}]);
        c["linux"]["gidMappings"] = json!([
            {"containerID": 0, "hostID": 100000, "size": 10},
            {"containerID": 100, "hostID": 100009, "size": 10}
        ]);
    }),
    ["linux.gidMappings[1]", "hostID", "overlaps"]
);
refused!(
    zero_size_map,
    cfg(|c| {
        add_ns(c, "user");
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 0}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 10}]);
    }),
    ["linux.uidMappings[0]", "size"]
);
refused!(
    empty_uid_mappings,
    cfg(|c| {
        add_ns(c, "user");
        c["linux"]["uidMappings"] = json!([]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    }),
    ["linux.uidMappings", "empty", "at least one range"]
);
refused!(
    empty_gid_mappings,
    cfg(|c| {
        add_ns(c, "user");
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([]);
    }),
    ["linux.gidMappings", "empty", "at least one range"]
);
refused!(
    no_mount_namespace,
    cfg(|c| drop_ns(c, "mount")),
    ["linux.namespaces", "needs a mount namespace"]
);
// Refused before the path is opened (the path does not exist, so a late failure would name
// ENOENT instead): a new user namespace owns no namespace joined by path.
refused!(
    mount_namespace_path_with_a_new_user_namespace,
    cfg(|c| {
        drop_ns(c, "mount");
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .push(json!({"type": "mount", "path": "/nonexistent/ns/mnt"}));
        add_ns(c, "user");
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        c["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    }),
    [
        "linux.namespaces mount path /nonexistent/ns/mnt",
        "new user namespace"
    ]
);
refused!(
    unknown_namespace_type,
    cfg(|c| add_ns(c, "bogus")),
    ["linux.namespaces[6].type", "bogus"]
);
refused!(
    duplicated_namespace_type,
    cfg(|c| add_ns(c, "pid")),
    ["linux.namespaces", "pid", "twice"]
);
refused!(
    namespace_path_missing,
    cfg(|c| c["linux"]["namespaces"][1] = json!({"type": "network", "path": "/nonexistent/ns/net"})),
    [
        "linux.namespaces net path /nonexistent/ns/net",
        "No such file or directory"
    ]
);
refused!(
    hostname_without_uts_namespace,
    cfg(|c| drop_ns(c, "uts")),
    ["hostname", "uts namespace"]
);
refused!(
    sysctl_net_without_network_namespace,
    cfg(|c| {
        drop_ns(c, "network");
        c["linux"]["sysctl"] = json!({"net.ipv4.ip_forward": "1"});
    }),
    ["linux.sysctl", "net.ipv4.ip_forward", "net namespace"]
);
refused!(
    sysctl_ipc_without_ipc_namespace,
    cfg(|c| {
        drop_ns(c, "ipc");
        c["linux"]["sysctl"] = json!({"kernel.shmmax": "1000"});
    }),
    ["linux.sysctl", "kernel.shmmax", "ipc namespace"]
);
refused!(
    sysctl_not_namespaced,
    cfg(|c| c["linux"]["sysctl"] = json!({"kernel.core_pattern": "|/evil"})),
    ["linux.sysctl", "kernel.core_pattern", "not namespaced"]
);
refused!(
    sysctl_unknown_key,
    cfg(|c| c["linux"]["sysctl"] = json!({"net.ipv4.no_such_knob": "1"})),
    [
        "linux.sysctl",
        "net.ipv4.no_such_knob",
        "No such file or directory"
    ]
);
refused!(
    time_offsets_without_time_namespace,
    cfg(|c| c["linux"]["timeOffsets"] = json!({"monotonic": {"secs": 10}})),
    ["linux.timeOffsets", "time namespace"]
);
refused!(
    rootfs_propagation_unknown,
    cfg(|c| c["linux"]["rootfsPropagation"] = json!("sideways")),
    ["linux.rootfsPropagation", "sideways"]
);
refused!(
    device_path_relative,
    cfg(|c| c["linux"]["devices"] = json!([{"path": "dev/x", "type": "c", "major": 1, "minor": 3}])),
    ["linux.devices", "dev/x", "absolute"]
);
refused!(
    cgroups_path_at_a_hierarchy_root,
    cfg(|c| c["linux"]["cgroupsPath"] = json!("/")),
    ["linux.cgroupsPath", "hierarchy root"]
);

// ---- the program ----

refused!(
    executable_not_found,
    cfg(|c| c["process"]["args"] = json!(["no-such-program"])),
    ["exec: \"no-such-program\": executable file not found in $PATH"]
);
refused!(
    executable_path_missing,
    cfg(|c| c["process"]["args"] = json!(["/no/such/program"])),
    ["exec: \"/no/such/program\": stat /no/such/program: no such file or directory"]
);
refused!(
    executable_is_a_directory,
    cfg(|c| c["process"]["args"] = json!(["/etc"])),
    ["exec: \"/etc\": permission denied"]
);
refused!(
    executable_without_x_bit,
    |env: &Env| {
        std::fs::write(env.rootfs().join("noexec"), "#!/bin/sh\n").unwrap();
        env.edit(|c| c["process"]["args"] = json!(["/noexec"]));
    },
    ["exec: \"/noexec\": permission denied"]
);

/// A `#!` interpreter that does not exist is only found by execve itself, at `start`: the
/// error is runc's one line, and `run` leaves nothing behind.
#[test]
fn bad_shebang_interpreter() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["/bad.sh"]);
    let script = env.rootfs().join("bad.sh");
    std::fs::write(&script, "#!/no/such/interpreter\necho hi\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let id = unique_id("shebang");
    let out = env.run(&id);
    assert_error("run", &out, &["exec /bad.sh: no such file or directory"]);
    env.assert_clean(&id);
    // Detached: create succeeds, start fails with the same line, the container is stopped.
    let id = unique_id("shebang2");
    env.create(&id);
    let out = env.ruse(&["start", &id]);
    assert_error("start", &out, &["exec /bad.sh: no such file or directory"]);
    env.wait_status(&id, "stopped");
    assert!(env.ruse(&["delete", &id]).status.success());
    env.assert_clean(&id);
}

// ---- accepted on purpose ----

/// The spec: "Implementations that are reading/processing this configuration file MUST NOT
/// generate an error if they encounter an unknown property."
#[test]
fn unknown_fields_are_ignored() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sh", "-c", "echo ran"]);
    env.edit(|c| {
        c["futureTopLevel"] = json!({"a": [1, 2]});
        c["process"]["futureProcessField"] = json!(true);
        c["process"]["user"]["futureUserField"] = json!("x");
        c["root"]["futureRoot"] = json!(1);
        c["linux"]["futureLinux"] = json!(null);
        c["linux"]["namespaces"][0]["futureNs"] = json!(2);
        c["mounts"][0]["futureMount"] = json!("y");
    });
    let id = unique_id("unknown");
    let out = env.run(&id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(common::stdout(&out).trim(), "ran");
    env.assert_clean(&id);
}

/// runc warns and ignores capability names it does not know (configs written for newer
/// kernels keep working); ruse does the same, once, and runs.
#[test]
fn unknown_capability_warns_and_runs() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sh", "-c", "grep CapBnd /proc/self/status"]);
    env.edit(|c| {
        let caps = &mut c["process"]["capabilities"];
        for set in ["bounding", "effective", "permitted"] {
            caps[set].as_array_mut().unwrap().push(json!("CAP_BOGUS"));
        }
    });
    let id = unique_id("cap");
    let out = env.run(&id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let err = stderr(&out);
    assert_eq!(
        err.matches("CAP_BOGUS").count(),
        3,
        "one warning per set: {err}"
    );
    assert!(
        err.lines().all(|l| l.starts_with("ruse: warning: ")),
        "{err}"
    );
    // CAP_AUDIT_WRITE (29), CAP_KILL (5), CAP_NET_BIND_SERVICE (10).
    assert_eq!(
        common::stdout(&out).trim(),
        format!("CapBnd:\t{:016x}", (1u64 << 29) | (1 << 5) | (1 << 10))
    );
    env.assert_clean(&id);
}

/// runc warns about a relative mount destination and treats it as under `/`; so does ruse,
/// with one warning (not one from the runtime and another from init).
#[test]
fn relative_mount_destination_warns_and_is_under_root() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sh", "-c", "grep ' /reltmp ' /proc/self/mountinfo | wc -l"]);
    env.edit(|c| {
        push_mount(
            c,
            json!({"destination": "reltmp", "type": "tmpfs", "source": "tmpfs"}),
        )
    });
    let id = unique_id("reldest");
    let out = env.run(&id);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(common::stdout(&out).trim(), "1");
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "one warning: {err}");
    assert!(
        err.starts_with("ruse: warning: mounts[7].destination \"reltmp\" is relative"),
        "{err}"
    );
    env.assert_clean(&id);
}

// ---- container ids ----

#[test]
fn invalid_ids_are_refused_and_make_nothing() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    let long = "x".repeat(1024);
    let b = env.bundle();
    for id in ["../x", "a/b", "a b", "", ".", "..", "é", long.as_str()] {
        for verb in ["create", "run"] {
            let out = env.ruse(&[verb, "--bundle", b.to_str().unwrap(), id]);
            assert_error(&format!("{verb} {id:?}"), &out, &["invalid container id"]);
            let line = stderr(&out);
            assert!(
                line.len() < 400,
                "the id is shortened in the message: {line}"
            );
        }
        for verb in ["start", "state", "kill", "delete"] {
            let out = env.ruse(&[verb, id]);
            assert_error(&format!("{verb} {id:?}"), &out, &["invalid container id"]);
        }
        let out = env.ruse(&["delete", "--force", id]);
        assert_error(
            &format!("delete -f {id:?}"),
            &out,
            &["invalid container id"],
        );
    }
    let made: Vec<_> = std::fs::read_dir(&env.root)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(made.is_empty(), "{made:?}");
    assert!(!env.dir.join("x").exists(), "../x escaped the state root");
    env.assert_clean("");
}

// ---- command-line input ----

#[test]
fn unknown_signals_leave_the_container_running() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "30"]);
    let id = unique_id("sig");
    env.create(&id);
    assert!(env.ruse(&["start", &id]).status.success());
    for sig in ["FOO", "SIGFOO", "999", "0", "65", "RTMIN+99", ""] {
        let out = env.ruse(&["kill", &id, sig]);
        assert_error(
            &format!("kill {sig:?}"),
            &out,
            &["unknown signal", &format!("{sig:?}")],
        );
    }
    assert_eq!(env.state(&id)["status"], "running");
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}

#[test]
fn console_socket_path_over_107_bytes() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    env.edit(|c| c["process"]["terminal"] = json!(true));
    let long = format!("/tmp/{}", "s".repeat(120));
    let b = env.bundle();
    for verb in ["create", "run"] {
        let id = unique_id("sock");
        let out = env.ruse(&[
            verb,
            "--bundle",
            b.to_str().unwrap(),
            "--console-socket",
            &long,
            &id,
        ]);
        assert_error(verb, &out, &["--console-socket", "107 bytes"]);
        env.assert_clean(&id);
    }
    let id = unique_id("nosock");
    let out = env.ruse(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--console-socket",
        "/nonexistent.sock",
        &id,
    ]);
    assert_error(
        "create",
        &out,
        &[
            "--console-socket /nonexistent.sock",
            "No such file or directory",
        ],
    );
    env.assert_clean(&id);
}

#[test]
fn preserve_fds_beyond_the_open_ones() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    let id = unique_id("pfd");
    let b = env.bundle();
    let out = env.ruse(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--preserve-fds",
        "40",
        &id,
    ]);
    assert_error("create", &out, &["--preserve-fds 40", "not open"]);
    env.assert_clean(&id);
}

#[test]
fn pid_file_that_cannot_be_written_undoes_the_create() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    let b = env.bundle();
    let long = env.dir.join(format!("{}/pid", "p".repeat(300)));
    for (what, pid_file) in [
        ("No such file or directory", env.dir.join("no/such/dir/pid")),
        ("File name too long", long),
    ] {
        let id = unique_id("pidfile");
        let out = env.ruse(&[
            "create",
            "--bundle",
            b.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ]);
        assert_error(what, &out, &["--pid-file", what]);
        env.assert_clean(&id);
    }
}

#[test]
fn verbs_on_a_missing_id() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    let id = unique_id("missing");
    for verb in ["start", "state", "kill", "delete"] {
        let out = env.ruse(&[verb, &id]);
        assert_error(verb, &out, &[&format!("container \"{id}\" does not exist")]);
    }
    let out = env.ruse(&["kill", &id, "KILL"]);
    assert_error("kill KILL", &out, &["does not exist"]);
    let out = env.ruse(&["delete", "--force", &id]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    env.assert_clean(&id);
}

#[test]
fn start_twice() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "30"]);
    let id = unique_id("twice");
    env.create(&id);
    assert!(env.ruse(&["start", &id]).status.success());
    let out = env.ruse(&["start", &id]);
    assert_error(
        "second start",
        &out,
        &["cannot start a container that is running"],
    );
    assert_eq!(env.state(&id)["status"], "running");
    assert!(env.ruse(&["kill", &id, "KILL"]).status.success());
    env.wait_status(&id, "stopped");
    let out = env.ruse(&["start", &id]);
    assert_error(
        "start stopped",
        &out,
        &["cannot start a container that is stopped"],
    );
    assert!(env.ruse(&["delete", &id]).status.success());
    env.assert_clean(&id);
}

#[test]
fn delete_of_a_running_container_fails_and_keeps_it_running() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "30"]);
    let id = unique_id("delrun");
    env.create(&id);
    let created_pid = env.state(&id)["pid"].as_i64().unwrap();
    let out = env.ruse(&["delete", &id]);
    assert_error(
        "delete created",
        &out,
        &["cannot delete a container that is created"],
    );
    assert!(env.ruse(&["start", &id]).status.success());
    let out = env.ruse(&["delete", &id]);
    assert_error(
        "delete running",
        &out,
        &["cannot delete a container that is running"],
    );
    let st = env.state(&id);
    assert_eq!(st["status"], "running");
    assert_eq!(st["pid"].as_i64(), Some(created_pid));
    assert!(Path::new(&format!("/proc/{created_pid}")).exists());
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    assert!(!Path::new(&format!("/proc/{created_pid}/exe")).exists());
    env.assert_clean(&id);
}

/// Everything in a state dir, file by file, for byte-for-byte comparison.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(e.path()).unwrap_or_default())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn second_create_with_an_existing_id() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["sleep", "30"]);
    let id = unique_id("dup");
    let b = env.bundle();
    let pid_file = env.dir.join("first.pid");
    let out = env.ruse(&[
        "create",
        "--bundle",
        b.to_str().unwrap(),
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let before = snapshot(&env.root.join(&id));
    let pid_before = std::fs::read(&pid_file).unwrap();
    let pid = env.state(&id)["pid"].as_i64().unwrap();
    for verb in ["create", "run"] {
        let out = env.ruse(&[
            verb,
            "--bundle",
            b.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ]);
        assert_error(verb, &out, &["container with id exists", &id]);
        assert_eq!(
            snapshot(&env.root.join(&id)),
            before,
            "{verb} touched the state dir"
        );
        assert_eq!(std::fs::read(&pid_file).unwrap(), pid_before);
        assert_eq!(env.state(&id)["status"], "created");
    }
    // The first container is intact: it starts and runs.
    assert!(env.ruse(&["start", &id]).status.success());
    assert_eq!(env.state(&id)["status"], "running");
    assert_eq!(env.state(&id)["pid"].as_i64(), Some(pid));
    assert!(env.ruse(&["delete", "--force", &id]).status.success());
    env.assert_clean(&id);
}
