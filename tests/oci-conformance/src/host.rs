//! What the host's kernel shows about a container: namespace inodes under `/proc/<pid>/ns`,
//! `/proc/<pid>/status` fields, mountinfo lines, cgroup paths; and small parsers for the same
//! files read from inside a container.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `net:[4026531840]` of `/proc/<pid>/ns/<ns>` (pid `self` allowed).
pub fn ns_id(pid: &str, ns: &str) -> String {
    std::fs::read_link(format!("/proc/{pid}/ns/{ns}"))
        .unwrap_or_else(|e| panic!("readlink /proc/{pid}/ns/{ns}: {e}"))
        .to_string_lossy()
        .into_owned()
}

/// A `Name:` field of `/proc/<pid>/status` text.
pub fn status_field(status: &str, name: &str) -> Option<String> {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .map(|v| v.trim().to_string())
}

pub fn proc_status(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"))
}

/// The test process's effective capability mask.
pub fn own_caps() -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status_field(&s, "CapEff")
        .and_then(|h| u64::from_str_radix(&h, 16).ok())
        .unwrap_or(0)
}

pub fn cap_number(name: &str) -> u32 {
    const NAMES: [&str; 41] = [
        "CHOWN",
        "DAC_OVERRIDE",
        "DAC_READ_SEARCH",
        "FOWNER",
        "FSETID",
        "KILL",
        "SETGID",
        "SETUID",
        "SETPCAP",
        "LINUX_IMMUTABLE",
        "NET_BIND_SERVICE",
        "NET_BROADCAST",
        "NET_ADMIN",
        "NET_RAW",
        "IPC_LOCK",
        "IPC_OWNER",
        "SYS_MODULE",
        "SYS_RAWIO",
        "SYS_CHROOT",
        "SYS_PTRACE",
        "SYS_PACCT",
        "SYS_ADMIN",
        "SYS_BOOT",
        "SYS_NICE",
        "SYS_RESOURCE",
        "SYS_TIME",
        "SYS_TTY_CONFIG",
        "MKNOD",
        "LEASE",
        "AUDIT_WRITE",
        "AUDIT_CONTROL",
        "SETFCAP",
        "MAC_OVERRIDE",
        "MAC_ADMIN",
        "SYSLOG",
        "WAKE_ALARM",
        "BLOCK_SUSPEND",
        "AUDIT_READ",
        "PERFMON",
        "BPF",
        "CHECKPOINT_RESTORE",
    ];
    let n = name.strip_prefix("CAP_").unwrap_or(name);
    NAMES
        .iter()
        .position(|x| *x == n)
        .unwrap_or_else(|| panic!("unknown capability {name}")) as u32
}

/// The `Cap*:` mask of a list of capability names.
pub fn cap_mask(names: &[&str]) -> u64 {
    names.iter().fold(0, |m, n| m | 1u64 << cap_number(n))
}

/// One parsed line of mountinfo.
#[derive(Debug, Clone)]
pub struct MountInfo {
    pub id: u64,
    pub parent: u64,
    pub root: String,
    pub mount_point: String,
    /// Per-mount options (`rw,nosuid,relatime`).
    pub options: Vec<String>,
    /// Optional fields (`shared:1`, `master:2`, `unbindable`).
    pub optional: Vec<String>,
    pub fstype: String,
    pub source: String,
    /// Superblock options (`rw,size=1024k,mode=755`).
    pub super_options: Vec<String>,
}

impl MountInfo {
    pub fn has(&self, opt: &str) -> bool {
        self.options.iter().any(|o| o == opt)
    }
    pub fn has_super(&self, opt: &str) -> bool {
        self.super_options.iter().any(|o| o == opt)
    }
    pub fn tag(&self, prefix: &str) -> bool {
        self.optional.iter().any(|o| o.starts_with(prefix))
    }
}

fn unescape(s: &str) -> String {
    s.replace("\\040", " ")
        .replace("\\011", "\t")
        .replace("\\012", "\n")
        .replace("\\134", "\\")
}

pub fn parse_mountinfo(text: &str) -> Vec<MountInfo> {
    text.lines()
        .filter_map(|l| {
            let (left, right) = l.split_once(" - ")?;
            let f: Vec<&str> = left.split(' ').collect();
            let r: Vec<&str> = right.split(' ').collect();
            if f.len() < 6 || r.len() < 3 {
                return None;
            }
            Some(MountInfo {
                id: f[0].parse().ok()?,
                parent: f[1].parse().ok()?,
                root: unescape(f[3]),
                mount_point: unescape(f[4]),
                options: f[5].split(',').map(str::to_string).collect(),
                optional: f[6..].iter().map(|s| s.to_string()).collect(),
                fstype: r[0].to_string(),
                source: unescape(r[1]),
                super_options: r[2].split(',').map(str::to_string).collect(),
            })
        })
        .collect()
}

/// The mount visible at `path` (the last one mounted there), if any.
pub fn mount_at<'a>(mounts: &'a [MountInfo], path: &str) -> Option<&'a MountInfo> {
    mounts.iter().rev().find(|m| m.mount_point == path)
}

/// Mount points of the host (this process's mount namespace) at or under `dir`.
pub fn host_mounts_under(dir: &Path) -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dir = dir.to_string_lossy();
    parse_mountinfo(&text)
        .into_iter()
        .map(|m| m.mount_point)
        .filter(|p| p == &*dir || p.starts_with(&format!("{dir}/")))
        .map(PathBuf::from)
        .collect()
}

pub fn pid_alive(pid: u32) -> bool {
    // A zombie still has a /proc entry; it counts as gone.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X')),
        Err(_) => false,
    }
}

/// Waits until `/proc/<pid>/comm` is `comm` (the user program was exec'd).
pub fn wait_comm(pid: u32, comm: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        let c = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
        if c.trim() == comm {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    false
}

pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// (hierarchy spec, path) pairs of `/proc/<pid>/cgroup`: ("memory", "/x"), ("", "/x") for v2.
pub fn cgroups_of(pid: u32) -> Vec<(String, String)> {
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let mut it = l.splitn(3, ':');
            let _ = it.next()?;
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .collect()
}

/// The directory of `pid`'s cgroup for `controller` on this host (v1 hierarchy mounted under
/// /sys/fs/cgroup/<controller>, or the v2 unified tree), when the controller is in use.
pub fn cgroup_dir(pid: u32, controller: &str) -> Option<PathBuf> {
    let groups = cgroups_of(pid);
    if let Some((_, p)) = groups
        .iter()
        .find(|(h, _)| h.split(',').any(|c| c == controller))
    {
        return Some(PathBuf::from(format!("/sys/fs/cgroup/{controller}{p}")));
    }
    let (_, p) = groups.iter().find(|(h, _)| h.is_empty())?;
    let base = if Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
        "/sys/fs/cgroup"
    } else {
        "/sys/fs/cgroup/unified"
    };
    let dir = PathBuf::from(format!("{base}{p}"));
    let ctrls = std::fs::read_to_string(dir.join("cgroup.controllers")).unwrap_or_default();
    ctrls
        .split_whitespace()
        .any(|c| c == controller)
        .then_some(dir)
}

/// Mount points of this host's cgroup hierarchies (v1 and v2) in this mount namespace, when
/// not covered by another mount.
pub fn cgroup_mounts() -> Vec<PathBuf> {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let all = parse_mountinfo(&text);
    all.iter()
        .filter(|m| m.fstype == "cgroup" || m.fstype == "cgroup2")
        .filter(|m| mount_at(&all, &m.mount_point).is_some_and(|top| top.id == m.id))
        .map(|m| PathBuf::from(&m.mount_point))
        .collect()
}
