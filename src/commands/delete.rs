//! `ruse delete`: remove a stopped container; `--force` kills it first; its cgroup goes once
//! every process in it is gone; poststop hooks last.

use super::Globals;
use crate::container::{Container, Lock};
use crate::errors::RuseError;
use crate::state::{Facts, Status};
use crate::sys::process as sp;
use anyhow::{bail, Context, Result};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

pub fn delete(g: &Globals, id: &str, force: bool) -> Result<()> {
    let c = match Container::open(&g.root, id, Lock::Exclusive) {
        Ok(c) => c,
        Err(e)
            if force && matches!(e.downcast_ref::<RuseError>(), Some(RuseError::NotFound(_))) =>
        {
            Container::sweep_unnamed(&g.root, id);
            return Ok(());
        }
        Err(e) => return Err(e),
    };
    let Some(f) = c.facts.clone() else {
        // A create that died before saving its state: its init died with it (pdeathsig).
        if let Some(cg) = std::fs::read(c.dir.join(crate::cgroups::RECORD))
            .ok()
            .and_then(|b| serde_json::from_slice::<crate::cgroups::Cgroup>(&b).ok())
        {
            empty_cgroup(&cg)?;
            cg.remove()?;
        }
        if let Some(plan) = crate::net::recorded(&c.dir) {
            teardown_network(g, id, &plan);
        }
        return c.remove();
    };
    let status = f.status(&c.dir);
    if status != Status::Stopped {
        if !force {
            return Err(RuseError::WrongStatus("delete", status.as_str()).into());
        }
        kill_and_wait(&f)?;
    }
    // Init is gone; processes left in the cgroup (no pid namespace of its own) go too, as
    // runc's destroy does, so the directories can be removed.
    empty_cgroup(&f.cgroup)?;
    f.cgroup.remove()?;
    // The record knows where the lease is; containers made before it existed replan.
    let plan = crate::net::recorded(&c.dir)
        .or_else(|| crate::net::plan(&f.config, &crate::net::NetNs::New).ok());
    if let Some(plan) = plan {
        teardown_network(g, id, &plan);
    }
    c.remove()?;
    if let Some(h) = f.config.hooks() {
        crate::hooks::run_warn(
            "poststop",
            h.poststop().as_deref().unwrap_or_default(),
            &f.oci_state(Status::Stopped),
        );
    }
    Ok(())
}

/// Removes what the network setup built; a failure is reported but does not keep the
/// container's state alive (the leftovers are named in the warning).
fn teardown_network(g: &Globals, id: &str, plan: &crate::net::Plan) {
    let owner = crate::net::Owner { root: &g.root, id };
    if let Err(e) = crate::net::teardown(plan, &owner) {
        crate::log::warn(&format!("remove the network of {id}: {e:#}"));
    }
}

/// SIGKILL the whole container and wait (bounded) until init is gone.
pub fn kill_and_wait(f: &Facts) -> Result<()> {
    let Some(pidfd) = super::kill::init_pidfd(f)? else {
        return Ok(());
    };
    if super::kill::signal_all(f, libc::SIGKILL).is_err() {
        let _ = sp::pidfd_send_signal(std::os::fd::AsFd::as_fd(&pidfd), libc::SIGKILL);
        let _ = crate::cgroups::freeze::thaw_if_frozen(&f.cgroup);
    }
    // A pidfd polls readable once its process has exited.
    let ready = sp::poll_read(&[pidfd.as_raw_fd()], 10_000)?;
    if !ready[0] {
        bail!(
            "container init (pid {}) did not die within 10s of SIGKILL",
            f.pid
        );
    }
    Ok(())
}

/// Kills what is left in the cgroup and waits (up to 10 s) until it is empty.
fn empty_cgroup(cg: &crate::cgroups::Cgroup) -> Result<()> {
    if cg.dirs.is_empty() || crate::cgroups::pids(cg).is_empty() {
        return Ok(());
    }
    let none = |_: i32| Ok(());
    crate::cgroups::signal_all(cg, libc::SIGKILL, 0, &none)
        .context("kill what is left in the cgroup")?;
    let end = Instant::now() + Duration::from_secs(10);
    while !crate::cgroups::pids(cg).is_empty() {
        if Instant::now() > end {
            bail!(
                "processes {:?} are still in the container's cgroup 10s after SIGKILL",
                crate::cgroups::pids(cg)
            );
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}
