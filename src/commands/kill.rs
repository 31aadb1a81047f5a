//! `ruse kill`: signal init through a pidfd checked against the saved start time, so a
//! reused pid is never signalled; `--all`, and SIGKILL of a container sharing the host's pid
//! namespace, reach every process of its cgroup.

use super::Globals;
use crate::container::{Container, Lock};
use crate::errors::RuseError;
use crate::state::{Facts, Status};
use crate::sys::process as sp;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;

pub fn kill(g: &Globals, id: &str, signal: Option<&str>, all: bool) -> Result<()> {
    let sig = crate::signal::parse(signal.unwrap_or("SIGTERM"))?;
    let (c, f) = Container::open_existing(&g.root, id, Lock::Exclusive)?;
    let stopped = f.status(&c.dir) == Status::Stopped;
    // As runc: `--all` still reaches what is left in the cgroup once init is gone (children
    // of a container sharing the host's pid namespace); containerd's shim relies on it.
    if stopped && all {
        return signal_all(&f, sig);
    }
    if stopped {
        return Err(RuseError::WrongStatus("kill", "stopped").into());
    }
    // Without its own pid namespace, init's death does not take the other processes along:
    // SIGKILL must reach them all (runc does the same).
    if all || (sig == libc::SIGKILL && !own_pid_ns(&f)) {
        return signal_all(&f, sig);
    }
    let pidfd = init_pidfd(&f)?.ok_or(RuseError::WrongStatus("kill", "stopped"))?;
    sp::pidfd_send_signal(pidfd.as_fd(), sig)
        .with_context(|| format!("signal {sig} to pid {}", f.pid))?;
    // A frozen process dies of SIGKILL only once thawed (cgroup v1).
    if sig == libc::SIGKILL {
        crate::cgroups::freeze::thaw_if_frozen(&f.cgroup)?;
    }
    Ok(())
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

/// True when init has a pid namespace of its own (not ours).
pub fn own_pid_ns(f: &Facts) -> bool {
    pid_ns_inode(f.pid).is_some_and(|ns| Some(ns) != pid_ns_inode(sp::getpid()))
}

/// Every process of the container: its cgroup bounds it exactly, with or without a pid
/// namespace. Without cgroups only the container's own pid namespace can bound it.
pub fn signal_all(f: &Facts, sig: i32) -> Result<()> {
    let to_init = |sig: i32| -> Result<()> {
        if let Some(fd) = init_pidfd(f)? {
            sp::pidfd_send_signal(fd.as_fd(), sig).context("signal init")?;
        }
        Ok(())
    };
    if !f.cgroup.dirs.is_empty() {
        return crate::cgroups::signal_all(&f.cgroup, sig, f.pid, &to_init);
    }
    if pid_ns_inode(f.pid).is_none() {
        return Ok(());
    }
    if !own_pid_ns(f) {
        bail!("not supported: kill --all of a container without its own pid namespace (needs cgroups)");
    }
    to_init(sig)?;
    for pid in pid_ns_members(f)? {
        if pid != f.pid {
            let _ = sp::kill(pid, sig);
        }
    }
    Ok(())
}

/// The host pids of every process in init's pid namespace (init's own namespace, or the
/// container would reach beyond itself): what bounds a container that has no cgroup.
pub fn pid_ns_members(f: &Facts) -> Result<Vec<i32>> {
    let Some(ns) = pid_ns_inode(f.pid) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").context("read /proc")?.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        if pid_ns_inode(pid) == Some(ns) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    Ok(out)
}
