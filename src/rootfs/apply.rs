//! Performs mount operations with the fd-based mount API: the new filesystem or the cloned
//! bind tree is built detached, given its attributes, and only then attached to a
//! destination fd that was resolved inside the root. No path in the rootfs is ever handed to
//! mount(2).

use super::plan::{data_string, Kind, MountOp};
use super::resolve::{ensure, open_in_root, open_nofollow, open_path, show};
use crate::sys::fs::{cwd, fstat};
use crate::sys::mount::*;
use anyhow::{bail, Context, Result};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

pub fn mount(root: BorrowedFd, op: &MountOp, cgroupns: bool) -> Result<()> {
    let what = describe(op);
    let tree = match &op.kind {
        Kind::Bind { source, recursive } => {
            let flags = OPEN_TREE_CLONE | if *recursive { AT_RECURSIVE } else { 0 };
            open_tree(cwd(), source, flags)
                .with_context(|| format!("{what}: source {}", source.display()))?
        }
        Kind::Fs { fstype, .. } if fstype == "cgroup" || fstype == "cgroup2" => {
            return mount_cgroup(root, op, cgroupns)
        }
        Kind::Fs { fstype, source } => {
            let tree = new_fs(fstype, source.as_deref(), &op.data).with_context(|| what.clone())?;
            if op.copy_up {
                copy_up(root, op, tree.as_fd()).with_context(|| what.clone())?;
            }
            tree
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

/// Fills the detached tmpfs with what its destination holds now (nothing when it is missing).
/// Attributes such as `ro` are set on the tree only after this.
fn copy_up(root: BorrowedFd, op: &MountOp, tree: BorrowedFd) -> Result<()> {
    let src = match open_in_root(root, &op.dest, libc::O_PATH | libc::O_DIRECTORY) {
        Ok(fd) => fd,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) => return Err(e).context("tmpcopyup: open the destination"),
    };
    let set = |k: &str| op.data.iter().any(|(key, _)| key == k);
    super::copyup::copy_up(src.as_fd(), tree, set("mode"), set("uid") || set("gid"))
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
/// on v1/hybrid hosts a tmpfs holding one mount per hierarchy (`unified` included), as runc
/// does. With a new cgroup namespace each hierarchy is mounted afresh and the kernel roots it
/// at the container's cgroup. Without one a fresh mount would show the whole host tree (every
/// other container's cgroups, the root cgroup's limits where the container's belong), so the
/// container's own directory is bind-mounted from the host's hierarchy instead, as runc does
/// on v1: init is already in its cgroup, so its /proc/self/cgroup names that directory.
fn mount_cgroup(root: BorrowedFd, op: &MountOp, cgroupns: bool) -> Result<()> {
    let what = describe(op);
    let hierarchies = cgroup_hierarchies(cgroupns).with_context(|| what.clone())?;
    if let [(name, h)] = &hierarchies[..] {
        if name.as_os_str().is_empty() {
            return attach_tree(root, &op.dest, h, op).with_context(|| what.clone());
        }
    }
    let tmpfs = new_fs(
        "tmpfs",
        Some("cgroup"),
        &[("mode".into(), Some("755".into()))],
    )
    .with_context(|| what.clone())?;
    let target = ensure(root, &op.dest, false).with_context(|| what.clone())?;
    move_mount(tmpfs.as_fd(), target.as_fd()).with_context(|| what.clone())?;
    for (name, h) in &hierarchies {
        let sub = op.dest.join(name);
        attach_tree(root, &sub, h, op)
            .with_context(|| format!("mount {} on {}", h.fstype(), show(&sub)))?;
    }
    // The tmpfs itself gets the same attributes (normally ro) once its directories exist.
    let top = open_path(root, &op.dest)?;
    set_attrs(top.as_fd(), op).with_context(|| what.clone())
}

/// How one hierarchy appears in the container: a fresh instance, or a bind of a host directory.
enum CgTree {
    Fresh { v2: bool, options: FsOptions },
    Bind(std::path::PathBuf),
}

impl CgTree {
    fn fstype(&self) -> &'static str {
        match self {
            CgTree::Fresh { v2: true, .. } => "cgroup2",
            CgTree::Fresh { v2: false, .. } => "cgroup",
            CgTree::Bind(_) => "bind",
        }
    }
}

fn attach_tree(root: BorrowedFd, dest: &Path, h: &CgTree, op: &MountOp) -> Result<()> {
    let tree = match h {
        CgTree::Fresh { v2, options } => {
            new_fs(if *v2 { "cgroup2" } else { "cgroup" }, None, options)?
        }
        // A host path, not one in the rootfs: it is trusted, and no container process runs yet.
        CgTree::Bind(src) => open_tree(cwd(), src, OPEN_TREE_CLONE)
            .with_context(|| format!("source {}", src.display()))?,
    };
    set_attrs(tree.as_fd(), op)?;
    let t = ensure(root, dest, false)?;
    move_mount(tree.as_fd(), t.as_fd()).map_err(Into::into)
}

/// Filesystem options as (key, optional value) pairs.
type FsOptions = Vec<(String, Option<String>)>;

/// The hierarchies mounted on or directly under /sys/fs/cgroup, by their name under it (empty
/// for a cgroup2 on /sys/fs/cgroup itself), as init sees them before pivot_root.
fn cgroup_hierarchies(cgroupns: bool) -> Result<Vec<(std::path::PathBuf, CgTree)>> {
    use crate::cgroups::layout::{self, ROOT};
    let under_root = |dir: &Path| match dir.strip_prefix(ROOT) {
        Ok(rel) if rel.components().count() <= 1 => Some(rel.to_path_buf()),
        _ => None,
    };
    if !cgroupns && !layout::nothing_mounted() {
        let l = layout::detect()?;
        return Ok(l
            .hierarchies
            .iter()
            .filter_map(|h| Some((under_root(&h.mount)?, CgTree::Bind(h.mount.join(&h.own)))))
            .collect());
    }
    let info =
        std::fs::read_to_string("/proc/self/mountinfo").context("read /proc/self/mountinfo")?;
    Ok(layout::parse_mountinfo(&info)
        .into_iter()
        .filter_map(|m| {
            let name = under_root(&m.dir)?;
            // The controllers (and `name=`) only: release_agent, clone_children and the like
            // are the host's business.
            let options = if m.v2 {
                Vec::new()
            } else {
                m.superopts
                    .iter()
                    .filter(|o| is_cgroup_v1_binding(o))
                    .map(|o| match o.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (o.to_string(), None),
                    })
                    .collect()
            };
            Some((name, CgTree::Fresh { v2: m.v2, options }))
        })
        .collect())
}

/// A v1 superblock option that says which controllers (or which named hierarchy) it binds.
fn is_cgroup_v1_binding(o: &str) -> bool {
    o.starts_with("name=")
        || !matches!(
            o.split('=').next().unwrap_or(""),
            "rw" | "ro"
                | "release_agent"
                | "clone_children"
                | "xattr"
                | "noprefix"
                | "all"
                | "none"
                | "cpuset_v2_mode"
                | "favordynmods"
        )
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
