//! cgroup helpers for the black-box tests, independent of ruse's own code: where a process's
//! cgroup for a controller is, read from `/proc/<pid>/cgroup` and this process's mount table,
//! and whether that hierarchy is v1 or v2. The same tests then check v1 or v2 files, so they
//! run unchanged on hybrid hosts and on pure cgroup v2 (the VM harness).

use std::path::{Path, PathBuf};

/// A process's directory in the hierarchy serving one controller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgDir {
    pub path: PathBuf,
    pub v2: bool,
}

impl CgDir {
    /// A knob's value, trimmed; panics with the path when it cannot be read.
    pub fn read(&self, file: &str) -> String {
        let p = self.path.join(file);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
            .trim()
            .to_string()
    }

    pub fn has(&self, file: &str) -> bool {
        self.path.join(file).exists()
    }
}

/// (mount point, fstype, super options) of the visible cgroup mounts.
fn mounts() -> Vec<(PathBuf, String, Vec<String>)> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let mut all: Vec<(PathBuf, String, Vec<String>)> = Vec::new();
    for l in text.lines() {
        let Some((pre, post)) = l.split_once(" - ") else {
            continue;
        };
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        all.push((
            PathBuf::from(pre[4]),
            post[0].to_string(),
            post[2].split(',').map(str::to_string).collect(),
        ));
    }
    let mut out = Vec::new();
    for (i, m) in all.iter().enumerate() {
        let hidden = all[i + 1..].iter().any(|later| m.0.starts_with(&later.0));
        if !hidden && (m.1 == "cgroup" || m.1 == "cgroup2") {
            out.push(m.clone());
        }
    }
    out
}

/// The cgroup2 mount point, if any.
pub fn v2_mount() -> Option<PathBuf> {
    mounts().into_iter().find(|m| m.1 == "cgroup2").map(|m| m.0)
}

/// True when /sys/fs/cgroup itself is cgroup2 (no v1 controllers in use).
pub fn pure_v2() -> bool {
    v2_mount().as_deref() == Some(Path::new("/sys/fs/cgroup"))
}

/// Controllers the v2 tree offers at its root (plus the always-present pseudo ones).
pub fn v2_offers(ctrl: &str) -> bool {
    let Some(m) = v2_mount() else { return false };
    matches!(ctrl, "devices" | "freezer")
        || std::fs::read_to_string(m.join("cgroup.controllers"))
            .unwrap_or_default()
            .split_whitespace()
            .any(|c| c == ctrl)
}

/// Where `pid` sits for a controller: the v1 hierarchy binding `v1`, else the v2 tree when
/// it offers `v2`.
pub fn dir_of(pid: i32, v1: &str, v2: &str) -> Option<CgDir> {
    let own = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let ms = mounts();
    let mut v2_path = None;
    for l in own.lines() {
        let mut f = l.splitn(3, ':');
        let (_, ctrls, path) = (f.next()?, f.next()?, f.next()?);
        let path = path.trim_start_matches('/');
        if ctrls.is_empty() {
            v2_path = Some(path.to_string());
            continue;
        }
        if !pure_v2() && ctrls.split(',').any(|c| c == v1) {
            if let Some(m) = ms
                .iter()
                .find(|m| m.1 == "cgroup" && m.2.iter().any(|o| o == v1))
            {
                return Some(CgDir {
                    path: m.0.join(path),
                    v2: false,
                });
            }
        }
    }
    let m = v2_mount()?;
    let rel = v2_path?;
    v2_offers(v2).then(|| CgDir {
        path: m.join(rel),
        v2: true,
    })
}

/// The mount point of the hierarchy serving a controller (v1 binding it, else the v2 tree).
pub fn mount_for(v1: &str, v2: &str) -> Option<PathBuf> {
    if !pure_v2() {
        let v1m = mounts()
            .into_iter()
            .find(|m| m.1 == "cgroup" && m.2.iter().any(|o| o == v1));
        if let Some(m) = v1m {
            return Some(m.0);
        }
    }
    v2_mount().filter(|_| v2_offers(v2))
}

/// Every visible cgroup hierarchy's mount point.
pub fn hierarchy_mounts() -> Vec<PathBuf> {
    mounts().into_iter().map(|m| m.0).collect()
}
