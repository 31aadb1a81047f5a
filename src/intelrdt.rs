//! `linux.intelRdt`: the container's resctrl group (Intel RDT cache and memory-bandwidth
//! allocation), in the runtime process and host mount namespace, following config-linux.md's
//! rules on `closID`, schemata and monitoring groups, and its statistics for `events`. Needs
//! resctrl mounted at /sys/fs/resctrl (checked by filesystem magic); without it every use is
//! a clear error.
//!
//! The resctrl root is a parameter of the `*_in` functions so unit tests can run them against
//! a directory laid out like resctrl; the binary only ever uses the real mount.

use crate::cgroups::stats::{CmtNumaNode, IntelRdt, L3CacheInfo, MbmNumaNode, MemBwInfo};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::LinuxIntelRdt;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

const ROOT: &str = "/sys/fs/resctrl";
/// RDTGROUP_SUPER_MAGIC: a directory at ROOT that is not resctrl does not count.
const RESCTRL_MAGIC: i64 = 0x0765_5821;

/// What was made for a container, to undo on delete.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Group {
    pub dir: PathBuf,
    /// Removed on delete only when ruse made it and no closID named it.
    pub owned: bool,
    pub mon: Option<PathBuf>,
}

/// The host's resctrl root, when resctrl really is mounted there.
fn host_root() -> Option<&'static Path> {
    let f = std::fs::File::open(ROOT).ok()?;
    let magic = crate::sys::fs::fstatfs_type(f.as_fd()).ok()?;
    (magic == RESCTRL_MAGIC).then_some(Path::new(ROOT))
}

fn not_mounted(what: &str) -> anyhow::Error {
    crate::errors::not_supported(format!(
        "{what} (no resctrl filesystem is mounted at {ROOT})"
    ))
}

/// Whether the resctrl root offers a resource (`info/L3`, `info/MB`, …).
fn has_info(root: &Path, names: &[&str]) -> bool {
    names.iter().any(|n| root.join("info").join(n).is_dir())
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
    check_in(host_root(), r)
}

/// `check` against the resctrl tree at `root` (None: none is mounted).
pub fn check_in(root: Option<&Path>, r: &LinuxIntelRdt) -> Result<()> {
    let Some(root) = root else {
        return Err(not_mounted("linux.intelRdt"));
    };
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
    // As runc: a schema for a resource the host's resctrl does not offer is refused up front.
    let offers = [
        (
            r.l3_cache_schema().is_some(),
            "l3CacheSchema",
            &["L3", "L3CODE", "L3DATA"][..],
            "L3 cache allocation",
        ),
        (
            r.mem_bw_schema().is_some(),
            "memBwSchema",
            &["MB"][..],
            "memory bandwidth allocation",
        ),
        (
            *r.enable_monitoring() == Some(true),
            "enableMonitoring",
            &["L3_MON"][..],
            "monitoring",
        ),
    ];
    for (asked, field, info, what) in offers {
        if asked && !has_info(root, info) {
            return Err(crate::errors::not_supported(format!(
                "linux.intelRdt.{field} (this host's resctrl has no {what}: no {}/info/{})",
                root.display(),
                info[0]
            )));
        }
    }
    Ok(())
}

/// Where the container goes (pure): `closID` (`/` is the root group), else the id.
pub fn plan(id: &str, r: &LinuxIntelRdt) -> Group {
    plan_in(Path::new(ROOT), id, r)
}

pub fn plan_in(root: &Path, id: &str, r: &LinuxIntelRdt) -> Group {
    let (dir, named) = match r.clos_id().as_deref() {
        Some("/") => (root.to_path_buf(), true),
        Some(c) => (root.join(c), true),
        None => (root.join(id), false),
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
    update_in(host_root(), g, l3, mb)
}

/// `update` against the resctrl tree at `root` (None: none is mounted).
pub fn update_in(
    root: Option<&Path>,
    g: Option<&Group>,
    l3: Option<&str>,
    mb: Option<&str>,
) -> Result<()> {
    if l3.is_none() && mb.is_none() {
        return Ok(());
    }
    let Some(root) = root else {
        return Err(not_mounted("--l3-cache-schema/--mem-bw-schema"));
    };
    let Some(g) = g else {
        bail!("--l3-cache-schema/--mem-bw-schema: the container has no linux.intelRdt group");
    };
    // runc's messages when the host lacks the resource.
    if l3.is_some() && !has_info(root, &["L3", "L3CODE", "L3DATA"]) {
        return Err(crate::errors::not_supported(
            "--l3-cache-schema (Intel RDT/CAT: l3 cache schema is not enabled)",
        ));
    }
    if mb.is_some_and(|m| !m.starts_with("MB:")) {
        bail!("--mem-bw-schema: must start with \"MB:\"");
    }
    if mb.is_some() && !has_info(root, &["MB"]) {
        return Err(crate::errors::not_supported(
            "--mem-bw-schema (Intel RDT/MBA: memory bandwidth schema is not enabled)",
        ));
    }
    let lines: Vec<String> = [l3, mb].into_iter().flatten().map(str::to_string).collect();
    if lines.iter().any(|l| l.contains('\n')) {
        bail!("--l3-cache-schema/--mem-bw-schema: a schema contains a newline");
    }
    write_schemata(&g.dir, &lines)
}

/// runc's `intel_rdt` statistics: the read-only info and root schemata of each resource the
/// host offers, the group's own schemata, and the monitoring counters per cache domain.
pub fn stats(g: &Group) -> IntelRdt {
    stats_in(Path::new(ROOT), g)
}

pub fn stats_in(root: &Path, g: &Group) -> IntelRdt {
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    let num = |p: PathBuf| read(&p).trim().parse::<u64>().unwrap_or(0);
    let line_of = |text: &str, res: &str| {
        text.lines()
            .map(str::trim)
            .find(|l| l.split(':').next().is_some_and(|r| r.trim() == res))
            .unwrap_or_default()
            .to_string()
    };
    let (root_schemata, own) = (read(&root.join("schemata")), read(&g.dir.join("schemata")));
    let mut s = IntelRdt::default();
    if has_info(root, &["L3"]) {
        let info = root.join("info/L3");
        s.l3_cache_info = Some(L3CacheInfo {
            cbm_mask: read(&info.join("cbm_mask")).trim().to_string(),
            min_cbm_bits: num(info.join("min_cbm_bits")),
            num_closids: num(info.join("num_closids")),
        });
        s.l3_cache_schema_root = line_of(&root_schemata, "L3");
        s.l3_cache_schema = line_of(&own, "L3");
    }
    if has_info(root, &["MB"]) {
        let info = root.join("info/MB");
        s.mem_bw_info = Some(MemBwInfo {
            bandwidth_gran: num(info.join("bandwidth_gran")),
            delay_linear: num(info.join("delay_linear")),
            min_bandwidth: num(info.join("min_bandwidth")),
            num_closids: num(info.join("num_closids")),
        });
        s.mem_bw_schema_root = line_of(&root_schemata, "MB");
        s.mem_bw_schema = line_of(&own, "MB");
    }
    let features = read(&root.join("info/L3_MON/mon_features"));
    let has = |f: &str| features.lines().any(|l| l.trim() == f);
    let (mbm, cmt) = (
        has("mbm_total_bytes") || has("mbm_local_bytes"),
        has("llc_occupancy"),
    );
    // One mon_L3_NN directory per cache domain, in the monitoring group if there is one.
    let data = g.mon.as_deref().unwrap_or(&g.dir).join("mon_data");
    let mut domains: Vec<PathBuf> = std::fs::read_dir(&data)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| e.path())
        .collect();
    domains.sort();
    let (mut m, mut c) = (Vec::new(), Vec::new());
    for d in domains {
        if mbm {
            m.push(MbmNumaNode {
                mbm_total_bytes: num(d.join("mbm_total_bytes")),
                mbm_local_bytes: num(d.join("mbm_local_bytes")),
            });
        }
        if cmt {
            c.push(CmtNumaNode {
                llc_occupancy: num(d.join("llc_occupancy")),
            });
        }
    }
    s.mbm_stats = (!m.is_empty()).then_some(m);
    s.cmt_stats = (!c.is_empty()).then_some(c);
    s
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
        let e = check_in(None, &rdt("{}")).unwrap_err().to_string();
        assert!(
            e.contains("not supported: linux.intelRdt (no resctrl"),
            "{e}"
        );
        if host_root().is_none() {
            assert_eq!(check(&rdt("{}")).unwrap_err().to_string(), e);
        }
        let e = update_in(None, None, Some("L3:0=f"), None).unwrap_err();
        assert!(
            e.to_string().contains("not supported: --l3-cache-schema"),
            "{e}"
        );
    }

    /// A directory laid out like a resctrl mount (two L3 domains, CAT, MBA and monitoring),
    /// removed on drop. Plain files cannot merge writes the way resctrl's `schemata` does (each
    /// write replaces the file here), and the kernel's own files must be removed by the test
    /// before a group directory can be, as resctrl drops them with it.
    struct Fake(PathBuf);

    impl Drop for Fake {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn put(p: &Path, text: &str) {
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn fake(name: &str, info: &[&str]) -> Fake {
        let root = std::env::temp_dir().join(format!("ruse-rdt-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        put(
            &root.join("schemata"),
            "    L3:0=7ff;1=7ff\n    MB:0=100;1=100\n",
        );
        let files: [(&str, &str, &str); 8] = [
            ("L3", "cbm_mask", "7ff\n"),
            ("L3", "min_cbm_bits", "1\n"),
            ("L3", "num_closids", "16\n"),
            ("MB", "bandwidth_gran", "10\n"),
            ("MB", "delay_linear", "1\n"),
            ("MB", "min_bandwidth", "10\n"),
            ("MB", "num_closids", "8\n"),
            (
                "L3_MON",
                "mon_features",
                "llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n",
            ),
        ];
        for (dir, file, text) in files.into_iter().filter(|f| info.contains(&f.0)) {
            put(&root.join("info").join(dir).join(file), text);
        }
        Fake(root)
    }

    fn mon_data(group: &Path, domains: &[(u64, u64, u64)]) {
        for (i, (occ, total, local)) in domains.iter().enumerate() {
            let d = group.join(format!("mon_data/mon_L3_{i:02}"));
            put(&d.join("llc_occupancy"), &format!("{occ}\n"));
            put(&d.join("mbm_total_bytes"), &format!("{total}\n"));
            put(&d.join("mbm_local_bytes"), &format!("{local}\n"));
        }
    }

    #[test]
    fn check_refuses_what_the_host_lacks() {
        let f = fake("lacks", &["L3"]);
        let root = Some(f.0.as_path());
        assert!(check_in(root, &rdt(r#"{"l3CacheSchema":"L3:0=f"}"#)).is_ok());
        for (json, field) in [
            (
                r#"{"memBwSchema":"MB:0=50"}"#,
                "linux.intelRdt.memBwSchema (this host",
            ),
            (
                r#"{"enableMonitoring":true}"#,
                "linux.intelRdt.enableMonitoring (this host",
            ),
            (
                r#"{"memBwSchema":"50"}"#,
                "linux.intelRdt.memBwSchema: must start",
            ),
            (r#"{"closID":"../x"}"#, "linux.intelRdt.closID"),
        ] {
            let e = check_in(root, &rdt(json)).unwrap_err().to_string();
            assert!(e.contains(field), "{json}: {e}");
        }
        let g = plan_in(&f.0, "c1", &rdt("{}"));
        let e = update_in(root, Some(&g), None, Some("MB:0=5")).unwrap_err();
        assert!(
            e.to_string()
                .contains("memory bandwidth schema is not enabled"),
            "{e}"
        );
    }

    #[test]
    fn owned_group_setup_update_stats_remove() {
        let f = fake("owned", &["L3", "MB", "L3_MON"]);
        let (root, r) = (
            f.0.as_path(),
            rdt(r#"{"l3CacheSchema":"L3:0=f","memBwSchema":"MB:0=50"}"#),
        );
        check_in(Some(root), &r).unwrap();
        let g = plan_in(root, "c1", &r);
        assert_eq!(
            (g.dir.clone(), g.owned, g.mon.clone()),
            (root.join("c1"), true, None)
        );
        setup(&g, &r, 4242).unwrap();
        assert_eq!(
            std::fs::read_to_string(g.dir.join("tasks")).unwrap(),
            "4242"
        );
        // The last of the one-resource writes (resctrl itself would show both lines).
        assert_eq!(
            std::fs::read_to_string(g.dir.join("schemata")).unwrap(),
            "MB:0=50\n"
        );
        update_in(Some(root), Some(&g), Some("L3:0=3"), None).unwrap();
        assert_eq!(
            std::fs::read_to_string(g.dir.join("schemata")).unwrap(),
            "L3:0=3\n"
        );
        let e = update_in(Some(root), Some(&g), None, Some("50")).unwrap_err();
        assert!(e.to_string().contains("--mem-bw-schema: must start"), "{e}");
        let e = update_in(Some(root), None, Some("L3:0=3"), None).unwrap_err();
        assert!(e.to_string().contains("no linux.intelRdt group"), "{e}");
        // What resctrl shows once both schemata are in: every domain, padded.
        put(
            &g.dir.join("schemata"),
            "    L3:0=003;1=7ff\n    MB:0= 50;1=100\n",
        );
        mon_data(&g.dir, &[(4096, 1000, 600), (8192, 2000, 700)]);
        let v = serde_json::to_value(stats_in(root, &g)).unwrap();
        assert_eq!(
            v,
            serde_json::json!({
                "l3_cache_info": {"cbm_mask": "7ff", "min_cbm_bits": 1, "num_closids": 16},
                "l3_cache_schema_root": "L3:0=7ff;1=7ff",
                "l3_cache_schema": "L3:0=003;1=7ff",
                "mem_bw_info": {"bandwidth_gran": 10, "delay_linear": 1, "min_bandwidth": 10,
                                "num_closids": 8},
                "mem_bw_schema_root": "MB:0=100;1=100",
                "mem_bw_schema": "MB:0= 50;1=100",
                "mbm_stats": [{"mbm_total_bytes": 1000, "mbm_local_bytes": 600},
                              {"mbm_total_bytes": 2000, "mbm_local_bytes": 700}],
                "cmt_stats": [{"llc_occupancy": 4096}, {"llc_occupancy": 8192}]
            })
        );
        // The kernel's files go with the directory on resctrl.
        std::fs::remove_dir_all(g.dir.join("mon_data")).unwrap();
        for k in ["tasks", "schemata"] {
            std::fs::remove_file(g.dir.join(k)).unwrap();
        }
        g.remove().unwrap();
        assert!(!g.dir.exists() && root.join("schemata").exists());
    }

    #[test]
    fn named_group_with_a_monitoring_group() {
        let f = fake("named", &["L3", "L3_MON"]);
        let root = f.0.as_path();
        let gold = root.join("gold");
        put(&gold.join("schemata"), "    L3:0=0f0;1=7ff\n");
        std::fs::create_dir(gold.join("mon_groups")).unwrap();
        let differs = rdt(r#"{"closID":"gold","l3CacheSchema":"L3:0=ff"}"#);
        let g = plan_in(root, "c1", &differs);
        let e = setup(&g, &differs, 7).unwrap_err().to_string();
        assert!(e.contains("differ from the config"), "{e}");
        assert!(!gold.join("tasks").exists());
        let r = rdt(r#"{"closID":"gold","l3CacheSchema":"L3:0=f0","enableMonitoring":true}"#);
        check_in(Some(root), &r).unwrap();
        let g = plan_in(root, "c1", &r);
        let mon = gold.join("mon_groups/c1");
        assert_eq!((g.owned, g.mon.clone()), (false, Some(mon.clone())));
        setup(&g, &r, 77).unwrap();
        assert_eq!(std::fs::read_to_string(gold.join("tasks")).unwrap(), "77");
        assert_eq!(std::fs::read_to_string(mon.join("tasks")).unwrap(), "77");
        // Counters come from the container's monitoring group, not the shared one.
        mon_data(&gold, &[(1, 1, 1)]);
        mon_data(&mon, &[(300, 20, 10)]);
        let s = stats_in(root, &g);
        assert_eq!(s.l3_cache_schema, "L3:0=0f0;1=7ff");
        assert_eq!(s.mem_bw_info, None);
        assert_eq!(s.cmt_stats, Some(vec![CmtNumaNode { llc_occupancy: 300 }]));
        let mbm = MbmNumaNode {
            mbm_total_bytes: 20,
            mbm_local_bytes: 10,
        };
        assert_eq!(s.mbm_stats, Some(vec![mbm]));
        std::fs::remove_dir_all(mon.join("mon_data")).unwrap();
        std::fs::remove_file(mon.join("tasks")).unwrap();
        g.remove().unwrap();
        assert!(
            !mon.exists() && gold.join("schemata").exists(),
            "closID groups are kept"
        );
    }
}
