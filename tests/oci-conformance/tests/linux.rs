//! config-linux.md and runtime-linux.md: namespaces (new, inherited, joined by path, errors),
//! user namespace mappings, devices and default devices, /dev symlinks, sysctl, maskedPaths,
//! readonlyPaths, rootfsPropagation, timeOffsets, personality, cgroupsPath and a few
//! resources, seccomp — from inside the container and from the host (`/proc/<pid>/ns`,
//! `/proc/<pid>/status`, `/proc/<pid>/mountinfo`, the cgroup filesystems).

use oci_conformance::bundle::privileged;
use oci_conformance::host::{self, mount_at, ns_id, parse_mountinfo, status_field};
use oci_conformance::{assert_fails, assert_ok, base_config, require, rt, sh_config, Test};
use serde_json::{json, Value};
use std::time::Duration;

oci_conformance::init!();

fn sleeper() -> Value {
    base_config(&["/bin/sleep", "1000"])
}

/// `linux.namespaces` of `cfg` set to `types` (new namespaces).
fn namespaces(cfg: &mut Value, types: &[&str]) {
    cfg["linux"]["namespaces"] = types.iter().map(|t| json!({"type": t})).collect();
}

fn userns(cfg: &mut Value) {
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    cfg["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    cfg["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
}

/// Creates `cfg` and returns (id, host pid) of the created (not started) container.
fn created(t: &Test, cfg: &Value) -> (String, u32) {
    let b = t.bundle(cfg);
    let id = t.id("ns");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    (id, pid)
}

/// Spec type → /proc/<pid>/ns name.
fn proc_ns(ty: &str) -> &str {
    match ty {
        "network" => "net",
        "mount" => "mnt",
        other => other,
    }
}

/// config-linux.md "Namespaces": "If path is not specified, the runtime MUST create a new
/// container namespace of type type." The container's namespace differs from the runtime's.
fn new_namespace(ty: &str, cfg: Value) {
    let Some(t) = Test::new() else { return };
    let (_id, pid) = created(&t, &cfg);
    let n = proc_ns(ty);
    assert_ne!(
        ns_id(&pid.to_string(), n),
        ns_id("self", n),
        "{ty}: the container shares the runtime's namespace"
    );
}

// config-linux.md "Namespaces": "If path is not specified, the runtime MUST create a new
// container namespace of type type." (pid)
#[test]
fn namespace_new_pid() {
    new_namespace("pid", sleeper());
}

// ... (network)
#[test]
fn namespace_new_network() {
    new_namespace("network", sleeper());
}

// ... (ipc)
#[test]
fn namespace_new_ipc() {
    new_namespace("ipc", sleeper());
}

// ... (uts)
#[test]
fn namespace_new_uts() {
    new_namespace("uts", sleeper());
}

// ... (mount)
#[test]
fn namespace_new_mount() {
    new_namespace("mount", sleeper());
}

// ... (cgroup)
#[test]
fn namespace_new_cgroup() {
    let mut cfg = sleeper();
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "cgroup"}));
    new_namespace("cgroup", cfg);
}

// ... (user)
#[test]
fn namespace_new_user() {
    let mut cfg = sleeper();
    userns(&mut cfg);
    new_namespace("user", cfg);
}

// ... (time; config-linux.md lists it among the types that SHOULD be supported)
#[test]
fn namespace_new_time() {
    let mut cfg = sleeper();
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    let Some(t) = Test::new() else { return };
    require!(
        t,
        rt().has_namespace("time"),
        "time namespaces not announced"
    );
    let (_id, pid) = created(&t, &cfg);
    // A new time namespace applies to the children of its creator: init is one of them.
    assert_ne!(ns_id(&pid.to_string(), "time"), ns_id("self", "time"));
}

// config-linux.md "Namespaces": what the namespaces look like from inside — pid 1, only a
// loopback interface, the configured hostname, a cgroup root of "/".
#[test]
fn namespaces_seen_from_inside() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with(
        "echo pid=$$; cut -d: -f1 /proc/net/dev | tail -n +3 | tr -d ' '; hostname; \
         cat /proc/self/cgroup",
        |c| {
            c["hostname"] = json!("inside");
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "cgroup"}));
        },
    );
    assert_ok!(out);
    let mut lines = out.stdout.lines();
    assert_eq!(lines.next(), Some("pid=1"), "{out:?}");
    assert_eq!(lines.next(), Some("lo"), "{out:?}");
    assert_eq!(lines.next(), Some("inside"), "{out:?}");
    for l in lines {
        assert!(
            l.ends_with(":/"),
            "cgroup namespace not rooted at the container: {l}"
        );
    }
}

// config-linux.md "Namespaces": "If a namespace type is not specified in the namespaces array,
// the container MUST inherit the runtime namespace of that type."
#[test]
fn namespace_not_listed_is_inherited() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sleeper();
    namespaces(&mut cfg, &["pid", "mount"]);
    // Without its own network namespace the container cannot mount a fresh sysfs.
    cfg["mounts"]
        .as_array_mut()
        .unwrap()
        .retain(|m| m["destination"] != "/sys");
    let (_id, pid) = created(&t, &cfg);
    for n in ["net", "ipc", "uts", "cgroup", "user"] {
        assert_eq!(
            ns_id(&pid.to_string(), n),
            ns_id("self", n),
            "{n} namespace not inherited"
        );
    }
}

/// A config whose namespace `ty` is the one at `path` (the rest new, as in the base config).
fn joining(ty: &str, path: &str) -> Value {
    let mut cfg = sleeper();
    let list = cfg["linux"]["namespaces"].as_array_mut().unwrap();
    list.retain(|n| n["type"] != ty);
    list.push(json!({"type": ty, "path": path}));
    cfg
}

/// config-linux.md "Namespaces": path — "The runtime MUST place the container process in the
/// namespace associated with that path." The namespace is held by a process outside any runtime.
fn join(ty: &str, unshare_flag: &str, edit: fn(&mut Value)) {
    let Some(t) = Test::new() else { return };
    let holder = t.holder(&[unshare_flag]);
    let n = proc_ns(ty);
    let path = format!("/proc/{holder}/ns/{n}");
    let mut cfg = joining(ty, &path);
    edit(&mut cfg);
    let (_id, pid) = created(&t, &cfg);
    assert_eq!(
        ns_id(&pid.to_string(), n),
        ns_id(&holder.to_string(), n),
        "{ty}: not the namespace at {path}"
    );
}

// config-linux.md "Namespaces": "The runtime MUST place the container process in the namespace
// associated with that path." (network)
#[test]
fn namespace_path_joins_network() {
    join("network", "--net", |_| {});
}

// ... (ipc)
#[test]
fn namespace_path_joins_ipc() {
    join("ipc", "--ipc", |_| {});
}

// ... (uts)
#[test]
fn namespace_path_joins_uts() {
    join("uts", "--uts", |_| {});
}

// ... (pid)
#[test]
fn namespace_path_joins_pid() {
    join("pid", "--pid", |_| {});
}

// ... (cgroup)
#[test]
fn namespace_path_joins_cgroup() {
    join("cgroup", "--cgroup", |_| {});
}

// ... (mount: the rootfs is built in the joined namespace, which becomes the container's)
#[test]
fn namespace_path_joins_mount() {
    join("mount", "--mount", |_| {});
}

// ... (network, with a new user namespace: the joined namespace belongs to the runtime's user
// namespace, not to the container's new one, and must still be joined; sysfs can only be
// mounted by the owner of the network namespace, so the runtime's /sys is bound instead)
#[test]
fn namespace_path_joins_network_with_a_new_user_namespace() {
    let Some(t) = Test::new() else { return };
    let holder = t.holder(&["--net"]);
    let mut cfg = joining("network", &format!("/proc/{holder}/ns/net"));
    userns(&mut cfg);
    for m in cfg["mounts"].as_array_mut().unwrap() {
        if m["destination"] == "/sys" {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "ro"]});
        }
    }
    let (_id, pid) = created(&t, &cfg);
    let pid = pid.to_string();
    assert_eq!(ns_id(&pid, "net"), ns_id(&holder.to_string(), "net"));
    assert_ne!(ns_id(&pid, "user"), ns_id("self", "user"));
    let map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(
        map.split_whitespace().collect::<Vec<_>>(),
        ["0", "100000", "65536"],
        "{map}"
    );
}

/// Mounts a container whose only mapped id is root can make (no devpts gid=5, no mqueue; proc
/// only with a pid namespace of the joined user namespace).
fn root_only_mounts(c: &mut Value, proc_: bool) {
    c["mounts"] = json!([
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}
    ]);
    if proc_ {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/proc", "type": "proc", "source": "proc"}));
    }
}

// ... (user: the holder maps root to root; the container brings no mappings of its own, and
// shares the holder's pid namespace)
#[test]
fn namespace_path_joins_user() {
    join("user", "--map-root-user", |c| {
        root_only_mounts(c, false);
        c["linux"]["namespaces"]
            .as_array_mut()
            .unwrap()
            .retain(|n| n["type"] != "pid");
    });
}

// ... (user, with a new pid namespace, which must then belong to the joined user namespace)
#[test]
fn namespace_path_joins_user_with_new_pid_namespace() {
    join("user", "--map-root-user", |c| root_only_mounts(c, true));
}

// config-linux.md "Namespaces": "The runtime MUST generate an error if path is not associated
// with a namespace of type type."
#[test]
fn namespace_path_of_wrong_type_errors() {
    let Some(t) = Test::new() else { return };
    let holder = t.holder(&["--ipc", "--net"]);
    let plain = t.dir.join("not-a-namespace");
    std::fs::write(&plain, "x").unwrap();
    for path in [
        format!("/proc/{holder}/ns/ipc"),
        plain.display().to_string(),
    ] {
        let b = t.bundle(&joining("network", &path));
        let id = t.id("wrongns");
        assert_fails!(t.create(&id, &b), "network namespace path {path}");
        assert!(t.state(&id).is_none());
    }
}

// config-linux.md "Namespaces": path — "This value MUST be an absolute path in the runtime mount
// namespace." A relative path is invalid, even one that would resolve from the runtime's cwd.
#[test]
fn namespace_path_must_be_absolute() {
    let Some(t) = Test::new() else { return };
    let holder = t.holder(&["--net"]);
    let b = t.bundle(&joining("network", &format!("proc/{holder}/ns/net")));
    let id = t.id("relns");
    let mut c = t.cmd();
    c.current_dir("/")
        .arg("create")
        .arg("--bundle")
        .arg(&b)
        .arg(&id);
    t.track(&id);
    assert_fails!(oci_conformance::test::run_cmd(
        c,
        &t.dir.join("io/relns"),
        Duration::from_secs(60)
    ));
}

// config-linux.md "Namespaces": "If a namespaces field contains duplicated namespaces with same
// type, the runtime MUST generate an error."
#[test]
fn namespace_duplicate_type_errors() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sleeper();
    cfg["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "ipc"}));
    let b = t.bundle(&cfg);
    let id = t.id("dupns");
    assert_fails!(t.create(&id, &b));
    assert!(t.state(&id).is_none());
}

// config-linux.md "User namespace mappings": uidMappings/gidMappings "describes the user
// namespace uid/gid mappings from the host to the container" — the kernel's uid_map and gid_map
// show them, and the host sees container uid 0 as host uid 100000.
#[test]
fn user_namespace_mappings() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("cat /proc/self/uid_map /proc/self/gid_map; id -u; exec sleep 1000");
    userns(&mut cfg);
    cfg["linux"]["uidMappings"] = json!([
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 1000, "hostID": 200000, "size": 1000}
    ]);
    let b = t.bundle(&cfg);
    let id = t.id("userns");
    assert_ok!(t.create(&id, &b));
    let pid = t.pid(&id);
    let host_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let rows: Vec<Vec<&str>> = host_map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows,
        vec![vec!["0", "100000", "1000"], vec!["1000", "200000", "1000"]],
        "{host_map}"
    );
    assert_ok!(t.start(&id));
    assert!(host::wait_comm(pid, "sleep"));
    let status = host::proc_status(pid);
    assert_eq!(
        status_field(&status, "Uid").unwrap(),
        "100000\t100000\t100000\t100000"
    );
    assert_eq!(
        status_field(&status, "Gid").unwrap(),
        "100000\t100000\t100000\t100000"
    );
    let (out, _) = t.output(&id);
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(lines[0], ["0", "100000", "1000"], "{out}");
    assert_eq!(lines[1], ["1000", "200000", "1000"], "{out}");
    assert_eq!(lines[2], ["0", "100000", "65536"], "{out}");
    assert_eq!(lines[3], ["0"], "{out}");
}

// config-linux.md "User namespace mappings": "The runtime SHOULD NOT modify the ownership of
// referenced filesystems to realize the mapping."
#[test]
fn user_namespace_leaves_rootfs_ownership() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("true");
    userns(&mut cfg);
    let b = t.bundle(&cfg);
    let out = t.run_bundle(&b);
    assert_ok!(out);
    use std::os::unix::fs::MetadataExt;
    for p in ["rootfs", "rootfs/bin/busybox", "rootfs/etc/passwd"] {
        assert_eq!(
            std::fs::metadata(b.join(p)).unwrap().uid(),
            0,
            "{p} changed owner"
        );
    }
}

// config-linux.md "Devices": "devices (array of objects, OPTIONAL) lists devices that MUST be
// available in the container" with type, major/minor, fileMode, uid and gid — and "The path MAY
// be anywhere in the container filesystem, notably outside of /dev."
#[test]
fn devices_are_created_as_configured() {
    let Some(t) = Test::new() else { return };
    let out = t.sh_with(
        "for d in /dev/oci-null /dev/oci-loop /dev/oci-fifo /etc/oci-zero; do \
           stat -c '%n %F %t:%T %a %u:%g' $d; done; \
         head -c 3 /etc/oci-zero | od -An -tx1; echo x > /dev/oci-null && echo written",
        |c| {
            c["linux"]["devices"] = json!([
                {"path": "/dev/oci-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o622, "uid": 1, "gid": 2},
                {"path": "/dev/oci-loop", "type": "b", "major": 7, "minor": 200, "fileMode": 0o600, "uid": 0, "gid": 0},
                {"path": "/dev/oci-fifo", "type": "p", "fileMode": 0o644},
                {"path": "/etc/oci-zero", "type": "c", "major": 1, "minor": 5, "fileMode": 0o666}
            ]);
        },
    );
    assert_ok!(out);
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        l[0], "/dev/oci-null character special file 1:3 622 1:2",
        "{out:?}"
    );
    assert_eq!(
        l[1], "/dev/oci-loop block special file 7:c8 600 0:0",
        "{out:?}"
    );
    assert!(
        l[2].starts_with("/dev/oci-fifo fifo ") && l[2].ends_with(" 644 0:0"),
        "{out:?}"
    );
    assert_eq!(
        l[3], "/etc/oci-zero character special file 1:5 666 0:0",
        "{out:?}"
    );
    assert_eq!(l[4].trim(), "00 00 00", "{out:?}");
    assert_eq!(l[5], "written", "{out:?}");
}

// config-linux.md "Devices": path — "If a file already exists at path that does not match the
// requested device, the runtime MUST generate an error."
#[test]
fn devices_existing_mismatching_file_errors() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("echo ran > /ran");
    cfg["linux"]["devices"] =
        json!([{"path": "/etc/conflict", "type": "c", "major": 1, "minor": 3}]);
    let b = t.bundle(&cfg);
    std::fs::write(b.join("rootfs/etc/conflict"), "a regular file").unwrap();
    let id = t.id("devconflict");
    if t.create(&id, &b).ok() {
        let _ = t.start(&id);
        panic!("a regular file at a device path was accepted");
    }
    assert_eq!(
        std::fs::read_to_string(b.join("rootfs/etc/conflict")).unwrap(),
        "a regular file"
    );
}

// config-linux.md "Default Devices": "In addition to any devices configured with this setting,
// the runtime MUST also supply: /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom,
// /dev/tty" — the right character devices, and usable.
#[test]
fn default_devices_are_supplied() {
    let Some(t) = Test::new() else { return };
    let out = t.sh(
        "for d in null zero full random urandom tty; do stat -L -c '%n %F %t:%T' /dev/$d; done; \
         echo x > /dev/null && echo null-ok; \
         test \"$(head -c 4 /dev/zero | od -An -tx1 | tr -d ' ')\" = 00000000 && echo zero-ok; \
         echo x > /dev/full 2>/dev/null || echo full-ok; \
         test $(head -c 16 /dev/urandom | wc -c) = 16 && echo urandom-ok; \
         test $(head -c 16 /dev/random | wc -c) = 16 && echo random-ok",
    );
    assert_ok!(out);
    let want = [
        "/dev/null character special file 1:3",
        "/dev/zero character special file 1:5",
        "/dev/full character special file 1:7",
        "/dev/random character special file 1:8",
        "/dev/urandom character special file 1:9",
        "/dev/tty character special file 5:0",
        "null-ok",
        "zero-ok",
        "full-ok",
        "urandom-ok",
        "random-ok",
    ];
    assert_eq!(out.stdout.lines().collect::<Vec<_>>(), want, "{out:?}");
}

// config-linux.md "Default Devices": "/dev/ptmx. A bind-mount or symlink of the container's
// /dev/pts/ptmx."
#[test]
fn default_device_ptmx_is_the_containers_devpts() {
    let Some(t) = Test::new() else { return };
    let out = t.sh("readlink /dev/ptmx; stat -L -c '%d:%i' /dev/ptmx /dev/pts/ptmx");
    assert_ok!(out);
    let l: Vec<&str> = out.stdout.lines().collect();
    let symlink = l.len() == 3 && (l[0] == "pts/ptmx" || l[0] == "/dev/pts/ptmx");
    let same = l.len() >= 2 && l[l.len() - 1] == l[l.len() - 2];
    assert!(symlink || same, "{out:?}");
    assert!(
        same,
        "/dev/ptmx is not the container's /dev/pts/ptmx: {out:?}"
    );
}

// runtime-linux.md "Dev symbolic links": "runtimes MUST create the following symlinks if the
// source file exists after processing mounts: /proc/self/fd → /dev/fd, /proc/self/fd/0 →
// /dev/stdin, /proc/self/fd/1 → /dev/stdout, /proc/self/fd/2 → /dev/stderr".
#[test]
fn dev_symlinks() {
    let Some(t) = Test::new() else { return };
    let out = t.sh("for l in fd stdin stdout stderr; do readlink /dev/$l; done");
    assert_ok!(out);
    assert_eq!(
        out.stdout,
        "/proc/self/fd\n/proc/self/fd/0\n/proc/self/fd/1\n/proc/self/fd/2\n"
    );
}

// config-linux.md "Sysctl": "sysctl (object, OPTIONAL) allows kernel parameters to be modified at
// runtime for the container." Namespaced parameters take the values in the container only.
#[test]
fn sysctl_is_applied_in_the_container_only() {
    let Some(t) = Test::new() else { return };
    let host_fwd = std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap();
    let host_shm = std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap();
    let out = t.sh_with(
        "cat /proc/sys/net/ipv4/ip_forward /proc/sys/kernel/shmmni /proc/sys/net/core/somaxconn",
        |c| {
            c["linux"]["sysctl"] = json!({
                "net.ipv4.ip_forward": "1",
                "kernel.shmmni": "1234",
                "net.core.somaxconn": "321"
            })
        },
    );
    assert_ok!(out);
    assert_eq!(out.stdout, "1\n1234\n321\n");
    assert_eq!(
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").unwrap(),
        host_fwd
    );
    assert_eq!(
        std::fs::read_to_string("/proc/sys/kernel/shmmni").unwrap(),
        host_shm
    );
}

// runtime.md "Create": "If the runtime cannot apply a property as specified in the
// configuration, it MUST generate an error and a new container MUST NOT be created." A sysctl
// that does not exist cannot be applied.
#[test]
fn sysctl_unknown_key_errors() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("echo ran > /ran");
    cfg["linux"]["sysctl"] = json!({"net.ipv4.oci_conformance_no_such_key": "1"});
    let b = t.bundle(&cfg);
    let id = t.id("sysctlbad");
    assert_fails!(t.create(&id, &b));
    assert!(t.state(&id).is_none());
    assert!(!b.join("rootfs/ran").exists());
}

// config-linux.md "Masked Paths": "maskedPaths (array of strings, OPTIONAL) will mask over the
// provided paths inside the container so that they cannot be read."
#[test]
fn masked_paths_cannot_be_read() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config(
        "cat /secret-file; ls -A /secret-dir; cat /secret-dir/inner; head -c 8 /proc/kcore | wc -c; true",
    );
    cfg["linux"]["maskedPaths"] = json!(["/secret-file", "/secret-dir", "/proc/kcore"]);
    let b = t.bundle(&cfg);
    std::fs::write(b.join("rootfs/secret-file"), "SECRET-1").unwrap();
    std::fs::create_dir(b.join("rootfs/secret-dir")).unwrap();
    std::fs::write(b.join("rootfs/secret-dir/inner"), "SECRET-2").unwrap();
    let out = t.run_bundle(&b);
    assert!(!out.stdout.contains("SECRET"), "{out:?}");
    assert!(!out.stdout.contains("inner"), "{out:?}");
    assert!(
        out.stdout.trim_end().ends_with('0'),
        "/proc/kcore readable: {out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(b.join("rootfs/secret-file")).unwrap(),
        "SECRET-1"
    );
}

// config-linux.md "Readonly Paths": "readonlyPaths (array of strings, OPTIONAL) will set the
// provided paths as readonly inside the container." Even for a privileged process.
#[test]
fn readonly_paths_are_read_only() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config(
        "cat /proc/self/mountinfo; touch /ro-dir/x 2>/dev/null && echo RO-WRITTEN; \
         echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo PROC-WRITTEN; \
         touch /rw-dir/x && echo rw-ok",
    );
    privileged(&mut cfg);
    cfg["linux"]["readonlyPaths"] = json!(["/ro-dir", "/proc/sys"]);
    let b = t.bundle(&cfg);
    std::fs::create_dir(b.join("rootfs/ro-dir")).unwrap();
    std::fs::create_dir(b.join("rootfs/rw-dir")).unwrap();
    let out = t.run_bundle(&b);
    assert_ok!(out);
    let mi = parse_mountinfo(&out.stdout);
    assert!(
        mount_at(&mi, "/ro-dir").is_some_and(|m| m.has("ro")),
        "{out:?}"
    );
    assert!(
        mount_at(&mi, "/proc/sys").is_some_and(|m| m.has("ro")),
        "{out:?}"
    );
    assert!(!out.stdout.contains("WRITTEN"), "{out:?}");
    assert!(out.stdout.contains("rw-ok"), "{out:?}");
}

/// The container's view of its root mount under `rootfsPropagation: mode`, with the bundle
/// directory made a shared mount on the host first: (root mount, pid, bundle).
fn root_propagation(t: &Test, mode: &str) -> (host::MountInfo, u32, std::path::PathBuf) {
    let mut cfg = sleeper();
    cfg["linux"]["rootfsPropagation"] = json!(mode);
    let b = t.bundle(&cfg);
    t.shared_bind(&b);
    let (_id, pid) = t.start_bundle(&b, "sleep");
    let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    let root = mount_at(&parse_mountinfo(&mi), "/").unwrap().clone();
    (root, pid, b)
}

// config-linux.md "Rootfs Mount Propagation": "shared: the rootfs mount belongs to a new peer
// group."
#[test]
fn rootfs_propagation_shared() {
    let Some(t) = Test::new() else { return };
    let (root, _, _) = root_propagation(&t, "shared");
    assert!(root.tag("shared:"), "{root:?}");
}

// config-linux.md "Rootfs Mount Propagation": "slave: the rootfs mount receives propagation
// events from the host (e.g. if something is mounted on the host it will also appear in the
// container) but not the other way around."
#[test]
fn rootfs_propagation_slave() {
    let Some(t) = Test::new() else { return };
    let (root, pid, b) = root_propagation(&t, "slave");
    assert!(root.tag("master:"), "{root:?}");
    t.host_mount("tmpfs", &b.join("rootfs/mnt"), "tmpfs", 0);
    let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        mount_at(&parse_mountinfo(&mi), "/mnt").is_some(),
        "a host mount did not reach the container:\n{mi}"
    );
}

// config-linux.md "Rootfs Mount Propagation": "private: the rootfs mount doesn't receive mount
// propagation events from the host".
#[test]
fn rootfs_propagation_private() {
    let Some(t) = Test::new() else { return };
    let (root, pid, b) = root_propagation(&t, "private");
    assert!(!root.tag("shared:") && !root.tag("master:"), "{root:?}");
    t.host_mount("tmpfs", &b.join("rootfs/mnt"), "tmpfs", 0);
    let mi = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap();
    assert!(
        mount_at(&parse_mountinfo(&mi), "/mnt").is_none(),
        "a host mount reached a private rootfs:\n{mi}"
    );
}

// config-linux.md "Rootfs Mount Propagation": "unbindable: the rootfs mount is a private mount
// that cannot be bind-mounted."
#[test]
fn rootfs_propagation_unbindable() {
    let Some(t) = Test::new() else { return };
    let (root, _, _) = root_propagation(&t, "unbindable");
    assert!(root.tag("unbindable"), "{root:?}");
}

// config-linux.md "Offset for Time Namespace": "timeOffsets (object, OPTIONAL) sets the offset
// for Time Namespace." (runtime-spec 1.1.0, with a new time namespace)
#[test]
fn time_offsets_are_applied() {
    let Some(t) = Test::new() else { return };
    require!(
        t,
        rt().has_namespace("time"),
        "time namespaces not announced"
    );
    require!(
        t,
        rt().supports_spec("1.1.0"),
        "timeOffsets need runtime-spec 1.1.0"
    );
    let out = t.sh_with(
        "cat /proc/self/timens_offsets; cut -d. -f1 /proc/uptime",
        |c| {
            c["ociVersion"] = json!("1.1.0");
            c["linux"]["namespaces"]
                .as_array_mut()
                .unwrap()
                .push(json!({"type": "time"}));
            c["linux"]["timeOffsets"] = json!({
                "monotonic": {"secs": 86400, "nanosecs": 7},
                "boottime": {"secs": 31536000}
            });
        },
    );
    assert_ok!(out);
    let l: Vec<Vec<&str>> = out
        .stdout
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert!(l.contains(&vec!["monotonic", "86400", "7"]), "{out:?}");
    assert!(l.contains(&vec!["boottime", "31536000", "0"]), "{out:?}");
    let uptime: u64 = l.last().unwrap()[0].parse().unwrap();
    assert!(
        uptime >= 31536000,
        "uptime {uptime} without the boottime offset"
    );
}

// config-linux.md "Personality": "domain [...] LINUX32 will set the uname system call to show a
// 32 bit CPU type, such as i686." (runtime-spec 1.0.2)
#[test]
fn personality_linux32() {
    let Some(t) = Test::new() else { return };
    if std::env::consts::ARCH != "x86_64" {
        oci_conformance::skip(t.name(), "host", "LINUX32 check written for x86_64");
        return;
    }
    let out = t.sh_with("uname -m", |c| {
        c["linux"]["personality"] = json!({"domain": "LINUX32"})
    });
    assert_ok!(out);
    assert_eq!(out.stdout.trim(), "i686");
}

// config-linux.md "Personality": "domain [...] The valid list of constants is shown below:
// LINUX, LINUX32" — anything else is an invalid value ("Runtimes MUST generate an error when
// invalid or unsupported values are encountered").
#[test]
fn personality_unknown_domain_errors() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("echo ran > /ran");
    cfg["linux"]["personality"] = json!({"domain": "OCI_BOGUS"});
    let b = t.bundle(&cfg);
    let id = t.id("persona");
    if t.create(&id, &b).ok() {
        let _ = t.start(&id);
        panic!("personality domain OCI_BOGUS accepted");
    }
}

/// The container's directory in the pids (else memory) hierarchy.
fn container_cgroup(pid: u32) -> std::path::PathBuf {
    host::cgroup_dir(pid, "pids")
        .or_else(|| host::cgroup_dir(pid, "memory"))
        .expect("the container is in no pids or memory cgroup")
}

/// Removes `name` (and what is below it) from every cgroup hierarchy when dropped: the
/// intermediate directories some runtimes leave behind must not stay on the shared host.
struct CgroupSweep(String);

impl Drop for CgroupSweep {
    fn drop(&mut self) {
        fn rm(d: &std::path::Path) {
            if let Ok(entries) = std::fs::read_dir(d) {
                for e in entries.flatten() {
                    if e.file_type().is_ok_and(|t| t.is_dir()) {
                        rm(&e.path());
                    }
                }
            }
            let _ = std::fs::remove_dir(d);
        }
        for m in host::cgroup_mounts() {
            rm(&m.join(&self.0));
        }
    }
}

// config-linux.md "Cgroups Path": "In the case of an absolute path (starting with /), the runtime
// MUST take the path to be relative to the cgroups mount point." and "The cgroups will be
// created if they don't exist."
#[test]
fn cgroups_path_absolute_is_relative_to_the_mount_point() {
    // Declared first, so it sweeps after the check's containers are deleted.
    let name = format!("oci-conf-{}", oci_conformance::test::unique("cg"));
    let _sweep = CgroupSweep(name.clone());
    let Some(t) = Test::new() else { return };
    let mut cfg = sleeper();
    cfg["linux"]["cgroupsPath"] = json!(format!("/{name}/nested"));
    let (id, pid) = created(&t, &cfg);
    let dir = container_cgroup(pid);
    assert!(
        dir.ends_with(format!("{name}/nested")),
        "cgroup {} is not /{name}/nested below a hierarchy root",
        dir.display()
    );
    let mount = dir.parent().unwrap().parent().unwrap();
    assert!(
        host::cgroup_mounts().iter().any(|m| m == mount),
        "{} is not a cgroup mount point",
        mount.display()
    );
    assert!(dir.is_dir());
    assert_ok!(t.delete_force(&id));
}

// runtime.md "Delete": "Deleting a container MUST delete the resources that were created during
// the create step." The cgroups a nested cgroupsPath made — the intermediate one too — are gone
// after delete, in every hierarchy.
#[test]
fn delete_removes_the_cgroups_it_created() {
    // Declared first, so it sweeps after the check's containers are deleted.
    let name = format!("oci-conf-{}", oci_conformance::test::unique("cgdel"));
    let _sweep = CgroupSweep(name.clone());
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("true");
    cfg["linux"]["cgroupsPath"] = json!(format!("/{name}/nested"));
    let b = t.bundle(&cfg);
    let id = t.id("cgdel");
    assert_ok!(t.create(&id, &b));
    assert_ok!(t.start(&id));
    assert!(t.wait_status(&id, "stopped"));
    assert_ok!(t.delete(&id));
    let left: Vec<_> = host::cgroup_mounts()
        .into_iter()
        .map(|m| m.join(&name))
        .filter(|d| d.exists())
        .collect();
    assert!(left.is_empty(), "cgroups left after delete: {left:?}");
}

// config-linux.md "Cgroups Path": "If the value is specified, the runtime MUST consistently
// attach to the same place in the cgroups hierarchy given the same value of cgroupsPath."
#[test]
fn cgroups_path_is_consistent() {
    let name = format!("oci-conf-{}", oci_conformance::test::unique("cgsame"));
    let _sweep = CgroupSweep(name.clone());
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("cat /proc/self/cgroup");
    cfg["linux"]["cgroupsPath"] = json!(format!("/{name}"));
    let (id1, pid1) = created(&t, &cfg);
    let first = container_cgroup(pid1);
    assert_ok!(t.delete_force(&id1));
    let (_id2, pid2) = created(&t, &cfg);
    assert_eq!(container_cgroup(pid2), first);
}

// config-linux.md "PIDs": "limit (int64, REQUIRED) - specifies the maximum number of tasks in the
// cgroup" (read back from the container's pids cgroup).
#[test]
fn resources_pids_limit() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sleeper();
    cfg["linux"]["resources"] = json!({"pids": {"limit": 42}});
    let (_id, pid) = created(&t, &cfg);
    let dir = host::cgroup_dir(pid, "pids").expect("pids cgroup");
    assert_eq!(
        std::fs::read_to_string(dir.join("pids.max"))
            .unwrap()
            .trim(),
        "42"
    );
}

// config-linux.md "Memory": "limit (int64, OPTIONAL) - sets limit of memory usage in bytes".
#[test]
fn resources_memory_limit() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sleeper();
    cfg["linux"]["resources"] = json!({"memory": {"limit": 67108864}});
    let (_id, pid) = created(&t, &cfg);
    let dir = host::cgroup_dir(pid, "memory").expect("memory cgroup");
    let v1 = dir.join("memory.limit_in_bytes");
    let file = if v1.exists() {
        v1
    } else {
        dir.join("memory.max")
    };
    assert_eq!(std::fs::read_to_string(file).unwrap().trim(), "67108864");
}

// config-linux.md "Allowed Device list": "The runtime MUST apply entries in the listed order."
// Deny all; allow 240:8; allow 240:7; deny 240:7 — in order, 240:8 is allowed and 240:7 is not
// (backwards, both would end up denied). Major 240 is a local/experimental one without a
// driver: an allowed node opens into ENXIO, a denied one fails with EPERM. The nodes are made
// in the rootfs by the check (not linux.devices, which a runtime may allow on its own), and
// every rule names exact devices, which cgroup v1's devices.deny can express.
#[test]
fn resources_devices_applied_in_order() {
    let Some(t) = Test::new() else { return };
    let mut cfg = sh_config("for n in 7 8; do cat /nodes/oci-$n; done 2>&1; true");
    cfg["linux"]["resources"] = json!({"devices": [
        {"allow": false, "access": "rwm"},
        {"allow": true, "type": "c", "major": 240, "minor": 8, "access": "rw"},
        {"allow": true, "type": "c", "major": 240, "minor": 7, "access": "rw"},
        {"allow": false, "type": "c", "major": 240, "minor": 7, "access": "rw"}
    ]});
    let b = t.bundle(&cfg);
    std::fs::create_dir(b.join("rootfs/nodes")).unwrap();
    for n in [7u32, 8] {
        let p = std::ffi::CString::new(b.join(format!("rootfs/nodes/oci-{n}")).to_str().unwrap())
            .unwrap();
        // SAFETY: valid path; mknod of a character device as root.
        let r = unsafe { libc::mknod(p.as_ptr(), libc::S_IFCHR | 0o666, libc::makedev(240, n)) };
        assert_eq!(r, 0, "mknod: {}", std::io::Error::last_os_error());
    }
    let out = t.run_bundle(&b);
    assert_ok!(out);
    let l: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(l.len(), 2, "{out:?}");
    assert!(
        l[0].contains("Operation not permitted"),
        "240:7 not denied: {out:?}"
    );
    assert!(
        l[1].contains("No such device"),
        "240:8 not allowed: {out:?}"
    );
}

// config-linux.md "Seccomp": a syscall rule with action SCMP_ACT_ERRNO makes the syscall fail
// (EPERM by default), the default action lets the rest through.
#[test]
fn seccomp_errno_rule_applies() {
    let Some(t) = Test::new() else { return };
    require!(t, rt().has_seccomp(), "seccomp not announced");
    let out = t.sh_with(
        "mkdir /tmp/blocked 2>&1; ls /tmp/blocked 2>&1; echo done",
        |c| {
            c["linux"]["seccomp"] = json!({
                "defaultAction": "SCMP_ACT_ALLOW",
                "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
                "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO"}]
            });
        },
    );
    assert_ok!(out);
    assert!(out.stdout.contains("Operation not permitted"), "{out:?}");
    assert!(out.stdout.trim_end().ends_with("done"), "{out:?}");
}
