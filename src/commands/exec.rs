//! `ruse exec`: start one more process in a container (runc's flags). The process is built
//! from `-p FILE` or from the container's own `process` with the flags applied (as runc's
//! getProcess), checked like the container's, and started by a fresh init from the sealed
//! binary that joins the container's cgroup and namespaces (see the exec diagram in
//! channel.rs). Foreground: ruse forwards signals, proxies the pty and exits with the
//! process's status; detached: it exits once the process runs.

use super::Globals;
use crate::channel::{Channel, ExecConfig, FromInit, ToInit};
use crate::cli::ExecArgs;
use crate::container::{Container, Lock};
use crate::errors::{not_supported, RuseError};
use crate::state::{Facts, Status};
use crate::sys::{fs as sfs, process as sp, socket};
use anyhow::{anyhow, bail, Context, Result};
use oci_spec::runtime::Spec;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::MetadataExt;

use super::exec_process as process;

pub fn exec(g: &Globals, a: &ExecArgs) -> Result<i32> {
    let (id, cmd) = a.args.split_first().context("no container id given")?;
    if a.apparmor.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(not_supported(
            "--apparmor (AppArmor is not enabled on this host)",
        ));
    }
    if a.process_label.as_deref().is_some_and(|s| !s.is_empty()) {
        return Err(not_supported(
            "--process-label (SELinux is not enabled on this host)",
        ));
    }
    let (c, f) = Container::open_existing(&g.root, id, Lock::Shared)?;
    match f.status(&c.dir) {
        Status::Stopped => return Err(RuseError::WrongStatus("exec", "stopped").into()),
        Status::Paused if !a.ignore_paused => {
            return Err(RuseError::WrongStatus("exec", "paused").into())
        }
        _ => {}
    }
    let proc_ = match &a.process {
        Some(path) => {
            if !cmd.is_empty() {
                bail!("--process {} and a command were both given", path.display());
            }
            process::from_file(path)?
        }
        None => process::from_flags(a, cmd, &f.config)?,
    };
    crate::bundle::check_process(&proc_)?;
    let terminal = proc_.terminal().unwrap_or(false);
    match (terminal, a.detach, &a.console_socket) {
        (true, true, None) => {
            bail!("cannot allocate tty if ruse will detach without setting console socket")
        }
        (false, _, Some(_)) | (_, false, Some(_)) => {
            bail!("cannot use console socket if ruse will not detach or allocate tty")
        }
        _ => {}
    }
    sfs::cloexec_from(3 + a.preserve_fds).context("mark inherited fds close-on-exec")?;
    for fd in 3..3 + a.preserve_fds {
        if !sfs::is_open(fd as i32) {
            bail!("--preserve-fds {}: fd {fd} is not open", a.preserve_fds);
        }
    }
    let cgroup = sub_cgroup(&f.cgroup, &a.cgroup)?;
    let mut spec = f.config.clone();
    spec.set_process(Some(proc_));
    let seccomp = spec
        .linux()
        .as_ref()
        .and_then(|l| l.seccomp().as_ref())
        .map(crate::seccomp::check)
        .transpose()?;
    let pidfd = super::kill::init_pidfd(&f)?.ok_or(RuseError::WrongStatus("exec", "stopped"))?;
    let join = namespaces_to_join(f.pid)?;
    // The pidfd pins init from here. Holding the lock longer would keep `resume` from
    // thawing a paused container the process waits in (--ignore-paused), and a
    // long-running exec from letting `delete` go on (runc takes no lock for exec at all).
    drop(c);
    // Foreground with a terminal: the pty master comes back to us on our own socketpair.
    let (ours, console) = match (&a.console_socket, terminal) {
        (Some(path), _) => (
            None,
            Some(
                socket::connect(path, libc::SOCK_STREAM)
                    .with_context(|| format!("--console-socket {}", path.display()))?,
            ),
        ),
        (None, true) => {
            let (x, y) = socket::seqpacket_pair().context("socketpair")?;
            (Some(x), Some(y))
        }
        (None, false) => (None, None),
    };
    let sigfd = match a.detach {
        false => Some(sp::block_signals(super::run::FORWARDED).context("block signals")?),
        true => None,
    };
    let launch = Launch {
        spec,
        seccomp,
        pidfd,
        join,
        console,
        preserve_fds: a.preserve_fds,
        cgroup,
    };
    let pid = launch.start(&f, &g.root)?;
    let handed_over = || -> Result<()> {
        if let Some(p) = &a.pid_file {
            super::create::write_pid_file(p, pid)?;
        }
        if let Some(p) = &a.pidfd_socket {
            let sock = socket::connect(p, libc::SOCK_STREAM)
                .with_context(|| format!("--pidfd-socket {}", p.display()))?;
            send_pidfd(&sock, pid, p)?;
        }
        Ok(())
    };
    // A process its caller cannot know of must not run on: as runc, it is killed.
    if let Err(e) = handed_over() {
        let _ = sp::kill(pid, libc::SIGKILL);
        return Err(e);
    }
    let Some(sigfd) = sigfd else { return Ok(0) };
    let master = match &ours {
        Some(s) => socket::recv(s.as_fd())?.1.into_iter().next(),
        None => None,
    };
    super::run::supervise(pid, sigfd.as_fd(), master.as_ref())
}

/// What the exec init is started with.
struct Launch {
    spec: Spec,
    seccomp: Option<crate::seccomp::Compiled>,
    pidfd: OwnedFd,
    join: i32,
    console: Option<OwnedFd>,
    preserve_fds: u32,
    cgroup: crate::cgroups::Cgroup,
}

/// The exec init until it has exec'd the process; dropped before that, it is killed.
struct Child {
    pid: i32,
    armed: bool,
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.armed {
            let _ = sp::kill(self.pid, libc::SIGKILL);
            let _ = sp::waitpid(self.pid, false);
        }
    }
}

fn initial_affinity(spec: &oci_spec::runtime::Spec) -> Option<String> {
    spec.process()
        .as_ref()?
        .exec_cpu_affinity()
        .as_ref()?
        .initial()
        .clone()
}

impl Launch {
    /// Starts the process; returns its host pid once it has exec'd.
    fn start(self, f: &Facts, state_root: &std::path::Path) -> Result<i32> {
        let exe = crate::exe::sealed(state_root)?;
        let (ours, theirs) = socket::seqpacket_pair().context("socketpair")?;
        let pass: Vec<RawFd> = [theirs.as_raw_fd(), self.pidfd.as_raw_fd()]
            .into_iter()
            .chain(self.console.as_ref().map(|c| c.as_raw_fd()))
            .collect();
        let mut child = Child {
            pid: crate::launch::spawn_init(&exe, &pass)?,
            armed: true,
        };
        drop((exe, theirs));
        // config.md execCPUAffinity.initial: where the process runs before it joins the
        // container's cgroup (whose cpuset may be narrower); `final` is set inside, after.
        if let Some(aff) = initial_affinity(&self.spec) {
            let cpus = crate::init::parse_cpus(&aff)
                .with_context(|| format!("process.execCPUAffinity.initial {aff:?}"))?;
            sp::sched_setaffinity(child.pid, &cpus)
                .with_context(|| format!("process.execCPUAffinity.initial {aff:?}"))?;
        }
        // Before it runs anything of the container's, so that limits hold from the start.
        crate::cgroups::join(&self.cgroup, child.pid)?;
        let chan = Channel(ours);
        let cfg = ExecConfig {
            spec: self.spec,
            pidfd: pass[1],
            join: self.join,
            console_fd: pass.get(2).copied(),
            preserve_fds: self.preserve_fds,
            seccomp: self.seccomp,
        };
        chan.send(&ToInit::Exec(Box::new(cfg)))?;
        drop((self.pidfd, self.console));
        loop {
            let (msg, fds) = match chan.recv_fds::<FromInit>()? {
                Some((m, fds)) => (m, fds),
                // The channel is close-on-exec: EOF means the process was exec'd.
                None => break,
            };
            match msg {
                FromInit::Forked(new) => {
                    adopt(child.pid, new)?;
                    child.pid = new;
                    chan.send(&ToInit::Adopted)?;
                }
                FromInit::Seccomp => {
                    let fd = fds
                        .into_iter()
                        .next()
                        .context("exec process sent no seccomp listener fd")?;
                    let mut state = f.oci_state(Status::Running);
                    state["pid"] = child.pid.into();
                    crate::launch::send_listener(&f.config, state, child.pid, fd)?;
                    chan.send(&ToInit::SeccompDone)?;
                }
                FromInit::Error(m) => return Err(anyhow!(m)),
                other => bail!("protocol error: unexpected {other:?} from the exec process"),
            }
        }
        child.armed = false;
        Ok(child.pid)
    }
}

/// The first exec init forked into the container's pid namespace (CLONE_PARENT: the new
/// process is our child) and leaves; reap it and check the new one is ours.
fn adopt(old: i32, new: i32) -> Result<()> {
    let _ = sp::waitpid(old, false);
    match sp::waitpid(new, true) {
        Ok(None) => Ok(()),
        other => bail!(
            "the exec process forked into pid {new}, which is not a live child of ruse ({other:?})"
        ),
    }
}

/// CLONE_NEW* flags of the namespaces of `pid` that are not ours. Read after the pidfd that
/// pins `pid` was checked, so they are the container's.
fn namespaces_to_join(pid: i32) -> Result<i32> {
    let mut flags = 0;
    for (name, flag) in [
        ("user", libc::CLONE_NEWUSER),
        ("mnt", libc::CLONE_NEWNS),
        ("pid", libc::CLONE_NEWPID),
        ("net", libc::CLONE_NEWNET),
        ("ipc", libc::CLONE_NEWIPC),
        ("uts", libc::CLONE_NEWUTS),
        ("cgroup", libc::CLONE_NEWCGROUP),
        ("time", libc::CLONE_NEWTIME),
    ] {
        let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{name}"));
        let ours = std::fs::metadata(format!("/proc/self/ns/{name}"));
        match (theirs, ours) {
            (Ok(t), Ok(o)) if (t.dev(), t.ino()) != (o.dev(), o.ino()) => flags |= flag,
            (Ok(_), Ok(_)) => {}
            // A kernel without this namespace type: nothing to join.
            (Err(e), _) | (_, Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {}
            (Err(e), _) | (_, Err(e)) => {
                return Err(e).with_context(|| format!("read the {name} namespace of pid {pid}"))
            }
        }
    }
    Ok(flags)
}

/// The cgroup an exec'd process joins: the container's, or sub-cgroups of it named by
/// `--cgroup [<controller>[,<controller>…]:]<path>` (runc's format; a path alone applies to
/// every hierarchy without a path of its own). Sub-cgroups must exist.
fn sub_cgroup(cg: &crate::cgroups::Cgroup, specs: &[String]) -> Result<crate::cgroups::Cgroup> {
    let mut out = cg.clone();
    if specs.is_empty() {
        return Ok(out);
    }
    if cg.dirs.is_empty() {
        bail!("--cgroup: the container has no cgroup");
    }
    let plan = process::parse_cgroup_flags(specs)?;
    for d in &mut out.dirs {
        let sub = d
            .controllers
            .iter()
            .filter(|_| !d.v2)
            .find_map(|c| plan.per_controller.get(c.as_str()))
            .or(plan.default.as_ref());
        if let Some(sub) = sub {
            let path = d.path.join(sub);
            if !path.is_dir() {
                bail!(
                    "--cgroup {}: cgroup {} does not exist",
                    sub.display(),
                    path.display()
                );
            }
            d.path = path;
        }
    }
    Ok(out)
}

/// runc's --pidfd-socket: connect and send a pidfd of the process (SCM_RIGHTS, the payload
/// naming it), for callers that must not race pid reuse.
pub fn send_pidfd(sock: &OwnedFd, pid: i32, path: &std::path::Path) -> Result<()> {
    let what = || format!("--pidfd-socket {}", path.display());
    let fd = sp::pidfd_open(pid).with_context(what)?;
    socket::send(sock.as_fd(), b"pidfd", &[fd.as_raw_fd()]).with_context(what)
}
