//! The container side of `ruse exec`: the init binary (exec'd from the sealed copy of ruse,
//! in the runtime's namespaces and already in the container's cgroup) enters every namespace
//! of the container's init at once through its pidfd, forks into its pid namespace when it has
//! one, then sets up the process as init does for the container's own and execs it. See the
//! exec diagram in channel.rs.

use super::{install_seccomp, process, Never};
use crate::channel::{Channel, ExecConfig};
use crate::sys::{fs as sfs, process as sp};
use anyhow::{Context, Result};
use std::fs::File;
use std::os::fd::AsFd;

pub(super) fn run(chan: &Channel, cfg: ExecConfig) -> Result<Never> {
    let pidfd = crate::sys::adopt_fd(cfg.pidfd).context("pidfd of the container's init")?;
    let console = cfg
        .console_fd
        .map(crate::sys::adopt_fd)
        .transpose()
        .context("console fd")?;
    // Nothing of the runtime's beyond stdio and the preserved fds may reach the process
    // (CVE-2024-21626); the channel closes on execve, which is how the runtime learns of it.
    sfs::cloexec_from(3 + cfg.preserve_fds).context("mark inherited fds close-on-exec")?;
    // One setns for every namespace: the kernel enters the user namespace first and checks
    // the others against the credentials it grants there, so no order needs working out.
    if cfg.join != 0 {
        sp::setns(pidfd.as_fd(), cfg.join).context("join the container's namespaces")?;
    }
    drop(pidfd);
    if cfg.join & libc::CLONE_NEWPID != 0 {
        super::join::fork_into_pid_namespace(chan)?;
    }
    let spec = &cfg.spec;
    let mut proc_ = process::Process::new(spec)?;
    proc_.for_exec = true;
    let tty = match (proc_.terminal, &console) {
        (true, Some(sock)) => {
            // The pty comes from the container's own devpts, as the container's console does.
            let root = File::open("/").context("open the container's root")?;
            let (master, slave) = crate::rootfs::open_pty(root.as_fd())?;
            process::send_console(sock.as_fd(), master.as_fd(), slave.as_fd(), spec)?;
            Some(slave)
        }
        _ => None,
    };
    drop(console);
    // The process outlives a detached `ruse exec`: from here on it is on its own.
    sp::set_pdeathsig(0).context("clear parent death signal")?;
    let late = process::late_seccomp(spec, cfg.seccomp.as_ref());
    let mut install = || match late {
        true => Ok(()),
        false => install_seccomp(chan, cfg.seccomp.as_ref()),
    };
    let mut exec = proc_.prepare(tty.as_ref().map(|s| s.as_fd()), &mut install)?;
    if let Some(f) = cfg.seccomp.as_ref().filter(|_| late) {
        exec.filter_last(f);
    }
    drop(tty);
    Err(exec.exec(cfg.preserve_fds, None))
}
