//! The container's cgroups, through cgroupfs: v1 (one directory per hierarchy, hybrid hosts
//! included) and v2 (one directory in the unified tree). The parent creates them and moves
//! init in right after the clone, before any user code runs; `delete` removes them.
//!
//! Path rules follow runc: an absolute `cgroupsPath` is taken from each hierarchy's root; a
//! relative or empty one (empty means the container id) is under the runtime's own cgroup.
//! Resource support is the part issue 3 extends: today pids, memory limit, cpu
//! shares/quota/period and (v1 only) devices; any other resource is refused by name.

mod files;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDeviceCgroup, LinuxResources};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/cgroup";
/// File in the state dir naming the cgroup before state.json exists.
pub const RECORD: &str = "cgroup.json";
const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;

/// The directories of one container's cgroup, one per hierarchy.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroup {
    pub unified: bool,
    /// The container's directory in each hierarchy.
    pub dirs: Vec<PathBuf>,
    /// Every directory ruse creates, parents first (removed on delete, children first).
    #[serde(default)]
    pub created: Vec<PathBuf>,
}

fn is_unified() -> bool {
    std::fs::File::open(ROOT)
        .and_then(|f| crate::sys::fs::fstatfs_type(std::os::fd::AsFd::as_fd(&f)))
        .map(|t| t == CGROUP2_SUPER_MAGIC)
        .unwrap_or(false)
}

/// (hierarchy mount dir, this process's cgroup in it) for each mounted hierarchy.
fn hierarchies(unified: bool) -> Result<Vec<(PathBuf, String)>> {
    let own = std::fs::read_to_string("/proc/self/cgroup").context("read /proc/self/cgroup")?;
    let mut out = Vec::new();
    for line in own.lines() {
        let mut f = line.splitn(3, ':');
        let (_, ctrls, path) = (f.next(), f.next().unwrap_or(""), f.next().unwrap_or("/"));
        let dir = match (unified, ctrls) {
            (true, "") => PathBuf::from(ROOT),
            (true, _) => continue,
            (false, "") => PathBuf::from(ROOT).join("unified"),
            (false, c) => PathBuf::from(ROOT).join(c.strip_prefix("name=").unwrap_or(c)),
        };
        if dir.join("cgroup.procs").exists() {
            out.push((dir, path.to_string()));
        }
    }
    Ok(out)
}

/// Where the container's cgroup goes in one hierarchy (pure: unit-tested).
pub fn resolve(mount: &Path, own: &str, cgroups_path: Option<&Path>, id: &str) -> Result<PathBuf> {
    let rel = match cgroups_path.filter(|p| !p.as_os_str().is_empty()) {
        Some(p) if p.is_absolute() => p.to_path_buf(),
        Some(p) => Path::new(own).join(p),
        None => Path::new(own).join(id),
    };
    let clean = crate::rootfs::plan::clean_dest(&rel);
    if clean.as_os_str().is_empty() {
        bail!(
            "linux.cgroupsPath {:?}: resolves to a hierarchy root",
            cgroups_path.unwrap_or(Path::new(""))
        );
    }
    Ok(mount.join(clean))
}

/// Works out the container's directories, and which of them ruse will create, without
/// touching anything, so they can be recorded before they exist.
pub fn plan(id: &str, cgroups_path: Option<&Path>) -> Result<Cgroup> {
    let unified = is_unified();
    let mut cg = Cgroup {
        unified,
        ..Default::default()
    };
    for (mount, own) in hierarchies(unified)? {
        let dir = resolve(&mount, &own, cgroups_path, id)?;
        let mut missing: Vec<PathBuf> = dir
            .ancestors()
            .take_while(|d| !d.exists())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        cg.created.extend(missing);
        cg.dirs.push(dir);
    }
    Ok(cg)
}

/// Creates the planned directories, applies `resources` and moves `pid` in. An existing
/// cgroup that already has processes is refused, as runc does.
pub fn setup(cg: &Cgroup, res: Option<&LinuxResources>, pid: i32) -> Result<()> {
    for dir in &cg.dirs {
        if !cg.created.contains(dir) {
            let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
            if !procs.trim().is_empty() {
                bail!(
                    "linux.cgroupsPath: cgroup {} already has processes",
                    dir.display()
                );
            }
        }
    }
    for dir in &cg.created {
        files::create(dir)?;
    }
    for (leaf, root) in cg.dirs.iter().zip(hierarchy_roots(cg)) {
        files::populate_cpuset(&root, leaf)?;
    }
    if let Some(r) = res {
        apply(cg, r)?;
    }
    for dir in &cg.dirs {
        files::write(dir, "cgroup.procs", &pid.to_string())?;
    }
    Ok(())
}

/// The hierarchy mount of each leaf dir (the first path component under /sys/fs/cgroup).
fn hierarchy_roots(cg: &Cgroup) -> Vec<PathBuf> {
    cg.dirs
        .iter()
        .map(|d| {
            match (
                cg.unified,
                d.strip_prefix(ROOT)
                    .ok()
                    .and_then(|r| r.components().next()),
            ) {
                (false, Some(c)) => Path::new(ROOT).join(c),
                _ => PathBuf::from(ROOT),
            }
        })
        .collect()
}

fn dir_of<'a>(cg: &'a Cgroup, controller: &str) -> Option<&'a Path> {
    if cg.unified {
        return cg.dirs.first().map(PathBuf::as_path);
    }
    cg.dirs.iter().map(PathBuf::as_path).find(|d| {
        d.strip_prefix(ROOT)
            .ok()
            .and_then(|r| r.components().next())
            .is_some_and(|c| {
                c.as_os_str()
                    .to_str()
                    .is_some_and(|s| s.split(',').any(|x| x == controller))
            })
    })
}

fn apply(cg: &Cgroup, r: &LinuxResources) -> Result<()> {
    refuse_unsupported(r)?;
    let need = |ctrl: &str| {
        dir_of(cg, ctrl).with_context(|| {
            format!("linux.resources: the {ctrl} controller is not available on this host")
        })
    };
    if let Some(p) = r.pids() {
        let v = if p.limit() <= 0 {
            "max".to_string()
        } else {
            p.limit().to_string()
        };
        files::write(need("pids")?, "pids.max", &v).context("linux.resources.pids.limit")?;
    }
    if let Some(limit) = r.memory().as_ref().and_then(|m| m.limit()) {
        let (file, v) = match (cg.unified, limit) {
            (true, l) if l < 0 => ("memory.max", "max".to_string()),
            (true, l) => ("memory.max", l.to_string()),
            (false, l) => ("memory.limit_in_bytes", l.to_string()),
        };
        files::write(need("memory")?, file, &v).context("linux.resources.memory.limit")?;
    }
    if let Some(cpu) = r.cpu() {
        files::cpu(need("cpu")?, cg.unified, cpu)?;
    }
    let devices = r.devices().as_deref().unwrap_or_default();
    if !devices.is_empty() {
        if cg.unified {
            return Err(crate::errors::not_supported(
                "linux.resources.devices on cgroup v2 (needs the eBPF device filter)",
            ));
        }
        apply_devices_v1(need("devices")?, devices)?;
    }
    Ok(())
}

/// Refuses, before anything is touched, the resources ruse cannot apply yet.
pub fn check(r: &LinuxResources) -> Result<()> {
    refuse_unsupported(r)
}

fn refuse_unsupported(r: &LinuxResources) -> Result<()> {
    let v = serde_json::to_value(r)?;
    for (k, val) in v.as_object().into_iter().flatten() {
        let supported = match k.as_str() {
            "devices" | "pids" => true,
            "memory" => val
                .as_object()
                .is_some_and(|m| m.keys().all(|k| k == "limit")),
            "cpu" => val.as_object().is_some_and(|m| {
                m.keys()
                    .all(|k| k == "shares" || k == "quota" || k == "period")
            }),
            _ => val.is_null() || val.as_array().is_some_and(|a| a.is_empty()),
        };
        if !supported {
            return Err(crate::errors::not_supported(format!("linux.resources.{k} (only devices, pids, memory.limit and cpu shares/quota/period so far)")));
        }
    }
    Ok(())
}

/// The devices every container needs, allowed after the config's rules, as runc does.
const DEFAULT_ALLOWED: &[&str] = &[
    "c *:* m",
    "b *:* m",
    "c 1:3 rwm",
    "c 1:5 rwm",
    "c 1:7 rwm",
    "c 1:8 rwm",
    "c 1:9 rwm",
    "c 5:0 rwm",
    "c 5:1 rwm",
    "c 5:2 rwm",
    "c 136:* rwm",
    "c 10:200 rwm",
];

/// The text of one v1 rule (`c 1:3 rwm`), pure.
pub fn device_rule(d: &LinuxDeviceCgroup) -> String {
    let typ = d
        .typ()
        .map(|t| t.as_str().to_string())
        .unwrap_or_else(|| "a".into());
    let num = |n: Option<i64>| {
        n.filter(|n| *n >= 0)
            .map(|n| n.to_string())
            .unwrap_or_else(|| "*".into())
    };
    let access = d.access().clone().unwrap_or_else(|| "rwm".into());
    format!("{typ} {}:{} {access}", num(d.major()), num(d.minor()))
}

fn apply_devices_v1(dir: &Path, rules: &[LinuxDeviceCgroup]) -> Result<()> {
    for (i, d) in rules.iter().enumerate() {
        let file = if d.allow() {
            "devices.allow"
        } else {
            "devices.deny"
        };
        files::write(dir, file, &device_rule(d))
            .with_context(|| format!("linux.resources.devices[{i}]"))?;
    }
    for rule in DEFAULT_ALLOWED {
        files::write(dir, "devices.allow", rule).context("default device rules")?;
    }
    Ok(())
}

impl Cgroup {
    /// Removes the directories (they must be empty of processes); retried briefly because a
    /// killed process leaves its cgroup only once reaped.
    pub fn remove(&self) {
        for dir in self.created.iter().rev() {
            for attempt in 0..100 {
                match std::fs::remove_dir(dir) {
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 99 => {
                        std::thread::sleep(std::time::Duration::from_millis(5))
                    }
                    _ => break,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_rules() {
        let m = Path::new("/sys/fs/cgroup/memory");
        assert_eq!(
            resolve(m, "/a/b", None, "c1").unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/a/b/c1")
        );
        assert_eq!(
            resolve(m, "/a", Some(Path::new("x/y")), "c1").unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/a/x/y")
        );
        assert_eq!(
            resolve(m, "/a", Some(Path::new("/x")), "c1").unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/x")
        );
        assert_eq!(
            resolve(m, "/", Some(Path::new("/../../etc")), "c1").unwrap(),
            PathBuf::from("/sys/fs/cgroup/memory/etc")
        );
        assert!(resolve(m, "/", Some(Path::new("/")), "c1").is_err());
    }

    #[test]
    fn device_rules() {
        let d: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":false,"access":"rwm"}"#).unwrap();
        assert_eq!(device_rule(&d), "a *:* rwm");
        let d: LinuxDeviceCgroup =
            serde_json::from_str(r#"{"allow":true,"type":"c","major":1,"minor":3,"access":"r"}"#)
                .unwrap();
        assert_eq!(device_rule(&d), "c 1:3 r");
    }
}
