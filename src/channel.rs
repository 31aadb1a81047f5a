//! The parent↔init protocol over one SOCK_SEQPACKET socketpair (one JSON message per packet).
//!
//! ```text
//!  parent: ruse create (host namespaces)        init: clone → exec sealed memfd "ruse init <fd>"
//!  ───────────────────────────────────────      ───────────────────────────────────────────────
//!  clone(CLONE_NEW*) ─────────────────────────▶ pdeathsig(KILL); with a new user ns in the
//!                                               clone (namespaces.rs, first shape), wait:
//!  write uid_map/gid_map (directly, or through
//!    newuidmap/newgidmap: userns.rs)
//!  "m" (one raw byte, that case only) ────────▶ setres[ug]id(0)
//!                                               execveat(memfd)
//!  cgroup
//!  Config{spec, rootfs, ns plan, fds} ────────▶ join namespaces by path (init/join.rs)
//!                          ◀─────────────────── UserNs (only when init makes the user ns
//!                                               itself, after the joins: unshare(NEWUSER))
//!  write uid_map/gid_map
//!  MapsWritten ───────────────────────────────▶ unshare the other new namespaces (a new pid
//!                                               ns: fork with CLONE_PARENT)
//!                          ◀─────────────────── Forked(pid) (only then; the sender exits)
//!  reap the old init, adopt pid
//!  Adopted ───────────────────────────────────▶ (the forked init, pid 1, goes on)
//!                          ◀─────────────────── Namespaces (init is in all of its namespaces)
//!  build the network in /proc/<pid>/ns/net,
//!  make idmapped mount trees (rootfs/idmap.rs)
//!  Mounts + idmapped trees (SCM_RIGHTS) ──────▶ hostname, lo up, mounts, devices, console
//!                          ◀─────────────────── CreateRuntime
//!  run prestart + createRuntime hooks
//!  HooksDone ─────────────────────────────────▶ createContainer hooks, masks, ro paths,
//!                                               pivot_root, sysctl, process attrs, user, caps,
//!                                               seccomp filter (before the user switch
//!                                               without noNewPrivileges, last with it)
//!                          ◀─────────────────── Seccomp + listener fd (only with NOTIFY rules)
//!  send fd + state to listenerPath
//!  SeccompDone ───────────────────────────────▶
//!                          ◀─────────────────── Ready
//!  save state.json, --pid-file
//!  Saved ─────────────────────────────────────▶ clear pdeathsig
//!                          ◀─────────────────── Released
//!  exit 0                                       accept() on exec.sock
//!                                               … `ruse start` connects → startContainer hooks
//!                                               → close fds → EXEC_MARKER → execve(args)
//!  At any step init may send Error{msg} and exit; the parent kills, reaps and cleans up.
//!  EOF before Ready means init died: the parent reports its wait status.
//! ```
//! `start` reads the accepted connection: EXEC_MARKER then EOF (the CLOEXEC end closed by a
//! successful execve) means started; a message is the error of the last steps; EOF (or a
//! reset) without the marker means init died before it got that far.
//!
//! `ruse exec` drives the same init (a new process, exec'd from the sealed binary) with a
//! shorter script:
//!
//! ```text
//!  parent: ruse exec (host namespaces)          exec init: clone → exec sealed "ruse init <fd>"
//!  ───────────────────────────────────────      ───────────────────────────────────────────────
//!  pidfd of the container's init, checked
//!  clone (no new namespaces) ─────────────────▶ pdeathsig(KILL)
//!  move the child into the container's cgroup
//!  Exec{spec, pidfd, join flags, …} ──────────▶ setns(pidfd, every namespace init does not
//!                                               share with the runtime), user ns included:
//!                                               the kernel orders and checks them as one
//!                          ◀─────────────────── Forked(pid) (only with a pid namespace to
//!  reap the first child, adopt pid                enter, which applies to children)
//!  Adopted ───────────────────────────────────▶ (the forked process goes on)
//!                                               pty from the container's devpts → console
//!                                               socket; cwd, limits, user, caps, seccomp
//!                          ◀─────────────────── Seccomp + listener fd (only with NOTIFY rules)
//!  SeccompDone ───────────────────────────────▶ execve(process.args)
//!  EOF (the CLOEXEC channel closed by execve) = running; Error{msg} = it failed.
//! ```

/// What init sends on `start`'s connection right before its execve: a message no error text
/// can be.
pub const EXEC_MARKER: &[u8] = b"\0";

use crate::namespaces::NsPlan;
use crate::sys::socket;
use anyhow::{anyhow, Context, Result};
use oci_spec::runtime::Spec;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::os::fd::{AsFd, OwnedFd, RawFd};
use std::path::PathBuf;

#[derive(Serialize, Deserialize, Debug)]
pub struct Config {
    pub id: String,
    pub spec: Spec,
    pub bundle: PathBuf,
    pub rootfs: PathBuf,
    pub ns: NsPlan,
    pub no_pivot: bool,
    pub no_new_keyring: bool,
    pub listen_fd: i32,
    pub console_fd: Option<i32>,
    pub preserve_fds: u32,
    /// linux.seccomp, compiled by create.
    pub seccomp: Option<crate::seccomp::Compiled>,
    /// The `mounts[]` indexes of the idmapped trees attached to `ToInit::Mounts`, in fd order.
    #[serde(default)]
    pub idmapped: Vec<usize>,
    /// The runtime is rootless (`--rootless`, rootless.rs): host cgroups stay read-only.
    #[serde(default)]
    pub rootless: bool,
}

/// What `ruse exec` sends: the process to start in a running container.
#[derive(Serialize, Deserialize, Debug)]
pub struct ExecConfig {
    /// The container's config with `process` replaced by the one to execute.
    pub spec: Spec,
    /// A pidfd of the container's init (an inherited fd number).
    pub pidfd: i32,
    /// CLONE_NEW* flags of the namespaces of init that are not the runtime's own.
    pub join: i32,
    pub console_fd: Option<i32>,
    pub preserve_fds: u32,
    /// linux.seccomp, compiled by the runtime.
    pub seccomp: Option<crate::seccomp::Compiled>,
}

#[derive(Serialize, Deserialize, Debug)]
pub enum ToInit {
    Config(Box<Config>),
    Exec(Box<ExecConfig>),
    /// The parent wrote the id maps of the user namespace init made (see `FromInit::UserNs`).
    MapsWritten,
    /// The runtime took the forked init as its container process (see `FromInit::Forked`).
    Adopted,
    /// The network is built; the idmapped mount trees ride along as SCM_RIGHTS.
    Mounts,
    HooksDone,
    /// The seccomp listener fd reached linux.seccomp.listenerPath.
    SeccompDone,
    Saved,
}

#[derive(Serialize, Deserialize, Debug)]
pub enum FromInit {
    /// Init unshared a user namespace; the parent writes its maps, then sends `MapsWritten`.
    UserNs,
    /// Init unshared a pid namespace and forked into it; this is the new process's pid (the
    /// sender exits, the new process waits for `Adopted`).
    Forked(i32),
    /// Init is in all of its namespaces: the parent may build what lives in them.
    Namespaces,
    CreateRuntime,
    /// The seccomp filter is installed; its listener fd rides along as SCM_RIGHTS.
    Seccomp,
    Ready,
    /// Parent-death signal cleared: the parent may exit now without taking init along.
    Released,
    Error(String),
}

pub struct Channel(pub OwnedFd);

impl Channel {
    pub fn send<T: Serialize>(&self, msg: &T) -> Result<()> {
        self.send_fds(msg, &[])
    }

    /// Sends one message with fds attached (SCM_RIGHTS).
    pub fn send_fds<T: Serialize>(&self, msg: &T, fds: &[RawFd]) -> Result<()> {
        let data = serde_json::to_vec(msg).context("encode message")?;
        socket::send(self.0.as_fd(), &data, fds).context("send to the other side of create")
    }

    /// Receives one message; None when the peer closed its end.
    pub fn recv<T: DeserializeOwned>(&self) -> Result<Option<T>> {
        Ok(self.recv_fds()?.map(|(m, _)| m))
    }

    /// Receives one message and the fds attached to it.
    pub fn recv_fds<T: DeserializeOwned>(&self) -> Result<Option<(T, Vec<OwnedFd>)>> {
        let (data, fds) =
            socket::recv(self.0.as_fd()).context("receive from the other side of create")?;
        if data.is_empty() {
            return Ok(None);
        }
        serde_json::from_slice(&data)
            .map(|m| Some((m, fds)))
            .map_err(|e| anyhow!("malformed message ({} bytes): {e}", data.len()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_garbage() {
        let (a, b) = socket::seqpacket_pair().unwrap();
        let (a, b) = (Channel(a), Channel(b));
        a.send(&FromInit::Error("boom".into())).unwrap();
        match b.recv::<FromInit>().unwrap() {
            Some(FromInit::Error(m)) => assert_eq!(m, "boom"),
            other => panic!("{other:?}"),
        }
        socket::send(a.0.as_fd(), b"\xff{not json", &[]).unwrap();
        assert!(b.recv::<FromInit>().is_err());
        drop(a);
        assert!(b.recv::<FromInit>().unwrap().is_none());
    }
}
