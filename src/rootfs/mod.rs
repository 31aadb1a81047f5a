//! The container's file tree, built by init inside its new mount namespace, in two phases
//! around the createContainer hooks: `prepare` (propagation, the root bind, `mounts[]` in
//! order, devices, console) and `finish` (masked and read-only paths, read-only root, then
//! pivot_root or, with --no-pivot, MS_MOVE + chroot).

pub mod apply;
pub mod copyup;
pub mod devices;
pub mod idmap;
pub mod plan;
pub mod resolve;

use crate::sys::fs::{fchdir, fstat};
use crate::sys::mount::{
    self as m, mount_setattr, move_mount, open_tree, MountAttr, OPEN_TREE_CLONE,
};
use anyhow::{bail, Context, Result};
use oci_spec::runtime::Spec;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

pub struct Options<'a> {
    pub spec: &'a Spec,
    pub rootfs: &'a Path,
    pub bundle: &'a Path,
    pub in_userns: bool,
    /// The runtime is rootless (unprivileged, or root of a user namespace: rootless.rs).
    pub rootless: bool,
    /// Init has a cgroup namespace of its own, new or joined: the kernel roots cgroup mounts there.
    pub cgroupns: bool,
    pub terminal: bool,
}

pub struct Prepared {
    root: OwnedFd,
    /// The pty master and slave when `process.terminal` is set.
    pub console: Option<(OwnedFd, OwnedFd)>,
}

/// `idmapped`: the trees the runtime made for idmapped mounts, by `mounts[]` index.
pub fn prepare(o: &Options, mut idmapped: Vec<(usize, OwnedFd)>) -> Result<Prepared> {
    // Nothing we mount may propagate back to the host: rslave first, whatever
    // linux.rootfsPropagation says (`finish` applies that to the new root after pivot_root).
    // This also leaves no shared mount above the rootfs, which pivot_root would refuse.
    m::mount(
        None,
        Path::new("/"),
        None,
        libc::MS_SLAVE | libc::MS_REC,
        None,
    )
    .context("make / rslave")?;
    m::mount(
        Some(o.rootfs),
        o.rootfs,
        None,
        libc::MS_BIND | libc::MS_REC,
        None,
    )
    .with_context(|| format!("bind rootfs {}", o.rootfs.display()))?;
    let root = std::fs::File::open(o.rootfs)
        .with_context(|| format!("open rootfs {}", o.rootfs.display()))?;
    let root: OwnedFd = root.into();
    let r = root.as_fd();
    for (i, mnt) in o
        .spec
        .mounts()
        .as_deref()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        let op = plan::op(i, mnt, o.bundle)?;
        match idmapped.iter().position(|(j, _)| *j == i) {
            Some(k) => apply::attach(r, &op, idmapped.swap_remove(k).1),
            None => apply::mount(r, &op, o.cgroupns),
        }
        .with_context(|| format!("mounts[{i}]"))?;
        if o.rootless && host_cgroups_possible(&op, o.cgroupns) {
            host_cgroups_read_only(r).with_context(|| format!("mounts[{i}]"))?;
        }
    }
    let linux = o.spec.linux().as_ref();
    for n in devices::default_nodes() {
        devices::create(r, &n, o.in_userns)?;
    }
    for d in linux
        .and_then(|l| l.devices().as_deref())
        .unwrap_or_default()
    {
        devices::create(r, &devices::from_spec(d), o.in_userns)?;
    }
    devices::symlinks(r)?;
    let console = if o.terminal {
        Some(console(&root)?)
    } else {
        None
    };
    Ok(Prepared { root, console })
}

/// Whether `op` may have put the host's own cgroup tree under /sys/fs/cgroup: any bind (an
/// rbind of /sys brings the host's cgroup mounts along), or a cgroup mount without a cgroup
/// namespace (a bind of the host's directories, see apply.rs).
fn host_cgroups_possible(op: &plan::MountOp, cgroupns: bool) -> bool {
    match &op.kind {
        plan::Kind::Bind { .. } => true,
        plan::Kind::Fs { fstype, .. } => !cgroupns && (fstype == "cgroup" || fstype == "cgroup2"),
    }
}

/// CVE-2023-25809: a rootless container must never see the host's cgroups writable (they
/// may be the user's own, delegated ones). So /sys/fs/cgroup, when it is a mount point now,
/// is made read-only with everything under it — right after the mount that brought it, since
/// a later mount over it only hides it until the container's root unmounts that one.
fn host_cgroups_read_only(root: BorrowedFd) -> Result<()> {
    let dir =
        |p: &str| resolve::open_nofollow(root, Path::new(p), libc::O_PATH | libc::O_DIRECTORY);
    let (Ok(cg), Ok(fs)) = (dir("sys/fs/cgroup"), dir("sys/fs")) else {
        return Ok(());
    };
    if fstat(cg.as_fd())?.st_dev == fstat(fs.as_fd())?.st_dev {
        return Ok(());
    }
    let attr = MountAttr {
        attr_set: m::MOUNT_ATTR_RDONLY,
        ..Default::default()
    };
    mount_setattr(cg.as_fd(), true, &attr).context("make /sys/fs/cgroup read-only (rootless)")
}

/// A new pty (master, slave) from the devpts at `root`/dev/pts, reached without following
/// any symlink, the slave obtained from the master (never by path). For create, and for
/// `exec --tty` inside the running container.
pub fn open_pty(root: BorrowedFd) -> Result<(OwnedFd, OwnedFd)> {
    let master = resolve::open_nofollow(
        root,
        Path::new("dev/pts/ptmx"),
        libc::O_RDWR | libc::O_NOCTTY,
    )
    .context("open /dev/pts/ptmx (process.terminal needs a devpts mount at /dev/pts)")?;
    let st = fstat(master.as_fd())?;
    if st.st_mode & libc::S_IFMT != libc::S_IFCHR || libc::major(st.st_rdev) != 5 {
        bail!("/dev/pts/ptmx in the container is not a pty multiplexer");
    }
    let slave = crate::sys::process::pty_peer(master.as_fd()).context("open pty peer")?;
    Ok((master, slave))
}

/// A new pty from the container's devpts; its slave is bind-mounted on /dev/console.
fn console(root: &OwnedFd) -> Result<(OwnedFd, OwnedFd)> {
    let (master, slave) = open_pty(root.as_fd())?;
    let target = console_target(root.as_fd()).context("/dev/console")?;
    let tree = open_tree(slave.as_fd(), Path::new(""), OPEN_TREE_CLONE)
        .context("clone pty for /dev/console")?;
    move_mount(tree.as_fd(), target.as_fd()).context("bind pty on /dev/console")?;
    Ok((master, slave))
}

/// The file the pty is bound on. The image chooses what /dev/console is, so whatever is
/// there but a file or a device node — a symlink to /proc/sys/kernel/core_pattern, say
/// (CVE-2025-52565) — is removed and replaced by an empty file: the pty is never mounted
/// where a symlink points. /dev itself is resolved inside the root and must not be in a procfs.
fn console_target(root: BorrowedFd) -> Result<OwnedFd> {
    use crate::sys::fs::{create_file_at, lstatat, openat, unlinkat};
    const PROC_SUPER_MAGIC: i64 = 0x9fa0;
    let dev = resolve::mkdir_all(root, Path::new("dev"), 0o755)?;
    if crate::sys::fs::fstatfs_type(dev.as_fd())? == PROC_SUPER_MAGIC {
        bail!("/dev resolves inside /proc");
    }
    let name = Path::new("console");
    let is_file_or_node =
        |st: &libc::stat| matches!(st.st_mode & libc::S_IFMT, libc::S_IFREG | libc::S_IFCHR);
    match lstatat(dev.as_fd(), name) {
        Ok(st) if is_file_or_node(&st) => {}
        Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFDIR => bail!("is a directory"),
        Ok(_) => unlinkat(dev.as_fd(), name, 0).context("remove what the image put there")?,
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match create_file_at(dev.as_fd(), name, 0o666) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => return Err(e).context("create"),
        _ => {}
    }
    let fd = openat(dev.as_fd(), name, libc::O_PATH | libc::O_NOFOLLOW, 0)?;
    if !is_file_or_node(&fstat(fd.as_fd())?) {
        bail!("changed while it was set up");
    }
    Ok(fd)
}

pub fn finish(p: &Prepared, o: &Options, no_pivot: bool) -> Result<()> {
    let r = p.root.as_fd();
    let linux = o.spec.linux().as_ref();
    let masked = linux
        .and_then(|l| l.masked_paths().as_deref())
        .unwrap_or_default();
    if !masked.is_empty() {
        let null = apply::verified_null(r)?;
        for path in masked {
            apply::mask(r, &plan::clean_dest(Path::new(path)), null.as_fd())?;
        }
    }
    for path in linux
        .and_then(|l| l.readonly_paths().as_deref())
        .unwrap_or_default()
    {
        apply::readonly(r, &plan::clean_dest(Path::new(path)))?;
    }
    // A missing process.cwd is made (as runc does), mode 0755 whatever the umask, and before
    // the root may turn read-only; a dangling symlink on the way is refused (as runc's MkdirAll).
    if let Some(p) = o.spec.process() {
        let cwd = plan::clean_dest(p.cwd());
        if matches!(resolve::open_path(r, &cwd), Err(e) if e.raw_os_error() == Some(libc::ENOENT)) {
            resolve::mkdir_all_no_dangling(r, &cwd, 0o755)
                .with_context(|| format!("process.cwd {}", p.cwd().display()))?;
        }
    }
    if o.spec
        .root()
        .as_ref()
        .and_then(|r| r.readonly())
        .unwrap_or(false)
    {
        let attr = MountAttr {
            attr_set: crate::sys::mount::MOUNT_ATTR_RDONLY,
            ..Default::default()
        };
        mount_setattr(r, false, &attr).context("make root read-only")?;
    }
    fchdir(r).context("chdir to rootfs")?;
    if no_pivot {
        m::mount(
            Some(Path::new(".")),
            Path::new("/"),
            None,
            libc::MS_MOVE,
            None,
        )
        .context("move rootfs to /")?;
        crate::sys::fs::chroot(Path::new(".")).context("chroot")?;
    } else {
        m::pivot_root_dot().context("pivot_root")?;
        m::umount_detach(Path::new(".")).context("detach old root")?;
    }
    std::env::set_current_dir("/").context("chdir /")?;
    if let Some(p) = linux
        .and_then(|l| l.rootfs_propagation().as_deref())
        .and_then(plan::propagation_flag)
    {
        m::mount(None, Path::new("/"), None, p, None).context("set linux.rootfsPropagation")?;
    }
    Ok(())
}
