//! `linux.resources` → cgroupfs writes, in the runtime (host namespaces). Planning is pure: each
//! resource group goes to the directory of the hierarchy that holds its controller, and the
//! [`Driver`] of that hierarchy's version (v1 or v2: the two real implementations) turns it into
//! [`Step`]s. A thin loop applies the steps. On a hybrid host one container may use both.

use super::{bpf_devices, files, Cgroup, Dir};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxCpu, LinuxDeviceCgroup, LinuxHugepageLimit, LinuxMemory, LinuxNetwork,
    LinuxPids, LinuxRdma, LinuxResources,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One value for one file, and the config field it comes from (for error messages).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct W {
    pub file: String,
    pub value: String,
    pub field: String,
    /// Skipped where the file does not exist (a refinement the host may lack).
    pub optional: bool,
}

pub fn w(file: impl Into<String>, value: impl ToString, field: impl Into<String>) -> W {
    W {
        file: file.into(),
        value: value.to_string(),
        field: field.into(),
        optional: false,
    }
}

pub fn optional(mut x: W) -> W {
    x.optional = true;
    x
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    Write(W),
    /// The first of these files that exists gets its write: the kernel names some knobs
    /// after the IO scheduler (`blkio.bfq.weight` or `blkio.weight`).
    FirstOf(Vec<W>),
    /// Values that constrain each other (memory and memory+swap, period, burst and quota):
    /// written in order; one the kernel refuses with EINVAL is retried once after the others.
    Together(Vec<W>),
    /// `checkBeforeUpdate`: refuse a limit at or below the current usage (the sum of
    /// `files`; a missing file counts 0 except the first).
    UsageBelow {
        files: Vec<String>,
        limit: u64,
        field: String,
    },
    /// A cgroup v2 device program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the directory.
    DeviceProgram(Vec<bpf_devices::Insn>),
}

/// What one cgroup version makes of each resource group.
pub trait Driver {
    fn memory(&self, m: &LinuxMemory) -> Result<Vec<Step>>;
    fn cpu(&self, c: &LinuxCpu) -> Result<Vec<Step>>;
    fn block_io(&self, b: &LinuxBlockIo) -> Result<Vec<Step>>;
    fn hugetlb(&self, l: &[LinuxHugepageLimit]) -> Result<Vec<Step>>;
    fn net_cls(&self, n: &LinuxNetwork) -> Result<Vec<Step>>;
    fn net_prio(&self, n: &LinuxNetwork) -> Result<Vec<Step>>;
    fn devices(&self, rules: &[LinuxDeviceCgroup]) -> Result<Vec<Step>>;

    /// `cpuset.cpus` and `cpuset.mems` have the same names on both versions.
    fn cpuset(&self, c: &LinuxCpu) -> Vec<Step> {
        let mut out = Vec::new();
        for (file, v, field) in [
            ("cpuset.cpus", c.cpus(), "cpu.cpus"),
            ("cpuset.mems", c.mems(), "cpu.mems"),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                out.push(Step::Write(w(file, v, field)));
            }
        }
        out
    }

    /// runtime-spec: -1 is no limit; 0 is a real limit of zero ("SHOULD be treated as such").
    fn pids(&self, p: &LinuxPids) -> Vec<Step> {
        let v = match p.limit() {
            l if l < 0 => "max".to_string(),
            l => l.to_string(),
        };
        vec![Step::Write(w("pids.max", v, "pids.limit"))]
    }

    /// `rdma.max` lines have the same format on both versions.
    fn rdma(&self, r: &HashMap<String, LinuxRdma>) -> Result<Vec<Step>> {
        let mut devs: Vec<_> = r.iter().collect();
        devs.sort_by(|a, b| a.0.cmp(b.0));
        let mut out = Vec::new();
        for (dev, l) in devs {
            let field = format!("rdma.{dev}");
            if dev.is_empty() || dev.contains(char::is_whitespace) {
                bail!("linux.resources.{field}: not a device name");
            }
            let mut line = dev.clone();
            if let Some(h) = l.hca_handles() {
                line.push_str(&format!(" hca_handle={h}"));
            }
            if let Some(o) = l.hca_objects() {
                line.push_str(&format!(" hca_object={o}"));
            }
            if l.hca_handles().is_none() && l.hca_objects().is_none() {
                bail!("linux.resources.{field}: give hcaHandles, hcaObjects or both");
            }
            out.push(Step::Write(w("rdma.max", line, field)));
        }
        Ok(out)
    }
}

/// A resource group: the config key, its v1 and v2 controller names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Group {
    Memory,
    Cpu,
    Cpuset,
    Pids,
    BlockIo,
    Hugetlb,
    NetCls,
    NetPrio,
    Rdma,
    Devices,
}

impl Group {
    const ALL: [Group; 10] = [
        Group::Cpuset,
        Group::Cpu,
        Group::Memory,
        Group::Pids,
        Group::BlockIo,
        Group::Hugetlb,
        Group::NetCls,
        Group::NetPrio,
        Group::Rdma,
        Group::Devices,
    ];

    fn names(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Group::Memory => ("memory", "memory", "memory"),
            Group::Cpu => ("cpu", "cpu", "cpu"),
            Group::Cpuset => ("cpu.cpus/mems", "cpuset", "cpuset"),
            Group::Pids => ("pids", "pids", "pids"),
            Group::BlockIo => ("blockIO", "blkio", "io"),
            Group::Hugetlb => ("hugepageLimits", "hugetlb", "hugetlb"),
            Group::NetCls => ("network.classID", "net_cls", "net_cls"),
            Group::NetPrio => ("network.priorities", "net_prio", "net_prio"),
            Group::Rdma => ("rdma", "rdma", "rdma"),
            Group::Devices => ("devices", "devices", "devices"),
        }
    }

    fn present(self, r: &LinuxResources) -> bool {
        let cpu = r.cpu().as_ref();
        match self {
            Group::Memory => r.memory().is_some(),
            Group::Cpu => cpu.is_some_and(|c| {
                c.shares().is_some()
                    || c.quota().is_some()
                    || c.period().is_some()
                    || c.burst().is_some()
                    || c.realtime_runtime().is_some()
                    || c.realtime_period().is_some()
                    || c.idle().is_some()
            }),
            Group::Cpuset => cpu.is_some_and(|c| {
                c.cpus().as_deref().is_some_and(|s| !s.is_empty())
                    || c.mems().as_deref().is_some_and(|s| !s.is_empty())
            }),
            Group::Pids => r.pids().is_some(),
            Group::BlockIo => r.block_io().is_some(),
            Group::Hugetlb => r.hugepage_limits().as_ref().is_some_and(|l| !l.is_empty()),
            Group::NetCls => r.network().as_ref().is_some_and(|n| n.class_id().is_some()),
            Group::NetPrio => r
                .network()
                .as_ref()
                .is_some_and(|n| n.priorities().as_ref().is_some_and(|p| !p.is_empty())),
            Group::Rdma => r.rdma().as_ref().is_some_and(|m| !m.is_empty()),
            // runc (and so every engine) always installs a device policy: deny by default,
            // the config's rules, then the devices every container needs.
            Group::Devices => true,
        }
    }

    fn steps(self, d: &dyn Driver, r: &LinuxResources) -> Result<Vec<Step>> {
        let cpu = || r.cpu().clone().unwrap_or_default();
        let net = || r.network().clone().unwrap_or_default();
        match self {
            Group::Memory => d.memory(&r.memory().unwrap_or_default()),
            Group::Cpu => d.cpu(&cpu()),
            Group::Cpuset => Ok(d.cpuset(&cpu())),
            Group::Pids => Ok(d.pids(&r.pids().unwrap_or_default())),
            Group::BlockIo => d.block_io(&r.block_io().clone().unwrap_or_default()),
            Group::Hugetlb => d.hugetlb(r.hugepage_limits().as_deref().unwrap_or_default()),
            Group::NetCls => d.net_cls(&net()),
            Group::NetPrio => d.net_prio(&net()),
            Group::Rdma => d.rdma(&r.rdma().clone().unwrap_or_default()),
            Group::Devices => d.devices(r.devices().as_deref().unwrap_or_default()),
        }
    }
}

/// Which parts of `linux.resources` to apply: all at create, the touched ones at update
/// (plus, on v2, the saved device rules, which runc re-applies at every update).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Create,
    Update,
}

/// The directory serving `controller`: a v1 hierarchy that binds it, else the v2 tree if it
/// offers it. `devices` and `freezer` are always there on v2 (BPF and `cgroup.freeze`).
pub fn dir_for<'a>(cg: &'a Cgroup, v1: &str, v2: &str) -> Option<&'a Dir> {
    cg.dirs
        .iter()
        .find(|d| !d.v2 && d.controllers.iter().any(|c| c == v1))
        .or_else(|| {
            cg.dirs.iter().find(|d| {
                d.v2 && (d.controllers.iter().any(|c| c == v2)
                    || matches!(v2, "devices" | "freezer"))
            })
        })
}

/// Every write the resources need, with the directory it goes to (pure).
pub fn plan(cg: &Cgroup, r: &LinuxResources, scope: Scope) -> Result<Vec<(PathBuf, Step)>> {
    let mut out = Vec::new();
    for g in Group::ALL {
        if !g.present(r) || (g == Group::Devices && cg.rootless) {
            continue;
        }
        let (field, v1, v2) = g.names();
        let dir = dir_for(cg, v1, v2);
        // At update runc's Set re-applies the saved device rules; on v2 the program is swapped
        // atomically, while v1 would briefly deny everything ("a" first), so v1 is left alone.
        if g == Group::Devices && scope == Scope::Update && !dir.is_some_and(|d| d.v2) {
            continue;
        }
        let Some(dir) = dir else {
            if g == Group::Devices && r.devices().as_deref().unwrap_or_default().is_empty() {
                // No devices controller and no rules: nothing is asked of it.
                continue;
            }
            if matches!(g, Group::NetCls | Group::NetPrio) && cg.dirs.iter().all(|d| d.v2) {
                // v1-only controllers: the v2 driver says why.
                g.steps(&super::v2::V2, r)?;
            }
            bail!("linux.resources.{field}: the {v1} controller is not available on this host");
        };
        let driver: &dyn Driver = if dir.v2 {
            &super::v2::V2
        } else {
            &super::v1::V1
        };
        for s in g.steps(driver, r)? {
            out.push((dir.path.clone(), s));
        }
    }
    out.extend(unified(cg, r)?);
    Ok(out)
}

/// `unified`: raw v2 files, written last so they win. On a hybrid host a key may name a
/// controller of the v2 tree; on v1 there is nowhere to write them.
fn unified(cg: &Cgroup, r: &LinuxResources) -> Result<Vec<(PathBuf, Step)>> {
    let Some(map) = r.unified().as_ref().filter(|m| !m.is_empty()) else {
        return Ok(Vec::new());
    };
    let Some(dir) = cg.dirs.iter().find(|d| d.v2) else {
        bail!("linux.resources.unified: needs cgroup v2, and this host has only cgroup v1");
    };
    let mut keys: Vec<_> = map.iter().collect();
    keys.sort();
    let mut out = Vec::new();
    for (k, v) in keys {
        let field = format!("unified.{k}");
        files::check_name(k).with_context(|| format!("linux.resources.{field}"))?;
        let Some((ctrl, _)) = k.split_once('.') else {
            bail!("linux.resources.{field}: not a cgroup v2 file name (controller.knob)");
        };
        let offered = ctrl == "cgroup" || dir.controllers.iter().any(|c| c == ctrl);
        if !offered {
            let why = if cg
                .dirs
                .iter()
                .any(|d| !d.v2 && d.controllers.iter().any(|c| c == ctrl))
            {
                "is bound to cgroup v1 on this host"
            } else {
                "is not available in the cgroup v2 tree"
            };
            bail!("linux.resources.{field}: the {ctrl} controller {why}");
        }
        // runc's WriteFileByLine: the kernel parses one entry per write (io.max, rdma.max,
        // hugetlb…), so a value of several lines is written line by line.
        let lines: Vec<&str> = v.split('\n').filter(|l| !l.is_empty()).collect();
        if lines.len() > 1 {
            for l in lines {
                out.push((dir.path.clone(), Step::Write(w(k.as_str(), l, &field))));
            }
        } else {
            out.push((dir.path.clone(), Step::Write(w(k.as_str(), v, field))));
        }
    }
    Ok(out)
}

/// The v2 controllers the plan uses, to enable in `cgroup.subtree_control` above the leaf.
pub fn v2_controllers(cg: &Cgroup, r: &LinuxResources) -> Vec<String> {
    let mut out = Vec::new();
    for g in Group::ALL {
        let (_, v1, v2) = g.names();
        if g.present(r) && dir_for(cg, v1, v2).is_some_and(|d| d.v2) && g != Group::Devices {
            out.push(v2.to_string());
        }
    }
    for k in r.unified().as_ref().map(|m| m.keys()).into_iter().flatten() {
        if let Some((c, _)) = k.split_once('.').filter(|(c, _)| *c != "cgroup") {
            out.push(c.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

pub fn apply(steps: &[(PathBuf, Step)]) -> Result<()> {
    for (dir, s) in steps {
        apply_one(dir, s)?;
    }
    Ok(())
}

fn apply_one(dir: &Path, s: &Step) -> Result<()> {
    match s {
        Step::Write(x) => write(dir, x),
        Step::FirstOf(list) => {
            let Some(x) = list.iter().find(|x| dir.join(&x.file).exists()) else {
                let names: Vec<&str> = list.iter().map(|x| x.file.as_str()).collect();
                bail!(
                    "linux.resources.{}: this host has none of {} in {}",
                    list.first().map(|x| x.field.as_str()).unwrap_or(""),
                    names.join(", "),
                    dir.display()
                );
            };
            write(dir, x)
        }
        Step::Together(list) => {
            let mut later = Vec::new();
            for x in list {
                match write(dir, x) {
                    Err(e) if einval(&e) => later.push(x),
                    other => other?,
                }
            }
            later.into_iter().try_for_each(|x| write(dir, x))
        }
        Step::UsageBelow {
            files: names,
            limit,
            field,
        } => {
            let mut usage = 0u64;
            for (i, f) in names.iter().enumerate() {
                match files::read(dir, f) {
                    Ok(v) => usage += v.parse::<u64>().unwrap_or(0),
                    Err(e) if i == 0 => return Err(e.context(format!("linux.resources.{field}"))),
                    Err(_) => {}
                }
            }
            if usage >= *limit {
                bail!("linux.resources.{field}: rejecting limit {limit}, not above the current usage {usage} (checkBeforeUpdate)");
            }
            Ok(())
        }
        Step::DeviceProgram(prog) => super::bpf_devices::attach(dir, prog)
            .context("linux.resources.devices: attach the cgroup v2 device program"),
    }
}

fn write(dir: &Path, x: &W) -> Result<()> {
    if x.optional && !dir.join(&x.file).exists() {
        return Ok(());
    }
    files::write(dir, &x.file, &x.value).with_context(|| format!("linux.resources.{}", x.field))
}

fn einval(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.raw_os_error() == Some(libc::EINVAL))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v2_cgroup() -> Cgroup {
        Cgroup {
            dirs: vec![Dir {
                path: "/sys/fs/cgroup/c1".into(),
                mount: "/sys/fs/cgroup".into(),
                v2: true,
                controllers: vec!["io".into(), "memory".into()],
            }],
            ..Default::default()
        }
    }

    #[test]
    fn unified_values_of_several_lines_are_written_line_by_line() {
        let r: LinuxResources = serde_json::from_str(
            r#"{"unified": {"io.max": "1:0 rbps=1000\n1:0 wiops=5\n", "memory.high": "4096"}}"#,
        )
        .unwrap();
        let writes: Vec<(String, String)> = unified(&v2_cgroup(), &r)
            .unwrap()
            .into_iter()
            .map(|(_, s)| match s {
                Step::Write(x) => (x.file, x.value),
                other => panic!("{other:?}"),
            })
            .collect();
        let pairs = [
            ("io.max", "1:0 rbps=1000"),
            ("io.max", "1:0 wiops=5"),
            ("memory.high", "4096"),
        ];
        let want: Vec<(String, String)> = pairs
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect();
        assert_eq!(writes, want);
    }
}
