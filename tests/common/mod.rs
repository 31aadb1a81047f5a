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
    /// Host mountinfo line count when the env was made (nothing may be left mounted).
    mounts_before: usize,
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
            mounts_before: mount_count(),
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
        let n = SEQ.fetch_add(1, Ordering::SeqCst);
        let (o, e) = (
            self.dir.join(format!("out{n}.txt")),
            self.dir.join(format!("err{n}.txt")),
        );
        let status = self
            .cmd()
            .args(args)
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
    /// whose root is in this bundle, and no new host mounts.
    pub fn assert_clean(&self, id: &str) {
        assert!(
            !self.root.join(id).exists(),
            "state dir {} left behind",
            self.root.join(id).display()
        );
        let cg = cgroup_dirs_named(id);
        assert!(cg.is_empty(), "cgroups left behind: {cg:?}");
        let procs = processes_rooted_in(&self.rootfs());
        assert!(procs.is_empty(), "processes left behind: {procs:?}");
        let now = mount_count();
        assert!(
            now <= self.mounts_before,
            "host mounts grew from {} to {now}",
            self.mounts_before
        );
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

/// Pids of processes whose root directory is `rootfs` (the container's processes).
pub fn processes_rooted_in(rootfs: &Path) -> Vec<i32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if let Ok(r) = std::fs::read_link(format!("/proc/{pid}/root")) {
            if r == rootfs {
                out.push(pid);
            }
        }
    }
    out
}
pub mod cgroup;
