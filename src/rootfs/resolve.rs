//! Resolution inside the container's root. Every path in the rootfs is opened relative to
//! the root's fd with RESOLVE_IN_ROOT, so `..` and symlinks (absolute, relative, dangling,
//! racing) are resolved as if the root were `/` and never lead out (CVE-2021-30465,
//! CVE-2024-45310, CVE-2026-41579).

use crate::sys::fs::{
    create_file_at, mkdirat, openat2, readlinkat, RESOLVE_IN_ROOT, RESOLVE_NO_MAGICLINKS,
    RESOLVE_NO_SYMLINKS,
};
use anyhow::{bail, Context, Result};
use std::collections::VecDeque;
use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

const IN_ROOT: u64 = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;

/// Opens `rel` (relative to the root) as an O_PATH fd, following symlinks only inside root.
pub fn open_path(root: BorrowedFd, rel: &Path) -> io::Result<OwnedFd> {
    openat2(root, dot_if_empty(rel), libc::O_PATH, 0, IN_ROOT)
}

/// Opens `rel` with `flags`, following symlinks only inside root (never magic links).
pub fn open_in_root(root: BorrowedFd, rel: &Path, flags: i32) -> io::Result<OwnedFd> {
    openat2(root, dot_if_empty(rel), flags, 0, IN_ROOT)
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

/// Symlinks followed while making one path, at most (the kernel's own limit).
const MAX_LINKS: usize = 40;

/// Makes every missing directory of `rel` and returns an O_PATH fd of the last one.
pub fn mkdir_all(root: BorrowedFd, rel: &Path, mode: u32) -> Result<OwnedFd> {
    make(root, rel, mode, false, true)
}

/// As [`mkdir_all`], but a dangling symlink on the way is an error instead of being made
/// (process.cwd, as runc's `os.MkdirAll` inside the container).
pub fn mkdir_all_no_dangling(root: BorrowedFd, rel: &Path, mode: u32) -> Result<OwnedFd> {
    make(root, rel, mode, false, false)
}

fn open_dir(root: BorrowedFd, rel: &Path) -> io::Result<OwnedFd> {
    openat2(
        root,
        dot_if_empty(rel),
        libc::O_PATH | libc::O_DIRECTORY,
        0,
        IN_ROOT,
    )
}

/// Makes sure `rel` exists as a directory (or as an empty file when `file`), creating parents,
/// and returns an O_PATH fd of it.
pub fn ensure(root: BorrowedFd, rel: &Path, file: bool) -> Result<OwnedFd> {
    let fd = make(root, rel, 0o755, file, true)?;
    let st = crate::sys::fs::fstat(fd.as_fd())?;
    if file && st.st_mode & libc::S_IFMT == libc::S_IFDIR {
        bail!(
            "mount destination {}: is a directory but the source is a file",
            show(rel)
        );
    }
    Ok(fd)
}

/// Walks `rel` from the root one component at a time, creating what is missing (directories,
/// and the last component as an empty file when `file`). Symlinks on the way, dangling ones
/// too, are followed as the kernel would with the root as `/` (as runc's securejoin does), so
/// a mount on `/var/run/x` with `/var/run -> /run` and no `/run` creates `/run/x`.
///
/// Every open is RESOLVE_IN_ROOT and every creation is a `*at` call on a parent fd that was
/// resolved inside the root, on a last component that is never followed: nothing can be
/// created outside the root, even while the rootfs races.
fn make(root: BorrowedFd, rel: &Path, mode: u32, file: bool, dangling: bool) -> Result<OwnedFd> {
    let mut todo: VecDeque<OsString> = rel.iter().map(OsStr::to_os_string).collect();
    let mut done = PathBuf::new();
    let mut links = 0;
    while let Some(name) = todo.pop_front() {
        if name == "/" || name == "." {
            continue;
        }
        let path = done.join(&name);
        match open_path(root, &path) {
            Ok(_) => {
                done = path;
                continue;
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
            Err(e) => return Err(e).with_context(|| format!("open {}", show(&path))),
        }
        let parent = open_dir(root, &done).with_context(|| format!("open {}", show(&done)))?;
        let name_path = Path::new(&name);
        match readlinkat(parent.as_fd(), name_path) {
            Ok(_) if !dangling => {
                bail!("{}: is a dangling symbolic link", show(&path));
            }
            Ok(target) => {
                // A dangling symlink: continue from where it points.
                links += 1;
                if links > MAX_LINKS {
                    bail!("{}: too many levels of symbolic links", show(rel));
                }
                if target.is_absolute() {
                    done = PathBuf::new();
                }
                for c in target.iter().rev() {
                    todo.push_front(c.to_os_string());
                }
                continue;
            }
            Err(e) if matches!(e.raw_os_error(), Some(libc::EINVAL) | Some(libc::ENOENT)) => {}
            Err(e) => return Err(e).with_context(|| format!("readlink {}", show(&path))),
        }
        let made = if file && todo.is_empty() {
            create_file_at(parent.as_fd(), name_path, 0o644)
        } else {
            mkdirat(parent.as_fd(), name_path, mode)
        };
        match made {
            Err(e) if e.raw_os_error() != Some(libc::EEXIST) => {
                let what = if file && todo.is_empty() {
                    "create"
                } else {
                    "mkdir"
                };
                return Err(e).with_context(|| format!("{what} {}", show(&path)));
            }
            _ => {}
        }
        // Opened again on the next turn; a racing swap to a symlink counts as a link.
        links += 1;
        if links > MAX_LINKS {
            bail!("{}: changed under us too many times", show(rel));
        }
        todo.push_front(name);
    }
    open_path(root, &done).with_context(|| format!("open {}", show(&done)))
}

/// The absolute, in-container spelling of a root-relative path, for messages.
pub fn show(rel: &Path) -> String {
    Path::new("/").join(rel).display().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn creation_follows_dangling_symlinks_inside_the_root() {
        let base = std::env::temp_dir().join(format!("ruse-resolve-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        let (root, outside) = (base.join("root"), base.join("outside"));
        std::fs::create_dir_all(&root).unwrap();
        std::fs::create_dir_all(&outside).unwrap();
        symlink(&outside, root.join("abs")).unwrap();
        symlink("../../../../outside", root.join("rel")).unwrap();
        symlink("/run", root.join("varrun")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let r = std::fs::File::open(&root).unwrap();
        let r = r.as_fd();
        mkdir_all(r, Path::new("abs/a/b"), 0o755).unwrap();
        mkdir_all(r, Path::new("rel/c"), 0o755).unwrap();
        ensure(r, Path::new("varrun/lock/f"), true).unwrap();
        let inside = root.join(outside.strip_prefix("/").unwrap());
        assert!(inside.join("a/b").is_dir());
        assert!(root.join("outside/c").is_dir());
        assert!(root.join("run/lock/f").is_file());
        assert_eq!(std::fs::read_dir(&outside).unwrap().count(), 0);
        let e = mkdir_all(r, Path::new("loop/x"), 0o755).unwrap_err();
        assert!(format!("{e:#}").contains("symbolic links"), "{e:#}");
        let e = ensure(r, Path::new("abs"), true).unwrap_err();
        assert!(format!("{e:#}").contains("is a directory"), "{e:#}");
        std::fs::remove_dir_all(&base).unwrap();
    }
}
