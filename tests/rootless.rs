//! Rootless ruse: every check runs ruse as a throwaway unprivileged user the test creates
//! (`useradd`, a subordinate id range through `usermod --add-subuids/--add-subgids`) with its
//! own `XDG_RUNTIME_DIR`, a copy of the binary and a bundle it owns, and removes the user, its
//! id ranges and files afterwards. What is asserted is what the kernel shows: the maps from
//! inside and from the host, the host ids of the container's processes, a host file the
//! container's root cannot write. Needs root (to make the user); newuidmap/newgidmap from the
//! Debian package `uidmap`.

mod common;

use common::{stderr, stdout, unique_id, RUSE};
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// A throwaway user with a subordinate id range, a home for its state, binary and bundle.
struct User {
    name: String,
    uid: u32,
    gid: u32,
    /// First id of its 65536 subordinate uids and gids.
    sub: u32,
    dir: PathBuf,
}

/// Runs a shadow-utils command, retrying while another one holds the passwd lock.
fn shadow(args: &[&str]) {
    let mut last = String::new();
    for _ in 0..50 {
        let out = Command::new(args[0]).args(&args[1..]).output().unwrap();
        if out.status.success() {
            return;
        }
        last = stderr(&out);
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("{args:?}: {last}");
}

fn id_of(name: &str, flag: &str) -> u32 {
    let out = Command::new("id").args([flag, name]).output().unwrap();
    stdout(&out).trim().parse().unwrap()
}

impl User {
    fn new() -> User {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let name = format!("rl{}x{n}", std::process::id());
        let sub = 400_000 + (((std::process::id() % 1000) * 8 + n as u32 % 8) * 65_536);
        shadow(&[
            "useradd",
            "--no-create-home",
            "--user-group",
            "--shell",
            "/bin/sh",
            &name,
        ]);
        let range = format!("{sub}-{}", sub + 65_535);
        shadow(&[
            "usermod",
            "--add-subuids",
            &range,
            "--add-subgids",
            &range,
            &name,
        ]);
        let dir = std::env::temp_dir().join(format!("ruse-rl-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("xdg")).unwrap();
        // The repository (and so the test binary) need not be reachable by the user.
        std::fs::copy(RUSE, dir.join("ruse")).unwrap();
        let u = User {
            uid: id_of(&name, "-u"),
            gid: id_of(&name, "-g"),
            name,
            sub,
            dir,
        };
        chmod(&u.dir, 0o755);
        chmod(&u.dir.join("xdg"), 0o700);
        chmod(&u.dir.join("ruse"), 0o755);
        u.chown(&u.dir);
        u
    }

    fn chown(&self, p: &Path) {
        let st = Command::new("chown")
            .args(["-R", &format!("{}:{}", self.uid, self.gid)])
            .arg(p)
            .status()
            .unwrap();
        assert!(st.success());
    }

    fn state_root(&self) -> PathBuf {
        self.dir.join("xdg/ruse")
    }

    /// ruse as this user, no `--root` (the default must be $XDG_RUNTIME_DIR/ruse). Output of
    /// verbs that leave a container running goes to files, as in `Env::ruse`.
    fn ruse(&self, args: &[&str]) -> Output {
        self.ruse_in(None, args)
    }

    /// `ruse` as this user, started in cgroup `cg` (a v2 directory) when given.
    fn ruse_in(&self, cg: Option<&Path>, args: &[&str]) -> Output {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.dir.join(format!("out{n}.txt")),
            self.dir.join(format!("err{n}.txt")),
        );
        let mut cmd = match cg {
            // Root's shell moves itself into the cgroup, then becomes the user's ruse.
            Some(cg) => {
                let mut c = Command::new("/bin/sh");
                c.args(["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\""])
                    .arg(cg)
                    .arg("setpriv");
                c
            }
            None => Command::new("setpriv"),
        };
        let status = cmd
            .args([
                "--reuid",
                &self.uid.to_string(),
                "--regid",
                &self.gid.to_string(),
                "--init-groups",
                "--",
            ])
            .arg(self.dir.join("ruse"))
            .args(args)
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
            .env("XDG_RUNTIME_DIR", self.dir.join("xdg"))
            .env("USER", &self.name)
            .env("HOME", &self.dir)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&o).unwrap())
            .stderr(std::fs::File::create(&e).unwrap())
            .status()
            .unwrap();
        Output {
            status,
            stdout: std::fs::read(&o).unwrap(),
            stderr: std::fs::read(&e).unwrap(),
        }
    }

    /// A busybox bundle the user owns, with the config `ruse spec --rootless` writes for it
    /// (run as the user), `terminal` off and `args`.
    fn bundle(&self, args: &[&str]) -> PathBuf {
        let env = common::Env::new(&["true"]);
        let b = self
            .dir
            .join(format!("bundle{}", SEQ.fetch_add(1, Ordering::SeqCst)));
        let st = Command::new("cp")
            .arg("-a")
            .arg(env.bundle())
            .arg(&b)
            .status()
            .unwrap();
        assert!(st.success());
        std::fs::remove_file(b.join("config.json")).unwrap();
        self.chown(&b);
        let out = self.ruse(&["spec", "--rootless", "--bundle", b.to_str().unwrap()]);
        assert!(out.status.success(), "spec --rootless: {}", stderr(&out));
        edit(&b, |c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = args.iter().map(|s| Value::from(*s)).collect();
        });
        b
    }

    /// Live processes of this user (the container's: its root is the user). Zombies are left
    /// out: a killed init that outlived `ruse create` is reaped by the host's init.
    fn processes(&self) -> Vec<i32> {
        let uid = self.uid.to_string();
        common::all_pids()
            .into_iter()
            .filter(|p| {
                let s = std::fs::read_to_string(format!("/proc/{p}/status")).unwrap_or_default();
                let field = |f: &str| {
                    s.lines()
                        .find(|l| l.starts_with(f))
                        .and_then(|l| l.split_whitespace().nth(1).map(str::to_string))
                };
                field("Uid:").as_deref() == Some(uid.as_str())
                    && field("State:").as_deref() != Some("Z")
            })
            .collect()
    }

    fn state(&self, id: &str) -> Value {
        let out = self.ruse(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn wait_status(&self, id: &str, want: &str) {
        let end = Instant::now() + Duration::from_secs(10);
        while self.state(id)["status"] != want {
            assert!(Instant::now() < end, "{id} never became {want}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Nothing of container `id` left: no state dir, no process of the user.
    fn assert_clean(&self, id: &str) {
        assert!(
            !self.state_root().join(id).exists(),
            "state dir of {id} left behind"
        );
        assert!(
            self.processes().is_empty(),
            "processes left: {:?}",
            self.processes()
        );
    }
}

impl Drop for User {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(self.state_root()) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.ruse(&["delete", "--force", &id]);
            }
        }
        for pid in self.processes() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .status();
        }
        let _ = Command::new("userdel").arg(&self.name).output();
        for f in ["/etc/subuid", "/etc/subgid"] {
            // userdel drops the user's ranges; make sure, under the same lock it takes.
            let text = std::fs::read_to_string(f).unwrap_or_default();
            if text
                .lines()
                .any(|l| l.starts_with(&format!("{}:", self.name)))
            {
                let _ = Command::new("usermod")
                    .args([
                        "--del-subuids",
                        "0-4294967294",
                        "--del-subgids",
                        "0-4294967294",
                    ])
                    .arg(&self.name)
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn edit(bundle: &Path, f: impl FnOnce(&mut Value)) {
    let p = bundle.join("config.json");
    let mut c: Value = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
    f(&mut c);
    std::fs::write(&p, c.to_string()).unwrap();
}

fn rows(text: &str) -> Vec<Vec<String>> {
    text.lines()
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .filter(|r: &Vec<String>| !r.is_empty())
        .collect()
}

fn status_line(pid: i64, field: &str) -> Vec<String> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    s.lines()
        .find(|l| l.starts_with(field))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .map(str::to_string)
        .collect()
}

/// Waits until `file` exists and has a line "ready".
fn wait_file(file: &Path) -> String {
    let end = Instant::now() + Duration::from_secs(10);
    loop {
        let t = std::fs::read_to_string(file).unwrap_or_default();
        if t.contains("ready") {
            return t;
        }
        assert!(
            Instant::now() < end,
            "{} never got ready: {t}",
            file.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

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

/// A cgroup v2 directory delegated to a user (as systemd's Delegate=yes: the directory and its
/// cgroup.procs, cgroup.subtree_control and cgroup.threads are the user's), with a leaf
/// `runtime` for the user's ruse to run in. Removed on drop.
struct Delegated(PathBuf);

impl Delegated {
    fn new(u: &User) -> Delegated {
        let d = Path::new("/sys/fs/cgroup").join(unique_id("deleg"));
        std::fs::create_dir(&d).unwrap();
        std::fs::create_dir(d.join("runtime")).unwrap();
        for p in [
            d.clone(),
            d.join("cgroup.procs"),
            d.join("cgroup.subtree_control"),
            d.join("cgroup.threads"),
            d.join("runtime"),
            d.join("runtime/cgroup.procs"),
        ] {
            std::os::unix::fs::chown(&p, Some(u.uid), Some(u.gid)).unwrap();
        }
        Delegated(d)
    }
}

impl Drop for Delegated {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(self.0.join("runtime"));
        let _ = std::fs::remove_dir(&self.0);
    }
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
