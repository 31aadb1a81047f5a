//! The `tmpcopyup` mount option (runc and crun's extension, which podman sends for
//! `--read-only` and `--tmpfs`): the directory a tmpfs is about to cover is copied into the
//! still detached tmpfs, so the container sees the image's files on a writable tmpfs.
//! Runs in init, in the container's mount namespace, before pivot_root.
//!
//! The source is in the hostile rootfs, so nothing is resolved by path: every entry is
//! reached from its parent's fd with O_NOFOLLOW, symlinks are copied as symlinks (never
//! followed), and a directory that turns into a symlink mid-copy fails to open rather than
//! leading elsewhere. The destination is the tmpfs's own root fd, which nothing else can see yet.

use crate::sys::fs::{
    dir_entries, fchmod, fchown_fd, lchownat, lstatat, mkdirat, mknodat, openat, readlinkat,
    set_times, symlinkat,
};
use anyhow::{Context, Result};
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::Path;

/// Copies the directory `src` (an fd to it, O_PATH is enough) into the directory `dst`, and
/// gives `dst` the owner and mode of `src` unless the mount's own options set them.
pub fn copy_up(src: BorrowedFd, dst: BorrowedFd, keep_mode: bool, keep_owner: bool) -> Result<()> {
    let dir = reopen_dir(src, Path::new("."))?;
    let st = crate::sys::fs::fstat(dir.as_fd())?;
    copy_dir(dir.as_fd(), dst, 0).context("tmpcopyup")?;
    let top = reopen_dir(dst, Path::new("."))?;
    if !keep_owner {
        unmapped_ok(fchown_fd(top.as_fd(), st.st_uid, st.st_gid))
            .context("tmpcopyup: owner of the tmpfs")?;
    }
    if !keep_mode {
        fchmod(top.as_fd(), st.st_mode & 0o7777).context("tmpcopyup: mode of the tmpfs")?;
    }
    Ok(())
}

/// In a user namespace a file owned by an unmapped id shows the overflow id, which cannot be
/// given to the copy (EINVAL): the copy then keeps init's own ids, as with any new file.
fn unmapped_ok(r: std::io::Result<()>) -> std::io::Result<()> {
    match r {
        Err(e) if e.raw_os_error() == Some(libc::EINVAL) => Ok(()),
        r => r,
    }
}

fn reopen_dir(dir: BorrowedFd, name: &Path) -> Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_NOFOLLOW;
    openat(dir, name, flags, 0).with_context(|| format!("open directory {}", name.display()))
}

/// A deep image could exhaust the stack or the fd table; the kernel's own limit on path
/// length bounds any real tree far below this.
const MAX_DEPTH: usize = 256;

fn copy_dir(src: BorrowedFd, dst: BorrowedFd, depth: usize) -> Result<()> {
    if depth > MAX_DEPTH {
        anyhow::bail!("directory tree deeper than {MAX_DEPTH} levels");
    }
    for name in dir_entries(src)? {
        let name = Path::new(&name);
        copy_entry(src, dst, name, depth).with_context(|| format!("{}", name.display()))?;
    }
    Ok(())
}

fn copy_entry(src: BorrowedFd, dst: BorrowedFd, name: &Path, depth: usize) -> Result<()> {
    let st = lstatat(src, name)?;
    let perm = st.st_mode & 0o7777;
    let kind = st.st_mode & libc::S_IFMT;
    match kind {
        libc::S_IFDIR => {
            mkdirat(dst, name, 0o700)?;
            let (from, to) = (reopen_dir(src, name)?, reopen_dir(dst, name)?);
            copy_dir(from.as_fd(), to.as_fd(), depth + 1)?;
            finish(to.as_fd(), &st)?;
        }
        libc::S_IFREG => {
            let from = openat(src, name, libc::O_RDONLY | libc::O_NOFOLLOW, 0)?;
            let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW;
            let to = openat(dst, name, flags, 0o600)?;
            let (mut r, mut w) = (File::from(from), File::from(to));
            std::io::copy(&mut r, &mut w)?;
            finish(w.as_fd(), &st)?;
        }
        libc::S_IFLNK => {
            symlinkat(&readlinkat(src, name)?, dst, name)?;
            unmapped_ok(lchownat(dst, name, st.st_uid, st.st_gid))?;
        }
        libc::S_IFCHR | libc::S_IFBLK | libc::S_IFIFO => {
            mknodat(dst, name, kind | perm, st.st_rdev)?;
            unmapped_ok(lchownat(dst, name, st.st_uid, st.st_gid))?;
        }
        // A socket is bound to the filesystem it lives on: a copy would be a dead name.
        _ => {}
    }
    Ok(())
}

/// Owner first: chown clears the set-id bits that the mode then restores.
fn finish(fd: BorrowedFd, st: &libc::stat) -> Result<()> {
    unmapped_ok(fchown_fd(fd, st.st_uid, st.st_gid))?;
    fchmod(fd, st.st_mode & 0o7777)?;
    set_times(fd, st)?;
    Ok(())
}
