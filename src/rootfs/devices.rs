//! Device nodes and the standard `/dev` symlinks (config-linux.md "Default Devices",
//! "Devices"), created through fds resolved inside the root. Inside a user namespace, where
//! mknod is not allowed, the host's node is bind-mounted instead.

use super::resolve::{ensure, mkdir_all, open_nofollow, show};
use crate::sys::fs::{fchown_fd, mknodat, symlinkat, unlinkat};
use crate::sys::mount::{move_mount, open_tree, OPEN_TREE_CLONE};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::{LinuxDevice, LinuxDeviceType};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};

pub struct Node {
    /// Path relative to the root (`dev/null`).
    pub rel: PathBuf,
    pub kind: u32,
    pub major: u64,
    pub minor: u64,
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// A configured device (linux.devices): an existing file must be this very device.
    pub must_match: bool,
}

pub fn default_nodes() -> Vec<Node> {
    [
        ("null", 1, 3),
        ("zero", 1, 5),
        ("full", 1, 7),
        ("random", 1, 8),
        ("urandom", 1, 9),
        ("tty", 5, 0),
    ]
    .iter()
    .map(|&(n, major, minor)| Node {
        rel: PathBuf::from("dev").join(n),
        kind: libc::S_IFCHR,
        major,
        minor,
        mode: 0o666,
        uid: 0,
        gid: 0,
        must_match: false,
    })
    .collect()
}

pub fn from_spec(d: &LinuxDevice) -> Node {
    let kind = match d.typ() {
        LinuxDeviceType::B => libc::S_IFBLK,
        LinuxDeviceType::P => libc::S_IFIFO,
        _ => libc::S_IFCHR,
    };
    Node {
        rel: super::plan::clean_dest(d.path()),
        kind,
        major: d.major() as u64,
        minor: d.minor() as u64,
        mode: d.file_mode().unwrap_or(0o666) & 0o7777,
        uid: d.uid().unwrap_or(0),
        gid: d.gid().unwrap_or(0),
        must_match: true,
    }
}

/// Creates one node. An existing entry is left as it is (the image may ship its own /dev),
/// but for a configured device it must be that device (config-linux.md "Devices": "If a file
/// already exists at path that does not match the requested device, the runtime MUST generate
/// an error").
pub fn create(root: BorrowedFd, n: &Node, in_userns: bool) -> Result<()> {
    let parent = n.rel.parent().unwrap_or(Path::new(""));
    let name = Path::new(n.rel.file_name().context("device path has no name")?);
    let dir = mkdir_all(root, parent, 0o755)?;
    let dev = libc::makedev(n.major as u32, n.minor as u32);
    match mknodat(dir.as_fd(), name, n.kind | n.mode, dev) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EEXIST) => return check_existing(root, n),
        Err(e) if e.raw_os_error() == Some(libc::EPERM) && in_userns => return bind_host(root, n),
        Err(e) => return Err(e).with_context(|| format!("mknod {}", show(&n.rel))),
    }
    // The node just made, by its name in the directory it was made in (which may have been
    // reached through symlinks inside the root); never through a symlink swapped in since.
    let fd = open_nofollow(dir.as_fd(), name, libc::O_PATH)
        .with_context(|| format!("open {}", show(&n.rel)))?;
    fchown_fd(fd.as_fd(), n.uid, n.gid).with_context(|| format!("chown {}", show(&n.rel)))?;
    Ok(())
}

fn check_existing(root: BorrowedFd, n: &Node) -> Result<()> {
    if !n.must_match {
        return Ok(());
    }
    let fd = open_nofollow(root, &n.rel, libc::O_PATH)
        .with_context(|| format!("open {}", show(&n.rel)))?;
    let st = crate::sys::fs::fstat(fd.as_fd()).with_context(|| format!("stat {}", show(&n.rel)))?;
    let same_type = st.st_mode & libc::S_IFMT == n.kind;
    let same_dev =
        n.kind == libc::S_IFIFO || st.st_rdev == libc::makedev(n.major as u32, n.minor as u32);
    if !(same_type && same_dev) {
        bail!(
            "linux.devices {}: a file that is not the requested device already exists there",
            show(&n.rel)
        );
    }
    Ok(())
}

/// Bind-mounts the host's node of the same path over an empty file (user namespaces).
fn bind_host(root: BorrowedFd, n: &Node) -> Result<()> {
    let target = ensure(root, &n.rel, true)?;
    let host = Path::new("/").join(&n.rel);
    let tree = open_tree(crate::sys::fs::cwd(), &host, OPEN_TREE_CLONE)
        .with_context(|| format!("open host {}", host.display()))?;
    move_mount(tree.as_fd(), target.as_fd())
        .with_context(|| format!("bind {} into the container", host.display()))
}

/// /dev/fd, /dev/std{in,out,err} and /dev/ptmx → pts/ptmx.
pub fn symlinks(root: BorrowedFd) -> Result<()> {
    let dev = mkdir_all(root, Path::new("dev"), 0o755)?;
    let links = [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ];
    for (name, target) in links {
        match symlinkat(Path::new(target), dev.as_fd(), Path::new(name)) {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                return Err(e).with_context(|| format!("symlink /dev/{name}"))
            }
            _ => {}
        }
    }
    match unlinkat(dev.as_fd(), Path::new("ptmx"), 0) {
        Err(e) if e.raw_os_error() != Some(libc::ENOENT) => {
            return Err(e).context("remove /dev/ptmx")
        }
        _ => {}
    }
    symlinkat(Path::new("pts/ptmx"), dev.as_fd(), Path::new("ptmx")).context("symlink /dev/ptmx")
}
