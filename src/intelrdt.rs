//! `linux.intelRdt`: the container's resctrl group (Intel RDT cache and memory-bandwidth
//! allocation), in the runtime process and host mount namespace, following config-linux.md's
//! rules on `closID`, schemata and monitoring groups. Needs resctrl mounted at
//! /sys/fs/resctrl; without it every use is a clear error.

use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/resctrl";

/// What was made for a container, to undo on delete.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub dir: PathBuf,
    /// Removed on delete only when ruse made it and no closID named it.
    pub owned: bool,
    pub mon: Option<PathBuf>,
}

fn mounted() -> bool {
    Path::new(ROOT).join("schemata").exists()
}

/// The schemata lines in the order the spec wants them written.
pub fn lines(r: &LinuxIntelRdt) -> Vec<String> {
    let mut out: Vec<String> = [r.l3_cache_schema(), r.mem_bw_schema()]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    out.extend(r.schemata().iter().flatten().cloned());
    out
}

/// Checks the config before anything is touched.
pub fn check(r: &LinuxIntelRdt) -> Result<()> {
    if !mounted() {
        return Err(crate::errors::not_supported(format!(
            "linux.intelRdt (no resctrl filesystem is mounted at {ROOT})"
        )));
    }
    if let Some(c) = r.clos_id().as_deref().filter(|c| *c != "/") {
        if c.is_empty() || c.contains('/') || c == "." || c == ".." || c.contains('\0') {
            bail!("linux.intelRdt.closID {c:?}: must be a plain directory name or \"/\"");
        }
    }
    for l in lines(r) {
        if l.contains('\n') {
            bail!("linux.intelRdt: schema {l:?} contains a newline");
        }
    }
    if r.mem_bw_schema()
        .as_deref()
        .is_some_and(|s| !s.starts_with("MB:"))
    {
        bail!("linux.intelRdt.memBwSchema: must start with \"MB:\"");
    }
    Ok(())
}

/// Where the container goes (pure): `closID` (`/` is the root group), else the id.
pub fn plan(id: &str, r: &LinuxIntelRdt) -> Group {
    let (dir, named) = match r.clos_id().as_deref() {
        Some("/") => (PathBuf::from(ROOT), true),
        Some(c) => (Path::new(ROOT).join(c), true),
        None => (Path::new(ROOT).join(id), false),
    };
    let owned = !named && !dir.exists();
    let mon = r
        .enable_monitoring()
        .unwrap_or(false)
        .then(|| dir.join("mon_groups").join(id));
    Group { dir, owned, mon }
}

/// `L3:0=7f0;1=1f` lines → resource → domain → value, normalised for comparison.
fn parse(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for l in text.lines() {
        let Some((res, doms)) = l.trim().split_once(':') else {
            continue;
        };
        let m: &mut BTreeMap<String, String> = out.entry(res.trim().to_string()).or_default();
        for d in doms.split(';') {
            if let Some((k, v)) = d.split_once('=') {
                let v = v.trim().to_ascii_lowercase();
                let v = v.trim_start_matches('0');
                m.insert(
                    k.trim().to_string(),
                    if v.is_empty() { "0".into() } else { v.into() },
                );
            }
        }
    }
    out
}

/// True when every domain the config names reads the same in the group's schemata.
pub fn matches(existing: &str, wanted: &[String]) -> bool {
    let have = parse(existing);
    parse(&wanted.join("\n")).iter().all(|(res, doms)| {
        doms.iter()
            .all(|(d, v)| have.get(res).and_then(|m| m.get(d)) == Some(v))
    })
}

pub fn setup(g: &Group, r: &LinuxIntelRdt, pid: i32) -> Result<()> {
    let want = lines(r);
    if !g.dir.exists() {
        // A named group without schemata must be pre-configured; otherwise it is made.
        if !g.owned && want.is_empty() {
            bail!("linux.intelRdt.closID: {} does not exist", g.dir.display());
        }
        std::fs::create_dir(&g.dir)
            .with_context(|| format!("linux.intelRdt: create {}", g.dir.display()))?;
        write_schemata(&g.dir, &want)?;
    } else if !want.is_empty() {
        let cur = std::fs::read_to_string(g.dir.join("schemata")).unwrap_or_default();
        if !matches(&cur, &want) {
            bail!(
                "linux.intelRdt: the schemata of existing group {} differ from the config",
                g.dir.display()
            );
        }
    }
    write(&g.dir.join("tasks"), &pid.to_string())?;
    if let Some(m) = &g.mon {
        std::fs::create_dir(m)
            .with_context(|| format!("linux.intelRdt.enableMonitoring: create {}", m.display()))?;
        write(&m.join("tasks"), &pid.to_string())?;
    }
    Ok(())
}

fn write(p: &Path, v: &str) -> Result<()> {
    std::fs::write(p, v).with_context(|| format!("linux.intelRdt: write {v:?} to {}", p.display()))
}

/// Writes schema lines one at a time, as the kernel parses one resource per write.
pub fn write_schemata(dir: &Path, lines: &[String]) -> Result<()> {
    for l in lines {
        write(&dir.join("schemata"), &format!("{l}\n"))?;
    }
    Ok(())
}

/// `update --l3-cache-schema/--mem-bw-schema`.
pub fn update(g: Option<&Group>, l3: Option<&str>, mb: Option<&str>) -> Result<()> {
    if l3.is_none() && mb.is_none() {
        return Ok(());
    }
    if !mounted() {
        return Err(crate::errors::not_supported(format!(
            "--l3-cache-schema/--mem-bw-schema (no resctrl filesystem is mounted at {ROOT})"
        )));
    }
    let Some(g) = g else {
        bail!("--l3-cache-schema/--mem-bw-schema: the container has no linux.intelRdt group");
    };
    let lines: Vec<String> = [l3, mb].into_iter().flatten().map(str::to_string).collect();
    write_schemata(&g.dir, &lines)
}

impl Group {
    pub fn remove(&self) -> Result<()> {
        for d in self.mon.iter().chain(self.owned.then_some(&self.dir)) {
            match std::fs::remove_dir(d) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(e).with_context(|| format!("remove {}", d.display()))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rdt(json: &str) -> LinuxIntelRdt {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn plan_follows_the_closid_rules() {
        let g = plan("c1", &rdt(r#"{"closID":"gold","enableMonitoring":true}"#));
        assert_eq!(g.dir, PathBuf::from("/sys/fs/resctrl/gold"));
        assert!(!g.owned);
        assert_eq!(
            g.mon,
            Some(PathBuf::from("/sys/fs/resctrl/gold/mon_groups/c1"))
        );
        assert_eq!(
            plan("c1", &rdt(r#"{"closID":"/"}"#)).dir,
            PathBuf::from(ROOT)
        );
        let g = plan("c1", &rdt(r#"{"l3CacheSchema":"L3:0=f"}"#));
        assert_eq!(g.dir, PathBuf::from("/sys/fs/resctrl/c1"));
        assert_eq!(g.mon, None);
    }

    #[test]
    fn schemata_order_and_comparison() {
        let r =
            rdt(r#"{"schemata":["L2:0=f"],"memBwSchema":"MB:0=20","l3CacheSchema":"L3:0=7f0"}"#);
        assert_eq!(lines(&r), ["L3:0=7f0", "MB:0=20", "L2:0=f"]);
        let cur = "    L3:0=007f0;1=7ff\n    MB:0= 20;1=100\n";
        assert!(matches(cur, &["L3:0=7F0".into(), "MB:0=20".into()]));
        assert!(!matches(cur, &["L3:1=1f".into()]));
        assert!(!matches(cur, &["L2:0=f".into()]));
    }

    #[test]
    fn refused_without_resctrl() {
        if !mounted() {
            let e = check(&rdt("{}")).unwrap_err().to_string();
            assert!(e.contains("not supported: linux.intelRdt"), "{e}");
        }
    }
}
