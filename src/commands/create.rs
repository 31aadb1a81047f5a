//! `ruse create`: validate everything, make the state dir, launch init, save the facts.

use super::Globals;
use crate::bundle;
use crate::cli::CreateArgs;
use crate::container::{validate_id, Container};
use crate::launch::{self, Launched};
use crate::state::Facts;
use anyhow::{bail, Context, Result};
use std::os::fd::OwnedFd;
use std::path::Path;

/// Creates the container; returns it still locked, with init released (detached) or not.
pub fn create(
    g: &Globals,
    a: &CreateArgs,
    b: &bundle::Bundle,
    console: Option<OwnedFd>,
) -> Result<(Container, Launched)> {
    validate_id(&a.id)?;
    let terminal = terminal(b);
    let console = match (terminal, console, &a.console_socket) {
        (true, Some(c), _) => Some(c),
        (true, None, Some(path)) => Some(
            crate::sys::socket::connect(path, libc::SOCK_STREAM)
                .with_context(|| format!("--console-socket {}", path.display()))?,
        ),
        (true, None, None) => {
            bail!("process.terminal is true: a detached container needs --console-socket")
        }
        (false, _, Some(_)) => bail!("--console-socket given but process.terminal is false"),
        (false, _, None) => None,
    };
    // Connected before anything is made, as runc does, so a bad path fails cleanly.
    let pidfd_socket = match &a.pidfd_socket {
        Some(p) => Some(
            crate::sys::socket::connect(p, libc::SOCK_STREAM)
                .with_context(|| format!("--pidfd-socket {}", p.display()))?,
        ),
        None => None,
    };
    // Fds the caller leaked to us (no CLOEXEC) must reach neither hooks nor the container;
    // only the socket-activation and --preserve-fds ranges are passed on (CVE-2024-21626).
    let listen = listen_fds();
    let passed = listen + a.preserve_fds;
    crate::sys::fs::cloexec_from(3 + passed).context("mark inherited fds close-on-exec")?;
    // A missing fd in the range would later be taken by one of ruse's own sockets, which the
    // container would then inherit.
    for fd in 3..3 + passed {
        if !crate::sys::fs::is_open(fd as i32) {
            bail!(
                "--preserve-fds {} (after LISTEN_FDS {listen}): fd {fd} is not open",
                a.preserve_fds
            );
        }
    }
    let mut c = Container::create_new(&g.root, &a.id)?;
    let saved = launch_and_save(&mut c, b, a, console, crate::rootless::cgroups(g.rootless));
    let sent = saved.and_then(|l| match (&pidfd_socket, &a.pidfd_socket) {
        (Some(sock), Some(p)) => {
            super::exec::send_pidfd(sock, l.pid, p)?;
            Ok(l)
        }
        _ => Ok(l),
    });
    match sent {
        Ok(l) => Ok((c, l)),
        Err(e) => {
            let _ = c.remove();
            Err(e)
        }
    }
}

/// systemd socket activation, as runc does it: the fds 3.. that LISTEN_FDS announces (when
/// LISTEN_PID, if set, is ours) go to init ahead of the --preserve-fds range, and the process
/// learns of them as LISTEN_FDS=n, LISTEN_PID=1.
pub fn listen_fds() -> u32 {
    let n = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|v| v.parse::<u32>().ok())
        .unwrap_or(0);
    match std::env::var("LISTEN_PID").ok().map(|p| p.parse::<i32>()) {
        Some(Ok(pid)) if pid == crate::sys::process::getpid() => n,
        Some(_) => 0,
        None => n,
    }
}

pub fn terminal(b: &bundle::Bundle) -> bool {
    b.spec
        .process()
        .as_ref()
        .and_then(|p| p.terminal())
        .unwrap_or(false)
}

/// The `create` verb: detached, init released once the state is saved.
pub fn create_detached(g: &Globals, a: &CreateArgs) -> Result<()> {
    validate_id(&a.id)?;
    let b = bundle::load(&a.bundle)?;
    let (_c, l) = create(g, a, &b, None)?;
    l.release()
}

fn launch_and_save(
    c: &mut Container,
    b: &bundle::Bundle,
    a: &CreateArgs,
    console: Option<OwnedFd>,
    rootless_cgroups: bool,
) -> Result<Launched> {
    let l = launch::launch(launch::Request {
        id: &a.id,
        bundle: b,
        state_dir: &c.dir,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        console,
        preserve_fds: listen_fds() + a.preserve_fds,
        listen_fds: listen_fds(),
        rootless_cgroups,
    })?;
    let facts = Facts {
        id: a.id.clone(),
        pid: l.pid,
        start_time: l.start_time,
        bundle: b.dir.clone(),
        rootfs: b.rootfs.clone(),
        created: crate::state::rfc3339_now(),
        owner: crate::userns::user_name(crate::sys::process::geteuid()),
        config: b.spec.clone(),
        cgroup: l.cgroup.clone(),
    };
    c.save(facts)?;
    if let Some(p) = &a.pid_file {
        write_pid_file(p, l.pid)?;
    }
    Ok(l)
}

/// Writes the pid file atomically (temp + rename), as engines poll for it.
pub fn write_pid_file(path: &Path, pid: i32) -> Result<()> {
    let path = std::path::absolute(path)?;
    let name = path
        .file_name()
        .context("--pid-file has no file name")?
        .to_string_lossy()
        .into_owned();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, pid.to_string())
        .with_context(|| format!("write --pid-file {}", tmp.display()))?;
    std::fs::rename(&tmp, &path).with_context(|| format!("write --pid-file {}", path.display()))
}
