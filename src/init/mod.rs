//! The container side of create: `ruse init <fd>`, exec'd from the sealed memfd copy of ruse
//! inside the new namespaces. One straight script of steps (see the diagram in channel.rs),
//! ending in `execve` of the user's program after `start` connects to exec.sock.

mod exec;
mod join;
mod process;

pub use process::parse_cpus;

use crate::channel::{Channel, Config, FromInit, ToInit};
use crate::rootfs;
use crate::sys::{fs as sfs, process as sp, socket};
use anyhow::{anyhow, bail, Context, Result};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};

/// Entry point; never returns. Errors go to the parent (or to `start`) as text.
pub fn main(fd: i32) -> ! {
    // First of all: nothing in the container may ptrace init or open its /proc/<pid>/fd and
    // mem while it holds the runtime's fds (CVE-2016-9962). The execve of the user's program
    // makes it dumpable again.
    if sp::prctl(libc::PR_SET_DUMPABLE, 0, 0).is_err() {
        std::process::exit(1);
    }
    let chan = match crate::sys::adopt_fd(fd) {
        Ok(fd) => Channel(fd),
        Err(_) => std::process::exit(1),
    };
    let err = match run(&chan) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = chan.send(&FromInit::Error(format!("{err:#}")));
    std::process::exit(1);
}

enum Never {}

fn expect(chan: &Channel, what: &str) -> Result<ToInit> {
    chan.recv::<ToInit>()?
        .ok_or_else(|| anyhow!("runtime went away while init waited for {what}"))
}

fn run(chan: &Channel) -> Result<Never> {
    let cfg = match chan.recv::<ToInit>()? {
        Some(ToInit::Config(c)) => *c,
        Some(ToInit::Exec(c)) => return exec::run(chan, *c),
        Some(other) => bail!("protocol error: expected config, got {other:?}"),
        None => bail!("runtime went away while init waited for its config"),
    };
    let listener = crate::sys::adopt_fd(cfg.listen_fd).context("exec.sock fd")?;
    let console = cfg
        .console_fd
        .map(crate::sys::adopt_fd)
        .transpose()
        .context("console fd")?;
    // Leaked fds beyond the preserved range stay invisible to hooks and the container.
    sfs::cloexec_from(3 + cfg.preserve_fds).context("mark inherited fds close-on-exec")?;
    sfs::umask(0);
    join::namespaces(chan, &cfg)?;
    let spec = &cfg.spec;
    if cfg.ns.new_user {
        // Become root of the new user namespace so later steps hold its capabilities.
        sp::setresgid(0).context("setgid 0 in the user namespace")?;
        sp::setresuid(0).context("setuid 0 in the user namespace")?;
    }
    let idmapped = namespaces_ready(chan, &cfg)?;
    if !cfg.no_new_keyring {
        // runc's default: a fresh session keyring per container. Kernels or user namespaces
        // without keyring support are not an error (ENOSYS, EDQUOT), as in runc.
        match sp::join_session_keyring(&format!("_ses.{}", cfg.id)) {
            Err(e) if !matches!(e.raw_os_error(), Some(libc::ENOSYS) | Some(libc::EDQUOT)) => {
                return Err(e).context("join a new session keyring");
            }
            _ => {}
        }
    }
    if cfg.ns.new_net {
        sp::loopback_up().context("bring up lo")?;
    }
    if let Some(h) = spec.hostname().as_deref().filter(|h| !h.is_empty()) {
        sp::sethostname(h).with_context(|| format!("hostname {h:?}"))?;
    }
    if let Some(d) = spec.domainname().as_deref().filter(|d| !d.is_empty()) {
        sp::setdomainname(d).with_context(|| format!("domainname {d:?}"))?;
    }
    let proc_ = process::Process::new(spec)?;
    let opts = rootfs::Options {
        spec,
        rootfs: &cfg.rootfs,
        bundle: &cfg.bundle,
        // Also when the runtime itself runs in one (rootless podman puts it there and asks
        // for no user namespace of the container's own): mknod is refused there just the same.
        in_userns: cfg.ns.new_user || cfg.ns.joins("user") || crate::userns::in_user_namespace(),
        cgroupns: (cfg.ns.clone_flags | cfg.ns.init_unshare) & libc::CLONE_NEWCGROUP as u64 != 0
            || cfg.ns.joins("cgroup"),
        rootless: cfg.rootless,
        terminal: proc_.terminal,
    };
    if !cfg.ns.has_mount() {
        bail!("linux.namespaces: ruse needs a mount namespace (new or joined by path) to build the rootfs");
    }
    let prepared = rootfs::prepare(&opts, idmapped)?;
    chan.send(&FromInit::CreateRuntime)?;
    match expect(chan, "createRuntime hooks")? {
        ToInit::HooksDone => {}
        other => bail!("protocol error: expected HooksDone, got {other:?}"),
    }
    container_hooks(&cfg, "createContainer", "creating")?;
    rootfs::finish(&prepared, &opts, cfg.no_pivot)?;
    process::sysctl(spec)?;
    if let (Some((master, slave)), Some(sock)) = (&prepared.console, &console) {
        process::send_console(sock.as_fd(), master.as_fd(), slave.as_fd(), spec)?;
    }
    let late = process::late_seccomp(spec, cfg.seccomp.as_ref());
    let mut install = || match late {
        true => Ok(()),
        false => install_seccomp(chan, cfg.seccomp.as_ref()),
    };
    let mut exec = proc_.prepare(
        prepared.console.as_ref().map(|(_, s)| s.as_fd()),
        &mut install,
    )?;
    if let Some(f) = cfg.seccomp.as_ref().filter(|_| late) {
        exec.filter_last(f);
    }
    drop(prepared);
    drop(console);
    // Credentials changed: the kernel cleared the parent-death signal; arm it again so a
    // killed create still takes init with it.
    sp::set_pdeathsig(libc::SIGKILL).context("re-arm parent death signal")?;
    chan.send(&FromInit::Ready)?;
    match expect(chan, "the saved state")? {
        ToInit::Saved => {}
        other => bail!("protocol error: expected Saved, got {other:?}"),
    }
    sp::set_pdeathsig(0).context("clear parent death signal")?;
    chan.send(&FromInit::Released)?;
    let conn = socket::accept(listener.as_fd()).context("wait for start")?;
    drop(listener);
    // From here the error goes to `start` on its connection.
    let err = match started(&cfg, &exec, conn.as_fd()) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    let _ = socket::send(conn.as_fd(), format!("{err:#}").as_bytes(), &[]);
    std::process::exit(1);
}

/// Tells the parent that init is in all of its namespaces, so that it builds the network in
/// init's network namespace (never before it exists) and makes the idmapped mount trees for
/// init's user namespace; returns those trees by `mounts[]` index.
fn namespaces_ready(chan: &Channel, cfg: &Config) -> Result<Vec<(usize, OwnedFd)>> {
    chan.send(&FromInit::Namespaces)?;
    let trees = match chan.recv_fds::<ToInit>()? {
        Some((ToInit::Mounts, fds)) => fds,
        Some((other, _)) => bail!("protocol error: expected Mounts, got {other:?}"),
        None => bail!("runtime went away while init waited for its network and mounts"),
    };
    if trees.len() != cfg.idmapped.len() {
        bail!(
            "protocol error: {} idmapped mount trees for {} mounts",
            trees.len(),
            cfg.idmapped.len()
        );
    }
    Ok(cfg.idmapped.iter().copied().zip(trees).collect())
}

/// Installs the filter; with NOTIFY rules, passes the listener fd to the parent, which sends
/// it to linux.seccomp.listenerPath, and waits until it has (runc's procSeccomp).
fn install_seccomp(chan: &Channel, filter: Option<&crate::seccomp::Compiled>) -> Result<()> {
    let Some(f) = filter else { return Ok(()) };
    let listener = crate::sys::seccomp::install(&f.program(), f.flags)
        .context("linux.seccomp: install the filter")?;
    if let Some(fd) = listener {
        chan.send_fds(&FromInit::Seccomp, &[fd.as_raw_fd()])?;
        drop(fd);
        match expect(chan, "the seccomp listener to get its fd")? {
            ToInit::SeccompDone => {}
            other => bail!("protocol error: expected SeccompDone, got {other:?}"),
        }
    }
    Ok(())
}

fn started(cfg: &Config, exec: &process::Exec, conn: BorrowedFd) -> Result<Never> {
    container_hooks(cfg, "startContainer", "created")?;
    Err(exec.exec(cfg.preserve_fds, Some(conn)))
}

#[allow(deprecated)]
fn container_hooks(cfg: &Config, kind: &str, status: &str) -> Result<()> {
    let Some(h) = cfg.spec.hooks() else {
        return Ok(());
    };
    let list = match kind {
        "createContainer" => h.create_container(),
        _ => h.start_container(),
    };
    let Some(list) = list.as_deref().filter(|l| !l.is_empty()) else {
        return Ok(());
    };
    let ann = cfg.spec.annotations().clone().unwrap_or_default();
    // Init builds the rootfs under umask 0 (modes are explicit there); a hook gets the
    // usual 022, as under runc, unless the process's own umask is already set (startContainer).
    let old = sfs::umask(0o022);
    if old != 0 {
        sfs::umask(old);
    }
    // runtime.md "State": for hooks in the container namespace the pid is "the pid as seen by
    // the container": ours, in the container's pid namespace.
    let mut state = crate::state::creating_state(&cfg.id, sp::getpid(), &cfg.bundle, &ann);
    state["status"] = status.into();
    let res = crate::hooks::run(kind, list, &state);
    sfs::umask(old);
    res
}
