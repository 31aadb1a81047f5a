//! `ruse kill`: signal init through a pidfd checked against the saved start time, so a
//! reused pid is never signalled.

use super::Globals;
use crate::container::{Container, Lock};
use crate::errors::RuseError;
use crate::state::{Facts, Status};
use crate::sys::process as sp;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::Path;

pub fn kill(g: &Globals, id: &str, signal: Option<&str>, all: bool) -> Result<()> {
    let sig = crate::signal::parse(signal.unwrap_or("SIGTERM"))?;
    let (c, f) = Container::open_existing(&g.root, id, Lock::Exclusive)?;
    if f.status(&c.dir) == Status::Stopped {
        return Err(RuseError::WrongStatus("kill", "stopped").into());
    }
    if all {
        return signal_all(&f, sig);
    }
    let pidfd = init_pidfd(&f)?.ok_or(RuseError::WrongStatus("kill", "stopped"))?;
    sp::pidfd_send_signal(pidfd.as_fd(), sig)
        .with_context(|| format!("signal {sig} to pid {}", f.pid))
}

/// A pidfd of init, or None when the pid now belongs to another process (or none).
pub fn init_pidfd(f: &Facts) -> Result<Option<OwnedFd>> {
    let fd = match sp::pidfd_open(f.pid) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => return Ok(None),
        Err(e) => return Err(e).context("pidfd_open"),
    };
    // Checked after opening: the pidfd now pins the process we compared.
    Ok(f.init_alive().then_some(fd))
}

fn pid_ns_inode(pid: i32) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|m| m.ino())
}

/// Every process in the container's cgroup, which bounds it exactly, with or without a pid
/// namespace. Each pid is pinned with a pidfd and signalled only if it is still in the cgroup
/// after that, so a process that exited and whose pid was reused meanwhile is never hit.
fn signal_cgroup(dir: &Path, sig: i32) -> Result<()> {
    let procs = || -> Vec<i32> {
        std::fs::read_to_string(dir.join("cgroup.procs"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect()
    };
    let pinned: Vec<(i32, OwnedFd)> = procs()
        .into_iter()
        .filter_map(|pid| sp::pidfd_open(pid).ok().map(|fd| (pid, fd)))
        .collect();
    let still = procs();
    for (_, fd) in pinned.iter().filter(|(pid, _)| still.contains(pid)) {
        let _ = sp::pidfd_send_signal(fd.as_fd(), sig);
    }
    Ok(())
}

/// Kills what is left in the cgroup of a container whose init has exited (without a pid
/// namespace of its own, its other processes outlive it), as runc does on delete, or whose
/// create was killed; otherwise they would keep running and hold the cgroup.
pub fn kill_leftovers(cg: &crate::cgroups::Cgroup) -> Result<()> {
    match cg.dirs.first() {
        Some(dir) => signal_cgroup(dir, libc::SIGKILL),
        None => Ok(()),
    }
}

/// Every process of the container's own pid namespace (without cgroups, the namespace is what
/// bounds "all"; a container sharing the host's pid namespace cannot be told apart).
pub fn signal_all(f: &Facts, sig: i32) -> Result<()> {
    if let Some(dir) = f.cgroup.dirs.first() {
        signal_cgroup(dir, sig)?;
        return Ok(());
    }
    let Some(ns) = pid_ns_inode(f.pid) else {
        return Ok(());
    };
    if Some(ns) == pid_ns_inode(sp::getpid()) {
        bail!("not supported: kill --all of a container without its own pid namespace (needs cgroups)");
    }
    if let Some(fd) = init_pidfd(f)? {
        sp::pidfd_send_signal(fd.as_fd(), sig).context("signal init")?;
    }
    for e in std::fs::read_dir("/proc").context("read /proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid != f.pid && pid_ns_inode(pid) == Some(ns) {
            let _ = sp::kill(pid, sig);
        }
    }
    Ok(())
}
