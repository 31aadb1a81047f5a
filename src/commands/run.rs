//! `ruse run`: create + start; in the foreground ruse stays as a child subreaper, forwards
//! signals, proxies the pty when `process.terminal` is set, reaps everything and exits with
//! the container's status (128+signal when killed). The container is deleted on exit unless
//! `--keep`.

use super::Globals;
use crate::bundle;
use crate::cli::RunArgs;
use crate::container::{validate_id, Container};
use crate::sys::{process as sp, socket};
use anyhow::{Context, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

pub(crate) const FORWARDED: &[i32] = &[
    libc::SIGHUP,
    libc::SIGINT,
    libc::SIGQUIT,
    libc::SIGTERM,
    libc::SIGUSR1,
    libc::SIGUSR2,
    libc::SIGWINCH,
    libc::SIGCONT,
    libc::SIGTSTP,
    libc::SIGTTIN,
    libc::SIGTTOU,
    libc::SIGALRM,
    libc::SIGPIPE,
    libc::SIGCHLD,
];

pub fn run(g: &Globals, a: &RunArgs) -> Result<i32> {
    let ca = &a.create;
    validate_id(&ca.id)?;
    let b = bundle::load(&ca.bundle)?;
    let terminal = super::create::terminal(&b);
    if a.detach {
        let (c, l) = super::create::create(g, ca, &b, None)?;
        l.release()?;
        return start_or_delete(g, c).map(|_| 0);
    }
    let (ours, theirs) = if terminal && ca.console_socket.is_none() {
        let (x, y) = socket::seqpacket_pair()?;
        (Some(x), Some(y))
    } else {
        (None, None)
    };
    if !a.no_subreaper {
        sp::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0).context("become child subreaper")?;
    }
    // Blocked before the clone so no signal is lost; init unblocks them before its execve.
    let sigfd = sp::block_signals(FORWARDED).context("block signals")?;
    let (c, l) = super::create::create(g, ca, &b, theirs)?;
    let pid = l.pid;
    l.release()?;
    start_or_delete(g, c)?;
    let master = match &ours {
        Some(s) => socket::recv(s.as_fd())?.1.into_iter().next(),
        None => None,
    };
    let status = supervise(pid, sigfd.as_fd(), master.as_ref())?;
    if !a.keep {
        if let Err(e) = super::delete::delete(g, &ca.id, true) {
            crate::log::warn(&format!("delete after exit: {e:#}"));
        }
        // The leftovers delete killed were our children (we are their subreaper).
        reap(-1)?;
    }
    Ok(status)
}

/// Starts `c`; on failure deletes it, so a failed run leaves nothing behind.
fn start_or_delete(g: &Globals, c: Container) -> Result<()> {
    let f = c.facts.clone().context("state not saved")?;
    let id = c.id.clone();
    let res = super::start::start(&c, &f);
    drop(c);
    if let Err(e) = res {
        let _ = super::delete::delete(g, &id, true);
        return Err(e);
    }
    Ok(())
}

pub(crate) fn supervise(pid: i32, sigfd: BorrowedFd, master: Option<&OwnedFd>) -> Result<i32> {
    let stdin_tty = sp::isatty(0);
    let saved = match master {
        Some(m) if stdin_tty => {
            if let Ok((rows, cols)) = sp::get_winsize(0) {
                let _ = sp::set_winsize(m.as_fd(), rows, cols);
            }
            sp::make_raw(0).ok()
        }
        _ => None,
    };
    let res = wait_loop(pid, sigfd, master);
    if let Some(t) = saved {
        sp::restore_term(0, &t);
    }
    res
}

fn wait_loop(pid: i32, sigfd: BorrowedFd, master: Option<&OwnedFd>) -> Result<i32> {
    let mut stdin_open = master.is_some();
    let mut buf = [0u8; 8192];
    // Once every slave end is closed the master polls readable (hang-up) forever and reads
    // EIO: it is then dropped from the poll set, or the loop would spin until the exit.
    let mut master = master;
    loop {
        let mut fds = vec![sigfd.as_raw_fd()];
        if let Some(m) = master {
            fds.push(m.as_raw_fd());
            if stdin_open {
                fds.push(0);
            }
        }
        let ready = sp::poll_read(&fds, -1)?;
        if ready[0] {
            let sig = sp::read_signal(sigfd)?;
            if sig == libc::SIGCHLD {
                if let Some(code) = reap(pid)? {
                    drain(master, &mut buf);
                    return Ok(code);
                }
            } else if sig == libc::SIGWINCH && master.is_some() {
                if let (Some(m), Ok((r, c))) = (master, sp::get_winsize(0)) {
                    let _ = sp::set_winsize(m.as_fd(), r, c);
                }
            } else {
                let _ = sp::kill(pid, sig);
            }
        }
        if let Some(m) = master {
            if stdin_open && ready.get(2) == Some(&true) && copy(0, m.as_raw_fd(), &mut buf) == 0 {
                stdin_open = false;
            }
            if ready.get(1) == Some(&true) && copy(m.as_raw_fd(), 1, &mut buf) == 0 {
                // Hang-up: the container closed the terminal; keep waiting for its exit.
                master = None;
            }
        }
    }
}

/// Reaps every exited child (we are their subreaper); Some(exit code) once init is among them.
fn reap(pid: i32) -> Result<Option<i32>> {
    let mut code = None;
    while let Some((p, st)) = match sp::waitpid(-1, true) {
        Ok(x) => x,
        Err(e) if e.raw_os_error() == Some(libc::ECHILD) => None,
        Err(e) => return Err(e).context("waitpid"),
    } {
        if p == pid {
            code = Some(sp::exit_code(st));
        }
    }
    Ok(code)
}

fn drain(master: Option<&OwnedFd>, buf: &mut [u8]) {
    if let Some(m) = master {
        while sp::poll_read(&[m.as_raw_fd()], 0)
            .map(|r| r[0])
            .unwrap_or(false)
            && copy(m.as_raw_fd(), 1, buf) > 0
        {}
    }
}

/// One read from `from` written fully to `to`; returns bytes moved (0 on EOF or error).
fn copy(from: i32, to: i32, buf: &mut [u8]) -> usize {
    let n = sp::read(from, buf).unwrap_or(0);
    if n > 0 && sp::write_all(to, &buf[..n]).is_err() {
        return 0;
    }
    n
}
