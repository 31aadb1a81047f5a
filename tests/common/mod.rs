//! Shared harness of the black-box tests: a private state root and a busybox bundle per test,
//! ruse run as a child process, and the "nothing left behind" checks (state dir, cgroup
//! directories, mounts, processes) that every failure path must pass.
//!
//! Tests need root. Where they cannot run (not root) they skip, except with `CI=true`, where a
//! skip is a failure (DESIGN.md habit 7).
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

pub const RUSE: &str = env!("CARGO_BIN_EXE_ruse");

static SEQ: AtomicUsize = AtomicUsize::new(0);

/// True when the test may run; false (skip) when not root outside CI. Panics in CI.
pub fn root_or_skip() -> bool {
    // SAFETY-free: geteuid via /proc to keep tests free of unsafe.
    let uid = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(str::to_string))
        })
        .unwrap_or_default();
    if uid == "0" {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("these tests need root, and CI=true forbids skipping them");
    }
    eprintln!("skipped: needs root");
    false
}

/// A unique container id for this test process (ids share the host's cgroup namespace).
pub fn unique_id(tag: &str) -> String {
    format!(
        "t{}-{}-{tag}",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::SeqCst)
    )
}

pub struct Env {
    pub dir: PathBuf,
    pub root: PathBuf,
    /// Host mount points when the env was made (nothing may be left mounted).
    mounts_before: Vec<String>,
}

impl Env {
    /// A private state root and a bundle whose rootfs is the host's static busybox, from
    /// `ruse spec` with `terminal: false` and `args`.
    pub fn new(args: &[&str]) -> Env {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("ruse-t-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let rootfs = dir.join("bundle/rootfs");
        for d in ["bin", "proc", "sys", "dev", "tmp", "etc", "root"] {
            std::fs::create_dir_all(rootfs.join(d)).unwrap();
        }
        std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
            .expect("busybox-static must be installed");
        let applets = Command::new("/bin/busybox").arg("--list").output().unwrap();
        for a in String::from_utf8_lossy(&applets.stdout).lines() {
            if a != "busybox" {
                std::os::unix::fs::symlink("busybox", rootfs.join("bin").join(a)).unwrap();
            }
        }
        std::fs::write(
            rootfs.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
        )
        .unwrap();
        std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n").unwrap();
        let out = Command::new(RUSE)
            .args(["spec", "-b"])
            .arg(dir.join("bundle"))
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let env = Env {
            root: dir.join("state"),
            dir,
            mounts_before: mount_points(),
        };
        env.edit(|c| {
            c["process"]["terminal"] = false.into();
            c["process"]["args"] = args.iter().map(|s| Value::from(*s)).collect();
        });
        env
    }

    pub fn bundle(&self) -> PathBuf {
        self.dir.join("bundle")
    }

    pub fn rootfs(&self) -> PathBuf {
        self.dir.join("bundle/rootfs")
    }

    pub fn config(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.bundle().join("config.json")).unwrap()).unwrap()
    }

    /// Changes config.json in place.
    pub fn edit(&self, f: impl FnOnce(&mut Value)) {
        let mut c = self.config();
        f(&mut c);
        std::fs::write(self.bundle().join("config.json"), c.to_string()).unwrap();
    }

    /// Writes config.json verbatim (for malformed-input tests).
    pub fn write_config(&self, text: &str) {
        std::fs::write(self.bundle().join("config.json"), text).unwrap();
    }

    /// A `Command` for ruse with this env's `--root`.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(RUSE);
        c.arg("--root").arg(&self.root);
        c
    }

    /// Runs ruse to completion. A created or detached container inherits ruse's stdio (as
    /// with runc), so for those verbs output goes to files, not pipes the test would wait on.
    pub fn ruse(&self, args: &[&str]) -> Output {
        let detaches = args.first().is_some_and(|v| *v == "create")
            || (args.first() == Some(&"run")
                && args.iter().any(|a| *a == "-d" || *a == "--detach"));
        if !detaches {
            return self.cmd().args(args).stdin(Stdio::null()).output().unwrap();
        }
        self.output_via_files(self.cmd().args(args))
    }

    /// `wrapper… ruse --root <root> args…` (e.g. `ip netns exec NS`), output through files.
    pub fn ruse_via(&self, wrapper: &[&str], args: &[&str]) -> Output {
        let mut c = Command::new(wrapper[0]);
        c.args(&wrapper[1..])
            .arg(RUSE)
            .arg("--root")
            .arg(&self.root)
            .args(args);
        self.output_via_files(&mut c)
    }

    /// Runs `c` with stdout and stderr in files (safe for commands that leave children).
    pub fn output_via_files(&self, c: &mut Command) -> Output {
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.dir.join(format!("out{n}.txt")),
            self.dir.join(format!("err{n}.txt")),
        );
        let status = c
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

    /// `create --bundle <bundle> id`, asserted to succeed.
    pub fn create(&self, id: &str) {
        let b = self.bundle();
        let out = self.ruse(&["create", "--bundle", b.to_str().unwrap(), id]);
        assert!(out.status.success(), "create {id}: {}", stderr(&out));
    }

    /// Foreground `run` with the container's stdout/stderr captured.
    pub fn run(&self, id: &str) -> Output {
        let b = self.bundle();
        self.ruse(&["run", "--bundle", b.to_str().unwrap(), id])
    }

    pub fn state(&self, id: &str) -> Value {
        let out = self.ruse(&["state", id]);
        assert!(out.status.success(), "state {id}: {}", stderr(&out));
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Waits (up to 5 s) until `state` says `status`.
    pub fn wait_status(&self, id: &str, status: &str) {
        let end = Instant::now() + Duration::from_secs(5);
        while Instant::now() < end {
            if self.state(id)["status"] == status {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("{id} never became {status}: {}", self.state(id));
    }

    /// Asserts that no trace of container `id` is left: state dir, cgroup dirs, processes
    /// of this bundle (by root, or by a mount namespace holding its rootfs), and no new host
    /// mounts on this env's paths or on `/`. (Mounts elsewhere may be other tests' doing:
    /// the machine is shared.)
    pub fn assert_clean(&self, id: &str) {
        assert!(
            id.is_empty() || !self.root.join(id).exists(),
            "state dir {} left behind",
            self.root.join(id).display()
        );
        // Nor the temporary directory a create makes before naming it `<id>`.
        let unnamed: Vec<_> = std::fs::read_dir(&self.root)
            .map(|rd| {
                rd.filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !id.is_empty() && n.starts_with(&format!("~{id}~")))
                    .collect()
            })
            .unwrap_or_default();
        assert!(
            unnamed.is_empty(),
            "unnamed state dirs left behind: {unnamed:?}"
        );
        let cg = cgroup_dirs_named(id);
        assert!(cg.is_empty(), "cgroups left behind: {cg:?}");
        let procs = processes_of(&self.rootfs());
        assert!(procs.is_empty(), "processes left behind: {procs:?}");
        let new = self.new_mounts();
        assert!(new.is_empty(), "host mounts left behind: {new:?}");
    }

    /// Host mount points made since this env was, on its own paths or on `/`.
    pub fn new_mounts(&self) -> Vec<String> {
        // Path-wise: /tmp/ruse-t-1-10 is not under /tmp/ruse-t-1-1 (another test's env).
        mount_points()
            .into_iter()
            .filter(|m| !self.mounts_before.contains(m))
            .filter(|m| m == "/" || Path::new(m).starts_with(&self.dir))
            .collect()
    }

    /// Removes the entry of `mounts` whose destination is `dest` (e.g. to expose the image's
    /// own `/dev`).
    pub fn drop_mount(&self, dest: &str) {
        self.edit(|c| {
            c["mounts"]
                .as_array_mut()
                .unwrap()
                .retain(|m| m["destination"] != dest)
        });
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        if let Ok(rd) = std::fs::read_dir(&self.root) {
            for e in rd.flatten() {
                let id = e.file_name().to_string_lossy().into_owned();
                let _ = self.ruse(&["delete", "--force", &id]);
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Lines in the host's (this process's) mountinfo.
pub fn mount_count() -> usize {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .count()
}

/// Mount points of the host (this process's mount namespace), one per mount, unescaped
/// only as far as mountinfo's octal escapes go.
pub fn mount_points() -> Vec<String> {
    std::fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .filter_map(|l| l.split(' ').nth(4).map(str::to_string))
        .collect()
}

/// Every directory named `id` anywhere under /sys/fs/cgroup (depth-limited walk).
pub fn cgroup_dirs_named(id: &str) -> Vec<PathBuf> {
    fn walk(dir: &Path, id: &str, depth: usize, out: &mut Vec<PathBuf>) {
        if depth == 0 {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let p = e.path();
            if e.file_name() == id {
                out.push(p.clone());
            }
            walk(&p, id, depth - 1, out);
        }
    }
    let mut out = Vec::new();
    walk(Path::new("/sys/fs/cgroup"), id, 6, &mut out);
    out
}

/// Pids of the container's processes: rooted in `rootfs`, or (an init that has not pivoted
/// yet) in another mount namespace that has `rootfs` mounted.
pub fn processes_of(rootfs: &Path) -> Vec<i32> {
    let own_ns = std::fs::read_link("/proc/self/ns/mnt").ok();
    let needle = format!(" {} ", rootfs.display());
    // The root's inode identifies it from any mount namespace; the path in mountinfo only
    // when the rootfs lies on the host's root filesystem (not so in the VM of vm-test).
    let ino = |p: &Path| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
    };
    let want = ino(rootfs);
    let mut out = Vec::new();
    for pid in all_pids() {
        let root = PathBuf::from(format!("/proc/{pid}/root"));
        if std::fs::read_link(&root).is_ok_and(|r| r == rootfs)
            || (want.is_some() && ino(&root) == want)
        {
            out.push(pid);
            continue;
        }
        let ns = std::fs::read_link(format!("/proc/{pid}/ns/mnt")).ok();
        if ns.is_none() || ns == own_ns {
            continue;
        }
        let info = std::fs::read_to_string(format!("/proc/{pid}/mountinfo")).unwrap_or_default();
        if info.lines().any(|l| l.contains(&needle)) {
            out.push(pid);
        }
    }
    out
}

/// Every pid in /proc (processes may vanish while the caller looks at them).
pub fn all_pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// Asserts the shape every runtime error must have: exit code 1, exactly one `ruse:` error
/// line (warnings aside), no panic, and each of `wants` in that line.
pub fn assert_error(what: &str, out: &Output, wants: &[&str]) {
    let err = stderr(out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{what}: exit status; stderr: {err}"
    );
    assert!(!err.contains("panicked"), "{what}: panic: {err}");
    let lines: Vec<&str> = err
        .lines()
        .filter(|l| !l.starts_with("ruse: warning") && !l.contains("level=warning"))
        .collect();
    assert_eq!(lines.len(), 1, "{what}: one error line wanted: {err}");
    for w in wants {
        assert!(lines[0].contains(w), "{what}: {w:?} missing from: {err}");
    }
}
pub mod bpf;
pub mod cgroup;
pub mod user;

/// Removes a directory the test made (a cgroup), also when the test fails.
pub struct RmDirOnDrop(pub PathBuf);

impl Drop for RmDirOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
