//! OOM notifications for `events` (runtime process, host namespaces): v1 registers an
//! eventfd on `memory.oom_control` through `cgroup.event_control`; v2 watches `memory.events`
//! with inotify and counts `oom_kill`, as runc does: `oom` counts every time the limit made an
//! allocation about to fail, also when no process was killed, which runc does not report.

use super::{files, resources::dir_for, Cgroup};
use anyhow::{Context, Result};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::PathBuf;

pub enum Watch {
    V1 {
        efd: OwnedFd,
        dir: PathBuf,
        /// Kept open: the registration lives as long as this fd.
        _ctl: std::fs::File,
    },
    V2 {
        ino: OwnedFd,
        dir: PathBuf,
        seen: u64,
    },
}

/// Watches the container's memory controller; None when the host has none.
pub fn watch(cg: &Cgroup) -> Result<Option<Watch>> {
    let Some(d) = dir_for(cg, "memory", "memory") else {
        return Ok(None);
    };
    if d.v2 {
        let ino = crate::sys::notify::inotify_modify(&d.path.join("memory.events"))
            .with_context(|| format!("watch {}/memory.events", d.path.display()))?;
        let seen = oom_count(&d.path);
        return Ok(Some(Watch::V2 {
            ino,
            dir: d.path.clone(),
            seen,
        }));
    }
    let ctl_path = d.path.join("memory.oom_control");
    let ctl =
        std::fs::File::open(&ctl_path).with_context(|| format!("open {}", ctl_path.display()))?;
    let efd = crate::sys::notify::eventfd().context("eventfd")?;
    let line = format!("{} {}", efd.as_raw_fd(), ctl.as_raw_fd());
    files::write(&d.path, "cgroup.event_control", &line)?;
    Ok(Some(Watch::V1 {
        efd,
        dir: d.path.clone(),
        _ctl: ctl,
    }))
}

fn oom_count(dir: &std::path::Path) -> u64 {
    files::read_keyed(dir, "memory.events")
        .get("oom_kill")
        .copied()
        .unwrap_or(0)
}

impl Watch {
    pub fn fd(&self) -> RawFd {
        match self {
            Watch::V1 { efd, .. } => efd.as_raw_fd(),
            Watch::V2 { ino, .. } => ino.as_raw_fd(),
        }
    }

    /// How many OOM events happened since the last call.
    pub fn take(&mut self) -> Result<u64> {
        match self {
            Watch::V1 { efd, dir, .. } => {
                let n = crate::sys::notify::eventfd_take(efd.as_fd())?;
                // Removing the cgroup signals the eventfd too: that is no OOM.
                Ok(if dir.join("cgroup.event_control").exists() {
                    n
                } else {
                    0
                })
            }
            Watch::V2 { ino, dir, seen } => {
                crate::sys::notify::inotify_drain(ino.as_fd());
                let now = oom_count(dir);
                let new = now.saturating_sub(*seen);
                *seen = now;
                Ok(new)
            }
        }
    }
}
