//! User namespaces as root: id maps seen from inside and outside, the setup steps that must
//! work inside a user namespace (mounts, devices, hostname, sysctl, hooks), joining a user
//! namespace by path with a new pid namespace, the bad maps, and idmapped mounts (the owner
//! a file gets on the host). Needs root; the rootless side is tests/rootless.rs.

mod common;

use common::{assert_error, stderr, stdout, unique_id, Env};
use serde_json::{json, Value};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn userns(c: &mut Value, uid: Value, gid: Value) {
    c["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    c["linux"]["uidMappings"] = uid;
    c["linux"]["gidMappings"] = gid;
}

fn push_mount(c: &mut Value, m: Value) {
    c["mounts"].as_array_mut().unwrap().push(m);
}

fn maps() -> Value {
    json!([
        {"containerID": 0, "hostID": 100000, "size": 1000},
        {"containerID": 1000, "hostID": 300000, "size": 64536}
    ])
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::os::unix::fs::PermissionsExt::from_mode(mode)).unwrap();
}

fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}

fn status_ids(pid: i32, field: &str) -> String {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .unwrap()
        .split_whitespace()
        .nth(1)
        .unwrap()
        .to_string()
}

// The maps reach the kernel as configured (seen from the host and from inside); the host sees
// container root as 100000; hostname, sysctl, devices (bound from the host: mknod is not
// allowed in a user namespace), mounts and hooks all work inside it; container root cannot
// write a file the host's root owns.
#[test]
fn setup_inside_a_user_namespace() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map; hostname; cat /proc/sys/kernel/shmmax; \
         stat -c '%t:%T' /dev/null /dev/zero; echo x >> /mnt/rootfile && echo WROTE; \
         grep -c ' /data ' /proc/self/mountinfo; echo ready; exec sleep 1000",
    ]);
    let rootfile = env.dir.join("rootfile");
    std::fs::write(&rootfile, "host\n").unwrap();
    let data = env.dir.join("data");
    std::fs::create_dir(&data).unwrap();
    let marks = env.dir.join("marks");
    std::fs::create_dir(&marks).unwrap();
    // Container root is host 100000: the hooks inside may write here, and the mount points
    // are made by the host (the rootfs belongs to host root, which the container cannot write).
    chmod(&marks, 0o777);
    std::fs::create_dir_all(env.rootfs().join("mnt")).unwrap();
    std::fs::write(env.rootfs().join("mnt/rootfile"), "").unwrap();
    std::fs::create_dir_all(env.rootfs().join("data")).unwrap();
    env.edit(|c| {
        userns(c, maps(), maps());
        c["hostname"] = json!("in-userns");
        c["linux"]["sysctl"] = json!({"kernel.shmmax": "123456789"});
        push_mount(
            c,
            json!({"destination": "/mnt/rootfile", "source": rootfile, "options": ["bind"]}),
        );
        push_mount(
            c,
            json!({"destination": "/data", "source": data, "options": ["bind", "ro"]}),
        );
        let hook = |file: &str| {
            json!({"path": "/bin/sh", "args": ["sh", "-c", format!("id -u > {}/{file}", marks.display())]})
        };
        c["hooks"] = json!({"createRuntime": [hook("runtime")], "createContainer": [hook("container")]});
    });
    let id = unique_id("userns");
    env.create(&id);
    let pid = env.state(&id)["pid"].as_i64().unwrap() as i32;
    let host_uid = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    let want = vec![vec!["0", "100000", "1000"], vec!["1000", "300000", "64536"]];
    assert_eq!(rows(&host_uid), want, "{host_uid}");
    let host_gid = std::fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap();
    assert_eq!(rows(&host_gid), want, "{host_gid}");
    // Hooks: createRuntime as the runtime (host root), createContainer as container root.
    let mark = |f: &str| std::fs::read_to_string(marks.join(f)).unwrap();
    assert_eq!(mark("runtime").trim(), "0");
    assert_eq!(mark("container").trim(), "0");
    let out = env.ruse(&["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.wait_status(&id, "running");
    assert_eq!(status_ids(pid, "Uid:"), "100000");
    assert_eq!(status_ids(pid, "Gid:"), "100000");
    let log = wait_output(&env, &id);
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(rows(&lines[..4].join("\n")), [want.clone(), want].concat());
    assert_eq!(lines[4], "in-userns");
    assert_eq!(lines[5], "123456789");
    assert_eq!(lines[6..8], ["1:3", "1:5"]);
    assert!(
        !log.contains("WROTE"),
        "container root wrote a host root file: {log}"
    );
    assert_eq!(std::fs::read_to_string(&rootfile).unwrap(), "host\n");
    assert_eq!(lines[lines.len() - 2], "1");
    let out = env.ruse(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_clean(&id);
}

/// The container's stdout, once it printed "ready" (create's output goes to a file).
fn wait_output(env: &Env, id: &str) -> String {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let mut all = String::new();
        for e in std::fs::read_dir(&env.dir).unwrap().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("out") {
                all.push_str(&std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
        if all.contains("ready") || std::time::Instant::now() > end {
            assert!(all.contains("ready"), "{id}: no output: {all}");
            return all;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// A change to a config.
type Edit = Box<dyn Fn(&mut Value)>;

/// Each bad map: one error line naming the field, nothing left behind.
#[test]
fn bad_maps_are_refused() {
    if !common::root_or_skip() {
        return;
    }
    let one = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
    let cases: Vec<(&str, Edit, Vec<&str>)> = vec![
        (
            "maps without a user namespace",
            Box::new(|c| {
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1, "size": 1}]);
            }),
            vec!["linux.uidMappings", "user namespace"],
        ),
        (
            "a user namespace without maps or path",
            Box::new(|c| userns(c, Value::Null, Value::Null)),
            vec!["linux.namespaces", "uidMappings", "gidMappings"],
        ),
        (
            "uid maps only",
            Box::new({
                let one = one.clone();
                move |c| userns(c, one.clone(), Value::Null)
            }),
            vec!["linux.namespaces", "gidMappings"],
        ),
        (
            "overlapping container ranges",
            Box::new({
                let one = one.clone();
                move |c| {
                    userns(
                        c,
                        json!([{"containerID": 0, "hostID": 100000, "size": 10},
                               {"containerID": 9, "hostID": 200000, "size": 10}]),
                        one.clone(),
                    )
                }
            }),
            vec!["linux.uidMappings[1]", "containerID", "overlaps"],
        ),
        (
            "overlapping host ranges",
            Box::new({
                let one = one.clone();
                move |c| {
                    userns(
                        c,
                        one.clone(),
                        json!([{"containerID": 0, "hostID": 100000, "size": 10},
                               {"containerID": 10, "hostID": 100005, "size": 10}]),
                    )
                }
            }),
            vec!["linux.gidMappings[1]", "hostID", "overlaps"],
        ),
        (
            "zero size",
            Box::new({
                let one = one.clone();
                move |c| {
                    userns(
                        c,
                        json!([{"containerID": 0, "hostID": 100000, "size": 0}]),
                        one.clone(),
                    )
                }
            }),
            vec!["linux.uidMappings[0]", "size"],
        ),
        (
            "range past 2^32",
            Box::new({
                let one = one.clone();
                move |c| {
                    userns(
                        c,
                        json!([{"containerID": 0, "hostID": 4294967000u64, "size": 1000}]),
                        one.clone(),
                    )
                }
            }),
            vec!["linux.uidMappings[0]", "hostID", "overflows"],
        ),
        (
            "a user namespace path that is no namespace",
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .push(json!({"type": "user", "path": "/etc/hostname"}));
            }),
            vec!["user", "/etc/hostname"],
        ),
    ];
    let env = Env::new(&["true"]);
    let base = env.config();
    for (what, edit, wants) in cases {
        let mut c = base.clone();
        edit(&mut c);
        env.write_config(&c.to_string());
        let id = unique_id("badmap");
        let out = env.run(&id);
        assert_error(what, &out, &wants);
        env.assert_clean(&id);
    }
}

/// `unshare` holding a user namespace that maps root to root (and its own pid namespace is
/// not asked for): the namespace a container joins by path. Killed on drop.
struct Holder(Child);

impl Holder {
    fn new() -> Holder {
        let child = Command::new("unshare")
            .args(["--user", "--map-root-user", "sleep", "1000"])
            .stdin(Stdio::null())
            .spawn()
            .unwrap();
        let pid = child.id();
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::fs::read_to_string(format!("/proc/{pid}/uid_map"))
            .unwrap_or_default()
            .split_whitespace()
            .collect::<Vec<_>>()
            != ["0", "0", "1"]
        {
            assert!(std::time::Instant::now() < end, "unshare never mapped root");
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        Holder(child)
    }
    fn ns(&self, n: &str) -> String {
        format!("/proc/{}/ns/{n}", self.0.id())
    }
}

impl Drop for Holder {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ns_of(pid: &str, n: &str) -> std::path::PathBuf {
    std::fs::read_link(format!("/proc/{pid}/ns/{n}")).unwrap()
}

// Joining a user namespace by path with a new pid namespace: the pid namespace is made after
// the join (so the joined user namespace owns it, and the container may mount its /proc), init
// is pid 1 in it, and the state's pid is that init's, which kill and delete reach.
#[test]
fn join_user_namespace_with_new_pid_namespace() {
    if !common::root_or_skip() {
        return;
    }
    let holder = Holder::new();
    let env = Env::new(&[
        "sh",
        "-c",
        "echo pid=$$; ls /proc/1/ns/pid >/dev/null && echo proc; echo ready; exec sleep 1000",
    ]);
    env.edit(|c| {
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| n["type"] != "network");
        list.push(json!({"type": "user", "path": holder.ns("user")}));
        // Only ids the holder maps (root): no devpts gid=5, no sysfs (needs its netns).
        c["mounts"] = json!([
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "mode=755"]}
        ]);
        c["hostname"] = json!("joined");
    });
    let id = unique_id("joinuser");
    env.create(&id);
    let pid = env.state(&id)["pid"].as_i64().unwrap().to_string();
    let hpid = holder.0.id().to_string();
    assert_eq!(ns_of(&pid, "user"), ns_of(&hpid, "user"));
    assert_ne!(ns_of(&pid, "pid"), ns_of("self", "pid"));
    assert_ne!(ns_of(&pid, "pid"), ns_of(&hpid, "pid"));
    // The state's pid is the forked init's, which start, kill and delete reach.
    let out = env.ruse(&["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = wait_output(&env, &id);
    assert!(log.contains("pid=1\n") && log.contains("proc\n"), "{log}");
    let out = env.ruse(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.wait_status(&id, "stopped");
    let out = env.ruse(&["delete", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_clean(&id);
}

/// Whether the kernel can idmap a mount of the filesystem under `dir` (tmpfs only since Linux
/// 6.3: the VM of `just vm-test` runs 6.1 with /tmp on tmpfs). Asked of ruse itself, whose
/// error says so.
fn idmap_supported(env: &Env) -> bool {
    let probe = env.dir.join("probe");
    std::fs::create_dir_all(&probe).unwrap();
    let mut c = env.config();
    c["ociVersion"] = json!("1.2.0");
    c["process"]["args"] = json!(["true"]);
    let m = json!([{"containerID": 0, "hostID": 0, "size": 1}]);
    push_mount(
        &mut c,
        json!({"destination": "/tmp", "source": probe, "options": ["bind", "idmap"], "uidMappings": m, "gidMappings": m}),
    );
    let saved = env.config();
    env.write_config(&c.to_string());
    let out = env.run(&unique_id("probe"));
    env.write_config(&saved.to_string());
    if stderr(&out).contains("cannot idmap this filesystem") {
        eprintln!(
            "skipped: the kernel cannot idmap {}: {}",
            env.dir.display(),
            stderr(&out)
        );
        return false;
    }
    assert!(out.status.success(), "idmap probe: {}", stderr(&out));
    true
}

/// A source directory holding a file owned by `uid:gid`.
fn source(env: &Env, name: &str, owner: u32) -> std::path::PathBuf {
    let d = env.dir.join(name);
    std::fs::create_dir(&d).unwrap();
    // The container's root has no CAP_DAC_OVERRIDE (ruse spec's default capabilities).
    chmod(&d, 0o777);
    let f = d.join("file");
    std::fs::write(&f, "x").unwrap();
    std::os::unix::fs::chown(&f, Some(owner), Some(owner)).unwrap();
    d
}

fn owner(p: &Path) -> (u32, u32) {
    let m = std::fs::metadata(p).unwrap();
    (m.uid(), m.gid())
}

// Idmapped mounts without a user namespace: a source id (containerID) shows as its hostID, and
// a file the container creates through the mount gets, on the host, the source id its owner
// maps back to. Explicit mappings differ per mount (two throwaway user namespaces).
#[test]
fn idmapped_mounts_without_user_namespace() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "stat -c %u:%g /a/file /b/file; touch /a/new /b/new; stat -c %u:%g /a/new",
    ]);
    if !idmap_supported(&env) {
        return;
    }
    let a = source(&env, "a", 0);
    let b = source(&env, "b", 1234);
    env.edit(|c| {
        c["ociVersion"] = json!("1.2.0");
        // Root of the container is host root: map source 5000 to it on /a.
        push_mount(
            c,
            json!({"destination": "/a", "source": a, "options": ["bind", "idmap"],
                "uidMappings": [{"containerID": 5000, "hostID": 0, "size": 1}, {"containerID": 0, "hostID": 7000, "size": 1}],
                "gidMappings": [{"containerID": 5000, "hostID": 0, "size": 1}, {"containerID": 0, "hostID": 7000, "size": 1}]}),
        );
        push_mount(
            c,
            json!({"destination": "/b", "source": b, "options": ["rbind", "ridmap"],
                "uidMappings": [{"containerID": 1234, "hostID": 42, "size": 1}],
                "gidMappings": [{"containerID": 1234, "hostID": 43, "size": 1}]}),
        );
    });
    let id = unique_id("idmap");
    let out = env.run(&id);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    // /a/file (0 on disk) shows as 7000; /b/file (1234) as 42:43; root (unmapped on /b)
    // cannot create there; /a/new on disk is owned by 5000.
    assert_eq!(lines.first(), Some(&"7000:7000"), "{text} {}", stderr(&out));
    assert_eq!(lines.get(1), Some(&"42:43"), "{text}");
    assert!(stderr(&out).contains("/b/new"), "{}", stderr(&out));
    assert_eq!(owner(&a.join("new")), (5000, 5000));
    assert!(!b.join("new").exists());
    env.assert_clean(&id);
}

// With a user namespace, `ridmap` without mappings takes the container's: files the container's
// root creates through it belong to host root (not to 100000, as through a plain bind), and
// the mapping reaches the submounts of an rbind.
#[test]
fn idmapped_mounts_with_user_namespace() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&[
        "sh",
        "-c",
        "stat -c %u:%g /d/file /d/sub/file; touch /d/new /d/sub/new /plain/new; echo done",
    ]);
    if !idmap_supported(&env) {
        return;
    }
    let d = source(&env, "d", 0);
    std::fs::create_dir(d.join("sub")).unwrap();
    let sub = source(&env, "sub", 1);
    let plain = env.dir.join("plain");
    std::fs::create_dir(&plain).unwrap();
    std::os::unix::fs::chown(&plain, Some(100000), Some(100000)).unwrap();
    // A submount inside the source, which `ridmap` must map too.
    let st = Command::new("mount")
        .args([
            "--bind",
            sub.to_str().unwrap(),
            d.join("sub").to_str().unwrap(),
        ])
        .status()
        .unwrap();
    assert!(st.success());
    struct Umount(std::path::PathBuf);
    impl Drop for Umount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _u = Umount(d.join("sub"));
    // Container root (host 100000) cannot make mount points in a rootfs host root owns.
    for m in ["d", "plain"] {
        std::fs::create_dir(env.rootfs().join(m)).unwrap();
    }
    env.edit(|c| {
        c["ociVersion"] = json!("1.2.0");
        let m = json!([{"containerID": 0, "hostID": 100000, "size": 65536}]);
        userns(c, m.clone(), m);
        push_mount(
            c,
            json!({"destination": "/d", "source": d, "options": ["rbind", "ridmap"]}),
        );
        push_mount(
            c,
            json!({"destination": "/plain", "source": plain, "options": ["bind"]}),
        );
    });
    let id = unique_id("ridmap");
    let out = env.run(&id);
    let text = stdout(&out);
    assert!(text.contains("done"), "{text} {}", stderr(&out));
    assert_eq!(text.lines().take(2).collect::<Vec<_>>(), ["0:0", "1:1"]);
    assert_eq!(owner(&d.join("new")), (0, 0));
    assert_eq!(owner(&sub.join("new")), (0, 0));
    assert_eq!(owner(&plain.join("new")), (100000, 100000));
    drop(_u);
    env.assert_clean(&id);
}

/// runc 1.2's refusals of idmapped mounts, one error line each, nothing left behind; and the
/// feature is announced.
#[test]
fn idmapped_mount_refusals() {
    if !common::root_or_skip() {
        return;
    }
    let env = Env::new(&["true"]);
    let src = env.dir.to_string_lossy().into_owned();
    let maps = json!([{"containerID": 0, "hostID": 1000, "size": 1}]);
    let cases = [
        (
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
            vec![
                "mounts[7]",
                "\"idmap\"",
                "id-mapped mounts are only supported for bind-mounts",
            ],
        ),
        (
            json!({"destination": "/m", "type": "tmpfs", "source": "tmpfs", "uidMappings": maps, "gidMappings": maps}),
            vec![
                "mounts[7].uidMappings/gidMappings",
                "id-mapped mounts are only supported for bind-mounts",
            ],
        ),
        (
            json!({"destination": "/m", "source": src, "options": ["bind"], "uidMappings": maps}),
            vec!["mounts[7]", "both uid and gid mappings"],
        ),
        (
            json!({"destination": "/m", "source": src, "options": ["bind", "ridmap"]}),
            vec!["mounts[7]", "both uid and gid mappings", "user namespace"],
        ),
        (
            json!({"destination": "/m", "source": src, "options": ["bind"],
                "uidMappings": [{"containerID": 0, "hostID": 1000, "size": 0}], "gidMappings": maps}),
            vec!["mounts[7].uidMappings[0]", "size"],
        ),
    ];
    let base = env.config();
    assert_eq!(base["mounts"].as_array().unwrap().len(), 7);
    for (m, wants) in cases {
        let mut c = base.clone();
        push_mount(&mut c, m);
        env.write_config(&c.to_string());
        let id = unique_id("badidmap");
        let out = env.run(&id);
        assert_error(&format!("{wants:?}"), &out, &wants);
        env.assert_clean(&id);
    }
    let out = env.ruse(&["features"]);
    let f: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["linux"]["mountExtensions"]["idmap"]["enabled"], true);
    let opts = f["mountOptions"].as_array().unwrap();
    assert!(opts.contains(&json!("idmap")) && opts.contains(&json!("ridmap")));
}

/// A network namespace made with `ip netns add` (owned by the host's user namespace), deleted
/// on drop.
struct NamedNetns(String);

impl NamedNetns {
    fn new(tag: &str) -> NamedNetns {
        let name = format!("ru{}-{tag}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).status();
        let st = Command::new("ip").args(["netns", "add", &name]).status();
        assert!(st.unwrap().success(), "ip netns add {name}");
        NamedNetns(name)
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.0)
    }
}

impl Drop for NamedNetns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// `nsfs` identity of a namespace file, as `/proc/<pid>/ns/<n>` links print it.
fn ns_link_of_file(kind: &str, path: &str) -> std::path::PathBuf {
    let ino = std::fs::metadata(path).unwrap().ino();
    format!("{kind}:[{ino}]").into()
}

// A new user namespace with network, ipc and uts namespaces joined by path, none of which it
// owns (an `ip netns add` namespace, another process's ipc and uts): runc's nsexec order —
// joined first with the runtime's privileges, then the new user namespace and its maps, then
// the new mount and pid namespaces, which it owns. Seen from the host (namespace identities,
// the maps) and from inside (root, pid 1, the joined hostname).
#[test]
fn new_user_namespace_with_namespaces_joined_by_path() {
    if !common::root_or_skip() {
        return;
    }
    let net = NamedNetns::new("jn");
    let mut holder = Command::new("unshare")
        .args(["--ipc", "--uts", "sleep", "1000"])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let hpid = holder.id().to_string();
    let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while ns_of(&hpid, "uts") == ns_of("self", "uts") {
        assert!(
            std::time::Instant::now() < end,
            "unshare never made its namespaces"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let st = Command::new("nsenter")
        .args(["-t", &hpid, "-u", "hostname", "joined-uts"])
        .status()
        .unwrap();
    assert!(st.success());
    let env = Env::new(&[
        "sh",
        "-c",
        "echo pid=$$ uid=$(id -u) host=$(hostname); echo ready; exec sleep 1000",
    ]);
    env.edit(|c| {
        userns(c, maps(), maps());
        let list = c["linux"]["namespaces"].as_array_mut().unwrap();
        list.retain(|n| !["network", "ipc", "uts"].contains(&n["type"].as_str().unwrap()));
        list.push(json!({"type": "network", "path": net.path()}));
        list.push(json!({"type": "ipc", "path": format!("/proc/{hpid}/ns/ipc")}));
        list.push(json!({"type": "uts", "path": format!("/proc/{hpid}/ns/uts")}));
        // The joined uts namespace is not the container's to name; sysfs and mqueue can only
        // be mounted by the owner of the network and ipc namespaces: the host's /sys instead.
        c.as_object_mut().unwrap().remove("hostname");
        let mounts = c["mounts"].as_array_mut().unwrap();
        mounts.retain(|m| m["type"] != "mqueue" && m["type"] != "cgroup");
        for m in mounts.iter_mut().filter(|m| m["destination"] == "/sys") {
            *m = json!({"destination": "/sys", "type": "none", "source": "/sys",
                "options": ["rbind", "nosuid", "noexec", "nodev", "rro"]});
        }
    });
    let id = unique_id("latenew");
    env.create(&id);
    let pid = env.state(&id)["pid"].as_i64().unwrap().to_string();
    assert_eq!(ns_of(&pid, "net"), ns_link_of_file("net", &net.path()));
    assert_eq!(ns_of(&pid, "ipc"), ns_of(&hpid, "ipc"));
    assert_eq!(ns_of(&pid, "uts"), ns_of(&hpid, "uts"));
    assert_ne!(ns_of(&pid, "user"), ns_of("self", "user"));
    assert_ne!(ns_of(&pid, "pid"), ns_of("self", "pid"));
    assert_ne!(ns_of(&pid, "mnt"), ns_of("self", "mnt"));
    let uid_map = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(rows(&uid_map)[0], ["0", "100000", "1000"], "{uid_map}");
    assert_eq!(status_ids(pid.parse().unwrap(), "Uid:"), "100000");
    let out = env.ruse(&["start", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    let log = wait_output(&env, &id);
    assert!(
        log.contains("pid=1 uid=0 host=joined-uts\n"),
        "from inside: {log}"
    );
    let out = env.ruse(&["delete", "--force", &id]);
    assert!(out.status.success(), "{}", stderr(&out));
    env.assert_clean(&id);
    let _ = holder.kill();
    let _ = holder.wait();
}
