//! `ruse delete`: remove a stopped container; `--force` kills it first; poststop hooks last.

use super::Globals;
use crate::container::{Container, Lock};
use crate::errors::RuseError;
use crate::state::Status;
use crate::sys::process as sp;
use anyhow::{bail, Result};
use std::os::fd::AsRawFd;

pub fn delete(g: &Globals, id: &str, force: bool) -> Result<()> {
    let c = match Container::open(&g.root, id, Lock::Exclusive) {
        Ok(c) => c,
        Err(e)
            if force && matches!(e.downcast_ref::<RuseError>(), Some(RuseError::NotFound(_))) =>
        {
            return Ok(())
        }
        Err(e) => return Err(e),
    };
    let Some(f) = c.facts.clone() else {
        // A create that died before saving its state: its init died with it (pdeathsig).
        if let Some(cg) = std::fs::read(c.dir.join(crate::cgroups::RECORD))
            .ok()
            .and_then(|b| serde_json::from_slice::<crate::cgroups::Cgroup>(&b).ok())
        {
            super::kill::kill_leftovers(&cg)?;
            cg.remove();
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
    super::kill::kill_leftovers(&f.cgroup)?;
    f.cgroup.remove();
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

/// SIGKILL the whole container and wait (bounded) until init is gone.
pub fn kill_and_wait(f: &crate::state::Facts) -> Result<()> {
    let Some(pidfd) = super::kill::init_pidfd(f)? else {
        return Ok(());
    };
    let own_ns = super::kill::signal_all(f, libc::SIGKILL);
    if own_ns.is_err() {
        let _ = sp::pidfd_send_signal(std::os::fd::AsFd::as_fd(&pidfd), libc::SIGKILL);
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
