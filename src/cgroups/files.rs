//! Reading and writing cgroupfs files, with names checked so a config can never reach a
//! file outside the container's cgroup directory (SECURITY.md 15), and the per-level setup
//! a new directory needs (v1 cpuset values, v2 controller delegation).

use anyhow::{bail, Context, Result};
use std::path::Path;

pub fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.contains('/') || name == "." || name == ".." || name.contains('\0') {
        bail!("cgroup file name {name:?}: must be a plain file name");
    }
    Ok(())
}

pub fn write(dir: &Path, name: &str, value: &str) -> Result<()> {
    check_name(name)?;
    let p = dir.join(name);
    std::fs::write(&p, value).with_context(|| format!("write {value:?} to {}", p.display()))
}

pub fn read(dir: &Path, name: &str) -> Result<String> {
    check_name(name)?;
    let p = dir.join(name);
    Ok(std::fs::read_to_string(&p)
        .with_context(|| format!("read {}", p.display()))?
        .trim()
        .to_string())
}

/// A number file; `max` reads as u64::MAX.
pub fn read_u64(dir: &Path, name: &str) -> Option<u64> {
    let v = read(dir, name).ok()?;
    if v == "max" {
        return Some(u64::MAX);
    }
    v.parse().ok()
}

/// `key value` lines (memory.stat, cpu.stat, memory.events) as a map.
pub fn read_keyed(dir: &Path, name: &str) -> std::collections::BTreeMap<String, u64> {
    read(dir, name)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(' ')?;
            Some((k.to_string(), v.trim().parse().ok()?))
        })
        .collect()
}

/// Pids in `cgroup.procs` of `dir` and every cgroup below it (a container may make its own).
pub fn procs_recursive(dir: &Path, out: &mut Vec<i32>) {
    let text = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap_or_default();
    out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            procs_recursive(&e.path(), out);
        }
    }
}

pub fn create(dir: &Path) -> Result<()> {
    std::fs::create_dir(dir).with_context(|| format!("create cgroup {}", dir.display()))
}

/// A new v1 cpuset cgroup has no cpus or mems and refuses tasks: copy them down from the
/// parent at every level below the mount.
pub fn populate_cpuset(mount: &Path, dir: &Path) -> Result<()> {
    if !mount.join("cpuset.cpus").exists() {
        return Ok(());
    }
    let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut cur = mount.to_path_buf();
    for comp in rel.components() {
        let parent = cur.clone();
        cur.push(comp);
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if read(&cur, f)?.is_empty() {
                write(&cur, f, &read(&parent, f)?)?;
            }
        }
    }
    Ok(())
}

/// Delegates `wanted` v2 controllers down to `leaf`: each level from the mount to the leaf's
/// parent enables, in `cgroup.subtree_control`, those its `cgroup.controllers` offers. A level
/// that refuses (it holds processes, or is not ours) is left as it is, as runc does: the
/// resource write that needs the controller then fails, naming its field.
pub fn enable_controllers(mount: &Path, leaf: &Path, wanted: &[String]) {
    let Ok(rel) = leaf.strip_prefix(mount) else {
        return;
    };
    let comps: Vec<_> = rel.components().collect();
    let mut levels = vec![mount.to_path_buf()];
    for c in &comps[..comps.len().saturating_sub(1)] {
        let next = levels[levels.len() - 1].join(c);
        levels.push(next);
    }
    for lvl in levels {
        let offered = read(&lvl, "cgroup.controllers").unwrap_or_default();
        let enabled = read(&lvl, "cgroup.subtree_control").unwrap_or_default();
        let missing: Vec<String> = offered
            .split_whitespace()
            .filter(|c| wanted.iter().any(|w| w == c))
            .filter(|c| !enabled.split_whitespace().any(|e| e == *c))
            .map(|c| format!("+{c}"))
            .collect();
        if !missing.is_empty() && write(&lvl, "cgroup.subtree_control", &missing.join(" ")).is_err()
        {
            for c in missing {
                let _ = write(&lvl, "cgroup.subtree_control", &c);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_cannot_escape() {
        assert!(check_name("pids.max").is_ok());
        for bad in ["", ".", "..", "../x", "a/b", "x\0"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
