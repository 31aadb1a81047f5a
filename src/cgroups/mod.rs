//! The container's cgroups, through cgroupfs, on v1, v2 and hybrid hosts (runtime process,
//! host namespaces). `create` plans the directories (recorded before they exist), makes them,
//! applies `linux.resources` and moves init in before it runs any user code; `exec` joins
//! them; `pause`/`resume`, `update`, `events`, `ps` and `kill --all` work on them; `delete`
//! removes them once their processes are gone.
//!
//! Layout detection and runc's `cgroupsPath` rules are in `layout.rs`; resources become file
//! writes in `resources.rs` through the v1 and v2 drivers (`v1.rs`, `v2.rs`); devices are v1
//! rules or a v2 BPF program (`devices_v1.rs`, `bpf_devices.rs`).

pub mod bpf_devices;
mod devices_v1;
mod files;
pub mod freeze;
pub mod layout;
pub mod oom;
pub mod resources;
pub mod stats;
mod stats_json;
mod v1;
mod v2;

use anyhow::{bail, Context, Result};
use oci_spec::runtime::{Linux, LinuxResources};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// File in the state dir naming the cgroup before state.json exists.
pub const RECORD: &str = "cgroup.json";

/// The container's directory in one hierarchy.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Dir {
    pub path: PathBuf,
    /// The hierarchy's mount point.
    pub mount: PathBuf,
    pub v2: bool,
    /// v1: the controllers of the hierarchy; v2: those the tree offers.
    pub controllers: Vec<String>,
}

/// The directories of one container's cgroup, one per hierarchy.
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Cgroup {
    pub dirs: Vec<Dir>,
    /// Every directory ruse creates, parents first (removed on delete, children first).
    #[serde(default)]
    pub created: Vec<PathBuf>,
    /// The Intel RDT (resctrl) group, when `linux.intelRdt` asked for one.
    #[serde(default)]
    pub rdt: Option<crate::intelrdt::Group>,
    /// A rootless container's delegated cgroup: no device rules (runc ignores them there too:
    /// the v1 devices controller and v2's BPF programs need root on the host).
    #[serde(default)]
    pub rootless: bool,
}

/// The host's layout, read once per process.
pub fn host_layout() -> Result<&'static layout::Layout> {
    static L: OnceLock<std::result::Result<layout::Layout, String>> = OnceLock::new();
    L.get_or_init(|| layout::detect().map_err(|e| format!("{e:#}")))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("cgroups: {e}"))
}

/// Works out the container's directories, and which of them ruse will create, without
/// touching anything, so they can be recorded before they exist. With `rootless`, the
/// container gets a cgroup only where every hierarchy is delegated to the caller (a v2 tree
/// it owns); otherwise none, and `linux.resources` that need one are refused.
pub fn plan(id: &str, linux: Option<&Linux>, rootless: bool) -> Result<Cgroup> {
    let mut cg = plan_dirs(id, linux)?;
    if !rootless || cg.dirs.is_empty() {
        return Ok(cg);
    }
    if let Some(dir) = cg.dirs.iter().find(|d| !delegated(&d.path)) {
        let why = format!(
            "a rootless container could not join or create a cgroup: {} is not delegated to uid {}",
            dir.path.display(),
            crate::sys::process::geteuid()
        );
        let res = linux.and_then(|l| l.resources().as_ref());
        if let Some(what) = res.and_then(|r| requested_except(r, &["devices"])) {
            bail!("linux.resources.{what}: cannot set {what} limit: {why}");
        }
        crate::log::debug(&format!("{why}: the container runs without a cgroup"));
        cg.dirs.clear();
        cg.created.clear();
        return Ok(cg);
    }
    // Device rules need root on the host (v1's devices controller, v2's BPF programs).
    cg.rootless = crate::sys::process::geteuid() != 0 || crate::userns::in_user_namespace();
    Ok(cg)
}

/// True when the caller may create and move processes into cgroups at `path`: the nearest
/// existing directory and its `cgroup.procs` are writable (what systemd's delegation grants).
fn delegated(path: &Path) -> bool {
    path.ancestors().find(|d| d.exists()).is_some_and(|d| {
        crate::sys::fs::can_write(d) && crate::sys::fs::can_write(&d.join("cgroup.procs"))
    })
}

fn plan_dirs(id: &str, linux: Option<&Linux>) -> Result<Cgroup> {
    let cgroups_path = linux.and_then(|l| l.cgroups_path().as_deref());
    let mut cg = Cgroup {
        rdt: linux
            .and_then(|l| l.intel_rdt().as_ref())
            .map(|r| crate::intelrdt::plan(id, r)),
        ..Default::default()
    };
    let l = match host_layout() {
        Ok(l) => l,
        // Nothing to cap with and nothing asked for: run without a cgroup of our own rather
        // than refuse (runc's usual place for this is `ip netns exec`, which hides them).
        Err(e) if layout::nothing_mounted() => {
            if let Some(what) = linux
                .and_then(|l| l.resources().as_ref())
                .and_then(requested)
            {
                return Err(e.context(format!(
                    "linux.resources.{what}: no cgroup hierarchy is visible in this mount namespace"
                )));
            }
            crate::log::debug(&format!("{e:#}: the container gets no cgroup of its own"));
            return Ok(cg);
        }
        Err(e) => return Err(e),
    };
    for h in &l.hierarchies {
        let path = layout::resolve(h, l.mode, cgroups_path, id)?;
        let mut missing: Vec<PathBuf> = path
            .ancestors()
            .take_while(|d| !d.exists())
            .map(Path::to_path_buf)
            .collect();
        missing.reverse();
        cg.created.extend(missing);
        cg.dirs.push(Dir {
            path,
            mount: h.mount.clone(),
            v2: h.v2,
            controllers: h.controllers.clone(),
        });
    }
    Ok(cg)
}

/// The first resource group `r` really sets, if any.
fn requested(r: &LinuxResources) -> Option<String> {
    requested_except(r, &[])
}

/// The first resource group `r` really sets, other than `skip`.
fn requested_except(r: &LinuxResources, skip: &[&str]) -> Option<String> {
    let v = serde_json::to_value(r).ok()?;
    v.as_object()?
        .iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .find(|(_, v)| !(v.is_null() || v.as_array().is_some_and(|a| a.is_empty())))
        .map(|(k, _)| k.clone())
}

/// runtime-spec: `pids.limit` is optional and 0 is a real limit, but the Rust type reads a
/// missing limit as 0: a `pids` object without a limit is dropped before parsing.
pub fn drop_pids_without_limit(config: &mut serde_json::Value) {
    if let Some(r) = config
        .pointer_mut("/linux/resources")
        .and_then(serde_json::Value::as_object_mut)
    {
        if r.get("pids").and_then(|p| p.get("limit")).is_none() {
            r.remove("pids");
        }
    }
}

/// Checks `linux.resources` against this host before anything is touched (a dry plan).
pub fn check(r: &LinuxResources) -> Result<()> {
    let l = host_layout()?;
    let mut cg = Cgroup::default();
    for h in &l.hierarchies {
        cg.dirs.push(Dir {
            path: h.mount.join("ruse-check"),
            mount: h.mount.clone(),
            v2: h.v2,
            controllers: h.controllers.clone(),
        });
    }
    resources::plan(&cg, r, resources::Scope::Create).map(drop)
}

/// Creates the planned directories, applies `resources` and moves `pid` in. An existing
/// cgroup that already has processes, or is frozen, is refused, as runc does.
pub fn setup(cg: &Cgroup, linux: Option<&Linux>, pid: i32) -> Result<()> {
    let res = linux.and_then(|l| l.resources().as_ref());
    for d in cg.dirs.iter().filter(|d| !cg.created.contains(&d.path)) {
        let mut procs = Vec::new();
        files::procs_recursive(&d.path, &mut procs);
        if !procs.is_empty() {
            bail!(
                "linux.cgroupsPath: cgroup {} already has processes",
                d.path.display()
            );
        }
    }
    for dir in &cg.created {
        files::create(dir)?;
    }
    let empty = LinuxResources::default();
    let r = res.unwrap_or(&empty);
    let pure_v2 = cg.dirs.iter().all(|d| d.v2);
    let wanted = resources::v2_controllers(cg, r);
    for d in &cg.dirs {
        if d.v2 {
            // On a pure v2 host every controller is delegated, so stats see them all.
            files::enable_controllers(
                &d.mount,
                &d.path,
                if pure_v2 { &d.controllers } else { &wanted },
            );
        } else {
            files::populate_cpuset(&d.mount, &d.path)?;
        }
    }
    freeze::refuse_frozen(cg)?;
    resources::apply(&resources::plan(cg, r, resources::Scope::Create)?)?;
    join(cg, pid)?;
    if let (Some(g), Some(rdt)) = (&cg.rdt, linux.and_then(|l| l.intel_rdt().as_ref())) {
        crate::intelrdt::setup(g, rdt, pid)?;
    }
    Ok(())
}

/// Moves `pid` into every directory of the container (init at create, processes at exec).
pub fn join(cg: &Cgroup, pid: i32) -> Result<()> {
    for d in &cg.dirs {
        files::write(&d.path, "cgroup.procs", &pid.to_string())
            .with_context(|| format!("move pid {pid} into cgroup {}", d.path.display()))?;
    }
    Ok(())
}

/// Every process of the container (its cgroups and any it made below them).
pub fn pids(cg: &Cgroup) -> Vec<i32> {
    let mut out = Vec::new();
    if let Some(d) = cg.dirs.iter().find(|d| d.v2).or(cg.dirs.first()) {
        files::procs_recursive(&d.path, &mut out);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// Sends `sig` to every process of the container. SIGKILL goes through v2's `cgroup.kill`,
/// which no fork can race; otherwise the cgroup is frozen while its pids are read and
/// signalled (as runc does), and restored to its previous freezer state afterwards.
/// `to_init` signals init through its pidfd, so a reused pid is never hit.
pub fn signal_all(
    cg: &Cgroup,
    sig: i32,
    init: i32,
    to_init: &dyn Fn(i32) -> Result<()>,
) -> Result<()> {
    if sig == libc::SIGKILL {
        if let Some(d) = cg
            .dirs
            .iter()
            .find(|d| d.v2 && d.path.join("cgroup.kill").exists())
        {
            files::write(&d.path, "cgroup.kill", "1")?;
            // cgroup.kill wakes the tasks v2's freezer holds, but on a hybrid host a paused
            // container is held by the v1 freezer, whose tasks die only once thawed.
            if freeze::state(cg) == freeze::Freezer::Frozen {
                freeze::set(cg, false)?;
            }
            return Ok(());
        }
    }
    let was = freeze::state(cg);
    let froze = was == freeze::Freezer::Thawed && freeze::set(cg, true).is_ok();
    let mut res = Ok(());
    for pid in pids(cg) {
        let r = if pid == init {
            to_init(sig)
        } else {
            crate::sys::process::kill(pid, sig)
                .or_else(|e| {
                    if e.raw_os_error() == Some(libc::ESRCH) {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .with_context(|| format!("signal {sig} to pid {pid}"))
        };
        if res.is_ok() {
            res = r;
        }
    }
    if froze || (sig == libc::SIGKILL && was == freeze::Freezer::Frozen) {
        freeze::set(cg, false)?;
    }
    res
}

impl Cgroup {
    /// Removes the directories ruse made, children first. The container's own directories
    /// go with any cgroups the container made inside them; a parent ruse made is removed
    /// only once empty, since later containers may share it (a pod's cgroup). A process
    /// that was just killed leaves its cgroup only once reaped: EBUSY is retried for ~2 s.
    pub fn remove(&self) -> Result<()> {
        let mut res = Ok(());
        for dir in self.created.iter().rev() {
            let r = if self.dirs.iter().any(|d| &d.path == dir) {
                remove_tree(dir)
            } else {
                match std::fs::remove_dir(dir) {
                    Err(e)
                        if e.kind() != std::io::ErrorKind::NotFound
                            && e.raw_os_error() != Some(libc::EBUSY)
                            && e.raw_os_error() != Some(libc::ENOTEMPTY) =>
                    {
                        Err(e).with_context(|| format!("remove cgroup {}", dir.display()))
                    }
                    _ => Ok(()),
                }
            };
            if let Err(e) = r {
                res = res.and(Err(e));
            }
        }
        if let Some(g) = &self.rdt {
            res = res.and(g.remove());
        }
        res
    }
}

fn remove_tree(dir: &Path) -> Result<()> {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            remove_tree(&e.path())?;
        }
    }
    let mut nap = std::time::Duration::from_millis(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 12 => {
                std::thread::sleep(nap);
                nap = (nap * 2).min(std::time::Duration::from_millis(500));
            }
            Err(e) => return Err(e).with_context(|| format!("remove cgroup {}", dir.display())),
        }
    }
}
