//! Rootless ruse: every check runs ruse as a throwaway unprivileged user the test creates
//! (common/user.rs) with its own `XDG_RUNTIME_DIR`, a copy of the binary and a bundle it owns.
//! What is asserted is what the kernel shows: the maps from inside and from the host, the host
//! ids of the container's processes, a host file the container's root cannot write, the
//! cgroup of a delegated tree. Needs root (to make the user); newuidmap/newgidmap from the
//! Debian package `uidmap`.

mod common;

use common::user::{chmod, edit, rows, status_line, wait_file, Delegated, User};
use common::{stderr, stdout, unique_id};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A directory the user owns, bound at /out in the container (container root is the user, so
/// it may write there).
fn out_dir(u: &User, b: &Path) -> PathBuf {
    let out = b.join("out");
    std::fs::create_dir(&out).unwrap();
    u.chown(&out);
    edit(b, |c| {
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/out", "source": out, "options": ["bind"]}));
    });
    std::fs::create_dir(b.join("rootfs/out")).unwrap();
    u.chown(&b.join("rootfs/out"));
    out
}

// The whole lifecycle as an unprivileged user with a `spec --rootless` bundle and no flags:
// state in $XDG_RUNTIME_DIR/ruse, maps as configured from inside and from the host, the
// container's root is the user on the host, no cgroup where none is delegated, ps/kill/delete.
#[test]
fn rootless_lifecycle() {
    if !common::root_or_skip() {
        return;
    }
    let u = User::new();
    let b = u.bundle(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map > /out/log; id -u >> /out/log; hostname >> /out/log; \
         touch /sys/x 2>> /out/log; touch /sys/fs/cgroup/x 2>> /out/log; echo ready >> /out/log; exec sleep 1000",
    ]);
    let out = out_dir(&u, &b);
    let id = &unique_id("life");
    let r = u.ruse(&["--debug", "create", "--bundle", b.to_str().unwrap(), id]);
    assert!(r.status.success(), "create: {}", stderr(&r));
    assert!(
        u.state_root().join(id).is_dir(),
        "state not under XDG_RUNTIME_DIR"
    );
    let st = u.state(id);
    assert_eq!(st["status"], "created");
    let pid = st["pid"].as_i64().unwrap();
    let cg_dirs = common::cgroup_dirs_named(id);
    let err = stderr(&r);
    assert!(
        err.contains("runs without a cgroup") || !cg_dirs.is_empty(),
        "no cgroup and no debug line: {err}"
    );
    let own = |id: u32| vec![vec!["0".to_string(), id.to_string(), "1".to_string()]];
    let host_uid = std::fs::read_to_string(format!("/proc/{pid}/uid_map")).unwrap();
    assert_eq!(rows(&host_uid), own(u.uid), "{host_uid}");
    let host_gid = std::fs::read_to_string(format!("/proc/{pid}/gid_map")).unwrap();
    assert_eq!(rows(&host_gid), own(u.gid), "{host_gid}");
    let r = u.ruse(&["start", id]);
    assert!(r.status.success(), "start: {}", stderr(&r));
    u.wait_status(id, "running");
    let log = wait_file(&out.join("log"));
    let lines: Vec<&str> = log.lines().collect();
    assert_eq!(
        rows(&lines[..2].join("\n")),
        [own(u.uid), own(u.gid)].concat()
    );
    assert_eq!(lines[2], "0", "{log}");
    assert_eq!(lines[3], "ruse", "{log}");
    assert!(
        lines[4].contains("/sys/x") && lines[4].contains("Read-only"),
        "{log}"
    );
    assert!(
        lines[5].contains("/sys/fs/cgroup/x") && lines[5].contains("Read-only"),
        "{log}"
    );
    assert_eq!(status_line(pid, "Uid:")[0], u.uid.to_string());
    let r = u.ruse(&["ps", "--format", "json", id]);
    assert!(r.status.success(), "ps: {}", stderr(&r));
    let pids: Vec<i64> = serde_json::from_slice(&r.stdout).unwrap();
    assert_eq!(pids, [pid]);
    let r = u.ruse(&["list", "--quiet"]);
    assert_eq!(stdout(&r).trim(), id);
    if cg_dirs.is_empty() {
        // What needs a cgroup says it has none.
        for args in [
            &["update", "--memory", "64m", id][..],
            &["pause", id],
            &["events", "--stats", id],
        ] {
            let r = u.ruse(args);
            common::assert_error(&format!("{args:?}"), &r, &["no cgroup"]);
        }
    }
    let r = u.ruse(&["kill", id, "KILL"]);
    assert!(r.status.success(), "kill: {}", stderr(&r));
    u.wait_status(id, "stopped");
    let r = u.ruse(&["delete", id]);
    assert!(r.status.success(), "delete: {}", stderr(&r));
    u.assert_clean(id);
}

// More than its own id: the maps go through newuidmap/newgidmap (the /etc/subuid range), so
// the container has 65537 ids, its process user 1000 is a subordinate id on the host, and
// setgroups stays allowed (additionalGids work).
#[test]
fn rootless_subordinate_ranges() {
    if !common::root_or_skip() {
        return;
    }
    let u = User::new();
    let b = u.bundle(&[
        "sh",
        "-c",
        "cat /proc/self/uid_map /proc/self/gid_map /proc/self/setgroups; id -u; id -G; echo ready",
    ]);
    let map = |own: u32| {
        json!([{"containerID": 0, "hostID": own, "size": 1},
               {"containerID": 1, "hostID": u.sub, "size": 65536}])
    };
    edit(&b, |c| {
        c["linux"]["uidMappings"] = map(u.uid);
        c["linux"]["gidMappings"] = map(u.gid);
        c["process"]["user"] = json!({"uid": 1000, "gid": 1000, "additionalGids": [5]});
    });
    let id = unique_id("subids");
    let r = u.ruse(&["run", "--bundle", b.to_str().unwrap(), &id]);
    let text = stdout(&r);
    assert!(r.status.success(), "run: {}{text}", stderr(&r));
    let l: Vec<&str> = text.lines().collect();
    let want = |own: u32| {
        vec![
            vec!["0".to_string(), own.to_string(), "1".to_string()],
            vec!["1".to_string(), u.sub.to_string(), "65536".to_string()],
        ]
    };
    assert_eq!(rows(&l[..2].join("\n")), want(u.uid), "{text}");
    assert_eq!(rows(&l[2..4].join("\n")), want(u.gid), "{text}");
    assert_eq!(l[4], "allow", "{text}");
    assert_eq!(l[5], "1000", "{text}");
    assert_eq!(l[6], "1000 5", "{text}");
    u.assert_clean(&id);
}

// The container's root is the user on the host: a host file owned by root stays out of reach.
#[test]
fn rootless_root_cannot_write_host_root_files() {
    if !common::root_or_skip() {
        return;
    }
    let u = User::new();
    let b = u.bundle(&[
        "sh",
        "-c",
        "stat -c %u /mnt/rootfile; echo pwned >> /mnt/rootfile || echo refused; echo ready",
    ]);
    let f = u.dir.join("rootfile");
    std::fs::write(&f, "host\n").unwrap();
    chmod(&f, 0o644);
    std::fs::create_dir(b.join("rootfs/mnt")).unwrap();
    std::fs::write(b.join("rootfs/mnt/rootfile"), "").unwrap();
    u.chown(&b.join("rootfs/mnt"));
    edit(&b, |c| {
        c["process"]["capabilities"] = json!({
            "bounding": ["CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_CHOWN"],
            "effective": ["CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_CHOWN"],
            "permitted": ["CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_CHOWN"]
        });
        c["mounts"]
            .as_array_mut()
            .unwrap()
            .push(json!({"destination": "/mnt/rootfile", "source": f, "options": ["bind"]}));
    });
    let id = unique_id("hostroot");
    let r = u.ruse(&["run", "--bundle", b.to_str().unwrap(), &id]);
    let text = stdout(&r);
    assert!(r.status.success(), "run: {}{text}", stderr(&r));
    let overflow = std::fs::read_to_string("/proc/sys/kernel/overflowuid").unwrap();
    assert_eq!(text.lines().next(), Some(overflow.trim()), "{text}");
    assert!(text.contains("refused"), "{text}");
    assert_eq!(std::fs::read_to_string(&f).unwrap(), "host\n");
    u.assert_clean(&id);
}

/// CVE-2023-25809: a rootless container could write the user's own cgroup tree on the host
/// (`/sys/fs/cgroup/user.slice/...`) when /sys/fs/cgroup reached it writable: with the host's
/// cgroup namespace, or through an `rbind,ro` of /sys (the `ro` holds for the top mount
/// only, not for the cgroup mounts under it). In each shape, either a clean refusal, or
/// every mount at or under /sys/fs/cgroup in the container's mountinfo is read-only (hidden
/// ones included: a mount over them can be unmounted, they can be reached again).
#[test]
fn rootless_every_cgroup_mount_is_read_only() {
    if !common::root_or_skip() {
        return;
    }
    let u = User::new();
    let shapes: [(&str, Edit); 3] = [
        ("spec --rootless", Box::new(|_: &mut Value| {})),
        (
            "no cgroup namespace",
            Box::new(|c: &mut Value| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "cgroup")
            }),
        ),
        (
            "only /sys rbind,ro (no cgroup mount)",
            Box::new(|c: &mut Value| {
                c["mounts"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|m| m["destination"] != "/sys/fs/cgroup")
            }),
        ),
    ];
    let mut failures = Vec::new();
    for (shape, change) in shapes {
        let b = u.bundle(&["cat", "/proc/self/mountinfo"]);
        edit(&b, |c| change(c));
        let id = unique_id("cgro");
        let r = u.ruse(&["run", "--bundle", b.to_str().unwrap(), &id]);
        let info = stdout(&r);
        if !r.status.success() {
            // Refusing the shape is safe too (runc would bind the host's tree read-only).
            common::assert_error(shape, &r, &[]);
            eprintln!("{shape}: refused: {}", stderr(&r).trim());
            u.assert_clean(&id);
            continue;
        }
        let cgroup_mounts: Vec<&str> = info
            .lines()
            .filter(|l| {
                l.split(' ')
                    .nth(4)
                    .is_some_and(|m| m.starts_with("/sys/fs/cgroup"))
            })
            .collect();
        assert!(
            !cgroup_mounts.is_empty(),
            "{shape}: no cgroup mount: {info}"
        );
        let writable: Vec<&&str> = cgroup_mounts
            .iter()
            .filter(|l| {
                !l.split(' ')
                    .nth(5)
                    .is_some_and(|o| o.split(',').any(|o| o == "ro"))
            })
            .collect();
        if !writable.is_empty() {
            failures.push(format!(
                "{shape}: writable: {writable:#?}\nall cgroup mounts: {cgroup_mounts:#?}"
            ));
        }
        u.assert_clean(&id);
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A change to a config.
type Edit = Box<dyn Fn(&mut Value)>;

// What a rootless container cannot have: one clear error line each, nothing left behind.
#[test]
fn rootless_refusals() {
    if !common::root_or_skip() {
        return;
    }
    let u = User::new();
    let b = u.bundle(&["true"]);
    let base: Value =
        serde_json::from_slice(&std::fs::read(b.join("config.json")).unwrap()).unwrap();
    let (uid, sub) = (u.uid, u.sub);
    let cases: Vec<(Edit, Vec<String>)> = vec![
        (
            Box::new(move |c| {
                c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": uid, "size": 1},
                    {"containerID": 1, "hostID": 90_000_000u32, "size": 10}]);
            }),
            vec![
                "linux.uidMappings[1]".into(),
                "90000000-90000009".into(),
                "/etc/subuid".into(),
            ],
        ),
        (
            Box::new(move |c| {
                c["linux"]["gidMappings"] =
                    json!([{"containerID": 0, "hostID": sub, "size": 65537}]);
            }),
            vec!["linux.gidMappings[0]".into(), "/etc/subgid".into()],
        ),
        (
            Box::new(|c| c["linux"]["resources"] = json!({"memory": {"limit": 100_000_000}})),
            vec![
                "linux.resources.memory".into(),
                "rootless".into(),
                "cgroup".into(),
            ],
        ),
        (
            Box::new(|c| {
                c["linux"]["namespaces"]
                    .as_array_mut()
                    .unwrap()
                    .retain(|n| n["type"] != "user");
                c["linux"].as_object_mut().unwrap().remove("uidMappings");
                c["linux"].as_object_mut().unwrap().remove("gidMappings");
            }),
            vec!["linux.namespaces".into(), "user namespace".into()],
        ),
        (
            Box::new(|c| {
                c["mounts"].as_array_mut().unwrap().push(json!({
                    "destination": "/mnt", "source": "/tmp", "options": ["bind", "idmap"]}));
            }),
            vec!["mounts[7]".into(), "id-mapped".into(), "rootless".into()],
        ),
        (
            Box::new(|c| {
                c["annotations"] = json!({"ruse.network.mode": "bridge"});
                let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
                ns.push(json!({"type": "network"}));
            }),
            vec!["ruse.network.mode".into(), "rootless".into()],
        ),
    ];
    for (i, (f, wants)) in cases.into_iter().enumerate() {
        let mut c = base.clone();
        f(&mut c);
        std::fs::write(b.join("config.json"), c.to_string()).unwrap();
        let id = unique_id(&format!("bad{i}"));
        let r = u.ruse(&["run", "--bundle", b.to_str().unwrap(), &id]);
        let w: Vec<&str> = wants.iter().map(String::as_str).collect();
        common::assert_error(&format!("case {i}"), &r, &w);
        u.assert_clean(&id);
        assert!(common::cgroup_dirs_named(&id).is_empty());
    }
    // --rootless is checked, and false means cgroups are not skipped (and so not writable).
    let r = u.ruse(&["--rootless", "maybe", "list"]);
    common::assert_error("--rootless maybe", &r, &["--rootless", "maybe"]);
    std::fs::write(b.join("config.json"), base.to_string()).unwrap();
    let id = unique_id("notrootless");
    let r = u.ruse(&[
        "--rootless",
        "false",
        "run",
        "--bundle",
        b.to_str().unwrap(),
        &id,
    ]);
    common::assert_error("--rootless false", &r, &["cgroup", "Permission denied"]);
    u.assert_clean(&id);
    assert!(common::cgroup_dirs_named(&id).is_empty());
}

// On a pure cgroup v2 host with a delegated cgroup (what a systemd user session gives), a
// rootless container gets a cgroup of its own there, with its limits; delete removes it.
// Hybrid and v1 hosts have nothing to delegate: `just vm-test` runs this on pure v2.
#[test]
fn rootless_delegated_cgroup_v2() {
    if !common::root_or_skip() {
        return;
    }
    if !common::cgroup::pure_v2() {
        eprintln!("skipped: needs a pure cgroup v2 host (just vm-test runs it there)");
        return;
    }
    let u = User::new();
    let deleg = Delegated::new(&u);
    let b = u.bundle(&["sleep", "1000"]);
    edit(&b, |c| {
        c["linux"]["resources"] = json!({"memory": {"limit": 104_857_600}, "pids": {"limit": 42}});
    });
    let id = unique_id("deleg");
    let r = u.ruse_in(
        Some(&deleg.0.join("runtime")),
        &["create", "--bundle", b.to_str().unwrap(), &id],
    );
    assert!(r.status.success(), "create: {}", stderr(&r));
    let pid = u.state(&id)["pid"].as_i64().unwrap();
    let cg = deleg.0.join(&id);
    let procs = std::fs::read_to_string(cg.join("cgroup.procs")).unwrap();
    assert_eq!(procs.trim(), pid.to_string());
    let read = |f: &str| {
        std::fs::read_to_string(cg.join(f))
            .unwrap()
            .trim()
            .to_string()
    };
    assert_eq!(read("memory.max"), "104857600");
    assert_eq!(read("pids.max"), "42");
    let r = u.ruse(&["delete", "--force", &id]);
    assert!(r.status.success(), "delete: {}", stderr(&r));
    assert!(!cg.exists(), "cgroup {} left behind", cg.display());
    u.assert_clean(&id);
}

// podman's rootless pods: the container joins a user namespace the user made, and a network
// namespace that user namespace owns (which an unprivileged runtime can only join from inside
// it), with a new pid namespace of its own (which then belongs to the joined user namespace).
#[test]
fn rootless_joins_a_user_namespace_and_what_it_owns() {
    if !common::root_or_skip() {
        return;
    }
    let u = User::new();
    let mut holder = Command::new("setpriv")
        .args([
            "--reuid",
            &u.uid.to_string(),
            "--regid",
            &u.gid.to_string(),
            "--init-groups",
        ])
        .args([
            "unshare",
            "--user",
            "--map-root-user",
            "--net",
            "sleep",
            "1000",
        ])
        .stdin(Stdio::null())
        .spawn()
        .unwrap();
    let h = holder.id();
    let end = Instant::now() + Duration::from_secs(5);
    while rows(&std::fs::read_to_string(format!("/proc/{h}/uid_map")).unwrap_or_default())
        != vec![vec!["0".to_string(), u.uid.to_string(), "1".to_string()]]
    {
        assert!(Instant::now() < end, "the holder never mapped its root");
        std::thread::sleep(Duration::from_millis(10));
    }
    let b = u.bundle(&["sh", "-c", "echo pid=$$; readlink /proc/self/ns/net"]);
    edit(&b, |c| {
        let ns = c["linux"]["namespaces"].as_array_mut().unwrap();
        ns.retain(|n| n["type"] != "user");
        ns.push(json!({"type": "user", "path": format!("/proc/{h}/ns/user")}));
        ns.push(json!({"type": "network", "path": format!("/proc/{h}/ns/net")}));
        let l = c["linux"].as_object_mut().unwrap();
        l.remove("uidMappings");
        l.remove("gidMappings");
    });
    let id = unique_id("joined");
    let r = u.ruse(&["run", "--bundle", b.to_str().unwrap(), &id]);
    let text = stdout(&r);
    let net = std::fs::read_link(format!("/proc/{h}/ns/net")).unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    assert!(r.status.success(), "run: {}{text}", stderr(&r));
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.first(), Some(&"pid=1"), "{text}");
    assert_eq!(lines.get(1).copied(), net.to_str(), "{text}");
    u.assert_clean(&id);
}

// podman's rootless mode: the runtime runs as root of a user namespace the user made with its
// subordinate ids (here `unshare --map-root-user --map-auto`). State still goes to
// $XDG_RUNTIME_DIR, cgroups are skipped, and a container may map what that namespace maps.
#[test]
fn rootless_as_root_of_a_user_namespace() {
    if !common::root_or_skip() {
        return;
    }
    let u = User::new();
    let b = u.bundle(&["sh", "-c", "cat /proc/self/uid_map; id -u"]);
    edit(&b, |c| {
        let m = json!([{"containerID": 0, "hostID": 1, "size": 65535}]);
        c["linux"]["uidMappings"] = m.clone();
        c["linux"]["gidMappings"] = m;
    });
    let id = unique_id("nested");
    let run = |args: &[&str]| {
        Command::new("setpriv")
            .args([
                "--reuid",
                &u.uid.to_string(),
                "--regid",
                &u.gid.to_string(),
                "--init-groups",
            ])
            .args(["unshare", "--user", "--map-root-user", "--map-auto"])
            .arg(u.dir.join("ruse"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", u.dir.join("xdg"))
            .env("USER", &u.name)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    };
    let r = run(&["--debug", "run", "--bundle", b.to_str().unwrap(), &id]);
    let text = stdout(&r);
    assert!(r.status.success(), "run: {}{text}", stderr(&r));
    // Container 0 is id 1 of the outer namespace, which is the user's first subordinate id.
    let l = rows(&text);
    assert_eq!(l[0], ["0", "1", "65535"], "{text}");
    assert_eq!(l[1], ["0"], "{text}");
    assert!(
        stderr(&r).contains("runs without a cgroup"),
        "{}",
        stderr(&r)
    );
    // Beyond what the outer namespace maps: refused before anything is made.
    edit(&b, |c| {
        c["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 1, "size": 65536}]);
    });
    let r = run(&["run", "--bundle", b.to_str().unwrap(), &id]);
    common::assert_error(
        "beyond the outer map",
        &r,
        &["linux.uidMappings[0]", "/proc/self/uid_map"],
    );
    u.assert_clean(&id);
}
