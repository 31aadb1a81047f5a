//! The binary the container's init (and every process ruse puts in a container) is executed
//! from, protected against CVE-2019-5736: a process in the container that reaches
//! `/proc/<pid>/exe` must not be able to write to the host's ruse binary.
//!
//! First choice, as runc 1.2 does: the binary's directory as the top layer of a detached,
//! read-only overlayfs with no upper layer (writes through it fail with EROFS, and there is
//! no way to unwrap it to the file below, unlike a read-only bind mount). It costs one
//! superblock and no copy. Fallback, where overlayfs cannot be mounted (no overlay support,
//! or no privilege): a copy in a memfd with all four seals, which costs a copy of the whole
//! binary per container (several milliseconds for ours).
//! Runs in `ruse create` (and `exec`), on the host side, before the clone.

use crate::sys::fs::{openat2, sealed_self_copy, RESOLVE_BENEATH, RESOLVE_NO_SYMLINKS};
use crate::sys::mount::{FsContext, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY};
use anyhow::{Context, Result};
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

/// An `O_PATH` fd of a write-protected copy of the running binary, for `execveat`.
/// `spare_dir` is any existing directory (overlayfs needs a second, lower layer).
pub fn sealed(spare_dir: &Path) -> Result<OwnedFd> {
    match overlay(spare_dir) {
        Ok(fd) => Ok(fd),
        Err(e) => {
            crate::log::debug(&format!(
                "read-only overlay of ruse: {e:#}; copying it to a memfd"
            ));
            sealed_self_copy().context("seal a copy of the runtime binary")
        }
    }
}

fn overlay(spare_dir: &Path) -> Result<OwnedFd> {
    let exe = std::fs::read_link("/proc/self/exe").context("read /proc/self/exe")?;
    let (dir, name) = match (exe.parent(), exe.file_name()) {
        (Some(d), Some(n)) if exe.is_absolute() => (d.to_path_buf(), PathBuf::from(n)),
        _ => anyhow::bail!("/proc/self/exe is {exe:?}"),
    };
    let ctx = FsContext::open("overlay").context("fsopen overlay")?;
    // The binary's directory on top, so nothing in the spare layer can shadow it.
    let lower = format!("{}:{}", escape(&dir), escape(spare_dir));
    ctx.set("lowerdir", Some(&lower))
        .with_context(|| format!("overlay lowerdir={lower}"))?;
    // Only to keep dmesg quiet when the layers are on different filesystems.
    let _ = ctx.set("xino", Some("off"));
    let mnt = ctx
        .mount(MOUNT_ATTR_RDONLY | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOSUID)
        .context("mount the overlay")?;
    openat2(
        mnt.as_fd(),
        &name,
        libc::O_PATH | libc::O_NOFOLLOW,
        0,
        RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
    )
    .with_context(|| format!("open {} in the overlay", name.display()))
}

/// overlayfs splits `lowerdir` at `:` and treats `\` as an escape.
fn escape(p: &Path) -> String {
    p.to_string_lossy()
        .replace('\\', "\\\\")
        .replace(':', "\\:")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowerdir_escapes() {
        assert_eq!(escape(Path::new("/a:b\\c")), "/a\\:b\\\\c");
        assert_eq!(escape(Path::new("/usr/bin")), "/usr/bin");
    }
}
