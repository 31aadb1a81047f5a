//! Init's namespace steps, in init (host namespaces at first): join the namespaces given by
//! path, make a new user namespace when the plan leaves it to init (the parent writes its
//! maps), unshare the namespaces that user namespace must own, and fork into a new pid
//! namespace when one was unshared (it applies only to children). See namespaces.rs.
//!
//! Order matters for the kernel's permission checks. setns into a namespace needs
//! CAP_SYS_ADMIN over its owning user namespace: before init enters a joined or new user
//! namespace it has the runtime's own privileges (enough for root for everything); afterwards
//! it has all capabilities in that namespace and none outside. So a namespace the joined user
//! namespace owns is joined after it (the only way for an unprivileged runtime), any other
//! before it; and a new user namespace comes after every join.

use crate::channel::{Channel, Config, FromInit, ToInit};
use crate::sys::{fs as sfs, process as sp};
use anyhow::{bail, Context, Result};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};

pub fn namespaces(chan: &Channel, cfg: &Config) -> Result<()> {
    let mut opened = Vec::new();
    for (name, path) in &cfg.ns.init_join {
        let f = File::open(path)
            .with_context(|| format!("linux.namespaces {name} path {}", path.display()))?;
        opened.push((name.as_str(), path, f));
    }
    let user = opened.iter().position(|(n, _, _)| *n == "user");
    let user_id = match user {
        Some(i) => Some(ns_identity(opened[i].2.as_fd())?),
        None => None,
    };
    let owned: Vec<bool> = opened
        .iter()
        .map(|(_, _, f)| {
            user_id.is_some()
                && sp::ns_owner(f.as_fd())
                    .ok()
                    .and_then(|o| ns_identity(o.as_fd()).ok())
                    == user_id
        })
        .collect();
    let order = join_order(user, &owned).into_iter().map(|i| &opened[i]);
    for (name, path, f) in order {
        // The type makes the kernel refuse a file of another namespace type (config-linux.md:
        // "MUST generate an error if path is not associated with a namespace of type type").
        let nstype = crate::namespaces::flag_of_proc_name(name).unwrap_or(0) as i32;
        sp::setns(f.as_fd(), nstype)
            .with_context(|| format!("join {name} namespace {}", path.display()))?;
    }
    if cfg.ns.init_new_user {
        new_user_namespace(chan)?;
    }
    if cfg.ns.init_unshare != 0 {
        sp::unshare(cfg.ns.init_unshare as i32).context("unshare namespaces")?;
    }
    if cfg.ns.forks() {
        fork_into_pid_namespace(chan)?;
    }
    Ok(())
}

/// Unshares the user namespace and waits until the parent has written its maps (runc's
/// SYNC_USERMAP_PLS). The kernel lets the parent open our /proc/<pid>/{uid,gid}_map, and
/// newuidmap check that we are the caller's, only while we are dumpable: an unprivileged
/// runtime needs that for the moment of the write (root's parent does not).
fn new_user_namespace(chan: &Channel) -> Result<()> {
    // Asked before the unshare: inside, our unmapped uid reads as the overflow uid.
    let dumpable = sp::geteuid() != 0;
    sp::unshare(libc::CLONE_NEWUSER).context("unshare user namespace")?;
    if dumpable {
        sp::prctl(libc::PR_SET_DUMPABLE, 1, 0).context("make init dumpable for its id maps")?;
    }
    chan.send(&FromInit::UserNs)?;
    match chan.recv::<ToInit>()? {
        Some(ToInit::MapsWritten) => {}
        Some(other) => bail!("protocol error: expected MapsWritten, got {other:?}"),
        None => bail!("runtime went away while init waited for its id maps"),
    }
    if dumpable {
        sp::prctl(libc::PR_SET_DUMPABLE, 0, 0).context("make init non-dumpable again")?;
    }
    Ok(())
}

/// The order to join namespaces in (indexes): those the joined user namespace (`user`) does
/// not own, while init still has the runtime's privileges; then the user namespace; then those
/// it owns (`owned_by_user[i]`), with the capabilities it grants. Pure.
fn join_order(user: Option<usize>, owned_by_user: &[bool]) -> Vec<usize> {
    let others = |owned: bool| {
        (0..owned_by_user.len()).filter(move |&i| Some(i) != user && owned_by_user[i] == owned)
    };
    others(false).chain(user).chain(others(true)).collect()
}

/// (device, inode) of a namespace file: equal for the same namespace.
fn ns_identity(fd: BorrowedFd) -> Result<(u64, u64)> {
    let st = sfs::fstat(fd).context("stat namespace")?;
    Ok((st.st_dev, st.st_ino))
}

/// Forks once so init runs as pid 1 of the pid namespace it just unshared. CLONE_PARENT makes
/// the new process the runtime's child, as init was; this one reports its pid and leaves, and
/// the new one waits until the runtime has adopted it (so no message of it can overtake the
/// report).
pub(super) fn fork_into_pid_namespace(chan: &Channel) -> Result<()> {
    let pid =
        sp::clone_fork(libc::CLONE_PARENT as u64).context("fork into the new pid namespace")?;
    if pid != 0 {
        if chan.send(&FromInit::Forked(pid)).is_err() {
            let _ = sp::kill(pid, libc::SIGKILL);
        }
        // The new process holds every fd now; nothing of ours needs running down.
        sp::exit_now(0);
    }
    // Our parent is the runtime now: die with it, as before the fork.
    sp::set_pdeathsig(libc::SIGKILL).context("arm parent death signal")?;
    match chan.recv::<ToInit>()? {
        Some(ToInit::Adopted) => Ok(()),
        Some(other) => bail!("protocol error: expected Adopted, got {other:?}"),
        None => bail!("runtime went away while init waited to be adopted"),
    }
}

#[cfg(test)]
mod tests {
    use super::join_order;

    #[test]
    fn owned_namespaces_follow_the_user_namespace() {
        // net (host's), user, ipc (the user namespace's), uts (host's)
        assert_eq!(
            join_order(Some(1), &[false, false, true, false]),
            [0, 3, 1, 2]
        );
        assert_eq!(join_order(None, &[false, false]), [0, 1]);
        assert_eq!(join_order(Some(0), &[false]), [0]);
    }
}
