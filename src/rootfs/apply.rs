//! Performs mount operations with the fd-based mount API: the new filesystem or the cloned
//! bind tree is built detached, given its attributes, and only then attached to a
//! destination fd that was resolved inside the root. No path in the rootfs is ever handed to
//! mount(2).

use super::plan::{data_string, Kind, MountOp};
use super::resolve::{ensure, open_nofollow, open_path, show};
use crate::sys::fs::{cwd, fstat};
use crate::sys::mount::*;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

const CGROUP2_SUPER_MAGIC: i64 = 0x6367_7270;
const PROC_SUPER_MAGIC: i64 = 0x9fa0;

pub fn mount(root: BorrowedFd, op: &MountOp) -> Result<()> {
    let what = describe(op);
    let tree = match &op.kind {
        Kind::Bind { source, recursive } => {
            let flags = OPEN_TREE_CLONE | if *recursive { AT_RECURSIVE } else { 0 };
            open_tree(cwd(), source, flags)
                .with_context(|| format!("{what}: source {}", source.display()))?
        }
        Kind::Fs { fstype, .. } if fstype == "cgroup" || fstype == "cgroup2" => {
            return mount_cgroup(root, op)
        }
        Kind::Fs { fstype, source } => {
            new_fs(fstype, source.as_deref(), &op.data).with_context(|| what.clone())?
        }
    };
    set_attrs(tree.as_fd(), op).with_context(|| what.clone())?;
    attach(root, op, tree)
}

/// Attaches a detached tree built for `op` (here, or by the runtime for an idmapped mount)
/// at its destination, then sets its propagation.
pub fn attach(root: BorrowedFd, op: &MountOp, tree: OwnedFd) -> Result<()> {
    let what = describe(op);
    let is_file = fstat(tree.as_fd())?.st_mode & libc::S_IFMT != libc::S_IFDIR;
    let target = destination(root, op, is_file).with_context(|| what.clone())?;
    not_into_proc(target.as_fd(), op).with_context(|| what.clone())?;
    move_mount(tree.as_fd(), target.as_fd()).with_context(|| what.clone())?;
    propagate(root, op).with_context(|| what.clone())
}

fn describe(op: &MountOp) -> String {
    match &op.kind {
        Kind::Bind { source, .. } => format!("bind {} on {}", source.display(), show(&op.dest)),
        Kind::Fs { fstype, .. } => format!("mount {fstype} on {}", show(&op.dest)),
    }
}

fn new_fs(
    fstype: &str,
    source: Option<&str>,
    data: &[(String, Option<String>)],
) -> Result<OwnedFd> {
    let ctx = FsContext::open(fstype).with_context(|| format!("filesystem type {fstype:?}"))?;
    if let Some(s) = source {
        ctx.set("source", Some(s)).context("source")?;
    }
    for (k, v) in data {
        ctx.set(k, v.as_deref())
            .with_context(|| format!("option {:?}", data_string(&[(k.clone(), v.clone())])))?;
    }
    ctx.mount(0).context("create filesystem")
}

pub fn set_attrs(tree: BorrowedFd, op: &MountOp) -> Result<()> {
    if op.rattr != MountAttr::default() {
        mount_setattr(tree, true, &op.rattr).context("set recursive mount attributes")?;
    }
    if op.attr != MountAttr::default() {
        mount_setattr(tree, false, &op.attr).context("set mount attributes")?;
    }
    Ok(())
}

/// The destination fd; /proc and /sys only on real directories (CVE-2019-19921, CVE-2023-27561).
fn destination(root: BorrowedFd, op: &MountOp, is_file: bool) -> Result<OwnedFd> {
    let special =
        matches!(&op.kind, Kind::Fs { fstype, .. } if fstype == "proc" || fstype == "sysfs");
    if special {
        match open_nofollow(root, &op.dest, libc::O_PATH | libc::O_DIRECTORY) {
            Ok(fd) => return Ok(fd),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ELOOP) | Some(libc::ENOTDIR)) => {
                bail!("{} must be mounted on ordinary directory", show(&op.dest))
            }
            Err(_) => {}
        }
    }
    ensure(root, &op.dest, is_file)
}

/// The lexical check of `plan` cannot see symlinks: a destination that *resolves* into a
/// procfs (`/p/sys` with `/p -> /proc`) is refused too, unless it is the allow-list's
/// (CVE-2019-19921: a mount over /proc/self/attr redirects LSM writes).
fn not_into_proc(target: BorrowedFd, op: &MountOp) -> Result<()> {
    let proc_on_proc = matches!(&op.kind, Kind::Fs { fstype, .. } if fstype == "proc")
        && op.dest == Path::new("proc");
    if proc_on_proc || super::plan::proc_allowed(&op.dest) {
        return Ok(());
    }
    if crate::sys::fs::fstatfs_type(target)? == PROC_SUPER_MAGIC {
        bail!(
            "{} resolves inside /proc: only a procfs, or an allow-listed file, may be mounted there",
            show(&op.dest)
        );
    }
    Ok(())
}

fn propagate(root: BorrowedFd, op: &MountOp) -> Result<()> {
    if op.propagation.is_empty() {
        return Ok(());
    }
    let fd = open_path(root, &op.dest).context("reopen destination")?;
    for &p in &op.propagation {
        let attr = MountAttr {
            propagation: p & !libc::MS_REC,
            ..Default::default()
        };
        mount_setattr(fd.as_fd(), p & libc::MS_REC != 0, &attr).context("set propagation")?;
    }
    Ok(())
}

/// `type: cgroup` means "the cgroup filesystem(s) of this host": cgroup2 on a unified host;
/// on v1/hybrid hosts a tmpfs holding one mount per v1 hierarchy plus `unified`, as runc does.
/// With a new cgroup namespace each mount is rooted at the container's cgroup.
fn mount_cgroup(root: BorrowedFd, op: &MountOp) -> Result<()> {
    let host = std::fs::File::open("/sys/fs/cgroup").context("open /sys/fs/cgroup")?;
    let unified = crate::sys::fs::fstatfs_type(host.as_fd())? == CGROUP2_SUPER_MAGIC;
    let what = describe(op);
    if unified {
        let tree = new_fs("cgroup2", None, &op.data).with_context(|| what.clone())?;
        set_attrs(tree.as_fd(), op).with_context(|| what.clone())?;
        let target = ensure(root, &op.dest, false).with_context(|| what.clone())?;
        return move_mount(tree.as_fd(), target.as_fd()).with_context(|| what.clone());
    }
    let tmpfs = new_fs(
        "tmpfs",
        Some("cgroup"),
        &[("mode".into(), Some("755".into()))],
    )
    .with_context(|| what.clone())?;
    let target = ensure(root, &op.dest, false).with_context(|| what.clone())?;
    move_mount(tmpfs.as_fd(), target.as_fd()).with_context(|| what.clone())?;
    for (name, fstype, opts) in v1_hierarchies()? {
        let sub = op.dest.join(&name);
        let tree = new_fs(&fstype, None, &opts)
            .with_context(|| format!("mount {fstype} on {}", show(&sub)))?;
        set_attrs(tree.as_fd(), op).with_context(|| format!("mount {fstype} on {}", show(&sub)))?;
        let t = ensure(root, &sub, false)?;
        move_mount(tree.as_fd(), t.as_fd())
            .with_context(|| format!("mount {fstype} on {}", show(&sub)))?;
    }
    // The tmpfs itself gets the same attributes (normally ro) once its directories exist.
    let top = open_path(root, &op.dest)?;
    set_attrs(top.as_fd(), op).with_context(|| what.clone())
}

/// (directory name, fstype, options) of each cgroup hierarchy mounted under /sys/fs/cgroup.
/// Filesystem options as (key, optional value) pairs.
type FsOptions = Vec<(String, Option<String>)>;

fn v1_hierarchies() -> Result<Vec<(String, String, FsOptions)>> {
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    let mut out = Vec::new();
    for line in info.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let mp = left.split(' ').nth(4).unwrap_or("");
        let Some(name) = mp.strip_prefix("/sys/fs/cgroup/") else {
            continue;
        };
        if name.contains('/') {
            continue;
        }
        let mut r = right.split(' ');
        let fstype = r.next().unwrap_or("");
        let superopts = r.nth(1).unwrap_or("");
        let opts = match fstype {
            "cgroup" => superopts
                .split(',')
                .filter(|o| *o != "rw" && *o != "ro")
                .map(|o| match o.split_once('=') {
                    Some((k, v)) => (k.to_string(), Some(v.to_string())),
                    None => (o.to_string(), None),
                })
                .collect(),
            "cgroup2" => Vec::new(),
            _ => continue,
        };
        out.push((name.to_string(), fstype.to_string(), opts));
    }
    Ok(out)
}

/// Masks one path (config-linux.md "Masked Paths"): a directory under an empty read-only
/// tmpfs, anything else under the container's own, verified, null device (CVE-2025-31133).
pub fn mask(root: BorrowedFd, rel: &Path, null: BorrowedFd) -> Result<()> {
    let target = match open_path(root, rel) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("mask {}", show(rel))),
    };
    let is_dir = fstat(target.as_fd())?.st_mode & libc::S_IFMT == libc::S_IFDIR;
    let tree = if is_dir {
        let ctx = FsContext::open("tmpfs")?;
        ctx.set("size", Some("0"))?;
        ctx.mount(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC)
    } else {
        open_tree(null, Path::new(""), OPEN_TREE_CLONE)
    }
    .with_context(|| format!("mask {}", show(rel)))?;
    move_mount(tree.as_fd(), target.as_fd()).with_context(|| format!("mask {}", show(rel)))
}

/// Opens the container's /dev/null and proves it is the real 1:3 character device. Symlinks
/// inside the root may lead there (an image whose /dev is a symlink): what is mounted is this
/// fd, checked by fstat, never a path, so where it came from does not matter.
pub fn verified_null(root: BorrowedFd) -> Result<OwnedFd> {
    let fd = open_path(root, Path::new("dev/null")).context("open /dev/null in the container")?;
    let st = fstat(fd.as_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || st.st_rdev != libc::makedev(1, 3) {
        bail!("/dev/null in the container is not the null device (1:3); refusing to mask paths with it");
    }
    Ok(fd)
}

/// Makes one path read-only, with its submounts (config-linux.md "Readonly Paths").
pub fn readonly(root: BorrowedFd, rel: &Path) -> Result<()> {
    let target = match open_path(root, rel) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("readonly {}", show(rel))),
    };
    let tree = open_tree(
        target.as_fd(),
        Path::new(""),
        OPEN_TREE_CLONE | AT_RECURSIVE,
    )
    .with_context(|| format!("readonly {}", show(rel)))?;
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        ..Default::default()
    };
    mount_setattr(tree.as_fd(), true, &attr).with_context(|| format!("readonly {}", show(rel)))?;
    move_mount(tree.as_fd(), target.as_fd()).with_context(|| format!("readonly {}", show(rel)))
}
