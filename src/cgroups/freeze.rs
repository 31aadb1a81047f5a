//! Pause and resume: the v1 freezer (`freezer.state`) or v2's `cgroup.freeze`, whichever
//! hierarchy serves `freezer` for the container (runtime process, host namespaces).

use super::{files, resources::dir_for, Cgroup};
use anyhow::{bail, Context, Result};
use std::path::Path;
use std::time::{Duration, Instant};

/// How a cgroup's freezer reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freezer {
    Thawed,
    /// Frozen by a write to this very cgroup (what `pause` does).
    Frozen,
    /// Frozen, or freezing, because an ancestor is.
    FrozenByParent,
}

pub fn state(cg: &Cgroup) -> Freezer {
    match dir_for(cg, "freezer", "freezer") {
        Some(d) if d.v2 => state_v2(&d.path),
        Some(d) => state_v1(&d.path),
        None => Freezer::Thawed,
    }
}

fn state_v1(dir: &Path) -> Freezer {
    match files::read(dir, "freezer.state").ok().as_deref() {
        Some("FROZEN") | Some("FREEZING") => {
            if files::read(dir, "freezer.self_freezing").ok().as_deref() == Some("1") {
                Freezer::Frozen
            } else {
                Freezer::FrozenByParent
            }
        }
        _ => Freezer::Thawed,
    }
}

fn state_v2(dir: &Path) -> Freezer {
    if files::read(dir, "cgroup.freeze").ok().as_deref() == Some("1") {
        return Freezer::Frozen;
    }
    if files::read_keyed(dir, "cgroup.events").get("frozen") == Some(&1) {
        return Freezer::FrozenByParent;
    }
    Freezer::Thawed
}

/// Freezes (`true`) or thaws the container, waiting until the kernel reports it done.
pub fn set(cg: &Cgroup, frozen: bool) -> Result<()> {
    let Some(d) = dir_for(cg, "freezer", "freezer") else {
        bail!("the freezer controller is not available on this host");
    };
    if d.v2 {
        set_v2(&d.path, frozen)
    } else {
        set_v1(&d.path, frozen)
    }
}

/// v1 can stay FREEZING while processes keep forking; like runc, write again, and thaw for a
/// moment every so often to let stragglers settle, before giving up.
fn set_v1(dir: &Path, frozen: bool) -> Result<()> {
    if !frozen {
        return files::write(dir, "freezer.state", "THAWED");
    }
    for i in 0..1000 {
        if i % 50 == 49 {
            let _ = files::write(dir, "freezer.state", "THAWED");
            std::thread::sleep(Duration::from_millis(10));
        }
        files::write(dir, "freezer.state", "FROZEN")?;
        match files::read(dir, "freezer.state")?.as_str() {
            "FROZEN" => return Ok(()),
            "FREEZING" => std::thread::sleep(Duration::from_micros(100)),
            other => bail!(
                "freezer.state in {} reads {other:?} after FROZEN",
                dir.display()
            ),
        }
    }
    let _ = files::write(dir, "freezer.state", "THAWED");
    bail!(
        "{}: processes did not freeze (still FREEZING)",
        dir.display()
    )
}

/// v2 freezing is asynchronous: `cgroup.events` says `frozen 1` once every task stopped.
fn set_v2(dir: &Path, frozen: bool) -> Result<()> {
    files::write(dir, "cgroup.freeze", if frozen { "1" } else { "0" })?;
    let want = u64::from(frozen);
    let end = Instant::now() + Duration::from_secs(10);
    let mut nap = Duration::from_micros(200);
    loop {
        let ev = files::read_keyed(dir, "cgroup.events");
        // Thawing under a frozen ancestor never reads `frozen 0`: the write is what counts.
        if ev.get("frozen") == Some(&want) || (!frozen && state_v2(dir) != Freezer::Frozen) {
            return Ok(());
        }
        if Instant::now() > end {
            if frozen {
                let _ = files::write(dir, "cgroup.freeze", "0");
            }
            bail!(
                "{}: cgroup.events did not report frozen {want} within 10s",
                dir.display()
            );
        }
        std::thread::sleep(nap);
        nap = (nap * 2).min(Duration::from_millis(20));
    }
}

/// Refuses a cgroup that is frozen, or under a frozen parent: init would stop on joining.
pub fn refuse_frozen(cg: &Cgroup) -> Result<()> {
    if state(cg) != Freezer::Thawed {
        let d = dir_for(cg, "freezer", "freezer").map(|d| d.path.display().to_string());
        bail!(
            "linux.cgroupsPath: cgroup {} is frozen",
            d.unwrap_or_default()
        );
    }
    Ok(())
}

/// Thaws after signalling, so a paused container's processes can act on (or die of) it.
pub fn thaw_if_frozen(cg: &Cgroup) -> Result<()> {
    if state(cg) == Freezer::Frozen {
        set(cg, false).context("thaw")?;
    }
    Ok(())
}
