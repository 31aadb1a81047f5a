//! Reading and writing cgroupfs files, with names checked so a config can never reach a
//! file outside the container's cgroup directory (SECURITY.md 15).

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxCpu;
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

fn read(dir: &Path, name: &str) -> Result<String> {
    check_name(name)?;
    let p = dir.join(name);
    Ok(std::fs::read_to_string(&p)
        .with_context(|| format!("read {}", p.display()))?
        .trim()
        .to_string())
}

pub fn create(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("create cgroup {}", dir.display()))
}

/// A new v1 cpuset cgroup has no cpus or mems and refuses tasks: copy them down from the
/// parent at every level ruse created.
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

/// v2 weight from v1 shares, the conversion runc and crun use: [2, 262144] → [1, 10000].
pub fn shares_to_weight(shares: u64) -> u64 {
    if shares == 0 {
        return 0;
    }
    1 + (shares.clamp(2, 262_144) - 2) * 9999 / 262_142
}

pub fn cpu(dir: &Path, unified: bool, c: &LinuxCpu) -> Result<()> {
    if let Some(s) = c.shares().filter(|s| *s > 0) {
        let (f, v) = if unified {
            ("cpu.weight", shares_to_weight(s))
        } else {
            ("cpu.shares", s)
        };
        write(dir, f, &v.to_string()).context("linux.resources.cpu.shares")?;
    }
    if unified {
        if c.quota().is_some() || c.period().is_some() {
            let q = c
                .quota()
                .filter(|q| *q > 0)
                .map(|q| q.to_string())
                .unwrap_or_else(|| "max".into());
            let p = c.period().unwrap_or(100_000);
            write(dir, "cpu.max", &format!("{q} {p}"))
                .context("linux.resources.cpu.quota/period")?;
        }
        return Ok(());
    }
    if let Some(p) = c.period() {
        write(dir, "cpu.cfs_period_us", &p.to_string()).context("linux.resources.cpu.period")?;
    }
    if let Some(q) = c.quota() {
        write(dir, "cpu.cfs_quota_us", &q.to_string()).context("linux.resources.cpu.quota")?;
    }
    Ok(())
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

    #[test]
    fn weight_conversion() {
        assert_eq!(shares_to_weight(2), 1);
        assert_eq!(shares_to_weight(262_144), 10_000);
        assert_eq!(shares_to_weight(1024), 39);
    }
}
