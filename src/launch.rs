//! The parent side of create, in the calling process and the host's namespaces: seal a copy
//! of ruse, clone init into its new namespaces, write its id maps, drive the protocol of
//! `channel.rs`, run the runtime-namespace hooks. A guard kills and reaps init on any error.

use crate::bundle::Bundle;
use crate::channel::{Channel, Config, FromInit, ToInit};
use crate::hooks;
use crate::namespaces::{self, NsPlan};
use crate::sys::{fs as sfs, process as sp, socket};
use anyhow::{anyhow, bail, Context, Result};
use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

pub struct Request<'a> {
    pub id: &'a str,
    pub bundle: &'a Bundle,
    pub state_dir: &'a Path,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    /// A connected console socket (detached) or our own socketpair end (foreground run).
    pub console: Option<OwnedFd>,
    /// Fds 3.. passed to the process: the socket-activation ones, then --preserve-fds.
    pub preserve_fds: u32,
    /// How many of them are socket-activation fds (LISTEN_FDS, see create.rs).
    pub listen_fds: u32,
    /// Cgroups only where delegated (`--rootless`, see rootless.rs).
    pub rootless_cgroups: bool,
}

/// Init, cloned and set up, blocked on exec.sock. Dropping it without `release` kills it.
pub struct Launched {
    pub pid: i32,
    pub start_time: u64,
    pub cgroup: crate::cgroups::Cgroup,
    /// The network built for init (undone on failure), and where its leases live.
    network: Option<(crate::net::Plan, PathBuf, String)>,
    chan: Channel,
    armed: bool,
    /// The poststop hooks and the state they get, run when a create fails after init exists.
    poststop: Option<(Vec<oci_spec::runtime::Hook>, serde_json::Value)>,
}

impl Launched {
    /// Tells init its state is saved: from now on it outlives this process.
    /// Waits for init's answer: exiting before it has cleared its parent-death signal would
    /// kill it.
    pub fn release(mut self) -> Result<()> {
        self.chan.send(&ToInit::Saved)?;
        match self.chan.recv::<FromInit>()? {
            Some(FromInit::Released) => {}
            Some(FromInit::Error(m)) => bail!(m),
            other => bail!("container init did not confirm its release: {other:?}"),
        }
        self.armed = false;
        Ok(())
    }
}

impl Launched {
    /// Takes the process init forked into its new pid namespace as the container's init: the
    /// old one has exited (reaped here), the new one must be our child (CLONE_PARENT).
    fn adopt(&mut self, req: &Request, expected: bool, new: i32) -> Result<()> {
        if !expected {
            bail!("protocol error: container init forked, but its namespaces need no fork");
        }
        let _ = sp::waitpid(self.pid, false);
        match sp::waitpid(new, true) {
            Ok(None) => {}
            // Not ours to signal: whatever it is, it is not a process we made.
            other => {
                bail!("container init forked into pid {new}, which is not a live child of the runtime ({other:?})");
            }
        }
        self.pid = new;
        self.poststop = poststop_on_failure(req, new);
        Ok(())
    }
}

/// What the parent's answers to init depend on, besides the request.
struct Steps {
    /// Init forks into a pid namespace it unshares (`FromInit::Forked` is expected).
    forks: bool,
    /// Init makes the user namespace itself (`FromInit::UserNs` is expected).
    late_user: bool,
    idmapped: Vec<crate::rootfs::idmap::Idmapped>,
}

impl Launched {
    /// Puts init into its cgroup, recorded first so that `delete` finds it even if this
    /// process is killed before state.json is saved.
    fn setup_cgroup(&mut self, req: &Request) -> Result<()> {
        let spec = &req.bundle.spec;
        let linux = spec.linux().as_ref();
        self.cgroup = crate::cgroups::plan(req.id, linux, req.rootless_cgroups)?;
        std::fs::write(
            req.state_dir.join(crate::cgroups::RECORD),
            serde_json::to_vec(&self.cgroup)?,
        )
        .context("record cgroup")?;
        crate::log::debug(&format!(
            "namespaces {:?}, cgroup {:?}",
            ns_debug(spec),
            self.cgroup.dirs.iter().map(|d| &d.path).collect::<Vec<_>>()
        ));
        crate::cgroups::setup(&self.cgroup, linux, self.pid)
    }

    /// Answers init's requests (channel.rs) until it is Ready.
    fn drive(&mut self, req: &Request, steps: &Steps) -> Result<()> {
        let spec = &req.bundle.spec;
        loop {
            let (msg, fds) = match self.chan.recv_fds::<FromInit>()? {
                Some((m, fds)) => (Some(m), fds),
                None => (None, Vec::new()),
            };
            match msg {
                Some(FromInit::UserNs) => {
                    if !steps.late_user {
                        bail!("protocol error: container init made a user namespace the plan did not leave to it");
                    }
                    write_maps(spec, self.pid)?;
                    self.chan.send(&ToInit::MapsWritten)?;
                }
                Some(FromInit::Forked(new)) => {
                    self.adopt(req, steps.forks, new)?;
                    self.chan.send(&ToInit::Adopted)?;
                }
                Some(FromInit::Namespaces) => self.in_namespaces(req, steps)?,
                Some(FromInit::CreateRuntime) => {
                    runtime_hooks(req, self.pid)?;
                    self.chan.send(&ToInit::HooksDone)?;
                }
                Some(FromInit::Seccomp) => {
                    let fd = fds
                        .into_iter()
                        .next()
                        .context("container init sent no seccomp listener fd")?;
                    send_seccomp_listener(req, self.pid, fd)?;
                    self.chan.send(&ToInit::SeccompDone)?;
                }
                Some(FromInit::Ready) => return Ok(()),
                Some(FromInit::Error(msg)) => return Err(anyhow!(msg)),
                Some(FromInit::Released) => {
                    bail!("protocol error: container init released before its state was saved")
                }
                None => bail!(
                    "container init exited during setup ({})",
                    reap_status(self.pid)
                ),
            }
        }
    }

    /// Init is in all of its namespaces: build its network there and the idmapped mount
    /// trees for its user namespace, and hand the trees over.
    fn in_namespaces(&mut self, req: &Request, steps: &Steps) -> Result<()> {
        if let Some((plan, root, id)) = &self.network {
            let owner = crate::net::Owner { root, id };
            crate::net::setup(plan, &owner, self.pid)?;
        }
        let spec = &req.bundle.spec;
        let trees = crate::rootfs::idmap::make(spec, &req.bundle.dir, self.pid, &steps.idmapped)?;
        let fds: Vec<RawFd> = trees.iter().map(|t| t.as_raw_fd()).collect();
        self.chan.send_fds(&ToInit::Mounts, &fds)
    }
}

impl Drop for Launched {
    fn drop(&mut self) {
        if self.armed {
            kill_and_reap(self.pid);
            let _ = self.cgroup.remove();
            if let Some((plan, root, id)) = &self.network {
                let owner = crate::net::Owner { root, id };
                if let Err(e) = crate::net::teardown(plan, &owner) {
                    crate::log::warn(&format!("undo the network of {id}: {e:#}"));
                }
            }
            // runtime.md lifecycle 3-5: a failed create stops the container and continues at
            // step 12 (destroy) and 13 (poststop hooks, whose failures are only logged).
            if let Some((hooks, state)) = &self.poststop {
                hooks::run_warn("poststop", hooks, state);
            }
        }
    }
}

fn kill_and_reap(pid: i32) {
    let _ = sp::kill(pid, libc::SIGKILL);
    let _ = sp::waitpid(pid, false);
}

pub fn launch(mut req: Request) -> Result<Launched> {
    let spec = &req.bundle.spec;
    let ns = namespaces::plan(spec)?;
    let exe = crate::exe::sealed(req.state_dir.parent().unwrap_or(req.state_dir))?;
    let (ours, theirs) = socket::seqpacket_pair().context("socketpair")?;
    let dir =
        File::open(req.state_dir).with_context(|| format!("open {}", req.state_dir.display()))?;
    let sock_path = PathBuf::from(format!(
        "/proc/self/fd/{}/{}",
        dir.as_raw_fd(),
        crate::state::EXEC_SOCK
    ));
    let listener = socket::listen(&sock_path).context("listen on exec.sock")?;
    let pass: Vec<RawFd> = [theirs.as_raw_fd(), listener.as_raw_fd()]
        .into_iter()
        .chain(req.console.as_ref().map(|c| c.as_raw_fd()))
        .collect();
    let pid = clone_init(&ns, spec, &exe, &pass)?;
    // Our copies of init's fds are not needed here once it has them.
    drop(req.console.take());
    let mut launched = Launched {
        pid,
        start_time: 0,
        cgroup: Default::default(),
        network: None,
        chan: Channel(ours),
        armed: true,
        poststop: poststop_on_failure(&req, pid),
    };
    drop((theirs, listener, exe));
    if ns.clone_flags & libc::CLONE_NEWUSER as u64 != 0 {
        write_maps(spec, pid)?;
        // The child waits for this before it execs init (see child_exec).
        socket::send(launched.chan.0.as_fd(), b"m", &[]).context("signal id maps written")?;
    }
    launched.setup_cgroup(&req)?;
    let mut net = crate::net::plan(spec, &crate::net::netns_of(spec))?;
    if !net.is_empty() {
        // Recorded before anything is built, for `delete`, also after a crash.
        crate::net::record(&mut net, req.state_dir)?;
        let root = crate::net::root_of(req.state_dir);
        launched.network = Some((net, root, req.id.to_string()));
    }
    let steps = Steps {
        forks: ns.forks(),
        late_user: ns.init_new_user,
        idmapped: crate::rootfs::idmap::plan(spec)?,
    };
    let cfg = Config {
        id: req.id.to_string(),
        spec: with_listen_env(spec, req.listen_fds),
        bundle: req.bundle.dir.clone(),
        rootfs: req.bundle.rootfs.clone(),
        ns,
        no_pivot: req.no_pivot,
        no_new_keyring: req.no_new_keyring,
        listen_fd: pass[1],
        console_fd: pass.get(2).copied(),
        preserve_fds: req.preserve_fds,
        seccomp: req.bundle.seccomp.clone(),
        idmapped: steps.idmapped.iter().map(|m| m.index).collect(),
        rootless: req.rootless_cgroups,
    };
    launched.chan.send(&ToInit::Config(Box::new(cfg)))?;
    launched.drive(&req, &steps)?;
    launched.start_time = crate::state::process_start_time(launched.pid)
        .context("container init vanished after setup")?;
    Ok(launched)
}

/// The spec init runs: with socket-activation fds, LISTEN_FDS and LISTEN_PID=1 (init is pid 1
/// of its namespace, or learns no better) replace any the config has. The saved config keeps
/// the bundle's, so `exec` does not inherit them.
fn with_listen_env(spec: &oci_spec::runtime::Spec, n: u32) -> oci_spec::runtime::Spec {
    let mut spec = spec.clone();
    if n == 0 {
        return spec;
    }
    if let Some(p) = spec.process_mut() {
        let mut env = p.env().clone().unwrap_or_default();
        env.retain(|e| !e.starts_with("LISTEN_FDS=") && !e.starts_with("LISTEN_PID="));
        env.push(format!("LISTEN_FDS={n}"));
        env.push("LISTEN_PID=1".to_string());
        p.set_env(Some(env));
    }
    spec
}

/// Writes the id maps of the new user namespace of `pid` from outside it (userns.rs).
fn write_maps(spec: &oci_spec::runtime::Spec, pid: i32) -> Result<()> {
    let l = spec.linux().as_ref().context("linux section")?;
    crate::userns::write_maps(
        &crate::userns::Caller::current(),
        pid,
        l.uid_mappings().as_deref().unwrap_or_default(),
        l.gid_mappings().as_deref().unwrap_or_default(),
    )
}

/// runc's sendContainerProcessState: connect to linux.seccomp.listenerPath (a stream socket)
/// and send the container's process state as JSON with the listener fd as SCM_RIGHTS. The
/// state is the one runc 1.1 sends at this point: status "creating", init's host pid.
fn send_seccomp_listener(req: &Request, pid: i32, fd: OwnedFd) -> Result<()> {
    let spec = &req.bundle.spec;
    let ann = spec.annotations().clone().unwrap_or_default();
    let mut state = crate::state::creating_state(req.id, pid, &req.bundle.dir, &ann);
    if ann.is_empty() {
        state.as_object_mut().map(|o| o.remove("annotations"));
    }
    send_listener(spec, state, pid, fd)
}

/// Sends a seccomp listener fd (of process `pid`) and `state` to linux.seccomp.listenerPath.
pub fn send_listener(
    spec: &oci_spec::runtime::Spec,
    state: serde_json::Value,
    pid: i32,
    fd: OwnedFd,
) -> Result<()> {
    let sc = spec.linux().as_ref().and_then(|l| l.seccomp().as_ref());
    let path = sc
        .and_then(|s| s.listener_path().clone())
        .context("linux.seccomp.listenerPath: missing")?;
    let metadata = sc.and_then(|s| s.listener_metadata().clone());
    let mut msg = serde_json::json!({
        "ociVersion": crate::state::OCI_VERSION,
        "fds": ["seccompFd"],
        "pid": pid,
        "state": state,
    });
    if let Some(m) = metadata.filter(|m| !m.is_empty()) {
        msg["metadata"] = m.into();
    }
    let what = || format!("linux.seccomp.listenerPath {}", path.display());
    let sock = socket::connect(&path, libc::SOCK_STREAM).with_context(what)?;
    socket::send(sock.as_fd(), &serde_json::to_vec(&msg)?, &[fd.as_raw_fd()]).with_context(what)
}

fn reap_status(pid: i32) -> String {
    match sp::waitpid(pid, false) {
        Ok(Some((_, st))) => format!("exit status {}", sp::exit_code(st)),
        _ => "status unknown".into(),
    }
}

fn poststop_on_failure(
    req: &Request,
    pid: i32,
) -> Option<(Vec<oci_spec::runtime::Hook>, serde_json::Value)> {
    let spec = &req.bundle.spec;
    let hooks = spec.hooks().as_ref()?.poststop().clone()?;
    if hooks.is_empty() {
        return None;
    }
    let ann = spec.annotations().clone().unwrap_or_default();
    let mut state = crate::state::creating_state(req.id, pid, &req.bundle.dir, &ann);
    state["status"] = "stopped".into();
    Some((hooks, state))
}

#[allow(deprecated)]
fn runtime_hooks(req: &Request, pid: i32) -> Result<()> {
    let spec = &req.bundle.spec;
    let Some(h) = spec.hooks() else { return Ok(()) };
    let ann = spec.annotations().clone().unwrap_or_default();
    let state = crate::state::creating_state(req.id, pid, &req.bundle.dir, &ann);
    hooks::run(
        "prestart",
        h.prestart().as_deref().unwrap_or_default(),
        &state,
    )?;
    hooks::run(
        "createRuntime",
        h.create_runtime().as_deref().unwrap_or_default(),
        &state,
    )
}

/// Clones init. Pid and time namespaces only apply to children, so the parent enters (or
/// creates) them around the clone and returns to its own afterwards.
fn clone_init(
    ns: &NsPlan,
    spec: &oci_spec::runtime::Spec,
    exe: &OwnedFd,
    pass: &[RawFd],
) -> Result<i32> {
    // Only when we leave our own pid namespace do we need a way back (and the privilege to
    // take it: an unprivileged setns into our own namespace is still EPERM).
    let own_pid = match ns.parent_join_pid {
        Some(_) => Some(File::open("/proc/self/ns/pid").context("open /proc/self/ns/pid")?),
        None => None,
    };
    let own_time = if ns.new_time {
        Some(File::open("/proc/self/ns/time").context("open /proc/self/ns/time")?)
    } else {
        None
    };
    if let Some(path) = &ns.parent_join_pid {
        let f = File::open(path)
            .with_context(|| format!("linux.namespaces pid path {}", path.display()))?;
        sp::setns(f.as_fd(), libc::CLONE_NEWPID)
            .with_context(|| format!("join pid namespace {}", path.display()))?;
    }
    if ns.new_time {
        sp::unshare(libc::CLONE_NEWTIME).context("unshare time namespace")?;
        write_time_offsets(spec)?;
    }
    let argv: Vec<CString> = vec![
        c"ruse".into(),
        c"init".into(),
        CString::new(pass[0].to_string())?,
    ];
    let res = sp::clone_fork(ns.clone_flags);
    if matches!(res, Ok(0)) {
        child_exec(
            exe,
            pass,
            &argv,
            ns.clone_flags & libc::CLONE_NEWUSER as u64 != 0,
        );
    }
    let restore = match &own_pid {
        Some(f) => sp::setns(f.as_fd(), libc::CLONE_NEWPID),
        None => Ok(()),
    };
    if let Some(t) = &own_time {
        let _ = sp::setns(t.as_fd(), libc::CLONE_NEWTIME);
    }
    let pid = res.context("clone container init")?;
    if let Err(e) = restore {
        kill_and_reap(pid);
        return Err(e).context("return to own pid namespace");
    }
    Ok(pid)
}

/// In the cloned child: make sure we die with the parent, keep the fds init needs, exec.
/// (In a new pid namespace getppid() is 0, so a parent that died before pdeathsig was armed
/// is noticed by init as EOF on the channel instead.) Signals to a pid-namespace init are
/// ignored, so failure exits rather than aborts.
fn child_exec(exe: &OwnedFd, pass: &[RawFd], argv: &[CString], wait_for_maps: bool) -> ! {
    let _ = sp::set_pdeathsig(libc::SIGKILL);
    if wait_for_maps {
        // In a new user namespace we hold every capability but are still host root, which the
        // maps do not map: an execve now would run init as an unmapped (non-root) uid and drop
        // them all. Wait for the parent's one-packet go-ahead (EOF if it died: init then fails
        // on EOF), then become root of the namespace, which keeps them across the execve.
        let _ = sp::read(pass[0], &mut [0u8; 1]);
        let _ = sp::setresgid(0);
        let _ = sp::setresuid(0);
    }
    for &fd in pass {
        let _ = sfs::set_cloexec(fd, false);
    }
    let _ = sp::execveat_fd(exe.as_fd(), argv);
    sp::exit_now(127)
}

fn write_time_offsets(spec: &oci_spec::runtime::Spec) -> Result<()> {
    let offsets = spec
        .linux()
        .as_ref()
        .and_then(|l| l.time_offsets().clone())
        .unwrap_or_default();
    let mut text = String::new();
    for (clock, off) in &offsets {
        text.push_str(&format!(
            "{clock} {} {}\n",
            off.secs().unwrap_or(0),
            off.nanosecs().unwrap_or(0)
        ));
    }
    if !text.is_empty() {
        std::fs::write("/proc/self/timens_offsets", text).context("write linux.timeOffsets")?;
    }
    Ok(())
}

fn ns_debug(spec: &oci_spec::runtime::Spec) -> Vec<String> {
    let list = spec
        .linux()
        .as_ref()
        .and_then(|l| l.namespaces().clone())
        .unwrap_or_default();
    list.iter()
        .map(|n| {
            format!(
                "{}{}",
                n.typ(),
                n.path()
                    .as_ref()
                    .map(|p| format!("={}", p.display()))
                    .unwrap_or_default()
            )
        })
        .collect()
}

/// Starts a process of ruse's init from the sealed binary `exe`, in the runtime's own
/// namespaces (`ruse exec`): `pass[0]` is its end of the channel, the rest fds it inherits.
pub fn spawn_init(exe: &OwnedFd, pass: &[RawFd]) -> Result<i32> {
    let argv: Vec<CString> = vec![
        c"ruse".into(),
        c"init".into(),
        CString::new(pass[0].to_string())?,
    ];
    let pid = sp::clone_fork(0).context("fork the exec process")?;
    if pid == 0 {
        child_exec(exe, pass, &argv, false);
    }
    Ok(pid)
}
