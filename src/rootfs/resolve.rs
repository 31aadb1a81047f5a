//! Resolution inside the container's root. Every path in the rootfs is opened relative to
//! the root's fd with RESOLVE_IN_ROOT, so `..` and symlinks (absolute, relative, dangling,
//! racing) are resolved as if the root were `/` and never lead out (CVE-2021-30465,
//! CVE-2024-45310, CVE-2026-41579).

use crate::sys::fs::{
    mkdirat, openat2, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS, RESOLVE_NO_SYMLINKS,
};
use anyhow::{bail, Context, Result};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const IN_ROOT: u64 = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

/// Opens `rel` (relative to the root) as an O_PATH fd, following symlinks only inside root.
pub fn open_path(root: BorrowedFd, rel: &Path) -> io::Result<OwnedFd> {
    openat2(root, dot_if_empty(rel), libc::O_PATH, 0, IN_ROOT)
}

/// Opens `rel` without following any symlink on the way (for /proc, /sys, /dev/null checks).
pub fn open_nofollow(root: BorrowedFd, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
    openat2(
        root,
        dot_if_empty(rel),
        flags | libc::O_NOFOLLOW,
        0,
        IN_ROOT | RESOLVE_NO_SYMLINKS,
    )
}

fn dot_if_empty(p: &Path) -> &Path {
    if p.as_os_str().is_empty() {
        Path::new(".")
    } else {
        p
    }
}

/// Makes every missing directory of `rel` and returns an O_PATH fd of the last one.
pub fn mkdir_all(root: BorrowedFd, rel: &Path, mode: u32) -> Result<OwnedFd> {
    let mut cur = open_path(root, Path::new("."))?;
    let mut prefix = PathBuf::new();
    for comp in rel.components() {
        prefix.push(comp);
        cur = match open_dir(root, &prefix) {
            Ok(fd) => fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                // `cur` was resolved inside root, and mkdirat does not follow a symlink at the
                // last component, so nothing can be created outside the root.
                match mkdirat(cur.as_fd(), Path::new(comp.as_os_str()), mode) {
                    Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                        return Err(e).with_context(|| format!("mkdir {}", show(&prefix)))
                    }
                    _ => {}
                }
                open_dir(root, &prefix).with_context(|| format!("open {}", show(&prefix)))?
            }
            Err(e) => return Err(e).with_context(|| format!("open {}", show(&prefix))),
        };
    }
    Ok(cur)
}

fn open_dir(root: BorrowedFd, rel: &Path) -> io::Result<OwnedFd> {
    openat2(root, rel, libc::O_PATH | libc::O_DIRECTORY, 0, IN_ROOT)
}

/// Makes sure `rel` exists as a directory (or as an empty file when `file`), creating parents,
/// and returns an O_PATH fd of it.
pub fn ensure(root: BorrowedFd, rel: &Path, file: bool) -> Result<OwnedFd> {
    if let Ok(fd) = open_path(root, rel) {
        let st = crate::sys::fs::fstat(fd.as_fd())?;
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if is_dir && file {
            bail!(
                "mount destination {}: is a directory but the source is a file",
                show(rel)
            );
        }
        return Ok(fd);
    }
    if !file {
        return mkdir_all(root, rel, 0o755);
    }
    let parent = rel.parent().unwrap_or(Path::new(""));
    let name = rel
        .file_name()
        .context("mount destination has no file name")?;
    let dir = mkdir_all(root, parent, 0o755)?;
    match crate::sys::fs::create_file_at(dir.as_fd(), Path::new(name), 0o644) {
        Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
            return Err(e).with_context(|| format!("create {}", show(rel)))
        }
        _ => {}
    }
    open_path(root, rel).with_context(|| format!("open {}", show(rel)))
}

/// The absolute, in-container spelling of a root-relative path, for messages.
pub fn show(rel: &Path) -> String {
    Path::new("/").join(rel).display().to_string()
}
